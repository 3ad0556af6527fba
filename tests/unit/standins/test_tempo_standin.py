# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Tempo 2.10 stand-in run as a subprocess on 127.0.0.1 against an S3 stand-in."""

from __future__ import annotations

import copy
import functools
import json
import socket
import sys
import time
from pathlib import Path

import pytest
import yaml

STANDINS = Path(__file__).resolve().parents[2] / "standins"
if str(STANDINS) not in sys.path:
    sys.path.insert(0, str(STANDINS))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from o11y_standins import grpc_h2c, otlp  # noqa: E402
from o11y_standins.s3server import S3Server  # noqa: E402
from o11y_standins.testing import StandinProcess, free_port, http_get, wait_until  # noqa: E402
from o11y_standins.testing import http_post as post  # noqa: E402

AK = "tempo-access"
SK = "tempo-secret-key-123"
BUCKET = "tempo-traces"
ENV = {"S3_SECRET_KEY": SK}
JSON = {"Accept": "application/json"}


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


def role_config(s3_url, http, grpc, ml, otlp_grpc, otlp_http, data, bucket=BUCKET, peers=None):
    """What roles/tempo renders (same keys and shapes): target all on one host, scalable-single-binary
    with replication factor 3 when *peers* (memberlist ports of a three-node ring) is given."""
    clustered = bool(peers)
    ring = {"kvstore": {"store": "memberlist"}, "instance_addr": "127.0.0.1"}
    cfg = {
        "target": "scalable-single-binary" if clustered else "all",
        "multitenancy_enabled": False,
        "stream_over_http_enabled": True,
        "server": {"http_listen_port": http, "grpc_listen_port": grpc, "log_level": "info"},
        "distributor": {"ring": copy.deepcopy(ring), "receivers": {"otlp": {"protocols": {
            "grpc": {"endpoint": "127.0.0.1:%d" % otlp_grpc},
            "http": {"endpoint": "127.0.0.1:%d" % otlp_http}}}}},
        "ingester": {"lifecycler": {"address": "127.0.0.1", "ring": {
            "kvstore": {"store": "memberlist"}, "replication_factor": 3 if clustered else 1}}},
        "metrics_generator": {"ring": copy.deepcopy(ring),
                              "storage": {"path": "%s/generator/wal" % data,
                                          "remote_write": [{"url": "http://127.0.0.1:9/api/v1/push",
                                                            "send_exemplars": True}]}},
        "compactor": {"ring": copy.deepcopy(ring), "compaction": {"block_retention": "336h"}},
        "memberlist": {"bind_port": ml, "advertise_port": ml, "cluster_label": "tempo", "bind_addr": ["127.0.0.1"],
                       "join_members": ["127.0.0.1:%d" % p for p in (peers or [ml])]},
        "storage": {"trace": {"backend": "s3", "wal": {"path": "%s/wal" % data},
                              "s3": {"bucket": bucket, "endpoint": s3_url.split("://", 1)[1], "region": "us-east-1",
                                     "access_key": AK, "secret_key": "${S3_SECRET_KEY}", "insecure": True,
                                     "forcepathstyle": True}}},
        "overrides": {"defaults": {"metrics_generator": {"processors": ["service-graphs", "span-metrics"]}}},
        "usage_report": {"reporting_enabled": False},
    }
    if clustered:
        cfg["querier"] = {"frontend_worker": {"frontend_address": "127.0.0.1:%d" % grpc}}
    return cfg


def fast(cfg, name=None):
    """Skip the upstream readiness waits (compactor ring stability 1m, ingester 15s) in tests; three
    instances on one machine also need their own ring ids (upstream's default is the host name)."""
    cfg["compactor"]["ring"]["wait_stability_min_duration"] = "0s"
    cfg["ingester"]["lifecycler"]["min_ready_duration"] = "0s"
    if name:
        cfg["ingester"]["lifecycler"]["id"] = name
        cfg["metrics_generator"]["ring"]["instance_id"] = name
        cfg["compactor"]["ring"]["instance_id"] = name
    return cfg


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


