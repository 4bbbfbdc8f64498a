"""Tests fused trial arrays: each member's learning curve equals its solo run, each member is its own trial."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import pytest
import torch

from tuitune.testing import FakeTrial
from tuitune.training import fused
from tuitune.training.fusing import auto_members, fuse_key, parse_fuse
from tuitune.training.loop import make_objective
from tuitune.training.presets import load_preset

BASE = {"train_fraction": 0.25, "dropout": 0.2, "hidden_layers": 2, "units": 64}
# Every optimizer with its own settings, and every schedule: one array, each member its own hyperparameters.
MIXED = [
    {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "schedule": "cosine", "dropout": 0.3},
    {"optimizer": "sgd", "lr": 0.1, "momentum": 0.0, "schedule": "step", "weight_decay": 1e-3},
    {"optimizer": "adam", "lr": 3e-3, "beta1": 0.8, "beta2": 0.99, "schedule": "exponential", "weight_decay": 1e-4},
    {"optimizer": "adamw", "lr": 2e-3, "weight_decay": 0.05, "schedule": "cosine", "init": "orthogonal"},
    {"optimizer": "rmsprop", "lr": 1e-3, "momentum": 0.5, "schedule": "constant", "dropout": 0.05},
    {"optimizer": "rmsprop", "lr": 5e-4, "momentum": 0.0, "schedule": "step", "init": "kaiming_normal"},
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def _cfgs(preset, variants, base=BASE):
    return [{**preset.defaults, **base, **v} for v in variants]


def _solo(obj, number, cfg, budget, **kw):
    t = FakeTrial(number, cfg, budget, **kw)
    assert obj(cfg, t) is None
    return t


def _assert_curves_equal(a, b, rel=1e-4):
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b]
    for ra, rb in zip(a, b):
        for k in ("train_loss", "val_loss", "val_acc", "lr"):
            assert ra[k] == pytest.approx(rb[k], rel=rel, abs=1e-6), (k, ra, rb)


# ---------------------------------------------------------------------------- equivalence


@pytest.mark.parametrize("opt", ["sgd", "adam", "adamw", "rmsprop"])
def test_each_optimizer_member_equals_its_solo_run(opt):
    """Two members of one optimizer, different lr / decay / momentum, dropout on, a schedule: each equals solo."""
    p = load_preset("digits-mlp")
    obj = make_objective(p, device="cpu", seed=11)
    variants = [
        {"optimizer": opt, "lr": 0.02 if opt == "sgd" else 2e-3, "momentum": 0.9, "beta1": 0.85, "schedule": "cosine"},
        {"optimizer": opt, "lr": 0.05 if opt == "sgd" else 1e-3, "momentum": 0.6, "weight_decay": 1e-3, "schedule": "step"},
    ]
    cfgs = _cfgs(p, variants)
    solo = [_solo(obj, n, c, 3) for n, c in enumerate(cfgs)]
    trials = [FakeTrial(n, c, 3) for n, c in enumerate(cfgs)]
    assert obj.train_array(cfgs, trials) == [None, None]
    for s, t in zip(solo, trials):
        _assert_curves_equal(s.rows, t.rows)
    assert solo[0].rows[0]["val_acc"] != solo[1].rows[0]["val_acc"]  # the members really differ


def test_mixed_optimizers_in_one_array_each_equal_solo():
    p = load_preset("digits-mlp")
    obj = make_objective(p, device="cpu", seed=5)
    cfgs = _cfgs(p, MIXED)
    solo = [_solo(obj, n, c, 3) for n, c in enumerate(cfgs)]
    trials = [FakeTrial(n, c, 3) for n, c in enumerate(cfgs)]
    assert obj.train_array(cfgs, trials) == [None] * len(cfgs)
    for s, t in zip(solo, trials):
        _assert_curves_equal(s.rows, t.rows)
    # the checkpoints hold the same weights as the solo runs'
    for s, t in zip(solo, trials):
        a, b = s.restore()["model"], t.restore()["model"]
        assert set(a) == set(b)
        assert all(torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-5) for k in a)


def _cnn_preset(tmp_path, batchnorm=True):
    text = """
    name = "c"
    metric = "val_acc"
    direction = "maximize"
    max_epochs = 4
    [data]
    dataset = "digits"
    val_fraction = 0.2
    augment = true
    [model]
    kind = "cnn"
    batchnorm = BATCHNORM
    [defaults]
    conv_blocks = 2
    filters = 4
    kernel_size = 3
    units = 16
    dropout = 0.25
    train_fraction = 0.2
    batch_size = 32
    schedule = "cosine"
    [space]
    """
    f = tmp_path / "c.toml"
    f.write_text(textwrap.dedent(text).replace("BATCHNORM", "true" if batchnorm else "false"))
    return load_preset(str(f))


@pytest.mark.parametrize("batchnorm", [True, False])
def test_cnn_members_with_batchnorm_and_augmentation_equal_solo(tmp_path, batchnorm):
    """Grouped convolutions (with biases where batch norm is off), per-member batch-norm statistics and each
    member's own crops and flips."""
    p = _cnn_preset(tmp_path, batchnorm)
    obj = make_objective(p, device="cpu", seed=2)
    cfgs = _cfgs(p, [{"optimizer": "sgd", "lr": 0.05, "momentum": 0.9}, {"optimizer": "sgd", "lr": 0.02, "nesterov": True}], base={})
    solo = [_solo(obj, n, c, 2) for n, c in enumerate(cfgs)]
    trials = [FakeTrial(n, c, 2) for n, c in enumerate(cfgs)]
    obj.train_array(cfgs, trials)
    # The convolutions are bitwise equal; batch norm over M x C channels rounds its statistics 1 ulp apart
    # from C channels on the CPU. SGD keeps that at rounding level; Adam, which divides near-zero gradients
    # by their own size, turns it into 1e-3-sized weight differences within two epochs (not tested here).
    for s, t in zip(solo, trials):
        _assert_curves_equal(s.rows, t.rows)
        a, b = s.restore()["model"], t.restore()["model"]
        assert set(a) == set(b)
        if batchnorm:
            assert int(a["1.num_batches_tracked"]) == int(b["1.num_batches_tracked"]) > 0
        else:
            assert "0.bias" in a
        assert all(torch.allclose(a[k].float(), b[k].float(), rtol=1e-4, atol=1e-5) for k in a)  # running stats too


