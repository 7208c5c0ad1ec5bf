"""The client verbs and `fsck` of the `nakadi` command, end to end: click's
CliRunner in this process against a real `nakadi serve` on 127.0.0.1."""

from __future__ import annotations

import json
import queue
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from api.cli import main
from tests.api.helpers import business_event, business_type
from tests.server import NAKADI, own_environment, serving, start_server

pytestmark = pytest.mark.slow

FRAME_HEADER = struct.Struct("<II")
ENTRY = struct.Struct("<II")
SEGMENT_HEADER_BYTES = 16


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cli")
    with serving(workdir, workdir / "data") as server:
        yield server


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as client:
        yield client


def run(server, *args: str, input: str | bytes | None = None):
    """`nakadi ARGS` against `server`; stdout and stderr kept apart."""
    result = CliRunner().invoke(main, list(args), input=input, env={"NAKADI_URL": server.url, "NAKADI_TOKEN": None},
                                catch_exceptions=False)
    return result


def create_type(http, name: str, partitions: int = 1) -> None:
    assert http.post("/event-types", json=business_type(name, partitions=partitions)).status_code == 201


# -- event types -------------------------------------------------------------


def test_cli_event_types_create_list_show_delete(server, tmp_path):
    body = tmp_path / "type.json"
    body.write_text(json.dumps(business_type("cli.lifecycle", partitions=2)))
    created = run(server, "event-types", "create", "-f", str(body))
    assert (created.exit_code, created.stdout) == (0, "created event type cli.lifecycle\n")
    listed = run(server, "event-types", "list")
    assert listed.exit_code == 0
    assert listed.stdout.splitlines()[0].split() == ["NAME", "CATEGORY", "OWNING", "APPLICATION", "PARTITIONS",
                                                     "SCHEMA", "VERSION"]
    assert any(line.split()[:4] == ["cli.lifecycle", "business", "shop", "2"] for line in listed.stdout.splitlines())
    as_json = run(server, "event-types", "list", "--format", "json")
    assert "cli.lifecycle" in [item["name"] for item in json.loads(as_json.stdout)]
    shown = run(server, "event-types", "show", "cli.lifecycle")
    assert (shown.exit_code, json.loads(shown.stdout)["name"]) == (0, "cli.lifecycle")
    deleted = run(server, "event-types", "delete", "cli.lifecycle", "--yes")
    assert (deleted.exit_code, deleted.stdout) == (0, "deleted event type cli.lifecycle\n")
    again = run(server, "event-types", "show", "cli.lifecycle")
    assert again.exit_code == 1
    assert again.stdout == ""
    assert again.stderr.count("\n") == 1
    assert again.stderr.startswith("nakadi: 404 Not Found: ")
    assert "cli.lifecycle" in again.stderr


