# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: oncall_escalation_chain
short_description: Manage Grafana OnCall escalation chains and their ordered escalation policies
version_added: 0.1.0
description:
  - Create, update or delete an escalation chain of the Grafana OnCall engine and set its escalation policies (the
    steps, in order) through the public API (C(/api/v1/escalation_chains/), C(/api/v1/escalation_policies/)).
  - The chain is found by O(name) (unique in OnCall).
  - O(policies) is the whole ordered list of steps. Policies are updated in place position by position, missing ones
    are appended and extra ones deleted, so the chain ends up with exactly these steps in this order.
  - Users are given by Grafana login (username), email address or OnCall user id; schedules and teams by name.
  - Idempotent; supports check mode and diff mode.
author:
  - o11y.stack maintainers (@o11y-stack)
extends_documentation_fragment:
  - o11y.stack.oncall
options:
  name:
    description:
      - Name of the escalation chain (at most 100 characters).
    type: str
    required: true
  policies:
    description:
      - The escalation steps in order. V([]) removes every step; unset leaves the steps as they are.
      - Each step takes the options of its O(policies[].type); an option of another type is refused.
    type: list
    elements: dict
    suboptions:
      type:
        description:
          - The step. V(wait) waits O(policies[].duration); V(notify_persons) notifies O(policies[].users) at once,
            V(notify_person_next_each_time) one of them in turn; V(notify_on_call_from_schedule) notifies who is on
            call in O(policies[].schedule); V(notify_team_members) every member of O(policies[].team);
            V(notify_user_group) a Slack user group; V(trigger_webhook) an outgoing webhook;
            V(notify_if_time_from_to) continues only between O(policies[].time_from) and O(policies[].time_to) (UTC);
            V(notify_if_num_alerts_in_window) continues only with more than O(policies[].num_alerts) alerts in
            O(policies[].num_minutes) minutes; V(repeat_escalation) repeats the chain (up to 5 times); V(resolve)
            resolves the alert group; V(notify_whole_channel) (needs Slack) and V(declare_incident) (needs Grafana
            Incident) are refused by an engine without them.
        type: str
        required: true
        choices: [wait, notify_persons, notify_person_next_each_time, notify_on_call_from_schedule, notify_team_members,
                  notify_user_group, trigger_webhook, notify_if_time_from_to, notify_if_num_alerts_in_window,
                  repeat_escalation, resolve, notify_whole_channel, declare_incident]
      duration:
        description: Seconds to wait (V(wait)), from 60 to 86400.
        type: int
      important:
        description:
          - Use the users' "important" notification rules (the notifying steps).
        type: bool
        default: false
      users:
        description: Users to notify (V(notify_persons), V(notify_person_next_each_time)) by username, email or id.
        type: list
        elements: str
      schedule:
        description: Name of the schedule whose on-call users are notified (V(notify_on_call_from_schedule)).
        type: str
      team:
        description: Name or id of the OnCall team (from Grafana) whose members are notified (V(notify_team_members)).
        type: str
      user_group_id:
        description: Id of the Slack user group (V(notify_user_group)).
        type: str
      webhook_id:
        description: Id of the outgoing webhook (V(trigger_webhook)).
        type: str
      time_from:
        description: Start of the time window, C(HH:MM) or C(HH:MM:SS), UTC (V(notify_if_time_from_to)).
        type: str
      time_to:
        description: End of the time window, C(HH:MM) or C(HH:MM:SS), UTC (V(notify_if_time_from_to)).
        type: str
      num_alerts:
        description: More than this many alerts (V(notify_if_num_alerts_in_window)).
        type: int
      num_minutes:
        description: Within this many minutes (V(notify_if_num_alerts_in_window)).
        type: int
      severity:
        description: Severity of the declared incident (V(declare_incident)).
        type: str
  state:
    description:
      - V(present) creates or updates the chain, V(absent) deletes it with its steps (integration routes that used it
        are left without a chain).
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
    description: Reports the change and the diff without changing OnCall.
  diff_mode:
    support: full
    description: Returns the chain's name and steps (users and schedules by name) before and after.
  platform:
    platforms: posix
    support: full
    description: Runs wherever the OnCall engine's API is reachable.
seealso:
  - name: OnCall escalation chains HTTP API
    description: The API this module uses.
    link: https://grafana.com/docs/oncall/latest/oncall-api-reference/escalation_chains/
  - name: OnCall escalation policies HTTP API
    description: The steps of a chain.
    link: https://grafana.com/docs/oncall/latest/oncall-api-reference/escalation_policies/
  - module: o11y.stack.oncall_integration
  - module: o11y.stack.oncall_schedule
