"""Random search with points to evaluate first; deterministic in ``(seed, trial_id)``."""

from __future__ import annotations

from typing import Any

import numpy as np

from lit_hpo.space import Domain, Value, sample_config


def trial_rng(seed: int, trial_id: int, stream: int = 0) -> np.random.Generator:
    """A generator for one trial: independent of which worker asks, or when. Stream 0
    draws its random configuration; model-based searchers use streams 1 and 2."""
    return np.random.default_rng([seed, trial_id] if stream == 0 else [seed, trial_id, stream])


def suggest(
    space: dict[str, Domain],
    points_to_evaluate: list[dict[str, Any]],
    seed: int,
    trial_id: int,
) -> dict[str, Value]:
    """The random configuration of trial ``trial_id``.

    Trials ``0 .. len(points_to_evaluate) - 1`` take the given points (a point may fix
    only some keys; the rest are sampled); later trials are drawn at random. Every
    trial draws all keys, so the stream does not depend on which keys a point fixes.
    """
    config = sample_config(space, trial_rng(seed, trial_id))
    if trial_id < len(points_to_evaluate):
        config.update(points_to_evaluate[trial_id])
    return config
