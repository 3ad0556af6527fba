# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""o11y.stack.grafana_plugin_settings against the Grafana stand-in served over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible_collections.o11y.stack.plugins.modules import grafana_plugin_settings

API_TOKEN = "oncall-api-token-value-7e5d3c"
ONCALL = {"plugin_id": "grafana-oncall-app", "json_data": {"onCallApiUrl": "http://oncall:8080", "stackId": 5},
          "secure_json_data": {"onCallApiToken": API_TOKEN}}


@pytest.fixture(autouse=True)
def oncall_installed(grafana_server):
    plugin = Path(grafana_server.settings.plugins) / "grafana-oncall-app"
    plugin.mkdir(parents=True)
    (plugin / "plugin.json").write_text(json.dumps({"id": "grafana-oncall-app", "type": "app", "name": "OnCall",
                                                    "info": {"version": "1.9.0"}}))


@pytest.fixture
def run(run_module, grafana_params):
    def _run(check_mode=False, **options):
        args = dict(grafana_params)
        args.update(options)
        return run_module(grafana_plugin_settings.main, args, check_mode=check_mode, diff=True)

    return _run


def stored(grafana_server):
    return grafana_server.store.state["plugin_settings"].get("1/grafana-oncall-app")


def test_enable_configure_then_no_op(run, grafana_server):
    result = run(**ONCALL)
    assert result["changed"] is True and result["secure_fields_sent"] == ["onCallApiToken"]
    assert result["diff"]["before"] == {"enabled": False, "pinned": False, "jsonData": None, "secureJsonFields": {}}
    assert result["plugin"] == {"id": "grafana-oncall-app", "type": "app", "name": "OnCall", "version": "1.9.0",
                                "enabled": True, "pinned": False, "jsonData": ONCALL["json_data"],
                                "secureJsonFields": {"onCallApiToken": True}}
    assert stored(grafana_server)["secure"] == {"onCallApiToken": API_TOKEN}
    assert API_TOKEN not in json.dumps(result)
    again = run(**ONCALL)
    assert again["changed"] is False and again["secure_fields_sent"] == []


def test_check_mode(run, grafana_api):
    result = run(check_mode=True, **ONCALL)
    assert result["changed"] is True and result["plugin"]["enabled"] is True
    assert grafana_api("GET", "/api/plugins/grafana-oncall-app/settings")[1]["enabled"] is False
    run(**ONCALL)
    assert run(check_mode=True, **ONCALL)["changed"] is False


def test_json_data_replaced_and_kept(run, grafana_api):
    run(**ONCALL)
    result = run(plugin_id="grafana-oncall-app", json_data={"onCallApiUrl": "http://other:8080"})
    assert result["changed"] is True
    assert result["diff"]["after"]["jsonData"] == {"onCallApiUrl": "http://other:8080"}
    assert run(plugin_id="grafana-oncall-app")["changed"] is False  # json_data unset keeps it
    body = grafana_api("GET", "/api/plugins/grafana-oncall-app/settings")[1]
    assert body["jsonData"] == {"onCallApiUrl": "http://other:8080"}
    assert body["secureJsonFields"] == {"onCallApiToken": True}


def test_secure_update_always_and_disable(run, grafana_server):
    run(**ONCALL)
    rotated = dict(ONCALL, secure_json_data={"onCallApiToken": "rotated-token-value-91"}, secure_update="always")
    assert run(**rotated)["changed"] is True
    assert stored(grafana_server)["secure"]["onCallApiToken"] == "rotated-token-value-91"
    result = run(plugin_id="grafana-oncall-app", enabled=False, pinned=True)
    assert result["changed"] is True and result["plugin"]["enabled"] is False and result["plugin"]["pinned"] is True


def test_not_installed(run):
    result = run(plugin_id="no-such-app")
    assert result.exit_code == 1 and "is not installed in Grafana: Plugin not found" in result["msg"]


def test_errors(run, run_module, grafana_params, grafana_token, grafana_server, closed_port_url):
    result = run(grafana_password="wrong-password-value", **ONCALL)
    assert result.exit_code == 1 and result["http_status"] == 401
    args = {"grafana_url": grafana_params["grafana_url"], "grafana_token": grafana_token("Editor")}
    result = run_module(grafana_plugin_settings.main, dict(args, **ONCALL))
    assert result.exit_code == 1 and result["http_status"] == 403
    assert "Permissions needed: plugins:write" in result["msg"]
    result = run(grafana_url=grafana_params["grafana_url"] + "/sub", **ONCALL)
    assert result.exit_code == 1 and result["http_status"] == 404 and "Check grafana_url" in result["msg"]
    grafana_server.app.break_database()
    result = run(**ONCALL)
    assert result.exit_code == 1 and result["http_status"] == 500
    result = run(grafana_url=closed_port_url, **ONCALL)
    assert result.exit_code == 1 and "cannot reach Grafana" in result["msg"]
