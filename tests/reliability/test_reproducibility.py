"""Reproducibility and provenance with the real trainer (digits-mlp on the CPU).

Two runs of the same command in separate databases give the same configs and the same metrics at
every epoch; each trial records the versions (python, torch, cuda, cudnn), the device and the seed.
"""

from __future__ import annotations

import json

from tests.support.project import ReliabilityProject as Project

CMD = ("run", "digits-mlp", "--strategy", "random", "--trials", 2, "--max-epochs", 3, "--seed", 7, "--headless",
       "--session", "rep")
PROVENANCE = ("python", "torch", "cuda", "cudnn", "device", "device_name", "seed")


TIMINGS = ("time", "epoch_seconds")  # wall-clock measurements, the only fields allowed to differ


def _without_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMINGS} for r in rows]


def test_two_cpu_runs_are_identical_and_record_their_provenance(rproj: Project) -> None:
    dbs = [rproj.root / "a.db", rproj.root / "b.db"]
    procs = [rproj.popen(tag=f"rep{i}", argv=[*rproj.args(db=False), "--db", str(db), *map(str, CMD)])
             for i, db in enumerate(dbs)]
    for p in procs:
        r = p.wait(timeout=600)
        assert r.rc == 0, r.err[-3000:]
    docs = []
    for db in dbs:
        r = rproj.cli("--db", db, "show", "rep", "--json", db=False).ok()
        docs.append(json.loads(r.out))
    a, b = docs
    assert len(a["trials"]) == len(b["trials"]) == 2
    for ta, tb in zip(a["trials"], b["trials"]):
        assert ta["state"] == tb["state"] == "complete"
        assert ta["config"] == tb["config"]
        assert [e["epoch"] for e in ta["epochs"]] == [1, 2, 3]
        assert _without_time(ta["epochs"]) == _without_time(tb["epochs"]), "metrics differ between the two runs"
        assert ta["value"] == tb["value"]
        for t in (ta, tb):
            info = t["info"]
            missing = [k for k in PROVENANCE if k not in info]
            assert not missing, f"trial {t['number']} info lacks {missing}: {info}"
            assert info["seed"] == 7 and info["device"] == "cpu" and info["device_name"]
            assert info["python"] and info["torch"]
    assert a["trials"][0]["config"] != a["trials"][1]["config"]  # two different draws, both reproduced
