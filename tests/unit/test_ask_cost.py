"""Tests what keeps an ask cheap as the session grows (benchmarks/results/ask.md): the posterior's triangular
solves take every candidate as one right-hand side matrix, and a GP fit is reused while its data is the same,
with exactly the answer a fresh fit gives (resume determinism)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tuitune.core.records import TrialRecord, TrialState
from tuitune.core.search.space import Choice, Float, Int, Space
from tuitune.core.search.strategies import make_strategy

torch = pytest.importorskip("torch")
pytest.importorskip("scipy")

GROUP, WEIGHT = [0, 1, 2, 2, 2], [1.0, 1.0, 0.5, 0.5, 0.5]


def _data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = torch.from_numpy(np.concatenate([rng.random((n, 2)), np.eye(3)[rng.integers(3, size=n)]], axis=1))
    Y = torch.from_numpy(np.sin(3 * X[:, 0].numpy()) + X[:, 1].numpy() ** 2)
    return X, (Y - Y.mean()) / Y.std()


def test_posterior_solves_candidates_as_one_matrix_and_matches_the_vector_solves(monkeypatch):
    """A batch of candidates is one solve whose left side is never copied per candidate (broadcasting L to
    each of 1024 candidates at 330 trials wrote 0.9 GB per call, 84% of an asha ask), and the values are
    those of solving each candidate on its own."""
    from tuitune.core.search.strategies.bayes.acquisition import _normal_base_samples
    from tuitune.core.search.strategies.bayes.gp import LeanGP

    X, Y = _data(40)
    Xc, _ = _data(64, seed=1)
    Xp, _ = _data(5, seed=2)
    gp = LeanGP(X, Y, GROUP, WEIGHT).fit()
    z = _normal_base_samples(5, 8, 0)
    post = gp.condition(X, Y)
    _, post_p = gp.condition_pending(X, Y, Xp, z)
    shapes = []
    solve = torch.linalg.solve_triangular

    def spy(A, B, **kw):
        shapes.append((tuple(A.shape), tuple(B.shape)))
        return solve(A, B, **kw)

    monkeypatch.setattr(torch.linalg, "solve_triangular", spy)
    mean, var = post(Xc.reshape(8, 8, -1))  # a batch shape, as the optimiser's chunks have
    mean_p, var_p = post_p(Xc)
    assert shapes and all(len(b) == 2 for _, b in shapes), shapes  # never (candidates, n, 1)
    monkeypatch.undo()

    # The reference: each candidate solved on its own.
    K = gp._k(X, X) + gp.noise * torch.eye(len(Y), dtype=X.dtype)
    L = torch.linalg.cholesky(K + 1e-10 * torch.eye(len(Y), dtype=X.dtype))
    kx = gp._k(Xc, X)
    v = torch.stack([torch.linalg.solve_triangular(L, k[:, None], upper=False)[:, 0] for k in kx])
    ref_var = (gp.scale - (v * v).sum(-1)).clamp_min(1e-12)
    assert torch.allclose(var.reshape(-1), ref_var, rtol=1e-9, atol=1e-12)
    assert mean.shape == (8, 8) and mean_p.shape == (64, 8) and var_p.shape == (64,)
    assert torch.all(var_p <= ref_var + 1e-9)  # pending points only take uncertainty away


def test_a_fit_on_the_same_data_is_reused_and_equals_a_fresh_one(monkeypatch):
    from tuitune.core.search.strategies.bayes import gp as gp_mod

    X, Y = _data(30)
    gp_mod._FITS.clear()
    calls = []
    raw = gp_mod.LeanGP._fit_raw

    def counted(self, Xn, y):
        calls.append(len(y))
        return raw(self, Xn, y)

    monkeypatch.setattr(gp_mod.LeanGP, "_fit_raw", counted)
    a = gp_mod.LeanGP(X, Y, GROUP, WEIGHT).fit()
    b = gp_mod.LeanGP(X.clone(), Y.clone(), GROUP, WEIGHT).fit()
    assert calls == [30]  # the second fit reused the first
    gp_mod._FITS.clear()
    c = gp_mod.LeanGP(X, Y, GROUP, WEIGHT).fit()
    assert calls == [30, 30]
    for g in (b, c):
        assert torch.equal(a.isl, g.isl) and torch.equal(a.scale, g.scale) and torch.equal(a.noise, g.noise)
    # Other data (one value moved) is fitted anew.
    Y2 = Y.clone()
    Y2[0] += 0.5
    gp_mod.LeanGP(X, Y2, GROUP, WEIGHT).fit()
    assert calls == [30, 30, 30]


SPACE = Space(lr=Float(1e-4, 1e-1, scale="log"), width=Int(32, 512, scale="log"), act=Choice(["relu", "tanh"]))


def _value(c: dict) -> float:
    return (np.log10(c["lr"]) + 2.5) ** 2 + (np.log2(c["width"]) - 7) ** 2 / 9 + (c["act"] == "tanh") * 0.3


def _record(s, records: dict, sug, state: TrialState) -> TrialRecord:
    number = sug.trial if sug.trial is not None else len(records)
    rows = tuple({"epoch": e, "val_loss": _value(sug.config)} for e in range(1, sug.budget + 1))
    rec = TrialRecord(number=number, state=state, config=sug.config, budget=sug.budget, meta=dict(sug.meta),
                      value=None if state == TrialState.RUNNING else _value(sug.config),
                      epochs=() if state == TrialState.RUNNING else rows)
    if state != TrialState.RUNNING:
        rec = dataclasses.replace(rec, state=s.state_after(rec))
    records[number] = rec
    s.tell(rec)
    for n, st in s.settle().items():
        records[n] = dataclasses.replace(records[n], state=st)
        s.tell(records[n])
    return rec


@pytest.mark.parametrize("name", ["bayes", "asha"])
def test_asks_that_reuse_a_fit_equal_a_fresh_process(name, monkeypatch):
    """Several asks in a row (a fused array filling its members: each suggestion starts before the next ask)
    reuse the model's fit; a strategy rebuilt from the records with no fit kept suggests the same configs."""
    from tuitune.core.search.strategies.bayes import gp as gp_mod

    kw = {"max_epochs": 1} if name == "bayes" else {"max_epochs": 9, "factor": 3, "sampler": "bayes"}
    s = make_strategy(name, SPACE, seed=3, n_trials=40, **kw)
    records: dict[int, TrialRecord] = {}
    while len(records) < 14:  # finished trials, one at a time: enough for the model
        _record(s, records, s.ask(), TrialState.COMPLETE)
    batch, before, raw = [], [], []
    fit_raw = gp_mod.LeanGP._fit_raw
    monkeypatch.setattr(gp_mod.LeanGP, "_fit_raw", lambda self, Xn, y: raw.append(1) or fit_raw(self, Xn, y))
    for _ in range(10):  # ten asks in a row, each one's trial running when the next is asked
        before.append(dict(records))
        sug = s.ask()
        batch.append(sug)
        _record(s, records, sug, TrialState.RUNNING)
    models = sum(b.meta.get("chosen_by") == "model" for b in batch)
    assert models >= 2 and len(raw) < models, (raw, [b.meta for b in batch])  # no new result: the fit is reused
    monkeypatch.undo()
    # A fresh strategy, no fit kept: restored from the records each ask saw, it suggests the same.
    for sug, seen in zip(batch, before):
        gp_mod._FITS.clear()
        fresh = make_strategy(name, SPACE, seed=3, n_trials=40, **kw)
        fresh.restore(seen.values())
        again = fresh.ask()
        assert (again.config, again.budget, again.trial, again.meta) == (sug.config, sug.budget, sug.trial, sug.meta)
