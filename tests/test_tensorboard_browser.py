"""TensorBoard on a real study, checked in headless Chromium (Debian's `chromium`).

Serves `tensorboard --logdir <study dir>` on loopback, loads the scalars and HParams
dashboards with Playwright driving /usr/bin/chromium, and asserts that every trial is
there. Screenshots are kept in outputs/checks/ as the artefact of the check.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTEFACTS = ROOT / "outputs" / "checks"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def tensorboard_url(asha_study):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    study_dir, _ = asha_study
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(study_dir),
         "--host", "127.0.0.1", "--port", str(port), "--reload_interval", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/data/runs", timeout=2).read()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise
            time.sleep(0.5)
    yield url
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def page():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1600, "height": 1200})
        yield page
        browser.close()


def test_scalars_dashboard_shows_every_trial(tensorboard_url: str, page) -> None:
    page.goto(f"{tensorboard_url}/#timeseries")
    page.get_by_text("validation_error", exact=True).first.wait_for(timeout=60_000)
    text = page.locator("body").inner_text()
    for trial_id in range(14):
        # run names carry the trial id and its hyperparameters
        assert f"trial_{trial_id}/tensorboard/learning_rate=" in text, trial_id
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / "tensorboard_scalars.png"), full_page=True)


def test_hparams_dashboard_lists_every_trial_with_final_and_best(
    tensorboard_url: str, page
) -> None:
    page.goto(f"{tensorboard_url}/#hparams")
    page.get_by_text("Number of matching session groups: 14").wait_for(timeout=60_000)
    for column in ("learning_rate", "batch_size", "status", "final_validation_error",
                   "best_validation_error"):  # fmt: skip
        assert page.get_by_text(column, exact=True).count() >= 1, column
    for trial_id in range(14):
        assert page.get_by_text(f"trial_{trial_id}/hparams", exact=True).count() >= 1, trial_id
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / "tensorboard_hparams.png"), full_page=True)
