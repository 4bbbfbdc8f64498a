"""The command line (docs/DESIGN.md 4.2-4.4): each command's output and each user error.

Most tests run the real ``tuitune`` entry point in a subprocess with ``--db`` in a temporary folder;
the ones that only need output and exit codes call ``tuitune.cli.main`` in-process (faster). Every
objective is a synthetic one from ``_objectives.py``, copied next to the TOML files (a user's module).
"""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import tuitune
from tuitune.core.store import Store

if TYPE_CHECKING:
    from tests.support.project import Project


TRIAL_LINE = re.compile(
    r"^trial\s+(?P<n>\d+) (?P<state>\w+)(?: \((?P<reason>.*)\))? (?P<metric>\w+)=(?P<value>\S+) "
    r"epochs=(?P<ep>\d+)/(?P<budget>\d+)(?: \[(?P<where>[^\]]*)\])?(?P<params>.*)$"
)


def trial_lines(out: str) -> list[re.Match]:
    return [m for m in (TRIAL_LINE.match(line.strip()) for line in out.splitlines()) if m]


def show_json(project: Project, name: str) -> dict:
    r = project.cli("show", name, "--json")
    assert r.rc == 0, r.err
    return json.loads(r.out)


def log_lines(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------- run


def test_run_headless_prints_a_line_per_trial_and_the_leaderboard(project: Project) -> None:
    toml = project.toml()
    r = project.cli("run", toml.name, "--trials", 3, "--session", "s1", "--seed", 7, "--headless")
    assert r.rc == 0, r.err
    assert "Traceback" not in r.err
    assert "starting session s1" in r.out
    assert re.search(r"^session .*3/3", r.out, re.M), r.out  # the session's progress bar
    lines = trial_lines(r.out)
    assert [int(m["n"]) for m in lines] == [0, 1, 2], r.out
    stored = {t["number"]: t for t in project.trials("s1")}
    for m in lines:
        t = stored[int(m["n"])]
        assert m["state"] == "complete" and t["state"] == "complete"
        assert m["metric"] == "val_loss"
        assert float(m["value"]) == pytest.approx(t["value"], rel=1e-3)
        assert (m["ep"], m["budget"]) == ("3", "3")
        if project.workers:  # the worker it ran on, printed (rich once ate "[w0 auto]" as markup)
            assert m["where"] and m["where"].startswith("w"), r.out
        params = dict(kv.split("=", 1) for kv in m["params"].split())
        assert set(params) == {"x", "units", "act"}  # the searched parameters, not the fixed 'tag'
        assert int(params["units"]) == t["config"]["units"] and params["act"] == t["config"]["act"]
        assert float(params["x"]) == pytest.approx(t["config"]["x"], rel=1e-3)
    # The leaderboard: a header naming the columns, a row per trial ranked by value.
    header = next(line for line in r.out.splitlines() if "rank" in line)
    for col in ("trial", "x", "units", "act", "val_loss", "epochs", "state"):
        assert col in header
    best = min(stored.values(), key=lambda t: t["value"])
    assert f"best: trial {best['number']}, val_loss=" in r.out
    assert "tuitune export s1" in r.out
    rows = [line for line in r.out.splitlines() if "complete" in line and line.strip().startswith(("│", "|"))]
    assert len(rows) == 3
    first_row_cells = [c.strip() for c in re.split(r"[│|]", rows[0]) if c.strip()]
    assert first_row_cells[:2] == ["1", str(best["number"])]


def test_run_grid_runs_every_point_once(inproc, project: Project) -> None:
    toml = project.toml(space={"x": {"type": "float", "low": 0.0, "high": 1.0},
                               "act": {"type": "choice", "values": ["relu", "tanh"]}})
    r = inproc("run", toml.name, "--strategy", "grid", "--grid-points", 3, "--session", "g", "--headless")
    assert r.rc == 0, r.err
    configs = [(t["config"]["x"], t["config"]["act"]) for t in project.trials("g")]
    assert len(configs) == 6 == len(set(configs))
    assert {c[0] for c in configs} == {0.0, 0.5, 1.0}
    assert len(trial_lines(r.out)) == 6


def test_run_hyperband_with_factor(inproc, project: Project) -> None:
    toml = project.toml(max_epochs=9)
    r = inproc("run", toml.name, "--strategy", "hyperband", "--factor", 3, "--session", "hb", "--headless")
    assert r.rc == 0, r.err
    trials = project.trials("hb")
    assert trials and {t["state"] for t in trials} <= {"complete", "pruned"}
    assert any(t["state"] == "pruned" for t in trials)
    assert any(t["budget"] == 9 and t["state"] == "complete" for t in trials)
    options = project.sql("SELECT options FROM sessions WHERE name = 'hb'")[0][0]
    assert '"factor": 3' in options and '"sampler": "bayes"' in options  # the model sampler by default


def test_run_asha_with_factor_and_min_epochs(inproc, project: Project) -> None:
    toml = project.toml(max_epochs=9)
    r = inproc("run", toml.name, "--strategy", "asha", "--factor", 3, "--min-epochs", 1, "--session", "as", "--headless")
    assert r.rc == 0, r.err
    trials = project.trials("as")
    assert len(trials) == 9  # its default: the configs of Hyperband's biggest bracket, 3**2
    assert {t["state"] for t in trials} == {"complete", "pruned"}
    assert all(t["budget"] in (1, 3, 9) for t in trials)
    assert any(t["budget"] == 9 and t["state"] == "complete" for t in trials)
    options = project.sql("SELECT options FROM sessions WHERE name = 'as'")[0][0]
    assert '"factor": 3' in options and '"min_epochs": 1' in options and '"sampler": "bayes"' in options


def test_asha_sampler_from_the_flag_and_from_the_preset(inproc, project: Project) -> None:
    plain = project.toml(max_epochs=3)
    r = inproc("run", plain.name, "--strategy", "asha", "--sampler", "bayes", "--trials", 7, "--session", "ab",
               "--headless")
    assert r.rc == 0, r.err
    options = project.sql("SELECT options FROM sessions WHERE name = 'ab'")[0][0]
    assert '"sampler": "bayes"' in options
    new = [t for t in project.trials("ab") if t["meta"].get("chosen_by")]
    assert len(new) == 7 and {t["meta"]["chosen_by"] for t in new} <= {"random", "model"}
    # [strategy.asha] in the preset sets it for asha sessions; a flag overrides it
    toml = project.toml("with-options.toml", max_epochs=3, extra={"strategy": {"asha": {"sampler": "bayes"}}})
    r = inproc("run", toml.name, "--strategy", "asha", "--trials", 3, "--session", "ap", "--headless")
    assert r.rc == 0, r.err
    assert '"sampler": "bayes"' in project.sql("SELECT options FROM sessions WHERE name = 'ap'")[0][0]
    r = inproc("run", toml.name, "--strategy", "asha", "--sampler", "random", "--trials", 3, "--session", "ar",
               "--headless")
    assert r.rc == 0, r.err
    assert '"sampler": "random"' in project.sql("SELECT options FROM sessions WHERE name = 'ar'")[0][0]


def test_bad_sampler_in_a_preset_names_the_file_and_key(inproc, project: Project) -> None:
    toml = project.toml("bad-sampler.toml", extra={"strategy": {"asha": {"sampler": "tpe"}}})
    r = inproc("run", toml.name, "--strategy", "asha", "--headless")
    r.assert_user_error("bad-sampler.toml", "strategy.asha.sampler", "'tpe' is not one of bayes, random")
    assert not project.db.exists()


def test_run_asha_on_two_workers_continues_promoted_trials(inproc, project: Project) -> None:
    toml = project.toml(max_epochs=9, objective="_objectives:with_torch")
    r = inproc("run", toml.name, "--strategy", "asha", "--workers", 2, "--session", "as2", "--headless")
    assert r.rc == 0, r.err
    trials = show_json(project, "as2")["trials"]
    assert len(trials) == 9 and {t["state"] for t in trials} == {"complete", "pruned"}
    for t in trials:  # a promoted trial continued its epochs from its checkpoint: 1..budget once each
        assert [e["epoch"] for e in t["epochs"]] == list(range(1, t["budget"] + 1))
    assert any(t["budget"] == 9 and t["state"] == "complete" for t in trials)


def test_run_bayes_with_n_initial(project: Project) -> None:
    r = project.cli("run", project.toml(max_epochs=1).name, "--strategy", "bayes", "--trials", 3, "--n-initial", 2,
                    "--session", "bz", "--headless", timeout=300)
    assert r.rc == 0, r.err
    assert [t["state"] for t in project.trials("bz")] == ["complete"] * 3
    s = json.loads(project.cli("sessions", "--json").out)[0]
    assert (s["strategy"], s["options"]["n_initial"]) == ("bayes", 2)


def test_run_with_generated_names(project: Project) -> None:
    toml = project.toml(max_epochs=1)
    names = []
    for _ in range(2):
        r = project.cli("run", toml.name, "--trials", 1, "--headless")
        assert r.rc == 0, r.err
        m = re.search(r"starting session (\S+):", r.out)
        assert m, r.out
        names.append(m.group(1))
    assert names[0] != names[1]
    for n in names:
        assert re.fullmatch(r"[a-z]+-[a-z]+-\d+", n), n
    assert sorted(project.session_names()) == sorted(names)
    listed = json.loads(project.cli("sessions", "--json").out)
    assert sorted(s["name"] for s in listed) == sorted(names)


def test_run_existing_name_with_other_settings_is_refused(project: Project) -> None:
    toml = project.toml(max_epochs=1)
    assert project.cli("run", toml.name, "--trials", 2, "--session", "dup", "--headless").rc == 0
    before = project.trials("dup")
    r = project.cli("run", toml.name, "--trials", 2, "--seed", 1, "--session", "dup", "--headless")
    r.assert_user_error("dup", "already exists", "seed", "tuitune resume dup")
    assert project.trials("dup") == before
    # The one rule of tt.tune and run: the same settings with a larger --trials extend the session.
    r = project.cli("run", toml.name, "--trials", 3, "--session", "dup", "--headless")
    assert r.rc == 0, r.err
    assert len(project.trials("dup")) == 3


def test_run_existing_name_with_identical_settings_resumes(project: Project) -> None:
    toml = project.toml(max_epochs=2)
    args = ("run", toml.name, "--trials", 2, "--session", "same", "--seed", 3, "--headless")
    assert project.cli(*args).rc == 0
    before = project.trials("same")
    r = project.cli(*args)
    assert r.rc == 0, r.err
    assert "same settings" in r.out and "resuming" in r.out
    assert project.trials("same") == before  # finished: nothing more to run, nothing lost


def test_run_same_toml_by_another_path_resumes(project: Project) -> None:
    toml = project.toml(max_epochs=1)
    assert project.cli("run", toml.name, "--trials", 1, "--session", "pth", "--headless").rc == 0
    r = project.cli("run", str(toml), "--trials", 1, "--session", "pth", "--headless")
    assert r.rc == 0, r.err
    assert "resuming" in r.out


def test_run_bad_session_name(inproc, project: Project) -> None:
    r = inproc("run", project.toml().name, "--session", "bad name/../x", "--headless")
    r.assert_user_error("session name")
    assert project.session_names() == []


# ---------------------------------------------------------------------------------------------- resume


def test_resume_extends_a_finished_session_with_trials(project: Project) -> None:
    toml = project.toml(max_epochs=2)
    assert project.cli("run", toml.name, "--trials", 2, "--session", "ext", "--headless").rc == 0
    before = project.trials("ext")
    r = project.cli("resume", "ext", "--trials", 3, "--headless")
    assert r.rc == 0, r.err
    assert "resuming session ext" in r.out
    assert "5" in r.out and "budget" in r.out  # "trial budget raised to 5"
    after = project.trials("ext")
    assert [t["number"] for t in after] == [0, 1, 2, 3, 4]
    assert after[:2] == before  # the old trials are untouched
    assert all(t["state"] == "complete" for t in after)
    assert [int(m["n"]) for m in trial_lines(r.out)] == [2, 3, 4]
    s = next(s for s in json.loads(project.cli("sessions", "--json").out) if s["name"] == "ext")
    assert (s["trials"], s["done"], s["state"]) == (5, 5, "finished")


def test_resume_continues_with_the_session_strategy_seed_and_budget(project: Project) -> None:
    """Two trials now, three more on resume: the same configs as one run of five with that seed."""
    toml = project.toml(max_epochs=1)
    assert project.cli("run", toml.name, "--trials", 5, "--session", "whole", "--seed", 11, "--headless").rc == 0
    assert project.cli("run", toml.name, "--trials", 2, "--session", "part", "--seed", 11, "--headless").rc == 0
    assert project.cli("resume", "part", "--trials", 3, "--headless").rc == 0
    whole, part = project.trials("whole"), project.trials("part")
    assert [t["config"] for t in part] == [t["config"] for t in whole]
    assert [t["budget"] for t in part] == [1] * 5


def test_resume_from_another_directory(project: Project) -> None:
    toml = project.toml(max_epochs=1)
    assert project.cli("run", toml.name, "--trials", 1, "--session", "far", "--headless").rc == 0
    elsewhere = project.root / "elsewhere"
    elsewhere.mkdir()
    r = project.cli("resume", "far", "--trials", 1, "--headless", cwd=elsewhere)
    assert r.rc == 0, r.err
    assert [t["state"] for t in project.trials("far")] == ["complete", "complete"]


def test_a_failed_resume_leaves_the_budget_unchanged(project: Project) -> None:
    toml = project.toml(objective="gone_module:objective", max_epochs=1)
    (project.root / "gone_module.py").write_text((project.root / "_objectives.py").read_text()
                                                  + "\nobjective = quadratic\n")
    assert project.cli("run", toml.name, "--trials", 1, "--session", "gone", "--headless").rc == 0
    (project.root / "gone_module.py").unlink()
    project.cli("resume", "gone", "--trials", 4, "--headless").assert_user_error("gone_module")
    assert project.sql("SELECT n_trials FROM sessions WHERE name = 'gone'") == [(1,)]


def test_resume_of_a_python_api_session_is_a_clear_error(inproc, project: Project) -> None:
    import tuitune as tt
    from tests.functional import _objectives

    tt.tune(_objectives.quadratic, tt.Space(x=tt.Float(0.0, 1.0)), trials=2, max_epochs=1, db=project.db,
            session="api")
    inproc("resume", "api", "--headless").assert_user_error("api", "tt.tune")
    r = inproc("show", "api", "--json")
    assert r.rc == 0 and len(json.loads(r.out)["trials"]) == 2
    assert inproc("export", "api", "-o", "api.json").rc == 0
    assert json.loads((project.root / "api.json").read_text())["session"] == "api"


def test_resume_unknown_session(inproc, project: Project) -> None:
    inproc("run", project.toml(max_epochs=1).name, "--trials", 1, "--session", "known", "--headless")
    r = inproc("resume", "nosuch", "--headless")
    r.assert_user_error("nosuch", "known")


def test_resume_with_set_on_a_random_session_is_refused(inproc, project: Project) -> None:
    inproc("run", project.toml(max_epochs=1).name, "--trials", 1, "--session", "rs", "--headless")
    r = inproc("resume", "rs", "--set", "x=0.2", "--headless")
    r.assert_user_error("manual")


# ---------------------------------------------------------------------------------------------- sessions


def test_sessions_table_and_json(project: Project) -> None:
    toml = project.toml(max_epochs=1)
    assert project.cli("run", toml.name, "--trials", 2, "--session", "one", "--headless").rc == 0
    assert project.cli("run", toml.name, "--strategy", "manual", "--session", "two", "--headless").rc == 0
    r = project.cli("sessions")
    assert r.rc == 0, r.err
    for needle in ("one", "two", "random", "manual", "synth", "2/2", "finished"):
        assert needle in r.out
    doc = json.loads(project.cli("sessions", "--json").out)
    by_name = {s["name"]: s for s in doc}
    assert set(by_name) == {"one", "two"}
    one = by_name["one"]
    for key in ("name", "preset", "strategy", "metric", "direction", "seed", "max_epochs", "trials", "done",
                "best", "state", "space"):
        assert key in one
    assert (one["preset"], one["strategy"], one["metric"], one["direction"]) == ("synth", "random", "val_loss", "minimize")
    assert (one["trials"], one["done"], one["state"]) == (2, 2, "finished")
    assert one["best"] == pytest.approx(min(t["value"] for t in project.trials("one")))
    assert by_name["two"]["done"] == 1


def test_sessions_of_a_missing_database_is_a_clear_error(inproc, project: Project) -> None:
    r = inproc("sessions")
    r.assert_user_error(str(project.db))
    assert not project.db.exists()


# ---------------------------------------------------------------------------------------------- show


def test_show_prints_settings_and_leaderboard(project: Project) -> None:
    toml = project.toml(max_epochs=2)
    assert project.cli("run", toml.name, "--trials", 3, "--session", "sh", "--seed", 5, "--headless").rc == 0
    r = project.cli("show", "sh")
    assert r.rc == 0, r.err
    for needle in ("sh", "synth", "random", "seed 5", "val_loss", "minimize", "2 epochs", "3/3", "finished", "rank"):
        assert needle in r.out, needle
    rows = [line for line in r.out.splitlines() if "complete" in line]
    assert len(rows) == 3


def test_show_json_has_session_trials_and_epoch_rows(project: Project) -> None:
    toml = project.toml(objective="_objectives:flaky", max_epochs=3, defaults={"fail_above": 0.5})
    r = project.cli("run", toml.name, "--trials", 6, "--session", "sj", "--max-failures", 10, "--headless")
    assert r.rc == 0, r.err
    doc = show_json(project, "sj")
    assert doc["session"]["name"] == "sj"
    assert doc["session"]["strategy"] == "random" and doc["session"]["metric"] == "val_loss"
    trials = doc["trials"]
    assert [t["number"] for t in trials] == list(range(6))
    states = {t["state"] for t in trials}
    assert states == {"complete", "failed"}, states  # seed 0 gives both sides of x = 0.5
    for t in trials:
        for key in ("number", "state", "config", "value", "budget", "error", "epochs"):
            assert key in t
        assert set(t["config"]) == {"x", "units", "act", "tag", "fail_above"}
        assert t["config"]["tag"] == "synthetic"
        assert t["budget"] == 3
        epochs = [e["epoch"] for e in t["epochs"]]
        if t["state"] == "complete":
            assert t["error"] is None
            assert epochs == [1, 2, 3]
            assert t["value"] == pytest.approx(min(e["val_loss"] for e in t["epochs"]))
        else:
            assert "RuntimeError" in t["error"] and "synthetic failure" in t["error"]
            assert t["value"] is None
            assert epochs == [1]
        for e in t["epochs"]:
            assert isinstance(e["val_loss"], float)


def test_show_prints_notes_and_no_doubled_stopped(inproc, project: Project) -> None:
    from tuitune.core.store import Store

    inproc("run", project.toml(max_epochs=1).name, "--trials", 2, "--session", "nt", "--headless")
    store = Store(project.db)
    store.set_note("nt", "lr looked too high")
    store.set_note("nt", "the odd one", trial=1)
    store.update_session("nt", state="stopped", message="the TUI was closed")
    store.close()
    r = inproc("show", "nt")
    assert "note: lr looked too high" in r.out and "note on trial 1: the odd one" in r.out
    assert "state stopped: the TUI was closed" in r.out and "stopped: stopped" not in r.out
    doc = json.loads(inproc("show", "nt", "--json").out)
    assert doc["session"]["note"] == "lr looked too high" and doc["trials"][1]["note"] == "the odd one"


def test_show_unknown_session_names_the_known_ones(inproc, project: Project) -> None:
    inproc("run", project.toml(max_epochs=1).name, "--trials", 1, "--session", "present", "--headless")
    for args in (("show", "absent"), ("show", "absent", "--json")):
        r = inproc(*args)
        r.assert_user_error("absent", "present")


def test_debug_shows_the_traceback(project: Project) -> None:
    project.cli("run", project.toml(max_epochs=1).name, "--trials", 1, "--session", "d", "--headless")
    plain = project.cli("show", "nosuch")
    plain.assert_user_error("nosuch")
    for args in (("--debug", "show", "nosuch"), ("show", "nosuch", "--debug")):
        r = project.cli(*args)
        assert r.rc != 0
        assert "Traceback" in r.err and "SessionNotFoundError" in r.err


# ---------------------------------------------------------------------------------------------- export


def test_export_writes_the_documented_fields(project: Project) -> None:
    toml = project.toml(objective="_objectives:with_torch", max_epochs=2)
    assert project.cli("run", toml.name, "--trials", 3, "--session", "ex", "--headless").rc == 0
    (project.root / "out").mkdir()
    r = project.cli("export", "ex", "-o", "out/best.json")
    assert r.rc == 0, r.err
    path = project.root / "out" / "best.json"
    assert str(path.name) in r.out
    doc = json.loads(path.read_text())
    trials = project.trials("ex")
    best = min((t for t in trials if t["state"] == "complete"), key=lambda t: t["value"])
    assert doc["session"] == "ex"
    assert doc["preset"] == "synth"
    assert doc["strategy"] == "random"
    assert (doc["metric"], doc["direction"]) == ("val_loss", "minimize")
    assert doc["value"] == pytest.approx(best["value"])
    assert doc["trial"] == best["number"]
    assert doc["config"] == best["config"]
    assert set(doc["config"]) == {"x", "units", "act", "tag"}  # searched and fixed
    assert doc["config"]["tag"] == "synthetic"
    assert [e["epoch"] for e in doc["epochs"]] == [1, 2]
    assert all("val_loss" in e for e in doc["epochs"])
    import torch

    v = doc["versions"]
    assert v["python"] == platform.python_version()
    assert v["torch"] == torch.__version__
    assert v["tuitune"] == tuitune.__version__


def test_export_default_path_and_atomic_replace(project: Project) -> None:
    assert project.cli("run", project.toml(max_epochs=1).name, "--trials", 2, "--session", "at", "--headless").rc == 0
    target = project.root / "at-best.json"
    target.write_text('{"old": true}\n')
    link = project.root / "old-link.json"
    os.link(target, link)  # a second name for the old file: an in-place rewrite would change it too
    r = project.cli("export", "at")
    assert r.rc == 0, r.err
    assert "at-best.json" in r.out
    assert json.loads(link.read_text()) == {"old": True}
    assert json.loads(target.read_text())["session"] == "at"
    assert target.stat().st_ino != link.stat().st_ino  # replaced by a rename, not rewritten
    leftovers = [p.name for p in project.root.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".at-best")]
    assert leftovers == []


