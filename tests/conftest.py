"""Test-suite options shared by unit and functional tests.

Tests marked ``slow`` (kill -9 soaks, fuzzing) are skipped unless selected with ``-m slow`` (or any
``-m`` expression naming them) or ``--runslow``; the plain ``pytest -q -n 2`` of CI stays quick.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow") or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow (or --runslow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
