"""Run one fuzz target under atheris: ``python -m tests.fuzz.fuzz_one TARGET [libFuzzer flags] [corpus dirs]``.

The engine and the generated protobuf modules are imported inside ``atheris.instrument_imports()``, so
libFuzzer sees their coverage. :mod:`tests.fuzz.run` starts this once per target, in its own process, so a
crash (an uncaught exception: a finding) is captured with its input and ends only that target.
"""

from __future__ import annotations

import sys

import atheris  # type: ignore[import-untyped]


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m tests.fuzz.fuzz_one TARGET [libFuzzer flags] [corpus dirs]")
    name = sys.argv[1]
    with atheris.instrument_imports(include=["engine", "proto"]):
        from tests.fuzz.targets import TARGETS, is_known_open, run_one
    if name not in TARGETS:
        raise SystemExit(f"unknown target {name!r}; targets: {', '.join(TARGETS)}")
    one_input = TARGETS[name].make()

    def test_one_input(data: bytes) -> None:
        if not is_known_open(name, data):
            run_one(one_input, data)

    atheris.Setup([sys.argv[0], *sys.argv[2:]], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
