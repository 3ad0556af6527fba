# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Pyroscope stand-in run as a subprocess on 127.0.0.1 against an S3Server."""

from __future__ import annotations

import functools
import socket
import sys
from pathlib import Path

import pytest
import yaml

STANDINS = Path(__file__).resolve().parents[2] / "standins"
if str(STANDINS) not in sys.path:
    sys.path.insert(0, str(STANDINS))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from o11y_standins.testing import StandinProcess, free_port, http_get, wait_until  # noqa: E402

TEST_ACCESS_KEY = "o11y-test-access-key"  # the s3_server fixture's credentials (tests/unit/conftest.py)
TEST_SECRET_KEY = "o11y-test-secret-key-0123456789"

BUCKET = "pyroscope-profiles"


def make_bucket(server, name=BUCKET):
    boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=TEST_ACCESS_KEY,
                 aws_secret_access_key=TEST_SECRET_KEY,
                 config=Config(s3={"addressing_style": "path"})).create_bucket(Bucket=name)


def config(server, **over):
    endpoint = server.url.split("://", 1)[1]
    cfg = {
        "target": "all",
        "architecture_storage": "v2",
        "multitenancy_enabled": False,
        "server": {"http_listen_address": "127.0.0.1", "http_listen_port": free_port(),
                   "grpc_listen_address": "127.0.0.1", "grpc_listen_port": free_port()},
        "memberlist": {"bind_addr": ["127.0.0.1"], "bind_port": free_port(), "advertise_port": 7949},
        "metastore": {"address": "127.0.0.1:9098/127.0.0.1:9099",
                      "raft": {"bind_address": "127.0.0.1:%d" % free_port(), "bootstrap_expect_peers": 1}},
        "segment_writer": {"lifecycler": {"ring": {"replication_factor": 1}}},
        "storage": {"backend": "s3", "s3": {"endpoint": endpoint, "bucket_name": BUCKET, "region": "us-east-1",
                                            "access_key_id": TEST_ACCESS_KEY,
                                            "secret_access_key": "${S3_SECRET_KEY}", "insecure": True}},
        "limits": {"retention_period": "31d"},
    }
    for key, value in over.items():
        cfg[key] = value
    return cfg


def write(tmp_path, cfg, name="config.yml"):
    path = tmp_path / name
    path.write_text(cfg if isinstance(cfg, str) else yaml.safe_dump(cfg))
    return str(path)


def listening(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def procs(start_standin):
    return functools.partial(start_standin, "pyroscope")


def run(args, env=None, timeout=30):
    p = StandinProcess(["pyroscope"] + list(args), env=env)
    try:
        rc = p.run(timeout=timeout)
        return rc, p.stdout, p.stderr
    finally:
        p.close()


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["-version", "--version"])
def test_version(flag):
    rc, out, _ = run([flag])
    assert rc == 0
    assert out.startswith("pyroscope, version 2.2.1 (branch: HEAD, revision: ")
    assert "  go version:       go1.25.12" in out


@pytest.mark.parametrize("flag", ["-config.verify", "--no-such-flag", "-target-all"])
def test_unknown_flag_exits_2(flag):
    rc, _, err = run([flag])
    assert rc == 2
    assert "flag provided but not defined: -%s" % flag.lstrip("-") in err


def test_help_and_bad_values():
    rc, out, _ = run(["-help"])
    assert rc == 0 and "-config.expand-env" in out and "-target" in out
    rc, _, err = run(["-server.http-listen-port", "http"])
    assert rc == 2 and 'invalid value "http" for flag -server.http-listen-port' in err
    rc, _, err = run(["-config.file"])
    assert rc == 2 and "flag needs an argument: -config.file" in err


# ---------------------------------------------------------------------------
# strict configuration (checked before -version, like upstream)
# ---------------------------------------------------------------------------

