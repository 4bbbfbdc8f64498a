"""Provides where the database is by default: ``$TUITUNE_DB``, else the user's data folder.

Its own module so that the wording of a printed command (``text.db_option``) knows the default
without importing the store.
"""

from __future__ import annotations

import os
from pathlib import Path


def default_db_path() -> Path:
    """``$TUITUNE_DB``, else the platform's user data directory (``~/.local/share/tuitune/tuitune.db``)."""
    env = os.environ.get("TUITUNE_DB")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("tuitune", appauthor=False)) / "tuitune.db"
