"""The cost of a Bayes ask with SciPy's OpenBLAS on one thread (as fixed) against on every core (as before).

Before the fix, the strategy built its threadpoolctl controller before SciPy was imported, so the
controller did not know SciPy's own OpenBLAS and L-BFGS-B's BLAS calls ran on every core. The "old"
variant rebuilds that situation; "fixed" is the strategy as it is. Each variant runs in a fresh process
(the order of imports is the point), alternately, ``--reps`` times: 30 bayes trials on Branin, the time of
each model ask (wall and process CPU) averaged. Leave OMP_NUM_THREADS and OPENBLAS_NUM_THREADS unset
(a user's default; with them at 1 both variants are the same).

    python benchmarks/bench_bayes_blas.py --reps 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHILD = r'''
import functools, json, math, sys, time
import tuitune.core.search.strategies.bayes.strategy as st
if sys.argv[1] == "old":
    from threadpoolctl import ThreadpoolController
    st._blas_controller = functools.cache(lambda: ThreadpoolController())
    st._blas_controller()  # built before SciPy is imported, as the first ask did before the fix
sys.path.insert(0, sys.argv[2])
from bench_bayes import PROBLEMS
from tuitune.core.records import TrialRecord, TrialState
from tuitune.core.search.strategies import make_strategy

branin = PROBLEMS["branin"]
s = make_strategy("bayes", branin.space, seed=0, n_trials=30)
wall, cpu, best = [], [], math.inf
for i in range(30):
    t0, c0 = time.perf_counter(), time.process_time()
    sug = s.ask()
    if sug.meta["chosen_by"] == "model":
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    v = branin.f(sug.config)
    best = min(best, v)
    s.tell(TrialRecord(number=i, state=TrialState.COMPLETE, config=sug.config, value=v, budget=1))
print(json.dumps({"wall_ms": 1000 * sum(wall) / len(wall), "cpu_ms": 1000 * sum(cpu) / len(cpu), "asks": len(wall),
                  "best": best}))
'''


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    res: dict[str, list[dict]] = {"old": [], "fixed": []}
    for _ in range(args.reps):
        for variant in res:
            out = subprocess.run([sys.executable, "-c", CHILD, variant, str(Path(__file__).resolve().parent)], env=env, capture_output=True, text=True,
                                 check=True)
            res[variant].append(json.loads(out.stdout))
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.1f} at the end; {args.reps} alternating runs per variant")
    for variant, runs in res.items():
        w = statistics.median(r["wall_ms"] for r in runs)
        c = statistics.median(r["cpu_ms"] for r in runs)
        print(f"{variant:6s} median per model ask: {w:6.1f} ms wall, {c:6.1f} ms CPU ({runs[0]['asks']} asks per run)")
    ratio = statistics.median(r["wall_ms"] for r in res["old"]) / statistics.median(r["wall_ms"] for r in res["fixed"])
    print(f"old / fixed, wall: {ratio:.2f}x")


if __name__ == "__main__":
    main()
