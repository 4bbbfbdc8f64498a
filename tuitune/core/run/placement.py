"""Provides ``Placement``: where a session's trials run and under what limits, parsed and checked once.

The command line, ``tt.tune``, presets (their ``backend``) and the new-session form all make one; it is
stored with the session as one value (``info["placement"]``; sessions stored before it kept the same
facts under separate keys, still read), turned back into flags for ``--detach``, and it is the one thing
that builds the pool a Runner drives.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tuitune.core.errors import ObjectiveError

BACKENDS = ("local", "ray")  # where worker slots live: processes on this machine, or Ray actors
DEFAULT_MAX_FAILURES = 3
MAX_WORKERS = 64  # per device; more is a typo, not a plan
MAX_FUSE = 1024  # trials in one array; more is a typo


_LIMITS = ("max_failures", "trial_timeout")  # one run's, not stored with the session


def _flag(name: str, cli: bool) -> str:
    """How an error names an option: ``--gpus-per-trial`` on the command line, ``gpus_per_trial`` in Python."""
    return "--" + name.replace("_", "-") if cli else name


def _error(message: str) -> Exception:
    from tuitune.core.run.workers import WorkerError

    return WorkerError(message)


@dataclass(frozen=True)
class Placement:
    """Where trials run, checked.

    Attributes:
        backend: ``local`` (worker processes here) or ``ray`` (one Ray actor per worker).
        devices: the devices workers are pinned to (``("cuda:0", "cuda:1")``); None: not pinned.
        workers: workers per device; 0: in the coordinator's own thread; None: one when the objective can
            be sent to a process, else in this thread (``tt.tune``'s default); ``"auto"``: one per device to
            start, more while the measured memory and utilisation allow, fewer after an out-of-memory
            error (``packing.py``).
        ray_address: ``HOST:PORT`` or ``auto``; None: a local Ray for the run.
        gpus_per_trial: each Ray actor's GPUs; None: 1 when the cluster has GPUs, else 0.
        max_failures: the run stops after this many trials in a row failed.
        trial_timeout: seconds one trial may run; None: no limit.
        fuse: trials one worker may train at once as one array (1: off), or ``"auto"``: each worker
            measures a training step on its device when it starts and says how many (``Ready.facts["fuse"]``).
    """

    backend: str = "local"
    devices: tuple[str, ...] | None = None
    workers: int | str | None = 1
    ray_address: str | None = None
    gpus_per_trial: float | None = None
    max_failures: int = DEFAULT_MAX_FAILURES
    trial_timeout: float | None = None
    fuse: int | str = 1

    # ---- making one ------------------------------------------------------------------------------
    @classmethod
    def parse(
        cls,
        *,
        devices: str | Sequence[str] | None = None,
        workers: int | str | None = None,
        backend: str | None = None,
        ray_address: str | None = None,
        gpus_per_trial: float | None = None,
        max_failures: int | None = None,
        trial_timeout: float | None = None,
        fuse: int | str | None = None,
        devices_flag: str | None = None,
        stored: Placement | None = None,
        best_device: bool = False,
        cli: bool = False,
    ) -> Placement:
        """The placement asked for, every value checked (one clear line for the first bad one).

        A value not given (None) is ``stored``'s (a resumed session's), else the default; a stored Ray
        address and GPU share are kept only while the backend stays ``ray``. The limits (``max_failures``,
        ``trial_timeout``) are one run's: never taken from ``stored``. ``best_device``: no devices
        given or stored means the best device here (a preset's objective needs one), not "unpinned".
        ``cli`` words the errors with the command line's flags; ``devices_flag`` names the one the devices
        came with (``--device``; default ``--devices``), which a missing device's hint then uses.
        """
        base = stored or cls(workers=None if not best_device else 1)
        backend = backend or base.backend
        if backend not in BACKENDS:
            raise _error(f"{_flag('backend', cli)} {backend!r} is unknown; use {' or '.join(repr(b) for b in BACKENDS)}")
        if backend == "ray" and base.backend == "ray":  # the stored cluster, unless another is given
            ray_address = ray_address if ray_address is not None else base.ray_address
            gpus_per_trial = gpus_per_trial if gpus_per_trial is not None else base.gpus_per_trial
        workers = check_workers(workers if workers is not None else base.workers, cli)
        if backend == "ray":
            from tuitune.core.run.ray_backend import check_address, check_gpus

            if workers == 0:
                raise _error(f"{_flag('backend', cli)} ray runs trials in Ray actors: {_flag('workers', cli)} 0"
                             f"{' (--in-process)' if cli else ''} is for the local backend")
            if workers == "auto":
                raise _error(f"{_flag('workers', cli)} auto packs this machine's devices; with "
                             f"{_flag('backend', cli)} ray give the number of actors ({_flag('workers', cli)} 4)")
            ray_address, gpus_per_trial = check_address(ray_address), check_gpus(gpus_per_trial)
        elif ray_address is not None or gpus_per_trial is not None:
            raise _error(f"{_flag('ray_address', cli)} and {_flag('gpus_per_trial', cli)} are options of "
                         f"{_flag('backend', cli)} ray")
        spec = devices if devices is not None else base.devices
        devs = parse_devices(spec, best=best_device, cli=cli, flag=devices_flag if devices is not None else None)
        failures = max_failures if max_failures is not None else DEFAULT_MAX_FAILURES
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
            raise _error(f"{_flag('max_failures', cli)} {failures!r}: give a whole number >= 1")
        timeout = trial_timeout
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
            raise _error(f"{_flag('trial_timeout', cli)} {timeout!r}: give seconds > 0")
        n = check_fuse(fuse if fuse is not None else base.fuse, cli)
        if n != 1 and workers == 0:
            raise _error(f"{_flag('fuse', cli)} {n}: arrays of trials train in workers; give {_flag('workers', cli)} 1 or more")
        return cls(backend, None if devs is None else tuple(devs), workers, ray_address, gpus_per_trial, failures,
                   None if timeout is None else float(timeout), n)

    # ---- the session's copy ----------------------------------------------------------------------
    def to_info(self) -> dict[str, Any]:
        """The one value stored in the session's info, under ``placement`` (without the run's limits)."""
        d = asdict(self)
        d["devices"] = list(self.devices) if self.devices is not None else None
        for limit in _LIMITS:
            d.pop(limit)
        return {"placement": d}

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> Placement:
        """The stored placement (unchecked: the machine may have changed); older sessions' separate keys too."""
        d = info.get("placement")
        if not isinstance(d, Mapping):  # before the placement was one value
            d = {k: info.get(k) for k in ("backend", "workers", "ray_address", "gpus_per_trial")}
            d["devices"] = info.get("devices") or ([info["device"]] if info.get("device") else None)
        known = {f: d[f] for f in cls.__dataclass_fields__ if d.get(f) is not None and f not in _LIMITS}
        if known.get("devices") is not None:
            known["devices"] = tuple(known["devices"])
        known.setdefault("backend", "local")
        return cls(**known)

    # ---- what it does ----------------------------------------------------------------------------
    @property
    def in_process(self) -> bool:
        return self.backend == "local" and self.workers == 0

    @property
    def auto(self) -> bool:
        """``--workers auto``: each device starts with one worker and is packed from measurements."""
        return self.workers == "auto"

    @property
    def per_device(self) -> int:
        """Workers each device starts with (``auto``: one)."""
        return self.workers if isinstance(self.workers, int) and self.workers > 0 else 1

    @property
    def parallel(self) -> int:
        """How many workers run trials at once (at least one; ``auto``: as many as it starts with)."""
        if self.backend == "ray":
            return self.per_device
        return max(1, self.per_device * max(1, len(self.devices or ())))

    @property
    def shows_where(self) -> bool:
        """Whether a table of the session's trials says where each ran: Ray, several workers, or arrays."""
        return self.backend == "ray" or self.parallel > 1 or self.fuse != 1 or self.auto

    def argv(self) -> list[str]:
        """The command line flags that ask for this placement (``--detach`` starts ``resume`` with them)."""
        out = ["--devices", ",".join(self.devices)] if self.devices else []
        out += ["--workers", str(self.workers if self.workers is not None else 1),
                "--max-failures", str(self.max_failures), "--backend", self.backend]
        if self.ray_address is not None:
            out += ["--ray-address", self.ray_address]
        if self.gpus_per_trial is not None:
            out += ["--gpus-per-trial", str(self.gpus_per_trial)]
        if self.trial_timeout is not None:
            out += ["--trial-timeout", str(self.trial_timeout)]
        out += ["--fuse", "off" if self.fuse == 1 else str(self.fuse)]
        return out

    def where(self, sendable: bool = True) -> str:
        """Where the trials run, in words: '2 workers on cpu', 'in this process on cuda:0'."""
        devs = ", ".join(self.devices or ["the best device"])
        if self.backend == "ray":
            n = self.workers or 1
            at = f"the Ray cluster at {self.ray_address}" if self.ray_address else "a local Ray instance (127.0.0.1)"
            return f"{n} Ray actor{'s' * (n != 1)} on {at}"
        if self.workers == 0 or not sendable:
            return f"in this process on {devs}"
        if self.auto:
            return f"workers packed on {devs} (auto: 1 per device to start)"
        n = self.parallel
        return f"{n} worker{'s' * (n != 1)} on {devs}"

    def runner(
        self, store: Any, session: str, objective: Callable[..., Any], strategy: Any, *, ref: Any = None,
        fuse_key: Callable[[dict], Any] | None = None, started: Any = None, **kw: Any,
    ) -> Any:
        """The Runner of a session placed here: its pool, its limits, its arrays (``fuse_key`` None: the
        objective's own ``fuse_key`` method, if it has one); ``kw`` goes to the Runner (listeners, ...).
        ``started``: a pool already started for it (warm workers, ``launch.WarmPool``), used instead of a new one."""
        from tuitune.core.run.runner import Runner
        from tuitune.core.store.store import SessionFiles

        pool = started if started is not None else self.pool(objective, SessionFiles(store.path, session).logs, ref=ref)
        packer = kw.pop("packer", None)  # --workers auto's (a test's own, with its cap)
        runner = Runner(
            store, session, objective, strategy, max_failures=self.max_failures, trial_timeout=self.trial_timeout,
            pool=pool, fuse=self.fuse, fuse_key=fuse_key or getattr(objective, "fuse_key", None), **kw,
        )
        if self.auto and pool is not None:
            from tuitune.core.run.packing import Packer

            runner.packer = packer or Packer()
        return runner

    def pool(self, objective: Callable[..., Any], log_dir: Path, ref: Any = None) -> Any:
        """The pool the trials run in (``protocol.Pool``), or None: in the coordinator's thread.

        ``ref`` says how a worker loads the objective (a preset's factory); None: the objective itself,
        by reference or by value (``objective_ref``); one that captures what cannot be pickled runs in this
        thread with a warning when ``workers`` is None, and is an error when workers were asked for.
        """
        from tuitune.core.run.workers import WorkerPool, objective_ref, plan_slots, unsendable_reason

        if self.in_process:
            return None
        ref = ref if ref is not None else objective_ref(objective)
        what = getattr(objective, "__qualname__", None) or repr(objective)
        fix = "create it inside the objective (or in a function the objective calls)"
        if self.backend == "ray":
            from tuitune.core.run.ray_backend import RayPool

            if ref is None:
                raise ObjectiveError(
                    f"objective {what} cannot be sent to a Ray actor: {unsendable_reason(objective)}; {fix}"
                )
            return RayPool(ref, plan_slots(None, self.per_device), log_dir, address=self.ray_address,
                           gpus_per_trial=self.gpus_per_trial)
        if ref is None:
            why = unsendable_reason(objective)
            if self.fuse != 1:
                raise ObjectiveError(
                    f"objective {what} cannot be sent to a worker process: {why}, and arrays of trials "
                    f"(fuse={self.fuse}) train in workers; {fix}"
                )
            if self.workers is not None:
                raise ObjectiveError(
                    f"objective {what} cannot be sent to a worker process: {why}; {fix}, or pass workers=0 to run it "
                    "in this process"
                )
            import warnings

            warnings.warn(
                f"objective {what} runs in this process, not in a worker: {why} ({fix} for worker processes; "
                "workers=0 silences this)",
                stacklevel=4,
            )
            return None
        devices = list(self.devices) if self.devices else None
        if self.auto:  # each worker a full packing's share of the cores (one each on the CPU)
            from tuitune.core.run.packing import cap_for
            from tuitune.core.run.slots import threads_per_worker

            each: list[str | None] = list(devices) if devices else [None]
            full = sum(cap_for(d) for d in each)
            return WorkerPool(ref, plan_slots(devices, 1), log_dir, threads=threads_per_worker(full), measure=True)
        return WorkerPool(ref, plan_slots(devices, self.per_device), log_dir)


