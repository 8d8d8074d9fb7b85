"""`lit-hpo verify` and `lit-hpo repair`: find and quarantine journal lines that cannot
be replayed, without losing a byte (the original is kept as a backup)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from lit_hpo.checkpoints import pid_alive
from lit_hpo.journal import Journal, JournalCorruptError, decode_lines
from lit_hpo.searchers import Search
from lit_hpo.settings import DEFAULTS
from lit_hpo.state import CLOCK_SKEW, InvalidRecordError, StudyState


@dataclass(frozen=True)
class Problem:
    line: int
    offset: int
    what: str


def scan(path: Path) -> tuple[list[Problem], bool]:
    """Every line that cannot be replayed, and whether the file ends in a torn line."""
    lines = Journal(path).data().split(b"\n")  # never through a link, nor a FIFO
    torn = bool(lines[-1].strip(b"\x00 \t\r"))
    numbered, offset = [], 0
    for number, line in enumerate(lines[:-1], start=1):
        numbered.append((number, offset, line))
        offset += len(line) + 1
    return scan_lines(numbered), torn


def scan_lines(lines: list[tuple[int, int, bytes]]) -> list[Problem]:
    """Every record that cannot be replayed, of ``(line, offset, text)`` in order (a
    file's lines, or a server journal's rows by sequence number)."""
    problems = []
    state = StudyState()
    state.not_after = time.time() + CLOCK_SKEW
    search: Search | None = None  # the study's searcher, once its header is replayed
    for number, offset, line in lines:
        try:
            records = decode_lines(line + b"\n", offset)
            for record in records:
                _check_config(state, record, search)
                state.apply(record)
                if search is None and state.header is not None:
                    search = Search(state.header)
        except JournalCorruptError as err:
            problems.append(Problem(number, offset, str(err)))
        except InvalidRecordError as err:
            op = records[0].get("op") if records else None
            problems.append(Problem(number, offset, f"the {op!r} record cannot be replayed: {err}"))
        except (ValueError, KeyError, IndexError, TypeError, RecursionError) as err:
            problems.append(Problem(number, offset, f"cannot be replayed: {err!r}"))
    return problems


def _check_config(state: StudyState, record: dict[str, Any], search: Search | None) -> None:
    """A claim's config must be the one the study's searcher gives its id (the replay
    itself checks only keys and domains; recomputing costs ~30 us a claim for random
    search, a model fit for a model-based searcher, so workers do it when they are about
    to run a trial, and ``verify`` does it for every claim)."""
    if record.get("op") != "claim" or search is None or record.get("trial") != len(state.trials):
        return
    state.check(record)  # keys, domains and prefix first, for a precise message
    prefix = record.get("prefix", state.n_records)
    expected = search.suggest(state, record["trial"], prefix).config
    if record["config"] != expected:
        raise InvalidRecordError(
            f"trial {record['trial']}'s config {record['config']!r} is not the one the "
            f"study's searcher gives it ({expected!r}): the line was edited or forged"
        )


@dataclass(frozen=True)
class Activity:
    """Who the journal says may still be writing it (see :func:`still_running`)."""

    alive: list[int]  # pids named by records of this host (or of no host) that are alive
    hosts: list[str]  # other hosts named by records with a pid: their pids mean nothing here
    quiet: float | None  # seconds since the newest record's time (None: no dated record)
    lease: float  # the last session's hpo.lease_seconds


def activity(path: Path, here: str, now: float) -> Activity:
    """Read (never through a link) which processes the journal names, and on which hosts.
    Claims, resumes and sessions name their host; records without one (older journals)
    are this host's, as before hosts were recorded."""
    pids, hosts, newest, lease = set(), set(), None, float(DEFAULTS.lease_seconds)
    for line in Journal(path).complete_lines().splitlines():
        try:
            record = orjson.loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(record, dict):
            continue
        host, when = record.get("host"), record.get("time")
        if type(record.get("pid")) is int:  # not a bool
            if host is None or host == here:
                pids.add(record["pid"])
            elif isinstance(host, str):
                hosts.add(host)
        if type(when) in (int, float) and (newest is None or when > newest):
            newest = when
        seconds = record.get("lease_seconds")
        if record.get("op") == "session" and type(seconds) in (int, float) and seconds > 0:
            lease = float(seconds)
    quiet = None if newest is None else now - newest
    return Activity(sorted(p for p in pids if pid_alive(p)), sorted(hosts), quiet, lease)


