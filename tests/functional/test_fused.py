"""Fused arrays: one worker trains several trials at once (``objective.train_array``), each its own trial.

A pure-Python array objective stands in for the torch one (issue 20): it steps its members' epochs in
lockstep, one ``trial.report`` per member per epoch, as a fused model would.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

import tuitune as tt
from tuitune.core import events as ev
from tuitune.core.errors import ObjectiveError
from tuitune.core.records import TrialState
from tuitune.core.run.runner import Runner
from tuitune.core.run.workers import ObjectiveRef, WorkerPool, plan_slots
from tuitune.core.search.strategies import make_strategy
from tuitune.core.search.strategies.base import Wait
from tuitune.core.store.store import Store, files_dir
from tuitune.core.text import where_words

ARRAY = '''
import os, signal, time
from pathlib import Path


def loss(config, e):
    return (config["x"] - 0.3) ** 2 + 1.0 / e


class Array:
    """Trains its members in lockstep; TT_FAIL / TT_DIE name a member that breaks / kills its worker at epoch 2."""

    def __call__(self, config, trial):
        out = self.train_array([config], [trial])[0]
        if isinstance(out, BaseException):
            raise out
        return out

    def train_array(self, configs, trials):
        arrays = os.environ.get("TT_ARRAYS")
        if arrays:
            with open(arrays, "a") as f:
                f.write(" ".join(str(t.number) for t in trials) + "\\n")
        out = [None] * len(trials)
        live = {i: iter(t.epochs()) for i, t in enumerate(trials)}
        while live:
            for i in list(live):
                t = trials[i]
                try:
                    e = next(live[i])
                except StopIteration:  # its budget is reached, or it was stopped or aborted: it leaves the array
                    del live[i]
                    continue
                try:
                    if os.environ.get("TT_FAIL") == str(t.number) and e == 2:
                        raise ValueError(f"member {t.number} broke")
                    if os.environ.get("TT_DIE") == str(t.number) and e == 2:
                        os.kill(os.getpid(), signal.SIGKILL)
                    t.report(val_loss=loss(configs[i], e))
                    time.sleep(float(os.environ.get("TT_EPOCH", "0")))
                except Exception as ex:
                    out[i] = ex
                    del live[i]
        return out


class Refilling(Array):
    """Says each member's end as it leaves (on_leave) and lets new members take free places (refill), as the
    built-in trainer does; TT_SHORT: a member whose x is below it stops after its first epoch (early stopping)."""

    def train_array(self, configs, trials, *, refill=None, capacity=None, on_leave=None):
        arrays = os.environ.get("TT_ARRAYS")

        def note(text):
            if arrays:
                with open(arrays, "a") as f:
                    f.write(text + "\\n")

        note(" ".join(str(t.number) for t in trials))
        first, cap = trials[0].number, max(len(trials), capacity or 0)
        members, out, live, ready = list(zip(configs, trials)), {}, {}, set()
        for c, t in members:
            live[t.number] = (c, t, iter(t.epochs()))

        def leave(number, value):
            c, t, _ = live.pop(number)
            ready.discard(number)
            out[number] = value
            if on_leave is not None:
                on_leave(t, value)

        short = float(os.environ.get("TT_SHORT", "-1"))
        while True:
            while True:  # fill: every member asks its next epoch; free places are offered
                free = cap - len(live)
                if not live:  # every member left (the coordinator may hand this worker its next job meanwhile)
                    time.sleep(float(os.environ.get("TT_GONE", "0")))
                joined = list(refill(free)) if refill is not None and free > 0 else []
                for c, t in joined:
                    members.append((c, t))
                    live[t.number] = (c, t, iter(t.epochs()))
                    note(f"join {first} {t.number}")
                left = False
                for n in [n for n in live if n not in ready]:
                    c, t, it = live[n]
                    if c["x"] < short and t.last_epoch >= 1:
                        leave(n, None)  # stopped early
                        left = True
                        continue
                    try:
                        next(it)
                        ready.add(n)
                    except StopIteration:
                        leave(n, None)
                        left = True
                if not joined and not left:
                    break
            if not live:
                return [out.get(t.number) for _, t in members]
            for n in list(live):
                c, t, _ = live[n]
                t.report(val_loss=loss(c, t.last_epoch + 1))
                ready.discard(n)
            time.sleep(float(os.environ.get("TT_EPOCH", "0")))


def make_refilling():
    return Refilling()


def make():
    return Array()


def objective(config, trial):
    return Array()(config, trial)


objective.train_array = Array().train_array
objective.fuse_key = lambda config: "mlp"
'''

SPACE = tt.Space(x=tt.Float(0.0, 1.0))


@pytest.fixture
def array_ref(tmp_path, monkeypatch):
    mod = f"tt_array_objs_{os.getpid()}_{time.monotonic_ns()}"
    (tmp_path / f"{mod}.py").write_text(ARRAY)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    m = importlib.import_module(mod)
    return ObjectiveRef(factory=m.make, label="array"), m.make()


@pytest.fixture
def refilling_ref(array_ref):
    import importlib

    m = importlib.import_module(array_ref[0].factory.__module__)
    return ObjectiveRef(factory=m.make_refilling, label="refilling"), m.make_refilling()


def _runner(tmp_path, array_ref, name, *, strategy="random", trials=4, epochs=3, fuse=3, listeners=(),
            key=lambda config: "mlp", max_failures=3, space=SPACE, **opts):
    store = Store(tmp_path / "t.db")
    if not store.session_exists(name):
        store.create_session(name, strategy=strategy, options=dict(opts), space=space.to_dict(), metric="val_loss",
                             direction="minimize", seed=0, max_epochs=epochs, n_trials=trials)
    strat = make_strategy(strategy, space, seed=0, max_epochs=epochs, metric="val_loss", direction="minimize",
                          n_trials=trials, **opts)
    ref, local = array_ref
    pool = WorkerPool(ref, plan_slots(["cpu"], 1), tmp_path)
    runner = Runner(store, name, local, strat, pool=pool, fuse=fuse, fuse_key=key, listeners=listeners,
                    max_failures=max_failures)
    return store, runner


def _arrays(path):
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def test_members_commit_their_own_epochs_and_one_failing_fails_alone(tmp_path, array_ref, monkeypatch):
    monkeypatch.setenv("TT_ARRAYS", str(tmp_path / "arrays"))
    monkeypatch.setenv("TT_FAIL", "1")
    store, runner = _runner(tmp_path, array_ref, "f", trials=5)
    assert runner.run().state == "finished"
    assert _arrays(tmp_path / "arrays") == [["0", "1", "2"], ["3", "4"]]  # jobs of up to fuse=3
    by = {t.number: t for t in store.trials("f")}
    assert (by[1].state, len(by[1].epochs)) == (TrialState.FAILED, 1)
    assert "ValueError: member 1 broke" in by[1].reason
    for n in (0, 2, 3, 4):
        assert by[n].state == TrialState.COMPLETE and [e["epoch"] for e in by[n].epochs] == [1, 2, 3]
        assert by[n].value == pytest.approx((by[n].config["x"] - 0.3) ** 2 + 1 / 3)
    assert by[0].info["pid"] == by[2].info["pid"]
    logs = files_dir(store.path) / "logs" / "f"
    assert "trains in one array with trials [0, 1, 2]" in (logs / "2.log").read_text()


def test_pause_and_the_abort_of_one_member_spare_the_others(tmp_path, array_ref):
    runner: Runner
    done = threading.Event()

    def listen(e):
        if isinstance(e, ev.EpochReported) and e.number == 1 and e.epoch == 1:
            runner.abort_trial(1)
            runner.pause()

            def later():
                # Resume once a member waits at its next epoch (the pause holds the whole array).
                end = time.monotonic() + 60
                while not any(w.waiting for w in runner.pool.workers.values()) and time.monotonic() < end:
                    time.sleep(0.02)
                done.set()
                runner.resume()

            threading.Thread(target=later, daemon=True).start()

    store, runner = _runner(tmp_path, array_ref, "a", trials=3, listeners=[listen])
    assert runner.run().state == "finished"
    assert done.is_set()
    by = {t.number: t for t in store.trials("a")}
    assert (by[1].state, by[1].reason) == (TrialState.PRUNED, "aborted by the user")
    assert len(by[1].epochs) == 1
    assert all(by[n].state == TrialState.COMPLETE and len(by[n].epochs) == 3 for n in (0, 2))


def test_a_killed_worker_ends_every_member_keeping_their_rows_and_the_session_goes_on(tmp_path, array_ref, monkeypatch):
    monkeypatch.setenv("TT_DIE", "1")
    store, runner = _runner(tmp_path, array_ref, "k", trials=5, max_failures=5)
    assert runner.run().state == "finished"
    by = {t.number: t for t in store.trials("k")}
    for n in (0, 1, 2):  # the array: trial 0 had committed epoch 2 before its neighbour killed the worker
        assert by[n].state == TrialState.FAILED and "SIGKILL" in by[n].reason
    assert [len(by[n].epochs) for n in (0, 1, 2)] == [2, 1, 1]
    assert all(by[n].state == TrialState.COMPLETE and len(by[n].epochs) == 3 for n in (3, 4))


def test_a_stopped_array_resumes_from_its_committed_rows(tmp_path, array_ref, monkeypatch):
    monkeypatch.setenv("TT_ARRAYS", str(tmp_path / "arrays"))
    runner: Runner

    def listen(e):
        if isinstance(e, ev.EpochReported) and e.number == 2 and e.epoch == 2:
            runner.stop()

    store, runner = _runner(tmp_path, array_ref, "s", trials=4, listeners=[listen])
    assert runner.run().state == "stopped"
    assert {t.state for t in store.trials("s")} == {TrialState.INTERRUPTED}
    # Trial 3 was asked ahead for the next array (held, never started): interrupted with nothing trained.
    assert {t.number: len(t.epochs) for t in store.trials("s")} == {0: 2, 1: 2, 2: 2, 3: 0}
    assert store.trial("s", 3).reason == "the run ended before it started"
    store, runner = _runner(tmp_path, array_ref, "s", trials=4)
    assert runner.run().state == "finished"
    trials = store.trials("s")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert all([e["epoch"] for e in t.epochs] == [1, 2, 3] for t in trials)
    assert _arrays(tmp_path / "arrays")[1] == ["0", "1", "2"]  # the interrupted array runs again as one


def test_suggestions_held_for_arrays_are_kept_when_the_run_stops(tmp_path, array_ref, monkeypatch):
    """Configs of two kinds (the key): those asked ahead for the next arrays wait as trial rows, and survive a
    stop: every suggestion the strategy gave is a trial row, and the resume runs them."""
    monkeypatch.setenv("TT_ARRAYS", str(tmp_path / "arrays"))
    monkeypatch.setenv("TT_EPOCH", "0.05")
    runner: Runner

    def listen(e):
        if isinstance(e, ev.EpochReported) and e.epoch == 2 and not runner.stopping:
            runner.stop()

    def key(config):
        return config["x"] > 0.5

    store, runner = _runner(tmp_path, array_ref, "q", trials=12, listeners=[listen], key=key)
    asked = _count_asks(runner)
    assert runner.run().state == "stopped"
    first = store.trials("q")
    assert len(first) == len(asked) == 6  # the look-ahead: twice the array size, asked before the first array
    started = {int(n) for n in _arrays(tmp_path / "arrays")[0]}
    waited = [t for t in first if t.number not in started]
    assert waited and all(t.reason == "the run ended before it started" for t in waited)
    assert all(t.state == TrialState.INTERRUPTED and not t.epochs for t in waited)
    assert all(where_words(t.info) == "held" for t in waited)  # the where column: asked for an array, not started
    store, runner = _runner(tmp_path, array_ref, "q", trials=12, key=key)
    more = _count_asks(runner)
    assert runner.run().state == "finished"
    asked += more
    trials = store.trials("q")
    assert len(trials) == len(asked) == 12 and [t.state for t in trials] == [TrialState.COMPLETE] * 12
    assert [t.config for t in trials] == asked  # every suggestion is its trial, in the order asked
    assert all("held" not in t.info and t.info["worker"] == 0 for t in trials)
    assert [t.config for t in trials[: len(first)]] == [t.config for t in first]  # nothing asked was lost
    for a in _arrays(tmp_path / "arrays"):  # every array holds one kind of config
        assert len({key(trials[int(n)].config) for n in a}) == 1


def _count_asks(runner):
    """The configs the runner's strategy suggests from now on (a list that grows as it asks)."""
    asked = []
    ask = runner.strategy.ask

    def counting():
        s = ask()
        if s is not None and not isinstance(s, Wait) and s.trial is None:
            asked.append(s.config)
        return s

    runner.strategy.ask = counting
    return asked


