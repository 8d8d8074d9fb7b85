"""ASHA, the stopping variant (d2l §19.5; Li et al., 2018).

Each trial runs until it reaches a rung ``r_min * η**k`` (``< r_max``); there it is
compared with every value recorded at that rung so far (by any trial, whatever its
status) using :func:`~lit_hpo.schedulers.rungs.continues_at_rung`, and stopped unless it
is in the top ``⌊n/η⌋``. Nothing waits for a rung to fill: a decision uses what the
journal holds at that moment, which is what makes it asynchronous.
"""

from __future__ import annotations

from dataclasses import dataclass

from lit_hpo.records import Action
from lit_hpo.schedulers.base import CONTINUE, Decision
from lit_hpo.schedulers.rungs import continues_at_rung, is_rung
from lit_hpo.state import StudyState


def _check_int(name: str, value: object, minimum: int, hint: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an integer, but got {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, but got {value}. {hint}")


@dataclass(frozen=True)
class ASHA:
    """Args:
    grace_period: r_min, the first rung (epochs).
    reduction_factor: η; roughly 1/η of the trials pass each rung.
    max_epochs: r_max; a trial reaching it completes.
    """

    grace_period: int
    reduction_factor: int
    max_epochs: int

    def __post_init__(self) -> None:
        _check_int("max_epochs", self.max_epochs, 1, "Set trainer.max_epochs to at least 1.")
        _check_int(
            "reduction_factor", self.reduction_factor, 2, "Set hpo.reduction_factor=2 or more."
        )
        _check_int("grace_period", self.grace_period, 1, "Set hpo.grace_period=1 or more.")
        if self.grace_period > self.max_epochs:
            raise ValueError(
                f"`grace_period` must be <= max_epochs ({self.max_epochs}), but got "
                f"{self.grace_period}. Lower hpo.grace_period or raise trainer.max_epochs."
            )

    def decide(self, state: StudyState, trial_id: int, epoch: int, value: float) -> Decision:
        if not is_rung(epoch, self.grace_period, self.reduction_factor, self.max_epochs):
            return CONTINUE
        others = state.rung(epoch)
        if continues_at_rung(state.sign * value, others, self.reduction_factor):
            return CONTINUE
        return Decision(Action.STOP, "rung")

    def settings(self) -> dict[str, object]:
        return {
            "name": "asha",
            "grace_period": self.grace_period,
            "reduction_factor": self.reduction_factor,
            "max_epochs": self.max_epochs,
        }

    def claim_fields(self, trial_id: int) -> dict[str, int]:
        return {}

    def promotable(self, state: StudyState) -> int | None:
        return None  # never pauses
