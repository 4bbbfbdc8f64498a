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

from tuitune.core.errors import ObjectiveError, TuituneError, first_line, reason_of
from tuitune.core.run.placement import BACKENDS, MAX_WORKERS, check_workers, parse_devices  # noqa: F401 - re-exported
from tuitune.core.run.protocol import (
    Between,
    Died,
    Done,
    Fail,
    Failure,
    Job,
    Outcome,
    Pool,
    Quit,
    Ready,
    Report,
    RunJob,
    SetupFailed,
    Stop,
    Supersede,
    TrialSpec,
)
from tuitune.core.run.slots import Slot, WorkerError, plan_slots, threads_per_worker  # noqa: F401 - re-exported
from tuitune.core.run.trial import plain_return

POISON_MARKERS = ("device-side assert", "CUDA error", "illegal memory access", "unspecified launch failure")


@dataclass(frozen=True)
class ObjectiveRef:
    """How a worker gets the objective: a function sent by reference or by value, or a factory it calls.

    Attributes:
        fn: the objective function: importable by its module and name, or (``by_value``) sent whole.
        factory: builds the objective in the worker: ``factory(*args, **kwargs)`` (presets).
        device_kw: the factory's keyword that receives the worker's device (``"cuda"`` when pinned).
        label: what errors call it (``"train:objective"``, ``"preset digits-mlp"``).
        by_value: ``fn`` is pickled with cloudpickle, its code and what it captures included (a closure, a
            lambda, a function typed at a prompt, in a notebook, on stdin or with ``python -c``).
    """

    fn: Callable[..., Any] | None = None
    factory: Callable[..., Any] | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    device_kw: str | None = None
    label: str = ""
    by_value: bool = False

    def build(self, device: str | None) -> Callable[..., Any]:
        if self.factory is None:
            assert self.fn is not None
            return self.fn
        kwargs = dict(self.kwargs)
        if self.device_kw is not None and device is not None:
            kwargs[self.device_kw] = device
        return self.factory(*self.args, **kwargs)


def _main_file() -> str | None:
    """The file a spawned process re-runs as ``__main__`` (None: it re-runs nothing: a prompt, ``-c``,
    stdin, a notebook). A ``__main__`` run as a module (``python -m``) is re-imported by name: it counts."""
    main = sys.modules.get("__main__")
    if main is None:
        return None
    if getattr(getattr(main, "__spec__", None), "name", None):
        return "<module>"
    path = getattr(main, "__file__", None)
    if not isinstance(path, str):
        return None
    from multiprocessing import process

    start = getattr(process, "ORIGINAL_DIR", None)  # where the parent started: spawn resolves a relative path there
    full = path if os.path.isabs(path) or start is None else os.path.join(start, path)
    return path if os.path.isfile(full) else None


@contextlib.contextmanager
def _spawnable_main(by_value: bool = False) -> Iterator[None]:
    """The parent's ``__main__`` shows no file while a process is spawned when the child must not re-run it.

    The spawn start method re-runs the parent's ``__main__`` in the child from ``__main__.__file__``
    (``multiprocessing.spawn._fixup_main_from_path``), or by name for ``python -m``. ``python - < script.py``
    names ``<stdin>``, which the child cannot open (a raw ``FileNotFoundError`` in the worker); and an
    objective sent by value needs nothing from ``__main__`` (cloudpickle sends what it uses from there), so
    re-running the script in every worker is only a trap (its unguarded code runs again). With no file and
    no spec spawn leaves the child's ``__main__`` alone, as it does for ``python -c`` and a notebook.
    """
    main = sys.modules.get("__main__")
    if main is None or (not by_value and _main_file() is not None):
        yield
        return
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    if "__spec__" in saved:
        main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.update(saved)


def _by_reference(objective: Callable[..., Any]) -> bool:
    """Whether a worker process can import ``objective`` by its module and name."""
    qualname = getattr(objective, "__qualname__", "")
    module = getattr(objective, "__module__", None)
    if not qualname or "<" in qualname or module is None:
        return False
    if module == "__main__" and _main_file() is None:
        return False
    try:
        pickle.dumps(objective)
    except Exception:  # noqa: BLE001 - anything pickle cannot send by name goes by value
        return False
    return True


def objective_ref(objective: Callable[..., Any]) -> ObjectiveRef | None:
    """The reference a worker can load ``objective`` by, or None when it cannot be sent to a process.

    A function at the top level of an importable module (the running script's too) is sent by reference;
    any other (a lambda, a closure, a function from a notebook, stdin or ``python -c``) by value with
    cloudpickle, as Ray and joblib do. None only when what it captures cannot be pickled
    (``unsendable_reason`` says what).
    """
    ref = getattr(objective, "__tuitune_ref__", None)
    if isinstance(ref, ObjectiveRef):
        return ref
    label = f"{getattr(objective, '__module__', None)}:{getattr(objective, '__qualname__', repr(objective))}"
    if _by_reference(objective):
        return ObjectiveRef(fn=objective, label=label)
    if unsendable_reason(objective) is not None:
        return None
    return ObjectiveRef(fn=objective, label=label, by_value=True)


