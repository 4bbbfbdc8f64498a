"""Provides TuituneError and its subclasses: every error a user can cause has one.

Each message says what was wrong (naming the file, key, parameter or value) and what to do.
The command line prints ``str(error)`` on one line; the TUI shows it as a notification.
"""

from __future__ import annotations


def first_line(e: BaseException) -> str:
    """The first line of an exception's message ("" when it has none)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


def reason_of(e: BaseException) -> str:
    """An exception as a trial's reason: ``"ValueError: the first line"``, or the type's name alone."""
    msg = first_line(e)
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


class TuituneError(Exception):
    """Base class of every error a user of tuitune can cause."""


class SpaceError(TuituneError, ValueError):
    """An invalid search space, or a value that does not belong to it."""


class StrategyError(TuituneError, ValueError):
    """An unknown strategy, a bad strategy option, or a request the strategy refuses.

    ``cli_message``, when given, is the same error worded for the command line (its flags in place of
    the Python option names); the command line prints it instead.
    """

    def __init__(self, message: str = "", *, cli_message: str | None = None) -> None:
        super().__init__(message)
        self.cli_message = cli_message


class ManualError(StrategyError):
    """A manual run that does not change exactly one parameter (or none) from its base."""


class StoreError(TuituneError):
    """A problem with the database file."""


class StoreWriteError(StoreError):
    """The database could not be written (disk full, I/O error, read-only file)."""


class NotOurDatabaseError(StoreError):
    """The file is not a tuitune database (not SQLite, or another program's SQLite file)."""


class CorruptDatabaseError(StoreError):
    """The file is a damaged SQLite database."""


class NewerDatabaseError(StoreError):
    """The file was written by a newer tuitune with a schema this version does not know."""


class SessionError(TuituneError):
    """A problem with a session: unknown, already existing, or owned by another process."""


class SessionNotFoundError(SessionError, KeyError):
    """No session of that name in the database."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class SessionExistsError(SessionError):
    """A new session was asked for under a name that exists with other settings."""


class SessionLockedError(SessionError):
    """Another live process is running this session."""


class PresetError(TuituneError):
    """A malformed preset TOML file, or one naming code that cannot be loaded."""


class ObjectiveError(TuituneError):
    """The user's objective could not be used (wrong signature, nothing reported, ...)."""


class SetupError(TuituneError):
    """A problem no trial can get past (a missing dataset, an unavailable device).

    Raised by an objective, it stops the session at once instead of failing trial after trial:
    the trial is left ``interrupted`` and runs again on resume, once the problem is fixed.
    """


class TooManyFailuresError(TuituneError):
    """The session stopped because too many trials in a row failed."""


class ExportError(TuituneError):
    """An export that cannot be written (no complete trial, unwritable path, ...)."""
