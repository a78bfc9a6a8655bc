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


def _simulate(args: argparse.Namespace) -> int:
    from engine.simulation import parse_seeds, run_seeds, summary

    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as exc:
        print(f"sottovoce: {exc}", file=sys.stderr)
        return 2
    if args.accounts < 2 or args.devices < 1 or args.messages < 0:
        print("sottovoce: a simulation needs --accounts >= 2, --devices >= 1 and --messages >= 0", file=sys.stderr)
        return 2
    results = []
    for result in run_seeds(seeds, accounts=args.accounts, devices=args.devices, messages=args.messages):
        results.append(result)
        if result.failure is not None:
            print(f"FAIL seed {result.seed}: {result.failure}", flush=True)
        elif args.verbose:
            print(f"ok seed {result.seed}: {result.seconds:.2f} s, {result.counts}", flush=True)
    failed = sum(r.failure is not None for r in results)
    print(summary(results))
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _gui(args: argparse.Namespace) -> int:
    from app.gui import run_gui

    return run_gui(args)


def _global_options(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--profile", metavar="DIR", default=default,
                        help="profile folder (default: $SOTTOVOCE_PROFILE, config, else <user data>/default)")
    parser.add_argument("--transport", metavar="URL", default=default,
                        help="relay URL(s), comma-separated (default: $SOTTOVOCE_TRANSPORT, config, else the "
                             "embedded relay)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sottovoce", description="End-to-end encrypted messenger")
    _global_options(parser, None)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, argparse.SUPPRESS)  # also accepted after the verb
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    from app.commands import add_commands

    add_commands(commands, common)

    conformance = commands.add_parser("conformance", help="run status-go vector files against this code")
    conformance.add_argument("files", nargs="+", metavar="FILE")
    conformance.add_argument("-v", "--verbose", action="store_true", help="print a summary per file")
    conformance.set_defaults(handler=_conformance)

    from engine.simulation import DEFAULT_MESSAGES

    simulate = commands.add_parser("simulate", help="seeded network simulations checked against invariants")
    simulate.add_argument("--seeds", default="1..10", metavar="A..B", help="seeds to run (inclusive)")
    simulate.add_argument("--accounts", type=int, default=3, metavar="N", help="accounts per simulation")
    simulate.add_argument("--devices", type=int, default=2, metavar="M", help="installations per account")
    simulate.add_argument("--messages", type=int, default=DEFAULT_MESSAGES, metavar="K", help="messages per seed")
    simulate.add_argument("-v", "--verbose", action="store_true", help="print the figures of every seed")
    simulate.set_defaults(handler=_simulate)

    gui = commands.add_parser("gui", parents=[common], help="the desktop app")
    gui.add_argument("--smoke", action="store_true",
                     help="print window_ms=N once the first window is painted (from process start), then exit")
    gui.set_defaults(handler=_gui)

    from app.bench_cli import add_bench_parser

    add_bench_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one verb. User errors (typed engine errors, bad files) are one line on stderr and exit code 1."""
    from app.commands import CliError
    from app.config import ConfigError
    from engine.errors import SottovoceError

    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except (SottovoceError, CliError, ConfigError) as exc:
        print(f"sottovoce: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
