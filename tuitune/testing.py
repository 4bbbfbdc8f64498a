"""Provides FakeTrial: the objective's Trial contract in memory, to unit-test an objective without a
database or a Runner (as Optuna's ``FixedTrial`` does)::

    from tuitune.testing import FakeTrial

    def test_my_objective_reports_every_epoch():
        trial = FakeTrial(config={"lr": 0.01, "units": 64}, budget=3)
        my_objective(trial.config, trial)
        assert [row["epoch"] for row in trial.rows] == [1, 2, 3]

Checkpoints go through ``torch.save`` into bytes and come back with ``torch.load(weights_only=True)``,
as the engine stores them, so a test proves a checkpoint holds only what that loader accepts; a
``FakeTrial(saved=trial.saved, ...)`` then runs the objective as a resume would.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from typing import Any


class FakeTrial:
    """``number``, ``config``, ``budget``, ``epochs()``, ``report()``, ``checkpoint()``, ``restore()``.

    Args:
        number, config, budget: as the engine's Trial.
        saved: checkpoint bytes from an earlier run of the same trial (a resume or a promotion).
        stop_after: ``epochs()`` ends after this epoch, as when the user stops a trial.

    Attributes:
        rows: each ``report()`` as ``{"epoch": n, <metric>: value, ...}``, in order.
        saved: the last checkpoint's bytes (None before the first); ``checkpoints``: how many were written.
    """

    def __init__(
        self,
        number: int = 0,
        config: dict[str, Any] | None = None,
        budget: int = 1,
        *,
        saved: bytes | None = None,
        stop_after: int | None = None,
    ) -> None:
        self.number = number
        self.config = dict(config or {})
        self.budget = budget
        self.rows: list[dict[str, Any]] = []
        self.saved = saved
        self.saved_epoch = 0  # the epoch of the last checkpoint (written, or restored from ``saved``)
        self.stop_after = stop_after
        self._start = 0  # the epoch training resumes after: the restored checkpoint's
        self._epoch = 0
        self.checkpoints = 0
        if saved is not None:
            self.saved_epoch = int(self._load(saved)["epoch"])

    @staticmethod
    def _load(b: bytes) -> dict[str, Any]:
        import torch

        buf = io.BytesIO(b)
        return torch.load(buf, weights_only=True)

    def restore(self) -> dict[str, Any] | None:
        """The last checkpoint's state, or None; after it, ``epochs()`` continues from the next epoch."""
        if self.saved is None:
            return None
        blob = self._load(self.saved)
        self._start = int(blob["epoch"])
        return blob["state"]

    def epochs(self) -> Iterator[int]:
        for e in range(self._start + 1, self.budget + 1):
            if self.stop_after is not None and e > self.stop_after:
                return
            self._epoch = e
            yield e

    def report(self, **metrics: Any) -> None:
        for k, v in metrics.items():
            if not math.isfinite(float(v)):
                raise ValueError(f"metric {k} is {v}")
        self.rows.append({"epoch": self._epoch, **metrics})

    def checkpoint(self, state: dict[str, Any]) -> None:
        """Keeps ``state`` for the current epoch, in the engine's format (its epoch beside it)."""
        import torch

        buf = io.BytesIO()
        torch.save({"epoch": self._epoch, "state": state}, buf)
        self.saved = buf.getvalue()
        self.saved_epoch = self._epoch
        self.checkpoints += 1
        self._load(self.saved)  # proves weights_only loading accepts it
