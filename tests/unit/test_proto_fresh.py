"""The committed generated protobuf code must be what ``python -m proto.generate`` writes today."""

from __future__ import annotations

from pathlib import Path

from proto import generate


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    generate.generate(tmp_path)
    stale = [
        name for name in generate.generated_names()
        if (tmp_path / "proto" / name).read_bytes() != (generate.PROTO_DIR / name).read_bytes()
    ]
    assert stale == [], f"regenerate with 'python -m proto.generate': {stale}"


def test_unknown_and_community_fields_parse_and_are_ignored() -> None:
    from proto import encryption_pb2 as pb

    entry = pb.EncryptedMessageProtocol(payload=b"x")
    entry.HR_header.seq_no = 7
    entry.HR_header.keys.rekey_group.keys[3] = b"k"
    wire = entry.SerializeToString() + bytes([0xF8, 0x3E, 0x01])  # field 999, varint 1: unknown to everyone
    parsed = pb.EncryptedMessageProtocol.FromString(wire)
    assert parsed.payload == b"x" and parsed.HR_header.seq_no == 7
