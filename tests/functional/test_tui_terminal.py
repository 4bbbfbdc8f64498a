"""The TUI in a real terminal (tmux): ``tuitune run`` shows rows, quits cleanly, and ``tuitune resume`` continues."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.support.tui import make_preset
from tuitune.core.records import TrialState
from tuitune.core.store.store import Store

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
TUITUNE = str(Path(sys.executable).with_name("tuitune"))


class Tmux:
    def __init__(self, cwd: Path) -> None:
        self.socket = f"tuitune-test-{uuid.uuid4().hex[:8]}"
        self.cwd = cwd

    def _run(self, *args: str) -> str:
        return subprocess.run([TMUX, "-L", self.socket, *args], capture_output=True, text=True, check=False).stdout

    def start(self, name: str, command: str) -> None:
        env = f"TERM=xterm-256color TUITUNE_DB={self.cwd / 't.db'}"
        self._run(
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "120",
            "-y",
            "40",
            "-c",
            str(self.cwd),
            f"env {env} {command}; echo EXITED $?; sleep 60",
        )

    def screen(self, name: str) -> str:
        return self._run("capture-pane", "-p", "-t", name)

    def keys(self, name: str, *keys: str) -> None:
        self._run("send-keys", "-t", name, *keys)

    def wait(self, name: str, cond, timeout: float = 40.0, what: str = "") -> str:
        end = time.monotonic() + timeout
        while True:
            text = self.screen(name)
            if cond(text):
                return text
            if time.monotonic() > end:
                raise AssertionError(f"timed out waiting for {what}; the screen:\n{text}")
            time.sleep(0.2)

    def quit(self, name: str) -> str:
        self.keys(name, "q")
        # q quits at once, or asks first while a run trains: whichever shows, however slow the machine
        text = self.wait(name, lambda s: "Stop and quit" in s or "EXITED" in s, what="the app to exit or ask")
        if "Stop and quit" in text:
            self.keys(name, "y")
        return self.wait(name, lambda s: "EXITED" in s, what="the app to exit")

    def kill(self) -> None:
        self._run("kill-server")


def test_run_quit_and_resume_in_a_real_terminal(tmp_path):
    make_preset(tmp_path, sleep=0.2, epochs=4, name="fast")
    tmux = Tmux(tmp_path)
    try:
        tmux.start("run", f"{TUITUNE} run fast.toml --trials 4 --session term")
        tmux.wait("run", lambda s: s.count("complete") >= 1, what="a complete row")
        out = tmux.quit("run")
        assert "EXITED 0" in out and "Traceback" not in out
        store = Store(tmp_path / "t.db")
        trials = store.trials("term")
        assert trials and trials[0].state == TrialState.COMPLETE
        assert all(t.state != TrialState.RUNNING for t in trials)
        done_before = sum(t.state == TrialState.COMPLETE for t in trials)

        tmux.start("resume", f"{TUITUNE} resume term")
        # The leaderboard is filled from the database at once, then the run goes on to the end.
        tmux.wait("resume", lambda s: s.count("complete") >= done_before, timeout=20, what="stored rows")
        tmux.wait("resume", lambda s: "session finished" in s, what="the session to finish")
        out = tmux.quit("resume")
        assert "EXITED 0" in out
        assert [t.state for t in store.trials("term")] == [TrialState.COMPLETE] * 4
    finally:
        tmux.kill()
