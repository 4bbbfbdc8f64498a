"""The command line (docs/DESIGN.md 4.2-4.4): each command's output and each user error.

Most tests run the real ``tuitune`` entry point in a subprocess with ``--db`` in a temporary folder;
the ones that only need output and exit codes call ``tuitune.cli.main`` in-process (faster). Every
objective is a synthetic one from ``_objectives.py``, copied next to the TOML files (a user's module).
"""

from __future__ import annotations

import json
import math
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
from tests.support.project import Result
from tuitune.core.store.store import Store

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


def test_inactive_parameters_are_left_out_and_counts_are_singular(project: Project) -> None:
    space = {
        "x": {"type": "float", "low": 0.0, "high": 1.0},
        "units": {"type": "int", "low": 4, "high": 64},
        "opt": {"type": "choice", "values": ["sgd", "adam"]},
        "momentum": {"type": "float", "low": 0.5, "high": 0.99, "when": {"opt": ["sgd"]}},
        "beta1": {"type": "float", "low": 0.5, "high": 0.99, "when": {"opt": ["adam"]}},
    }
    toml = project.toml(max_epochs=1, space=space, defaults={"opt": "sgd", "momentum": 0.9, "beta1": 0.9})
    r = project.cli("run", toml.name, "--trials", 6, "--session", "cond", "--headless").ok()
    lines = trial_lines(r.out)
    assert len(lines) == 6 and "up to 1 epoch a trial" in r.out, r.out
    for m in lines:
        params = dict(kv.split("=", 1) for kv in m["params"].split())
        assert "-" not in params.values(), m.group(0)
        assert ("momentum" in params) == (params["opt"] == "sgd") and ("beta1" in params) == (params["opt"] == "adam")
    shown = project.cli("show", "cond").ok().out
    assert "up to 1 epoch," in shown and "=-" not in shown, shown


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


def test_settings_mismatch_names_only_what_the_user_set(project: Project) -> None:
    toml = project.toml(max_epochs=1)
    project.cli("run", toml.name, "--strategy", "bayes", "--trials", 1, "--session", "old", "--headless").ok()
    # As stored by a tuitune before bayes had its engine option: the option is absent.
    with sqlite3.connect(project.db) as c:
        c.execute("UPDATE sessions SET options = json_remove(options, '$.engine') WHERE name = 'old'")
    c.close()
    assert "engine" not in project.sql("SELECT options FROM sessions WHERE name = 'old'")[0][0]
    r = project.cli("run", toml.name, "--strategy", "bayes", "--trials", 1, "--seed", 1, "--session", "old", "--headless")
    line = r.assert_user_error("already exists", "seed")
    assert "engine" not in line and "None" not in line, line
    r = project.cli("run", toml.name, "--strategy", "bayes", "--trials", 2, "--session", "old", "--headless").ok()
    assert "resuming" in r.out


def test_typos_get_a_did_you_mean(inproc, project: Project) -> None:
    toml = project.toml(max_epochs=1)
    inproc("run", "digits-mlpp", "--headless").assert_user_error("did you mean 'digits-mlp'?")
    inproc("run", toml.name, "--set", "max_epoch=3", "--headless").assert_user_error("did you mean --max-epochs 3?")
    inproc("run", toml.name, "--strategy", "grud", "--headless").assert_user_error("did you mean 'grid'?")
    bad = project.root / "bad.toml"
    bad.write_text(toml.read_text().replace("max_epochs", "max_epoch"))
    inproc("run", bad.name, "--headless").assert_user_error("bad.toml", "did you mean 'max_epochs'?")
    # argparse's errors: one line and where to look, not the 14-line usage first; close options are named.
    for args, needle in ((("run", toml.name, "--trials", "0"), "see: tuitune run --help"),
                         (("run", toml.name, "--seeed", "3"), "did you mean --seed?"),
                         (("sessions", "--jsn"), "did you mean --json?"),
                         (("run", toml.name, "--units", "64"), "--set units=VALUE")):
        r = project.cli(*args)
        assert r.rc == 2 and "usage:" not in r.err, r.err
        r.assert_user_error(needle)


