"""tuitune: a terminal control room for hyperparameter tuning of PyTorch models.

The public Python API (docs/DESIGN.md 4.1)::

    import tuitune as tt
    space = tt.Space(lr=tt.Float(1e-5, 1e-1, scale="log"), units=tt.Int(32, 512, step=32))
    session = tt.tune(objective, space, strategy="bayes", trials=30, max_epochs=10)
    session.best.config; session.export("best.json")
"""

from __future__ import annotations

__version__ = "0.1.0.dev0"

from tuitune.core.api import Session, load, tune
from tuitune.core.errors import TuituneError
from tuitune.core.records import TrialRecord, TrialState
from tuitune.core.space import Choice, Fixed, Float, Int, Space
from tuitune.core.trial import Trial

__all__ = [
    "Choice",
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
    "load",
    "tune",
]
