# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""o11y.stack.oncall_escalation_chain against the OnCall engine stand-in served over HTTP."""

from __future__ import annotations

import json

import pytest
from ansible_collections.o11y.stack.plugins.modules import oncall_escalation_chain


@pytest.fixture
def run(run_module, oncall_params):
    def _run(check_mode=False, diff=True, **options):
        args = dict(oncall_params)
        args.update(options)
        return run_module(oncall_escalation_chain.main, args, check_mode=check_mode, diff=diff)

    return _run


def chain_state(oncall_api, name):
    """(chain, its policies in order) as the API has them."""
    status, page = oncall_api("GET", "/api/v1/escalation_chains/?name=" + name)
    assert status == 200
    if not page["results"]:
        return None, []
    chain = page["results"][0]
    status, page = oncall_api("GET", "/api/v1/escalation_policies/?escalation_chain_id=" + chain["id"])
    return chain, sorted(page["results"], key=lambda p: p["position"])


STEPS = [
    {"type": "notify_persons", "users": ["alice", "Bob.Builder@example.com"], "important": True},
    {"type": "wait", "duration": 300},
    {"type": "notify_if_time_from_to", "time_from": "08:00", "time_to": "18:30:00"},
    {"type": "repeat_escalation"},
]


def test_create_then_no_op(run, oncall_api, oncall_server):
    result = run(name="default", policies=STEPS)
    assert result["changed"] is True and result["id"].startswith("F")
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["policies"] == [
        {"type": "notify_persons", "important": True, "users": ["alice", "bob"]},
        {"type": "wait", "duration": 300},
        {"type": "notify_if_time_from_to", "time_from": "08:00:00Z", "time_to": "18:30:00Z"},
        {"type": "repeat_escalation"}]
    chain, policies = chain_state(oncall_api, "default")
    assert [p["type"] for p in policies] == ["notify_persons", "wait", "notify_if_time_from_to", "repeat_escalation"]
    assert sorted(policies[0]["persons_to_notify"]) == sorted([oncall_server.users["alice"]["id"],
                                                               oncall_server.users["bob"]["id"]])
    assert policies[0]["important"] is True and policies[1]["duration"] == 300
    assert policies[2]["notify_if_time_from"] == "08:00:00Z"
    assert [p["id"] for p in result["policies"]] == [p["id"] for p in policies]
    again = run(name="default", policies=STEPS)
    assert again["changed"] is False and again["diff"]["before"] == again["diff"]["after"]
    # users by id or email are the same users
    same = [dict(STEPS[0], users=[oncall_server.users["alice"]["id"], "bob"])] + STEPS[1:]
    assert run(name="default", policies=same)["changed"] is False
    # policies unset: the steps are left alone
    assert run(name="default")["changed"] is False


def test_reorder_update_append_and_delete_steps(run, oncall_api):
    run(name="c", policies=STEPS)
    chain, first = chain_state(oncall_api, "c")
    new = [{"type": "wait", "duration": 600}, STEPS[0], {"type": "resolve"}]
    result = run(name="c", policies=new)
    assert result["changed"] is True
    chain, policies = chain_state(oncall_api, "c")
    assert [p["type"] for p in policies] == ["wait", "notify_persons", "resolve"]
    # positions are updated in place (same objects), the extra step is deleted
    assert [p["id"] for p in policies] == [p["id"] for p in first[:3]]
    assert "persons_to_notify" not in policies[0] and policies[0]["duration"] == 600  # the type change cleared them
    assert run(name="c", policies=new)["changed"] is False
    result = run(name="c", policies=new + [{"type": "wait", "duration": 60}])
    assert result["changed"] is True
    chain, policies = chain_state(oncall_api, "c")
    assert [p["type"] for p in policies] == ["wait", "notify_persons", "resolve", "wait"]
    assert policies[3]["position"] > policies[2]["position"]
    result = run(name="c", policies=[])
    assert result["changed"] is True and result["diff"]["after"]["policies"] == []
    assert chain_state(oncall_api, "c")[1] == []


def test_important_flag_flips_in_place(run, oncall_api):
    run(name="imp", policies=[{"type": "notify_persons", "users": ["admin"]}])
    chain, policies = chain_state(oncall_api, "imp")
    assert policies[0]["important"] is False
    result = run(name="imp", policies=[{"type": "notify_persons", "users": ["admin"], "important": True}])
    assert result["changed"] is True
    assert chain_state(oncall_api, "imp")[1][0]["important"] is True


