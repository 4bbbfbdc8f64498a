"""Measures what the strategies' ask() costs as a session grows, and how long fast workers idle waiting for it.

Two parts, each run for the code of this checkout and for a base commit side by side (the base is exported
with ``git archive`` into a temporary folder and run in a subprocess with it on PYTHONPATH, so both run on the
same machine in the same minutes):

1. Ask cost. asha and hyperband (R = 27, eta = 3; sampler bayes and random) and bayes, driven by
   ``tuitune.simulate.WorkerSim`` (the coordinator's loop) with ``--workers`` simulated workers, so that
   asks see running trials as pending points; bayes once with one worker (nothing pending) too. Each ask's
   wall and CPU time is recorded with the number of configs created before it; the table gives the mean ms
   per new config in the windows up to each size of ``--sizes`` and the total to the largest.
2. Dispatch. The same loop with ``--array`` fast workers (fused-array members) whose epochs take
   ``--epoch-ms`` ms of simulated time, the clock also running while ask() runs (the coordinator starts
   nothing meanwhile): the time workers sit free waiting for a suggestion (the sum over asks of the ask's
   wall time times the free workers waiting on it), against the worker-time spent training.

    OMP_NUM_THREADS=1 python benchmarks/bench_ask.py                  # writes benchmarks/results/ask.md
    OMP_NUM_THREADS=1 python benchmarks/bench_ask.py --sizes 50,150 --base '' --out ''   # this checkout only
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    # name: (strategy, options, workers: "W" = --workers, 1 = one worker); "-bayes"/"-random": the sampler
    "asha-bayes": ("asha", {"sampler": "bayes"}, "W"),
    "asha-random": ("asha", {"sampler": "random"}, "W"),
    "hyperband-bayes": ("hyperband", {"sampler": "bayes"}, "W"),
    "hyperband-random": ("hyperband", {"sampler": "random"}, "W"),
    "bayes-1": ("bayes", {}, 1),
    "bayes-pending": ("bayes", {}, "W"),
}
R, ETA = 27, 3


def _regret(spec: dict[str, Any]) -> dict[str, Any]:
    """bench_asha's and bench_hyperband's one-worker runs (bayes sampler) on one function and seed."""
    from bench_asha import run_asha
    from bench_hyperband import PROBLEMS_MF, run_hyperband

    p = PROBLEMS_MF[spec["function"]]
    t0 = time.process_time()
    if spec["case"] == "asha":
        r = run_asha(p, spec["seed"], spec["R"], ETA, "bayes", spec["trials"])
    else:
        r = run_hyperband(p, spec["seed"], spec["R"], ETA, "bayes")
    return {"regret": r[0], "epochs": r[1], "cpu": time.process_time() - t0}


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs one case in this process (the code on PYTHONPATH) and returns its timings."""
    import tuitune  # first, from PYTHONPATH: the harness below puts this checkout on sys.path too

    code = Path(os.environ["PYTHONPATH"].split(os.pathsep)[0]).resolve()
    assert Path(tuitune.__file__).resolve().is_relative_to(code), (tuitune.__file__, code)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    if "function" in spec:
        return _regret(spec)
    from bench_workers import SPACE, curves, durations

    from tuitune.core.search.strategies import make_strategy
    from tuitune.core.search.strategies.base import Suggestion
    from tuitune.simulate import WorkerSim

    name, opts, workers = CASES[spec["case"]]
    workers = spec["workers"] if workers == "W" else workers
    n = spec["configs"]
    kw: dict[str, Any] = {"max_epochs": R, "factor": ETA} if name != "bayes" else {"max_epochs": 1}
    strategy = make_strategy(name, SPACE, seed=spec["seed"], n_trials=n, **kw, **opts)
    asks: list[tuple[int, float, float, bool, int]] = []  # (configs before, wall s, cpu s, new config, free)
    epoch = spec.get("epoch_s")

    class Timed(WorkerSim):
        def _ask(self):  # type: ignore[no-untyped-def]
            before, free = self.strategy.n_created, len(self._free)
            t, c = time.perf_counter(), time.process_time()
            sug = self.strategy.ask()
            took, took_cpu = time.perf_counter() - t, time.process_time() - c
            asks.append((before, took, took_cpu, isinstance(sug, Suggestion) and sug.trial is None, free))
            if epoch is not None:
                self.clock += took  # nothing starts while the coordinator asks
            return sug

    dur = (lambda number, e: epoch) if epoch is not None else durations("random", spec["seed"])
    sim = Timed(strategy, curves(spec["seed"]), workers=workers, duration=dur)
    t0 = time.perf_counter()
    sim.run()
    return {"asks": asks, "wall": time.perf_counter() - t0, "busy": sim.busy, "makespan": sim.makespan,
            "configs": len(sim.records), "workers": workers}


