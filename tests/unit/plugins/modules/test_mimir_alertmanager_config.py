# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""o11y.stack.mimir_alertmanager_config against the Mimir stand-in served over HTTP."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from ansible_collections.o11y.stack.plugins.modules import mimir_alertmanager_config
from o11y_standins.mimir import decode_alert_config

# an OnCall integration URL carries its token in the path
HOOK_URL = "http://oncall.example.com:8080/integrations/v1/alertmanager/Tok3nA9x2Qe7/"
HOOK_URL2 = "http://oncall.example.com:8080/integrations/v1/alertmanager/R0tatedB5y8Wz/"
PASSWORD = "smtp-password-71c0d2e9"

CONFIG = {
    "route": {"receiver": "oncall", "group_by": ["alertname", "job"], "group_wait": "30s"},
    "receivers": [{"name": "oncall", "webhook_configs": [{"url": HOOK_URL, "send_resolved": True}]}],
}
TEMPLATE = '{{ define "oncall.title" }}[{{ .Status }}] {{ .CommonLabels.alertname }}{{ end }}'


@pytest.fixture
def run(run_module, mimir_params):
    def _run(check_mode=False, diff=True, **options):
        args = dict(mimir_params)
        args.update(options)
        return run_module(mimir_alertmanager_config.main, args, check_mode=check_mode, diff=diff)

    return _run


def output(result):
    """The module's own output as text (the invocation echoes the task's arguments: hence no_log on the task)."""
    return json.dumps({k: v for k, v in result.items() if k != "invocation"})


def stored(mimir_api, tenant="team-a"):
    """(parsed configuration, templates) as Mimir returns them, or None."""
    status, _headers, text = mimir_api("GET", "/api/v1/alerts", tenant=tenant)
    if status == 404:
        return None
    assert status == 200, text
    data = yaml.safe_load(text)
    return yaml.safe_load(data["alertmanager_config"]), data["template_files"]


# ---------------------------------------------------------------------------
# create / idempotence / update / delete
# ---------------------------------------------------------------------------


def test_create_then_no_op(run, mimir_api, boto3_client):
    result = run(config=CONFIG)
    assert result.exit_code == 0 and result["changed"] is True
    assert result["diff"]["before"] == {}
    after = result["diff"]["after"]
    assert after["alertmanager_config"]["receivers"][0]["webhook_configs"] == [{"url": "[REDACTED]",
                                                                                "send_resolved": True}]
    assert after["alertmanager_config"]["route"] == CONFIG["route"] and after["template_files"] == {}
    assert result["config"] == after["alertmanager_config"] and result["templates"] == {}
    assert HOOK_URL not in output(result)
    assert stored(mimir_api) == (CONFIG, {})
    # persisted like upstream: object alerts/<tenant> of the alertmanager bucket, protobuf AlertConfigDesc
    body = boto3_client.get_object(Bucket="mimir-alertmanager", Key="alerts/team-a")["Body"].read()
    desc = decode_alert_config(body)
    assert desc["user"] == "team-a" and yaml.safe_load(desc["raw_config"]) == CONFIG

    again = run(config=CONFIG)
    assert again["changed"] is False
    assert again["diff"]["before"] == again["diff"]["after"] == after


