"""Private files and folders of a profile: 0700 folders, 0600 files, atomic writes, undo of a failed create."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from engine.store.database import FILE_MODE, mapped_errors

DIRECTORY_MODE = 0o700


def make_private_directories(directory: Path) -> list[Path]:
    """Create ``directory`` and its missing parents with mode 0700; return the ones made, outermost first.

    Typed errors (``ProfileNotWritable``, ``DiskFull``) on failure, after removing what was made.
    """
    missing: list[Path] = []
    candidate = Path(directory).absolute()
    while not candidate.exists():
        missing.append(candidate)
        candidate = candidate.parent
    made: list[Path] = []
    try:
        for path in reversed(missing):
            with mapped_errors():
                os.mkdir(path, DIRECTORY_MODE)
                os.chmod(path, DIRECTORY_MODE)  # mkdir's mode is filtered by the umask
            made.append(path)
    except BaseException:
        remove_directories(made)
        raise
    return made


def remove_directories(made: list[Path]) -> None:
    """Undo :func:`make_private_directories`: remove the folders, innermost first, if they are empty."""
    for path in reversed(made):
        with contextlib.suppress(OSError):
            path.rmdir()


def write_private_file(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data`` (temporary file, fsync, rename, fsync folder), mode 0600."""
    temporary = path.with_name(path.name + ".tmp")
    with mapped_errors():
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            try:
                os.fchmod(fd, FILE_MODE)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            raise
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
