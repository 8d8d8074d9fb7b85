"""Scheduling overhead with trials that only sleep, next to Optuna and Syne Tune.

    python benchmarks/overhead.py [--variants a b] [--systems ours optuna synetune ...]
                                  [--schedulers random asha] [--repeats 1]

Each trial samples x ~ uniform(0, 1), sleeps ``--epoch-sleep`` per epoch for ``--epochs``
epochs and reports ``metric(x, epoch)`` (``benchmarks/workload.py``) after each; 2 workers,
``--wallclock`` seconds; random search and ASHA (grace period 1, reduction factor 2, for
every system). Definitions follow ``../shared/peers/{optuna,synetune}_overhead.py``.

Variant (a), the scheduler path — a plain function reporting through:
  ours      two long-lived worker processes on ``StudyClient`` (claim, report, end):
            the layer every real trial uses;
  optuna    two long-lived processes sharing a ``JournalStorage`` (``trial.report`` +
            ``should_prune``; ``study.optimize(timeout=...)``);
  synetune  ``Tuner`` + ``LocalBackend`` (a process per trial), ``sleep_time`` 5.0
            (its default) and 0.1.
Variant (b), the Lightning path — ``SleepyModule`` under a Trainer, stopped by:
  ours      ``HPOCallback``, through the product itself: ``python train.py -m`` with
            ``--config-dir benchmarks/conf model=sleepy data=sleepy hpo=overhead``
            (Hydra composition per trial, TensorBoard logger, a checkpoint per epoch);
  optuna    optuna-integration's ``PyTorchLightningPruningCallback`` in two long-lived
            processes;
  synetune  a fresh process per trial importing torch + Lightning (as Syne Tune runs
            every real trial), reporting at each validation end;
  hydra_optuna  hydra-optuna-sweeper on the same ``train.py -m`` (TPE, 2 jobs at a time
            through Hydra's joblib launcher; random search only, it cannot prune), in
            its own environment (``overhead_hydra_optuna.py``).

Before the first run one process imports every system's packages (a warm page cache for
all); repeats go round-robin over the rows.
Per system and scheduler (medians over trials; over repeats the median run is shown):
  overhead    per finished trial: (completion seen − scheduled) − epochs run × sleep,
              split into start (scheduled → trial code runs; (b): → fit starts),
              imports (Syne Tune's trial process), loop (non-sleep time inside the
              trial) and exit (trial code done → completion seen);
  utilization reports × sleep / (workers × run window); ``from launch``: over the whole
              command, start-up included;
  trials/min  finished (completed + stopped by ASHA) and completed, per minute of the
              run window; the ideal is workers × 60 / (epochs × sleep);
  first report  from the command's start;  report lag  value emitted → decision known;
  coordinator CPU share  CPU of the controlling process / run window (0 when there is
              none);  CPU per trial  all processes of the run / finished trials.
Writes ``benchmarks/results/overhead.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import startup_hydra_optuna as hydra_optuna  # noqa: E402
from measure import RESULTS, ROOT, stamp, versions, warm_up, write_results  # noqa: E402
from overhead_hydra_optuna import hydra_optuna_run  # noqa: E402
from overhead_optuna import optuna_run, optuna_worker  # noqa: E402
from overhead_ours import ours_a, ours_a_worker, ours_b  # noqa: E402
from overhead_report import analyse, markdown  # noqa: E402
from overhead_synetune import synetune_run, synetune_tuner  # noqa: E402

Run = dict[str, Any]


def plan(args: argparse.Namespace) -> list[tuple[str, str, str, float | None]]:
    """(variant, system, scheduler, sleep_time) for every run, in the order they run."""
    runs = []
    for variant in args.variants:
        for scheduler in args.schedulers:
            for system in args.systems:
                if system == "hydra_optuna" and (variant, scheduler) != ("b", "random"):
                    continue  # a Hydra sweeper (b) without pruning: random search only
                if system == "synetune":
                    runs += [(variant, system, scheduler, st) for st in args.sleep_times]
                else:
                    runs.append((variant, system, scheduler, None))
    return runs


RUNNERS: dict[tuple[str, str], Callable[[argparse.Namespace, str, Path], Run]] = {
    ("a", "ours"): ours_a,
    ("b", "ours"): ours_b,
    ("a", "optuna"): optuna_run,
    ("b", "optuna"): optuna_run,
    ("b", "optuna_full"): optuna_run,
    ("a", "synetune"): synetune_run,
    ("b", "synetune"): synetune_run,
    ("b", "hydra_optuna"): hydra_optuna_run,
}


# What each system's processes import (measure.warm_up imports them all before the first
# run).
IMPORTS = {
    "ours": "lightning, hydra, tensorboard, lit_hpo.hydra_sweep, lit_hpo.callback",
    "optuna": "lightning, optuna, optuna_integration",
    "optuna_full": "lightning, optuna, optuna_integration, tensorboard",
    "synetune": "lightning, syne_tune",
}


def label(system: str, sleep_time: float | None) -> str:
    names = {"ours": "lit_hpo", "optuna": "Optuna", "synetune": "Syne Tune",
             "optuna_full": "Optuna + TensorBoard + checkpoint per epoch",
             "hydra_optuna": "hydra-optuna-sweeper (TPE, joblib, 2 jobs)"}  # fmt: skip
    return names[system] + (f" (sleep_time {sleep_time:g})" if sleep_time is not None else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", choices=["a", "b"], default=["a", "b"])
    parser.add_argument(
        "--systems",
        nargs="+",
        choices=["ours", "optuna", "optuna_full", "synetune", "hydra_optuna"],
        default=["ours", "optuna", "synetune"],
    )
    parser.add_argument(
        "--schedulers", nargs="+", choices=["random", "asha"], default=["random", "asha"]
    )
    parser.add_argument(
        "--sleep-times",
        type=float,
        nargs="+",
        default=[5.0, 0.1],
        help="Syne Tune's Tuner(sleep_time=...) values (5.0 is its default)",
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--epoch-sleep", type=float, default=0.5)
    parser.add_argument("--wallclock", type=float, default=75.0)
    parser.add_argument("--n-workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS, help="where overhead.{json,md} go")
    parser.add_argument("--workdir", type=Path, default=ROOT / "outputs" / "bench_overhead")
    # internal: the processes of one run
    parser.add_argument("--role", choices=["ours-a-worker", "optuna-worker", "synetune"])
    parser.add_argument("--worker", type=int, default=0)
    parser.add_argument("--study")
    parser.add_argument("--scheduler", default="random")
    parser.add_argument("--lightning", type=int, default=0)
    parser.add_argument("--full", type=int, default=0, help="optuna_full: our trial's features")
    parser.add_argument("--sleep-time", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    if args.role == "ours-a-worker":
        return ours_a_worker(args)
    if args.role == "optuna-worker":
        return optuna_worker(args)
    if args.role == "synetune":
        return synetune_tuner(args)

    args.workdir.mkdir(parents=True, exist_ok=True)
    warm_up(IMPORTS, [s for s in args.systems if s != "hydra_optuna"])
    if "hydra_optuna" in args.systems:  # its own environment
        hydra_optuna.warm_up()
    runs: dict[tuple[str, str, str, float | None], list[dict[str, Any]]] = {}
    for repeat in range(args.repeats):  # round-robin: a drift in the machine hits every row
        for variant, system, scheduler, sleep_time in plan(args):
            run_dir = Path(
                tempfile.mkdtemp(prefix=f"{variant}_{system}_{scheduler}_", dir=args.workdir)
            )
            run_args = argparse.Namespace(
                **{
                    **vars(args),
                    "lightning": variant == "b",
                    "full": int(system == "optuna_full"),
                    "sleep_time": sleep_time,
                    "seed": repeat,
                }
            )
            figures = analyse(RUNNERS[(variant, system)](run_args, scheduler, run_dir), args)
            runs.setdefault((variant, system, scheduler, sleep_time), []).append(figures)
            print(
                f"# {variant} {label(system, sleep_time)} {scheduler} run {repeat + 1}: "
                + ", ".join(f"{k}={v:.3g}" for k, v in figures.items() if v is not None),
                flush=True,
            )
    rows = []
    for (variant, system, scheduler, sleep_time), row_runs in runs.items():
        row_runs.sort(key=lambda f: f["utilization"])
        rows.append(
            {
                "variant": variant,
                "system": system,
                "label": label(system, sleep_time),
                "scheduler": scheduler,
                "sleep_time": sleep_time,
                "median_run": row_runs[len(row_runs) // 2],
                "runs": row_runs,
            }
        )
    results = stamp(
        versions={
            **versions("optuna", "optuna-integration", "syne-tune"),
            **(hydra_optuna.versions() if "hydra_optuna" in args.systems else {}),
        },
        settings={
            k: args.__dict__[k]
            for k in ("epochs", "epoch_sleep", "wallclock", "n_workers", "repeats")
        },
        ideal_per_min=args.n_workers * 60 / (args.epochs * args.epoch_sleep),
        rows=rows,
    )
    write_results(args.out, "overhead", results, markdown(results))


if __name__ == "__main__":
    main()
