# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Grafana stand-in: CLI and configuration as a subprocess, the HTTP API in-process."""

from __future__ import annotations

import base64
import json
import re
import socket
import sys
from pathlib import Path

import pytest

STANDINS = Path(__file__).resolve().parents[2] / "standins"
if str(STANDINS) not in sys.path:
    sys.path.insert(0, str(STANDINS))

from o11y_standins import grafana  # noqa: E402
from o11y_standins.testing import StandinProcess, free_port, http_get  # noqa: E402

ADMIN_PASSWORD = "o11y-test-grafana-admin-1"  # tests/unit/conftest.py GRAFANA_ADMIN_PASSWORD


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def home(tmp_path, ini=None):
    path = grafana.make_homepath(str(tmp_path / "home"))
    if ini is not None:
        (tmp_path / "grafana.ini").write_text(ini)
    return path


def ini_text(port, data, extra=""):
    return (f"[server]\nhttp_addr = 127.0.0.1\nhttp_port = {port}\n[paths]\ndata = {data}\nlogs = {data}/log\n"
            f"[security]\nadmin_password = {ADMIN_PASSWORD}\n" + extra)


def run(args, env=None, timeout=30):
    proc = StandinProcess(["grafana"] + list(args), env=env)
    try:
        code = proc.run(timeout=timeout)
        return code, proc.stdout, proc.stderr
    finally:
        proc.close()


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def test_version_flags():
    code, out, _ = run(["--version"])
    assert code == 0 and out.strip() == f"grafana version {grafana.DEFAULT_VERSION}"
    code, out, _ = run(["server", "-v"])
    assert code == 0 and out.startswith(f"Version {grafana.DEFAULT_VERSION} (commit: ")


@pytest.mark.parametrize("args", [["server", "--bogus"], ["server", "-no-such-flag=1"]])
def test_unknown_flag_fails_like_urfave(args):
    code, out, _ = run(args)
    assert code == 1
    assert "Incorrect Usage: flag provided but not defined: -" + args[1].lstrip("-").split("=")[0] in out


def test_legacy_grafana_server_name_warns_and_runs_server(capsys):
    assert grafana.main(["/usr/share/grafana/bin/grafana-server", "-v"]) == 0
    captured = capsys.readouterr()
    assert "Deprecation warning: The standalone 'grafana-server' program is deprecated" in captured.err
    assert captured.out.startswith(f"Version {grafana.DEFAULT_VERSION} ")


def test_missing_defaults_ini_is_fatal(tmp_path):
    code, _, err = run(["server", "--homepath", str(tmp_path)])
    assert code == 1
    assert "Could not find config defaults, make sure homepath command line parameter is set" in err


def test_missing_config_file_is_fatal(tmp_path):
    code, _, err = run(["server", "--homepath", home(tmp_path), "--config", str(tmp_path / "nope.ini")])
    assert code == 1 and "nope.ini: no such file or directory" in err


def test_bad_ini_line_is_fatal(tmp_path):
    path = home(tmp_path, "[server]\nthis line has no delimiter\n")
    code, _, err = run(["server", "--homepath", path, "--config", str(tmp_path / "grafana.ini")])
    assert code == 1 and "key-value delimiter not found: this line has no delimiter" in err


def test_inline_comments_are_part_of_the_value(tmp_path):
    # go-ini as Grafana loads it (IgnoreInlineComment): the port is "3000 ; web port"
    path = home(tmp_path, "[server]\nhttp_port = 3000 ; web port\n")
    code, _, err = run(["server", "--homepath", path, "--config", str(tmp_path / "grafana.ini")])
    assert code == 1 and "invalid port" in err


def test_settings_sources_and_precedence(tmp_path):
    path = home(tmp_path, "[server]\nhttp_port = 3100\nroot_url = %(protocol)s://example.org/\n"
                          "[security]\nadmin_user = $__env{GF_TEST_ADMIN}\n"
                          f"admin_password = $__file{{{tmp_path}/pw}}\nsecret_key = ${{GF_TEST_SECRET}}\n"
                          "[no_such_section]\nwhatever = 1\n[paths]\nno_such_key = x\n")
    (tmp_path / "pw").write_text("from-a-file\n")
    env = {"GF_TEST_ADMIN": "boss", "GF_TEST_SECRET": "s3cr3t", "GF_SERVER_HTTP_PORT": "3200"}
    settings = grafana.Settings(path, str(tmp_path / "grafana.ini"),
                                ["cfg:default.paths.data=/var/lib/grafana", "cfg:server.http_addr=127.0.0.2"], env)
    assert settings.get("server", "http_port") == "3200"  # environment beats the file
    assert settings.get("server", "http_addr") == "127.0.0.2"  # cfg: beats everything
    assert settings.get("server", "root_url") == "http://example.org/"
    assert settings.get("security", "admin_user") == "boss"
    assert settings.get("security", "admin_password") == "from-a-file"
    assert settings.get("security", "secret_key") == "s3cr3t"
    assert settings.data == "/var/lib/grafana"
    assert settings.db_path == "/var/lib/grafana/grafana.db"
    assert settings.plugins == str(Path(path) / "data/plugins")  # relative to the homepath, like upstream


