"""Command objectives: a script run as it is per trial (tt.Command, objective = { command = ... } in a
preset): placeholders, TUITUNE_CONFIG, tuitune.report over the channel or JSON lines on stdout,
checkpoint_dir across promotions, a failing script's tail, a script that ignores stop, kill -9 and resume."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest

import tuitune as tt
from tests.support.hyperband_kill import run_hyperband_kill
from tests.support.project import Project, pid_alive, read_log
from tuitune.core.errors import ObjectiveError
from tuitune.core.run.command import Command

SCRIPT = Path(__file__).with_name("_command_script.py")
SPACE = tt.Space(x=tt.Float(0.0, 1.0))


@pytest.fixture
def script(tmp_path) -> Path:
    shutil.copy(SCRIPT, tmp_path / "train.py")
    return tmp_path / "train.py"


def test_argv_fills_placeholders_one_argument_each_and_quotes_for_a_shell():
    c = Command("python train.py --name {name} --lr={lr} --epochs {budget}")
    argv = c.argv({"name": "two words", "lr": 0.1, "budget": 3})
    assert argv == [sys.executable, "train.py", "--name", "two words", "--lr=0.1", "--epochs", "3"]
    s = Command("echo {name} > out.txt", shell=True).argv({"name": "a; rm -rf /"})
    assert s == ["/bin/sh", "-c", "echo 'a; rm -rf /' > out.txt"]
    with pytest.raises(ObjectiveError, match=r"\{lrr\} is not a parameter of the space; use one of \{x\}"):
        Command("python t.py {lrr}").check(["x"])
    with pytest.raises(ObjectiveError, match="empty"):
        Command("  ")


def test_a_script_reports_checkpoints_and_resumes_when_promoted_in_two_workers(tmp_path, script, monkeypatch):
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "log.txt"
    cmd = tt.Command(f"python train.py --x {{x}} --epochs {{budget}} --log {log}")
    s = tt.tune(cmd, SPACE, strategy="hyperband", factor=2, max_epochs=4, db=tmp_path / "t.db", session="h",
                workers=2)
    states = [t.state.value for t in s.trials]
    assert set(states) == {"complete", "pruned"}, [(t.state, t.reason) for t in s.trials]
    for t in s.trials:
        x, live = t.config["x"], t.epochs
        assert [int(e["epoch"]) for e in live] == list(range(1, t.budget + 1))
        acc = [e["acc"] for e in live]
        assert acc == pytest.approx([e * x + e * (e + 1) / 2 for e in range(1, t.budget + 1)])  # restored right
    lines = read_log(log)
    assert any(x[0] == "S" and int(x[3]) > 0 for x in lines), "no promotion continued from the script's checkpoint"
    pids = {int(e["pid"]) for t in s.trials for e in t.epochs}
    assert len(pids) > 2  # a process per run of the script, not the workers
    assert not any((tmp_path / "t.db.d" / "checkpoints" / "h").glob("*.d")), "finished trials' folders are dropped"


def test_printed_json_lines_report_and_a_failing_script_fails_with_its_output(tmp_path, script, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cmd = tt.Command(["python", "train.py", "--x", "{x}", "--epochs", "{budget}", "--stdout", "--fail-above", "0.5"])
    s = tt.tune(cmd, SPACE, trials=6, max_epochs=2, db=tmp_path / "t.db", session="p", workers=1, max_failures=6)
    for t in s.trials:
        if t.config["x"] > 0.5:
            assert t.state.value == "failed" and "exited with code 3: boom: x=" in t.reason, t.reason
            assert "boom" in (t.traceback or "")
        else:
            assert t.state.value == "complete" and len(t.epochs) == 2, t.reason
    assert {t.state.value for t in s.trials} == {"complete", "failed"}


def test_a_script_that_ignores_stop_is_ended_with_what_it_started(tmp_path, script, monkeypatch):
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "log.txt"
    cmd = tt.Command(f"python train.py --x {{x}} --epochs 1 --stubborn --log {log}")
    t0 = time.monotonic()
    s = tt.tune(cmd, SPACE, trials=1, max_epochs=2, db=tmp_path / "t.db", session="s", workers=1)
    t = s.trials[0]
    assert t.state.value == "complete" and len(t.epochs) == 2, t.reason
    child = next(int(x[1]) for x in read_log(log) if x[0] == "CHILD")
    assert not pid_alive(child), "the script's own child outlived the trial"
    assert time.monotonic() - t0 < 60


def test_a_preset_command_runs_from_its_folder_and_a_bad_placeholder_is_one_line(tmp_path):
    project = Project(tmp_path)
    shutil.copy(SCRIPT, tmp_path / "train.py")
    space = {"x": {"type": "float", "low": 0.0, "high": 1.0}}
    bad = project.toml("bad.toml", objective={"command": "python train.py --x {y}"}, space=space,
                       defaults={"x": 0.5})
    r = project.cli("run", bad.name, "--trials", 1, "--headless")
    r.assert_user_error("bad.toml", "objective.command", "{y} is not a parameter")
    good = project.toml("good.toml", objective={"command": "python train.py --x {x} --epochs {budget}"},
                        space=space, defaults={"x": 0.5}, max_epochs=2)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = project.cli("run", str(good), "--trials", 2, "--headless", "--session", "g", cwd=elsewhere)
    assert r.rc == 0, r.err
    assert [t["state"] for t in project.trials("g")] == ["complete", "complete"]


def test_a_command_hyperband_session_killed_with_9_resumes_with_nothing_committed_lost(tmp_path):
    project = Project(tmp_path, workers=2)
    shutil.copy(SCRIPT, tmp_path / "train.py")
    log = tmp_path / "commits.log"
    toml = project.toml(
        "cmd.toml", objective={"command": f"python train.py --x {{x}} --epochs {{budget}} --log {log} --epoch-s 0.05"},
        space={"x": {"type": "float", "low": 0.0, "high": 1.0}}, defaults={"x": 0.5}, max_epochs=4,
    )
    stats = run_hyperband_kill(project, toml, log, kills=2)
    print("command kill test:", stats)
    assert stats["kills"] == 2 and stats["restarts"] >= 1


def _state(pid: int) -> str:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.split()[1]
    except OSError:
        pass
    return "gone"


def _held(pid: int) -> str:
    if _state(pid) == "T":
        return "stopped"
    try:
        if "pipe_read" in Path(f"/proc/{pid}/wchan").read_text():
            return "in report"
    except OSError:
        pass
    return _state(pid)


@pytest.mark.parametrize("stdout", [True, False], ids=["json-lines", "report"])
def test_pause_holds_the_script_and_resume_lets_it_finish(tmp_path, script, monkeypatch, stdout):
    """Paused after epoch 1: a printing script is stopped (SIGSTOP), a reporting one waits in report();
    no epoch row is added while paused; on resume it trains to its budget."""
    import threading

    from tuitune.core import events as ev
    from tuitune.core.api import open_session, open_store
    from tuitune.core.run.runner import Runner
    from tuitune.core.search.strategies import make_strategy
    from tuitune.core.store.store import Store

    monkeypatch.chdir(tmp_path)
    log = tmp_path / "log.txt"
    cmd = tt.Command(f"python train.py --x {{x}} --epochs {{budget}} --log {log}" + (" --stdout" if stdout else ""))
    seen: dict[str, object] = {}

    def watch():
        pid = next(int(x[2]) for x in read_log(log) if x[0] == "S")
        end = time.monotonic() + 60
        # Held: stopped by a signal, or blocked reading report()'s answer (the kernel's wait channel).
        while time.monotonic() < end and _held(pid) != ("stopped" if stdout else "in report"):
            time.sleep(0.02)
        seen["state"] = _held(pid)
        seen["rows"] = len(Store(tmp_path / "t.db").trials("pz")[0].epochs)
        runner.resume()

    def listen(e):
        if isinstance(e, ev.EpochReported) and e.epoch == 1 and "paused" not in seen:
            seen["paused"] = True
            runner.pause()
            threading.Thread(target=watch, daemon=True).start()

    store = open_store(tmp_path / "t.db")
    strat = make_strategy("random", SPACE, seed=0, max_epochs=4, metric="val_loss", direction="minimize", n_trials=1)
    open_session(store, "pz", strategy="random", space=SPACE, metric="val_loss", direction="minimize", seed=0,
                 max_epochs=4, trials=1, options=strat.options())
    runner = Runner(store, "pz", cmd, strat, listeners=[listen])
    runner.run()
    assert seen["state"] == ("stopped" if stdout else "in report") and seen["rows"] == 1, seen
    t = store.trials("pz")[0]
    assert t.state.value == "complete" and len(t.epochs) == 4


@pytest.mark.parametrize("stdout", [True, False], ids=["json-lines", "report"])
def test_an_aborted_trial_ends_its_script_and_the_next_trial_runs(tmp_path, script, monkeypatch, stdout):
    from tuitune.core import events as ev
    from tuitune.core.api import open_session, open_store
    from tuitune.core.run.runner import Runner
    from tuitune.core.search.strategies import make_strategy

    monkeypatch.chdir(tmp_path)
    # --stubborn for the printing script: it never ends on its own, so only the abort can end it.
    cmd = tt.Command("python train.py --x {x} --epochs {budget}" + (" --stdout --stubborn" if stdout else ""))

    def listen(e):
        if isinstance(e, ev.EpochReported) and e.number == 0 and e.epoch == 2:
            runner.abort_trial(0)

    store = open_store(tmp_path / "t.db")
    strat = make_strategy("random", SPACE, seed=0, max_epochs=40, metric="val_loss", direction="minimize", n_trials=2)
    open_session(store, "ab", strategy="random", space=SPACE, metric="val_loss", direction="minimize", seed=0,
                 max_epochs=40, trials=2, options=strat.options())
    runner = Runner(store, "ab", cmd, strat, listeners=[listen])
    runner.run()
    t0, t1 = store.trials("ab")
    assert (t0.state.value, len(t0.epochs), t0.reason) == ("pruned", 2, "aborted by the user")
    assert t1.state.value == "complete" and len(t1.epochs) == 40, t1.reason
