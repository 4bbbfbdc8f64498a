"""Helpers of the reliability tests: a project folder with ``_rel_objectives.py`` and TOML files, the
real ``tuitune`` entry point run as a subprocess, read-only looks into the database, a TOML writer,
and polling (never fixed long sleeps: the machine is shared and slow)."""

from __future__ import annotations

import datetime as dt
import json
import math
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

HERE = Path(__file__).resolve().parent
OBJECTIVES = HERE / "_rel_objectives.py"

SPACE: dict[str, dict[str, Any]] = {"x": {"type": "float", "low": 0.0, "high": 1.0}}


def tuitune_command() -> list[str]:
    exe = Path(sys.executable).parent / "tuitune"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("tuitune")
    return [found] if found else [sys.executable, "-m", "tuitune"]


# ---------------------------------------------------------------------------------------------- TOML


def _quote(s: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped, the rest as is."""
    out = []
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _key(k: str) -> str:
    if k and all(c.isalnum() or c in "_-" for c in k) and k.isascii():
        return k
    return _quote(k)


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _quote(v)
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML for {v!r}")


def dumps_toml(doc: Mapping[str, Any]) -> str:
    """TOML text of a document: top-level tables as ``[name]`` sections, deeper ones inline."""
    lines = [f"{_key(k)} = {toml_value(v)}" for k, v in doc.items() if not isinstance(v, Mapping)]
    for k, v in doc.items():
        if isinstance(v, Mapping):
            lines.append(f"[{_key(k)}]")
            lines.extend(f"{_key(kk)} = {toml_value(vv)}" for kk, vv in v.items())
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- processes


@dataclass
class Result:
    rc: int
    out: str
    err: str

    def ok(self, traceback: bool = False) -> Result:
        """rc 0 and (unless ``traceback``: user code printed one) no traceback."""
        assert self.rc == 0, f"rc {self.rc}\nstdout:\n{self.out[-3000:]}\nstderr:\n{self.err[-3000:]}"
        assert traceback or "Traceback" not in self.err + self.out, self.err[-3000:]
        return self


class Background:
    """A process running in the background; its output goes to files."""

    def __init__(self, proc: subprocess.Popen, out: Path, err: Path) -> None:
        self.proc, self.out, self.err = proc, out, err

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait(self, timeout: float = 120) -> Result:
        rc = self.proc.wait(timeout=timeout)
        return Result(rc, self.out.read_text(errors="replace"), self.err.read_text(errors="replace"))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=60)


class Project:
    """A folder with ``_rel_objectives.py``, TOML files and a database; runs tuitune against it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db = root / "runs.db"
        shutil.copy(OBJECTIVES, root / "_rel_objectives.py")
        self.env = {
            **os.environ,
            "COLUMNS": "200",
            "TUITUNE_DB": str(root / "default-env.db"),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        self.env.pop("TUITUNE_DATA", None)

    def toml(self, filename: str, *, objective: str, max_epochs: int = 3, defaults: Mapping[str, Any] | None = None,
             space: Mapping[str, Any] | None = None, metric: str = "val_loss", direction: str = "minimize") -> Path:
        doc = {
            "name": Path(filename).stem, "description": "reliability test objective", "metric": metric,
            "direction": direction, "max_epochs": max_epochs, "objective": objective,
            "defaults": {"x": 0.5, **(defaults or {})}, "space": dict(SPACE if space is None else space),
        }
        path = self.root / filename
        path.write_text(dumps_toml(doc))
        return path

    def args(self, *args: Any, db: bool = True) -> list[str]:
        return [*tuitune_command(), *(["--db", str(self.db)] if db else []), *map(str, args)]

    def cli(self, *args: Any, db: bool = True, timeout: float = 300) -> Result:
        p = subprocess.run(self.args(*args, db=db), cwd=self.root, env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        return Result(p.returncode, p.stdout, p.stderr)

    def popen(self, *args: Any, tag: str = "bg", argv: list[str] | None = None) -> Background:
        out, err = self.root / f"{tag}.out", self.root / f"{tag}.err"
        with open(out, "w") as fo, open(err, "w") as fe:
            p = subprocess.Popen(argv or self.args(*args), cwd=self.root, env=self.env, stdout=fo, stderr=fe,
                                 stdin=subprocess.DEVNULL)
        return Background(p, out, err)

    def show(self, session: str) -> dict[str, Any]:
        r = self.cli("show", session, "--json").ok()
        return json.loads(r.out)

    # ---- read-only SQL, like an outside check ---------------------------------------------------
    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(query, params).fetchall()
        finally:
            conn.close()

    def session_exists(self, name: str) -> bool:
        try:
            return bool(self.db.exists() and self.sql("SELECT 1 FROM sessions WHERE name = ?", (name,)))
        except sqlite3.Error:
            return False

    def trials(self, session: str) -> list[dict[str, Any]]:
        rows = self.sql(
            "SELECT t.number, t.state, t.reason FROM trials t JOIN sessions s ON s.id = t.session_id"
            " WHERE s.name = ? ORDER BY t.number", (session,))
        return [{"number": n, "state": st, "reason": r} for n, st, r in rows]

    def live_epochs(self, session: str, number: int) -> list[int]:
        rows = self.sql(
            "SELECT e.epoch FROM epochs e JOIN trials t ON t.id = e.trial_id JOIN sessions s ON s.id = t.session_id"
            " WHERE s.name = ? AND t.number = ? AND e.superseded = 0 ORDER BY e.epoch", (session, number))
        return [r[0] for r in rows]

    def ckpt_dir(self, session: str) -> Path:
        return self.root / "runs.db.d" / "checkpoints" / session


def read_log(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def commits(path: Path, pid: int | None = None) -> list[tuple[int, int]]:
    """(trial, epoch) of each ``C`` line (of one process when ``pid`` is given)."""
    return [(int(x[1]), int(x[2])) for x in read_log(path)
            if x[0] == "C" and len(x) >= 4 and (pid is None or int(x[3]) == pid)]


def wait_until(cond: Callable[[], Any], timeout: float = 120, interval: float = 0.05, what: str = "") -> Any:
    end = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout} s waiting for {what or cond}")
        time.sleep(interval)


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
