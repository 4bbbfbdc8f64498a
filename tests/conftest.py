"""Test-suite options shared by unit and functional tests.

Tests marked ``slow`` (kill -9 soaks, fuzzing) are skipped unless selected with ``-m slow`` (or any
``-m`` expression naming them) or ``--runslow``; the plain ``pytest -q -n 4`` of CI stays quick.

``--workers N`` (or ``TUITUNE_TEST_WORKERS=N``) runs the sessions that the reliability and kill tests start
through the command line with N worker processes (default 1): ``pytest tests/reliability --workers 2``.
"""

from __future__ import annotations

import os

import pytest

from tests.support.project import WORKERS_ENV


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")
    parser.addoption("--workers", type=int, default=None, metavar="N",
                     help=f"worker processes of the sessions the reliability tests start (default: ${WORKERS_ENV} or 1)")


def pytest_configure(config: pytest.Config) -> None:
    n = config.getoption("--workers")
    if n is not None:
        if n < 1:
            raise pytest.UsageError(f"--workers {n}: give a whole number >= 1")
        os.environ[WORKERS_ENV] = str(n)  # read by tests.support.project (xdist's workers configure too)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow") or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow (or --runslow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def one_torch_thread():
    """CI runs two test workers on two cores: two torch threads each would oversubscribe them (spin-waits
    make tiny models 10-100x slower), so a test that trains in this process uses one. Modules that train
    take it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
