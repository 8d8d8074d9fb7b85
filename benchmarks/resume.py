"""What a crash costs: checkpoint write time, time from a worker's death to its trial
running again, and the extra wall time of a study with a killed worker.

    python benchmarks/resume.py [--repeats 3]

Uses the demo workload (LeNet on FashionMNIST, random search so that both runs do the
same work) on a slice of the data; prints a Markdown table and writes
``benchmarks/results/resume.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import RESULTS, machine, stamp, write_results  # noqa: E402

STUDY = [
    "hpo=random",
    "hpo.n_workers=2",
    "hpo.max_trials=4",
    "hpo.max_wallclock_time=null",
    "trainer.max_epochs=4",
    "trainer.limit_train_batches=0.25",
    "trainer.num_sanity_val_steps=0",
]


def checkpoint_times(repeats: int) -> dict[str, float]:
    """Median ms of HPOCallback's atomic checkpoint vs Lightning's plain save, LeNet."""
    import lightning as L

    from lit_hpo.callback import HPOCallback
    from lit_hpo.context import TrialContext, trial_context
    from models import FashionMNISTDataModule, LeNet

    with tempfile.TemporaryDirectory() as tmp:
        trainer = L.Trainer(
            max_epochs=1,
            limit_train_batches=2,
            limit_val_batches=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
        )
        trainer.fit(LeNet(), FashionMNISTDataModule(batch_size=128, download=False))
        callback = HPOCallback()
        with trial_context(TrialContext(tmp, 0)):
            callback._trial = TrialContext(tmp, 0)
            ours, plain = [], []
            for epoch in range(1, repeats * 5 + 1):
                start = time.perf_counter()
                callback._checkpoint(trainer, epoch)
                ours.append(time.perf_counter() - start)
                start = time.perf_counter()
                trainer.save_checkpoint(Path(tmp) / "plain.ckpt")
                plain.append(time.perf_counter() - start)
        size = (Path(tmp) / "plain.ckpt").stat().st_size
    return {
        "atomic_ms": 1e3 * statistics.median(ours),
        "lightning_ms": 1e3 * statistics.median(plain),
        "size_kb": size / 1024,
    }


def run_study(study_dir: Path, kill_after_reports: int | None) -> dict[str, float]:
    from lit_hpo import load_study

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.time()
    proc = subprocess.Popen(
        [sys.executable, "train.py", "-m", *STUDY, f"hydra.sweep.dir={study_dir}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    killed_at = None
    victim = None
    if kill_after_reports is not None:
        while killed_at is None and proc.poll() is None:
            time.sleep(0.1)
            if not (study_dir / "journal.jsonl").exists():
                continue
            running = [
                t
                for t in load_study(study_dir).state.running()
                if len(t.reports) >= kill_after_reports
            ]
            if running:
                victim = running[0]
                os.kill(victim.pid, signal.SIGKILL)
                killed_at = time.time()
    assert proc.wait(timeout=900) == 0
    wall = time.time() - start
    out = {"wall_s": wall}
    if victim is not None and killed_at is not None:
        trial = load_study(study_dir).state.trials[victim.trial_id]
        resumed = trial.segments[1].start
        first_new = next(r.time for r in trial.reports if r.attempt == 1)
        lost_at = trial.segments[0].end
        out.update(
            {
                "death_to_lost_s": lost_at - killed_at,
                "death_to_resumed_s": resumed - killed_at,
                "death_to_next_report_s": first_new - killed_at,
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = {"checkpoint": checkpoint_times(args.repeats)}
    clean, killed = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            clean.append(run_study(Path(tmp) / f"clean{i}", None))
            killed.append(run_study(Path(tmp) / f"killed{i}", kill_after_reports=2))
    med = lambda rows, key: statistics.median(r[key] for r in rows)  # noqa: E731
    rows["study"] = {
        "clean_wall_s": med(clean, "wall_s"),
        "killed_wall_s": med(killed, "wall_s"),
        "extra_wall_s": med(killed, "wall_s") - med(clean, "wall_s"),
        "death_to_lost_s": med(killed, "death_to_lost_s"),
        "death_to_resumed_s": med(killed, "death_to_resumed_s"),
        "death_to_next_report_s": med(killed, "death_to_next_report_s"),
    }
    c, s = rows["checkpoint"], rows["study"]
    lines = [
        f"Crash cost, LeNet/FashionMNIST, CPU ({machine()}), "
        f"{time.strftime('%Y-%m-%d')}, median of {args.repeats}",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| checkpoint per epoch, atomic (stage + fsync + rename) | {c['atomic_ms']:.1f} ms |",
        f"| checkpoint per epoch, Lightning's save_checkpoint alone | {c['lightning_ms']:.1f} ms |",
        f"| checkpoint size | {c['size_kb']:.0f} KiB |",
        f"| worker death → attempt marked lost | {s['death_to_lost_s']:.2f} s |",
        f"| worker death → trial running again (resume record) | {s['death_to_resumed_s']:.2f} s |",
        f"| worker death → its next epoch reported | {s['death_to_next_report_s']:.2f} s |",
        f"| study wall time, no kill (4 trials x 4 epochs) | {s['clean_wall_s']:.1f} s |",
        f"| same study, a worker SIGKILLed after 2 epochs | {s['killed_wall_s']:.1f} s |",
        f"| extra wall time of the killed study | {s['extra_wall_s']:.1f} s |",
    ]
    results = stamp(**rows, runs={"clean": clean, "killed": killed})
    write_results(RESULTS, "resume", results, "\n".join(lines))


if __name__ == "__main__":
    main()
