# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""MinIO stand-in: ``minio server`` / ``minio --version`` on the surface o11y.stack uses.

Behaves like MinIO RELEASE.2025-09-07T16-13-09Z where the collection touches it:

* CLI (urfave/cli like MinIO's): ``minio [--certs-dir|-S DIR] [--quiet]
  [--anonymous] [--json] server [--address ADDR] [--console-address ADDR]
  [--config FILE] [...] DIR|URL ...``; flags may follow the positional args;
  unknown flags print ``Incorrect Usage: flag provided but not defined: -x``
  and exit 1.  Env: ``MINIO_ARGS``/``MINIO_VOLUMES``/``MINIO_ENDPOINTS`` (take
  precedence over args, like MinIO), ``MINIO_ADDRESS``, ``MINIO_CONSOLE_ADDRESS``,
  ``MINIO_ROOT_USER`` (>= 3 chars) and ``MINIO_ROOT_PASSWORD`` (>= 8 chars)
  (also ``*_FILE``; required here), ``MINIO_SITE_REGION``/``MINIO_REGION``,
  ``MINIO_PROMETHEUS_AUTH_TYPE=public``, ``MINIO_BROWSER=off``.
* Volumes: ellipses (``/mnt/disk{1...4}``, ``http://node{1...4}:9000/data{1...2}``),
  local drives must exist and be writable, ``.minio.sys/format.json`` per drive.
* Distributed mode: the node of the first endpoint owns the S3 namespace
  (moto via :class:`S3Server`, persisted in its first drive); the other nodes
  reverse-proxy S3 requests to it, so every node serves the same buckets.
* Endpoints on ``--address``: S3 API, ``/minio/health/{live,ready,cluster,cluster/read}``,
  ``/minio/v2/metrics/{cluster,node,bucket,resource}`` (Prometheus text; need a
  ``mc admin prometheus generate`` style bearer JWT unless auth type is public).
  A tiny console page on ``--console-address``.
* systemd ``Type=notify`` (READY=1), logs on stderr, SIGTERM -> exit 0.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from . import framework as fw

DEFAULT_VERSION = "RELEASE.2025-09-07T16-13-09Z"
DEFAULT_GOVERSION = "go1.24.6"
STATE_FILE = "standin-state.json"
SYS_DIR = ".minio.sys"


# ---------------------------------------------------------------------------
# version
# ---------------------------------------------------------------------------

def release() -> str:
    info = fw.build_info()
    return info["version"] if info.get("component") == "minio" else DEFAULT_VERSION


def commit_id() -> str:
    info = fw.build_info()
    if info.get("component") == "minio" and info.get("revision", "").strip("0"):
        return info["revision"]
    return hashlib.sha1(("minio " + release()).encode()).hexdigest()


def goversion() -> str:
    info = fw.build_info()
    return info["goversion"] if info.get("component") == "minio" else DEFAULT_GOVERSION


def version_banner(app: Optional[fw.CliApp] = None) -> str:
    goos, goarch = fw.go_platform()
    year = release()[8:12] if release().startswith("RELEASE.") else time.strftime("%Y")
    return ("minio version %s (commit-id=%s)\n"
            "Runtime: %s %s/%s\n"
            "License: GNU AGPLv3 - https://www.gnu.org/licenses/agpl-3.0.html\n"
            "Copyright: 2015-%s MinIO, Inc.\n") % (release(), commit_id(), goversion(), goos, goarch, year)


# ---------------------------------------------------------------------------
# CLI definition (flag names and env vars as in MinIO's cmd/main.go and
# cmd/server-main.go of that release)
# ---------------------------------------------------------------------------

C = fw.CliFlag

GLOBAL_FLAGS = [
    C("config-dir, C", "string", "", "[DEPRECATED] path to legacy configuration directory", hidden=True),
    C("certs-dir, S", "string", os.path.join(os.path.expanduser("~"), ".minio", "certs"),
      "path to certs directory"),
    C("quiet", "bool", usage="disable startup information"),
    C("anonymous", "bool", usage="hide sensitive information from logging"),
    C("json", "bool", usage="output server logs and startup information in json format"),
    C("compat", "bool", usage="enable strict S3 compatibility", hidden=True),
    C("no-compat", "bool", usage="disable strict S3 compatibility", hidden=True),
]

SERVER_FLAGS = [
    C("config", "string", "", "specify server configuration via YAML configuration", env_var="MINIO_CONFIG"),
    C("address", "string", ":9000", "bind to a specific ADDRESS:PORT, ADDRESS can be an IP or hostname",
      env_var="MINIO_ADDRESS"),
    C("listeners", "int", 1, "bind N number of listeners per ADDRESS:PORT", env_var="MINIO_LISTENERS", hidden=True),
    C("console-address", "string", "",
      "bind to a specific ADDRESS:PORT for embedded Console UI, ADDRESS can be an IP or hostname",
      env_var="MINIO_CONSOLE_ADDRESS"),
    C("shutdown-timeout", "duration", 30.0, "shutdown timeout to gracefully shutdown server (DEPRECATED)",
      env_var="MINIO_SHUTDOWN_TIMEOUT", hidden=True),
    C("idle-timeout", "duration", 30.0, "idle timeout", env_var="MINIO_IDLE_TIMEOUT", hidden=True),
    C("read-header-timeout", "duration", 30.0, "read header timeout", env_var="MINIO_READ_HEADER_TIMEOUT",
      hidden=True),
    C("conn-user-timeout", "duration", 600.0, "custom TCP_USER_TIMEOUT for socket buffers",
      env_var="MINIO_CONN_USER_TIMEOUT", hidden=True),
    C("interface", "string", "", "bind to right VRF device for MinIO services", env_var="MINIO_INTERFACE",
      hidden=True),
    C("dns-cache-ttl", "duration", 600.0, "custom DNS cache TTL", env_var="MINIO_DNS_CACHE_TTL", hidden=True),
    C("max-idle-conns-per-host", "int", 2048, "set a custom max idle connections per host value",
      env_var="MINIO_MAX_IDLE_CONNS_PER_HOST", hidden=True),
    C("ftp", "string_slice", usage="enable and configure an FTP(Secure) server"),
    C("sftp", "string_slice", usage="enable and configure an SFTP server"),
    C("crossdomain-xml", "string", "", "provide a custom crossdomain-xml configuration",
      env_var="MINIO_CROSSDOMAIN_XML", hidden=True),
    C("memlimit", "string", "", "set global memory limit per server via GOMEMLIMIT", env_var="MINIO_MEMLIMIT",
      hidden=True),
    C("send-buf-size", "int", 4 << 20, "", env_var="MINIO_SEND_BUF_SIZE", hidden=True),
    C("recv-buf-size", "int", 4 << 20, "", env_var="MINIO_RECV_BUF_SIZE", hidden=True),
    C("log-dir", "string", "", "specify the directory to save the server log", env_var="MINIO_LOG_DIR",
      hidden=True),
    C("log-size", "int", 10 << 20, "", env_var="MINIO_LOG_SIZE", hidden=True),
    C("log-compress", "bool", usage="", env_var="MINIO_LOG_COMPRESS", hidden=True),
    C("log-prefix", "string", "", "", env_var="MINIO_LOG_PREFIX", hidden=True),
]

SERVER_HELP = """NAME:
  {helpname} - {usage}

USAGE:
  {helpname} [FLAGS] DIR1 [DIR2..]
  {helpname} [FLAGS] DIR{1...64}
  {helpname} [FLAGS] DIR{1...64} DIR{65...128}

DIR:
  DIR points to a directory on a filesystem. When you want to combine
  multiple drives into a single large system, pass one directory per
  filesystem separated by space. You may also use a '...' convention
  to abbreviate the directory arguments. Remote directories in a
  distributed setup are encoded as HTTP(s) URIs.

FLAGS:
{flags}

EXAMPLES:
  1. Start MinIO server on "/home/shared" directory.
     $ {helpname} /home/shared

  2. Start single node server with 64 local drives "/mnt/data1" to "/mnt/data64".
     $ {helpname} /mnt/data{1...64}

  3. Start distributed MinIO server on an 32 node setup with 32 drives each, run following command on all the nodes
     $ {helpname} http://node{1...32}.example.com/mnt/export{1...32}
"""

CONFIG_SCHEMA = fw.Struct("config.ServerConfig", {
    "version": fw.Enum("v1", "v2", required=True),
    "rootUser": fw.Str(),
    "rootPassword": fw.Str(),
    "address": fw.Str(),
    "console-address": fw.Str(),
    "certs-dir": fw.Str(),
    "options": fw.Struct("config.Opts", {
        "ftp": fw.Struct("ftp", {"address": fw.Str(), "passive-port-range": fw.Str()}),
        "sftp": fw.Struct("sftp", {"address": fw.Str(), "ssh-private-key": fw.Str()}),
    }),
    # v1: list of lists of args; v2: list of {args, set-drive-count}
    "pools": fw.Any_(),
})

V2_POOL = fw.Struct("config.ServerConfig.Pools", {
    "args": fw.List(fw.Str(), required=True),
    "set-drive-count": fw.Int(min=0),
})


class MinioFatal(Exception):
    """A startup error MinIO reports as FATAL and exits 1 for."""


# ---------------------------------------------------------------------------
# ellipses and endpoints
# ---------------------------------------------------------------------------

_ELLIPSES = re.compile(r"\{([0-9a-fA-F]*)\.\.\.([0-9a-fA-F]*)\}")


def has_ellipses(*args: str) -> bool:
    return any(_ELLIPSES.search(a) for a in args)


def _expand_range(start: str, end: str) -> List[str]:
    base = 10
    try:
        s, e = int(start, 10), int(end, 10)
    except ValueError:
        try:
            s, e = int(start, 16), int(end, 16)
            base = 16
        except ValueError:
            raise MinioFatal("Invalid ellipsis format in (%s...%s), Ellipsis range must be provided in format "
                             "{N...M} where N and M are positive integers, M must be greater than N, with an "
                             "allowed minimum range of 4" % (start, end)) from None
    if s > e:
        raise MinioFatal("Incorrect range start %d cannot be bigger than end %d" % (s, e))
    pad = len(end) if (start.startswith("0") and len(start) > 1) else 0
    fmt = "%%0%d%s" % (pad, "d" if base == 10 else "x") if pad else ("%d" if base == 10 else "%x")
    return [fmt % i for i in range(s, e + 1)]


def expand_ellipses(arg: str) -> List[str]:
    """Expand like MinIO's ellipses package: the right-most pattern varies slowest
    (``node{1...2}/d{1...2}`` -> node1/d1, node2/d1, node1/d2, node2/d2)."""
    if "{" not in arg and "}" not in arg:
        return [arg]
    parts: List[Any] = []
    pos = 0
    for m in _ELLIPSES.finditer(arg):
        parts.append(arg[pos:m.start()])
        parts.append(_expand_range(m.group(1), m.group(2)))
        pos = m.end()
    parts.append(arg[pos:])
    if any(("{" in p or "}" in p) for p in parts if isinstance(p, str)):
        raise MinioFatal("Invalid ellipsis format in (%s), Ellipsis range must be provided in format {N...M} "
                         "where N and M are positive integers, M must be greater than N, with an allowed "
                         "minimum range of 4" % arg)
    ranges = [p for p in parts if isinstance(p, list)]
    out: List[str] = []

    def build(choice: List[str]) -> str:
        it = iter(choice)
        return "".join(next(it) if isinstance(p, list) else p for p in parts)

    # index 0 of `ranges` is left-most; MinIO varies the left-most fastest.
    def rec(level: int, acc: List[Optional[str]]):
        if level < 0:
            out.append(build(acc))  # type: ignore[arg-type]
            return
        for v in ranges[level]:
            acc[level] = v
            rec(level - 1, acc)

    rec(len(ranges) - 1, [None] * len(ranges))
    return out


class Endpoint:
    def __init__(self, raw: str, is_url: bool, scheme: str = "", host: str = "", port: int = 0, path: str = ""):
        self.raw = raw
        self.is_url = is_url
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
        self.is_local = False

    @property
    def node(self) -> str:
        return "%s:%d" % (("[%s]" % self.host) if ":" in self.host else self.host, self.port)

    def __repr__(self) -> str:
        return "Endpoint(%s, local=%s)" % (self.raw, self.is_local)


def parse_endpoint(raw: str, default_port: int) -> Endpoint:
    if raw.startswith("http://") or raw.startswith("https://"):
        u = urlsplit(raw)
        if not u.hostname:
            raise MinioFatal("Invalid command line arguments: empty or root endpoint is not supported (%s)" % raw)
        if u.path in ("", "/"):
            raise MinioFatal("Invalid command line arguments: empty or root path is not supported in URL "
                             "endpoint (%s)" % raw)
        try:
            port = u.port or default_port
        except ValueError:
            raise MinioFatal("Invalid command line arguments: invalid port in %s" % raw) from None
        return Endpoint(raw, True, u.scheme, u.hostname, port, os.path.normpath(u.path))
    if "://" in raw:
        raise MinioFatal("Invalid command line arguments: unsupported endpoint scheme in %s" % raw)
    if raw in ("", "/"):
        raise MinioFatal("Invalid command line arguments: empty or root endpoint is not supported")
    return Endpoint(raw, False, path=os.path.abspath(raw))


def _valid_pool_size(n: int) -> bool:
    return n == 1 or any(n % k == 0 for k in range(2, 17))


class Layout:
    """Pools, endpoints, nodes, which of them are local, and who is primary."""

    def __init__(self, pools: List[List[Endpoint]], api_host: str, api_port: int):
        self.pools = pools
        self.endpoints = [e for p in pools for e in p]
        self.distributed = False
        self.api_port = api_port
        urls = [e for e in self.endpoints if e.is_url]
        if urls and len(urls) != len(self.endpoints):
            raise MinioFatal("Invalid command line arguments: mixed style endpoints are not supported")
        seen = set()
        for e in self.endpoints:
            key = (e.host, e.port, e.path)
            if key in seen:
                raise MinioFatal("Invalid command line arguments: duplicate endpoints found (%s)" % e.raw)
            seen.add(key)
        for p in pools:
            if not _valid_pool_size(len(p)):
                raise MinioFatal("Invalid command line arguments: Incorrect number of endpoints provided %s"
                                 % [e.raw for e in p])
        if urls:
            for e in self.endpoints:
                e.is_local = e.port == api_port and fw.is_local_host(e.host, api_host)
            self.nodes: List[str] = []
            for e in self.endpoints:
                if e.node not in self.nodes:
                    self.nodes.append(e.node)
            local_nodes = {e.node for e in self.endpoints if e.is_local}
            if not local_nodes:
                raise MinioFatal("Invalid command line arguments: no endpoint pointing to the local machine is "
                                 "found")
            if len(local_nodes) > 1:
                raise MinioFatal("Invalid command line arguments: more than one local node (%s) for --address "
                                 ":%d" % (", ".join(sorted(local_nodes)), api_port))
            self.local_node = local_nodes.pop()
            self.distributed = len(self.nodes) > 1
            self.scheme = urls[0].scheme
        else:
            for e in self.endpoints:
                e.is_local = True
            self.nodes = ["local"]
            self.local_node = "local"
            self.scheme = "http"
        self.primary_node = self.endpoints[0].node if urls else "local"
        self.is_primary = self.primary_node == self.local_node
        self.local_drives = [e.path for e in self.endpoints if e.is_local]

    def node_url(self, node: str) -> str:
        return "%s://%s" % (self.scheme, node)

    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join(e.raw for e in self.endpoints).encode()).hexdigest()

    def mode(self) -> str:
        if self.distributed:
            return "mode-server-xl"
        return "mode-server-xl-single" if len(self.endpoints) == 1 else "mode-server-xl"


def build_layout(args: List[str], pool_args: Optional[List[List[str]]], api_host: str, api_port: int) -> Layout:
    pools: List[List[Endpoint]] = []
    if pool_args is not None:
        groups = pool_args
    elif has_ellipses(*args):
        if not all(has_ellipses(a) for a in args):
            raise MinioFatal("Invalid command line arguments: all args must have ellipses for pool expansion "
                             "(Invalid arguments specified)")
        groups = [[a] for a in args]
    else:
        groups = [list(args)]
    for group in groups:
        expanded: List[str] = []
        for a in group:
            expanded.extend(expand_ellipses(a))
        pools.append([parse_endpoint(x, api_port) for x in expanded])
    return Layout(pools, api_host, api_port)


# ---------------------------------------------------------------------------
# drives
# ---------------------------------------------------------------------------

def _deployment_id(layout: Layout) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "minio-standin:" + layout.fingerprint()))


