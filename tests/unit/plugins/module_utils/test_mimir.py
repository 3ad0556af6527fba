# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/mimir.py: helpers, and the client against the Mimir stand-in and against misbehaving servers."""

from __future__ import annotations

import base64
import time

import pytest
from ansible_collections.o11y.stack.plugins.module_utils.http_api import diff_result
from ansible_collections.o11y.stack.plugins.module_utils.mimir import (
    REDACTED,
    REDACTED_CHANGED,
    MimirClient,
    MimirError,
    canonical_duration,
    format_model_duration,
    mimir_argument_spec,
    mimir_module,
    parse_model_duration,
    redact,
    run_mimir_module,
    scrub,
    secret_values,
    tenant_problem,
    validate_mimir_url,
)
from o11y_standins import framework as fw

HOOK_URL = "http://oncall.example.com/integrations/v1/alertmanager/Zx7TokenSecret42/"
AM_CONFIG = ("route:\n  receiver: oncall\nreceivers:\n  - name: oncall\n    webhook_configs:\n"
             f"      - url: {HOOK_URL}\n")


@pytest.fixture
def client(mimir_params):
    return MimirClient(mimir_params)


@pytest.fixture
def odd_server():
    """A server answering every request with the (status, body, headers[, delay]) it is told to; it records requests."""
    answer = {"value": (200, "", {}, 0)}
    seen = []

    def app(environ, start_response):
        from werkzeug.wrappers import Request, Response
        req = Request(environ)
        seen.append({"method": req.method, "path": req.path, "headers": dict(req.headers), "body": req.get_data()})
        status, body, headers, delay = answer["value"]
        time.sleep(delay)
        return Response(body, status=status, headers=headers)(environ, start_response)

    service = fw.HTTPService("odd", "127.0.0.1:0", app).start()
    service.answer = answer
    service.seen = seen
    yield service
    service.stop()


def test_argument_spec_is_a_copy():
    spec = mimir_argument_spec()
    spec["mimir_url"]["required"] = False
    assert mimir_argument_spec()["mimir_url"]["required"] is True
    assert mimir_argument_spec()["mimir_password"]["no_log"] is True
    assert mimir_argument_spec()["mimir_token"]["no_log"] is True
    assert mimir_argument_spec()["tenant"]["default"] == "anonymous"


# -- the scaffolding every Mimir module runs in ------------------------------------------------

OFFLINE = {"mimir_url": "http://127.0.0.1:9"}  # no request is sent


def _demo_main(present, absent=None, secrets=()):
    def main():
        module = mimir_module({"state": {"type": "str", "default": "present", "choices": ["present", "absent"]}})
        run_mimir_module(module, present, absent, secrets=secrets)
    return main


def test_mimir_module_constraints_and_state(run_module):
    def present(module, client):
        return diff_result(False, {}, {}, ran="present", tenant=client.tenant, check_mode=module.check_mode)

    def absent(module, client):
        raise MimirError(f"Mimir said no about {HOOK_URL}", status=400, method="POST", path="/api/v1/alerts")

    main = _demo_main(present, absent)
    result = run_module(main, OFFLINE, check_mode=True)
    assert result.exit_code == 0 and result["ran"] == "present" and result["tenant"] == "anonymous"
    assert result["check_mode"] is True and result["diff"] == {"before": {}, "after": {}}
    failed = run_module(main, dict(OFFLINE, state="absent"))
    assert failed.exit_code == 1 and failed["http_status"] == 400 and failed["request"] == "POST /api/v1/alerts"
    # long secrets: Ansible masks no_log values wherever they appear in the output
    failed = run_module(main, dict(OFFLINE, mimir_user="u", mimir_password="password-4c1e9",
                                   mimir_token="token-8d2f7a"))
    assert failed.exit_code == 1 and "mutually exclusive: mimir_token|mimir_user" in failed["msg"]
    failed = run_module(main, dict(OFFLINE, mimir_user="u"))
    assert failed.exit_code == 1 and "parameters are required together: mimir_user, mimir_password" in failed["msg"]
    failed = run_module(main, dict(OFFLINE, tenant="a|b"))
    assert failed.exit_code == 1 and "names several tenants" in failed["msg"]
    failed = run_module(main, dict(OFFLINE, mimir_url="mimir:9009"))
    assert failed.exit_code == 1 and "must be an http:// or https:// URL" in failed["msg"]


