"""The HTTP side of the client verbs: the shared options, one `httpx.Client`
per command, and the rendering of failures as one line.

Every client verb takes `--url` (env NAKADI_URL), `--token` (env
NAKADI_TOKEN, sent as `Authorization: Bearer`) and `--format text|json`
through `client_options`, and reaches the server only through `Api`. A
server error becomes `CliError` with the Problem JSON's status, title and
detail; an unreachable server one naming the URL. Both end the command with
one line on stderr and exit status 1, never a traceback. Proxy variables of
the environment are ignored: the verbs talk to the URL given, directly.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import click
import httpx

DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT_SECONDS = 30
EXIT_FAILED = 1


class CliError(click.ClickException):
    """A failure shown as one line, `nakadi: <message>`, exit status 1."""

    exit_code = EXIT_FAILED

    def show(self, file: Any = None) -> None:
        click.echo(f"nakadi: {self.message}", err=True)


@dataclass(frozen=True)
class Api:
    """A connected client and how the user wants the output."""

    http: httpx.Client
    url: str
    format: str

    @property
    def json_output(self) -> bool:
        return self.format == "json"

    def request(self, method: str, path: str, *, allowed: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        """The response to a request, raising `CliError` for an error status
        not in `allowed`."""
        with translated(self.url):
            response = self.http.request(method, path, **kwargs)
        if response.is_error and response.status_code not in allowed:
            raise CliError(problem_line(response))
        return response

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A streamed response; an error status is read whole and raised."""
        with translated(self.url), self.http.stream(method, path, **kwargs) as response:
            if response.is_error:
                response.read()
                raise CliError(problem_line(response))
            yield response


@contextmanager
def translated(url: str) -> Iterator[None]:
    """Transport failures as `CliError` naming `url`."""
    try:
        yield
    except httpx.ConnectError as error:
        raise CliError(f"cannot connect to {url}: {_reason(error)}") from None
    except httpx.TimeoutException:
        raise CliError(f"{url} did not answer in time") from None
    except httpx.TransportError as error:
        raise CliError(f"connection to {url} failed: {_reason(error)}") from None


def _reason(error: Exception) -> str:
    text = str(error)
    if "Connection refused" in text:
        return "connection refused"
    return text or type(error).__name__


def problem_line(response: httpx.Response) -> str:
    """`<status> <title>: <detail>` from a Problem JSON, or the status and body."""
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if isinstance(problem, dict) and ("title" in problem or "detail" in problem):
        status = problem.get("status", response.status_code)
        title = problem.get("title") or response.reason_phrase
        # Nakadi puts one field error per line; the line we print stays one.
        detail = "; ".join(line.strip() for line in str(problem.get("detail") or "").splitlines() if line.strip())
        return f"{status} {title}: {detail}" if detail else f"{status} {title}"
    body = " ".join(response.text.split())[:200]
    return f"{response.status_code} {response.reason_phrase}" + (f": {body}" if body else "")


def client_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add --url, --token and --format; the command receives `api: Api`."""
    @click.option("--url", envvar="NAKADI_URL", default=DEFAULT_URL, show_default=True,
                  help="Base URL of the server  [env NAKADI_URL]")
    @click.option("--token", envvar="NAKADI_TOKEN", help="Bearer token  [env NAKADI_TOKEN]")
    @click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
                  show_default=True, help="Output format")
    @functools.wraps(command)
    def wrapper(url: str, token: str | None, output_format: str, **kwargs: Any) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = url.rstrip("/")
        with httpx.Client(base_url=url, headers=headers, timeout=TIMEOUT_SECONDS, trust_env=False) as http:
            command(Api(http, url, output_format), **kwargs)
    return wrapper


def echo_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def echo_table(headers: list[str], rows: list[list[object]]) -> None:
    """Rows in columns as wide as their widest cell, under `headers`."""
    cells = [headers] + [["" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def is_terminal(stream: Any = None) -> bool:
    stream = sys.stdout if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


def segment(text: str) -> str:
    """`text` escaped as one path segment."""
    return quote(text, safe="")
