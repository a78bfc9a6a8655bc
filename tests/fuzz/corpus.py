"""Seed corpora for the fuzz targets, built at run time from the status-go vectors and the live fixtures.

Nothing here is committed as files: :func:`write_corpus` writes one target's seeds into a (temporary) folder
that libFuzzer then grows. Seeds are genuine bytes, so the fuzzer starts past every parser's front door.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

from engine.codes import encode_contact_code, encode_pairing_code, qr_png
from engine.protocol import waku
from engine.protocol.application import messages as app
from engine.protocol.bundle import Bundle
from engine.sessions.core import SessionCore
from proto import encryption_pb2 as pb
from proto import local_state_pb2 as ls

from .fixtures import STORE_KINDS, live_engines, live_pair

VECTORS = Path(os.environ.get("SOTTOVOCE_VECTORS", Path(__file__).resolve().parents[3] / "shared" / "vectors"))
"""The status-go vectors (``/work/shared/vectors``; override with ``SOTTOVOCE_VECTORS``)."""


@cache
def _cases(name: str) -> tuple[dict[str, Any], ...]:
    path = VECTORS / "status-go" / f"{name}.json"
    return tuple(json.loads(path.read_text())["cases"]) if path.exists() else ()


def _of(name: str, kind: str) -> Iterator[dict[str, Any]]:
    return (case for case in _cases(name) if case["type"] == kind)


def _app(kind: str) -> Iterator[dict[str, Any]]:
    return _of("status-go-app-vectors", kind)


def _enc(kind: str) -> Iterator[dict[str, Any]]:
    return _of("status-go-vectors", kind)


def _h(value: str) -> bytes:
    return bytes.fromhex(value)


# --- per target ------------------------------------------------------------------------------------------


def waku_key(kind: str) -> bytes:
    """The key of the first vector of ``kind`` (symmetric key, or recipient private key): the raw-payload
    targets open with it, so the vector payloads of that key decrypt for real."""
    field = "sym_key" if kind == "symmetric" else "recipient_priv"
    for case in _app("waku_payload"):
        if case["kind"] == kind:
            return _h(case[field])
    return bytes(range(1, 33))


def _waku_payloads(kind: str) -> Iterator[bytes]:
    for case in _app("waku_payload"):
        if case["kind"] == kind:
            yield _h(case["payload"])


def _waku_message() -> Iterator[bytes]:
    for case in _app("waku_message"):
        yield _h(case["waku_message"])
    yield from live_engines().envelopes
    yield from live_engines().history


def _waku_plaintext() -> Iterator[bytes]:
    for case in _app("waku_payload"):
        if "plaintext" in case:
            yield b"\x00" + _h(case["plaintext"])
            yield b"\x01" + _h(case["plaintext"])


def _protocol_messages() -> Iterator[bytes]:
    pair = live_pair()
    yield from pair.messages
    yield from pair.read
    for kind in ("conversation", "decrypt_reject", "dh_header"):
        for case in _enc(kind):
            for event in case["events"]:
                for field in ("protocol_message", "raw", "data"):
                    if isinstance(event.get(field), str):
                        yield _h(event[field])


def _bundles() -> Iterator[bytes]:
    yield live_pair().alice_bundle
    for kind in ("bundle_verify", "bundle_sign"):
        for case in _enc(kind):
            yield _h(case["bundle"])


def _amms() -> Iterator[bytes]:
    for kind in ("app_message_wrap", "app_message_parse"):
        for case in _app(kind):
            yield _h(case["amm"])


def _datasync() -> Iterator[bytes]:
    for case in _app("datasync_wrap"):
        yield _h(case["payload"])
    for case in _app("datasync_parse"):
        yield _h(case["plaintext"])


def _segments() -> Iterator[bytes]:
    def framed(chunks: list[bytes]) -> bytes:
        return b"".join(len(c).to_bytes(2, "big") + c for c in chunks if len(c) < 0x8000)

    for case in _app("segment"):
        serialized = [_h(s["serialized"]) for s in case["segments"] if "serialized" in s]
        if serialized:
            yield framed(serialized)
        for scenario in case.get("reassembly", []):
            chunks = []
            for delivery in scenario["deliveries"]:
                if "raw" in delivery:
                    chunks.append(_h(delivery["raw"]))
                elif isinstance(delivery.get("segment"), int) and delivery["segment"] < len(serialized):
                    chunks.append(serialized[delivery["segment"]])
            if chunks:
                yield framed(chunks)


def _code_texts() -> Iterator[str]:
    pair = live_pair()
    bundle = Bundle.parse(pair.alice_bundle)
    yield encode_contact_code(pair.alice_bundle, "Alice Fuzz")
    yield encode_contact_code(pair.alice_bundle)
    for installation_id in bundle.signed_prekeys:
        yield encode_pairing_code(pair.alice_bundle, installation_id, "fuzz laptop", "desktop")
    for case in _of("identity-vectors", "chatkey_zq3"):
        if isinstance(case.get("expected"), str):
            yield case["expected"]
    for case in _enc("topics"):
        yield "0x" + case["public_key"] if not case["public_key"].startswith("0x") else case["public_key"]


def _codes() -> Iterator[bytes]:
    for text in _code_texts():
        yield text.encode()


def _qr_images() -> Iterator[bytes]:
    """PNGs of a contact code and a chat key, and the same as 1-bit BMP and GIF: formats without checksums,
    so that mutations reach zbar and the code parser instead of stopping at pillow's CRC check."""
    from PIL import Image

    texts = list(_code_texts())
    for png in (qr_png(texts[0], scale=1, border=1), qr_png(texts[-1], scale=2, border=2)):
        yield png
        image = Image.open(io.BytesIO(png)).convert("1")
        for fmt in ("BMP", "GIF"):
            out = io.BytesIO()
            image.save(out, format=fmt)
            yield out.getvalue()


