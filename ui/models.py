"""Qt item models that adapt the Messenger's views and events: the chat list and one conversation.

:class:`ChatListModel` keeps one row per contact sorted by activity (newest first), with the last message,
its time and the unread count. :class:`MessageModel` holds a conversation as rows of messages and day
separators, oldest first; older pages are prepended as the user scrolls up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

from engine.runtime.views import ChatMessage
from engine.store.port import DeliveryState, Direction

ROW_ROLE = Qt.ItemDataRole.UserRole + 1
"""The row's dataclass (:class:`ChatRow`, :class:`ChatMessage` or :class:`DaySeparator`)."""
KEY_ROLE = Qt.ItemDataRole.UserRole + 2

Index = QModelIndex | QPersistentModelIndex
R = TypeVar("R")


class _RowsModel(QAbstractListModel, Generic[R]):
    """A flat list model over ``_rows``: the row count, and :meth:`data` for a valid index (by
    :meth:`_data`); subclasses keep ``_rows`` and signal their changes."""

    def __init__(self) -> None:
        super().__init__()
        self._rows: list[R] = []

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        return row if role == ROW_ROLE else self._data(row, role)

    def _data(self, row: R, role: int) -> Any:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class ChatRow:
    """One conversation of the chat list."""

    chat_key: str
    name: str
    ring: tuple[tuple[int, int], ...]
    verified: bool = False
    last_text: str = ""
    last_ms: int = 0
    """the time of its last message (or when the contact was added), ms since the epoch"""
    last_out: bool = False
    unread: int = 0
    last_id: str = ""
    """the id of the message shown as the last one"""


