"""The sweeper is found after each way of installing lit_hpo, from any directory.

Editable (``pip install -e``, what ``make install`` does): the test environment itself
is such an install, and ``tests/test_foreign_resume.py`` runs a foreign project from a
directory outside the checkout. Here: the editable install's path entry, and a wheel
installed into a directory of its own, with the editable one taken off ``sys.path``.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

DISCOVER = """
import sys
{path_setup}
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
import hydra_plugins.lit_hpo_sweeper.lit_hpo_sweeper as plugin
print(plugin.__file__)
print(sorted(c.__name__ for c in Plugins.instance().discover(Sweeper)))
"""


def _discover(cwd: Path, path_setup: str = "") -> list[str]:
    out = subprocess.run([sys.executable, "-c", DISCOVER.format(path_setup=path_setup)],
                         cwd=cwd, capture_output=True, text=True, check=True).stdout  # fmt: skip
    return out.splitlines()


def test_an_editable_install_is_found_from_any_directory(tmp_path: Path) -> None:
    plugin_file, sweepers = _discover(tmp_path)
    assert plugin_file.startswith(str(ROOT / "src"))
    assert "LitHpoSweeper" in sweepers


@pytest.mark.slow
def test_a_wheel_installed_elsewhere_is_found(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist"), str(ROOT)],
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("lit_hpo-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "hydra_plugins/lit_hpo_sweeper/lit_hpo_sweeper.py" in names
    assert "hydra_plugins/__init__.py" not in names  # a namespace shared with other plugins
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=300)  # fmt: skip
    editable = [str(ROOT / "src"), str(ROOT)]  # the checkout's own path entries
    setup = f"sys.path = [{str(target)!r}] + [p for p in sys.path if p not in {editable!r}]"
    plugin_file, sweepers = _discover(tmp_path, setup)
    assert plugin_file.startswith(str(target))
    assert "LitHpoSweeper" in sweepers
