from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
RECORDED = Path(__file__).parent / "data" / "asha_study"  # a real study's journal
# The seeds' study settings (hpo=asha on the demo workload), as spec_from_config takes them
SEEDS: dict[str, Any] = {
    "scheduler": "asha",
    "metric": "validation_error",
    "mode": "min",
    "max_epochs": 10,
    "grace_period": 2,
    "reduction_factor": 2,
    "n_workers": None,
    "max_wallclock_time": 300,
    "max_trials": None,
    "seed": 0,
    "space": {
        "model.learning_rate": "tag(log, interval(0.01, 1))",
        "data.batch_size": "int(interval(32, 256))",
    },
    "points_to_evaluate": [{"model.learning_rate": 0.1, "data.batch_size": 128}],
}


@pytest.fixture
def recorded_study(tmp_path: Path) -> Path:
    """A copy of the recorded real study (``tests/data/asha_study``) to work on."""
    import shutil

    target = tmp_path / "study"
    shutil.copytree(RECORDED, target)
    return target


def data_root() -> Path | None:
    """FashionMNIST for tests: $LIT_HPO_DATA, else ../shared/data beside the checkout."""
    from models.data import find_fashion_mnist

    env = os.environ.get("LIT_HPO_DATA")
    for candidate in (env, SHARED_DATA):
        if candidate and find_fashion_mnist(candidate) is not None:
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def fashion_root() -> Path:
    root = data_root()
    if root is None:
        pytest.skip("FashionMNIST not found: set LIT_HPO_DATA or place ../shared/data")
    return root


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable


SLEEPY = [  # a study of trials that only sleep: no data, no real training
    "--config-dir", "benchmarks/conf", "model=sleepy", "data=sleepy", "hpo=overhead",
    "trainer.max_epochs=4", "model.epoch_sleep=0.5",
]  # fmt: skip
SMALL = [
    "trainer.limit_train_batches=10",
    "trainer.limit_val_batches=5",
    "trainer.num_sanity_val_steps=0",
]


def study_env(fashion_root: Path) -> dict[str, str]:
    return {**os.environ, "LIT_HPO_DATA": str(fashion_root), "PYTHONUNBUFFERED": "1"}


def run_train(study: Path, fashion_root: Path, *overrides: str, timeout: float = 240):
    """`python train.py -m <overrides> hydra.sweep.dir=<study>` in a subprocess."""
    return subprocess.run(
        [sys.executable, "train.py", "-m", *overrides, f"hydra.sweep.dir={study}"],
        cwd=ROOT,
        env=study_env(fashion_root),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def asha_study(tmp_path_factory: pytest.TempPathFactory, fashion_root: Path):
    """A small real ASHA study (DropoutMLP, 14 trials, 2 workers), run once per session."""
    study = tmp_path_factory.mktemp("asha")
    result = run_train(
        study, fashion_root, "hpo=asha", "model=mlp", "hpo.n_workers=2", "hpo.max_trials=14",
        "hpo.max_wallclock_time=null", "trainer.max_epochs=4", "hpo.grace_period=1", *SMALL,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return study, result


def wait_for(predicate: Callable[[], object], timeout: float = 120.0) -> None:
    """Poll ``predicate`` every 0.2 s until it is true (``TimeoutError`` after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise TimeoutError("condition not reached")


def running_trials(study_dir: Path) -> list:
    """The study's running trials, read from its journal (none before it exists)."""
    from lit_hpo import load_study

    if not (study_dir / "journal.jsonl").exists():
        return []
    return load_study(study_dir).state.running()


def rank_pids(study: Path) -> set[int]:
    """Processes that run a rank > 0 of this study's trials: Lightning's ddp launcher
    re-ran the command line (``hydra.sweep.dir=<study>``, quoted or not: a cluster
    worker's arguments quote it) with ``LOCAL_RANK``."""
    sweep_dir = {f"hydra.sweep.dir={s}".encode() for s in (study, f"'{study}'")}
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if sweep_dir.intersection(arguments) and any(
            e.startswith(b"LOCAL_RANK=") and e != b"LOCAL_RANK=0" for e in environ
        ):
            found.add(int(entry.name))
    return found


@contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A real filesystem of ``size`` (a tmpfs) mounted at ``path``, unmounted afterwards;
    the test skips without root and ``mount``."""
    path.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root and mount to make a small tmpfs")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path, leave: int = 0) -> Path:
    """Fill the disk ``path`` is on with the file ``path``, then free ``leave`` bytes."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave))
    os.close(fd)
    return path


# Real servers (PostgreSQL, SLURM): a test that needs one skips with the way to start it
# here, and fails in CI, where .ci/run starts both and sets LIT_HPO_REQUIRE_SERVERS=1.
REQUIRE_SERVERS = os.environ.get("LIT_HPO_REQUIRE_SERVERS") == "1"
PG_URL = os.environ.get("LIT_HPO_TEST_PG", "postgresql://postgres@127.0.0.1:5432/lit_hpo")


def unavailable(what: str, start: str) -> None:
    if REQUIRE_SERVERS:
        pytest.fail(f"{what} (LIT_HPO_REQUIRE_SERVERS=1: .ci/run starts it with {start})")
    pytest.skip(f"{what}: start it with {start}")


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A PostgreSQL server's URL (``$LIT_HPO_TEST_PG``, default the local recipe's)."""
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=3).close()
    except Exception as err:  # no driver, no server
        unavailable(f"no PostgreSQL at {PG_URL} ({err})", "bash scripts/start-local-postgres.sh")
    return PG_URL


@pytest.fixture(scope="session")
def slurm() -> None:
    """A SLURM cluster whose partition is up."""
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%a"], capture_output=True, text=True,
                             timeout=30, check=False).stdout  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as err:
        out = str(err)
    if "up" not in out.split():
        unavailable(f"no SLURM cluster here (sinfo: {out.strip()!r})",
                    "LOCAL_SLURM_FAKE_GPUS=2 bash scripts/start-local-slurm.sh")  # fmt: skip
