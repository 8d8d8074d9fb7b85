"""Where the time before the first report goes: ``python train.py -m`` next to an Optuna
worker, phase by phase, in the same run.

    python benchmarks/startup.py [--repeats 5] [--systems ours optuna]

Both start a study of sleeping trials (``benchmarks/sleepy.py``: one epoch of
``--epoch-sleep`` s, 2 workers) and are timed from the command's start:

  ours    ``train.py -m --config-dir benchmarks/conf model=sleepy data=sleepy
          hpo=overhead`` run under a thin wrapper that stamps its imports and the sweeper's
          steps; the header, claim and report times come from the journal, the fit's start
          from the module's stamps;
  Optuna  a worker as ``benchmarks/overhead.py``'s: Lightning, then ``optuna`` and
          ``optuna-integration`` imported, the study created on a ``JournalStorage``,
          one trial fitted with ``PyTorchLightningPruningCallback``.

Before the first run one process imports both systems' packages (a warm page cache);
repeats alternate between the systems. Medians over repeats. Writes
``benchmarks/results/startup.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from measure import (  # noqa: E402
    RESULTS,
    ROOT,
    fmt,
    median,
    stamp,
    versions,
    warm_up,
    write_results,
)

LAUNCH = "STARTUP_LAUNCH"  # the command's start (epoch seconds), set by the harness
PREFIX = "@@startup "
OURS = ["lightning imported", "Hydra imported", "lit_hpo imported", "sweeper runs",
        "trial 0 composed and checked", "header", "first claim", "fit starts",
        "first epoch validated", "first report"]  # fmt: skip
OPTUNA = ["lightning imported", "optuna imported", "study created", "fit starts",
          "first epoch validated", "first report"]  # fmt: skip


def mark(what: str) -> None:
    """Print when ``what`` happened, in seconds since the command's start."""
    print(f"{PREFIX}{time.time() - float(os.environ[LAUNCH]):.4f} {what}", flush=True)


def ours_child(argv: list[str]) -> None:
    """Run ``train.py -m`` in this process, stamping the steps before the first worker."""
    mark("python up")
    import lightning  # noqa: F401

    mark("lightning imported")
    import hydra  # noqa: F401

    mark("Hydra imported")
    import lit_hpo.hydra_sweep as sweep

    mark("lit_hpo imported")
    run_sweep, composer = sweep.run_sweep, sweep.trial_composer

    def stamped_run_sweep(*args: Any, **kwargs: Any) -> Any:
        mark("sweeper runs")  # Hydra has composed the run's config
        return run_sweep(*args, **kwargs)

    def stamped_composer(*args: Any, **kwargs: Any) -> Any:
        try:
            return composer(*args, **kwargs)
        finally:
            mark("trial 0 composed and checked")

    sweep.run_sweep, sweep.trial_composer = stamped_run_sweep, stamped_composer
    sys.argv = argv
    runpy.run_path(argv[0], run_name="__main__")


def optuna_child(study_path: str, epoch_sleep: float) -> None:
    """An Optuna worker's start: imports, the study, one trial fitted and pruned-checked."""
    import lightning  # noqa: F401

    mark("lightning imported")
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna_integration import PyTorchLightningPruningCallback

    mark("optuna imported")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=JournalStorage(JournalFileBackend(study_path)))
    mark("study created")
    from sleepy import SleepyData, SleepyModule, trainer

    class Stamped(PyTorchLightningPruningCallback):
        def on_validation_end(self, trainer: Any, module: Any) -> None:
            super().on_validation_end(trainer, module)
            if not trainer.sanity_checking and len(module.stamps["val_end"]) == 1:
                mark("first report")

    def objective(trial: optuna.Trial) -> float:
        module = SleepyModule(trial.suggest_float("x", 0.0, 1.0), epoch_sleep)
        callback = Stamped(trial, monitor="validation_error")
        trainer(1, [callback], None).fit(module, SleepyData())
        for what, when in (("fit starts", module.stamps["fit_start"]),
                           ("first epoch validated", module.stamps["val_end"][0])):  # fmt: skip
            print(f"{PREFIX}{when - float(os.environ[LAUNCH]):.4f} {what}", flush=True)
        return float(module.trainer.callback_metrics["validation_error"])

    study.optimize(objective, n_trials=1)


