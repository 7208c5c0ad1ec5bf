"""The frame codec: round trips, prefixes, flipped bytes, hostile lengths."""

import struct

from hypothesis import given
from hypothesis import strategies as st

from storage.record import (
    FRAME_HEADER,
    NEED_DATA,
    SEGMENT_HEADER,
    BadFrame,
    FrameInfo,
    check_segment_header,
    encode_frame,
    encode_segment_header,
    frame_payloads,
    parse_frame,
)

LIMIT = 1 << 20
batches = st.lists(st.lists(st.binary(max_size=300), min_size=1, max_size=20), min_size=1, max_size=8)


def encode_stream(batches, first_offset=0, received_ms=1_700_000_000_000):
    out, frames, offset = bytearray(), [], first_offset
    for i, payloads in enumerate(batches):
        parts, size = encode_frame(offset, received_ms + i, payloads)
        data = b"".join(bytes(p) for p in parts)
        assert len(data) == size
        frames.append((len(out), size, offset, received_ms + i, payloads))
        out += data
        offset += len(payloads)
    return bytes(out), frames


def decode_stream(buffer):
    """Every frame until the first that is incomplete or invalid, and what stopped it."""
    position, decoded = 0, []
    while True:
        frame = parse_frame(buffer, position, len(buffer), LIMIT)
        if not isinstance(frame, FrameInfo):
            return decoded, frame
        decoded.append((frame, frame_payloads(buffer, frame)))
        position = frame.end_position


@given(batches, st.integers(0, 2**63 - 10_000), st.integers(0, 2**63 - 1))
def test_record_round_trip_keeps_offsets_times_and_bytes(batches, first_offset, received_ms):
    data, frames = encode_stream(batches, first_offset, received_ms - 8 if received_ms > 8 else received_ms)
    decoded, stop = decode_stream(data)
    assert stop is NEED_DATA
    assert len(decoded) == len(frames)
    for (frame, payloads), (position, size, offset, ms, expected) in zip(decoded, frames):
        assert (frame.position, frame.size, frame.first_offset, frame.received_ms, frame.count) == (
            position, size, offset, ms, len(expected))
        assert payloads == expected
        assert frame.end_offset == offset + len(expected)


@given(batches, st.data())
def test_record_any_prefix_decodes_to_a_prefix(batches, data):
    encoded, frames = encode_stream(batches)
    cut = data.draw(st.integers(0, len(encoded)))
    decoded, stop = decode_stream(encoded[:cut])
    assert stop is NEED_DATA
    complete = [f for f in frames if f[0] + f[1] <= cut]
    assert [payloads for _, payloads in decoded] == [f[4] for f in complete]


@given(batches, st.data())
def test_record_flipped_byte_is_detected(batches, data):
    encoded, frames = encode_stream(batches)
    position = data.draw(st.integers(0, len(encoded) - 1))
    bit = data.draw(st.integers(0, 7))
    damaged = bytearray(encoded)
    damaged[position] ^= 1 << bit
    decoded, stop = decode_stream(bytes(damaged))
    before = [f for f in frames if f[0] + f[1] <= position]
    assert [payloads for _, payloads in decoded] == [f[4] for f in before]
    assert stop is NEED_DATA or isinstance(stop, BadFrame)


def test_record_huge_length_is_rejected_without_reading():
    header = FRAME_HEADER.pack(2**31, 0)
    frame = parse_frame(header + b"\x00" * 64, 0, 72, LIMIT)
    assert isinstance(frame, BadFrame) and "length" in frame.reason


def test_record_zero_filled_bytes_are_not_a_frame():
    frame = parse_frame(bytes(4096), 0, 4096, LIMIT)
    assert isinstance(frame, BadFrame)


def test_record_body_is_ordinary_msgpack():
    import msgpack

    parts, _ = encode_frame(42, 7, [b"a", b"bc"])
    body = b"".join(bytes(p) for p in parts)[FRAME_HEADER.size:]
    assert msgpack.unpackb(body) == [42, 7, [b"a", b"bc"]]


def test_record_segment_header_checks_magic_version_and_base():
    assert check_segment_header(encode_segment_header(5), 5) is None
    assert "base offset" in check_segment_header(encode_segment_header(5), 6)
    bad_magic = b"XXXXXX" + encode_segment_header(5)[6:]
    assert "magic" in check_segment_header(bad_magic, 5)
    bad_version = struct.pack(">6sHQ", b"NKDLOG", 9, 5)
    assert "version" in check_segment_header(bad_version, 5)
    assert "bytes" in check_segment_header(encode_segment_header(5)[:SEGMENT_HEADER.size - 1], 5)
