"""Bayes with several workers: regret against wall time, 1 worker against 4, batch-aware against the old scheme.

The bayes strategy runs on functions of ``bench_bayes.py`` whose evaluation sleeps (a config's sleep is
drawn from a hash of the config, uniform in ``--sleep lo,hi`` seconds, so a config takes the same time
whatever the worker count). Side by side, per function and seed:

* ``1 worker``: the sequential baseline (nothing is ever pending), ``--trials`` trials (default 40);
* ``4 workers``: the batch-aware scheme (``acquisition.PENDING = "fantasy"``: the expected improvement of
  the batch {x, running trials}, the running trials' values fantasised by the GP);
* ``4 workers, constant liar``: the scheme before it (the GP conditioned on the running trials at the mean
  observed value; only their exact configs excluded).

The comparison is at equal wall time, not at equal trials: a user with 4 workers runs for a time, so the
4-worker sessions get ``--trials-4`` trials (default 2x ``--trials``, enough to run past 0.4 T1); their
first 40 trials follow the same rules as a 40-trial session's (``initial_design_size`` does not change
above 30 trials).

Two ways to run them (``--mode``):

* ``real``: ``tt.tune`` with real worker processes (the Runner as coordinator; the objective sleeps in
  the workers). Time runs from the first trial's start to each trial's end (the workers' start-up, the
  same 1-2 s for every configuration, is left out and reported apart).
* ``sim``: ``tuitune.simulate.WorkerSim`` (the real strategy objects, the coordinator's loop) with
  the sleeps simulated. ``--model-time`` says what each ``ask()`` (the model's fit and search) adds to the
  simulated clock, during which no new trial starts, as in the coordinator: ``cpu`` (default) its process
  CPU time, what it takes on a quiet core (on a loaded machine the wall time mostly measures the wait for
  a core); ``wall`` its wall time; ``none`` nothing (the batch scheme alone). A 1-worker session's
  suggestions do not depend on the clock, so one run (kept without the model's time) serves every mode.

Reported per function: the median regret (best value so far minus the optimum) over the seeds at
fractions of T1 (the 1-worker median session time); the time at which each configuration's median regret
first reaches the 1-worker final median regret, as a fraction of T1 (the goal of issue 12: at most 0.4);
paired per seed, how many seeds' 4-worker regret at 0.4x that seed's T1 is at most that seed's 1-worker
final regret, and the median over seeds of the time to reach it over that seed's T1.

    nice -n 10 python benchmarks/bench_bayes_workers.py --mode sim --seeds 10 --raw raw-sim.json
    nice -n 10 python benchmarks/bench_bayes_workers.py --mode sim --model-time none --seeds 10 --raw raw-sim.json
    nice -n 10 python benchmarks/bench_bayes_workers.py --mode real --functions hartmann6 --seeds 3 --configs 1,4
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

from tuitune.core.search.strategies import Suggestion, Wait, make_strategy  # noqa: E402
from tuitune.core.search.strategies.bayes import acquisition  # noqa: E402
from tuitune.simulate import WorkerSim  # noqa: E402

# (label, workers, pending scheme)
CONFIGS = [("1 worker", 1, "fantasy"), ("4 workers", 4, "fantasy"), ("4 workers, constant liar", 4, "liar")]
FRACTIONS = (0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0)
GOAL = 0.4  # issue 12: 4 workers reach 1 worker's final regret in at most 0.4x its time
MODEL_TIMES = {
    "cpu": "each ask()'s process CPU time added to the clock (what the model takes on a quiet core)",
    "wall": "each ask()'s wall time added to the clock (on a loaded machine, the wait for a core too)",
    "none": "the model's time NOT counted (the batch scheme alone)",
}


@dataclass
class Result:
    """One session: (time since the first trial started, value) per trial in order of its end."""

    events: list[tuple[float, float]]
    ask_s: list[float] = field(default_factory=list)  # wall time of each ask() (sim mode)
    ask_cpu_s: list[float] = field(default_factory=list)  # process CPU time of each ask() (sim mode)
    startup_s: float = 0.0  # from tt.tune's call to the first trial's start (real mode)


class TimedSim(WorkerSim):
    """WorkerSim whose clock also runs during each ask(): the coordinator starts nothing while it asks."""

    lo: float = 0.5
    hi: float = 1.0
    model_time: str = "cpu"
    asks: list[float]
    asks_cpu: list[float]

    def _ask(self) -> Suggestion | Wait | None:
        t, c = time.perf_counter(), time.process_time()
        sug = self.strategy.ask()
        took, took_cpu = time.perf_counter() - t, time.process_time() - c
        self.asks.append(took)
        self.asks_cpu.append(took_cpu)
        if self.model_time != "none":
            self.clock += took_cpu if self.model_time == "cpu" else took
        if isinstance(sug, Suggestion):
            cfg = dict(sug.config)
            self.duration = lambda number, epoch, cfg=cfg: duration(cfg, self.lo, self.hi)
        return sug


def run_sim(prob: Problem, seed: int, trials: int, workers: int, lo: float, hi: float, model_time: str = "cpu") -> Result:
    s = make_strategy("bayes", prob.space, seed=seed, n_trials=trials)
    sim = TimedSim(s, curve=lambda c, e: prob.f(c), workers=workers, epochs=False)
    sim.lo, sim.hi, sim.asks, sim.asks_cpu, sim.model_time = lo, hi, [], [], model_time
    sim.run()
    events = sorted((r.end, float(sim.records[r.number].value)) for r in sim.runs)  # type: ignore[arg-type]
    assert len(events) == trials, len(events)
    return Result(events, ask_s=sim.asks, ask_cpu_s=sim.asks_cpu)


def with_model_time(res: Result, model_time: str) -> Result:
    """A 1-worker sim session run with the model's time left out, its clock counting each ask()'s time.

    With one worker the suggestions do not depend on the clock (nothing is ever pending: each ask()
    follows the previous trial's end), so one run serves every ``--model-time``: trial i starts after
    the asks 0..i, and its end moves by their total."""
    if model_time == "none":
        return res
    asks = np.cumsum(res.ask_cpu_s if model_time == "cpu" else res.ask_s)
    return Result([(t + float(asks[i]), v) for i, (t, v) in enumerate(res.events)], res.ask_s, res.ask_cpu_s)


def run_real(prob: Problem, seed: int, trials: int, workers: int, lo: float, hi: float, model_time: str = "wall") -> Result:
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


def _ratio(x: float | None) -> str:
    return "not reached" if x is None else f"{x:.2f}x"


def trials_of(args: argparse.Namespace, workers: int) -> int:
    return args.trials if workers == 1 else args.trials_4


def _key(args: argparse.Namespace, fname: str, lab: str, workers: int, seed: int) -> str:
    if args.mode == "real":
        mode = "real"
    elif workers == 1:
        mode = "sim"  # one run serves every --model-time (with_model_time)
    else:
        mode = f"sim-{args.model_time}"
    return f"{mode}|{fname}|{lab}|{seed}|{trials_of(args, workers)}"


def _load(args: argparse.Namespace, raw: dict[str, Any], fname: str, lab: str, workers: int, seed: int) -> Result:
    res = Result(**raw[_key(args, fname, lab, workers, seed)])
    return with_model_time(res, args.model_time) if args.mode == "sim" and workers == 1 else res


def report(raw: dict[str, Any], funcs: list[str], seeds: list[int], args: argparse.Namespace, configs: list[tuple[str, int, str]]) -> str:
    lines = []
    summary = []
    for fname in funcs:
        prob = PROBLEMS[fname]
        runs = {lab: [_load(args, raw, fname, lab, w, s) for s in seeds] for lab, w, _ in configs}
        times = np.unique(np.concatenate([[t for t, _ in r.events] for rs in runs.values() for r in rs]))
        per_seed = {lab: np.stack([curve(r, prob.optimum, times) for r in rs]) for lab, rs in runs.items()}
        med = {lab: np.median(c, axis=0) for lab, c in per_seed.items()}
        t_end = {lab: statistics.median(r.events[-1][0] for r in rs) for lab, rs in runs.items()}
        T1 = t_end["1 worker"]
        target = float(med["1 worker"][-1])
        # Paired, per seed: that seed's 1-worker session time and final regret.
        own_T1 = [r.events[-1][0] for r in runs["1 worker"]]
        own_final = [curve(r, prob.optimum, np.array([np.inf]))[0] for r in runs["1 worker"]]
        trials = {lab: trials_of(args, w) for lab, w, _ in configs}
        lines.append(f"### {fname} ({prob.note}), {len(seeds)} seeds\n")
        lines.append(
            f"Budgets are NOT equal: 1 worker runs {args.trials} trials, 4 workers {args.trials_4} (the comparison "
            f"is at equal wall time). T1 = {T1:.1f} s, the 1-worker median session time; the goal: 4 workers reach "
            f"1 worker's final median regret ({_fmt(target)}) by {GOAL:g} T1 = {GOAL * T1:.1f} s. \"(ended)\": past the "
            f"configuration's median session time (its final regret, the budget spent).\n"
        )
        head = " | ".join(f"{f:g} T1" for f in FRACTIONS)
        lines.append(
            f"| configuration | trials | median regret at {head} | session s (median) | ask ms, median CPU / wall "
            f"| median reaches {_fmt(target)} at | seeds at or below their own 1-worker final regret by {GOAL:g}x "
            f"their T1 | per-seed time to their own 1-worker final regret, median |"
        )
        lines.append("|---|" + "---|" * (len(FRACTIONS) + 6))
        for lab, w, _ in configs:
            at = curve_at(times, med[lab], [f * T1 for f in FRACTIONS])
            t = first_time(times, med[lab], target)
            ratio = None if t is None else t / T1
            asks = [a for r in runs[lab] for a in r.ask_s]
            asks_cpu = [a for r in runs[lab] for a in r.ask_cpu_s]
            ask = (f"{1000 * statistics.median(asks_cpu):.0f} / {1000 * statistics.median(asks):.0f}"
                   if asks_cpu else "-")
            extra = ""
            if runs[lab][0].startup_s:
                extra = f" (start-up {statistics.median(r.startup_s for r in runs[lab]):.1f} s, not counted)"
            paired, seed_ratios = "-", "-"
            if w > 1:
                at_goal = [curve(r, prob.optimum, np.array([GOAL * T]))[0] for r, T in zip(runs[lab], own_T1)]
                ok = sum(a <= b for a, b in zip(at_goal, own_final))
                paired = f"**{ok}/{len(seeds)}**"
                rs = []
                for r, T, fin in zip(runs[lab], own_T1, own_final):
                    c = curve(r, prob.optimum, times)
                    tt_ = first_time(times, c, fin)
                    rs.append(np.inf if tt_ is None else tt_ / T)
                mr = float(np.median(rs))
                seed_ratios = _ratio(mr if np.isfinite(mr) else None) + f" ({sum(np.isfinite(rs))}/{len(seeds)} reach it)"
                summary.append((fname, lab, ratio, ok, len(seeds), mr if np.isfinite(mr) else None))
            lines.append(
                f"| {lab} | {trials[lab]} | "
                + " | ".join(_fmt(v) + (" (ended)" if f * T1 > t_end[lab] else "") for f, v in zip(FRACTIONS, at))
                + f" | {t_end[lab]:.1f}{extra} | {ask} | "
                + ("not reached" if t is None else f"{t:.1f} s = **{ratio:.2f} T1**") + f" | {paired} | {seed_ratios} |"
            )
        # The same ratio for easier targets: the regret 1 worker's median reaches at 0.5 and 0.75 of T1.
        lines.append("")
        parts = []
        for frac in (0.5, 0.75):
            tgt = curve_at(times, med["1 worker"], [frac * T1])[0]
            base = first_time(times, med["1 worker"], tgt)
            cells = []
            for lab, _, _ in configs[1:]:
                t = first_time(times, med[lab], tgt)
                cells.append(f"{lab} " + ("not reached" if t is None or not base else f"{t / base:.2f}x"))
            parts.append(f"the regret 1 worker reaches at {frac:g} T1 ({_fmt(tgt)}, at {base or 0:.1f} s): " + ", ".join(cells))
        lines.append("Time ratios to 1 worker for " + "; ".join(parts) + ".")
        finals = {lab: [curve(r, prob.optimum, np.array([np.inf]))[0] for r in rs] for lab, rs in runs.items()}
        lines.append("")
        lines.append("Median final regret (each at its own budget): "
                     + "; ".join(f"{lab} {_fmt(statistics.median(v))}" for lab, v in finals.items()) + ".\n")
    lines.append(f"Summary (the goal: 4 workers reach 1 worker's final regret by {GOAL:g} T1):\n")
    lines.append("| function | configuration | median curve reaches 1 worker's final median regret at | seeds at or below "
                 f"their own 1-worker final regret by {GOAL:g} T1 | per-seed time ratio, median |")
    lines.append("|---|---|---|---|---|")
    for fname, lab, ratio, ok, n, mr in summary:
        lines.append(f"| {fname} | {lab} | " + ("not reached" if ratio is None else f"{ratio:.2f} T1")
                     + f" | {ok}/{n} | {_ratio(mr)} |")
    return "\n".join(lines) + "\n"


def curve_at(times: np.ndarray, med: np.ndarray, at: list[float]) -> list[float]:
    idx = np.searchsorted(times, at, side="right") - 1
    return [float(med[i]) if i >= 0 else float("inf") for i in idx]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("sim", "real"), default="sim")
    ap.add_argument("--functions", default="branin,hartmann6,conditional", help=f"comma-separated, of: {', '.join(PROBLEMS)}")
    ap.add_argument("--trials", type=int, default=40, help="the 1-worker budget")
    ap.add_argument("--trials-4", type=int, default=0,
                    help="the 4-worker budget (default 2x --trials: 4 workers run past 0.4 T1 even with the model's time left out)")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--configs", default="1,4,liar", help="which of 1 (1 worker), 4 (4 workers), liar (4, constant liar)")
    ap.add_argument("--sleep", default="0.5,2.0", help="lo,hi seconds of a trial's sleep (uniform per config)")
    ap.add_argument("--raw", default="", help="JSON file of per-run results: read (runs found there are reused) and written")
    ap.add_argument("--model-time", choices=tuple(MODEL_TIMES), default="cpu",
                    help="sim: add each ask()'s process CPU time to the clock (cpu), its wall time (wall), or nothing (none)")
    ap.add_argument("--report-only", action="store_true", help="build the tables from --raw without running anything")
    ap.add_argument("--out", default="", help="markdown file to append the tables to ('' prints only)")
    args = ap.parse_args(argv)
    args.trials_4 = args.trials_4 or 2 * args.trials
    lo, hi = (float(x) for x in args.sleep.split(","))
    funcs = [f.strip() for f in args.functions.split(",") if f.strip()]
    seeds = list(range(args.seeds))
    wanted = {x.strip() for x in args.configs.split(",")}
    configs = [c for c, tag in zip(CONFIGS, ("1", "4", "liar")) if tag in wanted]
    if not configs or configs[0][0] != "1 worker":
        ap.error("--configs must include 1 (the baseline)")
    raw: dict[str, Any] = json.loads(Path(args.raw).read_text()) if args.raw and Path(args.raw).exists() else {}
    runner = run_sim if args.mode == "sim" else run_real
    started = time.time()
    if not args.report_only:
        run_sim(PROBLEMS["branin"], 999, 12, 2, 0.0, 0.0)  # warm-up: imports and first calls stay out of the times
    for fname in [] if args.report_only else funcs:
        for seed in seeds:
            for lab, workers, pending in configs:  # interleaved: the machine's load hits every configuration
                key = _key(args, fname, lab, workers, seed)
                if key in raw:
                    continue
                acquisition.PENDING = pending
                # One worker's sim run leaves the model's time out; with_model_time adds it afterwards.
                model_time = "none" if args.mode == "sim" and workers == 1 else args.model_time
                try:
                    res = runner(PROBLEMS[fname], seed, trials_of(args, workers), workers, lo, hi, model_time)
                finally:
                    acquisition.PENDING = "fantasy"
                raw[key] = {"events": res.events, "ask_s": res.ask_s, "ask_cpu_s": res.ask_cpu_s, "startup_s": res.startup_s}
                print(f"{fname} seed {seed} {lab}: {res.events[-1][0]:.1f} s ({time.time() - started:.0f} s)",
                      file=sys.stderr, flush=True)
                if args.raw:
                    Path(args.raw).write_text(json.dumps(raw))
    how = ("real worker processes (tt.tune, the Runner as coordinator)" if args.mode == "real" else
           f"WorkerSim (real strategies, simulated sleeps; {MODEL_TIMES[args.model_time]})")
    text = (
        f"## {args.mode}, model time {args.model_time if args.mode == 'sim' else 'real'}: {how}\n\n"
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.1f} at the end (the machine is "
        f"shared); run under nice -n 10; {time.time() - started:.0f} s for the runs not reused. Sleep per trial "
        f"uniform in [{lo:g}, {hi:g}] s (a function of the config); bayes with its defaults (lean engine), the same "
        f"seeds for every configuration.\n\n"
        + report(raw, funcs, seeds, args, configs)
    )
    print(text)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
