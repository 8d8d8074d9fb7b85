"""A trial as a Hydra job: the ``-m`` path's way of running one trial in a worker.

The training script's task function runs in-process as a Hydra job (:func:`run_job`), so
each trial gets its own composed config, output directory (``hydra.sweep.dir/
hydra.sweep.subdir``), ``.hydra/*.yaml`` files and log file, exactly as a stock Hydra
launcher would give it.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import logging
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.types import HydraContext, TaskFunction
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
    compose: TrialComposer  # the -m process's, which composed the first trial already
    singleton_state: Any  # Hydra's singletons without the OmegaConf resolvers

    @classmethod
    def of(cls, hydra_context: HydraContext, task_function: Any,
           compose: TrialComposer) -> HydraJob:  # fmt: skip
        """The job of this ``-m`` process's task function and trial composer."""
        from hydra.core.singleton import Singleton

        return cls(
            task=TaskRef.of(task_function),
            hydra_context=hydra_context,
            compose=compose,
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

        def run(client: StudyClient, claim: Claim, resume_from: Path | None) -> JobResult:
            return _run_trial(self.hydra_context, task, self.compose, client, claim,
                              resume_from)  # fmt: skip

        return run


def name_job(config: DictConfig, trial_id: int) -> DictConfig:
    """The trial's job id and number in its Hydra config (``hydra.job.id``/``num``)."""
    from omegaconf import open_dict

    with open_dict(config):
        config.hydra.job.id = f"trial_{trial_id}"
        config.hydra.job.num = trial_id
    return config


def _run_trial(
    hydra_context: HydraContext,
    task: Callable[..., Any],
    compose: TrialComposer,
    client: StudyClient,
    claim: Claim,
    resume_from: Path | None,
) -> JobResult:
    from hydra.core.utils import JobStatus

    config = name_job(compose(claim.config), claim.trial.trial_id)
    trial_dir = Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)
    context = open_trial(trial_dir, client, claim, resume_from)
    with trial_process_state(), trial_context(context, client=client):
        result = run_job(hydra_context, task, config)
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


CHDIR_DEPRECATED = (  # Hydra's own words, for a job that changes directory by default
    "Future Hydra versions will no longer change working directory at job runtime by default.\n"
    "See https://hydra.cc/docs/1.2/upgrades/1.1_to_1.2/changes_to_job_working_dir/ for more "
    "information."
)


