"""kill -9 at the two writes that replace a file: an export and a checkpoint.

- Export: ``tuitune export NAME -o FILE`` of a session with 3000 epoch rows (about 2.7 MB of JSON),
  killed at random moments of its life and, every other time, as soon as its temp file appears (inside
  the write), and a process calling ``write_json_atomic`` in a loop killed at random moments; a
  complete export already exists at FILE: FILE is always the old document or a complete new one
  (strict JSON with the documented keys), never truncated.
- Checkpoint: an objective writing an 8 MB checkpoint each epoch, killed at random moments, many of
  them in the middle of ``torch.save``: a torn checkpoint is never loaded (every restored state is
  self-consistent and is the last one completely written), the trials continue from it and finish,
  and no temp file remains after the resume.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import tuitune as tt
from tests.support.project import ReliabilityProject as Project
from tests.support.project import commits, read_log, wait_until
from tuitune.core.store.store import Store

DOCUMENTED = {"session", "preset", "strategy", "metric", "direction", "value", "trial", "config", "epochs",
              "versions"}


def _strict(text: str):
    def refuse(const):
        raise ValueError(const)

    return json.loads(text, parse_constant=refuse)


def _check_export(path: Path, allowed: list[dict], *, ignore: tuple[str, ...] = ()) -> int:
    """FILE is one of the allowed documents, whole (returns its index)."""
    text = path.read_text()
    assert text.endswith("}\n"), f"truncated export ({len(text)} bytes): ...{text[-80:]!r}"
    doc = _strict(text)
    assert DOCUMENTED <= set(doc), sorted(DOCUMENTED - set(doc))
    assert {"python", "torch", "tuitune"} <= set(doc["versions"])
    doc = {k: v for k, v in doc.items() if k not in ignore}
    for i, want in enumerate(allowed):
        if doc == {k: v for k, v in want.items() if k not in ignore}:
            return i
    pytest.fail("the export is valid JSON but neither the old nor the new document")


# ---------------------------------------------------------------------------------------------- export


def _session_with_many_epochs(db: Path, epochs: int, metrics: int) -> None:
    """One complete trial of ``epochs`` rows of ``metrics`` metrics each (a slow export)."""
    store = Store(db)
    store.conn.execute("PRAGMA synchronous = OFF")  # test set-up only: thousands of commits, quickly

    def obj(config, trial):
        for e in trial.epochs():
            trial.report(val_loss=config["x"] + 1.0 / e, **{f"m{i:02d}": e * 0.001 + i for i in range(metrics)})

    tt.tune(obj, tt.Space(x=tt.Float(0.0, 1.0)), trials=1, max_epochs=epochs, db=store, session="ex", workers=0)
    store.close()


def run_export_kills(rproj: Project, *, kills: int, inside_min: int, seed: int) -> None:
    _session_with_many_epochs(rproj.db, epochs=3000, metrics=30)
    target = rproj.root / "best.json"
    t0 = time.monotonic()
    rproj.cli("export", "ex", "-o", target).ok()
    full = time.monotonic() - t0
    reference = json.loads(target.read_text())
    assert len(reference["epochs"]) == 3000
    rng = random.Random(seed)
    inside = 0
    for i in range(kills):
        bg = rproj.popen("export", "ex", "-o", target, tag=f"ex{i}")
        if i % 2:
            # Aimed: as soon as its temp file shows up beside FILE (the write is under way), or a few ms on.
            delay = rng.choice([0.0, 0.0, 0.002, 0.005])
            while bg.proc.poll() is None and not any(rproj.root.glob(".best.json.*.tmp")):
                pass
            time.sleep(delay)
        else:
            # A random moment of its life (start-up, the read, the JSON, the write, the rename).
            deadline = time.monotonic() + rng.uniform(0.1, 1.2) * full
            while time.monotonic() < deadline and bg.proc.poll() is None:
                time.sleep(0.002)
        bg.kill()
        temps = list(rproj.root.glob(".best.json.*.tmp"))
        inside += bool(temps)
        for p in temps:
            p.unlink()
        _check_export(target, [reference], ignore=("exported",))
    print(f"export kills: {kills}, {inside} inside the write (full export {full:.2f} s)")
    assert inside >= inside_min, f"only {inside} of {kills} kills landed inside the write"
    rproj.cli("export", "ex", "-o", target).ok()
    _check_export(target, [reference], ignore=("exported",))


def test_kill_during_cli_export(rproj: Project) -> None:
    run_export_kills(rproj, kills=8, inside_min=1, seed=11)


@pytest.mark.slow
def test_kill_during_cli_export_soak(rproj: Project) -> None:
    run_export_kills(rproj, kills=30, inside_min=5, seed=12)


def _big_doc(trial: int, epochs: int) -> dict:
    return {
        "session": "loop", "preset": None, "strategy": "random", "metric": "val_loss", "direction": "minimize",
        "value": 0.1 * trial, "trial": trial, "config": {"x": trial / 10},
        "epochs": [{"epoch": e, "val_loss": 1.0 / e, "pad": "x" * 40} for e in range(1, epochs + 1)],
        "versions": {"python": "3", "torch": "2", "tuitune": "0"},
    }


def run_writer_kills(rproj: Project, *, kills: int, mid_write: int, seed: int) -> None:
    """Kills a process rewriting FILE with write_json_atomic in a loop, until ``kills`` kills of which
    at least ``mid_write`` landed between the temp file's creation and the rename."""
    docs = [_big_doc(0, 40), _big_doc(1, 400)]
    docs_file = rproj.root / "docs.json"
    docs_file.write_text(json.dumps(docs))
    target = rproj.root / "best.json"
    target.write_text(json.dumps(docs[0], indent=2) + "\n")  # the previous complete export
    rng = random.Random(seed)
    done = torn = 0
    seen = set()
    # Until both documents were seen whole after a kill too (a condition, not luck: on some machines the
    # random kill times keep landing inside the second document's write for a while).
    while done < kills or torn < mid_write or len(seen) < 2:
        assert done < kills * 5, f"only {torn} of {done} kills landed inside the write; seen {sorted(seen)}"
        log = rproj.root / f"w{done}.log"
        bg = rproj.popen(tag=f"w{done}", argv=[sys.executable, str(rproj.root / "_rel_objectives.py"),
                                                "export-loop", str(target), str(docs_file), str(log)])
        wait_until(lambda log=log, bg=bg: read_log(log) or bg.proc.poll() is not None, timeout=120,
                   what="a first write")
        assert bg.proc.poll() is None, bg.wait().err
        time.sleep(rng.uniform(0.0, 0.2))
        bg.kill()
        done += 1
        temps = list(rproj.root.glob(".best.json.*.tmp"))
        torn += bool(temps)
        for p in temps:  # what a later export would find: a stray temp file beside FILE, never FILE torn
            p.unlink()
        seen.add(_check_export(target, docs))
    assert seen == {0, 1}  # both documents were written over one another
    print(f"writer kills: {done}, {torn} inside a write")


