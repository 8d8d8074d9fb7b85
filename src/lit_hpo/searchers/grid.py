"""Grid search over an all-categorical space: trial ``i`` takes the ``i``-th point of
the product of the options, the first key varying slowest (as Hydra's basic sweeper
orders ``a=1,2 b=x,y``)."""

from __future__ import annotations

import math

from lit_hpo.space import Choice, Domain, Value


def check_grid(space: dict[str, Domain]) -> None:
    """Raise ``ValueError`` naming the first dimension that is not a ``choice``."""
    for key, domain in space.items():
        if not isinstance(domain, Choice):
            raise ValueError(
                f"`hpo.searcher=grid` needs every hyperparameter to be a list of values "
                f"(choice(...) or a=1,2,3), but {key} is {domain.to_json()}. List the values "
                "to try, or use hpo.searcher=random (or tpe, bohb...) for ranges."
            )


def grid_size(space: dict[str, Domain]) -> int:
    return math.prod(len(domain.options) for domain in space.values())  # type: ignore[union-attr]


def grid_point(space: dict[str, Domain], index: int) -> dict[str, Value]:
    """The ``index``-th point of the grid (``0 <= index < grid_size(space)``)."""
    if not 0 <= index < grid_size(space):
        raise IndexError(f"grid point {index} of a {grid_size(space)}-point grid")
    config: dict[str, Value] = {}
    for key, domain in reversed(space.items()):
        options = domain.options  # type: ignore[union-attr]
        index, position = divmod(index, len(options))
        config[key] = options[position]
    return {key: config[key] for key in space}