def test_cli_server_error_is_one_line_without_traceback(server, tmp_path):
    body = tmp_path / "bad.json"
    body.write_text(json.dumps({"name": "cli.bad"}))
    result = run(server, "event-types", "create", "-f", str(body))
    assert result.exit_code == 1
    assert result.stderr.startswith("nakadi: 422 Unprocessable Entity: ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_cli_connection_refused_is_one_line_naming_the_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    result = CliRunner().invoke(main, ["event-types", "list", "--url", url], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr == f"nakadi: cannot connect to {url}: connection refused\n"


# -- publish -----------------------------------------------------------------


def published(server, name: str) -> list[str]:
    result = run(server, "tail", name, "--from", "BEGIN")
    assert result.exit_code == 0, result.stderr
    return [json.loads(line)["order_id"] for line in result.stdout.splitlines()]


def test_cli_publish_json_array_from_a_file_in_batches(server, http, tmp_path):
    create_type(http, "cli.array")
    source = tmp_path / "events.json"
    source.write_text(json.dumps([business_event(f"a{i}") for i in range(7)]))
    result = run(server, "publish", "cli.array", str(source), "--batch-size", "3")
    assert (result.exit_code, result.stdout) == (0, "published 7 of 7 events\n")
    assert published(server, "cli.array") == [f"a{i}" for i in range(7)]


def test_cli_publish_ndjson_from_a_file_and_from_stdin(server, http, tmp_path):
    create_type(http, "cli.ndjson")
    source = tmp_path / "events.ndjson"
    source.write_text("\n".join(json.dumps(business_event(f"f{i}")) for i in range(3)) + "\n\n")
    from_file = run(server, "publish", "cli.ndjson", str(source))
    assert (from_file.exit_code, from_file.stdout) == (0, "published 3 of 3 events\n")
    stdin = "".join(json.dumps(business_event(f"s{i}")) + "\n" for i in range(2))
    from_stdin = run(server, "publish", "cli.ndjson", "-", input=stdin)
    assert (from_stdin.exit_code, from_stdin.stdout) == (0, "published 2 of 2 events\n")
    array_stdin = run(server, "publish", "cli.ndjson", input=json.dumps([business_event("s2")]))
    assert array_stdin.exit_code == 0
    assert published(server, "cli.ndjson") == ["f0", "f1", "f2", "s0", "s1", "s2"]


def test_cli_publish_422_prints_each_failed_item_and_exits_1(server, http, tmp_path):
    create_type(http, "cli.invalid")
    good, bad = business_event("ok"), {"amount": 1, "metadata": {"eid": "6f2b7c4e-8f7a-4b8e-9d3a-1c2b3d4e5f60",
                                                                 "occurred_at": "2024-05-01T10:00:00Z"}}
    result = run(server, "publish", "cli.invalid", "-", input=json.dumps([good, bad]))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    failed = [line for line in lines if line.startswith("failed: ")]
    assert failed == [line for line in lines if "6f2b7c4e-8f7a-4b8e-9d3a-1c2b3d4e5f60" in line]
    assert "step=validating" in failed[0] and "order_id" in failed[0]
    assert lines[0].startswith("aborted: eid=" + good["metadata"]["eid"])
    assert result.stdout == "published 0 of 2 events, 2 not published\n"


def test_cli_publish_unreadable_input_is_one_line(server, http):
    create_type(http, "cli.garbage")
    result = run(server, "publish", "cli.garbage", input='{"a": 1}\nnot json\n')
    assert result.exit_code == 1
    assert result.stderr.startswith("nakadi: <stdin> line 2 is not JSON: ")


# -- tail --------------------------------------------------------------------


def test_cli_tail_from_begin_prints_every_event_in_order_and_stops(server, http):
    create_type(http, "cli.tail", partitions=3)
    events = [business_event(f"t{i}") for i in range(30)]
    for start in range(0, 30, 10):
        assert http.post("/event-types/cli.tail/events", json=events[start:start + 10]).status_code == 200
    result = run(server, "tail", "cli.tail", "--from", "BEGIN")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sorted(json.loads(line)["order_id"] for line in lines) == sorted(f"t{i}" for i in range(30))
    assert all(line == json.dumps(json.loads(line), separators=(",", ":"), ensure_ascii=False) for line in lines)
    partitions = {p["partition"]: p for p in http.get("/event-types/cli.tail/partitions").json()}
    for partition in partitions:
        one = run(server, "tail", "cli.tail", "--partition", partition)
        orders = [json.loads(line)["order_id"] for line in one.stdout.splitlines()]
        assert orders == sorted(orders, key=lambda o: int(o[1:]))
    assert run(server, "tail", "cli.tail", "--from", "END").stdout == ""


def test_cli_tail_from_an_offset_and_unknown_partition(server, http):
    create_type(http, "cli.offset")
    assert http.post("/event-types/cli.offset/events",
                     json=[business_event(f"x{i}") for i in range(4)]).status_code == 200
    result = run(server, "tail", "cli.offset", "--from", "001-0001-000000000000000001")
    assert [json.loads(line)["order_id"] for line in result.stdout.splitlines()] == ["x2", "x3"]
    unknown = run(server, "tail", "cli.offset", "--partition", "7")
    assert (unknown.exit_code, unknown.stderr) == (1, "nakadi: no partition '7'; the partitions are 0\n")


def test_cli_tail_of_an_empty_event_type_prints_nothing(server, http):
    create_type(http, "cli.empty", partitions=2)
    result = run(server, "tail", "cli.empty")
    assert (result.exit_code, result.stdout) == (0, "")


# -- subscriptions -----------------------------------------------------------


def test_cli_subscriptions_list_show_stats_and_lag(server, http):
    create_type(http, "cli.subscribed", partitions=2)
    assert http.post("/event-types/cli.subscribed/events",
                     json=[business_event(f"s{i}") for i in range(6)]).status_code == 200
    response = http.post("/subscriptions", json={"owning_application": "cli", "event_types": ["cli.subscribed"],
                                                 "read_from": "begin"})
    subscription_id = response.json()["id"]
    # Statistics count unconsumed events once a stream has started the subscription's cursors.
    with http.stream("GET", f"/subscriptions/{subscription_id}/events",
                     params={"batch_limit": 1, "batch_flush_timeout": 1, "stream_timeout": 5}) as stream:
        assert stream.status_code == 200
        assert "events" in json.loads(next(stream.iter_lines()))
    listed = run(server, "subscriptions", "list", "--event-type", "cli.subscribed")
    assert listed.exit_code == 0
    [row] = listed.stdout.splitlines()[1:]
    assert row.split() == [subscription_id, "cli", "default", "cli.subscribed", "begin"]
    shown = run(server, "subscriptions", "show", subscription_id)
    assert json.loads(shown.stdout)["id"] == subscription_id
    for verb in (["subscriptions", "stats"], ["lag"]):
        result = run(server, *verb, subscription_id)
        assert result.exit_code == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].split() == ["EVENT", "TYPE", "PARTITION", "STATE", "UNCONSUMED", "LAG", "SECONDS", "STREAM"]
        rows = [line.split() for line in lines[1:]]
        assert [row[:2] for row in rows] == [["cli.subscribed", "0"], ["cli.subscribed", "1"]]
        assert all(row[2] in ("assigned", "unassigned") for row in rows)
        assert sum(int(row[3]) for row in rows) == 6
    as_json = json.loads(run(server, "lag", subscription_id, "--format", "json").stdout)
    assert [p["partition"] for p in as_json[0]["partitions"]] == ["0", "1"]
    missing = run(server, "lag", "00000000-0000-0000-0000-000000000000")
    assert missing.exit_code == 1 and missing.stderr.startswith("nakadi: 404 ")


