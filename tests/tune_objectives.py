"""Training functions for tests/test_tune.py. Workers import this module by name (a
function from an importable module is sent by reference); the notebook and script
tests cover functions sent by value."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import lit_hpo


def curve(learning_rate: float, batch_size: int, max_epochs: int, pause: float = 0.02) -> str:
    """A deterministic learning curve; records its call in the working directory."""
    Path("call.json").write_text(json.dumps(
        {"cwd": os.getcwd(), "max_epochs": max_epochs, "learning_rate": learning_rate}))  # fmt: skip
    for epoch in range(1, max_epochs + 1):
        time.sleep(pause)
        error = 1.0 / (1.0 + epoch * learning_rate * batch_size / 100.0)
        lit_hpo.report(epoch=epoch, validation_error=error)
    return "done"


def resumable(config: dict) -> None:
    """Plain PyTorch-style state through report(checkpoint=) / load_checkpoint()."""
    import torch

    checkpoint = lit_hpo.load_checkpoint()
    start, weight = 1, torch.zeros(3)
    if checkpoint is not None:
        start, weight = checkpoint.epoch + 1, checkpoint.state["weight"]
        assert float(weight[0]) == checkpoint.epoch, "the state of the reported epoch"
        with open("resumes.txt", "a") as file:
            file.write(f"{checkpoint.epoch}\n")
    for epoch in range(start, config["max_epochs"] + 1):
        time.sleep(0.02)
        weight = weight + 1
        error = 1.0 / (1.0 + epoch * config["learning_rate"])
        lit_hpo.report(epoch=epoch, validation_error=error, checkpoint={"weight": weight})


def silent(learning_rate: float, max_epochs: int) -> None:
    """Trains, never reports."""


def wrong_metric(learning_rate: float, max_epochs: int) -> None:
    lit_hpo.report(epoch=1, val_loss=0.5)


def no_checkpoint(learning_rate: float, max_epochs: int) -> None:
    lit_hpo.report(epoch=1, validation_error=0.5)
