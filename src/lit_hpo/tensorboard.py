"""One TensorBoard HParams session per trial, written by the worker when the trial ends.

The run ``<trial dir>/hparams`` holds the trial's hyperparameters (short names), its
status and epochs, and the metrics ``final_<metric>`` and ``best_<metric>``, so the
HParams dashboard of ``tensorboard --logdir <study dir>`` lists every trial side by side.
The learning curves are the task's own logger's (``train.py``: ``trial_<id>/tensorboard``).
"""

from __future__ import annotations

import math
from pathlib import Path

from lit_hpo.space import short_names
from lit_hpo.state import Trial


def hparams_of(trial: Trial, space_keys: list[str], metric: str, sign: float) -> tuple[dict, dict]:
    """The hyperparameters and metrics recorded for one trial."""
    names = short_names(space_keys)
    hparams: dict[str, object] = {names[key]: trial.config.get(key) for key in space_keys}
    hparams["trial_id"] = trial.trial_id
    hparams["status"] = trial.status
    values = [r.value for r in trial.reports if r.value is not None and math.isfinite(r.value)]
    last = trial.reports[-1] if trial.reports else None
    metrics = {
        f"final_{metric}": last.value if last is not None and last.value is not None else math.nan,
        f"best_{metric}": min(values, key=lambda v: sign * v) if values else math.nan,
        "epochs": float(last.epoch if last else 0),
    }
    return hparams, metrics


def write_hparams(
    trial_dir: Path, trial: Trial, space_keys: list[str], metric: str, sign: float
) -> None:
    from torch.utils.tensorboard import SummaryWriter

    hparams, metrics = hparams_of(trial, space_keys, metric, sign)
    with SummaryWriter(log_dir=str(trial_dir / "hparams")) as writer:
        writer.add_hparams(hparams, metrics, run_name=".")
