# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Loki stand-in run as a subprocess on 127.0.0.1 against an S3 stand-in."""

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

from o11y_standins import otlp, wire  # noqa: E402
from o11y_standins.loki import LogQLParser, LogQLError, parse_loki_time  # noqa: E402
from o11y_standins.s3server import S3Server  # noqa: E402
from o11y_standins.testing import StandinProcess, free_port, http_get, wait_until  # noqa: E402
from o11y_standins.testing import http_post as post  # noqa: E402

ACCESS = "loki-test"
SECRET = "loki-test-secret-1"


@pytest.fixture(scope="module")
def s3():
    server = S3Server(access_key=ACCESS, secret_key=SECRET)
    server.start()
    client = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=ACCESS,
                          aws_secret_access_key=SECRET)
    for bucket in ("loki-chunks", "loki-ruler"):
        client.create_bucket(Bucket=bucket)
    yield server
    server.stop()


def config(s3_url: str, http: int, grpc: int, gossip: int, join=None, chunks="loki-chunks",
           secret="${S3_SECRET_KEY}", **extra) -> dict:
    s3cfg = {"endpoint": s3_url.replace("http://", ""), "insecure": True, "region": "us-east-1",
             "access_key_id": ACCESS, "secret_access_key": secret, "s3forcepathstyle": True}
    cfg = {
        "target": "all",
        "auth_enabled": False,
        "server": {"http_listen_address": "127.0.0.1", "http_listen_port": http,
                   "grpc_listen_address": "127.0.0.1", "grpc_listen_port": grpc},
        "common": {"path_prefix": "/tmp/loki", "replication_factor": 1, "instance_addr": "127.0.0.1",
                   "ring": {"kvstore": {"store": "memberlist"}},
                   "storage": {"s3": dict(s3cfg, bucketnames=chunks)}},
        "memberlist": {"bind_addr": ["127.0.0.1"], "bind_port": gossip, "cluster_label": "loki",
                       "join_members": join if join is not None else ["127.0.0.1:%d" % gossip]},
        "schema_config": {"configs": [{"from": "2024-04-01", "store": "tsdb", "object_store": "s3",
                                       "schema": "v13", "index": {"prefix": "index_", "period": "24h"}}]},
        "compactor": {"working_directory": "/tmp/loki/compactor", "retention_enabled": True,
                      "delete_request_store": "s3"},
        "limits_config": {"retention_period": "744h"},
        "ruler": {"rule_path": "/tmp/loki/rules", "storage": {"type": "s3",
                                                              "s3": dict(s3cfg, bucketnames="loki-ruler")}},
        "ingester": {"lifecycler": {"min_ready_duration": "0s"}},
        "analytics": {"reporting_enabled": False},
    }
    cfg.update(extra)
    return cfg


def write(tmp_path: Path, cfg, name="config.yml") -> str:
    path = tmp_path / name
    path.write_text(cfg if isinstance(cfg, str) else yaml.safe_dump(cfg))
    return str(path)


def run(args, env=None, timeout=30):
    p = StandinProcess(["loki"] + list(args), env=env)
    try:
        code = p.run(timeout=timeout)
        return code, p.stdout, p.stderr
    finally:
        p.close()


@pytest.fixture
def procs(start_standin):
    return functools.partial(start_standin, "loki")


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["-version", "--version"])
def test_version(flag):
    code, out, _ = run([flag])
    assert code == 0
    assert out.startswith("loki, version 3.7.6 (branch: HEAD, revision: ")
    assert "go version:" in out and "platform:         linux/" in out


def test_unknown_flag_exits_2():
    code, out, err = run(["-config.file=/x.yml", "-config.expand-environment=true"])
    assert code == 2
    assert "flag provided but not defined: -config.expand-environment" in err
    assert "Run with -help to get list of available parameters" in err


def test_help_prints_flags_and_exits_2():
    code, out, _ = run(["-help"])
    assert code == 2 and "-verify-config" in out and "-config.expand-env" in out and "-target" in out


def test_bad_flag_value_exits_2():
    code, _, err = run(["-server.http-listen-port=abc"])
    assert code == 2 and 'invalid value "abc" for flag -server.http-listen-port' in err


def test_missing_config_file(tmp_path):
    code, _, err = run(["-config.file=%s" % (tmp_path / "nope.yml")])
    assert code == 1 and "does not exist, set config.file for custom config path" in err


