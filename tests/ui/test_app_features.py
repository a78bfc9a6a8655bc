"""The app's features one by one, on real Messengers and encrypted stores over the in-memory network (fast), and
onboarding through the composition root on a relay on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QRect, QSettings, Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.gui import AppController, create_main_window
from engine.codes import qr_png
from engine.contacts import ContactNameTaken
from engine.messenger import Messenger
from engine.transport.memory import MemoryNetwork
from engine.transport.relay import RelayProcess
from tests.integration.nats_fixtures import CUSTODY, PASSPHRASE, requires_nats, until
from tests.ui.conftest import run_in
from ui.dialogs import AddContactDialog, IdentityWarningDialog, QuickSwitcher
from ui.main_window import MainWindow
from ui.scanning import RegionPicker, scan_qimage


class Pair:
    """Alice and Bob with real stores on one in-memory network, each with a followed main window."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.net = MemoryNetwork()
        self.messengers: list[Messenger] = []
        self.windows: list[MainWindow] = []

    async def open(self, name: str) -> tuple[Messenger, MainWindow]:
        m = await Messenger.create(self.tmp / name, display_name=f"{name}{name}", device_name=name,
                                   passphrase="pw", custody=CUSTODY, transport=self.net.transport(name))
        stream = m.events()
        await m.start()
        window = create_main_window(m, settings=QSettings(str(self.tmp / f"{name}.ini"),
                                                          QSettings.Format.IniFormat))
        window.follow(stream)
        window.show()
        self.messengers.append(m)
        self.windows.append(window)
        return m, window

    async def close(self) -> None:
        for w in self.windows:
            w.close()
        for m in self.messengers:
            await m.close()


    def run(self, loop: asyncio.AbstractEventLoop, main: Coroutine[Any, Any, None], timeout: float = 30) -> None:
        """Run ``main`` and close everything in the same run of the loop (between two runs pytest-qt processes
        Qt events, which would step the Messengers' tasks outside a running loop)."""

        async def go() -> None:
            try:
                await main
            finally:
                await self.close()

        run_in(loop, go(), timeout)


@pytest.fixture
def pair(tmp_path: Path) -> Pair:
    return Pair(tmp_path)


async def added(window: MainWindow, text: str, name: str) -> AddContactDialog:
    dialog = window.new_chat()
    dialog.paste.setText(text)
    dialog.name.setText(name)
    dialog.add()
    return dialog


def send(window: MainWindow, text: str) -> None:
    window.chat_view.composer.setPlainText(text)
    QTest.keyClick(window.chat_view.composer, Qt.Key.Key_Return)


