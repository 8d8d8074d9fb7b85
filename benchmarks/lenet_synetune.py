"""Syne Tune's side of ``lenet.py``: its ``Tuner`` + ``LocalBackend`` on the same LeNet
trial (``synetune_trial.py``), in a process of its own."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from synetune_tuner import run_tuner, tune

HERE = Path(__file__).resolve().parent
LENET = HERE / "lenet.py"  # the tuner runs as its --role synetune


def run_synetune(args: argparse.Namespace, scheduler: str, seed: int, run_dir: Path) -> dict:
    return run_tuner(LENET, ["--scheduler", scheduler, "--seed", str(seed), "--budget",
                             str(args.budget), "--limit-batches", str(args.limit_batches),
                             "--epochs", str(args.epochs)], run_dir)  # fmt: skip


def synetune_tuner(args: argparse.Namespace) -> None:
    from syne_tune.config_space import loguniform, randint
    from syne_tune.optimizer.baselines import ASHA, RandomSearch

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
    tune(scheduler, args.budget, f"lenet-{args.scheduler}-{args.seed}", args.out)
