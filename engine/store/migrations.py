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
    Migration(
        3,
        "fewer_pages_per_write",
        # A send wrote about 12.6 pages of 4 KB, each encrypted and authenticated on commit. Two causes go here:
        # - protocol_records WITHOUT ROWID kept each row in the key's place: a 500-byte datasync record under a
        #   random 32-byte key landed on a random leaf of seven rows and split it often, and a value over about
        #   1 KB (an index b-tree's local limit) spilled to overflow pages. As a rowid table new rows are appended
        #   and only the small (kind, key) index entry lands at random; values up to about 4 KB stay local.
        # - AUTOINCREMENT rewrote sqlite_sequence on every insert. Without it a new sequence is still above every
        #   row present: messages are never deleted, so theirs are never reused, and outbox order only compares
        #   the rows present.
        """
        CREATE TABLE protocol_records_v3 (
            kind  TEXT NOT NULL,
            key   BLOB NOT NULL,
            value BLOB NOT NULL,
            UNIQUE (kind, key)
        ) STRICT;
        INSERT INTO protocol_records_v3 (kind, key, value) SELECT kind, key, value FROM protocol_records;
        DROP TABLE protocol_records;
        ALTER TABLE protocol_records_v3 RENAME TO protocol_records;

        CREATE TABLE messages_v3 (
            sequence            INTEGER PRIMARY KEY,
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
        INSERT INTO messages_v3 SELECT * FROM messages;
        DROP TABLE messages;
        ALTER TABLE messages_v3 RENAME TO messages;
        CREATE INDEX messages_by_chat ON messages (chat, sequence);

        CREATE TABLE outbox_v3 (
            sequence        INTEGER PRIMARY KEY,
            envelope_hash   BLOB NOT NULL UNIQUE,
            topic           BLOB NOT NULL,
            waku_message    BLOB NOT NULL,
            message_id      TEXT,
            created_ns      INTEGER NOT NULL,
            attempts        INTEGER NOT NULL,
            next_attempt_ns INTEGER NOT NULL
        ) STRICT;
        INSERT INTO outbox_v3 SELECT * FROM outbox;
        DROP TABLE outbox;
        ALTER TABLE outbox_v3 RENAME TO outbox;
        """,
    ),
)


def check_migrations(migrations: tuple[Migration, ...] | list[Migration]) -> None:
    """Raise ``ValueError`` unless the versions are exactly 1, 2, 3, … in order."""
    for index, migration in enumerate(migrations, start=1):
        if migration.version != index:
            raise ValueError(f"migration {migration.name!r} has version {migration.version}, expected {index}")
