"""A real `nakadi serve` process for end-to-end tests: started on a free
port of 127.0.0.1 with its own data directory, found through its ready
file, stopped by signal or killed.

Its stdout and stderr are drained by threads while it runs (a full pipe
would block the server's logging) and kept for the test to inspect.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

NAKADI = Path(sys.executable).with_name("nakadi")
START_SECONDS = 20
STOP_SECONDS = 10
LOG_LINES_MAX = 20_000


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    data_dir: Path
    stdout: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=LOG_LINES_MAX))
    stderr: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=LOG_LINES_MAX))
    _drains: list[threading.Thread] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def drain(self) -> None:
        for pipe, lines in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr)):
            thread = threading.Thread(target=_drain, args=(pipe, lines), daemon=True)
            thread.start()
            self._drains.append(thread)

    def wait(self) -> tuple[int, str, str]:
        """Wait (bounded) for the process to exit; (status, stdout, stderr)."""
        try:
            self.process.wait(timeout=STOP_SECONDS)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=STOP_SECONDS)
            for thread in self._drains:
                thread.join(timeout=STOP_SECONDS)
            for pipe in (self.process.stdout, self.process.stderr):
                pipe.close()
        return self.process.returncode, "".join(self.stdout), "".join(self.stderr)

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str, str]:
        self.process.send_signal(signum)
        return self.wait()

    def kill(self) -> None:
        self.process.kill()
        self.wait()

    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError(f"no VmRSS for pid {self.pid}")

    def log_problems(self) -> list[str]:
        """Log lines of unexpected errors or tracebacks (there should be none)."""
        return [line for line in self.stderr if "unexpected error" in line or "Traceback" in line]


def _drain(pipe, lines: collections.deque[str]) -> None:
    for line in pipe:
        lines.append(line)


def own_environment() -> dict[str, str]:
    """This environment without NAKADI_ variables, which would configure the server under test."""
    return {name: value for name, value in os.environ.items() if not name.startswith("NAKADI_")}


def start_server(workdir: Path, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Server:
    """Start a server and wait (bounded) until its ready file names its URL."""
    ready = workdir / f"ready-{time.monotonic_ns()}"
    process = subprocess.Popen(
        [str(NAKADI), "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(data_dir),
         "--ready-file", str(ready), *args],
        cwd=workdir, env=env or own_environment(), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    server = Server(process, "", data_dir)
    server.drain()
    deadline = time.monotonic() + START_SECONDS
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.kill()
            status, stdout, stderr = server.wait()
            raise RuntimeError(f"the server did not start ({status}): {stdout}{stderr}")
        time.sleep(0.02)
    server.url = ready.read_text().strip()
    return server


@contextlib.contextmanager
def serving(workdir: Path, data_dir: Path, *args: str) -> Iterator[Server]:
    """A started server, stopped with SIGTERM (or killed) afterwards."""
    server = start_server(workdir, data_dir, *args)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.stop()
