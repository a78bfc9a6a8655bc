"""What a stolen key reads, on the real protocol core: the exact limits of forward secrecy in Sottovoce.

The thief is modelled as a fresh installation state built from what was stolen: bob's identity private key
(and, in the worse case, his signed prekeys from an unlocked store), with no sessions. It is handed every
ciphertext a relay operator could have recorded.
"""

from __future__ import annotations

import copy

import pytest

from engine.errors import SottovoceError
from engine.protocol.encryption import EncryptionProtocol
from engine.protocol.state import BUNDLE_REFRESH_NS, PREKEY_RETENTION_NS, ProtocolState
from tests.helpers import SeededEntropy, make_device

T0 = 1_700_000_000 * 10**9
DAY = 24 * 3600 * 10**9


def thief(victim: EncryptionProtocol, *, prekeys: bool) -> tuple[EncryptionProtocol, SeededEntropy]:
    state = ProtocolState(victim.state.identity, victim.state.installation_id)
    if prekeys:
        state.own_prekeys = copy.deepcopy(victim.state.own_prekeys)
    return EncryptionProtocol(state), SeededEntropy("thief")


def send(a: EncryptionProtocol, entropy: SeededEntropy, to: EncryptionProtocol, text: bytes, now: int = T0) -> bytes:
    return a.encrypt(to.state.identity.public, text, now, entropy).SerializeToString(deterministic=True)


def reads(reader: EncryptionProtocol, entropy: SeededEntropy, sender: EncryptionProtocol, wire: bytes,
          now: int = T0) -> bytes | None:
    try:
        return reader.decrypt(sender.state.identity.public, wire, now, entropy).plaintext
    except SottovoceError:
        return None


def test_the_dh_header_first_message_is_read_with_the_identity_key_alone() -> None:
    """A first message to a chat key whose bundle is unknown has no forward secrecy (spec §4.5)."""
    alice, ae = make_device("alice")
    bob, _ = make_device("bob")
    wire = send(alice, ae, bob, b"first, by chat key")
    burglar, te = thief(bob, prekeys=False)
    opened = burglar.decrypt(alice.state.identity.public, wire, T0 + 365 * DAY, te)
    assert (opened.plaintext, opened.forward_secret) == (b"first, by chat key", False)


def test_an_x3dh_first_message_needs_the_signed_prekey_as_well() -> None:
    alice, ae = make_device("alice")
    bob, be = make_device("bob")
    alice.process_public_bundle(bob.own_bundle(T0, be).serialize(), T0)
    wire = send(alice, ae, bob, b"first, after the QR code")
    assert reads(*thief(bob, prekeys=False), alice, wire) is None
    assert reads(*thief(bob, prekeys=True), alice, wire) == b"first, after the QR code"  # no one-time prekeys


def test_every_message_before_the_first_reply_is_exposed_and_none_after_it() -> None:
    """X3DH without one-time prekeys: identity + signed prekey open the whole first chain of a session; the
    first reply brings a DH ratchet step whose private keys never leave the live session."""
    alice, ae = make_device("alice")
    bob, be = make_device("bob")
    alice.process_public_bundle(bob.own_bundle(T0, be).serialize(), T0)
    early = [send(alice, ae, bob, b"one"), send(alice, ae, bob, b"two")]
    assert [reads(bob, be, alice, w) for w in early] == [b"one", b"two"]
    reply = send(bob, be, alice, b"bob answers")
    assert reads(alice, ae, bob, reply) == b"bob answers"
    later = send(alice, ae, bob, b"three")
    assert reads(bob, be, alice, later) == b"three"

    burglar, te = thief(bob, prekeys=True)
    assert [reads(burglar, te, alice, w) for w in early] == [b"one", b"two"]
    assert reads(burglar, te, alice, later) is None
    assert reads(bob, be, alice, early[0]) is None  # and bob's own live state no longer opens what it read


@pytest.mark.parametrize(("days", "exposed"), [(1, True), (30, True), (32, False), (365, False)])
def test_a_retired_signed_prekey_is_deleted_after_30_days_which_bounds_the_exposure(days: int,
                                                                                  exposed: bool) -> None:
    """A signed prekey rotates every 24 h of use and its private key is kept 30 days after it was retired
    (PREKEY_RETENTION_NS, the relay's retention: late first messages still open). A store stolen within those
    days opens a first chain captured on it; stolen later, it does not."""
    alice, ae = make_device("alice")
    bob, be = make_device("bob")
    alice.process_public_bundle(bob.own_bundle(T0, be).serialize(), T0)
    wire = send(alice, ae, bob, b"long ago")
    now = T0
    for _ in range(days):  # Bob uses his installation every day: it rotates once a day
        now += DAY + 1
        bob.own_bundle(now, be)
    assert len(bob.state.own_prekeys) <= PREKEY_RETENTION_NS // BUNDLE_REFRESH_NS + 2
    assert (reads(*thief(bob, prekeys=True), alice, wire, now) == b"long ago") is exposed
