"""``lit_hpo.tune``: a study from Python, for notebooks and scripts without Hydra.

The same study as ``python train.py -m``: the same settings and their checks, journal,
schedulers, long-lived workers with GPU pinning, checkpoints and resume, summary and
figures. Only the job differs: each trial calls a Python function with its
configuration (:mod:`lit_hpo.function_job`) instead of running a Hydra job.

    from lit_hpo import tune, loguniform, randint

    study = tune(objective, {"learning_rate": loguniform(1e-2, 1),
                             "batch_size": randint(32, 256), "max_epochs": 10},
                 scheduler="asha", grace_period=2, n_workers=2, max_wallclock_time=300)
    study.results   # one row per report
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import reprlib
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lit_hpo.function_job import FunctionJob, check_signature
from lit_hpo.launcher import Terminated, run_study, sigterm_interrupts
from lit_hpo.policy import misconfigured
from lit_hpo.results import Study, load_study
from lit_hpo.runlock import run_lock
from lit_hpo.space import Choice, Float, Int
from lit_hpo.spec import StudySpec, spec_from_config
from lit_hpo.summary import misconfigured_message, summarize

_DOMAINS = (Float, Int, Choice)
_SETTING = re.compile(r"`?\bhpo\.(\w+)`?")


class StudyStoppedError(RuntimeError):
    """The study stopped early because no trial could report (see the message)."""


def tune(
    train: Callable[..., Any],
    config_space: Mapping[str, Any],
    *,
    study_dir: str | os.PathLike[str] | None = None,
    devices_per_trial: int = 1,
    **settings: Any,
) -> Study:
    """Run a study of ``train`` over ``config_space`` and return it.

    Args:
        train: the training function. Each trial calls it with the trial's
            configuration as keyword arguments (``train(learning_rate=0.1,
            batch_size=128, max_epochs=10)``), or as one dict if its only parameter is
            named ``config``. It reports every epoch, with ``lit_hpo.report(epoch=...,
            validation_error=...)`` or through Lightning's ``HPOCallback``, and may
            return anything. It can be defined in a notebook cell.
        config_space: the search space (``loguniform(1e-2, 1)``, ``randint(32, 256)``,
            ``uniform``, ``lograndint``, ``choice([...])``) and fixed values passed to
            every trial (``"max_epochs": 10``).
        study_dir: where the study lives; default ``studies/<function>-<date>_<time>``.
            A directory that holds a study continues it (same settings required), so
            running the same call again after an interruption goes on where it stopped.
        devices_per_trial: GPUs each trial uses (workers get groups of that many).
        **settings: the study's settings, as in ``hpo.*`` for ``-m`` runs:
            ``scheduler`` (fifo, asha, asha_promotion, hyperband), ``metric``, ``mode``,
            ``max_epochs`` (default: ``config_space["max_epochs"]``), ``grace_period``,
            ``reduction_factor``, ``brackets``, ``n_workers``, ``max_wallclock_time``,
            ``max_trials``, ``points_to_evaluate``, ``seed``, ``max_retries``,
            ``lease_seconds``, ``lock``; unset ones take the same defaults.

    Returns:
        The finished :class:`~lit_hpo.Study` (``.results``, ``.trials``, ``.best``,
        ``.plot()``).

    Raises:
        ValueError, TypeError: settings, a space or a function that cannot work, naming
            the value and the fix, before anything is written.
        StudyStoppedError: the first trials could not report (the function never calls
            ``report``, or reports another metric): the study stopped early.
        KeyboardInterrupt: after the workers recorded their trials as interrupted; call
            ``tune`` again with the same ``study_dir`` to continue.
        TaskLoadError: a worker could not import the function.
    """
    spec, constants = plan(train, config_space, settings)
    check_signature(train, [*constants, *spec.space])
    job = FunctionJob.of(train, constants)
    directory = Path(study_dir or default_study_dir(train)).absolute()
    directory.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        stack.enter_context(run_lock(directory))
        if threading.current_thread() is threading.main_thread():
            stack.enter_context(sigterm_interrupts())
        try:
            run_study(directory, spec, job, devices_per_trial)
        except KeyboardInterrupt as stop:
            what = "terminated (SIGTERM)" if isinstance(stop, Terminated) else "interrupted"
            print(f"lit_hpo: {what}; call tune(...) again with study_dir={str(directory)!r} "
                  "to continue the study", flush=True)  # fmt: skip
            raise
        except ValueError as error:
            raise ValueError(_plain_names(str(error))) from None
        finally:
            study = summarize(directory, spec.journal)
    if study is None:  # the journal cannot be replayed; summarize said why
        return load_study(directory, spec.journal)
    bad = misconfigured(study.state)
    if bad is not None:
        raise StudyStoppedError(misconfigured_message(bad))
    return study


def plan(
    train: Callable[..., Any], config_space: Mapping[str, Any], settings: dict[str, Any]
) -> tuple[StudySpec, dict[str, Any]]:
    """The validated study and the fixed values, from ``tune``'s arguments (pure).

    Raises:
        ValueError, TypeError: naming the offending value and the fix.
    """
    if not callable(train):
        raise TypeError(f"tune() needs a training function first, but got {train!r}.")
    if not isinstance(config_space, Mapping):
        raise TypeError(f"config_space must be a dict of names to domains and values, "
                        f"but got {config_space!r}.")  # fmt: skip
    named = next((key for key in config_space if not isinstance(key, str)), None)
    if named is not None:
        raise TypeError(f"config_space's names are the training function's argument names, "
                        f"so strings, but one is {named!r} ({type(named).__name__}); "
                        f"write it as {str(named)!r}.")  # fmt: skip
    if "space" in settings:
        raise TypeError("tune() takes the search space as config_space, not space=.")
    space = {key: dataclasses.replace(value, name=key).to_json()
             for key, value in config_space.items() if isinstance(value, _DOMAINS)}  # fmt: skip
    constants = {key: value for key, value in config_space.items() if key not in space}
    if not space:
        first = next((v for v in constants.values() if isinstance(v, list)), None)
        # reprlib: a long list shows as its first elements and "...", never in full
        hint = (f" (a list is one fixed value; to choose from one: choice({reprlib.repr(first)}))"
                if first is not None else "")  # fmt: skip
        raise ValueError(
            f"config_space has no range to search: every entry ({', '.join(constants)}) is a "
            "fixed value, passed to every trial as it is. Make the ones to tune ranges: "
            f"uniform(a, b), loguniform(a, b), randint(a, b), lograndint(a, b) or "
            f"choice([a, b, ...]){hint}."
        )
    hpo = {**settings, "space": space}
    if "max_epochs" not in hpo:
        if "max_epochs" not in constants:
            raise ValueError(
                "tune() needs the most epochs a trial trains: put a fixed max_epochs in the "
                "config space (as the textbook does: 'max_epochs': 10), or pass max_epochs=."
            )
        hpo["max_epochs"] = constants["max_epochs"]
    try:
        return spec_from_config(hpo), constants
    except (ValueError, TypeError) as error:
        raise type(error)(_plain_names(str(error))) from None


def _plain_names(message: str) -> str:
    """Settings as tune's keyword arguments: ``hpo.max_trials`` -> ``max_trials``."""
    return _SETTING.sub(lambda match: f"`{match.group(1)}`", message)


def default_study_dir(train: Callable[..., Any]) -> Path:
    name = re.sub(r"[^\w.-]", "_", getattr(train, "__name__", "study"))
    return Path("studies") / f"{name}-{time.strftime('%Y-%m-%d_%H-%M-%S')}"
