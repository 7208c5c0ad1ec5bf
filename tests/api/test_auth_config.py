"""The [auth] section and the TLS keys of [server]: values, environment
overrides of booleans and lists, secrets resolved from the environment or a
file, and the refusals, none of which repeats a secret."""

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from api.auth_config import AUTH_DEFAULTS, AuthConfig, TokenConfig, auth_config
from api.config import Config, ConfigError, ServerConfig, load_config

from .auth_helpers import ALICE_TOKEN, BOB_TOKEN, JWT_SECRET


def write(tmp_path: Path, text: str, name: str = "nakadi.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def refusal(tmp_path: Path | None, text: str = "", environ: dict[str, str] | None = None,
            flags: dict | None = None) -> str:
    path = write(tmp_path, text) if tmp_path is not None else None
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ or {}, flags or {})
    return str(raised.value)


def test_auth_config_defaults_to_off_with_nothing_to_resolve():
    assert load_config(None, {}, {}).auth == AuthConfig() == auth_config({}, {})
    assert AuthConfig().mode == "off"


def test_auth_config_tokens_from_file_environment_and_token_file(tmp_path):
    (tmp_path / "bob.token").write_text(BOB_TOKEN + "\n")
    path = write(tmp_path, f"""
[auth]
mode = "tokens"
admins = [{{ data_type = "service", value = "ops" }}]
tokens = [
    {{ token_env = "ALICE_TOKEN", value = "alice", admin = true }},
    {{ token_file = "{tmp_path / 'bob.token'}", data_type = "service", value = "bob" }},
    {{ token = "literal-token-0123456789", value = "carol" }},
]
""")
    auth = load_config(path, {"ALICE_TOKEN": ALICE_TOKEN}, {}).auth
    assert auth.mode == "tokens"
    assert auth.admins == {("service", "ops")}
    assert auth.tokens == (TokenConfig(ALICE_TOKEN, "user", "alice", admin=True),
                           TokenConfig(BOB_TOKEN, "service", "bob"),
                           TokenConfig("literal-token-0123456789", "user", "carol"))


def test_auth_config_repr_shows_no_token():
    auth = auth_config({"mode": "tokens", "tokens": [{"token": ALICE_TOKEN, "value": "alice"}]}, {})
    assert ALICE_TOKEN not in repr(auth)
    assert ALICE_TOKEN not in repr(load_config(None, {"NAKADI_AUTH_MODE": "tokens", "NAKADI_AUTH_TOKENS":
                                                      f'[{{token = "{ALICE_TOKEN}", value = "a"}}]'}, {}))


def test_auth_config_environment_sets_mode_lists_and_booleans():
    environ = {"NAKADI_AUTH_MODE": "jwt", "NAKADI_AUTH_JWT_KEY": JWT_SECRET,
               "NAKADI_AUTH_JWT_ALGORITHMS": '["HS256", "HS512"]',
               "NAKADI_AUTH_ADMINS": '[{data_type = "user", value = "alice"}]',
               "NAKADI_AUTH_JWT_LEEWAY_SECONDS": "5", "NAKADI_SERVER_AUTH_WITHOUT_TLS_ALLOWED": "TRUE"}
    config = load_config(None, environ, {})
    assert config.auth.jwt is not None
    assert config.auth.jwt.algorithms == ("HS256", "HS512")
    assert config.auth.jwt.leeway_seconds == 5
    assert config.auth.admins == {("user", "alice")}
    assert config.server.auth_without_tls_allowed is True


def test_auth_config_jwt_settings_from_the_file_and_a_key_file(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "issuer.pem").write_bytes(public)
    path = write(tmp_path, f"""
[auth]
mode = "jwt"
jwt_key_file = "{tmp_path / 'issuer.pem'}"
jwt_algorithms = ["RS256", "PS256"]
jwt_subject_claim = "uid"
jwt_subject_data_type = "service"
jwt_audience = "nakadi"
jwt_issuer = "https://issuer.example"
jwt_required_claims = ["exp", "iat"]
""")
    settings = load_config(path, {}, {}).auth.jwt
    assert settings is not None
    assert settings.key == public.decode().strip()
    assert (settings.algorithms, settings.subject_claim, settings.subject_data_type, settings.audience,
            settings.issuer, settings.required_claims) == (
        ("RS256", "PS256"), "uid", "service", "nakadi", "https://issuer.example", ("exp", "iat"))


