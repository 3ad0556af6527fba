# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""o11y.stack.oncall_integration against the OnCall engine stand-in served over HTTP."""

from __future__ import annotations

import json

import pytest
from ansible_collections.o11y.stack.plugins.modules import oncall_integration


@pytest.fixture
def run(run_module, oncall_params):
    def _run(check_mode=False, diff=True, **options):
        args = dict(oncall_params)
        args.update(options)
        return run_module(oncall_integration.main, args, check_mode=check_mode, diff=diff)

    return _run


def integrations(oncall_api):
    status, page = oncall_api("GET", "/api/v1/integrations/")
    assert status == 200
    return {i["name"]: i for i in page["results"]}


def test_create_then_no_op(run, oncall_api, oncall_server):
    result = run(name="Mimir Alertmanager", type="alertmanager")
    assert result["changed"] is True
    assert result["link"].startswith(oncall_server.url + "/integrations/v1/alertmanager/")
    assert result["link"] == result["integration"]["link"] and result["id"].startswith("C")
    assert result["diff"] == {"before": {}, "after": {"name": "Mimir Alertmanager", "type": "alertmanager",
                                                      "description": "", "escalation_chain": ""}}
    assert "link" not in result["diff"]["after"]  # the token stays out of --diff output
    stored = integrations(oncall_api)["Mimir Alertmanager"]
    assert stored["id"] == result["id"] and stored["type"] == "alertmanager"
    again = run(name="Mimir Alertmanager", type="alertmanager")
    assert again["changed"] is False and again["link"] == result["link"]
    assert again["diff"]["before"] == again["diff"]["after"]
    # the inbound URL takes alerts
    from o11y_standins import oncall

    assert oncall._http_json("POST", result["link"], {"alerts": []}) == (200, "Ok.")


def test_check_mode(run, oncall_api):
    result = run(check_mode=True, name="Hook", type="webhook", description="generic")
    assert result["changed"] is True and result["id"] == "" and result["link"] == ""
    assert result["diff"]["after"]["description"] == "generic"
    assert "Hook" not in integrations(oncall_api)
    run(name="Hook", type="webhook")
    assert run(check_mode=True, name="Hook", type="webhook")["changed"] is False
    result = run(check_mode=True, name="Hook", description="changed")
    assert result["changed"] is True and result["integration"]["description_short"] == "changed"
    assert integrations(oncall_api)["Hook"]["description_short"] is None


def test_update_description_chain_and_templates(run, oncall_api):
    status, chain = oncall_api("POST", "/api/v1/escalation_chains/", {"name": "default"})
    assert status == 201
    run(name="AM", type="alertmanager")
    result = run(name="AM", description="from Mimir", escalation_chain="default",
                 templates={"grouping_key": "{{ payload.groupKey }}", "slack": {"title": "{{ payload.status }}"}})
    assert result["changed"] is True
    assert result["diff"]["before"]["escalation_chain"] == "" and result["diff"]["after"]["escalation_chain"] == "default"
    assert result["diff"]["after"]["templates"] == {"grouping_key": "{{ payload.groupKey }}",
                                                    "slack": {"title": "{{ payload.status }}"}}
    stored = integrations(oncall_api)["AM"]
    assert stored["default_route"]["escalation_chain_id"] == chain["id"]
    assert stored["description_short"] == "from Mimir"
    assert stored["templates"]["grouping_key"] == "{{ payload.groupKey }}"
    assert stored["templates"]["slack"] == {"title": "{{ payload.status }}", "message": None, "image_url": None}
    same = run(name="AM", description="from Mimir", escalation_chain="default",
               templates={"grouping_key": "{{ payload.groupKey }}", "slack": {"title": "{{ payload.status }}"}})
    assert same["changed"] is False
    # options left unset leave the integration alone; "" clears; null puts back the default template
    assert run(name="AM")["changed"] is False
    result = run(name="AM", escalation_chain="", description="", templates={"grouping_key": None})
    assert result["changed"] is True
    stored = integrations(oncall_api)["AM"]
    assert stored["default_route"]["escalation_chain_id"] is None and stored["description_short"] is None
    assert stored["templates"]["grouping_key"] is None and stored["templates"]["slack"]["title"] == "{{ payload.status }}"


