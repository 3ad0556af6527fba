# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unary gRPC over cleartext HTTP/2 ("h2c" with prior knowledge), stdlib only.

Enough of HTTP/2 (RFC 9113) and gRPC's wire protocol
(https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md) for the stand-ins'
OTLP exporters and receivers:

* connection preface, SETTINGS (+ ACK), PING (+ ACK), WINDOW_UPDATE, RST_STREAM, GOAWAY;
* HEADERS (+ CONTINUATION, PADDED, PRIORITY flags) with HPACK (RFC 7541): the decoder
  reads indexed fields, all three literal forms, dynamic table size updates and keeps the
  dynamic table; the encoder writes literals without indexing and no Huffman coding.
  **Huffman-coded strings are not decoded** (a peer sending them gets a COMPRESSION_ERROR
  GOAWAY): the stand-ins only talk to each other, and neither side uses Huffman;
* DATA frames carrying length-prefixed gRPC messages (identity or ``grpc-encoding: gzip``),
  flow control honoured when sending; both sides open large receive windows up front;
* unary calls only, one call per client connection; trailers carry grpc-status/grpc-message.
"""

from __future__ import annotations

import gzip
import socket
import struct
import threading
import urllib.parse
from typing import Callable, Dict, List, Optional, Tuple

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
SETTINGS_HEADER_TABLE_SIZE, SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE = 1, 4, 5
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, COMPRESSION_ERROR = 0, 1, 2, 3, 6, 9
MAX_WINDOW = 2 ** 31 - 1
DEFAULT_WINDOW = 65535
MAX_FRAME = 16384
MAX_MESSAGE = 64 * 1024 * 1024

# gRPC status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html)
OK, CANCELLED, UNKNOWN, INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND = 0, 1, 2, 3, 4, 5
RESOURCE_EXHAUSTED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, UNAUTHENTICATED = 8, 12, 13, 14, 16


class H2Error(Exception):
    """A connection-level HTTP/2 failure (sent to the peer as GOAWAY)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


class GrpcError(Exception):
    """A call that ended with a non-OK grpc-status (or never got one)."""

    def __init__(self, status: int, message: str):
        super().__init__("rpc error: code = %s desc = %s" % (STATUS_NAMES.get(status, str(status)), message))
        self.status = status
        self.message = message


STATUS_NAMES = {OK: "OK", CANCELLED: "Canceled", UNKNOWN: "Unknown", INVALID_ARGUMENT: "InvalidArgument",
                DEADLINE_EXCEEDED: "DeadlineExceeded", NOT_FOUND: "NotFound", RESOURCE_EXHAUSTED:
                "ResourceExhausted", UNIMPLEMENTED: "Unimplemented", INTERNAL: "Internal",
                UNAVAILABLE: "Unavailable", UNAUTHENTICATED: "Unauthenticated"}

# ---------------------------------------------------------------------------
# HPACK
# ---------------------------------------------------------------------------

STATIC_TABLE: List[Tuple[str, str]] = [
    (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"), (":path", "/index.html"),
    (":scheme", "http"), (":scheme", "https"), (":status", "200"), (":status", "204"), (":status", "206"),
    (":status", "304"), (":status", "400"), (":status", "404"), (":status", "500"), ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""), ("accept", ""),
    ("access-control-allow-origin", ""), ("age", ""), ("allow", ""), ("authorization", ""),
    ("cache-control", ""), ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""),
    ("content-length", ""), ("content-location", ""), ("content-range", ""), ("content-type", ""),
    ("cookie", ""), ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""),
    ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
    ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""), ("max-forwards", ""),
    ("proxy-authenticate", ""), ("proxy-authorization", ""), ("range", ""), ("referer", ""), ("refresh", ""),
    ("retry-after", ""), ("server", ""), ("set-cookie", ""), ("strict-transport-security", ""),
    ("transfer-encoding", ""), ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
]


