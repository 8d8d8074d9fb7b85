"""Per-trial checkpoints: atomic writes, the resume choice, and pruning.

Layout: ``<study dir>/checkpoints/trial_<id>/epoch_<e>.ckpt`` — paths built only from
journal-assigned ids. ``HPOCallback`` writes epoch ``e``'s checkpoint *before* it reports
epoch ``e``, so every reported epoch has one.

Why not Lightning's own save path alone: ``trainer.save_checkpoint`` stages the file
through ``$TMPDIR`` and moves it, which is a non-atomic copy when ``$TMPDIR`` is another
filesystem, and it never fsyncs. Here Lightning writes to a temporary name *in the
checkpoint directory*, which is then fsynced and renamed over the final name, and the
directory is fsynced: a reader sees the old file or the new one, never a torn one.

Pruning policy: while a trial runs, its two newest checkpoints are kept (the newest, and
one to fall back on if the newest cannot be loaded); when it ends, only the newest.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_NAME = re.compile(r"^epoch_(\d+)\.ckpt$")
KEEP_RUNNING = 2
KEEP_FINISHED = 1


def trial_checkpoint_dir(study_dir: str | os.PathLike[str], trial_id: int) -> Path:
    return Path(study_dir) / "checkpoints" / f"trial_{int(trial_id)}"


def checkpoint_path(study_dir: str | os.PathLike[str], trial_id: int, epoch: int) -> Path:
    return trial_checkpoint_dir(study_dir, trial_id) / f"epoch_{int(epoch)}.ckpt"


def checkpoints(study_dir: str | os.PathLike[str], trial_id: int) -> dict[int, Path]:
    """The trial's checkpoints by epoch (temporary files are not listed)."""
    directory = trial_checkpoint_dir(study_dir, trial_id)
    if not directory.is_dir():
        return {}
    found = {}
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match:
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def staging_path(final: Path) -> Path:
    """A temporary name beside ``final`` (same directory, so the rename is atomic)."""
    return final.with_name(f".{final.name}.tmp-{os.getpid()}")


def publish(staged: Path, final: Path) -> None:
    """fsync the staged file, rename it over ``final``, fsync the directory."""
    fd = os.open(staged, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(staged, final)
    _fsync_dir(final.parent)


def loadable(path: Path) -> bool:
    """Whether the checkpoint loads with ``weights_only=True`` (no code from the file runs)."""
    import torch

    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a truncated or corrupt file fails in many ways
        return False
    return True


def resume_point(
    study_dir: str | os.PathLike[str], trial_id: int, last_reported: int
) -> tuple[int, Path] | None:
    """The newest loadable checkpoint at or before the last reported epoch.

    A checkpoint newer than the last report is ignored: its epoch was never reported,
    so resuming from it would skip that report. Returns ``None`` when nothing was
    reported (the trial restarts from scratch, losing no reported epoch).

    Raises:
        FileNotFoundError: when epochs were reported but no checkpoint of them loads —
            the trial must not silently restart from scratch.
    """
    if last_reported < 1:
        return None
    candidates = [(e, p) for e, p in checkpoints(study_dir, trial_id).items() if e <= last_reported]
    for epoch, path in reversed(candidates):
        if loadable(path):
            return epoch, path
    raise FileNotFoundError(
        f"trial {trial_id} reported {last_reported} epochs but none of its checkpoints in "
        f"{trial_checkpoint_dir(study_dir, trial_id)} loads; it cannot be resumed"
    )


def prune(study_dir: str | os.PathLike[str], trial_id: int, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints of a trial (and stale temp files)."""
    found = checkpoints(study_dir, trial_id)
    for epoch in list(found)[: max(0, len(found) - keep)]:
        found[epoch].unlink(missing_ok=True)
    directory = trial_checkpoint_dir(study_dir, trial_id)
    if directory.is_dir():
        for stale in directory.glob(".epoch_*.ckpt.tmp-*"):
            pid = int(stale.name.rsplit("-", 1)[1])
            if pid != os.getpid() and not _alive(pid):
                stale.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
