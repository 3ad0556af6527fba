# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mimir_rule_group
short_description: Manage a Prometheus rule group in the Grafana Mimir ruler
version_added: 0.1.0
description:
  - Create, update or delete one rule group (alerting and recording rules) of a Mimir tenant through the ruler
    configuration API (C(GET) and C(DELETE <prefix>/config/v1/rules/{namespace}/{group}), C(POST
    <prefix>/config/v1/rules/{namespace})). Mimir stores it in its ruler storage (object
    C(rules/<tenant>/<namespace>/<group>), names base64url-encoded) and its ruler evaluates it.
  - A namespace stands for a rule file in Prometheus; group names are unique within a namespace.
  - Idempotent, the module compares the group as Mimir returns it with the one given, after normalising both the way
    Mimir prints them (durations such as V(60s) become V(1m), unset and zero durations and empty label sets are left
    out, label values are strings), and writes only when they differ.
  - Checks every rule before any request (exactly one of C(record) and C(alert), an C(expr), valid names and
    durations, no C(for) or C(annotations) on recording rules); Mimir checks the PromQL of C(expr) itself.
author:
  - o11y.stack maintainers (@o11y-stack)
extends_documentation_fragment:
  - o11y.stack.mimir
options:
  namespace:
    description:
      - Namespace of the group, for example V(o11y-stack). Any text; the module percent-encodes it in the URL (a C(/)
        becomes C(%2F), which a proxy in front of Mimir must pass on unchanged).
    type: str
    required: true
  name:
    description:
      - Name of the rule group, unique within the namespace.
    type: str
    required: true
    aliases: [group]
  state:
    description:
      - V(present) creates the group or replaces it when it differs; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  interval:
    description:
      - How often the group is evaluated, a Prometheus duration such as V(1m).
      - Unset (or V(0s)) uses the ruler's C(evaluation_interval) (1m by default).
    type: str
  source_tenants:
    description:
      - Tenants whose data the group's queries read (a federated rule group). Needs
        C(ruler.tenant_federation.enabled) in Mimir, which refuses the group otherwise.
      - Unset or empty evaluates the group on the tenant's own data.
    type: list
    elements: str
  rules:
    description:
      - The rules of the group, in evaluation order. Required with O(state=present), at least one.
      - The complete list; rules Mimir has that are not listed are removed.
    type: list
    elements: dict
    suboptions:
      alert:
        description:
          - Name of the alert of an alerting rule. Exactly one of O(rules[].alert) and O(rules[].record).
        type: str
      record:
        description:
          - Name of the series a recording rule writes (a metric name such as V(job:up:sum)).
        type: str
      expr:
        description:
          - The PromQL expression.
        type: str
        required: true
      for:
        description:
          - Alerting rules only. How long the expression must return results before the alert fires (pending
            before), such as V(5m).
        type: str
      keep_firing_for:
        description:
          - Alerting rules only. How long the alert keeps firing after the expression stopped returning results.
        type: str
      labels:
        description:
          - Labels added to the alert or to the recorded series. Values are strings (other scalars are converted).
        type: dict
      annotations:
        description:
          - Alerting rules only. Annotations of the alert, such as C(summary), C(description), C(runbook_url).
        type: dict
  prometheus_http_prefix:
    description:
      - The Prometheus HTTP prefix the ruler API is served under (Mimir's C(api.prometheus_http_prefix)).
    type: str
    default: /prometheus
attributes:
  check_mode:
    support: full
    description: Reports the change and the diff without writing.
  diff_mode:
    support: full
    description: Returns the group before and after, normalised.
  platform:
    platforms: posix
    support: full
    description: Runs wherever Mimir's HTTP API is reachable.
notes:
  - Mimir limits the rules per group (C(limits.ruler_max_rules_per_rule_group), 20 by default) and the groups per tenant
    (C(limits.ruler_max_rule_groups_per_tenant), 70 by default) and answers 400 beyond them.
  - Mimir's rule format has no group C(limit) and no group C(labels); settings another tool gave the group
    (C(query_offset), C(align_evaluation_time_on_interval)) show in the diff and are removed on update.
  - Alert templates in C(labels) and C(annotations) (C({{ $labels.instance }})) must reach the module unrendered by
    Ansible; mark them C(!unsafe).
  - Label and annotation names follow the classic Prometheus rules (letters, digits and C(_), not starting with a
    digit), Mimir's default name validation.
  - Tested against Grafana Mimir 3.1.1.
seealso:
  - name: Mimir HTTP API, ruler
    description: The endpoints this module uses.
    link: https://grafana.com/docs/mimir/latest/references/http-api/#ruler
  - name: Prometheus alerting rules
    description: The rule format.
    link: https://prometheus.io/docs/prometheus/latest/configuration/alerting_rules/
  - module: o11y.stack.mimir_alertmanager_config
"""

EXAMPLES = r"""
- name: Stack self-monitoring alerts
  o11y.stack.mimir_rule_group:
    mimir_url: "http://{{ groups['mimir'][0] }}:9009"
    namespace: o11y-stack
    name: components
    interval: 1m
    rules:
      - alert: ComponentDown
        expr: up{job=~"mimir|loki|tempo|pyroscope|grafana|alloy"} == 0
        for: 5m
        labels:
          severity: critical
        annotations:
          summary: !unsafe "{{ $labels.job }} on {{ $labels.instance }} is down"
      - alert: ObjectStorageUnreachable
        expr: sum by (job) (rate(thanos_objstore_bucket_operation_failures_total[5m])) > 0
        for: 10m
        labels:
          severity: critical

- name: A recording rule in a tenant's namespace
  o11y.stack.mimir_rule_group:
    mimir_url: https://mimir.example.com
    tenant: team-a
    mimir_token: "{{ mimir_gateway_token }}"
    namespace: team-a/recording
    name: http
    rules:
      - record: job:http_requests:rate5m
        expr: sum by (job) (rate(http_requests_total[5m]))

- name: Remove a group
  o11y.stack.mimir_rule_group:
    mimir_url: "http://{{ groups['mimir'][0] }}:9009"
    namespace: o11y-stack
    name: legacy
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the group was (or in check mode would be) created, changed or deleted.
  returned: always
  type: bool
group:
  description:
    - The rule group after the module ran (in check mode, as it would be), normalised the way Mimir prints it
      (C(name), C(interval), C(source_tenants), C(rules)). Empty when O(state=absent).
  returned: always
  type: dict
  sample:
    name: components
    interval: 1m
    rules:
      - alert: ComponentDown
        expr: up == 0
        for: 5m
        labels: {severity: critical}
diff:
  description: The group before and after, normalised; an empty dictionary stands for a group that does not exist.
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

import re

from ansible_collections.o11y.stack.plugins.module_utils.http_api import diff_result
from ansible_collections.o11y.stack.plugins.module_utils.mimir import (
    DEFAULT_PROMETHEUS_PREFIX,
    MimirError,
    canonical_duration,
    mimir_module,
    run_mimir_module,
)

METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
RULE_KEYS = ("record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations")
DURATION_KEYS = ("for", "keep_firing_for")


def label_text(value):
    """A label value as Go's YAML decoder reads a scalar into a string (true, not True)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def normalise_rule(rule):
    """A rule as Mimir prints it: known keys in Mimir's order, zero durations and empty maps left out."""
    out = {}
    for key in RULE_KEYS:
        value = rule.get(key)
        if key in DURATION_KEYS:
            value = canonical_duration(value)
        elif key in ("labels", "annotations"):
            value = {str(k): label_text(v) for k, v in (value or {}).items()} or None
        elif value == "":
            value = None
        if value is not None:
            out[key] = value
    for key, value in rule.items():  # keys another tool set that this module does not know
        if key not in RULE_KEYS and value not in (None, "", {}, [], 0, False):
            out[key] = value
    return out


def normalise_group(group):
    """A rule group as Mimir prints it (see normalise_rule); unknown group keys are kept so they show in a diff."""
    if not group:
        return {}
    out = {"name": group.get("name")}
    interval = canonical_duration(group.get("interval"))
    if interval:
        out["interval"] = interval
    if group.get("source_tenants"):
        out["source_tenants"] = [str(t) for t in group["source_tenants"]]
    out["rules"] = [normalise_rule(rule) for rule in group.get("rules") or []]
    for key, value in group.items():
        if key not in ("name", "interval", "source_tenants", "rules") and value not in (None, "", {}, [], 0, False):
            out[key] = value
    return out


def rule_problems(index, rule):
    """What is wrong with one rule, as sentences (empty when it is fine)."""
    where = f"rules[{index}]"
    problems = []
    record, alert = rule.get("record"), rule.get("alert")
    if record and alert:
        problems.append(f"{where} sets both record and alert; a rule is either a recording rule or an alerting rule")
    elif not record and not alert:
        problems.append(f"{where} needs record (a recording rule) or alert (an alerting rule)")
    if not (rule.get("expr") or "").strip():
        problems.append(f"{where} needs an expr (the PromQL expression)")
    if record and not METRIC_NAME_RE.match(record):
        problems.append(f"{where}: record {record!r} is not a valid metric name (letters, digits, '_' and ':', not "
                        "starting with a digit)")
    set_keys = {"annotations"} if rule.get("annotations") else set()
    for key in DURATION_KEYS:
        if rule.get(key):
            try:
                if canonical_duration(rule[key]):
                    set_keys.add(key)
            except ValueError as exc:
                problems.append(f"{where}.{key}: {exc}; use a Prometheus duration such as 5m or 1h30m")
    if record:
        for key in ("for", "keep_firing_for", "annotations"):
            if key in set_keys:
                problems.append(f"{where}: {key} is only valid in alerting rules, not in the recording rule {record!r}")
    for key in ("labels", "annotations"):
        for name, value in (rule.get(key) or {}).items():
            if not LABEL_NAME_RE.match(str(name)):
                problems.append(f"{where}.{key}: {name!r} is not a valid name (letters, digits and '_', not starting "
                                "with a digit)")
            if key == "labels" and name == "__name__":
                problems.append(f"{where}.labels: __name__ cannot be set")
            if isinstance(value, (dict, list)):
                problems.append(f"{where}.{key}.{name} must be a string, not a {type(value).__name__}")
    return problems


def validate(module):
    params = module.params
    problems = []
    if not (params["namespace"] or "").strip():
        problems.append("namespace must not be empty")
    if not (params["name"] or "").strip():
        problems.append("name (the rule group's name) must not be empty")
    if params["state"] == "present":
        if not params["rules"]:
            problems.append("rules is required with state=present: a rule group needs at least one rule (use "
                            "state=absent to delete the group)")
        for index, rule in enumerate(params["rules"] or []):
            problems.extend(rule_problems(index, rule))
        if params["interval"]:
            try:
                canonical_duration(params["interval"])
            except ValueError as exc:
                problems.append(f"interval: {exc}; use a Prometheus duration such as 1m")
        if any(not (t or "").strip() for t in params["source_tenants"] or []):
            problems.append("source_tenants must not contain empty tenant IDs")
    if not (params["prometheus_http_prefix"] or "").startswith("/"):
        problems.append("prometheus_http_prefix must start with '/', for example /prometheus")
    if problems:
        module.fail_json(msg="; ".join(problems))


def desired_group(params):
    """The group to POST, in the order Mimir prints it."""
    group = {"name": params["name"]}
    if canonical_duration(params["interval"]):
        group["interval"] = params["interval"]
    if params["source_tenants"]:
        group["source_tenants"] = list(params["source_tenants"])
    rules = []
    for rule in params["rules"]:
        out = {}
        for key in RULE_KEYS:
            value = rule.get(key)
            if key in ("labels", "annotations"):
                value = {str(k): label_text(v) for k, v in (value or {}).items()} or None
            if value not in (None, ""):
                out[key] = value
        rules.append(out)
    group["rules"] = rules
    return group


def ensure_present(module, client):
    params = module.params
    prefix = params["prometheus_http_prefix"]
    current = client.rule_group(params["namespace"], params["name"], prefix=prefix)
    body = desired_group(params)
    before = normalise_group(current)
    after = normalise_group(body)
    changed = before != after
    result = diff_result(changed, before, after, group=after)
    if not changed or module.check_mode:
        return result
    client.set_rule_group(params["namespace"], body, prefix=prefix)
    saved = client.rule_group(params["namespace"], params["name"], prefix=prefix)
    if saved is None:
        raise MimirError(f"Mimir accepted rule group {params['name']!r} in namespace {params['namespace']!r} but does "
                         "not return it; check the ruler storage (the ruler bucket) and the Mimir log")
    result["group"] = normalise_group(saved)
    result["diff"]["after"] = result["group"]
    return result


def ensure_absent(module, client):
    params = module.params
    prefix = params["prometheus_http_prefix"]
    current = client.rule_group(params["namespace"], params["name"], prefix=prefix)
    result = diff_result(current is not None, normalise_group(current), {}, group={})
    if current is None or module.check_mode:
        return result
    client.delete_rule_group(params["namespace"], params["name"], prefix=prefix)
    return result


def main():
    module = mimir_module(dict(
        namespace={"type": "str", "required": True},
        name={"type": "str", "required": True, "aliases": ["group"]},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
        interval={"type": "str"},
        source_tenants={"type": "list", "elements": "str"},
        rules={"type": "list", "elements": "dict", "options": dict(
            alert={"type": "str"},
            record={"type": "str"},
            expr={"type": "str", "required": True},
            keep_firing_for={"type": "str"},
            labels={"type": "dict"},
            annotations={"type": "dict"},
            **{"for": {"type": "str"}},
        )},
        prometheus_http_prefix={"type": "str", "default": DEFAULT_PROMETHEUS_PREFIX},
    ))
    validate(module)
    run_mimir_module(module, ensure_present, ensure_absent)


if __name__ == "__main__":
    main()