# ---------------------------------------------------------------------------- each member is its own trial


def test_a_stopped_member_leaves_and_the_others_go_on():
    p = load_preset("digits-mlp")
    obj = make_objective(p, device="cpu", seed=1)
    cfgs = _cfgs(p, MIXED[:3])
    trials = [FakeTrial(0, cfgs[0], 4), FakeTrial(1, cfgs[1], 4, stop_after=1), FakeTrial(2, cfgs[2], 4)]
    assert obj.train_array(cfgs, trials) == [None, None, None]
    assert [len(t.rows) for t in trials] == [4, 1, 4]
    assert trials[1].saved_epoch == 1
    for n in (0, 2):  # the array shrank mid-way: the others still equal their solo runs
        _assert_curves_equal(_solo(obj, n, cfgs[n], 4).rows, trials[n].rows)


def test_on_leave_tells_each_member_s_end_as_it_leaves():
    """A worker says a member's Done from on_leave: after its last report, while the others still train."""
    p = load_preset("digits-mlp")
    obj = make_objective(p, device="cpu", seed=1)
    cfgs = _cfgs(p, MIXED[:3])
    trials = [FakeTrial(0, cfgs[0], 3), FakeTrial(1, cfgs[1], 3, stop_after=1), FakeTrial(2, cfgs[2], 1)]
    left: list[tuple[int, list[int]]] = []  # who left, and how many epochs each member had then

    def on_leave(trial, result):
        assert result is None
        left.append((trial.number, [len(t.rows) for t in trials]))

    assert obj.train_array(cfgs, trials, on_leave=on_leave) == [None, None, None]
    assert sorted(n for n, _ in left) == [0, 1, 2]
    when = dict(left)
    assert when[2][2] == 1 and when[2][0] < 3  # trial 2 (budget 1) left before trial 0's last epoch
    assert when[1][1] == 1 and when[1][0] < 3  # trial 1 (stopped after epoch 1) too
    assert when[0] == [3, 1, 1]


