# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""o11y.stack.grafana_dashboard against the Grafana stand-in served over HTTP."""

from __future__ import annotations

import json

import pytest
from ansible_collections.o11y.stack.plugins.module_utils.grafana import GrafanaClient
from ansible_collections.o11y.stack.plugins.modules import grafana_dashboard

MODEL = {
    "uid": "stack-health",
    "title": "Stack health",
    "tags": ["o11y"],
    "schemaVersion": 41,
    "panels": [{"id": 1, "type": "stat", "title": "Targets up", "gridPos": {"h": 4, "w": 6, "x": 0, "y": 0},
                "targets": [{"refId": "A", "expr": "sum(up)"}]}],
}


@pytest.fixture
def run(run_module, grafana_params):
    def _run(check_mode=False, diff=True, **options):
        args = dict(grafana_params)
        args.update(options)
        return run_module(grafana_dashboard.main, args, check_mode=check_mode, diff=diff)

    return _run


def test_create_then_no_op(run, grafana_api):
    result = run(dashboard=MODEL)
    assert result["changed"] is True
    dash = result["dashboard"]
    assert dash["uid"] == "stack-health" and dash["version"] == 1 and dash["folder_uid"] == ""
    assert dash["url"] == "/d/stack-health/stack-health"
    assert result["diff"] == {"before": {}, "after": {"model": MODEL, "folder_uid": ""}}
    stored = grafana_api("GET", "/api/dashboards/uid/stack-health")[1]["dashboard"]
    assert stored["panels"] == MODEL["panels"]
    again = run(dashboard=MODEL)
    assert again["changed"] is False and again["dashboard"]["version"] == 1
    assert again["diff"]["before"] == again["diff"]["after"]


def test_json_string_file_and_export_wrapper(run, tmp_path):
    assert run(dashboard=json.dumps(MODEL))["changed"] is True
    path = tmp_path / "dash.json"
    # an export from another Grafana: wrapped, with that instance's id and version
    path.write_text(json.dumps({"dashboard": dict(MODEL, id=99, version=17), "meta": {"slug": "x"}}))
    assert run(path=str(path))["changed"] is False


def test_update_sends_a_new_version_only_on_change(run, grafana_api, grafana_server):
    run(dashboard=MODEL)
    changed = dict(MODEL, title="Stack health (v2)")
    result = run(dashboard=changed, commit_message="retitled")
    assert result["changed"] is True and result["dashboard"]["version"] == 2
    assert result["diff"]["before"]["model"]["title"] == "Stack health"
    assert result["diff"]["after"]["model"]["title"] == "Stack health (v2)"
    stored = grafana_api("GET", "/api/dashboards/uid/stack-health")[1]
    assert stored["dashboard"]["version"] == 2 and stored["meta"]["version"] == 2
    assert grafana_server.store.state["dashboards"]["1/stack-health"]["message"] == "retitled"
    assert run(dashboard=changed)["changed"] is False


def test_uid_option_overrides_the_model(run, grafana_api):
    result = run(dashboard=MODEL, uid="copy-of-health")
    assert result["dashboard"]["uid"] == "copy-of-health"
    assert grafana_api("GET", "/api/dashboards/uid/copy-of-health")[1]["dashboard"]["uid"] == "copy-of-health"
    assert grafana_api("GET", "/api/dashboards/uid/stack-health")[0] == 404


def test_folders_by_uid_and_title(run, grafana_api):
    grafana_api("POST", "/api/folders", {"uid": "o11y", "title": "Observability"})
    result = run(dashboard=MODEL, folder_uid="o11y")
    assert result["changed"] is True and result["dashboard"]["folder_uid"] == "o11y"
    assert run(dashboard=MODEL, folder_title="Observability")["changed"] is False
    result = run(dashboard=MODEL)  # no folder: back to the top level
    assert result["changed"] is True
    assert (result["diff"]["before"]["folder_uid"], result["diff"]["after"]["folder_uid"]) == ("o11y", "")
    assert grafana_api("GET", "/api/dashboards/uid/stack-health")[1]["meta"]["folderUid"] == ""
    result = run(dashboard=MODEL, folder_title="Nope")
    assert result.exit_code == 1 and "no folder titled 'Nope' exists" in result["msg"]
    result = run(dashboard=MODEL, folder_uid="nope")
    assert result.exit_code == 1 and "folder with uid 'nope' does not exist" in result["msg"]