@pytest.mark.parametrize(("values", "message"), [
    ({"mode": "on"}, "mode must be one of off, tokens, jwt, not 'on'"),
    ({"mode": "tokens"}, 'mode "tokens" needs at least one entry in tokens'),
    ({"tokens": [{"value": "a"}]}, "tokens[0] needs exactly one of token, token_env, token_file"),
    ({"tokens": [{"token": "x", "token_env": "X", "value": "a"}]},
     "tokens[0] needs exactly one of token, token_env, token_file"),
    ({"tokens": [{"token_env": "X"}]}, "tokens[0] needs value, a non-empty string"),
    ({"tokens": [{"token_env": "X", "value": "a", "admn": True}]}, "unknown key 'admn' in tokens[0]"),
    ({"tokens": [{"token_env": "X", "value": "a", "admin": "yes"}]}, "tokens[0] admin must be true or false"),
    ({"tokens": ["just-a-token"]}, "tokens[0] must be a table such as {data_type = \"user\", value = \"alice\"}"),
    ({"admins": [{"data_type": "user"}]}, "admins[0] needs value, a non-empty string"),
    ({"mode": "tokens", "tokens": [{"token_env": "NOPE", "value": "a"}]},
     "tokens[0]: environment variable NOPE is not set or empty"),
    ({"mode": "tokens", "tokens": [{"token_file": "/no/such/token", "value": "a"}]},
     "tokens[0] token_file: cannot read /no/such/token: No such file or directory"),
    ({"mode": "jwt", "jwt_algorithms": ["HS256"]}, 'mode "jwt" needs exactly one of jwt_key and jwt_key_file'),
    ({"mode": "jwt", "jwt_key": JWT_SECRET}, 'jwt_algorithms must name at least one algorithm, e.g. ["RS256"]'),
    ({"mode": "jwt", "jwt_key": JWT_SECRET, "jwt_algorithms": ["none"]}, "jwt_algorithms: unknown algorithm 'none'"),
    ({"mode": "jwt", "jwt_key": JWT_SECRET, "jwt_algorithms": ["HS256", "RS256"]},
     "jwt_algorithms must not mix HMAC (HS*) with public-key algorithms"),
    ({"mode": "jwt", "jwt_key": "short-secret", "jwt_algorithms": ["HS256"]}, "the JWT key is too short for HS256"),
    ({"mode": "jwt", "jwt_key": JWT_SECRET, "jwt_algorithms": ["RS256"]},
     "the JWT key is not a valid key for RS256"),
    ({"mode": "jwt", "jwt_key": JWT_SECRET, "jwt_algorithms": ["HS256"], "jwt_leeway_seconds": -1},
     "jwt_leeway_seconds must be at least 0, not -1"),
    ({"mode": "jwt", "jwt_key": JWT_SECRET, "jwt_algorithms": ["HS256"], "jwt_subject_claim": ""},
     "jwt_subject_claim must not be empty"),
    ({"jwt_algorithms": ["HS256", 1]}, "jwt_algorithms must be a list of non-empty strings, not ['HS256', 1]"),
])
def test_auth_config_refusals_name_the_key(values, message):
    with pytest.raises(ValueError) as raised:
        auth_config(values, {})
    assert str(raised.value).startswith(message)


def test_auth_config_private_jwt_key_is_refused():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    with pytest.raises(ValueError, match="^the JWT key for RS256 must be the public key"):
        auth_config({"mode": "jwt", "jwt_key": pem, "jwt_algorithms": ["RS256"]}, {})


@pytest.mark.parametrize("token", ["short-token", "has a space in it 0123", "quote\"0123456789abcdef"])
def test_auth_config_token_that_cannot_be_a_bearer_token_is_refused_without_repeating_it(token):
    with pytest.raises(ValueError) as raised:
        auth_config({"mode": "tokens", "tokens": [{"token": token, "value": "a"}]}, {})
    assert str(raised.value).startswith("tokens[0]: the token must be at least 16 characters of")
    assert token not in str(raised.value)


def test_auth_config_repeated_token_is_refused_without_repeating_it():
    with pytest.raises(ValueError) as raised:
        auth_config({"mode": "tokens", "tokens": [{"token": ALICE_TOKEN, "value": "a"},
                                                  {"token_env": "SAME", "value": "b"}]}, {"SAME": ALICE_TOKEN})
    assert str(raised.value) == "tokens[1] repeats the token of tokens[0]"


def test_auth_config_secrets_of_a_mode_not_in_use_are_not_resolved():
    values = {"mode": "off", "tokens": [{"token_env": "UNSET", "value": "a"}], "jwt_key_file": "/no/such/key"}
    assert auth_config(values, {}) == AuthConfig()


def test_auth_config_wrong_types_are_refused_without_showing_secrets(tmp_path):
    assert refusal(tmp_path, f'[auth]\ntokens = "{ALICE_TOKEN}"\n') == (
        f"[auth] tokens must be a list, not a value not shown here, as it holds secrets ({tmp_path / 'nakadi.toml'})")
    assert refusal(tmp_path, "[auth]\njwt_key = 12345678\n").startswith(
        "[auth] jwt_key must be a string, not a value not shown here")
    message = refusal(None, environ={"NAKADI_AUTH_TOKENS": f"{ALICE_TOKEN}"})
    assert message == ("[auth] tokens must be a TOML array such as [\"a\", \"b\"], not a value not shown here, "
                       "as it holds secrets (environment variable NAKADI_AUTH_TOKENS)")
    assert ALICE_TOKEN not in message


