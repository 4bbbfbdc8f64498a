"""The rules of several objectives and constraints (records.py, their one home) and bayes' log EHVI."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from tuitune.core.records import (
    Objectives,
    TrialRecord,
    TrialState,
    best_by,
    crowding_distances,
    hypervolume_2d,
    nondominated_order,
    pareto_layers,
    pareto_set,
    parse_constraint,
    ranked_by,
)


def _trial(n, epochs, state=TrialState.COMPLETE, value=None):
    eps = tuple({"epoch": i + 1, **e} for i, e in enumerate(epochs))
    if value is None and eps:
        value = min(e["a"] for e in eps if "a" in e)
    return TrialRecord(number=n, state=state, config={"n": n}, value=value, epochs=eps)


def test_layers_and_crowding_by_brute_force():
    rng = np.random.default_rng(0)
    pts = [tuple(map(float, p)) for p in rng.integers(0, 6, size=(40, 2))]
    layer = pareto_layers(pts)
    for i, j in itertools.permutations(range(len(pts)), 2):
        if all(a <= b for a, b in zip(pts[i], pts[j])) and pts[i] != pts[j]:
            assert layer[i] < layer[j]
    # the front of each layer is mutually non-dominated
    for k in set(layer):
        members = [pts[i] for i in range(len(pts)) if layer[i] == k]
        assert all(not (all(a <= b for a, b in zip(p, q)) and p != q) for p in members for q in members)
    d = crowding_distances([(0.0, 3.0), (1.0, 2.0), (2.0, 0.5), (3.0, 0.0)])
    assert d[0] == d[3] == math.inf and d[1] == pytest.approx(2 / 3 + 2.5 / 3) and d[2] == pytest.approx(2 / 3 + 2 / 3)
    order = nondominated_order([(5.0, 5.0), (0.0, 3.0), (1.0, 2.0), (1.5, 1.9), (3.0, 0.0)])
    assert order[-1] == 0 and set(order[:2]) == {1, 4}  # the extremes of the front first, the dominated last


def test_hypervolume_2d_against_a_grid_count():
    rng = np.random.default_rng(1)
    pts = [tuple(p) for p in rng.random((12, 2))]
    ref = (1.0, 1.0)
    g = (np.arange(400) + 0.5) / 400
    X, Y = np.meshgrid(g, g)
    covered = np.zeros_like(X, dtype=bool)
    for x, y in pts:
        covered |= (X >= x) & (Y >= y)
    assert hypervolume_2d(pts, ref) == pytest.approx(covered.mean(), abs=5e-3)


def test_values_are_read_at_the_epoch_the_first_metric_is_best():
    goal = Objectives.build(["a", "b"], ["minimize", "maximize"], ["c <= 1"])
    t = _trial(0, [{"a": 3.0, "b": 1.0, "c": 0.5}, {"a": 1.0, "b": 2.0}, {"a": 2.0, "b": 9.0, "c": 5.0}])
    got = goal.measure(t)
    assert got["values"] == {"a": 1.0, "b": 2.0, "c": 0.5}  # c: its last report at or before epoch 2
    assert got["feasible"]
    assert goal.losses(t) == (1.0, -2.0)
    assert goal.measure(t, upto=1)["values"] == {"a": 3.0, "b": 1.0, "c": 0.5}
    missing = _trial(1, [{"a": 0.5, "b": 1.0}])
    assert not goal.measure(missing)["feasible"]  # a constraint metric never reported: infeasible


def test_infeasible_trials_are_never_ranked_best_or_on_the_front():
    goal = Objectives.build(["a", "b"], ["minimize", "minimize"], ["c <= 1"])
    ts = [
        _trial(0, [{"a": 0.1, "b": 0.1, "c": 2.0}]),  # dominates all, but infeasible
        _trial(1, [{"a": 1.0, "b": 3.0, "c": 0.0}]),
        _trial(2, [{"a": 3.0, "b": 1.0, "c": 0.0}]),
        _trial(3, [{"a": 3.5, "b": 3.5, "c": 0.0}]),
        _trial(4, [{"a": 0.0, "b": 0.0, "c": 0.0}], state=TrialState.PRUNED),
    ]
    assert [t.number for t in ranked_by(ts, goal)] == [1, 2, 3]
    assert [t.number for t in pareto_set(ts, goal)] == [1, 2]
    assert best_by(ts, goal).number == 1
    single = Objectives.build("a", "minimize", ["c <= 1"])
    assert best_by(ts, single).number == 1
    assert best_by(ts, Objectives.single("a", "minimize")).number == 0  # no constraint: trial 0 wins


@pytest.mark.parametrize("text", ["params < 5", "params <= ", "<= 3", "p <= 1e999", "p <= x", 5, "import os <= 1"])
def test_bad_constraints_are_one_line_errors(text):
    with pytest.raises(ValueError, match="METRIC <= NUMBER|finite"):
        parse_constraint(text)


def test_constraint_parse_round_trips():
    c = parse_constraint("  latency_ms>=-2.5e-3 ")
    assert (c.metric, c.op, c.bound) == ("latency_ms", ">=", -2.5e-3)
    assert parse_constraint(str(c)) == c
    goal = Objectives.build(["a", "b"], ["minimize", "maximize"], ["params <= 1e6"])
    assert Objectives.of("a", "minimize", goal.to_options()) == goal
    assert Objectives.of("a", "minimize", {}).plain  # sessions stored before these


def test_log_ehvi_prefers_the_gap_in_the_front():
    """The acquisition's improvement, with no model uncertainty, is the exact hypervolume improvement."""
    import torch

    from tuitune.core.search.strategies.bayes.ehvi import log_hvi, staircase

    front = np.array([[0.0, 2.0], [2.0, 0.0]])
    ref = np.array([3.0, 3.0])
    left, right, height = (torch.from_numpy(a) for a in staircase(front, ref))
    for p, want in [((1.0, 1.0), 1.0), ((0.5, 0.5), 2.25), ((-1.0, 2.5), 0.5)]:
        got = math.exp(float(log_hvi(torch.tensor([p], dtype=torch.float64), left, right, height)[0]))
        base = hypervolume_2d([tuple(x) for x in front], tuple(ref))
        assert got == pytest.approx(hypervolume_2d([*map(tuple, front), p], tuple(ref)) - base, rel=0.05)
        assert got == pytest.approx(want, rel=0.05)


