"""Fixtures of the command-line tests: a project folder with the synthetic objectives and TOML files
(tests/support/project.py), and ``tuitune.cli.main`` run in-process."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.project import Project, Result


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


@pytest.fixture
def ray_leftovers() -> Callable[[str], list[str]]:
    """Processes (not zombies) whose command line names a marker: a Ray session folder of a test."""

    def find(marker: str) -> list[str]:
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    status = Path(f"/proc/{d}/status").read_text()
                except OSError:
                    continue
                if marker in cmd and "\nState:\tZ" not in status:
                    out.append(f"{d} {cmd[:120]}")
        return out

    return find
