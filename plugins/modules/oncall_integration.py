# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: oncall_integration
short_description: Manage Grafana OnCall integrations (alert sources) and their default route
version_added: 0.1.0
description:
  - Create, update or delete an integration of the Grafana OnCall engine through its public API (C(/api/v1/integrations/)),
    for example the inbound endpoint that Alertmanager or Grafana Alerting sends alerts to.
  - The integration is found by O(name). Two integrations with that name make the module fail instead of guessing.
  - Returns the integration's inbound URL (RV(link)); it embeds the integration's secret token, so run the task
    with C(no_log) when the output could be seen by others (an Ansible module cannot hide part of its return value).
  - Idempotent; supports check mode and diff mode.
author:
  - o11y.stack maintainers (@o11y-stack)
extends_documentation_fragment:
  - o11y.stack.oncall
options:
  name:
    description:
      - Name of the integration (unique per team in OnCall).
    type: str
    required: true
  type:
    description:
      - Kind of integration. Required to create one.
      - V(alertmanager) for Prometheus Alertmanager or Mimir's Alertmanager (webhook receiver), V(grafana_alerting)
        for Grafana Alerting (the engine checks that it can reach Grafana's Alertmanager configuration with the
        Grafana token the plugin gave it), V(webhook) and V(formatted_webhook) for generic JSON senders.
      - OnCall cannot change the type of an existing integration; the module fails instead, since re-creating it
        would give it a new inbound URL. Delete it first (O(state=absent)) to change the type.
    type: str
    choices: [alertmanager, grafana_alerting, webhook, formatted_webhook, kapacitor, elastalert, zabbix, grafana,
              inbound_email, manual, maintenance]
  description:
    description:
      - Short description (C(description_short), up to 250 characters). V("") clears it; unset leaves it as it is.
    type: str
  escalation_chain:
    description:
      - Name of the escalation chain that the integration's default route escalates alerts to
        (see M(o11y.stack.oncall_escalation_chain)).
      - V("") removes the chain from the default route; unset leaves the route as it is.
    type: str
  templates:
    description:
      - Alert templates (Jinja2), compared key by key. Only the keys given here are managed, others are left alone.
      - Top-level keys V(grouping_key), V(resolve_signal), V(acknowledge_signal), V(source_link) take a template string;
        V(slack), V(web), V(telegram) take a dictionary with V(title), V(message), V(image_url); V(sms), V(phone_call) one
        with V(title); V(mobile_app) and V(email) one with V(title) and V(message).
      - V(null) as a value puts back OnCall's default template.
    type: dict
  state:
    description:
      - V(present) creates or updates the integration, V(absent) deletes it (and the alert groups it received).
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
    description: Reports the change and the diff without changing OnCall.
  diff_mode:
    support: full
    description: Returns the integration's name, type, description, escalation chain and managed templates before and after
      (never the inbound URL).
  platform:
    platforms: posix
    support: full
    description: Runs wherever the OnCall engine's API is reachable.
seealso:
  - name: OnCall integrations HTTP API
    description: The API this module uses.
    link: https://grafana.com/docs/oncall/latest/oncall-api-reference/integrations/
  - module: o11y.stack.oncall_escalation_chain
  - module: o11y.stack.grafana_contact_point
"""

EXAMPLES = r"""
- name: An Alertmanager integration escalating to the default chain
  o11y.stack.oncall_integration:
    oncall_url: "http://{{ groups['oncall'][0] }}:8080"
    oncall_api_token: "{{ oncall_api_token }}"
    name: Mimir Alertmanager
    type: alertmanager
    escalation_chain: default
  register: oncall_alertmanager
  no_log: true  # the returned link embeds the integration's secret token

- name: Point Grafana Alerting at OnCall
  o11y.stack.grafana_contact_point:
    grafana_url: "http://{{ groups['grafana'][0] }}:3000"
    grafana_token: "{{ grafana_service_account_token }}"
    name: OnCall
    type: oncall
    settings:
      url: "{{ oncall_alertmanager.link }}"
  no_log: true

- name: Custom grouping and a Slack title
  o11y.stack.oncall_integration:
    oncall_url: "http://{{ groups['oncall'][0] }}:8080"
    oncall_api_token: "{{ oncall_api_token }}"
    name: Mimir Alertmanager
    templates:
      grouping_key: !unsafe "{{ payload.groupKey }}"
      slack:
        title: !unsafe "{{ payload.commonLabels.alertname }}"
  no_log: true

