"""The `nakadi` command line.

`nakadi serve` loads the configuration, takes the data directory's lock and
serves the API with Hypercorn's trio worker until SIGINT or SIGTERM, over
TLS when a certificate and key are configured (checked before anything
starts), authenticating callers as [auth] says. Once it accepts
connections it prints its URL (https with TLS) as one line on stdout and,
when asked, writes it to a ready file, so tests and tools can find a
server started on port 0. With `--seed FILE` it first creates the event
types and subscriptions the file lists that are missing (`broker.seed`).

The client verbs (event-types, publish, tail, subscriptions, lag) and the
offline `fsck` live in the `cli_*` modules and are registered on `main`
here; docs/cli.md is their reference.

Exit status: 0 after a clean shutdown; 2 when the server cannot start (bad
configuration or seed, data directory in use, address unavailable), with one line
on stderr saying why. No secret of the configuration is ever printed or
logged.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import ssl
import sys
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import NamedTuple

import click
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from broker.broker import Broker, BrokerConfig
from broker.config import fault_hooks
from broker.errors import BrokerError
from broker.seed import apply_seed

from .app import create_app, shield_last_send
from .auth import authenticator
from .cli_event_types import event_types
from .cli_fsck import fsck
from .cli_publish import publish
from .cli_subscriptions import lag, subscriptions
from .cli_tail import tail
from .config import Config, ConfigError, ServerConfig, default_config_file, load_config
from .data_dir_lock import DataDirError, locked_data_dir
from .logs import configure_logging

log = logging.getLogger(__name__)

EXIT_CANNOT_START = 2
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
FAULT_VARIABLE = "NAKADI_FAULT"
SYNC_TRACE_VARIABLE = "NAKADI_SYNC_TRACE"


class StartupError(Exception):
    """The server cannot start; the message says why, in one line."""


class Seed(NamedTuple):
    """The parsed `--seed` file and where it came from."""

    path: Path
    document: object


@click.group()
def main() -> None:
    """nakadi: an event bus serving the Nakadi REST API."""


for _command in (event_types, publish, tail, subscriptions, lag, fsck):
    main.add_command(_command)


@main.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML configuration file  [default: ./nakadi.toml if present]")
@click.option("--host", help="Address to listen on  [overrides server.host]")
@click.option("--port", type=int, help="Port to listen on, 0 for any free one  [overrides server.port]")
@click.option("--data-dir", help="Directory of the data, created if missing  [overrides server.data_dir]")
@click.option("--ready-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the bound URL to this file once the server accepts connections")
@click.option("--seed", "seed_file", type=click.Path(dir_okay=False, path_type=Path),
              help="JSON file of event types and subscriptions to create at start if missing (docs/cli.md)")
def serve(config_file: Path | None, host: str | None, port: int | None, data_dir: str | None,
          ready_file: Path | None, seed_file: Path | None) -> None:
    """Serve the Nakadi API until SIGINT or SIGTERM."""
    flags = {"host": host, "port": port, "data_dir": data_dir}
    try:
        config = load_config(config_file or default_config_file(Path.cwd()), os.environ,
                             {"server": {key: value for key, value in flags.items() if value is not None}})
        _check_tls(config.server)
        seed = _read_seed(seed_file)
        _configure_logging()
        with locked_data_dir(Path(config.server.data_dir)):
            _run(config, ready_file, seed)
    except (ConfigError, DataDirError, StartupError) as error:
        click.echo(f"nakadi: {error}", err=True)
        sys.exit(EXIT_CANNOT_START)


def _check_tls(server: ServerConfig) -> None:
    """Load the certificate and key as Hypercorn will, so that a missing or
    unreadable file, a key that does not match, or an encrypted key (whose
    password would be asked for on the terminal) stops start-up here."""
    if not server.tls:
        return
    for name, path in (("certificate", server.tls_certificate_file), ("key", server.tls_key_file)):
        try:
            with open(path, "rb"):
                pass
        except OSError as error:
            raise StartupError(f"cannot read TLS {name} file {path}: {error.strerror}") from None

    def no_password() -> bytes:
        raise StartupError(f"TLS key {server.tls_key_file} is encrypted; give an unencrypted key file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(server.tls_certificate_file, server.tls_key_file, password=no_password)
    except ssl.SSLError as error:
        raise StartupError(f"cannot use TLS certificate {server.tls_certificate_file} with key "
                           f"{server.tls_key_file}: {error.reason or 'not a PEM certificate and key'}") from None


def _read_seed(seed_file: Path | None) -> Seed | None:
    if seed_file is None:
        return None
    try:
        return Seed(seed_file, json.loads(seed_file.read_bytes()))
    except OSError as error:
        raise StartupError(f"cannot read seed file {seed_file}: {error.strerror}") from None
    except ValueError as error:
        raise StartupError(f"seed file {seed_file} is not JSON: {error}") from None


def _configure_logging() -> None:
    """JSON lines on stderr, or the readable format when it is a terminal
    (`api/logs.py`); Hypercorn's own access log stays off (ours is
    `nakadi.access`)."""
    configure_logging()
    # Hypercorn announces its address at INFO; our start line says it once.
    logging.getLogger("hypercorn.error").setLevel(logging.WARNING)


def _run(config: Config, ready_file: Path | None, seed: Seed | None = None) -> None:
    """Open the data directory (recovery runs here), then serve until a stop
    signal; a start-up failure comes out as the one `StartupError`."""
    try:
        broker = Broker.open(_broker_config(config, os.environ))
    except BrokerError as error:
        raise StartupError(error.detail) from error
    _tune_interpreter()
    try:
        trio.run(_serve, config, broker, ready_file, seed)
    except BaseExceptionGroup as group:
        failure = _sole_exception(group)
        if isinstance(failure, StartupError):
            raise failure from None
        raise
    finally:
        broker.close()


def _broker_config(config: Config, environ: Mapping[str, str]) -> BrokerConfig:
    """The broker's configuration, with the test-only fault hooks when
    `NAKADI_FAULT` or `NAKADI_SYNC_TRACE` is set (RELIABILITY.md 1b and 1c;
    never meant for real use)."""
    fault, trace = environ.get(FAULT_VARIABLE), environ.get(SYNC_TRACE_VARIABLE)
    try:
        hooks = fault_hooks(fault, trace)
    except ValueError as error:
        raise StartupError(f"{FAULT_VARIABLE}: {error}") from error
    if hooks is not None:
        log.warning("test-only fault hooks are on: %s=%s %s=%s", FAULT_VARIABLE, fault or "",
                    SYNC_TRACE_VARIABLE, trace or "")
    return BrokerConfig(config.server.data_dir, config.storage, io=hooks)


def _tune_interpreter() -> None:
    """Collect cycles less often than CPython's default (every 700 net
    container allocations): a publish of 1000 events allocates some 25,000
    containers that all live until the 200, so the default runs dozens of
    collections per request that find nothing (10-20% more events/s for
    batches of 100 and 1000). What start-up loaded is frozen out of every
    collection.

    Hand the GIL over after 0.5 ms instead of 5: a worker thread back from
    an fdatasync waits that long for the busy event loop before it can wake
    the publishes the sync acknowledged (8-10% more events/s for batches
    of 1 and 100 over 4 partitions; 0.1 ms is slower again). Both measured
    with bench/publish_bench.py's load."""
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    sys.setswitchinterval(0.0005)


