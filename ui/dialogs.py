"""Dialogs: add a contact (QR from a file, the clipboard, a screen region or a camera; or pasted text), verify a
contact, the blocking identity-change warning, the quick switcher and the passphrase prompt."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.codes import ContactCodeInfo, parse_contact_code, qr_png
from engine.contacts import Contact
from engine.errors import SottovoceError
from engine.identity import color_hash, emoji_hash
from engine.messenger import Messenger

from . import theme
from .scanning import CameraScanner, RegionPicker, ScannedCode, clipboard_image, scan_image, scan_qimage
from .tasks import background
from .widgets import Avatar, QrView, emoji_label, error_line, muted


def _ring(identity: bytes) -> tuple[tuple[int, int], ...]:
    return tuple((u, c) for u, c in color_hash(identity))


class IdentityWarningDialog(QDialog):
    """The loud, modal warning shown when a verified contact's identity may have changed.

    In Sottovoce's protocol the chat key *is* the identity key, so "changed" means: a new installation of a
    verified contact appeared (it recovered its account on a new device, or someone else holds its key), or a
    contact code for a verified contact's name carries another chat key.
    """

    def __init__(self, name: str, detail: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Security warning")
        self.setModal(True)
        self.setMinimumWidth(480)
        layout = QVBoxLayout(self)
        layout.setSpacing(12)
        title = QLabel(f"⚠ The identity of {name}, whom you verified, may have changed")
        title.setObjectName("Danger")
        title.setWordWrap(True)
        title.setStyleSheet("font-size: 14pt;")
        layout.addWidget(title)
        layout.addWidget(muted(detail))
        layout.addWidget(muted(
            "Messages are still end-to-end encrypted, but someone else might be holding this key. Compare the "
            "emoji hash with them again, in person or on a call, before trusting new messages."))
        ok = QPushButton("I understand")
        ok.setProperty("danger", True)
        ok.clicked.connect(self.accept)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(ok)
        layout.addLayout(row)


class AddContactDialog(QDialog):
    """Add a contact from a QR (image file, clipboard, screen region, camera) or a pasted code / chat key."""

    contact_added = Signal(object)

    def __init__(self, messenger: Messenger, warn: Callable[[str, str], object], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.messenger = messenger
        self._warn = warn
        self.code_text = ""
        self.info: ContactCodeInfo | None = None
        self.added: Contact | None = None
        self.camera: CameraScanner | None = None
        self._picker: RegionPicker | None = None
        self.setWindowTitle("New chat")
        self.setMinimumWidth(520)
        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        title = QLabel("Add a contact")
        title.setObjectName("Title")
        layout.addWidget(title)
        layout.addWidget(muted("Scan their QR code, or paste their contact code or chat key (zQ3…)."))
        sources = QHBoxLayout()
        for label, icon, slot in (("Image file…", "qr", self.choose_file),
                                  ("Clipboard", "clipboard", self.from_clipboard),
                                  ("Screen region", "screen-region", self.from_screen),
                                  ("Camera", "camera", self.from_camera)):
            button = QPushButton(label)
            button.setIcon(theme.icon(icon))
            button.clicked.connect(slot)
            sources.addWidget(button)
        layout.addLayout(sources)
        self.camera_box = QVBoxLayout()
        layout.addLayout(self.camera_box)
        self.paste = QLineEdit(placeholderText="Contact code or chat key")
        self.paste.textChanged.connect(self._pasted)
        layout.addWidget(self.paste)
        preview = QHBoxLayout()
        self.avatar = Avatar(48)
        self.avatar.hide()
        self.found_label = QLabel()
        self.found_label.setWordWrap(True)
        preview.addWidget(self.avatar)
        preview.addWidget(self.found_label, 1)
        layout.addLayout(preview)
        self.name = QLineEdit(placeholderText="Your name for this contact")
        layout.addWidget(self.name)
        self.status = QLabel()
        self.status.setObjectName("Danger")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        cancel = QPushButton("Cancel")
        cancel.clicked.connect(self.reject)
        self.add_button = QPushButton("Add contact")
        self.add_button.setProperty("primary", True)
        self.add_button.setEnabled(False)
        self.add_button.clicked.connect(self.add)
        buttons.addWidget(cancel)
        buttons.addWidget(self.add_button)
        layout.addLayout(buttons)

    # sources ---------------------------------------------------------------------------------------------

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "QR code image", "",
                                              "Images (*.png *.jpg *.jpeg *.webp *.bmp *.gif)")
        if path:
            background(self.load_file(path))

    async def load_file(self, path: str) -> None:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            self.status.setText(f"cannot read {path}: {exc.strerror or exc}")
            return
        await self.load_image(data)

    async def load_image(self, data: bytes) -> None:
        self.status.setText("Reading the QR code…")
        try:
            self._found(await scan_image(data))
        except SottovoceError as exc:
            self.status.setText(error_line(exc))

    def from_clipboard(self) -> None:
        image = clipboard_image()
        if image is None:
            text = self._clipboard_text()
            if text:
                self.paste.setText(text)
            else:
                self.status.setText("the clipboard holds no image and no text")
            return
        background(self.load_qimage(image))

    @staticmethod
    def _clipboard_text() -> str:
        from PySide6.QtGui import QGuiApplication

        return QGuiApplication.clipboard().text().strip()

    async def load_qimage(self, image: QImage) -> None:
        try:
            self._found(await scan_qimage(image))
        except SottovoceError as exc:
            self.status.setText(error_line(exc))

    def from_screen(self) -> None:
        self.hide()
        self._picker = RegionPicker()
        self._picker.picked.connect(self._picked)
        self._picker.cancelled.connect(self.show)
        self._picker.showFullScreen()

    def _picked(self, image: QImage) -> None:
        self.show()
        background(self.load_qimage(image))

    def from_camera(self) -> None:
        if self.camera is None:
            self.camera = CameraScanner()
            self.camera.found.connect(self._found)
            self.camera.failed.connect(self.status.setText)
            self.camera_box.addWidget(self.camera)
        self.camera.start()

    def _pasted(self, text: str) -> None:
        text = text.strip()
        if not text:
            return
        import time

        try:
            info = parse_contact_code(text, time.time_ns())
        except SottovoceError as exc:
            self.status.setText(error_line(exc))
            self.add_button.setEnabled(False)
            return
        self._show(text, info)

    def _found(self, code: ScannedCode) -> None:
        if self.camera is not None:
            self.camera.stop()
        if code.is_pairing or not isinstance(code.info, ContactCodeInfo):
            self.status.setText("this is a pairing code: pair it under Devices")
            return
        self._show(code.text, code.info)

    def _show(self, text: str, info: ContactCodeInfo) -> None:
        self.code_text, self.info = text, info
        self.status.setText("")
        shown = info.display_name or "(no display name)"
        fs = "" if info.bundle is not None else (
            "<br><b>Chat key only:</b> your first messages are not forward secret until they answer.")
        self.found_label.setText(f"<b>{shown}</b><br><span style='font-size:16pt'>{''.join(emoji_hash(info.identity))}"
                                 f"</span>{fs}")
        self.avatar.set_identity(shown, _ring(info.identity), info.chat_key)
        self.avatar.show()
        if not self.name.text() and info.display_name:
            self.name.setText(info.display_name)
        self.add_button.setEnabled(True)

    # adding ----------------------------------------------------------------------------------------------

    def add(self) -> None:
        if not self.code_text or self.info is None:
            return
        name = self.name.text().strip() or (self.info.display_name or "")
        try:
            existing = self.messenger.contact(name) if name else None
        except SottovoceError:
            existing = None
        if existing is not None and existing.verified and existing.identity != self.info.identity:
            self._warn(existing.name, f"This contact code for “{existing.name}” carries another chat key "
                       f"({self.info.chat_key[:12]}…) than the one you verified ({existing.chat_key[:12]}…). "
                       "It was not added.")
            self.status.setText("not added: another chat key than the verified one")
            return
        try:
            self.added = self.messenger.add_contact(self.code_text, name)
        except SottovoceError as exc:
            self.status.setText(error_line(exc))
            return
        if self.camera is not None:
            self.camera.stop()
        self.contact_added.emit(self.added)
        self.accept()


class VerifyDialog(QDialog):
    """Side by side: my emoji hash, colour ring and QR, and the contact's; mark as verified."""

    def __init__(self, messenger: Messenger, contact: Contact, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.messenger = messenger
        self.contact = contact
        self.setWindowTitle(f"Verify {contact.name}")
        self.setMinimumSize(620, 720)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(28, 24, 28, 20)
        layout.setSpacing(12)
        title = QLabel(f"Verify {contact.name}")
        title.setObjectName("Title")
        layout.addWidget(title)
        layout.addWidget(muted("Compare both emoji hashes and colour rings with your contact, in person or on a "
                               "call. If they match on both screens, nobody is in the middle."))
        grid = QGridLayout()
        grid.setHorizontalSpacing(32)
        me = messenger.identity
        for col, (heading, name, key, ring, emojis, code) in enumerate((
                ("You", me.display_name or me.alias, me.chat_key, me.color_hash, me.emoji_hash, me.chat_key),
                (contact.name, contact.display_name or contact.name, contact.chat_key, _ring(contact.identity),
                 tuple(emoji_hash(contact.identity)), contact.chat_key))):
            head = QLabel(f"<b>{heading}</b>")
            avatar = Avatar(72)
            avatar.set_identity(name, ring, key)
            qr = QrView(200)
            qr.set_png(qr_png(code, scale=4), code)
            emoji = emoji_label(emojis)
            emoji.setFixedWidth(250)
            emoji.setAlignment(Qt.AlignmentFlag.AlignCenter)
            key_label = muted(f"{key[:16]}…{key[-8:]}")
            key_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            for row, widget in enumerate((head, avatar, emoji, qr, key_label)):
                grid.addWidget(widget, row, col, Qt.AlignmentFlag.AlignHCenter)
        layout.addLayout(grid)
        self.state = QLabel()
        layout.addWidget(self.state)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        self.verify_button = QPushButton()
        self.verify_button.setProperty("primary", True)
        self.verify_button.clicked.connect(self.toggle)
        buttons.addWidget(close)
        buttons.addWidget(self.verify_button)
        layout.addLayout(buttons)
        self._refresh()

    def _refresh(self) -> None:
        verified = self.contact.verified
        self.state.setText("✔ You have verified this contact." if verified else "Not verified yet.")
        self.verify_button.setText("Mark as not verified" if verified else "Mark as verified")

    def toggle(self) -> None:
        try:
            self.contact = self.messenger.verify_contact(self.contact, not self.contact.verified)
        except SottovoceError as exc:
            self.state.setText(error_line(exc))
            return
        self._refresh()


class QuickSwitcher(QDialog):
    """Ctrl+K: type to filter the chats, Enter opens the first match."""

    chosen = Signal(str)

    def __init__(self, chats: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Popup)
        self._chats = chats
        self.setMinimumWidth(420)
        layout = QVBoxLayout(self)
        self.field = QLineEdit(placeholderText="Jump to a chat…")
        self.list = QListWidget()
        layout.addWidget(self.field)
        layout.addWidget(self.list)
        self.field.textChanged.connect(self._filter)
        self.field.returnPressed.connect(self._choose_current)
        self.list.itemActivated.connect(self._choose)
        self._filter("")

    def _filter(self, text: str) -> None:
        self.list.clear()
        wanted = text.casefold()
        for name, key in self._chats:
            if wanted in name.casefold() or wanted in key.casefold():
                item = QListWidgetItem(name)
                item.setData(Qt.ItemDataRole.UserRole, key)
                self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)

    def _choose_current(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self._choose(item)

    def _choose(self, item: QListWidgetItem) -> None:
        self.chosen.emit(item.data(Qt.ItemDataRole.UserRole))
        self.accept()


def ask_passphrase(parent: QWidget | None, profile: str) -> str | None:
    text, ok = QInputDialog.getText(parent, "Unlock Sottovoce", f"Passphrase of the profile in {profile}:",
                                    QLineEdit.EchoMode.Password)
    return text if ok and text else None
