# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""S3 client shared by the o11y.stack S3 modules (boto3 only).

Works with any S3 API: MinIO, AWS S3, Ceph RGW, ... Requests use path-style
addressing and Signature Version 4, which every S3 implementation accepts.

Modules use it like this::

    from ansible_collections.o11y.stack.plugins.module_utils.s3 import (
        S3Client, S3Error, ensure_boto3, s3_argument_spec)

    module = AnsibleModule(argument_spec=dict(s3_argument_spec(), name=...))
    ensure_boto3(module)
    try:
        s3 = S3Client(module.params)
        s3.call("head_bucket", Bucket="b")
    except S3Error as err:
        module.fail_json(**err.fail_kwargs())
"""

from __future__ import annotations

import copy
import traceback
from urllib.parse import urlsplit

from ansible.module_utils.basic import missing_required_lib

BOTO3_IMPORT_ERROR = None
try:
    import boto3
    import botocore.exceptions
    from botocore.config import Config
except ImportError:
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_BOTO3 = True

S3_ARGUMENT_SPEC = {
    "endpoint_url": {"type": "str", "required": True},
    "access_key": {"type": "str", "required": True, "no_log": True},
    "secret_key": {"type": "str", "required": True, "no_log": True},
    "region": {"type": "str", "default": "us-east-1"},
    "validate_certs": {"type": "bool", "default": True},
    "ca_bundle": {"type": "path"},
    "connect_timeout": {"type": "int", "default": 10},
    "read_timeout": {"type": "int", "default": 60},
    "retries": {"type": "int", "default": 3},
}
"""Options every S3 module takes; merge into the module's argument_spec."""

# Error codes meaning "these credentials are not accepted here".
CREDENTIAL_ERROR_CODES = frozenset(
    (
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "InvalidToken",
        "ExpiredToken",
        "InvalidClientTokenId",
        "AllAccessDisabled",
        "AccountProblem",
        "403",
    )
)

# Error codes a server returns for an API it does not implement.
NOT_IMPLEMENTED_CODES = frozenset(("NotImplemented", "NotImplementedError", "501"))


def s3_argument_spec():
    """Return a fresh copy of the common S3 options (safe to modify)."""
    return copy.deepcopy(S3_ARGUMENT_SPEC)


def ensure_boto3(module):
    """Fail the module with the standard message when boto3 is missing."""
    if not HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3"), exception=BOTO3_IMPORT_ERROR)


class S3Error(Exception):
    """An S3 call failed; ``message`` says what happened and what to fix."""

    def __init__(self, message, operation=None, code=None, status=None):
        super().__init__(message)
        self.message = message
        self.operation = operation
        self.code = code
        self.status = status

    def fail_kwargs(self):
        """Keyword arguments for ``module.fail_json``."""
        result = {"msg": self.message}
        if self.operation:
            result["operation"] = self.operation
        if self.code:
            result["error_code"] = self.code
        if self.status:
            result["http_status"] = self.status
        return result


