"""``sottovoce bench ratchet``: the Double Ratchet's cost per message beside a floor measured in the same run.

Each scenario sends messages through the project's ratchet on the real wire format (an
``EncryptedMessageProtocol`` with its ``DRHeader``, serialized by the sender and parsed by the receiver) and
times encrypt + decrypt per message. The floor is the bare primitive calls one such message needs, made
directly on coincurve and cryptography in the same order and nothing else:

* ping-pong (every message answers the previous one, so each decrypt performs a DH ratchet step):
  sender KdfCK + message-key HKDF + AES-CTR + HMAC; receiver 2 ECDH, 2 KdfRK, one key generation, KdfCK,
  HKDF, HMAC, AES-CTR;
* burst (one way, chain steps only): KdfCK + HKDF + AES-CTR + HMAC on each side.

Rounds alternate between the project's code and the floor; the best round of each counts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import coincurve
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from proto import encryption_pb2 as pb

from ..crypto.kdf import MESSAGE_KEY_INFO, ROOT_INFO, ZERO_SALT
from ..crypto.keys import KeyPair
from ..entropy import SystemEntropy
from ..protocol.entropy import KeyPurpose
from ..protocol.ratchet import RatchetHeader, RatchetState

PLAINTEXT = bytes(range(128))
_SHA256 = hashes.SHA256()


@dataclass(frozen=True)
class RatchetFigures:
    """Microseconds per message (encrypt + decrypt) and their ratios to the floor."""

    messages: int
    pingpong_us: float
    floor_pingpong_us: float
    burst_us: float
    floor_burst_us: float

    @property
    def pingpong_ratio(self) -> float:
        return self.pingpong_us / self.floor_pingpong_us

    @property
    def burst_ratio(self) -> float:
        return self.burst_us / self.floor_burst_us

    def report_lines(self) -> list[str]:
        return [
            f"ratchet ping-pong: {self.pingpong_us:8.2f} us/msg   floor {self.floor_pingpong_us:8.2f} us/msg"
            f"   ratio {self.pingpong_ratio:.3f}x (target <= 1.10x)",
            f"ratchet burst:     {self.burst_us:8.2f} us/msg   floor {self.floor_burst_us:8.2f} us/msg"
            f"   ratio {self.burst_ratio:.3f}x (target <= 1.25x)",
        ]

    def as_dict(self) -> dict[str, float]:
        return {
            "messages": self.messages,
            "pingpong_us": round(self.pingpong_us, 3),
            "floor_pingpong_us": round(self.floor_pingpong_us, 3),
            "pingpong_ratio": round(self.pingpong_ratio, 4),
            "burst_us": round(self.burst_us, 3),
            "floor_burst_us": round(self.floor_burst_us, 3),
            "burst_ratio": round(self.burst_ratio, 4),
        }


# --- the project's ratchet on the wire format ----------------------------------------------------------------


def _pair() -> tuple[RatchetState, RatchetState]:
    entropy = SystemEntropy()
    shared = os.urandom(32)
    responder_prekey = entropy.new_key(KeyPurpose.SIGNED_PREKEY)
    alice = RatchetState.initiator(shared, entropy.new_key(KeyPurpose.RATCHET_INIT), responder_prekey.public)
    bob = RatchetState.responder(shared, responder_prekey)
    return alice, bob


def _send(sender: RatchetState, receiver: RatchetState, entropy: SystemEntropy, bundle_id: bytes) -> None:
    header, payload = sender.encrypt(PLAINTEXT)
    wire = pb.EncryptedMessageProtocol(
        DR_header=pb.DRHeader(key=header.key, n=header.n, pn=header.pn, id=bundle_id), payload=payload
    ).SerializeToString()
    entry = pb.EncryptedMessageProtocol.FromString(wire)
    dr = entry.DR_header
    if receiver.decrypt(RatchetHeader(dr.key, dr.n, dr.pn), entry.payload, entropy, confirm=True) != PLAINTEXT:
        raise AssertionError("ratchet round trip failed")


def _project_pingpong(messages: int) -> float:
    alice, bob = _pair()
    entropy, bundle_id = SystemEntropy(), bob.sending_key.public
    _send(alice, bob, entropy, bundle_id)  # the responder needs one message before it can answer
    start = time.perf_counter_ns()
    for index in range(messages):
        if index % 2:
            _send(alice, bob, entropy, bundle_id)
        else:
            _send(bob, alice, entropy, bundle_id)
    return (time.perf_counter_ns() - start) / messages / 1000


def _project_burst(messages: int) -> float:
    alice, bob = _pair()
    entropy, bundle_id = SystemEntropy(), bob.sending_key.public
    start = time.perf_counter_ns()
    for _ in range(messages):
        _send(alice, bob, entropy, bundle_id)
    return (time.perf_counter_ns() - start) / messages / 1000


# --- the floor: bare primitive calls --------------------------------------------------------------------------


def _mac(key: bytes, data: bytes) -> bytes:
    mac = hmac.HMAC(key, _SHA256)
    mac.update(data)
    return mac.finalize()


def _ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    return Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor().update(data)


def _floor_chain_side(chain: bytes, ad: bytes) -> bytes:
    """KdfCK, message-key expansion, AES-CTR and the MAC: one side of a chain-step message."""
    mac = hmac.HMAC(chain, _SHA256)
    mac_copy = mac.copy()
    mac.update(b"\x0f")
    mac.finalize()
    mac_copy.update(b"\x10")
    message_key = mac_copy.finalize()
    okm = HKDF(_SHA256, 80, ZERO_SALT, MESSAGE_KEY_INFO).derive(message_key)
    body = okm[64:] + _ctr(okm[:32], okm[64:], PLAINTEXT)
    return _mac(okm[32:64], ad + body)


def _floor_dh_step(private: bytes, remote: bytes, root: bytes) -> None:
    """What a DH ratchet step costs: ECDH, KdfRK, a new key pair, ECDH, KdfRK."""
    dh = coincurve.PublicKey(remote).multiply(private).format()[1:]
    HKDF(_SHA256, 96, root, ROOT_INFO).derive(dh)
    secret = os.urandom(32)
    coincurve.PublicKey.from_secret(secret).format()
    dh = coincurve.PublicKey(remote).multiply(secret).format()[1:]
    HKDF(_SHA256, 96, root, ROOT_INFO).derive(dh)


def _floor_pingpong(messages: int) -> float:
    key = KeyPair.from_private(os.urandom(32))
    remote = KeyPair.from_private(os.urandom(32)).public
    chain, ad = os.urandom(32), bytes(8) + key.public
    start = time.perf_counter_ns()
    for _ in range(messages):
        _floor_chain_side(chain, ad)  # sender
        _floor_dh_step(key.private, remote, chain)  # receiver: ratchet step ...
        _floor_chain_side(chain, ad)  # ... then the chain step and the MAC check / decryption
    return (time.perf_counter_ns() - start) / messages / 1000


def _floor_burst(messages: int) -> float:
    chain, ad = os.urandom(32), bytes(8) + KeyPair.from_private(os.urandom(32)).public
    start = time.perf_counter_ns()
    for _ in range(messages):
        _floor_chain_side(chain, ad)
        _floor_chain_side(chain, ad)
    return (time.perf_counter_ns() - start) / messages / 1000


def run(messages: int = 2000, repeat: int = 5) -> RatchetFigures:
    """Measure both scenarios; each figure is the best of ``repeat`` alternating rounds."""
    best: dict[str, float] = {}
    runs: dict[str, Callable[[int], float]] = {
        "pingpong": _project_pingpong,
        "floor_pingpong": _floor_pingpong,
        "burst": _project_burst,
        "floor_burst": _floor_burst,
    }
    for name, measure in runs.items():  # warm-up
        measure(min(messages, 200))
        best[name] = float("inf")
    for _ in range(repeat):
        for name, measure in runs.items():
            best[name] = min(best[name], measure(messages))
    return RatchetFigures(messages, best["pingpong"], best["floor_pingpong"], best["burst"], best["floor_burst"])
