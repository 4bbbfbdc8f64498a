"""The session budget a user thinks in (tuitune.core.budget): durations, the API's timeout, total epochs, target."""

from __future__ import annotations

import pytest

import tuitune as tt
from tuitune.core.budget import Budget, BudgetError, format_duration, parse_duration


@pytest.mark.parametrize(("given", "seconds"), [
    ("8h", 28800.0), ("30m", 1800.0), ("1h30m", 5400.0), ("90s", 90.0), ("2d", 172800.0), ("1.5h", 5400.0),
    ("45", 45.0), (45, 45.0), (0.5, 0.5), (" 2H ", 7200.0),
])
def test_durations_in_seconds_or_with_units(given, seconds):
    assert parse_duration(given) == seconds


@pytest.mark.parametrize("bad", ["8x", "h", "", "1h 30", "-5", 0, -1, True, None, float("inf"), "8h8"])
def test_a_bad_duration_is_one_line_naming_the_key(bad):
    with pytest.raises(BudgetError, match=r"^timeout .*(not a duration|more than 0)"):
        parse_duration(bad, "timeout")


def test_format_duration():
    assert [format_duration(s) for s in (5, 65, 3600 * 7 + 720)] == ["5s", "1m05s", "7h12m"]


def test_budget_spent_names_the_reason():
    b = Budget.make("1m", 10, 0.5)
    assert b.spent([], "minimize", 10.0) is None
    assert b.spent([], "minimize", 60.0) == "the time budget of 1m00s is spent"
    assert b.left(epochs=4, best=0.7, direction="minimize", run_seconds=15) == ["45s of 1m00s left", "4/10 epochs", "target 0.5"]
    assert b.left(epochs=4, best=0.5, direction="minimize", run_seconds=15)[2] == "target 0.5 reached"


def _objective(config, trial):
    for e in trial.epochs():
        trial.report(val_loss=(config["x"] - 0.3) ** 2 + 1 / e)


def test_the_api_takes_timeout_total_epochs_and_target(tmp_path):
    space = tt.Space(x=tt.Float(0.0, 1.0))
    s = tt.tune(_objective, space, strategy="asha", sampler="random", max_epochs=9, total_epochs=50,
                db=tmp_path / "a.db", session="a", workers=0)
    assert 50 - 9 < sum(t.last_epoch for t in s.trials) <= 50
    s = tt.tune(_objective, space, trials=30, max_epochs=1, timeout="1h", target=1.01, db=tmp_path / "a.db",
                session="b", workers=0)
    assert s.record.info["budget"] == {"timeout": 3600.0, "target": 1.01}
    assert len(s.trials) < 30 and s.trials[-1].value <= 1.01
    assert "the target 1.01 was reached" in s.record.message
    with pytest.raises(BudgetError, match="^timeout 'soon' is not a duration"):
        tt.tune(_objective, space, trials=3, timeout="soon", db=tmp_path / "a.db", workers=0)
    with pytest.raises(BudgetError, match="total_epochs 5 is less than max_epochs 9"):
        tt.tune(_objective, space, max_epochs=9, total_epochs=5, db=tmp_path / "a.db", workers=0)
