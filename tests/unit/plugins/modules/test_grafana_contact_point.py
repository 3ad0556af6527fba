# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""o11y.stack.grafana_contact_point against the Grafana stand-in served over HTTP."""

from __future__ import annotations

import json

import pytest
from ansible_collections.o11y.stack.plugins.modules import grafana_contact_point

# Long, unique secrets: Ansible masks no_log values wherever they appear in the output.
PASSWORD = "webhook-password-3e9a1c55d0"
PASSWORD2 = "webhook-password-rotated-77b2"
SLACK_URL = "https://hooks.slack.example/services/T000/B000/slack-secret-0c4d"
CLIENT_KEY = "tls-client-key-value-9f21ab"

HOOK = {
    "uid": "hook",
    "name": "Ticketing",
    "type": "webhook",
    "settings": {"url": "http://tickets.example.com/grafana", "httpMethod": "POST", "maxAlerts": 5},
    "secure_settings": {"password": PASSWORD},
}
CP_PATH = "/api/v1/provisioning/contact-points"


@pytest.fixture
def run(run_module, grafana_params):
    def _run(check_mode=False, diff=True, **options):
        args = dict(grafana_params)
        args.update(options)
        return run_module(grafana_contact_point.main, args, check_mode=check_mode, diff=diff)

    return _run


def stored(grafana_server, uid, org_id=1):
    """The contact point as the stand-in keeps it (secure values in clear), or None."""
    points = grafana_server.store.state["alerting"].get(str(org_id), {}).get("contact_points", [])
    return next((cp for cp in points if cp["uid"] == uid), None)


def listed(grafana_api, uid):
    return next((cp for cp in grafana_api("GET", CP_PATH)[1] if cp["uid"] == uid), None)


# ---------------------------------------------------------------------------
# create / idempotence / check mode
# ---------------------------------------------------------------------------


def test_create_then_no_op(run, grafana_server, grafana_api):
    result = run(**HOOK)
    assert result.exit_code == 0 and result["changed"] is True
    assert result["secure_fields_sent"] == ["password"]
    cp = result["contact_point"]
    assert cp == {"uid": "hook", "name": "Ticketing", "type": "webhook", "disableResolveMessage": False,
                  "provenance": "api",
                  "settings": {"url": "http://tickets.example.com/grafana", "httpMethod": "POST", "maxAlerts": 5,
                               "password": "[REDACTED]"}}
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["settings"]["password"] == "[REDACTED]"
    assert result["diff"]["after"]["provenance"] == "api"
    assert stored(grafana_server, "hook")["settings"]["password"] == PASSWORD
    assert listed(grafana_api, "hook")["settings"]["password"] == "[REDACTED]"

    again = run(**HOOK)
    assert again["changed"] is False and again["secure_fields_sent"] == []
    assert again["diff"]["before"] == again["diff"]["after"]
    assert again["contact_point"] == cp


def test_secrets_never_appear_in_the_result(run):
    options = dict(HOOK, secure_settings={"password": PASSWORD, "tlsConfig.clientKey": CLIENT_KEY})
    for secure_update in ("on_create", "always"):
        result = run(secure_update=secure_update, **options)
        assert result["changed"] is True
        text = json.dumps(result)
        assert PASSWORD not in text and CLIENT_KEY not in text


def test_check_mode_create_changes_nothing(run, grafana_api):
    result = run(check_mode=True, **HOOK)
    assert result["changed"] is True
    assert result["contact_point"]["uid"] == "hook" and result["contact_point"]["provenance"] == "api"
    assert result["contact_point"]["settings"]["password"] == "[REDACTED]"
    assert result["secure_fields_sent"] == ["password"]
    assert listed(grafana_api, "hook") is None


def test_check_mode_on_a_converged_contact_point_reports_nothing(run):
    run(**HOOK)
    assert run(check_mode=True, **HOOK)["changed"] is False


def test_check_mode_update_changes_nothing(run, grafana_api):
    run(**HOOK)
    options = dict(HOOK, settings=dict(HOOK["settings"], url="http://elsewhere/hook"))
    result = run(check_mode=True, **options)
    assert result["changed"] is True and result["secure_fields_sent"] == []
    assert result["diff"]["before"]["settings"]["url"] == "http://tickets.example.com/grafana"
    assert result["diff"]["after"]["settings"]["url"] == "http://elsewhere/hook"
    assert listed(grafana_api, "hook")["settings"]["url"] == "http://tickets.example.com/grafana"


