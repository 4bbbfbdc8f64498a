"""Tests conditional parameters (``when``): the space's rules, TOML, manual mode, grid, bayes, the presets."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from tuitune.core.errors import ManualError, PresetError, SpaceError
from tuitune.core.search.space import Choice, Fixed, Float, Int, Space
from tuitune.core.search.strategies import make_strategy
from tuitune.training.presets import list_presets, load_preset


def space() -> Space:
    return Space(
        lr=Float(1e-4, 1e-1, scale="log", grid_points=2),
        optimizer=Choice(["sgd", "adam", "rmsprop"]),
        momentum=Float(0.5, 0.99, scale="log1m", grid_points=2, when={"optimizer": ["sgd", "rmsprop"]}),
        nesterov=Choice([True, False], when={"optimizer": "sgd"}),
        dampening=Float(0.0, 0.5, grid_points=3, when={"nesterov": [False]}),
        beta1=Float(0.8, 0.99, grid_points=2, when={"optimizer": ["adam"]}),
    )


def test_configs_hold_exactly_the_active_parameters():
    s = space()
    for seed in range(30):
        c = s.sample(np.random.default_rng(seed))
        assert s.check(c) == c
        assert ("momentum" in c) == (c["optimizer"] in ("sgd", "rmsprop"))
        assert ("beta1" in c) == (c["optimizer"] == "adam")
        assert ("dampening" in c) == (c["optimizer"] == "sgd" and c["nesterov"] is False)


def test_check_refuses_an_inactive_parameter_and_a_missing_active_one():
    s = space()
    with pytest.raises(SpaceError, match="parameter 'momentum' is inactive.*optimizer is 'sgd' or 'rmsprop'"):
        s.check({"lr": 0.01, "optimizer": "adam", "beta1": 0.9, "momentum": 0.9})
    with pytest.raises(SpaceError, match="lacks parameter 'beta1'"):
        s.check({"lr": 0.01, "optimizer": "adam"})


@pytest.mark.parametrize(
    ("params", "what"),
    [
        ({"a": Float(0, 1, when={"opt": ["x"]})}, "parameter 'a': when names 'opt', which is not in the space"),
        ({"b": Float(0, 1), "a": Float(0, 1, when={"b": [1]})}, "parameter 'a': when names 'b', a float"),
        ({"b": Choice([1, 2]), "a": Float(0, 1, when={"b": [3]})}, "parameter 'a': when b = 3, which is not one"),
        (
            {"b": Choice([1, 2], when={"c": [1]}), "c": Choice([1, 2], when={"b": [1]})},
            r"parameter 'b': its when conditions form a cycle \(b -> c -> b\)",
        ),
        ({"b": Choice([1, 2], when={"b": [1]})}, r"parameter 'b': its when conditions form a cycle \(b -> b\)"),
        ({"b": Choice([1, 2]), "a": Float(0, 1, when={})}, "parameter 'a': when must be a table"),
    ],
)
def test_bad_conditions_are_clear_errors_naming_the_entry(params, what):
    with pytest.raises(SpaceError, match=what):
        Space(params)


def test_to_dict_round_trips_conditions():
    s = space()
    d = s.to_dict()
    assert d["momentum"]["when"] == {"optimizer": ["sgd", "rmsprop"]}
    assert d["nesterov"]["when"] == {"optimizer": ["sgd"]}  # a single value is stored as a list
    assert Space.from_dict(d).to_dict() == d
    fixed = s.with_fixed({"momentum": 0.9})
    assert isinstance(fixed["momentum"], Fixed) and fixed["momentum"].when == {"optimizer": ["sgd", "rmsprop"]}


def test_grid_enumerates_active_combinations_only():
    s = space()
    # sgd: lr 2 x momentum 2 x (nesterov True + nesterov False x dampening 3) = 16; rmsprop 4; adam 4
    assert s.grid_size() == 24
    configs = list(s.grid())
    assert len(configs) == 24 and len({repr(c) for c in configs}) == 24
    assert all(s.check(c) == c for c in configs)
    assert [s.grid_point(i) for i in range(24)] == configs
    # A space without conditions keeps its old order (the last parameter varies fastest).
    flat = Space(a=Int(0, 1), b=Choice(["x", "y"]))
    assert list(flat.grid()) == [{"a": 0, "b": "x"}, {"a": 0, "b": "y"}, {"a": 1, "b": "x"}, {"a": 1, "b": "y"}]


def test_manual_removes_deactivated_and_refuses_inactive_parameters():
    s = space()
    defaults = {"lr": 0.01, "optimizer": "sgd", "momentum": 0.9, "nesterov": True, "dampening": 0.1, "beta1": 0.9}
    m = make_strategy("manual", s, defaults=defaults)
    assert m.defaults_config() == {"lr": 0.01, "optimizer": "sgd", "momentum": 0.9, "nesterov": True}
    to_adam = m.plan({"optimizer": "adam"})
    assert to_adam.config == {"lr": 0.01, "optimizer": "adam", "beta1": 0.9}  # momentum, nesterov gone; beta1 on
    nested = m.plan({"nesterov": False})
    assert nested.config["dampening"] == 0.1  # switched on at its default
    with pytest.raises(ManualError, match="parameter 'beta1' is inactive in this run: it applies only when optimizer is 'adam'"):
        m.plan({"beta1": 0.95})


def test_bayes_suggests_valid_conditional_configs_from_the_model():
    s = space()
    strat = make_strategy("bayes", s, seed=0, n_trials=9, n_initial=4)
    from tuitune.core.records import TrialRecord, TrialState

    for i in range(9):
        sug = strat.ask()
        assert s.check(sug.config) == sug.config
        value = 1.0 + (sug.config["optimizer"] != "adam") + abs(sug.config.get("beta1", 0.8) - 0.9)
        strat.tell(TrialRecord(number=i, state=TrialState.COMPLETE, config=sug.config, value=value, budget=1))
        assert sug.meta["chosen_by"] == ("initial" if i < 4 else "model")


TOML = """
name = "t"
metric = "val_acc"
direction = "maximize"
max_epochs = 3
[data]
dataset = "digits"
[model]
kind = "mlp"
[defaults]
optimizer = "sgd"
momentum = 0.9
[space]
optimizer = { type = "choice", values = ["sgd", "adam"] }
momentum = { type = "float", low = 0.5, high = 0.99, scale = "log1m", when = WHEN }
"""


def test_toml_when(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text(textwrap.dedent(TOML.replace("WHEN", '{ optimizer = ["sgd"] }')))
    preset = load_preset(str(p))
    assert preset.space["momentum"].when == {"optimizer": ["sgd"]}
    p.write_text(textwrap.dedent(TOML.replace("WHEN", '{ optimiser = ["sgd"] }')))
    with pytest.raises(PresetError, match=r"key 'space.momentum': parameter 'momentum': when names 'optimiser'"):
        load_preset(str(p))


def test_bundled_presets_make_optimizer_parameters_conditional():
    for preset in list_presets():
        s = preset.space
        if "momentum" in s.searched:
            assert s["momentum"].when == {"optimizer": ["sgd", "rmsprop"]}, preset.name
        if "beta1" in s.searched:
            assert s["beta1"].when == {"optimizer": ["adam", "adamw"]}, preset.name


def test_the_trainer_copes_with_absent_optimizer_parameters():
    import torch

    from tuitune.training.loop import make_optimizer

    params = [torch.nn.Parameter(torch.zeros(2))]
    adam = make_optimizer({"optimizer": "adam", "lr": 0.01, "weight_decay": 0.0}, params, torch.device("cpu"))
    assert adam.param_groups[0]["betas"] == (0.9, 0.999)
    sgd = make_optimizer({"optimizer": "sgd", "lr": 0.01}, params, torch.device("cpu"))
    assert sgd.param_groups[0]["momentum"] == 0.0


def test_fixing_a_parent_with_set_decides_its_children():
    s = space().with_fixed({"optimizer": "adam"})
    for seed in range(5):
        c = s.sample(np.random.default_rng(seed))
        assert c["optimizer"] == "adam" and "beta1" in c and "momentum" not in c and "nesterov" not in c
    assert s.grid_size() == 4  # lr 2 x beta1 2
    from tuitune.core.search.strategies.bayes.encoding import Encoding

    enc = Encoding(s)
    u = enc.from_unit_cube(np.random.default_rng(0).random((4, enc.dim)))
    assert all(s.check(enc.to_config(row)) == enc.to_config(row) for row in u)


def _evaluate(breakdown: str) -> int:
    """The arithmetic of a grid breakdown: 'a:5 x b:4 x (k=v: c:5 x d:2 + k=w: e:3)' -> 5*4*(10+3)."""
    import math
    import re

    def product(text: str) -> int:
        return math.prod(int(n.replace(",", "")) for n in re.findall(r":([\d,]+)", text)) if ":" in text else 1

    if "(" not in breakdown:
        return product(breakdown) if "=" not in breakdown else sum(
            product(t.split(": ", 1)[1]) for t in breakdown.split(" + "))
    head, inner = breakdown.split(" x (", 1)
    return product(head) * sum(product(t.split(": ", 1)[1]) for t in inner.rstrip(")").split(" + "))


def test_grid_breakdown_of_a_conditional_space_multiplies_to_its_size():
    s = Space({
        "lr": Float(1e-4, 1e-1, scale="log"),
        "optimizer": Choice(["sgd", "adam", "adamw"]),
        "momentum": Float(0.5, 0.99, when={"optimizer": ["sgd"]}),
        "nesterov": Choice([True, False], when={"optimizer": ["sgd"]}),
        "beta1": Float(0.5, 0.99, when={"optimizer": ["adam", "adamw"]}),
        "units": Int(16, 19),
    })
    text = s.grid_breakdown(3)
    assert "optimizer=sgd: momentum:3 x nesterov:2" in text and "momentum" not in text.split("(")[0], text
    assert _evaluate(text) == s.grid_size(3) == len(list(s.grid(3))) == 3 * 4 * (3 * 2 + 3 + 3)
    # The refusal of a grid over the limit states that count and that breakdown.
    from tuitune.core.errors import StrategyError

    with pytest.raises(StrategyError) as e:
        make_strategy("grid", s, seed=0, max_epochs=1, metric="m", direction="minimize", points=3, max_size=10)
    assert f"{s.grid_size(3):,} configs ({text})" in str(e.value)
    # Every bundled preset: the stated factors give the stated size.
    for p in list_presets():
        assert _evaluate(p.space.grid_breakdown()) == p.space.grid_size(), p.name
