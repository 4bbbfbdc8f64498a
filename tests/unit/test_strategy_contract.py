"""One contract, every strategy: determinism, resume, suggestions in the space, a proper end.

Runs each strategy through the real Runner and store (as Optuna runs one test class over every
storage), on a cheap synthetic objective. The Bayes model's acquisition search is made smaller here
(128 candidates, 2 local searches instead of 1024 and 8): the contract takes the same code paths at a
sixth of the cost, and the search's quality is tested in test_bayes.py with the defaults.
"""

from __future__ import annotations

import functools
import math

import pytest

from tuitune.core import events as ev
from tuitune.core.api import Session, strategy_for
from tuitune.core.records import TrialState
from tuitune.core.run.runner import Runner
from tuitune.core.search.space import Choice, Fixed, Float, Int, Space
from tuitune.core.search.strategies import WAIT, make_strategy
from tuitune.core.store.store import Store
from tuitune.simulate import WorkerSim

SPACE = Space(
    lr=Float(1e-4, 1e-1, scale="log", grid_points=3),
    mom=Float(0.8, 0.99, scale="log1m", grid_points=2),
    units=Int(16, 64, step=16),
    act=Choice(["relu", "tanh"]),
    opt=Fixed("adam"),
)


# A conditional space: mom and nesterov only with sgd, damp only when nesterov is off (nested).
COND_SPACE = Space(
    lr=Float(1e-4, 1e-1, scale="log", grid_points=2),
    opt=Choice(["sgd", "adam"]),
    mom=Float(0.8, 0.99, scale="log1m", grid_points=2, when={"opt": ["sgd"]}),
    nesterov=Choice([True, False], when={"opt": ["sgd"]}),
    damp=Float(0.0, 0.5, grid_points=2, when={"nesterov": [False]}),
    units=Int(16, 32, step=16),
)
SPACES = {"flat": SPACE, "conditional": COND_SPACE}
DEFAULTS = {
    "flat": {"lr": 1e-3, "mom": 0.9, "units": 32, "act": "relu", "opt": "adam"},
    "conditional": {"lr": 1e-3, "opt": "sgd", "mom": 0.9, "nesterov": True, "damp": 0.1, "units": 16},
}


def loss(cfg):
    v = (math.log10(cfg["lr"]) + 2) ** 2 + (cfg["units"] - 48) ** 2 / 1000 + (cfg.get("act") == "tanh") * 0.3
    if "mom" in cfg:
        v += (0.95 - cfg["mom"]) ** 2
    return v + cfg.get("damp", 0.0) + 0.1 * (cfg.get("opt") == "sgd") * (not cfg.get("nesterov", True))


def objective(config, trial):
    for e in trial.epochs():
        trial.report(val_loss=loss(config) * (1 + 1 / e))


CASES = {
    "random": dict(n_trials=7),
    "grid": dict(n_trials=None),
    "bayes": dict(n_trials=7, n_initial=3),
    "hyperband": dict(n_trials=None, factor=3, sampler="random"),
    "hyperband-bayes": dict(n_trials=None, factor=3),  # the default sampler
    "asha": dict(n_trials=None, factor=3, sampler="random"),
    "asha-bayes": dict(n_trials=None, factor=3, sampler="bayes"),
    "manual": dict(n_trials=None, changes=[{"lr": 0.01}, {"units": 32}, {}, {"base": "best", "change": {"act": "tanh"}}]),
}
COND_CHANGES = [{"opt": "adam"}, {"nesterov": False}, {}, {"base": "best", "change": {"units": 32}}]
EPOCHS = {"hyperband": 9, "hyperband-bayes": 9, "asha": 9, "asha-bayes": 9}


@pytest.fixture(autouse=True)
def cheap_bayes_search(monkeypatch):
    """Every BayesStrategy built here (bayes itself, hyperband's and asha's model, on resume too) searches
    its acquisition with fewer candidates and local searches, unless a test sets them."""
    import tuitune.core.search.strategies.bayes as bayes_pkg

    real = bayes_pkg.BayesStrategy

    class CheapBayes(real):  # type: ignore[misc, valid-type]
        @functools.wraps(real.__init__)
        def __init__(self, space, **kw):
            kw.setdefault("n_candidates", 128)
            kw.setdefault("n_local", 2)
            super().__init__(space, **kw)

    monkeypatch.setattr(bayes_pkg, "BayesStrategy", CheapBayes)


def cases(name, kind):
    opts = dict(CASES[name])
    if name == "manual" and kind == "conditional":
        opts["changes"] = COND_CHANGES
    return opts


