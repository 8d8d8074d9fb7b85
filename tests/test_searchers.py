"""Searchers as specifications: per searcher on synthetic states, and a contract over
every searcher x scheduler (the journal replays to the same configurations)."""

from __future__ import annotations

import math
import multiprocessing
import sys
from pathlib import Path
from typing import Any

import pytest

from lit_hpo.journal import Journal
from lit_hpo.repair import scan
from lit_hpo.searchers import MODEL_BASED, Search, grid_size
from lit_hpo.searchers import random_suggest as random_config
from lit_hpo.searchers.bohb import decode, encode
from lit_hpo.searchers.grid import grid_point
from lit_hpo.space import space_from_json
from lit_hpo.spec import spec_from_config
from lit_hpo.state import StudyState
from lit_hpo.study import StudyClient
from tests import records as r

SPACE = {  # log float, log int, plain int, choice: every kind the encoders handle
    "lr": "tag(log, interval(0.001, 1))",
    "width": "tag(log, int(interval(8, 512)))",
    "layers": "int(interval(1, 5))",
    "act": "choice(relu, tanh, gelu)",
}
GRID = {"a": "choice(1, 2, 3)", "b": "choice(x, y)"}
SCHEDULERS = ("fifo", "asha", "asha_promotion", "hyperband")


def objective(config: dict[str, Any], epoch: int) -> float:
    """Smooth in every dimension, best near lr=0.03, width 64, 3 layers, gelu."""
    return (
        (math.log10(config.get("lr", 0.03)) + 1.5) ** 2
        + abs(math.log2(config.get("width", 64)) - 6) / 4
        + abs(config.get("layers", 3) - 3) / 5
        + {"relu": 0.1, "tanh": 0.2, "gelu": 0.0}.get(config.get("act", "gelu"), 0)
        + 1 / epoch
    )


def hpo(searcher: str, scheduler: str = "asha", **extra: Any) -> dict[str, Any]:
    space = GRID if searcher == "grid" else SPACE
    settings = {"scheduler": scheduler, "max_epochs": 4, "grace_period": 1,
                "reduction_factor": 2, "max_wallclock_time": None, "searcher": searcher,
                "space": space, "min_points": 3, **extra}  # fmt: skip
    if searcher != "grid":
        settings.setdefault("max_trials", 16)
    return settings


def run_study(directory: Path, worker: int = 0, client: StudyClient | None = None) -> StudyClient:
    """Claim, report every epoch the scheduler lets run, end; until the budget is spent."""
    client = client or StudyClient(directory)
    while (claim := client.claim(worker)) is not None:
        action = "continue"
        for epoch in range(claim.from_epoch + 1, 5):
            action = client.report(claim.trial_id, epoch, objective(claim.config, epoch),
                                   claim.attempt).action  # fmt: skip
            if action != "continue":
                break
        if action == "pause":
            client.pause(claim.trial_id, claim.attempt)
        else:
            status = "completed" if action == "continue" else "stopped"
            client.end(claim.trial_id, status, attempt=claim.attempt)
    return client


def opened(directory: Path, settings: dict[str, Any], n_workers: int = 1) -> Path:
    StudyClient(directory).open(spec_from_config(settings), n_workers=n_workers)
    return directory


# ------------------------------------------------------------------ per searcher


@pytest.mark.parametrize("searcher", MODEL_BASED)
def test_a_model_searcher_is_deterministic_respects_the_space_and_learns(
    tmp_path: Path, searcher: str
) -> None:
    client = run_study(opened(tmp_path, hpo(searcher)))
    state = client.refresh()
    domains = space_from_json(state.header["space"])
    by = [trial.by for trial in state.trials]
    assert by[:3] == ["random"] * 3  # fewer than min_points results: random
    assert "model" in by
    for trial in state.trials:
        assert all(domains[key].contains(value) for key, value in trial.config.items())
        assert type(trial.config["width"]) is int and type(trial.config["layers"]) is int
    # The same prefix, seed and id give the same config: live, and from a fresh replay.
    fresh = StudyClient(tmp_path)
    fresh.refresh()
    search = Search(state.header)
    for trial in state.trials:
        assert fresh.config_of(trial.trial_id) == trial.config
        assert search.suggest(state, trial.trial_id, trial.prefix).config == trial.config
    assert scan(tmp_path / "journal.jsonl")[0] == []