def check_fuse(value: Any, cli: bool = False) -> int | str:
    """An array size checked: a whole number 1..MAX_FUSE (1: off), ``"auto"``, or ``"off"`` (-> 1)."""
    n = value
    if isinstance(n, str):
        word = n.strip().lower()
        if word == "auto":
            return "auto"
        n = 1 if word == "off" else int(word) if word.isdigit() else n
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_FUSE:
        raise _error(f"{_flag('fuse', cli)} {value!r}: give a whole number from 1 (off) to {MAX_FUSE}, auto or off")
    return n


def check_workers(workers: Any, cli: bool = False) -> int | str | None:
    """``workers`` per device checked: a whole number from 0 to MAX_WORKERS, or ``"auto"`` (None stays None).
    The one place the value is parsed: the command line and TOML hand it over as they got it (``"2"``, ``"auto"``)."""
    if workers is None:
        return None
    value = workers
    if isinstance(workers, str):
        word = workers.strip().lower()
        if word == "auto":
            return "auto"
        workers = int(word) if word.isdigit() else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise _error(f"{_flag('workers', cli)} {value!r}: give a whole number >= 1, auto (packed from measurements), "
                     "or 0 to train in this process")
    if workers > MAX_WORKERS:
        raise _error(
            f"{workers} workers per device is more than tuitune allows ({MAX_WORKERS}); "
            "use fewer (one or two per GPU usually fills it)"
        )
    return workers


