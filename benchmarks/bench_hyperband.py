"""Measures hyperband's samplers (random, bayes) against Optuna's TPE and random + HyperbandPruner at equal epochs.

Multi-fidelity test functions are learning curves: a config's value at epoch e is its final value f(x) plus
a decaying gap whose size and speed depend on the config (some configs start well and finish badly), plus
noise that shrinks with e, fixed per (seed, config, epoch). The early ranking is informative but noisy.

Every method gets the same number of epochs: tuitune's hyperband runs its plan (one iteration with R, eta);
Optuna's study runs trials, each reporting every epoch to the HyperbandPruner (same R, eta), until it has
spent as many epochs. Regret: the best final value f(x) among the configs trained to R epochs, minus the
known optimum (noise-free, so luck in the last epoch's noise does not count).

    python benchmarks/bench_hyperband.py                    # R = 27, eta = 3, 10 seeds
    python benchmarks/bench_hyperband.py --seeds 2 --functions mf-hartmann3
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import math
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_bayes import PROBLEMS, _optuna_dists  # noqa: E402

from tuitune.core.records import TrialRecord, TrialState  # noqa: E402
from tuitune.core.search.space import Space  # noqa: E402
from tuitune.core.search.strategies import Strategy, Suggestion, make_strategy  # noqa: E402


@dataclass
class MFProblem:
    name: str
    space: Space
    f: Callable[[dict[str, Any]], float]
    optimum: float
    scale: float  # the size of the learning-curve gap and noise, in units of f
    note: str


def _key(config: dict[str, Any], *salt: int) -> int:
    """A stable 32-bit number of a config and salts (Python's hash() of a str changes from run to run)."""
    text = repr(sorted((k, round(v, 12) if isinstance(v, float) else v) for k, v in config.items())) + repr(salt)
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def _h(config: dict[str, Any], salt: int) -> float:
    """A number in [0, 1) fixed by the config and a salt (the config's hidden curve shape)."""
    return float(np.random.default_rng(_key(config, salt)).random())


def curve(p: MFProblem, config: dict[str, Any], epoch: int, R: int, seed: int) -> float:
    """The value at an epoch: f(x) + gap(x) * exp(-speed(x) * epoch / R) + noise shrinking with epoch."""
    gap = p.scale * (0.5 + 1.5 * _h(config, 1))
    speed = 1.0 + 5.0 * _h(config, 2)
    noise = np.random.default_rng(_key(config, seed, epoch)).normal() * 0.15 * p.scale / math.sqrt(epoch)
    return p.f(config) + gap * math.exp(-speed * epoch / R) + noise


PROBLEMS_MF = {
    "mf-hartmann3": MFProblem("mf-hartmann3", PROBLEMS["hartmann3"].space, PROBLEMS["hartmann3"].f,
                              PROBLEMS["hartmann3"].optimum, 1.0, "Hartmann3 final values"),
    "mf-mixed": MFProblem("mf-mixed", PROBLEMS["mixed"].space, PROBLEMS["mixed"].f, 0.0, 0.5,
                          "the 'mixed' surface of bench_bayes (float, 2 ints, 2 choices)"),
    "mf-conditional": MFProblem("mf-conditional", PROBLEMS["conditional"].space, PROBLEMS["conditional"].f, 0.0, 0.5,
                                "the conditional HPO surface of bench_bayes"),
}


def run_one_worker(p: MFProblem, s: Strategy, seed: int, R: int) -> tuple[float, int, float]:
    """Drives a multi-fidelity strategy on one worker (each ask answered in turn, promoted trials continuing
    their curve): (regret, epochs spent, CPU seconds of ask per new config)."""
    recs: dict[int, TrialRecord] = {}
    spent, best, t_ask = 0, math.inf, 0.0
    while True:
        t0 = time.process_time()
        sug = s.ask()
        t_ask += time.process_time() - t0
        if sug is None:
            break
        assert isinstance(sug, Suggestion), "one worker never waits: nothing else runs"
        num = sug.trial if sug.trial is not None else len(recs)
        prev = recs.get(num)
        epochs = list(prev.epochs) if prev else []
        for e in range((prev.last_epoch if prev else 0) + 1, sug.budget + 1):
            epochs.append({"epoch": e, "val_loss": curve(p, sug.config, e, R, seed)})
            spent += 1
        r = TrialRecord(number=num, state=TrialState.COMPLETE, config=sug.config, value=epochs[-1]["val_loss"],
                        budget=sug.budget, epochs=tuple(epochs), meta=sug.meta)
        r = dataclasses.replace(r, state=s.state_after(r))
        recs[num] = r
        if sug.budget >= R:
            best = min(best, p.f(sug.config))
        s.tell(r)
        for n, state in s.settle().items():
            recs[n] = dataclasses.replace(recs[n], state=state)
    return best - p.optimum, spent, t_ask / len(recs)


def run_hyperband(p: MFProblem, seed: int, R: int, eta: int, sampler: str) -> tuple[float, int, float]:
    """(regret, epochs spent, CPU seconds of ask per new config)."""
    s = make_strategy("hyperband", p.space, seed=seed, max_epochs=R, factor=eta, sampler=sampler)
    return run_one_worker(p, s, seed, R)


def paired(reg: list[float], other: list[float]) -> str:
    """Wins-losses of ``reg`` against ``other`` over the same seeds, and the paired Wilcoxon p-value."""
    from scipy.stats import wilcoxon

    w = sum(a < b for a, b in zip(reg, other))
    ls = sum(a > b for a, b in zip(reg, other))
    pv = 1.0 if all(abs(a - b) < 1e-12 for a, b in zip(reg, other)) else float(wilcoxon(reg, other).pvalue)
    return f"{w}-{ls}, p={pv:.2g}"


def run_optuna(
    p: MFProblem, seed: int, R: int, eta: int, sampler: str, epochs: int, pruner: str = "hyperband"
) -> tuple[float, int, float]:
    """Optuna with ``sampler`` ("tpe" or "random") and ``pruner`` ("hyperband", or "sha": its ASHA) until
    ``epochs`` are spent."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    dists, to_config = _optuna_dists(p.space)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        smp = optuna.samplers.TPESampler(seed=seed) if sampler == "tpe" else optuna.samplers.RandomSampler(seed=seed)
        prn: optuna.pruners.BasePruner
        if pruner == "sha":
            prn = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=eta)
        else:
            prn = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=R, reduction_factor=eta)
        study = optuna.create_study(sampler=smp, pruner=prn, direction="minimize")
        spent, best, t_ask, n = 0, math.inf, 0.0, 0
        while spent < epochs:
            t0 = time.process_time()
            tr = study.ask(fixed_distributions=dists)
            t_ask += time.process_time() - t0
            n += 1
            config = to_config(tr.params)
            pruned = False
            for e in range(1, R + 1):
                v = curve(p, config, e, R, seed)
                spent += 1
                tr.report(v, e)
                if tr.should_prune():
                    pruned = True
                    break
            if pruned:
                study.tell(tr, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(tr, v)
                best = min(best, p.f(config))
    return best - p.optimum, spent, t_ask / n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--R", type=int, default=27)
    ap.add_argument("--eta", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--functions", default=",".join(PROBLEMS_MF))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "hyperband-bayes.md"), help="'' to not write")
    args = ap.parse_args(argv)
    import optuna
    import torch

    funcs = [f.strip() for f in args.functions.split(",") if f.strip()]
    methods = ["tuitune hyperband (bayes)", "tuitune hyperband (random)", "optuna TPE + HyperbandPruner",
               "optuna random + HyperbandPruner"]
    started = time.time()
    res: dict[tuple[str, str], list[tuple[float, int, float]]] = {}
    for fname in funcs:
        p = PROBLEMS_MF[fname]
        for seed in range(args.seeds):
            hb = run_hyperband(p, seed, args.R, args.eta, "bayes")
            hr = run_hyperband(p, seed, args.R, args.eta, "random")
            ot = run_optuna(p, seed, args.R, args.eta, "tpe", hb[1])
            orr = run_optuna(p, seed, args.R, args.eta, "random", hb[1])
            for m, r in zip(methods, (hb, hr, ot, orr)):
                res.setdefault((fname, m), []).append(r)
            print(f"  {fname} seed {seed}: " + "  ".join(f"{r[0]:.4g}" for r in (hb, hr, ot, orr)), file=sys.stderr,
                  flush=True)
    lines = ["| function | method | median regret | mean regret | epochs (mean) | CPU ms per new config | "
             "vs TPE + Hyperband: wins-losses, Wilcoxon p |", "|---|---|---|---|---|---|---|"]
    for fname in funcs:
        tpe = [r[0] for r in res[(fname, methods[2])]]
        for m in methods:
            rs = res[(fname, m)]
            reg = [r[0] for r in rs]
            cmp = paired(reg, tpe) if m != methods[2] else ""
            lines.append(f"| {fname} | {m} | {statistics.median(reg):.4g} | {statistics.mean(reg):.4g} | "
                         f"{statistics.mean(r[1] for r in rs):.0f} | {1000 * statistics.mean(r[2] for r in rs):.1f} | {cmp} |")
    table = "\n".join(lines)
    cond = (
        f"- date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} UTC; machine: {platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, CPU only; run under `nice -n 10` on 2 shared cores\n"
        f"- torch {torch.__version__}, optuna {optuna.__version__}\n"
        f"- R = {args.R} epochs, eta = {args.eta}; tuitune: one Hyperband iteration; Optuna: trials until the same "
        f"epochs are spent (its last trial may run past them); {args.seeds} seeds (0..{args.seeds - 1})\n"
        "- functions: " + "; ".join(f"{f} ({PROBLEMS_MF[f].note})" for f in funcs) + "\n"
        "- regret: the best noise-free final value among configs trained to R, minus the optimum\n"
        f"- the run took {(time.time() - started) / 60:.1f} min"
    )
    print(table + "\n\n" + cond)
    if args.out:
        cmd = "python benchmarks/bench_hyperband.py " + " ".join(argv if argv is not None else sys.argv[1:])
        Path(args.out).write_text(f"# hyperband samplers vs Optuna + HyperbandPruner\n\n`{cmd.strip()}`\n\n{table}\n\n{cond}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
