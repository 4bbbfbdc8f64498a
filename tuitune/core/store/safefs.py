"""Provides the file-safety rules: what tuitune trusts on disk, and how it writes there.

tuitune trusts a database file and its folder ``<db>.d`` only when they belong to the user running it
and nobody else can write them (as OpenSSH's ``StrictModes`` and git's ``safe.directory`` do): a file
another user made, or one another user can write, is refused with one line, before anything in it is
read as settings or code. Every folder under ``<db>.d`` is checked the same way, component by
component and without following symlinks, and every file tuitune writes there is opened with
``O_NOFOLLOW`` and checked to be a regular file of the user's. Since nobody else can write those
folders, nobody else can swap a file between the check and the use.

Group write is allowed only for a user-private group (the group named like the user, with nobody else
in it): the usual ``umask 002`` setup of many Linux systems.

A session's name becomes part of paths (its logs, checkpoints and lock): ``check_name`` is the one rule
for names, checked wherever a name becomes a path, whatever it was read from.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import IO, Any

from tuitune.core.errors import SessionError, SetupError, StoreError, StoreWriteError

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
NAME_RULE = "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"


class UnsafePathError(StoreError):
    """A file or folder tuitune would write to or read settings from is not safely the user's."""


class DiskFullError(StoreWriteError, SetupError):
    """A file could not be written because its filesystem is full (or over quota): the session stops with
    its trials interrupted, as when the database itself is full, and resumes once space is freed."""


def check_name(name: object) -> str:
    """``name`` when it is a valid session name (a whole match: no newline, no '/', no '..'), else SessionError."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name in (".", ".."):
        raise SessionError(f"session name {name!r} is not allowed; {NAME_RULE}")
    return name


def _euid() -> int:
    return os.geteuid() if hasattr(os, "geteuid") else 0


def _user_private_group(st: os.stat_result) -> bool:
    """The file's group is its owner's own group, with no other member (``umask 002`` systems)."""
    try:
        import grp
        import pwd

        user = pwd.getpwuid(st.st_uid)
        group = grp.getgrgid(st.st_gid)
    except (ImportError, KeyError):
        return False
    return group.gr_name == user.pw_name and set(group.gr_mem) <= {user.pw_name}


def _owner_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


def check_trusted(path: Path, st: os.stat_result, what: str) -> None:
    """Refuses ``path`` (stat ``st``) unless the user running tuitune owns it and nobody else can write it."""
    if not hasattr(os, "geteuid"):  # pragma: no cover - Windows: no POSIX owners
        return
    if st.st_uid != _euid():
        raise UnsafePathError(
            f"{what} {path} belongs to {_owner_name(st.st_uid)}, not to you ({_owner_name(_euid())}); tuitune only "
            "uses a database and a <db>.d folder of your own: use another --db, or have its owner run it"
        )
    if st.st_mode & stat.S_IWOTH or (st.st_mode & stat.S_IWGRP and not _user_private_group(st)):
        raise UnsafePathError(
            f"{what} {path} can be written by other users (mode {stat.filemode(st.st_mode)}); "
            f"make it yours alone: chmod go-w {path}"
        )


def check_database(path: str | os.PathLike[str]) -> None:
    """Refuses a database file (symlinks followed: the file itself) that is not safely the user's, or one
    (existing or to be made) in a folder every user can write that is not sticky."""
    p = Path(path)
    try:
        st: os.stat_result | None = p.stat()
    except OSError:
        st = None  # none yet (or unreadable: the store says what is wrong with it)
    if st is not None and stat.S_ISREG(st.st_mode):
        check_trusted(p, st, "the database")
    folder = Path(os.path.realpath(p)).parent
    try:
        fst = folder.stat()
    except OSError:
        return
    if fst.st_mode & stat.S_IWOTH and not fst.st_mode & stat.S_ISVTX:
        # Anyone could rename the database or its <db>.d away and put theirs in its place (/tmp is safe:
        # its sticky bit lets only a file's owner rename it).
        raise UnsafePathError(
            f"the folder {folder} of the database can be written by every user and is not sticky; "
            f"put the database in a folder of your own (or chmod o-w {folder})"
        )


def secure_dir(base: Path, *parts: str) -> Path:
    """``base/parts...``, every folder of it created (mode 0755) or checked: a real folder, not a symlink,
    the user's own and writable by nobody else. ``base`` is ``<db>.d``."""
    path = base
    for i, part in enumerate(("", *parts)):
        if i:
            if part in ("", ".", "..") or "/" in part or "\0" in part:
                raise UnsafePathError(f"{part!r} cannot be a folder name under {base}")
            path = path / part
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            pass
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise DiskFullError(no_space(path)) from None
            if e.errno != errno.EEXIST:
                raise UnsafePathError(f"cannot create the folder {path}: {e.strerror}") from None
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePathError(
                f"{path} is a symlink; tuitune does not follow symlinks inside {base}: remove it ({_rm(path)})"
            )
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafePathError(f"{path} is not a folder; remove it ({_rm(path)})")
        check_trusted(path, st, "the folder")
    return path


