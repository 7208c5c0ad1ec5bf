"""The SQLite metadata store: migrations, event types, schema versions, durability."""

import sqlite3
import subprocess
import sys
import textwrap

from broker.metastore import MIGRATIONS, Metastore, SchemaRow


def test_metastore_migrates_a_new_database_to_the_latest_version(tmp_path):
    store = Metastore(str(tmp_path / "meta.db"))
    assert store.version == len(MIGRATIONS)
    store.close()
    again = Metastore(str(tmp_path / "meta.db"))
    assert again.version == len(MIGRATIONS)
    again.close()


def test_metastore_uses_wal_and_full_sync(tmp_path):
    Metastore(str(tmp_path / "meta.db")).close()
    db = sqlite3.connect(tmp_path / "meta.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_metastore_event_type_insert_is_unique_and_schemas_sort_newest_first(tmp_path):
    store = Metastore(str(tmp_path / "meta.db"))
    assert store.insert_event_type("a", '{"name":"a"}', SchemaRow(1, 0, 0, "s1"))
    assert not store.insert_event_type("a", '{"name":"a2"}', SchemaRow(1, 0, 0, "x"))
    assert store.update_event_type("a", '{"name":"a","v":2}', SchemaRow(1, 10, 0, "s2"))
    assert store.update_event_type("a", '{"name":"a","v":3}', SchemaRow(1, 9, 0, "s3"))
    assert store.update_event_type("a", '{"name":"a","v":4}', None)
    assert not store.update_event_type("missing", "{}", None)
    assert store.event_type("a") == '{"name":"a","v":4}'
    rows, total = store.schemas("a", limit=2, offset=0)
    assert total == 3 and [r.version for r in rows] == ["1.10.0", "1.9.0"]
    assert store.schema("a", 1, 9, 0).definition == "s3"
    assert [r.version for r in store.all_schemas("a")] == ["1.0.0", "1.9.0", "1.10.0"]
    assert store.delete_event_type("a") and store.event_type("a") is None
    assert store.schemas("a", 10, 0) == ([], 0)
    store.close()


def test_metastore_a_committed_event_type_survives_kill_9(tmp_path):
    path = tmp_path / "meta.db"
    child = textwrap.dedent(f"""
        import os, signal
        from broker.metastore import Metastore, SchemaRow
        store = Metastore({str(path)!r})
        store.insert_event_type("kept", "{{}}", SchemaRow(1, 0, 0, "s"))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=60)
    assert result.returncode == -9, result.stderr
    store = Metastore(str(path))
    assert store.event_type("kept") == "{}"
    store.close()
