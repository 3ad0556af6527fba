# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared codecs: wire.py (protobuf, Snappy), otlp.py (OTLP protobuf <-> JSON) and grpc_h2c.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

STANDINS = Path(__file__).resolve().parents[2] / "standins"
if str(STANDINS) not in sys.path:
    sys.path.insert(0, str(STANDINS))

from o11y_standins import grpc_h2c, otlp, wire  # noqa: E402


@pytest.mark.parametrize("data", [b"", b"a", b"hello world" * 3, bytes(range(256)) * 300])
def test_snappy_round_trip(data):
    assert wire.snappy_decode(wire.snappy_encode(data)) == data


def test_snappy_decodes_all_copy_elements():
    # "abcd" literal, then a 1-byte-offset copy (len 8, offset 4), a 2-byte-offset copy (len 4, offset 4)
    # and a 4-byte-offset copy (len 2, offset 2): overlapping copies repeat the pattern
    block = wire.varint(18) + bytes([3 << 2]) + b"abcd"
    block += bytes([((8 - 4) << 2) | 1, 4])
    block += bytes([(3 << 2) | 2]) + (4).to_bytes(2, "little")
    block += bytes([(1 << 2) | 3]) + (2).to_bytes(4, "little")
    assert wire.snappy_decode(block) == b"abcd" * 4 + b"cd"
    with pytest.raises(wire.WireError):
        wire.snappy_decode(wire.varint(5) + bytes([1, 0]))  # copy before any output
    with pytest.raises(wire.WireError):
        wire.snappy_decode(wire.varint(9) + bytes([0]) + b"a")  # length mismatch


def test_protobuf_fields():
    msg = (wire.field_varint(1, 300) + wire.field_str(2, "hi") + wire.field_double(3, 1.5)
           + wire.field_fixed64(4, 7) + wire.field_varint(5, -2) + wire.field_str(6, ""))
    got = list(wire.fields(msg))
    assert [(n, w) for n, w, _v in got] == [(1, 0), (2, 2), (3, 1), (4, 1), (5, 0)]
    assert got[0][2] == 300 and got[1][2] == b"hi" and wire.as_double(got[2][2]) == 1.5
    assert wire.as_fixed64(got[3][2]) == 7 and wire.as_sint64(got[4][2]) == -2
    assert wire.children(msg, 2) == [b"hi"]
    with pytest.raises(wire.WireError):
        list(wire.fields(b"\x0a\x05ab"))  # truncated length-delimited field


def test_otlp_round_trips_traces_logs_and_metrics():
    traces = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "svc"}},
        {"key": "n", "value": {"intValue": "0"}}, {"key": "b", "value": {"boolValue": False}},
        {"key": "l", "value": {"arrayValue": {"values": [{"doubleValue": 1.5}]}}}]},
        "scopeSpans": [{"scope": {"name": "s"}, "spans": [{
            "traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": "00f067aa0ba902b7", "name": "x", "kind": 2,
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000000000001",
            "status": {"code": 2, "message": "bad"}, "events": [{"name": "e", "timeUnixNano": "5"}]}]}]}]}
    assert otlp.decode("traces", otlp.encode("traces", traces)) == traces
    logs = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{
        "timeUnixNano": "1", "severityNumber": 9, "severityText": "INFO", "body": {"stringValue": ""},
        "traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": "00f067aa0ba902b7", "flags": 1}]}]}]}
    assert otlp.decode("logs", otlp.encode("logs", logs)) == logs
    metrics = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "g", "unit": "1", "gauge": {"dataPoints": [{"asDouble": 0.0, "timeUnixNano": "3"}]}},
        {"name": "c", "sum": {"dataPoints": [{"asInt": "-4"}], "aggregationTemporality": 2, "isMonotonic": True}}]}]}]}
    assert otlp.decode("metrics", otlp.encode("metrics", metrics)) == metrics
    assert otlp.count("metrics", metrics) == 2


def test_otlp_json_accepts_snake_case_and_numbers():
    doc = otlp.from_json("logs", {"resource_logs": [{"scope_logs": [{"log_records": [
        {"time_unix_nano": 5, "trace_id": "ABCD" * 8, "body": {"string_value": "x"}}]}]}]})
    rec = doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert rec == {"timeUnixNano": "5", "traceId": "abcd" * 8, "body": {"stringValue": "x"}}
    with pytest.raises(ValueError):
        otlp.from_json("logs", {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "S0/base64=="}]}]}]})


def test_hpack_decoder_indexed_literal_and_dynamic_table():
    dec = grpc_h2c.HpackDecoder()
    # indexed :method POST (3); literal with incremental indexing, indexed name :path (4); then the new
    # dynamic entry (62) again; literal never-indexed new name
    block = bytes([0x80 | 3]) + bytes([0x40 | 4, 3]) + b"/ab" + bytes([0x80 | 62])
    block += bytes([0x10, 1]) + b"k" + bytes([1]) + b"v"
    assert dec.decode(block) == [(":method", "POST"), (":path", "/ab"), (":path", "/ab"), ("k", "v")]
    assert dec.decode(grpc_h2c.hpack_encode([("Grpc-Status", "0")])) == [("grpc-status", "0")]
    with pytest.raises(grpc_h2c.H2Error):
        dec.decode(bytes([0x00, 0x81]) + b"x" + bytes([0]))  # Huffman-coded name


def test_grpc_client_and_server():
    seen = []

    def handler(method, metadata, request):
        seen.append((method, metadata.get("x-scope-orgid")))
        if method == "/svc/Fail":
            return grpc_h2c.INVALID_ARGUMENT, "bad input: 100%", b""
        return grpc_h2c.OK, "", request[::-1]

    srv = grpc_h2c.GrpcServer("test", "127.0.0.1", 0, handler)
    target = "127.0.0.1:%d" % srv.port
    try:
        assert grpc_h2c.call(target, "/svc/Echo", b"abc", {"X-Scope-OrgID": "t"}) == b"cba"
        big = bytes(range(256)) * 12000  # ~3 MB: many DATA frames, flow control
        assert grpc_h2c.call(target, "/svc/Echo", big, compress=True) == big[::-1]
        assert grpc_h2c.call(target, "/svc/Echo", b"") == b""
        with pytest.raises(grpc_h2c.GrpcError) as err:
            grpc_h2c.call(target, "/svc/Fail", b"x")
        assert err.value.status == grpc_h2c.INVALID_ARGUMENT and err.value.message == "bad input: 100%"
        assert "code = InvalidArgument" in str(err.value)
        assert seen[0] == ("/svc/Echo", "t")
    finally:
        srv.stop()
    with pytest.raises(grpc_h2c.GrpcError) as err:
        grpc_h2c.call(target, "/svc/Echo", b"x", timeout=1)
    assert err.value.status == grpc_h2c.UNAVAILABLE
