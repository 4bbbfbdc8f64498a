"""PyTorch Lightning: ``TuituneCallback(trial)`` reports, checkpoints, stops and resumes a ``Trainer``::

    def objective(config, trial):
        model = LitModel(lr=config["lr"])
        tuned = TuituneCallback(trial)
        trainer = L.Trainer(max_epochs=trial.budget, callbacks=[tuned], enable_checkpointing=False, logger=False)
        trainer.fit(model, train_loader, val_loader, ckpt_path=tuned.ckpt_path)

At each validation end (the sanity check aside) it reports the logged scalar metrics
(``trainer.callback_metrics``: ``self.log("val_loss", ...)``) as the epoch's row, which commits before it
returns; then saves the Trainer's checkpoint in the trial's folder (atomically, its epoch in the name), so
a resumed or promoted trial continues from it (``ckpt_path``); and stops the Trainer (``should_stop``)
when the budget is reached or the trial is stopped, aborted or pruned. While the session is paused the
Trainer waits there. ``max_epochs`` is held to the trial's budget (Hyperband and ASHA set it per rung).
Compare optuna-integration's ``PyTorchLightningPruningCallback``: the same hook, but tuitune also owns the
checkpoint and the resume.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

try:
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - the older package name
    try:
        import pytorch_lightning as pl  # type: ignore[no-redef]
    except ImportError:
        raise ImportError(
            'tuitune.integrations.lightning needs PyTorch Lightning: pip install "tuitune[lightning]"'
        ) from None

from tuitune.core.run.command import checkpoint_folder
from tuitune.integrations._common import scalar_metrics

_NAME = re.compile(r"^lightning-e(\d+)\.ckpt$")


class TuituneCallback(pl.Callback):
    """Reports a Lightning ``Trainer``'s validation metrics to a tuitune trial (see the module's docstring).

    Args:
        trial: the ``tt.Trial`` the objective received.
        metrics: the names to report (default: every scalar in ``trainer.callback_metrics``).
    """

    def __init__(self, trial: Any, metrics: list[str] | None = None) -> None:
        super().__init__()
        self.trial = trial
        self.metrics = list(metrics) if metrics is not None else None
        self.folder = checkpoint_folder(trial)

    # ---- resume ----------------------------------------------------------------------------------
    def _saved(self) -> list[tuple[int, Path]]:
        if not self.folder.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if (m := _NAME.match(p.name))]
        return sorted(found)

    @property
    def ckpt_path(self) -> str | None:
        """The checkpoint to resume from (``trainer.fit(..., ckpt_path=...)``): the last one whose epoch was
        committed and is within the budget; None: train from scratch."""
        usable = [(e, p) for e, p in self._saved() if e <= self.trial._committed and e <= self.trial.budget]
        return str(usable[-1][1]) if usable else None

    # ---- the hooks ---------------------------------------------------------------------------------
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage == "fit" and trainer.fit_loop.max_epochs != self.trial.budget:
            trainer.fit_loop.max_epochs = self.trial.budget

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        metrics = scalar_metrics(dict(trainer.callback_metrics))
        if self.metrics is not None:
            metrics = {k: v for k, v in metrics.items() if k in self.metrics}
        if not metrics:
            return
        epoch = int(trainer.current_epoch) + 1
        if self.trial.last_epoch >= epoch:  # validation more than once an epoch: the epoch's first counts
            return
        answer = self.trial._epoch_reported(epoch, metrics)
        if self.trial.last_epoch == epoch:  # committed: its checkpoint may follow (never ahead of the rows)
            self._save(trainer, epoch)
        if answer != "continue":
            trainer.should_stop = True

    def _save(self, trainer: Any, epoch: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"lightning-e{epoch}.ckpt"
        tmp = self.folder / f".lightning-e{epoch}.{os.getpid()}.tmp"
        trainer.save_checkpoint(str(tmp))
        if trainer.is_global_zero:
            os.replace(tmp, final)
            for e, p in self._saved():
                if e < epoch:
                    p.unlink(missing_ok=True)
