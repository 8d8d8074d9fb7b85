"""HPOCallback with a real Trainer and a scripted model (Lightning's BoringModel idea)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from lit_hpo import HPOCallback
from lit_hpo.callback import MetricNotLoggedError
from lit_hpo.context import TrialContext, trial_context
from lit_hpo.spec import spec_from_config
from lit_hpo.study import StudyClient
from tests.conftest import SEEDS
from tests.scripted import ScriptedModel, scripted_trainer


@pytest.fixture
def study(tmp_path: Path) -> StudyClient:
    """A seeds study where an earlier trial reached every rung with the value 0.5."""
    client = StudyClient(tmp_path / "study")
    client.open(spec_from_config(SEEDS), n_workers=1)
    earlier = client.claim(0)
    assert earlier is not None
    for epoch in range(1, 11):
        client.report(earlier.trial_id, epoch, 0.5)
    client.end(earlier.trial_id, "completed")
    return client


def _run(study: StudyClient, tmp_path: Path, model: L.LightningModule, **kwargs: Any) -> L.Trainer:
    trial = study.claim(0)
    assert trial is not None
    trainer = scripted_trainer(tmp_path, **kwargs)
    with trial_context(TrialContext(str(study.directory), trial.trial_id)):
        trainer.fit(model)
    return trainer


@pytest.mark.parametrize(
    "values, stopped_after",
    [
        pytest.param([0.9] * 10, 2, id="worse-at-first-rung-stops-at-2"),
        pytest.param([0.4] * 3 + [0.6] * 7, 4, id="worse-at-second-rung-stops-at-4"),
        pytest.param([0.4] * 10, 10, id="better-everywhere-completes"),
    ],
)
def test_stop_lands_at_the_rung(
    study: StudyClient, tmp_path: Path, values: list[float], stopped_after: int
) -> None:
    trainer = _run(study, tmp_path, ScriptedModel(values))
    reports = study.refresh().trials[1].reports
    assert [r.epoch for r in reports] == list(range(1, stopped_after + 1))  # no sanity report
    assert trainer.current_epoch == stopped_after  # the trainer stopped in that same epoch
    assert reports[-1].decision == ("stop" if stopped_after < 10 else "continue")


def test_missing_metric_fails_with_the_logged_names(study: StudyClient, tmp_path: Path) -> None:
    with pytest.raises(MetricNotLoggedError, match=r"'validation_error' was not logged.*'val_acc'"):
        _run(study, tmp_path, ScriptedModel([0.1] * 10, name="val_acc"))


def test_nan_is_recorded_explicitly_and_stops(study: StudyClient, tmp_path: Path) -> None:
    trainer = _run(study, tmp_path, ScriptedModel([0.4, math.nan] + [0.1] * 8))
    reports = study.refresh().trials[1].reports
    assert [(r.raw, r.reason) for r in reports] == [(None, None), ("nan", "nonfinite")]
    assert reports[0].value == pytest.approx(0.4) and reports[1].value is None
    assert trainer.current_epoch == 2
    assert "NaN" not in study.journal.path.read_text()


def test_outside_a_study_the_callback_does_nothing(tmp_path: Path) -> None:
    trainer = scripted_trainer(tmp_path, max_epochs=3)
    trainer.fit(ScriptedModel([0.9] * 3))
    assert trainer.current_epoch == 3


def test_monitor_must_match_the_study_metric(study: StudyClient, tmp_path: Path) -> None:
    trial = study.claim(0)
    assert trial is not None
    trainer = scripted_trainer(tmp_path)
    trainer.callbacks = [HPOCallback(monitor="val_loss")]  # type: ignore[misc]
    with (
        trial_context(TrialContext(str(study.directory), trial.trial_id)),
        pytest.raises(ValueError, match="optimizes 'validation_error'"),
    ):
        trainer.fit(ScriptedModel([0.1] * 10))


def test_mode_must_match_the_study_mode(study: StudyClient, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"HPOCallback\(mode='maximize'\): use mode='min'"):
        HPOCallback(mode="maximize")
    trial = study.claim(0)
    assert trial is not None
    trainer = scripted_trainer(tmp_path)
    trainer.callbacks = [HPOCallback(monitor="validation_error", mode="max")]  # type: ignore[misc]
    with (
        trial_context(TrialContext(str(study.directory), trial.trial_id)),
        pytest.raises(
            ValueError, match=r"mode='max'\) but the study's .* is minimized.*hpo.mode=max"
        ),
    ):
        trainer.fit(ScriptedModel([0.1] * 10))
    assert study.refresh().trials[trial.trial_id].reports == []  # nothing reported
    trainer = scripted_trainer(tmp_path / "agreeing", max_epochs=2)
    trainer.callbacks = [HPOCallback(mode="min")]  # type: ignore[misc]
    with trial_context(TrialContext(str(study.directory), trial.trial_id)):
        trainer.fit(ScriptedModel([0.1] * 10))
    assert [r.epoch for r in study.refresh().trials[trial.trial_id].reports] == [1, 2]


def test_ddp_ranks_stop_together(study: StudyClient, tmp_path: Path) -> None:
    """Two CPU processes (DDP over gloo, forked): rank 0 reports once per epoch; both ranks
    stop at 2. (Under ddp_spawn, about 1 run in 10 here ended with rank 1 aborting in
    teardown, "terminate called without an active exception", after the reports were
    right; not understood yet, noted in the issue. The forked launcher passed 10 of 10.)"""
    trial = study.claim(0)
    assert trial is not None
    trainer = scripted_trainer(tmp_path, strategy="ddp_notebook", devices=2)
    with trial_context(TrialContext(str(study.directory), trial.trial_id)):
        trainer.fit(ScriptedModel([0.9] * 10))
    # Had one rank kept training, the other would block in the next epoch's collective
    # and fit() would never return; the ranks run in forked children (gloo), so the
    # journal is where we see the epoch they stopped at.
    reports = study.refresh().trials[1].reports
    assert [(r.epoch, r.decision) for r in reports] == [(1, "continue"), (2, "stop")]


class MomentumModel(ScriptedModel):
    """SGD with momentum, recording which epochs it validated."""

    def __init__(self, values: list[float]) -> None:
        super().__init__(values)
        self.validated: list[int] = []

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9)

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self.validated.append(self.current_epoch + 1)


def test_a_resumed_attempt_continues_at_the_right_epoch_with_its_optimizer_state(
    study: StudyClient, tmp_path: Path
) -> None:
    from lit_hpo.checkpoints import resume_point

    claim = study.claim(0)
    assert claim is not None
    values = [0.4] * 10
    first = scripted_trainer(tmp_path, max_epochs=3)
    with trial_context(TrialContext(str(study.directory), claim.trial_id)):
        first.fit(MomentumModel(values))
    momentum = first.optimizers[0].state_dict()["state"][0]["momentum_buffer"].clone()
    weights = first.lightning_module.layer.weight.detach().clone()
    study.lose(claim.trial_id, 0, "worker_died")  # as if the worker had died after epoch 3
    again = study.claim(1)
    assert again is not None and (again.trial_id, again.attempt, again.from_epoch) == (1, 1, 3)
    reported = [(r.epoch, r.attempt) for r in again.trial.reports]
    epoch, path = resume_point(study.directory, again.trial_id, reported)
    model = MomentumModel(values)
    restored: dict[str, torch.Tensor] = {}

    class Peek(L.Callback):
        def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            state = trainer.optimizers[0].state_dict()["state"][0]
            restored["momentum"] = state["momentum_buffer"].clone()
            restored["weights"] = pl_module.layer.weight.detach().clone()

    second = scripted_trainer(tmp_path, max_epochs=6)
    second.callbacks.append(Peek())  # type: ignore[attr-defined]
    context = TrialContext(str(study.directory), again.trial_id, attempt=1, resume_from=str(path))
    with trial_context(context):
        second.fit(model, ckpt_path=str(path))
    assert epoch == 3 and model.validated == [4, 5, 6]
    assert torch.equal(restored["momentum"], momentum) and torch.equal(restored["weights"], weights)
    reports = study.refresh().trials[1].reports
    assert [(r.epoch) for r in reports] == [1, 2, 3, 4, 5, 6]


def test_resume_without_ckpt_path_fails_instead_of_restarting(
    study: StudyClient, tmp_path: Path
) -> None:
    from lit_hpo.callback import ResumeNotAppliedError

    claim = study.claim(0)
    assert claim is not None
    context = TrialContext(str(study.directory), claim.trial_id, resume_from="/some/epoch_2.ckpt")
    with trial_context(context), pytest.raises(ResumeNotAppliedError, match="ckpt_path"):
        scripted_trainer(tmp_path).fit(ScriptedModel([0.4] * 10))


def test_a_stale_attempt_is_stopped_without_writing(study: StudyClient, tmp_path: Path) -> None:
    claim = study.claim(0)
    assert claim is not None
    study.lose(claim.trial_id, 0, "lease_expired")
    study.claim(1)  # attempt 1 takes over
    before = study.journal.path.read_bytes()
    trainer = scripted_trainer(tmp_path)
    with trial_context(TrialContext(str(study.directory), claim.trial_id, attempt=0)):
        trainer.fit(ScriptedModel([0.1] * 10))  # the zombie attempt 0 goes on training
    assert trainer.current_epoch == 1  # told to stop at its first report
    assert study.journal.path.read_bytes() == before


def test_an_unloadable_callback_state_fails_the_trial_at_its_first_checkpoint(
    study: StudyClient, tmp_path: Path
) -> None:
    from lit_hpo.callback import UnsafeCheckpointError
    from tests.foreign.project import CountingCallback

    claim = study.claim(0)
    assert claim is not None
    trainer = scripted_trainer(tmp_path)
    trainer.callbacks.append(CountingCallback())  # type: ignore[attr-defined]
    with (
        trial_context(TrialContext(str(study.directory), claim.trial_id)),
        pytest.raises(UnsafeCheckpointError) as raised,
    ):
        trainer.fit(ScriptedModel([0.4] * 10))
    message = str(raised.value)
    assert "tests.foreign.project.Opaque" in message  # the offending type
    assert "['callbacks']['CountingCallback']['seen']" in message  # where it sits
    assert "torch.serialization.add_safe_globals([Opaque])" in message  # the fix
    assert trainer.current_epoch == 0  # at once, after the first epoch's checkpoint
    assert study.refresh().trials[claim.trial_id].reports == []  # nothing reported


def test_an_allowed_custom_class_passes_the_check(study: StudyClient, tmp_path: Path) -> None:
    from tests.foreign.project import CountingCallback, Opaque

    claim = study.claim(0)
    assert claim is not None
    trainer = scripted_trainer(tmp_path, max_epochs=2)
    trainer.callbacks.append(CountingCallback())  # type: ignore[attr-defined]
    with (
        torch.serialization.safe_globals([Opaque]),
        trial_context(TrialContext(str(study.directory), claim.trial_id)),
    ):
        trainer.fit(ScriptedModel([0.4] * 10))
    assert [r.epoch for r in study.refresh().trials[claim.trial_id].reports] == [1, 2]


def test_objects_saved_as_hyperparameters_resume_through_lightnings_defaults(
    study: StudyClient, tmp_path: Path
) -> None:
    import functools

    from lit_hpo.checkpoints import resume_point

    class WithObjects(MomentumModel):
        def __init__(self, values: list[float], net: torch.nn.Module, opt: functools.partial):
            super().__init__(values)
            self.save_hyperparameters(logger=False)

    def model() -> WithObjects:
        return WithObjects([0.4] * 10, torch.nn.Linear(2, 2), functools.partial(torch.optim.SGD))

    claim = study.claim(0)
    assert claim is not None
    with trial_context(TrialContext(str(study.directory), claim.trial_id)):
        scripted_trainer(tmp_path, max_epochs=2).fit(model())
    study.lose(claim.trial_id, 0, "worker_died")
    again = study.claim(1)
    assert again is not None
    epoch, path = resume_point(study.directory, again.trial_id, [(1, 0), (2, 0)])
    resumed = model()
    context = TrialContext(str(study.directory), again.trial_id, attempt=1, resume_from=str(path))
    with trial_context(context):
        scripted_trainer(tmp_path, max_epochs=4).fit(
            resumed, ckpt_path=str(path)
        )  # Lightning's defaults
    assert epoch == 2 and resumed.validated == [3, 4]


def test_validate_and_test_outside_fit_neither_report_nor_checkpoint(
    study: StudyClient, tmp_path: Path
) -> None:
    from lit_hpo.checkpoints import trial_checkpoint_dir

    claim = study.claim(0)
    assert claim is not None
    before = study.journal.path.read_bytes()
    with trial_context(TrialContext(str(study.directory), claim.trial_id)):
        scripted_trainer(tmp_path).validate(ScriptedModel([0.4] * 10))
    assert study.journal.path.read_bytes() == before
    assert not trial_checkpoint_dir(study.directory, claim.trial_id).exists()
