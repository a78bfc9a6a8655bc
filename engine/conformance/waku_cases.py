"""Checkers for topic and Waku envelope vector cases (``topics``, ``waku_payload``, ``waku_message``)."""

from __future__ import annotations

from typing import Any

from ..crypto.hashing import keccak256
from ..crypto.keys import KeyPair, compress, uncompress
from ..errors import SottovoceError
from ..protocol import topics
from ..protocol.waku import (
    AsymmetricKey,
    DecodedPayload,
    EnvelopeKey,
    SymmetricKey,
    WakuMessage,
    decrypt_asymmetric,
    decrypt_symmetric,
    ecies_ephemeral_from_read,
    encode_plaintext,
    encrypt_asymmetric,
    encrypt_symmetric,
    gcm_nonce_from_reads,
    open_payload,
    padding_length,
    receive,
)
from .expect import equal, rejects, unhex
from .runner import Case, CaseFailure, Checker

# --- topics -----------------------------------------------------------------------------------------------


def _opt_hex(value: str | None) -> bytes | None:
    return None if value is None else unhex(value)


def _check_topic(what: str, expected: dict[str, Any], topic: topics.Topic) -> None:
    equal(f"{what} name", topic.name, expected["name"])
    equal(f"{what} topic", topic.topic, unhex(expected["topic"]))
    equal(f"{what} content topic", topic.content_topic, expected["content_topic"])
    if "sym_key" in expected:
        equal(f"{what} symmetric key", topic.with_key().sym_key, unhex(expected["sym_key"]))


def check_topics(case: Case) -> None:
    public = unhex(case["public_key"])
    if "public_key_compressed" in case:
        equal("compressed key", compress(public), unhex(case["public_key_compressed"]))
        equal("uncompressed key", uncompress(unhex(case["public_key_compressed"])), public)
    _check_topic("contact code", case["contact_code"], topics.contact_code_topic(public))
    _check_topic("partitioned", case["partitioned"], topics.partitioned_topic(public))
    _check_topic("personal discovery", case["personal_discovery"], topics.personal_topic(public))

    negotiated = case["negotiated"]
    mine = KeyPair.from_private(unhex(negotiated["my_priv"]))
    equal("negotiated my_pub", uncompress(mine.public), unhex(negotiated["my_pub"]))
    secret = topics.negotiated_secret(mine.private, public)
    equal("negotiated secret", secret, unhex(negotiated["secret"]))
    equal("negotiated chat id", topics.negotiated_chat_id(public), negotiated["chat_id"])
    _check_topic("negotiated", negotiated, topics.negotiated_topic(secret))


# --- waku_payload -----------------------------------------------------------------------------------------


def _key_of(case: Case) -> EnvelopeKey:
    if case["kind"] == "symmetric":
        return SymmetricKey(unhex(case["sym_key"]))
    if case["kind"] == "asymmetric":
        return AsymmetricKey(unhex(case["recipient_priv"]))
    raise CaseFailure(f"unknown payload kind {case['kind']!r}")


def _check_decoded(case: Case, expect: dict[str, Any], key: EnvelopeKey) -> None:
    """Compare a decode outcome (and the transport layer's verdict) with ``expect``."""
    payload = unhex(case["payload"])
    version = int(case.get("version", 1))
    if not expect["ok"]:
        rejects("decode", expect["error_class"], lambda: open_payload(payload, key, version=version))
        return
    decoded: DecodedPayload = open_payload(payload, key, version=version)
    equal("data", decoded.data, unhex(expect["data"]))
    if "padding" in expect:
        equal("padding", decoded.padding, _opt_hex(expect["padding"]) or b"")
    if "padding_length" in expect:
        equal("padding length", len(decoded.padding), expect["padding_length"])
    if "signature" in expect:
        equal("signature", decoded.signature, _opt_hex(expect["signature"]))
    if expect.get("signer_pub") is None:
        equal("signer", decoded.signer, None)
    else:
        equal("signer", decoded.signer and compress(decoded.signer), unhex(expect["signer_pub"]))
    if expect.get("signer_pub_uncompressed") is not None:
        equal("signer (uncompressed)", decoded.signer, unhex(expect["signer_pub_uncompressed"]))
    if "transport_accepts" in expect:
        if expect["transport_accepts"]:
            received = receive(payload, key, version=version)
            equal("received data", received.data, decoded.data)
            equal("received signer", received.signer_uncompressed, decoded.signer)
        else:
            rejects("transport", None, lambda: receive(payload, key, version=version))