KINDS = tt.Space(x=tt.Float(0.0, 1.0), kind=tt.Choice(["a", "b", "c"]))


def _by_kind(config):
    return config["kind"]


def _runs_of_one_key(trials):
    """How many arrays grouping consecutive suggestions only would have formed (the runner before grouping)."""
    kinds = [t.config["kind"] for t in sorted(trials, key=lambda t: t.number)]
    return 1 + sum(a != b for a, b in zip(kinds, kinds[1:]))


def test_arrays_form_by_key_from_the_held_suggestions_not_only_consecutive_ones(tmp_path, array_ref, monkeypatch):
    monkeypatch.setenv("TT_ARRAYS", str(tmp_path / "arrays"))
    store, runner = _runner(tmp_path, array_ref, "k", trials=24, epochs=2, fuse=4, key=_by_kind, space=KINDS)
    asked = _count_asks(runner)
    assert runner.run().state == "finished"
    trials = store.trials("k")
    assert len(trials) == len(asked) == 24 and all(t.state == TrialState.COMPLETE for t in trials)
    arrays = _arrays(tmp_path / "arrays")
    assert sorted(int(n) for a in arrays for n in a) == list(range(24))  # each trial ran once, in one array
    for a in arrays:
        assert 1 <= len(a) <= 4 and len({trials[int(n)].config["kind"] for n in a}) == 1
    consecutive = _runs_of_one_key(trials)
    assert len(arrays) < consecutive  # fewer, larger arrays than consecutive grouping gave (same seed)
    assert sum(len(a) == 4 for a in arrays) >= 3


