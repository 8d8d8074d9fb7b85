"""`HPOCallback`: report each validation epoch to the study and stop when told to."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from lit_hpo import checkpoints, context
from lit_hpo.study import StudyClient, trial_client


class MetricNotLoggedError(RuntimeError):
    """The monitored metric is missing from ``trainer.callback_metrics``."""


class ResumeNotAppliedError(RuntimeError):
    """A resumed trial started from scratch: ``ckpt_path`` was not passed to ``fit``."""


class UnsafeCheckpointError(RuntimeError):
    """The trial's checkpoint does not load with ``weights_only=True``, so it could never
    be resumed; raised when the first checkpoint is written, not at resume time."""


class HPOCallback(Callback):
    """Reports the monitored metric after every training epoch that validated (never the
    sanity check) and applies the scheduler's decision with ``trainer.should_stop = True``.

    Before each report it writes the epoch's checkpoint atomically into
    ``<study>/checkpoints/trial_<id>/`` (see :mod:`lit_hpo.checkpoints`), so a trial whose
    worker dies resumes from its last reported epoch. Rank 0 reports and receives the
    decision in the same locked journal step; the decision is broadcast so that every
    rank stops at the same epoch. Outside a study (no trial in the environment), and in
    ``trainer.validate()``/``test()``, the callback does nothing, so the same training
    script also trains a single model.

    The checkpoints it writes load with ``torch.load(weights_only=True)``: objects saved
    by ``save_hyperparameters()`` are stored as plain data (see
    :mod:`lit_hpo.checkpoints`), and the first checkpoint of each attempt is loaded back
    at once, so anything else that would block a resume (a callback state holding a
    custom class, say) fails the trial immediately with :class:`UnsafeCheckpointError`
    naming the type, where it sits and the fix.

    Args:
        monitor: the metric to report; default: the study's ``hpo.metric``. If given, it
            must equal the study's metric.
        mode: ``"min"`` or ``"max"``, as in Lightning's ``EarlyStopping`` and
            ``ModelCheckpoint``; default: the study's ``hpo.mode``. If given, it must
            equal the study's mode (a script written for ``val_acc``, ``mode="max"``
            fails at once in a study that minimizes, instead of keeping the worst trials).

    Raises:
        ValueError: ``mode`` is neither ``"min"`` nor ``"max"`` (at construction); in a
            study, ``monitor`` or ``mode`` differs from the study's (at ``setup``).
    """

    def __init__(self, monitor: str | None = None, mode: str | None = None) -> None:
        if mode not in (None, "min", "max"):
            raise ValueError(f"HPOCallback(mode={mode!r}): use mode='min' or mode='max'")
        self.monitor, self.mode = monitor, mode
        self._trial: context.TrialContext | None = None
        self._client: StudyClient | None = None
        self._metric: str | None = None
        self._saving = False  # inside our own save_checkpoint (not a user's ModelCheckpoint)
        self._written: dict[str, Any] | None = None  # the dump being saved, until checked
        self._checked = False  # this attempt's first checkpoint was loaded back
        self._validated = -1  # the last epoch (0-based) in which fit() validated

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trial = context.current_trial()
        if self._trial is None or not trainer.is_global_zero:
            return
        self._client = trial_client(self._trial)
        metric = self._client.header["metric"]
        if self.monitor is not None and self.monitor != metric:
            raise ValueError(
                f"HPOCallback(monitor={self.monitor!r}) but the study optimizes {metric!r}; "
                f"drop monitor= or set hpo.metric={self.monitor}."
            )
        if self.mode is not None and self.mode != self._client.header["mode"]:
            raise ValueError(
                f"HPOCallback(mode={self.mode!r}) but the study's {metric!r} is "
                f"{'minimized' if self.mode == 'max' else 'maximized'}; drop mode= or set "
                f"hpo.mode={self.mode}."
            )
        self._metric = metric

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._checked = False
        trial = self._trial
        if trial is None or trial.resume_from is None or trainer.ckpt_path is not None:
            return
        raise ResumeNotAppliedError(
            f"trial {trial.trial_id} must resume from {trial.resume_from}, but fit() was "
            "given no checkpoint, so it would silently start from scratch. If your script "
            "passes a config setting to fit (trainer.fit(..., ckpt_path=cfg.ckpt_path)), "
            "set it in the config: ckpt_path: ${lit_hpo.resume_from:} (null outside a "
            "study); or pass it in code: "
            "trainer.fit(model, data, ckpt_path=lit_hpo.current_trial().resume_from)"
        )

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if self._saving:  # only lit_hpo's own checkpoints: a user's files stay as they are
            checkpoints.make_plain(checkpoint)
            self._written = checkpoint

    def _checkpoint(self, trainer: L.Trainer, epoch: int) -> str | None:
        """Write this epoch's checkpoint atomically (all ranks take part in the save);
        on rank 0 return why the attempt's first checkpoint cannot be resumed from."""
        assert self._trial is not None
        trial = self._trial
        final = checkpoints.checkpoint_path(trial.study_dir, trial.trial_id, epoch, trial.attempt)
        staged = checkpoints.staging_path(final)
        if trainer.is_global_zero:
            checkpoints.claim_directory(final)
        trainer.strategy.barrier("lit_hpo_checkpoint_dir")
        self._saving = True
        try:
            trainer.save_checkpoint(staged, weights_only=False)
        finally:
            self._saving = False
        written, self._written = self._written, None
        if not trainer.is_global_zero:
            return None
        checkpoints.commit(staged, final, trial.study_dir, trial.trial_id)
        if self._checked:
            return None
        self._checked = True
        return self._unsafe(final, written)

    def _unsafe(self, path: Any, written: dict[str, Any] | None) -> str | None:
        problem = checkpoints.load_problem(path)
        if problem is None:
            return None
        assert self._trial is not None
        name = checkpoints.unsafe_global(problem)
        where = ""
        if name is not None and written is not None:
            places = list(checkpoints.find_instances(written, name))
            where = f" at checkpoint{places[0]}" if places else ""
        fix = (
            f"make what stores it hold plain data (numbers, strings, lists, dicts, tensors; "
            f"a callback's state_dict() or the module's on_save_checkpoint), or, if you trust "
            f"the class, allow it in your training script before training: "
            f"torch.serialization.add_safe_globals([{name.rsplit('.', 1)[-1]}])"
            if name
            else "check the disk and the checkpoint directory"
        )
        return (
            f"trial {self._trial.trial_id}'s checkpoint {path} does not load with "
            f"torch.load(weights_only=True) ({problem}){where}, so the trial could never be "
            f"resumed after a pause or a lost worker. Fix: {fix}."
        )

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._trial is not None and not trainer.sanity_checking and _fitting(trainer):
            self._validated = trainer.current_epoch

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Checkpoint and report an epoch that validated, once it has ended: a checkpoint
        taken here resumes at the next epoch's start, so the resumed run never replays the
        end of an epoch whose validation metrics only the dead process had (Lightning's
        own ``ModelCheckpoint`` saves here too for the same reason)."""
        if self._trial is None or self._validated != trainer.current_epoch:
            return
        unsafe = self._checkpoint(trainer, trainer.current_epoch + 1)
        outcome: tuple[bool, str | None, str | None] = (False, None, unsafe)
        if trainer.is_global_zero and unsafe is None:
            outcome = (*self._report(trainer), None)
        stop, error, unsafe = trainer.strategy.broadcast(outcome, src=0)
        if unsafe is not None:
            raise UnsafeCheckpointError(unsafe)
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


def _fitting(trainer: L.Trainer) -> bool:
    """Whether ``fit`` is running (``validate``/``test`` fire validation hooks too)."""
    from lightning.pytorch.trainer.states import TrainerFn

    return trainer.state.fn == TrainerFn.FITTING
