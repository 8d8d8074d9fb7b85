"""Synthetic studies for the journal benchmarks: ``n`` finished trials of
``REPORTS_PER_TRIAL`` reports each, written in bulk. Records are plain dicts in the
wire format (``docs/journal.md``), not ``lit_hpo.records`` constructors, so that
``lock_hold.py --baseline`` can build the same study for an older lit_hpo; Hyperband
claims carry their bracket when the scheduler has one (``claim_fields``)."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from workload import REPORTS_PER_TRIAL


def build_study(
    path: Path,
    n_trials: int,
    *,
    scheduler: str = "asha",
    reduction_factor: int = 4,
    decide: bool = False,
    seed: int = 0,
    searcher: str | None = None,
    dims: int = 1,
) -> None:
    """Write ``path`` (a journal.jsonl). ``decide``: every report carries the scheduler's
    real decision (replayed while writing, slower); otherwise ``continue``. ``searcher``
    and ``dims``: a model-based study over ``x0 .. x<dims-1>`` (else ``x``, no searcher)."""
    from lit_hpo.journal import encode
    from lit_hpo.policy import decide as decide_report
    from lit_hpo.spec import spec_from_config
    from lit_hpo.state import StudyState

    keys = ["x"] if searcher is None else [f"x{i}" for i in range(dims)]
    settings = {
        "scheduler": scheduler, "max_epochs": REPORTS_PER_TRIAL, "grace_period": 1,
        "reduction_factor": reduction_factor, "max_trials": 10**9,
        "max_wallclock_time": None, "seed": seed,
        "space": {key: "interval(0, 1)" for key in keys}, "lease_seconds": 10**6,
    }  # fmt: skip
    if searcher is not None:
        settings.update(searcher=searcher, random_fraction=0)  # every claim asks the model
    spec = spec_from_config(settings)
    rng = random.Random(seed)
    state = StudyState()
    t = time.time()

    def put(record: dict, buffer: list[bytes]) -> None:
        if decide:
            state.apply(record)
        buffer.append(encode(record))

    with open(path, "wb") as file:
        buffer: list[bytes] = []
        put(spec.header(t), buffer)
        put(spec.session(t, 1, os.getpid()), buffer)
        for trial in range(n_trials):
            config = {key: rng.random() for key in keys}
            x = config[keys[0]]
            claim = {"op": "claim", "trial": trial, "worker": 0, "pid": 1, "config": config,
                     "time": t}  # fmt: skip
            claim.update(getattr(spec.scheduler, "claim_fields", lambda _: {})(trial))
            put(claim, buffer)
            for epoch in range(1, REPORTS_PER_TRIAL + 1):
                value = (x - 0.3) ** 2 + 1.0 / epoch + rng.random() * 0.01
                action, reason = "continue", None
                if decide:  # the verdict is recorded, not acted on (as the peers do)
                    verdict = decide_report(spec.scheduler, state, trial, epoch, value, t)
                    action, reason = str(verdict.action), verdict.reason
                report = {"op": "report", "trial": trial, "attempt": 0, "epoch": epoch,
                          "value": value, "decision": action, "reason": reason, "worker": 0,
                          "time": t}  # fmt: skip
                put(report, buffer)
            put({"op": "end", "trial": trial, "status": "completed", "time": t}, buffer)
            if len(buffer) > 50_000:
                file.write(b"".join(buffer))
                buffer.clear()
        file.write(b"".join(buffer))
        os.fsync(file.fileno())  # else the first measured append's fsync flushes it all
