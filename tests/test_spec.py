from __future__ import annotations

from typing import Any

import pytest

from lit_hpo.spec import check_compatible, spec_from_config
from tests.conftest import SEEDS


def test_the_seeds_settings_are_valid() -> None:
    spec = spec_from_config(SEEDS)
    assert spec.scheduler.settings() == {
        "name": "asha", "grace_period": 2, "reduction_factor": 2, "max_epochs": 10,
    }  # fmt: skip
    assert spec.space["model.learning_rate"].to_json() == {
        "type": "loguniform", "low": 0.01, "high": 1.0,
    }  # fmt: skip


@pytest.mark.parametrize(
    "change, message",
    [
        pytest.param({"reduction_factor": 1}, "`reduction_factor` must be >= 2, but got 1", id="eta"),
        pytest.param({"grace_period": 0}, "`grace_period` must be >= 1, but got 0", id="grace-0"),
        pytest.param({"grace_period": 11}, "must be <= max_epochs .10., but got 11", id="grace-max"),
        pytest.param({"n_workers": 0}, "`hpo.n_workers` must be a positive integer", id="workers"),
        pytest.param({"scheduler": "hyperbandit"}, "unknown scheduler hpo.scheduler='hyperbandit'", id="scheduler"),
        pytest.param({"mode": "minimize"}, "`hpo.mode` must be 'min' or 'max'", id="mode"),
        pytest.param({"max_wallclock_time": -5}, "`hpo.max_wallclock_time` must be a positive", id="budget"),
        pytest.param({"max_wallclock_time": None, "max_trials": None}, "no budget", id="no-budget"),
        pytest.param({"space": {}}, "`hpo.space` is empty", id="empty-space"),
        pytest.param({"space": {1: "interval(0, 1)"}}, r"`hpo.space` has the key 1 \(int\).*quote a number", id="int-key"),
        pytest.param({"space": {2: {"type": "uniform", "low": 0, "high": 1}}}, r"the key 2 \(int\)", id="int-key-mapping"),
        pytest.param({"space": {"": "interval(0, 1)"}}, r"`hpo.space` has the key '' \(str\)", id="empty-key"),
        pytest.param({"space": {"x": "interval(2, 1)"}, "points_to_evaluate": []}, "low < high", id="inverted"),
        pytest.param({"space": {"x": "tag(log, interval(0, 1))"}, "points_to_evaluate": []}, "log range", id="log-zero"),
        pytest.param({"space": {"x": "interval(0, inf)"}, "points_to_evaluate": []}, "finite", id="inf"),
        pytest.param({"points_to_evaluate": [{"model.learning_rate": 5.0}]}, "outside its domain", id="point-outside"),
        pytest.param({"points_to_evaluate": [{"model.lr": 0.1}]}, "not in hpo.space", id="point-key"),
        pytest.param({"gace_period": 2}, "Did you mean hpo.grace_period", id="typo"),
        pytest.param({"seed": -1}, "`hpo.seed` must be a non-negative integer", id="seed"),
        pytest.param({"space": {"hpo.seed": "choice(1, 2)"}, "points_to_evaluate": []}, "hpo.seed: hpo.. and hydra.. keys", id="hpo-key"),
        pytest.param({"space": {"hydra.sweep.subdir": "choice(a, b)"}, "points_to_evaluate": []}, "cannot be search dimensions", id="hydra-key"),
    ],
)  # fmt: skip
def test_bad_settings_fail_with_the_value_and_the_fix(change: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        spec_from_config({**SEEDS, **change})


def test_rerun_with_other_settings_is_refused_with_both_values() -> None:
    header = spec_from_config(SEEDS).header(now=0.0)
    check_compatible(header, spec_from_config({**SEEDS, "max_wallclock_time": 60}), "d")
    with pytest.raises(ValueError, match=r"(?s)reduction_factor.*hydra.sweep.dir"):
        check_compatible(header, spec_from_config({**SEEDS, "reduction_factor": 3}), "d")
    other_space = {**SEEDS, "space": {"model.learning_rate": "interval(0.01, 1)"},
                   "points_to_evaluate": []}  # fmt: skip
    with pytest.raises(ValueError, match="space: journal has"):
        check_compatible(header, spec_from_config(other_space), "d")
