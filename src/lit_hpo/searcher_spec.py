"""`SearcherSpec`: which searcher a study uses and its settings, validated; part of the
study's identity (the header's ``searcher``). A leaf module: the state checks a header's
searcher with it, and :mod:`lit_hpo.searchers` (which reads states) builds on it."""

from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass
from typing import Any

from lit_hpo.settings import DEFAULTS

MODEL_BASED = ("tpe", "gp", "cmaes", "bohb")
SEARCHERS = ("random", "grid", *MODEL_BASED)


@dataclass(frozen=True)
class SearcherSpec:
    """A searcher and its settings: part of the study's identity (the header)."""

    name: str = DEFAULTS.searcher
    random_fraction: float = DEFAULTS.random_fraction  # the settings: lit_hpo.settings
    min_points: int | None = DEFAULTS.min_points
    bandwidth_factor: float = DEFAULTS.bandwidth_factor

    def __post_init__(self) -> None:
        if self.name not in SEARCHERS:
            close = difflib.get_close_matches(str(self.name), SEARCHERS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"unknown searcher hpo.searcher={self.name!r}.{hint} Use one of "
                f"{', '.join(SEARCHERS)}."
            )
        fraction = self.random_fraction
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, (int, float))
            or not (0 <= fraction <= 1)
        ):
            raise ValueError(
                f"`hpo.random_fraction` must be a number in [0, 1], but got {fraction!r}."
            )
        points = self.min_points
        if points is not None and (isinstance(points, bool) or not isinstance(points, int)
                                   or points < 2):  # fmt: skip
            raise ValueError(
                f"`hpo.min_points` must be an integer >= 2 (or null: one more than the number "
                f"of hyperparameters), but got {points!r}."
            )
        factor = self.bandwidth_factor
        if (
            isinstance(factor, bool)
            or not isinstance(factor, (int, float))
            or not (math.isfinite(factor) and factor > 0)
        ):
            raise ValueError(
                f"`hpo.bandwidth_factor` must be a positive number, but got {factor!r}."
            )

    @property
    def model_based(self) -> bool:
        return self.name in MODEL_BASED

    def to_json(self) -> dict[str, Any]:
        """The header's ``searcher`` field (random and grid have no settings)."""
        return asdict(self) if self.model_based else {"name": self.name}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> SearcherSpec:
        return cls(**(data or {}))