def test_kill_during_write_json_atomic(rproj: Project) -> None:
    run_writer_kills(rproj, kills=8, mid_write=3, seed=21)


@pytest.mark.slow
def test_kill_during_write_json_atomic_soak(rproj: Project) -> None:
    run_writer_kills(rproj, kills=30, mid_write=10, seed=22)


# ---------------------------------------------------------------------------------------------- checkpoint

SESSION = "ck"


def _running(rproj: Project) -> bool:
    try:
        return rproj.session_exists(SESSION)
    except sqlite3.Error:
        return False


def _until_temp_file(folder: Path, bg: Any, timeout: float = 30.0) -> None:
    """Returns as soon as a checkpoint temp file shows in ``folder`` (or the process ends, or ``timeout``)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and bg.proc.poll() is None:
        try:
            if any(name.endswith(".tmp") for name in os.listdir(folder)):
                return
        except FileNotFoundError:
            pass


def run_checkpoint_kills(
    rproj: Project, *, trials: int, epochs: int, kills: int, torn_min: int, seed: int, workers: int = 0, mb: int = 8
) -> None:
    """``workers`` 0: in-process, so the kill lands in the process that writes the checkpoint. With worker
    processes the workers write them, two trials at once, and outlive a killed coordinator by up to a
    quarter of a second (a torn file a dying worker leaves is the same '.N.pt.PID.tmp', never loaded and
    removed on the next start); the kill hits the coordinator between two trials' commits."""
    log = rproj.root / "ck.log"
    toml = rproj.toml("ck.toml", objective="_rel_objectives:big_checkpoint", max_epochs=epochs,
                      defaults={"mb": mb, "epoch_s": 0.03, "log": str(log)})
    folder = rproj.ckpt_dir(SESSION)
    rng = random.Random(seed)
    where = ("--in-process",) if workers == 0 else ("--devices", "cpu", "--workers", workers)
    run_args = ("run", toml.name, "--trials", trials, "--session", SESSION, "--seed", 0, "--headless", *where)
    done = torn = 0
    while done < kills or torn < torn_min:
        assert done < kills * 4, f"only {torn} of {done} kills landed inside a checkpoint write"
        args = ("resume", SESSION, "--headless") if _running(rproj) else run_args
        bg = rproj.popen(*args, tag=f"p{done}")
        # Wait for this process's first (or second) committed epoch: the checkpoint write starts right
        # after it, and the kill lands a few ms later, often inside torch.save. After two, the process
        # has written one checkpoint whole, so the next one continues from it.
        want = rng.choice([1, 2])
        wait_until(lambda bg=bg, want=want: len(commits(log, bg.pid)) >= want or bg.proc.poll() is not None,
                   timeout=180,
                   interval=0.003, what="a committed epoch")
        if bg.proc.poll() is not None:
            res = bg.wait()
            pytest.fail(f"the session ended after {done} kills (rc {res.rc}); make it longer. {res.err[-2000:]}")
        if torn < torn_min and done % 2 == 1:
            # Aimed: every other kill, until one has torn a file, waits for a temp file to appear and kills
            # at once. On a fast disk (tmpfs) a 32 MB write lives a few ms, so a random delay can miss it
            # twenty times in a row; a tight poll of the folder sees it.
            _until_temp_file(folder, bg)
        else:
            time.sleep(rng.uniform(0.0, 0.05))
        bg.kill()
        done += 1
        torn += any(folder.glob(".*.tmp"))
    for _attempt in range(3):
        rproj.cli("resume", SESSION, "--headless", timeout=600).ok()
        if rproj.sql("SELECT state FROM sessions WHERE name = ?", (SESSION,)) == [("finished",)]:
            break
    else:
        pytest.fail("the session did not finish after three resumes")

    lines = read_log(log)
    assert not [x for x in lines if x[0] == "BAD"], "epochs() did not continue after the restored checkpoint"
    # Every restored state is self-consistent and is what the trial's checkpoint file held at the kill:
    # the last checkpoint known to be whole (written: K, or restored: S), or the one being written
    # after the last committed epoch (C) if the kill came after its rename.
    known: dict[int, int] = {}
    pending: dict[int, int | None] = {}
    restored_any = 0
    for x in lines:
        number = int(x[1]) if x[0] in ("C", "K", "S") else -1
        if x[0] == "C":
            pending[number] = int(x[2])
        elif x[0] == "K":
            known[number], pending[number] = int(x[2]), None
        elif x[0] == "S":
            restored, ok = int(x[3]), int(x[4])
            assert ok == 1, f"trial {number}: a torn or inconsistent checkpoint of epoch {restored} was loaded"
            allowed = {known.get(number, 0), pending.get(number)}
            assert restored in allowed, f"trial {number} restored epoch {restored}, expected one of {allowed}"
            known[number], pending[number] = restored, None
            restored_any += restored > 0
    assert restored_any >= 1, "no restart continued from a checkpoint"
    stored = rproj.trials(SESSION)
    assert [t["state"] for t in stored] == ["complete"] * trials
    for t in stored:
        assert rproj.live_epochs(SESSION, t["number"]) == list(range(1, epochs + 1))
    assert rproj.sql("PRAGMA integrity_check") == [("ok",)]
    left = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    assert left == [], f"left in the checkpoint folder: {left}"
    print(f"checkpoint kills: {done}, {torn} inside a checkpoint write, {restored_any} restores")


