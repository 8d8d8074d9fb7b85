"""State is a replay of the journal, whoever folds it in and however it is cut: random
studies driven through real `StudyClient`s sharing one journal (a file, or a real
PostgreSQL server's table), every step a real locked step. After each step, the state
of the client that took it (folded in piece by piece: its own appends, and the tails
the others left it to read under the lock) must equal a fresh replay of the whole
journal, in everything the schedulers and the analysis read: each trial, the rungs
(per Hyperband bracket too), the paused heaps, the tie ranks, the sessions. An
observer that reads once early and once at the end takes the bulk-replay path."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from lit_hpo.records import INTERRUPTED
from lit_hpo.spec import spec_from_config
from lit_hpo.state import StudyState
from lit_hpo.study import StudyClient
from tests.conftest import SEEDS

MAX_EPOCHS = 8
SCHEDULERS = {  # trials enough for 1,100-1,500 records
    "fifo": {"scheduler": "fifo", "max_trials": 100},
    "asha": {"scheduler": "asha", "grace_period": 1, "max_trials": 250},
    "asha_promotion": {"scheduler": "asha_promotion", "grace_period": 1, "max_trials": 250},
    "hyperband": {"scheduler": "hyperband", "grace_period": 1, "max_trials": 200},
}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def view(state: StudyState) -> dict[str, Any]:
    """Everything a decision or a table reads from a state, as plain values."""
    brackets = sorted({t.bracket for t in state.trials if t.bracket is not None})
    epochs = range(1, MAX_EPOCHS + 1)
    return {
        "trials": [
            (
                t.trial_id,
                t.config,
                t.status,
                t.attempt,
                t.worker,
                t.bracket,
                t.losses,
                t.retries_used,
                t.reason,
                t.last_seen,
                t.claimed_at,
                [(r.epoch, r.value, r.decision, r.reason, r.attempt) for r in t.reports],
                [(s.attempt, s.worker, s.start, s.end, s.outcome) for s in t.segments],
            )
            for t in state.trials
        ],
        "rungs": {(e, b): list(state.rung(e, b)) for e in epochs for b in [None, *brackets]},
        "counts": state.counts(),
        "running": [t.trial_id for t in state.running()],
        "pending": [t.trial_id for t in state.pending()],
        "best_paused": {e: state.best_paused(e) for e in epochs},
        "tied_before": [
            state.tied_before(r.epoch, state.sign * r.value, t.trial_id)
            for t in state.trials
            for r in t.reports
            if r.value is not None
        ],
        "sessions": state.sessions,
        "budget": state.budget,
        "n_records": state.n_records,
        "unbracketed": state.unbracketed,
    }


CASES = [
    *[("file", scheduler, seed) for scheduler in SCHEDULERS for seed in range(2)],
    *[("postgres", scheduler, 0) for scheduler in SCHEDULERS],
]


@pytest.mark.parametrize(("backend", "scheduler", "seed"), CASES)
def test_every_client_state_equals_a_fresh_replay(
    tmp_path: Path, backend: str, scheduler: str, seed: int, request: pytest.FixtureRequest
) -> None:
    url = None if backend == "file" else str(request.getfixturevalue("pg_url"))

    def fresh(path: Path) -> StudyState:
        return StudyClient(path, clock=clock, journal=url).refresh()

    rng = random.Random(seed)
    clock = Clock()
    settings = {
        **SEEDS,
        "max_epochs": MAX_EPOCHS,
        "max_wallclock_time": None,
        "max_retries": 1,
        "lease_seconds": 30,
        "seed": seed,
        **SCHEDULERS[scheduler],
    }
    spec = spec_from_config(settings)
    clients = [StudyClient(tmp_path, clock=clock, journal=url) for _ in range(3)]
    clients[0].open(spec, n_workers=4)
    observer = StudyClient(tmp_path, clock=clock, journal=url)
    running: dict[int, tuple[int, int, int]] = {}  # worker -> (trial, attempt, last epoch)
    stale: list[tuple[int, int, int]] = []  # attempts declared lost while they ran
    quality = {i: rng.random() for i in range(250)}
    seen_ops: set[str] = set()
    steps = 0
    while steps < 10_000:
        steps += 1
        clock.now += rng.choice([0.1, 0.5, 1.0, 5.0])
        client = rng.choice(clients)
        free = [w for w in range(4) if w not in running]
        move, acted = rng.random(), True
        if free and (move < 0.25 or not running):
            claim = client.claim(rng.choice(free))
            if claim is None and not running:
                break  # the budget is spent and nothing runs
            if claim is not None:
                running[claim.trial.worker] = (claim.trial_id, claim.attempt, claim.from_epoch)
                seen_ops.add("resume" if claim.attempt else "claim")
        elif move < 0.85:
            worker = rng.choice(sorted(running))
            trial, attempt, epoch = running[worker]
            epoch += 1
            value = round(quality[trial] + 1 / epoch + rng.choice([0.0, 0.05, -0.05]), 2)
            decision = client.report(trial, epoch, value, attempt)
            running[worker] = (trial, attempt, epoch)
            if decision.action == "pause":
                client.pause(trial, attempt)
            elif decision.stop or epoch >= MAX_EPOCHS:
                client.end(trial, "stopped" if decision.stop else "completed", attempt=attempt)
            if decision.action == "pause" or decision.stop or epoch >= MAX_EPOCHS:
                del running[worker]
                seen_ops.add(decision.action)
        elif move < 0.9:
            worker = rng.choice(sorted(running))
            trial, attempt, _ = running.pop(worker)
            client.lose(trial, attempt, rng.choice(["worker_died", INTERRUPTED]))
            stale.append((trial, attempt, worker))
            seen_ops.add("lost")
        elif move < 0.93 and stale:  # a worker declared lost reports anyway: fenced off
            trial, attempt, _ = rng.choice(stale)
            assert client.report(trial, 99, 0.0, attempt).stop
            assert not client.heartbeat(trial, attempt)
            seen_ops.add("stale")
        elif move < 0.96:
            worker = rng.choice(sorted(running))
            client.heartbeat(*running[worker][:2])
        elif move < 0.98:  # silent workers: their leases expire at the next claim
            clock.now += 31.0
            running.clear()  # still running in the journal until then: not yet stale
            acted = False  # no step: the client's state is as it was
            seen_ops.add("lease")
        else:  # the run is killed and rerun: a new session loses what ran
            for worker in sorted(running):
                stale.append((*running.pop(worker)[:2], worker))
            client.open(spec, n_workers=4)
            seen_ops.add("session")
        if observer.state.n_records == 0 and client.state.n_records >= 20:
            assert view(observer.refresh()) == view(fresh(tmp_path))
        # The client that acted read the tail under the lock: it is up to date, unread.
        # The others fall behind, and read what they missed at their next step.
        # (Every third step: a state that went wrong stays wrong.)
        if acted and steps % 3 == 0:
            assert view(client.state) == view(fresh(tmp_path)), f"step {steps}"
        if steps % 60 == 0:
            expected = view(fresh(tmp_path))
            assert all(view(each.refresh()) == expected for each in clients), f"step {steps}"
    behind = fresh(tmp_path).n_records - observer.state.n_records
    assert behind > 1_000  # its last read is one bulk replay (rungs sorted once, at the end)
    assert view(observer.refresh()) == view(fresh(tmp_path))
    decided = {"fifo": "continue", "asha_promotion": "pause"}.get(scheduler, "stop")
    assert {"claim", "resume", "lost", "stale", "lease", "session", decided} <= seen_ops
