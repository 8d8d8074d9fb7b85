"""The overhead benchmark's figures from one run's timestamps, and its table
(``overhead.py`` defines every column)."""

from __future__ import annotations

import argparse
from typing import Any

from measure import fmt, median

Run = dict[str, Any]


def analyse(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    sleep = args.epoch_sleep
    t0, t1 = run["window"]
    window = t1 - t0
    done = [t for t in run["trials"] if t["finished"] and t["done"] is not None]
    reports = [r for t in run["trials"] for r in t["reports"]]
    n_reports = sum(len(t["reports"]) for t in run["trials"])

    def part(t: dict[str, Any], a: str, b: str, minus_sleep: bool = False) -> float | None:
        if t.get(a) is None or t.get(b) is None:
            return None
        return t[b] - t[a] - (len(t["reports"]) * sleep if minus_sleep else 0.0)

    loops = []
    for t in done:
        begin = t.get("imported") or t.get("start")
        if begin is not None and t.get("end") is not None:
            loops.append(t["end"] - begin - len(t["reports"]) * sleep)
    return {
        "window_s": window,
        "trials_started": len(run["trials"]),
        "trials_finished": len(done),
        "trials_completed": sum(t["completed"] for t in done),
        "reports": n_reports,
        "overhead_s": median([part(t, "sched", "done", True) for t in done]),
        "start_s": median([part(t, "sched", "start") for t in done]),
        "imports_s": median([part(t, "start", "imported") for t in done]),
        "loop_s": median(loops),
        "exit_s": median([part(t, "end", "done") for t in done]),
        "utilization": n_reports * sleep / (args.n_workers * window),
        "utilization_from_launch": n_reports
        * sleep
        / (args.n_workers * (run["exited"] - run["launch"])),
        "finished_per_min": len(done) / (window / 60),
        "completed_per_min": sum(t["completed"] for t in done) / (window / 60),
        "first_report_s": min(r[1] for r in reports) - run["launch"] if reports else None,
        "report_lag_s": median([r[1] - r[0] for r in reports]),
        "report_lag_max_s": max((r[1] - r[0] for r in reports), default=None),
        "coordinator_cpu_share": run["coordinator_cpu"] / window,
        "cpu_per_trial_s": run["cpu"] / max(1, len(done)),
        "machine_busy_cores": run["busy"] / (run["exited"] - run["launch"]),
    }


def markdown(results: dict[str, Any]) -> str:
    s = results["settings"]
    lines = [
        f"Scheduling overhead — {results['machine']}, {results['date']}; "
        + ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
        "",
        f"{s['n_workers']} workers, {s['epochs']} epochs × {s['epoch_sleep']} s of sleep, "
        f"{s['wallclock']:g} s budget, {s['repeats']} run(s) each (the median run by "
        f"utilization). Ideal: {results['ideal_per_min']:.0f} trials/min. Overhead per "
        "finished trial = (completion seen − scheduled) − epochs run × sleep (median, s), "
        "split into start / imports / loop / exit where measurable.",
    ]
    for variant, title in (("a", "(a) scheduler path"), ("b", "(b) Lightning path")):
        rows = [r for r in results["rows"] if r["variant"] == variant]
        if not rows:
            continue
        lines += [
            "",
            f"**{title}**",
            "",
            "| system | scheduler | overhead | start | imports | loop | exit | utilization "
            "| from launch | finished/min | completed/min | first report (s) | report lag "
            "(ms) | coordinator CPU | CPU/trial (s) | busy cores |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            f = r["median_run"]
            lag = None if f["report_lag_s"] is None else 1e3 * f["report_lag_s"]
            lines.append(
                f"| {r['label']} | {r['scheduler']} | {fmt(f['overhead_s'], 3)} | "
                f"{fmt(f['start_s'], 3)} | {fmt(f['imports_s'], 3)} | {fmt(f['loop_s'], 3)} | "
                f"{fmt(f['exit_s'], 3)} | {fmt(f['utilization'], 3)} | "
                f"{fmt(f['utilization_from_launch'], 3)} | {fmt(f['finished_per_min'], 1)} | "
                f"{fmt(f['completed_per_min'], 1)} | {fmt(f['first_report_s'], 2)} | "
                f"{fmt(lag, 1)} | {fmt(f['coordinator_cpu_share'], 3)} | "
                f"{fmt(f['cpu_per_trial_s'], 2)} | {fmt(f['machine_busy_cores'], 2)} |"
            )
    return "\n".join(lines)
