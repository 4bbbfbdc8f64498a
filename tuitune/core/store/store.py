"""Provides the SQLite store: every SQL statement of tuitune lives in this package.

One file holds sessions, trials and epoch rows. The file carries an application id and a schema
version; a file that is not ours, is corrupt, or comes from a newer tuitune is refused before
anything is written to it. WAL mode, one connection per thread, one commit per epoch row.
Epoch rows are never deleted: when a trial restarts from an earlier point, the rows after that point
are marked superseded and kept.
"""

from __future__ import annotations

from tuitune.core.store.connection import DURABLE_EVERY  # noqa: F401 - re-exported
from tuitune.core.store.contract import StoreAccess, StoreReads
from tuitune.core.store.files import (  # noqa: F401 - re-exported
    APPLICATION_ID,
    SCHEMA_VERSION,
    SQLITE_MAGIC,
    SessionFiles,
    check_file,
    default_db_path,
    files_dir,
    session_dir,
    session_path,
)
from tuitune.core.store.queries import QueryStore
from tuitune.core.store.schema import MIGRATIONS  # noqa: F401 - re-exported
from tuitune.core.store.sessions import COMMANDS  # noqa: F401 - re-exported


class Store(QueryStore):
    """The database of one file.

    Thread-safe: each thread gets its own connection. Snapshots returned (records) never change.

    Args:
        path: the database file; created with the schema when it does not exist.
        create: when False, a missing file is an error instead of being created.
        clock: what every timestamp written comes from (``time.time``; a test gives its own).
    """


def _reads(store: Store) -> StoreReads:
    return store  # mypy checks here that a Store keeps the storage read contract


def _access(store: Store) -> StoreAccess:
    return store
