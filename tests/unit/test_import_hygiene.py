"""The engine runs without the UI and without torch at import time (Harlequin's check)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module, banned",
    [
        ("tuitune.core", ["textual", "torch", "tuitune.ui"]),
        ("tuitune.core.api", ["textual", "torch", "tuitune.ui"]),
        ("tuitune.core.runner", ["textual", "torch", "tuitune.ui"]),
        ("tuitune.core.strategies.grid", ["textual", "torch"]),
        ("tuitune.core.strategies.hyperband", ["textual", "torch"]),
        ("tuitune", ["textual", "torch", "tuitune.ui"]),
        ("tuitune.cli", ["textual", "torch"]),
    ],
)
def test_module_does_not_import(module, banned):
    code = f"import sys, {module}; print(','.join(m for m in {banned!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing {module} imported {out}"


def test_the_ui_never_runs_sql():
    """The UI talks to the engine through the store's methods and the Runner, never SQL of its own."""
    import re
    from pathlib import Path

    ui = Path(__file__).parent.parent.parent / "tuitune" / "ui"
    bad = [
        f"{f.name}:{i}: {line.strip()}"
        for f in ui.rglob("*.py")
        for i, line in enumerate(f.read_text().splitlines(), 1)
        if re.search(r"\bsqlite3\b|\bsqlite_utils\b|\.execute\(|\bSELECT\b|\bUPDATE\b|\bINSERT\b", line)
    ]
    assert not bad, bad
