from __future__ import annotations

import math

import numpy as np
import pytest

from lit_hpo.overrides import parse_domain
from lit_hpo.space import (
    Choice,
    Float,
    Int,
    sample_config,
    short_names,
    space_from_json,
    space_to_json,
)


@pytest.mark.parametrize(
    "expression, expected",
    [
        pytest.param(
            "tag(log, interval(0.01, 1))", Float("x", 0.01, 1.0, log=True), id="loguniform"
        ),
        pytest.param("interval(0, 1)", Float("x", 0.0, 1.0), id="uniform"),
        pytest.param("int(interval(32, 256))", Int("x", 32, 256), id="randint"),
        pytest.param("tag(log, int(interval(1, 64)))", Int("x", 1, 64, log=True), id="lograndint"),
        pytest.param("choice(a, b, 3)", Choice("x", ("a", "b", 3)), id="choice"),
        pytest.param("range(1, 4)", Choice("x", (1, 2, 3)), id="range"),
        pytest.param(
            {"type": "loguniform", "low": 0.1, "high": 1}, Float("x", 0.1, 1, True), id="mapping"
        ),
    ],
)
def test_parse_domain(expression: object, expected: object) -> None:
    assert parse_domain("x", expression) == expected


@pytest.mark.parametrize(
    "expression, message",
    [
        pytest.param("interval(1, 0.5)", "low < high", id="inverted"),
        pytest.param("interval(1, 1)", "low < high", id="empty"),
        pytest.param("tag(log, interval(0, 1))", "log range needs low > 0", id="log-zero"),
        pytest.param("tag(log, interval(-1, 1))", "log range needs low > 0", id="log-negative"),
        pytest.param("interval(0, inf)", "must be finite", id="infinite"),
        pytest.param("interval(nan, 1)", "must be finite", id="nan"),
        pytest.param("0.5", "single value, not a range", id="not-a-range"),
        pytest.param("glob(*)", "cannot be searched", id="glob"),
        pytest.param({"type": "gaussian"}, "unknown domain type", id="unknown-type"),
    ],
)
def test_bad_ranges_name_the_key(expression: object, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_domain("model.learning_rate", expression)
    assert "model.learning_rate" in str(info.value)


def test_sampling_stays_in_range_and_log_spreads_over_decades() -> None:
    space = {"lr": Float("lr", 1e-4, 1.0, log=True), "bs": Int("bs", 32, 256)}
    rng = np.random.default_rng(0)
    draws = [sample_config(space, rng) for _ in range(4000)]
    assert all(1e-4 <= d["lr"] <= 1 and 32 <= d["bs"] <= 256 for d in draws)
    decades = np.histogram([math.log10(d["lr"]) for d in draws], bins=4, range=(-4, 0))[0]
    assert decades.min() > 800  # about 1000 per decade when uniform in log space
    assert {32, 256} <= {d["bs"] for d in draws}  # both ends are included


def test_sampling_is_reproducible_and_independent_of_key_order() -> None:
    a = {"x": Float("x", 0, 1), "y": Int("y", 0, 9)}
    b = {"y": Int("y", 0, 9), "x": Float("x", 0, 1)}
    first = sample_config(a, np.random.default_rng(7))
    second = sample_config(b, np.random.default_rng(7))
    assert first == second
    assert list(second) == ["y", "x"]


def test_json_round_trip() -> None:
    space = {
        "a": Float("a", 0.01, 1.0, log=True),
        "b": Int("b", 32, 256),
        "c": Choice("c", ("sgd", "adam")),
        "d": Int("d", 1, 8, log=True),
    }
    assert space_from_json(space_to_json(space)) == space


def test_short_names_fall_back_to_full_key_on_collision() -> None:
    assert short_names(["model.lr", "optim.lr", "data.batch_size"]) == {
        "model.lr": "model.lr",
        "optim.lr": "optim.lr",
        "data.batch_size": "batch_size",
    }
