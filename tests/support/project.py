"""Provides a project folder for tests that run the real ``tuitune`` entry point as a subprocess: TOML
files written with tomli-w, the objectives module copied beside them (imported as a user's module is),
read-only looks into the database, background processes, and polling (never fixed sleeps: the machine
is shared and may be busy)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w

TESTS = Path(__file__).resolve().parent.parent
WORKERS_ENV = "TUITUNE_TEST_WORKERS"


def test_workers() -> int:
    """How many worker processes the sessions of these tests run with (``pytest --workers N``; default 1)."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if not raw:
        return 1
    try:
        n = int(raw)
    except ValueError:
        raise pytest.UsageError(f"{WORKERS_ENV}={raw!r}: give a whole number >= 1") from None
    if n < 1:
        raise pytest.UsageError(f"{WORKERS_ENV}={raw!r}: give a whole number >= 1")
    return n


test_workers.__test__ = False  # type: ignore[attr-defined]  # not a test, whatever its name


def with_workers(argv: list[str], workers: int) -> list[str]:
    """``argv`` with ``--workers N`` added to a ``run`` command that does not say where its trials run.

    (``resume`` keeps the workers the session was started with.)
    """
    if workers == 1 or "run" not in argv or any(a in argv for a in ("--workers", "--in-process", "--detach")):
        return argv
    return [*argv, "--workers", str(workers)]


def tuitune_command() -> list[str]:
    """The installed entry point next to this interpreter, else ``python -m tuitune``."""
    exe = Path(sys.executable).parent / "tuitune"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("tuitune")
    return [found] if found else [sys.executable, "-m", "tuitune"]


def dumps_toml(doc: Mapping[str, Any]) -> str:
    """TOML text of a document (tomli-w: every string, key, float and date escaped as TOML wants)."""
    return tomli_w.dumps(dict(doc))


@dataclass
class Result:
    """How a command ended: its exit code and what it printed."""

    rc: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]

    def ok(self, traceback: bool = False) -> Result:
        """rc 0 and (unless ``traceback``: user code printed one) no traceback."""
        assert self.rc == 0, f"rc {self.rc}\nstdout:\n{self.out[-3000:]}\nstderr:\n{self.err[-3000:]}"
        assert traceback or "Traceback" not in self.err + self.out, self.err[-3000:]
        return self

    def assert_user_error(self, *needles: str) -> str:
        """Exit code != 0, exactly one line on stderr, no traceback; returns that line."""
        assert self.rc != 0, f"expected a failure, got rc 0\nstdout:\n{self.out}\nstderr:\n{self.err}"
        assert "Traceback" not in self.err + self.out, self.err
        assert len(self.err_lines) == 1, f"expected one line on stderr, got:\n{self.err}"
        line = self.err_lines[0]
        assert line.startswith("tuitune: error:"), line
        for n in needles:
            assert n.lower() in line.lower(), f"{n!r} not in {line!r}"
        return line


class Background:
    """A process running in the background; its output goes to files."""

    def __init__(self, proc: subprocess.Popen, out: Path, err: Path) -> None:
        self.proc, self.out, self.err = proc, out, err

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 120) -> Result:
        rc = self.proc.wait(timeout=timeout)
        return Result(rc, self.out.read_text(errors="replace"), self.err.read_text(errors="replace"))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=60)


