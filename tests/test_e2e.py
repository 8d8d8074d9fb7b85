"""End to end: `python train.py -m hpo=...` in a real subprocess on real FashionMNIST.

The studies are small (a few batches per epoch) so that the suite stays fast; the
scheduling, the processes, the journal and Hydra are the real ones.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lit_hpo import load_study
from lit_hpo.journal import Journal
from tests.conftest import ROOT, SLEEPY, SMALL, run_train, running_trials, study_env, wait_for

pytestmark = pytest.mark.slow


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _claimed_while_the_other_ran(study_dir: Path, worker: int) -> bool:
    """Whether ``worker`` ended a trial and claimed its next one with no end of another
    worker's trial in between, while that other trial was running (claimed, not ended)."""
    records, _ = Journal(study_dir / "journal.jsonl").read(0)
    owner: dict[int, int] = {}
    running: set[int] = set()
    ended_mine, others_ended = False, False
    for record in records:
        op, trial = record["op"], record.get("trial")
        if op == "claim":
            owner[trial] = record["worker"]
            mine_next = record["worker"] == worker and ended_mine and not others_ended
            if mine_next and any(owner[t] != worker for t in running):
                return True
            running.add(trial)
            if record["worker"] == worker:
                ended_mine = False
        elif op == "end":
            running.discard(trial)
            if owner[trial] == worker:
                ended_mine, others_ended = True, False
            else:
                others_ended = True
    return False


def test_asha_study_runs_asynchronously_and_stops_at_rungs(asha_study) -> None:
    study_dir, result = asha_study
    study = load_study(study_dir)
    trials, results = study.trials, study.results
    assert len(trials) == 14
    assert set(trials.status) <= {"completed", "stopped"}
    stopped = trials[trials.status == "stopped"]
    assert len(stopped) >= 3
    assert set(stopped.epochs) <= {1, 2}  # rungs of grace 1, eta 2, max 4
    assert (trials[trials.status == "completed"].epochs == 4).all()
    assert set(results.decision) == {"continue", "stop"}
    assert (results[results.decision == "stop"].reason == "rung").all()
    # Two workers ran trials at the same time.
    spans = {t.trial_id: (t.started, t.ended, t.worker) for t in study.state.trials}
    assert any(
        a[2] != b[2] and _overlap(a[:2], b[:2])
        for i, a in spans.items() for j, b in spans.items() if i < j
    )  # fmt: skip
    # Asynchronous, in journal order (no clock): each worker, at least once, claims its
    # next trial without waiting for the other worker's running trial to end. (A
    # synchronous batch launcher never does: the worker that finishes first waits for
    # the other's end; the one that finishes last finds the other idle.)
    for worker in (0, 1):
        assert _claimed_while_the_other_ran(study_dir, worker), worker
    # The first trial is the point to evaluate.
    assert study.state.trials[0].config == {"model.learning_rate": 0.1, "data.batch_size": 128}
    best = study.best
    assert best is not None
    assert f"validation_error: best {best.value:.6g} for trial-id {best.trial_id}" in result.stdout
    assert "tuning status" in result.stdout


def test_each_trial_has_its_directory_curves_hparams_and_the_study_its_figures(asha_study) -> None:
    study_dir, result = asha_study
    for trial_id in range(14):
        trial_dir = study_dir / f"trial_{trial_id}"
        curves = list((trial_dir / "tensorboard").rglob("events.out.tfevents.*"))
        assert curves and "learning_rate=" in curves[0].parent.name, trial_dir  # run name
        assert list((trial_dir / "hparams").glob("events.out.tfevents.*")), trial_dir
        assert (trial_dir / ".hydra" / "overrides.yaml").is_file()
    for name in ("incumbent", "learning_curves", "timeline", "hyperparameters"):
        assert (study_dir / f"{name}.png").stat().st_size > 10_000
    assert "figures:" in result.stdout