def build(tmp_path, name, db="s.db", seed=0, kind="flat"):
    opts = cases(name, kind)
    n_trials = opts.pop("n_trials")
    store = Store(tmp_path / db)
    space = SPACES[kind]
    strat = make_strategy(
        name.split("-")[0], space, seed=seed, max_epochs=EPOCHS.get(name, 2), n_trials=n_trials, defaults=DEFAULTS[kind], **opts,
    )
    store.create_session(
        "s", strategy=name.split("-")[0], options=strat.options(), space=space.to_dict(), metric="val_loss", direction="minimize",
        seed=seed, max_epochs=EPOCHS.get(name, 2), n_trials=n_trials, defaults=DEFAULTS[kind],
    )
    return store, strat


def history(store):
    return [(t.number, t.state.value, t.config, t.budget, t.value, t.last_epoch) for t in store.trials("s")]


@pytest.fixture(params=list(CASES))
def name(request):
    return request.param


@pytest.fixture(params=list(SPACES))
def kind(request):
    return request.param


class TestStrategyContract:
    def test_suggestions_lie_in_the_space_and_it_finishes(self, tmp_path, name, kind):
        store, strat = build(tmp_path, name, kind=kind)
        result = Runner(store, "s", objective, strat).run()
        assert result.state == "finished"
        trials = store.trials("s")
        assert trials, "no trial ran"
        space = SPACES[kind]
        for t in trials:
            # check() refuses an inactive parameter and a missing active one: configs hold exactly the active ones
            assert space.check(t.config) == t.config
            assert t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        expected = {
            "random": 7, "bayes": 7, "grid": space.grid_size(), "hyperband": strat.total(),
            "hyperband-bayes": strat.total(), "asha": strat.total(), "asha-bayes": strat.total(), "manual": 4,
        }[name]
        assert len(trials) == expected
        assert strat.ask() is None  # finished means finished
        if name == "grid":  # every active combination once, nothing else
            assert sorted(map(repr, (t.config for t in trials))) == sorted(map(repr, space.grid()))
        if name in ("hyperband-bayes", "asha-bayes"):  # the later new configs come from the model
            assert any(t.meta.get("chosen_by") == "model" for t in trials)
        if kind == "conditional" and name in ("random", "bayes", "hyperband", "hyperband-bayes", "asha", "asha-bayes"):
            assert {t.config["opt"] for t in trials} == {"sgd", "adam"}, "both branches are explored"

    def test_deterministic_under_a_seed(self, tmp_path, name, kind):
        a, sa = build(tmp_path, name, "a.db", seed=7, kind=kind)
        b, sb = build(tmp_path, name, "b.db", seed=7, kind=kind)
        Runner(a, "s", objective, sa).run()
        Runner(b, "s", objective, sb).run()
        assert history(a) == history(b)

    @pytest.mark.parametrize("cut", [1, 3])
    def test_resume_continues_as_if_never_stopped(self, tmp_path, name, cut, kind):
        ref, sref = build(tmp_path, name, "ref.db", kind=kind)
        Runner(ref, "s", objective, sref).run()

        store, strat = build(tmp_path, name, "cut.db", kind=kind)
        runner = Runner(store, "s", objective, strat)
        finished = []

        def stop_after(e):
            if isinstance(e, ev.TrialFinished):
                finished.append(e)
                if len(finished) == cut:
                    runner.stop_after_trial()

        runner.listeners.append(stop_after)
        assert runner.run().state == "stopped"
        rec = store.session("s")
        overrides = {"changes": []} if name == "manual" else {}
        if name == "manual":  # the queue of a manual session is what the user types next
            overrides = {"changes": cases("manual", kind)["changes"][cut:]}
        Runner(store, "s", objective, strategy_for(rec, **overrides)).run()
        assert history(store) == history(ref)

    def test_resume_after_a_stop_mid_trial(self, tmp_path, name, kind):
        ref, sref = build(tmp_path, name, "ref.db", kind=kind)
        Runner(ref, "s", objective, sref).run()
        store, strat = build(tmp_path, name, "cut.db", kind=kind)
        runner = Runner(store, "s", objective, strat)

        def stop_mid(e):
            if isinstance(e, ev.EpochReported) and e.number == 1 and e.epoch == 1 and e.budget > 1:
                runner.stop()

        runner.listeners.append(stop_mid)
        runner.run()
        states = {t.number: t.state for t in store.trials("s")}
        if 1 in states and store.trial("s", 1).budget > 1:
            assert states[1] == TrialState.INTERRUPTED
        overrides = {"changes": cases("manual", kind)["changes"][2:]} if name == "manual" else {}
        Runner(store, "s", objective, strategy_for(store.session("s"), **overrides)).run()
        assert history(store) == history(ref)
        assert Session(store, "s").best.value == Session(ref, "s").best.value


