"""The [storage] section of the configuration: its keys, their defaults, and
what their values mean; and the test-only fault hooks of the storage.

`api.config` reads the section, rejects unknown keys and checks each value
has its default's type; this module checks the values make sense and turns
them into how the broker opens partition logs: a `storage.LogConfig` and a
recovery mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from storage import FaultIO, FileIO, LogConfig, parse_fault

RecoverMode = Literal["refuse", "truncate"]
RECOVER_MODES: tuple[RecoverMode, ...] = ("refuse", "truncate")

_LOG_KEYS = ("durability", "sync_interval_ms", "segment_bytes_max", "segment_age_ms_max",
             "index_interval_bytes", "index_bytes_max")


@dataclass(frozen=True)
class StorageConfig:
    """How partition logs are opened: their limits and policies, and what
    recovery does with damage other than a torn tail."""

    log: LogConfig = field(default_factory=LogConfig)
    recover: RecoverMode = "refuse"

    def __post_init__(self) -> None:
        if self.recover not in RECOVER_MODES:
            raise ValueError(f"recover must be one of {', '.join(RECOVER_MODES)}, not {self.recover!r}")


def _defaults() -> Mapping[str, object]:
    default = StorageConfig()
    values = {key: getattr(default.log, key) for key in _LOG_KEYS}
    return MappingProxyType({**values, "recover": default.recover})


STORAGE_DEFAULTS = _defaults()
"""Every [storage] key with its default; a value must have its default's type."""


def storage_config(values: Mapping[str, object]) -> StorageConfig:
    """The [storage] section as a `StorageConfig`; missing keys take their
    defaults. Raises `ValueError` naming the key when a value makes no sense.

    `values` holds known keys only, each of its default's type.
    """
    assert values.keys() <= STORAGE_DEFAULTS.keys(), sorted(values.keys() - STORAGE_DEFAULTS.keys())
    merged = {**STORAGE_DEFAULTS, **values}
    # A frame never spans segments, so small segments imply small frames;
    # otherwise a segment_bytes_max below the default frame limit is refused.
    frame_bytes_max = min(LogConfig.frame_bytes_max, merged["segment_bytes_max"])
    log = LogConfig(**{key: merged[key] for key in _LOG_KEYS}, frame_bytes_max=frame_bytes_max)
    return StorageConfig(log, merged["recover"])


def fault_hooks(fault: str | None, sync_trace: str | None) -> FileIO | None:
    """The storage's test-only fault hooks (`storage/faults.py`): SIGKILL at
    the n-th pass of a crash point given as `<point>:<n>`, and a trace of
    every sync written to the file `sync_trace`; None when neither is given.
    Raises `ValueError` for a malformed `fault`."""
    if not fault and not sync_trace:
        return None
    return FaultIO(parse_fault(fault) if fault else None, sync_trace or None)