# ---------------------------------------------------------------------------
# strict configuration and -verify-config
# ---------------------------------------------------------------------------

def test_verify_config_accepts_the_role_shape(tmp_path, s3):
    path = write(tmp_path, config(s3.url, 1, 2, 3))
    code, _, err = run(["-config.file=%s" % path, "-verify-config", "-config.expand-env=true"])
    assert code == 0, err
    assert 'msg="config is valid"' in err


def test_comma_separated_config_file_first_existing_wins(tmp_path, s3):
    path = write(tmp_path, config(s3.url, 1, 2, 3))
    code, _, err = run(["-config.file=%s,%s" % (tmp_path / "missing.yml", path), "-verify-config"])
    assert code == 0, err


@pytest.mark.parametrize("mutate, needle", [
    (lambda c: c["server"].update(http_port=1), "field http_port not found in type server.Config"),
    (lambda c: c.update(retention_period="744h"), "field retention_period not found in type loki.ConfigWrapper"),
    (lambda c: c["compactor"].update(retention_period="1h"), "field retention_period not found in type "
                                                               "compactor.Config"),
    (lambda c: c["common"]["storage"]["s3"].update(secret_key="x"), "field secret_key not found"),
    (lambda c: c["memberlist"].update(join_members="a:1"), "cannot unmarshal !!str `a:1` into []string"),
    (lambda c: c["server"].update(http_listen_port="port"), "cannot unmarshal !!str `port` into int"),
    (lambda c: c["limits_config"].update(retention_period="forever"), "not a valid duration string"),
])
def test_unknown_misplaced_or_mistyped_keys_are_rejected(tmp_path, s3, mutate, needle):
    cfg = config(s3.url, 1, 2, 3)
    mutate(cfg)
    code, _, err = run(["-config.file=%s" % write(tmp_path, cfg), "-verify-config", "-config.expand-env=true"])
    assert code == 1
    assert err.startswith("failed parsing config: ") and needle in err, err


def test_valid_overrides_in_rendered_sections_are_accepted(tmp_path, s3):
    cfg = config(s3.url, 1, 2, 3)
    cfg["limits_config"].update(ingestion_rate_mb=16, ingestion_burst_size_mb=32, retention_period="31d")
    cfg["ingester"].update(chunk_idle_period="1h")
    cfg["compactor"].update(compaction_interval="10m", retention_delete_delay="2h")
    cfg["server"].update(log_level="debug", grpc_server_max_recv_msg_size=8388608)
    cfg["query_range"] = {"results_cache": {"cache": {"embedded_cache": {"enabled": True}}}}
    code, _, err = run(["-config.file=%s" % write(tmp_path, cfg), "-verify-config"])
    assert code == 0, err


def test_duplicate_key_is_an_error(tmp_path):
    text = "auth_enabled: false\nauth_enabled: true\n"
    code, _, err = run(["-config.file=%s" % write(tmp_path, text), "-verify-config"])
    assert code == 1 and 'mapping key "auth_enabled" already defined' in err


@pytest.mark.parametrize("mutate, needle", [
    (lambda c: c["compactor"].pop("delete_request_store"), "delete-request-store should be configured"),
    (lambda c: c["schema_config"]["configs"][0].update(schema="v99"), "invalid schema version"),
    (lambda c: c["schema_config"]["configs"][0].update({"from": "yesterday"}), "YYYY-MM-DD"),
    (lambda c: c.update(target="everything"), "unrecognised module name: everything"),
    (lambda c: c.pop("schema_config"), "must specify at least one schema configuration"),
])
def test_validation_errors(tmp_path, s3, mutate, needle):
    cfg = config(s3.url, 1, 2, 3)
    mutate(cfg)
    code, _, err = run(["-config.file=%s" % write(tmp_path, cfg), "-verify-config"])
    assert code == 1 and "validating config" in err and needle in err, err


def test_env_expansion_only_with_the_flag(tmp_path, procs, s3):
    http, grpc, gossip = free_port(), free_port(), free_port()
    path = write(tmp_path, config(s3.url, http, grpc, gossip))
    env = {"S3_SECRET_KEY": SECRET}
    # without expansion the literal "${S3_SECRET_KEY}" is the secret: S3 refuses it
    code, _, err = run(["-config.file=%s" % path], env=env)
    assert code == 1 and "loki-chunks" in err and ("SignatureDoesNotMatch" in err or "Access Denied" in err
                                                   or "status 403" in err), err
    p = procs(["-config.file=%s" % path, "-config.expand-env=true"], env=env)
    p.wait_http("http://127.0.0.1:%d/ready" % http)


