"""Asynchronous Hyperband (stopping): several ASHA brackets with different grace periods.

Bracket ``k`` (``0 .. K-1``) has grace period ``r_min * η**k``: bracket 0 is plain ASHA,
later brackets stop less aggressively. A trial's bracket is a pure function of
``(seed, trial_id)``, so every worker and every replay agrees on it; bracket ``k`` is drawn
with probability proportional to ``η**(K-1-k) / (K-k)``, the share of configurations
bracket ``k`` gets in synchronous Hyperband (Li et al., 2017). A trial is compared only
with trials of its own bracket, by the same rule as ASHA
(:func:`~lit_hpo.schedulers.rungs.continues_at_rung`).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from lit_hpo.records import Action
from lit_hpo.schedulers.asha import ASHA
from lit_hpo.schedulers.base import CONTINUE, Decision
from lit_hpo.schedulers.rungs import continues_at_rung, is_rung, rung_levels
from lit_hpo.state import StudyState


def bracket_weights(n_brackets: int, reduction_factor: int) -> list[float]:
    weights = [
        reduction_factor ** (n_brackets - 1 - k) / (n_brackets - k) for k in range(n_brackets)
    ]
    total = sum(weights)
    return [w / total for w in weights]


def bracket_of(seed: int, trial_id: int, weights: list[float]) -> int:
    """The bracket of a trial: deterministic in ``(seed, trial_id)``."""
    rng = np.random.default_rng([seed, trial_id, 0x48594250])  # a stream apart from sampling
    return int(rng.choice(len(weights), p=weights))


@dataclass(frozen=True)
class Hyperband:
    """Args:
    grace_period: r_min of bracket 0.
    reduction_factor: η.
    max_epochs: r_max.
    brackets: how many brackets (default: every grace period below r_max).
    seed: the study seed (brackets are drawn from it).
    """

    grace_period: int
    reduction_factor: int
    max_epochs: int
    brackets: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        ASHA(self.grace_period, self.reduction_factor, self.max_epochs)  # same checks
        possible = max(
            1, len(rung_levels(self.grace_period, self.reduction_factor, self.max_epochs))
        )
        if self.brackets is None:
            object.__setattr__(self, "brackets", possible)
        elif (
            isinstance(self.brackets, bool)
            or not isinstance(self.brackets, int)
            or not (1 <= self.brackets <= possible)
        ):
            raise ValueError(
                f"`brackets` must be an integer in [1, {possible}] for grace_period "
                f"{self.grace_period}, reduction_factor {self.reduction_factor} and max_epochs "
                f"{self.max_epochs}, but got {self.brackets!r}. Set hpo.brackets or leave it null."
            )

    def bracket_asha(self, trial_id: int) -> tuple[int, ASHA]:
        assert self.brackets is not None
        k = bracket_of(self.seed, trial_id, bracket_weights(self.brackets, self.reduction_factor))
        return k, self._asha(k)

    def _asha(self, bracket: int) -> ASHA:
        grace = self.grace_period * self.reduction_factor**bracket
        return ASHA(min(grace, self.max_epochs), self.reduction_factor, self.max_epochs)

    def claim_fields(self, trial_id: int) -> dict[str, int]:
        """The bracket, drawn once when the trial is claimed and kept in its claim record,
        so that the state indexes each bracket's rungs and a decision costs O(log n)."""
        return {"bracket": self.bracket_asha(trial_id)[0]}

    def decide(self, state: StudyState, trial_id: int, epoch: int, value: float) -> Decision:
        recorded = state.trials[trial_id].bracket
        if recorded is not None and 0 <= recorded < (self.brackets or 1):
            bracket, asha = recorded, self._asha(recorded)  # drawn once, at the claim
        else:  # an old journal's claim (or one naming no bracket of this study): draw it
            bracket, asha = self.bracket_asha(trial_id)
        if not is_rung(epoch, asha.grace_period, asha.reduction_factor, asha.max_epochs):
            return CONTINUE
        if state.unbracketed == 0:  # every claim names its bracket: one binary search
            others = state.rung(epoch, bracket)
        else:  # a journal from before brackets were recorded: derive them, O(n)
            others = self._others(state, trial_id, bracket, epoch)
        if continues_at_rung(state.sign * value, others, self.reduction_factor):
            return CONTINUE
        return Decision(Action.STOP, "rung")

    def _others(self, state: StudyState, trial_id: int, bracket: int, epoch: int) -> list[float]:
        others: list[float] = []
        for trial in state.trials:
            if trial.trial_id == trial_id or self.bracket_asha(trial.trial_id)[0] != bracket:
                continue
            for report in trial.reports:
                if report.epoch == epoch and report.value is not None:
                    bisect.insort(others, state.sign * report.value)
        return others

    def promotable(self, state: StudyState) -> int | None:
        return None  # the stopping variant never pauses

    def settings(self) -> dict[str, object]:
        return {
            "name": "hyperband",
            "grace_period": self.grace_period,
            "reduction_factor": self.reduction_factor,
            "max_epochs": self.max_epochs,
            "brackets": self.brackets,
            "seed": self.seed,
        }
