"""The encryption layer's state as store records, and back (``proto/local_state.proto``).

Each :class:`~engine.protocol.state.Table` is one record kind of the session store; the keys are plain byte
strings built from the record's identifying fields, the values serialized protobuf records. :func:`save_dirty`
writes exactly what :attr:`ProtocolState.dirty` names, inside the caller's transaction; :func:`load_state`
rebuilds the whole state. Corrupted records raise :class:`~engine.errors.MalformedMessage` (a damaged store is
reported, never half-loaded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, cast

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage

from proto import local_state_pb2 as pb

from ..crypto.keys import KeyPair
from ..errors import MalformedMessage, SottovoceError
from ..protocol.serialization import ratchet_from_bytes, ratchet_to_bytes
from ..protocol.state import (
    Installation,
    OwnPrekey,
    PeerKey,
    PeerPrekey,
    ProtocolState,
    Session,
    SessionKey,
    Table,
)
from ..store.port import StoreReader, StoreWriter

ACCOUNT_META = "account"
SESSION_COUNTER_META = "session_counter"
_KEY_LEN = 33
_Record = TypeVar("_Record", bound=ProtoMessage)


@dataclass(frozen=True, slots=True)
class Account:
    """Who this installation is: the account's identity key, its own installation id and device details."""

    identity: KeyPair
    installation_id: str
    created_ns: int
    display_name: str = ""
    device_name: str = ""
    device_type: str = ""

    def __repr__(self) -> str:  # never print the key
        return f"Account({self.installation_id!r}, created_ns={self.created_ns})"


def account_to_bytes(account: Account) -> bytes:
    return pb.AccountRecord(identity_private=account.identity.private, installation_id=account.installation_id,
                            created_ns=account.created_ns, display_name=account.display_name,
                            device_name=account.device_name,
                            device_type=account.device_type).SerializeToString(deterministic=True)


def account_from_bytes(data: bytes) -> Account:
    record = parse_record(pb.AccountRecord(), data, "account")
    try:
        identity = KeyPair.from_private(bytes(record.identity_private))
    except SottovoceError as exc:
        raise MalformedMessage("stored account has an invalid identity key") from exc
    if not record.installation_id:
        raise MalformedMessage("stored account has no installation id")
    return Account(identity, record.installation_id, record.created_ns, record.display_name, record.device_name,
                   record.device_type)


def load_account(store: StoreReader) -> Account | None:
    data = store.meta(ACCOUNT_META)
    return None if data is None else account_from_bytes(data)


# --- keys --------------------------------------------------------------------------------------------------


def peer_key(identity: bytes, installation_id: str) -> bytes:
    return identity + installation_id.encode()


def session_key(bundle_id: bytes, identity: bytes, installation_id: str) -> bytes:
    return bundle_id + identity + installation_id.encode()


def _split_peer(key: bytes) -> tuple[bytes, str]:
    if len(key) < _KEY_LEN:
        raise MalformedMessage("stored record key too short")
    try:
        return key[:_KEY_LEN], key[_KEY_LEN:].decode()
    except UnicodeDecodeError as exc:
        raise MalformedMessage("stored record key is not UTF-8") from exc


# --- writing -----------------------------------------------------------------------------------------------


def save_dirty(state: ProtocolState, writer: StoreWriter) -> int:
    """Write every record ``state.dirty`` names, then clear it; returns how many records were written."""
    written = 0
    for table, key in sorted(state.dirty, key=lambda item: (item[0].value, repr(item[1]))):
        written += _save(state, writer, table, key)
    state.dirty.clear()
    if state.session_counter != state.session_counter_saved:  # it moves only when a session is created
        writer.put_meta(SESSION_COUNTER_META, state.session_counter.to_bytes(8, "big"))
        state.session_counter_saved = state.session_counter
    return written


def _save(state: ProtocolState, writer: StoreWriter, table: Table, key: object) -> int:
    if table is Table.OWN_PREKEYS:
        if isinstance(key, int):  # a deleted SPK's version
            writer.delete_record(table, key.to_bytes(4, "big"))
            return 1
        for prekey in state.own_prekeys:
            writer.put_record(table, prekey.version.to_bytes(4, "big"), _own_prekey(prekey))
        return len(state.own_prekeys)
    if table is Table.PEER_PREKEYS:
        identity, installation_id = cast(PeerKey, key)
        if (identity, installation_id) not in state.peer_prekeys:  # forgotten
            writer.delete_record(table, peer_key(identity, installation_id))
            return 1
        rows = state.peer_prekeys[(identity, installation_id)]
        prekeys = pb.PeerPrekeysRecord(prekeys=[
            pb.PeerPrekeyRecord(public_key=r.public, version=r.version, timestamp=r.timestamp, expired=r.expired)
            for r in rows])
        writer.put_record(table, peer_key(identity, installation_id), prekeys.SerializeToString(deterministic=True))
        return 1
    if table is Table.INSTALLATIONS:
        identity, installation_id = cast(PeerKey, key)
        inst = state.installations.get((identity, installation_id))
        if inst is None:  # forgotten
            writer.delete_record(table, peer_key(identity, installation_id))
            return 1
        writer.put_record(table, peer_key(identity, installation_id), pb.InstallationRecord(
            protocol_version=inst.protocol_version, enabled=inst.enabled, timestamp=inst.timestamp,
            name=inst.name, device_type=inst.device_type, last_seen_ns=inst.last_seen_ns,
        ).SerializeToString(deterministic=True))
        return 1
    if table is Table.SESSIONS:
        bundle_id, identity, installation_id = cast(SessionKey, key)
        session = state.sessions.get((bundle_id, identity, installation_id))
        if session is None:  # forgotten
            writer.delete_record(table, session_key(bundle_id, identity, installation_id))
            return 1
        writer.put_record(table, session_key(bundle_id, identity, installation_id), session_to_bytes(session))
        return 1
    identity = cast(bytes, key)  # Table.SECRETS
    record = pb.SharedSecretRecord(secret=state.shared_secrets[identity],
                                   agreed_installations=sorted(state.agreed_installations.get(identity, ())))
    writer.put_record(table, identity, record.SerializeToString(deterministic=True))
    return 1


