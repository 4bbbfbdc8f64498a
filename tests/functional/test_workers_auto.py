"""--workers auto on the CPU, with a fake device: the Runner grows from one worker to the cap its probes allow,
an out-of-memory error shrinks the packing and the trial runs again, the command line's errors."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

import tuitune as tt
from tuitune.core.records import TrialState
from tuitune.core.run.packing import Packer
from tuitune.core.run.placement import Placement
from tuitune.core.search.strategies import make_strategy
from tuitune.core.store.store import SessionFiles, Store

OBJECTIVES = '''
import os, time
from pathlib import Path

def _wait_for(cond, limit=60.0):
    end = time.monotonic() + limit
    while not cond() and time.monotonic() < end:
        time.sleep(0.02)

def roomy():
    """A device with room for many workers, each keeping a tenth of it busy."""
    return {"kind": "cuda", "peak_mb": 100.0, "free_mb": 70000.0, "total_mb": 80000.0, "busy": 0.1}

def spread(config, trial):
    """Trials wait at their second epoch until three worker processes have run one: only growth gets past."""
    pids = Path(os.environ["TT_PIDS"])
    (pids / str(os.getpid())).touch()
    for e in trial.epochs():
        if e == 2:
            _wait_for(lambda: len(list(pids.iterdir())) >= int(os.environ.get("TT_WANT", "3")))
        trial.report(val_loss=config["x"] + 1.0 / e)

spread.measure_device = roomy


class OutOfMemoryError(RuntimeError):
    """Named as torch.cuda's: the project tells it by its name (memory.is_out_of_memory)."""


def crowded(config, trial):
    """A fake GPU that holds two trials: with more running at once, every one of them runs out of memory."""
    running = Path(os.environ["TT_RUNNING"])
    flag = Path(os.environ["TT_OOMED"])
    mark = running / str(trial.number)
    mark.touch()
    try:
        state = trial.restore() or {"done": 0}
        for e in trial.epochs():
            if e == 2 and not flag.exists():  # the first trials wait for the packing to pass two
                _wait_for(lambda: len(list(running.iterdir())) > 2)
            if len(list(running.iterdir())) > 2:
                flag.touch()
                raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (fake)")
            state["done"] = e
            trial.report(val_loss=config["x"] + 1.0 / e)
            trial.checkpoint(state)
    finally:
        mark.unlink()

crowded.measure_device = roomy


def full():
    """A device with no room for a second worker."""
    return {"kind": "cuda", "peak_mb": 9000.0, "free_mb": 9000.0, "total_mb": 80000.0, "busy": 0.5}


class Arrays:
    """Trains its members in lockstep; an array of more than two runs out of memory at its second epoch."""

    measure_device = staticmethod(full)

    def fuse_key(self, config):
        return "mlp"

    def __call__(self, config, trial):
        return self.train_array([config], [trial])[0]

    def train_array(self, configs, trials):
        with open(os.environ["TT_ARRAYS"], "a") as f:
            f.write(" ".join(str(t.number) for t in trials) + "\\n")
        live = {i: iter(t.epochs()) for i, t in enumerate(trials)}
        while live:
            for i in list(live):
                try:
                    e = next(live[i])
                except StopIteration:
                    del live[i]
                    continue
                if e == 2 and len(trials) > 2:
                    raise OutOfMemoryError(f"CUDA out of memory. Tried to allocate 2.00 GiB (fake: {len(trials)} members)")
                trials[i].report(val_loss=configs[i]["x"] + 1.0 / e)
                trials[i].checkpoint({"epoch": e})
        return [None] * len(trials)


def make_arrays():
    return Arrays()