def parse_devices(
    spec: str | Sequence[str] | None, *, best: bool = False, cli: bool = False, flag: str | None = None
) -> list[str] | None:
    """Device names checked (``cpu``, ``cuda``, ``cuda:N``, ``mps``, ``all``: every visible GPU), torch imported
    only when a GPU is named. None: the best device here when ``best``, else None (not pinned)."""
    name = flag or _flag("devices", cli)
    if spec is None:
        return best_devices() if best else None
    items = [x.strip() for x in (spec.split(",") if isinstance(spec, str) else spec) if x and str(x).strip()]
    if not items:
        raise _error(f"{name} is empty; give cpu, cuda:0,cuda:1 or all")
    bad = [x for x in items if not re.fullmatch(r"cpu|mps|all|cuda(:\d+)?", x)]
    if bad:
        raise _error(f"device {bad[0]!r} is not a device name (cpu, cuda, cuda:N, mps or all); {use_hint(name, cli)}")
    if "all" in items and len(items) > 1:
        raise _error(f"{name}: 'all' stands alone: every visible GPU")
    if any(x != "cpu" for x in items):
        items = _check_with_torch(items, name, cli)
    dup = sorted({d for d in items if items.count(d) > 1})
    if dup:
        raise _error(f"{name} names {dup[0]} twice; for several workers on one device use {_flag('workers', cli)} N")
    return items


