"""The main window's other pages: my identity, contact requests, devices (pairing) and settings."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QGuiApplication, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.errors import SottovoceError
from engine.messenger import Messenger

from . import theme
from .scanning import CameraScanner, ScannedCode, clipboard_image, scan_image, scan_qimage
from .tasks import background
from .widgets import Avatar, QrView, emoji_label, error_line, muted

Report = Callable[[str], None]


def _page(title: str) -> tuple[QWidget, QVBoxLayout]:
    page = QWidget()
    page.setObjectName("Page")
    layout = QVBoxLayout(page)
    layout.setContentsMargins(32, 24, 32, 24)
    layout.setSpacing(12)
    heading = QLabel(title)
    heading.setObjectName("Title")
    layout.addWidget(heading)
    return page, layout


class IdentityPage(QWidget):
    """My QR (contact code) large, copy and save it; chat key, emoji hash, colour ring, alias."""

    def __init__(self, messenger: Messenger, report: Report) -> None:
        super().__init__()
        self.setObjectName("Page")
        self.messenger = messenger
        self._report = report
        me = messenger.identity
        layout = QHBoxLayout(self)
        layout.setContentsMargins(32, 40, 32, 24)
        layout.setSpacing(40)
        layout.addStretch(1)
        left = QVBoxLayout()
        self.qr = QrView(320)
        left.addWidget(self.qr, 0, Qt.AlignmentFlag.AlignTop)
        buttons = QHBoxLayout()
        copy = QPushButton("Copy code")
        copy.setIcon(theme.icon("clipboard"))
        copy.clicked.connect(self.copy_code)
        save = QPushButton("Save PNG…")
        save.clicked.connect(self._choose_png)
        buttons.addWidget(copy)
        buttons.addWidget(save)
        left.addLayout(buttons)
        left.addStretch(1)
        layout.addLayout(left)
        right = QVBoxLayout()
        right.setSpacing(10)
        avatar = Avatar(96)
        avatar.set_identity(me.display_name or me.alias, me.color_hash, me.chat_key)
        name = QLabel(me.display_name or me.alias)
        name.setObjectName("Title")
        right.addWidget(avatar)
        right.addWidget(name)
        right.addWidget(muted(f"Alias: {me.alias}"))
        half = (len(me.chat_key) + 1) // 2
        key = QLabel(f"{me.chat_key[:half]}\n{me.chat_key[half:]}")
        key.setWordWrap(True)
        key.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        key.setStyleSheet("font-family: monospace;")
        right.addWidget(QLabel("<b>Chat key</b>"))
        right.addWidget(key)
        right.addWidget(QLabel("<b>Emoji hash</b>"))
        right.addWidget(emoji_label(me.emoji_hash))
        right.addWidget(muted("Show this QR code to a contact, or send them the code. Compare the emoji hash "
                              "with them to verify each other."))
        right.addWidget(muted(f"This device: {me.device_name or 'unnamed'} · {me.installation_id[:8]}"))
        right.addStretch(1)
        layout.addLayout(right)
        layout.addStretch(1)

    def showEvent(self, event: QShowEvent) -> None:
        if not self.qr.png:  # drawn when first shown: two QR codes cost ~0.2 s the main window need not wait for
            self.refresh()
        super().showEvent(event)

    def refresh(self) -> None:
        try:
            self.qr.set_png(self.messenger.contact_code_qr(), self.messenger.contact_code())
        except SottovoceError as exc:
            self._report(error_line(exc))

    def copy_code(self) -> None:
        QGuiApplication.clipboard().setText(self.messenger.contact_code())
        self._report("contact code copied")

    def _choose_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save my QR code", "sottovoce-contact.png", "PNG (*.png)")
        if path:
            self.save_png(Path(path))

    def save_png(self, path: Path) -> bool:
        try:
            path.write_bytes(self.qr.png or self.messenger.contact_code_qr())
        except OSError as exc:
            self._report(f"cannot write {path}: {exc.strerror or exc}")
            return False
        self._report(f"saved {path.name}")
        return True


class RequestsPage(QWidget):
    """Pending contact requests with accept / decline."""

    def __init__(self, messenger: Messenger, report: Report, changed: Callable[[], None]) -> None:
        super().__init__()
        self.setObjectName("Page")
        self.messenger = messenger
        self._report = report
        self._changed = changed
        page, self.layout_ = _page("Contact requests")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(page)
        self.rows = QVBoxLayout()
        self.layout_.addLayout(self.rows)
        self.layout_.addStretch(1)
        self.refresh()

    def refresh(self) -> None:
        while self.rows.count():
            item = self.rows.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        requests = self.messenger.contact_requests()
        if not requests:
            self.rows.addWidget(muted("No pending requests."))
        for r in requests:
            row = QWidget()
            rl = QHBoxLayout(row)
            who = r.contact_name or r.display_name or "(no name)"
            rl.addWidget(QLabel(f"<b>{who}</b> · {r.chat_key[:14]}…<br>{r.text}"), 1)
            accept = QPushButton("Accept")
            accept.setProperty("primary", True)
            decline = QPushButton("Decline")
            accept.clicked.connect(lambda _=False, k=r.chat_key: self._act(k, True))
            decline.clicked.connect(lambda _=False, k=r.chat_key: self._act(k, False))
            rl.addWidget(decline)
            rl.addWidget(accept)
            self.rows.addWidget(row)

    def _act(self, chat_key: str, accept: bool) -> None:
        try:
            if accept:
                contact = self.messenger.accept_contact_request(chat_key)
                self._report(f"accepted {contact.name}")
            else:
                self.messenger.decline_contact_request(chat_key)
                self._report("declined (they are not told)")
        except SottovoceError as exc:
            self._report(error_line(exc))
        self.refresh()
        self._changed()


class DevicesPage(QWidget):
    """My installations; pairing by QR both ways, with progress while keys and contacts sync; unpair."""

    def __init__(self, messenger: Messenger, report: Report) -> None:
        super().__init__()
        self.setObjectName("Page")
        self.messenger = messenger
        self._report = report
        self.camera: CameraScanner | None = None
        page, layout = _page("Devices")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(page)
        layout.addWidget(muted("Your account's installations. A paired installation gets a copy of every message "
                               "you send and receive."))
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Name", "Installation", "Last seen", "State"])
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(False)
        layout.addWidget(self.table)
        actions = QHBoxLayout()
        unpair = QPushButton("Unpair selected")
        unpair.clicked.connect(self.unpair_selected)
        actions.addWidget(unpair)
        actions.addStretch(1)
        layout.addLayout(actions)

        pair = QHBoxLayout()
        pair.setSpacing(24)
        mine = QVBoxLayout()
        mine.addWidget(QLabel("<b>Pair this installation</b>"))
        mine.addWidget(muted("Scan this code on an installation that already has your account."))
        self.qr = QrView(220)
        self.qr.hide()
        show = QPushButton("Show my pairing code")
        show.setIcon(theme.icon("qr"))
        show.clicked.connect(self.show_pairing_code)
        mine.addWidget(show)
        mine.addWidget(self.qr)
        mine.addStretch(1)
        other = QVBoxLayout()
        other.addWidget(QLabel("<b>Pair another installation</b>"))
        other.addWidget(muted("Read the pairing code shown by your new installation."))
        sources = QHBoxLayout()
        for label, icon, slot in (("Image file…", "qr", self._choose_file),
                                  ("Clipboard", "clipboard", self._clipboard),
                                  ("Camera", "camera", self._camera)):
            button = QPushButton(label)
            button.setIcon(theme.icon(icon))
            button.clicked.connect(slot)
            sources.addWidget(button)
        sources.addStretch(1)
        other.addLayout(sources)
        self.camera_box = QVBoxLayout()
        other.addLayout(self.camera_box)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.hide()
        self.progress_label = muted("")
        other.addWidget(self.progress)
        other.addWidget(self.progress_label)
        other.addStretch(1)
        pair.addLayout(mine)
        pair.addLayout(other, 1)
        layout.addLayout(pair)
        layout.addStretch(1)
        self.refresh()

    def refresh(self) -> None:
        devices = self.messenger.devices()
        self.table.setRowCount(len(devices))
        for i, d in enumerate(devices):
            seen = "now" if d.current else (datetime.fromtimestamp(d.last_seen_ns / 1e9).strftime("%d %b %H:%M")
                                            if d.last_seen_ns else "never")
            state = "this device" if d.current else ("paired" if d.enabled else "not paired")
            for j, text in enumerate((d.name or "unnamed", d.installation_id[:13], seen, state)):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, d.installation_id)
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        self.table.setFixedHeight(self.table.horizontalHeader().height() + 32 * max(1, len(devices)) + 6)
        for column in range(3):
            self.table.setColumnWidth(column, self.table.columnWidth(column) + 32)

    def show_pairing_code(self) -> None:
        try:
            code = self.messenger.pairing_code()
            self.qr.set_png(self.messenger.pairing_code_qr(), code)
        except SottovoceError as exc:
            self._report(error_line(exc))
            return
        self.qr.show()

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Pairing code image", "", "Images (*.png *.jpg *.jpeg *.bmp)")
        if path:
            background(self.pair_from_file(Path(path)))

    async def pair_from_file(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            self._report(f"cannot read {path}: {exc.strerror or exc}")
            return
        try:
            self.pair(await scan_image(data))
        except SottovoceError as exc:
            self._report(error_line(exc))

    def _clipboard(self) -> None:
        image = clipboard_image()
        if image is None:
            self._report("the clipboard holds no image")
            return

        async def go() -> None:
            try:
                self.pair(await scan_qimage(image))
            except SottovoceError as exc:
                self._report(error_line(exc))

        background(go())

    def _camera(self) -> None:
        if self.camera is None:
            self.camera = CameraScanner()
            self.camera.found.connect(self.pair)
            self.camera.failed.connect(self._report)
            self.camera_box.addWidget(self.camera)
        self.camera.start()

    def pair(self, code: ScannedCode) -> None:
        if not code.is_pairing:
            self._report("this is a contact code: add it with New chat")
            return
        try:
            device = self.messenger.pair_device(code.text)
        except SottovoceError as exc:
            self._report(error_line(exc))
            return
        self.progress.show()
        self.progress_label.setText(f"Paired {device.name or device.installation_id[:8]}: sending keys and "
                                    "contacts…")
        self.refresh()

    def unpair_selected(self) -> None:
        row = self.table.currentRow()
        item = self.table.item(row, 0) if row >= 0 else None
        if item is None:
            self._report("select an installation first")
            return
        installation = item.data(Qt.ItemDataRole.UserRole)
        if installation == self.messenger.identity.installation_id:
            self._report("this is this installation")
            return
        try:
            self.messenger.unpair_device(installation)
        except SottovoceError as exc:
            self._report(error_line(exc))
            return
        self.refresh()

    def sync_progress(self, processed: int, caught_up: bool) -> None:
        if self.progress.isVisible():
            self.progress_label.setText(f"Syncing… {processed} envelopes" if not caught_up else "Synced.")
            if caught_up:
                self.progress.hide()

    def paired(self, name: str) -> None:
        self.progress_label.setText(f"Paired with {name or 'a new installation'}; keys and contacts synced.")
        self.progress.hide()
        self.refresh()


class SettingsPage(QWidget):
    """Relay addresses (config.json, as the CLI), key custody, notification previews, contacts backup."""

    def __init__(self, messenger: Messenger, settings: QSettings, report: Report, key_mode: str,
                 save_relays: Callable[[str], None]) -> None:
        super().__init__()
        self.setObjectName("Page")
        self.messenger = messenger
        self.settings = settings
        self._report = report
        self._save_relays = save_relays
        page, layout = _page("Settings")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(page)
        form = QFormLayout()
        form.setSpacing(10)
        self.relays = QLineEdit(messenger.transport_url or "")
        self.relays.setPlaceholderText("nats://relay.example.org:4222, … (empty: the embedded relay)")
        save = QPushButton("Save")
        save.clicked.connect(self.save_relays)
        row = QHBoxLayout()
        row.addWidget(self.relays, 1)
        row.addWidget(save)
        form.addRow("Relays", row)
        form.addRow("", muted("Saved in the same config.json as the command line; used from the next start."))
        custody = ("the system keyring holds the database key" if key_mode == "keyring"
                   else "a passphrase protects the database")
        form.addRow("Database key", QLabel(custody))
        self.previews = QCheckBox("Show message text in notifications")
        self.previews.setChecked(self.show_previews)
        self.previews.toggled.connect(lambda on: self.settings.setValue("notifications/previews", on))
        form.addRow("Notifications", self.previews)
        export = QPushButton("Export contacts…")
        export.clicked.connect(self._choose_export)
        form.addRow("Backup", export)
        form.addRow("", muted("Names, chat keys and verified marks as JSON. No keys and no messages."))
        layout.addLayout(form)
        layout.addStretch(1)

    @property
    def show_previews(self) -> bool:
        value = self.settings.value("notifications/previews", True)
        return value in (True, "true", "1", 1)

    def save_relays(self) -> None:
        try:
            self._save_relays(self.relays.text().strip())
        except (OSError, ValueError) as exc:
            self._report(f"cannot save the relays: {exc}")
            return
        self._report("relays saved: used from the next start")

    def _choose_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export contacts", "sottovoce-contacts.json", "JSON (*.json)")
        if path:
            self.export_contacts(Path(path))

    def export_contacts(self, path: Path) -> bool:
        contacts = [{"name": c.name, "chat_key": c.chat_key, "display_name": c.display_name or None,
                     "verified": c.verified} for c in self.messenger.contacts()]
        try:
            path.write_text(json.dumps({"sottovoce_contacts": 1, "contacts": contacts}, indent=2,
                                       ensure_ascii=False), encoding="utf-8")
        except OSError as exc:
            self._report(f"cannot write {path}: {exc.strerror or exc}")
            return False
        self._report(f"exported {len(contacts)} contacts")
        return True
