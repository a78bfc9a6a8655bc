"""Signed prekey bundles: create, sign, serialize, parse, verify (spec §3).

A bundle lists, for one identity, the signed prekey (SPK) of each of its installations. It is signed with the
identity key over status-go's signature material with a nanosecond timestamp; status-go re-signs it for every
message, Sottovoce re-attaches one signed bundle for a short while (``encryption.BUNDLE_REUSE_NS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from google.protobuf.message import DecodeError

from proto import encryption_pb2 as pb

from ..crypto.hashing import keccak256
from ..crypto.keys import KeyPair, check_compressed, uncompress
from ..crypto.signatures import SignatureMemo, sign, verify_signer
from ..errors import InvalidBundle, InvalidPublicKey, MalformedMessage

PROTOCOL_VERSION = 1
NO_INSTALLATION_ID = "none"
MAX_FUTURE_NS = 24 * 3600 * 10**9
"""A bundle signed further than this in the future (by the receiver's clock) is rejected."""


@dataclass(frozen=True, slots=True)
class SignedPreKey:
    """One installation's entry: its SPK (33 bytes, exactly as on the wire), SPK version, protocol version."""

    public: bytes
    version: int
    protocol_version: int = PROTOCOL_VERSION


@dataclass(frozen=True, slots=True)
class Bundle:
    """A signed bundle. ``timestamp`` is Unix nanoseconds at signing (0 for legacy bundles)."""

    identity: bytes
    signed_prekeys: Mapping[str, SignedPreKey] = field(repr=False)
    signature: bytes = field(repr=False)
    timestamp: int

    def __copy__(self) -> Bundle:  # immutable: a copy is the bundle itself (its mapping proxy cannot be copied)
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Bundle:
        return self

    @staticmethod
    def signature_material(prekeys: Mapping[str, SignedPreKey], timestamp: int) -> bytes:
        """status-go's material: ``id ‖ SPK ‖ dec(version)`` for ids in byte order, then ``dec(timestamp)``."""
        parts = []
        for installation_id in sorted(prekeys, key=lambda i: i.encode()):
            entry = prekeys[installation_id]
            parts += [installation_id.encode(), entry.public, str(entry.version).encode()]
        if timestamp != 0:
            parts.append(str(timestamp).encode())
        return b"".join(parts)

    @classmethod
    def create(cls, identity: KeyPair, prekeys: Mapping[str, SignedPreKey], timestamp: int) -> Bundle:
        """Sign ``prekeys`` with the identity key at ``timestamp`` (ns)."""
        frozen = MappingProxyType(dict(prekeys))
        digest = keccak256(cls.signature_material(frozen, timestamp))
        return cls(identity.public, frozen, sign(digest, identity.private), timestamp)

    def verify(self, memo: SignatureMemo | None = None) -> bytes:
        """Check the signature against the identity key; returns the identity's 65-byte uncompressed key.

        With a ``memo``, a bundle whose exact signature, signed content and identity were verified there before
        is not recovered again. Raises :class:`InvalidPublicKey` or an
        :class:`~engine.errors.InvalidSignature` subclass.
        """
        check_compressed(self.identity)
        expected = uncompress(self.identity)
        digest = keccak256(self.signature_material(self.signed_prekeys, self.timestamp))
        (verify_signer if memo is None else memo.verify_signer)(digest, self.signature, expected)
        return expected

    def check_well_formed(self, now_ns: int) -> None:
        """Policy checks beyond the signature: valid SPK points, sane ids and a timestamp not in the future."""
        if not self.signed_prekeys:
            raise InvalidBundle("bundle lists no installation")
        for installation_id, entry in self.signed_prekeys.items():
            if not installation_id or installation_id == NO_INSTALLATION_ID:
                raise InvalidBundle(f"bundle has a reserved installation id {installation_id!r}")
            try:
                check_compressed(entry.public)
            except InvalidPublicKey as exc:
                raise InvalidBundle("bundle has a malformed signed prekey") from exc
        if self.timestamp < 0 or self.timestamp > now_ns + MAX_FUTURE_NS:
            raise InvalidBundle("bundle timestamp is absurd")

    def to_proto(self) -> pb.Bundle:
        message = pb.Bundle(identity=self.identity, signature=self.signature, timestamp=self.timestamp)
        for installation_id, entry in self.signed_prekeys.items():
            target = message.signed_pre_keys[installation_id]
            target.signed_pre_key = entry.public
            target.version = entry.version
            target.protocol_version = entry.protocol_version
        return message

    def serialize(self) -> bytes:
        """Deterministic wire bytes (map entries in key order, as the vectors record them)."""
        return self.to_proto().SerializeToString(deterministic=True)

    @classmethod
    def from_proto(cls, message: pb.Bundle) -> Bundle:
        prekeys = {
            installation_id: SignedPreKey(entry.signed_pre_key, entry.version, entry.protocol_version)
            for installation_id, entry in sorted(message.signed_pre_keys.items())
        }  # sorted: protobuf map order differs between processes, and installations are learned in this order
        return cls(bytes(message.identity), MappingProxyType(prekeys), bytes(message.signature),
                   message.timestamp)

    @classmethod
    def parse(cls, data: bytes) -> Bundle:
        """Parse wire bytes; raises :class:`MalformedMessage` for anything that is not a ``Bundle``."""
        message = pb.Bundle()
        try:
            message.ParseFromString(data)
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise MalformedMessage("malformed bundle") from exc
        return cls.from_proto(message)