def test_mixed_budgets_and_a_restored_member():
    """A member resumed from a solo checkpoint at epoch 2 beside fresh members of other budgets."""
    p = load_preset("digits-mlp")
    obj = make_objective(p, device="cpu", seed=4)
    cfgs = _cfgs(p, MIXED[2:5])
    first = _solo(obj, 0, cfgs[0], 2)
    trials = [FakeTrial(0, cfgs[0], 4, saved=first.saved), FakeTrial(1, cfgs[1], 1), FakeTrial(2, cfgs[2], 3)]
    assert obj.train_array(cfgs, trials) == [None, None, None]
    assert [[r["epoch"] for r in t.rows] for t in trials] == [[3, 4], [1], [1, 2, 3]]
    straight = _solo(obj, 0, cfgs[0], 4)
    _assert_curves_equal(first.rows + trials[0].rows, straight.rows)
    _assert_curves_equal(_solo(obj, 1, cfgs[1], 1).rows, trials[1].rows)
    _assert_curves_equal(_solo(obj, 2, cfgs[2], 3).rows, trials[2].rows)


def test_a_fused_checkpoint_resumes_in_the_solo_trainer():
    p = load_preset("digits-mlp")
    obj = make_objective(p, device="cpu", seed=9)
    cfgs = _cfgs(p, MIXED[:2])
    trials = [FakeTrial(n, c, 2) for n, c in enumerate(cfgs)]
    obj.train_array(cfgs, trials)
    for n, c in enumerate(cfgs):
        rest = _solo(obj, n, c, 4, saved=trials[n].saved)
        assert [r["epoch"] for r in rest.rows] == [3, 4]
        _assert_curves_equal(trials[n].rows + rest.rows, _solo(obj, n, c, 4).rows)


def test_a_diverging_member_fails_alone():
    p = load_preset("digits-mlp")
    obj = make_objective(p, device="cpu", seed=0)
    bad = {"optimizer": "sgd", "lr": 10.0, "momentum": 0.99, "init": "orthogonal", "dropout": 0.1, "weight_decay": 0.0}
    cfgs = _cfgs(p, [MIXED[2], bad], base={**BASE, "hidden_layers": 3, "units": 512})
    with pytest.raises(ValueError, match="is nan|is inf"):  # alone, it fails through report()
        _solo(obj, 1, cfgs[1], 3)
    trials = [FakeTrial(n, c, 3) for n, c in enumerate(cfgs)]
    results = obj.train_array(cfgs, trials)
    assert results[0] is None
    assert isinstance(results[1], ValueError) and "is nan" in str(results[1]) or "is inf" in str(results[1])
    assert len(trials[0].rows) == 3 and trials[1].saved is None
    _assert_curves_equal(_solo(obj, 0, cfgs[0], 3).rows, trials[0].rows)


class _Aborted(Exception):
    pass


class _AbortingTrial(FakeTrial):
    """A trial whose epochs() raises before epoch 2, as an abort that raises would."""

    def epochs(self):
        for e in super().epochs():
            if e == 2:
                raise _Aborted("aborted")
            yield e


def test_a_member_whose_epochs_raise_gets_its_exception_back():
    p = load_preset("digits-mlp")
    obj = make_objective(p, device="cpu", seed=0)
    cfgs = _cfgs(p, MIXED[:2])
    trials = [_AbortingTrial(0, cfgs[0], 3), FakeTrial(1, cfgs[1], 3)]
    results = obj.train_array(cfgs, trials)
    assert isinstance(results[0], _Aborted) and results[1] is None
    assert [len(t.rows) for t in trials] == [1, 3]


def test_an_early_stopped_checkpoint_adds_no_epochs():
    p = load_preset("digits-mlp")
    obj = make_objective(p, device="cpu", seed=0)
    cfgs = _cfgs(p, MIXED[:2])
    first = _solo(obj, 0, cfgs[0], 1)
    blob = FakeTrial._load(first.saved)
    blob["state"]["early_stopping"]["stopped"] = True
    import io

    buf = io.BytesIO()
    torch.save(blob, buf)
    trials = [FakeTrial(0, cfgs[0], 5, saved=buf.getvalue()), FakeTrial(1, cfgs[1], 1)]
    assert obj.train_array(cfgs, trials) == [None, None]
    assert [len(t.rows) for t in trials] == [0, 1]


