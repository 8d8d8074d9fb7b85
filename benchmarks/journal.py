"""Journal latency and scale, next to Optuna's JournalStorage in the same run.

    python benchmarks/journal.py [--sizes 100 1000 10000 100000] [--procs 1 4]

Per study size N (trials already in the journal, 10 reports each) and process count P:
P processes open the study (cold replay, timed), wait on a barrier, then each runs
``--trials`` trials of 10 reports; every report + decision is timed. Ours: a locked
``StudyClient.report`` (read new records, ASHA decision, append + fsync). Optuna (if
installed, ``pip install -e '.[bench]'``): ``trial.report`` + ``trial.should_prune`` with
``SuccessiveHalvingPruner`` on ``JournalStorage(JournalFileBackend)``, its journal
prepopulated by running trials (capped by ``--optuna-prepop-s``). Also: cold replay time
and peak memory of our journal at 10^4..10^6 records, and the floor — a raw filelock
append with and without fsync. Writes ``benchmarks/results/journal.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from journal_optuna import optuna_prepopulate, optuna_worker  # noqa: E402
from measure import RESULTS, ROOT, percentiles, stamp, write_results  # noqa: E402
from synthetic import build_study  # noqa: E402
from workload import REPORTS_PER_TRIAL as STEPS  # noqa: E402

pc = time.perf_counter


# ------------------------------------------------------------------ ours


def ours_worker(directory: str, n_trials: int, seed: int, barrier, out: str) -> None:
    from lit_hpo.study import StudyClient

    start = pc()
    client = StudyClient(directory)
    client.refresh()
    replay = pc() - start
    barrier.wait()
    rng = random.Random(seed)
    lat: list[float] = []
    for _ in range(n_trials):
        claim = client.claim(0)
        x = claim.config["x"]
        for epoch in range(1, STEPS + 1):
            value = (x - 0.3) ** 2 + 1.0 / epoch + rng.random() * 0.01
            t0 = pc()
            client.report(claim.trial_id, epoch, value)  # verdict recorded, not acted on
            lat.append(pc() - t0)
        client.end(claim.trial_id, "completed")
    Path(out).write_text(json.dumps({"lat": lat, "replay": replay}))


# ------------------------------------------------------------------ harness


def launch(target, path: str, procs: int, trials_each: int, tmp: Path) -> dict[str, object]:
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(procs)
    outs = [str(tmp / f"out{i}.json") for i in range(procs)]
    workers = [
        ctx.Process(target=target, args=(path, trials_each, i, barrier, outs[i]))
        for i in range(procs)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
        assert w.exitcode == 0, w.exitcode
    data = [json.loads(Path(o).read_text()) for o in outs]
    lat = [1e3 * x for d in data for x in d["lat"]]
    return {**percentiles(lat), "replay_s": max(d["replay"] for d in data)}


def replay_cost(records: int, tmp: Path) -> dict[str, float]:
    """Cold replay time and peak memory of our journal with about `records` records."""
    trials = max(1, records // (STEPS + 2))
    study = tmp / f"replay{records}"
    study.mkdir()
    build_study(study / "journal.jsonl", trials, decide=True)
    with open(study / "journal.jsonl", "rb") as file:
        n = sum(1 for _ in file)
    code = (
        f"import resource, sys, time; sys.path.insert(0, {str(ROOT)!r})\n"
        "from lit_hpo.study import StudyClient\n"
        f"t = time.perf_counter(); StudyClient({str(study)!r}).refresh()\n"
        "s = time.perf_counter() - t\n"
        "print(s, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    base = subprocess.run(
        [
            sys.executable,
            "-c",
            "import resource, lit_hpo.study; "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, rss = out.stdout.split()
    shutil.rmtree(study)
    return {
        "records": n,
        "replay_s": float(seconds),
        "peak_mib": (int(rss) - int(base.stdout)) / 1024,
    }


def floor(tmp: Path, n: int = 2000) -> dict[str, dict[str, float]]:
    from filelock import FileLock

    result = {}
    for fsync in (False, True):
        path = tmp / f"floor{fsync}.jsonl"
        lock = FileLock(str(path) + ".lock")
        lat = []
        for i in range(n):
            t0 = pc()
            with lock:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                os.write(fd, b'{"op":"report","trial":%d,"epoch":1,"value":0.5}\n' % i)
                if fsync:
                    os.fsync(fd)
                os.close(fd)
            lat.append(1e3 * (pc() - t0))
        result["fsync" if fsync else "no fsync"] = percentiles(lat)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000, 100000])
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--trials", type=int, default=20, help="measured trials per size and P")
    parser.add_argument("--replay-records", type=int, nargs="+", default=[10**4, 10**5, 10**6])
    parser.add_argument("--optuna-prepop-s", type=float, default=300.0)
    parser.add_argument("--no-optuna", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where journal.{json,md} go")
    args = parser.parse_args()
    results: dict[str, object] = stamp()
    rows = []
    with tempfile.TemporaryDirectory(
        dir=ROOT / "outputs" if (ROOT / "outputs").is_dir() else None
    ) as t:
        tmp = Path(t)
        base = tmp / "ours_base.jsonl"
        build_study(base, max(args.sizes), decide=True)
        offsets = _offsets_after_trials(base, args.sizes)
        optuna_offsets: dict[int, int] = {}
        if not args.no_optuna:
            try:
                import optuna  # noqa: F401
            except ImportError:
                print("optuna not installed: pip install -e '.[bench]'; measuring ours only")
            else:
                optuna_offsets = optuna_prepopulate(
                    tmp / "optuna_base.log", args.sizes, args.optuna_prepop_s
                )
        for size in args.sizes:
            for procs in args.procs:
                study = tmp / f"ours_{size}_{procs}"
                study.mkdir()
                _copy_prefix(base, study / "journal.jsonl", offsets[size])
                ours = launch(ours_worker, str(study), procs, max(1, args.trials // procs), tmp)
                row = {"trials": size, "procs": procs, "ours": ours}
                if size in optuna_offsets:
                    path = tmp / f"optuna_{size}_{procs}.log"
                    _copy_prefix(tmp / "optuna_base.log", path, optuna_offsets[size])
                    row["optuna"] = launch(
                        optuna_worker, str(path), procs, max(1, args.trials // procs), tmp
                    )
                rows.append(row)
                _print_row(row)
        results["latency"] = rows
        results["replay"] = [replay_cost(n, tmp) for n in args.replay_records]
        results["floor"] = floor(tmp)
    results["args"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    write_results(args.out, "journal", results, _markdown(results))


def _offsets_after_trials(path: Path, sizes: list[int]) -> dict[int, int]:
    wanted = set(sizes)
    offsets = {}
    offset = 0
    with open(path, "rb") as file:
        for line in file:
            offset += len(line)
            if b'"op":"end"' in line:
                trial = json.loads(line)["trial"] + 1
                if trial in wanted:
                    offsets[trial] = offset
    return offsets


def _copy_prefix(source: Path, target: Path, length: int) -> None:
    with open(source, "rb") as src, open(target, "wb") as dst:
        dst.write(src.read(length))


def _print_row(row: dict) -> None:
    text = f"N={row['trials']:>6} P={row['procs']}: ours p99 {row['ours']['p99']:.2f} ms"
    if "optuna" in row:
        text += f", optuna p99 {row['optuna']['p99']:.2f} ms"
    print(text, flush=True)


def _markdown(results: dict) -> str:
    lines = [
        f"Journal latency and scale — {results['machine']}, {results['date']}",
        "",
        "report + decision latency (ms). Ours: StudyClient.report (locked read + ASHA +",
        "append + fsync). Optuna 5: trial.report + should_prune, SuccessiveHalvingPruner,",
        "JournalFileBackend.",
        "",
        "| trials in journal | procs | ours median | ours p95 | ours p99 | ours max "
        "| Optuna median | Optuna p99 | Optuna max | cold open ours / Optuna (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["latency"]:
        o = row["ours"]
        p = row.get("optuna")
        peer = f"{p['median']:.2f} | {p['p99']:.2f} | {p['max']:.2f}" if p else "— | — | —"
        opens = f"{o['replay_s']:.2f} / {p['replay_s']:.2f}" if p else f"{o['replay_s']:.2f} / —"
        lines.append(
            f"| {row['trials']:,} | {row['procs']} | {o['median']:.2f} | {o['p95']:.2f} | "
            f"{o['p99']:.2f} | {o['max']:.2f} | {peer} | {opens} |"
        )
    lines += ["", "| records | cold replay (s) | peak memory (MiB) |", "|---:|---:|---:|"]
    for r in results["replay"]:
        lines.append(f"| {r['records']:,} | {r['replay_s']:.2f} | {r['peak_mib']:.0f} |")
    lines += ["", "| raw filelock append | median (ms) | p99 (ms) |", "|---|---:|---:|"]
    for name, s in results["floor"].items():
        lines.append(f"| {name} | {s['median']:.3f} | {s['p99']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
