# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/oncall.py: the OnCall API client against the engine stand-in over HTTP."""

from __future__ import annotations

import socket

import pytest
from ansible_collections.o11y.stack.plugins.module_utils.oncall import (
    OnCallClient,
    OnCallError,
    api_error_text,
    validate_oncall_url,
)


def client_for(url, token, **extra):
    params = {"oncall_url": url, "oncall_api_token": token, "validate_certs": True, "ca_path": None, "timeout": 5,
              "oncall_grafana_url": None}
    params.update(extra)
    return OnCallClient(params)


@pytest.fixture
def client(oncall_server):
    return client_for(oncall_server.url, oncall_server.token)


def test_list_all_follows_pages_by_number(client, oncall_server):
    for n in range(55):
        client.post("escalation_chains/", {"name": f"chain-{n:02d}"})
    first = client.get("escalation_chains/")
    assert first["count"] == 55 and len(first["results"]) == 50 and first["total_pages"] == 2
    assert first["next"] == oncall_server.url + "/api/v1/escalation_chains/?page=2"
    names = [c["name"] for c in client.list_all("escalation_chains")]
    assert names == [f"chain-{n:02d}" for n in range(55)]
    assert client.find_by_name("escalation_chains", "chain-54", "escalation chain")["name"] == "chain-54"
    assert client.find_by_name("escalation_chains", "missing", "escalation chain") is None


def test_url_suffix_and_users(oncall_server):
    client = client_for(oncall_server.url + "/api/v1/", oncall_server.token)
    assert client.resolve_users(["ADMIN", "bob.builder@example.com"]) == [oncall_server.users["admin"]["id"],
                                                                           oncall_server.users["bob"]["id"]]
    with pytest.raises(OnCallError, match=r"no OnCall user matches 'carol', 'dave'.*add them there"):
        client.resolve_users(["carol", "alice", "dave"])
    assert client.user_names([oncall_server.users["alice"]["id"], "UNKNOWN"]) == ["alice", "UNKNOWN"]


def test_400_carries_the_field_errors(client):
    with pytest.raises(OnCallError) as err:
        client.post("escalation_chains/", {})
    assert err.value.status == 400 and err.value.body == {"name": ["This field is required."]}
    assert "HTTP 400: name: This field is required. The engine rejected the request as invalid" in err.value.message
    with pytest.raises(OnCallError, match=r"HTTP 400: Invalid integration type\. The engine rejected"):
        client.post("integrations/", {"type": "nagios"})


def test_403_invalid_token_and_missing_permission(oncall_server):
    with pytest.raises(OnCallError) as err:
        client_for(oncall_server.url, "ab" * 32).list_all("users")
    assert err.value.status == 403 and err.value.body == {"detail": "Invalid token."}
    assert "rejected oncall_api_token" in err.value.message and "without 'Bearer'" in err.value.message
    viewer = client_for(oncall_server.url, oncall_server.tokens["bob"])
    assert viewer.list_all("integrations") == []  # a Viewer may read
    with pytest.raises(OnCallError) as err:
        viewer.post("integrations/", {"type": "webhook"})
    assert err.value.status == 403 and "act as the user who created them" in err.value.message
    assert "You do not have permission to perform this action." in err.value.message


def test_404_and_405(client):
    assert client.get_object("escalation_chains", "FNOTTHERE") is None
    with pytest.raises(OnCallError) as err:
        client.put("escalation_chains/FNOTTHERE/", {"name": "x"}, hints={404: "run the task again"})
    assert err.value.status == 404 and err.value.message.endswith("still exists. run the task again")
    with pytest.raises(OnCallError) as err:
        client.request("GET", "nonexistent_resource/")
    assert err.value.status == 404 and "HTTP 404. Check oncall_url" in err.value.message  # Django's HTML page
    with pytest.raises(OnCallError, match=r'HTTP 405: Method "POST" not allowed\. The engine does not allow'):
        client.post("users/", {})


def test_500_when_redis_is_down(oncall_engine, closed_port_url):
    from o11y_standins import oncall

    server = oncall_engine(closed_port_url.replace("http", "redis") + "/0")
    token = oncall.bootstrap_api_token(server.url, [{"id": 1, "login": "admin"}])["api_token"]
    with pytest.raises(OnCallError) as err:
        client_for(server.url, token).list_all("users")
    assert err.value.status == 500 and "that Redis answers" in err.value.message
    assert "journalctl" in err.value.message


