"""Smoke test: the journal benchmark runs end to end at a tiny size (peers not needed)."""

from __future__ import annotations

import json
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