def _writable(path: str) -> bool:
    """Write a probe file, as MinIO does at start, instead of trusting permission bits (root passes those)."""
    probe = os.path.join(path, ".minio-standin-write-check-%s" % uuid.uuid4().hex)
    try:
        with open(probe, "wb") as handle:
            handle.write(b"ok")
        os.remove(probe)
    except OSError:
        return False
    return True


def prepare_drives(layout: Layout) -> Tuple[bool, List[str]]:
    """Check local drives and write format.json; returns (formatted_now, errors)."""
    errors = []
    for path in layout.local_drives:
        if not os.path.isdir(path):
            errors.append("Drive %s: drive not found" % path)
        elif not _writable(path):
            errors.append("Drive %s: drive access denied" % path)
    if errors:
        return False, errors
    deployment = _deployment_id(layout)
    all_ids = {e.raw: str(uuid.uuid5(uuid.NAMESPACE_URL, deployment + e.raw)) for e in layout.endpoints}
    sets = [[all_ids[e.raw] for e in pool] for pool in layout.pools]
    formatted = False
    for e in layout.endpoints:
        if not e.is_local:
            continue
        sysdir = os.path.join(e.path, SYS_DIR)
        fmt_path = os.path.join(sysdir, "format.json")
        try:
            os.makedirs(sysdir, exist_ok=True)
            if os.path.exists(fmt_path):
                continue
            doc = {"version": "1", "format": "xl-single" if len(layout.endpoints) == 1 else "xl",
                   "id": deployment,
                   "xl": {"version": "3", "this": all_ids[e.raw], "sets": sets,
                          "distributionAlgo": "SIPMOD+PARITY"}}
            tmp = fmt_path + ".tmp"
            with open(tmp, "w") as fh:
                json.dump(doc, fh)
            os.replace(tmp, fmt_path)
            formatted = True
        except OSError as exc:
            errors.append("Drive %s: %s" % (e.path, exc.strerror or exc))
    return formatted, errors


