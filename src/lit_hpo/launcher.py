"""Start the worker processes and supervise them until the budget is spent.

The supervisor is not a controller: it never decides what a worker runs (the journal
does). It starts ``n_workers`` processes, prints progress from the journal, and cleans
up after a worker that dies: the attempt that worker was running is marked lost (a free
worker resumes the trial from its checkpoint), and a replacement worker starts if there
is budget left.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.process import BaseProcess
from pathlib import Path

from lit_hpo.devices import default_n_workers, threads_per_worker, visible_gpus, worker_env
from lit_hpo.journal import JournalCorruptError, JournalWriteError
from lit_hpo.policy import may_start_trial
from lit_hpo.progress import LiveProgress, Progress, make_progress
from lit_hpo.records import INTERRUPTED
from lit_hpo.safefiles import open_regular, open_to_others
from lit_hpo.spec import StudySpec
from lit_hpo.study import StudyClient
from lit_hpo.worker import (
    EXIT_CORRUPT,
    EXIT_NO_TASK,
    EXIT_UNWRITABLE,
    Job,
    WorkerArgs,
    worker_main,
)

SHUTDOWN_GRACE = 30.0  # seconds workers get to record an interrupted trial after Ctrl-C
HURRIED_GRACE = 1.0  # after a second Ctrl-C: enough to finish an append (milliseconds)


def run_study(
    study_dir: Path,
    spec: StudySpec,
    job: Job,
    per_trial: int = 1,
    opened: Callable[[], None] | None = None,
) -> None:
    """Open (or continue) the study in ``study_dir`` and run its workers until the budget
    is spent: what ``python train.py -m`` and :func:`lit_hpo.tune` share.

    Args:
        per_trial: devices (ranks) each trial uses; workers get groups of that many GPUs.
        opened: called once the journal is open, before any worker starts.

    Raises:
        ValueError: settings that cannot run (a trial needing more GPUs than visible, a
            journal written for other settings), before anything starts.
        KeyboardInterrupt: Ctrl-C (:class:`Terminated` for SIGTERM), after the workers
            recorded their trials as interrupted.
        TaskLoadError, WorkersKeepDyingError, JournalWriteError, JournalCorruptError: the
            study stopped; a rerun continues it once the cause is fixed.
    """
    import torch

    gpus = visible_gpus(os.environ, torch.cuda.device_count())
    cpus = os.cpu_count() or 1
    n_workers = spec.n_workers or default_n_workers(gpus, cpus, per_trial)
    threads = None if gpus else threads_per_worker(n_workers * per_trial, cpus)
    client = StudyClient(study_dir, lock=spec.lock, journal=spec.journal)
    try:
        interrupted = client.open(spec, n_workers)
    except JournalCorruptError as error:
        raise ValueError(str(error)) from None
    if opened is not None:
        opened()
    for path in (study_dir, study_dir / "journal.jsonl")[: 1 if spec.journal else 2]:
        if open_to_others(path):
            print(f"lit_hpo: warning: {path} is writable by every user; anyone on this "
                  f"machine can then tamper with the study (chmod o-w {path})",
                  file=sys.stderr, flush=True)  # fmt: skip
    devices = f"GPUs {', '.join(gpus)}" if gpus else f"CPU, {threads} threads each"
    print(
        f"lit_hpo: study {study_dir}\n"
        f"lit_hpo: {spec.scheduler.settings()}, {n_workers} workers ({devices}), budget "
        f"{spec.budget.to_json()}",
        flush=True,
    )
    if interrupted:
        ids = ", ".join(str(t.trial_id) for t in interrupted)
        print(f"lit_hpo: the previous run left trials {ids} running; they resume from their "
              "checkpoints", flush=True)  # fmt: skip

    def make_args(worker: int) -> WorkerArgs:
        return WorkerArgs(
            study_dir=str(study_dir),
            worker=worker,
            job=job,
            env=worker_env(worker, gpus, per_trial),
            threads=threads,
            log_path=str(study_dir / "workers" / f"worker_{worker}.log"),
            supervisor_pid=os.getpid(),
            journal=spec.journal,
        )

    progress = make_progress(sys.stdout.isatty())
    Supervisor(client, make_args, n_workers, progress, gpus=bool(gpus)).run()


def worker_context(gpus: bool) -> multiprocessing.context.BaseContext:
    """How a worker process starts.

    Forked from this process, when that is safe: no GPU is in use and no other Python
    thread runs in this process (nor has the ``-m`` process run a torch operation). It has
    imported the training script, torch and Lightning already, so a worker is ready at
    once. This is the ``-m`` process on a CPU machine before the live panel starts.

    Otherwise from a fork server, a clean single-threaded process that imports the
    training script, torch and Lightning once (~4 s here) and never touches CUDA: with
    GPUs (this process asked CUDA how many there are, and CUDA does not survive a fork),
    in a notebook (its kernel runs threads), and for a worker replaced while the live
    panel's thread runs. Each worker sets its own ``CUDA_VISIBLE_DEVICES``.
    """
    if not gpus and single_threaded():
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", "torch", "lightning"])
    return context


def single_threaded() -> bool:
    """Whether no Python thread but this one runs (the live panel, a notebook kernel's
    threads, a user's). Native pools that importing numpy or scipy starts (OpenBLAS's)
    are not counted: the fork server has the same ones, and they survive a fork."""
    return threading.active_count() == 1


class Terminated(KeyboardInterrupt):
    """SIGTERM (what ``kill``, ``timeout`` and SLURM send first), handled like Ctrl-C;
    unlike a terminal's Ctrl-C it reached this process only, not the workers."""


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` in the main thread for the block, so that a
    terminated run shuts down like an interrupted one: workers record their trials as
    interrupted (resumable), the table is printed, and the exit status is 143."""

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough: let shutdown finish
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class WorkersKeepDyingError(RuntimeError):
    """Workers crashed more often than the restart limit allows."""


class TaskLoadError(RuntimeError):
    """A worker cannot import the training function; no trial can run."""


class Supervisor:
    """Args:
    client: the study (already opened with :meth:`StudyClient.open`).
    make_args: the :class:`WorkerArgs` of worker ``i``.
    n_workers: how many workers run at once.
    progress: where progress goes.
    max_restarts: how many crashed workers are replaced before giving up
        (default: ``3 * n_workers``).
    poll: seconds between checks.
    gpus: whether workers use GPUs (see :func:`worker_context`).
    """

    def __init__(
        self,
        client: StudyClient,
        make_args: Callable[[int], WorkerArgs],
        n_workers: int,
        progress: Progress | LiveProgress | None = None,
        max_restarts: int | None = None,
        poll: float = 0.5,
        gpus: bool = False,
    ) -> None:
        self.client = client
        self.make_args = make_args
        self.n_workers = n_workers
        self.progress = progress or Progress()
        self.max_restarts = 3 * n_workers if max_restarts is None else max_restarts
        self.poll = poll
        self.restarts = 0
        self.gpus = gpus

    def _start(self, worker: int) -> BaseProcess:
        process = worker_context(self.gpus).Process(
            target=worker_main, args=(self.make_args(worker),), name=f"lit_hpo-worker-{worker}"
        )
        process.start()
        return process

    def _bury(self, process: BaseProcess, reason: str = "worker_died") -> None:
        """The attempt a dead worker was running is lost: a free worker resumes it.
        Matched by host and pid, so a trial of another run's worker (on this machine or
        on a cluster's) is never touched."""
        for trial in self.client.refresh().running():
            here = trial.host in (None, self.client.host)
            if here and trial.pid is not None and trial.pid == process.pid:
                self.client.lose(trial.trial_id, trial.attempt, reason)

    def run(self) -> None:
        """Run until every worker has exited because the budget is spent.

        Raises:
            KeyboardInterrupt: after a clean shutdown on Ctrl-C.
            WorkersKeepDyingError: when crashed workers exceed ``max_restarts``.
        """
        processes = {worker: self._start(worker) for worker in range(self.n_workers)}
        try:
            while processes:
                time.sleep(self.poll)
                self.progress.update(self.client.refresh(), time.time())
                for worker, process in list(processes.items()):
                    if process.exitcode is None:
                        continue
                    del processes[worker]
                    if process.exitcode == EXIT_UNWRITABLE:
                        raise JournalWriteError(None, _last_line(self.make_args(worker).log_path))
                    if process.exitcode == EXIT_CORRUPT:
                        raise JournalCorruptError(_last_line(self.make_args(worker).log_path), 0)
                    if process.exitcode == EXIT_NO_TASK:
                        raise TaskLoadError(
                            f"{_last_line(self.make_args(worker).log_path)}\nWorkers import "
                            "the training function by its module: make that module importable "
                            "from the study's working directory (install your package, or run "
                            "from its directory), or define the function in the script or "
                            "notebook that starts the study."
                        )
                    self._bury(process)
                    if process.exitcode == 0:
                        continue
                    state = self.client.refresh()
                    if not may_start_trial(state, time.time(), resuming=bool(state.pending())):
                        continue
                    if self.restarts >= self.max_restarts:
                        raise WorkersKeepDyingError(
                            f"{self.restarts} workers crashed and were replaced; giving up. "
                            f"See the worker logs in {self.client.directory / 'workers'}."
                        )
                    self.restarts += 1
                    self.progress.emit(
                        f"worker {worker} exited with code {process.exitcode}; starting a new one"
                    )
                    processes[worker] = self._start(worker)
        except BaseException as error:
            self._shutdown(processes, signalled=not isinstance(error, Terminated))
            raise
        finally:
            with contextlib.suppress(JournalCorruptError):  # the caller reports it
                self.progress.update(self.client.refresh(), time.time(), force_status=True)
            self.progress.close()

    def _shutdown(self, processes: dict[int, BaseProcess], signalled: bool = True) -> None:
        """Let workers record their interrupted trials, then make sure they are gone.

        A Ctrl-C in a terminal reaches the workers too (same process group, so
        ``signalled``); give them a moment to exit on their own before interrupting the
        rest, so that a second interrupt does not land while they write their last record.
        Another Ctrl-C meanwhile cuts the wait short: the workers left get a moment to
        finish a record they may be writing (a worker killed holding a ``strict_soft``
        lock would leave it held), then are killed, and this process records their
        trials as interrupted (resumable) itself.
        """
        alive = sum(process.exitcode is None for process in processes.values())
        if alive:
            self.progress.emit(f"lit_hpo: stopping {alive} workers: each records its trial "
                               "as interrupted (a Ctrl-C stops them at once)")  # fmt: skip
        with _hurried() as hurry:
            _join_all(processes, 2.0 if signalled else 0.0, hurry)
            for process in processes.values():
                if process.exitcode is None and process.pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(process.pid, signal.SIGINT)
            _join_all(processes, SHUTDOWN_GRACE, hurry)
            if hurry.is_set():  # a record being written under the lock gets to finish
                _join_all(processes, HURRIED_GRACE, threading.Event())
            for process in processes.values():
                if process.exitcode is None:
                    process.kill()
                    process.join()
                # A full disk or a bad record: the rerun (after the fix) resumes the trial.
                with contextlib.suppress(JournalWriteError, JournalCorruptError):
                    self._bury(process, INTERRUPTED)


def _join_all(processes: dict[int, BaseProcess], seconds: float, hurry: threading.Event) -> None:
    """Wait until every process has exited, ``seconds`` have passed, or ``hurry`` is set."""
    deadline = time.monotonic() + seconds
    for process in processes.values():
        while process.exitcode is None and not hurry.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            process.join(min(left, 0.05))


@contextlib.contextmanager
def _hurried() -> Iterator[threading.Event]:
    """An event a Ctrl-C sets for the block (in the main thread: signals land there),
    instead of raising ``KeyboardInterrupt`` into the shutdown it would cut off."""
    hurry = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield hurry
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: hurry.set())
    try:
        yield hurry
    finally:
        signal.signal(signal.SIGINT, previous)


def _last_line(path: str | None) -> str:
    """The last line a worker wrote to its log (its reason for stopping)."""
    lines: list[str] = []
    # never through a link planted in the study directory, nor from a FIFO
    with contextlib.suppress(OSError), open_regular(path or "", "a worker's log") as file:
        if file is not None:
            file.seek(max(0, os.fstat(file.fileno()).st_size - 4096))
            lines = file.read().decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else "a worker could not write to the journal"
