"""The trial loop: failures contained, states, values, checkpoints, commands, events."""

from __future__ import annotations

import threading

import pytest
import torch

import tuitune as tt
from tests.support.project import wait_until
from tuitune.core import events as ev
from tuitune.core.api import Session
from tuitune.core.errors import TooManyFailuresError
from tuitune.core.records import TrialState
from tuitune.core.run.runner import Runner
from tuitune.core.search.strategies import make_strategy
from tuitune.core.store.store import Store, files_dir

SPACE = tt.Space(x=tt.Float(0.0, 1.0))


def run(tmp_path, objective, trials=4, epochs=3, **kw):
    kw.setdefault("workers", 0)  # the runner's rules, in this process (worker processes: tests/functional)
    return tt.tune(objective, SPACE, strategy="random", trials=trials, max_epochs=epochs, db=tmp_path / "r.db", session="s", **kw)


def states(session):
    return [t.state for t in session.trials]


def test_values_are_the_best_epoch_or_the_return(tmp_path):
    def obj(config, trial):
        for e in trial.epochs():
            trial.report(val_loss=[3.0, 1.0, 2.0][e - 1], train_loss=1.0)

    s = run(tmp_path, obj)
    assert all(t.value == 1.0 and t.last_epoch == 3 for t in s.trials)

    s2 = tt.tune(lambda c, t: c["x"] * 2, SPACE, trials=3, db=tmp_path / "b.db", session="s", workers=0)
    assert [t.value for t in s2.trials] == pytest.approx([t.config["x"] * 2 for t in s2.trials])


def test_maximize_ranks_the_other_way(tmp_path):
    s = tt.tune(lambda c, t: c["x"], SPACE, trials=6, direction="maximize", metric="acc", db=tmp_path / "m.db", session="s", workers=0)
    assert s.best.value == max(t.value for t in s.trials)
    assert [t.value for t in s.leaderboard()] == sorted((t.value for t in s.trials), reverse=True)


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("raise", "ValueError: boom"),
        ("nan", "val_loss is nan at epoch 2"),
        ("inf", "val_loss is inf at epoch 2"),
        ("oom", "out of memory"),
        ("cpu-oom", "out of memory"),
        ("exit", "SystemExit"),
        ("nothing", "reported no 'val_loss'"),
        ("bad-return", "return a float or None"),
        ("nan-return", "returned nan"),
    ],
)
def test_failures_are_contained(tmp_path, kind, reason):
    def obj(config, trial):
        if trial.number % 2 == 0:  # every other trial misbehaves; the session goes on
            for e in trial.epochs():
                if e == 2:
                    if kind == "raise":
                        raise ValueError("boom")
                    if kind in ("nan", "inf"):
                        trial.report(val_loss=float(kind))
                    if kind == "oom":
                        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
                    if kind == "cpu-oom":
                        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: out of memory")
                    if kind == "exit":
                        raise SystemExit(3)
                if kind not in ("nothing", "bad-return", "nan-return"):
                    trial.report(val_loss=1.0 - config["x"])
            if kind == "bad-return":
                return "good"
            if kind == "nan-return":
                return float("nan")
            return None
        for _e in trial.epochs():
            trial.report(val_loss=5.0)
        return None

    s = run(tmp_path, obj, trials=6)
    by = {t.number: t for t in s.trials}
    for n in (0, 2, 4):
        assert by[n].state == TrialState.FAILED and reason in by[n].reason
        assert by[n].value is None
        if kind not in ("nothing", "bad-return", "nan-return"):
            assert "Traceback" in by[n].traceback
    for n in (1, 3, 5):
        assert by[n].state == TrialState.COMPLETE
    assert s.best.number in (1, 3, 5)
    if kind in ("nan", "inf"):
        assert by[0].epochs[-1]["epoch"] == 2  # the bad row itself was committed


