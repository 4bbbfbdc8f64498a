"""The wheel's contents as pyproject.toml lists them: every package, and the presets from presets/."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent.parent


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_folder_is_listed():
    """pyproject lists the packages (presets/ is mapped in): a new package folder must be added there."""
    found = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "tuitune").rglob("__init__.py")
    }
    listed = set(_setuptools()["packages"])
    assert found <= listed, sorted(found - listed)


def test_presets_ship_from_the_top_level_folder():
    conf = _setuptools()
    assert conf["package-dir"]["tuitune.presets"] == "presets"
    assert conf["package-data"]["tuitune.presets"] == ["*.toml"]
    assert sorted((ROOT / "presets").glob("*.toml")) and not (ROOT / "tuitune" / "presets").exists()