def test_valid_config_passes_the_check(tmp_path, s3_server):
    rc, out, err = run(["-config.file=" + write(tmp_path, config(s3_server)), "-config.expand-env=true", "-version"])
    assert rc == 0, err
    assert "version 2.2.1" in out


@pytest.mark.parametrize("text, needle", [
    ("server:\n  http_port: 4040\n", "line 2: field http_port not found in type server.Config"),
    ("retention_period: 31d\n", "field retention_period not found in type pyroscope.Config"),
    ("limits:\n  compactor_retention: 1d\n", "field compactor_retention not found in type validation.Limits"),
    ("storage:\n  backend: s3\n  s3:\n    bucket: x\n", "field bucket not found in type s3.Config"),
    ("memberlist:\n  join: [a]\n", "field join not found in type memberlist.KVConfig"),
    ("metastore:\n  raft:\n    peers: []\n", "field peers not found in type raftnode.Config"),
    ("server:\n  http_listen_port: http\n", "cannot unmarshal !!str `http` into int"),
    ("limits:\n  retention_period: 31days\n", 'not a valid duration string: "31days"'),
])
def test_unknown_or_misplaced_keys_fail(tmp_path, text, needle):
    rc, _, err = run(["-config.file=" + write(tmp_path, text), "-version"])
    assert rc == 1
    assert err.startswith("failed parsing config: ")
    assert needle in err


def test_validation_errors(tmp_path):
    rc, _, err = run(["-config.file=" + write(tmp_path, "architecture_storage: v3\n"), "-version"])
    assert rc == 1 and "invalid storage layer" in err
    rc, _, err = run(["-config.file=" + write(tmp_path, "storage:\n  backend: \"\"\n"), "-version"])
    assert rc == 1 and "storage.backend is required for v1-v2-dual storage layer" in err


def test_expand_env_only_when_asked(tmp_path):
    path = write(tmp_path, "server:\n  http_listen_port: ${PYRO_PORT}\n")
    rc, _, err = run(["-config.file=" + path, "-version"], env={"PYRO_PORT": "4040"})
    assert rc == 1 and "cannot unmarshal !!str `${PYRO_PORT}` into int" in err
    rc, _, err = run(["-config.file=" + path, "-config.expand-env=true", "-version"], env={"PYRO_PORT": "4040"})
    assert rc == 0, err


# ---------------------------------------------------------------------------
# serving
# ---------------------------------------------------------------------------