# -- serve --seed ------------------------------------------------------------


def test_cli_serve_seed_creates_missing_items_once(tmp_path):
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({
        "event_types": [business_type("seeded.one"), business_type("seeded.two", partitions=2)],
        "subscriptions": [{"owning_application": "cli", "event_types": ["seeded.one", "seeded.two"]}]}))
    ids = []
    for _ in range(2):
        with serving(tmp_path, tmp_path / "data", "--seed", str(seed)) as server:
            with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as http:
                names = sorted(item["name"] for item in http.get("/event-types").json())
                items = http.get("/subscriptions").json()["items"]
            assert names == ["seeded.one", "seeded.two"]
            ids.append([item["id"] for item in items])
            status, _, stderr = server.stop(signal.SIGTERM)
            assert status == 0, stderr
    assert len(ids[0]) == 1 and ids[0] == ids[1]
    assert "seed: event type seeded.one exists, left as it is" in stderr


def test_cli_serve_bad_seed_exits_2_with_one_line(tmp_path):
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"event_types": [{"name": "seeded.bad"}]}))
    with pytest.raises(RuntimeError, match=r"the server did not start \(2\)"):
        start_server(tmp_path, tmp_path / "data", "--seed", str(seed))


# -- fsck --------------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """A stopped server's data: one event type, one partition, three frames."""
    with serving(tmp_path, tmp_path / "data") as server:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as http:
            create_type(http, "fsck.checked")
            for batch in range(3):
                events = [business_event(f"b{batch}-{i}") for i in range(batch + 1)]
                assert http.post("/event-types/fsck.checked/events", json=events).status_code == 200
        assert server.stop(signal.SIGTERM)[0] == 0
    return tmp_path / "data"


