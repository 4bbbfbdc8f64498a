"""Provides command objectives: a training script run as it is, one process per trial (``tt.Command``).

The coordinator's side (``Command``, an objective like any other, run in a worker's place)::

    tt.Command("python train.py --lr {lr} --units {units} --epochs {budget}")

starts the command for each trial: argv split with ``shlex`` (no shell unless ``shell=True``), each
``{name}`` filled in from the config (and ``{trial}``, ``{budget}``, ``{checkpoint_dir}``), a leading
``python``/``python3`` replaced by the worker's interpreter, in its own process group, with these in its
environment:

    TUITUNE_CONFIG          the config as JSON
    TUITUNE_TRIAL           the trial's number
    TUITUNE_BUDGET          the last epoch this run may reach
    TUITUNE_CHECKPOINT_DIR  a folder of this trial's own that survives resume and promotion
    TUITUNE_CHANNEL         "R,W": inherited pipe descriptors that ``tuitune.report`` talks over

The script's side (``report``, ``checkpoint_dir``, ``config``: ``tuitune.report`` etc.)::

    for epoch in range(start + 1, epochs + 1):
        ...
        if tuitune.report(epoch=epoch, val_loss=loss) == "stop":
            break

``report`` returns after the coordinator committed the epoch row: ``"continue"`` or ``"stop"`` (budget
reached, session stopped, trial aborted or pruned); while the session is paused it does not return. A
script may instead print ``{"tuitune": {"epoch": 3, "val_loss": 0.21}}`` lines: it is then held
(SIGSTOP) while the row commits and while the session is paused, and ended (SIGTERM to its group) on
stop. A report names its ``epoch`` when the script resumed from its checkpoint: the rows after the epoch
before it are superseded, as for a function's restore. A non-zero exit fails the trial with the last
line of its output as the reason and the tail as the trace; everything it prints goes to the trial log.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import selectors
import shlex
import signal
import string
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tuitune.core.errors import ObjectiveError

EXTRA_FIELDS = ("trial", "budget", "checkpoint_dir")  # placeholders a command may use besides the config's
STOP_GRACE = 10.0  # seconds a script has to exit after SIGTERM before its group is killed
_TAIL = 40  # lines of output kept for a failed trial's trace


def placeholders(command: str | Sequence[str]) -> list[str]:
    """The ``{name}`` fields of a command (a string or an argv), in order, each once."""
    parts = [command] if isinstance(command, str) else list(command)
    out: list[str] = []
    for part in parts:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(str(part)) if f is not None]
        except ValueError as e:
            raise ObjectiveError(f"command {part!r}: {e} (write a literal brace as {{{{ or }}}})") from None
        for f in fields:
            name = f.split(".")[0].split("[")[0]
            if not name:
                raise ObjectiveError(f"command {part!r} has an empty {{}}; name a parameter, like {{lr}}")
            if name not in out:
                out.append(name)
    return out


class Command:
    """An objective that runs a command per trial (see the module's docstring).

    Args:
        command: a string (split with ``shlex``) or an argv list; ``{name}`` fields are filled in.
        shell: run the string through ``/bin/sh -c`` (values are quoted with ``shlex.quote``).
        cwd: where it runs (default: the current directory; a preset's command: the preset's folder).
        env: more environment variables.
    """

    def __init__(
        self, command: str | Sequence[str], *, shell: bool = False, cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if isinstance(command, str):
            if not command.strip():
                raise ObjectiveError("the command is empty; give one like \"python train.py --lr {lr}\"")
        elif not command or not all(isinstance(a, str) for a in command):
            raise ObjectiveError("the command is an empty or non-string list; give argv strings like "
                                 "[\"python\", \"train.py\", \"--lr\", \"{lr}\"]")
        if shell and not isinstance(command, str):
            raise ObjectiveError("shell=True runs one string through /bin/sh; give the command as a string")
        self.command: str | list[str] = command if isinstance(command, str) else list(command)
        self.shell = bool(shell)
        self.cwd = str(cwd) if cwd is not None else None
        self.env = dict(env or {})
        placeholders(self.command)  # a malformed field fails here, not in a worker

    def __repr__(self) -> str:
        return f"Command({self.command!r}{', shell=True' if self.shell else ''})"

    def check(self, names: Sequence[str], where: str = "the command") -> None:
        """Every placeholder names a parameter (or trial, budget, checkpoint_dir), else one line saying which."""
        unknown = [p for p in placeholders(self.command) if p not in names and p not in EXTRA_FIELDS]
        if unknown:
            raise ObjectiveError(
                f"{where}: {{{unknown[0]}}} is not a parameter of the space; use one of "
                f"{', '.join('{' + n + '}' for n in [*names, *EXTRA_FIELDS])}"
            )

    def argv(self, fields: Mapping[str, Any]) -> list[str]:
        """The argv of one trial: the fields filled in (a missing one is one clear error)."""
        try:
            if self.shell and isinstance(self.command, str):
                quoted = {k: shlex.quote(str(v)) for k, v in fields.items()}
                return ["/bin/sh", "-c", self.command.format_map(quoted)]
            parts = shlex.split(self.command) if isinstance(self.command, str) else list(self.command)
            argv = [p.format_map(fields) for p in parts]
        except KeyError as e:
            raise ObjectiveError(
                f"command {self.command!r}: {{{e.args[0]}}} is not a parameter of the space; use one of "
                f"{', '.join('{' + str(n) + '}' for n in fields)}"
            ) from None
        if argv and argv[0] in ("python", "python3"):
            argv[0] = sys.executable  # the worker's interpreter: the one tuitune (and the script's imports) live in
        return argv

    def __call__(self, config: dict[str, Any], trial: Any) -> None:
        return _CommandRun(self, config, trial).run()


def checkpoint_folder(trial: Any) -> Path:
    """A trial's checkpoint folder for a script: beside its checkpoint file, ``N.d`` (the runner drops both)."""
    path = Path(trial._ckpt_path)
    return path.with_name(f"{path.stem}.d")


class _CommandRun:
    """One trial of a Command: the process, its output, its reports."""

    def __init__(self, command: Command, config: dict[str, Any], trial: Any) -> None:
        self.command = command
        self.config = config
        self.trial = trial
        self.proc: subprocess.Popen[bytes] | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=_TAIL)
        self.stopping = False  # we asked it to end (budget, stop, abort): its exit status is not a failure

    # ---- the process ----------------------------------------------------------------------------
    def run(self) -> None:
        trial = self.trial
        folder = checkpoint_folder(trial)
        folder.mkdir(parents=True, exist_ok=True)
        fields = {"trial": trial.number, "budget": trial.budget, "checkpoint_dir": str(folder), **self.config}
        argv = self.command.argv(fields)
        req_r, req_w = os.pipe()  # script -> us
        resp_r, resp_w = os.pipe()  # us -> script
        env = {
            **os.environ, **self.command.env,
            "TUITUNE_CONFIG": json.dumps(self.config), "TUITUNE_TRIAL": str(trial.number),
            "TUITUNE_BUDGET": str(trial.budget), "TUITUNE_CHECKPOINT_DIR": str(folder),
            "TUITUNE_CHANNEL": f"{resp_r},{req_w}", "PYTHONUNBUFFERED": "1",
        }
        print(f"$ {shlex.join(argv)}", flush=True)
        try:
            self.proc = subprocess.Popen(
                argv, cwd=self.command.cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, pass_fds=(resp_r, req_w), start_new_session=True,
                preexec_fn=_die_with_parent_hook(),
            )
        except OSError as e:
            for fd in (req_r, req_w, resp_r, resp_w):
                os.close(fd)
            from tuitune.core.run.trial import TrialFailed

            raise TrialFailed(f"the command {shlex.join(argv)!r} could not start: {e.strerror or e}") from None
        os.close(resp_r)
        os.close(req_w)
        try:
            self._serve(req_r, resp_w)
        finally:
            self._end()
            for fd in (req_r, resp_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._judge()

    def _serve(self, req_r: int, resp_w: int) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        out = self.proc.stdout
        sel.register(out, selectors.EVENT_READ, "out")
        sel.register(req_r, selectors.EVENT_READ, "req")
        buffers = {"out": b"", "req": b""}
        open_ = {"out", "req"}
        while open_:
            events = sel.select(timeout=1.0)
            if not events and self.proc.poll() is not None:
                break  # it exited and what it left running holds its output open: not ours to wait for
            for key, _ in events:
                name = key.data
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fd)
                    open_.discard(name)
                    if buffers[name]:
                        self._line(name, buffers[name], resp_w)
                    continue
                buffers[name] += chunk
                while b"\n" in buffers[name]:
                    line, _, buffers[name] = buffers[name].partition(b"\n")
                    self._line(name, line, resp_w)
        sel.close()

    def _line(self, source: str, raw: bytes, resp_w: int) -> None:
        text = raw.decode(errors="replace")
        if source == "out":
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
            self.tail.append(text)
            metrics = _json_report(text)
            if metrics is not None:
                self._stdout_report(metrics)
            return
        try:
            msg = json.loads(text)
            metrics = dict(msg["report"])
        except (ValueError, KeyError, TypeError):
            self._reply(resp_w, {"error": f"tuitune could not read this request: {text[:80]!r}"})
            return
        try:
            answer = self._report(metrics)
        except Exception as e:
            self._reply(resp_w, {"error": str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__})
            raise
        self._reply(resp_w, {"command": "stop" if answer == "done" else answer})

    @staticmethod
    def _reply(fd: int, msg: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            os.write(fd, (json.dumps(msg) + "\n").encode())

    def _stdout_report(self, metrics: dict[str, Any]) -> None:
        """A printed report: the script is held while the row commits (and while the session is paused)."""
        held = self._signal(signal.SIGSTOP)
        try:
            answer = self._report(metrics)
        finally:
            if held:
                self._signal(signal.SIGCONT)
        if answer == "stop":
            self._terminate()

    # ---- the reports -----------------------------------------------------------------------------
    def _report(self, metrics: dict[str, Any]) -> str:
        """Commits one epoch row and asks the coordinator whether to go on: ``"continue"``, ``"stop"``, or
        ``"done"`` (its budget is reached: the script is told to stop, and is not ended)."""
        from tuitune.core.run.trial import TrialFailed

        if self.stopping:  # it was told to stop and reports on: it ignores the answer, so it is ended
            self._terminate()
            return "stop"
        try:
            answer: str = self.trial._epoch_reported(metrics.pop("epoch", None), metrics)
        except TrialFailed:
            self.stopping = True
            raise
        if answer == "stop" and metrics and self.trial.last_epoch >= self.trial.budget:
            self._terminate()  # past its budget (it did not read the answer, or --epochs is not {budget})
        if answer != "continue":
            self.stopping = True
        return answer

    # ---- the end ---------------------------------------------------------------------------------
    def _signal(self, sig: int) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            return False
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def _terminate(self) -> None:
        """Asks the script's process group to end (SIGTERM); ``_end`` kills what is left after the grace."""
        self.stopping = True
        self._signal(signal.SIGTERM)

    def _end(self) -> None:
        """The script and its group are gone when the trial ends, whatever ended it."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None and not self.stopping:
            self.stopping = True  # an exception here (time limit, a bad report): the script cannot go on
            self._signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            pass
        self._signal(signal.SIGKILL)  # the group: what the script started, too
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def _judge(self) -> None:
        from tuitune.core.run.trial import TrialFailed

        assert self.proc is not None
        code = self.proc.returncode
        if code == 0 or (self.stopping and code is not None and code < 0) or (self.stopping and code in (143, 137)):
            return
        last = next((line for line in reversed(self.tail) if line.strip()), "")
        how = f"killed by {_signame(-code)}" if code < 0 else f"exited with code {code}"
        raise TrialFailed(f"the command {how}" + (f": {last.strip()[:200]}" if last else " (no output)"),
                          "\n".join(self.tail) + "\n")


def _signame(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` by which the script is killed when the worker that started it dies (Linux's
    PR_SET_PDEATHSIG), or None where there is none. libc is looked up here, in the parent: between fork and
    exec the child only calls it (no import, no dlopen, no lock another thread may hold)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        return None
    sig = int(signal.SIGKILL)

    def hook() -> None:
        prctl(1, sig)  # PR_SET_PDEATHSIG

    return hook


def _json_report(line: str) -> dict[str, Any] | None:
    text = line.strip()
    if not (text.startswith("{") and '"tuitune"' in text):
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    metrics = doc.get("tuitune") if isinstance(doc, dict) else None
    return dict(metrics) if isinstance(metrics, dict) and metrics else None


# ---------------------------------------------------------------------------- the script's side

_channel: tuple[Any, Any] | None = None
_scratch: Path | None = None


def _open_channel() -> tuple[Any, Any] | None:
    global _channel
    if _channel is None:
        spec = os.environ.get("TUITUNE_CHANNEL")
        if not spec:
            return None
        r, _, w = spec.partition(",")
        try:
            _channel = (os.fdopen(int(r), "r", buffering=1), os.fdopen(int(w), "w", buffering=1))
        except (ValueError, OSError) as e:
            raise ObjectiveError(f"TUITUNE_CHANNEL={spec!r} is not a channel tuitune opened ({e})") from None
    return _channel


def report(**metrics: Any) -> str:
    """Reports one epoch of a script run by a ``tt.Command`` trial: ``report(epoch=3, val_loss=0.21)``.

    Returns after the row is committed: ``"continue"``, or ``"stop"`` (end the script: the budget is reached,
    the session stopped, the trial was pruned or aborted); while the session is paused it waits. Outside
    tuitune (the script run by hand) it does nothing and returns ``"continue"``.
    """
    if not metrics:
        raise ObjectiveError("report() needs at least one metric, e.g. tuitune.report(val_loss=0.3)")
    channel = _open_channel()
    if channel is None:
        return "continue"
    values: dict[str, Any] = {}
    for k, v in metrics.items():
        values[k] = v.item() if hasattr(v, "item") else v
    r, w = channel
    try:
        w.write(json.dumps({"report": values}) + "\n")
        w.flush()
        answer = r.readline()
    except (OSError, ValueError):
        answer = ""
    if not answer:  # the worker is gone: nothing more will be committed
        return "stop"
    msg = json.loads(answer)
    if "error" in msg:
        raise ObjectiveError(msg["error"])
    return str(msg["command"])


def checkpoint_dir() -> Path:
    """This trial's checkpoint folder: save there, restore from there (it survives kill -9, resume and
    promotion). Outside tuitune: a fresh temporary folder."""
    global _scratch
    folder = os.environ.get("TUITUNE_CHECKPOINT_DIR")
    if folder:
        return Path(folder)
    if _scratch is None:
        _scratch = Path(tempfile.mkdtemp(prefix="tuitune-checkpoint-"))
    return _scratch


def config() -> dict[str, Any]:
    """This trial's config (``TUITUNE_CONFIG``); outside tuitune: an empty dict."""
    raw = os.environ.get("TUITUNE_CONFIG")
    return dict(json.loads(raw)) if raw else {}
