"""Warm workers on the command line (issue 20): a worker's log says where its start went, and the first trial
of a worker trains at once (the dataset, the device and a first step were ready before it)."""

from __future__ import annotations

import re

from tuitune.core.store.store import files_dir


def test_the_worker_log_names_the_phases_of_its_start_and_its_first_epoch(project):
    project.cli("run", "digits-mlp", "--trials", "2", "--max-epochs", "1", "--devices", "cpu", "--workers", "1",
                "--fuse", "off", "--headless", "--session", "w").ok()
    log = (files_dir(project.db) / "logs" / "w" / "worker-0.log").read_text()
    ready = re.search(r"^--- worker ready: (.*)$", log, re.M)
    assert ready, log
    phases = dict((k, float(v)) for k, v in re.findall(r"(\w[\w ]*?) (\d+\.\d+) s", ready.group(1)))
    assert list(phases) == ["spawn", "import", "device", "data", "warm step", "ready"]
    assert phases["ready"] >= phases["import"] + phases["data"] + phases["warm step"] - 0.05
    assert re.search(r"^--- first epoch committed: first job \d+\.\d+ s, start \d+\.\d+ s", log, re.M), log
    shown = project.cli("show", "w", "--log", "0").ok().out  # the worker's first trial's log says it too
    assert ready.group(0) in shown and "this worker's first job" in shown