def curve(config, epoch):
    return loss(config) * (1 + 1 / epoch)


class TestSeveralWorkers:
    """The same strategies asked whenever one of three simulated workers is free (the coordinator's loop)."""

    @pytest.fixture
    def runs(self, tmp_path, name):
        _, one = build(tmp_path, name, "one.db")
        _, three = build(tmp_path, name, "three.db")
        return WorkerSim(one, curve, workers=1).run(), WorkerSim(three, curve, workers=3).run()

    def test_the_budget_counts_running_trials_and_finished_means_finished(self, runs, name):
        one, three = runs
        assert three.finished and three.strategy.ask() is None
        assert three.max_running == 3
        assert len(three.records) == len(one.records)  # never more than the budget, running trials counted
        assert all(t.state.is_finished() for t in three.records.values())

    def test_wait_only_where_a_running_trial_decides_the_next_step(self, runs, name):
        one, three = runs
        assert one.waits == 0  # one worker: nothing runs when asked (WorkerSim also refuses WAIT then)
        if name in ("random", "grid", "bayes"):
            assert three.waits == 0  # their next config never depends on a running trial's result
        if name == "manual":
            assert three.waits > 0  # the 'best' base waits for the running trials
        if name in ("random", "grid", "manual"):  # the same configs as one after the other
            assert [t.config for t in three.records.values()] == [t.config for t in one.records.values()]

    def test_manual_waits_for_a_best_base_only(self):
        strat = make_strategy("manual", SPACE, changes=[{"lr": 0.01}, {"base": "best", "change": {"units": 48}}])
        sim = WorkerSim(strat, curve, workers=2)
        sim.fill()
        assert sim.running == 1 and strat.ask() is WAIT  # the best is not known while trial 0 runs
        sim.step()
        sug = strat.ask()
        assert sug is not None and sug is not WAIT and sug.meta["base"] == 0


# The session's budget in epochs and a target (tuitune.core.budget): hyperband and asha fill the epochs with
# brackets and rungs, the others with whole trials; the target ends the session once a trial reaches it.
BUDGETS = {
    "random": dict(total_epochs=9, target=None), "grid": dict(total_epochs=11, target=None),
    "bayes": dict(total_epochs=12, target=None), "hyperband": dict(total_epochs=40, target=None),
    "hyperband-bayes": dict(total_epochs=40, target=None), "asha": dict(total_epochs=30, target=None),
    "asha-bayes": dict(total_epochs=30, target=None),
}


def build_budget(tmp_path, name, db, budget, kind="flat"):
    opts = cases(name, kind)
    opts.pop("n_trials")
    store = Store(tmp_path / db)
    strategy, epochs = name.split("-")[0], EPOCHS.get(name, 2)
    strat = make_strategy(
        strategy, SPACES[kind], max_epochs=epochs, n_trials=None, defaults=DEFAULTS[kind],
        total_epochs=budget["total_epochs"], **opts,
    )
    store.create_session(
        "s", strategy=strategy, options=strat.options(), space=SPACES[kind].to_dict(), metric="val_loss",
        direction="minimize", seed=0, max_epochs=epochs, n_trials=None, defaults=DEFAULTS[kind],
        info={"budget": {k: v for k, v in budget.items() if v is not None}},
    )
    return store, strat


# ---- several objectives and constraints (issue 21): the same contract --------------------------------

GOAL = {"objectives": [["val_loss", "minimize"], ["size", "minimize"]], "constraints": ["lat <= 0.8"]}
GOAL_CASES = ["random", "bayes", "hyperband-bayes", "asha-bayes", "grid"]


def objective_goal(config, trial):
    for e in trial.epochs():
        trial.report(val_loss=loss(config) * (1 + 1 / e), size=config["units"] / 64 + 0.01 * e,
                     lat=-math.log10(config["lr"]) / 4)


def build_goal(tmp_path, name, db="s.db", seed=0, goal=None):
    goal = GOAL if goal is None else goal
    opts = cases(name, "flat")
    n_trials = opts.pop("n_trials")
    store = Store(tmp_path / db)
    strat = make_strategy(
        name.split("-")[0], SPACE, seed=seed, max_epochs=EPOCHS.get(name, 2), n_trials=n_trials,
        defaults=DEFAULTS["flat"], **opts, **goal,
    )
    store.create_session(
        "s", strategy=name.split("-")[0], options={**strat.options(), **goal}, space=SPACE.to_dict(),
        metric="val_loss", direction="minimize", seed=seed, max_epochs=EPOCHS.get(name, 2), n_trials=n_trials,
        defaults=DEFAULTS["flat"],
    )
    return store, strat


