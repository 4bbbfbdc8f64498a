"""bayes with constraints (one objective): what its model of a constraint sees and how it searches
(bayes/strategy.py ``_suggest_ehvi``, bayes/ehvi.py; the figures are in benchmarks/results/constraints.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tuitune.core.records import Constraint, TrialRecord, TrialState
from tuitune.core.search.space import Float, Space
from tuitune.core.search.strategies import make_strategy
from tuitune.core.search.strategies.bayes import strategy as bayes_strategy


def test_a_positive_metric_is_modelled_on_a_log_scale_with_the_same_sign():
    size = Constraint("size", "<=", 1e4)
    got = size.slacks([1e3, 1e6, None, 1e4])
    assert got[0] == pytest.approx(math.log(10)) and got[1] == pytest.approx(-math.log(100))
    assert got[2] is None and got[3] == pytest.approx(0.0)
    assert Constraint("acc", ">=", 0.5).slacks([0.25, 1.0]) == pytest.approx([-math.log(2), math.log(2)])
    # A value <= 0 anywhere (or a bound <= 0): the plain slack for every value, as before.
    assert size.slacks([1e3, 0.0]) == [9e3, 1e4]
    assert Constraint("lat", "<=", -1.0).slacks([-2.0, 3.0]) == [1.0, -4.0]
    assert size.slacks([1e3, 1e6], log=False) == [9e3, 1e4 - 1e6]
    for v in (1.0, 9e3, 1e4, 2e4, 1e7):  # the sign, hence feasibility, never changes with the scale
        assert (size.slacks([v])[0] >= 0) == (size.slack(v) >= 0)


def _constrained(n_trials=12, seed=0):
    space = Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})
    s = make_strategy("bayes", space, seed=seed, n_trials=n_trials, metric="loss", constraints=["size <= 1e3"])

    def run(k):
        for i in range(k):
            sug = s.ask()
            c = sug.config
            loss, size = (c["x"] - 0.8) ** 2 + c["y"], 10 ** (1 + 4 * c["x"])  # size spans 4 decades
            s.tell(TrialRecord(number=i, state=TrialState.COMPLETE, config=c, value=loss, budget=1,
                               epochs=({"epoch": 1, "loss": loss, "size": size},)))
    return s, run


def test_the_strategy_hands_its_model_the_log_slack(monkeypatch):
    monkeypatch.setattr(bayes_strategy, "LOG_SLACK", True)  # measured, not the default (constraints.md)
    s, run = _constrained()
    run(6)
    data = s._goal_data(s._data())
    sizes = [10 ** (1 + 4 * t.config["x"]) for t in s.trials]
    assert data["slacks"][:, 0] == pytest.approx([math.log(1e3) - math.log(v) for v in sizes])
    monkeypatch.setattr(bayes_strategy, "LOG_SLACK", False)
    assert s._goal_data(s._data())["slacks"][:, 0] == pytest.approx([1e3 - v for v in sizes])


def test_the_last_tenth_of_a_budget_maximises_the_mean_among_likely_feasible_points(monkeypatch):
    """The acquisition's exploit mode: -mean where P(feasible) >= the threshold, below all of those elsewhere;
    and the strategy asks for it in the last EXPLOIT_LAST of a known budget only."""
    import torch

    from tuitune.core.search.strategies.bayes import ehvi

    rng = np.random.default_rng(0)
    x = rng.random((16, 1))
    X = torch.from_numpy(x)
    losses, slacks = 1.0 - x, 0.6 - x  # lower loss to the right, feasible left of 0.6
    grid = torch.linspace(0, 1, 101, dtype=torch.float64)[:, None]
    args = (X, losses, slacks[:, 0] >= 0, slacks, X[:0], [0], [1.0], 1)
    with torch.no_grad():
        plain = ehvi.build_acquisition(*args)(grid).numpy()
        exploit_acq = ehvi.build_acquisition(*args, exploit=0.5)
        exploit = exploit_acq(grid).numpy()
        mean = exploit_acq.posts[0](grid)[0].numpy()
        feasible = exploit_acq.log_feasible(grid).numpy() >= math.log(0.5)
    assert feasible[:55].all() and not feasible[65:].any()
    assert np.allclose(exploit[feasible], -mean[feasible]) and exploit[~feasible].max() < exploit[feasible].min()
    assert 0.5 <= grid[int(np.argmax(exploit))].item() <= 0.6  # the best likely feasible point: at the bound
    assert not np.allclose(plain, exploit)

    seen = []
    real = ehvi.build_acquisition
    monkeypatch.setattr(ehvi, "build_acquisition", lambda *a, **k: seen.append(a[-1]) or real(*a, **k))
    monkeypatch.setattr(bayes_strategy, "CONSTRAINED_EXPLOIT", 0.5)
    s, run = _constrained(n_trials=20)
    run(20)
    assert seen[-2:] == [0.5, 0.5] and not any(seen[:-2])  # 10% of 20: the last 2 trials
    monkeypatch.setattr(bayes_strategy, "CONSTRAINED_EXPLOIT", None)
    seen.clear()
    run2 = _constrained(n_trials=20)[1]
    run2(20)
    assert not any(seen)


def test_a_local_search_starts_from_each_anchor():
    """optimize_acqf's anchors (the constrained path's best feasible trials) each start a local search: an
    acquisition peak one grid step from an anchor, invisible from the quasi-random sample, is found."""
    import torch

    from tuitune.core.search.space import Int
    from tuitune.core.search.strategies.bayes.encoding import Encoding
    from tuitune.core.search.strategies.bayes.optim import optimize_acqf

    enc = Encoding(Space({"a": Int(0, 1000), "b": Int(0, 1000)}))
    target = torch.from_numpy(enc.features(torch.from_numpy(enc.to_u({"a": 613, "b": 287})[None])).numpy()[0])

    def acq(f):
        return -((f - target) ** 2).sum(-1).clamp_max(1e-4)  # flat beyond 10 grid steps from the peak

    anchor = enc.to_u({"a": 611, "b": 287})[None]
    for anchors, found in ((None, False), (anchor, True)):
        cands, vals = optimize_acqf(acq, enc, anchor[:0], 16, 1, np.random.default_rng(0),
                                    torch.Generator().manual_seed(0), anchors=anchors)
        best = enc.to_config(cands[int(np.argmax(vals))])
        assert (best == {"a": 613, "b": 287}) == found


def test_the_constrained_path_anchors_its_search_at_its_best_feasible_trials(monkeypatch):
    from tuitune.core.search.strategies.bayes import optim

    got = []
    real = optim.optimize_acqf
    monkeypatch.setattr(bayes_strategy, "optimize_acqf", lambda *a, **k: got.append(k.get("anchors")) or real(*a, **k))
    monkeypatch.setattr(bayes_strategy, "CONSTRAINED_ANCHORS", 3)
    s, run = _constrained(n_trials=10)
    run(9)
    data = s._goal_data(s._data())
    ok = np.flatnonzero(data["feasible"])
    best3 = data["u_obs"][ok[np.argsort(data["losses"][ok, 0])[:3]]]
    s.ask()
    assert got[-1] is not None and np.allclose(got[-1], best3)


def test_the_objective_is_warped_so_good_values_no_longer_look_alike(monkeypatch):
    """Losses spanning decades (a diverged run beside good ones): the Yeo-Johnson warp keeps their order and
    widens the gaps between the good values, and leaves losses without a long bad tail alone; the constrained
    path fits its objective's GP on it, the two-objective path does not."""
    import torch

    from tuitune.core.search.strategies.bayes import ehvi

    y = np.array([0.017, 0.05, 0.3, 0.67, 1.2, 8.2, 96.0])
    w = ehvi._warp(y)
    assert np.all(np.diff(w) > 0)
    share = lambda v: (v[2] - v[0]) / (v[-1] - v[0])  # noqa: E731
    assert share(w) > 5 * share(y)
    # No long bad tail (gardner's bounded values, trials piled up next to the incumbent): left as they are, so
    # the incumbent is not set apart from the rest.
    piled = np.array([-0.285, 0.805, 0.648, -0.515, -0.513, 0.369, -1.041, -1.106, -1.044, 1.0, -1.123, -1.123])
    assert np.array_equal(ehvi._warp(piled), piled)
    seen = []
    monkeypatch.setattr(ehvi, "_warp", lambda v: seen.append(len(v)) or v)
    rng = np.random.default_rng(0)
    X = torch.from_numpy(rng.random((8, 2)))
    x = X.numpy()
    one, two = x[:, :1] ** 4, np.stack([x[:, 0], 1 - x[:, 0]], axis=1)
    ehvi.build_acquisition(X, one, np.ones(8, bool), 0.9 - x[:, 1:], X[:0], [0, 1], [1.0, 1.0], 1)
    assert seen == [8]
    ehvi.build_acquisition(X, two, np.ones(8, bool), np.zeros((8, 0)), X[:0], [0, 1], [1.0, 1.0], 1)
    assert seen == [8]
    monkeypatch.setattr(ehvi, "WARP", "")
    ehvi.build_acquisition(X, one, np.ones(8, bool), 0.9 - x[:, 1:], X[:0], [0, 1], [1.0, 1.0], 1)
    assert seen == [8]
