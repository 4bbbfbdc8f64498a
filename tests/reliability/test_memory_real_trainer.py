"""Memory over a long session with the real trainer: 50 digits-mlp trials through the command line.

The resident memory (VmRSS in /proc/PID/status) of the child and of its worker processes (where the
trials train; ``pytest --workers N`` of them) is sampled every 50 ms while it runs, summed, and
attributed to the number of trials finished at that moment (samples after the last trial, during
the interpreter's exit, are left out). The largest RSS seen while trials 5-15
finish is the baseline (by then torch, the dataset, SQLite's page cache and the allocator's arenas
are warm); the largest RSS while trials 40-50 finish must stay within TOLERANCE_MB of it.

Why a tolerance at all: a trial builds a model of up to 3 x 512 units with its optimizer state (a
few MB at most), glibc's malloc keeps freed arenas mapped, torch's CPU allocator and SQLite's page
cache grow in steps, and the rich progress display keeps its task list. None of these grows per
trial; a leak of one model, optimizer or dataset copy per trial (>= 1 MB x 30 trials) would exceed
it, and so would a leak of the epoch rows or events kept per trial. The tolerance is per process
(the coordinator and each worker).
"""

from __future__ import annotations

import re
import time

import pytest

from tests.support.project import ReliabilityProject as Project
from tests.support.project import vm_rss_kb


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        from pathlib import Path

        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return out


def _tree_rss_kb(pid: int) -> tuple[int | None, int]:
    """The RSS of ``pid`` plus its children's (the workers and multiprocessing's resource tracker), and how
    many processes that is."""
    own = vm_rss_kb(pid)
    if own is None:
        return None, 0
    kids = [kb for kb in map(vm_rss_kb, _children(pid)) if kb is not None]
    return own + sum(kids), 1 + len(kids)

TRIALS = 50
TOLERANCE_MB = 25.0
DONE = re.compile(r"^trial\s+\d+ (complete|failed|pruned)", re.M)


@pytest.mark.slow
def test_fifty_real_trials_do_not_grow_memory(rproj: Project) -> None:
    bg = rproj.popen("run", "digits-mlp", "--strategy", "random", "--trials", TRIALS, "--max-epochs", 2,
                     "--seed", 3, "--session", "mem", "--device", "cpu", "--headless", tag="mem")
    samples: list[tuple[int, float]] = []  # (trials finished, RSS MB)
    processes = 1
    t0 = time.monotonic()
    try:
        while bg.proc.poll() is None:
            kb, n = _tree_rss_kb(bg.pid)
            done = len(DONE.findall(bg.out.read_text(errors="replace")))
            if kb is not None:
                samples.append((done, kb / 1024))
                processes = max(processes, n)
            assert time.monotonic() - t0 < 1500, "50 trials took more than 25 minutes"
            time.sleep(0.05)
    finally:
        bg.kill()
    r = bg.wait()
    assert r.rc == 0, r.err[-3000:]
    assert len(DONE.findall(r.out)) == TRIALS
    early = [mb for done, mb in samples if 5 <= done <= 15]
    # Up to the 50th trial's line: after it the process tears down (torch's exit adds ~100 MB for a
    # moment, with 4 trials as with 50), which is not growth over the session.
    late = [mb for done, mb in samples if 40 <= done < TRIALS]
    assert early and late, f"too few samples: {len(samples)}"
    growth = max(late) - max(early)
    buckets = {}
    for done, mb in samples:
        buckets[done // 5 * 5] = max(buckets.get(done // 5 * 5, 0.0), mb)
    profile = ", ".join(f"{k}-{k + 4}: {v:.0f}" for k, v in sorted(buckets.items()))
    summary = (f"RSS of {processes} processes ({rproj.workers} workers): early max {max(early):.1f} MB, "
               f"late max {max(late):.1f} MB, growth {growth:+.1f} MB; max MB by trials finished: {profile}")
    print(summary)
    assert growth < TOLERANCE_MB * processes, summary
