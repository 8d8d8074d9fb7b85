"""A typical existing Lightning + Hydra project, as lit_hpo's users write them.

The module takes its network and a ``_partial_: true`` optimizer from config and calls
``self.save_hyperparameters(logger=False)``, so Lightning stores an ``nn.Module`` and a
``functools.partial`` in every checkpoint's ``hyper_parameters``; it keeps torchmetrics
state; the trainer has ``ModelCheckpoint`` and ``EarlyStopping`` callbacks. Each
process appends what it sees to ``trace.jsonl`` in the trial directory (the optimizer
state at the start of training and after every validated epoch) so that a test can
check that a resumed attempt continued with the state its checkpoint saved.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torchmetrics
from torch import nn


def fingerprint(module: L.LightningModule) -> str:
    """The optimizer's state and the weights, summed into one exact number."""
    total = sum(float(p.detach().double().sum()) for p in module.parameters())
    for state in module.trainer.optimizers[0].state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor):
                total += float(value.detach().double().sum())
    return repr(total)


class ForeignModule(L.LightningModule):
    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        trace: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.net = net
        self.criterion = nn.CrossEntropyLoss()
        self.val_loss = torchmetrics.MeanMetric()
        self.val_acc = torchmetrics.classification.MulticlassAccuracy(num_classes=10)

    def _trace(self, event: str, epoch: int) -> None:
        if self.hparams.trace and self.trainer.is_global_zero:
            attempt = int(os.environ.get("LIT_HPO_ATTEMPT", "-1"))
            line = {"event": event, "epoch": epoch, "attempt": attempt, "fp": fingerprint(self)}
            with open(self.hparams.trace, "a") as file:
                file.write(json.dumps(line) + "\n")

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return self.criterion(self.net(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        logits = self.net(x)
        self.val_loss.update(self.criterion(logits, y))
        self.val_acc.update(logits, y)

    def on_validation_epoch_end(self) -> None:
        self.log("val/loss", self.val_loss.compute())
        self.log("val/acc", self.val_acc.compute())
        self.val_loss.reset()
        self.val_acc.reset()
        if not self.trainer.sanity_checking:
            self._trace("validated", self.current_epoch + 1)

    def on_train_start(self) -> None:
        self._trace("start", self.current_epoch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.hparams.optimizer(params=self.parameters())


class Opaque:
    """A custom class that ``torch.load(weights_only=True)`` refuses."""

    def __init__(self, count: int) -> None:
        self.count = count


class CountingCallback(L.Callback):
    """A callback whose state holds a custom object: its checkpoints cannot be resumed
    weights-only until the class is allowed (``torch.serialization.add_safe_globals``)."""

    def __init__(self) -> None:
        self.seen = Opaque(0)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seen.count += 1

    def state_dict(self) -> dict[str, Any]:
        return {"seen": self.seen}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.seen = state_dict["seen"]
