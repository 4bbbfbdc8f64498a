"""Hostile conditions inside one process: I/O faults, hung objectives, errors in the objective's threads."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

import tuitune as tt
from tuitune.core.errors import StoreWriteError
from tuitune.core.records import TrialState
from tuitune.core.run.runner import Runner
from tuitune.core.search.strategies import make_strategy
from tuitune.core.store.store import Store

SPACE = tt.Space(x=tt.Float(0.0, 1.0))


def objective(config, trial):
    for e in trial.epochs():
        trial.report(val_loss=config["x"] / e)


def new_session(path, trials=4, epochs=3):
    store = Store(path)
    store.create_session("s", strategy="random", options={}, space=SPACE.to_dict(), metric="val_loss",
                         direction="minimize", seed=0, max_epochs=epochs, n_trials=trials)
    return store


def strategy(trials=4, epochs=3):
    return make_strategy("random", SPACE, n_trials=trials, max_epochs=epochs)


def snapshot(store):
    return [(t.number, t.state.value, t.config, [dict(e, time=0) for e in t.epochs]) for t in store.trials("s")]


@pytest.mark.parametrize("n", range(1, 26))
def test_nth_write_fails_then_resumes(tmp_path, n):
    """The Nth write transaction of a session fails (an injected I/O error just before COMMIT)."""
    store = new_session(tmp_path / "f.db")
    count = [0]

    def fault():
        count[0] += 1
        if count[0] == n:
            raise sqlite3.OperationalError("disk I/O error")

    store.fault = fault
    try:
        Runner(store, "s", objective, strategy()).run()
        failed = False
    except StoreWriteError as e:
        failed = True
        assert "could not write to" in str(e) and "disk I/O error" in str(e) and "resume" in str(e)
    assert failed == (n <= count[0])
    store.fault = None
    reader = Store(tmp_path / "f.db")
    assert reader.integrity_check() == ["ok"]
    for t in reader.trials("s"):  # nothing half-written: every epoch row belongs to a whole transaction
        assert [e["epoch"] for e in t.epochs] == list(range(1, len(t.epochs) + 1))
    before = snapshot(reader)
    Runner(store, "s", objective, strategy()).run()  # the fault is gone: the session resumes and ends
    after = store.trials("s")
    assert len(after) == 4 and all(t.state == TrialState.COMPLETE for t in after)
    for t_before, t_after in zip(before, after):  # what was committed is still there
        if t_before[1] == "complete":
            assert t_before[2] == t_after.config and len(t_before[3]) == t_after.last_epoch


def test_disk_full_is_a_clear_stop(tmp_path):
    """A real SQLITE_FULL: the file may not grow past its current pages."""
    store = new_session(tmp_path / "full.db", trials=50, epochs=20)
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count = {pages + 2}")
    with pytest.raises(StoreWriteError, match="full"):
        Runner(store, "s", objective, strategy(50, 20)).run()
    assert Store(tmp_path / "full.db").integrity_check() == ["ok"]


def test_hung_epoch_past_the_time_limit_fails_the_trial(tmp_path):
    store = new_session(tmp_path / "h.db", trials=2)

    def hung(config, trial):
        for e in trial.epochs():
            if trial.number == 0 and e == 2:
                time.sleep(600)  # a dead NFS read, a deadlocked loader...
            trial.report(val_loss=1.0)

    t0 = time.monotonic()
    Runner(store, "s", hung, strategy(2), trial_timeout=0.5).run()
    assert time.monotonic() - t0 < 10
    t = store.trials("s")
    assert t[0].state == TrialState.FAILED and "timed out" in t[0].reason and t[0].last_epoch == 1
    assert t[1].state == TrialState.COMPLETE


def test_stop_cuts_off_a_hung_epoch_after_the_grace(tmp_path):
    store = new_session(tmp_path / "g.db", trials=2)
    started = threading.Event()

    def hung(config, trial):
        for _e in trial.epochs():
            trial.report(val_loss=1.0)
            started.set()
            while True:  # never yields to epochs()
                time.sleep(0.01)

    runner = Runner(store, "s", hung, strategy(2), stop_grace=0.5)
    th = threading.Thread(target=runner.run)
    th.start()
    assert started.wait(10)
    t0 = time.monotonic()
    runner.stop("stopped by SIGTERM")
    th.join(15)
    assert not th.is_alive() and time.monotonic() - t0 < 5
    t = store.trial("s", 0)
    assert t.state == TrialState.INTERRUPTED and "SIGTERM" in t.reason and t.last_epoch == 1
    assert store.session("s").state == "stopped"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_an_error_in_a_thread_of_the_objective_fails_its_trial(tmp_path):
    store = new_session(tmp_path / "t.db", trials=2)

    def with_thread(config, trial):
        for e in trial.epochs():
            if trial.number == 0 and e == 1:
                th = threading.Thread(target=lambda: 1 / 0, name="loader-worker")
                th.start()
                th.join()
            trial.report(val_loss=1.0)

    Runner(store, "s", with_thread, strategy(2)).run()
    t = store.trials("s")
    assert t[0].state == TrialState.FAILED and "loader-worker" in t[0].reason and "ZeroDivisionError" in t[0].reason
    assert t[1].state == TrialState.COMPLETE


def test_user_code_swallowing_exceptions_cannot_hide_a_hang(tmp_path):
    store = new_session(tmp_path / "w.db", trials=1)

    def stubborn(config, trial):
        for _e in trial.epochs():
            try:
                time.sleep(600)
            except Exception:  # the watchdog's interrupt is not an Exception
                pass
            trial.report(val_loss=1.0)

    Runner(store, "s", stubborn, strategy(1), trial_timeout=0.3).run()
    assert store.trial("s", 0).state == TrialState.FAILED