def test_schedule_and_team_steps(run, oncall_api, oncall_server):
    status, shift = oncall_api("POST", "/api/v1/on_call_shifts/", {
        "name": "r", "type": "rolling_users", "start": "2026-01-05T09:00:00", "duration": 3600, "frequency": "daily",
        "rolling_users": [[oncall_server.users["admin"]["id"]]], "start_rotation_from_user_index": 0})
    assert status == 201
    status, sched = oncall_api("POST", "/api/v1/schedules/", {"name": "Primary", "type": "calendar",
                                                              "time_zone": "UTC", "shifts": [shift["id"]]})
    assert status == 201
    steps = [{"type": "notify_on_call_from_schedule", "schedule": "Primary"},
             {"type": "notify_team_members", "team": "ops", "important": True}]
    result = run(name="sched", policies=steps)
    assert result["changed"] is True
    chain, policies = chain_state(oncall_api, "sched")
    assert policies[0]["notify_on_call_from_schedule"] == sched["id"]
    assert policies[1]["team_to_notify"] == oncall_server.team_id
    assert result["diff"]["after"]["policies"][0] == {"type": "notify_on_call_from_schedule", "important": False,
                                                      "schedule": "Primary"}
    assert run(name="sched", policies=steps)["changed"] is False
    result = run(name="sched", policies=[{"type": "notify_on_call_from_schedule", "schedule": "Nope"}])
    assert result.exit_code == 1 and "schedule 'Nope' does not exist" in result["msg"]
    result = run(check_mode=True, name="sched", policies=[{"type": "notify_on_call_from_schedule", "schedule": "Nope"}])
    assert result["changed"] is True and "does not exist (yet)" in json.dumps(result["warnings"])
    result = run(name="sched", policies=[{"type": "notify_team_members", "team": "devs"}])
    assert result.exit_code == 1 and "no single OnCall team matches 'devs' (teams: ops)" in result["msg"]


def test_check_mode(run, oncall_api):
    result = run(check_mode=True, name="cm", policies=STEPS[:2])
    assert result["changed"] is True and result["id"] == ""
    assert [p["type"] for p in result["policies"]] == ["notify_persons", "wait"]
    assert chain_state(oncall_api, "cm")[0] is None
    run(name="cm", policies=STEPS[:2])
    result = run(check_mode=True, name="cm", policies=STEPS[1:2])
    assert result["changed"] is True and len(result["diff"]["after"]["policies"]) == 1
    assert len(chain_state(oncall_api, "cm")[1]) == 2


def test_delete(run, oncall_api):
    run(name="gone", policies=STEPS[:1])
    status, integ = oncall_api("POST", "/api/v1/integrations/", {"type": "webhook", "name": "w",
                                                                 "default_route": {"escalation_chain_id":
                                                                                   chain_state(oncall_api, "gone")[0]["id"]}})
    assert status == 201 and integ["default_route"]["escalation_chain_id"]
    result = run(check_mode=True, name="gone", state="absent")
    assert result["changed"] is True and chain_state(oncall_api, "gone")[0] is not None
    result = run(name="gone", state="absent")
    assert result["changed"] is True and result["diff"]["before"]["policies"][0]["type"] == "notify_persons"
    assert chain_state(oncall_api, "gone")[0] is None
    status, integ = oncall_api("GET", f"/api/v1/integrations/{integ['id']}/")
    assert integ["default_route"]["escalation_chain_id"] is None
    assert run(name="gone", state="absent")["changed"] is False


def test_validation(run):
    cases = [
        ([{"type": "wait"}], "policies[0] (wait): set duration"),
        ([{"type": "wait", "duration": 30}], "duration must be from 60 to 86400 seconds, got 30"),
        ([{"type": "resolve", "duration": 60}], "duration applies only to type wait"),
        ([{"type": "wait", "duration": 60, "important": True}], "important applies only to the notifying types"),
        ([{"type": "notify_persons", "users": []}], "set users"),
        ([{"type": "notify_if_time_from_to", "time_from": "25:00", "time_to": "10:00"}], "time_from must be HH:MM"),
    ]
    for policies, message in cases:
        result = run(name="v", policies=policies)
        assert result.exit_code == 1 and message in result["msg"], (policies, result["msg"])
    result = run(name="v", policies=[{"type": "notify_persons", "users": ["alice", "nobody"]}])
    assert result.exit_code == 1 and "no OnCall user matches 'nobody'" in result["msg"]
    assert "known users: admin, alice, bob" in result["msg"]
    result = run(name="x" * 101)
    assert result.exit_code == 1 and "at most 100 characters" in result["msg"]


def test_engine_refusals(run, oncall_server):
    result = run(name="slack", policies=[{"type": "notify_whole_channel"}])
    assert result.exit_code == 1 and result["http_status"] == 400
    assert "Invalid escalation step type: step is Slack-specific" in result["msg"]
    result = run(name="hook", policies=[{"type": "trigger_webhook", "webhook_id": "WNOPE"}])
    assert result.exit_code == 1 and "action_to_trigger: Object does not exist" in result["msg"]
    # schedules:write is Editor, escalation chains need Admin
    result = run(name="editor", oncall_api_token=oncall_server.tokens["alice"])
    assert result.exit_code == 1 and result["http_status"] == 403