- name: Remove an integration
  o11y.stack.oncall_integration:
    oncall_url: "http://{{ groups['oncall'][0] }}:8080"
    oncall_api_token: "{{ oncall_api_token }}"
    name: Old webhook
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the integration was (or in check mode would be) created, updated or deleted.
  returned: always
  type: bool
id:
  description: The integration's OnCall id. Empty when absent or not created yet (check mode).
  returned: always
  type: str
  sample: CFRPV98RPR1U8
link:
  description:
    - The inbound URL that alert senders post to (C(<BASE_URL>/integrations/v1/<type>/<token>/)); it contains the
      integration's secret token. Empty for types without one (V(manual), V(inbound_email), V(maintenance)), when
      absent, and for an integration not created yet (check mode).
  returned: always
  type: str
  sample: http://oncall.example.com:8080/integrations/v1/alertmanager/mReAoNwDm0eMwKo1mTeTwYo/
integration:
  description: The integration as the API returns it (in check mode, as far as it can be predicted). Empty when absent.
  returned: always
  type: dict
  sample:
    id: CFRPV98RPR1U8
    name: Mimir Alertmanager
    type: alertmanager
    link: http://oncall.example.com:8080/integrations/v1/alertmanager/mReAoNwDm0eMwKo1mTeTwYo/
    default_route: {id: RVBE4RKQSCGJ2, escalation_chain_id: F5JU6KJET33FE}
diff:
  description: Name, type, description, escalation chain (by name) and the managed templates before and after; an empty
    dictionary stands for a missing integration.
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

from ansible_collections.o11y.stack.plugins.module_utils.http_api import diff_result
from ansible_collections.o11y.stack.plugins.module_utils.oncall import (
    oncall_module,
    quote_path,
    run_oncall_module,
)

TYPES = ["alertmanager", "grafana_alerting", "webhook", "formatted_webhook", "kapacitor", "elastalert", "zabbix",
         "grafana", "inbound_email", "manual", "maintenance"]
BEHAVIOUR_TEMPLATES = ("grouping_key", "resolve_signal", "acknowledge_signal", "source_link")
CHANNEL_TEMPLATES = {"slack": ("title", "message", "image_url"), "web": ("title", "message", "image_url"),
                     "telegram": ("title", "message", "image_url"), "sms": ("title",), "phone_call": ("title",),
                     "mobile_app": ("title", "message"), "email": ("title", "message")}


def templates_problem(templates):
    """Why *templates* is not valid (None when it is)."""
    for key, value in (templates or {}).items():
        if key in BEHAVIOUR_TEMPLATES:
            if value is not None and not isinstance(value, str):
                return f"templates.{key} must be a template string or null"
        elif key in CHANNEL_TEMPLATES:
            if not isinstance(value, dict):
                return f"templates.{key} must be a dictionary with {', '.join(CHANNEL_TEMPLATES[key])}"
            for attr, text in value.items():
                if attr not in CHANNEL_TEMPLATES[key]:
                    return (f"templates.{key}.{attr} is not a template of {key}; use "
                            f"{', '.join(CHANNEL_TEMPLATES[key])}")
                if text is not None and not isinstance(text, str):
                    return f"templates.{key}.{attr} must be a template string or null"
        else:
            known = ", ".join(BEHAVIOUR_TEMPLATES + tuple(CHANNEL_TEMPLATES))
            return f"templates has an unknown key {key!r}; known keys: {known}"
    return None


def managed_templates(current_templates, wanted):
    """The part of the integration's templates that *wanted* manages."""
    out = {}
    for key, value in wanted.items():
        if key in BEHAVIOUR_TEMPLATES:
            out[key] = (current_templates or {}).get(key)
        else:
            have = (current_templates or {}).get(key) or {}
            out[key] = {attr: have.get(attr) for attr in value}
    return out


def view(integration, chain_names, wanted_templates):
    if not integration:
        return {}
    route = integration.get("default_route") or {}
    chain_id = route.get("escalation_chain_id")
    result = {
        "name": integration.get("name"),
        "type": integration.get("type"),
        "description": integration.get("description_short") or "",
        "escalation_chain": chain_names.get(chain_id, chain_id) if chain_id else "",
    }
    if wanted_templates:
        result["templates"] = managed_templates(integration.get("templates"), wanted_templates)
    return result


