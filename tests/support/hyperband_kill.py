"""A hyperband session with 2 workers, killed with -9 while its trials train and resumed until it ends:
the check shared by command, Lightning and Transformers objectives (tests/functional/test_command.py,
tests/functional/test_integrations.py). The objective appends, each line fsync'd:

- ``S <trial> <pid> <restored_epoch>`` when a run of the trial starts (0: from scratch);
- ``C <trial> <epoch> <pid> <acc>`` after the epoch row of metrics ``acc`` (and ``pid``) was committed;

where ``pid`` is the process that trains (a script's own, or the worker's). After the last resume: every
logged commit is in the database with its metrics (live or superseded), one live row per (trial, epoch),
the session finished with pruned and complete trials, each complete trial's live epochs 1..budget, a
run restarted from a checkpoint, and no process that trained is left alive.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import time
from collections import defaultdict
from pathlib import Path

import pytest

from tests.support.project import Project, pid_alive, read_log

SESSION = "hbk"


def append_line(path: str | os.PathLike[str], line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def _commits(log: Path) -> int:
    return sum(1 for x in read_log(log) if x[0] == "C")


def _exists(project: Project) -> bool:
    try:
        return bool(project.sql("SELECT 1 FROM sessions WHERE name = ?", (SESSION,)))
    except sqlite3.Error:
        return False


def run_hyperband_kill(project: Project, toml: Path, log: Path, *, kills: int = 2, seed: int = 7,
                       factor: int = 2, timeout: float = 240, pid_key: str = "pid", acc_key: str = "acc") -> dict[str, int]:
    """``pid_key``, ``acc_key``: the metrics holding the logged pid and acc (``eval_pid``, ``eval_loss``)."""
    rng = random.Random(seed)
    run_args = ("run", toml.name, "--strategy", "hyperband", "--factor", factor, "--session", SESSION, "--seed", 0,
                "--headless", "--devices", "cpu", "--workers", 2)
    killed = 0
    for n in range(kills):
        before = _commits(log)
        want = rng.randint(2, 4)
        bg = project.popen(*(("resume", SESSION, "--headless", "--workers", 2) if _exists(project) else run_args),
                           tag=f"hk{n}")
        t0 = time.monotonic()
        while bg.proc.poll() is None and _commits(log) < before + want:
            if time.monotonic() - t0 > timeout:
                bg.kill()
                pytest.fail(f"no progress in {timeout} s: {bg.err.read_text()[-2000:]}")
            time.sleep(0.01)
        if bg.proc.poll() is not None:
            res = bg.wait()
            pytest.fail(f"the session ended before kill {n + 1} (rc {res.rc}); make it longer: {res.err[-2000:]}")
        bg.proc.send_signal(signal.SIGKILL)
        bg.proc.wait(timeout=60)
        killed += 1
        assert project.sql("PRAGMA quick_check") == [("ok",)]
    for _ in range(3):
        r = project.cli("resume", SESSION, "--headless", "--workers", 2, timeout=timeout)
        assert r.rc == 0 and "Traceback" not in r.err, r.err[-3000:]
        if project.sql("SELECT state FROM sessions WHERE name = ?", (SESSION,)) == [("finished",)]:
            break
    else:
        pytest.fail("the session did not finish after three resumes")
    return check(project, log, killed, pid_key, acc_key)


def check(project: Project, log: Path, killed: int, pid_key: str = "pid", acc_key: str = "acc") -> dict[str, int]:
    assert project.sql("PRAGMA integrity_check") == [("ok",)]
    rows = project.sql(
        "SELECT t.number, e.epoch, e.metrics, e.superseded FROM epochs e JOIN trials t ON t.id = e.trial_id"
        " JOIN sessions s ON s.id = t.session_id WHERE s.name = ? ORDER BY e.id", (SESSION,))
    stored: dict[tuple[int, int], list[tuple[dict, int]]] = defaultdict(list)
    for number, epoch, metrics, sup in rows:
        stored[(number, epoch)].append((json.loads(metrics), sup))
    lines = read_log(log)
    commits = [x for x in lines if x[0] == "C"]
    for _, number, epoch, pid, acc in commits:
        got = stored.get((int(number), int(epoch)), [])
        assert any(m.get(pid_key) == float(pid) and m.get(acc_key) == pytest.approx(float(acc)) for m, _ in got), (
            f"trial {number} epoch {epoch} (pid {pid}) was committed but is not in the database: {got}"
        )
    dups = project.sql(
        "SELECT trial_id, epoch, count(*) FROM epochs WHERE superseded = 0 GROUP BY trial_id, epoch HAVING count(*) > 1")
    assert dups == []
    trials = project.trials(SESSION)
    states = [t["state"] for t in trials]
    assert set(states) <= {"complete", "pruned"} and "pruned" in states and "complete" in states, states
    for t in trials:
        if t["state"] == "complete":
            live = sorted(e for (n, e), v in stored.items() if n == t["number"] for _, sup in v if not sup)
            assert live == list(range(1, t["budget"] + 1)), (t["number"], live)
    restarts = [x for x in lines if x[0] == "S" and int(x[3]) > 0]
    assert restarts, "no run continued from a checkpoint (promotion or resume)"
    pids = {int(x[2]) for x in lines if x[0] == "S"}
    end = time.monotonic() + 30
    while [p for p in pids if pid_alive(p)] and time.monotonic() < end:
        time.sleep(0.05)
    assert [p for p in pids if pid_alive(p)] == [], "a process that trained outlived its session"
    return {"kills": killed, "commits": len(commits), "starts": sum(1 for x in lines if x[0] == "S"),
            "restarts": len(restarts), "superseded": sum(1 for v in stored.values() for _, s in v if s)}
