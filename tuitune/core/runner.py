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
import platform
import signal
import sys
import threading
import time
import traceback as tb
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tuitune.core import events as ev
from tuitune.core.errors import SetupError, StoreWriteError
from tuitune.core.lock import SessionLock
from tuitune.core.records import TrialRecord, TrialState, best_of
from tuitune.core.store import Store, files_dir, resume_command
from tuitune.core.strategies.base import Strategy, Suggestion, Wait
from tuitune.core.trial import Trial, TrialFailed

log = logging.getLogger(__name__)

Objective = Callable[[dict, Trial], Any]
Listener = Callable[[ev.Event], None]


class _TrialTimeout(TrialFailed):
    pass


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


def is_out_of_memory(exc: BaseException) -> bool:
    """True for torch's out-of-memory errors (CUDA, MPS, or the CPU allocator)."""
    name = type(exc).__name__
    if name == "OutOfMemoryError":
        return True
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        "out of memory" in str(exc).lower() or isinstance(exc, MemoryError)
    )


def release_memory(seconds: float = float("inf")) -> None:
    """Frees what a finished trial left: reference cycles (a model and its optimizer) and the CUDA cache.

    A full collection costs milliseconds on a large heap: it is skipped after trials so short
    (synthetic objectives) that it would dominate them, unless CUDA memory is in use.
    """
    torch = sys.modules.get("torch")
    cuda = False
    if torch is not None:
        try:
            cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
        except Exception:  # noqa: BLE001 - best effort
            cuda = False
    if cuda or seconds > 0.5:
        gc.collect()  # cheap once the long-lived heap is frozen (Runner.run calls gc.freeze)
    if cuda and torch is not None:
        torch.cuda.empty_cache()
    if torch is not None and hasattr(torch, "mps") and getattr(torch.backends, "mps", None) is not None:
        if torch.backends.mps.is_available():  # Apple GPUs keep a cache too
            gc.collect()
            torch.mps.empty_cache()


def versions() -> dict[str, Any]:
    """Python, tuitune and (when loaded) torch, CUDA and cuDNN versions, for each trial's record."""
    from tuitune import __version__

    out: dict[str, Any] = {"python": platform.python_version(), "tuitune": __version__}
    torch = sys.modules.get("torch")
    if torch is None:
        try:
            from importlib.metadata import version

            out["torch"] = version("torch")  # installed, though this objective never imported it
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

    def abort_trial(self) -> None:
        """Ends the current trial after its current epoch (pruned, 'aborted by the user'); the session goes on."""
        self._abort = True
        self._running.set()

    @property
    def stopping(self) -> bool:
        return self._stop_now or self._stop_after

    # ---- called by Trial ---------------------------------------------------------------------------
    def _between_epochs(self, trial: Trial) -> bool:
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
        try:
            return self._run()
        except StoreWriteError as e:
            # The database cannot be written: stop; what was committed stays, the trial resumes later.
            self._emit(ev.SessionFinished(self.session, state="failed", message=str(e)))
            raise
        finally:
            self._active = False
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
        rerun = [t for t in records if t.state == TrialState.INTERRUPTED]
        store.update_session(name, state="running", message=None)
        self._emit(ev.SessionStarted(name, total=self.strategy.total(), resumed=bool(records), trials=tuple(records)))
        failures = 0
        result = RunResult("finished", "")
        try:
            while True:
                while not self._running.wait(0.1):
                    if self._stop_now:
                        break
                if self._stop_now or self._stop_after:
                    result = RunResult("stopped", self._stop_reason)
                    break
                sugg: Suggestion | Wait | None
                if rerun:
                    t = rerun.pop(0)
                    sugg = Suggestion(config=t.config, budget=t.budget, trial=t.number, meta=t.meta)
                else:
                    sugg = self.strategy.ask()
                if sugg is None or isinstance(sugg, Wait):
                    break
                rec = self._run_trial(sugg)
                if rec.state == TrialState.FAILED:
                    failures += 1
                    if failures >= self.max_failures:
                        result = RunResult(
                            "failed",
                            f"{failures} trials in a row failed; the last: {rec.reason}. Fix the cause, "
                            f"then '{resume_command(name, store.path)}'",
                        )
                        break
                elif rec.state in (TrialState.COMPLETE, TrialState.PAUSED):
                    failures = 0
        except KeyboardInterrupt:
            result = RunResult("stopped", "interrupted")
            store.update_session(name, state=result.state, message=result.message)
            self._emit(ev.SessionFinished(name, state=result.state, message=result.message))
            raise
        except StoreWriteError:
            raise
        except BaseException as e:  # the strategy or the store refused: never leave the session 'running'
            msg = str(e) or type(e).__name__
            try:
                store.update_session(name, state="failed", message=msg)
            finally:
                self._emit(ev.SessionFinished(name, state="failed", message=msg))
            raise
        store.update_session(name, state=result.state, message=result.message or None)
        self._emit(ev.SessionFinished(name, state=result.state, message=result.message))
        return result

    def _run_trial(self, sugg: Suggestion) -> TrialRecord:
        store, name = self.store, self.session
        self._abort = False
        info = {**versions(), "seed": self._seed}
        if sugg.trial is None:
            rec = store.new_trial(name, config=sugg.config, budget=sugg.budget, meta=sugg.meta, info=info)
        else:
            rec = store.start_trial(name, sugg.trial, budget=sugg.budget, meta=sugg.meta or None)
        self.strategy.tell(rec)
        self._emit(ev.TrialStarted(name, trial=rec, continued=sugg.trial is not None))
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
        reached = trial.last_epoch
        if self._abort:
            return TrialState.PRUNED, self._value_from_epochs(trial.number), "aborted by the user"
        if self._stop_now and reached < trial.budget and returned is None:
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
            best = self._value_from_epochs(trial.number)
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