def ensure_present(module, client):
    params = module.params
    current = client.find_by_name("integrations", params["name"], "integration")
    if current is not None and params["type"] and current.get("type") != params["type"]:
        module.fail_json(msg=f"integration {params['name']!r} is of type {current.get('type')!r}, not "
                             f"{params['type']!r}; OnCall cannot change an integration's type. Delete it first "
                             "(state=absent) to re-create it with the other type; its inbound URL will change",
                         integration=current)
    if current is None and not params["type"]:
        module.fail_json(msg=f"integration {params['name']!r} does not exist; set type to create it")
    chains = client.list_all("escalation_chains") if (params["escalation_chain"] or current) else []
    chain_names = {c["id"]: c["name"] for c in chains}
    chain_id = None
    if params["escalation_chain"]:
        hits = [c for c in chains if c["name"] == params["escalation_chain"]]
        if hits:
            chain_id = hits[0]["id"]
        elif module.check_mode:
            module.warn(f"escalation chain {params['escalation_chain']!r} does not exist (yet); in a real run the "
                        "task fails unless an earlier task creates it")
        else:
            module.fail_json(msg=f"escalation chain {params['escalation_chain']!r} does not exist; create it first "
                                 "(o11y.stack.oncall_escalation_chain) or fix escalation_chain")
    wanted_templates = params["templates"] or {}
    before = view(current, chain_names, wanted_templates)
    after = copy.deepcopy(before) if current else {"name": params["name"], "type": params["type"], "description": "",
                                                   "escalation_chain": ""}
    if params["description"] is not None:
        after["description"] = params["description"]
    if params["escalation_chain"] is not None:
        after["escalation_chain"] = params["escalation_chain"]
    if wanted_templates:
        merged = after.get("templates") or {}
        for key, value in wanted_templates.items():
            if key in BEHAVIOUR_TEMPLATES:
                merged[key] = value
            else:
                merged.setdefault(key, {}).update(value)
        after["templates"] = merged
    changed = after != before
    result = diff_result(changed, before, after)
    if not changed:
        result.update(integration=current, id=current["id"], link=current.get("link") or "")
        return result
    body = {"name": params["name"]}
    if after["description"] != before.get("description"):
        body["description_short"] = after["description"] or None
    if after["escalation_chain"] != before.get("escalation_chain"):
        body["default_route"] = {"escalation_chain_id": chain_id}
    if wanted_templates and after.get("templates") != before.get("templates"):
        body["templates"] = wanted_templates
    if module.check_mode:
        predicted = copy.deepcopy(current) if current else {"id": "", "name": params["name"], "type": params["type"],
                                                            "link": None, "default_route": {}}
        predicted["description_short"] = after["description"] or None
        predicted.setdefault("default_route", {})["escalation_chain_id"] = chain_id if params["escalation_chain"] \
            else (None if params["escalation_chain"] == "" else predicted["default_route"].get("escalation_chain_id"))
        result.update(integration=predicted, id=predicted["id"], link=predicted.get("link") or "")
        return result
    if current is None:
        body["type"] = params["type"]
        integration = client.post("integrations/", body)
    else:
        integration = client.put(f"integrations/{quote_path(current['id'])}/", body,
                                 hints={404: "The integration was deleted while the module ran; run the task again"})
    chain_names.update({chain_id: params["escalation_chain"]} if chain_id else {})
    result["diff"]["after"] = view(integration, chain_names, wanted_templates)
    result.update(integration=integration, id=integration["id"], link=integration.get("link") or "")
    return result


def ensure_absent(module, client):
    current = client.find_by_name("integrations", module.params["name"], "integration")
    chain_names = {c["id"]: c["name"] for c in client.list_all("escalation_chains")} if current else {}
    result = diff_result(current is not None, view(current, chain_names, None), {}, integration={}, id="", link="")
    if current is not None and not module.check_mode:
        client.delete(f"integrations/{quote_path(current['id'])}/")
    return result


def main():
    module = oncall_module(dict(
        name={"type": "str", "required": True},
        type={"type": "str", "choices": TYPES},
        description={"type": "str"},
        escalation_chain={"type": "str"},
        templates={"type": "dict"},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
    ))
    params = module.params
    if not params["name"].strip():
        module.fail_json(msg="name must not be empty")
    if params["description"] is not None and len(params["description"]) > 250:
        module.fail_json(msg="description must have at most 250 characters (OnCall's description_short)")
    problem = templates_problem(params["templates"])
    if problem:
        module.fail_json(msg=problem)
    run_oncall_module(module, ensure_present, ensure_absent)


if __name__ == "__main__":
    main()
