"""The first window of a new profile: create an account (the recovery phrase shown once, three words confirmed)
or recover one from its phrase on this new installation; display name; keyring or passphrase.

Imports only QtWidgets at load time (the engine is imported when the user acts), so it opens fast. The window
asks its owner to do the work through two coroutine callbacks and emits ``done`` when the account is ready.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from .tasks import background

CreateFn = Callable[[str, str | None], Awaitable[str]]
"""(display name, passphrase or None for the keyring) -> the new recovery phrase"""
RecoverFn = Callable[[str, str, str | None], Awaitable[None]]
"""(phrase, display name, passphrase or None)"""
CONFIRM_WORDS = 3


def _muted(text: str) -> QLabel:
    label = QLabel(text)
    label.setProperty("muted", True)
    label.setWordWrap(True)
    return label


def _title(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("Title")
    return label


def _primary(text: str) -> QPushButton:
    button = QPushButton(text)
    button.setProperty("primary", True)
    button.setMinimumHeight(36)
    return button


class Custody(QWidget):
    """Keyring (default) or passphrase."""

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.keyring = QRadioButton("Keep the database key in the system keyring (recommended)")
        self.passphrase = QRadioButton("Protect it with a passphrase I type at each start")
        self.keyring.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.keyring)
        group.addButton(self.passphrase)
        self.field = QLineEdit(placeholderText="Passphrase")
        self.field.setEchoMode(QLineEdit.EchoMode.Password)
        self.field.setEnabled(False)
        self.passphrase.toggled.connect(self.field.setEnabled)
        for w in (self.keyring, self.passphrase, self.field):
            layout.addWidget(w)

    def value(self) -> str | None:
        return self.field.text() if self.passphrase.isChecked() else None


class OnboardingWindow(QWidget):
    """Welcome -> create (name, custody) -> phrase -> confirm words; or welcome -> recover."""

    done = Signal()

    def __init__(self, create: CreateFn, recover: RecoverFn, rng: random.Random | None = None) -> None:
        super().__init__()
        self.setObjectName("Page")
        self.setWindowTitle("Welcome to Sottovoce")
        self.resize(720, 560)
        self._create = create
        self._recover = recover
        self._rng = rng or random.SystemRandom()
        self.phrase = ""
        self.asked: list[int] = []
        self.stack = QStackedWidget()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(64, 40, 64, 40)
        outer.addWidget(self.stack)
        self.status = QLabel()
        self.status.setObjectName("Danger")
        self.status.setWordWrap(True)
        outer.addWidget(self.status)

        welcome = QWidget()
        wl = QVBoxLayout(welcome)
        wl.addStretch(1)
        logo = QLabel()
        logo.setPixmap(_logo(96, self.devicePixelRatioF()))
        wl.addWidget(logo, 0, Qt.AlignmentFlag.AlignHCenter)
        heading = QLabel("Sottovoce")
        heading.setStyleSheet("font-size: 30pt; font-weight: 700;")
        heading.setMinimumHeight(64)
        wl.addWidget(heading, 0, Qt.AlignmentFlag.AlignHCenter)
        pitch = _muted("Private conversations, end-to-end encrypted. No phone number, no e-mail: your "
                       "account is a key that only your devices hold.")
        pitch.setFixedWidth(440)
        pitch.setFixedHeight(64)
        pitch.setAlignment(Qt.AlignmentFlag.AlignCenter)
        wl.addWidget(pitch, 0, Qt.AlignmentFlag.AlignHCenter)
        wl.addSpacing(24)
        self.create_button = _primary("Create a new account")
        self.recover_button = QPushButton("I already have an account (recovery phrase)")
        self.create_button.clicked.connect(lambda: self.stack.setCurrentIndex(1))
        self.recover_button.clicked.connect(lambda: self.stack.setCurrentIndex(4))
        for b in (self.create_button, self.recover_button):
            b.setMinimumWidth(360)
            wl.addWidget(b, 0, Qt.AlignmentFlag.AlignHCenter)
        wl.addStretch(2)
        self.stack.addWidget(welcome)

        self.create_page = QWidget()
        cl = QVBoxLayout(self.create_page)
        cl.addWidget(_title("Create your account"))
        cl.addWidget(_muted("Your display name is what contacts see (5 to 24 letters, digits, spaces, _ or -)."))
        self.name = QLineEdit(placeholderText="Display name")
        cl.addWidget(self.name)
        self.custody = Custody()
        cl.addWidget(self.custody)
        cl.addStretch(1)
        self.create_go = _primary("Create account")
        self.create_go.clicked.connect(lambda: background(self.do_create()))
        cl.addLayout(self._row(self._back(), self.create_go))
        self.stack.addWidget(self.create_page)

        self.phrase_page = QWidget()
        pl = QVBoxLayout(self.phrase_page)
        pl.addWidget(_title("Your recovery phrase"))
        pl.addWidget(_muted("Write these 12 words down, in order, and keep them offline. They are the only way "
                            "to recover your account on a new device. They are shown only once."))
        self.phrase_grid = QGridLayout()
        pl.addLayout(self.phrase_grid)
        pl.addStretch(1)
        written = _primary("I wrote them down")
        written.clicked.connect(self.ask_words)
        pl.addLayout(self._row(written))
        self.stack.addWidget(self.phrase_page)

        self.confirm_page = QWidget()
        fl = QVBoxLayout(self.confirm_page)
        fl.addWidget(_title("Check your phrase"))
        fl.addWidget(_muted("Type the words asked for, to be sure your copy is right."))
        self.confirm_fields: list[QLineEdit] = []
        self.confirm_labels: list[QLabel] = []
        for _ in range(CONFIRM_WORDS):
            label = QLabel()
            field = QLineEdit()
            self.confirm_labels.append(label)
            self.confirm_fields.append(field)
            fl.addWidget(label)
            fl.addWidget(field)
        fl.addStretch(1)
        self.confirm_go = _primary("Confirm")
        self.confirm_go.clicked.connect(self.confirm)
        back = QPushButton("Show the words again")
        back.clicked.connect(lambda: self.stack.setCurrentWidget(self.phrase_page))
        fl.addLayout(self._row(back, self.confirm_go))
        self.stack.addWidget(self.confirm_page)

        self.recover_page = QWidget()
        rl = QVBoxLayout(self.recover_page)
        rl.addWidget(_title("Recover your account"))
        rl.addWidget(_muted("This device becomes a new installation of your account. Pair it with your other "
                            "devices afterwards (Devices) to share contacts and conversations."))
        self.recover_phrase = QPlainTextEdit()
        self.recover_phrase.setPlaceholderText("the 12 words of your recovery phrase")
        self.recover_phrase.setFixedHeight(80)
        self.recover_name = QLineEdit(placeholderText="Display name")
        self.recover_custody = Custody()
        for w in (self.recover_phrase, self.recover_name, self.recover_custody):
            rl.addWidget(w)
        rl.addStretch(1)
        self.recover_go = _primary("Recover")
        self.recover_go.clicked.connect(lambda: background(self.do_recover()))
        rl.addLayout(self._row(self._back(), self.recover_go))
        self.stack.addWidget(self.recover_page)

    def _back(self) -> QPushButton:
        back = QPushButton("Back")
        back.clicked.connect(lambda: self.stack.setCurrentIndex(0))
        return back

    @staticmethod
    def _row(*buttons: QPushButton) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addStretch(1)
        for b in buttons:
            row.addWidget(b)
        return row

    async def do_create(self) -> None:
        self.status.setText("")
        self.create_go.setEnabled(False)
        try:
            self.phrase = await self._create(self.name.text(), self.custody.value())
        except Exception as exc:  # typed engine errors become one line; nothing else is expected here
            self.status.setText(_line(exc))
            return
        finally:
            self.create_go.setEnabled(True)
        self.show_phrase()

    def show_phrase(self) -> None:
        for i, word in enumerate(self.phrase.split()):
            label = QLabel(f"<span style='color:gray'>{i + 1}.</span> <b>{word}</b>")
            label.setObjectName("Phrase")
            self.phrase_grid.addWidget(label, i // 3, i % 3)
        self.stack.setCurrentWidget(self.phrase_page)

    def ask_words(self) -> None:
        self.asked = sorted(self._rng.sample(range(len(self.phrase.split())), CONFIRM_WORDS))
        for label, field, i in zip(self.confirm_labels, self.confirm_fields, self.asked, strict=True):
            label.setText(f"Word {i + 1}")
            field.clear()
        self.stack.setCurrentWidget(self.confirm_page)

    def confirm(self) -> None:
        words = self.phrase.split()
        wrong = [i + 1 for f, i in zip(self.confirm_fields, self.asked, strict=True)
                 if f.text().strip().lower() != words[i]]
        if wrong:
            self.status.setText(f"word {', '.join(map(str, wrong))} does not match: look at your copy again")
            return
        self.status.setText("")
        self.phrase = ""
        for i in reversed(range(self.phrase_grid.count())):  # the phrase is not kept on screen
            item = self.phrase_grid.takeAt(i)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.done.emit()

    async def do_recover(self) -> None:
        self.status.setText("")
        self.recover_go.setEnabled(False)
        try:
            await self._recover(" ".join(self.recover_phrase.toPlainText().split()), self.recover_name.text(),
                                self.recover_custody.value())
        except Exception as exc:
            self.status.setText(_line(exc))
            return
        finally:
            self.recover_go.setEnabled(True)
        self.done.emit()


def _logo(size: int, ratio: float) -> QPixmap:
    """The app icon (``resources/sottovoce.svg``), empty when the resources are not there."""
    from pathlib import Path

    svg = Path(__file__).resolve().parent.parent / "resources" / "sottovoce.svg"
    icon = QIcon(str(svg)) if svg.exists() else QIcon()
    pixmap = icon.pixmap(QSize(size, size), ratio) if not icon.isNull() else QPixmap()
    return pixmap


def _line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text or type(exc).__name__