"""

EXAMPLES = r"""
- name: Page the on-call person, then the whole team
  o11y.stack.oncall_escalation_chain:
    oncall_url: "http://{{ groups['oncall'][0] }}:8080"
    oncall_api_token: "{{ oncall_api_token }}"
    name: default
    policies:
      - type: notify_on_call_from_schedule
        schedule: Primary on-call
        important: true
      - type: wait
        duration: 900
      - type: notify_persons
        users: [alice, bob@example.com]
      - type: repeat_escalation

- name: Only during office hours (UTC)
  o11y.stack.oncall_escalation_chain:
    oncall_url: "http://{{ groups['oncall'][0] }}:8080"
    oncall_api_token: "{{ oncall_api_token }}"
    name: office-hours
    policies:
      - type: notify_if_time_from_to
        time_from: "08:00"
        time_to: "18:00"
      - type: notify_person_next_each_time
        users: [alice, bob]

- name: Remove a chain
  o11y.stack.oncall_escalation_chain:
    oncall_url: "http://{{ groups['oncall'][0] }}:8080"
    oncall_api_token: "{{ oncall_api_token }}"
    name: old
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the chain or its steps were (or in check mode would be) created, changed or deleted.
  returned: always
  type: bool
id:
  description: The chain's OnCall id (empty when absent or not created yet).
  returned: always
  type: str
  sample: F5JU6KJET33FE
escalation_chain:
  description: The chain as the API returns it. Empty when absent.
  returned: always
  type: dict
  sample: {id: F5JU6KJET33FE, name: default, team_id: null}
policies:
  description: The chain's escalation policies in order, as the API returns them (in check mode, as predicted).
  returned: always
  type: list
  elements: dict
  sample:
    - {position: 0, id: E3GA6SJETWWJS, escalation_chain_id: F5JU6KJET33FE, type: wait, duration: 900}
diff:
  description: Name and steps (users by username, schedules and teams by name) before and after; an empty dictionary
    stands for a missing chain.
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
    OnCallError,
    oncall_module,
    quote_path,
    run_oncall_module,
)

IMPORTANT_TYPES = ("notify_persons", "notify_person_next_each_time", "notify_on_call_from_schedule",
                   "notify_team_members", "notify_user_group")
# module option -> (API field, types that take it)
FIELDS = {
    "duration": ("duration", ("wait",)),
    "users": (None, ("notify_persons", "notify_person_next_each_time")),
    "schedule": ("notify_on_call_from_schedule", ("notify_on_call_from_schedule",)),
    "team": ("team_to_notify", ("notify_team_members",)),
    "user_group_id": ("group_to_notify", ("notify_user_group",)),
    "webhook_id": ("action_to_trigger", ("trigger_webhook",)),
    "time_from": ("notify_if_time_from", ("notify_if_time_from_to",)),
    "time_to": ("notify_if_time_to", ("notify_if_time_from_to",)),
    "num_alerts": ("num_alerts_in_window", ("notify_if_num_alerts_in_window",)),
    "num_minutes": ("num_minutes_in_window", ("notify_if_num_alerts_in_window",)),
    "severity": ("severity", ("declare_incident",)),
}
REQUIRED = {"wait": ("duration",), "notify_persons": ("users",), "notify_person_next_each_time": ("users",),
            "notify_on_call_from_schedule": ("schedule",), "notify_team_members": ("team",),
            "notify_user_group": ("user_group_id",), "trigger_webhook": ("webhook_id",),
            "notify_if_time_from_to": ("time_from", "time_to"),
            "notify_if_num_alerts_in_window": ("num_alerts", "num_minutes")}
USERS_FIELD = {"notify_persons": "persons_to_notify", "notify_person_next_each_time": "persons_to_notify_next_each_time"}
POLICY_SPEC = dict(
    type={"type": "str", "required": True, "choices": [
        "wait", "notify_persons", "notify_person_next_each_time", "notify_on_call_from_schedule",
        "notify_team_members", "notify_user_group", "trigger_webhook", "notify_if_time_from_to",
        "notify_if_num_alerts_in_window", "repeat_escalation", "resolve", "notify_whole_channel", "declare_incident"]},
    duration={"type": "int"},
    important={"type": "bool", "default": False},
    users={"type": "list", "elements": "str"},
    schedule={"type": "str"},
    team={"type": "str"},
    user_group_id={"type": "str"},
    webhook_id={"type": "str"},
    time_from={"type": "str"},
    time_to={"type": "str"},
    num_alerts={"type": "int"},
    num_minutes={"type": "int"},
    severity={"type": "str"},
)


