"""Checkers for status-go's encryption-layer vectors (``status-go-vectors.json``)."""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any

from google.protobuf.message import DecodeError

from proto import encryption_pb2 as pb

from ..crypto.ciphers import dr_encrypt, gcm_decrypt, gcm_encrypt
from ..crypto.hashing import keccak256
from ..crypto.kdf import kdf_ck, kdf_rk
from ..crypto.keys import KeyPair, ecdh
from ..errors import SottovoceError
from ..protocol.bundle import Bundle, SignedPreKey
from ..protocol.encryption import EncryptionProtocol
from ..protocol.entropy import BytesPurpose, KeyPurpose
from ..protocol.ratchet import RatchetHeader
from ..protocol.state import ProtocolState
from ..protocol.x3dh import x3dh_active, x3dh_passive
from .expect import equal, unhex
from .runner import Case, CaseFailure, Checker


def check_ecdh(case: Case) -> None:
    priv_a, priv_b = unhex(case["priv_a"]), unhex(case["priv_b"])
    expected = unhex(case["shared_secret"])
    equal("DH(a, B compressed)", ecdh(priv_a, unhex(case["pub_b"])), expected)
    equal("DH(a, B uncompressed)", ecdh(priv_a, unhex(case["pub_b_uncompressed"])), expected)
    equal("DH(b, A)", ecdh(priv_b, unhex(case["pub_a"])), expected)
    equal("public key of a", KeyPair.from_private(priv_a).public, unhex(case["pub_a"]))


def check_kdf_rk(case: Case) -> None:
    root, chain, header = kdf_rk(unhex(case["rk"]), unhex(case["dh_out"]))
    equal("root key", root, unhex(case["root_key"]))
    equal("chain key", chain, unhex(case["chain_key"]))
    equal("header key", header, unhex(case["header_key"]))


def check_kdf_ck(case: Case) -> None:
    chain = unhex(case["ck"])
    for index, step in enumerate(case["steps"]):
        chain, message_key = kdf_ck(chain)
        equal(f"step {index} chain key", chain, unhex(step["chain_key"]))
        equal(f"step {index} message key", message_key, unhex(step["message_key"]))


def check_dr_encrypt(case: Case) -> None:
    header = RatchetHeader(unhex(case["header_dh"]), case["header_n"], case["header_pn"])
    equal("associated data", header.associated_data(), unhex(case["ad"]))
    ciphertext = dr_encrypt(unhex(case["message_key"]), unhex(case["plaintext"]), header.associated_data())
    equal("ciphertext", ciphertext, unhex(case["ciphertext"]))


def check_bundle_sign(case: Case) -> None:
    identity = KeyPair.from_private(unhex(case["identity_priv"]))
    equal("identity", identity.public, unhex(case["identity_pub"]))
    prekeys = {
        installation_id: SignedPreKey(unhex(e["signed_pre_key"]), e["version"], e["protocol_version"])
        for installation_id, e in case["signed_pre_keys"].items()
    }
    material = Bundle.signature_material(prekeys, case["timestamp"])
    equal("signature material", material, unhex(case["signature_material"]))
    equal("signature digest", keccak256(material), unhex(case["signature_digest"]))
    bundle = Bundle.create(identity, prekeys, case["timestamp"])
    equal("signature", bundle.signature, unhex(case["signature"]))
    equal("serialized bundle", bundle.serialize(), unhex(case["bundle"]))
    equal("parsed bundle", Bundle.parse(unhex(case["bundle"])), bundle)


def check_bundle_verify(case: Case) -> None:
    expect = case["expect"]
    try:
        identity = Bundle.parse(unhex(case["bundle"])).verify()
    except SottovoceError as exc:
        if expect["valid"]:
            raise CaseFailure(f"rejected a valid bundle: {exc.code} ({exc})") from exc
        equal("error class", exc.code, expect["error_class"])
        return
    if not expect["valid"]:
        raise CaseFailure(f"accepted a bundle status-go rejects ({expect['error_class']})")
    equal("identity", identity, unhex(expect["identity_pub_uncompressed"]))
    equal("identity (compressed)", Bundle.parse(unhex(case["bundle"])).identity, unhex(expect["identity_pub"]))


