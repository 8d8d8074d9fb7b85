"""Search quality on the seeds' study, next to Syne Tune in the same run.

    python benchmarks/lenet.py [--seeds 0 1] [--budget 300] [--no-speedup]

LeNet on FashionMNIST, learning_rate ~ loguniform(0.01, 1), batch_size ~ randint(32,
256), 10 epochs, 2 workers, ``--budget`` seconds, the first configuration (0.1, 128) for
everyone. Per seed:
  lit_hpo ASHA / random   ``python train.py -m hpo=asha|random hpo.seed=S`` (grace period
                          2, reduction factor 2);
  Syne Tune ASHA / random ``Tuner`` + ``LocalBackend`` on ``benchmarks/synetune_trial.py``:
                          the same model, data module and Trainer settings, one torch
                          thread per trial process (as our workers get here),
                          ``ASHA(grace_period=2, reduction_factor=2)``, random_seed S.
And once (the first seed): lit_hpo random search with 1 worker vs 2 (the textbook's linear
speed-up claim): epochs trained and the best value at the end.

Figures: best ``validation_error`` seen at 60 / 120 / ``--budget`` s after the command
started (mean and min–max over seeds), trials and epochs run, and the anytime curve
(best so far vs seconds since the command started, mean over seeds) in
``benchmarks/results/lenet.png``. Writes ``benchmarks/results/lenet.{json,md}``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from lenet_synetune import run_synetune, synetune_tuner  # noqa: E402
from measure import RESULTS, ROOT, best_at, stamp, versions, write_results  # noqa: E402

SYSTEMS = ("lit_hpo ASHA", "lit_hpo random", "Syne Tune ASHA", "Syne Tune random")
Trace = list[tuple[float, float]]  # (seconds since the command started, value reported)


def anytime(trace: Trace, grid: list[float]) -> list[float | None]:
    return [best_at(trace, t) for t in grid]


def run_ours(args: argparse.Namespace, hpo: str, seed: int, workers: int, run_dir: Path) -> dict:
    study = run_dir / "study"
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        f"hpo={hpo}",
        f"hpo.seed={seed}",
        f"hpo.max_wallclock_time={args.budget}",
        f"hpo.n_workers={workers}",
        f"hydra.sweep.dir={study}",
        *args.ours_overrides,
    ]
    launch = time.time()
    with open(run_dir / "train.log", "w") as log:
        subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=True)
    from lit_hpo.results import load_study

    state = load_study(study).state
    trace = sorted(
        (r.time - launch, r.value) for t in state.trials for r in t.reports if r.value is not None
    )
    return {"trace": trace, "trials": len(state.trials), "epochs": len(trace)}


def summarize(runs: list[dict], marks: list[float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mark in marks:
        values = [v for v in (best_at(r["trace"], mark) for r in runs) if v is not None]
        out[f"best_at_{mark:g}s"] = {
            "mean": statistics.mean(values) if values else None,
            "min": min(values, default=None),
            "max": max(values, default=None),
            "n": len(values),
        }
    out["trials"] = statistics.mean(r["trials"] for r in runs)
    out["epochs"] = statistics.mean(r["epochs"] for r in runs)
    return out


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    grid = [float(t) for t in range(0, int(results["budget"]) + 11, 2)]
    figure = Figure(figsize=(7, 4.2))
    axes = figure.subplots()
    for system, runs in results["runs"].items():
        curves = [anytime(r["trace"], grid) for r in runs]
        points = [
            (t, statistics.mean(c[i] for c in curves))
            for i, t in enumerate(grid)
            if all(c[i] is not None for c in curves)
        ]
        if points:
            axes.step(*zip(*points, strict=True), where="post", label=system)
    axes.set_xlabel("seconds since the command started")
    axes.set_ylabel(f"best validation_error (mean of {len(results['seeds'])} seed(s))")
    axes.set_ylim(0.1, 0.5)
    axes.grid(alpha=0.3)
    axes.legend()
    axes.set_title(f"Seeds' LeNet study, 2 workers — {results['machine']}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def markdown(results: dict[str, Any]) -> str:
    marks = results["marks"]
    head = " | ".join(f"best at {m:g} s" for m in marks)
    lines = [
        f"Search quality on the seeds' study — {results['machine']}, {results['date']}; "
        f"seeds {results['seeds']}, {results['budget']:g} s budget, 2 workers",
        "",
        f"| system | {head} | trials | epochs trained |",
        "|---|" + "---:|" * (len(marks) + 2),
    ]

    def cell(s: dict[str, Any]) -> str:
        if s["mean"] is None:
            return "—"
        spread = f" ({s['min']:.4f}–{s['max']:.4f})" if s["n"] > 1 else ""
        return f"{s['mean']:.4f}{spread}"

    for system, s in results["summary"].items():
        cells = " | ".join(cell(s[f"best_at_{m:g}s"]) for m in marks)
        lines.append(f"| {system} | {cells} | {s['trials']:.1f} | {s['epochs']:.1f} |")
    if results.get("speedup"):
        sp = results["speedup"]
        lines += [
            "",
            f"Random search, 1 vs 2 workers (lit_hpo, seed {results['seeds'][0]}):",
            "",
            "| workers | trials | epochs trained | best at the end |",
            "|---:|---:|---:|---:|",
        ]
        for workers in ("1", "2"):
            r = sp[workers]
            lines.append(
                f"| {workers} | {r['trials']} | {r['epochs']} | "
                f"{best_at(r['trace'], 1e9) or float('nan'):.4f} |"
            )
        lines.append(f"\nepochs trained, 2 workers / 1 worker: {sp['ratio']:.2f}x")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--budget", type=float, default=300.0)
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument("--no-speedup", action="store_true", help="skip 1 vs 2 workers")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument(
        "--limit-batches", type=float, default=1.0, help="fraction of each epoch (smoke tests)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--workdir", type=Path, default=ROOT / "outputs" / "bench_lenet")
    parser.add_argument("--role", choices=["synetune"], help=argparse.SUPPRESS)
    parser.add_argument("--scheduler", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out-file", dest="out_file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "synetune":
        args.out = args.out_file
        return synetune_tuner(args)
    args.ours_overrides = [
        f"trainer.max_epochs={args.epochs}",
        f"trainer.limit_train_batches={args.limit_batches}",
        f"trainer.limit_val_batches={args.limit_batches}",
    ]
    args.workdir.mkdir(parents=True, exist_ok=True)

    def fresh(name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=name.replace(" ", "_") + "_", dir=args.workdir))

    runs: dict[str, list[dict]] = {s: [] for s in args.systems}
    for seed in args.seeds:
        for system in args.systems:
            directory = fresh(f"{system}_{seed}")
            scheduler = "asha" if system.endswith("ASHA") else "random"
            if system.startswith("lit_hpo"):
                run = run_ours(args, scheduler, seed, 2, directory)
            else:
                run = run_synetune(args, scheduler, seed, directory)
            runs[system].append(run)
            print(
                f"# seed {seed} {system}: {run['trials']} trials, {run['epochs']} epochs, "
                f"best {best_at(run['trace'], args.budget)}",
                flush=True,
            )
    marks = [60.0, 120.0, args.budget]
    results: dict[str, Any] = stamp(
        gpu="none",
        versions=versions("syne-tune"),
        seeds=args.seeds,
        budget=args.budget,
        marks=marks,
        summary={s: summarize(r, marks) for s, r in runs.items()},
        runs=runs,
    )
    if not args.no_speedup:
        seed = args.seeds[0]
        one = run_ours(args, "random", seed, 1, fresh("speedup_1"))
        two = runs.get("lit_hpo random", [None])[0] or run_ours(
            args, "random", seed, 2, fresh("speedup_2")
        )
        results["speedup"] = {"1": one, "2": two, "ratio": two["epochs"] / max(1, one["epochs"])}
    write_results(args.out, "lenet", results, markdown(results))
    plot(results, args.out / "lenet.png")


if __name__ == "__main__":
    main()
