"""Screens the constrained path's anchors and warp in bayes' single-objective path, side by side with the default.

The variants are module switches of ``tuitune.core.search.strategies.bayes.strategy`` (``SINGLE_ANCHORS``,
``SINGLE_WARP``; off by default), set around each run as ``bench_constraints_screen.py`` does: "default" (both
off), "anchors-3" (the 3 best trials each start a local search of the acquisition), "warp" (Yeo-Johnson of losses
with a long bad tail, ``ehvi._warp``) and "both". Problems: the real tables of ``bench_tabular --part single`` and
the synthetic functions of ``bench_bayes``, each run through ``bench_bayes.run_tuitune`` (one run per budget:
bayes knows its budget). Each variant is paired by seed against "default" and against Optuna's GPSampler, whose
runs are read from the committed raw files (tables: ``tabular-single-raw.json``, the 30- and 50-trial prefixes of
its 50-trial runs; synthetic: ``bayes-raw-30-all.json``, 30 trials, logscale has none). Raw runs:
``benchmarks/results/bayes-single-screen-raw.json`` (resumed).

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_single_screen.py --part tables --seeds 5 --budgets 30,50
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_single_screen.py --part synthetic --seeds 10 --budgets 30
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

import bench_bayes  # noqa: E402
from _goal_runs import constants, paired  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TABLES = ["hpolib/naval_propulsion", "hpolib/parkinsons_telemonitoring", "hpolib/protein_structure",
          "hpolib/slice_localization", "nb201/cifar10", "hpobench/phoneme"]
SYNTHETIC = ["branin", "hartmann3", "hartmann6", "levy4", "styblinski4", "mixed", "logscale"]
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {"SINGLE_ANCHORS": 0, "SINGLE_WARP": None},
    "anchors-3": {"SINGLE_ANCHORS": 3, "SINGLE_WARP": None},
    "warp": {"SINGLE_ANCHORS": 0, "SINGLE_WARP": "yeo-johnson"},
    "both": {"SINGLE_ANCHORS": 3, "SINGLE_WARP": "yeo-johnson"},
}


def problems(part: str, names: list[str]) -> dict[str, bench_bayes.Problem]:
    if part == "synthetic":
        return {n: bench_bayes.PROBLEMS[n] for n in names}
    import bench_tabular

    return {n: bench_tabular.single_problem(bench_tabular.Table(n)) for n in names}


def gp_regret(part: str, name: str, seed: int, budget: int) -> float | None:
    """GPSampler's regret after ``budget`` trials from the committed raw runs (None: not there)."""
    if part == "tables":
        full = _load("tabular-single-raw.json")
        r = full.get(f"{name}|optuna-gp|{seed}|50")
    else:
        full = _load("bayes-raw-30-all.json")
        r = full.get(f"{name}|optuna-gp|{seed}|30")
    return None if r is None else r["regret"].get(str(budget))


_RAW: dict[str, dict[str, Any]] = {}


def _load(name: str) -> dict[str, Any]:
    if name not in _RAW:
        _RAW[name] = json.loads((RESULTS / name).read_text())
    return _RAW[name]


def _cell(ours: list[float], theirs: list[float | None], tally: list[int]) -> str:
    """``W-L (p)`` of ours against theirs (lower regret wins), its counts added to ``tally``."""
    w, lo, pv = paired(list(ours), theirs, higher_is_better=False)
    tally[0] += w
    tally[1] += lo
    return f"{w}-{lo} ({pv:.2g})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("tables", "synthetic"), required=True)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budgets", default="30,50")
    ap.add_argument("--functions", default="", help="comma-separated; the part's list when empty")
    ap.add_argument("--raw", default=str(RESULTS / "bayes-single-screen-raw.json"))
    a = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    rawp = Path(a.raw)
    raw: dict[str, Any] = json.loads(rawp.read_text()) if rawp.exists() else {}
    names = a.functions.split(",") if a.functions else (TABLES if a.part == "tables" else SYNTHETIC)
    probs = problems(a.part, names)
    budgets = [int(b) for b in a.budgets.split(",")]
    variants = a.variants.split(",")
    if "default" not in variants:
        variants.insert(0, "default")
    secs: dict[str, list[float]] = {v: [] for v in variants}
    reg: dict[tuple[str, str, int], list[float]] = {}
    for n in names:
        for b in budgets:
            for v in variants:
                got = []
                for seed in range(a.seeds):
                    key = f"{v}|{n}|{b}|{seed}"
                    if key not in raw:
                        with constants(VARIANTS[v]):
                            t0 = time.process_time()
                            run = bench_bayes.run_tuitune(probs[n], seed, b, [b], engine="lean")
                            raw[key] = {"regret": run.regret[b], "cpu_s": time.process_time() - t0}
                        rawp.write_text(json.dumps(raw))
                    got.append(raw[key]["regret"])
                    secs[v].append(raw[key]["cpu_s"] / b)
                reg[(v, n, b)] = got
                print(v, n, b, [round(g, 5) for g in got], flush=True)
    others = [v for v in variants if v != "default"]
    lines = [f"`OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_single_screen.py "
             f"{' '.join(sys.argv[1:] if argv is None else argv)}`: {a.seeds} seeds, budgets {a.budgets}.", "",
             "Median regret per variant; `W-L (p)`: the variant's seeds with lower - higher regret than the "
             "other's (Wilcoxon signed-rank, two-sided, paired by seed; ties left out).", ""]
    for b in budgets:
        head = (["problem"] + [f"{v} median" for v in variants] + ["GPSampler median"]
                + [f"{v} vs default" for v in others] + [f"{v} vs GPSampler" for v in variants])
        lines += [f"#### {b} trials", "", "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
        pooled = {v: [0, 0] for v in others}
        pooled_gp = {v: [0, 0] for v in variants}
        for n in names:
            gp = [gp_regret(a.part, n, s, b) for s in range(a.seeds)]
            gpv = [g for g in gp if g is not None]
            cells = [bench_bayes._fmt(statistics.median(reg[(v, n, b)])) for v in variants]
            cells.append(bench_bayes._fmt(statistics.median(gpv)) if gpv else "-")
            cells += [_cell(reg[(v, n, b)], list(reg[("default", n, b)]), pooled[v]) for v in others]
            cells += [_cell(reg[(v, n, b)], gp, pooled_gp[v]) if gpv else "-" for v in variants]
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
        lines += ["", "Seed-runs pooled over the problems, vs default: "
                  + ", ".join(f"{v} {w}-{lo}" for v, (w, lo) in pooled.items())
                  + "; vs GPSampler: " + ", ".join(f"{v} {w}-{lo}" for v, (w, lo) in pooled_gp.items()) + ".", ""]
    lines.append("CPU ms per trial (this run's new runs, mean): " + ", ".join(
        f"{v} {1000 * statistics.mean(s):.0f}" for v, s in secs.items() if s) + ".")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