def test_status_command_prints_the_table(asha_study) -> None:
    study_dir, _ = asha_study
    out = subprocess.run(
        [sys.executable, "-m", "lit_hpo.cli", "status", str(study_dir)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "trial_id" in out and "learning_rate" in out and "batch_size" in out
    assert "0 trials running, 14 finished" in out
    assert "validation_error: best" in out


def test_rerun_continues_the_study_and_refuses_other_settings(
    tmp_path: Path, fashion_root: Path
) -> None:
    common = ["hpo=random", "hpo.n_workers=1", "hpo.max_wallclock_time=null",
              "trainer.max_epochs=2", *SMALL]  # fmt: skip
    assert run_train(tmp_path, fashion_root, *common, "hpo.max_trials=2").returncode == 0
    again = run_train(tmp_path, fashion_root, *common, "hpo.max_trials=4")
    assert again.returncode == 0, again.stderr
    study = load_study(tmp_path)
    assert list(study.trials.trial_id) == [0, 1, 2, 3]
    assert (study.trials.status == "completed").all() and (study.trials.epochs == 2).all()
    assert len(study.state.sessions) == 2
    other = run_train(tmp_path, fashion_root, *common, "hpo.max_trials=4", "hpo.seed=1")
    assert other.returncode != 0
    assert "created with different settings" in other.stderr and "seed" in other.stderr


BAD_INPUTS = [
    ("hpo.reduction_factor=1", "`reduction_factor` must be >= 2, but got 1"),
    ("hpo.grace_period=0", "`grace_period` must be >= 1, but got 0"),
    ("hpo.grace_period=20", "`grace_period` must be <= max_epochs (10), but got 20"),
    ("hpo.n_workers=0", "`hpo.n_workers` must be a positive integer"),
    ("model.learning_rate=interval(1,0.1)", "low < high"),
    ("model.learning_rate=tag(log,interval(0,1))", "a log range needs low > 0"),
    ("model.learning_rate=interval(0,inf)", "must be finite"),
    ("hpo.scheduler=hyperbandit", "unknown scheduler hpo.scheduler='hyperbandit'"),
    ("hpo.mode=minimize", "`hpo.mode` must be 'min' or 'max'"),
    ("modle.lr=interval(0.1,1)", "Could not override 'modle.lr'"),
    (
        "hydra.launcher._target_=somewhere.ClusterLauncher",
        "somewhere.ClusterLauncher, which lit_hpo cannot drive",
    ),
    ("hpo.seed=choice(1,2)", "cannot be search dimensions"),
    ("trainer.num_nodes=2", "multi-node trials are not supported inside a study"),
]


def test_bad_input_fails_early_with_the_value_and_the_fix(
    tmp_path: Path, fashion_root: Path
) -> None:
    procs = []
    for index, (override, _) in enumerate(BAD_INPUTS):
        procs.append(subprocess.Popen(
            [sys.executable, "train.py", "-m", "hpo=asha", *override.split(),
             f"hydra.sweep.dir={tmp_path / str(index)}"],
            cwd=ROOT, env=study_env(fashion_root), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        ))  # fmt: skip
    for (override, message), proc, index in zip(BAD_INPUTS, procs, range(len(procs)), strict=True):
        _, stderr = proc.communicate(timeout=180)
        assert proc.returncode != 0, override
        assert message in stderr, (override, stderr)
        assert "Traceback" not in stderr
        assert not (tmp_path / str(index) / "journal.jsonl").exists()  # nothing was started


def _interactive_signals() -> None:
    # A test runner started in the background (`cmd &`) inherits SIGINT ignored, and so
    # would the study; give it the default disposition a terminal's foreground job has.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(study_dir: Path, fashion_root: Path, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "train.py", "-m", "hpo=asha", "model=mlp", *overrides,
         f"hydra.sweep.dir={study_dir}"],
        cwd=ROOT, env=study_env(fashion_root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True, preexec_fn=_interactive_signals,
    )  # fmt: skip


def _contiguous_epochs(study) -> None:
    for trial_id, epochs in study.results.groupby("trial_id").epoch:
        assert list(epochs) == list(range(1, len(epochs) + 1)), (trial_id, list(epochs))


def test_a_killed_worker_is_replaced_and_its_trial_resumes_from_its_checkpoint(
    tmp_path: Path, fashion_root: Path
) -> None:
    proc = _start(tmp_path, fashion_root, "hpo.n_workers=2", "hpo.max_trials=6",
                  "hpo.max_wallclock_time=null", "trainer.max_epochs=3",
                  "trainer.limit_train_batches=60", "trainer.limit_val_batches=5")  # fmt: skip
    wait_for(lambda: len(running_trials(tmp_path)) >= 1 and running_trials(tmp_path)[0].reports)
    victim = running_trials(tmp_path)[0]
    os.kill(victim.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    study = load_study(tmp_path)
    resumed = study.state.trials[victim.trial_id]
    assert resumed.status in ("completed", "stopped") and resumed.attempt == 1, resumed
    assert [s.attempt for s in resumed.segments] == [0, 1]
    assert len(study.state.trials) == 6
    assert all(t.status in ("completed", "stopped") for t in study.state.trials)
    _contiguous_epochs(study)  # no reported epoch lost or repeated
    assert f"worker {victim.worker} exited with code -9; starting a new one" in out
    log = "".join(p.read_text() for p in (tmp_path / "workers").glob("*.log"))
    assert f"trial {victim.trial_id} attempt 1 resumes after epoch {victim.last_epoch}" in log
    starts = re.findall(rf"worker {victim.worker}: pid (\d+)", log)
    assert len(starts) == 2 and int(starts[0]) == victim.pid != int(starts[1])


def test_ctrl_c_stops_cleanly_and_the_rerun_resumes_the_interrupted_trials(
    tmp_path: Path, fashion_root: Path
) -> None:
    overrides = ("hpo.n_workers=2", "hpo.max_wallclock_time=600", "hpo.max_trials=3",
                 "trainer.max_epochs=3", "trainer.limit_train_batches=200",
                 "trainer.limit_val_batches=5")  # fmt: skip
    proc = _start(tmp_path, fashion_root, *overrides)
    wait_for(lambda: sum(bool(t.reports) for t in running_trials(tmp_path)) == 2)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 130, out
    records, _ = Journal(tmp_path / "journal.jsonl").read(0)  # every line whole JSON
    study = load_study(tmp_path)
    assert study.state.running() == []
    assert {(t.status, t.reason) for t in study.state.trials} == {("pending", "interrupted")}
    assert "tuning status" in out and "rerun the same command" in out
    assert records[-1]["op"] == "lost"
    # Rerun: both trials resume from their checkpoints, ids continue, epochs contiguous.
    rerun = _start(tmp_path, fashion_root, *overrides)
    out, _ = rerun.communicate(timeout=240)
    assert rerun.returncode == 0, out
    study = load_study(tmp_path)
    assert [t.attempt for t in study.state.trials] == [1, 1, 0]
    assert all(t.status in ("completed", "stopped") for t in study.state.trials)
    _contiguous_epochs(study)


@pytest.mark.parametrize("after", [0.02, 0.4])
def test_a_second_ctrl_c_cuts_the_stop_short_without_a_traceback_or_a_lost_trial(
    tmp_path: Path, after: float
) -> None:
    """An impatient user presses Ctrl-C twice: the second lands while the workers record
    their trials, or while the summary is drawn (which, depends on `after`). Either way
    the run ends at once with exit 130 and no traceback, every trial it ran is recorded
    as interrupted or ended, and the rerun goes on."""
    command = [sys.executable, "train.py", "-m", *SLEEPY, f"hydra.sweep.dir={tmp_path}",
               "hpo.max_trials=4", "hpo.max_wallclock_time=600"]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            preexec_fn=_interactive_signals)  # fmt: skip
    wait_for(lambda: sum(bool(t.reports) for t in running_trials(tmp_path)) == 2)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(after)
    with contextlib.suppress(ProcessLookupError):  # it may have ended already
        os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=90)
    # 130, or killed by the SIGINT while the interpreter exits (a shell shows 130 too)
    assert proc.returncode in (130, -signal.SIGINT), out
    assert "Traceback" not in out and "rerun the same command" in out, out
    Journal(tmp_path / "journal.jsonl").read(0)  # every line whole JSON
    state = load_study(tmp_path).state
    assert state.running() == [] and len(state.trials) == 2
    assert {(t.status, t.reason) for t in state.trials} == {("pending", "interrupted")}
    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    state = load_study(tmp_path).state
    assert [t.attempt for t in state.trials] == [1, 1, 0, 0]
    assert all(t.status == "completed" for t in state.trials)


