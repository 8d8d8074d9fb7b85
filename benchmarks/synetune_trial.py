"""One Syne Tune trial of ``benchmarks/lenet.py`` (the seeds' LeNet) or ``search.py``
(``--model mlp``: d2l's DropoutMLP) on FashionMNIST.

The same training code as ``train.py`` (``models.LeNet``/``DropoutMLP``,
``models.FashionMNISTDataModule``,
a Lightning Trainer, seed 0, one torch thread per worker as our workers use on this
machine), reporting ``validation_error`` to Syne Tune at every validation end.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import lightning as L
import torch
from syne_tune import Reporter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from models import DropoutMLP, FashionMNISTDataModule, LeNet


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--learning_rate", type=float, required=True)
    parser.add_argument("--batch_size", type=int, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--limit_batches", type=float, default=1.0)
    parser.add_argument("--limit_val_batches", type=float, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", choices=["lenet", "mlp"], default="lenet")
    for name in ("num_hiddens_1", "num_hiddens_2"):
        parser.add_argument(f"--{name}", type=int, default=256)
    for name in ("dropout_1", "dropout_2"):
        parser.add_argument(f"--{name}", type=float, default=0.5)
    args, _ = parser.parse_known_args()
    torch.set_num_threads(args.threads)
    report = Reporter()

    class Report(L.Callback):
        def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
            if not trainer.sanity_checking:
                value = float(trainer.callback_metrics["validation_error"])
                report(epoch=trainer.current_epoch + 1, validation_error=value)

    L.seed_everything(0, verbose=False)
    trainer = L.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_train_batches=args.limit_batches,
        limit_val_batches=args.limit_val_batches or args.limit_batches,
        callbacks=[Report()],
    )
    if args.model == "mlp":
        model: L.LightningModule = DropoutMLP(
            learning_rate=args.learning_rate, num_hiddens_1=args.num_hiddens_1,
            num_hiddens_2=args.num_hiddens_2, dropout_1=args.dropout_1, dropout_2=args.dropout_2,
        )  # fmt: skip
    else:
        model = LeNet(learning_rate=args.learning_rate)
    trainer.fit(model, FashionMNISTDataModule(args.batch_size))


if __name__ == "__main__":
    main()
