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
    "paused, rung, eta, tied_before, expected",
    [
        pytest.param([], [0.1, 0.2], 2, 0, None, id="nobody-paused"),
        pytest.param([(0.1, 0)], [0.1], 2, 0, None, id="fewer-than-eta-values"),
        pytest.param([(0.1, 0)], [0.1, 0.2], 2, 0, 0, id="best-of-two-promoted"),
        pytest.param([(0.2, 1)], [0.1, 0.2], 2, 0, None, id="worse-of-two-waits"),
        pytest.param([(0.2, 1), (0.3, 2)], [0.1, 0.2, 0.3, 0.4], 2, 0, 1, id="second-of-four"),
        pytest.param([(0.3, 2)], [0.1, 0.2, 0.3, 0.4], 2, 0, None, id="third-of-four-waits"),
        pytest.param([(0.2, 5), (0.2, 3)], [0.1, 0.2, 0.2, 0.9], 2, 0, 3, id="tie-lower-id-first"),
        # trial 3 (lower id) holds the second place at 0.2: trial 5, tied, is third
        pytest.param([(0.2, 5)], [0.1, 0.2, 0.2, 0.9], 2, 1, None, id="tie-outside-the-quota"),
        pytest.param([(0.2, 5)], [0.2, 0.2, 0.2, 0.9], 2, 1, 5, id="tie-inside-the-quota"),
        pytest.param([(0.1, 0)], [0.1, 0.2, 0.3], 3, 0, 0, id="eta-3"),
    ],
)
def test_promotable_at_rung(paused, rung, eta, tied_before, expected) -> None:
    assert promotable_at_rung(paused, sorted(rung), eta, tied_before) == expected


def test_trials_tied_at_the_cut_take_its_places_in_id_order() -> None:
    """Four values at rung 1 (two places, η 2): trial 0 best, trials 1, 2 and 3 tied.
    Trial 1 (the lowest id of the tie) takes the second place; once it is promoted,
    trials 2 and 3 stay paused (before, each was promotable in turn)."""
    scheduler = PromotionASHA(grace_period=1, reduction_factor=2, max_epochs=8)
    state = _state([([0.1], "running"), ([0.3], "paused"), ([0.3], "paused"),
                    ([0.3], "paused")])  # fmt: skip
    assert scheduler.promotable(state) == 1
    state.apply({"op": "resume", "trial": 1, "attempt": 1, "worker": 1, "time": 1})
    assert scheduler.promotable(state) is None
    assert state.tied_before(1, 0.3, 3) == 2 and state.tied_before(1, 0.3, 1) == 0


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


@pytest.mark.parametrize("eta", [2, 3])
@pytest.mark.parametrize("seed", range(20))
def test_a_pause_makes_at_most_one_trial_promotable(seed: int, eta: int) -> None:
    """Why a worker that finds nothing to do may exit (the worker loop does): a trial's
    pause adds one value to one rung, which lets at most one paused trial into that
    rung's top ⌊n/η⌋, and the pausing trial's own worker claims next and takes it. So
    after every pause and the claim that follows, nothing is left promotable: a worker
    that found nothing would never have found a promotion later. Random studies, 40
    trials, values that cross and tie."""
    import random

    rng = random.Random(seed)
    scheduler = PromotionASHA(grace_period=1, reduction_factor=eta, max_epochs=9)
    state = state_of(records.header(), records.session())
    running: dict[int, int] = {}  # trial -> attempt
    quality: dict[int, float] = {}

    def start() -> None:
        trial = len(state.trials)
        state.apply(records.claim(trial))
        running[trial], quality[trial] = 0, rng.random()

    for _ in range(3):
        start()
    while running:
        trial = rng.choice(sorted(running))
        epoch = state.trials[trial].last_epoch + 1
        value = round(quality[trial] + 1 / epoch + rng.choice([0, 0.05, -0.05]), 2)  # ties
        decision = scheduler.decide(state, trial, epoch, value)
        state.apply(records.report(trial, epoch, value, decision=decision.action,
                                   attempt=running[trial]))  # fmt: skip
        if decision.action == "continue" and epoch < scheduler.max_epochs:
            continue
        if decision.action == "pause":
            state.apply(records.pause(trial, running[trial]))
        else:
            state.apply(records.end(trial, "completed"))
        del running[trial]
        promoted = scheduler.promotable(state)  # the freed worker claims
        if promoted is not None:
            attempt = state.trials[promoted].attempt + 1
            state.apply({"op": "resume", "trial": promoted, "attempt": attempt, "worker": 0,
                         "time": 0.0})  # fmt: skip
            running[promoted] = attempt
        elif len(state.trials) < 40:
            start()
        assert scheduler.promotable(state) is None


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
