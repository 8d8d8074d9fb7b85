"""d2l's ``DropoutMLP`` (§5.6): two hidden ReLU layers, each followed by dropout."""

from __future__ import annotations

from torch import nn

from models.classifier import Classifier


class DropoutMLP(Classifier):
    def __init__(
        self,
        learning_rate: float = 0.1,
        num_hiddens_1: int = 256,
        num_hiddens_2: int = 256,
        dropout_1: float = 0.5,
        dropout_2: float = 0.5,
        num_classes: int = 10,
    ) -> None:
        for name, p in (("dropout_1", dropout_1), ("dropout_2", dropout_2)):
            if not 0 <= p < 1:
                raise ValueError(f"`{name}` must be in [0, 1), but got {p!r}.")
        net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(28 * 28, num_hiddens_1), nn.ReLU(), nn.Dropout(dropout_1),
            nn.Linear(num_hiddens_1, num_hiddens_2), nn.ReLU(), nn.Dropout(dropout_2),
            nn.Linear(num_hiddens_2, num_classes),
        )  # fmt: skip
        super().__init__(net, learning_rate)
        self.save_hyperparameters()
