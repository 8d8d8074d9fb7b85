"""LeNet epoch time: Lightning + our in-memory data vs a plain PyTorch loop on the same
data, and vs d2l's data path (torchvision dataset + ``ToTensor``) under the same loop.

    python benchmarks/epoch_time.py [--epochs 3] [--threads 1] [--batch-size 128]

Prints a Markdown table and writes ``benchmarks/results/epoch_time.{json,md}``. One epoch
= a full pass over the 60,000 training images plus validation on the 10,000 test images.
The first epoch of each variant is a warm-up and is not counted.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.nn import functional as F

from models import FashionMNISTDataModule, LeNet, find_fashion_mnist
from models.data import FILES
from models.lenet import lenet

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import RESULTS, machine, stamp, versions, write_results


def plain_epochs(loaders: tuple[Any, Any], epochs: int, lr: float) -> list[float]:
    """A hand-written training loop: the floor Lightning is compared with."""
    train, val = loaders
    net = lenet()
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        net.train()
        for x, y in train:
            optimizer.zero_grad()
            F.cross_entropy(net(x), y).backward()
            optimizer.step()
        net.eval()
        errors = 0
        with torch.no_grad():
            for x, y in val:
                errors += int((net(x).argmax(1) != y).sum())
        times.append(time.perf_counter() - start)
    return times


class EpochTimer(L.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.times.append(time.perf_counter() - self._start)


def lightning_epochs(data: FashionMNISTDataModule, epochs: int, lr: float) -> list[float]:
    timer = EpochTimer()
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[timer],
    )
    trainer.fit(LeNet(learning_rate=lr), data)
    return timer.times


def torchvision_loaders(source: Path, batch_size: int, workdir: Path) -> tuple[Any, Any]:
    """d2l's data path: torchvision's FashionMNIST with ToTensor, 4 loader workers as d2l."""
    from torchvision import datasets, transforms

    raw = workdir / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in FILES.values():
        with gzip.open(source / f"{stem}.gz") as src, open(raw / stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    make = transforms.ToTensor()
    train = datasets.FashionMNIST(str(workdir), train=True, transform=make)
    val = datasets.FashionMNIST(str(workdir), train=False, transform=make)
    loader = torch.utils.data.DataLoader
    return (
        loader(train, batch_size, shuffle=True, num_workers=4),
        loader(val, batch_size, shuffle=False, num_workers=4),
    )


def measure(name: str, run: Callable[[], list[float]]) -> dict[str, Any]:
    times = run()[1:]  # drop the warm-up epoch
    row = {"variant": name, "epoch_s": statistics.median(times), "epochs": times}
    print(f"{name}: {row['epoch_s']:.2f} s/epoch ({', '.join(f'{t:.2f}' for t in times)})")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per variant (1 warm-up)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a worker's share)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--root", default=None, help="FashionMNIST directory (data.root)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    source = find_fashion_mnist(args.root)
    if source is None:
        raise SystemExit("FashionMNIST not found: pass --root or set LIT_HPO_DATA")
    data = FashionMNISTDataModule(batch_size=args.batch_size, root=str(source), download=False)
    data.setup("fit")
    ours = (data.train_dataloader(), data.val_dataloader())
    rows = [
        measure("plain loop, in-memory data", lambda: plain_epochs(ours, args.epochs, args.lr)),
        measure("Lightning, in-memory data", lambda: lightning_epochs(data, args.epochs, args.lr)),
    ]
    with tempfile.TemporaryDirectory() as workdir:
        d2l = torchvision_loaders(source, args.batch_size, Path(workdir))
        rows.append(
            measure(
                "plain loop, torchvision + ToTensor",
                lambda: plain_epochs(d2l, args.epochs, args.lr),
            )
        )
    floor = rows[0]["epoch_s"]
    for row in rows:
        row["ratio_to_plain"] = row["epoch_s"] / floor
    lines = [
        f"LeNet on FashionMNIST, batch {args.batch_size}, CPU ({machine()}, "
        f"{torch.get_num_threads()} torch threads), "
        f"torch {torch.__version__}, lightning {L.__version__}, {time.strftime('%Y-%m-%d')}",
        "",
        "| variant | s / epoch | ratio to plain loop |",
        "|---|---:|---:|",
        *(f"| {r['variant']} | {r['epoch_s']:.2f} | {r['ratio_to_plain']:.2f}x |" for r in rows),
    ]
    payload = stamp(args=vars(args), versions=versions(), rows=rows)
    write_results(RESULTS, "epoch_time", payload, "\n".join(lines))


if __name__ == "__main__":
    main()
