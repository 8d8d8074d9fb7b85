"""The ``lit_hpo`` sweeper: a thin adapter; the work happens in :mod:`lit_hpo.hydra_sweep`.

Select it with ``defaults: [override /hydra/sweeper: lit_hpo]`` (``conf/hpo/*.yaml`` do).
The study's settings live in the task config's ``hpo`` node, so they are ordinary
command-line overrides (``hpo.n_workers=4``).

No ``from __future__ import annotations`` here: Hydra imports plugin modules without
registering them in ``sys.modules``, and ``dataclass`` then cannot resolve string
annotations.
"""

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper

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
        self.hydra_context: Any = None
        self.task_function: Any = None
        self.config: Any = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        self.hydra_context = hydra_context
        self.task_function = task_function
        self.config = config

    def sweep(self, arguments: list[str]) -> Any:
        from lit_hpo.hydra_sweep import run_sweep

        return run_sweep(self.hydra_context, self.task_function, self.config, arguments)
