"""Provides the built-in trainer's step mode: ``TUITUNE_STEP=eager|compile|graph`` (issue 20 item 4).

- ``eager`` (the default): torch runs the step op by op, as written.
- ``compile``: the forward pass and loss (and, through AOTAutograd, their backward) go through
  ``torch.compile`` (inductor, default mode): fused kernels, compiled once per architecture and shape in a process.
- ``graph``: ``torch.compile(mode="reduce-overhead")``: the same, replayed as CUDA graphs (torch's CUDA
  graph trees), so a small step costs one graph launch instead of dozens of kernel launches. CUDA only.

The optimizer step stays eager in every mode (on CUDA Adam/AdamW already run fused), so a schedule's changing
learning rate is never baked into a graph. No batch is dropped or padded: the last, smaller batch of an epoch,
or an array that lost a member, is a new shape that compiles (and in ``graph`` mode records) once more. Random
ops run on torch's own generators (``fallback_random``), so dropout draws the masks eager mode would, a
checkpoint's RNG state resumes them, and a compiled curve equals the eager one within float rounding
(tests/unit/test_step.py).

Whether compiling pays is a device question: each trial compiles (seconds; inductor's cache on disk shortens
repeats), which a 20-epoch digits trial on a CPU does not earn back; the GPU suite's extended part measures
eager, compile and graph on CUDA (benchmarks/bench_step.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from tuitune.core.errors import PresetError

MODES = ("eager", "compile", "graph")
F = TypeVar("F", bound=Callable[..., Any])


def step_mode(device: torch.device | None = None) -> str:
    """The step mode ``$TUITUNE_STEP`` asks for (``eager`` when unset); a bad value, or ``graph`` on a
    device other than CUDA, is a PresetError naming the variable and what to do."""
    raw = os.environ.get("TUITUNE_STEP", "").strip().lower()
    mode = raw or "eager"
    if mode not in MODES:
        raise PresetError(f"TUITUNE_STEP={raw!r} is unknown; use eager, compile or graph (or unset it)")
    if mode == "graph" and device is not None and device.type != "cuda":
        raise PresetError(
            f"TUITUNE_STEP=graph needs a CUDA device (CUDA graphs), and this trainer runs on {device}: "
            "use TUITUNE_STEP=compile, or unset TUITUNE_STEP"
        )
    return mode


def compiled(fn: F, mode: str) -> F:
    """``fn`` as the step mode runs it: itself in ``eager`` mode, else compiled (forward, loss and backward)."""
    if mode == "eager":
        return fn
    import torch._dynamo
    import torch._inductor.config as inductor

    inductor.fallback_random = True  # dropout on torch's generators: the eager masks, resumable from a checkpoint
    # Trials of one architecture share the compiled step (parameters are inputs); each other architecture, batch
    # size or array size compiles its own, beyond dynamo's default of 8 (then it would fall back to eager).
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    if mode == "compile":
        return torch.compile(fn, dynamic=False)  # type: ignore[return-value]
    graphed = torch.compile(fn, mode="reduce-overhead", dynamic=False)

    def replay(*args: Any, **kwargs: Any) -> Any:
        torch.compiler.cudagraph_mark_step_begin()  # a new step: the last step's outputs may be overwritten
        return graphed(*args, **kwargs)

    return replay  # type: ignore[return-value]
