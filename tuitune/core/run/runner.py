"""Provides the Runner: the one trial loop, ask -> trial row -> objective -> tell.

The command line runs it on the main thread, the TUI in a worker thread. Commands (pause, resume,
stop after this trial, stop now, abort this trial) may be called from any thread; they take effect
between epochs. Failures of the objective are contained: the trial ends failed with its reason and
traceback stored and the session goes on, until too many fail in a row.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuitune.core import events as ev
from tuitune.core.budget import Budget, run_seconds
from tuitune.core.errors import SetupError, StoreWriteError
from tuitune.core.records import HEARTBEAT_EVERY, TrialRecord, TrialState
from tuitune.core.run.coordinator import Coordination
from tuitune.core.run.finish import TrialEnding
from tuitune.core.run.forming import JobForming, _Held, _unheld
from tuitune.core.run.inthread import InThreadPool
from tuitune.core.run.packing import Packing
from tuitune.core.run.trial import Trial
from tuitune.core.run.versions import versions
from tuitune.core.search.strategies.base import Strategy, Suggestion, Wait
from tuitune.core.store.lock import SessionLock
from tuitune.core.store.store import SessionFiles, Store
from tuitune.core.text import resume_command

if TYPE_CHECKING:
    from tuitune.core.run.protocol import (
        Answer,
        Between,
        Fail,
        Go,
        Outcome,
        Pool,
        Refill,
        Report,
        SetupFailed,
        Stop,
        Supersede,
        TrialSpec,
    )
    from tuitune.core.run.workers import Worker

log = logging.getLogger(__name__)

Objective = Callable[[dict, Trial], Any]
Listener = Callable[[ev.Event], None]


@dataclass
class _Remote:
    """A trial running in a worker process, as the coordinator follows it."""

    rec: TrialRecord
    worker: Any
    t0: float
    last_epoch: int = 0
    aborted: bool = False
    members: int = 1  # the trials of its job (a fused array's size)


@dataclass(frozen=True)
class RunResult:
    """How a run of the loop ended: ``finished``, ``stopped`` or ``failed``, and why."""

    state: str
    message: str = ""


class Runner(TrialEnding, JobForming, Packing, Coordination):
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
        pool: Pool | None = None,
        fuse: int | str = 1,
        fuse_key: Callable[[dict], Hashable | None] | None = None,
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
        self._stop_reason = "stopped by the user"
        self.files = SessionFiles(store.path, session)
        self._seed = store.session(session).seed
        self.stop_grace = stop_grace
        self._on_locked = on_locked
        self._stop_time: float | None = None
        self._active = False
        # Where trials run; None: in this thread (the same contract, one worker: the runner's own thread).
        self.pool: Pool = pool if pool is not None else InThreadPool(objective, self)
        self._aborts: set[int | None] = set()  # trials to abort (None: every running one)
        self._remote: dict[int, _Remote] = {}  # trials running in workers, by number
        self._setup_error: str | None = None
        self._said_no_checkpoint = False  # the notice that continued trials retrain from epoch 1, once a run
        self._session_state_written = False  # the run set the session 'running' (the beat may now write 'paused')
        self._rerun: list[TrialRecord] = []
        self._requeued: set[int] = set()  # trials re-queued once after their worker was lost
        # Trials one worker may train at once as one array (1: off), and what they must share (None: alone).
        # "auto": each worker says its own size when it is ready (Ready.facts["fuse"], measured on its device).
        self.fuse_auto = fuse == "auto" and not self.pool.in_thread
        self.fuse = 1 if self.pool.in_thread or self.fuse_auto else max(1, int(fuse))
        self.fuse_key = fuse_key
        self._queued: list[_Held] = []  # trials opened for an array, not started yet (forming.py)
        self._array_keys: dict[int, Hashable] = {}  # the key of each array formed, by its first trial (_join)
        self._depth: int | None = None  # how many trials to hold for arrays now (forming.py)
        self._failures = 0  # trials failed in a row (the run loop's count; an array takes no new member past the limit)
        self._state_lock = threading.Lock()
        self._budget = Budget()  # the session's time, epochs and target (read when the run starts)
        self._run_base = 0.0  # the seconds the session ran before this run
        self._run_t0: float | None = None  # when this run started (time.monotonic())
        self._spent: str | None = None  # why the budget ends this run (no new trial starts), once it does
        self._said_stay: set[str | None] = set()  # devices whose packing was said to stay as it is

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
        if number is None:
            # The trials running now, not "whatever runs from now on": with several workers there is always
            # one running, and a standing "every trial" would abort the rest of the session.
            # tuple() copies the dict's keys in one C call, so the coordinator thread cannot change it midway.
            self._aborts.update(tuple(self._remote))
        else:
            self._aborts.add(number)
        # No wake-up needed, and none that would un-pause: the serve loop answers a trial waiting between
        # epochs every round (within 0.1 s), paused or not, and an aborted one gets Stop even while paused.

    @property
    def running_trials(self) -> list[int]:
        """The numbers of the trials running now."""
        return sorted(self._remote)

    @property
    def stopping(self) -> bool:
        return self._stop_now or self._stop_after

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
        saved = time.monotonic()
        while self._active:
            try:
                with self._state_lock:
                    if self.paused != shown and self._session_state_written:
                        shown = self.paused
                        self.store.update_session(self.session, state="paused" if shown else "running")
                self._heartbeat()
                if self._budget.timeout is not None and time.monotonic() - saved >= 2.0:
                    saved = time.monotonic()
                    self._save_run_seconds()
                for command, number in self.store.take_commands(self.session):
                    self.command(command, number)
            except Exception:  # noqa: BLE001 - a missed beat is retried; the loop reports write errors
                log.debug("heartbeat failed", exc_info=True)  # the run's one-line error says why (full, read-only)
            deadline = time.monotonic() + HEARTBEAT_EVERY
            while self._active and time.monotonic() < deadline:
                time.sleep(0.05)

    def run_seconds(self) -> float:
        """The time the session has run, over all its runs (the time budget counts it)."""
        return self._run_base + (time.monotonic() - self._run_t0 if self._run_t0 is not None else 0.0)

    def _save_run_seconds(self) -> None:
        if self._run_t0 is None:
            return
        info = self.store.session(self.session).info
        self.store.update_session(self.session, info={**info, "run_seconds": round(self.run_seconds(), 3)})

    def _budget_spent(self) -> str | None:
        """Why no new run may start under the session's budget (Budget.spent, the one rule), else None."""
        return self._budget.spent(self.strategy.trials, self.strategy.direction, self.run_seconds())

    def _budget_spent_now(self) -> bool:
        """Whether the budget is spent before the next ask; once it is, nothing new starts this run."""
        spent = self._budget_spent() if self._budget else None
        if spent is not None:
            self._spent, self._rerun = spent, []
        return spent is not None

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
        self._active = True
        # Everything alive now (torch, numpy, datasets) lives for the whole run: keep it out of the
        # collections that release each trial's model, which then take microseconds, not 100+ ms.
        gc.collect()
        gc.freeze()
        beat = threading.Thread(target=self._beat, name="tuitune-heartbeat", daemon=True)
        try:
            self._heartbeat()
            beat.start()
            # Created, or checked to be the user's own (never another user's folder, never a symlink).
            self.files.make("checkpoints")
            if not self.pool.in_thread:
                self.files.make("logs")
            self.pool.start(self.files.logs)
            return self._run()
        except StoreWriteError as e:
            # The database cannot be written: stop; what was committed stays, the trial resumes later.
            self._emit(ev.SessionFinished(self.session, state="failed", message=str(e)))
            raise
        finally:
            self._active = False
            self.pool.close()
            if beat.is_alive():
                beat.join()
            if self._budget.timeout is not None:
                try:
                    self._save_run_seconds()
                except Exception:  # noqa: BLE001 - the store may be what failed; a few seconds go uncounted
                    log.exception("could not store the session's running time")
            try:
                self.store.heartbeat(self.session, alive=False)
            except Exception:  # noqa: BLE001 - a dead heartbeat reads as interrupted anyway
                log.debug("could not clear the heartbeat", exc_info=True)  # no traceback before the one-line error
            if self._lock is not None:
                self._lock.release()

    def _run(self) -> RunResult:
        store, name = self.store, self.session
        records = self._begin_run()
        self._emit(ev.SessionStarted(name, total=self.strategy.total(), resumed=bool(records), trials=tuple(records)))
        failures = 0
        result: RunResult | None = None
        exhausted = False
        try:
            while result is None:
                if not (self.stopping or (exhausted and not self._pending) or self.paused) and failures < self.max_failures:
                    failures, exhausted = self._start_free(failures, exhausted)
                if not self._remote:
                    result = self._end_of_run(failures, exhausted)
                    if result is not None:
                        break
                for rec in self._serve(0.1):
                    failures = self._failures = self._count(rec, failures)
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

    def _begin_run(self) -> list[TrialRecord]:
        """The stored trials, the strategy rebuilt from them and the interrupted ones queued to run again."""
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
        # Trials to run again before new ones (a lost Ray actor's joins them mid-run).
        self._rerun = [t for t in records if t.state == TrialState.INTERRUPTED]
        session = store.session(name)
        self._budget, self._run_base, self._run_t0 = Budget.of(session), run_seconds(session), time.monotonic()
        self._spent = None
        store.update_session(name, state="running", message=None)
        self._session_state_written = True
        return records

    @property
    def _pending(self) -> bool:
        """Trials to start that the strategy will not be asked for again (reruns, held ones)."""
        return bool(self._rerun or self._queued)

    def _start_free(self, failures: int, exhausted: bool) -> tuple[int, bool]:
        """Starts jobs on the free workers (in this thread: runs one trial to its end); the failure count and
        whether the strategy has nothing more to give, after."""
        for w in self._free_packed():
            job = self._next_job(w)
            if job is None:
                return failures, True
            if isinstance(job, Wait):
                return failures, not self._remote  # nothing runs that could end the wait
            self._dispatch(w, job)
            if self.stopping or failures >= self.max_failures:
                break
        return failures, exhausted

    def _ask(self) -> Suggestion | Wait | None:
        """The next suggestion to open: an interrupted trial, then the strategy's. None also once the session's
        budget is spent (the interrupted trials then wait for a resume)."""
        if self._spent is not None or self._budget_spent_now():
            return None
        if self._rerun:
            t = self._rerun.pop(0)
            return Suggestion(config=t.config, budget=t.budget, trial=t.number, meta=t.meta)
        return self._timed_ask()  # a free worker waits meanwhile: the run's log says how long (coordinator.py)

    def _end_of_run(self, failures: int, exhausted: bool) -> RunResult | None:
        """How the run ends now that no trial runs, or None while it goes on."""
        if self._setup_error is not None:
            raise SetupError(self._setup_error)
        if failures >= self.max_failures:
            return RunResult(
                "failed",
                f"{failures} trials in a row failed; the last: {self._last_failed}. Fix the cause, "
                f"then '{resume_command(self.session, self.store.path)}'",
            )
        if self.stopping:
            return RunResult("stopped", self._stop_reason)
        if self._spent is not None:
            return RunResult("finished", self._spent)
        if exhausted and not self._pending:
            return RunResult("finished", "")
        return None

    def _ending(self) -> None:
        """From now on the session's state is the run's final one: the heartbeat thread leaves it alone."""
        with self._state_lock:
            self._session_state_written = False
        self._park_queued()
        self._say_ask_time()

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

    def _dispatch(self, w: Worker, records: list[TrialRecord]) -> None:
        """Hands the trials of a job (opened) to worker ``w``."""
        from tuitune.core.run.protocol import Job

        self.pool.dispatch(w, Job(self._specs(w, records)))

    def _specs(self, w: Worker, records: list[TrialRecord]) -> tuple[TrialSpec, ...]:
        """What worker ``w`` needs to run each of ``records`` (opened); from now the coordinator follows them."""
        from tuitune.core.run.protocol import TrialSpec

        specs = []
        for rec in records:
            specs.append(TrialSpec(
                number=rec.number, config=dict(rec.config), budget=int(rec.budget), committed=rec.last_epoch,
                checkpoint=str(self.files.checkpoint(rec.number)), log=str(self.files.log(rec.number)),
            ))
            self._remote[rec.number] = _Remote(rec, w, time.monotonic(), last_epoch=rec.last_epoch)
            self._aborts.discard(rec.number)
        return tuple(specs)

    def _open_trial(self, sugg: Suggestion, slot: Any) -> TrialRecord:
        """The trial row of a suggestion, committed 'running', told to the strategy and announced."""
        return self._announce(self._open_row(sugg, slot), slot, continued=sugg.trial is not None, fresh=True)

    def _slot_info(self, slot: Any) -> dict:
        """What a trial's row says of where it runs (nothing in this thread, or before a worker takes it)."""
        info: dict[str, Any] = {}
        if slot is not None and not self.pool.in_thread:
            info.update(getattr(slot, "versions", None) or {})  # the worker's torch, CUDA, cuDNN
            info.update(worker=slot.slot.index, device=slot.device or slot.slot.label, pid=slot.pid)
            if slot.node is not None:
                info["node"] = slot.node
        return info

    def _open_row(self, sugg: Suggestion, slot: Any = None, *, held: bool = False) -> TrialRecord:
        """The trial row of a suggestion, committed 'running' (on ``slot``, if known; ``held``: marked as waiting
        for an array, ``info["held"]``) and told to the strategy."""
        store, name = self.store, self.session
        info = {**versions(), "seed": self._seed, **self._slot_info(slot), **({"held": True} if held else {})}
        if sugg.trial is None:
            rec = store.new_trial(name, config=sugg.config, budget=sugg.budget, meta=sugg.meta, info=info)
        else:
            rec = store.start_trial(name, sugg.trial, budget=sugg.budget, meta=sugg.meta or None)
            if held or "held" in rec.info or (slot is not None and not self.pool.in_thread):
                rec = store.finish_trial(name, rec.number, state=TrialState.RUNNING, info={**_unheld(rec.info), **info})
        self.strategy.tell(rec)
        return rec

    def _announce(self, rec: TrialRecord, slot: Any, *, continued: bool, fresh: bool) -> TrialRecord:
        """Announces an opened trial as started on ``slot``; a held one (``fresh`` False) first gets the
        worker in its row instead of its mark."""
        where = {} if fresh else self._slot_info(slot)
        if where or "held" in rec.info:
            rec = self.store.finish_trial(
                self.session, rec.number, state=TrialState.RUNNING, info={**_unheld(rec.info), **where}
            )
        self._emit(ev.TrialStarted(self.session, trial=rec, continued=continued))
        if continued and rec.last_epoch > 0:
            self._check_checkpoint(rec)
        return rec

    # ---- workers: serving their requests ------------------------------------------------------------
    def _serve(self, timeout: float) -> list[TrialRecord]:
        """Answers the workers' requests for up to ``timeout`` seconds; returns the trials that ended."""
        from tuitune.core.run import protocol as m

        ended: list[TrialRecord] = []
        now = time.monotonic()
        for w in list(self.pool.workers.values()):
            if w.waiting is not None:
                self._answer(w, self._answer_between(w))
            for number in [] if self.pool.in_thread else list(w.trials):  # in this thread: its watchdog's
                hung = self._hung_reason_of(self._remote[number], now) if number in self._remote else None
                if hung is not None:
                    ended.extend(self._lost(w, hung, cut_off=True))
                    break
        for w, msg in self.pool.wait(timeout):
            if isinstance(msg, m.Died):
                ended.extend(self._worker_died(w, msg.how))
            elif isinstance(msg, m.Done):
                ended.append(self._remote_done(w, msg.trial, msg.outcome))
            elif isinstance(msg, m.Ready):
                w.ready, w.pid = True, msg.pid
                w.fuse = max(1, int(msg.facts.get("fuse") or 1))  # its own array size under --fuse auto
                w.versions = dict(msg.facts.get("versions") or {})  # its torch (this process may have none)
                log.info("session %s: worker %s ready: %s", self.session, w.slot.index, msg.facts.get("phases"))
            elif isinstance(msg, m.SetupFailed):
                self._worker_setup_failed(w, msg)
            else:
                self._answer(w, self._reply(w, msg))
        return ended

    def _answer(self, w: Worker, reply: Answer | None) -> None:
        if reply is not None:
            self.pool.answer(w, reply)

    def _reply(self, w: Worker, msg: Between | Report | Supersede | Refill) -> Answer | None:
        """A trial's request between epochs, of a report, of a supersede or an array's for new members, carried
        out: the answer it gets now (None: later, once resumed)."""
        from tuitune.core.run.protocol import Between, Ok, Refill, Report

        if isinstance(msg, Refill):
            return self._join(w, msg)
        if isinstance(msg, Between):
            w.waiting = msg
            return self._answer_between(w)
        if isinstance(msg, Report):
            r = self._remote[msg.trial]
            self.store.add_epoch(self.session, msg.trial, msg.epoch, msg.row)
            r.last_epoch = max(r.last_epoch, msg.epoch)
            self._emit(ev.EpochReported(
                self.session, number=msg.trial, epoch=msg.epoch, budget=r.rec.budget, metrics=dict(msg.row)
            ))
            self._pack(w, msg.probe)
            return Ok()
        self.store.supersede_epochs(self.session, msg.trial, msg.after)
        return Ok()

    def _hung_reason_of(self, r: _Remote, now: float) -> str | None:
        if self.trial_timeout is not None and now - r.t0 > self.trial_timeout + self.stop_grace:
            return f"timed out after {self.trial_timeout:g} s (the trial time limit)"
        if self._stop_time is not None and now - self._stop_time > self.stop_grace:
            return "stop"
        return None

    def _answer_between(self, w: Worker) -> Go | Stop | Fail | None:
        """The answer to a worker's request between two epochs of one of its trials (None while paused)."""
        from tuitune.core.run.protocol import Fail, Go, Stop

        assert w.waiting is not None
        number = w.waiting.trial
        r = self._remote[number]
        reply: Go | Stop | Fail
        if self._stop_now or number in self._aborts:  # with a pool, "abort all" was expanded to the numbers
            if number in self._aborts:
                r.aborted = True
            reply = Stop()
        elif self.paused:
            return None  # answered on resume
        elif self.trial_timeout is not None and time.monotonic() - r.t0 > self.trial_timeout:
            reply = Fail(f"timed out after {self.trial_timeout:g} s (the trial time limit)")
        else:
            reply = Go()
        w.waiting = None
        return reply

    def _remote_done(self, w: Worker, number: int, outcome: Outcome) -> TrialRecord:
        if number in w.trials:
            w.trials.remove(number)
        if not w.trials:
            w.waiting = None
        self._aborts.discard(number)
        err = outcome.error
        w.poisoned = w.poisoned or outcome.poisoned
        if w.poisoned and not w.trials:
            self.pool.restart(w)
        if err is not None and err.kind == "hung":  # in this thread: the watchdog cut it off
            return self._lost_trial(number, err.reason, cut_off=True, trace=err.trace, info=outcome.info)
        r = self._remote.pop(number)
        info = {**r.rec.info, **outcome.info}
        if err is not None and err.kind == "setup":
            self._setup_error = err.reason
            self._stop_after = True
            return self._finish_record(number, TrialState.INTERRUPTED, None, err.reason, err.trace, info)
        if err is not None:  # failed (re-queued instead when out of memory shrinks a --workers auto packing)
            log_hint = "" if self.pool.in_thread else f"; its output: {self.files.log(number)}"
            return self._failed_or_requeued(w, number, err, err.reason + log_hint, info)
        state, value, reason = self._judge_run(number, r.rec.budget, outcome.last_epoch, outcome.returned, r.aborted)
        return self._finish_record(number, state, value, reason, None, info)

    def _worker_died(self, w: Worker, how: str) -> list[TrialRecord]:
        if not w.ready:
            # It died before it could load the objective: a crash at import, unless it said why first (its
            # SetupFailed, read in the same batch as its death, is the reason to keep).
            from tuitune.core.run.protocol import SetupFailed

            if self._setup_error is None:
                self._worker_setup_failed(w, SetupFailed(f"the worker process ended ({how}) while starting", "", False))
            return []
        if not w.trials:  # an idle worker died: replace it
            self._replace(w)
            return []
        return self._lost(w, how, cut_off=False)

    def _replace(self, w: Worker) -> None:
        """Ends ``w``, and starts a fresh worker in its slot unless the run is stopping."""
        if self.stopping:
            self.pool.retire(w)
        else:
            self.pool.restart(w)

    def _lost(self, w: Worker, how: str, *, cut_off: bool) -> list[TrialRecord]:
        """A worker that died or hangs with trials: each of them ends, the worker is replaced (unless stopping)."""
        numbers = list(w.trials)
        self._replace(w)
        return [self._lost_trial(number, how, cut_off=cut_off) for number in numbers if number in self._remote]

    def _lost_trial(
        self, number: int, how: str, *, cut_off: bool, trace: str | None = None, info: dict | None = None
    ) -> TrialRecord:
        """A trial whose worker died or was cut off (``how``: why; ``stop``: long after a stop)."""
        r = self._remote.pop(number)
        info = {**r.rec.info, **(info or {})}
        if how == "stop" or (self._stop_now and not cut_off):
            reason = (
                f"{self._stop_reason}; its epoch was still running {self.stop_grace:g} s later and was cut off "
                f"at epoch {r.last_epoch + 1}" if how == "stop" else f"{self._stop_reason}; its worker ended ({how})"
            )
            return self._finish_record(number, TrialState.INTERRUPTED, None, reason, None, info)
        if cut_off:
            return self._finish_record(number, TrialState.FAILED, None, how, trace, info)
        if self.pool.requeue_lost and number not in self._requeued:
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

    def _worker_setup_failed(self, w: Worker, msg: SetupFailed) -> None:
        label = self.pool.ref.label or "the objective"
        if msg.ours:
            self._setup_error = msg.message.split(": ", 1)[1] if ": " in msg.message else msg.message
        else:
            self._setup_error = (
                f"a worker process could not load {label} ({msg.message}). Define the objective at the top level of "
                "an importable module, guard a script's own code with if __name__ == '__main__':, or run it in "
                "this process (workers=0, or --in-process)"
            )
        self.pool.retire(w)
        self._stop_after = True
        if msg.trace:
            log.debug("worker setup failed:\n%s", msg.trace)

    def _interrupt_remote(self, reason: str) -> None:
        """Ends every trial running in a worker as interrupted (the run itself is ending)."""
        for number, r in list(self._remote.items()):
            try:
                self._finish_record(number, TrialState.INTERRUPTED, None, reason, None, dict(r.rec.info))
            except Exception:  # noqa: BLE001 - the store may be what failed; resume interrupts them anyway
                log.exception("could not mark trial %s interrupted", number)
        self._remote.clear()
