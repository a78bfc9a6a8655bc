"""The Double Ratchet with status-go's ``EthereumCrypto`` provider and limits (spec §5).

No header encryption. The associated data is exactly the encoded header ``LE32(N) ‖ LE32(PN) ‖ C(DHs)``.
Decryption computes on local copies and writes to the state only once the MAC has verified, so a rejected
message leaves the state exactly as it was. Message keys of decrypted messages are deleted when the caller
confirms the message as processed (``confirm=True``), which is what the engine always does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import NamedTuple

from ..crypto.ciphers import dr_decrypt, dr_encrypt
from ..crypto.kdf import kdf_ck, kdf_rk
from ..crypto.keys import KeyPair, ecdh
from ..errors import DecryptionFailed, MessageKeyDeleted, TooManySkippedKeys
from .entropy import Entropy, KeyPurpose

MAX_SKIP = 1000
"""Most message keys skipped in one chain by one message."""
MAX_KEEP = 3000
"""Keys whose sequence number is this far behind the newest are deleted."""
MAX_MESSAGE_KEYS_PER_SESSION = 2000
"""Most message keys kept per session (the newest ones)."""
_UINT32 = 2**32
_PACK_COUNTERS = struct.Struct("<II").pack


class RatchetHeader(NamedTuple):
    """The Double Ratchet header: sender's ratchet key (33 bytes), message number, previous chain length."""

    key: bytes
    n: int
    pn: int

    def associated_data(self) -> bytes:
        return _PACK_COUNTERS(self.n, self.pn) + self.key


SkippedKeys = dict[tuple[bytes, int], tuple[bytes, int]]
"""``(ratchet key, N) -> (message key, sequence number)``, in insertion (= sequence) order."""


@dataclass(slots=True, eq=False)
class RatchetState:
    """One party's state of one session."""

    root_key: bytes
    sending_key: KeyPair
    remote_key: bytes
    sending_chain: bytes
    receiving_chain: bytes
    sent: int = 0
    received: int = 0
    previous_sent: int = 0
    keys_count: int = 0
    skipped: SkippedKeys = field(default_factory=dict)

    def __repr__(self) -> str:  # the counters only: root, chain and message keys never reach a log
        return (f"RatchetState(sent={self.sent}, received={self.received}, previous_sent={self.previous_sent}, "
                f"skipped={len(self.skipped)})")

    @classmethod
    def initiator(cls, shared_key: bytes, ratchet_key: KeyPair, peer_signed_prekey: bytes) -> RatchetState:
        """State of the X3DH initiator: first remote ratchet key is the responder's SPK."""
        root, chain, _ = kdf_rk(shared_key, ecdh(ratchet_key.private, peer_signed_prekey))
        return cls(root, ratchet_key, peer_signed_prekey, chain, shared_key)

    @classmethod
    def responder(cls, shared_key: bytes, signed_prekey: KeyPair) -> RatchetState:
        """State of the X3DH responder: its SPK is the first ratchet key; both chains start at SK."""
        return cls(shared_key, signed_prekey, b"", shared_key, shared_key)

    def encrypt(self, plaintext: bytes) -> tuple[RatchetHeader, bytes]:
        """RatchetEncrypt: one chain step, then ``IV ‖ ciphertext ‖ MAC``."""
        if self.sent >= _UINT32 - 1:
            raise OverflowError("sending chain exhausted")
        header = RatchetHeader(self.sending_key.public, self.sent, self.previous_sent)
        self.sending_chain, message_key = kdf_ck(self.sending_chain)
        self.sent += 1
        return header, dr_encrypt(message_key, plaintext, header.associated_data())

    def decrypt(self, header: RatchetHeader, payload: bytes, entropy: Entropy, *, confirm: bool) -> bytes:
        """RatchetDecrypt (spec §5.5). On any error nothing in the state changes.

        Raises :class:`DecryptionFailed` (bad MAC, short payload), :class:`TooManySkippedKeys`,
        :class:`MessageKeyDeleted` (replay or a key already gone) or ``InvalidPublicKey`` (bad ratchet key).
        """
        slot = (header.key, header.n)
        stored = self.skipped.get(slot)
        if stored is not None:
            try:
                plaintext = dr_decrypt(stored[0], payload, header.associated_data())
            except DecryptionFailed as exc:
                raise DecryptionFailed(f"can't decrypt skipped message: {exc}") from exc
            if confirm:
                del self.skipped[slot]
            return plaintext

        remote, received, chain, root = self.remote_key, self.received, self.receiving_chain, self.root_key
        staged: list[tuple[tuple[bytes, int], bytes]] = []
        stepped = header.key != remote
        if stepped:
            chain, received = _skip(staged, remote, chain, received, header.pn)
            root, chain, _ = kdf_rk(root, ecdh(self.sending_key.private, header.key))
            remote, received = header.key, 0
        if header.n != received:  # the next message in order needs no skipping
            chain, received = _skip(staged, remote, chain, received, header.n)
        chain, message_key = kdf_ck(chain)
        plaintext = dr_decrypt(message_key, payload, header.associated_data())

        # Verified: commit.
        if stepped:
            self.previous_sent, self.sent = self.sent, 0
            self.sending_key = entropy.new_key(KeyPurpose.RATCHET_STEP)
            root, self.sending_chain, _ = kdf_rk(root, ecdh(self.sending_key.private, remote))
        self.root_key, self.remote_key = root, remote
        self.receiving_chain, self.received = chain, received + 1
        skipped, seq = self.skipped, self.keys_count
        for key_slot, key in staged:
            skipped.pop(key_slot, None)  # a reused ratchet key must not leave an entry out of sequence order
            skipped[key_slot] = (key, seq)
            seq += 1
        skipped[slot] = (message_key, seq)
        self.keys_count = seq + 1
        if len(skipped) > MAX_MESSAGE_KEYS_PER_SESSION or self.keys_count > MAX_KEEP:
            self._prune()
        if confirm:
            skipped.pop(slot, None)
        return plaintext

    def _prune(self) -> None:
        skipped = self.skipped
        excess = len(skipped) - MAX_MESSAGE_KEYS_PER_SESSION
        oldest_kept = self.keys_count - MAX_KEEP
        if excess <= 0 and oldest_kept < 0:
            return
        for slot, (_, seq) in list(skipped.items()):
            if excess > 0 or seq <= oldest_kept:
                del skipped[slot]
                excess -= 1
            else:
                break

    def copy(self) -> RatchetState:
        """An independent copy (the skipped-key table is copied too)."""
        return RatchetState(self.root_key, self.sending_key, self.remote_key, self.sending_chain,
                            self.receiving_chain, self.sent, self.received, self.previous_sent,
                            self.keys_count, dict(self.skipped))


def _skip(staged: list[tuple[tuple[bytes, int], bytes]], remote: bytes, chain: bytes, received: int,
          until: int) -> tuple[bytes, int]:
    if until < received:
        raise MessageKeyDeleted("bad until: probably an out-of-order message that was deleted")
    if until > received + MAX_SKIP:
        raise TooManySkippedKeys(f"too many messages: {until - received}")
    while received < until:
        chain, message_key = kdf_ck(chain)
        staged.append(((remote, received), message_key))
        received += 1
    return chain, received
