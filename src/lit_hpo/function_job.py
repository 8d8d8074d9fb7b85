"""A trial as a Python function call: how :func:`lit_hpo.tune` runs one trial in a worker.

The function travels to the workers once, serialised with ``cloudpickle``: a function
defined in a notebook cell or a script's ``__main__`` goes by value (with what it
uses from that namespace), one from an importable module by reference (the worker
imports it). It is called with the trial's configuration, inside the trial's own
directory (``<study>/trial_<id>``, the working directory for the call, so Lightning's
logs and TensorBoard files land there), with the trial in the environment like a
Hydra trial: ``HPOCallback``, :func:`lit_hpo.report` and :func:`lit_hpo.current_trial`
work the same.
"""

from __future__ import annotations

import inspect
import os
import pickle
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lit_hpo.context import trial_context
from lit_hpo.journal import JournalCorruptError, JournalWriteError
from lit_hpo.reporter import TrialStopped
from lit_hpo.study import Claim, StudyClient
from lit_hpo.worker import JobResult, Runner, open_trial, trial_process_state


def takes_config_dict(function: Callable[..., Any]) -> bool:
    """Whether ``function`` wants the whole configuration as one dict: its only
    parameter is called ``config``. Otherwise it gets the keys as keyword arguments."""
    parameters = list(inspect.signature(function).parameters.values())
    return len(parameters) == 1 and parameters[0].name == "config"


def check_signature(function: Callable[..., Any], keys: list[str]) -> None:
    """Refuse, before anything starts, a function that cannot take the configuration.

    Raises:
        TypeError: naming the keys it does not accept and the two ways to fix it.
    """
    if takes_config_dict(function):
        return
    signature = inspect.signature(function)
    parameters = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    accepted = {p.name for p in parameters if p.kind in (inspect.Parameter.KEYWORD_ONLY,
                inspect.Parameter.POSITIONAL_OR_KEYWORD)}  # fmt: skip
    missing = [key for key in keys if key not in accepted]
    required = [p.name for p in parameters if p.default is inspect.Parameter.empty and
                p.kind is not inspect.Parameter.VAR_POSITIONAL and p.name not in keys]  # fmt: skip
    if missing or required:
        name = getattr(function, "__qualname__", repr(function))
        problems = []
        if missing:
            problems.append(f"does not take {', '.join(map(repr, missing))}")
        if required:
            problems.append(f"requires {', '.join(map(repr, required))}, which the "
                            "config space does not give")  # fmt: skip
        raise TypeError(
            f"the training function {name}{signature} {' and '.join(problems)}. Each key of "
            "the config space is passed as a keyword argument: make the parameters match "
            "the keys (add **kwargs to ignore some), or take the whole configuration as "
            "one parameter named config."
        )


@dataclass
class FunctionJob:
    """What a worker needs to run trials as function calls; sent to it once, at start.

    Args:
        function: the training function, serialised with ``cloudpickle``.
        name: its qualified name, for messages.
        constants: the config space's fixed values, passed to every trial.
    """

    function: bytes
    name: str
    constants: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, function: Callable[..., Any], constants: Mapping[str, Any]) -> FunctionJob:
        """Raises:
        TypeError: when the function (or what it captures) cannot be sent to a worker."""
        import cloudpickle

        name = f"{function.__module__}.{getattr(function, '__qualname__', function)}"
        try:
            data = cloudpickle.dumps(function)
            pickle.dumps(dict(constants))
        except Exception as error:
            raise TypeError(
                f"the training function {name} (or a value it uses) cannot be sent to the "
                f"worker processes: {type(error).__name__}: {error}. Create what the "
                "function needs (models, data, open files, locks) inside it, and give "
                "plain values in the config space."
            ) from error
        return cls(data, name, dict(constants))

    def describe(self) -> str:
        return f"the training function {self.name}"

    def load(self) -> Runner:
        """In the worker: deserialise the function (importing its module if it was
        pickled by reference)."""
        function = pickle.loads(self.function)
        as_dict = takes_config_dict(function)

        def call(config: dict[str, Any]) -> Any:
            return function(config) if as_dict else function(**config)

        def run(client: StudyClient, claim: Claim, resume_from: Path | None) -> JobResult:
            return _call(call, self.constants, client, claim, resume_from)

        return run


def _call(
    call: Callable[[dict[str, Any]], Any],
    constants: dict[str, Any],
    client: StudyClient,
    claim: Claim,
    resume_from: Path | None,
) -> JobResult:
    trial_dir = client.directory / f"trial_{claim.trial.trial_id}"
    context = open_trial(trial_dir, client, claim, resume_from)
    with trial_process_state(), trial_context(context, client=client):
        os.chdir(trial_dir)
        try:
            call({**constants, **claim.config})
        except TrialStopped:
            pass  # the scheduler's decision is in the journal already
        except (JournalWriteError, JournalCorruptError):
            raise  # not the trial's fault: the study cannot go on (see worker_main)
        except Exception as error:
            text = "".join(traceback.format_exception(error))
            return JobResult(trial_dir, text, type(error).__name__)
    return JobResult(trial_dir, None)