def _store_records() -> Iterator[bytes]:
    tables = live_engines().bob_tables
    for index, kind in enumerate(STORE_KINDS):
        if kind.startswith("meta:"):
            value = tables.meta.get(kind[5:])
            if value is not None:
                yield bytes([index, 0]) + value
            continue
        for key, value in tables.records.get(kind, {}).items():
            if len(key) < 256:
                yield bytes([index, len(key)]) + key + value
    yield from _synthetic_records()


def _synthetic_records() -> Iterator[bytes]:
    """Records of kinds the fixture's settled store holds none of: datasync state and segments."""
    live = live_engines()
    alice = live.alice_state.identity.public
    body = next(_amms())
    out = ls.DatasyncOutRecord(peer=alice, group_id=bytes(32), timestamp=live.clock() // 10**9, body=body,
                               send_count=1, next_due_ns=live.clock(), message_id="0x" + "22" * 32)
    acks = ls.DatasyncAcksRecord(ids=[bytes(32), bytes(range(32))], since_ns=live.clock())
    records = [("datasync_out", bytes(range(32)), out.SerializeToString()),
               ("datasync_acks", alice, acks.SerializeToString()),
               ("segments_done", bytes(32), live.clock().to_bytes(8, "big"))]
    for case in _app("segment"):
        for segment in case["segments"][:2]:
            if "serialized" in segment:
                data = _h(segment["serialized"])
                key = _h(case["entire_message_hash"]) + alice + hashlib.sha256(data).digest()[:8]
                records.append(("segments", key, data))
        break
    for kind, key, value in records:
        yield bytes([STORE_KINDS.index(kind), len(key)]) + key + value


