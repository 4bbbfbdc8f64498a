"""Provides worker processes: the objective runs in them, the coordinator (the Runner) keeps the rest.

A worker is a *spawned* process (never forked: CUDA may be initialised in the parent), pinned to one
device slot (``CUDA_VISIBLE_DEVICES`` names its GPU, so the objective sees ``cuda:0``), with its torch
threads set to its share of the cores. It is reused from trial to trial and replaced when it dies, hangs
past the stop grace, or reports a CUDA error that poisons its context.

The conversation over one pipe is the one of ``protocol.py`` (typed messages, every one that concerns a
trial naming its number): a worker runs a ``Job`` of one trial (``objective(config, trial)``) or of
several that train as one fused array (``objective.train_array(configs, trials)``), and says ``Done``
for each of them.

A worker lives in its own process session, so Ctrl+C and SIGHUP from the terminal reach only the
coordinator, which stops the workers in order; a worker whose coordinator died exits within a second.
Everything the user's code prints goes to a log file per trial beside the database, never to the screen.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import threading
import time
import traceback as tb
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.errors import TuituneError, first_line, reason_of
from tuitune.core.run.objref import (  # noqa: F401 - re-exported
    ObjectiveRef,
    _spawnable_main,
    objective_ref,
    pickled_objective,
    unsendable_reason,
)
from tuitune.core.run.placement import BACKENDS, MAX_WORKERS, check_workers, parse_devices  # noqa: F401 - re-exported
from tuitune.core.run.protocol import (
    Between,
    Died,
    Done,
    Fail,
    Failure,
    Job,
    Join,
    Outcome,
    Pool,
    Quit,
    Ready,
    Refill,
    Report,
    RunJob,
    SetupFailed,
    Stop,
    Supersede,
    TrialSpec,
)
from tuitune.core.run.slots import Slot, WorkerError, plan_slots, threads_per_worker  # noqa: F401 - re-exported
from tuitune.core.run.startclock import StartClock  # noqa: F401 - re-exported
from tuitune.core.run.trial import plain_return

POISON_MARKERS = ("device-side assert", "CUDA error", "illegal memory access", "unspecified launch failure")


class ChannelHost:
    """The Trial's host inside a worker: every call is a request the coordinator answers.

    ``send`` and ``recv`` are the transport (a pipe's ends for a local worker, queues inside a Ray actor).
    """

    def __init__(self, send: Callable[[Any], None], recv: Callable[[], Any]) -> None:
        self.send = send
        self.recv = recv
        self.thread_errors: list[tuple[str, str]] = []
        self.meter: Any = None  # a packing.Meter under --workers auto: a trial's first report carries its figures
        self._measured: set[int] = set()
        self.first_report: Callable[[], None] | None = None  # called once, after the first committed epoch

    def _ask(self, msg: Any) -> Any:
        self.send(msg)
        return self.recv()

    def _between_epochs(self, trial: Any) -> bool:
        from tuitune.core.run.trial import TrialFailed

        answer = self._ask(Between(trial.number))
        if isinstance(answer, Fail):
            raise TrialFailed(answer.reason)
        if isinstance(answer, Stop):
            return False
        if self.thread_errors:
            raise TrialFailed(*self.thread_errors[0])
        return True

    def _report(self, trial: Any, epoch: int, row: dict[str, float]) -> None:
        probe = None
        if self.meter is not None and trial.number not in self._measured:
            self._measured.add(trial.number)
            probe = self.meter.probe()
        self._ask(Report(trial.number, epoch, row, probe))
        if self.first_report is not None:
            said, self.first_report = self.first_report, None
            said()

    def job_started(self) -> None:
        """A job starts: its trials' figures are measured from now."""
        self._measured.clear()
        if self.meter is not None:
            self.meter.start()

    def _supersede(self, number: int, after: int) -> None:
        self._ask(Supersede(number, after))

    def _refill(self, first: int, free: int) -> tuple[TrialSpec, ...]:
        """The trials the coordinator adds to the array that trial ``first`` opened, for ``free`` places."""
        answer = self._ask(Refill(first, free))
        return answer.specs if isinstance(answer, Join) else ()

    def _checkpointed(self, trial: Any, path: Path) -> None:
        """Called after ``trial.checkpoint()`` wrote ``path``: a local worker shares the folder, nothing to do."""


def _redirect(path: Path) -> None:
    """Points this process's stdout and stderr (the file descriptors, so C code and children too) at ``path``."""
    from tuitune.core.store.safefs import open_private

    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)  # never through a symlink
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    if sys.stdout is None or sys.stdout.fileno() != 1:  # pragma: no cover - unusual embedding
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    if sys.stderr is None or sys.stderr.fileno() != 2:  # pragma: no cover
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115


