"""Schedulers decide, after each reported epoch, whether a trial goes on.

A scheduler holds only its settings; every decision is a pure function of the replayed
:class:`~lit_hpo.state.StudyState`, so any worker can take it and a replay of the journal
takes it again identically.
"""

from __future__ import annotations

from typing import Any

from lit_hpo.schedulers.asha import ASHA
from lit_hpo.schedulers.base import CONTINUE, Decision, Scheduler
from lit_hpo.schedulers.fifo import FIFO
from lit_hpo.schedulers.hyperband import Hyperband
from lit_hpo.schedulers.promotion import PromotionASHA
from lit_hpo.schedulers.rungs import continues_at_rung, is_rung, rung_levels

SCHEDULERS = ("fifo", "asha", "asha_promotion", "hyperband")

__all__ = [
    "ASHA",
    "CONTINUE",
    "FIFO",
    "SCHEDULERS",
    "Decision",
    "Hyperband",
    "PromotionASHA",
    "Scheduler",
    "continues_at_rung",
    "is_rung",
    "make_scheduler",
    "rung_levels",
]


def make_scheduler(settings: dict[str, Any]) -> Scheduler:
    """Build a scheduler from its header settings (``{"name": "asha", ...}``).

    Raises:
        ValueError: for an unknown name or invalid settings.
    """
    name = settings.get("name")
    if name == "fifo":
        return FIFO(max_epochs=settings["max_epochs"])
    rungs = {
        "grace_period": settings.get("grace_period"),
        "reduction_factor": settings.get("reduction_factor"),
        "max_epochs": settings["max_epochs"],
    }
    if name == "asha":
        return ASHA(**rungs)
    if name == "asha_promotion":
        return PromotionASHA(**rungs)
    if name == "hyperband":
        return Hyperband(**rungs, brackets=settings.get("brackets"), seed=settings.get("seed", 0))
    raise ValueError(
        f"unknown scheduler {name!r}; use one of {', '.join(SCHEDULERS)} "
        "(hpo=random selects fifo, hpo=asha asha, hpo=asha_promotion asha_promotion, "
        "hpo=hyperband hyperband)"
    )
