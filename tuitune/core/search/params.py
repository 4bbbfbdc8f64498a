"""Provides the search space's parameters: Float, Int, Choice and Fixed, and ``param_from_dict``.

Every parameter validates itself when built (a ``SpaceError`` naming the parameter and what to do),
maps its values to and from the unit interval on its own scale, samples uniformly on that scale from
a seeded ``numpy.random.Generator``, and lists its grid values. Nothing here imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tuitune.core.errors import SpaceError

SCALES_FLOAT = ("linear", "log", "log1m")
SCALES_INT = ("linear", "log")
DEFAULT_GRID_POINTS = 5
_REL_TOL = 1e-9
_MAX_INT = 2**53  # the unit-cube encoding goes through floats, exact up to here
# The prior of a parameter (``prior=VALUE``): a normal centred at the value's unit image, on the parameter's
# own scale (log for log parameters), with this standard deviation in the unit interval, cut to [0, 1];
# a choice puts this share of its mass on the value and spreads the rest evenly over every value.
PRIOR_SD = 0.15
PRIOR_CHOICE_WEIGHT = 0.5


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _finite(name: str, what: str, x: Any) -> float:
    if not _is_number(x):
        raise SpaceError(f"parameter '{name}': {what} must be a number, got {x!r}")
    x = float(x)
    if not math.isfinite(x):
        raise SpaceError(f"parameter '{name}': {what} is {x}; give a finite number")
    return x


class Param:
    """One hyperparameter. Subclasses: Float, Int, Choice, Fixed.

    ``when={"optimizer": ["sgd", "rmsprop"]}`` makes the parameter conditional: it is part of a config only
    while every named parameter takes one of the listed values (and is itself active). The names are
    checked by the ``Space`` (they must name a Choice or Fixed parameter of it, without a cycle).
    """

    kind: str = ""
    name: str = "?"
    when: dict[str, list[Any]] | None = None
    prior: Any = None  # a value of the parameter the search favours (None: no prior)

    def _bind(self, name: str) -> Param:
        """Attaches the parameter's name and validates it (messages then name it)."""
        self.name = name
        self._validate()
        self._validate_when()
        self._validate_prior()
        return self

    def _validate_prior(self) -> None:
        if self.prior is None:
            return
        try:
            self.prior = self.check(self.prior)
        except SpaceError as e:
            raise SpaceError(
                f"parameter '{self.name}': prior {self.prior!r} must be a value of the parameter "
                f"({str(e).split(': ', 1)[-1]})"
            ) from None

    def _dict_prior(self, d: dict[str, Any]) -> dict[str, Any]:
        if self.prior is not None:
            d["prior"] = self.prior
        return d

    def prior_center(self) -> float:
        """The unit image of the prior's value (the centre of the prior on the parameter's scale)."""
        return self.to_unit(self.prior)

    def sample_prior(self, rng: np.random.Generator) -> Any:
        """A value drawn from the prior: a normal of PRIOR_SD around its unit image, cut to [0, 1]."""
        c = self.prior_center()
        for _ in range(64):
            u = c + PRIOR_SD * float(rng.standard_normal())
            if 0.0 <= u <= 1.0:
                return self.from_unit(u)
        return self.prior

    def _validate_when(self) -> None:
        w = self.when
        if w is None:
            return
        if not isinstance(w, Mapping) or not w:
            raise SpaceError(
                f"parameter '{self.name}': when must be a table like {{ optimizer = [\"sgd\", \"rmsprop\"] }}, got {w!r}"
            )
        out: dict[str, list[Any]] = {}
        for k, v in w.items():
            vals = list(v) if isinstance(v, (list, tuple)) else [v]
            if not isinstance(k, str) or not vals:
                raise SpaceError(
                    f"parameter '{self.name}': when {k!r} = {v!r} must name a parameter and list at least one value"
                )
            out[k] = [x.item() if isinstance(x, np.generic) else x for x in vals]
        self.when = out

    def _dict_when(self, d: dict[str, Any]) -> dict[str, Any]:
        if self.when:
            d["when"] = {k: list(v) for k, v in self.when.items()}
        return d

    def _validate(self) -> None:
        raise NotImplementedError

    @property
    def searched(self) -> bool:
        return True

    def to_unit(self, value: Any) -> float:
        """Maps a value of this parameter to [0, 1] on its scale."""
        raise NotImplementedError

    def from_unit(self, u: float) -> Any:
        """Maps a point of [0, 1] to a value of this parameter (the inverse of ``to_unit``)."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator) -> Any:
        return self.from_unit(float(rng.random()))

    def grid(self, points: int | None = None) -> list[Any]:
        raise NotImplementedError

    def grid_count(self, points: int | None = None) -> int:
        """How many values ``grid(points)`` has, without listing them (an Int may have billions)."""
        return len(self.grid(points))

    def check(self, value: Any) -> Any:
        """Returns the value normalised to this parameter's type, or raises SpaceError."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def describe(self) -> str:
        """A short human description: range and scale, or the choices."""
        raise NotImplementedError