def test_serves_ports_ready_metrics_and_memberlist(tmp_path, s3_server, procs):
    make_bucket(s3_server)
    peer = socket.socket()
    peer.bind(("127.0.0.1", 0))
    peer.listen(4)
    cfg = config(s3_server)
    cfg["memberlist"]["join_members"] = ["127.0.0.1:%d" % peer.getsockname()[1], "127.0.0.1:%d" % free_port()]
    p = procs(["-config.file=" + write(tmp_path, cfg), "-config.expand-env=true", "-target=all"],
              env={"S3_SECRET_KEY": TEST_SECRET_KEY})
    http = "http://127.0.0.1:%d" % cfg["server"]["http_listen_port"]
    try:
        p.wait_http(http + "/ready")
        for port in (cfg["server"]["grpc_listen_port"], cfg["memberlist"]["bind_port"],
                     int(cfg["metastore"]["raft"]["bind_address"].rsplit(":", 1)[1])):
            assert listening(port), port
        status, headers, body = http_get(http + "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        line = [x for x in body.decode().splitlines() if x.startswith("pyroscope_build_info{")][0]
        assert 'version="2.2.1"' in line and line.endswith(" 1")
        status, _, body = http_get(http + "/memberlist")
        text = body.decode()
        assert status == 200
        assert "127.0.0.1:%d  alive" % peer.getsockname()[1] in text
        assert "unreachable" in text
        status, _, body = http_get(http + "/config")
        assert status == 200 and TEST_SECRET_KEY not in body.decode() and "bucket_name: " + BUCKET in body.decode()
    finally:
        peer.close()
    assert p.terminate() == 0


def test_ready_is_503_while_starting(tmp_path, s3_server, procs):
    make_bucket(s3_server)
    cfg = config(s3_server)
    procs(["-config.file=" + write(tmp_path, cfg), "-config.expand-env=true"],
              env={"S3_SECRET_KEY": TEST_SECRET_KEY, "O11Y_STANDIN_READY_DELAY": "30"})
    url = "http://127.0.0.1:%d/ready" % cfg["server"]["http_listen_port"]
    wait_until(lambda: http_get(url)[0] != 0, message="HTTP port up")
    assert http_get(url)[0] == 503


def test_refuses_to_start_without_its_bucket(tmp_path, s3_server):
    rc, _, err = run(["-config.file=" + write(tmp_path, config(s3_server)), "-config.expand-env=true"],
                     env={"S3_SECRET_KEY": TEST_SECRET_KEY, "O11Y_STANDIN_BUCKET_WAIT": "0"})
    assert rc == 1
    assert "bucket %s" % BUCKET in err and "does not exist" in err


def test_wrong_secret_is_refused(tmp_path, s3_server):
    make_bucket(s3_server)
    rc, _, err = run(["-config.file=" + write(tmp_path, config(s3_server)), "-config.expand-env=true"],
                     env={"S3_SECRET_KEY": "wrong-secret", "O11Y_STANDIN_BUCKET_WAIT": "0"})
    assert rc == 1 and "bucket %s" % BUCKET in err


def test_port_in_use_fails(tmp_path, s3_server):
    make_bucket(s3_server)
    cfg = config(s3_server)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", cfg["server"]["grpc_listen_port"]))
        busy.listen(1)
        rc, _, err = run(["-config.file=" + write(tmp_path, cfg), "-config.expand-env=true"],
                         env={"S3_SECRET_KEY": TEST_SECRET_KEY})
    assert rc == 1 and "address already in use" in err


# ---------------------------------------------------------------------------
# profiles: /ingest, Push and the querier RPCs (in-process)
# ---------------------------------------------------------------------------


@pytest.fixture
def profiling():
    """make(multitenancy=False) -> base URL of a ProfilingAPI served on 127.0.0.1."""
    from o11y_standins import framework as fw
    from o11y_standins import pyroscope
    services = []

    def make(multitenancy=False):
        router = fw.Router()
        pyroscope.ProfilingAPI({"multitenancy_enabled": multitenancy}).register(router)
        services.append(fw.HTTPService("pyroscope", "127.0.0.1:0", router).start())
        return services[-1].url

    yield make
    for svc in services:
        svc.stop()


def post(url, body, headers=None):
    import urllib.error
    import urllib.request
    req = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.headers.get("Content-Type"), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type"), exc.read()


def rpc(url, method, msg, tenant=None):
    import json
    headers = {"Content-Type": "application/json"}
    if tenant:
        headers["X-Scope-OrgID"] = tenant
    status, _ctype, data = post(url + "/querier.v1.QuerierService/" + method, json.dumps(msg).encode(), headers)
    return status, json.loads(data or b"null")


def test_ingest_then_query_profile_types_and_labels(profiling):
    import time
    url = profiling()
    now = int(time.time())
    status, _, _ = post(url + "/ingest?name=shop.cpu%%7Benv%%3Dprod%%7D&from=%d&until=%d&spyName=gospy&sampleRate=100"
                        % (now - 10, now), b"main;work 3\nmain;idle 1\nnot-a-count-line\n")
    assert status == 200
    assert post(url + "/ingest?name=shop.inuse_space&format=lines", b"main;alloc\n")[0] == 200
    window = {"start": str((now - 60) * 1000), "end": str((now + 60) * 1000)}
    status, body = rpc(url, "ProfileTypes", window)
    assert status == 200 and [t["ID"] for t in body["profileTypes"]] == [
        "memory:inuse_space:bytes::", "process_cpu:cpu:nanoseconds:cpu:nanoseconds"]
    assert body["profileTypes"][1] == {"ID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "name": "process_cpu",
                                       "sampleType": "cpu", "sampleUnit": "nanoseconds", "periodType": "cpu",
                                       "periodUnit": "nanoseconds"}
    status, body = rpc(url, "LabelNames", dict(window, matchers=['{service_name="shop", env="prod"}']))
    assert "env" in body["names"] and "__profile_type__" in body["names"] and "pyroscope_spy" in body["names"]
    assert rpc(url, "LabelValues", {"name": "service_name", "matchers": [""]})[1] == {"names": ["shop"]}
    assert rpc(url, "LabelValues", {"name": "pyroscope_spy", "matchers": ['{env="prod"}']})[1] == {"names": ["gospy"]}
    assert rpc(url, "ProfileTypes", {"start": "1000", "end": "2000"})[1] == {"profileTypes": []}


def test_querier_proto_codec_and_errors(profiling):
    from o11y_standins import wire
    url = profiling(multitenancy=True)
    assert post(url + "/ingest?name=api", b"a;b 1\n") == (401, "text/plain; charset=utf-8", b"no org id\n")
    assert post(url + "/ingest?name=api", b"a;b 1\n", {"X-Scope-OrgID": "t1"})[0] == 200
    assert post(url + "/ingest?name=", b"", {"X-Scope-OrgID": "t1"})[0] == 400
    status, ctype, data = post(url + "/querier.v1.QuerierService/LabelValues",
                               wire.field_str(1, "service_name") + wire.field_bytes(2, b""),
                               {"Content-Type": "application/proto", "X-Scope-OrgID": "t1"})
    assert (status, ctype) == (200, "application/proto") and wire.children(data, 1) == [b"api"]
    status, body = rpc(url, "ProfileTypes", {})
    assert (status, body) == (401, {"code": "unauthenticated", "message": "no org id"})
    assert rpc(url, "LabelNames", {"matchers": ["{bad"]}, tenant="t1")[1]["code"] == "invalid_argument"
    assert rpc(url, "LabelNames", {"nosuchfield": 1}, tenant="t1")[0] == 400
    assert post(url + "/querier.v1.QuerierService/ProfileTypes", b"{}", {"Content-Type": "text/plain"})[0] == 415
    assert rpc(url, "LabelValues", {"name": "service_name"}, tenant="t2")[1] == {"names": []}  # another tenant


def test_push_rpc_with_a_gzipped_pprof(profiling):
    import base64
    import gzip
    import json

    from o11y_standins import wire
    url = profiling()
    strings = ["", "alloc_space", "bytes", "space"]
    pprof = (wire.field_bytes(1, wire.field_varint(1, 1) + wire.field_varint(2, 2)) +
             wire.field_bytes(11, wire.field_varint(1, 3) + wire.field_varint(2, 2)) +
             b"".join(wire.field_bytes(6, s.encode()) for s in strings))
    body = {"series": [{"labels": [{"name": "__name__", "value": "memory"}, {"name": "service_name", "value": "svc"}],
                        "samples": [{"rawProfile": base64.b64encode(gzip.compress(pprof)).decode(), "ID": "1"}]}]}
    status, _, data = post(url + "/push.v1.PusherService/Push", json.dumps(body).encode(),
                           {"Content-Type": "application/json"})
    assert (status, data) == (200, b"{}")
    assert [t["ID"] for t in rpc(url, "ProfileTypes", {})[1]["profileTypes"]] == \
        ["memory:alloc_space:bytes:space:bytes"]
    body["series"][0]["labels"] = [{"name": "__name__", "value": "memory"}]
    status, _, data = post(url + "/push.v1.PusherService/Push", json.dumps(body).encode(),
                           {"Content-Type": "application/json"})
    assert status == 400 and json.loads(data)["code"] == "invalid_argument"
