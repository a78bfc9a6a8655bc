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


def _bench_store(args: argparse.Namespace) -> int:
    from engine.bench.store import run

    figures = run(sessions=args.sessions, messages=args.messages, timed_messages=args.timed_messages,
                  repeat=args.repeat)
    for line in figures.report_lines():
        print(line)
    if args.json:
        print(json.dumps(figures.as_dict()))
    return 0


def _bench_engine(args: argparse.Namespace) -> int:
    import sys

    from engine.bench.engine import run

    def progress(step: str) -> None:
        print(f"bench engine: {step}", file=sys.stderr, flush=True)

    figures = run(messages=args.messages, repeat=args.repeat, progress=progress, two_processes=args.two_processes)
    for line in figures.report_lines():
        print(line)
    if args.json:
        print(json.dumps(figures.as_dict()))
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_bench_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser("bench", help="measure performance against same-run floors")
    kinds = bench.add_subparsers(dest="bench", metavar="WHAT", required=True)
    ratchet = kinds.add_parser("ratchet", help="Double Ratchet encrypt+decrypt cost per message")
    ratchet.add_argument("--json", action="store_true", help="end with one JSON line of all figures")
    ratchet.add_argument("--messages", type=int, default=2000, help="messages per scenario and round")
    ratchet.add_argument("--repeat", type=int, default=5, help="rounds; the best round counts")
    ratchet.set_defaults(handler=_bench_ratchet)

    store = kinds.add_parser("store", help="sessions loaded per second and database size per 10,000 messages")
    store.add_argument("--json", action="store_true", help="end with one JSON line of all figures")
    store.add_argument("--sessions", type=_positive, default=2000, help="sessions in the store to load")
    store.add_argument("--messages", type=_positive, default=10_000, help="messages of the conversation")
    store.add_argument("--timed-messages", type=_positive, default=1000,
                       help="last messages timed with fsync on (the ones before run with it off)")
    store.add_argument("--repeat", type=_positive, default=5, help="load rounds; the best round counts")
    store.set_defaults(handler=_bench_store)

    engine = kinds.add_parser("engine", help="messages/s and latency through the whole engine on a local relay")
    engine.add_argument("--json", action="store_true", help="end with one JSON line of all figures")
    engine.add_argument("--messages", type=_positive, default=2000, help="messages per profile and round")
    engine.add_argument("--repeat", type=_positive, default=3, help="rounds; the best round counts")
    engine.add_argument("--two-processes", action="store_true",
                        help="then one way again with Bob in a process of his own (an extra figure)")
    engine.set_defaults(handler=_bench_engine)
