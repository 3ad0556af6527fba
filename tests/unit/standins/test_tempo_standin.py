# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Tempo stand-in run as a subprocess on 127.0.0.1 against an S3 stand-in."""

from __future__ import annotations

import functools
import json
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

from o11y_standins.s3server import S3Server  # noqa: E402
from o11y_standins.testing import StandinProcess, free_port, http_get  # noqa: E402

AK = "tempo-access"
SK = "tempo-secret-key-123"
BUCKET = "tempo-traces"


@pytest.fixture
def s3():
    srv = S3Server(access_key=AK, secret_key=SK)
    srv.start()
    client = boto3.client("s3", endpoint_url=srv.url, region_name="us-east-1", aws_access_key_id=AK,
                          aws_secret_access_key=SK, config=Config(retries={"max_attempts": 1}))
    client.create_bucket(Bucket=BUCKET)
    yield srv
    srv.stop()


@pytest.fixture
def procs(start_standin):
    return functools.partial(start_standin, "tempo")


def ports(n):
    out = set()
    while len(out) < n:
        out.add(free_port())
    return list(out)


def role_config(s3_url, http, grpc, ml, otlp_grpc, otlp_http, data, bucket=BUCKET):
    """What roles/tempo renders (same keys and shapes)."""
    return {
        "target": "all",
        "multitenancy_enabled": False,
        "stream_over_http_enabled": True,
        "server": {"http_listen_port": http, "grpc_listen_port": grpc, "log_level": "info"},
        "distributor": {"receivers": {"otlp": {"protocols": {
            "grpc": {"endpoint": "127.0.0.1:%d" % otlp_grpc},
            "http": {"endpoint": "127.0.0.1:%d" % otlp_http}}}}},
        "memberlist": {"bind_port": ml, "advertise_port": ml, "bind_addr": ["127.0.0.1"],
                       "join_members": ["127.0.0.1:%d" % ml]},
        "live_store": {"wal": {"path": "%s/live-store/traces" % data},
                       "shutdown_marker_dir": "%s/live-store/shutdown-marker" % data},
        "metrics_generator": {"storage": {"path": "%s/generator/wal" % data,
                                          "remote_write": [{"url": "http://127.0.0.1:9/api/v1/push",
                                                            "send_exemplars": True}]}},
        "backend_scheduler": {"local_work_path": "%s/backend-scheduler" % data,
                              "provider": {"compaction": {"compaction": {"block_retention": "336h"}}}},
        "backend_worker": {"backend_scheduler_addr": "127.0.0.1:%d" % grpc,
                           "compaction": {"block_retention": "336h"}},
        "storage": {"trace": {"backend": "s3", "wal": {"path": "%s/wal" % data},
                              "s3": {"bucket": bucket, "endpoint": s3_url.split("://", 1)[1], "region": "us-east-1",
                                     "access_key": AK, "secret_key": "${S3_SECRET_KEY}", "insecure": True,
                                     "forcepathstyle": True}}},
        "overrides": {"defaults": {"metrics_generator": {"processors": ["service-graphs", "span-metrics"]}}},
        "usage_report": {"reporting_enabled": False},
    }


def write(tmp_path, cfg, name="config.yml"):
    path = tmp_path / name
    path.write_text(cfg if isinstance(cfg, str) else yaml.safe_dump(cfg))
    return str(path)


def run(args, env=None):
    p = StandinProcess(["tempo"] + list(args), env=env)
    try:
        rc = p.run()
        return rc, p.stdout, p.stderr
    finally:
        p.close()


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["-version", "--version"])
def test_version(flag):
    rc, out, _err = run([flag])
    assert rc == 0
    assert out.splitlines()[0].startswith("tempo, version 3.0.3 (branch: HEAD, revision: ")
    assert "go version:       go1.26.5" in out


def test_unknown_flag_exits_2_like_go():
    rc, _out, err = run(["-no-such-flag"])
    assert rc == 2
    assert err.startswith("flag provided but not defined: -no-such-flag\nUsage of ")
    assert "-config.expand-env" in err and "-server.http-listen-port int" in err


@pytest.mark.parametrize("flag", ["-h", "-help", "--help"])
def test_help_exits_0(flag):
    rc, _out, err = run([flag])
    assert rc == 0 and "-target string" in err


def test_bad_flag_value():
    rc, _out, err = run(["-server.http-listen-port=http"])
    assert rc == 2 and 'invalid value "http" for flag -server.http-listen-port: parse error' in err


def test_missing_config_file_exits_1(tmp_path):
    rc, _out, err = run(["-config.file=%s" % (tmp_path / "nope.yml")])
    assert rc == 1 and err.startswith("failed parsing config: failed to read configFile")


# ---------------------------------------------------------------------------
# strict configuration
# ---------------------------------------------------------------------------

def test_role_config_verifies(tmp_path, s3):
    cfg = role_config(s3.url, *ports(5), data=tmp_path)
    rc, _out, err = run(["-config.file=%s" % write(tmp_path, cfg), "-config.expand-env=true", "-config.verify"])
    assert rc == 0, err