def test_export_of_a_session_without_a_complete_trial_is_refused(inproc, project: Project) -> None:
    toml = project.toml(objective="_objectives:flaky", max_epochs=2, defaults={"fail_above": 0.0})
    r = inproc("run", toml.name, "--trials", 2, "--session", "nf", "--max-failures", 5, "--headless")
    assert r.rc == 0, r.err
    assert {t["state"] for t in project.trials("nf")} == {"failed"}
    r = inproc("export", "nf", "-o", "nf.json")
    r.assert_user_error("nf", "no complete trial")
    assert not (project.root / "nf.json").exists()


def test_export_errors(inproc, project: Project) -> None:
    inproc("run", project.toml(max_epochs=1).name, "--trials", 1, "--session", "e1", "--headless")
    inproc("export", "nosuch").assert_user_error("nosuch")
    inproc("export", "e1", "-o", "missing-dir/best.json").assert_user_error("missing-dir")
    (project.root / "adir").mkdir()
    inproc("export", "e1", "-o", "adir").assert_user_error("folder")


def test_too_many_failures_stops_the_session(project: Project) -> None:
    toml = project.toml(objective="_objectives:flaky", max_epochs=2, defaults={"fail_above": 0.0})
    r = project.cli("run", toml.name, "--trials", 5, "--session", "ff", "--max-failures", 2, "--headless")
    assert r.rc != 0
    assert "Traceback" not in r.err
    assert "2 trials in a row failed" in r.err and "synthetic failure" in r.err
    assert [t["state"] for t in project.trials("ff")] == ["failed", "failed"]