def test_grafana_alerting_needs_grafana(run, oncall_server):
    result = run(name="Grafana", type="grafana_alerting")
    assert result["changed"] is True and "/integrations/v1/grafana_alerting/" in result["link"]
    assert ("GET", "/api/alertmanager/grafana/config/api/v1/alerts",
            "Bearer glsa_o11y_test_grafana_token_for_oncall") in oncall_server.grafana.calls
    oncall_server.grafana.alerting_ok = False
    result = run(name="Grafana 2", type="grafana_alerting")
    assert result.exit_code == 1 and result["http_status"] == 400
    assert "Failed to create the integration with current Grafana Alerting" in result["msg"]


def test_delete(run, oncall_api):
    run(name="Gone", type="webhook")
    result = run(check_mode=True, name="Gone", state="absent")
    assert result["changed"] is True and "Gone" in integrations(oncall_api)
    result = run(name="Gone", state="absent")
    assert result["changed"] is True and result["diff"]["after"] == {}
    assert result["diff"]["before"]["type"] == "webhook"
    assert "Gone" not in integrations(oncall_api)
    assert run(name="Gone", state="absent")["changed"] is False


def test_refusals(run, oncall_api):
    run(name="AM", type="alertmanager")
    result = run(name="AM", type="webhook")
    assert result.exit_code == 1 and "OnCall cannot change an integration's type" in result["msg"]
    result = run(name="New")
    assert result.exit_code == 1 and "set type to create it" in result["msg"]
    result = run(name="AM", escalation_chain="missing")
    assert result.exit_code == 1 and "escalation chain 'missing' does not exist" in result["msg"]
    result = run(check_mode=True, name="AM", escalation_chain="missing")
    assert result["changed"] is True and "does not exist (yet)" in json.dumps(result["warnings"])
    result = run(name="AM", templates={"slack": {"body": "x"}})
    assert result.exit_code == 1 and "templates.slack.body is not a template of slack" in result["msg"]
    result = run(name="AM", templates={"nope": "x"})
    assert result.exit_code == 1 and "unknown key 'nope'" in result["msg"]
    result = run(name="AM", templates={"resolve_signal": "{{ unbalanced"})
    assert result.exit_code == 1 and result["http_status"] == 400
    assert "Invalid resolve_signal template data" in result["msg"]


def test_ambiguous_name(run, oncall_api, oncall_server):
    # names are unique per team: the same name in another team makes the name ambiguous for the module
    run(name="Shared", type="webhook")
    status, body = oncall_api("POST", "/api/v1/integrations/", {"type": "webhook", "name": "Shared"})
    assert status == 400 and body == {"detail": "An integration with this name already exists for this team"}
    status, other = oncall_api("POST", "/api/v1/integrations/",
                               {"type": "webhook", "name": "Shared", "team_id": oncall_server.team_id})
    assert status == 201 and other["team_id"] == oncall_server.team_id
    result = run(name="Shared", type="webhook")
    assert result.exit_code == 1 and "2 integrations are named 'Shared'" in result["msg"]


def test_permission_and_token_errors(run, oncall_server):
    result = run(name="X", type="webhook", oncall_api_token=oncall_server.tokens["alice"])
    assert result.exit_code == 1 and result["http_status"] == 403
    assert "You do not have permission to perform this action." in result["msg"]
    assert "integrations and escalation chains need Admin" in result["msg"]
    result = run(name="X", type="webhook", oncall_api_token="0" * 64)
    assert result.exit_code == 1 and result["http_status"] == 403 and "rejected oncall_api_token" in result["msg"]
    result = run(name="X", type="webhook", oncall_api_token="Bearer " + oncall_server.token)
    assert result.exit_code == 1 and "drop the 'Bearer ' prefix" in result["msg"]
