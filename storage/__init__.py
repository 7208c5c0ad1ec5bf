"""storage: the durable, segmented, append-only log of one partition.

Synchronous, standard library plus msgpack and crc32c only; it knows
nothing of events, HTTP or trio. `docs/storage.md` describes the format.
"""

from .check import PartitionCheck as PartitionCheck
from .check import Problem as Problem
from .check import SegmentCheck as SegmentCheck
from .check import check_partition as check_partition
from .errors import BatchTooLargeError as BatchTooLargeError
from .errors import CorruptLogError as CorruptLogError
from .errors import DiskFullError as DiskFullError
from .errors import LogClosedError as LogClosedError
from .errors import LogFailedError as LogFailedError
from .errors import OffsetOutOfRangeError as OffsetOutOfRangeError
from .errors import StorageError as StorageError
from .errors import WriteFailedError as WriteFailedError
from .faults import CRASH_POINTS as CRASH_POINTS
from .faults import FaultIO as FaultIO
from .faults import parse_fault as parse_fault
from .fileio import FileIO as FileIO
from .loader import RecoveryEvent as RecoveryEvent
from .loader import RecoveryReport as RecoveryReport
from .log import Appended as Appended
from .log import Durability as Durability
from .log import LogConfig as LogConfig
from .log import LogStatistics as LogStatistics
from .log import PartitionLog as PartitionLog
from .record import Record as Record
from .record import Run as Run

__all__ = [
    "CRASH_POINTS", "Appended", "BatchTooLargeError", "CorruptLogError", "DiskFullError", "Durability", "FaultIO",
    "FileIO", "parse_fault", "PartitionCheck", "Problem", "SegmentCheck", "check_partition",
    "LogClosedError", "LogConfig", "LogFailedError", "LogStatistics", "OffsetOutOfRangeError",
    "PartitionLog", "Record", "Run", "RecoveryEvent", "RecoveryReport", "StorageError", "WriteFailedError",
]
