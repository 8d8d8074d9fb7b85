"""``overhead.py``'s hydra-optuna-sweeper row (variant (b), random search only: the
sweeper has no pruning): the same ``train.py -m`` on the sleeping model, TPE, two jobs
at a time through Hydra's joblib launcher (``conf/search/optuna_startup.yaml``), in the
peer's own environment (``search_peers.peer_python``), under ``startup_hydra_optuna``'s
wrapper, with enough trials for the run's wall-clock (the sweeper has no time budget).

Per trial: scheduled and done are Optuna's ``datetime_start`` and ``datetime_complete``
(the wrapper writes them out of the sweeper's in-memory study); fit start and end and
each epoch's end come from the module's stamps. The sweeper learns a trial's values
only when its batch of jobs has returned, so each epoch counts as reported then (its
"report lag")."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from measure import HERE, ROOT, cpu_between, run_sampled
from startup_hydra_optuna import TRIALS

Run = dict[str, Any]


def hydra_optuna_run(args: argparse.Namespace, scheduler: str, run_dir: Path) -> Run:
    from search_peers import peer_python

    if scheduler != "random":
        raise SystemExit("hydra-optuna-sweeper has no pruning: run it with random search")
    stamps, out = run_dir / "stamps", run_dir / "trials.json"
    n_trials = round(args.n_workers * args.wallclock / (args.epochs * args.epoch_sleep))
    command = [str(peer_python()), str(HERE / "startup_hydra_optuna.py"),
               str(ROOT / "train.py"), "-m", "--config-dir", str(HERE / "conf"),
               "model=sleepy", "data=sleepy", "+search=optuna_startup",
               f"hydra.sweep.dir={run_dir / 'study'}", f"trainer.max_epochs={args.epochs}",
               f"model.epoch_sleep={args.epoch_sleep}", f"hydra.sweeper.n_trials={n_trials}",
               f"hydra.sweeper.n_jobs={args.n_workers}",
               f"hydra.launcher.n_jobs={args.n_workers}"]  # fmt: skip
    env = {**os.environ, "BENCH_STAMPS": str(stamps), TRIALS: str(out)}
    ran = run_sampled(command, env, run_dir / "train.log", "hydra-optuna-sweeper")
    trials = [_trial(stored, stamps) for stored in json.loads(out.read_text())]
    window = [min(t["sched"] for t in trials), max(t["done"] for t in trials)]
    return {"launch": ran["launch"], "exited": ran["exited"], "window": window,
            "trials": trials, "coordinator_cpu": cpu_between(ran["samples"], *window),
            "cpu": ran["cpu"], "busy": ran["busy"]}  # fmt: skip


def _trial(stored: dict[str, Any], stamps: Path) -> dict[str, Any]:
    done = stored["complete"]
    path = stamps / f"x_{stored['x']!r}.json"  # sleepy.py names them by x outside lit_hpo
    s = json.loads(path.read_text()) if path.exists() else {"val_end": []}
    return {"sched": stored["start"], "done": done, "start": s.get("fit_start"),
            "end": s.get("fit_end"), "reports": [(v, done) for v in s["val_end"]],
            "finished": stored["state"] == "COMPLETE",
            "completed": stored["state"] == "COMPLETE"}  # fmt: skip
