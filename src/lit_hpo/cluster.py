"""Workers on a cluster: ``hydra/launcher=submitit_slurm`` (or ``submitit_local``).

The submitting ``-m`` process opens the study and submits ``hpo.n_workers`` long-lived
workers as one job array through submitit, then returns (``hpo.wait=true`` stays
attached with the progress panel). Each array task runs the user's own command line
again with ``hpo.worker=<i>`` (:class:`ClusterWorker`): it composes its configs itself
and joins the study, so no pickled Hydra state of the submitting process is needed to
run a trial; the submitit pickle holds only that command line. On SIGUSR2 (preemption,
or the time limit coming: ``--signal=USR2@signal_delay_s``) submitit requeues the array
task and exits: the running attempt is recorded as ``interrupted`` on its way out, and
whichever worker is free next resumes the trial from its checkpoint. SIGTERM (a plain
``scancel``) records it the same way and ends the task. A dead node is found by the
lease, from any other worker. A trial of ``trainer.devices=N`` runs its N ranks inside
its worker's task (:func:`ranks_env_to_drop`), on the task's N GPUs.

The ``hydra.launcher`` node is Hydra's submitit plugin's, with the plugin's key mapping
(:func:`executor_parameters`); lit_hpo only changes three defaults (see there).
"""

from __future__ import annotations

import math
import os
import runpy
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lit_hpo.compose import format_override
from lit_hpo.devices import DEFAULT_CPU_WORKERS, check_enough_gpus, visible_gpus, worker_env
from lit_hpo.progress import make_progress
from lit_hpo.spec import StudySpec
from lit_hpo.study import StudyClient
from lit_hpo.summary import summarize

PLUGIN = "hydra_plugins.hydra_submitit_launcher.submitit_launcher."
KINDS = {PLUGIN + "SlurmLauncher": "slurm", PLUGIN + "LocalLauncher": "local"}
# The plugin's base keys pass to submitit unchanged; every other key gets the executor's
# prefix (slurm_partition...). These are the plugin's own rules.
BASE_KEYS = frozenset(
    {
        "submitit_folder",
        "timeout_min",
        "cpus_per_task",
        "gpus_per_node",
        "tasks_per_node",
        "mem_gb",
        "nodes",
        "name",
        "stderr_to_stdout",
    }
)
INIT_KEYS = frozenset({"max_num_timeout"})  # for the executor's constructor
# A worker only needs requeueing while the study has budget left (a requeued worker with
# nothing to do exits at once), so timeouts requeue it without a practical limit; with the
# plugin's 0, submitit would instead raise inside the running trial and fail it.
MAX_NUM_TIMEOUT = 1000
TIMEOUT_MARGIN_MIN = 10  # start-up and the last trial's end, past the study's budget
# Overrides the submitting process sets for its workers (a user's value is replaced).
WORKER_KEYS = ("hydra.sweep.dir", "hpo.worker", "hpo.wait")


def cluster_kind(target: str) -> str | None:
    """``slurm`` or ``local`` for the submitit plugin's launchers, else ``None``."""
    return KINDS.get(target)


def private_folder(home: Path) -> str:
    """Where submitit's pickles and logs go unless ``hydra.launcher.submitit_folder`` is
    given: under the user's own home (mode 0700), never the shared study directory,
    where anyone who may write there could replace a pickle (code the job then runs)."""
    folder = home / ".cache" / "lit_hpo" / "submitit"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)  # also when an earlier tool created it more open
    return str(folder / "%j")


def executor_parameters(node: dict[str, Any], kind: str, given: set[str],
                        budget_seconds: float | None, n_workers: int, folder: str,
                        per_trial: int = 1) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """The submitit executor's constructor and ``update_parameters`` arguments for the
    ``hydra.launcher`` node (pure). ``given``: the node's keys set on the command line;
    ``per_trial``: the devices (ranks) of each trial. lit_hpo's defaults, where the user
    did not set the key: ``timeout_min`` from the study's time budget (plus a margin)
    instead of 60; ``max_num_timeout`` without a practical limit (see
    :data:`MAX_NUM_TIMEOUT`); ``submitit_folder`` private (:func:`private_folder`).
    ``array_parallelism`` is at most ``n_workers``.

    Raises:
        ValueError: for a worker that is not one task on one node, or whose task has
            fewer GPUs than a trial's ranks.
    """
    node = {key: value for key, value in node.items() if key != "_target_"}
    for key in ("tasks_per_node", "nodes"):
        if node.get(key, 1) != 1:
            raise ValueError(
                f"hydra.launcher.{key}={node[key]}: each lit_hpo worker is one task on one "
                f"node (it runs one trial at a time); use hydra.launcher.{key}=1 and "
                "hpo.n_workers for more workers"
            )
    for key in ("gpus_per_node", "gpus_per_task"):
        gpus = node.get(key)
        if isinstance(gpus, int) and not isinstance(gpus, bool) and 0 < gpus < per_trial:
            raise ValueError(
                f"hydra.launcher.{key}={gpus} but each trial runs trainer.devices={per_trial} "
                f"ranks on its worker's GPUs; use hydra.launcher.{key}={per_trial} (or leave "
                f"{key} unset for trials on CPU, trainer.accelerator=cpu)"
            )
    if "timeout_min" not in given and budget_seconds is not None:
        node["timeout_min"] = math.ceil(budget_seconds / 60) + TIMEOUT_MARGIN_MIN
    if "max_num_timeout" not in given:
        node["max_num_timeout"] = MAX_NUM_TIMEOUT
    if "submitit_folder" not in given:
        node["submitit_folder"] = folder
    if "array_parallelism" in node:
        node["array_parallelism"] = min(int(node["array_parallelism"]), n_workers)
    init = {"folder": node.pop("submitit_folder")}
    init.update({f"{kind}_{key}": node.pop(key) for key in INIT_KEYS if key in node})
    params = {key if key in BASE_KEYS else f"{kind}_{key}": value
              for key, value in node.items() if value is not None}  # fmt: skip
    return init, params


