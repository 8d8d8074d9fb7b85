"""Optuna's runs of the overhead benchmark: two long-lived ``study.optimize`` processes
sharing a ``JournalStorage`` (``overhead.py`` documents the variants)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from measure import HERE, busy_seconds, children_cpu, wait_all

OVERHEAD = HERE / "overhead.py"  # the worker processes run its --role entry points
Run = dict[str, Any]


def optuna_worker(args: argparse.Namespace) -> None:
    """A long-lived Optuna worker (``study.optimize`` with a timeout), as in
    ../shared/peers/optuna_overhead.py; variant b fits SleepyModule with the pruning
    callback of optuna-integration."""
    if args.lightning:
        import lightning  # noqa: F401
        import torch  # noqa: F401
    import optuna
    from optuna.pruners import NopPruner, SuccessiveHalvingPruner
    from optuna.samplers import RandomSampler
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from workload import metric

    asha = args.scheduler == "asha"
    pruner = SuccessiveHalvingPruner(min_resource=1, reduction_factor=2) if asha else NopPruner()
    study = optuna.load_study(
        study_name="bench",
        storage=JournalStorage(JournalFileBackend(args.study)),
        pruner=pruner,
        sampler=RandomSampler(seed=1000 * args.seed + args.worker),
    )
    trials: dict[int, dict[str, Any]] = {}

    def plain(trial: optuna.Trial) -> float:
        start = time.time()
        x = trial.suggest_float("x", 0.0, 1.0)
        reports = trials.setdefault(trial.number, {"start": start, "reports": []})["reports"]
        value = 0.0
        for epoch in range(1, args.epochs + 1):
            time.sleep(args.epoch_sleep)
            value = metric(x, epoch)
            emitted = time.time()
            trial.report(value, epoch)
            prune = asha and trial.should_prune()
            reports.append([emitted, time.time()])
            if prune:
                trials[trial.number]["end"] = time.time()
                raise optuna.TrialPruned()
        trials[trial.number]["end"] = time.time()
        return value

    def fit(trial: optuna.Trial) -> float:
        from optuna_integration import PyTorchLightningPruningCallback
        from sleepy import SleepyData, SleepyModule, trainer

        Seen = _seen_callback()
        record = trials.setdefault(trial.number, {"start": time.time(), "reports": []})
        seen: list[float] = []  # when each epoch's decision was known

        class Pruning(PyTorchLightningPruningCallback):
            def on_validation_end(self, trainer: Any, module: Any) -> None:
                try:
                    super().on_validation_end(trainer, module)
                finally:
                    if not trainer.sanity_checking:
                        seen.append(time.time())

        module = SleepyModule(trial.suggest_float("x", 0.0, 1.0), args.epoch_sleep)
        callbacks = [Pruning(trial, monitor="validation_error") if asha else Seen(seen)]
        try:
            trainer(args.epochs, callbacks, full_dir(args, trial.number)).fit(module, SleepyData())
        finally:
            record["end"] = time.time()
            record["fit_start"] = module.stamps["fit_start"]
            record["reports"] = [
                [e, s] for e, s in zip(module.stamps["val_end"], seen, strict=False)
            ]
        return float(module.trainer.callback_metrics["validation_error"])

    ready = time.time()
    study.optimize(fit if args.lightning else plain, timeout=args.wallclock)
    out = {"ready": ready, "exit": time.time(), "trials": trials}
    Path(args.out).write_text(json.dumps(out))


def _seen_callback() -> type:
    import lightning as L

    class Seen(L.Callback):
        """Under random search Optuna has no pruning callback: stamp the epoch's end."""

        def __init__(self, seen: list[float]) -> None:
            self.seen = seen

        def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
            if not trainer.sanity_checking:
                self.seen.append(time.time())

    return Seen


def full_dir(args: argparse.Namespace, number: int) -> Path | None:
    """``optuna_full``: each trial's directory for what lit_hpo's trials also write."""
    return Path(args.out).parent / f"trial_{number}" if args.full else None


def optuna_run(args: argparse.Namespace, scheduler: str, run_dir: Path) -> Run:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState

    path = str(run_dir / "optuna.log")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cpu0, busy0, launch = children_cpu(), busy_seconds(), time.time()
    optuna.create_study(
        study_name="bench", direction="minimize", storage=JournalStorage(JournalFileBackend(path))
    )
    outs = [run_dir / f"worker_{w}.json" for w in range(args.n_workers)]
    with open(run_dir / "workers.log", "w") as log:
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(OVERHEAD),
                    "--role",
                    "optuna-worker",
                    "--worker",
                    str(w),
                    "--study",
                    path,
                    "--out",
                    str(outs[w]),
                    "--scheduler",
                    scheduler,
                    "--epochs",
                    str(args.epochs),
                    "--epoch-sleep",
                    str(args.epoch_sleep),
                    "--wallclock",
                    str(args.wallclock),
                    "--lightning",
                    str(int(args.lightning)),
                    "--full",
                    str(args.full),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            for w in range(args.n_workers)
        ]
        wait_all(procs)
    exited, cpu, busy = time.time(), children_cpu() - cpu0, busy_seconds() - busy0
    workers = [json.loads(o.read_text()) for o in outs]
    stored = {
        t.number: t
        for t in optuna.load_study(
            study_name="bench", storage=JournalStorage(JournalFileBackend(path))
        ).get_trials(deepcopy=False)
    }
    trials = []
    for w in workers:
        for number, t in w["trials"].items():
            s = stored[int(number)]
            trials.append(
                {
                    "sched": s.datetime_start.timestamp(),
                    "done": s.datetime_complete.timestamp() if s.datetime_complete else None,
                    "start": t.get("fit_start", t["start"]),
                    "end": t.get("end"),
                    "reports": t["reports"],
                    "finished": s.state in (TrialState.COMPLETE, TrialState.PRUNED),
                    "completed": s.state == TrialState.COMPLETE,
                }
            )
    return {
        "launch": launch,
        "exited": exited,
        "window": [min(w["ready"] for w in workers), max(w["exit"] for w in workers)],
        "trials": trials,
        "coordinator_cpu": 0.0,
        "cpu": cpu,
        "busy": busy,
        "version": optuna.__version__,
    }
