# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An S3 API stand-in that enforces one root credential pair, like MinIO.

The S3 API itself is moto's S3 backend, served in-process by a threaded
werkzeug server. In front of it sits a small WSGI layer that does what moto
does not do for arbitrary credentials:

* verifies AWS Signature Version 4 (``Authorization`` header and presigned
  query strings) against the one configured access key / secret key pair and
  answers like S3/MinIO does: unknown key -> 403 ``InvalidAccessKeyId``,
  wrong secret -> 403 ``SignatureDoesNotMatch``, unsigned -> 403
  ``AccessDenied``, body not matching ``x-amz-content-sha256`` -> 400
  ``XAmzContentSHA256Mismatch``, clock skew over 15 minutes -> 403
  ``RequestTimeTooSkewed``, a credential scope for another region -> 400
  ``AuthorizationHeaderMalformed``;
* isolates every server instance: each one gets its own moto account id, and
  moto's process-wide bucket-name registry is split per account, so two
  servers (or consecutive test servers) never see each other's buckets;
* forces path-style addressing (MinIO's default without ``MINIO_DOMAIN``);
* optionally persists buckets, their versioning, lifecycle and policy and
  the current version of small objects to a JSON state file after every
  successful mutating request, and restores them on start.

Why not moto's own IAM access control: it only recognises 20-character
``AKIA...``-style access keys and its switch (``INITIAL_NO_AUTH_ACTION_COUNT``)
is process-wide; MinIO root users have arbitrary names such as
``minioadmin``.

Limits: chunk signatures of ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD`` uploads are
not verified (the seed signature is); Signature Version 2 and anonymous
access through bucket policies are not supported; objects larger than
``S3Server.state_object_max_bytes`` and non-current object versions are not
persisted.

This is a library: import ``S3Server``; there is no command line entry point.
"""

from __future__ import annotations

import base64
import contextvars
import datetime
import hashlib
import hmac
import io
import json
import logging
import os
import secrets
import tempfile
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any, Self
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
from moto.s3.models import s3_backends
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.test import Client

__all__ = ["S3Server"]

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict, StartResponse], Iterable[bytes]]

_ALGORITHM = "AWS4-HMAC-SHA256"
_UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_MAX_SKEW = datetime.timedelta(minutes=15)
_S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_MUTATING_METHODS = frozenset({"PUT", "POST", "DELETE"})

# ---------------------------------------------------------------------------
# Per-server bucket namespace inside moto's process-wide registry
# ---------------------------------------------------------------------------

# The moto account id of the server handling the current request; None for
# any other moto user in the process (e.g. a test using moto.mock_aws).
_NAMESPACE: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "o11y_s3server_namespace", default=None
)


class _NamespacedBucketAccounts(MutableMapping):
    """Drop-in for ``s3_backends.bucket_accounts`` with one mapping per server.

    moto keeps a single bucket-name -> account registry for the whole process
    (bucket names are global on AWS). Two stand-in servers must not share it,
    so every lookup goes to the mapping of the server serving the request.
    """

    def __init__(self, shared: MutableMapping) -> None:
        self._lock = threading.Lock()
        self._spaces: dict[str | None, dict] = {None: dict(shared)}

    def _current(self) -> dict:
        with self._lock:
            return self._spaces.setdefault(_NAMESPACE.get(), {})

    def drop_namespace(self, namespace: str) -> None:
        with self._lock:
            self._spaces.pop(namespace, None)

    def __getitem__(self, key: str) -> Any:
        return self._current()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._current()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._current()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._current()))

    def __len__(self) -> int:
        return len(self._current())


_INSTALL_LOCK = threading.Lock()


def _bucket_registry() -> _NamespacedBucketAccounts:
    with _INSTALL_LOCK:
        registry = s3_backends.bucket_accounts
        if not isinstance(registry, _NamespacedBucketAccounts):
            registry = _NamespacedBucketAccounts(registry)
            s3_backends.bucket_accounts = registry  # type: ignore[assignment]
        return registry


_USED_ACCOUNTS: set[str] = {DEFAULT_ACCOUNT_ID}


def _new_account_id() -> str:
    with _INSTALL_LOCK:
        while True:
            candidate = str(10**11 + secrets.randbelow(9 * 10**11))
            if candidate not in _USED_ACCOUNTS:
                _USED_ACCOUNTS.add(candidate)
                return candidate


# ---------------------------------------------------------------------------
# S3 errors
# ---------------------------------------------------------------------------


class _S3Error(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def response(self, environ: dict, start_response: StartResponse) -> list[bytes]:
        request_id = uuid.uuid4().hex[:16].upper()
        fields = {"Code": self.code, "Message": self.message, **self.extra}
        fields["Resource"] = environ.get("PATH_INFO") or "/"
        fields["RequestId"] = request_id
        body = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in fields.items())
        payload = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{body}</Error>'.encode()
        reason = {400: "Bad Request", 403: "Forbidden"}.get(self.status, "Error")
        headers = [
            ("Content-Type", "application/xml"),
            ("x-amz-request-id", request_id),
            ("x-minio-error-code", self.code),
        ]
        if environ.get("REQUEST_METHOD") == "HEAD":
            start_response(f"{self.status} {reason}", headers + [("Content-Length", "0")])
            return []
        headers.append(("Content-Length", str(len(payload))))
        start_response(f"{self.status} {reason}", headers)
        return [payload]


def _access_denied(message: str = "Access Denied.") -> _S3Error:
    return _S3Error(403, "AccessDenied", message)


def _malformed(message: str) -> _S3Error:
    return _S3Error(400, "AuthorizationHeaderMalformed", message)


# ---------------------------------------------------------------------------
# Signature Version 4 verification
# ---------------------------------------------------------------------------


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(f"AWS4{secret}".encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def _raw_path(environ: dict) -> str:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        if "://" in raw.split("?", 1)[0]:
            raw = "/" + raw.split("://", 1)[1].split("/", 1)[-1]
        path = raw.split("?", 1)[0]
        return path or "/"
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    # WSGI decodes the path as latin-1; undo that before re-encoding.
    path = path.encode("latin-1").decode("utf-8", "replace")
    return quote(path, safe="/~") or "/"


def _canonical_query(query_string: str, drop: str | None = None) -> str:
    pairs = []
    for part in query_string.split("&"):
        if not part:
            continue
        key, _sep, value = part.partition("=")
        key, value = unquote(key), unquote(value)
        if drop is not None and key == drop:
            continue
        pairs.append((quote(key, safe="-_.~"), quote(value, safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _header_value(environ: dict, name: str) -> str:
    key = name.upper().replace("-", "_")
    if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        key = f"HTTP_{key}"
    return " ".join(str(environ.get(key, "")).split())


def _parse_amz_date(value: str) -> datetime.datetime:
    try:
        return datetime.datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.UTC
        )
    except ValueError:
        raise _S3Error(403, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header") from None


def _read_body(environ: dict) -> bytes:
    """Read the whole request body and put it back for the next layer."""
    cached = environ.get("o11y.s3server.body")
    if cached is not None:
        return cached
    stream = environ.get("wsgi.input")
    length = environ.get("CONTENT_LENGTH")
    data = b""
    if stream is not None:
        if length:
            data = stream.read(int(length))
        elif environ.get("wsgi.input_terminated"):
            data = stream.read()
    environ["wsgi.input"] = io.BytesIO(data)
    environ["CONTENT_LENGTH"] = str(len(data))
    environ["o11y.s3server.body"] = data
    return data


class _SigV4Verifier:
    """Checks a request's SigV4 signature against one credential pair."""

    def __init__(self, access_key: str, secret_key: str, region: str) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region

    def verify(self, environ: dict) -> None:
        """Return if the request is correctly signed, raise _S3Error otherwise."""
        query = environ.get("QUERY_STRING", "")
        query_params = {}
        for part in query.split("&"):
            key, _sep, value = part.partition("=")
            if key:
                query_params.setdefault(unquote(key), unquote(value))
        auth = environ.get("HTTP_AUTHORIZATION", "")
        if auth:
            self._verify_header(environ, auth)
        elif "X-Amz-Signature" in query_params or "X-Amz-Credential" in query_params:
            self._verify_presigned(environ, query_params)
        elif "Signature" in query_params and "AWSAccessKeyId" in query_params:
            raise _access_denied("Signature Version 2 is not supported by this S3 stand-in; sign requests with Signature Version 4.")
        else:
            raise _access_denied()

    # -- header-signed requests --------------------------------------------

    def _verify_header(self, environ: dict, auth: str) -> None:
        scheme, _sep, params = auth.strip().partition(" ")
        if scheme == "AWS":
            raise _access_denied("Signature Version 2 is not supported by this S3 stand-in; sign requests with Signature Version 4.")
        if scheme != _ALGORITHM:
            raise _S3Error(400, "InvalidArgument", f"Unsupported Authorization Type: {scheme!r}")
        fields = {}
        for item in params.split(","):
            key, sep, value = item.strip().partition("=")
            if sep:
                fields[key.strip()] = value.strip()
        missing = [k for k in ("Credential", "SignedHeaders", "Signature") if k not in fields]
        if missing:
            raise _malformed(f"The authorization header is malformed; missing {', '.join(missing)}.")
        access_key, date, region, service = self._parse_credential(fields["Credential"])
        amz_date = environ.get("HTTP_X_AMZ_DATE")
        if amz_date:
            timestamp = _parse_amz_date(amz_date)
        elif environ.get("HTTP_DATE"):
            timestamp = self._parse_http_date(environ["HTTP_DATE"])
        else:
            raise _access_denied("AWS authentication requires a valid Date or x-amz-date header")
        self._check_scope(date, timestamp, region)
        self._check_skew(timestamp)

        content_sha = environ.get("HTTP_X_AMZ_CONTENT_SHA256")
        if content_sha is None:
            payload_hash = hashlib.sha256(_read_body(environ)).hexdigest()
        else:
            payload_hash = content_sha
        signed_headers = fields["SignedHeaders"]
        string_to_sign = self._string_to_sign(
            environ,
            canonical_query=_canonical_query(environ.get("QUERY_STRING", "")),
            signed_headers=signed_headers,
            payload_hash=payload_hash,
            timestamp=timestamp,
            scope=f"{date}/{region}/{service}/aws4_request",
        )
        self._check_signature(string_to_sign, fields["Signature"], date, region, service, access_key)
        if content_sha is not None and len(content_sha) == 64:
            actual = hashlib.sha256(_read_body(environ)).hexdigest()
            if actual != content_sha.lower():
                raise _S3Error(
                    400,
                    "XAmzContentSHA256Mismatch",
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                    ClientComputedContentSHA256=content_sha,
                    S3ComputedContentSHA256=actual,
                )

    # -- presigned URLs -------------------------------------------------------

    def _verify_presigned(self, environ: dict, params: dict[str, str]) -> None:
        if params.get("X-Amz-Algorithm") != _ALGORITHM:
            raise _S3Error(400, "AuthorizationQueryParametersError", "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
        for name in ("X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Expires"):
            if not params.get(name):
                raise _S3Error(400, "AuthorizationQueryParametersError", f"Query-string authentication version 4 requires {name}.")
        access_key, date, region, service = self._parse_credential(params["X-Amz-Credential"])
        timestamp = _parse_amz_date(params["X-Amz-Date"])
        self._check_scope(date, timestamp, region)
        try:
            expires = int(params["X-Amz-Expires"])
        except ValueError:
            raise _S3Error(400, "AuthorizationQueryParametersError", "X-Amz-Expires should be a number") from None
        now = datetime.datetime.now(datetime.UTC)
        if timestamp - now > _MAX_SKEW:
            raise _S3Error(403, "RequestTimeTooSkewed", "The difference between the request time and the server's time is too large.")
        if now > timestamp + datetime.timedelta(seconds=expires):
            raise _access_denied("Request has expired")
        string_to_sign = self._string_to_sign(
            environ,
            canonical_query=_canonical_query(environ.get("QUERY_STRING", ""), drop="X-Amz-Signature"),
            signed_headers=params["X-Amz-SignedHeaders"],
            payload_hash=params.get("X-Amz-Content-Sha256", _UNSIGNED_PAYLOAD),
            timestamp=timestamp,
            scope=f"{date}/{region}/{service}/aws4_request",
        )
        self._check_signature(string_to_sign, params["X-Amz-Signature"], date, region, service, access_key)

    # -- shared steps ---------------------------------------------------------

    def _parse_credential(self, credential: str) -> tuple[str, str, str, str]:
        parts = credential.rsplit("/", 4)
        if len(parts) != 5 or parts[4] != "aws4_request":
            raise _malformed(
                "The authorization header is malformed; the Credential is mal-formed; "
                f"expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\": {credential!r}"
            )
        access_key, date, region, service = parts[:4]
        if access_key != self.access_key:
            raise _S3Error(
                403,
                "InvalidAccessKeyId",
                "The Access Key Id you provided does not exist in our records.",
                AWSAccessKeyId=access_key,
            )
        return access_key, date, region, service

    def _check_scope(self, date: str, timestamp: datetime.datetime, region: str) -> None:
        if self.region and region != self.region:
            raise _malformed(f"The authorization header is malformed; the region '{region}' is wrong; expecting '{self.region}'")
        if date != timestamp.strftime("%Y%m%d"):
            raise _malformed(
                f"The authorization header is malformed; Invalid credential date \"{date}\". "
                f"This date is not the same as X-Amz-Date: \"{timestamp:%Y%m%d}\"."
            )

    @staticmethod
    def _check_skew(timestamp: datetime.datetime) -> None:
        now = datetime.datetime.now(datetime.UTC)
        if abs(now - timestamp) > _MAX_SKEW:
            raise _S3Error(
                403,
                "RequestTimeTooSkewed",
                "The difference between the request time and the server's time is too large.",
                RequestTime=timestamp.strftime("%Y%m%dT%H%M%SZ"),
                ServerTime=now.strftime("%Y%m%dT%H%M%SZ"),
            )

    @staticmethod
    def _parse_http_date(value: str) -> datetime.datetime:
        from email.utils import parsedate_to_datetime

        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            raise _access_denied("AWS authentication requires a valid Date or x-amz-date header") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=datetime.UTC)
        return parsed.astimezone(datetime.UTC)

    @staticmethod
    def _canonical_uris(environ: dict) -> list[str]:
        raw = _raw_path(environ)
        # S3 signs the path exactly as the client encoded it; also accept the
        # canonical re-encoding for clients that escape more than needed.
        recoded = quote(unquote(raw), safe="/~")
        return [raw] if recoded == raw else [raw, recoded]

    def _string_to_sign(
        self,
        environ: dict,
        *,
        canonical_query: str,
        signed_headers: str,
        payload_hash: str,
        timestamp: datetime.datetime,
        scope: str,
    ) -> list[str]:
        names = [n.strip().lower() for n in signed_headers.split(";") if n.strip()]
        canonical_headers = "".join(f"{n}:{_header_value(environ, n)}\n" for n in names)
        candidates = []
        for uri in self._canonical_uris(environ):
            canonical_request = "\n".join(
                [
                    environ.get("REQUEST_METHOD", "GET").upper(),
                    uri,
                    canonical_query,
                    canonical_headers,
                    ";".join(names),
                    payload_hash,
                ]
            )
            candidates.append(
                "\n".join(
                    [
                        _ALGORITHM,
                        timestamp.strftime("%Y%m%dT%H%M%SZ"),
                        scope,
                        hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
                    ]
                )
            )
        return candidates

    def _check_signature(
        self,
        candidates: list[str],
        signature: str,
        date: str,
        region: str,
        service: str,
        access_key: str,
    ) -> None:
        key = _signing_key(self.secret_key, date, region, service)
        for string_to_sign in candidates:
            expected = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
            if hmac.compare_digest(expected, signature.strip().lower()):
                return
        raise _S3Error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
            AWSAccessKeyId=access_key,
        )


# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------


class _QuietRequestHandler(MotoRequestHandler):
    """moto's request handler without one access-log line per request."""

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        log.debug("%s %s", self.requestline, code)


class S3Server:
    """An S3 API on ``host:port`` that only accepts one SigV4 credential pair.

    ``start()`` returns once the socket listens; ``port=0`` picks a free port,
    which is then kept for later restarts of the same instance. Buckets live
    in memory (and survive ``stop()``/``start()`` of the same instance); with
    ``state_file`` they are also written to that JSON file after every
    successful PUT/POST/DELETE and read back by ``start()``.
    """

    #: Objects larger than this are not written to the state file.
    state_object_max_bytes = 4 * 1024 * 1024

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        access_key: str = "minioadmin",
        secret_key: str = "minioadmin",
        region: str = "us-east-1",
        state_file: str | None = None,
    ) -> None:
        if not access_key or not secret_key:
            raise ValueError("access_key and secret_key must not be empty")
        self.host = host
        self.port = port
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.state_file = os.fspath(state_file) if state_file else None
        self._account_id = _new_account_id()
        self._registry = _bucket_registry()
        self._moto_app: WSGIApp = create_backend_app("s3")
        self._verifier = _SigV4Verifier(access_key, secret_key, region)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._state_lock = threading.RLock()
        self._object_cache: dict[tuple[str, str], tuple[str, dict]] = {}
        if "MOTO_ACCOUNT_ID" in os.environ:
            log.warning("MOTO_ACCOUNT_ID is set: moto ignores per-server accounts, S3Server instances are not isolated")

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Load the state file (if any), bind, and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("S3Server is already running")
        if self.state_file and os.path.exists(self.state_file):
            self.load_state()
        server = make_server(
            self.host,
            self.port,
            self.wsgi_app(),
            threaded=True,
            request_handler=_QuietRequestHandler,
        )
        self.port = server.server_port
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"s3server-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket; in-memory buckets are kept."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL of the S3 API, e.g. ``http://127.0.0.1:PORT``."""
        if not self.port:
            raise RuntimeError("S3Server has no port yet; call start() first")
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def account_id(self) -> str:
        """The moto account that holds this server's buckets."""
        return self._account_id

    # -- WSGI --------------------------------------------------------------

    def wsgi_app(self) -> WSGIApp:
        """The authenticated S3 WSGI application (mountable in another server)."""
        return self._authenticated_app

    def _authenticated_app(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if method != "OPTIONS":  # CORS pre-flight requests are never signed
            try:
                self._verifier.verify(environ)
            except _S3Error as err:
                return err.response(environ, start_response)
        status_holder: list[int] = []

        def recording_start_response(status: str, headers: list, exc_info: Any = None) -> Any:
            status_holder.append(int(status.split(" ", 1)[0]))
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        body = self._isolated_app(environ, recording_start_response)
        if method in _MUTATING_METHODS and self.state_file and status_holder and status_holder[0] < 300:
            try:
                self.save_state()
            except Exception:  # pragma: no cover - never break the request for the snapshot
                log.exception("S3Server: could not write state file %s", self.state_file)
        return body

    def _isolated_app(self, environ: dict, start_response: StartResponse) -> list[bytes]:
        """Call moto with this server's account and bucket namespace."""
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = self._account_id
        # Path-style addressing only, whatever the Host header (like MinIO
        # without MINIO_DOMAIN); moto looks at Host to decide.
        host = environ.get("HTTP_HOST", "")
        port = host.rsplit(":", 1)[1] if ":" in host and not host.endswith("]") else ""
        environ["HTTP_HOST"] = f"localhost:{port}" if port else "localhost"
        token = _NAMESPACE.set(self._account_id)
        try:
            result = self._moto_app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        finally:
            _NAMESPACE.reset(token)

    # -- in-process S3 calls (no auth) ------------------------------------

    def _call(
        self,
        method: str,
        bucket: str = "",
        key: str | None = None,
        query: str = "",
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        region: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        path = "/"
        if bucket:
            path += quote(bucket, safe="")
            if key is not None:
                path += "/" + quote(key, safe="/~")
        all_headers = {
            # moto reads the bucket region from the credential scope.
            "Authorization": (
                f"{_ALGORITHM} Credential=internal/20000101/{region or self.region or 'us-east-1'}/s3/aws4_request, "
                "SignedHeaders=host, Signature=0"
            ),
            **(headers or {}),
        }
        client = Client(self._isolated_app)
        response = client.open(
            path,
            method=method,
            query_string=query,
            data=body,
            headers=all_headers,
            environ_overrides={"RAW_URI": path + (f"?{query}" if query else "")},
        )
        data = response.get_data()
        result_headers = {k.lower(): v for k, v in response.headers.items()}
        return response.status_code, result_headers, data

    def _call_ok(self, method: str, bucket: str = "", key: str | None = None, **kwargs: Any) -> tuple[dict[str, str], bytes]:
        status, headers, data = self._call(method, bucket, key, **kwargs)
        if status >= 300:
            raise RuntimeError(
                f"S3Server internal {method} {bucket}/{key or ''}?{kwargs.get('query', '')} failed: {status} {data[:500]!r}"
            )
        return headers, data

    def _body_ok(self, method: str, bucket: str = "", key: str | None = None, **kwargs: Any) -> bytes:
        return self._call_ok(method, bucket, key, **kwargs)[1]

    # -- persistence -------------------------------------------------------

    def save_state(self) -> None:
        """Write buckets, versioning, lifecycle, policy and small objects to state_file."""
        if not self.state_file:
            return
        with self._state_lock:
            state = {"version": 1, "buckets": self._snapshot()}
            directory = os.path.dirname(os.path.abspath(self.state_file))
            os.makedirs(directory, exist_ok=True)
            fd, tmp_path = tempfile.mkstemp(prefix=".s3state-", suffix=".json", dir=directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(state, handle, indent=1, sort_keys=True)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp_path, self.state_file)
            except BaseException:
                if os.path.exists(tmp_path):
                    os.unlink(tmp_path)
                raise

    def _snapshot(self) -> dict[str, Any]:
        listing = self._body_ok("GET")
        names = [el.text or "" for el in ET.fromstring(listing).iter(f"{_S3_NS}Name")]
        buckets: dict[str, Any] = {}
        seen_objects: set[tuple[str, str]] = set()
        for name in sorted(names):
            location = self._body_ok("GET", name, query="location")
            region = (ET.fromstring(location).text or "").strip() or "us-east-1"
            versioning = self._body_ok("GET", name, query="versioning")
            status_el = ET.fromstring(versioning).find(f"{_S3_NS}Status")
            entry: dict[str, Any] = {
                "region": region,
                "versioning": status_el.text if status_el is not None else None,
                "lifecycle": None,
                "policy": None,
                "objects": {},
            }
            status, _headers, lifecycle = self._call("GET", name, query="lifecycle")
            if status == 200:
                entry["lifecycle"] = lifecycle.decode("utf-8")
            status, _headers, policy = self._call("GET", name, query="policy")
            if status == 200:
                entry["policy"] = policy.decode("utf-8")
            for key, etag, size in self._list_objects(name):
                if size > self.state_object_max_bytes:
                    continue
                seen_objects.add((name, key))
                cached = self._object_cache.get((name, key))
                if cached and cached[0] == etag:
                    entry["objects"][key] = cached[1]
                    continue
                headers, data = self._call_ok("GET", name, key)
                record = {
                    "content_type": headers.get("content-type", "binary/octet-stream"),
                    "metadata": {k: v for k, v in headers.items() if k.startswith("x-amz-meta-")},
                    "data": base64.b64encode(data).decode("ascii"),
                }
                self._object_cache[(name, key)] = (etag, record)
                entry["objects"][key] = record
            buckets[name] = entry
        for stale in set(self._object_cache) - seen_objects:
            del self._object_cache[stale]
        return buckets

    def _list_objects(self, bucket: str) -> Iterator[tuple[str, str, int]]:
        token = None
        while True:
            query = "list-type=2&max-keys=1000"
            if token:
                query += "&continuation-token=" + quote(token, safe="")
            data = self._body_ok("GET", bucket, query=query)
            root = ET.fromstring(data)
            for item in root.iter(f"{_S3_NS}Contents"):
                yield (
                    item.findtext(f"{_S3_NS}Key") or "",
                    item.findtext(f"{_S3_NS}ETag") or "",
                    int(item.findtext(f"{_S3_NS}Size") or 0),
                )
            if (root.findtext(f"{_S3_NS}IsTruncated") or "false").lower() != "true":
                return
            token = root.findtext(f"{_S3_NS}NextContinuationToken")
            if not token:
                return

    def load_state(self) -> None:
        """Replace this server's buckets with the ones in state_file."""
        if not self.state_file or not os.path.exists(self.state_file):
            return
        with open(self.state_file, encoding="utf-8") as handle:
            state = json.load(handle)
        with self._state_lock:
            self._wipe()
            for name, entry in sorted(state.get("buckets", {}).items()):
                region = entry.get("region") or "us-east-1"
                body = b""
                if region != "us-east-1":
                    body = (
                        '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                        f"<LocationConstraint>{escape(region)}</LocationConstraint></CreateBucketConfiguration>"
                    ).encode()
                self._call_ok("PUT", name, body=body, region=region)
                if entry.get("versioning"):
                    self._call_ok(
                        "PUT",
                        name,
                        query="versioning",
                        region=region,
                        body=(
                            '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                            f"<Status>{escape(entry['versioning'])}</Status></VersioningConfiguration>"
                        ).encode(),
                    )
                if entry.get("lifecycle"):
                    self._call_ok("PUT", name, query="lifecycle", region=region, body=entry["lifecycle"].encode("utf-8"))
                if entry.get("policy"):
                    self._call_ok("PUT", name, query="policy", region=region, body=entry["policy"].encode("utf-8"))
                for key, record in sorted(entry.get("objects", {}).items()):
                    headers = dict(record.get("metadata") or {})
                    headers["Content-Type"] = record.get("content_type") or "binary/octet-stream"
                    self._call_ok("PUT", name, key, region=region, body=base64.b64decode(record.get("data", "")), headers=headers)

    def _wipe(self) -> None:
        """Forget every bucket of this server (not those of other servers)."""
        backend = s3_backends[self._account_id]["aws"]
        for name in list(backend.buckets):
            bucket = backend.buckets.pop(name)
            for key in list(bucket.keys.values()):
                dispose = getattr(key, "dispose", None)
                if dispose is not None:
                    dispose()
            for part in list(bucket.multiparts.values()):
                part.dispose()
        self._registry.drop_namespace(self._account_id)
        self._object_cache.clear()