def get_json(url):
    status, _h, body = http_get(url, headers=JSON)
    assert status == 200, (url, status, body)
    return json.loads(body)


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["-version", "--version"])
def test_version(flag):
    rc, out, _err = run([flag])
    assert rc == 0
    assert out.splitlines()[0].startswith("tempo, version 2.10.8 (branch: HEAD, revision: ")
    assert "go version:       go1.26.5" in out


def test_unknown_flag_exits_2_like_go():
    rc, _out, err = run(["-no-such-flag"])
    assert rc == 2
    assert err.startswith("flag provided but not defined: -no-such-flag\nUsage of ")
    assert "-config.verify" in err and "-server.http-listen-port int" in err


@pytest.mark.parametrize("flag", ["-health", "-span-profiling"])
def test_3x_only_flags_are_unknown(flag):
    rc, _out, err = run([flag])
    assert rc == 2 and ("flag provided but not defined: %s" % flag) in err


@pytest.mark.parametrize("flag", ["-h", "-help", "--help"])
def test_help_exits_0(flag):
    rc, _out, err = run([flag])
    assert rc == 0 and "-target string" in err and "-mem-ballast-size-mbs int" in err


def test_bad_flag_value():
    rc, _out, err = run(["-server.http-listen-port=http"])
    assert rc == 2 and 'invalid value "http" for flag -server.http-listen-port: parse error' in err


def test_missing_config_file_exits_1(tmp_path):
    rc, _out, err = run(["-config.file=%s" % (tmp_path / "nope.yml")])
    assert rc == 1 and err.startswith("failed parsing config: failed to read configFile")


# ---------------------------------------------------------------------------
# strict configuration
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("clustered", [False, True], ids=["all", "scalable-single-binary"])
def test_role_config_verifies(tmp_path, s3, clustered):
    http, grpc, ml, og, oh = ports(5)
    cfg = role_config(s3.url, http, grpc, ml, og, oh, data=tmp_path, peers=[ml, ml + 1, ml + 2] if clustered else None)
    rc, _out, err = run(["-config.file=%s" % write(tmp_path, cfg), "-config.expand-env=true", "-config.verify"])
    assert rc == 0, err


@pytest.mark.parametrize("mutate, needle", [
    # 3.x-only keys 2.10 does not know
    (lambda c: c.update(memory={"automemlimit_enabled": True}), "field memory not found in type app.Config"),
    (lambda c: c.update(span_profiling=True), "field span_profiling not found in type app.Config"),
    (lambda c: c["metrics_generator"].update(ring_mode="partition"),
     "field ring_mode not found in type generator.Config"),
    (lambda c: c.update(live_store={"readiness_target_lag": "1s"}),
     "field readiness_target_lag not found in type livestore.Config"),
    (lambda c: c.update(backend_scheduler={"provider": {"redaction": {}}}),
     "field redaction not found in type provider.Config"),
    (lambda c: c["metrics_generator"].update(processor={"span_metrics": {"enable_tracestate_span_multiplier": True}}),
     "field enable_tracestate_span_multiplier not found in type spanmetrics.Config"),
    # misplaced or mistyped
    (lambda c: c["compactor"].update(block_retention="1h"), "field block_retention not found in type compactor.Config"),
    (lambda c: c["storage"]["trace"]["s3"].update(secret_access_key="x"),
     "field secret_access_key not found in type s3.Config"),
    (lambda c: c["server"].update(http_port=3200), "field http_port not found in type server.Config"),
    (lambda c: c["ingester"]["lifecycler"]["ring"].update(replication_factor="three"),
     "cannot unmarshal !!str `three` into int"),
    (lambda c: c["memberlist"].update(join_members="a:1 b:2"), "cannot unmarshal !!str `a:1 b:2` into []string"),
    (lambda c: c["compactor"]["compaction"].update(block_retention="14d"), 'unknown unit "d"'),
])
def test_strict_config_errors(tmp_path, s3, mutate, needle):
    cfg = role_config(s3.url, *ports(5), data=tmp_path)
    mutate(cfg)
    rc, _out, err = run(["-config.file=%s" % write(tmp_path, cfg), "-config.verify"])
    assert rc == 1
    assert err.startswith("failed parsing config: failed to parse configFile")
    assert needle in err


