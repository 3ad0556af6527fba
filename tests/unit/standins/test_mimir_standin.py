# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Mimir stand-in run as a subprocess on 127.0.0.1 against an S3Server."""

from __future__ import annotations

import base64
import functools
import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

STANDINS = Path(__file__).resolve().parents[2] / "standins"
if str(STANDINS) not in sys.path:
    sys.path.insert(0, str(STANDINS))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from o11y_standins import framework as fw  # noqa: E402
from o11y_standins.mimir import decode_alert_config, decode_rule_group, labels_fingerprint  # noqa: E402
from o11y_standins.s3server import S3Server  # noqa: E402
from o11y_standins.testing import StandinProcess, free_port, http_get, wait_until  # noqa: E402

ACCESS = "o11y-root"
SECRET = "mimir-test-secret-key"
BUCKETS = ("mimir-blocks", "mimir-ruler", "mimir-alertmanager")


@pytest.fixture
def s3():
    server = S3Server(access_key=ACCESS, secret_key=SECRET)
    server.start()
    yield server
    server.stop()


def make_bucket(server, *names):
    client = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=ACCESS,
                          aws_secret_access_key=SECRET, config=Config(s3={"addressing_style": "path"}))
    for name in names:
        client.create_bucket(Bucket=name)


@pytest.fixture
def procs(start_standin):
    return functools.partial(start_standin, "mimir")


def config(tmp_path, s3_url, secret="${S3_SECRET_KEY}", **over):
    ports = {"http": free_port(), "grpc": free_port(), "memberlist": free_port()}
    fallback = tmp_path / "fallback.yml"
    fallback.write_text("route:\n  receiver: default\nreceivers:\n  - name: default\n")
    data = tmp_path / "data"
    cfg = {
        "target": "all",
        "multitenancy_enabled": False,
        "usage_stats": {"enabled": False},
        "server": {"http_listen_address": "127.0.0.1", "http_listen_port": ports["http"],
                   "grpc_listen_address": "127.0.0.1", "grpc_listen_port": ports["grpc"], "log_level": "info"},
        "common": {"storage": {"backend": "s3", "s3": {
            "endpoint": s3_url.split("://", 1)[1], "region": "us-east-1", "access_key_id": ACCESS,
            "secret_access_key": secret, "insecure": True}}},
        "blocks_storage": {"s3": {"bucket_name": "mimir-blocks"}, "tsdb": {"dir": str(data / "tsdb")},
                           "bucket_store": {"sync_dir": str(data / "tsdb-sync")}},
        "ruler_storage": {"s3": {"bucket_name": "mimir-ruler"}},
        "alertmanager_storage": {"s3": {"bucket_name": "mimir-alertmanager"}},
        "activity_tracker": {"filepath": str(data / "metrics-activity.log")},
        "memberlist": {"bind_addr": ["127.0.0.1"], "bind_port": ports["memberlist"], "join_members": []},
        "ingester": {"ring": {"kvstore": {"store": "memberlist"}, "instance_addr": "127.0.0.1",
                              "replication_factor": 1}},
        "store_gateway": {"sharding_ring": {"replication_factor": 1}},
        "compactor": {"data_dir": str(data / "compactor")},
        "ruler": {"rule_path": str(data / "ruler"), "alertmanager_url": "http://127.0.0.1/alertmanager"},
        "alertmanager": {"data_dir": str(data / "alertmanager"), "fallback_config_file": str(fallback),
                         "external_url": "http://127.0.0.1/alertmanager", "sharding_ring": {"replication_factor": 1}},
        "limits": {"compactor_blocks_retention_period": "30d"},
    }
    for path, value in over.items():
        cur = cfg
        keys = path.split("__")
        for k in keys[:-1]:
            cur = cur.setdefault(k, {})
        cur[keys[-1]] = value
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path, ports


ENV = {"S3_SECRET_KEY": SECRET, "O11Y_STANDIN_BUCKET_WAIT": "0"}


def run(args, env=None, timeout=30):
    p = StandinProcess(["mimir"] + list(args), env=env)
    try:
        rc = p.run(timeout=timeout)
        return rc, p.stdout, p.stderr
    finally:
        p.close()


# -- CLI ---------------------------------------------------------------------

def test_version():
    rc, out, _err = run(["-version"])
    assert rc == 0
    assert out.startswith("Mimir, version ")


def test_unknown_flag_exits_2():
    rc, _out, err = run(["-no.such-flag=1"])
    assert rc == 2
    assert "flag provided but not defined: -no.such-flag" in err


def test_bad_flag_value_exits_2():
    rc, _out, err = run(["-server.http-listen-port=abc"])
    assert rc == 2
    assert 'invalid value "abc" for flag -server.http-listen-port' in err


def test_help_lists_flags():
    rc, out, _err = run(["-help"])
    assert rc == 2
    assert "-config.expand-env" in out and "-target" in out


def test_modules_validates_and_lists(tmp_path, s3):
    path, _ports = config(tmp_path, s3.url)
    rc, out, err = run(["-modules", "-config.file=%s" % path])
    assert rc == 0, err
    assert "ingester *" in out and "Modules marked with * are included in target All." in out


# -- strict configuration ----------------------------------------------------

