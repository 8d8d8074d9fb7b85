"""``lit_hpo.tune``: real worker processes, a real journal, real files.

The functions live in tests/tune_objectives.py (sent to the workers by reference); a
script's ``__main__`` function goes by value (test below), a notebook cell's in
tests/test_examples.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import lit_hpo
from lit_hpo import choice, loguniform, randint, tune, uniform
from lit_hpo.launcher import TaskLoadError
from lit_hpo.searchers import random_suggest as suggest
from lit_hpo.space import space_from_json
from lit_hpo.tuning import StudyStoppedError
from tests import tune_objectives as objectives
from tests.conftest import ROOT

SPACE = {"learning_rate": loguniform(1e-2, 1), "batch_size": randint(32, 256), "max_epochs": 4}
QUICK = {"n_workers": 2, "max_wallclock_time": None, "grace_period": 1}


def test_an_asha_study_of_a_plain_function(tmp_path: Path) -> None:
    study = tune(objectives.curve, SPACE, study_dir=tmp_path / "s", max_trials=8, **QUICK)
    trials = study.trials
    assert len(trials) == 8 and set(trials.status) <= {"completed", "stopped"}
    assert (trials.status == "stopped").any() and (trials.status == "completed").any()
    # The same configurations as `-m` would give trial i with this seed and space.
    space = space_from_json(study.header["space"])
    for trial in study.state.trials:
        assert trial.config == suggest(space, [], 0, trial.trial_id)
        call = json.loads((tmp_path / "s" / f"trial_{trial.trial_id}" / "call.json").read_text())
        assert call["cwd"] == str(tmp_path / "s" / f"trial_{trial.trial_id}")
        assert call["max_epochs"] == 4 and call["learning_rate"] == trial.config["learning_rate"]
    assert {report.epoch for t in study.state.trials for report in t.reports} == {1, 2, 3, 4}
    assert study.best is not None and study.best.value == trials.best_validation_error.min()
    assert (tmp_path / "s" / "incumbent.png").stat().st_size > 0
    assert study.plot() is not None and study.plot_learning_curves() is not None


def test_tune_takes_a_model_based_searcher(tmp_path: Path) -> None:
    """``searcher="bohb"`` (README "Search that learns") through ``tune``: the model
    proposes once enough trials reported, and a fresh replay recomputes every config."""
    from lit_hpo.repair import scan

    study = tune(objectives.curve, SPACE, study_dir=tmp_path / "s", max_trials=12,
                 searcher="bohb", min_points=3, **QUICK)  # fmt: skip
    assert "model" in set(study.trials.proposed_by)
    assert scan(tmp_path / "s" / "journal.jsonl")[0] == []


def test_promoted_trials_resume_from_the_state_they_reported(tmp_path: Path) -> None:
    space = {"learning_rate": uniform(0.1, 1.0), "max_epochs": 4}
    study = tune(objectives.resumable, space, study_dir=tmp_path / "s", max_trials=6,
                 scheduler="asha_promotion", **QUICK)  # fmt: skip
    resumed = [t for t in study.state.trials if t.attempt > 0]
    assert resumed, "some paused trial was promoted"
    for trial in study.state.trials:
        epochs = [report.epoch for report in trial.reports]
        assert epochs == list(range(1, len(epochs) + 1)), "no epoch repeated or skipped"
    for trial in resumed:
        lines = (tmp_path / "s" / f"trial_{trial.trial_id}" / "resumes.txt").read_text().split()
        assert len(lines) == trial.attempt  # each attempt started from its checkpoint


def test_a_function_that_never_reports_stops_the_study_at_once(tmp_path: Path) -> None:
    with pytest.raises(StudyStoppedError, match=r"lit_hpo\.report\(epoch=\.\.\., "
                                                r"validation_error=\.\.\.\)"):  # fmt: skip
        tune(objectives.silent, {"learning_rate": loguniform(0.01, 1), "max_epochs": 3},
             study_dir=tmp_path / "s", max_trials=50, **QUICK)  # fmt: skip
    assert len(lit_hpo.load_study(tmp_path / "s").state.trials) <= 3  # of 50: at once


@pytest.mark.parametrize(
    "function, scheduler, message",
    [
        (objectives.wrong_metric, "asha", "got val_loss but not 'validation_error'"),
        (objectives.no_checkpoint, "asha_promotion", r"pass the epoch's state"),
    ],
)
def test_a_report_the_study_cannot_use_stops_it(tmp_path, function, scheduler, message) -> None:
    with pytest.raises(StudyStoppedError, match=message):
        tune(function, {"learning_rate": loguniform(0.01, 1), "max_epochs": 3},
             study_dir=tmp_path / "s", max_trials=50, scheduler=scheduler, **QUICK)  # fmt: skip
    assert len(lit_hpo.load_study(tmp_path / "s").state.trials) <= 3


def test_a_worker_that_cannot_import_the_function_stops_the_study(tmp_path: Path) -> None:
    package = tmp_path / "gone"
    package.mkdir()
    (package / "vanishing_module.py").write_text(
        "import lit_hpo\n\ndef train(learning_rate, max_epochs):\n"
        "    lit_hpo.report(epoch=1, validation_error=learning_rate)\n"
    )
    sys.path.insert(0, str(package))
    try:
        import vanishing_module  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(package))
    (package / "vanishing_module.py").unlink()  # importable here, not in a worker
    # A thread runs, as in a notebook kernel: workers then come from the fork server,
    # which has to import the function (a worker forked from here would inherit it).
    stop = threading.Event()
    threading.Thread(target=stop.wait, daemon=True).start()
    with pytest.raises(
        TaskLoadError,
        match=r"(?s)vanishing_module\.train.*No module named "
        r"'vanishing_module'.*make that module importable",
    ):
        tune(vanishing_module.train, {"learning_rate": loguniform(0.01, 1), "max_epochs": 3},
             study_dir=tmp_path / "s", max_trials=10, **QUICK)  # fmt: skip
    stop.set()
    assert lit_hpo.load_study(tmp_path / "s").state.trials == []  # no trial ran at all


def _lock_user() -> object:
    lock = threading.Lock()

    def train(learning_rate: float, max_epochs: int) -> None:  # a closure: sent by value
        with lock:
            pass

    return train


@pytest.mark.parametrize(
    "function, space, settings, error, message",
    [
        (
            objectives.curve,
            SPACE,
            {"max_trial": 3},
            ValueError,
            r"unknown setting `max_trial`\. Did you mean `max_trials`\?",
        ),
        (
            objectives.curve,
            SPACE,
            {"max_trials": 0},
            ValueError,
            r"`max_trials` must be a positive integer",
        ),
        (
            objectives.curve,
            {"learning_rate": loguniform(1e-2, 1)},
            {"max_trials": 3},
            ValueError,
            r"put a fixed max_epochs in the config space",
        ),
        (
            objectives.silent,
            SPACE,
            {"max_trials": 3},
            TypeError,
            r"does not take 'batch_size'.*named config",
        ),
        (
            objectives.curve,
            {**SPACE, "extra": 1},
            {"max_trials": 3},
            TypeError,
            r"does not take 'extra'",
        ),
        (
            _lock_user(),
            {"learning_rate": loguniform(1e-2, 1), "max_epochs": 2},
            {"max_trials": 3},
            TypeError,
            r"cannot be sent to the worker processes.*inside it",
        ),
        (
            objectives.curve,
            {"learning_rate": [0.01, 0.1], "max_epochs": 2},
            {"max_trials": 3},
            ValueError,
            r"no range to search: every entry \(learning_rate, max_epochs\).*choice\(\[0.01, 0.1\]\)",
        ),
        (
            objectives.curve,
            {1: loguniform(1e-2, 1), "max_epochs": 2},
            {"max_trials": 3},
            TypeError,
            r"argument names, so strings, but one is 1 \(int\); write it as '1'",
        ),
    ],
    ids=[
        "typo",
        "bad-value",
        "no-max-epochs",
        "signature",
        "extra-key",
        "unpicklable",
        "no-domain",
        "name-not-a-string",
    ],
)
def test_bad_arguments_fail_before_anything_is_written(tmp_path, function, space, settings,
                                                      error, message) -> None:  # fmt: skip
    with pytest.raises(error, match=message):
        tune(function, space, study_dir=tmp_path / "s", **settings)
    assert not (tmp_path / "s").exists()


def test_a_long_list_meant_as_a_choice_is_named_without_its_values(tmp_path) -> None:
    """The no-range message quotes a list as a choice, but not a list of 10,000 values."""
    space = {"learning_rate": [i / 10_000 for i in range(10_000)], "max_epochs": 2}
    with pytest.raises(ValueError) as caught:
        tune(objectives.curve, space, study_dir=tmp_path / "s", max_trials=3)
    message = str(caught.value)
    assert "choice([0.0, 0.0001, 0.0002, 0.0003, 0.0004, 0.0005, ...])" in message
    assert len(message) < 400 and not (tmp_path / "s").exists()


def test_the_domain_helpers_check_their_range_when_called() -> None:
    with pytest.raises(ValueError, match=r"`choice`: choice\(\.\.\.\) needs at least one"):
        choice([])
    with pytest.raises(ValueError, match=r"`loguniform\(0, 1\)`: a log range needs low > 0"):
        loguniform(0, 1)
    with pytest.raises(TypeError, match="takes a list of options"):
        choice("abc")
    assert randint(32, 256).to_json() == {"type": "randint", "low": 32, "high": 256}


def test_running_it_again_continues_the_study(tmp_path: Path) -> None:
    first = tune(objectives.curve, SPACE, study_dir=tmp_path / "s", max_trials=3, **QUICK)
    before = [(t.trial_id, t.config, len(t.reports)) for t in first.state.trials]
    again = tune(objectives.curve, SPACE, study_dir=tmp_path / "s", max_trials=5, **QUICK)
    assert len(again.state.trials) == 5
    assert [(t.trial_id, t.config, len(t.reports)) for t in again.state.trials[:3]] == before
    with pytest.raises(ValueError, match="created with different settings"):
        tune(objectives.curve, SPACE, study_dir=tmp_path / "s", max_trials=6, seed=1, **QUICK)


SCRIPT = """
import lit_hpo

