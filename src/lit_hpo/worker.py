"""The worker process: claim a trial, run the task on its config, record how it ended,
repeat until the budget is spent.

A worker is a long-lived process: torch, Lightning and the data are loaded once and
reused by every trial it runs. Trials run in-process through Hydra's ``run_job``, so each
gets its own composed config, output directory (``hydra.sweep.dir/hydra.sweep.subdir``)
and log file, exactly as a stock Hydra launcher would give it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import select
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lit_hpo import checkpoints
from lit_hpo.compose import TrialComposer
from lit_hpo.context import TrialContext, trial_context
from lit_hpo.journal import JournalCorruptError, JournalWriteError
from lit_hpo.policy import METRIC_NOT_LOGGED
from lit_hpo.resolvers import register as register_resolvers
from lit_hpo.safefiles import open_append, real_directory
from lit_hpo.settings import DEFAULTS
from lit_hpo.space import config_text
from lit_hpo.state import Trial
from lit_hpo.study import Claim, StudyClient
from lit_hpo.tensorboard import write_hparams

EXIT_UNWRITABLE = 74  # EX_IOERR: the journal cannot be written (a full disk, a quota)
EXIT_CORRUPT = 65  # EX_DATAERR: a journal record cannot be replayed (see lit-hpo verify)
NO_REPORT = (
    "the trial finished without reporting {metric!r}: add lit_hpo.HPOCallback() to the "
    "Trainer's callbacks (train.py does) so that every validation epoch is reported"
)


@dataclass(frozen=True)
class TaskRef:
    """How a worker finds the task function: by module name, or by file for a script
    (``train.py`` runs as ``__main__``). Hydra's decorator is unwrapped."""

    module: str
    qualname: str
    file: str | None

    @classmethod
    def of(cls, function: Callable[..., Any]) -> TaskRef:
        module = sys.modules.get(function.__module__)
        return cls(function.__module__, function.__qualname__, getattr(module, "__file__", None))

    def resolve(self) -> Callable[..., Any]:
        if self.module == "__main__":
            # A worker (forked from the fork server, or spawned) has the parent's script
            # imported as ``__mp_main__``; reuse it rather than executing it a second time.
            module = sys.modules.get("__mp_main__")
            if module is None or getattr(module, "__file__", None) != self.file:
                if self.file is None:
                    raise RuntimeError("cannot locate the task function's script")
                spec = importlib.util.spec_from_file_location("_lit_hpo_task", self.file)
                assert spec is not None and spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
        else:
            module = importlib.import_module(self.module)
        function: Any = module
        for part in self.qualname.split("."):
            function = getattr(function, part)
        return getattr(function, "__wrapped__", function)


@dataclass
class WorkerArgs:
    """Everything a worker process needs; sent to it once, at start."""

    study_dir: str
    worker: int
    task: TaskRef
    hydra_context: Any
    master_config: Any
    base_overrides: list[str]
    singleton_state: Any  # Hydra's singletons without the OmegaConf resolvers
    env: dict[str, str] = field(default_factory=dict)
    threads: int | None = None
    log_path: str | None = None
    supervisor_pid: int | None = None  # the worker stops when this process is gone


def _redirect_output(path: str) -> None:
    real_directory(Path(path).parent)
    fd = open_append(path)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def trial_outcome(trial: Trial, metric: str) -> tuple[str, str | None, str | None]:
    """How a trial that returned normally ended: ``(status, reason, error)``."""
    if not trial.reports:
        return "failed", "no_report", NO_REPORT.format(metric=metric)
    last = trial.reports[-1]
    if last.decision == "stop":
        return "stopped", last.reason, None
    return "completed", None, None