def test_configs_of_different_architectures_are_refused():
    p = load_preset("digits-mlp")
    obj = make_objective(p, device="cpu", seed=0)
    cfgs = [{**p.defaults, "units": 32}, {**p.defaults, "units": 64}]
    with pytest.raises(ValueError, match="share an architecture"):
        obj.train_array(cfgs, [FakeTrial(n, c, 1) for n, c in enumerate(cfgs)])


# ---------------------------------------------------------------------------- fuse_key and --fuse


def test_fuse_key_groups_by_architecture_only():
    p = load_preset("digits-mlp")
    k = fuse_key(p, {"units": 64})
    assert k == fuse_key(p, {"units": 64, "lr": 0.1, "optimizer": "sgd", "momentum": 0.5, "dropout": 0.3})
    assert k == fuse_key(p, {"units": 64.0, "init": "orthogonal", "schedule": "step", "patience": 9})
    for other in ({"units": 96}, {"batch_size": 128}, {"activation": "tanh"}, {"hidden_layers": 2}, {"dropout": 0.0}):
        assert fuse_key(p, {"units": 64, **other}) != k, other
    assert fuse_key(load_preset("cifar10-resnet18"), {}) is None
    assert fuse_key(load_preset("imagefolder-resnet18"), {}) is None
    assert hash(k) == hash(fuse_key(p, {"units": 64}))
    assert fuse_key(p, {}) != fuse_key(load_preset("mnist-mlp"), {})


def test_fusing_module_does_not_import_torch():
    code = "import sys, tuitune.training.fusing; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_parse_fuse():
    assert parse_fuse("8") == 8 and parse_fuse(16) == 16 and parse_fuse("auto") == "auto"
    assert parse_fuse("off") == 1 and parse_fuse(" AUTO ") == "auto"
    for bad in ("0", 0, 65, "eight", 2.5, True, None):
        with pytest.raises(ValueError, match=r"--fuse: .*use a whole number 1\.\.64, auto or off"):
            parse_fuse(bad)
    with pytest.raises(ValueError, match="fuse.toml: key 'fuse'"):
        parse_fuse("x", where="fuse.toml: key 'fuse'")


def test_auto_members_from_the_step_time():
    assert auto_members(0.001) == 16 and auto_members(0.005) == 4 and auto_members(0.05) == 1
    assert auto_members(0.0) == 1 and auto_members(math.nan) == 1 and auto_members(1e-5, cap=8) == 8


def test_can_fuse():
    p = load_preset("digits-mlp")
    assert fused.can_fuse(p, [{"lr": 0.1}, {"lr": 0.2}])
    assert not fused.can_fuse(p, [{"units": 32}, {"units": 64}])


def test_fused_optimizer_steps_equal_torch_optim_per_member():
    """Members in any order (each optimizer's members not contiguous: gathered and scattered back)."""
    from tuitune.training.fusedopt import FusedOptimizer
    from tuitune.training.loop import make_optimizer

    cfgs = [
        {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-2},
        {"optimizer": "adam", "lr": 1e-2, "beta1": 0.8, "beta2": 0.99, "weight_decay": 1e-3},
        {"optimizer": "rmsprop", "lr": 1e-2, "momentum": 0.0, "weight_decay": 0.0},
        {"optimizer": "sgd", "lr": 0.05, "momentum": 0.0},
        {"optimizer": "adamw", "lr": 1e-2, "weight_decay": 0.1},
        {"optimizer": "rmsprop", "lr": 3e-3, "momentum": 0.7, "weight_decay": 1e-3},
    ]
    g = torch.Generator().manual_seed(0)
    shapes = [(5, 3), (5,)]
    solo = [[torch.randn(s, generator=g).requires_grad_() for s in shapes] for _ in cfgs]
    opts = [make_optimizer(c, ps, torch.device("cpu")) for c, ps in zip(cfgs, solo)]
    stacked = [torch.stack([ps[j].detach() for ps in solo]).requires_grad_() for j in range(len(shapes))]
    fo = FusedOptimizer(stacked, [o.param_groups[0] for o in opts], [c["optimizer"] for c in cfgs])
    for step in range(1, 4):
        grads = [torch.randn((len(cfgs), *s), generator=g) for s in shapes]
        for i, (ps, o) in enumerate(zip(solo, opts)):
            for j, p in enumerate(ps):
                p.grad = grads[j][i].clone()
            o.step()
        fo.step(stacked, tuple(grads), [c["lr"] for c in cfgs], [step] * len(cfgs))
    for i, ps in enumerate(solo):
        for j, p in enumerate(ps):
            assert torch.allclose(stacked[j][i], p, rtol=1e-6, atol=1e-7), (cfgs[i], j)
        want = opts[i].state_dict()["state"]
        got = fo.member_state(i, 3)
        assert set(want) == set(got) and all(set(want[j]) == set(got[j]) for j in want), (cfgs[i], want, got)


