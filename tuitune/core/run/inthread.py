"""Provides ``InThreadPool``: the objective runs in the coordinator's own thread (``workers=0``, for pdb,
and for objectives that cannot be sent to a process), behind the same ``Pool`` contract as workers.

``dispatch`` runs the trial to its end right there; its requests (between epochs, reports) go straight to
the coordinator's answers, and its ``Done`` comes out of the next ``wait``. What only this pool needs
lives here: a watchdog that interrupts an objective stuck inside one epoch (past the time limit, or long
after a stop) by raising ``_Hung`` in the thread, and the hook that turns errors in threads the objective
started into its trial's failure.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback as tb
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tuitune.core.errors import StoreWriteError
from tuitune.core.run import protocol as m
from tuitune.core.run.protocol import Between, Done, Fail, Failure, Job, Outcome, Pool, Report, Stop
from tuitune.core.run.trial import Trial, TrialFailed, plain_return


class _Hung(BaseException):
    """Raised inside a hung objective by the watchdog (a BaseException so user code's
    ``except Exception`` does not swallow it)."""


def _inject(thread_id: int, exc: type[BaseException] | None) -> None:
    """Raises ``exc`` in another thread at its next bytecode (None cancels a pending one)."""
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else None)


class _Host:
    """The Trial's host in this thread: each request is answered by the coordinator at once."""

    def __init__(self, pool: InThreadPool, w: Any) -> None:
        self.pool = pool
        self.w = w

    def _between_epochs(self, trial: Trial) -> bool:
        c = self.pool.coordinator
        reply = c._reply(self.w, Between(trial.number))
        while reply is None:  # paused
            c._running.wait(0.1)
            reply = c._answer_between(self.w)
        if isinstance(reply, Stop):
            return False
        if isinstance(reply, Fail):
            raise TrialFailed(reply.reason)
        self.pool.check_threads()
        return True

    def _report(self, trial: Trial, epoch: int, metrics: dict[str, float]) -> None:
        self.pool.coordinator._reply(self.w, Report(trial.number, epoch, dict(metrics)))

    def _supersede(self, number: int, after: int) -> None:
        self.pool.coordinator._reply(self.w, m.Supersede(number, after))


class InThreadPool(Pool):
    """One worker: the coordinator's own thread. ``coordinator`` is the Runner (its answers, limits, stop)."""

    in_thread = True

    def __init__(self, objective: Callable[..., Any], coordinator: Any) -> None:
        from tuitune.core.run.workers import Slot, Worker

        self.objective = objective
        self.coordinator = coordinator
        self.ref = None
        self.workers = {0: Worker(Slot(0, None), None, None, ready=True, pid=os.getpid())}
        self._done: list[tuple[Any, Any]] = []
        self.current: Trial | None = None
        self._in_objective = False
        self._inject_lock = threading.Lock()
        self._thread_id: int | None = None
        self._hung_reason: str | None = None
        self._thread_errors: list[tuple[str, str]] = []
        self._wake_signal: signal.Signals | None = None
        self._old_handler: Any = None
        self._old_excepthook: Any = None
        self._active = False

    # ---- the contract ----------------------------------------------------------------------------
    def start(self, log_dir: Path | None = None) -> None:
        self._thread_id = threading.get_ident()
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGUSR2"):
            self._wake_signal = signal.SIGUSR2
            self._old_handler = signal.signal(signal.SIGUSR2, self._on_wake)
        self._old_excepthook = threading.excepthook
        threading.excepthook = self._excepthook
        self._active = True
        threading.Thread(target=self._watch, name="tuitune-watchdog", daemon=True).start()

    def close(self, grace: float = 2.0) -> None:
        self._active = False
        if self._old_excepthook is not None:
            threading.excepthook = self._old_excepthook
        if self._wake_signal is not None:
            signal.signal(self._wake_signal, self._old_handler if self._old_handler is not None else signal.SIG_DFL)
            self._wake_signal = None

    def dispatch(self, w: Any, job: Job) -> None:
        """Runs the job's trial to its end, here (one trial: arrays train in workers)."""
        self._assign(w, job)
        for spec in job.specs:
            self._done.append((w, Done(spec.number, self._run(w, spec))))

    def wait(self, timeout: float) -> list[tuple[Any, Any]]:
        if self._done:
            out, self._done = self._done, []
            return out
        self.coordinator._running.wait(timeout)  # nothing runs: paused, until resumed
        return []

    def answer(self, w: Any, reply: Any) -> None:
        """Answers are returned to the trial's host directly: nothing is pending here."""

    def kill(self, w: Any) -> None:
        """The coordinator's own thread is never killed."""

    def _spawn(self, slot: Any) -> Any:
        return self.workers[0]

    # ---- one trial -------------------------------------------------------------------------------
    def _run(self, w: Any, spec: m.TrialSpec) -> Outcome:
        from tuitune.core.records import TrialRecord, TrialState
        from tuitune.core.run.memory import release_memory
        from tuitune.core.run.workers import _failure

        rec = TrialRecord(
            number=spec.number, state=TrialState.RUNNING, config=dict(spec.config), budget=spec.budget,
            epochs=({"epoch": spec.committed},) if spec.committed else (),
        )
        trial = Trial(_Host(self, w), rec, Path(spec.checkpoint))
        self._thread_errors = []
        self._hung_reason = None
        self.current = trial
        returned: Any = None
        error: Failure | None = None
        t0 = time.monotonic()
        try:
            try:
                self._in_objective = True
                returned = plain_return(self.objective(dict(spec.config), trial))
            finally:
                with self._inject_lock:
                    self._in_objective = False
                    if self._hung_reason is not None:
                        _inject(threading.get_ident(), None)  # cancel one not yet delivered
            self.check_threads()
        except (StoreWriteError, KeyboardInterrupt):
            raise  # the run ends: what was committed stays, the trial resumes later
        except _Hung:
            error = Failure("hung", self._hung_reason or "stop", tb.format_exc())
        except BaseException as e:  # noqa: BLE001 - SystemExit in user code fails the trial, not the session
            error, _ = _failure(e, tb.format_exc(), spec.checkpoint)
        finally:
            self.current = None
        out = Outcome(returned=returned, last_epoch=trial.last_epoch, info=dict(trial.info), error=error)
        del trial
        release_memory(time.monotonic() - t0)
        return out

    def check_threads(self) -> None:
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
        c = self.coordinator
        while self._active:
            time.sleep(0.1)
            trial = self.current
            if trial is None or not self._in_objective:
                continue
            now = time.monotonic()
            reason = None
            if c.trial_timeout is not None and now - trial._t0 > c.trial_timeout + 1.0:
                reason = f"timed out after {c.trial_timeout:g} s (the trial time limit)"
            elif c._stop_time is not None and now - c._stop_time > c.stop_grace:
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