@pytest.mark.parametrize("key,path", [
    ("server__no_such_key", "server.no_such_key"),
    ("memberlist__join", "memberlist.join"),  # the flag name is not a YAML key
    ("limits__ingestion_rates", "limits.ingestion_rates"),
    ("ingester__ring__kvstore__stores", "ingester.ring.kvstore.stores"),
    ("common__storage__s3__bucketname", "common.storage.s3.bucketname"),
])
def test_unknown_keys_rejected(tmp_path, s3, key, path):
    cfg, _ports = config(tmp_path, s3.url, **{key: 1})
    rc, _out, err = run(["-modules", "-config.file=%s" % cfg])
    assert rc == 1
    assert "error loading config from %s" % cfg in err
    assert path in err and path.rsplit(".", 1)[1] in err


def test_misplaced_key_rejected(tmp_path, s3):
    # retention belongs to limits, not to compactor
    cfg, _ports = config(tmp_path, s3.url, compactor__compactor_blocks_retention_period="30d")
    rc, _out, err = run(["-modules", "-config.file=%s" % cfg])
    assert rc == 1
    assert "field compactor_blocks_retention_period not found in type compactor.Config" in err


def test_wrong_type_rejected(tmp_path, s3):
    cfg, _ports = config(tmp_path, s3.url, server__http_listen_port="nine")
    rc, _out, err = run(["-modules", "-config.file=%s" % cfg])
    assert rc == 1
    assert "server.http_listen_port" in err


def test_validation_errors(tmp_path, s3):
    cfg, _ports = config(tmp_path, s3.url, ingester__ring__replication_factor=0)
    rc, _out, err = run(["-modules", "-config.file=%s" % cfg])
    assert rc == 1 and "error validating config" in err and "replication factor" in err
    cfg, _ports = config(tmp_path, s3.url, ruler_storage__s3__bucket_name="mimir-blocks")
    rc, _out, err = run(["-modules", "-config.file=%s" % cfg])
    assert rc == 1 and "same bucket mimir-blocks" in err


def test_missing_config_file(tmp_path):
    rc, _out, err = run(["-config.file=%s" % (tmp_path / "nope.yml")])
    assert rc == 1 and "no such file or directory" in err


# -- running -------------------------------------------------------------------

def _listening(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_serves_ready_metrics_and_ports(tmp_path, s3, procs):
    make_bucket(s3, *BUCKETS)
    cfg, ports = config(tmp_path, s3.url)
    p = procs(["-config.file=%s" % cfg, "-config.expand-env=true", "-target=all"], env=ENV)
    base = "http://127.0.0.1:%d" % ports["http"]
    p.wait_http(base + "/ready")
    assert _listening(ports["grpc"]) and _listening(ports["memberlist"])
    status, _h, body = http_get(base + "/metrics")
    assert status == 200
    assert b'mimir_build_info{' in body and b'version="3.1.1"' in body
    status, _h, body = http_get(base + "/memberlist")
    assert status == 200 and b"this node" in body
    assert (tmp_path / "data" / "metrics-activity.log").exists()
    assert (tmp_path / "data" / "tsdb").is_dir()
    assert p.terminate() == 0


def test_refuses_to_start_without_bucket(tmp_path, s3):
    make_bucket(s3, "mimir-blocks", "mimir-ruler")
    cfg, _ports = config(tmp_path, s3.url)
    rc, _out, err = run(["-config.file=%s" % cfg, "-config.expand-env=true"], env=ENV)
    assert rc == 1
    assert "mimir-alertmanager" in err


def test_secret_not_expanded_without_expand_env(tmp_path, s3):
    make_bucket(s3, *BUCKETS)
    cfg, _ports = config(tmp_path, s3.url)
    rc, _out, err = run(["-config.file=%s" % cfg], env=ENV)
    assert rc == 1
    assert "mimir-blocks" in err  # the literal ${S3_SECRET_KEY} does not authenticate


def test_port_in_use_fails(tmp_path, s3):
    make_bucket(s3, *BUCKETS)
    cfg, ports = config(tmp_path, s3.url)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports["grpc"]))
        busy.listen(1)
        rc, _out, err = run(["-config.file=%s" % cfg, "-config.expand-env=true"], env=ENV)
    assert rc == 1 and "address already in use" in err


def test_missing_fallback_config_fails(tmp_path, s3):
    make_bucket(s3, *BUCKETS)
    cfg, _ports = config(tmp_path, s3.url, alertmanager__fallback_config_file=str(tmp_path / "missing.yml"))
    rc, _out, err = run(["-config.file=%s" % cfg, "-config.expand-env=true"], env=ENV)
    assert rc == 1 and "fallback" in err


# -- the Alertmanager and ruler APIs -------------------------------------------------------------

# Quick readiness and notification timing; group_wait below the cap is honoured as configured.
FAST = dict(ENV, O11Y_STANDIN_MIMIR_READY_DELAY="0.1", O11Y_STANDIN_MIMIR_GROUP_INTERVAL_CAP="1")
TOKEN = "Zq81TokenInPath"  # an OnCall integration URL carries its token like this


def s3_client(server):
    return boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=ACCESS,
                        aws_secret_access_key=SECRET, config=Config(s3={"addressing_style": "path"}))


