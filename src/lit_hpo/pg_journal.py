"""The journal on a PostgreSQL server (``hpo.journal=postgresql://user@host/db``).

For clusters whose shared filesystem cannot be trusted with locks. The same records and
the same interface as :class:`lit_hpo.journal.Journal` (read from an offset, append, hold
the lock), so replay and every decision are unchanged:

- one append-only table, ``lit_hpo_journal(study, seq, body)``, one row per record, the
  study named by its directory's absolute path; offsets are sequence numbers;
- every locked step is one short transaction holding ``pg_advisory_xact_lock`` on the
  study: sequence numbers are assigned under it and the lock is held until the commit,
  so commit order equals sequence order and a lock-free reader never sees a gap;
- a killed client's transaction ends with its connection (the lock goes at once); a hung
  one (a stopped process, a node that lost power) is ended by the server after
  ``idle_in_transaction_session_timeout``, which every session sets to the study's lease;
- what was appended inside a step is committed when the step ends, also when it ends
  with an error, exactly as a file append stays on disk.

Credentials come from the environment (``PGPASSWORD``) or ``~/.pgpass``, never from the
URL: a URL with a password is refused, since the URL is written to ``multirun.yaml`` and
to every worker's command line.
"""

from __future__ import annotations

import os
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from lit_hpo.journal import (
    JournalCorruptError,
    JournalDroppedError,
    JournalWriteError,
    Record,
    decode_lines,
    encode,
)

SCHEMES = ("postgresql", "postgres")
SCHEMA = """
CREATE TABLE IF NOT EXISTS lit_hpo_journal (
    study text NOT NULL,
    seq bigint NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (study, seq)
)"""
SCHEMA_LOCK = 0x6C69745F68706F  # "lit_hpo": one creator of the table at a time


def is_url(journal: str | None) -> bool:
    return bool(journal) and urlsplit(str(journal)).scheme in SCHEMES


def check_url(journal: Any) -> str | None:
    """``hpo.journal`` checked: ``None`` (the study directory's file) or a PostgreSQL URL
    without a password.

    Raises:
        ValueError: naming the value and the fix.
    """
    if journal is None:
        return None
    if not isinstance(journal, str) or not is_url(journal):
        raise ValueError(
            f"`hpo.journal` must be null (journal.jsonl in the study directory) or a "
            f"PostgreSQL URL like postgresql://user@host:5432/db, but got {journal!r}."
        )
    parts = urlsplit(journal)
    if parts.password is not None or "password=" in parts.query:
        raise ValueError(
            f"`hpo.journal` holds a password ({redact(journal)}); it would be written to "
            "multirun.yaml and to every worker's command line. Put it in ~/.pgpass "
            "(host:port:db:user:password, mode 0600) or the PGPASSWORD environment variable."
        )
    if not parts.path.strip("/"):
        raise ValueError(f"`hpo.journal`={journal!r} names no database: add /<database>.")
    return journal