def test_too_few_results_means_random_and_the_random_configs_are_random_searchs(
    tmp_path: Path,
) -> None:
    """Below min_points at every level, a model searcher gives exactly what random search
    gives each trial id: switching searcher changes nothing until the model has data."""
    settings = hpo("bohb", min_points=50)
    client = run_study(opened(tmp_path, settings))
    state = client.refresh()
    assert {trial.by for trial in state.trials} == {"random"}
    space = space_from_json(state.header["space"])
    assert all(trial.config == random_config(space, [], 0, trial.trial_id)
               for trial in state.trials)  # fmt: skip


def test_random_fraction_one_never_asks_the_model(tmp_path: Path) -> None:
    settings = hpo("tpe", random_fraction=1)
    state = run_study(opened(tmp_path, settings)).refresh()
    assert {trial.by for trial in state.trials} == {"random"}


def test_the_model_learns_where_the_good_region_is(tmp_path: Path) -> None:
    """BOHB's proposals concentrate around the optimum (lr = 0.03) compared with
    random search's on the same budget and seed."""
    distance = {}
    for searcher in ("random", "bohb"):
        settings = hpo(searcher, scheduler="fifo", max_trials=40, random_fraction=0)
        state = run_study(opened(tmp_path / searcher, settings)).refresh()
        late = [abs(math.log10(t.config["lr"]) + 1.5) for t in state.trials[20:]]
        distance[searcher] = sum(late) / len(late)
    assert distance["bohb"] < 0.6 * distance["random"], distance


def test_a_proposal_equal_to_an_earlier_config_is_replaced_by_a_random_one() -> None:
    """In a space of two integers every value was tried: whatever the model proposes
    repeats an earlier trial, so the trial is drawn at random instead."""
    space = {"k": {"type": "randint", "low": 0, "high": 1}}
    header = r.header(space=space, searcher={"name": "bohb", "min_points": 2})
    records = [header, r.session()]
    for trial in range(6):
        records += [r.claim(trial, config={"k": trial % 2}), r.report(trial, 1, trial / 10)]
    state = r.state_of(*records)
    search = Search(header)
    suggestions = [search.suggest(state, 6 + i, state.n_records) for i in range(20)]
    assert all(s.by == "random" for s in suggestions)  # never "model" with a duplicate


def test_bohb_encoding_round_trips_every_domain_kind() -> None:
    space = space_from_json(spec_from_config(hpo("bohb")).identity()["space"])
    for config in ({"lr": 0.001, "width": 8, "layers": 1, "act": "relu"},
                   {"lr": 1.0, "width": 512, "layers": 5, "act": "gelu"},
                   {"lr": 0.0316, "width": 61, "layers": 3, "act": "tanh"}):  # fmt: skip
        import numpy as np

        again = decode(space, np.array(encode(space, config)))
        assert again["width"] == config["width"] and again["layers"] == config["layers"]
        assert again["act"] == config["act"]
        assert math.isclose(again["lr"], config["lr"], rel_tol=1e-9)


# ------------------------------------------------------------------ grid


def test_grid_runs_every_point_once_first_key_slowest(tmp_path: Path) -> None:
    settings = hpo("grid", scheduler="fifo")
    spec = spec_from_config(settings)
    assert spec.budget.max_trials == 6 == grid_size(spec.space)
    state = run_study(opened(tmp_path, settings)).refresh()
    assert [t.config for t in state.trials] == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"},
        {"a": 2, "b": "y"}, {"a": 3, "b": "x"}, {"a": 3, "b": "y"},
    ]  # fmt: skip
    assert {t.by for t in state.trials} == {None}  # grid claims carry no prefix or by
    with pytest.raises(IndexError):
        grid_point(spec.space, 6)


