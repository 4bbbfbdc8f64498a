"""What the integrations share (torch-free, framework-free)."""

from __future__ import annotations

from typing import Any


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The scalar entries of a metrics dict (tensors of one element, numbers), as floats; others left out."""
    out: dict[str, float] = {}
    for k, v in metrics.items():
        if hasattr(v, "numel"):
            if v.numel() != 1:
                continue
            v = v.item()
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[str(k)] = float(v)
    return out
