# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""o11y.stack.grafana_notification_policy against the Grafana stand-in served over HTTP."""

from __future__ import annotations

import pytest
from ansible_collections.o11y.stack.plugins.modules import grafana_notification_policy as policy_module

POLICIES = "/api/v1/provisioning/policies"
DEFAULT_TREE = {"receiver": "grafana-default-email", "group_by": ["grafana_folder", "alertname"]}

TREE = {
    "receiver": "Team mail",
    "group_by": ["grafana_folder", "alertname"],
    "group_wait": "30s",
    "group_interval": "5m",
    "repeat_interval": "24h",
    "routes": [
        {"receiver": "OnCall", "object_matchers": [["severity", "=", "critical"]], "continue": True},
        {"receiver": "Ops", "object_matchers": ['team=~"ops|sre"', ["env", "!=", "dev"]],
         "group_by": ["alertname", "instance"], "continue": False,
         "routes": [{"object_matchers": ["env=production"], "repeat_interval": "90m"}]},
    ],
}
# What Grafana stores and returns for TREE: durations re-rendered, matchers sorted and unquoted,
# continue: false and empty fields left out.
TREE_AS_STORED = {
    "receiver": "Team mail",
    "group_by": ["grafana_folder", "alertname"],
    "group_wait": "30s",
    "group_interval": "5m",
    "repeat_interval": "1d",
    "routes": [
        {"receiver": "OnCall", "object_matchers": [["severity", "=", "critical"]], "continue": True},
        {"receiver": "Ops", "object_matchers": [["env", "!=", "dev"], ["team", "=~", "ops|sre"]],
         "group_by": ["alertname", "instance"],
         "routes": [{"object_matchers": [["env", "=", "production"]], "repeat_interval": "1h30m"}]},
    ],
}


@pytest.fixture
def contact_points(grafana_api):
    for name, kind, settings in (("Team mail", "email", {"addresses": "team@example.com"}),
                                 ("OnCall", "oncall", {"url": "http://oncall/integrations/v1/x/"}),
                                 ("Ops", "webhook", {"url": "http://ops/hook"})):
        status, body = grafana_api("POST", "/api/v1/provisioning/contact-points",
                                   {"name": name, "type": kind, "settings": settings})
        assert status == 202, body


@pytest.fixture
def run(run_module, grafana_params, contact_points):
    def _run(check_mode=False, diff=True, **options):
        args = dict(grafana_params)
        args.update(options)
        return run_module(policy_module.main, args, check_mode=check_mode, diff=diff)

    return _run


def current(grafana_api):
    return grafana_api("GET", POLICIES)[1]


# ---------------------------------------------------------------------------
# set / idempotence / check mode
# ---------------------------------------------------------------------------


def test_set_the_tree_then_no_op(run, grafana_api):
    result = run(**TREE)
    assert result.exit_code == 0 and result["changed"] is True
    assert result["policy"] == dict(TREE_AS_STORED, provenance="api")
    assert current(grafana_api) == dict(TREE_AS_STORED, provenance="api")
    assert result["diff"]["before"] == dict(DEFAULT_TREE, provenance="")
    assert result["diff"]["after"] == dict(TREE_AS_STORED, provenance="api")

    again = run(**TREE)
    assert again["changed"] is False
    assert again["diff"]["before"] == again["diff"]["after"]
    assert again["policy"] == dict(TREE_AS_STORED, provenance="api")


def test_the_normalised_form_is_idempotent_too(run):
    run(**TREE)
    assert run(**TREE_AS_STORED)["changed"] is False


def test_check_mode_changes_nothing(run, grafana_api):
    result = run(check_mode=True, **TREE)
    assert result["changed"] is True
    assert result["policy"] == dict(TREE_AS_STORED, provenance="api")
    assert result["diff"]["after"]["routes"][1]["routes"][0]["repeat_interval"] == "1h30m"
    assert current(grafana_api) == DEFAULT_TREE


def test_check_mode_on_a_converged_tree_reports_nothing(run):
    run(**TREE)
    assert run(check_mode=True, **TREE)["changed"] is False


def test_update_a_nested_policy(run, grafana_api):
    run(**TREE)
    tree = dict(TREE, routes=[TREE["routes"][0], dict(TREE["routes"][1], routes=[
        {"object_matchers": ["env=production"], "repeat_interval": "2h"}])])
    result = run(**tree)
    assert result["changed"] is True
    assert result["diff"]["before"]["routes"][1]["routes"][0]["repeat_interval"] == "1h30m"
    assert result["diff"]["after"]["routes"][1]["routes"][0]["repeat_interval"] == "2h"
    assert current(grafana_api)["routes"][1]["routes"][0]["repeat_interval"] == "2h"
    assert run(**tree)["changed"] is False