def test_2_10_blocks_that_3x_dropped_or_changed_parse(tmp_path, s3):
    cfg = role_config(s3.url, *ports(5), data=tmp_path)
    cfg["ingester_client"] = {"remote_timeout": "5s"}
    cfg["ingester"].update(max_block_duration="5m", flush_all_on_shutdown=True)
    cfg["compactor"]["compaction"]["compaction_window"] = "1h"
    cfg["distributor"]["extend_writes"] = True
    cfg["overrides"]["defaults"]["compaction"] = {"block_retention": "14d"}  # model.Duration here
    rc, _out, err = run(["-config.file=%s" % write(tmp_path, cfg), "-config.verify"])
    assert rc == 0, err


def test_legacy_overrides_parse_but_warn(tmp_path, s3):
    cfg = role_config(s3.url, *ports(5), data=tmp_path)
    cfg["overrides"] = {"max_bytes_per_trace": 5000000, "metrics_generator_processors": ["span-metrics"]}
    rc, _out, err = run(["-config.file=%s" % write(tmp_path, cfg), "-config.verify"])
    assert rc == 1 and "Inline, unscoped overrides are deprecated" in err
    cfg["overrides"] = {"defaults": {"metrics_generator": {"no_such_key": 1}}}
    rc, _out, err = run(["-config.file=%s" % write(tmp_path, cfg), "-config.verify"])
    assert rc == 1 and "failed to unmarshal config:" in err and "also failed in legacy format:" in err
    assert "field no_such_key not found in type overrides.MetricsGeneratorOverrides" in err


def test_verify_reports_configuration_warnings(tmp_path, s3):
    cfg = role_config(s3.url, *ports(5), data=tmp_path)
    cfg["compactor"]["compaction"]["block_retention"] = "1m"
    rc, _out, err = run(["-config.file=%s" % write(tmp_path, cfg), "-config.verify"])
    assert rc == 1 and "CONFIGURATION WARNINGS" in err
    assert "compactor.compaction.compacted_block_timeout < storage.trace.blocklist_poll" in err


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
# running one instance (target all)
# ---------------------------------------------------------------------------

def test_serves_ports_ready_metrics_rings_and_memberlist(tmp_path, s3, procs):
    http, grpc, ml, og, oh = ports(5)
    cfg = fast(role_config(s3.url, http, grpc, ml, og, oh, data=tmp_path))
    p = procs(["-config.file=%s" % write(tmp_path, cfg), "-config.expand-env=true"], env=ENV)
    p.wait_http("http://127.0.0.1:%d/ready" % http)
    status, _h, body = http_get("http://127.0.0.1:%d/ready" % http)
    assert status == 200 and body.strip() == b"ready"
    for port in (grpc, ml, og, oh):
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
    status, headers, body = http_get("http://127.0.0.1:%d/metrics" % http)
    text = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'tempo_build_info{' in text and 'version="2.10.8"' in text
    assert 'tempo_ring_members{name="ingester",state="ACTIVE"} 1' in text
    # target all: the ingester ring is forced in-memory on the loopback
    shards = get_json("http://127.0.0.1:%d/ingester/ring" % http)["shards"]
    assert [(s["address"], s["state"]) for s in shards] == [("127.0.0.1:%d" % grpc, "ACTIVE")]
    # the compactor ring is on memberlist, so memberlist runs (with itself as the only member)
    assert len(get_json("http://127.0.0.1:%d/compactor/ring" % http)["shards"]) == 1
    assert len(get_json("http://127.0.0.1:%d/memberlist" % http)["SortedMembers"]) == 1
    assert get_json("http://127.0.0.1:%d/api/status/buildinfo" % http)["version"] == "2.10.8"
    status, _h, _b = http_get("http://127.0.0.1:%d/v1/traces" % oh, method="POST")
    assert status == 415  # the collector's OTLP/HTTP receiver wants a content type
    assert p.terminate() == 0


