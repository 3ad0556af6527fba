# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The MinIO stand-in run as a subprocess on 127.0.0.0/8."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

STANDINS = Path(__file__).resolve().parents[2] / "standins"
if str(STANDINS) not in sys.path:
    sys.path.insert(0, str(STANDINS))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

from o11y_standins import framework as fw  # noqa: E402
from o11y_standins import minio  # noqa: E402
from o11y_standins.testing import StandinProcess, free_port, http_get, wait_until  # noqa: E402

USER = "o11yadmin"
PASSWORD = "o11y-secret-pass"
CREDS = {"MINIO_ROOT_USER": USER, "MINIO_ROOT_PASSWORD": PASSWORD}


def s3(url, region="us-east-1", secret=PASSWORD):
    return boto3.client("s3", endpoint_url=url, region_name=region, aws_access_key_id=USER,
                        aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=20))


@pytest.fixture
def procs():
    started = []

    def start(args, env=None, wait_url=None):
        p = StandinProcess(["minio"] + list(args), env=env).start()
        started.append(p)
        if wait_url:
            p.wait_http(wait_url)
        return p

    yield start
    for p in started:
        p.terminate(timeout=10)
        p.close()


def single(procs, tmp_path, env=None, extra=(), host="127.0.0.1"):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    port = free_port(host)
    url = "http://%s:%d" % (host, port)
    e = dict(CREDS)
    e.update(env or {})
    p = procs(["server", "--address", "%s:%d" % (host, port), "--console-address", "%s:0" % host,
               str(data)] + list(extra), env=e, wait_url=url + "/minio/health/live")
    return p, url, data


# ---------------------------------------------------------------------------
# CLI surface
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["--version", "-v"])
def test_version(flag):
    p = StandinProcess(["minio", flag])
    try:
        assert p.run() == 0
        lines = p.stdout.splitlines()
        assert lines[0].startswith("minio version RELEASE.2025-09-07T16-13-09Z (commit-id=")
        assert lines[1].startswith("Runtime: go")
        assert lines[2] == "License: GNU AGPLv3 - https://www.gnu.org/licenses/agpl-3.0.html"
        assert lines[3] == "Copyright: 2015-2025 MinIO, Inc."
    finally:
        p.close()


def test_unknown_flag_is_an_error(tmp_path):
    p = StandinProcess(["minio", "server", "--adress", ":9000", str(tmp_path)], env=CREDS)
    try:
        assert p.run() == 1
        assert "Incorrect Usage: flag provided but not defined: -adress" in p.output
    finally:
        p.close()
    p = StandinProcess(["minio", "--no-such-global", "server", str(tmp_path)], env=CREDS)
    try:
        assert p.run() != 0
        assert "flag provided but not defined: -no-such-global" in p.output
    finally:
        p.close()


def test_unknown_subcommand_and_missing_volumes():
    p = StandinProcess(["minio", "serve"])
    try:
        assert p.run() == 1 and "is not a minio sub-command" in p.output
    finally:
        p.close()
    p = StandinProcess(["minio", "server"], env=CREDS)
    try:
        assert p.run() == 1 and "USAGE:" in p.output
    finally:
        p.close()


@pytest.mark.parametrize("env, needle", [
    ({}, "MINIO_ROOT_USER"),
    ({"MINIO_ROOT_USER": USER}, "MINIO_ROOT_PASSWORD"),
    ({"MINIO_ROOT_USER": "ab", "MINIO_ROOT_PASSWORD": PASSWORD}, "MINIO_ROOT_USER"),
    ({"MINIO_ROOT_USER": USER, "MINIO_ROOT_PASSWORD": "short"}, "MINIO_ROOT_PASSWORD"),
])
def test_missing_or_bad_credentials_exit_1(tmp_path, env, needle):
    p = StandinProcess(["minio", "server", "--address", "127.0.0.1:%d" % free_port(), str(tmp_path)], env=env)
    try:
        assert p.run() == 1
        assert "FATAL Unable to validate credentials" in p.stderr and needle in p.stderr
    finally:
        p.close()


