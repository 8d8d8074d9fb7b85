"""Configs written for hydra-optuna-sweeper, run by lit_hpo's sweeper.

A project's ``hparams_search`` config for Hydra's Optuna sweeper keeps its
``hydra.sweeper`` node (``params``, ``sampler``, ``direction``, ``n_trials``,
``n_jobs``...) when it selects ``override /hydra/sweeper: lit_hpo`` instead; this module
turns that node into ``hpo.*`` settings, so the study gets lit_hpo's schedulers (pruning)
and searchers, or it fails naming the field to change. Pure: dicts in, dicts out.
"""

from __future__ import annotations

from typing import Any

from lit_hpo.settings import DEFAULTS

# hydra-optuna-sweeper's fields (OptunaSweeperConf) that lit_hpo's sweeper accepts.
FIELDS = ("params", "sampler", "direction", "n_trials", "n_jobs", "storage", "study_name",
          "search_space", "custom_search_space", "max_failure_rate")  # fmt: skip
SAMPLERS = {
    "optuna.samplers.TPESampler": "tpe",
    "optuna.samplers.RandomSampler": "random",
    "optuna.samplers.CmaEsSampler": "cmaes",
    "optuna.samplers.GPSampler": "gp",
    "optuna.samplers.GridSampler": "grid",
}
REFUSED = {
    "storage": "lit_hpo's study is its journal in hydra.sweep.dir; remove "
    "hydra.sweeper.storage (set hydra.sweep.dir to choose where the study lives)",
    "study_name": "the study is named by its directory; remove hydra.sweeper.study_name "
    "and set hydra.sweep.dir instead",
    "search_space": "rename hydra.sweeper.search_space to hydra.sweeper.params (its "
    "current name in hydra-optuna-sweeper, which lit_hpo reads)",
    "custom_search_space": "lit_hpo does not run a function to define the space (nothing "
    "in a study chooses code to run); list every dimension in hydra.sweeper.params and "
    "remove hydra.sweeper.custom_search_space",
    "max_failure_rate": "lit_hpo records a failed trial and goes on (a study whose metric "
    "is never logged stops after its first trial); remove hydra.sweeper.max_failure_rate",
}


def translate(sweeper: dict[str, Any], hpo: dict[str, Any]) -> dict[str, Any]:
    """The ``hpo`` settings with the hydra-optuna-sweeper fields of ``sweeper`` applied
    (a new dict; ``hpo`` unchanged when the node has none of them).

    Raises:
        ValueError: naming the field to change, and how.
    """
    given = {key: value for key, value in sweeper.items() if key in FIELDS and value is not None}
    if not given:
        return hpo
    hpo = dict(hpo)
    for key, why in REFUSED.items():
        if key in given:
            raise ValueError(f"hydra.sweeper.{key}={given[key]!r}: {why}.")
    if "params" in given:
        space = dict(hpo.get("space") or {})
        for key, expression in given["params"].items():
            if key in space and space[key] != expression:
                raise ValueError(
                    f"hydra.sweeper.params.{key}={expression!r} and hpo.space.{key}="
                    f"{space[key]!r} disagree; keep one of them."
                )
            space[key] = expression
        hpo["space"] = space
    if "direction" in given:
        _set(hpo, "mode", _mode(given["direction"]), "direction")
    if "n_trials" in given:
        _set(hpo, "max_trials", given["n_trials"], "n_trials")
        if hpo.get("max_wallclock_time", DEFAULTS.max_wallclock_time) == (
            DEFAULTS.max_wallclock_time
        ):
            hpo["max_wallclock_time"] = None  # its budget is trials, as with Optuna's sweeper
    if "n_jobs" in given:
        _set(hpo, "n_workers", given["n_jobs"], "n_jobs")
    if "sampler" in given:
        _sampler(dict(given["sampler"]), hpo)
    return hpo


def _mode(direction: Any) -> str:
    modes = {"minimize": "min", "maximize": "max"}
    if isinstance(direction, str) and direction.lower() in modes:
        return modes[direction.lower()]
    raise ValueError(
        f"hydra.sweeper.direction={direction!r}: lit_hpo optimizes one metric (hpo.metric); "
        "use direction: minimize or maximize (several directions are not supported)."
    )


def _sampler(sampler: dict[str, Any], hpo: dict[str, Any]) -> None:
    target = sampler.pop("_target_", None)
    if target not in SAMPLERS:
        raise ValueError(
            f"hydra.sweeper.sampler._target_={target!r} has no lit_hpo searcher; use one of "
            f"{', '.join(SAMPLERS)} (or remove hydra.sweeper.sampler and set hpo.searcher)."
        )
    _set(hpo, "searcher", SAMPLERS[target], "sampler._target_")
    if sampler.get("seed") is not None:
        _set(hpo, "seed", sampler.pop("seed"), "sampler.seed")
    sampler.pop("seed", None)
    if sampler.get("n_startup_trials") is not None and SAMPLERS[target] not in ("random", "grid"):
        # Optuna samples this many trials at random first; lit_hpo's model waits for this
        # many results at one level (hpo.min_points).
        _set(hpo, "min_points", max(2, int(sampler.pop("n_startup_trials"))),
             "sampler.n_startup_trials")  # fmt: skip
    sampler.pop("n_startup_trials", None)
    if sampler:
        first = next(iter(sampler))
        raise ValueError(
            f"hydra.sweeper.sampler.{first}={sampler[first]!r} has no lit_hpo equivalent; "
            f"remove it (lit_hpo's searcher settings: hpo.random_fraction, hpo.min_points, "
            "hpo.bandwidth_factor)."
        )


def _set(hpo: dict[str, Any], key: str, value: Any, field: str) -> None:
    """Set ``hpo[key]`` from ``hydra.sweeper.<field>``, unless the ``hpo`` node already
    sets it to something else than the default (then both were meant: refuse)."""
    current = hpo.get(key, getattr(DEFAULTS, key))
    if current not in (getattr(DEFAULTS, key), value):
        raise ValueError(
            f"hydra.sweeper.{field}={value!r} and hpo.{key}={current!r} disagree; keep one of them."
        )
    hpo[key] = value
