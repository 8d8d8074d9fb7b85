"""Workers on a cluster: the launcher node's mapping (pure), then real SLURM (22.05, the
local single-node recipe with 2 fake GPUs) and submitit end to end: a study through
``hydra/launcher=submitit_slurm``, a preempted worker (``scancel --signal=USR2``), the
journal on PostgreSQL, submitit's local executor, and a worker joining from a second
shell."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lit_hpo import load_study
from lit_hpo.cluster import (
    MAX_NUM_TIMEOUT,
    executor_parameters,
    launcher_keys,
    ranks_env_to_drop,
    worker_arguments,
)
from tests.conftest import ROOT, SLEEPY, rank_pids, wait_for

NODE = {"_target_": "x", "submitit_folder": "${hydra.sweep.dir}/.submitit/%j", "timeout_min": 60,
        "cpus_per_task": None, "gpus_per_node": None, "tasks_per_node": 1, "mem_gb": None,
        "nodes": 1, "name": "train", "partition": "gpu", "qos": None, "signal_delay_s": 120,
        "max_num_timeout": 0, "additional_parameters": {"mail-type": "END"},
        "array_parallelism": 256, "setup": ["module load cuda"]}  # fmt: skip


def test_the_launcher_node_maps_like_hydras_plugin_with_lit_hpos_defaults() -> None:
    init, params = executor_parameters(NODE, "slurm", set(), 300, 4, "/home/me/.cache/x/%j")
    assert init == {"folder": "/home/me/.cache/x/%j", "slurm_max_num_timeout": MAX_NUM_TIMEOUT}
    assert params == {
        "timeout_min": 15, "tasks_per_node": 1, "nodes": 1, "name": "train",
        "slurm_partition": "gpu", "slurm_signal_delay_s": 120,
        "slurm_additional_parameters": {"mail-type": "END"}, "slurm_array_parallelism": 4,
        "slurm_setup": ["module load cuda"],
    }  # fmt: skip
    # What the user set on the command line is kept as given.
    given = {"timeout_min", "max_num_timeout", "submitit_folder"}
    init, params = executor_parameters({**NODE, "max_num_timeout": 2}, "slurm", given, 300, 4, "/p")
    assert (
        init["folder"] == "${hydra.sweep.dir}/.submitit/%j" and init["slurm_max_num_timeout"] == 2
    )
    assert params["timeout_min"] == 60
    # No time budget: the plugin's 60 minutes (a timed-out worker is requeued).
    assert executor_parameters(NODE, "local", set(), None, 2, "/p")[1]["timeout_min"] == 60


@pytest.mark.parametrize("key", ["tasks_per_node", "nodes"])
def test_a_worker_is_one_task_on_one_node(key: str) -> None:
    with pytest.raises(
        ValueError, match=f"hydra.launcher.{key}=2: each lit_hpo worker is one task"
    ):
        executor_parameters({**NODE, key: 2}, "slurm", {key}, 300, 4, "/p")


@pytest.mark.parametrize("key", ["gpus_per_node", "gpus_per_task"])
def test_a_worker_has_the_gpus_of_a_multi_device_trial(key: str) -> None:
    with pytest.raises(ValueError, match=f"hydra.launcher.{key}=1 but each trial runs "
                       f"trainer.devices=2 ranks.*use hydra.launcher.{key}=2"):  # fmt: skip
        executor_parameters({**NODE, key: 1}, "slurm", {key}, 300, 4, "/p", per_trial=2)
    for gpus in (2, 4, None):  # enough, or none asked for (trials on CPU)
        executor_parameters({**NODE, key: gpus}, "slurm", {key}, 300, 4, "/p", per_trial=2)


def test_lightning_starts_the_ranks_of_a_multi_device_trial_in_a_one_task_job() -> None:
    """Seeing SLURM_NTASKS, Lightning would expect srun to start the ranks and refuse
    trainer.devices=2 in a one-task job; single-device trials keep its SLURM handling."""
    assert ranks_env_to_drop({"SLURM_NTASKS": "1"}, 2) == ["SLURM_NTASKS"]
    assert ranks_env_to_drop({"SLURM_NTASKS": "1"}, 1) == []
    assert ranks_env_to_drop({"SLURM_NTASKS": "2"}, 2) == []  # srun's tasks: not ours
    assert ranks_env_to_drop({}, 2) == []


def test_the_keys_set_on_the_command_line_are_found() -> None:
    overrides = ["hydra.launcher.partition=gpu", "+hydra.launcher.qos=high",
                 "hydra.sweep.dir=x", "hydra/launcher=submitit_slurm"]  # fmt: skip
    assert launcher_keys(overrides) == {"partition", "qos"}


def test_workers_rerun_the_command_with_the_study_fixed() -> None:
    argv = ["-m", "hpo=asha", "hydra.sweep.dir=multirun/x", "hpo.wait=true", "lr=0.1"]
    assert worker_arguments(argv, Path("/abs/study")) == [
        "-m", "hpo=asha", "lr=0.1", "hydra.sweep.dir='/abs/study'",
    ]  # fmt: skip


def _records(study: Path) -> list[dict]:
    return [json.loads(line) for line in (study / "journal.jsonl").read_text().splitlines()]


def _submit(study: Path, *overrides: str, launcher: str = "submitit_slurm",
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:  # fmt: skip
    extra = ["hydra.launcher.partition=debug"] if launcher == "submitit_slurm" else []
    return subprocess.run(
        [sys.executable, "train.py", "-m", *SLEEPY, f"hydra/launcher={launcher}", *extra,
         f"hydra.sweep.dir={study}", *overrides],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})},
    )  # fmt: skip


def _queue_empty() -> bool:
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout
    return not out.strip()


@pytest.fixture
def empty_queue(slurm: None) -> None:
    wait_for(_queue_empty, timeout=120)


@pytest.mark.slow
def test_a_study_runs_as_a_slurm_job_array_and_the_submit_returns_at_once(
    tmp_path: Path, empty_queue: None
) -> None:
    study = tmp_path / "study"
    result = _submit(study, "hpo.max_wallclock_time=20", "hydra.launcher.gpus_per_node=1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "submitted 2 workers as SLURM job array" in result.stdout
    assert f"lit-hpo status {study} --watch" in result.stdout
    # It returned before the study ended: no trial had finished yet (or none started).
    assert not any(r["op"] == "end" for r in _records(study))
    wait_for(_queue_empty, timeout=180)
    records = _records(study)
    claims = [r for r in records if r["op"] == "claim"]
    assert {r["worker"] for r in claims} == {0, 1}
    assert all(r["host"] == os.uname().nodename for r in claims)
    ends = [r for r in records if r["op"] == "end"]
    assert len(ends) == len(claims) >= 4  # every trial ended: none left running
    # Each worker ran in its own array task, pinned by SLURM to its own (fake) GPU.
    job = result.stdout.split("SLURM job array ")[1].split()[0]
    logs = [(study / "workers" / f"worker_{w}.log").read_text() for w in (0, 1)]
    assert [f"(SLURM job {job}_{w})" in log for w, log in enumerate(logs)] == [True, True]
    pinned = {log.split("CUDA_VISIBLE_DEVICES=")[1].split(",")[0] for log in logs}
    assert pinned == {"'0'", "'1'"}


@pytest.mark.slow
@pytest.mark.parametrize("journal", ["file", "postgres"])
def test_a_preempted_worker_is_requeued_and_its_trial_resumes_from_its_checkpoint(
    tmp_path: Path, empty_queue: None, journal: str, request: pytest.FixtureRequest
) -> None:
    study = tmp_path / "study"
    extra = [f"++hpo.journal={request.getfixturevalue('pg_url')}"] if journal == "postgres" else []
    result = _submit(study, "hpo.max_wallclock_time=45", "trainer.max_epochs=6",
                     "model.epoch_sleep=1.0", *extra)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    job = result.stdout.split("SLURM job array ")[1].split()[0]
    url = extra[0].split("=", 1)[1] if extra else None

    from lit_hpo import load_study

    def victim() -> object:
        for trial in load_study(study, url).state.running():
            if trial.worker == 0 and trial.reports:
                return trial
        return None

    wait_for(victim, timeout=120)
    trial = victim()
    subprocess.run(["scancel", "--signal=USR2", f"{job}_0"], check=True)
    wait_for(_queue_empty, timeout=240)
    state = load_study(study, url).state
    done = state.trials[trial.trial_id]
    assert done.losses == 1 and done.attempt == 1 and done.status == "completed"
    epochs = [r.epoch for r in done.reports]
    assert epochs == list(range(1, 7))  # contiguous: resumed after its last report
    log = (study / "workers" / "worker_0.log").read_text()
    assert "this job is preempted" in log
    assert log.count(f"(SLURM job {job}_0)") == 2  # the requeued array task ran again
    assert all(t.status != "running" for t in state.trials)
    if url is not None:
        assert not (study / "journal.jsonl").exists() and (study / "journal.pg").exists()


@pytest.mark.slow
def test_a_worker_at_its_time_limit_is_requeued_and_its_trial_goes_on(
    tmp_path: Path, empty_queue: None
) -> None:
    """SLURM's own timer, not scancel: a 1-minute time limit, USR2 30 s before it (SLURM
    may send it earlier). One 30-epoch trial outlives a task, so the task is requeued and
    the trial resumes from its checkpoint, each time; with hpo.max_retries=0, since an
    interrupt is no fault of the trial and does not use up a retry."""
    study = tmp_path / "study"
    result = _submit(study, "hpo.n_workers=1", "hpo.max_trials=1", "hpo.max_retries=0",
                     "hpo.max_wallclock_time=null", "trainer.max_epochs=30",
                     "model.epoch_sleep=1.0", "hydra.launcher.timeout_min=1",
                     "hydra.launcher.signal_delay_s=30")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for(_queue_empty, timeout=240)
    (trial,) = load_study(study).state.trials
    assert trial.status == "completed" and trial.losses >= 1 and trial.retries_used == 0
    assert [r.epoch for r in trial.reports] == list(range(1, 31))  # none lost or repeated
    log = (study / "workers" / "worker_0.log").read_text()
    assert log.count("this job is timed-out") >= trial.losses
    assert log.count("worker 0: pid ") >= trial.losses + 1  # requeued each time
    assert f"trial 0 attempt {trial.attempt} resumes after epoch" in log


@pytest.mark.slow
def test_multi_device_trials_run_their_ranks_inside_each_array_task(
    tmp_path: Path, empty_queue: None
) -> None:
    """trainer.devices=2 (ddp, CPU, gloo) under submitit_slurm: each trial's second rank
    is started by Lightning inside the worker's one-task job, both ranks train, rank 0
    reports once per epoch, and no rank outlives the job."""
    study = tmp_path / "study"
    result = _submit(study, "trainer.strategy=ddp", "trainer.devices=2", "hpo.n_workers=1",
                     "hpo.max_trials=2", "hpo.max_wallclock_time=null",
                     "trainer.max_epochs=2", "hydra.launcher.gpus_per_node=2")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for(_queue_empty, timeout=180)
    trials = load_study(study).state.trials
    assert [(t.status, [r.epoch for r in t.reports]) for t in trials] == [
        ("completed", [1, 2]),
        ("completed", [1, 2]),
    ]
    log = (study / "workers" / "worker_0.log").read_text()
    assert log.count("Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2") == 2, log
    assert "CUDA_VISIBLE_DEVICES='0,1'" in log  # SLURM's 2 (fake) GPUs, for its 2 ranks
    assert "does not match" not in log and "`srun` command is available" not in log
    assert not rank_pids(study)


def test_waiting_on_a_job_slurm_cannot_report_keeps_watching_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``hpo.wait`` while the controller is unreachable (a squeue that fails, as SLURM's
    does then, three times; then the job is gone): no silent wait, no false "ended"."""
    from types import SimpleNamespace

    from lit_hpo.cluster import Submission, _attach
    from lit_hpo.spec import spec_from_config
    from lit_hpo.study import StudyClient

    calls = tmp_path / "calls"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    squeue = bin_dir / "squeue"
    squeue.write_text(
        "#!/bin/sh\n"
        f"echo x >> {calls}\n"
        f"[ $(wc -l < {calls}) -gt 3 ] && exit 0\n"  # the controller is back: job gone
        "echo 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)'"
        " >&2\nexit 1\n"
    )
    squeue.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    submission = Submission("slurm", [SimpleNamespace(job_id="4242_0")])
    assert "Unable to contact slurm controller" in str(submission.alive())
    client = StudyClient(tmp_path / "study")
    settings = {"space": {"x": "interval(0, 1)"}, "max_epochs": 2, "max_wallclock_time": 60}
    client.open(spec_from_config(settings), 1)
    _attach(client, submission, poll=0.01, warn_after=0.0)
    said = capsys.readouterr().out
    assert said.count("could not say whether job 4242 still runs") == 2  # calls 2 and 3
    assert "Unable to contact slurm controller" in said and "scancel 4242" in said
    assert len(calls.read_text().split()) == 4  # it stopped once squeue answered


