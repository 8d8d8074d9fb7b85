"""The textbook's figures, drawn from a study's journal.

Each figure is a data function (plain rows, tested exactly) and a renderer that takes a
study, returns a matplotlib ``Figure`` and never calls ``show()``. ``save_figures``
writes all of them as PNGs into the study directory (``lit-hpo plot DIR``).
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lit_hpo.safefiles import real_directory, write_bytes
from lit_hpo.space import domain_from_json, short_names
from lit_hpo.state import StudyState

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from lit_hpo.results import Study

STATUS_COLOURS = {
    "completed": "tab:green",
    "stopped": "tab:orange",
    "failed": "tab:red",
    "running": "tab:blue",
    "paused": "tab:purple",
    "lost": "lightgrey",  # an attempt whose worker died; the trial resumed elsewhere
    "pending": "lightgrey",
}


def _figure(**kwargs: Any) -> Figure:
    try:
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - matplotlib is a core dependency
        raise ImportError("plots need matplotlib: pip install matplotlib") from err
    return Figure(**kwargs)  # not pyplot: no global state, no GUI backend needed


# ---------------------------------------------------------------- data functions


def incumbent(state: StudyState) -> list[tuple[float, float, int]]:
    """``(time since start, best value so far, trial id)`` each time the best improves,
    in report order."""
    start = float(state.header["time"]) if state.header else 0.0
    sign = state.sign
    reports = sorted(
        (report.time, trial.trial_id, report.value)
        for trial in state.trials
        for report in trial.reports
        if report.value is not None and math.isfinite(report.value)
    )
    points: list[tuple[float, float, int]] = []
    for at, trial_id, value in reports:
        if not points or sign * value < sign * points[-1][1]:
            points.append((at - start, value, trial_id))
    return points


@dataclass(frozen=True)
class Curve:
    trial_id: int
    status: str
    times: list[float]  # seconds since the study started
    epochs: list[int]
    values: list[float]  # NaN where the reported value was not finite
    by: str | None = None  # model-based searchers: what proposed the config


def learning_curves(state: StudyState) -> list[Curve]:
    """One curve per trial that reported, against wall-clock time."""
    start = float(state.header["time"]) if state.header else 0.0
    return [
        Curve(
            trial.trial_id,
            trial.status,
            [r.time - start for r in trial.reports],
            [r.epoch for r in trial.reports],
            [math.nan if r.value is None else r.value for r in trial.reports],
            trial.by if state.observed is not None else None,
        )
        for trial in state.trials
        if trial.reports
    ]


@dataclass(frozen=True)
class Segment:
    worker: int
    trial_id: int
    start: float  # seconds since the study started
    end: float
    status: str


def timeline(state: StudyState, now: float | None = None) -> list[Segment]:
    """One bar per attempt of each trial on its worker's row, labelled with how that
    attempt ended (``paused``, ``lost``, or the trial's status); a running attempt ends at
    ``now``."""
    start = float(state.header["time"]) if state.header else 0.0
    now = time.time() if now is None else now
    return [
        Segment(
            seg.worker,
            trial.trial_id,
            seg.start - start,
            (now if seg.end is None else seg.end) - start,
            seg.outcome or "running",
        )
        for trial in state.trials
        for seg in trial.segments
    ]


def hyperparameter_points(state: StudyState) -> dict[str, list[tuple[Any, float, str]]]:
    """Per hyperparameter: ``(value, best metric of the trial, status)`` for each trial
    with a finite report."""
    keys = list(state.header["space"]) if state.header else []
    sign = state.sign
    points: dict[str, list[tuple[Any, float, str]]] = {key: [] for key in keys}
    for trial in state.trials:
        values = [r.value for r in trial.reports if r.value is not None]
        if not values:
            continue
        best = min(values, key=lambda v: sign * v)
        for key in keys:
            points[key].append((trial.config.get(key), best, trial.status))
    return points


# ---------------------------------------------------------------- renderers


def plot_incumbent(study: Study) -> Figure:
    """Best metric so far against wall-clock time (d2l's ``e.plot()``)."""
    fig = _figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    points = incumbent(study.state)
    if points:
        times, values, _ = zip(*points, strict=True)
        end = max((seg.end for seg in timeline(study.state)), default=times[-1])
        ax.step([*times, max(end, times[-1])], [*values, values[-1]], where="post")
        ax.plot(times, values, "o", markersize=3)
    ax.set_xlabel("wall-clock time (s)")
    ax.set_ylabel(f"best {study.metric} so far")
    ax.set_title("incumbent trajectory")
    ax.grid(alpha=0.3)
    return fig


def plot_learning_curves(study: Study) -> Figure:
    """Every trial's metric against wall-clock time, one colour per trial; a stopped
    trial's curve ends with an ``x`` at the rung where it stopped. With a model-based
    searcher, trials whose config was drawn at random are dashed, the model's solid."""
    fig = _figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    curves = learning_curves(study.state)
    for curve in curves:
        style = "--" if curve.by in ("random", "point") else "-"
        (line,) = ax.plot(curve.times, curve.values, marker=".", linewidth=1, linestyle=style)
        if curve.status == "stopped":
            ax.plot(curve.times[-1], curve.values[-1], "x", color=line.get_color(), markersize=8)
    ax.set_xlabel("wall-clock time (s)")
    ax.set_ylabel(study.metric)
    by_model = any(curve.by is not None for curve in curves)
    legend = "; solid: proposed by the model, dashed: at random" if by_model else ""
    ax.set_title(f"learning curves (x: stopped by the scheduler{legend})")
    ax.grid(alpha=0.3)
    return fig


def plot_timeline(study: Study) -> Figure:
    """One row per worker, one bar per trial, coloured by how the trial ended."""
    segments = timeline(study.state)
    workers = sorted({seg.worker for seg in segments})
    fig = _figure(figsize=(8, 1.0 + 0.6 * max(1, len(workers))), layout="constrained")
    ax = fig.add_subplot()
    for seg in segments:
        row = workers.index(seg.worker)
        colour = STATUS_COLOURS.get(seg.status, "grey")
        ax.barh(row, seg.end - seg.start, left=seg.start, height=0.6, color=colour,
                edgecolor="black", linewidth=0.5)  # fmt: skip
        if seg.end - seg.start > 0:
            ax.text(seg.start + (seg.end - seg.start) / 2, row, str(seg.trial_id),
                    ha="center", va="center", fontsize=7)  # fmt: skip
    ax.set_yticks(range(len(workers)), [f"worker {w}" for w in workers])
    ax.set_xlim(left=0)
    ax.set_xlabel("wall-clock time (s)")
    ax.set_title(
        "worker timeline (green completed, orange stopped, red failed, purple paused, grey lost)"
    )
    ax.invert_yaxis()
    return fig


def plot_hyperparameters(study: Study) -> Figure:
    """Best metric of each trial against each hyperparameter (log axes for log domains)."""
    points = hyperparameter_points(study.state)
    names = short_names(list(points))
    fig = _figure(figsize=(4 * max(1, len(points)), 3.6), layout="constrained")
    axes = fig.subplots(1, max(1, len(points)), squeeze=False)[0]
    for ax, (key, rows) in zip(axes, points.items(), strict=False):
        domain = domain_from_json(key, study.header["space"][key])
        for status in STATUS_COLOURS:
            xs = [x for x, _, s in rows if s == status]
            ys = [y for _, y, s in rows if s == status]
            if xs:
                ax.scatter(xs, ys, s=18, color=STATUS_COLOURS[status], label=status)
        if getattr(domain, "log", False):
            ax.set_xscale("log")
        ax.set_xlabel(names[key])
        ax.set_ylabel(f"best {study.metric}")
        ax.grid(alpha=0.3)
    if any(points.values()):
        axes[0].legend(fontsize=7)
    return fig


FIGURES = {
    "incumbent.png": plot_incumbent,
    "learning_curves.png": plot_learning_curves,
    "timeline.png": plot_timeline,
    "hyperparameters.png": plot_hyperparameters,
}


def save_figures(study: Study, directory: str | Path | None = None) -> list[Path]:
    """Render every figure into ``directory`` (default: the study directory)."""
    target = real_directory(Path(directory) if directory is not None else study.directory)
    written = []
    for name, render in FIGURES.items():
        path = target / name
        buffer = io.BytesIO()
        render(study).savefig(buffer, dpi=110, format="png")
        written.append(write_bytes(path, buffer.getvalue()))  # never through a planted link
    return written
