"""Provides RunControl: the one Runner of the app, run in a Textual thread worker, or the Follower of a
session another process runs.

The worker posts typed messages through a RunnerBridge; the UI talks to the runner only through its
thread-safe commands (pause, resume, stop after this trial, stop, abort this trial). A followed session
gets the same commands, carried to its owner by the store's commands table.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from textual.worker import Worker, WorkerState

from tuitune.core.errors import TuituneError
from tuitune.ui import messages as msg
from tuitune.ui.bridge import RunnerBridge

if TYPE_CHECKING:
    from textual.app import App

    from tuitune.core.run.follow import Follower
    from tuitune.core.run.runner import Runner
    from tuitune.core.store.store import Store
    from tuitune.launch import Launch


class RunControl:
    """Starts a Launch's Runner in a thread worker and holds it while it runs."""

    def __init__(self, app: App[Any]) -> None:
        self.app = app
        self.runner: Runner | None = None
        self.follower: Follower | None = None  # following another process's session instead of running one
        self._unfollow = threading.Event()
        self.worker: Worker[Any] | None = None
        self.session: str | None = None
        self.done = threading.Event()
        self.done.set()

    @property
    def running(self) -> bool:
        if self.worker is None or self.done.is_set():
            return False
        return self.worker.state in (WorkerState.PENDING, WorkerState.RUNNING)

    @property
    def owns_run(self) -> bool:
        """True while this app runs a session itself (False while it only follows another process's)."""
        return self.running and self.follower is None

    def stop_and_join(self, timeout: float | None = None) -> bool:
        """Stops the runner after its epoch and waits for its thread (used when the app has ended).

        A followed session goes on in its own process: only the following stops.
        """
        if self.follower is not None:
            self._unfollow.set()
        elif self.runner is not None and not self.done.is_set():
            self.runner.stop("the TUI ended")
        return self.done.wait(timeout)

    def is_running(self, session: str) -> bool:
        return self.running and self.session == session

    def start(self, launch: Launch) -> Worker[Any]:
        """Runs the launch; raises RuntimeError when a run is already going on."""
        if self.running:
            raise RuntimeError(f"session '{self.session}' is running; stop it first")
        bridge = RunnerBridge(self.app)
        self.runner = launch.runner([bridge])  # the launch carries its run limits
        self.follower = None
        self.session = launch.name
        runner, name = self.runner, launch.name
        done = self.done = threading.Event()

        def work() -> Any:
            try:
                return runner.run()
            except TuituneError as e:
                self.app.post_message(msg.RunEnded(name, "error", str(e)))
            except Exception as e:  # noqa: BLE001 - shown as a notification, never a traceback
                self.app.post_message(msg.RunEnded(name, "error", f"{type(e).__name__}: {e}"))
            finally:
                done.set()
            return None

        self.worker = self.app.run_worker(
            work,
            name=f"run {name}",
            group="runner",
            description=f"session {name}",
            thread=True,
            exit_on_error=False,
        )
        return self.worker

    def follow(self, store: Store, name: str) -> Worker[Any]:
        """Follows session ``name``, which another process runs, until it ends or ``stop_and_join``."""
        from tuitune.core.run.follow import Follower

        if self.running:
            raise RuntimeError(f"session '{self.session}' is running; stop it first")
        # A store of its own: its connections belong to the follower's thread.
        from tuitune.core.store.store import Store as StoreClass

        follower = self.follower = Follower(StoreClass(store.path, create=False), name, [RunnerBridge(self.app)])
        self.runner = None
        self.session = name
        done = self.done = threading.Event()
        unfollow = self._unfollow = threading.Event()

        def work() -> None:
            try:
                follower.follow(unfollow.is_set)
            except TuituneError as e:
                self.app.post_message(msg.RunEnded(name, "error", str(e)))
            finally:
                follower.store.close()
                done.set()

        self.worker = self.app.run_worker(
            work, name=f"follow {name}", group="runner", description=f"following {name}", thread=True,
            exit_on_error=False,
        )
        return self.worker

    # ---- commands: the runner checks them between epochs ----------------------------------------
    def toggle_pause(self) -> bool | None:
        """Pauses or resumes; returns the new paused state (None when nothing runs)."""
        if self.follower is not None and self.running:
            if self.follower.paused:
                self.follower.resume()
                return False
            self.follower.pause()
            return True
        if not self.running or self.runner is None:
            return None
        if self.runner.paused:
            self.runner.resume()
            return False
        self.runner.pause()
        return True

    def stop_after_trial(self) -> bool:
        if self.follower is not None and self.running:
            self.follower.stop_after_trial()
            return True
        if self.running and self.runner is not None:
            self.runner.stop_after_trial()
            return True
        return False

    def abort_trial(self, number: int | None = None) -> bool:
        """Aborts trial ``number`` after its epoch (None: every running one; with several workers the
        dashboard names the trial it shows)."""
        if self.follower is not None and self.running:
            running = self.follower.running_trials
            if not running or (number is not None and number not in running):
                return False
            self.follower.abort_trial(number)
            return True
        if self.running and self.runner is not None and self.runner.running_trials:
            if number is not None and number not in self.runner.running_trials:
                return False
            self.runner.abort_trial(number)
            return True
        return False

    def stop(self, reason: str = "stopped by the user") -> bool:
        if self.follower is not None and self.running:
            self.follower.stop()
            return True
        if self.running and self.runner is not None:
            self.runner.stop(reason)
            return True
        return False

    async def wait(self) -> None:
        """Waits (asynchronously: the UI stays live) for the runner's thread to end."""
        while not self.done.is_set():
            await asyncio.sleep(0.05)
