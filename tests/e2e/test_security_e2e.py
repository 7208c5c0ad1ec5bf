"""Security over real HTTP: `nakadi serve` with tokens auth (tokens given
in the file, by environment variable and by file), TLS with a certificate
made by the test, the refusals to start, streams that end when their
reader loses access, and a scan of the server's whole output for tokens.

Every server listens on 127.0.0.1; a non-loopback host is only ever given
to a server that must refuse to start before it binds anything.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import trustme
from click.testing import CliRunner

from api.cli import main as cli_main
from tests.api.auth_helpers import ALL_SECRETS, UNKNOWN_TOKEN, bearer, jwt_for, unverified_jwts
from tests.api.helpers import business_event, business_type
from tests.server import NAKADI, START_SECONDS, Server, own_environment, start_server

pytestmark = pytest.mark.slow

ADMIN_TOKEN = "e2e-token-admin-0123456789abcdef"
READER_TOKEN = "e2e-token-reader-0123456789abcde"
CAROL_TOKEN = "e2e-token-carol-0123456789abcdef"
TOKENS = (ADMIN_TOKEN, READER_TOKEN, CAROL_TOKEN)
ET = "secured.orders"
STREAM_END_SECONDS_MAX = 10


def user(name: str) -> dict[str, str]:
    return {"data_type": "user", "value": name}


def write_config(workdir: Path, server_toml: str = "") -> Path:
    """tokens auth: admin's token in the file, carol's by environment
    variable, reader's in a file of its own."""
    (workdir / "reader.token").write_text(READER_TOKEN + "\n")
    config = workdir / "secured.toml"
    config.write_text(f"""
[server]
{server_toml}

[auth]
mode = "tokens"
admins = [{{ data_type = "user", value = "admin" }}]
tokens = [
    {{ token = "{ADMIN_TOKEN}", value = "admin" }},
    {{ token_file = "{workdir / 'reader.token'}", value = "reader" }},
    {{ token_env = "E2E_CAROL_TOKEN", value = "carol" }},
]
""")
    return config


def environment() -> dict[str, str]:
    return {**own_environment(), "E2E_CAROL_TOKEN": CAROL_TOKEN}


@contextmanager
def secured(workdir: Path, server_toml: str = "") -> Iterator[Server]:
    config = write_config(workdir, server_toml)
    server = start_server(workdir, workdir / "data", "--config", str(config), env=environment())
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.stop()


def client_for(server: Server, token: str | None = None, **options) -> httpx.Client:
    headers = bearer(token) if token else {}
    return httpx.Client(base_url=server.url, trust_env=False, timeout=httpx.Timeout(10), headers=headers, **options)


def run_to_exit(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(NAKADI), "serve", "--port", "0", "--data-dir", str(workdir / "data"), *args],
                          cwd=workdir, env=environment(), capture_output=True, text=True, timeout=START_SECONDS)