# -- durations, tenants, URLs, secrets ------------------------------------------------------------

@pytest.mark.parametrize("text, millis, printed", [
    ("0", 0, "0s"), ("0s", 0, "0s"), ("60s", 60000, "1m"), ("90s", 90000, "1m30s"), ("1h30m", 5400000, "1h30m"),
    ("24h", 86400000, "1d"), ("7d", 604800000, "1w"), ("90d", 7776000000, "12w6d"), ("365d", 31536000000, "1y"),
    ("1500ms", 1500, "1s500ms"), ("2w3d", 1468800000, "2w3d"),
])
def test_model_durations(text, millis, printed):
    assert parse_model_duration(text) == millis
    # Prometheus prints weeks and years only when exact, so 90d prints as days
    expected = {"90d": "90d", "2w3d": "17d"}.get(text, printed)
    assert format_model_duration(millis) == expected
    assert parse_model_duration(format_model_duration(millis)) == millis


@pytest.mark.parametrize("text, error", [
    ("", "empty duration string"), ("5", 'not a valid duration string: "5"'),
    ("1m5h", 'not a valid duration string: "1m5h"'), ("1.5h", 'not a valid duration string: "1.5h"'),
    ("-1m", 'not a valid duration string: "-1m"'),
])
def test_bad_model_durations(text, error):
    with pytest.raises(ValueError, match=error):
        parse_model_duration(text)


def test_canonical_duration():
    assert canonical_duration("300s") == "5m"
    assert canonical_duration("0s") is None and canonical_duration(None) is None and canonical_duration("") is None


@pytest.mark.parametrize("tenant, problem", [
    ("anonymous", None), ("team-a_1.(x)*'!", None), ("", "must not be empty"), ("a|b", "names several tenants"),
    ("..", "not a valid tenant ID"), ("has space", "not a valid Mimir tenant ID"), ("x" * 151, "not a valid"),
    ("a/b", "not a valid Mimir tenant ID"),
])
def test_tenant_problem(tenant, problem):
    if problem is None:
        assert tenant_problem(tenant) is None
    else:
        assert problem in tenant_problem(tenant)


@pytest.mark.parametrize("url, problem", [
    ("", "must not be empty"), ("mimir:9009", "must be an http:// or https:// URL"),
    ("http://u:p@mimir:9009", "must not contain credentials"), ("http://mimir:9009/?x=1", "must not contain a query"),
    ("http://mimir:99999", "invalid port"),
])
def test_bad_urls(url, problem):
    assert problem in validate_mimir_url(url)
    with pytest.raises(MimirError, match=problem):
        MimirClient({"mimir_url": url})
    assert validate_mimir_url("https://mimir.example.com/prefix/") is None


def test_headers_must_not_set_the_tenant():
    with pytest.raises(MimirError, match="use the tenant option"):
        MimirClient({"mimir_url": "http://mimir:9009", "headers": {"x-scope-orgid": "t"}})


def test_secret_values_redact_and_scrub():
    config = {"global": {"smtp_auth_password": "pw-1", "resolve_timeout": "5m"},
              "receivers": [{"name": "oncall", "webhook_configs": [{"url": HOOK_URL, "send_resolved": True}],
                             "pagerduty_configs": [{"routing_key": "rk-2", "url_file": "/x"}]}]}
    assert secret_values(config) == {"pw-1", HOOK_URL, "rk-2"}
    shown = redact(config)
    assert shown["global"] == {"smtp_auth_password": REDACTED, "resolve_timeout": "5m"}
    assert shown["receivers"][0]["webhook_configs"] == [{"url": REDACTED, "send_resolved": True}]
    assert shown["receivers"][0]["pagerduty_configs"] == [{"routing_key": REDACTED, "url_file": "/x"}]
    changed = {"global": {"smtp_auth_password": "pw-1", "resolve_timeout": "5m"},
               "receivers": [{"name": "oncall", "webhook_configs": [{"url": HOOK_URL + "v2", "send_resolved": True}],
                              "pagerduty_configs": [{"routing_key": "rk-2"}]}]}
    after = redact(changed, compare_to=config)
    assert after["receivers"][0]["webhook_configs"][0]["url"] == REDACTED_CHANGED
    assert after["global"]["smtp_auth_password"] == REDACTED
    assert config["receivers"][0]["webhook_configs"][0]["url"] == HOOK_URL  # the input is not modified
    text = scrub(f'parse "{HOOK_URL}": bad, password pw-1 and https://other.example/t0ken', {"pw-1"})
    assert "Zx7TokenSecret42" not in text and "pw-1" not in text and "t0ken" not in text
    assert text == 'parse "[URL REDACTED]": bad, password [REDACTED] and [URL REDACTED]'


