"""Provides what the devices panel shows: each worker's device, trial and epoch, its process memory,
and, where NVIDIA's management library answers, its GPU's utilisation and memory.

Nothing here imports torch: process memory comes from ``/proc``, GPU figures from NVML
(``nvidia-ml-py``), which is absent or finds no GPU on a CPU machine; then those columns stay empty.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WorkerRow:
    """One worker as the devices panel shows it."""

    worker: str
    device: str
    pid: int | None
    trial: int | str | None  # several numbers ("3,4") for a worker that trains a fused array
    epoch: str
    rss_mb: float | None
    gpu_util: int | None = None
    gpu_mem_mb: float | None = None
    gpu_total_mb: float | None = None


def process_rss_mb(pid: int | None) -> float | None:
    """Resident memory of a process in MiB (Linux /proc), or None."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def gpu_stats() -> dict[int, tuple[int, float, float]]:
    """{GPU index: (utilisation %, memory used MiB, memory total MiB)} from NVML; {} without it."""
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver: a CPU machine
        return {}
    out = {}
    try:
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            util = pynvml.nvmlDeviceGetUtilizationRates(h).gpu
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            out[i] = (int(util), mem.used / 2**20, mem.total / 2**20)
    except Exception:  # noqa: BLE001 - a GPU that stopped answering shows nothing, never an error
        pass
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass
    return out


def _gpu_index(device: str) -> int | None:
    if not device.startswith("cuda"):
        return None
    try:
        return int(device.partition(":")[2] or 0)
    except ValueError:
        return None


def worker_rows(workers: Iterable[dict[str, Any]]) -> list[WorkerRow]:
    """Rows for workers given as ``{"worker", "device", "pid", "trial", "epoch"}`` dicts."""
    gpus = None
    rows = []
    for w in workers:
        device = str(w.get("device") or "auto")
        index = _gpu_index(device)
        util = used = total = None
        if index is not None:
            if gpus is None:
                gpus = gpu_stats()
            if index in gpus:
                util, used, total = gpus[index]
        rows.append(WorkerRow(
            worker=str(w.get("worker", "-")), device=device, pid=w.get("pid"), trial=w.get("trial"),
            epoch=str(w.get("epoch", "-")), rss_mb=process_rss_mb(w.get("pid")), gpu_util=util, gpu_mem_mb=used,
            gpu_total_mb=total,
        ))
    return rows
