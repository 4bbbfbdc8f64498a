"""Faults whose contract is specific to several workers (always two here, whatever ``pytest --workers`` says).

- kill -9 of the coordinator while two trials run: within 5 s ``sessions --json`` says ``alive: false`` and
  ``interrupted`` (both running trials read interrupted), no worker process is left, and the resume
  finishes with every committed epoch still in the database;
- kill -9 of one worker while its sibling trains: its trial fails naming SIGKILL with its committed epochs
  kept, the sibling trains on in the same process untouched, a fresh worker takes the next trials, and
  the session finishes.

(kill -9 at random moments while two trials commit: ``tests/functional/test_kill.py`` with two workers;
while two trials write checkpoints: ``test_crash_points.py::test_kill_during_checkpoint_writes[2-workers]``.)
"""

from __future__ import annotations

import json
import os
import signal
import time

from tests.support.project import ReliabilityProject as Project
from tests.support.project import pid_alive, read_log, wait_until

WORKERS = 2


def _toml(rproj: Project, log, *, epochs: int, epoch_s: float) -> str:
    return rproj.toml("w.toml", objective="_rel_objectives:slow", max_epochs=epochs,
                      defaults={"epoch_s": epoch_s, "log": str(log)}).name


def _two_trials_under_way(rproj: Project, log, session: str) -> list[int] | None:
    """The two running trials once each has a committed epoch (read from the database and the log)."""
    try:
        running = [t["number"] for t in rproj.trials(session) if t["state"] == "running"]
    except Exception:  # noqa: BLE001 - the file is still being created
        return None
    committed = {int(x[1]) for x in read_log(log) if x[0] == "C"}
    return running if len(running) == 2 and set(running) <= committed else None


def _worker_pids(log) -> set[int]:
    return {int(x[4]) for x in read_log(log) if len(x) >= 5}


def _all_rows(rproj: Project, session: str) -> set[tuple[int, int]]:
    """(trial, epoch) of every epoch row, superseded ones included."""
    return set(rproj.sql(
        "SELECT t.number, e.epoch FROM epochs e JOIN trials t ON t.id = e.trial_id JOIN sessions s"
        " ON s.id = t.session_id WHERE s.name = ?", (session,)))


def test_kill_9_of_the_coordinator_with_two_trials_running(rproj: Project) -> None:
    log = rproj.root / "k.log"
    toml = _toml(rproj, log, epochs=6, epoch_s=0.2)
    bg = rproj.popen("run", toml, "--trials", 4, "--session", "k9", "--headless", "--devices", "cpu",
                     "--workers", WORKERS, tag="k9")
    try:
        running = wait_until(lambda: _two_trials_under_way(rproj, log, "k9"), timeout=180,
                             what="two trials running, each with a committed epoch")
    finally:
        bg.kill()
    killed_at = time.monotonic()
    workers = _worker_pids(log)
    assert len(workers) == 2 and bg.pid not in workers
    committed = {(int(x[1]), int(x[2])) for x in read_log(log) if x[0] == "C"}

    # Within 5 s: every look from then on reads the session dead and interrupted, without a resume.
    while True:
        asked_at = time.monotonic()
        row = json.loads(rproj.cli("sessions", "--json").ok().out)[0]
        if not row["alive"]:
            break
        assert asked_at - killed_at < 5.0, f"still alive {asked_at - killed_at:.1f} s after kill -9: {row}"
    assert row["state"] == "interrupted", row
    states = {t["number"]: t["state"] for t in rproj.show("k9")["trials"]}
    assert [states[n] for n in running] == ["interrupted"] * 2, states
    assert "running" not in states.values(), states

    wait_until(lambda: not any(pid_alive(p) for p in workers), timeout=30, what="the workers to exit")
    rproj.cli("resume", "k9", "--headless", timeout=300).ok()
    assert [t["state"] for t in rproj.trials("k9")] == ["complete"] * 4
    lost = committed - _all_rows(rproj, "k9")
    assert not lost, f"committed epochs missing after the resume: {sorted(lost)}"
    for t in range(4):
        assert rproj.live_epochs("k9", t) == list(range(1, 7))
    assert rproj.sql("PRAGMA integrity_check") == [("ok",)]


