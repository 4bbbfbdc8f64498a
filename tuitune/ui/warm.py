"""Provides WarmWorkers: the new-session form's worker processes, started while the user fills it in.

Between choosing a preset and pressing Start a user spends seconds; a worker spends them too, starting
(its interpreter, torch, the device's context, the dataset on the device, a first step). The form asks for
warm workers for its current choice (preset, seed, device, fuse); Start hands them to the session's Runner
when the session it makes has the same objective and worker slots (``launch.WarmPool.adopt``). A changed
choice closes the old workers first; leaving the form closes them. Every method may block for a moment
(processes start and end): the form calls them from threads, never from the event loop.
"""

from __future__ import annotations

import atexit
import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuitune.launch import Launch, WarmPool

log = logging.getLogger(__name__)


class WarmWorkers:
    """At most one set of warm workers, for the latest choice; closed for good by ``close``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # one start or close at a time
        self._warm: WarmPool | None = None
        self._choice: tuple[Any, ...] | None = None  # what the warm workers were started for
        self._wanted: tuple[Any, ...] | None = None  # the latest choice asked for (the latest wins)
        self._closed = False
        # The app may end with the form open (Ctrl+Q): its workers go too, their folder with them (before
        # multiprocessing's own exit handler, registered earlier, would only terminate them).
        atexit.register(self.close)

    @staticmethod
    def _key(choice: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(sorted((k, repr(v)) for k, v in choice.items()))

    def want(self, choice: dict[str, Any]) -> None:
        """Warm workers for ``choice`` (``launch.prewarm``'s arguments); those of an earlier choice are closed.
        A choice that cannot be warmed (a bad preset, the user's own objective) leaves none: Start says why."""
        from tuitune.launch import prewarm

        key = self._wanted = self._key(choice)
        with self._lock:
            if self._closed or self._wanted != key or (self._warm is not None and self._choice == key):
                return
            self._drop()
            try:
                warm = prewarm(**choice)
            except Exception:  # noqa: BLE001 - Start reports the same choice's error in its own words
                log.debug("no warm workers for %s", choice, exc_info=True)
                return
            if warm is not None and (self._closed or self._wanted != key):
                warm.close()  # asked for something else meanwhile
                return
            self._warm, self._choice = warm, key

    def adopt(self, launch: Launch) -> bool:
        """Hands the warm workers to ``launch`` when they fit it (else closes them); True when they did."""
        with self._lock:
            warm, self._warm, self._choice = self._warm, None, None
        return warm.adopt(launch) if warm is not None else False

    def close(self) -> None:
        """Closes the warm workers and takes no more (the form is gone)."""
        with self._lock:
            self._closed = True
            self._drop()
        atexit.unregister(self.close)

    def _drop(self) -> None:
        warm, self._warm, self._choice = self._warm, None, None
        if warm is not None:
            warm.close()

    @property
    def pids(self) -> list[int]:
        """The warm workers' process ids (none: none are warm)."""
        warm = self._warm
        return warm.pids if warm is not None else []