# ---------------------------------------------------------------------------
# updates and secure settings
# ---------------------------------------------------------------------------


def test_update_keeps_the_stored_secret(run, grafana_server):
    run(**HOOK)
    options = dict(HOOK, settings={"url": "http://new/hook", "httpMethod": "PUT"}, disable_resolve_message=True)
    result = run(**options)
    assert result["changed"] is True and result["secure_fields_sent"] == []
    before, after = result["diff"]["before"], result["diff"]["after"]
    assert before["settings"] == {"url": "http://tickets.example.com/grafana", "httpMethod": "POST", "maxAlerts": 5,
                                  "password": "[REDACTED]"}
    assert after["settings"] == {"url": "http://new/hook", "httpMethod": "PUT", "password": "[REDACTED]"}
    assert (before["disableResolveMessage"], after["disableResolveMessage"]) == (False, True)
    cp = stored(grafana_server, "hook")
    assert cp["settings"] == {"url": "http://new/hook", "httpMethod": "PUT", "password": PASSWORD}
    assert run(**options)["changed"] is False


def test_unset_options_keep_the_current_values(run, grafana_server):
    run(disable_resolve_message=True, **HOOK)
    result = run(uid="hook", name="Ticketing")
    assert result["changed"] is False
    assert result["contact_point"]["disableResolveMessage"] is True
    assert stored(grafana_server, "hook")["settings"]["password"] == PASSWORD


def test_on_create_does_not_resend_but_sends_new_keys_and_removes_dropped_ones(run, grafana_server):
    run(**HOOK)
    result = run(**dict(HOOK, secure_settings={"password": PASSWORD2}))
    assert result["changed"] is False
    assert stored(grafana_server, "hook")["settings"]["password"] == PASSWORD
    result = run(**dict(HOOK, secure_settings={"password": PASSWORD2, "authorization_credentials": "token-4410aa"}))
    assert result["changed"] is True and result["secure_fields_sent"] == ["authorization_credentials"]
    assert stored(grafana_server, "hook")["settings"]["password"] == PASSWORD
    assert stored(grafana_server, "hook")["settings"]["authorization_credentials"] == "token-4410aa"
    result = run(**dict(HOOK, secure_settings={"authorization_credentials": "token-4410aa"}))
    assert result["changed"] is True and result["secure_fields_sent"] == []
    assert "password" in result["diff"]["before"]["settings"]
    assert "password" not in result["diff"]["after"]["settings"]
    assert "password" not in stored(grafana_server, "hook")["settings"]


def test_always_rotates_every_run(run, grafana_server):
    run(**HOOK)
    for _ in range(2):
        result = run(secure_update="always", **dict(HOOK, secure_settings={"password": PASSWORD2}))
        assert result["changed"] is True and result["secure_fields_sent"] == ["password"]
    assert stored(grafana_server, "hook")["settings"]["password"] == PASSWORD2


def test_nested_secure_settings(run, grafana_server, grafana_api):
    options = dict(HOOK, settings={"url": "https://tickets/hook", "tlsConfig": {"insecureSkipVerify": False}},
                   secure_settings={"tlsConfig.clientKey": CLIENT_KEY})
    result = run(**options)
    assert result["changed"] is True and result["secure_fields_sent"] == ["tlsConfig.clientKey"]
    assert listed(grafana_api, "hook")["settings"]["tlsConfig"] == {"insecureSkipVerify": False,
                                                                    "clientKey": "[REDACTED]"}
    assert stored(grafana_server, "hook")["settings"]["tlsConfig"]["clientKey"] == CLIENT_KEY
    assert run(**options)["changed"] is False


def test_secure_settings_in_settings_are_refused(run):
    result = run(**dict(HOOK, settings={"url": "http://x", "password": "plain-text-pw"}, secure_settings=None))
    assert result.exit_code == 1
    assert "settings password of a webhook contact point are secure settings" in result["msg"]
    result = run(name="Ops", type="slack", settings={"url": SLACK_URL})
    assert result.exit_code == 1 and "put them in secure_settings" in result["msg"]
    result = run(**dict(HOOK, settings={"url": "http://x", "tlsConfig": "x"},
                        secure_settings={"tlsConfig.clientKey": CLIENT_KEY}))
    assert result.exit_code == 1 and "in both settings and secure_settings" in result["msg"]


