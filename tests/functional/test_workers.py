"""Trials in worker processes: parallel trials, a killed worker, logs, commands, a killed coordinator,
following a session from another process, --detach, and the one-line errors of bad worker settings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import tuitune as tt
from tuitune.core import events as ev
from tuitune.core.errors import SetupError
from tuitune.core.records import TrialState
from tuitune.core.run.follow import Follower
from tuitune.core.run.workers import WorkerError, parse_devices, plan_slots
from tuitune.core.store.store import Store, files_dir

OBJECTIVES = '''
import os, signal, sys, time
from pathlib import Path

def _wait_for(cond, what, limit=60.0):
    end = time.monotonic() + limit
    while not cond():
        if time.monotonic() > end:
            raise RuntimeError("gave up waiting for " + what)
        time.sleep(0.02)

def together(config, trial):
    """Each trial's first epoch waits until two trials have started: only parallel workers get past it."""
    marks = Path(os.environ["TT_MARKS"])
    (marks / f"{trial.number}").touch()
    for e in trial.epochs():
        if e == 1 and trial.number < 2:
            _wait_for(lambda: len(list(marks.iterdir())) >= 2, "a second trial running at the same time")
        trial.report(val_loss=(config["x"] - 0.3) ** 2 + 1.0 / e)

def chatty(config, trial):
    print(f"hello from trial {trial.number} in pid {os.getpid()}")
    print("a warning on stderr", file=sys.stderr)
    for e in trial.epochs():
        trial.report(val_loss=config["x"] + 1.0 / e)

def dies(config, trial):
    for e in trial.epochs():
        trial.report(val_loss=config["x"] + 1.0 / e)
        if trial.number == 1 and e == 2:
            os.kill(os.getpid(), signal.SIGKILL)

def held(config, trial):
    """Each trial waits before its second epoch while the file TT_HOLD exists."""
    hold = Path(os.environ["TT_HOLD"])
    for e in trial.epochs():
        if e == 2:
            _wait_for(lambda: not hold.exists(), "the test to lift the hold")
        trial.report(val_loss=config["x"] + 1.0 / e)

def slow(config, trial):
    for e in trial.epochs():
        time.sleep(float(os.environ.get("TT_EPOCH", "0.05")))
        trial.report(val_loss=config["x"] + 1.0 / e)
'''

BROKEN = '''
import multiprocessing
if multiprocessing.parent_process() is not None:
    raise ImportError("this module cannot be loaded in a worker (no driver here)")

def objective(config, trial):
    for e in trial.epochs():
        trial.report(val_loss=config["x"])
