"""What a run prints when it ends: the status table, utilization, the best line, the
figures; shared by ``python train.py -m`` and :func:`lit_hpo.tune`."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from lit_hpo.journal import JournalCorruptError, JournalWriteError
from lit_hpo.pg_marker import PG_MARKER
from lit_hpo.policy import SAME_ERROR, error_line
from lit_hpo.results import Study, load_study, utilization
from lit_hpo.state import Trial
from lit_hpo.study import JOURNAL_NAME


def summarize(study_dir: Path, journal: str | None = None) -> Study | None:
    """Print the status table, utilization and best line, and write the figures. A
    failure here (a full disk for the figures, say) is reported, and never masks how the
    run itself ended. ``None`` when the journal cannot be replayed (said on stderr), or
    when the run stopped before it created the study (its first write refused: the run
    said why).

    Raises:
        KeyboardInterrupt: a Ctrl-C (the second, often) cut the summary short; it says
            which commands print and draw it later.
    """
    try:
        return _summarize(study_dir, journal)
    except KeyboardInterrupt:
        print(f"lit_hpo: no summary (interrupted); `lit-hpo status {study_dir}` prints it, "
              f"`lit-hpo plot {study_dir}` draws the figures", flush=True)  # fmt: skip
        raise


def _summarize(study_dir: Path, journal: str | None) -> Study | None:
    if not (study_dir / (PG_MARKER if journal else JOURNAL_NAME)).is_file():
        return None
    try:
        study = load_study(study_dir, journal)
    except (JournalCorruptError, JournalWriteError) as error:
        print(f"lit_hpo: no summary: {error}", file=sys.stderr, flush=True)
        return None
    except FileNotFoundError:  # a journal without a header: the study was never created
        return None
    print(study.status_table(), flush=True)
    print(f"worker utilization {utilization(study.state, time.time()):.3f} "
          "(busy trial time / (workers x wall time))", flush=True)  # fmt: skip
    print(study.best_line(), flush=True)
    from lit_hpo.plots import save_figures

    try:
        figures = save_figures(study)
    except OSError as error:
        print(f"lit_hpo: could not write the figures: {error}", file=sys.stderr, flush=True)
    else:
        print(f"figures: {', '.join(str(p) for p in figures)}", flush=True)
    return study


def misconfigured_message(trial: Trial) -> str:
    """Why a :func:`~lit_hpo.policy.misconfigured` study stopped: the trial's last line."""
    if trial.reason == "error":
        return (
            f"the study stopped after trial {trial.trial_id}: the first {SAME_ERROR} trials "
            f"failed with the same error before any reported: {error_line(trial)} (their "
            "tracebacks: workers/worker_*.log); fix it and rerun the same command to go on"
        )
    last = error_line(trial)
    return f"the study stopped after trial {trial.trial_id}, which could not report: {last}"
