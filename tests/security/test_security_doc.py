"""docs/SECURITY.md backs every claim with a test: each ``tests/...::name`` it cites must exist, and a test it
presents as a known gap (the word "xfail" on the line) must be a strict xfail, while a test cited as proof
must not be an xfail."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "SECURITY.md"
REFERENCE = re.compile(r"(tests/[\w/.-]+\.py)::(\w+)(?:\[([^\]]+)\])?")
FILE = re.compile(r"`(tests/[\w/.-]+\.(?:py|sh))`")


@cache
def functions(path: str) -> dict[str, ast.FunctionDef]:
    tree = ast.parse((REPO / path).read_text())
    return {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


def xfail_marks(function: ast.FunctionDef) -> tuple[bool, bool]:
    """(the whole test is a strict xfail, some of its parameters are)."""
    whole = any("xfail" in ast.unparse(d) and "strict=True" in ast.unparse(d) for d in function.decorator_list
                if "parametrize" not in ast.unparse(d))
    some = any("xfail" in ast.unparse(d) for d in function.decorator_list if "parametrize" in ast.unparse(d))
    return whole, some


def citations() -> list[tuple[int, str, str, str, str | None]]:
    found = []
    for number, line in enumerate(DOC.read_text().splitlines(), 1):
        found += [(number, line, m[1], m[2], m[3]) for m in REFERENCE.finditer(line)]
    return found


def test_every_cited_test_exists() -> None:
    cited = citations()
    assert len(cited) >= 50
    missing = [f"line {n}: {path}::{name}" for n, _, path, name, _ in cited
               if not (REPO / path).is_file() or name not in functions(path)]
    assert missing == []
    for n, _, path, _, param in cited:
        if param is not None:
            assert param in (REPO / path).read_text(), f"line {n}: no parameter {param} in {path}"


def test_every_cited_file_exists() -> None:
    files = [m for line in DOC.read_text().splitlines() for m in FILE.findall(line)]
    assert files and [f for f in files if not (REPO / f).exists()] == []


def test_gaps_are_strict_xfails_and_proofs_are_not() -> None:
    wrong = []
    for n, line, path, name, param in citations():
        whole, some = xfail_marks(functions(path)[name])
        gap = "xfail" in line
        if param is None and whole != gap:
            wrong.append(f"line {n}: {name} is {'an' if whole else 'not an'} xfail but the line says otherwise")
        if param is not None and gap and not some:
            wrong.append(f"line {n}: {name}[{param}] is cited as an xfail but has no xfail parameters")
    assert wrong == []


def test_every_section_cites_a_test() -> None:
    sections = re.split(r"^## ", DOC.read_text(), flags=re.MULTILINE)[1:]
    assert len(sections) >= 8
    assert [s.splitlines()[0] for s in sections if not REFERENCE.search(s)] == []


_SAMPLE = """
@pytest.mark.xfail(strict=True, reason="a gap")
def test_gap(): ...

@pytest.mark.parametrize("n", [pytest.param(1, marks=pytest.mark.xfail(strict=True, reason="r")), 2])
def test_partly(n): ...

def test_proof(): ...
"""


def test_the_checker_notices_a_missing_test_and_an_xfail() -> None:
    assert "test_that_does_not_exist" not in functions("tests/security/test_security_doc.py")
    sample = {node.name: node for node in ast.walk(ast.parse(_SAMPLE)) if isinstance(node, ast.FunctionDef)}
    assert xfail_marks(sample["test_gap"]) == (True, False)
    assert xfail_marks(sample["test_partly"]) == (False, True)
    assert xfail_marks(sample["test_proof"]) == (False, False)