# ---------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------

def test_ports_ready_metrics_and_status_pages(tmp_path, procs, s3):
    http, grpc, gossip = free_port(), free_port(), free_port()
    path = write(tmp_path, config(s3.url, http, grpc, gossip))
    p = procs(["-config.file=%s" % path, "-config.expand-env=true"], env={"S3_SECRET_KEY": SECRET})
    url = "http://127.0.0.1:%d" % http
    p.wait_http(url + "/ready")
    status, _, body = http_get(url + "/ready")
    assert status == 200 and body == b"ready\n"
    for port in (grpc, gossip):
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
    status, headers, body = http_get(url + "/metrics")
    text = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'loki_build_info{' in text and 'version="3.7.6"' in text and 'tags="netgo"' in text
    info = json.loads(http_get(url + "/loki/api/v1/status/buildinfo")[2])
    assert info["version"] == "3.7.6"
    cfg_text = http_get(url + "/config")[2].decode()
    assert SECRET not in cfg_text and "********" in cfg_text
    wait_until(lambda: b"<td>" in http_get(url + "/memberlist")[2], message="memberlist page lists a member")
    assert http_get(url + "/ring")[0] == 200
    assert http_get(url + "/loki/api/v1/push", method="POST")[0] == 204  # auth_enabled: false
    assert p.terminate() == 0


def test_min_ready_duration_and_auth(tmp_path, procs, s3):
    http = free_port()
    cfg = config(s3.url, http, free_port(), free_port(), auth_enabled=True)
    cfg["ingester"]["lifecycler"]["min_ready_duration"] = "3s"
    p = procs(["-config.file=%s" % write(tmp_path, cfg), "-config.expand-env=true"], env={"S3_SECRET_KEY": SECRET})
    url = "http://127.0.0.1:%d" % http
    wait_until(lambda: http_get(url + "/ready")[0] != 0, message="HTTP up")
    status, _, body = http_get(url + "/ready")
    assert status == 503 and b"Ingester not ready" in body
    p.wait_http(url + "/ready", timeout=15)
    assert http_get(url + "/loki/api/v1/push", method="POST")[0] == 401
    assert http_get(url + "/loki/api/v1/push", {"X-Scope-OrgID": "team-a"}, method="POST")[0] == 204


def test_flags_override_the_config(tmp_path, procs, s3):
    port = free_port()
    path = write(tmp_path, config(s3.url, free_port(), free_port(), free_port()))
    p = procs(["-config.file=%s" % path, "-config.expand-env=true", "-server.http-listen-port=%d" % port,
               "-target=all"], env={"S3_SECRET_KEY": SECRET})
    p.wait_http("http://127.0.0.1:%d/ready" % port)


@pytest.mark.parametrize("which", ["chunks", "ruler"])
def test_missing_bucket_refuses_to_start(tmp_path, s3, which):
    cfg = config(s3.url, free_port(), free_port(), free_port())
    if which == "chunks":
        cfg["common"]["storage"]["s3"]["bucketnames"] = "no-such-chunks"
    else:
        cfg["ruler"]["storage"]["s3"]["bucketnames"] = "no-such-ruler"
    code, _, err = run(["-config.file=%s" % write(tmp_path, cfg), "-config.expand-env=true"],
                       env={"S3_SECRET_KEY": SECRET})
    assert code == 1 and ("no-such-" + which) in err and "does not exist" in err, err


def test_port_in_use_exits_1(tmp_path, s3):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        cfg = config(s3.url, free_port(), port, free_port())
        code, _, err = run(["-config.file=%s" % write(tmp_path, cfg), "-config.expand-env=true"],
                           env={"S3_SECRET_KEY": SECRET})
    assert code == 1 and "address already in use" in err


