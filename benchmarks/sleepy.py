"""The workload of ``benchmarks/overhead.py``: trials whose epochs only sleep.

Every system runs the same code: ``workload.metric`` is the synthetic validation error
after an epoch, ``SleepyModule is a LightningModule whose training epoch is one batch that
sleeps ``epoch_sleep`` seconds (variant (b)), ``SleepyData`` feeds it. The module stamps
when fitting started and when each validation epoch ended, so the harness can split a
trial's overhead into its parts.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

try:
    from workload import metric
except ImportError:  # imported as benchmarks.sleepy (train.py's config)
    from benchmarks.workload import metric

STAMPS_ENV = "BENCH_STAMPS"  # directory where SleepyModule writes its stamps (ours, (b))


class SleepyData(L.LightningDataModule):
    """One training and one validation batch of one sample."""

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.zeros(1, 1)), batch_size=1)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.zeros(1, 1)), batch_size=1)


class SleepyModule(L.LightningModule):
    """Each training epoch sleeps ``epoch_sleep`` s; validation logs ``metric(x, epoch)``
    as ``validation_error``."""

    def __init__(self, x: float = 0.5, epoch_sleep: float = 0.5) -> None:
        super().__init__()
        self.x = x
        self.epoch_sleep = epoch_sleep
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.stamps: dict[str, Any] = {"fit_start": None, "val_end": [], "fit_end": None}

    def on_fit_start(self) -> None:
        self.stamps["fit_start"] = time.time()

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        time.sleep(self.epoch_sleep)
        return (self.weight - batch[0]).pow(2).mean()

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self.log("validation_error", metric(self.x, self.current_epoch + 1), batch_size=1)

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self.stamps["val_end"].append(time.time())

    def on_fit_end(self) -> None:
        self.stamps["fit_end"] = time.time()
        directory = os.environ.get(STAMPS_ENV)
        if directory:
            from lit_hpo import current_trial

            trial = current_trial()  # outside lit_hpo (a peer's jobs): named by x
            name = f"trial_{trial.trial_id}" if trial else f"x_{self.x!r}"
            save_stamps(Path(directory) / f"{name}.json", self.stamps)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def save_stamps(path: Path, stamps: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stamps))


def trainer(max_epochs: int, callbacks: list[L.Callback], full: Path | None = None) -> L.Trainer:
    """The Trainer the peers' trials use. Ours uses train.py's, which also logs to
    TensorBoard and checkpoints every epoch: with ``full`` (a trial directory) the peer's
    does too (``overhead.py --systems optuna_full``)."""
    if full is not None:
        from lightning.pytorch.callbacks import ModelCheckpoint
        from lightning.pytorch.loggers import TensorBoardLogger

        # No monitor, top 1: a checkpoint after every epoch, the previous one deleted (as
        # lit_hpo's). Not save_top_k=0 with save_last=True: that saves once, at the end.
        checkpoint = ModelCheckpoint(dirpath=full / "checkpoints", save_top_k=1)
        return L.Trainer(
            max_epochs=max_epochs, accelerator="cpu", enable_progress_bar=False,
            enable_model_summary=False, logger=TensorBoardLogger(full, name="tensorboard"),
            callbacks=[*callbacks, checkpoint], default_root_dir=full,
        )  # fmt: skip
    return L.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