def test_bayes_asks_ahead_with_the_held_trials_pending_and_arrays_form_by_key(tmp_path, array_ref, monkeypatch):
    monkeypatch.setenv("TT_ARRAYS", str(tmp_path / "arrays"))
    store, runner = _runner(tmp_path, array_ref, "b", strategy="bayes", trials=10, epochs=2, fuse=3, key=_by_kind,
                            space=KINDS)
    asked = _count_asks(runner)
    assert runner.run().state == "finished"
    trials = store.trials("b")
    assert [t.config for t in trials] == asked and len(asked) == 10
    assert all(t.state == TrialState.COMPLETE for t in trials)
    arrays = _arrays(tmp_path / "arrays")
    assert sorted(int(n) for a in arrays for n in a) == list(range(10))
    assert all(len({trials[int(n)].config["kind"] for n in a}) == 1 for a in arrays)
    assert max(len(a) for a in arrays) > 1


def test_the_look_ahead_shrinks_while_nothing_groups_so_the_strategy_sees_results(tmp_path, array_ref):
    """Every config its own architecture: holding 2x the array size ahead would keep 8 trials pending at every
    ask (a model-based strategy fits on ever older results); the look-ahead halves while a full pool groups
    nothing, so the last asks come with every earlier trial complete."""
    store, runner = _runner(tmp_path, array_ref, "d", trials=12, epochs=2, fuse=4, key=lambda c: c["x"])
    seen = []  # the trials complete when each new config was asked
    ask = runner.strategy.ask

    def counting():
        s = ask()
        if s is not None and not isinstance(s, Wait):
            seen.append(len(runner.strategy.completed()))
        return s

    runner.strategy.ask = counting
    assert runner.run().state == "finished"
    assert [t.state for t in store.trials("d")] == [TrialState.COMPLETE] * 12
    assert seen[:8] == [0] * 8  # the first pool: 2 x 4 held before any result
    assert seen[8:] == [8, 9, 10, 11]  # then one at a time, each after the trials before it ended


