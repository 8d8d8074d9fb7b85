"""The locked study steps: unique ids across processes, budget, and replay determinism."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lit_hpo.journal import Journal
from lit_hpo.spec import spec_from_config
from lit_hpo.study import StudyClient
from tests.conftest import SEEDS
from tests.records import replayed_stops

CLAIMER = """
import os, sys, time
from lit_hpo.study import StudyClient
client = StudyClient(sys.argv[1])
worker = int(sys.argv[2])
while not os.path.exists(os.path.join(sys.argv[1], "go")):  # start together
    time.sleep(0.01)
while (trial := client.claim(worker)) is not None:
    # A fake learning curve: value falls with epochs, trial-dependent level.
    for epoch in range(1, 11):
        time.sleep(0.002)  # "training": yields the CPU so that every worker gets a share
        value = (trial.trial_id * 7919 % 101) / 101 + 1.0 / epoch
        if client.report(trial.trial_id, epoch, value).stop:
            break
    client.end(trial.trial_id, "completed")
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_first_trial_takes_the_point_to_evaluate(tmp_path: Path) -> None:
    client = StudyClient(tmp_path)
    client.open(spec_from_config(SEEDS), n_workers=2)
    first, second = client.claim(0), client.claim(1)
    assert first is not None and second is not None
    assert first.config == {"model.learning_rate": 0.1, "data.batch_size": 128}
    assert (first.trial_id, second.trial_id) == (0, 1)
    assert second.config != first.config


def test_budget_stops_claims_and_running_trials(tmp_path: Path) -> None:
    clock = Clock()
    client = StudyClient(tmp_path, clock=clock)
    client.open(spec_from_config({**SEEDS, "max_wallclock_time": 60}), n_workers=1)
    trial = client.claim(0)
    assert trial is not None
    assert client.report(trial.trial_id, 1, 0.5).action == "continue"
    clock.now += 61
    decision = client.report(trial.trial_id, 2, 0.4)
    assert (decision.action, decision.reason) == ("stop", "budget")
    assert client.claim(0) is None


def test_max_trials(tmp_path: Path) -> None:
    client = StudyClient(tmp_path)
    client.open(spec_from_config({**SEEDS, "max_trials": 3}), n_workers=1)
    assert [t.trial_id for t in iter(lambda: client.claim(0), None)] == [0, 1, 2]


def test_non_finite_value_is_recorded_and_stops_the_trial(tmp_path: Path) -> None:
    client = StudyClient(tmp_path)
    client.open(spec_from_config(SEEDS), n_workers=1)
    trial = client.claim(0)
    assert trial is not None
    decision = client.report(trial.trial_id, 1, math.nan)
    assert (decision.action, decision.reason) == ("stop", "nonfinite")
    report = client.state.trials[0].reports[0]
    assert (report.value, report.raw) == (None, "nan")
    assert client.state.rung(1) == []


def test_report_after_the_trial_ended_is_rejected_cleanly(tmp_path: Path) -> None:
    client = StudyClient(tmp_path)
    client.open(spec_from_config(SEEDS), n_workers=1)
    trial = client.claim(0)
    assert trial is not None
    client.end(trial.trial_id, "failed", "worker_died")
    records_before = len(Journal(client.journal.path).read(0)[0])
    decision = client.report(trial.trial_id, 1, 0.3)
    assert (decision.action, decision.reason) == ("stop", "ended")
    assert len(Journal(client.journal.path).read(0)[0]) == records_before


def test_concurrent_workers_get_unique_ids_and_replay_reproduces_every_decision(
    tmp_path: Path,
) -> None:
    spec = spec_from_config({**SEEDS, "max_wallclock_time": None, "max_trials": 60})
    StudyClient(tmp_path).open(spec, n_workers=4)
    procs = [
        subprocess.Popen([sys.executable, "-c", CLAIMER, str(tmp_path), str(w)]) for w in range(4)
    ]
    time.sleep(1.0)  # let every process import and reach its start line
    (tmp_path / "go").touch()
    assert [p.wait(timeout=300) for p in procs] == [0] * 4
    records, _ = Journal(tmp_path / "journal.jsonl").read(0)
    claims = [r for r in records if r["op"] == "claim"]
    assert [r["trial"] for r in claims] == list(range(60))
    assert len({r["worker"] for r in claims}) > 1
    # Replay from scratch: every recorded decision is the one the rule gives again.
    assert replayed_stops(records) > 10  # ASHA really stopped trials at rungs


