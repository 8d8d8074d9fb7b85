"""ASHA, the promotion variant (d2l §19.5's description; Li et al., 2018, Algorithm 2).

A trial runs to the next rung and *pauses* there. When a worker is free it looks for a
promotion, from the highest rung down: a paused trial at rung ``r`` is promotable when it
is among the top ``⌊n/η⌋`` of the ``n`` values recorded at ``r``. The best such trial is
resumed from its checkpoint (as a new attempt) and runs to the next rung; if none is
promotable, a new trial starts. Ties are ranked by trial id, the lower first: of several
trials tied at the cut, only those whose rank is inside the top ``⌊n/η⌋`` are promotable.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from lit_hpo.records import Action
from lit_hpo.schedulers.asha import ASHA
from lit_hpo.schedulers.base import CONTINUE, Decision
from lit_hpo.schedulers.rungs import is_rung, rung_levels
from lit_hpo.state import StudyState


def promotable_at_rung(
    paused: list[tuple[float, int]],
    rung_values: list[float],
    reduction_factor: int,
    tied_before: int = 0,
) -> int | None:
    """The trial to promote from one rung, or ``None``: the best paused trial, if it
    ranks inside the top ``⌊n/η⌋`` of the rung's ``n`` values (ties ranked by trial id).

    Args:
        paused: ``(value at the rung, trial id)`` of the trials paused there (smaller
            values better).
        rung_values: every finite value recorded at the rung, sorted ascending.
        reduction_factor: η.
        tied_before: how many of the rung's values equal the best paused trial's and
            come from trials with a lower id (they rank before it). Without it, every
            trial tied at the cut would be promotable in turn, more than ``⌊n/η⌋``.
    """
    quota = len(rung_values) // reduction_factor
    if quota == 0 or not paused:
        return None
    value, trial_id = min(paused)
    ahead = bisect.bisect_left(rung_values, value) + tied_before  # ranked before it
    return trial_id if ahead < quota else None


@dataclass(frozen=True)
class PromotionASHA:
    """Args: as :class:`ASHA` (``grace_period`` r_min, ``reduction_factor`` η,
    ``max_epochs`` r_max), whose validation it reuses."""

    grace_period: int
    reduction_factor: int
    max_epochs: int

    def __post_init__(self) -> None:
        ASHA(self.grace_period, self.reduction_factor, self.max_epochs)  # same checks

    def decide(self, state: StudyState, trial_id: int, epoch: int, value: float) -> Decision:
        if is_rung(epoch, self.grace_period, self.reduction_factor, self.max_epochs):
            return Decision(Action.PAUSE, "rung")
        return CONTINUE

    def claim_fields(self, trial_id: int) -> dict[str, int]:
        return {}

    def promotable(self, state: StudyState) -> int | None:
        levels = rung_levels(self.grace_period, self.reduction_factor, self.max_epochs)
        for level in reversed(levels):
            best = state.best_paused(level)  # only the best can be promoted first
            if best is None:
                continue
            before = state.tied_before(level, *best)
            chosen = promotable_at_rung([best], state.rung(level), self.reduction_factor, before)
            if chosen is not None:
                return chosen
        return None

    def settings(self) -> dict[str, object]:
        return {
            "name": "asha_promotion",
            "grace_period": self.grace_period,
            "reduction_factor": self.reduction_factor,
            "max_epochs": self.max_epochs,
        }
