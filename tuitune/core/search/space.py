"""Provides the search space: the Space that gathers the parameters (``tuitune.core.search.params``).

The parameters (Float, Int, Choice, Fixed) live in ``params`` and are importable from here as before.
A Space orders its parameters, checks their conditions, samples and encodes whole configs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from tuitune.core.errors import SpaceError
from tuitune.core.search.params import (  # noqa: F401 - re-exported: the space's public names
    _CHOICE_TYPES,
    DEFAULT_GRID_POINTS,
    PRIOR_CHOICE_WEIGHT,
    PRIOR_SD,
    SCALES_FLOAT,
    SCALES_INT,
    Choice,
    Fixed,
    Float,
    Int,
    Param,
    param_from_dict,
)


def _matches(parent: Param, value: Any, allowed: list[Any]) -> bool:
    """Whether a parent parameter's value is one of a condition's values (choices compared as choices)."""
    if isinstance(parent, Choice):
        k = Choice._key(value) if isinstance(value, _CHOICE_TYPES) else None
        return any(Choice._key(a) == k for a in allowed if isinstance(a, _CHOICE_TYPES))
    # A fixed value: equal and of the same kind (True is not 1 here either).
    return any(value == a and isinstance(value, bool) == isinstance(a, bool) for a in allowed)


class Space(Mapping[str, Param]):
    """The search space: named parameters in the order given.

    ``Space(lr=Float(1e-5, 1e-1, scale="log"), units=Int(32, 512, step=32))``

    Conditional parameters (``when=...``) are part of a config only while their condition holds: a config
    holds exactly the active parameters, in the space's order.
    """

    def __init__(self, params: Mapping[str, Param] | None = None, /, **kw: Param) -> None:
        merged: dict[str, Param] = dict(params or {})
        for k, v in kw.items():
            if k in merged:
                raise SpaceError(f"parameter '{k}' is given twice")
            merged[k] = v
        self._params: dict[str, Param] = {}
        for name, p in merged.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise SpaceError(f"parameter name {name!r} must be a valid identifier (letters, digits, _)")
            if not isinstance(p, Param):
                raise SpaceError(
                    f"parameter '{name}': expected Float, Int, Choice or Fixed, got {p!r}; "
                    "wrap a constant in Fixed(...)"
                )
            self._params[name] = p._bind(name)
        self._order = self._check_conditions()

    def _check_conditions(self) -> list[str]:
        """Checks every ``when`` against the space; returns the names in an order where parents come first."""
        for name, p in self._params.items():
            for parent, allowed in (p.when or {}).items():
                if parent not in self._params:
                    raise SpaceError(
                        f"parameter '{name}': when names '{parent}', which is not in the space; "
                        f"known: {', '.join(self._params)}"
                    )
                q = self._params[parent]
                if not isinstance(q, (Choice, Fixed)):
                    raise SpaceError(
                        f"parameter '{name}': when names '{parent}', a {q.kind}; a condition must name a choice "
                        "(or fixed) parameter"
                    )
                if isinstance(q, Choice):
                    for a in allowed:
                        try:
                            q.index(a)
                        except SpaceError:
                            raise SpaceError(
                                f"parameter '{name}': when {parent} = {a!r}, which is not one of the choices "
                                f"{q.describe()}"
                            ) from None
        # Depth-first over the conditions: a parameter reached again while it is being visited is a cycle.
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cyc = path[path.index(name):] + [name]
                raise SpaceError(
                    f"parameter '{name}': its when conditions form a cycle ({' -> '.join(cyc)}); "
                    "a parameter cannot depend on itself"
                )
            state[name] = 1
            for parent in self._params[name].when or {}:
                visit(parent, [*path, name])
            state[name] = 2
            order.append(name)

        for name in self._params:
            visit(name, [])
        return order

    # Mapping protocol
    def __getitem__(self, key: str) -> Param:
        return self._params[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={p.kind}({p.describe()})" for k, p in self._params.items())
        return f"Space({inner})"

    @property
    def searched(self) -> list[str]:
        """Names of the parameters that are searched (all but Fixed)."""
        return [k for k, p in self._params.items() if p.searched]

    @property
    def conditional(self) -> bool:
        """Whether any parameter has a ``when`` condition."""
        return any(p.when for p in self._params.values())

    @property
    def parents(self) -> list[str]:
        """The parameters some condition names, parents before children."""
        named = {k for p in self._params.values() for k in (p.when or {})}
        return [k for k in self._order if k in named]

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {k: p.to_dict() for k, p in self._params.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Mapping[str, Any]]) -> Space:
        return cls({k: param_from_dict(k, v) for k, v in d.items()})

    @property
    def priors(self) -> dict[str, Any]:
        """The searched parameters that carry a prior, with its value."""
        return {k: p.prior for k, p in self._params.items() if p.searched and p.prior is not None}

    def with_priors(self, values: Mapping[str, Any]) -> Space:
        """A copy where each searched parameter named in ``values`` carries that value as its prior (checked);
        names the space does not search are left out (``prior="defaults"`` names every parameter)."""
        params = dict(self._params)
        for k, v in values.items():
            p = params.get(k)
            if p is not None and p.searched:
                params[k] = param_from_dict(k, {**p.to_dict(), "prior": v})
        return Space(params)

    def prior_config(self, rng: np.random.Generator) -> dict[str, Any]:
        """A config drawn from the prior: each parameter with a prior from it, the others uniformly."""
        return self.prune({k: p.sample_prior(rng) if p.searched and p.prior is not None else p.sample(rng)
                           for k, p in self._params.items()})

    def prior_mode(self, rng: np.random.Generator) -> dict[str, Any]:
        """The prior's most likely config: every prior's value, the parameters without one drawn uniformly."""
        return self.prune({k: p.prior if p.searched and p.prior is not None else p.sample(rng)
                           for k, p in self._params.items()})

    def with_fixed(self, values: Mapping[str, Any]) -> Space:
        """A copy where the given parameters are Fixed at the given (checked) values (conditions kept)."""
        params = dict(self._params)
        for k, v in values.items():
            if k not in params:
                raise SpaceError(f"parameter '{k}' is not in the space; known: {', '.join(params)}")
            params[k] = Fixed(params[k].check(v) if params[k].searched else v, when=params[k].when)
        return Space(params)

    # Conditions
    def active(self, config: Mapping[str, Any]) -> dict[str, bool]:
        """Which parameters are active for the values in ``config`` (a parent absent from it is inactive)."""
        on: dict[str, bool] = {}
        for k in self._order:
            on[k] = all(
                on[parent] and parent in config and _matches(self._params[parent], config[parent], allowed)
                for parent, allowed in (self._params[k].when or {}).items()
            )
        return {k: on[k] for k in self._params}

    def prune(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The config without its inactive parameters (and without names the space does not have)."""
        on = self.active(config)
        return {k: config[k] for k in self._params if on[k] and k in config}

    def describe_when(self, name: str) -> str:
        """The condition of a parameter in words: ``optimizer is 'sgd' or 'rmsprop'``."""
        parts = []
        for parent, allowed in (self._params[name].when or {}).items():
            parts.append(f"{parent} is " + " or ".join(repr(a) for a in allowed))
        return " and ".join(parts) or "always"

    # Configs
    def check(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Returns the config normalised to the space, or raises SpaceError naming the first problem.

        Every active parameter must be present, and nothing else (an inactive one is an error).
        """
        unknown = [k for k in config if k not in self._params]
        if unknown:
            raise SpaceError(f"parameter '{unknown[0]}' is not in the space; known: {', '.join(self._params)}")
        out: dict[str, Any] = {}
        for k in self._order:  # parents first: a child's activity depends on its parents' checked values
            p = self._params[k]
            if not all(
                parent in out and _matches(self._params[parent], out[parent], allowed)
                for parent, allowed in (p.when or {}).items()
            ):
                if k in config:
                    raise SpaceError(
                        f"parameter '{k}' is inactive in this config: it applies only when {self.describe_when(k)}; "
                        "leave it out"
                    )
                continue
            if k not in config:
                raise SpaceError(f"config lacks parameter '{k}'")
            out[k] = p.check(config[k])
        return {k: out[k] for k in self._params if k in out}

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """One config drawn uniformly on each parameter's scale (every parameter is drawn, so the draws of
        the active ones do not depend on the conditions; the inactive ones are then left out)."""
        return self.prune({k: p.sample(rng) for k, p in self._params.items()})

    def to_unit(self, config: Mapping[str, Any]) -> np.ndarray:
        """The searched parameters of a config as a point of the unit cube (order of ``searched``; an
        inactive parameter at 0.5)."""
        return np.array(
            [self._params[k].to_unit(config[k]) if k in config else 0.5 for k in self.searched], dtype=float
        )

    def from_unit(self, u: Sequence[float] | np.ndarray) -> dict[str, Any]:
        """The config at a point of the unit cube (Fixed parameters at their values, inactive ones left out)."""
        names = self.searched
        if len(u) != len(names):
            raise SpaceError(f"a unit point needs {len(names)} coordinates, got {len(u)}")
        it = iter(u)
        out: dict[str, Any] = {}
        for k, p in self._params.items():
            out[k] = p.from_unit(next(it)) if p.searched else p.from_unit(0.5)
        return self.prune(out)

    # Grid: the branches are the combinations of the parents' values; within a branch, the product of the
    # active other parameters' values. Inactive parameters are never enumerated.
    def grid_axes(self, points: int | None = None) -> dict[str, list[Any]]:
        return {k: p.grid(points) for k, p in self._params.items()}

    def grid_counts(self, points: int | None = None) -> dict[str, int]:
        return {k: p.grid_count(points) for k, p in self._params.items()}

    def _branches(self, points: int | None) -> Iterator[dict[str, Any]]:
        """Every assignment of the active parents, in a stable order (the last parent varies fastest)."""
        parents = self.parents

        def rec(i: int, acc: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if i == len(parents):
                yield dict(acc)
                return
            k = parents[i]
            if not self.active(acc)[k]:
                yield from rec(i + 1, acc)
                return
            for v in self._params[k].grid(points):
                acc[k] = v
                yield from rec(i + 1, acc)
                del acc[k]

        yield from rec(0, {})

    def _branch_axes(self, branch: dict[str, Any], points: int | None) -> list[str]:
        """The active non-parent parameters of a branch, in space order."""
        on = self.active(branch)  # conditions name only parents, and the branch holds the active ones
        parents = set(self.parents)
        return [k for k in self._params if k not in parents and on[k]]

    def _branch_size(self, branch: dict[str, Any], points: int | None, counts: dict[str, int]) -> int:
        return math.prod(counts[k] for k in self._branch_axes(branch, points))

    def grid_size(self, points: int | None = None) -> int:
        """Number of configs of the full grid, known before the first trial (nothing is listed)."""
        counts = self.grid_counts(points)
        if not self.parents:
            return math.prod(counts.values())
        return sum(self._branch_size(b, points, counts) for b in self._branches(points))

    def grid_breakdown(self, points: int | None = None, most: int = 6) -> str:
        """How ``grid_size`` is counted, in words whose arithmetic gives it: ``lr:5 x units:4``, and for a
        conditional space the axes of every branch times the sum over the branches of their own axes:
        ``lr:5 x batch:4 x (optimizer=sgd: momentum:5 + optimizer=adam: beta1:5 + ...)``."""
        counts = self.grid_counts(points)

        def axes(names: Iterable[str]) -> str:
            return " x ".join(f"{k}:{counts[k]:,}" for k in names if counts[k] > 1) or "1"

        if not self.parents:
            return axes(self._params)
        branches = [(b, self._branch_axes(b, points)) for b in self._branches(points)]
        common = [k for k in self._params if all(k in names for _, names in branches)]
        terms = [
            " ".join(f"{k}={v}" for k, v in b.items()) + ": " + axes(k for k in names if k not in common)
            for b, names in branches
        ]
        more = f" + {len(terms) - most} more" if len(terms) > most else ""
        inner = " + ".join(terms[:most]) + more
        head = axes(common)
        return inner if head == "1" else f"{head} x ({inner})"

    def grid(self, points: int | None = None) -> Iterator[dict[str, Any]]:
        """Every config of the grid, in a stable order (the last parameter varies fastest)."""
        axes = self.grid_axes(points)
        for branch in self._branches(points):
            names = self._branch_axes(branch, points)
            for combo in itertools.product(*(axes[k] for k in names)):
                values = branch | dict(zip(names, combo))
                yield {k: values[k] for k in self._params if k in values}

    def grid_point(self, index: int, points: int | None = None) -> dict[str, Any]:
        """The index-th config of ``grid()`` without enumerating the ones before it (only the branches)."""
        axes = self.grid_axes(points)
        counts = {k: len(v) for k, v in axes.items()}
        for branch in self._branches(points):
            names = self._branch_axes(branch, points)
            size = math.prod(counts[k] for k in names)
            if index >= size:
                index -= size
                continue
            out: dict[str, Any] = dict(branch)
            for k in reversed(names):
                index, r = divmod(index, counts[k])
                out[k] = axes[k][r]
            return {k: out[k] for k in self._params if k in out}
        raise SpaceError("grid index beyond the grid")