def redact(url: str) -> str:
    """The URL without a password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def _dropped(error: Exception, connection: Any) -> bool:
    """Whether ``error`` means the connection is gone (the server restarted, or ended
    the session), rather than a statement the server refused."""
    psycopg = _driver()
    gone = connection is None or connection.broken or connection.closed
    return isinstance(error, psycopg.OperationalError) and bool(gone)


def _driver() -> Any:
    try:
        import psycopg
    except ImportError as err:
        raise ImportError(
            "hpo.journal=postgresql://... needs the psycopg driver: "
            "pip install 'lit_hpo[postgres]' (or pip install 'psycopg[binary]')"
        ) from err
    return psycopg


class PgJournal:
    """A study's journal in a PostgreSQL database.

    Args:
        url: ``postgresql://user@host:port/db`` (see :func:`check_url`).
        study: the study's name (its directory's absolute path).
        timeout: seconds to wait for the study's lock before ``TimeoutError``.
        idle_timeout: seconds after which the server ends a hung holder's transaction.
    """

    def __init__(self, url: str, study: str, timeout: float = 120.0,
                 idle_timeout: float = 60.0) -> None:  # fmt: skip
        self.url, self.study = url, study
        self.name = f"{redact(url)} (study {study})"
        self.timeout, self.idle_timeout = timeout, idle_timeout
        self._key = zlib.crc32(study.encode()) - (1 << 31)  # a signed 32-bit lock key
        self._connection: Any = None
        self._pid = 0
        self._depth = 0
        self._written: tuple[int, str] | None = None  # this step's first record
        self._threads = threading.RLock()

    def where(self, line: int, offset: int) -> str:
        return f"{self.name} record {line}"

    @property
    def way_out(self) -> str:
        return (f"`lit-hpo verify {self.study} --journal {redact(self.url)}` lists such "
                "records; export the study (lit-hpo export --format jsonl) before deleting "
                "one from the lit_hpo_journal table")  # fmt: skip

    def _connect(self) -> Any:
        """This process's connection (a forked child opens its own, as for flock)."""
        if self._connection is None or self._pid != os.getpid():
            psycopg = _driver()
            # A first connection fails at once (a wrong URL says so); a lost one (a server
            # restart) is tried again for up to the lock timeout, as a busy lock is waited for.
            deadline = time.monotonic() + (self.timeout if self._pid == os.getpid() else 0)
            while True:
                try:
                    connection = psycopg.connect(self.url, autocommit=True, connect_timeout=30)
                    break
                except psycopg.OperationalError as err:
                    if time.monotonic() >= deadline:
                        raise JournalWriteError(
                            None, f"cannot connect to the journal at {redact(self.url)}: {err}"
                        ) from None
                    time.sleep(0.5)
            ms = int(self.idle_timeout * 1000)
            connection.execute(f"SET idle_in_transaction_session_timeout = {ms}")
            connection.execute(f"SET lock_timeout = {int(self.timeout * 1000)}")
            exists = "SELECT to_regclass('lit_hpo_journal') IS NOT NULL"
            if not connection.execute(exists).fetchone()[0]:  # the database's first study
                with connection.transaction():
                    connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                    connection.execute(SCHEMA)
            self._connection, self._pid, self._depth = connection, os.getpid(), 0
        return self._connection

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the study's lock: one transaction (re-entrant within one object and
        thread; a nested step is part of the outer one)."""
        with self._threads:
            connection = self._connect()
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            psycopg = _driver()
            try:
                try:
                    connection.execute("BEGIN")
                except psycopg.OperationalError:  # dropped (a server restart): once more
                    self._connection = None
                    connection = self._connect()
                    connection.execute("BEGIN")
                connection.execute("SELECT pg_advisory_xact_lock(%s)", (self._key,))
            except psycopg.errors.LockNotAvailable:
                connection.execute("ROLLBACK")
                raise TimeoutError(
                    f"the journal {self.name} stayed locked for {self.timeout:.0f} s"
                ) from None
            except psycopg.Error as err:
                self._connection = None
                error = JournalDroppedError if _dropped(err, connection) else JournalWriteError
                raise error(None, f"the journal {self.name}: {err}") from None
            self._depth, self._written = 1, None
            try:
                yield
            finally:
                self._depth = 0
                try:  # what was appended stays, also when the step failed (as in a file)
                    connection.execute("COMMIT")
                except psycopg.Error as err:
                    self._connection = None
                    if not self._committed_after_all():
                        raise JournalDroppedError(
                            None,
                            f"could not commit to the journal {self.name}: {err}; what this "
                            "step wrote was not recorded",
                        ) from None

    def _committed_after_all(self) -> bool:
        """Whether a commit whose reply was lost (the connection dropped) went through:
        the step's first record is there. Answering "no" for a commit that landed would
        make the caller append it twice."""
        if self._written is None:
            return True  # nothing was written: nothing to lose
        seq, body = self._written
        sql = "SELECT body FROM lit_hpo_journal WHERE study = %s AND seq = %s"
        deadline = time.monotonic() + self.timeout
        while True:  # a restarting server: ask until it answers (or the lock timeout)
            try:
                rows = self._query(sql, (self.study, seq))
            except JournalWriteError:
                if time.monotonic() > deadline:
                    raise JournalWriteError(
                        None,
                        f"the journal {self.name} did not answer for {self.timeout:.0f} s "
                        f"after a commit whose outcome is unknown (record {seq}); rerun the "
                        "same command once the server is back",
                    ) from None
                time.sleep(0.5)
                continue
            return bool(rows) and rows[0][0] == body

    def read(self, offset: int = 0) -> tuple[list[Record], int]:
        """Records after sequence number ``offset``, and the last one's number."""
        rows = self._query(
            "SELECT seq, body FROM lit_hpo_journal WHERE study = %s AND seq > %s ORDER BY seq",
            (self.study, offset),
        )
        if not rows:
            return [], offset
        data = "\n".join(body for _, body in rows).encode() + b"\n"
        try:
            records = decode_lines(data, 0)
        except JournalCorruptError:
            seq = next(seq for seq, body in rows if not _replayable(body))
            raise JournalCorruptError(
                f"{self.name} record {seq} is not a journal record (a JSON object with an "
                "'op'); the study cannot be replayed past it. Delete that row (after a "
                "backup: lit-hpo export DIR --journal URL --format jsonl)",
                seq,
            ) from None
        if len(records) != len(rows) or rows[-1][0] != offset + len(rows):
            raise JournalCorruptError(
                f"{self.name}: the sequence numbers after {offset} are not contiguous "
                f"({rows[0][0]}..{rows[-1][0]} for {len(rows)} records)",
                offset,
            )
        return records, int(rows[-1][0])

    def locate(self, start: int, index: int) -> tuple[int, int]:
        """The sequence number of the ``index``-th record read from ``start`` (twice: it
        is both the "line" and the "offset" of messages)."""
        return start + index + 1, start + index + 1

    def append(self, records: Sequence[Record]) -> tuple[int, int]:
        """Append records under the study's lock (taking it if the caller does not hold
        it).

        Returns:
            The sequence numbers ``(last before, last after)``.
        """
        bodies = [encode(record)[:-1].decode() for record in records]
        psycopg = _driver()
        with self.locked():
            connection = self._connect()
            try:
                last = connection.execute(
                    "SELECT coalesce(max(seq), 0) FROM lit_hpo_journal WHERE study = %s",
                    (self.study,),
                ).fetchone()[0]
                # One statement: executemany's pipeline left the session "idle in
                # transaction" without arming the server's idle timeout (measured).
                if self._written is None:
                    self._written = (last + 1, bodies[0])
                connection.execute(
                    "INSERT INTO lit_hpo_journal (study, seq, body) SELECT %s, seq, body "
                    "FROM unnest(%s::bigint[], %s::text[]) AS rows(seq, body)",
                    (self.study, [last + 1 + i for i in range(len(bodies))], bodies),
                )
            except psycopg.Error as err:
                error = JournalDroppedError if _dropped(err, connection) else JournalWriteError
                raise error(None, f"could not append to the journal {self.name}: {err}") from None
        return int(last), int(last) + len(bodies)

    def _query(self, sql: str, parameters: tuple[Any, ...]) -> list[Any]:
        """Rows of a read; outside a step, a dropped connection (a server restart) is
        opened again once."""
        psycopg = _driver()
        with self._threads:
            for retry in (True, False):
                try:
                    return list(self._connect().execute(sql, parameters).fetchall())
                except psycopg.OperationalError as err:
                    if self._depth or not retry:
                        dropped = self._depth and _dropped(err, self._connection)
                        raise (JournalDroppedError if dropped else JournalWriteError)(
                            None, f"cannot read the journal {self.name}: {err}"
                        ) from None
                    self._connection = None
        raise AssertionError("unreachable")

    def rows(self) -> list[tuple[int, bytes]]:
        """Every record's sequence number and text, unparsed (for ``lit-hpo verify``
        and ``export --format jsonl``)."""
        sql = "SELECT seq, body FROM lit_hpo_journal WHERE study = %s ORDER BY seq"
        return [(int(seq), body.encode()) for seq, body in self._query(sql, (self.study,))]

    def has_records(self) -> bool:
        sql = "SELECT 1 FROM lit_hpo_journal WHERE study = %s LIMIT 1"
        return bool(self._query(sql, (self.study,)))

    def close(self) -> None:
        if self._connection is not None and self._pid == os.getpid():
            self._connection.close()
        self._connection = None


def _replayable(body: str) -> bool:
    """Whether one row parses as a record (the file journal's own line check)."""
    try:
        decode_lines(body.encode() + b"\n", 0)
    except JournalCorruptError:
        return False
    return True