# ---------------------------------------------------------------------------
# credentials and env
# ---------------------------------------------------------------------------

def _env(name: str) -> Optional[str]:
    val = os.environ.get(name)
    if val:
        return val
    fpath = os.environ.get(name + "_FILE")
    if fpath:
        try:
            with open(fpath) as fh:
                return fh.read().strip()
        except OSError as exc:
            raise MinioFatal("Unable to read %s_FILE %s: %s" % (name, fpath, exc.strerror)) from None
    return None


def root_credentials(cfg: Optional[Dict[str, Any]]) -> Tuple[str, str]:
    user = _env("MINIO_ROOT_USER") or _env("MINIO_ACCESS_KEY") or (cfg or {}).get("rootUser")
    password = _env("MINIO_ROOT_PASSWORD") or _env("MINIO_SECRET_KEY") or (cfg or {}).get("rootPassword")
    prefix = "Unable to validate credentials inherited from the shell environment: "
    if not user:
        raise MinioFatal(prefix + "MINIO_ROOT_USER is not set (this stand-in requires MINIO_ROOT_USER and "
                         "MINIO_ROOT_PASSWORD)")
    if not password:
        raise MinioFatal(prefix + "MINIO_ROOT_PASSWORD is not set (this stand-in requires MINIO_ROOT_USER and "
                         "MINIO_ROOT_PASSWORD)")
    if len(user) < 3:
        raise MinioFatal(prefix + "Invalid credentials: MINIO_ROOT_USER length should be at least 3 characters")
    if len(password) < 8:
        raise MinioFatal(prefix + "Invalid credentials: MINIO_ROOT_PASSWORD length should be at least 8 characters")
    return user, password


