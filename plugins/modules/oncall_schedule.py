# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: oncall_schedule
short_description: Manage a Grafana OnCall on-call schedule with a simple rotation of users
version_added: 0.1.0
description:
  - Create, update or delete an on-call schedule of the Grafana OnCall engine whose on-call shift is one rotation
    through a list of users, through the public API (C(/api/v1/schedules/), C(/api/v1/on_call_shifts/)).
  - The schedule is found by O(name); it is an API-managed schedule (OnCall type C(calendar)) holding exactly one
    C(rolling_users) shift named O(shift_name). Each user in O(users) is on call for one turn of O(frequency) and
    O(interval), in the order given, starting at O(rotation_start).
  - Schedules made in the OnCall web UI (type C(web)) or from an iCal URL (type C(ical)) are refused; OnCall does not
    let the API update web schedules.
  - Users are given by Grafana login (username), email address or OnCall user id.
  - Idempotent; supports check mode and diff mode.
author:
  - o11y.stack maintainers (@o11y-stack)
extends_documentation_fragment:
  - o11y.stack.oncall
options:
  name:
    description:
      - Name of the schedule. Escalation steps point at it by this name
        (M(o11y.stack.oncall_escalation_chain), type C(notify_on_call_from_schedule)).
    type: str
    required: true
  users:
    description:
      - The users on call in turn, in this order. Required with O(state=present).
    type: list
    elements: str
  rotation_start:
    description:
      - When the first turn starts, in O(time_zone), as C(YYYY-MM-DDTHH:MM:SS), C(YYYY-MM-DD HH:MM) or C(YYYY-MM-DD)
        (midnight). Required to create the schedule; unset leaves the start as it is.
    type: str
  time_zone:
    description:
      - Time zone of the schedule and its rotation (IANA name such as V(Europe/Berlin)).
    type: str
    default: UTC
  frequency:
    description:
      - Length of one turn, together with O(interval).
    type: str
    choices: [hourly, daily, weekly, monthly]
    default: weekly
  interval:
    description:
      - Number of O(frequency) periods per turn, for example V(2) with V(weekly) for two-week turns.
    type: int
    default: 1
  shift_duration:
    description:
      - Seconds a user is on call within each turn. Defaults to the whole turn for V(hourly), V(daily) and V(weekly)
        (O(interval) times an hour, a day or a week); required with V(monthly).
    type: int
  week_start:
    description:
      - First day of the week for V(weekly) rotations.
    type: str
    choices: [MO, TU, WE, TH, FR, SA, SU]
    default: MO
  by_day:
    description:
      - Only these weekdays (V(MO) ... V(SU)). Unset or V([]) means every day.
    type: list
    elements: str
  start_rotation_from_user_index:
    description:
      - Index in O(users) of the user whose turn comes first.
    type: int
    default: 0
  shift_name:
    description:
      - Name of the rotation's on-call shift. Defaults to O(name) followed by C( rotation).
    type: str
  state:
    description:
      - V(present) creates or updates the schedule and its rotation, V(absent) deletes both.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
    description: Reports the change and the diff without changing OnCall.
  diff_mode:
    support: full
    description: Returns the schedule's name, time zone and rotation (users by username) before and after.
  platform:
    platforms: posix
    support: full
    description: Runs wherever the OnCall engine's API is reachable.
seealso:
  - name: OnCall schedules HTTP API
    description: The API this module uses.
    link: https://grafana.com/docs/oncall/latest/oncall-api-reference/schedules/
  - name: OnCall on-call shifts HTTP API
    description: The rotation.
    link: https://grafana.com/docs/oncall/latest/oncall-api-reference/on_call_shifts/
  - module: o11y.stack.oncall_escalation_chain
"""

EXAMPLES = r"""
- name: Weekly primary on-call, handing over on Mondays at 09:00 Berlin time
  o11y.stack.oncall_schedule:
    oncall_url: "http://{{ groups['oncall'][0] }}:8080"
    oncall_api_token: "{{ oncall_api_token }}"
    name: Primary on-call
    users: [alice, bob, carol@example.com]
    rotation_start: "2026-01-05 09:00"
    time_zone: Europe/Berlin
    frequency: weekly

- name: Office hours only, a new person every day
  o11y.stack.oncall_schedule:
    oncall_url: "http://{{ groups['oncall'][0] }}:8080"
    oncall_api_token: "{{ oncall_api_token }}"
    name: Daytime support
    users: [alice, bob]
    rotation_start: "2026-01-05 08:00"
    frequency: daily
    shift_duration: 36000
    by_day: [MO, TU, WE, TH, FR]

- name: Remove a schedule and its rotation
  o11y.stack.oncall_schedule:
    oncall_url: "http://{{ groups['oncall'][0] }}:8080"
    oncall_api_token: "{{ oncall_api_token }}"
    name: Old rota
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the schedule or its rotation was (or in check mode would be) created, changed or deleted.
  returned: always
  type: bool