def test_a_resumed_session_forms_the_trials_an_uninterrupted_one_would(tmp_path, array_ref, monkeypatch):
    store, whole = _runner(tmp_path, array_ref, "whole", trials=16, epochs=3, fuse=4, key=_by_kind, space=KINDS)
    assert whole.run().state == "finished"
    runner: Runner

    def listen(e):
        if isinstance(e, ev.EpochReported) and e.number == 5 and not runner.stopping:
            runner.stop()

    store, runner = _runner(tmp_path, array_ref, "cut", trials=16, epochs=3, fuse=4, key=_by_kind, space=KINDS,
                            listeners=[listen])
    assert runner.run().state == "stopped"
    assert any(t.reason == "the run ended before it started" for t in store.trials("cut"))
    store, runner = _runner(tmp_path, array_ref, "cut", trials=16, epochs=3, fuse=4, key=_by_kind, space=KINDS)
    assert runner.run().state == "finished"
    assert _summary(store, "cut") == _summary(store, "whole")
    assert [t.config for t in store.trials("cut")] == [t.config for t in store.trials("whole")]


def test_members_that_leave_early_are_replaced_by_held_trials_of_their_key(tmp_path, refilling_ref, monkeypatch):
    """Refill: a member stopping early (x < 0.5) leaves its place to a held trial of the array's key, which
    joins the running array at its next epoch, a trial like any other (its rows, its end, its worker)."""
    monkeypatch.setenv("TT_ARRAYS", str(tmp_path / "arrays"))
    monkeypatch.setenv("TT_SHORT", "0.5")
    monkeypatch.setenv("TT_GONE", "0.3")  # an array whose members all left asks no more (its worker is free)
    store, runner = _runner(tmp_path, refilling_ref, "r", trials=12, epochs=3, fuse=3, key=_by_kind, space=KINDS)
    asked = _count_asks(runner)
    assert runner.run().state == "finished"
    trials = store.trials("r")
    assert len(trials) == len(asked) == 12 and all(t.state == TrialState.COMPLETE for t in trials)
    for t in trials:  # the early stoppers trained one epoch, the others their budget
        assert [e["epoch"] for e in t.epochs] == ([1] if t.config["x"] < 0.5 else [1, 2, 3])
        assert t.info["worker"] == 0 and "held" not in t.info
    lines = [line.split() for line in (tmp_path / "arrays").read_text().splitlines()]
    joins = [(int(a), int(b)) for _, a, b in (x for x in lines if x[0] == "join")]
    jobs = [[int(n) for n in x] for x in lines if x[0] != "join"]
    assert joins, "no trial joined a running array"
    array_of = {n: job[0] for job in jobs for n in job} | {b: a for a, b in joins}
    assert sorted(array_of) == list(range(12))  # every trial ran once: in a job or joining one
    for n, first in array_of.items():  # of the array's key
        assert trials[n].config["kind"] == trials[first].config["kind"]
    assert sum(len(job) for job in jobs) + len(joins) == 12


