# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mimir_alertmanager_config
short_description: Manage a tenant's Alertmanager configuration in Grafana Mimir
version_added: 0.1.0
description:
  - Upload or delete the Alertmanager configuration of one Mimir tenant through Mimir's Alertmanager configuration API
    (C(GET), C(POST) and C(DELETE /api/v1/alerts)). Mimir keeps it in its alertmanager storage (object C(alerts/<tenant>)
    of the alertmanager bucket) and runs the tenant's Alertmanager with it.
  - The configuration is the usual Alertmanager configuration (C(route), C(receivers), C(inhibit_rules),
    C(time_intervals), C(templates), C(global)) given as a dictionary, plus the template files it uses.
  - Idempotent, the module compares the configuration Mimir has (parsed from its YAML) and the template files with the
    ones given, and uploads only when they differ.
  - Receiver URLs and secrets (a Grafana OnCall integration URL carries a token) are replaced by C([REDACTED]) in the
    diff and in the returned configuration unless O(show_secrets=true), and never appear in failure messages.
author:
  - o11y.stack maintainers (@o11y-stack)
extends_documentation_fragment:
  - o11y.stack.mimir
options:
  state:
    description:
      - V(present) uploads the configuration when it differs from the one Mimir has.
      - V(absent) deletes the tenant's configuration; Mimir then runs the tenant's Alertmanager with its fallback
        configuration (C(alertmanager.fallback_config_file)), if one is set.
    type: str
    choices: [present, absent]
    default: present
  config:
    description:
      - The complete Alertmanager configuration, required with O(state=present).
      - It needs a C(route) with a default C(receiver), and C(receivers) naming every receiver the routes use.
      - Mimir refuses settings that read local files (C(*_file), C(password_file), TLS C(ca_file)/C(cert_file)/
        C(key_file)) and C(proxy_url).
      - Alertmanager templates inside string values (C({{ .CommonLabels.alertname }})) must reach the module unrendered
        by Ansible; mark such values C(!unsafe) or keep them in O(templates).
    type: dict
  templates:
    description:
      - Template files by name, the text of each file as the value; the configuration's C(templates) list refers to
        them by these names.
      - The complete set; template files Mimir has that are not listed are removed.
      - Names must be plain file names without a directory.
    type: dict
    default: {}
  show_secrets:
    description:
      - Show receiver URLs and other secret values (keys ending in C(url), C(password), C(secret), C(token), C(key) or
        C(credentials)) in the diff and in the returned O(config).
      - With V(false), a secret that changes shows as C([REDACTED, changed]) in the diff's C(after).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reports the change and the diff without uploading.
  diff_mode:
    support: full
    description: Returns the configuration and the template files before and after, with secrets redacted unless
      O(show_secrets=true).
  platform:
    platforms: posix
    support: full
    description: Runs wherever Mimir's HTTP API is reachable.