class Float(Param):
    """A real-valued parameter in [low, high].

    Args:
        low, high: the bounds, both included.
        scale: ``"linear"``, ``"log"`` (low > 0) or ``"log1m"`` (1 - x on a log scale; high < 1),
            which gives momentum-like values as much room near 0.999 as near 0.9.
        step: makes the parameter discrete (linear scale only); it must divide high - low.
        grid: explicit values for grid search.
        grid_points: how many values, spaced on the scale, grid search takes (default 5).
    """

    kind = "float"

    def __init__(
        self,
        low: float,
        high: float,
        scale: str = "linear",
        step: float | None = None,
        grid: Sequence[float] | None = None,
        grid_points: int | None = None,
        when: Mapping[str, Any] | None = None,
        prior: float | None = None,
    ) -> None:
        self.low, self.high, self.scale, self.step = low, high, scale, step
        self.grid_values = None if grid is None else list(grid)
        self.grid_points = grid_points
        self.when = when  # type: ignore[assignment]  # normalised by _validate_when
        self.prior = prior

    def _validate(self) -> None:
        n = self.name
        self.low = _finite(n, "low", self.low)
        self.high = _finite(n, "high", self.high)
        if self.scale not in SCALES_FLOAT:
            raise SpaceError(f"parameter '{n}': scale {self.scale!r} is unknown; use one of {', '.join(SCALES_FLOAT)}")
        if self.low >= self.high:
            raise SpaceError(
                f"parameter '{n}': low ({self.low:g}) must be below high ({self.high:g}); "
                "for a single value use Fixed"
            )
        if self.scale == "log" and self.low <= 0:
            raise SpaceError(f"parameter '{n}': a log scale needs low > 0, got low={self.low:g}")
        if self.scale == "log1m" and self.high >= 1:
            raise SpaceError(
                f"parameter '{n}': scale 'log1m' searches 1 - x on a log scale and needs high < 1, got high={self.high:g}"
            )
        if self.step is not None:
            self.step = _finite(n, "step", self.step)
            if self.step <= 0:
                raise SpaceError(f"parameter '{n}': step must be > 0, got {self.step:g}")
            if self.scale != "linear":
                raise SpaceError(f"parameter '{n}': step works only on a linear scale, not '{self.scale}'")
            k = (self.high - self.low) / self.step
            if abs(k - round(k)) > 1e-6 * max(1.0, abs(k)):
                raise SpaceError(
                    f"parameter '{n}': step {self.step:g} does not divide the range "
                    f"{self.low:g}..{self.high:g}; change the step or the bounds"
                )
        if self.grid_values is not None:
            if self.grid_points is not None:
                raise SpaceError(f"parameter '{n}': give grid or grid_points, not both")
            if not self.grid_values:
                raise SpaceError(f"parameter '{n}': grid is empty; list at least one value")
            self.grid_values = [self.check(v) for v in self.grid_values]
            if len(set(self.grid_values)) != len(self.grid_values):
                raise SpaceError(f"parameter '{n}': grid has duplicate values")
        if self.grid_points is not None and (
            not isinstance(self.grid_points, int) or isinstance(self.grid_points, bool) or self.grid_points < 1
        ):
            raise SpaceError(f"parameter '{n}': grid_points must be a whole number >= 1, got {self.grid_points!r}")

    # The bounds of the searched coordinate t(x), increasing with x.
    def _t(self, x: float) -> float:
        if self.scale == "log":
            return math.log(x)
        if self.scale == "log1m":
            return -math.log1p(-x)
        return x

    def _t_inv(self, t: float) -> float:
        if self.scale == "log":
            return math.exp(t)
        if self.scale == "log1m":
            return -math.expm1(-t)
        return t

    @property
    def n_steps(self) -> int | None:
        """Number of distinct values when the parameter has a step, else None."""
        if self.step is None:
            return None
        return int(round((self.high - self.low) / self.step)) + 1

    @property
    def _n(self) -> int:
        n = self.n_steps
        assert n is not None, "only for a stepped Float"
        return n

    def to_unit(self, value: Any) -> float:
        x = float(value)
        if self.step is not None:
            n = self._n
            i = round((x - self.low) / self.step)
            return (i + 0.5) / n
        lo, hi = self._t(self.low), self._t(self.high)
        return min(1.0, max(0.0, (self._t(x) - lo) / (hi - lo)))

    def from_unit(self, u: float) -> float:
        u = min(1.0, max(0.0, float(u)))
        if self.step is not None:
            n = self._n
            i = min(n - 1, int(u * n))
            return min(self.high, self.low + i * self.step)
        lo, hi = self._t(self.low), self._t(self.high)
        x = self._t_inv(lo + u * (hi - lo))
        return min(self.high, max(self.low, x))

    def grid(self, points: int | None = None) -> list[float]:
        if self.grid_values is not None:
            return list(self.grid_values)
        if self.step is not None and self.grid_points is None:
            return [self.from_unit((i + 0.5) / self._n) for i in range(self._n)]
        k = self.grid_points or points or DEFAULT_GRID_POINTS
        if k == 1:
            return [self.from_unit(0.5)]
        values = [self.from_unit(i / (k - 1)) for i in range(k)]
        out: list[float] = []
        for v in values:  # a step can merge neighbouring points
            if v not in out:
                out.append(v)
        return out

    def check(self, value: Any) -> float:
        if not _is_number(value):
            raise SpaceError(f"parameter '{self.name}': {value!r} is not a number")
        x = float(value)
        if not math.isfinite(x):
            raise SpaceError(f"parameter '{self.name}': {x} is not a finite number")
        tol = _REL_TOL * max(1.0, abs(self.high - self.low))
        if x < self.low - tol or x > self.high + tol:
            raise SpaceError(f"parameter '{self.name}': {x:g} is outside {self.describe()}")
        x = min(self.high, max(self.low, x))
        if self.step is not None:
            k = (x - self.low) / self.step
            if abs(k - round(k)) > 1e-6:
                raise SpaceError(
                    f"parameter '{self.name}': {x:g} is not on the step {self.step:g} from {self.low:g}"
                )
            x = min(self.high, self.low + round(k) * self.step)
        return x

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "float", "low": self.low, "high": self.high, "scale": self.scale}
        if self.step is not None:
            d["step"] = self.step
        if self.grid_values is not None:
            d["grid"] = list(self.grid_values)
        if self.grid_points is not None:
            d["grid_points"] = self.grid_points
        return self._dict_when(self._dict_prior(d))

    def describe(self) -> str:
        s = f"[{self.low:g}, {self.high:g}]"
        if self.step is not None:
            s += f" step {self.step:g}"
        if self.scale != "linear":
            s += f" {self.scale}"
        return s


