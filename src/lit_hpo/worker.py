"""The worker process: claim a trial, run its job, record how it ended, repeat until the
budget is spent.

A worker is a long-lived process: torch, Lightning and the data are loaded once and
reused by every trial it runs. What a trial's job is comes from a :class:`Job`: a Hydra
job for ``python train.py -m`` (:mod:`lit_hpo.hydra_job`), a Python function for
:func:`lit_hpo.tune` (:mod:`lit_hpo.function_job`). The loop, the lease, the outcome and
the clean-up are the same for both.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from lit_hpo import checkpoints
from lit_hpo.context import TrialContext
from lit_hpo.journal import JournalCorruptError, JournalWriteError
from lit_hpo.policy import BAD_REPORT, METRIC_NOT_LOGGED, NO_REPORT
from lit_hpo.records import INTERRUPTED, Action, Status
from lit_hpo.safefiles import open_append, real_directory
from lit_hpo.settings import DEFAULTS
from lit_hpo.space import config_text
from lit_hpo.state import Trial
from lit_hpo.study import Claim, StudyClient
from lit_hpo.tensorboard import write_hparams

EXIT_UNWRITABLE = 74  # EX_IOERR: the journal cannot be written (a full disk, a quota)
EXIT_CORRUPT = 65  # EX_DATAERR: a journal record cannot be replayed (see lit-hpo verify)
EXIT_NO_TASK = 78  # EX_CONFIG: the worker cannot load the training function
NO_REPORT_MESSAGE = (
    "the trial finished without reporting {metric!r}: add lit_hpo.HPOCallback() to the "
    "Trainer's callbacks (train.py does), or call lit_hpo.report(epoch=..., {metric}=...) "
    "after every epoch, so that every validation epoch is reported"
)


# Exceptions that show the study's setup is wrong, not the trial (see policy.misconfigured).
_REASONS = {"MetricNotLoggedError": METRIC_NOT_LOGGED, "ReportError": BAD_REPORT}


@dataclass(frozen=True)
class JobResult:
    output_dir: Path  # the trial's directory
    error: str | None  # the task's traceback when it raised
    kind: str | None = None  # the exception's class name


# Runs one claimed trial (from ``resume_from`` when given) and says how it went.
Runner = Callable[[StudyClient, Claim, "Path | None"], JobResult]


class Job(Protocol):
    """What a worker runs for each trial; sent to the worker once, at start."""

    def describe(self) -> str:
        """The training function, for messages (``train from /path/train.py``)."""
        ...

    def load(self) -> Runner:
        """In the worker process: import what the trials need, once.

        Raises:
            Exception: when the training function cannot be loaded (the study stops).
        """
        ...


@dataclass
class WorkerArgs:
    """Everything a worker process needs; sent to it once, at start."""

    study_dir: str
    worker: int
    job: Job
    env: dict[str, str] = field(default_factory=dict)
    threads: int | None = None
    log_path: str | None = None
    supervisor_pid: int | None = None  # the worker stops when this process is gone
    journal: str | None = None  # hpo.journal: the study's PostgreSQL URL, if any


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
        return Status.FAILED, NO_REPORT, NO_REPORT_MESSAGE.format(metric=metric)
    last = trial.reports[-1]
    if last.decision == Action.STOP:
        return Status.STOPPED, last.reason, None
    return Status.COMPLETED, None, None


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


def run_trial(args: WorkerArgs, client: StudyClient, run: Runner, claim: Claim) -> None:
    """Run the claimed trial's job and record how it ended.

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
        client.end(trial.trial_id, Status.FAILED, "no_checkpoint", str(err), claim.attempt)
        return
    try:
        with Heartbeat(client, trial.trial_id, claim.attempt, lease / 3):
            result = run(client, claim, resume[1] if resume else None)
    except BaseException:
        record_interrupted(client, trial.trial_id, claim.attempt)
        raise
    header = client.header
    current = client.refresh().trials[trial.trial_id]
    if current.status != Status.RUNNING or current.attempt != claim.attempt:
        return  # this attempt was declared lost meanwhile; the trial's next attempt ends it
    if result.error is not None:
        reason = _REASONS.get(result.kind or "", "error")
        client.end(trial.trial_id, Status.FAILED, reason, result.error, claim.attempt)
        print(result.error, file=sys.stderr, flush=True)
    elif current.last_decision == Action.PAUSE:
        client.pause(trial.trial_id, claim.attempt)
        return  # keep its checkpoints: it may be promoted
    else:
        client.end(trial.trial_id, *trial_outcome(current, header["metric"]), claim.attempt)
    state = client.refresh()
    checkpoints.prune(args.study_dir, trial.trial_id, checkpoints.KEEP_FINISHED)
    write_hparams(result.output_dir, state.trials[trial.trial_id], list(header["space"]),
                  header["metric"], state.sign)  # fmt: skip


