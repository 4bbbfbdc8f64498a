"""Objectives that misbehave, through the real command line (docs/DESIGN.md 3: failed trials).

Each failing trial first reports an epoch *better* than any good trial's, so a failed trial that
slipped into the ranking would be the best one: it must never be best and never be exported.
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.support.project import ReliabilityProject as Project
from tests.support.project import read_log, test_workers, wait_until

WORKER_COUNTS = sorted({test_workers(), 2})  # the suite's (pytest --workers N) and two

# mode -> a piece of the stored reason
REASONS = {
    "exception": "RuntimeError: synthetic crash in epoch 2",
    "systemexit": "SystemExit: 3",
    "nan": "val_loss is nan at epoch 2",
    "inf": "val_loss is inf at epoch 2",
    "oom": "out of memory",
    "thread": "error in thread 'rel-loader': ValueError: loader worker crashed",
    "return_nan": "the objective returned nan",
}
# Never more than two failures in a row: with --max-failures 3 the session runs to its end.
PLAN = ["exception", "systemexit", "good", "nan", "inf", "good", "oom", "thread", "good", "return_nan"]


def _strict_json(text: str):
    def refuse(const):
        raise ValueError(f"{const} is not JSON (RFC 8259)")

    return json.loads(text, parse_constant=refuse)


def test_each_kind_of_failure_is_stored_and_the_session_goes_on(rproj: Project) -> None:
    toml = rproj.toml("mis.toml", objective="_rel_objectives:misbehave", max_epochs=3,
                      defaults={"plan": ",".join(PLAN)})
    r = rproj.cli("run", toml.name, "--trials", len(PLAN), "--session", "mis", "--max-failures", 3, "--headless")
    # The objective's own thread's traceback is stored with its trial, not printed over the display.
    r.ok()
    assert "Traceback" not in r.err
    doc = rproj.show("mis")
    assert doc["session"]["state"] == "finished"
    trials = doc["trials"]
    assert [t["number"] for t in trials] == list(range(len(PLAN)))
    good = []
    for t, mode in zip(trials, PLAN):
        if mode == "good":
            assert t["state"] == "complete", t
            assert t["value"] is not None and t["value"] >= 1.0
            good.append(t)
            continue
        assert t["state"] == "failed", (mode, t)
        assert REASONS[mode] in (t["error"] or ""), (mode, t["error"])
        assert t["reason"] == t["error"] and t["value"] is None
        assert t["epochs"][0]["val_loss"] == 0.0  # its better-looking epoch is kept, but not ranked
    # tracebacks are stored for the ones that raised
    rows = dict(rproj.sql(
        "SELECT t.number, t.traceback FROM trials t JOIN sessions s ON s.id = t.session_id WHERE s.name = 'mis'"))
    for n, mode in enumerate(PLAN):
        if mode in ("exception", "systemexit", "oom"):
            assert rows[n] and "Traceback" in rows[n], (mode, rows[n])
        if mode == "thread":  # the thread's own frames, not the runner's
            assert rows[n] and "loader worker crashed" in rows[n], (mode, rows[n])
    assert doc["session"]["best"] == min(t["value"] for t in good)
    out = rproj.root / "best.json"
    rproj.cli("export", "mis", "-o", out).ok()
    exported = json.loads(out.read_text())
    best = min(good, key=lambda t: (t["value"], t["number"]))
    assert (exported["trial"], exported["value"], exported["config"]) == (best["number"], best["value"], best["config"])
    # the leaderboard of 'show' ranks only complete trials
    text = rproj.cli("show", "mis").ok().out
    assert "failed" in text and "out of memory" in text


def test_show_json_of_a_nan_trial_is_strict_json(rproj: Project) -> None:
    toml = rproj.toml("nan.toml", objective="_rel_objectives:misbehave", max_epochs=2, defaults={"plan": "nan,good"})
    rproj.cli("run", toml.name, "--trials", 2, "--session", "nn", "--headless").ok()
    r = rproj.cli("show", "nn", "--json").ok()
    _strict_json(r.out)


@pytest.mark.parametrize("workers", WORKER_COUNTS, ids=lambda n: f"{n}-workers")
def test_too_many_failures_in_a_row_stop_with_a_message_and_nothing_exports(rproj: Project, workers: int) -> None:
    """exception, nan, oom in a row stop the run. With two workers, trials 0 and 1 fail side by side, then
    trials 2 (oom) and 3 (good) run side by side, trial 3 completing only after trial 2 failed: the run
    still ends failed (a trial started before the third failure cannot undo it) and trial 4 never starts."""
    log = rproj.root / "ff.log"
    defaults = {"plan": "exception,nan,oom,good,good", "log": str(log)}
    if workers > 1:
        defaults.update(wait_begun="0:1", wait_failed="3:2", db=str(rproj.db))
    toml = rproj.toml("fail.toml", objective="_rel_objectives:misbehave", max_epochs=3, defaults=defaults)
    r = rproj.cli("run", toml.name, "--trials", 5, "--session", "ff", "--max-failures", 3, "--headless",
                  "--workers", workers)
    assert r.rc == 1, (r.rc, r.err)
    assert "Traceback" not in r.err + r.out
    assert "3 trials in a row failed" in r.err and "out of memory" in r.err and "tuitune resume ff" in r.err
    doc = rproj.show("ff")
    states = [t["state"] for t in doc["trials"]]
    assert doc["session"]["state"] == "failed"
    assert not any(x[1] == "4" for x in read_log(log)), "a trial started after the third failure in a row"
    if workers == 1:
        assert states == ["failed"] * 3  # the 4th (good) trial never started
        assert doc["session"]["best"] is None
        out = rproj.root / "ff.json"
        e = rproj.cli("export", "ff", "-o", out)
        assert e.rc == 2 and "no complete trial" in e.err and "Traceback" not in e.err
        assert not out.exists()
    else:
        assert states == ["failed"] * 3 + ["complete"]  # trial 3 ran to its end, after the third failure
        assert doc["session"]["best"] == doc["trials"][3]["value"]


def test_trial_timeout_fails_a_hung_trial_and_the_session_goes_on(rproj: Project) -> None:
    toml = rproj.toml("hang.toml", objective="_rel_objectives:misbehave", max_epochs=3,
                      defaults={"plan": "hang,good"})
    t0 = time.monotonic()
    r = rproj.cli("run", toml.name, "--trials", 2, "--session", "hh", "--trial-timeout", 3, "--headless")
    took = time.monotonic() - t0
    r.ok()
    assert took < 120  # the hang is 600 s; the watchdog cuts it at 3 s + 1 s
    doc = rproj.show("hh")
    t0_, t1 = doc["trials"]
    assert t0_["state"] == "failed" and "timed out after 3 s" in t0_["error"]
    assert [e["epoch"] for e in t0_["epochs"]] == [1]
    assert t1["state"] == "complete"


def test_sigterm_cuts_off_a_hung_epoch_after_the_grace(rproj: Project) -> None:
    log = rproj.root / "hang.log"
    toml = rproj.toml("hang1.toml", objective="_rel_objectives:misbehave", max_epochs=3,
                      defaults={"plan": "hang", "log": str(log), "hang_marker": str(rproj.root / "hung.once")})
    bg = rproj.popen("run", toml.name, "--trials", 1, "--session", "ht", "--headless", tag="ht")
    try:
        wait_until(lambda: any(x[0] == "H" for x in read_log(log)), timeout=180, what="the hung epoch")
        time.sleep(0.2)  # inside time.sleep(600)
        t0 = time.monotonic()
        bg.proc.send_signal(signal.SIGTERM)
        r = bg.wait(timeout=120)
        took = time.monotonic() - t0
    finally:
        bg.kill()
    assert took < 10 + 20, f"took {took:.1f} s to exit after SIGTERM (grace 10 s)"
    assert took >= 9, "the epoch was cut off before its grace"
    assert r.rc in (130, 128 + signal.SIGTERM), (r.rc, r.err)
    assert "Traceback" not in r.err + r.out
    [t] = rproj.trials("ht")
    assert t["state"] == "interrupted" and "SIGTERM" in t["reason"] and "cut off" in t["reason"], t
    assert rproj.live_epochs("ht", 0) == [1]
    rproj.cli("resume", "ht", "--headless").ok()  # the marker makes the re-run not hang
    [t] = rproj.trials("ht")
    assert t["state"] == "complete"
    assert rproj.live_epochs("ht", 0) == [1, 2, 3]
