"""`HPOCallback`: report each validation epoch to the study and stop when told to."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from lit_hpo import checkpoints, context
from lit_hpo.study import StudyClient


class MetricNotLoggedError(RuntimeError):
    """The monitored metric is missing from ``trainer.callback_metrics``."""


class ResumeNotAppliedError(RuntimeError):
    """A resumed trial started from scratch: ``ckpt_path`` was not passed to ``fit``."""


class HPOCallback(Callback):
    """Reports the monitored metric at the end of every validation epoch (never during
    the sanity check) and applies the scheduler's decision with
    ``trainer.should_stop = True``.

    Before each report it writes the epoch's checkpoint atomically into
    ``<study>/checkpoints/trial_<id>/`` (see :mod:`lit_hpo.checkpoints`), so a trial whose
    worker dies resumes from its last reported epoch. Rank 0 reports and receives the
    decision in the same locked journal step; the decision is broadcast so that every
    rank stops at the same epoch. Outside a study (no trial in the environment) the
    callback does nothing, so the same training script also trains a single model.

    Args:
        monitor: the metric to report; default: the study's ``hpo.metric``. If given, it
            must equal the study's metric.
    """

    def __init__(self, monitor: str | None = None) -> None:
        self.monitor = monitor
        self._trial: context.TrialContext | None = None
        self._client: StudyClient | None = None
        self._metric: str | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trial = context.current_trial()
        if self._trial is None or not trainer.is_global_zero:
            return
        self._client = StudyClient(self._trial.study_dir)
        metric = self._client.header["metric"]
        if self.monitor is not None and self.monitor != metric:
            raise ValueError(
                f"HPOCallback(monitor={self.monitor!r}) but the study optimizes {metric!r}; "
                f"drop monitor= or set hpo.metric={self.monitor}."
            )
        self._metric = metric

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trial = self._trial
        if trial is None or trial.resume_from is None or trainer.ckpt_path is not None:
            return
        raise ResumeNotAppliedError(
            f"trial {trial.trial_id} must resume from {trial.resume_from}, but fit() was "
            "given no checkpoint, so it would silently start from scratch; pass it: "
            "trainer.fit(model, data, ckpt_path=lit_hpo.current_trial().resume_from)"
        )

    def _checkpoint(self, trainer: L.Trainer, epoch: int) -> None:
        """Write this epoch's checkpoint atomically (all ranks take part in the save)."""
        assert self._trial is not None
        trial = self._trial
        final = checkpoints.checkpoint_path(trial.study_dir, trial.trial_id, epoch, trial.attempt)
        staged = checkpoints.staging_path(final)
        if trainer.is_global_zero:
            final.parent.mkdir(parents=True, exist_ok=True)
        trainer.strategy.barrier("lit_hpo_checkpoint_dir")
        trainer.save_checkpoint(staged, weights_only=False)
        if trainer.is_global_zero:
            checkpoints.publish(staged, final)
            checkpoints.prune(self._trial.study_dir, self._trial.trial_id, checkpoints.KEEP_RUNNING)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._trial is None or trainer.sanity_checking:
            return
        self._checkpoint(trainer, trainer.current_epoch + 1)
        outcome: tuple[bool, str | None] = (False, None)
        if trainer.is_global_zero:
            outcome = self._report(trainer)
        stop, error = trainer.strategy.broadcast(outcome, src=0)
        if error is not None:
            raise MetricNotLoggedError(error)
        if stop:
            trainer.should_stop = True

    def _report(self, trainer: L.Trainer) -> tuple[bool, str | None]:
        assert self._client is not None and self._trial is not None and self._metric
        value: Any = trainer.callback_metrics.get(self._metric)
        if value is None:
            logged = sorted(trainer.callback_metrics)
            return False, (
                f"the monitored metric {self._metric!r} was not logged; logged metrics: "
                f"{logged}. Did you call self.log({self._metric!r}, value) in "
                "validation_step? Or set hpo.metric to one of the logged names."
            )
        decision = self._client.report(
            self._trial.trial_id, trainer.current_epoch + 1, float(value), self._trial.attempt
        )
        return decision.stop, None
