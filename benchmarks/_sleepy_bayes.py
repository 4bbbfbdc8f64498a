"""The sleep-bound objective of bench_bayes_workers.py: a bench_bayes.py function whose evaluation sleeps.

In a module of its own so that worker processes can import it (benchmarks/ is on their sys.path). The
function is named by ``TT_BAYES_FN`` and the sleep is drawn per config from ``TT_BAYES_SLEEP`` ("lo,hi"
seconds, uniform from a hash of the config, so a config takes the same time whatever the worker count).
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any


def duration(config: dict[str, Any], lo: float, hi: float) -> float:
    h = hashlib.sha256(repr(sorted(config.items())).encode()).digest()
    return lo + (hi - lo) * int.from_bytes(h[:8], "big") / 2**64


def sleepy_problem(config: dict[str, Any], trial: Any) -> float:
    from bench_bayes import PROBLEMS

    lo, hi = (float(x) for x in os.environ.get("TT_BAYES_SLEEP", "0.5,1.0").split(","))
    time.sleep(duration(config, lo, hi))
    return float(PROBLEMS[os.environ["TT_BAYES_FN"]].f(config))
