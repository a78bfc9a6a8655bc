"""The main window: chat list on the left, the open chat (or identity, requests, devices, settings) on the right,
connection state in the status bar, a tray icon with the unread count, notifications and shortcuts.

It reads the Messenger's events through :meth:`MainWindow.handle_event` (fed by :meth:`MainWindow.follow`, an
asyncio task on the qasync loop) and calls only the Messenger facade.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from datetime import date, datetime
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRectF, QSettings, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QColor, QFontMetrics, QIcon, QKeySequence, QPainter, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMainWindow,
    QMenu,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QSystemTrayIcon,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.contacts import Contact
from engine.errors import SottovoceError
from engine.identity import color_hash
from engine.messenger import (
    ConnectionChanged,
    ContactChanged,
    ContactRequestReceived,
    DeliveryChanged,
    DeviceFound,
    DevicePaired,
    Direction,
    Event,
    EventStream,
    IdentityChanged,
    MessageReceived,
    Messenger,
    SyncProgress,
)
from engine.transport.port import ConnectionState

from . import theme
from .chat_view import ChatView
from .dialogs import AddContactDialog, IdentityWarningDialog, QuickSwitcher, VerifyDialog
from .models import ROW_ROLE, ChatListModel, ChatRow
from .pages import DevicesPage, IdentityPage, RequestsPage, SettingsPage
from .widgets import Avatar, error_line, named, paint_avatar

PAGE_SIZE = 100
NOTIFY_QUIET_MS = 1500
"""After a notification, the next ones of this window are held this long and then shown as one."""

def _ring(contact: Contact) -> tuple[tuple[int, int], ...]:
    return tuple((u, c) for u, c in color_hash(contact.identity))

def _when(ms: int) -> str:
    if not ms:
        return ""
    moment = datetime.fromtimestamp(ms / 1000)
    if moment.date() == date.today():
        return moment.strftime("%H:%M")
    if (date.today() - moment.date()).days < 7:
        return moment.strftime("%a")
    return moment.strftime("%d/%m/%y")

class ChatListDelegate(QStyledItemDelegate):
    """A chat row: avatar in its colour ring, name, last message, time, unread badge."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return QSize(option.rect.width(), 68)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        row = index.data(ROW_ROLE)
        if not isinstance(row, ChatRow):
            return
        p = theme.palette()
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = option.rect
        if option.state & QStyle.StateFlag.State_Selected:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(p.selection))
            painter.drawRoundedRect(QRectF(r).adjusted(6, 2, -6, -2), 10, 10)
        paint_avatar(painter, QRectF(r.left() + 14, r.top() + 10, 48, 48), row.name, row.ring, row.chat_key)
        fm = QFontMetrics(option.font)
        x = r.left() + 74
        time_text = _when(row.last_ms)
        time_w = fm.horizontalAdvance(time_text) + 4
        bold = painter.font()
        bold.setWeight(bold.Weight.DemiBold)
        painter.setFont(bold)
        painter.setPen(QColor(p.text))
        name = ("✔ " if row.verified else "") + row.name
        painter.drawText(QRectF(x, r.top() + 12, r.right() - x - time_w - 14, 22),
                         Qt.AlignmentFlag.AlignVCenter, QFontMetrics(bold).elidedText(name, Qt.TextElideMode.ElideRight,
                                                                                       r.right() - x - time_w - 14))
        painter.setFont(option.font)
        painter.setPen(QColor(p.muted))
        painter.drawText(QRectF(r.right() - time_w - 14, r.top() + 12, time_w, 22),
                         Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, time_text)
        badge_w = 0
        if row.unread:
            text = str(row.unread) if row.unread < 1000 else "999+"
            badge_w = max(22, fm.horizontalAdvance(text) + 12)
            badge = QRectF(r.right() - badge_w - 14, r.top() + 36, badge_w, 20)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(p.unread))
            painter.drawRoundedRect(badge, 10, 10)
            painter.setPen(QColor("#ffffff"))
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
        last = ("You: " if row.last_out else "") + row.last_text.replace("\n", " ")
        painter.setPen(QColor(p.muted))
        width = int(r.right() - x - badge_w - 22)
        painter.drawText(QRectF(x, r.top() + 34, width, 22), Qt.AlignmentFlag.AlignVCenter,
                         fm.elidedText(last or "No messages yet", Qt.TextElideMode.ElideRight, width))
        painter.restore()

