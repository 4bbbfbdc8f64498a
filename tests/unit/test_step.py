"""Tests the trainer's step mode (TUITUNE_STEP): compiled curves equal eager ones; graph mode needs CUDA."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from tuitune.core.errors import PresetError
from tuitune.testing import FakeTrial
from tuitune.training.loop import make_objective
from tuitune.training.presets import load_preset
from tuitune.training.step import step_mode

# dropout on (its masks must be the eager ones), a schedule, a last partial batch (1437 training images / 32)
BASE = {"train_fraction": 0.25, "dropout": 0.2, "hidden_layers": 2, "units": 64, "schedule": "cosine"}
VARIANTS = [
    {"optimizer": "adam", "lr": 3e-3, "beta1": 0.85},
    {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3},
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def _curves(mode, monkeypatch, fused):
    monkeypatch.setenv("TUITUNE_STEP", mode)
    p = load_preset("digits-mlp")
    obj = make_objective(p, device="cpu", seed=3)
    cfgs = [{**p.defaults, **BASE, **v} for v in VARIANTS]
    trials = [FakeTrial(n, c, 2) for n, c in enumerate(cfgs)]
    if fused:
        assert obj.train_array(cfgs, trials) == [None, None]
    else:
        for c, t in zip(cfgs, trials):
            assert obj(c, t) is None
    return [t.rows for t in trials]


@pytest.mark.slow  # compiling on a busy 2-core CPU takes 20-60 s
@pytest.mark.parametrize("fused", [False, True], ids=["one-trial", "fused-array"])
def test_compiled_step_gives_the_eager_curve(monkeypatch, fused):
    from torch._dynamo.utils import counters

    eager = _curves("eager", monkeypatch, fused)
    counters.clear()
    comp = _curves("compile", monkeypatch, fused)
    assert counters["stats"]["unique_graphs"] > 0  # the step was compiled, not run eagerly
    for a, b in zip(eager, comp):
        assert [r["epoch"] for r in a] == [r["epoch"] for r in b] == [1, 2]
        for ra, rb in zip(a, b):
            for k in ("train_loss", "val_loss", "val_acc", "lr"):
                assert ra[k] == pytest.approx(rb[k], rel=1e-4, abs=1e-6), (k, ra, rb)
    assert eager[0][0]["val_loss"] != eager[1][0]["val_loss"]  # two real, different trials


@pytest.mark.slow
def test_a_compiled_trial_resumed_from_its_checkpoint_continues_the_straight_eager_run(monkeypatch):
    """Dropout draws the eager masks from the checkpointed RNG: 2 compiled epochs + 2 resumed = 4 eager ones."""
    p = load_preset("digits-mlp")
    cfg = {**p.defaults, **BASE, **VARIANTS[0]}
    monkeypatch.setenv("TUITUNE_STEP", "eager")
    straight = FakeTrial(0, cfg, 4)
    make_objective(p, device="cpu", seed=3)(cfg, straight)
    monkeypatch.setenv("TUITUNE_STEP", "compile")
    obj = make_objective(p, device="cpu", seed=3)
    first = FakeTrial(0, cfg, 2)
    obj(cfg, first)
    rest = FakeTrial(0, cfg, 4, saved=first.saved)
    obj(cfg, rest)
    rows = first.rows + rest.rows
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    for ra, rb in zip(rows, straight.rows):
        for k in ("train_loss", "val_loss", "val_acc", "lr"):
            assert ra[k] == pytest.approx(rb[k], rel=1e-4, abs=1e-6), (k, ra, rb)


def test_step_mode_reads_the_variable(monkeypatch):
    monkeypatch.delenv("TUITUNE_STEP", raising=False)
    assert step_mode() == "eager"
    monkeypatch.setenv("TUITUNE_STEP", " Compile ")
    assert step_mode(torch.device("cpu")) == "compile"
    monkeypatch.setenv("TUITUNE_STEP", "fast")
    with pytest.raises(PresetError, match=r"TUITUNE_STEP='fast' is unknown; use eager, compile or graph"):
        step_mode()


def test_graph_mode_on_the_cpu_fails_at_once_with_one_line(monkeypatch):
    monkeypatch.setenv("TUITUNE_STEP", "graph")
    with pytest.raises(PresetError, match=r"TUITUNE_STEP=graph needs a CUDA device .* on cpu: use TUITUNE_STEP=compile"):
        make_objective(load_preset("digits-mlp"), device="cpu")


def test_the_cli_says_graph_mode_needs_cuda_in_one_line_exit_2(tmp_path):
    env = {**os.environ, "TUITUNE_STEP": "graph", "TUITUNE_DB": str(tmp_path / "t.db")}
    cmd = [sys.executable, "-m", "tuitune", "run", "digits-mlp", "--trials", "1", "--devices", "cpu"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, (r.stdout, r.stderr)
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("tuitune: error:")]
    assert len(errors) == 1 and "TUITUNE_STEP=graph needs a CUDA device" in errors[0], r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.gpu
def test_graph_mode_on_cuda_gives_the_eager_curve(monkeypatch):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    out = {}
    for mode in ("eager", "graph"):
        monkeypatch.setenv("TUITUNE_STEP", mode)
        p = load_preset("digits-mlp")
        obj = make_objective(p, device="cuda", seed=3)
        cfg = {**p.defaults, **BASE, "dropout": 0.0, **VARIANTS[0]}
        t = FakeTrial(0, cfg, 2)
        assert obj(cfg, t) is None
        out[mode] = t.rows
    for ra, rb in zip(out["eager"], out["graph"]):
        assert ra["val_loss"] == pytest.approx(rb["val_loss"], rel=2e-2)  # bf16 autocast on CUDA