def test_a_trial_passed_over_goes_with_the_next_array():
    from tuitune.core.records import TrialRecord
    from tuitune.core.run.forming import HOLD_JOBS, _Held, _pick_group

    def held(*keys):
        return [_Held(TrialRecord(number=i, state=TrialState.RUNNING, config={}), k, False) for i, k in enumerate(keys)]

    pool = held("a", "b", "b", None, "b", "a")
    assert [h.rec.number for h in _pick_group(pool, 2)] == [1, 2]  # the largest group, up to the size, oldest first
    assert [h.rec.number for h in _pick_group(pool, 8)] == [1, 2, 4]
    pool[0].passed = HOLD_JOBS
    assert [h.rec.number for h in _pick_group(pool, 8)] == [0, 5]  # waited long enough: its group goes next
    assert [h.rec.number for h in _pick_group(held(None, None), 8)] == [0]  # no key: alone
    assert [h.rec.number for h in _pick_group(held("a", "b"), 8)] == [0]  # ties: the oldest trial's group


def _summary(store, name):
    return sorted((t.number, t.state.value, t.budget, len(t.epochs), round(t.value or 0, 9)) for t in store.trials(name))


def test_hyperband_fused_runs_the_same_trials_and_pruned_members_leave(tmp_path, array_ref, monkeypatch):
    monkeypatch.setenv("TT_ARRAYS", str(tmp_path / "arrays"))
    store, plain = _runner(tmp_path, array_ref, "one", strategy="hyperband", trials=None, epochs=4, fuse=1, factor=2, sampler="random")
    assert plain.run().state == "finished"
    store, fused = _runner(tmp_path, array_ref, "four", strategy="hyperband", trials=None, epochs=4, fuse=4, factor=2, sampler="random")
    assert fused.run().state == "finished"
    assert _summary(store, "four") == _summary(store, "one")
    states = {t.state for t in store.trials("four")}
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    arrays = _arrays(tmp_path / "arrays")
    assert max(len(a) for a in arrays) == 4
    for t in store.trials("four"):  # every member trained exactly to its rung, whatever array it was in
        assert len(t.epochs) == t.budget


