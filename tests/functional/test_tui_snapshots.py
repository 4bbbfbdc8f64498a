"""SVG snapshots of every screen at 80x24 and 120x40, from a database of fixed trials, times and values."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.tui import build_fixed_db, make_preset
from tuitune.core.store import Store
from tuitune.ui.app import TuituneApp

SIZES = [(80, 24), (120, 40)]


@pytest.fixture
def fixed(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.chdir(tmp_path)  # relative paths: the title shows the same database name on every run
    preset = make_preset(tmp_path, name="mine", epochs=6, module="snapshot_objective")
    db = Path("fixed.db")
    name = build_fixed_db(db, preset)
    monkeypatch.setattr("tuitune.ui.screens.new_session.new_session_name", lambda store: "calm-otter-1")
    yield Store(db), name, preset
    monkeypatch.undo()
    time.tzset()


def _app(store, preset) -> TuituneApp:
    return TuituneApp(store, preset_files=[preset.name], bundled_presets=False, probe_devices=False)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_home(snap_compare, fixed, size):
    store, _, preset = fixed
    assert snap_compare(_app(store, preset), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_home_empty(snap_compare, tmp_path, fixed, size):
    _, _, preset = fixed
    assert snap_compare(_app(Store("empty.db"), preset), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_new_session(snap_compare, fixed, size):
    store, _, preset = fixed
    assert snap_compare(_app(store, preset), press=["n"], terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_dashboard(snap_compare, fixed, size):
    store, _, preset = fixed
    assert snap_compare(_app(store, preset), press=["enter"], terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_dashboard_curves(snap_compare, fixed, size):
    store, _, preset = fixed
    assert snap_compare(_app(store, preset), press=["enter", "c"], terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_manual(snap_compare, fixed, size):
    store, _, preset = fixed
    assert snap_compare(_app(store, preset), press=["enter", "m"], terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_trial_detail_failed(snap_compare, fixed, size):
    store, _, preset = fixed
    # The leaderboard lists complete trials first; the failed trial 4 is the last row.
    assert snap_compare(_app(store, preset), press=["enter", *["down"] * 7, "enter"], terminal_size=size)