id:
  description: The schedule's OnCall id (empty when absent or not created yet).
  returned: always
  type: str
  sample: SBM7DV7BKFUYU
schedule:
  description: The schedule as the API returns it. Empty when absent.
  returned: always
  type: dict
  sample: {id: SBM7DV7BKFUYU, name: Primary on-call, type: calendar, time_zone: Europe/Berlin,
           shifts: [OH3V5FYQEYJ6M], on_call_now: [U4DNY931HHJS5]}
shift:
  description: The rotation's on-call shift as the API returns it. Empty when absent.
  returned: always
  type: dict
  sample: {id: OH3V5FYQEYJ6M, type: rolling_users, frequency: weekly, interval: 1, week_start: MO,
           start: "2026-01-05T09:00:00", duration: 604800, rolling_users: [[U4DNY931HHJS5], [U2YZ1VGPDAGYM]]}
on_call_now:
  description: Usernames of the users on call when the module ran, as the engine reports them.
  returned: always
  type: list
  elements: str
  sample: [alice]
diff:
  description: Name, time zone and rotation (users by username) before and after; an empty dictionary stands for a
    missing schedule.
  returned: always
  type: dict
  contains:
    before:
      description: Before the module ran.
      returned: always
      type: dict
    after:
      description: After the module ran.
      returned: always
      type: dict
"""

import copy
import re

from ansible_collections.o11y.stack.plugins.module_utils.http_api import diff_result
from ansible_collections.o11y.stack.plugins.module_utils.oncall import (
    oncall_module,
    quote_path,
    run_oncall_module,
)

PERIOD = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400}
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


def api_datetime(value):
    """``YYYY-MM-DD[THH:MM[:SS]]`` (T or a space) -> the API's ``YYYY-MM-DDTHH:MM:SS``; None when malformed."""
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?", value.strip())
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in m.groups())
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 59):
        return None
    return "%04d-%02d-%02dT%02d:%02d:%02d" % (year, month, day, hour, minute, second)


def rotation_view(shift, client):
    """The rotation as the module compares and shows it."""
    if not shift:
        return {}
    groups = shift.get("rolling_users") or []
    users = ["+".join(client.user_names(group)) for group in groups]
    view = {"shift_name": shift.get("name"), "time_zone": shift.get("time_zone"), "start": shift.get("start"),
            "duration": shift.get("duration"), "frequency": shift.get("frequency"), "interval": shift.get("interval"),
            "by_day": sorted(shift.get("by_day") or [], key=WEEKDAYS.index),
            "users": users, "start_rotation_from_user_index": shift.get("start_rotation_from_user_index") or 0}
    if shift.get("frequency") == "weekly":
        view["week_start"] = shift.get("week_start")
    return view


def schedule_view(schedule, shift, client):
    if not schedule:
        return {}
    return {"name": schedule["name"], "time_zone": schedule.get("time_zone"), "rotation": rotation_view(shift, client),
            "other_shifts": sorted(s for s in schedule.get("shifts") or [] if not shift or s != shift["id"])}


def find_shift(client, schedule, shift_name):
    """The rotation shift: on the schedule by name, else a detached shift of that name (from an interrupted run)."""
    if schedule:
        for sid in schedule.get("shifts") or []:
            shift = client.get_object("on_call_shifts", sid)
            if shift and shift.get("name") == shift_name:
                return shift
    detached = [s for s in client.list_all("on_call_shifts", {"name": shift_name})
                if s.get("name") == shift_name and not s.get("schedule")]
    return detached[0] if len(detached) == 1 else None


