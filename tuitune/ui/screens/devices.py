"""Provides the devices panel: per worker its device, trial and epoch, process memory, GPU use and memory."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from tuitune.core.records import TrialState
from tuitune.core.run.devices import WorkerRow, worker_rows
from tuitune.ui.model import SessionView
from tuitune.ui.screens.base import TuituneScreen


def _mb(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f} MiB"


class DevicesScreen(TuituneScreen):
    """Every worker of the session's run, refreshed each second (the figures are read off the UI thread)."""

    HELP_TITLE = "workers and devices"
    BINDINGS = [Binding("escape,q,w", "back", "Back")]

    def __init__(self, view: SessionView) -> None:
        super().__init__(name="devices")
        self.view = view
        self.session_name = view.name

    def compose(self) -> ComposeResult:
        yield Static(f"session {self.view.name}: workers and devices", id="devices-header")
        yield DataTable(id="devices-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        t = self.query_one(DataTable)
        for c in ("worker", "device", "pid", "trial", "epoch", "process memory", "GPU use", "GPU memory"):
            t.add_column(c, key=c)
        self.refresh_rows()
        self.set_interval(1.0, self.refresh_rows)

    def _workers(self) -> list[dict[str, Any]]:
        """The run's worker slots when this app runs it; else the running trials' workers (a followed run)."""
        live = {n: t for n, t in self.view.live.items() if t.state == TrialState.RUNNING}
        rc = self.tuitune.run_control
        pool = getattr(rc.runner, "pool", None) if rc.owns_run and rc.session == self.view.name else None
        out = []
        if pool is not None and not pool.in_thread:
            for w in list(pool.workers.values()):
                numbers = list(w.trials)  # a fused array: several
                t = live.get(numbers[0]) if numbers else None
                out.append({"worker": w.slot.index, "device": w.slot.label, "pid": w.pid,
                            "trial": ",".join(map(str, numbers)) or None,
                            "epoch": f"{t.last_epoch}/{t.budget}" if t is not None else "-"})
            return out
        for n, t in sorted(live.items()):
            out.append({"worker": t.info.get("worker", "in-process"), "device": t.info.get("device"),
                        "pid": t.info.get("pid"), "trial": n, "epoch": f"{t.last_epoch}/{t.budget}"})
        return out

    def refresh_rows(self) -> None:
        self._read(self._workers())

    @work(thread=True, exclusive=True, group="devices", exit_on_error=False)
    def _read(self, workers: list[dict[str, Any]]) -> None:
        rows = worker_rows(workers)
        self.app.call_from_thread(self._show, rows)

    def _show(self, rows: list[WorkerRow]) -> None:
        t = self.query_one(DataTable)
        t.clear()
        for r in rows:
            gpu = "-" if r.gpu_util is None else f"{r.gpu_util}%"
            mem = "-" if r.gpu_mem_mb is None else f"{_mb(r.gpu_mem_mb)} / {_mb(r.gpu_total_mb)}"
            t.add_row(r.worker, r.device, str(r.pid or "-"), "-" if r.trial is None else str(r.trial), r.epoch,
                      _mb(r.rss_mb), gpu, mem)
        if not rows:
            self.query_one("#devices-header", Static).update(
                f"session {self.view.name}: no worker is running a trial now"
            )

    def action_back(self) -> None:
        self.app.pop_screen()
