"""Searchers: which configuration each new trial gets (``hpo.searcher``).

``random`` (the default) and ``grid`` are pure functions of ``(seed, trial id)``. The
model-based searchers (``tpe``, ``gp``, ``cmaes`` through Optuna's samplers; ``bohb``,
BOHB's own density-ratio model) also look at the results: a trial's configuration is
a pure function of ``(journal prefix, seed, trial id)``, and the claim records the
prefix (``"prefix"``: how many records the model saw) and what proposed it (``"by"``:
``point``, ``random`` or ``model``), so replay, resumption and ``lit-hpo verify``
recompute exactly the same configuration. The model is fitted outside the journal
lock (on a lock-free snapshot; :meth:`lit_hpo.study.StudyClient.claim`).

A model-based searcher proposes at random when fewer than ``min_points`` trials have
results at any level, for a ``random_fraction`` of trials (BOHB's exploration), and
instead of a configuration some earlier trial already has (continuous spaces).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lit_hpo.searcher_spec import MODEL_BASED, SEARCHERS, SearcherSpec
from lit_hpo.searchers import bohb, optuna_samplers
from lit_hpo.searchers.evidence import gather
from lit_hpo.searchers.grid import check_grid, grid_point, grid_size
from lit_hpo.searchers.random import suggest as random_suggest
from lit_hpo.searchers.random import trial_rng
from lit_hpo.space import Choice, Domain, Value, space_from_json
from lit_hpo.state import StudyState, Trial

__all__ = ["MODEL_BASED", "SEARCHERS", "Search", "SearcherSpec", "Suggestion", "grid_size",
           "random_suggest", "trial_rng"]  # fmt: skip


@dataclass(frozen=True)
class Suggestion:
    config: dict[str, Value]
    by: str  # point, random, grid or model
    prefix: int | None  # records the searcher saw; None when it looks at no results


class Search:
    """A study's searcher, built from its header (space, points, seed, searcher), which
    the opening run checked against its own settings."""

    def __init__(self, header: dict[str, Any]) -> None:
        self.space: dict[str, Domain] = space_from_json(header["space"])
        self.points: list[dict[str, Any]] = header.get("points_to_evaluate") or []
        self.seed: int = header["seed"]
        self.spec = SearcherSpec.from_json(header.get("searcher"))
        self.min_points = self.spec.min_points or len(self.space) + 1
        self.continuous = any(not isinstance(d, Choice) for d in self.space.values())
        self._rows: dict[int, np.ndarray] = {}  # bohb: encoded configurations, by trial
        self._optuna_trials: dict[Any, Any] = {}  # tpe/gp/cmaes: by (trial, level)

    @property
    def model_based(self) -> bool:
        return self.spec.model_based

    def suggest(self, state: StudyState, trial_id: int, prefix: int) -> Suggestion:
        """Trial ``trial_id``'s configuration, seeing the first ``prefix`` records."""
        if trial_id < len(self.points):
            config = random_suggest(self.space, self.points, self.seed, trial_id)
            return Suggestion(config, "point", prefix if self.model_based else None)
        if self.spec.name == "grid":
            return Suggestion(grid_point(self.space, trial_id - len(self.points)), "grid", None)
        config = random_suggest(self.space, [], self.seed, trial_id)
        if not self.model_based:
            return Suggestion(config, "random", None)
        if trial_rng(self.seed, trial_id, 1).random() < self.spec.random_fraction:
            return Suggestion(config, "random", prefix)
        evidence = gather(state, prefix, self.min_points)
        if evidence is None:
            return Suggestion(config, "random", prefix)
        rng = trial_rng(self.seed, trial_id, 2)
        if self.spec.name == "bohb":
            data = self._encoded(evidence.trials, evidence.configs)
            proposed = bohb.suggest(self.space, data, evidence.values, rng, self.min_points,
                                    self.spec.bandwidth_factor)  # fmt: skip
        else:
            rows = zip(evidence.trials, evidence.configs, evidence.values, strict=True)
            keyed = [((trial, evidence.epoch), config, value) for trial, config, value in rows]
            proposed = optuna_samplers.suggest(self.spec.name, self.space, keyed, rng,
                                               self._optuna_trials)  # fmt: skip
        if self.continuous and proposed in evidence.earlier:
            return Suggestion(config, "random", prefix)
        return Suggestion(proposed, "model", prefix)

    def _encoded(self, trials: list[int], configs: list[dict[str, Any]]) -> np.ndarray:
        """BOHB's encoding of these trials' configurations; each is encoded once."""
        missing = [(t, c) for t, c in zip(trials, configs, strict=True) if t not in self._rows]
        if missing:
            rows = bohb.encode_many(self.space, [config for _, config in missing])
            self._rows.update((trial, row) for (trial, _), row in zip(missing, rows, strict=True))
        return np.array([self._rows[trial] for trial in trials])

    def expected(self, state: StudyState, trial: Trial) -> dict[str, Value]:
        """The configuration trial ``trial`` must have: recomputed from its id and the
        prefix its claim names (a claim is untrusted input)."""
        prefix = trial.prefix if trial.prefix is not None else trial.claimed_at
        return self.suggest(state, trial.trial_id, prefix).config


def check_space(spec: SearcherSpec, space: dict[str, Domain]) -> None:
    """Raise ``ValueError`` when the searcher cannot search this space or is not
    installed (before any worker starts)."""
    if spec.name == "grid":
        check_grid(space)
    if spec.name in optuna_samplers.NEEDS:
        optuna_samplers.require(spec.name)