class Heartbeat:
    """Renews the running attempt's lease from a background thread, every third of it,
    through the worker's own client (its steps are atomic among the process's threads)."""

    def __init__(self, client: StudyClient, trial_id: int, attempt: int, interval: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(client, trial_id, attempt, interval), daemon=True
        )

    def _run(self, client: StudyClient, trial_id: int, attempt: int, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                if not client.heartbeat(trial_id, attempt):
                    return
            except (JournalWriteError, JournalCorruptError):
                return  # the trial's own next report meets the same error and stops the worker

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_trial(
    args: WorkerArgs,
    client: StudyClient,
    task: Callable[..., Any],
    claim: Claim,
    compose: TrialComposer,
) -> None:
    """Compose the trial's config, run the task in the trial's directory, record the end.

    Raises:
        BaseException: Ctrl-C (``KeyboardInterrupt``, or the ``SystemExit`` Lightning's
            interrupt handler raises) after recording the attempt as lost (``interrupted``),
            so that a rerun resumes it.
    """
    trial = claim.trial
    lease = float(client.state.session_settings.get("lease_seconds", DEFAULTS.lease_seconds))
    try:
        reported = [(r.epoch, r.attempt) for r in trial.reports]
        resume = checkpoints.resume_point(args.study_dir, trial.trial_id, reported)
    except FileNotFoundError as err:
        client.end(trial.trial_id, "failed", "no_checkpoint", str(err), claim.attempt)
        return
    try:
        with Heartbeat(client, trial.trial_id, claim.attempt, lease / 3):
            result = _run_job(args, client, task, claim, compose, resume[1] if resume else None)
    except BaseException:
        client.lose(trial.trial_id, claim.attempt, "interrupted")
        raise
    header = client.header
    current = client.refresh().trials[trial.trial_id]
    if current.status != "running" or current.attempt != claim.attempt:
        return  # this attempt was declared lost meanwhile; the trial's next attempt ends it
    if result.error is not None:
        reason = METRIC_NOT_LOGGED if result.kind == "MetricNotLoggedError" else "error"
        client.end(trial.trial_id, "failed", reason, result.error, claim.attempt)
        print(result.error, file=sys.stderr, flush=True)
    elif current.last_decision == "pause":
        client.pause(trial.trial_id, claim.attempt)
        return  # keep its checkpoints: it may be promoted
    else:
        client.end(trial.trial_id, *trial_outcome(current, header["metric"]), claim.attempt)
    state = client.refresh()
    checkpoints.prune(args.study_dir, trial.trial_id, checkpoints.KEEP_FINISHED)
    write_hparams(result.output_dir, state.trials[trial.trial_id], list(header["space"]),
                  header["metric"], state.sign)  # fmt: skip


@contextmanager
def _trial_process_state() -> Iterator[None]:
    """Leave the worker as the trial found it. Lightning's ``ddp`` launcher sets
    ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR/PORT``... in this process's environment
    and keeps the process group; the next trial would then take its ranks as already
    launched and wait on the old group. The environment is restored and the group
    destroyed after each trial."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


@dataclass(frozen=True)
class _JobResult:
    output_dir: Path  # the trial's directory
    error: str | None  # the task's traceback when it raised
    kind: str | None = None  # the exception's class name


def _run_job(
    args: WorkerArgs,
    client: StudyClient,
    task: Callable[..., Any],
    claim: Claim,
    compose: TrialComposer,
    resume_from: Path | None,
) -> _JobResult:
    from hydra.core.utils import JobStatus, run_job
    from omegaconf import open_dict

    trial = claim.trial
    config = compose(claim.config)
    with open_dict(config):
        config.hydra.job.id = f"trial_{trial.trial_id}"
        config.hydra.job.num = trial.trial_id
    trial_dir = Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)
    if claim.attempt == 0:
        # A new trial gets a new directory: mkdir fails rather than mix two trials' files.
        trial_dir.parent.mkdir(parents=True, exist_ok=True)
        trial_dir.mkdir(mode=0o755)
    else:  # resumed: its directory must still be this user's own, not a planted link
        real_directory(trial_dir, owned=True)
    context = TrialContext(
        args.study_dir,
        trial.trial_id,
        config_text(trial.config, separator=","),  # the logger's run name
        claim.attempt,
        str(resume_from) if resume_from else None,
    )
    with _trial_process_state(), trial_context(context, client=client):
        result = run_job(
            hydra_context=args.hydra_context,
            task_function=task,
            config=config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
    output_dir = Path(str(config.hydra.runtime.output_dir))
    if result.status != JobStatus.FAILED:
        return _JobResult(output_dir, None)
    try:
        result.return_value  # noqa: B018 - the property re-raises the task's exception
    except (JournalWriteError, JournalCorruptError):
        raise  # not the trial's fault: the study cannot go on (see worker_main)
    except Exception as error:
        text = "".join(traceback.format_exception(error))
        return _JobResult(output_dir, text, type(error).__name__)
    return _JobResult(output_dir, "the task failed without an exception")


class SupervisorWatch:
    """Stop this worker when its supervisor (the ``-m`` process) dies, however it dies
    (SIGKILL included), so that no worker outlives its run and joins the next one.

    A daemon thread waits on the supervisor's pidfd (immune to pid reuse; polling the
    pid once a second where pidfds are missing) and then sends this process SIGINT,
    which ends the running trial like Ctrl-C: recorded as interrupted, resumable. The
    worker loop also asks :attr:`alive` before each claim. (Workers are children of the
    fork server, which outlives the supervisor while they run, so the kernel's
    parent-death signal would not fire.)
    """

    def __init__(self, pid: int | None, then: signal.Signals = signal.SIGINT) -> None:
        self.pid = pid
        self._then = then  # SIGKILL for an extra DDP rank: it has nothing to record
        self._dead = threading.Event()
        if pid is None:
            return
        try:
            fd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:
            self._dead.set()
            return
        except (AttributeError, OSError):  # no pidfds here: poll
            fd = None
        threading.Thread(target=self._watch, args=(fd,), daemon=True).start()

    def _watch(self, fd: int | None) -> None:
        if fd is not None:
            select.select([fd], [], [])  # readable once the process has exited
        else:
            while checkpoints.pid_alive(self.pid or 0):
                time.sleep(1.0)
        self._dead.set()
        print(f"lit_hpo: pid {self.pid}, which this process serves, is gone; stopping",
              flush=True)  # fmt: skip
        os.kill(os.getpid(), self._then)

    @property
    def alive(self) -> bool:
        return not self._dead.is_set()


def worker_main(args: WorkerArgs) -> None:
    """Entry point of a worker process."""
    watch = SupervisorWatch(args.supervisor_pid)
    if args.log_path:
        _redirect_output(args.log_path)
    os.environ.update(args.env)
    from hydra.core.singleton import Singleton
    from hydra.core.utils import setup_globals

    # OmegaConf resolvers are closures that plain pickle cannot send; this process
    # registers its own (Hydra's here, the task script's when it was imported).
    setup_globals()
    register_resolvers()  # ${lit_hpo.resume_from:}
    resolvers = Singleton.get_state()["omegaconf_resolvers"]
    Singleton.set_state({**args.singleton_state, "omegaconf_resolvers": resolvers})
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    task = args.task.resolve()
    print(
        f"worker {args.worker}: pid {os.getpid()}, CUDA_VISIBLE_DEVICES="
        f"{os.environ.get('CUDA_VISIBLE_DEVICES', '')!r}, torch threads {torch.get_num_threads()}",
        flush=True,
    )
    client = StudyClient(args.study_dir)
    compose = TrialComposer(args.hydra_context.config_loader, args.master_config,
                            args.base_overrides)  # fmt: skip
    try:
        while watch.alive and (claim := client.claim(args.worker)) is not None:
            what = f"resumes after epoch {claim.from_epoch}" if claim.attempt else "starts"
            print(f"worker {args.worker}: trial {claim.trial.trial_id} attempt {claim.attempt} "
                  f"{what}: {claim.config}", flush=True)  # fmt: skip
            run_trial(args, client, task, claim, compose)
    except (JournalWriteError, JournalCorruptError) as error:
        # Its trial stays running in the journal: the rerun resumes it from its checkpoint.
        print(f"worker {args.worker}: {error}", flush=True)
        sys.exit(EXIT_UNWRITABLE if isinstance(error, JournalWriteError) else EXIT_CORRUPT)
