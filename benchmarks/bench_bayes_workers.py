"""Bayes with several workers: regret against wall time, 1 worker against 4, batch-aware against the old scheme.

The same bayes strategy and budget of trials run on functions of ``bench_bayes.py`` whose evaluation sleeps
(a config's sleep is drawn from a hash of the config, uniform in ``--sleep lo,hi`` seconds, so a config
takes the same time whatever the worker count). Side by side, per function and seed:

* ``1 worker``: the sequential baseline (nothing is ever pending);
* ``4 workers``: the batch-aware scheme (``acquisition.PENDING = "fantasy"``: the expected improvement of
  the batch {x, running trials}, the running trials' values fantasised by the GP);
* ``4 workers, constant liar``: the scheme before it (the GP conditioned on the running trials at the mean
  observed value; only their exact configs excluded).

Two ways to run them (``--mode``):

* ``real``: ``tt.tune`` with real worker processes (the Runner as coordinator; the objective sleeps in
  the workers). Time runs from the first trial's start to each trial's end (the workers' start-up, the
  same 1-2 s for every configuration, is left out and reported apart).
* ``sim``: ``tuitune.core.simulate.WorkerSim`` (the real strategy objects, the coordinator's loop) with
  the sleeps simulated; the real time of each ``ask()`` (the model's fit and search, on this machine, now)
  is added to the simulated clock, during which no new trial starts, as in the coordinator
  (``--model-time none``: not added, so the figures show the batch scheme alone, as on a machine where
  the model's time is negligible against a trial's).

Reported: the median regret (best value so far minus the optimum) over the seeds at fractions of the
1-worker median session time; the time at which each configuration's median regret first reaches the
1-worker median final regret, and its ratio to 1 worker's (the goal of issue 12: at most 0.4x).

    nice -n 10 python benchmarks/bench_bayes_workers.py --mode sim --seeds 10
    nice -n 10 python benchmarks/bench_bayes_workers.py --mode real --functions hartmann6 --seeds 10
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _sleepy_bayes import duration, sleepy_problem  # noqa: E402  (importable by the worker processes)
from bench_bayes import PROBLEMS, Problem  # noqa: E402

from tuitune.core.simulate import WorkerSim  # noqa: E402
from tuitune.core.strategies import Suggestion, Wait, make_strategy  # noqa: E402
from tuitune.core.strategies.bayes import acquisition  # noqa: E402

# (label, workers, pending scheme)
CONFIGS = [("1 worker", 1, "fantasy"), ("4 workers", 4, "fantasy"), ("4 workers, constant liar", 4, "liar")]
FRACTIONS = (0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0)


@dataclass
class Result:
    """One session: (time since the first trial started, value) per trial in order of its end."""

    events: list[tuple[float, float]]
    ask_s: list[float] = field(default_factory=list)  # real time of each ask() (sim mode)
    startup_s: float = 0.0  # from tt.tune's call to the first trial's start (real mode)


class TimedSim(WorkerSim):
    """WorkerSim whose clock also runs during each ask(): the coordinator starts nothing while it asks."""

    lo: float = 0.5
    hi: float = 1.0
    count_asks: bool = True
    asks: list[float]

    def _ask(self) -> Suggestion | Wait | None:
        t = time.perf_counter()
        sug = self.strategy.ask()
        took = time.perf_counter() - t
        self.asks.append(took)
        if self.count_asks:
            self.clock += took
        if isinstance(sug, Suggestion):
            cfg = dict(sug.config)
            self.duration = lambda number, epoch, cfg=cfg: duration(cfg, self.lo, self.hi)
        return sug


def run_sim(prob: Problem, seed: int, trials: int, workers: int, lo: float, hi: float, count_asks: bool = True) -> Result:
    s = make_strategy("bayes", prob.space, seed=seed, n_trials=trials)
    sim = TimedSim(s, curve=lambda c, e: prob.f(c), workers=workers, epochs=False)
    sim.lo, sim.hi, sim.asks, sim.count_asks = lo, hi, [], count_asks
    sim.run()
    events = sorted((r.end, float(sim.records[r.number].value)) for r in sim.runs)  # type: ignore[arg-type]
    assert len(events) == trials, len(events)
    return Result(events, ask_s=sim.asks)


def run_real(prob: Problem, seed: int, trials: int, workers: int, lo: float, hi: float, count_asks: bool = True) -> Result:
    import shutil

    import tuitune as tt

    os.environ["TT_BAYES_FN"] = prob.name
    os.environ["TT_BAYES_SLEEP"] = f"{lo},{hi}"
    db = Path(tempfile.mkdtemp(prefix="tt-bw-")) / "w.db"
    t0 = time.time()
    sess = tt.tune(sleepy_problem, prob.space, strategy="bayes", trials=trials, seed=seed, db=db, session="w",
                   devices="cpu", workers=workers)
    recs = sess.trials
    assert len(recs) == trials and all(t.state.value == "complete" for t in recs), [t.state for t in recs]
    first = min(float(t.started or 0) for t in recs)
    events = sorted((float(t.finished or 0) - first, float(t.value)) for t in recs)  # type: ignore[arg-type]
    shutil.rmtree(db.parent, ignore_errors=True)
    return Result(events, startup_s=first - t0)


def curve(res: Result, optimum: float, times: np.ndarray) -> np.ndarray:
    """Best regret so far at each time (inf before the first trial ends)."""
    ts = np.array([t for t, _ in res.events])
    best = np.minimum.accumulate(np.array([v for _, v in res.events]) - optimum)
    idx = np.searchsorted(ts, times, side="right") - 1
    return np.where(idx >= 0, best[np.clip(idx, 0, None)], np.inf)


def first_time(times: np.ndarray, med: np.ndarray, target: float) -> float | None:
    hit = np.nonzero(med <= target * (1 + 1e-12) + 1e-15)[0]
    return float(times[hit[0]]) if len(hit) else None


def _fmt(x: float) -> str:
    return "inf" if not np.isfinite(x) else f"{x:.3g}"


def report(raw: dict[str, Any], funcs: list[str], seeds: list[int], args: argparse.Namespace) -> str:
    lines = []
    ratios = {}
    for fname in funcs:
        prob = PROBLEMS[fname]
        runs = {lab: [Result(**raw[_key(args, fname, lab, s)]) for s in seeds] for lab, _, _ in CONFIGS}
        times = np.unique(np.concatenate([[t for t, _ in r.events] for rs in runs.values() for r in rs]))
        med = {lab: np.median(np.stack([curve(r, prob.optimum, times) for r in rs]), axis=0) for lab, rs in runs.items()}
        t_end = {lab: statistics.median(r.events[-1][0] for r in rs) for lab, rs in runs.items()}
        T1 = t_end["1 worker"]
        target = float(med["1 worker"][-1])
        t1 = first_time(times, med["1 worker"], target)
        lines.append(f"### {fname} ({prob.note}), {args.trials} trials, {len(seeds)} seeds\n")
        head = " | ".join(f"{f:g} T1" for f in FRACTIONS)
        lines.append(f"Median regret at fractions of T1 = {T1:.1f} s (the 1-worker median session time):\n")
        lines.append(f"| configuration | {head} | session s (median) | reaches 1 worker's final regret ({_fmt(target)}) at | ratio to 1 worker |")
        lines.append("|---|" + "---|" * (len(FRACTIONS) + 3))
        for lab, _, _ in CONFIGS:
            at = curve_at(times, med[lab], [f * T1 for f in FRACTIONS])
            t = first_time(times, med[lab], target)
            ratio = (t / t1) if (t is not None and t1) else None
            ratios[(fname, lab)] = ratio
            extra = ""
            if args.mode == "sim" and args.model_time == "real":
                asks = [a for r in runs[lab] for a in r.ask_s]
                extra = f" (ask median {1000 * statistics.median(asks):.0f} ms, max {1000 * max(asks):.0f} ms)"
            elif runs[lab][0].startup_s:
                extra = f" (start-up {statistics.median(r.startup_s for r in runs[lab]):.1f} s, not counted)"
            lines.append(
                f"| {lab} | " + " | ".join(_fmt(v) for v in at) + f" | {t_end[lab]:.1f}{extra} | "
                + ("not reached" if t is None else f"{t:.1f} s") + " | "
                + ("-" if ratio is None else f"**{ratio:.2f}x**") + " |"
            )
        # The same ratio for easier targets: the regret 1 worker's median reaches at 0.5 and 0.75 of T1.
        lines.append("")
        parts = []
        for frac in (0.5, 0.75):
            tgt = curve_at(times, med["1 worker"], [frac * T1])[0]
            base = first_time(times, med["1 worker"], tgt)
            cells = []
            for lab, _, _ in CONFIGS[1:]:
                t = first_time(times, med[lab], tgt)
                cells.append(f"{lab} " + ("not reached" if t is None or not base else f"{t / base:.2f}x"))
            parts.append(f"the regret 1 worker reaches at {frac:g} T1 ({_fmt(tgt)}, at {base or 0:.1f} s): " + ", ".join(cells))
        lines.append("Time ratios to 1 worker for " + "; ".join(parts) + ".")
        # Per seed: how often 4 workers' final regret is at most 1 worker's.
        finals = {lab: [curve(r, prob.optimum, np.array([np.inf]))[0] for r in rs] for lab, rs in runs.items()}
        wins = {lab: sum(a <= b for a, b in zip(finals[lab], finals["1 worker"])) for lab in finals}
        lines.append("")
        lines.append("Median final regret: " + "; ".join(f"{lab} {_fmt(statistics.median(v))}" for lab, v in finals.items())
                     + ". Seeds whose final regret is at most 1 worker's: "
                     + "; ".join(f"{lab} {wins[lab]}/{len(seeds)}" for lab, _, _ in CONFIGS[1:]) + ".\n")
    lines.append("Summary (time for the median regret to reach 1 worker's final median regret, over 1 worker's time):\n")
    lines.append("| function | " + " | ".join(lab for lab, _, _ in CONFIGS[1:]) + " |")
    lines.append("|---|" + "---|" * (len(CONFIGS) - 1))
    for fname in funcs:
        cells = []
        for lab, _, _ in CONFIGS[1:]:
            r = ratios[(fname, lab)]
            cells.append("not reached" if r is None else f"{r:.2f}x")
        lines.append(f"| {fname} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _key(args: argparse.Namespace, fname: str, lab: str, seed: int) -> str:
    mode = args.mode if args.mode == "real" or args.model_time == "real" else "sim-nomodel"
    return f"{mode}|{fname}|{lab}|{seed}|{args.trials}"


def curve_at(times: np.ndarray, med: np.ndarray, at: list[float]) -> list[float]:
    idx = np.searchsorted(times, at, side="right") - 1
    return [float(med[i]) if i >= 0 else float("inf") for i in idx]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("sim", "real"), default="sim")
    ap.add_argument("--functions", default="branin,hartmann6,conditional", help=f"comma-separated, of: {', '.join(PROBLEMS)}")
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--sleep", default="0.5,2.0", help="lo,hi seconds of a trial's sleep (uniform per config)")
    ap.add_argument("--raw", default="", help="JSON file of per-run results: read (runs found there are reused) and written")
    ap.add_argument("--model-time", choices=("real", "none"), default="real",
                    help="sim: add each ask()'s real time to the clock (real) or not (none)")
    ap.add_argument("--out", default="", help="markdown file to append the tables to ('' prints only)")
    args = ap.parse_args(argv)
    lo, hi = (float(x) for x in args.sleep.split(","))
    funcs = [f.strip() for f in args.functions.split(",") if f.strip()]
    seeds = list(range(args.seeds))
    raw: dict[str, Any] = json.loads(Path(args.raw).read_text()) if args.raw and Path(args.raw).exists() else {}
    runner = run_sim if args.mode == "sim" else run_real
    run_sim(PROBLEMS["branin"], 999, 12, 2, 0.0, 0.0)  # warm-up: imports and first calls stay out of the times
    started = time.time()
    for fname in funcs:
        for seed in seeds:
            for lab, workers, pending in CONFIGS:  # interleaved: the machine's load hits every configuration
                key = _key(args, fname, lab, seed)
                if key in raw:
                    continue
                acquisition.PENDING = pending
                try:
                    res = runner(PROBLEMS[fname], seed, args.trials, workers, lo, hi, args.model_time == "real")
                finally:
                    acquisition.PENDING = "fantasy"
                raw[key] = {"events": res.events, "ask_s": res.ask_s, "startup_s": res.startup_s}
                print(f"{fname} seed {seed} {lab}: {res.events[-1][0]:.1f} s", file=sys.stderr, flush=True)
                if args.raw:
                    Path(args.raw).write_text(json.dumps(raw))
    how = ("real worker processes (tt.tune, the Runner as coordinator)" if args.mode == "real" else
           "WorkerSim (real strategies, simulated sleeps; each ask()'s real time added to the clock)"
           if args.model_time == "real" else "WorkerSim (real strategies, simulated sleeps; the model's time NOT counted)")
    text = (
        f"## {args.mode}: {how}\n\n"
        f"{datetime.date.today()}; {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load average {os.getloadavg()[0]:.1f} at the end (the machine is shared); run under nice -n 10; "
        f"{time.time() - started:.0f} s for the runs not reused. Sleep per trial uniform in [{lo:g}, {hi:g}] s "
        f"(a function of the config); bayes with its defaults (lean engine), the same seeds for every configuration.\n\n"
        + report(raw, funcs, seeds, args)
    )
    print(text)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