def site_region() -> str:
    return (os.environ.get("MINIO_SITE_REGION") or os.environ.get("MINIO_REGION")
            or os.environ.get("MINIO_REGION_NAME") or "us-east-1")


# ---------------------------------------------------------------------------
# reverse proxy to the primary node
# ---------------------------------------------------------------------------

_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
        "transfer-encoding", "upgrade", "expect"}


def _s3_error(status: int, code: str, message: str, resource: str = "/") -> Tuple[str, List[Tuple[str, str]], bytes]:
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
            '<Resource>%s</Resource><RequestId>%s</RequestId></Error>'
            % (code, message, resource, uuid.uuid4().hex[:16].upper())).encode()
    reason = http.client.responses.get(status, "Error")
    headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
    return "%d %s" % (status, reason), headers, body


class PrimaryProxy:
    """Forward S3 requests unchanged (Host passed through, like MinIO's
    forwarder) to the node that owns the namespace."""

    def __init__(self, scheme: str, node: str, timeout: float = 60.0):
        self.scheme = scheme
        host, dummy, port = node.rpartition(":")
        self.host = host.strip("[]")
        self.port = int(port)
        self.timeout = timeout

    def _conn(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=ctx)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        if not uri:
            from urllib.parse import quote
            uri = quote(environ.get("PATH_INFO", "/"), safe="/~")
            if environ.get("QUERY_STRING"):
                uri += "?" + environ["QUERY_STRING"]
        stream = environ.get("wsgi.input")
        length = environ.get("CONTENT_LENGTH")
        body = b""
        if stream is not None:
            if length:
                body = stream.read(int(length))
            elif environ.get("wsgi.input_terminated"):
                body = stream.read()
        headers: List[Tuple[str, str]] = []
        for key, val in environ.items():
            if key.startswith("HTTP_"):
                name = key[5:].replace("_", "-").title()
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                name = key.replace("_", "-").title()
            else:
                continue
            if name.lower() in _HOP or name.lower() == "content-length":
                continue
            if name.lower() == "content-type" and not val:
                continue
            headers.append((name, val))
        if body or method in ("PUT", "POST"):
            headers.append(("Content-Length", str(len(body))))
        try:
            conn = self._conn()
            conn.putrequest(method, uri, skip_host=True, skip_accept_encoding=True)
            for name, val in headers:
                conn.putheader(name, val)
            conn.endheaders(body if body else None)
            resp = conn.getresponse()
        except OSError as exc:
            status, hdrs, payload = _s3_error(503, "XMinioServerNotInitialized",
                                              "Server not initialized yet, please try again. (%s)" % exc,
                                              environ.get("PATH_INFO", "/"))
            start_response(status, hdrs)
            return [payload] if method != "HEAD" else []
        out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP]
        start_response("%d %s" % (resp.status, resp.reason), out_headers)

        def stream_body():
            try:
                while True:
                    chunk = resp.read(65536)
                    if not chunk:
                        break
                    yield chunk
            finally:
                conn.close()

        if method == "HEAD":
            conn.close()
            return []
        return stream_body()