def call(base, method, path, body=None, tenant="team-a", content_type="application/yaml"):
    headers = {"X-Scope-OrgID": tenant} if tenant else {}
    data = None
    if body is not None:
        data = (json.dumps(body) if isinstance(body, (list, dict)) else body).encode()
        headers["Content-Type"] = "application/json" if isinstance(body, (list, dict)) else content_type
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def receiver():
    """A local webhook receiver: ``receiver.url``, ``receiver.calls`` [(path, headers, JSON)], ``receiver.status``."""
    calls, lock = [], threading.Lock()
    state = {"status": 200}

    def app(environ, start_response):
        from werkzeug.wrappers import Request, Response
        req = Request(environ)
        with lock:
            calls.append((req.path, dict(req.headers), json.loads(req.get_data() or b"null")))
        return Response("ok", status=state["status"])(environ, start_response)

    service = fw.HTTPService("receiver", "127.0.0.1:0", app).start()
    service.calls = calls
    service.state = state
    yield service
    service.stop()


def start_mimir(tmp_path, s3, procs, env=FAST, **over):
    make_bucket(s3, *BUCKETS)
    cfg, ports = config(tmp_path, s3.url, **over)
    p = procs(["-config.file=%s" % cfg, "-config.expand-env=true"], env=env)
    base = "http://127.0.0.1:%d" % ports["http"]
    p.wait_http(base + "/ready")
    return p, base, ports


AM_CONFIG = """route:
  receiver: default
  group_by: [alertname]
  group_wait: 1s
receivers:
  - name: default
    webhook_configs:
      - url: {url}/default/{token}
"""


def am_body(config, templates=None):
    return yaml.safe_dump({"template_files": templates or {}, "alertmanager_config": config})


def test_alertmanager_config_api_and_storage(tmp_path, s3, procs):
    p, base, _ports = start_mimir(tmp_path, s3, procs, multitenancy_enabled=True)
    assert call(base, "GET", "/api/v1/alerts", tenant=None) == (401, "no org id\n")
    assert call(base, "GET", "/api/v1/alerts", tenant="a|b") == (
        422, "too many tenant IDs present in the request. max: 1 actual: 2\n")
    assert call(base, "GET", "/api/v1/alerts", tenant="a b") == (
        401, "tenant ID 'a b' contains unsupported character ' '\n")
    assert call(base, "GET", "/api/v1/alerts") == (404, "alertmanager storage object not found\n")
    config = AM_CONFIG.format(url="http://127.0.0.1:1", token=TOKEN)
    templates = {"t.tmpl": '{{ define "t" }}x{{ end }}'}
    assert call(base, "POST", "/api/v1/alerts", am_body(config, templates)) == (201, "")
    status, text = call(base, "GET", "/api/v1/alerts")
    assert status == 200 and yaml.safe_load(text) == {"template_files": templates, "alertmanager_config": config}
    assert call(base, "GET", "/api/v1/alerts", tenant="team-b")[0] == 404
    # upstream's layout: alerts/<tenant> in the alertmanager bucket, a protobuf AlertConfigDesc
    obj = s3_client(s3).get_object(Bucket="mimir-alertmanager", Key="alerts/team-a")["Body"].read()
    assert decode_alert_config(obj) == {"user": "team-a", "raw_config": config, "templates": templates}
    # a restarted Mimir reads it from the bucket
    assert p.terminate() == 0
    _p2, base, _ports = start_mimir(tmp_path, s3, procs, multitenancy_enabled=True)
    assert yaml.safe_load(call(base, "GET", "/api/v1/alerts")[1])["alertmanager_config"] == config
    assert call(base, "DELETE", "/api/v1/alerts") == (200, "")
    assert call(base, "GET", "/api/v1/alerts")[0] == 404
    assert call(base, "DELETE", "/api/v1/alerts") == (200, "")  # also when there is none
    assert call(base, "PUT", "/api/v1/alerts", "x")[0] == 405


def test_alertmanager_config_validation(tmp_path, s3, procs):
    _p, base, _ports = start_mimir(tmp_path, s3, procs)
    good = AM_CONFIG.format(url="http://127.0.0.1:1", token=TOKEN)
    cases = [
        ("alertmanager_config: [1]\n", "error marshalling YAML Alertmanager config: yaml: unmarshal errors"),
        ("alertmanager_config: 'x: [\n", "error marshalling YAML Alertmanager config: yaml:"),
        (am_body(""), "error validating Alertmanager config: configuration provided is empty, if you'd like to "
                      "remove your configuration please use the delete configuration endpoint"),
        (am_body(good.replace("receiver: default\n  group_by", "receiver: nobody\n  group_by")),
         'error validating Alertmanager config: undefined receiver "nobody" used in route'),
        (am_body(good.replace("  group_wait: 1s", "  group_wait: 1s\n  unknown: 1")),
         "error validating Alertmanager config: yaml: unmarshal errors:\n  line 5: field unknown not found in type "
         "config.plain"),
        (am_body(good + "  - name: default\n"), 'notification config name "default" is not unique'),
        (am_body(good.replace("group_wait: 1s", "group_wait: 1 second")), 'not a valid duration string: "1 second"'),
        (am_body(good.replace("route:\n", "route:\n  matchers: ['a=\"b\"']\n")),
         "root route must not have any matchers"),
        (am_body(good.replace("      - url: http", "      - url_file: /etc/hook\n        x: http")),
         "field x not found in type config.plain"),
        (am_body(good.replace("      - url: http://127.0.0.1:1/default/" + TOKEN, "      - url_file: /etc/hook")),
         "error validating Alertmanager config: setting Webhook url_file is not allowed"),
        (am_body(good.replace("      - url: http", "      - http_config: {proxy_url: 'http://p:3128'}\n"
                                                    "        url: http")), "setting proxy_url is not allowed"),
        (am_body(good.replace("      - url: http", "      - url: ftp")), 'unsupported scheme "ftp" for URL'),
        (am_body("templates: [../x.tmpl]\n" + good),
         'invalid template name "../x.tmpl": the template name cannot contain any path'),
        (am_body(good, {"bad.tmpl": "{{ define \"x\" }}"}), "template: bad.tmpl:1: unexpected EOF"),
        (am_body(good, {"bad.tmpl": "{{ .Status "}), "template: bad.tmpl:1: unclosed action"),
    ]
    for body, message in cases:
        status, text = call(base, "POST", "/api/v1/alerts", body)
        assert status == 400 and message in text, (body, text)
        assert text.endswith("\n")
    assert call(base, "GET", "/api/v1/alerts")[0] == 404  # nothing was stored


