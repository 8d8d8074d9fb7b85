"""A config written for hydra-optuna-sweeper runs under lit_hpo's sweeper with pruning
added, or fails naming the field to change: the translation table, and the README's
migration applied literally to a foreign project (real Hydra, real FashionMNIST)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lit_hpo import load_study
from lit_hpo.journal import Journal
from lit_hpo.optuna_sweeper import translate
from lit_hpo.settings import DEFAULTS
from tests.conftest import study_env

FOREIGN = Path(__file__).parent / "foreign"
OPTUNA_CONFIG = {
    "params": {"model.optimizer.lr": "interval(0.0001, 0.1)", "data.batch_size": "choice(32, 64)"},
    "sampler": {"_target_": "optuna.samplers.TPESampler", "seed": 1234, "n_startup_trials": 4},
    "direction": "maximize", "n_trials": 20, "n_jobs": 2, "storage": None, "study_name": None,
}  # fmt: skip


def test_every_field_of_a_typical_config_has_its_hpo_setting() -> None:
    hpo = translate(OPTUNA_CONFIG, {"scheduler": "asha", "metric": "val/acc"})
    assert hpo == {
        "scheduler": "asha", "metric": "val/acc", "space": OPTUNA_CONFIG["params"],
        "mode": "max", "max_trials": 20, "max_wallclock_time": None, "n_workers": 2,
        "searcher": "tpe", "seed": 1234, "min_points": 4,
    }  # fmt: skip


def test_a_node_without_optuna_fields_changes_nothing() -> None:
    hpo = {"scheduler": "asha", "space": {"x": "interval(0, 1)"}}
    assert translate({"_target_": "x", "params": None, "sampler": None}, hpo) is hpo


def test_a_time_budget_set_in_hpo_is_kept() -> None:
    assert translate({"n_trials": 5}, {"max_wallclock_time": 60})["max_wallclock_time"] == 60
    default = translate({"n_trials": 5}, {"max_wallclock_time": DEFAULTS.max_wallclock_time})
    assert default["max_wallclock_time"] is None


@pytest.mark.parametrize(
    ("fields", "hpo", "message"),
    [
        ({"storage": "sqlite:///x.db"}, {}, "hydra.sweeper.storage='sqlite:///x.db': lit_hpo's study is its journal"),
        ({"study_name": "s"}, {}, "remove hydra.sweeper.study_name"),
        ({"search_space": {"x": "interval(0, 1)"}}, {}, "rename hydra.sweeper.search_space to hydra.sweeper.params"),
        ({"custom_search_space": "pkg.fn"}, {}, "does not run a function to define the space"),
        ({"max_failure_rate": 0.5}, {}, "remove hydra.sweeper.max_failure_rate"),
        ({"direction": ["minimize", "maximize"]}, {}, "several directions are not supported"),
        ({"sampler": {"_target_": "optuna.samplers.NSGAIISampler"}}, {}, "sampler._target_='optuna.samplers.NSGAIISampler' has no lit_hpo searcher"),
        ({"sampler": {"_target_": "optuna.samplers.TPESampler", "multivariate": True}}, {}, "hydra.sweeper.sampler.multivariate=True has no lit_hpo equivalent; remove it"),
        ({"n_jobs": 4}, {"n_workers": 2}, "hydra.sweeper.n_jobs=4 and hpo.n_workers=2 disagree"),
        ({"params": {"x": "interval(0, 1)"}}, {"space": {"x": "interval(0, 2)"}}, "hydra.sweeper.params.x='interval(0, 1)' and hpo.space.x='interval(0, 2)' disagree"),
    ],
)  # fmt: skip
def test_what_cannot_be_translated_names_the_field(
    fields: dict[str, Any], hpo: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as info:
        translate(fields, hpo)
    assert message in str(info.value)


def migrate(text: str) -> str:
    """The README's three edits of a hydra-optuna-sweeper config."""
    text = text.replace("override /hydra/sweeper: optuna", "override /hydra/sweeper: lit_hpo")
    text = text.replace(
        "    _target_: hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper\n", ""
    )
    pruning = "hpo:\n  scheduler: asha\n  metric: val/loss\n  grace_period: 1\n\n"
    return text.replace('hydra:\n  mode: "MULTIRUN"', pruning + 'hydra:\n  mode: "MULTIRUN"')


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The foreign project, in a directory of its own, with the migrated config."""
    target = tmp_path / "their_project"
    shutil.copytree(FOREIGN, target, ignore=shutil.ignore_patterns("__pycache__"))
    search = target / "conf" / "hparams_search"
    (search / "lit_hpo.yaml").write_text(migrate((search / "optuna.yaml").read_text()))
    return target


def _run(project: Path, study: Path, fashion_root: Path, *overrides: str) -> Any:
    return subprocess.run(
        [sys.executable, "train.py", "-m", "hparams_search=lit_hpo", *overrides,
         f"hydra.sweep.dir={study}"],
        cwd=project, env=study_env(fashion_root), capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.slow
def test_a_hydra_optuna_sweeper_config_runs_with_pruning_after_the_migration(
    tmp_path: Path, project: Path, fashion_root: Path
) -> None:
    study = tmp_path / "study"
    result = _run(project, study, fashion_root)
    assert result.returncode == 0, result.stdout + result.stderr
    header = Journal(study / "journal.jsonl").read(0)[0][0]
    assert header["searcher"]["name"] == "tpe" and header["searcher"]["min_points"] == 4
    assert (header["seed"], header["mode"], header["metric"]) == (1234, "min", "val/loss")
    assert header["budget"] == {"max_wallclock_time": None, "max_trials": 10}
    assert set(header["space"]) == {"model.optimizer.lr", "data.batch_size"}
    state = load_study(study).state
    assert state.sessions[-1][2] == 2  # n_jobs: 2 workers
    assert len(state.trials) == 10 and {t.status for t in state.trials} <= {"completed", "stopped"}
    assert any(t.status == "stopped" for t in state.trials)  # the pruning it adds
    assert {t.by for t in state.trials} >= {"random", "model"}


@pytest.mark.slow
def test_a_field_lit_hpo_cannot_honour_fails_before_anything_runs(
    tmp_path: Path, project: Path, fashion_root: Path
) -> None:
    study = tmp_path / "study"
    result = _run(project, study, fashion_root, "hydra.sweeper.storage=sqlite:///optuna.db")
    assert result.returncode != 0
    assert "hydra.sweeper.storage='sqlite:///optuna.db'" in result.stderr
    assert "remove hydra.sweeper.storage" in result.stderr
    assert not (study / "journal.jsonl").exists()
