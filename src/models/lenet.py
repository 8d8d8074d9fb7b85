"""d2l's LeNet-5 (§7.6): sigmoid activations, average pooling, Xavier-uniform init.

With PyTorch's default init this network does not learn at lr 0.1; d2l's ``init_cnn``
(Xavier) is what makes the seeds' study work.
"""

from __future__ import annotations

from torch import nn

from models.classifier import Classifier


def init_cnn(module: nn.Module) -> None:
    """d2l's ``init_cnn``: Xavier-uniform weights for every linear and conv layer."""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.xavier_uniform_(module.weight)


def lenet(num_classes: int = 10) -> nn.Sequential:
    net = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, num_classes),
    )  # fmt: skip
    net.apply(init_cnn)
    return net


class LeNet(Classifier):
    def __init__(self, learning_rate: float = 0.1, num_classes: int = 10) -> None:
        super().__init__(lenet(num_classes), learning_rate)
        self.save_hyperparameters()
