# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: grafana_notification_policy
short_description: Manage the Grafana alerting notification policy tree
version_added: 0.1.0
description:
  - Set the whole notification policy tree of a Grafana organisation (the root policy and its nested policies)
    through the alerting provisioning HTTP API (C(/api/v1/provisioning/policies)), or reset it to Grafana's default
    tree.
  - The options describe the complete tree; policies, matchers and timings not given are removed.
  - Idempotent, the module normalises the tree the way Grafana stores it (durations such as V(90m) become V(1h30m),
    V(24h) becomes V(1d), object matchers are sorted, quotes around matcher values dropped, empty and V(false)
    fields left out) and compares it with the tree Grafana returns, together with the tree's provenance.
author:
  - o11y.stack maintainers (@o11y-stack)
extends_documentation_fragment:
  - o11y.stack.grafana
options:
  state:
    description:
      - V(present) sets the tree to the one described by the options.
      - V(absent) resets it to Grafana's default tree (root policy to C(grafana-default-email), grouped by
        C(grafana_folder) and C(alertname), no nested policies) without a provenance, like Grafana's
        C(DELETE /api/v1/provisioning/policies); Grafana re-creates the C(grafana-default-email) contact point if it
        is missing.
    type: str
    choices: [present, absent]
    default: present
  receiver:
    description:
      - Name of the contact point the root policy sends to (the default receiver). Required with O(state=present).
      - Every receiver in the tree must exist (M(o11y.stack.grafana_contact_point)); the module checks before any
        change.
    type: str
  group_by:
    description:
      - Labels the root policy groups alerts by, for example V([grafana_folder, alertname]).
      - V(["..."]) groups by all labels (that is, not at all) and cannot be combined with other labels.
    type: list
    elements: str
  group_wait:
    description:
      - How long to wait before the first notification of a new group, a Prometheus duration such as V(30s).
      - Unset uses Grafana's default (30s).
    type: str
  group_interval:
    description:
      - How long to wait before notifying about new alerts of a group that was already notified, such as V(5m).
        Must not be zero.
      - Unset uses Grafana's default (5m).
    type: str
  repeat_interval:
    description:
      - How long to wait before sending a notification again for alerts that still fire, such as V(4h). Must not be
        zero.
      - Unset uses Grafana's default (4h).
    type: str
  routes:
    description:
      - The nested policies, in order. Each is a dictionary with these keys, all optional.
      - C(receiver) (str) - contact point name; inherited from the parent policy when not set.
      - C(object_matchers) (list) - the labels an alert must match, each either a list V([label, operator, value])
        or a string such as V(severity=critical) or V(team=~"ops|sre"); operators C(=), C(!=), C(=~), C(!~).
      - C(continue) (bool) - go on matching the following sibling policies after this one matched.
      - C(group_by) (list of str), C(group_wait), C(group_interval), C(repeat_interval) (str) - as for the root
        policy; inherited when not set.
      - C(mute_time_intervals), C(active_time_intervals) (list of str) - names of time intervals (mute timings) that
        exist in Grafana.
      - C(routes) (list) - nested policies of this policy, with the same keys.
    type: list
    elements: dict
    default: []
  disable_provenance:
    description:
      - Send the C(X-Disable-Provenance) header, so that the tree stays editable in the Grafana UI.
      - With V(false), Grafana records the provenance C(api) and the UI shows the tree as provisioned (read-only).
      - Grafana does not let the API set a tree that has a provenance back to none (HTTP 403); the module fails
        before that with what to do (reset the tree with O(state=absent) first).
      - Not used with O(state=absent), the reset tree never has a provenance.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reports the change and the diff without changing Grafana.
  diff_mode:
    support: full
    description: Returns the normalised tree (and its provenance) before and after.
  platform:
    platforms: posix
    support: full
    description: Runs wherever Grafana's HTTP API is reachable.
notes:
  - Needs the organisation Admin role (the C(alert.provisioning:read) and C(alert.provisioning:write) permissions).
  - The deprecated matcher forms C(match), C(match_re) and C(matchers) are not supported; a tree that has them is
    replaced by one with C(object_matchers).
seealso:
  - name: Grafana alerting provisioning HTTP API
    description: The API this module uses.
    link: https://grafana.com/docs/grafana/latest/alerting/set-up/provision-alerting-resources/http-api-provisioning/
  - name: Notification policies
    description: How Grafana routes alerts through the tree.
    link: https://grafana.com/docs/grafana/latest/alerting/fundamentals/notifications/notification-policies/
  - module: o11y.stack.grafana_contact_point
