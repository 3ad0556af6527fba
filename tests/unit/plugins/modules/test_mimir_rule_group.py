# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""o11y.stack.mimir_rule_group against the Mimir stand-in served over HTTP."""

from __future__ import annotations

import base64

import pytest
import yaml
from ansible_collections.o11y.stack.plugins.modules import mimir_rule_group
from o11y_standins.mimir import decode_rule_group

RULES = [
    {"alert": "ComponentDown", "expr": 'up{job=~"mimir|loki"} == 0', "for": "5m",
     "labels": {"severity": "critical"}, "annotations": {"summary": "{{ $labels.job }} is down"}},
    {"record": "job:up:sum", "expr": "sum by (job) (up)"},
]
EXPECTED = {"name": "components", "interval": "1m", "rules": [
    {"alert": "ComponentDown", "expr": 'up{job=~"mimir|loki"} == 0', "for": "5m",
     "labels": {"severity": "critical"}, "annotations": {"summary": "{{ $labels.job }} is down"}},
    {"record": "job:up:sum", "expr": "sum by (job) (up)"},
]}


@pytest.fixture
def run(run_module, mimir_params):
    def _run(check_mode=False, diff=True, **options):
        args = dict(mimir_params, namespace="o11y-stack", name="components")
        args.update(options)
        return run_module(mimir_rule_group.main, args, check_mode=check_mode, diff=diff)

    return _run


def stored(mimir_api, namespace="o11y-stack", group="components", tenant="team-a"):
    from urllib.parse import quote
    status, _headers, text = mimir_api("GET", "/prometheus/config/v1/rules/%s/%s" % (quote(namespace, safe=""),
                                                                                    quote(group, safe="")),
                                       tenant=tenant)
    if status == 404:
        return None
    assert status == 200, text
    return yaml.safe_load(text)


def b64(text):
    return base64.urlsafe_b64encode(text.encode()).decode()


# ---------------------------------------------------------------------------
# create / idempotence / update / delete
# ---------------------------------------------------------------------------


def test_create_then_no_op(run, mimir_api, boto3_client):
    result = run(interval="60s", rules=RULES)
    assert result.exit_code == 0 and result["changed"] is True
    assert result["diff"] == {"before": {}, "after": EXPECTED}
    assert result["group"] == EXPECTED
    assert stored(mimir_api) == EXPECTED
    # persisted like upstream: rules/<tenant>/<base64url namespace>/<base64url group>, protobuf RuleGroupDesc
    key = "rules/team-a/%s/%s" % (b64("o11y-stack"), b64("components"))
    desc = decode_rule_group(boto3_client.get_object(Bucket="mimir-ruler", Key=key)["Body"].read())
    assert desc["interval_ms"] == 60000 and desc["rules"][0]["for_ms"] == 300000 and desc["user"] == "team-a"

    again = run(interval="60s", rules=RULES)
    assert again["changed"] is False and again["diff"]["before"] == again["diff"]["after"] == EXPECTED


def test_equivalent_spellings_are_no_change(run):
    run(interval="1m", rules=RULES)
    spelled = [dict(RULES[0], **{"for": "300s", "keep_firing_for": "0s"}), dict(RULES[1], labels={})]
    assert run(interval="60s", rules=spelled)["changed"] is False
    assert run(interval="0s", rules=RULES)["changed"] is True  # the ruler's default interval instead of 1m


def test_label_values_are_strings(run, mimir_api):
    rules = [{"alert": "A", "expr": "vector(1)", "labels": {"tier": 1, "page": True}}]
    assert run(rules=rules)["changed"] is True
    assert stored(mimir_api)["rules"][0]["labels"] == {"page": "true", "tier": "1"}
    assert run(rules=rules)["changed"] is False


def test_update_diff(run, mimir_api):
    run(interval="1m", rules=RULES)
    changed = [dict(RULES[0], **{"for": "10m"}), RULES[1], {"alert": "New", "expr": "vector(1)"}]
    result = run(interval="2m", rules=changed)
    assert result["changed"] is True
    assert result["diff"]["before"] == EXPECTED
    after = result["diff"]["after"]
    assert after["interval"] == "2m" and after["rules"][0]["for"] == "10m"
    assert after["rules"][2] == {"alert": "New", "expr": "vector(1)"}
    assert stored(mimir_api) == after == result["group"]
    result = run(interval="2m", rules=[RULES[1]])
    assert result["changed"] is True and len(stored(mimir_api)["rules"]) == 1


