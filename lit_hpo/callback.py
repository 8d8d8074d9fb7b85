"""`HPOCallback`: report each validation epoch to the study and stop when told to."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from lit_hpo import context
from lit_hpo.study import StudyClient


class MetricNotLoggedError(RuntimeError):
    """The monitored metric is missing from ``trainer.callback_metrics``."""


class HPOCallback(Callback):
    """Reports the monitored metric at the end of every validation epoch (never during
    the sanity check) and applies the scheduler's decision with
    ``trainer.should_stop = True``.

    Rank 0 reports and receives the decision in the same locked journal step; the
    decision is broadcast so that every rank stops at the same epoch. Outside a study
    (no trial in the environment) the callback does nothing, so the same training script
    also trains a single model.

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

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._trial is None or trainer.sanity_checking:
            return
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
            self._trial.trial_id, trainer.current_epoch + 1, float(value)
        )
        return decision.stop, None