# ---------------------------------------------------------------------------------------------- presets


def _bundled_presets(inproc) -> str:
    r = inproc("presets", db=False)
    assert r.rc == 0, r.err
    return r.out


def test_presets_lists_the_bundled_presets(inproc) -> None:
    out = _bundled_presets(inproc)
    assert "preset" in out and "description" in out
    from tuitune.training.presets import bundled_names

    for name in bundled_names():
        assert name[:12] in out


def test_digits_mlp_preset_runs(inproc, project: Project) -> None:
    if "digits-mlp" not in _bundled_presets(inproc):
        pytest.skip("the digits-mlp preset is not bundled")
    r = project.cli("run", "digits-mlp", "--trials", 1, "--max-epochs", 1, "--session", "dg", "--device", "cpu",
                    "--headless", timeout=300)
    assert r.rc == 0, r.err
    [t] = project.trials("dg")
    assert t["state"] == "complete" and 0.0 <= t["value"] <= 1.0
    assert show_json(project, "dg")["session"]["preset"] == "digits-mlp"


# ---------------------------------------------------------------------------------------------- --set


def test_manual_run_with_one_set(project: Project) -> None:
    toml = project.toml(max_epochs=2)
    r = project.cli("run", toml.name, "--strategy", "manual", "--set", "x=0.7", "--session", "man", "--headless")
    assert r.rc == 0, r.err
    [t] = project.trials("man")
    assert t["state"] == "complete"
    assert t["config"] == {"x": 0.7, "units": 16, "act": "relu", "tag": "synthetic"}
    assert t["meta"]["change"] == {"x": 0.7}
    assert t["meta"]["base"] == "defaults"
    # The next change, on resume.
    r = project.cli("resume", "man", "--set", "units=32", "--headless")
    assert r.rc == 0, r.err
    t0, t1 = project.trials("man")
    assert t0 == t
    assert t1["config"]["units"] == 32 and t1["meta"]["change"] == {"units": 32}


