"""The decision type and the scheduler protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from lit_hpo.state import StudyState


@dataclass(frozen=True)
class Decision:
    """``action`` is ``"continue"`` or ``"stop"``; ``reason`` says why a trial stopped
    (``"rung"``, ``"budget"``, ``"nonfinite"``, ``"ended"``)."""

    action: str
    reason: str | None = None

    @property
    def stop(self) -> bool:
        return self.action == "stop"


CONTINUE = Decision("continue")


class Scheduler(Protocol):
    max_epochs: int

    def decide(self, state: StudyState, trial_id: int, epoch: int, value: float) -> Decision:
        """Decide for a finite ``value`` reported by ``trial_id`` after ``epoch`` epochs."""
        ...

    def settings(self) -> dict[str, object]:
        """The settings as written in the journal header."""
        ...