def test_slack_with_a_secure_url(run, grafana_server):
    options = {"uid": "slack", "name": "Ops", "type": "slack", "settings": {"recipient": "#ops", "title": "T"},
               "secure_settings": {"url": SLACK_URL}}
    result = run(**options)
    assert result["contact_point"]["settings"] == {"recipient": "#ops", "title": "T", "url": "[REDACTED]"}
    assert stored(grafana_server, "slack")["settings"]["url"] == SLACK_URL
    assert run(**options)["changed"] is False


def test_email_contact_point(run):
    options = {"uid": "mail", "name": "Team mail", "type": "email", "settings": {"addresses": "a@example.com",
                                                                                 "singleEmail": True}}
    result = run(**options)
    assert result["changed"] is True and result["secure_fields_sent"] == []
    assert result["contact_point"]["settings"] == {"addresses": "a@example.com", "singleEmail": True}
    assert run(**options)["changed"] is False


def test_type_change_keeps_secrets_that_stay_secure(run, grafana_server):
    run(**HOOK)
    result = run(uid="hook", name="Ticketing", type="oncall", settings={"url": "http://oncall/integrations/x"})
    assert result["changed"] is True and result["contact_point"]["type"] == "oncall"
    assert result["contact_point"]["settings"] == {"url": "http://oncall/integrations/x", "password": "[REDACTED]"}
    assert stored(grafana_server, "hook")["settings"]["password"] == PASSWORD
    # e-mail has no secure settings: the password goes
    result = run(uid="hook", name="Ticketing", type="email", settings={"addresses": "x@example.com"})
    assert result["contact_point"]["settings"] == {"addresses": "x@example.com"}
    assert stored(grafana_server, "hook")["settings"] == {"addresses": "x@example.com"}


def test_find_by_name_and_ambiguous_names(run, grafana_api):
    status, created = grafana_api("POST", CP_PATH, {"name": "Pager", "type": "webhook", "settings": {"url": "http://a"}})
    assert status == 202
    result = run(name="Pager", type="webhook", settings={"url": "http://a"})
    assert result["changed"] is False and result["contact_point"]["uid"] == created["uid"]
    grafana_api("POST", CP_PATH, {"name": "Pager", "type": "email", "settings": {"addresses": "p@example.com"}})
    result = run(name="Pager", type="webhook", settings={"url": "http://a"})
    assert result.exit_code == 1 and "2 contact points (integrations) are named 'Pager'" in result["msg"]
    assert "set uid to pick one" in result["msg"]
    result = run(uid=created["uid"], name="Pager", type="webhook", settings={"url": "http://a"})
    assert result.exit_code == 0 and result["changed"] is False


def test_rename_renames_the_policies_receiver(run, grafana_api):
    run(**HOOK)
    assert grafana_api("PUT", "/api/v1/provisioning/policies", {"receiver": "Ticketing"})[0] == 202
    result = run(**dict(HOOK, name="Tickets"))
    assert result["changed"] is True
    assert (result["diff"]["before"]["name"], result["diff"]["after"]["name"]) == ("Ticketing", "Tickets")
    assert grafana_api("GET", "/api/v1/provisioning/policies")[1]["receiver"] == "Tickets"


def test_other_organisation(run, grafana_api):
    org_id = grafana_api("POST", "/api/orgs", {"name": "Team B"})[1]["orgId"]
    result = run(org_id=org_id, **HOOK)
    assert result["changed"] is True
    assert listed(grafana_api, "hook") is None
    assert any(cp["uid"] == "hook" for cp in grafana_api("GET", CP_PATH, org_id=org_id)[1])


# ---------------------------------------------------------------------------
# provenance
# ---------------------------------------------------------------------------


def test_disable_provenance(run, grafana_server):
    result = run(disable_provenance=True, **HOOK)
    assert result["changed"] is True and "provenance" not in result["contact_point"]
    assert stored(grafana_server, "hook")["provenance"] == ""
    assert run(disable_provenance=True, **HOOK)["changed"] is False
    # none -> api is allowed, and a change
    result = run(**HOOK)
    assert result["changed"] is True
    assert (result["diff"]["before"]["provenance"], result["diff"]["after"]["provenance"]) == ("", "api")
    assert result["contact_point"]["provenance"] == "api"
    # api -> none is not: the module says what to do instead of sending what Grafana refuses
    result = run(disable_provenance=True, **HOOK)
    assert result.exit_code == 1
    assert "has the provenance 'api'" in result["msg"] and "delete it (state=absent)" in result["msg"]
    assert stored(grafana_server, "hook")["provenance"] == "api"


