"""Progress output: plain lines for logs, a live rich panel for terminals."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from lit_hpo import load_study
from lit_hpo.progress import LiveProgress, Progress, status_line, worker_lines
from lit_hpo.state import StudyState

RECORDED = Path(__file__).parent / "data" / "asha_study"


def _running_state() -> StudyState:
    state = StudyState()
    state.apply({"op": "study", "format": 1, "time": 0.0, "mode": "min", "metric": "validation_error",
                 "space": {"model.learning_rate": {}, "data.batch_size": {}}})  # fmt: skip
    state.apply(
        {"op": "session", "time": 0.0, "n_workers": 2, "budget": {"max_wallclock_time": 300}}
    )
    state.apply({"op": "claim", "trial": 0, "worker": 1, "time": 1.0,
                 "config": {"model.learning_rate": 0.1, "data.batch_size": 128}})  # fmt: skip
    state.apply(
        {
            "op": "report",
            "trial": 0,
            "epoch": 3,
            "value": 0.25,
            "decision": "continue",
            "time": 30.0,
        }
    )
    return state


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
