# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""o11y.stack.oncall_schedule against the OnCall engine stand-in served over HTTP."""

from __future__ import annotations

import datetime

import pytest
from ansible_collections.o11y.stack.plugins.modules import oncall_schedule


@pytest.fixture
def run(run_module, oncall_params):
    def _run(check_mode=False, diff=True, **options):
        args = dict(oncall_params)
        args.update(options)
        return run_module(oncall_schedule.main, args, check_mode=check_mode, diff=diff)

    return _run


def schedule_state(oncall_api, name):
    status, page = oncall_api("GET", "/api/v1/schedules/?name=" + name)
    assert status == 200
    if not page["results"]:
        return None, []
    sched = page["results"][0]
    status, page = oncall_api("GET", "/api/v1/on_call_shifts/?schedule_id=" + sched["id"])
    return sched, page["results"]


def test_create_then_no_op(run, oncall_api, oncall_server):
    result = run(name="Primary", users=["alice", "BOB.BUILDER@example.com"], rotation_start="2026-01-05 09:00",
                 time_zone="Europe/Berlin")
    assert result.get("changed") is True and result["id"].startswith("S"), result
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["rotation"] == {
        "shift_name": "Primary rotation", "time_zone": "Europe/Berlin", "start": "2026-01-05T09:00:00",
        "duration": 604800, "frequency": "weekly", "interval": 1, "by_day": [], "users": ["alice", "bob"],
        "start_rotation_from_user_index": 0, "week_start": "MO"}
    sched, shifts = schedule_state(oncall_api, "Primary")
    assert sched["type"] == "calendar" and sched["time_zone"] == "Europe/Berlin"
    assert len(shifts) == 1 and sched["shifts"] == [shifts[0]["id"]]
    shift = shifts[0]
    assert shift["type"] == "rolling_users" and shift["week_start"] == "MO"
    assert shift["rolling_users"] == [[oncall_server.users["alice"]["id"]], [oncall_server.users["bob"]["id"]]]
    again = run(name="Primary", users=["alice", "bob"], rotation_start="2026-01-05T09:00:00", time_zone="Europe/Berlin")
    assert again["changed"] is False and again["diff"]["before"] == again["diff"]["after"]
    # rotation_start unset keeps the start
    assert run(name="Primary", users=["alice", "bob"], time_zone="Europe/Berlin")["changed"] is False


def test_on_call_now(run):
    # a daily rotation that started 10 days (an even number) ago: the first user's turn again
    start = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=10)).strftime("%Y-%m-%d")
    result = run(name="Daily", users=["admin", "alice"], rotation_start=start, frequency="daily")
    assert result["on_call_now"] == ["admin"]
    result = run(name="Daily", users=["admin", "alice"], rotation_start=start, frequency="daily",
                 start_rotation_from_user_index=1)
    assert result["changed"] is True and result["on_call_now"] == ["alice"]


def test_update_rotation_and_time_zone(run, oncall_api):
    run(name="R", users=["alice", "bob"], rotation_start="2026-01-05")
    sched, shifts = schedule_state(oncall_api, "R")
    result = run(name="R", users=["bob", "alice", "admin"], rotation_start="2026-01-05", frequency="daily",
                 interval=2, shift_duration=3600, by_day=["FR", "MO"], time_zone="America/New_York")
    assert result["changed"] is True
    assert result["diff"]["before"]["rotation"]["users"] == ["alice", "bob"]
    assert result["diff"]["after"]["rotation"]["users"] == ["bob", "alice", "admin"]
    assert "week_start" not in result["diff"]["after"]["rotation"]
    sched2, shifts2 = schedule_state(oncall_api, "R")
    assert sched2["id"] == sched["id"] and shifts2[0]["id"] == shifts[0]["id"]  # updated in place
    assert shifts2[0]["frequency"] == "daily" and shifts2[0]["interval"] == 2 and shifts2[0]["by_day"] == ["MO", "FR"]
    assert sched2["time_zone"] == "America/New_York" and shifts2[0]["time_zone"] == "America/New_York"
    assert run(name="R", users=["bob", "alice", "admin"], frequency="daily", interval=2, shift_duration=3600,
               by_day=["MO", "FR"], time_zone="America/New_York")["changed"] is False


