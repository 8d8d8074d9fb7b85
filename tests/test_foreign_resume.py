"""Resume for a real-world LightningModule (tests/foreign): an ``nn.Module`` and a partial
optimizer saved with ``save_hyperparameters()``, torchmetrics state, ``ModelCheckpoint``
and ``EarlyStopping``, and a script that resumes through ``trainer.fit(ckpt_path=...)``
with Lightning's defaults. Real Hydra subprocesses, real FashionMNIST, real SIGKILLs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lit_hpo import load_study
from lit_hpo.checkpoints import checkpoints
from tests.conftest import running_trials, study_env, wait_for

pytestmark = pytest.mark.slow


FOREIGN = Path(__file__).parent / "foreign"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The foreign project, copied to a directory of its own (outside this checkout)."""
    target = tmp_path / "their_project"
    shutil.copytree(FOREIGN, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _command(study: Path, *overrides: str) -> list[str]:
    return [sys.executable, "train.py", "-m", "hpo=promotion", *overrides,
            f"hydra.sweep.dir={study}"]  # fmt: skip


def _traces(study: Path) -> dict[int, list[dict]]:
    return {
        int(path.parent.name.split("_")[1]): [
            json.loads(line)  # a line torn by the SIGKILL has no newline yet
            for line in path.read_text().splitlines(keepends=True)
            if line.endswith("\n")
        ]
        for path in study.glob("trial_*/trace.jsonl")
    }


def _assert_resumed_with_saved_state(study: Path) -> int:
    """Every resumed attempt started right after the last epoch its trial reported, with
    the weights and optimizer state that the earlier attempt had after that epoch."""
    state = load_study(study).state
    assert [t.trial_id for t in state.trials if t.reason == "no_checkpoint"] == []
    assert [t.trial_id for t in state.trials if t.status == "failed"] == []
    resumed = 0
    for trial_id, events in _traces(study).items():
        for index, event in enumerate(events):
            if event["event"] != "start" or event["attempt"] == 0:
                continue
            before = [e for e in events[:index] if e["event"] == "validated"]
            saved = {e["epoch"]: e["fp"] for e in before}
            segment = state.trials[trial_id].segments[event["attempt"]]
            assert segment.attempt == event["attempt"]
            # the epoch the attempt resumed from: its trial's reports before the attempt
            reported = [r.epoch for r in state.trials[trial_id].reports if r.time <= segment.start]
            assert event["epoch"] == max(reported), (trial_id, event, reported)
            assert event["fp"] == saved[event["epoch"]], (trial_id, event, saved)
            resumed += 1
    return resumed


def test_promoted_trials_of_a_foreign_module_resume_with_their_optimizer_state(
    tmp_path: Path, project: Path, fashion_root: Path
) -> None:
    tmp_path = tmp_path / "study"
    result = subprocess.run(_command(tmp_path), cwd=project, env=study_env(fashion_root),
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert _assert_resumed_with_saved_state(tmp_path) >= 2
    promoted = [t for t in load_study(tmp_path).state.trials if t.attempt > 0]
    assert any(t.status == "completed" and t.last_epoch == 4 for t in promoted)
    # lit_hpo's checkpoints load weights-only and keep a plain rendering of the objects...
    (path,) = checkpoints(tmp_path, promoted[0].trial_id).values()
    saved = torch.load(path, weights_only=True)
    assert saved["hyper_parameters"]["optimizer"]["_target_"] == "torch.optim.adam.Adam"
    assert saved["hyper_parameters"]["optimizer"]["_partial_"] is True
    assert saved["hyper_parameters"]["net"].startswith("Sequential(")
    assert "hparams_type" not in saved
    # ...while the user's own ModelCheckpoint files are left exactly as Lightning writes them.
    user = torch.load(
        tmp_path / f"trial_{promoted[0].trial_id}" / "user_checkpoints" / "last.ckpt",
        weights_only=False,  # the test's own file, written by this test's own study
    )
    assert isinstance(user["hyper_parameters"]["net"], torch.nn.Module)


def test_a_killed_workers_trial_of_a_foreign_module_resumes_with_its_optimizer_state(
    tmp_path: Path, project: Path, fashion_root: Path
) -> None:
    tmp_path = tmp_path / "study"
    proc = subprocess.Popen(
        _command(tmp_path, "hpo.scheduler=asha", "hpo.max_trials=3", "trainer.max_epochs=3",
                 "trainer.limit_train_batches=80"),
        cwd=project, env=study_env(fashion_root), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    wait_for(lambda: any(t.reports for t in running_trials(tmp_path)))
    victim = next(t for t in running_trials(tmp_path) if t.reports)
    os.kill(victim.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    state = load_study(tmp_path).state
    assert state.trials[victim.trial_id].attempt == 1
    assert state.trials[victim.trial_id].status in ("completed", "stopped")
    assert _assert_resumed_with_saved_state(tmp_path) >= 1
