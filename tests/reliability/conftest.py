"""Fixtures of the reliability tests (the helpers live in _rel_support.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _rel_support import Project


@pytest.fixture
def rproj(tmp_path: Path) -> Project:
    root = tmp_path / "proj"
    root.mkdir()
    return Project(root)
