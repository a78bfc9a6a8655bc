"""Qt models (chat list ordering and unread counts, day separators, delivery states, search) and the one QR
decoding path fed with camera frames (QVideoFrame and QImage), a clipboard-style QImage and a non-code."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from PySide6.QtGui import QImage

from engine.codes import NoQrCodeFound, qr_png
from engine.keyring import KeyCustody, ScryptParams
from engine.messenger import Messenger
from engine.runtime.views import ChatMessage
from engine.store.port import DeliveryState, Direction
from tests.ui.conftest import run_in
from ui.models import ChatListModel, ChatRow, DaySeparator, MessageModel, with_day_separators
from ui.scanning import CameraScanner, decode_code, scan_qimage

CUSTODY = KeyCustody(scrypt=ScryptParams(n=2**10, r=8, p=1), environ={})


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def message(i: int, when: datetime, direction: Direction = Direction.IN, chat: str = "zQ3a",
            state: DeliveryState = DeliveryState.RECEIVED, text: str | None = None) -> ChatMessage:
    return ChatMessage(f"0x{i:064x}", chat, chat, "a", "inst", "me", direction, text or f"m{i}", ms(when), i, True,
                       state)


def test_chat_list_sorted_by_activity_with_unread_counts() -> None:
    model = ChatListModel()
    base = datetime(2026, 5, 1, 12)
    model.set_rows([ChatRow("zQ3a", "anna", (), last_ms=ms(base)), ChatRow("zQ3b", "bert", (), last_ms=ms(base) + 5),
                    ChatRow("zQ3c", "carl", ())])
    assert [r.name for r in model.rows] == ["bert", "anna", "carl"]
    new = message(1, base + timedelta(minutes=1))
    model.message_arrived(new, read=False)
    assert [r.name for r in model.rows] == ["anna", "bert", "carl"]
    assert model.get("zQ3a") == ChatRow("zQ3a", "anna", (), last_text="m1", last_ms=new.timestamp_ms, unread=1,
                                         last_id=new.id)
    mine = message(2, base + timedelta(minutes=2), Direction.OUT, chat="zQ3c", state=DeliveryState.QUEUED)
    model.message_arrived(mine, read=False)  # my own message is never unread
    assert [r.name for r in model.rows] == ["carl", "anna", "bert"] and model.total_unread() == 1
    model.message_arrived(message(3, base + timedelta(minutes=3), chat="zQ3b"), read=True)  # open chat: read
    assert model.get("zQ3b").unread == 0 and model.rows[0].name == "bert"  # type: ignore[union-attr]
    model.set_unread("zQ3a", 0)
    assert model.total_unread() == 0
    model.message_arrived(message(4, base, chat="zQ3unknown"), read=False)  # not a listed chat: ignored
    assert len(model.rows) == 3


def test_day_separators_between_local_days_and_paging() -> None:
    day1 = datetime(2026, 3, 1, 23, 50)
    msgs = [message(1, day1), message(2, day1 + timedelta(minutes=5)), message(3, day1 + timedelta(minutes=20)),
            message(4, day1 + timedelta(days=3))]
    rows = with_day_separators(msgs)
    kinds = ["sep" if isinstance(r, DaySeparator) else r.text for r in rows]
    assert kinds == ["sep", "m1", "m2", "sep", "m3", "sep", "m4"]
    assert DaySeparator(day1.date()).label(day1.date()) == "Today"
    assert DaySeparator(day1.date()).label(day1.date() + timedelta(days=1)) == "Yesterday"

    model = MessageModel()
    model.set_messages(msgs[2:])
    assert model.rowCount() == 4
    added = model.prepend_older(msgs[:3])  # a page overlapping what is shown
    assert added == 3 and [m.text for m in model.messages] == ["m1", "m2", "m3", "m4"]
    assert model.append(message(5, day1 + timedelta(days=3, minutes=1))) and not model.append(msgs[0])
    assert model.rowCount() == 8  # no new separator for the same day


def test_delivery_states_only_move_forward_and_search() -> None:
    now = datetime(2026, 4, 2, 10)
    model = MessageModel()
    out = message(1, now, Direction.OUT, state=DeliveryState.QUEUED, text="see you at the Station")
    model.set_messages([out, message(2, now, text="which station?")])
    assert model.set_state(out.id, DeliveryState.DELIVERED)
    assert not model.set_state(out.id, DeliveryState.SENT)  # a late "sent" does not undo "delivered"
    assert model.messages[0].state == DeliveryState.DELIVERED
    assert not model.set_state("0xunknown", DeliveryState.SENT)
    assert model.matches("STATION") == [1, 2] and model.matches("nothing") == [] and model.matches("") == []


@pytest.fixture
def messenger(tmp_path, qloop):  # type: ignore[no-untyped-def]
    m = run_in(qloop, Messenger.create(tmp_path / "p", display_name="scanner", passphrase="pw", custody=CUSTODY))
    yield m
    run_in(qloop, m.close())


def test_camera_frames_and_images_go_through_the_one_decoding_path(
        messenger: Messenger, qloop: asyncio.AbstractEventLoop) -> None:
    try:  # QtMultimedia needs libpulse0 (see the report); without it frames are fed as QImages
        from PySide6.QtMultimedia import QVideoFrame

        def frame(image: QImage) -> object:
            return QVideoFrame(image)
    except ImportError:
        def frame(image: QImage) -> object:
            return image

    code = messenger.contact_code()
    image = QImage.fromData(qr_png(code))
    assert not image.isNull()

    async def main() -> None:
        scanner = CameraScanner()
        found: list[object] = []
        scanner.found.connect(found.append)
        blank = QImage(640, 480, QImage.Format.Format_RGB32)
        blank.fill(0xFFFFFF)
        scanner.feed_frame(frame(blank))  # a frame without a code: decoded, nothing found
        while scanner.frames_decoded < 1:
            await asyncio.sleep(0.01)
        assert found == []
        scanner.feed_frame(frame(image))
        while not found:
            await asyncio.sleep(0.01)
        scanner.feed_frame(frame(image))  # after the first find, frames are ignored
        await asyncio.sleep(0.05)
        assert len(found) == 1
        scanned = found[0]
        assert scanned.text == code and not scanned.is_pairing  # type: ignore[attr-defined]
        assert scanned.info.chat_key == messenger.identity.chat_key  # type: ignore[attr-defined]
        direct = await scan_qimage(image)  # the clipboard / screen-region path
        assert direct.text == code
        with pytest.raises(NoQrCodeFound):
            await scan_qimage(blank)

    run_in(qloop, main(), 30)
    pairing = messenger.pairing_code()
    assert decode_code(qr_png(pairing)).is_pairing
