# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/grafana.py: the client against the Grafana stand-in and against misbehaving servers."""

from __future__ import annotations

import threading
import time

import pytest
from ansible_collections.o11y.stack.plugins.module_utils.http_api import diff_result
from ansible_collections.o11y.stack.plugins.module_utils.grafana import (
    GrafanaClient,
    GrafanaError,
    grafana_argument_spec,
    grafana_module,
    run_grafana_module,
    secure_fields_to_send,
    uid_problem,
    validate_grafana_url,
)
from o11y_standins import framework as fw


@pytest.fixture
def client(grafana_params):
    return GrafanaClient(grafana_params)


@pytest.fixture
def odd_server():
    """A server answering every request with the (status, body, headers[, delay]) it is told to."""
    answer = {"value": (200, "<html>hi</html>", {"Content-Type": "text/html"}, 0)}

    def app(environ, start_response):
        from werkzeug.wrappers import Response
        status, body, headers, delay = answer["value"]
        time.sleep(delay)
        return Response(body, status=status, headers=headers)(environ, start_response)

    service = fw.HTTPService("odd", "127.0.0.1:0", app).start()
    service.answer = answer
    yield service
    service.stop()


def test_argument_spec_is_a_copy():
    spec = grafana_argument_spec()
    spec["grafana_url"]["required"] = False
    assert grafana_argument_spec()["grafana_url"]["required"] is True
    assert grafana_argument_spec()["grafana_token"]["no_log"] is True
    assert grafana_argument_spec()["grafana_password"]["no_log"] is True


# -- the scaffolding every Grafana module runs in ---------------------------------------------

OFFLINE = {"grafana_url": "http://127.0.0.1:9", "grafana_token": "glsa_test"}  # no request is sent


def _demo_main(present, absent=None):
    def main():
        module = grafana_module({"a": {"type": "str"}, "b": {"type": "str"},
                                 "state": {"type": "str", "default": "present", "choices": ["present", "absent"]}},
                                mutually_exclusive=[("a", "b")])
        run_grafana_module(module, present, absent)
    return main


def test_grafana_module_keeps_the_connection_constraints_and_adds_the_modules(run_module):
    def present(module, client):
        return diff_result(False, {}, {}, check_mode=module.check_mode, base_url=client.base_url)

    main = _demo_main(present)
    result = run_module(main, dict(OFFLINE, a="x"), check_mode=True)
    assert result.exit_code == 0 and result["check_mode"] is True
    assert result["base_url"] == "http://127.0.0.1:9" and result["diff"] == {"before": {}, "after": {}}
    failed = run_module(main, dict(OFFLINE, a="x", b="y"))
    assert failed.exit_code == 1 and "mutually exclusive: a|b" in failed["msg"]
    failed = run_module(main, dict(OFFLINE, grafana_user="admin", grafana_password="pw"))
    assert failed.exit_code == 1 and "mutually exclusive: grafana_token|grafana_user" in failed["msg"]
    failed = run_module(main, {"grafana_url": OFFLINE["grafana_url"]})
    assert failed.exit_code == 1 and "one of the following is required: grafana_token, grafana_user" in failed["msg"]


def test_run_grafana_module_picks_the_state_and_reports_grafana_errors(run_module):
    def present(module, client):
        return {"changed": True, "ran": "present"}

    def absent(module, client):
        raise GrafanaError("Grafana said no. Fix it", status=403, method="DELETE", path="/api/x", body={"message": "no"})

    main = _demo_main(present, absent)
    assert run_module(main, OFFLINE)["ran"] == "present"
    failed = run_module(main, dict(OFFLINE, state="absent"))
    assert failed.exit_code == 1 and failed["msg"] == "Grafana said no. Fix it"
    assert failed["http_status"] == 403 and failed["request"] == "DELETE /api/x"
    assert failed["response"] == {"message": "no"}
    # without an absent function, state is not looked at
    assert run_module(_demo_main(present), dict(OFFLINE, state="absent"))["ran"] == "present"
    # a bad grafana_url fails before any request
    failed = run_module(_demo_main(present), dict(OFFLINE, grafana_url="grafana:3000"))
    assert failed.exit_code == 1 and "must be an http:// or https:// URL" in failed["msg"]


@pytest.mark.parametrize("creating, secure_update, expected", [
    (True, "on_create", {"new", "stored"}),
    (False, "always", {"new", "stored"}),
    (False, "on_create", {"new"}),
])
def test_secure_fields_to_send(creating, secure_update, expected):
    secure = {"new": "v1", "stored": "v2", "kept": None}  # None: keep the stored value, never sent
    assert secure_fields_to_send(secure, {"stored", "kept"}, secure_update, creating=creating) == expected


