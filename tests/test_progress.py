"""Progress output: plain lines for logs, a live rich panel for terminals."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from lit_hpo import load_study
from lit_hpo.progress import LiveProgress, Progress, status_line, worker_lines
from lit_hpo.state import StudyState
from tests import records
from tests.records import state_of

SEEDS_SPACE = {
    "model.learning_rate": {"type": "loguniform", "low": 0.01, "high": 1.0},
    "data.batch_size": {"type": "randint", "low": 32, "high": 256},
}

RECORDED = Path(__file__).parent / "data" / "asha_study"


def _running_state() -> StudyState:
    config = {"model.learning_rate": 0.1, "data.batch_size": 128}
    return state_of(
        records.header(space=SEEDS_SPACE),
        records.session(n_workers=2, budget={"max_wallclock_time": 300}),
        records.claim(0, worker=1, time=1.0, config=config),
        records.report(0, 3, 0.25, time=30.0),
    )


def test_status_and_worker_lines() -> None:
    state = _running_state()
    assert status_line(state, now=42.0) == (
        "42s of 300s: 1 running, 0 pending, 0 paused, 0 completed, 0 stopped, 0 failed; "
        "best validation_error 0.2500 (trial 0)"
    )
    assert worker_lines(state) == [
        "worker 0: idle",
        "worker 1: trial 0 (learning_rate=0.1, batch_size=128), epoch 3, validation_error 0.2500",
    ]


def test_worker_lines_name_hosts_on_a_cluster_and_a_silent_trial() -> None:
    config = {"model.learning_rate": 0.1, "data.batch_size": 128}
    state = state_of(
        records.header(space=SEEDS_SPACE),
        records.session(n_workers=2, lease_seconds=60.0),
        {**records.claim(0, worker=0, time=1.0, config=config), "host": "node-a"},
        {**records.claim(1, worker=1, time=2.0, config=config), "host": "node-b"},
        records.report(0, 1, 0.5, time=30.0),
    )
    assert worker_lines(state, now=40.0) == [  # no trial has missed two heartbeats yet
        "worker 0 on node-a: trial 0 (learning_rate=0.1, batch_size=128), epoch 1, "
        "validation_error 0.5000",
        "worker 1 on node-b: trial 1 (learning_rate=0.1, batch_size=128), first epoch",
    ]
    assert worker_lines(state, now=60.0)[1].endswith("first epoch; silent for 58 s (lease 60 s)")
    assert "silent" not in worker_lines(state, now=60.0)[0]
    assert worker_lines(_running_state(), now=10**6)[1].startswith("worker 1: trial 0")  # one
    # host, no lease recorded: as before


def test_plain_progress_prints_each_event_once_and_a_periodic_status() -> None:
    lines: list[str] = []
    progress = Progress(emit=lines.append, every=30.0)
    state = load_study(RECORDED).state
    progress.update(state, now=state.sessions[-1][1])
    progress.update(state, now=state.sessions[-1][1] + 1)  # nothing new, no status yet
    starts = [line for line in lines if "started on worker" in line]
    ends = [
        line for line in lines if " completed at epoch " in line or " stopped at epoch " in line
    ]
    assert len(starts) == 11 and len(ends) == 11
    assert sum("best validation_error 0.1707 (trial 8)" in line for line in lines) == 1
    assert all("\x1b" not in line for line in lines)  # no escape codes in logs


def test_live_progress_draws_a_panel_on_a_terminal() -> None:
    out = io.StringIO()
    live = LiveProgress(console=Console(file=out, force_terminal=True, width=120))
    live.update(_running_state(), now=42.0)
    live.close()
    text = out.getvalue()
    assert "lit_hpo study" in text and "trial 0 started on worker 1" in text
    assert "worker 1: trial 0 (learning_rate=0.1, batch_size=128), epoch 3" in text