def test_grid_refuses_ranges_and_more_trials_than_points() -> None:
    with pytest.raises(ValueError, match=r"lr is .*loguniform.* List the values"):
        spec_from_config({**hpo("grid"), "space": {**GRID, "lr": "tag(log, interval(0.1, 1))"}})
    with pytest.raises(ValueError, match="more than the grid's 6 points"):
        spec_from_config({**hpo("grid"), "max_trials": 7})
    points = spec_from_config({**hpo("grid"), "points_to_evaluate": [{"a": 2}]})
    assert points.budget.max_trials == 7  # the point, then the whole grid


# ------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"searcher": "tpee"}, "hpo.searcher='tpee'. Did you mean 'tpe'\\? Use one of random, grid"),
        ({"random_fraction": 1.5}, r"`hpo.random_fraction` must be a number in \[0, 1\], but got 1.5"),
        ({"min_points": 1}, "`hpo.min_points` must be an integer >= 2"),
        ({"bandwidth_factor": 0}, "`hpo.bandwidth_factor` must be a positive number, but got 0"),
    ],
)  # fmt: skip
def test_bad_searcher_settings_fail_early_and_name_the_value(
    extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        spec_from_config({**hpo("bohb"), **extra})


def test_a_missing_optuna_is_named_with_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "cmaes" else real(name, *a))  # fmt: skip
    with pytest.raises(
        ValueError, match=r"hpo.searcher=cmaes.*needs cmaes: pip install 'lit_hpo\[search\]'"
    ):
        spec_from_config(hpo("cmaes"))


def test_the_searcher_is_part_of_the_study_identity(tmp_path: Path) -> None:
    opened(tmp_path, hpo("bohb"))
    with pytest.raises(ValueError, match=r"searcher: journal has .*'bohb'.*this run has .*'tpe'"):
        StudyClient(tmp_path).open(spec_from_config(hpo("tpe")), n_workers=1)
    with pytest.raises(ValueError, match="searcher"):
        StudyClient(tmp_path).open(spec_from_config(hpo("bohb", random_fraction=0.5)), 1)
    # A journal from before searchers were chosen ({"name": "random"}) still opens.
    old = tmp_path / "old"
    opened(old, hpo("random"))
    first = Journal(old / "journal.jsonl").read(0)[0][0]
    assert first["searcher"] == {"name": "random"}


# ------------------------------------------------------------------ untrusted claims


def _model_study(tmp_path: Path) -> list[dict[str, Any]]:
    run_study(opened(tmp_path, hpo("bohb")))
    return Journal(tmp_path / "journal.jsonl").read(0)[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(prefix=2), "is not the one the study's searcher gives"),
        (lambda c: c.update(prefix=10**6), "fitted on the first 1000000 records, but only"),
        (lambda c: c.update(by="oracle"), "its 'by' is 'oracle'"),
        (lambda c: c["config"].update(lr=0.5), "is not the one the study's searcher gives"),
    ],
)
def test_verify_recomputes_model_claims(tmp_path: Path, change: Any, message: str) -> None:
    records = _model_study(tmp_path)
    index = next(i for i, rec in enumerate(records)
                 if rec["op"] == "claim" and rec.get("by") == "model")  # fmt: skip
    change(records[index])
    forged = tmp_path / "forged"
    forged.mkdir()
    (forged / "journal.jsonl").write_bytes(b"".join(_line(rec) for rec in records))
    problems, _ = scan(forged / "journal.jsonl")
    assert len(problems) >= 1 and message in problems[0].what, problems
    assert problems[0].line == index + 1


def _line(record: dict[str, Any]) -> bytes:
    from lit_hpo.journal import encode as encode_record

    return encode_record(record)


def test_a_header_with_an_unknown_searcher_fails_closed() -> None:
    with pytest.raises(ValueError, match=r"'searcher'.*not one this lit_hpo knows"):
        StudyState().apply(r.header(searcher={"name": "smac"}))


