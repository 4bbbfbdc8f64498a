"""Placement: where trials run, parsed once, stored as one value, turned back into flags."""

from __future__ import annotations

import pytest

from tuitune.core.run.placement import Placement
from tuitune.core.run.workers import WorkerError


def test_parse_store_and_read_back():
    p = Placement.parse(devices="cpu", workers=2, max_failures=5, trial_timeout=30, fuse=4)
    assert (p.backend, p.devices, p.workers, p.fuse, p.parallel) == ("local", ("cpu",), 2, 4, 2)
    info = p.to_info()
    assert set(info) == {"placement"} and "max_failures" not in info["placement"]  # limits are one run's
    back = Placement.from_info(info)
    assert (back.devices, back.workers, back.fuse, back.max_failures, back.trial_timeout) == (("cpu",), 2, 4, 3, None)


def test_a_resume_takes_the_stored_values_it_is_not_given():
    stored = Placement.parse(devices="cpu", workers=3, backend="local")
    p = Placement.parse(stored=stored, trial_timeout=9.5)
    assert (p.devices, p.workers, p.trial_timeout) == (("cpu",), 3, 9.5)
    assert Placement.parse(stored=stored, workers=1).workers == 1
    ray = Placement(backend="ray", workers=2, ray_address="10.0.0.1:6379", gpus_per_trial=0.5)
    assert Placement.parse(stored=ray).ray_address == "10.0.0.1:6379"  # the stored cluster while it stays ray
    assert Placement.parse(stored=ray, backend="local").ray_address is None


def test_sessions_stored_before_the_placement_still_read():
    old = {"device": "cpu", "devices": ["cpu"], "workers": 2, "backend": "local", "data_dir": "/d"}
    assert Placement.from_info(old) == Placement(devices=("cpu",), workers=2)
    assert Placement.from_info({"backend": "ray", "ray_address": "auto"}).ray_address == "auto"
    assert Placement.from_info({}) == Placement()


def test_argv_asks_for_the_same_placement():
    p = Placement.parse(devices="cpu", workers=2, max_failures=4, trial_timeout=12.0)
    argv = p.argv()
    assert argv == ["--devices", "cpu", "--workers", "2", "--max-failures", "4", "--backend", "local",
                    "--trial-timeout", "12.0", "--fuse", "off"]
    from tuitune.cli import _placement, build_parser

    args = build_parser().parse_args(["resume", "s", *argv])
    assert Placement.parse(**_placement(args)) == p
    for fuse in ("auto", 8):  # --detach resumes with the session's arrays
        q = Placement.parse(devices="cpu", workers=1, fuse=fuse)
        assert q.argv()[-2:] == ["--fuse", str(fuse)]
        assert Placement.parse(**_placement(build_parser().parse_args(["resume", "s", *q.argv()]))) == q
        assert Placement.from_info(q.to_info()) == Placement(devices=("cpu",), workers=1, fuse=fuse)


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"devices": "gpu0"}, "not a device name"),
        ({"devices": "cpu,cpu"}, "--devices names cpu twice; for several workers on one device use --workers N"),
        ({"workers": -1}, "--workers -1"),
        ({"backend": "slurm"}, "--backend 'slurm' is unknown"),
        ({"ray_address": "h:1"}, "--ray-address and --gpus-per-trial are options of --backend ray"),
        ({"backend": "ray", "workers": 0}, "--workers 0 (--in-process) is for the local backend"),
        ({"fuse": 0}, "--fuse 0"),
        ({"fuse": "lots"}, "--fuse 'lots': give a whole number from 1 (off) to 1024, auto or off"),
        ({"fuse": "auto", "workers": 0}, "arrays of trials train in workers"),
        ({"fuse": 2, "workers": 0}, "arrays of trials train in workers"),
    ],
)
def test_bad_values_are_one_line_in_the_words_of_the_command_line(kw, words):
    with pytest.raises(WorkerError) as info:
        Placement.parse(cli=True, **kw)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_python_errors_name_the_keywords():
    with pytest.raises(WorkerError, match="devices names cpu twice; for several workers on one device use workers N"):
        Placement.parse(devices=["cpu", "cpu"])


def test_the_where_column_names_a_trials_array():
    from tuitune.core.text import where_words

    assert Placement(fuse="auto").shows_where and Placement(fuse=8).shows_where
    assert not Placement(workers=1).shows_where
    assert where_words({"worker": 0, "device": "cpu", "array": 8, "array_of": 3}) == "w0 cpu [a3 x8]"
    assert where_words({"worker": 1, "device": "cuda:0", "array": 1, "array_of": 5}) == "w1 cuda:0"  # alone
    assert where_words({"node": "n2", "device": "cuda:0"}) == "n2 cuda:0"
    assert where_words({}) == "-"
