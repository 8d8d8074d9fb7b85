"""How workers start (lit_hpo.launcher.worker_context): forked from the run's process
when that is safe, from the fork server otherwise."""

from __future__ import annotations

import subprocess
import sys
import threading

from lit_hpo.launcher import worker_context
from tests.conftest import ROOT


def test_a_cpu_run_forks_its_workers_from_its_own_process() -> None:
    # In a fresh interpreter that imported what a training script does (this test
    # process may hold other tests' threads).
    code = ("import torch, lightning, hydra\nfrom lit_hpo.launcher import worker_context\n"
            "print(worker_context(gpus=False).get_start_method())")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    assert out.split() == ["fork"]


def test_gpus_or_a_running_thread_need_the_fork_server() -> None:
    assert worker_context(gpus=True).get_start_method() == "forkserver"
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)  # a notebook kernel runs threads like it
    thread.start()
    try:
        assert worker_context(gpus=False).get_start_method() == "forkserver"
    finally:
        stop.set()
        thread.join()
