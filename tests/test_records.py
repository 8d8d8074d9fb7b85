"""The journal schema (lit_hpo/records.py): the constructors write what replay accepts,
and the legal-transition table is the one both sides use."""

from __future__ import annotations

import math

import orjson
import pytest

from lit_hpo import records
from lit_hpo.records import ACCEPTS, Op, Status, may_write
from lit_hpo.state import InvalidRecordError, StudyState
from tests.records import header


def _replayed(*lines: dict) -> StudyState:
    """Through the wire format: bytes written by orjson, read back as plain dicts."""
    state = StudyState()
    for line in lines:
        state.apply(orjson.loads(orjson.dumps(line)))
    return state


def test_every_constructor_writes_a_record_that_replays() -> None:
    state = _replayed(
        header(),
        records.session(0.0, 2, {"max_wallclock_time": None, "max_trials": 3}, 2, 60.0, 1),
        records.claim(0, 0, 11, {"lr": 0.1}, 1.0, bracket=1),
        records.heartbeat(0, 0, 2.0),
        records.report(0, 0, 1, 0.5, records.Action.CONTINUE, None, 0, 3.0),
        records.report(0, 0, 2, math.nan, records.Action.STOP, "nonfinite", 0, 4.0),
        records.end(0, Status.STOPPED, 5.0, attempt=0, reason="nonfinite"),
        records.claim(1, 1, 12, {"lr": 0.2}, 1.0),
        records.report(1, 0, 1, 0.4, records.Action.PAUSE, "rung", 1, 2.0),
        records.pause(1, 0, "rung", 2.5),
        records.resume(1, 1, 0, 13, 1, 6.0),
        records.lost(1, 1, "worker_died", 7.0),
        records.end(1, Status.FAILED, 8.0, error="x" * 5000),
    )
    first, second = state.trials
    assert (first.status, first.bracket, first.reports[1].raw) == ("stopped", 1, "nan")
    assert first.reports[1].value is None
    assert (second.status, second.attempt, second.losses) == ("failed", 1, 1)
    assert len(second.error or "") == records.ERROR_LIMIT
    assert state.counts() == {s: {"stopped": 1, "failed": 1}.get(s, 0) for s in Status}


def _trial_in(status: Status) -> list[dict]:
    """The records that leave trial 0 at attempt 0 in ``status``."""
    start = [header(), records.session(0.0, 1, {"max_wallclock_time": None,
             "max_trials": None}, 2, 60.0, 1), records.claim(0, 0, 1, {"lr": 0.1}, 1.0)]  # fmt: skip
    then = {
        Status.RUNNING: [],
        Status.PENDING: [records.lost(0, 0, "worker_died", 2.0)],
        Status.PAUSED: [
            records.report(0, 0, 1, 0.5, records.Action.PAUSE, "rung", 0, 2.0),
            records.pause(0, 0, "rung", 2.0),
        ],
    }.get(status, [records.end(0, status, 2.0)])
    return start + then


def _record(op: Op, attempt: int | None) -> dict:
    """What the client writes for ``op`` on trial 0 (at ``attempt``, or the next one)."""
    step = 0 if attempt is None else attempt
    return {
        Op.RESUME: lambda: records.resume(0, 1, 0, 1, 0, 3.0),
        Op.HEARTBEAT: lambda: records.heartbeat(0, step, 3.0),
        Op.REPORT: lambda: records.report(0, step, 2, 0.4, records.Action.CONTINUE, None, 0, 3.0),
        Op.PAUSE: lambda: records.pause(0, step, "rung", 3.0),
        Op.LOST: lambda: records.lost(0, step, "worker_died", 3.0),
        Op.END: lambda: records.end(0, Status.FAILED, 3.0, attempt=attempt),
    }[op]()


@pytest.mark.parametrize("op", [op for op in Op if op in ACCEPTS])
@pytest.mark.parametrize("status", list(Status))
def test_the_client_writes_only_what_replay_accepts(op: Op, status: Status) -> None:
    """Every record the client's guard lets through replays on the state it was
    written against; what the guard refuses is never written."""
    # The attempts the client passes: a resume starts a new one, an end may be written
    # for the trial as a whole (None) or by an attempt, the other steps by an attempt.
    attempts = {Op.RESUME: (None,), Op.END: (None, 0)}.get(op, (0,))
    for attempt in attempts:
        if may_write(op, status, 0, attempt):
            _replayed(*_trial_in(status), _record(op, attempt))  # must not raise


def test_an_attempt_fenced_step_acts_only_for_the_running_attempt() -> None:
    assert may_write(Op.REPORT, Status.RUNNING, 2, 2)
    assert not may_write(Op.REPORT, Status.RUNNING, 2, 1)  # a zombie of attempt 1
    assert not may_write(Op.END, Status.PENDING, 2, 2)  # declared lost: fenced
    assert may_write(Op.END, Status.PENDING, 2, None)  # the supervisor may fail it
    assert not may_write(Op.END, Status.COMPLETED, 2, None)  # ended already


def test_an_op_outside_the_schema_fails_closed() -> None:
    with pytest.raises(InvalidRecordError, match="unknown journal record op 'promote'"):
        _replayed(header(), {"op": "promote", "trial": 0, "time": 0.0})
