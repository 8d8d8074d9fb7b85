"""Figures: the data functions exactly (tables), each renderer on a recorded real study."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from lit_hpo import load_study
from lit_hpo.plots import (
    FIGURES,
    Segment,
    hyperparameter_points,
    incumbent,
    learning_curves,
    save_figures,
    timeline,
)
from lit_hpo.state import StudyState
from tests import records
from tests.records import state_of

RECORDED = Path(__file__).parent / "data" / "asha_study"


def _state(mode: str, events: list[tuple]) -> StudyState:
    """events: ("claim", trial, worker, t) | ("report", trial, epoch, value, t) | ("end", trial, status, t)."""
    state = state_of(records.header(mode, 100.0), records.session(100.0, n_workers=2))
    for event in events:
        if event[0] == "claim":
            _, trial, worker, t = event
            state.apply(records.claim(trial, worker, t, {"lr": 0.1 * (trial + 1)}))
        elif event[0] == "report":
            _, trial, epoch, value, t = event
            state.apply(records.report(trial, epoch, value, t))
        else:
            _, trial, status, t = event
            state.apply(records.end(trial, status, t))
    return state


EVENTS = [
    ("claim", 0, 0, 100.0),
    ("claim", 1, 1, 101.0),
    ("report", 0, 1, 0.8, 110.0),
    ("report", 1, 1, 0.9, 111.0),
    ("report", 0, 2, 0.5, 120.0),
    ("report", 1, 2, None, 121.0),
    ("end", 1, "stopped", 121.5),
    ("claim", 2, 1, 122.0),
    ("report", 2, 1, 0.3, 130.0),
    ("report", 0, 3, 0.6, 131.0),
]


@pytest.mark.parametrize(
    "mode, expected",
    [
        pytest.param("min", [(10.0, 0.8, 0), (20.0, 0.5, 0), (30.0, 0.3, 2)], id="min"),
        pytest.param("max", [(10.0, 0.8, 0), (11.0, 0.9, 1)], id="max"),
    ],
)
def test_incumbent_steps_only_on_improvement(mode: str, expected: list) -> None:
    assert incumbent(_state(mode, EVENTS)) == expected


def test_learning_curves_per_trial_with_nan_for_non_finite() -> None:
    curves = {c.trial_id: c for c in learning_curves(_state("min", EVENTS))}
    assert curves[0].times == [10.0, 20.0, 31.0] and curves[0].values == [0.8, 0.5, 0.6]
    assert curves[1].status == "stopped" and curves[1].epochs == [1, 2]
    assert curves[1].values[0] == 0.9 and math.isnan(curves[1].values[1])
    assert curves[2].times == [30.0]


def test_timeline_segments_running_trials_end_now() -> None:
    segments = timeline(_state("min", EVENTS), now=140.0)
    assert segments == [
        Segment(0, 0, 0.0, 40.0, "running"),
        Segment(1, 1, 1.0, 21.5, "stopped"),
        Segment(1, 2, 22.0, 40.0, "running"),
    ]


def test_hyperparameter_points_use_each_trials_best() -> None:
    points = hyperparameter_points(_state("min", EVENTS))
    assert points == {
        "lr": [(0.1, 0.5, "running"), (0.2, 0.9, "stopped"), (0.30000000000000004, 0.3, "running")]
    }


def test_every_renderer_draws_the_recorded_study(tmp_path: Path) -> None:
    study = load_study(RECORDED)
    for name, render in FIGURES.items():
        figure = render(study)
        assert figure.axes, name
    written = save_figures(study, tmp_path)
    assert sorted(p.name for p in written) == sorted(FIGURES)
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_renderers_accept_a_study_without_reports(tmp_path: Path) -> None:
    (tmp_path / "journal.jsonl").write_text(
        (RECORDED / "journal.jsonl").read_text().splitlines()[0] + "\n"
    )
    study = load_study(tmp_path)
    assert [p.name for p in save_figures(study, tmp_path)] == list(FIGURES)


def test_timeline_has_one_bar_per_attempt_labelled_by_how_it_ended() -> None:
    state = _state("min", [("claim", 0, 0, 100.0), ("report", 0, 1, 0.5, 110.0)])
    state.apply({"op": "pause", "trial": 0, "attempt": 0, "time": 111.0})
    state.apply({"op": "resume", "trial": 0, "attempt": 1, "worker": 1, "time": 112.0})
    state.apply({"op": "lost", "trial": 0, "attempt": 1, "reason": "worker_died", "time": 115.0})
    state.apply({"op": "resume", "trial": 0, "attempt": 2, "worker": 0, "time": 116.0})
    state.apply({"op": "end", "trial": 0, "status": "completed", "time": 120.0})
    assert timeline(state) == [
        Segment(0, 0, 0.0, 11.0, "paused"),
        Segment(1, 0, 12.0, 15.0, "lost"),
        Segment(0, 0, 16.0, 20.0, "completed"),
    ]