# ---------------------------------------------------------------------------
# the server
# ---------------------------------------------------------------------------

def _get(url: str, timeout: float = 1.0) -> Optional[Tuple[int, bytes]]:
    """GET a peer's URL (TLS unverified, like node-to-node health probes); None when unreachable."""
    u = urlsplit(url)
    try:
        if u.scheme == "https":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout,
                                                                           context=ctx)
        else:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        conn.request("GET", u.path or "/")
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, data
    except (OSError, http.client.HTTPException):
        return None


def _probe(url: str, timeout: float = 1.0) -> bool:
    answer = _get(url, timeout)
    return answer is not None and answer[0] == 200


def _fetch_json(url: str, timeout: float = 1.0) -> Optional[Dict[str, Any]]:
    answer = _get(url, timeout)
    if answer is None or answer[0] != 200:
        return None
    try:
        return json.loads(answer[1])
    except ValueError:
        return None


class MinioServer:
    def __init__(self, log: fw.Logger, layout: Layout, access_key: str, secret_key: str, region: str,
                 metrics_public: bool):
        self.log = log
        self.layout = layout
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.metrics_public = metrics_public
        self.started = time.time()
        self.s3 = None
        self._mismatch_logged = False
        self._pool = ThreadPoolExecutor(max_workers=8)
        self.cred_fingerprint = hashlib.sha256(("%s\0%s" % (access_key, secret_key)).encode()).hexdigest()
        if layout.is_primary:
            from .s3server import S3Server
            state = os.path.join(layout.local_drives[0], SYS_DIR, STATE_FILE)
            self.s3 = S3Server(access_key=access_key, secret_key=secret_key, region=region, state_file=state)
            if os.path.exists(state):
                self.s3.load_state()
            backend = self.s3.wsgi_app()
        else:
            backend = PrimaryProxy(layout.scheme, layout.primary_node)
        self.router = fw.Router(fallback=backend)
        r = self.router
        r.add("/minio/health/live", self.h_live)
        r.add("/minio/health/ready", self.h_ready)
        r.add("/minio/health/cluster", self.h_cluster)
        r.add("/minio/health/cluster/read", self.h_cluster_read)
        for kind in ("cluster", "node", "bucket", "resource"):
            r.add("/minio/v2/metrics/" + kind, self._metrics_handler(kind))
        r.add("/minio/metrics/v3", self._metrics_handler("v3"), prefix=True)
        r.add("/minio/standin/info", self.h_info)
        r.add("/minio/", self.h_reserved, methods=("GET", "HEAD", "PUT", "POST", "DELETE"), prefix=True)

    # -- WSGI entry with MinIO's common headers ------------------------------
    def __call__(self, environ, start_response):
        def sr(status, headers, exc_info=None):
            headers = list(headers) + [("Server", "MinIO"), ("X-Content-Type-Options", "nosniff")]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)
        return self.router(environ, sr)

    # -- health ---------------------------------------------------------------
    def h_live(self, req):
        return 200, b""

    def peer_alive(self) -> Dict[str, bool]:
        res = {self.layout.local_node: True}
        others = [n for n in self.layout.nodes if n != self.layout.local_node]
        futs = {n: self._pool.submit(_probe, self.layout.node_url(n) + "/minio/health/live") for n in others}
        for n, f in futs.items():
            res[n] = bool(f.result())
        return res

    def can_serve(self) -> bool:
        if self.layout.is_primary:
            return True
        info = _fetch_json(self.layout.node_url(self.layout.primary_node) + "/minio/standin/info")
        ok = False
        if info is not None:
            problems = []
            if info.get("endpoints") != self.layout.fingerprint():
                problems.append("the server command line (volumes) differs")
            if info.get("credentials") != self.cred_fingerprint:
                problems.append("the root credentials differ")
            if problems:
                if not self._mismatch_logged:
                    self.log.error("Unable to initialize the server: %s from node %s"
                                   % (" and ".join(problems), self.layout.primary_node))
                    self._mismatch_logged = True
            else:
                ok = True
                self._mismatch_logged = False
        return ok

    def h_ready(self, req):
        return (200, b"") if self.can_serve() else (503, b"")

    def _quorum(self, read: bool):
        alive = self.peer_alive()
        n = len(self.layout.nodes)
        up = sum(1 for v in alive.values() if v)
        need = (n + 1) // 2 if read else n // 2 + 1
        ok = up >= need and self.can_serve()
        headers = {"X-Minio-Write-Quorum": str(n // 2 + 1), "X-Minio-Storage-Class-Defaulted": "true"}
        if not ok:
            headers["X-Minio-Server-Status"] = "offline"
        return (200 if ok else 503), b"", headers

    def h_cluster(self, req):
        return self._quorum(read=False)

    def h_cluster_read(self, req):
        return self._quorum(read=True)

    def h_info(self, req):
        body = json.dumps({"version": release(), "endpoints": self.layout.fingerprint(),
                           "credentials": self.cred_fingerprint, "node": self.layout.local_node,
                           "primary": self.layout.primary_node, "nodes": self.layout.nodes})
        return 200, body, {"Content-Type": "application/json"}

    def h_reserved(self, req):
        status, headers, body = _s3_error(400, "XMinioInvalidRequest" if req.path.startswith("/minio/admin")
                                          else "InvalidRequest",
                                          "This API is not supported by the MinIO stand-in", req.path)
        return int(status.split()[0]), body, dict(headers)

    # -- metrics ----------------------------------------------------------------
    def _authorized(self, req) -> bool:
        if self.metrics_public:
            return True
        auth = req.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return False
        claims = fw.jwt_verify_hs(auth[7:].strip(), self.secret_key)
        return bool(claims and claims.get("sub") == self.access_key and claims.get("iss") == "prometheus")

    def _metrics_handler(self, kind: str):
        def handler(req):
            if not self._authorized(req):
                body = json.dumps({"Code": "AccessDenied", "Message": "Access Denied.", "Resource": req.path,
                                   "RequestId": uuid.uuid4().hex[:16].upper(), "HostId": ""})
                return 403, body, {"Content-Type": "application/json"}
            return self.render_metrics(kind)
        return handler

    def render_metrics(self, kind: str):
        m = fw.Metrics()
        server = self.layout.local_node if self.layout.local_node != "local" else socket.gethostname()
        m.build_info("minio")
        m.gauge("minio_software_version_info", "MinIO software version", 1,
                {"server": server, "version": release()})
        m.gauge("minio_software_commit_info", "Git commit hash for the MinIO release", 1,
                {"server": server, "commit": commit_id()})
        m.gauge("minio_node_process_uptime_seconds", "Uptime for MinIO process per node in seconds",
                round(time.time() - self.started, 3), {"server": server})
        m.gauge("minio_node_process_starttime_seconds", "Start time for MinIO process per node",
                round(self.started, 3), {"server": server})
        local = len(self.layout.local_drives)
        m.gauge("minio_node_drive_online_total", "Total drives online in this node", local, {"server": server})
        m.gauge("minio_node_drive_offline_total", "Total drives offline in this node", 0, {"server": server})
        m.gauge("minio_node_drive_total", "Total drives in this node", local, {"server": server})
        if kind in ("cluster", "v3"):
            alive = self.peer_alive()
            per_node: Dict[str, int] = {}
            for e in self.layout.endpoints:
                per_node[e.node] = per_node.get(e.node, 0) + 1
            up = sum(1 for v in alive.values() if v)
            n = len(self.layout.nodes)
            drives_up = sum(c for node, c in per_node.items() if alive.get(node, True)) \
                if self.layout.distributed else len(self.layout.endpoints)
            m.gauge("minio_cluster_nodes_online_total", "Total number of MinIO nodes online", up)
            m.gauge("minio_cluster_nodes_offline_total", "Total number of MinIO nodes offline", n - up)
            m.gauge("minio_cluster_drive_online_total", "Total drives online in the cluster", drives_up)
            m.gauge("minio_cluster_drive_offline_total", "Total drives offline in the cluster",
                    len(self.layout.endpoints) - drives_up)
            m.gauge("minio_cluster_drive_total", "Total drives in the cluster", len(self.layout.endpoints))
            m.gauge("minio_cluster_health_status", "Get current cluster health status",
                    1 if up >= n // 2 + 1 else 0)
            m.gauge("minio_cluster_write_quorum", "Maximum write quorum across all pools and sets", n // 2 + 1)
        return m.wsgi_response()

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        if self.s3 is not None and self.s3.state_file:
            try:
                self.s3.save_state()
            except Exception as exc:  # noqa: BLE001
                self.log.error("Unable to persist state: %s" % exc)


def console_app(environ, start_response):
    body = (b"<!doctype html><html><head><title>MinIO Console</title></head>"
            b"<body><div id=\"root\">MinIO Console (stand-in)</div></body></html>\n")
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body))),
                              ("Server", "MinIO Console")])
    return [body] if environ.get("REQUEST_METHOD") != "HEAD" else []


