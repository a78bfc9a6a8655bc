"""Dispatch of vector cases to their checkers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Case = dict[str, Any]
Checker = Callable[[Case], None]


class CaseFailure(Exception):
    """The implementation disagrees with a vector case; the message says how, in one line."""


@dataclass(frozen=True)
class CaseResult:
    case_id: str
    ok: bool
    reason: str = ""


@dataclass
class FileResult:
    path: str
    results: list[CaseResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(r.ok for r in self.results)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed


def checkers() -> dict[str, Checker]:
    """Every known case type, gathered from the family modules."""
    from . import application_cases, encryption_cases, identity_cases, waku_cases

    table: dict[str, Checker] = {}
    for module in (encryption_cases, identity_cases, application_cases, waku_cases):
        table.update(module.CHECKERS)
    return table


def run_cases(cases: Iterable[Case], table: dict[str, Checker]) -> list[CaseResult]:
    results = []
    for index, case in enumerate(cases):
        case_id = str(case.get("id", f"#{index}"))
        checker = table.get(str(case.get("type")))
        if checker is None:
            results.append(CaseResult(case_id, False, f"unknown case type {case.get('type')!r}"))
            continue
        try:
            checker(case)
        except CaseFailure as failure:
            results.append(CaseResult(case_id, False, str(failure)))
        except Exception as exc:  # a crash in a checker is a failure of that case, not of the run
            results.append(CaseResult(case_id, False, f"unexpected {type(exc).__name__}: {exc}"))
        else:
            results.append(CaseResult(case_id, True))
    return results


def run_file(path: str | Path, table: dict[str, Checker] | None = None) -> FileResult:
    """Run every case of one vector file."""
    result = FileResult(str(path))
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        cases = document["cases"]
        if not isinstance(cases, list):
            raise TypeError("'cases' is not a list")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        result.results.append(CaseResult(str(path), False, f"cannot read vector file: {exc}"))
        return result
    result.results.extend(run_cases(cases, table if table is not None else checkers()))
    return result
