"""Multi-device trials: Lightning's default ``ddp`` strategy inside a study (CPU, gloo).

Lightning's subprocess launcher re-runs the command line for every extra rank; inside a
study that command runs the trial's rank (its config, its directory), never a study.
Real Hydra processes, real DDP ranks, real FashionMNIST.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lit_hpo import load_study
from tests.conftest import ROOT, SMALL, rank_pids, running_trials, study_env, wait_for

pytestmark = pytest.mark.slow

DDP = ["trainer.strategy=ddp", "trainer.devices=2", "trainer.accelerator=cpu",
       "hpo.n_workers=1", "model=mlp"]  # fmt: skip


def test_a_ddp_study_runs_every_trial_on_two_ranks(tmp_path: Path, fashion_root: Path) -> None:
    """ASHA stops some trials: had a rank not stopped in the same epoch as rank 0, it
    would wait in the next epoch's collective and the study would never end."""
    run = subprocess.run(
        [sys.executable, "train.py", "-m", "hpo=asha", *DDP, "hpo.max_trials=4",
         "hpo.max_wallclock_time=null", "trainer.max_epochs=2", "hpo.grace_period=1",
         "model.learning_rate=tag(log,interval(0.0001,1))", *SMALL,
         f"hydra.sweep.dir={tmp_path}"],
        cwd=ROOT, env=study_env(fashion_root), capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    state = load_study(tmp_path).state
    assert len(state.trials) == 4
    assert {t.status for t in state.trials} == {"completed", "stopped"}, state.trials
    for trial in state.trials:  # one report per epoch, from rank 0
        assert [r.epoch for r in trial.reports] == list(range(1, len(trial.reports) + 1))
    assert not (tmp_path / "journal.jsonl.quarantine").exists()
    log = "".join(p.read_text() for p in (tmp_path / "workers").glob("*.log"))
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in log or "MEMBER: 2/2" in (
        run.stdout + run.stderr + log
    )
    assert not rank_pids(tmp_path)  # no rank outlived its trial


def test_killing_the_worker_of_a_ddp_trial_ends_its_other_rank(
    tmp_path: Path, fashion_root: Path
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "train.py", "-m", "hpo=asha", *DDP, "hpo.max_trials=1",
         "hpo.max_wallclock_time=null", "trainer.max_epochs=3",
         "trainer.limit_train_batches=400", "trainer.limit_val_batches=5",
         f"hydra.sweep.dir={tmp_path}"],
        cwd=ROOT, env=study_env(fashion_root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(lambda: rank_pids(tmp_path) and any(t.reports for t in running_trials(tmp_path)),
                 timeout=180)  # fmt: skip
        ranks = rank_pids(tmp_path)
        victim = running_trials(tmp_path)[0]
        os.kill(victim.pid, signal.SIGKILL)  # rank 0, the worker, after its first report
        killed = time.monotonic()
        wait_for(lambda: not (rank_pids(tmp_path) & ranks), timeout=30)
        print(f"rank 1 gone {time.monotonic() - killed:.1f} s after its worker's SIGKILL")
        out, _ = proc.communicate(timeout=300)  # the trial resumes, on two new ranks
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, out
    trial = load_study(tmp_path).state.trials[victim.trial_id]
    assert trial.attempt == 1 and trial.status in ("completed", "stopped"), trial
    assert [r.epoch for r in trial.reports] == list(range(1, len(trial.reports) + 1))
    assert f"resumes after epoch {victim.last_epoch}" in "".join(
        p.read_text() for p in (tmp_path / "workers").glob("*.log")
    )
    assert not rank_pids(tmp_path)