"""

EXAMPLES = r"""
- name: Critical alerts to OnCall, team alerts to their Slack channels, everything else by e-mail
  o11y.stack.grafana_notification_policy:
    grafana_url: "http://{{ groups['grafana'][0] }}:3000"
    grafana_token: "{{ grafana_service_account_token }}"
    receiver: Team mail
    group_by: [grafana_folder, alertname]
    group_wait: 30s
    group_interval: 5m
    repeat_interval: 4h
    routes:
      - receiver: OnCall
        object_matchers:
          - [severity, "=", critical]
        continue: true
      - receiver: Ops
        object_matchers:
          - team=~"ops|sre"
        group_by: [alertname, instance]
        routes:
          - receiver: OnCall
            object_matchers: ["env=production"]
            repeat_interval: 1h

- name: Keep the tree editable in the Grafana UI
  o11y.stack.grafana_notification_policy:
    grafana_url: https://grafana.example.com
    grafana_user: admin
    grafana_password: "{{ grafana_admin_password }}"
    receiver: OnCall
    group_by: [grafana_folder, alertname]
    disable_provenance: true

- name: Reset the tree to Grafana's default
  o11y.stack.grafana_notification_policy:
    grafana_url: https://grafana.example.com
    grafana_token: "{{ grafana_service_account_token }}"
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the tree was (or in check mode would be) changed or reset.
  returned: always
  type: bool
policy:
  description:
    - The tree after the module ran (in check mode, as it would be), as Grafana returns it, with C(provenance) when
      it has one.
  returned: always
  type: dict
  sample:
    receiver: Team mail
    group_by: [grafana_folder, alertname]
    group_wait: 30s
    routes:
      - receiver: OnCall
        object_matchers: [[severity, "=", critical]]
        continue: true
    provenance: api
diff:
  description:
    - The normalised tree before and after, with its C(provenance) (V("") for none).
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

from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.o11y.stack.plugins.module_utils.http_api import diff_result
from ansible_collections.o11y.stack.plugins.module_utils.grafana import (
    grafana_module,
    run_grafana_module,
)

# Grafana's default Alertmanager configuration (the tree DELETE /api/v1/provisioning/policies puts back).
DEFAULT_TREE = {"receiver": "grafana-default-email", "group_by": ["grafana_folder", "alertname"]}

ROUTE_KEYS = ("receiver", "object_matchers", "continue", "group_by", "group_wait", "group_interval",
              "repeat_interval", "mute_time_intervals", "active_time_intervals", "routes")
DURATION_KEYS = ("group_wait", "group_interval", "repeat_interval")
LIST_KEYS = ("group_by", "mute_time_intervals", "active_time_intervals")
# Kept when Grafana returns them, so that the comparison notices them (the module never writes them).
LEGACY_MATCHER_KEYS = ("match", "match_re", "matchers")
MATCH_TYPES = ("=", "!=", "=~", "!~")  # in the order Grafana sorts matchers of equal name and value
MATCHER_RE = re.compile(r"^\s*([^\s=!~]+)\s*(=~|!~|!=|=)\s*(.*?)\s*$")
DURATION_RE = re.compile(r"^(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?"
                         r"(?:([0-9]+)s)?(?:([0-9]+)ms)?$")
DURATION_UNITS = (("y", 365 * 86400000), ("w", 7 * 86400000), ("d", 86400000), ("h", 3600000), ("m", 60000),
                  ("s", 1000), ("ms", 1))


class TreeError(ValueError):
    """The described tree is invalid; the message says where and why."""


def parse_duration(text):
    """Milliseconds of a Prometheus duration (model.ParseDuration: units from y to ms, each once, in order)."""
    if text == "0":
        return 0
    match = DURATION_RE.match(text or "")
    if not text or not match:
        raise ValueError(text)
    return sum(int(value) * mult for value, (_unit, mult) in zip(match.groups(), DURATION_UNITS) if value)