def test_alerts_are_routed_and_delivered_to_webhooks(tmp_path, s3, procs, receiver):
    p, base, _ports = start_mimir(tmp_path, s3, procs)
    config = f"""route:
  receiver: default
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  routes:
    - receiver: pager
      matchers: ['severity="critical"']
      continue: true
    - receiver: team
      match_re: {{team: db|web}}
receivers:
  - name: default
    webhook_configs: [{{url: "{receiver.url}/default/{TOKEN}"}}]
  - name: pager
    webhook_configs: [{{url: "{receiver.url}/pager", send_resolved: false}}]
  - name: team
    webhook_configs: [{{url: "{receiver.url}/team", max_alerts: 1}}]
"""
    assert call(base, "POST", "/api/v1/alerts", am_body(config), tenant=None) == (201, "")
    critical = {"alertname": "Down", "severity": "critical", "team": "db", "job": "mimir"}
    warning = {"alertname": "Down", "severity": "warning", "team": "web", "job": "loki"}
    other = {"alertname": "Other", "severity": "info"}
    alerts = [{"labels": critical, "annotations": {"summary": "mimir is down"}, "generatorURL": "http://ruler/x"},
              {"labels": warning, "annotations": {"summary": "loki is down"}},
              {"labels": other, "startsAt": "2024-01-01T00:00:00.5Z"}]
    assert call(base, "POST", "/alertmanager/api/v2/alerts", alerts, tenant=None) == (200, "")
    wait_until(lambda: len(receiver.calls) >= 3, timeout=10, message="three notifications")
    time.sleep(0.5)
    by_path = {path: (headers, body) for path, headers, body in receiver.calls}
    assert set(by_path) == {"/default/" + TOKEN, "/pager", "/team"}
    headers, pager = by_path["/pager"]
    assert headers["Content-Type"] == "application/json" and headers["User-Agent"].startswith("Alertmanager/")
    assert pager["version"] == "4" and pager["receiver"] == "pager" and pager["status"] == "firing"
    assert pager["groupKey"] == '{}/{severity="critical"}:{alertname="Down"}'
    assert pager["groupLabels"] == {"alertname": "Down"} and pager["truncatedAlerts"] == 0
    assert pager["externalURL"] == "http://127.0.0.1/alertmanager"
    alert = pager["alerts"][0]
    assert alert["status"] == "firing" and alert["labels"] == critical and alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["fingerprint"] == labels_fingerprint(critical) and alert["generatorURL"] == "http://ruler/x"
    assert pager["commonAnnotations"] == {"summary": "mimir is down"}
    _headers, team = by_path["/team"]  # the critical alert continues to the team route
    assert team["groupKey"] == '{}/{team=~"db|web"}:{alertname="Down"}'
    # max_alerts keeps the first alert in Alertmanager's order (by job, instance); the common labels are the kept ones
    assert len(team["alerts"]) == 1 and team["truncatedAlerts"] == 1
    assert team["alerts"][0]["labels"] == warning and team["commonLabels"] == warning
    _headers, default = by_path["/default/" + TOKEN]
    assert default["alerts"][0]["startsAt"] == "2024-01-01T00:00:00.5Z" and default["groupKey"] == \
        '{}:{alertname="Other"}'

    status, text = call(base, "GET", "/alertmanager/api/v2/alerts?filter=alertname%3D%22Down%22", tenant=None)
    listed = json.loads(text)
    assert status == 200 and sorted(a["labels"]["job"] for a in listed) == ["loki", "mimir"]
    receivers = {a["labels"]["job"]: [r["name"] for r in a["receivers"]] for a in listed}
    assert receivers == {"mimir": ["pager", "team"], "loki": ["team"]}
    assert listed[0]["status"]["state"] == "active"

    # resolving: default gets a resolved notification, pager (send_resolved: false) nothing more
    receiver.calls.clear()
    past = "2020-01-01T00:00:00Z"
    assert call(base, "POST", "/alertmanager/api/v2/alerts",
                [{"labels": other, "endsAt": past}, {"labels": critical, "endsAt": past}], tenant=None)[0] == 200
    wait_until(lambda: any(path.startswith("/default") for path, _h, _b in receiver.calls), timeout=10,
               message="a resolved notification")
    time.sleep(1.5)
    paths = sorted(path for path, _h, _b in receiver.calls)
    assert "/pager" not in paths
    resolved = next(body for path, _h, body in receiver.calls if path.startswith("/default"))
    assert resolved["status"] == "resolved" and resolved["alerts"][0]["endsAt"] == "2020-01-01T00:00:00Z"
    listed = json.loads(call(base, "GET", "/alertmanager/api/v2/alerts", tenant=None)[1])
    assert [a["labels"]["job"] for a in listed] == ["loki"]
    status, metrics = call(base, "GET", "/metrics")
    assert 'cortex_alertmanager_notifications_total{integration="webhook",user="anonymous"}' in metrics
    assert 'cortex_alertmanager_alerts_received_total{user="anonymous"} 5' in metrics
    assert p.terminate() == 0
    assert TOKEN not in p.output  # receiver URLs are never logged


