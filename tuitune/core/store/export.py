"""Provides the export of a session's best trial to JSON (docs/DESIGN.md 4.3), written atomically."""

from __future__ import annotations

import json
import os
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tuitune.core.errors import ExportError
from tuitune.core.records import Objectives, SessionRecord, TrialRecord


def export_document(
    session: SessionRecord,
    best: TrialRecord | None,
    db_path: str | os.PathLike[str] | None = None,
    *,
    pareto: list[TrialRecord] | None = None,
    trial: TrialRecord | None = None,
) -> dict[str, Any]:
    """The JSON object of an export: the session's settings and its best complete trial (or ``trial``,
    the one the user picked). Several objectives or constraints add ``objectives``, ``constraints``,
    the trial's ``values`` and the ``pareto`` set (each trial's number, values and config)."""
    goal = Objectives.of(session.metric, session.direction, session.options)
    if trial is not None:
        best = trial
    if best is None:
        from tuitune.core.text import resume_command

        what = "no complete trial that keeps its constraints" if goal.constraints else "no complete trial"
        raise ExportError(
            f"session '{session.name}' has {what} yet, so there is no best config to export; "
            f"run or resume it first ({resume_command(session.name, db_path)})"
        )
    from tuitune.core.run.versions import versions

    now = versions()
    extra: dict[str, Any] = {}
    if not goal.plain:
        extra["objectives"] = [{"metric": m, "direction": d} for m, d in zip(goal.metrics, goal.directions)]
        extra["constraints"] = [str(c) for c in goal.constraints]
        extra["values"] = dict(zip(goal.metrics, goal.values(best) or ()))
        extra["pareto"] = [
            {"trial": t.number, "values": dict(zip(goal.metrics, goal.values(t) or ())), "config": dict(t.config)}
            for t in (pareto or [])
        ]
    return {**_document(session, best, now), **extra}


def _document(session: SessionRecord, best: TrialRecord, now: dict[str, Any]) -> dict[str, Any]:
    return {
        "session": session.name,
        "preset": session.preset.get("name") if session.preset else None,
        "strategy": session.strategy,
        "metric": session.metric,
        "direction": session.direction,
        "value": best.value,
        "trial": best.number,
        "note": session.note,
        "trial_note": best.note,
        "config": dict(best.config),
        "epochs": [dict(e) for e in best.epochs],
        "budget": best.budget,
        "seed": session.seed,
        "options": session.options,
        "space": session.space,
        "versions": {
            "python": best.info.get("python", now["python"]),
            "torch": best.info.get("torch", now.get("torch")),
            "tuitune": best.info.get("tuitune", now["tuitune"]),
            "cuda": best.info.get("cuda"),
            "device": best.info.get("device"),
        },
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    """Writes JSON to a temp file beside ``path``, fsyncs it and renames it over ``path``.

    A reader (or a crash) sees the old file or the complete new one, never a truncated file. Only a
    regular file (or no file) is replaced that way, keeping its mode (and owner, where allowed); ``-``
    is standard output, and a character device or a FIFO (``/dev/stdout``, a pipe) is written directly.
    """
    data = json.dumps(finite(obj), indent=2, default=_default, allow_nan=False) + "\n"
    if str(path) == "-":
        _write_stream(sys.stdout.fileno(), data, "standard output")
        return Path("-")
    target = Path(path).expanduser()
    try:
        st = os.stat(target)  # symlinks followed: /dev/stdout names the terminal or pipe it points to
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise ExportError(f"cannot write {target}: {e.strerror}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise ExportError(f"{target} is a folder; give a file name, e.g. {target / 'best.json'}")
    if st is not None and is_stream(target):
        # /dev/stdout of a command redirected to a file names that file: append to it, never replace it.
        append = os.O_APPEND if stat.S_ISREG(st.st_mode) else 0
        try:
            fd = os.open(target, os.O_WRONLY | append | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
        except OSError as e:
            raise ExportError(f"cannot write {target}: {e.strerror}") from None
        try:
            _write_stream(fd, data, str(target))
        finally:
            os.close(fd)
        return target
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ExportError(f"{target} is not a regular file ({stat.filemode(st.st_mode)[0]}); give a file name")
    if target.is_symlink():
        target = Path(os.path.realpath(target))  # replace the file it points to, keep the link
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.exists():
        raise ExportError(f"cannot write {target}: the folder {parent} does not exist; create it first")
    _remove_stale_temps(parent, target.name)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as e:
        from tuitune.core.store.fs import why_not_writable

        raise ExportError(f"cannot write {target}: {why_not_writable(target) or e.strerror}; give another path") from None
    try:
        if st is not None:  # an existing export keeps its mode, and its owner where we may set it
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
            if (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()) and hasattr(os, "fchown"):
                try:
                    os.fchown(fd, st.st_uid, st.st_gid)
                except OSError:
                    pass
        else:
            # mkstemp makes the file 0600; an export is an ordinary file: respect the umask, as other tools do.
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise ExportError(f"cannot write {target}: {e.strerror}") from None
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dfd = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return target


def is_stream(path: str | os.PathLike[str]) -> bool:
    """``-``, a character device, a FIFO, or a name under /dev or /proc (``/dev/stdout``): written directly."""
    if str(path) == "-":
        return True
    p = Path(path).expanduser()
    if os.path.abspath(p).startswith(("/dev/", "/proc/")):
        return True
    try:
        st = os.stat(p)
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode)


def _write_stream(fd: int, data: str, what: str) -> None:
    """Writes ``data`` whole to a stream (a terminal, a pipe): no rename, no temp file."""
    try:
        sys.stdout.flush()
        view = memoryview(data.encode())
        while view:
            view = view[os.write(fd, view):]
    except BrokenPipeError:
        raise
    except OSError as e:
        raise ExportError(f"cannot write {what}: {e.strerror}") from None


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (os.umask sets it too)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _remove_stale_temps(folder: Path, name: str, age: float = 600.0) -> None:
    """Removes temp files of exports killed mid-write (older than ``age`` seconds: never a live one)."""
    now = time.time()
    for p in folder.glob(f".{name}.*.tmp"):
        try:
            if now - p.stat().st_mtime > age:
                p.unlink()
        except OSError:
            pass


def finite(obj: Any) -> Any:
    """The object with NaN and infinities as None: strict JSON for every parser."""
    import math

    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def _default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    return str(o)
