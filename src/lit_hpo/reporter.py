"""``lit_hpo.report``: the reporter for training code without Lightning.

A training loop calls ``report(epoch=..., validation_error=...)`` after every epoch, the
way the textbook's Syne Tune objective calls its ``Reporter``. The value is recorded in
the journal and the scheduler decides at once; when it stops (or pauses) the trial,
``report`` raises :class:`TrialStopped`, which ends the training function right there
and which the worker records as the scheduler's decision. The loop needs no ``if``.

With ``checkpoint=`` (plain data: tensors, numbers, strings, lists, dicts, such as
``{"model": model.state_dict(), "optimizer": optimizer.state_dict()}``), the epoch's
state is written atomically *before* the report, as ``HPOCallback`` does, so a trial whose
worker died, or which ASHA paused and later promoted, continues from it:
:func:`load_checkpoint` gives it back. Outside a study both do nothing, so the same
function also trains a single model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lit_hpo import checkpoints, context
from lit_hpo.study import trial_client

_KEY = "lit_hpo_report"  # marks a checkpoint written by report(), not by Lightning


class TrialStopped(BaseException):
    """The scheduler stopped or paused this trial: raised by :func:`report` to end the
    training function. A ``BaseException``, so that an ``except Exception`` in training
    code does not swallow it; the worker catches it."""

    def __init__(self, action: str, reason: str | None) -> None:
        super().__init__(f"the scheduler's decision: {action} ({reason})")
        self.action = action
        self.reason = reason


class ReportError(ValueError):
    """``report`` was called with arguments the study cannot record."""


@dataclass(frozen=True)
class Checkpoint:
    """What :func:`report` saved: the epoch it was saved after, and the state given."""

    epoch: int
    state: Any


def report(epoch: int, checkpoint: Any = None, **metrics: Any) -> None:
    """Record the metrics after ``epoch`` (1 for the first) and apply the decision.

    Args:
        epoch: how many epochs the trial has trained (1, 2, ... up to ``max_epochs``).
        checkpoint: this epoch's state, to resume from (see :func:`load_checkpoint`);
            required when the scheduler pauses trials (``asha_promotion``).
        **metrics: must hold the study's metric (``validation_error=0.21``); a tensor
            or numpy scalar is fine.

    Raises:
        TrialStopped: when the scheduler stops or pauses the trial (let it propagate).
        ReportError: a bad epoch, the study's metric missing or not a number, a
            checkpoint missing where trials pause, or a resumed trial that did not load
            its checkpoint.
    """
    trial = context.current_trial()
    if trial is None:
        return
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
        raise ReportError(f"lit_hpo.report(epoch={epoch!r}): epoch must be an integer >= 1 "
                          "(the number of epochs trained so far).")  # fmt: skip
    client = trial_client(trial)
    metric = str(client.header["metric"])
    if metric not in metrics:
        from lit_hpo.callback import MetricNotLoggedError

        given = ", ".join(metrics) or "no metric"
        raise MetricNotLoggedError(
            f"lit_hpo.report(epoch={epoch}, ...) got {given} but not {metric!r}, the "
            f"metric the study optimizes: pass {metric}=<value>, or start the study with "
            f"metric= set to one of the names you report."
        )
    try:
        value = float(metrics[metric])
    except (TypeError, ValueError):
        raise ReportError(f"lit_hpo.report: {metric}={metrics[metric]!r} is not a number."
                          ) from None  # fmt: skip
    _check_resumed(trial, epoch)
    if checkpoint is not None:
        _save(trial, epoch, checkpoint)
    elif client.header["scheduler"].get("name") == "asha_promotion":
        raise ReportError(
            "this study's scheduler (asha_promotion) pauses trials at each rung and resumes "
            "them later from their checkpoint: pass the epoch's state, "
            "lit_hpo.report(epoch=..., checkpoint={'model': model.state_dict(), ...}), "
            "and start from lit_hpo.load_checkpoint() (or use scheduler='asha')."
        )
    decision = client.report(trial.trial_id, epoch, value, trial.attempt)
    if decision.stop:
        raise TrialStopped(decision.action, decision.reason)


def load_checkpoint() -> Checkpoint | None:
    """The state this trial resumes from (a promoted trial, or one whose worker died), or
    ``None`` to start from scratch (and outside a study). Loaded with
    ``torch.load(weights_only=True)``: a file in the shared study directory never runs
    code. Continue training at ``checkpoint.epoch + 1``."""
    trial = context.current_trial()
    if trial is None or trial.resume_from is None:
        return None
    saved = checkpoints.load(trial.resume_from)
    if not isinstance(saved, dict) or _KEY not in saved:
        raise ReportError(
            f"{trial.resume_from} was written by HPOCallback (Lightning), not by "
            "lit_hpo.report: resume it with trainer.fit(..., ckpt_path="
            "lit_hpo.current_trial().resume_from)."
        )
    # The epoch comes from the file's name, which the worker matched against the epochs
    # the journal recorded; the file (in the shared study directory) must agree with it.
    epoch = checkpoints.epoch_of(trial.resume_from)
    written = saved[_KEY].get("epoch") if isinstance(saved[_KEY], dict) else None
    if epoch is None or written != epoch or "state" not in saved:
        raise ReportError(
            f"{trial.resume_from} does not hold the state of epoch {epoch} that its name "
            f"says (it says {written!r}); it was altered, so the trial is not resumed from it."
        )
    return Checkpoint(epoch, saved["state"])


def _check_resumed(trial: context.TrialContext, epoch: int) -> None:
    """A resumed trial must continue after its checkpoint's epoch, not start over."""
    if trial.resume_from is None:
        return
    resumed = checkpoints.epoch_of(trial.resume_from)
    if resumed is not None and epoch <= resumed:
        raise ReportError(
            f"trial {trial.trial_id} resumes after epoch {resumed} from {trial.resume_from}, "
            f"but reported epoch {epoch}: it started over. Load the state with "
            "checkpoint = lit_hpo.load_checkpoint() and continue at checkpoint.epoch + 1."
        )


def _save(trial: context.TrialContext, epoch: int, state: Any) -> None:
    """Write the epoch's checkpoint atomically; the attempt's first one is loaded back
    weights-only at once, so a state that could never be resumed fails now."""
    import torch

    final = checkpoints.checkpoint_path(trial.study_dir, trial.trial_id, epoch, trial.attempt)
    checkpoints.claim_directory(final)
    first = not any(a == trial.attempt for _, a in checkpoints.checkpoints(
        trial.study_dir, trial.trial_id))  # fmt: skip
    staged = checkpoints.staging_path(final)
    torch.save({_KEY: {"epoch": epoch}, "state": state}, staged)
    checkpoints.commit(staged, final, trial.study_dir, trial.trial_id)
    problem = checkpoints.load_problem(final) if first else None
    if problem is not None:
        raise ReportError(
            f"lit_hpo.report(checkpoint=...) for trial {trial.trial_id} does not load back "
            f"with torch.load(weights_only=True) ({problem}), so the trial could never "
            "resume: give plain data (tensors, numbers, strings, lists, dicts), such as "
            "{'model': model.state_dict(), 'optimizer': optimizer.state_dict()}."
        )