def test_bad_alerts_and_failed_deliveries(tmp_path, s3, procs, receiver):
    p, base, _ports = start_mimir(tmp_path, s3, procs)
    receiver.state["status"] = 503
    config = AM_CONFIG.format(url=receiver.url, token=TOKEN)
    assert call(base, "POST", "/api/v1/alerts", am_body(config), tenant=None)[0] == 201
    assert call(base, "POST", "/alertmanager/api/v2/alerts", [{"labels": {}}], tenant=None) == (
        400, '"at least one label pair required"')
    assert call(base, "POST", "/alertmanager/api/v2/alerts", [{"labels": {"1x": "y"}}], tenant=None) == (
        400, '"invalid label set: invalid name \\"1x\\""')
    assert call(base, "POST", "/alertmanager/api/v2/alerts", "{", tenant=None)[0] == 400
    assert call(base, "POST", "/alertmanager/api/v2/alerts", [{"labels": {"alertname": "A"}}], tenant=None)[0] == 200
    wait_until(lambda: len(receiver.calls) >= 3, timeout=10, message="three attempts")  # 5xx is retried twice
    wait_until(lambda: 'cortex_alertmanager_notifications_failed_total{integration="webhook",user="anonymous"} 1'
               in call(base, "GET", "/metrics")[1], timeout=10, message="the failure counted")
    assert "Notify for alerts failed" in p.stderr and TOKEN not in p.stderr


def test_tenant_without_configuration(tmp_path, s3, procs):
    _p, base, _ports = start_mimir(tmp_path, s3, procs, multitenancy_enabled=True)
    # with a fallback configuration: the tenant runs it, and Mimir stores an empty configuration for it
    assert call(base, "GET", "/alertmanager/api/v2/alerts") == (200, "[]")
    assert yaml.safe_load(call(base, "GET", "/api/v1/alerts")[1]) == {"template_files": {},
                                                                      "alertmanager_config": ""}
    status, text = call(base, "GET", "/alertmanager/api/v2/status")
    assert status == 200 and "receiver: default" in json.loads(text)["config"]["original"]
    assert call(base, "GET", "/alertmanager/api/v2/nothing")[0] == 404


def test_tenant_without_configuration_nor_fallback(tmp_path, s3, procs):
    _p, base, _ports = start_mimir(tmp_path, s3, procs, alertmanager__fallback_config_file="")
    assert call(base, "GET", "/alertmanager/api/v2/alerts", tenant=None) == (
        404, "the Alertmanager is not configured\n")


GROUP = """name: components
interval: 60s
rules:
  - alert: ComponentDown
    expr: up == 0
    for: 300s
    labels: {severity: critical}
    annotations: {summary: "{{ $labels.job }} is down"}
  - record: job:up:sum
    expr: sum by (job) (up)
"""