def run_job(hydra_context: HydraContext, task: TaskFunction, config: DictConfig) -> JobReturn:
    """Hydra's ``hydra.core.utils.run_job`` for a sweep job (``hydra.sweep.dir/subdir``),
    with the same effects in under half the time (README "Performance"). Hydra's copies
    the Hydra node four times (``set_config`` twice, the task's config, then the node
    again) and writes the ``.hydra/*.yaml`` files with PyYAML's pure-Python emitter; here
    the node is not copied (:func:`hydra_view`) and the files come from libyaml's emitter
    with OmegaConf's own representer (the same text).
    ``tests/test_hydra_job.py`` runs both on the same trial and compares every effect."""
    from hydra import version
    from hydra._internal.deprecation_warning import deprecation_warning
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import JobRuntime, JobStatus, configure_log, env_override
    from omegaconf import OmegaConf, open_dict, read_write

    singleton = HydraConfig.instance()
    saved, cwd = singleton.cfg, os.getcwd()
    hydra = singleton.cfg = hydra_view(config)  # first: ${hydra:...} in the sweep dir
    output_dir = os.path.abspath(os.path.join(str(config.hydra.sweep.dir),
                                              str(config.hydra.sweep.subdir)))  # fmt: skip
    for runtime in (config.hydra.runtime, hydra.hydra.runtime):  # one node, or Hydra's two
        with read_write(runtime), open_dict(runtime):
            runtime.output_dir = output_dir
    # The task's own copy, without copying the Hydra node it then drops: the memo stands a
    # placeholder in for that node (Python's deepcopy protocol, which OmegaConf follows).
    task_config = copy.deepcopy(config, {id(config.hydra): OmegaConf.create()})
    with read_write(task_config), open_dict(task_config):
        del task_config["hydra"]
    chdir = hydra.hydra.job.chdir
    if chdir is None:  # Hydra's default: change directory only for version_base < 1.2
        chdir = not version.base_at_least("1.2")
        if chdir:
            deprecation_warning(CHDIR_DEPRECATED, stacklevel=2)
    result = JobReturn(
        overrides=list(config.hydra.overrides.task),
        cfg=task_config,
        hydra_cfg=hydra,
        working_dir=output_dir if chdir else cwd,
    )
    try:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        if chdir:
            os.chdir(output_dir)
        configure_log(config.hydra.job_logging, config.hydra.verbose)
        if config.hydra.output_subdir is not None:
            files = Path(output_dir) / str(config.hydra.output_subdir)
            files.mkdir(parents=True, exist_ok=True)
            written = (task_config, hydra, config.hydra.overrides.task)
            for name, node in zip(("config", "hydra", "overrides"), written, strict=True):
                (files / f"{name}.yaml").write_text(to_yaml(node), encoding="utf-8")
        with env_override(dict(hydra.hydra.job.env_set)):
            hydra_context.callbacks.on_job_start(config=config, task_function=task)
            try:
                result.return_value = task(task_config)
                result.status = JobStatus.COMPLETED
            except Exception as error:
                result.return_value = error
                result.status = JobStatus.FAILED
        result.task_name = JobRuntime.instance().get("name")
        _flush_logs()
        hydra_context.callbacks.on_job_end(config=config, job_return=result)
        return result
    finally:
        singleton.cfg = saved
        os.chdir(cwd)


def hydra_view(config: DictConfig) -> DictConfig:
    """What ``HydraConfig.set_config(config)`` stores (``{"hydra": <node>}``, the node
    read-only with ``config`` as its parent, for interpolations into the task's keys),
    sharing ``config``'s node instead of copying it: the trial's config is this job's own,
    used once. OmegaConf's ``no_deepcopy_set_nodes`` flag (Hydra's own composition uses
    it) keeps the node as it is; an OmegaConf that copies anyway gives Hydra's copy."""
    from hydra.conf import HydraConf
    from omegaconf import OmegaConf, flag_override

    node = config.hydra
    OmegaConf.set_readonly(node, True)
    assert issubclass(OmegaConf.get_type(config, "hydra") or object, HydraConf)
    view = OmegaConf.create()
    with flag_override(view, "no_deepcopy_set_nodes", True):
        view.hydra = node
    view.hydra._set_parent(config)
    return view


def _flush_logs() -> None:
    """Flush every logger's handlers (the job's log file above all), as Hydra does."""
    known = logging.root.manager.loggerDict.values()
    for logger in [logging.getLogger(), *(x for x in known if isinstance(x, logging.Logger))]:
        for handler in logger.handlers:
            handler.flush()


def to_yaml(node: Any) -> str:
    """``OmegaConf.to_yaml(node)``, the same text about four times faster: OmegaConf's own
    representer (quotes strings that read as booleans or numbers) on libyaml's emitter.
    Without libyaml (or with an OmegaConf that moved its dumper), OmegaConf's."""
    import yaml
    from omegaconf import OmegaConf

    try:
        from omegaconf._utils import get_omega_conf_dumper
        from yaml import CDumper
    except ImportError:
        return OmegaConf.to_yaml(node)

    class Dumper(CDumper):  # type: ignore[misc,valid-type]
        pass

    Dumper.add_representer(str, get_omega_conf_dumper().str_representer)
    container = OmegaConf.to_container(node, resolve=False, enum_to_str=True)
    text: str = yaml.dump(container, Dumper=Dumper, default_flow_style=False,
                          allow_unicode=True, sort_keys=False)  # fmt: skip
    return text
