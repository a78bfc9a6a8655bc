"""The encryption layer's state for one installation, as plain data (spec §3, §7, §8, §9.1).

status-go keeps these as SQL tables; here they are dictionaries of small records that the engine persists.
Every mutation goes through a method of :class:`ProtocolState` that records what changed in ``dirty``, so the
engine can write exactly those records in the transaction that commits the message.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import StrEnum

from ..crypto.keys import KeyPair, ecdh
from .ratchet import RatchetState

BUNDLE_REFRESH_NS = 86_400_000 * 10**6
"""Own signed prekeys rotate after 24 h."""
PREKEY_RETENTION_NS = 30 * BUNDLE_REFRESH_NS
"""A retired own SPK is deleted this long after its successor was made: the relay's 30 days, so an X3DH
message built on it can still arrive and be read while the relay holds it. Later, its private key is gone and
a compromise of this installation no longer reveals the first messages of sessions started on it (a peer that
still uses it gets our new bundle in answer and starts again)."""
MAX_ACTIVE_INSTALLATIONS = 3
"""Per identity, messages are encrypted to at most this many installations (newest first)."""
MAX_KNOWN_INSTALLATIONS = 16
"""Per other account, installations kept: beyond this the oldest are forgotten (with their prekeys and
sessions), so a peer's bundles cannot grow our state without bound. Only the newest three are ever written to,
and a peer can only push out its own installations. Our own account's are all kept (pairing state)."""

PeerKey = tuple[bytes, str]
"""``(compressed identity key, installation id)``."""
SessionKey = tuple[bytes, bytes, str]
"""``(bundle id = responder's SPK, compressed peer identity, peer installation id)``."""


class Table(StrEnum):
    """The kinds of records the engine persists."""

    OWN_PREKEYS = "own_prekeys"
    PEER_PREKEYS = "peer_prekeys"
    INSTALLATIONS = "installations"
    SESSIONS = "sessions"
    SECRETS = "secrets"


@dataclass(slots=True)
class OwnPrekey:
    """One of this installation's signed prekeys; kept :data:`PREKEY_RETENTION_NS` after it was retired."""

    key: KeyPair
    version: int
    created_ns: int
    expired: bool = False


@dataclass(slots=True)
class PeerPrekey:
    """A signed prekey learned from a verified bundle."""

    public: bytes
    version: int
    timestamp: int
    expired: bool = False


@dataclass(slots=True)
class Installation:
    """An installation of some identity (a contact's or one of our own siblings)."""

    identity: bytes
    installation_id: str
    protocol_version: int
    enabled: bool
    timestamp: int
    name: str = ""
    """Device name announced by a paired sibling (``SyncPairInstallation``)."""
    device_type: str = ""
    last_seen_ns: int = 0
    """When a message from this installation was last accepted here."""


@dataclass(slots=True, eq=False)
class Session:
    """An X3DH result plus its Double Ratchet state.

    ``pending_ephemeral`` is our ``C(EK_A)`` while we initiated and have not yet received a ratchet message on
    this session; ``peer_ephemeral`` is the initiator's ``C(EK_A)`` when we are the responder.
    """

    bundle_id: bytes
    peer_identity: bytes
    peer_installation: str
    shared_key: bytes
    initiator: bool
    ratchet: RatchetState
    created: int
    pending_ephemeral: bytes | None = None
    peer_ephemeral: bytes | None = None

    @property
    def key(self) -> SessionKey:
        return (self.bundle_id, self.peer_identity, self.peer_installation)

    def __repr__(self) -> str:  # no shared or ratchet key
        return (f"Session(peer={self.peer_identity.hex()}, installation={self.peer_installation!r}, "
                f"initiator={self.initiator}, created={self.created}, ratchet={self.ratchet!r})")


