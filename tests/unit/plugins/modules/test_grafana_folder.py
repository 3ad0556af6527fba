# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""o11y.stack.grafana_folder against the Grafana stand-in served over HTTP."""

from __future__ import annotations

import pytest
from ansible_collections.o11y.stack.plugins.module_utils.grafana import GrafanaClient
from ansible_collections.o11y.stack.plugins.modules import grafana_folder


@pytest.fixture
def run(run_module, grafana_params):
    def _run(check_mode=False, diff=True, **options):
        args = dict(grafana_params)
        args.update(options)
        return run_module(grafana_folder.main, args, check_mode=check_mode, diff=diff)

    return _run


def test_create_then_no_op(run, grafana_api):
    result = run(uid="o11y", title="Observability")
    assert result["changed"] is True
    assert result["folder"]["uid"] == "o11y" and result["folder"]["version"] == 1
    assert result["diff"] == {"before": {}, "after": {"uid": "o11y", "title": "Observability", "parentUid": ""}}
    assert grafana_api("GET", "/api/folders/o11y")[1]["title"] == "Observability"
    again = run(uid="o11y", title="Observability")
    assert again["changed"] is False and again["folder"]["version"] == 1
    assert again["diff"]["before"] == again["diff"]["after"]


def test_check_mode(run, grafana_api):
    result = run(check_mode=True, uid="o11y", title="Observability")
    assert result["changed"] is True and result["folder"]["uid"] == "o11y"
    assert grafana_api("GET", "/api/folders/o11y")[0] == 404
    run(uid="o11y", title="Observability")
    assert run(check_mode=True, uid="o11y", title="Observability")["changed"] is False
    result = run(check_mode=True, uid="o11y", title="Renamed")
    assert result["changed"] is True and result["diff"]["after"]["title"] == "Renamed"
    assert grafana_api("GET", "/api/folders/o11y")[1]["title"] == "Observability"


def test_rename_and_move(run, grafana_api):
    run(uid="o11y", title="Observability")
    run(uid="teams", title="Teams")
    result = run(uid="o11y", title="Observability stack")
    assert result["changed"] is True and result["folder"]["version"] == 2
    result = run(uid="o11y", title="Observability stack", parent_uid="teams")
    assert result["changed"] is True
    assert result["diff"]["before"]["parentUid"] == "" and result["diff"]["after"]["parentUid"] == "teams"
    assert grafana_api("GET", "/api/folders/o11y")[1]["parentUid"] == "teams"
    # parent_uid unset leaves it where it is; "" moves it back to the top level
    assert run(uid="o11y", title="Observability stack")["changed"] is False
    result = run(uid="o11y", title="Observability stack", parent_uid="")
    assert result["changed"] is True and "parentUid" not in grafana_api("GET", "/api/folders/o11y")[1]


def test_nested_create_and_cycles(run):
    run(uid="top", title="Top")
    result = run(uid="child", title="Child", parent_uid="top")
    assert result["changed"] is True and result["folder"]["parentUid"] == "top"
    result = run(uid="top", title="Top", parent_uid="child")
    assert result.exit_code == 1 and "cannot be moved into itself or one of its subfolders" in result["msg"]
    result = run(uid="orphan", title="Orphan", parent_uid="missing")
    assert result.exit_code == 1 and "parent folder 'missing' does not exist" in result["msg"]


def test_found_by_title_without_uid(run, grafana_api):
    result = run(title="By title")
    assert result["changed"] is True and result["folder"]["uid"]
    assert run(title="By title")["changed"] is False
    grafana_api("POST", "/api/folders", {"title": "By title"})  # a second one, created by hand
    result = run(title="By title")
    assert result.exit_code == 1 and "2 folders are titled 'By title' here" in result["msg"]


def test_delete(run, grafana_api):
    run(uid="o11y", title="Observability")
    result = run(check_mode=True, uid="o11y", state="absent")
    assert result["changed"] is True and result["deleted_dashboards"] == 0
    assert grafana_api("GET", "/api/folders/o11y")[0] == 200
    result = run(uid="o11y", state="absent")
    assert result["changed"] is True and result["folder"] == {}
    assert result["diff"] == {"before": {"uid": "o11y", "title": "Observability", "parentUid": ""}, "after": {}}
    assert grafana_api("GET", "/api/folders/o11y")[0] == 404
    assert run(uid="o11y", state="absent")["changed"] is False


def test_delete_non_empty_needs_force(run, grafana_api):
    run(uid="o11y", title="Observability")
    run(uid="sub", title="Sub", parent_uid="o11y")
    grafana_api("POST", "/api/dashboards/db", {"dashboard": {"uid": "d1", "title": "D1"}, "folderUid": "o11y"})
    grafana_api("POST", "/api/dashboards/db", {"dashboard": {"uid": "d2", "title": "D2"}, "folderUid": "sub"})
    result = run(uid="o11y", state="absent")
    assert result.exit_code == 1 and "still holds 2 dashboard(s) and 1 subfolder(s)" in result["msg"]
    assert grafana_api("GET", "/api/folders/o11y")[0] == 200
    result = run(uid="o11y", state="absent", force=True)
    assert result["changed"] is True and result["deleted_dashboards"] == 2
    assert grafana_api("GET", "/api/dashboards/uid/d2")[0] == 404


@pytest.mark.parametrize("options, message", [
    ({"uid": "x"}, "missing: title"),
    ({"state": "absent"}, "set uid or title"),
    ({"uid": "bad uid", "title": "x"}, "is not a valid Grafana uid"),
    ({"uid": "a", "title": "x", "parent_uid": "a"}, "cannot be its own parent"),
    ({"uid": "a", "title": "  "}, "title must not be empty"),
])
def test_validation(run, options, message):
    result = run(**options)
    assert result.exit_code == 1 and message in result["msg"]


def test_401(run):
    result = run(grafana_password="wrong-password-value", uid="o11y", title="x")
    assert result.exit_code == 1 and result["http_status"] == 401


def test_403_viewer_token(run_module, grafana_params, grafana_token):
    args = {"grafana_url": grafana_params["grafana_url"], "grafana_token": grafana_token("Viewer"),
            "uid": "o11y", "title": "Observability"}
    result = run_module(grafana_folder.main, args)
    assert result.exit_code == 1 and result["http_status"] == 403
    assert "Permissions needed: folders:create" in result["msg"]


def test_404_wrong_sub_path(run, grafana_params):
    result = run(grafana_url=grafana_params["grafana_url"] + "/sub", uid="o11y", title="x")
    assert result.exit_code == 1 and result["http_status"] == 404


def test_412_created_by_someone_else_meanwhile(run, grafana_api, monkeypatch):
    grafana_api("POST", "/api/folders", {"uid": "o11y", "title": "Observability"})
    monkeypatch.setattr(GrafanaClient, "folder_by_uid", lambda self, uid: None)  # the read misses it
    result = run(uid="o11y", title="Observability")
    assert result.exit_code == 1 and result["http_status"] == 412
    assert "the folder has been changed by someone else" in result["msg"] and "run the task again" in result["msg"]


def test_5xx_and_unreachable(run, grafana_server, closed_port_url):
    grafana_server.app.break_database()
    result = run(uid="o11y", title="Observability")
    assert result.exit_code == 1 and result["http_status"] == 500 and "Folder API error" in result["msg"]
    result = run(grafana_url=closed_port_url, uid="o11y", title="Observability")
    assert result.exit_code == 1 and "cannot reach Grafana" in result["msg"]
