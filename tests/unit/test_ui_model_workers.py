"""SessionView with several workers: the running trials, the latest one, and the ETA shared among workers."""

from __future__ import annotations

import dataclasses

import pytest

from tuitune.core.records import TrialRecord, TrialState
from tuitune.core.store.store import Store
from tuitune.ui.model import SessionView


def _view(tmp_path, workers: int, devices: list[str]) -> tuple[Store, SessionView]:
    store = Store(tmp_path / "t.db")
    store.create_session("s", strategy="random", options={}, space={}, metric="val_loss", direction="minimize",
                         seed=0, max_epochs=4, n_trials=6, info={"workers": workers, "devices": devices})
    return store, SessionView(store, "s")


def _began(t: TrialRecord) -> TrialRecord:
    """The record a run's TrialBegan carries (this test's store has no live owner: it reads 'interrupted')."""
    return dataclasses.replace(t, state=TrialState.RUNNING)


def test_running_trials_and_the_latest_after_one_ends(tmp_path):
    store, view = _view(tmp_path, 2, ["cpu"])
    a = store.new_trial("s", config={}, budget=4)
    b = store.new_trial("s", config={}, budget=4)
    view.trial_started(_began(a))
    view.trial_started(_began(b))
    assert view.running() == [0, 1] and view.current == 1
    done = store.finish_trial("s", 1, state=TrialState.COMPLETE, value=0.5)
    view.trial_finished(done)
    assert view.running() == [0] and view.current == 0  # the sibling still runs: it is the latest now
    view.trial_started(_began(store.start_trial("s", 1, budget=4)))  # run again: it started last
    assert view.running() == [0, 1] and view.current == 1
    view.trial_finished(store.finish_trial("s", 0, state=TrialState.COMPLETE, value=0.4))
    view.trial_finished(store.finish_trial("s", 1, state=TrialState.COMPLETE, value=0.3))
    assert view.running() == [] and view.current is None


@pytest.mark.parametrize("workers, devices, parallel", [(1, ["cpu"], 1), (2, ["cpu"], 2), (2, ["cuda:0", "cuda:1"], 4)])
def test_eta_is_shared_among_the_workers(tmp_path, workers, devices, parallel):
    store, view = _view(tmp_path, workers, devices)
    for _ in range(2):  # two complete trials of 10 s each
        t = store.new_trial("s", config={}, budget=4)
        for e in range(1, 5):
            store.add_epoch("s", t.number, e, {"val_loss": 1.0 / e, "epoch_seconds": 2.5})
        store.finish_trial("s", t.number, state=TrialState.COMPLETE, value=0.25)
    running = store.new_trial("s", config={}, budget=4)  # half way
    view.reset()
    view.load_seconds()
    view.trial_started(_began(running))
    view.epochs(running.number, 4, ({"epoch": 1, "val_loss": 1.0}, {"epoch": 2, "val_loss": 0.5}))
    assert view.parallel() == parallel
    # 6 planned, 2 done, one half way: 3.5 trials of 10 s left, shared among the workers.
    assert view.eta() == pytest.approx(35.0 / parallel)


def test_eta_counts_the_trials_running_at_once_beyond_the_placed_workers(tmp_path):
    """``--workers auto`` starts one worker per device and packs more; fused arrays train several trials in one
    worker: the ETA is shared among the trials running now when they outnumber the workers placed."""
    store = Store(tmp_path / "t.db")
    store.create_session("s", strategy="random", options={}, space={}, metric="val_loss", direction="minimize",
                         seed=0, max_epochs=4, n_trials=8,
                         info={"placement": {"backend": "local", "workers": "auto", "devices": ["cpu"], "fuse": 1}})
    view = SessionView(store, "s")
    for _ in range(2):  # two complete trials of 10 s each
        t = store.new_trial("s", config={}, budget=4)
        for e in range(1, 5):
            store.add_epoch("s", t.number, e, {"val_loss": 1.0 / e, "epoch_seconds": 2.5})
        store.finish_trial("s", t.number, state=TrialState.COMPLETE, value=0.25)
    view.reset()
    view.load_seconds()
    assert view.parallel() == 1 and view.eta() == pytest.approx(60.0)  # 6 trials left, one worker to start
    for _ in range(3):  # packed: three run on the one device
        view.trial_started(_began(store.new_trial("s", config={}, budget=4)))
    assert view.eta() == pytest.approx(60.0 / 3)


def test_a_held_trial_reads_waiting_in_the_leaderboard_not_running(tmp_path):
    """A trial asked ahead for the next fused array is a 'running' row with ``info["held"]`` until it starts:
    its state column says it waits (its where column says held), not 'running 0/4'."""
    from tuitune.core.records import LeaderRow, TrialSummary
    from tuitune.ui.widgets.leaderboard import Leaderboard

    store = Store(tmp_path / "t.db")
    store.create_session("s", strategy="random", options={}, space={}, metric="val_loss", direction="minimize",
                         seed=0, max_epochs=4, n_trials=8,
                         info={"placement": {"backend": "local", "workers": 1, "devices": ["cpu"], "fuse": 4}})
    board = Leaderboard()
    board.update(SessionView(store, "s"))
    cols = [c.key for c in board.columns]
    held = TrialRecord(0, TrialState.RUNNING, {}, budget=4, info={"held": True})
    started = TrialRecord(1, TrialState.RUNNING, {}, budget=4, info={"worker": 0, "device": "cpu"})
    cells = {t.number: dict(zip(cols, (text for text, _ in board._format(LeaderRow(t, TrialSummary(last_epoch=0))))))
             for t in (held, started)}
    assert cells[0]["state"] == "waiting" and cells[0]["where"] == "held"
    assert cells[1]["state"] == "running 0/4" and cells[1]["where"] == "w0 cpu"