def _run(code: Path, spec: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_ask.py"), "--child", json.dumps(spec)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=code)
    if out.returncode:
        raise SystemExit(f"{spec} failed with {code} on PYTHONPATH:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _export(ref: str, into: Path) -> str:
    """The tree of commit ``ref`` written into ``into`` (read from git's objects; no worktree is made)."""
    sha = subprocess.run(["git", "rev-parse", "--short", ref], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout.strip()
    data = subprocess.run(["git", "archive", sha, "tuitune"], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return sha


def _window_ms(asks: list[list[Any]], lo: int, hi: int, col: int) -> float:
    """Mean ms of ask time per new config created in [lo, hi) (the asks that promote are counted too)."""
    total = sum(a[col] for a in asks if lo <= a[0] < hi)
    new = sum(1 for a in asks if lo <= a[0] < hi and a[3])
    return 1000 * total / new if new else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default="50,150,330", help="session sizes (configs) of the windows (default 50,150,330)")
    ap.add_argument("--bayes-max", type=int, default=150, help="bayes sessions stop here (its GP grows with every trial)")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated case names (default all)")
    ap.add_argument("--workers", type=int, default=8, help="simulated workers of the ask-cost part (default 8)")
    ap.add_argument("--array", type=int, default=16, help="fast workers of the dispatch part (default 16)")
    ap.add_argument("--epoch-ms", type=float, default=50.0, help="a fast worker's epoch (default 50 ms)")
    ap.add_argument("--dispatch-configs", type=int, default=330, help="asha configs in the dispatch part")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--regret-seeds", type=int, default=3, help="seeds of the regret check (0: none)")
    ap.add_argument("--regret-functions", default="mf-hartmann3,mf-mixed", help="bench_hyperband's functions")
    ap.add_argument("--regret-strategies", default="asha,hyperband")
    ap.add_argument("--regret-R", type=int, default=27)
    ap.add_argument("--regret-trials", type=int, default=120, help="asha's new configs (bench_asha's default)")
    ap.add_argument("--base", default="merge-base", help="commit to compare with ('merge-base': with main; '': none)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ask.md"), help="'' to not write")
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return 0

    sizes = [int(x) for x in args.sizes.split(",")]
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        codes: list[tuple[str, Path]] = []
        if args.base:
            ref = args.base
            if ref == "merge-base":
                ref = subprocess.run(["git", "merge-base", "HEAD", "main"], cwd=ROOT, check=True, capture_output=True,
                                     text=True).stdout.strip()
            codes.append((f"base {_export(ref, Path(tmp))}", Path(tmp)))
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "tuitune"], cwd=ROOT, capture_output=True, text=True)
        codes.append((f"this {head.stdout.strip()}{'+changes' if dirty.stdout.strip() else ''}", ROOT))

        wins = list(zip([0, *sizes[:-1]], sizes))
        lines = ["| case | code | " + " | ".join(f"ms/new config, {lo}-{hi}" for lo, hi in wins)
                 + " | total ask s (wall) | total ask s (CPU) | configs |",
                 "|---|---|" + "---:|" * (len(wins) + 3)]
        for case in cases:
            n = min(sizes[-1], args.bayes_max) if case.startswith("bayes") else sizes[-1]
            for label, code in codes:
                r = _run(code, {"case": case, "configs": n, "seed": args.seed, "workers": args.workers})
                asks = r["asks"]
                cells = [f"{_window_ms(asks, lo, hi, 1):.1f}" if lo < n else "" for lo, hi in wins]
                row = (f"| {case} | {label} | " + " | ".join(cells) + f" | {sum(a[1] for a in asks):.2f} | "
                       f"{sum(a[2] for a in asks):.2f} | {r['configs']} |")
                print(row, flush=True)
                lines.append(row)

        dl = ["| case | code | fast workers | epoch ms | asks | ask wall s | worker-s idle waiting for a suggestion "
              "| worker-s training | idle / (idle + training) | makespan s |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for case in ("asha-bayes", "hyperband-bayes"):
            if case not in cases:
                continue
            for label, code in codes:
                r = _run(code, {"case": case, "configs": args.dispatch_configs, "seed": args.seed,
                                "workers": args.array, "epoch_s": args.epoch_ms / 1000})
                asks = r["asks"]
                idle = sum(a[1] * a[4] for a in asks)
                row = (f"| {case} | {label} | {r['workers']} | {args.epoch_ms:g} | {len(asks)} | "
                       f"{sum(a[1] for a in asks):.1f} | {idle:.1f} | {r['busy']:.1f} | "
                       f"{idle / (idle + r['busy']):.0%} | {r['makespan']:.1f} |")
                print(row, flush=True)
                dl.append(row)

        rl = ["| strategy (bayes sampler) | function | code | regret per seed | median regret | CPU s |",
              "|---|---|---|---|---:|---:|"]
        for case in args.regret_strategies.split(",") if args.regret_seeds else ():
            for fn in args.regret_functions.split(","):
                for label, code in codes:
                    rs = [_run(code, {"case": case, "function": fn, "seed": seed, "R": args.regret_R,
                                      "trials": args.regret_trials}) for seed in range(args.regret_seeds)]
                    reg = [r["regret"] for r in rs]
                    row = (f"| {case} | {fn} | {label} | {', '.join(f'{x:.4g}' for x in reg)} | "
                           f"{sorted(reg)[len(reg) // 2]:.4g} | {sum(r['cpu'] for r in rs):.1f} |")
                    print(row, flush=True)
                    rl.append(row)

    import numpy
    import torch

    cond = (
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M')} UTC; {platform.machine()}, "
        f"{os.cpu_count()} cores shared with other work, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, CPU only; "
        f"torch {torch.__version__}, numpy {numpy.__version__}\n"
        f"- space: bench_workers.SPACE (lr log-float, width log-int, dropout float, act choice of 3); curves: "
        f"bench_workers.curves(seed {args.seed}); asha and hyperband R = {R}, eta = {ETA}, n_trials = the size\n"
        f"- ask cost: {args.workers} simulated workers (lognormal epoch times), bayes one worker and {args.workers}; "
        f"bayes sessions stop at {args.bayes_max} configs; each code runs in its own subprocess, one after the other\n"
        f"- dispatch: {args.array} fast workers, every epoch {args.epoch_ms:g} ms, {args.dispatch_configs} configs; the "
        "clock runs during each ask; idle = the sum over asks of the ask's wall time times the workers free then\n"
        f"- the run took {(time.time() - started) / 60:.1f} min: "
        f"`OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} python benchmarks/bench_ask.py "
        + " ".join(argv if argv is not None else sys.argv[1:]) + "`"
    )
    if args.regret_seeds:
        cond += (f"\n- regret: bench_asha.run_asha ({args.regret_trials} configs) and bench_hyperband.run_hyperband, "
                 f"one worker, R = {args.regret_R}, eta = {ETA}, seeds 0..{args.regret_seeds - 1}; the best noise-free "
                 "final value among configs trained to R, minus the optimum")
    text = "\n".join(lines) + "\n\n" + "\n".join(dl) + "\n\n" + ("\n".join(rl) + "\n\n" if args.regret_seeds else "") + cond
    print("\n" + text)
    if args.out:
        Path(args.out).write_text(f"# What an ask costs as the session grows\n\n{text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