def fsck(data_dir: Path, *args: str):
    return CliRunner().invoke(main, ["fsck", str(data_dir), *args], catch_exceptions=False)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def frames(log: Path) -> list[int]:
    data, positions, position = log.read_bytes(), [], SEGMENT_HEADER_BYTES
    while position < len(data):
        positions.append(position)
        position += FRAME_HEADER.size + FRAME_HEADER.unpack_from(data, position)[0]
    return positions


def partition_files(data_dir: Path) -> tuple[Path, Path]:
    directory = data_dir / "event-types" / "fsck.checked" / "0"
    return directory / f"{0:020d}.log", directory / f"{0:020d}.index"


def test_cli_fsck_clean_data_dir_exits_0_and_counts(data_dir):
    before = snapshot(data_dir)
    result = fsck(data_dir)
    assert result.exit_code == 0, result.output
    log, _ = partition_files(data_dir)
    assert result.stdout.splitlines() == [
        f"fsck.checked/0: 1 segments, 6 records, {log.stat().st_size} bytes, ok",
        f"checked 1 partitions: 1 segments, 6 records, {log.stat().st_size} bytes; clean"]
    assert json.loads(fsck(data_dir, "--format", "json").stdout)["clean"] is True
    assert snapshot(data_dir) == before


def test_cli_fsck_reports_each_damage_with_its_position_and_changes_nothing(data_dir):
    log, index = partition_files(data_dir)
    first, second, third = frames(log)
    data = bytearray(log.read_bytes())
    data[second + 20] ^= 0x40
    log.write_bytes(bytes(data[:-3]))
    entries = bytearray(index.read_bytes())
    ENTRY.pack_into(entries, 0, 0, first + 1)
    index.write_bytes(bytes(entries))
    before = snapshot(data_dir)
    result = fsck(data_dir)
    assert result.exit_code == 1
    problems = [line.strip() for line in result.stdout.splitlines() if line.startswith("  ")]
    assert problems[0].startswith(f"CRC mismatch: {log} byte {second} offset 1: CRC32C mismatch")
    assert problems[1].startswith(f"torn tail: {log} byte {third} offset 1: ")
    assert problems[2].startswith(f"bad index entry: {index} byte 0 offset 0: entry 0 (0, {first + 1}): "
                                  f"byte {first + 1} is not the start of a valid frame")
    assert len(problems) == 3
    assert result.stdout.splitlines()[-1].endswith("3 problem(s)")
    report = json.loads(fsck(data_dir, "--format", "json").stdout)
    assert [(p["kind"], p["position"]) for p in report["partitions"][0]["problems"]] == [
        ("CRC mismatch", second), ("torn tail", third), ("bad index entry", 0)]
    assert snapshot(data_dir) == before


def test_cli_fsck_usage_errors_exit_2(tmp_path):
    assert fsck(tmp_path / "missing").exit_code == 2
    empty = fsck(tmp_path)
    assert empty.exit_code == 2
    assert "holds no event-types directory" in empty.stderr


def test_cli_tail_follow_prints_new_events_until_interrupted(server, http):
    create_type(http, "cli.follow")
    process = subprocess.Popen([str(NAKADI), "tail", "cli.follow", "--follow", "--url", server.url],
                               env=own_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
        deadline = time.monotonic() + 10
        received = []
        while len(received) < 2 and time.monotonic() < deadline:
            http.post("/event-types/cli.follow/events", json=[business_event(f"live{len(received)}")])
            try:
                received.append(json.loads(lines.get(timeout=2))["order_id"])
            except queue.Empty:
                pass
        assert received[:1] == ["live0"] and len(received) == 2
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()
