"""Measures tuitune's bayes with two objectives (log EHVI) against Optuna's TPESampler and NSGAIISampler.

Each method runs the same bi-objective test functions through ask/tell (no database): ZDT1 and ZDT2 (6-D),
DTLZ2 with two objectives (6-D), and "hpo": a surrogate of a network's validation error against its size
(log width, depth, log learning rate, dropout; the error has an optimum in the learning rate and falls
with size, the size is log10 of the parameter count). Per function and budget: the hypervolume of the
non-dominated trials (objectives minimised, a fixed reference point), its median over the seeds, and
bayes against each peer (wins-losses and a paired Wilcoxon signed-rank test). Random search is the floor.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_multiobjective.py --seeds 10 --trials 50
    python benchmarks/bench_multiobjective.py --seeds 2 --trials 30 --functions zdt1 --raw '' --out ''

Optuna's samplers do not know the budget, so the shorter budgets (``--checkpoints``) are read off one run;
bayes knows it (its initial design depends on it), so it makes one run per budget.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _goal_runs import run_all, win_loss  # noqa: E402

from tuitune.core.records import Objectives, TrialRecord, TrialState, hypervolume_2d  # noqa: E402
from tuitune.core.search.space import Float, Space  # noqa: E402
from tuitune.core.search.strategies import make_strategy  # noqa: E402


@dataclass
class Problem:
    name: str
    space: Space
    f: Callable[[dict[str, Any]], tuple[float, float]]
    ref: tuple[float, float]


def _xs(c: dict[str, Any], d: int) -> list[float]:
    return [float(c[f"x{i}"]) for i in range(d)]


def zdt1(c: dict[str, Any]) -> tuple[float, float]:
    x = _xs(c, 6)
    g = 1 + 9 * sum(x[1:]) / 5
    return x[0], g * (1 - math.sqrt(x[0] / g))


def zdt2(c: dict[str, Any]) -> tuple[float, float]:
    x = _xs(c, 6)
    g = 1 + 9 * sum(x[1:]) / 5
    return x[0], g * (1 - (x[0] / g) ** 2)


def dtlz2(c: dict[str, Any]) -> tuple[float, float]:
    x = _xs(c, 6)
    g = sum((v - 0.5) ** 2 for v in x[1:])
    return (1 + g) * math.cos(x[0] * math.pi / 2), (1 + g) * math.sin(x[0] * math.pi / 2)


def hpo(c: dict[str, Any]) -> tuple[float, float]:
    """Validation error vs log10 parameters of an MLP-like model (a smooth surrogate)."""
    width, depth, lr, drop = 2 ** c["log2_width"], c["depth"], c["lr"], c["dropout"]
    params = depth * width * width + 784 * width
    capacity = math.log10(params)
    lr_pen = 0.08 * (math.log10(lr) + 2.5 - 0.15 * (depth - 2)) ** 2
    fit = 0.35 * math.exp(-(capacity - 4.0) / 1.2)
    over = 0.03 * max(0.0, capacity - 6.0) * (1 - drop) ** 2 + 0.04 * drop**2
    return 0.02 + fit + lr_pen + over, capacity


SPACE6 = Space({f"x{i}": Float(0.0, 1.0) for i in range(6)})
PROBLEMS = {
    "zdt1": Problem("zdt1", SPACE6, zdt1, (1.1, 11.0)),
    "zdt2": Problem("zdt2", SPACE6, zdt2, (1.1, 11.0)),
    "dtlz2": Problem("dtlz2", SPACE6, dtlz2, (2.0, 2.0)),
    "hpo": Problem("hpo", Space({
        "log2_width": Float(4.0, 11.0), "depth": Float(1.0, 6.0), "lr": Float(1e-5, 1e-1, scale="log"),
        "dropout": Float(0.0, 0.6),
    }), hpo, (1.5, 7.5)),
}
GOAL = Objectives.build(["f1", "f2"], ["minimize", "minimize"])


def hv(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    return hypervolume_2d(points, ref)


def run_tuitune(p: Problem, seed: int, trials: int, strategy: str = "bayes") -> list[tuple[float, float]]:
    s = make_strategy(strategy, p.space, seed=seed, n_trials=trials, metric="f1", objectives=[["f1", "minimize"], ["f2", "minimize"]])
    out = []
    for i in range(trials):
        sug = s.ask()
        s.tell(TrialRecord(number=i, state=TrialState.RUNNING, config=sug.config, budget=1))
        f1, f2 = p.f(sug.config)
        rec = TrialRecord(number=i, state=TrialState.COMPLETE, config=sug.config, value=f1, budget=1,
                          epochs=({"epoch": 1, "f1": f1, "f2": f2},))
        s.tell(rec)
        out.append((f1, f2))
    return out


def run_optuna(p: Problem, seed: int, trials: int, sampler: str) -> list[tuple[float, float]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    smp = {"tpe": lambda: optuna.samplers.TPESampler(seed=seed),
           "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed)}[sampler]()
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=smp)
    out = []
    for _ in range(trials):
        tr = study.ask()
        cfg = {}
        for name, prm in p.space.items():
            d = prm.to_dict()
            cfg[name] = tr.suggest_float(name, d["low"], d["high"], log=d.get("scale") == "log")
        f1, f2 = p.f(cfg)
        study.tell(tr, [f1, f2])
        out.append((f1, f2))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--checkpoints", default="30")
    ap.add_argument("--functions", default=",".join(PROBLEMS))
    ap.add_argument("--methods", default="bayes,tpe,nsga2,random")
    ap.add_argument("--raw", default=str(ROOT / "benchmarks/results/multiobjective-raw.json"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/multiobjective.md"))
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    raw, budgets, methods, secs = run_all(
        a, PROBLEMS,
        lambda p, seed, b, m: run_tuitune(p, seed, b, m) if m in ("bayes", "random") else run_optuna(p, seed, b, m),
        lambda p, pts, b: round(hv(pts, p.ref), 4),
    )
    report(raw, a, budgets, methods, secs)


def _hv_at(raw: dict[str, Any], f: str, m: str, b: int, seed: int, trials: int) -> float | None:
    p = PROBLEMS[f]
    if m == "bayes":
        pts = raw.get(f"{f}/{m}/{b}/{seed}")
    else:
        full = raw.get(f"{f}/{m}/{trials}/{seed}")
        pts = full[:b] if full is not None else None
    return None if pts is None else hv([tuple(x) for x in pts], p.ref)


def report(raw: dict[str, Any], a: argparse.Namespace, budgets: list[int], methods: list[str],
           secs: dict[str, list[float]]) -> None:

    lines = [
        "# Several objectives: bayes (log EHVI) against Optuna's TPE and NSGA-II",
        "",
        f"`python benchmarks/bench_multiobjective.py --seeds {a.seeds} --trials {a.trials} --checkpoints {a.checkpoints}`"
        f" on {platform.node() or 'this machine'} ({os.cpu_count()} cores shared with other engineers,"
        f" OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}), {datetime.date.today()}, Python"
        f" {platform.python_version()}, Optuna {__import__('optuna').__version__}.",
        "",
        "Hypervolume of the non-dominated trials (higher is better; both objectives minimised; reference point per"
        " function in the script), median over the seeds. `W-L` and `p`: bayes against the peer, paired by seed"
        " (Wilcoxon signed-rank, two-sided).",
        "",
    ]
    for b in budgets:
        lines += [f"## {b} trials", "", "| function | " + " | ".join(methods) + " | bayes vs tpe W-L (p) | bayes vs nsga2 W-L (p) |",
                  "|---" * (len(methods) + 3) + "|"]
        for f in a.functions.split(","):
            vals = {m: [_hv_at(raw, f, m, b, s, a.trials) for s in range(a.seeds)] for m in methods}
            row = [f] + [f"{statistics.median([v for v in vals[m] if v is not None]):.4f}" for m in methods]
            for peer in ("tpe", "nsga2"):
                if peer not in vals or "bayes" not in vals:
                    row.append("-")
                    continue
                row.append(win_loss(vals["bayes"], vals[peer], higher_is_better=True))
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    if any(secs.values()):
        lines += ["Seconds of ask + tell per trial (mean over the runs made in this invocation; the functions cost nothing):", ""]
        lines += [f"- {m}: {statistics.mean(v):.3f}" for m, v in secs.items() if v]
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if a.out:
        Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
