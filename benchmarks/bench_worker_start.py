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

    python benchmarks/bench_worker_start.py                  # digits-mlp, 3 trials x 2 epochs, cpu, 3 reps
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="digits-mlp")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--devices", default="cpu")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ways = ["worker", "in-process"]
    print(f"# {args.preset}, {args.trials} trials x {args.epochs} epochs, --devices {args.devices}, --fuse off; "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    out: list[dict] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for i in range(args.reps):
            for way in ways if i % 2 == 0 else ways[::-1]:
                r = run_once(args, way, tmp, i)
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
