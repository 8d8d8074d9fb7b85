"""Checkpoints: atomic publish, the resume choice with fallback, pruning."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch

from lit_hpo import checkpoints as ck


def _save(study: Path, trial: int, epoch: int, attempt: int = 0) -> Path:
    final = ck.checkpoint_path(study, trial, epoch, attempt)
    final.parent.mkdir(parents=True, exist_ok=True)
    staged = ck.staging_path(final)
    torch.save({"epoch": epoch, "state_dict": {"w": torch.full((256, 256), float(epoch))}}, staged)
    ck.publish(staged, final)
    return final


def test_publish_leaves_only_the_final_name(tmp_path: Path) -> None:
    final = _save(tmp_path, 3, 1)
    assert final == tmp_path / "checkpoints" / "trial_3" / "epoch_1-attempt_0.ckpt"
    assert [p.name for p in final.parent.iterdir()] == ["epoch_1-attempt_0.ckpt"]
    assert ck.loadable(final)


def test_resume_point_is_the_last_reported_epoch_not_a_newer_checkpoint(tmp_path: Path) -> None:
    for epoch in (1, 2, 3):
        _save(tmp_path, 0, epoch)
    # epoch 3 was checkpointed but its report never reached the journal
    assert ck.resume_point(tmp_path, 0, [(1, 0), (2, 0)]) == (2, ck.checkpoint_path(tmp_path, 0, 2))
    assert ck.resume_point(tmp_path, 0, []) is None


def test_a_zombie_attempts_checkpoint_is_never_chosen(tmp_path: Path) -> None:
    _save(tmp_path, 0, 1, attempt=0)
    _save(tmp_path, 0, 2, attempt=1)  # attempt 1 reported epoch 2
    _save(tmp_path, 0, 3, attempt=0)  # a zombie attempt 0 went on; never accepted
    assert ck.resume_point(tmp_path, 0, [(1, 0), (2, 1)]) == (
        2,
        ck.checkpoint_path(tmp_path, 0, 2, 1),
    )


def test_a_truncated_checkpoint_falls_back_to_the_newest_loadable(tmp_path: Path) -> None:
    rng = random.Random(0)
    for _ in range(5):
        _save(tmp_path, 1, 1)
        newest = _save(tmp_path, 1, 2)
        size = newest.stat().st_size
        with open(newest, "r+b") as file:
            file.truncate(rng.randrange(0, size))
        assert not ck.loadable(newest)
        assert ck.resume_point(tmp_path, 1, [(1, 0), (2, 0)]) == (
            1,
            ck.checkpoint_path(tmp_path, 1, 1),
        )


def test_no_loadable_checkpoint_refuses_to_restart_from_scratch(tmp_path: Path) -> None:
    path = _save(tmp_path, 2, 1)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(FileNotFoundError, match="cannot be resumed"):
        ck.resume_point(tmp_path, 2, [(1, 0)])


def test_checkpoints_load_with_weights_only(tmp_path: Path) -> None:
    path = _save(tmp_path, 0, 1)
    path.write_bytes(__import__("pickle").dumps(os.system))  # code, not weights
    assert not ck.loadable(path)


def test_prune_keeps_the_newest_and_removes_dead_writers_temp_files(tmp_path: Path) -> None:
    for epoch in range(1, 12):
        _save(tmp_path, 4, epoch)
    directory = ck.trial_checkpoint_dir(tmp_path, 4)
    orphan = directory / ".epoch_6-attempt_0.ckpt.tmp-999999999"  # a writer that died mid-save
    orphan.write_bytes(b"partial")
    mine = directory / f".epoch_12-attempt_0.ckpt.tmp-{os.getpid()}"  # being written now
    foreign = directory / ".epoch_7-attempt_0.ckpt.tmp-notapid"  # not a name lit_hpo writes
    mine.write_bytes(b"partial")
    foreign.write_bytes(b"?")
    ck.prune(tmp_path, 4, keep=2)
    assert sorted(ck.checkpoints(tmp_path, 4)) == [(10, 0), (11, 0)]  # by number, not name
    assert not orphan.exists() and mine.exists() and foreign.exists()
    ck.prune(tmp_path, 5, keep=2)  # a trial without checkpoints: nothing to do


def test_plain_renders_objects_as_data_that_loads_weights_only(tmp_path: Path) -> None:
    import enum
    import functools

    from omegaconf import OmegaConf

    class Colour(enum.Enum):
        RED = "red"

    rendered = ck.plain(
        {
            "net": torch.nn.Linear(2, 3),
            "optimizer": functools.partial(torch.optim.SGD, lr=0.1),
            "cfg": OmegaConf.create({"a": 1, "b": "${a}"}),
            "path": Path("/x"),
            "colour": Colour.RED,
            "numbers": (1, 2.5, None, True),
            "weights": torch.ones(2),
        }
    )
    assert rendered["net"] == "Linear(in_features=2, out_features=3, bias=True)"
    assert rendered["optimizer"] == {
        "_target_": "torch.optim.sgd.SGD", "_partial_": True, "_args_": [], "lr": 0.1
    }  # fmt: skip
    assert rendered["cfg"] == {"a": 1, "b": "${a}"}
    assert (rendered["path"], rendered["colour"]) == ("/x", "red")
    assert rendered["numbers"] == [1, 2.5, None, True]
    torch.save(rendered, tmp_path / "plain.ckpt")
    assert ck.load_problem(tmp_path / "plain.ckpt") is None
    long = ck.plain(torch.nn.Sequential(*[torch.nn.Linear(1, 1) for _ in range(50)]))
    assert len(long) == 500 and long.endswith("...")  # long reprs are cut


def test_a_resume_failure_says_why_the_file_did_not_load(tmp_path: Path) -> None:
    from tests.foreign.project import Opaque

    path = ck.checkpoint_path(tmp_path, 0, 1)
    path.parent.mkdir(parents=True)
    torch.save({"state": Opaque(1)}, path)
    with pytest.raises(FileNotFoundError, match=r"epoch_1-attempt_0.ckpt: UnpicklingError: it "
                       r"holds a tests.foreign.project.Opaque, which is not allowed"):  # fmt: skip
        ck.resume_point(tmp_path, 0, [(1, 0)])
