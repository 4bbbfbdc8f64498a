"""Provides the Ray backend: the session's trials run as Ray actors, the coordinator stays here.

``RayPool`` has the interface of ``WorkerPool`` (workers.py), so the Runner does not know which one it
drives: the strategy, trial numbers, commands, events and the one SQLite writer stay in this process,
on the machine the user is logged into. Each worker slot is one Ray actor that runs the very trial loop
of a local worker (``workers.serve_trials``) and holds the same conversation (ready / between / report /
supersede / done), so ``report()`` returns once the coordinator has committed the row.

The channel. Each actor keeps two in-process queues; the coordinator always has one ``take()`` call
pending per actor (it returns the actor's next message) and answers with ``give(reply)``. ``ray.wait``
over the pending calls multiplexes every actor as ``multiprocessing.connection.wait`` does for pipes,
and a pending call of an actor that died (its process killed, its node gone) raises
``RayActorError``: that is the death sentinel, with no polling. ``ray.util.queue.Queue`` was the other
choice: it is itself an actor, so two per slot would start two more processes per trial slot (four on
a 2-core machine for two slots) and add a hop per message, and a dead trial actor would still need a
watcher of its own. Measured (benchmarks/bench_ray_channel.py, 2 busy cores, Ray 2.60): a report's round
trip takes 1.9 ms through actor methods against 5.9 ms through a pair of Queue actors (3.1x).

Three messages stay between the pool and its actors (the Runner never sees them):

    Checkpoint(trial, data) -> Ok()   trial.checkpoint() wrote a file on the actor's node: the pool
                                      writes it atomically into the session's checkpoint folder
    Log(trial, data)                  the trial's printed output, at its end, for 'show --log N'
    Bye()                             the actor removed its folder and quits

A job sent to an actor carries the bytes of its trials' checkpoints (if any), which the actor writes in a
folder of its own: a resumed or promoted trial may land on another node than the one that wrote it.
Checkpoints are still read with ``weights_only=True`` (``trial.load_checkpoint``).

A lost actor (or node) is replaced and its trial is re-queued once as interrupted (``requeue_lost``):
it runs again from its last checkpoint and nothing committed is lost. A lost connection to the
cluster raises ``ClusterLostError``: the Runner ends the run, its trials interrupted, and the session
resumes later. Ray is imported only when a RayPool starts (``pip install "tuitune[ray]"``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tuitune.core.errors import TuituneError, first_line
from tuitune.core.run.protocol import Bye, Checkpoint, Died, Job, Log, Ok, Outcome, Pool, Quit, Ready, RunJob, TrialSpec
from tuitune.core.run.workers import (
    ChannelHost,
    ObjectiveRef,
    Slot,
    Worker,
    WorkerError,
    install_excepthook,
    load_objective,
    pickled_objective,
    serve_trials,
)

log = logging.getLogger(__name__)

RAY_RANGE = ">=2.40,<3"  # the versions the suite was run with (2.60); pyproject's extra says the same
LOG_LIMIT = 4 << 20  # a trial's output shipped back: its last 4 MiB
START_TIMEOUT_S = 120.0  # an actor Ray cannot place in this long: no node has what it asks for
PROBE_EVERY_S = 3.0  # how often the coordinator checks that the cluster's head (GCS) answers
LOST_AFTER_S = 15.0  # no answer this long: the cluster is lost (Ray itself ends the driver after 60 s)


class ClusterLostError(TuituneError):
    """The coordinator lost its connection to the Ray cluster."""


def ray_module() -> Any:
    """Ray, or one clear line saying how to get it."""
    try:
        import ray
    except ImportError:
        raise WorkerError(
            "--backend ray needs Ray: pip install \"tuitune[ray]\" (on this machine and on every node)"
        ) from None
    return ray


def check_address(address: str | None) -> str | None:
    """``HOST:PORT``, ``auto``, ``ray://HOST:PORT`` or None (a local instance on 127.0.0.1)."""
    if address is None:
        return None
    a = address.strip()
    if a == "auto" or a.startswith("ray://"):
        return a
    host, _, port = a.rpartition(":")
    if not host or not port.isdigit():
        raise WorkerError(f"--ray-address {address!r}: give HOST:PORT of the head node (ray start --head prints it) or auto")
    return a