def objective(learning_rate, max_epochs):  # defined in __main__: sent by value
    for epoch in range(1, max_epochs + 1):
        lit_hpo.report(epoch=epoch, validation_error=1 / (epoch * learning_rate + 1))

if __name__ == "__main__":
    study = lit_hpo.tune(objective, {"learning_rate": lit_hpo.loguniform(0.01, 1),
                                     "max_epochs": 3},
                         study_dir="study", n_workers=2, max_trials=4, max_wallclock_time=None)
    print("TRIALS", len(study.trials), "BEST", study.best.trial_id)
"""


def test_a_script_function_defined_in_main(tmp_path: Path) -> None:
    (tmp_path / "script.py").write_text(SCRIPT)
    result = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=180, env={"PYTHONPATH": str(ROOT / "src"),
                            "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TRIALS 4 BEST" in result.stdout


def test_settings_that_cannot_run_are_reported_as_such(tmp_path: Path, monkeypatch) -> None:
    """A trial needing more GPUs than visible fails before the journal exists, with its
    own message (not masked by the end-of-run summary)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with pytest.raises(ValueError, match=r"a trial needs 2 GPUs .* only 1 are visible"):
        tune(objectives.curve, SPACE, study_dir=tmp_path / "s", max_trials=2,
             devices_per_trial=2)  # fmt: skip
    assert not (tmp_path / "s" / "journal.jsonl").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ({"lit_hpo_report": {"epoch": 9}, "state": {}}, r"does not hold the state of epoch 2"),
        ({"lit_hpo_report": "forged", "state": {}}, r"it says None"),
        ({"lit_hpo_report": {"epoch": 2}}, r"does not hold the state of epoch 2"),
        ({"epoch": 2, "state_dict": {}}, r"was written by HPOCallback"),
    ],
    ids=["other-epoch", "not-a-mapping", "no-state", "lightning"],
)
def test_a_checkpoint_that_does_not_match_its_name_is_not_resumed(tmp_path, content, message):
    """The epoch to continue after comes from the journal-checked name, never the file."""
    import torch

    from lit_hpo.checkpoints import checkpoint_path
    from lit_hpo.context import TrialContext, trial_context
    from lit_hpo.reporter import ReportError, load_checkpoint

    path = checkpoint_path(tmp_path, 0, 2, 0)
    path.parent.mkdir(parents=True)
    torch.save(content, path)
    context = TrialContext(str(tmp_path), 0, attempt=1, resume_from=str(path))
    with trial_context(context), pytest.raises(ReportError, match=message):
        load_checkpoint()
    torch.save({"lit_hpo_report": {"epoch": 2}, "state": {"w": 1}}, path)
    with trial_context(context):
        checkpoint = load_checkpoint()
    assert checkpoint is not None and (checkpoint.epoch, checkpoint.state) == (2, {"w": 1})