def test_run_existing_name_with_identical_settings_resumes(project: Project) -> None:
    toml = project.toml(max_epochs=2)
    args = ("run", toml.name, "--trials", 2, "--session", "same", "--seed", 3, "--headless")
    assert project.cli(*args).rc == 0
    before = project.trials("same")
    r = project.cli(*args)
    assert r.rc == 0, r.err
    assert "same settings" in r.out and "resuming" in r.out
    assert project.trials("same") == before  # finished: nothing more to run, nothing lost
    # Where trials run may change on a resume, and the budget may grow: the line says what differs.
    r = project.cli("run", toml.name, "--trials", 4, "--session", "same", "--seed", 3, "--headless",
                    "--workers", 0 if project.workers else 1).ok()
    line = next(x for x in r.out.splitlines() if "resuming" in x)
    assert "trial budget raised from 2 to 4" in line and "per device (was" in line, line
    assert len(project.trials("same")) == 4


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
    r = project.cli("resume", "ext", "--more", 3, "--headless")
    assert r.rc == 0, r.err
    assert "resuming session ext" in r.out
    assert "trial budget raised from 2 to 5" in r.out
    after = project.trials("ext")
    assert [t["number"] for t in after] == [0, 1, 2, 3, 4]
    assert after[:2] == before  # the old trials are untouched
    assert all(t["state"] == "complete" for t in after)
    assert [int(m["n"]) for m in trial_lines(r.out)] == [2, 3, 4]
    s = next(s for s in json.loads(project.cli("sessions", "--json").out) if s["name"] == "ext")
    assert (s["trials"], s["done"], s["state"]) == (5, 5, "finished")


