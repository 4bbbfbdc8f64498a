"""Tests the bayes strategy: valid suggestions, determinism, resume, pending and failed trials, quality."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tuitune.core.errors import StrategyError
from tuitune.core.records import TrialRecord, TrialState
from tuitune.core.search.space import Choice, Fixed, Float, Int, Space
from tuitune.core.search.strategies import make_strategy

pytest.importorskip("torch")
pytest.importorskip("scipy")

MIXED = Space(
    lr=Float(1e-5, 1e-1, scale="log"),
    momentum=Float(0.5, 0.999, scale="log1m"),
    units=Int(32, 512, step=32),
    depth=Int(1, 64, scale="log"),
    dropout=Float(0.0, 0.5, step=0.1),
    act=Choice(["relu", "tanh", "gelu"]),
    bn=Choice([True, False]),
    epochs=Fixed(3),
)


def objective(c: dict) -> float:
    # Smooth in every coordinate; the choices shift the value so the GP has something to learn.
    return (
        (math.log10(c["lr"]) + 3) ** 2
        + (math.log10(1 - c["momentum"]) + 2) ** 2
        + ((c["units"] - 256) / 256) ** 2
        + (math.log2(c["depth"]) - 3) ** 2 / 10
        + (c["dropout"] - 0.2) ** 2
        + {"relu": 0.0, "tanh": 0.5, "gelu": 0.2}[c["act"]]
        + (0.0 if c["bn"] else 0.3)
    )


def bayes(space: Space, seed: int = 0, n_trials: int = 30, **kw):
    kw.setdefault("n_initial", 4)
    kw.setdefault("n_candidates", 256)
    kw.setdefault("n_local", 3)
    return make_strategy("bayes", space, seed=seed, n_trials=n_trials, **kw)


def drive(s, f, n: int, start: int = 0) -> list[dict]:
    """Runs n trials through ask/tell (running, then complete); returns the configs."""
    configs = []
    for i in range(start, start + n):
        sug = s.ask()
        assert sug is not None
        s.tell(TrialRecord(number=i, state=TrialState.RUNNING, config=sug.config))
        s.tell(TrialRecord(number=i, state=TrialState.COMPLETE, config=sug.config, value=f(sug.config)))
        configs.append(sug.config)
    return configs


def test_suggestions_lie_in_the_space_with_valid_types():
    s = bayes(MIXED)
    configs = drive(s, objective, 9)
    for c in configs:
        assert MIXED.check(c) == c  # every value valid, nothing missing, nothing extra
        assert isinstance(c["units"], int) and (c["units"] - 32) % 32 == 0
        assert isinstance(c["depth"], int) and 1 <= c["depth"] <= 64
        assert 1e-5 <= c["lr"] <= 1e-1 and 0.5 <= c["momentum"] <= 0.999
        assert c["act"] in ("relu", "tanh", "gelu") and c["bn"] in (True, False)
        assert c["epochs"] == 3
    # Model-based suggestions happened (and the configs are distinct).
    assert len({MIXED.to_unit(c).tobytes() for c in configs}) == len(configs)


def test_deterministic_under_a_seed_and_differs_across_seeds():
    a = drive(bayes(MIXED, seed=3), objective, 7)
    b = drive(bayes(MIXED, seed=3), objective, 7)
    c = drive(bayes(MIXED, seed=4), objective, 7)
    assert a == b
    assert a != c


def test_restore_continues_like_an_uninterrupted_run():
    s = bayes(MIXED, seed=1)
    drive(s, objective, 6)
    fresh = bayes(MIXED, seed=1)
    fresh.restore(s.trials)
    assert fresh.ask() == s.ask()


def test_restore_with_a_running_and_a_failed_trial():
    s = bayes(MIXED, seed=2)
    drive(s, objective, 5)
    bad = s.ask()
    s.tell(TrialRecord(number=5, state=TrialState.FAILED, config=bad.config, reason="nan loss"))
    run = s.ask()
    s.tell(TrialRecord(number=6, state=TrialState.RUNNING, config=run.config))
    fresh = bayes(MIXED, seed=2)
    fresh.restore(s.trials)
    assert fresh.ask() == s.ask()


def test_pending_trials_are_not_suggested_again():
    space = Space(x=Float(-5, 10), y=Float(0, 15))
    s = bayes(space, seed=0)
    drive(s, lambda c: (c["x"] - 1) ** 2 + (c["y"] - 2) ** 2, 5)
    first = s.ask()
    s.tell(TrialRecord(number=5, state=TrialState.RUNNING, config=first.config))
    second = s.ask()
    assert second.meta["chosen_by"] == "model"
    assert second.config != first.config
    assert np.linalg.norm(space.to_unit(second.config) - space.to_unit(first.config)) > 1e-3


def test_small_discrete_space_never_repeats_a_config():
    space = Space(a=Int(0, 2), b=Choice(["x", "y"]))  # 6 configs
    s = bayes(space, seed=0, n_trials=6, n_initial=2)
    configs = drive(s, lambda c: c["a"] + (c["b"] == "y"), 6)
    assert len({(c["a"], c["b"]) for c in configs}) == 6
    assert s.ask() is None


def test_failed_trials_do_not_crash_and_steer_away():
    space = Space(x=Float(0, 1), y=Float(0, 1))
    s = bayes(space, seed=0, n_trials=20)
    for i in range(14):
        sug = s.ask()
        assert sug is not None and space.check(sug.config) == sug.config
        x = sug.config["x"]
        if x > 0.6:  # the region where training blows up
            s.tell(TrialRecord(number=i, state=TrialState.FAILED, config=sug.config, reason="nan"))
        else:
            s.tell(TrialRecord(number=i, state=TrialState.COMPLETE, config=sug.config, value=-x))
    # A NaN or inf value never reaches the GP either.
    s.tell(TrialRecord(number=14, state=TrialState.COMPLETE, config={"x": 0.1, "y": 0.1}, value=float("nan")))
    s.tell(TrialRecord(number=15, state=TrialState.COMPLETE, config={"x": 0.2, "y": 0.1}, value=float("inf")))
    assert s.ask() is not None


def test_all_failed_falls_back_to_the_initial_design():
    space = Space(x=Float(0, 1))
    s = bayes(space, seed=0)
    for i in range(6):
        sug = s.ask()
        s.tell(TrialRecord(number=i, state=TrialState.FAILED, config=sug.config))
    assert space.check(s.ask().config)


def test_maximize_direction():
    space = Space(x=Float(0, 1))
    s = bayes(space, seed=0, direction="maximize", n_trials=12)
    configs = drive(s, lambda c: -((c["x"] - 0.7) ** 2), 12)
    assert abs(max(configs[4:], key=lambda c: -((c["x"] - 0.7) ** 2))["x"] - 0.7) < 0.05


def test_choice_is_not_ordinal_and_the_best_choice_is_found():
    # The middle choice is the best: an ordinal encoding would need a curved fit to find it, a one-hot does not.
    space = Space(x=Float(0, 1), opt=Choice(["a", "b", "c", "d", "e"]))
    off = {"a": 1.0, "b": 0.8, "c": 0.0, "d": 0.9, "e": 1.1}
    s = bayes(space, seed=0, n_trials=20, n_initial=5)
    configs = drive(s, lambda c: (c["x"] - 0.3) ** 2 + off[c["opt"]], 16)
    assert sum(c["opt"] == "c" for c in configs[8:]) >= 4


def test_options_are_checked_and_stored():
    with pytest.raises(StrategyError, match="engine"):
        make_strategy("bayes", MIXED, engine="nope")
    with pytest.raises(StrategyError, match="n_initial"):
        make_strategy("bayes", MIXED, n_initial=0)
    s = make_strategy("bayes", MIXED, n_initial=5)
    assert s.options()["n_initial"] == 5 and s.options()["engine"] in ("lean", "botorch")


def test_only_fixed_parameters():
    s = bayes(Space(a=Fixed(1)), n_trials=2)
    assert s.ask().config == {"a": 1}


def test_botorch_engine_suggests_valid_configs():
    pytest.importorskip("botorch")
    s = bayes(MIXED, seed=0, engine="botorch")
    for c in drive(s, objective, 6):
        assert MIXED.check(c) == c


def _branin(c: dict) -> float:
    x1, x2 = c["x1"], c["x2"]
    b, cc, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + cc * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def test_beats_random_search_on_branin():
    space = Space(x1=Float(-5, 10), x2=Float(0, 15))
    bo, rnd = [], []
    for seed in range(3):
        s = bayes(space, seed=seed, n_trials=25, n_initial=8)
        bo.append(min(_branin(c) for c in drive(s, _branin, 25)))
        r = make_strategy("random", space, seed=seed, n_trials=25)
        rnd.append(min(_branin(c) for c in drive(r, _branin, 25)))
    assert np.median(bo) <= np.median(rnd)
    assert np.median(bo) - 0.397887 < 0.05


def test_roulette_starts_with_the_best_and_draws_distinct_others_by_ei() -> None:
    from tuitune.core.search.strategies.bayes import _roulette

    vals = np.array([-1.0, 0.0, -np.inf, -2.0, -50.0, -0.5])
    order = np.argsort(-vals)
    picks = _roulette(vals, order, 4, np.random.default_rng(0))
    assert picks[0] == 1 and len(picks) == 4 and len(set(picks)) == 4
    assert 2 not in picks  # log EI of -inf: no weight
    assert picks == _roulette(vals, order, 4, np.random.default_rng(0))  # a function of the generator
    # Fewer points with weight than asked for: only those.
    assert sorted(_roulette(np.array([0.0, -np.inf, -np.inf]), np.array([0, 1, 2]), 5, np.random.default_rng(1))) == [0]


def test_the_initial_design_adapts_to_budget_and_dimension():
    from tuitune.core.search.strategies.bayes import initial_design_size

    assert initial_design_size(2, None) == 5 and initial_design_size(4, None) == 8
    assert initial_design_size(6, None) == initial_design_size(30, 60) == 10
    assert initial_design_size(6, 10) == 3  # a short session spends most of its trials on the model
    assert initial_design_size(6, 30) == initial_design_size(6, 60)  # >= 30 trials: the same design
    assert initial_design_size(1, 3) == 2


def test_a_ten_trial_session_fits_its_model_for_at_least_four_trials():
    s = make_strategy("bayes", MIXED, seed=0, n_trials=10, n_candidates=256, n_local=3)
    chosen = []
    for i in range(10):
        sug = s.ask()
        chosen.append(sug.meta["chosen_by"])
        s.tell(TrialRecord(number=i, state=TrialState.COMPLETE, config=sug.config, value=objective(sug.config)))
    assert s.ask() is None
    assert chosen.count("model") >= 4 and chosen[0] == "initial"
    assert s.options()["n_initial"] is None  # stored as "automatic": a resume applies the same rule


# ---- several workers: the batch-aware suggestions --------------------------------------------------------
BOWL = Space(x=Float(0, 1), y=Float(0, 1))


def _bowl(c: dict) -> float:
    return (c["x"] - 0.3) ** 2 + (c["y"] - 0.6) ** 2


def test_the_last_tenth_of_a_known_budget_exploits_the_posterior_mean():
    import torch

    from tuitune.core.search.strategies.bayes.acquisition import acquisition

    s = bayes(BOWL, n_trials=30)
    last = []
    for i in range(30):
        last.append(s._exploit())
        sug = s.ask()
        s.tell(TrialRecord(number=i, state=TrialState.COMPLETE, config=sug.config, value=_bowl(sug.config)))
    assert last == [False] * 27 + [True] * 3
    assert not bayes(BOWL, n_trials=None)._exploit()  # an open-ended session never knows its last trial
    assert bayes(BOWL, n_trials=4)._exploit() is False and bayes(BOWL, n_trials=1)._exploit() is True
    # With exploit, the acquisition is the posterior mean (log EI otherwise), for both engines.
    X = torch.rand(12, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    Y = (X - 0.4).square().sum(-1).neg()
    Y = (Y - Y.mean()) / Y.std()
    probe = torch.tensor([[0.4, 0.4], [0.95, 0.05]], dtype=torch.float64)
    for engine in ("lean", "botorch"):
        mean = acquisition(engine, X, Y, X[:0], Y[:0], float(Y.max()), [0, 1], [1.0, 1.0], exploit=True)(probe)
        ei = acquisition(engine, X, Y, X[:0], Y[:0], float(Y.max()), [0, 1], [1.0, 1.0])(probe)
        assert mean[0] > mean[1] and -3 < float(mean[1]) < float(mean[0]) < 3  # standardised values
        assert float(ei[0]) < 0 and not torch.allclose(mean, ei)  # log EI of an improvement below 1


def _with_pending(s, n_done: int, n_pending: int, f=_bowl) -> list[dict]:
    """n_done completed trials, then n_pending suggestions left running; returns the running configs."""
    drive(s, f, n_done)
    running = []
    for i in range(n_done, n_done + n_pending):
        sug = s.ask()
        assert sug is not None
        s.tell(TrialRecord(number=i, state=TrialState.RUNNING, config=sug.config))
        running.append(sug.config)
    return running


def test_batch_aware_suggestions_are_deterministic_with_pending_trials_and_resume_alike():
    s = bayes(BOWL, seed=5)
    _with_pending(s, 6, 3)
    fresh = bayes(BOWL, seed=5)
    fresh.restore(s.trials)
    again = bayes(BOWL, seed=5)
    again.restore(list(reversed(s.trials)))  # the order the records arrive in does not matter
    assert s.ask() == fresh.ask() == again.ask()


def test_a_running_config_is_never_suggested_again():
    # The pending point is the GP's best guess: without batch awareness the next suggestion would land on it.
    s = bayes(BOWL, seed=0, n_trials=40)
    running = _with_pending(s, 10, 1)
    for n in range(11, 14):
        sug = s.ask()
        assert sug.meta["chosen_by"] == "model"
        assert all(sug.config != c for c in running)
        s.tell(TrialRecord(number=n, state=TrialState.RUNNING, config=sug.config))
        running.append(sug.config)


def test_suggestions_spread_apart_when_several_are_pending():
    # After a good model of a one-basin bowl, four suggestions in a row (none finished) must not pile up on
    # the optimum: the batch-aware acquisition gives a point next to a running one little value. (Blind to
    # the running trials, each ask would return the same maximiser, or the next one 1e-6 from it.)
    from tuitune.core.search.strategies.bayes import acquisition

    def spread(scheme: str) -> float:
        old = acquisition.PENDING
        acquisition.PENDING = scheme
        try:
            s = bayes(BOWL, seed=1, n_trials=40)
            pts = np.array([BOWL.to_unit(c) for c in _with_pending(s, 12, 4)])
        finally:
            acquisition.PENDING = old
        d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
        return float(d[np.triu_indices(len(pts), 1)].min())

    assert spread("fantasy") > 0.005
    assert spread("liar") > 0.005  # the old scheme (kept for the benchmark) spreads too, further


def test_fantasy_gives_little_value_next_to_a_pending_point():
    # The acquisition itself: a point on top of a pending one is worth less than with nothing pending.
    import torch

    from tuitune.core.search.strategies.bayes.acquisition import acquisition

    X = torch.tensor([[0.1, 0.1], [0.9, 0.2], [0.5, 0.5], [0.2, 0.8], [0.7, 0.9]], dtype=torch.float64)
    Y = -((X[:, 0] - 0.3) ** 2 + (X[:, 1] - 0.6) ** 2)
    Y = (Y - Y.mean()) / Y.std()
    p = torch.tensor([[0.3, 0.6]], dtype=torch.float64)
    none = acquisition("lean", X, Y, X[:0], Y[:0], float(Y.max()), [0, 1], [1.0, 1.0], seed=3)
    pend = acquisition("lean", X, Y, p, Y[:1], float(Y.max()), [0, 1], [1.0, 1.0], seed=3)
    far = torch.tensor([[0.95, 0.95]], dtype=torch.float64)
    drop_on, drop_far = float(none(p) - pend(p)), float(none(far) - pend(far))
    # Everywhere a little less (the pending point's fantasised value raises the bar), on top of it far less.
    assert drop_far >= 0 and drop_on > drop_far + 2.0


def test_conditional_space_with_pending_trials():
    space = Space(
        opt=Choice(["sgd", "adam"]),
        lr=Float(1e-4, 1e-1, scale="log"),
        momentum=Float(0.5, 0.99, when={"opt": ["sgd"]}),
        beta1=Float(0.8, 0.99, when={"opt": ["adam"]}),
    )

    def f(c: dict) -> float:
        extra = (c["momentum"] - 0.9) ** 2 if c["opt"] == "sgd" else (c["beta1"] - 0.9) ** 2 + 0.05
        return (math.log10(c["lr"]) + 2) ** 2 + extra

    s = bayes(space, seed=2, n_trials=30)
    running = _with_pending(s, 8, 3, f)
    sug = s.ask()
    assert sug.meta["chosen_by"] == "model"
    assert space.check(sug.config) == sug.config  # only the active parameters
    assert ("momentum" in sug.config) == (sug.config["opt"] == "sgd")
    assert all(sug.config != c for c in running)
    fresh = bayes(space, seed=2, n_trials=30)
    fresh.restore(s.trials)
    assert fresh.ask() == sug


def test_botorch_engine_with_pending_trials():
    pytest.importorskip("botorch")
    s = bayes(BOWL, seed=0, engine="botorch")
    running = _with_pending(s, 6, 2)
    sug = s.ask()
    assert sug.meta["chosen_by"] == "model" and all(sug.config != c for c in running)
    fresh = bayes(BOWL, seed=0, engine="botorch")
    fresh.restore(s.trials)
    assert fresh.ask() == sug


def test_an_ask_runs_every_blas_library_on_one_thread(tmp_path):
    """The limit covers SciPy's own OpenBLAS too, even where SciPy was not imported before the first ask
    (L-BFGS-B's BLAS on several threads cost 4x per evaluation on a quiet machine, far more on a busy one)."""
    import json
    import os
    import subprocess
    import sys

    code = (
        "from tuitune.core.search.strategies.bayes.strategy import _one_torch_thread\n"
        "with _one_torch_thread():\n"
        "    import scipy.optimize, scipy.linalg\n"
        "    import json\n"
        "    from threadpoolctl import threadpool_info\n"
        "    print(json.dumps([[i['filepath'], i['num_threads']] for i in threadpool_info() if i['user_api'] == 'blas']))\n"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, check=True)
    libs = json.loads(out.stdout)
    assert any("scipy" in path for path, _ in libs), libs
    assert [n for _, n in libs] == [1] * len(libs), libs


@pytest.mark.parametrize("pending", [0, 1, 3])
def test_closed_form_acquisition_gradients_match_autograd(pending):
    """The local search's NumPy values and gradients (log EI alone, and the batch-aware one with pending
    points) are those of the torch acquisition and its autograd gradient, incl. one-hot features."""
    import torch

    from tuitune.core.search.strategies.bayes.acquisition import LeanLogEI, LeanPendingLogEI, _normal_base_samples
    from tuitune.core.search.strategies.bayes.gp import LeanGP

    rng = np.random.default_rng(pending)
    # 2 numeric features and one choice of 3 (one-hot, one shared lengthscale at weight 1/2 per column)
    group, weight = [0, 1, 2, 2, 2], [1.0, 1.0, 0.5, 0.5, 0.5]

    def feats(n):
        num = rng.random((n, 2))
        oh = np.eye(3)[rng.integers(3, size=n)]
        return torch.from_numpy(np.concatenate([num, oh], axis=1))

    X = feats(12)
    Y = torch.from_numpy(np.sin(3 * X[:, 0].numpy()) + X[:, 1].numpy() ** 2 - X[:, 2].numpy())
    Y = (Y - Y.mean()) / Y.std()
    gp = LeanGP(X, Y, group, weight).fit()
    best = float(Y.max())
    if pending:
        acq = LeanPendingLogEI(gp, X, Y, feats(pending), _normal_base_samples(pending, 16, 3), best)
    else:
        acq = LeanLogEI(gp, X, Y, best)
    x = feats(20)
    x[:3] = X[:3]  # at observed points too (tiny variance)
    x[3] = X[0] + 1e-4
    xt = x.clone().requires_grad_(True)
    v_t = acq(xt)
    v_t.sum().backward()
    v_np, g_np = acq.value_and_grad(x.numpy())
    assert np.allclose(v_np, v_t.detach().numpy(), rtol=1e-7, atol=1e-9)
    assert np.allclose(g_np, xt.grad.numpy(), rtol=1e-5, atol=1e-7), np.abs(g_np - xt.grad.numpy()).max()
