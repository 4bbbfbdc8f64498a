"""Screens variants of bayes' constrained path (one objective, constraints) side by side: on the 4 HPOLib
tables under ``model_size <= median`` (``bench_tabular --part constraints``) and the 2 synthetic functions
of ``bench_constraints``, a few seeds at 30 and 50 trials, each against the default ("kept") and against
Optuna's constrained GPSampler.

A variant is a set of module constants of ``tuitune.core.search.strategies.bayes.strategy`` (``VARIANTS``);
"before" is the path as it was before issue 21's constrained work (linear slack, log EI x P(feasible) to the
end, the single-objective search effort). GPSampler's runs are reused from the full benchmarks' raw files
(tabular: the first 30 or 50 trials of its 50-trial runs; synthetic at 30 trials) or run here once (the
synthetic functions at 50 trials). Raw runs: ``benchmarks/results/constraints-screen-raw.json`` (resumed).

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_constraints_screen.py --variants before,kept --seeds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

import bench_constraints  # noqa: E402
from _goal_runs import constants, win_loss  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TABLES = ["hpolib/naval_propulsion", "hpolib/parkinsons_telemonitoring", "hpolib/protein_structure",
          "hpolib/slice_localization"]
SYNTHETIC = ["gardner", "branin-disc"]

BEFORE = {"LOG_SLACK": False, "CONSTRAINED_EXPLOIT": None, "CONSTRAINED_EFFORT": 1.0, "CONSTRAINED_SPREAD": False,
          "CONSTRAINED_ANCHORS": 0, "ehvi.WARP": ""}
EXPLOIT = {**BEFORE, "CONSTRAINED_EXPLOIT": 0.5}
VARIANTS: dict[str, dict[str, Any]] = {
    "before": BEFORE,
    "log-slack": {**BEFORE, "LOG_SLACK": True},
    "exploit": {**BEFORE, "CONSTRAINED_EXPLOIT": 0.5},
    "exploit-0.9": {**BEFORE, "CONSTRAINED_EXPLOIT": 0.9},
    "effort-2": {**BEFORE, "CONSTRAINED_EFFORT": 2.0},
    "log-slack+exploit": {**BEFORE, "LOG_SLACK": True, "CONSTRAINED_EXPLOIT": 0.5},
    "log-slack+exploit-0.9": {**BEFORE, "LOG_SLACK": True, "CONSTRAINED_EXPLOIT": 0.9},
    "spread": {**BEFORE, "CONSTRAINED_SPREAD": True},
    "exploit+anchor-1": {**EXPLOIT, "CONSTRAINED_ANCHORS": 1},
    "exploit+anchor-3": {**EXPLOIT, "CONSTRAINED_ANCHORS": 3},
    "exploit+log-slack": {**EXPLOIT, "LOG_SLACK": True},
    "exploit+effort-2": {**EXPLOIT, "CONSTRAINED_EFFORT": 2.0},
    "exploit+spread": {**EXPLOIT, "CONSTRAINED_SPREAD": True},
    "exploit+anchor-5": {**EXPLOIT, "CONSTRAINED_ANCHORS": 5},
    "exploit+anchor-3+log-slack": {**EXPLOIT, "CONSTRAINED_ANCHORS": 3, "LOG_SLACK": True},
    "exploit+anchor-3+copula": {**EXPLOIT, "CONSTRAINED_ANCHORS": 3, "ehvi.WARP": "copula"},
    "exploit+anchor-3+yj-both": {**EXPLOIT, "CONSTRAINED_ANCHORS": 3, "ehvi.WARP": "yeo-johnson-both"},
    "exploit+anchor-3+yj-both+log-slack": {**EXPLOIT, "CONSTRAINED_ANCHORS": 3, "ehvi.WARP": "yeo-johnson-both",
                                           "LOG_SLACK": True},
    "exploit+anchor-3+yj-both+effort-2": {**EXPLOIT, "CONSTRAINED_ANCHORS": 3, "ehvi.WARP": "yeo-johnson-both",
                                          "CONSTRAINED_EFFORT": 2.0},
    "exploit+anchor-3+yj": {**EXPLOIT, "CONSTRAINED_ANCHORS": 3, "ehvi.WARP": "yeo-johnson"},
}


def problems(names: list[str]) -> dict[str, bench_constraints.Problem]:
    out = {n: bench_constraints.PROBLEMS[n] for n in names if n in bench_constraints.PROBLEMS}
    tables = [n for n in names if n not in out]
    if tables:
        import bench_tabular

        out.update({d: bench_tabular.constrained_problem(bench_tabular.Table(d)) for d in tables})
    return out


def peer_runs(name: str, p: bench_constraints.Problem, seed: int, budget: int, raw: dict[str, Any]) -> list[Any]:
    """GPSampler's points for this budget: from the full benchmarks' raw runs, else run (and kept) here."""
    if name in TABLES:
        full = json.loads((RESULTS / "tabular-constraints-raw.json").read_text())
        return full[f"{name}/gp/50/{seed}"][:budget]
    full = json.loads((RESULTS / "constraints-raw.json").read_text())
    if budget <= 30 and f"{name}/gp/30/{seed}" in full:
        return full[f"{name}/gp/30/{seed}"][:budget]
    key = f"gp|{name}|{budget}|{seed}"
    if key not in raw:
        raw[key] = bench_constraints.run_optuna(p, seed, budget, "gp")
    return raw[key]


def _sign_test(ours: list[float], theirs: list[float]) -> str:
    """Paired wins-losses (lower is better; ties left out) and the two-sided sign test's p-value."""
    from scipy.stats import binomtest

    w = sum(x < y for x, y in zip(ours, theirs))
    lo = sum(x > y for x, y in zip(ours, theirs))
    return f"{w}-{lo} ({binomtest(w, w + lo).pvalue:.3g})" if w + lo else "0-0"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="before,kept")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budgets", default="30,50")
    ap.add_argument("--functions", default=",".join(TABLES + SYNTHETIC))
    ap.add_argument("--raw", default=str(RESULTS / "constraints-screen-raw.json"))
    a = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    rawp = Path(a.raw)
    raw: dict[str, Any] = json.loads(rawp.read_text()) if rawp.exists() else {}
    names = a.functions.split(",")
    probs = problems(names)
    budgets = [int(b) for b in a.budgets.split(",")]
    variants = a.variants.split(",")
    secs: dict[str, list[float]] = {v: [] for v in variants}
    best: dict[tuple[str, str, int], list[float | None]] = {}
    for v in ["gp", *variants]:
        for n in names:
            p = probs[n]
            for b in budgets:
                got = []
                for seed in range(a.seeds):
                    if v == "gp":
                        pts = peer_runs(n, p, seed, b, raw)
                    else:
                        key = f"{v}|{n}|{b}|{seed}"
                        if key not in raw:
                            with constants({} if v == "kept" else VARIANTS[v]):
                                t0 = time.perf_counter()
                                raw[key] = bench_constraints.run_tuitune(p, seed, b, "bayes")
                                secs[v].append((time.perf_counter() - t0) / b)
                        pts = raw[key]
                    got.append(bench_constraints.best_feasible(pts, p.bound, b))
                    rawp.write_text(json.dumps(raw))
                best[(v, n, b)] = got
                print(v, n, b, [None if g is None else round(g, 4) for g in got], flush=True)
    lines = [f"Screen ({a.seeds} seeds, budgets {a.budgets}; `python benchmarks/bench_constraints_screen.py "
             f"{' '.join(sys.argv[1:] if argv is None else argv)}`)", "",
             "| variant | function | trials | median | before | gp | vs before W-L (p) | vs gp W-L (p) |",
             "|---|---|---|---|---|---|---|---|"]
    ref = "before" if "before" in variants else variants[0]

    def med(xs: list[float | None], worst: float) -> float:
        return statistics.median(worst if x is None else x for x in xs)

    summary = ["| variant | median at or below gp (function x budget) | pooled W-L vs before (p) | "
               "pooled W-L vs gp (p) |", "|---|---|---|---|"]
    for v in variants:
        tally = [0, 0]
        pooled: dict[str, list[list[float]]] = {"before": [[], []], "gp": [[], []]}
        for n in names:
            for b in budgets:
                allv = [x for vv in ["gp", *variants] for x in best[(vv, n, b)] if x is not None]
                worst = max(allv, default=0.0)
                ours = [worst if x is None else x for x in best[(v, n, b)]]
                base = [worst if x is None else x for x in best[(ref, n, b)]]
                gp = [worst if x is None else x for x in best[("gp", n, b)]]
                tally[0] += med(ours, worst) <= med(gp, worst)
                # Pooled over functions and budgets: the paired wins and losses (a sign test: scales differ).
                for peer, other in (("before", base), ("gp", gp)):
                    pooled[peer][0] += ours
                    pooled[peer][1] += other
                tally[1] += 1
                lines.append(f"| {v} | {n} | {b} | {med(ours, worst):.4f} | {med(base, worst):.4f} | "
                             f"{med(gp, worst):.4f} | {win_loss(ours, base, higher_is_better=False)} | "
                             f"{win_loss(ours, gp, higher_is_better=False)} |")
        t = f"{statistics.mean(secs[v]):.3f} s/trial" if secs[v] else "cached"
        lines.append(f"| {v} | **at or below gp; pooled W-L** | | {tally[0]} of {tally[1]} | | | "
                     f"{_sign_test(*pooled['before'])} | {_sign_test(*pooled['gp'])} ({t}) |")
        summary.append(f"| {v} | {tally[0]} of {tally[1]} | {_sign_test(*pooled['before'])} | "
                       f"{_sign_test(*pooled['gp'])} |")
    print("\n".join(lines))
    print("\nPooled W-L: paired wins and losses over every function, budget and seed, with a sign test's p.")
    print("\n" + "\n".join(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