def ranks_env_to_drop(environ: Mapping[str, str], per_trial: int) -> list[str]:
    """The variables a worker unsets so that Lightning starts a trial's ranks itself
    (pure). A worker is one SLURM task; Lightning, seeing ``SLURM_NTASKS``, would take
    SLURM for the one that starts the ranks (``srun``, one task per device) and refuse
    ``trainer.devices`` > 1. Without it, Lightning's ``ddp`` launcher starts them inside
    the task, as on any machine. Only for multi-device trials in a one-task job: a
    single-device trial keeps Lightning's SLURM environment, as outside a study."""
    if per_trial > 1 and environ.get("SLURM_NTASKS") == "1":
        return ["SLURM_NTASKS"]
    return []


def worker_arguments(argv: Sequence[str], study_dir: Path) -> list[str]:
    """The submitting command's arguments for a worker: the user's own, with the study
    directory fixed (a ``${now:}`` default would differ in every task) and the submitting
    process's own keys (:data:`WORKER_KEYS`) dropped."""
    own = tuple(key + "=" for key in WORKER_KEYS)
    keep = [arg for arg in argv if not arg.lstrip("+~").startswith(own)]
    return [*keep, format_override("hydra.sweep.dir", str(study_dir))]


@dataclass(frozen=True)
class ClusterWorker:
    """One array task: the user's command line, run again as worker ``i`` of the study.
    Plain data only (what submitit pickles), so the task rebuilds everything itself."""

    script: str  # absolute path of the training script
    arguments: tuple[str, ...]  # its command-line arguments (``-m`` and the overrides)
    cwd: str  # the directory the study was submitted from
    env: dict[int, dict[str, str]] = field(default_factory=dict)  # per worker (local GPUs)

    def __call__(self, worker: int) -> None:
        from lit_hpo.launcher import sigterm_interrupts

        os.chdir(self.cwd)
        os.environ.update(self.env.get(worker, {}))
        # ``++``: set even where the ``hpo`` node does not start from lit_hpo's defaults.
        sys.argv = [self.script, *self.arguments, "++" + format_override("hpo.worker", worker)]
        # SIGTERM (scancel, a node shutting down): record the attempt as interrupted, as
        # Ctrl-C would; submitit itself ignores SIGTERM.
        with sigterm_interrupts():
            runpy.run_path(self.script, run_name="__main__")

    def checkpoint(self, worker: int) -> Any:
        """Preempted or timing out (submitit's USR2 handler): requeue this worker. Its
        running attempt is recorded as interrupted when submitit's exit unwinds the trial;
        the requeued task exits at once if the study's budget is spent by then."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, worker)


@dataclass
class Submission:
    """The job array of a study's workers."""

    kind: str
    jobs: list[Any]

    @property
    def job_id(self) -> str:
        return str(self.jobs[0].job_id).split("_")[0]

    def alive(self) -> bool | str:
        """Whether a task is still queued or running, or why SLURM cannot tell now (a
        controller restarting, ``squeue`` hanging). SLURM is asked through ``squeue``:
        submitit's own job state needs ``sacct``, which clusters without accounting lack,
        and its ``done()`` never turns true for a task that died without a result."""
        if self.kind == "local":
            return not all(job.done() for job in self.jobs)
        command = ["squeue", "-h", "-j", self.job_id, "-o", "%i"]
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=30,
                                 check=False)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"{shlex.join(command)}: {err}"
        if out.returncode != 0:  # an ended job's id is soon unknown to squeue
            if "Invalid job id" in out.stderr:
                return False
            said = out.stderr.strip() or f"exit status {out.returncode}"
            return f"{shlex.join(command)}: {said}"
        return bool(out.stdout.strip())


def submit(worker: ClusterWorker, kind: str, init: dict[str, Any], params: dict[str, Any],
           n_workers: int) -> Submission:  # fmt: skip
    """Submit ``n_workers`` array tasks running ``worker`` (seconds: one ``sbatch``).

    Raises:
        ValueError: the scheduler refused the array (its message), or there is none.
    """
    import submitit

    executor = submitit.AutoExecutor(cluster=kind, **init)
    executor.update_parameters(**params)
    try:
        jobs = executor.map_array(worker, list(range(n_workers)))
    except FileNotFoundError as err:
        raise ValueError(
            f"cannot submit to SLURM here ({err}): run this on a SLURM login node, or use "
            "hydra/launcher=submitit_local to run the workers on this machine"
        ) from None
    except submitit.core.utils.FailedJobError as err:
        raise ValueError(
            f"SLURM refused the workers' job array: {str(err).strip()}\nNothing was "
            "submitted; fix the hydra.launcher settings (partition, account, qos, ...) and "
            "rerun the same command"
        ) from None
    return Submission(kind, list(jobs))