def _watch_parent(parent: int) -> None:
    """Ends this worker when its coordinator is gone (killed with -9: nobody can tell us otherwise)."""
    while True:
        if os.getppid() != parent:
            os._exit(3)
        time.sleep(0.25)


def _failure(e: BaseException, trace: str, where: str) -> tuple[Failure, bool]:
    """A trial's error as the coordinator stores it, and whether it poisoned the CUDA context (``where``: a
    path on the trial's disk, named when it is full)."""
    from tuitune.core.errors import SetupError
    from tuitune.core.run.memory import is_out_of_memory
    from tuitune.core.run.trial import TrialFailed
    from tuitune.core.store.safefs import is_disk_full, no_space

    if isinstance(e, TrialFailed):
        return Failure("failed", e.reason, e.trace or trace), False
    if isinstance(e, SetupError):
        return Failure("setup", str(e), trace), False
    if is_disk_full(e):  # the objective's own file on a full disk: not the trial's fault either
        return Failure("setup", no_space(where), trace), False
    oom = is_out_of_memory(e)
    return Failure("failed", "out of memory" if oom else reason_of(e), trace, oom), any(m in str(e) for m in POISON_MARKERS)


def _trial(host: ChannelHost, spec: TrialSpec) -> Any:
    from tuitune.core.records import TrialRecord, TrialState
    from tuitune.core.run.trial import Trial

    rec = TrialRecord(
        number=spec.number, state=TrialState.RUNNING, config=dict(spec.config), budget=spec.budget,
        epochs=({"epoch": spec.committed},) if spec.committed else (),
    )
    return Trial(host, rec, Path(spec.checkpoint))


def _outcome(trial: Any, returned: Any, error: Failure | None, poisoned: bool = False) -> Outcome:
    if error is not None:
        sys.stderr.write(error.trace)
    return Outcome(returned=returned, last_epoch=trial.last_epoch, info=dict(trial.info), error=error, poisoned=poisoned)


