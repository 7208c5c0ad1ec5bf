"""The server's configuration: a TOML file, then `NAKADI_<SECTION>_<KEY>`
environment variables, then command-line flags, each overriding the one
before, all checked before anything starts.

This module owns the layering, the sections and keys that exist, the type
of each value (its default's: an integer, a string, true or false, or a
list for a tuple), the [server] section, and the one rule across sections:
authentication on a non-loopback address needs TLS. What [storage] values
mean belongs to `broker.config`, what [auth] values mean to
`api.auth_config`. Every problem is a `ConfigError` whose one-line message
names the key and where its value came from, and never repeats a secret.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType

from broker.config import STORAGE_DEFAULTS, StorageConfig, storage_config

from .auth_config import AUTH_DEFAULTS, SECRET_KEYS, AuthConfig, auth_config

DEFAULT_FILE = Path("nakadi.toml")
ENV_PREFIX = "NAKADI_"

Sections = Mapping[str, Mapping[str, object]]


class ConfigError(Exception):
    """A configuration the server will not start with."""


@dataclass(frozen=True)
class ServerConfig:
    """Where the server listens and keeps its data (paths relative to the
    working directory), and its TLS certificate and key (both or neither)."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: str = "data"
    request_bytes_max: int = 16 * 1024 * 1024
    tls_certificate_file: str = ""
    tls_key_file: str = ""
    auth_without_tls_allowed: bool = False

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("host must not be empty")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in [0, 65535], not {self.port}")
        if not self.data_dir:
            raise ValueError("data_dir must not be empty")
        if self.request_bytes_max < 1024:
            raise ValueError(f"request_bytes_max must be at least 1024, not {self.request_bytes_max}")
        if bool(self.tls_certificate_file) != bool(self.tls_key_file):
            raise ValueError("tls_certificate_file and tls_key_file must be set together")

    @property
    def tls(self) -> bool:
        return bool(self.tls_certificate_file)

    @property
    def loopback(self) -> bool:
        """Whether `host` is reachable from this machine only."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True)
class Config:
    """The whole configuration, checked."""

    server: ServerConfig = field(default_factory=ServerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)


SECTIONS: Sections = MappingProxyType({
    "server": MappingProxyType({f.name: f.default for f in fields(ServerConfig)}),
    "storage": STORAGE_DEFAULTS,
    "auth": AUTH_DEFAULTS,
})
"""Every section, with every key's default; a value must have its default's
type, a list where the default is a tuple."""

_SECRETS = frozenset(("auth", key) for key in SECRET_KEYS)
_TYPE_NAMES = {int: "an integer", str: "a string", bool: "true or false", list: "a list"}


def load_config(path: Path | None, environ: Mapping[str, str], flags: Sections) -> Config:
    """The configuration from the file at `path` (none: defaults only), then
    `environ`, then `flags` (shaped like the file, e.g. {"server": {"port": 0}})."""
    merged: dict[str, dict[str, object]] = {name: {} for name in SECTIONS}
    layers = [(_read_file(path), str(path))] if path is not None else []
    layers += [*_environment_layers(environ), (flags, "command line")]
    for sections, source in layers:
        _check(sections, source)
        for name, values in sections.items():
            merged[name].update(values)
    return _build(merged, environ)


def default_config_file(cwd: Path) -> Path | None:
    """`nakadi.toml` in `cwd` if there is one."""
    path = cwd / DEFAULT_FILE
    return path if path.is_file() else None


def _read_file(path: Path) -> Sections:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from error


def _environment_layers(environ: Mapping[str, str]) -> list[tuple[Sections, str]]:
    """One layer per NAKADI_<SECTION>_<KEY> variable of a known section,
    its string converted to the key's type; other NAKADI_ variables (a
    client's NAKADI_URL, say) are not ours and are left alone."""
    layers = []
    for variable, text in sorted(environ.items()):
        for section in SECTIONS:
            prefix = f"{ENV_PREFIX}{section.upper()}_"
            if variable.startswith(prefix):
                key = variable[len(prefix):].lower()
                source = f"environment variable {variable}"
                layers.append(({section: {key: _from_text(section, key, text, source)}}, source))
    return layers


def _from_text(section: str, key: str, text: str, source: str) -> object:
    """`text` as a value of the key's type: a boolean is `true` or `false`,
    a list a TOML array (`["RS256"]`, `[{data_type = "user", value = "a"}]`)."""
    if key not in SECTIONS[section]:
        return text
    expected = _type_of(SECTIONS[section][key])
    if expected is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"[{section}] {key} must be an integer, not {text!r} ({source})") from None
    if expected is bool:
        if text.strip().lower() not in ("true", "false"):
            raise ConfigError(f"[{section}] {key} must be true or false, not {text!r} ({source})")
        return text.strip().lower() == "true"
    if expected is list:
        try:
            return tomllib.loads(f"value = {text}")["value"]
        except tomllib.TOMLDecodeError:
            shown = _shown(section, key, text)
            raise ConfigError(f"[{section}] {key} must be a TOML array such as [\"a\", \"b\"], "
                              f"not {shown} ({source})") from None
    return text


def _type_of(default: object) -> type:
    return list if isinstance(default, tuple) else type(default)


def _shown(section: str, key: str, value: object) -> str:
    return "a value not shown here, as it holds secrets" if (section, key) in _SECRETS else repr(value)


def _check(sections: Sections, source: str) -> None:
    """Check each section and key exists and each value has its default's type."""
    for section, values in sections.items():
        if section not in SECTIONS:
            raise ConfigError(f"unknown section [{section}] ({source})")
        if not isinstance(values, Mapping):
            raise ConfigError(f"{section} must be a [{section}] table, not {values!r} ({source})")
        for key, value in values.items():
            _check_value(section, key, value, source)


def _check_value(section: str, key: str, value: object, source: str) -> None:
    defaults = SECTIONS[section]
    if key not in defaults:
        raise ConfigError(f"unknown key {key!r} in [{section}] ({source})")
    expected = _type_of(defaults[key])
    if type(value) is not expected:
        raise ConfigError(f"[{section}] {key} must be {_TYPE_NAMES[expected]}, not {_shown(section, key, value)} "
                          f"({source})")


def _build(merged: Mapping[str, Mapping[str, object]], environ: Mapping[str, str]) -> Config:
    try:
        server = ServerConfig(**merged["server"])
    except ValueError as error:
        raise ConfigError(f"[server] {error}") from error
    try:
        storage = storage_config(merged["storage"])
    except ValueError as error:
        raise ConfigError(f"[storage] {error}") from error
    try:
        auth = auth_config(merged["auth"], environ)
    except ValueError as error:
        raise ConfigError(f"[auth] {error}") from error
    _check_transport(server, auth)
    return Config(server, storage, auth)


def _check_transport(server: ServerConfig, auth: AuthConfig) -> None:
    """Bearer tokens sent in clear text to a non-loopback address can be
    read on the way: refuse unless TLS is on, or the operator says a proxy
    in front of the server terminates it."""
    if auth.mode != "off" and not server.loopback and not server.tls and not server.auth_without_tls_allowed:
        raise ConfigError(f"[auth] mode {auth.mode!r} on host {server.host}, which is not a loopback address, "
                          f"needs TLS: set [server] tls_certificate_file and tls_key_file, or "
                          f"auth_without_tls_allowed = true when a proxy in front terminates TLS")