def test_matcher_order_and_quotes_do_not_matter(run):
    run(**TREE)
    routes = [TREE["routes"][0], dict(TREE["routes"][1], object_matchers=[["env", "!=", '"dev"'], 'team =~ "ops|sre"'])]
    assert run(**dict(TREE, routes=routes))["changed"] is False


def test_unset_fields_are_removed(run, grafana_api):
    run(**TREE)
    result = run(receiver="Team mail")
    assert result["changed"] is True
    assert current(grafana_api) == {"receiver": "Team mail", "provenance": "api"}
    assert run(receiver="Team mail")["changed"] is False


def test_legacy_matchers_set_elsewhere_are_replaced(run, grafana_api):
    status, _ = grafana_api("PUT", POLICIES, {"receiver": "Team mail", "routes": [
        {"receiver": "OnCall", "matchers": ['severity="critical"']}]})
    assert status == 202
    routes = [{"receiver": "OnCall", "object_matchers": ["severity=critical"]}]
    result = run(receiver="Team mail", routes=routes)
    assert result["changed"] is True and result["diff"]["before"]["routes"][0]["matchers"] == ['severity="critical"']
    assert current(grafana_api)["routes"] == [{"receiver": "OnCall", "object_matchers": [["severity", "=",
                                                                                          "critical"]]}]


def test_other_organisation(run, grafana_api):
    org_id = grafana_api("POST", "/api/orgs", {"name": "Team B"})[1]["orgId"]
    result = run(org_id=org_id, receiver="grafana-default-email", group_wait="1m")
    assert result["changed"] is True
    assert grafana_api("GET", POLICIES, org_id=org_id)[1]["group_wait"] == "1m"
    assert current(grafana_api) == DEFAULT_TREE


# ---------------------------------------------------------------------------
# provenance and reset
# ---------------------------------------------------------------------------


def test_disable_provenance_and_reset(run, grafana_api):
    result = run(disable_provenance=True, **TREE)
    assert result["changed"] is True and "provenance" not in result["policy"]
    assert run(disable_provenance=True, **TREE)["changed"] is False
    result = run(**TREE)  # none -> api: allowed, a change
    assert result["changed"] is True
    assert (result["diff"]["before"]["provenance"], result["diff"]["after"]["provenance"]) == ("", "api")
    result = run(disable_provenance=True, **TREE)  # api -> none: refused by Grafana, so by the module first
    assert result.exit_code == 1
    assert "has the provenance 'api'" in result["msg"] and "reset it first (state=absent)" in result["msg"]
    assert current(grafana_api)["provenance"] == "api"
    assert run(state="absent")["changed"] is True
    assert run(disable_provenance=True, **TREE)["changed"] is True
    assert "provenance" not in current(grafana_api)


def test_reset_to_the_default_tree(run, grafana_api):
    run(**TREE)
    result = run(check_mode=True, state="absent")
    assert result["changed"] is True and result["policy"] == DEFAULT_TREE
    assert result["diff"]["after"] == dict(DEFAULT_TREE, provenance="")
    assert current(grafana_api) == dict(TREE_AS_STORED, provenance="api")
    result = run(state="absent")
    assert result["changed"] is True and result["policy"] == DEFAULT_TREE
    assert result["diff"]["before"] == dict(TREE_AS_STORED, provenance="api")
    assert current(grafana_api) == DEFAULT_TREE
    assert run(state="absent")["changed"] is False


def test_reset_brings_back_the_default_contact_point(run, grafana_api, grafana_server):
    run(**TREE)
    # the default contact point has no uid, so the API cannot delete it: remove it in the stand-in's store
    points = grafana_server.store.state["alerting"]["1"]["contact_points"]
    points[:] = [cp for cp in points if cp["name"] != "grafana-default-email"]
    assert run(state="absent")["changed"] is True
    assert current(grafana_api) == DEFAULT_TREE
    names = [cp["name"] for cp in grafana_api("GET", "/api/v1/provisioning/contact-points")[1]]
    assert "grafana-default-email" in names