def wait_until(cond: Callable[[], Any], timeout: float = 120, interval: float = 0.05, what: str = "") -> Any:
    """Polls ``cond`` until it returns something truthy; fails the test after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout} s waiting for {what or cond}")
        time.sleep(interval)


class Project:
    """A folder with an objectives module, TOML files and a database; runs tuitune against it.

    Subclasses name the objectives module and the default space and defaults of their TOML files.
    """

    objectives: Path = TESTS / "functional" / "_objectives.py"
    default_space: Mapping[str, Any] = {
        "x": {"type": "float", "low": 0.0, "high": 1.0},
        "units": {"type": "int", "low": 4, "high": 64},
        "act": {"type": "choice", "values": ["relu", "tanh"]},
    }
    default_defaults: Mapping[str, Any] = {"x": 0.5, "units": 16, "act": "relu", "tag": "synthetic"}
    default_objective = "_objectives:quadratic"
    default_name: str | None = "synth"  # None: the file's stem

    def __init__(self, root: Path, workers: int | None = None) -> None:
        self.root = root
        self.workers = test_workers() if workers is None else workers  # of the sessions that `run` starts
        self.db = root / "runs.db"
        shutil.copy(self.objectives, root / self.objectives.name)
        self.env = {
            **os.environ,
            "COLUMNS": "200",
            "TUITUNE_DB": str(root / "default-env.db"),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        self.env.pop("TUITUNE_DATA", None)

    # ---- files -------------------------------------------------------------------------------
    def toml(
        self,
        filename: str = "synth.toml",
        *,
        objective: str | None = None,
        name: str | None = None,
        metric: str = "val_loss",
        direction: str = "minimize",
        max_epochs: int = 3,
        space: Mapping[str, Any] | None = None,
        defaults: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Path:
        """Writes a preset TOML and returns its path."""
        doc: dict[str, Any] = {
            "name": name or self.default_name or Path(filename).stem,
            "description": "synthetic objective of the tests",
            "metric": metric,
            "direction": direction,
            "max_epochs": max_epochs,
            "objective": objective or self.default_objective,
            **dict(extra or {}),
            "defaults": {**self.default_defaults, **(defaults or {})},
            "space": dict(self.default_space if space is None else space),
        }
        path = self.root / filename
        path.write_text(dumps_toml(doc))
        return path

    # ---- running -----------------------------------------------------------------------------
    def args(self, *args: Any, db: bool = True) -> list[str]:
        return with_workers([*tuitune_command(), *(["--db", str(self.db)] if db else []), *map(str, args)],
                            self.workers)

    def cli(self, *args: Any, db: bool = True, timeout: float = 300, cwd: Path | None = None) -> Result:
        """Runs the real entry point to completion (cwd: the project folder unless given)."""
        p = subprocess.run(
            self.args(*args, db=db), cwd=cwd or self.root, env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )
        return Result(p.returncode, p.stdout, p.stderr)

    def popen(self, *args: Any, tag: str = "bg", argv: list[str] | None = None) -> Background:
        out, err = self.root / f"{tag}.out", self.root / f"{tag}.err"
        with open(out, "w") as fo, open(err, "w") as fe:
            argv = with_workers(argv, self.workers) if argv else self.args(*args)
            p = subprocess.Popen(argv, cwd=self.root, env=self.env, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL)
        return Background(p, out, err)

    def show(self, session: str) -> dict[str, Any]:
        return json.loads(self.cli("show", session, "--json").ok().out)

    def wait_until(self, cond: Callable[[], Any], timeout: float = 120, what: str = "") -> Any:
        return wait_until(cond, timeout=timeout, what=what)

    # ---- reading the database directly (read-only, like an outside check) -------------------
    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(query, params).fetchall()
        finally:
            conn.close()

    def session_names(self) -> list[str]:
        if not self.db.exists():
            return []
        return [r[0] for r in self.sql("SELECT name FROM sessions ORDER BY id")]

    def session_exists(self, name: str) -> bool:
        try:
            return bool(self.db.exists() and self.sql("SELECT 1 FROM sessions WHERE name = ?", (name,)))
        except sqlite3.Error:
            return False

    def trials(self, session: str) -> list[dict[str, Any]]:
        if not self.db.exists():
            return []
        rows = self.sql(
            "SELECT t.number, t.state, t.config, t.value, t.budget, t.reason, t.meta FROM trials t"
            " JOIN sessions s ON s.id = t.session_id WHERE s.name = ? ORDER BY t.number",
            (session,),
        )
        return [
            {"number": n, "state": st, "config": json.loads(c), "value": v, "budget": b, "reason": r,
             "meta": json.loads(m or "{}")}
            for n, st, c, v, b, r, m in rows
        ]

    def live_epochs(self, session: str, number: int) -> list[int]:
        rows = self.sql(
            "SELECT e.epoch FROM epochs e JOIN trials t ON t.id = e.trial_id JOIN sessions s ON s.id = t.session_id"
            " WHERE s.name = ? AND t.number = ? AND e.superseded = 0 ORDER BY e.epoch",
            (session, number),
        )
        return [r[0] for r in rows]

    def ckpt_dir(self, session: str) -> Path:
        return self.root / "runs.db.d" / "checkpoints" / session


class ReliabilityProject(Project):
    """The reliability tests' project: their objectives module, a one-parameter space."""

    objectives = TESTS / "reliability" / "_rel_objectives.py"
    default_space = {"x": {"type": "float", "low": 0.0, "high": 1.0}}
    default_defaults = {"x": 0.5}
    default_objective = "_rel_objectives:slow"
    default_name = None


def read_log(path: Path) -> list[list[str]]:
    """The whitespace-split lines of a log file an objective appended to (none when it is missing)."""
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def commits(path: Path, pid: int | None = None) -> list[tuple[int, int]]:
    """(trial, epoch) of each ``C`` line (of one process when ``pid`` is given)."""
    return [(int(x[1]), int(x[2])) for x in read_log(path)
            if x[0] == "C" and len(x) >= 4 and (pid is None or int(x[3]) == pid)]


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (works for processes that are not our children)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("State:"):
                    return "Z" not in line.split()[1]
    except OSError:
        return False
    return True


def vm_rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None
