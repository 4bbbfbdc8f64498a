"""Provides the engine's store: the SQLite database of sessions, trials and epoch rows, and the files beside it.

``Store`` (``from tuitune.core.store import Store``) is the one class users and tests open; it is
built from one module per idea: ``files`` (a file's identity, lock safety, the paths beside it),
``connection`` (connections, durable transactions, the clock), ``schema`` (tables and migrations),
``sessions`` (sessions, liveness, commands, notes), ``trials`` (trial and epoch writes),
``queries`` (the UI's reads, typed by ``contract.StoreReads``); ``export``, ``lock``, ``fs`` and
``safefs`` sit beside them. Loaded on first use, so that importing one of these modules does not
open the whole store.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "Store":
        from tuitune.core.store.store import Store

        return Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
