"""Files that are not ours, damaged copies, and schema upgrades (golden databases kept in tests/data)."""

from __future__ import annotations

import hashlib
import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from tuitune.core.errors import TuituneError
from tuitune.core.store import files as files_mod
from tuitune.core.store import schema as schema_mod
from tuitune.core.store.store import SCHEMA_VERSION, Store

DATA = Path(__file__).parent.parent / "data"
GOLDEN = {1: DATA / "golden-schema1.db", 2: DATA / "golden-schema2.db"}


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def table_dump(path: Path) -> dict[str, list[tuple]]:
    c = sqlite3.connect(path)
    try:
        return {t: c.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in ("sessions", "trials", "epochs")}
    finally:
        c.close()


def test_golden_of_every_released_schema_is_there():
    assert set(GOLDEN) == set(range(1, SCHEMA_VERSION + 1)), "keep a golden database of each schema version"


@pytest.mark.parametrize("version", sorted(GOLDEN))
def test_golden_opens_with_everything_kept(tmp_path, version):
    p = tmp_path / "g.db"
    shutil.copy(GOLDEN[version], p)
    before = table_dump(p)
    s = Store(p)
    assert s.schema_version() == SCHEMA_VERSION
    assert s.upgrade() is None  # a second upgrade is a no-op
    names = {r.name for r in s.sessions()}
    assert names == {"golden-random", "golden-hb"}
    trials = s.trials("golden-random")
    assert len(trials) == 6 and {t.state.value for t in trials} <= {"complete", "failed"}
    assert sum(len(t.epochs) for t in s.trials("golden-hb")) > 0
    s.close()
    after = table_dump(p)
    for table in ("sessions", "trials", "epochs"):
        # Columns a later schema added come last and start empty; every old value is kept.
        assert [r[: len(b)] for r, b in zip(after[table], before[table])] == before[table]
        assert len(after[table]) == len(before[table])
        assert all(v is None for r, b in zip(after[table], before[table]) for v in r[len(b):])


def test_upgrade_machinery_backs_up_and_keeps_rows(tmp_path, monkeypatch):
    """A pretend next schema (one new column) run over the golden file of the newest one."""
    last = max(GOLDEN)
    p = tmp_path / "g.db"
    shutil.copy(GOLDEN[last], p)
    before = table_dump(p)

    def add_column(c):
        c.execute("ALTER TABLE trials ADD COLUMN pretend TEXT")

    # The file check (files) and the upgrade (schema) each know the version this tuitune writes.
    monkeypatch.setattr(files_mod, "SCHEMA_VERSION", last + 1)
    monkeypatch.setattr(schema_mod, "SCHEMA_VERSION", last + 1)
    monkeypatch.setattr(schema_mod, "MIGRATIONS", {**schema_mod.MIGRATIONS, last: add_column})
    s = Store(p)
    assert s.schema_version() == last + 1
    backup = p.with_name(f"g.db.v{last}.bak")
    assert backup.exists() and table_dump(backup) == before
    after = table_dump(p)
    assert after["epochs"] == before["epochs"] and after["sessions"] == before["sessions"]
    assert [r[:-1] for r in after["trials"]] == before["trials"] and all(r[-1] is None for r in after["trials"])
    assert s.upgrade() is None
    s.close()
    Store(p).close()  # opening again is a no-op too
    assert not p.with_name(f"g.db.v{last}.2.bak").exists()


def test_upgrade_never_writes_its_backup_through_a_planted_symlink(tmp_path, monkeypatch):
    """A symlink planted at the backup's name (dangling: sqlite would create its target) is passed over."""
    last = max(GOLDEN)
    p = tmp_path / "g.db"
    shutil.copy(GOLDEN[last], p)
    before = table_dump(p)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "victim.db"
    p.with_name(f"g.db.v{last}.bak").symlink_to(target)
    monkeypatch.setattr(files_mod, "SCHEMA_VERSION", last + 1)
    monkeypatch.setattr(schema_mod, "SCHEMA_VERSION", last + 1)
    monkeypatch.setattr(schema_mod, "MIGRATIONS", {**schema_mod.MIGRATIONS, last: lambda c: None})
    Store(p).close()
    assert not target.exists()
    backup = p.with_name(f"g.db.v{last}.2.bak")
    assert not backup.is_symlink() and table_dump(backup) == before


def test_a_hundred_byte_flipped_copies(tmp_path):
    """Each damaged copy is refused with a clear error and left byte-for-byte unchanged, or, where
    the flips hit unused bytes, opens and reads without an uncaught exception."""
    data = GOLDEN[1].read_bytes()
    rnd = random.Random(1234)
    refused = 0
    for i in range(100):
        b = bytearray(data)
        for _ in range(rnd.choice([1, 4, 16])):
            pos = rnd.randrange(len(b))
            b[pos] ^= 1 << rnd.randrange(8)
        q = tmp_path / f"flip{i}.db"
        q.write_bytes(bytes(b))
        before = digest(q)
        try:
            s = Store(q)
            for r in s.sessions():
                s.trials(r.name)
            s.close()
        except TuituneError as e:
            refused += 1
            assert str(q) in str(e) or "session" in str(e)
            assert digest(q) == before, f"copy {i} was modified"
    assert refused >= 30  # most flips land in pages SQLite checks


def test_no_unsafe_deserialisation_anywhere():
    """No pickle.load and no torch.load without weights_only=True in the package.

    One exception, by design: a worker process unpickles the objective's reference that its own
    coordinator sent it over a private pipe (multiprocessing pickles every argument anyway); nothing
    read from a file or the network is ever unpickled.
    """
    import re

    allowed = {("core/run/workers.py", "pickle.loads(ref_blob)")}

    root = Path(__file__).parent.parent.parent / "tuitune"
    bad = []
    for f in root.rglob("*.py"):
        text = f.read_text()
        for m in re.finditer(r"pickle\.loads?\(|torch\.load\(([^)]*)\)", text):
            where = str(f.relative_to(root))
            if (where, text[m.start() : m.start() + len("pickle.loads(ref_blob)")]) in allowed:
                continue
            if m.group(0).startswith("pickle") or "weights_only=True" not in (m.group(1) or ""):
                bad.append(f"{where}: {m.group(0)[:60]}")
    assert not bad, bad
