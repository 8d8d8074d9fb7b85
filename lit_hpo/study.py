"""The locked steps every process takes on a study: open, claim, report, end.

Each step takes the journal lock, reads the records it has not seen yet (from its byte
offset), decides from the replayed state, appends, and releases the lock — so two
workers can never claim the same trial id, and every decision is taken on the state
every earlier decision produced.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lit_hpo.journal import Journal
from lit_hpo.policy import decide, may_start_trial
from lit_hpo.schedulers import Decision, make_scheduler
from lit_hpo.searcher import suggest
from lit_hpo.space import space_from_json
from lit_hpo.spec import StudySpec, check_compatible
from lit_hpo.state import StudyState, Trial

JOURNAL_NAME = "journal.jsonl"


def encode_value(value: float) -> dict[str, Any]:
    """A metric value as strict-JSON fields: non-finite values become ``null`` + ``raw``."""
    if math.isfinite(value):
        return {"value": value}
    return {"value": None, "raw": str(value)}  # "nan", "inf" or "-inf"


class StudyClient:
    """One process's handle on a study directory.

    Args:
        directory: the study directory (``hydra.sweep.dir``).
        clock: the time source (seconds since the epoch), replaceable in tests.
    """

    def __init__(
        self, directory: str | os.PathLike[str], clock: Callable[[], float] = time.time
    ) -> None:
        self.directory = Path(directory)
        self.journal = Journal(self.directory / JOURNAL_NAME)
        self.state = StudyState()
        self._offset = 0
        self._clock = clock

    def refresh(self) -> StudyState:
        """Fold in the records appended since the last read (lock-free)."""
        records, self._offset = self.journal.read(self._offset)
        self.state.apply_all(records)
        return self.state

    @property
    def header(self) -> dict[str, Any]:
        if self.state.header is None:
            self.refresh()
        if self.state.header is None:
            raise FileNotFoundError(f"no study journal with a header at {self.journal.path}")
        return self.state.header

    def _append(self, record: dict[str, Any]) -> None:
        self.journal.append([record])
        self.refresh()

    def open(self, spec: StudySpec, n_workers: int) -> list[Trial]:
        """Create the study, or check that an existing one has the same settings, and
        start a session. Trials left running by an earlier session are marked failed.

        Returns:
            The trials that were marked failed as interrupted.

        Raises:
            ValueError: when the journal was written for different settings.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.journal.locked():
            self.refresh()
            now = self._clock()
            if self.state.header is None:
                self._append(spec.header(now))
            else:
                check_compatible(self.state.header, spec, str(self.directory))
            interrupted = self.state.running()
            for trial in interrupted:
                self.end(trial.trial_id, "failed", "interrupted", "the run that ran it ended")
            self._append(
                {
                    "op": "session",
                    "time": now,
                    "n_workers": n_workers,
                    "budget": spec.budget.to_json(),
                    "pid": os.getpid(),
                }
            )
        return interrupted

    def claim(self, worker: int) -> Trial | None:
        """Take the next trial for ``worker``, or ``None`` when the budget is spent."""
        with self.journal.locked():
            state = self.refresh()
            header = self.header
            if not may_start_trial(state, self._clock()):
                return None
            trial_id = len(state.trials)
            config = suggest(
                space_from_json(header["space"]),
                header["points_to_evaluate"],
                header["seed"],
                trial_id,
            )
            record = {
                "op": "claim",
                "trial": trial_id,
                "worker": worker,
                "pid": os.getpid(),
                "config": config,
                "time": self._clock(),
            }
            self._append(record)
            return self.state.trials[trial_id]

    def report(self, trial_id: int, epoch: int, value: float) -> Decision:
        """Record ``value`` after ``epoch`` epochs and return the decision taken for it.

        A report for a trial that already ended is not written; it gets ``stop``/``ended``.

        Raises:
            ValueError: for an epoch that is not after the trial's last reported one.
        """
        with self.journal.locked():
            state = self.refresh()
            trial = state.trials[trial_id]
            if trial.reports and epoch <= trial.reports[-1].epoch:
                raise ValueError(
                    f"trial {trial_id} already reported epoch {trial.reports[-1].epoch}; "
                    f"got epoch {epoch}. Report once per epoch (validate once per epoch: "
                    "val_check_interval=1.0, check_val_every_n_epoch=1)."
                )
            now = self._clock()
            decision = decide(
                make_scheduler(self.header["scheduler"]), state, trial_id, epoch, value, now
            )
            if decision.reason == "ended":
                return decision
            self._append(
                {
                    "op": "report",
                    "trial": trial_id,
                    "epoch": epoch,
                    **encode_value(value),
                    "decision": decision.action,
                    "reason": decision.reason,
                    "worker": trial.worker,
                    "time": now,
                }
            )
            return decision

    def end(
        self, trial_id: int, status: str, reason: str | None = None, error: str | None = None
    ) -> None:
        """Record how a trial ended (no-op if it already has a terminal status)."""
        with self.journal.locked():
            if self.refresh().trials[trial_id].status != "running":
                return
            record: dict[str, Any] = {
                "op": "end",
                "trial": trial_id,
                "status": status,
                "time": self._clock(),
            }
            if reason:
                record["reason"] = reason
            if error:
                record["error"] = error[-4000:]
            self._append(record)
