# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""o11y.stack.grafana_datasource against the Grafana stand-in served over HTTP."""

from __future__ import annotations

import json

import pytest
from ansible_collections.o11y.stack.plugins.module_utils.grafana import GrafanaClient
from ansible_collections.o11y.stack.plugins.modules import grafana_datasource

# Long, unique secrets: Ansible masks no_log values wherever they appear in the output.
TENANT = "tenant-value-0f4b2c9e77"
PASSWORD = "basic-auth-password-5d1e0a7731"
TOKEN = "bearer-token-value-8a3c6e1f02"

MIMIR = {
    "name": "Mimir",
    "uid": "mimir",
    "type": "prometheus",
    "url": "http://mimir.example.com:9009/prometheus",
    "json_data": {"httpMethod": "POST", "timeInterval": "15s"},
    "http_headers": {"X-Scope-OrgID": TENANT},
}


@pytest.fixture
def run(run_module, grafana_params):
    def _run(check_mode=False, diff=True, **options):
        args = dict(grafana_params)
        args.update(options)
        return run_module(grafana_datasource.main, args, check_mode=check_mode, diff=diff)

    return _run


def stored(grafana_server, uid):
    """The data source as the stand-in keeps it (secure values included), or None."""
    return next((d for d in grafana_server.store.state["datasources"].values() if d["uid"] == uid), None)


# ---------------------------------------------------------------------------
# create / idempotence / check mode
# ---------------------------------------------------------------------------


def test_create_then_no_op(run, grafana_server, grafana_api):
    result = run(**MIMIR)
    assert result.exit_code == 0 and result["changed"] is True
    assert result["secure_fields_sent"] == ["httpHeaderValue1"]
    ds = result["datasource"]
    assert ds["uid"] == "mimir" and ds["id"] and ds["version"] == 1
    assert ds["jsonData"] == {"httpMethod": "POST", "timeInterval": "15s", "httpHeaderName1": "X-Scope-OrgID"}
    assert ds["secureJsonFields"] == {"httpHeaderValue1": True}
    assert ds["access"] == "proxy" and ds["isDefault"] is True  # Grafana: the first data source is the default
    assert "typeLogoUrl" not in ds
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["url"] == MIMIR["url"]
    assert stored(grafana_server, "mimir")["secure"] == {"httpHeaderValue1": TENANT}
    assert grafana_api("GET", "/api/datasources/uid/mimir")[1]["jsonData"]["httpHeaderName1"] == "X-Scope-OrgID"

    again = run(**MIMIR)
    assert again["changed"] is False and again["secure_fields_sent"] == []
    assert again["diff"]["before"] == again["diff"]["after"]
    assert again["datasource"]["version"] == 1


def test_secrets_never_appear_in_the_result(run):
    result = run(basic_auth_user="grafana", basic_auth_password=PASSWORD, bearer_token=TOKEN, **MIMIR)
    text = json.dumps(result)
    assert result["changed"] is True
    for secret in (TENANT, PASSWORD, TOKEN):
        assert secret not in text


def test_check_mode_create_changes_nothing(run, grafana_api):
    result = run(check_mode=True, **MIMIR)
    assert result["changed"] is True
    assert result["datasource"]["uid"] == "mimir" and result["datasource"]["isDefault"] is True
    assert result["diff"]["after"]["jsonData"]["httpHeaderName1"] == "X-Scope-OrgID"
    assert grafana_api("GET", "/api/datasources") == (200, [])


def test_check_mode_on_a_converged_data_source_reports_nothing(run):
    run(**MIMIR)
    result = run(check_mode=True, **MIMIR)
    assert result["changed"] is False


def test_check_mode_update_changes_nothing(run, grafana_api):
    run(**MIMIR)
    result = run(check_mode=True, **dict(MIMIR, url="http://other:9009/prometheus"))
    assert result["changed"] is True
    assert result["diff"]["before"]["url"] == MIMIR["url"]
    assert result["diff"]["after"]["url"] == "http://other:9009/prometheus"
    assert grafana_api("GET", "/api/datasources/uid/mimir")[1]["url"] == MIMIR["url"]


# ---------------------------------------------------------------------------
# updates
# ---------------------------------------------------------------------------


