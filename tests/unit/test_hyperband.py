"""Tests the hyperband strategy with a tiny simulated runner: the paper's table, promotions, rung states,
single-bracket successive halving, resume at many cut points, failures, trial-count truncation, options."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tuitune.core.errors import StrategyError
from tuitune.core.records import TrialRecord, TrialState
from tuitune.core.search.space import Choice, Float, Space
from tuitune.core.search.strategies import make_strategy
from tuitune.core.search.strategies.base import WAIT, Suggestion, Wait
from tuitune.core.search.strategies.hyperband import HyperbandStrategy, rung_budgets, s_max_of
from tuitune.simulate import WorkerSim

SPACE = Space(x=Float(0.0, 1.0), act=Choice(["relu", "tanh"]))

PAPER = {  # R = 81, eta = 3: bracket -> [(configs, epochs) per rung]
    4: [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
    3: [(34, 3), (11, 9), (3, 27), (1, 81)],
    2: [(15, 9), (5, 27), (1, 81)],
    1: [(8, 27), (2, 81)],
    0: [(5, 81)],
}


def loss(config: dict[str, Any], epoch: int) -> float:
    """The synthetic objective: the rank of a config is the same at every budget (by x)."""
    return config["x"] + 1.0 / epoch


def make(**kw: Any) -> HyperbandStrategy:
    kw.setdefault("max_epochs", 81)
    kw.setdefault("seed", 7)
    kw.setdefault("sampler", "random")  # these tests are about the plan; the bayes sampler has its own
    return HyperbandStrategy(SPACE, **kw)


@dataclasses.dataclass
class Step:
    suggestion: Suggestion
    number: int
    settled: dict[int, TrialState]


class Sim:
    """The runner's loop as the brief gives it, with an instant objective.

    Args:
        strategy: the strategy driven.
        fails: configs whose runs fail (FAILED, never promoted).
        epochs: write epoch rows (else only the returned value, as an objective without report()).
        sign: -1 with direction "maximize".
    """

    def __init__(
        self,
        strategy: HyperbandStrategy,
        fails: Callable[[dict[str, Any]], bool] = lambda c: False,
        epochs: bool = True,
        sign: float = 1.0,
        records: dict[int, TrialRecord] | None = None,
    ) -> None:
        self.s = strategy
        self.fails = fails
        self.write_epochs = epochs
        self.sign = sign
        self.records: dict[int, TrialRecord] = dict(records or {})
        self.steps: list[Step] = []

    def start(self) -> TrialRecord | None:
        """Asks and starts a run (tells RUNNING); None when the strategy has finished."""
        sug = self.s.ask()
        if sug is None:
            return None
        assert not isinstance(sug, Wait), "one worker: nothing runs when asked, so never WAIT"
        if sug.trial is None:
            rec = TrialRecord(
                number=len(self.records),
                state=TrialState.RUNNING,
                config=dict(sug.config),
                budget=sug.budget,
                meta=dict(sug.meta),
            )
        else:
            old = self.records[sug.trial]
            assert sug.config == old.config
            rec = dataclasses.replace(old, state=TrialState.RUNNING, budget=sug.budget, meta=dict(sug.meta))
        self.records[rec.number] = rec
        self.s.tell(rec)
        self.steps.append(Step(sug, rec.number, {}))
        return rec

    def finish(self, rec: TrialRecord) -> None:
        """Runs the objective up to the budget (continuing the epoch rows), tells the end, applies settle()."""
        rows = list(rec.epochs)
        for e in range(rec.last_epoch + 1, rec.budget + 1):
            rows.append({"epoch": e, "val_loss": self.sign * loss(rec.config, e)})
        if self.fails(rec.config):
            end = dataclasses.replace(rec, state=TrialState.FAILED, epochs=tuple(rows[:1]), value=None)
        else:
            value = self.sign * loss(rec.config, rec.budget)  # the best epoch is the last one
            end = dataclasses.replace(rec, epochs=tuple(rows) if self.write_epochs else (), value=value)
            end = dataclasses.replace(end, state=self.s.state_after(end))
        self.records[end.number] = end
        self.s.tell(end)
        settled = self.s.settle()
        for n, st in settled.items():
            assert self.records[n].state == TrialState.PAUSED
            self.records[n] = dataclasses.replace(self.records[n], state=st)
        self.steps[-1].settled = settled

    def run(self, max_steps: int | None = None) -> Sim:
        while max_steps is None or len(self.steps) < max_steps:
            rec = self.start()
            if rec is None:
                break
            self.finish(rec)
        return self


def key(sug: Suggestion) -> tuple:
    return (sug.trial, sug.budget, tuple(sorted(sug.meta.items())), tuple(sorted(sug.config.items())))


# ---- the plan ----------------------------------------------------------------------------------------


def test_plan_is_the_papers_table():
    hb = make()
    assert hb.s_max == 4
    plans = list(hb.plan())
    assert [p.bracket for p in plans] == [4, 3, 2, 1, 0]
    for p in plans:
        assert list(zip(p.sizes, p.budgets)) == PAPER[p.bracket]
    assert hb.total() == 143


def test_s_max_uses_integer_arithmetic():
    # float log(243, 3) is 4.999...; integer arithmetic gets the exact power right
    assert s_max_of(243, 3) == 5
    assert s_max_of(1000, 10) == 3
    assert s_max_of(80, 3) == 3
    assert s_max_of(2, 3) == 0


def test_inexact_budgets_are_whole_increasing_epochs_ending_at_max():
    assert rung_budgets(4, 100, 3) == [1, 4, 11, 33, 100]
    assert rung_budgets(3, 10, 2) == [1, 3, 5, 10]
    for r in (5, 10, 50, 100, 1000):
        for eta in (2, 3, 4):
            for s in range(s_max_of(r, eta) + 1):
                b = rung_budgets(s, r, eta)
                assert b[0] >= 1 and b[-1] == r and all(x < y for x, y in zip(b, b[1:]))


# ---- the full run ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full() -> Sim:
    return Sim(make()).run()


def test_full_run_follows_the_papers_table(full: Sim):
    runs = Counter((st.suggestion.meta["bracket"], st.suggestion.meta["rung"]) for st in full.steps)
    budgets = {(st.suggestion.meta["bracket"], st.suggestion.meta["rung"]): st.suggestion.budget for st in full.steps}
    for s, rungs in PAPER.items():
        for i, (n, r) in enumerate(rungs):
            assert runs[(s, i)] == n, (s, i)
            assert budgets[(s, i)] == r, (s, i)
    assert sum(runs.values()) == 206
    assert len(full.records) == 143
    assert sum(st.suggestion.trial is None for st in full.steps) == 143
    assert full.s.ask() is None
    assert {t.meta["iteration"] for t in full.records.values()} == {0}


def test_full_run_order_and_final_states(full: Sim):
    metas = [(st.suggestion.meta["bracket"], st.suggestion.meta["rung"]) for st in full.steps]
    # brackets from s_max down, each finished (all rungs) before the next; rungs in order
    assert metas == sorted(metas, key=lambda m: (-m[0], m[1]))
    # within a rung, trial-number order
    for s, rungs in PAPER.items():
        for i in range(len(rungs)):
            nums = [
                st.number for st in full.steps if (st.suggestion.meta["bracket"], st.suggestion.meta["rung"]) == (s, i)
            ]
            assert nums == sorted(nums)
    states = Counter(t.state for t in full.records.values())
    assert states == {TrialState.COMPLETE: 10, TrialState.PRUNED: 133}
    for t in full.records.values():
        top = t.meta["rung"] == t.meta["bracket"]
        assert t.state == (TrialState.COMPLETE if top else TrialState.PRUNED)
        assert t.budget == rung_budgets(t.meta["bracket"], 81, 3)[t.meta["rung"]]


def test_promotions_keep_the_trial_and_continue_it(full: Sim):
    seen: dict[int, Suggestion] = {}
    for st in full.steps:
        sug = st.suggestion
        if sug.trial is None:
            assert st.number not in seen and st.number == len(seen)
            assert sug.meta["rung"] == 0
        else:
            prev = seen[sug.trial]
            assert st.number == sug.trial
            assert sug.config == prev.config
            assert sug.budget > prev.budget
            assert sug.meta == {**prev.meta, "rung": prev.meta["rung"] + 1}
        seen[st.number] = sug
    for t in full.records.values():  # the epoch rows continue: 1..budget once each
        assert [e["epoch"] for e in t.epochs] == list(range(1, t.budget + 1))


def test_the_best_at_each_rung_are_promoted(full: Sim):
    for s, rungs in PAPER.items():
        members = [t for t in full.records.values() if t.meta["bracket"] == s]
        for i in range(len(rungs) - 1):
            at = [t for t in members if t.meta["rung"] >= i]
            promoted = {t.number for t in at if t.meta["rung"] > i}
            best = sorted(at, key=lambda t: t.config["x"])[: rungs[i + 1][0]]
            assert promoted == {t.number for t in best}, (s, i)


def test_waiting_trials_are_paused_until_their_rung_is_decided():
    sim = Sim(make())
    n_rung0 = PAPER[4][0][0]
    sim.run(max_steps=n_rung0 - 1)
    assert all(t.state == TrialState.PAUSED for t in sim.records.values())
    assert all(not st.settled for st in sim.steps)
    sim.run(max_steps=n_rung0)  # the last trial of rung 0 reports: the rung is decided
    assert len(sim.steps[-1].settled) == 81 - 27
    states = Counter(t.state for t in sim.records.values())
    assert states == {TrialState.PAUSED: 27, TrialState.PRUNED: 54}
    nxt = sim.s.ask()
    assert nxt is not None and nxt.trial == min(n for n, t in sim.records.items() if t.state == TrialState.PAUSED)
    assert nxt.budget == 3 and nxt.meta == {"bracket": 4, "rung": 1, "iteration": 0}
    # settle is idempotent
    assert sim.s.settle() == {}


def test_rung_decisions_happen_exactly_when_a_rung_is_complete(full: Sim):
    decided = [
        (st.suggestion.meta["bracket"], st.suggestion.meta["rung"], len(st.settled)) for st in full.steps if st.settled
    ]
    expected = [(s, i, n - rungs[i + 1][0]) for s, rungs in PAPER.items() for i, (n, _) in enumerate(rungs[:-1])]
    assert decided == [e for e in expected if e[2] > 0]


def test_state_after():
    hb = make()
    rec = TrialRecord(number=0, state=TrialState.RUNNING, config={}, meta={"bracket": 2, "rung": 1, "iteration": 0})
    assert hb.state_after(rec) == TrialState.PAUSED
    assert (
        hb.state_after(dataclasses.replace(rec, meta={"bracket": 2, "rung": 2, "iteration": 0})) == TrialState.COMPLETE
    )
    assert hb.state_after(dataclasses.replace(rec, meta={})) == TrialState.COMPLETE


def test_value_only_objective_and_maximize_give_the_same_run(full: Sim):
    for sim in (
        Sim(make(), epochs=False).run(),
        Sim(make(metric="val_loss", direction="maximize"), sign=-1.0).run(),
    ):
        assert [key(a.suggestion) for a in sim.steps] == [key(b.suggestion) for b in full.steps]


# ---- single bracket: successive halving -----------------------------------------------------------------


@pytest.mark.parametrize("bracket", [4, 2, 0])
def test_single_bracket_is_plain_successive_halving(bracket: int):
    hb = make(bracket=bracket)
    assert hb.total() == PAPER[bracket][0][0]
    sim = Sim(hb).run()
    runs = Counter((st.suggestion.meta["rung"], st.suggestion.budget) for st in sim.steps)
    assert runs == {(i, r): n for i, (n, r) in enumerate(PAPER[bracket])}
    assert {t.meta["bracket"] for t in sim.records.values()} == {bracket}
    assert Counter(t.state for t in sim.records.values())[TrialState.COMPLETE] == PAPER[bracket][-1][0]


def test_iterations_repeat_the_plan():
    hb = make(iterations=2)
    assert hb.total() == 286
    sim = Sim(hb).run()
    assert len(sim.records) == 286 and len(sim.steps) == 412
    assert Counter(t.meta["iteration"] for t in sim.records.values()) == {0: 143, 1: 143}
    # the second iteration draws new configs
    assert len({t.config["x"] for t in sim.records.values()}) == 286


def test_small_max_epochs_degenerates_to_random_search():
    hb = make(max_epochs=2, factor=3, n_trials=4)
    assert hb.s_max == 0
    sim = Sim(hb).run()
    assert [(st.suggestion.trial, st.suggestion.budget) for st in sim.steps] == [(None, 2)] * 4
    assert all(t.state == TrialState.COMPLETE for t in sim.records.values())
    assert make(max_epochs=2).total() == 1


# ---- resume ------------------------------------------------------------------------------------------


def _resume_matches(strategy_kw: dict[str, Any], cuts: list[int], **sim_kw: Any) -> None:
    whole = Sim(make(**strategy_kw), **sim_kw).run()
    expected = [key(st.suggestion) for st in whole.steps]
    for cut in cuts:
        part = Sim(make(**strategy_kw), **sim_kw).run(max_steps=cut)
        fresh = make(**strategy_kw)
        fresh.restore(list(part.records.values()))
        assert fresh.settle() == {}
        rest = Sim(fresh, records=part.records, **sim_kw).run()
        assert [key(st.suggestion) for st in rest.steps] == expected[cut:], cut
        assert rest.records == whole.records


def test_resume_at_every_cut_point_gives_the_same_continuation():
    # R = 27: 4 brackets, 49 configs, 75 runs; every cut point
    n = len(Sim(make(max_epochs=27)).run().steps)
    _resume_matches({"max_epochs": 27}, list(range(n + 1)))


def test_resume_full_table_at_rung_and_bracket_boundaries():
    cuts = [0, 1, 80, 81, 82, 107, 108, 120, 121, 122, 150, 171, 185, 195, 201, 205, 206]
    _resume_matches({}, cuts)


def test_resume_with_failures_and_truncation():
    _resume_matches({"max_epochs": 27, "n_trials": 60}, list(range(0, 100, 3)), fails=lambda c: c["act"] == "tanh")


def test_resume_after_a_kill_reruns_the_interrupted_trial_first():
    whole = Sim(make(max_epochs=27)).run()
    expected = [key(st.suggestion) for st in whole.steps]
    for cut in (0, 5, 26, 27, 30, 38, 50):
        part = Sim(make(max_epochs=27)).run(max_steps=cut)
        rec = part.start()  # the process dies during this run
        assert rec is not None
        records = dict(part.records)
        records[rec.number] = dataclasses.replace(rec, state=TrialState.INTERRUPTED)
        fresh = make(max_epochs=27)
        fresh.restore(list(records.values()))
        again = fresh.ask()
        assert again is not None
        assert again.trial == rec.number and again.budget == rec.budget and again.meta == rec.meta
        rest = Sim(fresh, records=records)
        rest.steps.append(Step(again, rec.number, {}))
        rerun = dataclasses.replace(records[rec.number], state=TrialState.RUNNING)
        rest.records[rec.number] = rerun
        fresh.tell(rerun)
        rest.finish(rerun)
        rest.run()
        assert [key(st.suggestion) for st in rest.steps[1:]] == expected[cut + 1 :], cut


def test_resume_between_tell_and_settle_prunes_on_settle():
    sim = Sim(make()).run(max_steps=80)
    rec = sim.start()
    assert rec is not None
    rows = ({"epoch": 1, "val_loss": loss(rec.config, 1)},)
    end = dataclasses.replace(rec, state=TrialState.PAUSED, epochs=rows, value=loss(rec.config, 1))
    records = {**sim.records, end.number: end}  # died before the runner applied settle()
    fresh = make()
    fresh.restore(list(records.values()))
    settled = fresh.settle()
    assert len(settled) == 54 and set(settled.values()) == {TrialState.PRUNED}
    assert fresh.settle() == {}


def test_a_waiting_rung_starts_the_next_bracket():
    sim = Sim(make(max_epochs=9)).run(max_steps=8)  # bracket 2 has 9 configs at 1 epoch
    last = sim.start()
    assert last is not None and last.meta["rung"] == 0
    nxt = sim.s.ask()  # rung 0 of bracket 2 waits on the running trial: bracket 1 starts meanwhile
    assert isinstance(nxt, Suggestion) and nxt.trial is None
    assert nxt.meta == {"bracket": 1, "rung": 0, "iteration": 0} and nxt.budget == 3


def test_running_trial_makes_ask_wait_when_nothing_else_can_start():
    sim = Sim(make(max_epochs=9, bracket=2)).run(max_steps=8)  # one bracket: 9 configs at 1 epoch
    last = sim.start()
    assert last is not None and last.meta["rung"] == 0
    assert sim.s.ask() is WAIT  # the rung cannot be decided, and no other bracket is planned
    sim.finish(last)
    nxt = sim.s.ask()
    assert isinstance(nxt, Suggestion) and nxt.trial is not None


# ---- failures ----------------------------------------------------------------------------------------


def test_failed_trials_are_never_promoted():
    def fails(c: dict[str, Any]) -> bool:
        return c["x"] < 0.3  # the would-be best

    sim = Sim(make(), fails=fails).run()
    failed = {n for n, t in sim.records.items() if t.state == TrialState.FAILED}
    assert failed and all(sim.records[n].meta["rung"] == 0 for n in failed)
    assert not any(st.suggestion.trial in failed for st in sim.steps)
    # the plan still runs: every rung keeps its planned count from the trials that did not fail
    runs = Counter((st.suggestion.meta["bracket"], st.suggestion.meta["rung"]) for st in sim.steps)
    assert runs == {(s, i): n for s, rungs in PAPER.items() for i, (n, _) in enumerate(rungs)}
    assert all(t.config["x"] >= 0.3 for t in sim.records.values() if t.state == TrialState.COMPLETE)
    assert not any(t.state == TrialState.PAUSED for t in sim.records.values())


def test_failures_shrink_a_rung_and_all_failed_ends_the_bracket():
    sim = Sim(make(bracket=1), fails=lambda c: c["x"] > 0.0).run()  # everything fails
    assert len(sim.steps) == 8 and all(st.suggestion.trial is None for st in sim.steps)
    assert all(t.state == TrialState.FAILED for t in sim.records.values())
    assert sim.s.ask() is None

    # only one survivor where two were planned: it alone is promoted
    survivor: dict[str, Any] = {}

    def fails(c: dict[str, Any]) -> bool:
        survivor.setdefault("x", c["x"])
        return c["x"] != survivor["x"]

    sim = Sim(make(bracket=1), fails=fails).run()
    assert [st.suggestion.trial for st in sim.steps] == [None] * 8 + [0]
    assert sim.records[0].state == TrialState.COMPLETE and sim.records[0].budget == 81


# ---- the trial count -------------------------------------------------------------------------------


def test_n_trials_truncates_the_last_bracket():
    hb = make(n_trials=100)
    assert hb.total() == 100
    plans = list(hb.plan())
    assert [(p.bracket, p.sizes) for p in plans] == [(4, (81, 27, 9, 3, 1)), (3, (19, 6, 2, 1))]
    sim = Sim(hb).run()
    assert len(sim.records) == 100
    b3 = [t for t in sim.records.values() if t.meta["bracket"] == 3]
    assert Counter(t.meta["rung"] for t in b3) == {0: 13, 1: 4, 2: 1, 3: 1}
    assert [t.budget for t in b3 if t.state == TrialState.COMPLETE] == [81]


def test_n_trials_past_one_iteration_starts_the_next():
    hb = make(n_trials=200)
    assert hb.total() == 200
    plans = list(hb.plan())
    assert [(p.iteration, p.bracket, p.n) for p in plans][-2:] == [(0, 0, 5), (1, 4, 57)]
    sim = Sim(hb).run()
    assert len(sim.records) == 200 and sim.s.ask() is None


def test_n_trials_smaller_than_a_bracket_still_reaches_max_epochs():
    sim = Sim(make(n_trials=2)).run()
    assert [(st.suggestion.trial, st.suggestion.budget) for st in sim.steps][-4:] == [
        (sim.steps[-1].number, b) for b in (3, 9, 27, 81)
    ]
    assert len(sim.records) == 2


def test_zero_trials():
    hb = make(n_trials=0)
    assert hb.total() == 0 and hb.ask() is None


# ---- options -----------------------------------------------------------------------------------------


def test_registry_and_options():
    hb = make_strategy("hyperband", SPACE, max_epochs=81, factor=3, bracket=2)
    assert isinstance(hb, HyperbandStrategy)
    assert HyperbandStrategy.option_names() == ["factor", "bracket", "iterations", "sampler"]
    assert hb.options() == {"factor": 3, "bracket": 2, "iterations": 1, "sampler": "bayes"}
    with pytest.raises(StrategyError, match="no option 'eta'"):
        make_strategy("hyperband", SPACE, eta=3)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"factor": 1}, "factor must be a whole number >= 2"),
        ({"factor": 2.5}, "factor must be a whole number >= 2"),
        ({"factor": True}, "factor must be a whole number >= 2"),
        ({"bracket": 5}, r"bracket must be a whole number from 0 to 4 \(max_epochs 81, factor 3\)"),
        ({"bracket": -1}, "bracket must be a whole number from 0 to 4"),
        ({"bracket": "2"}, "bracket must be a whole number from 0 to 4"),
        ({"max_epochs": 2, "bracket": 1}, "bracket must be a whole number from 0 to 0"),
        ({"iterations": 0}, "iterations must be a whole number >= 1"),
    ],
)
def test_bad_options_are_refused(kw: dict[str, Any], match: str):
    with pytest.raises(StrategyError, match=match):
        make(**kw)


def test_n_trials_repeats_a_single_bracket():
    hb = make(bracket=1, n_trials=20)
    assert [(p.iteration, p.bracket, p.sizes) for p in hb.plan()] == [(0, 1, (8, 2)), (1, 1, (8, 2)), (2, 1, (4, 1))]
    sim = Sim(hb).run()
    assert len(sim.records) == 20
    assert Counter(t.state for t in sim.records.values()) == {TrialState.COMPLETE: 5, TrialState.PRUNED: 15}


def test_sampler_option_and_old_sessions_keep_random():
    with pytest.raises(StrategyError, match="sampler 'tpe' is unknown; use one of random, bayes"):
        make_strategy("hyperband", SPACE, max_epochs=9, sampler="tpe")
    from tuitune.core.api import strategy_for
    from tuitune.core.records import SessionRecord

    rec = SessionRecord(
        name="old", strategy="hyperband", options={"factor": 3, "bracket": None, "iterations": 1},
        space=SPACE.to_dict(), metric="val_loss", direction="minimize", seed=0, max_epochs=9, n_trials=None,
        state="stopped",
    )
    assert strategy_for(rec).options()["sampler"] == "random"


# ---- several workers: concurrent brackets -------------------------------------------------------------


def test_one_simulated_worker_is_the_sequential_run(full: Sim):
    sim = WorkerSim(make(), loss, workers=1).run()
    assert [key(r.suggestion) for r in sim.runs] == [key(st.suggestion) for st in full.steps]
    assert sim.records == full.records and sim.waits == 0


@pytest.fixture(scope="module")
def eight() -> WorkerSim:
    return WorkerSim(make(), loss, workers=8).run()


def test_eight_workers_run_the_papers_table_with_brackets_overlapping(eight: WorkerSim):
    runs = Counter((r.suggestion.meta["bracket"], r.suggestion.meta["rung"]) for r in eight.runs)
    assert runs == {(s, i): n for s, rungs in PAPER.items() for i, (n, _) in enumerate(rungs)}
    assert Counter(t.state for t in eight.records.values()) == {TrialState.COMPLETE: 10, TrialState.PRUNED: 133}
    assert eight.max_running == 8 and eight.finished
    # bracket 3 starts while bracket 4 still runs: the brackets are concurrent
    end_of_4 = max(r.end for r in eight.runs if r.suggestion.meta["bracket"] == 4)
    start_of_3 = min(r.start for r in eight.runs if r.suggestion.meta["bracket"] == 3)
    assert start_of_3 < end_of_4
    # the same decisions as one after the other: the best of each rung go on
    for s, rungs in PAPER.items():
        members = [t for t in eight.records.values() if t.meta["bracket"] == s]
        for i in range(len(rungs) - 1):
            at = [t for t in members if t.meta["rung"] >= i]
            promoted = {t.number for t in at if t.meta["rung"] > i}
            assert promoted == {t.number for t in sorted(at, key=lambda t: t.config["x"])[: rungs[i + 1][0]]}


def test_concurrent_brackets_keep_workers_busy(eight: WorkerSim):
    # the sequential plan takes 1581 epochs; one bracket at a time would idle 7 of 8 workers at each barrier
    assert eight.busy == 1581
    assert eight.utilisation > 0.75


def test_wait_only_when_no_bracket_can_start():
    hb = make(max_epochs=27)
    waits = []

    class Probe(WorkerSim):
        def fill(self) -> None:
            before = self.waits
            super().fill()
            if self.waits > before:
                waits.append((self.strategy.n_created, self.running))

    sim = Probe(hb, loss, workers=6).run()
    assert waits, "six workers on R = 27 must wait at some rung"
    # a new config can always start until the plan's last config exists
    assert all(created == hb.total() and running > 0 for created, running in waits)
    assert sim.finished and not any(t.state == TrialState.PAUSED for t in sim.records.values())


def test_concurrent_run_is_deterministic_and_resumable_from_its_records():
    whole = WorkerSim(make(max_epochs=27), loss, workers=5).run()
    again = WorkerSim(make(max_epochs=27), loss, workers=5).run()
    assert [key(r.suggestion) for r in again.runs] == [key(r.suggestion) for r in whole.runs]
    for cut in (1, 7, 30, 60):
        sim = WorkerSim(make(max_epochs=27), loss, workers=5).run(max_runs=cut)
        fresh = make(max_epochs=27)
        fresh.restore(list(sim.records.values()))  # running trials included: the state is the records
        assert fresh.settle() == {}
        sim.strategy = fresh
        sim.run()
        assert [key(r.suggestion) for r in sim.runs] == [key(r.suggestion) for r in whole.runs], cut
        assert sim.records == whole.records
