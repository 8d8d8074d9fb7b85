"""Optuna's side of ``journal.py``: ``trial.report`` + ``should_prune`` with
``SuccessiveHalvingPruner`` on ``JournalStorage(JournalFileBackend)``."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from workload import REPORTS_PER_TRIAL as STEPS

pc = time.perf_counter


def optuna_prepopulate(path: Path, sizes: list[int], cap_s: float) -> dict[int, int]:
    """Run trials in one process; the byte offset after each size is that study."""
    import optuna
    from optuna.pruners import SuccessiveHalvingPruner
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.create_study(
        study_name="peer", storage=storage, pruner=SuccessiveHalvingPruner()
    )
    rng = random.Random(0)
    offsets: dict[int, int] = {}
    start = pc()
    done = 0
    for size in sorted(sizes):
        while done < size and pc() - start < cap_s:
            optuna_trial(study, rng)
            done += 1
        if done < size:
            break
        offsets[size] = path.stat().st_size
    return offsets


def optuna_trial(study, rng, lat: list[float] | None = None) -> None:
    trial = study.ask()
    x = trial.suggest_float("x", 0.0, 1.0)
    v = 0.0
    for step in range(STEPS):
        v = (x - 0.3) ** 2 + 1.0 / (step + 1) + rng.random() * 0.01
        t0 = pc()
        trial.report(v, step)
        trial.should_prune()
        if lat is not None:
            lat.append(pc() - t0)
    study.tell(trial, v)


def optuna_worker(path: str, n_trials: int, seed: int, barrier, out: str) -> None:
    import optuna
    from optuna.pruners import SuccessiveHalvingPruner
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = pc()
    storage = JournalStorage(JournalFileBackend(path))
    study = optuna.load_study(study_name="peer", storage=storage, pruner=SuccessiveHalvingPruner())
    study.trials  # noqa: B018 - forces the replay
    replay = pc() - start
    barrier.wait()
    lat: list[float] = []
    rng = random.Random(seed)
    for _ in range(n_trials):
        optuna_trial(study, rng, lat)
    Path(out).write_text(json.dumps({"lat": lat, "replay": replay}))
