"""Protobuf encoding exactly as status-go's Go runtime writes it, and strict parsing with typed errors.

Go (google.golang.org/protobuf v1.34.2) writes known fields in ascending field-number order, except that
in a message with a ``oneof`` every non-oneof field comes first and the set oneof member last
(spec §1 rule 1). Python's runtime writes pure field-number order, so :func:`go_marshal` re-orders.
Parsing skips unknown fields and known fields with the wrong wire type, like Go (§1 rule 4), and rejects
invalid UTF-8 in any string field (§1 rule 5).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from .errors import InvalidArgument, InvalidUtf8, MalformedPayload

M = TypeVar("M", bound=Message)
Field = Any  # a protobuf FieldDescriptor (upb or pure Python; the stubs disagree)
MessageType = Any  # a protobuf Descriptor

_LENGTH_DELIMITED = 2


def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _is_message(field: Field) -> bool:
    return bool(field.type == FieldDescriptor.TYPE_MESSAGE)


def _is_map(field: Field) -> bool:
    return _is_message(field) and field.message_type.GetOptions().map_entry


def _is_repeated(field: Field) -> bool:
    return bool(field.is_repeated)


def _in_real_oneof(field: Field) -> bool:
    """Member of a real oneof (a proto3 ``optional`` field sits alone in a synthetic ``_name`` oneof)."""
    oneof = field.containing_oneof
    if oneof is None:
        return False
    return not (len(oneof.fields) == 1 and oneof.name == "_" + field.name)


@cache
def _needs_go_order(descriptor: MessageType) -> bool:
    """Whether this message, or any message below it, has a real oneof (only then Go's order differs)."""
    return _search_oneof(descriptor, set())


def _search_oneof(descriptor: MessageType, seen: set[str]) -> bool:
    if descriptor.full_name in seen:
        return False
    seen.add(descriptor.full_name)
    if any(_in_real_oneof(f) for f in descriptor.fields):
        return True
    return any(_is_message(f) and _search_oneof(f.message_type, seen) for f in descriptor.fields)


def go_marshal(message: Message) -> bytes:
    """Serialize ``message`` byte for byte as status-go does (oneof members last; maps key-sorted)."""
    if not _needs_go_order(message.DESCRIPTOR):
        return message.SerializeToString(deterministic=True)
    present = message.ListFields()  # ascending field number
    plain = [(f, v) for f, v in present if not _in_real_oneof(f)]
    oneof = [(f, v) for f, v in present if _in_real_oneof(f)]
    out = bytearray()
    for field, value in plain + oneof:
        out += _encode_field(message, field, value)
    return bytes(out)


def _encode_field(message: Message, field: Field, value: Any) -> bytes:
    if _is_message(field) and not _is_map(field):
        tag = varint(field.number << 3 | _LENGTH_DELIMITED)
        items = value if _is_repeated(field) else [value]
        out = bytearray()
        for item in items:
            body = go_marshal(item)
            out += tag + varint(len(body)) + body
        return bytes(out)
    # scalars, strings, bytes, enums, packed repeated scalars and maps: the Python runtime's bytes for a
    # message holding only this field are Go's bytes
    single = type(message)()
    if _is_map(field):
        getattr(single, field.name).MergeFrom(value)
    elif _is_repeated(field):
        getattr(single, field.name).extend(value)
    else:
        setattr(single, field.name, value)
    return single.SerializeToString(deterministic=True)


def parse(cls: type[M], data: bytes) -> M:
    """Parse ``data`` as ``cls`` like Go's ``proto.Unmarshal``; raise InvalidUtf8 or MalformedPayload."""
    message = cls()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        if "utf-8" in str(exc).lower():
            raise InvalidUtf8() from exc
        raise MalformedPayload(f"cannot parse {cls.DESCRIPTOR.name}") from exc
    return message


def message_to_fields(message: Message) -> dict[str, Any]:
    """The set fields as plain data: bytes as hex, enums as ints, sub-messages as dicts (even when empty)."""
    out: dict[str, Any] = {}
    present: Sequence[tuple[Field, Any]] = message.ListFields()
    for field, value in present:
        if _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            out[field.name] = {k: _plain(value_field, v) for k, v in sorted(value.items())}
        elif _is_repeated(field):
            out[field.name] = [_plain(field, v) for v in value]
        else:
            out[field.name] = _plain(field, value)
    return out


def _plain(field: Field, value: Any) -> Any:
    if _is_message(field):
        return message_to_fields(value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return bytes(value).hex()
    return value


def message_from_fields(cls: type[M], fields: Mapping[str, Any]) -> M:
    """Build a ``cls`` from plain data as :func:`message_to_fields` returns it (bytes given as hex)."""
    message = cls()
    _fill(message, fields)
    return message


def _fill(message: Message, fields: Mapping[str, Any]) -> None:
    descriptor: MessageType = message.DESCRIPTOR
    for name, value in fields.items():
        field: Field = descriptor.fields_by_name.get(name)
        if field is None:
            raise InvalidArgument(f"{descriptor.name} has no field {name!r}")
        if _is_map(field):
            target = getattr(message, name)
            value_field = field.message_type.fields_by_name["value"]
            for key, item in value.items():
                if _is_message(value_field):
                    _fill(target[key], item)
                else:
                    target[key] = _scalar(value_field, item)
        elif _is_repeated(field):
            target = getattr(message, name)
            for item in value:
                if _is_message(field):
                    _fill(target.add(), item)
                else:
                    target.append(_scalar(field, item))
        elif _is_message(field):
            sub = getattr(message, name)
            sub.SetInParent()
            _fill(sub, value)
        else:
            setattr(message, name, _scalar(field, value))


def _scalar(field: Field, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_BYTES and isinstance(value, str):
        return bytes.fromhex(value)
    return value
