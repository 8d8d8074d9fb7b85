"""Syne Tune's ``Tuner`` for ``lenet.py`` and ``search.py``: run in a process of its own
(``--role synetune``), on ``synetune_trial.py``, recording every reported value."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def run_tuner(script: Path, role_args: list[str], run_dir: Path) -> dict[str, Any]:
    """``python <script> --role synetune <role_args> --out-file ...`` and what it
    recorded: every (seconds since the launch, value) reported, trials and epochs."""
    out = run_dir / "synetune.json"
    env = {**os.environ, "SYNETUNE_FOLDER": str(run_dir / "synetune")}
    launch = time.time()
    with open(run_dir / "tuner.log", "w") as log:
        subprocess.run([sys.executable, str(script), "--role", "synetune", *role_args,
                        "--out-file", str(out)],
                       env=env, stdout=log, stderr=subprocess.STDOUT, check=True)  # fmt: skip
    results = json.loads(out.read_text())
    trace = sorted((t - launch, v) for t, v in results["reports"])
    return {"trace": trace, "trials": results["trials"], "epochs": len(trace)}


def tune(scheduler: Any, budget: float, name: str, out: str, sleep_time: float = 5.0) -> None:
    """Run the tuner (2 workers, ``LocalBackend``) and write what it reported to ``out``;
    ``sleep_time`` is the tuner's polling period (5 s is Syne Tune's default)."""
    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend import LocalBackend
    from syne_tune.tuner_callback import TunerCallback

    reports: list[tuple[float, float]] = []
    started: set[int] = set()

    class Record(TunerCallback):
        def on_start_trial(self, trial: Any) -> None:
            started.add(trial.trial_id)

        def on_trial_result(self, trial: Any, status: str, result: dict, decision: str) -> None:
            reports.append((time.time(), float(result["validation_error"])))

    Tuner(
        trial_backend=LocalBackend(entry_point=str(HERE / "synetune_trial.py")),
        scheduler=scheduler,
        stop_criterion=StoppingCriterion(max_wallclock_time=budget),
        n_workers=2,
        sleep_time=sleep_time,
        callbacks=[Record()],
        tuner_name=name,
    ).run()
    Path(out).write_text(json.dumps({"reports": reports, "trials": len(started)}))
