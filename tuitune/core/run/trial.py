"""Provides the Trial handle an objective receives: epochs(), report(), checkpoint(), restore().

Every ``report`` is one committed epoch row before it returns. ``epochs()`` is where the runner's
commands (pause, stop, abort, the time limit) take effect, between epochs. Checkpoints are written
atomically (temp file, rename; no fsync, see ``save_checkpoint``) in torch's format and read back with
``weights_only=True``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from tuitune.core.errors import ObjectiveError
from tuitune.core.records import TrialRecord
from tuitune.core.store.safefs import DiskFullError, is_disk_full, no_space, open_private


class TrialHost(Protocol):
    """What a Trial talks to: the Runner in its own thread, or the pipe to the coordinator in a worker."""

    def _between_epochs(self, trial: Trial) -> bool: ...

    def _report(self, trial: Trial, epoch: int, metrics: dict[str, float]) -> None: ...

    def _supersede(self, number: int, after: int) -> None: ...


class TrialFailed(Exception):
    """Ends a trial as failed with a reason (a NaN or infinite metric, a time limit)."""

    def __init__(self, reason: str, trace: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.trace = trace  # a traceback from elsewhere (the thread that failed), else None


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ObjectiveError(f"metric '{name}' is a boolean ({value}); report numbers")
    try:
        return float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError):
        raise ObjectiveError(f"metric '{name}' = {value!r} is not a number; report numbers") from None


def plain_return(value: Any) -> Any:
    """What an objective returned, as the Runner judges it: a float, None, or ``{"bad": description}``
    (a bool, a string, a tensor of many elements: the trial fails, saying what it was)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return {"bad": f"bool {value!r}"}
    if isinstance(value, (int, float)):
        return float(value)
    if hasattr(value, "item"):
        try:
            v = value.item()
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
        except Exception:  # noqa: BLE001 - a tensor of many elements, say
            pass
    return {"bad": f"{type(value).__name__} {value!r:.40}"}


