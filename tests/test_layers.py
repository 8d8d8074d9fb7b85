"""The dependency rules between lit_hpo's layers, checked on the code itself.

Every ``import`` in a module (at any depth, so lazy imports count too) is read with
``ast``; a rule names a module (or package) and what it must not import. The runtime
checks import a module in a fresh interpreter and look at ``sys.modules``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PROCESSES = ("multiprocessing", "subprocess", "signal", "threading")
FRAMEWORKS = ("lightning", "torch", "hydra", "omegaconf")


def imports(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (relative imports resolved)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def files(target: str) -> list[Path]:
    path = ROOT / "src" / target.replace(".", "/")
    return sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]


def _matches(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


RULES = [
    ("lit_hpo.journal", ("lit_hpo.state", "lit_hpo.schedulers", "lit_hpo.study", *FRAMEWORKS),
     "the journal knows nothing of state, schedulers, frameworks"),
    ("lit_hpo.locks", ("lit_hpo.state", "lit_hpo.schedulers", "lit_hpo.study", *FRAMEWORKS),
     "the lock knows only files"),
    ("lit_hpo.state", ("lit_hpo.schedulers", "lit_hpo.study", "os", "time", *PROCESSES,
                       *FRAMEWORKS), "the state is pure: no I/O, no clock"),
    ("lit_hpo.schedulers", ("lit_hpo.study", "lit_hpo.journal", "os", "time", *PROCESSES,
                            *FRAMEWORKS), "schedulers know no processes, Lightning or Hydra"),
    ("lit_hpo.policy", ("lit_hpo.study", "os", "time", *PROCESSES, *FRAMEWORKS),
     "decisions are pure functions"),
    ("models", ("lit_hpo",), "models know no tuning"),
    ("lit_hpo.worker", ("hydra", "omegaconf", "lit_hpo.hydra_job", "lit_hpo.function_job"),
     "the worker loop knows a trial's job only through the Job seam"),
    ("lit_hpo.function_job", ("hydra", "omegaconf", "lit_hpo.hydra_job"),
     "a function trial needs no Hydra"),
]  # fmt: skip


@pytest.mark.parametrize("target, forbidden, why", RULES, ids=[r[0] for r in RULES])
def test_layer_imports(target: str, forbidden: tuple[str, ...], why: str) -> None:
    broken = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files(target)
        for name in imports(path)
        if _matches(name, forbidden)
    }
    assert not broken, f"{why}: {sorted(broken)}"


def test_test_modules_share_helpers_not_each_other() -> None:
    """A test module imports helpers (``conftest``, ``records``, ``scripted``, ...), never
    another test module: running or changing one file must not run or break another's."""
    broken = {
        f"{path.name} imports {name}"
        for path in sorted((ROOT / "tests").glob("*.py"))
        for name in imports(path)
        if name.startswith("tests.test_")
    }
    assert not broken, sorted(broken)


def _loaded(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return set(out.split())


def test_the_callback_works_without_hydra() -> None:
    loaded = _loaded("lit_hpo.callback")
    assert not {m for m in loaded if _matches(m, ("hydra", "lit_hpo.hydra_sweep"))}


def test_the_worker_runtime_loads_no_analysis_or_plotting_code() -> None:
    loaded = _loaded("lit_hpo.worker")
    analysis = ("lit_hpo.results", "lit_hpo.plots", "lit_hpo.progress", "pandas")
    assert not {m for m in loaded if _matches(m, analysis)}


def test_tune_and_its_workers_load_no_hydra() -> None:
    for module in ("lit_hpo.tuning", "lit_hpo.function_job", "lit_hpo.reporter"):
        hydra = ("hydra", "omegaconf", "lit_hpo.hydra_sweep", "lit_hpo.hydra_job")
        assert not {m for m in _loaded(module) if _matches(m, hydra)}, module
