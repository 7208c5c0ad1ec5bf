"""broker.config: the [storage] section's values, checked and turned into a LogConfig."""

import pytest

from broker.config import STORAGE_DEFAULTS, StorageConfig, storage_config
from storage import LogConfig


def test_storage_config_defaults_are_the_log_defaults():
    assert storage_config({}) == StorageConfig(LogConfig(), "refuse")
    assert set(STORAGE_DEFAULTS) == {"durability", "sync_interval_ms", "segment_bytes_max", "segment_age_ms_max",
                                     "index_interval_bytes", "index_bytes_max", "recover"}


def test_storage_config_values_reach_the_log_config():
    config = storage_config({"durability": "interval", "sync_interval_ms": 50, "segment_age_ms_max": 1000,
                             "index_interval_bytes": 128, "index_bytes_max": 800, "recover": "truncate"})
    assert config.recover == "truncate"
    assert (config.log.durability, config.log.sync_interval_ms, config.log.segment_age_ms_max,
            config.log.index_interval_bytes, config.log.index_bytes_max) == ("interval", 50, 1000, 128, 800)


def test_storage_config_small_segments_shrink_the_frame_limit():
    config = storage_config({"segment_bytes_max": 1024 * 1024})
    assert config.log.frame_bytes_max == config.log.segment_bytes_max == 1024 * 1024
    assert storage_config({}).log.frame_bytes_max == LogConfig().frame_bytes_max


@pytest.mark.parametrize(("values", "named"), [
    ({"durability": "sometimes"}, "durability"),
    ({"recover": "repair"}, "recover"),
    ({"segment_bytes_max": 0}, "segment_bytes_max"),
    ({"segment_bytes_max": 2**31 + 1}, "segment_bytes_max"),
    ({"segment_age_ms_max": 0}, "segment_age_ms_max"),
    ({"sync_interval_ms": -1}, "sync_interval_ms"),
    ({"index_interval_bytes": 0}, "index_interval_bytes"),
    ({"index_bytes_max": 1}, "index_bytes_max"),
])
def test_storage_config_value_that_makes_no_sense_is_refused_by_name(values, named):
    with pytest.raises(ValueError, match=rf"^{named} must"):
        storage_config(values)
