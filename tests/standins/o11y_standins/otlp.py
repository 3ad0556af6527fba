# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OTLP payloads: protobuf <-> the OTLP/JSON object model, for traces, logs and metrics.

The stand-ins keep every payload in the OTLP/JSON shape the OpenTelemetry spec defines
(https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding): lowerCamelCase keys,
trace and span ids as hex strings, 64-bit integers as decimal strings, enums as numbers.
:func:`decode` reads the protobuf of an Export*ServiceRequest into that shape,
:func:`encode` writes it back, :func:`from_json` normalises a JSON body (it also takes
the snake_case keys protobuf's JSON mapping allows).  Field numbers follow
opentelemetry-proto v1 (common, resource, trace, logs, metrics).
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any, Dict, Optional, Tuple

from . import wire

# kinds of scalar fields
STR, BYTES, HEXID, BOOL, UINT, INT64, FIX64, SFIX64, FIX32, DOUBLE, ENUM = (
    "str", "bytes", "hexid", "bool", "uint", "int64", "fix64", "sfix64", "fix32", "double", "enum")

# message name -> {field number: (json name, kind or message name, repeated)}
SCHEMA: Dict[str, Dict[int, Tuple[str, str, bool]]] = {
    "AnyValue": {1: ("stringValue", STR, False), 2: ("boolValue", BOOL, False), 3: ("intValue", INT64, False),
                 4: ("doubleValue", DOUBLE, False), 5: ("arrayValue", "ArrayValue", False),
                 6: ("kvlistValue", "KeyValueList", False), 7: ("bytesValue", BYTES, False)},
    "ArrayValue": {1: ("values", "AnyValue", True)},
    "KeyValueList": {1: ("values", "KeyValue", True)},
    "KeyValue": {1: ("key", STR, False), 2: ("value", "AnyValue", False)},
    "Resource": {1: ("attributes", "KeyValue", True), 2: ("droppedAttributesCount", UINT, False)},
    "InstrumentationScope": {1: ("name", STR, False), 2: ("version", STR, False),
                             3: ("attributes", "KeyValue", True), 4: ("droppedAttributesCount", UINT, False)},
    # traces
    "ExportTraceServiceRequest": {1: ("resourceSpans", "ResourceSpans", True)},
    "ResourceSpans": {1: ("resource", "Resource", False), 2: ("scopeSpans", "ScopeSpans", True),
                      3: ("schemaUrl", STR, False)},
    "ScopeSpans": {1: ("scope", "InstrumentationScope", False), 2: ("spans", "Span", True),
                   3: ("schemaUrl", STR, False)},
    "Span": {1: ("traceId", HEXID, False), 2: ("spanId", HEXID, False), 3: ("traceState", STR, False),
             4: ("parentSpanId", HEXID, False), 16: ("flags", FIX32, False), 5: ("name", STR, False),
             6: ("kind", ENUM, False), 7: ("startTimeUnixNano", FIX64, False),
             8: ("endTimeUnixNano", FIX64, False), 9: ("attributes", "KeyValue", True),
             10: ("droppedAttributesCount", UINT, False), 11: ("events", "Event", True),
             12: ("droppedEventsCount", UINT, False), 13: ("links", "Link", True),
             14: ("droppedLinksCount", UINT, False), 15: ("status", "Status", False)},
    "Event": {1: ("timeUnixNano", FIX64, False), 2: ("name", STR, False), 3: ("attributes", "KeyValue", True),
              4: ("droppedAttributesCount", UINT, False)},
    "Link": {1: ("traceId", HEXID, False), 2: ("spanId", HEXID, False), 3: ("traceState", STR, False),
             4: ("attributes", "KeyValue", True), 5: ("droppedAttributesCount", UINT, False),
             6: ("flags", FIX32, False)},
    "Status": {2: ("message", STR, False), 3: ("code", ENUM, False)},
    # logs
    "ExportLogsServiceRequest": {1: ("resourceLogs", "ResourceLogs", True)},
    "ResourceLogs": {1: ("resource", "Resource", False), 2: ("scopeLogs", "ScopeLogs", True),
                     3: ("schemaUrl", STR, False)},
    "ScopeLogs": {1: ("scope", "InstrumentationScope", False), 2: ("logRecords", "LogRecord", True),
                  3: ("schemaUrl", STR, False)},
    "LogRecord": {1: ("timeUnixNano", FIX64, False), 11: ("observedTimeUnixNano", FIX64, False),
                  2: ("severityNumber", ENUM, False), 3: ("severityText", STR, False),
                  5: ("body", "AnyValue", False), 6: ("attributes", "KeyValue", True),
                  7: ("droppedAttributesCount", UINT, False), 8: ("flags", FIX32, False),
                  9: ("traceId", HEXID, False), 10: ("spanId", HEXID, False), 12: ("eventName", STR, False)},
    # metrics (gauge and sum carry what the exporters convert; histograms pass through as counts)
    "ExportMetricsServiceRequest": {1: ("resourceMetrics", "ResourceMetrics", True)},
    "ResourceMetrics": {1: ("resource", "Resource", False), 2: ("scopeMetrics", "ScopeMetrics", True),
                        3: ("schemaUrl", STR, False)},
    "ScopeMetrics": {1: ("scope", "InstrumentationScope", False), 2: ("metrics", "Metric", True),
                     3: ("schemaUrl", STR, False)},
    "Metric": {1: ("name", STR, False), 2: ("description", STR, False), 3: ("unit", STR, False),
               5: ("gauge", "Gauge", False), 7: ("sum", "Sum", False), 9: ("histogram", "Histogram", False),
               10: ("exponentialHistogram", "DataPoints", False), 11: ("summary", "DataPoints", False),
               12: ("metadata", "KeyValue", True)},
    "Gauge": {1: ("dataPoints", "NumberDataPoint", True)},
    "Sum": {1: ("dataPoints", "NumberDataPoint", True), 2: ("aggregationTemporality", ENUM, False),
            3: ("isMonotonic", BOOL, False)},
    "Histogram": {1: ("dataPoints", "HistogramDataPoint", True), 2: ("aggregationTemporality", ENUM, False)},
    "DataPoints": {1: ("dataPoints", "OpaquePoint", True), 2: ("aggregationTemporality", ENUM, False)},
    "OpaquePoint": {1: ("attributes", "KeyValue", True), 2: ("startTimeUnixNano", FIX64, False),
                    3: ("timeUnixNano", FIX64, False)},
    "NumberDataPoint": {7: ("attributes", "KeyValue", True), 2: ("startTimeUnixNano", FIX64, False),
                        3: ("timeUnixNano", FIX64, False), 4: ("asDouble", DOUBLE, False),
                        6: ("asInt", SFIX64, False), 8: ("flags", UINT, False)},
    "HistogramDataPoint": {9: ("attributes", "KeyValue", True), 2: ("startTimeUnixNano", FIX64, False),
                           3: ("timeUnixNano", FIX64, False), 4: ("count", FIX64, False),
                           5: ("sum", DOUBLE, False), 6: ("bucketCounts", FIX64, True),
                           7: ("explicitBounds", DOUBLE, True), 10: ("flags", UINT, False),
                           11: ("min", DOUBLE, False), 12: ("max", DOUBLE, False)},
}

REQUEST = {"traces": "ExportTraceServiceRequest", "logs": "ExportLogsServiceRequest",
           "metrics": "ExportMetricsServiceRequest"}
# signal -> (resource list, scope list, item list) keys
KEYS = {"traces": ("resourceSpans", "scopeSpans", "spans"), "logs": ("resourceLogs", "scopeLogs", "logRecords"),
        "metrics": ("resourceMetrics", "scopeMetrics", "metrics")}
_PACKED_FIXED = {FIX64: 8, DOUBLE: 8}


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _scalar_from_wire(kind: str, wtype: int, value: Any) -> Any:
    if kind == STR:
        return value.decode("utf-8", "replace")
    if kind == BYTES:
        return base64.b64encode(value).decode()
    if kind == HEXID:
        return value.hex()
    if kind == BOOL:
        return bool(value)
    if kind in (UINT, ENUM):
        return value
    if kind == INT64:
        return str(wire.as_sint64(value))
    if kind == FIX64:
        return str(wire.as_fixed64(value))
    if kind == SFIX64:
        return str(struct.unpack("<q", value)[0])
    if kind == FIX32:
        return struct.unpack("<I", value)[0]
    if kind == DOUBLE:
        return wire.as_double(value)
    raise wire.WireError("unknown kind %s" % kind)


def decode_message(data: bytes, message: str) -> Dict[str, Any]:
    """One protobuf message as an OTLP/JSON object; unknown fields are skipped."""
    schema = SCHEMA[message]
    out: Dict[str, Any] = {}
    for num, wtype, value in wire.fields(data):
        spec = schema.get(num)
        if spec is None:
            continue
        name, kind, repeated = spec
        if kind in SCHEMA:
            if wtype != wire.BYTES:
                raise wire.WireError("field %s: wrong wire type %d" % (name, wtype))
            item: Any = decode_message(value, kind)
        elif repeated and wtype == wire.BYTES and kind in _PACKED_FIXED:
            size = _PACKED_FIXED[kind]
            out.setdefault(name, []).extend(
                _scalar_from_wire(kind, wire.FIXED64, value[i:i + size]) for i in range(0, len(value), size))
            continue
        else:
            item = _scalar_from_wire(kind, wtype, value)
        if repeated:
            out.setdefault(name, []).append(item)
        else:
            out[name] = item
    return out


def decode(signal: str, data: bytes) -> Dict[str, Any]:
    """An Export{Trace,Logs,Metrics}ServiceRequest; raises wire.WireError (a ValueError)."""
    return decode_message(data, REQUEST[signal])


def _scalar_to_wire(num: int, kind: str, value: Any) -> bytes:
    if kind == STR:
        return wire.field_str(num, str(value))
    if kind == BYTES:
        raw = base64.b64decode(value) if isinstance(value, str) else bytes(value)
        return wire.field_bytes(num, raw) if raw else b""
    if kind == HEXID:
        raw = bytes.fromhex(value) if value else b""
        return wire.field_bytes(num, raw) if raw else b""
    if kind == BOOL:
        return wire.field_varint(num, 1) if value else b""
    if kind in (UINT, ENUM, INT64):
        return wire.field_varint(num, int(value)) if int(value) else b""
    if kind in (FIX64, SFIX64):
        return wire.field_fixed64(num, int(value)) if int(value) else b""
    if kind == FIX32:
        return wire.varint(num << 3 | wire.FIXED32) + struct.pack("<I", int(value)) if int(value) else b""
    if kind == DOUBLE:
        return wire.field_double(num, float(value))
    raise wire.WireError("unknown kind %s" % kind)


def _oneof_to_wire(num: int, kind: str, value: Any) -> bytes:
    if kind == STR:
        return wire.field_bytes(num, str(value).encode("utf-8"))
    if kind == BYTES:
        return wire.field_bytes(num, base64.b64decode(value))
    if kind in (BOOL, INT64):
        return wire.field_varint(num, int(value))
    if kind == SFIX64:
        return wire.field_fixed64(num, int(value))
    return _scalar_to_wire(num, kind, value)


def encode_message(obj: Dict[str, Any], message: str) -> bytes:
    out = bytearray()
    for num, (name, kind, repeated) in SCHEMA[message].items():
        if name not in obj or obj[name] is None:
            continue
        values = obj[name] if repeated else [obj[name]]
        for v in values:
            if kind in SCHEMA:
                out += wire.field_bytes(num, encode_message(v, kind))
            elif message == "AnyValue" or name in ("asDouble", "asInt"):
                out += _oneof_to_wire(num, kind, v)  # a set oneof member is written even when zero
            else:
                out += _scalar_to_wire(num, kind, v)
    return bytes(out)


def encode(signal: str, doc: Dict[str, Any]) -> bytes:
    return encode_message(doc, REQUEST[signal])


def _normalise(obj: Any, message: str) -> Dict[str, Any]:
    if not isinstance(obj, dict):
        raise ValueError("%s: expected a JSON object" % message)
    schema = SCHEMA[message]
    out: Dict[str, Any] = {}
    for _num, (name, kind, repeated) in schema.items():
        value = obj.get(name, obj.get(_snake(name)))
        if value is None:
            continue
        values = value if repeated else [value]
        if repeated and not isinstance(value, list):
            raise ValueError("%s.%s: expected an array" % (message, name))
        conv = []
        for v in values:
            if kind in SCHEMA:
                conv.append(_normalise(v, kind))
            elif kind == HEXID:
                text = str(v).lower()
                bytes.fromhex(text)  # OTLP/JSON ids are hex, not base64
                conv.append(text)
            elif kind in (INT64, FIX64, SFIX64):
                conv.append(str(int(v)))
            elif kind in (UINT, ENUM, FIX32):
                conv.append(int(v))
            elif kind == DOUBLE:
                conv.append(float(v))
            elif kind == BOOL:
                conv.append(bool(v))
            else:
                conv.append(str(v))
        out[name] = conv if repeated else conv[0]
    return out


def from_json(signal: str, doc: Any) -> Dict[str, Any]:
    """A JSON-encoded export request in canonical OTLP/JSON shape; raises ValueError."""
    return _normalise(doc, REQUEST[signal])


# The OpenTelemetry Collector's OTLP/HTTP receiver (Alloy's and Tempo's) answering any other media type.
UNSUPPORTED_MEDIA_TYPE = "415 unsupported media type, supported: [application/json, application/x-protobuf]"


def decode_http(signal: str, body: bytes, media_type: str) -> Optional[Tuple[Dict[str, Any], bytes, str]]:
    """(request, reply body, reply content type) of an OTLP/HTTP body, answered in its own encoding;
    None for a media type (the request's ``mimetype``: lower case, no parameters) OTLP/HTTP does not
    define; ValueError for a malformed body."""
    if media_type == "application/x-protobuf":
        return decode(signal, body), b"", "application/x-protobuf"
    if media_type == "application/json":
        return from_json(signal, json.loads(body or b"{}")), b"{}", "application/json"
    return None


def count(signal: str, doc: Dict[str, Any]) -> int:
    """Spans, log records or metric data points of a request."""
    k_res, k_scope, k_item = KEYS[signal]
    total = 0
    for res in doc.get(k_res) or []:
        for scope in res.get(k_scope) or []:
            items = scope.get(k_item) or []
            if signal != "metrics":
                total += len(items)
                continue
            for metric in items:
                for kind in ("gauge", "sum", "histogram", "exponentialHistogram", "summary"):
                    if isinstance(metric.get(kind), dict):
                        total += len(metric[kind].get("dataPoints") or [])
    return total


def any_value(v: Optional[Dict[str, Any]]) -> Any:
    """The Python value of an AnyValue (arrays and kvlists become lists and dicts)."""
    if not v:
        return None
    if "stringValue" in v:
        return v["stringValue"]
    if "boolValue" in v:
        return v["boolValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return v["doubleValue"]
    if "arrayValue" in v:
        return [any_value(x) for x in v["arrayValue"].get("values") or []]
    if "kvlistValue" in v:
        return attributes(v["kvlistValue"].get("values"))
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


def attributes(kvs: Any) -> Dict[str, Any]:
    return {kv.get("key", ""): any_value(kv.get("value")) for kv in kvs or []}


def string_value(v: Any) -> str:
    """How the collector's pcommon.Value.AsString renders a value (JSON for maps and arrays)."""
    import json
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def merge(signal: str, docs: list) -> Dict[str, Any]:
    """One request holding the resource entries of all ``docs`` (what a batch sends)."""
    key = KEYS[signal][0]
    return {key: [res for d in docs for res in d.get(key) or []]}
