"""Kill real processes: journal writers at random moments and at fixed points inside an
append, and whole studies (workers and the run itself)."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lit_hpo.journal import Journal
from lit_hpo.policy import decide
from lit_hpo.schedulers import make_scheduler
from lit_hpo.state import StudyState

# Appends forever; prints "ack <i>" once append(i) has returned.
WRITER = """
import sys
from lit_hpo.journal import Journal
journal = Journal(sys.argv[1])
tag = sys.argv[2]
i = 0
while True:
    journal.append([{"op": "test", "writer": tag, "i": i, "pad": "x" * (i % 500)}])
    print("ack", i, flush=True)
    i += 1
"""

# One append that SIGKILLs itself at a fixed point inside Journal.append.
INJECT = """
import os, signal, sys, types
import lit_hpo.journal as j
point = sys.argv[2]
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
real = os
fake = types.SimpleNamespace(**{name: getattr(real, name) for name in dir(real) if not name.startswith("__")})
if point == "after_lock_acquire":
    j._repair_torn_tail = lambda fd: die()
elif point == "mid_write":
    fake.write = lambda fd, data: (real.write(fd, data[: len(data) // 2]), die())
elif point == "after_write_before_fsync":
    fake.fsync = lambda fd: die()
elif point == "after_fsync_before_release":
    fake.close = lambda fd: die()
j.os = fake
j.Journal(sys.argv[1]).append([{"op": "test", "writer": "injected-" + point, "i": 0}])
"""

LOCK_BOUND = 5.0  # seconds: flock is released by the kernel when its holder dies


def _start(path: Path, tag: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), tag], stdout=subprocess.PIPE, text=True
    )


def _acks(proc: subprocess.Popen) -> list[int]:
    """The acknowledged appends: whole "ack <i>" lines (a kill can cut the last one)."""
    out = proc.stdout.read() if proc.stdout else ""
    return [int(m.group(1)) for m in re.finditer(r"^ack (\d+)\n", out, re.MULTILINE)]


def _lines(path: Path) -> list[dict]:
    def reject(token: str) -> float:
        raise ValueError(token)

    return [
        json.loads(line, parse_constant=reject)
        for line in path.read_bytes().splitlines()
        if line.strip()
    ]


def test_hundred_random_kills_of_four_writers_with_a_reader(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    rng = random.Random(1)
    running = {f"w{n}": _start(path, f"w{n}") for n in range(4)}
    acked: dict[str, list[int]] = {}
    reader = Journal(path)
    offset, seen = 0, 0
    spawned = 4
    for _ in range(100):
        time.sleep(rng.uniform(0.02, 0.15))
        records, offset = reader.read(offset)  # a live reader never fails
        seen += len(records)
        tag = rng.choice(sorted(running))
        victim = running.pop(tag)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        acked[tag] = _acks(victim)
        new = f"w{spawned}"
        spawned += 1
        running[new] = _start(path, new)
    for tag, proc in running.items():
        proc.kill()
        proc.wait()
        acked[tag] = _acks(proc)
    start = time.monotonic()
    Journal(path, timeout=LOCK_BOUND).append([{"op": "final"}])  # the lock is free again
    assert time.monotonic() - start < LOCK_BOUND
    records = _lines(path)  # every line whole, strict JSON
    assert records[-1] == {"op": "final"}
    for tag, acks in acked.items():
        mine = [r["i"] for r in records if r.get("writer") == tag]
        assert mine == sorted(set(mine)), tag  # never twice, in order
        assert set(acks) <= set(mine), tag  # every append that returned is there
        assert mine == list(range(len(mine))), tag  # nothing missing before the kill
    assert sum(len(a) for a in acked.values()) > 200
    assert seen > 0


@pytest.mark.parametrize(
    "point, lands",
    [
        ("after_lock_acquire", False),
        ("mid_write", False),
        ("after_write_before_fsync", True),
        ("after_fsync_before_release", True),
    ],
)
def test_kills_at_fixed_points_inside_an_append(tmp_path: Path, point: str, lands: bool) -> None:
    path = tmp_path / "journal.jsonl"
    Journal(path).append([{"op": "before"}])
    proc = subprocess.run([sys.executable, "-c", INJECT, str(path), point], timeout=60)
    assert proc.returncode == -signal.SIGKILL
    Journal(path).read(0)  # readers cope with whatever it left
    start = time.monotonic()
    Journal(path, timeout=LOCK_BOUND).append([{"op": "after"}])
    assert time.monotonic() - start < LOCK_BOUND
    ops = [r.get("op") for r in _lines(path)]
    injected = [r for r in _lines(path) if str(r.get("writer", "")).startswith("injected")]
    assert ops[0] == "before" and ops[-1] == "after"
    assert len(injected) == (1 if lands else 0)  # the write landed whole, or not at all


def _kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _running_with_reports(study: Path) -> list:
    from lit_hpo import load_study

    if not (study / "journal.jsonl").exists():
        return []
    return [t for t in load_study(study).state.running() if t.reports]


def _wait(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.2)


@pytest.mark.slow
def test_study_chaos_workers_and_whole_runs_killed(tmp_path: Path, fashion_root: Path) -> None:
    from lit_hpo import load_study
    from tests.conftest import ROOT, study_env

    command = [
        sys.executable, "train.py", "-m", "hpo=asha", "model=mlp", "hpo.n_workers=2",
        "hpo.max_trials=8", "hpo.max_wallclock_time=null", "hpo.max_retries=10",
        "trainer.max_epochs=4", "hpo.grace_period=1", "trainer.limit_train_batches=40",
        "trainer.limit_val_batches=5", "trainer.num_sanity_val_steps=0",
        f"hydra.sweep.dir={tmp_path}",
    ]  # fmt: skip

    def start() -> subprocess.Popen:
        return subprocess.Popen(command, cwd=ROOT, env=study_env(fashion_root), start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    killed_workers = 0
    for run in range(3):
        proc = start()
        if run < 2:
            for _ in range(2):  # SIGKILL a worker mid-trial, twice
                _wait(lambda: bool(_running_with_reports(tmp_path)))
                victim = _running_with_reports(tmp_path)[0]
                os.kill(victim.pid, signal.SIGKILL)
                killed_workers += 1
                # wait until the supervisor has declared that attempt lost
                _wait(lambda v=victim: load_study(tmp_path).state.trials[v.trial_id].attempt > v.attempt
                      or load_study(tmp_path).state.trials[v.trial_id].status != "running")  # fmt: skip
            _wait(lambda: bool(_running_with_reports(tmp_path)))
            _kill_group(proc)  # SIGKILL the whole run: supervisor and workers
        else:
            assert proc.wait(timeout=300) == 0
    study = load_study(tmp_path)
    trials = study.state.trials
    assert len(trials) == 8
    assert all(t.status in ("completed", "stopped") for t in trials), [
        (t.trial_id, t.status) for t in trials
    ]
    lost = [r for r in Journal(tmp_path / "journal.jsonl").read(0)[0] if r["op"] == "lost"]
    # each killed worker lost its attempt (as worker_died, or as interrupted when the whole
    # run was killed before the supervisor noticed); each killed run left trials running
    assert len(lost) >= killed_workers == 4
    assert sum(r["reason"] == "worker_died" for r in lost) >= 2
    assert any(r["reason"] == "interrupted" for r in lost)
    assert all(t.attempt == t.losses for t in trials)  # every lost attempt was resumed
    assert len(study.state.sessions) == 3
    for trial_id, epochs in study.results.groupby("trial_id").epoch:
        assert list(epochs) == list(range(1, len(epochs) + 1)), trial_id  # no gap, no repeat
    records, _ = Journal(tmp_path / "journal.jsonl").read(0)
    state = StudyState()
    scheduler = make_scheduler(records[0]["scheduler"])
    for record in records:
        if record["op"] == "report":
            again = decide(
                scheduler, state, record["trial"], record["epoch"], record["value"], record["time"]
            )
            assert (again.action, again.reason) == (record["decision"], record["reason"])
        state.apply(record)
