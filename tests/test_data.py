from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
import torch

from models.data import FILES, FashionMNISTDataModule, find_fashion_mnist, load_fashion_mnist


def test_finds_the_torchvision_layout(fashion_root: Path) -> None:
    directory = find_fashion_mnist(fashion_root)
    assert directory is not None and (directory / "train-images-idx3-ubyte.gz").is_file()


def test_reads_debian_layout_with_other_gzip_headers(fashion_root: Path, tmp_path: Path) -> None:
    """Debian ships the same bytes in flat files whose gzip headers differ (name, mtime)."""
    source = find_fashion_mnist(fashion_root)
    assert source is not None
    debian = tmp_path / "fashion-mnist"
    debian.mkdir()
    for stem in FILES.values():
        with gzip.open(source / f"{stem}.gz", "rb") as src:
            raw = src.read()
        with (
            open(debian / f"{stem}.gz", "wb") as out,
            gzip.GzipFile(
                filename=f"{stem}-debian", mode="wb", fileobj=out, mtime=1591340700, compresslevel=1
            ) as dst,
        ):
            dst.write(raw)
    assert find_fashion_mnist(tmp_path) == debian
    mine, theirs = load_fashion_mnist(str(debian)), load_fashion_mnist(str(source.resolve()))
    assert all(torch.equal(mine[key], theirs[key]) for key in FILES)


def test_shapes_and_labels(fashion_root: Path) -> None:
    directory = find_fashion_mnist(fashion_root)
    assert directory is not None
    arrays = load_fashion_mnist(str(directory.resolve()))
    assert arrays["train_images"].shape == (60000, 1, 28, 28)
    assert arrays["val_images"].shape == (10000, 1, 28, 28)
    assert arrays["train_images"].dtype == torch.uint8
    assert set(arrays["train_labels"].unique().tolist()) == set(range(10))


def test_batches_are_float_in_unit_range_and_cover_the_set(fashion_root: Path) -> None:
    data = FashionMNISTDataModule(batch_size=1000, root=str(fashion_root), download=False)
    data.setup("fit")
    batches = list(data.val_dataloader())
    assert sum(len(y) for _, y in batches) == 10000
    x, _ = batches[0]
    assert x.dtype == torch.float32 and x.shape == (1000, 1, 28, 28)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_missing_data_lists_every_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIT_HPO_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setattr("models.data.DEBIAN_DIR", str(tmp_path / "no-debian"))
    data = FashionMNISTDataModule(root=str(tmp_path / "empty"), download=False)
    with pytest.raises(FileNotFoundError) as info:
        data.setup("fit")
    message = str(info.value)
    for hint in ("data.root", "LIT_HPO_DATA", "download", "empty", "nowhere"):
        assert hint in message


def test_failed_download_says_how_to_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline (as in CI), the download fails; the error lists what was searched and the fixes."""
    monkeypatch.delenv("LIT_HPO_DATA", raising=False)
    monkeypatch.setattr("models.data.DEBIAN_DIR", str(tmp_path / "no-debian"))
    monkeypatch.setattr("torchvision.datasets.FashionMNIST.mirrors", ["http://127.0.0.1:9/"])
    data = FashionMNISTDataModule(root=str(tmp_path / "dl"), download=True)
    with pytest.raises(
        FileNotFoundError, match=r"(?s)could not be downloaded.*dataset-fashion-mnist"
    ):
        data.setup("fit")
    shutil.rmtree(tmp_path / "dl", ignore_errors=True)
