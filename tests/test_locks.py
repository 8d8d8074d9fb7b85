"""The journal's flock: exclusion between processes, threads and forked children,
re-entrancy, timeouts, and release when the holder is killed."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from filelock import Timeout

from lit_hpo.locks import Flock, make_lock

HOLDER = """
import sys, time
from lit_hpo.locks import Flock
lock = Flock(sys.argv[1], timeout=5)
with lock:
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(path: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_another_process_times_out_then_gets_it_when_the_holder_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "j.lock"
    holder = _holder(path)
    start = time.monotonic()
    with pytest.raises(Timeout), Flock(str(path), timeout=0.3):
        pass
    assert 0.3 <= time.monotonic() - start < 30  # waited its timeout, then gave up (no hang)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with Flock(str(path), timeout=5):  # the kernel released the dead holder's lock
        pass


def _child_tries(path: str, lock: Flock, queue: multiprocessing.Queue) -> None:
    try:
        with lock:  # the copy inherited from the parent, which holds it
            queue.put("acquired")
    except Timeout:
        queue.put("timeout")


def test_a_forked_child_does_not_inherit_the_parents_hold(tmp_path: Path) -> None:
    """flock treats an inherited descriptor as the same holder; the child must open its own."""
    path = str(tmp_path / "j.lock")
    lock = Flock(path, timeout=0.3)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    with lock:
        child = context.Process(target=_child_tries, args=(path, lock, queue))
        child.start()
        assert queue.get(timeout=10) == "timeout"
        child.join()
    lock.timeout = 5
    child = context.Process(target=_child_tries, args=(path, lock, queue))
    child.start()
    assert queue.get(timeout=10) == "acquired"
    child.join()
    with lock:  # the parent's hold is intact after the children closed theirs
        pass


FORKING_HOLDER = """
import os, sys, time
from lit_hpo.locks import Flock
lock = Flock(sys.argv[1], timeout=5)
with lock:
    child = os.fork()
    if child == 0:  # a worker forked while the lock is held, outliving its parent
        time.sleep(30)
        os._exit(0)
    print(child, flush=True)
    time.sleep(60)
"""


def test_a_killed_holders_lock_is_free_while_its_forked_child_lives(tmp_path: Path) -> None:
    """The child's inherited descriptor must not keep the dead parent's lock alive."""
    path = tmp_path / "j.lock"
    holder = subprocess.Popen([sys.executable, "-c", FORKING_HOLDER, str(path)],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout is not None
    child = int(holder.stdout.readline())
    try:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        os.kill(child, 0)  # still alive
        with Flock(str(path), timeout=3):
            pass
    finally:
        os.kill(child, signal.SIGKILL)


GIVES_UP = """
import os, sys, time
from filelock import Timeout
from lit_hpo.locks import Flock
try:
    with Flock(sys.argv[1], timeout=0.3):
        print("acquired", flush=True)
except Timeout:
    print("timed out", flush=True)
child = os.fork()  # a worker forked while the wait given up on still waits
if child == 0:
    time.sleep(60)
    os._exit(0)
print(child, flush=True)
time.sleep(60)
"""

INTERRUPTED = """
import sys, time
from lit_hpo.locks import Flock
try:
    print("waiting", flush=True)
    with Flock(sys.argv[1], timeout=60):
        print("acquired", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("script", [GIVES_UP, INTERRUPTED], ids=["timed-out", "ctrl-c"])
def test_a_wait_given_up_on_lets_the_lock_go_when_it_comes(tmp_path: Path, script: str) -> None:
    """A waiter waits in the kernel's queue on a thread of its own; when its caller gives
    up (a timeout, or Ctrl-C) while that thread still waits, the lock it gets later is
    let go at once, though the process (and a child forked meanwhile) lives on."""
    path = tmp_path / "j.lock"
    holder = _holder(path)
    waiter = subprocess.Popen([sys.executable, "-c", script, str(path)],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert waiter.stdout is not None
    children = []
    try:
        if script is GIVES_UP:
            assert waiter.stdout.readline().strip() == "timed out"
            children.append(int(waiter.stdout.readline()))
        else:
            assert waiter.stdout.readline().strip() == "waiting"
            time.sleep(0.5)  # inside the wait
            waiter.send_signal(signal.SIGINT)
            assert waiter.stdout.readline().strip() == "interrupted"
        holder.send_signal(signal.SIGKILL)  # the lock is released: the waiter's thread gets it
        holder.wait()
        assert waiter.poll() is None  # the waiter lives on
        with Flock(str(path), timeout=5):  # and does not keep it
            pass
    finally:
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        waiter.kill()
        waiter.wait()


def test_reentrant_in_a_thread_exclusive_between_threads(tmp_path: Path) -> None:
    lock = Flock(str(tmp_path / "j.lock"), timeout=5)
    order: list[str] = []

    def other() -> None:
        with lock:
            order.append("other")

    with lock:
        with lock:  # re-entrant
            thread = threading.Thread(target=other)
            thread.start()
            time.sleep(0.2)
            order.append("main")
        time.sleep(0.1)
        assert order == ["main"]  # still held after the inner block
    thread.join()
    assert order == ["main", "other"]


def test_lock_file_is_never_a_symlink_and_kinds_are_checked(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("")
    (tmp_path / "j.lock").symlink_to(target)
    with pytest.raises(OSError), Flock(str(tmp_path / "j.lock"), timeout=1):
        pass
    with pytest.raises(ValueError, match="unknown lock 'nfs'; use one of flock, strict_soft"):
        make_lock("nfs", str(tmp_path / "x.lock"), 1)
    assert os.stat(target).st_size == 0
