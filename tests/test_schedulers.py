"""Promotion ASHA and Hyperband as tables, plus one contract suite over every scheduler."""

from __future__ import annotations

from collections import Counter

import pytest

from lit_hpo.policy import decide
from lit_hpo.schedulers import SCHEDULERS, make_scheduler
from lit_hpo.schedulers.hyperband import Hyperband, bracket_of, bracket_weights
from lit_hpo.schedulers.promotion import PromotionASHA, promotable_at_rung
from lit_hpo.state import StudyState
from tests import records
from tests.records import state_of


def _state(trials: list[tuple[list[float], str]], mode: str = "min") -> StudyState:
    """trials: (values reported at epochs 1.., final status) each."""
    state = state_of(records.header(mode))
    for trial_id, (values, status) in enumerate(trials):
        state.apply(records.claim(trial_id))
        for epoch, value in enumerate(values, start=1):
            state.apply(records.report(trial_id, epoch, value))
        if status == "paused":
            state.apply(records.pause(trial_id))
        elif status != "running":
            state.apply(records.end(trial_id, status))
    return state


@pytest.mark.parametrize(
    "paused, rung, eta, expected",
    [
        pytest.param([], [0.1, 0.2], 2, None, id="nobody-paused"),
        pytest.param([(0.1, 0)], [0.1], 2, None, id="fewer-than-eta-values"),
        pytest.param([(0.1, 0)], [0.1, 0.2], 2, 0, id="best-of-two-promoted"),
        pytest.param([(0.2, 1)], [0.1, 0.2], 2, None, id="worse-of-two-waits"),
        pytest.param([(0.2, 1), (0.3, 2)], [0.1, 0.2, 0.3, 0.4], 2, 1, id="second-of-four"),
        pytest.param([(0.3, 2)], [0.1, 0.2, 0.3, 0.4], 2, None, id="third-of-four-waits"),
        pytest.param([(0.2, 5), (0.2, 3)], [0.1, 0.2, 0.2, 0.9], 2, 3, id="tie-lower-id-first"),
        pytest.param([(0.1, 0)], [0.1, 0.2, 0.3], 3, 0, id="eta-3"),
    ],
)
def test_promotable_at_rung(paused, rung, eta, expected) -> None:
    assert promotable_at_rung(paused, sorted(rung), eta) == expected


def test_promotion_asha_pauses_at_rungs_and_promotes_from_the_top_rung_first() -> None:
    scheduler = PromotionASHA(grace_period=1, reduction_factor=2, max_epochs=8)
    state = _state([
        ([0.5, 0.4], "paused"),        # 0: paused at rung 2
        ([0.6, 0.45], "stopped"),      # 1: reached rung 2 too (value recorded)
        ([0.9], "paused"),             # 2: paused at rung 1, worst there
        ([0.3], "paused"),             # 3: paused at rung 1, best there
        ([0.7], "running"),
    ])  # fmt: skip
    assert [scheduler.decide(state, 4, e, 0.5).action for e in range(1, 9)] == [
        "pause", "pause", "continue", "pause", "continue", "continue", "continue", "continue",
    ]  # fmt: skip
    assert scheduler.promotable(state) == 0  # rung 2 before rung 1
    state.apply({"op": "resume", "trial": 0, "attempt": 1, "worker": 1, "time": 1})
    assert scheduler.promotable(state) == 3  # then the best paused at rung 1


def test_hyperband_brackets_are_deterministic_and_weighted() -> None:
    weights = bracket_weights(3, 2)
    assert weights == pytest.approx([4 / 3 / (4 / 3 + 1 + 1), 1 / (4 / 3 + 2), 1 / (4 / 3 + 2)])
    draws = [bracket_of(0, t, weights) for t in range(3000)]
    assert draws == [bracket_of(0, t, weights) for t in range(3000)]
    share = Counter(draws)
    assert all(abs(share[k] / 3000 - weights[k]) < 0.03 for k in range(3))
    assert draws[:50] != [bracket_of(1, t, weights) for t in range(50)]  # the seed matters


