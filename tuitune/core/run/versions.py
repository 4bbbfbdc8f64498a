"""Provides the versions each trial records: Python, tuitune and (when installed) torch, CUDA and cuDNN."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any


def versions() -> dict[str, Any]:
    """Python, tuitune and (when loaded) torch, CUDA and cuDNN versions, for each trial's record."""
    from tuitune import __version__

    out: dict[str, Any] = {"python": platform.python_version(), "tuitune": __version__}
    torch = sys.modules.get("torch")
    if torch is None:
        # Installed, though this process never imported it (a CPU run's coordinator does not): its build's
        # own version file, plain constants read in a millisecond (importing torch takes seconds), says what
        # torch.__version__ would ("2.4.1+cu121", not the distribution's "2.4.1") and the CUDA it was built for.
        try:
            built = _torch_version_file()
            out["torch"], out["cuda"] = built.__version__, built.cuda
        except Exception:  # noqa: BLE001
            try:
                from importlib.metadata import version

                out["torch"] = version("torch")
            except Exception:  # noqa: BLE001
                out["torch"] = None
    if torch is not None:
        out["torch"] = torch.__version__
        out["cuda"] = torch.version.cuda
        try:
            out["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        except Exception:  # noqa: BLE001
            out["cudnn"] = None
    return out


def _torch_version_file() -> Any:
    """``torch/version.py`` of the installed torch, run on its own (it imports only ``typing``)."""
    import importlib.util

    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("torch is not installed")
    path = os.path.join(next(iter(spec.submodule_search_locations)), "version.py")
    vspec = importlib.util.spec_from_file_location("_tuitune_torch_version", path)
    if vspec is None or vspec.loader is None:
        raise ImportError(path)
    module = importlib.util.module_from_spec(vspec)
    vspec.loader.exec_module(module)
    return module
