"""Rung arithmetic and the asynchronous successive-halving stopping rule (pure functions).

Symbols follow the ASHA paper (Li et al., 2018) and d2l §19.5: ``r_min`` is the grace
period, ``η`` the reduction factor, ``r_max`` the maximum number of epochs. Epochs count
from 1 (the number of epochs done), as Syne Tune and Ray Tune count them.
"""

from __future__ import annotations

import bisect


def rung_levels(grace_period: int, reduction_factor: int, max_epochs: int) -> list[int]:
    """Rung levels ``r_min * η**k`` strictly below ``r_max``, with integer arithmetic.

    ``r_max`` itself is not a rung: a trial that reaches it has completed.

    >>> rung_levels(2, 2, 10)
    [2, 4, 8]
    """
    levels = []
    level = grace_period
    while level < max_epochs:
        levels.append(level)
        level *= reduction_factor
    return levels


def is_rung(epoch: int, grace_period: int, reduction_factor: int, max_epochs: int) -> bool:
    """Whether ``epoch`` is a rung level, without building the list."""
    if epoch < grace_period or epoch >= max_epochs:
        return False
    quotient, remainder = divmod(epoch, grace_period)
    if remainder:
        return False
    while quotient % reduction_factor == 0:
        quotient //= reduction_factor
    return quotient == 1


def continues_at_rung(value: float, others: list[float], reduction_factor: int) -> bool:
    """The ASHA stopping rule at one rung; smaller values are better.

    Let ``n`` be the number of values recorded at this rung *including* this trial's,
    and ``k`` the number of other values strictly better than this one. The trial
    continues iff ``k < max(1, n // η)``: it must be in the top ``⌊n/η⌋``, and the best
    value seen so far always continues. Consequences, each a row of the tests:

    * the first trial to reach a rung (``n == 1``) continues;
    * ties count in the trial's favour (only *strictly* better values rank above it);
    * with fewer than ``η`` values only the best (or tied best) continues.

    Args:
        value: this trial's value (sign-adjusted so smaller is better).
        others: every other finite value recorded at this rung, sorted ascending.
        reduction_factor: η.
    """
    n = len(others) + 1
    strictly_better = bisect.bisect_left(others, value)
    return strictly_better < max(1, n // reduction_factor)