def test_memberlist_is_started_only_when_a_ring_uses_it(tmp_path, s3, procs):
    http, grpc, ml, og, oh = ports(5)
    cfg = fast(role_config(s3.url, http, grpc, ml, og, oh, data=tmp_path))
    cfg["compactor"]["ring"]["kvstore"]["store"] = ""  # upstream's default: an unsharded compactor
    p = procs(["-config.file=%s" % write(tmp_path, cfg), "-config.expand-env=true"], env=ENV)
    p.wait_http("http://127.0.0.1:%d/ready" % http)
    status, _h, body = http_get("http://127.0.0.1:%d/memberlist" % http)
    assert status == 200 and body == b"This instance doesn't use memberlist."
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", ml), timeout=1).close()


def test_readiness_waits_for_ingester_and_compactor_ring(tmp_path, s3, procs):
    http, grpc, ml, og, oh = ports(5)
    cfg = role_config(s3.url, http, grpc, ml, og, oh, data=tmp_path)
    cfg["compactor"]["ring"]["wait_stability_min_duration"] = "3s"
    cfg["ingester"]["lifecycler"]["min_ready_duration"] = "5s"
    p = procs(["-config.file=%s" % write(tmp_path, cfg), "-config.expand-env=true"], env=ENV)
    started = time.monotonic()
    p.wait_http("http://127.0.0.1:%d/ready" % http, status=503)
    status, _h, body = http_get("http://127.0.0.1:%d/ready" % http)
    assert status == 503 and body.startswith(b"Some services are not Running:")
    wait_until(lambda: http_get("http://127.0.0.1:%d/ready" % http)[2].startswith(b"Ingester not ready"),
               timeout=10, message="compactor running, ingester still waiting")
    _s, _h, body = http_get("http://127.0.0.1:%d/ready" % http)
    assert b"waiting for 5s after being ready" in body
    p.wait_http("http://127.0.0.1:%d/ready" % http, timeout=15)
    assert time.monotonic() - started >= 4.5


def test_flags_override_the_file(tmp_path, s3, procs):
    http, grpc, ml, og, oh = ports(5)
    other = free_port()
    cfg = fast(role_config(s3.url, http, grpc, ml, og, oh, data=tmp_path))
    p = procs(["-config.file=%s" % write(tmp_path, cfg), "-config.expand-env=true",
               "-server.http-listen-port=%d" % other], env=ENV)
    p.wait_http("http://127.0.0.1:%d/ready" % other)


# ---------------------------------------------------------------------------
# a three-instance ring (target scalable-single-binary, replication factor 3)
# ---------------------------------------------------------------------------

def test_three_instances_form_one_ring(tmp_path, s3, procs):
    nodes = [ports(5) for _ in range(3)]
    peers = [n[2] for n in nodes]
    for index, (http, grpc, ml, og, oh) in enumerate(nodes):
        data = tmp_path / ("node%d" % index)
        data.mkdir()
        cfg = fast(role_config(s3.url, http, grpc, ml, og, oh, data=data, peers=peers), name="node%d" % index)
        procs(["-config.file=%s" % write(data, cfg), "-config.expand-env=true"], env=ENV)
    for http, grpc, *_rest in nodes:
        url = "http://127.0.0.1:%d" % http
        wait_until(lambda u=url: http_get(u + "/ready")[0] == 200, timeout=30, message=url + "/ready")
        wait_until(lambda u=url: len(get_json(u + "/memberlist")["SortedMembers"]) == 3, timeout=20,
                   message=url + " sees three memberlist members")
        for ring in ("ingester", "metrics-generator", "compactor"):
            shards = get_json("%s/%s/ring" % (url, ring))["shards"]
            assert sorted(s["id"] for s in shards) == ["node0", "node1", "node2"], (ring, shards)
            assert {s["state"] for s in shards} == {"ACTIVE"}
        addresses = sorted(s["address"] for s in get_json(url + "/ingester/ring")["shards"])
        assert addresses == sorted("127.0.0.1:%d" % n[1] for n in nodes)
        _s, _h, body = http_get(url + "/metrics")
        assert 'tempo_memberlist_client_cluster_members_count 3' in body.decode()