def stamps(output: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in output.splitlines():
        if line.startswith(PREFIX):
            when, what = line[len(PREFIX) :].split(" ", 1)
            found.setdefault(what, float(when))
    return found


def run_ours(work: Path, epoch_sleep: float) -> dict[str, float]:
    from lit_hpo.journal import Journal

    study, marks = work / "study", work / "stamps"
    command = [sys.executable, str(Path(__file__)), "--role", "ours", "--",
               str(ROOT / "train.py"), "-m", "--config-dir", str(HERE / "conf"),
               "model=sleepy", "data=sleepy", "hpo=overhead", f"hydra.sweep.dir={study}",
               "trainer.max_epochs=1", f"model.epoch_sleep={epoch_sleep}",
               "hpo.max_trials=2", "hpo.max_wallclock_time=null"]  # fmt: skip
    launch = time.time()
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, LAUNCH: repr(launch),
                          "BENCH_STAMPS": str(marks)}, capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"train.py -m exited {done.returncode}:\n{done.stdout}{done.stderr}")
    found = stamps(done.stdout)
    records = Journal(study / "journal.jsonl").read(0)[0]
    for what, op in (("header", "study"), ("first claim", "claim"), ("first report", "report")):
        found[what] = min(r["time"] for r in records if r["op"] == op) - launch
    trials = [json.loads(p.read_text()) for p in marks.glob("*.json")]
    found["fit starts"] = min(t["fit_start"] for t in trials) - launch
    found["first epoch validated"] = min(t["val_end"][0] for t in trials) - launch
    return found


def run_optuna(work: Path, epoch_sleep: float) -> dict[str, float]:
    command = [sys.executable, str(Path(__file__)), "--role", "optuna",
               "--study", str(work / "optuna.log"), "--epoch-sleep", str(epoch_sleep)]  # fmt: skip
    launch = time.time()
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, LAUNCH: repr(launch)},
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"the Optuna worker exited {done.returncode}:\n{done.stderr}")
    return stamps(done.stdout)


def markdown(results: dict[str, Any]) -> str:
    ours, optuna = results.get("ours", {}), results.get("optuna", {})
    lines = [
        f"Start-up to the first report — {results['machine']}, {results['date']}; "
        + ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
        "",
        f"Seconds from the command's start, median of {results['repeats']} runs each "
        f"(alternating); one epoch of {results['epoch_sleep']} s of sleep.",
        "",
        "| step | lit_hpo (`train.py -m`) | Optuna worker |",
        "|---|---:|---:|",
    ]
    for what in dict.fromkeys(OURS + OPTUNA):
        lines.append(f"| {what} | {fmt(ours.get(what))} | {fmt(optuna.get(what))} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--systems", nargs="+", choices=["ours", "optuna"], default=["ours", "optuna"]
    )
    parser.add_argument("--epoch-sleep", type=float, default=0.5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--role", choices=["ours", "optuna"])  # internal: a run's process
    parser.add_argument("--study")
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.role == "ours":
        return ours_child(args.rest[1:] if args.rest[:1] == ["--"] else args.rest)
    if args.role == "optuna":
        return optuna_child(args.study, args.epoch_sleep)

    warm_up({"ours": "lightning, hydra, tensorboard, lit_hpo.hydra_sweep",
             "optuna": "lightning, optuna, optuna_integration"}, args.systems)  # fmt: skip
    runs: dict[str, list[dict[str, float]]] = {system: [] for system in args.systems}
    runners = {"ours": run_ours, "optuna": run_optuna}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for system in args.systems:
                run = runners[system]
                work = Path(scratch) / f"{system}_{repeat}"
                work.mkdir()
                runs[system].append(run(work, args.epoch_sleep))
                print(f"# {system} run {repeat + 1}: {runs[system][-1]}", flush=True)
    medians = {
        system: {what: median(r.get(what) for r in found) for what in OURS + OPTUNA}
        for system, found in runs.items()
    }
    results = stamp(versions=versions("optuna", "optuna-integration", "hydra-core"),
                    repeats=args.repeats, epoch_sleep=args.epoch_sleep, runs=runs,
                    **{system: {k: v for k, v in m.items() if v is not None}
                       for system, m in medians.items()})  # fmt: skip
    write_results(args.out, "startup", results, markdown(results))


if __name__ == "__main__":
    main()
