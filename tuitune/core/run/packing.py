"""Provides ``--workers auto``: how many workers one device holds, measured, and the coordinator's bookkeeping.

A device starts with one worker. Each worker measures its trial after the trial's first report
(``measure``, in the worker: its peak memory, the device's free and total memory, how busy the device
is) and sends the figures with that report (``Report.probe``). Once every worker of a device has
measured, ``decide`` (a pure function) says how many workers the device can hold; the Runner starts
the difference. An out-of-memory error in a trial shrinks the device's packing by one worker (``Packer.shrink``),
or, where the device held one worker and the trial trained in a fused array, its arrays by one member
(``Packer.shrink_array``), and the trial runs again; a device that shrank never grows again in that run.

The rules:

- **memory**: another worker fits while the device's free memory, less a margin (``MARGIN`` of its total),
  holds the peak of the hungriest worker measured. On a GPU the peak is torch's ``max_memory_reserved``
  plus ``CUDA_CONTEXT_MB`` for the worker's CUDA context; on the CPU it is the worker's resident memory
  (RSS, the libraries counted in full: an over-estimate) against the machine's available RAM.
- **utilisation**: on a GPU, the device's utilisation (NVML, else ``torch.cuda.utilization``) split evenly
  among its workers, up to ``GPU_BUSY``; unknown: one more worker per measurement (memory still rules).
  On the CPU, the cores a worker keeps busy (its CPU time over its wall time) against the cores free of
  other work: the cores this process may use less the machine's 1-minute load average not due to this
  session (its workers, and half a core for the coordinator). A worker that waits on its data leaves room
  for another; on a machine other jobs keep busy another worker only splits the same cores (measured:
  ``benchmarks/results/workers-auto-cpu.md``), so it is not added.
- **cap**: ``GPU_CAP`` workers per GPU; on the CPU one per core (each then trains with one thread).

Nothing here imports torch: ``measure`` reads it from ``sys.modules`` in a worker that already has it.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuitune.core import events as ev
    from tuitune.core.records import TrialRecord, TrialState
    from tuitune.core.run.protocol import Failure, Pool
    from tuitune.core.store.store import SessionFiles

MARGIN = 0.15  # the part of a device's memory never planned for (fragmentation, a larger batch's peak)
GPU_BUSY = 0.9  # a GPU this busy is full: another worker only waits for it
GPU_CAP = 8  # workers per GPU under --workers auto
CUDA_CONTEXT_MB = 500.0  # a worker's CUDA context and kernels, not in torch's allocator figures
COORDINATOR_CORES = 0.5  # of the CPU's load average: the coordinator's, and the 1-minute average's lag


def cores() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cap_for(device: str | None) -> int:
    """The most workers ``--workers auto`` puts on ``device`` (None: not pinned, counted as the CPU)."""
    from tuitune.core.run.placement import MAX_WORKERS

    return min(MAX_WORKERS, GPU_CAP if device and device.startswith(("cuda", "mps")) else cores())


# ---------------------------------------------------------------------------- the worker's side


@dataclass(frozen=True)
class Probe:
    """One worker's figures, measured after its trial's first report.

    ``peak_mb``: the worker's own peak; ``free_mb``/``total_mb``: the device's memory now; ``busy``: on a GPU
    the device's utilisation (0..1, None: unknown), on the CPU the cores this worker kept busy; ``cores``:
    the cores this machine gives (CPU only).
    """

    kind: str  # "cuda" or "cpu"
    peak_mb: float
    free_mb: float
    total_mb: float
    busy: float | None = None
    cores: int = 1
    load: float | None = None  # the machine's 1-minute load average (CPU only)

    @classmethod
    def of(cls, d: Mapping[str, Any]) -> Probe | None:
        """The probe a report carried (a dict, as it travels), or None when it is not one."""
        try:
            return cls(str(d["kind"]), float(d["peak_mb"]), float(d["free_mb"]), float(d["total_mb"]),
                       None if d.get("busy") is None else float(d["busy"]), int(d.get("cores") or 1),
                       None if d.get("load") is None else float(d["load"]))
        except (KeyError, TypeError, ValueError):
            return None


class Meter:
    """A worker's measurements: ``start()`` when a job starts, ``probe()`` after its first report.

    ``custom``: an objective's own ``measure_device()`` (a device tuitune does not know, or a test's fake),
    used instead of the figures read here.
    """

    def __init__(self, custom: Callable[[], Mapping[str, Any]] | None = None) -> None:
        self.custom = custom
        self.wall0, self.cpu0 = time.monotonic(), time.process_time()

    def start(self) -> None:
        self.wall0, self.cpu0 = time.monotonic(), time.process_time()
        cuda = _cuda()
        if cuda is not None:
            try:
                cuda.reset_peak_memory_stats()
            except Exception:  # noqa: BLE001 - a figure less, never an error
                pass

    def probe(self) -> dict[str, Any] | None:
        """The figures as a plain dict (they travel in a message), or None when nothing could be read."""
        try:
            if self.custom is not None:
                return dict(self.custom())
            cuda = _cuda()
            if cuda is not None:
                free, total = cuda.mem_get_info()
                peak = cuda.max_memory_reserved() / 2**20 + CUDA_CONTEXT_MB
                return {"kind": "cuda", "peak_mb": peak, "free_mb": free / 2**20, "total_mb": total / 2**20,
                        "busy": gpu_busy(cuda)}
            wall = max(1e-6, time.monotonic() - self.wall0)
            rss, (avail, total) = _rss_mb(), _meminfo_mb()
            if rss is None or avail is None:
                return None
            return {"kind": "cpu", "peak_mb": rss, "free_mb": avail, "total_mb": total, "cores": cores(),
                    "busy": (time.process_time() - self.cpu0) / wall,
                    "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
        except Exception:  # noqa: BLE001 - a worker that cannot measure is simply not packed further
            return None


def _cuda() -> Any:
    """torch.cuda when this process has initialised it, else None (never imports torch)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        return torch.cuda if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    except Exception:  # noqa: BLE001
        return None


