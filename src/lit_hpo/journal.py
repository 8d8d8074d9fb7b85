"""The append-only JSON-lines journal: a locked append and an incremental read.

Every study writes one file, ``journal.jsonl``. Each line is one strict-JSON record
(``allow_nan=False``: a ``NaN`` token can never reach the file). Appends happen under a
lock (:mod:`lit_hpo.locks`) and end with ``fsync``, so an append that returned is on
disk. A writer that dies mid-append leaves a torn last line (no trailing newline):
readers never return it, and the next writer truncates it under the lock before it
writes, so the torn fragment can never be glued onto a healthy record.

The interface is deliberately tiny (read from an offset, append records); replaying the
records into a study state lives in :mod:`lit_hpo.state`.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from lit_hpo.locks import make_lock
from lit_hpo.safefiles import open_regular

Record = dict[str, Any]


class JournalWriteError(OSError):
    """An append could not be written completely (a full disk, a quota, an I/O error);
    the journal was cut back to where it was, so nothing half-written remains."""

    def __str__(self) -> str:
        return str(self.strerror or super().__str__())


class JournalDroppedError(JournalWriteError):
    """The journal's server dropped the connection in the middle of a locked step (a
    server restart, a failover): the step's transaction was not committed, so nothing of
    it was recorded, and the whole step may run again once the server is back."""


class JournalCorruptError(RuntimeError):
    """A complete line of the journal is not a JSON object."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def encode(record: Record) -> bytes:
    """One record as one strict-JSON line.

    Raises:
        ValueError: if the record holds NaN or infinity (encode those explicitly).
    """
    return json.dumps(record, allow_nan=False, separators=(",", ":")).encode() + b"\n"


