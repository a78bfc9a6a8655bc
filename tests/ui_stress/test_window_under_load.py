"""Two defects of the main window that the 10,000-message catch-up brought out, both fixed; their regression tests.

* The chat list counted some unread messages twice (fixed in dff6c4f; this is its regression test).
  ``MainWindow.load_chats`` (run on a contact or identity change) read the stored unread counts, which already
  include messages whose ``MessageReceived`` events the window has not handled yet; handling them added them
  again. In the stress run, 1,000 messages showed 1,093 unread, 10,000 showed 10,091.
* An open conversation laid out every row again for each new message:
  ``ChatView.add_message`` called ``scrollToBottom()`` per message, which forced the list view's pending layout
  and so the delegate's ``sizeHint`` (font metrics, word wrap, ``strftime``) for all rows: catching up N
  messages cost ~N²/2 layouts (503,570 ``sizeHint`` calls for 1,000 messages). With the sender's chat open
  (``receiver.py --open-chat``): 1,000 messages at 64/s with a 1.1 s max loop gap, 2,000 at 28/s with 2.3 s;
  10,000 would have taken ~25 min. Fixed in 57a8794 and da6ff8a (10,000 now at ~1,200 msg/s, 74 ms max gap).
  Measured remedies (monkeypatched, 2,000 / 10,000 messages): scrolling once per
  loop turn (a coalescing ``QTimer.singleShot(0, ...)``) gives 430 / 989 msg/s and a 102 / 96 ms max gap;
  adding a ``sizeHint`` cache per (message id, width) gives 792 / 913 msg/s and 69 / 121 ms; the cache alone
  110 msg/s and 650 ms at 2,000. This test counts ``sizeHint`` calls while 400 messages arrive: the
  coalesced scroll makes it 1,018 (passes), the cache alone 21,511 (fails), before the fix 81,410.

Both run on the in-memory relay with a real Messenger and the real window; nothing here is timed.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest

from engine.keyring import KeyCustody, ScryptParams
from engine.messenger import ChatMessage, ContactChanged, DeliveryState, Direction, MessageReceived, Messenger
from engine.transport.memory import MemoryNetwork
from tests.ui.conftest import qloop, run_in  # noqa: F401  (qloop is a fixture)

CUSTODY = KeyCustody(scrypt=ScryptParams(n=2**10, r=8, p=1), environ={})


async def _pair_of_contacts(tmp: Path, net: MemoryNetwork) -> tuple[Messenger, Messenger]:
    made = []
    for name in ("receiver", "sender"):
        made.append(await Messenger.create(tmp / name, display_name=f"Stress {name}", device_name=name,
                                           passphrase="pw", custody=CUSTODY, transport=net.transport(name)))
    receiver, sender = made
    receiver.add_contact(sender.contact_code(), "sender")
    sender.add_contact(receiver.contact_code(), "receiver")
    return receiver, sender


def test_chat_list_counts_each_unread_message_once_when_it_reloads_mid_catch_up(
        tmp_path: Path, qloop: asyncio.AbstractEventLoop) -> None:  # noqa: F811
    from app.gui import create_main_window

    async def main() -> tuple[int, int]:
        net = MemoryNetwork()
        receiver, sender = await _pair_of_contacts(tmp_path, net)
        await sender.start()
        for i in range(5):
            await sender.send_text("receiver", f"while you were away {i}")
        await sender.sync(timeout=10)
        stream = receiver.events()
        window = create_main_window(receiver)  # as AppController.open_profile: built before start
        try:
            await receiver.start()
            await receiver.wait_synced(timeout=10)  # committed; the window has handled none of it yet
            key = sender.identity.chat_key
            # a contact update is handled first (the sender's, or any other), then the queued catch-up
            window.handle_event(ContactChanged(key, True, True, False))
            with contextlib.suppress(TimeoutError):
                while True:
                    window.handle_event(await stream.get(0.5))
            row = window.chats.get(key)
            assert row is not None
            return row.unread, receiver.unread_counts()[key]
        finally:
            stream.close()
            window.close()
            await sender.close()
            await receiver.close()

    shown, stored = run_in(qloop, main(), 60)
    assert stored == 5
    assert shown == stored, f"the chat list shows {shown} unread, the store has {stored}"


def test_open_conversation_lays_out_each_new_message_a_bounded_number_of_times(
        tmp_path: Path, qloop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from app.gui import create_main_window
    from ui.chat_view import MessageDelegate

    calls = [0]
    original = MessageDelegate.sizeHint

    def counted(self: MessageDelegate, *args: Any) -> Any:
        calls[0] += 1
        return original(self, *args)

    monkeypatch.setattr(MessageDelegate, "sizeHint", counted)
    count = 400

    async def main() -> int:
        net = MemoryNetwork()
        receiver, sender = await _pair_of_contacts(tmp_path, net)
        window = create_main_window(receiver)
        try:
            window.show()
            key, me = sender.identity.chat_key, receiver.identity.chat_key
            window.open_chat(key)
            await asyncio.sleep(0.05)  # first layout and paint of the empty conversation
            before = calls[0]
            base_ms = 1_790_000_000_000
            for i in range(count):
                window.handle_event(MessageReceived(ChatMessage(
                    f"0x{i:064x}", key, key, "sender", "installation", me, Direction.IN, f"message {i}",
                    base_ms + i, i + 1, True, DeliveryState.DELIVERED)))
            await asyncio.sleep(0.05)  # and the paint after the burst
            assert len(window.chat_view.model.messages) == count
            return calls[0] - before
        finally:
            window.close()
            await sender.close()
            await receiver.close()

    layouts = run_in(qloop, main(), 120)
    print(f"\nconversation: {layouts} sizeHint calls for {count} new messages")
    assert layouts <= 20 * count, f"{layouts} row layouts for {count} new messages"
