"""Warm starts (``warm_start=``): earlier trials fitted to the space and ranked, their best configs first."""

from __future__ import annotations

import pytest

import tuitune as tt
from tuitune.core.errors import SessionError
from tuitune.core.records import TrialRecord, TrialState
from tuitune.core.search.space import Choice, Float, Int, Space
from tuitune.core.search.strategies import make_strategy
from tuitune.core.search.strategies.bayes.strategy import WARM_AGREE
from tuitune.core.search.warm import WARM_FIRST, fit_config, transfer_weight, warm_trials

OLD = [
    TrialRecord(number=0, state=TrialState.COMPLETE, config={"x": 0.9, "gone": 1}, value=3.0),
    TrialRecord(number=1, state=TrialState.COMPLETE, config={"x": 0.2, "gone": 2}, value=1.0),
    TrialRecord(number=2, state=TrialState.FAILED, config={"x": 0.3, "gone": 2}),
    TrialRecord(number=3, state=TrialState.COMPLETE, config={"x": 1.5, "gone": 2}, value=0.5),  # outside now
    TrialRecord(number=4, state=TrialState.COMPLETE, config={"x": 0.4, "gone": 3}, value=2.0),
]
SPACE = Space(x=Float(0.0, 1.0), units=Int(8, 64), act=Choice(["relu", "tanh"]))


def test_earlier_trials_fit_the_space_and_keep_their_rank_within_their_session():
    w = warm_trials(SPACE, {"act": "tanh"}, [("old", "minimize", OLD)])
    # ranked 0.5 (gone: outside the new range), 1.0, 2.0, 3.0 -> ranks 0, 1/3, 2/3, 1; the failed one is not there
    assert [(e["trial"], round(e["rank"], 3)) for e in w] == [(1, 0.333), (4, 0.667), (0, 1.0)]
    assert w[0]["config"] == {"x": 0.2, "units": 36, "act": "tanh"}  # 'gone' dropped; new ones: default, middle
    assert fit_config(SPACE, {"x": 0.5, "act": "gelu"}, None) is None  # a choice that left: it does not fit
    maxi = warm_trials(SPACE, None, [("old", "maximize", OLD)])
    assert [e["trial"] for e in maxi] == [0, 4, 1]


def _tell(s, config, value, n):
    s.tell(TrialRecord(number=n, state=TrialState.COMPLETE, config=config, value=value))


@pytest.mark.parametrize("name", ["random", "grid", "bayes", "hyperband", "asha"])
def test_the_best_earlier_configs_run_first(name):
    warm = warm_trials(SPACE, {"act": "relu"}, [("old", "minimize", OLD)])
    opts = {"sampler": "random"} if name in ("hyperband", "asha") else {}
    s = make_strategy(name, SPACE, seed=0, n_trials=6 if name in ("random", "bayes") else None, max_epochs=3,
                      warm_start=warm, **opts)
    got = []
    for i in range(min(WARM_FIRST, len(warm))):
        sug = s.ask()
        got.append(sug.config)
        s.tell(TrialRecord(number=i, state=TrialState.RUNNING, config=sug.config, budget=sug.budget, meta=sug.meta))
        if name in ("bayes", "grid"):
            assert sug.meta["chosen_by"] == "warm-start"
    assert got == [e["config"] for e in warm[:WARM_FIRST]]
    if name == "grid":  # then the whole grid
        assert s.total() == SPACE.grid_size() + len(got) and s.ask().meta == {"grid_index": 0}


def test_bayes_models_the_earlier_trials_without_counting_them():
    src = [TrialRecord(number=i, state=TrialState.COMPLETE, config={"x": x}, value=(x - 0.7) ** 2)
           for i, x in enumerate([0.05, 0.2, 0.35, 0.5, 0.65, 0.72, 0.8, 0.95])]
    space = Space(x=Float(0.0, 1.0))
    warm = warm_trials(space, None, [("old", "minimize", src)])
    s = make_strategy("bayes", space, seed=0, n_trials=10, warm_start=warm, n_candidates=128, n_local=2)
    for i in range(WARM_FIRST):
        c = s.ask().config
        _tell(s, c, 100 + (c["x"] - 0.7) ** 2, i)  # a shifted metric: the ranks still line up
    sug = s.ask()
    assert s.n_created == WARM_FIRST and sug.meta["chosen_by"] == "model"  # no initial design: the model at once
    assert abs(sug.config["x"] - 0.7) < 0.15


