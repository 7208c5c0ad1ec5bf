"""Record framing: the byte layout of a segment's `.log` file, without I/O.

Theory of operation
-------------------
A segment file starts with a 16-byte header (magic, format version, base
offset) followed by frames. A frame holds one or more records that were
appended together; they share the frame's received time and take
consecutive offsets starting at its first offset.

    frame  = length:u32le  crc:u32le  body[length]
    body   = msgpack array [first_offset, received_ms, [payload, ...]]

`crc` is CRC32C over `body`. The body is ordinary msgpack, but its first
24 bytes are always written in their widest form (0x93, 0xcf + u64,
0xcf + u64, 0xdd + u32), so a scanner learns a frame's offsets, time and
record count with one fixed-layout unpack, without decoding the payloads.

Everything here is pure: functions take buffers and positions and return
values. A decoder that reaches the end of the bytes it was given answers
`NEED_DATA`; bytes that cannot be a frame give a `BadFrame` naming why.
The length is checked against a limit before anything is read, so a
damaged length field can never make a reader allocate or read past EOF.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final, NamedTuple

import crc32c
import msgpack

SEGMENT_MAGIC: Final = b"NKDLOG"
SEGMENT_VERSION: Final = 1
SEGMENT_HEADER: Final = struct.Struct(">6sHQ")
FRAME_HEADER: Final = struct.Struct("<II")
BODY_PREFIX: Final = struct.Struct(">BBQBQBI")
FRAME_OVERHEAD: Final = FRAME_HEADER.size + BODY_PREFIX.size
_ARRAY3, _UINT64, _ARRAY32 = 0x93, 0xCF, 0xDD
_MIN_BODY: Final = BODY_PREFIX.size + 1


class FrameInfo(NamedTuple):
    """Where a valid frame lies and what it holds."""

    position: int
    size: int
    first_offset: int
    received_ms: int
    count: int

    @property
    def end_position(self) -> int:
        return self.position + self.size

    @property
    def end_offset(self) -> int:
        return self.first_offset + self.count


class BadFrame(NamedTuple):
    """Bytes at `position` are not a valid frame, for `reason`."""

    position: int
    reason: str


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()


class Record(NamedTuple):
    """One stored record: its offset, received time and payload bytes."""

    offset: int
    received_ms: int
    payload: bytes


class Run(NamedTuple):
    """Records at consecutive offsets from `first_offset`, received together."""

    first_offset: int
    received_ms: int
    payloads: list[bytes]

    @property
    def end_offset(self) -> int:
        return self.first_offset + len(self.payloads)

    def records(self) -> list[Record]:
        first, ms = self.first_offset, self.received_ms
        return [Record(first + i, ms, payload) for i, payload in enumerate(self.payloads)]


def encode_segment_header(base_offset: int) -> bytes:
    return SEGMENT_HEADER.pack(SEGMENT_MAGIC, SEGMENT_VERSION, base_offset)


def check_segment_header(data: bytes, base_offset: int) -> str | None:
    """Why `data` is not the header of the segment at `base_offset`, or None."""
    if len(data) < SEGMENT_HEADER.size:
        return f"segment header is {len(data)} bytes, expected {SEGMENT_HEADER.size}"
    magic, version, stored_base = SEGMENT_HEADER.unpack_from(data)
    if magic != SEGMENT_MAGIC:
        return f"wrong magic {magic!r}, expected {SEGMENT_MAGIC!r}"
    if version != SEGMENT_VERSION:
        return f"unsupported format version {version}, expected {SEGMENT_VERSION}"
    if stored_base != base_offset:
        return f"header names base offset {stored_base}, file name says {base_offset}"
    return None


def encode_frame(first_offset: int, received_ms: int, payloads: Sequence[bytes]) -> tuple[list[bytes | memoryview], int]:
    """The byte parts of one frame (for `os.writev`) and their total size."""
    assert payloads, "a frame holds at least one record"
    packed = msgpack.packb(payloads, use_bin_type=True)
    tail = memoryview(packed)[_array_header_size(packed[0]):]
    prefix = BODY_PREFIX.pack(_ARRAY3, _UINT64, first_offset, _UINT64, received_ms, _ARRAY32, len(payloads))
    length = len(prefix) + len(tail)
    crc = crc32c.crc32c(tail, crc32c.crc32c(prefix))
    return [FRAME_HEADER.pack(length, crc) + prefix, tail], FRAME_HEADER.size + length


def _array_header_size(first_byte: int) -> int:
    if first_byte & 0xF0 == 0x90:
        return 1
    return 3 if first_byte == 0xDC else 5


def parse_frame(buffer: bytes | memoryview, position: int, end: int, frame_bytes_max: int) -> FrameInfo | BadFrame | _NeedData:
    """Check the frame at `buffer[position:end]` and describe it."""
    if end - position < FRAME_HEADER.size:
        return NEED_DATA
    length, crc = FRAME_HEADER.unpack_from(buffer, position)
    if length < _MIN_BODY or FRAME_HEADER.size + length > frame_bytes_max:
        return BadFrame(position, f"frame length {length} is outside [{_MIN_BODY}, {frame_bytes_max - FRAME_HEADER.size}]")
    body_start = position + FRAME_HEADER.size
    if end - body_start < length:
        return NEED_DATA
    with memoryview(buffer) as view:
        actual = crc32c.crc32c(view[body_start : body_start + length])
    if actual != crc:
        return BadFrame(position, f"CRC32C mismatch: stored {crc:#010x}, computed {actual:#010x}")
    array3, u1, first_offset, u2, received_ms, array32, count = BODY_PREFIX.unpack_from(buffer, body_start)
    if (array3, u1, u2, array32) != (_ARRAY3, _UINT64, _UINT64, _ARRAY32) or count == 0:
        return BadFrame(position, "frame body does not start with the fixed record prefix")
    return FrameInfo(position, FRAME_HEADER.size + length, first_offset, received_ms, count)


def frame_payloads(buffer: bytes | memoryview, frame: FrameInfo) -> list[bytes]:
    """The payloads of a frame that `parse_frame` accepted from `buffer`."""
    start = frame.position + FRAME_OVERHEAD - 5
    with memoryview(buffer) as view:
        payloads = msgpack.unpackb(view[start : frame.end_position], use_list=True)
    if not isinstance(payloads, list) or len(payloads) != frame.count or not all(type(p) is bytes for p in payloads):
        raise ValueError("frame body decodes to something other than its payload list")
    return payloads
