"""Analysis of a study, read from its journal only: DataFrames, the best trial, the
seeds' status table. Works while the study runs (``refresh()`` reads new records)."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lit_hpo.pg_journal import check_url
from lit_hpo.pg_marker import PG_MARKER
from lit_hpo.space import short_names
from lit_hpo.state import StudyState, Trial
from lit_hpo.study import JOURNAL_NAME, StudyClient

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as err:  # pragma: no cover - pandas is a core dependency
        raise ImportError("load_study needs pandas: pip install pandas") from err
    return pandas


@dataclass(frozen=True)
class Best:
    trial_id: int
    config: dict[str, Any]
    value: float
    epoch: int


def best_report(state: StudyState) -> Best | None:
    """The best finite value reported by any trial (earliest wins a tie)."""
    best: Best | None = None
    sign = state.sign
    for trial in state.trials:
        for report in trial.reports:
            if report.value is None:
                continue
            if best is None or sign * report.value < sign * best.value:
                best = Best(trial.trial_id, trial.config, report.value, report.epoch)
    return best


def busy_seconds(trial: Trial, now: float) -> float:
    """Time workers spent on the trial, over all its attempts (running ones up to now)."""
    return sum((now if seg.end is None else seg.end) - seg.start for seg in trial.segments)


def utilization(state: StudyState, now: float) -> float:
    """Busy trial time / (workers x wall time) over the sessions (the study's active time)."""
    if not state.sessions:
        return math.nan
    capacity = 0.0  # worker-seconds available
    for index, (start, last, workers) in enumerate(state.sessions):
        end = now if index == len(state.sessions) - 1 else last
        capacity += workers * max(0.0, end - start)
    busy = sum(busy_seconds(t, now) for t in state.trials)
    return busy / capacity if capacity > 0 else math.nan


class Study:
    """A study directory opened for analysis (see :func:`load_study`)."""

    def __init__(self, directory: str | os.PathLike[str], journal: str | None = None) -> None:
        self.directory = Path(directory)
        self._client = StudyClient(self.directory, journal=journal)

    def refresh(self) -> Study:
        """Read the records appended since the last call."""
        self._client.refresh()
        return self

    @property
    def state(self) -> StudyState:
        return self._client.state

    @property
    def header(self) -> dict[str, Any]:
        return self._client.header

    @property
    def metric(self) -> str:
        return str(self.header["metric"])

    @property
    def start_time(self) -> float:
        return float(self.header["time"])

    def _names(self) -> dict[str, str]:
        return short_names(list(self.header["space"]))

    @property
    def results(self) -> pd.DataFrame:
        """One row per report: trial_id, epoch, <metric>, time (s since the study
        started), worker, decision, reason."""
        rows = [
            {
                "trial_id": trial.trial_id,
                "epoch": report.epoch,
                self.metric: math.nan if report.value is None else report.value,
                "time": report.time - self.start_time,
                "worker": trial.worker,
                "decision": report.decision,
                "reason": report.reason,
            }
            for trial in self.state.trials
            for report in trial.reports
        ]
        columns = ["trial_id", "epoch", self.metric, "time", "worker", "decision", "reason"]
        return _pandas().DataFrame(rows, columns=columns)

    @property
    def trials(self) -> pd.DataFrame:
        """One row per trial: trial_id, status, one column per hyperparameter, epochs,
        <metric> (last reported), best_<metric>, worker_time (s), worker, host and pid
        (of the last attempt), attempts, reason; with a
        model-based searcher also proposed_by (``model``, ``random`` or ``point``)."""
        names = self._names()
        sign = self.state.sign
        now = time.time()
        rows = []
        for trial in self.state.trials:
            values = [r.value for r in trial.reports if r.value is not None]
            last = trial.reports[-1] if trial.reports else None
            rows.append(
                {
                    "trial_id": trial.trial_id,
                    "status": trial.status,
                    **{names[key]: trial.config.get(key) for key in names},
                    "epochs": last.epoch if last else 0,
                    self.metric: math.nan if last is None or last.value is None else last.value,
                    f"best_{self.metric}": min(values, key=lambda v: sign * v)
                    if values
                    else math.nan,
                    "worker_time": busy_seconds(trial, now),
                    "worker": trial.worker,
                    "host": trial.host,
                    "pid": trial.pid,
                    "attempts": trial.attempt + 1,
                    "reason": trial.reason,
                }
            )
        columns = ["trial_id", "status", *names.values(), "epochs", self.metric,
                   f"best_{self.metric}", "worker_time", "worker", "host", "pid", "attempts",
                   "reason"]  # fmt: skip
        if self.state.observed is not None:  # a model-based searcher: who proposed what
            for row, trial in zip(rows, self.state.trials, strict=True):
                row["proposed_by"] = trial.by
            columns.insert(columns.index("epochs"), "proposed_by")
        return _pandas().DataFrame(rows, columns=columns)

    @property
    def best(self) -> Best | None:
        """The trial with the best reported value, its config and the value."""
        return best_report(self.state)

    def plot(self) -> Figure:
        """The incumbent trajectory: the best value so far over wall-clock time (what
        Syne Tune's ``load_experiment(...).plot()`` draws)."""
        from lit_hpo.plots import plot_incumbent

        return plot_incumbent(self)

    def plot_learning_curves(self) -> Figure:
        """Every trial's reported values over wall-clock time, one colour per trial."""
        from lit_hpo.plots import plot_learning_curves

        return plot_learning_curves(self)

    def status_table(self) -> str:
        """The seeds' "tuning status" table, with the counts line under it."""
        state = self.state
        table = self.trials
        lines = [f"tuning status of {self.directory} (last reported metric)"]
        if len(table):
            shown = table.drop(columns=["worker", "host", "pid", "attempts", "reason"])
            lines.append(shown.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
        counts = state.counts()
        finished = counts["completed"] + counts["stopped"] + counts["failed"]
        waiting = f", {counts['pending']} waiting to resume" if counts["pending"] else ""
        waiting += f", {counts['paused']} paused at a rung" if counts["paused"] else ""
        # While trials run the clock runs; afterwards the study ended at its last record.
        last_record = state.sessions[-1][1] if state.sessions else 0.0
        elapsed = state.active_seconds(time.time() if counts["running"] else last_record)
        lines.append(
            f"{counts['running']} trials running, {finished} finished "
            f"({counts['completed']} until the end, {counts['stopped']} stopped, "
            f"{counts['failed']} failed){waiting}, {elapsed:.2f}s wallclock-time"
        )
        return "\n".join(lines)

    def best_line(self) -> str:
        """``validation_error: best <value> for trial-id <id>`` (the seeds' last line)."""
        best = self.best
        if best is None:
            return f"{self.metric}: no finite value reported yet"
        return f"{self.metric}: best {best.value:.6g} for trial-id {best.trial_id}"


def load_study(directory: str | os.PathLike[str], journal: str | None = None) -> Study:
    """Open a study directory for analysis.

    Args:
        journal: the study's ``hpo.journal`` when that is a PostgreSQL URL.

    Raises:
        FileNotFoundError: if the directory holds no journal (or, with ``journal``, the
            server holds no study of that directory).
    """
    path = Path(directory)
    if journal is None and not (path / JOURNAL_NAME).is_file():
        if (path / PG_MARKER).is_file():
            fix = (f"its journal is on a PostgreSQL server ({path / PG_MARKER} names it): pass "
                   "that URL (--journal URL, or load_study(directory, journal=URL))")  # fmt: skip
        else:
            fix = "pass the study directory (hydra.sweep.dir) of a `python train.py -m hpo=...` run"
        raise FileNotFoundError(f"{path} holds no {JOURNAL_NAME}; {fix}")
    study = Study(path, check_url(journal)).refresh()
    study.header  # noqa: B018 - fails early on a journal without a header
    return study