def test_update_shows_what_changes_without_secrets(run, mimir_api):
    run(config=CONFIG, templates={"oncall.tmpl": TEMPLATE})
    changed = copy.deepcopy(CONFIG)
    changed["route"]["group_wait"] = "10s"
    result = run(config=changed, templates={"oncall.tmpl": TEMPLATE})
    assert result["changed"] is True
    assert result["diff"]["before"]["alertmanager_config"]["route"]["group_wait"] == "30s"
    assert result["diff"]["after"]["alertmanager_config"]["route"]["group_wait"] == "10s"
    # an unchanged secret reads [REDACTED] on both sides
    assert result["diff"]["after"]["alertmanager_config"]["receivers"][0]["webhook_configs"][0]["url"] == "[REDACTED]"
    assert stored(mimir_api)[0]["route"]["group_wait"] == "10s"

    rotated = copy.deepcopy(changed)
    rotated["receivers"][0]["webhook_configs"][0]["url"] = HOOK_URL2
    rotated["global"] = {"smtp_auth_password": PASSWORD, "smtp_smarthost": "smtp.example.com:587"}
    result = run(config=rotated, templates={"oncall.tmpl": TEMPLATE})
    assert result["changed"] is True
    after = result["diff"]["after"]["alertmanager_config"]
    assert after["receivers"][0]["webhook_configs"][0]["url"] == "[REDACTED, changed]"
    assert after["global"] == {"smtp_auth_password": "[REDACTED]", "smtp_smarthost": "smtp.example.com:587"}
    text = output(result)
    assert HOOK_URL not in text and HOOK_URL2 not in text and PASSWORD not in text
    assert stored(mimir_api)[0]["receivers"][0]["webhook_configs"][0]["url"] == HOOK_URL2
    assert run(config=rotated, templates={"oncall.tmpl": TEMPLATE})["changed"] is False


def test_show_secrets(run):
    result = run(config=CONFIG, show_secrets=True)
    assert result["diff"]["after"]["alertmanager_config"]["receivers"][0]["webhook_configs"][0]["url"] == HOOK_URL
    assert result["config"]["receivers"][0]["webhook_configs"][0]["url"] == HOOK_URL


def test_templates_are_the_complete_set(run, mimir_api):
    config = dict(CONFIG, templates=["oncall.tmpl"])
    result = run(config=config, templates={"oncall.tmpl": TEMPLATE, "extra.tmpl": "{{ define \"x\" }}{{ end }}"})
    assert result["changed"] is True and result["templates"] == {"oncall.tmpl": TEMPLATE,
                                                                 "extra.tmpl": "{{ define \"x\" }}{{ end }}"}
    assert stored(mimir_api)[1] == {"oncall.tmpl": TEMPLATE, "extra.tmpl": "{{ define \"x\" }}{{ end }}"}
    result = run(config=config, templates={"oncall.tmpl": TEMPLATE})
    assert result["changed"] is True
    assert set(result["diff"]["before"]["template_files"]) == {"oncall.tmpl", "extra.tmpl"}
    assert result["diff"]["after"]["template_files"] == {"oncall.tmpl": TEMPLATE}
    assert stored(mimir_api)[1] == {"oncall.tmpl": TEMPLATE}
    assert run(config=config, templates={"oncall.tmpl": TEMPLATE})["changed"] is False


def test_check_mode_changes_nothing(run, mimir_api):
    result = run(check_mode=True, config=CONFIG)
    assert result["changed"] is True and result["diff"]["before"] == {}
    assert result["config"]["route"]["receiver"] == "oncall"
    assert stored(mimir_api) is None
    run(config=CONFIG)
    changed = dict(CONFIG, route={"receiver": "oncall"})
    result = run(check_mode=True, config=changed)
    assert result["changed"] is True and result["diff"]["after"]["alertmanager_config"]["route"] == {
        "receiver": "oncall"}
    assert stored(mimir_api)[0] == CONFIG
    result = run(check_mode=True, state="absent")
    assert result["changed"] is True and result["diff"]["after"] == {}
    assert stored(mimir_api)[0] == CONFIG


def test_delete(run, mimir_api):
    run(config=CONFIG)
    result = run(state="absent")
    assert result["changed"] is True and result["config"] == {}
    assert result["diff"]["before"]["alertmanager_config"]["receivers"][0]["webhook_configs"][0]["url"] == \
        "[REDACTED]"
    assert result["diff"]["after"] == {}
    assert stored(mimir_api) is None
    again = run(state="absent")
    assert again["changed"] is False and again["diff"] == {"before": {}, "after": {}}


def test_tenants_are_separate(run, mimir_api, mimir_params):
    run(config=CONFIG)
    other = dict(CONFIG, route={"receiver": "oncall", "group_by": ["..."]})
    assert run(tenant="team-b", config=other)["changed"] is True
    assert stored(mimir_api)[0] == CONFIG
    assert stored(mimir_api, tenant="team-b")[0] == other


