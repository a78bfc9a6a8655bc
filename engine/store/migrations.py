"""The schema of a profile database, as an ordered list of migrations.

To change the schema, append a :class:`Migration` with the next version number; never edit or reorder one
that has shipped. Each migration runs in its own transaction together with its ``schema_version`` row, so a
failure leaves the database at the previous version.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One schema step: ``sql`` may hold several statements separated by ``;``."""

    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "meta",
        """
        CREATE TABLE meta (
            key   TEXT PRIMARY KEY NOT NULL,
            value BLOB
        ) WITHOUT ROWID;
        """,
    ),
)


def check_migrations(migrations: tuple[Migration, ...] | list[Migration]) -> None:
    """Raise ``ValueError`` unless the versions are exactly 1, 2, 3, … in order."""
    for index, migration in enumerate(migrations, start=1):
        if migration.version != index:
            raise ValueError(f"migration {migration.name!r} has version {migration.version}, expected {index}")
