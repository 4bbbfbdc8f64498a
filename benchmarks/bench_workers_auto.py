"""Benchmarks ``--workers auto`` against ``--workers 1`` and ``--workers 2``, side by side, end to end.

Each way is the real command line (``tuitune run digits-mlp --devices cpu --headless``, a new database
each time), timed from the command's start to its end: workers' start-up, measuring and the added
workers all count. Rounds alternate the order of the ways (auto, 1, 2; then 2, 1, auto; ...) so a change
in the machine's load hits every way. Prints trials/min of each way per round, the median ratios of
auto over 1 and over 2, the packing decisions ``auto`` made (from the session's log), and the load
average before and after (the machine may be shared: say how loaded it was).

    python benchmarks/bench_workers_auto.py                       # 12 trials x 3 epochs, 3 rounds, --fuse default
    python benchmarks/bench_workers_auto.py --trials 8 --rounds 2 --fuse off
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(way: str, args: argparse.Namespace, tmp: Path, tag: str) -> tuple[float, list[str]]:
    """Seconds for one session with ``--workers way``, and the packing lines of its log."""
    db = tmp / f"{tag}.db"
    argv = [sys.executable, "-m", "tuitune", "--db", str(db), "run", "digits-mlp", "--devices", args.device,
            "--workers", way, "--trials", str(args.trials), "--max-epochs", str(args.epochs), "--seed", str(args.seed),
            "--session", "b", "--headless"]
    if args.fuse is not None:
        argv += ["--fuse", args.fuse]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp)
    secs = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"--workers {way} failed (rc {p.returncode}):\n{p.stderr[-2000:]}")
    log = next(tmp.glob(f"{tag}.db.d/**/session.log"), None) or next(tmp.glob(f"**/{tag}*/**/session.log"), None)
    lines = [line.strip() for line in log.read_text().splitlines() if "packing" in line] if log else []
    return secs, lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fuse", default=None, help="--fuse for every way (default: tuitune's default)")
    ap.add_argument("--ways", default="auto,1,2", help="the --workers values to compare (auto first)")
    ap.add_argument("--device", default="cpu", help="--devices for every way (cuda:0 on a GPU machine)")
    args = ap.parse_args()
    ways = args.ways.split(",")
    assert ways[0] == "auto", "--ways starts with auto"
    load0 = os.getloadavg()
    print(f"digits-mlp, {args.trials} trials x {args.epochs} epochs, --fuse {args.fuse or 'default'}, {args.device}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average {load0[0]:.2f}")
    print(f"{'round':>5} {'order':>12} " + " ".join(f"{'--workers ' + w + ' s':>16}" for w in ways)
          + " " + " ".join(f"{w + ' trials/min':>16}" for w in ways) + " " + " ".join(f"{'auto/' + w:>7}" for w in ways[1:]))
    secs: dict[str, list[float]] = {w: [] for w in ways}
    decisions: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-workers-auto-") as d:
        tmp = Path(d)
        for r in range(args.rounds):
            order = ways if r % 2 == 0 else ways[::-1]
            got: dict[str, float] = {}
            for way in order:
                got[way], lines = run(way, args, tmp, f"r{r}-{way}")
                secs[way].append(got[way])
                if way == "auto":
                    decisions += lines
            rate = {w: args.trials * 60 / got[w] for w in ways}
            print(f"{r + 1:>5} {'-'.join(order):>12} " + " ".join(f"{got[w]:>16.2f}" for w in ways) + " "
                  + " ".join(f"{rate[w]:>16.1f}" for w in ways) + " "
                  + " ".join(f"{got[w] / got['auto']:>6.2f}x" for w in ways[1:]))
    load1 = os.getloadavg()
    med = {w: statistics.median(secs[w]) for w in ways}
    print("median trials/min: " + ", ".join(f"--workers {w} {args.trials * 60 / med[w]:.1f}" for w in ways)
          + "; " + ", ".join(f"auto/{w} {statistics.median(a / b for a, b in zip(secs[w], secs['auto'])):.2f}x"
                             for w in ways[1:])
          + f"; load average {load0[0]:.2f} -> {load1[0]:.2f}")
    for line in dict.fromkeys(line.split(" ", 2)[2] for line in decisions):
        print("auto decided:", line)


if __name__ == "__main__":
    main()