def _ssl_context(certs_dir: str) -> Optional[ssl.SSLContext]:
    crt, key = os.path.join(certs_dir, "public.crt"), os.path.join(certs_dir, "private.key")
    if not (os.path.isfile(crt) and os.path.isfile(key)):
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(crt, key)
    except (OSError, ssl.SSLError) as exc:
        raise MinioFatal("Unable to load the TLS configuration: %s" % exc) from None
    return ctx


def _display_urls(host: str, port: int, scheme: str) -> List[str]:
    if host and host not in ("0.0.0.0", "::"):
        return ["%s://%s:%d" % (scheme, host, port)]
    ips = sorted(a for a in fw.local_addresses() if ":" not in a and not a.startswith("127."))
    return ["%s://%s:%d" % (scheme, ip, port) for ip in ips] + ["%s://127.0.0.1:%d" % (scheme, port)]


def server_main(ctx: fw.CliContext) -> int:
    as_json = bool(ctx.value("json"))
    quiet = bool(ctx.value("quiet"))
    log = fw.Logger("minio", fmt="json" if as_json else "plain")

    def fatal(msg: str) -> int:
        if as_json:
            log.log("fatal", msg)
        else:
            log.error("FATAL " + msg)
        return 1

    try:
        cfg = None
        pool_args: Optional[List[List[str]]] = None
        if ctx.value("config"):
            try:
                cfg = fw.load_config(ctx.value("config"), CONFIG_SCHEMA)
            except (fw.ConfigError, OSError) as exc:
                raise MinioFatal("Unable to prepare the list of endpoints: %s" % exc) from None
            pools = cfg.get("pools") or []
            pool_args = []
            for i, pool in enumerate(pools):
                if cfg["version"] == "v1" and isinstance(pool, list):
                    pool_args.append([str(a) for a in pool])
                elif cfg["version"] == "v2" and isinstance(pool, dict):
                    unknown = set(pool) - set(V2_POOL.fields)
                    if unknown or not isinstance(pool.get("args"), list):
                        raise MinioFatal("Unable to prepare the list of endpoints: pools[%d]: expected "
                                         "{args: [...], set-drive-count: N}" % i)
                    pool_args.append([str(a) for a in pool["args"]])
                else:
                    raise MinioFatal("Unable to prepare the list of endpoints: invalid pools[%d] for version %s"
                                     % (i, cfg["version"]))
            args: List[str] = []
        else:
            env_args = os.environ.get("MINIO_ARGS") or os.environ.get("MINIO_VOLUMES") \
                or os.environ.get("MINIO_ENDPOINTS")
            args = env_args.split() if env_args else list(ctx.args)
            if not args or args[0] == "help":
                ctx.app.out.write(ctx.app.command_help(ctx.command))
                ctx.app.out.flush()
                return 1

        address = ctx.value("address")
        if cfg and cfg.get("address") and not ctx.is_set("address"):
            address = cfg["address"]
        console_address = ctx.value("console-address") or (cfg or {}).get("console-address") or ""
        certs_dir = ctx.value("certs-dir")
        if cfg and cfg.get("certs-dir") and not ctx.is_set("certs-dir"):
            certs_dir = cfg["certs-dir"]
        try:
            api_host, api_port = fw.parse_listen_address(address)
        except ValueError as exc:
            raise MinioFatal("Unable to validate passed arguments: %s" % exc) from None
        if api_host and api_host not in ("0.0.0.0", "::") and not _bindable(fw.resolve_host(api_host)):
            raise MinioFatal("Unable to validate passed arguments: host in server address should be this server")

        layout = build_layout(args, pool_args, api_host, api_port)
        if layout.distributed and api_port == 0:
            raise MinioFatal("Invalid --address=\"%s\", port '0' is not allowed in a distributed erasure coded "
                             "setup" % address)
        access_key, secret_key = root_credentials(cfg)

        formatted, errors = prepare_drives(layout)
        if errors:
            for err in errors:
                log.error("Unable to use the drive %s" % err.split(": ", 1)[0].replace("Drive ", ""), err=err)
            raise MinioFatal("Unable to initialize backend: %s" % errors[0])

        tls = _ssl_context(certs_dir) if certs_dir else None
        if tls is not None and layout.distributed and layout.scheme != "https":
            raise MinioFatal("Unable to start the server: Found TLS certificates in the certs directory but "
                             "the endpoints use http://")
        if tls is None and layout.scheme == "https":
            raise MinioFatal("Unable to start the server: HTTPS specified in endpoints, but no TLS certificate "
                             "is found on the local machine")
        scheme = "https" if tls else "http"

        browser = os.environ.get("MINIO_BROWSER", "on").lower() not in ("off", "false", "0", "no")
        if browser and console_address:
            try:
                c_host, c_port = fw.parse_listen_address(console_address)
            except ValueError as exc:
                raise MinioFatal("Unable to validate passed arguments: --console-address %s" % exc) from None
            if c_port == api_port and c_port != 0 and c_host == api_host:
                raise MinioFatal("--console-address port cannot be same as --address port")
        metrics_public = os.environ.get("MINIO_PROMETHEUS_AUTH_TYPE", "jwt").lower() == "public"
        region = site_region()

        server = MinioServer(log, layout, access_key, secret_key, region, metrics_public)
        shutdown = fw.ShutdownSignal()
        api = fw.HTTPService("api", address, server, ssl_context=tls)
        try:
            api.start()
        except OSError as exc:
            raise MinioFatal("Unable to start the server: %s" % (exc.strerror or exc)) from None
        services = [api]
        console = None
        if browser:
            caddr = console_address or ("%s:0" % (("[%s]" % api_host) if ":" in api_host else api_host))
            console = fw.HTTPService("console", caddr, console_app, ssl_context=tls)
            try:
                console.start()
            except OSError as exc:
                api.stop()
                raise MinioFatal("Unable to initialize console server: %s" % (exc.strerror or exc)) from None
            services.append(console)

        if not quiet:
            if formatted:
                n_sets = len(layout.pools[0])
                log.info("INFO: Formatting 1st pool, 1 set(s), %d drives per set." % n_sets)
            goos, goarch = fw.go_platform()
            lines = ["MinIO Object Storage Server",
                     "Copyright: 2015-%s MinIO, Inc." % release()[8:12],
                     "License: GNU AGPLv3 - https://www.gnu.org/licenses/agpl-3.0.html",
                     "Version: %s (%s %s/%s)" % (release(), goversion(), goos, goarch), ""]
            if layout.distributed:
                alive = server.peer_alive()
                up = sum(1 for v in alive.values() if v)
                lines += ["Status:         %d Online, %d Offline. " % (up, len(alive) - up), ""]
            lines.append("API: " + "  ".join(_display_urls(api_host, api.port, scheme)))
            if console is not None:
                lines.append("WebUI: " + " ".join(_display_urls(console.host, console.port, scheme)))
            lines += ["", "Docs: https://docs.min.io"]
            if console is not None and not console_address:
                lines.append("WARN: Console endpoint is listening on a dynamic port (%d), please use "
                             "--console-address \":PORT\" to choose a static port." % console.port)
            for line in lines:
                log.info(line)
        log.debug("standin", region=region, primary=layout.primary_node, local=layout.local_node,
                  mode=layout.mode())
        fw.sd_notify("READY=1")

        def on_shutdown():
            fw.sd_notify("STOPPING=1")
            server.close()
            log.info("Exiting on signal: TERMINATED")

        return fw.run_until_signal(services, on_shutdown=on_shutdown, shutdown=shutdown)
    except MinioFatal as exc:
        return fatal(str(exc))


