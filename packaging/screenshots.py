"""Screenshots of the main screens for the README, from the real app with real content.

Runs two real profiles (alice and bob, passphrase-protected, in a temporary folder) on a nats-server of its own
on 127.0.0.1, lets them add each other by QR image, verify and chat, and saves ``QWidget.grab()`` images of
onboarding, the chat list with a chat, my QR code, verification and devices into ``docs/screenshots/``::

    QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/screenshots.py     # or under xvfb-run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SIZE = (1120, 740)


async def _until(condition: object, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():  # type: ignore[operator]
        if loop.time() > end:
            raise SystemExit("screenshots: the two profiles did not get each other's messages in time")
        await asyncio.sleep(0.05)


def _type(window: object, text: str) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    composer = window.chat_view.composer  # type: ignore[attr-defined]
    composer.setPlainText(text)  # QTest types ASCII only
    QTest.keyClick(composer, Qt.Key.Key_Return)


async def shoot(out: Path, work: Path, dark: bool) -> list[Path]:
    from PySide6.QtWidgets import QApplication, QWidget

    from app.gui import AppController
    from engine.keyring import KeyCustody, ScryptParams
    from engine.transport.relay import LOOPBACK, RelayConfig, RelayProcess, free_port
    from ui import theme
    from ui.onboarding import OnboardingWindow

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    theme.apply(app, dark=dark)
    suffix = "-dark" if dark else ""
    saved: list[Path] = []

    async def save(widget: QWidget, name: str) -> None:
        await asyncio.sleep(0.2)  # let the loop lay out and paint (processEvents would re-enter the loop)
        path = out / f"{name}{suffix}.png"
        widget.grab().save(str(path))
        saved.append(path)

    async def nothing(*_args: object) -> str:
        return ""

    onboarding = OnboardingWindow(nothing, nothing)  # type: ignore[arg-type]
    onboarding.resize(*SIZE)
    onboarding.show()
    await save(onboarding, "onboarding")
    onboarding.close()

    relay = RelayProcess(RelayConfig(store_dir=work / "relay", host=LOOPBACK, port=free_port(), server_name="shots"),
                         work)
    relay.start()
    custody = KeyCustody(scrypt=ScryptParams(n=2**10, r=8, p=1), environ={})
    alice = AppController(work / "alice", relay.url, custody=custody, passphrase="screenshots")
    bob = AppController(work / "bob", relay.url, custody=custody, passphrase="screenshots")
    try:
        await alice.create_profile("Alice Martin", "screenshots")
        await bob.create_profile("Bob Okafor", "screenshots")
        wa, wb = alice.main_window, bob.main_window
        assert wa is not None and wb is not None and alice.messenger and bob.messenger
        for w in (wa, wb):
            w.resize(*SIZE)
            w.show()
        for adder, shown, name in ((wb, wa, "Alice"), (wa, wb, "Bob")):
            png = work / f"{name}.png"
            shown.identity_page.save_png(png)
            dialog = adder.new_chat()
            await dialog.load_file(str(png))
            dialog.name.setText(name)
            dialog.add()
        alice_key, bob_key = alice.messenger.identity.chat_key, bob.messenger.identity.chat_key
        bob.messenger.verify_contact("Alice")
        wb.load_chats()
        conversation = [(wb, "Hi Alice! Got your QR code from the meetup 👋"),
                        (wa, "Hey Bob, great to see you here."),
                        (wa, "Did you compare our emoji hashes? Mine ends with the rocket."),
                        (wb, "Yes, they match on both screens. Marked you as verified ✔"),
                        (wb, "Shall we move the Thursday planning over here?\nNo more e-mail threads."),
                        (wa, "Deal. I'll bring the draft on Thursday.")]
        for window, text in conversation:
            other = wa if window is wb else wb
            window.open_chat(bob_key if window is wa else alice_key)
            before = len(other.messenger.messages(alice_key if other is wb else bob_key))
            _type(window, text)
            await _until(lambda o=other, b=before: len(o.messenger.messages(
                alice_key if o is wb else bob_key)) > b)
        await alice.messenger.sync(10)
        await bob.messenger.sync(10)
        wb.show_page(wb.identity_page)
        _type(wa, "See you then!")
        await _until(lambda: wb.chats.total_unread() > 0)
        wb.open_chat(alice_key)
        wa.open_chat(bob_key)
        await asyncio.sleep(0.3)
        wa.report("")
        await save(wa, "chats")
        wa.show_page(wa.identity_page)
        await save(wa, "my-qr")
        verify = wb.verify(alice_key)
        assert verify is not None
        verify.adjustSize()
        await save(verify, "verification")
        verify.accept()
        wa.show_page(wa.devices_page)
        wa.devices_page.show_pairing_code()
        await save(wa, "devices")
    finally:
        await alice.close()
        await bob.close()
        relay.stop()
    return saved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--dark", action="store_true", help="also the dark theme (files named *-dark.png)")
    args = parser.parse_args()
    import qasync  # type: ignore[import-untyped]
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)
    args.out.mkdir(parents=True, exist_ok=True)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    saved: list[Path] = []
    with loop:
        for dark in (False, True) if args.dark else (False,):
            with tempfile.TemporaryDirectory(prefix="sottovoce-shots-") as work:
                saved += loop.run_until_complete(shoot(args.out, Path(work), dark))
    for path in saved:
        print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