def test_missing_drive_is_fatal(tmp_path):
    p = StandinProcess(["minio", "server", "--address", "127.0.0.1:%d" % free_port(), str(tmp_path / "nope")],
                       env=CREDS)
    try:
        assert p.run() == 1
        assert "drive not found" in p.stderr and str(tmp_path / "nope") in p.stderr
    finally:
        p.close()


def test_unwritable_drive_is_fatal(tmp_path):
    d = tmp_path / "ro"
    d.mkdir(mode=0o500)
    # Permission bits do not stop root; an immutable directory stops everyone.
    immutable = os.geteuid() == 0
    if immutable:
        subprocess.run(["chattr", "+i", str(d)], check=True)
    p = StandinProcess(["minio", "server", "--address", "127.0.0.1:%d" % free_port(), str(d)], env=CREDS)
    try:
        assert p.run() == 1 and "access denied" in p.stderr
    finally:
        p.close()
        if immutable:
            subprocess.run(["chattr", "-i", str(d)], check=True)


def test_port_in_use_is_fatal(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        p = StandinProcess(["minio", "server", "--address", "127.0.0.1:%d" % port, str(tmp_path)], env=CREDS)
        try:
            assert p.run() == 1 and "address already in use" in p.stderr
        finally:
            p.close()


# ---------------------------------------------------------------------------
# single node
# ---------------------------------------------------------------------------

def test_single_node_health_s3_console_and_sigterm(procs, tmp_path):
    p, url, data = single(procs, tmp_path)
    for path in ("/minio/health/live", "/minio/health/ready", "/minio/health/cluster", "/minio/health/cluster/read"):
        status, headers = http_get(url + path)[:2]
        assert status == 200, path
        assert headers.get("server") == "MinIO"
    assert http_get(url + "/minio/health/live", method="HEAD")[0] == 200
    fmt = json.loads((data / ".minio.sys" / "format.json").read_text())
    assert fmt["format"] == "xl-single" and fmt["xl"]["this"] in fmt["xl"]["sets"][0]

    client = s3(url)
    client.create_bucket(Bucket="mimir-blocks")
    client.put_object(Bucket="mimir-blocks", Key="tenant/a b.json", Body=b"{}")
    assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["mimir-blocks"]
    assert client.get_object(Bucket="mimir-blocks", Key="tenant/a b.json")["Body"].read() == b"{}"
    with pytest.raises(ClientError) as exc:
        s3(url, secret="wrong-password").list_buckets()
    assert exc.value.response["Error"]["Code"] == "SignatureDoesNotMatch"

    assert "API: http://127.0.0.1:" in p.stderr and "RELEASE.2025-09-07T16-13-09Z" in p.stderr
    webui = [line for line in p.stderr.splitlines() if line.startswith("WebUI: ")][0]
    console_url = webui.split()[1]
    status, body = http_get(console_url + "/")[::2]
    assert status == 200 and b"MinIO Console" in body

    assert p.terminate() == 0
    assert "Exiting on signal" in p.stderr


def test_flags_after_volumes_and_minio_volumes_env(procs, tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    # systemd: ExecStart=minio server $MINIO_OPTS $MINIO_VOLUMES, words split
    opts = "--address 127.0.0.1:%d --console-address 127.0.0.1:%d" % (port, free_port())
    env = dict(CREDS, MINIO_VOLUMES=str(data))
    p = procs(["server"] + opts.split(), env=env, wait_url=url + "/minio/health/ready")
    assert (data / ".minio.sys" / "format.json").is_file()
    assert p.terminate() == 0
    port = free_port()
    p = procs(["server", str(data), "--address=127.0.0.1:%d" % port, "--quiet", "--anonymous"], env=CREDS,
              wait_url="http://127.0.0.1:%d/minio/health/live" % port)
    assert "API:" not in p.stderr  # --quiet


def test_env_address(procs, tmp_path):
    port = free_port()
    procs(["server", str(tmp_path)], env=dict(CREDS, MINIO_ADDRESS="127.0.0.1:%d" % port, MINIO_BROWSER="off"),
          wait_url="http://127.0.0.1:%d/minio/health/live" % port)


def test_bucket_persistence_across_restart(procs, tmp_path):
    p, url, data = single(procs, tmp_path)
    client = s3(url)
    client.create_bucket(Bucket="loki-chunks")
    client.create_bucket(Bucket="tempo-traces")
    client.put_object(Bucket="loki-chunks", Key="index/x", Body=b"payload")
    assert p.terminate() == 0
    assert (data / ".minio.sys" / minio.STATE_FILE).is_file()
    port = int(url.rsplit(":", 1)[1])
    procs(["server", "--address", "127.0.0.1:%d" % port, str(data)], env=CREDS,
          wait_url=url + "/minio/health/ready")
    client = s3(url)
    assert sorted(b["Name"] for b in client.list_buckets()["Buckets"]) == ["loki-chunks", "tempo-traces"]
    assert client.get_object(Bucket="loki-chunks", Key="index/x")["Body"].read() == b"payload"
    assert fw.check_bucket(url, "tempo-traces", USER, PASSWORD)[0]


def test_site_region(procs, tmp_path):
    url = single(procs, tmp_path, env={"MINIO_SITE_REGION": "eu-central-1"})[1]
    s3(url, region="eu-central-1").create_bucket(
        Bucket="regional", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    assert s3(url, region="eu-central-1").get_bucket_location(Bucket="regional")["LocationConstraint"] == "eu-central-1"


def test_metrics_need_a_prometheus_token(procs, tmp_path):
    url = single(procs, tmp_path)[1]
    for kind in ("cluster", "node"):
        status, headers, body = http_get(url + "/minio/v2/metrics/" + kind)
        assert status == 403 and json.loads(body)["Code"] == "AccessDenied"
    bad = fw.jwt_sign_hs512({"sub": USER, "iss": "prometheus", "exp": time.time() + 60}, "not-the-secret")
    assert http_get(url + "/minio/v2/metrics/cluster", {"Authorization": "Bearer " + bad})[0] == 403
    token = fw.jwt_sign_hs512({"sub": USER, "iss": "prometheus", "exp": time.time() + 60}, PASSWORD)
    status, headers, body = http_get(url + "/minio/v2/metrics/cluster", {"Authorization": "Bearer " + token})
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    assert 'minio_build_info{' in text and 'version="RELEASE.2025-09-07T16-13-09Z"' in text
    assert 'minio_software_version_info{server=' in text
    assert "minio_cluster_nodes_online_total 1" in text
    assert "minio_cluster_nodes_offline_total 0" in text


def test_metrics_public(procs, tmp_path):
    url = single(procs, tmp_path, env={"MINIO_PROMETHEUS_AUTH_TYPE": "public"})[1]
    status, body = http_get(url + "/minio/v2/metrics/node")[::2]
    assert status == 200 and b"minio_node_process_uptime_seconds" in body


def test_sd_notify_ready(procs, tmp_path):
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(30)
    try:
        single(procs, tmp_path, env={"NOTIFY_SOCKET": sock_path})
        assert sock.recv(100) == b"READY=1"
    finally:
        sock.close()


def test_multi_drive_ellipses_single_node(procs, tmp_path):
    for i in range(1, 5):
        (tmp_path / ("disk%d" % i)).mkdir()
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    procs(["server", "--address", "127.0.0.1:%d" % port, str(tmp_path / "disk{1...4}")], env=CREDS,
          wait_url=url + "/minio/health/ready")
    for i in range(1, 5):
        fmt = json.loads((tmp_path / ("disk%d" % i) / ".minio.sys" / "format.json").read_text())
        assert fmt["format"] == "xl" and len(fmt["xl"]["sets"][0]) == 4
    s3(url).create_bucket(Bucket="pyroscope")
    assert (tmp_path / "disk1" / ".minio.sys" / minio.STATE_FILE).exists()


# ---------------------------------------------------------------------------
# ellipses and layout (in-process)
# ---------------------------------------------------------------------------

def test_expand_ellipses_like_minio():
    assert minio.expand_ellipses("/mnt/disk{1...4}") == ["/mnt/disk1", "/mnt/disk2", "/mnt/disk3", "/mnt/disk4"]
    assert minio.expand_ellipses("/d{01...03}") == ["/d01", "/d02", "/d03"]
    assert minio.expand_ellipses("/d{a...c}") == ["/da", "/db", "/dc"]
    got = minio.expand_ellipses("http://node{1...2}:9000/data{1...2}")
    assert got == ["http://node1:9000/data1", "http://node2:9000/data1",
                   "http://node1:9000/data2", "http://node2:9000/data2"]
    with pytest.raises(minio.MinioFatal):
        minio.expand_ellipses("/d{4...1}")
    with pytest.raises(minio.MinioFatal):
        minio.expand_ellipses("/d{1..4}")


def test_layout_distributed_locality_and_primary():
    lay = minio.build_layout(["http://127.0.0.{2...5}:9000/data{1...2}"], None, "127.0.0.3", 9000)
    assert lay.nodes == ["127.0.0.2:9000", "127.0.0.3:9000", "127.0.0.4:9000", "127.0.0.5:9000"]
    assert lay.distributed and lay.local_node == "127.0.0.3:9000"
    assert lay.primary_node == "127.0.0.2:9000" and not lay.is_primary
    assert lay.local_drives == ["/data1", "/data2"]
    # same host, different ports: the port decides
    lay = minio.build_layout(["http://127.0.0.1:9001/a", "http://127.0.0.1:9002/b"], None, "", 9001)
    assert lay.local_node == "127.0.0.1:9001" and lay.is_primary
    # URL without port gets the --address port
    lay = minio.build_layout(["http://%s/data{1...4}" % socket.gethostname()], None, "", 9000)
    assert lay.nodes == ["%s:9000" % socket.gethostname()] and not lay.distributed and lay.is_primary


@pytest.mark.parametrize("args, needle", [
    (["/a", "http://127.0.0.1:9000/b"], "mixed style"),
    (["/a{1...4}", "/b"], "all args must have ellipses"),
    (["http://192.0.2.10:9000/a", "http://192.0.2.11:9000/a"], "no endpoint pointing to the local machine"),
    (["/a", "/a"], "duplicate endpoints"),
    (["/d{1...17}"], "Incorrect number of endpoints"),
    (["http://127.0.0.1:9000/"], "root path"),
])
def test_layout_errors(args, needle):
    with pytest.raises(minio.MinioFatal) as exc:
        minio.build_layout(args, None, "", 9000)
    assert needle in str(exc.value)


# ---------------------------------------------------------------------------
# distributed mode on 127.0.0.x
# ---------------------------------------------------------------------------

def start_cluster(procs, tmp_path, n):
    hosts = ["127.0.0.%d" % (i + 2) for i in range(n)]
    port = free_port(hosts[0], also=hosts[1:])
    volumes = ["http://%s:%d%s" % (h, port, tmp_path / ("node%d" % i)) for i, h in enumerate(hosts)]
    for i in range(n):
        (tmp_path / ("node%d" % i)).mkdir()

    def start(i):
        return procs(["server", "--address", "%s:%d" % (hosts[i], port), "--console-address", "%s:0" % hosts[i]],
                     env=dict(CREDS, MINIO_VOLUMES=" ".join(volumes)),
                     wait_url="http://%s:%d/minio/health/live" % (hosts[i], port))

    nodes = [start(i) for i in range(n)]
    urls = ["http://%s:%d" % (h, port) for h in hosts]
    return nodes, urls, start


def cluster_status(url):
    return http_get(url + "/minio/health/cluster", timeout=10)[0]


def test_distributed_four_nodes_share_namespace_and_quorum(procs, tmp_path):
    nodes, urls, start = start_cluster(procs, tmp_path, 4)
    for u in urls:
        wait_until(lambda: http_get(u + "/minio/health/ready")[0] == 200, message=u + " ready")
        assert cluster_status(u) == 200
    # a bucket made through a non-primary node is visible through all
    s3(urls[2]).create_bucket(Bucket="mimir-ruler")
    s3(urls[3]).put_object(Bucket="mimir-ruler", Key="rules.yaml", Body=b"groups: []\n")
    odd_key = "tenant 1/r\u00e9gles+x=y.yaml"
    s3(urls[1]).put_object(Bucket="mimir-ruler", Key=odd_key, Body=b"odd")
    assert s3(urls[2]).get_object(Bucket="mimir-ruler", Key=odd_key)["Body"].read() == b"odd"
    s3(urls[3]).delete_object(Bucket="mimir-ruler", Key=odd_key)
    for u in urls:
        assert [b["Name"] for b in s3(u).list_buckets()["Buckets"]] == ["mimir-ruler"]
        assert s3(u).get_object(Bucket="mimir-ruler", Key="rules.yaml")["Body"].read() == b"groups: []\n"
        assert fw.check_bucket(u, "mimir-ruler", USER, PASSWORD) == (True, None)
    # every node formatted its drive; only the primary holds the namespace state
    for i in range(4):
        assert (tmp_path / ("node%d" % i) / ".minio.sys" / "format.json").is_file()
    assert (tmp_path / "node0" / ".minio.sys" / minio.STATE_FILE).is_file()
    assert not (tmp_path / "node1" / ".minio.sys" / minio.STATE_FILE).exists()
    token = fw.jwt_sign_hs512({"sub": USER, "iss": "prometheus", "exp": time.time() + 60}, PASSWORD)
    body = http_get(urls[1] + "/minio/v2/metrics/cluster", {"Authorization": "Bearer " + token})[2].decode()
    assert "minio_cluster_nodes_online_total 4" in body

    # one node down: 3 of 4 still a write quorum
    assert nodes[3].terminate() == 0
    assert cluster_status(urls[0]) == 200
    # two down: 2 of 4 is not more than half
    assert nodes[2].terminate() == 0
    assert cluster_status(urls[0]) == 503
    assert cluster_status(urls[1]) == 503
    assert http_get(urls[0] + "/minio/health/live")[0] == 200
    body = http_get(urls[0] + "/minio/v2/metrics/cluster", {"Authorization": "Bearer " + token})[2].decode()
    assert "minio_cluster_nodes_offline_total 2" in body
    # back up: quorum again, namespace intact
    start(2)
    wait_until(lambda: cluster_status(urls[0]) == 200, message="quorum back")
    assert [b["Name"] for b in s3(urls[2]).list_buckets()["Buckets"]] == ["mimir-ruler"]


def test_distributed_primary_down_and_two_node_quorum(procs, tmp_path):
    nodes, urls, start = start_cluster(procs, tmp_path, 2)
    for u in urls:
        wait_until(lambda: cluster_status(u) == 200, message=u + " cluster")
    s3(urls[1]).create_bucket(Bucket="tempo")
    assert nodes[0].terminate() == 0  # the primary
    assert http_get(urls[1] + "/minio/health/live")[0] == 200
    assert http_get(urls[1] + "/minio/health/ready")[0] == 503
    assert cluster_status(urls[1]) == 503
    with pytest.raises(ClientError) as exc:
        s3(urls[1]).list_buckets()
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    start(0)
    wait_until(lambda: http_get(urls[1] + "/minio/health/ready")[0] == 200, message="node1 ready again")
    assert [b["Name"] for b in s3(urls[1]).list_buckets()["Buckets"]] == ["tempo"]


def test_distributed_mismatched_volumes_never_ready(procs, tmp_path):
    hosts = ["127.0.0.2", "127.0.0.3"]
    port = free_port(hosts[0], also=hosts[1:])
    vols = ["http://%s:%d%s" % (h, port, tmp_path / ("n%d" % i)) for i, h in enumerate(hosts)]
    for i in range(2):
        (tmp_path / ("n%d" % i)).mkdir()
    (tmp_path / "extra").mkdir()
    procs(["server", "--address", "%s:%d" % (hosts[0], port)] + vols, env=dict(CREDS, MINIO_BROWSER="off"),
          wait_url="http://%s:%d/minio/health/ready" % (hosts[0], port))
    # node 2 was given another drive path for node 1: same primary, different layout
    other_vols = ["http://%s:%d%s" % (hosts[0], port, tmp_path / "extra"), vols[1]]
    other = procs(["server", "--address", "%s:%d" % (hosts[1], port)] + other_vols,
                  env=dict(CREDS, MINIO_BROWSER="off"), wait_url="http://%s:%d/minio/health/live" % (hosts[1], port))
    time.sleep(1.0)
    assert http_get("http://%s:%d/minio/health/ready" % (hosts[1], port))[0] == 503
    wait_until(lambda: "differs" in other.stderr, message="mismatch logged")
