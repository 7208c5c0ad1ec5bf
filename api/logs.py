"""How the server's log lines look: one JSON object per line, or, on a
terminal, the readable `time level logger: message`.

A JSON line carries `time` (UTC, RFC 3339 with milliseconds), `level`,
`logger`, `message` (the formatted text) and every field the call passed
in `extra`; a traceback comes as the text of `exc_info`. Nothing here
adds request headers: what a line holds is what its call site put there,
and no call site puts a token.
"""

from __future__ import annotations

import datetime
import logging
import sys
from typing import TextIO

import orjson

READABLE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# The attributes every LogRecord has; the others came in through `extra`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for name, value in record.__dict__.items():
            if name not in _STANDARD and name not in line:
                line[name] = value
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


def formatter_for(stream: TextIO) -> logging.Formatter:
    """The readable format on a terminal, JSON lines anywhere else."""
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return logging.Formatter(READABLE_FORMAT)
    return JsonFormatter()


def configure_logging(stream: TextIO | None = None) -> None:
    """Log INFO and above to `stream` (stderr), as `formatter_for` says."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter_for(handler.stream))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