def test_ring_changes_after_startup_keep_an_instance_ready(tmp_path, s3, procs):
    (h1, g1, m1, o1, p1), (h2, g2, m2, o2, p2) = ports(5), ports(5)
    started = []
    for index, (http, grpc, ml, og, oh) in enumerate([(h1, g1, m1, o1, p1), (h2, g2, m2, o2, p2)]):
        data = tmp_path / ("node%d" % index)
        data.mkdir()
        cfg = fast(role_config(s3.url, http, grpc, ml, og, oh, data=data, peers=[m1, m2]), name="node%d" % index)
        cfg["compactor"]["ring"]["wait_stability_min_duration"] = "2s"
        started.append(procs(["-config.file=%s" % write(data, cfg), "-config.expand-env=true"], env=ENV))
    url = "http://127.0.0.1:%d" % h1
    started[0].wait_http(url + "/ready", timeout=30)
    wait_until(lambda: len(get_json(url + "/compactor/ring")["shards"]) == 2, timeout=20, message="two compactors")
    assert started[1].terminate() == 0
    wait_until(lambda: len(get_json(url + "/compactor/ring")["shards"]) == 1, timeout=20, message="one compactor")
    # the stability wait belongs to the compactor's start only
    assert http_get(url + "/ready")[0] == 200


def test_other_cluster_label_is_not_a_member(tmp_path, s3, procs):
    (h1, g1, m1, o1, p1), (h2, g2, m2, o2, p2) = ports(5), ports(5)
    for index, (http, grpc, ml, og, oh, label) in enumerate([(h1, g1, m1, o1, p1, "tempo"),
                                                              (h2, g2, m2, o2, p2, "other")]):
        data = tmp_path / ("node%d" % index)
        data.mkdir()
        cfg = fast(role_config(s3.url, http, grpc, ml, og, oh, data=data, peers=[m1, m2]), name="node%d" % index)
        cfg["memberlist"]["cluster_label"] = label
        procs(["-config.file=%s" % write(data, cfg), "-config.expand-env=true"], env=ENV)
    url = "http://127.0.0.1:%d" % h1
    wait_until(lambda: http_get(url + "/ready")[0] == 200, timeout=30, message="node0 ready")
    time.sleep(2.5)
    assert len(get_json(url + "/memberlist")["SortedMembers"]) == 1


def test_scalable_mode_needs_the_frontend_address(tmp_path, s3):
    http, grpc, ml, og, oh = ports(5)
    cfg = role_config(s3.url, http, grpc, ml, og, oh, data=tmp_path, peers=[ml])
    del cfg["querier"]
    rc, _out, err = run(["-config.file=%s" % write(tmp_path, cfg), "-config.expand-env=true"], env=ENV)
    assert rc == 1 and "error initialising module: querier: frontend worker address not specified" in err


# ---------------------------------------------------------------------------
# refusing to start
# ---------------------------------------------------------------------------

def test_unknown_target_fails(tmp_path, s3):
    cfg = role_config(s3.url, *ports(5), data=tmp_path)
    cfg["target"] = "live-stores"
    rc, _out, err = run(["-config.file=%s" % write(tmp_path, cfg), "-config.expand-env=true"], env=ENV)
    assert rc == 1 and "failed to init module services: unrecognised module name: live-stores" in err