async def _serve(config: Config, broker: Broker, ready_file: Path | None, seed: Seed | None) -> None:
    if seed is not None:
        await _apply_seed(broker, seed)
    hypercorn_config = _hypercorn_config(config.server)
    app = shield_last_send(create_app(broker, request_bytes_max=config.server.request_bytes_max,
                                      authenticator=authenticator(config.auth)))
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with trio.open_nursery() as nursery:
            async def server(task_status: trio.TaskStatus[list[str]]) -> None:
                await hypercorn_serve(app, hypercorn_config, shutdown_trigger=partial(_wait_for_stop, signals, broker),
                                      task_status=task_status)
                nursery.cancel_scope.cancel()
            try:
                urls = await nursery.start(server)
            except BaseExceptionGroup as group:
                raise StartupError(f"cannot listen on {hypercorn_config.bind[0]}: "
                                   f"{_sole_exception(group)}") from group
            nursery.start_soon(broker.run_retention)
            _announce(urls[0], config, ready_file)
    log.info("stopped")


async def _apply_seed(broker: Broker, seed: Seed) -> None:
    try:
        done = await apply_seed(broker, seed.document)
    except BrokerError as error:
        raise StartupError(f"seed file {seed.path}: {error.detail}") from error
    for line in done:
        log.info("seed: %s", line)


def _hypercorn_config(server: ServerConfig) -> HypercornConfig:
    hypercorn_config = HypercornConfig()
    host = f"[{server.host}]" if ":" in server.host else server.host
    hypercorn_config.bind = [f"{host}:{server.port}"]
    hypercorn_config.errorlog = logging.getLogger("hypercorn.error")
    if server.tls:
        hypercorn_config.certfile = server.tls_certificate_file
        hypercorn_config.keyfile = server.tls_key_file
    return hypercorn_config


async def _wait_for_stop(signals: trio.abc.ReceiveChannel[int], broker: Broker) -> None:
    """Return at the first stop signal, which starts Hypercorn's graceful
    shutdown, once open streams were told to end (cleanly, with their last
    chunk) so the shutdown does not have to cut them."""
    async for signum in signals:
        log.info("%s received, shutting down", signal.Signals(signum).name)
        broker.end_streams()
        return


def _announce(url: str, config: Config, ready_file: Path | None) -> None:
    log.info("serving %s (data directory %s, authentication %s)", url, Path(config.server.data_dir).resolve(),
             config.auth.mode)
    _warn_of_exposure(config)
    durability = config.storage.log.durability
    if durability != "always":
        log.warning("storage durability is %r: acknowledged events can be lost in a crash", durability)
    click.echo(url)
    if ready_file is not None:
        _write_atomically(ready_file, url + "\n")


def _warn_of_exposure(config: Config) -> None:
    server = config.server
    if server.loopback:
        return
    if config.auth.mode == "off":
        log.warning("authentication is off and %s is not a loopback address: whoever reaches it can read, "
                    "write and delete every event type, event and subscription", server.host)
    elif not server.tls:
        log.warning("bearer tokens reach %s without TLS (auth_without_tls_allowed): they are safe only if "
                    "a proxy in front terminates TLS", server.host)


def _write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` so readers see the whole of it or nothing."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        temporary.write_text(text)
        temporary.replace(path)
    except OSError as error:
        raise StartupError(f"cannot write ready file {path}: {error.strerror}") from error


def _sole_exception(error: BaseException) -> BaseException:
    """The exception inside nested single-member groups, as trio's nurseries wrap it."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error
