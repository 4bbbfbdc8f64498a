"""The single-objective path's screened switches (bayes/strategy.py SINGLE_ANCHORS, SINGLE_WARP): off by default,
and each, when on, changes what bayes asks (benchmarks/bench_single_screen.py measures them)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tuitune.core.records import TrialRecord, TrialState
from tuitune.core.search.space import Float, Int, Space
from tuitune.core.search.strategies import make_strategy
from tuitune.core.search.strategies.bayes import strategy as bayes_strategy

pytest.importorskip("torch")
pytest.importorskip("scipy")

SPACE = Space(x=Float(0.0, 1.0), y=Float(0.0, 1.0), n=Int(1, 64))


def _loss(c: dict) -> float:
    """A long bad tail: most configs near 0-1, a corner up to e^8."""
    return math.exp(8 * c["x"] * c["y"]) * (1 + (c["n"] - 40) ** 2 / 400) + (c["x"] - 0.3) ** 2


def _records(k: int = 12) -> list[TrialRecord]:
    s = make_strategy("bayes", SPACE, seed=3, n_trials=30)
    out = []
    for i in range(k):
        c = s.ask().config
        rec = TrialRecord(number=i, state=TrialState.COMPLETE, config=c, value=_loss(c), budget=1)
        s.tell(rec)
        out.append(rec)
    return out


def _ask(records: list[TrialRecord], monkeypatch: pytest.MonkeyPatch, **switches: object) -> tuple[dict, dict]:
    """What a strategy restored from ``records`` asks with these switches, and what its model was given."""
    from tuitune.core.search.strategies.bayes import optim

    seen: dict = {}
    real_opt, real_acq = optim.optimize_acqf, bayes_strategy.acquisition

    def opt(*a, **k):
        seen["anchors"] = k.get("anchors")
        return real_opt(*a, **k)

    def acq(*a, **k):
        seen["Y"] = a[2].numpy().copy()
        return real_acq(*a, **k)

    with monkeypatch.context() as m:
        m.setattr(bayes_strategy, "optimize_acqf", opt)
        m.setattr(bayes_strategy, "acquisition", acq)
        for name, val in switches.items():
            m.setattr(bayes_strategy, name, val)
        s = make_strategy("bayes", SPACE, seed=3, n_trials=30)
        s.restore(records)
        sug = s.ask()
    assert sug.meta["chosen_by"] == "model"
    return sug.config, seen


def test_the_switches_are_off_by_default_and_each_changes_the_suggestion(monkeypatch):
    assert bayes_strategy.SINGLE_ANCHORS == 0 and bayes_strategy.SINGLE_WARP is None
    records = _records()
    values = np.array([r.value for r in records])
    default, seen = _ask(records, monkeypatch)
    assert seen["anchors"] is None
    assert _ask(records, monkeypatch)[0] == default  # deterministic: a change below is the switch's

    anchored, seen_a = _ask(records, monkeypatch, SINGLE_ANCHORS=3)
    best3 = [records[i].config for i in np.argsort(values, kind="stable")[:3]]
    enc = make_strategy("bayes", SPACE, seed=3)._enc
    assert [enc.to_config(u) for u in seen_a["anchors"]] == best3
    assert anchored != default

    warped, seen_w = _ask(records, monkeypatch, SINGLE_WARP="yeo-johnson")
    assert seen_w["anchors"] is None
    # The GP sees other values, in the same order (the warp is monotone: the best trial stays the best).
    assert not np.allclose(seen_w["Y"], seen["Y"])
    assert np.array_equal(np.argsort(seen_w["Y"]), np.argsort(seen["Y"]))
    assert warped != default
