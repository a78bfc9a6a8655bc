"""A peer's bundles cannot grow our state without bound: past MAX_KNOWN_INSTALLATIONS of one account, the oldest
installations are forgotten with their prekeys and sessions, in memory and in the store; the conversation goes
on with the peer's real installation."""

from __future__ import annotations

import os

from engine.crypto.keys import KeyPair
from engine.protocol.bundle import Bundle, SignedPreKey
from engine.protocol.state import MAX_KNOWN_INSTALLATIONS, Table
from engine.sessions.engine import SessionEngine
from tests.helpers import SeededEntropy
from tests.unit.test_session_engine import SECOND, Clock, Relay, talk


def test_a_flood_of_installations_in_signed_bundles_is_bounded() -> None:
    relay = Relay(Clock())
    alice, bob = relay.device("alice"), relay.device("bob")
    talk(relay, alice, bob, "hello")
    talk(relay, bob, alice, "hi")
    protocol = bob.engine.core.protocol
    for round_ in range(3):  # Bob's own signature over 40 made-up installations, three times
        relay.clock.advance(SECOND)
        genuine = protocol.own_bundle(relay.clock(), bob.engine.entropy)
        fake = KeyPair.from_private(os.urandom(32)).public
        entries = {**genuine.signed_prekeys, **{f"fake-{round_}-{n:02}": SignedPreKey(fake, 1) for n in range(40)}}
        flood = Bundle.create(bob.engine.account.identity, entries, relay.clock())
        protocol.own_bundle = lambda *_, b=flood: b  # type: ignore[method-assign]
        talk(relay, bob, alice, f"flood {round_}")
        del protocol.own_bundle

    def kept(engine: SessionEngine) -> int:
        return sum(1 for identity, _ in engine.core.state.installations if identity == bob.identity)

    assert kept(alice.engine) == MAX_KNOWN_INSTALLATIONS
    stored = [key for key, _ in alice.store.records(Table.INSTALLATIONS) if key.startswith(bob.identity)]
    assert len(stored) == MAX_KNOWN_INSTALLATIONS
    assert len(list(alice.store.records(Table.PEER_PREKEYS))) <= MAX_KNOWN_INSTALLATIONS + 1
    reloaded = SessionEngine(alice.store, SeededEntropy("reloaded"), relay.clock)
    assert kept(reloaded) == MAX_KNOWN_INSTALLATIONS

    relay.clock.advance(SECOND)
    talk(relay, bob, alice, "back to normal")  # Bob's real bundle again: his installation is the newest
    assert (bob.identity, bob.installation_id) in alice.engine.core.state.installations
    talk(relay, alice, bob, "and Bob reads this")
