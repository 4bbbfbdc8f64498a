"""Benchmarks fused arrays end to end on the command line: ``tuitune run digits-mlp`` with ``--fuse off``,
``--fuse 8`` and ``--fuse auto``, side by side, alternating, on the same seed (issue 20's CPU figure).

Each run is a fresh subprocess and a fresh database: ``tuitune run PRESET --strategy random --trials N
--max-epochs E --devices cpu --headless --fuse WAY`` timed from start to exit (start-up, the worker,
the coordinator and every commit included). Two spaces: ``fixed`` (the architecture held with ``--set``,
so arrays can form: batch size, layers, units, activation) and ``full`` (the preset's whole space: the
Runner groups consecutive suggestions of one architecture, so arrays are rare). Prints one line per run,
then the median seconds per way and space with its ratio to ``off``, and how many trials trained in arrays.
An untimed warm-up run goes first, and the order of the ways rotates from rep to rep.

    python benchmarks/bench_fused_cli.py                       # 32 trials x 10 epochs, 3 reps (about 10 min)
    python benchmarks/bench_fused_cli.py --trials 8 --reps 1   # a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXED = ("batch_size=32", "hidden_layers=1", "units=128", "activation=relu")


def run_once(args: argparse.Namespace, way: str, space: str, tmp: Path, i: int) -> dict:
    db = tmp / f"{space}-{way}-{i}.db"
    sets = [a for s in FIXED for a in ("--set", s)] if space == "fixed" else []
    cmd = [sys.executable, "-m", "tuitune", "--db", str(db), "run", args.preset, "--strategy", "random",
           "--trials", str(args.trials), "--max-epochs", str(args.epochs), "--devices", "cpu", "--headless",
           "--fuse", way, "--seed", str(args.seed), "--session", "b", *sets]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    shown = subprocess.run([sys.executable, "-m", "tuitune", "--db", str(db), "show", "b", "--json"], env=env,
                           capture_output=True, text=True, check=True)
    trials = json.loads(shown.stdout)["trials"]
    fused = sum(1 for t in trials if (t["info"].get("array") or 1) > 1)
    sizes = sorted({t["info"].get("array") or 1 for t in trials})
    epochs = sum(len(t["epochs"]) for t in trials)
    return {"way": way, "space": space, "wall": wall, "fused": fused, "sizes": sizes, "epochs": epochs,
            "trials": len(trials), "load": load}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="digits-mlp")
    ap.add_argument("--trials", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--ways", default="off,8,auto")
    ap.add_argument("--spaces", default="fixed,full")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ways, spaces = args.ways.split(","), args.spaces.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as d:
        # Untimed: the first run after a while pays for cold files (torch's libraries, bytecode); whichever
        # way ran first would carry it.
        run_once(argparse.Namespace(**{**vars(args), "trials": 2, "epochs": 1}), ways[0], spaces[0], Path(d), -1)
        for i in range(args.reps):
            for space in spaces:
                k = i % len(ways)
                for way in ways[k:] + ways[:k]:  # each rep runs every way once, the first way rotating
                    r = run_once(args, way, space, Path(d), i)
                    rows.append(r)
                    print(f"rep {i} {space:5} --fuse {way:4} {r['wall']:6.1f} s  {r['trials']} trials, "
                          f"{r['epochs']} epochs, {r['fused']} in arrays (sizes {r['sizes']}), load {r['load']:.1f}",
                          flush=True)
    print(f"\n{args.preset}, {args.trials} trials x {args.epochs} epochs, random, cpu; median of {args.reps}")
    for space in spaces:
        base = statistics.median(r["wall"] for r in rows if r["space"] == space and r["way"] == ways[0])
        for way in ways:
            walls = [r["wall"] for r in rows if r["space"] == space and r["way"] == way]
            med = statistics.median(walls)
            print(f"  {space:5} --fuse {way:4} median {med:6.1f} s (min {min(walls):.1f}, max {max(walls):.1f})"
                  f"  speed-up vs {ways[0]}: {base / med:.2f}x")


if __name__ == "__main__":
    main()
