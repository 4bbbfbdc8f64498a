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
        ("tuitune.core.run.runner", ["textual", "torch", "tuitune.ui"]),
        ("tuitune.core.search.strategies.grid", ["textual", "torch"]),
        ("tuitune.core.search.strategies.hyperband", ["textual", "torch"]),
        ("tuitune", ["textual", "torch", "tuitune.ui", "lightning", "pytorch_lightning", "transformers"]),
        ("tuitune.integrations", ["torch", "lightning", "pytorch_lightning", "transformers"]),
        # A script run by tt.Command imports this for tuitune.report: nothing heavy.
        ("tuitune.core.run.command", ["torch", "numpy", "textual", "tuitune.core.store.store", "tuitune.core.run.runner"]),
        ("tuitune.cli", ["textual", "torch"]),
        # What a worker process imports before its objective asks for more: not the coordinator's store,
        # numpy or strategies (tuitune/__init__ loads its names on first use), not the launcher.
        ("tuitune.core.run.workers", ["torch", "numpy", "tuitune.core.store.store", "tuitune.core.run.runner"]),
        ("tuitune.training.objective", ["torch", "tuitune.core.run.runner", "tuitune.launch"]),
    ],
)
def test_module_does_not_import(module, banned):
    code = f"import sys, {module}; print(','.join(m for m in {banned!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing {module} imported {out}"


def test_the_public_names_load_on_first_use():
    code = "import sys, tuitune as tt; a = 'tuitune.core.api' in sys.modules; print(a, tt.tune.__module__, tt.Float.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "tuitune.core.api", "tuitune.core.search.params"]
    assert {"tune", "Space", "TrialState"} <= set(dir(__import__("tuitune")))
    code = ("import sys, tuitune as tt; tt.Command, tt.report, tt.checkpoint_dir;"
            "print([m for m in ('torch', 'lightning', 'transformers', 'tuitune.core.api') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", out


def test_a_run_on_the_cpu_does_not_import_torch_in_the_coordinator():
    """--devices cpu, and no device on a Linux machine without GPU device files: answered without torch."""
    code = (
        "import sys; import tuitune.launch; from tuitune.core.run.placement import Placement, _gpu_possible;"
        "print(Placement.parse(devices='cpu', best_device=True).devices,"
        " Placement.parse(devices=['cpu'], best_device=True).devices,"
        " _gpu_possible() or Placement.parse(best_device=True).devices, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out.endswith("False"), out
    assert out.count("('cpu',)") >= 2, out


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
