"""The [auth] section of the configuration: how callers prove who they are,
and which of them are Nakadi admins.

`api.config` reads the section, rejects unknown keys and checks each value
has its default's type; this module checks the values make sense and
resolves the secrets of the mode in use: a token given by `token_env` is
read from the environment and one given by `token_file` from its file, as
is the JWT key of `jwt_key_file`, so that a missing secret stops start-up.
Keys of a mode not in use are checked for shape but not resolved.

A secret never appears in a message or a `repr`: messages name the entry
(`tokens[2]`) and where its value came from, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import jwt
from jwt.algorithms import get_default_algorithms

AUTH_MODES = ("off", "tokens", "jwt")
TOKEN_SOURCES = ("token", "token_env", "token_file")
TOKEN_CHARS_MIN = 16
# RFC 6750's b64token: what may follow "Bearer " in an Authorization header.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")

Attribute = tuple[str, str]

AUTH_DEFAULTS: Mapping[str, object] = MappingProxyType({
    "mode": "off",
    "admins": (),
    "tokens": (),
    "jwt_key": "",
    "jwt_key_file": "",
    "jwt_algorithms": (),
    "jwt_subject_claim": "sub",
    "jwt_subject_data_type": "user",
    "jwt_audience": "",
    "jwt_issuer": "",
    "jwt_leeway_seconds": 0,
    "jwt_required_claims": ("exp",),
})
"""Every [auth] key with its default; a value must have its default's type
(a tuple's is a list)."""

SECRET_KEYS = frozenset({"tokens", "jwt_key"})
"""Keys whose values no message may repeat."""

_JWT_SETTINGS = ("subject_claim", "subject_data_type", "audience", "issuer", "leeway_seconds")
_TOKEN_KEYS = frozenset({*TOKEN_SOURCES, "data_type", "value", "admin"})
_ATTRIBUTE_KEYS = frozenset({"data_type", "value"})


@dataclass(frozen=True)
class TokenConfig:
    """A static bearer token and the subject it stands for."""

    token: str = field(repr=False)
    data_type: str
    value: str
    admin: bool = False


@dataclass(frozen=True)
class JwtConfig:
    """How JSON Web Tokens are verified and who they name."""

    key: str = field(repr=False)
    algorithms: tuple[str, ...]
    subject_claim: str = "sub"
    subject_data_type: str = "user"
    audience: str = ""
    issuer: str = ""
    leeway_seconds: int = 0
    required_claims: tuple[str, ...] = ("exp",)

    def __post_init__(self) -> None:
        if not self.algorithms:
            raise ValueError("jwt_algorithms must name at least one algorithm, e.g. [\"RS256\"]")
        known = get_default_algorithms()
        for name in self.algorithms:
            if name not in known or name == "none":
                raise ValueError(f"jwt_algorithms: unknown algorithm {name!r}; one of "
                                 f"{', '.join(sorted(set(known) - {'none'}))}")
        if len({name.startswith("HS") for name in self.algorithms}) > 1:
            raise ValueError("jwt_algorithms must not mix HMAC (HS*) with public-key algorithms")
        for name in self.algorithms:
            _check_key(known[name], name, self.key)
        if not self.subject_claim:
            raise ValueError("jwt_subject_claim must not be empty")
        if not self.subject_data_type:
            raise ValueError("jwt_subject_data_type must not be empty")
        if self.leeway_seconds < 0:
            raise ValueError(f"jwt_leeway_seconds must be at least 0, not {self.leeway_seconds}")


@dataclass(frozen=True)
class AuthConfig:
    """The mode in use and what it needs: tokens for `tokens`, the JWT
    settings for `jwt`. `admins` are the Nakadi admins' subjects."""

    mode: str = "off"
    admins: frozenset[Attribute] = frozenset()
    tokens: tuple[TokenConfig, ...] = ()
    jwt: JwtConfig | None = None

    def __post_init__(self) -> None:
        if self.mode not in AUTH_MODES:
            raise ValueError(f"mode must be one of {', '.join(AUTH_MODES)}, not {self.mode!r}")
        if self.mode == "tokens" and not self.tokens:
            raise ValueError("mode \"tokens\" needs at least one entry in tokens")
        if self.mode == "jwt" and self.jwt is None:
            raise ValueError("mode \"jwt\" needs the jwt_ keys")


def auth_config(values: Mapping[str, object], environ: Mapping[str, str]) -> AuthConfig:
    """The [auth] section as an `AuthConfig`; missing keys take their
    defaults. Raises `ValueError` naming the key when a value makes no sense
    or a secret cannot be read.

    `values` holds known keys only, each of its default's type.
    """
    assert values.keys() <= AUTH_DEFAULTS.keys(), sorted(values.keys() - AUTH_DEFAULTS.keys())
    merged = {**AUTH_DEFAULTS, **values}
    mode = merged["mode"]
    admins = frozenset(_attribute(entry, f"admins[{i}]") for i, entry in enumerate(_items(merged, "admins")))
    entries = [_token_entry(entry, f"tokens[{i}]") for i, entry in enumerate(_items(merged, "tokens"))]
    algorithms = _strings(merged, "jwt_algorithms")
    required_claims = _strings(merged, "jwt_required_claims")
    if mode == "tokens":
        return AuthConfig(mode, admins, _resolve_tokens(entries, environ))
    if mode == "jwt":
        settings = JwtConfig(_jwt_key(merged), algorithms, required_claims=required_claims,
                             **{name: merged[f"jwt_{name}"] for name in _JWT_SETTINGS})  # type: ignore[arg-type]
        return AuthConfig(mode, admins, jwt=settings)
    return AuthConfig(str(mode), admins)


def _items(merged: Mapping[str, object], key: str) -> Sequence[object]:
    items = merged[key]
    assert isinstance(items, (list, tuple))
    return items


def _strings(merged: Mapping[str, object], key: str) -> tuple[str, ...]:
    items = _items(merged, key)
    for item in items:
        if not isinstance(item, str) or not item:
            raise ValueError(f"{key} must be a list of non-empty strings, not {list(items)!r}")
    return tuple(items)  # type: ignore[arg-type]


def _table(entry: object, where: str, allowed: frozenset[str]) -> Mapping[str, object]:
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where} must be a table such as {{data_type = \"user\", value = \"alice\"}}")
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} in {where}")
    return entry


