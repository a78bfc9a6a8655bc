"""``repr()`` of every object that holds key material shows no key: reprs end up in logs, tracebacks and
debuggers (pytest prints them on a failed assert), so they must not carry secrets.

Each object is built around known secret bytes; the repr may show public keys, never the secrets in any of
the forms of ``test_secret_scan.forms`` (raw as ``bytes`` repr, hex, base64).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from engine.crypto.keys import KeyPair
from engine.identity import identity_from_phrase
from engine.keyring import DatabaseKey, KeyCustody, ProfileInfo
from engine.protocol.ratchet import RatchetState
from engine.protocol.state import OwnPrekey, ProtocolState, Session
from engine.protocol.topics import Topic
from engine.protocol.waku import AsymmetricKey, SymmetricKey
from engine.sessions.accounts import Account, NewAccount
from tests.security.test_secret_scan import forms

PHRASE = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"


def pair() -> KeyPair:
    return KeyPair.from_private(os.urandom(32))


def secret(n: int = 32) -> bytes:
    return os.urandom(n)


def ratchet() -> tuple[RatchetState, list[bytes]]:
    shared, key, peer = secret(), pair(), pair()
    state = RatchetState.initiator(shared, key, peer.public)
    state.encrypt(b"hello")
    state.skipped[(peer.public, 3)] = (secret(), 0)
    return state, [shared, key.private, state.root_key, state.sending_chain, state.receiving_chain,
                   *(k for k, _ in state.skipped.values())]


def session() -> tuple[Session, list[bytes]]:
    state, keys = ratchet()
    shared = secret()
    return Session(secret(), pair().public, "install-1", shared, True, state, 1), [shared, *keys]


def protocol_state() -> tuple[ProtocolState, list[bytes]]:
    identity, prekey = pair(), pair()
    made, keys = session()
    negotiated = secret()
    state = ProtocolState(identity, "install-0", own_prekeys=[OwnPrekey(prekey, 1, 0)],
                          sessions={made.key: made}, shared_secrets={made.peer_identity: negotiated})
    return state, [identity.private, prekey.private, negotiated, *keys]


def _key_pair() -> tuple[object, list[bytes]]:
    key = pair()
    return key, [key.private]


def _account() -> tuple[object, list[bytes]]:
    key = pair()
    return Account(key, "install-0", 1, "Alice Liddell"), [key.private]


def _new_account() -> tuple[object, list[bytes]]:
    key = pair()
    return NewAccount(Account(key, "install-0", 1), PHRASE), [key.private, PHRASE.encode()]


def _identity() -> tuple[object, list[bytes]]:
    identity = identity_from_phrase(PHRASE)
    return identity, [identity.chat_key.private, PHRASE.encode()]


def _database_key() -> tuple[object, list[bytes]]:
    key = secret()
    return DatabaseKey(key, ProfileInfo("p", "keyring", b"check")), [key]


def _symmetric() -> tuple[object, list[bytes]]:
    key = secret()
    return SymmetricKey(key), [key]


def _asymmetric() -> tuple[object, list[bytes]]:
    key = secret()
    return AsymmetricKey(key), [key]


def _topic() -> tuple[object, list[bytes]]:
    topic = Topic.of("0xabc-contact-code").with_key()
    assert topic.sym_key is not None
    return topic, [topic.sym_key]


def _own_prekey() -> tuple[object, list[bytes]]:
    key = pair()
    return OwnPrekey(key, 1, 0), [key.private]


def _custody() -> tuple[object, list[bytes]]:
    passphrase = "Tweedledum and Tweedledee"
    return KeyCustody(environ={"SOTTOVOCE_PASSPHRASE": passphrase}), [passphrase.encode()]


CASES: dict[str, Callable[[], tuple[object, list[bytes]]]] = {
    "KeyPair": _key_pair,
    "Account": _account,
    "NewAccount": _new_account,
    "Identity": _identity,
    "DatabaseKey": _database_key,
    "SymmetricKey": _symmetric,
    "AsymmetricKey": _asymmetric,
    "Topic": _topic,
    "OwnPrekey": _own_prekey,
    "KeyCustody": _custody,
    "RatchetState": ratchet,
    "Session": session,
    "ProtocolState": protocol_state,
}


@pytest.mark.parametrize("name", list(CASES))
def test_repr_shows_no_key_material(name: str) -> None:
    obj, secrets = CASES[name]()
    text = (repr(obj) + str(obj)).encode()
    shown = [s.hex()[:16] for s in secrets if any(form in text for form in forms(s))]
    assert shown == [], f"{name} repr shows {len(shown)} secret(s): {text[:200]!r}"


def test_the_check_sees_a_key_in_a_plain_repr() -> None:
    key = secret()
    assert any(form in repr((key,)).encode() for form in forms(key))
    assert any(form in repr(key.hex()).encode() for form in forms(key))