@pytest.mark.parametrize("url, problem", [
    ("", "must not be empty"),
    ("grafana:3000", "must be an http:// or https:// URL"),
    ("ftp://grafana", "must be an http:// or https:// URL"),
    ("http://admin:pw@grafana:3000", "must not contain credentials"),
    ("http://grafana:3000/?orgId=1", "must not contain a query"),
    ("http://grafana:99999", "invalid port"),
])
def test_bad_urls(url, problem):
    assert problem in validate_grafana_url(url)
    with pytest.raises(GrafanaError, match=problem):
        GrafanaClient({"grafana_url": url, "grafana_token": "t"})


def test_good_urls_and_uids():
    assert validate_grafana_url("https://example.com/grafana/") is None
    assert GrafanaClient({"grafana_url": "https://example.com/grafana/", "grafana_token": "t"}).base_url == \
        "https://example.com/grafana"
    assert uid_problem("mimir_1-a") is None
    assert "not a valid Grafana uid" in uid_problem("has space")
    assert "not a valid Grafana uid" in uid_problem("x" * 41)


def test_needs_credentials():
    with pytest.raises(GrafanaError, match="set grafana_token"):
        GrafanaClient({"grafana_url": "http://grafana:3000"})


def test_get_post_and_missing_ok(client):
    assert client.health()["database"] == "ok"
    assert client.get("/api/folders/nope", missing_ok=True) is None
    created = client.post("/api/folders", {"uid": "f1", "title": "F1"})
    assert created["uid"] == "f1"
    assert client.folder_by_uid("f1")["title"] == "F1"
    assert client.resolve_folder_uid(title="F1") == "f1"
    assert client.resolve_folder_uid() == ""
    assert client.delete("/api/folders/f1")["message"] == "Folder deleted"
    assert client.delete("/api/folders/f1", missing_ok=True) is None


def test_bearer_token_and_org_header(grafana_params, grafana_api, grafana_token):
    org = grafana_api("POST", "/api/orgs", {"name": "Second"})[1]
    token = grafana_token("Admin", org_id=org["orgId"])
    params = {"grafana_url": grafana_params["grafana_url"], "grafana_token": token}
    client = GrafanaClient(dict(params, org_id=org["orgId"]))
    client.post("/api/folders", {"uid": "second", "title": "In the second org"})
    assert grafana_api("GET", "/api/folders/second", org_id=org["orgId"])[0] == 200
    with pytest.raises(GrafanaError) as err:
        GrafanaClient(dict(params, org_id=1)).get("/api/folders")
    assert err.value.status == 401
    assert "API key does not belong to the requested organization" in err.value.message
    assert "only works in its own organisation: org_id=1" in err.value.message
    basic = GrafanaClient(dict(grafana_params, org_id=org["orgId"]))
    assert basic.folder_by_uid("second")["uid"] == "second"


def test_401_names_the_credentials(grafana_params):
    client = GrafanaClient(dict(grafana_params, grafana_password="wrong-password"))
    with pytest.raises(GrafanaError) as err:
        client.get("/api/folders")
    assert err.value.status == 401
    assert "Invalid username or password" in err.value.message
    assert "rejected the user 'admin'" in err.value.message
    kwargs = err.value.fail_kwargs()
    assert kwargs["http_status"] == 401 and kwargs["request"] == "GET /api/folders"
    assert kwargs["response"]["messageId"] == "password-auth.failed"


def test_403_names_the_missing_permission(grafana_params, grafana_token):
    client = GrafanaClient({"grafana_url": grafana_params["grafana_url"], "grafana_token": grafana_token("Viewer")})
    with pytest.raises(GrafanaError) as err:
        client.post("/api/datasources", {"name": "x", "type": "loki"})
    assert err.value.status == 403
    assert "Permissions needed: datasources:create" in err.value.message
    assert "service account token is not allowed" in err.value.message


def test_404_points_at_the_url(grafana_params):
    client = GrafanaClient(dict(grafana_params, grafana_url=grafana_params["grafana_url"] + "/grafana"))
    with pytest.raises(GrafanaError) as err:
        client.get("/api/folders")
    assert err.value.status == 404 and "Check grafana_url (including a sub-path" in err.value.message


def test_409_and_412(client):
    client.post("/api/datasources", {"name": "Loki", "type": "loki"})
    with pytest.raises(GrafanaError) as err:
        client.post("/api/datasources", {"name": "Loki", "type": "loki"})
    assert err.value.status == 409 and "data source with the same name already exists" in err.value.message
    assert err.value.api_message == "data source with the same name already exists"
    client.post("/api/folders", {"uid": "f", "title": "F"})
    with pytest.raises(GrafanaError) as err:
        client.put("/api/folders/f", {"title": "G", "version": 5})
    assert err.value.status == 412 and "changed by someone else" in err.value.message