def test_only_sqlite_is_supported(tmp_path):
    path = home(tmp_path, f"[database]\ntype = postgres\n[paths]\ndata = {tmp_path}/data\n")
    code, _, err = run(["server", "--homepath", path, "--config", str(tmp_path / "grafana.ini")])
    assert code == 1 and "supports only [database] type = sqlite3" in err


# ---------------------------------------------------------------------------
# the server as a subprocess
# ---------------------------------------------------------------------------


@pytest.fixture
def server_proc(tmp_path):
    procs = []

    def start(port, extra="", args=()):
        path = home(tmp_path, ini_text(port, tmp_path / "data", extra))
        proc = StandinProcess(["grafana", "server", "--homepath", path, "--config", str(tmp_path / "grafana.ini"),
                               *args], env={"NOTIFY_SOCKET": ""}).start()
        procs.append(proc)
        proc.wait_http(f"http://127.0.0.1:{port}/api/health")
        return proc

    yield start
    for proc in procs:
        proc.terminate()
        proc.close()


def api(port, method, path, body=None, headers=None):
    import urllib.error
    import urllib.request
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers=dict({"Content-Type": "application/json"}, **(headers or {})))
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_serves_health_metrics_and_persists_across_restarts(tmp_path, server_proc):
    port = free_port()
    proc = server_proc(port, args=["--pidfile", str(tmp_path / "grafana.pid")])
    status, _, body = http_get(f"http://127.0.0.1:{port}/api/health")
    health = json.loads(body)
    assert status == 200 and health["database"] == "ok" and health["version"] == grafana.DEFAULT_VERSION
    status, headers, body = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200 and "text/plain" in headers["content-type"]
    assert f'grafana_build_info{{branch="HEAD",edition="oss",' in body.decode()
    assert f'version="{grafana.DEFAULT_VERSION}"}} 1' in body.decode()
    assert (tmp_path / "grafana.pid").read_text() == str(proc.proc.pid)
    admin = basic("admin", ADMIN_PASSWORD)
    status, _ = api(port, "POST", "/api/datasources", {"name": "Loki", "uid": "loki", "type": "loki",
                                                      "url": "http://loki:3100"}, admin)
    assert status == 200
    assert (tmp_path / "data" / "grafana.db").is_file()
    assert (tmp_path / "data" / "log" / "grafana.log").is_file()
    assert proc.terminate() == 0
    assert 'msg="HTTP Server Listen"' in proc.stderr
    server_proc(port)  # same data directory
    status, ds = api(port, "GET", "/api/datasources/uid/loki", headers=admin)
    assert status == 200 and ds["url"] == "http://loki:3100"


def test_admin_password_only_applies_on_first_start_and_cli_resets_it(tmp_path, server_proc):
    port = free_port()
    proc = server_proc(port)
    assert proc.terminate() == 0
    (tmp_path / "grafana.ini").write_text(ini_text(port, tmp_path / "data").replace(ADMIN_PASSWORD, "changed-pw-1"))
    path = str(tmp_path / "home")
    restarted = StandinProcess(["grafana", "server", "--homepath", path, "--config", str(tmp_path / "grafana.ini")])
    restarted.start()
    try:
        restarted.wait_http(f"http://127.0.0.1:{port}/api/health")
        assert api(port, "GET", "/api/org", headers=basic("admin", "changed-pw-1"))[0] == 401
        assert api(port, "GET", "/api/org", headers=basic("admin", ADMIN_PASSWORD))[0] == 200
    finally:
        restarted.terminate()
        restarted.close()
    code, out, _ = run(["cli", "--homepath", path, "--config", str(tmp_path / "grafana.ini"), "admin",
                        "reset-admin-password", "reset-pw-2"])
    assert code == 0 and "Admin password changed successfully" in out
    again = StandinProcess(["grafana", "server", "--homepath", path, "--config", str(tmp_path / "grafana.ini")])
    again.start()
    try:
        again.wait_http(f"http://127.0.0.1:{port}/api/health")
        assert api(port, "GET", "/api/org", headers=basic("admin", "reset-pw-2"))[0] == 200
    finally:
        assert again.terminate() == 0
        again.close()