def test_a_worker_killed_while_its_sibling_trains(rproj: Project) -> None:
    log = rproj.root / "w.log"
    epochs = 5
    toml = _toml(rproj, log, epochs=epochs, epoch_s=0.2)
    bg = rproj.popen("run", toml, "--trials", 5, "--session", "wk", "--headless", "--devices", "cpu",
                     "--workers", WORKERS, tag="wk")
    try:
        victim, sibling = wait_until(lambda: _two_trials_under_way(rproj, log, "wk"), timeout=180,
                                     what="two trials running, each with a committed epoch")
        lines = read_log(log)
        pid_of = {int(x[1]): int(x[4]) for x in lines}  # the latest process of each trial
        target = pid_of[victim]
        os.kill(target, signal.SIGKILL)
        r = bg.wait(timeout=300)
    finally:
        bg.kill()
    assert r.rc == 0, r.err[-3000:]
    assert "Traceback" not in r.err + r.out

    trials = {t["number"]: t for t in rproj.trials("wk")}
    dead = trials[victim]
    assert dead["state"] == "failed" and "SIGKILL" in (dead["reason"] or ""), dead
    logged = sorted(e for n, e in ((int(x[1]), int(x[2])) for x in read_log(log) if x[0] == "C") if n == victim)
    assert logged and rproj.live_epochs("wk", victim) == logged  # its committed epochs are kept
    # The sibling trained on in the same worker, every epoch once, nothing superseded.
    lines = read_log(log)
    assert {int(x[4]) for x in lines if int(x[1]) == sibling} == {pid_of[sibling]}
    assert [int(x[2]) for x in lines if x[0] == "C" and int(x[1]) == sibling] == list(range(1, epochs + 1))
    assert trials[sibling]["state"] == "complete"
    assert rproj.sql(
        "SELECT count(*) FROM epochs e JOIN trials t ON t.id = e.trial_id WHERE t.number = ? AND e.superseded = 1",
        (sibling,)) == [(0,)]
    # The session went on: every other trial completed, some of them in a fresh worker.
    assert [trials[n]["state"] for n in sorted(trials) if n != victim] == ["complete"] * 4
    later = {int(x[4]) for x in lines if int(x[1]) > max(victim, sibling)}
    assert later - {target, pid_of[sibling]}, "no fresh worker replaced the killed one"
    assert rproj.sql("SELECT state FROM sessions WHERE name = 'wk'") == [("finished",)]
    wait_until(lambda: not any(pid_alive(p) for p in _worker_pids(log)), timeout=30, what="the workers to exit")


def test_ctrl_c_in_a_terminal_with_two_trials_running(rproj: Project) -> None:
    """Ctrl+C typed in a real terminal: both running trials end interrupted with exactly their committed
    epochs, the process exits within an epoch + 10 s, and the resume finishes both."""
    from tests.reliability.test_terminal_signals import Pty

    log = rproj.root / "c.log"
    epoch_s, epochs = 0.3, 8
    toml = _toml(rproj, log, epochs=epochs, epoch_s=epoch_s)
    term = Pty(rproj.args("run", toml, "--trials", 2, "--session", "cc", "--headless", "--devices", "cpu",
                          "--workers", WORKERS), cwd=rproj.root, env=rproj.env)
    try:
        running = wait_until(lambda: _two_trials_under_way(rproj, log, "cc"), timeout=180,
                             what="two trials running, each with a committed epoch")
        t0 = time.monotonic()
        term.type(b"\x03")
        rc = term.wait(timeout=epoch_s + 60)
        took = time.monotonic() - t0
    finally:
        term.close()
    out = bytes(term.out)
    assert took < epoch_s + 10, f"exited {took:.1f} s after Ctrl+C"
    assert rc in (130, 128 + signal.SIGINT), (rc, out[-2000:])
    assert b"Traceback" not in out, out[-3000:].decode(errors="replace")
    assert b"tuitune resume cc" in out
    trials = {t["number"]: t for t in rproj.trials("cc")}
    for n in running:
        assert trials[n]["state"] == "interrupted" and "SIGINT" in (trials[n]["reason"] or ""), trials[n]
        logged = [e for m, e in ((int(x[1]), int(x[2])) for x in read_log(log) if x[0] == "C") if m == n]
        assert rproj.live_epochs("cc", n) == logged and logged == list(range(1, len(logged) + 1)), (n, logged)
        assert len(logged) < epochs
    wait_until(lambda: not any(pid_alive(p) for p in _worker_pids(log)), timeout=30, what="the workers to exit")
    rproj.cli("resume", "cc", "--headless", timeout=300).ok()
    assert [t["state"] for t in rproj.trials("cc")] == ["complete"] * 2
    for n in running:
        assert rproj.live_epochs("cc", n) == list(range(1, epochs + 1))
