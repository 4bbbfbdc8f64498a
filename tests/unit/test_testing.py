"""tuitune.testing.FakeTrial runs an objective as the engine would, resume included."""

from __future__ import annotations

from tuitune.testing import FakeTrial


def objective(config, trial):
    import torch

    state = trial.restore()
    w = state["w"] if state is not None else torch.zeros(1)
    for _epoch in trial.epochs():
        w = w + config["step"]
        trial.report(val_loss=float(w.item()))
        trial.checkpoint({"w": w})


def test_fake_trial_runs_and_resumes_an_objective():
    first = FakeTrial(config={"step": 1.0}, budget=3)
    objective(first.config, first)
    assert [(r["epoch"], r["val_loss"]) for r in first.rows] == [(1, 1.0), (2, 2.0), (3, 3.0)]
    assert first.checkpoints == 3 and first.saved_epoch == 3
    resumed = FakeTrial(config=first.config, budget=5, saved=first.saved)
    objective(resumed.config, resumed)
    assert [(r["epoch"], r["val_loss"]) for r in resumed.rows] == [(4, 4.0), (5, 5.0)]


def test_stop_after_ends_the_epochs_early():
    t = FakeTrial(config={"step": 1.0}, budget=10, stop_after=2)
    objective(t.config, t)
    assert [r["epoch"] for r in t.rows] == [1, 2]
