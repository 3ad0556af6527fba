# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Grafana side of OnCall: the grafana-oncall-app package from the mirror in the Grafana stand-in's plugins
directory, its backend's resource routes (install, status, sync, the proxy to the engine's internal API)
against the OnCall engine stand-in on a real Redis, and Grafana's Alertmanager configuration the engine reads."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

STANDINS = Path(__file__).resolve().parents[2] / "standins"
if str(STANDINS) not in sys.path:
    sys.path.insert(0, str(STANDINS))

from o11y_standins.testing import free_port, wait_until  # noqa: E402

_spec = importlib.util.spec_from_file_location("build_mirror_oncall_plugin", STANDINS / "build_mirror.py")
bm = importlib.util.module_from_spec(_spec)
sys.modules["build_mirror_oncall_plugin"] = bm
_spec.loader.exec_module(bm)

ADMIN = ("admin", "o11y-test-grafana-admin-1")  # tests/unit/conftest.py GRAFANA_ADMIN_*
PLUGIN = "grafana-oncall-app"
RES = f"/api/plugins/{PLUGIN}/resources"


def call(server, method, path, body=None, token=None, auth=True, raw=None):
    """(status, headers, text) of one request to the Grafana stand-in, as admin unless *token* is given."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    elif auth:
        headers["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % ADMIN).encode()).decode()
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(server.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode()


def jcall(server, method, path, body=None, token=None):
    status, headers, text = call(server, method, path, body, token)
    return status, (json.loads(text) if text else None)


def install_package(server, tmp_path):
    """Unpack the mirror's grafana-oncall-app release zip into Grafana's plugins directory, as the role does."""
    out = tmp_path / "mirror"
    bm.build_mirror(out, only=[PLUGIN], cache_dir=tmp_path / "cache", stream=io.StringIO())
    archive = bm.url_to_path(out, bm.ONCALL_PLUGIN_RELEASE_URL.format(version=bm.ONCALL_PLUGIN_VERSION))
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        assert all(n.startswith(PLUGIN + "/") for n in names)  # one top directory named after the id
        exe = zf.getinfo(PLUGIN + "/gpx_grafana_oncall_app_linux_amd64")
        assert (exe.external_attr >> 16) & 0o777 == 0o755  # unzip (ansible unarchive) keeps the mode
        zf.extractall(server.settings.plugins)
    return Path(server.settings.plugins) / PLUGIN


@pytest.fixture
def engine(oncall_engine, redis_uri, grafana_server):
    return oncall_engine(redis_uri, GRAFANA_API_URL=grafana_server.url)


@pytest.fixture
def configured(grafana_server, grafana_token, engine, tmp_path):
    """The plugin unpacked, enabled and pointed at the engine like upstream's README (stackId 5, orgId 100),
    with an Admin service account token as secureJsonData.grafanaToken."""
    install_package(grafana_server, tmp_path)
    token = grafana_token("Admin")
    status, body = jcall(grafana_server, "POST", f"/api/plugins/{PLUGIN}/settings", {
        "enabled": True, "jsonData": {"stackId": 5, "orgId": 100, "onCallApiUrl": engine.url,
                                      "grafanaUrl": grafana_server.url},
        "secureJsonData": {"grafanaToken": token}})
    assert status == 200, body
    return token


def test_release_zip_from_the_mirror_is_listed_as_a_backend_app(grafana_server, tmp_path):
    assert call(grafana_server, "POST", RES + "/plugin/install")[0] == 404  # not installed: Grafana's 404
    assert jcall(grafana_server, "GET", RES + "/tokens/") == (404, {"message": "Plugin not found"})
    plugin_dir = install_package(grafana_server, tmp_path)
    meta = json.loads((plugin_dir / "plugin.json").read_text())
    assert (meta["id"], meta["type"], meta["backend"], meta["executable"]) == (
        PLUGIN, "app", True, "gpx_grafana_oncall_app")
    assert (plugin_dir / "gpx_grafana_oncall_app_linux_amd64").is_file()
    listed = {p["id"]: p for p in jcall(grafana_server, "GET", "/api/plugins")[1]}
    assert listed[PLUGIN]["type"] == "app" and listed[PLUGIN]["info"]["version"] == "1.16.9"
    assert listed[PLUGIN]["enabled"] is False
    status, body = jcall(grafana_server, "GET", f"/api/plugins/{PLUGIN}/settings")
    assert status == 200 and body["enabled"] is False and body["jsonData"] is None


def test_enable_install_token_and_public_api_end_to_end(grafana_server, configured, engine):
    # before the install the engine refuses the plugin: the status says which part is missing
    status, body = jcall(grafana_server, "GET", RES + "/plugin/status")
    assert status == 200
    conn = body["pluginConnection"]
    assert conn["settings"] == {"ok": True} and conn["oncall_api_url"] == {"ok": False, "error": "Not validated"}
    assert conn["oncall_token"]["ok"] is False
    assert "Unauthorized/Forbidden while accessing OnCall engine: /api/internal/v1/plugin/v2/status, status " \
           "code: 403" in conn["oncall_token"]["error"]

    status, headers, text = call(grafana_server, "POST", RES + "/plugin/install")
    assert (status, text) == (200, "")
    status, settings = jcall(grafana_server, "GET", f"/api/plugins/{PLUGIN}/settings")
    assert settings["enabled"] is True and settings["pinned"] is True
    assert settings["jsonData"] == {"onCallApiUrl": engine.url, "stackId": 5, "orgId": 100, "license": "OpenSource",
                                    "grafanaUrl": grafana_server.url}
    assert settings["secureJsonFields"] == {"grafanaToken": True, "onCallApiToken": True}
    stored = grafana_server.store.state["plugin_settings"][f"1/{PLUGIN}"]["secure"]
    assert len(stored["onCallApiToken"]) == 128  # the engine's SHA-512 hex plugin token

    status, body = jcall(grafana_server, "GET", RES + "/plugin/status")
    assert status == 200 and all(e == {"ok": True} for e in body["pluginConnection"].values()), body
    assert (body["license"], body["version"], body["api_url"]) == ("OpenSource", "dev-oss", engine.url + "/")

    # an API token for automation, as a Grafana admin, through the plugin's proxy to /api/internal/v1/tokens/
    status, tok = jcall(grafana_server, "POST", RES + "/tokens/", {"name": "o11y-stack"})
    assert status == 201, tok
    assert set(tok) == {"id", "token", "name", "created_at"} and tok["name"] == "o11y-stack"
    status, listed = jcall(grafana_server, "GET", RES + "/tokens/")
    assert status == 200 and [t["name"] for t in listed] == ["o11y-stack"]

    def public(method, path, body=None, token=tok["token"]):
        req = urllib.request.Request(engine.url + path, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": token, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=20) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    status, page = public("GET", "/api/v1/integrations/")
    assert status == 200 and page["count"] == 0
    assert public("GET", "/api/v1/integrations/", token="0" * 64)[0] == 403
    status, users = public("GET", "/api/v1/users/")
    assert [u["username"] for u in users["results"]] == ["admin"]  # synced from Grafana's /api/org/users
    # a grafana_alerting integration: the engine reads Grafana's Alertmanager config with the plugin's token
    status, integ = public("POST", "/api/v1/integrations/", {"type": "grafana_alerting", "name": "Grafana"})
    assert status == 201, integ
    status, page = public("GET", "/api/v1/integrations/")
    assert [i["name"] for i in page["results"]] == ["Grafana"]


def test_proxy_needs_a_grafana_user_and_an_engine(grafana_server, configured, engine, grafana_token):
    assert call(grafana_server, "POST", RES + "/plugin/install")[0] == 200
    # service accounts are not among the org users the plugin looks the caller up in
    sa_token = grafana_token("Admin")
    status, _, text = call(grafana_server, "POST", RES + "/tokens/", {"name": "x"}, token=sa_token)
    assert status == 400 and text.startswith("user sa-1-test-admin-2 not found")
    # Grafana's own checks come first
    assert call(grafana_server, "POST", RES + "/tokens/", {"name": "x"}, auth=False)[0] == 401
    status, headers, _ = call(grafana_server, "OPTIONS", RES + "/tokens/")
    assert status == 405 and headers["Allow"] == "DELETE, GET, PATCH, POST, PUT"
    # the engine's own errors pass through unchanged
    status, body = jcall(grafana_server, "POST", RES + "/tokens/", {"name": ""})
    assert (status, body) == (400, {"detail": "Invalid token name"})
    # engine gone: the plugin answers 400 with Go's transport error
    engine.stop()
    status, _, text = call(grafana_server, "POST", RES + "/tokens/", {"name": "y"})
    port = engine.url.rsplit(":", 1)[1]
    assert status == 400
    assert text == 'Post "%s/api/internal/v1/tokens/": dial tcp 127.0.0.1:%s: connect: connection refused\n' % (
        engine.url, port)


def test_install_error_paths(grafana_server, grafana_token, engine, tmp_path):
    install_package(grafana_server, tmp_path)
    # installed but never configured: upstream's handler ends with an empty 200 and stores nothing
    assert call(grafana_server, "POST", RES + "/plugin/install")[:3:2] == (200, "")
    assert f"1/{PLUGIN}" not in grafana_server.store.state["plugin_settings"]
    status, _, text = call(grafana_server, "POST", RES + "/tokens/", {"name": "x"})
    assert (status, text) == (500, "OnCallSettingsFromContext: json.Unmarshal: unexpected end of JSON input\n")
    status, _, text = call(grafana_server, "GET", RES + "/plugin/install")
    assert (status, text) == (405, "Method not allowed\n")

    token = grafana_token("Admin")

    def configure(**json_data):
        data = {"stackId": 5, "orgId": 100, "onCallApiUrl": engine.url, "grafanaUrl": grafana_server.url}
        data.update(json_data)
        data = {k: v for k, v in data.items() if v is not None}
        assert jcall(grafana_server, "POST", f"/api/plugins/{PLUGIN}/settings", {
            "enabled": True, "jsonData": data, "secureJsonData": {"grafanaToken": token}})[0] == 200

    # engine unreachable: the health check's transport error, 400
    dead = "http://127.0.0.1:%d" % free_port()
    configure(onCallApiUrl=dead)
    status, _, text = call(grafana_server, "POST", RES + "/plugin/install")
    assert status == 400
    assert text == 'Get "%s/api/internal/v1/health/": dial tcp 127.0.0.1:%s: connect: connection refused\n' % (
        dead, dead.rsplit(":", 1)[1])
    body = jcall(grafana_server, "GET", RES + "/plugin/status")[1]
    assert body["pluginConnection"]["oncall_api_url"]["error"].startswith(
        'Error checking OnCall API health. Get "%s/api/internal/v1/health/"' % dead)
    # the engine refuses a stack other than its self-hosted one: a 200 carrying onCallError
    configure(stackId=None)
    status, headers, text = call(grafana_server, "POST", RES + "/plugin/install")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(text) == {"onCallError": {"code": 1001,
                                                "message": "Invalid stack or org id for self-hosted organization"}}
    assert "onCallApiToken" not in grafana_server.store.state["plugin_settings"][f"1/{PLUGIN}"]["secure"]
    body = jcall(grafana_server, "GET", RES + "/plugin/status")[1]
    assert body["pluginConnection"]["settings"] == {"ok": False, "error": "jsonData.stackId is not set"}
    # a Grafana token Grafana does not know: no sync data, an empty 200, nothing installed
    assert jcall(grafana_server, "POST", f"/api/plugins/{PLUGIN}/settings", {
        "enabled": True, "jsonData": {"stackId": 5, "orgId": 100, "onCallApiUrl": engine.url,
                                      "grafanaUrl": grafana_server.url},
        "secureJsonData": {"grafanaToken": "glsa_not_a_token_00000000"}})[0] == 200
    assert call(grafana_server, "POST", RES + "/plugin/install")[:3:2] == (200, "")
    assert "onCallApiToken" not in grafana_server.store.state["plugin_settings"][f"1/{PLUGIN}"]["secure"]
    # ... and /plugin/status fails while looking the caller up among the org users with that token
    status, _, text = call(grafana_server, "GET", RES + "/plugin/status")
    assert status == 500 and text.startswith("error setting up request headers: failed to parse JSON response: "
                                             "json: cannot unmarshal object into Go value of type []plugin.OrgUser")
    assert '"messageId": "api-key.invalid"' in text


def test_sync_runs_once_per_five_minutes(grafana_server, configured, engine):
    assert call(grafana_server, "POST", RES + "/plugin/install")[0] == 200
    status, _, text = call(grafana_server, "POST", RES + "/plugin/sync?wait=maybe")
    assert (status, text) == (400, 'strconv.ParseBool: parsing "maybe": invalid syntax\n')
    assert call(grafana_server, "POST", RES + "/plugin/sync?wait=true&force=true")[:3:2] == (200, "")
    status, _, text = call(grafana_server, "POST", RES + "/plugin/sync?wait=true")
    assert status == 400 and text.startswith("sync already in progress, OnCallSyncCache is locked, remaining time")
    assert call(grafana_server, "GET", RES + "/plugin/sync")[0] == 405
    # a settings change is a new plugin instance: its sync lock is free again
    status, body = jcall(grafana_server, "POST", f"/api/plugins/{PLUGIN}/settings", {"enabled": True})
    assert status == 200
    assert call(grafana_server, "POST", RES + "/plugin/sync?wait=1")[0] == 200


def test_frontend_only_plugins_have_no_resources(grafana_server):
    plugin_dir = Path(grafana_server.settings.plugins) / PLUGIN
    plugin_dir.mkdir(parents=True)
    (plugin_dir / "plugin.json").write_text(json.dumps({"id": PLUGIN, "type": "app", "info": {"version": "1.9.0"}}))
    assert jcall(grafana_server, "POST", RES + "/plugin/install") == (404, {"message": "Plugin not found"})


def test_grafana_alertmanager_config_follows_provisioning(grafana_server, grafana_api, grafana_token):
    viewer = grafana_token("Viewer")
    status, cfg = grafana_api("GET", "/api/alertmanager/grafana/config/api/v1/alerts", token=viewer)
    assert status == 200
    am = cfg["alertmanager_config"]
    assert am["route"] == {"receiver": "grafana-default-email", "group_by": ["grafana_folder", "alertname"]}
    assert [r["name"] for r in am["receivers"]] == ["grafana-default-email"]
    status, cp = grafana_api("POST", "/api/v1/provisioning/contact-points", {
        "name": "oncall", "type": "oncall",
        "settings": {"url": "http://oncall:8080/integrations/v1/grafana_alerting/x/", "password": "s3cret"}})
    assert status == 202, cp
    tree = {"receiver": "grafana-default-email", "routes": [{"receiver": "oncall",
                                                             "object_matchers": [["severity", "=", "page"]]}]}
    assert grafana_api("PUT", "/api/v1/provisioning/policies", tree)[0] == 202
    am = grafana_api("GET", "/api/alertmanager/grafana/config/api/v1/alerts")[1]["alertmanager_config"]
    assert am["route"]["routes"][0]["receiver"] == "oncall"
    oncall = next(r for r in am["receivers"] if r["name"] == "oncall")["grafana_managed_receiver_configs"][0]
    assert oncall["type"] == "oncall" and oncall["uid"] == cp["uid"]
    assert oncall["settings"] == {"url": "http://oncall:8080/integrations/v1/grafana_alerting/x/"}
    assert oncall["secureFields"] == {"password": True}
    # Grafana's own answer to a caller without a role: 401 without credentials
    assert grafana_api("GET", "/api/alertmanager/grafana/config/api/v1/alerts", token="glsa_x_00000000")[0] == 401


def test_org_users_and_teams_for_the_plugin(grafana_api, grafana_token):
    status, users = grafana_api("GET", "/api/org/users")
    assert status == 200 and [(u["login"], u["role"], u["userId"]) for u in users] == [("admin", "Admin", 1)]
    assert users[0]["email"] == "admin@localhost"
    grafana_token("Admin")  # service accounts are not org users
    assert [u["login"] for u in grafana_api("GET", "/api/org/users")[1]] == ["admin"]
    assert grafana_api("GET", "/api/org/users", token=grafana_token("Viewer"))[0] == 403
    assert grafana_api("GET", "/api/teams/search?perpage=100000")[1] == {
        "totalCount": 0, "teams": [], "page": 1, "perPage": 100000}


def test_status_triggers_a_sync_when_everything_is_ok(grafana_server, configured, engine):
    assert call(grafana_server, "POST", RES + "/plugin/install")[0] == 200
    body = jcall(grafana_server, "GET", RES + "/plugin/status")[1]
    assert all(e["ok"] for e in body["pluginConnection"].values())
    backend = grafana_server.app.plugin_backends[PLUGIN]
    wait_until(lambda: any(i.last_sync is not None for i in backend.instances.values()), timeout=10,
               message="the sync started by /plugin/status")
    inst = next(iter(backend.instances.values()))
    assert [u["login"] for u in inst.last_sync["users"]] == ["admin"]
    assert inst.last_sync["settings"]["stack_id"] == 5 and inst.last_sync["teams"] is None
    # the lock holds for five minutes after a sync
    assert call(grafana_server, "POST", RES + "/plugin/sync?wait=true")[0] == 400
