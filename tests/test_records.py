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


@pytest.mark.parametrize("op", [op for op in Op if op in ACCEPTS])
@pytest.mark.parametrize("status", list(Status))
def test_the_client_writes_only_what_replay_accepts(op: Op, status: Status) -> None:
    for attempt in (None, 0, 1):
        if may_write(op, status, 0, attempt):
            assert status in ACCEPTS[op]
            assert attempt is None or (status == Status.RUNNING and attempt == 0)


def test_an_attempt_fenced_step_acts_only_for_the_running_attempt() -> None:
    assert may_write(Op.REPORT, Status.RUNNING, 2, 2)
    assert not may_write(Op.REPORT, Status.RUNNING, 2, 1)  # a zombie of attempt 1
    assert not may_write(Op.END, Status.PENDING, 2, 2)  # declared lost: fenced
    assert may_write(Op.END, Status.PENDING, 2, None)  # the supervisor may fail it
    assert not may_write(Op.END, Status.COMPLETED, 2, None)  # ended already


def test_an_op_outside_the_schema_fails_closed() -> None:
    with pytest.raises(InvalidRecordError, match="unknown journal record op 'promote'"):
        _replayed(header(), {"op": "promote", "trial": 0, "time": 0.0})