def test_5xx_points_at_the_server_log(client, grafana_server):
    grafana_server.app.break_database()
    with pytest.raises(GrafanaError) as err:
        client.post("/api/datasources", {"name": "x", "type": "loki"})
    assert err.value.status == 500
    assert "Failed to add datasource" in err.value.message and "Grafana server log" in err.value.message


def test_unreachable(closed_port_url):
    client = GrafanaClient({"grafana_url": closed_port_url, "grafana_token": "t", "timeout": 5})
    with pytest.raises(GrafanaError) as err:
        client.get("/api/health")
    assert err.value.status is None
    assert f"cannot reach Grafana at {closed_port_url}" in err.value.message
    assert "Check grafana_url and that Grafana is running" in err.value.message


def test_tls_error(grafana_params):
    url = grafana_params["grafana_url"].replace("http://", "https://")
    with pytest.raises(GrafanaError) as err:
        GrafanaClient(dict(grafana_params, grafana_url=url)).get("/api/health")
    assert "TLS error talking to Grafana" in err.value.message and "validate_certs" in err.value.message


def test_timeout(odd_server):
    odd_server.answer["value"] = (200, "{}", {"Content-Type": "application/json"}, 2.5)
    client = GrafanaClient({"grafana_url": odd_server.url, "grafana_token": "t", "timeout": 1})
    with pytest.raises(GrafanaError, match="did not answer GET /api/health within 1s"):
        client.get("/api/health")


def test_not_json_and_redirects(odd_server):
    client = GrafanaClient({"grafana_url": odd_server.url, "grafana_token": "t"})
    with pytest.raises(GrafanaError, match="not JSON .Content-Type text/html.; check that grafana_url points at"):
        client.get("/api/health")
    odd_server.answer["value"] = (302, "", {"Location": "/login"}, 0)
    with pytest.raises(GrafanaError, match="with a redirect .302.; check grafana_url"):
        client.get("/api/folders")
    odd_server.answer["value"] = (502, "<html>Bad Gateway</html>", {"Content-Type": "text/html"}, 0)
    with pytest.raises(GrafanaError) as err:
        client.get("/api/folders")
    assert err.value.status == 502 and "Bad Gateway" in err.value.message


def test_ambiguous_and_missing_folders(client):
    client.post("/api/folders", {"uid": "a", "title": "Same"})
    client.post("/api/folders", {"uid": "b", "title": "Same"})
    with pytest.raises(GrafanaError, match="2 folders are titled 'Same' .a, b.; name the folder by uid"):
        client.resolve_folder_uid(title="Same")
    with pytest.raises(GrafanaError, match="no folder titled 'Nope' exists"):
        client.resolve_folder_uid(title="Nope")
    with pytest.raises(GrafanaError, match="folder with uid 'nope' does not exist"):
        client.resolve_folder_uid(uid="nope")


def test_concurrent_use_is_safe(client):
    errors = []

    def worker(n):
        try:
            client.post("/api/folders", {"uid": f"c{n}", "title": f"C{n}"})
        except GrafanaError as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(client.get("/api/folders")) == 5


# ---------------------------------------------------------------------------
# alerting provisioning API
# ---------------------------------------------------------------------------

HOOK = {"uid": "hook", "name": "Hook", "type": "webhook",
        "settings": {"url": "http://hook.example.com/", "password": "client-test-secret-51"}}


def _stored_point(grafana_server, uid):
    return next(cp for cp in grafana_server.store.state["alerting"]["1"]["contact_points"] if cp["uid"] == uid)


def test_contact_point_calls(client, grafana_server):
    created = client.create_contact_point(HOOK)
    assert created == {"uid": "hook", "name": "Hook", "type": "webhook", "disableResolveMessage": False,
                       "provenance": "api", "settings": {"url": "http://hook.example.com/", "password": "[REDACTED]"}}
    assert [cp["uid"] for cp in client.contact_points(name="Hook")] == ["hook"]
    assert client.contact_points(name="Nope") == []
    # [REDACTED] keeps the stored value
    body = dict(HOOK, settings={"url": "http://other/", "password": "[REDACTED]"})
    assert client.update_contact_point("hook", body) == {"message": "contactpoint updated"}
    assert _stored_point(grafana_server, "hook")["settings"] == {"url": "http://other/",
                                                                 "password": "client-test-secret-51"}
    # DELETE answers 202 with a message (the swagger docs say 204), also for a uid that does not exist
    assert client.delete_contact_point("hook") == {"message": "contactpoint deleted"}
    assert client.delete_contact_point("hook") == {"message": "contactpoint deleted"}


