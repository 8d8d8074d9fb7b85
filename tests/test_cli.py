"""`lit-hpo` subcommands against a recorded real study (tests/data/asha_study)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from lit_hpo.cli import main
from lit_hpo.space import config_text
from lit_hpo.spec import spec_from_config
from lit_hpo.study import StudyClient
from tests.conftest import SEEDS


@pytest.fixture
def study_dir(recorded_study: Path) -> Path:
    return recorded_study


def test_status_prints_the_seeds_table(study_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", str(study_dir)]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[1].split()
    assert header[:4] == ["trial_id", "status", "learning_rate", "batch_size"]
    assert "0 trials running, 11 finished (5 until the end, 6 stopped, 0 failed)" in out
    assert out.rstrip().endswith("validation_error: best 0.1707 for trial-id 8")


@pytest.mark.parametrize("age", [0.0, 50.0], ids=["heard-from", "silent"])
def test_status_of_a_running_study_names_its_workers_and_a_silent_one(
    tmp_path: Path, age: float, capsys: pytest.CaptureFixture[str]
) -> None:
    client = StudyClient(tmp_path, clock=lambda: time.time() - age)  # its last record: age s ago
    client.open(spec_from_config({**SEEDS, "lease_seconds": 60.0}), n_workers=2)
    claim = client.claim(1)
    assert claim is not None
    client.report(claim.trial.trial_id, 1, 0.5)
    assert main(["status", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    running = (f"worker 1: trial 0 ({config_text(claim.trial.config)}), epoch 1, "
               "validation_error 0.5000")  # fmt: skip
    assert lines[-2] == "worker 0: idle"
    silent = r"; silent for 5\d s \(lease 60 s\)" if age else ""  # 50 s and the test's own
    assert re.fullmatch(re.escape(running) + silent, lines[-1]), lines[-1]
    assert lines[-3] == "validation_error: best 0.5 for trial-id 0"


def test_best_prints_overrides_that_train_py_accepts(
    study_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["best", str(study_dir)]) == 0
    comment, overrides = capsys.readouterr().out.splitlines()
    assert comment.startswith("# validation_error 0.1707 (trial 8")
    assert overrides == "model.learning_rate=0.3562832156452189 data.batch_size=103"
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides.split())
    assert [(o.key_or_group, o.value()) for o in parsed] == [
        ("model.learning_rate", 0.3562832156452189),
        ("data.batch_size", 103),
    ]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export(study_dir: Path, tmp_path: Path, fmt: str) -> None:
    assert main(["export", str(study_dir), "--format", fmt, "--out", str(tmp_path / "x")]) == 0
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    results = read(tmp_path / "x" / f"results.{fmt}")
    trials = read(tmp_path / "x" / f"trials.{fmt}")
    assert len(trials) == 11 and list(trials.trial_id) == list(range(11))
    assert set(results.columns) >= {
        "trial_id",
        "epoch",
        "validation_error",
        "time",
        "worker",
        "decision",
    }
    assert results.groupby("trial_id").epoch.max().tolist() == trials.epochs.tolist()


def test_plot_writes_pngs(study_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plot", str(study_dir)]) == 0
    written = capsys.readouterr().out.split()
    assert {Path(p).name for p in written} == {
        "incumbent.png",
        "learning_curves.png",
        "timeline.png",
        "hyperparameters.png",
    }
    assert all(Path(p).is_file() for p in written)


@pytest.mark.parametrize("command", ["status", "plot", "best", "export"])
def test_missing_or_empty_directory_says_what_was_expected(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, str(tmp_path / "missing")]) == 2
    assert "holds no journal.jsonl" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "journal.jsonl").touch()
    assert main([command, str(tmp_path / "empty")]) == 2
    assert "no study journal with a header" in capsys.readouterr().err


def test_best_of_a_study_without_reports(
    study_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = study_dir / "journal.jsonl"
    journal.write_text(journal.read_text().splitlines()[0] + "\n")
    assert main(["best", str(study_dir)]) == 2
    assert "no trial" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["status", "plot", "best", "export"])
def test_help_of_each_command(command: str) -> None:
    out = subprocess.run([sys.executable, "-m", "lit_hpo.cli", command, "--help"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "directory" in out and "hydra.sweep.dir" in out


def test_export_as_a_journal_copies_complete_lines_and_never_follows_a_link(
    study_dir: Path, tmp_path: Path
) -> None:
    journal = study_dir / "journal.jsonl"
    whole = journal.read_bytes()
    journal.write_bytes(whole + b'{"op": "report", "tri')  # a writer died mid-append
    out = tmp_path / "out"
    assert main(["export", str(study_dir), "--format", "jsonl", "--out", str(out)]) == 0
    assert (out / "journal.jsonl").read_bytes() == whole
    secret = tmp_path / "secret.txt"
    secret.write_text("not a journal\n")
    journal.unlink()
    journal.symlink_to(secret)  # planted: export must not copy what it points to
    assert main(["export", str(study_dir), "--format", "jsonl", "--out", str(tmp_path)]) == 2
    assert not (tmp_path / "journal.jsonl").exists()
