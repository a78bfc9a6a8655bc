"""Small helpers shared by the checkers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import SottovoceError
from .runner import CaseFailure

T = TypeVar("T")


def unhex(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def _show(value: Any) -> str:
    return value.hex() if isinstance(value, bytes | bytearray) else repr(value)


def equal(what: str, got: Any, expected: Any) -> None:
    """Raise a CaseFailure naming ``what`` unless the values are equal (bytes shown as hex)."""
    if got != expected:
        raise CaseFailure(f"{what}: got {_show(got)[:120]}, expected {_show(expected)[:120]}")


def rejects(what: str, error_class: str | None, action: Callable[[], T]) -> SottovoceError:
    """Run ``action`` expecting a typed rejection whose ``code`` is ``error_class`` (any code if None)."""
    try:
        action()
    except SottovoceError as exc:
        if error_class is not None and exc.code != error_class:
            raise CaseFailure(f"{what}: rejected as {exc.code} ({exc}), expected {error_class}") from exc
        return exc
    raise CaseFailure(f"{what}: accepted, expected rejection {error_class}")
