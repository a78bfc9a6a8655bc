"""A hub and a leaf node, both ``sottovoce relay`` processes on 127.0.0.1 as the README shows them: a Messenger on
the leaf reads and writes the hub's one stream (catch-up and live, both ways). Also: ``sottovoce relay`` prints
``relay: nats://HOST:PORT`` first, and SIGINT and SIGTERM both stop it (and its nats-server) with exit code 0."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from engine.transport.relay import LEAF_PORT_OFFSET, LOOPBACK, probe
from tests.integration.nats_fixtures import CliRelay, Recorder, create_messenger, relay_ports, requires_nats, run, until

pytestmark = [requires_nats, pytest.mark.timeout(90)]


def test_messenger_on_a_leaf_node_talks_to_one_on_the_hub(tmp_path: Path) -> None:
    hub_port, leaf_port = relay_ports(2)
    data = tmp_path / "data"
    hub = CliRelay("--listen", f"{LOOPBACK}:{hub_port}", "--store", str(tmp_path / "hub"), data_dir=data)
    leaf: CliRelay | None = None
    try:
        assert hub.first_line == f"relay: nats://{LOOPBACK}:{hub_port}"
        assert f"leaf nodes {LOOPBACK}:{hub_port + LEAF_PORT_OFFSET}" in hub.second_line
        leaf = CliRelay("--listen", f"{LOOPBACK}:{leaf_port}", "--store", str(tmp_path / "leaf"),
                        "--leaf-remote", f"nats-leaf://{LOOPBACK}:{hub_port + LEAF_PORT_OFFSET}", data_dir=data)
        assert leaf.first_line == f"relay: nats://{LOOPBACK}:{leaf_port}"
        assert "leaf node of" in leaf.second_line
        leaf_info = probe(LOOPBACK, leaf_port)
        assert leaf_info is not None and not leaf_info.get("jetstream")  # the leaf keeps no store
        leaf_url = leaf.url

        async def main() -> None:
            alice = await create_messenger(tmp_path, "alice", hub.url, display_name="alice")
            bob = await create_messenger(tmp_path, "bob", leaf_url, display_name="bobby")
            alice.add_contact(bob.contact_code(), "bob")
            bob.add_contact(alice.contact_code(), "alice")
            a_rec = Recorder(alice)
            await alice.start()
            # Bob is not running: the message waits in the hub's stream
            offline = await alice.send_text("bob", "written while you were away", wait=True, timeout=20)
            b_rec = Recorder(bob)
            await bob.start()
            await until(lambda: [m.id for m in b_rec.received] == [offline.id], 20, "catch-up through the leaf")
            reply = await bob.send_text("alice", "hello from the site", wait=True, timeout=20)
            await until(lambda: [m.id for m in a_rec.received] == [reply.id], 20, "the leaf's message on the hub")
            live = await alice.send_text("bob", "and live", wait=True, timeout=20)
            await until(lambda: [m.id for m in b_rec.received] == [offline.id, live.id], 20, "live through the leaf")
            assert all(m.forward_secret for m in [*a_rec.received, *b_rec.received])
            assert [m.text for m in bob.messages("alice")] == [
                "written while you were away", "hello from the site", "and live"]
            for r in (a_rec, b_rec):
                await r.close()
            await alice.close()
            await bob.close()

        run(main(), timeout=60)
    finally:
        leaf_code = leaf.stop(signal.SIGTERM) if leaf is not None else None
        hub_code = hub.stop(signal.SIGINT)
    assert (leaf_code, hub_code) == (0, 0)
    assert probe(LOOPBACK, leaf_port, 0.3) is None and probe(LOOPBACK, hub_port, 0.3) is None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sottovoce_relay_prints_its_url_first_and_stops_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    [port] = relay_ports(1)
    relay = CliRelay("--listen", f"{LOOPBACK}:{port}", "--store", str(tmp_path / "store"), data_dir=tmp_path)
    try:
        assert relay.first_line == f"relay: nats://{LOOPBACK}:{port}"
        info = probe(LOOPBACK, port)
        assert info is not None and info["jetstream"]
        name = info["server_name"]
    finally:
        code = relay.stop(sig)
    assert code == 0
    assert probe(LOOPBACK, port, 0.3) is None, "nats-server outlived sottovoce relay"
    again = CliRelay("--listen", f"{LOOPBACK}:{port}", "--store", str(tmp_path / "store"), data_dir=tmp_path)
    try:
        info = probe(LOOPBACK, port)
        assert info is not None and info["server_name"] == name, "the server name is kept in the store"
    finally:
        assert again.stop(sig) == 0
