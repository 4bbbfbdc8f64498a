"""Provides the Runner: the one trial loop, ask -> trial row -> objective -> tell.

The command line runs it on the main thread, the TUI in a worker thread. Commands (pause, resume,
stop after this trial, stop now, abort this trial) may be called from any thread; they take effect
between epochs. Failures of the objective are contained: the trial ends failed with its reason and
traceback stored and the session goes on, until too many fail in a row.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import platform
import signal
import sys
import threading
import time
import traceback as tb
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuitune.core import events as ev
from tuitune.core.errors import SetupError, StoreWriteError
from tuitune.core.lock import SessionLock
from tuitune.core.memory import is_out_of_memory, release_memory
from tuitune.core.records import HEARTBEAT_EVERY, TrialRecord, TrialState, best_of
from tuitune.core.store import Store, files_dir, resume_command
from tuitune.core.strategies.base import Strategy, Suggestion, Wait
from tuitune.core.trial import Trial, TrialFailed

if TYPE_CHECKING:
    from tuitune.core.workers import Worker, WorkerPool

log = logging.getLogger(__name__)

Objective = Callable[[dict, Trial], Any]
Listener = Callable[[ev.Event], None]


class _TrialTimeout(TrialFailed):
    pass


@dataclass
class _Remote:
    """A trial running in a worker process, as the coordinator follows it."""

    rec: TrialRecord
    worker: Any
    t0: float
    last_epoch: int = 0
    aborted: bool = False


class _Hung(BaseException):
    """Raised inside a hung objective by the watchdog (a BaseException so user code's
    ``except Exception`` does not swallow it)."""


def _inject(thread_id: int, exc: type[BaseException] | None) -> None:
    """Raises ``exc`` in another thread at its next bytecode (None cancels a pending one)."""
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else None)


@dataclass(frozen=True)
class RunResult:
    """How a run of the loop ended: ``finished``, ``stopped`` or ``failed``, and why."""

    state: str
    message: str = ""


def versions() -> dict[str, Any]:
    """Python, tuitune and (when loaded) torch, CUDA and cuDNN versions, for each trial's record."""
    from tuitune import __version__

    out: dict[str, Any] = {"python": platform.python_version(), "tuitune": __version__}
    torch = sys.modules.get("torch")
    if torch is None:
        # Installed, though this process never imported it (a CPU run's coordinator does not): its build's
        # own version file, plain constants read in a millisecond (importing torch takes seconds), says what
        # torch.__version__ would ("2.4.1+cu121", not the distribution's "2.4.1") and the CUDA it was built for.
        try:
            built = _torch_version_file()
            out["torch"], out["cuda"] = built.__version__, built.cuda
        except Exception:  # noqa: BLE001
            try:
                from importlib.metadata import version

                out["torch"] = version("torch")
            except Exception:  # noqa: BLE001
                out["torch"] = None
    if torch is not None:
        out["torch"] = torch.__version__
        out["cuda"] = torch.version.cuda
        try:
            out["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        except Exception:  # noqa: BLE001
            out["cudnn"] = None
    return out


def _torch_version_file() -> Any:
    """``torch/version.py`` of the installed torch, run on its own (it imports only ``typing``)."""
    import importlib.util

    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("torch is not installed")
    path = os.path.join(next(iter(spec.submodule_search_locations)), "version.py")
    vspec = importlib.util.spec_from_file_location("_tuitune_torch_version", path)
    if vspec is None or vspec.loader is None:
        raise ImportError(path)
    module = importlib.util.module_from_spec(vspec)
    vspec.loader.exec_module(module)
    return module


class Runner:
    """Runs a session's trials.

    Args:
        store: the database.
        session: the session's name (it must exist in the store).
        objective: ``objective(config, trial) -> float | None``.
        strategy: the session's strategy object.
        max_failures: the session stops after this many trials in a row failed.
        trial_timeout: seconds a trial may run (checked between epochs); None for no limit.
        listeners: called with each event, on the runner's thread.
        lock: take the session's run lock (one process per session).
        stop_grace: seconds an epoch may still run after ``stop()`` before the watchdog interrupts it.
    """

    def __init__(
        self,
        store: Store,
        session: str,
        objective: Objective,
        strategy: Strategy,
        *,
        max_failures: int = 3,
        trial_timeout: float | None = None,
        listeners: Iterable[Listener] = (),
        lock: bool = True,
        stop_grace: float = 10.0,
        on_locked: Callable[[], None] | None = None,
        pool: WorkerPool | None = None,
    ) -> None:
        self.store = store
        self.session = session
        self.objective = objective
        self.strategy = strategy
        self.max_failures = max_failures
        self.trial_timeout = trial_timeout
        self.listeners: list[Listener] = list(listeners)
        self._lock = SessionLock(store.path, session) if lock else None
        self._running = threading.Event()
        self._running.set()
        self._stop_now = False
        self._stop_after = False
        self._abort = False
        self._stop_reason = "stopped by the user"
        self.current: Trial | None = None
        self._ckpt_dir = files_dir(store.path) / "checkpoints" / session
        self._seed = store.session(session).seed
        self.stop_grace = stop_grace
        self._on_locked = on_locked
        self._stop_time: float | None = None
        self._in_objective = False
        self._inject_lock = threading.Lock()
        self._thread_id: int | None = None
        self._hung_reason: str | None = None
        self._thread_errors: list[tuple[str, str]] = []
        self._active = False
        self.pool = pool  # None: the objective runs in the runner's own thread
        self._log_dir = files_dir(store.path) / "logs" / session
        self._aborts: set[int | None] = set()  # trials to abort (None: every running one)
        self._remote: dict[int, _Remote] = {}  # trials running in workers, by number
        self._setup_error: str | None = None
        self._said_no_checkpoint = False  # the notice that continued trials retrain from epoch 1, once a run
        self._session_state_written = False  # the run set the session 'running' (the beat may now write 'paused')
        self._rerun: list[TrialRecord] = []
        self._requeued: set[int] = set()  # trials re-queued once after their worker was lost
        self._state_lock = threading.Lock()

    # ---- commands (any thread) -------------------------------------------------------------------
    def pause(self) -> None:
        """Waits before the next epoch until ``resume()``."""
        if self._running.is_set():
            self._running.clear()
            self._emit(ev.SessionPaused(self.session, paused=True))

    def resume(self) -> None:
        if not self._running.is_set():
            self._running.set()
            self._emit(ev.SessionPaused(self.session, paused=False))

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def stop_after_trial(self) -> None:
        """Lets the current trial finish, then ends the run (the session stays resumable)."""
        self._stop_after = True

    def stop(self, reason: str = "stopped by the user") -> None:
        """Ends the run after the current epoch; the trial is interrupted and resumes later."""
        self._stop_reason = reason
        self._stop_now = True
        if self._stop_time is None:
            self._stop_time = time.monotonic()
        self._running.set()

    def abort_trial(self, number: int | None = None) -> None:
        """Ends a running trial after its current epoch (pruned, 'aborted by the user'); the session goes on.

        ``number`` None: every running trial (with one worker, the current one).
        """
        if number is None or (self.current is not None and self.current.number == number):
            self._abort = True
        if number is None and self.pool is not None:
            # The trials running now, not "whatever runs from now on": with several workers there is always
            # one running, and a standing "every trial" would abort the rest of the session.
            # tuple() copies the dict's keys in one C call, so the coordinator thread cannot change it midway.
            self._aborts.update(tuple(self._remote))
        else:
            self._aborts.add(number)
        self._running.set()

    @property
    def running_trials(self) -> list[int]:
        """The numbers of the trials running now."""
        if self.pool is None:
            return [self.current.number] if self.current is not None else []
        return sorted(self._remote)

    @property
    def stopping(self) -> bool:
        return self._stop_now or self._stop_after

    # ---- called by Trial ---------------------------------------------------------------------------
    def _between_epochs(self, trial: Trial) -> bool:
        if trial.number in self._aborts:
            self._abort = True
        while not self._running.wait(0.1):
            if self._stop_now or self._abort:
                break
        if self._stop_now or self._abort:
            return False
        if self.trial_timeout is not None and time.monotonic() - trial._t0 > self.trial_timeout:
            raise _TrialTimeout(f"timed out after {self.trial_timeout:g} s (the trial time limit)")
        self._check_threads()
        return True

    def _check_threads(self) -> None:
        if self._thread_errors:
            reason, trace = self._thread_errors[0]
            raise TrialFailed(reason, trace)

    def _excepthook(self, args: threading.ExceptHookArgs) -> None:
        """Errors in threads the objective started fail its trial (at its next epoch or its end)."""
        if self.current is not None and args.exc_type is not SystemExit:
            name = args.thread.name if args.thread else "?"
            trace = "".join(tb.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
            self._thread_errors.append((f"error in thread '{name}': {args.exc_type.__name__}: {args.exc_value}", trace))
            return  # stored with the trial; printing it would tear the progress display
        self._old_excepthook(args)

    def _on_wake(self, signum: int, frame: Any) -> None:
        if self._hung_reason is not None and self._in_objective:
            raise _Hung

    def _watch(self) -> None:
        """Interrupts an objective stuck inside one epoch: past the time limit, or long after a stop."""
        while self._active:
            time.sleep(0.1)
            trial = self.current
            if trial is None or not self._in_objective:
                continue
            now = time.monotonic()
            reason = None
            if self.trial_timeout is not None and now - trial._t0 > self.trial_timeout + 1.0:
                reason = f"timed out after {self.trial_timeout:g} s (the trial time limit)"
            elif self._stop_time is not None and now - self._stop_time > self.stop_grace:
                reason = "stop"
            if reason is None:
                continue
            with self._inject_lock:
                if self._in_objective and self._hung_reason is None and self._thread_id is not None:
                    self._hung_reason = reason
                    _inject(self._thread_id, _Hung)
                    if self._wake_signal is not None:
                        # A blocking C call (sleep, a read) only returns to Python for a signal.
                        signal.pthread_kill(self._thread_id, self._wake_signal)

    def _report(self, trial: Trial, epoch: int, metrics: dict[str, float]) -> None:
        self.store.add_epoch(self.session, trial.number, epoch, metrics)
        self._emit(ev.EpochReported(self.session, number=trial.number, epoch=epoch, budget=trial.budget, metrics=dict(metrics)))

    def _supersede(self, number: int, after: int) -> None:
        self.store.supersede_epochs(self.session, number, after)

    def _emit(self, event: ev.Event) -> None:
        for fn in self.listeners:
            try:
                fn(event)
            except Exception:  # a broken display never stops training
                log.exception("listener %r failed on %s", fn, type(event).__name__)

    # ---- liveness and commands from other terminals -----------------------------------------------
    def _heartbeat(self) -> None:
        import socket

        self.store.heartbeat(self.session, owner=f"{os.getpid()}@{socket.gethostname()}")

    def _beat(self) -> None:
        """Writes the heartbeat and applies queued commands, on a thread of its own, while the run lasts."""
        shown = False  # the paused state as the store has it, for other terminals
        while self._active:
            try:
                with self._state_lock:
                    if self.paused != shown and self._session_state_written:
                        shown = self.paused
                        self.store.update_session(self.session, state="paused" if shown else "running")
                self._heartbeat()
                for command, number in self.store.take_commands(self.session):
                    self.command(command, number)
            except Exception:  # noqa: BLE001 - a missed beat is retried; the loop reports write errors
                log.exception("heartbeat failed")
            deadline = time.monotonic() + HEARTBEAT_EVERY
            while self._active and time.monotonic() < deadline:
                time.sleep(0.05)

    def command(self, name: str, trial: int | None = None) -> None:
        """Applies a command by name (as stored by ``Store.add_command``)."""
        if name == "pause":
            self.pause()
        elif name == "resume":
            self.resume()
        elif name == "stop_after_trial":
            self.stop_after_trial()
        elif name == "stop":
            self.stop("stopped from another terminal")
        elif name == "abort":
            self.abort_trial(trial)

    # ---- the loop ----------------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Runs trials until the strategy finishes, the user stops, or too many fail in a row."""
        if self._lock is not None:
            self._lock.acquire()
        self._thread_id = threading.get_ident()
        self._wake_signal = None
        old_handler = None
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGUSR2"):
            self._wake_signal = signal.SIGUSR2
            old_handler = signal.signal(signal.SIGUSR2, self._on_wake)
        self._old_excepthook = threading.excepthook
        threading.excepthook = self._excepthook
        self._active = True
        # Everything alive now (torch, numpy, datasets) lives for the whole run: keep it out of the
        # collections that release each trial's model, which then take microseconds, not 100+ ms.
        gc.collect()
        gc.freeze()
        watchdog = threading.Thread(target=self._watch, name="tuitune-watchdog", daemon=True)
        watchdog.start()
        beat = threading.Thread(target=self._beat, name="tuitune-heartbeat", daemon=True)
        try:
            self._heartbeat()
            beat.start()
            if self.pool is not None:
                self._log_dir.mkdir(parents=True, exist_ok=True)
                self.pool.log_dir = self._log_dir
                self.pool.start()
            return self._run()
        except StoreWriteError as e:
            # The database cannot be written: stop; what was committed stays, the trial resumes later.
            self._emit(ev.SessionFinished(self.session, state="failed", message=str(e)))
            raise
        finally:
            self._active = False
            if self.pool is not None:
                self.pool.close()
            if beat.is_alive():
                beat.join()
            try:
                self.store.heartbeat(self.session, alive=False)
            except Exception:  # noqa: BLE001 - a dead heartbeat reads as interrupted anyway
                log.exception("could not clear the heartbeat")
            threading.excepthook = self._old_excepthook
            if self._wake_signal is not None:
                signal.signal(self._wake_signal, old_handler if old_handler is not None else signal.SIG_DFL)
            if self._lock is not None:
                self._lock.release()

    def _run(self) -> RunResult:
        store, name = self.store, self.session
        if self._on_locked is not None:
            self._on_locked()  # writes that must wait until this process owns the session
        self._clean_temp_checkpoints()
        store.interrupt_running(name)
        records = store.trials(name)
        self.strategy.restore(records)
        # Decisions the strategy made but the store never got (a crash between tell and settle).
        decisions = self.strategy.settle()
        if decisions:
            store.set_trial_states(name, decisions)
            records = store.trials(name)
            self.strategy.restore(records)
        self._rerun = [t for t in records if t.state == TrialState.INTERRUPTED]
        rerun = self._rerun  # trials to run again before new ones (a lost Ray actor's joins it mid-run)
        store.update_session(name, state="running", message=None)
        self._session_state_written = True
        self._emit(ev.SessionStarted(name, total=self.strategy.total(), resumed=bool(records), trials=tuple(records)))
        failures = 0
        result = RunResult("finished", "")
        exhausted = False
        try:
            while True:
                if not (self.stopping or (exhausted and not rerun) or self.paused) and failures < self.max_failures:
                    for slot in self._free_slots():
                        sugg: Suggestion | Wait | None
                        if rerun:
                            t = rerun.pop(0)
                            sugg = Suggestion(config=t.config, budget=t.budget, trial=t.number, meta=t.meta)
                        else:
                            sugg = self.strategy.ask()
                        if sugg is None:
                            exhausted = True
                            break
                        if isinstance(sugg, Wait):
                            exhausted = not self._remote  # nothing runs that could end the wait
                            break
                        rec = self._start(sugg, slot)
                        if rec is not None:  # it ran in this thread, to its end
                            failures = self._count(rec, failures)
                        if self.stopping or failures >= self.max_failures:
                            break
                if not self._remote:
                    if self._setup_error is not None:
                        raise SetupError(self._setup_error)
                    if failures >= self.max_failures:
                        result = RunResult(
                            "failed",
                            f"{failures} trials in a row failed; the last: {self._last_failed}. Fix the cause, "
                            f"then '{resume_command(name, store.path)}'",
                        )
                        break
                    if self.stopping:
                        result = RunResult("stopped", self._stop_reason)
                        break
                    if exhausted and not rerun:
                        break
                    if self.pool is None:
                        if self.paused:
                            self._running.wait(0.1)
                        continue
                for rec in self._serve(0.1):
                    failures = self._count(rec, failures)
        except KeyboardInterrupt:
            self._interrupt_remote("interrupted (Ctrl+C)")
            result = RunResult("stopped", "interrupted")
            self._ending()
            store.update_session(name, state=result.state, message=result.message)
            self._emit(ev.SessionFinished(name, state=result.state, message=result.message))
            raise
        except StoreWriteError:
            raise
        except BaseException as e:  # the strategy or the store refused: never leave the session 'running'
            self._interrupt_remote("the session stopped: " + (str(e) or type(e).__name__))
            msg = str(e) or type(e).__name__
            self._ending()
            try:
                store.update_session(name, state="failed", message=msg)
            finally:
                self._emit(ev.SessionFinished(name, state="failed", message=msg))
            raise
        self._ending()
        store.update_session(name, state=result.state, message=result.message or None)
        self._emit(ev.SessionFinished(name, state=result.state, message=result.message))
        return result

    def _ending(self) -> None:
        """From now on the session's state is the run's final one: the heartbeat thread leaves it alone."""
        with self._state_lock:
            self._session_state_written = False

    _last_failed: str | None = None

    def _count(self, rec: TrialRecord, failures: int) -> int:
        """The consecutive-failure count after ``rec`` ended."""
        if failures >= self.max_failures:
            # The run is giving up. With several workers, trials started before the last failure may still
            # end; one that completes must not undo the decision (the session would go on starting trials).
            return failures
        if rec.state == TrialState.FAILED:
            self._last_failed = rec.reason
            return failures + 1
        if rec.state in (TrialState.COMPLETE, TrialState.PAUSED):
            return 0
        return failures

    def _free_slots(self) -> list[Any]:
        if self.pool is None:
            return [None]
        return self.pool.free()

    def _start(self, sugg: Suggestion, slot: Any) -> TrialRecord | None:
        """Starts a suggestion: in this thread (returns its finished record) or on a worker (returns None)."""
        if self.pool is None:
            return self._run_trial(sugg)
        rec = self._open_trial(sugg, slot)
        from tuitune.core.workers import TrialSpec

        spec = TrialSpec(
            number=rec.number, config=dict(rec.config), budget=int(rec.budget), committed=rec.last_epoch,
            checkpoint=str(self._ckpt_dir / f"{rec.number}.pt"), log=str(self._log_dir / f"{rec.number}.log"),
        )
        self._remote[rec.number] = _Remote(rec, slot, time.monotonic(), last_epoch=rec.last_epoch)
        self._aborts.discard(rec.number)
        self.pool.dispatch(slot, spec)  # type: ignore[union-attr]
        return None

    def _open_trial(self, sugg: Suggestion, slot: Any) -> TrialRecord:
        """The trial row of a suggestion, committed 'running', told to the strategy and announced."""
        store, name = self.store, self.session
        info = {**versions(), "seed": self._seed}
        if slot is not None:
            info.update(worker=slot.slot.index, device=slot.device or slot.slot.label, pid=slot.pid)
            if slot.node is not None:
                info["node"] = slot.node
        if sugg.trial is None:
            rec = store.new_trial(name, config=sugg.config, budget=sugg.budget, meta=sugg.meta, info=info)
        else:
            rec = store.start_trial(name, sugg.trial, budget=sugg.budget, meta=sugg.meta or None)
            if slot is not None:
                rec = store.finish_trial(
                    name, rec.number, state=TrialState.RUNNING, info={**rec.info, **info}
                )
        self.strategy.tell(rec)
        self._emit(ev.TrialStarted(name, trial=rec, continued=sugg.trial is not None))
        if sugg.trial is not None and rec.last_epoch > 0:
            self._check_checkpoint(rec)
        return rec

    def _check_checkpoint(self, rec: TrialRecord) -> None:
        """A trial that continues (a promotion, a re-run) with no checkpoint trains again from epoch 1:
        said once a run, with the fix, instead of costing the epochs silently."""
        if self._said_no_checkpoint or (self._ckpt_dir / f"{rec.number}.pt").exists():
            return
        self._said_no_checkpoint = True
        text = (
            f"trial {rec.number} continues from epoch {rec.last_epoch} but its objective saved no checkpoint, so it "
            f"trains again from epoch 1 (and so will every promoted trial): call trial.checkpoint(state) each epoch "
            "and start with state = trial.restore()"
        )
        log.info("session %s: %s", self.session, text)  # the event is what the user sees (a warning would tear a screen)
        self._emit(ev.Notice(self.session, text=text))

    # ---- workers: serving their requests ------------------------------------------------------------
    def _serve(self, timeout: float) -> list[TrialRecord]:
        """Answers the workers' requests for up to ``timeout`` seconds; returns the trials that ended."""
        assert self.pool is not None
        ended: list[TrialRecord] = []
        now = time.monotonic()
        for w in list(self.pool.workers.values()):
            if w.waiting is not None:
                self._answer_between(w)
            r = self._remote.get(w.trial) if w.trial is not None else None
            if r is not None:
                hung = self._hung_reason_of(r, now)
                if hung is not None:
                    ended.append(self._lost(w, hung, cut_off=True))
        for w, msg in self.pool.wait(timeout):
            if msg is None:
                ended.extend(self._worker_died(w))
                continue
            kind = msg[0]
            if kind == "ready":
                w.ready, w.pid = True, msg[1]
            elif kind == "setup-failed":
                self._worker_setup_failed(w, msg)
            elif kind == "between":
                w.waiting = msg
                self._answer_between(w)
            elif kind == "report":
                _, number, epoch, row = msg
                r = self._remote[number]
                self.store.add_epoch(self.session, number, epoch, row)
                r.last_epoch = max(r.last_epoch, epoch)
                self._emit(ev.EpochReported(self.session, number=number, epoch=epoch, budget=r.rec.budget, metrics=dict(row)))
                self.pool.answer(w, "ok")
            elif kind == "supersede":
                self.store.supersede_epochs(self.session, msg[1], msg[2])
                self.pool.answer(w, "ok")
            elif kind == "done":
                ended.append(self._remote_done(w, msg[1], msg[2]))
        return ended

    def _hung_reason_of(self, r: _Remote, now: float) -> str | None:
        if self.trial_timeout is not None and now - r.t0 > self.trial_timeout + self.stop_grace:
            return f"timed out after {self.trial_timeout:g} s (the trial time limit)"
        if self._stop_time is not None and now - self._stop_time > self.stop_grace:
            return "stop"
        return None

    def _answer_between(self, w: Worker) -> None:
        assert self.pool is not None and w.waiting is not None
        number = w.waiting[1]
        r = self._remote[number]
        if self._stop_now or number in self._aborts:  # with a pool, "abort all" was expanded to the numbers
            if number in self._aborts:
                r.aborted = True
            w.waiting = None
            self.pool.answer(w, "stop")
            return
        if self.paused:
            return  # answered on resume
        if self.trial_timeout is not None and time.monotonic() - r.t0 > self.trial_timeout:
            w.waiting = None
            self.pool.answer(w, ("fail", f"timed out after {self.trial_timeout:g} s (the trial time limit)"))
            return
        w.waiting = None
        self.pool.answer(w, "go")

    def _remote_done(self, w: Worker, number: int, outcome: dict[str, Any]) -> TrialRecord:
        assert self.pool is not None
        r = self._remote.pop(number)
        w.trial, w.waiting = None, None
        self._aborts.discard(number)
        info = {**r.rec.info, **outcome.get("info", {})}
        err = outcome.get("error")
        log_hint = f"; its output: {self._log_dir / f'{number}.log'}"
        if outcome.get("poisoned"):
            self.pool.restart(w)
        if err is not None and err["kind"] == "setup":
            self._setup_error = err["reason"]
            self._stop_after = True
            return self._finish_record(number, TrialState.INTERRUPTED, None, err["reason"], err["trace"], info)
        if err is not None:
            return self._finish_record(number, TrialState.FAILED, None, err["reason"] + log_hint, err["trace"], info)
        returned = outcome.get("returned")
        reason: str | None
        if isinstance(returned, dict):
            state, value, reason = TrialState.FAILED, None, (
                f"the objective returned {returned['bad']}; return a float or None"
            )
        else:
            state, value, reason = self._judge_run(number, r.rec.budget, outcome["last_epoch"], returned, r.aborted)
        return self._finish_record(number, state, value, reason, None, info)

    def _worker_died(self, w: Worker) -> list[TrialRecord]:
        assert self.pool is not None
        how = self.pool.death(w)
        if not w.ready:
            # It died before it could load the objective, with nothing to say: a crash at import.
            self._worker_setup_failed(w, ("setup-failed", f"the worker process ended ({how}) while starting", "", False))
            return []
        if w.trial is None:  # an idle worker died: replace it
            if self.stopping:
                self.pool.kill(w)
                self.pool.workers.pop(w.slot.index, None)
            else:
                self.pool.restart(w)
            return []
        return [self._lost(w, how, cut_off=False)]

    def _lost(self, w: Worker, how: str, *, cut_off: bool) -> TrialRecord:
        """A worker that died or hangs with a trial: the trial ends, the worker is replaced (unless stopping)."""
        assert self.pool is not None
        number = w.trial
        assert number is not None
        self.pool.kill(w)
        if self.stopping:
            self.pool.workers.pop(w.slot.index, None)
        else:
            self.pool.restart(w)
        r = self._remote.pop(number)
        info = {**r.rec.info}
        if how == "stop" or (self._stop_now and not cut_off):
            reason = (
                f"{self._stop_reason}; its epoch was still running {self.stop_grace:g} s later and was cut off "
                f"at epoch {r.last_epoch + 1}" if how == "stop" else f"{self._stop_reason}; its worker ended ({how})"
            )
            return self._finish_record(number, TrialState.INTERRUPTED, None, reason, None, info)
        if cut_off:
            return self._finish_record(number, TrialState.FAILED, None, how, None, info)
        if getattr(self.pool, "requeue_lost", False) and number not in self._requeued:
            # A lost node or actor is rarely the trial's fault: run it again (from its checkpoint), once.
            self._requeued.add(number)
            rec = self._finish_record(
                number, TrialState.INTERRUPTED, None, f"its worker was lost ({how}); re-queued", None, info
            )
            self._rerun.append(rec)
            return rec
        return self._finish_record(
            number, TrialState.FAILED, None,
            f"its worker process was {how}" if how.startswith("killed") else f"its worker process ended ({how})",
            None, info,
        )

    def _worker_setup_failed(self, w: Worker, msg: tuple[Any, ...]) -> None:
        assert self.pool is not None
        _, message, trace, ours = msg
        label = self.pool.ref.label or "the objective"
        if ours:
            self._setup_error = message.split(": ", 1)[1] if ": " in message else message
        else:
            self._setup_error = (
                f"a worker process could not load {label} ({message}). Define the objective at the top level of "
                "an importable module, guard a script's own code with if __name__ == '__main__':, or run it in "
                "this process (workers=0, or --in-process)"
            )
        self.pool.kill(w)
        self.pool.workers.pop(w.slot.index, None)
        self._stop_after = True
        if trace:
            log.debug("worker setup failed:\n%s", trace)

    def _interrupt_remote(self, reason: str) -> None:
        """Ends every trial running in a worker as interrupted (the run itself is ending)."""
        if self.pool is None:
            return
        for number, r in list(self._remote.items()):
            try:
                self._finish_record(number, TrialState.INTERRUPTED, None, reason, None, dict(r.rec.info))
            except Exception:  # noqa: BLE001 - the store may be what failed; resume interrupts them anyway
                log.exception("could not mark trial %s interrupted", number)
        self._remote.clear()

    def _run_trial(self, sugg: Suggestion) -> TrialRecord:
        self._abort = False
        self._aborts.discard(None)
        info = {**versions(), "seed": self._seed}
        rec = self._open_trial(sugg, None)
        self._aborts.discard(rec.number)
        trial = Trial(self, rec, self._ckpt_dir / f"{rec.number}.pt")
        self._thread_errors = []
        self._hung_reason = None
        self.current = trial
        state, value, reason, trace = TrialState.COMPLETE, None, None, None
        returned: Any = None
        t0 = time.monotonic()
        try:
            try:
                self._in_objective = True
                returned = self.objective(dict(rec.config), trial)
            finally:
                with self._inject_lock:
                    self._in_objective = False
                    if self._hung_reason is not None:
                        _inject(threading.get_ident(), None)  # cancel one not yet delivered
            self._check_threads()
        except StoreWriteError:
            self.current = None
            raise
        except SetupError as e:
            # No trial can get past this: stop now, and run this trial again once it is fixed.
            self.current = None
            self._finish_record(rec.number, TrialState.INTERRUPTED, None, str(e), tb.format_exc(), info)
            raise
        except _Hung:
            if self._hung_reason == "stop":
                self.current = None
                return self._finish_record(
                    rec.number, TrialState.INTERRUPTED, None,
                    f"{self._stop_reason}; its epoch was still running {self.stop_grace:g} s later "
                    f"and was cut off at epoch {trial.last_epoch + 1}", None, info,
                )
            state, reason, trace = TrialState.FAILED, self._hung_reason, tb.format_exc()
        except KeyboardInterrupt:
            self._finish(trial, TrialState.INTERRUPTED, None, "interrupted (Ctrl+C)", None, info)
            raise
        except TrialFailed as e:
            state, reason, trace = TrialState.FAILED, e.reason, e.trace or tb.format_exc()
        except BaseException as e:  # noqa: BLE001 - SystemExit in user code fails the trial, not the session
            trace = tb.format_exc()
            if is_out_of_memory(e):
                state, reason = TrialState.FAILED, "out of memory"
            else:
                msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
                state, reason = TrialState.FAILED, f"{type(e).__name__}: {msg}" if msg else type(e).__name__
        finally:
            self.current = None
        if state != TrialState.FAILED:
            state, value, reason = self._judge(trial, returned)
        info.update(trial.info)
        del trial
        release_memory(time.monotonic() - t0)
        return self._finish_record(rec.number, state, value, reason, trace, info)

    def _judge(self, trial: Trial, returned: Any) -> tuple[TrialState, float | None, str | None]:
        """The state, value and reason of a run that ended without an exception."""
        return self._judge_run(trial.number, trial.budget, trial.last_epoch, returned, self._abort)

    def _judge_run(
        self, number: int, budget: int, reached: int, returned: Any, aborted: bool
    ) -> tuple[TrialState, float | None, str | None]:
        if aborted:
            return TrialState.PRUNED, self._value_from_epochs(number), "aborted by the user"
        if self._stop_now and reached < budget and returned is None:
            return TrialState.INTERRUPTED, None, f"{self._stop_reason} at epoch {reached}"
        if returned is not None:
            if isinstance(returned, bool) or not isinstance(returned, (int, float)) and not hasattr(returned, "item"):
                return TrialState.FAILED, None, (
                    f"the objective returned {type(returned).__name__} {returned!r:.40}; return a float or None"
                )
            value = float(returned.item() if hasattr(returned, "item") else returned)
            if not math.isfinite(value):
                return TrialState.FAILED, None, f"the objective returned {value}"
        else:
            best = self._value_from_epochs(number)
            if best is None:
                metric = self.strategy.metric
                return TrialState.FAILED, None, (
                    f"the objective reported no '{metric}' and returned nothing; call "
                    f"trial.report({metric}=...) each epoch or return the value"
                )
            value = best
        return TrialState.COMPLETE, value, None

    def _value_from_epochs(self, number: int) -> float | None:
        rec = self.store.trial(self.session, number)
        return best_of(rec.metric_values(self.strategy.metric), self.strategy.direction)

    def _finish(self, trial: Trial, state: TrialState, value, reason, trace, info) -> TrialRecord:
        return self._finish_record(trial.number, state, value, reason, trace, {**info, **trial.info})

    def _finish_record(
        self, number: int, state: TrialState, value: float | None, reason: str | None, trace: str | None, info: dict
    ) -> TrialRecord:
        store, name = self.store, self.session
        if state == TrialState.COMPLETE:
            # The strategy decides whether a finished run completes its trial or waits at a rung.
            pending = store.trial(name, number)
            probe = TrialRecord(
                number=number, state=TrialState.COMPLETE, config=pending.config, value=value,
                budget=pending.budget, epochs=pending.epochs, meta=pending.meta,
            )
            state = TrialState(self.strategy.state_after(probe))
        full_info = {**store.trial(name, number).info, **info, **versions()}
        rec = store.finish_trial(name, number, state=state, value=value, reason=reason, traceback=trace, info=full_info)
        if state.is_finished():
            self._drop_checkpoint(number)
        self.strategy.tell(rec)
        changed: list[TrialRecord] = []
        decisions = self.strategy.settle()
        if decisions:
            store.set_trial_states(name, decisions)
            for n in decisions:
                r = store.trial(name, n)
                self.strategy.tell(r)
                changed.append(r)
                if r.state.is_finished():
                    self._drop_checkpoint(n)
            rec = store.trial(name, number)
        self._emit(ev.TrialFinished(name, trial=rec, changed=tuple(c for c in changed if c.number != number)))
        return rec

    def _drop_checkpoint(self, number: int) -> None:
        for p in [self._ckpt_dir / f"{number}.pt", *self._ckpt_dir.glob(f".{number}.pt.*.tmp")]:
            try:
                p.unlink(missing_ok=True)
            except OSError:
                pass

    def _clean_temp_checkpoints(self) -> None:
        """Removes half-written checkpoints of killed processes (never loaded: only renamed files are)."""
        if self._ckpt_dir.exists():
            for p in self._ckpt_dir.glob(".*.tmp"):
                try:
                    p.unlink()
                except OSError:
                    pass