def test_resolve_fuse_measures_a_step_for_auto(monkeypatch):
    p = load_preset("digits-mlp")
    cpu = torch.device("cpu")
    secs = fused.step_seconds(p, {}, device=cpu, steps=3)
    assert 0 < secs < 5
    assert fused.resolve_fuse("8", p, {}, device=cpu) == 8 and fused.resolve_fuse("off", p, {}, device=cpu) == 1
    assert fused.resolve_fuse(8, load_preset("cifar10-resnet18"), {}, device=cpu) == 1  # cannot be fused
    monkeypatch.setattr(fused, "step_seconds", lambda *a, **k: 0.004)
    assert fused.resolve_fuse("auto", p, {}, device=cpu) == 5
    with pytest.raises(ValueError, match="--fuse: 'many'"):
        fused.resolve_fuse("many", p, {}, device=cpu)


# ---------------------------------------------------------------------------- with the engine's own Trial


class _Host:
    """The engine's side of a Trial, in memory: commits rows, stops a trial after a given epoch."""

    def __init__(self, stop_after=None):
        self.rows = {}
        self.stop_after = stop_after or {}

    def _between_epochs(self, trial):
        return trial.last_epoch < self.stop_after.get(trial.number, 10**9)

    def _report(self, trial, epoch, row):
        self.rows.setdefault(trial.number, []).append({"epoch": epoch, **row})

    def _supersede(self, number, after):
        self.rows[number] = [r for r in self.rows.get(number, []) if r["epoch"] <= after]


def _engine_trials(host, cfgs, budget, tmp_path, committed=None):
    from tuitune.core.records import TrialRecord, TrialState
    from tuitune.core.run.trial import Trial

    committed = committed or {}
    return [
        Trial(
            host,
            TrialRecord(n, TrialState.RUNNING, c, budget=budget, epochs=tuple(committed.get(n, ()))),
            tmp_path / f"{n}.pt",
        )
        for n, c in enumerate(cfgs)
    ]


def test_engine_trials_stop_fail_and_resume_from_their_checkpoint_files(tmp_path):
    """The engine's Trial: a member stopped by the runner, one whose loss turns NaN (its row committed, then
    TrialFailed), and a second run (as after a kill) that resumes each from its own checkpoint file."""
    from tuitune.core.run.trial import TrialFailed

    p = load_preset("digits-mlp")
    obj = make_objective(p, device="cpu", seed=3)
    bad = {"optimizer": "sgd", "lr": 10.0, "momentum": 0.99, "init": "orthogonal", "weight_decay": 0.0}
    base = {**BASE, "hidden_layers": 3, "units": 512}
    cfgs = _cfgs(p, [MIXED[0], MIXED[2], bad], base=base)
    host = _Host(stop_after={1: 1})
    results = obj.train_array(cfgs, _engine_trials(host, cfgs, 2, tmp_path))
    assert results[0] is None and results[1] is None and isinstance(results[2], TrialFailed)
    assert [r["epoch"] for r in host.rows[0]] == [1, 2] and [r["epoch"] for r in host.rows[1]] == [1]
    assert not math.isfinite(host.rows[2][-1]["train_loss"])  # committed before report() raised
    assert (tmp_path / "0.pt").exists() and (tmp_path / "1.pt").exists()

    # the second run: budget 4, each member from the rows committed and its checkpoint file
    host2 = _Host()
    committed = {n: host.rows[n] for n in (0, 1)}
    assert obj.train_array(cfgs[:2], _engine_trials(host2, cfgs[:2], 4, tmp_path, committed)) == [None, None]
    assert [r["epoch"] for r in host2.rows[0]] == [3, 4] and [r["epoch"] for r in host2.rows[1]] == [2, 3, 4]
    for n in (0, 1):
        _assert_curves_equal(host.rows[n] + host2.rows[n], _solo(obj, n, cfgs[n], 4).rows)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_array_trains_and_its_checkpoints_resume_solo():
    """On a GPU (bf16 autocast, dropout from each member's CUDA generator: statistically, not bitwise, the
    solo run's): every member reports every epoch, and its checkpoint continues in the solo trainer."""
    p = load_preset("digits-mlp")
    obj = make_objective(p, device="cuda", seed=0)
    cfgs = _cfgs(p, MIXED)
    trials = [FakeTrial(n, c, 2) for n, c in enumerate(cfgs)]
    assert obj.train_array(cfgs, trials) == [None] * len(cfgs)
    for n, t in enumerate(trials):
        assert [r["epoch"] for r in t.rows] == [1, 2] and all(math.isfinite(r["val_loss"]) for r in t.rows)
        rest = _solo(obj, n, cfgs[n], 3, saved=t.saved)
        assert [r["epoch"] for r in rest.rows] == [3]