def available_devices() -> list[str]:
    """The devices this machine has, by name: every visible GPU, MPS, and cpu (last)."""
    if not _gpu_possible():
        return ["cpu"]
    import torch

    out = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return [*out, "cpu"]


def use_hint(flag: str, cli: bool = True) -> str:
    """What to type instead, from what exists: 'use --devices cuda:0 (this machine has cuda:0, cpu)'."""
    have = available_devices()
    use = f"use {flag} {have[0]}" if cli else f"use {flag}={have[0]!r}"
    return use + (f" (this machine has {', '.join(have)})" if len(have) > 1 else "")


def _check_with_torch(items: list[str], name: str, cli: bool) -> list[str]:
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    where = f"torch {torch.__version__}, CUDA {torch.version.cuda or 'none'}"
    if items == ["all"]:
        if n == 0:
            raise _error(f"{name} all: no GPU is visible here ({where}); {use_hint(name, cli)}")
        return [f"cuda:{i}" for i in range(n)]
    out = []
    for x in items:
        if x == "mps":
            mps = getattr(torch.backends, "mps", None)
            if mps is None or not mps.is_available():
                raise _error(f"device 'mps': Apple MPS is not available here; {use_hint(name, cli)}")
        elif x.startswith("cuda"):
            index = int(x.partition(":")[2] or 0)
            if index >= n:
                raise _error(f"device {x!r} does not exist here ({n} visible CUDA device{'s' * (n != 1)}, {where}); "
                             f"{use_hint(name, cli)}")
            x = f"cuda:{index}"
        out.append(x)
    return out


def best_devices() -> list[str]:
    """The best device here, as a list of one: CUDA, then MPS, then the CPU; the CPU without importing torch
    where no GPU can be (seconds saved: a CPU run's coordinator needs torch for nothing else)."""
    if not _gpu_possible():
        return ["cpu"]
    import torch

    if torch.cuda.is_available():
        return [f"cuda:{torch.cuda.current_device()}"]
    mps = getattr(torch.backends, "mps", None)
    return ["mps"] if mps is not None and mps.is_available() else ["cpu"]


def _gpu_possible() -> bool:
    """False only where no GPU can be: Linux without the device files of NVIDIA's or AMD's drivers (or
    WSL's GPU bridge). Elsewhere (macOS: MPS, Windows) only torch can tell."""
    if not sys.platform.startswith("linux"):
        return True
    dev = Path("/dev")
    return any(dev.glob("nvidia[0-9]*")) or (dev / "kfd").exists() or (dev / "dxg").exists()
