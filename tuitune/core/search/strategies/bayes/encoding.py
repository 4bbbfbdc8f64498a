"""Provides the encoding of a space for the GP: the search (u) coordinates and the GP features.

* Floats, Ints and stepped Floats are features in [0, 1] on their own scale (``Param.to_unit``: log and
  log1m are already on the parameter's scale). A Choice is one-hot encoded, never an ordinal; in the
  lean GP its columns share one lengthscale, so any two different choices are equally far apart
  (a Hamming distance, as Optuna's GPSampler has).
* Conditional parameters (``when=...``): the u space has a coordinate for every searched parameter, active
  or not, so the acquisition optimiser works on a fixed box. An inactive parameter's numeric feature is held
  at ``INACTIVE`` and its one-hot columns at zero, so two configs of the same branch are compared on their
  active parameters only, and the parent choice's own one-hot tells the branches apart. (Measured against
  the naive flat space in benchmarks/results/bayes.md, function "conditional".)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from tuitune.core.search.space import Choice, Fixed, Float, Int, Space

if TYPE_CHECKING:
    import torch

# Discrete coordinates with more values than this are searched continuously and rounded at the end.
MAX_DISCRETE_VALUES = 4096
# The feature value of an inactive numeric parameter (the middle of its range).
INACTIVE = 0.5


@dataclass
class Coord:
    """One searched parameter as a coordinate of the search (u) space.

    kind: "cont" (u in [0, 1]), "disc" (u one of ``grid``, the unit images of the allowed values) or
    "cat" (u the index of the choice; it becomes ``n`` one-hot features).
    conds: the parameter's conditions as (coordinate of the parent choice, allowed indices of it); a
    condition on a Fixed parent is decided once (``always_off``).
    """

    name: str
    kind: str
    grid_: np.ndarray | None = None
    n: int = 0
    conds: list[tuple[int, np.ndarray]] = field(default_factory=list)
    always_off: bool = False

    @property
    def grid(self) -> np.ndarray:
        assert self.grid_ is not None, f"coordinate {self.name} is not discrete"
        return self.grid_


class Encoding:
    """Maps configs to the search space u (one coordinate per searched parameter) and u to GP features."""

    def __init__(self, space: Space) -> None:
        self.space = space
        self.coords: list[Coord] = []
        for name in space.searched:
            p = space[name]
            if isinstance(p, Choice):
                self.coords.append(Coord(name, "cat", n=len(p.values)))
                continue
            values: list[Any] | None = None
            n_steps = p.n_steps if isinstance(p, Float) else None
            if isinstance(p, Int) and p.size <= MAX_DISCRETE_VALUES:
                values = list(p.values)
            elif isinstance(p, Float) and n_steps is not None and n_steps <= MAX_DISCRETE_VALUES:
                values = [p.from_unit((i + 0.5) / n_steps) for i in range(n_steps)]
            if values is not None:
                grid = np.array(sorted({p.to_unit(v) for v in values}), dtype=float)
                self.coords.append(Coord(name, "disc", grid_=grid))
            else:
                # A continuous Float, or an Int/stepped Float with a huge number of values (rounded at the end).
                self.coords.append(Coord(name, "cont"))
        self.dim = len(self.coords)
        self.index = {c.name: i for i, c in enumerate(self.coords)}
        self.num_idx = [i for i, c in enumerate(self.coords) if c.kind != "cat"]
        self.cont_idx = [i for i, c in enumerate(self.coords) if c.kind == "cont"]
        self.disc_idx = [i for i, c in enumerate(self.coords) if c.kind == "disc"]
        self.cat_idx = [i for i, c in enumerate(self.coords) if c.kind == "cat"]
        self.n_features = len(self.num_idx) + sum(self.coords[i].n for i in self.cat_idx)
        # Feature -> coordinate, and the weight of its squared difference: a choice's one-hot columns share
        # one lengthscale and count 1/2 each, so two different choices are at squared distance 1 (Hamming).
        self.group = list(range(len(self.num_idx)))
        self.weight = [1.0] * len(self.num_idx)
        for j, i in enumerate(self.cat_idx):
            self.group += [len(self.num_idx) + j] * self.coords[i].n
            self.weight += [0.5] * self.coords[i].n
        self._bind_conditions()

    def _bind_conditions(self) -> None:
        space = self.space
        for c in self.coords:
            for parent, allowed in (space[c.name].when or {}).items():
                q = space[parent]
                if isinstance(q, Fixed):  # decided once (the space's prune has the last word on configs)
                    c.always_off |= not any(q.value == x for x in allowed)
                    continue
                ch = cast(Choice, q)
                c.conds.append((self.index[parent], np.array(sorted(ch.index(a) for a in allowed))))
        self.conditional = any(c.conds or c.always_off for c in self.coords)

    # ---- activity -----------------------------------------------------------------------------------
    def active(self, U: np.ndarray) -> np.ndarray:
        """Which coordinates of u points (n, dim) are active (n, dim) booleans."""
        on = np.ones(U.shape, dtype=bool)
        if not self.conditional:
            return on
        # Visit coordinates parents-first (a Choice's coordinate comes before its children's).
        for i in self._topo():
            c = self.coords[i]
            if c.always_off:
                on[:, i] = False
                continue
            for j, allowed in c.conds:
                on[:, i] &= on[:, j] & np.isin(np.rint(U[:, j]).astype(int), allowed)
        return on

    def _topo(self) -> list[int]:
        return [self.index[k] for k in self.space._order if k in self.index]

    # ---- configs ------------------------------------------------------------------------------------
    def to_u(self, config: dict[str, Any]) -> np.ndarray:
        """The u point of a config (raises SpaceError for a value the space does not hold, KeyError for a
        missing active parameter); an inactive parameter sits at INACTIVE (a choice at its first value)."""
        on = self.space.active(config) if self.space.conditional else None
        u = np.empty(self.dim)
        for i, c in enumerate(self.coords):
            p = self.space[c.name]
            if on is not None and not on[c.name]:
                u[i] = 0.0 if c.kind == "cat" else (self.snap(i, np.array([INACTIVE]))[0] if c.kind == "disc" else INACTIVE)
            elif c.kind == "cat":
                u[i] = cast(Choice, p).index(config[c.name])
            else:
                u[i] = p.to_unit(p.check(config[c.name]))
        return u

    def to_config(self, u: np.ndarray) -> dict[str, Any]:
        """The config at a u point: inactive parameters left out."""
        out: dict[str, Any] = {}
        for name, p in self.space.items():
            if name not in self.index:
                out[name] = p.from_unit(0.5)
                continue
            i = self.index[name]
            if self.coords[i].kind == "cat":
                out[name] = cast(Choice, p).values[int(round(u[i]))]
            else:
                out[name] = p.from_unit(float(u[i]))
        return self.space.prune(out) if self.space.conditional else out

    def key(self, config: dict[str, Any]) -> tuple[float, ...]:
        """A hashable identity of a config on the searched parameters (for duplicate checks)."""
        return tuple(round(float(x), 9) for x in self.to_u(config))

    def from_unit_cube(self, z: np.ndarray) -> np.ndarray:
        """Maps points of [0, 1]^dim (rows) to valid u points: grids snapped, choices binned."""
        u = np.array(z, dtype=float, copy=True)
        for i, c in enumerate(self.coords):
            if c.kind == "cat":
                u[:, i] = np.minimum(c.n - 1, np.floor(z[:, i] * c.n))
            elif c.kind == "disc":
                u[:, i] = self.snap(i, z[:, i])
        return u

    def snap(self, i: int, x: np.ndarray) -> np.ndarray:
        grid = self.coords[i].grid
        if len(grid) == 1:
            return np.full_like(x, grid[0])
        j = np.clip(np.searchsorted(grid, x), 1, len(grid) - 1)
        left, right = grid[j - 1], grid[j]
        return np.where(np.abs(x - left) <= np.abs(right - x), left, right)

    # ---- features -----------------------------------------------------------------------------------
    def features(self, u: torch.Tensor) -> torch.Tensor:
        """GP features of u points (..., dim): numeric coordinates as they are, then the one-hots; an
        inactive coordinate's numeric feature at INACTIVE, its one-hot columns at zero."""
        import torch

        mask = self._mask(u) if self.conditional else None
        parts = []
        if self.num_idx:
            num = u[..., self.num_idx]
            if mask is not None:
                num = torch.where(mask[..., self.num_idx], num, torch.full_like(num, INACTIVE))
            parts.append(num)
        for i in self.cat_idx:
            oh = torch.nn.functional.one_hot(u[..., i].round().long(), self.coords[i].n).to(u.dtype)
            if mask is not None:
                oh = oh * mask[..., i : i + 1].to(u.dtype)
            parts.append(oh)
        return torch.cat(parts, dim=-1)

    def _mask(self, u: torch.Tensor) -> torch.Tensor:
        import torch

        idx = u.detach().round().long()
        on = torch.ones(u.shape, dtype=torch.bool)
        for i in self._topo():
            c = self.coords[i]
            if c.always_off:
                on[..., i] = False
                continue
            for j, allowed in c.conds:
                ok = torch.isin(idx[..., j], torch.from_numpy(allowed))
                on[..., i] = on[..., i] & on[..., j] & ok
        return on
