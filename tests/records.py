"""Journal records for tests, built the way lit_hpo writes them (one factory per op), so
that a test states only what matters to it and every record replays."""

from __future__ import annotations

from typing import Any

from lit_hpo.state import FORMAT_VERSION, StudyState

SPACE = {"lr": {"type": "loguniform", "low": 0.001, "high": 10.0}}


def header(mode: str = "min", time: float = 0.0, space: dict | None = None, **extra: Any) -> dict:
    return {"op": "study", "format": FORMAT_VERSION, "time": time, "mode": mode,
            "metric": "validation_error", "seed": 0, "space": space or SPACE,
            "points_to_evaluate": [], **extra}  # fmt: skip


def session(time: float = 0.0, n_workers: int = 1, **extra: Any) -> dict:
    budget = extra.pop("budget", {"max_wallclock_time": None, "max_trials": None})
    return {"op": "session", "time": time, "n_workers": n_workers, "budget": budget, **extra}


def claim(trial: int, worker: int = 0, time: float = 0.0, config: dict | None = None) -> dict:
    config = {"lr": 0.1} if config is None else config
    return {"op": "claim", "trial": trial, "worker": worker, "config": config, "time": time}


def report(trial: int, epoch: int, value: float | None, time: float = 0.0, **extra: Any) -> dict:
    return {"op": "report", "trial": trial, "epoch": epoch, "value": value,
            "decision": extra.pop("decision", "continue"), "time": time, **extra}  # fmt: skip


def end(trial: int, status: str, time: float = 0.0, **extra: Any) -> dict:
    return {"op": "end", "trial": trial, "status": status, "time": time, **extra}


def pause(trial: int, attempt: int = 0, time: float = 0.0) -> dict:
    return {"op": "pause", "trial": trial, "attempt": attempt, "reason": "rung", "time": time}


def state_of(*records: dict) -> StudyState:
    state = StudyState()
    for record in records:
        state.apply(record)
    return state


def replayed_stops(records: list[dict]) -> int:
    """Replay ``records`` from scratch, asserting that every recorded decision is the one
    the study's rule gives again; returns how many reports stopped their trial."""
    from lit_hpo.policy import decide
    from lit_hpo.schedulers import make_scheduler

    state, scheduler, stops = StudyState(), make_scheduler(records[0]["scheduler"]), 0
    for record in records:
        if record["op"] == "report":
            again = decide(scheduler, state, record["trial"], record["epoch"], record["value"],
                           record["time"])  # fmt: skip
            assert (again.action, again.reason) == (record["decision"], record["reason"])
            stops += record["decision"] == "stop"
        state.apply(record)
    return stops