def _text(entry: Mapping[str, object], key: str, where: str, default: str | None = None) -> str:
    value = entry.get(key, default)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where} needs {key}, a non-empty string")
    return value


def _attribute(entry: object, where: str) -> Attribute:
    table = _table(entry, where, _ATTRIBUTE_KEYS)
    return _text(table, "data_type", where), _text(table, "value", where)


@dataclass(frozen=True)
class _TokenEntry:
    """A `tokens` entry before its token is read: where it is, and whose it is."""

    where: str
    source: str
    source_value: str = field(repr=False)
    data_type: str
    value: str
    admin: bool


def _token_entry(entry: object, where: str) -> _TokenEntry:
    table = _table(entry, where, _TOKEN_KEYS)
    sources = [key for key in TOKEN_SOURCES if key in table]
    if len(sources) != 1:
        raise ValueError(f"{where} needs exactly one of {', '.join(TOKEN_SOURCES)}")
    source = sources[0]
    if not isinstance(table[source], str) or not table[source]:
        raise ValueError(f"{where} {source} must be a non-empty string")
    admin = table.get("admin", False)
    if type(admin) is not bool:
        raise ValueError(f"{where} admin must be true or false")
    return _TokenEntry(where, source, str(table[source]), _text(table, "data_type", where, "user"),
                       _text(table, "value", where), admin)


def _resolve_tokens(entries: list[_TokenEntry], environ: Mapping[str, str]) -> tuple[TokenConfig, ...]:
    tokens: list[TokenConfig] = []
    first_of: dict[str, str] = {}
    for entry in entries:
        token = _read_token(entry, environ)
        if not TOKEN_SHAPE.fullmatch(token) or len(token) < TOKEN_CHARS_MIN:
            raise ValueError(f"{entry.where}: the token must be at least {TOKEN_CHARS_MIN} characters of "
                             f"A-Z a-z 0-9 - . _ ~ + / (then = padding), as a Bearer token is")
        if token in first_of:
            raise ValueError(f"{entry.where} repeats the token of {first_of[token]}")
        first_of[token] = entry.where
        tokens.append(TokenConfig(token, entry.data_type, entry.value, entry.admin))
    return tuple(tokens)


def _read_token(entry: _TokenEntry, environ: Mapping[str, str]) -> str:
    if entry.source == "token":
        return entry.source_value
    if entry.source == "token_env":
        token = environ.get(entry.source_value, "").strip()
        if not token:
            raise ValueError(f"{entry.where}: environment variable {entry.source_value} is not set or empty")
        return token
    return _read_secret_file(entry.source_value, f"{entry.where} token_file").strip()


def _jwt_key(merged: Mapping[str, object]) -> str:
    key, key_file = str(merged["jwt_key"]), str(merged["jwt_key_file"])
    if bool(key) == bool(key_file):
        raise ValueError("mode \"jwt\" needs exactly one of jwt_key and jwt_key_file")
    return key or _read_secret_file(key_file, "jwt_key_file").strip()


def _read_secret_file(path: str, where: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as error:
        raise ValueError(f"{where}: cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{where}: {path} is not UTF-8 text") from None


def _check_key(algorithm: jwt.algorithms.Algorithm, name: str, key: str) -> None:
    """Refuse a key `algorithm` cannot use, or one too short for it; PyJWT's
    messages about keys are kept out, in case one quotes the key."""
    try:
        prepared = algorithm.prepare_key(key)
    except (jwt.PyJWTError, ValueError, TypeError):
        raise ValueError(f"the JWT key is not a valid key for {name}") from None
    if hasattr(prepared, "private_bytes"):
        raise ValueError(f"the JWT key for {name} must be the public key: the private key signs, "
                         f"and does not belong on this server")
    too_short = algorithm.check_key_length(prepared)
    if too_short:
        raise ValueError(f"the JWT key is too short for {name}: {too_short}")
