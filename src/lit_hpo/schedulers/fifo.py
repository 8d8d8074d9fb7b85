"""FIFO: every trial runs to ``max_epochs`` (asynchronous random search, d2l §19.3)."""

from __future__ import annotations

from dataclasses import dataclass

from lit_hpo.schedulers.base import CONTINUE, Decision
from lit_hpo.state import StudyState


@dataclass(frozen=True)
class FIFO:
    max_epochs: int

    def __post_init__(self) -> None:
        if isinstance(self.max_epochs, bool) or not isinstance(self.max_epochs, int):
            raise TypeError(f"`max_epochs` must be an integer, but got {self.max_epochs!r}.")
        if self.max_epochs < 1:
            raise ValueError(f"`max_epochs` must be >= 1, but got {self.max_epochs}.")

    def decide(self, state: StudyState, trial_id: int, epoch: int, value: float) -> Decision:
        return CONTINUE

    def settings(self) -> dict[str, object]:
        return {"name": "fifo", "max_epochs": self.max_epochs}

    def claim_fields(self, trial_id: int) -> dict[str, int]:
        return {}

    def promotable(self, state: StudyState) -> int | None:
        return None  # never pauses
