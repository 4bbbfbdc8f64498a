"""Tests the datasets: torchvision's on-disk formats, the device-resident batches, offline errors, devices."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

from tests.support.datasets import CIFAR_FILES, md5, write_cifar10, write_imagefolder, write_mnist
from tuitune.training import data as D
from tuitune.training.data import DataError, DeviceError, crop_flip, load_data, resolve_device


@pytest.fixture(autouse=True)
def _fresh_cache():
    D.clear_cache()
    yield
    D.clear_cache()


# ---------------------------------------------------------------------------- devices and folders


def test_resolve_device_cpu_and_auto():
    assert resolve_device("cpu") == torch.device("cpu")
    auto = resolve_device(None)
    assert auto.type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        assert auto.type in ("cpu", "mps")


@pytest.mark.parametrize("spec", ["gpu", "tpu:0", "cuda:99"])
def test_resolve_device_unknown_or_absent(spec):
    with pytest.raises(DeviceError, match="device"):
        resolve_device(spec)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_resolve_device_cuda_missing_says_so():
    with pytest.raises(DeviceError, match="CUDA is not available.*--device cpu"):
        resolve_device("cuda")


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("TUITUNE_DATA", str(tmp_path / "d"))
    assert D.default_data_dir() == tmp_path / "d"
    monkeypatch.delenv("TUITUNE_DATA")
    assert D.default_data_dir().name == "data" and "tuitune" in str(D.default_data_dir())


# ---------------------------------------------------------------------------- datasets on disk


def test_digits_offline_split_and_cache():
    d = load_data({"dataset": "digits", "val_fraction": 0.2}, device="cpu")
    assert len(d.x_train) + len(d.x_val) == 1797
    assert len(d.x_val) == round(1797 * 0.2)
    assert d.x_train.dtype == torch.uint8 and d.x_train.shape[1:] == (1, 8, 8)
    assert d.num_classes == 10
    assert load_data({"dataset": "digits", "val_fraction": 0.2}, device="cpu") is d  # cached per process
    # the split is fixed by split_seed, not by the session
    D.clear_cache()
    again = load_data({"dataset": "digits", "val_fraction": 0.2}, device="cpu")
    assert torch.equal(again.y_val, d.y_val)


@pytest.mark.parametrize(("dataset", "cls"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_idx_files(tmp_path, dataset, cls):
    x, y = write_mnist(tmp_path, cls, n_train=50)
    d = load_data({"dataset": dataset, "val_fraction": 0.2, "download": False}, data_dir=tmp_path, device="cpu")
    assert len(d.x_val) == 10 and len(d.x_train) == 40
    assert d.x_train.shape[1:] == (1, 28, 28)
    # the images are torchvision's, bit for bit, only reordered by the split
    all_x = torch.cat([d.x_train, d.x_val]).squeeze(1)
    all_y = torch.cat([d.y_train, d.y_val])
    order = torch.argsort(all_y * 10**6 + all_x.flatten(1).long().sum(1))
    ref = torch.from_numpy(x)
    ref_order = torch.argsort(torch.from_numpy(y).long() * 10**6 + ref.flatten(1).long().sum(1))
    assert torch.equal(all_x[order], ref[ref_order])
    xb, yb = next(d.train_batches(16, d.make_generator(0)))
    assert xb.dtype == torch.float32 and xb.shape == (16, 1, 28, 28)
    assert abs(float(d.normalise(d.x_train).mean())) < 1e-3  # normalised with the train split's statistics


def test_cifar10_pickles(tmp_path, monkeypatch):
    """torchvision checks the md5 of each CIFAR file; our tiny files have their own, so the test gives the
    class its own checksum table (what the check compares against): the real reader and the real check run."""
    import torchvision.datasets as tvd

    x, y = write_cifar10(tmp_path)
    base = tmp_path / "cifar-10-batches-py"
    sums = {name: md5(base / name) for name in CIFAR_FILES}
    monkeypatch.setattr(tvd.CIFAR10, "train_list", [[n, sums[n]] for n in CIFAR_FILES[:5]])
    monkeypatch.setattr(tvd.CIFAR10, "test_list", [["test_batch", sums["test_batch"]]])
    monkeypatch.setattr(tvd.CIFAR10, "meta", {**tvd.CIFAR10.meta, "md5": md5(base / "batches.meta")})
    d = load_data(
        {"dataset": "cifar10", "val_fraction": 0.25, "augment": True, "download": False},
        data_dir=tmp_path,
        device="cpu",
    )
    assert len(d.x_train) == 30 and len(d.x_val) == 10
    assert d.x_train.shape[1:] == (3, 32, 32)
    # CHW from CIFAR's rows: pixel (c, i, j) is data[c * 1024 + i * 32 + j]
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(0))
    first = perm[10].item()  # the first training image after the split
    assert torch.equal(d.x_train[0, 2, 5, 7], torch.tensor(x[first, 2 * 1024 + 5 * 32 + 7], dtype=torch.uint8))
    assert d.y_train[0].item() == y[first]
    xb, _ = next(d.train_batches(8, d.make_generator(1)))
    assert xb.shape == (8, 3, 32, 32)


def test_cifar10_corrupt_files_offline_is_a_clear_error(tmp_path, monkeypatch):
    write_cifar10(tmp_path)  # md5s are not the real ones
    t0 = time.perf_counter()
    with pytest.raises(DataError, match="cifar-10-python.tar.gz"):
        load_data({"dataset": "cifar10", "download": False}, data_dir=tmp_path, device="cpu")
    assert time.perf_counter() - t0 < 5


def test_imagefolder_streams(tmp_path):
    write_imagefolder(tmp_path / "imgs")
    d = load_data(
        {"dataset": "imagefolder", "root": str(tmp_path / "imgs"), "val_fraction": 0.25, "num_workers": 0}, device="cpu"
    )
    assert d.num_classes == 3 and len(d.val_idx) == 4 and len(d.train_idx) == 14
    xb, yb = next(d.train_batches(4, d.make_generator(0), image_size=8))
    assert xb.shape == (4, 3, 8, 8) and xb.dtype == torch.float32 and yb.dtype == torch.long
    n = sum(len(y) for _, y in d.val_batches(3, image_size=8))
    assert n == 4


def test_imagefolder_missing_folder(tmp_path):
    with pytest.raises(DataError, match="one folder per class"):
        load_data({"dataset": "imagefolder", "root": str(tmp_path / "nope")}, device="cpu")


# ---------------------------------------------------------------------------- offline


def test_missing_dataset_offline_fails_fast_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "_reachable", lambda url, timeout=5.0: "ossci-datasets.s3.amazonaws.com is unreachable")
    t0 = time.perf_counter()
    with pytest.raises(DataError) as e:
        load_data({"dataset": "mnist"}, data_dir=tmp_path, device="cpu")
    assert time.perf_counter() - t0 < 5
    msg = str(e.value)
    assert str(tmp_path / "MNIST" / "raw") in msg and "train-images-idx3-ubyte" in msg and "unreachable" in msg


def test_download_error_is_caught(tmp_path, monkeypatch):
    """The host answers but the download fails: torchvision's real download path runs and its error is ours."""
    monkeypatch.setattr(D, "_reachable", lambda url, timeout=5.0: None)

    def no_network(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    t0 = time.perf_counter()
    with pytest.raises(DataError, match="could not be downloaded") as e:
        load_data({"dataset": "fashion-mnist"}, data_dir=tmp_path, device="cpu")
    assert time.perf_counter() - t0 < 5
    assert "FashionMNIST" in str(e.value)
    with pytest.raises(DataError, match="cifar-10-batches-py"):
        load_data({"dataset": "cifar10"}, data_dir=tmp_path, device="cpu")


def test_reachable_reports_a_refused_port():
    assert D._reachable("http://127.0.0.1:9/", timeout=1.0) is not None


# ---------------------------------------------------------------------------- batches on the device


def test_crop_flip_is_a_padded_crop_or_its_mirror():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    out = crop_flip(x, g, pad=2)
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for b in range(16):
        found = any(
            torch.equal(out[b], c) or torch.equal(out[b], c.flip(-1))
            for dy in range(5)
            for dx in range(5)
            for c in [padded[b, :, dy : dy + 8, dx : dx + 8]]
        )
        assert found
    # with no padding, an image is itself or its mirror, and both happen
    out0 = crop_flip(x, torch.Generator().manual_seed(1), pad=0)
    same = [torch.equal(out0[b], x[b]) for b in range(16)]
    assert all(s or torch.equal(out0[b], x[b].flip(-1)) for b, s in enumerate(same)) and 0 < sum(same) < 16


def test_train_fraction_and_resize():
    d = load_data({"dataset": "digits", "val_fraction": 0.2}, device="cpu")
    seen = sum(len(y) for _, y in d.train_batches(64, d.make_generator(0), fraction=0.5))
    assert seen == d.n_train(0.5) == round(len(d.x_train) * 0.5)
    xb, _ = next(d.train_batches(10, d.make_generator(0), image_size=12))
    assert xb.shape == (10, 1, 12, 12)
    # same generator state, same batches
    a = [y for _, y in d.train_batches(100, d.make_generator(3))]
    b = [y for _, y in d.train_batches(100, d.make_generator(3))]
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert np.isclose(sum(len(v) for _, v in d.val_batches(7)), len(d.x_val))


def test_channel_stats_equal_the_float_mean_and_std():
    from tuitune.training.data import _channel_stats

    x = torch.randint(0, 256, (20000, 3, 5, 5), dtype=torch.uint8)  # > one 8192-image chunk
    x[:, 1] //= 4  # channels with different statistics
    mean, std = _channel_stats(x)
    f = x.to(torch.float64) / 255.0
    want_mean = f.mean(dim=(0, 2, 3))
    want_std = f.permute(1, 0, 2, 3).reshape(3, -1).std(dim=1, unbiased=False)
    assert mean == pytest.approx(want_mean.tolist(), abs=1e-12)
    assert std == pytest.approx(want_std.tolist(), abs=1e-9)
