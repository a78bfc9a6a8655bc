"""Checkers for the application vector cases: AMMs, validation, MVDS datasync and segmentation.

Every expected value comes from the case. Receive-side checks run the real pipeline pieces
(``metadata.parse`` → ``validation.validate``, ``datasync.application_bodies`` → ``MvdsNode``,
``segmentation.Reassembler``) and compare their results with what status-go did.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from google.protobuf.message import Message

from ..crypto.hashing import keccak256, sha256
from ..crypto.keys import compress, uncompress
from ..protocol.application import datasync, messages, metadata, segmentation, validation, wire
from ..protocol.application.datasync import DatasyncPayload, MvdsNode
from ..protocol.application.errors import MalformedDatasync
from .expect import equal, rejects, unhex
from .runner import Case, CaseFailure, Checker

_INNER_BY_NAME: dict[str, type[Message]] = {
    cls.DESCRIPTOR.name: cls for cls in validation.INNER_MESSAGES.values()
}


def _is_generated_alias(name: str) -> bool:
    """status-go ``IsAlias``: three words, title-cased, adjective adjective animal."""
    adjectives, animals = _alias_words()
    words = name.split()
    if len(words) != 3:
        return False
    title = [w[:1].upper() + w[1:] for w in words]
    return title[0] in adjectives and title[1] in adjectives and title[2] in animals


@cache
def _alias_words() -> tuple[frozenset[str], frozenset[str]]:
    try:  # the identity engine's copies of status-go's word lists
        from ..identity import wordlists
    except ImportError:  # pragma: no cover - only while the identity engine is not there
        return frozenset(), frozenset()
    return frozenset(wordlists.adjectives()), frozenset(wordlists.animals())


def _normalized(value: Any) -> Any:
    """Drop default scalars (0, "", False, []) so 'fields' written with explicit zeros compare equal."""
    if isinstance(value, Mapping):
        return {k: _normalized(v) for k, v in value.items() if isinstance(v, Mapping) or v not in (0, "", [], None)}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


# --- app_message_wrap ------------------------------------------------------------------------------------


def check_app_message_wrap(case: Case) -> None:
    cls = _INNER_BY_NAME.get(case["inner_message"])
    if cls is None:
        raise CaseFailure(f"no protobuf for {case['inner_message']}")
    message = wire.message_from_fields(cls, case["fields"])
    payload = messages.encode(message)
    equal("payload", payload, unhex(case["payload"]))
    equal("amm type of the inner message", messages.amm_type_of(message), case["amm_type"])
    equal("amm_type_name", metadata.type_name(case["amm_type"]), case["amm_type_name"])
    equal("signing_digest", keccak256(payload), unhex(case["signing_digest"]))
    wrapped = metadata.wrap(payload, case["amm_type"], unhex(case["signer"]["priv"]))
    equal("signature", wrapped.signature, unhex(case["signature"]))
    equal("amm", wrapped.amm, unhex(case["amm"]))
    equal("message_id", wrapped.message_id, case["message_id"])
    # and back: the receiver recovers the signer and decodes the same fields
    parsed = metadata.parse(wrapped.amm)
    equal("recovered author", parsed.author, unhex(case["signer"]["pub_uncompressed"]))
    decoded = wire.parse(cls, parsed.payload)
    equal("decoded fields", _normalized(wire.message_to_fields(decoded)), _normalized(case["fields"]))
    equal("re-encoded payload", messages.encode(decoded), payload)


# --- app_message_parse -----------------------------------------------------------------------------------


def check_app_message_parse(case: Case) -> None:
    expect = case["expect"]
    amm = unhex(case["amm"])
    signer = unhex(case["transport_signer_pub"])
    if not expect["parsed"]:
        rejects("parse", expect["error_class"], lambda: metadata.parse(amm, signer))
        return
    parsed = metadata.parse(amm, signer)
    _check_parsed(parsed, expect)
    if "author_pub_uncompressed" in expect:
        author_u = expect["author_pub_uncompressed"]
        equal("author_pub_uncompressed", parsed.author, None if author_u is None else unhex(author_u))
    effective = parsed.effective_sender
    equal("effective_sender_pub", None if effective is None else compress(effective),
          unhex(expect["effective_sender_pub"]))
    context = validation.ReceiveContext(
        own_identity=unhex(case["receiver_pub"]),
        whisper_timestamp_ms=case["whisper_timestamp_ms"],
        is_generated_alias=_is_generated_alias,
        now_ms=case.get("now_ms"),
    )
    verdict = validation.validate(parsed, context)
    equal("accepted", verdict.accepted, expect["accepted"])
    equal("error_class", verdict.error_class, None if expect["accepted"] else expect["error_class"])
    equal("inner_message", verdict.inner_name, expect.get("inner_message"))
    if "decoded" in expect:
        if verdict.inner is None:
            raise CaseFailure("inner message not decoded")
        equal("decoded", _normalized(wire.message_to_fields(verdict.inner)), _normalized(expect["decoded"]))


def _check_parsed(parsed: metadata.ParsedMessage, expect: Mapping[str, Any]) -> None:
    equal("signed", parsed.signed, expect["signed"])
    author = expect["author_pub"]
    equal("author_pub", parsed.author_compressed, None if author is None else unhex(author))
    equal("message_id", parsed.message_id, expect["message_id"])
    equal("amm_type", parsed.type, expect["amm_type"])
    if "amm_type_name" in expect:
        equal("amm_type_name", parsed.type_name, expect["amm_type_name"])
    equal("payload", parsed.payload, unhex(expect["payload"]))


# --- datasync --------------------------------------------------------------------------------------------


def _decoded_payload(payload: DatasyncPayload) -> dict[str, Any]:
    return {
        "acks": [a.hex() for a in payload.acks],
        "offers": [o.hex() for o in payload.offers],
        "requests": [r.hex() for r in payload.requests],
        "messages": [{"group_id": m.group_id.hex(), "timestamp": m.timestamp, "body": m.body.hex(),
                      "mvds_id": m.id.hex()} for m in payload.messages],
        "group_offers": [{"group_id": g.hex(), "message_ids": [i.hex() for i in ids]}
                         for g, ids in payload.group_offers],
    }


def _tick_until_output(node: MvdsNode, limit: int) -> list[datasync.Outgoing]:
    for _ in range(limit):
        out = node.tick()
        if out:
            return out
    raise CaseFailure(f"no payload dispatched within {limit} ticks")


def check_datasync_wrap(case: Case) -> None:
    sender = case["sender"]
    private = unhex(sender["priv"])
    recipient = unhex(case["recipient_pub"])
    peer = uncompress(recipient)
    group = datasync.group_id(unhex(sender["pub"]), recipient)
    if "group_id" in case:
        equal("group_id", group, unhex(case["group_id"]))
    node = MvdsNode(jitter=lambda: 0)
    inputs = case.get("inputs", [])
    for i, item in enumerate(inputs):
        wrapped = metadata.wrap(unhex(item["inner_payload"]), item["amm_type"], private)
        equal(f"inputs[{i}].message_id", wrapped.message_id, item["message_id"])
        node.append_message(group, peer, wrapped.amm, case["mvds_clock_s"])
    if inputs and node.tick():
        raise CaseFailure("a message went out at the tick of the epoch it was queued in (BATCH: next epoch)")
    for item in case.get("received", []):
        node.receive(uncompress(unhex(item["from_pub"])), datasync.unwrap(unhex(item["plaintext"])))
    out = _tick_until_output(node, 3)
    equal("payloads dispatched", [o.peer for o in out], [peer])
    equal("payload", out[0].plaintext, unhex(case["payload"]))
    decoded = datasync.unwrap(out[0].plaintext)
    equal("decoded", _decoded_payload(decoded), case["decoded"])
    ids = [metadata.parse(m.body).message_id for m in decoded.messages]
    equal("application_message_ids", ids, case["application_message_ids"])
    if "pending_confirmation_datasync_id" in case:
        wanted = case["pending_confirmation_datasync_id"]
        if wanted not in [m.id.hex() for m in decoded.messages]:
            raise CaseFailure("pending_confirmation_datasync_id is not the id of a carried message")
    if "retransmitted_payload" in case:
        again = _tick_until_output(node, datasync.BACKOFF_TICKS + datasync.JITTER_TICKS + 1)
        equal("retransmitted_payload", again[0].plaintext, unhex(case["retransmitted_payload"]))


def check_datasync_parse(case: Case) -> None:
    expect = case["expect"]
    plaintext = unhex(case["plaintext"])
    sender = unhex(case["sender_pub"])
    unwrapped = datasync.application_bodies(plaintext)
    equal("is_datasync", unwrapped.payload is not None, expect["is_datasync"])
    if unwrapped.payload is None:
        rejects("unwrap", MalformedDatasync.code, lambda: datasync.unwrap(plaintext))
    else:
        equal("datasync", _decoded_payload(unwrapped.payload), expect["datasync"])
    wanted = expect["application_messages"]
    equal("application message count", len(unwrapped.bodies), len(wanted))
    for i, (body, item) in enumerate(zip(unwrapped.bodies, wanted, strict=True)):
        if not item["parsed"]:
            rejects(f"application_messages[{i}]", item["error_class"], _parser(body, sender))
            continue
        _check_parsed(metadata.parse(body, sender), item)
    node = MvdsNode()
    peer = uncompress(sender)
    if unwrapped.payload is not None:
        node.receive(peer, unwrapped.payload)
    acks = [a.hex() for o in node.tick() if o.peer == peer for a in o.payload.acks]
    equal("acks_sent_next_tick", acks, expect["acks_sent_next_tick"])


def _parser(body: bytes, sender: bytes) -> Callable[[], metadata.ParsedMessage]:
    return lambda: metadata.parse(body, sender)


# --- segment ---------------------------------------------------------------------------------------------

_GENERATOR = "byte[i] = (i * 31 + 7) mod 251, for i in 0..payload_length-1"


def _case_payload(case: Case) -> bytes:
    if "payload" in case:
        return unhex(case["payload"])
    generator = case["payload_generator"]
    if generator["formula"] != _GENERATOR:
        raise CaseFailure(f"unknown payload generator {generator['formula']!r}")
    payload = bytes((i * 31 + 7) % 251 for i in range(case["payload_length"]))
    equal("generated payload keccak256", keccak256(payload), unhex(generator["payload_keccak256"]))
    if "payload_sha256" in generator:
        equal("generated payload sha256", sha256(payload), unhex(generator["payload_sha256"]))
    return payload


def _check_sent_segment(n: int, got: bytes, expect: Mapping[str, Any]) -> None:
    what = f"segments[{n}]"
    if expect["kind"] == "unsegmented":
        if "payload" in expect:
            equal(what, got, unhex(expect["payload"]))
        return
    if "serialized" in expect:
        equal(what, got, unhex(expect["serialized"]))
    else:
        equal(f"{what} length", len(got), expect["serialized_length"])
        equal(f"{what} prefix", got[: len(unhex(expect["serialized_prefix"]))], unhex(expect["serialized_prefix"]))
        equal(f"{what} keccak256", keccak256(got), unhex(expect["serialized_keccak256"]))
    segment = segmentation.parse_segment(got)
    equal(f"{what} kind", "parity" if segment.is_parity else "data", expect["kind"])
    for name in ("index", "segments_count", "parity_segment_index", "parity_segments_count"):
        equal(f"{what}.{name}", getattr(segment, name), expect[name])
    if "payload_keccak256" in expect:
        equal(f"{what} payload keccak256", keccak256(segment.payload), unhex(expect["payload_keccak256"]))


def check_segment(case: Case) -> None:
    payload = _case_payload(case)
    equal("payload_length", len(payload), case["payload_length"])
    equal("entire_message_hash", keccak256(payload), unhex(case["entire_message_hash"]))
    sent = segmentation.segment_message(payload, case["segment_size"])
    equal("segments sent", len(sent), case.get("segment_count_sent", len(case["segments"])))
    for n, (got, expect) in enumerate(zip(sent, case["segments"], strict=True)):
        _check_sent_segment(n, got, expect)
    signers = {"transport_signer": unhex(case["transport_signer_pub"]),
               "other_signer": unhex(case["other_signer_pub"])}
    for scenario in case.get("reassembly", []):
        receiver = segmentation.Reassembler()
        for step, delivery in enumerate(scenario["deliveries"]):
            what = f"{scenario['name']}[{step}]"
            data = unhex(delivery["raw"]) if "raw" in delivery else sent[delivery["segment"]]
            result = receiver.receive(data, signers[delivery.get("from", "transport_signer")])
            wanted = delivery["expect"]
            equal(f"{what} outcome", result.outcome.value, wanted["outcome"])
            if "stops_processing" in wanted:
                equal(f"{what} stops_processing", result.outcome.stops_processing, wanted["stops_processing"])
            if result.outcome is segmentation.Outcome.COMPLETE:
                whole = result.data or b""
                if "payload" in wanted:
                    equal(f"{what} payload", whole, unhex(wanted["payload"]))
                if "payload_length" in wanted:
                    equal(f"{what} payload_length", len(whole), wanted["payload_length"])
                if "payload_keccak256" in wanted:
                    equal(f"{what} payload keccak256", keccak256(whole), unhex(wanted["payload_keccak256"]))
            elif not result.outcome.stops_processing:
                equal(f"{what} continues with the raw bytes", result.data, data)


CHECKERS: dict[str, Checker] = {
    "app_message_wrap": check_app_message_wrap,
    "app_message_parse": check_app_message_parse,
    "datasync_wrap": check_datasync_wrap,
    "datasync_parse": check_datasync_parse,
    "segment": check_segment,
}