def test_contact_point_provenance_header(client, grafana_server):
    # Grafana looks only at the header's presence: even "false" disables the provenance
    client.request("POST", "/api/v1/provisioning/contact-points", body=dict(HOOK, uid="h1"),
                   headers={"X-Disable-Provenance": "false"})
    assert "provenance" not in client.contact_points(name="Hook")[0]
    client.create_contact_point(dict(HOOK, uid="h2", name="Hook 2"), disable_provenance=True)
    assert _stored_point(grafana_server, "h2")["provenance"] == ""
    client.update_contact_point("h2", dict(HOOK, uid="h2", name="Hook 2"))  # none -> api is allowed
    assert client.contact_points(name="Hook 2")[0]["provenance"] == "api"
    with pytest.raises(GrafanaError) as err:  # api -> none is not (the contact point service says 500)
        client.update_contact_point("h2", dict(HOOK, uid="h2", name="Hook 2"), disable_provenance=True)
    assert err.value.status == 500 and "cannot change provenance from 'api' to ''" in err.value.message


def test_contact_point_errors(client):
    with pytest.raises(GrafanaError) as err:
        client.create_contact_point({"name": "bad", "type": "webhook", "settings": {}})
    assert err.value.status == 400
    assert err.value.api_message == ('invalid object specification: failed to validate integration "bad" (UID ) of '
                                     'type "webhook": required field \'url\' is not specified')
    client.create_contact_point(HOOK)
    with pytest.raises(GrafanaError) as err:  # a taken uid: the handler answers 500
        client.create_contact_point(dict(HOOK, name="Other"))
    assert err.value.status == 500 and "already exists in contact point 'Hook'" in err.value.message
    with pytest.raises(GrafanaError) as err:
        client.update_contact_point("nope", HOOK)
    assert err.value.status == 404
    assert "contact point with uid 'nope' not found" in err.value.message
    assert "deleted while the module ran" in err.value.message
    client.set_policy_tree({"receiver": "Hook"})
    with pytest.raises(GrafanaError) as err:
        client.delete_contact_point("hook")
    assert err.value.status == 409
    assert err.value.body["messageId"] == "alerting.notifications.contact-points.referenced"
    assert "Contact point is currently referenced by a notification policy." in err.value.message
    assert "Point the notification policies (o11y.stack.grafana_notification_policy)" in err.value.message


def test_policy_tree_calls(client):
    default = {"receiver": "grafana-default-email", "group_by": ["grafana_folder", "alertname"]}
    assert client.policy_tree() == default
    client.create_contact_point(HOOK)
    tree = {"receiver": "Hook", "group_wait": "90s", "repeat_interval": "168h", "continue": False, "unknown": 1,
            "routes": [{"object_matchers": [["b", "=", '"2"'], ["a", "=~", "x|y"], ["a", "=", "x|y"]],
                        "group_by": []}]}
    assert client.set_policy_tree(tree) == {"message": "policies updated"}
    # what Grafana keeps: durations re-rendered, matchers unquoted and sorted, empty and false fields dropped
    assert client.policy_tree() == {"receiver": "Hook", "group_wait": "1m30s", "repeat_interval": "1w",
                                    "provenance": "api",
                                    "routes": [{"object_matchers": [["a", "=", "x|y"], ["a", "=~", "x|y"],
                                                                    ["b", "=", "2"]]}]}
    with pytest.raises(GrafanaError) as err:  # api -> none: 403 with an errutil body
        client.set_policy_tree({"receiver": "Hook"}, disable_provenance=True)
    assert err.value.status == 403 and err.value.body["messageId"] == "alerting.notifications.invalidProvenance"
    assert "provenance does not allow this change" in err.value.message
    assert "give it the role" not in err.value.message
    assert client.reset_policy_tree() == default  # works on an 'api' tree without the header
    assert client.policy_tree() == default
    client.set_policy_tree({"receiver": "Hook"}, disable_provenance=True)
    assert "provenance" not in client.policy_tree()


@pytest.mark.parametrize("tree, status, text", [
    ({"receiver": "grafana-default-email", "group_wait": "5 minutes"}, 400, "bad request data"),
    ({"receiver": "grafana-default-email", "routes": [{"object_matchers": [["a", "==", "b"]]}]}, 400,
     "bad request data"),
    ({"group_by": ["a"]}, 400, "root route must specify a default receiver"),
    ({"receiver": "grafana-default-email", "repeat_interval": "0s"}, 400, "repeat_interval cannot be zero"),
    ({"receiver": "grafana-default-email", "routes": [{"receiver": "ghost"}]}, 400, "receiver 'ghost' does not exist"),
])
def test_policy_tree_validation(client, tree, status, text):
    with pytest.raises(GrafanaError) as err:
        client.set_policy_tree(tree)
    assert err.value.status == status and text in err.value.message