# -- TLS ------------------------------------------------------------------


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def tls_files(workdir: Path, ca: trustme.CA) -> tuple[Path, Path]:
    issued = ca.issue_cert("127.0.0.1")
    certificate, key = workdir / "cert.pem", workdir / "key.pem"
    certificate.write_bytes(b"".join(pem.bytes() for pem in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(key))
    return certificate, key


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def test_security_tls_serves_https_with_tokens_and_refuses_plain_http(tmp_path, ca):
    certificate, key = tls_files(tmp_path, ca)
    with secured(tmp_path, f'tls_certificate_file = "{certificate}"\ntls_key_file = "{key}"') as server:
        assert server.url.startswith("https://127.0.0.1:")
        with client_for(server, verify=trusting(ca)) as client:
            assert client.get("/health").text == "OK"
            refused = client.get("/event-types")
            assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
            assert client.get("/event-types", headers=bearer(READER_TOKEN)).status_code == 200
            assert client.get("/event-types", headers=bearer(CAROL_TOKEN)).status_code == 200
        with client_for(server) as untrusting, pytest.raises(httpx.ConnectError):
            untrusting.get("/health")
        plain_url = server.url.replace("https://", "http://")
        with httpx.Client(base_url=plain_url, trust_env=False, timeout=5) as plain, \
                pytest.raises(httpx.TransportError):
            plain.get("/health")
        status, _, stderr = server.stop()
    assert status == 0, stderr
    assert f"serving {server.url}" in stderr


@pytest.mark.parametrize(("server_toml", "message"), [
    ('tls_certificate_file = "cert.pem"', "nakadi: [server] tls_certificate_file and tls_key_file must be set "
                                          "together\n"),
    ('tls_certificate_file = "missing.pem"\ntls_key_file = "key.pem"',
     "nakadi: cannot read TLS certificate file missing.pem: No such file or directory\n"),
    ('tls_certificate_file = "cert.pem"\ntls_key_file = "cert.pem"',
     "nakadi: cannot use TLS certificate cert.pem with key cert.pem: not a PEM certificate and key\n"),
])
def test_security_tls_misconfiguration_exits_2_with_one_line(tmp_path, ca, server_toml, message):
    tls_files(tmp_path, ca)
    result = run_to_exit(tmp_path, "--config", str(write_config(tmp_path, server_toml)))
    assert (result.returncode, result.stderr) == (2, message)
    assert not (tmp_path / "data").exists()


def test_security_tls_key_of_another_certificate_exits_2(tmp_path, ca):
    certificate, _ = tls_files(tmp_path, ca)
    ca.issue_cert("localhost").private_key_pem.write_to_path(str(tmp_path / "other.pem"))
    result = run_to_exit(tmp_path, "--config", str(write_config(
        tmp_path, f'tls_certificate_file = "{certificate}"\ntls_key_file = "other.pem"')))
    assert result.returncode == 2
    assert result.stderr.startswith(f"nakadi: cannot use TLS certificate {certificate} with key other.pem: ")
    assert result.stderr.count("\n") == 1


def test_security_auth_on_a_non_loopback_host_without_tls_refuses_to_start(tmp_path):
    result = run_to_exit(tmp_path, "--host", "0.0.0.0", "--config", str(write_config(tmp_path)))
    assert result.returncode == 2
    assert result.stderr == ("nakadi: [auth] mode 'tokens' on host 0.0.0.0, which is not a loopback address, "
                             "needs TLS: set [server] tls_certificate_file and tls_key_file, or "
                             "auth_without_tls_allowed = true when a proxy in front terminates TLS\n")
    assert result.stdout == ""
    assert not (tmp_path / "data").exists()


def test_security_unset_token_variable_refuses_to_start_without_showing_tokens(tmp_path):
    config = write_config(tmp_path)
    result = subprocess.run([str(NAKADI), "serve", "--port", "0", "--config", str(config)], cwd=tmp_path,
                            env=own_environment(), capture_output=True, text=True, timeout=START_SECONDS)
    assert (result.returncode, result.stderr) == (
        2, "nakadi: [auth] tokens[2]: environment variable E2E_CAROL_TOKEN is not set or empty\n")


# -- streams that lose access ------------------------------------------------


def create_event_type(admin: httpx.Client, readers: list[str]) -> None:
    body = business_type(ET, authorization={"admins": [user("admin")], "writers": [user("admin")],
                                            "readers": [user(name) for name in readers]})
    assert admin.post("/event-types", json=body).status_code == 201


def set_event_type_readers(admin: httpx.Client, readers: list[str]) -> None:
    body = business_type(ET, authorization={"admins": [user("admin")], "writers": [user("admin")],
                                            "readers": [user(name) for name in readers]})
    assert admin.put(f"/event-types/{ET}", json=body).status_code == 200


def subscription_body(readers: list[str]) -> dict:
    return {"owning_application": "shop", "event_types": [ET], "read_from": "begin",
            "authorization": {"admins": [user("admin")], "readers": [user(name) for name in readers]}}


def ends_soon(response: httpx.Response, take_away_access) -> list[dict]:
    """Read one line, take the reader's access away, then read until the
    stream ends: its remaining lines."""
    lines = response.iter_lines()
    json.loads(next(lines))
    take_away_access()
    deadline = time.monotonic() + STREAM_END_SECONDS_MAX
    rest = []
    for line in lines:  # keep-alives come every second: the deadline, not a read timeout, bounds this
        assert time.monotonic() < deadline, "the stream goes on after its reader lost access"
        rest.append(json.loads(line))
    return rest


def test_security_low_level_stream_ends_when_the_reader_is_removed(tmp_path):
    with secured(tmp_path) as server, client_for(server, ADMIN_TOKEN) as admin, \
            client_for(server, CAROL_TOKEN) as carol:
        create_event_type(admin, ["carol", "reader"])
        assert admin.post(f"/event-types/{ET}/events", json=[business_event()]).status_code == 200
        cursors = {"X-Nakadi-Cursors": json.dumps([{"partition": "0", "offset": "BEGIN"}])}
        with carol.stream("GET", f"/event-types/{ET}/events?batch_flush_timeout=1", headers=cursors) as response:
            assert response.status_code == 200
            ends_soon(response, lambda: set_event_type_readers(admin, ["reader"]))
        assert carol.get(f"/event-types/{ET}/events", headers=cursors).status_code == 403


@pytest.mark.parametrize("removed_from", ["subscription", "event type"])
def test_security_subscription_stream_ends_when_the_reader_is_removed(tmp_path, removed_from):
    with secured(tmp_path) as server, client_for(server, ADMIN_TOKEN) as admin, \
            client_for(server, CAROL_TOKEN) as carol:
        create_event_type(admin, ["carol", "reader"])
        created = carol.post("/subscriptions", json=subscription_body(["carol", "reader"]))
        assert created.status_code == 201
        subscription_id = created.json()["id"]

        def take_away_access() -> None:
            if removed_from == "subscription":
                updated = admin.put(f"/subscriptions/{subscription_id}", json=subscription_body(["reader"]))
                assert updated.status_code == 204
            else:
                set_event_type_readers(admin, ["reader"])
        with carol.stream("GET", f"/subscriptions/{subscription_id}/events?batch_flush_timeout=1") as response:
            assert response.status_code == 200
            ends_soon(response, take_away_access)
        assert carol.get(f"/subscriptions/{subscription_id}/events").status_code == 403


# -- no token in the logs -----------------------------------------------------


def test_security_no_token_appears_in_the_server_output(tmp_path):
    expired, wrong_signature = unverified_jwts()
    presented = [*TOKENS, UNKNOWN_TOKEN, expired, wrong_signature, jwt_for("admin"), "x" * 40]
    with secured(tmp_path) as server:
        with client_for(server) as client:
            for token in presented:
                for method, path in (("GET", "/event-types"), ("POST", "/event-types"), ("GET", "/no/such"),
                                     ("DELETE", f"/event-types/{ET}"), ("GET", f"/event-types/{ET}/events")):
                    client.request(method, path, headers=bearer(token), json=business_type(ET))
                client.get("/event-types", headers={"Authorization": f"Basic {token}"})
                client.get("/event-types", headers={"Authorization": f"Bearer {token} {token}"})
            admin = bearer(ADMIN_TOKEN)
            assert client.post("/event-types", json=business_type(ET), headers=admin).status_code == 201
            assert client.post(f"/event-types/{ET}/events", json=[business_event()], headers=admin).status_code == 200
            assert client.put(f"/event-types/{ET}", json={"broken": True}, headers=admin).status_code == 422
        status, stdout, stderr = server.stop()
    assert status == 0, stderr
    output = stdout + stderr
    assert "authentication tokens" in output
    found = [secret for secret in (*presented, *ALL_SECRETS) if secret in output]
    assert found == [], "tokens found in the server's output"


def test_security_cli_verbs_send_their_token_from_the_option_or_the_environment(tmp_path):
    with secured(tmp_path) as server:
        runner = CliRunner()
        refused = runner.invoke(cli_main, ["event-types", "list", "--url", server.url],
                                env={"NAKADI_TOKEN": None}, catch_exceptions=False)
        assert refused.exit_code == 1 and refused.stdout == ""
        assert refused.stderr.startswith("nakadi: 401 Unauthorized") and refused.stderr.count("\n") == 1
        assert ADMIN_TOKEN not in refused.stderr
        by_option = runner.invoke(cli_main, ["event-types", "list", "--url", server.url, "--token", ADMIN_TOKEN],
                                  env={"NAKADI_TOKEN": None}, catch_exceptions=False)
        assert by_option.exit_code == 0, by_option.stderr
        by_environment = runner.invoke(cli_main, ["event-types", "list", "--format", "json"],
                                       env={"NAKADI_URL": server.url, "NAKADI_TOKEN": ADMIN_TOKEN},
                                       catch_exceptions=False)
        assert (by_environment.exit_code, json.loads(by_environment.stdout)) == (0, [])
