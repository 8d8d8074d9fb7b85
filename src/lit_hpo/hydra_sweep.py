"""What ``python train.py -m hpo=...`` does, behind the thin Hydra sweeper plugin.

1. Split the command-line overrides: sweep expressions (``model.learning_rate=
   tag(log,interval(0.001,1))``) become search-space dimensions and replace any
   ``hpo.space`` entry for the same key; a plain override of a key in ``hpo.space``
   (``model.learning_rate=0.05``) fixes it and removes it from the space; every other
   override is passed unchanged to every trial.
2. Validate everything (the ``hpo`` node, the space, one composed trial config) before a
   worker starts.
3. Open the journal, start a session, run the workers under the supervisor, and print
   the summary table and the best line at the end.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hydra.errors import CompactHydraException
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from lit_hpo.cluster import cluster_kind, launcher_keys, ranks_env_to_drop, submit_study
from lit_hpo.compose import TrialComposer, format_override
from lit_hpo.hydra_job import HydraJob, name_job, run_job
from lit_hpo.journal import JournalCorruptError, JournalWriteError, unwritable
from lit_hpo.launcher import TaskLoadError, Terminated, run_study, sigterm_interrupts
from lit_hpo.optuna_sweeper import translate as translate_optuna_sweeper
from lit_hpo.overrides import domain_from_override
from lit_hpo.policy import misconfigured
from lit_hpo.runlock import StudyBusyError, run_lock
from lit_hpo.safefiles import UnsafePathError, open_append, real_directory, write_bytes
from lit_hpo.searchers import random_suggest as suggest
from lit_hpo.spec import StudySpec, spec_from_config
from lit_hpo.study import StudyClient
from lit_hpo.summary import misconfigured_message, summarize
from lit_hpo.worker import EXIT_CORRUPT, EXIT_NO_TASK, EXIT_UNWRITABLE, WorkerArgs, worker_main


class StudyConfigError(CompactHydraException, ValueError):
    """The study's settings are invalid; raised before any worker starts. (Hydra prints
    a compact exception as its message alone, without a stack trace.)"""


def split_overrides(hpo: dict[str, Any], overrides: list[Any]) -> tuple[dict[str, Any], list[str]]:
    """Merge command-line overrides into the ``hpo`` node (a new dict).

    Returns:
        The ``hpo`` settings with the effective space and points, and the overrides to
        pass to every trial.
    """
    hpo = dict(hpo)
    space = dict(hpo.get("space") or {})
    base: list[str] = []
    for override in overrides:
        key = override.get_key_element()
        if override.is_sweep_override():
            space[key] = domain_from_override(override).to_json()
            continue
        space.pop(key, None)
        base.append(override.input_line)
    points = [
        {key: value for key, value in point.items() if key in space}
        for point in hpo.get("points_to_evaluate") or []
    ]
    hpo["space"] = space
    hpo["points_to_evaluate"] = [point for point in points if point]
    return hpo, base


def trial_composer(hydra_context: HydraContext, config: DictConfig, base: list[str],
                   spec: StudySpec) -> TrialComposer:  # fmt: skip
    """The study's trial composer, which has composed trial 0's config already: a key the
    config lacks fails now, before any worker, and workers forked from this process start
    their first trial without composing it twice (``compose.py``)."""
    sample = suggest(spec.space, spec.points_to_evaluate, spec.seed, 0)
    compose = TrialComposer(hydra_context.config_loader, config, base)
    try:
        compose(sample)
    except Exception as err:
        overrides = base + [format_override(key, value) for key, value in sample.items()]
        raise StudyConfigError(
            f"a trial's config cannot be composed with the overrides {overrides}: {err}\n"
            "Check that every key in hpo.space (and every sweep override) exists in the config."
        ) from err
    return compose


def hpo_settings(config: DictConfig) -> dict[str, Any]:
    """The study's settings: the ``hpo`` node, with a hydra-optuna-sweeper style
    ``hydra.sweeper`` node translated into it, and ``max_epochs`` defaulting to the
    trainer's.

    Raises:
        StudyConfigError: no settings at all, or a sweeper field that cannot be translated.
    """
    from omegaconf import OmegaConf

    node = OmegaConf.select(config, "hpo")
    sweeper = OmegaConf.to_container(config.hydra.sweeper, resolve=True)
    assert isinstance(sweeper, dict)
    if node is None and not sweeper.get("params"):
        raise StudyConfigError(
            "the lit_hpo sweeper needs an `hpo` config node; select one with hpo=asha or hpo=random"
        )
    hpo = OmegaConf.to_container(node, resolve=True) if node is not None else {}
    assert isinstance(hpo, dict)
    try:
        hpo = translate_optuna_sweeper(sweeper, hpo)
    except ValueError as err:
        raise StudyConfigError(str(err)) from None
    if hpo.get("max_epochs") is None:
        hpo["max_epochs"] = OmegaConf.select(config, "trainer.max_epochs", default=None)
    return hpo


def refuse_unsupported(config: Any, trial: Any) -> None:
    """Refuse, before anything is written, what cannot run inside a study (``trial``:
    the trial this process runs in, if any)."""
    from omegaconf import OmegaConf

    if trial is not None:
        raise StudyConfigError(
            f"this -m run was started from inside trial {trial.trial_id} of the study "
            f"{trial.study_dir} (LIT_HPO_TRIAL_ID is set); a trial cannot start a study, "
            "and that study was not touched. (The extra ranks Lightning's ddp launcher "
            "starts carry LOCAL_RANK > 0 and run the trial's job instead.)"
        )
    nodes = OmegaConf.select(config, "trainer.num_nodes", default=1)
    if _count(nodes) > 1:
        raise StudyConfigError(
            f"trainer.num_nodes={nodes}: a trial runs on its worker's machine; multi-node "
            "trials are not supported inside a study. Use trainer.num_nodes=1 (several "
            "devices per trial work: trainer.devices=N)."
        )


def devices_per_trial(config: Any) -> int:
    """How many devices (ranks) each trial uses: ``trainer.devices`` when a number."""
    from omegaconf import OmegaConf

    return _count(OmegaConf.select(config, "trainer.devices", default=1))


def _count(value: Any) -> int:
    """How many a Trainer ``devices``/``num_nodes`` value asks for: a number, a list of
    ids, or 1 (``-1``/``auto`` mean the visible devices, which is one worker's group)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return max(1, value)
    if hasattr(value, "__len__") and not isinstance(value, str):
        return max(1, len(value))
    return 1


def run_sweep(hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig,
              arguments: list[str]) -> Any:  # fmt: skip
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from lit_hpo.context import current_trial

    trial = current_trial()
    if trial is not None and os.environ.get("LOCAL_RANK", "0") != "0":
        return run_rank(hydra_context, task_function, config, arguments, trial)

    refuse_unsupported(config, trial)
    launcher = str(OmegaConf.select(config, "hydra.launcher._target_", default="") or "")
    kind = cluster_kind(launcher)
    if launcher and not launcher.endswith("BasicLauncher") and kind is None:
        raise StudyConfigError(
            f"hydra/launcher selects {launcher}, which lit_hpo cannot drive: it runs its own "
            "long-lived workers, on this machine (no hydra/launcher override) or as a SLURM "
            "job array (hydra/launcher=submitit_slurm, or submitit_local to try it here)."
        )
    parser = OverridesParser.create(config_loader=hydra_context.config_loader)
    overrides = parser.parse_overrides(arguments)
    try:
        hpo, base = split_overrides(hpo_settings(config), overrides)
        spec = spec_from_config(hpo)
        worker, wait = run_options(hpo)
    except (TypeError, ValueError) as err:
        raise StudyConfigError(str(err)) from err

    study_dir = Path(str(config.hydra.sweep.dir)).absolute()
    base = [*base, format_override("hydra.sweep.dir", str(study_dir))]
    compose = trial_composer(hydra_context, config, base, spec)
    if worker is not None:
        return _join(HydraJob.of(hydra_context, task_function, compose), spec, study_dir,
                     worker, devices_per_trial(config))  # fmt: skip
    if kind is not None:
        return _submit(config, spec, study_dir, kind, wait)

    with _one_run(study_dir), sigterm_interrupts():
        return _run(HydraJob.of(hydra_context, task_function, compose), config, spec,
                    study_dir)  # fmt: skip


def run_options(hpo: dict[str, Any]) -> tuple[int | None, bool]:
    """``hpo.worker`` and ``hpo.wait``, checked.

    Raises:
        ValueError: naming the bad value and what is expected.
    """
    worker, wait = hpo.get("worker"), hpo.get("wait", False)
    if worker is not None and (type(worker) is not int or worker < 0):
        raise ValueError(
            f"`hpo.worker` must be a worker number (an integer >= 0) or null, but got "
            f"{worker!r}; it joins the study in hydra.sweep.dir as that worker."
        )
    if type(wait) is not bool:
        raise ValueError(f"`hpo.wait` must be true or false, but got {wait!r}.")
    return worker, wait


def _join(job: HydraJob, spec: StudySpec, study_dir: Path, worker: int,
          per_trial: int) -> None:  # fmt: skip
    """Run this process as worker ``worker`` of the existing study (an array task, or a
    worker a user starts on another host); no session, no supervisor. ``per_trial``: each
    trial's devices (ranks), which Lightning starts itself (:func:`ranks_env_to_drop`)."""
    try:
        StudyClient(study_dir, lock=spec.lock, journal=spec.journal).join(spec)
    except (ValueError, JournalCorruptError) as err:
        raise StudyConfigError(str(err)) from None
    log = study_dir / "workers" / f"worker_{worker}.log"
    try:  # before anything else: the log is this worker's first write into the study
        real_directory(log.parent)
        os.close(open_append(log))
    except UnsafePathError as err:  # a link or a FIFO planted as its log
        raise StudyConfigError(f"worker {worker} cannot join the study: {err}") from None
    except OSError as err:
        raise StudyConfigError(
            f"worker {worker} cannot join the study in {study_dir}: {_refusal(err, log)}. "
            "A worker writes its log, checkpoints and reports there: make the directory "
            "writable from this machine, then start the worker again."
        ) from None
    print(f"lit_hpo: worker {worker} joins the study {study_dir} (log: {log})", flush=True)
    for key in ranks_env_to_drop(os.environ, per_trial):
        print(f"lit_hpo: {key} unset in this worker: Lightning's ddp launcher starts each "
              f"trial's {per_trial} ranks inside this one-task job", flush=True)  # fmt: skip
        del os.environ[key]
        # Lightning's hint to run under srun, which is what this worker does not want
        warnings.filterwarnings("ignore", message="The `srun` command is available")
    worker_main(WorkerArgs(str(study_dir), worker, job, log_path=str(log), journal=spec.journal))


@contextlib.contextmanager
def _one_run(study_dir: Path) -> Iterator[None]:
    """The study directory, created, and held by this ``-m`` run alone (``run.lock``, the
    first file it writes there, so a directory it cannot write is refused here)."""
    with contextlib.ExitStack() as stack:
        try:
            study_dir.mkdir(parents=True, exist_ok=True)
            stack.enter_context(run_lock(study_dir))
        except StudyBusyError as err:
            raise StudyConfigError(str(err)) from None
        except OSError as err:
            raise StudyConfigError(
                f"cannot run a study in {study_dir}: {_refusal(err, study_dir)}. Choose a "
                "directory you can write to with hydra.sweep.dir=<dir>, or fix it."
            ) from None
        yield


def _refusal(err: OSError, path: Path) -> str:
    """Why the study directory refused a write: not ours to write (EACCES), a read-only
    disk (EROFS), a planted link (ELOOP, from ``O_NOFOLLOW``)..."""
    if err.errno == errno.ELOOP:
        return f"{err.filename} is a symbolic link; lit_hpo never writes through one"
    return f"{err.strerror or err} ({err.filename or path})"


def _submit(config: DictConfig, spec: StudySpec, study_dir: Path, kind: str,
            wait: bool) -> None:  # fmt: skip
    """Open the study and submit its workers as a job array (:mod:`lit_hpo.cluster`)."""
    from omegaconf import OmegaConf

    node = OmegaConf.to_container(config.hydra.launcher, resolve=True)
    assert isinstance(node, dict)
    with _one_run(study_dir):
        try:
            submit_study(spec, study_dir, kind, node, launcher_keys(config.hydra.overrides.hydra),
                         str(config.hydra.runtime.cwd), lambda: write_multirun(config, study_dir),
                         wait, devices_per_trial(config))  # fmt: skip
        except (ValueError, JournalCorruptError) as err:
            raise StudyConfigError(str(err)) from None
        except JournalWriteError as error:
            raise stopped(error) from None
        except KeyboardInterrupt:  # Ctrl-C once more, after detaching (hpo.wait)
            raise SystemExit(130) from None


def write_multirun(config: DictConfig, study_dir: Path) -> None:
    """The run's config as ``multirun.yaml``, as Hydra's launchers write it.

    Raises:
        JournalWriteError: the disk refused it (full, a quota), naming the file.
    """
    from omegaconf import OmegaConf

    path = study_dir / "multirun.yaml"
    try:
        write_bytes(path, OmegaConf.to_yaml(config).encode())
    except OSError as error:
        raise unwritable(f"write {path}", error) from error


def _run(job: HydraJob, config: DictConfig, spec: StudySpec, study_dir: Path) -> Any:
    try:
        run_study(study_dir, spec, job, devices_per_trial(config),
                  lambda: write_multirun(config, study_dir))  # fmt: skip
    except ValueError as err:  # settings that cannot run; nothing started
        raise StudyConfigError(str(err)) from None
    except KeyboardInterrupt as stop:
        what = "terminated (SIGTERM)" if isinstance(stop, Terminated) else "interrupted"
        print(f"lit_hpo: {what}; rerun the same command to continue the study", flush=True)
        raise SystemExit(143 if isinstance(stop, Terminated) else 130) from None
    except (JournalWriteError, JournalCorruptError, TaskLoadError) as error:
        raise stopped(error) from None
    finally:
        try:
            study = summarize(study_dir, spec.journal)
        except KeyboardInterrupt:  # the summary was cut short; the run's end stands
            raise SystemExit(130) from None
    if study is None:
        raise SystemExit(EXIT_CORRUPT)
    bad = misconfigured(study.state)
    if bad is not None:
        print(f"lit_hpo: {misconfigured_message(bad)}", file=sys.stderr, flush=True)
        raise SystemExit(1)
    return study


def stopped(error: BaseException) -> SystemExit:
    """Say that the study stopped on ``error``; the ``-m`` run's exit, with its status."""
    print(f"lit_hpo: the study stopped: {error}", file=sys.stderr, flush=True)
    if isinstance(error, JournalWriteError):
        return SystemExit(EXIT_UNWRITABLE)
    return SystemExit(EXIT_NO_TASK if isinstance(error, TaskLoadError) else EXIT_CORRUPT)


def run_rank(hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig,
             arguments: list[str], trial: Any) -> None:  # fmt: skip
    """An extra rank of a running trial, never a study: Lightning's ``ddp`` launcher re-ran
    this command with the trial's environment and ``LOCAL_RANK``. Run that trial's job:
    its configuration recomputed from the study's header, its directory, its attempt.
    The rank stops when its trial's worker (rank 0, its parent) is gone."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.utils import JobStatus
    from omegaconf import open_dict

    die_with_parent()
    parser = OverridesParser.create(config_loader=hydra_context.config_loader)
    _, base = split_overrides(hpo_settings(config), parser.parse_overrides(arguments))
    base = [*base, format_override("hydra.sweep.dir", str(Path(trial.study_dir)))]
    values = StudyClient(trial.study_dir, journal=trial.journal).config_of(trial.trial_id)
    job = name_job(TrialComposer(hydra_context.config_loader, config, base)(values),
                   trial.trial_id)  # fmt: skip
    with open_dict(job):
        job.hydra.output_subdir = None  # rank 0 wrote the trial's .hydra files
    result = run_job(hydra_context, task_function, job)
    if result.status == JobStatus.FAILED:
        result.return_value  # noqa: B018 - re-raises the rank's exception: a non-zero exit


def die_with_parent() -> None:
    """An extra rank dies with its trial's worker (rank 0, its parent): blocked in a
    collective it would otherwise wait for the dead rank for the collective's timeout
    (30 min), holding the interpreter, so a watcher thread could not act. It records
    nothing, so the kernel kills it (``PR_SET_PDEATHSIG``); elsewhere a watcher does."""
    from lit_hpo.context import WORKER_PID

    parent = int(os.environ.get(WORKER_PID) or os.getppid())  # the worker that ran fit()
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
        if os.getppid() != parent:  # it died before the request: too late to be told
            os._exit(1)
        return
    from lit_hpo.worker import SupervisorWatch

    SupervisorWatch(parent, then=signal.SIGKILL)