def test_trials_is_the_total_in_run_resume_and_tune_and_more_adds(project: Project) -> None:
    toml = project.toml(max_epochs=1)
    project.cli("run", toml.name, "--trials", 2, "--session", "tot", "--headless").ok()
    r = project.cli("resume", "tot", "--trials", 3, "--headless").ok()  # the total: one more trial
    assert "trial budget raised from 2 to 3" in r.out and len(project.trials("tot")) == 3
    r = project.cli("resume", "tot", "--more", 2, "--headless").ok()
    assert "trial budget raised from 3 to 5" in r.out and len(project.trials("tot")) == 5
    project.cli("resume", "tot", "--trials", 4, "--headless").assert_user_error("--trials 4", "5 trials already", "--more")
    project.cli("resume", "tot", "--trials", 6, "--more", 1, "--headless").assert_user_error("--trials", "--more")
    # tt.tune's trials= is the same total (and a run that extends a finished session is no "nothing ran").
    import warnings

    tuitune.tune(lambda c, t: c["x"], {"x": tuitune.Float(0.0, 1.0)}, trials=2, db=project.db, session="py", workers=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = tuitune.tune(lambda c, t: c["x"], {"x": tuitune.Float(0.0, 1.0)}, trials=3, db=project.db,
                         session="py", workers=0)
    assert len(s.trials) == 3


def test_resume_continues_with_the_session_strategy_seed_and_budget(project: Project) -> None:
    """Two trials now, three more on resume: the same configs as one run of five with that seed."""
    toml = project.toml(max_epochs=1)
    assert project.cli("run", toml.name, "--trials", 5, "--session", "whole", "--seed", 11, "--headless").rc == 0
    assert project.cli("run", toml.name, "--trials", 2, "--session", "part", "--seed", 11, "--headless").rc == 0
    assert project.cli("resume", "part", "--trials", 5, "--headless").rc == 0  # the total, as in run
    whole, part = project.trials("whole"), project.trials("part")
    assert [t["config"] for t in part] == [t["config"] for t in whole]
    assert [t["budget"] for t in part] == [1] * 5


def test_resume_from_another_directory(project: Project) -> None:
    toml = project.toml(max_epochs=1)
    assert project.cli("run", toml.name, "--trials", 1, "--session", "far", "--headless").rc == 0
    elsewhere = project.root / "elsewhere"
    elsewhere.mkdir()
    r = project.cli("resume", "far", "--more", 1, "--headless", cwd=elsewhere)
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


def test_show_and_sessions_piped_to_head(project: Project) -> None:
    import subprocess

    tuitune.tune(lambda c, t: c["x"], {"x": tuitune.Float(0.0, 1.0)}, trials=300, db=project.db, session="many",
                 workers=0)
    # `tuitune show many | head -1`: the reader leaves after one line; exit 0, nothing on stderr.
    p = subprocess.Popen(project.args("show", "many"), cwd=project.root, env=project.env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stderr is not None
    first = p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=120) == 0, err
    assert first.startswith("many") and "Traceback" not in err and "Broken" not in err, err
    # `tuitune sessions | head -1` names the columns (it was the table's top border).
    first = project.cli("sessions").ok().out.splitlines()[0]
    assert first.split()[:2] == ["session", "preset"] and "state" in first, first


def _tune(project: Project, call: str) -> Result:
    """Runs ``tt.tune(...)`` in a fresh Python (as a user's script) in the project folder."""
    import subprocess
    import sys

    code = f"import tuitune as tt, _objectives\nspace = tt.Space(x=tt.Float(0.0, 1.0))\n{call}\n"
    p = subprocess.run([sys.executable, "-c", code], cwd=project.root, env=project.env, capture_output=True,
                       text=True, timeout=300)
    return Result(p.returncode, p.stdout, p.stderr)


def test_tune_says_what_it_does_on_stderr_and_when_it_returns_a_finished_session(project: Project) -> None:
    call = f"tt.tune(_objectives.quadratic, space, trials=2, max_epochs=2, db={str(project.db)!r}, session='py', workers=0)"
    r = _tune(project, call).ok()
    lines = r.err_lines
    # The first line comes before anything runs (workers take seconds to start); then one per trial.
    assert lines[0].startswith("tuitune: starting session 'py' (random, 2 trials) in "), lines
    assert [x.split()[1:4] for x in lines if " trial " in f" {x} "][:2] == [["trial", "0", "complete"],
                                                                          ["trial", "1", "complete"]], lines
    assert "already finished" not in r.err
    # Again, with the same settings: nothing runs, and it says so.
    r = _tune(project, call).ok()
    assert "had already finished" in r.err and "trials= more than 2" in r.err, r.err
    # quiet=True: not a line.
    r = _tune(project, call.replace("session='py'", "session='q'").replace("workers=0", "workers=0, quiet=True")).ok()
    assert r.err == "", r.err


def test_an_objective_without_checkpoints_is_told_once_under_hyperband(project: Project) -> None:
    # quadratic reports every epoch and never checkpoints: each promotion trains it again from epoch 1.
    toml = project.toml(max_epochs=9)
    r = project.cli("run", toml.name, "--strategy", "hyperband", "--session", "hb", "--headless",
                    "--bracket", 1).ok()
    notes = [x for x in r.out.splitlines() if x.startswith("note:")]
    assert len(notes) == 1, r.out
    assert "saved no checkpoint" in notes[0] and "trial.checkpoint(state)" in notes[0]
    call = (f"tt.tune(_objectives.quadratic, space, strategy='asha', trials=9, max_epochs=9, db={str(project.db)!r}, "
            "session='as', workers=0)")
    r = _tune(project, call).ok()
    assert r.err.count("note: trial") == 1 and "trial.restore()" in r.err, r.err
    # An objective that checkpoints gets no note.
    r = _tune(project, call.replace("quadratic", "with_torch").replace("'as'", "'ok'")).ok()
    assert "note:" not in r.err, r.err


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
    from tuitune.core.store.store import Store

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


def _damaged_wal(path: Path) -> None:
    """A damaged database in WAL mode (as tuitune writes them): even a read-only look makes -wal and -shm."""
    _tuitune_db(path)
    c = sqlite3.connect(path)
    c.execute("PRAGMA journal_mode = WAL")
    c.close()
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    for i in range(page, len(data)):
        data[i] = 0x5A
    path.write_bytes(bytes(data))


DB_KINDS = {
    "text": (lambda p: p.write_text("these are my notes, not a database\n" * 50), "not a tuitune database"),
    "binary": (lambda p: p.write_bytes(bytes(range(256)) * 40), "not a tuitune database"),
    "other-sqlite": (_foreign_sqlite, "another program"),
    "truncated": (lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\x10\x00" * 10), "truncated"),
    "damaged": (_damaged, "damaged"),
    "damaged-wal": (_damaged_wal, "damaged"),
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
    # "Left unchanged" holds for its folder too: no -wal or -shm made beside it.
    assert not [side for side in ("-wal", "-shm") if Path(str(project.db) + side).exists()]


def _immutable(folder: Path) -> bool:
    import shutil
    import subprocess

    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0


def test_a_database_path_that_cannot_be_written_is_one_line_exit_2(project: Project) -> None:
    import subprocess

    toml = project.toml(max_epochs=1)
    (project.root / "afile").write_text("not a folder\n")
    cases = [(Path("/proc/t.db"), "/proc"), (project.root / "afile" / "t.db", "is a file, not a folder")]
    for db, why in cases:
        for args in (("run", toml.name, "--trials", 1, "--headless"), ("sessions",)):
            r = project.cli("--db", db, *args, db=False)
            line = r.assert_user_error(str(db), why) if args[0] == "run" else r.assert_user_error(str(db))
            assert r.rc == 2, line
    # --data-dir and export -o: the same one line, exit 2.
    r = project.cli("run", toml.name, "--trials", 1, "--headless", "--session", "d", "--data-dir", "/proc/data")
    assert r.rc == 2 and "/proc" in r.assert_user_error("--data-dir")
    project.cli("run", toml.name, "--trials", 1, "--headless", "--session", "e").ok()
    for out, why in (("/proc/x.json", "/proc"), (str(project.root / "afile" / "x.json"), "afile")):
        r = project.cli("export", "e", "-o", out)
        assert r.rc == 2 and why in r.assert_user_error(out)
    # A read-only (immutable) folder: a new database there, and an existing one (WAL needs -wal and -shm).
    ro = project.root / "ro"
    ro.mkdir()
    import shutil

    shutil.copy(project.db, ro / "t.db")
    for side in ("-wal", "-shm"):
        if Path(str(project.db) + side).exists():
            shutil.copy(str(project.db) + side, str(ro / "t.db") + side)
    if not _immutable(ro):
        if os.geteuid() == 0:
            pytest.skip("neither chattr +i nor a read-only folder works here (root)")
        ro.chmod(0o555)
    try:
        for db in (ro / "new.db", ro / "t.db"):
            for args in (("run", toml.name, "--trials", 1, "--headless", "--session", "f"), ("sessions",)):
                r = project.cli("--db", db, *args, db=False)
                assert r.rc == 2 and str(ro) in r.assert_user_error(str(db))
    finally:
        subprocess.run(["chattr", "-i", str(ro)], capture_output=True)
        ro.chmod(0o755)


def test_a_missing_device_suggests_one_that_exists_with_the_flag_given(inproc, project: Project) -> None:
    from tuitune.training.devices import available_devices

    toml = project.toml(max_epochs=1)
    first = available_devices()[0]  # cuda:0 on a GPU machine, else cpu
    for flag in ("--devices", "--device"):
        line = inproc("run", toml.name, flag, "cuda:7", "--headless").assert_user_error("cuda:7")
        assert line.endswith(f"use {flag} {first}") or f"use {flag} {first} (this machine has" in line, line
        assert project.session_names() == []


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


def test_a_killed_run_reads_interrupted_within_the_readme_s_seconds(project: Project) -> None:
    from tuitune.core.records import ALIVE_WITHIN

    readme = " ".join((Path(tuitune.__file__).parents[1] / "README.md").read_text().split())
    assert f"reads `interrupted` at most {ALIVE_WITHIN:g} s after it died" in readme
    log = project.root / "kill.log"
    toml = _slow_toml(project, log, epoch_s=0.2, max_epochs=100_000)
    bg = project.popen("run", toml.name, "--trials", 1, "--session", "k9", "--headless", tag="k9")
    store = Store(project.db)
    try:
        project.wait_until(lambda: log_lines(log), timeout=120, what="the first committed epoch")
        project.wait_until(lambda: store.session("k9").alive, what="a heartbeat")
    finally:
        bg.kill()
    killed = time.monotonic()
    seen = project.wait_until(lambda: store.session("k9").state == "interrupted" and time.monotonic(),
                              timeout=30, what="interrupted")
    # The owner's last heartbeat was at most HEARTBEAT_EVERY before the kill; polled every 0.05 s.
    assert seen - killed <= ALIVE_WITHIN + 0.1, f"read interrupted {seen - killed:.2f} s after the kill"
    assert store.trials("k9")[0].state.value == "interrupted"


def test_a_refused_resume_changes_nothing(project: Project) -> None:
    log = project.root / "busy.log"
    toml = _slow_toml(project, log, epoch_s=0.3, max_epochs=100_000)  # until the test stops it
    bg = project.popen("run", toml.name, "--trials", 1, "--session", "busy", "--headless", tag="busy")
    try:
        project.wait_until(lambda: log_lines(log), timeout=120, what="the first committed epoch")
        r = project.cli("resume", "busy", "--trials", 5, "--headless")
        r.assert_user_error(f"pid {bg.pid}")
        assert project.sql("SELECT n_trials FROM sessions WHERE name = 'busy'") == [(1,)]
        # `run` with its name and the same settings: refused first, without "resuming it" or a budget change.
        r = project.cli("run", toml.name, "--trials", 5, "--session", "busy", "--headless")
        r.assert_user_error(f"pid {bg.pid}")
        assert "resuming" not in r.out and "budget" not in r.out, r.out
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
    project.wait_until(lambda: "Ctrl+C again to quit at once" in bg.err.read_text(errors="replace"), timeout=60,
                       what="the first Ctrl+C answered")
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
    # Nothing of those sessions is left beside the database: no log or checkpoint folders.
    files = project.root / "runs.db.d"
    left = [p for sub in ("logs", "checkpoints") if (files / sub).exists() for p in (files / sub).iterdir()]
    assert left == [], left


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


# ---------------------------------------------------------------------------------------------- budgets


def _info(project: Project, name: str) -> dict:
    return json.loads(project.sql("SELECT info FROM sessions WHERE name = ?", (name,))[0][0])


def test_total_epochs_fills_hyperband_and_the_session_bar_shows_what_is_left(project: Project) -> None:
    toml = project.toml(max_epochs=9)
    r = project.cli("run", toml.name, "--strategy", "hyperband", "--sampler", "random", "--total-epochs", 40,
                    "--session", "hbe", "--headless")
    assert r.rc == 0, r.err
    assert "budget 40 epochs" in r.out
    assert re.search(r"^session .*\d+/40 epochs", r.out, re.M), r.out  # the session bar: what is left
    trained = sum(int(m["ep"]) for m in trial_lines(r.out) if m["state"] in ("complete", "pruned", "paused"))
    trials = project.trials("hbe")
    assert trials and {t["state"] for t in trials} <= {"complete", "pruned"}
    # Promotions continue their trial: the epochs trained are each trial's last epoch (the top budget reached).
    assert 40 - 9 < sum(t["budget"] for t in trials) <= 40, trained
    assert _info(project, "hbe")["budget"] == {"total_epochs": 40}
    r = project.cli("show", "hbe")
    assert re.search(r"^budget: \d+/40 epochs", r.out, re.M), r.out
    assert show_json(project, "hbe")["session"]["budget"] == {"total_epochs": 40}


def test_target_ends_the_session_and_resume_keeps_it(inproc, project: Project) -> None:
    toml = project.toml(max_epochs=2)
    r = inproc("run", toml.name, "--trials", 40, "--target", 0.6, "--session", "tg", "--headless")
    assert r.rc == 0, r.err
    trials = project.trials("tg")
    hit = [t for t in trials if t["value"] is not None and t["value"] <= 0.6]
    assert len(hit) == 1 and hit[0]["number"] == trials[-1]["number"] < 39  # it stopped at the first one
    assert f"finished: the target 0.6 was reached by trial {hit[0]['number']}" in r.out
    r = inproc("resume", "tg", "--headless")
    assert r.rc == 0, r.err
    assert len(project.trials("tg")) == len(trials)  # the same budget: nothing more to run
    r = inproc("resume", "tg", "--target", 0.2, "--headless")  # a new target replaces it
    assert r.rc == 0, r.err
    assert "budget now target 0.2" in r.out
    assert len(project.trials("tg")) > len(trials)


def test_time_budget_counts_the_time_the_session_ran_over_its_runs(inproc, project: Project) -> None:
    toml = project.toml(max_epochs=1, objective="_objectives:slow", defaults={"epoch_s": 0.2})
    r = inproc("run", toml.name, "--trials", 100, "--time", "1s", "--session", "tm", "--headless")
    assert r.rc == 0, r.err
    assert "finished: the time budget of 1s is spent" in r.out
    first = len(project.trials("tm"))
    ran = _info(project, "tm")["run_seconds"]
    assert 1.0 <= ran and 2 <= first < 100
    r = inproc("resume", "tm", "--headless")  # spent: nothing runs
    assert r.rc == 0 and len(project.trials("tm")) == first
    # At least one more second of running (on a busy machine the first run may overshoot 1 s by a trial or so).
    more = math.ceil(ran) + 1
    r = inproc("resume", "tm", "--time", f"{more}s", "--headless")
    assert r.rc == 0, r.err
    assert len(project.trials("tm")) > first
    assert _info(project, "tm")["run_seconds"] >= more
    assert _info(project, "tm")["budget"] == {"timeout": float(more)}


@pytest.mark.parametrize(("args", "extra", "message"), [
    (["--time", "8x"], {}, "--time '8x' is not a duration; give seconds or a number with s, m, h or d"),
    (["--total-epochs", 2], {}, "--total-epochs 2 is less than max_epochs 3: not one trial fits"),
    ([], {"time": "forever"}, "key 'time': 'forever' is not a duration"),
    ([], {"total_epochs": 0}, "key 'total_epochs': 0 must be a whole number of epochs >= 1"),
    ([], {"target": "low"}, "key 'target': 'low' must be a finite number"),
])
def test_a_bad_budget_is_one_line_naming_the_flag_or_key(inproc, project: Project, args, extra, message) -> None:
    toml = project.toml(extra=extra)
    r = inproc("run", toml.name, *args, "--headless")
    assert r.rc == 2
    assert message in r.err and "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert not project.trials("x")


def test_a_time_or_epochs_budget_lifts_the_default_trial_count(inproc, project: Project) -> None:
    toml = project.toml(max_epochs=1)
    r = inproc("run", toml.name, "--total-epochs", 25, "--session", "many", "--headless")
    assert r.rc == 0, r.err
    assert len(project.trials("many")) == 25  # not the 20 trials random runs by default
    r = inproc("run", toml.name, "--target", -1, "--session", "few", "--headless")  # a target alone: the default
    assert r.rc == 0, r.err
    assert len(project.trials("few")) == 20


@pytest.mark.parametrize("strategy", ["hyperband", "asha"])
def test_a_time_budget_runs_hyperband_and_asha_past_their_plan(inproc, project: Project, strategy) -> None:
    # max_epochs 3, eta 3: one hyperband iteration is 5 configs, asha's plan 3; 0.05 s an epoch.
    toml = project.toml(max_epochs=3, objective="_objectives:slow", defaults={"epoch_s": 0.05})
    r = inproc("run", toml.name, "--strategy", strategy, "--sampler", "random", "--time", "3s", "--session", "t",
               "--headless")
    assert r.rc == 0, r.err
    assert "finished: the time budget of 3s is spent" in r.out
    assert len(project.trials("t")) > 5


def test_budget_from_the_toml(inproc, project: Project) -> None:
    toml = project.toml(max_epochs=2, extra={"total_epochs": 5})
    r = inproc("run", toml.name, "--session", "tb", "--headless")
    assert r.rc == 0, r.err
    assert len(project.trials("tb")) == 2 and _info(project, "tb")["budget"] == {"total_epochs": 5}


# ---------------------------------------------------------------------------------------------- priors


def test_prior_defaults_starts_at_the_defaults_and_is_stored_with_the_space(project: Project) -> None:
    toml = project.toml(max_epochs=1)
    r = project.cli("run", toml.name, "--strategy", "bayes", "--trials", 4, "--prior", "defaults", "--session", "pd",
                    "--headless")
    assert r.rc == 0, r.err
    trials = project.trials("pd")
    assert trials[0]["config"] == {"x": 0.5, "units": 16, "act": "relu", "tag": "synthetic"}
    space = json.loads(project.sql("SELECT space FROM sessions WHERE name = 'pd'")[0][0])
    assert (space["x"]["prior"], space["units"]["prior"], space["act"]["prior"]) == (0.5, 16, "relu")
    assert "prior" not in space["tag"]  # fixed: not searched
    r = project.cli("resume", "pd", "--more", 2, "--headless")  # the priors come back with the space
    assert r.rc == 0, r.err
    assert len(project.trials("pd")) == 6


def test_a_prior_in_the_toml(inproc, project: Project) -> None:
    space = {**project.default_space, "x": {"type": "float", "low": 0.0, "high": 1.0, "prior": 0.25}}
    toml = project.toml(max_epochs=1, space=space)
    r = inproc("run", toml.name, "--trials", 2, "--session", "pt", "--headless")
    assert r.rc == 0, r.err
    assert project.trials("pt")[0]["config"]["x"] == 0.25


@pytest.mark.parametrize(("args", "space_x", "message"), [
    (["--prior", "best"], None, "--prior 'best' is unknown; use 'defaults' (or give a parameter prior=VALUE)"),
    (["--prior", "defaults", "--strategy", "grid"], None,
     "--prior 'defaults' acts on the random, bayes, hyperband, asha strategies, not on grid"),
    ([], {"type": "float", "low": 0.0, "high": 1.0, "prior": 2.0},
     "key 'space.x': parameter 'x': prior 2.0 must be a value of the parameter (2 is outside [0, 1])"),
])
def test_a_bad_prior_is_one_line(inproc, project: Project, args, space_x, message) -> None:
    space = {**project.default_space, **({"x": space_x} if space_x else {})}
    r = inproc("run", project.toml(space=space).name, *args, "--headless")
    assert r.rc == 2
    assert message in r.err and "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1, r.err


# ---------------------------------------------------------------------------------------------- warm starts


def test_warm_start_runs_the_earlier_best_first_and_keeps_the_data(inproc, project: Project) -> None:
    toml = project.toml(max_epochs=1)
    assert inproc("run", toml.name, "--trials", 4, "--session", "before", "--headless").rc == 0
    best = min((t for t in project.trials("before")), key=lambda t: t["value"])
    r = inproc("run", toml.name, "--strategy", "bayes", "--trials", 5, "--warm-start", "before", "--session", "after",
               "--headless")
    assert r.rc == 0, r.err
    after = project.trials("after")
    assert after[0]["config"] == best["config"] and after[0]["meta"]["chosen_by"] == "warm-start"
    assert len(after) == 5 and len(project.trials("before")) == 4  # not counted here, untouched there
    assert len(_info(project, "after")["warm_start"]) == 4
    r = inproc("resume", "after", "--more", 1, "--headless")
    assert r.rc == 0, r.err


def test_warm_start_from_an_unknown_session_is_one_line(inproc, project: Project) -> None:
    toml = project.toml(max_epochs=1)
    assert inproc("run", toml.name, "--trials", 1, "--session", "one", "--headless").rc == 0
    r = inproc("run", toml.name, "--warm-start", "nope", "--headless")
    assert r.rc == 2
    assert "--warm-start 'nope': no such session in" in r.err and "its sessions: one" in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err


def test_a_resume_keeps_the_stored_placement_and_reads_sessions_stored_before_it(inproc, project: Project) -> None:
    """Where trials run is stored as one value; a resume without flags runs them there again."""
    r = inproc("run", project.toml().name, "--session", "pl", "--devices", "cpu", "--workers", 2, "--trials", 2,
               "--headless")
    assert r.rc == 0, r.err
    s = show_json(project, "pl")["session"]
    assert (s["devices"], s["workers"], s["backend"]) == (["cpu"], 2, "local")
    r = inproc("resume", "pl", "--more", 1, "--headless")
    assert r.rc == 0 and "trials run 2 workers on cpu" in r.out, r.out + r.err
    # A session stored before the placement was one value: its separate keys are read, then rewritten as one.
    store = Store(project.db)
    info = {k: v for k, v in store.session("pl").info.items() if k != "placement"}
    store.update_session("pl", info={**info, "device": "cpu", "devices": ["cpu"], "workers": 3, "backend": "local"})
    r = inproc("resume", "pl", "--more", 1, "--headless")
    assert r.rc == 0 and "trials run 3 workers on cpu" in r.out, r.out + r.err
    assert Store(project.db).session("pl").info["placement"]["workers"] == 3
