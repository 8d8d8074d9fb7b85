"""BOHB's model (Falkner et al. 2018): two kernel density estimates, of the good and of
the bad configurations at one level, and the candidate that maximizes their ratio.

Configurations are encoded in ``[0, 1]^d`` (log ranges in log space, integers relaxed to
``[low - 0.5, high + 0.5]``) with Gaussian kernels, and choices by their index with an
Aitchison-Aitken kernel; bandwidths follow the normal reference rule (as statsmodels'
``KDEMultivariate``, which the original uses), at least ``MIN_BANDWIDTH``. Candidates
are drawn around good points with the bandwidths widened by ``bandwidth_factor``.
Pure numpy; deterministic in the generator it is given.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lit_hpo.space import Choice, Domain, Float, Value

TOP_PERCENT = 15  # the best 15% are "good"
CANDIDATES = 64
MIN_BANDWIDTH = 1e-3


def _bounds(domain: Float | Any) -> tuple[float, float]:
    """The encoded interval of a numeric domain (log space for log ranges)."""
    low, high = float(domain.low), float(domain.high)
    if not isinstance(domain, Float):  # integers: every value owns a unit interval
        low, high = low - 0.5, high + 0.5
    return (math.log(low), math.log(high)) if domain.log else (low, high)


def encode(space: dict[str, Domain], config: dict[str, Any]) -> list[float]:
    row = []
    for key, domain in space.items():
        value = config[key]
        if isinstance(domain, Choice):
            row.append(float(domain.options.index(value)))
            continue
        low, high = _bounds(domain)
        x = math.log(value) if domain.log else float(value)
        row.append(min(1.0, max(0.0, (x - low) / (high - low))))
    return row


def encode_many(space: dict[str, Domain], configs: list[dict[str, Any]]) -> np.ndarray:
    """:func:`encode` of many configurations at once, a column per dimension (vectorized:
    a study's first suggestion in a process encodes every configuration it holds)."""
    columns = []
    for key, domain in space.items():
        values = [config[key] for config in configs]
        if isinstance(domain, Choice):
            index = {option: i for i, option in enumerate(domain.options)}
            columns.append(np.array([index[v] for v in values], dtype=float))
            continue
        low, high = _bounds(domain)
        x = np.asarray(values, dtype=float)
        x = np.log(x) if domain.log else x
        columns.append(np.clip((x - low) / (high - low), 0.0, 1.0))
    return np.stack(columns, axis=1) if configs else np.zeros((0, len(space)))


def decode(space: dict[str, Domain], row: np.ndarray) -> dict[str, Value]:
    config: dict[str, Value] = {}
    for (key, domain), u in zip(space.items(), row, strict=True):
        if isinstance(domain, Choice):
            config[key] = domain.options[int(u)]
            continue
        low, high = _bounds(domain)
        x = low + float(u) * (high - low)
        x = math.exp(x) if domain.log else x
        if isinstance(domain, Float):
            config[key] = min(domain.high, max(domain.low, x))
        else:
            config[key] = int(min(domain.high, max(domain.low, round(x))))
    return config


def _bandwidths(data: np.ndarray, categorical: np.ndarray) -> np.ndarray:
    n = len(data)
    spread = data.std(axis=0) if n > 1 else np.zeros(data.shape[1])
    bandwidth = np.maximum(1.06 * spread * n ** (-1 / 5), MIN_BANDWIDTH)
    return np.where(categorical, np.minimum(bandwidth, 1.0 - MIN_BANDWIDTH), bandwidth)


def _log_density(points: np.ndarray, data: np.ndarray, bandwidth: np.ndarray,
                 categorical: np.ndarray, n_options: np.ndarray) -> np.ndarray:  # fmt: skip
    """log of the product-kernel density estimate at each point (rows). The Gaussian part
    as one matrix product (||a - b||^2 = |a|^2 + |b|^2 - 2 a.b), so the cost is
    O(points x data x dims) multiply-adds without a points x data x dims array."""
    numeric = ~categorical
    a, b = points[:, numeric] / bandwidth[numeric], data[:, numeric] / bandwidth[numeric]
    squared = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2 * a @ b.T
    log_k = -0.5 * np.maximum(squared, 0.0)
    log_k -= np.log(bandwidth[numeric] * math.sqrt(2 * math.pi)).sum()
    for dim in np.flatnonzero(categorical):  # Aitchison-Aitken: 1 - bw if equal, else
        same = np.log(1 - bandwidth[dim])  # bw spread over the other options
        other = np.log(bandwidth[dim] / max(n_options[dim] - 1, 1))
        equal = np.abs(points[:, dim][:, None] - data[:, dim][None, :]) < 0.5
        log_k += np.where(equal, same, other)
    top = log_k.max(axis=1, keepdims=True)
    return top[:, 0] + np.log(np.exp(log_k - top).mean(axis=1))


def suggest(
    space: dict[str, Domain],
    data: np.ndarray,
    values: list[float],
    rng: np.random.Generator,
    min_points: int,
    bandwidth_factor: float,
) -> dict[str, Value]:
    """The candidate with the largest good/bad density ratio (smaller values are better),
    given the evidence's configurations encoded (:func:`encode`, one row each)."""
    order = np.argsort(np.asarray(values, dtype=float), kind="stable")
    n = len(order)
    n_good = max(min_points, TOP_PERCENT * n // 100)
    n_bad = max(min_points, (100 - TOP_PERCENT) * n // 100)
    good, bad = data[order[:n_good]], data[order[n - n_bad :]]
    categorical = np.array([isinstance(d, Choice) for d in space.values()])
    n_options = np.array([len(d.options) if isinstance(d, Choice) else 0 for d in space.values()])
    good_bw, bad_bw = _bandwidths(good, categorical), _bandwidths(bad, categorical)

    centres = good[rng.integers(0, n_good, size=CANDIDATES)]
    spread = np.maximum(good_bw * bandwidth_factor, MIN_BANDWIDTH)
    numeric = np.clip(centres + rng.normal(size=centres.shape) * spread, 0.0, 1.0)
    keep = rng.random(centres.shape) < 1 - np.minimum(good_bw, 1.0)
    other = np.floor(rng.random(centres.shape) * np.maximum(n_options, 1))
    candidates = np.where(categorical, np.where(keep, centres, other), numeric)

    ratio = _log_density(candidates, good, good_bw, categorical, n_options) - _log_density(
        candidates, bad, bad_bw, categorical, n_options
    )
    return decode(space, candidates[int(np.argmax(ratio))])
