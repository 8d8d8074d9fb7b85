"""lit_hpo's runs of the overhead benchmark (``overhead.py`` documents the variants):
(a) two long-lived processes on ``StudyClient``, (b) ``python train.py -m`` itself."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from measure import ROOT, busy_seconds, children_cpu, cpu_between, run_sampled, wait_all

HERE = Path(__file__).resolve().parent
OVERHEAD = HERE / "overhead.py"  # the worker processes run its --role entry points
Run = dict[str, Any]


def journal_records(study_dir: Path) -> list[dict[str, Any]]:
    from lit_hpo.journal import Journal

    return Journal(study_dir / "journal.jsonl").read(0)[0]


def trials_from_journal(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per trial from our journal: scheduled (claim), reports seen, completion seen (end)."""
    trials: dict[int, dict[str, Any]] = {}
    for r in records:
        if r["op"] == "claim":
            trials[r["trial"]] = {"sched": r["time"], "worker": r["worker"], "seen": []}
        elif r["op"] == "report":
            trials[r["trial"]]["seen"].append(r["time"])
        elif r["op"] == "end":
            t = trials[r["trial"]]
            t["done"], t["reason"] = r["time"], r.get("reason")
            t["status"] = r["status"]
    return trials


def finished(status: str, reason: str | None) -> bool:
    """Completed, or stopped by the scheduler (not by the budget)."""
    return status == "completed" or (status == "stopped" and reason != "budget")


# ------------------------------------------------------------------ ours


def ours_a_worker(args: argparse.Namespace) -> None:
    """A long-lived worker: claim, run the plain function through StudyClient, end."""
    from workload import metric

    from lit_hpo.study import StudyClient

    client = StudyClient(args.study)
    out: dict[str, Any] = {"ready": time.time(), "trials": {}}
    while (claim := client.claim(args.worker)) is not None:
        start = time.time()
        x = claim.config["x"]
        reports, status, reason = [], "completed", None
        for epoch in range(1, args.epochs + 1):
            time.sleep(args.epoch_sleep)
            emitted = time.time()
            decision = client.report(claim.trial_id, epoch, metric(x, epoch), claim.attempt)
            reports.append([emitted, time.time()])
            if decision.stop:
                status, reason = "stopped", decision.reason
                break
        end = time.time()
        client.end(claim.trial_id, status, reason)
        out["trials"][claim.trial_id] = {"start": start, "end": end, "reports": reports}
    out["exit"] = time.time()
    Path(args.out).write_text(json.dumps(out))


def ours_a(args: argparse.Namespace, scheduler: str, run_dir: Path) -> Run:
    from lit_hpo.spec import spec_from_config
    from lit_hpo.study import StudyClient

    settings: dict[str, Any] = {
        "scheduler": "asha" if scheduler == "asha" else "fifo",
        "max_epochs": args.epochs,
        "max_wallclock_time": args.wallclock,
        "max_trials": None,
        "seed": 0,
        "space": {"x": "interval(0, 1)"},
    }
    if scheduler == "asha":
        settings |= {"grace_period": 1, "reduction_factor": 2}
    study = run_dir / "study"
    cpu0, busy0, launch = children_cpu(), busy_seconds(), time.time()
    StudyClient(study).open(spec_from_config(settings), args.n_workers)
    outs = [run_dir / f"worker_{w}.json" for w in range(args.n_workers)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(OVERHEAD),
                "--role",
                "ours-a-worker",
                "--worker",
                str(w),
                "--study",
                str(study),
                "--out",
                str(outs[w]),
                "--epochs",
                str(args.epochs),
                "--epoch-sleep",
                str(args.epoch_sleep),
            ]
        )
        for w in range(args.n_workers)
    ]
    wait_all(procs)
    exited, cpu, busy = time.time(), children_cpu() - cpu0, busy_seconds() - busy0
    workers = [json.loads(o.read_text()) for o in outs]
    journal = trials_from_journal(journal_records(study))
    trials = []
    for w in workers:
        for tid, t in w["trials"].items():
            j = journal[int(tid)]
            trials.append(
                {
                    "sched": j["sched"],
                    "done": j["done"],
                    "start": t["start"],
                    "end": t["end"],
                    "reports": t["reports"],
                    "finished": finished(j["status"], j["reason"]),
                    "completed": j["status"] == "completed",
                }
            )
    return {
        "launch": launch,
        "exited": exited,
        "window": [min(w["ready"] for w in workers), max(w["exit"] for w in workers)],
        "trials": trials,
        "coordinator_cpu": 0.0,
        "cpu": cpu,
        "busy": busy,
    }


def ours_b(args: argparse.Namespace, scheduler: str, run_dir: Path) -> Run:
    study, stamps = run_dir / "study", run_dir / "stamps"
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        "--config-dir",
        str(HERE / "conf"),
        "model=sleepy",
        "data=sleepy",
        "hpo=overhead",
        f"hydra.sweep.dir={study}",
        f"trainer.max_epochs={args.epochs}",
        f"model.epoch_sleep={args.epoch_sleep}",
        f"hpo.max_wallclock_time={args.wallclock}",
        f"hpo.n_workers={args.n_workers}",
    ]
    if scheduler == "asha":
        command += ["hpo.scheduler=asha", "hpo.grace_period=1", "hpo.reduction_factor=2"]
    env = {**os.environ, "BENCH_STAMPS": str(stamps)}
    ran = run_sampled(command, env, run_dir / "train.log", "train.py -m")
    records = journal_records(study)
    journal = trials_from_journal(records)
    trials = []
    for tid, j in journal.items():
        path = stamps / f"trial_{tid}.json"
        s = json.loads(path.read_text()) if path.exists() else {"val_end": []}
        trials.append(
            {
                "sched": j["sched"],
                "done": j["done"],
                "start": s.get("fit_start"),
                "end": s.get("fit_end"),
                "reports": list(zip(s["val_end"], j["seen"], strict=False)),
                "finished": finished(j["status"], j["reason"]),
                "completed": j["status"] == "completed",
            }
        )
    window = [min(t["sched"] for t in journal.values()), max(t["done"] for t in journal.values())]
    return {"launch": ran["launch"], "exited": ran["exited"], "window": window,
            "trials": trials, "coordinator_cpu": cpu_between(ran["samples"], *window),
            "cpu": ran["cpu"], "busy": ran["busy"]}  # fmt: skip