def _bindable(addrs: set) -> set:
    ok = set()
    for a in addrs:
        fam = socket.AF_INET6 if ":" in a else socket.AF_INET
        try:
            with socket.socket(fam, socket.SOCK_STREAM) as s:
                s.bind((a, 0))
            ok.add(a)
        except OSError:
            pass
    return ok


def command_not_found(app: fw.CliApp, name: str) -> int:
    app.out.write("\u2018%s\u2019 is not a minio sub-command. See \u2018minio --help\u2019.\n" % name)
    app.out.flush()
    return 1


def make_app(name: str = "minio") -> fw.CliApp:
    server = fw.CliCommand("server", "start object storage server", server_main, flags=SERVER_FLAGS,
                           help_text=SERVER_HELP)
    return fw.CliApp(
        name, usage="High Performance Object Storage",
        description="Build high performance data infrastructure for machine learning, analytics and application "
                    "data workloads with MinIO",
        version=release(), flags=GLOBAL_FLAGS, commands=[server],
        version_printer=version_banner, command_not_found=command_not_found)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: ``argv`` includes the program name (like ``sys.argv``)."""
    argv = list(sys.argv if argv is None else argv)
    name = os.path.basename(argv[0]) if argv and argv[0] else "minio"
    if name.endswith(".py") or name in ("__main__", "-m") or name.startswith("minio."):
        name = "minio"
    try:
        return make_app(name).run(argv[1:])
    except fw.StandinExit as exc:
        return int(exc.code or 0)


if __name__ == "__main__":  # python -m o11y_standins.minio
    sys.exit(main())