# -- the Alertmanager configuration API -----------------------------------------------------------

def test_alertmanager_config_calls(client, mimir_api):
    assert client.alertmanager_config() is None
    client.set_alertmanager_config(AM_CONFIG, {"a.tmpl": '{{ define "a" }}x{{ end }}'})
    assert client.alertmanager_config() == {"alertmanager_config": AM_CONFIG,
                                            "template_files": {"a.tmpl": '{{ define "a" }}x{{ end }}'}}
    # the request carried the tenant: another tenant has nothing
    assert mimir_api("GET", "/api/v1/alerts", tenant="team-b")[0] == 404
    client.delete_alertmanager_config()
    assert client.alertmanager_config() is None
    client.delete_alertmanager_config()  # 200 also when there is none


def test_alertmanager_400_is_scrubbed(mimir_params):
    bad_url = "http://oncall .example.com/integrations/v1/alertmanager/Zx7TokenSecret42/"
    client = MimirClient(mimir_params, secrets={bad_url})
    config = AM_CONFIG.replace(HOOK_URL, bad_url)
    with pytest.raises(MimirError) as err:
        client.set_alertmanager_config(config, {})
    assert err.value.status == 400
    assert err.value.message.startswith("Mimir answered POST /api/v1/alerts with HTTP 400: error validating "
                                        "Alertmanager config: parse ")
    assert "invalid character" in err.value.message and "Fix config or templates" in err.value.message
    assert "Zx7TokenSecret42" not in str(err.value.fail_kwargs())


def test_alertmanager_api_disabled_is_an_error_not_a_missing_config(make_mimir_server):
    server = make_mimir_server(alertmanager={"enable_api": False})
    client = MimirClient({"mimir_url": server.url, "tenant": "team-a"})
    with pytest.raises(MimirError) as err:
        client.alertmanager_config()
    assert err.value.status == 404 and "404 page not found" in err.value.message
    assert "alertmanager.enable_api: true" in err.value.message


def test_storage_failure_is_a_5xx(client, s3_server):
    s3_server.stop()
    with pytest.raises(MimirError) as err:
        client.set_alertmanager_config(AM_CONFIG, {})
    assert err.value.status == 500 and "unable to store the Alertmanager config" in err.value.message
    assert "check the Mimir log (journalctl -u mimir) and its object storage" in err.value.message


# -- the ruler configuration API ---------------------------------------------------------------------

GROUP = {"name": "g1", "interval": "60s", "rules": [{"alert": "Down", "expr": "up == 0", "for": "5m"}]}


def test_rule_group_calls(client, mimir_api):
    assert client.rule_group("ns/with slash", "g1") is None
    assert client.rules_path("/prometheus", "ns/with slash", "g 1") == \
        "/prometheus/config/v1/rules/ns%2Fwith%20slash/g%201"
    client.set_rule_group("ns/with slash", GROUP)
    assert client.rule_group("ns/with slash", "g1") == {
        "name": "g1", "interval": "1m", "rules": [{"alert": "Down", "expr": "up == 0", "for": "5m"}]}
    status, _headers, listing = mimir_api("GET", "/prometheus/config/v1/rules")
    assert status == 200 and "ns/with slash:" in listing
    assert client.delete_rule_group("ns/with slash", "g1") is True
    assert client.delete_rule_group("ns/with slash", "g1") is False
    assert client.rule_group("ns/with slash", "g1") is None


def test_rule_group_wrong_prefix_and_disabled_api(client, make_mimir_server):
    with pytest.raises(MimirError) as err:
        client.rule_group("ns", "g1", prefix="/prom")
    assert err.value.status == 404 and "404 page not found" in err.value.message
    assert "prometheus_http_prefix" in err.value.message
    server = make_mimir_server(ruler={"enable_api": False})
    with pytest.raises(MimirError) as err:
        MimirClient({"mimir_url": server.url, "tenant": "t"}).rule_group("ns", "g1")
    assert err.value.status == 404 and "ruler.enable_api: true" in err.value.message