def check_x3dh(case: Case) -> None:
    ik_a, ek_a = case["initiator_identity"], case["initiator_ephemeral"]
    ik_b, spk_b = case["responder_identity"], case["responder_signed_prekey"]
    equal("dh1", ecdh(unhex(ik_a["priv"]), unhex(spk_b["pub"])), unhex(case["dh1"]))
    equal("dh2", ecdh(unhex(ek_a["priv"]), unhex(ik_b["pub"])), unhex(case["dh2"]))
    equal("dh3", ecdh(unhex(ek_a["priv"]), unhex(spk_b["pub"])), unhex(case["dh3"]))
    active = x3dh_active(unhex(ik_a["priv"]), unhex(ek_a["priv"]), unhex(ik_b["pub"]), unhex(spk_b["pub"]))
    passive = x3dh_passive(unhex(spk_b["priv"]), unhex(ik_b["priv"]), unhex(ik_a["pub"]), unhex(ek_a["pub"]))
    equal("active shared secret", active, unhex(case["shared_secret_active"]))
    equal("passive shared secret", passive, unhex(case["shared_secret_passive"]))


class ScriptedEntropy:
    """Hands out, per event, exactly the keys status-go generated in that event (matched by purpose).

    A key the implementation asks for that status-go did not generate is a failure; keys status-go generated
    but the implementation did not need (e.g. a ratchet key status-go discarded after a failed MAC) are dropped
    at the end of the event.
    """

    def __init__(self, actor: str) -> None:
        self.actor = actor
        self.keys: dict[str, deque[KeyPair]] = defaultdict(deque)
        self.nonces: deque[bytes] = deque()

    def load(self, keys: list[KeyPair], purposes: list[str], nonces: list[bytes]) -> None:
        self.keys.clear()
        for key, purpose in zip(keys, purposes, strict=True):
            self.keys[purpose].append(key)
        self.nonces = deque(nonces)

    def new_key(self, purpose: KeyPurpose) -> KeyPair:
        queue = self.keys.get(purpose.value)
        if not queue:
            raise CaseFailure(f"{self.actor} generated a {purpose.value} key that status-go did not")
        return queue.popleft()

    def random_bytes(self, length: int, purpose: BytesPurpose) -> bytes:
        if purpose is BytesPurpose.GCM_NONCE and self.nonces:
            nonce = self.nonces.popleft()
            if len(nonce) == length:
                return nonce
        raise CaseFailure(f"{self.actor} drew {length} random bytes ({purpose.value}) status-go did not")


class Party:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.name: str = spec["name"]
        self.identity = KeyPair.from_private(unhex(spec["identity_priv"]))
        if self.identity.public != unhex(spec["identity_pub"]):
            raise CaseFailure(f"{self.name}: identity public key differs")
        self.keys = {k["index"]: KeyPair.from_private(unhex(k["priv"])) for k in spec["keys"]}
        self.entropy = ScriptedEntropy(self.name)
        # status-go signs a new bundle every time: replay it so, whatever the engine's reuse bound
        self.protocol = EncryptionProtocol(ProtocolState(self.identity, spec["installation_id"]), bundle_reuse_ns=0)


def _nonces_of(event: dict[str, Any]) -> list[bytes]:
    return [unhex(entry["payload"])[-12:] for entry in event.get("decoded", {}).values() if "dh" in entry]


def check_script(case: Case) -> None:
    """Replay a scripted exchange between status-go instances and compare every byte and outcome."""
    parties = {spec["name"]: Party(spec) for spec in case["parties"]}
    confirm = bool(case.get("receiver_confirms", False))
    sent: dict[str, bytes] = {}
    for number, event in enumerate(case["events"]):
        where = f"event {number} ({event['op']} {event.get('msg', '')})".replace(" )", ")")
        for party in parties.values():
            generated = [k for k in event.get("keys_generated", []) if k["actor"] == party.name]
            party.entropy.load([party.keys[k["index"]] for k in generated], [k["purpose"] for k in generated],
                               _nonces_of(event) if event.get("from") == party.name else [])
            for k in generated:
                if party.keys[k["index"]].public != unhex(k["pub"]):
                    raise CaseFailure(f"{where}: key list of {party.name} is inconsistent")
        try:
            _run_event(event, parties, sent, confirm, where)
        except CaseFailure as failure:
            raise CaseFailure(f"{where}: {failure}") from failure


