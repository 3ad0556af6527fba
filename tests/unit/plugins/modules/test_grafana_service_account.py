# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""o11y.stack.grafana_service_account against the Grafana stand-in served over HTTP."""

from __future__ import annotations

import pytest
from ansible_collections.o11y.stack.plugins.modules import grafana_service_account


@pytest.fixture
def run(run_module, grafana_params):
    def _run(check_mode=False, **options):
        args = dict(grafana_params)
        args.update(options)
        return run_module(grafana_service_account.main, args, check_mode=check_mode, diff=True)

    return _run


def test_create_with_token_then_no_op(run, grafana_api):
    result = run(name="ansible", role="Admin", token_name="ci")
    assert result["changed"] is True and result["token_created"] is True
    token = result["token"]
    assert token.startswith("glsa_")
    assert result["service_account"]["role"] == "Admin" and result["service_account"]["tokens"] == 1
    assert result["diff"] == {"before": {}, "after": {"name": "ansible", "role": "Admin", "isDisabled": False,
                                                      "tokens": ["ci"]}}
    assert grafana_api("GET", "/api/folders", token=token)[0] == 200  # the token works
    again = run(name="ansible", role="Admin", token_name="ci")
    assert again["changed"] is False and again["token_created"] is False and "token" not in again


def test_check_mode_creates_nothing(run, grafana_api):
    result = run(check_mode=True, name="ansible", role="Editor", token_name="ci")
    assert result["changed"] is True and result["token_created"] is True and "token" not in result
    assert grafana_api("GET", "/api/serviceaccounts/search")[1]["totalCount"] == 0


def test_update_role_and_disable(run, grafana_api):
    first = run(name="ansible", token_name="ci")
    assert first["service_account"]["role"] == "Viewer"
    result = run(name="ansible", role="Editor", disabled=True)
    assert result["changed"] is True
    assert (result["diff"]["before"]["role"], result["diff"]["after"]["role"]) == ("Viewer", "Editor")
    assert result["service_account"]["isDisabled"] is True
    assert grafana_api("GET", "/api/folders", token=first["token"])[1]["messageId"] == "api-key.revoked"
    assert run(name="ansible", role="Editor", disabled=True)["changed"] is False


def test_rotate_token(run, grafana_api):
    first = run(name="ansible", role="Admin", token_name="ci")
    rotated = run(name="ansible", role="Admin", token_name="ci", rotate_token=True)
    assert rotated["changed"] is True and rotated["token"] != first["token"]
    assert grafana_api("GET", "/api/folders", token=first["token"])[0] == 401
    assert grafana_api("GET", "/api/folders", token=rotated["token"])[0] == 200


def test_delete(run, grafana_api):
    run(name="ansible", token_name="ci")
    assert run(check_mode=True, name="ansible", state="absent")["changed"] is True
    result = run(name="ansible", state="absent")
    assert result["changed"] is True and result["diff"]["before"]["tokens"] == ["ci"]
    assert grafana_api("GET", "/api/serviceaccounts/search")[1]["totalCount"] == 0
    assert run(name="ansible", state="absent")["changed"] is False


def test_validation_and_errors(run, run_module, grafana_params, grafana_token, grafana_server, closed_port_url):
    assert "rotate_token needs token_name" in run(name="x", rotate_token=True)["msg"]
    assert "token_ttl must be 0" in run(name="x", token_ttl=-1)["msg"]
    result = run(grafana_password="wrong-password-value", name="x")
    assert result.exit_code == 1 and result["http_status"] == 401
    args = {"grafana_url": grafana_params["grafana_url"], "grafana_token": grafana_token("Editor"), "name": "x"}
    result = run_module(grafana_service_account.main, args)
    assert result.exit_code == 1 and result["http_status"] == 403
    result = run(grafana_url=grafana_params["grafana_url"] + "/sub", name="x")
    assert result.exit_code == 1 and result["http_status"] == 404
    run(name="taken")
    grafana_server.app.break_database()
    result = run(name="new-one")
    assert result.exit_code == 1 and result["http_status"] == 500
    grafana_server.app.break_database(False)
    result = run(grafana_url=closed_port_url, name="x")
    assert result.exit_code == 1 and "cannot reach Grafana" in result["msg"]


def test_409_name_taken_by_another_account(run, grafana_api, monkeypatch):
    grafana_api("POST", "/api/serviceaccounts", {"name": "ansible"})
    monkeypatch.setattr(grafana_service_account, "find", lambda client, name: None)  # created meanwhile
    result = run(name="ansible")
    assert result.exit_code == 1 and result["http_status"] == 409 and "already exists" in result["msg"]