def _read_lengths(random: dict[str, Any]) -> dict[str, list[int]]:
    lengths: dict[str, list[int]] = {}
    for entry in random.get("read_order", []):
        purpose, _, size = str(entry).partition(":")
        lengths.setdefault(purpose, []).append(int(size))
    return lengths


def _check_encode(case: Case) -> None:
    signer = KeyPair.from_private(unhex(case["signer"]["priv"]))
    equal("signer pub", signer.public, unhex(case["signer"]["pub"]))
    data, random = unhex(case["data"]), case["random"]
    padding = unhex(random["padding"])
    equal("padding length", padding_length(len(data)), len(padding))
    reads = _read_lengths(random)
    if "padding" in reads:
        equal("padding read", reads["padding"], [len(padding)])

    plaintext = encode_plaintext(data, padding, signer.private)
    equal("plaintext", plaintext, unhex(case["plaintext"]))
    equal("signing digest", keccak256(plaintext[:-65]), unhex(case["signing_digest"]))
    equal("signature", plaintext[-65:], unhex(case["signature"]))

    if case["kind"] == "symmetric":
        nonce = gcm_nonce_from_reads(unhex(random["nonce_read_x"]), unhex(random["nonce_read_y"]))
        equal("nonce", nonce, unhex(random["nonce"]))
        key = unhex(case["sym_key"])
        payload = encrypt_symmetric(plaintext, key, nonce)
        equal("payload", payload, unhex(case["payload"]))
        equal("round trip", decrypt_symmetric(payload, key), plaintext)
    else:
        ephemeral = ecies_ephemeral_from_read(unhex(random["ecies_ephemeral_read"]))
        equal("ephemeral private", ephemeral.private, unhex(random["ecies_ephemeral_priv"]))
        equal("ephemeral public", uncompress(ephemeral.public), unhex(random["ecies_ephemeral_pub"]))
        recipient = KeyPair.from_private(unhex(case["recipient_priv"]))
        equal("recipient pub", uncompress(recipient.public), unhex(case["recipient_pub"]))
        iv = unhex(random["ecies_iv"])
        payload = encrypt_asymmetric(plaintext, unhex(case["recipient_pub"]), ephemeral, iv)
        equal("payload", payload, unhex(case["payload"]))
        equal("round trip", decrypt_asymmetric(payload, recipient.private), plaintext)
    _check_decoded(case, case["decoded"], _key_of(case))


def check_waku_payload(case: Case) -> None:
    op = case.get("op")
    if op == "encode":
        _check_encode(case)
    elif op == "decode":
        _check_decoded(case, case["expect"], _key_of(case))
    else:
        raise CaseFailure(f"unknown waku_payload op {op!r}")


# --- waku_message -----------------------------------------------------------------------------------------


def check_waku_message(case: Case) -> None:
    equal("content topic", topics.content_topic(case["topic_name"]), case["content_topic"])
    message = WakuMessage(
        payload=unhex(case["payload"]),
        content_topic=case["content_topic"],
        timestamp_ns=case.get("timestamp_ns"),
        version=case.get("version"),
        meta=_opt_hex(case.get("meta")),
        ephemeral=case.get("ephemeral"),
    )
    wire = unhex(case["waku_message"])
    equal("serialized WakuMessage", message.to_bytes(), wire)
    equal("parsed WakuMessage", WakuMessage.from_bytes(wire), message)
    for entry in case.get("hashes", []):
        pubsub = entry["pubsub_topic"]
        equal(f"hash on {pubsub}", message.hash(pubsub), unhex(entry["message_hash"]))
    if "received_sent_s" in case:
        equal("sent seconds", message.sent_s, case["received_sent_s"])


def _typed(check: Checker) -> Checker:
    """Report an unexpected typed rejection as a one-line disagreement."""

    def run(case: Case) -> None:
        try:
            check(case)
        except SottovoceError as exc:
            raise CaseFailure(f"unexpected rejection {exc.code}: {exc}") from exc

    return run


CHECKERS: dict[str, Checker] = {
    "topics": _typed(check_topics),
    "waku_payload": _typed(check_waku_payload),
    "waku_message": _typed(check_waku_message),
}
