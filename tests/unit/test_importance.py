"""PED-ANOVA parameter importance: a parameter that decides the value ranks first, noise last."""

from __future__ import annotations

import random

import pytest

from tuitune.core.search.importance import parameter_importance

SPACE = {
    "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "scale": "log"},
    "noise": {"type": "float", "low": 0.0, "high": 1.0},
    "act": {"type": "choice", "values": ["relu", "tanh", "gelu"]},
    "fixed": {"type": "fixed", "value": 3},
}


def _trials(n: int, seed: int = 0):
    rnd = random.Random(seed)
    cfgs, vals = [], []
    for _ in range(n):
        c = {"lr": 10 ** rnd.uniform(-5, -1), "noise": rnd.random(), "act": rnd.choice(["relu", "tanh", "gelu"])}
        # lr near 1e-3 is best; act matters a little; noise not at all.
        import math

        v = (math.log10(c["lr"]) + 3) ** 2 + (0.3 if c["act"] == "tanh" else 0.0) + rnd.random() * 0.05
        cfgs.append(c)
        vals.append(v)
    return cfgs, vals


def test_the_deciding_parameter_ranks_first_and_noise_last():
    cfgs, vals = _trials(400)
    imp = parameter_importance(SPACE, cfgs, vals, "minimize")
    assert set(imp) == {"lr", "noise", "act"}  # the fixed one is left out
    assert sum(imp.values()) == pytest.approx(1.0)
    assert imp["lr"] > imp["act"] > imp["noise"]
    assert imp["lr"] > 0.5


def test_maximize_turns_the_top_group_around():
    cfgs, vals = _trials(400)
    imp = parameter_importance(SPACE, cfgs, [-v for v in vals], "maximize")
    assert max(imp, key=imp.get) == "lr"


def test_too_few_trials_is_an_error():
    with pytest.raises(ValueError, match="at least 4"):
        parameter_importance(SPACE, [{"lr": 1e-3}] * 3, [1.0, 2.0, 3.0], "minimize")
