"""Local storage form of a Double Ratchet session: ``version (1) ‖ RatchetStateRecord ‖ check (8)``.

The record (``proto/local_state.proto``) holds every :class:`~engine.protocol.ratchet.RatchetState` field and
the stored message keys in the state's own order, so a restored state prunes and decrypts exactly like the
original. ``check`` is the first 8 bytes of SHA-256 over what precedes it: a truncated or corrupted record
(a protobuf cut at a field boundary still parses) is detected instead of silently resuming a wrong session.
It guards against accidents only; confidentiality and authenticity are the encrypted store's job. Parsing also
checks every length and key; anything else raises :class:`MalformedMessage`.
"""

from __future__ import annotations

import hashlib

from google.protobuf.message import DecodeError

from proto import local_state_pb2 as pb

from ..crypto.keys import KeyPair, parse_compressed
from ..errors import MalformedMessage, SottovoceError
from .ratchet import RatchetState, SkippedKeys

RATCHET_FORMAT_VERSION = 1
_CHECK_LEN = 8
_KEY_LEN = 32
_PUBLIC_LEN = 33
_UINT32 = 2**32


def ratchet_to_bytes(state: RatchetState) -> bytes:
    """Serialize ``state`` (private keys included: store it encrypted)."""
    record = pb.RatchetStateRecord(
        root_key=state.root_key,
        sending_private=state.sending_key.private,
        sending_public=state.sending_key.public,
        remote_key=state.remote_key,
        sending_chain=state.sending_chain,
        receiving_chain=state.receiving_chain,
        sent=state.sent,
        received=state.received,
        previous_sent=state.previous_sent,
        keys_count=state.keys_count,
    )
    for (dh, n), (message_key, seq) in state.skipped.items():
        record.skipped.add(dh=dh, n=n, message_key=message_key, seq=seq)
    body = bytes([RATCHET_FORMAT_VERSION]) + record.SerializeToString(deterministic=True)
    return body + _check(body)


def ratchet_from_bytes(data: bytes) -> RatchetState:
    """Parse what :func:`ratchet_to_bytes` wrote; :class:`MalformedMessage` for anything else."""
    if not data or data[0] != RATCHET_FORMAT_VERSION:
        raise MalformedMessage("unknown ratchet state format version")
    body, check = data[:-_CHECK_LEN], data[-_CHECK_LEN:]
    if len(data) <= _CHECK_LEN or _check(body) != check:
        raise MalformedMessage("ratchet state truncated or corrupted")
    record = pb.RatchetStateRecord()
    try:
        record.ParseFromString(body[1:])
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise MalformedMessage("malformed ratchet state") from exc

    for name in ("root_key", "sending_chain", "receiving_chain"):
        _require(len(getattr(record, name)) == _KEY_LEN, f"{name} is not 32 bytes")
    try:
        sending_key = KeyPair.from_private(bytes(record.sending_private))
        if record.remote_key:
            parse_compressed(bytes(record.remote_key))
    except SottovoceError as exc:
        raise MalformedMessage("invalid key in ratchet state") from exc
    _require(sending_key.public == record.sending_public, "sending key pair mismatch")

    skipped: SkippedKeys = {}
    for entry in record.skipped:
        slot = (bytes(entry.dh), entry.n)
        _require(len(entry.dh) == _PUBLIC_LEN and entry.dh[0] in (2, 3), "bad skipped ratchet key")
        _require(len(entry.message_key) == _KEY_LEN, "bad skipped message key")
        _require(entry.seq < record.keys_count, "skipped key sequence beyond the key count")
        _require(slot not in skipped, "duplicate skipped key")
        skipped[slot] = (bytes(entry.message_key), entry.seq)
    _require(max(record.sent, record.received, record.previous_sent) <= _UINT32, "counter out of range")

    return RatchetState(bytes(record.root_key), sending_key, bytes(record.remote_key), bytes(record.sending_chain),
                        bytes(record.receiving_chain), record.sent, record.received, record.previous_sent,
                        record.keys_count, skipped)


def _check(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()[:_CHECK_LEN]


def _require(condition: bool, reason: str) -> None:
    if not condition:
        raise MalformedMessage(f"malformed ratchet state: {reason}")
