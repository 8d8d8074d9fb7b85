"""Search spaces: domains, validation, seeded sampling and a JSON round trip.

A space maps a hyperparameter's config key (``"model.learning_rate"``) to a domain.
Domains validate their bounds when they are built, so a bad range fails before any
worker starts, and they sample only from an explicit ``numpy.random.Generator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

Value = float | int | str | bool


def _check_bounds(name: str, low: float, high: float, log: bool) -> None:
    for which, bound in (("low", low), ("high", high)):
        if isinstance(bound, bool) or not isinstance(bound, (int, float)):
            raise TypeError(f"`{name}`: the {which} bound must be a number, but got {bound!r}.")
        if not math.isfinite(bound):
            raise ValueError(
                f"`{name}`: the {which} bound must be finite, but got {bound!r}. "
                "Give a finite range such as interval(0.001, 1)."
            )
    if low >= high:
        raise ValueError(
            f"`{name}`: the range must satisfy low < high, but got low={low!r}, high={high!r}. "
            "Swap the bounds, or fix the value with a plain override instead of a range."
        )
    if log and low <= 0:
        raise ValueError(
            f"`{name}`: a log range needs low > 0, but got low={low!r}. "
            "Use a positive lower bound or drop tag(log, ...)."
        )


@dataclass(frozen=True)
class Float:
    """A real number in ``[low, high]``; uniform, or uniform in log space when ``log``."""

    name: str
    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        _check_bounds(self.name, self.low, self.high, self.log)

    def sample(self, rng: np.random.Generator) -> float:
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def contains(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and self.low <= value <= self.high

    def to_json(self) -> dict[str, Any]:
        kind = "loguniform" if self.log else "uniform"
        return {"type": kind, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Int:
    """An integer in ``[low, high]``, both ends included (Syne Tune's ``randint``)."""

    name: str
    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        for which, bound in (("low", self.low), ("high", self.high)):
            if isinstance(bound, float) and bound.is_integer():
                object.__setattr__(self, which, int(bound))
            elif isinstance(bound, bool) or not isinstance(bound, int):
                raise TypeError(
                    f"`{self.name}`: an integer range needs integer bounds, but got {bound!r}."
                )
        _check_bounds(self.name, self.low, self.high, self.log)

    def sample(self, rng: np.random.Generator) -> int:
        if self.log:
            # Sample uniformly in log space over [low - 0.5, high + 0.5) and round, so
            # that both end points keep a fair share of the mass.
            # low >= 1 here (a log range has low > 0), so low - 0.5 > 0.
            value = round(
                math.exp(rng.uniform(math.log(self.low - 0.5), math.log(self.high + 0.5)))
            )
            return int(min(max(value, self.low), self.high))
        return int(rng.integers(self.low, self.high, endpoint=True))

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
        )

    def to_json(self) -> dict[str, Any]:
        kind = "lograndint" if self.log else "randint"
        return {"type": kind, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Choice:
    """One of a fixed list of values, each equally likely."""

    name: str
    options: tuple[Value, ...]

    def __post_init__(self) -> None:
        if len(self.options) == 0:
            raise ValueError(f"`{self.name}`: choice(...) needs at least one option.")
        for option in self.options:
            if isinstance(option, float) and not math.isfinite(option):
                raise ValueError(f"`{self.name}`: choice option {option!r} is not finite.")

    def sample(self, rng: np.random.Generator) -> Value:
        return self.options[int(rng.integers(len(self.options)))]

    def contains(self, value: Any) -> bool:
        return value in self.options

    def to_json(self) -> dict[str, Any]:
        return {"type": "choice", "options": list(self.options)}


Domain = Float | Int | Choice


# Builders for a config space written in Python (lit_hpo.tune), named as in Syne Tune
# and the textbook; each checks its range at once.
def uniform(low: float, high: float) -> Float:
    """A real number, uniform in ``[low, high]``."""
    return Float(f"uniform({low!r}, {high!r})", low, high)


def loguniform(low: float, high: float) -> Float:
    """A positive real number, uniform in log space: ``loguniform(1e-2, 1)``."""
    return Float(f"loguniform({low!r}, {high!r})", low, high, log=True)


def randint(low: int, high: int) -> Int:
    """An integer in ``[low, high]``, both ends included: ``randint(32, 256)``."""
    return Int(f"randint({low!r}, {high!r})", low, high)


def lograndint(low: int, high: int) -> Int:
    """A positive integer in ``[low, high]``, uniform in log space."""
    return Int(f"lograndint({low!r}, {high!r})", low, high, log=True)


def choice(options: list[Value] | tuple[Value, ...]) -> Choice:
    """One of ``options``: ``choice([64, 128, 256])``."""
    if isinstance(options, (str, bytes)) or not hasattr(options, "__iter__"):
        raise TypeError(f"choice() takes a list of options, such as choice([1, 2]), "
                        f"but got {options!r}.")  # fmt: skip
    return Choice("choice", tuple(options))


def domain_from_json(name: str, spec: dict[str, Any]) -> Domain:
    """Build a domain from its JSON form (the inverse of ``Domain.to_json``).

    Raises:
        ValueError: for an unknown ``type`` or a bad range.
    """
    kind = spec.get("type")
    if kind in ("uniform", "loguniform"):
        return Float(name, spec["low"], spec["high"], log=kind == "loguniform")
    if kind in ("randint", "lograndint"):
        return Int(name, spec["low"], spec["high"], log=kind == "lograndint")
    if kind == "choice":
        return Choice(name, tuple(spec["options"]))
    raise ValueError(
        f"`{name}`: unknown domain type {kind!r}; "
        "use one of uniform, loguniform, randint, lograndint, choice."
    )


def space_to_json(space: dict[str, Domain]) -> dict[str, dict[str, Any]]:
    return {name: domain.to_json() for name, domain in space.items()}


def space_from_json(data: dict[str, dict[str, Any]]) -> dict[str, Domain]:
    return {name: domain_from_json(name, spec) for name, spec in data.items()}


def sample_config(space: dict[str, Domain], rng: np.random.Generator) -> dict[str, Value]:
    """Draw one configuration. Keys are drawn in sorted order, so the values do not
    depend on the order the space was written in; the result keeps the space's order."""
    drawn = {name: space[name].sample(rng) for name in sorted(space)}
    return {name: drawn[name] for name in space}


def short_names(keys: list[str]) -> dict[str, str]:
    """Column names for config keys: the last dotted component unless two keys share it.

    >>> short_names(["model.learning_rate", "data.batch_size"])
    {'model.learning_rate': 'learning_rate', 'data.batch_size': 'batch_size'}
    """
    last = [key.rsplit(".", 1)[-1] for key in keys]
    return {
        key: (tail if last.count(tail) == 1 else key) for key, tail in zip(keys, last, strict=True)
    }


def config_text(config: dict[str, object], separator: str = ", ") -> str:
    """``learning_rate=0.1301, batch_size=149``: short names, 4 significant digits."""
    names = short_names(list(config))
    return separator.join(
        f"{names[key]}={value:.4g}" if isinstance(value, float) else f"{names[key]}={value}"
        for key, value in config.items()
    )