def api_time(value):
    """``HH:MM`` or ``HH:MM:SS`` (optionally with Z) -> the API's ``HH:MM:SSZ``; None when malformed."""
    m = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?Z?", value.strip())
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59 or int(m.group(3) or 0) > 59:
        return None
    return "%02d:%s:%sZ" % (int(m.group(1)), m.group(2), m.group(3) or "00")


def policy_problem(index, policy):
    """Why policy number *index* is not valid (None when it is)."""
    where = f"policies[{index}] ({policy['type']})"
    for option, (_field, types) in FIELDS.items():
        if policy.get(option) is not None and policy["type"] not in types:
            return f"{where}: {option} applies only to type {' or '.join(types)}"
    if policy.get("important") and policy["type"] not in IMPORTANT_TYPES:
        return f"{where}: important applies only to the notifying types ({', '.join(IMPORTANT_TYPES)})"
    for option in REQUIRED.get(policy["type"], ()):
        if policy.get(option) in (None, "", []):
            return f"{where}: set {option}"
    if policy.get("duration") is not None and not 60 <= policy["duration"] <= 86400:
        return f"{where}: duration must be from 60 to 86400 seconds, got {policy['duration']}"
    for option in ("time_from", "time_to"):
        if policy.get(option) is not None and api_time(policy[option]) is None:
            return f"{where}: {option} must be HH:MM or HH:MM:SS (UTC), got {policy[option]!r}"
    for option in ("num_alerts", "num_minutes"):
        if policy.get(option) is not None and policy[option] < 0:
            return f"{where}: {option} must not be negative"
    return None


class Lookups:
    """Names <-> ids of the objects steps point at (users, schedules, teams)."""

    def __init__(self, client):
        self.client = client
        self._schedules = None
        self._teams = None

    def schedules(self):
        if self._schedules is None:
            self._schedules = self.client.list_all("schedules")
        return self._schedules

    def teams(self):
        if self._teams is None:
            self._teams = self.client.list_all("teams")
        return self._teams

    def schedule_id(self, name, check_mode, module):
        hits = [s for s in self.schedules() if s["name"] == name or s["id"] == name]
        if len(hits) > 1:
            raise OnCallError(f"{len(hits)} schedules are named {name!r}; give the schedule's id instead")
        if hits:
            return hits[0]["id"]
        if check_mode:
            module.warn(f"schedule {name!r} does not exist (yet); in a real run the task fails unless an earlier "
                        "task creates it")
            return None
        raise OnCallError(f"schedule {name!r} does not exist; create it first (o11y.stack.oncall_schedule) or fix "
                          "the step's schedule")

    def team_id(self, name):
        hits = [t for t in self.teams() if t["name"] == name or t["id"] == name]
        if len(hits) != 1:
            known = ", ".join(sorted(t["name"] for t in self.teams())) or "none"
            raise OnCallError(f"no single OnCall team matches {name!r} (teams: {known}); OnCall takes its teams "
                              "from Grafana")
        return hits[0]["id"]

    def schedule_name(self, sid):
        return next((s["name"] for s in self.schedules() if s["id"] == sid), sid)

    def team_name(self, tid):
        return next((t["name"] for t in self.teams() if t["id"] == tid), tid)


def view_policy(policy, lookups):
    """A step as the module compares and shows it (users by username, schedule and team by name)."""
    ptype = policy["type"]
    out = {"type": ptype}
    if ptype in IMPORTANT_TYPES:
        out["important"] = bool(policy.get("important"))
    if ptype == "wait":
        out["duration"] = policy.get("duration")
    elif ptype in USERS_FIELD:
        out["users"] = sorted(lookups.client.user_names(policy.get(USERS_FIELD[ptype]) or []))
    elif ptype == "notify_on_call_from_schedule":
        sid = policy.get("notify_on_call_from_schedule")
        out["schedule"] = lookups.schedule_name(sid) if sid else None
    elif ptype == "notify_team_members":
        tid = policy.get("team_to_notify")
        out["team"] = lookups.team_name(tid) if tid else None
    else:
        for option, (field, types) in FIELDS.items():
            if ptype in types and field:
                out[option] = policy.get(field)
    return out


