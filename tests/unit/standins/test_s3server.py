# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for the S3 stand-in (tests/standins/o11y_standins/s3server.py)."""

from __future__ import annotations

import datetime
import json
import threading
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from o11y_standins.s3server import S3Server
from werkzeug.serving import make_server

AK = "standin-access"
SK = "standin-secret-key"


def client_for(server, access_key=AK, secret_key=SK, region="us-east-1"):
    return boto3.client(
        "s3",
        endpoint_url=server.url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
    )


@pytest.fixture
def server():
    srv = S3Server(access_key=AK, secret_key=SK)
    srv.start()
    yield srv
    srv.stop()


def error_of(call, *args, **kwargs):
    with pytest.raises(ClientError) as err:
        call(*args, **kwargs)
    return err.value.response["Error"]["Code"], err.value.response["ResponseMetadata"]["HTTPStatusCode"]


def raw_request(url, method="GET", data=None, headers=None):
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def signed_request(server, method, path, body=b"", secret_key=SK, payload_hash=None, send_body=None):
    """Sign like botocore does, optionally send another body than signed."""
    request = AWSRequest(method=method, url=server.url + path, data=body)
    if payload_hash:
        request.headers["X-Amz-Content-SHA256"] = payload_hash
    S3SigV4Auth(Credentials(AK, secret_key), "s3", "us-east-1").add_auth(request)
    headers = dict(request.headers.items())
    return raw_request(server.url + path, method, send_body if send_body is not None else body, headers)


# ---------------------------------------------------------------------------
# authentication
# ---------------------------------------------------------------------------


def test_valid_credentials_work(server):
    client = client_for(server)
    client.create_bucket(Bucket="auth-ok")
    client.put_object(Bucket="auth-ok", Key="dir/a key+with=chars.txt", Body=b"hello")
    assert client.get_object(Bucket="auth-ok", Key="dir/a key+with=chars.txt")["Body"].read() == b"hello"
    assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["auth-ok"]


def test_unknown_access_key(server):
    assert error_of(client_for(server, access_key="someone-else").list_buckets) == ("InvalidAccessKeyId", 403)


def test_wrong_secret(server):
    assert error_of(client_for(server, secret_key="wrong").list_buckets) == ("SignatureDoesNotMatch", 403)


def test_wrong_secret_on_head_request(server):
    client_for(server).create_bucket(Bucket="head-bucket")
    # HEAD answers have no body; the status is what clients see.
    assert error_of(client_for(server, secret_key="wrong").head_bucket, Bucket="head-bucket") == ("403", 403)


def test_unsigned_request(server):
    client_for(server).create_bucket(Bucket="anon-bucket")
    status, body = raw_request(server.url + "/anon-bucket")
    assert status == 403
    assert b"<Code>AccessDenied</Code>" in body
    status = raw_request(server.url + "/anon-bucket", method="PUT", data=b"")[0]
    assert status == 403


def test_region_mismatch(server):
    assert error_of(client_for(server, region="eu-west-1").list_buckets) == ("AuthorizationHeaderMalformed", 400)


def test_payload_hash_is_checked(server):
    client_for(server).create_bucket(Bucket="hash-bucket")
    status = signed_request(server, "PUT", "/hash-bucket/obj", body=b"signed body")[0]
    assert status == 200
    status, body = signed_request(server, "PUT", "/hash-bucket/obj", body=b"signed body", send_body=b"other body!")
    assert status == 400
    assert b"XAmzContentSHA256Mismatch" in body


def test_tampered_request_is_rejected(server):
    client_for(server).create_bucket(Bucket="tamper-bucket")
    request = AWSRequest(method="GET", url=server.url + "/tamper-bucket")
    S3SigV4Auth(Credentials(AK, SK), "s3", "us-east-1").add_auth(request)
    headers = dict(request.headers.items())
    status, body = raw_request(server.url + "/tamper-bucket?versioning", "GET", None, headers)
    assert status == 403
    assert b"SignatureDoesNotMatch" in body


