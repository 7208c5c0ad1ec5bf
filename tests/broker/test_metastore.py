"""The SQLite metadata store: migrations, event types, schema versions,
subscriptions and their cursors, durability."""

import json
import sqlite3
import subprocess
import sys
import textwrap

from broker.metastore import MIGRATIONS, Metastore, SchemaRow, SubscriptionRow, event_types_key


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


def subscription_row(id_="s1", app="shop", event_types=("b", "a"), group="default",
                     created_at="2024-04-11T10:00:00.000Z", readers=()):
    definition = json.dumps({"id": id_, "authorization": {"admins": [], "readers": [
        {"data_type": data_type, "value": value} for data_type, value in readers]}})
    return SubscriptionRow(id_, app, tuple(event_types), group, definition, created_at)


def ids(documents):
    return [json.loads(document)["id"] for document in documents]


def test_metastore_upgrades_a_database_of_the_first_version_keeping_its_event_types(tmp_path):
    path = tmp_path / "meta.db"
    db = sqlite3.connect(path)
    db.executescript(f"BEGIN; {MIGRATIONS[0]} PRAGMA user_version = 1; COMMIT;")
    db.execute("INSERT INTO event_types (name, definition) VALUES ('kept', '{}')")
    db.commit()
    db.close()
    store = Metastore(str(path))
    assert store.version == len(MIGRATIONS) >= 2
    assert store.event_type("kept") == "{}" and store.all_subscriptions() == []
    store.close()


def test_metastore_subscription_key_is_unique_whatever_the_order_of_its_event_types(tmp_path):
    store = Metastore(str(tmp_path / "meta.db"))
    assert store.insert_subscription(subscription_row("s1", event_types=("b", "a")))
    assert not store.insert_subscription(subscription_row("s2", event_types=("a", "b", "a")))
    assert not store.insert_subscription(subscription_row("s1", group="other"))
    assert store.insert_subscription(subscription_row("s3", event_types=("a", "b"), group="other"))
    assert ids([store.subscription_by_key("shop", ["a", "b"], "default")]) == ["s1"]
    assert store.subscription_by_key("shop", ["a"], "default") is None
    assert event_types_key(["b", "a", "b"]) == '["a","b"]'
    assert store.update_subscription("s1", '{"id":"s1","v":2}') and store.subscription("s1") == '{"id":"s1","v":2}'
    assert not store.update_subscription("missing", "{}") and store.subscription("missing") is None
    store.close()


def test_metastore_lists_subscriptions_newest_first_with_filters_combined(tmp_path):
    store = Metastore(str(tmp_path / "meta.db"))
    store.insert_subscription(subscription_row("old", event_types=("a",), created_at="2024-04-11T09:00:00.000Z"))
    store.insert_subscription(subscription_row("ab", event_types=("a", "b"), readers=[("user", "jo")]))
    store.insert_subscription(subscription_row("same-ms", event_types=("b",), app="other"))
    assert ids(store.subscriptions()) == ["same-ms", "ab", "old"]
    assert ids(store.subscriptions(limit=1, offset=1)) == ["ab"]
    assert ids(store.subscriptions(event_types=["a"])) == ["ab", "old"]
    assert ids(store.subscriptions(event_types=["a", "b", "a"])) == ["ab"]
    assert ids(store.subscriptions(event_types=["a", "c"])) == []
    assert ids(store.subscriptions(owning_application="other")) == ["same-ms"]
    assert ids(store.subscriptions(owning_application="other", event_types=["a"])) == []
    assert ids(store.subscriptions(reader=("user", "jo"))) == ["ab"]
    assert ids(store.subscriptions(reader=("service", "jo"))) == []
    assert ids(store.all_subscriptions()) == ["old", "ab", "same-ms"]
    assert store.subscriptions_of("a") == ["ab", "old"] and store.subscriptions_of("c") == []
    store.close()


def test_metastore_subscription_cursors_are_none_until_initialised_once(tmp_path):
    store = Metastore(str(tmp_path / "meta.db"))
    store.insert_subscription(subscription_row())
    assert store.subscription_cursors("s1") is None
    assert store.initialize_subscription_cursors("s1", {("a", 0): -1, ("b", 1): 6})
    assert not store.initialize_subscription_cursors("s1", {("a", 0): 99})
    assert store.subscription_cursors("s1") == {("a", 0): -1, ("b", 1): 6}
    store.write_subscription_cursors("s1", {("a", 0): 3, ("a", 1): 0})
    assert store.subscription_cursors("s1") == {("a", 0): 3, ("a", 1): 0, ("b", 1): 6}
    store.close()
    again = Metastore(str(tmp_path / "meta.db"))
    assert again.subscription_cursors("s1") == {("a", 0): 3, ("a", 1): 0, ("b", 1): 6}
    again.close()


def test_metastore_cursor_writes_before_initialisation_stay_hidden_until_it(tmp_path):
    store = Metastore(str(tmp_path / "meta.db"))
    store.insert_subscription(subscription_row())
    store.write_subscription_cursors("s1", {("a", 0): 5})
    assert store.subscription_cursors("s1") is None
    assert store.initialize_subscription_cursors("s1", {("b", 0): 1})
    assert store.subscription_cursors("s1") == {("a", 0): 5, ("b", 0): 1}
    store.close()


def test_metastore_cursors_of_a_missing_subscription_are_neither_written_nor_initialised(tmp_path):
    store = Metastore(str(tmp_path / "meta.db"))
    store.write_subscription_cursors("missing", {("a", 0): 5})
    assert not store.initialize_subscription_cursors("missing", {("a", 0): 5})
    assert store.subscription_cursors("missing") is None
    store.close()


def test_metastore_deleting_a_subscription_removes_its_event_types_and_cursors(tmp_path):
    store = Metastore(str(tmp_path / "meta.db"))
    store.insert_subscription(subscription_row())
    store.initialize_subscription_cursors("s1", {("a", 0): 1})
    assert store.delete_subscription("s1") and not store.delete_subscription("s1")
    assert store.subscriptions_of("a") == [] and store.subscription("s1") is None
    assert store.insert_subscription(subscription_row())  # the key is free again
    assert store.subscription_cursors("s1") is None
    rows = store._db.execute("SELECT count(*) FROM subscription_cursors").fetchone()[0]
    assert rows == 0
    store.close()
