# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wire formats the stand-ins share: the protobuf wire encoding and Snappy's block format.

Protobuf (https://protobuf.dev/programming-guides/encoding/): :func:`fields` walks one
message; the ``field_*`` helpers write one field.  Snappy block format
(https://github.com/google/snappy/blob/main/format_description.txt), the one Prometheus
remote write and Loki's push API use: :func:`snappy_decode` reads literals and all three
copy element kinds; :func:`snappy_encode` writes literals only, which every decoder accepts.
"""

from __future__ import annotations

import struct
from typing import Iterator, Tuple

VARINT, FIXED64, BYTES, FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """A malformed protobuf message or Snappy block."""


def _read_varint(data: bytes, pos: int) -> Tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= len(data):
            raise WireError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint overflow")


def fields(data: bytes) -> Iterator[Tuple[int, int, object]]:
    """(field number, wire type, value) of one message: int for varints, bytes otherwise."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _read_varint(data, pos)
        num, wtype = key >> 3, key & 7
        if wtype == VARINT:
            value, pos = _read_varint(data, pos)
        elif wtype == BYTES:
            size, pos = _read_varint(data, pos)
            if pos + size > end:
                raise WireError("truncated length-delimited field")
            value, pos = data[pos:pos + size], pos + size
        elif wtype in (FIXED64, FIXED32):
            size = 8 if wtype == FIXED64 else 4
            if pos + size > end:
                raise WireError("truncated fixed-size field")
            value, pos = data[pos:pos + size], pos + size
        else:
            raise WireError("unsupported wire type %d" % wtype)
        yield num, wtype, value


def children(data: bytes, num: int) -> list:
    """The length-delimited values of field ``num`` (repeated messages, strings)."""
    return [v for n, w, v in fields(data) if n == num and w == BYTES]


def as_double(value: bytes) -> float:
    return struct.unpack("<d", value)[0]


def as_fixed64(value: bytes) -> int:
    return struct.unpack("<Q", value)[0]


def as_sint64(value: int) -> int:
    """Two's complement int64 from a varint (protobuf int64, not zigzag sint64)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_varint(num: int, value: int) -> bytes:
    return varint(num << 3 | VARINT) + varint(int(value))


def field_bytes(num: int, payload: bytes) -> bytes:
    return varint(num << 3 | BYTES) + varint(len(payload)) + payload


def field_str(num: int, text: str) -> bytes:
    """proto3 leaves empty strings out."""
    return field_bytes(num, text.encode("utf-8")) if text else b""


def field_fixed64(num: int, value: int) -> bytes:
    return varint(num << 3 | FIXED64) + struct.pack("<Q", value & ((1 << 64) - 1))


def field_double(num: int, value: float) -> bytes:
    return varint(num << 3 | FIXED64) + struct.pack("<d", value)


def snappy_decode(block: bytes) -> bytes:
    length, pos = _read_varint(block, 0)
    out = bytearray()
    end = len(block)
    while pos < end:
        tag = block[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal; lengths over 60 follow the tag in 1-4 little-endian bytes
            size = tag >> 2
            if size >= 60:
                extra = size - 59
                size = int.from_bytes(block[pos:pos + extra], "little")
                pos += extra
            size += 1
            if pos + size > end:
                raise WireError("snappy: truncated literal")
            out += block[pos:pos + size]
            pos += size
            continue
        if kind == 1:
            size = ((tag >> 2) & 7) + 4
            offset = ((tag >> 5) << 8) | block[pos]
            pos += 1
        else:
            width = 2 if kind == 2 else 4
            size = (tag >> 2) + 1
            offset = int.from_bytes(block[pos:pos + width], "little")
            pos += width
        if offset == 0 or offset > len(out):
            raise WireError("snappy: copy offset out of range")
        for _ in range(size):  # byte by byte: a copy may overlap what it writes
            out.append(out[-offset])
    if len(out) != length:
        raise WireError("snappy: decoded %d bytes, header says %d" % (len(out), length))
    return bytes(out)


def snappy_encode(data: bytes) -> bytes:
    out = bytearray(varint(len(data)))
    for start in range(0, len(data), 65536):
        chunk = data[start:start + 65536]
        size = len(chunk) - 1
        if size < 60:
            out.append(size << 2)
        elif size < 256:
            out += bytes([60 << 2, size])
        else:
            out += bytes([61 << 2]) + size.to_bytes(2, "little")
        out += chunk
    return bytes(out)
