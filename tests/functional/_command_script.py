"""A training script as a user writes it, run per trial by tt.Command (tests/functional/test_command.py).

Restores ``{"epoch", "acc"}`` from tuitune.checkpoint_dir(); each epoch ``acc += x + epoch``, reported with
tuitune.report (or printed as a JSON line with --stdout), then checkpointed. Log lines as
tests/support/hyperband_kill.py reads them: ``S trial pid restored`` and ``C trial epoch pid acc``.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import tuitune

p = argparse.ArgumentParser()
p.add_argument("--x", type=float, required=True)
p.add_argument("--epochs", type=int, required=True)
p.add_argument("--log", default="")
p.add_argument("--epoch-s", type=float, default=0.0)
p.add_argument("--stdout", action="store_true", help="report by printing JSON lines")
p.add_argument("--fail-above", type=float, default=None, help="exit 3 when x is above this")
p.add_argument("--stubborn", action="store_true", help="ignore 'stop' and start a child that sleeps")
a = p.parse_args()


def log(line):
    if a.log:
        with open(a.log, "a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


trial = os.environ.get("TUITUNE_TRIAL", "-")
if a.stubborn:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    log(f"CHILD {child.pid}")
assert json.loads(os.environ["TUITUNE_CONFIG"])["x"] == a.x
ckpt = tuitune.checkpoint_dir() / "state.json"
state = json.loads(ckpt.read_text()) if ckpt.exists() else {"epoch": 0, "acc": 0.0}
start, acc = state["epoch"], state["acc"]
log(f"S {trial} {os.getpid()} {start}")
epoch = start
while a.stubborn or epoch < a.epochs:
    epoch += 1
    time.sleep(a.epoch_s)
    acc += a.x + epoch
    metrics = {"epoch": epoch, "val_loss": acc / (epoch * epoch) + (a.x - 0.3) ** 2, "acc": acc, "pid": os.getpid()}
    if a.stdout:
        print(json.dumps({"tuitune": metrics}), flush=True)
        answer = "continue"
    else:
        answer = tuitune.report(**metrics)
        log(f"C {trial} {epoch} {os.getpid()} {acc!r}")
    tmp = ckpt.with_suffix(".tmp")
    tmp.write_text(json.dumps({"epoch": epoch, "acc": acc}))
    os.replace(tmp, ckpt)
    if answer == "stop" and not a.stubborn:
        break
if a.fail_above is not None and a.x > a.fail_above:
    print(f"boom: x={a.x} is above {a.fail_above}", file=sys.stderr)
    sys.exit(3)
