"""Several objectives and constraints (issue 21) from the command line: TOML lists, the leaderboard, export."""

from __future__ import annotations

import json

import pytest

from tests.support.project import Project

TWO = {"metric": ["val_loss", "params"], "direction": ["minimize", "minimize"]}


def _toml(project: Project, **extra):
    return project.toml(
        objective="_objectives:size_vs_loss", max_epochs=3, space={"x": {"type": "float", "low": 0.0, "high": 1.0}},
        metric=extra.pop("metric", TWO["metric"]), direction=extra.pop("direction", TWO["direction"]),  # type: ignore[arg-type]
        extra=extra,
    )


def _losses(t: dict) -> tuple[float, float]:
    x = t["config"]["x"]
    return ((1 - x) ** 2 + 0.5 / 3, 1e6 * x + 3000.0)  # both read at epoch 3, where val_loss is best


def test_two_objectives_and_a_constraint_rank_export_and_mark(project: Project) -> None:
    toml = _toml(project, constraints=["latency_ms <= 6"])
    r = project.cli("run", toml.name, "--trials", 10, "--session", "mo", "--headless")
    assert r.rc == 0, r.err
    assert "Pareto set: trials " in r.out and "tuitune export mo" in r.out
    trials = [t for t in project.trials("mo") if t["state"] == "complete"]
    feasible = [t for t in trials if 10 * t["config"]["x"] <= 6]
    infeasible = [t for t in trials if 10 * t["config"]["x"] > 6]
    assert feasible and infeasible  # seed 0 draws both kinds
    # Every feasible trial is on the front here (val_loss falls as params rise), ordered by the first metric.
    shown = project.cli("show", "mo").ok().out
    assert "val_loss (minimize), params (minimize); latency_ms <= 6" in shown
    assert shown.count("infeasible") == len(infeasible)
    r = project.cli("export", "mo", "-o", "front.json")
    assert r.rc == 0, r.err
    doc = json.loads((project.root / "front.json").read_text())
    want = sorted(feasible, key=lambda t: _losses(t)[0])
    assert [p["trial"] for p in doc["pareto"]] == [t["number"] for t in want]
    assert doc["trial"] == want[0]["number"]  # the Pareto trial best in the first metric
    assert doc["values"]["params"] == pytest.approx(_losses(want[0])[1])
    assert doc["values"]["val_loss"] == pytest.approx(_losses(want[0])[0])
    assert doc["constraints"] == ["latency_ms <= 6"]
    # The user picks another Pareto trial; an infeasible one is refused with one line.
    pick = want[-1]["number"]
    assert project.cli("export", "mo", "--trial", pick, "-o", "pick.json").rc == 0
    assert json.loads((project.root / "pick.json").read_text())["trial"] == pick
    bad = project.cli("export", "mo", "--trial", infeasible[0]["number"])
    bad.assert_user_error(f"trial {infeasible[0]['number']}", "constraint")
    # Resuming with the same TOML continues the session (the objectives are part of its settings).
    assert project.cli("resume", "mo", "--more", 2).rc == 0  # two more
    assert len(project.trials("mo")) == 12


def test_export_trial_of_a_single_objective_session(project: Project) -> None:
    assert project.cli("run", project.toml(max_epochs=1).name, "--trials", 3, "--session", "so", "--headless").rc == 0
    r = project.cli("export", "so", "--trial", 2)
    assert r.rc == 0, r.err
    doc = json.loads((project.root / "so-trial-2.json").read_text())
    assert doc["trial"] == 2 and "pareto" not in doc
    project.cli("export", "so", "--trial", 9).assert_user_error("no trial 9")


@pytest.mark.parametrize(("extra", "needles"), [
    ({"direction": ["minimize"]}, ("direction", "per metric")),
    ({"constraints": ["params < 5"]}, ("constraints", "params < 5", "METRIC <= NUMBER")),
    ({"metric": ["val_loss", "val_loss"], "direction": ["minimize", "minimize"]}, ("metric", "twice")),
])
def test_bad_objectives_in_a_toml_name_the_key(project: Project, extra, needles) -> None:
    r = project.cli("run", _toml(project, **extra).name, "--trials", 1, "--headless")
    r.assert_user_error("synth.toml", *needles)
