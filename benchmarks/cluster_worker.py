"""One worker of benchmarks/cluster.py: sleeping trials (no CPU) through lit_hpo's
StudyClient (file or PostgreSQL journal) or Optuna's RDBStorage, timing every step.

    python benchmarks/cluster_worker.py SYSTEM STUDY WORKER SECONDS OUT [URL]

Connects (and replays the study) first, then calls ``start()`` (benchmarks/cluster.py
waits there for every worker), then works for SECONDS. Writes ``OUT`` (JSON): the
claim/ask, report+decision and end/tell latencies (ms), the seconds slept in epochs
(busy time) and the trials run.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

EPOCHS, EPOCH_SLEEP = 5, 0.2  # a trial: up to 5 epochs of 0.2 s, as in benchmarks/overhead


def value(trial: int, epoch: int) -> float:
    """A learning curve that falls with epochs, at a trial-dependent level."""
    return (trial * 7919 % 101) / 101 + 1.0 / epoch


def ours(study: str, worker: int, seconds: float, url: str | None,
         start_now: Callable[[], None]) -> dict:  # fmt: skip
    from lit_hpo.study import StudyClient

    client = StudyClient(study, journal=url)
    client.refresh()  # a long-lived worker is connected and up to date
    start_now()
    deadline = time.time() + seconds
    timings: dict = {"claim": [], "report": [], "end": [], "busy": 0.0, "trials": 0}
    while time.time() < deadline:
        start = time.perf_counter()
        claim = client.claim(worker)
        timings["claim"].append((time.perf_counter() - start) * 1000)
        if claim is None:
            break
        trial = claim.trial.trial_id
        status = "completed"
        for epoch in range(1, EPOCHS + 1):
            time.sleep(EPOCH_SLEEP)
            timings["busy"] += EPOCH_SLEEP
            start = time.perf_counter()
            decision = client.report(trial, epoch, value(trial, epoch), claim.attempt)
            timings["report"].append((time.perf_counter() - start) * 1000)
            if decision.stop:
                status = "stopped"
                break
        start = time.perf_counter()
        client.end(trial, status, attempt=claim.attempt)
        timings["end"].append((time.perf_counter() - start) * 1000)
        timings["trials"] += 1
    return timings


def optuna_rdb(study: str, seconds: float, url: str, start_now: Callable[[], None]) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(url.replace("postgresql://", "postgresql+psycopg://"))
    loaded = optuna.load_study(study_name=study, storage=storage,
                               sampler=optuna.samplers.RandomSampler(),
                               pruner=optuna.pruners.SuccessiveHalvingPruner(
                                   min_resource=1, reduction_factor=2))  # fmt: skip
    loaded.trials  # noqa: B018 - connected and up to date, as a long-lived worker is
    start_now()
    deadline = time.time() + seconds
    timings: dict = {"claim": [], "report": [], "end": [], "busy": 0.0, "trials": 0}
    while time.time() < deadline:
        start = time.perf_counter()
        trial = loaded.ask()
        trial.suggest_float("x", 0.0, 1.0)
        timings["claim"].append((time.perf_counter() - start) * 1000)
        pruned = False
        for epoch in range(1, EPOCHS + 1):
            time.sleep(EPOCH_SLEEP)
            timings["busy"] += EPOCH_SLEEP
            start = time.perf_counter()
            trial.report(value(trial.number, epoch), epoch)
            pruned = trial.should_prune()
            timings["report"].append((time.perf_counter() - start) * 1000)
            if pruned:
                break
        start = time.perf_counter()
        state = optuna.trial.TrialState.PRUNED if pruned else optuna.trial.TrialState.COMPLETE
        loaded.tell(trial, None if pruned else value(trial.number, EPOCHS), state=state)
        timings["end"].append((time.perf_counter() - start) * 1000)
        timings["trials"] += 1
    return timings


def main(start_now: Callable[[], None] = lambda: None) -> None:
    system, study, worker, seconds, out = sys.argv[1:6]
    url = sys.argv[6] if len(sys.argv) > 6 else None
    if system == "optuna_rdb":
        assert url is not None
        result = optuna_rdb(study, float(seconds), url, start_now)
    else:
        result = ours(study, int(worker), float(seconds), url, start_now)
    with open(out, "w") as file:
        json.dump(result, file)


if __name__ == "__main__":
    main()
