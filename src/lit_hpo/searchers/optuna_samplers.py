"""TPE, GP and CMA-ES from Optuna, used as a library: each suggestion asks a fresh
in-memory Optuna study that holds the evidence as finished trials. lit_hpo's journal
stays the only state (no Optuna storage is written).

Needs the ``search`` extra (``pip install 'lit_hpo[search]'``: Optuna, SciPy for GP, cmaes
for CMA-ES); :func:`require` says so before any worker starts.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from typing import Any

import numpy as np

from lit_hpo.space import Choice, Domain, Float, Value

NEEDS = {"tpe": ("optuna",), "gp": ("optuna", "scipy"), "cmaes": ("optuna", "cmaes")}
# The newest results a sampler is given (its cost grows with them: TPE ~0.1 ms each, GP
# cubically); TPE itself weighs all but its newest 25 trials down.
MAX_EVIDENCE = 300


def require(name: str) -> None:
    """Raise ``ValueError`` naming the missing packages and the extra that installs them."""
    missing = [module for module in NEEDS[name] if importlib.util.find_spec(module) is None]
    if missing:
        raise ValueError(
            f"`hpo.searcher={name}` uses Optuna's sampler, which needs {', '.join(missing)}: "
            f"pip install 'lit_hpo[search]' (or pip install {' '.join(missing)})."
        )


def _distribution(domain: Domain) -> Any:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if isinstance(domain, Choice):
        return CategoricalDistribution(list(domain.options))
    if isinstance(domain, Float):
        return FloatDistribution(domain.low, domain.high, log=domain.log)
    return IntDistribution(domain.low, domain.high, log=domain.log)


def _sampler(name: str, seed: int, trials: list[Any]) -> Any:
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=0, multivariate=True)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=0)
    # CMA-ES is a sequential strategy; a fresh study warm-starts it from the evidence
    # (WS-CMA-ES: the search distribution fitted on the best trials).
    return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=0, source_trials=trials,
                                        warn_independent_sampling=False)  # fmt: skip


def suggest(
    name: str,
    space: dict[str, Domain],
    evidence: list[tuple[Any, dict[str, Any], float]],
    rng: np.random.Generator,
    cache: dict[Any, Any],
) -> dict[str, Value]:
    """Optuna's ``name`` sampler's next configuration given ``evidence`` (key,
    configuration, value; smaller is better; the newest ``MAX_EVIDENCE`` are used);
    seeded from ``rng``, so the same evidence gives the same configuration. ``cache``
    keeps the Optuna trials built for the keys used, for the next call."""
    import optuna

    distributions = {key: _distribution(domain) for key, domain in space.items()}
    used = {}
    for key, config, value in evidence[-MAX_EVIDENCE:]:
        trial = cache.get(key)
        if trial is None:
            trial = optuna.trial.create_trial(
                params=dict(config), distributions=distributions, value=value
            )
        used[key] = trial
    cache.clear()  # keep only what the next call is likely to reuse
    cache.update(used)
    trials = list(used.values())
    seed = int(rng.integers(2**31 - 1))
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(logging.WARNING)  # no "A new study created in memory" per suggestion
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-feature warnings, once per call
            study = optuna.create_study(sampler=_sampler(name, seed, trials))
            if name != "cmaes":
                study.add_trials(trials)
            trial = study.ask(distributions)
    finally:
        logger.setLevel(level)
    return {key: _plain(trial.params[key], space[key]) for key in space}


def _plain(value: Any, domain: Domain) -> Value:
    """Optuna's value as the space's own type (numpy scalars and ints-as-floats out)."""
    if isinstance(domain, Choice):
        return next(option for option in domain.options if option == value)
    if isinstance(domain, Float):
        return min(domain.high, max(domain.low, float(value)))
    return round(float(value))
