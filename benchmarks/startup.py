"""Where the time before the first report goes: ``python train.py -m`` next to an Optuna
worker, phase by phase, in the same run.

    python benchmarks/startup.py [--repeats 5] [--systems ours optuna hydra_optuna]

Each starts a study of sleeping trials (``benchmarks/sleepy.py``: one epoch of
``--epoch-sleep`` s, 2 workers) and is timed from the command's start:

  ours    ``train.py -m --config-dir benchmarks/conf model=sleepy data=sleepy
          hpo=overhead`` run under a thin wrapper that stamps its imports and the sweeper's
          steps; the header, claim and report times come from the journal, the fit's start
          from the module's stamps;
  Optuna  a worker as ``benchmarks/overhead.py``'s: Lightning, then ``optuna`` and
          ``optuna-integration`` imported, the study created on a ``JournalStorage``,
          one trial fitted with ``PyTorchLightningPruningCallback``;
  hydra_optuna  the same ``train.py -m`` with hydra-optuna-sweeper (TPE, 2 jobs through
          Hydra's joblib launcher), in its own environment
          (``startup_hydra_optuna.py``); its first report is the first result told
          to Optuna (it has no intermediate reports).

Before the first run one process imports every system's packages (a warm page cache);
repeats alternate between the systems. Medians over repeats. Writes
``benchmarks/results/startup.{json,md}``.
"""

from __future__ import annotations

import argparse
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

import startup_hydra_optuna as hydra_optuna  # noqa: E402
from measure import (  # noqa: E402
    LAUNCH,
    PREFIX,
    RESULTS,
    ROOT,
    fmt,
    mark,
    median,
    run_stamped,
    stamp,
    stamps,
    versions,
    warm_up,
    write_results,
)

OURS = ["lightning imported", "Hydra imported", "lit_hpo imported", "sweeper runs",
        "trial 0 composed and checked", "header", "first claim", "fit starts",
        "first epoch validated", "first report"]  # fmt: skip
OPTUNA = ["lightning imported", "optuna imported", "study created", "fit starts",
          "first epoch validated", "first report"]  # fmt: skip
STEPS = list(dict.fromkeys(OURS + OPTUNA + hydra_optuna.STEPS))  # every system's, in order


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


def run_ours(work: Path, epoch_sleep: float) -> dict[str, float]:
    from lit_hpo.journal import Journal

    study, marks = work / "study", work / "stamps"
    command = [sys.executable, str(Path(__file__)), "--role", "ours", "--",
               str(ROOT / "train.py"), "-m", "--config-dir", str(HERE / "conf"),
               "model=sleepy", "data=sleepy", "hpo=overhead", f"hydra.sweep.dir={study}",
               "trainer.max_epochs=1", f"model.epoch_sleep={epoch_sleep}",
               "hpo.max_trials=2", "hpo.max_wallclock_time=null"]  # fmt: skip
    found, launch = run_stamped(command, marks, "train.py -m")
    records = Journal(study / "journal.jsonl").read(0)[0]
    for what, op in (("header", "study"), ("first claim", "claim"), ("first report", "report")):
        found[what] = min(r["time"] for r in records if r["op"] == op) - launch
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


RUNNERS = {"ours": run_ours, "optuna": run_optuna, "hydra_optuna": hydra_optuna.run}


def markdown(results: dict[str, Any]) -> str:
    ours, optuna, peer = (results.get(s, {}) for s in ("ours", "optuna", "hydra_optuna"))
    lines = [
        f"Start-up to the first report — {results['machine']}, {results['date']}; "
        + ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
        "",
        f"Seconds from the command's start, median of {results['repeats']} runs each "
        f"(alternating); one epoch of {results['epoch_sleep']} s of sleep.",
        "",
        "| step | lit_hpo (`train.py -m`) | Optuna worker | hydra-optuna-sweeper (`train.py -m`) |",
        "|---|---:|---:|---:|",
    ]
    for what in STEPS:
        lines.append(f"| {what} | {fmt(ours.get(what))} | {fmt(optuna.get(what))} | "
                     f"{fmt(peer.get(what))} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--systems", nargs="+", choices=list(RUNNERS), default=list(RUNNERS))
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
             "optuna": "lightning, optuna, optuna_integration"},
            [s for s in args.systems if s != "hydra_optuna"])  # fmt: skip
    if "hydra_optuna" in args.systems:
        hydra_optuna.warm_up()
    runs: dict[str, list[dict[str, float]]] = {system: [] for system in args.systems}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for system in args.systems:
                run = RUNNERS[system]
                work = Path(scratch) / f"{system}_{repeat}"
                work.mkdir()
                runs[system].append(run(work, args.epoch_sleep))
                print(f"# {system} run {repeat + 1}: {runs[system][-1]}", flush=True)
    medians = {
        system: {what: median(r.get(what) for r in found) for what in STEPS}
        for system, found in runs.items()
    }
    results = stamp(versions={**versions("optuna", "optuna-integration", "hydra-core"),
                              **hydra_optuna.versions()},
                    repeats=args.repeats, epoch_sleep=args.epoch_sleep, runs=runs,
                    **{system: {k: v for k, v in m.items() if v is not None}
                       for system, m in medians.items()})  # fmt: skip
    write_results(args.out, "startup", results, markdown(results))


if __name__ == "__main__":
    main()