def test_manual_run_without_set_runs_the_defaults(inproc, project: Project) -> None:
    r = inproc("run", project.toml(max_epochs=1).name, "--strategy", "manual", "--session", "md", "--headless")
    assert r.rc == 0, r.err
    [t] = project.trials("md")
    assert t["config"] == {"x": 0.5, "units": 16, "act": "relu", "tag": "synthetic"}


def test_manual_run_with_two_sets_is_refused(inproc, project: Project) -> None:
    toml = project.toml()
    r = inproc("run", toml.name, "--strategy", "manual", "--set", "x=0.7", "--set", "units=32", "--session", "m2",
               "--headless")
    r.assert_user_error("one parameter at a time", "x", "units")
    assert project.session_names() == []


def test_set_fixes_a_parameter_for_random(project: Project) -> None:
    toml = project.toml(max_epochs=1)
    r = project.cli("run", toml.name, "--trials", 4, "--set", "units=32", "--session", "fx", "--headless")
    assert r.rc == 0, r.err
    trials = project.trials("fx")
    assert len(trials) == 4
    assert {t["config"]["units"] for t in trials} == {32}
    assert len({t["config"]["x"] for t in trials}) == 4  # the others are still searched
    for m in trial_lines(r.out):
        assert "units=" not in m["params"] and "x=" in m["params"]
    doc = show_json(project, "fx")
    assert doc["session"]["space"]["units"]["type"] == "fixed"
    assert all(t["config"]["units"] == 32 for t in doc["trials"])