def test_two_instances_see_each_other_in_memberlist(tmp_path, procs, s3):
    ports = [(free_port(), free_port(), free_port()) for _ in range(2)]
    join = ["127.0.0.1:%d" % g for _, _, g in ports]
    for i, (http, grpc, gossip) in enumerate(ports):
        cfg = config(s3.url, http, grpc, gossip, join=join)
        cfg["memberlist"]["node_name"] = "node%d" % i
        cfg["memberlist"]["randomize_node_name"] = False
        procs(["-config.file=%s" % write(tmp_path, cfg, "c%d.yml" % i), "-config.expand-env=true"],
              env={"S3_SECRET_KEY": SECRET}).wait_http("http://127.0.0.1:%d/ready" % http)
    for http, _, _ in ports:
        page = lambda: http_get("http://127.0.0.1:%d/memberlist" % http)[2].decode()  # noqa: E731
        wait_until(lambda: "node0" in page() and "node1" in page(), message="both members")
    metrics = http_get("http://127.0.0.1:%d/metrics" % ports[0][0])[2].decode()
    assert "loki_memberlist_client_cluster_members_count 2" in metrics


# ---------------------------------------------------------------------------
# logs: OTLP and push API in, LogQL out, kept across a restart
# ---------------------------------------------------------------------------

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def query(url, q, headers=None, **params):
    import urllib.parse
    params = dict({"query": q}, **params)
    status, _h, body = http_get(url + "/loki/api/v1/query_range?" + urllib.parse.urlencode(params), headers=headers)
    return status, (json.loads(body) if status == 200 else body.decode())


def log_request(ts_ns, service="o11y-verify"):
    resource = [{"key": "service.name", "value": {"stringValue": service}},
                {"key": "host.name", "value": {"stringValue": "node-1"}}] if service else []
    return {"resourceLogs": [{"resource": {"attributes": resource}, "scopeLogs": [{"scope": {"name": "verify"},
            "logRecords": [{"timeUnixNano": str(ts_ns), "severityNumber": 9, "severityText": "INFO",
                            "body": {"stringValue": "verify log line"}, "traceId": TRACE_ID,
                            "spanId": "00f067aa0ba902b7",
                            "attributes": [{"key": "http.route", "value": {"stringValue": "/x"}}]}]}]}]}


def test_logql_parser_subset_and_errors():
    q = LogQLParser('{service_name="a", env=~"p.*"} |= "x" != "y" |~ `z+` | trace_id="abc" | json').parse()
    assert q.selector == [("service_name", "=", "a"), ("env", "=~", "p.*")]
    assert [s[0] for s in q.stages] == ["line", "line", "line", "label", "parser"]
    for bad, needle in (('{a="b"', "parse error at line 1, col 7: syntax error: unexpected $end"),
                        ('rate({a="b"}[1m])', "parse error at line 1, col 1"),
                        ('{a=~".*"}', "queries require at least one regexp or equality matcher"),
                        ('{a="b"} | x > 1', "parse error at line 1, col 13")):
        with pytest.raises(LogQLError) as err:
            LogQLParser(bad).parse()
        assert needle in str(err.value), (bad, str(err.value))
    assert parse_loki_time("1700000000") == 1700000000 * 10 ** 9
    assert parse_loki_time("1700000000000000001") == 1700000000000000001
    assert parse_loki_time("1700000000.5") == 1700000000500000000
    assert parse_loki_time("2023-11-14T22:13:20Z") == 1700000000 * 10 ** 9


