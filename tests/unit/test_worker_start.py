"""A worker's start (issue 20, warm workers): the dataset on the device before the first trial, the device's
initialisation beside the reading, the dataset read once per process, the phases said, the coordinator
without torch while its trials train in workers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest
import torch

from tuitune.core.run.workers import StartClock
from tuitune.testing import FakeTrial
from tuitune.training import data
from tuitune.training.objective import build_objective
from tuitune.training.presets import load_preset


@pytest.fixture
def reads(monkeypatch):
    """Counts the reads of the digits dataset (the cache is emptied before and after)."""
    data.clear_cache()
    count = []
    real = data._load_digits

    def counted():
        count.append(1)
        return real()

    monkeypatch.setattr(data, "_load_digits", counted)
    yield count
    data.clear_cache()


def test_a_built_objective_holds_its_dataset_and_every_trial_and_array_reuses_it(reads):
    p = load_preset("digits-mlp")
    obj = build_objective(p.to_dict(), device="cpu", data_dir=None, seed=3)
    assert len(reads) == 1  # read while the worker starts, before any trial
    assert {"device", "data", "warm step"} <= set(obj.start_phases)
    cfg = {**p.defaults, "train_fraction": 0.25}
    for n in range(2):
        assert obj(cfg, FakeTrial(n, cfg, 1)) is None
    cfgs = [{**cfg, "lr": lr} for lr in (1e-3, 3e-3)]
    assert obj.train_array(cfgs, [FakeTrial(n, c, 1) for n, c in zip((5, 6), cfgs)]) == [None, None]
    assert len(reads) == 1  # two trials and an array job later: never read again


def test_preload_initialises_the_device_while_the_dataset_is_read(reads, monkeypatch):
    """The device's initialisation runs in its own thread at the same time as the reading; the copy to the
    device waits for it."""
    reading, initialised = threading.Event(), threading.Event()
    seen: dict[str, object] = {}
    real_read = data._load_digits

    def read():
        reading.set()
        seen["init done before reading ended"] = initialised.wait(30)  # returns only if both run at once
        return real_read()

    def init(dev):
        seen["reading while initialising"] = reading.wait(30)
        seen["init thread"] = threading.current_thread().name
        initialised.set()

    monkeypatch.setattr(data, "_load_digits", read)
    monkeypatch.setattr(data, "init_device", init)
    took = data.preload({"dataset": "digits", "val_fraction": 0.2}, device="cpu")
    assert seen == {"reading while initialising": True, "init done before reading ended": True,
                    "init thread": "tuitune-device-init"}
    assert set(took) == {"device", "data"}
    assert isinstance(data.load_data({"dataset": "digits", "val_fraction": 0.2}, device="cpu").x_train, torch.Tensor)


def test_the_start_clock_names_each_phase_and_writes_the_worker_log(tmp_path):
    log = tmp_path / "worker-0.log"
    clock = StartClock(str(log), spawned=100.0, entered=100.25)
    phases = clock.phases(2.0, {"device": 0.5, "data": 0.75})
    assert phases["spawn"] == 0.25 and phases["import"] == 0.75 and phases["ready"] > 0
    assert list(phases) == ["spawn", "import", "device", "data", "ready"]
    clock.said_ready(phases)
    clock.job()
    clock.first_epoch()
    lines = log.read_text().splitlines()
    assert lines[0].startswith("--- worker ready: spawn 0.25 s, import 0.75 s, device 0.50 s, data 0.75 s, ready ")
    assert lines[1].startswith("--- first epoch committed: first job ")


def test_the_coordinator_does_not_import_torch_while_its_trials_train_in_workers(tmp_path):
    """Building the launch of a built-in preset with workers leaves torch to the workers (a second or two of
    the coordinator's start); in this process it is built at once."""
    code = textwrap.dedent(f"""
        import sys
        from tuitune.launch import new_run
        launch = new_run("digits-mlp", db={str(tmp_path / "a.db")!r}, session="w", trials=1,
                         placement={{"devices": "cpu", "workers": 1}})
        launch.runner()
        print("workers", "torch" in sys.modules)
        launch = new_run("digits-mlp", db={str(tmp_path / "a.db")!r}, session="p", trials=1,
                         placement={{"devices": "cpu", "workers": 0}})
        print("in-process", "torch" in sys.modules, callable(launch.objective.train_array))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["workers False", "in-process True True"]


def test_warm_workers_never_download_a_dataset(tmp_path, monkeypatch):
    """The form's warm workers start only for a dataset on disk: a worker's start would download it while the
    user merely looks at the preset; Start downloads it as before."""
    from tuitune.launch import prewarm
    from tuitune.training.catalog import on_disk

    monkeypatch.setenv("TUITUNE_DATA", str(tmp_path / "data"))
    assert not on_disk({"dataset": "mnist"}) and not on_disk({"dataset": "cifar10"})
    assert prewarm("mnist-mlp", db=tmp_path / "a.db", placement={"devices": "cpu"}) is None
    assert not (tmp_path / "a.db.d").exists()  # nothing started, nothing written
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"")
    assert on_disk({"dataset": "mnist"}) and on_disk({"dataset": "digits"})
    assert not on_disk({"dataset": "imagefolder", "root": str(tmp_path / "none")})
