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
import heapq
import math
from dataclasses import dataclass, field
from typing import Any

from lit_hpo.journal import Record, collector_paused
from lit_hpo.records import (
    ACCEPTS,
    ACTIONS,
    FORMAT_VERSION,
    INTERRUPTED,
    MOVES_TO,
    STATUSES,
    TERMINAL,
    Op,
    Status,
)
from lit_hpo.searcher_spec import SearcherSpec
from lit_hpo.space import Domain, space_from_json

__all__ = ["FORMAT_VERSION", "STATUSES", "TERMINAL", "InvalidRecordError", "StudyState", "Trial"]
_DECISIONS = frozenset(ACTIONS)
_NUMBERS = (int, float)


def _printable(value: object) -> bool:
    return value is None or (type(value) is str and value.isprintable())


RESERVED_PREFIXES = ("hpo.", "hydra.")  # config keys that can never be search dimensions
UNOBSERVED = ("random", "grid")  # searchers whose configs do not depend on results
BY = ("point", "random", "grid", "model")  # what proposed a claim's config


class InvalidRecordError(ValueError):
    """A journal record that is well-formed JSON but cannot have been written by lit_hpo
    (a report for a trial never claimed, a second header, a config outside the space...).
    Replay stops at it, before the state changes. ``index`` is the record's position in
    the batch being replayed (filled in by :meth:`StudyState.apply_all`)."""

    index: int | None = None


def _int(record: Record, key: str, low: int = 0) -> int:
    value = record.get(key)
    if type(value) is not int or value < low:
        raise InvalidRecordError(f"its {key!r} is {value!r}, not an integer >= {low}")
    return value


def _text(record: Record, *keys: str, printable: bool = False) -> None:
    """Optional text fields (a reason, an error's tail): shown, exported and compared, so
    a number or a list where lit_hpo writes text would break a reader later, not here.
    ``printable``: fields lit_hpo fills with words (a reason, "nan"), printed as they are,
    so a control character (a terminal escape sequence) is refused too."""
    for key in keys:
        value = record.get(key)
        if value is not None and type(value) is not str:
            raise InvalidRecordError(f"its {key!r} is {value!r}, not text")
        if printable and not _printable(value):
            raise InvalidRecordError(f"its {key!r} is {value!r}, not printable text")


def _pid(record: Record) -> None:
    if record.get("pid") is not None:
        _int(record, "pid", 1)


def _host(record: Record) -> None:
    """A recorded host name: printable and short (it is shown and compared, never run)."""
    host = record.get("host")
    if host is not None and not (isinstance(host, str) and 0 < len(host) <= 255
                                 and host.isprintable()):  # fmt: skip
        raise InvalidRecordError(f"its 'host' is {host!r}, not a host name")


def _time(record: Record, not_after: float | None) -> float:
    value = record.get("time")
    if type(value) not in (int, float) or not math.isfinite(value):
        raise InvalidRecordError(f"its 'time' is {value!r}, not a number of seconds")
    if not_after is not None and value > not_after:
        raise InvalidRecordError(
            f"its time {value} is {value - not_after + CLOCK_SKEW:.0f} s ahead of this host's "
            "clock: the host that wrote it has a wrong clock (synchronize it, e.g. with NTP)"
        )
    return value


