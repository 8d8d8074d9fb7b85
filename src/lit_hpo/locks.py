"""The journal's inter-process lock.

``flock`` (the default) is an exclusive ``flock(2)`` on ``<journal>.lock``: the kernel
drops it when its holder dies, so a killed process never blocks the others. The lock
file stays open for the life of the lock object, so taking the lock is one system call
(filelock's ``FileLock`` reopens the file and resolves its path every time, which was
40 % of a report's cost). ``strict_soft`` is filelock's ``StrictSoftFileLock`` for
shared filesystems (NFS) where flock does not exclude across hosts; it never infers that
an owner died, so a killed holder blocks everyone until ``lit-hpo unlock DIR`` removes
its claim (docs/journal.md).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import time
import weakref
from types import TracebackType
from typing import Protocol

from filelock import StrictSoftFileLock, Timeout

KINDS = ("flock", "strict_soft")
# How often a waiting process retries. A flock retry is one system call; the soft lock
# polls a (possibly remote) file, so less often.
POLL_SECONDS = {"flock": 0.0005, "strict_soft": 0.01}


class Lock(Protocol):
    def __enter__(self) -> object: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Flock:
    """An exclusive flock, re-entrant within one process (and exclusive between its
    threads).

    Args:
        path: the lock file (created with ``mode`` if missing; never a symlink).
        timeout: seconds to wait before ``filelock.Timeout`` is raised.
        poll: seconds between attempts while another process holds it.
    """

    def __init__(self, path: str, timeout: float, mode: int = 0o644, poll: float = 0.0005):
        self.path, self.timeout, self.mode, self.poll = path, timeout, mode, poll
        self._fd: int | None = None
        self._pid = 0
        self._depth = 0
        self._threads = threading.RLock()
        _FLOCKS.add(self)

    def _drop_inherited(self) -> None:
        """In a forked child: close the parent's descriptor. Held open there, it would
        keep the parent's lock alive after the parent died (flock belongs to the open
        file description, which lives while any descriptor of it is open). Closing one
        descriptor of several does not release the parent's lock."""
        if self._fd is not None and self._pid != os.getpid():
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def _descriptor(self) -> int:
        # A forked child shares the parent's open file description, and flock treats
        # both as one holder: the child opens its own (never touching the inherited one).
        if self._fd is None or self._pid != os.getpid():
            flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            self._fd, self._pid = os.open(self.path, flags, self.mode), os.getpid()
            self._depth, self._threads = 0, threading.RLock()
        return self._fd

    def __enter__(self) -> Flock:
        fd = self._descriptor()
        self._threads.acquire()
        if self._depth == 0:
            try:
                self._take(fd)
            except BaseException:
                self._threads.release()
                raise
        self._depth += 1
        return self

    def _take(self, fd: int) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise Timeout(self.path) from None
                time.sleep(self.poll)
            except OSError as err:
                if err.errno in (errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK):
                    raise OSError(
                        err.errno,
                        f"this filesystem does not support flock on {self.path}; "
                        "use hpo.lock=strict_soft (docs/journal.md)",
                    ) from err
                raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()

    def __del__(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            with contextlib.suppress(OSError):
                os.close(self._fd)


# Every Flock of this process, so that a forked child (a worker forked from the -m
# process) drops the descriptors it inherited; see Flock._drop_inherited.
_FLOCKS: weakref.WeakSet[Flock] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for lock in list(_FLOCKS):
        lock._drop_inherited()


os.register_at_fork(after_in_child=_after_fork_in_child)


def make_lock(kind: str, path: str, timeout: float) -> Lock:
    """The lock of kind ``flock`` or ``strict_soft`` on ``path``."""
    if kind == "flock":
        return Flock(path, timeout, 0o644, POLL_SECONDS[kind])
    if kind == "strict_soft":
        return StrictSoftFileLock(
            path, timeout=timeout, mode=0o644, poll_interval=POLL_SECONDS[kind]
        )
    raise ValueError(f"unknown lock {kind!r}; use one of {', '.join(KINDS)}")