class Int(Param):
    """An integer parameter in [low, high] with a step (linear scale) or on a log scale (step 1)."""

    kind = "int"

    def __init__(
        self, low: int, high: int, scale: str = "linear", step: int = 1, when: Mapping[str, Any] | None = None,
        prior: int | None = None,
    ) -> None:
        self.low, self.high, self.scale, self.step = low, high, scale, step
        self.when = when  # type: ignore[assignment]  # normalised by _validate_when
        self.prior = prior

    @staticmethod
    def _as_int(name: str, what: str, x: Any) -> int:
        if isinstance(x, (bool, np.bool_)) or not _is_number(x):
            raise SpaceError(f"parameter '{name}': {what} must be a whole number, got {x!r}")
        if isinstance(x, (float, np.floating)):
            if not math.isfinite(x):
                raise SpaceError(f"parameter '{name}': {what} is {x}; give a finite whole number")
            if not float(x).is_integer():
                raise SpaceError(f"parameter '{name}': {what} must be a whole number, got {x!r}")
        return int(x)

    def _validate(self) -> None:
        n = self.name
        self.low = self._as_int(n, "low", self.low)
        self.high = self._as_int(n, "high", self.high)
        self.step = self._as_int(n, "step", self.step)
        if self.scale not in SCALES_INT:
            raise SpaceError(f"parameter '{n}': scale {self.scale!r} is unknown for Int; use linear or log")
        if max(abs(self.low), abs(self.high)) > _MAX_INT:
            raise SpaceError(
                f"parameter '{n}': bounds beyond ±2**53 ({_MAX_INT}) cannot be searched exactly; "
                "use a Float with a log scale for so wide a range"
            )
        if self.low >= self.high:
            raise SpaceError(
                f"parameter '{n}': low ({self.low}) must be below high ({self.high}); for a single value use Fixed"
            )
        if self.step <= 0:
            raise SpaceError(f"parameter '{n}': step must be > 0, got {self.step}")
        if self.scale == "log":
            if self.low <= 0:
                raise SpaceError(f"parameter '{n}': a log scale needs low > 0, got low={self.low}")
            if self.step != 1:
                raise SpaceError(f"parameter '{n}': step works only on a linear scale; drop step or the log scale")
        if (self.high - self.low) % self.step:
            raise SpaceError(
                f"parameter '{n}': step {self.step} does not divide the range {self.low}..{self.high}; "
                "change the step or the bounds"
            )

    @property
    def values(self) -> range:
        return range(self.low, self.high + 1, self.step)

    def _bounds(self) -> tuple[float, float]:
        # Each integer owns an equal share of the unit interval on its scale: [v - 1/2, v + 1/2].
        if self.scale == "log":
            return math.log(self.low - 0.5), math.log(self.high + 0.5)
        return self.low - self.step / 2, self.high + self.step / 2

    def to_unit(self, value: Any) -> float:
        x = float(value)
        lo, hi = self._bounds()
        t = math.log(x) if self.scale == "log" else x
        return min(1.0, max(0.0, (t - lo) / (hi - lo)))

    def from_unit(self, u: float) -> int:
        u = min(1.0, max(0.0, float(u)))
        lo, hi = self._bounds()
        t = lo + u * (hi - lo)
        x = math.exp(t) if self.scale == "log" else t
        k = round((x - self.low) / self.step)
        return int(min(self.high, max(self.low, self.low + k * self.step)))

    @property
    def size(self) -> int:
        """How many values the parameter has."""
        return (self.high - self.low) // self.step + 1

    def grid(self, points: int | None = None) -> list[int]:
        return list(self.values)

    def grid_count(self, points: int | None = None) -> int:
        return self.size

    def check(self, value: Any) -> int:
        x = self._as_int(self.name, "value", value)
        if x < self.low or x > self.high:
            raise SpaceError(f"parameter '{self.name}': {x} is outside {self.describe()}")
        if (x - self.low) % self.step:
            raise SpaceError(f"parameter '{self.name}': {x} is not on the step {self.step} from {self.low}")
        return x

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "int", "low": self.low, "high": self.high, "scale": self.scale}
        if self.step != 1:
            d["step"] = self.step
        return self._dict_when(self._dict_prior(d))

    def describe(self) -> str:
        s = f"{self.low}..{self.high}"
        if self.step != 1:
            s += f" step {self.step}"
        if self.scale != "linear":
            s += f" {self.scale}"
        return s


