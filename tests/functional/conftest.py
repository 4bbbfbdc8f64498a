"""Fixtures of the command-line tests: a project folder with the synthetic objectives and TOML files,
the real ``tuitune`` entry point run as a subprocess, and ``tuitune.cli.main`` run in-process."""

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

HERE = Path(__file__).resolve().parent
OBJECTIVES = HERE / "_objectives.py"


def tuitune_command() -> list[str]:
    """The installed entry point next to this interpreter, else ``python -m tuitune``."""
    exe = Path(sys.executable).parent / "tuitune"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("tuitune")
    return [found] if found else [sys.executable, "-m", "tuitune"]


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


DEFAULT_SPACE: dict[str, dict[str, Any]] = {
    "x": {"type": "float", "low": 0.0, "high": 1.0},
    "units": {"type": "int", "low": 4, "high": 64},
    "act": {"type": "choice", "values": ["relu", "tanh"]},
}
DEFAULT_DEFAULTS: dict[str, Any] = {"x": 0.5, "units": 16, "act": "relu", "tag": "synthetic"}


@dataclass
class Result:
    rc: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]

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


class Project:
    """A folder with ``_objectives.py``, TOML files and a database; runs tuitune against it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db = root / "runs.db"
        shutil.copy(OBJECTIVES, root / "_objectives.py")
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
        objective: str = "_objectives:quadratic",
        name: str = "synth",
        metric: str = "val_loss",
        direction: str = "minimize",
        max_epochs: int = 3,
        space: Mapping[str, Any] | None = None,
        defaults: Mapping[str, Any] | None = None,
        extra: str = "",
    ) -> Path:
        space = DEFAULT_SPACE if space is None else space
        defaults = {**DEFAULT_DEFAULTS, **(defaults or {})}
        lines = [
            f"name = {_toml_value(name)}",
            'description = "synthetic objective of the functional tests"',
            f"metric = {_toml_value(metric)}",
            f"direction = {_toml_value(direction)}",
            f"max_epochs = {max_epochs}",
            f"objective = {_toml_value(objective)}",
            extra,
            "[defaults]",
            *(f"{k} = {_toml_value(v)}" for k, v in defaults.items()),
            "[space]",
            *(f"{k} = {_toml_value(v)}" for k, v in space.items()),
        ]
        path = self.root / filename
        path.write_text("\n".join(lines) + "\n")
        return path

    # ---- running -----------------------------------------------------------------------------
    def args(self, *args: Any, db: bool = True) -> list[str]:
        return [*tuitune_command(), *(["--db", str(self.db)] if db else []), *map(str, args)]

    def cli(self, *args: Any, db: bool = True, timeout: float = 180, cwd: Path | None = None) -> Result:
        """Runs the real entry point to completion (cwd: the project folder unless given)."""
        p = subprocess.run(
            self.args(*args, db=db), cwd=cwd or self.root, env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )
        return Result(p.returncode, p.stdout, p.stderr)

    def popen(self, *args: Any, tag: str = "bg") -> Background:
        out = open(self.root / f"{tag}.out", "w")  # noqa: SIM115 - closed by Background
        err = open(self.root / f"{tag}.err", "w")  # noqa: SIM115
        p = subprocess.Popen(self.args(*args), cwd=self.root, env=self.env, stdout=out, stderr=err)
        return Background(p, out, err)

    # ---- reading the database directly (read-only, like an outside check) -------------------
    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(query, params).fetchall()
        finally:
            conn.close()

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

    def wait_until(self, cond: Callable[[], Any], timeout: float = 90, what: str = "") -> Any:
        return wait_until(cond, timeout=timeout, what=what)

    def session_names(self) -> list[str]:
        if not self.db.exists():
            return []
        return [r[0] for r in self.sql("SELECT name FROM sessions ORDER BY id")]


class Background:
    """A tuitune process running in the background; its output goes to files."""

    def __init__(self, proc: subprocess.Popen, out: Any, err: Any) -> None:
        self.proc = proc
        self._out, self._err = out, err

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 120) -> Result:
        try:
            rc = self.proc.wait(timeout=timeout)
        finally:
            self._out.close()
            self._err.close()
        return Result(rc, Path(self._out.name).read_text(), Path(self._err.name).read_text())

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=60)
        self._out.close()
        self._err.close()


def wait_until(cond: Callable[[], Any], timeout: float = 90, interval: float = 0.05, what: str = "") -> Any:
    """Polls ``cond`` until it returns something truthy; fails the test after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout} s waiting for {what or cond}")
        time.sleep(interval)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "proj"
    root.mkdir()
    return Project(root)


@pytest.fixture
def inproc(project: Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """``inproc("run", ...)`` calls ``tuitune.cli.main`` with ``--db`` of the project, in the project folder."""
    from tuitune import cli

    monkeypatch.chdir(project.root)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("TUITUNE_DB", str(project.root / "default-env.db"))

    def call(*args: Any, db: bool = True) -> Result:
        capsys.readouterr()
        argv = [*(["--db", str(project.db)] if db else []), *map(str, args)]
        try:
            rc = cli.main(argv)
        except SystemExit as e:  # argparse
            rc = e.code if isinstance(e.code, int) else 1
        captured = capsys.readouterr()
        return Result(rc, captured.out, captured.err)

    return call
