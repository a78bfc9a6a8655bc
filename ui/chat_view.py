"""One conversation: header, forward-secrecy banner, message bubbles (model + delegate), search and composer.

The view only shows and collects: sending, paging and read markers are asked of the owner through signals.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFontMetrics, QKeyEvent, QKeySequence, QPainter, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPlainTextEdit,
    QPushButton,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.runtime.views import ChatMessage
from engine.store.port import DeliveryState, Direction

from . import theme
from .models import ROW_ROLE, DaySeparator, MessageModel
from .widgets import Avatar, named

PAD = 10
BUBBLE_MAX = 0.68
STATE_LABEL = {DeliveryState.QUEUED: "queued", DeliveryState.SENT: "sent", DeliveryState.DELIVERED: "delivered"}
STATE_ICON = {DeliveryState.QUEUED: "queued", DeliveryState.SENT: "sent", DeliveryState.DELIVERED: "delivered"}


class MessageDelegate(QStyledItemDelegate):
    """Paints a message as a bubble (mine on the right) with its time, delivery state and, when the message
    went without forward secrecy, an open-lock marker; a day separator as a centred pill."""

    def __init__(self, model: MessageModel, device_names: dict[str, str], own_installation: str) -> None:
        super().__init__()
        self._model = model
        self._devices = device_names
        self._own = own_installation
        self._sizes: dict[tuple[str, int, DeliveryState], QSize] = {}
        """size hints by (message id, view width, state): a view of thousands of rows lays out in linear time"""

    def _footer(self, m: ChatMessage) -> str:
        parts = [datetime.fromtimestamp(m.timestamp_ms / 1000).strftime("%H:%M")]
        if not m.forward_secret:
            parts.append("not forward secret")
        if m.direction != Direction.IN and m.state in STATE_LABEL:
            parts.append(STATE_LABEL[m.state])
        return " · ".join(parts)

    def _device_line(self, m: ChatMessage) -> str:
        if m.direction == Direction.OUT_COPY:
            return f"from {self._devices.get(m.installation_id) or 'my other device ' + m.installation_id[:8]}"
        return ""

    def _layout(self, option: QStyleOptionViewItem, m: ChatMessage) -> tuple[QRect, QRect, int, int]:
        width = option.rect.width() if option.rect.width() > 0 else 600
        max_text = max(120, int(width * BUBBLE_MAX) - 2 * PAD)
        fm = QFontMetrics(option.font)
        text_rect = fm.boundingRect(QRect(0, 0, max_text, 100000), Qt.TextFlag.TextWordWrap, m.text or " ")
        small = QFontMetrics(option.font)
        footer_w = small.horizontalAdvance(self._footer(m)) + (22 if not m.forward_secret else 0)
        device_h = small.height() if self._device_line(m) else 0
        inner_w = max(text_rect.width(), footer_w, small.horizontalAdvance(self._device_line(m)))
        bubble_h = text_rect.height() + small.height() + device_h + 2 * PAD
        return text_rect, QRect(0, 0, inner_w + 2 * PAD, bubble_h), small.height(), device_h

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        row = index.data(ROW_ROLE)
        if isinstance(row, DaySeparator):
            return QSize(option.rect.width(), 40)
        if not isinstance(row, ChatMessage):
            return QSize(0, 0)
        key = (row.id, option.rect.width(), row.state)
        cached = self._sizes.get(key)
        if cached is None:
            if len(self._sizes) > 50_000:
                self._sizes.clear()
            _, bubble, _, _ = self._layout(option, row)
            cached = self._sizes[key] = QSize(option.rect.width(), bubble.height() + 6)
        return cached

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        row = index.data(ROW_ROLE)
        p = theme.palette()
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if isinstance(row, DaySeparator):
            label = row.label()
            fm = QFontMetrics(option.font)
            w = fm.horizontalAdvance(label) + 24
            pill = QRectF(option.rect.center().x() - w / 2, option.rect.top() + 8, w, 24)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(p.bubble_in))
            painter.drawRoundedRect(pill, 12, 12)
            painter.setPen(QColor(p.muted))
            painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, label)
            painter.restore()
            return
        if not isinstance(row, ChatMessage):
            painter.restore()
            return
        text_rect, bubble, small_h, device_h = self._layout(option, row)
        mine = row.direction != Direction.IN
        x = option.rect.right() - bubble.width() - 14 if mine else option.rect.left() + 14
        box = QRectF(x, option.rect.top() + 3, bubble.width(), bubble.height())
        highlighted = bool(self._model.highlight) and self._model.highlight.casefold() in row.text.casefold()
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(p.bubble_out if mine else p.bubble_in))
        painter.drawRoundedRect(box, 14, 14)
        if highlighted:
            painter.setPen(QColor("#f5b400"))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(box.adjusted(1, 1, -1, -1), 14, 14)
        text_color = QColor(p.bubble_out_text if mine else p.text)
        muted = QColor(text_color)
        muted.setAlphaF(0.72)
        y = box.top() + PAD
        if device_h:
            painter.setPen(muted)
            painter.drawText(QRectF(box.left() + PAD, y, box.width() - 2 * PAD, device_h),
                             Qt.AlignmentFlag.AlignLeft, self._device_line(row))
            y += device_h
        painter.setPen(text_color)
        painter.drawText(QRectF(box.left() + PAD, y, text_rect.width() + 1, text_rect.height()),
                         Qt.TextFlag.TextWordWrap, row.text)
        y += text_rect.height()
        footer = QRectF(box.left() + PAD, y, box.width() - 2 * PAD, small_h)
        painter.setPen(muted)
        painter.drawText(footer, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, self._footer(row))
        if not row.forward_secret:
            lock = theme.icon("no-forward-secrecy", muted.name())
            lock.paint(painter, QRect(int(footer.left()), int(footer.top()), small_h, small_h))
        painter.restore()


class Composer(QPlainTextEdit):
    """The message field: Enter sends, Shift+Enter starts a new line."""

    submitted = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText("Write a message")
        self.setFixedHeight(44)
        self.setTabChangesFocus(True)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
                event.modifiers() & Qt.KeyboardModifier.ShiftModifier):
            text = self.toPlainText().strip()
            if text:
                self.submitted.emit(text)
                self.clear()
            return
        super().keyPressEvent(event)


class ChatView(QWidget):
    """The conversation pane. Signals: ``send(text)``, ``need_older()`` (scrolled to the top),
    ``verify_requested()``."""

    send = Signal(str)
    need_older = Signal()
    verify_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Page")
        self.model = MessageModel()
        self.device_names: dict[str, str] = {}
        self.chat_key = ""
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)

        header = named(QWidget(), "ChatHeader")
        hl = QHBoxLayout(header)
        hl.setContentsMargins(16, 10, 16, 10)
        self.avatar = Avatar(40)
        self.title = named(QLabel(), "ChatTitle")
        self.subtitle = QLabel()
        self.subtitle.setProperty("muted", True)
        names = QVBoxLayout()
        names.setSpacing(0)
        names.addWidget(self.title)
        names.addWidget(self.subtitle)
        self.verify_button = QPushButton("Verify")
        self.verify_button.setIcon(theme.icon("verified"))
        self.verify_button.clicked.connect(self.verify_requested)
        self.search_button = QToolButton()
        self.search_button.setIcon(theme.icon("search"))
        self.search_button.setToolTip("Search in this chat (Ctrl+F)")
        self.search_button.clicked.connect(self.open_search)
        hl.addWidget(self.avatar)
        hl.addSpacing(8)
        hl.addLayout(names, 1)
        hl.addWidget(self.search_button)
        hl.addWidget(self.verify_button)
        layout.addWidget(header)

        self.search_bar = QWidget()
        sl = QHBoxLayout(self.search_bar)
        sl.setContentsMargins(16, 6, 16, 6)
        self.search_field = QLineEdit(placeholderText="Search in this chat")
        self.search_field.textChanged.connect(self._search)
        self.search_field.returnPressed.connect(self._next_match)
        self.search_count = QLabel()
        self.search_count.setProperty("muted", True)
        close = QToolButton()
        close.setText("✕")
        close.clicked.connect(self.close_search)
        sl.addWidget(self.search_field, 1)
        sl.addWidget(self.search_count)
        sl.addWidget(close)
        self.search_bar.hide()
        layout.addWidget(self.search_bar)

        self.banner = named(QLabel(), "Banner")
        self.banner.setWordWrap(True)
        self.banner.hide()
        banner_box = QVBoxLayout()
        banner_box.setContentsMargins(16, 8, 16, 0)
        banner_box.addWidget(self.banner)
        layout.addLayout(banner_box)

        self.list = QListView()
        self.list.setModel(self.model)
        self.delegate = MessageDelegate(self.model, self.device_names, "")
        self.list.setItemDelegate(self.delegate)
        self.list.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.list.setUniformItemSizes(False)
        self.list.setWordWrap(True)
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setLayoutMode(QListView.LayoutMode.Batched)  # lays out rows in batches, between events
        self.list.setBatchSize(200)
        self.list.verticalScrollBar().valueChanged.connect(self._scrolled)
        layout.addWidget(self.list, 1)

        bottom = QWidget()
        bl = QHBoxLayout(bottom)
        bl.setContentsMargins(16, 8, 16, 12)
        self.composer = Composer()
        self.composer.submitted.connect(self.send)
        self.send_button = QPushButton("Send")
        self.send_button.setProperty("primary", True)
        self.send_button.setIcon(theme.icon("send", "#ffffff"))
        self.send_button.clicked.connect(self._send_clicked)
        bl.addWidget(self.composer, 1)
        bl.addWidget(self.send_button)
        layout.addWidget(bottom)

        QShortcut(QKeySequence.StandardKey.Find, self, self.open_search)
        self._matches: list[int] = []
        self._match = -1
        self._at_bottom = True
        self._answered = False
        self._unsecured = False
        self._follow = True
        self._scroll_timer = QTimer(self)
        self._scroll_timer.setSingleShot(True)
        self._scroll_timer.setInterval(0)
        self._scroll_timer.timeout.connect(self.list.scrollToBottom)

    def show_chat(self, chat_key: str, name: str, ring: tuple[tuple[int, int], ...], verified: bool,
                  messages: list[ChatMessage]) -> None:
        self.chat_key = chat_key
        self.title.setText(name)
        self.avatar.set_identity(name, ring, chat_key)
        self.set_verified(verified)
        self.model.set_messages(messages)
        self.close_search()
        self.update_banner(name)
        self.list.scrollToBottom()
        self.composer.setFocus()

    def set_verified(self, verified: bool) -> None:
        short = f"{self.chat_key[:10]}…{self.chat_key[-6:]}" if self.chat_key else ""
        self.subtitle.setText(("✔ verified · " if verified else "not verified · ") + short)
        self.verify_button.setText("Verification" if verified else "Verify")

    def update_banner(self, name: str, new: ChatMessage | None = None) -> None:
        """The chat says it is not forward secret yet until the peer has answered (no bundle known).

        Without ``new`` the shown messages are read once; with it only ``new`` is looked at (a burst of
        thousands of messages stays linear)."""
        if new is None:
            messages = self.model.messages
            self._answered = any(m.direction == Direction.IN for m in messages)
            self._unsecured = any(not m.forward_secret for m in messages if m.direction != Direction.IN)
        elif new.direction == Direction.IN:
            self._answered = True
        elif not new.forward_secret:
            self._unsecured = True
        if self._unsecured and not self._answered:
            self.banner.setText(f"🔓 First messages are not forward secret until {name} answers: they were "
                                "encrypted to the chat key alone, without a prekey bundle.")
            self.banner.show()
        else:
            self.banner.hide()

    def add_message(self, message: ChatMessage, name: str) -> None:
        """Append a message; the view follows it down when it was at the bottom (or the message is mine),
        scrolling once per loop turn: a burst is laid out once, not once per message."""
        if not self._scroll_timer.isActive():
            bar = self.list.verticalScrollBar()
            self._follow = bar.value() >= bar.maximum() - 40
        if self.model.append(message):
            self.update_banner(name, message)
            if self._follow or message.direction == Direction.OUT:
                self._follow = True
                self._scroll_timer.start()

    def prepend(self, older: list[ChatMessage]) -> None:
        bar = self.list.verticalScrollBar()
        from_bottom = bar.maximum() - bar.value()
        if self.model.prepend_older(older):
            self.list.doItemsLayout()
            bar.setValue(bar.maximum() - from_bottom)

    def _scrolled(self, value: int) -> None:
        if value == 0 and self.model.rowCount() > 0 and self.isVisible():
            self.need_older.emit()

    def _send_clicked(self) -> None:
        text = self.composer.toPlainText().strip()
        if text:
            self.send.emit(text)
            self.composer.clear()

    def open_search(self) -> None:
        self.search_bar.show()
        self.search_field.setFocus()
        self.search_field.selectAll()

    def close_search(self) -> None:
        self.search_field.clear()
        self.search_bar.hide()
        self.model.set_highlight("")

    def _search(self, text: str) -> None:
        self.model.set_highlight(text)
        self._matches = self.model.matches(text)
        self._match = len(self._matches) - 1
        self._show_match()

    def _next_match(self) -> None:
        if self._matches:
            self._match = (self._match - 1) % len(self._matches)  # Enter goes to older matches
            self._show_match()

    def _show_match(self) -> None:
        if not self._matches:
            self.search_count.setText("no match" if self.search_field.text() else "")
            return
        self.search_count.setText(f"{len(self._matches) - self._match} of {len(self._matches)}")
        self.list.scrollTo(self.model.index(self._matches[self._match]),
                           QAbstractItemView.ScrollHint.PositionAtCenter)
