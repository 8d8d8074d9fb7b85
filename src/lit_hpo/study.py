"""The locked steps every process takes on a study: open, claim, report, end.

Each step takes the journal lock, reads the records it has not seen yet (from its byte
offset), decides from the replayed state, appends, and releases the lock — so two
workers can never claim the same trial id, and every decision is taken on the state
every earlier decision produced.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from lit_hpo import records
from lit_hpo.context import TrialContext, current_client
from lit_hpo.journal import (
    Journal,
    JournalCorruptError,
    JournalDroppedError,
    Record,
    unwritable,
)
from lit_hpo.pg_journal import PgJournal, redact
from lit_hpo.pg_marker import PG_MARKER, marker_bytes, mismatch, read_marker
from lit_hpo.policy import decide, may_start_trial
from lit_hpo.records import Action, Op, Status
from lit_hpo.safefiles import write_bytes
from lit_hpo.schedulers import CONTINUE, Decision, Scheduler, make_scheduler
from lit_hpo.searchers import Search, Suggestion
from lit_hpo.settings import DEFAULTS
from lit_hpo.spec import StudySpec, check_compatible
from lit_hpo.state import CLOCK_SKEW, TERMINAL, InvalidRecordError, StudyState, Trial

JOURNAL_NAME = "journal.jsonl"
DROPPED_RETRIES = 3  # a step the journal's server dropped runs again this often
Step = TypeVar("Step", bound=Callable[..., Any])


def _step(method: Step) -> Step:
    """A locked step of :class:`StudyClient` that runs again when the journal's server
    dropped it (a restart or failover while the lock was held): nothing of it was
    recorded, and the step decides afresh on the replayed journal (reconnecting waits for
    the server for up to the lock timeout). A step inside another (``lose`` ending a
    trial) runs again as part of the outer one."""

    @functools.wraps(method)
    def step(self: StudyClient, *args: Any, **kwargs: Any) -> Any:
        if getattr(self._steps, "depth", 0):
            return method(self, *args, **kwargs)
        self._steps.depth, retry = 1, 0
        try:
            while True:
                try:
                    return method(self, *args, **kwargs)
                except JournalDroppedError as err:
                    if retry == DROPPED_RETRIES:
                        raise JournalDroppedError(
                            None,
                            f"{err} ({retry + 1} times in a row); rerun the same "
                            "command to continue once the server is back",
                        ) from None
                    retry += 1
                    print(f"lit_hpo: the server dropped a step: {err}; it recorded nothing "
                          "and runs again", file=sys.stderr, flush=True)  # fmt: skip
        finally:
            self._steps.depth = 0

    return step  # type: ignore[return-value]


def header_lock(path: Path) -> str:
    """The lock mode the study was created with (its header's ``lock``), read lock-free."""
    try:  # a journal that cannot be read is refused by name at the first read
        first = Journal(path).first_line()
        return str(json.loads(first).get("lock", "flock")) if first else "flock"
    except (OSError, ValueError, AttributeError, RecursionError):
        return "flock"


def trial_client(trial: TrialContext) -> StudyClient:
    """The client for code running inside ``trial``: the worker's own when the code runs
    in the worker's process (one client, one replayed state per process), else a new one
    (a DDP rank, or a process of the user's own)."""
    shared = current_client()
    if shared is not None and str(shared.directory) == str(trial.study_dir):
        return shared  # type: ignore[no-any-return]
    return StudyClient(trial.study_dir, journal=trial.journal)


class StudyClient:
    """One process's handle on a study directory.

    Args:
        directory: the study directory (``hydra.sweep.dir``).
        clock: the time source (seconds since the epoch), replaceable in tests.
        lock: the file journal's lock kind (default: the study's header's).
        journal: ``hpo.journal``: a PostgreSQL URL, or ``None`` for the directory's
            ``journal.jsonl``.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        clock: Callable[[], float] = time.time,
        lock: str | None = None,
        journal: str | None = None,
    ) -> None:
        self.directory = Path(directory)
        path = self.directory / JOURNAL_NAME
        self.journal: Journal | PgJournal
        if journal is not None:  # a PostgreSQL URL (hpo.journal)
            self.journal = PgJournal(journal, str(self.directory.absolute()))
        else:
            self.journal = Journal(path, lock=lock or header_lock(path))
        self.state = StudyState()
        self._offset = 0
        # One client serves a worker process's threads (the trial loop, its heartbeat,
        # HPOCallback): the guard makes each step atomic among them.
        self._guard = threading.RLock()
        self._steps = threading.local()  # this thread's step nesting (see _step)
        self._scheduler: Scheduler | None = None
        self._search: Search | None = None
        self._expected: dict[int, dict[str, Any]] = {}  # configs recomputed, by trial id
        self._clock = clock
        self.host = socket.gethostname()  # recorded with each claim: workers on many hosts

    @property
    def journal_url(self) -> str | None:
        """``hpo.journal``: the server's URL, or ``None`` for the directory's file."""
        return self.journal.url if isinstance(self.journal, PgJournal) else None

    def refresh(self) -> StudyState:
        """Fold in the records appended since the last read (lock-free).

        Raises:
            JournalCorruptError: a line that is not a record, or a record that cannot be
                replayed (every field is checked: see :meth:`StudyState.check`), with its
                line, byte offset and the way out; the state stops before it.
        """
        with self._guard:
            return self._refresh()

    def _refresh(self) -> StudyState:
        batch, end = self.journal.read(self._offset)
        self.state.not_after = self._clock() + CLOCK_SKEW
        try:
            self.state.apply_all(batch)
        except InvalidRecordError as err:
            index = err.index or 0
            line, offset = self.journal.locate(self._offset, index)
            self._offset = offset  # the records before it are in the state
            op = batch[index].get("op")
            raise JournalCorruptError(
                f"{self.journal.where(line, offset)}: the {op!r} record cannot be replayed: "
                f"{err}. The study stops here rather than trust it: {self.journal.way_out}",
                offset,
            ) from None
        self._offset = end
        return self.state

    @property
    def header(self) -> dict[str, Any]:
        if self.state.header is None:
            self.refresh()
        if self.state.header is None:
            raise FileNotFoundError(f"no study journal with a header at {self.journal.name}")
        return self.state.header

    @property
    def scheduler(self) -> Scheduler:
        """The study's scheduler, built once from the header."""
        if self._scheduler is None:
            self._scheduler = make_scheduler(self.header["scheduler"])
        return self._scheduler

    @property
    def search(self) -> Search:
        """The study's searcher, built once from the header."""
        if self._search is None:
            self._search = Search(self.header)
        return self._search

    @contextmanager
    def _locked(self) -> Iterator[StudyState]:
        """Hold the journal lock with the state up to date, for one step. The bulk of
        what is new is read before the lock is taken; under it, only what other
        processes appended meanwhile: a lock hold costs what is new, not the study's
        size (a cold client's first step replays the journal outside the lock).

        A step the journal's server dropped (:class:`JournalDroppedError`) recorded
        nothing, but this client may have folded its records in already: the state is
        then forgotten (the next step replays the journal) before the error goes on."""
        with self._guard:
            self._refresh()
            try:
                with self.journal.locked():
                    yield self._refresh()
            except JournalDroppedError:
                self.state, self._offset = StudyState(), 0
                raise

    def _append(self, record: Record) -> None:
        """Append under the lock (every caller holds it, and has refreshed); a record
        that could not be replayed is refused before it reaches the file."""
        self.state.check(record)
        start, end = self.journal.append([record])
        if start == self._offset:  # nothing unread before it: fold it in without a read
            self.state.apply(record)
            self._offset = end
        else:
            self.refresh()

    @_step
    def open(self, spec: StudySpec, n_workers: int, lose_running: bool = True) -> list[Trial]:
        """Create the study, or check that an existing one has the same settings, and
        start a session. Trials an earlier run left running are lost (reason
        ``interrupted``): they will be resumed from their checkpoints. With
        ``lose_running=False`` (workers on a cluster, which may still be running them)
        they are left to their leases.

        Returns:
            The trials the earlier run left running (lost or not).

        Raises:
            ValueError: when the journal was written for different settings.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        self._check_backend()
        with self._locked():
            now = self._clock()
            self._check_marker(self.state.header)
            if self.state.header is None:
                self._mark(None)  # on a server: the directory is marked before the header
                self._append(spec.header(now))
            else:
                check_compatible(self.state.header, spec, str(self.directory))
            self._mark(self.state.header["time"])
            self._append(spec.session(now, n_workers, os.getpid(), self.host))
            interrupted = self.state.running()
            for trial in interrupted if lose_running else ():
                self.lose(trial.trial_id, trial.attempt, records.INTERRUPTED)
        return interrupted

    def _check_backend(self) -> None:
        """Refuse to mix journal kinds for one study: a study directory whose journal is
        on a server holds a ``journal.pg`` marker (the URL, never a password, and the
        study's creation time; only ever read to refuse, never to connect: see
        :mod:`lit_hpo.pg_marker`), one with a file journal its journal.jsonl.

        Raises:
            ValueError: naming where this study's journal is and the fix.
        """
        marker, file = self.directory / PG_MARKER, self.directory / JOURNAL_NAME
        if isinstance(self.journal, PgJournal):
            if file.exists():
                raise ValueError(
                    f"the study in {self.directory} keeps its journal in {file}; drop "
                    "hpo.journal to continue it, or choose a new hydra.sweep.dir"
                )
        elif marker.exists():
            raise ValueError(
                f"the study in {self.directory} keeps its journal on a PostgreSQL server "
                f"({marker} names it): add hpo.journal=<that URL> to continue it"
            )

    def _check_marker(self, header: Record | None) -> None:
        """On a server: refuse a study that is not the one this directory's marker names
        (another machine's study with the same path, or another database's)."""
        if isinstance(self.journal, PgJournal):
            marked, created = read_marker(self.directory / PG_MARKER)
            problem = mismatch(self.directory, redact(self.journal.url), marked, created,
                               None if header is None else header["time"])  # fmt: skip
            if problem:
                raise ValueError(problem)

    def _mark(self, created: float | None) -> None:
        """Write the ``journal.pg`` marker (on a server). A write the disk refuses leaves
        the old marker whole (the write is atomic), and the study goes on from a rerun:
        a marker without the creation time is completed then.

        Raises:
            JournalWriteError: the marker cannot be written (a full disk, a quota).
        """
        if isinstance(self.journal, PgJournal):
            data = marker_bytes(self.journal.name, created)
            try:
                write_bytes(self.directory / PG_MARKER, data)
            except OSError as error:
                raise unwritable(f"write {self.directory / PG_MARKER}", error) from error

    def join(self, spec: StudySpec) -> None:
        """Check, writing nothing, that this study exists and has ``spec``'s settings: a
        worker joining it (``hpo.worker``) runs in its sessions.

        Raises:
            ValueError: no study here yet, or one with other settings.
        """
        self._check_backend()
        header = self.refresh().header
        if header is None:
            raise ValueError(
                f"there is no study in {self.directory} to join yet: start it first with "
                "the same command without hpo.worker (it prints the study directory)"
            )
        self._check_marker(header)
        check_compatible(header, spec, str(self.directory))

    def _expire_leases(self, now: float) -> None:
        """Lose running attempts that have been silent for longer than the lease."""
        lease = self.state.session_settings.get("lease_seconds")
        if lease is None:
            return
        for trial in self.state.running():
            if now - trial.last_seen > lease:
                self.lose(trial.trial_id, trial.attempt, "lease_expired")

    @_step
    def claim(self, worker: int) -> Claim | None:
        """Take work for ``worker``: a pending trial to resume (oldest first), else a
        paused trial the scheduler promotes, else a new trial; ``None`` when the budget
        is spent.

        A model-based searcher's model is fitted before the lock is taken, on a lock-free
        snapshot, for the trial id that snapshot says comes next; under the lock the
        proposal is used if that id is still the next one (reports appended meanwhile do
        not matter: the claim records the prefix the model saw). Otherwise it is
        refitted, outside the lock again, at most ``REFITS`` times before fitting under
        it. Configurations a resume needs are recomputed outside the lock too.
        """
        if not self.search.model_based:  # nothing to fit: one locked step, as before
            with self._locked():
                return self._claim(worker, None)
        proposal: Suggestion | None = None
        for _ in range(REFITS):
            proposal = self._prepare()
            with self._locked() as state:
                if proposal is None or proposal.trial_id == len(state.trials):
                    return self._claim(worker, proposal)
        with self._locked():
            return self._claim(worker, None)

    def _prepare(self) -> _Proposal | None:
        """Outside the journal lock: recompute what this claim is likely to need. (Under
        this process's guard: its heartbeat thread must not fold records into the state
        while a model reads it.)"""
        with self._guard:
            return self._prepare_guarded()

    def _prepare_guarded(self) -> _Proposal | None:
        state = self._refresh()
        pending = state.pending()
        if pending:
            self._expected_config(pending[0])
            return None
        promoted = self.scheduler.promotable(state)
        if promoted is not None:
            self._expected_config(state.trials[promoted])
            return None
        trial_id = len(state.trials)
        return _Proposal(trial_id, self.search.suggest(state, trial_id, state.n_records))

    def _claim(self, worker: int, proposal: _Proposal | None) -> Claim | None:
        state, now = self.state, self._clock()
        self._expire_leases(now)
        pending = state.pending()
        promoted = None
        if not pending:
            promoted = self.scheduler.promotable(state)
        resuming = bool(pending) or promoted is not None
        if not may_start_trial(state, now, resuming=resuming):
            return None
        if resuming:
            trial = pending[0] if pending else state.trials[promoted]  # type: ignore[index]
            config = self._checked_config(trial)
            attempt = trial.attempt + 1
            self._append(records.resume(trial.trial_id, attempt, worker, os.getpid(),
                                        trial.last_epoch, now, self.host))  # fmt: skip
            return Claim(self.state.trials[trial.trial_id], attempt, trial.last_epoch, config)
        trial_id = len(state.trials)
        if proposal is not None and proposal.trial_id == trial_id:
            suggestion = proposal.suggestion
        else:
            suggestion = self.search.suggest(state, trial_id, state.n_records)
        bracket = self.scheduler.claim_fields(trial_id).get("bracket")
        by = suggestion.by if suggestion.prefix is not None else None  # model-based only
        self._append(records.claim(trial_id, worker, os.getpid(), suggestion.config, now,
                                   bracket, suggestion.prefix, by, self.host))  # fmt: skip
        self._expected[trial_id] = suggestion.config
        return Claim(self.state.trials[trial_id], 0, 0, suggestion.config)

    def config_of(self, trial_id: int) -> dict[str, Any]:
        """Trial ``trial_id``'s configuration: a pure function of the header's space,
        points to evaluate, seed and searcher (the header is checked against the command
        that opens the study) and, for a model-based searcher, of the journal prefix its
        claim names; recomputed, never read back from the claim."""
        with self._guard:
            if trial_id >= len(self.state.trials):
                self._refresh()
            if trial_id < len(self.state.trials):
                return self._expected_config(self.state.trials[trial_id])
            return self.search.suggest(self.state, trial_id, self.state.n_records).config

    def _expected_config(self, trial: Trial) -> dict[str, Any]:
        config = self._expected.get(trial.trial_id)
        if config is None:
            config = self._expected[trial.trial_id] = self.search.expected(self.state, trial)
        return config

    def _checked_config(self, trial: Trial) -> dict[str, Any]:
        """Refuse to run a trial whose recorded config is not the one its id gives: the
        journal is untrusted input, and its config would become the trial's overrides."""
        expected = self._expected_config(trial)
        if trial.config != expected:
            raise JournalCorruptError(
                f"{self.journal.name}: trial {trial.trial_id}'s recorded config "
                f"{trial.config!r} is not the configuration the study's seed gives it "
                f"({expected!r}); the journal was edited or forged. It is not run. "
                f"{self.journal.way_out}",
                0,
            )
        return expected

    @_step
    def report(self, trial_id: int, epoch: int, value: float, attempt: int = 0) -> Decision:
        """Record ``value`` after ``epoch`` epochs and return the decision taken for it.

        Not written, and answered without a new decision: a report from an attempt that
        is no longer current (``stop``/``stale``: its worker was declared lost), for a
        trial that ended (``stop``/``ended``), or for an epoch this trial already reported
        (a resumed attempt that had to fall back to an older checkpoint repeats epochs;
        the first report of an epoch stands, and its decision is returned).
        """
        with self._locked() as state:
            trial = state.trials[trial_id]
            if trial.status in TERMINAL:
                return Decision(Action.STOP, "ended")
            if not records.may_write(Op.REPORT, trial.status, trial.attempt, attempt):
                return Decision(Action.STOP, "stale")
            if epoch <= trial.last_epoch:
                earlier = next(r for r in trial.reports if r.epoch >= epoch)
                return (
                    Decision(earlier.decision, earlier.reason)
                    if earlier.epoch == epoch
                    else CONTINUE
                )
            now = self._clock()
            decision = decide(self.scheduler, state, trial_id, epoch, value, now)
            if decision.reason == "ended":
                return decision
            self._append(records.report(trial_id, attempt, epoch, value, decision.action,
                                        decision.reason, trial.worker, now))  # fmt: skip
            return decision

    @_step
    def heartbeat(self, trial_id: int, attempt: int) -> bool:
        """Renew the lease of a running attempt; ``False`` if it is no longer current."""
        with self._locked() as state:
            trial = state.trials[trial_id]
            if not records.may_write(Op.HEARTBEAT, trial.status, trial.attempt, attempt):
                return False
            self._append(records.heartbeat(trial_id, attempt, self._clock()))
            return True

    @_step
    def pause(self, trial_id: int, attempt: int) -> None:
        """The attempt ended because the scheduler paused the trial at a rung."""
        with self._locked() as state:
            trial = state.trials[trial_id]
            if not records.may_write(Op.PAUSE, trial.status, trial.attempt, attempt):
                return
            self._append(records.pause(trial_id, attempt, "rung", self._clock()))

    @_step
    def lose(self, trial_id: int, attempt: int, reason: str) -> None:
        """The attempt's worker is gone: the trial waits to be resumed, or fails once it
        has been lost more than ``max_retries`` times (interrupts do not count:
        :data:`records.INTERRUPTED`). No-op for a stale attempt."""
        with self._locked() as state:
            trial = state.trials[trial_id]
            if not records.may_write(Op.LOST, trial.status, trial.attempt, attempt):
                return
            retries = int(self.state.session_settings.get("max_retries", DEFAULTS.max_retries))
            if reason != records.INTERRUPTED and trial.retries_used >= retries:
                self.end(
                    trial_id,
                    Status.FAILED,
                    reason,
                    f"attempt {attempt} was lost ({reason}) and the trial has used its "
                    f"{retries} retries (hpo.max_retries)",
                    attempt,
                )
                return
            self._append(records.lost(trial_id, attempt, reason, self._clock()))

    @_step
    def end(
        self,
        trial_id: int,
        status: str,
        reason: str | None = None,
        error: str | None = None,
        attempt: int | None = None,
    ) -> None:
        """Record how a trial ended. No-op if it already has a terminal status, or, given
        ``attempt``, unless that attempt is the trial's current running one (a stale
        attempt, declared lost meanwhile, never ends the trial)."""
        with self._locked() as state:
            trial = state.trials[trial_id]
            if not records.may_write(Op.END, trial.status, trial.attempt, attempt):
                return  # ended already, or a stale attempt
            self._append(records.end(trial_id, Status(status), self._clock(), attempt, reason,
                                     error))  # fmt: skip


REFITS = 3  # claims that found another worker's claim first refit this often, unlocked


@dataclass(frozen=True)
class _Proposal:
    trial_id: int
    suggestion: Suggestion


@dataclass(frozen=True)
class Claim:
    """Work for a worker: ``trial`` at ``attempt``, to continue after ``from_epoch``
    reported epochs (0: from scratch)."""

    trial: Trial
    attempt: int
    from_epoch: int
    config: dict[str, Any]  # recomputed from the header and the id, never read back

    @property
    def trial_id(self) -> int:
        return self.trial.trial_id