def gpu_busy(cuda: Any) -> float | None:
    """The utilisation of this worker's GPU (0..1): NVML when ``nvidia-ml-py`` is installed, else
    ``torch.cuda.utilization`` (which needs it too on most builds), else None. Waits for a GPU to be tested."""
    from tuitune.core.run.devices import gpu_stats

    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
    stats = gpu_stats()
    if visible.isdigit() and int(visible) in stats:
        return stats[int(visible)][0] / 100
    try:
        return float(cuda.utilization()) / 100
    except Exception:  # noqa: BLE001 - no NVML under torch either
        return None


def _rss_mb() -> float | None:
    from tuitune.core.run.devices import process_rss_mb

    return process_rss_mb(os.getpid())


def _meminfo_mb() -> tuple[float | None, float]:
    """(available, total) RAM in MiB from /proc/meminfo; (None, 0) where there is none."""
    out: dict[str, float] = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("MemAvailable", "MemTotal"):
                    out[key] = int(rest.split()[0]) / 1024
    except (OSError, ValueError):
        return None, 0.0
    return out.get("MemAvailable"), out.get("MemTotal", 0.0)


# ---------------------------------------------------------------------------- the decision


@dataclass(frozen=True)
class Decision:
    """How many workers a device should hold, and why (one line, with the figures)."""

    workers: int
    reason: str


def _mb(x: float) -> str:
    return f"{x / 1024:.1f} GiB" if x >= 1024 else f"{x:.0f} MiB"


def decide(probes: list[Probe], current: int, cap: int, margin: float = MARGIN) -> Decision:
    """How many workers a device holds, from its workers' probes (``current``: how many it holds now, all of
    them measured). Never fewer than ``current`` (only an out-of-memory error shrinks a packing)."""
    if not probes:
        return Decision(current, "not measured")
    latest = probes[-1]
    peak = max(p.peak_mb for p in probes)
    room = latest.free_mb - margin * latest.total_mb
    by_memory = current + max(0, math.floor(room / peak)) if peak > 0 else cap
    if latest.kind == "cpu":
        per = max(0.05, sum(p.busy or 0.0 for p in probes) / len(probes))
        other = max(0.0, (latest.load or 0.0) - current * per - COORDINATOR_CORES)
        free = max(per, latest.cores - other)
        by_busy = max(1, math.floor(free / per + 1e-9))
        busy = (f"a worker keeps {per:.2f} of {latest.cores} cores busy, other work {other:.2f} "
                f"(load average {latest.load or 0.0:.2f})")
    elif latest.busy is None:
        by_busy = current + 1
        busy = "utilisation unknown (one more at a time)"
    else:
        per = max(0.01, latest.busy / current)
        by_busy = max(1, math.floor(GPU_BUSY / per + 1e-9))
        busy = f"the device is {latest.busy:.0%} busy with {current}"
    n = max(current, min(by_memory, by_busy, cap))
    reason = (f"{current} worker{'s' * (current != 1)} peak at {_mb(peak)} each; {_mb(latest.free_mb)} of "
              f"{_mb(latest.total_mb)} free, {margin:.0%} kept; {busy} -> {n} (memory allows {by_memory}, "
              f"utilisation {by_busy}, cap {cap})")
    return Decision(n, reason)


