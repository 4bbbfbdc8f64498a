"""Objectives from anywhere run in worker processes: the README's example from a file, stdin and ``-c``
(default workers), a closure with ``workers=2``, a ``__main__`` without a file (a notebook's), and the one
line that names what an objective captures that cannot be sent."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest

import tuitune as tt
from tuitune.core.errors import ObjectiveError

# The README's API example (tuitune/README.md "Python API"), with a body that computes something.
EXAMPLE = '''
import os
import tuitune as tt

space = tt.Space(
    lr=tt.Float(1e-5, 1e-1, scale="log"),
    momentum=tt.Float(0.5, 0.999, scale="log1m"),
    units=tt.Int(32, 512, step=32),
    activation=tt.Choice(["relu", "tanh"]),
)

def objective(config: dict, trial: tt.Trial) -> float | None:
    state = trial.restore()
    for epoch in trial.epochs():
        trial.report(val_loss=config["lr"] * config["units"] / epoch, pid=os.getpid())
        trial.checkpoint({"epoch": epoch})
    return None

if __name__ == "__main__":
    session = tt.tune(objective, space, strategy="random", trials=3, max_epochs=2,
                      metric="val_loss", direction="minimize", seed=0, db="runs.db", session="demo")
    pids = {int(e["pid"]) for t in session.trials for e in t.epochs}
    print("STATES", sorted(t.state.value for t in session.trials))
    print("IN_WORKER", os.getpid() not in pids and len(pids) == 1)
'''


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}


@pytest.mark.parametrize("how", ["file", "stdin", "-c"])
def test_the_readme_example_runs_in_a_worker_from_a_file_stdin_and_dash_c(tmp_path, how):
    (tmp_path / "example.py").write_text(EXAMPLE)
    argv = {"file": [sys.executable, "example.py"], "stdin": [sys.executable, "-"],
            "-c": [sys.executable, "-c", EXAMPLE]}[how]
    r = subprocess.run(argv, input=EXAMPLE if how == "stdin" else None, cwd=tmp_path, env=_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "STATES ['complete', 'complete', 'complete']" in r.stdout
    assert "IN_WORKER True" in r.stdout, r.stdout
    assert "Traceback" not in r.stderr and "Warning" not in r.stderr, r.stderr
    logs = "".join(p.read_text() for p in tmp_path.rglob("*.log"))
    assert "Traceback" not in logs and "FileNotFoundError" not in logs


def test_a_closure_runs_in_two_workers(tmp_path):
    offset = 0.25  # captured: travels with the function

    def objective(config, trial):
        for e in trial.epochs():
            trial.report(val_loss=config["x"] + offset / e, pid=os.getpid())

    s = tt.tune(objective, tt.Space(x=tt.Float(0.0, 1.0)), trials=4, max_epochs=2, db=tmp_path / "t.db",
                session="cl", workers=2)
    assert [t.state.value for t in s.trials] == ["complete"] * 4
    pids = {int(e["pid"]) for t in s.trials for e in t.epochs}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert all(t.epochs[-1]["val_loss"] == pytest.approx(t.config["x"] + offset / 2) for t in s.trials)


def test_a_lambda_runs_in_a_worker(tmp_path):
    s = tt.tune(lambda c, t: c["x"] * 2, tt.Space(x=tt.Float(0.0, 1.0)), trials=2, db=tmp_path / "t.db",
                session="la", workers=1)
    assert all(t.state.value == "complete" and t.value == pytest.approx(2 * t.config["x"]) for t in s.trials)


def test_a_main_without_a_file_like_a_notebook_runs_in_a_worker(tmp_path, monkeypatch):
    """A Jupyter kernel's ``__main__`` has no ``__file__``: its functions go by value, nothing re-runs it."""
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = __builtins__
    exec(compile(EXAMPLE.replace('if __name__ == "__main__":', "if False:"), "<ipython-input-1>", "exec"),
         main.__dict__)
    monkeypatch.setitem(sys.modules, "__main__", main)
    s = tt.tune(main.objective, main.space, trials=2, max_epochs=2, db=tmp_path / "t.db", session="nb", workers=1)
    pids = {int(e["pid"]) for t in s.trials for e in t.epochs}
    assert [t.state.value for t in s.trials] == ["complete"] * 2 and os.getpid() not in pids


def test_what_a_closure_captures_that_cannot_be_sent_is_named(tmp_path):
    guard = threading.Lock()

    def objective(config, trial):
        with guard:
            return config["x"]

    with pytest.raises(ObjectiveError) as info:
        tt.tune(objective, tt.Space(x=tt.Float(0.0, 1.0)), trials=2, db=tmp_path / "t.db", session="lk", workers=2)
    msg = str(info.value)
    assert "'guard'" in msg and "_thread.lock" in msg and "workers=0" in msg and "\n" not in msg
    with pytest.warns(UserWarning, match="'guard'.*runs in this process|runs in this process.*'guard'"):
        s = tt.tune(objective, tt.Space(x=tt.Float(0.0, 1.0)), trials=2, db=tmp_path / "t.db", session="lk2")
    assert [t.state.value for t in s.trials] == ["complete"] * 2


def test_the_readme_example_runs_in_a_worker_from_a_jupyter_kernel(tmp_path):
    """Cells of a real IPython kernel (ipykernel, started as Jupyter starts it): a notebook's functions."""
    pytest.importorskip("ipykernel")
    manager = pytest.importorskip("jupyter_client.manager")
    km, kc = manager.start_new_kernel(kernel_name="python3", cwd=str(tmp_path), env=_env())
    out: list[str] = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("\n".join(msg["content"]["traceback"]))

    try:
        kc.execute_interactive(EXAMPLE, output_hook=hook, timeout=240)  # pasted into a cell as it is
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    text = "".join(out)
    assert "STATES ['complete', 'complete', 'complete']" in text and "IN_WORKER True" in text, text
    assert "Traceback" not in text and "Warning" not in text, text
