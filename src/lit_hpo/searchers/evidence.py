"""What a model-based searcher learns from: the study as it was after a prefix of the
journal, at one level (epoch).

As in asynchronous BOHB (Falkner et al. 2018, run asynchronously as Syne Tune does), the
model is fitted on the highest level that enough trials have reached: with ASHA that is
the highest rung with enough results, so the early, cheap results guide which
configurations start next; with FIFO it is the last epoch once enough trials finish.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

from lit_hpo.state import StudyState


@dataclass(frozen=True)
class Evidence:
    epoch: int  # the level
    trials: list[int]  # the trials that reported at that level
    configs: list[dict[str, Any]]  # their configurations
    values: list[float]  # their values there, smaller is better
    earlier: list[dict[str, Any]]  # every config claimed before the prefix


def gather(state: StudyState, prefix: int, min_points: int) -> Evidence | None:
    """The evidence after the first ``prefix`` records: the highest epoch at which at
    least ``min_points`` trials had reported; ``None`` when no epoch has that many."""
    observed = state.observed or {}
    for epoch in sorted(observed, reverse=True):
        rows = observed[epoch]
        count = bisect.bisect_left(rows, prefix, key=lambda row: row[0])
        if count >= min_points:
            seen = rows[:count]
            claimed = bisect.bisect_left(state.trials, prefix, key=lambda t: t.claimed_at)
            return Evidence(
                epoch,
                [trial for _, trial, _ in seen],
                [state.trials[trial].config for _, trial, _ in seen],
                [value for _, _, value in seen],
                [trial.config for trial in state.trials[:claimed]],
            )
    return None
