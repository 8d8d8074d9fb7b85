"""The ``hpo.*`` settings and their defaults: the one place they are written.

``conf/hpo/*.yaml`` start from this node (registered in Hydra's ConfigStore as
``hpo/lit_hpo_base`` by the sweeper plugin) and set only what differs; the validation in
:mod:`lit_hpo.spec` falls back to the same defaults for any key a config leaves out.
The node is stored untyped, so a typo still gets lit_hpo's "did you mean" message.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Settings:
    scheduler: str = "asha"  # fifo (random search), asha, asha_promotion, hyperband
    metric: str = "validation_error"  # what HPOCallback reports
    mode: str = "min"  # min or max
    max_epochs: Any = "${trainer.max_epochs}"  # r_max
    grace_period: int = 2  # r_min, the first rung (ASHA, Hyperband's bracket 0)
    reduction_factor: int = 2  # eta
    brackets: int | None = None  # Hyperband: how many brackets; null: every one possible
    n_workers: int | None = None  # null: one per GPU, or 2 on CPU (capped at the cores)
    max_wallclock_time: float | None = 300  # seconds of study time; null for no limit
    max_trials: int | None = None  # stop starting trials after this many; null: no limit
    seed: int = 0  # trial i's configuration is drawn from default_rng([seed, i])
    max_retries: int = 2  # lost workers a trial survives (interrupts do not count)
    lease_seconds: float = 60  # a running trial silent this long is lost (heartbeat: 1/3)
    lock: str = "flock"  # strict_soft for a study directory on NFS (docs/journal.md)
    space: dict[str, str] = field(default_factory=dict)  # config key -> sweep expression
    points_to_evaluate: list[dict[str, Any]] = field(default_factory=list)  # tried first
    searcher: str = "random"  # random, grid, or model-based: tpe, gp, cmaes (Optuna's), bohb
    random_fraction: float = 1 / 3  # model-based: this share of new trials is drawn at random
    min_points: int | None = None  # model-based: results a level needs; null: dimensions + 1
    bandwidth_factor: float = 3.0  # bohb: candidates are drawn this much wider than its KDE
    journal: str | None = None  # null: journal.jsonl in the study dir; or postgresql://...
    worker: int | None = None  # join the study in hydra.sweep.dir as this worker (no new run)
    wait: bool = False  # hydra/launcher=submitit_*: stay attached until the study ends


DEFAULTS = Settings()
KNOWN_KEYS = tuple(f.name for f in fields(Settings))


def base_node() -> dict[str, Any]:
    """The defaults as a plain config node (for Hydra's ConfigStore)."""
    return asdict(DEFAULTS)
