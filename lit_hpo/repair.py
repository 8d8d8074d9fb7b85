"""`lit-hpo verify` and `lit-hpo repair`: find and quarantine journal lines that cannot
be replayed, without losing a byte (the original is kept as a backup)."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from lit_hpo.checkpoints import pid_alive
from lit_hpo.journal import Journal, JournalCorruptError, decode_lines
from lit_hpo.state import StudyState


@dataclass(frozen=True)
class Problem:
    line: int
    offset: int
    what: str


def scan(path: Path) -> tuple[list[Problem], bool]:
    """Every line that cannot be replayed, and whether the file ends in a torn line."""
    data = path.read_bytes()
    problems = []
    offset = 0
    state = StudyState()
    lines = data.split(b"\n")
    torn = bool(lines[-1].strip(b"\x00 \t\r"))
    for number, line in enumerate(lines[:-1], start=1):
        try:
            records = decode_lines(line + b"\n", offset)
            for record in records:
                state.apply(record)
        except JournalCorruptError as err:
            problems.append(Problem(number, offset, str(err)))
        except (ValueError, KeyError, IndexError, TypeError) as err:
            problems.append(Problem(number, offset, f"cannot be replayed: {err!r}"))
        offset += len(line) + 1
    return problems, torn


def live_pids(path: Path) -> list[int]:
    """Processes the journal names (sessions, workers) that are still alive here."""
    pids = set()
    with open(path, "rb") as file:
        for line in file:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("pid"), int):
                pids.add(record["pid"])
    return [pid for pid in sorted(pids) if pid_alive(pid)]


def repair(path: Path) -> tuple[Path, Path, int]:
    """Move bad lines (and a torn tail) to ``<journal>.quarantine``; keep a backup.

    Returns:
        The backup, the quarantine file, and how many lines were moved.
    """
    journal = Journal(path)
    with journal.locked():
        problems, torn = scan(path)
        data = path.read_bytes()
        lines = data.split(b"\n")
        bad = {p.line for p in problems}
        backup = path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(path, backup)
        keep = [line for n, line in enumerate(lines[:-1], start=1) if n not in bad]
        moved = [line for n, line in enumerate(lines[:-1], start=1) if n in bad]
        if torn:
            moved.append(lines[-1])
        quarantine = path.with_name(path.name + ".quarantine")
        with open(quarantine, "ab") as file:
            file.write(b"".join(line + b"\n" for line in moved))
        staged = path.with_name(f".{path.name}.repair-{os.getpid()}")
        with open(staged, "wb") as file:
            file.write(b"".join(line + b"\n" for line in keep))
            file.flush()
            os.fsync(file.fileno())
        os.replace(staged, path)
    return backup, quarantine, len(moved)
