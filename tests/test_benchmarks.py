"""Smoke test: the journal benchmark runs end to end at a tiny size (peers not needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_journal_benchmark_smoke(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "benchmarks/journal.py", "--no-optuna", "--sizes", "10", "--procs", "1", "2",
         "--trials", "2", "--replay-records", "100", "--out", str(tmp_path)],
        cwd=ROOT, check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    results = json.loads((tmp_path / "journal.json").read_text())
    assert [(r["trials"], r["procs"]) for r in results["latency"]] == [(10, 1), (10, 2)]
    assert all(r["ours"]["n"] == 20 and r["ours"]["median"] > 0 for r in results["latency"])
    assert results["replay"][0]["records"] >= 90
    assert "| raw filelock append |" in (tmp_path / "journal.md").read_text()


def test_overhead_benchmark_smoke(tmp_path: Path) -> None:
    """Both variants of ours at a tiny size: the plain StudyClient loop and `train.py -m`
    with the sleeping LightningModule; every figure is computed from real timestamps."""
    subprocess.run(
        [sys.executable, "benchmarks/overhead.py", "--systems", "ours", "--schedulers", "asha",
         "--epochs", "3", "--epoch-sleep", "0.1", "--wallclock", "12", "--out", str(tmp_path),
         "--workdir", str(tmp_path / "work")],
        cwd=ROOT, check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    results = json.loads((tmp_path / "overhead.json").read_text())
    assert [(r["variant"], r["system"]) for r in results["rows"]] == [("a", "ours"), ("b", "ours")]
    for row in results["rows"]:
        figures = row["median_run"]
        assert figures["trials_finished"] >= 2, figures
        assert 0 < figures["utilization"] <= 1 and figures["overhead_s"] >= 0
        # ASHA (grace 1, eta 2) stops some trials: every report is counted either way
        assert figures["reports"] >= figures["trials_finished"]
    assert "(b) Lightning path" in (tmp_path / "overhead.md").read_text()


def test_startup_benchmark_smoke(tmp_path: Path) -> None:
    """One `train.py -m` start under the stamping wrapper: every step is stamped, in the
    order the run takes them, the first report after the fit started."""
    subprocess.run(
        [sys.executable, "benchmarks/startup.py", "--systems", "ours", "--repeats", "1",
         "--epoch-sleep", "0.1", "--out", str(tmp_path)],
        cwd=ROOT, check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    ours = json.loads((tmp_path / "startup.json").read_text())["ours"]
    steps = ["lightning imported", "Hydra imported", "lit_hpo imported", "sweeper runs",
             "trial 0 composed and checked", "header", "first claim", "fit starts",
             "first epoch validated", "first report"]  # fmt: skip
    assert list(ours) == steps, ours
    assert [ours[s] for s in steps] == sorted(ours[s] for s in steps), ours
    assert ours["first report"] - ours["fit starts"] >= 0.1  # the epoch's sleep
    assert "| first report |" in (tmp_path / "startup.md").read_text()


def test_lenet_benchmark_smoke(tmp_path: Path, fashion_root: Path) -> None:
    """Our ASHA on 2% of each epoch for 2 epochs, 15 s: the anytime trace comes from the
    journal and the table, JSON and PNG are written."""
    subprocess.run(
        [sys.executable, "benchmarks/lenet.py", "--systems", "lit_hpo ASHA", "--budget", "15",
         "--epochs", "2", "--limit-batches", "0.02", "--no-speedup", "--out", str(tmp_path),
         "--workdir", str(tmp_path / "work")],
        cwd=ROOT, check=True, capture_output=True, text=True, timeout=300,
        env={**os.environ, "LIT_HPO_DATA": str(fashion_root)},
    )  # fmt: skip
    results = json.loads((tmp_path / "lenet.json").read_text())
    (run,) = results["runs"]["lit_hpo ASHA"]
    assert run["epochs"] >= 2 and all(0 <= v <= 1 for _, v in run["trace"])
    assert results["summary"]["lit_hpo ASHA"]["best_at_15s"]["n"] == 1
    assert (tmp_path / "lenet.png").stat().st_size > 10_000


def test_lock_hold_benchmark_smoke(tmp_path: Path) -> None:
    """Every locked step of both schedulers is timed on a synthetic study."""
    subprocess.run(
        [sys.executable, "benchmarks/lock_hold.py", "--sizes", "20", "--repeats", "5",
         "--out", str(tmp_path)],
        cwd=ROOT, check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    rows = json.loads((tmp_path / "lock_hold.json").read_text())["this"]
    steps = {(r["scheduler"], r["step"]) for r in rows}
    for scheduler in ("asha", "hyperband"):
        for step in ("claim", "heartbeat", "report", "end", "heartbeat (cold)"):
            assert (scheduler, step) in steps
    assert all(0 < r["median"] <= r["p99"] <= r["max"] for r in rows)


def test_benchmark_files_stay_small() -> None:
    """Measurement helpers are shared (benchmarks/measure.py), so no script grows past
    ~250 lines."""
    sizes = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "benchmarks").glob("*.py")}
    assert max(sizes.values()) <= 260, sizes


def test_search_benchmark_smoke(tmp_path: Path, fashion_root: Path) -> None:
    """Our ASHA with random search and BOHB, 12 s each, and the suggestion cost at a tiny
    size: the traces come from the journal, the table names the target."""
    subprocess.run(
        [sys.executable, "benchmarks/search.py", "--seeds", "0", "--budget", "12",
         "--epochs", "2", "--train-fraction", "0.02", "--systems", "lit_hpo ASHA+random",
         "lit_hpo ASHA+BOHB", "--latency-sizes", "30", "--out", str(tmp_path),
         "--workdir", str(tmp_path / "work")],
        cwd=ROOT, check=True, capture_output=True, text=True, timeout=300,
        env={**os.environ, "LIT_HPO_DATA": str(fashion_root)},
    )  # fmt: skip
    results = json.loads((tmp_path / "search.json").read_text())
    (run,) = results["runs"]["lit_hpo ASHA+BOHB"]
    assert run["epochs"] >= 2 and all(0 <= v <= 1 for _, v in run["trace"])
    assert results["summary"]["lit_hpo ASHA+random"]["reached"] == "1/1"
    assert [(r["searcher"], r["trials"]) for r in results["latency"]] == [("bohb", 30), ("tpe", 30)]
    assert all(r["lock_ms"]["max"] < r["claim_ms"]["max"] for r in results["latency"])
    assert "time to" in (tmp_path / "search.md").read_text()
