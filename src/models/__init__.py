"""The demo workload: d2l's LeNet and DropoutMLP on FashionMNIST, as Lightning modules."""

from models.data import FashionMNISTDataModule, find_fashion_mnist, load_fashion_mnist
from models.lenet import LeNet
from models.mlp import DropoutMLP

__all__ = [
    "DropoutMLP",
    "FashionMNISTDataModule",
    "LeNet",
    "find_fashion_mnist",
    "load_fashion_mnist",
]
