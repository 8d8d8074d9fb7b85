"""What LeNet and DropoutMLP share: SGD, cross-entropy and the validation error."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F


class Classifier(L.LightningModule):
    """A classifier trained with plain SGD (d2l's ``Classifier``) that logs
    ``validation_error`` = 1 − accuracy on the validation set, once per epoch.

    Args:
        net: the network, mapping images ``(N, 1, 28, 28)`` to logits.
        learning_rate: SGD's learning rate.
    """

    def __init__(self, net: nn.Module, learning_rate: float) -> None:
        super().__init__()
        if not learning_rate > 0:
            raise ValueError(f"`learning_rate` must be > 0, but got {learning_rate!r}.")
        self.net = net
        self.learning_rate = learning_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        error = (logits.argmax(dim=1) != y).float().mean()
        # Weighted by batch size, the epoch mean is exactly 1 - accuracy on the whole set.
        self.log("validation_error", error, on_epoch=True, batch_size=len(y))
        self.log("validation_loss", F.cross_entropy(logits, y), on_epoch=True, batch_size=len(y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.learning_rate)