notes:
  - The task's arguments contain the webhook URLs; set C(no_log) to V(true) on the task so that Ansible does not print them
    with C(-v) or in its logs (the module's own output already redacts them, but C(no_log) also hides its diff).
  - A tenant that received alerts without having a configuration of its own gets an empty one from Mimir (to start its
    Alertmanager with the fallback configuration); the module treats an empty configuration like no configuration.
  - Tested against Grafana Mimir 3.1.1.
seealso:
  - name: Mimir HTTP API, Alertmanager configuration
    description: The endpoints this module uses.
    link: https://grafana.com/docs/mimir/latest/references/http-api/#alertmanager
  - name: Alertmanager configuration
    description: The format of O(config).
    link: https://prometheus.io/docs/alerting/latest/configuration/
  - module: o11y.stack.mimir_rule_group
"""

EXAMPLES = r"""
- name: Send the stack's alerts to the Grafana OnCall integration
  o11y.stack.mimir_alertmanager_config:
    mimir_url: "http://{{ groups['mimir'][0] }}:9009"
    config:
      route:
        receiver: oncall
        group_by: [alertname, job]
        group_wait: 30s
        group_interval: 5m
        repeat_interval: 4h
      receivers:
        - name: oncall
          webhook_configs:
            - url: "{{ oncall_alertmanager_integration_url }}"
              send_resolved: true
  no_log: true  # the integration URL is a credential

- name: A tenant with its own template and a route for critical alerts (check the diff, URLs stay redacted)
  o11y.stack.mimir_alertmanager_config:
    mimir_url: https://mimir.example.com
    tenant: team-a
    mimir_user: team-a
    mimir_password: "{{ mimir_gateway_password }}"
    config:
      templates: [team-a.tmpl]
      route:
        receiver: team-mail
        routes:
          - receiver: pager
            matchers: ['severity="critical"']
      receivers:
        - name: team-mail
          email_configs:
            - to: team-a@example.com
              smarthost: smtp.example.com:587
              from: alertmanager@example.com
              text: !unsafe '{{ template "team-a.text" . }}'
        - name: pager
          webhook_configs:
            - url: "{{ pager_webhook_url }}"
    templates:
      team-a.tmpl: !unsafe '{{ define "team-a.text" }}{{ .CommonAnnotations.summary }}{{ end }}'

- name: Remove the tenant's configuration (the fallback configuration applies again)
  o11y.stack.mimir_alertmanager_config:
    mimir_url: "http://{{ groups['mimir'][0] }}:9009"
    tenant: team-a
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the configuration was (or in check mode would be) uploaded or deleted.
  returned: always
  type: bool
config:
  description:
    - The tenant's Alertmanager configuration after the module ran (in check mode, as it would be), secrets redacted
      unless O(show_secrets=true). Empty when there is none.
  returned: always
  type: dict
  sample:
    route: {receiver: oncall, group_by: [alertname]}
    receivers: [{name: oncall, webhook_configs: [{url: "[REDACTED]", send_resolved: true}]}]
templates:
  description: The template files after the module ran, by name.
  returned: always
  type: dict
diff:
  description:
    - The configuration (C(alertmanager_config)) and the template files (C(template_files)) before and after; an empty
      dictionary stands for no configuration. Secrets redacted unless O(show_secrets=true).
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

from ansible_collections.o11y.stack.plugins.module_utils.http_api import diff_result
from ansible_collections.o11y.stack.plugins.module_utils.mimir import (
    MimirError,
    from_yaml,
    mimir_module,
    normalise_yaml_data,
    redact,
    run_mimir_module,
    secret_values,
    to_yaml,
)


def current_state(client):
    """(parsed configuration or None, template files) as Mimir has them; (None, {}) when there is none."""
    stored = client.alertmanager_config()
    if stored is None or not stored["alertmanager_config"].strip():
        return None, {}
    try:
        parsed = from_yaml(stored["alertmanager_config"])
    except ValueError:
        parsed = {"unparsable configuration": True}  # differs from any wanted configuration
    return parsed, stored["template_files"]


def view(config, templates):
    if config is None:
        return {}
    return {"alertmanager_config": config, "template_files": templates}


def shown(module, before, after):
    """(before, after) for the diff and the result, redacted unless show_secrets."""
    if module.params["show_secrets"]:
        return before, after
    return redact(before), redact(after, compare_to=before)


def validate(module):
    params = module.params
    if params["state"] != "present":
        return
    config = params["config"]
    if not config:
        module.fail_json(msg="config is required with state=present: give the Alertmanager configuration (route, "
                             "receivers, ...); use state=absent to delete it")
    route = config.get("route")
    if not isinstance(route, dict) or not route.get("receiver"):
        module.fail_json(msg="config.route.receiver is required: the root route must name the default receiver")
    receivers = config.get("receivers")
    if not isinstance(receivers, list) or not all(isinstance(r, dict) and r.get("name") for r in receivers):
        module.fail_json(msg="config.receivers must be a list of receivers, each with a name")
    for name, text in params["templates"].items():
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            module.fail_json(msg=f"template name {name!r} must be a plain file name without a directory")
        if not isinstance(text, str):
            module.fail_json(msg=f"templates[{name!r}] must be the template text (a string)")


def ensure_present(module, client):
    params = module.params
    want_config = normalise_yaml_data(params["config"])
    want_templates = {str(k): v for k, v in params["templates"].items()}
    have_config, have_templates = current_state(client)
    before = view(have_config, have_templates)
    after = view(want_config, want_templates)
    changed = before != after
    shown_before, shown_after = shown(module, before, after)
    result = diff_result(changed, shown_before, shown_after, config=shown_after["alertmanager_config"],
                         templates=want_templates)
    if not changed or module.check_mode:
        return result
    client.set_alertmanager_config(to_yaml(params["config"]), want_templates)
    saved_config, saved_templates = current_state(client)
    if saved_config != want_config or saved_templates != want_templates:
        raise MimirError("Mimir accepted the Alertmanager configuration but returns a different one; another task or "
                         "tool may be writing the same tenant's configuration")
    return result


def ensure_absent(module, client):
    have_config, have_templates = current_state(client)
    before = view(have_config, have_templates)
    shown_before, _after = shown(module, before, {})
    result = diff_result(have_config is not None, shown_before, {}, config={}, templates={})
    if have_config is None or module.check_mode:
        return result
    client.delete_alertmanager_config()
    return result


def main():
    module = mimir_module(dict(
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
        config={"type": "dict"},
        templates={"type": "dict", "default": {}},
        show_secrets={"type": "bool", "default": False},
    ))
    validate(module)
    # Never print a receiver URL or secret in a failure: Mimir's validation errors may quote them.
    secrets = secret_values(module.params["config"] or {})
    run_mimir_module(module, ensure_present, ensure_absent, secrets=secrets)


if __name__ == "__main__":
    main()
