"""Per-trial checkpoints: atomic writes, the resume choice, and pruning.

Layout: ``<study dir>/checkpoints/trial_<id>/epoch_<e>-attempt_<a>.ckpt`` — paths built
only from journal-assigned ids. ``HPOCallback`` writes epoch ``e``'s checkpoint *before*
it reports epoch ``e``, so every reported epoch has one; the attempt in the name means a
zombie attempt (declared lost, still running somewhere) can never overwrite the
checkpoint of the attempt whose report the journal accepted.

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

_NAME = re.compile(r"^epoch_(\d+)-attempt_(\d+)\.ckpt$")
KEEP_RUNNING = 2
KEEP_FINISHED = 1


def trial_checkpoint_dir(study_dir: str | os.PathLike[str], trial_id: int) -> Path:
    return Path(study_dir) / "checkpoints" / f"trial_{int(trial_id)}"


def checkpoint_path(
    study_dir: str | os.PathLike[str], trial_id: int, epoch: int, attempt: int = 0
) -> Path:
    name = f"epoch_{int(epoch)}-attempt_{int(attempt)}.ckpt"
    return trial_checkpoint_dir(study_dir, trial_id) / name


def checkpoints(study_dir: str | os.PathLike[str], trial_id: int) -> dict[tuple[int, int], Path]:
    """The trial's checkpoints by ``(epoch, attempt)``, oldest first (no temp files)."""
    directory = trial_checkpoint_dir(study_dir, trial_id)
    if not directory.is_dir():
        return {}
    found = {}
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match:
            found[(int(match.group(1)), int(match.group(2)))] = path
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
    study_dir: str | os.PathLike[str], trial_id: int, reported: list[tuple[int, int]]
) -> tuple[int, Path] | None:
    """The newest loadable checkpoint among the reported ``(epoch, attempt)`` pairs.

    Only checkpoints whose report the journal accepted are candidates: a newer one was
    never reported (resuming from it would skip that report), and one from a stale
    attempt is not the model that was measured. Returns ``None`` when nothing was
    reported (the trial restarts from scratch, losing no reported epoch). Falling back
    to an older checkpoint repeats epochs; their first reports stand.

    Raises:
        FileNotFoundError: when epochs were reported but none of their checkpoints loads
            — the trial must not silently restart from scratch.
    """
    if not reported:
        return None
    found = checkpoints(study_dir, trial_id)
    for epoch, attempt in reversed(reported):
        path = found.get((epoch, attempt))
        if path is not None and loadable(path):
            return epoch, path
    raise FileNotFoundError(
        f"trial {trial_id} reported {len(reported)} epochs but none of their checkpoints in "
        f"{trial_checkpoint_dir(study_dir, trial_id)} loads; it cannot be resumed"
    )


def prune(study_dir: str | os.PathLike[str], trial_id: int, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints of a trial (and stale temp files)."""
    found = checkpoints(study_dir, trial_id)
    for key in list(found)[: max(0, len(found) - keep)]:
        found[key].unlink(missing_ok=True)
    directory = trial_checkpoint_dir(study_dir, trial_id)
    if directory.is_dir():
        for stale in directory.glob(".epoch_*.tmp-*"):
            pid = int(stale.name.rsplit("-", 1)[1])
            if pid != os.getpid() and not pid_alive(pid):
                stale.unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, but belongs to someone else
        return True
    return True
