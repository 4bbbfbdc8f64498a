"""Priors on parameters (``prior=VALUE``, ``prior="defaults"``): the space, random draws, piBO in bayes."""

from __future__ import annotations

import numpy as np
import pytest

import tuitune as tt
from tuitune.core.errors import SpaceError
from tuitune.core.records import TrialRecord, TrialState
from tuitune.core.search.space import PRIOR_SD, Choice, Float, Int, Space
from tuitune.core.search.strategies import make_strategy

SPACE = Space(
    lr=Float(1e-5, 1e-1, scale="log", prior=1e-3),
    units=Int(16, 512, step=16, prior=128),
    act=Choice(["relu", "tanh", "gelu"], prior="gelu"),
    x=Float(0.0, 1.0),
)


def test_priors_are_part_of_the_space_and_round_trip():
    d = SPACE.to_dict()
    assert d["lr"]["prior"] == 1e-3 and d["act"]["prior"] == "gelu" and "prior" not in d["x"]
    assert Space.from_dict(d).priors == {"lr": 1e-3, "units": 128, "act": "gelu"}
    assert Space(x=Float(0, 1)).with_priors({"x": 0.2, "not_searched": 1}).priors == {"x": 0.2}


@pytest.mark.parametrize(("param", "message"), [
    (Float(0, 1, prior=2), "parameter 'p': prior 2 must be a value of the parameter (2 is outside [0, 1])"),
    (Int(1, 9, step=2, prior=4), "parameter 'p': prior 4 must be a value of the parameter (4 is not on the step 2"),
    (Choice(["a", "b"], prior="c"), "parameter 'p': prior 'c' must be a value of the parameter ('c' is not one"),
    (Float(1e-5, 1, scale="log", prior="big"), "parameter 'p': prior 'big' must be a value of the parameter"),
])
def test_a_prior_outside_the_parameter_is_one_line_naming_it(param, message):
    with pytest.raises(SpaceError) as e:
        Space(p=param)
    assert str(e.value).startswith(message)


def test_a_log_prior_is_centred_on_the_log_scale():
    p = SPACE["lr"]
    draws = np.array([p.sample_prior(np.random.default_rng(i)) for i in range(400)])
    u = np.array([p.to_unit(v) for v in draws])
    assert abs(np.median(u) - p.to_unit(1e-3)) < 0.03  # the median at the prior, in log space
    assert abs(np.std(u) - PRIOR_SD) < 0.03
    assert abs(np.median(np.log10(draws)) + 3) < 0.15


def _told(strategy, config, value, number):
    strategy.tell(TrialRecord(number=number, state=TrialState.COMPLETE, config=config, value=value))


def test_random_starts_at_the_prior_then_draws_a_fading_share_around_it():
    s = make_strategy("random", SPACE, seed=3, n_trials=400)
    first = s.ask().config
    assert {k: first[k] for k in ("lr", "units", "act")} == {"lr": 1e-3, "units": 128, "act": "gelu"}
    _told(s, first, 1.0, 0)
    near = []
    for i in range(1, 400):
        c = s.ask().config
        near.append(abs(SPACE["lr"].to_unit(c["lr"]) - SPACE["lr"].to_unit(1e-3)) < 0.1)
        _told(s, c, 1.0, i)
    early, late = np.mean(near[:20]), np.mean(near[-100:])
    assert early > 0.35 and late < 0.3  # uniform: 0.2 of the draws lie within 0.1
    plain = make_strategy("random", Space(x=Float(0, 1)), seed=3, n_trials=3)
    assert plain.ask().config == Space(x=Float(0, 1)).sample(plain.rng())  # no prior: the draws as before


def _bowl(c):
    return (np.log10(c["lr"]) + 2) ** 2 + (c["units"] - 256) ** 2 / 1e5 + (c["act"] != "tanh") * 0.5 + c["x"]


def test_bayes_starts_at_the_prior_and_its_model_search_is_weighted_by_it():
    s = make_strategy("bayes", SPACE, seed=0, n_trials=20, n_initial=3, n_candidates=128, n_local=2)
    first = s.ask()
    assert first.meta["chosen_by"] == "initial" and first.config["lr"] == 1e-3 and first.config["act"] == "gelu"
    _told(s, first.config, _bowl(first.config), 0)
    for i in range(1, 4):
        c = s.ask().config
        _told(s, c, _bowl(c), i)
    c = s.ask()
    assert c.meta["chosen_by"] == "model"
    # With 4 observations the prior's weight is 10/4: the model's pick lies within the prior's reach.
    assert abs(SPACE["lr"].to_unit(c.config["lr"]) - SPACE["lr"].to_unit(1e-3)) < 2 * PRIOR_SD