def validate_endpoint_url(endpoint_url):
    """Return an error message for an unusable endpoint_url, or None."""
    if not endpoint_url:
        return "endpoint_url must not be empty; set it to the S3 API URL, e.g. http://minio.example.com:9000"
    parts = urlsplit(endpoint_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return (
            f"endpoint_url must be an http:// or https:// URL such as http://minio.example.com:9000, got {endpoint_url!r}"
        )
    if parts.username or parts.password:
        return "endpoint_url must not contain credentials; use access_key and secret_key"
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if not port_ok:
        return f"endpoint_url has an invalid port: {endpoint_url!r}"
    return None


def operation_label(operation):
    """``head_bucket`` -> ``HeadBucket``."""
    if not operation:
        return "S3 request"
    if "_" not in operation and operation[:1].isupper():
        return operation
    return "".join(part.capitalize() for part in operation.split("_"))


def error_code(exc):
    """The S3 error code of a botocore ClientError (e.g. ``NoSuchBucket``), else None."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code is not None else None


def _http_status(exc):
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return None


def describe_error(exc, operation=None, endpoint_url=None):
    """Turn a botocore/boto3 exception into a message that says what to fix."""
    label = operation_label(operation)
    where = endpoint_url or "(unknown endpoint)"
    if not HAS_BOTO3:  # pragma: no cover - modules call ensure_boto3 first
        return f"{label} failed: {exc}"
    exc_mod = botocore.exceptions
    if isinstance(exc, exc_mod.ClientError):
        code = error_code(exc) or "Unknown"
        message = exc.response.get("Error", {}).get("Message") or _reason(exc)
        if code in CREDENTIAL_ERROR_CODES:
            return f"S3 rejected the credentials ({code}: {message}). Check access_key/secret_key and that they may perform {label} on {where}"
        if code == "AuthorizationHeaderMalformed":
            return f"{label} failed: {code}: {message}. Check region (it must match the region the S3 service is configured with)"
        if code == "RequestTimeTooSkewed":
            return f"{label} failed: {code}: {message}. Synchronise the clock of the host running the module (NTP)"
        return f"{label} failed: {code}: {message}"
    if isinstance(exc, exc_mod.SSLError):
        return (
            f"TLS error talking to S3 endpoint {where}: {exc}. Check the certificate: set ca_bundle to the CA that signed it,"
            " or validate_certs=false for a self-signed test setup, or use http:// if the service does not speak TLS"
        )
    if isinstance(exc, (exc_mod.EndpointConnectionError, exc_mod.ConnectTimeoutError, exc_mod.ProxyConnectionError)):
        return f"cannot reach S3 endpoint {where}: {exc}. Check endpoint_url and that the service is running"
    if isinstance(exc, exc_mod.ReadTimeoutError):
        return f"S3 endpoint {where} did not answer {label} in time: {exc}. Check that the service is healthy, or raise read_timeout"
    if isinstance(exc, (exc_mod.ConnectionClosedError, exc_mod.ConnectionError)):
        return f"connection to S3 endpoint {where} failed during {label}: {exc}. Check endpoint_url (http vs https, port) and that the service is running"
    if isinstance(exc, (exc_mod.NoCredentialsError, exc_mod.PartialCredentialsError)):
        return f"no S3 credentials: {exc}. Set access_key and secret_key"
    if isinstance(exc, exc_mod.ParamValidationError):
        return f"{label} failed: invalid request parameters: {exc}"
    if isinstance(exc, exc_mod.ProfileNotFound):
        return f"{label} failed: {exc}. Unset AWS_PROFILE/AWS_DEFAULT_PROFILE or create that profile"
    return f"{label} failed: {exc}"


def _reason(exc):
    status = _http_status(exc)
    reasons = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict"}
    return reasons.get(status, f"HTTP {status}" if status else "no message")


def to_s3_error(exc, operation=None, endpoint_url=None):
    """Wrap a botocore/boto3 exception into an S3Error with a helpful message."""
    return S3Error(
        describe_error(exc, operation, endpoint_url),
        operation=operation_label(operation),
        code=error_code(exc),
        status=_http_status(exc),
    )


def _client_config(params):
    retries = max(int(params.get("retries") if params.get("retries") is not None else 3), 0)
    settings = {
        "signature_version": "s3v4",
        "s3": {"addressing_style": "path"},
        "connect_timeout": params.get("connect_timeout") or 10,
        "read_timeout": params.get("read_timeout") or 60,
        "retries": {"total_max_attempts": retries + 1, "mode": "standard"},
    }
    # botocore >= 1.36 adds CRC checksums to every upload by default, which
    # several S3-compatible servers reject; only send them when required.
    try:
        return Config(request_checksum_calculation="when_required", response_checksum_validation="when_required", **settings)
    except TypeError:  # older botocore
        return Config(**settings)


def build_s3_client(params):
    """Build a boto3 S3 client from module params (see S3_ARGUMENT_SPEC).

    Path-style addressing and SigV4; TLS verification from validate_certs and
    ca_bundle. Raises S3Error for an unusable endpoint_url or configuration.
    """
    endpoint_url = params.get("endpoint_url")
    problem = validate_endpoint_url(endpoint_url)
    if problem:
        raise S3Error(problem)
    if params.get("ca_bundle") and params.get("validate_certs", True):
        verify = params["ca_bundle"]
    else:
        verify = bool(params.get("validate_certs", True))
    try:
        session = boto3.session.Session(
            aws_access_key_id=params.get("access_key"),
            aws_secret_access_key=params.get("secret_key"),
            region_name=params.get("region") or "us-east-1",
        )
        return session.client(
            "s3",
            endpoint_url=endpoint_url,
            verify=verify,
            config=_client_config(params),
        )
    except (botocore.exceptions.BotoCoreError, ValueError) as exc:
        raise S3Error(f"cannot create an S3 client for {endpoint_url}: {exc}")


class S3Client:
    """A boto3 S3 client whose calls raise S3Error with actionable messages."""

    def __init__(self, params):
        self.endpoint_url = params.get("endpoint_url")
        self.region = params.get("region") or "us-east-1"
        self.client = build_s3_client(params)

    def call(self, operation, **kwargs):
        """Call ``client.<operation>(**kwargs)``; raise S3Error on failure."""
        method = getattr(self.client, operation)
        try:
            return method(**kwargs)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise to_s3_error(exc, operation, self.endpoint_url)

    def call_or_none(self, operation, missing_codes, **kwargs):
        """Like call(), but return None when S3 answers with one of missing_codes."""
        try:
            return self.call(operation, **kwargs)
        except S3Error as err:
            if err.code in missing_codes:
                return None
            raise

    def paginate(self, operation, **kwargs):
        """Yield the pages of a paginated operation; raise S3Error on failure."""
        paginator = self.client.get_paginator(operation)
        try:
            yield from paginator.paginate(**kwargs)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise to_s3_error(exc, operation, self.endpoint_url)
