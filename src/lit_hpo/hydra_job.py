"""A trial as a Hydra job: the ``-m`` path's way of running one trial in a worker.

The training script's task function runs in-process through Hydra's ``run_job``, so each
trial gets its own composed config, output directory (``hydra.sweep.dir/
hydra.sweep.subdir``) and log file, exactly as a stock Hydra launcher would give it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.types import HydraContext
from omegaconf import DictConfig

from lit_hpo.compose import TrialComposer
from lit_hpo.context import trial_context
from lit_hpo.journal import JournalCorruptError, JournalWriteError
from lit_hpo.resolvers import register as register_resolvers
from lit_hpo.study import Claim, StudyClient
from lit_hpo.worker import JobResult, Runner, open_trial, trial_process_state


@dataclass(frozen=True)
class TaskRef:
    """How a worker finds the task function: by module name, or by file for a script
    (``train.py`` runs as ``__main__``). Hydra's decorator is unwrapped."""

    module: str
    qualname: str
    file: str | None

    @classmethod
    def of(cls, function: Callable[..., Any]) -> TaskRef:
        module = sys.modules.get(function.__module__)
        return cls(function.__module__, function.__qualname__, getattr(module, "__file__", None))

    def resolve(self) -> Callable[..., Any]:
        if self.module == "__main__":
            # A worker forked from the ``-m`` process has the script as ``__main__``; one
            # from the fork server (or spawned) has it imported as ``__mp_main__``; reuse
            # it rather than executing it a second time.
            loaded = (sys.modules.get("__main__"), sys.modules.get("__mp_main__"))
            module = next((m for m in loaded if getattr(m, "__file__", None) == self.file),
                          None)  # fmt: skip
            if module is None:
                if self.file is None:
                    raise RuntimeError("cannot locate the task function's script")
                spec = importlib.util.spec_from_file_location("_lit_hpo_task", self.file)
                assert spec is not None and spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
        else:
            module = importlib.import_module(self.module)
        function: Any = module
        for part in self.qualname.split("."):
            function = getattr(function, part)
        return getattr(function, "__wrapped__", function)

    def __str__(self) -> str:
        where = self.file if self.module == "__main__" else self.module
        return f"{self.qualname} from {where}"


@dataclass
class HydraJob:
    """What a worker needs to run trials as Hydra jobs; sent to it once, at start."""

    task: TaskRef
    hydra_context: HydraContext
    master_config: DictConfig
    base_overrides: list[str]
    singleton_state: Any  # Hydra's singletons without the OmegaConf resolvers

    @classmethod
    def of(cls, hydra_context: HydraContext, task_function: Any, config: DictConfig,
           base_overrides: list[str]) -> HydraJob:  # fmt: skip
        """The job of this ``-m`` process's task function, config and overrides."""
        from hydra.core.singleton import Singleton

        return cls(
            task=TaskRef.of(task_function),
            hydra_context=hydra_context,
            master_config=config,
            base_overrides=base_overrides,
            singleton_state={"instances": Singleton.get_state()["instances"]},
        )

    def describe(self) -> str:
        return f"the task function {self.task}"

    def load(self) -> Runner:
        """In the worker: restore Hydra's state, import the task function."""
        from hydra.core.singleton import Singleton
        from hydra.core.utils import setup_globals

        # OmegaConf resolvers are closures that plain pickle cannot send; this process
        # registers its own (Hydra's here, the task script's when it was imported).
        setup_globals()
        register_resolvers()  # ${lit_hpo.resume_from:}
        resolvers = Singleton.get_state()["omegaconf_resolvers"]
        Singleton.set_state({**self.singleton_state, "omegaconf_resolvers": resolvers})
        task = self.task.resolve()
        compose = TrialComposer(self.hydra_context.config_loader, self.master_config,
                                self.base_overrides)  # fmt: skip

        def run(client: StudyClient, claim: Claim, resume_from: Path | None) -> JobResult:
            return _run_job(self.hydra_context, task, compose, client, claim, resume_from)

        return run


def name_job(config: DictConfig, trial_id: int) -> DictConfig:
    """The trial's job id and number in its Hydra config (``hydra.job.id``/``num``)."""
    from omegaconf import open_dict

    with open_dict(config):
        config.hydra.job.id = f"trial_{trial_id}"
        config.hydra.job.num = trial_id
    return config


def _run_job(
    hydra_context: HydraContext,
    task: Callable[..., Any],
    compose: TrialComposer,
    client: StudyClient,
    claim: Claim,
    resume_from: Path | None,
) -> JobResult:
    from hydra.core.utils import JobStatus, run_job

    config = name_job(compose(claim.config), claim.trial.trial_id)
    trial_dir = Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)
    context = open_trial(trial_dir, client, claim, resume_from)
    with trial_process_state(), trial_context(context, client=client):
        result = run_job(
            hydra_context=hydra_context,
            task_function=task,
            config=config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
    output_dir = Path(str(config.hydra.runtime.output_dir))
    if result.status != JobStatus.FAILED:
        return JobResult(output_dir, None)
    try:
        result.return_value  # noqa: B018 - the property re-raises the task's exception
    except (JournalWriteError, JournalCorruptError):
        raise  # not the trial's fault: the study cannot go on (see worker_main)
    except Exception as error:
        text = "".join(traceback.format_exception(error))
        return JobResult(output_dir, text, type(error).__name__)
    return JobResult(output_dir, "the task failed without an exception")
