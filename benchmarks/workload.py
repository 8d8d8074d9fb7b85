"""The synthetic metric of ``benchmarks/overhead.py`` (no heavy imports: the plain-function
trials of variant (a) must not pay for torch)."""

REPORTS_PER_TRIAL = 10  # the trials of journal.py and lock_hold.py


def metric(x: float, epoch: int) -> float:
    """The validation error after ``epoch`` epochs of a trial with hyperparameter ``x``."""
    return (x - 0.3) ** 2 + 1.0 / epoch