def test_check_mode_changes_nothing(run, mimir_api):
    result = run(check_mode=True, interval="1m", rules=RULES)
    assert result["changed"] is True and result["diff"]["after"] == EXPECTED and result["group"] == EXPECTED
    assert stored(mimir_api) is None
    run(interval="1m", rules=RULES)
    result = run(check_mode=True, interval="5m", rules=RULES)
    assert result["changed"] is True and result["diff"]["after"]["interval"] == "5m"
    assert stored(mimir_api)["interval"] == "1m"
    result = run(check_mode=True, state="absent")
    assert result["changed"] is True and result["diff"] == {"before": EXPECTED, "after": {}}
    assert stored(mimir_api) == EXPECTED


def test_delete(run, mimir_api):
    run(interval="1m", rules=RULES)
    result = run(state="absent")
    assert result["changed"] is True and result["group"] == {}
    assert result["diff"] == {"before": EXPECTED, "after": {}}
    assert stored(mimir_api) is None
    assert run(state="absent")["changed"] is False


def test_names_with_slashes_and_spaces(run, mimir_api, boto3_client):
    result = run(namespace="team a/alerts", name="group 1/x", rules=RULES)
    assert result["changed"] is True
    assert stored(mimir_api, namespace="team a/alerts", group="group 1/x")["name"] == "group 1/x"
    keys = [o["Key"] for o in boto3_client.list_objects_v2(Bucket="mimir-ruler")["Contents"]]
    assert keys == ["rules/team-a/%s/%s" % (b64("team a/alerts"), b64("group 1/x"))]
    assert run(namespace="team a/alerts", name="group 1/x", rules=RULES)["changed"] is False
    assert run(namespace="team a/alerts", name="group 1/x", state="absent")["changed"] is True


def test_tenants_are_separate(run, mimir_api):
    run(rules=RULES)
    assert stored(mimir_api, tenant="team-b") is None
    assert run(tenant="team-b", rules=RULES)["changed"] is True


def test_settings_of_other_tools_show_and_are_removed(run, mimir_api):
    body = ("name: components\nquery_offset: 1m\nalign_evaluation_time_on_interval: true\nrules:\n"
            "  - record: job:up:sum\n    expr: sum by (job) (up)\n")
    assert mimir_api("POST", "/prometheus/config/v1/rules/o11y-stack", body)[0] == 202
    result = run(rules=[RULES[1]])
    assert result["changed"] is True
    assert result["diff"]["before"]["query_offset"] == "1m"
    assert result["diff"]["before"]["align_evaluation_time_on_interval"] is True
    assert stored(mimir_api) == {"name": "components", "rules": [RULES[1]]}


def test_federated_group(run, make_mimir_server, run_module):
    result = run(source_tenants=["team-b", "team-c"], rules=[RULES[1]])
    assert result.exit_code == 1 and result["http_status"] == 400
    assert "is a federated rule group, but rules federation is disabled" in result["msg"]
    server = make_mimir_server(ruler={"tenant_federation": {"enabled": True}})
    args = {"mimir_url": server.url, "tenant": "team-a", "namespace": "ns", "name": "fed",
            "source_tenants": ["team-b", "team-c"], "rules": [RULES[1]]}
    first = run_module(mimir_rule_group.main, args)
    assert first["changed"] is True and first["group"]["source_tenants"] == ["team-b", "team-c"]
    assert run_module(mimir_rule_group.main, args)["changed"] is False


