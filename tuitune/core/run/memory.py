"""Provides what a finished trial's process does about memory: tell torch's out-of-memory errors apart and free
what the trial left.

A module of its own, importing nothing of tuitune: a worker process calls these after every trial and
should not import the coordinator's Runner (the store, the strategies, numpy) to get them.
"""

from __future__ import annotations

import gc
import sys


def is_out_of_memory(exc: BaseException) -> bool:
    """True for torch's out-of-memory errors (CUDA, MPS, or the CPU allocator)."""
    name = type(exc).__name__
    if name == "OutOfMemoryError":
        return True
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        "out of memory" in str(exc).lower() or isinstance(exc, MemoryError)
    )


def release_memory(seconds: float = float("inf")) -> None:
    """Frees what a finished trial left: reference cycles (a model and its optimizer) and the CUDA cache.

    A full collection costs milliseconds on a large heap: it is skipped after trials so short
    (synthetic objectives) that it would dominate them, unless CUDA memory is in use.
    """
    torch = sys.modules.get("torch")
    cuda = False
    if torch is not None:
        try:
            cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
        except Exception:  # noqa: BLE001 - best effort
            cuda = False
    if cuda or seconds > 0.5:
        gc.collect()  # cheap once the long-lived heap is frozen (Runner.run calls gc.freeze)
    if cuda and torch is not None:
        torch.cuda.empty_cache()
    if torch is not None and hasattr(torch, "mps") and getattr(torch.backends, "mps", None) is not None:
        if torch.backends.mps.is_available():  # Apple GPUs keep a cache too
            gc.collect()
            torch.mps.empty_cache()