def ensure_present(module, client):
    params = module.params
    shift_name = params["shift_name"] or params["name"] + " rotation"
    current = client.find_by_name("schedules", params["name"], "schedule")
    if current is not None and current.get("type") != "calendar":
        module.fail_json(msg=f"schedule {params['name']!r} is a {current.get('type')} schedule (made in the OnCall "
                             "web UI or from an iCal URL); this module manages API schedules (type calendar) and "
                             "OnCall does not let the API update web schedules. Pick another name or delete it")
    shift = find_shift(client, current, shift_name)
    start = api_datetime(params["rotation_start"]) if params["rotation_start"] else (shift or {}).get("start")
    if start is None:
        module.fail_json(msg=f"set rotation_start to create the rotation of schedule {params['name']!r}")
    ids = client.resolve_users(params["users"], "users")
    duration = params["shift_duration"] or PERIOD[params["frequency"]] * params["interval"]
    body = {"name": shift_name, "type": "rolling_users", "time_zone": params["time_zone"], "start": start,
            "rotation_start": start, "duration": duration, "frequency": params["frequency"],
            "interval": params["interval"], "by_day": sorted(params["by_day"] or [], key=WEEKDAYS.index) or None,
            "rolling_users": [[uid] for uid in ids],
            "start_rotation_from_user_index": params["start_rotation_from_user_index"]}
    if params["frequency"] == "weekly":
        body["week_start"] = params["week_start"]
    wanted_rotation = rotation_view(dict(body, by_day=body["by_day"] or []), client)
    before = schedule_view(current, shift, client)
    after = {"name": params["name"], "time_zone": params["time_zone"], "rotation": wanted_rotation,
             "other_shifts": []}
    changed = after != before
    result = diff_result(changed, before, after)
    if not changed:
        result.update(schedule=current, id=current["id"], shift=shift,
                      on_call_now=client.user_names(current.get("on_call_now") or []))
        return result
    if module.check_mode:
        predicted = copy.deepcopy(current) if current else {"id": "", "name": params["name"], "type": "calendar",
                                                            "on_call_now": []}
        predicted.update(time_zone=params["time_zone"], shifts=[shift["id"]] if shift else [])
        predicted_shift = dict(shift or {"id": ""}, **body)
        result.update(schedule=predicted, id=predicted["id"], shift=predicted_shift,
                      on_call_now=client.user_names(predicted.get("on_call_now") or []))
        return result
    if shift is None:
        shift = client.post("on_call_shifts/", body)
    elif rotation_view(shift, client) != wanted_rotation:
        shift = client.put(f"on_call_shifts/{quote_path(shift['id'])}/", body, hints={
            404: "The rotation's shift was deleted while the module ran; run the task again"})
    schedule_body = {"name": params["name"], "time_zone": params["time_zone"], "shifts": [shift["id"]]}
    if current is None:
        schedule = client.post("schedules/", dict(schedule_body, type="calendar"))
    elif schedule_view(current, shift, client) != after or current.get("shifts") != [shift["id"]]:
        schedule = client.put(f"schedules/{quote_path(current['id'])}/", schedule_body, hints={
            404: "The schedule was deleted while the module ran; run the task again"})
    else:
        schedule = client.get_object("schedules", current["id"]) or current
    result["diff"]["after"] = schedule_view(schedule, shift, client)
    result.update(schedule=schedule, id=schedule["id"], shift=shift,
                  on_call_now=client.user_names(schedule.get("on_call_now") or []))
    return result


def ensure_absent(module, client):
    params = module.params
    shift_name = params["shift_name"] or params["name"] + " rotation"
    current = client.find_by_name("schedules", params["name"], "schedule")
    if current is not None and current.get("type") != "calendar":
        module.fail_json(msg=f"schedule {params['name']!r} is a {current.get('type')} schedule, not one this module "
                             "manages; delete it in the OnCall web UI")
    shift = find_shift(client, current, shift_name) if current else None
    result = diff_result(current is not None, schedule_view(current, shift, client), {}, schedule={}, id="", shift={},
                         on_call_now=[])
    if current is not None and not module.check_mode:
        client.delete(f"schedules/{quote_path(current['id'])}/")
        if shift is not None:
            client.delete(f"on_call_shifts/{quote_path(shift['id'])}/")
    return result


def main():
    module = oncall_module(dict(
        name={"type": "str", "required": True},
        users={"type": "list", "elements": "str"},
        rotation_start={"type": "str"},
        time_zone={"type": "str", "default": "UTC"},
        frequency={"type": "str", "default": "weekly", "choices": ["hourly", "daily", "weekly", "monthly"]},
        interval={"type": "int", "default": 1},
        shift_duration={"type": "int"},
        week_start={"type": "str", "default": "MO", "choices": WEEKDAYS},
        by_day={"type": "list", "elements": "str"},
        start_rotation_from_user_index={"type": "int", "default": 0},
        shift_name={"type": "str"},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
    ), required_if=[("state", "present", ("users",))])
    params = module.params
    if not params["name"].strip():
        module.fail_json(msg="name must not be empty")
    if params["state"] == "present":
        if not params["users"]:
            module.fail_json(msg="users must name at least one user")
        if params["rotation_start"] is not None and api_datetime(params["rotation_start"]) is None:
            module.fail_json(msg="rotation_start must be YYYY-MM-DDTHH:MM:SS, YYYY-MM-DD HH:MM or YYYY-MM-DD, got "
                                 f"{params['rotation_start']!r}")
        if params["interval"] < 1:
            module.fail_json(msg="interval must be at least 1")
        if params["frequency"] == "monthly" and not params["shift_duration"]:
            module.fail_json(msg="set shift_duration (seconds on call per turn) for a monthly rotation")
        if params["shift_duration"] is not None and params["shift_duration"] < 1:
            module.fail_json(msg="shift_duration must be a positive number of seconds")
        bad = [d for d in params["by_day"] or [] if d not in WEEKDAYS]
        if bad:
            module.fail_json(msg=f"by_day takes {', '.join(WEEKDAYS)}; got {', '.join(bad)}")
        if not 0 <= params["start_rotation_from_user_index"] < len(params["users"]):
            module.fail_json(msg="start_rotation_from_user_index must be an index into users (0 to "
                                 f"{len(params['users']) - 1})")
    run_oncall_module(module, ensure_present, ensure_absent)


if __name__ == "__main__":
    main()
