"""The desktop app's composition root: a Messenger and the Qt UI on one qasync loop.

API (fixed: packaging and the stress test drive the app through it)

``run_gui(args) -> int``
    What ``sottovoce [--profile DIR] [--transport URL] gui [--smoke]`` runs. The profile and relay are resolved
    as for every other verb (:mod:`app.config`). ``--smoke`` prints ``window_ms=N`` (from process start) once
    the first window is shown and painted, and exits 0.

``AppController(profile_dir, transport_url=None, *, custody=None, passphrase=None, relay_dir=None)``
    ``await controller.open_profile(passphrase=None) -> MainWindow``: open the existing profile, open an event
    stream, start the Messenger (connect, catch up, go live, in the background) and build
    :attr:`AppController.main_window` (shown by the caller). ``await controller.create_profile(name,
    passphrase, recovery_phrase=None) -> str`` makes a new profile (returns the phrase to show) and then does
    what ``open_profile`` does. ``controller.messenger`` is the Messenger; ``await controller.close()`` ends all.

``create_main_window(messenger, *, settings=None) -> MainWindow``
    The real main window for an opened, started Messenger (no event stream attached: call
    ``window.follow(messenger.events())`` or feed ``window.handle_event(event)`` yourself).

The UI never blocks the Qt thread: Messenger calls are awaited as tasks on the qasync loop and QR decoding runs
in a worker thread (:mod:`ui.scanning`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

_IMPORTED_AT = time.monotonic()

if TYPE_CHECKING:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QWidget

    from engine.keyring import KeyCustody
    from engine.messenger import Messenger
    from ui.main_window import MainWindow

PROFILE_FILE = "profile.json"
"""What marks an existing profile folder (engine.keyring.PROFILE_FILE; not imported, to open the first window
without loading the engine)."""
UI_SETTINGS_FILE = "ui.ini"


def elapsed_ms() -> int:
    """Milliseconds since this process started (Linux: its start time in ``/proc/self/stat``), else since this
    module was imported."""
    try:
        stat = Path("/proc/self/stat").read_text()
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])
        since_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
        return round((since_boot - start_ticks / os.sysconf("SC_CLK_TCK")) * 1000)
    except (OSError, ValueError, IndexError, AttributeError):
        return round((time.monotonic() - _IMPORTED_AT) * 1000)


def ui_settings(profile_dir: Path) -> QSettings:
    """Per-profile UI state (window geometry, notification previews) in ``<profile>/ui.ini``."""
    from PySide6.QtCore import QSettings

    return QSettings(str(profile_dir / UI_SETTINGS_FILE), QSettings.Format.IniFormat)


def save_relays(url: str) -> None:
    """Write the relay address(es) into the ``config.json`` the CLI reads (:mod:`app.config`); empty: none."""
    from engine.messenger import default_data_dir

    path = default_data_dir() / "config.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    urls = [u.strip() for u in url.split(",") if u.strip()]
    for u in urls:
        if "://" not in u:
            raise ValueError(f"not a relay URL: {u!r} (nats://host:port)")
    if urls:
        data["transport"] = ",".join(urls)
    else:
        data.pop("transport", None)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def create_main_window(messenger: Messenger, *, settings: QSettings | None = None,
                       profile_dir: Path | None = None) -> MainWindow:
    """The main window of an opened (and normally started) Messenger."""
    from ui.main_window import MainWindow

    mode = "keyring"
    if profile_dir is not None:
        from engine.keyring import key_mode

        try:
            mode = key_mode(profile_dir)
        except Exception:  # an unreadable profile.json was already reported when opening
            mode = "keyring"
    return MainWindow(messenger, settings=settings, key_mode=mode, save_relays=save_relays)


class AppController:
    """Owns the profile, the Messenger and the windows of one app run."""

    def __init__(self, profile_dir: Path, transport_url: str | None = None, *, custody: KeyCustody | None = None,
                 passphrase: str | None = None, relay_dir: Path | None = None) -> None:
        self.profile_dir = Path(profile_dir)
        self.transport_url = transport_url
        self.custody = custody
        self.passphrase = passphrase
        self.relay_dir = relay_dir
        self.messenger: Messenger | None = None
        self.main_window: MainWindow | None = None
        self.onboarding: QWidget | None = None
        self.finished = asyncio.Event()

    @property
    def profile_exists(self) -> bool:
        return (self.profile_dir / PROFILE_FILE).exists()

    def first_window(self) -> QWidget | None:
        """The onboarding window for a new profile; None when the profile exists (open it)."""
        if self.profile_exists:
            return None
        from ui.onboarding import OnboardingWindow

        window = OnboardingWindow(self._create_for_onboarding, self._recover_for_onboarding)
        window.done.connect(self._onboarded)
        self.onboarding = window
        return window

    async def _create_for_onboarding(self, name: str, passphrase: str | None) -> str:
        return await self.create_profile(name, passphrase, start=False)

    async def _recover_for_onboarding(self, phrase: str, name: str, passphrase: str | None) -> None:
        await self.create_profile(name, passphrase, recovery_phrase=phrase, start=False)

    def _onboarded(self) -> None:
        from ui.tasks import background

        background(self._after_onboarding())

    async def _after_onboarding(self) -> None:
        window = await self.open_profile()
        window.show()
        if self.onboarding is not None:
            self.onboarding.close()
            self.onboarding = None

    async def create_profile(self, display_name: str, passphrase: str | None = None, *,
                             recovery_phrase: str | None = None, start: bool = True) -> str:
        """Make the profile (a new account, or a recovered one); with ``start``, open it as :meth:`open_profile`.
        Returns the recovery phrase to show once ("" for a recovered account)."""
        from engine.messenger import Messenger

        self.passphrase = passphrase
        kwargs: dict[str, Any] = {"custody": self.custody} if self.custody is not None else {}
        messenger = await Messenger.create(self.profile_dir, display_name=display_name, passphrase=passphrase,
                                           recovery_phrase=recovery_phrase, transport_url=self.transport_url,
                                           relay_dir=self.relay_dir, **kwargs)
        phrase = messenger.recovery_phrase if recovery_phrase is None else ""
        self.messenger = messenger
        if start:
            await self.open_profile(passphrase)
        return phrase or ""

    async def open_profile(self, passphrase: str | None = None) -> MainWindow:
        """Open (if not yet), start and build :attr:`main_window` (not shown)."""
        from engine.messenger import Messenger

        if self.messenger is None:
            kwargs: dict[str, Any] = {"custody": self.custody} if self.custody is not None else {}
            self.messenger = await Messenger.open(self.profile_dir, passphrase=passphrase or self.passphrase,
                                                  transport_url=self.transport_url, relay_dir=self.relay_dir,
                                                  **kwargs)
        messenger = self.messenger
        stream = messenger.events()  # before start: the window sees the catch-up
        window = create_main_window(messenger, settings=ui_settings(self.profile_dir), profile_dir=self.profile_dir)
        window.follow(stream)
        self.main_window = window
        await messenger.start()
        return window

    async def close(self) -> None:
        if self.main_window is not None:
            self.main_window.close()
        if self.messenger is not None:
            await self.messenger.close()
            self.messenger = None
        self.finished.set()


def _resolve(future: asyncio.Future[Any], value: Any = None) -> None:
    if not future.done():
        future.set_result(value)


async def _first_paint(window: QWidget) -> None:
    """Return once ``window`` has been shown and painted."""
    from PySide6.QtCore import QEvent, QObject

    loop = asyncio.get_running_loop()
    painted: asyncio.Future[None] = loop.create_future()

    class Watcher(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint and not painted.done():
                loop.call_soon(_resolve, painted)
            return False

    watcher = Watcher()
    window.installEventFilter(watcher)
    window.show()
    await painted
    window.removeEventFilter(watcher)


async def _ask_passphrase(profile_dir: Path) -> str | None:
    from PySide6.QtWidgets import QInputDialog, QLineEdit

    dialog = QInputDialog()
    dialog.setWindowTitle("Unlock Sottovoce")
    dialog.setLabelText(f"Passphrase of the profile in {profile_dir}:")
    dialog.setTextEchoMode(QLineEdit.EchoMode.Password)
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    dialog.finished.connect(lambda r: _resolve(done, r))
    dialog.open()
    result = await done
    return dialog.textValue() if result and dialog.textValue() else None


async def _show_error(text: str) -> None:
    """A one-line error in a message box, awaited without a nested event loop (``exec`` would re-enter qasync)."""
    from PySide6.QtWidgets import QMessageBox

    box = QMessageBox(QMessageBox.Icon.Critical, "Sottovoce", text)
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    box.finished.connect(lambda r: _resolve(done, r))
    box.open()
    await done


async def _run(controller: AppController, smoke: bool) -> int:
    from PySide6.QtWidgets import QApplication

    from engine.errors import SottovoceError

    app = QApplication.instance()
    assert app is not None
    window = controller.first_window()
    try:
        if window is None:
            passphrase = controller.passphrase
            while True:
                try:
                    window = await controller.open_profile(passphrase)
                    break
                except SottovoceError as exc:
                    if type(exc).__name__ not in ("PassphraseRequired", "WrongPassphrase"):
                        raise
                    passphrase = await _ask_passphrase(controller.profile_dir)
                    if passphrase is None:
                        return 1
        await _first_paint(window)
        if smoke:
            print(f"window_ms={elapsed_ms()}", flush=True)
            return 0
        quit_event = asyncio.Event()
        app.lastWindowClosed.connect(quit_event.set)  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C or a session logout: close cleanly, no traceback
            signal.signal(sig, lambda _signum, _frame: loop.call_soon_threadsafe(quit_event.set))
        await quit_event.wait()
        return 0
    except SottovoceError as exc:
        print(f"sottovoce: {exc}", file=sys.stderr)
        if not smoke:
            await _show_error(str(exc))
        return 1
    finally:
        await controller.close()


def run_gui(args: argparse.Namespace) -> int:
    """``sottovoce gui``: the desktop app on the profile and relay the CLI would use."""
    import qasync  # type: ignore[import-untyped]
    from PySide6.QtWidgets import QApplication

    from app import config
    from ui import theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Sottovoce")
    app.setOrganizationName("Sottovoce")
    app.setDesktopFileName("io.github.sottovoce.Sottovoce")
    app.setWindowIcon(theme.app_icon())
    theme.apply(app)
    app.setQuitOnLastWindowClosed(False)  # _run ends on lastWindowClosed after closing the Messenger
    app.styleHints().colorSchemeChanged.connect(lambda _scheme: theme.apply(app))  # follow the desktop
    controller = AppController(config.profile_dir(args.profile), config.transport_url(args.transport))
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    try:
        with loop:
            code: int = loop.run_until_complete(_run(controller, bool(getattr(args, "smoke", False))))
            return code
    finally:
        asyncio.set_event_loop(None)
