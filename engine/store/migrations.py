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
    Migration(
        2,
        "session_store",
        """
        CREATE TABLE protocol_records (
            kind  TEXT NOT NULL,
            key   BLOB NOT NULL,
            value BLOB NOT NULL,
            PRIMARY KEY (kind, key)
        ) STRICT, WITHOUT ROWID;

        CREATE TABLE cursors (
            name  TEXT PRIMARY KEY NOT NULL,
            value INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;

        CREATE TABLE seen_envelopes (
            hash    BLOB PRIMARY KEY NOT NULL,
            seen_ns INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX seen_envelopes_by_time ON seen_envelopes (seen_ns);

        CREATE TABLE messages (
            sequence            INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id          TEXT NOT NULL UNIQUE,
            chat                BLOB NOT NULL,
            author              BLOB NOT NULL,
            author_installation TEXT NOT NULL,
            direction           TEXT NOT NULL,
            text                TEXT NOT NULL,
            clock               INTEGER NOT NULL,
            timestamp_ms        INTEGER NOT NULL,
            received_ns         INTEGER NOT NULL,
            forward_secret      INTEGER NOT NULL CHECK (forward_secret IN (0, 1)),
            state               TEXT NOT NULL
        ) STRICT;
        CREATE INDEX messages_by_chat ON messages (chat, sequence);

        CREATE TABLE outbox (
            sequence        INTEGER PRIMARY KEY AUTOINCREMENT,
            envelope_hash   BLOB NOT NULL UNIQUE,
            topic           BLOB NOT NULL,
            waku_message    BLOB NOT NULL,
            message_id      TEXT,
            created_ns      INTEGER NOT NULL,
            attempts        INTEGER NOT NULL,
            next_attempt_ns INTEGER NOT NULL
        ) STRICT;
        """,
    ),
)


def check_migrations(migrations: tuple[Migration, ...] | list[Migration]) -> None:
    """Raise ``ValueError`` unless the versions are exactly 1, 2, 3, … in order."""
    for index, migration in enumerate(migrations, start=1):
        if migration.version != index:
            raise ValueError(f"migration {migration.name!r} has version {migration.version}, expected {index}")
