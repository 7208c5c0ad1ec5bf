"""The metadata store: event types and their schema versions in SQLite.

One database file in the data directory, in WAL mode with
`synchronous=FULL`, so a committed change survives `kill -9` and power
loss. The schema evolves only through `MIGRATIONS`, applied in order and
counted in `PRAGMA user_version`; later issues append to it.

The store keeps documents (the JSON of an event type, each schema version,
each subscription) and knows nothing of their rules: `event_types.py`,
`schemas.py` and `subscriptions.py` decide what is valid. Besides its
document, a subscription has its key (owning application, the sorted set
of its event types, consumer group; unique), its event types as rows (for
filtering, and to find the subscriptions of an event type) and, once
initialised, one committed cursor per partition. Methods are synchronous and thread-safe (one connection
behind a lock); the broker calls them from a worker thread.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import InsufficientStorageError

# The largest page offset of a list: Nakadi's are Java ints (and SQLite
# takes no integer beyond 64 bits).
PAGE_OFFSET_MAX = 2**31 - 1

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
    """
    CREATE TABLE subscriptions (
        id TEXT PRIMARY KEY,
        owning_application TEXT NOT NULL,
        consumer_group TEXT NOT NULL,
        event_types_key TEXT NOT NULL,
        definition TEXT NOT NULL,
        created_at TEXT NOT NULL,
        initialized INTEGER NOT NULL DEFAULT 0,
        UNIQUE (owning_application, event_types_key, consumer_group)
    );
    CREATE INDEX subscriptions_by_creation ON subscriptions (created_at);
    CREATE TABLE subscription_event_types (
        subscription_id TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
        event_type TEXT NOT NULL,
        PRIMARY KEY (subscription_id, event_type)
    );
    CREATE INDEX subscription_event_types_by_name ON subscription_event_types (event_type);
    CREATE TABLE subscription_cursors (
        subscription_id TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
        event_type TEXT NOT NULL,
        partition INTEGER NOT NULL,
        offset INTEGER NOT NULL,
        PRIMARY KEY (subscription_id, event_type, partition)
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


@dataclass(frozen=True)
class SubscriptionRow:
    """A subscription as stored: its key, its document and its creation time
    (RFC 3339 in UTC with milliseconds, so text order is time order)."""

    id: str
    owning_application: str
    event_types: tuple[str, ...]
    consumer_group: str
    definition: str
    created_at: str


class Metastore:
    """The SQLite database of one data directory."""

    def __init__(self, path: str) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self.write_failure: str | None = None  # why the last write failed, until one succeeds
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

    def check(self) -> None:
        """Raise `sqlite3.Error` unless the database answers a query."""
        with self._lock:
            self._db.execute("SELECT count(*) FROM event_types").fetchone()

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

    # -- subscriptions -----------------------------------------------------

    def insert_subscription(self, row: SubscriptionRow) -> bool:
        """Store a new subscription; False (and no change) if its id or its key exists."""
        assert row.event_types, "a subscription has at least one event type"
        with self._lock, self._transaction():
            try:
                self._db.execute(
                    "INSERT INTO subscriptions (id, owning_application, consumer_group, event_types_key, definition, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (row.id, row.owning_application, row.consumer_group, event_types_key(row.event_types),
                     row.definition, row.created_at))
            except sqlite3.IntegrityError:
                return False
            self._db.executemany("INSERT INTO subscription_event_types (subscription_id, event_type) VALUES (?, ?)",
                                 [(row.id, name) for name in sorted(set(row.event_types))])
            return True

    def update_subscription(self, subscription_id: str, definition: str) -> bool:
        """Replace a subscription's document (its key never changes); False if it does not exist."""
        with self._lock, self._transaction():
            return self._db.execute("UPDATE subscriptions SET definition = ? WHERE id = ?",
                                    (definition, subscription_id)).rowcount > 0

    def delete_subscription(self, subscription_id: str) -> bool:
        """Forget a subscription with its event types and cursors; False if it does not exist."""
        with self._lock, self._transaction():
            return self._db.execute("DELETE FROM subscriptions WHERE id = ?", (subscription_id,)).rowcount > 0

    def subscription(self, subscription_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT definition FROM subscriptions WHERE id = ?", (subscription_id,)).fetchone()
        return row[0] if row else None

    def subscription_by_key(self, owning_application: str, event_types: Sequence[str],
                            consumer_group: str) -> str | None:
        """The document of the subscription with this key (event types in any order), or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT definition FROM subscriptions "
                "WHERE owning_application = ? AND event_types_key = ? AND consumer_group = ?",
                (owning_application, event_types_key(event_types), consumer_group)).fetchone()
        return row[0] if row else None

    def subscriptions(self, *, owning_application: str | None = None, event_types: Sequence[str] = (),
                      reader: tuple[str, str] | None = None, limit: int = -1, offset: int = 0) -> list[str]:
        """Documents of the subscriptions matching every filter given, newest
        first: of `owning_application`, on all of `event_types`, listing
        `reader` (data_type, value) in `authorization.readers`. `limit` -1
        is no limit."""
        clauses, params = ["1"], []
        if owning_application is not None:
            clauses.append("owning_application = ?")
            params.append(owning_application)
        names = sorted(set(event_types))
        if names:
            clauses.append(f"id IN (SELECT subscription_id FROM subscription_event_types WHERE event_type IN "
                           f"({', '.join('?' * len(names))}) GROUP BY subscription_id HAVING count(*) = ?)")
            params.extend([*names, len(names)])
        if reader is not None:
            clauses.append("EXISTS (SELECT 1 FROM json_each(definition, '$.authorization.readers') AS r "
                           "WHERE json_extract(r.value, '$.data_type') = ? AND json_extract(r.value, '$.value') = ?)")
            params.extend(reader)
        with self._lock:
            rows = self._db.execute(
                f"SELECT definition FROM subscriptions WHERE {' AND '.join(clauses)} "
                "ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?", (*params, limit, offset)).fetchall()
        return [row[0] for row in rows]

    def all_subscriptions(self) -> list[str]:
        """Every subscription's document, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT definition FROM subscriptions ORDER BY created_at, rowid").fetchall()
        return [row[0] for row in rows]

    def subscription_ids(self) -> list[str]:
        """Every subscription's id, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT id FROM subscriptions ORDER BY created_at, rowid").fetchall()
        return [row[0] for row in rows]

    def subscriptions_of(self, event_type: str) -> list[str]:
        """Ids of the subscriptions that read `event_type`."""
        with self._lock:
            rows = self._db.execute("SELECT subscription_id FROM subscription_event_types WHERE event_type = ? "
                                    "ORDER BY subscription_id", (event_type,)).fetchall()
        return [row[0] for row in rows]

    # -- subscription cursors ----------------------------------------------

    def subscription_cursors(self, subscription_id: str) -> dict[tuple[str, int], int] | None:
        """Committed cursors {(event_type, partition index): offset (last
        consumed, exclusive; start-1 = before the first)}; None until
        initialised (and for a subscription that does not exist)."""
        with self._lock:
            row = self._db.execute("SELECT initialized FROM subscriptions WHERE id = ?", (subscription_id,)).fetchone()
            if row is None or not row[0]:
                return None
            rows = self._db.execute("SELECT event_type, partition, offset FROM subscription_cursors "
                                    "WHERE subscription_id = ?", (subscription_id,)).fetchall()
        return {(event_type, partition): offset for event_type, partition, offset in rows}

    def initialize_subscription_cursors(self, subscription_id: str, cursors: dict[tuple[str, int], int]) -> bool:
        """Store the starting cursors and mark the subscription initialised,
        in one transaction; False (and no change) if it already was, or if
        the subscription does not exist (deleted meanwhile)."""
        with self._lock, self._transaction():
            marked = self._db.execute("UPDATE subscriptions SET initialized = 1 WHERE id = ? AND initialized = 0",
                                      (subscription_id,)).rowcount
            if marked == 0:
                return False
            self._upsert_cursors(subscription_id, cursors)
            return True

    def write_subscription_cursors(self, subscription_id: str, cursors: dict[tuple[str, int], int]) -> None:
        """Upsert these cursors (commits and resets), one transaction. Nothing
        is written for a subscription that no longer exists: its cursors
        went with it."""
        with self._lock, self._transaction():
            exists = self._db.execute("SELECT 1 FROM subscriptions WHERE id = ?", (subscription_id,)).fetchone()
            if exists is not None:
                self._upsert_cursors(subscription_id, cursors)

    def _upsert_cursors(self, subscription_id: str, cursors: dict[tuple[str, int], int]) -> None:
        self._db.executemany(
            "INSERT INTO subscription_cursors (subscription_id, event_type, partition, offset) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (subscription_id, event_type, partition) DO UPDATE SET offset = excluded.offset",
            [(subscription_id, event_type, partition, offset)
             for (event_type, partition), offset in sorted(cursors.items())])

    def _transaction(self) -> _Transaction:
        return _Transaction(self)


def event_types_key(event_types: Sequence[str]) -> str:
    """The canonical text of a set of event type names: a JSON array, sorted,
    without duplicates. Names never hold a quote or backslash, but JSON
    keeps the encoding unambiguous whatever they hold."""
    return json.dumps(sorted(set(event_types)), separators=(",", ":"))


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when the block raises. A
    full disk (SQLITE_FULL) becomes `InsufficientStorageError` (507) and is
    remembered in `write_failure` until a transaction commits."""

    def __init__(self, store: Metastore) -> None:
        self._store = store
        self._db = store._db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as e:
                if self._db.in_transaction:  # a failed COMMIT may have rolled back already
                    self._db.execute("ROLLBACK")
                self._raise_full(e)
                raise
            self._store.write_failure = None
            return
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            self._raise_full(exc)

    def _raise_full(self, error: sqlite3.Error) -> None:
        if getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            self._store.write_failure = f"the disk is full (ENOSPC): the metadata database cannot grow ({error})"
            raise InsufficientStorageError(self._store.write_failure) from error