def test_redirect_from_prod_settings(oncall_engine, redis_uri):
    server = oncall_engine(redis_uri, DJANGO_SETTINGS_MODULE="settings.prod_without_db")
    with pytest.raises(OnCallError) as err:
        client_for(server.url, "ab" * 32).get("users/")
    assert err.value.status == 301 and "redirects plain HTTP to HTTPS" in err.value.message
    assert "https://127.0.0.1:%d/api/v1/users/" % server.http[0].port in err.value.message
    from o11y_standins.testing import http_get

    assert http_get(server.url + "/health/")[:3:2] == (200, b"Ok")  # health paths are exempt
    assert http_get(server.url + "/api/internal/v1/health/")[0] == 301  # only the listed ones


def test_unreachable_timeout_and_not_json(closed_port_url, oncall_server):
    with pytest.raises(OnCallError, match=r"cannot reach OnCall at .*Check oncall_url and that the OnCall engine is "
                                          r"running"):
        client_for(closed_port_url, "t").get("users/")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        with pytest.raises(OnCallError, match=r"did not answer GET /api/v1/users/ within 1s"):
            client_for("http://127.0.0.1:%d" % silent.getsockname()[1], "t", timeout=1).get("users/")
    finally:
        silent.close()
    from o11y_standins import framework

    html = framework.HTTPService("html", "127.0.0.1:0",
                                 lambda env, start: (start("200 OK", [("Content-Type", "text/html")]),
                                                     [b"<html>Grafana</html>"])[1]).start()
    try:
        with pytest.raises(OnCallError, match=r"not JSON \(Content-Type text/html\); check that oncall_url points at "
                                              r"the OnCall engine"):
            client_for(html.url, "t").get("users/")
    finally:
        html.stop()


def test_service_account_token(oncall_server):
    sa_token = "glsa_o11y_service_account_token"
    oncall_server.grafana.sa_permissions[sa_token] = {"grafana-oncall-app.escalation-chains:read": [],
                                                      "grafana-oncall-app.escalation-chains:write": []}
    client = client_for(oncall_server.url, sa_token, oncall_grafana_url=oncall_server.grafana.url)
    assert client.post("escalation_chains/", {"name": "by-sa"})["name"] == "by-sa"
    assert ("GET", "/api/access-control/user/permissions", "Bearer " + sa_token) in oncall_server.grafana.calls
    with pytest.raises(OnCallError) as err:
        client.post("integrations/", {"type": "webhook"})
    assert err.value.status == 403 and "act as the user" in err.value.message
    with pytest.raises(OnCallError, match="Organization not found"):
        client_for(oncall_server.url, sa_token, oncall_grafana_url="http://other-grafana:3000").get("users/")
    with pytest.raises(OnCallError, match="Invalid token"):
        client_for(oncall_server.url, "glsa_unknown").get("users/")


def test_option_checks():
    assert validate_oncall_url("oncall:8080").startswith("oncall_url must be an http:// or https:// URL")
    assert "must not contain credentials" in validate_oncall_url("http://u:p@oncall:8080")
    assert "invalid port" in validate_oncall_url("http://oncall:99999")
    assert validate_oncall_url("https://oncall.example.com/") is None
    with pytest.raises(OnCallError, match="oncall_api_token must not be empty"):
        client_for("http://oncall:8080", " ")
    with pytest.raises(OnCallError, match="drop the 'Bearer ' prefix"):
        client_for("http://oncall:8080", "Bearer abc")
    with pytest.raises(OnCallError, match="oncall_grafana_url must be an http"):
        client_for("http://oncall:8080", "glsa_x", oncall_grafana_url="grafana")


def test_api_error_text_shapes():
    assert api_error_text({"detail": "Not found."}) == "Not found."
    assert api_error_text({"code": 1001, "message": "Invalid stack or org id", "fields": None}) == \
        "Invalid stack or org id"
    assert api_error_text({"rolling_users": {"0": ["User does not exist {'U1'}"]}}) == \
        "rolling_users: 0: User does not exist {'U1'}"
    assert api_error_text(["Failed to create"]) == "Failed to create"
