"""A broker served from a background thread of the calling process, for
tests and tools that want a real Nakadi endpoint without a subprocess.

    from api.embedded import EmbeddedBroker

    with EmbeddedBroker("/tmp/nakadi-data") as nakadi:
        httpx.get(nakadi.url + "/event-types")

The thread runs its own trio loop with Hypercorn on 127.0.0.1 and a free
port (by default), the same app as `nakadi serve` with authentication off
and durable storage. `stop()` (or leaving the `with`) ends open streams,
shuts Hypercorn down gracefully and closes the data directory.
"""

from __future__ import annotations

import threading
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from broker.broker import Broker, BrokerConfig
from broker.config import StorageConfig

from .app import create_app, shield_last_send
from .data_dir_lock import locked_data_dir

START_SECONDS = 30
STOP_SECONDS = 30


class EmbeddedBroker:
    """One broker over `data_dir`, served while started."""

    def __init__(self, data_dir: str | Path, *, host: str = "127.0.0.1", port: int = 0,
                 storage: StorageConfig | None = None) -> None:
        self._config = BrokerConfig(str(data_dir), storage or StorageConfig())
        self._lock = ExitStack()
        self._bind = f"{host}:{port}"
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._failure: BaseException | None = None
        self.url = ""

    def start(self) -> str:
        """Start serving; the base URL (`http://127.0.0.1:<port>`). Raises
        `DataDirError` while another broker holds the data directory."""
        if self._thread is not None:
            raise RuntimeError("this embedded broker was started already")
        self._lock.enter_context(locked_data_dir(Path(self._config.data_dir)))
        self._thread = threading.Thread(target=self._run, name="nakadi-embedded", daemon=True)
        self._thread.start()
        if not self._started.wait(START_SECONDS):
            raise RuntimeError(f"the embedded broker did not start within {START_SECONDS} s")
        if self._failure is not None:
            self._lock.close()
            raise RuntimeError(f"the embedded broker did not start: {self._failure}") from self._failure
        return self.url

    def stop(self) -> None:
        """Stop serving (streams end first) and close the data directory."""
        thread, token, stop = self._thread, self._token, self._stop
        if thread is not None and token is not None and stop is not None:
            try:
                token.run_sync_soon(stop.set)
            except trio.RunFinishedError:
                pass
            thread.join(STOP_SECONDS)
            if thread.is_alive():
                raise RuntimeError(f"the embedded broker did not stop within {STOP_SECONDS} s")
        self._lock.close()

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            broker = Broker.open(self._config)
        except BaseException as error:
            self._failure = error
            self._started.set()
            return
        try:
            trio.run(self._serve, broker)
        except BaseException as error:
            self._failure = error
        finally:
            broker.close()
            self._started.set()

    async def _serve(self, broker: Broker) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        config = HypercornConfig()
        config.bind = [self._bind]
        config.loglevel = "WARNING"  # no "Running on ..." line in the embedding process's output

        async def wait_for_stop() -> None:
            await self._stop.wait()  # type: ignore[union-attr]
            broker.end_streams()

        app = shield_last_send(create_app(broker))
        async with trio.open_nursery() as nursery:
            async def server(task_status: trio.TaskStatus[list[str]]) -> None:
                await hypercorn_serve(app, config, shutdown_trigger=wait_for_stop, task_status=task_status)
                nursery.cancel_scope.cancel()  # retention too, once Hypercorn has shut down
            urls = await nursery.start(server)
            self.url = urls[0]
            nursery.start_soon(broker.run_retention)
            self._started.set()
