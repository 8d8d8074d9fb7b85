"""A scripted LightningModule and the Trainer the callback tests fit it with (Lightning's
BoringModel idea): each validation epoch logs the value the test scripted for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from lit_hpo import HPOCallback


class ScriptedModel(L.LightningModule):
    """Logs ``values[epoch]`` as the monitored metric at each validation epoch."""

    def __init__(self, values: list[float], name: str = "validation_error") -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.values = values
        self.name = name

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        value = self.values[self.current_epoch] if not self.trainer.sanity_checking else -1.0
        self.log(self.name, torch.tensor(value, dtype=torch.float32))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def loader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.randn(8, 4)), batch_size=4)

    def train_dataloader(self) -> DataLoader:
        return self.loader()

    def val_dataloader(self) -> DataLoader:
        return self.loader()


def scripted_trainer(tmp_path: Path, max_epochs: int = 10, **kwargs: Any) -> L.Trainer:
    return L.Trainer(
        max_epochs=max_epochs,
        callbacks=[HPOCallback()],
        default_root_dir=tmp_path,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=2,
        accelerator="cpu",
        **kwargs,
    )
