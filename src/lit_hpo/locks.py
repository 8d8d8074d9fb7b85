"""The journal's inter-process lock.

``flock`` (the default) is an exclusive ``flock(2)`` on ``<journal>.lock``: the kernel
drops it when its holder dies, so a killed process never blocks the others. The lock
file stays open for the life of the lock object, so taking a free lock is one system
call (filelock's ``FileLock`` reopens the file and resolves its path every time, which
was 40 % of a report's cost). A process that finds it taken waits in the kernel's queue
(a blocking ``flock`` on a thread of its own, so the timeout still holds) and is woken
when it is released: polling let a process that releases and retakes the lock at once
win it again and again, and 1 % of reports waited 15-20 ms with 4 busy processes
(``benchmarks/journal.py``), against about 3 ms queued.

``strict_soft`` is filelock's ``StrictSoftFileLock`` for shared filesystems (NFS) where
flock does not exclude across hosts; it never infers that an owner died, so a killed
holder blocks everyone until ``lit-hpo unlock DIR`` removes its claim (docs/journal.md)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import weakref
from types import TracebackType
from typing import Protocol

from filelock import StrictSoftFileLock, Timeout

KINDS = ("flock", "strict_soft")
# How often a waiting process retries the soft lock, which polls a (possibly remote)
# file. (A flock waits in the kernel's queue instead.)
POLL_SECONDS = {"strict_soft": 0.01}


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
    """

    def __init__(self, path: str, timeout: float, mode: int = 0o644) -> None:
        self.path, self.timeout, self.mode = path, timeout, mode
        self._fd: int | None = None
        self._pid = 0
        self._depth = 0
        self._threads = threading.RLock()
        self._waits: set[_Wait] = set()  # waits whose thread may still hold a descriptor
        _FLOCKS.add(self)

    def _drop_inherited(self) -> None:
        """In a forked child: close the parent's descriptors (its own, and those of
        waits it gave up on). Held open there, one would keep the parent's lock alive
        after the parent died (flock belongs to the open file description, which lives
        while any descriptor of it is open). Closing one descriptor of several does not
        release the parent's lock."""
        if self._pid != os.getpid():
            for fd in [self._fd, *(wait.fd for wait in self._waits)]:
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._fd, self._waits = None, set()

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.open(self.path, flags, self.mode)

    def _descriptor(self) -> int:
        # A forked child shares the parent's open file description, and flock treats
        # both as one holder: the child opens its own (never touching the inherited one).
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = self._open(), os.getpid()
            self._depth, self._threads, self._waits = 0, threading.RLock(), set()
        return self._fd

    def __enter__(self) -> Flock:
        fd = self._descriptor()
        self._threads.acquire()
        if self._depth == 0:
            try:
                self._fd = self._take(fd)
            except BaseException:
                self._threads.release()
                raise
        self._depth += 1
        return self

    def _take(self, fd: int) -> int:
        """Take the lock; return the descriptor that holds it."""
        try:
            _flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, self.path)
            return fd  # it was free: one system call
        except BlockingIOError:
            pass
        wait = _Wait(self._open(), self.path)
        # Listed until it succeeds (for forked children to close): one given up on (a
        # timeout, Ctrl-C) stays listed while its thread still waits, then lets go.
        self._waits = {w for w in self._waits if not w.over} | {wait}
        if not wait.wait(self.timeout):
            raise Timeout(self.path)
        self._waits.discard(wait)
        os.close(fd)  # this one holds nothing; the wait's descriptor holds the lock
        return wait.fd

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


def _flock(fd: int, operation: int, path: str) -> None:
    try:
        fcntl.flock(fd, operation)
    except OSError as err:
        if err.errno in (errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK):
            raise OSError(
                err.errno,
                f"this filesystem does not support flock on {path}; "
                "use hpo.lock=strict_soft (docs/journal.md)",
            ) from err
        raise


class _Wait:
    """A blocking flock on a descriptor of its own, on a daemon thread: woken by the
    kernel when the lock is released, while the caller waits with a timeout. A wait
    given up on (a timeout, Ctrl-C) releases the lock itself if it gets it later."""

    def __init__(self, fd: int, path: str) -> None:
        self.fd, self.path = fd, path
        self.over = False  # the descriptor is closed (after a failure, or let go)
        self._got = threading.Event()
        self._abandoned = False
        self._error: BaseException | None = None
        self._state = threading.Lock()
        threading.Thread(target=self._run, name="lit_hpo-flock-wait", daemon=True).start()

    def _run(self) -> None:
        try:
            _flock(self.fd, fcntl.LOCK_EX, self.path)
        except BaseException as err:  # handed to the caller
            self._error = err
        with self._state:
            if not self._abandoned:
                self._got.set()
                return
        self._release()

    def _release(self) -> None:
        if self._error is None:  # explicitly: a forked child may share the descriptor
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.over = True

    def _settle(self) -> bool:
        """Whether the thread is through (lock taken, or an error); if not, give up."""
        with self._state:
            if not self._got.is_set():
                self._abandoned = True
            return self._got.is_set()

    def wait(self, timeout: float) -> bool:
        """Whether the lock was taken within ``timeout`` s (then ``fd`` holds it)."""
        try:
            self._got.wait(timeout)
        except BaseException:  # interrupted while waiting (Ctrl-C)
            if self._settle():
                self._release()
            raise
        if not self._settle():
            return False
        if self._error is not None:
            self._release()
            raise self._error
        return True


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
        return Flock(path, timeout, 0o644)
    if kind == "strict_soft":
        return StrictSoftFileLock(
            path, timeout=timeout, mode=0o644, poll_interval=POLL_SECONDS[kind]
        )
    raise ValueError(f"unknown lock {kind!r}; use one of {', '.join(KINDS)}")