# ---------------------------------------------------------------------------
# validation and errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("options, message", [
    ({"rules": []}, "rules is required with state=present"),
    ({"namespace": " ", "rules": RULES}, "namespace must not be empty"),
    ({"rules": [{"alert": "A", "record": "b", "expr": "up"}]}, "rules[0] sets both record and alert"),
    ({"rules": [{"expr": "up"}]}, "rules[0] needs record (a recording rule) or alert"),
    ({"rules": [{"alert": "A", "expr": " "}]}, "rules[0] needs an expr"),
    ({"rules": [{"record": "not a name", "expr": "up"}]}, "record 'not a name' is not a valid metric name"),
    ({"rules": [{"record": "a:b", "expr": "up", "for": "5m"}]}, "for is only valid in alerting rules"),
    ({"rules": [{"record": "a:b", "expr": "up", "annotations": {"x": "y"}}]},
     "annotations is only valid in alerting rules"),
    ({"rules": [{"alert": "A", "expr": "up", "for": "5 minutes"}]},
     'rules[0].for: not a valid duration string: "5 minutes"'),
    ({"rules": [{"alert": "A", "expr": "up", "labels": {"bad-name": "x"}}]}, "'bad-name' is not a valid name"),
    ({"rules": [{"alert": "A", "expr": "up", "labels": {"x": {"y": 1}}}]}, "labels.x must be a string"),
    ({"interval": "1 minute", "rules": RULES}, 'interval: not a valid duration string: "1 minute"'),
    ({"prometheus_http_prefix": "prometheus", "rules": RULES}, "prometheus_http_prefix must start with '/'"),
    ({"rules": [{"alert": "A"}]}, "missing required arguments: expr found in rules"),
])
def test_validation_before_any_request(run, mimir_api, options, message):
    result = run(**options)
    assert result.exit_code == 1 and message in result["msg"]
    assert mimir_api("GET", "/prometheus/config/v1/rules")[2].strip() == "{}"


def test_mimir_rejects_the_expression(run, mimir_api):
    result = run(rules=[{"alert": "A", "expr": "sum(rate(up[5m])"}])
    assert result.exit_code == 1 and result["http_status"] == 400
    assert 'group "components", rule 0, "A": could not parse expression' in result["msg"]
    assert "unclosed left parenthesis" in result["msg"]
    assert stored(mimir_api) is None


def test_mimir_limits(run_module, make_mimir_server):
    server = make_mimir_server(limits={"ruler_max_rules_per_rule_group": 1})
    args = {"mimir_url": server.url, "tenant": "t", "namespace": "ns", "name": "g", "rules": RULES}
    result = run_module(mimir_rule_group.main, args)
    assert result.exit_code == 1 and result["http_status"] == 400
    assert "per-user rules per rule group limit (limit: 1 actual: 2) exceeded" in result["msg"]
    assert "limits.ruler_max_rules_per_rule_group" in result["msg"]


def test_wrong_prefix_disabled_api_and_unreachable(run, run_module, make_mimir_server, closed_port_url):
    result = run(prometheus_http_prefix="/prom", rules=RULES)
    assert result.exit_code == 1 and result["http_status"] == 404 and "prometheus_http_prefix" in result["msg"]
    server = make_mimir_server(api={"prometheus_http_prefix": "/prom"})
    args = {"mimir_url": server.url, "tenant": "t", "namespace": "ns", "name": "g", "rules": RULES}
    assert run_module(mimir_rule_group.main, dict(args, prometheus_http_prefix="/prom"))["changed"] is True
    server = make_mimir_server(ruler={"enable_api": False})
    result = run_module(mimir_rule_group.main, dict(args, mimir_url=server.url))
    assert result.exit_code == 1 and "ruler.enable_api: true" in result["msg"]
    result = run_module(mimir_rule_group.main, dict(args, mimir_url=closed_port_url))
    assert result.exit_code == 1 and f"cannot reach Mimir at {closed_port_url}" in result["msg"]


def test_group_alias(run_module, mimir_params, mimir_api):
    args = dict(mimir_params, namespace="o11y-stack", group="components", rules=RULES, interval="1m")
    assert run_module(mimir_rule_group.main, args)["changed"] is True
    assert stored(mimir_api) == EXPECTED


def test_storage_down_is_reported(run, s3_server):
    s3_server.stop()
    result = run(rules=RULES)
    assert result.exit_code == 1 and result["http_status"] == 400 and result["request"].startswith("GET ")
    assert "failed to get rule group" in result["msg"] and "could not read the object from its storage" in \
        result["msg"]
