"""Seeded, deterministic simulations of accounts and installations over a faulty relay (``sottovoce simulate``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from .simulation import SeedResult, Simulation

DEFAULT_MESSAGES = 250
"""Messages per seed by default: about a second per seed with 3 accounts of 2 installations."""


def parse_seeds(text: str) -> range:
    """``"A..B"`` (inclusive) or a single ``"S"``; ``ValueError`` with a readable message otherwise."""
    first, sep, last = text.partition("..")
    try:
        start = int(first)
        end = int(last) if sep else start
    except ValueError:
        raise ValueError(f"seeds must look like 1..20 or 7, not {text!r}") from None
    if end < start:
        raise ValueError(f"empty seed range {text!r}")
    return range(start, end + 1)


def run_seeds(seeds: Iterable[int], *, accounts: int, devices: int, messages: int) -> Iterator[SeedResult]:
    """One :class:`SeedResult` per seed, in order."""
    for seed in seeds:
        yield Simulation(seed, accounts=accounts, devices=devices, messages=messages).run()


def summary(results: list[SeedResult]) -> str:
    """One line of figures over ``results``: messages, deliveries, faults injected, time per seed."""
    total: Counter[str] = Counter()
    for result in results:
        total.update(result.counts)
    seconds = sum(r.seconds for r in results)
    faults = {
        "dropped": total["relay_dropped"], "duplicated": total["relay_duplicated"],
        "delayed": total["relay_delayed"], "lost in flight": total["relay_lost_in_flight"],
        "crashes": total["crash"] + total["crash_in_commit"] + total["crash_after_publish"],
        "of them mid-commit": total["crash_in_commit"], "mid-publish": total["crash_after_publish"],
        "relay outages": total["relay_outages"], "prekey rotations": total["rotations"],
        "recoveries": total["recoveries"], "pairings": total["pairings"], "unpairings": total["unpairings"],
    }
    fault_text = ", ".join(f"{count} {name}" for name, count in faults.items())
    per_seed = seconds / len(results) if results else 0.0
    return (f"{len(results)} seeds: {total['sent']} messages sent ({total['sent_without_forward_secrecy']} on the "
            f"DH path), {total['shown']} deliveries shown, {total['envelopes']} envelopes; faults: {fault_text}; "
            f"{per_seed:.2f} s per seed")


__all__ = ["DEFAULT_MESSAGES", "SeedResult", "Simulation", "parse_seeds", "run_seeds", "summary"]
