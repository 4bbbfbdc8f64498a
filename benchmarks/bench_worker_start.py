"""Measures where a short session's time goes with a worker process, against training in this process.

Each run is a fresh subprocess and a fresh database: ``tuitune run PRESET --trials N --max-epochs E --devices
DEV --workers 1 --headless`` (``worker``) or the same with ``--in-process`` (``in-process``), timed from start
to exit, the two alternating (the order swaps from rep to rep). For each run it prints:

- wall: start to exit (the interpreter, the coordinator, the worker and every commit included);
- training: the sum of the epochs' own times (``epoch_seconds`` of each committed row, from the database);
- ratio: wall / training (issue 20's goal on a GPU: within 1.2x for a short session);
- first: the time from start to the first committed epoch (its row's commit time in the database);
- the worker's start phases, as it wrote them to its log (``worker-0.log``): coordinator (the command's
  start to the worker's spawn), spawn (the process's start to its first line), import (the objective's code:
  torch), device (its initialisation) beside data (the dataset read and put on the device), warm step (a few
  training steps: what a process pays on its first), ready (spawn to ``Ready``), and first job (its arrival to
  its first committed epoch).

With ``--tui`` it measures the TUI instead (Pilot, in this process): the new-session form filled in, then
Start, timed from the key to the first committed epoch and to the session's end, two ways alternating:
``warm`` (the form's warm workers, Start pressed once they said they were ready: the user read the form
meanwhile) and ``cold`` (no warm workers: the Runner starts its own at Start, as before them).

    python benchmarks/bench_worker_start.py                  # digits-mlp, 3 trials x 2 epochs, cpu, 3 reps
    python benchmarks/bench_worker_start.py --tui            # the form's warm workers against none
    python benchmarks/bench_worker_start.py --devices cuda --reps 5
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHASE = re.compile(r"(\w[\w ]*?) (\d+\.\d+) s")


def phases(log: Path) -> dict[str, float]:
    """The phases the worker wrote to its log (its ``--- worker started`` line), by name."""
    if not log.is_file():
        return {}
    out: dict[str, float] = {}
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("--- worker ready"):
            out.update({name.strip(): float(v) for name, v in PHASE.findall(line.split(":", 1)[1])})
        elif line.startswith("--- first epoch committed"):
            found = dict((name.strip(), float(v)) for name, v in PHASE.findall(line.split(":", 1)[1]))
            out["first job"] = found.get("first job", 0.0)
            out["spawn to epoch"] = found.get("start", 0.0)
    return out


def run_once(args: argparse.Namespace, way: str, tmp: Path, i: int) -> dict:
    db = tmp / f"{way}-{i}.db"
    where = ["--in-process"] if way == "in-process" else ["--workers", "1"]
    cmd = [sys.executable, "-m", "tuitune", "--db", str(db), "run", args.preset, "--trials", str(args.trials),
           "--max-epochs", str(args.epochs), "--devices", args.devices, "--headless", "--seed", str(args.seed),
           "--session", "b", "--fuse", "off", *where]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t_start = time.time()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{way} run failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT e.time, e.metrics FROM epochs e JOIN trials t ON t.id = e.trial_id JOIN sessions s "
        "ON s.id = t.session_id WHERE s.name = 'b' AND e.superseded = 0"
    ).fetchall()
    con.close()
    training = sum(float(json.loads(m).get("epoch_seconds", 0.0)) for _, m in rows)
    first = min(t for t, _ in rows) - t_start
    log = Path(str(db) + ".d") / "logs" / "b" / "worker-0.log"
    ph = phases(log)
    if "spawn to epoch" in ph:  # the coordinator's own start: the command's start to the worker's spawn
        ph = {"coordinator": first - ph.pop("spawn to epoch"), **ph}
    return {"way": way, "wall": wall, "training": training, "ratio": wall / training, "first": first,
            "epochs": len(rows), "phases": ph}


def tui_once(args: argparse.Namespace, way: str, tmp: Path, i: int) -> dict:
    """One session started from the TUI's form: Start to the first committed epoch and to the end."""
    import asyncio

    sys.path.insert(0, str(ROOT))
    from textual.widgets import Input, Select

    from tuitune.core.store.store import Store, files_dir
    from tuitune.ui import warm as warm_module
    from tuitune.ui.app import TuituneApp
    from tuitune.ui.screens.dashboard import DashboardScreen
    from tuitune.ui.screens.new_session import NewSessionScreen

    store = Store(tmp / f"tui-{way}-{i}.db")
    name = f"s{i}"

    async def until(pilot, cond, limit=300.0):
        end = time.monotonic() + limit
        while not cond():
            if time.monotonic() > end:
                sys.exit(f"{way}: gave up waiting")
            await pilot.pause(0.01)

    def first_epoch() -> bool:
        return store.session_exists(name) and any(t.last_epoch >= 1 for t in store.trials(name))

    async def go() -> dict:
        app = TuituneApp(store, bundled_presets=True, probe_devices=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("n")
            await until(pilot, lambda: isinstance(app.screen, NewSessionScreen))
            form = app.screen
            form.query_one("#fuse", Select).value = "off"
            form.query_one("#device", Select).value = "cpu" if args.devices == "cpu" else "auto"  # auto: the GPU
            for key, value in (("trials", args.trials), ("max-epochs", args.epochs), ("seed", args.seed),
                               ("session-name", name)):
                form.query_one(f"#{key}", Input).value = str(value)
            if way == "warm":
                def ready() -> bool:
                    warm = form.warm._warm
                    log = warm.log_dir / "worker-0.log" if warm is not None else None
                    return bool(log and log.is_file() and "--- worker ready" in log.read_text())
                await until(pilot, ready)
            t0 = time.perf_counter()
            await pilot.press("ctrl+s")
            await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
            await until(pilot, first_epoch)
            first = time.perf_counter() - t0
            await until(pilot, lambda: app.run_control.session == name and not app.run_control.running)
            wall = time.perf_counter() - t0
        con = sqlite3.connect(store.path)
        rows = con.execute("SELECT e.metrics FROM epochs e JOIN trials t ON t.id = e.trial_id JOIN sessions s "
                           "ON s.id = t.session_id WHERE s.name = ? AND e.superseded = 0", (name,)).fetchall()
        con.close()
        training = sum(float(json.loads(m).get("epoch_seconds", 0.0)) for (m,) in rows)
        log = files_dir(store.path) / "logs" / name / "worker-0.log"
        return {"way": way, "wall": wall, "training": training, "ratio": wall / training, "first": first,
                "epochs": len(rows), "phases": phases(log)}

    saved = warm_module.WarmWorkers.want
    if way == "cold":
        warm_module.WarmWorkers.want = lambda self, choice: None  # type: ignore[method-assign]
    try:
        return asyncio.run(go())
    finally:
        warm_module.WarmWorkers.want = saved  # type: ignore[method-assign]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="digits-mlp")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--devices", default="cpu")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tui", action="store_true", help="the TUI's form: warm workers against none (Start to epochs)")
    args = ap.parse_args()
    if args.tui and args.preset != "digits-mlp":
        sys.exit("--tui measures the form's default preset, digits-mlp; leave --preset out")
    ways = ["warm", "cold"] if args.tui else ["worker", "in-process"]
    once = tui_once if args.tui else run_once
    print(f"# {'TUI: Start to ' if args.tui else ''}{args.preset}, {args.trials} trials x {args.epochs} epochs, "
          f"--devices {args.devices}, --fuse off; {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    out: list[dict] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for i in range(args.reps):
            for way in ways if i % 2 == 0 else ways[::-1]:
                r = once(args, way, tmp, i)
                out.append(r)
                ph = ", ".join(f"{k} {v:.2f}" for k, v in r["phases"].items())
                print(f"{way:>10}  wall {r['wall']:6.2f} s  training {r['training']:5.2f} s  ratio {r['ratio']:5.2f}  "
                      f"first epoch {r['first']:5.2f} s  ({r['epochs']} epochs){'  phases: ' + ph if ph else ''}",
                      flush=True)
    print("# medians")
    for way in ways:
        rs = [r for r in out if r["way"] == way]
        med = {k: statistics.median(r[k] for r in rs) for k in ("wall", "training", "ratio", "first")}
        names = dict.fromkeys(k for r in rs for k in r["phases"])
        ph = ", ".join(f"{k} {statistics.median(r['phases'].get(k, 0.0) for r in rs):.2f}" for k in names)
        print(f"{way:>10}  wall {med['wall']:6.2f} s  training {med['training']:5.2f} s  ratio {med['ratio']:5.2f}  "
              f"first epoch {med['first']:5.2f} s{'  phases: ' + ph if ph else ''}")


if __name__ == "__main__":
    main()
