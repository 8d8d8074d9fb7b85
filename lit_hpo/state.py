"""`StudyState`: the fold of journal records. Pure: no I/O, no clock.

Trial lifecycle: ``running`` (claimed or resumed by a worker) → ``completed`` (ran to
``max_epochs`` or ended on its own), ``stopped`` (the scheduler or the budget stopped it),
``failed`` (raised, or lost too often), ``pending`` (its worker was lost: it waits for a
free worker to resume it from its last checkpoint, as a new *attempt*) or ``paused``
(promotion ASHA paused it at a rung; it resumes if it is promoted).

Record types (``op``), documented in ``docs/journal.md``: ``study`` (the header),
``session`` (a ``-m`` run started), ``claim`` (a worker took a new trial), ``resume`` (a
worker took over a pending or promoted trial), ``pause`` (a trial paused at a rung),
``heartbeat`` (a running attempt is alive), ``report``
(one validation epoch and the decision taken for it), ``lost`` (an attempt's worker
died), ``end`` (how a trial ended).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any

from lit_hpo.journal import Record, collector_paused

FORMAT_VERSION = 1
TERMINAL = ("completed", "stopped", "failed")
STATUSES = ("running", "pending", "paused", *TERMINAL)


@dataclass(slots=True)
class Report:
    epoch: int
    value: float | None  # None when the metric was not finite; see ``raw``
    raw: str | None
    decision: str
    reason: str | None
    time: float
    attempt: int = 0


@dataclass(slots=True)
class Segment:
    """One attempt of a trial on one worker."""

    attempt: int
    worker: int
    start: float
    end: float | None = None
    outcome: str | None = None  # "paused", "lost", or the trial's final status


@dataclass(slots=True)
class Trial:
    trial_id: int
    config: dict[str, Any]
    worker: int  # the worker of the current (or last) attempt
    started: float
    pid: int | None = None
    status: str = "running"
    reports: list[Report] = field(default_factory=list)
    ended: float | None = None
    reason: str | None = None
    error: str | None = None
    attempt: int = 0
    losses: int = 0  # attempts lost to a dead worker, an expired lease or an interrupt
    last_seen: float = 0.0  # time of the current attempt's last record
    segments: list[Segment] = field(default_factory=list)

    @property
    def last_epoch(self) -> int:
        return self.reports[-1].epoch if self.reports else 0

    @property
    def last_decision(self) -> str | None:
        return self.reports[-1].decision if self.reports else None


@dataclass
class StudyState:
    """Everything the scheduler and the analysis know, rebuilt from the journal.

    ``rung(epoch)`` is every finite value reported at that epoch, sorted so that smaller
    is better (values are negated in ``max`` mode); a rung decision then costs one
    binary search. During a bulk replay values are appended and each rung is sorted once
    at the end, so replaying a long journal costs O(n log n), not O(n²).
    """

    header: Record | None = None
    trials: list[Trial] = field(default_factory=list)
    _rung_values: dict[int, list[float]] = field(default_factory=dict)
    _unsorted: set[int] = field(default_factory=set)
    _bulk: bool = False  # replaying a large batch: defer sorting the rungs
    # One [start, last record time, n_workers] per session (one `-m` run).
    sessions: list[list[float]] = field(default_factory=list)
    budget: dict[str, Any] = field(default_factory=dict)  # the current session's budget
    session_settings: dict[str, Any] = field(default_factory=dict)  # its session record
    n_records: int = 0
    sign: float = 1.0  # -1.0 in ``max`` mode, so that smaller is always better

    def apply(self, record: Record) -> None:
        """Fold one record into the state."""
        op = record.get("op")
        self.n_records += 1
        if op == "study":
            version = record.get("format")
            if version != FORMAT_VERSION:
                raise ValueError(
                    f"the journal was written in format {version!r}, this lit_hpo reads "
                    f"format {FORMAT_VERSION}; use a matching lit_hpo version"
                )
            self.header = record
            self.sign = -1.0 if record.get("mode") == "max" else 1.0
            return
        if op == "session":
            self.sessions.append([record["time"], record["time"], record.get("n_workers", 1)])
            self.budget = record.get("budget", {})
            self.session_settings = record
            return
        if self.sessions:
            session = self.sessions[-1]
            if record["time"] > session[1]:
                session[1] = record["time"]
        if op == "report":  # by far the most frequent record
            self._apply_report(record)
        elif op == "claim":
            trial = Trial(
                record["trial"],
                record["config"],
                record["worker"],
                record["time"],
                record.get("pid"),
            )
            trial.last_seen = record["time"]
            trial.segments.append(Segment(0, record["worker"], record["time"]))
            self.trials.append(trial)
        elif op == "resume":
            trial = self.trials[record["trial"]]
            trial.status, trial.reason = "running", None
            trial.attempt, trial.worker, trial.pid = (
                record["attempt"],
                record["worker"],
                record.get("pid"),
            )
            trial.last_seen = record["time"]
            trial.segments.append(Segment(record["attempt"], record["worker"], record["time"]))
        elif op == "heartbeat":
            self.trials[record["trial"]].last_seen = record["time"]
        elif op == "pause":
            trial = self.trials[record["trial"]]
            trial.status, trial.reason = "paused", record.get("reason")
            trial.segments[-1].end, trial.segments[-1].outcome = record["time"], "paused"
        elif op == "lost":
            trial = self.trials[record["trial"]]
            trial.status, trial.reason = "pending", record.get("reason")
            trial.losses += 1
            trial.segments[-1].end, trial.segments[-1].outcome = record["time"], "lost"
        elif op == "end":
            trial = self.trials[record["trial"]]
            trial.status = record["status"]
            trial.ended = record["time"]
            trial.reason = record.get("reason")
            trial.error = record.get("error")
            if trial.segments and trial.segments[-1].end is None:
                trial.segments[-1].end = record["time"]
                trial.segments[-1].outcome = record["status"]
        else:
            raise ValueError(
                f"unknown journal record op {op!r}: the journal was written by a newer "
                "lit_hpo; upgrade lit_hpo to read it"
            )

    def _apply_report(self, record: Record) -> None:
        trial = self.trials[record["trial"]]
        epoch, value, time, get = record["epoch"], record["value"], record["time"], record.get
        trial.last_seen = time
        trial.reports.append(
            Report(
                epoch, value, get("raw"), record["decision"], get("reason"), time, get("attempt", 0)
            )
        )
        if value is not None and math.isfinite(value):
            values = self._rung_values.get(epoch)
            if values is None:
                values = self._rung_values[epoch] = []
            if self._bulk or epoch in self._unsorted:
                values.append(self.sign * value)  # sorted once, when first asked for
                self._unsorted.add(epoch)
            else:
                bisect.insort(values, self.sign * value)

    def rung(self, epoch: int) -> list[float]:
        """Every finite value reported after ``epoch`` epochs, sorted (smaller is better)."""
        values = self._rung_values.get(epoch, [])
        if epoch in self._unsorted:
            values.sort()
            self._unsorted.discard(epoch)
        return values

    def apply_all(self, records: list[Record]) -> None:
        self._bulk = len(records) > 1000
        try:
            with collector_paused(self._bulk):
                for record in records:
                    self.apply(record)
        finally:
            self._bulk = False
            # Sort now, in the (cold) replay, rather than in the first decisions after it.
            for epoch in list(self._unsorted):
                self.rung(epoch)

    def running(self) -> list[Trial]:
        return [trial for trial in self.trials if trial.status == "running"]

    def counts(self) -> dict[str, int]:
        """Trials per status, every status present (zero when none)."""
        counts = dict.fromkeys(STATUSES, 0)
        for trial in self.trials:
            counts[trial.status] += 1
        return counts

    def pending(self) -> list[Trial]:
        """Trials waiting to be resumed, oldest first."""
        return [trial for trial in self.trials if trial.status == "pending"]

    def active_seconds(self, now: float) -> float:
        """Wall-clock time spent in sessions: past sessions up to their last record, the
        current one up to ``now``. A study that was stopped and rerun later does not
        count the time in between against its budget."""
        if not self.sessions:
            return 0.0
        past = sum(last - start for start, last, _ in self.sessions[:-1])
        return past + max(0.0, now - self.sessions[-1][0])
