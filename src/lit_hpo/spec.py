"""`StudySpec`: the validated settings of a study, and its journal header.

Everything a user can get wrong is checked here, before a worker starts, with a message
that names the value and the fix.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any

from lit_hpo import records
from lit_hpo.locks import KINDS
from lit_hpo.overrides import parse_domain
from lit_hpo.pg_journal import check_url
from lit_hpo.schedulers import SCHEDULERS, Scheduler, make_scheduler
from lit_hpo.searchers import SearcherSpec, check_space, grid_size
from lit_hpo.settings import DEFAULTS, KNOWN_KEYS
from lit_hpo.space import Domain, space_to_json
from lit_hpo.state import RESERVED_PREFIXES

# Header fields that define a study; a rerun into the same directory must match them.
IDENTITY = ("space", "points_to_evaluate", "scheduler", "metric", "mode", "seed", "lock",
            "searcher")  # fmt: skip


@dataclass(frozen=True)
class Budget:
    """When the study stops starting (and running) trials."""

    max_wallclock_time: float | None = None  # seconds of active study time
    max_trials: int | None = None

    def __post_init__(self) -> None:
        if self.max_wallclock_time is not None and not (
            isinstance(self.max_wallclock_time, (int, float))
            and math.isfinite(self.max_wallclock_time)
            and self.max_wallclock_time > 0
        ):
            raise ValueError(
                f"`hpo.max_wallclock_time` must be a positive number of seconds or null, "
                f"but got {self.max_wallclock_time!r}."
            )
        if self.max_trials is not None and (
            isinstance(self.max_trials, bool)
            or not isinstance(self.max_trials, int)
            or self.max_trials < 1
        ):
            raise ValueError(
                f"`hpo.max_trials` must be a positive integer or null, but got {self.max_trials!r}."
            )
        if self.max_wallclock_time is None and self.max_trials is None:
            raise ValueError(
                "the study has no budget: set hpo.max_wallclock_time (seconds) or hpo.max_trials."
            )

    def to_json(self) -> dict[str, Any]:
        return {"max_wallclock_time": self.max_wallclock_time, "max_trials": self.max_trials}


@dataclass(frozen=True)
class StudySpec:
    space: dict[str, Domain]
    scheduler: Scheduler
    metric: str = DEFAULTS.metric
    mode: str = DEFAULTS.mode
    seed: int = DEFAULTS.seed
    points_to_evaluate: list[dict[str, Any]] = field(default_factory=list)
    budget: Budget = field(default_factory=lambda: Budget(max_trials=10))
    n_workers: int | None = None
    max_retries: int = DEFAULTS.max_retries  # lost attempts it may resume from; then fails
    lease_seconds: float = DEFAULTS.lease_seconds  # a running attempt silent this long is lost
    lock: str = DEFAULTS.lock  # or "strict_soft" on shared filesystems (see lit_hpo.journal)
    searcher: SearcherSpec = field(default_factory=SearcherSpec)
    journal: str | None = None  # a PostgreSQL URL; None: journal.jsonl in the study dir

    def session(self, now: float, n_workers: int, pid: int,
                host: str | None = None) -> records.SessionRecord:  # fmt: skip
        """The ``session`` record: this run's operational settings."""
        return records.session(now, n_workers, self.budget.to_json(), self.max_retries,
                               self.lease_seconds, pid, host)  # fmt: skip

    def identity(self) -> dict[str, Any]:
        return {
            "space": space_to_json(self.space),
            "points_to_evaluate": self.points_to_evaluate,
            "scheduler": self.scheduler.settings(),
            "metric": self.metric,
            "mode": self.mode,
            "seed": self.seed,
            "lock": self.lock,
            "searcher": self.searcher.to_json(),
        }

    def header(self, now: float) -> records.StudyRecord:
        """The ``study`` record: the journal's first line."""
        return {
            "op": records.Op.STUDY,
            "format": records.FORMAT_VERSION,
            "time": now,
            **self.identity(),
            "budget": self.budget.to_json(),
        }


def check_compatible(header: dict[str, Any], spec: StudySpec, directory: str) -> None:
    """Refuse to continue a study whose journal was written for other settings.

    Raises:
        ValueError: naming each differing field, with both values and the way out.
    """
    wanted = spec.identity()
    diffs = [
        f"  {key}: journal has {header.get(key)!r}, this run has {wanted[key]!r}"
        for key in IDENTITY
        if header.get(key) != wanted[key]
    ]
    if diffs:
        raise ValueError(
            f"the study in {directory} was created with different settings:\n"
            + "\n".join(diffs)
            + "\nRerun with the original settings to continue it, or choose a new "
            "study directory with hydra.sweep.dir=<new dir>."
        )


def _known(key: str) -> None:
    if key not in KNOWN_KEYS:
        close = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
        hint = f" Did you mean hpo.{close[0]}?" if close else ""
        raise ValueError(
            f"unknown setting hpo.{key}.{hint} Known settings: {', '.join(KNOWN_KEYS)}."
        )


