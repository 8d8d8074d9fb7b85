"""Which accelerator each worker gets, and how many threads (pure functions)."""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_CPU_WORKERS = 2  # the seeds' setting; capped at the number of cores


def visible_gpus(environ: Mapping[str, str], device_count: int) -> list[str]:
    """GPU ids the study may use: ``CUDA_VISIBLE_DEVICES`` if set, else ``0..count-1``."""
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        ids = [part.strip() for part in listed.split(",") if part.strip()]
        # CUDA ignores everything from the first invalid id on; "-1" means no GPU.
        return [] if not ids or ids[0] == "-1" else ids
    return [str(i) for i in range(device_count)]


def default_n_workers(gpus: list[str], cpu_count: int, per_trial: int = 1) -> int:
    """One worker per group of ``per_trial`` GPUs; on CPU, the seeds' 2 workers capped at
    the core count (each trial's ranks then share its worker's cores).

    Raises:
        ValueError: when a trial needs more GPUs than are visible.
    """
    check_enough_gpus(gpus, per_trial)
    if gpus:
        return len(gpus) // per_trial
    return max(1, min(DEFAULT_CPU_WORKERS, cpu_count // per_trial))


def check_enough_gpus(gpus: list[str], per_trial: int) -> None:
    """Raise ``ValueError`` when GPUs are visible but fewer than a trial's ``per_trial``."""
    if gpus and per_trial > len(gpus):
        raise ValueError(
            f"a trial needs {per_trial} GPUs (trainer.devices={per_trial}) but only "
            f"{len(gpus)} are visible ({', '.join(gpus)}); lower trainer.devices or make "
            "more GPUs visible (CUDA_VISIBLE_DEVICES)."
        )


def worker_env(worker: int, gpus: list[str], per_trial: int = 1) -> dict[str, str]:
    """Environment for one worker: with GPUs, pin it to its own group of ``per_trial``
    (round-robin over the groups if there are more workers than groups)."""
    if not gpus:
        return {}
    groups = max(1, len(gpus) // per_trial)
    start = (worker % groups) * per_trial
    return {"CUDA_VISIBLE_DEVICES": ",".join(gpus[start : start + per_trial])}


def threads_per_worker(n_workers: int, cpu_count: int) -> int:
    """Torch intra-op threads per worker so that workers do not oversubscribe the cores."""
    return max(1, cpu_count // n_workers)