@contextmanager
def collector_paused(pause: bool = True) -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a bulk load. Parsing and replaying a
    long journal creates millions of objects and no cycles; the collector would scan the
    growing heap again and again (40-60 % of a cold replay's time). Afterwards the
    loaded objects are moved to the permanent generation (``gc.freeze``): they live as
    long as the study state, and a later full collection, which could otherwise land
    inside a locked step and scan a million records (~250 ms at 10^5 trials), skips them."""
    collecting = pause and gc.isenabled()
    if collecting:
        gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.freeze()
            gc.enable()


def decode_lines(data: bytes, start_offset: int) -> list[Record]:
    """Parse complete lines; ``data`` must end at a line boundary."""
    if not data:
        return []
    with collector_paused(len(data) > 1 << 20):
        return _decode(data, start_offset)


def _decode(data: bytes, start_offset: int) -> list[Record]:
    try:  # fast path: every line one record, parsed in one call as a JSON array
        # orjson: strict JSON (no NaN tokens either), and twice as fast as the stdlib.
        records = orjson.loads(b"[" + data[:-1].replace(b"\n", b",") + b"]")
        if all(type(r) is dict and "op" in r for r in records):
            return records
    except orjson.JSONDecodeError:
        pass  # damage somewhere: the line-by-line path finds it, skips what is harmless
    records = []
    offset = start_offset
    for line in data.split(b"\n")[:-1]:
        # Blank lines, CR of CRLF, and NUL runs (zero-filled blocks a crash can leave on
        # some filesystems) carry no record and are skipped.
        text = line.strip(b"\x00 \t\r")
        if text:
            problem = None
            try:
                record = orjson.loads(text)
            except orjson.JSONDecodeError as err:
                problem = f"is not valid JSON ({err})"
            else:
                if not isinstance(record, dict) or "op" not in record:
                    problem = "is not a journal record (a JSON object with an 'op')"
            if problem:
                raise JournalCorruptError(f"the record at byte offset {offset} {problem}", offset)
            records.append(record)
        offset += len(line) + 1
    return records


class Journal:
    """A journal file and its lock.

    Args:
        path: the ``journal.jsonl`` file; its lock is ``<path>.lock`` beside it.
        timeout: seconds to wait for the lock before ``filelock.Timeout`` is raised.
    """

    def __init__(
        self, path: str | os.PathLike[str], timeout: float = 120.0, lock: str = "flock"
    ) -> None:
        self.path = Path(path)
        self._lock = make_lock(lock, str(self.path) + ".lock", timeout)

    @property
    def name(self) -> str:
        return str(self.path)

    def where(self, line: int, offset: int) -> str:
        return f"{self.path} line {line} (byte offset {offset})"

    @property
    def way_out(self) -> str:
        """What a user does about a record that cannot be replayed."""
        directory = self.path.parent
        return (f"`lit-hpo verify {directory}` lists such lines, `lit-hpo repair {directory}` "
                f"moves them to {self.path.name}.quarantine (keeping a backup)")  # fmt: skip

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the journal lock (re-entrant within one object and thread)."""
        with self._lock:
            yield

    def read(self, offset: int = 0) -> tuple[list[Record], int]:
        """Records from byte ``offset`` up to the last complete line.

        Returns:
            The records and the offset just past the last complete line. A torn last
            line (a writer died mid-append) is left for a later read or repair.
        """
        data = self.complete_lines(offset)
        try:
            return decode_lines(data, offset), offset + len(data)
        except JournalCorruptError as err:
            line = _line_number(self.path, err.offset)
            raise JournalCorruptError(
                f"{self.path} line {line} (byte offset {err.offset}): {err}. The study cannot "
                f"be replayed past it: `lit-hpo verify {self.path.parent}` lists the bad "
                f"lines, `lit-hpo repair {self.path.parent}` moves them to "
                f"{self.path.name}.quarantine (keeping a backup)",
                err.offset,
            ) from None

    def complete_lines(self, offset: int = 0) -> bytes:
        """The bytes from ``offset`` up to the last complete line (a torn last line, a
        writer that died mid-append, is not a record yet); empty if there is no journal."""
        data = self.data(offset)
        return data[: data.rfind(b"\n") + 1]

    def data(self, offset: int = 0) -> bytes:
        """The bytes from ``offset`` to the end, torn tail included (see :meth:`opened`)."""
        with self.opened() as file:
            if file is None:
                return b""
            file.seek(offset)
            return file.read()

    def first_line(self) -> bytes:
        """The header's line (with its newline); empty while there is no complete one."""
        with self.opened() as file:
            line = file.readline() if file is not None else b""
        return line if line.endswith(b"\n") else b""

    def opened(self) -> contextlib.AbstractContextManager[BinaryIO | None]:
        """The journal open for reading (``None`` if there is none), never through a
        link planted in its place, nor a FIFO or device (opening one could block)."""
        return open_regular(self.path, "the journal")

    def locate(self, start: int, index: int) -> tuple[int, int]:
        """The line number and byte offset of the ``index``-th record read from
        ``start`` (blank and NUL-only lines hold no record, as in :meth:`read`)."""
        data = self.data(start)
        offset, seen = start, -1
        for line in data.split(b"\n"):
            if line.strip(b"\x00 \t\r"):
                seen += 1
                if seen == index:
                    break
            offset += len(line) + 1
        return _line_number(self.path, offset), offset

    def append(self, records: Sequence[Record]) -> tuple[int, int]:
        """Append records in one locked, fsynced write (repairing a torn tail first).

        Returns:
            The byte range ``[start, end)`` the records now occupy.
        """
        payload = b"".join(encode(record) for record in records)
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            try:
                start = _repair_torn_tail(fd)
                _write_all(fd, payload, start, self.path)
            finally:
                os.close(fd)
        return start, start + len(payload)


def _write_all(fd: int, payload: bytes, start: int, path: Path) -> None:
    """Write and fsync every byte, or none: ``os.write`` may write only part of the
    payload (a full disk or quota mid-write); on any error the file is cut back to
    ``start`` (the caller holds the lock) and :class:`JournalWriteError` says why."""
    view = memoryview(payload)
    try:
        while view:
            written = os.write(fd, view)
            if written == 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            view = view[written:]
        os.fsync(fd)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, start)
            os.fsync(fd)
        raise unwritable(f"append to {path}", error, "Nothing was recorded and the journal is "
                         "unchanged; free space") from error  # fmt: skip


def unwritable(what: str, error: OSError, outcome: str = "Free space") -> JournalWriteError:
    """The error for a write the study needs (``what``: "append to <journal>", "write
    <file>") that the OS refused: why in words (a full disk, a quota), what became of the
    write (``outcome``), and the way on."""
    reason = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded"}
    why = reason.get(error.errno or 0, error.strerror or str(error))
    return JournalWriteError(
        error.errno,
        f"could not {what}: {why} ({error}). {outcome} (or raise the quota) and rerun the "
        "same command to continue the study",
    )


def _repair_torn_tail(fd: int) -> int:
    """Cut a partial last line left by a writer that died mid-append (caller holds the
    lock); returns the size of the file, which now ends at a line boundary."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    # Scan backwards in blocks for the last newline; everything after it is the torn line.
    end = size
    while end > 0:
        start = max(0, end - 65536)
        block = os.pread(fd, end - start, start)
        cut = block.rfind(b"\n")
        if cut >= 0:
            os.ftruncate(fd, start + cut + 1)
            return start + cut + 1
        end = start
    os.ftruncate(fd, 0)
    return 0


def _line_number(path: Path, offset: int) -> int:
    return Journal(path).data()[:offset].count(b"\n") + 1