def _hpack_int(value: int, prefix_bits: int, first: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_encode(headers: List[Tuple[str, str]]) -> bytes:
    """Literal header fields without indexing, new names, plain (non-Huffman) strings."""
    out = bytearray()
    for name, value in headers:
        n, v = name.lower().encode("utf-8"), value.encode("utf-8")
        out.append(0)
        out += _hpack_int(len(n), 7, 0) + n
        out += _hpack_int(len(v), 7, 0) + v
    return bytes(out)


class HpackDecoder:
    def __init__(self, max_size: int = 4096):
        self.dynamic: List[Tuple[str, str]] = []
        self.size = 0
        self.max_size = max_size

    def _int(self, data: bytes, pos: int, prefix_bits: int) -> Tuple[int, int]:
        if pos >= len(data):
            raise H2Error(COMPRESSION_ERROR, "hpack: truncated integer")
        limit = (1 << prefix_bits) - 1
        value = data[pos] & limit
        pos += 1
        if value < limit:
            return value, pos
        shift = 0
        while True:
            if pos >= len(data) or shift > 28:
                raise H2Error(COMPRESSION_ERROR, "hpack: bad integer")
            b = data[pos]
            pos += 1
            value += (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value, pos

    def _string(self, data: bytes, pos: int) -> Tuple[str, int]:
        if pos >= len(data):
            raise H2Error(COMPRESSION_ERROR, "hpack: truncated string")
        huffman = data[pos] & 0x80
        size, pos = self._int(data, pos, 7)
        if pos + size > len(data):
            raise H2Error(COMPRESSION_ERROR, "hpack: truncated string")
        if huffman:
            raise H2Error(COMPRESSION_ERROR, "hpack: Huffman-coded strings are not supported by this stand-in")
        return data[pos:pos + size].decode("utf-8", "replace"), pos + size

    def _entry(self, index: int) -> Tuple[str, str]:
        if 1 <= index <= len(STATIC_TABLE):
            return STATIC_TABLE[index - 1]
        i = index - len(STATIC_TABLE) - 1
        if 0 <= i < len(self.dynamic):
            return self.dynamic[i]
        raise H2Error(COMPRESSION_ERROR, "hpack: invalid index %d" % index)

    def _evict(self) -> None:
        while self.size > self.max_size and self.dynamic:
            n, v = self.dynamic.pop()
            self.size -= 32 + len(n) + len(v)

    def _add(self, name: str, value: str) -> None:
        self.dynamic.insert(0, (name, value))
        self.size += 32 + len(name) + len(value)
        self._evict()

    def decode(self, data: bytes) -> List[Tuple[str, str]]:
        out: List[Tuple[str, str]] = []
        pos = 0
        while pos < len(data):
            b = data[pos]
            if b & 0x80:  # indexed field
                index, pos = self._int(data, pos, 7)
                out.append(self._entry(index))
                continue
            if b & 0xE0 == 0x20:  # dynamic table size update
                self.max_size, pos = self._int(data, pos, 5)
                self._evict()
                continue
            incremental = b & 0xC0 == 0x40
            index, pos = self._int(data, pos, 6 if incremental else 4)
            if index:
                name = self._entry(index)[0]
            else:
                name, pos = self._string(data, pos)
            value, pos = self._string(data, pos)
            if incremental:
                self._add(name, value)
            out.append((name, value))
        return out


# ---------------------------------------------------------------------------
# frames and connections
# ---------------------------------------------------------------------------

def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by peer")
        buf += chunk
    return bytes(buf)


def grpc_frame(message: bytes, compress: bool = False) -> bytes:
    """The 5-byte length prefix (compressed flag + big-endian length) and the message."""
    if compress:
        message = gzip.compress(message)
    return struct.pack(">BI", 1 if compress else 0, len(message)) + message


def grpc_messages(data: bytes, encoding: str) -> List[bytes]:
    out, pos = [], 0
    while pos < len(data):
        if pos + 5 > len(data):
            raise GrpcError(INTERNAL, "grpc: truncated message prefix")
        flag, size = struct.unpack(">BI", data[pos:pos + 5])
        body = data[pos + 5:pos + 5 + size]
        if len(body) != size:
            raise GrpcError(INTERNAL, "grpc: truncated message")
        if flag & 1:
            if encoding != "gzip":
                raise GrpcError(INTERNAL, "grpc: compressed flag set with identity or empty encoding")
            body = gzip.decompress(body)
        out.append(body)
        pos += 5 + size
    return out


class Stream:
    def __init__(self, sid: int, send_window: int):
        self.id = sid
        self.headers: List[Tuple[str, str]] = []
        self.trailers: List[Tuple[str, str]] = []
        self.data = bytearray()
        self.ended = False
        self.reset: Optional[int] = None
        self.send_window = send_window


class Connection:
    """One HTTP/2 connection; frames are read by whoever needs the next one (no reader thread)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.decoder = HpackDecoder()
        self.streams: Dict[int, Stream] = {}
        self.peer_window = DEFAULT_WINDOW  # connection-level window for what we send
        self.peer_initial = DEFAULT_WINDOW
        self.peer_max_frame = MAX_FRAME
        self.goaway: Optional[str] = None
        self._hdr_block: Optional[Tuple[int, int, bytearray]] = None  # stream, flags, fragments
        self.send_lock = threading.Lock()

    # -- writing --------------------------------------------------------------
    def send_frame(self, ftype: int, flags: int, sid: int, payload: bytes = b"") -> None:
        header = struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, sid & 0x7FFFFFFF)
        with self.send_lock:
            self.sock.sendall(header + payload)

    def send_settings(self) -> None:
        payload = struct.pack(">HI", SETTINGS_INITIAL_WINDOW_SIZE, MAX_WINDOW)
        self.send_frame(SETTINGS, 0, 0, payload)
        self.send_frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", MAX_WINDOW - DEFAULT_WINDOW))

    def send_headers(self, sid: int, headers: List[Tuple[str, str]], end_stream: bool) -> None:
        block = hpack_encode(headers)
        first, rest = block[:self.peer_max_frame], block[self.peer_max_frame:]
        flags = (END_STREAM if end_stream else 0) | (0 if rest else END_HEADERS)
        self.send_frame(HEADERS, flags, sid, first)
        while rest:
            chunk, rest = rest[:self.peer_max_frame], rest[self.peer_max_frame:]
            self.send_frame(CONTINUATION, 0 if rest else END_HEADERS, sid, chunk)

    def send_data(self, stream: Stream, data: bytes, end_stream: bool) -> None:
        """DATA frames within the peer's frame size and flow-control windows."""
        view = memoryview(data)
        while True:
            while len(view) and min(self.peer_window, stream.send_window) <= 0:
                self.read_and_handle()  # wait for WINDOW_UPDATE
                if stream.reset is not None:
                    raise GrpcError(UNAVAILABLE, "stream reset by peer (code %d)" % stream.reset)
            size = min(len(view), self.peer_max_frame, self.peer_window, stream.send_window)
            chunk = bytes(view[:size])
            view = view[size:]
            self.peer_window -= size
            stream.send_window -= size
            last = not len(view)
            self.send_frame(DATA, END_STREAM if (last and end_stream) else 0, stream.id, chunk)
            if last:
                return

    # -- reading --------------------------------------------------------------
    def read_frame(self) -> Tuple[int, int, int, bytes]:
        head = _recv_exact(self.sock, 9)
        length = int.from_bytes(head[:3], "big")
        ftype, flags, sid = head[3], head[4], struct.unpack(">I", head[5:9])[0] & 0x7FFFFFFF
        if length > MAX_FRAME:
            raise H2Error(FRAME_SIZE_ERROR, "frame of %d bytes exceeds SETTINGS_MAX_FRAME_SIZE" % length)
        return ftype, flags, sid, _recv_exact(self.sock, length)

    def stream(self, sid: int) -> Stream:
        if sid not in self.streams:
            self.streams[sid] = Stream(sid, self.peer_initial)
        return self.streams[sid]

    def read_and_handle(self) -> Optional[Stream]:
        """Read one frame and act on it; returns the stream it completed, if any."""
        ftype, flags, sid, payload = self.read_frame()
        if self._hdr_block is not None and ftype != CONTINUATION:
            raise H2Error(PROTOCOL_ERROR, "expected CONTINUATION frame")
        if ftype == SETTINGS:
            if flags & ACK:
                return None
            for i in range(0, len(payload) - len(payload) % 6, 6):
                ident, value = struct.unpack(">HI", payload[i:i + 6])
                if ident == SETTINGS_INITIAL_WINDOW_SIZE:
                    delta = value - self.peer_initial
                    self.peer_initial = value
                    for st in self.streams.values():
                        st.send_window += delta
                elif ident == SETTINGS_MAX_FRAME_SIZE:
                    self.peer_max_frame = value
            self.send_frame(SETTINGS, ACK, 0)
        elif ftype == PING:
            if not flags & ACK:
                self.send_frame(PING, ACK, 0, payload)
        elif ftype == WINDOW_UPDATE:
            inc = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
            if sid == 0:
                self.peer_window += inc
            else:
                self.stream(sid).send_window += inc
        elif ftype == GOAWAY:
            code = struct.unpack(">I", payload[4:8])[0] if len(payload) >= 8 else 0
            self.goaway = "GOAWAY code %d: %s" % (code, payload[8:].decode("utf-8", "replace"))
            raise ConnectionError(self.goaway)
        elif ftype == RST_STREAM:
            st = self.stream(sid)
            st.reset = struct.unpack(">I", payload[:4])[0]
            return st
        elif ftype == DATA:
            body = self._unpad(flags, payload)
            st = self.stream(sid)
            st.data += body
            if payload:  # give the window back at once; payloads stay small enough to buffer
                self.send_frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", len(payload)))
                if not flags & END_STREAM:
                    self.send_frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", len(payload)))
            if len(st.data) > MAX_MESSAGE + 5:
                raise H2Error(FLOW_CONTROL_ERROR, "message larger than %d bytes" % MAX_MESSAGE)
            if flags & END_STREAM:
                st.ended = True
                return st
        elif ftype == HEADERS:
            body = self._unpad(flags, payload)
            if flags & PRIORITY_FLAG:
                body = body[5:]
            self._hdr_block = (sid, flags, bytearray(body))
            if flags & END_HEADERS:
                return self._headers_done()
        elif ftype == CONTINUATION:
            if self._hdr_block is None or self._hdr_block[0] != sid:
                raise H2Error(PROTOCOL_ERROR, "unexpected CONTINUATION frame")
            self._hdr_block[2].extend(payload)
            if flags & END_HEADERS:
                return self._headers_done()
        elif ftype == PUSH_PROMISE:
            raise H2Error(PROTOCOL_ERROR, "PUSH_PROMISE not enabled")
        return None  # PRIORITY and unknown frame types are ignored

    @staticmethod
    def _unpad(flags: int, payload: bytes) -> bytes:
        if not flags & PADDED:
            return payload
        pad = payload[0]
        if pad >= len(payload):
            raise H2Error(PROTOCOL_ERROR, "padding exceeds frame")
        return payload[1:len(payload) - pad]

    def _headers_done(self) -> Optional[Stream]:
        sid, flags, block = self._hdr_block  # type: ignore[misc]
        self._hdr_block = None
        fields = self.decoder.decode(bytes(block))
        st = self.stream(sid)
        if st.headers:
            st.trailers = fields
        else:
            st.headers = fields
        if flags & END_STREAM:
            st.ended = True
            return st
        return None

    def go_away(self, code: int, message: str) -> None:
        last = max(self.streams) if self.streams else 0
        try:
            self.send_frame(GOAWAY, 0, 0, struct.pack(">II", last, code) + message.encode("utf-8"))
        except OSError:
            pass


def _header(fields: List[Tuple[str, str]], name: str, default: str = "") -> str:
    for k, v in fields:
        if k == name:
            return v
    return default


# ---------------------------------------------------------------------------
# client
# ---------------------------------------------------------------------------

def call(target: str, method: str, message: bytes, metadata: Optional[Dict[str, str]] = None,
         timeout: float = 5.0, compress: bool = False) -> bytes:
    """One unary call to ``host:port``; returns the reply message or raises GrpcError.

    Connection failures raise GrpcError(UNAVAILABLE) like grpc-go reports them.
    """
    host, _, port = target.rpartition(":")
    host = host.strip("[]") or "localhost"
    try:
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    except (OSError, ValueError) as exc:
        raise GrpcError(UNAVAILABLE, 'connection error: desc = "transport: Error while dialing: dial tcp %s: %s"'
                        % (target, exc)) from None
    try:
        conn = Connection(sock)
        sock.sendall(PREFACE)
        conn.send_settings()
        headers = [(":method", "POST"), (":scheme", "http"), (":path", method), (":authority", target),
                   ("content-type", "application/grpc"), ("te", "trailers"),
                   ("user-agent", "grpc-go/1.72.0"), ("grpc-timeout", "%dm" % max(1, int(timeout * 1000)))]
        if compress:
            headers += [("grpc-encoding", "gzip"), ("grpc-accept-encoding", "gzip")]
        headers += [(k.lower(), v) for k, v in (metadata or {}).items()]
        st = conn.stream(1)
        conn.send_headers(1, headers, end_stream=False)
        conn.send_data(st, grpc_frame(message, compress), end_stream=True)
        while not st.ended and st.reset is None:
            conn.read_and_handle()
        if st.reset is not None:
            raise GrpcError(UNAVAILABLE if st.reset == 7 else INTERNAL, "stream terminated by RST_STREAM with error "
                            "code: %d" % st.reset)
        trailers = st.trailers or st.headers  # "trailers-only" responses put the status in the headers
        status = _header(st.headers, ":status")
        if status != "200":
            raise GrpcError(UNKNOWN if status != "404" else UNIMPLEMENTED,
                            "unexpected HTTP status code received from server: %s" % status)
        code = _header(trailers, "grpc-status")
        if code == "":
            raise GrpcError(INTERNAL, "server closed the stream without sending trailers")
        if int(code) != OK:
            raise GrpcError(int(code), urllib.parse.unquote(_header(trailers, "grpc-message")))
        replies = grpc_messages(bytes(st.data), _header(st.headers, "grpc-encoding", "identity"))
        return replies[0] if replies else b""
    except H2Error as exc:
        raise GrpcError(INTERNAL, "http2: %s" % exc) from None
    except (OSError, ConnectionError) as exc:
        raise GrpcError(UNAVAILABLE, "error reading from server: %s" % exc) from None
    finally:
        sock.close()


# ---------------------------------------------------------------------------
# server
# ---------------------------------------------------------------------------

# handler(method, metadata, request) -> (grpc status, message, reply)
Handler = Callable[[str, Dict[str, str], bytes], Tuple[int, str, bytes]]


class GrpcServer:
    """Serves unary calls on ``host:port``; each connection gets a thread."""

    def __init__(self, name: str, host: str, port: int, handler: Handler):
        self.name = name
        self.handler = handler
        host = host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if host in ("", "::"):  # Go's ":port" listens on both families
            family, host = socket.AF_INET6, "::"
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if host == "::":
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            raise OSError("listen tcp %s:%d: bind: %s" % (host, port, (exc.strerror or str(exc)).lower())) from None
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._stopping = False
        self._conns: List[socket.socket] = []
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, name="grpc-" + name, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        conn = Connection(sock)
        try:
            if _recv_exact(sock, len(PREFACE)) != PREFACE:
                conn.go_away(PROTOCOL_ERROR, "invalid connection preface")
                return
            conn.send_settings()
            while True:
                st = conn.read_and_handle()
                if st is not None and st.ended and st.reset is None:
                    self._respond(conn, st)
                    del conn.streams[st.id]
        except H2Error as exc:
            conn.go_away(exc.code, str(exc))
        except (OSError, ConnectionError):
            pass
        finally:
            with self._lock:
                if sock in self._conns:
                    self._conns.remove(sock)
            sock.close()

    def _respond(self, conn: Connection, st: Stream) -> None:
        method = _header(st.headers, ":path")
        metadata = {k: v for k, v in st.headers if not k.startswith(":")}
        encoding = metadata.get("grpc-encoding", "identity")
        reply = b""
        if not metadata.get("content-type", "").startswith("application/grpc"):
            conn.send_headers(st.id, [(":status", "415"), ("content-type", "text/plain")], end_stream=True)
            return
        if encoding not in ("identity", "gzip"):
            status, message = UNIMPLEMENTED, "grpc: Decompressor is not installed for grpc-encoding %r" % encoding
        else:
            try:
                requests = grpc_messages(bytes(st.data), encoding)
                if len(requests) != 1:
                    raise GrpcError(UNIMPLEMENTED if requests else INTERNAL,
                                    "grpc: expected exactly one request message for a unary call")
                status, message, reply = self.handler(method, metadata, requests[0])
            except GrpcError as exc:
                status, message = exc.status, exc.message
            except Exception as exc:  # noqa: BLE001 - a handler bug becomes an Internal status, like grpc-go
                status, message = INTERNAL, str(exc)
        head = [(":status", "200"), ("content-type", "application/grpc")]
        tail = [("grpc-status", str(status)), ("grpc-message", urllib.parse.quote(message, safe=" "))]
        if status != OK:  # trailers-only response
            conn.send_headers(st.id, head + tail, end_stream=True)
            return
        conn.send_headers(st.id, head, end_stream=False)
        conn.send_data(st, grpc_frame(reply), end_stream=False)
        conn.send_headers(st.id, tail[:1], end_stream=True)

    def stop(self) -> None:
        self._stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=5)
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass
