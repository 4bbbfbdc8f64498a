"""tuitune: a terminal control room for hyperparameter tuning of PyTorch models.

The public Python API (docs/DESIGN.md 4.1)::

    import tuitune as tt
    space = tt.Space(lr=tt.Float(1e-5, 1e-1, scale="log"), units=tt.Int(32, 512, step=32))
    session = tt.tune(objective, space, strategy="bayes", trials=30, max_epochs=10)
    session.best.config; session.export("best.json")

The names are loaded on first use (PEP 562): a worker process imports ``tuitune.core.run.workers``, and with
it this package, before every trial it runs; it should not pay for the store, numpy and the strategies
(half a second per worker) that only the coordinator needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

if TYPE_CHECKING:
    from tuitune.core.api import Session, load, tune
    from tuitune.core.errors import TuituneError
    from tuitune.core.records import TrialRecord, TrialState
    from tuitune.core.run.command import Command, checkpoint_dir, report
    from tuitune.core.run.trial import Trial
    from tuitune.core.search.space import Choice, Fixed, Float, Int, Space

_HOMES = {
    "Command": "tuitune.core.run.command",
    "checkpoint_dir": "tuitune.core.run.command",
    "report": "tuitune.core.run.command",
    "Session": "tuitune.core.api",
    "load": "tuitune.core.api",
    "tune": "tuitune.core.api",
    "TuituneError": "tuitune.core.errors",
    "TrialRecord": "tuitune.core.records",
    "TrialState": "tuitune.core.records",
    "Choice": "tuitune.core.search.params",
    "Fixed": "tuitune.core.search.params",
    "Float": "tuitune.core.search.params",
    "Int": "tuitune.core.search.params",
    "Space": "tuitune.core.search.space",
    "Trial": "tuitune.core.run.trial",
    # imports transformers, only when asked for; no static import of it here (tuitune.core imports this package)
    "hf_search": "tuitune.integrations.transformers",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'tuitune' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


__all__ = [
    "Choice",
    "Command",
    "Fixed",
    "Float",
    "Int",
    "Session",
    "Space",
    "Trial",
    "TrialRecord",
    "TrialState",
    "TuituneError",
    "__version__",
    "checkpoint_dir",
    "hf_search",
    "load",
    "report",
    "tune",
]