def load_checkpoint(
    path: Path, number: int | None = None, budget: int | None = None, config: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]] | None:
    """The (epoch, state) of a checkpoint file, or None when there is none, it cannot be read, or it is not
    this trial's: unpickled (``weights_only``), it must still be a dict whose epoch is a whole number in
    0..budget, whose state is a dict, and which names this trial (its number and config)."""
    try:
        fd = open_private(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError:  # a symlink, another user's file, a folder: never loaded
        return None
    import torch

    try:
        with os.fdopen(fd, "rb") as f:
            blob = torch.load(f, map_location="cpu", weights_only=True)
    except Exception:  # a torn or foreign file is never loaded
        return None
    if not isinstance(blob, dict):
        return None
    epoch, state = blob.get("epoch"), blob.get("state")
    if type(epoch) is not int or epoch < 0 or (budget is not None and epoch > budget):
        return None
    if not isinstance(state, dict):
        return None
    if number is not None and (blob.get("trial") != number or (config is not None and blob.get("config") != config)):
        return None  # another trial's checkpoint (copied or left over)
    return epoch, state


def save_checkpoint(
    path: Path, epoch: int, state: dict[str, Any], number: int | None = None, config: dict[str, Any] | None = None
) -> None:
    """Writes a checkpoint atomically (temp file, rename), never through a symlink.

    A full disk is a ``DiskFullError`` ("no space left on ..."): the session stops and resumes once space
    is freed, instead of the trial failing.
    """
    import io

    import torch

    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    blob: dict[str, Any] = {"epoch": int(epoch), "state": state}
    if number is not None:
        blob["trial"], blob["config"] = int(number), dict(config or {})
    torch.save(blob, buf)
    data = buf.getbuffer()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # No fsync: a checkpoint torn by a power cut fails to load and is ignored (training restarts
        # from scratch, the rows after it are superseded), so durability is not worth milliseconds
        # per epoch. The rename still guarantees that no reader sees a half-written file while the
        # machine runs; after a power cut the renamed file may be torn, which is the case above.
        # Serialised in memory first: an error of the disk is then an OSError with its errno, not a
        # RuntimeError from inside torch's zip writer.
        fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        if is_disk_full(e):
            raise DiskFullError(no_space(path)) from None
        raise
    finally:
        del data
        if os.path.lexists(tmp):
            os.unlink(tmp)


class Trial:
    """The handle of one trial run, given to ``objective(config, trial)``.

    Attributes:
        number: the trial's number in the session.
        config: every hyperparameter of this trial.
        budget: the last epoch this run may reach.
        info: free-form facts the objective wants stored with the trial (device name, ...).
    """

    def __init__(self, runner: TrialHost, record: TrialRecord, checkpoint_path: Path) -> None:
        self._runner = runner
        self.number = record.number
        self.config = dict(record.config)
        self.budget = int(record.budget)
        self.info: dict[str, Any] = {}
        self._ckpt_path = checkpoint_path
        self._committed = record.last_epoch  # live rows already in the store
        self._start = 0  # the epoch training resumes after (a restored checkpoint's)
        self._begun = False
        self._epoch: int | None = None  # the epoch epochs() last yielded
        self._reported: dict[int, dict[str, float]] = {}
        self._t0 = time.monotonic()
        self._disk_full: DiskFullError | None = None

    # ---- what the runner reads -----------------------------------------------------------------
    @property
    def last_epoch(self) -> int:
        """The last epoch reported in this run (or restored from)."""
        return max([self._start, *self._reported])

    def _begin(self) -> None:
        if not self._begun:
            self._begun = True
            # Rows past the restart point belong to a run whose model state is gone; keep them, superseded.
            if self._committed > self._start:
                self._runner._supersede(self.number, self._start)

    def _resume_after(self, epoch: int) -> None:
        """A command objective's script restored its own checkpoint of ``epoch`` (``restore`` for a folder the
        script keeps): training goes on after it, the rows past it are superseded (never past the committed rows)."""
        if not self._begun:
            self._start = max(0, min(int(epoch), self._committed, self.budget))
        self._begin()

    def _epoch_reported(self, epoch: int | None, metrics: dict[str, Any]) -> str:
        """One epoch of a loop that ``epochs()`` does not drive (a script's, a Lightning or Hugging Face
        Trainer's): commits its row, then says what next, as ``epochs()`` would before the next epoch:
        ``"continue"``, ``"done"`` (the budget is reached) or ``"stop"`` (the session stops, the trial is
        aborted; it waits while the session is paused; a time limit raises TrialFailed).

        ``epoch`` None: the one after the last. The first report of a run says where the loop resumed (its
        own checkpoint): the rows after the epoch before it are superseded, as after ``restore``.
        """
        if epoch is None:
            epoch = self.last_epoch + 1
        if isinstance(epoch, bool) or not isinstance(epoch, (int, float)) or int(epoch) != epoch or epoch < 1:
            raise ObjectiveError(f"report epoch={epoch!r} is not a whole number >= 1")
        epoch = int(epoch)
        if not self._begun:
            self._resume_after(epoch - 1)
        elif epoch <= self.last_epoch:
            raise ObjectiveError(f"report epoch={epoch} after epoch {self.last_epoch} was reported; epochs go up")
        if epoch > self.budget:
            return "stop"
        self._epoch = epoch
        self.report(**metrics)
        if epoch >= self.budget:
            return "done"
        return "continue" if self._runner._between_epochs(self) else "stop"

    # ---- the objective's API ---------------------------------------------------------------------
    def restore(self) -> dict[str, Any] | None:
        """The state of this trial's last checkpoint, or None (then train from scratch).

        After a restore, ``epochs()`` continues from the epoch after the checkpoint's.
        """
        got = load_checkpoint(self._ckpt_path, self.number, self.budget, self.config)
        if got is None:
            return None
        epoch, state = got
        # A checkpoint ahead of the committed rows (written, then killed before the report) or past
        # the budget is not used: the rows are the truth.
        if epoch > self._committed or epoch > self.budget or self._begun:
            return None
        self._start = epoch
        return state

    def epochs(self) -> Iterator[int]:
        """Epoch numbers from the one after the restore point up to ``budget``.

        Ends early when the user stops the session or aborts the trial; waits while paused.
        """
        self._begin()
        e = self._start
        while e < self.budget:
            if self._disk_full is not None:
                raise self._disk_full
            if not self._runner._between_epochs(self):
                return
            e += 1
            self._epoch = e
            yield e

    def report(self, **metrics: Any) -> None:
        """Commits one epoch row of metrics (``val_loss=..., val_acc=...``) before it returns.

        A NaN or infinite metric is committed too, then ends the trial as failed.
        """
        if not metrics:
            raise ObjectiveError("report() needs at least one metric, e.g. trial.report(val_loss=0.3)")
        self._begin()
        epoch = self._epoch if self._epoch is not None else self.last_epoch + 1
        if self._epoch is None and self._reported:
            epoch = max(self._reported) + 1
        values = {str(k): _as_float(k, v) for k, v in metrics.items()}
        row = {**self._reported.get(epoch, {}), **values}
        self._reported[epoch] = row
        self._runner._report(self, epoch, row)
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            raise TrialFailed(f"{bad[0]} is {values[bad[0]]} at epoch {epoch}")

    def checkpoint(self, state: dict[str, Any]) -> None:
        """Saves the latest checkpoint of this trial (for the current epoch), replacing the previous one."""
        epoch = self._epoch if self._epoch is not None else self.last_epoch
        if self._disk_full is not None:
            raise self._disk_full
        try:
            save_checkpoint(self._ckpt_path, epoch, state, self.number, self.config)
        except DiskFullError as e:
            self._disk_full = e  # the objective may catch it: the next epoch raises it again
            raise
        sent = getattr(self._runner, "_checkpointed", None)
        if sent is not None:
            sent(self, self._ckpt_path)  # a Ray actor sends it to the coordinator's checkpoint folder

    def __repr__(self) -> str:
        return f"Trial(number={self.number}, budget={self.budget}, config={self.config})"