def test_update_sends_only_what_differs_and_keeps_the_rest(run, grafana_server, grafana_api):
    # created outside the module with settings the module has no option for
    status, _ = grafana_api("POST", "/api/datasources", {
        "name": "Mimir", "uid": "mimir", "type": "prometheus", "url": "http://old:9009", "access": "proxy",
        "database": "legacy-db", "user": "legacy-user", "withCredentials": True,
        "jsonData": {"httpMethod": "GET"}, "secureJsonData": {"password": "kept-secret-value-22"}})
    assert status == 200
    result = run(name="Mimir", uid="mimir", url="http://new:9009/prometheus", json_data={"httpMethod": "POST"})
    assert result["changed"] is True and result["secure_fields_sent"] == []
    before, after = result["diff"]["before"], result["diff"]["after"]
    assert (before["url"], after["url"]) == ("http://old:9009", "http://new:9009/prometheus")
    assert (before["jsonData"], after["jsonData"]) == ({"httpMethod": "GET"}, {"httpMethod": "POST"})
    ds = grafana_api("GET", "/api/datasources/uid/mimir")[1]
    assert ds["version"] == 2
    assert (ds["database"], ds["user"], ds["withCredentials"]) == ("legacy-db", "legacy-user", True)
    assert stored(grafana_server, "mimir")["secure"] == {"password": "kept-secret-value-22"}
    assert run(name="Mimir", uid="mimir", url="http://new:9009/prometheus", json_data={"httpMethod": "POST"})[
        "changed"] is False


def test_unset_options_keep_the_current_values(run, grafana_api):
    run(**MIMIR)
    result = run(name="Mimir", uid="mimir")
    assert result["changed"] is False
    assert grafana_api("GET", "/api/datasources/uid/mimir")[1]["jsonData"]["timeInterval"] == "15s"


def test_rename_by_uid(run, grafana_api):
    run(**MIMIR)
    result = run(**dict(MIMIR, name="Mimir (prod)"))
    assert result["changed"] is True
    assert (result["diff"]["before"]["name"], result["diff"]["after"]["name"]) == ("Mimir", "Mimir (prod)")
    assert [d["name"] for d in grafana_api("GET", "/api/datasources")[1]] == ["Mimir (prod)"]


def test_find_by_name_without_uid(run, grafana_api):
    grafana_api("POST", "/api/datasources", {"name": "Loki", "type": "loki", "url": "http://loki:3100"})
    result = run(name="Loki", type="loki", url="http://loki:3100")
    assert result["changed"] is False and result["datasource"]["uid"]


def test_uid_of_an_existing_name_cannot_change(run, grafana_api):
    grafana_api("POST", "/api/datasources", {"name": "Mimir", "uid": "generated1", "type": "prometheus"})
    result = run(**MIMIR)
    assert result.exit_code == 1
    assert "already exists with uid 'generated1', not 'mimir'" in result["msg"]
    assert "set uid: generated1" in result["msg"]


def test_is_default_moves_the_flag(run, grafana_api):
    run(**MIMIR)
    result = run(name="Loki", uid="loki", type="loki", url="http://loki:3100", is_default=True)
    assert result["datasource"]["isDefault"] is True
    assert grafana_api("GET", "/api/datasources/uid/mimir")[1]["isDefault"] is False
    # Mimir's own task now wants it back
    result = run(is_default=True, **MIMIR)
    assert result["changed"] is True and result["diff"]["before"]["isDefault"] is False


def test_basic_auth_on_and_off(run, grafana_server):
    result = run(basic_auth_user="grafana", basic_auth_password=PASSWORD, **MIMIR)
    assert result["datasource"]["basicAuth"] is True and result["datasource"]["basicAuthUser"] == "grafana"
    assert sorted(result["secure_fields_sent"]) == ["basicAuthPassword", "httpHeaderValue1"]
    assert stored(grafana_server, "mimir")["secure"]["basicAuthPassword"] == PASSWORD
    assert run(basic_auth_user="grafana", basic_auth_password=PASSWORD, **MIMIR)["changed"] is False
    result = run(basic_auth_user="", **MIMIR)
    assert result["changed"] is True and result["datasource"]["basicAuth"] is False


# ---------------------------------------------------------------------------
# secure values
# ---------------------------------------------------------------------------