# ---------------------------------------------------------------------------- the coordinator's bookkeeping


@dataclass
class _Device:
    cap: int
    target: int = 1
    probes: dict[int, Probe] = field(default_factory=dict)  # by worker slot index
    shrunk: bool = False
    members: int | None = None  # the most trials one array may hold there, once an array ran out of memory


class Packer:
    """The coordinator's view of ``--workers auto``: per device, its target count, cap and workers' probes."""

    def __init__(self, margin: float = MARGIN, cap: Callable[[str | None], int] = cap_for) -> None:
        self.margin = margin
        self._cap = cap
        self.devices: dict[str | None, _Device] = {}

    def _dev(self, device: str | None) -> _Device:
        if device not in self.devices:
            self.devices[device] = _Device(cap=max(1, self._cap(device)))
        return self.devices[device]

    def target(self, device: str | None) -> int:
        return self._dev(device).target

    def measured(self, device: str | None, slot: int, probe: Mapping[str, Any], workers: list[int]) -> Decision | None:
        """A worker's probe; once every worker of the device (``workers``: their slots) has measured, the
        decision (more workers than ``workers``: grow; None: not every worker measured yet, or it shrank)."""
        p = Probe.of(probe)
        d = self._dev(device)
        if p is None or d.shrunk:
            return None
        d.probes[slot] = p
        d.probes = {k: v for k, v in d.probes.items() if k in workers}
        if len(d.probes) < len(workers) or len(workers) < d.target:
            return None
        decision = decide(list(d.probes.values()), len(workers), d.cap, self.margin)
        d.target = max(d.target, decision.workers)
        return decision

    def shrink(self, device: str | None, was: int) -> int | None:
        """A trial ran out of memory while its device held ``was`` workers: the device's new target (one
        fewer than ``was``, or lower if it shrank since), or None when it held one (nothing to shrink)."""
        d = self._dev(device)
        if was <= 1:
            return None
        d.target = max(1, min(d.target, was - 1))
        d.cap, d.shrunk = d.target, True
        return d.target

    def members(self, device: str | None) -> int | None:
        """The most trials one array may hold on ``device`` (None: what ``--fuse`` says)."""
        return self._dev(device).members

    def shrink_array(self, device: str | None, was: int) -> int | None:
        """An array of ``was`` trials ran out of memory on a device that held one worker: arrays there hold one
        trial fewer from now (or fewer if they shrank since); None when it was one trial (nothing to shrink)."""
        d = self._dev(device)
        if was <= 1:
            return None
        d.members = max(1, min(d.members or was, was - 1))
        d.shrunk = True
        return d.members


