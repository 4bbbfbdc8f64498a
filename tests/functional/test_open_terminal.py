"""`tuitune open` in a real terminal (tmux): it follows a session another process runs and steers it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tuitune.core.store.store import Store

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

OBJECTIVE = '''
import time

def slow(config, trial):
    for e in trial.epochs():
        time.sleep(0.1)
        trial.report(val_loss=config["x"] + 1.0 / e)
'''

PRESET = '''
name = "w"
description = "open test"
objective = "{module}:slow"
metric = "val_loss"
direction = "minimize"
max_epochs = 40
[defaults]
x = 0.5
[space]
x = {{ type = "float", low = 0.0, high = 1.0 }}
'''


def _wait(cond, what: str, limit: float = 120.0):
    end = time.monotonic() + limit
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


def test_open_follows_another_process_and_pauses_it_with_p(tmp_path: Path) -> None:
    module = f"tt_open_obj_{os.getpid()}"
    (tmp_path / f"{module}.py").write_text(OBJECTIVE)
    (tmp_path / "p.toml").write_text(PRESET.format(module=module))
    db = tmp_path / "t.db"
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    env.update(PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]), TERM="xterm-256color")
    tuitune = [sys.executable, "-m", "tuitune", "--db", str(db)]
    p = subprocess.run([*tuitune, "run", "p.toml", "--trials", "40", "--session", "live", "--devices", "cpu",
                        "--workers", "2", "--detach"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr
    sock = str(tmp_path / "tmux.sock")

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", "-S", sock, *args], capture_output=True, text=True, env=env, timeout=60).stdout

    store = None
    try:
        _wait(lambda: db.exists() and Store(db).session_exists("live") and Store(db).session("live").alive,
              "the detached session to run")
        store = Store(db)
        cmd = " ".join([*tuitune, "open", "live"])
        tmux("new-session", "-d", "-s", "t", "-x", "80", "-y", "24", "-c", str(tmp_path), cmd)
        _wait(lambda: "following session live" in tmux("capture-pane", "-p", "-t", "t"), "the dashboard to follow")
        _wait(lambda: "done so far" in tmux("capture-pane", "-p", "-t", "t"), "how far it has come")
        assert "resumed session" not in tmux("capture-pane", "-p", "-t", "t")  # it follows: nobody resumed it
        _wait(lambda: "running" in tmux("capture-pane", "-p", "-t", "t"), "a running trial on the screen")
        tmux("send-keys", "-t", "t", "p")
        _wait(lambda: store.session("live").state == "paused", "the other process to pause")
        _wait(lambda: "paused" in tmux("capture-pane", "-p", "-t", "t").splitlines()[0], "paused in the header")
        n = store.count_epochs("live")
        tmux("send-keys", "-t", "t", "p")
        try:
            _wait(lambda: store.session("live").state == "running" and store.count_epochs("live") > n, "training again")
        except AssertionError:
            import sqlite3
            print("CMDS", sqlite3.connect(db).execute("select command, done from commands").fetchall(), store.session("live"))
            print(tmux("capture-pane", "-p", "-t", "t"))
            raise
        tmux("send-keys", "-t", "t", "s")  # stop after the running trials: the session ends, resumable
        _wait(lambda: store.session("live").state == "stopped", "the other process to stop", limit=180)
        done = store.session("live").n_done
        assert 0 < done < 40
        tmux("send-keys", "-t", "t", "q")
        _wait(lambda: "t" not in tmux("list-sessions", "-F", "#{session_name}").split(), "the TUI to quit")
    finally:
        tmux("kill-server")
        rec = Store(db).session("live") if db.exists() and Store(db).session_exists("live") else None
        if rec is not None and rec.alive and rec.owner:  # never leave the detached session running
            os.kill(int(rec.owner.split("@")[0]), 9)


def test_open_follows_an_owner_that_starts_after_the_dashboard_opened(tmp_path: Path) -> None:
    # The README's `run --detach` then at once `open`: the dashboard opens on a `new` session nobody runs
    # yet; its owner starts a moment later. The dashboard must follow it, and `p` must reach it.
    module = f"tt_open_late_{os.getpid()}"
    (tmp_path / f"{module}.py").write_text(OBJECTIVE)
    (tmp_path / "p.toml").write_text(PRESET.format(module=module))
    db = tmp_path / "t.db"
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    env.update(PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]), TERM="xterm-256color")
    tuitune = [sys.executable, "-m", "tuitune", "--db", str(db)]
    create = ("from tuitune.launch import new_run; "
              f"new_run('p.toml', trials=40, session='late', db={str(db)!r}, placement={{'devices': 'cpu', 'workers': 1}})")
    subprocess.run([sys.executable, "-c", create], check=True, env=env, cwd=tmp_path, timeout=120)
    assert Store(db).session("late").state == "new"
    sock = str(tmp_path / "tmux.sock")

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", "-S", sock, *args], capture_output=True, text=True, env=env, timeout=60).stdout

    def screen() -> str:
        return tmux("capture-pane", "-p", "-t", "t")

    store = Store(db)
    try:
        tmux("new-session", "-d", "-s", "t", "-x", "120", "-y", "40", "-c", str(tmp_path), " ".join([*tuitune, "open", "late"]))
        _wait(lambda: "late" in screen() and "new" in screen().splitlines()[0], "the dashboard of the new session")
        p = subprocess.run([*tuitune, "resume", "late", "--detach"], capture_output=True, text=True, env=env,
                           cwd=tmp_path, timeout=120)
        assert p.returncode == 0, p.stderr
        _wait(lambda: "following session late" in screen(), "the dashboard to follow the owner that started later")
        _wait(lambda: store.count_epochs("late") > 0 and "running" in screen().splitlines()[0], "running in the header")
        tmux("send-keys", "-t", "t", "p")
        _wait(lambda: store.session("late").state == "paused", "the owner to pause on p")
        _wait(lambda: "paused" in screen().splitlines()[0], "paused in the header")
        tmux("send-keys", "-t", "t", "p")
        _wait(lambda: store.session("late").state == "running", "the owner to resume on p")
        tmux("send-keys", "-t", "t", "s")
        _wait(lambda: store.session("late").state == "stopped", "the owner to stop on s", limit=180)
    finally:
        tmux("kill-server")
        rec = Store(db).session("late") if db.exists() and Store(db).session_exists("late") else None
        if rec is not None and rec.alive and rec.owner:  # never leave the detached session running
            os.kill(int(rec.owner.split("@")[0]), 9)
