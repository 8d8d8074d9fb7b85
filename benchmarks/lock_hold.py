"""How long each locked journal step holds the lock, as the study grows.

    python benchmarks/lock_hold.py [--sizes 100 1000 10000 100000] [--baseline DIR]

For each scheduler (ASHA, Hyperband) and study size N (N finished trials of 10 reports
already in the journal), one process measures the lock hold of every locked step:
``claim`` (a new trial), ``heartbeat``, ``report`` (with the scheduler's decision),
``end``, and ``heartbeat (cold)``: the first heartbeat of a client that has never read
the journal (a fresh process joining a long study). The hold is timed from taking the
lock to releasing it, by wrapping the journal's lock object; only the outermost hold of
a step counts. ``--baseline DIR`` runs the same measurement on another checkout (for
example ``git worktree add /tmp/base 551b716``) in a subprocess, so that both figures
come from one run on one machine. Writes ``benchmarks/results/lock_hold.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measure import RESULTS, machine, percentiles, write_results  # noqa: E402
from synthetic import build_study  # noqa: E402

pc = time.perf_counter


class TimedLock:
    """Wraps a lock; records how long each outermost hold lasted (ms)."""

    def __init__(self, lock: object, holds: list[float]) -> None:
        self.lock, self.holds, self.depth, self.start = lock, holds, 0, 0.0

    def __enter__(self) -> object:
        self.lock.__enter__()  # type: ignore[attr-defined]
        self.depth += 1
        if self.depth == 1:
            self.start = pc()
        return self

    def __exit__(self, *exc: object) -> None:
        self.depth -= 1
        if self.depth == 0:
            self.holds.append((pc() - self.start) * 1000)
        self.lock.__exit__(*exc)  # type: ignore[attr-defined]


def measure(directory: Path, repeats: int) -> dict[str, list[float]]:
    """Lock holds (ms) per step, on a warm client and on cold ones."""
    from lit_hpo.study import StudyClient

    holds: dict[str, list[float]] = {}

    def timed(client: StudyClient, step: str) -> list[float]:
        bucket = holds.setdefault(step, [])
        client.journal._lock = TimedLock(client.journal._lock, bucket)  # type: ignore[attr-defined]
        return bucket

    warm = StudyClient(directory)
    warm.refresh()  # the cold replay is not a locked step: time only the steps
    steps = ("claim", "heartbeat", "report", "end")
    buckets = {step: [] for step in steps}  # type: dict[str, list[float]]
    lock = warm.journal._lock  # type: ignore[attr-defined]
    for _ in range(repeats):
        for step in steps:
            warm.journal._lock = TimedLock(lock, buckets[step])  # type: ignore[attr-defined]
            if step == "claim":
                claim = warm.claim(0)
                assert claim is not None
            elif step == "heartbeat":
                warm.heartbeat(claim.trial_id, 0)
            elif step == "report":
                for epoch in range(1, 4):
                    warm.report(claim.trial_id, epoch, random.random() + 1 / epoch, 0)
            else:
                warm.end(claim.trial_id, "completed")
    holds.update(buckets)
    claim = warm.claim(0)  # left running, for the cold clients' heartbeats
    assert claim is not None
    for _ in range(max(3, repeats // 10)):
        cold = StudyClient(directory)
        timed(cold, "heartbeat (cold)")
        cold.heartbeat(claim.trial_id, 0)
    return holds


def run_sizes(sizes: list[int], repeats: int) -> list[dict]:
    rows = []
    for scheduler in ("asha", "hyperband"):
        for size in sizes:
            with tempfile.TemporaryDirectory() as tmp:
                build_study(
                    Path(tmp) / "journal.jsonl", size, scheduler=scheduler, reduction_factor=3
                )
                holds = measure(Path(tmp), repeats)
            for step, ms in holds.items():
                rows.append({"scheduler": scheduler, "trials": size, "step": step,
                             **percentiles(ms)})  # fmt: skip
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--baseline", help="another checkout, measured the same way")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--rows-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rows_only:  # the baseline's subprocess (its lit_hpo from PYTHONPATH): rows as JSON
        print(json.dumps(run_sizes(args.sizes, args.repeats)))
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    results = {"machine": machine(), "this": run_sizes(args.sizes, args.repeats)}
    if args.baseline:
        done = subprocess.run(
            [sys.executable, __file__, "--rows-only", "--repeats", str(args.repeats),
             "--sizes", *map(str, args.sizes)],
            cwd=args.baseline, env={**os.environ, "PYTHONPATH": args.baseline},
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        results["baseline"] = json.loads(done.stdout)
        results["baseline_dir"] = args.baseline
    write_results(Path(args.out), "lock_hold", results, markdown(results))


def markdown(results: dict) -> str:
    base = {(r["scheduler"], r["trials"], r["step"]): r for r in results.get("baseline", [])}
    lines = [f"Lock hold per locked step (ms), one process; machine: {results['machine']}.", "",
             "| scheduler | trials | step | median | p99 | max | baseline p99 | ratio |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in results["this"]:
        b = base.get((r["scheduler"], r["trials"], r["step"]))
        ratio = f"{r['p99'] / b['p99']:.3f}" if b and b["p99"] > 0 else ""
        lines.append(
            f"| {r['scheduler']} | {r['trials']:,} | {r['step']} | {r['median']:.3f} | "
            f"{r['p99']:.3f} | {r['max']:.3f} | {b['p99']:.3f} | {ratio} |" if b else
            f"| {r['scheduler']} | {r['trials']:,} | {r['step']} | {r['median']:.3f} | "
            f"{r['p99']:.3f} | {r['max']:.3f} | | |"
        )  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