def _takes(fn: Callable[..., Any], name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _returned_outcome(trial: Any, value: Any, where: str) -> Outcome:
    """A trial's outcome from what the objective returned for it (an exception instance: it failed; ``where``:
    a path on the trial's disk, named when it is full)."""
    if isinstance(value, BaseException):
        error, poisoned = _failure(value, "".join(tb.format_exception(type(value), value, value.__traceback__)), where)
        return _outcome(trial, None, error, poisoned)
    return _outcome(trial, plain_return(value), None)


def run_job(
    objective: Callable[..., Any], job: Job, host: ChannelHost, left: Callable[[TrialSpec, Outcome], None] | None = None,
    *, refill: bool = False,
) -> list[tuple[TrialSpec, Outcome]]:
    """Runs a job's trials: one with ``objective(config, trial)``, several with ``objective.train_array``;
    each trial's spec with its outcome (the job's, then those that joined it, in order).

    ``train_array(configs, trials)`` returns one value per trial, in order (the plain objective's return);
    a member that failed on its own has its exception in its place. An exception out of ``train_array``
    itself fails every member. The output goes to the first member's log; the others' logs say so.

    ``left(spec, outcome)``: when ``train_array`` takes ``on_leave`` (the built-in trainer's does), each
    member's outcome as it leaves the array, so its trial ends then (its ``Done``), not when the array does.
    ``refill``: when ``train_array`` takes ``refill`` too, places that members left are offered to the
    coordinator between epochs (``Refill``), and the trials it sends (``Join``) train on in the array.
    """
    from tuitune.core.run.memory import release_memory
    from tuitune.core.run.trial import TrialFailed
    from tuitune.core.store.safefs import append_line

    specs = list(job.specs)
    _redirect(Path(specs[0].log))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    if len(specs) > 1:
        for spec in specs[1:]:
            append_line(spec.log, f"--- trial {spec.number} trains in one array with trials {list(job.numbers)}; "
                                  f"its output: {specs[0].log}")
    print(f"--- trial{'s' * (len(specs) > 1)} {', '.join(map(str, job.numbers))} "
          f"(budget {specs[0].budget} epochs) {stamp}", flush=True)
    trials = [_trial(host, spec) for spec in specs]
    host.thread_errors = []
    host.job_started()
    t0 = time.monotonic()
    outcomes: list[Outcome]
    try:
        if len(specs) == 1:
            returned: list[Any] = [objective(dict(specs[0].config), trials[0])]
        else:
            train_array = getattr(objective, "train_array", None)
            if train_array is None:
                from tuitune.core.errors import SetupError

                raise SetupError(
                    f"the objective has no train_array(configs, trials), so {len(specs)} trials cannot train as one "
                    "array; run with fuse 1"
                )
            kw: dict[str, Any] = {}
            by_number = {t.number: (spec, t) for spec, t in zip(specs, trials)}
            gone: set[int] = set()  # members that left (their Done is sent)
            if left is not None and _takes(train_array, "on_leave"):

                def on_leave(trial: Any, value: Any) -> None:
                    spec, t = by_number[trial.number]
                    gone.add(trial.number)
                    left(spec, _returned_outcome(t, value, spec.checkpoint))

                kw["on_leave"] = on_leave
                if refill and _takes(train_array, "refill"):

                    def join(free: int) -> list[tuple[dict[str, Any], Any]]:
                        if gone >= by_number.keys():
                            # Every member left and said Done: to the coordinator this worker is free, and its
                            # next job may already be on the way. A Refill now would cross it.
                            return []
                        pairs = []
                        for spec in host._refill(specs[0].number, free):
                            append_line(spec.log, f"--- trial {spec.number} joins the array of trial "
                                                  f"{specs[0].number}; its output: {specs[0].log}")
                            print(f"--- trial {spec.number} joins (budget {spec.budget} epochs)", flush=True)
                            t = _trial(host, spec)
                            specs.append(spec)
                            trials.append(t)
                            by_number[spec.number] = (spec, t)
                            pairs.append((dict(spec.config), t))
                        return pairs

                    kw["refill"] = join
            returned = list(train_array([dict(s.config) for s in job.specs], trials[: len(job.specs)], **kw))
            if len(returned) != len(specs):
                raise TrialFailed(f"train_array returned {len(returned)} values for {len(specs)} trials")
        if host.thread_errors:
            raise TrialFailed(*host.thread_errors[0])
        outcomes = [_returned_outcome(trial, value, spec.checkpoint) for trial, value, spec in zip(trials, returned, specs)]
    except BaseException as e:  # noqa: BLE001 - SystemExit and KeyboardInterrupt in user code fail the trial
        error, poisoned = _failure(e, tb.format_exc(), specs[0].checkpoint)
        outcomes = [_outcome(trial, None, error, poisoned) for trial in trials]
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    trials.clear()  # the trials' objects go before the memory is released
    release_memory(time.monotonic() - t0)
    return list(zip(specs, outcomes))


def worker_main(
    conn: Any, ref_blob: bytes, device: str | None, threads: int, parent: int, log: str, measure: bool = False,
    spawned: float | None = None,
) -> None:
    """The entry point of a worker process (``measure``: under ``--workers auto``, its trials' first reports
    carry its figures; ``spawned``: when the coordinator started it, ``time.time()``)."""
    entered = time.time()
    try:
        os.setsid()  # terminal signals are the coordinator's to handle
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _redirect(Path(log))
    start = StartClock(log, spawned if spawned is not None else entered, entered)  # its log opened now: it may move
    threading.Thread(target=_watch_parent, args=(parent,), name="tuitune-parent-watch", daemon=True).start()
    local = device
    if device is not None and device.startswith("cuda"):
        index = device.partition(":")[2] or "0"
        os.environ["CUDA_VISIBLE_DEVICES"] = index
        local = "cuda"
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    host = ChannelHost(conn.send, conn.recv)
    install_excepthook(host)
    objective = load_objective(ref_blob, local, threads, conn.send, clock=start)
    if objective is None:
        return
    if measure:
        from tuitune.core.run.packing import Meter

        host.meter = Meter(getattr(objective, "measure_device", None))
    host.first_report = start.first_epoch
    serve_trials(objective, host, conn.recv, conn.send, clock=start, refill=True)


def install_excepthook(host: ChannelHost) -> None:
    """Errors in threads the objective started fail its trial (at its next epoch or its end)."""

    def excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread else "?"
        trace = "".join(tb.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
        host.thread_errors.append((f"error in thread '{name}': {args.exc_type.__name__}: {args.exc_value}", trace))

    threading.excepthook = excepthook


def load_objective(
    ref_blob: bytes, device: str | None, threads: int, send: Callable[[Any], None], *, where: str = "",
    facts: dict[str, Any] | None = None, clock: StartClock | None = None,
) -> Callable[..., Any] | None:
    """Builds the objective and says ``ready`` (None: it said ``setup-failed``).

    ``where`` prefixes tuitune's own errors (a Ray node's name); ``facts`` ride on ``ready`` (the node, the
    device, and the start's ``phases``, timed by ``clock``).
    """
    t0 = time.perf_counter()
    try:
        ref = pickle.loads(ref_blob)
        objective = ref.build(device)
        built = time.perf_counter() - t0
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(threads)
        # What is alive now (torch, numpy, the objective's module) lives as long as the worker: kept out of
        # the collector's passes, which otherwise walk it again and again while a trial trains.
        import gc

        gc.collect()
        gc.freeze()
    except BaseException as e:  # noqa: BLE001 - reported to the coordinator, which says what to do
        ours = isinstance(e, TuituneError)
        reason = reason_of(e)
        if ours and where:  # "WorkerError: on node n2: ..." (the Runner keeps what follows the type's name)
            reason = f"{type(e).__name__}: {where}: {first_line(e)}"
        send(SetupFailed(reason, tb.format_exc(), ours))
        return None
    facts = dict(facts or {})
    from tuitune.core.run.versions import versions

    facts["versions"] = versions()  # this process's torch, CUDA and cuDNN: its trials record them
    own = getattr(objective, "start_phases", None)
    clock = clock or StartClock(None, time.time() - built)
    facts["phases"] = clock.phases(built, dict(own) if isinstance(own, dict) else {})
    clock.said_ready(facts["phases"])
    auto = getattr(objective, "fuse_auto", None)  # --fuse auto: the array size it measured on this device
    if isinstance(auto, int) and auto > 1:
        facts["fuse"] = auto
    send(Ready(os.getpid(), facts))
    return objective  # type: ignore[no-any-return]


class _Dones:
    """Says ``Done`` once per trial of a job: as an array member leaves, or at the job's end."""

    def __init__(self, send: Callable[[Any], None], finish: Callable[[TrialSpec, Outcome], Outcome] | None) -> None:
        self.send, self.finish, self.sent = send, finish, set[int]()

    def __call__(self, spec: TrialSpec, outcome: Outcome) -> None:
        if spec.number in self.sent:
            return
        self.sent.add(spec.number)
        if self.finish is not None:
            outcome = self.finish(spec, outcome)
        self.send(Done(spec.number, outcome))


def serve_trials(
    objective: Callable[..., Any],
    host: ChannelHost,
    recv: Callable[[], Any],
    send: Callable[[Any], None],
    *,
    prepare: Callable[[RunJob], Job] | None = None,
    finish: Callable[[TrialSpec, Outcome], Outcome] | None = None,
    clock: StartClock | None = None,
    refill: bool = False,
) -> None:
    """The worker's side of the conversation, whatever carries it: jobs until ``Quit`` or a closed channel.

    ``prepare`` turns a ``RunJob`` into the job to run (a Ray actor puts the checkpoints it was sent in
    its own folder); ``finish`` runs after each trial of it, before its ``Done``, and may reword its outcome.
    ``refill``: a running array asks for trials to take its members' places (``run_job``); a local worker
    does, sharing the session's folder (a Ray actor would need their checkpoints sent).
    """
    while True:
        try:
            msg = recv()
        except (EOFError, OSError):
            return
        if isinstance(msg, Quit):
            return
        job = prepare(msg) if prepare is not None else msg.job
        if clock is not None:
            clock.job(job.specs[0].log)
        done = _Dones(send, finish)
        ended = run_job(objective, job, host, left=done if len(job.specs) > 1 else None, refill=refill)
        for spec, outcome in ended:
            try:
                done(spec, outcome)
            except (OSError, ValueError):
                return
        if any(o.poisoned for _, o in ended):
            return  # a poisoned CUDA context cannot be used again: the coordinator starts a fresh worker


# ---------------------------------------------------------------------------- the coordinator's side


@contextlib.contextmanager
def _real_stdio() -> Iterator[None]:
    """Real file descriptors as sys.stdout/stderr while a process starts (Textual swaps in capture objects
    whose fileno() is not a file, which multiprocessing's start-up would hand to the child)."""
    saved = sys.stdout, sys.stderr
    try:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            try:
                ok = stream is not None and stream.fileno() >= 0
            except (OSError, ValueError, AttributeError):
                ok = False
            if not ok:
                setattr(sys, name, getattr(sys, f"__{name}__") or open(os.devnull, "w"))  # noqa: SIM115
        yield
    finally:
        sys.stdout, sys.stderr = saved


@dataclass(eq=False)
class Worker:
    """The coordinator's view of one worker process."""

    slot: Slot
    process: Any
    conn: Any
    ready: bool = False
    pid: int | None = None
    poisoned: bool = False  # a trial of its job broke its CUDA context: replaced once the job has ended
    trials: list[int] = field(default_factory=list)  # the trials of the job it runs (none: idle)
    waiting: Between | None = None  # a request between epochs not answered yet (paused)
    started: float = field(default_factory=time.monotonic)
    node: str | None = None  # the Ray node it runs on (local workers: None, this machine)
    device: str | None = None  # the device it reported (a Ray actor's GPU), else its slot's
    fuse: int = 1  # its array size under --fuse auto (what it measured on its device when it started)
    packed: int = 0  # --workers auto: the most workers its device held while its job ran
    members: int = 1  # the trials of its job (a fused array's size)
    versions: dict[str, Any] = field(default_factory=dict)  # what it runs (torch, CUDA, cuDNN), from its Ready


class WorkerPool(Pool):
    """Starts, feeds, watches and replaces the worker processes of one run."""

    backend = "local"
    requeue_lost = False  # a lost worker fails its trials (its code may be what killed it)

    def __init__(
        self, ref: ObjectiveRef, slots: Sequence[Slot], log_dir: Path, *, threads: int | None = None,
        measure: bool = False,
    ) -> None:
        if not slots:
            raise WorkerError("no worker slots: give at least one device and one worker")
        self._blob = pickled_objective(
            ref, "a worker process", "create what it captures inside the objective, or run it in this process "
            "(workers=0, --in-process)"
        )
        self.ref = ref
        self.slots = list(slots)
        self.log_dir = log_dir
        self.threads = threads or threads_per_worker(len(self.slots))
        self.measure = measure  # --workers auto: workers measure their trials, the Runner adds workers (add)
        self.workers: dict[int, Worker] = {}
        self._old_logs: list[Path] = []  # where the workers' logs were before the pool moved them (warm workers)
        import multiprocessing

        self._ctx = multiprocessing.get_context("spawn")

    def start(self, log_dir: Path | None = None) -> None:
        """Starts a worker in each slot; a pool started already (warm workers, started before their session)
        keeps its workers and moves their logs to ``log_dir``."""
        if self.workers:
            if log_dir is not None and log_dir != self.log_dir:
                self._move_logs(log_dir)
            return
        if log_dir is not None:
            self.log_dir = log_dir
        for slot in self.slots:
            self._spawn(slot)

    def _move_logs(self, log_dir: Path) -> None:
        """The workers' logs go to ``log_dir`` (renamed: a worker keeps writing to its open file); a log its
        worker has not opened yet follows when the pool closes, and the old folder goes then."""
        self._old_logs.append(self.log_dir)
        self.log_dir = log_dir
        self._gather_logs()

    def _gather_logs(self, remove: bool = False) -> None:
        for old in self._old_logs:
            for index in self.slots:
                name = f"worker-{index.index}.log"
                if (old / name).exists() and not (self.log_dir / name).exists():
                    with contextlib.suppress(OSError):
                        os.replace(old / name, self.log_dir / name)
            if remove:
                import shutil

                shutil.rmtree(old, ignore_errors=True)
        if remove:
            self._old_logs.clear()

    def _spawn(self, slot: Slot) -> Worker:
        with _real_stdio(), _spawnable_main(self.ref.by_value):
            return self._spawn_process(slot)

    def _spawn_process(self, slot: Slot) -> Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        log = self.log_dir / f"worker-{slot.index}.log"
        proc = self._ctx.Process(
            target=worker_main,
            args=(child, self._blob, slot.device, self.threads, os.getpid(), str(log), self.measure, time.time()),
            name=f"tuitune-worker-{slot.index}",
            daemon=True,
        )
        proc.start()
        child.close()
        w = Worker(slot, proc, parent)
        self.workers[slot.index] = w
        return w

    def dispatch(self, w: Worker, job: Job) -> None:
        self._assign(w, job)
        w.conn.send(RunJob(job))

    def wait(self, timeout: float) -> list[tuple[Worker, Any]]:
        """Messages that arrived within ``timeout`` seconds; ``(worker, Died(how))`` for a worker that died."""
        from multiprocessing.connection import wait

        by_conn = {w.conn: w for w in self.workers.values()}
        by_sentinel = {w.process.sentinel: w for w in self.workers.values()}
        out: list[tuple[Worker, Any]] = []
        ready = wait([*by_conn, *by_sentinel], timeout)
        dead: list[Worker] = []
        drained: set[int] = set()

        def drain(w: Worker) -> None:
            """Everything ``w`` sent, in order; a closed pipe marks it dead."""
            drained.add(id(w))
            try:
                while w.conn.poll():
                    out.append((w, w.conn.recv()))
            except (EOFError, OSError):
                dead.append(w)

        for r in ready:
            if r in by_conn:
                drain(by_conn[r])
            else:
                dead.append(by_sentinel[r])
        # A process the worker forked inherits its pipe and its sentinel, and keeps both open after the
        # worker died: ask the kernel (waitpid, through exitcode) whether the worker itself still lives.
        dead += [w for w in self.workers.values() if w.process.exitcode is not None]
        for w in dict.fromkeys(dead):
            if self.workers.get(w.slot.index) is w:
                if id(w) not in drained:  # what it said before it ended comes before its death (SetupFailed, Done)
                    drain(w)
                out.append((w, Died(self.death(w))))
        return out

    @staticmethod
    def death(w: Worker) -> str:
        """How a worker process ended, in words: 'killed by SIGKILL', 'exit code 1'."""
        w.process.join(timeout=1.0)
        code = w.process.exitcode
        if code is None:
            return "stopped answering"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"

    def answer(self, w: Worker, reply: Any) -> None:
        """Sends ``reply`` to ``w`` (an answer, or ``Quit``); a dead worker's is dropped."""
        try:
            w.conn.send(reply)
        except (OSError, ValueError):
            pass  # it died: its sentinel says so on the next wait

    def kill(self, w: Worker) -> None:
        """Ends the worker and every process it started (its process group: it made its own session)."""
        kill_group(w.process.pid)  # first: while the worker lives (or is an unreaped zombie) its pid is its group's
        if w.process.is_alive():
            w.process.kill()
        w.process.join(timeout=5.0)
        try:
            w.conn.close()
        except OSError:
            pass

    def close(self, grace: float = 2.0) -> None:
        """Asks every worker to quit, then kills what is left after ``grace`` seconds; none is left behind."""
        for w in self.workers.values():
            if not w.trials:
                self.answer(w, Quit())
        deadline = time.monotonic() + grace
        for w in self.workers.values():
            w.process.join(timeout=max(0.0, deadline - time.monotonic()))
        for w in self.workers.values():
            self.kill(w)  # and what its trials forked: nothing outlives the session
        self.workers.clear()
        self._gather_logs(remove=True)


def kill_group(pid: int | None) -> None:
    """SIGKILLs the process group ``pid`` leads (a worker's: it called setsid), whatever is left in it.

    A group's id is not reused while any process is in it; a group left empty gets ESRCH. (A worker
    already reaped whose forked processes all ended leaves a microsecond window in which a new process
    could take the number and make it a new group's: accepted, as ``kill`` of a pid does.)
    """
    if pid is None or not hasattr(os, "killpg"):
        return
    try:
        if os.getpgid(0) == pid:  # never our own group (a worker that failed to setsid)
            return
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass
