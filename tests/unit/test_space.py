"""Search space: validation, unit-cube round trips, sampling, grids."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuitune.core.errors import SpaceError
from tuitune.core.search.space import Choice, Fixed, Float, Int, Space, param_from_dict

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def float_params(draw):
    scale = draw(st.sampled_from(["linear", "log", "log1m"]))
    if scale == "log":
        low = draw(st.floats(1e-8, 1e3))
        high = low * draw(st.floats(1.001, 1e6))
    elif scale == "log1m":
        low = draw(st.floats(-10, 0.99))
        high = draw(st.floats(low + 1e-6, 0.999999)) if low + 1e-6 < 0.999999 else 0.9999999
        if high <= low:
            high = (low + 1) / 2 if low < 1 else 0.99999
    else:
        low = draw(finite)
        high = low + draw(st.floats(1e-3, 1e6))
    return Float(low, high, scale=scale)


@st.composite
def int_params(draw):
    if draw(st.booleans()):
        low = draw(st.integers(1, 1000))
        return Int(low, low + draw(st.integers(1, 10_000)), scale="log")
    low = draw(st.integers(-1000, 1000))
    step = draw(st.integers(1, 20))
    return Int(low, low + step * draw(st.integers(1, 200)), step=step)


choices = st.lists(
    st.one_of(st.text(min_size=1, max_size=5), st.integers(-100, 100), st.booleans()), min_size=1, max_size=6, unique_by=lambda v: (type(v) is bool, str(v))
).map(Choice)


@given(p=st.one_of(float_params(), int_params(), choices), u=st.floats(0, 1))
@settings(max_examples=300, deadline=None)
def test_unit_round_trip(p, u):
    space = Space(x=p)
    value = space["x"].from_unit(u)
    assert space["x"].check(value) == value  # decoded values belong to the space
    again = space["x"].from_unit(space["x"].to_unit(value))
    if isinstance(p, Float) and p.step is None:
        assert math.isclose(again, value, rel_tol=1e-9, abs_tol=1e-9 * (p.high - p.low))
    else:
        assert again == value
    assert 0.0 <= space["x"].to_unit(value) <= 1.0


@given(p=st.one_of(float_params(), int_params(), choices), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=200, deadline=None)
def test_samples_lie_in_space(p, seed):
    space = Space(x=p, f=Fixed(3))
    cfg = space.sample(np.random.default_rng(seed))
    assert space.check(cfg) == cfg


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: Float(1.0, 1.0), "below high"),
        (lambda: Float(2.0, 1.0), "below high"),
        (lambda: Float(0.0, 1.0, scale="log"), "low > 0"),
        (lambda: Float(-1.0, 1.0, scale="log"), "low > 0"),
        (lambda: Float(0.5, 1.0, scale="log1m"), "high < 1"),
        (lambda: Float(0.0, 1.0, step=0), "step must be > 0"),
        (lambda: Float(0.0, 1.0, step=-0.1), "step must be > 0"),
        (lambda: Float(0.0, 1.0, step=0.3), "does not divide"),
        (lambda: Float(1e-3, 1.0, scale="log", step=0.001), "linear"),
        (lambda: Float(float("nan"), 1.0), "finite"),
        (lambda: Float(0.0, float("inf")), "finite"),
        (lambda: Float("a", 1.0), "number"),
        (lambda: Float(0, 1, scale="cubic"), "unknown"),
        (lambda: Int(5, 5), "below high"),
        (lambda: Int(0, 10, scale="log"), "low > 0"),
        (lambda: Int(1, 10, step=0), "step must be > 0"),
        (lambda: Int(0, 10, step=3), "does not divide"),
        (lambda: Int(1, 64, scale="log", step=2), "linear"),
        (lambda: Int(0.5, 10), "whole number"),
        (lambda: Int(True, 10), "whole number"),
        (lambda: Choice([]), "no values"),
        (lambda: Choice(["a", "a"]), "twice"),
        (lambda: Choice([1, 1.0]), "twice"),
        (lambda: Choice("abc"), "list"),
        (lambda: Choice([[1], [2]]), "not a string"),
        (lambda: Choice([float("nan")]), "not a string"),
        (lambda: Float(0, 1, grid=[]), "empty"),
        (lambda: Float(0, 1, grid=[0.5, 2.0]), "outside"),
        (lambda: Float(0, 1, grid_points=0), "grid_points"),
    ],
)
def test_invalid_parameters_are_refused_naming_the_parameter(make, words):
    with pytest.raises(SpaceError) as e:
        Space(lr=make())
    assert "'lr'" in str(e.value) and words in str(e.value)


def test_space_refuses_non_params_and_bad_names():
    with pytest.raises(SpaceError, match="Fixed"):
        Space(lr=0.1)
    with pytest.raises(SpaceError, match="identifier"):
        Space({"bad name": Fixed(1)})


def test_log1m_gives_room_near_one():
    p = Space(m=Float(0.9, 0.999, scale="log1m"))["m"]
    # Half the unit interval lies above 1 - sqrt(0.1 * 0.001) = 0.99.
    assert math.isclose(p.from_unit(0.5), 0.99, rel_tol=1e-9)
    assert p.from_unit(0.0) == pytest.approx(0.9) and p.from_unit(1.0) == pytest.approx(0.999)


def test_int_log_scale_spreads_values():
    p = Space(k=Int(1, 1000, scale="log"))["k"]
    draws = [p.sample(np.random.default_rng(i)) for i in range(400)]
    assert sum(d < 32 for d in draws) > 150  # about half below sqrt(1000)


def test_config_check_names_problems():
    space = Space(lr=Float(1e-4, 1e-1, scale="log"), units=Int(32, 512, step=32), act=Choice(["relu", "tanh"]))
    with pytest.raises(SpaceError, match="'units'.*not on the step"):
        space.check({"lr": 1e-3, "units": 40, "act": "relu"})
    with pytest.raises(SpaceError, match="'lr'.*outside"):
        space.check({"lr": 1.0, "units": 64, "act": "relu"})
    with pytest.raises(SpaceError, match="'act'.*not one of"):
        space.check({"lr": 1e-3, "units": 64, "act": "gelu"})
    with pytest.raises(SpaceError, match="'zzz' is not in the space"):
        space.check({"lr": 1e-3, "units": 64, "act": "relu", "zzz": 1})
    with pytest.raises(SpaceError, match="lacks parameter 'act'"):
        space.check({"lr": 1e-3, "units": 64})


def test_grid_size_known_and_order_stable():
    space = Space(a=Int(1, 3), b=Choice(["x", "y"]), c=Float(0, 1, grid_points=4), d=Fixed(7))
    assert space.grid_size() == 3 * 2 * 4
    grid = list(space.grid())
    assert len(grid) == 24 and len({tuple(g.values()) for g in grid}) == 24
    assert [space.grid_point(i) for i in range(24)] == grid
    assert grid[0] == {"a": 1, "b": "x", "c": 0.0, "d": 7} and grid[1]["c"] == pytest.approx(1 / 3)


def test_float_grid_on_log_scale_and_explicit():
    assert Space(lr=Float(1e-4, 1e-1, scale="log", grid_points=4))["lr"].grid() == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1])
    assert Space(lr=Float(1e-4, 1e-1, grid=[1e-2, 1e-3]))["lr"].grid() == [1e-2, 1e-3]


def test_dict_round_trip_and_unknown_keys():
    space = Space(
        lr=Float(1e-5, 1e-1, scale="log"), m=Float(0.5, 0.999, scale="log1m"), u=Int(32, 512, step=32),
        a=Choice(["relu", "tanh"]), f=Fixed("adam"),
    )
    again = Space.from_dict(space.to_dict())
    assert again.to_dict() == space.to_dict()
    with pytest.raises(SpaceError, match="'lr'.*'hgih'"):
        param_from_dict("lr", {"type": "float", "low": 0, "hgih": 1})
    with pytest.raises(SpaceError, match="type 'floot'"):
        param_from_dict("lr", {"type": "floot"})


def test_with_fixed_checks_the_value():
    space = Space(lr=Float(1e-4, 1e-1, scale="log"), u=Int(1, 4))
    fixed = space.with_fixed({"u": 2})
    assert fixed.searched == ["lr"] and fixed["u"].value == 2
    with pytest.raises(SpaceError, match="'u'.*outside"):
        space.with_fixed({"u": 9})
