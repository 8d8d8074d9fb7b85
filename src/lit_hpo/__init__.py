"""lit_hpo: asynchronous hyperparameter optimization for PyTorch Lightning + Hydra.

``import lit_hpo`` stays light: ``HPOCallback`` (Lightning) and ``load_study`` (pandas)
are imported when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["HPOCallback", "Study", "TrialContext", "__version__", "current_trial", "load_study"]

from lit_hpo.context import TrialContext, current_trial

if TYPE_CHECKING:
    from lit_hpo.callback import HPOCallback
    from lit_hpo.results import Study, load_study


def __getattr__(name: str) -> Any:
    if name == "HPOCallback":
        from lit_hpo.callback import HPOCallback

        return HPOCallback
    if name in ("Study", "load_study"):
        from lit_hpo import results

        return getattr(results, name)
    raise AttributeError(f"module 'lit_hpo' has no attribute {name!r}")