'''


@pytest.fixture
def objectives(tmp_path, monkeypatch):
    """An importable module of objectives (spawned workers get the parent's sys.path)."""
    mod = f"tt_worker_objs_{os.getpid()}_{time.monotonic_ns()}"
    (tmp_path / f"{mod}.py").write_text(OBJECTIVES)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    return importlib.import_module(mod)


SPACE = tt.Space(x=tt.Float(0.0, 1.0))


def _wait(cond, what: str, limit: float = 60.0) -> None:
    end = time.monotonic() + limit
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_two_workers_run_trials_side_by_side_and_record_where(tmp_path, objectives, monkeypatch):
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setenv("TT_MARKS", str(marks))
    s = tt.tune(
        objectives.together, SPACE, trials=4, max_epochs=3, db=tmp_path / "t.db", session="par", devices="cpu",
        workers=2,
    )
    trials = s.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert all(len(t.epochs) == 3 for t in trials)
    assert {t.info["worker"] for t in trials} == {0, 1}
    assert {t.info["device"] for t in trials} == {"cpu"}
    assert len({t.info["pid"] for t in trials}) == 2  # workers are reused across trials


def test_prints_go_to_the_trial_log_not_the_screen(tmp_path, objectives, capfd):
    tt.tune(objectives.chatty, SPACE, trials=2, max_epochs=2, db=tmp_path / "t.db", session="log", workers=1)
    out, err = capfd.readouterr()
    assert "hello from trial" not in out + err
    logs = files_dir(tmp_path / "t.db") / "logs" / "log"
    text = (logs / "1.log").read_text()
    assert "hello from trial 1" in text and "a warning on stderr" in text
    from tuitune.cli import main

    assert main(["--db", str(tmp_path / "t.db"), "show", "log", "--log", "0"]) == 0
    assert "hello from trial 0" in capfd.readouterr().out


def test_a_killed_worker_fails_its_trial_naming_the_signal_and_the_session_goes_on(tmp_path, objectives):
    s = tt.tune(objectives.dies, SPACE, trials=4, max_epochs=3, db=tmp_path / "t.db", session="kill", workers=1)
    by = {t.number: t for t in s.trials}
    assert by[1].state == TrialState.FAILED and "SIGKILL" in (by[1].reason or "")
    assert len(by[1].epochs) == 2  # the rows it committed are kept
    assert [by[n].state for n in (0, 2, 3)] == [TrialState.COMPLETE] * 3
    assert by[0].info["pid"] != by[3].info["pid"]  # a fresh worker took over


def test_commands_reach_trials_in_workers(tmp_path, objectives):
    """Abort trial 0 at its first epoch, stop at trial 1's: the reply to report() carries them."""
    store = Store(tmp_path / "t.db")
    from tuitune.core.run.runner import Runner
    from tuitune.core.run.workers import WorkerPool, objective_ref
    from tuitune.core.search.strategies import make_strategy

    store.create_session("c", strategy="random", options={}, space=SPACE.to_dict(), metric="val_loss",
                         direction="minimize", seed=0, max_epochs=4, n_trials=4)
    strat = make_strategy("random", SPACE, seed=0, max_epochs=4, metric="val_loss", direction="minimize", n_trials=4)
    runner: Runner

    def listen(e: ev.Event) -> None:
        if isinstance(e, ev.EpochReported) and e.epoch == 1:
            if e.number == 0:
                runner.abort_trial(0)
            elif e.number == 1:
                runner.stop()

    pool = WorkerPool(objective_ref(objectives.slow), plan_slots(["cpu"], 1), tmp_path)
    runner = Runner(store, "c", objectives.slow, strat, listeners=[listen], pool=pool)
    result = runner.run()
    assert result.state == "stopped"
    t0, t1 = store.trials("c")
    assert (t0.state, t0.reason, len(t0.epochs)) == (TrialState.PRUNED, "aborted by the user", 1)
    assert t1.state == TrialState.INTERRUPTED and len(t1.epochs) == 1
    # Resume: the interrupted trial runs again and the session completes.
    s = tt.tune(objectives.slow, SPACE, trials=4, max_epochs=4, db=tmp_path / "t.db", session="c", workers=1)
    assert sorted(t.state.value for t in s.trials) == ["complete", "complete", "complete", "pruned"]


def test_abort_of_every_running_trial_spares_the_trials_after_it(tmp_path, objectives, monkeypatch):
    """With two workers someone is always running: "abort" means the trials running when it was given."""
    hold = tmp_path / "hold"
    hold.touch()  # no trial gets past its first epoch before the abort: none can finish first
    monkeypatch.setenv("TT_HOLD", str(hold))
    store = Store(tmp_path / "t.db")
    from tuitune.core.run.runner import Runner
    from tuitune.core.run.workers import WorkerPool, objective_ref
    from tuitune.core.search.strategies import make_strategy

    store.create_session("a", strategy="random", options={}, space=SPACE.to_dict(), metric="val_loss",
                         direction="minimize", seed=0, max_epochs=3, n_trials=6)
    strat = make_strategy("random", SPACE, seed=0, max_epochs=3, metric="val_loss", direction="minimize", n_trials=6)
    runner: Runner
    aborted: list[int] = []

    def listen(e: ev.Event) -> None:
        if isinstance(e, ev.EpochReported) and not aborted and len(runner.running_trials) == 2:
            aborted.extend(runner.running_trials)
            runner.abort_trial()  # every running trial, as the TUI's `a` and `tuitune open`'s `a` send it
            hold.unlink()  # the trials after it run freely

    pool = WorkerPool(objective_ref(objectives.held), plan_slots(["cpu"], 2), tmp_path)
    runner = Runner(store, "a", objectives.held, strat, listeners=[listen], pool=pool)
    assert runner.run().state == "finished"
    by = {t.number: t for t in store.trials("a")}
    assert len(aborted) == 2 and len(by) == 6
    assert all((by[n].state, by[n].reason) == (TrialState.PRUNED, "aborted by the user") for n in aborted)
    assert all(by[n].state == TrialState.COMPLETE and len(by[n].epochs) == 3 for n in by if n not in aborted)


def test_an_objective_a_worker_cannot_load_is_one_clear_error(tmp_path, monkeypatch):
    (tmp_path / "tt_broken_obj.py").write_text(BROKEN)
    monkeypatch.syspath_prepend(str(tmp_path))
    import tt_broken_obj  # imports fine here, not in a worker

    with pytest.raises(SetupError) as info:
        tt.tune(tt_broken_obj.objective, SPACE, trials=2, db=tmp_path / "t.db", session="b", workers=1)
    msg = str(info.value)
    assert "tt_broken_obj:objective" in msg and "no driver here" in msg and "workers=0" in msg
    assert tt.load("b", db=tmp_path / "t.db").trials == []


@pytest.mark.parametrize(
    "spec, words",
    [("gpu0", "not a device name"), ("cpu,cpu", "twice"), ("", "empty"), ("cpu,all", "stands alone")],
)
def test_bad_devices_are_one_clear_line(spec, words):
    with pytest.raises(WorkerError, match=words):
        parse_devices(spec)


def test_too_many_workers_is_refused():
    with pytest.raises(WorkerError, match="more than tuitune allows"):
        plan_slots(["cpu"], 1000)


def test_cli_bad_worker_settings_are_one_line(tmp_path):
    env = {**os.environ, "TUITUNE_DB": str(tmp_path / "t.db")}
    for args, words in [
        (["--devices", "gpu0"], "gpu0"),
        (["--workers", "500"], "more than tuitune allows"),
        (["--devices", "cuda:7"], "cuda:7"),
    ]:
        p = subprocess.run(
            [sys.executable, "-m", "tuitune", "run", "digits-mlp", "--headless", *args],
            capture_output=True, text=True, env=env, timeout=120,
        )
        assert p.returncode == 2, p.stderr
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], p.stderr
    assert not Store(tmp_path / "t.db").sessions()


def _preset(tmp_path: Path, objectives, fn: str, epochs: int = 4) -> Path:
    p = tmp_path / "p.toml"
    p.write_text(textwrap.dedent(f"""
        name = "w"
        description = "worker tests"
        objective = "{objectives.__name__}:{fn}"
        metric = "val_loss"
        direction = "minimize"
        max_epochs = {epochs}
        [defaults]
        x = 0.5
        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
    """))
    return p


def _sessions(db: Path, env: dict) -> list[dict]:
    out = subprocess.run(
        [sys.executable, "-m", "tuitune", "--db", str(db), "sessions", "--json"],
        capture_output=True, text=True, env=env, check=True, timeout=120,
    ).stdout
    return json.loads(out)


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status  # a zombie waiting for its reaper has ended


def test_kill_9_of_the_coordinator_reads_dead_leaves_no_worker_and_resumes(tmp_path, objectives):
    db = tmp_path / "t.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]), "TT_EPOCH": "0.2"}
    preset = _preset(tmp_path, objectives, "slow", epochs=5)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuitune", "--db", str(db), "run", str(preset), "--headless", "--trials", "6",
         "--session", "k", "--devices", "cpu", "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path,
    )
    try:
        _wait(lambda: db.exists() and Store(db).session_exists("k"), "the session to be created")
        store = Store(db)
        _wait(lambda: store.count_epochs("k") >= 3 and len(store.trials("k")) >= 2, "epoch rows from both workers")
        pids = {t.info["pid"] for t in store.trials("k") if "pid" in t.info}
        assert store.session("k").alive
    finally:
        proc.kill()
        proc.wait()
    before = {(t.number, e["epoch"]) for t in store.trials("k") for e in t.epochs}
    _wait(lambda: not _sessions(db, env)[0]["alive"], "the session to read dead")
    row = _sessions(db, env)[0]
    assert row["state"] == "interrupted"
    assert any(t.state == TrialState.INTERRUPTED for t in store.trials("k"))
    _wait(lambda: all(_gone(p) for p in pids), "the workers to exit after their coordinator")
    p = subprocess.run(
        [sys.executable, "-m", "tuitune", "--db", str(db), "resume", "k", "--headless"],
        capture_output=True, text=True, env={**env, "TT_EPOCH": "0.01"}, cwd=tmp_path, timeout=300,
    )
    assert p.returncode == 0, p.stderr
    after = {(t.number, e["epoch"]) for t in store.trials("k") for e in t.epochs}
    assert before <= after  # nothing committed was lost
    assert [t.state.value for t in store.trials("k")] == ["complete"] * 6, p.stdout + p.stderr
    assert store.integrity_check() == ["ok"]


def test_follow_a_session_another_process_runs_and_pause_it(tmp_path, objectives):
    db = tmp_path / "t.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]), "TT_EPOCH": "0.05"}
    preset = _preset(tmp_path, objectives, "slow", epochs=4)
    p = subprocess.run(
        [sys.executable, "-m", "tuitune", "--db", str(db), "run", str(preset), "--trials", "3", "--session", "f",
         "--detach"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert f"tuitune --db {db} open f" in p.stdout
    store = Store(db)
    events: list[ev.Event] = []
    follower = Follower(store, "f", [events.append])
    _wait(lambda: follower.poll() and any(isinstance(e, ev.EpochReported) for e in events), "a followed epoch")
    follower.pause()
    _wait(lambda: follower.poll() is not None and store.session("f").state == "paused", "the owner to pause")
    n = store.count_epochs("f")
    follower.poll()
    assert any(isinstance(e, ev.SessionPaused) and e.paused for e in events)
    follower.resume()
    _wait(lambda: not follower.poll(), "the session to finish", limit=120)
    assert store.count_epochs("f") > n
    kinds = {type(e).__name__ for e in events}
    assert {"SessionStarted", "TrialStarted", "EpochReported", "TrialFinished", "SessionFinished"} <= kinds
    finished = [e for e in events if isinstance(e, ev.TrialFinished)]
    assert sorted(e.trial.number for e in finished) == [0, 1, 2]
    log = files_dir(db) / "logs" / "f" / "session.log"
    # The detached process prints its summary just after the session row says finished.
    _wait(lambda: log.exists() and "best:" in log.read_text(), "the detached run's summary in its log")


def test_aliveness_rule():
    from tuitune.core.records import ALIVE_WITHIN, is_alive

    now = 1000.0
    assert is_alive(now - 0.5, now) and not is_alive(None, now)
    assert not is_alive(now - ALIVE_WITHIN - 0.01, now) and ALIVE_WITHIN < 5  # dead within 5 s


def test_sessions_never_cuts_a_name_piped(tmp_path):
    name = "keen-puffin-with-a-rather-long-session-name-42"
    tt.tune(lambda c, t: c["x"], SPACE, trials=1, db=tmp_path / "t.db", session=name, workers=0)
    out = subprocess.run([sys.executable, "-m", "tuitune", "--db", str(tmp_path / "t.db"), "sessions"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert name in out


def test_the_session_log_says_how_long_workers_waited_for_suggestions(tmp_path, objectives, monkeypatch):
    """Each ask is timed while its worker waits (issue 20 item 5): the run's end writes the sum to session.log."""
    from tuitune.core.search.strategies.random import RandomStrategy

    ask = RandomStrategy.ask

    def slow_ask(self):
        time.sleep(0.05)  # a model's fit, as the coordinator sees it
        return ask(self)

    monkeypatch.setattr(RandomStrategy, "ask", slow_ask)
    db = tmp_path / "t.db"
    s = tt.tune(objectives.slow, SPACE, trials=4, max_epochs=2, db=db, session="asks", devices="cpu", workers=2)
    assert [t.state for t in s.trials] == [TrialState.COMPLETE] * 4
    text = (files_dir(db) / "logs" / "asks" / "session.log").read_text()
    line = next(ln for ln in text.splitlines() if " asks: " in ln)
    m = re.search(r"asks: (\d+) in ([\d.]+) s \(([\d.]+) ms each\); workers idle waiting for a suggestion: ([\d.]+) worker-s, "
                  r"([\d.]+)% of 2 worker\(s\)", line)
    assert m, line
    asks, seconds, idle = int(m[1]), float(m[2]), float(m[4])
    assert asks >= 4 and seconds >= 0.05 * asks  # every ask counted, with its time
    assert idle >= seconds  # each ask keeps at least its own worker waiting