class MainWindow(QMainWindow):
    """The app for one opened Messenger. Call :meth:`follow` (or feed :meth:`handle_event`) for live updates."""

    stack: QStackedWidget

    def __init__(self, messenger: Messenger, *, settings: QSettings | None = None, key_mode: str = "keyring",
                 save_relays: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self.messenger = messenger
        self.settings = settings or QSettings()
        self.setWindowTitle("Sottovoce")
        self.setWindowIcon(theme.app_icon())
        self.resize(1080, 720)
        self.chats = ChatListModel()
        self.current_chat = ""
        self.contacts: dict[str, Contact] = {}
        self.open_dialogs: list[IdentityWarningDialog] = []
        self.notifications: list[tuple[str, str]] = []
        self._follow_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._read_timer = self._single_shot(150, self.mark_read)
        self._badge_timer = self._single_shot(100, self._update_badge_now)
        self._notify_timer = self._single_shot(NOTIFY_QUIET_MS, self._flush_notifications)
        self._held: list[tuple[str, str]] = []
        me = messenger.identity

        sidebar = named(QWidget(), "Sidebar")
        sidebar.setMinimumWidth(300)
        sl = QVBoxLayout(sidebar)
        sl.setContentsMargins(10, 12, 10, 8)
        top = QHBoxLayout()
        top.setSpacing(2)
        self.me_avatar = Avatar(36)
        self.me_avatar.set_identity(me.display_name or me.alias, me.color_hash, me.chat_key)
        self.me_avatar.setToolTip(f"{me.display_name or me.alias} · {me.chat_key}")
        title = named(QLabel("Chats"), "SidebarHeader")
        top.addWidget(self.me_avatar)
        top.addSpacing(8)
        top.addWidget(title, 1)
        self.nav: dict[str, QToolButton] = {}
        for key, icon_name, tip in (("new", "add-contact", "New chat (Ctrl+N)"), ("me", "qr", "My QR code"),
                                    ("devices", "devices", "Devices"), ("settings", "settings", "Settings")):
            button = QToolButton()
            button.setIcon(theme.icon(icon_name))
            button.setIconSize(QSize(20, 20))
            button.setToolTip(tip)
            top.addWidget(button)
            self.nav[key] = button
        self.nav["new"].clicked.connect(self.new_chat)
        self.nav["me"].clicked.connect(lambda: self.show_page(self.stack.widget(2)))
        self.nav["devices"].clicked.connect(lambda: self.show_page(self.stack.widget(4)))
        self.nav["settings"].clicked.connect(lambda: self.show_page(self.stack.widget(5)))
        sl.addLayout(top)
        self.filter = QLineEdit(placeholderText="Search chats (Ctrl+K)")
        self.filter.textChanged.connect(self._filter_chats)
        sl.addWidget(self.filter)
        self.requests_button = QPushButton()
        self.requests_button.clicked.connect(lambda: self.show_page(self.stack.widget(3)))
        self.requests_button.hide()
        sl.addWidget(self.requests_button)
        self.chat_list = QListView()
        self.chat_list.setModel(self.chats)
        self.chat_list.setItemDelegate(ChatListDelegate())
        self.chat_list.clicked.connect(lambda index: self.open_chat(index.data(ROW_ROLE).chat_key))
        self.chat_list.activated.connect(lambda index: self.open_chat(index.data(ROW_ROLE).chat_key))
        sl.addWidget(self.chat_list, 1)

        self.stack = QStackedWidget()
        self.empty = named(QWidget(), "Page")
        el = QVBoxLayout(self.empty)
        hint = QLabel("Pick a chat, or start one with Ctrl+N.\nShow your QR code to a friend to get started.")
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setProperty("muted", True)
        el.addWidget(hint)
        self.chat_view = ChatView()
        self.chat_view.send.connect(self.send)
        self.chat_view.need_older.connect(self.load_older)
        self.chat_view.verify_requested.connect(lambda: self.verify(self.current_chat))
        self.chat_view.delegate._own = me.installation_id
        self.identity_page = IdentityPage(messenger, self.report)
        self.requests_page = RequestsPage(messenger, self.report, self.load_chats)
        self.devices_page = DevicesPage(messenger, self.report)

        self.settings_page = SettingsPage(messenger, self.settings, self.report, key_mode,
                                          save_relays or (lambda _url: None))
        for page in (self.empty, self.chat_view, self.identity_page, self.requests_page, self.devices_page,
                     self.settings_page):
            self.stack.addWidget(page)
        splitter = QSplitter()
        splitter.addWidget(sidebar)
        splitter.addWidget(self.stack)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([320, 760])
        splitter.setChildrenCollapsible(False)
        self.setCentralWidget(splitter)

        self.connection_label = QLabel()
        self.sync_bar = QProgressBar()
        self.sync_bar.setRange(0, 0)
        self.sync_bar.setMaximumWidth(120)
        self.sync_bar.hide()
        self.message_label = QLabel()
        self.statusBar().addWidget(self.connection_label)
        self.statusBar().addWidget(self.sync_bar)
        self.statusBar().addPermanentWidget(self.message_label)
        self.set_connection(messenger.connection_state)

        QShortcut(QKeySequence("Ctrl+K"), self, self.quick_switcher)
        QShortcut(QKeySequence("Ctrl+N"), self, self.new_chat)
        self.tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = QSystemTrayIcon(theme.icon("tray") if not theme.icon("tray").isNull() else theme.app_icon(),
                                        self)
            menu = QMenu(self)
            show = QAction("Show Sottovoce", self)
            show.triggered.connect(self.showNormal)
            quit_ = QAction("Quit", self)
            quit_.triggered.connect(QApplication.closeAllWindows)  # the app ends after its last window
            menu.addAction(show)
            menu.addAction(quit_)
            self.tray.setContextMenu(menu)
            self.tray.activated.connect(self._tray_activated)
            self.tray.show()
        self.load_chats()
        self._restore_geometry()

    def _single_shot(self, ms: int, slot: Callable[[], None]) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(ms)
        timer.timeout.connect(slot)
        return timer

    def _tray_activated(self, _reason: object) -> None:
        self.showNormal()
        self.activateWindow()

    def _contact_added(self, contact: Contact) -> None:
        self.load_chats()
        self.open_chat(contact.chat_key)

    # --- data --------------------------------------------------------------------------------------------

    def load_chats(self) -> None:
        """Rebuild the chat list from the contacts and their last message.

        Unread counts come from the store for chats not listed yet; a listed chat keeps the count its
        ``MessageReceived`` events made (the store may already hold messages whose events are still queued:
        taking its count again would count them twice)."""
        counted = {r.chat_key: r.unread for r in self.chats.rows}
        unread = self.messenger.unread_counts() if not counted else {}
        rows = []
        self.contacts = {}
        for contact in self.messenger.contacts():
            self.contacts[contact.chat_key] = contact
            last = self.messenger.messages(contact, limit=1)
            m = last[-1] if last else None
            if contact.chat_key in counted:
                n = counted[contact.chat_key]
            else:
                n = unread.get(contact.chat_key, 0) if not counted else self.messenger.unread_count(contact)
            rows.append(ChatRow(contact.chat_key, contact.name, _ring(contact), contact.verified,
                                m.text if m else "", m.timestamp_ms if m else contact.added_ns // 10**6,
                                bool(m and m.direction != Direction.IN), n, m.id if m else ""))
        self.chats.set_rows(rows)
        self._reselect()
        self._update_requests()
        self._update_badge()

    def _update_requests(self) -> None:
        n = len(self.messenger.contact_requests())
        self.requests_button.setVisible(n > 0)
        self.requests_button.setText(f"{n} contact request{'s' if n != 1 else ''}")

    def _reselect(self) -> None:
        i = self.chats.row_of(self.current_chat)
        if i >= 0:
            self.chat_list.setCurrentIndex(self.chats.index(i))

    def _filter_chats(self, text: str) -> None:
        wanted = text.casefold()
        for i, row in enumerate(self.chats.rows):
            self.chat_list.setRowHidden(i, bool(wanted) and wanted not in row.name.casefold())

    # --- navigation --------------------------------------------------------------------------------------

    def show_page(self, page: QWidget | None) -> None:
        if page is None:
            return
        if page is self.devices_page:
            self.devices_page.refresh()
        if page is self.requests_page:
            self.requests_page.refresh()
        self.stack.setCurrentWidget(page)
        if page is not self.chat_view:
            self.current_chat = ""
            self.chat_list.clearSelection()

    def open_chat(self, chat_key: str) -> None:
        contact = self.contacts.get(chat_key)
        if contact is None:
            return
        self.current_chat = chat_key
        self.chat_view.device_names.clear()
        self.chat_view.device_names.update({d.installation_id: d.name for d in self.messenger.devices()})
        self.chat_view.show_chat(chat_key, contact.name, _ring(contact), contact.verified,
                                 self.messenger.messages(contact, limit=PAGE_SIZE))
        self.stack.setCurrentWidget(self.chat_view)
        self._reselect()
        self.mark_read()

    def mark_read(self) -> None:
        if not self.current_chat:
            return
        try:
            self.messenger.mark_read(self.current_chat)
        except SottovoceError as exc:
            self.report(error_line(exc))
        self.chats.set_unread(self.current_chat, 0)
        self._update_badge()

    def load_older(self) -> None:
        contact = self.contacts.get(self.current_chat)
        if contact is None:
            return
        shown = len(self.chat_view.model.messages)
        older = self.messenger.messages(contact, limit=shown + PAGE_SIZE)
        if len(older) > shown:
            self.chat_view.prepend(older[: len(older) - shown])

    def quick_switcher(self) -> None:
        switcher = QuickSwitcher([(r.name, r.chat_key) for r in self.chats.rows], self)
        switcher.chosen.connect(self.open_chat)
        switcher.move(self.geometry().center() - switcher.rect().center())
        switcher.show()
        switcher.field.setFocus()

    def new_chat(self) -> AddContactDialog:
        dialog = AddContactDialog(self.messenger, self.warn_identity, self)
        dialog.contact_added.connect(self._contact_added)
        dialog.open()
        return dialog

    def verify(self, chat_key: str) -> VerifyDialog | None:
        contact = self.contacts.get(chat_key)
        if contact is None:
            return None
        dialog = VerifyDialog(self.messenger, self.messenger.contact(contact.identity), self)
        dialog.finished.connect(lambda _r: self._verified_changed(chat_key))
        dialog.open()
        return dialog

    def _verified_changed(self, chat_key: str) -> None:
        self.load_chats()
        contact = self.contacts.get(chat_key)
        if contact is not None and chat_key == self.current_chat:
            self.chat_view.set_verified(contact.verified)

    def warn_identity(self, name: str, detail: str) -> IdentityWarningDialog:
        """The blocking (modal) warning; kept in :attr:`open_dialogs` until acknowledged."""
        dialog = IdentityWarningDialog(name, detail, self)
        self.open_dialogs.append(dialog)
        dialog.finished.connect(lambda _r: self.open_dialogs.remove(dialog))
        dialog.open()
        return dialog

    # --- actions -----------------------------------------------------------------------------------------

    def report(self, line: str) -> None:
        """One readable line in the status bar (errors included)."""
        self.message_label.setText(line)

    def spawn(self, coro: Coroutine[Any, Any, object], what: str) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[object]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                self.report(f"{what}: {error_line(t.exception() or Exception())}")

        task.add_done_callback(done)

    def send(self, text: str) -> None:
        chat = self.current_chat
        if not chat:
            return

        async def go() -> None:
            message = await self.messenger.send_text(self.contacts[chat].identity, text)
            self.show_message(message)

        self.spawn(go(), "not sent")

    def show_message(self, message: object) -> None:
        from engine.runtime.views import ChatMessage

        assert isinstance(message, ChatMessage)
        visible = message.chat_key == self.current_chat and self.stack.currentWidget() is self.chat_view
        if message.chat_key not in self.contacts:
            self.load_chats()
            if message.chat_key not in self.contacts:  # not a contact (yet): a request, listed apart
                self._update_requests()
                return
        if visible:
            self.chat_view.add_message(message, self.contacts[message.chat_key].name)
        active = visible and self.isActiveWindow()
        self.chats.message_arrived(message, read=visible)
        self._reselect()
        if visible:
            self._read_timer.start()  # one read marker for a burst of messages (a catch-up)
        if message.direction == Direction.IN and not active:
            self.notify(message.chat_key, message.text)
        self._update_badge()

    def notify(self, chat_key: str, text: str) -> None:
        contact = self.contacts.get(chat_key)
        title = contact.name if contact else "Sottovoce"
        body = text if self.settings_page.show_previews else "New message"
        if self._notify_timer.isActive():  # a burst: shown as one when it calms down
            self._held.append((title, body))
            return
        self._show_notification(title, body)
        self._notify_timer.start()

    def _flush_notifications(self) -> None:
        held, self._held = self._held, []
        if len(held) == 1:
            self._show_notification(*held[0])
        elif held:
            senders = sorted({title for title, _ in held})
            self._show_notification(", ".join(senders), f"{len(held)} new messages")

    def _show_notification(self, title: str, body: str) -> None:
        self.notifications.append((title, body))
        if self.tray is not None:
            self.tray.showMessage(title, body, QSystemTrayIcon.MessageIcon.Information, 4000)

    def _update_badge(self) -> None:
        self._badge_timer.start()

    def _update_badge_now(self) -> None:
        total = self.chats.total_unread()
        self.setWindowTitle(f"Sottovoce ({total})" if total else "Sottovoce")
        if self.tray is not None:
            self.tray.setIcon(self._badged(total))
            self.tray.setToolTip(f"Sottovoce: {total} unread" if total else "Sottovoce")

    def _badged(self, count: int) -> QIcon:
        base = theme.icon("tray")
        if base.isNull():
            base = theme.app_icon()
        pixmap = base.pixmap(64, 64) if not base.isNull() else QPixmap(64, 64)
        if base.isNull():
            pixmap.fill(QColor(theme.palette().accent))
        if count:
            painter = QPainter(pixmap)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setBrush(QColor("#e5484d"))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.drawEllipse(QRectF(28, 0, 36, 36))
            painter.setPen(QColor("#ffffff"))
            font = painter.font()
            font.setPixelSize(22)
            font.setBold(True)
            painter.setFont(font)
            painter.drawText(QRectF(28, 0, 36, 36), Qt.AlignmentFlag.AlignCenter, str(count) if count < 100 else "99+")
            painter.end()
        return QIcon(pixmap)

    def set_connection(self, state: ConnectionState) -> None:
        text = {ConnectionState.CONNECTED: "● Connected", ConnectionState.DISCONNECTED: "○ Offline"}.get(
            state, f"◌ {str(state.value).capitalize()}…")
        self.connection_label.setText(f"{text} · {self.messenger.transport_url or 'embedded relay'}")

    # --- events ------------------------------------------------------------------------------------------

    def follow(self, stream: EventStream) -> asyncio.Task[None]:
        """Read ``stream`` on the running loop and apply each event (the task ends when the stream closes)."""

        async def pump() -> None:
            async for event in stream:
                try:
                    self.handle_event(event)
                except SottovoceError as exc:
                    self.report(error_line(exc))

        self._follow_task = asyncio.ensure_future(pump())
        return self._follow_task

    def handle_event(self, event: Event) -> None:
        """Apply one Messenger event to the models and views."""
        if isinstance(event, MessageReceived):
            self.show_message(event.message)
        elif isinstance(event, DeliveryChanged):
            self.chat_view.model.set_state(event.message_id, event.state)
        elif isinstance(event, ConnectionChanged):
            self.set_connection(event.state)
        elif isinstance(event, SyncProgress):
            self.sync_bar.setVisible(not event.caught_up)
            self.devices_page.sync_progress(event.processed, event.caught_up)
            if not event.caught_up:
                self.report(f"catching up… {event.processed} envelopes")
            elif self.message_label.text().startswith("catching up"):
                self.report("up to date")
        elif isinstance(event, ContactRequestReceived):
            self._update_requests()
            self.notify("", f"{event.display_name or 'Someone'} wants to chat")
        elif isinstance(event, (ContactChanged, IdentityChanged)):
            self.load_chats()
        elif isinstance(event, DevicePaired):
            self.devices_page.paired(event.name)
            self.load_chats()
        elif isinstance(event, DeviceFound):
            if event.own:
                self.devices_page.refresh()
                return
            contact = self.contacts.get(event.chat_key)
            if contact is not None and contact.verified:
                self.warn_identity(contact.name, f"A new installation ({event.installation_id[:8]}) of "
                                   f"{contact.name}'s account appeared. In Sottovoce the chat key is the identity "
                                   "key: this happens when they recover their account on a new device — or when "
                                   "someone else holds their key.")

    # --- window ------------------------------------------------------------------------------------------

    def _restore_geometry(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)

    def save_geometry(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_geometry()
        if self._read_timer.isActive():  # a read marker still waiting: store it now
            self._read_timer.stop()
            self.mark_read()
        if self._follow_task is not None:
            self._follow_task.cancel()
        if self.tray is not None:
            self.tray.hide()
        for camera in (self.devices_page.camera,):
            if camera is not None:
                with contextlib.suppress(Exception):
                    camera.stop()
        super().closeEvent(event)