def test_logs_flow_from_otlp_and_push_to_queries(tmp_path, procs, s3):
    import time
    http = free_port()
    cfg = config(s3.url, http, free_port(), free_port())
    cfg["common"]["path_prefix"] = str(tmp_path / "loki")
    conf = write(tmp_path, cfg)
    p = procs(["-config.file=%s" % conf, "-config.expand-env=true"], env={"S3_SECRET_KEY": SECRET})
    url = "http://127.0.0.1:%d" % http
    p.wait_http(url + "/ready")
    now = time.time_ns()
    status, _b = post(url + "/otlp/v1/logs", otlp.encode("logs", log_request(now - 10 ** 9)),
                      {"Content-Type": "application/x-protobuf"})
    assert status == 204
    import gzip
    status, _b = post(url + "/otlp/v1/logs", gzip.compress(json.dumps(log_request(now - 2 * 10 ** 9, "")).encode()),
                      {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert status == 204
    push = {"streams": [{"stream": {"service": "app", "level": "error"},
                         "values": [[str(now - 3 * 10 ** 9), "boom", {"trace_id": TRACE_ID}]]}]}
    assert post(url + "/loki/api/v1/push", json.dumps(push).encode(), {"Content-Type": "application/json"})[0] == 204
    # snappy protobuf PushRequest: streams{labels, entries{timestamp{seconds,nanos}, line}}
    ts = wire.field_varint(1, (now - 4 * 10 ** 9) // 10 ** 9)
    entry = wire.field_bytes(1, ts) + wire.field_str(2, "from protobuf")
    stream = wire.field_str(1, '{service="app", level="info"}') + wire.field_bytes(2, entry)
    status, _b = post(url + "/loki/api/v1/push", wire.snappy_encode(wire.field_bytes(1, stream)),
                      {"Content-Type": "application/x-protobuf"})
    assert status == 204

    status, doc = query(url, '{service_name="o11y-verify"} | trace_id="%s"' % TRACE_ID)
    assert status == 200 and doc["status"] == "success" and doc["data"]["resultType"] == "streams"
    [stream] = doc["data"]["result"]
    assert stream["values"][0][1] == "verify log line" and int(stream["values"][0][0]) == now - 10 ** 9
    labels = stream["stream"]
    assert labels["service_name"] == "o11y-verify" and labels["trace_id"] == TRACE_ID
    assert labels["span_id"] == "00f067aa0ba902b7" and labels["host_name"] == "node-1"
    assert labels["severity_text"] == "INFO" and labels["http_route"] == "/x" and labels["scope_name"] == "verify"
    status, doc = query(url, '{service_name="o11y-verify"}', headers={"X-Loki-Response-Encoding-Flags":
                                                                       "categorize-labels"})
    [stream] = doc["data"]["result"]
    assert stream["stream"] == {"service_name": "o11y-verify"}
    assert stream["values"][0][2]["structuredMetadata"]["trace_id"] == TRACE_ID
    status, doc = query(url, '{service_name="unknown_service"}')
    assert len(doc["data"]["result"]) == 1
    status, doc = query(url, '{service="app"} |= "boom"')
    assert [s["values"][0][1] for s in doc["data"]["result"]] == ["boom"]
    status, doc = query(url, '{service="app"}', direction="forward", limit=2)
    assert [v[1] for s in doc["data"]["result"] for v in s["values"]] == ["from protobuf", "boom"]
    status, doc = query(url, '{service="app"}', start=str(now - 2 * 10 ** 9))
    assert doc["data"]["result"] == []
    status, body = query(url, '{service="app"')
    assert status == 400 and body.startswith("parse error at line 1, col 15")
    names = json.loads(http_get(url + "/loki/api/v1/labels")[2])["data"]
    assert {"service", "level", "service_name"} <= set(names) and "trace_id" not in names
    values = json.loads(http_get(url + "/loki/api/v1/label/service_name/values")[2])["data"]
    assert values == ["o11y-verify", "unknown_service"]
    assert 'loki_distributor_lines_received_total{tenant="fake"} 4' in http_get(url + "/metrics")[2].decode()

    assert p.terminate() == 0  # a restart keeps what was pushed
    p = procs(["-config.file=%s" % conf, "-config.expand-env=true"], env={"S3_SECRET_KEY": SECRET})
    p.wait_http(url + "/ready")
    assert len(query(url, '{service_name=~".+"}')[1]["data"]["result"]) == 2


def test_logs_are_kept_per_tenant_with_auth(tmp_path, procs, s3):
    http = free_port()
    cfg = config(s3.url, http, free_port(), free_port(), auth_enabled=True)
    cfg["common"]["path_prefix"] = str(tmp_path / "loki")
    p = procs(["-config.file=%s" % write(tmp_path, cfg), "-config.expand-env=true"], env={"S3_SECRET_KEY": SECRET})
    url = "http://127.0.0.1:%d" % http
    p.wait_http(url + "/ready")
    import time
    body = otlp.encode("logs", log_request(time.time_ns()))
    assert post(url + "/otlp/v1/logs", body, {"Content-Type": "application/x-protobuf"})[0] == 401
    assert post(url + "/otlp/v1/logs", body, {"Content-Type": "application/x-protobuf",
                                              "X-Scope-OrgID": "team-a"})[0] == 204
    assert query(url, '{service_name="o11y-verify"}')[0] == 401
    assert query(url, '{service_name="o11y-verify"}', headers={"X-Scope-OrgID": "team-b"})[1]["data"]["result"] == []
    assert len(query(url, '{service_name="o11y-verify"}',
                     headers={"X-Scope-OrgID": "team-a"})[1]["data"]["result"]) == 1
