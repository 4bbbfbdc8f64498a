"""Benchmarks how the coordinator forms fused arrays: the code before and after grouping held suggestions by
architecture (issue 20 item 1), side by side on ``tuitune run digits-mlp``, alternating.

Each run is a fresh subprocess and database: ``tuitune run PRESET --strategy S --trials N --max-epochs E
--devices cpu --workers 1 --fuse F --headless``, timed from start to exit, with ``PYTHONPATH`` naming the
code under test (``--before DIR``: a tree of the earlier commit, e.g. from ``git archive``; after: this
checkout). Spaces: ``full`` (the preset's whole space: layers x units x batch size x activation, 960
architectures) and ``batch`` (layers, units and activation held with ``--set``, so only the batch size
varies the architecture: 4 keys). Prints per run the arrays formed (``info["array_of"]``: each array's
first trial) and their sizes, and the share of the members' epoch budgets that early stopping left
(the most a refill could put to use), then the medians per code, space and strategy.

    git archive COMMIT | tar -x -C /tmp/before
    python benchmarks/bench_fused_grouping.py --before /tmp/before            # about 15 min on 2 busy cores
    python benchmarks/bench_fused_grouping.py --before /tmp/before --reps 1 --strategies random
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HELD = ("hidden_layers=1", "units=128", "activation=relu")


def run_once(args: argparse.Namespace, code: Path, strategy: str, space: str, db: Path) -> dict:
    sets = [a for s in HELD for a in ("--set", s)] if space == "batch" else []
    cmd = [sys.executable, "-m", "tuitune", "--db", str(db), "run", args.preset, "--strategy", strategy,
           "--trials", str(args.trials), "--max-epochs", str(args.epochs), "--devices", "cpu", "--workers", "1",
           "--headless", "--fuse", str(args.fuse), "--seed", str(args.seed), "--session", "b", *sets]
    env = {**os.environ, "PYTHONPATH": str(code)}
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800, cwd=code)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    shown = subprocess.run([sys.executable, "-m", "tuitune", "--db", str(db), "show", "b", "--json"], env=env,
                           capture_output=True, text=True, check=True, cwd=code)
    trials = json.loads(shown.stdout)["trials"]
    # One entry per (array, its first trial's budget): a promoted trial runs again in a later array.
    members = collections.Counter(t["info"].get("array_of", t["number"]) for t in trials)
    sizes = sorted(members.values(), reverse=True)
    # What refilling a running array could gain at most: the epochs its members left unused (early stopping)
    # while others trained on, as a share of the member-epochs in arrays (each member's budget).
    fused = [t for t in trials if members[t["info"].get("array_of", t["number"])] > 1]
    budget = sum(t["budget"] for t in fused)
    unused = sum(max(0, t["budget"] - len(t["epochs"])) for t in fused if t["state"] in ("complete", "pruned"))
    return {"unused": unused / budget if budget else 0.0, "wall": wall, "trials": len(trials), "epochs": sum(len(t["epochs"]) for t in trials),
            "arrays": sum(1 for n in sizes if n > 1), "in_arrays": sum(n for n in sizes if n > 1),
            "sizes": sizes, "load": load}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="a tree of the code before (git archive)")
    ap.add_argument("--after", type=Path, default=ROOT, help="a tree of the code after (default: this checkout)")
    ap.add_argument("--preset", default="digits-mlp")
    ap.add_argument("--trials", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--fuse", default="8")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--strategies", default="random,hyperband,asha")
    ap.add_argument("--spaces", default="full,batch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--codes", default="before,after")
    args = ap.parse_args()
    codes = {k: v for k, v in {"before": args.before.resolve(), "after": args.after.resolve()}.items() if k in args.codes.split(",")}
    rows = []
    with tempfile.TemporaryDirectory() as d:
        run_once(argparse.Namespace(**{**vars(args), "trials": 2, "epochs": 1}), ROOT, "random", "full",
                 Path(d) / "warm.db")  # untimed: cold files
        n = 0
        for i in range(args.reps):
            for strategy in args.strategies.split(","):
                for space in args.spaces.split(","):
                    order = list(codes) if n % 2 == 0 else list(codes)[::-1]
                    n += 1
                    for name in order:
                        r = run_once(args, codes[name], strategy, space, Path(d) / f"{name}-{strategy}-{space}-{i}.db")
                        r.update(code=name, strategy=strategy, space=space)
                        rows.append(r)
                        shown = " ".join(map(str, r["sizes"]))
                        print(f"rep {i} {strategy:9} {space:5} {name:6} {r['wall']:6.1f} s  {r['trials']} trials, "
                              f"{r['epochs']} epochs, {r['arrays']} arrays holding {r['in_arrays']} "
                              f"(job sizes {shown}), member-epochs left {r['unused']:.0%}, load {r['load']:.1f}", flush=True)
    print(f"\n{args.preset}, {args.trials} trials x {args.epochs} epochs, --fuse {args.fuse}, 1 worker, cpu; "
          f"median of {args.reps}")
    for strategy in args.strategies.split(","):
        for space in args.spaces.split(","):
            for name in codes:
                sel = [r for r in rows if (r["code"], r["strategy"], r["space"]) == (name, strategy, space)]
                walls = [r["wall"] for r in sel]
                print(f"  {strategy:9} {space:5} {name:6} median {statistics.median(walls):6.1f} s "
                      f"(min {min(walls):.1f}, max {max(walls):.1f}); trials in arrays: "
                      f"{[r['in_arrays'] for r in sel]}, largest job: {[r['sizes'][0] for r in sel]}")


if __name__ == "__main__":
    main()