def test_missing_bucket_refuses_to_start(tmp_path, s3):
    cfg = role_config(s3.url, *ports(5), data=tmp_path, bucket="no-such-bucket")
    rc, _out, err = run(["-config.file=%s" % write(tmp_path, cfg), "-config.expand-env=true"], env=ENV)
    assert rc == 1 and "unexpected error from ListObjects on no-such-bucket" in err


def test_wrong_secret_refuses_to_start(tmp_path, s3):
    cfg = role_config(s3.url, *ports(5), data=tmp_path)
    # without -config.expand-env the secret is the literal ${S3_SECRET_KEY}
    rc, _out, err = run(["-config.file=%s" % write(tmp_path, cfg)], env=ENV)
    assert rc == 1 and BUCKET in err


def test_ring_without_instance_address_needs_its_interface(tmp_path, s3):
    cfg = role_config(s3.url, *ports(5), data=tmp_path)
    del cfg["compactor"]["ring"]["instance_addr"]
    cfg["compactor"]["ring"]["instance_interface_names"] = ["nosuchif0"]
    rc, _out, err = run(["-config.file=%s" % write(tmp_path, cfg), "-config.expand-env=true"], env=ENV)
    assert rc == 1 and "no useable address found for interfaces [nosuchif0]" in err


def test_invalid_receiver_key_fails_the_distributor_not_verify(tmp_path, s3):
    cfg = role_config(s3.url, *ports(5), data=tmp_path)
    cfg["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["listen"] = "0.0.0.0:4317"
    path = write(tmp_path, cfg)
    rc, _out, err = run(["-config.file=" + path, "-config.expand-env=true", "-config.verify"], env=ENV)
    assert rc == 0, err
    rc, _out, err = run(["-config.file=" + path, "-config.expand-env=true"], env=ENV)
    assert rc == 1 and "error initialising module: distributor" in err
    assert "'protocols.grpc' has invalid keys: listen" in err


def test_advertise_addr_must_be_an_ip(tmp_path, s3):
    cfg = role_config(s3.url, *ports(5), data=tmp_path)
    cfg["memberlist"]["advertise_addr"] = "tempo-node1"
    rc, _out, err = run(["-config.file=%s" % write(tmp_path, cfg), "-config.expand-env=true"], env=ENV)
    assert rc == 1 and "Failed to parse advertise address" in err


def test_port_in_use_fails(tmp_path, s3):
    http, grpc, ml, og, oh = ports(5)
    cfg = role_config(s3.url, http, grpc, ml, og, oh, data=tmp_path)
    with socket.socket() as blocker:
        blocker.bind(("0.0.0.0", grpc))
        blocker.listen(1)
        rc, _out, err = run(["-config.file=%s" % write(tmp_path, cfg), "-config.expand-env=true"], env=ENV)
    assert rc == 1 and "error initialising module: server" in err and "bind" in err


# ---------------------------------------------------------------------------
# traces: OTLP in (gRPC and HTTP), query API out, kept across a restart
# ---------------------------------------------------------------------------

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def trace_request(trace_id=TRACE_ID, span_id="00f067aa0ba902b7", name="verify-span", service="o11y-verify"):
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "verify"}, "spans": [{
            "traceId": trace_id, "spanId": span_id, "name": name, "kind": 2,
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000500000000",
            "attributes": [{"key": "http.method", "value": {"stringValue": "GET"}}],
            "status": {"code": 1}}]}]}]}


def test_parse_trace_id_pads_and_rejects():
    from o11y_standins.tempo import parse_trace_id
    assert parse_trace_id("abc") == "0" * 29 + "abc"
    assert parse_trace_id(TRACE_ID.upper()) == TRACE_ID
    with pytest.raises(ValueError):
        parse_trace_id("x1")
    with pytest.raises(ValueError):
        parse_trace_id("1" * 33)