def test_a_signal_landing_as_the_interrupted_record_starts_still_records_it(
    tmp_path: Path,
) -> None:
    """SLURM's SIGTERM right after a preemption's USR2 landed while the worker was holding
    off interrupts to write the attempt's ``lost`` record: the record was never written
    and the trial stayed running. Here a real SIGINT is sent from inside the first
    ``signal.signal`` call of that set-up (a profile hook), so its handler raises there."""
    import _signal
    import os
    import signal

    from lit_hpo.worker import record_interrupted

    client = StudyClient(tmp_path)
    client.open(spec_from_config(SEEDS), n_workers=1)
    claim = client.claim(0)
    assert claim is not None
    sent: list[int] = []

    def second_signal(frame: object, event: str, arg: object) -> None:
        if event == "c_call" and arg is _signal.signal and not sent:
            sent.append(os.getpid())
            os.kill(os.getpid(), signal.SIGINT)

    handlers = {name: signal.getsignal(name) for name in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C: KeyboardInterrupt
    sys.setprofile(second_signal)
    try:
        record_interrupted(client, claim.trial_id, claim.attempt)
    except KeyboardInterrupt:
        pytest.fail("the second signal cut the interrupted attempt's record short")
    finally:
        sys.setprofile(None)
        restored = {name: signal.getsignal(name) for name in handlers}
        for name, handler in handlers.items():
            signal.signal(name, handler)
    assert sent  # the signal was sent while the interrupts were being held off
    trial = StudyClient(tmp_path).refresh().trials[claim.trial_id]
    assert (trial.status, trial.losses) == ("pending", 1)  # recorded once, resumable
    assert restored[signal.SIGINT] is signal.default_int_handler  # handlers as they were


def test_a_lost_attempt_is_resumed_first_by_the_next_free_worker(tmp_path: Path) -> None:
    client = StudyClient(tmp_path)
    client.open(spec_from_config(SEEDS), n_workers=2)
    first = client.claim(0)
    assert first is not None
    client.report(first.trial_id, 1, 0.8)
    client.report(first.trial_id, 2, 0.7)
    client.lose(first.trial_id, 0, "worker_died")
    assert client.state.trials[0].status == "pending"
    again = client.claim(1)
    assert again is not None
    assert (again.trial_id, again.attempt, again.from_epoch) == (0, 1, 2)
    assert again.trial.worker == 1 and len(again.trial.segments) == 2
    # the dead attempt's late report is rejected, nothing written
    size = client.journal.path.stat().st_size
    assert client.report(0, 3, 0.6, attempt=0).reason == "stale"
    assert client.journal.path.stat().st_size == size
    assert client.report(0, 3, 0.6, attempt=1).action == "continue"
    # a repeated epoch (fallback to an older checkpoint) keeps its first report
    assert client.report(0, 2, 0.1, attempt=1).action == "continue"
    assert [r.value for r in client.state.trials[0].reports] == [0.8, 0.7, 0.6]


def test_max_retries_turns_a_trial_that_keeps_dying_into_failed(tmp_path: Path) -> None:
    client = StudyClient(tmp_path)
    client.open(spec_from_config({**SEEDS, "max_retries": 2}), n_workers=1)
    claim = client.claim(0)
    assert claim is not None
    for attempt in range(3):
        assert client.state.trials[0].attempt == attempt
        client.lose(0, attempt, "worker_died")
        if attempt < 2:
            assert client.claim(0).attempt == attempt + 1  # type: ignore[union-attr]
    trial = client.state.trials[0]
    assert (trial.status, trial.reason) == ("failed", "worker_died")
    assert "used its 2 retries" in (trial.error or "")


def test_interrupts_do_not_use_up_max_retries(tmp_path: Path) -> None:
    """Ctrl-C, SIGTERM, a preemption or a cluster's time limit is no fault of the trial: a
    long trial interrupted every few hours must not fail for it. Lost workers still count."""
    client = StudyClient(tmp_path)
    client.open(spec_from_config({**SEEDS, "max_retries": 1}), n_workers=1)
    assert client.claim(0) is not None
    for attempt in range(4):  # more interrupts than retries
        client.lose(0, attempt, "interrupted")
        assert client.state.trials[0].status == "pending"
        assert client.claim(0).attempt == attempt + 1  # type: ignore[union-attr]
    client.lose(0, 4, "worker_died")  # the one retry
    assert client.claim(0).attempt == 5  # type: ignore[union-attr]
    client.lose(0, 5, "lease_expired")
    trial = StudyClient(tmp_path).refresh().trials[0]  # the same from a fresh replay
    assert (trial.status, trial.reason, trial.losses, trial.retries_used) == (
        "failed",
        "lease_expired",
        5,
        1,
    )
    assert "used its 1 retries" in (trial.error or "")


def test_an_expired_lease_is_detected_at_the_next_claim(tmp_path: Path) -> None:
    clock = Clock()
    client = StudyClient(tmp_path, clock=clock)
    client.open(spec_from_config({**SEEDS, "lease_seconds": 30}), n_workers=2)
    silent = client.claim(0)
    alive = client.claim(1)
    assert silent is not None and alive is not None
    clock.now += 20
    assert client.heartbeat(alive.trial_id, 0)
    clock.now += 15  # silent: 35 s since its claim; alive: 15 s since its heartbeat
    resumed = client.claim(2)
    assert resumed is not None and (resumed.trial_id, resumed.attempt) == (silent.trial_id, 1)
    assert client.state.trials[alive.trial_id].status == "running"
    assert client.state.trials[silent.trial_id].reason is None  # running again
    assert not client.heartbeat(silent.trial_id, 0)  # the old attempt's lease is gone


def test_a_rerun_resumes_what_the_killed_run_left_running(tmp_path: Path) -> None:
    spec = spec_from_config(SEEDS)
    first = StudyClient(tmp_path)
    first.open(spec, n_workers=1)
    claim = first.claim(0)
    assert claim is not None
    first.report(claim.trial_id, 1, 0.5)
    # the whole run is SIGKILLed here; a rerun opens the same directory
    rerun = StudyClient(tmp_path)
    left = rerun.open(spec, n_workers=1)
    assert [t.trial_id for t in left] == [0]
    assert rerun.state.trials[0].status == "pending"
    again = rerun.claim(0)
    assert again is not None and (again.trial_id, again.attempt, again.from_epoch) == (0, 1, 1)
    assert rerun.claim(0).trial_id == 1  # type: ignore[union-attr]  # ids continue
    sessions = [r for r in rerun.journal.read()[0] if r["op"] == "session"]
    assert [(r["pid"], r["host"]) for r in sessions] == [(os.getpid(), socket.gethostname())] * 2
