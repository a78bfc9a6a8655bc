"""``sottovoce bench``: benchmarks that print figures beside floors measured in the same run."""

from __future__ import annotations

import argparse
import json


def _bench_ratchet(args: argparse.Namespace) -> int:
    from engine.bench.ratchet import run

    figures = run(messages=args.messages, repeat=args.repeat)
    for line in figures.report_lines():
        print(line)
    if args.json:
        print(json.dumps(figures.as_dict()))
    return 0


def add_bench_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser("bench", help="measure performance against same-run floors")
    kinds = bench.add_subparsers(dest="bench", metavar="WHAT", required=True)
    ratchet = kinds.add_parser("ratchet", help="Double Ratchet encrypt+decrypt cost per message")
    ratchet.add_argument("--json", action="store_true", help="end with one JSON line of all figures")
    ratchet.add_argument("--messages", type=int, default=2000, help="messages per scenario and round")
    ratchet.add_argument("--repeat", type=int, default=5, help="rounds; the best round counts")
    ratchet.set_defaults(handler=_bench_ratchet)