@pytest.mark.parametrize("mutate, needle", [
    (lambda c: c.update(compactor={"compaction": {"block_retention": "1h"}}),
     "field compactor not found in type app.Config"),
    (lambda c: c["storage"]["trace"]["s3"].update(secret_access_key="x"),
     "field secret_access_key not found in type s3.Config"),
    (lambda c: c["server"].update(http_port=3200), "field http_port not found in type server.Config"),
    # misplaced: block_retention belongs under compaction
    (lambda c: c["backend_worker"].update(block_retention="1h"),
     "field block_retention not found in type backendworker.Config"),
    (lambda c: c["memberlist"].update(join_members="a:1 b:2"), "cannot unmarshal !!str `a:1 b:2` into []string"),
    (lambda c: c["overrides"]["defaults"]["metrics_generator"].update(processors=["span-metric"]),
     'invalid value "span-metric"'),
    (lambda c: c["backend_worker"]["compaction"].update(block_retention="14d"), 'unknown unit "d"'),
])
def test_strict_config_errors(tmp_path, s3, mutate, needle):
    cfg = role_config(s3.url, *ports(5), data=tmp_path)
    mutate(cfg)
    rc, _out, err = run(["-config.file=%s" % write(tmp_path, cfg), "-config.verify"])
    assert rc == 1
    assert err.startswith("failed parsing config: failed to parse configFile")
    assert needle in err


def test_verify_reports_configuration_warnings(tmp_path, s3):
    cfg = role_config(s3.url, *ports(5), data=tmp_path)
    cfg["backend_worker"]["compaction"]["block_retention"] = "1m"
    rc, _out, err = run(["-config.file=%s" % write(tmp_path, cfg), "-config.verify"])
    assert rc == 1 and "CONFIGURATION WARNINGS" in err


def test_env_expansion_only_with_flag(tmp_path, s3):
    text = yaml.safe_dump(role_config(s3.url, *ports(5), data=tmp_path)).replace(
        "http_listen_port:", "http_listen_port: ${TEMPO_PORT} #")
    path = write(tmp_path, text)
    rc, _out, err = run(["-config.file=" + path, "-config.verify"], env={"TEMPO_PORT": "3210"})
    assert rc == 1 and "cannot unmarshal" in err and "${TEMPO_PORT}" in err
    rc, _out, err = run(["-config.file=" + path, "-config.expand-env=true", "-config.verify"],
                        env={"TEMPO_PORT": "3210"})
    assert rc == 0, err


# ---------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------

def test_serves_ports_ready_metrics_and_memberlist(tmp_path, s3, procs):
    http, grpc, ml, og, oh = ports(5)
    cfg = role_config(s3.url, http, grpc, ml, og, oh, data=tmp_path)
    p = procs(["-config.file=%s" % write(tmp_path, cfg), "-config.expand-env=true"], env={"S3_SECRET_KEY": SK})
    p.wait_http("http://127.0.0.1:%d/ready" % http)
    status, _h, body = http_get("http://127.0.0.1:%d/ready" % http)
    assert status == 200 and body.strip() == b"ready"
    for port in (grpc, ml, og, oh):
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
    status, headers, body = http_get("http://127.0.0.1:%d/metrics" % http)
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'tempo_build_info{' in body.decode() and 'version="3.0.3"' in body.decode()
    status, _h, body = http_get("http://127.0.0.1:%d/memberlist" % http, headers={"Accept": "application/json"})
    assert status == 200 and len(json.loads(body)["members"]) == 1
    status, _h, body = http_get("http://127.0.0.1:%d/api/status/buildinfo" % http)
    assert status == 200 and json.loads(body)["version"] == "3.0.3"
    assert p.terminate() == 0


def test_flags_override_the_file(tmp_path, s3, procs):
    http, grpc, ml, og, oh = ports(5)
    other = free_port()
    cfg = role_config(s3.url, http, grpc, ml, og, oh, data=tmp_path)
    p = procs(["-config.file=%s" % write(tmp_path, cfg), "-config.expand-env=true",
               "-server.http-listen-port=%d" % other], env={"S3_SECRET_KEY": SK})
    p.wait_http("http://127.0.0.1:%d/ready" % other)


def test_missing_bucket_refuses_to_start(tmp_path, s3):
    cfg = role_config(s3.url, *ports(5), data=tmp_path, bucket="no-such-bucket")
    rc, _out, err = run(["-config.file=%s" % write(tmp_path, cfg), "-config.expand-env=true"],
                        env={"S3_SECRET_KEY": SK})
    assert rc == 1 and "no-such-bucket" in err


def test_wrong_secret_refuses_to_start(tmp_path, s3):
    cfg = role_config(s3.url, *ports(5), data=tmp_path)
    # without -config.expand-env the secret is the literal ${S3_SECRET_KEY}
    rc, _out, err = run(["-config.file=%s" % write(tmp_path, cfg)], env={"S3_SECRET_KEY": SK})
    assert rc == 1 and BUCKET in err


def test_advertise_addr_must_be_an_ip(tmp_path, s3):
    cfg = role_config(s3.url, *ports(5), data=tmp_path)
    cfg["memberlist"]["advertise_addr"] = "tempo-node1"
    rc, _out, err = run(["-config.file=%s" % write(tmp_path, cfg), "-config.expand-env=true"],
                        env={"S3_SECRET_KEY": SK})
    assert rc == 1 and "Failed to parse advertise address" in err


def test_port_in_use_fails(tmp_path, s3):
    http, grpc, ml, og, oh = ports(5)
    cfg = role_config(s3.url, http, grpc, ml, og, oh, data=tmp_path)
    with socket.socket() as blocker:
        blocker.bind(("0.0.0.0", grpc))
        blocker.listen(1)
        rc, _out, err = run(["-config.file=%s" % write(tmp_path, cfg), "-config.expand-env=true"],
                            env={"S3_SECRET_KEY": SK})
    assert rc == 1 and "bind" in err