def wanted_policy(policy, lookups, module):
    """(view, API body) of a step given as a module option."""
    ptype = policy["type"]
    view = {"type": ptype}
    body = {"type": ptype}
    if ptype in IMPORTANT_TYPES:
        view["important"] = body["important"] = bool(policy["important"])
    if ptype == "wait":
        view["duration"] = body["duration"] = policy["duration"]
    elif ptype in USERS_FIELD:
        ids = list(dict.fromkeys(lookups.client.resolve_users(policy["users"], "policies[].users")))
        body[USERS_FIELD[ptype]] = ids
        view["users"] = sorted(lookups.client.user_names(ids))
    elif ptype == "notify_on_call_from_schedule":
        sid = lookups.schedule_id(policy["schedule"], module.check_mode, module)
        body["notify_on_call_from_schedule"] = sid
        view["schedule"] = lookups.schedule_name(sid) if sid else policy["schedule"]
    elif ptype == "notify_team_members":
        tid = lookups.team_id(policy["team"])
        body["team_to_notify"] = tid
        view["team"] = lookups.team_name(tid)
    else:
        for option, (field, types) in FIELDS.items():
            if ptype in types and field:
                value = policy.get(option)
                if option in ("time_from", "time_to") and value is not None:
                    value = api_time(value)
                view[option] = body[field] = value
    return view, body


def chain_policies(client, chain_id):
    if not chain_id:
        return []
    policies = client.list_all("escalation_policies", {"escalation_chain_id": chain_id})
    return sorted((p for p in policies if p.get("escalation_chain_id") == chain_id), key=lambda p: p["position"])


def ensure_present(module, client):
    params = module.params
    current = client.find_by_name("escalation_chains", params["name"], "escalation chain")
    lookups = Lookups(client)
    policies = chain_policies(client, current["id"] if current else None)
    before = {"name": current["name"], "policies": [view_policy(p, lookups) for p in policies]} if current else {}
    wanted = None
    if params["policies"] is not None:
        wanted = [wanted_policy(p, lookups, module) for p in params["policies"]]
    after = {"name": params["name"],
             "policies": [v for v, _b in wanted] if wanted is not None else copy.deepcopy(before.get("policies", []))}
    changed = after != before
    result = diff_result(changed, before, after)
    if not changed:
        result.update(escalation_chain=current, id=current["id"], policies=policies)
        return result
    if module.check_mode:
        chain = current or {"id": "", "name": params["name"], "team_id": None}
        predicted = []
        for index, (view, body) in enumerate(wanted if wanted is not None else []):
            old = policies[index] if index < len(policies) else {"id": "", "position": index}
            predicted.append(dict(body, id=old["id"], position=old["position"], escalation_chain_id=chain["id"]))
        result.update(escalation_chain=chain, id=chain["id"], policies=predicted if wanted is not None else policies)
        return result
    chain = current or client.post("escalation_chains/", {"name": params["name"]})
    if wanted is not None:
        done = []
        for index, (view, body) in enumerate(wanted):
            if index < len(policies):
                old = policies[index]
                if view_policy(old, lookups) == view:
                    done.append(old)
                    continue
                done.append(client.put(f"escalation_policies/{quote_path(old['id'])}/", body, hints={
                    404: "The step was deleted while the module ran; run the task again"}))
            else:
                done.append(client.post("escalation_policies/", dict(body, escalation_chain_id=chain["id"])))
        for old in policies[len(wanted):]:
            client.delete(f"escalation_policies/{quote_path(old['id'])}/")
        policies = chain_policies(client, chain["id"])
    result["diff"]["after"] = {"name": chain["name"], "policies": [view_policy(p, lookups) for p in policies]}
    result.update(escalation_chain=chain, id=chain["id"], policies=policies)
    return result


def ensure_absent(module, client):
    current = client.find_by_name("escalation_chains", module.params["name"], "escalation chain")
    lookups = Lookups(client)
    before = {}
    if current:
        before = {"name": current["name"],
                  "policies": [view_policy(p, lookups) for p in chain_policies(client, current["id"])]}
    result = diff_result(current is not None, before, {}, escalation_chain={}, id="", policies=[])
    if current is not None and not module.check_mode:
        client.delete(f"escalation_chains/{quote_path(current['id'])}/")
    return result


def main():
    module = oncall_module(dict(
        name={"type": "str", "required": True},
        policies={"type": "list", "elements": "dict", "options": POLICY_SPEC},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
    ))
    params = module.params
    if not params["name"].strip():
        module.fail_json(msg="name must not be empty")
    if len(params["name"]) > 100:
        module.fail_json(msg="name must have at most 100 characters (OnCall's limit)")
    for index, policy in enumerate(params["policies"] or []):
        problem = policy_problem(index, policy)
        if problem:
            module.fail_json(msg=problem)
    run_oncall_module(module, ensure_present, ensure_absent)


if __name__ == "__main__":
    main()