def check_gpus(gpus: float | None) -> float | None:
    if gpus is None:
        return None
    if isinstance(gpus, bool) or not isinstance(gpus, (int, float)) or gpus < 0 or (gpus > 1 and gpus != int(gpus)):
        raise WorkerError(f"--gpus-per-trial {gpus!r}: give 0, a fraction such as 0.25 (trials share a GPU), or whole GPUs")
    return float(gpus)


# ---------------------------------------------------------------------------- the actor's side


class _RayHost(ChannelHost):
    """A Trial's host in an actor: checkpoints go to the coordinator, which keeps the session's folder."""

    def _checkpointed(self, trial: Any, path: Path) -> None:
        self._ask(Checkpoint(trial.number, path.read_bytes()))


class TrialActor:
    """One worker slot on a Ray node: the objective, loaded once, and a thread that serves trials."""

    def __init__(self, ref_blob: bytes, label: str, coordinator: int) -> None:
        # The pid of the process that owns the session (the coordinator, on the machine the user is on).
        os.environ["TUITUNE_COORDINATOR_PID"] = str(coordinator)
        self._out: queue.Queue[Any] = queue.Queue()
        self._in: queue.Queue[Any] = queue.Queue()
        self._node = socket.gethostname()
        from tuitune.core.store.safefs import private_dir

        # Per user, 0700, checked to be ours: another user's pre-made folder could swap the actor folders
        # and read trial logs and checkpoints.
        base = private_dir(Path(tempfile.gettempdir()) / f"tuitune-ray-{os.getuid()}")
        for old in base.glob("*-*"):  # folders of actors that were killed (their pid is gone)
            pid = old.name.split("-", 1)[0]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists() and sys.platform.startswith("linux"):
                shutil.rmtree(old, ignore_errors=True)
        self._dir = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-{label}-", dir=base))
        threading.Thread(target=self._main, args=(ref_blob,), name="tuitune-trials", daemon=True).start()

    # called by the coordinator (the actor runs them on threads of its own)
    def take(self) -> Any:
        return self._out.get()

    def give(self, msg: Any) -> None:
        self._in.put(msg)

    def _main(self, ref_blob: bytes) -> None:
        import ray

        from tuitune.core.run.workers import _redirect

        _redirect(self._dir / "actor.log")
        gpus = [str(g) for g in ray.get_gpu_ids()]
        device, local = ("cuda:" + gpus[0], "cuda") if gpus else ("cpu", "cpu")
        try:
            cpus = int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1) or 1)
        except Exception:  # noqa: BLE001 - older Ray
            cpus = 1
        cpus = max(1, cpus)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(cpus)
        host = _RayHost(self._out.put, self._in.get)
        install_excepthook(host)
        objective = load_objective(
            ref_blob, local, cpus, self._out.put, where=f"on node {self._node}",
            facts={"node": self._node, "device": device},
        )
        if objective is None:
            return
        serve_trials(objective, host, self._in.get, self._out.put, prepare=self._prepare, finish=self._finish)
        shutil.rmtree(self._dir, ignore_errors=True)
        self._out.put(Bye())

    def _prepare(self, msg: RunJob) -> Job:
        specs = []
        for spec, blob in zip(msg.job.specs, msg.blobs):
            ckpt = self._dir / f"{spec.number}.pt"
            if blob is None:
                ckpt.unlink(missing_ok=True)
            else:
                tmp = ckpt.with_name(f".{ckpt.name}.tmp")
                tmp.write_bytes(blob)
                os.replace(tmp, ckpt)
            specs.append(replace(spec, checkpoint=str(ckpt), log=str(self._dir / f"{spec.number}.log")))
        return Job(tuple(specs))

    def _finish(self, spec: TrialSpec, outcome: Outcome) -> Outcome:
        err = outcome.error
        if err is not None and err.kind == "setup" and self._node not in err.reason:
            # a dataset missing on this node, say
            outcome = replace(outcome, error=replace(err, reason=f"on node {self._node}: {err.reason}"))
        sys.stdout.flush()
        sys.stderr.flush()
        path = Path(spec.log)
        try:
            size = path.stat().st_size
            with open(path, "rb") as f:
                f.seek(max(0, size - LOG_LIMIT))
                data = f.read()
        except OSError:
            data = b""
        self._out.put(Log(spec.number, data))
        with contextlib.suppress(OSError):
            os.truncate(path, 0)
        Path(spec.checkpoint).unlink(missing_ok=True)
        return outcome