def record_interrupted(client: StudyClient, trial_id: int, attempt: int) -> None:
    """Record an interrupted attempt as lost, so that the next free worker resumes it.

    SLURM follows a preemption's USR2 with SIGTERM when it requeues the job. Raised inside
    this record's write, it left the attempt running until its lease expired; raised
    while the interrupts are being held off (before they are), it left the record
    unwritten. Such an interrupt only starts the record again (``lose`` of an attempt
    already lost is a no-op), a few times at most."""
    for _ in range(5):
        try:
            with signals_deferred():
                client.lose(trial_id, attempt, INTERRUPTED)
            return
        except (KeyboardInterrupt, SystemExit):  # SIGINT, SIGTERM (Terminated), USR2
            continue


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold off interrupts (SIGINT, SIGTERM, SIGUSR2) in the main thread for the block;
    one that lands while they are being held off leaves the handlers as they were."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    names = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2)
    previous = {name: signal.getsignal(name) for name in names}
    try:
        for name in names:
            signal.signal(name, signal.SIG_IGN)
        yield
    finally:
        for name, handler in previous.items():
            if handler is not None:  # None: a handler not installed from Python
                signal.signal(name, handler)


def open_trial(trial_dir: Path, client: StudyClient, claim: Claim,
               resume_from: Path | None) -> TrialContext:  # fmt: skip
    """Create a new trial's directory (``mkdir`` fails rather than mix two trials' files)
    or check that a resumed one's is still this user's own real directory, not a planted
    link; and the trial's context for the job."""
    if claim.attempt == 0:
        trial_dir.parent.mkdir(parents=True, exist_ok=True)
        trial_dir.mkdir(mode=0o755)
    else:
        real_directory(trial_dir, owned=True)
    return TrialContext(
        str(client.directory),
        claim.trial.trial_id,
        config_text(claim.trial.config, separator=","),  # a run name for loggers
        claim.attempt,
        str(resume_from) if resume_from else None,
        client.journal_url,
    )


@contextmanager
def trial_process_state() -> Iterator[None]:
    """Leave the worker as the trial found it: its environment and working directory.
    Lightning's ``ddp`` launcher sets ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR/PORT``...
    in this process's environment and keeps the process group; the next trial would then
    take its ranks as already launched and wait on the old group. The environment is
    restored and the group destroyed after each trial."""
    saved, cwd = dict(os.environ), os.getcwd()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        os.chdir(cwd)
        torch = sys.modules.get("torch")  # a trial that never imported torch has no group
        if torch is not None:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()


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
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        run = args.job.load()
    except Exception as error:
        print(f"worker {args.worker}: cannot load {args.job.describe()}: "
              f"{type(error).__name__}: {error}", flush=True)  # fmt: skip
        sys.exit(EXIT_NO_TASK)
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    job = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    where = f" (SLURM job {job[0]}_{job[1]})" if all(job) else ""
    print(f"worker {args.worker}: pid {os.getpid()} on {socket.gethostname()}{where}, "
          f"CUDA_VISIBLE_DEVICES={gpus!r}, torch threads {torch.get_num_threads()}",
          flush=True)  # fmt: skip
    client = StudyClient(args.study_dir, journal=args.journal)
    try:
        while watch.alive and (claim := client.claim(args.worker)) is not None:
            what = f"resumes after epoch {claim.from_epoch}" if claim.attempt else "starts"
            print(f"worker {args.worker}: trial {claim.trial.trial_id} attempt {claim.attempt} "
                  f"{what}: {claim.config}", flush=True)  # fmt: skip
            run_trial(args, client, run, claim)
    except (JournalWriteError, JournalCorruptError) as error:
        # Its trial stays running in the journal: the rerun resumes it from its checkpoint.
        print(f"worker {args.worker}: {error}", flush=True)
        sys.exit(EXIT_UNWRITABLE if isinstance(error, JournalWriteError) else EXIT_CORRUPT)