def test_rule_group_400_has_mimirs_text(client):
    with pytest.raises(MimirError) as err:
        client.set_rule_group("ns", {"name": "g", "rules": [{"alert": "A", "expr": "sum(up"}]})
    assert err.value.status == 400
    assert 'group "g", rule 0, "A": could not parse expression: 1:4: parse error: unclosed left parenthesis' in \
        err.value.message
    assert "Fix the rule group" in err.value.message


def test_multitenancy_disabled_uses_the_no_auth_tenant(make_mimir_server, mimir_api):
    server = make_mimir_server(multitenancy=False)
    MimirClient({"mimir_url": server.url}).set_rule_group("ns", GROUP)
    # any tenant header is ignored: everything belongs to "anonymous"
    assert MimirClient({"mimir_url": server.url, "tenant": "other"}).rule_group("ns", "g1")["name"] == "g1"


# -- misbehaving servers and the network -------------------------------------------------------------

@pytest.mark.parametrize("status, body, expected", [
    (401, "no org id\n", "did not accept the request for tenant 'team-a'"),
    (403, "namespace is protected, no modification allowed\n", "ruler_protected_namespaces"),
    (405, "", "does not lead to Mimir's API"),
    (422, "too many tenant IDs present in the request. max: 1 actual: 2\n", "Name exactly one tenant"),
    (429, "rate limited\n", "rate limiting this tenant"),
    (502, "<html>Bad Gateway</html>", "Mimir failed on its side"),
    (302, "", "with a redirect (302); check mimir_url"),
])
def test_error_classes(odd_server, status, body, expected):
    headers = {"Location": "/login"} if status == 302 else {"Content-Type": "text/plain"}
    odd_server.answer["value"] = (status, body, headers, 0)
    client = MimirClient({"mimir_url": odd_server.url, "tenant": "team-a"})
    with pytest.raises(MimirError) as err:
        client.rule_group("ns", "g")
    assert err.value.status == status and expected in err.value.message
    if body.strip():
        assert body.strip() in err.value.message


def test_json_error_bodies_give_their_error_text(odd_server):
    odd_server.answer["value"] = (500, '{"status":"error","errorType":"server_error","error":"store is down"}',
                                  {"Content-Type": "application/json"}, 0)
    with pytest.raises(MimirError) as err:
        MimirClient({"mimir_url": odd_server.url}).delete_rule_group("ns", "g")
    assert "HTTP 500: store is down" in err.value.message and err.value.body["errorType"] == "server_error"


def test_not_yaml_answer(odd_server):
    odd_server.answer["value"] = (200, "{{not: yaml", {"Content-Type": "text/html"}, 0)
    with pytest.raises(MimirError, match="something that is not YAML"):
        MimirClient({"mimir_url": odd_server.url}).alertmanager_config()


def test_headers_and_credentials_are_sent(odd_server):
    odd_server.answer["value"] = (404, "group does not exist\n", {}, 0)
    MimirClient({"mimir_url": odd_server.url, "tenant": "t1", "mimir_user": "u", "mimir_password": "p",
                 "headers": {"X-Route": "eu"}}).rule_group("ns", "g")
    MimirClient({"mimir_url": odd_server.url, "mimir_token": "tok"}).rule_group("ns", "g")
    basic, bearer = odd_server.seen
    assert basic["headers"]["X-Scope-Orgid"] == "t1" and basic["headers"]["X-Route"] == "eu"
    assert basic["headers"]["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
    assert bearer["headers"]["Authorization"] == "Bearer tok" and bearer["headers"]["X-Scope-Orgid"] == "anonymous"


def test_unreachable(closed_port_url):
    with pytest.raises(MimirError) as err:
        MimirClient({"mimir_url": closed_port_url, "timeout": 5}).alertmanager_config()
    assert err.value.status is None
    assert f"cannot reach Mimir at {closed_port_url}" in err.value.message and "Check mimir_url" in err.value.message


def test_tls_error(mimir_params):
    url = mimir_params["mimir_url"].replace("http://", "https://")
    with pytest.raises(MimirError) as err:
        MimirClient(dict(mimir_params, mimir_url=url)).alertmanager_config()
    assert "TLS error talking to Mimir" in err.value.message and "validate_certs" in err.value.message


def test_timeout(odd_server):
    odd_server.answer["value"] = (200, "", {}, 2.5)
    with pytest.raises(MimirError, match=r"did not answer GET /api/v1/alerts within 1s"):
        MimirClient({"mimir_url": odd_server.url, "timeout": 1}).alertmanager_config()