def _cloudpickle_error(value: Any) -> Exception | None:
    import cloudpickle

    try:
        cloudpickle.dumps(value)
    except Exception as e:  # noqa: BLE001 - what fails is what we report
        return e
    return None


def _captured(fn: Any) -> list[tuple[str, Any]]:
    """What a function takes with it when sent by value: its free variables, the globals it names, its
    defaults, the object of a bound method, the function and arguments of a ``functools.partial``."""
    import functools
    import inspect

    out: list[tuple[str, Any]] = []
    if isinstance(fn, functools.partial):
        return [("partial's function", fn.func), *((f"argument {i}", a) for i, a in enumerate(fn.args)),
                *fn.keywords.items()]
    if inspect.ismethod(fn):
        return [(f"{type(fn.__self__).__name__} object", fn.__self__), *_captured(fn.__func__)]
    if not inspect.isfunction(fn):
        return out
    try:
        cv = inspect.getclosurevars(fn)
    except (TypeError, ValueError):
        return out
    out += list(cv.nonlocals.items()) + list(cv.globals.items())
    out += [(f"default {i}", d) for i, d in enumerate(fn.__defaults__ or ())]
    out += list((fn.__kwdefaults__ or {}).items())
    return out


def unsendable_reason(objective: Callable[..., Any], depth: int = 0) -> str | None:
    """Why ``objective`` cannot be sent to a process by value, naming what it captures that cannot be
    pickled (``"it captures 'lock' (a _thread.lock: cannot pickle '_thread.lock' object)"``); None: it can."""
    error = _cloudpickle_error(objective)
    if error is None:
        return None
    for name, value in _captured(objective):
        inner = _cloudpickle_error(value)
        if inner is None:
            continue
        if depth < 4 and callable(value) and not isinstance(value, type):
            deeper = unsendable_reason(value, depth + 1)
            if deeper is not None and "captures" in deeper:
                return f"it captures {name!r}, which {deeper.removeprefix('it ')}"
        return f"it captures {name!r} (a {type(value).__module__}.{type(value).__qualname__}: {reason_of(inner)})"
    return f"it cannot be pickled ({reason_of(error)})"


# ---------------------------------------------------------------------------- the worker's side


class ChannelHost:
    """The Trial's host inside a worker: every call is a request the coordinator answers.

    ``send`` and ``recv`` are the transport (a pipe's ends for a local worker, queues inside a Ray actor).
    """

    def __init__(self, send: Callable[[Any], None], recv: Callable[[], Any]) -> None:
        self.send = send
        self.recv = recv
        self.thread_errors: list[tuple[str, str]] = []

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
        self._ask(Report(trial.number, epoch, row))

    def _supersede(self, number: int, after: int) -> None:
        self._ask(Supersede(number, after))

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
    reason = "out of memory" if is_out_of_memory(e) else reason_of(e)
    return Failure("failed", reason, trace), any(m in str(e) for m in POISON_MARKERS)


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


def run_job(objective: Callable[..., Any], job: Job, host: ChannelHost) -> list[Outcome]:
    """Runs a job's trials: one with ``objective(config, trial)``, several with ``objective.train_array``.

    ``train_array(configs, trials)`` returns one value per trial, in order (the plain objective's return);
    a member that failed on its own has its exception in its place. An exception out of ``train_array``
    itself fails every member. The output goes to the first member's log; the others' logs say so.
    """
    from tuitune.core.run.memory import release_memory
    from tuitune.core.run.trial import TrialFailed

    specs = job.specs
    _redirect(Path(specs[0].log))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    if len(specs) > 1:
        for spec in specs[1:]:
            with open(spec.log, "a") as f:
                f.write(f"--- trial {spec.number} trains in one array with trials {list(job.numbers)}; "
                        f"its output: {specs[0].log}\n")
    print(f"--- trial{'s' * (len(specs) > 1)} {', '.join(map(str, job.numbers))} "
          f"(budget {specs[0].budget} epochs) {stamp}", flush=True)
    trials = [_trial(host, spec) for spec in specs]
    host.thread_errors = []
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
            returned = list(train_array([dict(s.config) for s in specs], trials))
            if len(returned) != len(specs):
                raise TrialFailed(f"train_array returned {len(returned)} values for {len(specs)} trials")
        if host.thread_errors:
            raise TrialFailed(*host.thread_errors[0])
        outcomes = []
        for trial, value in zip(trials, returned):
            if isinstance(value, BaseException):
                trace = "".join(tb.format_exception(type(value), value, value.__traceback__))
                error, poisoned = _failure(value, trace, specs[0].checkpoint)
                outcomes.append(_outcome(trial, None, error, poisoned))
            else:
                outcomes.append(_outcome(trial, plain_return(value), None))
    except BaseException as e:  # noqa: BLE001 - SystemExit and KeyboardInterrupt in user code fail the trial
        error, poisoned = _failure(e, tb.format_exc(), specs[0].checkpoint)
        outcomes = [_outcome(trial, None, error, poisoned) for trial in trials]
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    del trials
    release_memory(time.monotonic() - t0)
    return outcomes