# ---------------------------------------------------------------------------
# validation and errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("options, message", [
    ({}, "state is present but all of the following are missing: receiver"),
    ({"receiver": "Ops", "group_wait": "5 minutes"}, "the tree.group_wait: '5 minutes' is not a duration"),
    ({"receiver": "Ops", "group_interval": "0s"}, "the tree.group_interval cannot be zero"),
    ({"receiver": "Ops", "repeat_interval": "0"}, "the tree.repeat_interval cannot be zero"),
    ({"receiver": "Ops", "group_by": ["...", "alertname"]}, "cannot be combined with other labels"),
    ({"receiver": "Ops", "routes": [{"group_by": ["a", "a"]}]}, "the tree.routes[0].group_by: a given more than once"),
    ({"receiver": "Ops", "routes": [{"object_matchers": [["a", "==", "b"]]}]}, "unknown operator '=='"),
    ({"receiver": "Ops", "routes": [{"object_matchers": ["just-a-label"]}]}, "is not a matcher"),
    ({"receiver": "Ops", "routes": [{"object_matchers": [["a", "="]]}]}, "is not a matcher"),
    ({"receiver": "Ops", "routes": [{"routes": [{"recevier": "x"}]}]},
     "the tree.routes[0].routes[0]: unknown key(s) recevier"),
    ({"receiver": "Ops", "routes": [{"continue": "perhaps"}]}, "the tree.routes[0].continue must be a boolean"),
    ({"receiver": "Ops", "routes": [{"receiver": "Nobody"}, {"receiver": "Ghost"}]},
     "contact point(s) that do not exist: Ghost, Nobody"),
])
def test_validation(run, grafana_api, options, message):
    result = run(**options)
    assert result.exit_code == 1 and message in result["msg"]
    assert current(grafana_api) == DEFAULT_TREE


def test_continue_accepts_ansible_booleans(run, grafana_api):
    run(receiver="Ops", routes=[{"receiver": "OnCall", "continue": "yes"}])
    assert current(grafana_api)["routes"] == [{"receiver": "OnCall", "continue": True}]


def test_400_from_grafana(run, grafana_api):
    # the module does not know Grafana's time intervals: Grafana's own validation answers
    result = run(receiver="Ops", routes=[{"receiver": "OnCall", "mute_time_intervals": ["weekends"]}])
    assert result.exit_code == 1 and result["http_status"] == 400
    assert "Invalid format of the submitted route: mute time interval 'weekends' does not exist" in result["msg"]
    assert result["response"]["messageId"] == "alerting.notifications.routes.invalidFormat"
    assert current(grafana_api) == DEFAULT_TREE


def test_401_wrong_password(run):
    result = run(grafana_password="not-the-password", **TREE)
    assert result.exit_code == 1 and result["http_status"] == 401
    assert "Invalid username or password" in result["msg"]


def test_403_viewer_token(run_module, grafana_params, grafana_token, contact_points):
    args = {"grafana_url": grafana_params["grafana_url"], "grafana_token": grafana_token("Viewer")}
    result = run_module(policy_module.main, dict(args, **TREE))
    assert result.exit_code == 1 and result["http_status"] == 403
    assert "Permissions needed: alert.provisioning:read" in result["msg"]


def test_404_wrong_sub_path(run, grafana_params):
    result = run(grafana_url=grafana_params["grafana_url"] + "/grafana", **TREE)
    assert result.exit_code == 1 and result["http_status"] == 404
    assert "Check grafana_url (including a sub-path" in result["msg"]


def test_5xx_broken_database(run, grafana_server):
    grafana_server.app.break_database()
    result = run(**TREE)
    assert result.exit_code == 1 and result["http_status"] == 500
    assert "Grafana server log" in result["msg"]


def test_unreachable(run, closed_port_url):
    result = run(grafana_url=closed_port_url, **TREE)
    assert result.exit_code == 1 and "cannot reach Grafana at" in result["msg"]


# ---------------------------------------------------------------------------
# the normalisation itself (what Grafana does to durations and matchers)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("given, stored", [
    ("30s", "30s"), ("90s", "1m30s"), ("90m", "1h30m"), ("24h", "1d"), ("7d", "1w"), ("90d", "90d"),
    ("14d", "2w"), ("365d", "1y"), ("1500ms", "1s500ms"), ("0", "0s"), ("1h0m", "1h"),
])
def test_durations_as_grafana_renders_them(given, stored):
    assert policy_module.format_duration(policy_module.parse_duration(given)) == stored


@pytest.mark.parametrize("bad", ["", "5", "1m1h", "1.5h", "-1m", "1h 30m", "1x"])
def test_invalid_durations(bad):
    with pytest.raises(ValueError):
        policy_module.parse_duration(bad)
