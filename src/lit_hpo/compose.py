"""Each trial's Hydra config: what Hydra's own launchers compose, in a fraction of the time.

Hydra composes a job's config from its defaults list (``load_sweep_config``: about
50 ms for the demo config on this project's CPU, a third of a short trial's overhead).
When no search-space key selects a config group, every trial has the same defaults list
and differs only in values. The base (the run's overrides, no trial values) is then
composed once, and each trial gets a copy with its values applied the way Hydra applies
value overrides. The first trial is composed both ways and compared; a group key or any
difference keeps Hydra's full composition for every trial.

The ``-m`` process composes the first trial itself, to refuse a bad config before any
worker starts; workers forked from it inherit that composer, its decision and its base.
A composer sent to another process (a fork server, a SLURM array task) decides again
there: its base and decision belong to the process that made them.
"""

from __future__ import annotations

import copy
import io
import json
import pickle
import re
import warnings
from collections.abc import Callable
from typing import Any


def format_override(key: str, value: Any) -> str:
    """``key=value`` in Hydra's override grammar, parsing back to exactly ``value``:
    non-ASCII text, spaces, quotes and backslashes included (``json.dumps`` would write
    ``\\u00fc`` escapes and doubled backslashes, which Hydra's grammar keeps literally)."""
    return f"{key}={format_value(value)}"


def format_value(value: Any) -> str:
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(format_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}:{format_value(item)}" for key, item in value.items()) + "}"
    return json.dumps(value)  # numbers, booleans (true/false) and None (null)


def quote(text: str) -> str:
    """A single-quoted Hydra string. In quoted values Hydra treats a backslash as an
    escape only before a quote: ``2n`` backslashes and a quote give ``n`` backslashes
    and end the string, ``2n+1`` give ``n`` and a literal quote; others stay as they are.
    So runs of backslashes before a quote or the end are doubled, quotes escaped."""
    doubled = re.sub(r"(\\+)(?='|$)", lambda run: run.group(1) * 2, text)
    return "'" + doubled.replace("'", "\\'") + "'"


class TrialComposer:
    """Args:
    config_loader: Hydra's config loader (``hydra_context.config_loader``).
    master_config: the multirun's config.
    base_overrides: the run's overrides that are not search-space keys.
    """

    def __init__(self, config_loader: Any, master_config: Any, base_overrides: list[str]) -> None:
        self.loader = config_loader
        self.master = master_config
        self.base_overrides = base_overrides
        self.fast: bool | None = None  # decided on the first trial
        self._copy_base: Callable[[], Any] | None = None  # a fresh copy of the base
        self._base_task: list[Any] = []  # the base's task overrides, parsed

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without this process's decision and base (see the module's text)."""
        return {**self.__dict__, "fast": None, "_copy_base": None, "_base_task": []}

    def __call__(self, values: dict[str, Any]) -> Any:
        """The config of a trial with these search-space values."""
        overrides = [format_override(key, value) for key, value in values.items()]
        if self.fast is False:
            return self._full(overrides)
        if self.fast is None:
            full = self._full(overrides)
            self.fast = not self._selects_group(values) and self._quick_matches(overrides, full)
            return full
        return self._quick(overrides)

    def _quick_matches(self, overrides: list[str], full: Any) -> bool:
        """Whether the quick path gives Hydra's own result; ``False`` (full composition
        for every trial, with one warning) if it cannot run at all: it relies on Hydra
        internals (``ConfigLoaderImpl._apply_overrides_to_config``) that a new Hydra
        release may rename."""
        try:
            return _same(self._quick(overrides), full)
        except (ImportError, AttributeError, TypeError) as error:
            warnings.warn(
                f"lit_hpo: composing trial configs the quick way failed ({error!r}) with this "
                "Hydra version; every trial is composed in full instead (~50 ms slower)",
                RuntimeWarning,
                stacklevel=2,
            )
            return False

    def _full(self, overrides: list[str]) -> Any:
        return self.loader.load_sweep_config(self.master, self.base_overrides + overrides)

    def _selects_group(self, values: dict[str, Any]) -> bool:
        repository = getattr(self.loader, "repository", None)
        return repository is None or any(repository.group_exists(key) for key in values)

    def _quick(self, overrides: list[str]) -> Any:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        apply_overrides, get_overrides_dirname = hydra_internals()
        parser = OverridesParser.create()
        if self._copy_base is None:
            base = self._full([])
            self._copy_base = copier(base)
            self._base_task = parser.parse_overrides(list(base.hydra.overrides.task))
        config = self._copy_base()
        parsed = parser.parse_overrides(overrides)
        apply_overrides(parsed, config)
        config.hydra.overrides.task.extend(overrides)
        naming = config.hydra.job.config.override_dirname
        config.hydra.job.override_dirname = get_overrides_dirname(
            overrides=self._base_task + parsed,
            exclude_keys=list(naming.exclude_keys),
            item_sep=naming.item_sep,
            kv_sep=naming.kv_sep,
        )
        return config


def copier(config: Any) -> Callable[[], Any]:
    """A function that returns a fresh deep copy of ``config`` on each call: unpickled from
    bytes pickled once here (~1 ms for the demo's config on this project's CPU, against
    ~4 ms for ``copy.deepcopy``, most of it Hydra's own node). Classes (a node's
    structured-config type) are kept by identity, as ``copy.deepcopy`` keeps them: Hydra
    imports its plugins again when it scans them, so a launcher's config class may no
    longer be the one its module names. ``copy.deepcopy`` for a config that still does
    not pickle. The bytes never leave this process."""
    classes: list[type] = []

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: Any) -> int | None:
            if isinstance(obj, type):
                classes.append(obj)
                return len(classes) - 1
            return None

    class Unpickler(pickle.Unpickler):
        def persistent_load(self, pid: Any) -> type:
            return classes[pid]

    buffer = io.BytesIO()
    try:
        Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(config)
    except Exception:  # a value that does not pickle (OmegaConf's allow_objects)
        return lambda: copy.deepcopy(config)
    data = buffer.getvalue()
    return lambda: Unpickler(io.BytesIO(data)).load()  # our own bytes, made above


def hydra_internals() -> tuple[Any, Any]:
    """The two private Hydra functions the quick path uses (Hydra 1.3's names)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname

    return ConfigLoaderImpl._apply_overrides_to_config, get_overrides_dirname


def _same(a: Any, b: Any) -> bool:
    from omegaconf import OmegaConf

    return bool(OmegaConf.to_yaml(a) == OmegaConf.to_yaml(b))
