"""The ``sottovoce`` command line: one sub-command per verb, user errors as one line on stderr."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]


def _conformance(args: argparse.Namespace) -> int:
    from engine.conformance import run_file

    passed = failed = 0
    for path in args.files:
        result = run_file(path)
        for case in result.results:
            if not case.ok:
                print(f"FAIL {case.case_id}: {case.reason}")
        if args.verbose:
            print(f"{path}: {result.passed} passed, {result.failed} failed", file=sys.stderr)
        passed += result.passed
        failed += result.failed
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sottovoce", description="End-to-end encrypted messenger")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    conformance = commands.add_parser("conformance", help="run status-go vector files against this code")
    conformance.add_argument("files", nargs="+", metavar="FILE")
    conformance.add_argument("-v", "--verbose", action="store_true", help="print a summary per file")
    conformance.set_defaults(handler=_conformance)

    from app.bench_cli import add_bench_parser

    add_bench_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