_CHOICE_TYPES = (str, int, float, bool)


class Choice(Param):
    """A categorical parameter: one of a list of distinct values (str, int, float or bool)."""

    kind = "choice"

    def __init__(self, values: Sequence[Any], when: Mapping[str, Any] | None = None, prior: Any = None) -> None:
        self.values = values
        self.when = when  # type: ignore[assignment]  # normalised by _validate_when
        self.prior = prior

    def _validate(self) -> None:
        n = self.name
        if isinstance(self.values, (str, bytes)) or not isinstance(self.values, Sequence):
            raise SpaceError(f"parameter '{n}': Choice takes a list of values, got {self.values!r}")
        vals = list(self.values)
        if not vals:
            raise SpaceError(f"parameter '{n}': Choice has no values; list at least one")
        for v in vals:
            if isinstance(v, (np.generic,)):
                v = v.item()
            if not isinstance(v, _CHOICE_TYPES) or (isinstance(v, float) and not math.isfinite(v)):
                raise SpaceError(
                    f"parameter '{n}': choice {v!r} is not a string, whole number, finite number or boolean"
                )
        keys = [self._key(v) for v in vals]
        if len(set(keys)) != len(keys):
            dup = next(v for v, k in zip(vals, keys) if keys.count(k) > 1)
            raise SpaceError(f"parameter '{n}': choice {dup!r} is listed twice; list each value once")
        self.values = [v.item() if isinstance(v, np.generic) else v for v in vals]

    @staticmethod
    def _key(v: Any) -> tuple[str, Any]:
        # True == 1 and 1 == 1.0 in Python; as choices they are different values only across kinds.
        if isinstance(v, bool):
            return ("bool", v)
        if isinstance(v, (int, float)):
            return ("num", float(v))
        return (type(v).__name__, v)

    def index(self, value: Any) -> int:
        k = self._key(value) if isinstance(value, _CHOICE_TYPES) else None
        for i, v in enumerate(self.values):
            if self._key(v) == k:
                return i
        raise SpaceError(
            f"parameter '{self.name}': {value!r} is not one of the choices {self.describe()}"
        )

    def to_unit(self, value: Any) -> float:
        return (self.index(value) + 0.5) / len(self.values)

    def from_unit(self, u: float) -> Any:
        u = min(1.0, max(0.0, float(u)))
        return self.values[min(len(self.values) - 1, int(u * len(self.values)))]

    def sample(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.integers(len(self.values)))]

    def grid(self, points: int | None = None) -> list[Any]:
        return list(self.values)

    def check(self, value: Any) -> Any:
        return self.values[self.index(value)]

    def to_dict(self) -> dict[str, Any]:
        return self._dict_when(self._dict_prior({"type": "choice", "values": list(self.values)}))

    def prior_probs(self) -> np.ndarray:
        """Each value's prior probability: PRIOR_CHOICE_WEIGHT on the prior's value, the rest evenly spread."""
        k = len(self.values)
        p = np.full(k, (1.0 - PRIOR_CHOICE_WEIGHT) / k)
        p[self.index(self.prior)] += PRIOR_CHOICE_WEIGHT
        return p

    def sample_prior(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.choice(len(self.values), p=self.prior_probs()))]

    def describe(self) -> str:
        """The choices as a plain list, as a user types them: ``sgd, adam, adamw``."""
        from tuitune.core.text import fmt

        return ", ".join(fmt(v) for v in self.values)