@pytest.mark.parametrize(("text", "message"), [
    ("[auth]\nmod = \"off\"\n", "unknown key 'mod' in [auth]"),
    ("[auth.jwt]\nkey = \"x\"\n", "unknown key 'jwt' in [auth]"),
    ("[auth]\nadmins = \"alice\"\n", "[auth] admins must be a list, not 'alice'"),
    ("[server]\nauth_without_tls_allowed = 1\n", "[server] auth_without_tls_allowed must be true or false, not 1"),
    ("[server]\ntls_certificate_file = \"cert.pem\"\n",
     "[server] tls_certificate_file and tls_key_file must be set together"),
])
def test_auth_config_unknown_or_mistyped_keys_stop_start_up(tmp_path, text, message):
    assert refusal(tmp_path, text).startswith(message)


def test_auth_config_environment_boolean_and_list_that_do_not_parse_are_refused():
    assert refusal(None, environ={"NAKADI_SERVER_AUTH_WITHOUT_TLS_ALLOWED": "yes"}) == (
        "[server] auth_without_tls_allowed must be true or false, not 'yes' "
        "(environment variable NAKADI_SERVER_AUTH_WITHOUT_TLS_ALLOWED)")
    assert refusal(None, environ={"NAKADI_AUTH_JWT_ALGORITHMS": "RS256"}).startswith(
        "[auth] jwt_algorithms must be a TOML array such as [\"a\", \"b\"], not 'RS256'")


TOKENS_ON = {"NAKADI_AUTH_MODE": "tokens", "NAKADI_AUTH_TOKENS": f'[{{token = "{ALICE_TOKEN}", value = "alice"}}]'}


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "nakadi.example"])
def test_auth_config_auth_on_a_non_loopback_host_needs_tls(host):
    message = refusal(None, environ=TOKENS_ON, flags={"server": {"host": host}})
    assert message == (f"[auth] mode 'tokens' on host {host}, which is not a loopback address, needs TLS: set "
                       f"[server] tls_certificate_file and tls_key_file, or auth_without_tls_allowed = true when "
                       f"a proxy in front terminates TLS")


@pytest.mark.parametrize("server", [
    {"host": "127.0.0.1"}, {"host": "127.8.9.10"}, {"host": "::1"}, {"host": "localhost"},
    {"host": "0.0.0.0", "tls_certificate_file": "cert.pem", "tls_key_file": "key.pem"},
    {"host": "0.0.0.0", "auth_without_tls_allowed": True},
])
def test_auth_config_auth_on_loopback_with_tls_or_when_allowed_starts(server):
    assert load_config(None, TOKENS_ON, {"server": server}).auth.mode == "tokens"


def test_auth_config_auth_off_on_any_host_needs_no_tls():
    assert load_config(None, {}, {"server": {"host": "0.0.0.0"}}).server.loopback is False


def test_auth_config_tls_keys_reach_the_server_config(tmp_path):
    path = write(tmp_path, '[server]\ntls_certificate_file = "c.pem"\ntls_key_file = "k.pem"\n')
    server = load_config(path, {}, {}).server
    assert (server.tls, server.tls_certificate_file, server.tls_key_file) == (True, "c.pem", "k.pem")
    assert not ServerConfig().tls


def test_auth_config_every_key_has_a_default():
    assert set(AUTH_DEFAULTS) == {"mode", "admins", "tokens", "jwt_key", "jwt_key_file", "jwt_algorithms",
                                  "jwt_subject_claim", "jwt_subject_data_type", "jwt_audience", "jwt_issuer",
                                  "jwt_leeway_seconds", "jwt_required_claims"}
    assert Config().auth == AuthConfig()



def test_auth_config_every_example_of_the_security_docs_loads(tmp_path, monkeypatch):
    """docs/security.md's TOML blocks, each as a whole file, with the files
    and variables they name."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "shop.token").write_text(BOB_TOKEN + "\n")
    (tmp_path / "keys").mkdir()
    for name, key in (("issuer-public.pem", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
                      ("issuer-ec-public.pem", ec.generate_private_key(ec.SECP256R1()))):
        (tmp_path / "keys" / name).write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    text = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    blocks = [block.split("```", 1)[0] for block in text.split("```toml\n")[1:]]
    assert len(blocks) == 6
    modes = []
    for index, block in enumerate(blocks):
        environ = {"ALICE_TOKEN": ALICE_TOKEN}
        if "NAKADI_AUTH_JWT_KEY" in block:
            environ["NAKADI_AUTH_JWT_KEY"] = JWT_SECRET
        modes.append(load_config(write(tmp_path, block, f"example-{index}.toml"), environ, {}).auth.mode)
    assert set(modes) == {"off", "tokens", "jwt"}
