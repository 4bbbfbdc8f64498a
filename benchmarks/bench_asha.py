"""Measures asha's samplers (random, bayes) against Optuna's ASHA (TPE + SuccessiveHalvingPruner) and TPE +
HyperbandPruner at equal epochs, on bench_hyperband's multi-fidelity functions (the same curves and seeds).

tuitune's asha runs ``--trials`` new configs (one worker: each ask answered in turn) and spends what its
promotions cost; Optuna's studies then run trials, each reporting every epoch to the pruner (min resource 1,
the same eta, HyperbandPruner's max resource R), until they have spent as many epochs. Regret: the best
noise-free final value f(x) among the configs trained to R, minus the known optimum.

    python benchmarks/bench_asha.py                     # R = 27, eta = 3, 120 configs, 10 seeds
    python benchmarks/bench_asha.py --seeds 2 --functions mf-hartmann3
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_hyperband import PROBLEMS_MF, MFProblem, paired, run_one_worker, run_optuna  # noqa: E402

from tuitune.core.search.strategies import make_strategy  # noqa: E402


def run_asha(p: MFProblem, seed: int, R: int, eta: int, sampler: str, trials: int) -> tuple[float, int, float]:
    """(regret, epochs spent, CPU seconds of ask per new config)."""
    s = make_strategy("asha", p.space, seed=seed, max_epochs=R, factor=eta, sampler=sampler, n_trials=trials)
    return run_one_worker(p, s, seed, R)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--R", type=int, default=27)
    ap.add_argument("--eta", type=int, default=3)
    ap.add_argument("--trials", type=int, default=120, help="asha's new configs (120: about hyperband's epochs)")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--functions", default=",".join(PROBLEMS_MF))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "asha-bayes.md"), help="'' to not write")
    args = ap.parse_args(argv)
    import optuna
    import torch

    funcs = [f.strip() for f in args.functions.split(",") if f.strip()]
    methods = ["tuitune asha (bayes)", "tuitune asha (random)", "optuna TPE + SuccessiveHalvingPruner (ASHA)",
               "optuna TPE + HyperbandPruner"]
    ref = methods[2]
    started = time.time()
    res: dict[tuple[str, str], list[tuple[float, int, float]]] = {}
    for fname in funcs:
        p = PROBLEMS_MF[fname]
        for seed in range(args.seeds):
            ab = run_asha(p, seed, args.R, args.eta, "bayes", args.trials)
            ar = run_asha(p, seed, args.R, args.eta, "random", args.trials)
            osh = run_optuna(p, seed, args.R, args.eta, "tpe", ab[1], pruner="sha")
            ohb = run_optuna(p, seed, args.R, args.eta, "tpe", ab[1])
            for m, r in zip(methods, (ab, ar, osh, ohb)):
                res.setdefault((fname, m), []).append(r)
            print(f"  {fname} seed {seed}: " + "  ".join(f"{r[0]:.4g}" for r in (ab, ar, osh, ohb)), file=sys.stderr,
                  flush=True)
    lines = ["| function | method | median regret | mean regret | epochs (mean) | CPU ms per new config | "
             "vs Optuna's ASHA: wins-losses, Wilcoxon p | vs TPE + Hyperband: wins-losses, p |",
             "|---|---|---|---|---|---|---|---|"]

    for fname in funcs:
        sha = [r[0] for r in res[(fname, ref)]]
        hb = [r[0] for r in res[(fname, methods[3])]]
        for m in methods:
            rs = res[(fname, m)]
            reg = [r[0] for r in rs]
            c1 = paired(reg, sha) if m != ref else ""
            c2 = paired(reg, hb) if m != methods[3] else ""
            lines.append(f"| {fname} | {m} | {statistics.median(reg):.4g} | {statistics.mean(reg):.4g} | "
                         f"{statistics.mean(r[1] for r in rs):.0f} | {1000 * statistics.mean(r[2] for r in rs):.1f} | "
                         f"{c1} | {c2} |")
    table = "\n".join(lines)
    cond = (
        f"- date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} UTC; machine: {platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, CPU only; run under `nice -n 10` on 2 shared cores\n"
        f"- torch {torch.__version__}, optuna {optuna.__version__}\n"
        f"- R = {args.R} epochs, eta = {args.eta}; tuitune: asha with {args.trials} new configs, one worker; Optuna: "
        f"TPE trials until the epochs of the bayes asha run of the same seed are spent (its last trial may run past "
        f"them); {args.seeds} seeds (0..{args.seeds - 1})\n"
        "- functions (bench_hyperband's curves): " + "; ".join(f"{f} ({PROBLEMS_MF[f].note})" for f in funcs) + "\n"
        "- regret: the best noise-free final value among configs trained to R, minus the optimum\n"
        f"- the run took {(time.time() - started) / 60:.1f} min"
    )
    print(table + "\n\n" + cond)
    if args.out:
        cmd = "python benchmarks/bench_asha.py " + " ".join(argv if argv is not None else sys.argv[1:])
        Path(args.out).write_text(f"# asha samplers vs Optuna's ASHA and TPE + HyperbandPruner\n\n`{cmd.strip()}`\n\n"
                                  f"{table}\n\n{cond}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
