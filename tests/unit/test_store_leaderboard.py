"""The store's leaderboard reads: orders and pages in SQL, summaries without parsing epoch rows,
bulk writes, notes in show and export."""

from __future__ import annotations

import json

from tuitune.core.records import TrialRecord, TrialState
from tuitune.core.store.export import export_document
from tuitune.core.store.store import Store


def _session(store: Store, direction: str = "minimize") -> None:
    store.create_session(
        "s", strategy="random", options={}, space={"lr": {"type": "float", "low": 0.0, "high": 1.0}},
        metric="loss", direction=direction, seed=0, max_epochs=3, n_trials=None,
    )


def _trials() -> list[TrialRecord]:
    def t(n, state, value, lr, secs=(0.5, 0.5)):
        eps = tuple({"epoch": i + 1, "loss": 1.0, "val_acc": 0.5 + i / 10, "epoch_seconds": s} for i, s in enumerate(secs))
        return TrialRecord(n, state, {"lr": lr}, value, 3, eps, started=10.0, finished=20.0)

    return [
        t(0, TrialState.COMPLETE, 0.3, 0.9),
        t(1, TrialState.FAILED, None, 0.1, ()),
        t(2, TrialState.COMPLETE, 0.1, 0.5, (1.0, 2.0, 3.0)),
        t(3, TrialState.PRUNED, 0.7, 0.2),
        t(4, TrialState.COMPLETE, 0.2, 0.7),
        t(5, TrialState.COMPLETE, 0.1, 0.3),
    ]


def test_orders_pages_and_ranks(tmp_path):
    store = Store(tmp_path / "t.db")
    _session(store)
    assert store.add_trials("s", _trials()) == 6
    # Complete best first (ties by number), then pruned, then failed.
    assert store.leaderboard_order("s", "rank") == [2, 5, 4, 0, 3, 1]
    assert store.leaderboard_order("s", "trial") == [0, 1, 2, 3, 4, 5]
    assert store.leaderboard_order("s", "param:lr") == [1, 3, 5, 2, 4, 0]
    page = store.leaderboard_page("s", "rank", 1, 3)
    assert [(r.trial.number, r.rank) for r in page] == [(5, 2), (4, 3), (0, 4)]
    assert page[0].trial.epochs == ()  # rows come without their epochs
    time_page = store.leaderboard_page("s", "time", 0, 2)
    # Trial 1 reported no epoch_seconds: its 10 s from start to end count; then trial 2, 6 s of training.
    assert [r.trial.number for r in time_page] == [1, 2]
    s2 = store.leaderboard_rows("s", [2])[2].summary
    assert (s2.last_epoch, s2.train_seconds, s2.best_acc) == (3, 6.0, 0.7)
    assert store.leaderboard_rows("s", [1])[1].summary.train_seconds is None  # no epochs
    assert store.state_counts("s") == {"complete": 4, "failed": 1, "pruned": 1}
    assert store.best_trial("s").number == 2 and store.best_trial("s").epochs
    assert store.count_complete("s") == 4
    assert [n for n, _, _ in store.complete_values("s", "lr")] == [0, 2, 4, 5]
    assert store.trial_seconds("s")[2] == ("complete", 6.0)
    assert store.epochs_of("s", [3])[3][0]["epoch"] == 1
    assert store.budgets("s") == [3]
    assert "epoch_seconds" in store.metric_names("s")


def test_maximize_ranks_the_highest_first(tmp_path):
    store = Store(tmp_path / "t.db")
    _session(store, "maximize")
    store.add_trials("s", _trials())
    assert store.leaderboard_order("s", "rank")[:4] == [0, 4, 2, 5]


def test_notes_are_exported(tmp_path):
    store = Store(tmp_path / "t.db")
    _session(store)
    store.add_trials("s", _trials())
    store.set_note("s", "first try at lr")
    store.set_note("s", "  the best, by luck?  ", trial=2)
    doc = export_document(store.session("s"), store.best_trial("s"))
    assert doc["note"] == "first try at lr" and doc["trial_note"] == "the best, by luck?"
    json.dumps(doc)