def test_foreign_shift_is_detached(run, oncall_api, oncall_server):
    run(name="F", users=["alice"], rotation_start="2026-01-05")
    sched, shifts = schedule_state(oncall_api, "F")
    status, extra = oncall_api("POST", "/api/v1/on_call_shifts/", {
        "name": "extra", "type": "single_event", "start": "2026-02-01T00:00:00", "duration": 3600,
        "users": [oncall_server.users["bob"]["id"]]})
    assert status == 201
    status, _ = oncall_api("PUT", f"/api/v1/schedules/{sched['id']}/", {"shifts": [shifts[0]["id"], extra["id"]]})
    assert status == 200
    result = run(name="F", users=["alice"])
    assert result["changed"] is True and result["diff"]["before"]["other_shifts"] == [extra["id"]]
    assert schedule_state(oncall_api, "F")[0]["shifts"] == [shifts[0]["id"]]


def test_check_mode(run, oncall_api):
    result = run(check_mode=True, name="C", users=["alice"], rotation_start="2026-01-05")
    assert result["changed"] is True and result["id"] == ""
    assert schedule_state(oncall_api, "C")[0] is None
    status, page = oncall_api("GET", "/api/v1/on_call_shifts/?name=C%20rotation")
    assert page["count"] == 0
    run(name="C", users=["alice"], rotation_start="2026-01-05")
    result = run(check_mode=True, name="C", users=["bob"])
    assert result["changed"] is True and result["diff"]["after"]["rotation"]["users"] == ["bob"]
    assert schedule_state(oncall_api, "C")[1][0]["rolling_users"] != [[result["shift"]["rolling_users"][0][0]]]


def test_resumes_after_interrupted_create(run, oncall_api, oncall_server):
    # a shift created by an earlier run that failed before the schedule existed is adopted, not duplicated
    status, shift = oncall_api("POST", "/api/v1/on_call_shifts/", {
        "name": "I rotation", "type": "rolling_users", "start": "2026-01-05T00:00:00", "duration": 604800,
        "frequency": "weekly", "week_start": "MO", "rolling_users": [[oncall_server.users["alice"]["id"]]],
        "start_rotation_from_user_index": 0})
    assert status == 201
    result = run(name="I", users=["alice"], rotation_start="2026-01-05")
    assert result["changed"] is True and result["shift"]["id"] == shift["id"]
    status, page = oncall_api("GET", "/api/v1/on_call_shifts/?name=I%20rotation")
    assert page["count"] == 1


def test_delete(run, oncall_api):
    run(name="D", users=["alice"], rotation_start="2026-01-05")
    shift_id = schedule_state(oncall_api, "D")[1][0]["id"]
    result = run(check_mode=True, name="D", state="absent")
    assert result["changed"] is True and schedule_state(oncall_api, "D")[0] is not None
    result = run(name="D", state="absent")
    assert result["changed"] is True and result["diff"]["after"] == {}
    assert schedule_state(oncall_api, "D")[0] is None
    assert oncall_api("GET", f"/api/v1/on_call_shifts/{shift_id}/")[0] == 404
    assert run(name="D", state="absent")["changed"] is False


def test_validation_and_refusals(run, oncall_api, oncall_server):
    cases = [
        (dict(users=["alice"]), "set rotation_start"),
        (dict(users=["alice"], rotation_start="05.01.2026"), "rotation_start must be"),
        (dict(users=["alice"], rotation_start="2026-01-05", frequency="monthly"), "set shift_duration"),
        (dict(users=["alice"], rotation_start="2026-01-05", by_day=["XX"]), "by_day takes"),
        (dict(users=["alice"], rotation_start="2026-01-05", start_rotation_from_user_index=1),
         "start_rotation_from_user_index must be an index"),
        (dict(users=["alice", "ghost"], rotation_start="2026-01-05"), "no OnCall user matches 'ghost'"),
        (dict(users=[], rotation_start="2026-01-05"), "users must name at least one user"),
    ]
    for options, message in cases:
        result = run(name="V", **options)
        assert result.exit_code == 1 and message in result["msg"], (options, result["msg"])
    result = run(name="V", users=["alice"], rotation_start="2026-01-05", time_zone="Mars/Olympus")
    assert result.exit_code == 1 and result["http_status"] == 400 and "time_zone: Invalid timezone" in result["msg"]
    status, _ = oncall_api("POST", "/api/v1/schedules/", {"name": "Web", "type": "web", "time_zone": "UTC"})
    assert status == 201
    result = run(name="Web", users=["alice"], rotation_start="2026-01-05")
    assert result.exit_code == 1 and "is a web schedule" in result["msg"]
    # schedules need the Editor role: alice (Editor) may, bob (Viewer) may not
    result = run(name="E", users=["alice"], rotation_start="2026-01-05", oncall_api_token=oncall_server.tokens["alice"])
    assert result["changed"] is True
    result = run(name="E2", users=["alice"], rotation_start="2026-01-05", oncall_api_token=oncall_server.tokens["bob"])
    assert result.exit_code == 1 and result["http_status"] == 403
