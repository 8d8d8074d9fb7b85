"""Which trial this process is running, passed through the environment.

The worker sets these variables around each trial; :class:`~lit_hpo.HPOCallback` reads
them. The environment (rather than a Python object) is what also reaches the extra
processes a DDP strategy starts, so every rank agrees on whether it is in a study.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

STUDY_DIR = "LIT_HPO_STUDY_DIR"
TRIAL_ID = "LIT_HPO_TRIAL_ID"
TRIAL_NAME = "LIT_HPO_TRIAL_NAME"
ATTEMPT = "LIT_HPO_ATTEMPT"
RESUME_FROM = "LIT_HPO_RESUME_FROM"
WORKER_PID = "LIT_HPO_WORKER_PID"  # the process running the trial (a DDP rank's parent)
JOURNAL = "LIT_HPO_JOURNAL"  # hpo.journal when the journal is on a server
# The worker's StudyClient, handed to HPOCallback in the same process (one client, one
# replayed state per worker process). DDP ranks in other processes open their own.
_CLIENT: ContextVar[Any] = ContextVar("lit_hpo_client", default=None)


@dataclass(frozen=True)
class TrialContext:
    """Args:
    study_dir: the study directory.
    trial_id: the trial's id in the journal.
    name: a short run name from the trial's hyperparameters, for loggers
        (``learning_rate=0.1301,batch_size=149``).
    attempt: 0 for the first run of the trial, +1 for each resume.
    resume_from: the checkpoint to resume from (pass it as ``trainer.fit(...,
        ckpt_path=trial.resume_from)``), or ``None`` to start from scratch.
    journal: the study's PostgreSQL URL (``hpo.journal``), or ``None`` for its file.
    """

    study_dir: str
    trial_id: int
    name: str = ""
    attempt: int = 0
    resume_from: str | None = None
    journal: str | None = None


def current_trial(environ: MutableMapping[str, str] = os.environ) -> TrialContext | None:
    """The trial this process runs, or ``None`` outside a study."""
    study_dir, trial_id = environ.get(STUDY_DIR), environ.get(TRIAL_ID)
    if not study_dir or trial_id is None:
        return None
    return TrialContext(
        study_dir,
        int(trial_id),
        environ.get(TRIAL_NAME, ""),
        int(environ.get(ATTEMPT, "0")),
        environ.get(RESUME_FROM) or None,
        environ.get(JOURNAL) or None,
    )


def current_client() -> Any:
    """The running worker's ``StudyClient`` in this process, or ``None``."""
    return _CLIENT.get()


@contextmanager
def trial_context(
    context: TrialContext, environ: MutableMapping[str, str] = os.environ, client: Any = None
) -> Iterator[None]:
    """Set the trial context (and, given, the worker's client) for the block."""
    environ[STUDY_DIR], environ[TRIAL_ID] = context.study_dir, str(context.trial_id)
    environ[TRIAL_NAME] = context.name
    environ[ATTEMPT] = str(context.attempt)
    environ[RESUME_FROM] = context.resume_from or ""
    environ[WORKER_PID] = str(os.getpid())
    environ[JOURNAL] = context.journal or ""
    token = _CLIENT.set(client)
    try:
        yield
    finally:
        _CLIENT.reset(token)
        for key in (STUDY_DIR, TRIAL_ID, TRIAL_NAME, ATTEMPT, RESUME_FROM, WORKER_PID, JOURNAL):
            environ.pop(key, None)
