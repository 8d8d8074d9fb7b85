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


def default_n_workers(gpus: list[str], cpu_count: int) -> int:
    """One worker per GPU; on CPU, the seeds' 2 workers capped at the core count."""
    return len(gpus) if gpus else max(1, min(DEFAULT_CPU_WORKERS, cpu_count))


def worker_env(worker: int, gpus: list[str]) -> dict[str, str]:
    """Environment for one worker: with GPUs, pin it to one (round-robin if there are
    more workers than GPUs)."""
    if not gpus:
        return {}
    return {"CUDA_VISIBLE_DEVICES": gpus[worker % len(gpus)]}


def threads_per_worker(n_workers: int, cpu_count: int) -> int:
    """Torch intra-op threads per worker so that workers do not oversubscribe the cores."""
    return max(1, cpu_count // n_workers)
