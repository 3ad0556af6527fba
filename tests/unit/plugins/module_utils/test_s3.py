# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for plugins/module_utils/s3.py: client building and error translation."""

from __future__ import annotations

import pytest
from ansible_collections.o11y.stack.plugins.module_utils import s3 as s3_utils
from ansible_collections.o11y.stack.plugins.module_utils.s3 import (
    S3Client,
    S3Error,
    build_s3_client,
    describe_error,
    ensure_boto3,
    s3_argument_spec,
    to_s3_error,
    validate_endpoint_url,
)
from botocore import exceptions as bexc

ENDPOINT = "http://minio.example.com:9000"


def client_error(code, message="", status=400, operation="GetBucketVersioning"):
    error = {"Code": code}
    if message:
        error["Message"] = message
    return bexc.ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


# ---------------------------------------------------------------------------
# argument spec
# ---------------------------------------------------------------------------


def test_argument_spec_is_a_copy_and_hides_secrets():
    spec = s3_argument_spec()
    assert spec["endpoint_url"] == {"type": "str", "required": True}
    assert spec["access_key"]["no_log"] is True and spec["access_key"]["required"] is True
    assert spec["secret_key"]["no_log"] is True and spec["secret_key"]["required"] is True
    assert spec["region"]["default"] == "us-east-1"
    assert spec["validate_certs"] == {"type": "bool", "default": True}
    spec["region"]["default"] = "changed"
    assert s3_argument_spec()["region"]["default"] == "us-east-1"


# ---------------------------------------------------------------------------
# error translation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        bexc.EndpointConnectionError(endpoint_url=ENDPOINT),
        bexc.ConnectTimeoutError(endpoint_url=ENDPOINT),
        bexc.ProxyConnectionError(proxy_url="http://proxy:3128", error="refused"),
    ],
)
def test_unreachable(exc):
    message = describe_error(exc, "head_bucket", ENDPOINT)
    assert message.startswith(f"cannot reach S3 endpoint {ENDPOINT}: ")
    assert message.endswith(". Check endpoint_url and that the service is running")


@pytest.mark.parametrize("code", ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"])
def test_credentials_rejected(code):
    message = describe_error(client_error(code, "nope", 403), "get_bucket_versioning", ENDPOINT)
    assert message.startswith(f"S3 rejected the credentials ({code}: nope). Check access_key/secret_key")
    assert "GetBucketVersioning" in message


def test_head_request_403_without_body():
    # HEAD answers carry no XML body: botocore reports the HTTP status as code.
    message = describe_error(client_error("403", status=403, operation="HeadBucket"), "head_bucket", ENDPOINT)
    assert message.startswith("S3 rejected the credentials (403: Forbidden). Check access_key/secret_key")


def test_ssl_error_mentions_certificates():
    exc = bexc.SSLError(endpoint_url="https://minio:9000", error="CERTIFICATE_VERIFY_FAILED")
    message = describe_error(exc, "list_buckets", "https://minio:9000")
    assert "TLS error talking to S3 endpoint https://minio:9000" in message
    assert "validate_certs" in message and "ca_bundle" in message


def test_other_client_error():
    message = describe_error(client_error("NoSuchBucket", "The specified bucket does not exist", 404), "get_bucket_policy")
    assert message == "GetBucketPolicy failed: NoSuchBucket: The specified bucket does not exist"


def test_region_and_clock_hints():
    assert "Check region" in describe_error(client_error("AuthorizationHeaderMalformed", "wrong region"), "list_buckets")
    assert "clock" in describe_error(client_error("RequestTimeTooSkewed", "skew", 403), "list_buckets")


def test_read_timeout_and_param_validation():
    assert "read_timeout" in describe_error(bexc.ReadTimeoutError(endpoint_url=ENDPOINT), "get_object", ENDPOINT)
    message = describe_error(bexc.ParamValidationError(report="Bucket is required"), "head_bucket")
    assert message.startswith("HeadBucket failed: invalid request parameters")


def test_to_s3_error_carries_code_and_status():
    err = to_s3_error(client_error("BucketNotEmpty", "not empty", 409), "delete_bucket", ENDPOINT)
    assert isinstance(err, S3Error)
    assert err.code == "BucketNotEmpty"
    assert err.status == 409
    assert err.operation == "DeleteBucket"
    assert err.fail_kwargs() == {
        "msg": "DeleteBucket failed: BucketNotEmpty: not empty",
        "operation": "DeleteBucket",
        "error_code": "BucketNotEmpty",
        "http_status": 409,
    }


# ---------------------------------------------------------------------------
# endpoint validation and client building
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, problem",
    [
        ("http://127.0.0.1:9000", None),
        ("https://s3.eu-west-1.amazonaws.com", None),
        ("", "must not be empty"),
        ("minio:9000", "must be an http:// or https:// URL"),
        ("ftp://minio", "must be an http:// or https:// URL"),
        ("http://user:pw@minio:9000", "must not contain credentials"),
        ("http://minio:99999", "invalid port"),
    ],
)
def test_validate_endpoint_url(url, problem):
    result = validate_endpoint_url(url)
    if problem is None:
        assert result is None
    else:
        assert problem in result


