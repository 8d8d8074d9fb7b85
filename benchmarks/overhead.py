"""Scheduling overhead with trials that only sleep, next to Optuna and Syne Tune.

    python benchmarks/overhead.py [--variants a b] [--systems ours optuna synetune]
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
            every real trial), reporting at each validation end.

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
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(ROOT))

Run = dict[str, Any]


# ------------------------------------------------------------------ measurement helpers


def busy_seconds() -> float:
    """Busy CPU seconds of the whole machine so far (/proc/stat, all but idle + iowait)."""
    with open("/proc/stat") as file:
        values = [int(v) for v in file.readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float | None:
    """CPU seconds of a live process (utime + stime from /proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_between(samples: list[tuple[float, float]], start: float, end: float) -> float:
    """CPU seconds a sampled process used between two times (the samples nearest them)."""

    def at(t: float) -> float:
        before = [cpu for when, cpu in samples if when <= t]
        return before[-1] if before else samples[0][1]

    return at(end) - at(start) if samples else 0.0


def journal_records(study_dir: Path) -> list[dict[str, Any]]:
    from lit_hpo.journal import Journal

    return Journal(study_dir / "journal.jsonl").read(0)[0]


def trials_from_journal(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per trial from our journal: scheduled (claim), reports seen, completion seen (end)."""
    trials: dict[int, dict[str, Any]] = {}
    for r in records:
        if r["op"] == "claim":
            trials[r["trial"]] = {"sched": r["time"], "worker": r["worker"], "seen": []}
        elif r["op"] == "report":
            trials[r["trial"]]["seen"].append(r["time"])
        elif r["op"] == "end":
            t = trials[r["trial"]]
            t["done"], t["reason"] = r["time"], r.get("reason")
            t["status"] = r["status"]
    return trials


def finished(status: str, reason: str | None) -> bool:
    """Completed, or stopped by the scheduler (not by the budget)."""
    return status == "completed" or (status == "stopped" and reason != "budget")


# ------------------------------------------------------------------ ours


def ours_a_worker(args: argparse.Namespace) -> None:
    """A long-lived worker: claim, run the plain function through StudyClient, end."""
    from workload import metric

    from lit_hpo.study import StudyClient

    client = StudyClient(args.study)
    out: dict[str, Any] = {"ready": time.time(), "trials": {}}
    while (claim := client.claim(args.worker)) is not None:
        start = time.time()
        x = claim.config["x"]
        reports, status, reason = [], "completed", None
        for epoch in range(1, args.epochs + 1):
            time.sleep(args.epoch_sleep)
            emitted = time.time()
            decision = client.report(claim.trial_id, epoch, metric(x, epoch), claim.attempt)
            reports.append([emitted, time.time()])
            if decision.stop:
                status, reason = "stopped", decision.reason
                break
        end = time.time()
        client.end(claim.trial_id, status, reason)
        out["trials"][claim.trial_id] = {"start": start, "end": end, "reports": reports}
    out["exit"] = time.time()
    Path(args.out).write_text(json.dumps(out))


def ours_a(args: argparse.Namespace, scheduler: str, run_dir: Path) -> Run:
    from lit_hpo.spec import spec_from_config
    from lit_hpo.study import StudyClient

    settings: dict[str, Any] = {
        "scheduler": "asha" if scheduler == "asha" else "fifo",
        "max_epochs": args.epochs,
        "max_wallclock_time": args.wallclock,
        "max_trials": None,
        "seed": 0,
        "space": {"x": "interval(0, 1)"},
    }
    if scheduler == "asha":
        settings |= {"grace_period": 1, "reduction_factor": 2}
    study = run_dir / "study"
    cpu0, busy0, launch = children_cpu(), busy_seconds(), time.time()
    StudyClient(study).open(spec_from_config(settings), args.n_workers)
    outs = [run_dir / f"worker_{w}.json" for w in range(args.n_workers)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--role",
                "ours-a-worker",
                "--worker",
                str(w),
                "--study",
                str(study),
                "--out",
                str(outs[w]),
                "--epochs",
                str(args.epochs),
                "--epoch-sleep",
                str(args.epoch_sleep),
            ]
        )
        for w in range(args.n_workers)
    ]
    _wait(procs)
    exited, cpu, busy = time.time(), children_cpu() - cpu0, busy_seconds() - busy0
    workers = [json.loads(o.read_text()) for o in outs]
    journal = trials_from_journal(journal_records(study))
    trials = []
    for w in workers:
        for tid, t in w["trials"].items():
            j = journal[int(tid)]
            trials.append(
                {
                    "sched": j["sched"],
                    "done": j["done"],
                    "start": t["start"],
                    "end": t["end"],
                    "reports": t["reports"],
                    "finished": finished(j["status"], j["reason"]),
                    "completed": j["status"] == "completed",
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
    }


def ours_b(args: argparse.Namespace, scheduler: str, run_dir: Path) -> Run:
    study, stamps = run_dir / "study", run_dir / "stamps"
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        "--config-dir",
        str(HERE / "conf"),
        "model=sleepy",
        "data=sleepy",
        "hpo=overhead",
        f"hydra.sweep.dir={study}",
        f"trainer.max_epochs={args.epochs}",
        f"model.epoch_sleep={args.epoch_sleep}",
        f"hpo.max_wallclock_time={args.wallclock}",
        f"hpo.n_workers={args.n_workers}",
    ]
    if scheduler == "asha":
        command += ["hpo.scheduler=asha", "+hpo.grace_period=1", "+hpo.reduction_factor=2"]
    env = {**os.environ, "BENCH_STAMPS": str(stamps)}
    cpu0, busy0, launch = children_cpu(), busy_seconds(), time.time()
    with open(run_dir / "train.log", "w") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        samples: list[tuple[float, float]] = []  # (time, CPU) of the -m process
        while proc.poll() is None:
            cpu_now = process_cpu(proc.pid)
            if cpu_now is not None:
                samples.append((time.time(), cpu_now))
            time.sleep(0.2)
    exited, cpu, busy = time.time(), children_cpu() - cpu0, busy_seconds() - busy0
    if proc.returncode:
        raise SystemExit(f"train.py -m exited {proc.returncode}; see {run_dir / 'train.log'}")
    records = journal_records(study)
    journal = trials_from_journal(records)
    trials = []
    for tid, j in journal.items():
        path = stamps / f"trial_{tid}.json"
        s = json.loads(path.read_text()) if path.exists() else {"val_end": []}
        trials.append(
            {
                "sched": j["sched"],
                "done": j["done"],
                "start": s.get("fit_start"),
                "end": s.get("fit_end"),
                "reports": list(zip(s["val_end"], j["seen"], strict=False)),
                "finished": finished(j["status"], j["reason"]),
                "completed": j["status"] == "completed",
            }
        )
    window = [min(t["sched"] for t in journal.values()), max(t["done"] for t in journal.values())]
    return {
        "launch": launch,
        "exited": exited,
        "window": window,
        "trials": trials,
        "coordinator_cpu": cpu_between(samples, *window),
        "cpu": cpu,
        "busy": busy,
    }


# ------------------------------------------------------------------ Optuna


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
            trainer(args.epochs, callbacks).fit(module, SleepyData())
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
                    __file__,
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
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            for w in range(args.n_workers)
        ]
        _wait(procs)
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


# ------------------------------------------------------------------ Syne Tune


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
                __file__,
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


# ------------------------------------------------------------------ analysis


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def analyse(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    sleep = args.epoch_sleep
    t0, t1 = run["window"]
    window = t1 - t0
    done = [t for t in run["trials"] if t["finished"] and t["done"] is not None]
    reports = [r for t in run["trials"] for r in t["reports"]]
    n_reports = sum(len(t["reports"]) for t in run["trials"])

    def part(t: dict[str, Any], a: str, b: str, minus_sleep: bool = False) -> float | None:
        if t.get(a) is None or t.get(b) is None:
            return None
        return t[b] - t[a] - (len(t["reports"]) * sleep if minus_sleep else 0.0)

    loops = []
    for t in done:
        begin = t.get("imported") or t.get("start")
        if begin is not None and t.get("end") is not None:
            loops.append(t["end"] - begin - len(t["reports"]) * sleep)
    return {
        "window_s": window,
        "trials_started": len(run["trials"]),
        "trials_finished": len(done),
        "trials_completed": sum(t["completed"] for t in done),
        "reports": n_reports,
        "overhead_s": median([part(t, "sched", "done", True) for t in done]),
        "start_s": median([part(t, "sched", "start") for t in done]),
        "imports_s": median([part(t, "start", "imported") for t in done]),
        "loop_s": median(loops),
        "exit_s": median([part(t, "end", "done") for t in done]),
        "utilization": n_reports * sleep / (args.n_workers * window),
        "utilization_from_launch": n_reports
        * sleep
        / (args.n_workers * (run["exited"] - run["launch"])),
        "finished_per_min": len(done) / (window / 60),
        "completed_per_min": sum(t["completed"] for t in done) / (window / 60),
        "first_report_s": min(r[1] for r in reports) - run["launch"] if reports else None,
        "report_lag_s": median([r[1] - r[0] for r in reports]),
        "report_lag_max_s": max((r[1] - r[0] for r in reports), default=None),
        "coordinator_cpu_share": run["coordinator_cpu"] / window,
        "cpu_per_trial_s": run["cpu"] / max(1, len(done)),
        "machine_busy_cores": run["busy"] / (run["exited"] - run["launch"]),
    }


# ------------------------------------------------------------------ harness


def _wait(procs: list[subprocess.Popen]) -> None:
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"worker exit codes {codes}")


def plan(args: argparse.Namespace) -> list[tuple[str, str, str, float | None]]:
    """(variant, system, scheduler, sleep_time) for every run, in the order they run."""
    runs = []
    for variant in args.variants:
        for scheduler in args.schedulers:
            for system in args.systems:
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
    ("a", "synetune"): synetune_run,
    ("b", "synetune"): synetune_run,
}


def label(system: str, sleep_time: float | None) -> str:
    names = {"ours": "lit_hpo", "optuna": "Optuna", "synetune": "Syne Tune"}
    return names[system] + (f" (sleep_time {sleep_time:g})" if sleep_time is not None else "")


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("lit_hpo", "torch", "lightning", "optuna", "optuna-integration", "syne-tune"):
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", choices=["a", "b"], default=["a", "b"])
    parser.add_argument(
        "--systems",
        nargs="+",
        choices=["ours", "optuna", "synetune"],
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
    rows = []
    for variant, system, scheduler, sleep_time in plan(args):
        runs = []
        for repeat in range(args.repeats):
            run_dir = Path(
                tempfile.mkdtemp(prefix=f"{variant}_{system}_{scheduler}_", dir=args.workdir)
            )
            run_args = argparse.Namespace(
                **{
                    **vars(args),
                    "lightning": variant == "b",
                    "sleep_time": sleep_time,
                    "seed": repeat,
                }
            )
            figures = analyse(RUNNERS[(variant, system)](run_args, scheduler, run_dir), args)
            runs.append(figures)
            print(
                f"# {variant} {label(system, sleep_time)} {scheduler} run {repeat + 1}: "
                + ", ".join(f"{k}={v:.3g}" for k, v in figures.items() if v is not None),
                flush=True,
            )
        runs.sort(key=lambda f: f["utilization"])
        rows.append(
            {
                "variant": variant,
                "system": system,
                "label": label(system, sleep_time),
                "scheduler": scheduler,
                "sleep_time": sleep_time,
                "median_run": runs[len(runs) // 2],
                "runs": runs,
            }
        )
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "date": time.strftime("%Y-%m-%d"),
        "versions": versions(),
        "settings": {
            k: args.__dict__[k]
            for k in ("epochs", "epoch_sleep", "wallclock", "n_workers", "repeats")
        },
        "ideal_per_min": args.n_workers * 60 / (args.epochs * args.epoch_sleep),
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "overhead.json").write_text(json.dumps(results, indent=1) + "\n")
    table = markdown(results)
    (args.out / "overhead.md").write_text(table + "\n")
    print(table)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def markdown(results: dict[str, Any]) -> str:
    s = results["settings"]
    lines = [
        f"Scheduling overhead — {results['machine']}, {results['date']}; "
        + ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
        "",
        f"{s['n_workers']} workers, {s['epochs']} epochs × {s['epoch_sleep']} s of sleep, "
        f"{s['wallclock']:g} s budget, {s['repeats']} run(s) each (the median run by "
        f"utilization). Ideal: {results['ideal_per_min']:.0f} trials/min. Overhead per "
        "finished trial = (completion seen − scheduled) − epochs run × sleep (median, s), "
        "split into start / imports / loop / exit where measurable.",
    ]
    for variant, title in (("a", "(a) scheduler path"), ("b", "(b) Lightning path")):
        rows = [r for r in results["rows"] if r["variant"] == variant]
        if not rows:
            continue
        lines += [
            "",
            f"**{title}**",
            "",
            "| system | scheduler | overhead | start | imports | loop | exit | utilization "
            "| from launch | finished/min | completed/min | first report (s) | report lag "
            "(ms) | coordinator CPU | CPU/trial (s) | busy cores |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            f = r["median_run"]
            lag = None if f["report_lag_s"] is None else 1e3 * f["report_lag_s"]
            lines.append(
                f"| {r['label']} | {r['scheduler']} | {_fmt(f['overhead_s'], 3)} | "
                f"{_fmt(f['start_s'], 3)} | {_fmt(f['imports_s'], 3)} | {_fmt(f['loop_s'], 3)} | "
                f"{_fmt(f['exit_s'], 3)} | {_fmt(f['utilization'], 3)} | "
                f"{_fmt(f['utilization_from_launch'], 3)} | {_fmt(f['finished_per_min'], 1)} | "
                f"{_fmt(f['completed_per_min'], 1)} | {_fmt(f['first_report_s'], 2)} | "
                f"{_fmt(lag, 1)} | {_fmt(f['coordinator_cpu_share'], 3)} | "
                f"{_fmt(f['cpu_per_trial_s'], 2)} | {_fmt(f['machine_busy_cores'], 2)} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
