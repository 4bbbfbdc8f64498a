"""Hugging Face Transformers: ``TuituneCallback(trial)`` for a ``Trainer``, and ``hf_search``.

``hf_search`` is tuitune's ``Trainer.hyperparameter_search``: a factory builds the Trainer of a config,
tuitune runs it per trial (in worker processes, with any strategy) and owns its epochs, checkpoints and
resume::

    def make_trainer(config):
        model = BertForSequenceClassification(BertConfig(num_hidden_layers=2, ...))
        args = TrainingArguments(output_dir="unused", learning_rate=config["lr"], report_to="none")
        return Trainer(model=model, args=args, train_dataset=train, eval_dataset=val)

    session = tt.hf_search(make_trainer, tt.Space(lr=tt.Float(1e-5, 1e-3, scale="log")),
                           strategy="hyperband", max_epochs=4, workers=2)

Per trial it sets ``num_train_epochs`` to the trial's budget, evaluates and checkpoints each epoch into the
trial's folder, and resumes from the last checkpoint whose epoch was committed. With a Trainer of your own::

    def objective(config, trial):
        tuned = TuituneCallback(trial)
        args = TrainingArguments(output_dir=tuned.output_dir, num_train_epochs=trial.budget,
                                 eval_strategy="epoch", save_strategy="no", report_to="none", ...)
        trainer = Trainer(model=..., args=args, callbacks=[tuned], ...)
        trainer.train(resume_from_checkpoint=tuned.resume_from_checkpoint)

At each evaluation the callback reports the metrics (``eval_loss``, ...) as the epoch's row, which
commits before it returns; asks the Trainer to save a checkpoint (``should_save``); and stops training
(``should_training_stop``) when the budget is reached or the trial is stopped, aborted or pruned. While the
session is paused the Trainer waits there.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

try:
    from transformers import TrainerCallback
except ImportError:  # pragma: no cover - the extra is not installed
    raise ImportError(
        'tuitune.integrations.transformers needs Hugging Face Transformers: pip install "tuitune[transformers]"'
    ) from None

from tuitune.core.run.command import checkpoint_folder
from tuitune.integrations._common import scalar_metrics

_CKPT = re.compile(r"^checkpoint-(\d+)$")


class TuituneCallback(TrainerCallback):  # type: ignore[misc]
    """Reports a Hugging Face ``Trainer``'s evaluations to a tuitune trial (see the module's docstring).

    Args:
        trial: the ``tt.Trial`` the objective received.
        metrics: the names to report (default: every scalar the evaluation returns).
    """

    def __init__(self, trial: Any, metrics: list[str] | None = None) -> None:
        self.trial = trial
        self.metrics = list(metrics) if metrics is not None else None
        self.folder = checkpoint_folder(trial)

    @property
    def output_dir(self) -> str:
        """The trial's own folder: give it as ``TrainingArguments(output_dir=...)`` (checkpoints survive resume)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return str(self.folder)

    @property
    def resume_from_checkpoint(self) -> str | None:
        """The checkpoint to resume from (``trainer.train(resume_from_checkpoint=...)``): the newest complete
        one (its ``trainer_state.json`` written, the Trainer's last file) whose epoch was committed; None: from scratch."""
        best: tuple[int, Path] | None = None
        if self.folder.is_dir():
            for p in self.folder.iterdir():
                m = _CKPT.match(p.name)
                if m is None:
                    continue
                try:
                    epoch = round(float(json.loads((p / "trainer_state.json").read_text())["epoch"]))
                except (OSError, ValueError, KeyError, TypeError):
                    continue  # torn by a kill: never loaded
                if epoch <= self.trial._committed and epoch <= self.trial.budget:
                    if best is None or int(m.group(1)) > best[0]:
                        best = (int(m.group(1)), p)
        return str(best[1]) if best is not None else None

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Mapping[str, Any] | None = None,
                    **kwargs: Any) -> None:
        values = scalar_metrics(dict(metrics or {}))
        if self.metrics is not None:
            values = {k: v for k, v in values.items() if k in self.metrics}
        values.pop("epoch", None)
        if not values:
            return
        per_epoch = str(getattr(args.eval_strategy, "value", args.eval_strategy)) == "epoch"
        epoch = max(1, round(float(state.epoch or 0))) if per_epoch else self.trial.last_epoch + 1
        if self.trial.last_epoch >= epoch:
            return
        answer = self.trial._epoch_reported(epoch, values)
        if self.trial.last_epoch == epoch:  # committed: its checkpoint may follow (never ahead of the rows)
            control.should_save = True
        if answer != "continue":
            control.should_training_stop = True


def _trial_run(trainer_factory: Callable[[dict[str, Any]], Any], config: dict[str, Any], trial: Any) -> None:
    """One trial of ``hf_search``: the factory's Trainer, held to the trial's budget, folder and resume."""
    from transformers.trainer_utils import IntervalStrategy, SaveStrategy

    tuned = TuituneCallback(trial)
    trainer = trainer_factory(dict(config))
    args = trainer.args
    args.output_dir = tuned.output_dir
    args.num_train_epochs = trial.budget
    args.max_steps = -1
    args.eval_strategy = IntervalStrategy.EPOCH
    args.save_strategy = SaveStrategy.NO  # the callback asks for a save once the epoch's row is committed
    args.save_total_limit = 2  # the last and the one before (a kill may tear the last)
    args.load_best_model_at_end = False
    trainer.add_callback(tuned)
    trainer.train(resume_from_checkpoint=tuned.resume_from_checkpoint)


def hf_search(
    trainer_factory: Callable[[dict[str, Any]], Any],
    space: Any,
    *,
    metric: str = "eval_loss",
    direction: str = "minimize",
    **tune_kwargs: Any,
) -> Any:
    """Tunes a Hugging Face Trainer: ``trainer_factory(config) -> Trainer`` per trial (see the module's docstring).

    ``metric`` names an evaluation metric (``eval_loss``, ``eval_accuracy`` from ``compute_metrics``); the
    other keyword arguments are ``tt.tune``'s (``strategy``, ``trials``, ``max_epochs``, ``workers``, ``db``,
    ``session``, ...). Returns the ``tt.Session``.
    """
    from tuitune.core.api import tune

    objective = functools.partial(_trial_run, trainer_factory)
    return tune(objective, space, metric=metric, direction=direction, **tune_kwargs)


__all__ = ["TuituneCallback", "hf_search"]
