"""`nakadi serve` end to end: a real process on a free port of 127.0.0.1,
found through its ready file, spoken to over real HTTP, stopped by signal."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import NAKADI, START_SECONDS, Server, own_environment, serving

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with serving(tmp_path, tmp_path / "data") as server:
        yield server


def run_to_exit(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(NAKADI), "serve", *args], cwd=cwd, env=own_environment(), capture_output=True,
                          text=True, timeout=START_SECONDS)


def test_cli_serve_answers_over_http_and_stops_cleanly_on_sigterm(server, tmp_path):
    assert server.url.startswith("http://127.0.0.1:")
    assert not list(tmp_path.glob("*.tmp"))
    with httpx.Client(base_url=server.url, trust_env=False, timeout=5) as client:
        health = client.get("/health", headers={"X-Flow-Id": "e2e-flow"})
        missing = client.get("/no/such/route")
    assert (health.status_code, health.text, health.headers["X-Flow-Id"]) == (200, "OK", "e2e-flow")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/problem+json"
    assert missing.json()["status"] == 404
    assert len(missing.headers["X-Flow-Id"]) == 24
    assert (server.data_dir / ".lock").is_file()
    returncode, stdout, stderr = server.stop(signal.SIGTERM)
    assert returncode == 0, stderr
    assert stdout == server.url + "\n"
    assert f"serving {server.url}" in stderr
    assert "Traceback" not in stderr


def test_cli_serve_stops_cleanly_on_sigint(server):
    returncode, _, stderr = server.stop(signal.SIGINT)
    assert returncode == 0, stderr
    assert "Traceback" not in stderr


def test_cli_serve_second_server_on_a_taken_data_dir_or_port_exits_2(server, tmp_path):
    same_dir = run_to_exit(tmp_path, "--port", "0", "--data-dir", str(server.data_dir))
    assert same_dir.returncode == 2
    assert same_dir.stderr == (f"nakadi: data directory {server.data_dir} is in use by another nakadi "
                               f"(pid {server.process.pid})\n")
    port = server.url.rsplit(":", 1)[1]
    same_port = run_to_exit(tmp_path, "--port", port, "--data-dir", str(tmp_path / "other"))
    assert same_port.returncode == 2
    assert same_port.stderr.startswith(f"nakadi: cannot listen on 127.0.0.1:{port}: ")
    assert same_port.stderr.count("\n") == 1
    assert server.process.poll() is None


def test_cli_serve_unknown_key_exits_2_with_one_line(tmp_path):
    (tmp_path / "nakadi.toml").write_text("[server]\nprot = 8080\n")
    result = run_to_exit(tmp_path, "--port", "0", "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 2
    assert result.stderr == f"nakadi: unknown key 'prot' in [server] ({tmp_path / 'nakadi.toml'})\n"
    assert not (tmp_path / "data").exists()


def test_cli_serve_malformed_fault_hook_exits_2_naming_the_variable(tmp_path):
    result = subprocess.run([str(NAKADI), "serve", "--port", "0", "--data-dir", str(tmp_path / "data")], cwd=tmp_path,
                            env={**own_environment(), "NAKADI_FAULT": "nowhere:1"}, capture_output=True, text=True,
                            timeout=START_SECONDS)
    assert result.returncode == 2
    assert result.stderr.startswith("nakadi: NAKADI_FAULT: unknown crash point 'nowhere'")