# ------------------------------------------------------------------ contract


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("searcher", ["random", "grid", *MODEL_BASED])
def test_every_searcher_works_with_every_scheduler_and_replays(
    tmp_path: Path, searcher: str, scheduler: str
) -> None:
    settings = hpo(searcher, scheduler, max_trials=10 if searcher != "grid" else None)
    if searcher == "grid":
        settings.pop("max_trials")
    state = run_study(opened(tmp_path, settings)).refresh()
    assert len(state.trials) == (6 if searcher == "grid" else 10)
    finished = ("completed", "stopped", "paused")  # promotion ASHA: paused when the budget ends
    assert all(t.status in finished for t in state.trials)
    fresh = StudyClient(tmp_path)
    assert [fresh.config_of(t.trial_id) for t in state.trials] == [t.config for t in state.trials]
    assert scan(tmp_path / "journal.jsonl")[0] == []


def _worker(directory: str, worker: int) -> None:
    run_study(Path(directory), worker)


@pytest.mark.skipif(sys.platform != "linux", reason="fork")
def test_concurrent_workers_with_a_model_get_unique_ids_and_a_verifiable_journal(
    tmp_path: Path,
) -> None:
    """Three real processes fit BOHB outside the lock and race to claim: every id once,
    every claim's config recomputes from its recorded prefix (claims that lost the race
    refitted), and the model fits never happen under the lock."""
    settings = hpo("bohb", max_trials=30)
    opened(tmp_path, settings, n_workers=3)
    context = multiprocessing.get_context("fork")
    procs = [context.Process(target=_worker, args=(str(tmp_path), w)) for w in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=300)
        assert proc.exitcode == 0
    records = Journal(tmp_path / "journal.jsonl").read(0)[0]
    claims = [rec for rec in records if rec["op"] == "claim"]
    assert [rec["trial"] for rec in claims] == list(range(30))
    assert len({rec["worker"] for rec in claims}) > 1
    assert sum(rec["by"] == "model" for rec in claims) > 5
    assert scan(tmp_path / "journal.jsonl")[0] == []


def test_the_model_is_fitted_outside_the_journal_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = hpo("bohb", random_fraction=0)
    opened(tmp_path, settings)
    client = StudyClient(tmp_path)
    held = []
    locked = client.journal.locked

    def tracking() -> Any:
        from contextlib import contextmanager

        @contextmanager
        def inner() -> Any:
            with locked():
                held.append(True)
                try:
                    yield
                finally:
                    held.pop()

        return inner()

    fits = []
    import lit_hpo.searchers.bohb as bohb_module

    real = bohb_module.suggest

    def fit(*args: Any, **kwargs: Any) -> Any:
        fits.append(bool(held))
        return real(*args, **kwargs)

    monkeypatch.setattr(client.journal, "locked", tracking)
    monkeypatch.setattr(bohb_module, "suggest", fit)
    run_study(tmp_path, client=client)
    assert len(fits) > 5 and not any(fits)  # every fit ran with the lock free


@pytest.mark.slow
def test_an_asha_study_with_bohb_end_to_end(tmp_path: Path, fashion_root: Path) -> None:
    """`python train.py -m hpo=asha hpo.searcher=bohb`: real Hydra, real Trainer."""
    from lit_hpo import load_study
    from tests.conftest import SMALL, run_train

    result = run_train(
        tmp_path, fashion_root, "hpo=asha", "model=mlp", "hpo.searcher=bohb", "hpo.min_points=3",
        "hpo.n_workers=2", "hpo.max_trials=12", "hpo.max_wallclock_time=null",
        "trainer.max_epochs=4", "hpo.grace_period=1", *SMALL,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    study = load_study(tmp_path)
    table = study.trials
    assert list(table["proposed_by"][:1]) == ["point"]  # the seeds' point to evaluate
    assert "model" in set(table["proposed_by"]) and "stopped" in set(table["status"])
    assert "(proposed by the model)" in result.stdout
    assert scan(tmp_path / "journal.jsonl")[0] == []
