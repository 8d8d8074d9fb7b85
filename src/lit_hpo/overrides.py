"""Hydra's sweep syntax as search-space domains.

``tag(log, interval(0.01, 1))`` → loguniform, ``interval(a, b)`` → uniform,
``int(interval(32, 256))`` → randint (both ends included), ``tag(log, int(interval(...)))``
→ lograndint, ``choice(a, b, ...)`` and ``range(a, b[, step])`` → choice.
"""

from __future__ import annotations

from typing import Any

from lit_hpo.space import Choice, Domain, Float, Int, domain_from_json


def domain_from_override(override: Any) -> Domain:
    """Convert a parsed Hydra sweep override (``hydra.core.override_parser``) to a domain.

    Raises:
        ValueError: for a sweep type that has no domain (``glob``) or a bad range.
    """
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    key = override.get_key_element()
    value = override.value()
    if isinstance(value, IntervalSweep):
        log = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return Int(key, value.start, value.end, log=log)
        return Float(key, float(value.start), float(value.end), log=log)
    if isinstance(value, ChoiceSweep):
        return Choice(key, tuple(value.list))
    if isinstance(value, RangeSweep):
        options = tuple(override.sweep_iterator())
        return Choice(key, options)
    raise ValueError(
        f"`{key}`: the sweep {override.input_line!r} cannot be searched; use interval(...), "
        "tag(log, interval(...)), int(interval(...)), choice(...) or range(...)."
    )


def parse_domain(key: str, spec: Any) -> Domain:
    """A domain from the config: a Hydra sweep expression string, or a mapping such as
    ``{type: loguniform, low: 0.01, high: 1}``.

    Raises:
        ValueError: naming ``key`` when the expression is not a valid range.
    """
    if isinstance(spec, dict):
        return domain_from_json(key, spec)
    if not isinstance(spec, str):
        raise ValueError(
            f"`hpo.space.{key}` must be a sweep expression such as "
            f"'tag(log, interval(0.01, 1))', but got {spec!r}."
        )
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        override = OverridesParser.create().parse_override(f"{key}={spec}")
    except HydraException as err:
        raise ValueError(f"`hpo.space.{key}`: cannot parse {spec!r}: {err}") from err
    if not override.is_sweep_override():
        raise ValueError(
            f"`hpo.space.{key}` = {spec!r} is a single value, not a range; write a range such "
            f"as interval(...) or choice(...), or drop the key from hpo.space to fix it."
        )
    return domain_from_override(override)
