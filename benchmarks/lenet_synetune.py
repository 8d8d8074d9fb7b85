"""Syne Tune's side of ``lenet.py``: its ``Tuner`` + ``LocalBackend`` on the same LeNet
trial (``synetune_trial.py``), in a process of its own."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LENET = HERE / "lenet.py"  # the tuner runs as its --role synetune


def run_synetune(args: argparse.Namespace, scheduler: str, seed: int, run_dir: Path) -> dict:
    out = run_dir / "synetune.json"
    env = {**os.environ, "SYNETUNE_FOLDER": str(run_dir / "synetune")}
    launch = time.time()
    with open(run_dir / "tuner.log", "w") as log:
        subprocess.run(
            [
                sys.executable,
                str(LENET),
                "--role",
                "synetune",
                "--scheduler",
                scheduler,
                "--seed",
                str(seed),
                "--budget",
                str(args.budget),
                "--out",
                str(out),
                "--limit-batches",
                str(args.limit_batches),
                "--epochs",
                str(args.epochs),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )
    results = json.loads(out.read_text())
    trace = sorted((t - launch, v) for t, v in results["reports"])
    return {"trace": trace, "trials": results["trials"], "epochs": len(trace)}


def synetune_tuner(args: argparse.Namespace) -> None:
    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend import LocalBackend
    from syne_tune.config_space import loguniform, randint
    from syne_tune.optimizer.baselines import ASHA, RandomSearch
    from syne_tune.tuner_callback import TunerCallback

    reports: list[tuple[float, float]] = []
    started: set[int] = set()

    class Record(TunerCallback):
        def on_start_trial(self, trial: Any) -> None:
            started.add(trial.trial_id)

        def on_trial_result(self, trial: Any, status: str, result: dict, decision: str) -> None:
            reports.append((time.time(), float(result["validation_error"])))

    space = {
        "learning_rate": loguniform(0.01, 1.0),
        "batch_size": randint(32, 256),
        "epochs": args.epochs,
        "limit_batches": args.limit_batches,
    }
    first = [{"learning_rate": 0.1, "batch_size": 128}]
    if args.scheduler == "asha":
        scheduler: Any = ASHA(
            space,
            metric="validation_error",
            time_attr="epoch",
            max_t=args.epochs,
            grace_period=2,
            reduction_factor=2,
            do_minimize=True,
            random_seed=args.seed,
            points_to_evaluate=first,
        )
    else:
        scheduler = RandomSearch(
            space,
            metrics=["validation_error"],
            do_minimize=True,
            random_seed=args.seed,
            points_to_evaluate=first,
        )
    Tuner(
        trial_backend=LocalBackend(entry_point=str(HERE / "synetune_trial.py")),
        scheduler=scheduler,
        stop_criterion=StoppingCriterion(max_wallclock_time=args.budget),
        n_workers=2,
        callbacks=[Record()],
        tuner_name=f"lenet-{args.scheduler}-{args.seed}",
    ).run()
    Path(args.out).write_text(json.dumps({"reports": reports, "trials": len(started)}))