def test_ruler_config_api_and_storage(tmp_path, s3, procs):
    p, base, _ports = start_mimir(tmp_path, s3, procs, multitenancy_enabled=True)
    ns = "o11y/stack checks"
    path = "/prometheus/config/v1/rules/" + quote(ns, safe="")
    assert call(base, "GET", path + "/components", tenant=None) == (401, "no org id\n")
    assert call(base, "GET", path + "/components") == (404, "group does not exist\n")
    assert call(base, "GET", "/prometheus/config/v1/rules") == (200, "{}\n")
    status, text = call(base, "POST", path, GROUP)
    assert status == 202 and json.loads(text) == {"status": "success", "data": None, "errorType": "", "error": ""}
    status, text = call(base, "GET", path + "/components")
    assert status == 200 and yaml.safe_load(text) == {
        "name": "components", "interval": "1m",
        "rules": [{"alert": "ComponentDown", "expr": "up == 0", "for": "5m", "labels": {"severity": "critical"},
                   "annotations": {"summary": "{{ $labels.job }} is down"}},
                  {"record": "job:up:sum", "expr": "sum by (job) (up)"}]}
    assert yaml.safe_load(call(base, "GET", "/prometheus/config/v1/rules")[1])[ns][0]["name"] == "components"
    assert list(yaml.safe_load(call(base, "GET", path)[1])) == [ns]
    # upstream's layout: rules/<tenant>/<base64url namespace>/<base64url group>, a protobuf RuleGroupDesc
    key = "rules/team-a/%s/%s" % (base64.urlsafe_b64encode(ns.encode()).decode(),
                                  base64.urlsafe_b64encode(b"components").decode())
    obj = s3_client(s3).get_object(Bucket="mimir-ruler", Key=key)["Body"].read()
    desc = decode_rule_group(obj)
    assert desc["namespace"] == ns and desc["user"] == "team-a" and desc["interval_ms"] == 60000
    assert desc["rules"][0]["for_ms"] == 300000 and desc["rules"][1]["record"] == "job:up:sum"

    status, text = call(base, "GET", "/prometheus/api/v1/rules")
    groups = json.loads(text)["data"]["groups"]
    assert status == 200 and [(g["file"], g["name"], g["interval"]) for g in groups] == [(ns, "components", 60.0)]
    alerting, recording = groups[0]["rules"]
    assert alerting["type"] == "alerting" and alerting["duration"] == 300.0 and alerting["state"] == "inactive"
    assert recording == dict(recording, type="recording", name="job:up:sum", query="sum by (job) (up)")
    only = json.loads(call(base, "GET", "/prometheus/api/v1/rules?type=record")[1])["data"]["groups"]
    assert [r["name"] for r in only[0]["rules"]] == ["job:up:sum"]
    assert call(base, "GET", "/prometheus/api/v1/rules?type=x") == (
        400, json.dumps({"status": "error", "data": None, "errorType": "bad_data", "error": 'not supported value "x"'}))

    # the restarted process still has it
    assert p.terminate() == 0
    _p2, base, _ports = start_mimir(tmp_path, s3, procs, multitenancy_enabled=True)
    assert call(base, "GET", path + "/components")[0] == 200
    assert call(base, "DELETE", path + "/components")[0] == 202
    assert call(base, "DELETE", path + "/components") == (404, "group does not exist\n")
    assert call(base, "DELETE", path) == (404, "group namespace does not exist\n")
    assert call(base, "POST", path, GROUP)[0] == 202
    assert call(base, "DELETE", path)[0] == 202
    assert call(base, "GET", "/prometheus/config/v1/rules") == (200, "{}\n")
    assert call(base, "PUT", path, GROUP)[0] == 405
    assert call(base, "GET", path + "/a/b")[0] == 404


def test_ruler_validation_and_limits(tmp_path, s3, procs):
    _p, base, _ports = start_mimir(tmp_path, s3, procs, limits__ruler_max_rules_per_rule_group=2,
                                   limits__ruler_max_rule_groups_per_tenant=1)
    path = "/prometheus/config/v1/rules/ns"
    cases = [
        ("name: [x]\n", "unable to decode rule group"),
        ("name: g\ninterval: 1 minute\nrules: []\n", "unable to decode rule group"),
        ("rules:\n  - record: a\n    expr: up\n", "invalid rules configuration: rule group name must not be empty"),
        ("name: g\n", "invalid rules configuration: rule group 'g' has no rules"),
        ("name: g\nsource_tenants: [b]\nrules:\n  - record: a\n    expr: up\n",
         "invalid rules configuration: rule group 'g' is a federated rule group, but rules federation is disabled"),
        ("name: g\nrules:\n  - alert: A\n    record: b\n    expr: up\n",
         "4:13: 3:12: group \"g\", rule 0, \"A\": only one of 'record' and 'alert' must be set"),
        ("name: g\nrules:\n  - expr: up\n", "group \"g\", rule 0, \"\": one of 'record' or 'alert' must be set"),
        ("name: g\nrules:\n  - alert: A\n", "group \"g\", rule 0, \"A\": field 'expr' must be set in rule"),
        ("name: g\nrules:\n  - alert: A\n    expr: sum(up\n",
         "4:11: group \"g\", rule 0, \"A\": could not parse expression: 1:4: parse error: unclosed left parenthesis"),
        ("name: g\nrules:\n  - record: a b\n    expr: up\n    for: 1m\n",
         "invalid field 'for' in recording rule, 3:13: group \"g\", rule 0, \"a b\": invalid recording rule name: a b"),
        ("name: g\nrules:\n  - alert: A\n    expr: up\n    labels: {bad-name: x}\n",
         "group \"g\", rule 0, \"A\": invalid label name: bad-name"),
        ("name: g\nrules:\n" + "  - record: a\n    expr: up\n" * 3,
         "per-user rules per rule group limit (limit: 2 actual: 3) exceeded"),
    ]
    for body, message in cases:
        status, text = call(base, "POST", path, body, tenant=None)
        assert status == 400 and message in text, (body, text)
    assert call(base, "POST", path, "name: g1\nrules:\n  - record: a\n    expr: up\n", tenant=None)[0] == 202
    # upstream counts a posted group as a new one, even when it replaces one
    assert call(base, "POST", path, "name: g1\nrules:\n  - record: a\n    expr: up\n", tenant=None) == (
        400, "per-user rule groups limit (limit: 1 actual: 2) exceeded\n")


def test_local_rule_storage_is_read_only(tmp_path, s3, procs):
    rules = tmp_path / "rules" / "anonymous"
    rules.mkdir(parents=True)
    (rules / "file.yml").write_text("groups:\n  - name: g\n    rules:\n      - record: a\n        expr: up\n")
    _p, base, _ports = start_mimir(tmp_path, s3, procs, ruler_storage={
        "backend": "local", "local": {"directory": str(tmp_path / "rules")}})
    listing = yaml.safe_load(call(base, "GET", "/prometheus/config/v1/rules", tenant=None)[1])
    assert listing == {"file.yml": [{"name": "g", "rules": [{"record": "a", "expr": "up"}]}]}
    assert call(base, "POST", "/prometheus/config/v1/rules/ns", "name: g\nrules:\n  - record: a\n    expr: up\n",
                tenant=None) == (500, "SetRuleGroup unsupported in rule local store\n")


