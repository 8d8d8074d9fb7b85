"""Progress of a running study, read from the journal.

On a terminal: a live panel (``rich``) with elapsed time vs budget, trial counts, the best
value and one line per worker, with one line per trial start and end printed above it.
Elsewhere (CI logs, files): the same facts as plain lines, a status block every
``every`` seconds, never a redraw.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lit_hpo.policy import error_line
from lit_hpo.results import best_report
from lit_hpo.space import config_text
from lit_hpo.state import StudyState, Trial


def end_text(trial: Trial, metric: str) -> str:
    last = trial.reports[-1] if trial.reports else None
    text = f"trial {trial.trial_id} {trial.status}"
    if last is not None:
        value = "nan" if last.value is None else f"{last.value:.4f}"
        text += f" at epoch {last.epoch}: {metric}={value}"
    if trial.reason:
        text += f" ({trial.reason})"
    if trial.status == "failed" and trial.error:
        text += f": {error_line(trial)}"
    return text


def status_line(state: StudyState, now: float) -> str:
    """Elapsed vs budget, counts by status, best value so far and its trial."""
    counts = state.counts()
    limit = state.budget.get("max_wallclock_time")
    budget = f" of {limit:g}s" if limit else ""
    text = f"{state.active_seconds(now):.0f}s{budget}: " + ", ".join(
        f"{n} {status}" for status, n in counts.items()
    )
    best = best_report(state)
    if best is not None:
        metric = (state.header or {}).get("metric", "metric")
        text += f"; best {metric} {best.value:.4f} (trial {best.trial_id})"
    return text


def worker_lines(state: StudyState, now: float | None = None) -> list[str]:
    """One line per worker: the trial it runs, its epoch and last value; its host when
    the running trials span several hosts (a cluster); and, given ``now``, how long a
    trial has been silent once it has missed two heartbeats (every third of the lease):
    a worker that may be gone, before its lease expires."""
    header = state.header or {}
    metric = header.get("metric", "metric")
    workers = int(state.sessions[-1][2]) if state.sessions else 0
    running = {trial.worker: trial for trial in state.running()}
    hosts = len({trial.host for trial in running.values()}) > 1
    lease = state.session_settings.get("lease_seconds")
    lines = []
    for worker in range(workers):
        trial = running.get(worker)
        if trial is None:
            lines.append(f"worker {worker}: idle")
            continue
        where = f" on {trial.host}" if hosts and trial.host else ""
        text = f"worker {worker}{where}: trial {trial.trial_id} ({config_text(trial.config)})"
        if trial.reports:
            last = trial.reports[-1]
            value = "nan" if last.value is None else f"{last.value:.4f}"
            text += f", epoch {last.epoch}, {metric} {value}"
        else:
            text += ", first epoch"
        silent = None if now is None or not lease else now - trial.last_seen
        if silent is not None and silent > 2 * lease / 3:
            text += f"; silent for {silent:.0f} s (lease {lease:g} s)"
        lines.append(text)
    return lines


PROPOSED = {"model": " (proposed by the model)", "random": " (drawn at random)",
            "point": " (a point to evaluate)"}  # fmt: skip


class _Events:
    """Trial starts and ends not yet shown."""

    def __init__(self) -> None:
        self._seen: dict[int, str] = {}

    def new(self, state: StudyState) -> list[str]:
        metric = (state.header or {}).get("metric", "metric")
        lines = []
        for trial in state.trials:
            previous = self._seen.get(trial.trial_id)
            if previous is None:
                by = PROPOSED.get(trial.by or "", "") if state.observed is not None else ""
                lines.append(
                    f"trial {trial.trial_id} started on worker {trial.worker}: "
                    f"{config_text(trial.config)}{by}"
                )
            if trial.status != "running" and previous != trial.status:
                lines.append(end_text(trial, metric))
            self._seen[trial.trial_id] = trial.status
        return lines


class Progress:
    """Plain lines: events as they happen, a status block every ``every`` seconds."""

    def __init__(self, emit: Callable[[str], None] = print, every: float = 30.0) -> None:
        self.emit = emit
        self.every = every
        self._events = _Events()
        self._last_status: float | None = None

    def update(self, state: StudyState, now: float, force_status: bool = False) -> None:
        stamp = f"[{state.active_seconds(now):7.1f}s]"
        for line in self._events.new(state):
            self.emit(f"{stamp} {line}")
        if force_status or self._last_status is None or now - self._last_status >= self.every:
            self._last_status = now
            self.emit(f"{stamp} {status_line(state, now)}")
            for line in worker_lines(state, now):
                self.emit(f"{' ' * len(stamp)}   {line}")

    def close(self) -> None:
        pass


class LiveProgress:
    """A live panel on a terminal (rich); events scroll above it."""

    def __init__(self, console: Any = None, refresh_per_second: float = 2.0) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = console or Console()
        self._live = Live(console=self.console, refresh_per_second=refresh_per_second)
        self._events = _Events()
        self._live.start()

    def emit(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False)

    def update(self, state: StudyState, now: float, force_status: bool = False) -> None:
        from rich.panel import Panel
        from rich.text import Text

        stamp = f"[{state.active_seconds(now):7.1f}s]"
        for line in self._events.new(state):
            self.emit(f"{stamp} {line}")
        body = Text("\n".join([status_line(state, now), *worker_lines(state, now)]))
        self._live.update(Panel(body, title="lit_hpo study", expand=False))

    def close(self) -> None:
        self._live.stop()


def make_progress(is_terminal: bool) -> Progress | LiveProgress:
    return LiveProgress() if is_terminal else Progress()
