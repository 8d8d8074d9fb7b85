"""Measurement helpers every benchmark shares: CPU time, percentiles, the machine and
package versions a table names, and writing ``results/<name>.{json,md}``."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"


# ------------------------------------------------------------------ CPU


def busy_seconds() -> float:
    """Busy CPU seconds of the whole machine so far (/proc/stat, all but idle + iowait)."""
    with open("/proc/stat") as file:
        values = [int(v) for v in file.readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float | None:
    """CPU seconds of a live process (utime + stime from /proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_between(samples: list[tuple[float, float]], start: float, end: float) -> float:
    """CPU seconds a sampled process used between two times (the samples nearest them)."""

    def at(t: float) -> float:
        before = [cpu for when, cpu in samples if when <= t]
        return before[-1] if before else samples[0][1]

    return at(end) - at(start) if samples else 0.0


# ------------------------------------------------------------------ statistics


def quantile(values: list[float], p: float) -> float:
    """The ``p`` quantile as the nearest rank (no interpolation: a real sample)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def percentiles(ms: list[float]) -> dict[str, float]:
    """median, p95, p99, max and n of a list of latencies."""
    return {
        "median": statistics.median(ms),
        "p95": quantile(ms, 0.95),
        "p99": quantile(ms, 0.99),
        "max": max(ms),
        "n": len(ms),
    }


def median(values: Iterable[float | None]) -> float | None:
    """The median of the values that are not ``None`` (``None`` when there are none)."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def best_at(trace: list[tuple[float, float]], seconds: float) -> float | None:
    """The best (smallest) value reported up to ``seconds`` (None before the first)."""
    values = [v for t, v in trace if t <= seconds]
    return min(values) if values else None


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


# ------------------------------------------------------------------ runs and results


def wait_all(procs: list[subprocess.Popen]) -> None:
    """Wait for every process; a benchmark run with a failed process is no result."""
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"worker exit codes {codes}")


def warm_up(imports: dict[str, str], systems: list[str]) -> None:
    """Import every module the given systems' processes import (``imports``: system ->
    "a, b.c"), once, in a throwaway process: the page cache is then warm for every row,
    and no row pays for reading them from disk first (on 2026-12-06 the overhead
    harness's first run, ours, reported first at 6.08 s; the same command right after,
    at 4.7-4.9 s)."""
    modules = sorted({m.strip() for system in systems for m in imports[system].split(",")})
    if not modules:
        return
    subprocess.run([sys.executable, "-c", f"import {', '.join(modules)}"], cwd=ROOT, check=True)


# ------------------------------------------------------------------ start-up stamps

LAUNCH = "STARTUP_LAUNCH"  # the command's start (epoch seconds), set by the harness
PREFIX = "@@startup "


def mark(what: str) -> None:
    """Print when ``what`` happened, in seconds since the command's start."""
    print(f"{PREFIX}{time.time() - float(os.environ[LAUNCH]):.4f} {what}", flush=True)


def stamps(output: str) -> dict[str, float]:
    """The steps ``mark`` printed, the first of each name."""
    found: dict[str, float] = {}
    for line in output.splitlines():
        if line.startswith(PREFIX):
            when, what = line[len(PREFIX) :].split(" ", 1)
            found.setdefault(what, float(when))
    return found


def run_sampled(command: list[str], env: dict[str, str], log: Path, name: str) -> dict[str, Any]:
    """Run a study's command from now (``LAUNCH`` set to its start), its output in
    ``log``, sampling the CPU of its process; ``launch``, ``exited``, ``samples``
    ((time, CPU) of the process), ``cpu`` (of every child process) and ``busy`` (the
    machine's). A failed command is no result."""
    cpu0, busy0, launch = children_cpu(), busy_seconds(), time.time()
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env={**env, LAUNCH: repr(launch)},
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        samples: list[tuple[float, float]] = []
        while proc.poll() is None:
            cpu_now = process_cpu(proc.pid)
            if cpu_now is not None:
                samples.append((time.time(), cpu_now))
            time.sleep(0.2)
    exited, cpu, busy = time.time(), children_cpu() - cpu0, busy_seconds() - busy0
    if proc.returncode:
        raise SystemExit(f"{name} exited {proc.returncode}; see {log}")
    return {"launch": launch, "exited": exited, "samples": samples, "cpu": cpu, "busy": busy}


def run_stamped(command: list[str], marks: Path, name: str) -> tuple[dict[str, float], float]:
    """Run a study's command from now, its ``mark`` stamps and its sleepy trials' own
    (written into ``marks``: ``benchmarks/sleepy.py``) timed from its start; and the
    start (epoch seconds)."""
    import json

    launch = time.time()
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, LAUNCH: repr(launch),
                          "BENCH_STAMPS": str(marks)}, capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"{name} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    found = stamps(done.stdout)
    trials = [json.loads(p.read_text()) for p in marks.glob("*.json")]
    found["fit starts"] = min(t["fit_start"] for t in trials) - launch
    found["first epoch validated"] = min(t["val_end"][0] for t in trials) - launch
    return found, launch


def machine() -> str:
    """The machine a table was measured on, as every benchmark names it."""
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}, "
        f"Python {platform.python_version()}"
    )


def versions(*packages: str) -> dict[str, str]:
    """Installed versions of lit_hpo, torch, lightning and the given peers."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("lit_hpo", "torch", "lightning", *packages):
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


def stamp(**fields: Any) -> dict[str, Any]:
    """The header of a results file: machine, date and the given fields."""
    return {"machine": machine(), "date": time.strftime("%Y-%m-%d"), **fields}


def write_results(out: Path, name: str, results: dict[str, Any], table: str) -> None:
    """``out/<name>.json`` and ``out/<name>.md``; the table is also printed."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (out / f"{name}.md").write_text(table + "\n")
    print(table)
