"""A hostile or careless local user (issue 23): aliases of the database, names read back as paths, folders
and files planted by another user, special export targets, a full disk, forking objectives.

"Another user" is ``nobody``: a test running as root gives it files with ``os.chown`` (what that user
would have made), and skips where it cannot.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.project import TESTS, Project, Result, pid_alive, wait_until
from tuitune.core.errors import SessionError, SessionLockedError
from tuitune.core.run.trial import load_checkpoint, save_checkpoint
from tuitune.core.store.lock import SessionLock
from tuitune.core.store.safefs import UnsafePathError, check_name
from tuitune.core.store.store import Store, files_dir
from tuitune.core.text import printable


class HostileProject(Project):
    objectives = TESTS / "reliability" / "_hostile_objectives.py"
    default_space = {"x": {"type": "float", "low": 0.0, "high": 1.0}}
    default_defaults = {"x": 0.5}
    default_objective = "_hostile_objectives:quick"
    default_name = None


@pytest.fixture
def hp(tmp_path: Path) -> HostileProject:
    return HostileProject(tmp_path)


def nobody() -> tuple[int, int]:
    if os.geteuid() != 0:
        pytest.skip("needs root to give files to another user")
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' here")
    return pw.pw_uid, pw.pw_gid


def finished(hp: HostileProject, name: str = "s", trials: int = 1) -> None:
    hp.cli("run", hp.toml("q.toml").name, "--trials", trials, "--session", name, "--headless").ok()


# ---- 1. one owner per session, whatever path names the database --------------------------------------------
def test_one_owner_through_a_symlink_and_after_the_folder_is_deleted(tmp_path):
    db = tmp_path / "t.db"
    Store(db).close()
    alias = tmp_path / "alias.db"
    alias.symlink_to(db.name)
    code = ("import sys; from tuitune.core.store.lock import SessionLock; SessionLock(sys.argv[1], 's').acquire(); "
            "print('held', flush=True); sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", code, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"held\n"
        with pytest.raises(SessionLockedError, match=r"another process \(pid \d+"):
            SessionLock(alias, "s").acquire()
        shutil.rmtree(files_dir(db))  # the lock note goes; the lock itself does not
        with pytest.raises(SessionLockedError):
            SessionLock(db, "s").acquire()
        with pytest.raises(SessionLockedError):
            SessionLock(alias, "s").acquire()
    finally:
        child.stdin.close()
        child.wait(timeout=30)
    SessionLock(alias, "s").acquire().release()  # freed when its holder ended


def test_resume_through_a_symlink_is_refused_while_the_session_runs(hp):
    log = hp.root / "e.log"
    toml = hp.toml("q.toml", defaults={"epoch_s": 0.3, "log": str(log)}, max_epochs=40)
    bg = hp.popen("run", toml.name, "--trials", 1, "--session", "s", "--headless", tag="run")
    try:
        wait_until(lambda: log.exists() and log.read_text().strip(), what="a committed epoch")
        alias = hp.root / "alias.db"
        alias.symlink_to(hp.db.name)
        r = subprocess.run(
            [*hp.args("--db", str(alias), "resume", "s", "--headless", db=False)], cwd=hp.root, env=hp.env,
            capture_output=True, text=True, timeout=120,
        )
        Result(r.returncode, r.stdout, r.stderr).assert_user_error("being run by another process")
        shutil.rmtree(hp.root / "runs.db.d")
        r2 = hp.cli("resume", "s", "--headless")
        r2.assert_user_error("being run by another process")
    finally:
        bg.kill()
    assert [t["number"] for t in hp.trials("s")] == [0]  # one trial, run once


# ---- 2. names read back from the database ----------------------------------------------------------------
def test_a_name_is_one_whole_match():
    for bad in ["abc\n", "../../victim", "a/b", "", ".", "-x", "a" * 65, "abc\nx"]:
        with pytest.raises(SessionError):
            check_name(bad)
    assert check_name("swift-otter-42") == "swift-otter-42"


def test_a_session_renamed_to_a_path_in_the_database_touches_nothing_outside(hp):
    finished(hp)
    victim = hp.root / "victim"
    victim.mkdir()
    (victim / "keep.pt").write_bytes(b"precious")
    (victim / ".0.pt.1.tmp").write_bytes(b"precious")
    c = sqlite3.connect(hp.db)
    c.execute("UPDATE sessions SET name = '../../../victim'")
    c.commit()
    c.close()
    for args in (("resume", "../../../victim", "--headless", "--trials", 1), ("show", "../../../victim", "--log", 0)):
        hp.cli(*args).assert_user_error("not allowed")
    assert sorted(p.name for p in victim.iterdir()) == [".0.pt.1.tmp", "keep.pt"]
    assert (victim / "keep.pt").read_bytes() == b"precious"


def test_a_name_with_a_final_newline_is_refused_on_the_command_line(hp):
    hp.cli("run", hp.toml("q.toml").name, "--session", "abc\n", "--headless").assert_user_error("not allowed")


# ---- 3. folders and files made by someone else -----------------------------------------------------------
def test_a_files_folder_made_by_another_user_is_refused(hp):
    uid, gid = nobody()
    precious = hp.root / "precious.txt"
    precious.write_text("precious\n")
    d = hp.root / "runs.db.d"
    (d / "locks").mkdir(parents=True)
    (d / "locks" / "s.lock").symlink_to(precious)
    for p in (d, d / "locks"):
        os.chown(p, uid, gid)
        p.chmod(0o777)
    r = hp.cli("run", hp.toml("q.toml").name, "--trials", 1, "--session", "s", "--headless")
    r.assert_user_error("runs.db.d", "belongs to nobody")
    assert precious.read_text() == "precious\n"


def test_a_symlink_planted_in_our_own_folder_is_never_written_through(hp):
    finished(hp, "s", trials=1)
    other = hp.root / "other.txt"
    other.write_text("other\n")
    logs = hp.root / "runs.db.d" / "logs" / "s"
    for n in range(1, 4):
        (logs / f"{n}.log").unlink(missing_ok=True)
        (logs / f"{n}.log").symlink_to(other)
    (hp.root / "runs.db.d" / "locks" / "s.lock").unlink()
    (hp.root / "runs.db.d" / "locks" / "s.lock").symlink_to(other)
    r = hp.cli("resume", "s", "--trials", 1, "--headless")
    assert other.read_text() == "other\n"
    r.assert_user_error("symlink")


def test_a_group_or_world_writable_files_folder_is_refused(hp):
    finished(hp)
    d = hp.root / "runs.db.d" / "logs"
    d.chmod(0o777)
    r = hp.cli("resume", "s", "--trials", 1, "--headless")
    line = r.assert_user_error("can be written by other users", "chmod go-w")
    d.chmod(0o755)
    hp.cli("resume", "s", "--trials", 1, "--headless").ok()
    assert "chmod go-w" in line


# ---- 4. a database made by another user ------------------------------------------------------------------
def test_a_database_of_another_user_is_refused_before_it_is_read(hp):
    uid, gid = nobody()
    finished(hp)
    os.chown(hp.db, uid, gid)
    hp.db.chmod(0o666)
    for args in (("resume", "s", "--trials", 1, "--headless"), ("show", "s")):
        hp.cli(*args).assert_user_error("runs.db", "belongs to nobody")
    os.chown(hp.db, 0, 0)
    hp.cli("show", "s").assert_user_error("can be written by other users")
    hp.db.chmod(0o644)
    hp.cli("show", "s").ok()
    hp.root.chmod(0o777)  # anyone could swap the database or its folder
    hp.cli("show", "s").assert_user_error("can be written by every user", "not sticky")
    hp.cli("--db", str(hp.root / "new.db"), "run", "q.toml", "--headless", db=False).assert_user_error("not sticky")
    assert not (hp.root / "new.db").exists()
    hp.root.chmod(0o1777)  # as /tmp: only the owner renames
    hp.cli("show", "s").ok()
    hp.root.chmod(0o700)


def test_a_stored_objective_is_checked_again_before_it_runs(hp):
    finished(hp)
    c = sqlite3.connect(hp.db)
    preset = json.loads(c.execute("SELECT preset FROM sessions").fetchone()[0])
    for bad_objective, bad_path in (("os.system; x:y", preset["path"]), (preset["objective"], "evil/rel.toml")):
        c.execute("UPDATE sessions SET preset = ?",
                  (json.dumps({**preset, "objective": bad_objective, "path": bad_path}),))
        c.commit()
        hp.cli("resume", "s", "--trials", 1, "--headless").assert_user_error("objective" if bad_path == preset["path"] else "path")
    c.close()


# ---- 5. export -o ----------------------------------------------------------------------------------------
def test_export_to_standard_output_and_a_fifo_writes_them_directly(hp):
    finished(hp)
    r = hp.cli("export", "s", "-o", "-").ok()
    assert json.loads(r.out)["session"] == "s"
    r = hp.cli("export", "s", "-o", "/dev/stdout").ok()
    assert json.loads(r.out)["session"] == "s"
    assert os.path.islink("/dev/stdout") or not os.path.isfile("/dev/stdout")
    fifo = hp.root / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    hp.cli("export", "s", "-o", str(fifo)).ok()
    reader.join(timeout=60)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert json.loads(got[0])["session"] == "s"


def test_export_over_an_existing_file_keeps_its_mode_and_owner(hp):
    finished(hp)
    out = hp.root / "best.json"
    out.write_text("{}")
    out.chmod(0o640)
    owner = None
    if os.geteuid() == 0:
        owner = nobody()
        os.chown(out, *owner)
    hp.cli("export", "s", "-o", str(out)).ok()
    st = out.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    if owner:
        assert (st.st_uid, st.st_gid) == owner
    assert json.loads(out.read_text())["session"] == "s"


# ---- 6. a full disk during a checkpoint ------------------------------------------------------------------
@pytest.mark.parametrize(
    "where",
    [("--workers", "1"), pytest.param(("--in-process",), marks=pytest.mark.slow)],  # the same path in-process: -m slow
    ids=["worker", "in-process"],
)
def test_a_full_disk_during_a_checkpoint_stops_cleanly_and_resumes(hp, where):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    mnt = hp.root / "runs.db.d" / "checkpoints"
    mnt.mkdir(parents=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        filler = mnt / "filler"
        filler.write_bytes(b"\0" * (1024 - 160) * 1024)  # leaves ~160 KiB: one 256 KiB checkpoint does not fit
        toml = hp.toml("c.toml", objective="_hostile_objectives:checkpointing", defaults={"kb": 256}, max_epochs=2)
        r = hp.cli("run", toml.name, "--trials", 3, "--session", "full", "--headless", *where)
        line = r.assert_user_error("no space left on", str(mnt))
        assert r.rc == 2, line
        states = {t["state"] for t in hp.trials("full")}
        assert "failed" not in states and "complete" not in states, hp.trials("full")
        filler.unlink()
        hp.cli("resume", "full", "--headless").ok()
        assert [t["state"] for t in hp.trials("full")] == ["complete"] * 3
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


# ---- 7. forked grandchildren -----------------------------------------------------------------------------
def _pids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def test_a_worker_that_forks_and_dies_is_seen_at_once_and_its_child_ended(hp):
    pidfile = hp.root / "pids"
    toml = hp.toml("f.toml", objective="_hostile_objectives:fork_and_die", defaults={"pidfile": str(pidfile)})
    t0 = time.monotonic()
    r = hp.cli("run", toml.name, "--trials", 1, "--max-failures", 1, "--session", "f", "--headless", "--workers", 1,
               timeout=100)
    took = time.monotonic() - t0
    assert r.rc != 0 or hp.trials("f")[0]["state"] == "failed"
    assert hp.trials("f")[0]["state"] == "failed", hp.trials("f")
    assert "exit code 7" in hp.trials("f")[0]["reason"]
    assert took < 60, f"the session waited for the grandchild ({took:.0f} s)"
    assert _pids(pidfile)
    wait_until(lambda: not any(pid_alive(p) for p in _pids(pidfile)), timeout=30, what="the grandchild ended")


def test_a_trials_forked_children_do_not_outlive_the_session(hp):
    pidfile = hp.root / "pids"
    toml = hp.toml("f.toml", objective="_hostile_objectives:fork_and_finish", defaults={"pidfile": str(pidfile)})
    hp.cli("run", toml.name, "--trials", 2, "--session", "g", "--headless", "--workers", 1, timeout=100).ok()
    assert len(_pids(pidfile)) == 2
    wait_until(lambda: not any(pid_alive(p) for p in _pids(pidfile)), timeout=30, what="the children ended")


# ---- minors ----------------------------------------------------------------------------------------------
def test_detach_does_not_import_modules_from_the_current_folder(hp):
    marker = hp.root / "planted-ran"
    (hp.root / "sqlite3.py").write_text(f"open({str(marker)!r}, 'w').close()\nraise SystemExit('planted')\n")
    r = hp.cli("run", hp.toml("q.toml").name, "--trials", 1, "--session", "d", "--detach").ok()
    assert "runs in the background" in r.out
    wait_until(lambda: hp.session_exists("d") and [t["state"] for t in hp.trials("d")] == ["complete"],
               timeout=120, what="the detached session to finish")
    assert not marker.exists()


def test_a_checkpoint_is_checked_after_unpickling(tmp_path):
    pytest.importorskip("torch")
    p = tmp_path / "3.pt"
    cfg = {"x": 0.5}
    save_checkpoint(p, 2, {"w": 1}, 3, cfg)
    assert load_checkpoint(p, 3, 5, cfg) == (2, {"w": 1})
    assert load_checkpoint(p, 4, 5, cfg) is None  # another trial's
    assert load_checkpoint(p, 3, 5, {"x": 0.6}) is None  # another config's
    assert load_checkpoint(p, 3, 1, cfg) is None  # past the budget
    import torch

    for blob in ({"epoch": -5, "state": {}, "trial": 3, "config": cfg}, {"epoch": 1, "state": [1], "trial": 3, "config": cfg},
                 {"epoch": True, "state": {}, "trial": 3, "config": cfg}, [1, 2]):
        torch.save(blob, p)
        assert load_checkpoint(p, 3, 5, cfg) is None, blob
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")  # the temp file a checkpoint is written to first
    tmp.symlink_to(tmp_path / "elsewhere.pt")
    with pytest.raises(UnsafePathError):
        save_checkpoint(p, 1, {}, 3, cfg)
    assert not (tmp_path / "elsewhere.pt").exists()


def test_a_deeply_nested_toml_is_one_line(hp):
    bad = hp.root / "deep.toml"
    bad.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    hp.cli("run", bad.name, "--headless").assert_user_error("deep.toml", "nested too deeply")


@pytest.mark.parametrize("flag", [("--seed", "99999999999999999999999"), ("--trial-timeout", "-5"),
                                  ("--trial-timeout", "nan"), ("--seed", "-1")])
def test_bad_numbers_are_one_line(hp, flag):
    r = hp.cli("run", hp.toml("q.toml").name, *flag, "--headless")
    assert r.rc == 2 and "Traceback" not in r.err and flag[0] in r.err, r.err


def test_show_strips_escape_sequences_from_user_text(hp):
    finished(hp)
    evil = "hi\x1b]0;owned\x07\x1b[2J\x1b[31mred\x9b1m\x00end"
    c = sqlite3.connect(hp.db)
    c.execute("UPDATE sessions SET note = ?, message = ?", (evil, evil))
    c.execute("UPDATE trials SET note = ?", (evil,))
    c.commit()
    c.close()
    out = hp.cli("show", "s").ok().out
    assert "\x1b" not in out and "\x9b" not in out and "\x07" not in out and "\x00" not in out
    assert "hiredend" in out.replace("\n", "")
    assert printable("a\tb\nc\x1b[1;31md") == "a\tb\ncd"
    c = sqlite3.connect(hp.db)
    c.execute("UPDATE sessions SET name = ?", ("x\x1b]0;owned\x07\x1b[2Jy[bold]z",))
    c.commit()
    c.close()
    out = hp.cli("sessions").ok().out
    assert "\x1b" not in out and "\x07" not in out and "xy[bold]z" in out


def test_no_heartbeat_traceback_before_the_one_line_error(tmp_path, caplog):
    """A database that refuses writes at the end of a run: the heartbeat's clearing fails quietly."""
    import logging

    import tuitune as tt
    from tuitune.core.errors import StoreWriteError

    store = Store(tmp_path / "h.db")
    real = store.heartbeat

    def heartbeat(name, owner=None, *, alive=True):
        if not alive:
            raise StoreWriteError(f"could not write to {store.path}: database or disk is full")
        return real(name, owner, alive=alive)

    store.heartbeat = heartbeat  # type: ignore[method-assign]

    def objective(config, trial):
        for _ in trial.epochs():
            trial.report(val_loss=config["x"])

    with caplog.at_level(logging.DEBUG, logger="tuitune"):
        tt.tune(objective, tt.Space(x=tt.Float(0, 1)), trials=1, db=store, session="s", workers=0)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_the_ray_folder_is_private_and_never_another_users(tmp_path):
    from tuitune.core.store.safefs import private_dir

    mine = tmp_path / "tuitune-ray-0"
    assert stat.S_IMODE(os.lstat(private_dir(mine)).st_mode) == 0o700
    mine.chmod(0o777)
    assert stat.S_IMODE(os.lstat(private_dir(mine)).st_mode) == 0o700
    link = tmp_path / "link"
    link.symlink_to(mine)
    with pytest.raises(UnsafePathError, match="symlink"):
        private_dir(link)
    uid, gid = nobody()
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o777)
    os.chown(theirs, uid, gid)
    with pytest.raises(UnsafePathError, match="belongs to nobody"):
        private_dir(theirs)