def test_set_fixes_a_parameter_for_grid(inproc, project: Project) -> None:
    toml = project.toml(max_epochs=1, space={"x": {"type": "float", "low": 0.0, "high": 1.0},
                                             "act": {"type": "choice", "values": ["relu", "tanh"]}})
    r = inproc("run", toml.name, "--strategy", "grid", "--grid-points", 3, "--set", "act=tanh", "--session", "gf",
               "--headless")
    assert r.rc == 0, r.err
    trials = project.trials("gf")
    assert sorted(t["config"]["x"] for t in trials) == [0.0, 0.5, 1.0]
    assert {t["config"]["act"] for t in trials} == {"tanh"}


@pytest.mark.parametrize("strategy", ["random", "manual"])
@pytest.mark.parametrize(
    "item, needles",
    [
        ("x=abc", ["x", "abc"]),
        ("units=abc", ["units"]),
        ("units=2.5", ["units"]),
        ("act=sigmoid", ["act"]),
        ("nosuch=1", ["nosuch", "no parameter"]),
        ("x", ["KEY=VALUE"]),
    ],
)
def test_bad_set_values_are_clear_errors(inproc, project: Project, strategy: str, item: str, needles: list) -> None:
    r = inproc("run", project.toml().name, "--strategy", strategy, "--set", item, "--session", "bad", "--headless")
    r.assert_user_error(*needles)
    assert project.session_names() == []


def test_set_outside_the_space_for_random_is_refused(inproc, project: Project) -> None:
    r = inproc("run", project.toml().name, "--set", "x=5", "--session", "out", "--headless")
    r.assert_user_error("x", "5")
    assert project.session_names() == []


def test_set_outside_the_space_for_manual_is_a_clear_error(inproc, project: Project) -> None:
    r = inproc("run", project.toml().name, "--strategy", "manual", "--set", "x=5", "--session", "mo", "--headless")
    r.assert_user_error("x", "5")


def test_set_outside_the_space_for_manual_writes_nothing(inproc, project: Project) -> None:
    r = inproc("run", project.toml().name, "--strategy", "manual", "--set", "x=5", "--session", "mo", "--headless")
    assert r.rc != 0
    assert project.session_names() == []


def test_a_session_refused_by_its_strategy_is_not_left_running(inproc, project: Project) -> None:
    inproc("run", project.toml().name, "--strategy", "manual", "--set", "x=5", "--session", "mo", "--headless")
    rows = project.sql("SELECT state FROM sessions WHERE name = 'mo'") if project.db.exists() else []
    assert rows == [] or rows[0][0] != "running"


# ---------------------------------------------------------------------------------------------- preset and code errors


def test_unknown_preset(inproc, project: Project) -> None:
    r = inproc("run", "no-such-preset", "--headless")
    r.assert_user_error("no-such-preset", "unknown preset")
    r = inproc("run", "missing.toml", "--headless")
    r.assert_user_error("missing.toml")
    assert not project.db.exists()


def test_malformed_toml(inproc, project: Project) -> None:
    bad = project.root / "broken.toml"
    bad.write_text('name = "x"\nmetric = \n[space\n')
    r = inproc("run", bad.name, "--headless")
    r.assert_user_error("broken.toml", "TOML")
    assert not project.db.exists()


def test_toml_with_a_bad_key_names_the_file_and_key(inproc, project: Project) -> None:
    toml = project.toml("badkey.toml", direction="sideways")
    inproc("run", toml.name, "--headless").assert_user_error("badkey.toml", "direction", "sideways")
    toml = project.toml("badspace.toml", space={"x": {"type": "float", "low": 1.0, "high": 0.0}})
    inproc("run", toml.name, "--headless").assert_user_error("badspace.toml", "space.x")
    toml = project.toml("badobj.toml", objective="not a path")
    inproc("run", toml.name, "--headless").assert_user_error("badobj.toml", "objective")


def _module(project: Project, source: str) -> str:
    name = f"usermod_{os.getpid()}_{time.monotonic_ns()}"
    (project.root / f"{name}.py").write_text(source)
    return name


@pytest.mark.parametrize(
    "source, needles",
    [
        ("import no_such_package_xyz\n", ["no_such_package_xyz"]),
        ("def objective(config, trial)\n    pass\n", ["SyntaxError"]),
        ("raise RuntimeError('module-level failure')\n", ["module-level failure"]),
    ],
    ids=["missing-dependency", "syntax-error", "raises"],
)
def test_objective_module_that_fails_to_import(inproc, project: Project, source: str, needles: list) -> None:
    mod = _module(project, source)
    toml = project.toml("user.toml", objective=f"{mod}:objective")
    r = inproc("run", toml.name, "--trials", 1, "--headless")
    r.assert_user_error("user.toml", mod, "cannot import", *needles)


