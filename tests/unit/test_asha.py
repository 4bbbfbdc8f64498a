"""Tests the asha strategy on simulated workers: the rungs, the promotion rule against a plain reference of
the paper's get_job, determinism, resume mid-way (one worker and several), pruning at the end, failures,
concurrency and the options."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import pytest

from tuitune.core.errors import StrategyError
from tuitune.core.records import TrialRecord, TrialState
from tuitune.core.search.space import Choice, Float, Space
from tuitune.core.search.strategies import WAIT, make_strategy
from tuitune.core.search.strategies.asha import AshaStrategy, asha_rungs
from tuitune.core.search.strategies.base import Suggestion
from tuitune.simulate import WorkerSim

SPACE = Space(x=Float(0.0, 1.0), act=Choice(["relu", "tanh"]))


def loss(config: dict[str, Any], epoch: int) -> float:
    """The synthetic objective: the rank of a config is the same at every budget (by x)."""
    return config["x"] + 1.0 / epoch


def crossing(config: dict[str, Any], epoch: int) -> float:
    """Curves that cross: tanh configs start worse and end better, so ranks change between rungs."""
    slow = config["act"] == "tanh"
    return config["x"] * (0.5 if slow else 1.0) + (3.0 if slow else 1.0) / epoch


def make(**kw: Any) -> AshaStrategy:
    kw.setdefault("max_epochs", 81)
    kw.setdefault("seed", 7)
    kw.setdefault("sampler", "random")  # these tests are about the rungs; the bayes sampler has its own below
    return AshaStrategy(SPACE, **kw)


def key(sug: Suggestion) -> tuple:
    return (sug.trial, sug.budget, repr(sorted(sug.meta.items())), tuple(sorted(sug.config.items())))


def history(sim: WorkerSim) -> list[tuple]:
    return [key(r.suggestion) for r in sim.runs]


# ---- a plain reference of the paper's get_job, written without the strategy's index ---------------------


def reference_job(s: AshaStrategy, records: dict[int, TrialRecord]) -> tuple[int | None, int] | None:
    """(trial to promote or None for a new config, its budget), or None when nothing can start."""
    for k in range(len(s.budgets) - 2, -1, -1):
        finished = []
        for t in records.values():
            r = t.meta["rung"]
            if r > k or (r == k and t.state not in (TrialState.RUNNING, TrialState.INTERRUPTED)):
                v = t.value_at(s.budgets[k], "val_loss", "minimize")
                failed = t.state == TrialState.FAILED and r == k
                finished.append((failed or v is None, 0.0 if failed or v is None else v, t.number, t))
        finished.sort(key=lambda x: x[:3])
        top = finished[: len(finished) // s.factor]
        for no_value, _, _, t in top:
            if not no_value and t.meta["rung"] == k and t.state == TrialState.PAUSED:
                return (t.number, s.budgets[k + 1])
    if len(records) < s.total():
        return (None, s.budgets[0])
    return None


class Checked(WorkerSim):
    """A WorkerSim that checks every answer of ask() against the reference before acting on it."""

    def fill(self) -> None:
        while self._free and not self.finished:
            expected = reference_job(self.strategy, self.records)  # type: ignore[arg-type]
            sug = self.strategy.ask()
            if isinstance(sug, Suggestion):
                assert (sug.trial, sug.budget) == expected
                self._start(sug, self._free.pop(0))
            else:
                assert expected is None
                assert (sug is WAIT) == (self.running > 0)
                if sug is None:
                    self.finished = True
                else:
                    self.waits += 1
                    return


# ---- the rungs ---------------------------------------------------------------------------------------------


def test_rungs():
    assert asha_rungs(1, 81, 3) == [1, 3, 9, 27, 81]
    assert asha_rungs(1, 100, 3) == [1, 3, 9, 27, 100]  # the last step is longer when R is no power
    assert asha_rungs(2, 100, 3) == [2, 6, 18, 100]
    assert asha_rungs(1, 16, 2) == [1, 2, 4, 8, 16]
    assert asha_rungs(5, 5, 3) == [5]  # one rung: random search at the full budget
    assert asha_rungs(1, 2, 3) == [2]
    assert make().total() == 81 and make(max_epochs=9).total() == 9 and make(max_epochs=2).total() == 3
    assert make(n_trials=40).total() == 40


# ---- the promotion rule --------------------------------------------------------------------------------------


def test_first_promotion_is_the_best_of_the_first_three():
    s = make()
    sim = WorkerSim(s, loss).run(max_runs=3)
    assert [r.suggestion.trial for r in sim.runs] == [None] * 3
    assert all(t.state == TrialState.PAUSED for t in sim.records.values())
    nxt = s.ask()
    assert isinstance(nxt, Suggestion)
    best = min(sim.records.values(), key=lambda t: t.config["x"])
    assert nxt.trial == best.number and nxt.budget == 3 and nxt.config == best.config
    assert nxt.meta["rung"] == 1 and nxt.meta["rung_values"] == [loss(best.config, 1)]


def paused(number: int, x: float, rung: int) -> TrialRecord:
    budget = asha_rungs(1, 81, 3)[rung]
    rows = tuple({"epoch": e, "val_loss": loss({"x": x}, e)} for e in range(1, budget + 1))
    return TrialRecord(
        number=number, state=TrialState.PAUSED, config={"x": x, "act": "relu"}, value=rows[-1]["val_loss"],
        budget=budget, epochs=rows, meta={"rung": rung},
    )


def test_the_highest_rung_promotes_first():
    # rung 1: trials 0-2 finished it (1 is its top third); rung 0: those and 3-5 (its top third: 3 and 1)
    s = make()
    rung1 = [paused(n, x, 1) for n, x in enumerate([0.5, 0.1, 0.3])]
    s.restore(rung1 + [paused(n, x, 0) for n, x in zip((3, 4, 5), (0.05, 0.7, 0.8))])
    first = s.ask()
    assert isinstance(first, Suggestion) and (first.trial, first.budget) == (1, 9)
    s.tell(dataclasses.replace(s.trials[1], state=TrialState.RUNNING, budget=9, meta=first.meta))
    second = s.ask()
    assert isinstance(second, Suggestion) and (second.trial, second.budget) == (3, 3)
    s.tell(dataclasses.replace(s.trials[3], state=TrialState.RUNNING, budget=3, meta=second.meta))
    third = s.ask()  # nothing promotable left: a new config
    assert isinstance(third, Suggestion) and third.trial is None and third.budget == 1


@pytest.mark.parametrize("workers", [1, 3, 8])
@pytest.mark.parametrize("curve", [loss, crossing])
def test_every_answer_is_the_papers_get_job(workers: int, curve):
    sim = Checked(make(max_epochs=27, n_trials=60), curve, workers=workers).run()
    assert sim.finished and len(sim.records) == 60


def test_promotions_keep_the_trial_and_continue_it():
    sim = WorkerSim(make(), crossing, workers=4).run()
    seen: dict[int, Suggestion] = {}
    for run in sim.runs:
        sug = run.suggestion
        if sug.trial is None:
            assert sug.meta == {"rung": 0} and sug.budget == 1
        else:
            prev = seen[sug.trial]
            assert sug.config == prev.config and sug.meta["rung"] == prev.meta["rung"] + 1
            assert sug.budget == asha_rungs(1, 81, 3)[sug.meta["rung"]]
        seen[run.number] = sug
    for t in sim.records.values():  # the epoch rows continue: 1..budget once each
        assert [e["epoch"] for e in t.epochs] == list(range(1, t.budget + 1))


# ---- the end: pruning ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 8])
def test_the_end_leaves_nothing_paused_and_prunes_only_the_hopeless(workers: int):
    s = make()
    sim = WorkerSim(s, crossing, workers=workers).run()
    assert sim.finished and s.ask() is None and s.settle() == {}
    states = Counter(t.state for t in sim.records.values())
    assert set(states) == {TrialState.COMPLETE, TrialState.PRUNED} and len(sim.records) == 81
    for t in sim.records.values():
        assert (t.state == TrialState.COMPLETE) == (t.meta["rung"] == 4)
        assert t.budget == asha_rungs(1, 81, 3)[t.meta["rung"]]
    # a pruned trial is out of the top 1/eta of its rung for good: at the end too
    for run in sim.runs:
        for n in run.settled:
            t = sim.records[n]
            k = t.meta["rung"]
            at = [u for u in sim.records.values() if u.meta["rung"] >= k]
            ranked = sorted(at, key=lambda u: (u.value_at(s.budgets[k], "val_loss", "minimize"), u.number))
            assert ranked.index(t) >= len(at) // 3, (n, k)


def test_a_trial_is_pruned_as_soon_as_no_future_trial_can_lift_it():
    s = make()
    sim = WorkerSim(s, loss).run(max_runs=80)
    assert 27 < s.n_created < s.total()  # configs remain to be created
    # rung 0 will hold 81 trials at most: the top 27 may go on; whoever ranks past 27 now can never
    ranked = sorted(sim.records.values(), key=lambda t: (loss(t.config, 1), t.number))
    hopeless = {t.number for t in ranked[27:] if t.meta["rung"] == 0}
    pruned = {n for n, t in sim.records.items() if t.state == TrialState.PRUNED}
    assert pruned and pruned == hopeless


def test_settle_after_a_death_between_tell_and_settle():
    whole = WorkerSim(make(), loss).run()
    last = whole.runs[-1]
    assert last.settled
    before = {n: dataclasses.replace(whole.records[n], state=TrialState.PAUSED) for n in last.settled}
    fresh = make()
    fresh.restore(list({**whole.records, **before}.values()))
    assert fresh.settle() == last.settled
    assert fresh.settle() == {}


# ---- determinism and resume ----------------------------------------------------------------------------------


def test_deterministic_under_a_seed():
    a = WorkerSim(make(seed=3), crossing, workers=5).run()
    b = WorkerSim(make(seed=3), crossing, workers=5).run()
    c = WorkerSim(make(seed=4), crossing, workers=5).run()
    assert history(a) == history(b) and a.records == b.records
    assert history(a) != history(c)


def test_resume_at_every_cut_point_one_worker():
    kw = {"max_epochs": 27, "n_trials": 30}
    whole = WorkerSim(make(**kw), crossing).run()
    for cut in range(len(whole.runs) + 1):
        part = WorkerSim(make(**kw), crossing).run(max_runs=cut)
        fresh = make(**kw)
        fresh.restore(list(part.records.values()))
        assert fresh.settle() == {}
        rest = WorkerSim(fresh, crossing, records=part.records).run()
        assert history(part)[:cut] + history(rest) == history(whole), cut
        assert rest.records == whole.records


@pytest.mark.parametrize("cut", [1, 9, 25, 40, 60])
def test_restore_mid_way_with_running_trials_continues_identically(cut: int):
    whole = WorkerSim(make(max_epochs=27, n_trials=40), crossing, workers=6).run()
    sim = WorkerSim(make(max_epochs=27, n_trials=40), crossing, workers=6).run(max_runs=cut)
    assert sim.running > 0
    fresh = make(max_epochs=27, n_trials=40)
    fresh.restore(list(sim.records.values()))  # everything the strategy knows is in the records
    assert fresh.settle() == {}
    sim.strategy = fresh
    sim.run()
    assert history(sim) == history(whole) and sim.records == whole.records


def test_resume_after_a_kill_reruns_the_interrupted_trials_first():
    sim = WorkerSim(make(max_epochs=27, n_trials=40), crossing, workers=4).run(max_runs=20)
    sim.fill()  # the process dies with every worker busy
    running = sorted(n for n, t in sim.records.items() if t.state == TrialState.RUNNING)
    assert len(running) == 4
    records = {
        n: dataclasses.replace(t, state=TrialState.INTERRUPTED) if t.state == TrialState.RUNNING else t
        for n, t in sim.records.items()
    }
    fresh = make(max_epochs=27, n_trials=40)
    fresh.restore(list(records.values()))
    rest = WorkerSim(fresh, crossing, workers=4, records=records).run()
    again = [r.suggestion for r in rest.runs[:4]]
    assert [s.trial for s in again] == running
    assert [(s.budget, s.meta) for s in again] == [(records[n].budget, records[n].meta) for n in running]
    assert rest.finished and len(rest.records) == 40
    assert not any(t.state in (TrialState.PAUSED, TrialState.INTERRUPTED) for t in rest.records.values())


def test_value_only_objective_and_maximize_give_the_same_run():
    ref = WorkerSim(make(), crossing).run()
    value_only = WorkerSim(make(), crossing, epochs=False).run()
    flipped = WorkerSim(make(direction="maximize"), lambda c, e: -crossing(c, e)).run()

    def plain(sim: WorkerSim) -> list[tuple]:  # the stored rung values differ in sign when maximizing
        return [(r.suggestion.trial, r.suggestion.budget, r.suggestion.meta["rung"]) for r in sim.runs]

    assert history(value_only) == history(ref)
    assert plain(flipped) == plain(ref)


# ---- several workers ---------------------------------------------------------------------------------------


def test_workers_never_wait_while_configs_remain():
    waits: list[int] = []

    class Probe(WorkerSim):
        def fill(self) -> None:
            before = self.waits
            super().fill()
            if self.waits > before:
                waits.append(self.strategy.n_created)

    s = make(n_trials=300)
    sim = Probe(s, crossing, workers=8).run()
    assert sim.max_running == 8 and sim.finished
    assert all(n == 300 for n in waits)
    # a trial never runs twice at once (promotions come only from PAUSED: WorkerSim checks it too)
    by_trial: dict[int, list[tuple[float, float]]] = {}
    for run in sim.runs:
        by_trial.setdefault(run.number, []).append((run.start, run.end))
    for spans in by_trial.values():
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    assert len(sim.records) == 300


def test_several_running_trials_at_one_rung():
    s = make(max_epochs=9, n_trials=9)
    sim = WorkerSim(s, loss, workers=9)
    sim.fill()
    assert sim.running == 9 and s.n_created == 9
    assert s.ask() is WAIT  # all created, nothing finished a rung: nothing can start
    sim.step()  # one ends: rung 0 has 1 trial, no top 1/3 yet
    assert s.ask() is WAIT
    sim.run(max_runs=2)  # three have ended: the best of them is promoted
    nxt = s.ask()
    assert isinstance(nxt, Suggestion) and nxt.trial is not None and nxt.budget == 3


def test_failed_trials_are_never_promoted():
    def fails(c: dict[str, Any]) -> bool:
        return c["x"] < 0.3  # the would-be best

    sim = WorkerSim(make(), loss, workers=4, fails=fails).run()
    failed = {n for n, t in sim.records.items() if t.state == TrialState.FAILED}
    assert failed and all(sim.records[n].meta["rung"] == 0 for n in failed)
    assert not any(r.suggestion.trial in failed for r in sim.runs)
    assert any(t.state == TrialState.COMPLETE for t in sim.records.values())
    assert not any(t.state == TrialState.PAUSED for t in sim.records.values())


def test_everything_failing_ends_the_session():
    sim = WorkerSim(make(max_epochs=9), loss, workers=2, fails=lambda c: True).run()
    assert sim.finished and len(sim.records) == 9
    assert all(t.state == TrialState.FAILED for t in sim.records.values())


# ---- options -----------------------------------------------------------------------------------------------


def test_registry_and_options():
    s = make_strategy("asha", SPACE, max_epochs=27, factor=3, min_epochs=3)
    assert isinstance(s, AshaStrategy) and s.budgets == [3, 9, 27]
    assert AshaStrategy.option_names() == ["factor", "min_epochs", "sampler"]
    assert s.options() == {"factor": 3, "min_epochs": 3, "sampler": "bayes"}  # the model sampler by default
    with pytest.raises(StrategyError, match="no option 'bracket'"):
        make_strategy("asha", SPACE, bracket=1)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"factor": 1}, "asha option factor must be a whole number >= 2"),
        ({"factor": 2.5}, "asha option factor must be a whole number >= 2"),
        ({"factor": True}, "asha option factor must be a whole number >= 2"),
        ({"min_epochs": 0}, r"asha option min_epochs must be a whole number from 1 to max_epochs \(81\)"),
        ({"min_epochs": 82}, r"min_epochs must be a whole number from 1 to max_epochs \(81\), got 82"),
        ({"min_epochs": "2"}, "min_epochs must be a whole number"),
        ({"sampler": "tpe"}, "asha option sampler 'tpe' is unknown; use one of random, bayes"),
    ],
)
def test_bad_options_are_refused(kw: dict[str, Any], match: str):
    with pytest.raises(StrategyError, match=match):
        make(**kw)


def test_zero_trials():
    s = make(n_trials=0)
    assert s.total() == 0 and s.ask() is None


# ---- the bayes sampler ----------------------------------------------------------------------------------------

# Small enough for the GP to be quick: 2 searched dimensions, so the model starts once 4 trials finish a rung.
BAYES = {"max_epochs": 9, "n_trials": 14, "sampler": "bayes"}


@pytest.fixture(scope="module")
def bayes_run() -> WorkerSim:
    return WorkerSim(make(**BAYES), crossing, workers=2).run()


def test_bayes_sampler_uses_the_model_once_a_rung_has_enough_trials(bayes_run: WorkerSim):
    new = [r.suggestion for r in bayes_run.runs if r.suggestion.trial is None]
    assert len(new) == 14 and bayes_run.finished
    chosen = [s.meta["chosen_by"] for s in new]
    assert set(chosen) == {"random", "model"}
    assert chosen[:4] == ["random"] * 4  # fewer than dim + 2 finished trials anywhere: no model yet
    promoted = [r.suggestion for r in bayes_run.runs if r.suggestion.trial is not None]
    assert promoted and all("chosen_by" not in s.meta or s.meta["rung"] > 0 for s in promoted)
    # the random stream is the random sampler's: a config the model did not choose is the one random asha draws
    plain = WorkerSim(make(**{**BAYES, "sampler": "random"}), crossing, workers=2).run()
    first_random = [s.config for s in new][:4]
    assert first_random == [r.suggestion.config for r in plain.runs if r.suggestion.trial is None][:4]


def test_bayes_sampler_is_deterministic(bayes_run: WorkerSim):
    again = WorkerSim(make(**BAYES), crossing, workers=2).run()
    assert history(again) == history(bayes_run) and again.records == bayes_run.records


def test_bayes_sampler_resumes_identically(bayes_run: WorkerSim):
    cut = 12  # past the first model-chosen config, with a trial running
    assert any(r.suggestion.meta.get("chosen_by") == "model" for r in bayes_run.runs[:cut])
    sim = WorkerSim(make(**BAYES), crossing, workers=2).run(max_runs=cut)
    assert sim.running > 0
    fresh = make(**BAYES)
    fresh.restore(list(sim.records.values()))  # the model is refitted from the records alone
    assert fresh.settle() == {}
    sim.strategy = fresh
    sim.run()
    assert history(sim) == history(bayes_run) and sim.records == bayes_run.records


def test_bayes_sampler_on_a_conditional_space():
    from tuitune.core.search.space import Int

    space = Space(
        opt=Choice(["sgd", "adam"]),
        lr=Float(1e-4, 1e-1, scale="log"),
        momentum=Float(0.5, 0.99, when={"opt": ["sgd"]}),
        layers=Int(1, 3),
    )

    def f(config: dict[str, Any], epoch: int) -> float:
        m = config.get("momentum", 0.9)
        return abs(config["lr"] - 0.01) + (m - 0.9) ** 2 + 0.1 * config["layers"] + 1.0 / epoch

    sim = WorkerSim(AshaStrategy(space, seed=1, max_epochs=9, n_trials=16, sampler="bayes"), f, workers=2).run()
    new = [r.suggestion for r in sim.runs if r.suggestion.trial is None]
    assert "model" in {s.meta["chosen_by"] for s in new}
    for s in new:  # an inactive parameter is absent, an active one present, whoever chose the config
        assert ("momentum" in s.config) == (s.config["opt"] == "sgd")
        assert space.check(s.config) == s.config


def test_old_sessions_keep_random_sampling():
    from tuitune.core.api import strategy_for
    from tuitune.core.records import SessionRecord

    rec = SessionRecord(
        name="old", strategy="asha", options={"factor": 3, "min_epochs": 1}, space=SPACE.to_dict(),
        metric="val_loss", direction="minimize", seed=0, max_epochs=9, n_trials=None, state="stopped",
    )
    assert strategy_for(rec).options()["sampler"] == "random"