CLOCK_SKEW = 300.0  # seconds a record's time may be ahead of the reading host's clock


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
    host: str | None = None  # the host of the current attempt's worker, when recorded
    status: str = Status.RUNNING
    reports: list[Report] = field(default_factory=list)
    ended: float | None = None
    reason: str | None = None
    error: str | None = None
    attempt: int = 0
    losses: int = 0  # attempts lost to a dead worker, an expired lease or an interrupt
    retries_used: int = 0  # the losses that count against max_retries: not interrupts
    last_seen: float = 0.0  # time of the current attempt's last record
    segments: list[Segment] = field(default_factory=list)
    bracket: int | None = None  # Hyperband's bracket, drawn when the trial was claimed
    claimed_at: int = 0  # the claim's position in the journal (records before it)
    prefix: int | None = None  # model-based searchers: the records its config was fitted on
    by: str | None = None  # what proposed its config: point, random, grid or model

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
    # Sorted finite values per rung: key ``epoch`` over all trials, and ``(bracket,
    # epoch)`` over the trials of one Hyperband bracket.
    _rung_values: dict[int | tuple[int, int], list[float]] = field(default_factory=dict)
    _unsorted: set[int | tuple[int, int]] = field(default_factory=set)
    unbracketed: int = 0  # claims without a bracket (journals from before brackets were)
    # Trial ids per status, and per rung a heap of (value, id) of trials paused there
    # (entries of trials that left it are dropped when they reach the top): the locked
    # steps find running, pending and promotable trials without scanning every trial.
    _ids: dict[str, set[int]] = field(default_factory=lambda: {s: set() for s in STATUSES})
    _paused: dict[int, list[tuple[float, int]]] = field(default_factory=dict)
    # Per rung epoch that promotion has asked about (``tied_before``): every finite
    # (value, trial id) there, sorted; built on the first question, kept up to date.
    _ranked: dict[int, list[tuple[float, int]]] = field(default_factory=dict)
    _bulk: bool = False  # replaying a large batch: defer sorting the rungs
    # One [start, last record time, n_workers] per session (one `-m` run).
    sessions: list[list[float]] = field(default_factory=list)
    budget: dict[str, Any] = field(default_factory=dict)  # the current session's budget
    session_settings: dict[str, Any] = field(default_factory=dict)  # its session record
    n_records: int = 0
    sign: float = 1.0  # -1.0 in ``max`` mode, so that smaller is always better
    # Records dated after this (the reader's clock plus CLOCK_SKEW) are refused; None: no
    # check. Set by the reader: the state itself knows no clock.
    not_after: float | None = None
    _domains: dict[str, Domain] = field(default_factory=dict)  # the header's space
    # Model-based searchers only: per epoch, (record position, trial id, value made
    # smaller-is-better) of every finite report, in journal order, so a searcher can see
    # the study as it was after any prefix of the journal (``lit_hpo.searchers``).
    observed: dict[int, list[tuple[int, int, float]]] | None = None

    def check(self, record: Record) -> None:
        """Raise :class:`InvalidRecordError` (naming what is wrong) if the record cannot
        follow the records replayed so far; changes nothing."""
        op = record.get("op")
        if op == Op.REPORT:  # by far the most frequent record
            self._check_report(record)
        elif op not in _CHECKS:
            raise InvalidRecordError(
                f"unknown journal record op {op!r}: the journal was written by a newer "
                "lit_hpo; upgrade lit_hpo to read it"
            )
        else:
            _CHECKS[op](self, record)

    def apply(self, record: Record) -> None:
        """Fold one record into the state, or raise :class:`InvalidRecordError` without
        changing the state when the record cannot be replayed."""
        op = record.get("op")
        if op == Op.REPORT:  # the hot path of a replay: one call less
            self._check_report(record)
        else:
            self.check(record)
        self.n_records += 1
        if op != Op.STUDY and op != Op.SESSION and self.sessions:
            session = self.sessions[-1]
            if record["time"] > session[1]:
                session[1] = record["time"]
        _APPLY[op](self, record)  # type: ignore[index]

    # Folds: one per op, run after the record's check passed.

    def _apply_study(self, record: Record) -> None:
        self.header = record
        self.sign = -1.0 if record.get("mode") == "max" else 1.0
        searcher = record.get("searcher") or {}
        if searcher.get("name", "random") not in UNOBSERVED:
            self.observed = {}

    def _apply_session(self, record: Record) -> None:
        if self.sessions:  # attempts the last run left open ended with it, not later
            for trial in self.running():
                if trial.segments and trial.segments[-1].end is None:
                    trial.segments[-1].end = self.sessions[-1][1]
        self.sessions.append([record["time"], record["time"], record.get("n_workers", 1)])
        self.budget = record.get("budget") or {}
        self.session_settings = record

    def _apply_claim(self, record: Record) -> None:
        trial = Trial(record["trial"], record["config"], record["worker"], record["time"],
                      record.get("pid"))  # fmt: skip
        trial.last_seen, trial.host = record["time"], record.get("host")
        trial.segments.append(Segment(0, record["worker"], record["time"]))
        trial.bracket = record.get("bracket")
        trial.claimed_at = self.n_records - 1
        trial.prefix, trial.by = record.get("prefix"), record.get("by")
        if trial.bracket is None:
            self.unbracketed += 1
        self.trials.append(trial)
        self._ids[MOVES_TO[Op.CLAIM]].add(trial.trial_id)

    def _apply_resume(self, record: Record) -> None:
        trial = self.trials[record["trial"]]
        self._move(trial, MOVES_TO[Op.RESUME])
        trial.reason = None
        trial.attempt, trial.worker, trial.pid = (
            record["attempt"],
            record["worker"],
            record.get("pid"),
        )
        trial.last_seen, trial.host = record["time"], record.get("host")
        trial.segments.append(Segment(record["attempt"], record["worker"], record["time"]))

    def _apply_heartbeat(self, record: Record) -> None:
        self.trials[record["trial"]].last_seen = record["time"]

    def _apply_pause(self, record: Record) -> None:
        trial = self.trials[record["trial"]]
        self._move(trial, MOVES_TO[Op.PAUSE])
        trial.reason = record.get("reason")
        trial.segments[-1].end, trial.segments[-1].outcome = record["time"], Status.PAUSED
        if trial.reports and trial.reports[-1].value is not None:
            heap = self._paused.setdefault(trial.last_epoch, [])
            heapq.heappush(heap, (self.sign * trial.reports[-1].value, trial.trial_id))

    def _apply_lost(self, record: Record) -> None:
        trial = self.trials[record["trial"]]
        self._move(trial, MOVES_TO[Op.LOST])
        trial.reason = record.get("reason")
        trial.losses += 1
        trial.retries_used += trial.reason != INTERRUPTED
        segment = trial.segments[-1]
        segment.end = record["time"] if segment.end is None else segment.end
        segment.outcome = "lost"

    def _apply_end(self, record: Record) -> None:
        trial = self.trials[record["trial"]]
        self._move(trial, record["status"])
        trial.ended = record["time"]
        trial.reason = record.get("reason")
        trial.error = record.get("error")
        if trial.segments and trial.segments[-1].outcome is None:
            segment = trial.segments[-1]
            segment.end = record["time"] if segment.end is None else segment.end
            segment.outcome = record["status"]

    # Checks: one per op, run before the record changes anything.

    def _check_study(self, record: Record) -> None:
        if self.n_records:
            raise InvalidRecordError(
                "a header ('study' record) may only be the first line; this is a second one"
            )
        version = record.get("format")
        if version != FORMAT_VERSION:
            raise InvalidRecordError(
                f"the journal was written in format {version!r}, this lit_hpo reads "
                f"format {FORMAT_VERSION}; upgrade (or use a matching) lit_hpo to read it"
            )
        space = record.get("space")
        try:
            if not isinstance(space, dict) or not space:
                raise ValueError("no space")
            domains = space_from_json(space)
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise InvalidRecordError(
                f"its 'space' {space!r} is not a search space ({err})"
            ) from None
        reserved = [key for key in domains if key.startswith(RESERVED_PREFIXES)]
        if reserved:
            raise InvalidRecordError(f"its space searches {reserved}, which are reserved keys")
        if record.get("mode") not in ("min", "max"):
            raise InvalidRecordError(f"its 'mode' is {record.get('mode')!r}, not min or max")
        _int(record, "seed")
        _time(record, self.not_after)
        searcher = record.get("searcher")
        try:
            if searcher is not None and not isinstance(searcher, dict):
                raise TypeError("not a mapping")
            SearcherSpec.from_json(searcher)
        except (ValueError, TypeError) as err:
            raise InvalidRecordError(
                f"its 'searcher' {searcher!r} is not one this lit_hpo knows ({err}); if a newer "
                "lit_hpo wrote it, upgrade lit_hpo to read it"
            ) from None
        self._domains = domains

    def _check_session(self, record: Record) -> None:
        self._header_first()
        _time(record, self.not_after)
        _int(record, "n_workers", 1)
        _pid(record)
        _host(record)
        budget = record.get("budget")
        if not isinstance(budget, dict):
            raise InvalidRecordError(f"its 'budget' is {budget!r}, not a mapping")
        for key in ("max_wallclock_time", "max_trials"):
            value = budget.get(key)
            if value is not None and (type(value) not in (int, float) or not value > 0):
                raise InvalidRecordError(f"its budget's {key!r} is {value!r}")

    def _header_first(self) -> None:
        if self.header is None:
            raise InvalidRecordError("the journal does not start with a header ('study' record)")

    def _trial(self, record: Record) -> Trial:
        """The record's trial, which must exist and have a status that accepts the
        record's op (:data:`lit_hpo.records.ACCEPTS`); the record's attempt must be the
        trial's current one (the next one for a ``resume``)."""
        self._header_first()
        trial_id = record.get("trial")
        if type(trial_id) is not int or not 0 <= trial_id < len(self.trials):
            raise InvalidRecordError(
                f"it names trial {trial_id!r}, but trials 0..{len(self.trials) - 1} exist"
            )
        trial = self.trials[trial_id]
        _time(record, self.not_after)
        statuses = sorted(ACCEPTS[record["op"]])
        if trial.status not in statuses:
            raise InvalidRecordError(
                f"trial {trial_id} is {trial.status}; a {record['op']!r} record needs it "
                f"{' or '.join(statuses)}"
            )
        if "attempt" in record or record["op"] == "resume":  # older journals may omit it
            attempt = _int(record, "attempt")
            wanted = trial.attempt + 1 if record["op"] == "resume" else trial.attempt
            if attempt != wanted:
                raise InvalidRecordError(
                    f"it is for attempt {attempt} of trial {trial_id}, whose current attempt "
                    f"is {trial.attempt}"
                )
        return trial

    def _check_claim(self, record: Record) -> None:
        self._header_first()
        trial_id = record.get("trial")
        if type(trial_id) is not int or trial_id != len(self.trials):
            raise InvalidRecordError(
                f"it claims trial {trial_id!r}, but the next trial id is {len(self.trials)} "
                "(a duplicated or reordered claim line?)"
            )
        _int(record, "worker")
        _pid(record)
        _host(record)
        _time(record, self.not_after)
        if "bracket" in record:
            _int(record, "bracket")
        if "prefix" in record:
            prefix = _int(record, "prefix")
            if prefix > self.n_records:
                raise InvalidRecordError(
                    f"its config was fitted on the first {prefix} records, but only "
                    f"{self.n_records} come before it"
                )
        if "by" in record and record["by"] not in BY:
            raise InvalidRecordError(f"its 'by' is {record['by']!r}, not one of {', '.join(BY)}")
        config = record.get("config")
        if not isinstance(config, dict) or set(config) != set(self._domains):
            keys = list(config) if isinstance(config, dict) else config
            raise InvalidRecordError(
                f"its config has the keys {keys!r}; the study's space has {list(self._domains)}"
            )
        for key, value in config.items():
            if not self._domains[key].contains(value):
                raise InvalidRecordError(
                    f"its config sets {key}={value!r}, outside the space's domain "
                    f"{self._domains[key].to_json()}"
                )

    def _check_resume(self, record: Record) -> None:
        self._trial(record)
        _int(record, "worker")
        _pid(record)
        _host(record)
        if "from_epoch" in record:
            _int(record, "from_epoch")

    def _check_running(self, record: Record) -> None:
        self._trial(record)

    def _check_leaving(self, record: Record) -> None:  # a pause or a loss
        self._trial(record)
        _text(record, "reason", printable=True)

    def _check_end(self, record: Record) -> None:
        self._trial(record)
        _text(record, "reason", printable=True)
        _text(record, "error")  # a traceback's tail: shown through policy.error_line
        if record.get("status") not in TERMINAL:
            raise InvalidRecordError(
                f"its status is {record.get('status')!r}, not one of {', '.join(TERMINAL)}"
            )

    def _check_report(self, record: Record) -> None:
        # The fast path (most records are reports): every condition in one expression;
        # the detailed checks below run only to say what is wrong (a third of a cold
        # replay's time otherwise).
        trial_id, time_ = record.get("trial"), record.get("time")
        if type(trial_id) is int and 0 <= trial_id < len(self.trials):
            trial = self.trials[trial_id]
            epoch, value = record.get("epoch"), record.get("value")
            attempt = record.get("attempt", trial.attempt)
            if (
                trial.status == Status.RUNNING
                and (type(time_) is float or type(time_) is int)
                and -math.inf < time_ <= (self.not_after or math.inf)
                and type(epoch) is int
                and epoch > trial.last_epoch
                and type(attempt) is int
                and attempt == trial.attempt
                and (value is None or (type(value) in _NUMBERS and -math.inf < value < math.inf))
                and record.get("decision") in _DECISIONS
                and _printable(record.get("reason"))
                and _printable(record.get("raw"))
            ):
                return
        self._check_report_in_detail(record)

    def _check_report_in_detail(self, record: Record) -> None:
        trial = self._trial(record)
        epoch = _int(record, "epoch", 1)
        if epoch <= trial.last_epoch:
            raise InvalidRecordError(
                f"it reports epoch {epoch} of trial {trial.trial_id}, which already reported "
                f"epoch {trial.last_epoch}"
            )
        value = record.get("value")
        if value is not None and (type(value) not in (int, float) or not math.isfinite(value)):
            raise InvalidRecordError(f"its value is {value!r}, not a finite number or null")
        if record.get("decision") not in _DECISIONS:
            raise InvalidRecordError(
                f"its decision is {record.get('decision')!r}, not one of {', '.join(ACTIONS)}"
            )
        _text(record, "reason", "raw", printable=True)

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
            self._add(epoch, self.sign * value)
            if epoch in self._ranked:
                bisect.insort(self._ranked[epoch], (self.sign * value, trial.trial_id))
            if self.observed is not None:
                self.observed.setdefault(epoch, []).append(
                    (self.n_records - 1, trial.trial_id, self.sign * value)
                )
            if trial.bracket is not None:
                self._add((trial.bracket, epoch), self.sign * value)

    def _add(self, key: int | tuple[int, int], value: float) -> None:
        values = self._rung_values.get(key)
        if values is None:
            values = self._rung_values[key] = []
        if self._bulk or key in self._unsorted:
            values.append(value)  # sorted once, when first asked for
            self._unsorted.add(key)
        else:
            bisect.insort(values, value)

    def rung(self, epoch: int, bracket: int | None = None) -> list[float]:
        """Every finite value reported after ``epoch`` epochs (by the trials of Hyperband
        bracket ``bracket``, if given), sorted so that smaller is better."""
        key: int | tuple[int, int] = epoch if bracket is None else (bracket, epoch)
        values = self._rung_values.get(key, [])
        if key in self._unsorted:
            values.sort()
            self._unsorted.discard(key)
        return values

    def apply_all(self, records: list[Record]) -> None:
        """Fold a batch in; an :class:`InvalidRecordError` carries the record's index."""
        self._bulk = len(records) > 1000
        index = 0
        try:
            with collector_paused(self._bulk):
                for index, record in enumerate(records):  # noqa: B007 - read after an error
                    self.apply(record)
        except InvalidRecordError as err:
            err.index = index
            raise
        finally:
            self._bulk = False
            # Sort now, in the (cold) replay, rather than in the first decisions after it.
            for key in list(self._unsorted):
                self._rung_values[key].sort()
            self._unsorted.clear()

    def _move(self, trial: Trial, status: str) -> None:
        self._ids[trial.status].discard(trial.trial_id)
        self._ids[status].add(trial.trial_id)
        trial.status = status

    def with_status(self, status: str) -> list[Trial]:
        """The trials that have this status, oldest first (O(their number))."""
        return [self.trials[i] for i in sorted(self._ids[status])]

    def running(self) -> list[Trial]:
        return self.with_status(Status.RUNNING)

    def counts(self) -> dict[str, int]:
        """Trials per status, every status present (zero when none)."""
        return {status: len(self._ids[status]) for status in STATUSES}

    def pending(self) -> list[Trial]:
        """Trials waiting to be resumed, oldest first."""
        return self.with_status(Status.PENDING)

    def tied_before(self, epoch: int, value: float, trial_id: int) -> int:
        """How many trials with an id below ``trial_id`` reported exactly ``value``
        (signed: smaller is better) after ``epoch`` epochs: 0 at once when no other
        trial did; else O(log n), after one O(n log n) pass over the trials the first
        time an epoch has a tie to rank."""
        values = self.rung(epoch)
        if bisect.bisect_right(values, value) - bisect.bisect_left(values, value) < 2:
            return 0
        ranked = self._ranked.get(epoch)
        if ranked is None:
            ranked = self._ranked[epoch] = sorted(
                (self.sign * r.value, trial.trial_id)
                for trial in self.trials
                for r in trial.reports
                if r.epoch == epoch and r.value is not None and math.isfinite(r.value)
            )
        first = bisect.bisect_left(ranked, (value, -1))  # the first entry with this value
        return bisect.bisect_left(ranked, (value, trial_id)) - first

    def best_paused(self, epoch: int) -> tuple[float, int] | None:
        """``(value, trial id)`` of the best trial paused at rung ``epoch`` (value signed
        so that smaller is better; ties to the lower id), or ``None``."""
        heap = self._paused.get(epoch, [])
        while heap:
            trial = self.trials[heap[0][1]]
            if trial.status == Status.PAUSED and trial.last_epoch == epoch:
                return heap[0]
            heapq.heappop(heap)  # it was promoted (or ended) since
        return None

    def active_seconds(self, now: float) -> float:
        """Wall-clock time spent in sessions: past sessions up to their last record, the
        current one up to ``now``. A study that was stopped and rerun later does not
        count the time in between against its budget."""
        if not self.sessions:
            return 0.0
        past = sum(last - start for start, last, _ in self.sessions[:-1])
        return past + max(0.0, now - self.sessions[-1][0])


# One check and one fold per op: the schema's ops (lit_hpo.records.Op), nothing else.
_CHECKS = {
    Op.STUDY: StudyState._check_study,
    Op.SESSION: StudyState._check_session,
    Op.CLAIM: StudyState._check_claim,
    Op.RESUME: StudyState._check_resume,
    Op.HEARTBEAT: StudyState._check_running,
    Op.PAUSE: StudyState._check_leaving,
    Op.LOST: StudyState._check_leaving,
    Op.END: StudyState._check_end,
    Op.REPORT: StudyState._check_report,
}
_APPLY = {
    Op.STUDY: StudyState._apply_study,
    Op.SESSION: StudyState._apply_session,
    Op.CLAIM: StudyState._apply_claim,
    Op.RESUME: StudyState._apply_resume,
    Op.HEARTBEAT: StudyState._apply_heartbeat,
    Op.PAUSE: StudyState._apply_pause,
    Op.LOST: StudyState._apply_lost,
    Op.END: StudyState._apply_end,
    Op.REPORT: StudyState._apply_report,
}
assert set(_CHECKS) == set(_APPLY) == set(Op), "every op has a check and a fold"