def test_pibo_adds_the_fading_log_prior_and_its_closed_form_gradient_matches_autograd():
    import torch

    from tuitune.core.search.strategies.bayes.encoding import Encoding
    from tuitune.core.search.strategies.bayes.prior import PRIOR_BETA, PriorWeighted

    enc = Encoding(SPACE)

    class Flat:  # a constant acquisition: what remains is the prior's term
        def __call__(self, f):
            return torch.zeros(f.shape[:-1], dtype=f.dtype)

        def value_and_grad(self, f):
            return np.zeros(len(f)), np.zeros_like(f)

    assert PriorWeighted.power_after(5) == PRIOR_BETA / 5 and PriorWeighted.power_after(50) == PRIOR_BETA / 50
    w = PriorWeighted(Flat(), enc, 2.0)
    rng = np.random.default_rng(0)
    u = enc.from_unit_cube(rng.random((16, enc.dim)))
    f = enc.features(torch.from_numpy(u))
    v, g = w.value_and_grad(f.numpy())
    ft = f.clone().requires_grad_(True)
    vt = w(ft)
    vt.sum().backward()
    assert np.allclose(v, vt.detach().numpy()) and np.allclose(g, ft.grad.numpy())
    at_prior = enc.features(torch.from_numpy(enc.to_u(SPACE.prior_mode(rng))[None]))
    assert float(w(at_prior)[0]) == pytest.approx(2.0 * np.log(SPACE["act"].prior_probs().max()))
    assert float(w(at_prior)[0]) > float(vt.detach().max())  # the prior's mode weighs most


def test_the_api_takes_prior_defaults(tmp_path):
    def objective(config, trial):
        return (config["x"] - 0.3) ** 2

    space = tt.Space(x=tt.Float(0.0, 1.0), y=tt.Float(0.0, 1.0))
    s = tt.tune(objective, space, trials=3, prior="defaults", defaults={"x": 0.3, "y": 0.5}, db=tmp_path / "a.db",
                session="p", workers=0)
    assert s.trials[0].config == {"x": 0.3, "y": 0.5}
    assert s.record.space["x"]["prior"] == 0.3
    with pytest.raises(SpaceError, match="^prior 'best' is unknown; use 'defaults'"):
        tt.tune(objective, space, trials=3, prior="best", defaults={"x": 0.3}, db=tmp_path / "a.db", workers=0)
    with pytest.raises(SpaceError, match="^prior 'defaults' acts on the random, bayes, hyperband, asha strategies, not on grid"):
        tt.tune(objective, space, strategy="grid", prior="defaults", defaults={"x": 0.3}, db=tmp_path / "a.db", workers=0)
    with pytest.raises(SpaceError, match="^prior 'defaults' needs defaults"):
        tt.tune(objective, space, trials=3, prior="defaults", db=tmp_path / "a.db", workers=0)


@pytest.mark.parametrize("clip", [True, False])
def test_a_contradicted_priors_outlying_value_does_not_set_the_models_scale(monkeypatch, clip):
    """A prior at a far corner whose value dwarfs the rest: once the data contradict it, its own trial enters
    the GP at most as bad as the worst other trial (PRIOR_CLIP), so the others' differences keep their scale."""
    import tuitune.core.search.strategies.bayes.strategy as bayes

    monkeypatch.setattr(bayes, "PRIOR_CLIP", clip)
    space = Space(x=Float(0.0, 1.0, prior=0.0), y=Float(0.0, 1.0, prior=0.0))
    seen = []
    real = bayes.acquisition
    monkeypatch.setattr(bayes, "acquisition", lambda *a, **k: seen.append(a[2].numpy().copy()) or real(*a, **k))
    s = make_strategy("bayes", space, seed=2, n_trials=30, n_initial=4, n_candidates=128, n_local=2)
    values = []
    for i in range(5):
        sug = s.ask()
        c = sug.config
        values.append(100.0 if (c["x"], c["y"]) == (0.0, 0.0) else (c["x"] - 0.7) ** 2 + (c["y"] - 0.7) ** 2)
        _told(s, c, values[-1], i)
    assert values[0] == 100.0 and max(values[1:4]) < 1.0 and sug.meta["chosen_by"] == "model"
    Y = np.sort(seen[0])  # standardised, the GP maximises: the worst first
    others = np.sort(-np.array(values[1:4]))
    if clip:  # the corner as bad as the worst other; the others spread over the standardised range
        assert Y[0] == pytest.approx(Y[1]) and Y[-1] - Y[0] > 2.0
        assert np.allclose(np.diff(Y[1:]) / np.ptp(Y[1:]), np.diff(others) / np.ptp(others))
    else:
        assert Y[0] < Y[1] and Y[-1] - Y[1] < 0.2 * (Y[-1] - Y[0])
