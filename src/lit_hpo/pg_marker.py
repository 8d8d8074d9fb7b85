"""``journal.pg``: the file that ties a study directory to its study on a PostgreSQL server.

A server names a study by its directory's absolute path, and one database may serve
several machines: a laptop and a cluster, or two clusters, can each have a
``/home/me/proj/studies/lenet``. The marker records which study the directory belongs to
(the journal's name, and the creation time of the study's header), so that a second
machine's study with the same path is refused instead of mixed into the first one, and a
directory is never continued from another database's study.

The marker is for people and for this check only: lit_hpo never connects to what it
names. It is read as untrusted input (a regular file, never through a link, at most
``LIMIT`` bytes); anything unreadable in it counts as "no creation time" (the markers
lit_hpo wrote before it recorded one).
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from lit_hpo.safefiles import open_regular

PG_MARKER = "journal.pg"
LIMIT = 4096
_CREATED = "created "


def marker_bytes(name: str, created: float | None) -> bytes:
    """The marker's content: the journal's name (its redacted URL and the study), then
    the header's time once the study exists."""
    lines = [name] + ([f"{_CREATED}{created!r}"] if created is not None else [])
    return "".join(line + "\n" for line in lines).encode()


def read_marker(path: str | os.PathLike[str]) -> tuple[bool, float | None]:
    """Whether there is a marker, and the creation time it records (``None``: none)."""
    with open_regular(path, "the journal.pg marker") as file:
        if file is None:
            return False, None
        data = file.read(LIMIT)
    for line in data.decode("utf-8", "replace").splitlines():
        if line.startswith(_CREATED):
            try:
                return True, float(line[len(_CREATED) :])
            except ValueError:
                return True, None
    return True, None


def _when(time: float) -> str:
    try:
        return datetime.datetime.fromtimestamp(time).isoformat(sep=" ", timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return repr(time)


def mismatch(directory: Path, journal: str, marked: bool, created: float | None,
             header_time: float | None) -> str | None:  # fmt: skip
    """Why the study on the server (its header's time; ``None``: no study there yet) is
    not the one ``directory``'s marker names, or ``None`` when it is (or cannot be told:
    a marker without a creation time)."""
    marker = directory / PG_MARKER
    if header_time is None:
        if created is None:
            return None
        return (
            f"{marker} names a study created {_when(created)}, but {journal} holds no study "
            f"for {directory}: pass the hpo.journal URL that {marker} names to continue it, "
            "or choose a new hydra.sweep.dir"
        )
    if not marked:
        return (
            f"{journal} already holds a study for {directory}, created "
            f"{_when(header_time)}, but {directory} has no {PG_MARKER}: is it another "
            "machine's study with the same path? Choose another hydra.sweep.dir (or "
            f"database); to continue that study from here, restore its {PG_MARKER} (the "
            f"URL on the first line)"
        )
    if created is not None and created != header_time:
        return (
            f"{marker} names a study created {_when(created)}, but {journal} holds another "
            f"one for {directory}, created {_when(header_time)} (another machine's study "
            "with the same path?); choose a new hydra.sweep.dir, or pass the hpo.journal "
            f"URL that {marker} names"
        )
    return None