def params(**overrides):
    values = {
        "endpoint_url": ENDPOINT,
        "access_key": "access",
        "secret_key": "secret",
        "region": "us-east-1",
        "validate_certs": True,
        "ca_bundle": None,
        "connect_timeout": 3,
        "read_timeout": 7,
        "retries": 2,
    }
    values.update(overrides)
    return values


def test_client_uses_path_style_sigv4_and_options():
    client = build_s3_client(params())
    config = client.meta.config
    assert client.meta.endpoint_url == ENDPOINT
    assert config.s3["addressing_style"] == "path"
    assert config.signature_version == "s3v4"
    assert config.connect_timeout == 3
    assert config.read_timeout == 7
    assert config.retries["total_max_attempts"] == 3
    assert client.meta.region_name == "us-east-1"


def test_client_tls_verification_options(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    assert build_s3_client(params(validate_certs=False))._endpoint.http_session._verify is False
    assert build_s3_client(params(ca_bundle=str(bundle)))._endpoint.http_session._verify == str(bundle)
    assert build_s3_client(params())._endpoint.http_session._verify is True


def test_client_rejects_bad_endpoint():
    with pytest.raises(S3Error) as err:
        build_s3_client(params(endpoint_url="not a url"))
    assert "endpoint_url must be an http:// or https:// URL" in err.value.message


def test_ensure_boto3(monkeypatch):
    class FakeModule:
        def fail_json(self, **kwargs):
            raise RuntimeError(kwargs)

    ensure_boto3(FakeModule())  # boto3 is installed: nothing happens
    monkeypatch.setattr(s3_utils, "HAS_BOTO3", False)
    monkeypatch.setattr(s3_utils, "BOTO3_IMPORT_ERROR", "the traceback")
    with pytest.raises(RuntimeError) as err:
        ensure_boto3(FakeModule())
    kwargs = err.value.args[0]
    assert "Failed to import the required Python library (boto3)" in kwargs["msg"]
    assert kwargs["exception"] == "the traceback"


# ---------------------------------------------------------------------------
# S3Client against the real test server
# ---------------------------------------------------------------------------


def test_s3client_calls(s3_params):
    s3 = S3Client(dict(params(), **s3_params))
    s3.call("create_bucket", Bucket="utils-bucket")
    assert s3.call("head_bucket", Bucket="utils-bucket")["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.call_or_none("get_bucket_policy", ("NoSuchBucketPolicy",), Bucket="utils-bucket") is None
    with pytest.raises(S3Error) as err:
        s3.call("get_bucket_policy", Bucket="missing-bucket")
    assert err.value.code == "NoSuchBucket"
    assert err.value.message.startswith("GetBucketPolicy failed: NoSuchBucket: ")
    pages = list(s3.paginate("list_objects_v2", Bucket="utils-bucket"))
    assert pages and pages[0]["KeyCount"] == 0


def test_s3client_wrong_secret(s3_params):
    s3 = S3Client(dict(params(), **dict(s3_params, secret_key="wrong-secret")))
    with pytest.raises(S3Error) as err:
        s3.call("list_buckets")
    assert err.value.code == "SignatureDoesNotMatch"
    assert err.value.message.startswith("S3 rejected the credentials (SignatureDoesNotMatch: ")


def test_s3client_unreachable(closed_port_url):
    s3 = S3Client(params(endpoint_url=closed_port_url, retries=0))
    with pytest.raises(S3Error) as err:
        s3.call("list_buckets")
    assert err.value.message.startswith(f"cannot reach S3 endpoint {closed_port_url}: ")
    with pytest.raises(S3Error):
        list(s3.paginate("list_objects_v2", Bucket="x-bucket"))
