"""The store: files that are not ours are refused untouched; rows are never lost; one runner per session."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys

import pytest

import tuitune as tt
from tuitune.core.errors import (
    CorruptDatabaseError,
    NewerDatabaseError,
    NotOurDatabaseError,
    SessionLockedError,
    SessionNotFoundError,
)
from tuitune.core.store.lock import SessionLock
from tuitune.core.store.store import APPLICATION_ID, SCHEMA_VERSION, Store


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_db(tmp_path, trials=3):
    tt.tune(lambda c, t: c["x"], tt.Space(x=tt.Float(0, 1)), trials=trials, db=tmp_path / "ok.db", session="s", workers=0)
    Store(tmp_path / "ok.db").close()
    return tmp_path / "ok.db"


def test_new_file_gets_schema_and_ids(tmp_path):
    store = Store(tmp_path / "new.db")
    c = sqlite3.connect(tmp_path / "new.db")
    assert c.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.meta()["created_by"] == tt.__version__


@pytest.mark.parametrize(
    "content, error, words",
    [
        (b"hello, this is a text file\n" * 10, NotOurDatabaseError, "not an SQLite file"),
        (b"SQLite format 3\x00" + b"\x00" * 20, CorruptDatabaseError, "truncated"),
    ],
)
def test_foreign_bytes_refused_unchanged(tmp_path, content, error, words):
    p = tmp_path / "x.db"
    p.write_bytes(content)
    before = digest(p)
    with pytest.raises(error, match=words) as e:
        Store(p)
    assert str(p) in str(e.value) and "left unchanged" in str(e.value)
    assert digest(p) == before


def test_other_programs_sqlite_refused_unchanged(tmp_path):
    p = tmp_path / "other.db"
    c = sqlite3.connect(p)
    c.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, path TEXT)")
    c.commit()
    c.close()
    before = digest(p)
    with pytest.raises(NotOurDatabaseError, match="another program"):
        Store(p)
    c = sqlite3.connect(p)
    c.execute("PRAGMA application_id = 1234")
    c.commit()
    c.close()
    before = digest(p)
    with pytest.raises(NotOurDatabaseError, match="application id 0x4d2"):
        Store(p)
    assert digest(p) == before


def test_newer_schema_refused_unchanged(tmp_path):
    p = make_db(tmp_path)
    c = sqlite3.connect(p)
    c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    c.commit()
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    before = digest(p)
    with pytest.raises(NewerDatabaseError, match="newer tuitune"):
        Store(p)
    assert digest(p) == before


def test_truncated_and_flipped_copies_refused_unchanged(tmp_path):
    p = make_db(tmp_path, trials=20)
    data = p.read_bytes()
    bad = tmp_path / "trunc.db"
    bad.write_bytes(data[: len(data) // 2])
    before = digest(bad)
    with pytest.raises((CorruptDatabaseError, NotOurDatabaseError)):
        Store(bad)
    assert digest(bad) == before
    # Flip bytes in the b-tree pages (past the first page): a clear error or a clean open, never a crash.
    import random

    rnd = random.Random(0)
    for i in range(20):
        b = bytearray(data)
        for _ in range(8):
            pos = rnd.randrange(4096, len(b))
            b[pos] ^= 0xFF
        q = tmp_path / f"flip{i}.db"
        q.write_bytes(bytes(b))
        before = digest(q)
        try:
            Store(q).sessions()
        except (CorruptDatabaseError, NotOurDatabaseError):
            assert digest(q) == before


def test_unknown_session_names_the_ones_there_are(tmp_path):
    p = make_db(tmp_path)
    with pytest.raises(SessionNotFoundError, match="no session named 'nope'.*sessions here: s"):
        Store(p).session("nope")


def test_lock_refuses_a_second_holder_and_is_freed_by_death(tmp_path):
    p = make_db(tmp_path)
    with SessionLock(p, "s"):
        with pytest.raises(SessionLockedError, match=r"pid \d+"):
            SessionLock(p, "s").acquire()
        SessionLock(p, "other").acquire().release()  # other sessions are free
    # A process that dies holding the lock (kill -9) leaves nothing that blocks the next one.
    code = (
        "import os, sys; from tuitune.core.store.lock import SessionLock; "
        f"SessionLock({str(p)!r}, 's').acquire(); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    SessionLock(p, "s").acquire().release()


def test_reader_sees_rows_while_writer_writes(tmp_path):
    import threading

    store = Store(tmp_path / "rw.db")
    store.create_session("s", strategy="random", options={}, space={}, metric="m", direction="minimize",
                         seed=0, max_epochs=100, n_trials=1)
    t = store.new_trial("s", config={}, budget=100)
    counts = []

    def read():
        reader = Store(tmp_path / "rw.db")
        for _ in range(50):
            counts.append(len(reader.trial("s", t.number).epochs))

    th = threading.Thread(target=read)
    th.start()
    for e in range(1, 101):
        store.add_epoch("s", t.number, e, {"m": 1.0 / e})
    th.join()
    assert counts == sorted(counts) and store.integrity_check() == ["ok"]


def test_network_filesystem_warns_before_opening(tmp_path, monkeypatch):
    from tuitune.core.store import fs

    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/vda / ext4 rw 0 0\n"
        f"server:/export {tmp_path / 'nfs'} nfs4 rw,vers=4.2 0 0\n"
        f"//nas/share {tmp_path / 'smb'} cifs rw 0 0\n"
    )
    monkeypatch.setattr(fs, "MOUNTS", str(mounts))
    for sub, kind in (("nfs", "nfs4"), ("smb", "cifs")):
        (tmp_path / sub).mkdir()
        with pytest.warns(fs.NetworkFilesystemWarning, match=f"network filesystem \\({kind}\\)"):
            Store(tmp_path / sub / "t.db")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Store(tmp_path / "local.db")  # on ext4: no warning


def test_a_dropped_store_does_not_take_the_locks_of_the_live_one(tmp_path):
    """POSIX locks belong to the process: a Store dropped without close() must not leave connections
    behind for a later plain open() of the file to strip of their locks (then another process could
    checkpoint and delete the WAL under the live connection, and its close would undo their commits)."""
    import os
    from pathlib import Path

    locks = Path("/proc/locks")
    if not locks.exists():
        pytest.skip("needs Linux's /proc/locks")
    db = tmp_path / "t.db"
    Store(db).close()
    assert Store(db).sessions() == []  # a temporary, dropped without close()
    live = Store(db)
    live.sessions()
    ino = os.stat(db).st_ino
    mine = [line for line in locks.read_text().splitlines() if f" {os.getpid()} " in line and f":{ino} " in line]
    assert mine, "the live connection holds no lock on the database file"
    live.close()


@pytest.mark.parametrize("note", ["missing", "empty"])
def test_a_holder_that_has_not_written_its_name_reads_as_starting(tmp_path, monkeypatch, note):
    p = make_db(tmp_path)
    monkeypatch.setattr(SessionLock, "_write_holder", lambda self: None)  # the moment before it writes its name
    first = SessionLock(p, "s").acquire()
    try:
        first.path.unlink(missing_ok=True)
        if note == "empty":
            first.path.parent.mkdir(parents=True, exist_ok=True)
            first.path.write_text("")
        with pytest.raises(SessionLockedError) as info:
            SessionLock(p, "s").acquire()
        msg = str(info.value)
        assert "None" not in msg, msg
        if note == "empty":  # created, its name not written yet
            assert "another process is starting it" in msg, msg
        else:  # not written yet, or removed with <db>.d while the holder runs: the lock still says who runs it
            assert "being run by another process" in msg and "not written yet or was removed" in msg, msg
    finally:
        first.release()


def test_every_timestamp_written_comes_from_the_stores_clock(tmp_path):
    """``Store(path, clock=...)``: a test gives the time, no module is patched (issue 19)."""
    ticks = iter(range(1000, 2000))
    store = Store(tmp_path / "c.db", clock=lambda: float(next(ticks)))
    store.create_session("s", strategy="random", options={}, space={}, metric="m", direction="minimize",
                         seed=0, max_epochs=2, n_trials=1)
    t = store.new_trial("s", config={}, budget=2)
    store.add_epoch("s", t.number, 1, {"m": 0.5})
    store.finish_trial("s", t.number, state="complete", value=0.5)
    session, trial = store.session("s"), store.trial("s", t.number)
    stamps = [session.created, session.updated, trial.started, trial.finished, trial.updated]
    assert all(s is not None and 1000 <= s < 2000 for s in stamps), stamps
    assert store.meta()["created"] == "1000.0"  # the first tick: the schema's own timestamp
    store.close()


def test_the_store_keeps_the_storage_read_contract(tmp_path):
    """The UI types against StoreReads/StoreAccess; a Store has every method they name."""
    from tuitune.core.store.contract import StoreAccess, StoreReads

    store = Store(tmp_path / "r.db")
    for proto in (StoreReads, StoreAccess):
        names = [n for n in proto.__dict__ if not n.startswith("_")] + list(proto.__annotations__)
        assert names and all(hasattr(store, n) for n in names), [n for n in names if not hasattr(store, n)]
    store.close()
