"""The ``lit-hpo`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _status(args: argparse.Namespace) -> int:
    from lit_hpo.results import load_study

    study = load_study(args.directory)
    print(study.status_table())
    print(study.best_line())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lit-hpo", description="Inspect lit_hpo studies (the directory of a -m run)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser(
        "status", help="print the tuning status table (works while the study runs)"
    )
    status.add_argument("directory", help="the study directory (hydra.sweep.dir)")
    status.set_defaults(run=_status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except FileNotFoundError as err:
        print(f"lit-hpo: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
