"""The receiving app of the stress test, run as its own process (an abort must fail the test, not kill pytest)::

    python -m tests.ui_stress.receiver --profile DIR --url nats://127.0.0.1:PORT --count 10000 --sender zQ3...

It runs what ``sottovoce gui`` runs: a themed QApplication with the qasync loop, the real Messenger on its
SQLCipher store and the relay, opened by the app's ``AppController.open_profile`` (the real main window,
following the Messenger's events), shown (offscreen under ``QT_QPA_PLATFORM=offscreen``) with the chat list
on screen. Then it catches up ``--count`` messages that arrived while it was away and measures how responsive
the Qt thread stayed: a precise 1 ms ``QTimer`` records ``time.perf_counter()`` at each turn of the event
loop; the longest interval between two turns is ``max_loop_gap_ms``. It prints
``max_loop_gap_ms=… messages_per_s=… total_s=…`` and, last, one JSON line (``RESULT {...}``) for the test.

Checks made here (a failure exits 1 with ``FAIL <what>``): every message arrived exactly once as an event,
the store holds exactly the expected texts once each, and the window shows them: the chat list's row has the
last one and counts each unread once (with ``--open-chat``, the conversation's model holds each exactly once).
``--standin`` starts the Messenger under a bare QMainWindow instead (the engine alone);
``--profile-out FILE`` writes a cProfile of the catch-up; ``--slow-ms MS`` logs every loop callback slower
than that (qasync's debug mode), which names the coroutine step that blocked.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from engine.messenger import ChatMessage, MessageReceived, Messenger
from tests.integration.nats_fixtures import CUSTODY, PASSPHRASE
from tests.ui_stress.sender import text_of

TICK_MS = 1
"""The gap meter's timer interval: it fires at every loop turn that is at least this far from the last."""


class GapMeter:
    """Longest interval between two turns of the Qt event loop, and how many envelopes were processed in it."""

    def __init__(self, processed: Any) -> None:
        from PySide6.QtCore import Qt, QTimer

        self._processed = processed  # () -> envelopes processed so far by the inbox
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[float] = []
        self.max_gap = 0.0
        self.max_gap_at = 0.0
        self.max_gap_envelopes = 0
        self._last = 0.0
        self._last_processed = 0
        self._started = 0.0

    def start(self) -> None:
        self._started = self._last = time.perf_counter()
        self._last_processed = self._processed()
        self.timer.start()

    def stop(self) -> None:
        self._tick()
        self.timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        processed = self._processed()
        gap = now - self._last
        self.gaps.append(gap)
        if gap > self.max_gap:
            self.max_gap = gap
            self.max_gap_at = self._last - self._started
            self.max_gap_envelopes = processed - self._last_processed
        self._last = now
        self._last_processed = processed

    def over(self, ms: float) -> int:
        return sum(g * 1000 > ms for g in self.gaps)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.gaps)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


async def _open_app(messenger: Messenger, args: argparse.Namespace) -> tuple[Any, Any]:
    """Start ``messenger`` and show a window on it: the app's own (as ``sottovoce gui`` opens a profile; with
    ``--open-chat`` the sender's conversation open), or with ``--standin`` a bare QMainWindow.
    Returns (window, controller)."""
    if args.standin:
        from PySide6.QtWidgets import QLabel, QMainWindow

        await messenger.start()
        window = QMainWindow()
        window.setCentralWidget(QLabel("stand-in window"))
        window.resize(1080, 720)
        window.show()
        return window, None
    from app.gui import AppController

    controller = AppController(args.profile, args.url, custody=CUSTODY, passphrase=PASSPHRASE)
    controller.messenger = messenger  # opened here so that the test's own event stream predates start()
    window = await controller.open_profile()
    window.show()
    if args.open_chat:
        window.open_chat(args.sender)
    return window, controller


def _version(distribution: str) -> str:
    import PySide6

    if distribution == "PySide6":
        return str(PySide6.__version__)
    from importlib.metadata import version

    return version(distribution)


def _fail(what: str) -> None:
    print(f"FAIL {what}", flush=True)
    raise SystemExit(1)


