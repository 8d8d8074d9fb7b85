"""The peers of ``search.py`` on the same training code: hydra-optuna-sweeper (TPE,
``n_jobs`` 2 through Hydra's joblib launcher, no pruning) and Syne Tune's BOHB.

hydra-optuna-sweeper pins ``optuna<3``, which cannot share an environment with the
Optuna 5 lit_hpo's searchers use: it runs in a virtual environment of its own
(``outputs/bench_venvs/hydra_optuna``, created once) that sees this one's packages
through a ``.pth`` file, so that only Optuna and the two Hydra plugins differ.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from measure import HERE, ROOT
from synetune_tuner import run_tuner, tune

SEARCH = HERE / "search.py"  # the Syne Tune tuner runs as its --role synetune
PEER_VENV = ROOT / "outputs" / "bench_venvs" / "hydra_optuna"
PEER_PACKAGES = ["optuna==2.10.1", "hydra-optuna-sweeper==1.2.0", "hydra-joblib-launcher",
                 "alembic", "cliff", "colorlog", "sqlalchemy", "tqdm"]  # fmt: skip
Trace = list[tuple[float, float]]


def peer_python() -> Path:
    """The peer environment's interpreter, created on first use."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps",
                        *PEER_PACKAGES], check=True)  # fmt: skip
        ours = next(p for p in sys.path if p.endswith("site-packages"))
        theirs = subprocess.run(
            [str(python), "-c", "import site; print(site.getsitepackages()[0])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        # addsitedir, not a bare path: this environment's own .pth files (lit_hpo's
        # editable install) must be read too; appended, so the peer's Optuna wins.
        Path(theirs, "zz_lit_hpo_env.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return python


def tensorboard_trace(study: Path, launch: float) -> tuple[Trace, int]:
    """Every validation_error a trial logged to TensorBoard, timed from the launch."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trace, trials = [], 0
    for events in study.glob("*/tensorboard"):
        trials += 1
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        if "validation_error" in accumulator.Tags()["scalars"]:
            trace += [(e.wall_time - launch, e.value)
                      for e in accumulator.Scalars("validation_error")]  # fmt: skip
    return sorted(trace), trials


def run_hydra_optuna(args: argparse.Namespace, seed: int, run_dir: Path) -> dict[str, Any]:
    study = run_dir / "study"
    command = [str(peer_python()), str(ROOT / "train.py"), "-m", "--config-dir",
               str(HERE / "conf"), "model=mlp", "+search=optuna",
               f"hydra.sweeper.sampler.seed={seed}", f"hydra.sweep.dir={study}",
               *args.trainer_overrides]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread per job, as our workers
    launch = time.time()
    with open(run_dir / "train.log", "w") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            proc.wait(timeout=args.budget)
        except subprocess.TimeoutExpired:  # the sweeper has no time budget: stop it
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    trace, trials = tensorboard_trace(study, launch)
    return {"trace": [p for p in trace if p[0] <= args.budget], "trials": trials,
            "epochs": len(trace)}  # fmt: skip


def run_synetune(args: argparse.Namespace, seed: int, run_dir: Path) -> dict[str, Any]:
    return run_tuner(SEARCH, ["--seed", str(seed), "--budget", str(args.budget), "--epochs",
                              str(args.epochs), "--train-fraction", str(args.train_fraction)],
                     run_dir)  # fmt: skip


def synetune_tuner(args: argparse.Namespace) -> None:
    from syne_tune.config_space import lograndint, loguniform, randint, uniform
    from syne_tune.optimizer.baselines import BOHB

    space = {
        "learning_rate": loguniform(0.01, 1.0), "batch_size": randint(32, 256),
        "dropout_1": uniform(0.0, 0.9), "dropout_2": uniform(0.0, 0.9),
        "num_hiddens_1": lograndint(16, 512), "num_hiddens_2": lograndint(16, 512),
        "epochs": args.epochs, "limit_batches": args.train_fraction,
        "limit_val_batches": 1.0, "model": "mlp",
    }  # fmt: skip
    scheduler = BOHB(space, metric="validation_error", do_minimize=True, time_attr="epoch",
                     max_t=args.epochs, grace_period=1, reduction_factor=3,
                     random_seed=args.seed)  # fmt: skip
    tune(scheduler, args.budget, f"search-bohb-{args.seed}", args.out, sleep_time=0.1)
