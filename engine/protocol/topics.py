"""Waku topic names and their derivations, as status-go computes them (spec §9).

Every topic starts from a *name* string. The 4-byte Waku topic is ``K256(name)[:4]``, the Waku v2 content
topic is ``/waku/1/0x<topic hex>/rfc26`` and, for symmetric topics, the envelope key is PBKDF2 of the name.

PBKDF2 runs 65 356 iterations, so nothing here derives a key implicitly: :meth:`Topic.of` and the per-kind
constructors are cheap, and :meth:`Topic.with_key` (or :func:`symmetric_key`) does the slow derivation once.
Callers keep the keyed :class:`Topic` to cache the key.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from ..crypto.hashing import keccak256
from ..crypto.kdf import topic_symmetric_key
from ..crypto.keys import ecdh, uncompress

PARTITIONS = 5000
"""Number of partitioned discovery topics (``x(IK) mod 5000``)."""

LEGACY_DISCOVERY_NAME = "contact-discovery"
"""status-go's old shared discovery topic name."""

TOPIC_LEN = 4


def _pub_hex(public: bytes) -> str:
    """``hex(U(P))``: 130 lowercase hex characters starting with ``04``; accepts C(P) or U(P)."""
    return uncompress(public).hex()


def contact_code_name(public: bytes) -> str:
    """``0x<hex(U(IK))>-contact-code``: where an identity broadcasts its contact code (symmetric)."""
    return f"0x{_pub_hex(public)}-contact-code"


def partitioned_name(public: bytes) -> str:
    """``contact-discovery-<x(IK) mod 5000>``: the recipient's partitioned topic (asymmetric)."""
    x = int.from_bytes(uncompress(public)[1:33], "big")
    return f"{LEGACY_DISCOVERY_NAME}-{x % PARTITIONS}"


def personal_name(public: bytes) -> str:
    """``contact-discovery-<hex(U(IK))>``: the personal discovery topic (asymmetric)."""
    return f"{LEGACY_DISCOVERY_NAME}-{_pub_hex(public)}"


def negotiated_secret(my_private: bytes, peer_public: bytes) -> bytes:
    """The negotiated shared secret: raw ECDH x coordinate of our identity key and the peer's (32 bytes)."""
    return ecdh(my_private, peer_public)


def negotiated_name(secret: bytes) -> str:
    """The negotiated topic name: lowercase hex of the 32-byte shared secret (no ``0x``)."""
    return secret.hex()


def negotiated_chat_id(peer_public: bytes) -> str:
    """status-go's local filter label ``0x<hex(U(peer))>-negotiated``; it feeds no derivation."""
    return f"0x{_pub_hex(peer_public)}-negotiated"


@lru_cache(maxsize=1024)  # names of public topics; the same few on every message
def topic(name: str) -> bytes:
    """The 4-byte Waku topic of a name: ``K256(UTF8(name))[:4]``."""
    return keccak256(name.encode())[:TOPIC_LEN]


def content_topic_of(topic_bytes: bytes) -> str:
    """The Waku v2 content topic string of a 4-byte topic."""
    return f"/waku/1/0x{topic_bytes.hex()}/rfc26"


def topic_of_content_topic(content_topic: str) -> bytes:
    """The 4-byte topic of a content topic made by :func:`content_topic_of` (``ValueError`` for any other)."""
    prefix, suffix = "/waku/1/0x", "/rfc26"
    if not (content_topic.startswith(prefix) and content_topic.endswith(suffix)):
        raise ValueError(f"not a Waku v1 content topic: {content_topic!r}")
    raw = bytes.fromhex(content_topic[len(prefix):-len(suffix)])
    if len(raw) != TOPIC_LEN:
        raise ValueError(f"not a Waku v1 content topic: {content_topic!r}")
    return raw


def content_topic(name: str) -> str:
    """The Waku v2 content topic of a name: ``/waku/1/0x<hex(topic(name))>/rfc26``."""
    return content_topic_of(topic(name))


@lru_cache(maxsize=1024)
def symmetric_key(name: str) -> bytes:
    """The 32-byte envelope key of a symmetric topic (PBKDF2-HMAC-SHA256, 65 356 iterations: slow; cached)."""
    return topic_symmetric_key(name)


@dataclass(frozen=True, slots=True)
class Topic:
    """A topic: its name, 4-byte Waku topic, content topic and, once derived, its symmetric key."""

    name: str
    topic: bytes
    content_topic: str
    sym_key: bytes | None = None

    def __repr__(self) -> str:  # never print the key
        keyed = ", keyed" if self.sym_key is not None else ""
        return f"Topic({self.name!r}, {self.content_topic}{keyed})"

    @classmethod
    def of(cls, name: str) -> Topic:
        """The topic of ``name``, without a key (cheap)."""
        t = topic(name)
        return cls(name, t, content_topic_of(t))

    def with_key(self) -> Topic:
        """This topic with its symmetric key derived (slow; keep the result). Idempotent."""
        if self.sym_key is not None:
            return self
        return replace(self, sym_key=symmetric_key(self.name))


def contact_code_topic(public: bytes) -> Topic:
    """The contact-code topic of an identity (symmetric; call :meth:`Topic.with_key` for its key)."""
    return Topic.of(contact_code_name(public))


def partitioned_topic(public: bytes) -> Topic:
    """The partitioned topic of an identity (asymmetric, no key)."""
    return Topic.of(partitioned_name(public))


def personal_topic(public: bytes) -> Topic:
    """The personal discovery topic of an identity (asymmetric, no key)."""
    return Topic.of(personal_name(public))


def negotiated_topic(secret: bytes) -> Topic:
    """The negotiated topic of a shared secret (symmetric; call :meth:`Topic.with_key` for its key)."""
    return Topic.of(negotiated_name(secret))


def legacy_discovery_topic() -> Topic:
    """The old shared ``contact-discovery`` topic."""
    return Topic.of(LEGACY_DISCOVERY_NAME)
