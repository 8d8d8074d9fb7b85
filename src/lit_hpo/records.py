"""The journal's schema in one place: its ops, statuses and actions, one typed record per
op with its constructor, and which records each trial status accepts.

Records stay plain dicts on the wire and in memory (``TypedDict`` types them for the
checker at no cost at run time; the enums are ``str`` subclasses, so ``"running" ==
Status.RUNNING`` and orjson writes them as their values). ``docs/journal.md`` is the
reference for each field; :class:`lit_hpo.state.StudyState` checks every record against
this module before it folds it in, and :class:`lit_hpo.study.StudyClient` writes only
records built here, guarded by the same :data:`ACCEPTS` table.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any, Literal, NotRequired, TypedDict

FORMAT_VERSION = 1


class Op(StrEnum):
    STUDY = "study"  # the header: the study's identity; the first line
    SESSION = "session"  # a run started (its budget, workers, retries, lease)
    CLAIM = "claim"  # a worker took a new trial
    RESUME = "resume"  # a worker took over a pending or promoted trial (a new attempt)
    HEARTBEAT = "heartbeat"  # a running attempt is alive
    REPORT = "report"  # one validation epoch and the decision taken for it
    PAUSE = "pause"  # the trial paused at a rung (promotion ASHA)
    LOST = "lost"  # the attempt's worker died, its lease expired, or it was interrupted
    END = "end"  # how the trial ended


class Status(StrEnum):
    RUNNING = "running"
    PENDING = "pending"  # its attempt was lost; it waits to be resumed from its checkpoint
    PAUSED = "paused"  # at a rung; resumed if promoted
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"


class Action(StrEnum):
    """What the trainer does after a report."""

    CONTINUE = "continue"
    STOP = "stop"
    PAUSE = "pause"


# A ``lost`` record's reason when the attempt was stopped from outside (Ctrl-C, SIGTERM, a
# cluster's preemption or time limit, a run killed and rerun): no fault of its trial, so
# it does not use up ``max_retries`` (a long trial on a cluster is interrupted routinely).
# The other reasons (``worker_died``, ``lease_expired``) do.
INTERRUPTED = "interrupted"

TERMINAL = (Status.COMPLETED, Status.STOPPED, Status.FAILED)
STATUSES = tuple(Status)
ACTIONS = tuple(Action)

# The legal transitions: the statuses a trial must have for a record naming it, and the
# status it moves to (an ``end`` moves it to the record's own terminal status). Replay
# refuses any other record; the client's guards ask the same table before writing.
ACCEPTS: dict[Op, frozenset[Status]] = {
    Op.RESUME: frozenset({Status.PENDING, Status.PAUSED}),
    Op.HEARTBEAT: frozenset({Status.RUNNING}),
    Op.REPORT: frozenset({Status.RUNNING}),
    Op.PAUSE: frozenset({Status.RUNNING}),
    Op.LOST: frozenset({Status.RUNNING}),
    Op.END: frozenset({Status.RUNNING, Status.PENDING, Status.PAUSED}),
}
MOVES_TO: dict[Op, Status] = {
    Op.CLAIM: Status.RUNNING,
    Op.RESUME: Status.RUNNING,
    Op.PAUSE: Status.PAUSED,
    Op.LOST: Status.PENDING,
}


def may_write(op: Op, status: str, current_attempt: int, attempt: int | None) -> bool:
    """Whether a process may write ``op`` for a trial in ``status``: the status accepts
    it, and a step taken for an ``attempt`` acts only while that attempt is the trial's
    running one (a stale attempt, declared lost meanwhile, is fenced off)."""
    if status not in ACCEPTS[op]:
        return False
    return attempt is None or (status == Status.RUNNING and attempt == current_attempt)


class StudyRecord(TypedDict):
    op: Literal[Op.STUDY]
    format: int
    time: float
    space: dict[str, dict[str, Any]]
    points_to_evaluate: list[dict[str, Any]]
    scheduler: dict[str, Any]
    metric: str
    mode: str
    seed: int
    lock: str
    searcher: dict[str, Any]
    budget: dict[str, Any]


class SessionRecord(TypedDict):
    op: Literal[Op.SESSION]
    time: float
    n_workers: int
    budget: dict[str, Any]
    max_retries: int
    lease_seconds: float
    pid: int
    host: NotRequired[str]  # where the run started (its pid means something only there)


class ClaimRecord(TypedDict):
    op: Literal[Op.CLAIM]
    trial: int
    worker: int
    pid: int
    config: dict[str, Any]
    time: float
    bracket: NotRequired[int]  # Hyperband's bracket, drawn at the claim
    prefix: NotRequired[int]  # model-based searchers: how many records the model saw
    by: NotRequired[str]  # model-based searchers: point, random or model
    host: NotRequired[str]  # the worker's host name (workers may run on many machines)


class ResumeRecord(TypedDict):
    op: Literal[Op.RESUME]
    trial: int
    attempt: int
    worker: int
    pid: int
    from_epoch: int
    time: float
    host: NotRequired[str]


class HeartbeatRecord(TypedDict):
    op: Literal[Op.HEARTBEAT]
    trial: int
    attempt: int
    time: float


class ReportRecord(TypedDict):
    op: Literal[Op.REPORT]
    trial: int
    attempt: int
    epoch: int
    value: float | None  # null when the metric was not finite; then ``raw`` says what
    raw: NotRequired[str]
    decision: Action
    reason: str | None
    worker: int
    time: float


class PauseRecord(TypedDict):
    op: Literal[Op.PAUSE]
    trial: int
    attempt: int
    reason: str
    time: float


class LostRecord(TypedDict):
    op: Literal[Op.LOST]
    trial: int
    attempt: int
    reason: str
    time: float


class EndRecord(TypedDict):
    op: Literal[Op.END]
    trial: int
    status: Status
    time: float
    attempt: NotRequired[int]
    reason: NotRequired[str]
    error: NotRequired[str]  # the last 4,000 characters of the traceback


ERROR_LIMIT = 4000


def session(time: float, n_workers: int, budget: dict[str, Any], max_retries: int,
            lease_seconds: float, pid: int, host: str | None = None) -> SessionRecord:  # fmt: skip
    record: SessionRecord = {"op": Op.SESSION, "time": time, "n_workers": n_workers,
                             "budget": budget, "max_retries": max_retries,
                             "lease_seconds": lease_seconds, "pid": pid}  # fmt: skip
    if host is not None:
        record["host"] = host
    return record


def claim(trial: int, worker: int, pid: int, config: dict[str, Any], time: float,
          bracket: int | None = None, prefix: int | None = None,
          by: str | None = None, host: str | None = None) -> ClaimRecord:  # fmt: skip
    record: ClaimRecord = {"op": Op.CLAIM, "trial": trial, "worker": worker, "pid": pid,
                           "config": config, "time": time}  # fmt: skip
    if host is not None:
        record["host"] = host
    if bracket is not None:
        record["bracket"] = bracket
    if prefix is not None:
        record["prefix"] = prefix
    if by is not None:
        record["by"] = by
    return record


def resume(trial: int, attempt: int, worker: int, pid: int, from_epoch: int,
           time: float, host: str | None = None) -> ResumeRecord:  # fmt: skip
    record: ResumeRecord = {"op": Op.RESUME, "trial": trial, "attempt": attempt,
                            "worker": worker, "pid": pid, "from_epoch": from_epoch,
                            "time": time}  # fmt: skip
    if host is not None:
        record["host"] = host
    return record


def heartbeat(trial: int, attempt: int, time: float) -> HeartbeatRecord:
    return {"op": Op.HEARTBEAT, "trial": trial, "attempt": attempt, "time": time}


def report(trial: int, attempt: int, epoch: int, value: float, decision: Action,
           reason: str | None, worker: int, time: float) -> ReportRecord:  # fmt: skip
    """A non-finite value is written as ``"value": null`` with ``"raw": "nan"`` (strict
    JSON has no NaN)."""
    record: ReportRecord = {"op": Op.REPORT, "trial": trial, "attempt": attempt,
                            "epoch": epoch, "value": value, "decision": decision,
                            "reason": reason, "worker": worker, "time": time}  # fmt: skip
    if not math.isfinite(value):
        record["value"], record["raw"] = None, str(value)  # "nan", "inf" or "-inf"
    return record


def pause(trial: int, attempt: int, reason: str, time: float) -> PauseRecord:
    return {"op": Op.PAUSE, "trial": trial, "attempt": attempt, "reason": reason, "time": time}


def lost(trial: int, attempt: int, reason: str, time: float) -> LostRecord:
    return {"op": Op.LOST, "trial": trial, "attempt": attempt, "reason": reason, "time": time}


def end(trial: int, status: Status, time: float, attempt: int | None = None,
        reason: str | None = None, error: str | None = None) -> EndRecord:  # fmt: skip
    record: EndRecord = {"op": Op.END, "trial": trial, "status": status, "time": time}
    if attempt is not None:
        record["attempt"] = attempt
    if reason:
        record["reason"] = reason
    if error:
        record["error"] = error[-ERROR_LIMIT:]
    return record
