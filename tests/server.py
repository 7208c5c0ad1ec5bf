"""A real `nakadi serve` process for end-to-end tests: started on a free
port of 127.0.0.1 with its own data directory, found through its ready
file, stopped by signal or killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

NAKADI = Path(sys.executable).with_name("nakadi")
START_SECONDS = 20
STOP_SECONDS = 10


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    data_dir: Path

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str, str]:
        self.process.send_signal(signum)
        stdout, stderr = self.process.communicate(timeout=STOP_SECONDS)
        return self.process.returncode, stdout, stderr

    def kill(self) -> None:
        self.process.kill()
        self.process.communicate(timeout=STOP_SECONDS)


def own_environment() -> dict[str, str]:
    """This environment without NAKADI_ variables, which would configure the server under test."""
    return {name: value for name, value in os.environ.items() if not name.startswith("NAKADI_")}


def start_server(workdir: Path, data_dir: Path, *args: str) -> Server:
    """Start a server and wait (bounded) until its ready file names its URL."""
    ready = workdir / f"ready-{time.monotonic_ns()}"
    process = subprocess.Popen(
        [str(NAKADI), "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(data_dir),
         "--ready-file", str(ready), *args],
        cwd=workdir, env=own_environment(), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + START_SECONDS
    while not ready.exists():
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"no ready file after {START_SECONDS} s: {process.communicate()}")
        time.sleep(0.02)
    return Server(process, ready.read_text().strip(), data_dir)