@pytest.mark.parametrize("name", list(BUDGETS))
@pytest.mark.parametrize("what", ["epochs", "target"])
def test_a_budget_in_epochs_or_a_target_resumes_as_if_never_stopped(tmp_path, name, what):
    from tuitune.core.budget import epochs_trained, reached

    budget = dict(BUDGETS[name])
    if what == "target":
        # The best value of the run with the epochs budget: the target ends the run at that trial.
        ref, sref = build_budget(tmp_path, name, "probe.db", budget)
        Runner(ref, "s", objective, sref).run()
        best = Session(ref, "s").best
        budget["target"] = best.value
        if best.number == 0:  # nothing after the first trial would be left to check
            budget["target"] = min(t.value for t in ref.trials("s")[1:] if t.state == TrialState.COMPLETE)
    ref, sref = build_budget(tmp_path, name, "ref.db", budget)
    result = Runner(ref, "s", objective, sref).run()
    trials = ref.trials("s")
    spent = epochs_trained(trials)
    if what == "epochs":
        # Never more than the budget, and filled: less than one more trial's epochs are left.
        assert budget["total_epochs"] - sref.max_epochs < spent <= budget["total_epochs"]
        if name.startswith("asha"):  # asynchronous promotions may take epochs the plan gave to new configs
            assert len(trials) <= sref.configs_for_epochs(budget["total_epochs"]) == sref.total()
        else:  # the strategy's own plan for that many epochs
            assert len(trials) == sref.configs_for_epochs(budget["total_epochs"]) == sref.total()
    else:
        hit = [t for t in trials if t.state == TrialState.COMPLETE and reached(t.value, budget["target"], "minimize")]
        assert hit and result.message == f"the target {budget['target']:g} was reached by trial {hit[0].number}"
        probe = Store(tmp_path / "probe.db").trials("s")
        assert len(trials) <= len(probe)
        assert all(t.state != TrialState.RUNNING for t in trials)

    store, strat = build_budget(tmp_path, name, "cut.db", budget)
    runner = Runner(store, "s", objective, strat)

    def stop_after(e):
        if isinstance(e, ev.TrialFinished):
            runner.stop_after_trial()

    runner.listeners.append(stop_after)
    assert runner.run().state == "stopped"
    assert len(store.trials("s")) == 1
    Runner(store, "s", objective, strategy_for(store.session("s"))).run()
    assert history(store) == history(ref)


@pytest.mark.parametrize("name", ["random", "bayes", "hyperband-bayes", "asha"])
@pytest.mark.parametrize("kind", list(SPACES))
def test_priors_resume_as_if_never_stopped(tmp_path, name, kind):
    """A space whose parameters carry priors (the defaults, as prior="defaults" does): the same continuation."""
    prior_space = SPACES[kind].with_priors(DEFAULTS[kind])

    def build_prior(db):
        opts = cases(name, kind)
        n_trials = opts.pop("n_trials")
        store = Store(tmp_path / db)
        strategy, epochs = name.split("-")[0], EPOCHS.get(name, 2)
        strat = make_strategy(strategy, prior_space, max_epochs=epochs, n_trials=n_trials, defaults=DEFAULTS[kind], **opts)
        store.create_session(
            "s", strategy=strategy, options=strat.options(), space=prior_space.to_dict(), metric="val_loss",
            direction="minimize", seed=0, max_epochs=epochs, n_trials=n_trials, defaults=DEFAULTS[kind],
        )
        return store, strat

    ref, sref = build_prior("ref.db")
    Runner(ref, "s", objective, sref).run()
    first = ref.trials("s")[0].config
    assert first == prior_space.prune({**DEFAULTS[kind], **{k: v for k, v in first.items() if k not in prior_space.priors}})
    store, strat = build_prior("cut.db")
    runner = Runner(store, "s", objective, strat)

    def stop_after(e):
        if isinstance(e, ev.TrialFinished) and e.trial.number == 2:
            runner.stop_after_trial()

    runner.listeners.append(stop_after)
    assert runner.run().state == "stopped"
    Runner(store, "s", objective, strategy_for(store.session("s"))).run()
    assert history(store) == history(ref)