def test_asha_fused_members_stop_at_their_rung(tmp_path, array_ref):
    store, runner = _runner(tmp_path, array_ref, "asha", strategy="asha", trials=8, epochs=4, fuse=3, factor=2, sampler="random")
    assert runner.run().state == "finished"
    trials = store.trials("asha")
    assert len(trials) == 8 and all(t.state.is_finished() for t in trials)
    assert TrialState.PRUNED in {t.state for t in trials}
    assert all(len(t.epochs) == t.budget for t in trials)


def test_tt_tune_fuses_an_objective_with_train_array(tmp_path, array_ref, monkeypatch):
    import importlib

    monkeypatch.setenv("TT_ARRAYS", str(tmp_path / "arrays"))
    mod = importlib.import_module(array_ref[0].factory.__module__)
    s = tt.tune(mod.objective, SPACE, trials=4, max_epochs=2, db=tmp_path / "t.db", session="tt", fuse=4)
    assert [t.state for t in s.trials] == [TrialState.COMPLETE] * 4
    assert _arrays(tmp_path / "arrays") == [["0", "1", "2", "3"]]
    assert Store(tmp_path / "t.db").session("tt").info["placement"]["fuse"] == 4
    # An objective that cannot be sent to a worker (a lambda can, by value: it captures a lock here).
    import threading

    guard = threading.Lock()
    with pytest.raises(ObjectiveError, match="fuse=2"):
        tt.tune(lambda c, t: float(guard.locked()), SPACE, trials=1, db=tmp_path / "t.db", session="l", fuse=2)


def _rows(db):
    import sqlite3

    try:
        with sqlite3.connect(db) as c:
            return set(c.execute("SELECT t.number, e.epoch, e.metrics FROM epochs e JOIN trials t ON t.id = e.trial_id"))
    except sqlite3.OperationalError:  # not created yet
        return set()


def test_a_coordinator_killed_mid_array_resumes_losing_nothing_committed(tmp_path, array_ref, monkeypatch):
    import signal
    import subprocess
    import sys

    mod = array_ref[0].factory.__module__
    db = tmp_path / "t.db"
    script = (
        "import sys, tuitune as tt\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        f"import {mod} as m\n"
        "tt.tune(m.objective, tt.Space(x=tt.Float(0.0, 1.0)), trials=3, max_epochs=4, db=sys.argv[1],"
        " session='kill', fuse=3, workers=1)\n"
    )
    env = {**os.environ, "TT_EPOCH": "0.3"}
    proc = subprocess.Popen([sys.executable, "-c", script, str(db)], env=env)
    try:
        end = time.monotonic() + 120
        while not (db.exists() and len(_rows(db)) >= 5):  # every member has an epoch, some have two
            assert proc.poll() is None and time.monotonic() < end, "the run ended or stalled before the kill"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = _rows(db)
    s = tt.tune(array_ref[1], SPACE, trials=3, max_epochs=4, db=db, session="kill", workers=0)  # in this process
    assert [t.state for t in s.trials] == [TrialState.COMPLETE] * 3
    assert all([e["epoch"] for e in t.epochs] == [1, 2, 3, 4] for t in s.trials)
    assert before <= _rows(db)  # every row committed before the kill is still there (superseded or live)
