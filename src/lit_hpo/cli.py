"""The ``lit-hpo`` command: inspect a study directory (``hydra.sweep.dir``)."""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lit_hpo.results import Study, load_study


def _status(args: argparse.Namespace) -> int:
    from lit_hpo.progress import worker_lines

    study = load_study(args.directory, args.journal)
    while True:
        text = f"{study.status_table()}\n{study.best_line()}"
        if study.state.running():  # who runs what now, and whether a worker went silent
            text += "".join(f"\n{line}" for line in worker_lines(study.state, time.time()))
        if not args.watch:
            print(text)
            return 0
        print("\033[2J\033[H" + text if sys.stdout.isatty() else text + "\n", flush=True)
        time.sleep(args.interval)
        study.refresh()


def _plot(args: argparse.Namespace) -> int:
    from lit_hpo.plots import save_figures

    study = load_study(args.directory, args.journal)
    for path in save_figures(study, args.out):
        print(path)
    return 0


def best_overrides(study: Study) -> list[str]:
    """The best trial's configuration as Hydra overrides for ``python train.py``."""
    from lit_hpo.compose import format_override

    best = study.best
    if best is None:
        raise LookupError(f"no trial in {study.directory} has reported a finite value yet")
    return [format_override(key, value) for key, value in best.config.items()]


def _best(args: argparse.Namespace) -> int:
    study = load_study(args.directory, args.journal)
    overrides = best_overrides(study)
    best = study.best
    assert best is not None
    print(f"# {study.metric} {best.value:.6g} (trial {best.trial_id}, epoch {best.epoch})")
    print(" ".join(overrides))
    return 0


def _export(args: argparse.Namespace) -> int:
    study = load_study(args.directory, args.journal)
    from lit_hpo.safefiles import real_directory, write_bytes

    out = real_directory(Path(args.out) if args.out else study.directory)
    if args.format == "jsonl":  # the study as a journal file, e.g. off a server
        rows = _journal_rows(args)
        print(write_bytes(out / "journal.jsonl", b"".join(body + b"\n" for _, body in rows)))
        return 0
    for name, frame in (("results", study.results), ("trials", study.trials)):
        path = out / f"{name}.{args.format}"
        buffer = io.BytesIO()
        if args.format == "csv":
            frame.to_csv(buffer, index=False)
        else:
            try:
                frame.to_parquet(buffer, index=False)
            except ImportError as err:
                raise ImportError("parquet export needs pyarrow: pip install pyarrow") from err
        print(write_bytes(path, buffer.getvalue()))  # never through a planted link
    return 0


def _journal_path(directory: str) -> Path:
    path = Path(directory) / "journal.jsonl"
    if not path.is_file():
        raise FileNotFoundError(
            f"{directory} holds no journal.jsonl; pass the study directory (hydra.sweep.dir)"
        )
    return path


def _journal_rows(args: argparse.Namespace) -> list[tuple[int, bytes]]:
    """The study's records, numbered, from its file or its server."""
    from lit_hpo.journal import Journal
    from lit_hpo.pg_journal import PgJournal, check_url

    if args.journal is None:
        data = Journal(_journal_path(args.directory)).complete_lines()
        return list(enumerate(data.splitlines(), 1))
    url = check_url(args.journal)
    assert url is not None
    return PgJournal(url, str(Path(args.directory).absolute())).rows()


def _verify(args: argparse.Namespace) -> int:
    from lit_hpo.repair import scan, scan_lines

    if args.journal is not None:
        rows = _journal_rows(args)
        problems = scan_lines([(seq, seq, body) for seq, body in rows])
        for problem in problems:
            print(f"record {problem.line}: {problem.what}")
        gaps = [seq for index, (seq, _) in enumerate(rows, 1) if seq != index]
        if gaps:
            print(f"the sequence numbers are not contiguous from record {gaps[0]} on")
        if problems or gaps:
            return 1
        print(f"{args.journal} (study {Path(args.directory).absolute()}): {len(rows)} records, ok")
        return 0
    path = _journal_path(args.directory)
    problems, torn = scan(path)
    for problem in problems:
        print(f"{path}:{problem.line}: byte offset {problem.offset}: {problem.what}")
    if torn:
        print(f"{path}: ends in a torn line (a writer died mid-append); the next append "
              "repairs it")  # fmt: skip
    if problems:
        print(f"{len(problems)} bad lines; `lit-hpo repair {args.directory}` moves them to "
              f"{path.name}.quarantine")  # fmt: skip
        return 1
    print(f"{path}: ok")
    return 0


def _refuse_if_running(path: Path, force: bool) -> None:
    import socket
    import time

    from lit_hpo.repair import activity, still_running

    why = still_running(activity(path, socket.gethostname(), time.time()))
    if why and not force:
        raise RuntimeError(f"{why}; or pass --force if they belong to something else")


def _repair(args: argparse.Namespace) -> int:
    from lit_hpo.repair import repair

    path = _journal_path(args.directory)
    _refuse_if_running(path, args.force)
    done = repair(path)
    if done is None:
        print(f"{path}: every line replays; nothing to repair, nothing changed")
        return 0
    backup, quarantine, moved = done
    print(f"moved {moved} lines to {quarantine}; the original is kept as {backup}")
    return 0


def _unlock(args: argparse.Namespace) -> int:
    from filelock import StrictSoftFileLock

    path = _journal_path(args.directory)
    _refuse_if_running(path, args.force)
    lock = StrictSoftFileLock(str(path) + ".lock")
    claims = list(lock.claims)
    for claim in claims:
        lock.force_break(claim.name)
        print(
            f"removed lock claim {claim.name} ({claim.state}, pid {claim.pid} on {claim.hostname})"
        )
    if not claims:
        print("no lock claims to remove")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lit-hpo",
        description="Inspect a lit_hpo study: the directory of a `python train.py -m hpo=...` "
        "run (its hydra.sweep.dir, holding journal.jsonl).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, help_text: str, run: Any, server: bool = True
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("directory", help="the study directory (hydra.sweep.dir)")
        if server:
            where = "the study's hpo.journal, when it is on a PostgreSQL server"
            sub.add_argument("--journal", metavar="URL", help=where)
        sub.set_defaults(run=run, journal=None)
        return sub

    status = command("status", "print the tuning status table (also while the study runs)", _status)
    status.add_argument("--watch", action="store_true", help="refresh until interrupted")
    status.add_argument("--interval", type=float, default=5.0, help="seconds between refreshes")
    plot = command("plot", "write the study's figures as PNG files", _plot)
    plot.add_argument("--out", help="directory for the PNGs (default: the study directory)")
    command("best", "print the best configuration as Hydra overrides for train.py", _best)
    export = command("export", "write results and trials tables", _export)
    export.add_argument("--format", choices=("csv", "parquet", "jsonl"), default="csv",
                        help="jsonl: the study's journal, as a journal.jsonl")  # fmt: skip
    export.add_argument("--out", help="output directory (default: the study directory)")
    command("verify", "check that every journal line can be replayed (exit 1 if not)", _verify)
    fix = command("repair", "move unreadable journal lines to journal.jsonl.quarantine", _repair,
                  server=False)  # fmt: skip
    fix.add_argument("--force", action="store_true", help="even if study processes seem alive")
    unlock = command(
        "unlock",
        "remove stale hpo.lock=strict_soft lock claims (after a killed holder)",
        _unlock,
        server=False,
    )
    unlock.add_argument("--force", action="store_true", help="even if study processes seem alive")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except (FileNotFoundError, LookupError, ImportError, RuntimeError, ValueError, OSError) as err:
        print(f"lit-hpo {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
