"""The ``lit_hpo`` sweeper: a thin adapter; the work happens in :mod:`lit_hpo.hydra_sweep`.

Select it with ``defaults: [override /hydra/sweeper: lit_hpo]`` (``conf/hpo/*.yaml`` do).
The study's settings live in the task config's ``hpo`` node, so they are ordinary
command-line overrides (``hpo.n_workers=4``).

No ``from __future__ import annotations`` here: Hydra imports plugin modules without
registering them in ``sys.modules``, and ``dataclass`` then cannot resolve string
annotations.
"""

from dataclasses import dataclass
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from lit_hpo import resolvers
from lit_hpo.settings import base_node


@dataclass
class LitHpoSweeperConf:
    _target_: str = "hydra_plugins.lit_hpo_sweeper.lit_hpo_sweeper.LitHpoSweeper"


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
    def __init__(self) -> None:
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