@dataclass
class ProtocolState:
    """Everything the encryption layer knows, for one installation of one identity."""

    identity: KeyPair
    installation_id: str
    own_prekeys: list[OwnPrekey] = field(default_factory=list)
    peer_prekeys: dict[PeerKey, list[PeerPrekey]] = field(default_factory=dict)
    installations: dict[PeerKey, Installation] = field(default_factory=dict)
    sessions: dict[SessionKey, Session] = field(default_factory=dict)
    shared_secrets: dict[bytes, bytes] = field(default_factory=dict)
    agreed_installations: dict[bytes, set[str]] = field(default_factory=dict)
    session_counter: int = 0
    session_counter_saved: int = 0
    """The counter as last written to the store (it is written only when it moved)."""
    dirty: set[tuple[Table, object]] = field(default_factory=set)

    def __repr__(self) -> str:  # counts only: private keys, secrets and sessions stay out of logs
        return (f"ProtocolState(installation_id={self.installation_id!r}, own_prekeys={len(self.own_prekeys)}, "
                f"installations={len(self.installations)}, sessions={len(self.sessions)})")

    # --- own signed prekeys -----------------------------------------------------------------------------

    def current_prekey(self) -> OwnPrekey | None:
        """The newest non-expired own SPK."""
        for prekey in reversed(self.own_prekeys):
            if not prekey.expired:
                return prekey
        return None

    def own_prekey_by_public(self, public: bytes) -> OwnPrekey | None:
        """Any own SPK (expired ones included) with this public key."""
        for prekey in self.own_prekeys:
            if prekey.key.public == public:
                return prekey
        return None

    def add_own_prekey(self, key: KeyPair, now_ns: int) -> OwnPrekey:
        """Expire every own SPK, add ``key`` with the next version, and delete the SPKs retired (succeeded by a
        newer one) more than :data:`PREKEY_RETENTION_NS` ago."""
        for prekey in self.own_prekeys:
            prekey.expired = True
        version = 1 + max((p.version for p in self.own_prekeys), default=0)
        prekey = OwnPrekey(key, version, now_ns)
        self.own_prekeys.append(prekey)
        kept = [p for p, successor in itertools.pairwise(self.own_prekeys)
                if successor.created_ns >= now_ns - PREKEY_RETENTION_NS]
        for gone in self.own_prekeys[:-1]:
            if gone not in kept:
                self.dirty.add((Table.OWN_PREKEYS, gone.version))
        self.own_prekeys = [*kept, prekey]
        self.dirty.add((Table.OWN_PREKEYS, None))
        return prekey

    # --- peers' signed prekeys --------------------------------------------------------------------------

    def learn_prekey(self, identity: bytes, installation_id: str, public: bytes, version: int,
                     timestamp: int) -> None:
        """Record an SPK from a verified bundle and expire older versions (spec §3.6, verified first)."""
        rows = self.peer_prekeys.setdefault((identity, installation_id), [])
        changed = False
        if not any(row.public == public for row in rows):
            rows.append(PeerPrekey(public, version, timestamp))
            changed = True
        for row in rows:
            if row.version < version and not row.expired:
                row.expired = True
                changed = True
        if changed:  # the same bundle rides on every message: most of the time nothing is new
            self.dirty.add((Table.PEER_PREKEYS, (identity, installation_id)))

    def peer_prekey(self, identity: bytes, installation_id: str) -> PeerPrekey | None:
        """The newest non-expired SPK of a peer installation (status-go's lowest-version quirk not copied)."""
        rows = [r for r in self.peer_prekeys.get((identity, installation_id), ()) if not r.expired]
        return max(rows, key=lambda r: r.version) if rows else None

    def peer_prekey_expired(self, identity: bytes, installation_id: str, public: bytes) -> bool:
        for row in self.peer_prekeys.get((identity, installation_id), ()):
            if row.public == public:
                return row.expired
        return True

    # --- installations ----------------------------------------------------------------------------------

    def learn_installation(self, identity: bytes, installation_id: str, protocol_version: int,
                           timestamp: int) -> bool:
        """Add or refresh an installation seen in a verified bundle; True when it is new (spec §8.2)."""
        key = (identity, installation_id)
        known = self.installations.get(key)
        if known is None:
            enabled = identity != self.identity.public  # own siblings start disabled until paired
            self.installations[key] = Installation(identity, installation_id, protocol_version, enabled,
                                                   timestamp)
            self.dirty.add((Table.INSTALLATIONS, key))
            if enabled:
                self._forget_oldest_installations(identity)
            return key in self.installations
        if known.timestamp < timestamp:
            known.timestamp = timestamp
            known.protocol_version = max(known.protocol_version, protocol_version)
            self.dirty.add((Table.INSTALLATIONS, key))
        return False

    def _forget_oldest_installations(self, identity: bytes) -> None:
        """Keep :data:`MAX_KNOWN_INSTALLATIONS` of another account's installations: the newest."""
        known = [i for i in self.installations.values() if i.identity == identity]
        if len(known) <= MAX_KNOWN_INSTALLATIONS:
            return
        known.sort(key=lambda i: (i.timestamp, i.installation_id))
        for gone in known[:len(known) - MAX_KNOWN_INSTALLATIONS]:
            key = (identity, gone.installation_id)
            del self.installations[key]
            self.dirty.add((Table.INSTALLATIONS, key))
            if self.peer_prekeys.pop(key, None) is not None:
                self.dirty.add((Table.PEER_PREKEYS, key))
            for session_key in [k for k in self.sessions if k[1:] == key]:
                del self.sessions[session_key]
                self.dirty.add((Table.SESSIONS, session_key))
            agreed = self.agreed_installations.get(identity)
            if agreed is not None and gone.installation_id in agreed:
                agreed.discard(gone.installation_id)
                self.dirty.add((Table.SECRETS, identity))

    def set_installation_enabled(self, identity: bytes, installation_id: str, enabled: bool) -> None:
        installation = self.installations[(identity, installation_id)]
        installation.enabled = enabled
        self.dirty.add((Table.INSTALLATIONS, (identity, installation_id)))

    def describe_installation(self, identity: bytes, installation_id: str, name: str, device_type: str) -> None:
        """Record the name and device type a sibling announced for itself."""
        installation = self.installations[(identity, installation_id)]
        installation.name, installation.device_type = name, device_type
        self.dirty.add((Table.INSTALLATIONS, (identity, installation_id)))

    def saw_installation(self, identity: bytes, installation_id: str, now_ns: int) -> None:
        """Note that a message from this installation was just accepted."""
        installation = self.installations.get((identity, installation_id))
        if installation is not None and installation.last_seen_ns < now_ns:
            installation.last_seen_ns = now_ns
            self.dirty.add((Table.INSTALLATIONS, (identity, installation_id)))

    def active_installations(self, identity: bytes) -> list[Installation]:
        """Enabled installations of ``identity`` other than this one, newest first, at most three."""
        found = [i for i in self.installations.values()
                 if i.identity == identity and i.enabled and i.installation_id != self.installation_id]
        # Newest first; ties (every entry of one bundle shares its timestamp) by id, so the choice is stable.
        found.sort(key=lambda i: (-i.timestamp, i.installation_id))
        return found[:MAX_ACTIVE_INSTALLATIONS]

    # --- sessions ---------------------------------------------------------------------------------------

    def usable_session(self, identity: bytes, installation_id: str) -> Session | None:
        """The session to send on: the oldest whose bundle id is not expired (spec §7.2-7.3)."""
        best: Session | None = None
        for session in self.sessions.values():
            if session.peer_identity != identity or session.peer_installation != installation_id:
                continue
            if session.initiator:
                if self.peer_prekey_expired(identity, installation_id, session.bundle_id):
                    continue
            else:
                own = self.own_prekey_by_public(session.bundle_id)
                if own is None or own.expired:
                    continue
            if best is None or session.created < best.created:
                best = session
        return best

    def put_session(self, session: Session) -> None:
        self.sessions[session.key] = session
        self.dirty.add((Table.SESSIONS, session.key))

    def next_session_number(self) -> int:
        self.session_counter += 1
        return self.session_counter

    def touch_session(self, session: Session) -> None:
        self.dirty.add((Table.SESSIONS, session.key))

    # --- negotiated secrets -----------------------------------------------------------------------------

    def negotiated_secret(self, identity: bytes) -> bytes:
        """The secret of the negotiated topic with ``identity`` (spec §9.1): stored, else computed."""
        stored = self.shared_secrets.get(identity)
        return stored if stored is not None else ecdh(self.identity.private, identity)

    def agreed(self, identity: bytes, installation_ids: list[str]) -> bool:
        """True when every one of ``installation_ids`` of ``identity`` agreed on the negotiated topic."""
        agreed = self.agreed_installations.get(identity, set())
        return all(installation_id in agreed for installation_id in installation_ids)

    def agree(self, identity: bytes, secret: bytes, installation_id: str) -> None:
        """Store the negotiated secret with ``identity`` (first one wins) and mark an installation agreed."""
        self.shared_secrets.setdefault(identity, secret)
        agreed = self.agreed_installations.setdefault(identity, set())
        if installation_id not in agreed:
            agreed.add(installation_id)
            self.dirty.add((Table.SECRETS, identity))