def test_on_create_does_not_resend_but_sends_new_keys(run, grafana_server):
    run(secure_json_data={"tlsClientKey": "first-key-value-123"}, **MIMIR)
    result = run(secure_json_data={"tlsClientKey": "second-key-value-456"}, **MIMIR)
    assert result["changed"] is False
    assert stored(grafana_server, "mimir")["secure"]["tlsClientKey"] == "first-key-value-123"
    result = run(secure_json_data={"tlsClientKey": "second-key-value-456", "tlsCACert": "ca-value-789"}, **MIMIR)
    assert result["changed"] is True and result["secure_fields_sent"] == ["tlsCACert"]
    assert result["diff"]["after"]["secureJsonFields"] == {"httpHeaderValue1": True, "tlsCACert": True,
                                                           "tlsClientKey": True}
    assert stored(grafana_server, "mimir")["secure"]["tlsClientKey"] == "first-key-value-123"


def test_always_rotates_every_run(run, grafana_server):
    run(**MIMIR)
    options = dict(MIMIR, http_headers={"X-Scope-OrgID": "rotated-tenant-value-31"}, secure_update="always")
    for _ in range(2):
        result = run(**options)
        assert result["changed"] is True and result["secure_fields_sent"] == ["httpHeaderValue1"]
    assert stored(grafana_server, "mimir")["secure"]["httpHeaderValue1"] == "rotated-tenant-value-31"


def test_headers_keep_their_slots_and_new_slots_get_values(run, grafana_server):
    run(**MIMIR)
    headers = {"X-Scope-OrgID": TENANT, "X-Extra": "extra-header-value-44"}
    result = run(**dict(MIMIR, http_headers=headers))
    assert result["changed"] is True and result["secure_fields_sent"] == ["httpHeaderValue2"]
    json_data = result["datasource"]["jsonData"]
    assert json_data["httpHeaderName1"] == "X-Scope-OrgID" and json_data["httpHeaderName2"] == "X-Extra"
    assert run(**dict(MIMIR, http_headers=headers))["changed"] is False
    # dropping the first header frees its slot; the remaining one stays in slot 2
    result = run(**dict(MIMIR, http_headers={"X-Extra": "extra-header-value-44"}))
    assert result["changed"] is True and "httpHeaderName1" not in result["datasource"]["jsonData"]
    # a new header in the freed slot 1 must have its value sent although httpHeaderValue1 is set
    result = run(**dict(MIMIR, http_headers={"X-Extra": "extra-header-value-44", "A-First": "a-first-value-55"}))
    assert result["secure_fields_sent"] == ["httpHeaderValue1"]
    assert stored(grafana_server, "mimir")["secure"]["httpHeaderValue1"] == "a-first-value-55"


def test_bearer_token_adds_an_authorization_header(run, grafana_server):
    run(**MIMIR)
    options = {k: v for k, v in MIMIR.items() if k != "http_headers"}
    result = run(bearer_token=TOKEN, **options)
    assert result["changed"] is True
    json_data = result["datasource"]["jsonData"]
    assert json_data["httpHeaderName1"] == "X-Scope-OrgID" and json_data["httpHeaderName2"] == "Authorization"
    assert stored(grafana_server, "mimir")["secure"] == {"httpHeaderValue1": TENANT,
                                                         "httpHeaderValue2": "Bearer " + TOKEN}
    assert run(bearer_token=TOKEN, **options)["changed"] is False


def test_bearer_token_conflicts_with_an_authorization_header(run):
    result = run(bearer_token=TOKEN, **dict(MIMIR, http_headers={"Authorization": "Basic xyz-value-66"}))
    assert result.exit_code == 1 and "mutually exclusive" in result["msg"]


# ---------------------------------------------------------------------------
# delete
# ---------------------------------------------------------------------------


def test_delete_by_uid_and_by_name(run, grafana_api):
    run(**MIMIR)
    run(name="Loki", type="loki", url="http://loki:3100")
    result = run(check_mode=True, uid="mimir", state="absent")
    assert result["changed"] is True and result["diff"]["before"]["name"] == "Mimir"
    assert grafana_api("GET", "/api/datasources/uid/mimir")[0] == 200
    result = run(uid="mimir", state="absent")
    assert result["changed"] is True and result["datasource"] == {} and result["diff"]["after"] == {}
    assert grafana_api("GET", "/api/datasources/uid/mimir")[0] == 404
    assert run(uid="mimir", state="absent")["changed"] is False
    assert run(name="Loki", state="absent")["changed"] is True
    assert grafana_api("GET", "/api/datasources")[1] == []


