"""The locked study steps: unique ids across processes, budget, and replay determinism."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

from lit_hpo.journal import Journal
from lit_hpo.policy import decide
from lit_hpo.schedulers import make_scheduler
from lit_hpo.spec import spec_from_config
from lit_hpo.state import StudyState
from lit_hpo.study import StudyClient
from tests.test_spec import SEEDS

CLAIMER = """
import sys
from lit_hpo.study import StudyClient
client = StudyClient(sys.argv[1])
worker = int(sys.argv[2])
while (trial := client.claim(worker)) is not None:
    # A fake learning curve: value falls with epochs, trial-dependent level.
    for epoch in range(1, 11):
        value = (trial.trial_id * 7919 % 101) / 101 + 1.0 / epoch
        if client.report(trial.trial_id, epoch, value).stop:
            break
    client.end(trial.trial_id, "completed")
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_first_trial_takes_the_point_to_evaluate(tmp_path: Path) -> None:
    client = StudyClient(tmp_path)
    client.open(spec_from_config(SEEDS), n_workers=2)
    first, second = client.claim(0), client.claim(1)
    assert first is not None and second is not None
    assert first.config == {"model.learning_rate": 0.1, "data.batch_size": 128}
    assert (first.trial_id, second.trial_id) == (0, 1)
    assert second.config != first.config


def test_budget_stops_claims_and_running_trials(tmp_path: Path) -> None:
    clock = Clock()
    client = StudyClient(tmp_path, clock=clock)
    client.open(spec_from_config({**SEEDS, "max_wallclock_time": 60}), n_workers=1)
    trial = client.claim(0)
    assert trial is not None
    assert client.report(trial.trial_id, 1, 0.5).action == "continue"
    clock.now += 61
    decision = client.report(trial.trial_id, 2, 0.4)
    assert (decision.action, decision.reason) == ("stop", "budget")
    assert client.claim(0) is None


def test_max_trials(tmp_path: Path) -> None:
    client = StudyClient(tmp_path)
    client.open(spec_from_config({**SEEDS, "max_trials": 3}), n_workers=1)
    assert [t.trial_id for t in iter(lambda: client.claim(0), None)] == [0, 1, 2]


def test_non_finite_value_is_recorded_and_stops_the_trial(tmp_path: Path) -> None:
    client = StudyClient(tmp_path)
    client.open(spec_from_config(SEEDS), n_workers=1)
    trial = client.claim(0)
    assert trial is not None
    decision = client.report(trial.trial_id, 1, math.nan)
    assert (decision.action, decision.reason) == ("stop", "nonfinite")
    report = client.state.trials[0].reports[0]
    assert (report.value, report.raw) == (None, "nan")
    assert client.state.rung_values == {}


def test_report_after_the_trial_ended_is_rejected_cleanly(tmp_path: Path) -> None:
    client = StudyClient(tmp_path)
    client.open(spec_from_config(SEEDS), n_workers=1)
    trial = client.claim(0)
    assert trial is not None
    client.end(trial.trial_id, "failed", "worker_died")
    records_before = len(Journal(client.journal.path).read(0)[0])
    decision = client.report(trial.trial_id, 1, 0.3)
    assert (decision.action, decision.reason) == ("stop", "ended")
    assert len(Journal(client.journal.path).read(0)[0]) == records_before


def test_concurrent_workers_get_unique_ids_and_replay_reproduces_every_decision(
    tmp_path: Path,
) -> None:
    spec = spec_from_config({**SEEDS, "max_wallclock_time": None, "max_trials": 60})
    StudyClient(tmp_path).open(spec, n_workers=4)
    procs = [
        subprocess.Popen([sys.executable, "-c", CLAIMER, str(tmp_path), str(w)]) for w in range(4)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0] * 4
    records, _ = Journal(tmp_path / "journal.jsonl").read(0)
    claims = [r for r in records if r["op"] == "claim"]
    assert [r["trial"] for r in claims] == list(range(60))
    assert len({r["worker"] for r in claims}) > 1
    # Replay from scratch: every recorded decision is the one the rule gives again.
    state = StudyState()
    scheduler = make_scheduler(records[0]["scheduler"])
    stops = 0
    for record in records:
        if record["op"] == "report":
            again = decide(scheduler, state, record["trial"], record["epoch"], record["value"],
                           record["time"])  # fmt: skip
            assert (again.action, again.reason) == (record["decision"], record["reason"])
            stops += record["decision"] == "stop"
        state.apply(record)
    assert stops > 10  # ASHA really stopped trials at rungs
