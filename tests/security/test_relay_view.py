"""What a relay operator sees: every byte that reaches nats-server during a whole conversation.

A wiretap client subscribed to ``>`` on the test relay (127.0.0.1) records every subject, header and payload:
publishes, JetStream API calls and the deliveries to consumers. Three installations (alice, alice's paired
second installation, bob) exchange a contact request, its acceptance, messages both ways and the pairing.
No payload, subject or header may contain a text, a display name, a device name, a chat key, an identity
public key (in any encoding) or an installation id; envelope payloads are padded to 256-byte blocks.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest

from engine.crypto.keys import compress, uncompress
from engine.identity import parse_chat_key
from engine.messenger import Messenger
from engine.protocol.topics import contact_code_topic
from engine.protocol.waku import SymmetricKey, WakuMessage, open_payload
from tests.integration.nats_fixtures import CUSTODY, PASSPHRASE, requires_nats, run, start_relay

pytestmark = [requires_nats, pytest.mark.timeout(120)]

SYMMETRIC_OVERHEAD = 12 + 16
"""AES-GCM nonce and tag around a padded plaintext (contact-code and negotiated topics)."""
ASYMMETRIC_OVERHEAD = 65 + 16 + 32
"""go-ethereum ECIES: ephemeral public key, IV and HMAC around a padded plaintext (partitioned topics)."""


@dataclass(frozen=True)
class Seen:
    subject: str
    reply: str
    headers: dict[str, str]
    data: bytes

    def blob(self) -> bytes:
        head = "\n".join(f"{k}: {v}" for k, v in sorted(self.headers.items()))
        return b"\n".join([self.subject.encode(), self.reply.encode(), head.encode(), self.data])


def key_forms(chat_key: str) -> list[bytes]:
    """Every way a public key could leak: zQ3 text, raw compressed/uncompressed, hex, base64."""
    compressed = parse_chat_key(chat_key)
    forms = [chat_key.encode()]
    for raw in (compressed, uncompress(compressed)):
        forms += [raw, raw.hex().encode(), raw.hex().upper().encode(), base64.b64encode(raw)]
    return forms


async def create_messenger(tmp: Path, profile: str, url: str, display_name: str, device_name: str,
                           recovery_phrase: str | None = None) -> Messenger:
    return await Messenger.create(tmp / profile, display_name=display_name, device_name=device_name,
                                  recovery_phrase=recovery_phrase, passphrase=PASSPHRASE, custody=CUSTODY,
                                  transport_url=url)


async def conversation(tmp: Path, url: str, seen: list[Seen], chat_keys: dict[str, str]) -> dict[str, list[bytes]]:
    tap = await nats.connect(url, name="wiretap")

    async def record(msg: nats.aio.msg.Msg) -> None:
        seen.append(Seen(msg.subject, msg.reply or "", dict(msg.headers or {}), bytes(msg.data)))

    await tap.subscribe(">", cb=record)
    await tap.flush()
    alice = await create_messenger(tmp, "alice", url, "Alice Liddell", "rabbit-hole-laptop")
    bob = await create_messenger(tmp, "bob", url, "Bobby Tables", "drop-table-desktop")
    phrase = alice.recovery_phrase
    assert phrase is not None
    alice2 = await create_messenger(tmp, "alice2", url, "Alice Liddell", "looking-glass", phrase)
    texts = ["Meet me at the Mad Hatter's at four", "Bring the tarts, not the jam", "café ☕ naïve déjà vu"]
    request_text = "It is Alice from the tea party"
    secrets: dict[str, list[bytes]] = {}
    async with alice, bob, alice2:
        for m in (alice, bob, alice2):
            await m.start()
        alice.pair_device(alice2.pairing_code())
        alice.add_contact(bob.identity.chat_key, "bob")  # by chat key only: the first contact goes over the DH path
        await alice.send_contact_request("bob", request_text)
        await alice.sync(30)
        await bob.sync(30)
        bob.accept_contact_request(alice.identity.chat_key, "alice")
        await bob.send_text("alice", texts[0], wait=True, timeout=30)
        await alice.sync(30)
        await alice.send_text("bob", texts[1], wait=True, timeout=30)
        await alice2.sync(30)
        await alice2.send_text("bob", texts[2], wait=True, timeout=30)
        for m in (bob, alice, alice2, bob):
            await m.sync(30)
        assert [m.text for m in bob.messages("alice")][-3:] == texts
        assert [m.text for m in alice2.messages("bob")][-3:] == texts  # the pairing worked both ways
        secrets["texts"] = [t.encode() for t in [*texts, request_text]]
        secrets["names"] = [n.encode() for n in ["Alice Liddell", "Bobby Tables", "rabbit-hole-laptop",
                                                 "drop-table-desktop", "looking-glass"]]
        secrets["keys"] = key_forms(alice.identity.chat_key) + key_forms(bob.identity.chat_key)
        ids = [m.identity.installation_id for m in (alice, bob, alice2)]
        secrets["installations"] = [i.encode() for i in ids] + [i.replace("-", "").encode() for i in ids]
        secrets["phrase"] = [phrase.encode()]
        chat_keys.update(alice=alice.identity.chat_key, bob=bob.identity.chat_key)
        chat_keys["alice installations"] = f"{alice.identity.installation_id} {alice2.identity.installation_id}"
    await asyncio.sleep(0.2)
    await tap.drain()
    return secrets


@dataclass
class Capture:
    seen: list[Seen]
    secrets: dict[str, list[bytes]]
    chat_keys: dict[str, str]


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Capture]:
    tmp = tmp_path_factory.mktemp("relay-view")
    server = start_relay(tmp / "relay")
    try:
        seen: list[Seen] = []
        chat_keys: dict[str, str] = {}
        secrets = run(conversation(tmp, server.url, seen, chat_keys), timeout=100)
        yield Capture(seen, secrets, chat_keys)
    finally:
        server.stop()


def test_the_relay_sees_only_topics_sizes_and_timing(capture: Capture) -> None:
    seen, secrets = capture.seen, capture.secrets
    envelopes = [s for s in seen if s.subject.startswith("sottovoce.waku.")]
    assert len(envelopes) >= 8 and len(seen) > len(envelopes)  # publishes, plus API calls and deliveries
    for s in seen:
        blob = s.blob()
        for kind, needles in secrets.items():
            for needle in needles:
                assert needle not in blob, f"{kind} {needle!r} visible to the relay in {s.subject}"
    topics = set()
    for s in envelopes:
        topic_hex = s.subject.removeprefix("sottovoce.waku.")
        assert len(topic_hex) == 8 and int(topic_hex, 16) >= 0  # a 4-byte topic, nothing else in the subject
        topics.add(topic_hex)
        message = WakuMessage.from_bytes(s.data)
        assert message.content_topic == f"/waku/1/0x{topic_hex}/rfc26"
        assert message.timestamp_ns is not None  # the sender's clock, in the clear
        size = len(message.payload)
        assert (size - SYMMETRIC_OVERHEAD) % 256 == 0 or (size - ASYMMETRIC_OVERHEAD) % 256 == 0, size
        assert set(s.headers) <= {"Nats-Msg-Id", "Nats-Expected-Stream"}  # the message hash, the stream name
    print(f"\nrelay saw {len(seen)} NATS messages, {len(envelopes)} envelopes on {len(topics)} topics; "
          f"payload sizes {sorted({len(WakuMessage.from_bytes(s.data).payload) for s in envelopes})}")


def test_whoever_knows_a_chat_key_reads_its_contact_code_broadcast(capture: Capture) -> None:
    """The contact-code topic and its key derive from the public key alone (spec §9.3, as status-go): the
    broadcast (display name, bundle with installation ids and signed prekeys) is public to anyone who knows the
    chat key, the relay operator included; to anyone else it is as opaque as the rest."""
    alice = parse_chat_key(capture.chat_keys["alice"])
    topic = contact_code_topic(alice).with_key()
    assert topic.sym_key is not None
    subject = "sottovoce.waku." + topic.topic.hex()
    broadcasts = [s for s in capture.seen if s.subject == subject]
    assert broadcasts
    installations = set(capture.chat_keys["alice installations"].split())
    named = set()
    for broadcast in broadcasts:  # one from each of alice's installations
        opened = open_payload(WakuMessage.from_bytes(broadcast.data).payload, SymmetricKey(topic.sym_key))
        assert b"Alice Liddell" in opened.data
        assert opened.signer is not None and compress(opened.signer) == compress(alice)  # signed by alice
        named |= {i for i in installations if i.encode() in opened.data}
    assert named == installations
