"""Writing into a shared study directory without following planted links.

Someone else who can write to the study directory could put a symbolic link where
lit_hpo is about to write (``multirun.yaml``, a figure, a worker log, an export) and so
make it overwrite one of the owner's files elsewhere. Every file lit_hpo writes there is
therefore created exclusively under a temporary name (``O_EXCL | O_NOFOLLOW``) and
renamed into place (a rename replaces a link, never its target), or, for logs that are
appended to, opened with ``O_NOFOLLOW``.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


class UnsafePathError(OSError):
    """A path lit_hpo writes to in the study directory is a symbolic link."""


def write_bytes(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> Path:
    """Replace ``path`` with ``data`` atomically, never writing through a link."""
    path = Path(path)
    staged = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(staged, path)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    return path


@contextmanager
def open_regular(path: str | os.PathLike[str], what: str) -> Iterator[BinaryIO | None]:
    """``path`` open for reading (``None`` if there is none), never through a link
    planted in its place, nor a FIFO or device (opening one could block; ``what`` names
    the file in the refusal: "the journal")."""
    try:
        fd: int | None = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        fd = None
    except OSError as err:
        if Path(path).is_symlink():
            raise UnsafePathError(
                f"{path} is a symbolic link; lit_hpo reads {what} only from a real file in "
                "the study directory. Remove the link and rerun."
            ) from err
        raise
    if fd is None:
        yield None
        return
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePathError(
                f"{path} is not a regular file; lit_hpo reads {what} only from a real file "
                "in the study directory. Remove it and rerun."
            )
        yield file


def open_append(path: str | os.PathLike[str], mode: int = 0o644) -> int:
    """A descriptor appending to ``path`` (created if missing), refused if it is a link,
    or a FIFO or device (opening one for writing could block until a reader came)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK
    special = (f"{path} is not a regular file; lit_hpo writes only regular files in the "
               "study directory. Remove it and rerun.")  # fmt: skip
    try:
        fd = os.open(path, flags, mode)
    except OSError as err:
        if Path(path).is_symlink():
            raise UnsafePathError(
                f"{path} is a symbolic link; lit_hpo does not write through links in the "
                "study directory. Remove it and rerun."
            ) from err
        if err.errno == errno.ENXIO:  # a FIFO that no one reads
            raise UnsafePathError(special) from err
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafePathError(special)
    os.set_blocking(fd, True)
    return fd


def real_directory(path: str | os.PathLike[str], owned: bool = False) -> Path:
    """``path`` created if missing; refused if it (the last component) is a link or, with
    ``owned``, a directory of another user (who could then plant files in it)."""
    path = Path(path)
    if path.is_symlink():
        raise UnsafePathError(
            f"{path} is a symbolic link; lit_hpo writes only into real directories inside "
            "the study directory. Remove it and rerun."
        )
    path.mkdir(parents=True, exist_ok=True)
    if owned and os.stat(path).st_uid != os.getuid():
        raise UnsafePathError(
            f"{path} belongs to another user (uid {os.stat(path).st_uid}), who could replace "
            "the files lit_hpo writes there; remove it (or ask its owner to) and rerun."
        )
    return path


def open_to_others(path: str | os.PathLike[str]) -> bool:
    """Whether everyone may write to ``path`` (world-writable)."""
    try:
        return bool(os.stat(path).st_mode & stat.S_IWOTH)
    except OSError:
        return False