def test_watchdog_rule_reaches_the_webhook(tmp_path, s3, procs, receiver):
    """The alert path end to end: ruler -> the tenant's Alertmanager -> webhook (Mimir -> OnCall)."""
    make_bucket(s3, *BUCKETS)
    cfg, ports = config(tmp_path, s3.url)
    base = "http://127.0.0.1:%d" % ports["http"]
    cfg_data = yaml.safe_load(cfg.read_text())
    cfg_data["ruler"]["alertmanager_url"] = base + "/alertmanager"
    cfg_data["ruler"]["external_url"] = "http://mimir.example.com/prometheus"
    cfg.write_text(yaml.safe_dump(cfg_data))
    p = procs(["-config.file=%s" % cfg, "-config.expand-env=true"], env=FAST)
    p.wait_http(base + "/ready")
    assert call(base, "POST", "/api/v1/alerts", am_body(AM_CONFIG.format(url=receiver.url, token=TOKEN)),
                tenant=None)[0] == 201
    group = "name: watchdog\ninterval: 1s\nrules:\n  - alert: Watchdog\n    expr: vector(1)\n" \
            "    labels: {severity: none}\n  - alert: Quiet\n    expr: up == 0\n"
    assert call(base, "POST", "/prometheus/config/v1/rules/o11y", group, tenant=None)[0] == 202
    wait_until(lambda: receiver.calls, timeout=15, message="the watchdog notification")
    path, _headers, body = receiver.calls[0]
    assert path == "/default/" + TOKEN and body["receiver"] == "default"
    assert body["alerts"][0]["labels"] == {"alertname": "Watchdog", "severity": "none"}
    assert body["alerts"][0]["generatorURL"].startswith("http://mimir.example.com/prometheus/graph?g0.expr=vector")
    alerts = json.loads(call(base, "GET", "/prometheus/api/v1/alerts", tenant=None)[1])["data"]["alerts"]
    assert [(a["labels"]["alertname"], a["state"]) for a in alerts] == [("Watchdog", "firing")]
    rules = json.loads(call(base, "GET", "/prometheus/api/v1/rules", tenant=None)[1])["data"]["groups"][0]["rules"]
    assert [(r["name"], r["state"], r["health"]) for r in rules] == [("Watchdog", "firing", "ok"),
                                                                     ("Quiet", "inactive", "ok")]
    assert 'cortex_prometheus_notifications_sent_total{user="anonymous"}' in call(base, "GET", "/metrics")[1]


# ---------------------------------------------------------------------------
# remote write and the Prometheus query API
# ---------------------------------------------------------------------------


def _push(mimir_api, series, tenant="team-a"):
    from o11y_standins import mimir, wire
    body = wire.snappy_encode(mimir.encode_write_request(series))
    return mimir_api("POST", "/api/v1/push", body, tenant=tenant, content_type="application/x-protobuf")


def _prom(mimir_api, path, tenant="team-a", **params):
    from urllib.parse import urlencode
    status, _headers, text = mimir_api("GET", "/prometheus/api/v1/" + path + "?" + urlencode(params, doseq=True),
                                       tenant=tenant)
    return status, json.loads(text)


def test_remote_write_then_query_per_tenant(mimir_api):
    now = int(time.time() * 1000)
    assert _push(mimir_api, [({"__name__": "o11y_up", "job": "a"}, [(now - 20000, 0.0), (now - 10000, 1.0)]),
                             ({"__name__": "o11y_up", "job": "b"}, [(now - 10000, 2.5)]),
                             ({"__name__": "other", "job": "a"}, [(now - 10000, 7.0)])])[0] == 200
    assert _push(mimir_api, [({"__name__": "o11y_up", "job": "z"}, [(now, 9.0)])], tenant="team-b")[0] == 200
    status, body = _prom(mimir_api, "query", query='o11y_up{job=~"a|b"}', time=now / 1000.0)
    assert status == 200 and body["data"]["resultType"] == "vector"
    assert [(r["metric"]["job"], r["value"][1]) for r in body["data"]["result"]] == [("a", "1"), ("b", "2.5")]
    assert body["data"]["result"][0]["value"][0] == pytest.approx(now / 1000.0)
    # POST form, {__name__=...}, != and !~, the 5 minute lookback
    status, _, text = mimir_api("POST", "/prometheus/api/v1/query",
                                "query=%7B__name__%3D%22o11y_up%22%2Cjob%21%3D%22a%22%7D", tenant="team-a",
                                content_type="application/x-www-form-urlencoded")
    assert [r["metric"]["job"] for r in json.loads(text)["data"]["result"]] == ["b"]
    assert _prom(mimir_api, "query", query="o11y_up", time=(now + 6 * 60000) / 1000.0)[1]["data"]["result"] == []
    # tenants are separate
    assert [r["metric"]["job"] for r in _prom(mimir_api, "query", tenant="team-b", query="o11y_up")[1]["data"]
            ["result"]] == ["z"]
    status, body = _prom(mimir_api, "query_range", query='o11y_up{job="a"}', start=(now - 20000) / 1000.0,
                         end=now / 1000.0, step="10s")
    assert body["data"]["resultType"] == "matrix"
    assert [v[1] for v in body["data"]["result"][0]["values"]] == ["0", "1", "1"]
    assert _prom(mimir_api, "series", **{"match[]": "o11y_up"})[1]["data"] == [
        {"__name__": "o11y_up", "job": "a"}, {"__name__": "o11y_up", "job": "b"}]
    assert _prom(mimir_api, "labels")[1]["data"] == ["__name__", "job"]
    assert _prom(mimir_api, "label/__name__/values")[1]["data"] == ["o11y_up", "other"]
    assert _prom(mimir_api, "query", query="vector(1)")[1]["data"]["result"][0]["metric"] == {}
    assert _prom(mimir_api, "query", query="42")[1]["data"]["resultType"] == "scalar"
    metrics = mimir_api("GET", "/metrics")[2]
    assert 'cortex_distributor_received_samples_total{user="team-a"} 4' in metrics


