"""Provides the filesystem check behind the network-filesystem warning.

SQLite's WAL mode needs shared memory between the processes that open a database, which network
filesystems (NFS, CIFS/SMB, sshfs, ...) do not give: there a database can be corrupted. The mount
table tells which filesystem a path is on.
"""

from __future__ import annotations

import os
from pathlib import Path

MOUNTS = "/proc/self/mounts"
NETWORK_FS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "sshfs", "9p", "afs", "ceph", "glusterfs",
              "fuse.glusterfs", "lustre", "gpfs", "beegfs", "fuse.s3fs", "fuse.gcsfuse", "fuse.rclone", "davfs"}


class NetworkFilesystemWarning(UserWarning):
    """The database lies on a network filesystem, where SQLite's WAL mode is unsafe."""


def _unescape(field: str) -> str:
    # /proc/mounts escapes spaces, tabs, newlines and backslashes in octal.
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def filesystem_type(path: str | os.PathLike[str]) -> str | None:
    """The type of the filesystem holding ``path`` (the longest mount point above it), if known."""
    try:
        text = Path(MOUNTS).read_text()
    except OSError:
        return None
    target = Path(path).expanduser().resolve()
    if not target.exists():
        target = target.parent
    best, best_type = "", None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        mount, fstype = _unescape(parts[1]), parts[2]
        m = mount.rstrip("/") or "/"
        t = str(target)
        if (t == m or t.startswith(m.rstrip("/") + "/") or m == "/") and len(m) >= len(best):
            best, best_type = m, fstype
    return best_type


def network_warning(path: str | os.PathLike[str]) -> str | None:
    """A warning text when ``path`` lies on a network filesystem, else None."""
    fstype = filesystem_type(path)
    if fstype is None or fstype.lower() not in NETWORK_FS:
        return None
    return (
        f"{path} is on a network filesystem ({fstype}); SQLite's WAL mode does not work safely there and "
        "the database can be damaged. Put it on a local disk (--db /tmp/... or TUITUNE_DB)"
    )


def why_not_writable(path: str | os.PathLike[str], *, folder: bool = False) -> str | None:
    """Why a file (``folder``: a folder) cannot be created or written at ``path``, in words; None when
    it can. Creates the missing folders above it (they are needed anyway) and a probe file it removes,
    so a read-only, immutable or special filesystem (``/proc``) answers for itself, even to root."""
    import errno
    import tempfile

    p = Path(path).expanduser()
    if p.exists():
        if folder != p.is_dir():
            return f"it is a {'file' if folder else 'folder'}, not a {'folder' if folder else 'file'}"
    for above in p.parents:
        if above.exists():
            if not above.is_dir():
                return f"{above} is a file, not a folder"
            break
    where = p if folder and p.is_dir() else p.parent
    try:
        where.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".tuitune-probe-", dir=where)
        os.close(fd)
        os.unlink(probe)
        if p.is_file():
            os.close(os.open(p, os.O_RDWR))
    except OSError as e:
        reason = {
            errno.EACCES: "permission denied", errno.EPERM: "not permitted (an immutable folder?)",
            errno.EROFS: "a read-only filesystem", errno.ENOTDIR: "a part of the path is a file, not a folder",
        }.get(e.errno or 0)
        at = Path(e.filename) if e.filename else where
        if at.name.startswith(".tuitune-probe-"):
            at = at.parent
        if reason is None and e.errno == errno.ENOENT:
            reason = "that filesystem does not accept new files"
        return f"{reason or (e.strerror or str(e)).lower()} ({at})"
    return None
