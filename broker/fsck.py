"""The offline check of a whole data directory (`nakadi fsck`), read-only.

It finds every partition directory under `<data_dir>/event-types/` (the
layout `partition_logs` writes) and hands each to `storage.check_partition`.
Directory names that cannot be an event type or a partition are reported as
problems, never followed. Nothing is opened for writing and no recovery
runs, so a damaged log is reported as it is on disk.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from storage import PartitionCheck, Problem, check_partition

from .event_types import is_valid_name
from .partition_logs import EVENT_TYPES_DIR


@dataclass(frozen=True)
class PartitionDirectory:
    """One partition's directory: its event type, partition id and path."""

    event_type: str
    partition: str
    path: str

    @property
    def bytes(self) -> int:
        return sum(entry.stat().st_size for entry in os.scandir(self.path)
                   if entry.is_file(follow_symlinks=False) and entry.name.endswith(".log"))


def event_types_root(data_dir: str) -> str:
    return os.path.join(data_dir, EVENT_TYPES_DIR)


def find_partitions(data_dir: str) -> tuple[list[PartitionDirectory], list[Problem]]:
    """Every partition directory, ordered by event type and partition number,
    and the entries that are neither; `FileNotFoundError` when `data_dir`
    has no event types directory."""
    root = event_types_root(data_dir)
    partitions: list[PartitionDirectory] = []
    problems: list[Problem] = []
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if not is_valid_name(name) or not os.path.isdir(path) or os.path.islink(path):
            problems.append(Problem(path, "unexpected file", "not an event type directory"))
            continue
        entries = sorted(os.listdir(path), key=lambda e: (not e.isdigit(), int(e) if e.isdigit() else 0, e))
        for entry in entries:
            partition_path = os.path.join(path, entry)
            if entry.isascii() and entry.isdigit() and os.path.isdir(partition_path) \
                    and not os.path.islink(partition_path):
                partitions.append(PartitionDirectory(name, entry, partition_path))
            else:
                problems.append(Problem(partition_path, "unexpected file", "not a partition directory"))
    return partitions, problems


def check(partition: PartitionDirectory, on_bytes: Callable[[int], None] | None = None) -> PartitionCheck:
    """Check one partition's segments and indexes, changing nothing."""
    return check_partition(partition.path, on_bytes=on_bytes)
