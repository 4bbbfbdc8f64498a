"""Fixtures of the command-line tests: a project folder with the synthetic objectives and TOML files
(tests/support/project.py), and ``tuitune.cli.main`` run in-process."""

from __future__ import annotations

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
