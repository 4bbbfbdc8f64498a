"""Provides the contract between the coordinator (the Runner) and where trials run: jobs, messages, ``Pool``.

A **job** is one or more trials a worker runs at once: one trial (the objective is called as
``objective(config, trial)``), or several that share an architecture and train as one fused array
(``objective.train_array(configs, trials)``). Every message that concerns a trial names its number,
so a worker holding k trials reports, checkpoints, asks between epochs and ends each one on its own.

The conversation, worker -> coordinator (each request is answered before the worker goes on)::

    Ready(pid, facts) | SetupFailed(message, trace, ours)     once, after loading the objective
    Between(trial)          -> Go() | Stop() | Fail(reason)     before each epoch (paused: no answer yet)
    Report(trial, epoch, row) -> Ok()                          after the coordinator committed the row
    Supersede(trial, after)   -> Ok()
    Refill(trial, free)       -> Join(specs)                   between epochs, while an array has free places
                                                                (``trial``: the array's first; no specs: none)
    Done(trial, outcome)                                        one per trial of the job, at its end
                                                                (a fused member's as it leaves its array)

A trial's first ``Report`` carries its worker's ``probe`` (peak memory, the device's free memory and
utilisation: ``packing.py``), from which ``--workers auto`` packs the device; a ``Failure`` says ``oom``
for torch's out-of-memory errors. ``Ready.facts`` carry ``phases``: where the worker's start went, in seconds by name (``startclock.StartClock``),
and ``versions``: the worker's Python, torch, CUDA and cuDNN (its trials record them);
they may carry ``fuse``: the worker's own array size under ``--fuse auto`` (measured on its device); a Ray
actor's carry its ``node`` and ``device``.

coordinator -> worker: ``RunJob(job)`` starts a job, ``Quit()`` ends the worker. A pool adds
``Died(how)`` itself when a worker ends without a word (its process killed, its Ray actor lost): all
the trials it held end with it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class TrialSpec:
    """What a worker needs to run one trial."""

    number: int
    config: dict[str, Any]
    budget: int
    committed: int  # the last epoch row already committed (a restore point must not be past it)
    checkpoint: str
    log: str


@dataclass(frozen=True)
class Job:
    """The trials one worker runs at once (one, or the members of a fused array)."""

    specs: tuple[TrialSpec, ...]

    @property
    def numbers(self) -> tuple[int, ...]:
        return tuple(s.number for s in self.specs)


@dataclass(frozen=True)
class Failure:
    """Why a trial ended with an error: ``kind`` is ``failed`` or ``setup`` (no trial can get past it)."""

    kind: str
    reason: str
    trace: str
    oom: bool = False  # torch's out-of-memory error (memory.is_out_of_memory): --workers auto shrinks and re-queues


@dataclass(frozen=True)
class Outcome:
    """How one trial of a job ended in its worker.

    ``returned`` is the objective's return made plain: a float, None, or ``{"bad": description}``.
    """

    returned: Any = None
    last_epoch: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    error: Failure | None = None
    poisoned: bool = False  # a CUDA error that leaves the worker's context unusable


# ---------------------------------------------------------------------------- worker -> coordinator


@dataclass(frozen=True)
class Ready:
    """The worker loaded the objective and waits for a job (``facts``: a Ray actor's node and device)."""

    pid: int
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SetupFailed:
    """The worker could not load the objective; ``ours``: a tuitune error, whose message is the user's line
    (else the objective's import failed)."""

    message: str
    trace: str
    ours: bool


@dataclass(frozen=True)
class Between:
    """Trial ``trial`` is about to start its next epoch: answered ``Go``, ``Stop`` or ``Fail`` (paused: later)."""

    trial: int


@dataclass(frozen=True)
class Report:
    """Trial ``trial`` reported ``row`` for ``epoch``: answered ``Ok`` once the row is committed."""

    trial: int
    epoch: int
    row: dict[str, float]
    probe: dict[str, Any] | None = None  # the worker's figures, on a trial's first report (packing.Meter.probe)


@dataclass(frozen=True)
class Supersede:
    """Trial ``trial`` restarts after epoch ``after``: its later rows are kept, superseded. Answered ``Ok``."""

    trial: int
    after: int


@dataclass(frozen=True)
class Refill:
    """The array that trial ``trial`` opened has ``free`` places (members left it): answered ``Join`` with the
    trials that take them from its next epoch, of its architecture and budget (none: it trains on smaller).
    Local workers ask (``workers.serve_trials(refill=True)``); a Ray actor does not (its checkpoints travel
    with the job)."""

    trial: int
    free: int


@dataclass(frozen=True)
class Done:
    trial: int
    outcome: Outcome


@dataclass(frozen=True)
class Died:
    """Added by the pool: the worker ended without a word (``how``: 'killed by SIGKILL', 'exit code 1')."""

    how: str


# Between a Ray pool and its actors only (ray_backend.py): the Runner never sees them.

@dataclass(frozen=True)
class Checkpoint:
    """An actor's trial wrote a checkpoint (``data``): the pool keeps it in the session's folder. Answered ``Ok``."""

    trial: int
    data: bytes


@dataclass(frozen=True)
class Log:
    trial: int
    data: bytes  # the trial's printed output (its last bytes), sent at its end


@dataclass(frozen=True)
class Bye:
    """The actor removed its folder and quits."""


# ---------------------------------------------------------------------------- coordinator -> worker


@dataclass(frozen=True)
class RunJob:
    job: Job
    blobs: tuple[bytes | None, ...] = ()  # the checkpoints' bytes, when the worker cannot read the folder (Ray)


@dataclass(frozen=True)
class Go:
    """Run the next epoch."""


@dataclass(frozen=True)
class Stop:
    """End the trial now (stopped or aborted): its ``epochs()`` ends."""


@dataclass(frozen=True)
class Fail:
    reason: str  # the trial ends failed with it (its time limit)


@dataclass(frozen=True)
class Ok:
    """The request is done (the row is committed)."""


@dataclass(frozen=True)
class Join:
    """The answer to ``Refill``: trials that join the running array (each opened and counted as running,
    its ``Done`` to come like a member's)."""

    specs: tuple[TrialSpec, ...] = ()


@dataclass(frozen=True)
class Quit:
    """End the worker."""


Answer = Go | Stop | Fail | Ok | Quit | Join


# ---------------------------------------------------------------------------- the pool


class Pool(ABC):
    """Where a session's trials run, as the Runner drives it. Local processes (``workers.WorkerPool``) and
    Ray actors (``ray_backend.RayPool``) implement it; the Runner knows no other.

    The contract:

    - ``start(log_dir)`` starts every worker; each says ``Ready`` (or ``SetupFailed``) through ``wait``.
      What the user's code prints goes to ``log_dir`` (``worker-N.log``, and ``N.log`` per trial).
    - ``free()`` lists the workers that are ready and hold no trial; ``dispatch(w, job)`` hands one of
      them a job; from then ``w.trials`` names the job's trials until each one's ``Done``.
    - ``wait(timeout)`` returns ``(worker, message)`` pairs that arrived within ``timeout`` seconds, in
      the order each worker sent them, and ``(worker, Died(how))`` once for a worker that ended.
    - ``answer(w, reply)`` answers the worker's pending request (``Between``, ``Report``,
      ``Supersede``); a dead worker's answer is dropped (its ``Died`` comes through ``wait``).
    - ``retire(w)`` ends a worker and forgets it; ``restart(w)`` ends it and starts a fresh one in its
      slot. ``close()`` asks idle workers to quit, kills the rest, and leaves nothing running.
    - ``requeue_lost``: a worker lost with trials was not their fault (a Ray node): they run again, once.
    - ``in_thread``: ``dispatch`` runs the job to its end before it returns (``inthread.InThreadPool``); its
      trials' requests go to the coordinator's ``_reply`` directly.
    """

    workers: dict[int, Any]
    ref: Any  # how a worker loads the objective (workers.ObjectiveRef): its label names it in errors
    requeue_lost: bool = False
    in_thread: bool = False  # the coordinator's own thread (inthread.py): trials name no worker, keep no log

    @abstractmethod
    def start(self, log_dir: Path) -> None: ...

    @abstractmethod
    def dispatch(self, w: Any, job: Job) -> None: ...

    @abstractmethod
    def wait(self, timeout: float) -> list[tuple[Any, Any]]: ...

    @abstractmethod
    def answer(self, w: Any, reply: Answer) -> None: ...

    @abstractmethod
    def kill(self, w: Any) -> None: ...

    @abstractmethod
    def close(self, grace: float = 2.0) -> None: ...

    @abstractmethod
    def _spawn(self, slot: Any) -> Any: ...

    def restart(self, w: Any) -> Any:
        self.kill(w)
        return self._spawn(w.slot)

    def add(self, device: str | None) -> Any:
        """Starts one more worker, on ``device``, in a new slot (``--workers auto`` packing a device)."""
        from tuitune.core.run.slots import Slot

        slots = getattr(self, "slots", [])
        slot = Slot(max([s.index for s in slots] + list(self.workers), default=-1) + 1, device)
        slots.append(slot)
        return self._spawn(slot)

    def retire(self, w: Any) -> None:
        """Ends ``w`` for good (the run is stopping, or its objective cannot load)."""
        self.kill(w)
        self.workers.pop(w.slot.index, None)

    def free(self) -> list[Any]:
        return [w for w in self.workers.values() if w.ready and not w.trials]

    def busy(self) -> list[Any]:
        return [w for w in self.workers.values() if w.trials]

    @staticmethod
    def _assign(w: Any, job: Job) -> None:
        """Marks ``w`` as running ``job``'s trials from now (the pool then sends it the job)."""
        import time

        w.trials = list(job.numbers)
        w.members = len(job.numbers)
        w.waiting = None
        w.started = time.monotonic()
