"""Own signed prekeys are deleted 30 days after they were retired (engine.protocol.state.PREKEY_RETENTION_NS):
the state and the store stop holding their private keys, and a peer that still starts a session on one gets
our current bundle in answer and starts again."""

from __future__ import annotations

import itertools

from engine.protocol.state import BUNDLE_REFRESH_NS, PREKEY_RETENTION_NS, Table
from engine.sessions.engine import SessionEngine
from tests.unit.test_session_engine import T0, Clock, Relay

DAY = BUNDLE_REFRESH_NS


def _rotate_daily(relay: Relay, engine: SessionEngine, days: int) -> None:
    for _ in range(days):
        relay.clock.advance(DAY + 1)
        engine.own_bundle()  # rotates the SPK once it is 24 h old


def test_retired_prekeys_are_deleted_after_the_retention_from_state_and_store() -> None:
    relay = Relay(Clock())
    bob = relay.device("bob")
    first = bob.engine.own_bundle().signed_prekeys[bob.installation_id].public
    _rotate_daily(relay, bob.engine, 45)
    now = relay.clock()
    own = bob.engine.core.protocol.state.own_prekeys
    versions = [p.version for p in own]
    assert versions == sorted(versions) and versions[-1] == 46
    # every SPK kept was current less than the retention ago; the one before the oldest kept was not
    successors = {p.version: q.created_ns for p, q in itertools.pairwise(own)}
    assert all(created >= now - PREKEY_RETENTION_NS for created in successors.values())
    assert len(own) <= PREKEY_RETENTION_NS // DAY + 2
    assert bob.engine.core.protocol.state.own_prekey_by_public(first) is None
    stored = sorted(int.from_bytes(key, "big") for key, _ in bob.store.records(Table.OWN_PREKEYS))
    assert stored == versions
    reloaded = SessionEngine(bob.store, bob.engine.entropy, bob.engine.clock)
    assert [p.version for p in reloaded.core.protocol.state.own_prekeys] == versions


def test_a_session_started_on_a_deleted_prekey_heals_with_our_new_bundle() -> None:
    relay = Relay(Clock(T0))
    alice, bob = relay.device("alice"), relay.device("bob")
    alice.engine.learn_bundle(bob.engine.own_bundle())  # a contact code Alice scanned long ago
    bob.engine.learn_bundle(alice.engine.own_bundle())
    _rotate_daily(relay, bob.engine, 32)
    relay.clock.advance(DAY)
    _, envelopes = relay.send(alice, bob, "on an old bundle")
    for data in envelopes:
        relay.deliver(data)
    assert "on an old bundle" not in bob.texts()
    assert "session_not_found" in bob.rejected()
    relay.settle()  # Bob's answer carries his current bundle
    _, envelopes = relay.send(alice, bob, "again")
    for data in envelopes:
        relay.deliver(data)
    assert "again" in bob.texts()


def test_a_bundle_learned_again_marks_nothing_to_write() -> None:
    """The same bundle rides on every message: learning it again must not rewrite the peer's prekeys."""
    relay = Relay(Clock())
    alice, bob = relay.device("alice"), relay.device("bob")
    bundle = bob.engine.own_bundle()
    state = alice.engine.core.protocol.state
    state.dirty.clear()
    alice.engine.core.protocol.process_bundle(bundle, relay.clock())
    assert (Table.PEER_PREKEYS, (bob.identity, bob.installation_id)) in state.dirty
    state.dirty.clear()
    alice.engine.core.protocol.process_bundle(bundle, relay.clock())
    assert not any(table is Table.PEER_PREKEYS for table, _ in state.dirty)
