"""The real app, offscreen, on the real engine, SQLCipher store and a nats-server on 127.0.0.1.

Alice and Bob add each other from QR images saved by their identity pages, Bob verifies Alice, they chat both
ways by typing in the composer (Enter sends), Bob goes offline and catches up on reopening, and a third
installation recovered from Alice's phrase pairs by QR and sees the conversation continue; Bob, who verified
Alice, gets the blocking identity warning when that new installation of hers shows up.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.gui import AppController
from engine.messenger import Direction
from engine.transport.relay import RelayProcess
from tests.integration.nats_fixtures import CUSTODY, PASSPHRASE, requires_nats, until
from tests.ui.conftest import run_in
from ui.main_window import MainWindow

pytestmark = [requires_nats, pytest.mark.timeout(150)]


def controller(tmp: Path, name: str, url: str) -> AppController:
    return AppController(tmp / name, url, custody=CUSTODY, passphrase=PASSPHRASE, relay_dir=tmp / "relay-data")


def type_and_send(window: MainWindow, text: str) -> None:
    composer = window.chat_view.composer
    composer.setFocus()
    QTest.keyClicks(composer, text)
    QTest.keyClick(composer, Qt.Key.Key_Return)


async def add_by_qr(adder: MainWindow, shown_by: MainWindow, name: str, png: Path) -> None:
    assert shown_by.identity_page.save_png(png)
    dialog = adder.new_chat()
    await dialog.load_file(str(png))
    assert dialog.add_button.isEnabled(), dialog.status.text()
    dialog.name.setText(name)
    dialog.add()
    assert dialog.added is not None, dialog.status.text()


def texts(window: MainWindow) -> list[str]:
    return [m.text for m in window.chat_view.model.messages]


def test_two_profiles_by_qr_then_offline_catch_up_and_a_third_installation(
        tmp_path: Path, nats_relay: RelayProcess, qloop: asyncio.AbstractEventLoop) -> None:
    opened: list[AppController] = []

    async def main() -> None:
        url = nats_relay.url
        alice, bob = controller(tmp_path, "alice", url), controller(tmp_path, "bob", url)
        opened.extend((alice, bob))
        phrase = await alice.create_profile("alice", PASSPHRASE)
        assert len(phrase.split()) == 12
        await bob.create_profile("bobby", PASSPHRASE)
        wa, wb = alice.main_window, bob.main_window
        assert wa is not None and wb is not None
        wa.show()
        wb.show()
        assert alice.messenger is not None and bob.messenger is not None
        alice_key, bob_key = alice.messenger.identity.chat_key, bob.messenger.identity.chat_key

        await add_by_qr(wb, wa, "alice", tmp_path / "alice.png")
        await add_by_qr(wa, wb, "bob", tmp_path / "bob.png")
        assert [r.name for r in wb.chats.rows] == ["alice"] and wb.current_chat == alice_key

        verify = wb.verify(alice_key)
        assert verify is not None
        assert "".join(alice.messenger.identity.emoji_hash) in {
            w.text() for w in verify.findChildren(type(verify.state))}
        verify.toggle()
        verify.accept()
        assert wb.chats.get(alice_key) is not None and wb.chats.rows[0].verified

        # Bob -> Alice, typed in the composer; Alice (on her QR page) sees it unread, opening it marks it read
        wa.show_page(wa.identity_page)
        type_and_send(wb, "hello alice")
        await until(lambda: (wa.chats.get(bob_key) or wa.chats.rows[0]).last_text == "hello alice", 20,
                    "Bob's message in Alice's chat list")
        assert wa.chats.total_unread() == 1
        await until(lambda: ("bob", "hello alice") in wa.notifications, 5, "the notification with its preview")
        wa.open_chat(bob_key)
        assert texts(wa) == ["hello alice"] and wa.chats.total_unread() == 0
        type_and_send(wa, "hi bob")
        await until(lambda: "hi bob" in texts(wb), 20, "Alice's reply in Bob's open chat")
        await until(lambda: any(m.state.value == "delivered" for m in wb.chat_view.model.messages), 30,
                    "Bob's first message delivered")

        # Bob goes offline; Alice writes; Bob reopens and catches up, the unread count is kept
        await bob.close()
        for i in range(3):
            type_and_send(wa, f"while you were away {i}")
        await until(lambda: sum(m.state.value != "queued" for m in wa.chat_view.model.messages
                                if m.direction == Direction.OUT) == 4, 20, "Alice's messages taken by the relay")
        bob = controller(tmp_path, "bob", url)
        opened.append(bob)
        wb = await bob.open_profile()
        wb.show()
        await until(lambda: (wb.chats.get(alice_key) or wb.chats.rows[0]).unread == 3, 30,
                    f"Bob's catch-up ({wb.chats.rows}, {bob.messenger.unread_counts() if bob.messenger else None})")
        wb.open_chat(alice_key)
        assert texts(wb)[-3:] == [f"while you were away {i}" for i in range(3)]

        # a third installation of Alice's account, recovered from the phrase, pairs by QR
        alice3 = controller(tmp_path, "alice3", url)
        opened.append(alice3)
        await alice3.create_profile("alice", PASSPHRASE, recovery_phrase=phrase)
        w3 = alice3.main_window
        assert w3 is not None
        w3.show()
        w3.devices_page.show_pairing_code()
        pairing_png = tmp_path / "pairing.png"
        pairing_png.write_bytes(w3.devices_page.qr.png)
        wa.show_page(wa.devices_page)
        await wa.devices_page.pair_from_file(pairing_png)
        assert wa.devices_page.progress_label.text().startswith("Paired"), wa.message_label.text()
        await until(lambda: w3.chats.get(bob_key) is not None, 30, "Bob synced to the new installation")
        type_and_send(wb, "welcome to your new laptop")
        await until(lambda: (w3.chats.get(bob_key) or w3.chats.rows[0]).last_text == "welcome to your new laptop",
                    30, "Bob's message on the third installation")
        w3.open_chat(bob_key)
        type_and_send(w3, "typed on the third one")
        await until(lambda: "typed on the third one" in texts(wb), 30, "the third installation's message on Bob")
        await until(lambda: "typed on the third one" in [m.text for m in alice.messenger.messages(bob_key)]
                    if alice.messenger else False, 30, "the sent copy on Alice's first installation")
        copy = next(m for m in alice.messenger.messages(bob_key) if m.text == "typed on the third one")
        assert copy.direction == Direction.OUT_COPY
        await until(lambda: bool(wb.open_dialogs), 20, "Bob warned about a new installation of verified Alice")
        assert wb.open_dialogs[0].isModal()

    async def go() -> None:  # closed in the same loop run (see tests/ui/test_app_features.Pair.run)
        try:
            await main()
        finally:
            for c in opened:
                await c.close()

    run_in(qloop, go(), 140)
