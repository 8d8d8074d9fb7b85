"""One contract over both lock kinds (``flock``, ``strict_soft``): what the journal
relies on from its lock. Real processes, real threads, real files."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from filelock import Timeout

from lit_hpo.locks import KINDS, make_lock

HOLDER = """
import sys, time
from lit_hpo.locks import make_lock
with make_lock(sys.argv[1], sys.argv[2], 5):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def test_excludes_other_processes_and_the_timeout_names_the_file(tmp_path: Path, kind: str) -> None:
    path = str(tmp_path / "journal.jsonl.lock")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, kind, path], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(Timeout, match=r"journal\.jsonl\.lock"), make_lock(kind, path, 0.3):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_reentrant_within_a_thread_exclusive_between_threads(tmp_path: Path, kind: str) -> None:
    lock = make_lock(kind, str(tmp_path / "j.lock"), 5)
    order: list[str] = []

    def other() -> None:
        with lock:
            order.append("other")

    with lock:
        with lock:  # re-entrant: a locked step may call another (lose -> end)
            thread = threading.Thread(target=other)
            thread.start()
            time.sleep(0.2)
            order.append("main")
        time.sleep(0.1)
        assert order == ["main"]  # still held after the inner block
    thread.join()
    assert order == ["main", "other"]


def _child(kind: str, path: str, queue: multiprocessing.Queue) -> None:
    try:
        with make_lock(kind, path, 0.3):
            queue.put("acquired")
    except Timeout:
        queue.put("timeout")


def test_a_forked_process_is_excluded_while_the_parent_holds_it(tmp_path: Path, kind: str) -> None:
    path = str(tmp_path / "j.lock")
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    with make_lock(kind, path, 5):
        child = context.Process(target=_child, args=(kind, path, queue))
        child.start()
        assert queue.get(timeout=10) == "timeout"
        child.join()
    child = context.Process(target=_child, args=(kind, path, queue))
    child.start()
    assert queue.get(timeout=10) == "acquired"
    child.join()