def test_objective_module_that_does_not_exist(project: Project) -> None:
    toml = project.toml("user.toml", objective="nowhere_module:objective")
    project.cli("run", toml.name, "--trials", 1, "--headless").assert_user_error("user.toml", "nowhere_module")


def test_objective_that_fails_to_import_writes_nothing(project: Project) -> None:
    toml = project.toml("user.toml", objective="nowhere_module:objective")
    project.cli("run", toml.name, "--trials", 1, "--headless").assert_user_error("nowhere_module")
    assert project.session_names() == []


@pytest.mark.parametrize(
    "objective, needles",
    [
        ("_objectives:nosuch", ["no function", "nosuch"]),
        ("_objectives:NOT_A_FUNCTION", ["not a function"]),
        ("_objectives:wrong_signature", ["wrong_signature", "(config, trial)"]),
    ],
    ids=["missing-function", "not-callable", "wrong-signature"],
)
def test_objective_function_problems(inproc, project: Project, objective: str, needles: list) -> None:
    toml = project.toml("user.toml", objective=objective)
    r = inproc("run", toml.name, "--trials", 1, "--headless")
    r.assert_user_error("user.toml", "_objectives", *needles)


def test_objective_is_imported_from_the_current_directory(project: Project, tmp_path: Path) -> None:
    """The TOML in another folder; the module only in the current directory."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    toml = project.toml("cwd.toml", objective="_objectives:quadratic", max_epochs=1)
    moved = elsewhere / "cwd.toml"
    toml.rename(moved)
    r = project.cli("run", str(moved), "--trials", 1, "--session", "cwd", "--headless")
    assert r.rc == 0, r.err
    assert project.trials("cwd")[0]["state"] == "complete"


# ---------------------------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    "strategy, option, owner",
    [
        ("random", ["--factor", "3"], "hyperband"),
        ("random", ["--bracket", "0"], "hyperband"),
        ("grid", ["--n-initial", "3"], "bayes"),
        ("bayes", ["--grid-points", "3"], "grid"),
        ("hyperband", ["--max-grid", "10"], "grid"),
        ("manual", ["--factor", "2"], "hyperband"),
        ("bayes", ["--sampler", "bayes"], "hyperband"),
        ("random", ["--min-epochs", "2"], "asha"),
        ("hyperband", ["--min-epochs", "2"], "asha"),
    ],
)
def test_option_of_another_strategy_is_refused(inproc, project: Project, strategy: str, option: list, owner: str) -> None:
    r = inproc("run", project.toml().name, "--strategy", strategy, *option, "--headless")
    r.assert_user_error(option[0], owner, strategy)
    assert not project.db.exists()


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--strategy", "hyperband", "--factor", "1"], ["factor"]),
        (["--strategy", "grid", "--max-grid", "3"], ["grid"]),
        (["--strategy", "asha", "--factor", "1"], ["asha", "factor"]),
        (["--strategy", "asha", "--min-epochs", "99"], ["asha", "min_epochs", "99"]),
    ],
)
def test_bad_strategy_option_values(inproc, project: Project, args: list, needles: list) -> None:
    r = inproc("run", project.toml().name, *args, "--session", "so", "--headless")
    r.assert_user_error(*needles)
    assert project.session_names() == []


@pytest.mark.parametrize(
    "args",
    [
        ["run", "synth.toml", "--strategy", "nosuch"],
        ["run", "synth.toml", "--trials", "0"],
        ["run", "synth.toml", "--trials", "many"],
        ["nosuch-command"],
    ],
)
def test_usage_errors(project: Project, args: list) -> None:
    project.toml()
    r = project.cli(*args)
    assert r.rc == 2
    assert "Traceback" not in r.err
    assert r.err_lines[-1].startswith("tuitune") and "error:" in r.err_lines[-1]


# ---------------------------------------------------------------------------------------------- database files


def _foreign_sqlite(path: Path) -> None:
    c = sqlite3.connect(path)
    c.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    c.execute("INSERT INTO customers (name) VALUES ('ada')")
    c.commit()
    c.close()


def _tuitune_db(path: Path) -> None:
    store = Store(path)
    store.create_session("s", strategy="random", options={}, space={}, metric="val_loss", direction="minimize",
                         seed=0, max_epochs=1, n_trials=1)
    store.close()
    c = sqlite3.connect(path)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.execute("PRAGMA journal_mode = DELETE")
    c.close()


def _newer(path: Path) -> None:
    _tuitune_db(path)
    c = sqlite3.connect(path)
    c.execute("PRAGMA user_version = 99")
    c.close()


def _damaged(path: Path) -> None:
    _tuitune_db(path)
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    for i in range(page, len(data)):  # every page after the first: garbage
        data[i] = (i * 7 + 13) % 256
    path.write_bytes(bytes(data))


DB_KINDS = {
    "text": (lambda p: p.write_text("these are my notes, not a database\n" * 50), "not a tuitune database"),
    "binary": (lambda p: p.write_bytes(bytes(range(256)) * 40), "not a tuitune database"),
    "other-sqlite": (_foreign_sqlite, "another program"),
    "truncated": (lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\x10\x00" * 10), "truncated"),
    "damaged": (_damaged, "damaged"),
    "newer": (_newer, "newer"),
}


@pytest.mark.parametrize("kind", list(DB_KINDS))
def test_a_database_that_is_not_ours_is_refused_and_left_unchanged(project: Project, kind: str) -> None:
    make, needle = DB_KINDS[kind]
    make(project.db)
    for side in ("-wal", "-shm", "-journal"):
        Path(str(project.db) + side).unlink(missing_ok=True)
    before = project.db.read_bytes()
    toml = project.toml(max_epochs=1)
    for args in (
        ("run", toml.name, "--trials", 1, "--session", "z", "--headless"),
        ("sessions",),
        ("show", "s"),
        ("export", "s"),
        ("resume", "s", "--headless"),
    ):
        r = project.cli(*args)
        line = r.assert_user_error(needle)
        assert str(project.db.name) in line
        assert project.db.read_bytes() == before, f"{args[0]} changed the file"
    assert not Path(str(project.db) + "-wal").exists() or Path(str(project.db) + "-wal").stat().st_size == 0


def test_a_folder_as_database(inproc, project: Project) -> None:
    project.db.mkdir()
    inproc("sessions").assert_user_error("folder")


# ---------------------------------------------------------------------------------------------- processes


def _slow_toml(project: Project, log: Path, *, epoch_s: float, max_epochs: int, objective: str = "_objectives:slow"):
    return project.toml(
        "slow.toml", objective=objective, max_epochs=max_epochs, defaults={"epoch_s": epoch_s, "log": str(log)}
    )


def test_one_process_per_session_and_readers_while_it_runs(project: Project) -> None:
    log = project.root / "busy.log"
    # It runs until the test stops it (never on its own: the readers below may take minutes on a busy machine).
    toml = _slow_toml(project, log, epoch_s=0.3, max_epochs=100_000)
    fast = project.toml("fast.toml", max_epochs=1)
    bg = project.popen("run", toml.name, "--trials", 1, "--session", "busy", "--headless", tag="busy")
    try:
        project.wait_until(lambda: log_lines(log), timeout=120, what="the first committed epoch")
        # A second run or resume of the same session is refused, naming the owner.
        for args in (("resume", "busy", "--headless"),
                     ("run", toml.name, "--trials", 1, "--session", "busy", "--headless")):
            r = project.cli(*args)
            line = r.assert_user_error("busy", f"pid {bg.pid}")
            assert "database is locked" not in line
        # Readers work while it runs.
        doc = show_json(project, "busy")
        assert doc["trials"][0]["state"] == "running" and doc["trials"][0]["epochs"]
        r = project.cli("sessions", "--json")
        assert r.rc == 0 and any(s["name"] == "busy" and s["state"] == "running" for s in json.loads(r.out))
        assert project.cli("show", "busy").rc == 0
        project.cli("export", "busy").assert_user_error("no complete trial")
        # Another session of the same database runs at the same time.
        r = project.cli("run", fast.name, "--trials", 2, "--session", "other", "--headless")
        assert r.rc == 0, r.err
        assert [t["state"] for t in project.trials("other")] == ["complete", "complete"]
        assert bg.proc.poll() is None
    finally:
        bg.signal(signal.SIGTERM)
        res = bg.wait(timeout=120)
    assert "Traceback" not in res.err
    assert project.trials("busy")[0]["state"] == "interrupted"


def test_a_refused_resume_changes_nothing(project: Project) -> None:
    log = project.root / "busy.log"
    toml = _slow_toml(project, log, epoch_s=0.3, max_epochs=100_000)  # until the test stops it
    bg = project.popen("run", toml.name, "--trials", 1, "--session", "busy", "--headless", tag="busy")
    try:
        project.wait_until(lambda: log_lines(log), timeout=120, what="the first committed epoch")
        r = project.cli("resume", "busy", "--trials", 5, "--headless")
        r.assert_user_error(f"pid {bg.pid}")
        assert project.sql("SELECT n_trials FROM sessions WHERE name = 'busy'") == [(1,)]
    finally:
        bg.signal(signal.SIGTERM)
        bg.wait(timeout=120)


def test_a_killed_process_lock_is_taken_over(project: Project) -> None:
    log = project.root / "k.log"
    toml = _slow_toml(project, log, epoch_s=0.2, max_epochs=5)
    bg = project.popen("run", toml.name, "--trials", 2, "--session", "k", "--headless", tag="k")
    project.wait_until(lambda: len(log_lines(log)) >= 2, timeout=120, what="two committed epochs")
    bg.kill()
    running = [t["number"] for t in project.trials("k") if t["state"] == "running"]
    assert len(running) == 1  # as the dead process left it
    lock = json.loads((project.root / "runs.db.d" / "locks" / "k.lock").read_text())
    assert lock["pid"] == bg.pid
    r = project.cli("resume", "k", "--headless")
    assert r.rc == 0, r.err
    trials = project.trials("k")
    assert [(t["number"], t["state"]) for t in trials] == [(0, "complete"), (1, "complete")]
    assert project.live_epochs("k", running[0]) == [1, 2, 3, 4, 5]
    # the interrupted trial was re-run first, under its own number
    assert int(trial_lines(r.out)[0]["n"]) == running[0]


SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_signal_stops_after_the_epoch_and_the_session_resumes(project: Project, sig: int) -> None:
    log = project.root / "sig.log"
    budget = 6
    toml = _slow_toml(project, log, epoch_s=0.5, max_epochs=budget)
    args = ("run", toml.name, "--trials", 1, "--session", "sg", "--headless")
    bg = project.popen(*args, tag="sig")
    project.wait_until(lambda: log_lines(log), timeout=120, what="the first committed epoch")
    seen = max(int(line[1]) for line in log_lines(log))
    t0 = time.monotonic()
    bg.signal(sig)
    r = bg.wait(timeout=60)
    assert time.monotonic() - t0 < 30
    name = signal.Signals(sig).name
    assert r.rc in (130, 128 + sig), (r.rc, r.err)
    assert "Traceback" not in r.err + r.out
    assert name in r.err and "tuitune resume sg" in r.err
    [t] = project.trials("sg")
    assert t["state"] == "interrupted"
    assert name in (t["reason"] or "")
    live = project.live_epochs("sg", 0)
    assert live == list(range(1, len(live) + 1))
    assert seen <= len(live) <= seen + 2 < budget  # the epoch under way was finished, no more began
    assert project.sql("SELECT state FROM sessions WHERE name = 'sg'") == [("stopped",)]
    # Resumable, by 'run' with the very same settings too: the same trial finishes.
    r = project.cli(*args)
    assert r.rc == 0, r.err
    assert "resuming" in r.out
    [t] = project.trials("sg")
    assert (t["number"], t["state"]) == (0, "complete")
    assert project.live_epochs("sg", 0) == list(range(1, budget + 1))


def test_a_second_ctrl_c_exits_at_once(project: Project) -> None:
    log = project.root / "cc.log"
    toml = _slow_toml(project, log, epoch_s=120.0, max_epochs=3, objective="_objectives:long_sleep")
    bg = project.popen("run", toml.name, "--trials", 1, "--session", "cc", "--headless", tag="cc")
    project.wait_until(lambda: log_lines(log), timeout=120, what="the first epoch to start")
    bg.signal(signal.SIGINT)
    time.sleep(1.0)
    assert bg.proc.poll() is None  # the first one waits for the epoch (two minutes long)
    t0 = time.monotonic()
    bg.signal(signal.SIGINT)
    r = bg.wait(timeout=60)
    assert time.monotonic() - t0 < 30
    assert r.rc == 130
    assert "Traceback" not in r.err + r.out
    assert r.err_lines[-1] == "tuitune: interrupted"
    [t] = project.trials("cc")
    assert t["state"] == "interrupted"
    assert project.live_epochs("cc", 0) == []


# ---------------------------------------------------------------------------------------------- found bugs


def test_run_limits_reach_the_tui(inproc, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run in a terminal hands the TUI a Launch that carries --max-failures and --trial-timeout."""
    import sys

    from tuitune import cli

    got: list = []
    monkeypatch.setattr(cli, "_tui_available", lambda: True)
    monkeypatch.setattr(cli, "_tui", lambda args, launch: got.append(launch) or 0)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    r = inproc("run", project.toml().name, "--session", "lim", "--max-failures", 7, "--trial-timeout", 9.5)
    assert r.rc == 0, r.err
    runner = got[0].runner()
    assert (runner.max_failures, runner.trial_timeout) == (7, 9.5)
    r = inproc("resume", "lim", "--max-failures", 5)
    runner = got[1].runner()
    assert (runner.max_failures, runner.trial_timeout) == (5, None)


