"""PyTorch Lightning and Hugging Face Transformers: each objective runs a hyperband session with 2 workers
(tiny models on random tensors, CPU), prunes, resumes promoted trials from the Trainer's checkpoint, stops
the Trainer on stop, and survives kill -9 of the coordinator with nothing committed lost."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import tuitune as tt
from tests.support.hyperband_kill import run_hyperband_kill
from tests.support.project import Project, read_log

OBJS = Path(__file__).with_name("_integration_objs.py")


def _check_promotions(s, log: Path) -> None:
    assert {t.state.value for t in s.trials} == {"complete", "pruned"}, [(t.state, t.reason) for t in s.trials]
    for t in s.trials:
        assert [int(e["epoch"]) for e in t.epochs] == list(range(1, t.budget + 1)), t.number
    lines = read_log(log)
    assert any(x[0] == "S" and int(x[3]) > 0 for x in lines), "no promotion resumed from the Trainer's checkpoint"


def test_lightning_callback_reports_checkpoints_and_resumes_in_a_hyperband_session(tmp_path, monkeypatch):
    pytest.importorskip("lightning")
    monkeypatch.syspath_prepend(str(Path(__file__).parents[2]))
    from tests.functional._integration_objs import lightning_objective

    log = tmp_path / "log.txt"
    space = tt.Space(lr=tt.Float(1e-3, 1e-1, scale="log"), units=tt.Int(4, 16), log=tt.Fixed(str(log)))
    s = tt.tune(lightning_objective, space, strategy="hyperband", factor=2, max_epochs=4, bracket=1,
                db=tmp_path / "t.db", session="l", workers=2)
    _check_promotions(s, log)
    # A promoted run continued the Trainer (fit_epochs counts from its first epoch), never re-ran an epoch.
    assert all(t.info["fit_epochs"] == t.budget for t in s.trials)


def _abort_at_epoch_2(objective, tmp_path, metric):
    """Trial 0 aborted after its 2nd epoch (in this process): the Trainer must stop there, trial 1 runs on."""
    from tuitune.core import events as ev
    from tuitune.core.api import open_session, open_store
    from tuitune.core.run.runner import Runner
    from tuitune.core.search.strategies import make_strategy

    def listen(e):
        if isinstance(e, ev.EpochReported) and e.number == 0 and e.epoch == 2:
            runner.abort_trial(0)

    space = tt.Space(lr=tt.Float(1e-3, 1e-1, scale="log"), units=tt.Int(4, 16))
    store = open_store(tmp_path / "t.db")
    strat = make_strategy("random", space, seed=0, max_epochs=3, metric=metric, direction="minimize", n_trials=2)
    open_session(store, "ab", strategy="random", space=space, metric=metric, direction="minimize", seed=0,
                 max_epochs=3, trials=2, options=strat.options())
    runner = Runner(store, "ab", objective, strat, listeners=[listen])
    runner.run()
    t0, t1 = store.trials("ab")
    assert (t0.state.value, len(t0.epochs), t0.reason) == ("pruned", 2, "aborted by the user")
    assert (t1.state.value, len(t1.epochs)) == ("complete", 3)


def test_lightning_trainer_stops_when_its_trial_is_aborted(tmp_path, monkeypatch):
    pytest.importorskip("lightning")
    monkeypatch.syspath_prepend(str(Path(__file__).parents[2]))
    from tests.functional._integration_objs import lightning_objective

    _abort_at_epoch_2(lightning_objective, tmp_path, "val_loss")


def test_hf_search_runs_a_hyperband_session_resuming_promoted_trials_from_checkpoints(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    monkeypatch.syspath_prepend(str(Path(__file__).parents[2]))
    from tests.functional._integration_objs import make_bert_trainer

    s = tt.hf_search(make_bert_trainer, tt.Space(lr=tt.Float(1e-4, 1e-2, scale="log")), strategy="hyperband",
                     factor=2, max_epochs=4, bracket=1, db=tmp_path / "t.db", session="hf", workers=2)
    assert {t.state.value for t in s.trials} == {"complete", "pruned"}, [(t.state, t.reason) for t in s.trials]
    for t in s.trials:
        assert [int(e["epoch"]) for e in t.epochs] == list(range(1, t.budget + 1))
        assert "eval_loss" in t.epochs[-1] and t.value is not None
    assert not any((tmp_path / "t.db.d" / "checkpoints" / "hf").glob("*.d")), "finished trials' folders are dropped"


def test_hf_trainer_stops_when_its_trial_is_aborted(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    monkeypatch.syspath_prepend(str(Path(__file__).parents[2]))
    from tests.functional._integration_objs import hf_objective

    _abort_at_epoch_2(hf_objective, tmp_path, "eval_loss")


def _kill_project(tmp_path, objective: str, metric: str) -> tuple[Project, Path, Path]:
    project = Project(tmp_path, workers=2)
    shutil.copy(OBJS, tmp_path / OBJS.name)
    log = tmp_path / "commits.log"
    toml = project.toml(
        "fw.toml", objective=objective, metric=metric, max_epochs=4,
        space={"lr": {"type": "float", "low": 1e-3, "high": 1e-1, "scale": "log"},
               "units": {"type": "int", "low": 4, "high": 16}},
        defaults={"lr": 0.01, "units": 8, "log": str(log), "step_s": 0.01},
    )
    return project, toml, log


@pytest.mark.slow  # ~50 s (a kill -9 and resumes, each worker importing the framework); -m slow
def test_a_lightning_hyperband_session_killed_with_9_resumes_with_nothing_committed_lost(tmp_path):
    pytest.importorskip("lightning")
    project, toml, log = _kill_project(tmp_path, "_integration_objs:lightning_objective", "val_loss")
    stats = run_hyperband_kill(project, toml, log, kills=1)  # two kills: the command objective's test
    print("lightning kill test:", stats)


@pytest.mark.slow  # ~50 s (a kill -9 and resumes, each worker importing the framework); -m slow
def test_a_transformers_hyperband_session_killed_with_9_resumes_with_nothing_committed_lost(tmp_path):
    pytest.importorskip("transformers")
    project, toml, log = _kill_project(tmp_path, "_integration_objs:hf_objective", "eval_loss")
    stats = run_hyperband_kill(project, toml, log, kills=1, pid_key="eval_pid", acc_key="eval_loss")
    print("transformers kill test:", stats)