def test_a_job_array_slurm_refuses_is_a_clear_error(tmp_path: Path, slurm: None) -> None:
    result = _submit(tmp_path / "study", "hydra.launcher.partition=nosuch")
    assert result.returncode == 1
    assert "SLURM refused the workers' job array: sbatch: error: invalid partition" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_submitit_local_runs_the_same_workers_without_slurm(tmp_path: Path) -> None:
    study = tmp_path / "study"
    result = _submit(study, "hpo.max_wallclock_time=15", "++hpo.wait=true",
                     launcher="submitit_local")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "submitted 2 workers as local submitit jobs" in result.stdout
    assert "worker utilization" in result.stdout  # hpo.wait: attached until the end
    records = _records(study)
    claims = [r for r in records if r["op"] == "claim"]
    assert {r["worker"] for r in claims} == {0, 1}
    assert len([r for r in records if r["op"] == "end"]) == len(claims)


@pytest.mark.slow
def test_a_worker_from_a_second_shell_joins_a_running_study(tmp_path: Path) -> None:
    study = tmp_path / "study"
    common = [sys.executable, "train.py", "-m", *SLEEPY, f"hydra.sweep.dir={study}",
              "hpo.max_wallclock_time=20"]  # fmt: skip
    first = subprocess.Popen([*common, "hpo.n_workers=1"], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        wait_for(lambda: (study / "journal.jsonl").exists(), timeout=60)
        joined = subprocess.run([*common, "++hpo.worker=7"], cwd=ROOT, capture_output=True,
                                text=True, timeout=120)  # fmt: skip
        assert joined.returncode == 0, joined.stdout + joined.stderr
        out, _ = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 0, out
    claims = [r for r in _records(study) if r["op"] == "claim"]
    assert {r["worker"] for r in claims} == {0, 7}
    assert len({r["pid"] for r in claims}) == 2
    # Joining a study with other settings, or one that does not exist, is refused.
    other = subprocess.run([*common, "++hpo.worker=8", "hpo.seed=5"], cwd=ROOT,
                           capture_output=True, text=True)  # fmt: skip
    assert other.returncode == 1 and "created with different settings" in other.stderr
    none = subprocess.run([*common[:-2], f"hydra.sweep.dir={tmp_path / 'none'}",
                           "++hpo.worker=1"], cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert none.returncode == 1 and "no study in" in none.stderr
