"""lit_hpo: asynchronous hyperparameter optimization for PyTorch Lightning + Hydra.

``import lit_hpo`` stays light: everything but the trial context is imported when first
used (``HPOCallback`` loads Lightning, ``load_study`` pandas, ``tune`` the workers).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from lit_hpo.context import TrialContext, current_trial

if TYPE_CHECKING:
    from lit_hpo.callback import HPOCallback
    from lit_hpo.reporter import Checkpoint, TrialStopped, load_checkpoint, report
    from lit_hpo.results import Study, load_study
    from lit_hpo.space import choice, lograndint, loguniform, randint, uniform
    from lit_hpo.tuning import tune

_LAZY = {
    "HPOCallback": "lit_hpo.callback",
    "Study": "lit_hpo.results",
    "load_study": "lit_hpo.results",
    "tune": "lit_hpo.tuning",
    "report": "lit_hpo.reporter",
    "load_checkpoint": "lit_hpo.reporter",
    "Checkpoint": "lit_hpo.reporter",
    "TrialStopped": "lit_hpo.reporter",
    "uniform": "lit_hpo.space",
    "loguniform": "lit_hpo.space",
    "randint": "lit_hpo.space",
    "lograndint": "lit_hpo.space",
    "choice": "lit_hpo.space",
}
__all__ = [
    "Checkpoint", "HPOCallback", "Study", "TrialContext", "TrialStopped", "__version__",
    "choice", "current_trial", "load_checkpoint", "load_study", "lograndint", "loguniform",
    "randint", "report", "tune", "uniform",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lit_hpo' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