def test_a_chat_key_alone_shows_the_forward_secrecy_banner_until_the_peer_answers(
        pair: Pair, qloop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        alice, _ = await pair.open("alice")
        bob, wb = await pair.open("bob")
        assert (await added(wb, alice.identity.chat_key, "alice")).added is not None
        assert not wb.chat_view.banner.isVisible()
        composer = wb.chat_view.composer
        composer.setPlainText("two")
        composer.moveCursor(composer.textCursor().MoveOperation.End)
        QTest.keyClick(composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)  # a new line, not sent
        assert composer.toPlainText() == "two\n" and wb.chat_view.model.rowCount() == 0
        composer.clear()
        send(wb, "first, by chat key only")
        await until(lambda: len(wb.chat_view.model.messages) == 1, 5, "Bob's message shown")
        first = wb.chat_view.model.messages[0]
        assert not first.forward_secret
        assert "not forward secret" in wb.chat_view.delegate._footer(first)
        assert wb.chat_view.banner.isVisible() and "until alice answers" in wb.chat_view.banner.text()
        await until(lambda: bool(alice.contact_requests()) or bool(alice.messages(bob.identity.chat_key)), 5,
                    "Bob's message on Alice")
        await alice.send_text(bob.identity.chat_key, "answer")
        await until(lambda: "answer" in [m.text for m in wb.chat_view.model.messages], 5, "Alice's answer")
        assert not wb.chat_view.banner.isVisible()
        assert all(m.forward_secret for m in wb.chat_view.model.messages if m.text == "answer")

    pair.run(qloop, main(), 30)


def test_a_code_for_a_verified_name_with_another_key_is_refused_loudly(
        pair: Pair, qloop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        alice, _ = await pair.open("alice")
        carol, _ = await pair.open("carol")
        _, wb = await pair.open("bob")
        await added(wb, alice.contact_code(), "alice")
        wb.messenger.verify_contact("alice")
        wb.load_chats()
        dialog = await added(wb, carol.contact_code(), "Alice")
        assert dialog.added is None and "another chat key" in dialog.status.text()
        assert len(wb.open_dialogs) == 1 and wb.open_dialogs[0].isModal()
        assert isinstance(wb.open_dialogs[0], IdentityWarningDialog)
        assert [c.chat_key for c in wb.messenger.contacts()] == [alice.identity.chat_key]
        wb.open_dialogs[0].accept()
        assert wb.open_dialogs == []
        taken = await added(wb, carol.contact_code(), "alice")  # unverified clash: the engine's one-line error
        assert taken.added is None
        dialog = AddContactDialog(wb.messenger, wb.warn_identity, wb)
        dialog.paste.setText("zQ3-not-a-code")
        assert not dialog.add_button.isEnabled() and dialog.status.text() and "\n" not in dialog.status.text()
        wb.messenger.verify_contact("alice", False)
        wb.load_chats()
        other = await added(wb, carol.contact_code(), "alice")
        assert other.status.text() == str(ContactNameTaken(f"another contact is already called {'alice'!r}"))
        camera = AddContactDialog(wb.messenger, wb.warn_identity, wb)
        camera.from_camera()  # no camera (or no QtMultimedia) in CI: one line, not a traceback
        assert camera.status.text() and "\n" not in camera.status.text() and "Traceback" not in camera.status.text()

    pair.run(qloop, main(), 30)


def test_shortcuts_search_paging_read_markers_and_notifications(
        pair: Pair, qloop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    async def main() -> None:
        alice, wa = await pair.open("alice")
        bob, wb = await pair.open("bob")
        await added(wa, bob.contact_code(), "bob")
        await added(wb, alice.contact_code(), "alice")
        wb.show_page(wb.identity_page)
        wb.settings_page.previews.setChecked(False)
        for i in range(130):
            await alice.send_text("bob", f"message {i}" + (" needle" if i in (3, 120) else ""))
        await until(lambda: wb.chats.total_unread() == 130, 10,
                    "130 unread on Bob")
        assert bob.unread_count("alice") == 130
        assert wb.notifications[0] == ("alice", "New message")  # previews off: no text

        def summed() -> int:
            return sum(int(body.split()[0]) for _, body in wb.notifications[1:])

        await until(lambda: summed() == 129, 10, "the rest of the burst summed up")
        assert all(title == "alice" and body.endswith(" new messages") for title, body in wb.notifications[1:])
        assert len(wb.notifications) < 10  # held while the burst lasts, not one per message

        wb.activateWindow()  # window shortcuts need the active window
        await until(wb.isActiveWindow, 5, "Bob's window active")
        QTest.keyClick(wb.filter, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
        switcher = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QuickSwitcher) and w.isVisible())
        QTest.keyClicks(switcher.field, "ali")
        QTest.keyClick(switcher.field, Qt.Key.Key_Return)
        assert wb.current_chat == alice.identity.chat_key
        assert len(wb.chat_view.model.messages) == 100  # one page
        wb.chat_view.list.verticalScrollBar().setValue(0)  # scrolled to the top: the older page comes
        assert len(wb.chat_view.model.messages) == 130
        await until(lambda: bob.unread_count("alice") == 0, 5, "the read marker stored")
        assert wb.chats.total_unread() == 0

        QTest.keyClick(wb.chat_view, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
        assert wb.chat_view.search_bar.isVisible()
        QTest.keyClicks(wb.chat_view.search_field, "needle")
        assert wb.chat_view.search_count.text() == "1 of 2" and wb.chat_view.model.highlight == "needle"

        QTest.keyClick(wb, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
        assert any(isinstance(w, AddContactDialog) and w.isVisible() for w in wb.findChildren(AddContactDialog))

        wb.resize(980, 700)  # within the offscreen screen: restoreGeometry keeps a window on its screen
        wb.save_geometry()
        again = create_main_window(bob, settings=QSettings(str(tmp_path / "bob.ini"), QSettings.Format.IniFormat))
        again.show()
        assert again.size() == wb.size() and wb.height() == 700
        again.close()

    pair.run(qloop, main(), 60)


def test_settings_requests_devices_and_backup(pair: Pair, qloop: asyncio.AbstractEventLoop, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOTTOVOCE_DATA_DIR", str(tmp_path / "data"))

    async def main() -> None:
        alice, wa = await pair.open("alice")
        bob, wb = await pair.open("bob")
        alice.add_contact(bob.contact_code(), "bob")
        await alice.send_contact_request("bob", "hello, it's alice")
        await until(wb.requests_button.isVisible, 5, "the request shown on Bob")
        wb.show_page(wb.requests_page)
        labels = wb.requests_page.findChildren(type(wb.message_label))
        assert any("hello, it's alice" in label.text() for label in labels)
        wb.requests_page._act(alice.identity.chat_key, True)
        assert [r.chat_key for r in wb.chats.rows] == [alice.identity.chat_key]
        assert not wb.requests_button.isVisible()

        wb.messenger.verify_contact(alice.identity.chat_key)
        backup = tmp_path / "contacts.json"
        assert wb.settings_page.export_contacts(backup)
        data = json.loads(backup.read_text())
        assert data["contacts"] == [{"name": "alicealice", "chat_key": alice.identity.chat_key,
                                     "display_name": "alicealice", "verified": True}]

        wb.settings_page.relays.setText("nats://10.0.0.1:4222, nats://10.0.0.2:4222")
        wb.settings_page.save_relays()
        config = json.loads((tmp_path / "data" / "config.json").read_text())
        assert config["transport"] == "nats://10.0.0.1:4222,nats://10.0.0.2:4222"
        from app import config as cli_config

        assert cli_config.transport_url(None) == config["transport"]
        wb.settings_page.relays.setText("10.0.0.1")
        wb.settings_page.save_relays()
        assert wb.message_label.text().startswith("cannot save the relays: not a relay URL")

        wb.show_page(wb.devices_page)
        assert wb.devices_page.table.rowCount() == 1
        wb.devices_page.show_pairing_code()
        scanned = await scan_qimage(QImage.fromData(wb.devices_page.qr.png))
        assert scanned.is_pairing
        wa.devices_page.pair(scanned)  # another account's pairing code: refused in one line
        assert "another account" in wa.message_label.text()
        wb.devices_page.unpair_selected()
        assert wb.message_label.text() == "select an installation first"

    pair.run(qloop, main(), 30)


def test_a_screen_region_is_cut_from_the_grab_and_decoded(qloop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    async def main() -> None:
        import coincurve

        from engine.identity import chat_key_text

        key = chat_key_text(coincurve.PrivateKey().public_key.format(compressed=True))
        qr = QImage.fromData(qr_png(key))  # a bare chat key as QR
        screen = QImage(1200, 800, QImage.Format.Format_RGB32)
        screen.fill(0x336699)
        from PySide6.QtGui import QPainter

        painter = QPainter(screen)
        painter.drawImage(700, 300, qr)
        painter.end()
        picker = RegionPicker(QPixmap.fromImage(screen))
        got: list[QImage] = []
        picker.picked.connect(got.append)
        picker.select(QRect(690, 290, qr.width() + 20, qr.height() + 20))
        assert len(got) == 1
        code = await scan_qimage(got[0])
        assert code.text == key and not code.is_pairing
        cancelled: list[bool] = []
        again = RegionPicker(QPixmap.fromImage(screen))
        again.cancelled.connect(lambda: cancelled.append(True))
        again.select(QRect(0, 0, 3, 3))  # a click, not a rectangle
        assert cancelled == [True]

    run_in(qloop, main(), 20)


@requires_nats
def test_onboarding_create_then_confirm_words_then_the_main_window(
        tmp_path: Path, nats_relay: RelayProcess, qloop: asyncio.AbstractEventLoop) -> None:
    controllers: list[AppController] = []

    async def main() -> None:
        controller = AppController(tmp_path / "new", nats_relay.url, custody=CUSTODY)
        controllers.append(controller)
        window: Any = controller.first_window()
        assert window is not None
        window.show()
        window.create_button.click()
        window.name.setText("no")  # too short: one line, nothing created
        window.custody.passphrase.setChecked(True)
        window.custody.field.setText(PASSPHRASE)
        await window.do_create()
        assert window.status.text() and "\n" not in window.status.text() and not controller.profile_exists
        window.name.setText("carol")
        await window.do_create()
        words = window.phrase.split()
        assert len(words) == 12 and window.stack.currentWidget() is window.phrase_page
        window.ask_words()
        for field in window.confirm_fields:
            field.setText("wrong")
        window.confirm()
        assert "does not match" in window.status.text()
        for field, i in zip(window.confirm_fields, window.asked, strict=True):
            field.setText(words[i])
        window.confirm()
        assert window.phrase == ""  # not kept once confirmed
        await until(lambda: controller.main_window is not None and controller.main_window.isVisible(), 10,
                    "the main window after onboarding")
        assert controller.messenger is not None and controller.messenger.identity.display_name == "carol"
        from engine.keyring import key_mode

        assert key_mode(tmp_path / "new") == "passphrase"

        recover = AppController(tmp_path / "again", nats_relay.url, custody=CUSTODY)
        controllers.append(recover)
        second: Any = recover.first_window()
        second.recover_phrase.setPlainText("not twelve words")
        second.recover_name.setText("carol")
        second.recover_custody.passphrase.setChecked(True)
        second.recover_custody.field.setText(PASSPHRASE)
        await second.do_recover()
        assert second.status.text() and not recover.profile_exists
        second.recover_phrase.setPlainText(" ".join(words))
        await second.do_recover()
        await until(lambda: recover.main_window is not None, 10, "the recovered installation's window")
        assert recover.messenger is not None
        assert recover.messenger.identity.chat_key == controller.messenger.identity.chat_key

    async def go() -> None:
        try:
            await main()
        finally:
            for c in controllers:
                await c.close()

    run_in(qloop, go(), 80)
