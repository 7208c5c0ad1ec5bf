"""api.config: file, environment and flag layering, unknown keys, types."""

import re
from pathlib import Path

import pytest

from api.config import SECTIONS, Config, ConfigError, default_config_file, load_config

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nakadi.toml"
    path.write_text(text)
    return path


def test_config_defaults_without_file_environment_or_flags():
    assert load_config(None, {}, {}) == Config()


def test_config_shipped_file_holds_every_key_with_its_default():
    path = REPO / "nakadi.toml"
    assert load_config(path, {}, {}) == Config()
    text = path.read_text()
    for section, defaults in SECTIONS.items():
        assert f"[{section}]" in text
        for key in defaults:
            assert f"\n{key} = " in text, key


def test_config_file_overrides_defaults(tmp_path):
    path = write(tmp_path, '[server]\nport = 9000\n[storage]\ndurability = "never"\n')
    config = load_config(path, {}, {})
    assert config.server.port == 9000
    assert config.server.host == "127.0.0.1"
    assert config.storage.log.durability == "never"


def test_config_environment_overrides_file(tmp_path):
    path = write(tmp_path, "[server]\nport = 9000\n")
    config = load_config(path, {"NAKADI_SERVER_PORT": "0", "NAKADI_STORAGE_DURABILITY": "interval"}, {})
    assert config.server.port == 0
    assert config.storage.log.durability == "interval"


def test_config_flags_override_environment(tmp_path):
    path = write(tmp_path, '[server]\nport = 9000\ndata_dir = "from-file"\n')
    environ = {"NAKADI_SERVER_PORT": "9001", "NAKADI_SERVER_DATA_DIR": "from-env"}
    config = load_config(path, environ, {"server": {"port": 9002}})
    assert config.server.port == 9002
    assert config.server.data_dir == "from-env"


def test_config_environment_converts_to_the_default_type():
    config = load_config(None, {"NAKADI_STORAGE_SEGMENT_BYTES_MAX": "1048576"}, {})
    assert config.storage.log.segment_bytes_max == 1048576


def test_config_other_nakadi_variables_are_left_alone():
    assert load_config(None, {"NAKADI_URL": "http://x", "NAKADI_TOKEN": "t"}, {}) == Config()


@pytest.mark.parametrize(("text", "named"), [
    ("[server]\nprot = 1\n", "unknown key 'prot' in [server]"),
    ("[storage]\ndurabilty = \"never\"\n", "unknown key 'durabilty' in [storage]"),
    ("[srever]\nport = 1\n", "unknown section [srever]"),
    ("port = 1\n", "unknown section [port]"),
])
def test_config_unknown_file_key_is_named(tmp_path, text, named):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_config(path, {}, {})
    assert str(raised.value) == f"{named} ({path})"


def test_config_unknown_environment_key_is_named():
    with pytest.raises(ConfigError) as raised:
        load_config(None, {"NAKADI_STORAGE_RECOVERY": "truncate"}, {})
    assert str(raised.value) == "unknown key 'recovery' in [storage] (environment variable NAKADI_STORAGE_RECOVERY)"


@pytest.mark.parametrize(("text", "message"), [
    ('[server]\nport = "8080"\n', "[server] port must be an integer, not '8080'"),
    ("[server]\nport = true\n", "[server] port must be an integer, not True"),
    ("[server]\nport = 80.0\n", "[server] port must be an integer, not 80.0"),
    ("[storage]\ndurability = 1\n", "[storage] durability must be a string, not 1"),
    ("server = 1\n", "server must be a [server] table, not 1"),
])
def test_config_wrong_type_in_file_is_refused(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_config(path, {}, {})
    assert str(raised.value) == f"{message} ({path})"


def test_config_environment_integer_that_does_not_parse_is_refused():
    with pytest.raises(ConfigError) as raised:
        load_config(None, {"NAKADI_SERVER_PORT": "eighty"}, {})
    assert str(raised.value) == ("[server] port must be an integer, not 'eighty' "
                                 "(environment variable NAKADI_SERVER_PORT)")


@pytest.mark.parametrize(("flags", "message"), [
    ({"server": {"port": 65536}}, "[server] port must be in [0, 65535], not 65536"),
    ({"server": {"host": ""}}, "[server] host must not be empty"),
    ({"server": {"data_dir": ""}}, "[server] data_dir must not be empty"),
])
def test_config_server_value_out_of_range_is_refused(flags, message):
    with pytest.raises(ConfigError) as raised:
        load_config(None, {}, flags)
    assert str(raised.value) == message


def test_config_storage_value_refused_by_broker_names_the_section():
    with pytest.raises(ConfigError, match=r"^\[storage\] durability must be one of always, interval, never"):
        load_config(None, {"NAKADI_STORAGE_DURABILITY": "sometimes"}, {})


def test_config_file_that_is_not_toml_is_refused(tmp_path):
    path = write(tmp_path, "[server\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))} is not valid TOML: .*line 1"):
        load_config(path, {}, {})


def test_config_missing_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"^cannot read .*missing\.toml: No such file or directory$"):
        load_config(tmp_path / "missing.toml", {}, {})


def test_config_default_file_is_used_only_when_present(tmp_path):
    assert default_config_file(tmp_path) is None
    path = write(tmp_path, "")
    assert default_config_file(tmp_path) == path
