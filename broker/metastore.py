"""The metadata store: event types and their schema versions in SQLite.

One database file in the data directory, in WAL mode with
`synchronous=FULL`, so a committed change survives `kill -9` and power
loss. The schema evolves only through `MIGRATIONS`, applied in order and
counted in `PRAGMA user_version`; later issues append to it.

The store keeps documents (the JSON of an event type, each schema version)
and knows nothing of their rules: `event_types.py` and `schemas.py` decide
what is valid. Methods are synchronous and thread-safe (one connection
behind a lock); the broker calls them from a worker thread.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE event_types (
        name TEXT PRIMARY KEY,
        definition TEXT NOT NULL
    );
    CREATE TABLE schemas (
        event_type TEXT NOT NULL REFERENCES event_types (name) ON DELETE CASCADE,
        major INTEGER NOT NULL,
        minor INTEGER NOT NULL,
        patch INTEGER NOT NULL,
        definition TEXT NOT NULL,
        PRIMARY KEY (event_type, major, minor, patch)
    );
    """,
)


@dataclass(frozen=True)
class SchemaRow:
    """One stored schema version: its semver parts and its JSON document."""

    major: int
    minor: int
    patch: int
    definition: str

    @property
    def version(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


class Metastore:
    """The SQLite database of one data directory."""

    def __init__(self, path: str) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            applied = self._db.execute("PRAGMA user_version").fetchone()[0]
            if applied > len(MIGRATIONS):
                raise RuntimeError(f"the metadata database is at version {applied}, newer than this nakadi "
                                   f"({len(MIGRATIONS)})")
            for number, script in enumerate(MIGRATIONS[applied:], start=applied + 1):
                self._db.executescript(f"BEGIN IMMEDIATE; {script} PRAGMA user_version = {number}; COMMIT;")

    @property
    def version(self) -> int:
        with self._lock:
            return self._db.execute("PRAGMA user_version").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- event types -------------------------------------------------------

    def insert_event_type(self, name: str, definition: str, schema: SchemaRow) -> bool:
        """Store a new event type with its first schema; False if the name exists."""
        with self._lock, self._transaction():
            try:
                self._db.execute("INSERT INTO event_types (name, definition) VALUES (?, ?)", (name, definition))
            except sqlite3.IntegrityError:
                return False
            self._insert_schema(name, schema)
            return True

    def update_event_type(self, name: str, definition: str, schema: SchemaRow | None) -> bool:
        """Replace an event type's document, adding `schema` if it is a new
        version; False if the event type does not exist."""
        with self._lock, self._transaction():
            cursor = self._db.execute("UPDATE event_types SET definition = ? WHERE name = ?", (definition, name))
            if cursor.rowcount == 0:
                return False
            if schema is not None:
                self._insert_schema(name, schema)
            return True

    def delete_event_type(self, name: str) -> bool:
        with self._lock, self._transaction():
            return self._db.execute("DELETE FROM event_types WHERE name = ?", (name,)).rowcount > 0

    def event_type(self, name: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT definition FROM event_types WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def event_types(self) -> list[tuple[str, str]]:
        """(name, definition) of every event type, by name."""
        with self._lock:
            return self._db.execute("SELECT name, definition FROM event_types ORDER BY name").fetchall()

    # -- schema versions ---------------------------------------------------

    def schemas(self, name: str, limit: int, offset: int) -> tuple[list[SchemaRow], int]:
        """Schema versions of `name`, newest first, and how many there are in all."""
        with self._lock:
            rows = self._db.execute(
                "SELECT major, minor, patch, definition FROM schemas WHERE event_type = ? "
                "ORDER BY major DESC, minor DESC, patch DESC LIMIT ? OFFSET ?", (name, limit, offset)).fetchall()
            total = self._db.execute("SELECT count(*) FROM schemas WHERE event_type = ?", (name,)).fetchone()[0]
        return [SchemaRow(*row) for row in rows], total

    def schema(self, name: str, major: int, minor: int, patch: int) -> SchemaRow | None:
        with self._lock:
            row = self._db.execute(
                "SELECT major, minor, patch, definition FROM schemas "
                "WHERE event_type = ? AND major = ? AND minor = ? AND patch = ?", (name, major, minor, patch)).fetchone()
        return SchemaRow(*row) if row else None

    def all_schemas(self, name: str) -> Sequence[SchemaRow]:
        """Every schema version of `name`, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT major, minor, patch, definition FROM schemas WHERE event_type = ? "
                "ORDER BY major, minor, patch", (name,)).fetchall()
        return [SchemaRow(*row) for row in rows]

    def _insert_schema(self, name: str, schema: SchemaRow) -> None:
        self._db.execute("INSERT INTO schemas (event_type, major, minor, patch, definition) VALUES (?, ?, ?, ?, ?)",
                         (name, schema.major, schema.minor, schema.patch, schema.definition))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when the block raises."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