def test_the_local_ray_token_is_made_private(tmp_path, monkeypatch):
    from tuitune.core.run.ray_backend import _private_token

    token = tmp_path / ".ray" / "auth_token"
    token.parent.mkdir()
    token.write_text("secret")
    token.chmod(0o644)
    monkeypatch.setenv("HOME", str(tmp_path))
    _private_token()
    assert stat.S_IMODE(token.stat().st_mode) == 0o600


def test_a_stopped_coordinator_does_not_count_its_own_pause_against_the_ray_head(monkeypatch):
    """SIGSTOP of the coordinator for 20 s: its own pause is not the head's silence."""
    from tuitune.core.run import ray_backend

    now = [1000.0]
    monkeypatch.setattr(ray_backend.time, "monotonic", lambda: now[0])
    pool = ray_backend.RayPool.__new__(ray_backend.RayPool)
    pool._alive_at = pool._checked_at = now[0]
    pool._probing, pool._lost, pool.address = True, False, None  # no probe thread: the head never answers
    now[0] += 20.0  # stopped for 20 s
    pool._probe()  # not lost: the coordinator was not running
    for _ in range(int(ray_backend.LOST_AFTER_S) + 2):
        now[0] += 1.0
        try:
            pool._probe()
        except ray_backend.ClusterLostError as e:
            assert "has not answered" in str(e)
            break
    else:
        pytest.fail("a head that does not answer while the coordinator runs is still lost")