def _receive_inputs() -> Iterator[bytes]:
    live = live_engines()
    for envelope in (*live.envelopes, *live.history):
        yield b"\x00" + envelope
        message = waku.WakuMessage.from_bytes(envelope)
        if message.content_topic == live.topic and isinstance(live.key, waku.SymmetricKey):
            yield b"\x01" + waku.receive(message.payload, live.key).data
    for data in (*_amms(), *_datasync()):
        yield b"\x02" + data
    for inner in _alice_messages():
        yield b"\x03" + app.amm_type_of(inner).to_bytes(2, "big") + app.encode(inner)
    for inner in _phone_messages():
        yield b"\x04" + app.amm_type_of(inner).to_bytes(2, "big") + app.encode(inner)
    yield b"\x01" + pb.ProtocolMessage(public_message=b"hello").SerializeToString()


def _alice_messages() -> Iterator[Message]:
    """Application messages Alice could send Bob, one of each kind Bob's state machine handles."""
    live = live_engines()
    ms = live.clock() // 1_000_000
    bob = SessionCore.load(live.bob_store).identity
    chat = app.key_id(bob)
    yield app.chat_message(clock=ms, timestamp=ms, text="fuzz text", chat_id=chat, display_name="alice_fuzz")
    yield app.sticker_message(clock=ms, timestamp=ms, text="", chat_id=chat, sticker_hash="e3010170")
    yield app.contact_request(clock=ms, timestamp=ms, chat_id=chat, display_name="alice_fuzz", request_clock=ms,
                              text="please")
    yield app.accept_contact_request(app.default_contact_request_id(bob), ms)
    yield app.retract_contact_request(ms)
    yield app.contact_update(clock=ms, display_name="alice_fuzz", public_key=chat,
                             propagated_state=app.PropagatedState(ms, 1, ms, 1))
    yield app.chat_identity(clock=ms, display_name="alice_fuzz", description="d", customization_color=2)
    yield app.emoji_reaction(clock=ms, chat_id=chat, message_id="0x" + "11" * 32, emoji=1)
    yield app.sync_pair_installation(clock=ms, installation_id="x-installation", device_type="desktop", name="x")


def _phone_messages() -> Iterator[Message]:
    """What Bob's paired phone sends Bob: sync messages, and the copy of a chat message it sent Alice."""
    live = live_engines()
    ms = live.clock() // 1_000_000
    alice = live.alice_state.identity.public
    yield app.sync_pair_installation(clock=ms, installation_id=live.sibling.installation_id,
                                     device_type="mobile", name="bob phone renamed")
    yield app.sync_installation_contact(clock=ms, public_key=alice, state=app.PropagatedState(ms, 1, ms, 1),
                                        nickname="al")
    yield app.contact_request_decision(clock=ms, request_id=app.default_contact_request_id(alice), declined=False,
                                       contact_id=app.key_id(alice))
    yield app.chat_message(clock=ms, timestamp=ms, text="sent from the phone", chat_id=app.key_id(alice))


SEEDS: dict[str, Callable[[], Iterator[bytes]]] = {
    "waku_message": _waku_message,
    "waku_symmetric": lambda: _waku_payloads("symmetric"),
    "waku_asymmetric": lambda: _waku_payloads("asymmetric"),
    "waku_plaintext": _waku_plaintext,
    "protocol_message": _protocol_messages,
    "bundle": _bundles,
    "ratchet": _protocol_messages,
    "amm": _amms,
    "datasync": _datasync,
    "segments": _segments,
    "codes": _codes,
    "qr_image": _qr_images,
    "store_state": _store_records,
    "receive_path": _receive_inputs,
}


def seeds(target: str) -> list[bytes]:
    """The distinct seeds of ``target``, in a stable order."""
    out: dict[bytes, None] = {}
    for data in SEEDS[target]():
        out.setdefault(bytes(data), None)
    return list(out)


def write_corpus(target: str, folder: Path) -> int:
    """Write ``target``'s seeds into ``folder`` (one file each, named by content hash); returns how many."""
    folder.mkdir(parents=True, exist_ok=True)
    found = seeds(target)
    for data in found:
        (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)
    return len(found)