def _own_prekey(prekey: OwnPrekey) -> bytes:
    return pb.OwnPrekeyRecord(private_key=prekey.key.private, version=prekey.version, created_ns=prekey.created_ns,
                              expired=prekey.expired).SerializeToString(deterministic=True)


def session_to_bytes(session: Session) -> bytes:
    return pb.SessionRecord(
        shared_key=session.shared_key, initiator=session.initiator, created=session.created,
        pending_ephemeral=session.pending_ephemeral or b"", peer_ephemeral=session.peer_ephemeral or b"",
        ratchet=ratchet_to_bytes(session.ratchet),
    ).SerializeToString(deterministic=True)


def session_from_bytes(key: bytes, data: bytes) -> Session:
    """One stored session (``key`` as written by :func:`save_dirty`)."""
    bundle_id = key[:_KEY_LEN]
    identity, installation_id = _split_peer(key[_KEY_LEN:])
    record = parse_record(pb.SessionRecord(), data, "session")
    if len(record.shared_key) != 32:
        raise MalformedMessage("stored session has a bad shared key")
    return Session(bundle_id, identity, installation_id, bytes(record.shared_key), record.initiator,
                   ratchet_from_bytes(bytes(record.ratchet)), record.created,
                   pending_ephemeral=bytes(record.pending_ephemeral) or None,
                   peer_ephemeral=bytes(record.peer_ephemeral) or None)


# --- loading -----------------------------------------------------------------------------------------------


def load_state(store: StoreReader, account: Account) -> ProtocolState:
    """The encryption layer's state of ``account`` as committed in ``store``."""
    state = ProtocolState(account.identity, account.installation_id)
    for _, data in store.records(Table.OWN_PREKEYS):
        own = parse_record(pb.OwnPrekeyRecord(), data, "own prekey")
        try:
            key = KeyPair.from_private(bytes(own.private_key))
        except SottovoceError as exc:
            raise MalformedMessage("stored prekey is invalid") from exc
        state.own_prekeys.append(OwnPrekey(key, own.version, own.created_ns, own.expired))
    state.own_prekeys.sort(key=lambda p: p.version)
    for key_bytes, data in store.records(Table.PEER_PREKEYS):
        peer = _split_peer(key_bytes)
        rows = parse_record(pb.PeerPrekeysRecord(), data, "peer prekeys")
        state.peer_prekeys[peer] = [PeerPrekey(bytes(r.public_key), r.version, r.timestamp, r.expired)
                                    for r in rows.prekeys]
    for key_bytes, data in store.records(Table.INSTALLATIONS):
        identity, installation_id = _split_peer(key_bytes)
        inst = parse_record(pb.InstallationRecord(), data, "installation")
        state.installations[(identity, installation_id)] = Installation(
            identity, installation_id, inst.protocol_version, inst.enabled, inst.timestamp, inst.name,
            inst.device_type, inst.last_seen_ns)
    for key_bytes, data in store.records(Table.SESSIONS):
        session = session_from_bytes(key_bytes, data)
        state.sessions[session.key] = session
    for key_bytes, data in store.records(Table.SECRETS):
        secret = parse_record(pb.SharedSecretRecord(), data, "shared secret")
        state.shared_secrets[key_bytes] = bytes(secret.secret)
        state.agreed_installations[key_bytes] = set(secret.agreed_installations)
    state.session_counter = state.session_counter_saved = _session_counter(store.meta(SESSION_COUNTER_META))
    return state


def _session_counter(data: bytes | None) -> int:
    """The stored session counter: 8 bytes big-endian, as :func:`save_dirty` writes it, with room to grow."""
    return 0 if data is None else stored_uint64(data, "session counter")


def stored_uint64(data: bytes, what: str) -> int:
    """A counter or clock stored as 8 bytes big-endian and below 2^63 (SQLite's integers), else corrupted."""
    value = int.from_bytes(data, "big")
    if len(data) != 8 or value >= 1 << 63:
        raise MalformedMessage(f"stored {what} is corrupted")
    return value


def parse_record(record: _Record, data: bytes, what: str) -> _Record:
    """Parse a stored protobuf record into ``record``; :class:`MalformedMessage` names ``what`` if corrupted."""
    try:
        record.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise MalformedMessage(f"stored {what} record is corrupted") from exc
    return record
