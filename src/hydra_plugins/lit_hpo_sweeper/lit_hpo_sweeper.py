"""The ``lit_hpo`` sweeper: a thin adapter; the work happens in :mod:`lit_hpo.hydra_sweep`.

Select it with ``defaults: [override /hydra/sweeper: lit_hpo]`` (``conf/hpo/*.yaml`` do).
The study's settings live in the task config's ``hpo`` node, so they are ordinary
command-line overrides (``hpo.n_workers=4``).

No ``from __future__ import annotations`` here: Hydra imports plugin modules without
registering them in ``sys.modules``, and ``dataclass`` then cannot resolve string
annotations.
"""

from dataclasses import dataclass
from typing import Any, Dict, Optional  # noqa: UP035 - see the docstring

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from lit_hpo import resolvers
from lit_hpo.settings import base_node


@dataclass
class LitHpoSweeperConf:
    """The study's settings are the task config's ``hpo`` node. The other fields are
    hydra-optuna-sweeper's, so that a config written for it runs under lit_hpo with only
    its sweeper override changed (:mod:`lit_hpo.optuna_sweeper` translates them)."""

    _target_: str = "hydra_plugins.lit_hpo_sweeper.lit_hpo_sweeper.LitHpoSweeper"
    params: Optional[Dict[str, Any]] = None  # noqa: UP006, UP045
    sampler: Optional[Dict[str, Any]] = None  # noqa: UP006, UP045
    direction: Optional[Any] = None  # noqa: UP045
    n_trials: Optional[int] = None  # noqa: UP045
    n_jobs: Optional[int] = None  # noqa: UP045
    storage: Optional[Any] = None  # noqa: UP045
    study_name: Optional[str] = None  # noqa: UP045
    search_space: Optional[Dict[str, Any]] = None  # noqa: UP006, UP045
    custom_search_space: Optional[str] = None  # noqa: UP045
    max_failure_rate: Optional[float] = None  # noqa: UP045


ConfigStore.instance().store(
    group="hydra/sweeper", name="lit_hpo", node=LitHpoSweeperConf, provider="lit_hpo"
)
# Every hpo.* default, from their one source (lit_hpo/settings.py); an `hpo` config
# starts from it with `defaults: [lit_hpo_base, ...]` and sets only what differs.
ConfigStore.instance().store(
    group="hpo", name="lit_hpo_base", node=base_node(), package="hpo", provider="lit_hpo"
)


resolvers.register()  # ${lit_hpo.resume_from:} for a project's own ckpt_path setting


class LitHpoSweeper(Sweeper):
    def __init__(self, **optuna_fields: Any) -> None:  # read from the config in run_sweep
        self.hydra_context: Optional[HydraContext] = None  # noqa: UP045 - see the docstring
        self.task_function: Optional[TaskFunction] = None  # noqa: UP045
        self.config: Optional[DictConfig] = None  # noqa: UP045

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.hydra_context = hydra_context
        self.task_function = task_function
        self.config = config

    def sweep(self, arguments: list[str]) -> Any:
        from lit_hpo.hydra_sweep import run_sweep

        assert self.hydra_context is not None and self.task_function is not None
        assert self.config is not None, "Hydra calls setup() before sweep()"
        return run_sweep(self.hydra_context, self.task_function, self.config, arguments)