def still_running(found: Activity) -> str | None:
    """Why the study may still be running (``None``: it is not). This host's processes
    are checked by pid; another host's workers only by the journal going quiet for a
    lease (a running trial's worker writes a heartbeat every third of it; a worker still
    starting, before its first claim, writes nothing, which is why the docs say to stop
    the study first)."""
    if found.alive:
        return (
            f"processes of this study are still running here (pids {found.alive}): stop them first"
        )
    if found.hosts and (found.quiet is None or found.quiet < found.lease):
        age = (
            "has no dated record" if found.quiet is None else f"was written {found.quiet:.0f} s ago"
        )
        return (
            f"processes of this study ran on other hosts ({', '.join(found.hosts[:5])}), where "
            f"this host cannot see their processes, and the journal {age} (less than the "
            f"{found.lease:.0f}-s lease): they may still be running; stop them, or wait "
            "until the journal has been quiet for the lease"
        )
    return None


def repair(path: Path) -> tuple[Path, Path, int] | None:
    """Move bad lines (and a torn tail) to ``<journal>.quarantine``; keep a backup.

    Returns:
        The backup, the quarantine file, and how many lines were moved; ``None`` when
        every line replays (nothing is written then: no backup, no quarantine, and the
        journal keeps its file).
    """
    if path.is_symlink() or path.parent.is_symlink():
        raise RepairRefusedError(
            f"{path} is (or is inside) a symbolic link; repair writes only real files in the "
            "study directory. Copy the study to a directory of your own and repair that."
        )
    journal = Journal(path)
    with journal.locked():
        mode = os.stat(path, follow_symlinks=False).st_mode & 0o777
        data = journal.data()
        bom = data.startswith(_BOM)
        if bom:  # an editor's byte-order mark: not a record, drop it
            data = data[len(_BOM) :]
            _write_new(path.with_name(f".{path.name}.bom-{os.getpid()}"), data, mode, path)
        problems, torn = scan(path)
        if any(problem.line == 1 for problem in problems):
            first = next(problem for problem in problems if problem.line == 1)
            raise RepairRefusedError(
                f"{path} line 1, the study's header, cannot be replayed ({first.what}). "
                "repair never moves the header, since a rerun would then start the study "
                "anew with any settings; if it was written by a newer lit_hpo, upgrade "
                "lit_hpo to read it."
            )
        if not (problems or torn or bom):
            return None
        lines = data.split(b"\n")
        bad = {p.line for p in problems}
        backup = _backup(path, (_BOM if bom else b"") + data, mode)
        keep = [line for n, line in enumerate(lines[:-1], start=1) if n not in bad]
        moved = [line for n, line in enumerate(lines[:-1], start=1) if n in bad]
        if torn:
            moved.append(lines[-1])
        quarantine = path.with_name(path.name + ".quarantine")
        fd = os.open(quarantine, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "ab") as file:
            file.write(b"".join(line + b"\n" for line in moved))
        staged = path.with_name(f".{path.name}.repair-{os.getpid()}")
        _write_new(staged, b"".join(line + b"\n" for line in keep), mode, path)
    return backup, quarantine, len(moved) + int(bom)


_BOM = b"\xef\xbb\xbf"


class RepairRefusedError(RuntimeError):
    """repair would have to follow a link or move the header; it changes nothing."""


def _backup(path: Path, data: bytes, mode: int) -> Path:
    """A new ``<journal>.bak-<time>`` holding ``data`` (``-2``, ``-3``... when a repair in
    the same second made one already; an existing file is never overwritten)."""
    stem = f"{path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1, 1000):
        backup = path.with_name(stem if n == 1 else f"{stem}-{n}")
        try:
            _write_new(backup, data, mode)
        except FileExistsError:
            continue
        return backup
    raise RepairRefusedError(f"{path.parent} already holds 999 backups named {stem}*")


def _write_new(path: Path, data: bytes, mode: int, replace: Path | None = None) -> None:
    """Create ``path`` exclusively (never through a link) with ``mode``, write and fsync
    ``data``; then rename it over ``replace`` when given."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.chmod(path, mode)  # the umask may have narrowed it
    if replace is not None:
        os.replace(path, replace)