def _run_event(event: dict[str, Any], parties: dict[str, Party], sent: dict[str, bytes], confirm: bool,
               where: str) -> None:
    op, now = event["op"], event["now_ns"]
    if op == "bundle":
        source, target = parties[event["from"]], parties[event["to"]]
        bundle = source.protocol.own_bundle(now, source.entropy).serialize()
        equal("bundle bytes", bundle, unhex(event["bundle"]))
        target.protocol.process_public_bundle(bundle, now)
    elif op == "send":
        source, target = parties[event["from"]], parties[event["to"]]
        plaintext = unhex(event["plaintext"])
        if event.get("api") == "BuildBundleAdvertiseMessage":
            message = source.protocol.encrypt_with_dh(target.identity.public, b"", now, source.entropy)
        else:
            message = source.protocol.encrypt(target.identity.public, plaintext, now, source.entropy)
        wire = message.SerializeToString(deterministic=True)
        if not event.get("wire_omitted"):
            _compare_send(event, message, wire)
        sent[event["msg"]] = wire
    elif op in ("deliver", "deliver_raw"):
        source, target = parties[event["from"]], parties[event["to"]]
        wire = unhex(event["protocol_message"]) if op == "deliver_raw" else sent[event["msg"]]
        expect = event["expect"]
        try:
            result = target.protocol.decrypt(source.identity.public, wire, now, target.entropy, confirm=confirm)
        except SottovoceError as exc:
            if expect["ok"]:
                raise CaseFailure(f"rejected: {exc.code} ({exc})") from exc
            if expect["error_class"] != "panic" and exc.code != expect["error_class"]:
                raise CaseFailure(f"rejected as {exc.code} ({exc}), expected {expect['error_class']}") from exc
            return
        if not expect["ok"]:
            raise CaseFailure(f"accepted, expected rejection {expect['error_class']}")
        equal("plaintext", result.plaintext, unhex(expect["plaintext"]))
    else:
        raise CaseFailure(f"unknown event op {op!r}")


def _compare_send(event: dict[str, Any], message: pb.ProtocolMessage, wire: bytes) -> None:
    expected_entries: dict[str, str] = event["encrypted_message"]
    equal("recipient installations", sorted(message.encrypted_message), sorted(expected_entries))
    for installation_id, expected in expected_entries.items():
        got = message.encrypted_message[installation_id].SerializeToString(deterministic=True)
        if got != unhex(expected):
            decoded = event["decoded"][installation_id]
            entry = message.encrypted_message[installation_id]
            if "dr" in decoded:
                equal("DR header", (entry.DR_header.key.hex(), entry.DR_header.n, entry.DR_header.pn,
                                    entry.DR_header.id.hex()),
                      (decoded["dr"]["key"], decoded["dr"]["n"], decoded["dr"]["pn"], decoded["dr"]["id"]))
            equal(f"entry for {installation_id}", got, unhex(expected))
    expected_wire = unhex(event["protocol_message"])
    if wire != expected_wire:
        theirs = pb.ProtocolMessage()
        try:
            theirs.ParseFromString(expected_wire)
        except DecodeError as exc:
            raise CaseFailure("recorded protocol message does not parse") from exc
        equal("bundle", message.bundles[0].SerializeToString(deterministic=True),
              theirs.bundles[0].SerializeToString(deterministic=True))
        equal("protocol message", wire, expected_wire)


def check_dh_header(case: Case) -> None:
    """A DH-header script; where a summary is given, its key, nonce and payload are checked on their own too."""
    summary = case.get("summary")
    if summary is not None:
        key = ecdh(unhex(summary["receiver_identity_priv"]), unhex(summary["ephemeral"]["pub"]))
        equal("symmetric key", key, unhex(summary["symmetric_key"]))
        payload = unhex(summary["payload"])
        equal("nonce", payload[-12:], unhex(summary["nonce"]))
        equal("payload", gcm_encrypt(key, unhex(summary["plaintext"]), unhex(summary["nonce"])), payload)
        equal("decrypted payload", gcm_decrypt(key, payload), unhex(summary["plaintext"]))
    check_script(case)


CHECKERS: dict[str, Checker] = {
    "ecdh": check_ecdh,
    "kdf_rk": check_kdf_rk,
    "kdf_ck": check_kdf_ck,
    "dr_encrypt": check_dr_encrypt,
    "bundle_sign": check_bundle_sign,
    "bundle_verify": check_bundle_verify,
    "x3dh": check_x3dh,
    "conversation": check_script,
    "decrypt_reject": check_script,
    "dh_header": check_dh_header,
}
