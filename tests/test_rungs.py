"""The ASHA rule as a table of cases (see `continues_at_rung` for the rule in words)."""

from __future__ import annotations

import pytest

from lit_hpo.schedulers import ASHA, FIFO, continues_at_rung, is_rung, rung_levels
from lit_hpo.state import StudyState
from tests import records
from tests.records import state_of


@pytest.mark.parametrize(
    "grace, eta, max_epochs, levels",
    [
        pytest.param(2, 2, 10, [2, 4, 8], id="seeds"),
        pytest.param(1, 3, 27, [1, 3, 9], id="max-not-a-rung"),
        pytest.param(1, 2, 8, [1, 2, 4], id="power-of-eta-max"),
        pytest.param(10, 2, 10, [], id="grace-equals-max"),
        pytest.param(1, 10, 1000, [1, 10, 100], id="no-float-log"),
    ],
)
def test_rung_levels(grace: int, eta: int, max_epochs: int, levels: list[int]) -> None:
    assert rung_levels(grace, eta, max_epochs) == levels
    assert [e for e in range(1, max_epochs + 1) if is_rung(e, grace, eta, max_epochs)] == levels


@pytest.mark.parametrize(
    "value, others, eta, expected",
    [
        pytest.param(0.5, [], 2, True, id="first-at-rung-continues"),
        pytest.param(0.9, [], 3, True, id="first-at-rung-continues-even-if-bad"),
        pytest.param(0.4, [0.5], 2, True, id="better-of-two"),
        pytest.param(0.6, [0.5], 2, False, id="worse-of-two"),
        pytest.param(0.5, [0.5], 2, True, id="tie-of-two-continues"),
        pytest.param(0.3, [0.5, 0.6], 3, True, id="best-with-fewer-than-eta-continues"),
        pytest.param(0.55, [0.5, 0.6], 3, False, id="second-with-fewer-than-eta-stops"),
        pytest.param(0.55, [0.5, 0.6, 0.7], 2, True, id="second-of-four-top-half"),
        pytest.param(0.65, [0.5, 0.6, 0.7], 2, False, id="third-of-four-stops"),
        pytest.param(0.6, [0.5, 0.6, 0.6], 2, True, id="tie-for-second-of-four"),
        pytest.param(0.2, [0.1] * 7, 2, False, id="eighth-of-eight-stops"),
        pytest.param(0.1, [0.1] * 7, 2, True, id="all-tied-continue"),
    ],
)
def test_continues_at_rung(value: float, others: list[float], eta: int, expected: bool) -> None:
    assert continues_at_rung(value, sorted(others), eta) is expected


def _state(mode: str, reports: dict[int, list[float]]) -> StudyState:
    state = state_of(records.header(mode))
    trial_id = 0
    for epoch, values in reports.items():
        for value in values:
            state.apply(records.claim(trial_id))
            state.apply(records.report(trial_id, epoch, value))
            trial_id += 1
    state.apply(records.claim(trial_id))
    return state


@pytest.mark.parametrize(
    "mode, epoch, value, rung_reports, expected",
    [
        pytest.param("min", 1, 0.99, {1: [0.1]}, "continue", id="not-a-rung"),
        pytest.param("min", 2, 0.99, {2: [0.1]}, "stop", id="worse-at-rung"),
        pytest.param("min", 2, 0.05, {2: [0.1]}, "continue", id="better-at-rung"),
        pytest.param("min", 4, 0.99, {2: [0.1]}, "continue", id="first-at-second-rung"),
        pytest.param("min", 10, 0.99, {10: [0.1]}, "continue", id="max-epochs-not-a-rung"),
        pytest.param("max", 2, 0.99, {2: [0.1]}, "continue", id="max-mode-better"),
        pytest.param("max", 2, 0.05, {2: [0.1]}, "stop", id="max-mode-worse"),
    ],
)
def test_asha_decisions(
    mode: str, epoch: int, value: float, rung_reports: dict[int, list[float]], expected: str
) -> None:
    state = _state(mode, rung_reports)
    scheduler = ASHA(grace_period=2, reduction_factor=2, max_epochs=10)
    decision = scheduler.decide(state, len(state.trials) - 1, epoch, value)
    assert decision.action == expected
    assert decision.reason == ("rung" if expected == "stop" else None)


def test_fifo_never_stops() -> None:
    state = _state("min", {2: [0.0, 0.0, 0.0]})
    assert all(
        FIFO(max_epochs=10).decide(state, 3, epoch, 1.0).action == "continue"
        for epoch in range(1, 11)
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        pytest.param({"grace_period": 2, "reduction_factor": 1, "max_epochs": 10},
                     "`reduction_factor` must be >= 2, but got 1", id="eta-1"),
        pytest.param({"grace_period": 0, "reduction_factor": 2, "max_epochs": 10},
                     "`grace_period` must be >= 1, but got 0", id="grace-0"),
        pytest.param({"grace_period": 11, "reduction_factor": 2, "max_epochs": 10},
                     "`grace_period` must be <= max_epochs", id="grace-above-max"),
        pytest.param({"grace_period": 1.5, "reduction_factor": 2, "max_epochs": 10},
                     "`grace_period` must be an integer", id="grace-float"),
    ],
)  # fmt: skip
def test_asha_rejects_bad_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        ASHA(**kwargs)  # type: ignore[arg-type]