def test_closed_stdout_stops_the_session_cleanly(project: Project) -> None:
    """``tuitune run ... --headless | head -2``: the session is stopped and resumable, never failed."""
    import subprocess

    toml = project.toml(objective="_objectives:slow", defaults={"epoch_s": 0.05}, max_epochs=3)
    p = subprocess.Popen(
        project.args("run", toml.name, "--trials", 50, "--session", "piped", "--headless"), cwd=project.root,
        env=project.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert p.stdout is not None
    lines = [p.stdout.readline() for _ in range(2)]  # what `head -2` reads before it exits
    p.stdout.close()
    _, err = p.communicate(timeout=120)
    assert all(lines), lines  # two lines were printed before the pipe closed
    assert "Traceback" not in err
    assert p.returncode == 0, err
    state, message = project.sql("SELECT state, message FROM sessions WHERE name = 'piped'")[0]
    assert state == "stopped", message
    assert f"tuitune resume piped --db {project.db}" in err, err
    r = project.cli("resume", "piped", "--headless")  # resumable: it runs on to the end
    assert r.rc == 0, r.err
    assert len([t for t in project.trials("piped") if t["state"] == "complete"]) == 50


def test_setup_failure_leaves_no_session_and_reports_once(project: Project) -> None:
    toml = project.toml(objective="_objectives:setup_fails")
    for _ in range(2):
        r = project.cli("run", toml.name, "--trials", 2, "--headless")
        assert r.rc != 0
        assert (r.out + r.err).count("is not in /nowhere") == 1, r.out + r.err
        assert project.session_names() == []


def test_export_respects_the_umask(project: Project) -> None:
    toml = project.toml()
    assert project.cli("run", toml.name, "--trials", 1, "--session", "um", "--headless").rc == 0
    old = os.umask(0o022)
    try:
        r = project.cli("export", "um", "-o", "best.json")
    finally:
        os.umask(old)
    assert r.rc == 0, r.err
    assert (project.root / "best.json").stat().st_mode & 0o777 == 0o644


def test_every_resume_hint_names_a_non_default_db(project: Project, tmp_path: Path) -> None:
    """Hints printed by the runner (too many failures), the API and the headless display paste as is."""
    import tuitune as tt
    from tuitune.core.errors import ExportError, TooManyFailuresError

    def fails(config, trial):
        raise RuntimeError("boom")

    with pytest.raises(TooManyFailuresError) as e:
        tt.tune(fails, {"x": tt.Float(0, 1)}, trials=5, db=project.db, session="demo", max_failures=2, workers=0)
    assert f"tuitune resume demo --db {project.db}" in str(e.value)
    with pytest.raises(ExportError) as e2:
        tt.load("demo", db=project.db).export(tmp_path / "x.json")
    assert f"tuitune resume demo --db {project.db}" in str(e2.value)
    toml = project.toml(objective="_objectives:slow", defaults={"epoch_s": 0.05}, max_epochs=2)
    bg = project.popen("run", toml.name, "--trials", 100, "--session", "hint", "--headless")
    project.wait_until(lambda: any(t["state"] == "complete" for t in project.trials("hint")), what="a trial")
    bg.signal(signal.SIGINT)
    r = bg.wait()
    assert f"tuitune resume hint --db {project.db}" in r.err, r.err
    assert f"resume with: tuitune resume hint --db {project.db}" in " ".join(r.out.split()), r.out


def test_unknown_strategy_is_one_line(inproc, project: Project) -> None:
    r = inproc("run", project.toml().name, "--strategy", "bayse", "--headless")
    r.assert_user_error("'bayse'", "manual, grid, random, bayes, hyperband")


def test_grid_error_names_the_flag_on_the_command_line(inproc, project: Project) -> None:
    import tuitune as tt
    from tuitune.core.errors import StrategyError

    r = inproc("run", project.toml().name, "--strategy", "grid", "--max-grid", "3", "--headless")
    line = r.assert_user_error("--max-grid")
    assert "max_size" not in line
    with pytest.raises(StrategyError, match=r"raise max_size \(--max-grid on the command line\)"):
        tt.tune(lambda c, t: 0.0, {"x": tt.Int(0, 9)}, strategy="grid", max_size=3, db=project.db)


def test_a_resume_keeps_the_stored_placement_and_reads_sessions_stored_before_it(inproc, project: Project) -> None:
    """Where trials run is stored as one value; a resume without flags runs them there again."""
    r = inproc("run", project.toml().name, "--session", "pl", "--devices", "cpu", "--workers", 2, "--trials", 2,
               "--headless")
    assert r.rc == 0, r.err
    s = show_json(project, "pl")["session"]
    assert (s["devices"], s["workers"], s["backend"]) == (["cpu"], 2, "local")
    r = inproc("resume", "pl", "--trials", 1, "--headless")
    assert r.rc == 0 and "trials run 2 workers on cpu" in r.out, r.out + r.err
    # A session stored before the placement was one value: its separate keys are read, then rewritten as one.
    store = Store(project.db)
    info = {k: v for k, v in store.session("pl").info.items() if k != "placement"}
    store.update_session("pl", info={**info, "device": "cpu", "devices": ["cpu"], "workers": 3, "backend": "local"})
    r = inproc("resume", "pl", "--trials", 1, "--headless")
    assert r.rc == 0 and "trials run 3 workers on cpu" in r.out, r.out + r.err
    assert Store(project.db).session("pl").info["placement"]["workers"] == 3