def test_kill_during_checkpoint_writes(rproj: Project) -> None:
    # 16 MB: checkpoints are serialised in memory and then written in one go; the aimed kills (every other
    # one until a file was torn) hit the temp file whatever its size, the random ones now and then.
    run_checkpoint_kills(rproj, trials=6, epochs=4, kills=5, torn_min=1, seed=31, mb=16)


def test_kill_during_checkpoint_writes_of_two_workers(rproj: Project) -> None:
    run_checkpoint_kills(rproj, trials=4, epochs=4, kills=2, torn_min=0, seed=33, workers=2)


@pytest.mark.slow
def test_kill_during_checkpoint_writes_soak(rproj: Project) -> None:
    run_checkpoint_kills(rproj, trials=20, epochs=5, kills=24, torn_min=8, seed=32, mb=32)


@pytest.mark.slow
def test_kill_during_checkpoint_writes_of_workers_soak(rproj: Project) -> None:
    """The soak with the suite's workers (``pytest --workers N``; two at least)."""
    run_checkpoint_kills(rproj, trials=20, epochs=5, kills=24, torn_min=0, seed=34, workers=max(2, rproj.workers))


def test_a_torn_checkpoint_file_is_never_loaded(rproj: Project) -> None:
    """The checkpoint file itself damaged (a disk-level tear): restore() gives None, the trial restarts
    from scratch, its earlier rows are superseded, and it finishes."""
    log = rproj.root / "t.log"
    toml = rproj.toml("t.toml", objective="_rel_objectives:big_checkpoint", max_epochs=3,
                      defaults={"mb": 1, "epoch_s": 0.3, "log": str(log)})
    bg = rproj.popen("run", toml.name, "--trials", 1, "--session", "tt", "--headless", tag="t")
    wait_until(lambda: any(x[0] == "K" and x[2] == "2" for x in read_log(log)), timeout=180,
               what="the checkpoint of epoch 2")
    bg.kill()
    ckpt = rproj.ckpt_dir("tt") / "0.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    rproj.cli("resume", "tt", "--headless").ok()
    starts = [x for x in read_log(log) if x[0] == "S"]
    assert [(x[3], x[4]) for x in starts] == [("0", "1"), ("0", "1")]  # the second start restored nothing
    assert rproj.trials("tt")[0]["state"] == "complete"
    assert rproj.live_epochs("tt", 0) == [1, 2, 3]
    assert not list(rproj.ckpt_dir("tt").iterdir())
