"""Plain-text progress of a running study: one line per trial start and end, and a
status line every ``every`` seconds. Plain lines (no redraws) read well in CI logs."""

from __future__ import annotations

from collections.abc import Callable

from lit_hpo.results import best_report
from lit_hpo.space import short_names
from lit_hpo.state import StudyState, Trial


def _config_text(trial: Trial, names: dict[str, str]) -> str:
    parts = []
    for key, value in trial.config.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        parts.append(f"{names.get(key, key)}={shown}")
    return ", ".join(parts)


def _end_text(trial: Trial, metric: str) -> str:
    last = trial.reports[-1] if trial.reports else None
    text = f"trial {trial.trial_id} {trial.status}"
    if last is not None:
        value = "nan" if last.value is None else f"{last.value:.4f}"
        text += f" at epoch {last.epoch}: {metric}={value}"
    if trial.reason:
        text += f" ({trial.reason})"
    if trial.status == "failed" and trial.error:
        text += f": {trial.error.strip().splitlines()[-1]}"
    return text


class Progress:
    def __init__(self, emit: Callable[[str], None] = print, every: float = 30.0) -> None:
        self.emit = emit
        self.every = every
        self._seen: dict[int, str] = {}
        self._last_status = 0.0

    def update(self, state: StudyState, now: float, force_status: bool = False) -> None:
        header = state.header or {}
        metric = header.get("metric", "metric")
        names = short_names(list(header.get("space", {})))
        elapsed = state.active_seconds(now)
        for trial in state.trials:
            previous = self._seen.get(trial.trial_id)
            if previous is None:
                self.emit(
                    f"[{elapsed:7.1f}s] trial {trial.trial_id} started on worker "
                    f"{trial.worker}: {_config_text(trial, names)}"
                )
            if trial.status != "running" and previous != trial.status:
                self.emit(f"[{elapsed:7.1f}s] {_end_text(trial, metric)}")
            self._seen[trial.trial_id] = trial.status
        if force_status or now - self._last_status >= self.every:
            self._last_status = now
            self.emit(f"[{elapsed:7.1f}s] {status_line(state, now)}")


def status_line(state: StudyState, now: float) -> str:
    counts = {s: 0 for s in ("running", "completed", "stopped", "failed")}
    for trial in state.trials:
        counts[trial.status] = counts.get(trial.status, 0) + 1
    limit = state.budget.get("max_wallclock_time")
    budget = f" of {limit:g}s" if limit else ""
    text = (
        f"{state.active_seconds(now):.0f}s{budget}: {counts['running']} running, "
        f"{counts['completed']} completed, {counts['stopped']} stopped, "
        f"{counts['failed']} failed"
    )
    best = best_report(state)
    if best is not None:
        metric = (state.header or {}).get("metric", "metric")
        text += f"; best {metric} {best.value:.4f} (trial {best.trial_id})"
    return text