def test_file_provisioned_contact_points(run, grafana_server):
    run(**HOOK)
    stored(grafana_server, "hook")["provenance"] = "file"
    result = run(**HOOK)
    assert result["changed"] is False  # nothing to change is fine
    result = run(**dict(HOOK, settings={"url": "http://elsewhere"}))
    assert result.exit_code == 1 and "has the provenance 'file'" in result["msg"]


# ---------------------------------------------------------------------------
# delete
# ---------------------------------------------------------------------------


def test_delete_by_uid_and_by_name(run, grafana_api):
    run(**HOOK)
    run(name="Team mail", type="email", settings={"addresses": "a@example.com"})
    result = run(check_mode=True, uid="hook", state="absent")
    assert result["changed"] is True and result["diff"]["before"]["name"] == "Ticketing"
    assert listed(grafana_api, "hook") is not None
    result = run(uid="hook", state="absent")
    assert result["changed"] is True and result["contact_point"] == {} and result["diff"]["after"] == {}
    assert listed(grafana_api, "hook") is None
    assert run(uid="hook", state="absent")["changed"] is False
    assert run(name="Team mail", state="absent")["changed"] is True
    assert [cp["name"] for cp in grafana_api("GET", CP_PATH)[1]] == ["grafana-default-email"]


def test_default_contact_point_without_uid_cannot_be_deleted(run):
    result = run(name="grafana-default-email", state="absent")
    assert result.exit_code == 1 and "has no uid" in result["msg"]


# ---------------------------------------------------------------------------
# validation and errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("options, message", [
    ({"uid": "has spaces", "name": "x", "type": "email"}, "is not a valid Grafana uid"),
    ({"type": "email"}, "name is required with state=present"),
    ({"state": "absent"}, "set uid or name"),
    ({"name": "new-one"}, "does not exist; set type to create it"),
    ({"name": "x", "type": "webhook", "secure_settings": {"password": None}}, "needs a value"),
])
def test_validation(run, options, message):
    result = run(**options)
    assert result.exit_code == 1 and message in result["msg"]


def test_connection_options_are_checked(run_module, grafana_params):
    args = dict(grafana_params, grafana_token="glsa_x", **HOOK)
    result = run_module(grafana_contact_point.main, args)
    assert result.exit_code == 1 and "mutually exclusive" in result["msg"]


def test_400_invalid_settings(run):
    result = run(uid="slack", name="Ops", type="slack", settings={"recipient": "#ops"})
    assert result.exit_code == 1 and result["http_status"] == 400
    assert "token must be specified when using the Slack chat API" in result["msg"]
    assert "Grafana rejected the request as invalid" in result["msg"]


def test_401_wrong_password(run):
    result = run(grafana_password="not-the-password", **HOOK)
    assert result.exit_code == 1 and result["http_status"] == 401
    assert "Invalid username or password" in result["msg"]


def test_403_viewer_token(run_module, grafana_params, grafana_token):
    args = {"grafana_url": grafana_params["grafana_url"], "grafana_token": grafana_token("Viewer")}
    result = run_module(grafana_contact_point.main, dict(args, **HOOK))
    assert result.exit_code == 1 and result["http_status"] == 403
    assert "Permissions needed: alert.provisioning:read" in result["msg"]
    assert "alerting provisioning API the organisation Admin role" in result["msg"]


def test_404_wrong_sub_path(run, grafana_params):
    result = run(grafana_url=grafana_params["grafana_url"] + "/grafana", **HOOK)
    assert result.exit_code == 1 and result["http_status"] == 404
    assert "Check grafana_url (including a sub-path" in result["msg"]


def test_409_delete_a_contact_point_a_policy_routes_to(run, grafana_api):
    run(**HOOK)
    assert grafana_api("PUT", "/api/v1/provisioning/policies", {"receiver": "Ticketing"})[0] == 202
    result = run(uid="hook", state="absent")
    assert result.exit_code == 1 and result["http_status"] == 409
    assert "Contact point is currently referenced by a notification policy" in result["msg"]
    assert "o11y.stack.grafana_notification_policy" in result["msg"]
    assert listed(grafana_api, "hook") is not None


def test_5xx_broken_database(run, grafana_server):
    grafana_server.app.break_database()
    result = run(**HOOK)
    assert result.exit_code == 1 and result["http_status"] == 500
    assert "Grafana server log" in result["msg"]


def test_unreachable(run, closed_port_url):
    result = run(grafana_url=closed_port_url, **HOOK)
    assert result.exit_code == 1 and "cannot reach Grafana at" in result["msg"]
