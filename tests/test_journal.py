"""The journal under real concurrency: separate processes, real file locks, real kills."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lit_hpo.journal import Journal, JournalCorruptError, encode

WRITER = """
import sys
from lit_hpo.journal import Journal
journal = Journal(sys.argv[1])
writer, count = int(sys.argv[2]), int(sys.argv[3])
for i in range(count):
    journal.append([{"op": "test", "writer": writer, "i": i, "pad": "x" * (i % 97)}])
"""


def _strict_lines(path: Path) -> list[dict]:
    def reject(token: str) -> float:
        raise ValueError(f"non-standard JSON token {token}")

    data = path.read_bytes()
    assert data.endswith(b"\n")
    return [json.loads(line, parse_constant=reject) for line in data.splitlines()]


def test_eight_processes_append_every_record_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    writers, count = 8, 500
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(w), str(count)])
        for w in range(writers)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0] * writers
    records = _strict_lines(path)
    seen = sorted((r["writer"], r["i"]) for r in records)
    assert seen == [(w, i) for w in range(writers) for i in range(count)]
    # Each writer's records appear in the order it wrote them.
    for w in range(writers):
        assert [r["i"] for r in records if r["writer"] == w] == list(range(count))


def test_incremental_read_returns_each_record_once(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    assert journal.read(0) == ([], 0)
    journal.append([{"op": "t", "a": 1}, {"op": "t", "a": 2}])
    first, offset = journal.read(0)
    journal.append([{"op": "t", "a": 3}])
    second, end = journal.read(offset)
    assert [r["a"] for r in first] == [1, 2]
    assert [r["a"] for r in second] == [3]
    assert end == (tmp_path / "j.jsonl").stat().st_size


@pytest.mark.parametrize("cut", [1, 5, 17], ids=lambda c: f"torn-after-{c}-bytes")
def test_torn_tail_is_ignored_by_readers_and_repaired_by_the_next_writer(
    tmp_path: Path, cut: int
) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal(path)
    journal.append([{"op": "a", "n": 1}])
    torn = encode({"op": "b", "n": 2, "text": "lost in a crash"})[:cut]
    with open(path, "ab") as file:  # a writer that died mid-append
        file.write(torn)
    records, offset = journal.read(0)
    assert [r["n"] for r in records] == [1]
    assert journal.read(offset) == ([], offset)
    journal.append([{"op": "c", "n": 3}])
    assert [r["n"] for r in _strict_lines(path)] == [1, 3]


def test_torn_first_line_is_repaired(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"op":"stud')
    journal = Journal(path)
    assert journal.read(0) == ([], 0)
    journal.append([{"op": "study"}])
    assert _strict_lines(path) == [{"op": "study"}]


def test_non_finite_values_never_reach_the_file(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            journal.append([{"value": value}])
    assert journal.read(0) == ([], 0)


def test_corrupt_complete_line_fails_closed_with_line_offset_and_the_way_out(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"op":"a"}\n\n{"op":"b"}\nnot json\n{"op":"c"}\n')
    with pytest.raises(JournalCorruptError) as info:
        Journal(path).read(0)
    message = str(info.value)
    assert "line 4 (byte offset 23)" in message
    assert f"lit-hpo verify {tmp_path}" in message and f"lit-hpo repair {tmp_path}" in message


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"op":"a"}\r\n{"op":"b"}\r\n', id="crlf"),
        pytest.param(b'{"op":"a"}\n\n   \n{"op":"b"}\n', id="blank-lines"),
        pytest.param(b'{"op":"a"}\n\x00\x00\x00\x00\n{"op":"b"}\n', id="nul-run"),
        pytest.param(b'{"op":"a"}\n\x00\x00{"op":"b"}\n', id="nul-run-before-a-record"),
        pytest.param(b'{"op":"a","future_field":[1,2]}\n{"op":"b"}\n', id="unknown-field"),
    ],
)
def test_harmless_damage_loads(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(content)
    records, _ = Journal(path).read(0)
    assert [r["op"] for r in records] == ["a", "b"]


def test_sigkilled_writers_leave_a_replayable_journal(tmp_path: Path) -> None:
    """Kill writers at random moments; every surviving line is whole, strict JSON, and
    the lock is free again for the next writer."""
    path = tmp_path / "journal.jsonl"
    for round_ in range(6):
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, str(path), str(10 * round_ + w), "100000"]
            )
            for w in range(3)
        ]
        time.sleep(0.8 + 0.1 * round_)
        for p in procs:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
        Journal(path).read(0)  # a reader never fails, torn tail or not
    start = time.monotonic()
    Journal(path, timeout=10).append([{"op": "after"}])
    assert time.monotonic() - start < 10
    records = _strict_lines(path)
    assert records[-1] == {"op": "after"}
    for w in {r["writer"] for r in records[:-1]}:
        mine = [r["i"] for r in records if r.get("writer") == w]
        assert mine == list(range(len(mine)))  # nothing lost or duplicated before the kill


WRITER_WITH_LOCK = """
import sys
from lit_hpo.journal import Journal
journal = Journal(sys.argv[1], lock=sys.argv[4])
writer, count = int(sys.argv[2]), int(sys.argv[3])
for i in range(count):
    journal.append([{"op": "test", "writer": writer, "i": i}])
"""

HOLDER = """
import sys, time
from lit_hpo.journal import Journal
journal = Journal(sys.argv[1], lock="strict_soft")
with journal.locked():
    print("locked", flush=True)
    time.sleep(600)
"""


def test_strict_soft_lock_excludes_and_a_killed_holder_needs_unlock(tmp_path: Path) -> None:
    from filelock import StrictSoftFileLock, Timeout

    from lit_hpo.cli import main

    path = tmp_path / "journal.jsonl"
    assert type(Journal(path, lock="strict_soft")._lock) is StrictSoftFileLock  # the lock claimed
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER_WITH_LOCK, str(path), str(w), "100", "strict_soft"]
        )
        for w in range(4)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0] * 4
    assert sorted((r["writer"], r["i"]) for r in _strict_lines(path)) == [
        (w, i) for w in range(4) for i in range(100)
    ]
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with pytest.raises(Timeout):  # fail closed: it never guesses that the owner died
        Journal(path, timeout=1, lock="strict_soft").append([{"op": "blocked"}])
    assert main(["unlock", str(tmp_path), "--force"]) == 0
    Journal(path, timeout=5, lock="strict_soft").append([{"op": "after"}])
    assert _strict_lines(path)[-1] == {"op": "after"}
