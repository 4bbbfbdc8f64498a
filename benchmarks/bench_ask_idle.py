"""Benchmarks how long real workers wait for the coordinator's suggestions (issue 20 item 5).

Runs ``tuitune run digits-mlp --devices cpu|cuda --workers W --fuse F --headless`` (the architecture held with
``--set``, so arrays form) for each case, a fresh subprocess and database each, and reads the line the Runner
writes to the session's log at the end of the run (coordinator.py's AskClock): the asks, their wall seconds,
and the worker-seconds idle waiting for a suggestion (each ask's time times the workers free meanwhile), with
their share of the run's worker-seconds since the first ask.

    python benchmarks/bench_ask_idle.py                        # asha (bayes sampler) and bayes, 2 workers, fuse 8
    python benchmarks/bench_ask_idle.py --cases asha-random --trials 32
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXED = ("batch_size=32", "hidden_layers=1", "units=128", "activation=relu")
CASES = {
    "asha-bayes": ["--strategy", "asha", "--sampler", "bayes"],
    "asha-random": ["--strategy", "asha", "--sampler", "random"],
    "bayes": ["--strategy", "bayes"],
    "random": ["--strategy", "random"],
}
LINE = re.compile(
    r"asks: (\d+) in ([\d.]+) s \(([\d.]+) ms each\); workers idle waiting for a suggestion: ([\d.]+) worker-s, "
    r"([\d.]+)% of (\d+) worker\(s\) x ([\d.]+) s"
)


def run_case(case: str, args: argparse.Namespace, tmp: Path) -> dict:
    db = tmp / f"{case}.db"
    sets = [a for s in FIXED for a in ("--set", s)]
    trials = args.bayes_trials if case in ("bayes",) else args.trials
    cmd = [sys.executable, "-m", "tuitune", "--db", str(db), "run", args.preset, *CASES[case], "--trials", str(trials),
           "--devices", args.devices, "--workers", str(args.workers), "--fuse", str(args.fuse), "--headless",
           "--seed", str(args.seed), "--session", "b", *sets]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    log = (tmp / f"{case}.db.d" / "logs" / "b" / "session.log").read_text()
    m = LINE.search(log)
    if m is None:
        raise SystemExit(f"no asks line in the session log:\n{log[-2000:]}")
    return {"case": case, "trials": trials, "asks": int(m[1]), "ask_s": float(m[2]), "ms_each": float(m[3]),
            "idle": float(m[4]), "share": float(m[5]), "workers": int(m[6]), "since_first_ask": float(m[7]), "wall": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="digits-mlp")
    ap.add_argument("--cases", default="asha-bayes,bayes")
    ap.add_argument("--trials", type=int, default=64)
    ap.add_argument("--bayes-trials", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--devices", default="cpu", help="tuitune run's --devices (cuda on the GPU suite)")
    ap.add_argument("--fuse", default="8")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as t:
        for case in args.cases.split(","):
            r = run_case(case, args, Path(t))
            rows.append(r)
            print(f"  {case}: {r}", flush=True)
    print()
    print(f"## Workers waiting for suggestions ({args.preset}, {args.devices}, --workers {args.workers}, --fuse {args.fuse})")
    print()
    print("| case | trials | asks | ask s | ms/ask | worker-s idle waiting | idle share | run s (since first ask) | wall s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['case']} | {r['trials']} | {r['asks']} | {r['ask_s']:.2f} | {r['ms_each']:.1f} | {r['idle']:.2f} | "
              f"{r['share']:.1f}% | {r['since_first_ask']:.1f} | {r['wall']:.1f} |")


if __name__ == "__main__":
    main()
