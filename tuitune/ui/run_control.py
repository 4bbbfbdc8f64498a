"""Provides RunControl: the one Runner of the app, run in a Textual thread worker.

The worker posts typed messages through a RunnerBridge; the UI talks to the runner only through its
thread-safe commands (pause, resume, stop after this trial, stop, abort this trial).
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

    from tuitune.core.runner import Runner
    from tuitune.launch import Launch


class RunControl:
    """Starts a Launch's Runner in a thread worker and holds it while it runs."""

    def __init__(self, app: App[Any]) -> None:
        self.app = app
        self.runner: Runner | None = None
        self.worker: Worker[Any] | None = None
        self.session: str | None = None
        self.done = threading.Event()
        self.done.set()

    @property
    def running(self) -> bool:
        if self.worker is None or self.done.is_set():
            return False
        return self.worker.state in (WorkerState.PENDING, WorkerState.RUNNING)

    def stop_and_join(self, timeout: float | None = None) -> bool:
        """Stops the runner after its epoch and waits for its thread (used when the app has ended)."""
        if self.runner is not None and not self.done.is_set():
            self.runner.stop("stopped: the TUI ended")
        return self.done.wait(timeout)

    def is_running(self, session: str) -> bool:
        return self.running and self.session == session

    def start(self, launch: Launch) -> Worker[Any]:
        """Runs the launch; raises RuntimeError when a run is already going on."""
        if self.running:
            raise RuntimeError(f"session '{self.session}' is running; stop it first")
        bridge = RunnerBridge(self.app)
        self.runner = launch.runner([bridge])  # the launch carries its run limits
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

    # ---- commands: the runner checks them between epochs ----------------------------------------
    def toggle_pause(self) -> bool | None:
        """Pauses or resumes; returns the new paused state (None when nothing runs)."""
        if not self.running or self.runner is None:
            return None
        if self.runner.paused:
            self.runner.resume()
            return False
        self.runner.pause()
        return True

    def stop_after_trial(self) -> bool:
        if self.running and self.runner is not None:
            self.runner.stop_after_trial()
            return True
        return False

    def abort_trial(self) -> bool:
        if self.running and self.runner is not None and self.runner.current is not None:
            self.runner.abort_trial()
            return True
        return False

    def stop(self, reason: str = "stopped by the user") -> bool:
        if self.running and self.runner is not None:
            self.runner.stop(reason)
            return True
        return False

    async def wait(self) -> None:
        """Waits (asynchronously: the UI stays live) for the runner's thread to end."""
        while not self.done.is_set():
            await asyncio.sleep(0.05)
