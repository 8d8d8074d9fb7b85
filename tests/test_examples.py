"""The textbook notebooks in examples/, executed for real (a Jupyter kernel, real
workers, FashionMNIST) at a tiny size: the objective is defined in a notebook cell and
sent to the workers by value."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"
TINY = """n_workers = 2
max_wallclock_time = None
max_trials = {trials}
max_epochs = 2
batches_per_epoch = 8
min_number_of_epochs = 1
eta = 2"""


# The textbook's Syne Tune notebooks (../shared/seeds), every non-blank, non-comment code
# line: imports, settings, objective, scheduler/backend/tuner, run, both figures.
SYNE_TUNE_LINES = {"19_3_async_random_search": 69, "19_5_asha": 78}


def code_lines(notebook: object) -> int:
    return sum(1 for cell in notebook.cells if cell.cell_type == "code"  # type: ignore[attr-defined]
               for line in cell.source.splitlines()
               if line.strip() and not line.strip().startswith("#"))  # fmt: skip


@pytest.mark.parametrize("name", sorted(SYNE_TUNE_LINES))
def test_the_notebook_is_no_longer_than_the_syne_tune_version(name: str) -> None:
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(EXAMPLES / f"{name}.ipynb", as_version=4)
    assert code_lines(notebook) <= SYNE_TUNE_LINES[name]


@pytest.mark.slow
@pytest.mark.parametrize("name, trials", [("19_3_async_random_search", 3),
                                          ("19_5_asha", 4)])  # fmt: skip
def test_the_notebook_runs(name: str, trials: int, tmp_path: Path, fashion_root: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(EXAMPLES / f"{name}.ipynb", as_version=4)
    settings = [c for c in notebook.cells if c.source.startswith("# Settings")]
    assert len(settings) == 1, "one settings cell, which the test makes tiny"
    settings[0].source = TINY.format(trials=trials)
    monkeypatch.setenv("LIT_HPO_DATA", str(fashion_root))
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "src") + os.pathsep + str(ROOT))
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
    client.execute()

    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") for o in outputs)
    assert "validation_error: best" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2, "the incumbent trajectory and the learning curves"
    studies = list((tmp_path / "studies").iterdir())
    assert len(studies) == 1 and (studies[0] / "journal.jsonl").is_file()
    from lit_hpo import load_study

    study = load_study(studies[0])
    assert len(study.trials) == trials
    assert set(study.trials.status) <= {"completed", "stopped"}
    assert study.state.trials[0].config == {"learning_rate": 0.1, "batch_size": 128}
    if name == "19_5_asha":  # Lightning's logs land in each trial's directory
        assert list((studies[0] / "trial_0" / "lightning_logs").iterdir())