def format_duration(ms):
    """model.Duration.String(): how Grafana returns a duration (V(90m) -> V(1h30m); years and weeks only exact)."""
    if ms == 0:
        return "0s"
    out = ""
    for unit, mult in DURATION_UNITS:
        if unit in ("y", "w") and ms % mult:
            continue
        if ms // mult:
            out += "%d%s" % (ms // mult, unit)
            ms -= (ms // mult) * mult
    return out


def strip_quotes(value):
    # Grafana drops one leading and one trailing double quote of a matcher value
    value = value[1:] if value.startswith('"') else value
    return value[:-1] if value.endswith('"') else value


def parse_matcher(item, where):
    if isinstance(item, str):
        match = MATCHER_RE.match(item)
        if not match:
            raise TreeError(f"{where}: {item!r} is not a matcher; write it as label=value, label!=value, label=~regex "
                            "or label!~regex (or as a list [label, operator, value])")
        name, op, value = match.groups()
    elif isinstance(item, (list, tuple)) and len(item) == 3 and all(isinstance(v, str) for v in item):
        name, op, value = item
    else:
        raise TreeError(f"{where}: {item!r} is not a matcher; give a list [label, operator, value] of strings or a "
                        "string such as severity=critical")
    if op not in MATCH_TYPES:
        raise TreeError(f"{where}: unknown operator {op!r} in {item!r}; use one of =, !=, =~, !~")
    if not name:
        raise TreeError(f"{where}: a matcher needs a label name")
    return [name, op, strip_quotes(value)]


def sort_matchers(matchers):
    # labels.Matchers order: label name, then value, then operator
    return sorted(matchers, key=lambda m: (m[0], m[2], MATCH_TYPES.index(m[1]) if m[1] in MATCH_TYPES else 9))


def check_group_by(labels, where):
    named = [label for label in labels if label != "..."]
    if "..." in labels and named:
        raise TreeError(f"{where}.group_by: '...' (group by all labels) cannot be combined with other labels")
    duplicates = sorted({label for label in named if named.count(label) > 1})
    if duplicates:
        raise TreeError(f"{where}.group_by: {', '.join(duplicates)} given more than once")


def build_route(spec, where, root=False):
    """The route as Grafana stores and returns it, from the module's description (raises TreeError)."""
    if not isinstance(spec, dict):
        raise TreeError(f"{where} must be a dictionary, got {spec!r}")
    unknown = sorted(set(spec) - set(ROUTE_KEYS))
    if unknown:
        raise TreeError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; a policy takes "
                        f"{', '.join(ROUTE_KEYS)}")
    out = {}
    receiver = spec.get("receiver")
    if receiver is not None and not isinstance(receiver, str):
        raise TreeError(f"{where}.receiver must be a contact point name (a string)")
    if receiver:
        out["receiver"] = receiver
    for key in LIST_KEYS:
        values = spec.get(key)
        if values is None:
            continue
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            raise TreeError(f"{where}.{key} must be a list of non-empty strings")
        if values:
            out[key] = list(values)
    check_group_by(out.get("group_by", []), where)
    matchers = spec.get("object_matchers")
    if matchers is not None:
        if not isinstance(matchers, list):
            raise TreeError(f"{where}.object_matchers must be a list of matchers")
        parsed = [parse_matcher(item, f"{where}.object_matchers[{index}]") for index, item in enumerate(matchers)]
        if parsed:
            out["object_matchers"] = sort_matchers(parsed)
    if spec.get("continue") is not None:
        try:
            if boolean(spec["continue"], strict=True):
                out["continue"] = True
        except TypeError:
            raise TreeError(f"{where}.continue must be a boolean, got {spec['continue']!r}") from None
    for key in DURATION_KEYS:
        value = spec.get(key)
        if value is None:
            continue
        try:
            ms = parse_duration(str(value))
        except ValueError:
            raise TreeError(f"{where}.{key}: {value!r} is not a duration; use units y, w, d, h, m, s, ms in that "
                            "order, for example 30s, 5m, 1h30m, 4h") from None
        if ms == 0 and key != "group_wait":
            raise TreeError(f"{where}.{key} cannot be zero")
        out[key] = format_duration(ms)
    children = spec.get("routes")
    if children is not None:
        if not isinstance(children, list):
            raise TreeError(f"{where}.routes must be a list of policies")
        built = [build_route(child, f"{where}.routes[{index}]") for index, child in enumerate(children)]
        if built:
            out["routes"] = built
    if root:
        if not out.get("receiver"):
            raise TreeError("receiver (the root policy's contact point) is required")
        for key in ("object_matchers", "mute_time_intervals", "active_time_intervals"):
            if key in out:
                raise TreeError(f"the root policy cannot have {key}")
    return out


def normalise(route):
    """A route as Grafana returned it, reduced to what build_route produces (provenance and unknown keys out)."""
    out = {}
    if not isinstance(route, dict):
        return out
    if route.get("receiver"):
        out["receiver"] = route["receiver"]
    for key in LIST_KEYS:
        if route.get(key):
            out[key] = list(route[key])
    if route.get("object_matchers"):
        out["object_matchers"] = sort_matchers([list(m) for m in route["object_matchers"]])
    for key in LEGACY_MATCHER_KEYS:
        if route.get(key):
            out[key] = copy.deepcopy(route[key])
    if route.get("continue"):
        out["continue"] = True
    for key in DURATION_KEYS:
        if route.get(key) is not None:
            try:
                out[key] = format_duration(parse_duration(str(route[key])))
            except ValueError:
                out[key] = route[key]
    if route.get("routes"):
        out["routes"] = [normalise(child) for child in route["routes"] if child is not None]
    return out


def receivers_of(route):
    names = {route["receiver"]} if route.get("receiver") else set()
    for child in route.get("routes") or []:
        names |= receivers_of(child)
    return names


def with_provenance(tree, provenance):
    out = dict(tree)
    out["provenance"] = provenance
    return out


def view(tree):
    """The comparable, displayable form of a tree as Grafana returns it (with its provenance)."""
    return with_provenance(normalise(tree), tree.get("provenance") or "")


def finish(module, client, current_raw, before, after, predicted, write):
    """The result for a change from *before* to *after*: with a change and not in check mode, ``write()`` it
    and report the tree Grafana then has; *predicted* is what check mode reports as the new tree."""
    result = diff_result(before != after, before, after, policy=current_raw)
    if result["changed"] and module.check_mode:
        result["policy"] = predicted
    elif result["changed"]:
        write()
        saved = client.policy_tree() or {}
        result["policy"] = saved
        result["diff"]["after"] = view(saved)
    return result


def ensure_present(module, client):
    params = module.params
    spec = {key: params[key] for key in ("receiver", "group_by", "group_wait", "group_interval", "repeat_interval",
                                         "routes")}
    try:
        want = build_route(spec, "the tree", root=True)
    except TreeError as exc:
        module.fail_json(msg=str(exc))
    current_raw = client.policy_tree() or {}
    have_prov = current_raw.get("provenance") or ""
    want_prov = "" if params["disable_provenance"] else "api"
    before, after = view(current_raw), with_provenance(want, want_prov)
    diff = {"before": before, "after": after}
    if have_prov and not want_prov:
        module.fail_json(msg=(f"the notification policy tree has the provenance {have_prov!r} and Grafana does not let "
                              "the API make it editable in the UI again (X-Disable-Provenance): reset it first "
                              "(state=absent), or set disable_provenance=false"), diff=diff)
    known = {cp.get("name") for cp in client.contact_points()}
    missing = sorted(receivers_of(want) - known)
    if missing:
        module.fail_json(msg=(f"the tree routes to contact point(s) that do not exist: {', '.join(missing)}; create them "
                              "first (o11y.stack.grafana_contact_point) or fix the receiver names"), diff=diff)
    return finish(module, client, current_raw, before, after,
                  predicted=dict(want, provenance=want_prov) if want_prov else want,
                  write=lambda: client.set_policy_tree(want, disable_provenance=params["disable_provenance"]))


def ensure_absent(module, client):
    current_raw = client.policy_tree() or {}
    return finish(module, client, current_raw, view(current_raw), with_provenance(normalise(DEFAULT_TREE), ""),
                  predicted=copy.deepcopy(DEFAULT_TREE), write=client.reset_policy_tree)


def main():
    module = grafana_module(dict(
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
        receiver={"type": "str"},
        group_by={"type": "list", "elements": "str"},
        group_wait={"type": "str"},
        group_interval={"type": "str"},
        repeat_interval={"type": "str"},
        routes={"type": "list", "elements": "dict", "default": []},
        disable_provenance={"type": "bool", "default": False},
    ), required_if=[("state", "present", ("receiver",))])
    run_grafana_module(module, ensure_present, ensure_absent)


if __name__ == "__main__":
    main()
