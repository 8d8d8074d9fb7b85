"""The decision type and the scheduler protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from lit_hpo.records import Action
from lit_hpo.state import StudyState


@dataclass(frozen=True)
class Decision:
    """``action`` is an :class:`~lit_hpo.records.Action`: continue, stop or pause (the
    trainer stops either way; a paused trial may be promoted and resumed later); ``reason`` says why
    (``"rung"``, ``"budget"``, ``"nonfinite"``, ``"ended"``, ``"stale"``)."""

    action: str
    reason: str | None = None

    @property
    def stop(self) -> bool:
        """Whether the trainer must stop now."""
        return self.action in (Action.STOP, Action.PAUSE)


CONTINUE = Decision(Action.CONTINUE)


class Scheduler(Protocol):
    max_epochs: int

    def decide(self, state: StudyState, trial_id: int, epoch: int, value: float) -> Decision:
        """Decide for a finite ``value`` reported by ``trial_id`` after ``epoch`` epochs."""
        ...

    def settings(self) -> dict[str, object]:
        """The settings as written in the journal header."""
        ...

    def promotable(self, state: StudyState) -> int | None:
        """A paused trial a free worker should resume now, or ``None``."""
        ...

    def claim_fields(self, trial_id: int) -> dict[str, int]:
        """Fields the scheduler draws once per trial, written in its claim record."""
        ...
