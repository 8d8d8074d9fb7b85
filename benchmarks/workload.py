"""The synthetic metric of ``benchmarks/overhead.py`` (no heavy imports: the plain-function
trials of variant (a) must not pay for torch)."""


def metric(x: float, epoch: int) -> float:
    """The validation error after ``epoch`` epochs of a trial with hyperparameter ``x``."""
    return (x - 0.3) ** 2 + 1.0 / epoch
