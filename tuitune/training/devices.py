"""Provides the built-in trainer's device helpers in one place: a device from its name (checked),
and its human name (freeing memory after a trial is the engine's ``release_memory``)."""

from __future__ import annotations

import torch

from tuitune.core.errors import SetupError
from tuitune.core.run.placement import available_devices, use_hint  # noqa: F401 - available_devices: its home is the engine


class DeviceError(SetupError):
    """A device that does not exist or is not available on this machine."""




def _use(flag: str) -> str:
    """What to type instead, from what exists (the engine's rule, ``placement.use_hint``)."""
    return use_hint(flag)


def resolve_device(spec: str | torch.device | None = None, *, flag: str = "--device") -> torch.device:
    """The torch device for ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or None (CUDA, then MPS, then CPU).

    ``flag`` is the option the user gave it with, for the hint of an error."""
    if spec is None or spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(spec)
    except (RuntimeError, TypeError):
        raise DeviceError(f"device {spec!r} is not a device name (cpu, cuda, cuda:N, mps); {_use(flag)}") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {spec!r}: CUDA is not available here (torch {torch.__version__}, built for CUDA "
                f"{torch.version.cuda or 'none'}, no usable GPU found); {_use(flag)}"
            )
        n = torch.cuda.device_count()
        index = 0 if dev.index is None else dev.index
        if index >= n:
            raise DeviceError(f"device {spec!r} does not exist here; {_use(flag)}")
        return torch.device("cuda", index)
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError(f"device {spec!r}: Apple MPS is not available here; {_use(flag)}")
        return dev
    raise DeviceError(f"device {spec!r}: only cpu, cuda, cuda:N and mps are supported; {_use(flag)}")


def device_name(dev: torch.device) -> str:
    """The device's human name: the GPU model, or the CPU's."""
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    if dev.type == "mps":
        return "Apple MPS"
    import platform

    return platform.processor() or platform.machine() or "cpu"
