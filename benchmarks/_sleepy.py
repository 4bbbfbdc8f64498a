"""The sleep-bound objective of bench_parallel.py, in a module of its own so worker processes can import it."""

from __future__ import annotations

import os
import time


def sleepy(config, trial):
    for e in trial.epochs():
        time.sleep(float(os.environ.get("TT_SLEEP", "0.2")))
        trial.report(val_loss=(config["x"] - 0.3) ** 2 + 1.0 / e)
