from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def data_root() -> Path | None:
    """FashionMNIST for tests: $LIT_HPO_DATA, else ../shared/data beside the checkout."""
    from models.data import find_fashion_mnist

    env = os.environ.get("LIT_HPO_DATA")
    for candidate in (env, SHARED_DATA):
        if candidate and find_fashion_mnist(candidate) is not None:
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def fashion_root() -> Path:
    root = data_root()
    if root is None:
        pytest.skip("FashionMNIST not found: set LIT_HPO_DATA or place ../shared/data")
    return root


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable
