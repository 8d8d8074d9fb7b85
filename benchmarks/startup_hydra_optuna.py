"""hydra-optuna-sweeper's start, for ``startup.py``: the same Hydra app (``train.py -m``
on the sleeping model) with the peer's sweeper, TPE, two trials at a time through
Hydra's joblib launcher (``conf/search/optuna_startup.yaml``), in the peer's own
environment (``search_peers.peer_python``: it pins ``optuna<3``).

Run as a script under that environment's interpreter, it runs ``train.py -m`` in this
process under a thin wrapper that stamps its imports, the sweeper's start and the first
result told to Optuna (the sweeper has no reports: that is the first value it knows,
when the first batch of jobs has returned). Each trial's fit start and first validated
epoch come from the module's stamps, as for lit_hpo's rows.
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from measure import ROOT, mark, run_stamped  # noqa: E402

TRIALS = "BENCH_OPTUNA_TRIALS"  # where the child writes its study's trials, if set
STEPS = ["lightning imported", "Hydra imported", "optuna imported", "sweeper runs",
         "fit starts", "first epoch validated", "first report"]  # fmt: skip


def child(argv: list[str]) -> None:
    import lightning  # noqa: F401

    mark("lightning imported")
    import hydra  # noqa: F401

    mark("Hydra imported")
    import optuna
    from hydra_plugins.hydra_optuna_sweeper import _impl

    mark("optuna imported")
    sweep, tell = _impl.OptunaSweeperImpl.sweep, optuna.study.Study.tell

    def stamped_sweep(self: Any, arguments: list[str]) -> None:
        mark("sweeper runs")  # Hydra has composed the run's config
        return sweep(self, arguments)

    def stamped_tell(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return tell(self, *args, **kwargs)
        finally:
            mark("first report")  # the first is kept

    created: list[Any] = []

    def create_study(*args: Any, **kwargs: Any) -> Any:
        created.append(make_study(*args, **kwargs))
        return created[-1]

    make_study = optuna.create_study
    _impl.OptunaSweeperImpl.sweep, optuna.study.Study.tell = stamped_sweep, stamped_tell
    optuna.create_study = create_study
    sys.argv = argv
    try:
        runpy.run_path(argv[0], run_name="__main__")
    finally:
        if os.environ.get(TRIALS) and created:  # overhead.py's row: every trial's times
            Path(os.environ[TRIALS]).write_text(json.dumps([
                {"state": t.state.name, "x": t.params.get("model.x"),
                 "start": t.datetime_start and t.datetime_start.timestamp(),
                 "complete": t.datetime_complete and t.datetime_complete.timestamp()}
                for t in created[-1].trials
            ]))  # fmt: skip


def run(work: Path, epoch_sleep: float) -> dict[str, float]:
    """One start of the peer, from its command's start."""
    from search_peers import peer_python

    marks = work / "stamps"
    command = [str(peer_python()), str(Path(__file__)), str(ROOT / "train.py"), "-m",
               "--config-dir", str(HERE / "conf"), "model=sleepy", "data=sleepy",
               "+search=optuna_startup", f"hydra.sweep.dir={work / 'study'}",
               "trainer.max_epochs=1", f"model.epoch_sleep={epoch_sleep}"]  # fmt: skip
    return run_stamped(command, marks, "hydra-optuna-sweeper")[0]


def warm_up() -> None:
    """The peer's packages read once (a warm page cache), as ``measure.warm_up``."""
    from search_peers import peer_python

    modules = "lightning, hydra, optuna, joblib, hydra_plugins.hydra_optuna_sweeper._impl"
    subprocess.run([str(peer_python()), "-c", f"import {modules}"], cwd=ROOT, check=True)


def versions() -> dict[str, str]:
    """The peer's own packages, as its environment has them."""
    from search_peers import PEER_PACKAGES, peer_python

    names = [p.split("==")[0] for p in PEER_PACKAGES[:2]]
    code = ("import importlib.metadata as m; "
            f"print(' '.join(m.version(n) for n in {names!r}))")  # fmt: skip
    out = subprocess.run([str(peer_python()), "-c", code], capture_output=True, text=True)
    return {f"{n} (peer env)": v for n, v in zip(names, out.stdout.split(), strict=False)}


if __name__ == "__main__":
    child(sys.argv[1:])
