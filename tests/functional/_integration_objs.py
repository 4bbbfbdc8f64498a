"""Objectives of the integration tests (tests/functional/test_integrations.py): a tiny LightningModule and a
2-layer BERT built from a config, on random tensors (no download), each logging ``S``/``C`` lines for
tests/support/hyperband_kill.py when ``config["log"]`` names a file."""

from __future__ import annotations

import os
import re
import time


def _line(config, text):
    log = config.get("log")
    if log:
        with open(log, "a") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())


# ---------------------------------------------------------------------------- Lightning


def lightning_objective(config, trial):
    import lightning.pytorch as L
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from tuitune.integrations.lightning import TuituneCallback

    class Tiny(L.LightningModule):
        def __init__(self, lr, units):
            super().__init__()
            self.lr = lr
            self.net = torch.nn.Sequential(torch.nn.Linear(8, units), torch.nn.Tanh(), torch.nn.Linear(units, 1))

        def training_step(self, batch, _):
            x, y = batch
            time.sleep(float(config.get("step_s", 0.0)))
            return torch.nn.functional.mse_loss(self.net(x), y)

        def validation_step(self, batch, _):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("val_loss", loss)
            self.log("acc", loss)
            self.log("pid", float(os.getpid()))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.lr)

    class Logged(TuituneCallback):
        def on_validation_end(self, trainer, pl_module):
            before = self.trial.last_epoch
            super().on_validation_end(trainer, pl_module)
            if self.trial.last_epoch > before:
                row = self.trial._reported[self.trial.last_epoch]
                _line(config, f"C {self.trial.number} {self.trial.last_epoch} {os.getpid()} {row['acc']!r}")

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 8, generator=g)
    y = x.sum(dim=1, keepdim=True) * 0.3
    train = DataLoader(TensorDataset(x, y), batch_size=16)
    val = DataLoader(TensorDataset(x[:32], y[:32]), batch_size=32)
    torch.manual_seed(trial.number)
    tuned = Logged(trial)
    ckpt = tuned.ckpt_path
    restored = int(re.search(r"-e(\d+)\.ckpt$", ckpt).group(1)) if ckpt else 0
    _line(config, f"S {trial.number} {os.getpid()} {restored}")
    trainer = L.Trainer(max_epochs=trial.budget, callbacks=[tuned], enable_checkpointing=False, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1,
                        num_sanity_val_steps=0)
    trainer.fit(Tiny(config["lr"], int(config["units"])), train, val, ckpt_path=ckpt)
    trial.info["fit_epochs"] = int(trainer.current_epoch)


# ---------------------------------------------------------------------------- Hugging Face Transformers


def make_bert_trainer(config):
    """A Trainer of a 2-layer BERT built from a config (vocabulary 50, hidden 16) on random token ids."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=16, num_labels=2)
    model = BertForSequenceClassification(cfg)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 50, (32, 8), generator=g)
    labels = (ids[:, 0] > 25).long()

    class Data(torch.utils.data.Dataset):
        def __init__(self, n):
            self.n = n

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            return {"input_ids": ids[i], "attention_mask": torch.ones(8, dtype=torch.long), "labels": labels[i]}

    def compute_metrics(pred):
        time.sleep(float(config.get("step_s", 0.0)))
        return {"pid": float(os.getpid())}

    args = TrainingArguments(output_dir="unused", learning_rate=config["lr"], per_device_train_batch_size=8,
                             per_device_eval_batch_size=16, report_to="none", use_cpu=True, disable_tqdm=True,
                             logging_strategy="no", seed=0, dataloader_num_workers=0)
    return Trainer(model=model, args=args, train_dataset=Data(32), eval_dataset=Data(16),
                   compute_metrics=compute_metrics)


def hf_objective(config, trial):
    """``hf_search``'s trial run (``_trial_run``) with S/C lines: the pid and the committed ``eval_loss``."""
    import json
    from pathlib import Path

    import transformers

    from tuitune.integrations import transformers as tti

    class Logger(transformers.TrainerCallback):
        def on_save(self, args, state, control, **kw):  # after the committed evaluation's checkpoint
            e = trial.last_epoch
            _line(config, f"C {trial.number} {e} {os.getpid()} {trial._reported[e]['eval_loss']!r}")

    def factory(cfg):
        trainer = make_bert_trainer(cfg)
        trainer.add_callback(Logger())
        return trainer

    ckpt = tti.TuituneCallback(trial).resume_from_checkpoint
    restored = round(json.loads((Path(ckpt) / "trainer_state.json").read_text())["epoch"]) if ckpt else 0
    _line(config, f"S {trial.number} {os.getpid()} {restored}")
    tti._trial_run(factory, config, trial)
