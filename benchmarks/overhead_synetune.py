"""Syne Tune's runs of the overhead benchmark: ``Tuner`` + ``LocalBackend``, a process
per trial (``overhead.py`` documents the variants)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from measure import HERE, busy_seconds, children_cpu, self_cpu

OVERHEAD = HERE / "overhead.py"  # the tuner runs in its own process (--role synetune)
Run = dict[str, Any]


def synetune_run(args: argparse.Namespace, scheduler: str, run_dir: Path) -> Run:
    """Runs in its own process (``--role synetune``): Syne Tune's Tuner is the coordinator."""
    out = run_dir / "synetune.json"
    cpu0, busy0, launch = children_cpu(), busy_seconds(), time.time()
    env = {
        **os.environ,
        "SYNETUNE_FOLDER": str(run_dir / "synetune"),
        "BENCH_STAMPS": str(run_dir / "stamps"),
    }
    (run_dir / "stamps").mkdir()
    with open(run_dir / "tuner.log", "w") as log:
        subprocess.run(
            [
                sys.executable,
                str(OVERHEAD),
                "--role",
                "synetune",
                "--scheduler",
                scheduler,
                "--out",
                str(out),
                "--epochs",
                str(args.epochs),
                "--epoch-sleep",
                str(args.epoch_sleep),
                "--wallclock",
                str(args.wallclock),
                "--sleep-time",
                str(args.sleep_time),
                "--lightning",
                str(int(args.lightning)),
                "--n-workers",
                str(args.n_workers),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )
    exited, cpu, busy = time.time(), children_cpu() - cpu0, busy_seconds() - busy0
    ev = json.loads(out.read_text())
    trials = []
    for tid, sched in ev["sched"].items():
        stamps_path = run_dir / "stamps" / f"{ev['pid'][tid]}.json"
        s = json.loads(stamps_path.read_text()) if stamps_path.exists() else {}
        results = ev["results"].get(tid, [])
        stop = next((seen for seen, _, decision in results if decision == "STOP"), None)
        done = ev["done"].get(tid, stop)
        trials.append(
            {
                "sched": sched,
                "done": done,
                "start": s.get("start"),
                "imported": s.get("imported"),
                "end": s.get("end"),
                "reports": [[emitted, seen] for seen, emitted, _ in results],
                "finished": done is not None,
                "completed": tid in ev["done"],
            }
        )
    return {
        "launch": launch,
        "exited": exited,
        "window": [ev["start"], ev["end"]],
        "trials": trials,
        "coordinator_cpu": ev["tuner_cpu"],
        "cpu": cpu,
        "busy": busy,
        "version": ev["version"],
    }


def synetune_tuner(args: argparse.Namespace) -> None:
    import syne_tune
    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend import LocalBackend
    from syne_tune.config_space import uniform
    from syne_tune.optimizer.baselines import ASHA, RandomSearch
    from syne_tune.tuner_callback import TunerCallback

    ev: dict[str, Any] = {"sched": {}, "pid": {}, "results": {}, "done": {}}

    class Timing(TunerCallback):
        def on_tuning_start(self, tuner: Any) -> None:
            ev["start"] = time.time()
            self.backend = tuner.trial_backend

        def on_tuning_end(self) -> None:
            ev["end"] = time.time()

        def on_start_trial(self, trial: Any) -> None:
            ev["sched"][trial.trial_id] = time.time()
            ev["pid"][trial.trial_id] = self.backend.trial_subprocess[trial.trial_id].pid

        def on_trial_result(self, trial: Any, status: str, result: dict, decision: str) -> None:
            ev["results"].setdefault(trial.trial_id, []).append(
                (time.time(), result["st_worker_timestamp"], str(decision))
            )

        def on_trial_complete(self, trial: Any, result: dict) -> None:
            ev["done"][trial.trial_id] = time.time()

    space = {
        "x": uniform(0.0, 1.0),
        "epochs": args.epochs,
        "epoch_sleep": args.epoch_sleep,
        "lightning": int(args.lightning),
    }
    if args.scheduler == "asha":
        scheduler: Any = ASHA(
            space,
            metric="validation_error",
            time_attr="epoch",
            max_t=args.epochs,
            grace_period=1,
            reduction_factor=2,
            do_minimize=True,
            random_seed=0,
        )
    else:
        scheduler = RandomSearch(
            space, metrics=["validation_error"], do_minimize=True, random_seed=0
        )
    tuner = Tuner(
        trial_backend=LocalBackend(entry_point=str(HERE / "overhead_trial.py")),
        scheduler=scheduler,
        stop_criterion=StoppingCriterion(max_wallclock_time=args.wallclock),
        n_workers=args.n_workers,
        sleep_time=args.sleep_time,
        callbacks=[Timing()],
        tuner_name=f"bench-{args.scheduler}",
    )
    cpu0 = self_cpu()
    tuner.run()
    ev["tuner_cpu"] = self_cpu() - cpu0
    ev["version"] = syne_tune.__version__
    ev = {k: {str(a): b for a, b in v.items()} if isinstance(v, dict) else v for k, v in ev.items()}
    Path(args.out).write_text(json.dumps(ev))