def spec_from_config(hpo: dict[str, Any]) -> StudySpec:
    """Validate the (resolved) ``hpo`` config node and build the spec.

    Raises:
        ValueError, TypeError: naming the offending value and the fix.
    """
    for key in hpo:
        _known(key)
    mode = hpo.get("mode", DEFAULTS.mode)
    if mode not in ("min", "max"):
        raise ValueError(f"`hpo.mode` must be 'min' or 'max', but got {mode!r}.")
    metric = hpo.get("metric", DEFAULTS.metric)
    if not isinstance(metric, str) or not metric:
        raise ValueError(f"`hpo.metric` must be a metric name, but got {metric!r}.")
    name = hpo.get("scheduler", DEFAULTS.scheduler)
    if name not in SCHEDULERS:
        raise ValueError(
            f"unknown scheduler hpo.scheduler={name!r}; use one of {', '.join(SCHEDULERS)}."
        )
    seed = hpo.get("seed", DEFAULTS.seed)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"`hpo.seed` must be a non-negative integer, but got {seed!r}.")
    settings: dict[str, Any] = {"name": name, "max_epochs": hpo.get("max_epochs")}
    if name != "fifo":
        settings["grace_period"] = hpo.get("grace_period", DEFAULTS.grace_period)
        settings["reduction_factor"] = hpo.get("reduction_factor", DEFAULTS.reduction_factor)
    if name == "hyperband":
        settings["brackets"] = hpo.get("brackets", DEFAULTS.brackets)
        settings["seed"] = seed
    scheduler = make_scheduler(settings)
    n_workers = hpo.get("n_workers", DEFAULTS.n_workers)
    if n_workers is not None and (
        isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1
    ):
        raise ValueError(
            f"`hpo.n_workers` must be a positive integer (or null for one per GPU / the CPU "
            f"default), but got {n_workers!r}."
        )
    given = hpo.get("space") or {}
    named = next((key for key in given if not isinstance(key, str) or not key), None)
    if named is not None:
        raise TypeError(
            f"`hpo.space` has the key {named!r} ({type(named).__name__}): its keys are the "
            "config keys to search, such as model.learning_rate; quote a number ('1') to "
            "use it as a key."
        )
    space = {key: parse_domain(key, expr) for key, expr in given.items()}
    reserved = [key for key in space if key.startswith(RESERVED_PREFIXES)]
    if reserved:
        raise ValueError(
            f"`hpo.space` searches {', '.join(reserved)}: hpo.* and hydra.* keys are the "
            "study's own settings and cannot be search dimensions; set them to one value "
            "(e.g. hpo.seed=1) or search a key of your model, data or trainer config."
        )
    if not space:
        raise ValueError("`hpo.space` is empty: give at least one hyperparameter range.")
    points = [dict(point) for point in hpo.get("points_to_evaluate") or []]
    for index, point in enumerate(points):
        for key, value in point.items():
            if key not in space:
                raise ValueError(
                    f"`hpo.points_to_evaluate[{index}]` sets {key!r}, which is not in hpo.space "
                    f"({', '.join(space)})."
                )
            if not space[key].contains(value):
                raise ValueError(
                    f"`hpo.points_to_evaluate[{index}]` sets {key}={value!r}, outside its "
                    f"domain {space[key].to_json()}."
                )
    searcher = SearcherSpec(
        hpo.get("searcher", DEFAULTS.searcher),
        hpo.get("random_fraction", DEFAULTS.random_fraction),
        hpo.get("min_points", DEFAULTS.min_points),
        hpo.get("bandwidth_factor", DEFAULTS.bandwidth_factor),
    )
    check_space(searcher, space)
    budget = Budget(
        hpo.get("max_wallclock_time", DEFAULTS.max_wallclock_time),
        _max_trials(hpo.get("max_trials", DEFAULTS.max_trials), searcher, space, points),
    )
    max_retries = hpo.get("max_retries", DEFAULTS.max_retries)
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"`hpo.max_retries` must be an integer >= 0, but got {max_retries!r}.")
    lease = hpo.get("lease_seconds", DEFAULTS.lease_seconds)
    if isinstance(lease, bool) or not isinstance(lease, (int, float)) or not lease >= 5:
        raise ValueError(
            f"`hpo.lease_seconds` must be a number of seconds >= 5, but got {lease!r}."
        )
    lock = hpo.get("lock", DEFAULTS.lock)
    if lock not in KINDS:
        raise ValueError(
            f"`hpo.lock` must be one of {', '.join(KINDS)}, but got {lock!r}; strict_soft is "
            "for study directories on NFS (see docs/journal.md)."
        )
    return StudySpec(
        space=space, scheduler=scheduler, metric=metric, mode=mode, seed=seed,
        points_to_evaluate=points, budget=budget, n_workers=n_workers,
        max_retries=max_retries, lease_seconds=float(lease), lock=lock, searcher=searcher,
        journal=check_url(hpo.get("journal")),
    )  # fmt: skip


def _max_trials(max_trials: Any, searcher: SearcherSpec, space: dict[str, Domain],
                points: list[dict[str, Any]]) -> Any:  # fmt: skip
    """A grid has as many trials as points (plus the points to evaluate): the default
    budget, and the most a study can run."""
    if searcher.name != "grid":
        return max_trials
    size = len(points) + grid_size(space)
    if max_trials is None:
        return size
    if isinstance(max_trials, int) and not isinstance(max_trials, bool) and max_trials > size:
        raise ValueError(
            f"`hpo.max_trials={max_trials}` is more than the grid's {size} points"
            f"{' (with the points to evaluate)' if points else ''}; leave hpo.max_trials "
            "unset to run the whole grid once, or give it at most that many."
        )
    return max_trials