def test_members_join_as_others_leave():
    """refill: a new trial takes a finished member's place at once, a promoted trial joins from its
    checkpoint; each still equals its solo run, and the results list the joiners after the first trials."""
    p = load_preset("digits-mlp")
    obj = make_objective(p, device="cpu", seed=6)
    cfgs = _cfgs(p, MIXED)
    first = _solo(obj, 4, cfgs[4], 1)  # trial 4 ran its first rung alone; promoted to 3 epochs
    joiners = [FakeTrial(2, cfgs[2], 2), FakeTrial(4, cfgs[4], 3, saved=first.saved), FakeTrial(3, cfgs[3], 2)]
    queue = [(t.config, t) for t in joiners]
    asked = []

    def refill(free):
        asked.append(free)
        out, queue[:] = queue[:free], queue[free:]
        return out

    trials = [FakeTrial(0, cfgs[0], 3), FakeTrial(1, cfgs[1], 1)]
    for t in trials + joiners:
        t.info = {}  # provenance, as the engine's Trial has it
    results = obj.train_array(cfgs[:2], trials, refill=refill, capacity=2)
    assert results == [None] * 5 and queue == []
    assert asked[0] == 1  # trial 1 finished after epoch 1: its place is offered before epoch 2 trains
    assert [[r["epoch"] for r in t.rows] for t in trials + joiners] == [[1, 2, 3], [1], [1, 2], [2, 3], [1, 2]]
    assert [t.info["array"] for t in trials + joiners] == [2] * 5 and joiners[1].info["seed"] == 6
    for t in trials + joiners[::2]:
        _assert_curves_equal(t.rows, _solo(obj, t.number, t.config, t.budget).rows)
    _assert_curves_equal(first.rows + joiners[1].rows, _solo(obj, 4, cfgs[4], 3).rows)


def test_a_joiner_of_another_architecture_is_refused():
    p = load_preset("digits-mlp")
    obj = make_objective(p, device="cpu", seed=0)
    cfg, other = {**p.defaults}, {**p.defaults, "units": 32}
    with pytest.raises(ValueError, match="trial 1 does not share the array's architecture"):
        obj.train_array([cfg], [FakeTrial(0, cfg, 2)], refill=lambda free: [(other, FakeTrial(1, other, 1))], capacity=2)


def test_an_emptied_array_refills():
    """Capacity 1: each trial runs alone in turn, the array emptied and refilled between them."""
    p = load_preset("digits-mlp")
    obj = make_objective(p, device="cpu", seed=2)
    cfgs = _cfgs(p, MIXED[1:4])
    trials = [FakeTrial(n, c, 1) for n, c in enumerate(cfgs)]
    queue = [(c, t) for c, t in zip(cfgs[1:], trials[1:])]

    def refill(free):
        out, queue[:] = queue[:free], queue[free:]
        return out

    assert obj.train_array(cfgs[:1], trials[:1], refill=refill, capacity=1) == [None] * 3
    for n, t in enumerate(trials):
        _assert_curves_equal(t.rows, _solo(obj, n, cfgs[n], 1).rows)
