"""Checkers for topic and Waku envelope vector cases."""

from __future__ import annotations

from .runner import Checker

CHECKERS: dict[str, Checker] = {}
