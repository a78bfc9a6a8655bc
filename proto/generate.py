"""Regenerate the Python protobuf modules of ``proto/``: ``python -m proto.generate``.

The generated ``*_pb2.py`` and ``*_pb2.pyi`` files are committed; ``tests/unit/test_proto_fresh.py``
fails when they no longer match what this command would write.
"""

from __future__ import annotations

import shutil
import sysconfig
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"


def proto_files() -> list[Path]:
    return sorted(PROTO_DIR.glob("*.proto"))


def generate(out_dir: Path) -> None:
    """Write ``*_pb2.py`` and ``*_pb2.pyi`` for every ``proto/*.proto`` into ``out_dir/proto``."""
    (out_dir / "proto").mkdir(parents=True, exist_ok=True)
    include = str(Path(protoc.__file__).parent / "_proto")
    plugin = shutil.which("protoc-gen-mypy", path=sysconfig.get_path("scripts")) or shutil.which("protoc-gen-mypy")
    if plugin is None:
        raise SystemExit("protoc-gen-mypy not found: install the dev extras (pip install -e '.[dev]')")
    args = ["protoc", f"-I{ROOT}", f"-I{include}", f"--plugin=protoc-gen-mypy={plugin}",
            f"--python_out={out_dir}", f"--mypy_out={out_dir}"]
    args += [str(p.relative_to(ROOT)) for p in proto_files()]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def generated_names() -> list[str]:
    return [f"{p.stem}_pb2{ext}" for p in proto_files() for ext in (".py", ".pyi")]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        for name in generated_names():
            (PROTO_DIR / name).write_bytes((Path(tmp) / "proto" / name).read_bytes())
            print(f"wrote proto/{name}")


if __name__ == "__main__":
    main()
