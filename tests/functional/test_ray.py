"""The Ray backend on 127.0.0.1: a local Ray instance, a throw-away HOME, trials as actors.

Skipped where Ray is not installed (``pip install "tuitune[ray]"``; the ``dev`` extra has it).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")
pytestmark = pytest.mark.ray

import tuitune as tt  # noqa: E402
from tuitune.core.records import TrialState  # noqa: E402
from tuitune.core.store.store import Store, files_dir  # noqa: E402

OBJECTIVES = '''
import os, signal, time
from pathlib import Path

def _line(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (text + "\\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)

def killed_once(config, trial):
    """Checkpoints a running sum each epoch; trial 3 kills its own actor process at epoch 3, once."""
    import torch
    side = Path(os.environ["TT_SIDE"])
    state = trial.restore()
    acc = torch.zeros((), dtype=torch.float64) if state is None else state["acc"]
    start = 0 if state is None else int(state["epoch"])
    _line(side / "starts", f"{trial.number} {os.getpid()} {start}")
    for e in trial.epochs():
        time.sleep(0.05)
        acc = acc + config["x"] + e
        trial.report(val_loss=float(acc) / (e * e), acc=float(acc))
        trial.checkpoint({"acc": acc, "epoch": e})
        if trial.number == 3 and e == 3 and not (side / "killed").exists():
            (side / "killed").write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
    print(f"trial {trial.number} done in pid {os.getpid()}")
'''


@pytest.fixture
def ray_env(tmp_path, monkeypatch):
    """A throw-away HOME (Ray keeps its token there) and a short folder for Ray's session files
    (its socket paths must stay under 108 characters, which pytest's tmp_path may not)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    ray_tmp = Path(tempfile.mkdtemp(prefix="ttray", dir="/tmp"))
    monkeypatch.setenv("TUITUNE_RAY_TMPDIR", str(ray_tmp))
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the actors' own folders
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    mod = f"tt_ray_objs_{os.getpid()}_{time.monotonic_ns()}"
    (tmp_path / f"{mod}.py").write_text(OBJECTIVES)
    monkeypatch.syspath_prepend(str(tmp_path))
    # Ray's workers import the objective's module by name: they need the folder on their path too.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    import importlib

    yield importlib.import_module(mod), ray_tmp
    shutil.rmtree(ray_tmp, ignore_errors=True)


def test_eight_trials_on_two_actors_survive_a_killed_actor(tmp_path, ray_env, monkeypatch, ray_leftovers):
    objs, ray_tmp = ray_env
    side = tmp_path / "side"
    side.mkdir()
    monkeypatch.setenv("TT_SIDE", str(side))
    db = tmp_path / "t.db"
    t0 = time.monotonic()
    s = tt.tune(
        objs.killed_once, tt.Space(x=tt.Float(0.0, 1.0)), trials=8, max_epochs=5, db=db, session="r",
        backend="ray", workers=2,
    )
    took = time.monotonic() - t0
    print(f"ray backend: 8 trials x 5 epochs on 2 actors, one actor killed: {took:.1f} s (the issue asks < 90 s)")
    import ray

    assert not ray.is_initialized()  # the local instance was shut down
    trials = s.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 8, [(t.number, t.state, t.reason) for t in trials]
    store = Store(db)
    assert store.count_epochs("r") == 40
    assert all([e["epoch"] for e in t.epochs] == [1, 2, 3, 4, 5] for t in trials)
    assert store.integrity_check() == ["ok"]
    # The killed trial ran again from its checkpoint (epoch 3 or, killed before it was sent, epoch 2),
    # on a new actor, and its sums are those of an uninterrupted run.
    killed = int((side / "killed").read_text())
    starts = [line.split() for line in (side / "starts").read_text().splitlines()]
    again = [(int(pid), int(start)) for number, pid, start in starts if number == "3"]
    assert len(again) == 2 and again[0] == (killed, 0) and again[1][0] != killed and again[1][1] in (2, 3), again
    t3 = next(t for t in trials if t.number == 3)
    x = t3.config["x"]
    assert [e["acc"] for e in t3.epochs] == pytest.approx([e * x + e * (e + 1) / 2 for e in range(1, 6)])
    # Where each trial ran: its node and device beside its worker.
    import socket

    assert {t.info["node"] for t in trials} == {socket.gethostname()}
    assert {t.info["device"] for t in trials} == {"cpu"} and {t.info["worker"] for t in trials} == {0, 1}
    assert store.session("r").info["placement"]["backend"] == "ray"
    # Logs and checkpoints travelled through the coordinator: logs kept, finished trials' checkpoints gone.
    logs = files_dir(db) / "logs" / "r"
    assert "trial 5 done" in (logs / "5.log").read_text()
    assert list((files_dir(db) / "checkpoints" / "r").glob("*")) == []
    assert ray_leftovers(str(ray_tmp)) == []


def test_ray_backend_errors_are_one_line(tmp_path, ray_env):
    from tuitune.core.errors import ObjectiveError
    from tuitune.core.run.workers import WorkerError

    objs, _ = ray_env
    space = tt.Space(x=tt.Float(0.0, 1.0))
    with pytest.raises(WorkerError, match="HOST:PORT"):
        tt.tune(objs.killed_once, space, trials=1, db=tmp_path / "t.db", session="a", backend="ray",
                ray_address="nowhere")
    with pytest.raises(WorkerError, match="unknown; use 'local' or 'ray'"):
        tt.tune(objs.killed_once, space, trials=1, db=tmp_path / "t.db", session="b", backend="slurm")
    import threading

    guard = threading.Lock()  # a lambda goes by value, but not what it captures when that cannot be pickled
    with pytest.raises(ObjectiveError, match="Ray actor: it captures 'guard'"):
        tt.tune(lambda c, t: guard and 0.0, space, trials=1, db=tmp_path / "t.db", session="c", backend="ray")
    with pytest.raises(WorkerError, match="gpus-per-trial"):
        tt.tune(objs.killed_once, space, trials=1, db=tmp_path / "t.db", session="d", backend="ray",
                gpus_per_trial=-1)


def test_a_node_without_the_dataset_is_named_in_the_one_line_error():
    """What an actor adds to a setup error (a DataError raised in a trial): the node's name."""
    import queue

    from tuitune.core.run.protocol import Failure, Log, Outcome, TrialSpec
    from tuitune.core.run.ray_backend import TrialActor

    actor = TrialActor.__new__(TrialActor)  # its parts, without Ray
    actor._node, actor._out = "gpu-node-7", queue.Queue()
    spec = TrialSpec(number=2, config={}, budget=1, committed=0, checkpoint="/nonexistent/2.pt", log="/nonexistent/2.log")
    outcome = Outcome(error=Failure("setup", "dataset 'mnist' is not in /data; put ... in /data/MNIST/raw", ""))
    outcome = actor._finish(spec, outcome)
    assert outcome.error.reason == (
        "on node gpu-node-7: dataset 'mnist' is not in /data; put ... in /data/MNIST/raw"
    )
    assert actor._out.get_nowait() == Log(2, b"")


@pytest.mark.slow
def test_a_lost_cluster_stops_the_session_cleanly_and_it_resumes(tmp_path, ray_env, monkeypatch):
    """A cluster started with 'ray start --head' (joined by address) is stopped mid-run: the run ends with
    one clear error, its trials interrupted, nothing committed lost; the session then finishes locally."""
    import subprocess
    import threading

    from tuitune.core.run.ray_backend import ClusterLostError

    objs, ray_tmp = ray_env
    side = tmp_path / "side"
    side.mkdir()
    (side / "killed").write_text("no kill in this test")
    monkeypatch.setenv("TT_SIDE", str(side))
    ray_bin = str(Path(sys.executable).with_name("ray"))
    port = "6391"
    head = [ray_bin, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
            f"--temp-dir={ray_tmp}", "--disable-usage-stats"]
    subprocess.run(head, check=True, capture_output=True, timeout=120)
    db = tmp_path / "t.db"
    stopped = threading.Event()

    def stop_when_running() -> None:
        store = Store(db)
        while not stopped.is_set():
            try:
                if store.count_epochs("lost") >= 3:
                    break
            except Exception:  # noqa: BLE001 - not created yet
                pass
            time.sleep(0.2)
        subprocess.run([ray_bin, "stop", "--force"], capture_output=True, timeout=120)

    threading.Thread(target=stop_when_running, daemon=True).start()
    space = tt.Space(x=tt.Float(0.0, 1.0))
    try:
        with pytest.raises(ClusterLostError, match=f"127.0.0.1:{port}"):
            tt.tune(objs.killed_once, space, trials=4, max_epochs=200, db=db, session="lost", backend="ray",
                    workers=2, ray_address=f"127.0.0.1:{port}")
    finally:
        stopped.set()
        subprocess.run([ray_bin, "stop", "--force"], capture_output=True, timeout=120)
    store = Store(db)
    before = {(t.number, e["epoch"]) for t in store.trials("lost") for e in t.epochs}
    assert store.session("lost").state == "failed" and not store.session("lost").alive
    assert not [t for t in store.trials("lost") if t.state == TrialState.RUNNING]
    s = tt.tune(objs.killed_once, space, trials=4, max_epochs=200, db=db, session="lost", workers=1)
    assert [t.state for t in s.trials] == [TrialState.COMPLETE] * 4
    assert before <= {(t.number, e["epoch"]) for t in s.trials for e in t.epochs}


def _listening(pids: set[int]) -> set[str]:
    """The addresses the processes ``pids`` listen on (TCP, IPv4 and IPv6), from /proc."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            continue
    out = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # LISTEN
                raw = bytes.fromhex(f[1].split(":")[0])
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # per-word little-endian
                import ipaddress

                ip = ipaddress.ip_address(words)
                mapped = getattr(ip, "ipv4_mapped", None)
                out.add(str(mapped or ip))
        assert width  # both tables are read
    return out


START_AND_WAIT = """
import sys
from pathlib import Path
from tuitune.core.run.ray_backend import RayPool
from tuitune.core.run.workers import objective_ref
from tuitune.core.run.workers import plan_slots
import {mod} as objs
pool = RayPool(objective_ref(objs.killed_once), plan_slots(None, 1), Path({logs!r}))
pool.start()
print("started", flush=True)
sys.stdin.readline()
pool.close()
import os, ray
print("closed", ray.is_initialized(), os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"), flush=True)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_local_ray_instance_listens_on_the_loopback_only(tmp_path, ray_env, ray_leftovers):
    # In a process of its own: Ray starts one local instance per process (a second, with another HOME, hangs).
    import subprocess

    mod, ray_tmp = ray_env
    code = START_AND_WAIT.format(mod=mod.__name__, logs=str(tmp_path / "logs"))
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdin is not None and p.stdout is not None
    try:
        assert p.stdout.readline().strip() == "started"
        pids = {p.pid} | {int(line.split()[0]) for line in ray_leftovers(str(ray_tmp))}
        addrs = _listening(pids)
        assert addrs, "no listening socket found: the check would pass vacuously"
        assert addrs <= {"127.0.0.1", "::1"}, f"a local Ray instance listens beyond the loopback: {sorted(addrs)}"
        p.stdin.write("\n")
        p.stdin.flush()
        # Shut down, and the process's own mode restored (a later --ray-address joins a cluster as before).
        assert p.stdout.readline().split() == ["closed", "False", "None"]
    finally:
        p.kill()
        p.wait(timeout=60)