def test_plugin_is_discovered() -> None:
    from hydra.core.plugins import Plugins
    from hydra.plugins.sweeper import Sweeper

    names = [cls.__name__ for cls in Plugins.instance().discover(Sweeper)]
    assert "LitHpoSweeper" in names


def test_random_search_runs_lenet_to_max_epochs(tmp_path: Path, fashion_root: Path) -> None:
    result = run_train(
        tmp_path, fashion_root, "hpo=random", "hpo.n_workers=2", "hpo.max_trials=3",
        "hpo.max_wallclock_time=null", "trainer.max_epochs=2", *SMALL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    trials = load_study(tmp_path).trials
    assert (trials.status == "completed").all() and (trials.epochs == 2).all()
    assert "validation_error: best" in result.stdout


def test_workers_are_pinned_to_their_own_gpu(tmp_path: Path, fashion_root: Path) -> None:
    """No GPU here: CUDA_VISIBLE_DEVICES lists two ids, so two workers start (the default)
    and each sees only its own id; torch then finds no CUDA device and trains on CPU."""
    env = {**study_env(fashion_root), "CUDA_VISIBLE_DEVICES": "3,5"}
    result = subprocess.run(
        [sys.executable, "train.py", "-m", "hpo=random", "hpo.max_trials=2",
         "hpo.max_wallclock_time=null", "trainer.max_epochs=1", *SMALL,
         f"hydra.sweep.dir={tmp_path}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "2 workers (GPUs 3, 5)" in result.stdout
    logs = [(tmp_path / "workers" / f"worker_{w}.log").read_text() for w in (0, 1)]
    assert "CUDA_VISIBLE_DEVICES='3'" in logs[0] and "CUDA_VISIBLE_DEVICES='5'" in logs[1]


def test_cpu_workers_split_the_cores(asha_study) -> None:
    study_dir, result = asha_study
    cores = os.cpu_count() or 1
    threads = max(1, cores // 2)
    assert f"2 workers (CPU, {threads} threads each)" in result.stdout
    log = (study_dir / "workers" / "worker_0.log").read_text()
    assert f"torch threads {threads}" in log
    assert "worker utilization" in result.stdout


@pytest.mark.parametrize("hpo", ["asha_promotion", "hyperband"])
def test_promotion_asha_and_hyperband_studies(tmp_path: Path, fashion_root: Path, hpo: str) -> None:
    result = run_train(
        tmp_path, fashion_root, f"hpo={hpo}", "model=mlp", "hpo.n_workers=2", "hpo.max_trials=10",
        "hpo.max_wallclock_time=null", "trainer.max_epochs=4", "hpo.grace_period=1", *SMALL,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    study = load_study(tmp_path)
    _contiguous_epochs(study)
    trials = study.state.trials
    if hpo == "asha_promotion":
        promoted = [t for t in trials if t.attempt > 0]
        assert promoted, "no trial was promoted"
        assert {t.status for t in trials} <= {"paused", "completed"}
        assert any(t.status == "completed" and t.last_epoch == 4 for t in promoted)
        for trial in promoted:  # each attempt resumed where the previous one paused
            assert [s.attempt for s in trial.segments] == list(range(trial.attempt + 1))
    else:
        assert {t.status for t in trials} <= {"stopped", "completed"}
        assert study.header["scheduler"]["brackets"] == 2
