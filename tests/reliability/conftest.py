"""Fixtures of the reliability tests (the helpers live in tests/support/project.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.project import ReliabilityProject


@pytest.fixture
def rproj(tmp_path: Path) -> ReliabilityProject:
    root = tmp_path / "proj"
    root.mkdir()
    return ReliabilityProject(root)
