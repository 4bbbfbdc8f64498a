"""Fused arrays end to end with the REAL built-in trainer (issue 20): ``tuitune run digits-mlp --fuse N``
in a subprocess, headless, on the CPU; a kill -9 of the coordinator mid-array and its resume; pause,
resume and the abort of one member from another terminal (the commands ``tuitune open`` queues); and
hyperband / asha pruning inside arrays.

The architecture is held with ``--set`` (batch size, layers, units, activation) so that every config of
the session shares one array key; the per-member hyperparameters (optimizer, lr, weight decay, dropout,
init, schedule) still vary. ``patience`` is held above the budget so no member stops early by chance.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest

from tests.support.project import Project, dumps_toml, wait_until
from tuitune.core.store import Store

ARCH = ("--set", "batch_size=64", "--set", "hidden_layers=1", "--set", "units=32", "--set", "activation=relu")
ROOT = Path(__file__).resolve().parents[2]


def _run(*extra: str, preset: str = "digits-mlp") -> list[str]:
    return ["run", preset, "--devices", "cpu", "--headless", "--workers", "1", *ARCH, *extra]


def _long(project: Project, *extra: str) -> list[str]:
    """A run of digits-mlp without early stopping (patience 0: off), so every member trains its whole budget
    while the test pauses, aborts or kills it."""
    from tuitune.training.presets import tomllib

    doc = tomllib.loads((ROOT / "presets" / "digits-mlp.toml").read_text())
    doc["name"] = "digits-long"
    doc["space"].pop("patience")
    doc["defaults"]["patience"] = 0
    path = project.root / "digits-long.toml"
    path.write_text(dumps_toml(doc))
    return _run(*extra, preset=str(path))


def _rows(project: Project, session: str) -> set[tuple]:
    """Every epoch row of the session, superseded ones included: (trial, epoch, metrics)."""
    try:
        return set(project.sql(
            "SELECT t.number, e.epoch, e.metrics FROM epochs e JOIN trials t ON t.id = e.trial_id"
            " JOIN sessions s ON s.id = t.session_id WHERE s.name = ?", (session,)))
    except sqlite3.Error:  # not created yet
        return set()


def _beat(project: Project, session: str) -> float:
    return float(project.sql("SELECT heartbeat FROM sessions WHERE name = ?", (session,))[0][0] or 0)


def _states(project: Project, session: str) -> dict[int, str]:
    try:
        return {t["number"]: t["state"] for t in project.trials(session)}
    except sqlite3.Error:
        return {}


def _every_epoch_committed(doc: dict, budget: int) -> None:
    for t in doc["trials"]:
        assert [e["epoch"] for e in t["epochs"]] == list(range(1, budget + 1)), (t["number"], t["epochs"])


def test_run_fuse_8_completes_every_trial_with_every_epoch_committed(project: Project) -> None:
    r = project.cli(*_run("--fuse", "8", "--trials", "16", "--max-epochs", "2", "--session", "f8"))
    r.ok()
    doc = project.show("f8")
    assert [t["state"] for t in doc["trials"]] == ["complete"] * 16
    _every_epoch_committed(doc, 2)
    sizes = [t["info"].get("array") for t in doc["trials"]]
    assert sizes == [8] * 16, sizes  # two arrays of 8 (random asks one architecture: every config joins)
    assert sorted({t["info"]["array_of"] for t in doc["trials"]}) == [0, 8]
    assert doc["session"]["state"] == "finished" and doc["session"]["fuse"] == 8
    table = project.cli("show", "f8").ok().out
    assert "w0 cpu [a0 x8]" in table and "w0 cpu [a8 x8]" in table  # the where column names the array


def test_fuse_off_trains_one_trial_per_worker_and_bad_values_are_one_line(project: Project) -> None:
    project.cli(*_run("--fuse", "off", "--trials", "2", "--max-epochs", "1", "--session", "off")).ok()
    doc = project.show("off")
    assert [t["info"].get("array") for t in doc["trials"]] == [None, None]
    assert doc["session"]["state"] == "finished"
    project.cli(*_run("--fuse", "lots", "--trials", "2")).assert_user_error("--fuse", "'lots'", "auto or off")
    project.cli(*_run("--fuse", "4", "--in-process", "--trials", "2")).assert_user_error("--fuse", "--workers")


def test_fuse_auto_sizes_the_array_from_the_workers_measured_step(project: Project) -> None:
    project.cli(*_run("--fuse", "auto", "--trials", "4", "--max-epochs", "1", "--session", "auto")).ok()
    doc = project.show("auto")
    assert [t["state"] for t in doc["trials"]] == ["complete"] * 4
    # a digits-mlp step takes well under AUTO_TARGET_S on any CPU: the worker asks for arrays of several
    assert all((t["info"].get("array") or 1) > 1 for t in doc["trials"]), [t["info"] for t in doc["trials"]]


def test_a_coordinator_killed_mid_array_resumes_losing_nothing_committed(project: Project) -> None:
    bg = project.popen(*_long(project, "--fuse", "4", "--trials", "4", "--max-epochs", "30", "--session", "kill"))
    try:
        wait_until(lambda: len(_rows(project, "kill")) >= 6 or bg.proc.poll() is not None, what="epochs mid-array")
        assert bg.proc.poll() is None, "the run ended before the kill"
        bg.signal(signal.SIGKILL)
        bg.proc.wait(60)
    finally:
        bg.kill()
    before = _rows(project, "kill")
    assert 6 <= len(before) < 4 * 30
    # the worker notices its coordinator is gone and exits on its own
    project.cli("resume", "kill", "--headless").ok()
    doc = project.show("kill")
    assert [t["state"] for t in doc["trials"]] == ["complete"] * 4
    _every_epoch_committed(doc, 30)
    assert before <= _rows(project, "kill")  # every row committed before the kill is still there


def _queue(project: Project, session: str, command: str, trial: int | None = None) -> None:
    """What another terminal (``tuitune open``) does: queue a command for the process running the session."""
    store = Store(project.db)
    try:
        store.add_command(session, command, trial)
    finally:
        store.close()


def test_pause_and_resume_hold_and_release_a_whole_array(project: Project) -> None:
    bg = project.popen(*_long(project, "--fuse", "4", "--trials", "4", "--max-epochs", "30", "--session", "pz"))
    try:
        wait_until(lambda: _rows(project, "pz") or bg.proc.poll() is not None, what="a first epoch")
        _queue(project, "pz", "pause")
        wait_until(lambda: project.show("pz")["session"]["state"] == "paused", what="the session paused")
        held = len(_rows(project, "pz"))
        assert held < 4 * 30, "the array finished before the pause"
        # Paused, every member waits before its next epoch (answered on resume): an epoch that was training
        # when the pause came may still commit, then nothing more, beat after beat of the coordinator.
        beat = _beat(project, "pz")
        wait_until(lambda: _beat(project, "pz") > beat, what="a heartbeat while paused")
        held = len(_rows(project, "pz"))
        beat = _beat(project, "pz")
        wait_until(lambda: _beat(project, "pz") > beat + 1.0, what="heartbeats while paused")
        assert len(_rows(project, "pz")) == held
        states = _states(project, "pz")
        assert sorted(states.values()) == ["running"] * 4
        _queue(project, "pz", "resume")
        r = bg.wait(300)
    finally:
        bg.kill()
    r.ok()
    doc = project.show("pz")
    assert [t["state"] for t in doc["trials"]] == ["complete"] * 4
    _every_epoch_committed(doc, 30)


def test_an_aborted_member_ends_at_once_while_the_rest_of_its_array_trains_on(project: Project) -> None:
    bg = project.popen(*_long(project, "--fuse", "4", "--trials", "4", "--max-epochs", "30", "--session", "ab"))
    try:
        wait_until(lambda: _rows(project, "ab") or bg.proc.poll() is not None, what="a first epoch")
        _queue(project, "ab", "abort", 1)
        # Its row is final as soon as it leaves the array, while the other members still run (per-member Done).
        states = wait_until(lambda: (s := _states(project, "ab")).get(1) == "pruned" and s, what="trial 1 pruned")
        assert "running" in states.values(), f"the array ended with its aborted member: {states}"
        assert any(len(project.live_epochs("ab", n)) < 30 for n in (0, 2, 3) if states[n] == "running")
        r = bg.wait(300)
    finally:
        bg.kill()
    r.ok()
    doc = project.show("ab")
    by = {t["number"]: t for t in doc["trials"]}
    assert by[1]["state"] == "pruned" and by[1]["reason"] == "aborted by the user"
    assert len(by[1]["epochs"]) < 30
    assert [by[n]["state"] for n in (0, 2, 3)] == ["complete"] * 3
    assert all([e["epoch"] for e in by[n]["epochs"]] == list(range(1, 31)) for n in (0, 2, 3))
    assert all(t["info"]["array"] == 4 and t["info"]["array_of"] == 0 for t in doc["trials"])


def _consistent(doc: dict) -> None:
    """Every trial finished, each with its live epochs 1..n (a promoted member continued from its checkpoint)."""
    for t in doc["trials"]:
        assert t["state"] in ("complete", "pruned"), (t["number"], t["state"], t["reason"])
        assert [e["epoch"] for e in t["epochs"]] == list(range(1, len(t["epochs"]) + 1)), t["number"]


@pytest.mark.parametrize("strategy, extra", [
    ("hyperband", ("--max-epochs", "9")),
    ("asha", ("--max-epochs", "9", "--trials", "12")),
])
def test_pruning_inside_arrays(project: Project, strategy: str, extra: tuple[str, ...]) -> None:
    project.cli(*_long(project, "--strategy", strategy, "--fuse", "8", *extra, "--session", "p"),
                timeout=600).ok()
    doc = project.show("p")
    assert doc["session"]["state"] == "finished"
    _consistent(doc)
    states = [t["state"] for t in doc["trials"]]
    assert "pruned" in states and "complete" in states, states
    assert any((t["info"].get("array") or 1) > 1 for t in doc["trials"])  # the rungs trained as arrays
    assert max(len(t["epochs"]) for t in doc["trials"]) == 9  # someone was promoted to the full budget


def test_show_log_of_a_member_names_the_arrays_log(project: Project) -> None:
    project.cli(*_run("--fuse", "2", "--trials", "2", "--max-epochs", "1", "--session", "lg")).ok()
    out = project.cli("show", "lg", "--log", "1").ok().out
    assert "trains in one array with trials [0, 1]" in out and "0.log" in out
    assert os.path.exists(out.split("its output: ")[1].split()[0])


def test_the_array_size_comes_from_the_flag_the_preset_or_the_default(project: Project) -> None:
    """--fuse over the preset's ``fuse`` over the default (auto for the built-in trainer, 1 for the user's own
    objective); --in-process trains one trial at a time; the stored placement keeps it for resume."""
    from tuitune.launch import DEFAULT_FUSE, new_run, resume_run

    db = project.root / "l.db"
    cpu = {"devices": "cpu"}
    assert new_run("digits-mlp", db=db, placement=cpu, session="d").placement.fuse == DEFAULT_FUSE
    assert new_run("digits-mlp", db=db, placement={**cpu, "fuse": "3"}, session="e").placement.fuse == 3
    assert new_run("digits-mlp", db=db, placement={**cpu, "workers": 0}, session="i").placement.fuse == 1
    own = new_run(str(project.toml(extra={"fuse": 4})), db=db, placement=cpu, session="o")
    assert own.placement.fuse == 4
    assert any("--fuse 4: _objectives:quadratic has no fuse_key and train_array" in n for n in own.notes), own.notes
    assert not new_run("digits-mlp", db=db, placement={**cpu, "fuse": "4"}, session="f").notes
    assert new_run(str(project.toml("plain.toml")), db=db, placement=cpu, session="p").placement.fuse == 1
    assert resume_run("e", db=db).placement.fuse == 3
    assert resume_run("e", db=db, placement={"fuse": "off"}).placement.fuse == 1


def test_grouping_configs_needs_no_torch() -> None:
    """The coordinator groups suggestions with ``fuse_key_of``: importing and calling it loads no torch."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from tuitune.training.objective import fuse_key_of\n"
        "from tuitune.training.presets import load_preset\n"
        "p = load_preset('digits-mlp').to_dict()\n"
        "key = fuse_key_of(p)\n"
        "a = key({**p['defaults'], 'lr': 0.1}); b = key({**p['defaults'], 'lr': 0.2}); c = key({**p['defaults'], 'units': 64})\n"
        "assert a == b != c and a is not None, (a, b, c)\n"
        "assert 'torch' not in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