# ---------------------------------------------------------------------------- the coordinator's side


def _reap(driver: int) -> None:
    """Runs in a process of its own: when the coordinator dies (kill -9), kills what its local Ray left.

    Ray ends its own servers with the driver, but not the agents its raylet started; this remembers the
    coordinator's descendants while it lives and kills those still there once it is gone.
    """
    try:
        os.setsid()
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    seen: dict[int, str] = {}
    me = os.getpid()

    def children() -> dict[int, int]:
        out: dict[int, int] = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    out[int(d)] = int(fields[1])
                except (OSError, IndexError, ValueError):
                    pass
        return out

    def start_time(pid: int) -> str:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[19]
        except (OSError, IndexError):
            return ""

    while os.path.exists(f"/proc/{driver}") and start_time(driver) not in ("",):
        parents = children()
        family = {driver}
        changed = True
        while changed:
            changed = False
            for pid, ppid in parents.items():
                if ppid in family and pid not in family and pid != me:
                    family.add(pid)
                    changed = True
        for pid in family - {driver}:
            seen.setdefault(pid, start_time(pid))
        with open(f"/proc/{driver}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.5)
    for pid, started in seen.items():
        if started and start_time(pid) == started:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


RAY_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@contextlib.contextmanager
def _loopback_only() -> Any:
    """Keeps a local Ray instance on 127.0.0.1 while it starts. On Linux Ray replaces a node address of
    127.0.0.1 by the machine's own, and its servers (GCS, raylet, workers, runtime-env agent) then listen
    on every interface; in its single-machine mode (macOS's default, ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``)
    they all listen on the loopback. The processes it starts inherit the mode; this process gets it back
    afterwards, so a later ``--ray-address`` joins a real cluster as before."""
    consts: Any = sys.modules.get("ray._private.ray_constants")
    before_env = os.environ.get(RAY_CLUSTER_ENV)
    before = getattr(consts, "ENABLE_RAY_CLUSTER", None)
    os.environ[RAY_CLUSTER_ENV] = "0"
    if consts is not None:
        consts.ENABLE_RAY_CLUSTER = False  # read when ray.init resolves the node's address
    try:
        yield
    finally:
        if before_env is None:
            os.environ.pop(RAY_CLUSTER_ENV, None)
        else:
            os.environ[RAY_CLUSTER_ENV] = before_env
        if consts is not None and before is not None:
            consts.ENABLE_RAY_CLUSTER = before


class RayPool(Pool):
    """Starts, feeds, watches and replaces one Ray actor per worker slot (``WorkerPool``'s interface).

    Args:
        ref: how an actor loads the objective (tuitune and the objective's module must be importable on
            every node).
        slots: one per actor.
        address: ``HOST:PORT`` or ``auto`` joins a running cluster; None starts a local instance on
            127.0.0.1 (``num_cpus`` = the slots, no dashboard) and shuts it down at ``close()``.
        gpus_per_trial: each actor's GPUs; None: 1 when the cluster has GPUs, else 0.
    """

    backend = "ray"
    requeue_lost = True  # a lost node is not the trial's fault: it runs again from its checkpoint

    def __init__(
        self, ref: ObjectiveRef, slots: Sequence[Slot], log_dir: Path, *, address: str | None = None,
        gpus_per_trial: float | None = None,
    ) -> None:
        if not slots:
            raise WorkerError("no worker slots: give at least one worker")
        self._blob = pickled_objective(ref, "a Ray actor", "define it at the top level of a module installed on every node")
        self.ref = ref
        self.slots = list(slots)
        self.log_dir = log_dir
        self.address = check_address(address)
        self.gpus = check_gpus(gpus_per_trial)
        self.workers: dict[int, Worker] = {}
        self._specs: dict[int, TrialSpec] = {}  # the trials running, by number (where checkpoints and logs go)
        self._deaths: dict[int, str] = {}
        self._owns = False  # this pool started Ray (local instance): it shuts it down
        self._reaper: subprocess.Popen[bytes] | None = None
        self._cls: Any = None
        self._alive_at = time.monotonic()  # the head's last answer to a probe
        self._checked_at = self._alive_at  # the coordinator's last look at that clock
        self._probing = False
        self._lost = False

    # ---- start and stop --------------------------------------------------------------------------
    def start(self, log_dir: Path | None = None) -> None:
        if log_dir is not None:
            self.log_dir = log_dir
        ray = ray_module()
        if not ray.is_initialized():
            self._init(ray)
        resources = ray.cluster_resources()
        gpus = self.gpus if self.gpus is not None else (1.0 if resources.get("GPU", 0) > 0 else 0.0)
        if gpus > resources.get("GPU", 0):
            raise WorkerError(
                f"--gpus-per-trial {gpus:g}: the Ray cluster{self._at()} has {resources.get('GPU', 0):g} GPU(s); "
                "use --gpus-per-trial 0 to train on CPUs"
            )
        self.gpus = gpus
        self._cls = ray.remote(TrialActor).options(
            num_cpus=1, num_gpus=gpus, max_restarts=0, max_concurrency=4, name=None,
        )
        for slot in self.slots:
            self._spawn(slot)

    def _at(self) -> str:
        return f" at {self.address}" if self.address else " on 127.0.0.1"

    def _init(self, ray: Any) -> None:
        kw: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
        logging.getLogger("ray").setLevel(logging.ERROR)  # its notices would tear the progress display
        if self.address is None:
            # A local instance: Ray (>= 2.59) turns token auth on and makes the token itself (~/.ray/auth_token);
            # RAY_AUTH_MODE is left alone (set after Ray's import it would disagree with Ray's cached config).
            kw.update(address="local", num_cpus=len(self.slots), include_dashboard=False,
                      _node_ip_address="127.0.0.1")
            if os.environ.get("TUITUNE_RAY_TMPDIR"):
                kw["_temp_dir"] = os.environ["TUITUNE_RAY_TMPDIR"]
        else:
            kw["address"] = self.address
        try:
            with _quiet_stderr(), (_loopback_only() if self.address is None else contextlib.nullcontext()):
                ray.init(**kw)
        except Exception as e:  # noqa: BLE001 - Ray's errors are long; one line says what to do
            first = first_line(e) or type(e).__name__
            if self.address is None:
                raise WorkerError(f"could not start a local Ray instance ({first}); see ray's log under /tmp/ray") from None
            if "token" in str(e).lower() or "auth" in str(e).lower():
                raise WorkerError(
                    f"the Ray cluster at {self.address} asks for its token ({first}); on the head node run "
                    "'ray get-auth-token', then put it in ~/.ray/auth_token here or set RAY_AUTH_TOKEN"
                ) from None
            raise WorkerError(
                f"could not join the Ray cluster at {self.address} ({first}); start it with 'ray start --head' "
                "and give the address it prints"
            ) from None
        self._owns = True
        if self.address is None:
            _private_token()
        _mute_raylet_notices()
        if self.address is None and sys.platform.startswith("linux"):
            self._reaper = subprocess.Popen(
                [sys.executable, "-c", f"from tuitune.core.run.ray_backend import _reap; _reap({os.getpid()})"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, close_fds=True,
            )

    def close(self, grace: float = 2.0) -> None:
        """Asks idle actors to quit, kills every actor, and shuts down a Ray this pool started."""
        ray = sys.modules.get("ray")
        if self._lost:  # nothing there answers: leave without waiting for it
            self.workers.clear()
            if ray is not None:
                t = threading.Thread(target=ray.shutdown, name="tuitune-ray-shutdown", daemon=True)
                t.start()
                t.join(5.0)
            ray = None
        if ray is not None and ray.is_initialized():
            idle = [w for w in self.workers.values() if not w.trials and w.ready and w.conn is not None]
            for w in idle:
                self.answer(w, Quit())
            with contextlib.suppress(Exception):  # each says 'bye' once its folder is removed
                refs = [w.conn for w in idle]
                if refs:
                    ray.wait(refs, num_returns=len(refs), timeout=grace)
            for w in list(self.workers.values()):
                self.kill(w)
        self.workers.clear()
        if self._owns and ray is not None:
            with contextlib.suppress(Exception), _quiet_stderr():
                ray.shutdown()
            self._owns = False
        if self._reaper is not None:
            self._reaper.kill()
            self._reaper.wait()
            self._reaper = None

    # ---- the actors ------------------------------------------------------------------------------
    def _spawn(self, slot: Slot) -> Worker:
        actor = self._cls.remote(self._blob, f"slot{slot.index}", os.getpid())
        w = Worker(slot, actor, actor.take.remote())
        self.workers[slot.index] = w
        self._deaths.pop(slot.index, None)
        return w

    def kill(self, w: Worker) -> None:
        ray = sys.modules.get("ray")
        if ray is None:
            return
        with contextlib.suppress(Exception):
            ray.kill(w.process, no_restart=True)
        w.conn = None

    def dispatch(self, w: Worker, job: Job) -> None:
        self._assign(w, job)
        blobs = []
        for spec in job.specs:
            self._specs[spec.number] = spec
            path = Path(spec.checkpoint)
            blobs.append(path.read_bytes() if path.exists() else None)  # it travels: the actor may be on another node
        w.process.give.remote(RunJob(job, tuple(blobs)))

    def answer(self, w: Worker, reply: Any) -> None:
        with contextlib.suppress(Exception):  # a dead actor: its pending take() says so on the next wait
            w.process.give.remote(reply)

    def death(self, w: Worker) -> str:
        return self._deaths.get(w.slot.index, "its Ray actor stopped answering")

    def wait(self, timeout: float) -> list[tuple[Worker, Any]]:
        """Messages that arrived within ``timeout`` seconds; ``(worker, Died(how))`` for an actor that was lost."""
        ray = sys.modules["ray"]
        from ray.exceptions import GetTimeoutError, RayActorError

        self._probe()
        pending = {w.conn: w for w in self.workers.values() if w.conn is not None}
        if not pending:
            time.sleep(timeout)
            return []
        try:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=timeout)
            if ready:
                ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
        except Exception as e:  # noqa: BLE001
            raise self._lost_cluster(e) from None
        out: list[tuple[Worker, Any]] = []
        now = time.monotonic()
        for ref in ready:
            w = pending[ref]
            try:
                msg = ray.get(ref, timeout=30)
            except RayActorError as e:
                self._deaths[w.slot.index] = _actor_death(e, w.node)
                w.conn = None
                out.append((w, Died(self.death(w))))
                continue
            except GetTimeoutError as e:
                raise self._lost_cluster(e) from None
            except Exception as e:  # noqa: BLE001
                raise self._lost_cluster(e) from None
            w.conn = w.process.take.remote()
            if isinstance(msg, Ready) and msg.facts:
                w.node, w.device = msg.facts.get("node"), msg.facts.get("device")
            if isinstance(msg, Checkpoint):
                self._save_checkpoint(msg.trial, msg.data)
                self.answer(w, Ok())
                continue
            if isinstance(msg, Log):
                self._save_log(msg.trial, msg.data)
                continue
            if isinstance(msg, Bye):
                continue
            out.append((w, msg))
        if not ready and any(not w.ready and now - w.started > START_TIMEOUT_S for w in self.workers.values()):
            w = next(w for w in self.workers.values() if not w.ready and now - w.started > START_TIMEOUT_S)
            w.started = now
            log.warning("a Ray actor has waited %.0f s to be placed", START_TIMEOUT_S)
        return out

    def _probe(self) -> None:
        """Checks, on a thread of its own, that the head answers; raises ClusterLostError when it has not
        for LOST_AFTER_S (a dead head leaves calls to the actors pending, never failing)."""
        now = time.monotonic()
        gap = now - getattr(self, "_checked_at", now)
        self._checked_at = now
        if gap > PROBE_EVERY_S:
            # The coordinator itself did not run (SIGSTOP, Ctrl+Z, a suspended laptop): that time says
            # nothing about the head; it gets a fresh LOST_AFTER_S to answer.
            self._alive_at += gap
        if now - self._alive_at > LOST_AFTER_S:
            raise self._lost_cluster(TimeoutError(f"its head has not answered for {LOST_AFTER_S:g} s"))
        if self._probing or now - self._alive_at < PROBE_EVERY_S:
            return
        self._probing = True

        def probe() -> None:
            try:
                from ray._private.worker import global_worker

                gcs: Any = getattr(global_worker, "gcs_client")  # noqa: B009 - private to Ray
                gcs.internal_kv_get(b"tuitune-probe", None, timeout=PROBE_EVERY_S)
                self._alive_at = time.monotonic()
            except Exception:  # noqa: BLE001 - no answer: the clock above decides
                pass
            finally:
                self._probing = False

        threading.Thread(target=probe, name="tuitune-ray-probe", daemon=True).start()

    def _lost_cluster(self, e: BaseException) -> ClusterLostError:
        self._lost = True
        first = first_line(e) or type(e).__name__
        return ClusterLostError(
            f"lost the connection to the Ray cluster{self._at()} ({first[:200]}); committed epochs are kept: "
            "resume the session once the cluster is back"
        )

    def _save_checkpoint(self, number: int, data: bytes) -> None:
        spec = self._specs.get(number)
        if spec is None:
            return
        from tuitune.core.store.safefs import open_private

        path = Path(spec.checkpoint)
        path.parent.mkdir(parents=True, exist_ok=True)
        # The Runner's clean-up knows this name: a half-written file of a killed coordinator is removed.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with os.fdopen(open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def _save_log(self, number: int, data: bytes) -> None:
        spec = self._specs.pop(number, None)  # the log comes last, just before its Done
        if spec is None or not data:
            return
        from tuitune.core.store.safefs import open_append

        path = Path(spec.log)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open_append(path, "ab") as f:
            f.write(data)


def _private_token() -> None:
    """Makes ``~/.ray/auth_token`` (the token a local Ray just made, 0644 by Ray) readable by its owner only."""
    token = Path(os.path.expanduser("~/.ray/auth_token"))
    try:
        st = token.lstat()
        if token.is_file() and not token.is_symlink() and st.st_uid == os.geteuid() and st.st_mode & 0o077:
            os.chmod(token, 0o600)
    except OSError:
        pass


def _mute_raylet_notices() -> None:
    """Ray's driver prints the raylet's notices (a worker died, ...) on stdout from a thread of its own,
    which would tear the progress display and the TUI; the trial's reason already says what happened,
    so they go to this module's log instead (a private hook of Ray: left alone where it has moved)."""
    mod = sys.modules.get("ray._private.worker")
    original = getattr(mod, "print_to_stdstream", None)
    if original is None or getattr(original, "_tuitune", False):
        return

    def quiet(data: dict[str, Any], ignore_prefix: bool) -> None:
        if data.get("pid") == "raylet":
            log.info("ray: %s", " ".join(str(x) for x in data.get("lines", [])))
            return
        original(data, ignore_prefix)

    quiet._tuitune = True  # type: ignore[attr-defined]
    mod.print_to_stdstream = quiet  # type: ignore[union-attr]


def _actor_death(e: BaseException, node: str | None) -> str:
    text = str(e)
    where = f" on node {node}" if node else ""
    if "SIGKILL" in text or "killed" in text.lower():
        return f"its Ray actor{where} was killed"
    if "node" in text.lower() and ("died" in text.lower() or "dead" in text.lower()):
        return f"the Ray node{where} was lost"
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(e).__name__)
    return f"its Ray actor{where} died ({first[:160]})"


@contextlib.contextmanager
def _quiet_stderr() -> Any:
    """Ray prints notices on the terminal while it starts and stops; they go to /dev/null instead."""
    try:
        fd = sys.stderr.fileno()
    except (OSError, ValueError, AttributeError):
        yield
        return
    saved = os.dup(fd)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stderr.flush()
        os.dup2(null, fd)
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, fd)
        os.close(saved)
        os.close(null)