def test_port_in_use_fails(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        path = home(tmp_path, ini_text(port, tmp_path / "data"))
        code, _, err = run(["server", "--homepath", path, "--config", str(tmp_path / "grafana.ini")])
    assert code == 1 and "address already in use" in err


def test_metrics_basic_auth(server_proc):
    port = free_port()
    server_proc(port, extra="[metrics]\nbasic_auth_username = prom\nbasic_auth_password = scrape-pw\n")
    assert http_get(f"http://127.0.0.1:{port}/metrics")[0] == 401
    assert http_get(f"http://127.0.0.1:{port}/metrics", headers=basic("prom", "scrape-pw"))[0] == 200


# ---------------------------------------------------------------------------
# the HTTP API (in-process server from tests/unit/conftest.py)
# ---------------------------------------------------------------------------


def test_authentication_errors(grafana_server, grafana_api, grafana_token):
    status, body = api_raw(grafana_server, "GET", "/api/datasources")
    assert (status, body) == (401, {"message": "Unauthorized"})
    status, body = api_raw(grafana_server, "GET", "/api/datasources", headers=basic("admin", "wrong"))
    assert status == 401 and body["messageId"] == "password-auth.failed"
    assert body["message"] == "Invalid username or password"
    status, body = grafana_api("GET", "/api/datasources", token="glsa_notatoken_00000000")
    assert status == 401 and body["messageId"] == "api-key.invalid"
    token = grafana_token("Admin")
    assert grafana_api("GET", "/api/datasources", token=token)[0] == 200
    status, body = grafana_api("GET", "/api/datasources", token=token, org_id=2)
    assert status == 401 and body["messageId"] == "api-key.organization-mismatch"
    # basic auth with the api_key user carries a token too
    assert api_raw(grafana_server, "GET", "/api/datasources", headers=basic("api_key", token))[0] == 200


def api_raw(server, method, path, body=None, headers=None):
    port = int(server.url.rsplit(":", 1)[1])
    return api(port, method, path, body, headers)


def test_permissions_follow_the_role(grafana_api, grafana_token):
    viewer = grafana_token("Viewer")
    status, body = grafana_api("POST", "/api/datasources", {"name": "x", "type": "loki"}, token=viewer)
    assert status == 403 and body["title"] == "Access denied"
    assert body["message"].endswith("Permissions needed: datasources:create")
    assert body["accessErrorId"].startswith("ACE")
    editor = grafana_token("Editor")
    assert grafana_api("POST", "/api/folders", {"title": "by editor"}, token=editor)[0] == 200
    assert grafana_api("POST", "/api/datasources", {"name": "x", "type": "loki"}, token=editor)[0] == 403
    status, body = grafana_api("POST", "/api/serviceaccounts", {"name": "escalate", "role": "Admin"}, token=editor)
    assert status == 403


def test_datasource_lifecycle(grafana_server, grafana_api):
    status, created = grafana_api("POST", "/api/datasources", {
        "name": "Mimir", "uid": "mimir", "type": "prometheus", "url": "http://mimir:9009/prometheus",
        "access": "proxy", "jsonData": {"httpMethod": "POST"}, "secureJsonData": {"httpHeaderValue1": "t1"}})
    assert status == 200 and created["message"] == "Datasource added"
    ds = created["datasource"]
    assert ds["isDefault"] is True  # the first data source of an organisation becomes the default
    assert ds["version"] == 1 and ds["secureJsonFields"] == {"httpHeaderValue1": True}
    assert "secureJsonData" not in ds
    status, second = grafana_api("POST", "/api/datasources", {"name": "Loki", "type": "loki", "isDefault": True})
    assert second["datasource"]["uid"] and second["datasource"]["jsonData"] == {}
    assert grafana_api("GET", "/api/datasources/uid/mimir")[1]["isDefault"] is False
    assert grafana_api("POST", "/api/datasources", {"name": "Mimir", "type": "x"}) == \
        (409, {"message": "data source with the same name already exists"})
    assert grafana_api("POST", "/api/datasources", {"name": "Other", "uid": "mimir", "type": "x"})[0] == 409
    # PUT: jsonData replaced, secure values merged, version + 1, stale version refused
    status, updated = grafana_api("PUT", "/api/datasources/uid/mimir", {
        "name": "Mimir", "type": "prometheus", "url": "http://mimir:9009/prometheus", "access": "proxy",
        "jsonData": {"timeInterval": "15s"}, "secureJsonData": {"basicAuthPassword": "pw"}, "version": 1})
    assert status == 200 and updated["message"] == "Datasource updated"
    assert updated["datasource"]["jsonData"] == {"timeInterval": "15s"}
    assert updated["datasource"]["secureJsonFields"] == {"basicAuthPassword": True, "httpHeaderValue1": True}
    assert updated["datasource"]["version"] == 2
    status, body = grafana_api("PUT", "/api/datasources/uid/mimir", {"name": "Mimir", "type": "prometheus",
                                                                    "version": 1})
    assert status == 409 and "already been updated by someone else" in body["message"]
    status, body = grafana_api("PUT", "/api/datasources/uid/mimir", {"name": "Loki", "type": "prometheus",
                                                                    "version": 2})
    assert status == 409 and body["message"].startswith("Failed to update datasource: data source with the same name")
    assert grafana_api("GET", "/api/datasources/uid/nope") == (404, {"message": "Data source not found"})
    names = [d["name"] for d in grafana_api("GET", "/api/datasources")[1]]
    assert names == ["Loki", "Mimir"]
    assert grafana_api("GET", "/api/datasources/id/Loki")[1] == {"id": second["id"]}
    # provisioned (readOnly) data sources refuse API changes
    grafana_server.store.state["datasources"][str(second["id"])]["readOnly"] = True
    assert grafana_api("DELETE", "/api/datasources/uid/" + second["datasource"]["uid"]) == \
        (403, {"message": "Cannot delete read-only data source"})
    assert grafana_api("DELETE", "/api/datasources/uid/mimir") == (200, {"message": "Data source deleted",
                                                                          "id": ds["id"]})
    assert grafana_api("DELETE", "/api/datasources/uid/mimir")[0] == 404


def test_folders_nested_and_errors(grafana_api):
    assert grafana_api("POST", "/api/folders", {"title": ""}) == (400, {"message": "folder title cannot be empty"})
    assert grafana_api("POST", "/api/folders", {"title": "t", "uid": "bad uid"})[0] == 400
    status, top = grafana_api("POST", "/api/folders", {"uid": "top", "title": "Top"})
    assert status == 200 and top["version"] == 1 and "parentUid" not in top
    status, child = grafana_api("POST", "/api/folders", {"uid": "child", "title": "Child", "parentUid": "top"})
    assert child["parentUid"] == "top" and [p["uid"] for p in child["parents"]] == ["top"]
    assert grafana_api("POST", "/api/folders", {"uid": "top", "title": "Again"}) == \
        (412, {"status": "version-mismatch", "message": "the folder has been changed by someone else"})
    assert grafana_api("GET", "/api/folders/nope") == (404, {"status": "not-found", "message": "folder not found"})
    assert grafana_api("PUT", "/api/folders/top", {"title": "Renamed", "version": 7})[0] == 412
    status, renamed = grafana_api("PUT", "/api/folders/top", {"title": "Renamed", "version": 1})
    assert renamed["title"] == "Renamed" and renamed["version"] == 2
    assert [f["uid"] for f in grafana_api("GET", "/api/folders")[1]] == ["top"]
    assert [f["uid"] for f in grafana_api("GET", "/api/folders?parentUid=top")[1]] == ["child"]
    deep = "child"
    for level in range(2):
        uid = f"level{level}"
        assert grafana_api("POST", "/api/folders", {"uid": uid, "title": uid, "parentUid": deep})[0] == 200
        deep = uid
    status, body = grafana_api("POST", "/api/folders", {"title": "too deep", "parentUid": deep})
    assert status == 400 and body["messageId"] == "folder.maximum-depth-reached"
    grafana_api("POST", "/api/dashboards/db", {"dashboard": {"uid": "inside", "title": "Inside"},
                                               "folderUid": "level0"})
    assert grafana_api("POST", "/api/folders/child/move", {"parentUid": ""})[1].get("parentUid") is None
    assert grafana_api("DELETE", "/api/folders/child")[1]["message"] == "Folder deleted"
    assert grafana_api("GET", "/api/folders/level1")[0] == 404
    assert grafana_api("GET", "/api/dashboards/uid/inside")[0] == 404


def test_dashboards_versions_and_search(grafana_api):
    status, saved = grafana_api("POST", "/api/dashboards/db", {"dashboard": {"uid": "d1", "title": "Overview",
                                                                             "tags": ["o11y"]}})
    assert saved == {"id": saved["id"], "uid": "d1", "url": "/d/d1/overview", "status": "success", "version": 1,
                     "slug": "overview"}
    status, body = grafana_api("POST", "/api/dashboards/db", {"dashboard": {"uid": "d1", "title": "Overview 2"}})
    assert (status, body) == (412, {"status": "version-mismatch",
                                    "message": "The dashboard has been changed by someone else"})
    status, body = grafana_api("POST", "/api/dashboards/db", {"dashboard": {"uid": "d1", "title": "Overview 2",
                                                                            "version": 1}})
    assert status == 200 and body["version"] == 2
    assert grafana_api("POST", "/api/dashboards/db", {"dashboard": {"uid": "d1", "title": "Forced"},
                                                      "overwrite": True})[1]["version"] == 3
    assert grafana_api("POST", "/api/dashboards/db", {"dashboard": {"title": ""}}) == \
        (400, {"status": "empty-name", "message": "Dashboard title cannot be empty"})
    assert grafana_api("POST", "/api/dashboards/db", {"dashboard": {"title": "x"}, "folderUid": "nope"}) == \
        (400, {"message": "folder not found"})
    status, got = grafana_api("GET", "/api/dashboards/uid/d1")
    assert got["dashboard"] == {"uid": "d1", "title": "Forced", "id": saved["id"], "version": 3}
    assert got["meta"]["folderUid"] == "" and got["meta"]["folderTitle"] == "Dashboards"
    grafana_api("POST", "/api/folders", {"uid": "f", "title": "Folder F"})
    grafana_api("POST", "/api/dashboards/db", {"dashboard": {"uid": "d2", "title": "In F", "tags": ["x"]},
                                               "folderUid": "f"})
    hits = grafana_api("GET", "/api/search?query=f")[1]
    assert [(h["type"], h["uid"]) for h in hits] == [("dash-folder", "f"), ("dash-db", "d1"), ("dash-db", "d2")]
    assert [h["uid"] for h in grafana_api("GET", "/api/search?folderUIDs=f")[1]] == ["d2"]
    assert [h["uid"] for h in grafana_api("GET", "/api/search?type=dash-db&tag=x")[1]] == ["d2"]
    assert grafana_api("DELETE", "/api/dashboards/uid/d2")[1]["message"] == "Dashboard In F deleted"
    assert grafana_api("DELETE", "/api/dashboards/uid/d2") == (404, {"message": "Dashboard not found"})


def test_plugins_from_the_plugins_directory(grafana_server, grafana_api):
    plugin_dir = Path(grafana_server.settings.plugins) / "grafana-oncall-app"
    plugin_dir.mkdir(parents=True)
    (plugin_dir / "plugin.json").write_text(json.dumps({"id": "grafana-oncall-app", "type": "app",
                                                        "name": "OnCall", "info": {"version": "1.9.0"}}))
    status, body = grafana_api("GET", "/api/plugins/grafana-oncall-app/settings")
    assert status == 200 and body["enabled"] is False and body["info"]["version"] == "1.9.0"
    assert grafana_api("POST", "/api/plugins/grafana-oncall-app/settings", {
        "enabled": True, "jsonData": {"stackId": 5}, "secureJsonData": {"onCallApiToken": "x"}}) == \
        (200, {"message": "Plugin settings updated"})
    body = grafana_api("GET", "/api/plugins/grafana-oncall-app/settings")[1]
    assert body["enabled"] is True and body["jsonData"] == {"stackId": 5}
    assert body["secureJsonFields"] == {"onCallApiToken": True}
    assert grafana_api("GET", "/api/plugins/no-such-app/settings")[0] == 404


def test_service_accounts_and_tokens(grafana_api):
    status, sa = grafana_api("POST", "/api/serviceaccounts", {"name": "Ansible", "role": "Editor"})
    assert status == 201 and sa["login"] == "sa-1-ansible" and sa["role"] == "Editor" and sa["tokens"] == 0
    assert grafana_api("POST", "/api/serviceaccounts", {"name": "Ansible"})[0] == 409
    status, tok = grafana_api("POST", f"/api/serviceaccounts/{sa['id']}/tokens", {"name": "ci", "secondsToLive": 60})
    assert tok["key"].startswith("glsa_") and len(tok["key"].split("_")) == 3
    tokens = grafana_api("GET", f"/api/serviceaccounts/{sa['id']}/tokens")[1]
    assert [t["name"] for t in tokens] == ["ci"] and tokens[0]["hasExpired"] is False
    assert grafana_api("GET", "/api/folders", token=tok["key"])[0] == 200
    status, patched = grafana_api("PATCH", f"/api/serviceaccounts/{sa['id']}", {"isDisabled": True})
    assert patched["serviceaccount"]["isDisabled"] is True
    assert grafana_api("GET", "/api/folders", token=tok["key"])[1]["messageId"] == "api-key.revoked"
    found = grafana_api("GET", "/api/serviceaccounts/search?query=ansi")[1]
    assert found["totalCount"] == 1 and found["serviceAccounts"][0]["id"] == sa["id"]
    assert grafana_api("DELETE", f"/api/serviceaccounts/{sa['id']}") == (200, {"message": "Service account deleted"})
    assert grafana_api("GET", "/api/folders", token=tok["key"])[0] == 401


def test_alerting_provisioning(grafana_api):
    points = grafana_api("GET", "/api/v1/provisioning/contact-points")[1]
    assert [p["name"] for p in points] == ["grafana-default-email"]
    status, cp = grafana_api("POST", "/api/v1/provisioning/contact-points",
                             {"name": "oncall", "type": "webhook", "settings": {"url": "http://oncall/x"}})
    assert status == 202 and cp["uid"] and cp["provenance"] == "api"
    assert grafana_api("POST", "/api/v1/provisioning/contact-points",
                       {"name": "bad", "type": "webhook", "settings": {}})[0] == 400
    assert grafana_api("PUT", "/api/v1/provisioning/policies", {"receiver": "nobody"})[0] == 400
    assert grafana_api("PUT", "/api/v1/provisioning/policies", {"receiver": "oncall"}) == \
        (202, {"message": "policies updated"})
    assert grafana_api("GET", "/api/v1/provisioning/policies")[1]["receiver"] == "oncall"
    assert grafana_api("DELETE", "/api/v1/provisioning/contact-points/" + cp["uid"])[0] == 409
    status, other = grafana_api("POST", "/api/v1/provisioning/contact-points",
                                {"name": "hook", "type": "webhook",
                                 "settings": {"url": "http://x/y", "password": "hook-pw"}})
    assert other["settings"] == {"url": "http://x/y", "password": "[REDACTED]"}
    assert grafana_api("DELETE", "/api/v1/provisioning/contact-points/" + other["uid"]) == \
        (202, {"message": "contactpoint deleted"})


def test_orgs_and_org_header(grafana_api):
    status, body = grafana_api("POST", "/api/orgs", {"name": "Team B"})
    assert status == 200 and body["message"] == "Organization created"
    org_id = body["orgId"]
    assert grafana_api("POST", "/api/orgs", {"name": "team b"}) == (409, {"message": "Organization name taken"})
    grafana_api("POST", "/api/folders", {"uid": "only-in-b", "title": "B"}, org_id=org_id)
    assert grafana_api("GET", "/api/folders/only-in-b", org_id=org_id)[0] == 200
    assert grafana_api("GET", "/api/folders/only-in-b")[0] == 404
    assert grafana_api("GET", "/api/org", org_id=org_id)[1]["name"] == "Team B"
    assert grafana_api("GET", "/api/folders", org_id=99)[0] == 403  # not a member of org 99


def test_anonymous_access(tmp_path):
    path = grafana.make_homepath(str(tmp_path / "home"))
    settings = grafana.Settings(path, overrides=["cfg:server.http_addr=127.0.0.1", "cfg:server.http_port=0",
                                                 "cfg:auth.anonymous.enabled=true",
                                                 "cfg:paths.data=" + str(tmp_path / "data")], env={})
    server = grafana.GrafanaServer(settings).start()
    try:
        assert api_raw(server, "GET", "/api/folders")[0] == 200
        assert api_raw(server, "POST", "/api/folders", {"title": "x"})[0] == 403
    finally:
        server.stop()


def test_broken_database_answers_500(grafana_server, grafana_api):
    grafana_server.app.break_database()
    assert grafana_api("POST", "/api/datasources", {"name": "x", "type": "loki"}) == \
        (500, {"message": "Failed to add datasource"})
    status, _, body = http_get(grafana_server.url + "/api/health")
    assert status == 503 and json.loads(body)["database"] == "failing"
    assert grafana_api("GET", "/api/datasources") == (200, [])  # the data source was not kept


# (method, path, body, message of the 500 answer) of every write, on the objects rollback_fixtures creates
WRITES = [
    ("POST", "/api/datasources", {"name": "x", "type": "loki"}, "Failed to add datasource"),
    ("PUT", "/api/datasources/uid/ds1", {"name": "DS", "type": "loki", "url": "http://new"},
     "Failed to update datasource"),
    ("DELETE", "/api/datasources/uid/ds1", None, "Failed to delete datasource"),
    ("POST", "/api/folders", {"uid": "f3", "title": "F3"}, "Folder API error"),
    ("PUT", "/api/folders/f1", {"title": "New", "version": 1}, "Folder API error"),
    ("POST", "/api/folders/f1/move", {"parentUid": "f2"}, "Folder API error"),
    ("DELETE", "/api/folders/f1", None, "Folder API error"),
    ("POST", "/api/dashboards/db", {"dashboard": {"uid": "d2", "title": "D2"}}, "Failed to save dashboard"),
    ("POST", "/api/dashboards/db", {"dashboard": {"uid": "d1", "title": "D1 new", "version": 1}, "folderUid": "f1"},
     "Failed to save dashboard"),
    ("DELETE", "/api/dashboards/uid/d1", None, "Failed to delete dashboard"),
    ("POST", "/api/plugins/prometheus/settings", {"enabled": False}, "Failed to update plugin setting"),
    ("POST", "/api/serviceaccounts", {"name": "sa2"}, "Failed to create service account"),
    ("PATCH", "/api/serviceaccounts/{sa}", {"role": "Editor"}, "Failed update service account"),
    ("DELETE", "/api/serviceaccounts/{sa}", None, "Service account deletion error"),
    ("POST", "/api/serviceaccounts/{sa}/tokens", {"name": "t2"}, "failed to add service account token"),
    ("DELETE", "/api/serviceaccounts/{sa}/tokens/{token}", None, "Failed to delete service account token"),
    ("POST", "/api/v1/provisioning/contact-points", {"name": "cp2", "type": "webhook", "settings": {"url": "http://b"}},
     "database is locked"),
    ("PUT", "/api/v1/provisioning/contact-points/cp1", {"name": "cp1-renamed", "type": "webhook",
                                                        "settings": {"url": "http://c"}}, "database is locked"),
    ("PUT", "/api/v1/provisioning/policies", {"receiver": "cp1", "group_by": ["job"]}, "Internal Server Error"),
    ("DELETE", "/api/v1/provisioning/policies", None, "database is locked"),
]


@pytest.mark.parametrize("method, path, body, message", WRITES, ids=[f"{w[0]} {w[1]}" for w in WRITES])
def test_a_failed_write_leaves_the_state_as_it_was(grafana_server, grafana_api, method, path, body, message):
    def ok(answer):
        assert answer[0] in (200, 201, 202), answer
        return answer[1]

    ok(grafana_api("POST", "/api/datasources", {"name": "DS", "uid": "ds1", "type": "loki", "url": "http://old"}))
    ok(grafana_api("POST", "/api/folders", {"uid": "f1", "title": "F1"}))
    ok(grafana_api("POST", "/api/folders", {"uid": "f2", "title": "F2"}))
    ok(grafana_api("POST", "/api/dashboards/db", {"dashboard": {"uid": "d1", "title": "D1"}, "folderUid": "f1"}))
    ok(grafana_api("POST", "/api/plugins/prometheus/settings", {"enabled": True}))
    sa = ok(grafana_api("POST", "/api/serviceaccounts", {"name": "sa1", "role": "Viewer"}))["id"]
    token = ok(grafana_api("POST", f"/api/serviceaccounts/{sa}/tokens", {"name": "t1"}))["id"]
    ok(grafana_api("POST", "/api/v1/provisioning/contact-points",
                   {"uid": "cp1", "name": "cp1", "type": "webhook", "settings": {"url": "http://a"}}))
    ok(grafana_api("PUT", "/api/v1/provisioning/policies", {"receiver": "cp1"}))
    state = grafana_server.store.state
    before = json.loads(json.dumps({k: v for k, v in state.items() if k != "seq"}))

    grafana_server.app.break_database()
    status, answer = grafana_api(method, path.format(sa=sa, token=token), body)
    assert (status, answer["message"]) == (500, message)
    assert {k: v for k, v in state.items() if k != "seq"} == before


def test_logger_writes_stderr_and_the_log_file(tmp_path, capsys):
    log = grafana.GrafanaLogger(level="warn", file_path=str(tmp_path / "log" / "grafana.log"))
    log.info("dropped")
    log.warn("Slow query", logger="sqlstore", took="1.5 s")
    log.close()
    line = r'logger=sqlstore t=\S+Z level=warn msg="Slow query" took="1.5 s"\n'
    assert re.fullmatch(line, capsys.readouterr().err)
    assert re.fullmatch(line, (tmp_path / "log" / "grafana.log").read_text())
    # a log file that cannot be opened is reported, and logging goes on to stderr
    grafana.GrafanaLogger(file_path="/proc/no-such-dir/grafana.log").error("still logged")
    err = capsys.readouterr().err
    assert 'logger=log' in err and 'msg="Failed to open log file"' in err
    assert 'logger=server' in err and 'msg="still logged"' in err


def test_unknown_routes_and_bad_bodies(grafana_server, grafana_api):
    assert grafana_api("GET", "/api/no/such/thing") == (404, {"message": "Not found"})
    assert http_get(grafana_server.url + "/no-api")[0] == 404
    status, _, _ = http_get(grafana_server.url + "/api/datasources", method="POST",
                            headers=basic("admin", ADMIN_PASSWORD))
    assert status == 400


# ---------------------------------------------------------------------------
# data source proxy and the Pyroscope data source's resources
# ---------------------------------------------------------------------------


@pytest.fixture
def echo_server():
    """An HTTP server answering every request with its method, path, query, headers and body as JSON."""
    from o11y_standins import framework as fw
    from werkzeug.wrappers import Response

    def app(environ, start_response):
        from werkzeug.wrappers import Request
        req = Request(environ)
        body = json.dumps({"method": req.method, "path": req.path, "query": req.query_string.decode(),
                           "headers": dict(req.headers), "body": req.get_data(as_text=True)})
        status = 418 if req.path.endswith("/teapot") else 200
        return Response(body, status=status, content_type="application/json",
                        headers={"Set-Cookie": "upstream=1", "X-Upstream": "yes"})(environ, start_response)
    svc = fw.HTTPService("echo", "127.0.0.1:0", app).start()
    try:
        yield svc
    finally:
        svc.stop()


def proxy_call(server, method, path, body=None, headers=None):
    import urllib.error
    import urllib.request
    hdrs = dict(basic("admin", ADMIN_PASSWORD), **(headers or {}))
    req = urllib.request.Request(server.url + path, data=body, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_datasource_proxy_forwards_with_the_datasource_credentials(grafana_server, grafana_api, echo_server):
    status, created = grafana_api("POST", "/api/datasources", {
        "name": "Echo", "uid": "echo", "type": "loki", "url": echo_server.url + "/base/", "access": "proxy",
        "basicAuth": True, "basicAuthUser": "dsuser",
        "jsonData": {"httpHeaderName1": "X-Scope-OrgID"},
        "secureJsonData": {"basicAuthPassword": "dspw", "httpHeaderValue1": "tenant-1"}})
    assert status == 200
    status, headers, data = proxy_call(grafana_server, "POST",
                                       "/api/datasources/proxy/uid/echo/loki/api/v1/push?a=1&b=2", b"payload",
                                       {"Cookie": "grafana_session=x", "Content-Type": "text/plain"})
    seen = json.loads(data)
    assert status == 200 and seen["method"] == "POST" and seen["path"] == "/base/loki/api/v1/push"
    assert seen["query"] == "a=1&b=2" and seen["body"] == "payload"
    assert seen["headers"]["Authorization"] == "Basic " + base64.b64encode(b"dsuser:dspw").decode()
    assert seen["headers"]["X-Scope-Orgid"] == "tenant-1" and "Cookie" not in seen["headers"]
    assert headers.get("X-Upstream") == "yes" and "Set-Cookie" not in headers
    # the numeric id form, and the upstream status passed through
    status, _, data = proxy_call(grafana_server, "GET", "/api/datasources/proxy/%d/teapot" % created["id"])
    assert status == 418 and json.loads(data)["path"] == "/base/teapot"
    # without data source basic auth, the Grafana user's credentials are not forwarded
    grafana_api("POST", "/api/datasources", {"name": "Plain", "uid": "plain", "type": "tempo",
                                             "url": echo_server.url})
    seen = json.loads(proxy_call(grafana_server, "GET", "/api/datasources/proxy/uid/plain/api/echo")[2])
    assert "Authorization" not in seen["headers"]


def test_datasource_proxy_errors(grafana_server, grafana_api, grafana_token):
    port = free_port()
    grafana_api("POST", "/api/datasources", {"name": "Down", "uid": "down", "type": "prometheus",
                                             "url": "http://127.0.0.1:%d" % port})
    assert api_raw(grafana_server, "GET", "/api/datasources/proxy/uid/down/api/v1/query") == \
        (401, {"message": "Unauthorized"})
    assert proxy_call(grafana_server, "GET", "/api/datasources/proxy/uid/down/api/v1/query")[0] == 502
    status, _, data = proxy_call(grafana_server, "GET", "/api/datasources/proxy/uid/nope/x")
    assert (status, json.loads(data)) == (404, {"message": "Unable to find datasource"})
    assert proxy_call(grafana_server, "GET", "/api/datasources/proxy/uid/bad%21uid/x")[0] == 400
    assert json.loads(proxy_call(grafana_server, "GET", "/api/datasources/proxy/abc/x")[2]) == \
        {"message": "id is invalid"}
    status, _, data = proxy_call(grafana_server, "POST", "/api/datasources/proxy/uid/down/api/v1/admin/tsdb/snapshot")
    assert status == 403
    assert json.loads(data)["message"] == "non allow-listed POSTs not allowed on proxied Prometheus datasource"
    # Viewers may query (datasources:query)
    viewer = grafana_token("Viewer")
    assert proxy_call(grafana_server, "GET", "/api/datasources/proxy/uid/down/api/v1/query",
                      headers={"Authorization": "Bearer " + viewer})[0] == 502


def test_datasource_proxy_queries_mimir(grafana_server, grafana_api):
    import time as _time

    from o11y_standins import mimir, wire
    m = mimir.InProcessMimir({"multitenancy_enabled": False})
    try:
        now = int(_time.time() * 1000)
        body = wire.snappy_encode(mimir.encode_write_request([({"__name__": "o11y_up", "job": "a"}, [(now, 1.0)])]))
        assert proxy_call(type("S", (), {"url": m.url}), "POST", "/api/v1/push", body)[0] == 200
        grafana_api("POST", "/api/datasources", {"name": "Mimir", "uid": "mimir", "type": "prometheus",
                                                 "url": m.url + "/prometheus"})
        status, _, data = proxy_call(grafana_server, "POST", "/api/datasources/proxy/uid/mimir/api/v1/query",
                                     b"query=o11y_up", {"Content-Type": "application/x-www-form-urlencoded"})
        result = json.loads(data)["data"]["result"]
        assert status == 200 and result[0]["metric"] == {"__name__": "o11y_up", "job": "a"}
        assert result[0]["value"][1] == "1"
    finally:
        m.stop()


def test_pyroscope_datasource_resources(grafana_server, grafana_api):
    import time as _time
    import urllib.request

    from o11y_standins import framework as fw
    from o11y_standins import pyroscope
    router = fw.Router()
    pyroscope.ProfilingAPI({"multitenancy_enabled": True}).register(router)
    svc = fw.HTTPService("pyroscope", "127.0.0.1:0", router).start()
    try:
        now = int(_time.time())
        req = urllib.request.Request(svc.url + "/ingest?name=shop.cpu%%7Benv%%3Dprod%%7D&from=%d&until=%d" % (now, now),
                                     data=b"main;work 3\n", method="POST", headers={"X-Scope-OrgID": "t1"})
        assert urllib.request.urlopen(req, timeout=5).status == 200
        grafana_api("POST", "/api/datasources", {
            "name": "Pyroscope", "uid": "pyro", "type": "grafana-pyroscope-datasource", "url": svc.url,
            "jsonData": {"httpHeaderName1": "X-Scope-OrgID"}, "secureJsonData": {"httpHeaderValue1": "t1"}})
        base = "/api/datasources/uid/pyro/resources/"
        status, headers, data = proxy_call(grafana_server, "GET", base + "profileTypes")
        assert status == 200 and headers["Content-Type"] == "application/json"
        assert json.loads(data) == [{"id": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "label": "process_cpu - cpu"}]
        window = "start=%d&end=%d" % ((now - 60) * 1000, (now + 60) * 1000)
        status, _, data = proxy_call(grafana_server, "GET", base + "labelNames?query=%7Bservice_name%3D%22shop%22%7D&"
                                     + window)
        assert status == 200 and json.loads(data) == ["env", "pyroscope_spy"]
        status, _, data = proxy_call(grafana_server, "GET", base + "labelValues?label=service_name&query=%7B%7D&"
                                     + window)
        assert status == 200 and json.loads(data) == ["shop"]
        # an unparsable selector, an unknown resource, a data source of another type
        status, _, data = proxy_call(grafana_server, "GET", base + "labelNames?query=")
        assert (status, json.loads(data)["message"]) == (500, "Failed to call resource")
        assert proxy_call(grafana_server, "GET", base + "nothing")[0] == 404
        grafana_api("POST", "/api/datasources", {"name": "L", "uid": "loki1", "type": "loki", "url": svc.url})
        assert proxy_call(grafana_server, "GET", "/api/datasources/uid/loki1/resources/labels")[0] == 404
        # the data source without the tenant header: Pyroscope refuses, Grafana answers 500
        grafana_api("POST", "/api/datasources", {"name": "P2", "uid": "pyro2", "type": "grafana-pyroscope-datasource",
                                                 "url": svc.url})
        assert proxy_call(grafana_server, "GET", "/api/datasources/uid/pyro2/resources/profileTypes")[0] == 500
    finally:
        svc.stop()
