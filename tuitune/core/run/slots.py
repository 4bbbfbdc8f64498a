"""Provides the workers' places: a Slot (index, device) each, planned from the devices and workers per device."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from tuitune.core.errors import TuituneError
from tuitune.core.run.placement import check_workers


class WorkerError(TuituneError):
    """Workers cannot be started as asked (a bad device, too many workers, an objective they cannot load)."""


@dataclass(frozen=True)
class Slot:
    """One worker's place: its index and its device (``cuda:1``, ``cpu``; None: not pinned)."""

    index: int
    device: str | None = None

    @property
    def label(self) -> str:
        return self.device or "auto"


def plan_slots(devices: Sequence[str] | None, workers: int) -> list[Slot]:
    """``workers`` slots per device (the devices already checked); ``devices`` None: one unpinned device."""
    if not check_workers(workers):
        raise WorkerError(f"workers must be a whole number >= 1, got {workers!r}; use workers=0 to run in this process")
    devs: list[str | None] = list(devices) if devices else [None]
    return [Slot(i * workers + k, d) for i, d in enumerate(devs) for k in range(workers)]


def threads_per_worker(n_slots: int) -> int:
    """Each worker's share of this machine's cores, one core left to the coordinator (at least one).

    Measured on 2 cores with other work running: a worker with 2 intra-op threads trained a 3x320 MLP
    10-20x slower than with 1 (its threads' barriers wait on a core the coordinator or another job holds);
    with 1 thread it trained as fast as the same trial in-process.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, (cores - 1) // max(1, n_slots))
