"""Many workers on one study: lit_hpo on its file journal and on PostgreSQL, next to
Optuna's RDBStorage on the same PostgreSQL server, with sleeping trials (no CPU, so that
many workers fit on a small machine).

    python benchmarks/cluster.py [--workers 8 16 32] [--seconds 20] [--url postgresql://...]

Each row: N worker processes (benchmarks/cluster_worker.py) import everything, connect
and replay the study (long-lived workers are up), wait on a common start, then claim
(Optuna: ask) trials of up to 5 epochs of 0.2 s, report after every epoch (ASHA, grace 1,
eta 2; Optuna: SuccessiveHalvingPruner, same rungs) and end (tell) them, for
``--seconds``. Measured: utilization (seconds slept in epochs / (N x the wall time from
the start to the last worker's end)), per-trial overhead (the rest of the worker time
per trial), claim and report+decision p50/p99, and the PostgreSQL server's CPU seconds
(all ``postgres`` processes and their ended backends, from /proc). Start a server first
with ``bash scripts/start-local-postgres.sh``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import RESULTS, ROOT, fmt, percentiles, process_cpu, stamp, versions, write_results

URL = "postgresql://postgres@127.0.0.1:5432/lit_hpo"
SYSTEMS = ("file", "postgres", "optuna_rdb")


def server_cpu() -> float:
    """CPU seconds of the PostgreSQL server: its live processes, plus what its ended
    backends used (the postmaster's reaped children: cutime + cstime in /proc)."""
    total = 0.0
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() != "postgres":
                continue
            total += process_cpu(int(comm.parent.name)) or 0.0
            fields = (comm.parent / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    return total


def open_study(system: str, directory: Path, n_workers: int, seconds: float, url: str) -> str:
    """Create the row's study; returns its name (the directory for lit_hpo)."""
    if system == "optuna_rdb":
        import optuna

        name = f"bench-{directory.parent.name}-{directory.name}"  # unique in the database
        optuna.create_study(
            study_name=name,
            storage=optuna.storages.RDBStorage(
                url.replace("postgresql://", "postgresql+psycopg://")
            ),
        )
        return name
    from lit_hpo.spec import spec_from_config
    from lit_hpo.study import StudyClient

    journal = url if system == "postgres" else None
    spec = spec_from_config({
        "scheduler": "asha", "grace_period": 1, "reduction_factor": 2, "max_epochs": 5,
        "space": {"x": "interval(0, 1)"}, "points_to_evaluate": [], "n_workers": n_workers,
        "max_wallclock_time": seconds + 60, "journal": journal,
    })  # fmt: skip
    StudyClient(directory, journal=journal).open(spec, n_workers)
    return str(directory)


GATE = """
import os, sys, time
sys.path.insert(0, {here!r})
import cluster_worker

def start_now():
    open(sys.argv[5] + ".ready", "w").close()
    while not os.path.exists({go!r}):
        time.sleep(0.005)

cluster_worker.main(start_now)
"""


def run_row(system: str, n_workers: int, seconds: float, url: str, scratch: Path) -> dict:
    directory = scratch / f"{system}-{n_workers}"
    study = open_study(system, directory, n_workers, seconds, url)
    go = scratch / f"go-{system}-{n_workers}"
    outs = [scratch / f"{system}-{n_workers}-{w}.json" for w in range(n_workers)]
    gate = GATE.format(here=str(Path(__file__).parent), go=str(go))
    server = [] if system == "file" else [url]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", gate, system, study, str(w), str(seconds), str(out), *server],
            cwd=ROOT,
        )
        for w, out in enumerate(outs)
    ]
    while not all(Path(str(out) + ".ready").exists() for out in outs):
        time.sleep(0.05)
    cpu_before = server_cpu()
    start = time.time()
    go.touch()
    codes = [p.wait() for p in procs]
    wall = time.time() - start
    cpu = server_cpu() - cpu_before
    if any(codes):
        raise SystemExit(f"{system} x{n_workers}: worker exit codes {codes}")
    parts = [json.loads(out.read_text()) for out in outs]
    busy = sum(p["busy"] for p in parts)
    trials = sum(p["trials"] for p in parts)
    return {
        "system": system, "workers": n_workers, "seconds": seconds, "wall": wall,
        "trials": trials, "utilization": busy / (n_workers * wall),
        "overhead_ms": (n_workers * wall - busy) / trials * 1000 if trials else None,
        "claim": percentiles([ms for p in parts for ms in p["claim"]]),
        "report": percentiles([ms for p in parts for ms in p["report"]]),
        "end": percentiles([ms for p in parts for ms in p["end"]]),
        "server_cpu_s": cpu if system != "file" else None,
    }  # fmt: skip


def table(rows: list[dict]) -> str:
    lines = [
        "| system | workers | trials | utilization | per-trial overhead (ms) "
        "| claim p50 / p99 (ms) | report+decision p50 / p99 (ms) | end p50 / p99 (ms) "
        "| server CPU (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['system']} | {r['workers']} | {r['trials']} | {r['utilization']:.3f} | "
            f"{fmt(r['overhead_ms'], 0)} | {r['claim']['median']:.2f} / {r['claim']['p99']:.1f} | "
            f"{r['report']['median']:.2f} / {r['report']['p99']:.1f} | "
            f"{r['end']['median']:.2f} / {r['end']['p99']:.1f} | {fmt(r['server_cpu_s'], 1)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--url", default=URL, help="the PostgreSQL server (both systems use it)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="lit_hpo-cluster-") as scratch:
        for n_workers in args.workers:
            for system in args.systems:
                rows.append(run_row(system, n_workers, args.seconds, args.url, Path(scratch)))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
    results = {**stamp(versions=versions("optuna", "psycopg", "sqlalchemy")), "rows": rows}
    write_results(args.out, "cluster", results, table(rows))


if __name__ == "__main__":
    main()
