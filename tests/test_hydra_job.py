"""A trial's Hydra job (``lit_hpo.hydra_job.run_job``) has every effect of Hydra's own
``run_job``: the same files, the same config and Hydra node in the task, the same
environment, working directory, logging, callbacks and outcome, and leaves the process
as it found it."""

from __future__ import annotations

import copy
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hydra._internal.callbacks import Callbacks
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.utils import create_config_search_path
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobStatus
from hydra.core.utils import run_job as hydras_run_job
from hydra.types import HydraContext, RunMode
from omegaconf import DictConfig, OmegaConf

from lit_hpo.compose import TrialComposer, format_override
from lit_hpo.hydra_job import name_job, run_job, to_yaml
from tests.conftest import ROOT

NASTY = ["true", "1.0", "10", "null", "ünï 日本", "it's", 'q"q', "a: b", "- x", "#", "", " x "]
EVENTS: list[tuple[str, Any]] = []  # what SpyCallback saw, in order


class SpyCallback:
    """A Hydra callback (``hydra.callbacks``) that records the job's start and end."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        EVENTS.append(("start", config.hydra.job.num))

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        EVENTS.append(("end", job_return.status))


@pytest.fixture
def process_state() -> Iterator[None]:
    """A job configures logging and the Hydra singleton: put them back for pytest."""
    from hydra import version
    from hydra.core.utils import setup_globals

    setup_globals()  # the ${hydra:...} resolver, as in a worker
    root = logging.getLogger()
    handlers, level, hydra = root.handlers[:], root.level, HydraConfig.instance().cfg
    base = version.VersionBase.instance().version_base
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:], root.level = handlers, level
        HydraConfig.instance().cfg = hydra
        version.VersionBase.instance().version_base = base
        EVENTS.clear()


def _trial(tmp_path: Path, *run: str) -> tuple[HydraContext, DictConfig]:
    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(ROOT / "conf")))
    overrides = [
        "hpo=asha",
        f"hydra.sweep.dir={tmp_path / 'study'}",
        "++hydra.job.env_set.LIT_HPO_JOB_TEST=from_env_set",
        "++hydra.callbacks.spy._target_=tests.test_hydra_job.SpyCallback",
        format_override("++notes", NASTY),
        *run,
    ]
    master = loader.load_configuration("config", overrides, run_mode=RunMode.MULTIRUN)
    compose = TrialComposer(loader, master, overrides)
    config = name_job(compose({"model.learning_rate": 0.0123, "data.batch_size": 77}), 7)
    return HydraContext(config_loader=loader, callbacks=Callbacks(master)), config


def _observe(runner: Any, context: HydraContext, config: DictConfig, fail: bool) -> dict:
    seen: dict[str, Any] = {}

    def task(cfg: DictConfig) -> float:
        seen["task_config"] = OmegaConf.to_yaml(cfg)
        seen["flags"] = (OmegaConf.is_struct(cfg), OmegaConf.is_readonly(cfg), type(cfg),
                         OmegaConf.get_type(cfg), cfg._get_parent())  # fmt: skip
        seen["hydra_node"] = OmegaConf.to_yaml(HydraConfig.get())
        seen["resolved_output_dir"] = OmegaConf.create({"d": "${hydra:runtime.output_dir}"}).d
        seen["env"] = os.environ.get("LIT_HPO_JOB_TEST")
        seen["cwd"] = os.getcwd()
        logging.getLogger("my.task").info("hello from the task")
        if fail:
            raise ValueError("the task failed")
        return 0.5

    cwd, hydra = os.getcwd(), HydraConfig.instance().cfg
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        result = runner(context, task, config)
    trial_dir = Path(str(config.hydra.runtime.output_dir))
    outcome: dict[str, Any] = {
        **seen,
        "status": result.status,
        "task_name": result.task_name,
        "overrides": list(result.overrides),
        "working_dir": result.working_dir,
        "cfg": OmegaConf.to_yaml(result.cfg),
        "hydra_cfg": OmegaConf.to_yaml(result.hydra_cfg),
        "events": EVENTS[:],
        "warnings": [str(w.message) for w in warned if "working directory" in str(w.message)],
        "files": {p.name: p.read_bytes() for p in sorted((trial_dir / ".hydra").iterdir())},
        "logs": {
            p.name: [line.split(" - ")[-1] for line in p.read_text().splitlines()]
            for p in trial_dir.glob("*.log")
        },
        "after": (
            os.getcwd() == cwd,
            HydraConfig.instance().cfg is hydra,
            os.environ.get("LIT_HPO_JOB_TEST"),
        ),
    }
    if fail:
        with pytest.raises(ValueError, match="the task failed"):
            result.return_value  # noqa: B018
    else:
        outcome["return_value"] = result.return_value
    EVENTS.clear()
    return outcome


def hydras(context: HydraContext, task: Any, config: DictConfig) -> Any:
    return hydras_run_job(task_function=task, config=config, job_dir_key="hydra.sweep.dir",
                          job_subdir_key="hydra.sweep.subdir", hydra_context=context)  # fmt: skip


@pytest.mark.parametrize("fail", [False, True], ids=["completed", "failed"])
@pytest.mark.parametrize("chdir", ["false", "true", "null"])
def test_a_trials_job_has_every_effect_of_hydras_run_job(
    tmp_path: Path, process_state: None, chdir: str, fail: bool
) -> None:
    import shutil

    from hydra import version

    context, config = _trial(tmp_path, f"hydra.job.chdir={chdir}")
    if chdir == "null":  # a script with version_base < 1.2: Hydra changes directory, warning
        version.VersionBase.instance().setbase(version.Version("1.1"))
    theirs = _observe(hydras, context, copy.deepcopy(config), fail)
    shutil.rmtree(tmp_path / "study")
    ours = _observe(run_job, context, copy.deepcopy(config), fail)
    assert ours == theirs
    trial_dir = str(tmp_path / "study" / "trial_7")
    assert ours["resolved_output_dir"] == trial_dir and ours["env"] == "from_env_set"
    assert ours["cwd"] == (trial_dir if chdir != "false" else os.getcwd())
    assert len(ours["warnings"]) == (chdir == "null")
    assert ours["after"] == (True, True, None)  # cwd, Hydra's singleton, environment back
    assert sorted(ours["files"]) == ["config.yaml", "hydra.yaml", "overrides.yaml"]
    assert [lines[-1] for lines in ours["logs"].values()] == ["hello from the task"]
    status = JobStatus.FAILED if fail else JobStatus.COMPLETED
    assert ours["events"] == [("start", 7), ("end", status)]
    assert OmegaConf.create(ours["files"]["config.yaml"].decode()).notes == NASTY


@pytest.mark.parametrize(
    "value", [*NASTY, "multi\nline", "x" * 200, "tab\there", 1e-05, 3, True, None, [1, "é"]]
)
def test_yaml_is_omegaconfs_own_text(value: Any) -> None:
    node = OmegaConf.create({"a": {"value": value, "list": [value, {"k": value}]}, "i": "${a}"})
    assert to_yaml(node) == OmegaConf.to_yaml(node)


def test_the_jobs_hydra_config_shares_the_trials_node_and_resolves_into_its_keys(
    tmp_path: Path,
) -> None:
    from lit_hpo.hydra_job import hydra_view

    _, config = _trial(tmp_path, "++hydra.job.name=job_${model.learning_rate}")
    view = hydra_view(config)
    assert view._get_node("hydra") is config._get_node("hydra")  # not a copy
    assert view.hydra._get_parent() is config and OmegaConf.is_readonly(config.hydra)
    assert view.hydra.job.name == "job_0.0123"  # interpolation into the task's keys
    hydra_copy = OmegaConf.masked_copy(config, "hydra")  # what Hydra's set_config stores
    assert OmegaConf.to_yaml(view) == OmegaConf.to_yaml(hydra_copy)