def launcher_keys(hydra_overrides: Sequence[str]) -> set[str]:
    """The ``hydra.launcher`` keys set on the command line (``hydra.overrides.hydra``)."""
    prefix = "hydra.launcher."
    keys = (override.lstrip("+~").split("=", 1)[0] for override in hydra_overrides)
    return {key.removeprefix(prefix) for key in keys if key.startswith(prefix)}


def submit_study(spec: StudySpec, study_dir: Path, kind: str, node: dict[str, Any],
                 given: set[str], cwd: str, opened: Callable[[], None],
                 wait: bool, per_trial: int = 1) -> None:  # fmt: skip
    """Open the study (running trials are left to their leases: the old array's workers
    may still run them), submit its workers as a job array, say how to follow it; with
    ``wait``, show the progress panel until every task has ended, then the summary.
    ``per_trial``: the devices (ranks) of each trial; each worker's GPUs are that many.

    Raises:
        ValueError: a launcher node lit_hpo cannot run, or a study with other settings.
    """
    import torch

    n_workers = spec.n_workers or DEFAULT_CPU_WORKERS
    init, params = executor_parameters(node, kind, given, spec.budget.max_wallclock_time,
                                       n_workers, private_folder(Path.home()),
                                       per_trial)  # fmt: skip
    gpus = visible_gpus(os.environ, torch.cuda.device_count()) if kind == "local" else []
    check_enough_gpus(gpus, per_trial)
    worker = ClusterWorker(
        script=str(Path(sys.argv[0]).absolute()),
        arguments=tuple(worker_arguments(sys.argv[1:], study_dir)),
        cwd=cwd,
        env={i: worker_env(i, gpus, per_trial) for i in range(n_workers)} if gpus else {},
    )
    client = StudyClient(study_dir, lock=spec.lock, journal=spec.journal)
    left = client.open(spec, n_workers, lose_running=False)
    opened()
    submission = submit(worker, kind, init, params, n_workers)
    where = "SLURM job array" if kind == "slurm" else "local submitit jobs"
    join = " ".join(shlex.quote(a) for a in [sys.executable, worker.script, *worker.arguments])
    still = f" (trials {', '.join(str(t.trial_id) for t in left)} still running)" if left else ""
    print(f"lit_hpo: study {study_dir}\n"
          f"lit_hpo: {spec.scheduler.settings()}, budget {spec.budget.to_json()}\n"
          f"lit_hpo: submitted {n_workers} workers as {where} {submission.job_id}{still}\n"
          f"lit_hpo: follow it: lit-hpo status {study_dir} --watch (worker logs in "
          f"{study_dir / 'workers'})\n"
          f"lit_hpo: stop it: {cancel_hint(submission)} (rerun this command to continue "
          "the study)\n"
          f"lit_hpo: one more worker, from any host that sees the study: {join} "
          "hpo.worker=<number>", flush=True)  # fmt: skip
    if wait:
        _attach(client, submission)
        summarize(study_dir, spec.journal)


def _attach(client: StudyClient, submission: Submission, poll: float = 1.0,
            warn_after: float = 300.0) -> None:  # fmt: skip
    """The progress panel until every task has ended (Ctrl-C detaches). While SLURM
    cannot say whether they have, it keeps watching and says why every ``warn_after`` s."""
    progress = make_progress(sys.stdout.isatty())
    unknown_since: float | None = None  # since when squeue has failed
    warn_at = 0.0  # when the next warning is due
    try:
        while True:
            progress.update(client.refresh(), time.time(), force_status=True)
            alive, now = submission.alive(), time.monotonic()
            if alive is False:
                break
            if alive is True:
                unknown_since = None
            elif unknown_since is None:
                unknown_since, warn_at = now, now + warn_after
            if unknown_since is not None and now >= warn_at:
                warn_at = now + warn_after
                print(f"lit_hpo: for {now - unknown_since:.0f} s SLURM could not say whether "
                      f"job {submission.job_id} still runs ({alive}); still watching. Ctrl-C "
                      f"detaches (the workers go on); {cancel_hint(submission)} stops them",
                      flush=True)  # fmt: skip
            time.sleep(poll)
        progress.update(client.refresh(), time.time(), force_status=True)
    except KeyboardInterrupt:
        print(f"lit_hpo: detached; the workers go on ({cancel_hint(submission)} stops them)",
              flush=True)  # fmt: skip
    finally:
        progress.close()


def cancel_hint(submission: Submission) -> str:
    if submission.kind == "slurm":
        return f"scancel {submission.job_id}"
    return f"kill {' '.join(str(job.job_id) for job in submission.jobs)}"