'''


@pytest.fixture
def objectives(tmp_path, monkeypatch):
    mod = f"tt_auto_objs_{os.getpid()}_{time.monotonic_ns()}"
    (tmp_path / f"{mod}.py").write_text(OBJECTIVES)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    return importlib.import_module(mod)


SPACE = tt.Space(x=tt.Float(0.0, 1.0))


def _runner(tmp_path: Path, name: str, objective, trials: int, epochs: int, cap: int):
    store = Store(tmp_path / "t.db")
    store.create_session(name, strategy="random", options={}, space=SPACE.to_dict(), metric="val_loss",
                         direction="minimize", seed=0, max_epochs=epochs, n_trials=trials)
    strat = make_strategy("random", SPACE, seed=0, max_epochs=epochs, metric="val_loss", direction="minimize",
                          n_trials=trials)
    where = Placement.parse(devices="cpu", workers="auto")
    return store, where.runner(store, name, objective, strat, packer=Packer(cap=lambda d: cap))


def test_the_runner_grows_from_one_worker_to_what_the_probe_allows(tmp_path, objectives, monkeypatch):
    pids = tmp_path / "pids"
    pids.mkdir()
    monkeypatch.setenv("TT_PIDS", str(pids))
    store, runner = _runner(tmp_path, "grow", objectives.spread, trials=6, epochs=2, cap=3)
    assert len(runner.pool.slots) == 1  # it starts with one
    assert runner.run().state == "finished"
    trials = store.trials("grow")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    assert len({t.info["worker"] for t in trials}) == 3 and len(list(pids.iterdir())) == 3
    log = SessionFiles(store.path, "grow").session_log.read_text()
    assert "packing cpu: 1 worker peak at 100 MiB each" in log and "-> 3 (memory allows" in log
    assert "cap 3); started 2 more" in log


def test_out_of_memory_shrinks_the_packing_and_every_trial_completes(tmp_path, objectives, monkeypatch):
    running, flag = tmp_path / "running", tmp_path / "oomed"
    running.mkdir()
    monkeypatch.setenv("TT_RUNNING", str(running))
    monkeypatch.setenv("TT_OOMED", str(flag))
    store, runner = _runner(tmp_path, "oom", objectives.crowded, trials=8, epochs=3, cap=3)
    assert runner.run().state == "finished"
    trials = store.trials("oom")
    assert len(trials) == 8 and [t.state for t in trials] == [TrialState.COMPLETE] * 8  # none failed
    assert all([e["epoch"] for e in t.epochs] == [1, 2, 3] for t in trials)  # nothing committed lost
    assert flag.exists() and runner.packer is not None and runner.packer.target("cpu") == 2
    log = SessionFiles(store.path, "oom").session_log.read_text()
    assert "ran out of memory with 3 workers there; packing 2 from now" in log
    assert len(runner.pool.workers) == 0  # closed: none left running


def test_tune_takes_auto_and_stores_it(tmp_path, objectives, monkeypatch):
    pids = tmp_path / "pids"
    pids.mkdir()
    monkeypatch.setenv("TT_PIDS", str(pids))
    # 3 workers on a 2-core machine would never come: one epoch each, nothing waits for them.
    s = tt.tune(objectives.spread, SPACE, trials=2, max_epochs=1, db=tmp_path / "t.db", session="t", devices="cpu",
                workers="auto")
    assert [t.state for t in s.trials] == [TrialState.COMPLETE] * 2
    assert Placement.from_info(Store(tmp_path / "t.db").session("t").info).workers == "auto"


@pytest.mark.parametrize(
    "value, words",
    [("lots", "--workers 'lots': give a whole number >= 1, auto"), ("-1", "--workers '-1'")],
)
def test_the_command_line_names_a_bad_workers_value(project, value, words):
    r = project.cli("run", project.toml().name, "--workers", value, "--devices", "cpu", "--headless")
    assert r.rc == 2
    r.assert_user_error(words)


def test_a_preset_asks_for_auto_and_the_session_keeps_it(project):
    toml = project.toml(extra={"workers": "auto"})
    project.cli("run", toml.name, "--session", "a", "--devices", "cpu", "--trials", 2, "--headless").ok()
    assert project.show("a")["session"]["workers"] == "auto"
    r = project.cli("run", project.toml("bad.toml", extra={"workers": "many"}).name, "--headless")
    r.assert_user_error("bad.toml: key 'workers': 'many' is not a worker count; give a whole number >= 1, auto")
    assert r.rc == 2


def test_with_one_worker_out_of_memory_shrinks_its_arrays_instead(tmp_path, objectives, monkeypatch):
    from tuitune.core.run.workers import ObjectiveRef

    arrays = tmp_path / "arrays"
    monkeypatch.setenv("TT_ARRAYS", str(arrays))
    store = Store(tmp_path / "t.db")
    store.create_session("arr", strategy="random", options={}, space=SPACE.to_dict(), metric="val_loss",
                         direction="minimize", seed=0, max_epochs=3, n_trials=6)
    strat = make_strategy("random", SPACE, seed=0, max_epochs=3, metric="val_loss", direction="minimize", n_trials=6)
    where = Placement.parse(devices="cpu", workers="auto", fuse=4)
    local = objectives.make_arrays()
    runner = where.runner(store, "arr", local, strat, ref=ObjectiveRef(factory=objectives.make_arrays, label="arrays"))
    assert runner.run().state == "finished"
    trials = store.trials("arr")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    assert all([e["epoch"] for e in t.epochs] == [1, 2, 3] for t in trials)
    sizes = [len(line.split()) for line in arrays.read_text().splitlines()]
    assert sizes[:2] == [4, 3] and max(sizes[2:]) == 2  # 4 ran out of memory, then 3; arrays of 2 from then
    assert runner.packer is not None and runner.packer.members("cpu") == 2 and len(runner.pool.slots) == 1
    log = SessionFiles(store.path, "arr").session_log.read_text()
    assert "ran out of memory in an array of 4 with one worker there; arrays of at most 3 from now" in log
    assert "stays at 1" in log  # the device had no room for a second worker


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: --workers auto's cap on the CPU is one")
def test_run_with_workers_auto_grows_and_says_why(project, tmp_path):
    (project.root / "auto_objs.py").write_text(OBJECTIVES)
    pids = tmp_path / "pids"
    pids.mkdir()
    project.env.update(TT_PIDS=str(pids), TT_WANT="2")  # trials wait at epoch 2 for a second worker
    toml = project.toml(objective="auto_objs:spread")
    r = project.cli("run", toml.name, "--session", "g", "--devices", "cpu", "--workers", "auto", "--trials", 4,
                    "--headless").ok()
    assert "packing cpu: 1 worker peak at 100 MiB each" in " ".join((r.out + r.err).split())
    log = (project.root / "runs.db.d" / "logs" / "g" / "session.log").read_text()
    assert re.search(r"-> \d+ \(memory allows \d+, utilisation 9, cap \d+\); started \d+ more", log), log
    assert len(list(pids.iterdir())) >= 2 and project.show("g")["session"]["workers"] == "auto"