def test_clock_skew(server):
    old = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)).strftime("%Y%m%dT%H%M%SZ")
    request = AWSRequest(method="GET", url=server.url + "/")
    auth = S3SigV4Auth(Credentials(AK, SK), "s3", "us-east-1")
    request.context["timestamp"] = old
    request.headers["X-Amz-Date"] = old
    request.headers["X-Amz-Content-SHA256"] = auth.payload(request)
    signature = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    auth._inject_signature_to_request(request, signature)  # pylint: disable=protected-access
    status, body = raw_request(server.url + "/", "GET", None, dict(request.headers.items()))
    assert status == 403
    assert b"RequestTimeTooSkewed" in body


def test_presigned_urls(server):
    client = client_for(server)
    client.create_bucket(Bucket="presign-bucket")
    client.put_object(Bucket="presign-bucket", Key="file.txt", Body=b"presigned")
    url = client.generate_presigned_url("get_object", Params={"Bucket": "presign-bucket", "Key": "file.txt"})
    assert raw_request(url) == (200, b"presigned")
    bad = client_for(server, secret_key="wrong").generate_presigned_url(
        "get_object", Params={"Bucket": "presign-bucket", "Key": "file.txt"}
    )
    status, body = raw_request(bad)
    assert status == 403 and b"SignatureDoesNotMatch" in body


# ---------------------------------------------------------------------------
# isolation
# ---------------------------------------------------------------------------


def test_two_servers_do_not_share_buckets():
    first, second = S3Server(access_key=AK, secret_key=SK), S3Server(access_key=AK, secret_key=SK)
    first.start()
    second.start()
    try:
        assert first.url != second.url
        one, two = client_for(first), client_for(second)
        one.create_bucket(Bucket="same-name")
        assert two.list_buckets()["Buckets"] == []
        two.create_bucket(Bucket="same-name")  # no BucketAlreadyExists across servers
        one.put_object(Bucket="same-name", Key="k", Body=b"first")
        two.put_object(Bucket="same-name", Key="k", Body=b"second")
        assert one.get_object(Bucket="same-name", Key="k")["Body"].read() == b"first"
        assert two.get_object(Bucket="same-name", Key="k")["Body"].read() == b"second"
        one.delete_object(Bucket="same-name", Key="k")
        one.delete_bucket(Bucket="same-name")
        assert [b["Name"] for b in two.list_buckets()["Buckets"]] == ["same-name"]
    finally:
        first.stop()
        second.stop()


def test_consecutive_servers_start_empty():
    for dummy in range(2):
        srv = S3Server(access_key=AK, secret_key=SK)
        srv.start()
        try:
            client = client_for(srv)
            assert client.list_buckets()["Buckets"] == []
            client.create_bucket(Bucket="every-time")
        finally:
            srv.stop()


def test_concurrent_requests(server):
    client = client_for(server)
    client.create_bucket(Bucket="busy-bucket")
    errors = []

    def worker(n):
        try:
            own = client_for(server)
            for i in range(10):
                own.put_object(Bucket="busy-bucket", Key=f"{n}/{i}", Body=b"x")
        except (ClientError, OSError) as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert client.list_objects_v2(Bucket="busy-bucket")["KeyCount"] == 40


# ---------------------------------------------------------------------------
# persistence
# ---------------------------------------------------------------------------

POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::kept/*"}],
}


def populate(client):
    client.create_bucket(Bucket="kept")
    client.put_bucket_versioning(Bucket="kept", VersioningConfiguration={"Status": "Enabled"})
    client.put_bucket_lifecycle_configuration(
        Bucket="kept",
        LifecycleConfiguration={
            "Rules": [{"ID": "r1", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 3}}]
        },
    )
    client.put_bucket_policy(Bucket="kept", Policy=json.dumps(POLICY))
    client.put_object(Bucket="kept", Key="dir/obj.json", Body=b'{"a": 1}', ContentType="application/json", Metadata={"owner": "me"})
    client.create_bucket(Bucket="plain")


def assert_populated(client):
    assert sorted(b["Name"] for b in client.list_buckets()["Buckets"]) == ["kept", "plain"]
    assert client.get_bucket_versioning(Bucket="kept")["Status"] == "Enabled"
    assert "Status" not in client.get_bucket_versioning(Bucket="plain")
    rules = client.get_bucket_lifecycle_configuration(Bucket="kept")["Rules"]
    assert [(r["ID"], r["Filter"]["Prefix"], r["Expiration"]["Days"]) for r in rules] == [("r1", "tmp/", 3)]
    assert json.loads(client.get_bucket_policy(Bucket="kept")["Policy"]) == POLICY
    obj = client.get_object(Bucket="kept", Key="dir/obj.json")
    assert obj["Body"].read() == b'{"a": 1}'
    assert obj["ContentType"] == "application/json"
    assert obj["Metadata"] == {"owner": "me"}


def test_state_survives_restart(tmp_path):
    state_file = tmp_path / "state" / "s3.json"
    srv = S3Server(access_key=AK, secret_key=SK, state_file=str(state_file))
    srv.start()
    try:
        populate(client_for(srv))
        port = srv.port
    finally:
        srv.stop()
    assert state_file.exists()

    # The same instance restarts on the same port with the same content.
    srv.start()
    try:
        assert srv.port == port
        assert_populated(client_for(srv))
    finally:
        srv.stop()

    # A new instance (a new process in real life) restores it from the file.
    fresh = S3Server(access_key=AK, secret_key=SK, state_file=str(state_file))
    fresh.start()
    try:
        client = client_for(fresh)
        assert_populated(client)
        client.delete_bucket(Bucket="plain")
    finally:
        fresh.stop()
    assert sorted(json.loads(state_file.read_text())["buckets"]) == ["kept"]


def test_state_is_written_after_each_mutation(tmp_path):
    state_file = tmp_path / "s3.json"
    srv = S3Server(access_key=AK, secret_key=SK, state_file=str(state_file))
    srv.start()
    try:
        client = client_for(srv)
        client.create_bucket(Bucket="live")
        assert list(json.loads(state_file.read_text())["buckets"]) == ["live"]
        client.put_object(Bucket="live", Key="a", Body=b"1")
        assert "a" in json.loads(state_file.read_text())["buckets"]["live"]["objects"]
        client.delete_object(Bucket="live", Key="a")
        assert json.loads(state_file.read_text())["buckets"]["live"]["objects"] == {}
        # A failed mutation (wrong secret) changes nothing.
        before = state_file.read_text()
        with pytest.raises(ClientError):
            client_for(srv, secret_key="wrong").create_bucket(Bucket="denied")
        assert state_file.read_text() == before
    finally:
        srv.stop()


def test_large_objects_are_not_persisted(tmp_path):
    state_file = tmp_path / "s3.json"
    srv = S3Server(access_key=AK, secret_key=SK, state_file=str(state_file))
    srv.state_object_max_bytes = 10
    srv.start()
    try:
        client = client_for(srv)
        client.create_bucket(Bucket="sizes")
        client.put_object(Bucket="sizes", Key="small", Body=b"12345")
        client.put_object(Bucket="sizes", Key="large", Body=b"x" * 100)
        assert list(json.loads(state_file.read_text())["buckets"]["sizes"]["objects"]) == ["small"]
    finally:
        srv.stop()


def test_without_state_file_restart_keeps_memory():
    srv = S3Server(access_key=AK, secret_key=SK)
    srv.start()
    try:
        client_for(srv).create_bucket(Bucket="in-memory")
    finally:
        srv.stop()
    srv.start()
    try:
        assert [b["Name"] for b in client_for(srv).list_buckets()["Buckets"]] == ["in-memory"]
    finally:
        srv.stop()


# ---------------------------------------------------------------------------
# mounting the WSGI app behind other routes
# ---------------------------------------------------------------------------


def test_wsgi_app_can_be_mounted():
    srv = S3Server(access_key=AK, secret_key=SK)
    s3_app = srv.wsgi_app()

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/minio/health/live":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        return s3_app(environ, start_response)

    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        srv.port = httpd.server_port  # only used for srv.url below
        assert raw_request(f"{srv.url}/minio/health/live") == (200, b"ok")
        client = client_for(srv)
        client.create_bucket(Bucket="mounted")
        assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["mounted"]
        assert error_of(client_for(srv, secret_key="wrong").list_buckets) == ("SignatureDoesNotMatch", 403)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_url_and_errors():
    srv = S3Server(host="0.0.0.0", port=0)
    with pytest.raises(RuntimeError):
        print(srv.url)
    with pytest.raises(ValueError):
        S3Server(access_key="", secret_key="x")
    srv.start()
    try:
        assert srv.url.startswith("http://127.0.0.1:")
        with pytest.raises(RuntimeError):
            srv.start()
    finally:
        srv.stop()
    srv.stop()  # stopping twice is harmless
