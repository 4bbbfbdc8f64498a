"""The leaderboard's in-memory sort keys agree with the store's SQL orders, before and after updates."""

from __future__ import annotations

import random

from tests.unit.test_store_leaderboard import _session, _trials
from tuitune.core.records import TrialRecord, TrialState
from tuitune.core.store.store import Store
from tuitune.ui.model import SessionView, SortArrays


def test_arrays_agree_with_sql_and_follow_updates(tmp_path):
    store = Store(tmp_path / "t.db")
    _session(store)
    rnd = random.Random(4)
    recs = [
        TrialRecord(i, rnd.choice([TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED]), {"lr": rnd.choice([0.1, 0.2, 0.3, "x", None])},
                    rnd.choice([0.5, 0.25, 0.75, None]), 3)
        for i in range(200)
    ]
    store.add_trials("s", [*_trials(), *recs])
    view = SessionView(store, "s")
    view.load_seconds()
    assert view.arrays is not None
    for key in ("rank", "trial", "param:lr"):
        sql = store.leaderboard_order("s", key)
        assert view.order(key) == sql, key
    ranked = store.leaderboard_order("s", "rank")
    n_complete = store.count_complete("s")
    assert [view.rank_of(n) for n in ranked[:n_complete]] == list(range(1, n_complete + 1))
    # A failed trial finishes best (a promotion), a new trial begins: the arrays move them.
    store.finish_trial("s", 1, state="complete", value=-1.0)
    view.trial_finished(store.trial("s", 1))
    assert view.order("rank")[0] == 1 and view.rank_of(1) == 1
    t = store.new_trial("s", config={"lr": 0.15}, budget=3)
    view.trial_started(t)
    for key in ("rank", "param:lr"):
        assert view.order(key) == store.leaderboard_order("s", key), key


def test_update_of_an_unknown_trial_inserts_it():
    arrays = SortArrays([(0, "complete", 2.0, {"a": 1}), (1, "complete", 1.0, {"a": 0})], ["a"], 1.0)
    assert arrays.numbers("rank") == [1, 0] and arrays.numbers("a") == [1, 0]
    arrays.update(2, "complete", 0.5, {"a": 5})
    assert arrays.numbers("rank") == [2, 1, 0] and arrays.numbers("a") == [1, 0, 2]
    assert arrays.rank(0) == 3