def test_query_api_errors(mimir_api):
    status, body = _prom(mimir_api, "query", query='up{job="a"')
    assert status == 400 and body["errorType"] == "bad_data"
    assert body["error"].startswith('invalid parameter "query": 1:')
    assert _prom(mimir_api, "query", query="")[1]["error"] == \
        'invalid parameter "query": 1:1: parse error: no expression found in input'
    assert _prom(mimir_api, "query", query="{}")[1]["error"].endswith(
        "vector selector must contain at least one non-empty matcher")
    assert _prom(mimir_api, "query", query="nosuchfn(up)")[1]["error"].endswith(
        'unknown function with name "nosuchfn"')
    assert _prom(mimir_api, "query", query="up", time="yesterday")[1]["error"] == \
        'invalid parameter "time": cannot parse "yesterday" to a valid timestamp'
    status, body = _prom(mimir_api, "query", query="rate(up[5m])")
    assert status == 422 and "does not evaluate" in body["error"]
    assert _prom(mimir_api, "query_range", query="up", start=10, end=5, step=1)[1]["error"] == \
        'invalid parameter "end": end timestamp must not be before start time'
    assert _prom(mimir_api, "query_range", query="up", start=0, end=5, step=0)[0] == 400
    assert _prom(mimir_api, "series")[1]["error"] == "no match[] parameter provided"
    assert mimir_api("GET", "/prometheus/api/v1/query?query=up", tenant=None)[:1] == (401,)


def test_push_errors(mimir_api):
    status, _, text = mimir_api("POST", "/api/v1/push", b"\xff\xff\xff\xff", content_type="application/x-protobuf")
    assert status == 400
    assert mimir_api("POST", "/api/v1/push", b"", tenant=None)[0] == 401
    now = int(time.time() * 1000)
    assert _push(mimir_api, [({"__name__": "m"}, [(now, 1.0)])])[0] == 200
    status, _, text = _push(mimir_api, [({"__name__": "m"}, [(now - 1000, 1.0)]), ({"__name__": "n"}, [(now, 2.0)])])
    assert status == 400 and "err-mimir-sample-out-of-order" in text
    assert _prom(mimir_api, "query", query="n")[1]["data"]["result"][0]["value"][1] == "2"  # the rest is stored
    status, _, text = _push(mimir_api, [({"job": "x"}, [(now, 1.0)])])
    assert status == 400 and "err-mimir-missing-metric-name" in text
    assert _push(mimir_api, [({"__name__": "m"}, [(now, 1.0)])])[0] == 200  # a resent sample is a duplicate


def test_anonymous_tenant_without_multitenancy(make_mimir_server):
    from o11y_standins import mimir, wire
    server = make_mimir_server(multitenancy=False)
    now = int(time.time() * 1000)
    body = wire.snappy_encode(mimir.encode_write_request([({"__name__": "m"}, [(now, 3.0)])]))
    req = urllib.request.Request(server.url + "/api/v1/push", data=body, method="POST",
                                 headers={"X-Scope-OrgID": "ignored"})
    assert urllib.request.urlopen(req, timeout=5).status == 200
    assert "anonymous" in server.server.series
    with urllib.request.urlopen(server.url + "/prometheus/api/v1/query?query=m", timeout=5) as resp:
        assert json.loads(resp.read())["data"]["result"][0]["value"][1] == "3"


def test_snappy_and_write_request_codec_round_trip():
    from o11y_standins import mimir, wire
    series = [({"__name__": "a", "x": "é"}, [(1, 0.5), (2, -1.0)]), ({"__name__": "b"}, [])]
    data = mimir.encode_write_request(series)
    assert wire.snappy_decode(wire.snappy_encode(data * 3000)) == data * 3000
    assert mimir.decode_write_request(data) == series


def test_alert_rule_over_pushed_samples(make_mimir_server):
    from o11y_standins import mimir
    server = make_mimir_server(ruler={"evaluation_interval": "1s", "poll_interval": "1s"})
    now = time.time()
    server.server.tenant_series("team-a").append({"__name__": "queue_depth", "q": "x"}, [(int(now * 1000), 50.0)])
    rules = server.server.ruler._query("team-a", 'queue_depth{q="x"}', now + 1)
    assert rules == [({"q": "x"}, 50.0)]
    assert server.server.ruler._query("team-a", "sum(queue_depth)", now) == []
    assert mimir.promql.problem("up{") is not None
