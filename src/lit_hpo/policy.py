"""Study-level decisions around the scheduler: budget, non-finite values, ended trials.

Pure functions of the state and a timestamp, so they replay like the scheduler does.
"""

from __future__ import annotations

import bisect
import itertools
import math

from lit_hpo.records import Action, Status
from lit_hpo.schedulers import Decision, Scheduler
from lit_hpo.state import StudyState, Trial

METRIC_NOT_LOGGED = "metric_not_logged"  # the reason of a trial whose metric never came
NO_REPORT = "no_report"  # the reason of a trial that returned without reporting at all
BAD_REPORT = "bad_report"  # lit_hpo.report was called with what the study cannot record
MISCONFIGURED = (METRIC_NOT_LOGGED, NO_REPORT, BAD_REPORT)


def time_exhausted(state: StudyState, now: float) -> bool:
    limit = state.budget.get("max_wallclock_time")
    return limit is not None and state.active_seconds(now) >= limit


SAME_ERROR = 3  # this many trials failing with one error, before any reported: stop


def misconfigured(state: StudyState) -> Trial | None:
    """The trial showing that the study cannot work as configured, before any trial of
    this run (session) reported: one failed because the study's metric was never logged,
    because it returned without reporting (no ``HPOCallback``, no ``lit_hpo.report``), or
    because ``lit_hpo.report`` refused its arguments; or the ``SAME_ERROR``-th trial to
    fail with the very same error (a missing dataset, an import error in the model...).
    Every worker then stops starting trials (rather than fail trial after trial for the
    whole budget); the ``-m`` run exits non-zero with that trial's message. Trials of
    earlier runs do not count, so a rerun after the fix goes on with the study."""
    start = state.sessions[-1][0] if state.sessions else 0.0
    # This run's trials are the ones claimed since its session began: a suffix of the
    # trials, found by bisection; every claim asks, so the usual answer (a trial of this
    # run has reported) costs O(log n), not a scan of the study.
    first = bisect.bisect_left(state.trials, start, key=lambda trial: trial.started)
    if any(trial.reports for trial in itertools.islice(state.trials, first, None)):
        return None
    this_run = state.trials[first:]  # none of them reported: few, in a study that fails
    flagged = next((t for t in this_run if t.reason in MISCONFIGURED), None)
    if flagged is not None:
        return flagged
    failed = [t for t in this_run if t.status == Status.FAILED and t.reason == "error"]
    if len(failed) >= SAME_ERROR and len({error_line(t) for t in failed[:SAME_ERROR]}) == 1:
        return failed[SAME_ERROR - 1]
    return None


def error_line(trial: Trial, limit: int = 400) -> str:
    """A failed trial's exception on one line: the lines after its traceback's last
    frame, joined (Hydra's ``InstantiationException`` says what failed on one line, the
    cause on the next and ``full_key: model`` on the last), at most ``limit``
    characters, each character a terminal would act on (an escape sequence in a journal
    line) shown as ``?``."""
    lines = (trial.error or "").strip().splitlines()
    frames = [n for n, line in enumerate(lines) if line[:1].isspace()]
    tail = lines[frames[-1] + 1 :] if frames and frames[-1] + 1 < len(lines) else lines[-1:]
    text = " ".join(line.strip() for line in tail)
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return "".join(c if c.isprintable() else "?" for c in text)


def may_start_trial(state: StudyState, now: float, resuming: bool = False) -> bool:
    """Whether a free worker may take work: a new trial (within ``max_trials``), or with
    ``resuming`` a pending one (resuming does not start a trial, so only time counts);
    never in a :func:`misconfigured` study."""
    if misconfigured(state) is not None:
        return False
    limit = state.budget.get("max_trials")
    if not resuming and limit is not None and len(state.trials) >= limit:
        return False
    return not time_exhausted(state, now)


def decide(
    scheduler: Scheduler,
    state: StudyState,
    trial_id: int,
    epoch: int,
    value: float,
    now: float,
) -> Decision:
    """The decision for one report, in order of precedence:

    1. a trial that already ended (its worker was declared dead) stops: ``ended``;
    2. a NaN or infinite value stops the trial (training diverged): ``nonfinite`` —
       the value is recorded but never enters a rung;
    3. a spent wall-clock budget stops every trial at its next report: ``budget``;
    4. otherwise the scheduler decides.
    """
    if state.trials[trial_id].status != Status.RUNNING:
        return Decision(Action.STOP, "ended")
    if not math.isfinite(value):
        return Decision(Action.STOP, "nonfinite")
    if time_exhausted(state, now):
        return Decision(Action.STOP, "budget")
    return scheduler.decide(state, trial_id, epoch, value)