@pytest.mark.parametrize("name", ["random", "grid", "bayes", "hyperband-bayes", "asha"])
def test_a_warm_start_resumes_as_if_never_stopped(tmp_path, name):
    """Earlier trials stored with the session (info["warm_start"]): its resume rebuilds the same strategy."""
    from tuitune.core.search.warm import warm_trials

    earlier, sref = build(tmp_path, "random", "earlier.db")
    Runner(earlier, "s", objective, sref).run()
    warm = warm_trials(SPACE, DEFAULTS["flat"], [("earlier", "minimize", earlier.trials("s"))])

    def build_warm(db):
        opts = cases(name, "flat")
        n_trials = opts.pop("n_trials")
        store = Store(tmp_path / db)
        strategy, epochs = name.split("-")[0], EPOCHS.get(name, 2)
        strat = make_strategy(strategy, SPACE, max_epochs=epochs, n_trials=n_trials, warm_start=warm, **opts)
        store.create_session(
            "s", strategy=strategy, options=strat.options(), space=SPACE.to_dict(), metric="val_loss",
            direction="minimize", seed=0, max_epochs=epochs, n_trials=n_trials, info={"warm_start": warm},
        )
        return store, strat

    ref, sref = build_warm("ref.db")
    Runner(ref, "s", objective, sref).run()
    assert ref.trials("s")[0].config == warm[0]["config"]
    store, strat = build_warm("cut.db")
    runner = Runner(store, "s", objective, strat)

    def stop_after(e):
        if isinstance(e, ev.TrialFinished) and e.trial.number == 3:
            runner.stop_after_trial()

    runner.listeners.append(stop_after)
    assert runner.run().state == "stopped"
    Runner(store, "s", objective, strategy_for(store.session("s"))).run()
    assert history(store) == history(ref)


@pytest.mark.parametrize("name", ["hyperband", "asha"])
def test_open_ended_plans_resume_as_if_never_stopped(tmp_path, name):
    """A time budget without a count (open_ended): the plan goes on past one iteration, resumably."""
    def build_open(db):
        opts = cases(name, "flat")
        opts.pop("n_trials")
        store = Store(tmp_path / db)
        strat = make_strategy(name, SPACE, max_epochs=3, open_ended=True, **opts)
        store.create_session(
            "s", strategy=name, options=strat.options(), space=SPACE.to_dict(), metric="val_loss",
            direction="minimize", seed=0, max_epochs=3, n_trials=None, info={"budget": {"timeout": 3600.0}},
        )
        return store, strat

    def run_until(store, strat, last):
        runner = Runner(store, "s", objective, strat)

        def stop_after(e):
            if isinstance(e, ev.TrialStarted) and e.trial.number == last:
                runner.stop_after_trial()

        runner.listeners.append(stop_after)
        assert runner.run().state == "stopped"

    ref, sref = build_open("ref.db")
    assert sref.total() is None
    run_until(ref, sref, 12)
    assert len(ref.trials("s")) == 13 > make_strategy(name, SPACE, max_epochs=3, factor=3, sampler="random").total()
    store, strat = build_open("cut.db")
    run_until(store, strat, 4)
    run_until(store, strategy_for(store.session("s")), 12)
    assert history(store) == history(ref)


def goal_history(store):
    return [(*h, t.info.get("objectives")) for h, t in zip(history(store), store.trials("s"))]


@pytest.mark.parametrize("gname", GOAL_CASES)
@pytest.mark.parametrize("goal", [GOAL, {"constraints": ["lat <= 0.8"]}], ids=["two-objectives", "constrained"])
def test_several_objectives_resume_as_if_never_stopped(tmp_path, gname, goal):
    ref, sref = build_goal(tmp_path, gname, "ref.db", goal=goal)
    Runner(ref, "s", objective_goal, sref).run()
    trials = ref.trials("s")
    if gname in ("bayes", "hyperband-bayes", "asha-bayes"):  # log EHVI (or log EI x feasibility) chose some
        assert any(t.meta.get("chosen_by") == "model" for t in trials)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert all(t.info["objectives"]["feasible"] == (t.info["objectives"]["values"]["lat"] <= 0.8) for t in done)
    best = Session(ref, "s").best
    assert best is None or best.info["objectives"]["feasible"]  # an infeasible trial is never best

    store, strat = build_goal(tmp_path, gname, "cut.db", goal=goal)
    runner = Runner(store, "s", objective_goal, strat)
    finished = []

    def stop_after(e):
        if isinstance(e, ev.TrialFinished):
            finished.append(e)
            if len(finished) == 3:
                runner.stop_after_trial()

    runner.listeners.append(stop_after)
    assert runner.run().state == "stopped"
    Runner(store, "s", objective_goal, strategy_for(store.session("s"))).run()
    assert goal_history(store) == goal_history(ref)