async def _catch_up(args: argparse.Namespace) -> dict[str, Any]:
    messenger = await Messenger.open(args.profile, passphrase=PASSPHRASE, custody=CUSTODY, transport_url=args.url)
    seen: Counter[str] = Counter()
    done = asyncio.Event()
    stream = messenger.events()

    async def count() -> None:
        async for event in stream:
            if isinstance(event, MessageReceived) and event.message.from_key == args.sender:
                seen[event.message.id] += 1
                if len(seen) >= args.count:
                    done.set()

    counter = asyncio.create_task(count())
    profiler = cProfile.Profile() if args.profile_out else None
    controller = None
    try:
        started = time.perf_counter()
        window, controller = await _open_app(messenger, args)
        inbox = messenger._inbox  # the test reads the inbox's counter, nothing else private
        meter = GapMeter(lambda: inbox.processed if inbox is not None else 0)
        meter.start()
        if profiler is not None:
            profiler.enable()
        try:
            await asyncio.wait_for(done.wait(), args.timeout)
        except TimeoutError:
            _fail(f"only {len(seen)} of {args.count} messages arrived within {args.timeout:g} s")
        total = time.perf_counter() - started
        meter.stop()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile_out)
        result: dict[str, Any] = {
            "messages": args.count,
            "total_s": round(total, 3),
            "messages_per_s": round(args.count / total, 1),
            "max_loop_gap_ms": round(meter.max_gap * 1000, 1),
            "max_gap_at_s": round(meter.max_gap_at, 3),
            "max_gap_envelopes": meter.max_gap_envelopes,
            "p99_loop_gap_ms": round(meter.percentile(0.99) * 1000, 1),
            "gaps_over_50ms": meter.over(50),
            "gaps_over_100ms": meter.over(100),
            "loop_turns": len(meter.gaps),
            "window": "stand-in" if args.standin else type(window).__name__,
            "pyside6": _version("PySide6"),
            "qasync": _version("qasync"),
        }
        print(" ".join(f"{k}={result[k]}" for k in ("max_loop_gap_ms", "messages_per_s", "total_s")), flush=True)
        await messenger.wait_synced(timeout=60)
        await asyncio.sleep(0.3)  # a repeat would show up now
        repeated = {m: n for m, n in seen.items() if n > 1}
        if repeated:
            _fail(f"{len(repeated)} messages reported more than once, e.g. {next(iter(repeated.items()))}")
        stored = messenger.messages(args.sender, limit=None)
        texts = Counter(m.text for m in stored)
        expected = {text_of(i) for i in range(args.count)}
        if len(stored) != args.count or set(texts) != expected or max(texts.values()) != 1:
            _fail(f"the store holds {len(stored)} messages, {len(set(texts) & expected)} of the expected texts")
        if {m.id for m in stored} != set(seen):
            _fail("the stored message ids are not the ids reported")
        if controller is not None:
            result.update(_shown(window, args.sender, stored))
        return result
    finally:
        stream.close()
        counter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await counter
        if controller is not None:
            await controller.close()
        await messenger.close()


def _shown(window: Any, sender: str, stored: list[ChatMessage]) -> dict[str, Any]:
    """What the window shows of the sender's messages. The chat list has the sender's row with the last message,
    and every message unread unless the conversation is open; an open conversation shows each exactly once."""
    row = window.chats.get(sender)
    if row is None:
        _fail("the chat list has no row for the sender")
    if row.last_text != stored[-1].text:
        _fail(f"the chat list's last message is {row.last_text!r}, not {stored[-1].text!r}")
    if not window.current_chat and row.unread != len(stored):
        _fail(f"the chat list shows {row.unread} unread for {len(stored)} new messages")
    shown: dict[str, Any] = {"chat_list_unread": row.unread, "conversation_shows": None}
    if window.current_chat:
        if window.current_chat != sender:
            _fail(f"the open conversation is not the sender's ({window.current_chat!r})")
        ids = [m.id for m in window.chat_view.model.messages if m.from_key == sender]
        if len(ids) != len(set(ids)):
            _fail(f"the conversation shows {len(ids) - len(set(ids))} messages twice")
        if set(ids) != {m.id for m in stored}:
            _fail(f"the conversation shows {len(set(ids))} of the {len(stored)} stored messages")
        shown["conversation_shows"] = len(ids)
    return shown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", type=Path, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--sender", required=True, help="the sender's chat key")
    parser.add_argument("--timeout", type=float, default=150.0)
    parser.add_argument("--standin", action="store_true")
    parser.add_argument("--open-chat", action="store_true", help="open the sender's conversation first")
    parser.add_argument("--profile-out", metavar="FILE")
    parser.add_argument("--slow-ms", type=float)
    args = parser.parse_args(argv)

    import qasync
    from PySide6.QtWidgets import QApplication

    app = QApplication(["sottovoce-stress"])
    app.setQuitOnLastWindowClosed(False)  # closing the window at the end must not stop the loop mid-cleanup
    if not args.standin:
        from ui import theme

        theme.apply(app)  # as run_gui does: the stylesheet is part of what each paint costs
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    if args.slow_ms is not None:
        logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(name)s: %(message)s")
        loop.set_debug(True)
        loop.slow_callback_duration = args.slow_ms / 1000
    with loop:
        result = loop.run_until_complete(_catch_up(args))
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
