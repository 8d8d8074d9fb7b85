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

What they hold: everything Lightning needs to resume ``fit`` (model, optimizer and
scheduler states, loops, callback states, precision/scaler state, a stateful datamodule's
state) and nothing that needs code to unpickle, so that they load with
``torch.load(weights_only=True)``: the study directory is shared, and a file in it must
never be able to run code. Lightning also stores the module's and datamodule's
``save_hyperparameters()`` arguments, which in Hydra projects are often objects (an
``nn.Module``, a ``functools.partial`` optimizer, a ``DictConfig``); resuming does not
need them (the trial's config comes from the journal), so lit_hpo's checkpoints hold a
plain-data rendering of them instead (:func:`plain`). A user's own ``ModelCheckpoint``
files are not touched.

Pruning policy: while a trial runs, its two newest checkpoints are kept (the newest, and
one to fall back on if the newest cannot be loaded); when it ends, only the newest.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import functools
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import Any

from lit_hpo.safefiles import UnsafePathError, open_regular, real_directory

_NAME = re.compile(r"^epoch_(\d+)-attempt_(\d+)\.ckpt$")
_STAGED = re.compile(r"^\.epoch_.*\.tmp-(\d+)$")  # staging_path's names
# What Lightning stores from ``save_hyperparameters()`` (module, then datamodule): the
# arguments (rendered as plain data) and their container type (a class: dropped).
HPARAMS_KEYS = ("hyper_parameters", "datamodule_hyper_parameters")
HPARAMS_TYPE_KEYS = ("hparams_type", "datamodule_hparams_type")
_REPR_LIMIT = 500
_UNSAFE_GLOBAL = re.compile(r"(?:GLOBAL|it holds a) ([\w.<>]+)")
KEEP_RUNNING = 2
KEEP_FINISHED = 1


def trial_checkpoint_dir(study_dir: str | os.PathLike[str], trial_id: int) -> Path:
    return Path(study_dir) / "checkpoints" / f"trial_{int(trial_id)}"


def checkpoint_path(
    study_dir: str | os.PathLike[str], trial_id: int, epoch: int, attempt: int = 0
) -> Path:
    name = f"epoch_{int(epoch)}-attempt_{int(attempt)}.ckpt"
    return trial_checkpoint_dir(study_dir, trial_id) / name


def epoch_of(path: str | os.PathLike[str]) -> int | None:
    """The epoch a checkpoint holds, from its name (``epoch_<e>-attempt_<a>.ckpt``):
    the worker chose it among the epochs the journal recorded as reported."""
    match = _NAME.match(Path(path).name)
    return int(match.group(1)) if match else None


def claim_directory(final: Path) -> None:
    """Make sure ``checkpoints/`` and ``checkpoints/trial_<id>/`` above ``final`` are this
    user's own real directories (created if missing), never links planted to send the
    write elsewhere."""
    real_directory(final.parent.parent, owned=True)
    real_directory(final.parent, owned=True)


def commit(staged: Path, final: Path, study_dir: str | os.PathLike[str], trial_id: int) -> None:
    """Publish a staged checkpoint of a running trial and prune the older ones."""
    publish(staged, final)
    prune(study_dir, trial_id, KEEP_RUNNING)


def checkpoints(study_dir: str | os.PathLike[str], trial_id: int) -> dict[tuple[int, int], Path]:
    """The trial's checkpoints by ``(epoch, attempt)``, oldest first (no temp files).

    Raises:
        UnsafePathError: ``checkpoints/`` or ``checkpoints/trial_<id>/`` is a link or not
            a directory (see :func:`trial_directory`).
    """
    directory = trial_checkpoint_dir(study_dir, trial_id)
    with trial_directory(study_dir, trial_id) as fd:
        return _numbered(directory, os.listdir(fd) if fd is not None else [])


@contextmanager
def trial_directory(study_dir: str | os.PathLike[str], trial_id: int) -> Iterator[int | None]:
    """A descriptor of ``checkpoints/trial_<id>/`` (``None`` when it is missing), opened
    without following a link at either level: the study directory is shared, and a link
    planted there must not make lit_hpo read, or prune, the files of another directory.

    Raises:
        UnsafePathError: either level is a link, or not a directory.
    """
    directory = trial_checkpoint_dir(study_dir, trial_id)
    top = _open_real_directory(directory.parent)
    if top is None:
        yield None
        return
    try:
        fd = _open_real_directory(directory, top)
        try:
            yield fd
        finally:
            if fd is not None:
                os.close(fd)
    finally:
        os.close(top)


def _open_real_directory(path: Path, parent: int | None = None) -> int | None:
    """A descriptor of the directory ``path`` (opened by its name in the directory
    ``parent`` if given), or ``None`` if it is missing; never through a link."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    try:
        return os.open(path.name if parent is not None else path, flags, dir_fd=parent)
    except FileNotFoundError:
        return None
    except OSError as err:
        if isinstance(err, NotADirectoryError) or err.errno == errno.ELOOP:
            raise UnsafePathError(
                f"{path} is a symbolic link or not a directory; lit_hpo keeps a trial's "
                "checkpoints only in real directories inside the study directory and "
                "never reads or deletes files through a link. Remove it and rerun."
            ) from None
        raise


def _numbered(directory: Path, names: list[str]) -> dict[tuple[int, int], Path]:
    """The checkpoints among ``names`` by ``(epoch, attempt)``, oldest first."""
    found = {(int(m[1]), int(m[2])): directory / name for name in names if (m := _NAME.match(name))}
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


def plain(value: Any) -> Any:
    """``value`` as plain data that ``torch.load(weights_only=True)`` accepts: numbers,
    strings, ``None``, tensors, and dicts/lists of them. A ``functools.partial`` becomes
    Hydra's spelling (``_target_``, ``_partial_``, its arguments), an OmegaConf container
    a dict or list, an enum its value, a path a string, anything else its ``repr``
    (at most 500 characters), so the checkpoint still says what the object was."""
    import torch

    if value is None or isinstance(value, bool | int | float | str | torch.Tensor):
        return value
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, PurePath):
        return str(value)
    if type(value).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return plain(OmegaConf.to_container(value, resolve=False))
    if isinstance(value, functools.partial):
        function = value.func
        target = f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', '?')}"
        return {"_target_": target, "_partial_": True, "_args_": plain(list(value.args)),
                **{str(k): plain(v) for k, v in value.keywords.items()}}  # fmt: skip
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(item) for item in value]
    if hasattr(value, "item") and callable(value.item) and type(value).__module__ == "numpy":
        return value.item()
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def make_plain(checkpoint: dict[str, Any]) -> None:
    """Replace the saved hyperparameters in a checkpoint being written by a plain-data
    rendering, and drop their container type (in place)."""
    for key in HPARAMS_KEYS:
        if key in checkpoint:
            checkpoint[key] = plain(checkpoint[key])
    for key in HPARAMS_TYPE_KEYS:
        checkpoint.pop(key, None)


def load(path: str | os.PathLike[str]) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` of a regular file: no
    code from the file runs, and a link (to a file outside the study) or a FIFO (which
    would block the read forever) planted in the study directory is refused.

    Raises:
        UnsafePathError: ``path`` is a link or not a regular file.
        FileNotFoundError: there is no ``path``.
    """
    import torch

    with open_regular(path, "checkpoints") as file:
        if file is None:
            raise FileNotFoundError(f"{path} is missing")
        return torch.load(file, map_location="cpu", weights_only=True)


def load_problem(path: Path) -> str | None:
    """Why the checkpoint does not load with :func:`load` (no code from the file runs;
    never a link or anything but a regular file), or ``None`` when it loads."""
    try:
        load(path)
    except Exception as error:  # a truncated or corrupt file fails in many ways
        text = str(error)
        name = unsafe_global(text)
        if name is not None:
            return f"{type(error).__name__}: it holds a {name}, which is not allowed"
        first = text.strip().splitlines()
        return f"{type(error).__name__}: {first[0] if first else ''}".strip()
    return None


def loadable(path: Path) -> bool:
    """Whether the checkpoint loads with ``weights_only=True``."""
    return load_problem(path) is None


def unsafe_global(problem: str) -> str | None:
    """The class or function named by a weights-only load failure, if it names one."""
    match = _UNSAFE_GLOBAL.search(problem)
    return match.group(1) if match else None


def find_instances(value: Any, name: str, at: str = "") -> Iterator[str]:
    """Where in a (checkpoint) structure objects of the type, or functions/classes, called
    ``name`` (``module.qualname``) sit, as subscript paths like ``['callbacks']['X']``."""
    kind = type(value)
    if f"{kind.__module__}.{kind.__qualname__}" == name or (
        f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', '')}" == name
    ):
        yield at or "(the whole checkpoint)"
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from find_instances(item, name, f"{at}[{key!r}]")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from find_instances(item, name, f"{at}[{index}]")
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        for key, item in vars(value).items():
            yield from find_instances(item, name, f"{at}.{key}")


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
    try:
        found = checkpoints(study_dir, trial_id)
    except UnsafePathError as err:
        raise FileNotFoundError(
            f"trial {trial_id} reported {len(reported)} epochs but it cannot be resumed: {err}"
        ) from None
    problems = []
    for epoch, attempt in reversed(reported):
        path = found.get((epoch, attempt))
        if path is None:
            continue
        problem = load_problem(path)
        if problem is None:
            return epoch, path
        problems.append(f"{path.name}: {problem}")
    why = "; ".join(problems[:2]) if problems else "the files are missing"
    raise FileNotFoundError(
        f"trial {trial_id} reported {len(reported)} epochs but none of their checkpoints in "
        f"{trial_checkpoint_dir(study_dir, trial_id)} loads with weights_only=True ({why}); "
        "it cannot be resumed"
    )


def prune(study_dir: str | os.PathLike[str], trial_id: int, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints of a trial, and temp files of
    processes gone (one listing of the directory: this runs after every epoch). A trial
    directory that is a link is left alone: nothing is deleted through it."""
    directory = trial_checkpoint_dir(study_dir, trial_id)
    try:
        with trial_directory(study_dir, trial_id) as fd:
            if fd is None:
                return
            names = os.listdir(fd)
            found = [path.name for path in _numbered(directory, names).values()]
            doomed = found[: max(0, len(found) - keep)]
            for name in names:
                stale = _STAGED.match(name)  # another name is not lit_hpo's: left alone
                if stale and int(stale[1]) != os.getpid() and not pid_alive(int(stale[1])):
                    doomed.append(name)
            for name in doomed:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=fd)
    except UnsafePathError:
        return


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host. An id no process can have (0
    and negatives name process groups for ``kill``; beyond ``pid_t``), as a journal line
    may say, is not alive."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # it exists, but belongs to someone else
        return True
    return True