class Packing:
    """The Runner's side of ``--workers auto`` (a mixin of ``runner.Runner``; the attributes below are the Runner's):
    workers added from measurements, a device's packing shrunk by an out-of-memory error, each decision said."""

    pool: Pool
    files: SessionFiles
    session: str
    _spent: str | None
    _rerun: list[TrialRecord]
    packer: Packer | None = None  # set by Placement.runner under --workers auto
    _said_stay: set[str | None] | None = None  # devices whose packing was said to stay as it is

    @property
    def stopping(self) -> bool:  # pragma: no cover - the Runner's
        raise NotImplementedError

    def _emit(self, event: ev.Event) -> None:  # pragma: no cover - the Runner's
        raise NotImplementedError

    def _finish_record(
        self, number: int, state: TrialState, value: float | None, reason: str | None, trace: str | None, info: dict
    ) -> TrialRecord:  # pragma: no cover - the Runner's (finish.py)
        raise NotImplementedError

    def _on_device(self, device: str | None) -> list[Any]:
        return [w for w in self.pool.workers.values() if w.slot.device == device]

    def _free_packed(self) -> list[Any]:
        """The free workers that may take a job; idle ones over their device's packing retire instead."""
        free = [w for w in self.pool.free() if not self._over_packed(w)]
        for w in free if self.packer is not None else ():
            w.packed = len(self._on_device(w.slot.device))  # what its next job starts beside
        return free

    def _array_limit(self, w: Any, limit: int) -> int:
        """``--fuse``'s array size for ``w``, lowered where an array ran out of memory on its device."""
        members = self.packer.members(w.slot.device) if self.packer is not None else None
        return min(limit, members or limit)

    def _pack(self, w: Any, probe: dict[str, Any] | None) -> None:
        """A worker's figures (its trial's first report): the device grows when every worker there measured
        and memory and utilisation leave room (``decide``), unless the run is ending."""
        if self.packer is None or probe is None:
            return
        device = w.slot.device
        there = self._on_device(device)
        decision = self.packer.measured(device, w.slot.index, probe, [x.slot.index for x in there])
        if decision is None or self.stopping or self._spent is not None:
            return
        if decision.workers <= len(there):  # said once a device: why it stays as it is
            said = self._said_stay = self._said_stay if self._said_stay is not None else set()
            if device not in said:
                said.add(device)
                self._say_packing(f"{w.slot.label}: {decision.reason}; stays at {len(there)}")
            return
        for _ in range(decision.workers - len(there)):
            self.pool.add(device)
        for x in there:  # an out-of-memory error from now on happened beside the new workers
            x.packed = max(getattr(x, "packed", 0), decision.workers)
        self._say_packing(f"{w.slot.label}: {decision.reason}; started {decision.workers - len(there)} more")

    def _failed_or_requeued(self, w: Any, number: int, err: Failure, reason: str, info: dict) -> TrialRecord:
        """A trial of ``w`` that ended with ``err``: failed with ``reason``, or, out of memory under
        ``--workers auto`` (``_unpack``), interrupted and re-queued to run first, from its checkpoint."""
        from tuitune.core.records import TrialState

        why = self._unpack(w, number) if err.oom and self.packer is not None else None
        if why is None:
            return self._finish_record(number, TrialState.FAILED, None, reason, err.trace, info)
        rec = self._finish_record(number, TrialState.INTERRUPTED, None, why, err.trace, info)
        self._rerun.append(rec)
        return rec

    def _unpack(self, w: Any, number: int) -> str | None:
        """Trial ``number`` of ``w`` ran out of memory: its device holds one worker fewer (with one worker
        there: its arrays one member fewer); the reason it is re-queued with, or None when it trained alone
        on a device of one worker (it fails, as with a fixed count)."""
        assert self.packer is not None
        device, packed, members = w.slot.device, getattr(w, "packed", 1), getattr(w, "members", 1)
        target = self.packer.shrink(device, packed)
        if target is None:
            size = self.packer.shrink_array(device, members)
            if size is None:
                return None
            self._say_packing(
                f"{w.slot.label}: trial {number} ran out of memory in an array of {members} with one worker "
                f"there; arrays of at most {size} from now (it runs again from its checkpoint)"
            )
            return f"out of memory in an array of {members} on {w.slot.label}; re-queued in arrays of {size}"
        for x in self._on_device(device):  # idle ones over the count retire now (w was replaced if poisoned)
            self._over_packed(x)
        self._say_packing(
            f"{w.slot.label}: trial {number} ran out of memory with {packed} workers there; packing "
            f"{target} from now (it runs again from its checkpoint)"
        )
        return f"out of memory with {packed} workers on {w.slot.label}; re-queued with {target}"

    def _over_packed(self, w: Any) -> bool:
        """Retires ``w`` when it is idle and its device holds more workers than its packing now allows."""
        current: Any = self.pool.workers.get(w.slot.index)  # w was replaced if its job poisoned it
        if self.packer is None or w.trials or current is not w:
            return False
        if len(self._on_device(w.slot.device)) <= self.packer.target(w.slot.device):
            return False
        self.pool.retire(w)
        return True

    def _say_packing(self, text: str) -> None:
        """A packing decision with its figures: the session's log (``logs/session.log``), the log, a notice."""
        import logging

        from tuitune.core import events

        self.files.note(f"packing {text}")
        logging.getLogger(__name__).info("session %s: packing %s", self.session, text)
        self._emit(events.Notice(self.session, text=f"packing {text}"))