def worker_main(conn: Any, ref_blob: bytes, device: str | None, threads: int, parent: int, log: str) -> None:
    """The entry point of a worker process."""
    try:
        os.setsid()  # terminal signals are the coordinator's to handle
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _redirect(Path(log))
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
    objective = load_objective(ref_blob, local, threads, conn.send)
    if objective is None:
        return
    serve_trials(objective, host, conn.recv, conn.send)


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
    facts: dict[str, Any] | None = None,
) -> Callable[..., Any] | None:
    """Builds the objective and says ``ready`` (None: it said ``setup-failed``).

    ``where`` prefixes tuitune's own errors (a Ray node's name); ``facts`` ride on ``ready`` (the node, the device).
    """
    try:
        ref = pickle.loads(ref_blob)
        objective = ref.build(device)
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
    send(Ready(os.getpid(), dict(facts or {})))
    return objective  # type: ignore[no-any-return]


def serve_trials(
    objective: Callable[..., Any],
    host: ChannelHost,
    recv: Callable[[], Any],
    send: Callable[[Any], None],
    *,
    prepare: Callable[[RunJob], Job] | None = None,
    finish: Callable[[TrialSpec, Outcome], Outcome] | None = None,
) -> None:
    """The worker's side of the conversation, whatever carries it: jobs until ``Quit`` or a closed channel.

    ``prepare`` turns a ``RunJob`` into the job to run (a Ray actor puts the checkpoints it was sent in
    its own folder); ``finish`` runs after each trial of it, before its ``Done``, and may reword its outcome.
    """
    while True:
        try:
            msg = recv()
        except (EOFError, OSError):
            return
        if isinstance(msg, Quit):
            return
        job = prepare(msg) if prepare is not None else msg.job
        outcomes = run_job(objective, job, host)
        for spec, outcome in zip(job.specs, outcomes):
            if finish is not None:
                outcome = finish(spec, outcome)
            try:
                send(Done(spec.number, outcome))
            except (OSError, ValueError):
                return
        if any(o.poisoned for o in outcomes):
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


def pickled_objective(ref: ObjectiveRef, into: str, hint: str) -> bytes:
    """The objective's reference as bytes for ``into`` (a worker process, a Ray actor), or an error saying what to do."""
    try:
        if ref.by_value:
            import cloudpickle

            return cloudpickle.dumps(ref)  # type: ignore[no-any-return]
        return pickle.dumps(ref)
    except Exception as e:  # noqa: BLE001 - any pickling failure is the same user error
        why = unsendable_reason(ref.fn) if ref.fn is not None else None
        raise ObjectiveError(
            f"the objective {ref.label or ref.fn!r} cannot be sent to {into} ({why or e}); {hint}"
        ) from None


class WorkerPool(Pool):
    """Starts, feeds, watches and replaces the worker processes of one run."""

    backend = "local"
    requeue_lost = False  # a lost worker fails its trials (its code may be what killed it)

    def __init__(self, ref: ObjectiveRef, slots: Sequence[Slot], log_dir: Path) -> None:
        if not slots:
            raise WorkerError("no worker slots: give at least one device and one worker")
        self._blob = pickled_objective(
            ref, "a worker process", "create what it captures inside the objective, or run it in this process "
            "(workers=0, --in-process)"
        )
        self.ref = ref
        self.slots = list(slots)
        self.log_dir = log_dir
        self.threads = threads_per_worker(len(self.slots))
        self.workers: dict[int, Worker] = {}
        import multiprocessing

        self._ctx = multiprocessing.get_context("spawn")

    def start(self, log_dir: Path | None = None) -> None:
        if log_dir is not None:
            self.log_dir = log_dir
        for slot in self.slots:
            self._spawn(slot)

    def _spawn(self, slot: Slot) -> Worker:
        with _real_stdio(), _spawnable_main(self.ref.by_value):
            return self._spawn_process(slot)

    def _spawn_process(self, slot: Slot) -> Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        log = self.log_dir / f"worker-{slot.index}.log"
        proc = self._ctx.Process(
            target=worker_main,
            args=(child, self._blob, slot.device, self.threads, os.getpid(), str(log)),
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
        for r in ready:
            if r in by_conn:
                w = by_conn[r]
                try:
                    while w.conn.poll():
                        out.append((w, w.conn.recv()))
                except (EOFError, OSError):
                    dead.append(w)
            else:
                dead.append(by_sentinel[r])
        # A process the worker forked inherits its pipe and its sentinel, and keeps both open after the
        # worker died: ask the kernel (waitpid, through exitcode) whether the worker itself still lives.
        dead += [w for w in self.workers.values() if w.process.exitcode is not None]
        for w in dict.fromkeys(dead):
            if self.workers.get(w.slot.index) is w:
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