def test_hyperband_compares_only_within_a_bracket() -> None:
    scheduler = Hyperband(grace_period=1, reduction_factor=2, max_epochs=8, seed=0)
    assert scheduler.brackets == 3
    brackets = {t: scheduler.bracket_asha(t)[0] for t in range(40)}
    zero = [t for t, b in brackets.items() if b == 0]
    other = next(t for t, b in brackets.items() if b != 0)
    # an excellent value in another bracket does not count in bracket 0
    trials = [([0.5], "stopped")] * 40
    trials[other] = ([0.01], "stopped")
    state = _state(trials)
    newcomer = zero[-1]
    state.trials[newcomer].reports.clear()
    assert scheduler.decide(state, newcomer, 1, 0.4).action == "continue"  # best in bracket 0
    assert scheduler.decide(state, newcomer, 1, 0.6).action == "stop"
    grace = {b: scheduler.bracket_asha(t)[1].grace_period for t, b in brackets.items()}
    assert grace == {0: 1, 1: 2, 2: 4}


@pytest.mark.parametrize("brackets", [0, 4, 1.5])
def test_hyperband_rejects_bad_brackets(brackets) -> None:
    with pytest.raises(ValueError, match=r"`brackets` must be an integer in \[1, 3\]"):
        Hyperband(grace_period=1, reduction_factor=2, max_epochs=8, brackets=brackets)


SETTINGS = {
    "fifo": {"name": "fifo", "max_epochs": 8},
    "asha": {"name": "asha", "grace_period": 1, "reduction_factor": 2, "max_epochs": 8},
    "asha_promotion": {"name": "asha_promotion", "grace_period": 1, "reduction_factor": 2, "max_epochs": 8},
    "hyperband": {"name": "hyperband", "grace_period": 1, "reduction_factor": 2, "max_epochs": 8,
                  "brackets": None, "seed": 0},
}  # fmt: skip


@pytest.fixture(params=SCHEDULERS)
def scheduler(request):
    return make_scheduler(SETTINGS[request.param])


class TestSchedulerContract:
    """What every scheduler promises, whatever its algorithm."""

    def test_settings_round_trip(self, scheduler) -> None:
        assert make_scheduler(scheduler.settings()).settings() == scheduler.settings()

    def test_never_stops_outside_a_rung_or_at_max_epochs(self, scheduler) -> None:
        state = _state([([0.1] * 8, "completed")] * 4 + [([], "running")])
        for epoch in (3, 5, 6, 7, 8):
            assert scheduler.decide(state, 4, epoch, 0.99).action == "continue"

    def test_the_first_trial_at_a_rung_never_stops(self, scheduler) -> None:
        state = _state([([], "running")])
        assert all(scheduler.decide(state, 0, e, 0.9).action != "stop" for e in range(1, 9))

    def test_replay_gives_the_same_decisions(self, scheduler) -> None:
        values = [[0.9 - 0.01 * t - 0.05 * e for e in range(8)] for t in range(12)]
        written = []
        state = _state([])
        for t, curve in enumerate(values):
            state.apply(records.claim(t))
            for e, v in enumerate(curve, start=1):
                d = decide(scheduler, state, t, e, v, now=0.0)
                record = {"op": "report", "trial": t, "epoch": e, "value": v,
                          "decision": d.action, "reason": d.reason, "time": 0}  # fmt: skip
                written.append(record)
                state.apply(record)
                if d.stop:
                    break
        again = _state([])
        for record in written:
            if record["epoch"] == 1:
                again.apply(records.claim(record["trial"]))
            d = decide(scheduler, again, record["trial"], record["epoch"], record["value"], now=0.0)
            assert (d.action, d.reason) == (record["decision"], record["reason"])
            again.apply(record)
