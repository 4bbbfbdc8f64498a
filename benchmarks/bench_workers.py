"""Measures how busy N workers stay under hyperband and asha: the real strategy objects on a simulated clock.

The strategies are driven by ``tuitune.simulate.WorkerSim``, the coordinator's loop with simulated
workers: a free worker asks; WAIT leaves it idle until a run ends. An epoch takes one time unit
(``--durations unit``) or a seeded random time (``random``: lognormal, mean 1, sigma 0.5, per trial and
epoch). The metric follows a seeded family of synthetic learning curves that cross (loss = a + b * e**-c,
a, b, c drawn per config, plus seeded noise per epoch), so the ranks at low rungs are only a guide.
Promoted trials continue from their last epoch, as from a checkpoint.

    utilisation = busy worker-time / (workers x makespan)

where the makespan is the time until the session's last run ends: every session here runs to its end,
so the drain at the end (the last promotions, which run alone) counts against it. Side by side:
hyperband with its brackets one after the other (each bracket's rung barrier idles the workers; the
behaviour before several workers were supported) against hyperband with concurrent brackets.

    python benchmarks/bench_workers.py                 # the table of benchmarks/results/workers-utilisation.md
    python benchmarks/bench_workers.py --workers 8 --durations unit
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tuitune.core.search.space import Choice, Float, Int, Space  # noqa: E402
from tuitune.core.search.strategies import WAIT, Strategy, make_strategy  # noqa: E402
from tuitune.core.search.strategies.hyperband import HyperbandStrategy  # noqa: E402
from tuitune.simulate import WorkerSim, one_unit  # noqa: E402

SPACE = Space(
    lr=Float(1e-4, 1e-1, scale="log"),
    width=Int(32, 512, scale="log"),
    dropout=Float(0.0, 0.5),
    act=Choice(["relu", "gelu", "tanh"]),
)
R, ETA = 81, 3
GOALS = {"hyperband": 0.75, "asha": 0.95}  # at 8 workers, R = 81, eta = 3
# Which configs are drawn does not change how busy the workers are (ask's answers do); random keeps thousands of
# simulated configs quick (the bayes sampler's GP costs 0.1-0.2 s of coordinator time per new config).
SAMPLER = "random"


class OneBracketAtATime(HyperbandStrategy):
    """The baseline: hyperband as it ran before several workers, one bracket after the other.

    While the current bracket's rung waits for running trials it answers WAIT instead of starting the
    next bracket. With one worker it is the same run as hyperband.
    """

    def ask(self):  # type: ignore[override]
        groups = self._groups()
        for plan in self.plan():
            walk = self._walk(plan, groups.get((plan.iteration, plan.bracket), []))
            if walk.action == "done":
                continue
            return WAIT if walk.action == "wait" else super().ask()
        return None


def curves(seed: int) -> Callable[[dict[str, Any], int], float]:
    """A seeded family of learning curves: each config gets its own a + b * epoch**-c, plus noise."""

    def tag(config: dict[str, Any]) -> int:
        return zlib.crc32(repr(sorted(config.items())).encode())

    def curve(config: dict[str, Any], epoch: int) -> float:
        g = np.random.default_rng([seed, tag(config)])
        a, b, c = g.uniform(0.1, 1.0), g.uniform(0.5, 2.0), g.uniform(0.3, 1.5)
        noise = np.random.default_rng([seed, tag(config), epoch]).normal(0.0, 0.01)
        return float(a + b * epoch**-c + noise)

    return curve


def durations(kind: str, seed: int) -> Callable[[int, int], float]:
    if kind == "unit":
        return one_unit
    sigma = 0.5
    mu = -sigma**2 / 2  # mean 1

    def duration(number: int, epoch: int) -> float:
        return float(np.random.default_rng([seed, number, epoch]).lognormal(mu, sigma))

    return duration


@dataclass
class Case:
    label: str
    strategy: str
    build: Callable[[], Strategy]


def cases(seed: int, long_configs: int) -> list[Case]:
    def hb(**kw: Any) -> Callable[[], Strategy]:
        return lambda: make_strategy("hyperband", SPACE, seed=seed, max_epochs=R, factor=ETA, **kw)

    def asha(n: int | None) -> Callable[[], Strategy]:
        return lambda: make_strategy("asha", SPACE, seed=seed, max_epochs=R, factor=ETA, n_trials=n, sampler=SAMPLER)

    return [
        Case("hyperband, one bracket at a time (baseline)", "hyperband-seq",
             lambda: OneBracketAtATime(SPACE, seed=seed, max_epochs=R, factor=ETA, sampler=SAMPLER)),
        Case("hyperband, concurrent brackets", "hyperband", hb(sampler=SAMPLER)),
        Case("asha, its default count", "asha", asha(None)),
        Case("asha, as many configs as hyperband", "asha", asha(143)),
        Case("asha, a long session", "asha", asha(long_configs)),
    ]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", default="1,4,8", help="comma-separated worker counts (default 1,4,8)")
    p.add_argument("--durations", default="unit,random", help="unit, random or both (default both)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--long", type=int, default=2000, help="configs of the long asha session (default 2000)")
    p.add_argument("--sizes", type=lambda t: [int(x) for x in t.split(",")], default=[81, 143, 500, 1000, 2000, 4000],
                   help="asha session sizes of the 8-worker sweep (default 81,143,500,1000,2000,4000)")
    p.add_argument("--output", type=Path, help="also write the table and conditions to this Markdown file")
    args = p.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    kinds = args.durations.split(",")

    head = "| strategy | configs | durations | workers | runs | busy | makespan | utilisation | speed-up vs 1 |"
    lines = [head, "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    print(head)
    checks: list[tuple[str, float, float]] = []
    started = time.perf_counter()
    for case in cases(args.seed, args.long):
        for kind in kinds:
            one_makespan = None
            for n in sorted(workers):
                sim = WorkerSim(case.build(), curves(args.seed), workers=n, duration=durations(kind, args.seed)).run()
                assert sim.finished and not any(t.state.value == "paused" for t in sim.records.values())
                if n == 1:
                    one_makespan = sim.makespan
                speed = f"{one_makespan / sim.makespan:.2f}x" if one_makespan else ""
                row = (
                    f"| {case.label} | {len(sim.records)} | {kind} | {n} | {len(sim.runs)} | {sim.busy:.0f} | "
                    f"{sim.makespan:.0f} | {sim.utilisation:.1%} | {speed} |"
                )
                print(row, flush=True)
                lines.append(row)
                if n == 8 and case.strategy in GOALS:
                    checks.append((f"{case.label}, {kind} durations, 8 workers", sim.utilisation, GOALS[case.strategy]))
    # How the drain at the end weighs: asha at 8 workers by the session's size.
    # The bound no scheduler can beat with the same work: the makespan is at least busy / 8 and at least the
    # longest trial's own runs one after the other (a top-rung trial trains its R epochs in sequence).
    sweep_head = ("| asha configs | durations | runs | busy | makespan | utilisation at 8 workers | "
                  "longest trial | best possible for this work | idle after the last new config |")
    sweep = [sweep_head, "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    print("\n" + sweep_head)
    for n_configs in args.sizes:
        for kind in kinds:
            strat = make_strategy("asha", SPACE, seed=args.seed, max_epochs=R, factor=ETA, n_trials=n_configs,
                                  sampler=SAMPLER)
            sim = WorkerSim(strat, curves(args.seed), workers=8, duration=durations(kind, args.seed)).run()
            chain: dict[int, float] = {}
            for r in sim.runs:
                chain[r.number] = chain.get(r.number, 0.0) + (r.end - r.start)
            longest = max(chain.values())
            bound = sim.busy / (8 * max(sim.busy / 8, longest))
            last_new = max(r.start for r in sim.runs if r.suggestion.trial is None)
            busy_after = sum(r.end - max(r.start, last_new) for r in sim.runs if r.end > last_new)
            idle_after = 8 * (sim.makespan - last_new) - busy_after
            row = (
                f"| {n_configs} | {kind} | {len(sim.runs)} | {sim.busy:.0f} | {sim.makespan:.0f} | "
                f"{sim.utilisation:.1%} | {longest:.0f} | {bound:.1%} | {idle_after:.0f} |"
            )
            print(row, flush=True)
            sweep.append(row)
    took = time.perf_counter() - started

    verdicts = [
        f"- {label}: {u:.1%} (goal >= {goal:.0%}): {'met' if u >= goal else 'NOT met'}" for label, u, goal in checks
    ]
    print()
    print("\n".join(verdicts))
    if args.output:
        text = [
            "# Worker utilisation: hyperband and asha on simulated workers",
            "",
            f"`python benchmarks/bench_workers.py --workers {args.workers} --durations {args.durations} "
            f"--seed {args.seed} --long {args.long} --sizes {','.join(map(str, args.sizes))}`",
            "",
            *lines,
            "",
            "asha at 8 workers by the session's size (the drain at the end weighs less in a longer session). "
            "'best possible for this work': busy / (8 x max(busy / 8, longest trial)), the utilisation no "
            "scheduler can beat with these runs, since the longest trial's runs follow one another; 'idle after "
            "the last new config': worker-time idle from the start of the last new config to the end (the drain):",
            "",
            *sweep,
            "",
            "Goals at 8 workers (R = 81, eta = 3), for every session size of the table:",
            *verdicts,
            "",
            "Conditions",
            f"- R (max epochs) = {R}, eta (factor) = {ETA}, min epochs 1; hyperband: one iteration (143 configs, "
            "the paper's table); asha: rungs 1, 3, 9, 27, 81.",
            "- the real strategy objects (tuitune.core.search.strategies) driven by tuitune.simulate.WorkerSim: a "
            "free worker asks, WAIT idles it until a run ends, tell(running) at the start, tell + settle at the end.",
            "- an epoch takes 1 time unit (unit) or a lognormal time with mean 1, sigma 0.5, seeded per trial "
            "and epoch (random); promoted trials continue from their last epoch.",
            f"- learning curves: loss = a + b * epoch**-c with a ~ U(0.1, 1), b ~ U(0.5, 2), c ~ U(0.3, 1.5) "
            f"per config, noise N(0, 0.01) per epoch, seed {args.seed}.",
            "- utilisation = busy worker-time / (workers x makespan); the makespan runs to the session's last "
            "run, so the drain at the end counts.",
            f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.machine()}, "
            f"Python {platform.python_version()}; the whole table took {took:.0f} s (wall) to simulate.",
        ]
        args.output.write_text("\n".join(text) + "\n")
        print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
