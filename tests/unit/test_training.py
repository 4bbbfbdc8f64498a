"""Tests the built-in trainer: each model kind trains, seeded runs repeat, a checkpoint resumes exactly."""

from __future__ import annotations

import math
import textwrap
import time

import pytest
import torch

from tests.support.datasets import write_imagefolder
from tuitune.testing import FakeTrial
from tuitune.training import data as D
from tuitune.training import loop
from tuitune.training.loop import make_objective, trial_seed
from tuitune.training.models import build_model, count_parameters
from tuitune.training.presets import load_preset

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def _preset(
    tmp_path,
    model: str,
    space: str = "",
    data: str = 'dataset = "digits"\nval_fraction = 0.2',
    defaults: str = "",
    max_epochs: int = 4,
):
    text = f"""
    name = "t"
    metric = "val_acc"
    direction = "maximize"
    max_epochs = {max_epochs}
    [data]
    {data}
    [model]
    {model}
    [defaults]
    {defaults}
    [space]
    {space}
    """
    p = tmp_path / "t.toml"
    p.write_text(textwrap.dedent(text).replace("\n    ", "\n"))
    return load_preset(str(p))


def _run(preset, config=None, *, number=0, budget=2, seed=0, saved=None, stop_after=None):
    cfg = {**preset.defaults, **(config or {})}
    trial = FakeTrial(number, cfg, budget, saved=saved, stop_after=stop_after)
    assert make_objective(preset, device="cpu", seed=seed)(cfg, trial) is None
    return trial


def _metrics(rows):
    return [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in rows]


# ---------------------------------------------------------------------------- each model kind


def test_mlp_trains_and_reports_each_epoch(tmp_path):
    p = load_preset("digits-mlp")
    t = _run(p, {"train_fraction": 0.5}, budget=2)
    assert [r["epoch"] for r in t.rows] == [1, 2]
    for r in t.rows:
        assert set(r) == {"epoch", "train_loss", "val_loss", "val_acc", "lr", "epoch_seconds"}
        assert all(math.isfinite(v) for v in r.values())
    assert t.rows[-1]["val_acc"] > 0.5 and t.checkpoints == 2


def test_cnn_trains(tmp_path):
    p = _preset(
        tmp_path,
        'kind = "cnn"',
        defaults="conv_blocks = 2\nfilters = 4\nunits = 16\nkernel_size = 3\n"
        'dropout = 0.1\ninit = "kaiming_normal"\nimage_size = 12\nbatch_size = 32',
    )
    t = _run(p, budget=2)
    assert t.rows[-1]["val_acc"] > 0.3  # chance is 0.1


def test_resnet18_small_stem_trains(tmp_path):
    p = _preset(
        tmp_path,
        'kind = "resnet18"\nstem = "small"',
        defaults='optimizer = "sgd"\nlr = 0.05\nbatch_size = 32\ntrain_fraction = 0.05\nschedule = "cosine"',
    )
    m = build_model("resnet18", p.defaults, channels=1, classes=10, options=p.model)
    assert m.conv1.kernel_size == (3, 3) and m.conv1.stride == (1, 1) and isinstance(m.maxpool, torch.nn.Identity)
    assert 11_000_000 < count_parameters(m) < 11_300_000
    t = _run(p, budget=1)
    assert math.isfinite(t.rows[0]["val_loss"])


def test_resnet18_on_an_image_folder(tmp_path):
    write_imagefolder(tmp_path / "imgs", classes=2, per_class=5, size=20)
    p = _preset(
        tmp_path,
        'kind = "resnet18"',
        data='dataset = "imagefolder"\nroot = "imgs"\nnum_workers = 0\nval_fraction = 0.3',
        defaults="image_size = 16\nbatch_size = 4",
    )
    assert p.data["root"] == str(tmp_path / "imgs")  # relative to the preset file
    m = build_model("resnet18", {**p.defaults, "image_size": 128}, channels=3, classes=2, options=p.model)
    assert m.conv1.kernel_size == (7, 7)  # "auto": the standard stem for large images
    t = _run(p, budget=1)
    assert 0 <= t.rows[0]["val_acc"] <= 1