def test_provisioned_data_sources_are_refused(run, grafana_server):
    run(**MIMIR)
    stored(grafana_server, "mimir")["readOnly"] = True
    assert run(**MIMIR)["changed"] is False  # nothing to change is fine
    result = run(**dict(MIMIR, url="http://elsewhere:9009"))
    assert result.exit_code == 1 and "provisioned from a file (readOnly)" in result["msg"]
    result = run(uid="mimir", state="absent")
    assert result.exit_code == 1 and "provisioned from a file" in result["msg"]


def test_other_organisation(run, grafana_api):
    org_id = grafana_api("POST", "/api/orgs", {"name": "Team B"})[1]["orgId"]
    result = run(org_id=org_id, **MIMIR)
    assert result["changed"] is True and result["datasource"]["orgId"] == org_id
    assert grafana_api("GET", "/api/datasources/uid/mimir")[0] == 404
    assert grafana_api("GET", "/api/datasources/uid/mimir", org_id=org_id)[0] == 200


# ---------------------------------------------------------------------------
# validation and errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("options, message", [
    ({"uid": "has spaces", "name": "x", "type": "loki"}, "is not a valid Grafana uid"),
    ({"type": "loki"}, "name is required with state=present"),
    ({"state": "absent"}, "set uid or name"),
    ({"name": "new-one"}, "does not exist; set type to create it"),
    ({"name": "x" * 191, "type": "loki"}, "at most 190 characters"),
])
def test_validation(run, options, message):
    result = run(**options)
    assert result.exit_code == 1 and message in result["msg"]


def test_connection_options_are_checked(run_module, grafana_params):
    args = dict(grafana_params, grafana_token="glsa_x", name="x", type="loki")
    result = run_module(grafana_datasource.main, args)
    assert result.exit_code == 1 and "mutually exclusive" in result["msg"]
    args = {"grafana_url": grafana_params["grafana_url"], "name": "x", "type": "loki"}
    result = run_module(grafana_datasource.main, args)
    assert result.exit_code == 1 and "one of the following is required" in result["msg"]


def test_401_wrong_password(run):
    result = run(grafana_password="not-the-password", **MIMIR)
    assert result.exit_code == 1 and result["http_status"] == 401
    assert "Invalid username or password" in result["msg"] and "grafana_user/grafana_password" in result["msg"]


def test_403_viewer_token(run_module, grafana_params, grafana_token):
    args = {"grafana_url": grafana_params["grafana_url"], "grafana_token": grafana_token("Viewer")}
    result = run_module(grafana_datasource.main, dict(args, **MIMIR))
    assert result.exit_code == 1 and result["http_status"] == 403
    assert "Permissions needed: datasources:read" in result["msg"]


def test_404_wrong_sub_path(run, grafana_params):
    result = run(grafana_url=grafana_params["grafana_url"] + "/grafana", **MIMIR)
    assert result.exit_code == 1 and result["http_status"] == 404
    assert "Check grafana_url (including a sub-path" in result["msg"]


def test_409_rename_onto_an_existing_name(run):
    run(**MIMIR)
    run(name="Loki", uid="loki", type="loki")
    result = run(name="Loki", uid="mimir")
    assert result.exit_code == 1 and result["http_status"] == 409
    assert "data source with the same name already exists" in result["msg"]


def test_409_stale_version(run, grafana_api, monkeypatch):
    run(**MIMIR)
    real_get = GrafanaClient.get

    def get_then_race(self, path, query=None, missing_ok=False):
        answer = real_get(self, path, query=query, missing_ok=missing_ok)
        if path == "/api/datasources/uid/mimir":  # someone saves in between
            body = dict(answer, url="http://race:9009", version=answer["version"])
            grafana_api("PUT", path, body)
        return answer

    monkeypatch.setattr(GrafanaClient, "get", get_then_race)
    result = run(**dict(MIMIR, url="http://mine:9009"))
    assert result.exit_code == 1 and result["http_status"] == 409
    assert "already been updated by someone else" in result["msg"]


def test_5xx_broken_database(run, grafana_server):
    grafana_server.app.break_database()
    result = run(**MIMIR)
    assert result.exit_code == 1 and result["http_status"] == 500
    assert "Failed to add datasource" in result["msg"] and "Grafana server log" in result["msg"]


def test_unreachable(run, closed_port_url):
    result = run(grafana_url=closed_port_url, **MIMIR)
    assert result.exit_code == 1 and "cannot reach Grafana at" in result["msg"]