def test_consecutive_failures_stop_the_session(tmp_path):
    def obj(config, trial):
        raise RuntimeError("broken data")

    with pytest.raises(TooManyFailuresError, match="3 trials in a row failed.*broken data"):
        run(tmp_path, obj, trials=10)
    s = tt.load("s", db=tmp_path / "r.db")
    assert len(s.trials) == 3 and s.record.state == "failed" and s.best is None
    from tuitune.core.errors import ExportError

    with pytest.raises(ExportError, match="no complete trial"):
        s.export(tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_failure_streak_resets_after_a_success(tmp_path):
    def obj(config, trial):
        if trial.number % 3 != 2:
            raise RuntimeError("flaky")
        return 1.0

    s = run(tmp_path, obj, trials=9)
    assert len(s.trials) == 9


def test_checkpoint_restore_continues_and_is_cleaned(tmp_path):
    calls = []

    def obj(config, trial):
        state = trial.restore()
        w = state["w"] if state else torch.zeros(1)
        calls.append((trial.number, None if state is None else int(state["epoch"])))
        for e in trial.epochs():
            w = w + 1
            trial.report(val_loss=float(10 - w.item()))
            trial.checkpoint({"w": w, "epoch": e})
            if e == 2 and not state and trial.number == 0:
                runner.stop()

    store = Store(tmp_path / "c.db")
    strat = make_strategy("random", SPACE, n_trials=2, max_epochs=4)
    store.create_session("s", strategy="random", options={}, space=SPACE.to_dict(), metric="val_loss",
                         direction="minimize", seed=0, max_epochs=4, n_trials=2)
    runner = Runner(store, "s", obj, strat)
    assert runner.run().state == "stopped"
    t0 = store.trial("s", 0)
    assert t0.state == TrialState.INTERRUPTED and t0.last_epoch == 2
    assert (files_dir(store.path) / "checkpoints" / "s" / "0.pt").exists()
    runner = Runner(store, "s", obj, make_strategy("random", SPACE, n_trials=2, max_epochs=4))
    runner.run()
    t0 = store.trial("s", 0)
    assert t0.state == TrialState.COMPLETE and [e["epoch"] for e in t0.epochs] == [1, 2, 3, 4]
    assert t0.value == 6.0  # w reached 4: the run continued from the checkpoint, not from scratch
    assert calls[:2] == [(0, None), (0, 2)]
    assert not list((files_dir(store.path) / "checkpoints" / "s").glob("*.pt"))  # finished: cleaned


def test_restart_without_checkpoint_supersedes_rows(tmp_path):
    runs = []

    def obj(config, trial):
        runs.append(trial.number)
        for e in trial.epochs():
            trial.report(val_loss=float(e + len(runs)))
            if len(runs) == 1 and e == 2:
                runner.stop()

    store = Store(tmp_path / "c.db")
    store.create_session("s", strategy="random", options={}, space=SPACE.to_dict(), metric="val_loss",
                         direction="minimize", seed=0, max_epochs=3, n_trials=1)
    runner = Runner(store, "s", obj, make_strategy("random", SPACE, n_trials=1, max_epochs=3))
    runner.run()
    runner = Runner(store, "s", obj, make_strategy("random", SPACE, n_trials=1, max_epochs=3))
    runner.run()
    t = store.trial("s", 0)
    assert [e["epoch"] for e in t.epochs] == [1, 2, 3] and t.value == 3.0
    assert store.count_epochs("s", superseded=True) == 5  # the two rows of the first attempt are kept


def _commanded_runner(tmp_path, n_trials: int):
    """A Runner of ``n_trials`` 50-epoch trials whose trial 0 sets ``reached`` after its second epoch, then
    waits (mid-epoch, as commands from a UI arrive) until the test sets ``commanded``."""
    store = Store(tmp_path / "p.db")
    store.create_session("s", strategy="random", options={}, space=SPACE.to_dict(), metric="val_loss",
                         direction="minimize", seed=0, max_epochs=50, n_trials=n_trials)
    seen: list[ev.Event] = []
    reached = threading.Event()
    commanded = threading.Event()

    def obj(config, trial):
        for e in trial.epochs():
            trial.report(val_loss=1.0 / e)
            if trial.number == 0 and e == 2:
                reached.set()
                assert commanded.wait(10)

    strategy = make_strategy("random", SPACE, n_trials=n_trials, max_epochs=50)
    runner = Runner(store, "s", obj, strategy, listeners=[seen.append])
    return store, runner, seen, reached, commanded


def test_commands_pause_abort_stop_after(tmp_path):
    store, runner, seen, reached, commanded = _commanded_runner(tmp_path, 3)
    runner.pause()
    th = threading.Thread(target=runner.run)
    th.start()
    assert not reached.wait(0.5)  # paused before the first trial: nothing runs
    runner.resume()
    assert reached.wait(10)
    runner.abort_trial()
    runner.stop_after_trial()
    commanded.set()
    th.join(20)
    t0 = store.trial("s", 0)
    assert t0.state == TrialState.PRUNED and t0.reason == "aborted by the user" and t0.last_epoch < 50
    assert len(store.trials("s")) == 1 and store.session("s").state == "stopped"
    kinds = [type(e).__name__ for e in seen]
    assert kinds[0] == "SessionPaused" and "SessionStarted" in kinds and kinds[-1] == "SessionFinished"


def test_an_abort_while_paused_ends_the_trial_and_the_session_stays_paused(tmp_path):
    store, runner, seen, reached, commanded = _commanded_runner(tmp_path, 2)
    th = threading.Thread(target=runner.run)
    th.start()
    assert reached.wait(10)
    runner.pause()
    runner.abort_trial(0)
    commanded.set()
    wait_until(lambda: store.trial("s", 0).state == TrialState.PRUNED, timeout=20, what="trial 0 aborted")
    assert runner.paused  # the abort did not resume the session
    assert [t.number for t in store.trials("s")] == [0]  # and no trial started while paused
    runner.resume()
    th.join(20)
    assert [t.state for t in store.trials("s")] == [TrialState.PRUNED, TrialState.COMPLETE]
    assert [e.paused for e in seen if isinstance(e, ev.SessionPaused)] == [True, False]


def test_a_broken_listener_never_stops_training(tmp_path):
    def bad(e):
        raise RuntimeError("display gone")

    s = run(tmp_path, lambda c, t: c["x"], trials=3, listeners=[bad])
    assert states(s) == [TrialState.COMPLETE] * 3


def test_trial_timeout(tmp_path):
    import time

    def obj(config, trial):
        for _e in trial.epochs():
            time.sleep(0.05)
            trial.report(val_loss=1.0)

    s = run(tmp_path, obj, trials=1, epochs=100, trial_timeout=0.2, max_failures=5)
    t = s.trials[0]
    assert t.state == TrialState.FAILED and "timed out" in t.reason and 1 <= t.last_epoch < 100


def test_trial_records_provenance(tmp_path):
    def obj(config, trial):
        trial.info["device"] = "cpu"
        return 1.0

    s = run(tmp_path, obj, trials=1, seed=11)
    info = s.trials[0].info
    assert info["python"] and info["tuitune"] == tt.__version__ and info["seed"] == 11
    assert info["device"] == "cpu" and info["torch"] == torch.__version__


def test_export_document(tmp_path):
    s = tt.tune(lambda c, t: c["x"], tt.Space(x=tt.Float(0, 1), opt=tt.Fixed("adam")), trials=3, db=tmp_path / "e.db", session="s", workers=0)
    import json

    path = s.export(tmp_path / "best.json")
    doc = json.loads(path.read_text())
    for key in ("session", "preset", "strategy", "metric", "direction", "value", "trial", "config", "epochs", "versions"):
        assert key in doc
    assert doc["config"]["opt"] == "adam" and doc["value"] == s.best.value and doc["trial"] == s.best.number
    assert {"python", "torch", "tuitune"} <= set(doc["versions"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".best.json")]


def test_existing_session_name_resumes_or_refuses(tmp_path):
    from tuitune.core.errors import SessionExistsError

    s = tt.tune(lambda c, t: c["x"], SPACE, trials=2, db=tmp_path / "x.db", session="s", workers=0)
    s = tt.tune(lambda c, t: c["x"], SPACE, trials=4, db=tmp_path / "x.db", session="s", workers=0)
    assert len(s.trials) == 4
    with pytest.raises(SessionExistsError, match="strategy 'random'"):
        tt.tune(lambda c, t: c["x"], SPACE, strategy="bayes", trials=4, db=tmp_path / "x.db", session="s", workers=0)
    assert isinstance(Session(s.store, "s").best.value, float)


def test_a_strategy_that_raises_never_leaves_the_session_running(tmp_path):
    store = Store(tmp_path / "x.db")
    store.create_session("s", strategy="random", options={}, space=SPACE.to_dict(), metric="val_loss",
                         direction="minimize", seed=0, max_epochs=1, n_trials=3)
    strat = make_strategy("random", SPACE, n_trials=3, max_epochs=1)

    def broken():
        raise ValueError("strategy exploded")

    strat.ask = broken
    with pytest.raises(ValueError):
        Runner(store, "s", lambda c, t: 1.0, strat).run()
    rec = store.session("s")
    assert rec.state == "failed" and "strategy exploded" in rec.message


def test_a_setup_error_stops_the_session_and_the_trial_runs_again(tmp_path):
    from tuitune.core.errors import SetupError

    store = Store(tmp_path / "s.db")
    store.create_session("s", strategy="random", options={}, space=SPACE.to_dict(), metric="val_loss",
                         direction="minimize", seed=0, max_epochs=1, n_trials=3)
    present = [False]

    def obj(config, trial):
        if not present[0]:
            raise SetupError("dataset 'x' is missing: put its files in /data")
        return config["x"]

    with pytest.raises(SetupError, match="missing"):
        Runner(store, "s", obj, make_strategy("random", SPACE, n_trials=3, max_epochs=1)).run()
    t = store.trials("s")
    assert len(t) == 1 and t[0].state == TrialState.INTERRUPTED and "missing" in t[0].reason
    assert store.session("s").state == "failed"
    present[0] = True
    Runner(store, "s", obj, make_strategy("random", SPACE, n_trials=3, max_epochs=1)).run()
    assert [x.state for x in store.trials("s")] == [TrialState.COMPLETE] * 3