class ChatListModel(_RowsModel[ChatRow]):
    """Conversations, most recently active first."""

    def _data(self, row: ChatRow, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return row.name
        if role == KEY_ROLE:
            return row.chat_key
        return None

    @property
    def rows(self) -> list[ChatRow]:
        return list(self._rows)

    def row_of(self, chat_key: str) -> int:
        return next((i for i, r in enumerate(self._rows) if r.chat_key == chat_key), -1)

    def get(self, chat_key: str) -> ChatRow | None:
        i = self.row_of(chat_key)
        return self._rows[i] if i >= 0 else None

    def set_rows(self, rows: Sequence[ChatRow]) -> None:
        self.beginResetModel()
        self._rows = sorted(rows, key=_activity)
        self.endResetModel()

    def upsert(self, row: ChatRow) -> None:
        """Insert or replace ``row`` and move it to its place by activity."""
        i = self.row_of(row.chat_key)
        if i >= 0:
            self.beginRemoveRows(QModelIndex(), i, i)
            del self._rows[i]
            self.endRemoveRows()
        j = 0
        while j < len(self._rows) and _activity(self._rows[j]) <= _activity(row):
            j += 1
        self.beginInsertRows(QModelIndex(), j, j)
        self._rows.insert(j, row)
        self.endInsertRows()

    def remove(self, chat_key: str) -> None:
        i = self.row_of(chat_key)
        if i >= 0:
            self.beginRemoveRows(QModelIndex(), i, i)
            del self._rows[i]
            self.endRemoveRows()

    def message_arrived(self, message: ChatMessage, *, read: bool) -> None:
        """A message of a listed chat: it becomes the last one; an incoming one not ``read`` counts as unread."""
        row = self.get(message.chat_key)
        if row is None:
            return
        unread = row.unread + (1 if message.direction == Direction.IN and not read else 0)
        if message.id != row.last_id and (message.timestamp_ms >= row.last_ms or row.last_text == ""):
            row = dataclasses.replace(row, last_text=message.text, last_ms=max(row.last_ms, message.timestamp_ms),
                                      last_out=message.direction != Direction.IN, last_id=message.id)
        self.upsert(dataclasses.replace(row, unread=unread))

    def set_unread(self, chat_key: str, unread: int) -> None:
        i = self.row_of(chat_key)
        if i >= 0 and self._rows[i].unread != unread:
            self._rows[i] = dataclasses.replace(self._rows[i], unread=unread)
            index = self.index(i)
            self.dataChanged.emit(index, index)

    def total_unread(self) -> int:
        return sum(r.unread for r in self._rows)


def _activity(row: ChatRow) -> tuple[int, str]:
    return (-row.last_ms, row.name.casefold())


@dataclass(frozen=True, slots=True)
class DaySeparator:
    """A row between two messages of different days (local time)."""

    day: date

    def label(self, today: date | None = None) -> str:
        today = today or date.today()
        delta = (today - self.day).days
        if delta == 0:
            return "Today"
        if delta == 1:
            return "Yesterday"
        if 0 < delta < 7:
            return self.day.strftime("%A")
        return self.day.strftime("%d %B %Y").lstrip("0")


def local_day(timestamp_ms: int) -> date:
    return datetime.fromtimestamp(timestamp_ms / 1000).date()


def with_day_separators(messages: Sequence[ChatMessage]) -> list[ChatMessage | DaySeparator]:
    """The rows of a conversation: each message, preceded by a separator where the local day changes."""
    rows: list[ChatMessage | DaySeparator] = []
    last: date | None = None
    for message in messages:
        day = local_day(message.timestamp_ms)
        if day != last:
            rows.append(DaySeparator(day))
            last = day
        rows.append(message)
    return rows


class MessageModel(_RowsModel[ChatMessage | DaySeparator]):
    """One conversation, oldest first, with day separators; :attr:`highlight` marks search matches."""

    def __init__(self) -> None:
        super().__init__()
        self._messages: list[ChatMessage] = []
        self._ids: set[str] = set()
        self.highlight = ""

    def _data(self, row: ChatMessage | DaySeparator, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return row.text if isinstance(row, ChatMessage) else row.label()
        return None

    @property
    def messages(self) -> list[ChatMessage]:
        return list(self._messages)

    def row(self, i: int) -> ChatMessage | DaySeparator:
        return self._rows[i]

    def set_messages(self, messages: Sequence[ChatMessage]) -> None:
        self.beginResetModel()
        self._messages = list(messages)
        self._ids = {m.id for m in self._messages}
        self._rows = with_day_separators(self._messages)
        self.endResetModel()

    def prepend_older(self, older: Sequence[ChatMessage]) -> int:
        """Add messages older than those shown (a fetched page); returns how many rows were added on top."""
        new = [m for m in older if m.id not in self._ids]
        if not new:
            return 0
        before = len(self._rows)
        self.set_messages([*new, *self._messages])
        return len(self._rows) - before

    def append(self, message: ChatMessage) -> bool:
        """Add a new message at the bottom (False if already shown)."""
        if message.id in self._ids:
            return False
        rows: list[ChatMessage | DaySeparator] = [message]
        if not self._messages or local_day(self._messages[-1].timestamp_ms) != local_day(message.timestamp_ms):
            rows.insert(0, DaySeparator(local_day(message.timestamp_ms)))
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
        self._rows.extend(rows)
        self._messages.append(message)
        self._ids.add(message.id)
        self.endInsertRows()
        return True

    def set_state(self, message_id: str, state: DeliveryState) -> bool:
        """A delivery state change of a shown message (states only move forward)."""
        if message_id not in self._ids:
            return False
        for i in range(len(self._rows) - 1, -1, -1):
            row = self._rows[i]
            if isinstance(row, ChatMessage) and row.id == message_id:
                if _STATE_ORDER[state] <= _STATE_ORDER[row.state]:
                    return False
                updated = dataclasses.replace(row, state=state)
                self._rows[i] = updated
                self._messages[self._messages.index(row)] = updated
                index = self.index(i)
                self.dataChanged.emit(index, index)
                return True
        return False

    def matches(self, text: str) -> list[int]:
        """Rows whose message text contains ``text`` (case-insensitively), oldest first."""
        wanted = text.casefold()
        if not wanted:
            return []
        return [i for i, r in enumerate(self._rows) if isinstance(r, ChatMessage) and wanted in r.text.casefold()]

    def set_highlight(self, text: str) -> None:
        self.highlight = text
        if self._rows:
            self.dataChanged.emit(self.index(0), self.index(len(self._rows) - 1))


_STATE_ORDER = {DeliveryState.QUEUED: 0, DeliveryState.SENT: 1, DeliveryState.DELIVERED: 2,
                DeliveryState.RECEIVED: 3}