def test_an_empty_configuration_counts_as_none(run, mimir_api):
    # alerts for a tenant without a configuration make Mimir store an empty one (its fallback Alertmanager)
    status, _h, _text = mimir_api("POST", "/alertmanager/api/v2/alerts", [{"labels": {"alertname": "A"}}])
    assert status == 200
    status, _h, text = mimir_api("GET", "/api/v1/alerts")
    assert status == 200 and yaml.safe_load(text) == {"template_files": {}, "alertmanager_config": ""}
    assert run(state="absent")["changed"] is False
    result = run(config=CONFIG)
    assert result["changed"] is True and result["diff"]["before"] == {}
    assert stored(mimir_api)[0] == CONFIG


def test_default_tenant_with_multitenancy_disabled(run_module, make_mimir_server):
    server = make_mimir_server(multitenancy=False)
    args = {"mimir_url": server.url, "config": CONFIG}
    assert run_module(mimir_alertmanager_config.main, args)["changed"] is True
    assert run_module(mimir_alertmanager_config.main, args)["changed"] is False


# ---------------------------------------------------------------------------
# validation and errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("options, message", [
    ({}, "config is required with state=present"),
    ({"config": {"receivers": [{"name": "x"}]}}, "config.route.receiver is required"),
    ({"config": {"route": {"receiver": "x"}, "receivers": [{"webhook_configs": []}]}},
     "config.receivers must be a list of receivers, each with a name"),
    ({"config": CONFIG, "templates": {"../x.tmpl": "x"}}, "template name '../x.tmpl' must be a plain file name"),
    ({"config": CONFIG, "templates": {"x.tmpl": ["x"]}}, "templates['x.tmpl'] must be the template text"),
])
def test_validation_before_any_request(run, mimir_api, options, message):
    result = run(**options)
    assert result.exit_code == 1 and message in result["msg"]
    assert stored(mimir_api) is None


def test_mimir_rejects_the_configuration(run, mimir_api):
    bad = dict(CONFIG, route={"receiver": "nobody"})
    result = run(config=bad)
    assert result.exit_code == 1 and result["http_status"] == 400
    assert 'error validating Alertmanager config: undefined receiver "nobody" used in route' in result["msg"]
    assert "Fix config or templates" in result["msg"]
    forbidden = copy.deepcopy(CONFIG)
    forbidden["receivers"][0]["webhook_configs"][0]["http_config"] = {"proxy_url": "http://proxy:3128"}
    result = run(config=forbidden)
    assert result.exit_code == 1 and "setting proxy_url is not allowed" in result["msg"]
    assert stored(mimir_api) is None


def test_urls_never_appear_in_failures(run):
    # Go's url.Parse error quotes the whole URL, token included
    broken = "http://oncall example.com/integrations/v1/alertmanager/Tok3nA9x2Qe7/"
    config = copy.deepcopy(CONFIG)
    config["receivers"][0]["webhook_configs"][0]["url"] = broken
    result = run(config=config)
    assert result.exit_code == 1 and result["http_status"] == 400
    assert "invalid character" in result["msg"]
    assert "Tok3nA9x2Qe7" not in output(result)


def test_api_disabled_and_unreachable(run_module, make_mimir_server, closed_port_url):
    server = make_mimir_server(alertmanager={"enable_api": False})
    result = run_module(mimir_alertmanager_config.main, {"mimir_url": server.url, "config": CONFIG})
    assert result.exit_code == 1 and result["http_status"] == 404
    assert "alertmanager.enable_api: true" in result["msg"]
    result = run_module(mimir_alertmanager_config.main, {"mimir_url": closed_port_url, "config": CONFIG})
    assert result.exit_code == 1 and f"cannot reach Mimir at {closed_port_url}" in result["msg"]


def test_bad_tenant(run):
    result = run(tenant="team a", config=CONFIG)
    assert result.exit_code == 1 and "is not a valid Mimir tenant ID" in result["msg"]


def test_storage_down_is_reported(run, s3_server):
    s3_server.stop()
    result = run(config=CONFIG)
    assert result.exit_code == 1 and result["http_status"] == 500
    assert "Mimir failed on its side" in result["msg"]