@pytest.mark.parametrize("init", ["xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "orthogonal"])
@pytest.mark.parametrize("act", ["tanh", "gelu", "leaky_relu"])
def test_inits_and_activations_build(init, act):
    cfg = {"image_size": 8, "hidden_layers": 2, "units": 16, "activation": act, "dropout": 0.1, "init": init}
    m = build_model("mlp", cfg, channels=1, classes=10)
    assert m(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert all(float(lin.bias.detach().abs().sum()) == 0 for lin in m if isinstance(lin, torch.nn.Linear))


@pytest.mark.parametrize("opt", ["sgd", "adam", "adamw", "rmsprop"])
@pytest.mark.parametrize("schedule", ["constant", "step", "exponential", "cosine"])
def test_optimizers_and_schedules(opt, schedule):
    cfg = {
        "optimizer": opt,
        "lr": 0.1,
        "weight_decay": 1e-4,
        "momentum": 0.9,
        "beta1": 0.9,
        "beta2": 0.999,
        "nesterov": True,
    }
    w = torch.nn.Parameter(torch.ones(2))
    o = loop.make_optimizer(cfg, [w], torch.device("cpu"))
    s = loop.make_scheduler(schedule, o, 9)
    lrs = []
    for _ in range(9):
        lrs.append(o.param_groups[0]["lr"])
        o.step()
        if s is not None:
            s.step()
    assert lrs[0] == 0.1
    final = o.param_groups[0]["lr"]
    expected = {"constant": 0.1, "step": 0.1 * 0.1**3, "exponential": 0.1 * 0.01, "cosine": 0.0}[schedule]
    assert final == pytest.approx(expected, abs=1e-9)


# ---------------------------------------------------------------------------- reproducibility and resume


def test_seeded_runs_repeat_and_trials_differ():
    p = load_preset("digits-mlp")
    cfg = {"train_fraction": 0.3, "dropout": 0.3}
    a = _run(p, cfg, number=3, seed=7)
    b = _run(p, cfg, number=3, seed=7)
    c = _run(p, cfg, number=4, seed=7)
    assert _metrics(a.rows) == _metrics(b.rows)
    assert _metrics(a.rows) != _metrics(c.rows)
    assert trial_seed(7, 3) != trial_seed(8, 3) and trial_seed(7, 3) == trial_seed(7, 3)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_checkpoint_then_continue_equals_straight_through(tmp_path, kind):
    """Two epochs, a checkpoint through torch.save/torch.load(weights_only=True), two more: the same as four."""
    model = 'kind = "mlp"' if kind == "mlp" else 'kind = "cnn"'
    defaults = 'dropout = 0.3\nunits = 32\noptimizer = "sgd"\nlr = 0.05\nschedule = "cosine"\ntrain_fraction = 0.3'
    if kind == "cnn":
        defaults += "\nfilters = 4\nconv_blocks = 1"
    p = _preset(tmp_path, model, data='dataset = "digits"\nval_fraction = 0.2\naugment = true', defaults=defaults)
    straight = _run(p, budget=4, number=1)
    first = _run(p, budget=2, number=1)
    assert FakeTrial(saved=first.saved).restore()["epoch"] == 2
    rest = _run(p, budget=4, number=1, saved=first.saved)
    assert [r["epoch"] for r in rest.rows] == [3, 4]
    assert _metrics(first.rows + rest.rows) == _metrics(straight.rows)
    a = FakeTrial(saved=straight.saved).restore()["model"]
    b = FakeTrial(saved=rest.saved).restore()["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_holds_only_plain_data():
    t = _run(load_preset("digits-mlp"), {"train_fraction": 0.2, "schedule": "step"}, budget=1)
    state = t.restore()
    assert set(state) == {"version", "epoch", "model", "optimizer", "scheduler", "early_stopping", "rng"}
    assert state["epoch"] == 1 and state["early_stopping"]["bad"] == 0


def test_a_stopped_trial_ends_after_the_epoch(tmp_path):
    t = _run(load_preset("digits-mlp"), {"train_fraction": 0.2}, budget=5, stop_after=1)
    assert len(t.rows) == 1


def test_early_stopping_and_its_state_survive_a_resume(monkeypatch):
    p = load_preset("digits-mlp")
    accs = iter([0.5, 0.6, 0.55, 0.54, 0.9, 0.9])
    monkeypatch.setattr(loop, "evaluate", lambda *a, **k: (1.0, next(accs)))
    t = _run(p, {"patience": 2, "train_fraction": 0.1}, budget=10)
    assert [r["val_acc"] for r in t.rows] == [0.5, 0.6, 0.55, 0.54]  # two epochs without a better val_acc
    assert t.restore()["early_stopping"]["stopped"] is True
    promoted = _run(p, {"patience": 2, "train_fraction": 0.1}, budget=20, saved=t.saved)
    assert promoted.rows == []  # an early-stopped trial gains nothing from a larger budget


def test_out_of_memory_propagates_after_freeing(monkeypatch):
    freed = []

    def oom(*a, **k):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(loop, "_train_epoch", oom)
    monkeypatch.setattr(loop, "release_memory", lambda *a: freed.append(a))
    with pytest.raises(torch.cuda.OutOfMemoryError, match="out of memory") as e:
        _run(load_preset("digits-mlp"), budget=1)
    assert freed == [()]
    if hasattr(e.value, "add_note"):  # the original traceback is kept as text, its frames are dropped
        assert "oom" in "".join(e.value.__notes__)


def test_nan_loss_ends_the_trial_through_report():
    p = load_preset("digits-mlp")
    with pytest.raises(ValueError, match="is nan|is inf"):
        _run(
            p,
            {
                "optimizer": "sgd",
                "lr": 10.0,
                "momentum": 0.99,
                "init": "orthogonal",
                "activation": "relu",
                "hidden_layers": 3,
                "units": 512,
                "weight_decay": 0.0,
            },
            budget=3,
        )


def test_make_objective_refuses_an_absent_device():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(D.DeviceError):
        make_objective(load_preset("digits-mlp"), device="cuda")


# ---------------------------------------------------------------------------- the done-when check


def test_digits_default_config_reaches_95_percent_in_its_budget():
    p = load_preset("digits-mlp")
    _run(p, budget=1)  # warm the dataset cache and torch's kernels
    t0 = time.perf_counter()
    t = _run(p, budget=p.max_epochs)
    elapsed = time.perf_counter() - t0
    best = max(r["val_acc"] for r in t.rows)
    assert best >= 0.95, t.rows
    print(f"digits-mlp default: best val_acc {best:.4f} in {len(t.rows)} epochs, {elapsed:.2f} s")


@gpu
@pytest.mark.gpu
def test_cuda_bf16_channels_last(tmp_path):
    p = _preset(tmp_path, 'kind = "cnn"', defaults="filters = 8\nunits = 32\ntrain_fraction = 0.5")
    cfg = dict(p.defaults)
    t = FakeTrial(0, cfg, 2)
    make_objective(p, device="cuda", seed=0)(cfg, t)
    assert t.rows[-1]["val_acc"] > 0.5
    after_one = torch.cuda.memory_allocated()  # the dataset, cached on the device for the next trials
    make_objective(p, device="cuda", seed=0)(cfg, FakeTrial(1, cfg, 2))
    # the first trial's model, optimizer and activations were released: a second trial leaves no more behind
    assert torch.cuda.memory_allocated() - after_one < 2**20


def test_cpu_threads_small_steps_run_on_one_thread(monkeypatch):
    monkeypatch.delenv("TUITUNE_CPU_THREADS", raising=False)
    small = torch.nn.Linear(64, 10)
    big = torch.nn.Linear(4096, 4096)
    assert loop.cpu_threads(small, 32, 8) == 1
    assert loop.cpu_threads(big, 128, 8) == 8
    monkeypatch.setenv("TUITUNE_CPU_THREADS", "3")
    assert loop.cpu_threads(small, 32, 8) == 3


def test_trial_restores_the_thread_count():
    torch.set_num_threads(2)
    _run(load_preset("digits-mlp"), {"train_fraction": 0.1}, budget=1)
    assert torch.get_num_threads() == 2
