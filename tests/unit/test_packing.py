"""--workers auto's decision as a pure function, and the coordinator's bookkeeping of it (packing.py)."""

from __future__ import annotations

import pytest

from tuitune.core.run.packing import Packer, Probe, decide
from tuitune.core.run.placement import Placement
from tuitune.core.run.workers import WorkerError


def gpu(peak: float, free: float, busy: float | None, total: float = 80_000) -> Probe:
    return Probe("cuda", peak, free, total, busy)


def test_a_gpu_grows_until_utilisation_would_pass_its_limit():
    # 1 worker, 30% busy: 3 workers make 90%; memory (70 GB free of 80, 12 kept, 2 GB each) allows 30 more.
    d = decide([gpu(2000, 70_000, 0.30)], current=1, cap=8)
    assert d.workers == 3
    assert "memory allows 30" in d.reason and "utilisation 3" in d.reason and "cap 8" in d.reason


def test_memory_with_its_margin_limits_a_gpu_that_is_idle():
    # 20 GB free, 15% of 80 GB (12 GB) kept: 8 GB left, 3 GB a worker -> 2 more.
    assert decide([gpu(3000, 20_000, 0.05)], current=1, cap=8).workers == 3
    # The hungriest worker counts, and a full device never shrinks the count (only out of memory does).
    assert decide([gpu(1000, 12_500, 0.1), gpu(9000, 12_500, 0.1)], current=2, cap=8).workers == 2


def test_the_cap_and_an_unknown_utilisation_hold_it_back():
    assert decide([gpu(100, 79_000, 0.01)], current=1, cap=8).workers == 8
    d = decide([gpu(100, 79_000, None)], current=2, cap=8)
    assert d.workers == 3 and "unknown" in d.reason  # one more per measurement without NVML


def test_on_the_cpu_the_cores_a_worker_keeps_busy_decide():
    cpu = [Probe("cpu", 800, 20_000, 24_000, busy=0.95, cores=4)]
    assert decide(cpu, current=1, cap=4).workers == 4
    waits = [Probe("cpu", 800, 20_000, 24_000, busy=0.5, cores=2)]  # half its time waiting on data
    assert decide(waits, current=1, cap=8).workers == 4
    assert decide(waits, current=1, cap=2).workers == 2
    tight = [Probe("cpu", 800, 4_500, 24_000, busy=0.95, cores=4)]  # 4.5 GB free, 3.6 GB kept
    assert decide(tight, current=1, cap=4).workers == 2


def test_on_a_cpu_other_jobs_keep_busy_no_worker_is_added():
    quiet = [Probe("cpu", 800, 20_000, 24_000, busy=0.95, cores=2, load=1.3)]  # the worker and the coordinator
    assert decide(quiet, current=1, cap=2).workers == 2
    shared = [Probe("cpu", 800, 20_000, 24_000, busy=0.47, cores=2, load=4.0)]  # it gets half a core
    d = decide(shared, current=1, cap=2)
    assert d.workers == 1 and "other work 3.03 (load average 4.00)" in d.reason


def test_the_packer_decides_once_every_worker_measured_and_shrinks_for_good():
    p = Packer(cap=lambda d: 4)
    probe = {"kind": "cuda", "peak_mb": 1000, "free_mb": 70_000, "total_mb": 80_000, "busy": 0.2}
    d = p.measured("cuda:0", 0, probe, [0])
    assert d is not None and d.workers == 4 and p.target("cuda:0") == 4
    assert p.measured("cuda:0", 1, probe, [0, 1, 2, 3]) is None  # waits for the others
    for slot in (0, 2, 3):
        stay = p.measured("cuda:0", slot, probe, [0, 1, 2, 3])
    assert stay is not None and stay.workers == 4 and p.target("cuda:0") == 4  # at the cap: stays
    assert p.measured("cuda:0", 0, {"nonsense": 1}, [0]) is None
    assert p.shrink("cuda:0", was=4) == 3
    assert p.shrink("cuda:0", was=4) == 3  # a second error from the same packing shrinks no further
    assert p.shrink("cuda:0", was=3) == 2
    assert p.measured("cuda:0", 0, {**probe, "busy": 0.01}, [0, 1]) is None  # no growth after a shrink
    assert p.shrink("cuda:1", was=1) is None  # one worker: nothing to shrink, the trial fails


def test_placement_parses_auto_in_one_place():
    p = Placement.parse(devices="cpu", workers="auto")
    assert p.auto and p.workers == "auto" and p.parallel == 1 and p.shows_where
    assert Placement.from_info(p.to_info()) == p
    assert p.argv()[2:4] == ["--workers", "auto"]
    assert Placement.parse(devices="cpu", workers=" AUTO ").workers == "auto"
    assert Placement.parse(devices="cpu", workers="3").workers == 3  # the command line hands over text
    assert "packed" in p.where()


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"workers": "lots"}, "--workers 'lots': give a whole number >= 1, auto (packed from measurements), or 0"),
        ({"workers": "-2"}, "--workers '-2'"),
        ({"backend": "ray", "workers": "auto"}, "--workers auto packs this machine's devices; with --backend ray"),
    ],
)
def test_bad_workers_are_one_line(kw, words):
    with pytest.raises(WorkerError) as info:
        Placement.parse(cli=True, **kw)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_a_cpu_worker_measures_itself_without_torch():
    import sys

    from tuitune.core.run.packing import Meter

    had_torch = "torch" in sys.modules
    m = Meter()
    m.start()
    sum(i * i for i in range(200_000))  # some CPU time to count
    probe = Probe.of(m.probe() or {})
    assert probe is not None and probe.kind == "cpu" and probe.peak_mb > 10 and probe.free_mb > 0
    assert probe.total_mb >= probe.free_mb and probe.busy is not None and probe.busy > 0 and probe.cores >= 1
    assert Meter(lambda: {"kind": "cuda", "peak_mb": 1, "free_mb": 2, "total_mb": 3}).probe()["kind"] == "cuda"
    assert ("torch" in sys.modules) == had_torch  # measuring imports no torch


@pytest.mark.gpu
def test_a_cuda_worker_measures_its_peak_and_the_device():
    """Waits for a GPU (benchmarks/gpu_suite.sh runs it): the probe torch and NVML give on CUDA."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from tuitune.core.run.packing import CUDA_CONTEXT_MB, Meter

    torch.zeros(1, device="cuda")  # the context
    m = Meter()
    m.start()
    x = torch.empty(256 * 2**20, dtype=torch.uint8, device="cuda")
    probe = Probe.of(m.probe() or {})
    del x
    assert probe is not None and probe.kind == "cuda"
    assert probe.peak_mb >= 256 + CUDA_CONTEXT_MB and 0 < probe.free_mb < probe.total_mb
    assert probe.busy is None or 0.0 <= probe.busy <= 1.0