class Fixed(Param):
    """A parameter held at one value; it is part of every config but never searched."""

    kind = "fixed"

    def __init__(self, value: Any, when: Mapping[str, Any] | None = None) -> None:
        self.value = value
        self.when = when  # type: ignore[assignment]  # normalised by _validate_when

    def _validate(self) -> None:
        v = self.value
        if isinstance(v, float) and not math.isfinite(v):
            raise SpaceError(f"parameter '{self.name}': fixed value {v} is not finite")

    @property
    def searched(self) -> bool:
        return False

    def to_unit(self, value: Any) -> float:
        return 0.5

    def from_unit(self, u: float) -> Any:
        return self.value

    def sample(self, rng: np.random.Generator) -> Any:
        return self.value

    def grid(self, points: int | None = None) -> list[Any]:
        return [self.value]

    def check(self, value: Any) -> Any:
        if value != self.value:
            raise SpaceError(f"parameter '{self.name}' is fixed at {self.value!r}; {value!r} is not allowed")
        return self.value

    def to_dict(self) -> dict[str, Any]:
        return self._dict_when({"type": "fixed", "value": self.value})

    def describe(self) -> str:
        return f"= {self.value!r}"


_KINDS: dict[str, type[Param]] = {"float": Float, "int": Int, "choice": Choice, "fixed": Fixed}


def param_from_dict(name: str, d: Mapping[str, Any]) -> Param:
    """Builds a parameter from its dict form (``{"type": "int", "low": 1, ...}``), validated."""
    if not isinstance(d, Mapping):
        raise SpaceError(f"parameter '{name}': expected a table like {{ type = \"float\", low = 0, high = 1 }}, got {d!r}")
    d = dict(d)
    kind = d.pop("type", None)
    if not isinstance(kind, str) or kind not in _KINDS:
        raise SpaceError(f"parameter '{name}': type {kind!r} is unknown; use one of float, int, choice, fixed")
    cls = _KINDS[kind]
    import inspect

    allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise SpaceError(
            f"parameter '{name}': key {unknown[0]!r} is unknown for type {kind}; allowed: {', '.join(sorted(allowed))}"
        )
    try:
        p = cls(**d)
    except TypeError as e:
        raise SpaceError(f"parameter '{name}': {e}") from None
    return p._bind(name)
