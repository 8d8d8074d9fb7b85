"""Preemption on a real SLURM cluster: a study of sleeping Lightning trials as a job array,
its workers preempted again and again (``scancel --signal=USR2``, what SLURM sends before
a time limit or a preemption), then the journal checked.

    python benchmarks/preemption.py [--preemptions 50] [--workers 3]

Needs a SLURM cluster (``bash scripts/start-local-slurm.sh``). Every ``--every`` seconds
it signals the array task of a worker whose trial has reported at least one epoch, until
``--preemptions`` signals are sent; then it lets the study finish and reports: attempts
recorded ``interrupted``, trials left running or pending (stuck), reports recorded twice
or skipped, the epochs of work lost per preemption (the epoch in progress: time from the
attempt's last report to its loss, in epochs), and the time from the signal to the
trial running again (its ``resume`` record).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import RESULTS, ROOT, percentiles, stamp, versions, write_results

EPOCH_SLEEP, EPOCHS = 1.0, 6


def submit(study: Path, workers: int, seconds: float) -> str:
    result = subprocess.run(
        [sys.executable, "train.py", "-m", "--config-dir", "benchmarks/conf", "model=sleepy",
         "data=sleepy", "hpo=overhead", f"trainer.max_epochs={EPOCHS}",
         f"model.epoch_sleep={EPOCH_SLEEP}", f"hpo.n_workers={workers}",
         f"hpo.max_wallclock_time={seconds}", "hydra/launcher=submitit_slurm",
         "hydra.launcher.partition=debug", f"hydra.sweep.dir={study}"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.split("SLURM job array ")[1].split()[0]


def queue(job: str) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%i %t"], capture_output=True,
                         text=True, check=False).stdout  # fmt: skip
    return [line.split()[0] for line in out.splitlines() if line.endswith(" R")]


def pending(job: str) -> bool:
    out = subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True).stdout
    return bool(out.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preemptions", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="array tasks (1 CPU each)")
    parser.add_argument("--every", type=float, default=4.0, help="seconds between signals")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    from lit_hpo import load_study

    seconds = 2 * args.preemptions * args.every + 60  # a requeued task is away a while
    with tempfile.TemporaryDirectory(prefix="lit_hpo-preempt-") as scratch:
        study = Path(scratch) / "study"
        job = submit(study, args.workers, seconds)
        signals: list[tuple[float, int, int]] = []  # (time, trial, attempt)
        while len(signals) < args.preemptions:
            time.sleep(args.every)
            running = set(queue(job))
            if not running and not pending(job):
                break  # the budget is spent
            for trial in load_study(study).state.running():
                task = f"{job}_{trial.worker}"
                if trial.reports and trial.reports[-1].attempt == trial.attempt and task in running:
                    subprocess.run(["scancel", "--signal=USR2", task], check=True)
                    signals.append((time.time(), trial.trial_id, trial.attempt))
                    break
        while queue(job) or pending(job):
            time.sleep(2)
        loaded = load_study(study)
        state, n_reports = loaded.state, len(loaded.results)
    lost, restart, stuck, twice, skipped = [], [], 0, 0, 0
    for when, trial_id, attempt in signals:
        trial = state.trials[trial_id]
        segments = trial.segments
        if attempt + 1 < len(segments) and segments[attempt].outcome == "lost":
            last = max((r.time for r in trial.reports if r.attempt == attempt), default=when)
            lost.append((segments[attempt].end - last) / EPOCH_SLEEP)
            restart.append(segments[attempt + 1].start - when)
    for trial in state.trials:
        stuck += trial.status in ("running", "pending")
        epochs = [r.epoch for r in trial.reports]
        twice += len(epochs) - len(set(epochs))
        skipped += bool(epochs) and epochs != list(range(1, max(epochs) + 1))
    interrupted = sum(1 for t in state.trials for s in t.segments if s.outcome == "lost")
    results = {
        **stamp(versions=versions("submitit")), "signals": len(signals),
        "interrupted": interrupted, "trials": len(state.trials), "reports": n_reports,
        "stuck": stuck, "reported_twice": twice, "skipped": skipped,
        "epochs_lost": percentiles(lost) if lost else None,
        "signal_to_running_s": percentiles(restart) if restart else None,
    }  # fmt: skip
    lines = [
        "| USR2 signals | attempts interrupted | trials | stuck | epochs reported twice / "
        "skipped | epochs of work lost per preemption (median / max) | signal → trial "
        "running again, s (median / max) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {len(signals)} | {interrupted} | {len(state.trials)} | {stuck} | {twice} / {skipped} "
        f"| {results['epochs_lost']['median']:.2f} / {results['epochs_lost']['max']:.2f} "
        f"| {results['signal_to_running_s']['median']:.2f} / "
        f"{results['signal_to_running_s']['max']:.2f} |",
    ]
    write_results(args.out, "preemption", results, "\n".join(lines))


if __name__ == "__main__":
    main()
