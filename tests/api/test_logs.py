"""Log lines: the JSON and readable formats, and one access line per
request with its flow id and never a token."""

import io
import json
import logging
import sys

import pytest

from api.app import create_app
from api.auth import authenticator
from api.auth_config import AuthConfig, TokenConfig
from api.logs import READABLE_FORMAT, JsonFormatter, configure_logging, formatter_for

TOKEN = "access-log-token-0123456789abcdef"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def record(message="hello %s", args=("world",), **extra) -> logging.LogRecord:
    line = logging.LogRecord("nakadi.test", logging.WARNING, __file__, 1, message, args, None)
    line.__dict__.update(extra)
    return line


def test_logs_json_line_has_time_level_logger_message_and_extra_fields():
    line = JsonFormatter().format(record(flow_id="f-1", status=201))
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed.pop("time").endswith("+00:00")
    assert parsed == {"level": "WARNING", "logger": "nakadi.test", "message": "hello world", "flow_id": "f-1",
                      "status": 201}


def test_logs_json_line_carries_a_traceback_as_one_field():
    try:
        raise ValueError("boom")
    except ValueError:
        line = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    parsed = json.loads(JsonFormatter().format(line))
    assert parsed["message"] == "failed"
    assert parsed["exc_info"].startswith("Traceback") and "ValueError: boom" in parsed["exc_info"]


def test_logs_format_is_readable_on_a_terminal_and_json_elsewhere():
    assert isinstance(formatter_for(io.StringIO()), JsonFormatter)
    readable = formatter_for(Terminal())
    assert not isinstance(readable, JsonFormatter) and readable._fmt == READABLE_FORMAT


@pytest.mark.parametrize(("stream", "json_lines"), [(io.StringIO(), True), (Terminal(), False)])
def test_logs_configure_logging_writes_the_chosen_format_to_the_stream(stream, json_lines):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(stream)
        logging.getLogger("nakadi.test").info("serving %s", "http://127.0.0.1:1")
    finally:
        root.handlers[:], root.level = saved
    line = stream.getvalue().strip()
    if json_lines:
        assert json.loads(line)["message"] == "serving http://127.0.0.1:1"
    else:
        assert line.endswith("INFO nakadi.test: serving http://127.0.0.1:1")


def access_lines(caplog) -> list[dict]:
    return [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "nakadi.access"]


async def test_logs_one_access_line_per_request_with_its_flow_id_and_no_token(broker, caplog):
    config = AuthConfig("tokens", tokens=(TokenConfig(TOKEN, "user", "ops"),))
    client = create_app(broker, authenticator=authenticator(config)).test_client()
    caplog.set_level(logging.INFO, logger="nakadi.access")
    response = await client.get("/event-types?owning_application=shop",
                                headers={"Authorization": f"Bearer {TOKEN}", "X-Flow-Id": "flow-access"})
    assert response.status_code == 200
    refused = await client.get("/event-types", headers={"Authorization": "Bearer not-a-known-token"})
    assert refused.status_code == 401
    first, second = access_lines(caplog)
    assert first["duration_ms"] >= 0
    assert {k: first[k] for k in ("method", "path", "status", "flow_id", "completed", "logger", "level")} == {
        "method": "GET", "path": "/event-types?owning_application=shop", "status": 200, "flow_id": "flow-access",
        "completed": True, "logger": "nakadi.access", "level": "INFO"}
    assert (second["status"], len(second["flow_id"])) == (401, 24)
    text = caplog.text + json.dumps([first, second])
    assert TOKEN not in text and "not-a-known-token" not in text and "Bearer" not in text