def test_traces_flow_from_otlp_grpc_and_http_to_the_query_api(tmp_path, s3, procs):
    http, grpc, ml, og, oh = ports(5)
    cfg = fast(role_config(s3.url, http, grpc, ml, og, oh, data=tmp_path))
    conf = write(tmp_path, cfg)
    p = procs(["-config.file=%s" % conf, "-config.expand-env=true"], env=ENV)
    p.wait_http("http://127.0.0.1:%d/ready" % http)
    base = "http://127.0.0.1:%d" % http

    status, _h, body = http_get(base + "/api/traces/" + TRACE_ID)
    assert (status, body) == (404, b"trace not found")
    assert http_get(base + "/api/traces/zz")[0] == 400

    reply = grpc_h2c.call("127.0.0.1:%d" % og, "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                          otlp.encode("traces", trace_request()), compress=True)
    assert reply == b""
    with pytest.raises(grpc_h2c.GrpcError) as err:
        grpc_h2c.call("127.0.0.1:%d" % og, "/x.Y/Z", b"")
    assert err.value.status == grpc_h2c.UNIMPLEMENTED
    other = trace_request(span_id="1111111111111111", name="second")
    status, _b = post("http://127.0.0.1:%d/v1/traces" % oh, json.dumps(other).encode(),
                      {"Content-Type": "application/json"})
    assert status == 200

    doc = get_json(base + "/api/traces/" + TRACE_ID)
    spans = [s for b in doc["batches"] for sc in b["scopeSpans"] for s in sc["spans"]]
    assert sorted(s["name"] for s in spans) == ["second", "verify-span"]
    first = [s for s in spans if s["name"] == "verify-span"][0]
    import base64
    assert base64.b64decode(first["traceId"]).hex() == TRACE_ID  # gogo jsonpb writes bytes as base64
    assert first["kind"] == "SPAN_KIND_SERVER" and first["status"]["code"] == "STATUS_CODE_OK"
    assert doc["batches"][0]["resource"]["attributes"][0] == {"key": "service.name",
                                                              "value": {"stringValue": "o11y-verify"}}
    v2 = get_json(base + "/api/v2/traces/" + TRACE_ID)
    assert len(v2["trace"]["resourceSpans"]) == 2
    status, headers, body = http_get(base + "/api/traces/" + TRACE_ID, headers={"Accept": "application/protobuf"})
    assert status == 200 and len(otlp.decode("traces", body)["resourceSpans"]) == 2
    _s, _h, metrics = http_get(base + "/metrics")
    assert 'tempo_distributor_spans_received_total{tenant="single-tenant"} 2' in metrics.decode()

    assert p.terminate() == 0  # a restart keeps what was received
    p = procs(["-config.file=%s" % conf, "-config.expand-env=true"], env=ENV)
    p.wait_http(base + "/ready")
    assert len(get_json(base + "/api/traces/" + TRACE_ID)["batches"]) == 2


def test_multitenant_traces_need_and_separate_tenants(tmp_path, s3, procs):
    http, grpc, ml, og, oh = ports(5)
    cfg = fast(role_config(s3.url, http, grpc, ml, og, oh, data=tmp_path))
    cfg["multitenancy_enabled"] = True
    p = procs(["-config.file=%s" % write(tmp_path, cfg), "-config.expand-env=true"], env=ENV)
    base = "http://127.0.0.1:%d" % http
    p.wait_http(base + "/ready")
    method = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    with pytest.raises(grpc_h2c.GrpcError) as err:
        grpc_h2c.call("127.0.0.1:%d" % og, method, otlp.encode("traces", trace_request()))
    assert err.value.status == grpc_h2c.UNAUTHENTICATED
    grpc_h2c.call("127.0.0.1:%d" % og, method, otlp.encode("traces", trace_request()), {"X-Scope-OrgID": "team-a"})
    assert http_get(base + "/api/traces/" + TRACE_ID)[0] == 401
    assert http_get(base + "/api/traces/" + TRACE_ID, headers={"X-Scope-OrgID": "team-b"})[0] == 404
    assert http_get(base + "/api/traces/" + TRACE_ID, headers={"X-Scope-OrgID": "team-a"})[0] == 200