def test_a_read_only_database_is_one_line_at_the_lock(tmp_path, monkeypatch):
    from tuitune.core.errors import StoreWriteError
    from tuitune.core.store import lock as lock_mod

    db = tmp_path / "ro.db"
    Store(db).close()
    real_open = os.open

    def fake_open(path, flags, *a, **k):
        if str(path) == str(db.resolve()) and flags & os.O_RDWR:
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(lock_mod.os, "open", fake_open)
    monkeypatch.setattr(lock_mod, "_DB_FDS", {})
    with pytest.raises(StoreWriteError, match="read-only for you"):
        SessionLock(db, "s").acquire()


def test_without_ofd_locks_the_lock_file_is_flocked(tmp_path, monkeypatch):
    from tuitune.core.store import lock as lock_mod

    db = tmp_path / "t.db"
    Store(db).close()
    code = ("import sys; import tuitune.core.store.lock as l; l._OFD = False; l.SessionLock(sys.argv[1], 's').acquire(); "
            "print('held', flush=True); sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", code, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    monkeypatch.setattr(lock_mod, "_OFD", False)
    try:
        assert child.stdout.readline() == b"held\n"
        with pytest.raises(SessionLockedError, match=r"pid \d+"):
            SessionLock(db, "s").acquire()
    finally:
        child.stdin.close()
        child.wait(timeout=30)
    SessionLock(db, "s").acquire().release()


def test_the_logs_kept_for_reading_are_never_written_through_a_symlink_and_never_stop_a_run(tmp_path):
    """The session's log, a worker's log and the notes in a trial's log (arrays, a worker's first job) open as
    every file tuitune writes: a symlink planted at one is passed over, and the run goes on."""
    from tuitune.core.run.startclock import StartClock
    from tuitune.core.store.files import SessionFiles
    from tuitune.core.store.safefs import append_line

    other = tmp_path / "other.txt"
    other.write_text("other\n")
    plain = tmp_path / "plain.log"
    assert append_line(plain, "one") and append_line(plain, "two")
    assert plain.read_text() == "one\ntwo\n"
    planted = tmp_path / "planted.log"
    planted.symlink_to(other)
    assert append_line(planted, "through?") is False
    files = SessionFiles(tmp_path / "runs.db", "s")
    files.logs.mkdir(parents=True)
    files.session_log.symlink_to(other)
    files.note("a packing decision")  # no error: the log is for reading
    worker_log = tmp_path / "worker-0.log"
    worker_log.symlink_to(other)
    clock = StartClock(str(worker_log), time.time())
    clock.said_ready({"ready": 0.1})
    clock.job(str(planted))
    clock.first_epoch()
    assert other.read_text() == "other\n"