def test_overwrite_false_keeps_changes_made_in_grafana(run, grafana_api):
    run(dashboard=MODEL, overwrite=False)
    edited = dict(MODEL, title="Edited in the UI", version=1)
    assert grafana_api("POST", "/api/dashboards/db", {"dashboard": edited})[0] == 200
    result = run(dashboard=MODEL, overwrite=False)
    assert result["changed"] is False and result["diverged"] is True
    assert "left unchanged because overwrite=false" in json.dumps(result["warnings"])
    assert grafana_api("GET", "/api/dashboards/uid/stack-health")[1]["dashboard"]["title"] == "Edited in the UI"
    result = run(dashboard=MODEL)  # overwrite=true (the default) puts the wanted model back
    assert result["changed"] is True and result["dashboard"]["version"] == 3


def test_check_mode(run, grafana_api):
    result = run(check_mode=True, dashboard=MODEL)
    assert result["changed"] is True and result["dashboard"]["version"] == 1
    assert grafana_api("GET", "/api/dashboards/uid/stack-health")[0] == 404
    run(dashboard=MODEL)
    assert run(check_mode=True, dashboard=MODEL)["changed"] is False
    result = run(check_mode=True, dashboard=dict(MODEL, tags=["changed"]))
    assert result["changed"] is True and result["dashboard"]["version"] == 2
    assert grafana_api("GET", "/api/dashboards/uid/stack-health")[1]["dashboard"]["tags"] == ["o11y"]
    result = run(check_mode=True, uid="stack-health", state="absent")
    assert result["changed"] is True
    assert grafana_api("GET", "/api/dashboards/uid/stack-health")[0] == 200


def test_delete(run, grafana_api):
    run(dashboard=MODEL)
    result = run(uid="stack-health", state="absent")
    assert result["changed"] is True and result["dashboard"] == {}
    assert result["diff"]["before"]["model"]["title"] == "Stack health" and result["diff"]["after"] == {}
    assert grafana_api("GET", "/api/dashboards/uid/stack-health")[0] == 404
    assert run(dashboard=MODEL, state="absent")["changed"] is False  # uid taken from the model


@pytest.mark.parametrize("options, message", [
    ({"dashboard": {"title": "no uid"}}, "needs a uid so that the task is idempotent"),
    ({"dashboard": "{not json"}, "is not valid JSON"),
    ({"dashboard": "[1, 2]"}, "must hold a JSON object"),
    ({"dashboard": {"uid": "x"}}, "needs a non-empty title"),
    ({"uid": "x"}, "needs the dashboard model"),
    ({"dashboard": {"uid": "bad uid", "title": "t"}}, "is not a valid Grafana uid"),
    ({"path": "/nonexistent/dash.json"}, "cannot read the dashboard file"),
    ({"dashboard": MODEL, "folder_uid": "a", "folder_title": "b"}, "mutually exclusive"),
])
def test_validation(run, options, message):
    result = run(**options)
    assert result.exit_code == 1 and message in result["msg"]


def test_401(run):
    result = run(grafana_password="wrong-password-value", dashboard=MODEL)
    assert result.exit_code == 1 and result["http_status"] == 401


def test_403_viewer_token(run_module, grafana_params, grafana_token):
    args = {"grafana_url": grafana_params["grafana_url"], "grafana_token": grafana_token("Viewer"),
            "dashboard": MODEL}
    result = run_module(grafana_dashboard.main, args)
    assert result.exit_code == 1 and result["http_status"] == 403
    assert "Permissions needed: dashboards:write" in result["msg"]


def test_404_wrong_sub_path(run, grafana_params):
    result = run(grafana_url=grafana_params["grafana_url"] + "/sub", dashboard=MODEL)
    assert result.exit_code == 1 and result["http_status"] == 404


def test_412_changed_by_someone_else_meanwhile(run, grafana_api, monkeypatch):
    run(dashboard=MODEL)
    real_post = GrafanaClient.post

    def race_then_post(self, path, body=None):
        if path == "/api/dashboards/db":
            grafana_api("POST", path, {"dashboard": dict(MODEL, title="Someone else", version=1)})
        return real_post(self, path, body)

    monkeypatch.setattr(GrafanaClient, "post", race_then_post)
    result = run(dashboard=dict(MODEL, tags=["mine"]))
    assert result.exit_code == 1 and result["http_status"] == 412
    assert "The dashboard has been changed by someone else" in result["msg"]


def test_5xx_and_unreachable(run, grafana_server, closed_port_url):
    grafana_server.app.break_database()
    result = run(dashboard=MODEL)
    assert result.exit_code == 1 and result["http_status"] == 500 and "Failed to save dashboard" in result["msg"]
    result = run(grafana_url=closed_port_url, dashboard=MODEL)
    assert result.exit_code == 1 and "cannot reach Grafana" in result["msg"]