def test_the_two_objective_sort_equals_the_general_one():
    from tuitune.core import records

    rng = np.random.default_rng(3)
    for _ in range(30):
        pts = [tuple(map(float, p)) for p in rng.integers(0, 5, size=(int(rng.integers(1, 40)), 2))]
        general = records.pareto_layers([(*p, 0.0) for p in pts])  # a constant third objective: the slow path
        assert records.pareto_layers(pts) == general


def test_ehvi_counts_a_pending_point_so_a_batch_spreads():
    """A point where a trial is running is worth less than before that trial started (its predicted values
    join the front), and feasibility multiplies in: a point the constraint GP calls infeasible is worth less."""
    import torch

    from tuitune.core.search.strategies.bayes.ehvi import build_acquisition

    rng = np.random.default_rng(0)
    X = torch.from_numpy(rng.random((12, 2)))
    x = X.numpy()
    losses = np.stack([x[:, 0], 1 - x[:, 0] + x[:, 1]], axis=1)
    feasible = np.ones(12, dtype=bool)
    no_slacks = np.zeros((12, 0))
    probe = torch.tensor([[0.55, 0.0]], dtype=torch.float64)
    alone = build_acquisition(X, losses, feasible, no_slacks, X[:0], [0, 1], [1.0, 1.0], seed=1)
    pending = build_acquisition(X, losses, feasible, no_slacks, probe, [0, 1], [1.0, 1.0], seed=1)
    with torch.no_grad():
        assert float(pending(probe)[0]) < float(alone(probe)[0]) - 1.0
    slacks = (0.5 - x[:, :1])  # feasible where x0 <= 0.5
    constrained = build_acquisition(X, losses, slacks[:, 0] >= 0, slacks, X[:0], [0, 1], [1.0, 1.0], seed=1)
    with torch.no_grad():
        inside, outside = constrained(torch.tensor([[0.3, 0.0], [0.9, 0.0]], dtype=torch.float64))
    assert float(inside) > float(outside) + 1.0