def test_the_api_takes_warm_start_names_and_stores_the_data(tmp_path):
    def objective(config, trial):
        return (config["x"] - 0.3) ** 2

    space = tt.Space(x=tt.Float(0.0, 1.0))
    tt.tune(objective, space, trials=5, db=tmp_path / "a.db", session="old", workers=0)
    s = tt.tune(objective, space, trials=4, warm_start=["old"], db=tmp_path / "a.db", session="new", workers=0)
    stored = s.record.info["warm_start"]
    assert len(stored) == 5 and stored[0]["session"] == "old" and stored[0]["rank"] == 0.0
    assert s.trials[0].config == stored[0]["config"]
    assert len(tt.load("old", db=tmp_path / "a.db").trials) == 5  # the earlier session is untouched
    with pytest.raises(SessionError, match="^warm_start 'nope': no such session in .*; its sessions: new, old"):
        tt.tune(objective, space, trials=2, warm_start="nope", db=tmp_path / "a.db", workers=0)
    with pytest.raises(SessionError, match="^warm_start: manual mode runs the changes you ask for"):
        tt.tune(objective, space, strategy="manual", warm_start="old", db=tmp_path / "a.db", workers=0)


def test_the_transfer_weight_trusts_an_earlier_session_that_ranks_this_one_well():
    observed = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert transfer_weight([50, 10, 30, 20, 40], observed) == 1.0  # every pair ordered right (any scale)
    assert transfer_weight([-50, -10, -30, -20, -40], observed) == 0.0  # reversed: no weight
    assert transfer_weight([5, 2, 3, 1, 4], observed) == pytest.approx(0.8)  # 9 of 10 pairs right: 2 * 0.9 - 1
    assert transfer_weight([1, 1, 1, 1, 1], observed) == 0.0  # no better than chance
    assert transfer_weight([1, 2], [3.0, 3.0]) == 0.0  # no evidence
    with pytest.raises(ValueError, match="2 predictions for 3 values"):
        transfer_weight([1, 2], [1.0, 2.0, 3.0])


def _bowl(c, at):
    return (c["x"] - at) ** 2 + (c["y"] - at) ** 2


@pytest.mark.parametrize("earlier_at, agrees", [(0.25, True), (0.75, False)])
def test_bayes_keeps_to_the_earlier_best_region_only_while_the_earlier_session_ranks_this_one_well(earlier_at, agrees):
    """The optimum moved from 0.25 to 0.3: the earlier session still ranks this one's points, so the model
    searches the box around its best configs. An earlier session with its optimum at 0.75 ranks them the
    other way: no weight, and the search is the cold one's, over the whole space."""
    space = Space(x=Float(0.0, 1.0), y=Float(0.0, 1.0))
    grid = [(a / 7, b / 7) for a in range(8) for b in range(8)]
    src = [TrialRecord(number=i, state=TrialState.COMPLETE, config={"x": x, "y": y},
                       value=_bowl({"x": x, "y": y}, earlier_at)) for i, (x, y) in enumerate(grid)]
    warm = warm_trials(space, None, [("old", "minimize", src)])
    s = make_strategy("bayes", space, seed=0, n_trials=20, warm_start=warm, n_candidates=128, n_local=2)
    # This session's own points: the earlier best configs, then spread corners and the middle.
    own = [w["config"] for w in warm[:WARM_FIRST]] + [{"x": 0.9, "y": 0.9}, {"x": 0.5, "y": 0.5}, {"x": 0.9, "y": 0.1}]
    for i, c in enumerate(own):
        s.tell(TrialRecord(number=i, state=TrialState.COMPLETE, config=c, value=100 + 3 * _bowl(c, 0.3)))
    data = s._data()
    weight = s.warm_weight(data["u_obs"], data["y_obs"])
    assert (weight >= WARM_AGREE) == agrees, weight
    if agrees:
        lo, hi = s._warm_box(data)
        assert (hi - lo).max() < 0.6  # a box around the earlier best region, not the whole space
        sug = s.ask()
        assert sug.meta["chosen_by"] == "model"
        assert all(lo[i] - 1e-9 <= sug.config[k] <= hi[i] + 1e-9 for i, k in enumerate(["x", "y"]))
        # Resumed from the records (a fresh strategy, its warm model rebuilt): the same suggestion.
        again = make_strategy("bayes", space, seed=0, n_trials=20, warm_start=warm, n_candidates=128, n_local=2)
        again.restore([t for t in s.trials if t.number < len(own)])
        assert again.ask().config == sug.config


def test_the_transfer_weight_counts_every_pair_as_the_definition_does():
    """Blocked numpy against the definition, pair by pair, on values with ties in both (more rows than a block)."""
    import random

    def by_pairs(pred, obs):
        good, pairs = 0.0, 0
        for i in range(len(obs)):
            for j in range(i + 1, len(obs)):
                if obs[i] == obs[j]:
                    continue
                pairs += 1
                dp = pred[i] - pred[j]
                good += 0.5 if dp == 0 else float((dp > 0) == (obs[i] - obs[j] > 0))
        return max(0.0, 2 * good / pairs - 1) if pairs else 0.0

    rnd = random.Random(7)
    for n in (3, 17, 300, 600):
        obs = [float(rnd.randint(0, n // 3)) for _ in range(n)]
        pred = [o + rnd.choice([0.0, 0.0, 1.0, -1.0]) * rnd.random() * n / 10 for o in obs]
        pred = [round(v, 1) for v in pred]  # ties in the prediction too
        assert transfer_weight(pred, obs) == by_pairs(pred, obs)  # the same float, not only close
