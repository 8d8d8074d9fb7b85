"""Search quality and suggestion cost: lit_hpo's searchers next to hydra-optuna-sweeper
and Syne Tune's BOHB, on the same training code, in the same run.

    python benchmarks/search.py [--seeds 0 1 2 3 4] [--budget 120] [--systems ...]
                                [--latency-sizes 100 1000 10000]

Workload (the seeds' exercise): d2l's DropoutMLP on FashionMNIST, searching the learning
rate, batch size, both dropouts and both hidden sizes (``benchmarks/conf/hpo/search.yaml``),
``--train-fraction`` (20%) of the training set per epoch, the whole validation set, 10
epochs, 2 workers, ``--budget`` seconds per run, one torch thread per worker:

  lit_hpo ASHA + random / TPE / BOHB   ``train.py -m hpo=search hpo.searcher=...``
                                        (ASHA grace 1, eta 3; BOHB's defaults);
  hydra-optuna-sweeper TPE              ``+search=optuna``: n_jobs 2 through the joblib
                                        launcher, no pruning (its own venv, see
                                        ``search_peers.py``), stopped at the budget;
  Syne Tune BOHB                        0.16's ``BOHB`` (grace 1, eta 3) on the same
                                        module (``synetune_trial.py --model mlp``).

Per system: the best validation error reported by 30/60/120 s (median and range over
seeds) and the time to reach the target, the median 120-s best of ASHA + random.
Suggestion cost: a claim on a synthetic study of N finished trials (6 dimensions,
10 reports each) with BOHB and TPE: the whole claim and the lock hold inside it.
Writes ``benchmarks/results/search.{json,md}``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from lock_hold import TimedLock  # noqa: E402
from measure import RESULTS, ROOT, best_at, percentiles, stamp, versions, write_results  # noqa: E402
from search_peers import run_hydra_optuna, run_synetune, synetune_tuner  # noqa: E402
from synthetic import build_study  # noqa: E402

OURS = {"lit_hpo ASHA+random": "random", "lit_hpo ASHA+TPE": "tpe", "lit_hpo ASHA+BOHB": "bohb"}
SYSTEMS = (*OURS, "hydra-optuna-sweeper TPE", "Syne Tune BOHB")
Trace = list[tuple[float, float]]


def run_ours(args: argparse.Namespace, searcher: str, seed: int, run_dir: Path) -> dict:
    import subprocess

    from lit_hpo.results import load_study

    study = run_dir / "study"
    command = [sys.executable, str(ROOT / "train.py"), "-m", "--config-dir", str(HERE / "conf"),
               "model=mlp", "hpo=search", f"hpo.searcher={searcher}", f"hpo.seed={seed}",
               f"hpo.max_wallclock_time={args.budget}", f"hydra.sweep.dir={study}",
               *args.trainer_overrides]  # fmt: skip
    launch = time.time()
    with open(run_dir / "train.log", "w") as log:
        subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=True)
    state = load_study(study).state
    trace = sorted((r.time - launch, r.value) for t in state.trials for r in t.reports
                   if r.value is not None)  # fmt: skip
    by = [t.by for t in state.trials]
    return {"trace": trace, "trials": len(state.trials), "epochs": len(trace),
            "by_model": by.count("model")}  # fmt: skip


def time_to(trace: Trace, target: float) -> float | None:
    """When the best value so far first reached ``target`` (None: never)."""
    return next((t for t, v in trace if v <= target), None)


def summarize(runs: dict[str, list[dict]], marks: list[float], budget: float) -> dict:
    target = statistics.median(b for r in runs.get("lit_hpo ASHA+random", [])
                               if (b := best_at(r["trace"], budget)) is not None)  # fmt: skip
    summary: dict[str, Any] = {"target": target}
    for system, rs in runs.items():
        row: dict[str, Any] = {}
        for mark in marks:
            values = [v for r in rs if (v := best_at(r["trace"], mark)) is not None]
            row[f"best_at_{mark:g}s"] = {
                "median": statistics.median(values) if values else None,
                "min": min(values, default=None), "max": max(values, default=None),
                "n": len(values),
            }  # fmt: skip
        times = [time_to(r["trace"], target) for r in rs]
        reached = sorted(t for t in times if t is not None)
        # never reaching the target counts as after the budget, so the median is honest
        ordered = reached + [float("inf")] * (len(times) - len(reached))
        row["time_to_target_s"] = statistics.median(ordered) if ordered else None
        row["reached"] = f"{len(reached)}/{len(times)}"
        row["trials"] = statistics.mean(r["trials"] for r in rs)
        row["epochs"] = statistics.mean(r["epochs"] for r in rs)
        summary[system] = row
    return summary


def suggestion_cost(sizes: list[int], repeats: int = 5) -> list[dict]:
    """Claim latency and lock hold with a model-based searcher on N finished trials."""
    from lit_hpo.study import StudyClient

    rows = []
    for searcher in ("bohb", "tpe"):
        for size in sizes:
            with tempfile.TemporaryDirectory() as tmp:
                build_study(Path(tmp) / "journal.jsonl", size, searcher=searcher, dims=6)
                client = StudyClient(tmp)
                client.refresh()
                holds: list[float] = []
                client.journal._lock = TimedLock(client.journal._lock, holds)  # type: ignore[attr-defined]
                claims = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    claim = client.claim(0)
                    claims.append(1e3 * (time.perf_counter() - start))
                    assert claim is not None and claim.trial.by == "model", claim
                    client.end(claim.trial_id, "completed")
                rows.append({"searcher": searcher, "trials": size, "claim_ms":
                             percentiles(claims), "lock_ms": percentiles(holds)})  # fmt: skip
                print(rows[-1], flush=True)
    return rows


def _cell(s: dict) -> str:
    if s["median"] is None:
        return "—"
    return f"{s['median']:.4f} ({s['min']:.4f}–{s['max']:.4f})"


def markdown(results: dict) -> str:
    marks, summary = results["marks"], results["summary"]
    lines: list[str] = []
    if summary:
        lines += [f"Search quality — {results['machine']}, {results['date']}; seeds "
             f"{results['seeds']}, {results['budget']:g} s, 2 workers; DropoutMLP, "
             f"{results['train_fraction']:.0%} of the training set per epoch", "",
             "| system | " + " | ".join(f"best at {m:g} s (median, range)" for m in marks)
             + f" | time to {summary['target']:.4f} (s) | reached | trials | epochs |",
             "|---|" + "---:|" * (len(marks) + 4)]  # fmt: skip
    for system in results["systems"] if summary else []:
        row = summary[system]
        ttt = row["time_to_target_s"]
        ttt_text = "—" if ttt is None else ("never" if ttt == float("inf") else f"{ttt:.0f}")
        lines.append(f"| {system} | " + " | ".join(_cell(row[f"best_at_{m:g}s"]) for m in marks)
                     + f" | {ttt_text} | {row['reached']} | {row['trials']:.1f} | "
                     f"{row['epochs']:.1f} |")  # fmt: skip
    if results.get("latency"):
        lines += ["", "Suggestion cost: one claim on N finished trials (6 dimensions), ms",
                  "", "| searcher | trials | claim median | claim max | lock hold max |",
                  "|---|---:|---:|---:|---:|"]  # fmt: skip
        for r in results["latency"]:
            lines.append(f"| {r['searcher']} | {r['trials']:,} | {r['claim_ms']['median']:.1f} | "
                         f"{r['claim_ms']['max']:.1f} | {r['lock_ms']['max']:.2f} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4],
                        help="none: only the suggestion cost")  # fmt: skip
    parser.add_argument("--budget", type=float, default=120.0)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train-fraction", type=float, default=0.2)
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument("--latency-sizes", type=int, nargs="*", default=[100, 1000, 10000])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--workdir", type=Path, default=ROOT / "outputs" / "bench_search")
    parser.add_argument("--role", choices=["synetune"], help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out-file", dest="out_file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "synetune":
        args.out = args.out_file
        return synetune_tuner(args)
    args.trainer_overrides = [f"trainer.max_epochs={args.epochs}",
                              f"trainer.limit_train_batches={args.train_fraction}"]  # fmt: skip
    args.workdir.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict]] = {s: [] for s in args.systems}
    for seed in args.seeds:
        for system in args.systems:
            run_dir = Path(tempfile.mkdtemp(prefix=f"{system.replace(' ', '_')}_{seed}_",
                                            dir=args.workdir))  # fmt: skip
            if system in OURS:
                run = run_ours(args, OURS[system], seed, run_dir)
            elif system.startswith("hydra"):
                run = run_hydra_optuna(args, seed, run_dir)
            else:
                run = run_synetune(args, seed, run_dir)
            runs[system].append(run)
            print(f"# seed {seed} {system}: {run['trials']} trials, {run['epochs']} epochs, "
                  f"best {best_at(run['trace'], args.budget)}", flush=True)  # fmt: skip
    marks = sorted({m for m in (30.0, 60.0) if m < args.budget} | {args.budget})
    searched = args.seeds and "lit_hpo ASHA+random" in runs
    results = stamp(
        versions=versions("optuna", "syne-tune"), seeds=args.seeds, budget=args.budget,
        train_fraction=args.train_fraction, systems=args.systems, marks=marks,
        summary=summarize(runs, marks, args.budget) if searched else {},
        runs=runs, latency=suggestion_cost(args.latency_sizes),
    )  # fmt: skip
    write_results(args.out, "search", results, markdown(results))


if __name__ == "__main__":
    main()