def private_dir(path: Path) -> Path:
    """A folder only the user can enter (0700): created, or checked to be a real folder of the user's that
    nobody else can read or write (a shared temp folder's entry another user may have made first)."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"{path} is not a folder (a symlink or a file); remove it ({_rm(path)})")
    if hasattr(os, "geteuid") and st.st_uid != _euid():
        raise UnsafePathError(
            f"the folder {path} belongs to {_owner_name(st.st_uid)}, not to you; remove it (as its owner or root)"
        )
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)  # ours: make it private
    return path


def _rm(path: Path) -> str:
    import shlex

    return f"rm {shlex.quote(str(path))}"


def open_private(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` of a file tuitune writes: never through a symlink, only a regular file of the user's."""
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags, mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UnsafePathError(f"{path} is a symlink; tuitune does not write through symlinks: remove it ({_rm(path)})") from None
        if e.errno == errno.ENOSPC:
            raise DiskFullError(no_space(path)) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(f"{path} is not a regular file; remove it ({_rm(path)})")
        check_trusted(path, st, "the file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_append(path: str | os.PathLike[str], mode: str = "a", buffering: int = -1) -> IO[Any]:
    """A file tuitune appends to (a log), opened as every file it writes (``open_private``: never through a
    symlink); ``mode`` "a" (text) or "ab"."""
    return os.fdopen(open_private(Path(path), os.O_WRONLY | os.O_CREAT | os.O_APPEND), mode, buffering)


def append_line(path: str | os.PathLike[str], line: str) -> bool:
    """Appends ``line`` and a newline to a log tuitune keeps for reading (a session's, a worker's, a trial's),
    opened as every file it writes (``open_private``: never through a symlink). A log must not stop a run: a
    failure (a full disk, a planted symlink) is only logged, and False returned."""
    import logging

    try:
        with open_append(path) as f:
            f.write(line + "\n")
        return True
    except (OSError, StoreError):
        logging.getLogger(__name__).debug("could not append to %s", path, exc_info=True)
        return False


def no_space(path: str | os.PathLike[str]) -> str:
    """The one message of a full disk."""
    return (
        f"no space left on {mount_point(path)} (writing {path}); what was committed is kept: free some space, "
        "then resume the session"
    )


def mount_point(path: str | os.PathLike[str]) -> str:
    """The mount point holding ``path`` (the device it names the user's disk by)."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        dev = p.stat().st_dev
        while p != p.parent and p.parent.stat().st_dev == dev:
            p = p.parent
    except OSError:
        pass
    return str(p)


def is_disk_full(e: BaseException) -> bool:
    """An exception that means "the filesystem is full": ENOSPC or EDQUOT, also wrapped by a library."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, DiskFullError):
            return True
        if isinstance(cur, OSError) and cur.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
            return True
        cur = cur.__cause__ or cur.__context__
    return False
