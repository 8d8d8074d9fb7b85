"""One ``-m`` run per study: the supervisor holds an exclusive POSIX record lock
(``fcntl.lockf``) on ``<study dir>/run.lock`` for the whole run. Unlike ``flock``, it is
not inherited by forked children: workers forked from the supervisor never keep it held
after the supervisor has died.

A second run on the same study directory would take over the first run's trials and
each supervisor's cleanup would mark the other's trials lost. The lock is dropped by the
kernel when its holder dies (however it dies), so a killed run never blocks the rerun.
The file records who holds it (host, pid, start time) for the refusal message; it is
opened without following symbolic links.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

NAME = "run.lock"


class StudyBusyError(RuntimeError):
    """Another run holds the study's run lock."""


@contextlib.contextmanager
def run_lock(study_dir: Path) -> Iterator[None]:
    """Hold the study's run lock for the block.

    Raises:
        StudyBusyError: naming the host and pid of the run that holds it.
    """
    path = study_dir / NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise StudyBusyError(_refusal(study_dir, os.pread(fd, 4096, 0))) from None
        owner = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
        # Who holds it is for a second run's message only: on a full disk the run goes on
        # to its first journal write, which stops it with the reason.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(owner).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor drops the lock


def _refusal(study_dir: Path, data: bytes) -> str:
    try:
        owner = json.loads(data)
        who = f"pid {int(owner['pid'])} on host {str(owner['host'])[:100]!r}, started " + (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(owner["since"])))
        )
    except (ValueError, KeyError, TypeError, OverflowError):
        who = "another process"
    return (
        f"the study {study_dir} is already being run ({who}); a second run would take over "
        "its trials. Wait for it to end or stop it (Ctrl-C), or start a new study with "
        "hydra.sweep.dir=<another dir>. Follow it with: lit-hpo status "
        f"{study_dir} --watch"
    )
