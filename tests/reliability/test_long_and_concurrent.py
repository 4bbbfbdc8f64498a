"""A reader polling beside a running session; memory over a long session."""

from __future__ import annotations

import threading
import time

import torch

import tuitune as tt
from tuitune.core.records import TrialState
from tuitune.core.store.store import Store


def test_reader_polling_every_100ms_never_disturbs_the_writer(tmp_path):
    db = tmp_path / "poll.db"
    stop = threading.Event()
    reads, errors = [], []

    def poll():
        reader = Store(db)
        while not stop.is_set():
            try:
                for s in reader.sessions():
                    reads.append(sum(len(t.epochs) for t in reader.trials(s.name)))
            except Exception as e:  # noqa: BLE001 - any error here is the failure
                errors.append(e)
            time.sleep(0.1)

    def obj(config, trial):
        for e in trial.epochs():
            time.sleep(0.01)
            trial.report(val_loss=config["x"] / e)

    Store(db).close()
    th = threading.Thread(target=poll)
    th.start()
    try:
        s = tt.tune(obj, tt.Space(x=tt.Float(0, 1)), trials=12, max_epochs=10, db=db, session="s", workers=0)
    finally:
        stop.set()
        th.join()
    assert not errors
    assert len(reads) >= 5 and reads == sorted(reads)  # the reader saw progress, never a step back
    assert all(t.state == TrialState.COMPLETE and t.last_epoch == 10 for t in s.trials)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_fifty_trials_do_not_grow_memory(tmp_path):
    """Each trial builds a model and an optimizer (about 6 MB of tensors with Adam state) and leaves nothing behind."""

    def obj(config, trial):
        model = torch.nn.Sequential(torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512))
        opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
        x = torch.randn(64, 512)
        for _e in trial.epochs():
            loss = model(x).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            trial.report(val_loss=float(loss.detach()))
            trial.checkpoint({"model": model.state_dict(), "opt": opt.state_dict()})

    samples = []

    def listen(e):
        if isinstance(e, tt.core.events.TrialFinished):
            samples.append(_rss_mb())

    tt.tune(obj, tt.Space(lr=tt.Float(1e-4, 1e-2, scale="log")), trials=50, max_epochs=2, db=tmp_path / "m.db",
            session="s", listeners=[listen], workers=0)
    assert len(samples) == 50
    early, late = max(samples[5:15]), max(samples[40:])
    assert late - early < 40, f"RSS grew from {early:.0f} MB to {late:.0f} MB over 50 trials"
