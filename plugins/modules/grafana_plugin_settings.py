# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: grafana_plugin_settings
short_description: Enable a Grafana app plugin and set its jsonData and secureJsonData
version_added: 0.1.0
description:
  - Enable or disable an installed Grafana app plugin in an organisation and set its settings (C(jsonData)) and
    secure settings (C(secureJsonData)), for example the OnCall app's API URL and token, through Grafana's HTTP API.
  - The plugin must be installed (in Grafana's plugins directory); this module does not install plugins.
  - Idempotent, C(enabled), C(pinned), C(jsonData) and the set of secure fields are compared with what Grafana
    returns. Options left unset (V(null)) keep the current value.
author:
  - o11y.stack maintainers (@o11y-stack)
extends_documentation_fragment:
  - o11y.stack.grafana
options:
  plugin_id:
    description:
      - Id of the plugin, for example V(grafana-oncall-app) or V(grafana-lokiexplore-app).
    type: str
    required: true
  enabled:
    description:
      - Enable (V(true)) or disable (V(false)) the app plugin in the organisation.
    type: bool
    default: true
  pinned:
    description:
      - Pin the app in Grafana's navigation. V(null) keeps the current value (V(false) for a plugin never configured).
    type: bool
  json_data:
    description:
      - The complete C(jsonData) of the plugin; keys not listed are removed. V(null) keeps the current jsonData.
    type: dict
  secure_json_data:
    description:
      - Secure settings, stored encrypted by Grafana and never returned; only which keys are set is visible.
      - Sent according to O(secure_update). Keys set in Grafana but not listed are kept.
    type: dict
  secure_update:
    description:
      - V(on_create) sends a secure value only when Grafana does not have that key yet; a changed value of an existing
        key is not noticed (use V(always) once to rotate it).
      - V(always) sends every secure value on every run, so the task always reports a change.
    type: str
    choices: [on_create, always]
    default: on_create
attributes:
  check_mode:
    support: full
    description: Reports the change and the diff without changing Grafana.
  diff_mode:
    support: full
    description: Returns the settings before and after; secure values never appear, only the names of secure fields.
  platform:
    platforms: posix
    support: full
    description: Runs wherever Grafana's HTTP API is reachable.
seealso:
  - name: Grafana plugin settings API
    description: The C(/api/plugins/:pluginId/settings) endpoints this module uses.
    link: https://grafana.com/docs/grafana/latest/developer-resources/api-reference/http-api/
"""

EXAMPLES = r"""
- name: Enable the OnCall app and point it at the OnCall engine
  o11y.stack.grafana_plugin_settings:
    grafana_url: "http://{{ groups['grafana'][0] }}:3000"
    grafana_token: "{{ grafana_service_account_token }}"
    plugin_id: grafana-oncall-app
    json_data:
      stackId: 5
      orgId: 100
      onCallApiUrl: "http://{{ groups['oncall'][0] }}:8080"
      grafanaUrl: "http://{{ groups['grafana'][0] }}:3000"
    secure_json_data:
      onCallApiToken: "{{ oncall_api_token }}"

- name: Disable an app in organisation 2
  o11y.stack.grafana_plugin_settings:
    grafana_url: "http://{{ groups['grafana'][0] }}:3000"
    grafana_user: admin
    grafana_password: "{{ grafana_admin_password }}"
    org_id: 2
    plugin_id: grafana-oncall-app
    enabled: false
"""

RETURN = r"""
changed:
  description: Whether the settings were (or in check mode would be) changed.
  returned: always
  type: bool
plugin:
  description:
    - The plugin's settings after the module ran (in check mode, as they would be).
  returned: always
  type: dict
  sample:
    id: grafana-oncall-app
    type: app
    name: OnCall
    version: 1.9.0
    enabled: true
    pinned: false
    jsonData: {"onCallApiUrl": "http://oncall:8080"}
    secureJsonFields: {"onCallApiToken": true}
secure_fields_sent:
  description: Names of the secure fields whose values were (or in check mode would be) sent.
  returned: always
  type: list
  elements: str
  sample: [onCallApiToken]
diff:
  description: C(enabled), C(pinned), C(jsonData) and C(secureJsonFields) before and after.
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
from ansible_collections.o11y.stack.plugins.module_utils.grafana import (
    GrafanaError,
    grafana_module,
    quote_path,
    run_grafana_module,
    secure_fields_to_send,
)


def view(settings):
    return {
        "enabled": bool(settings.get("enabled")),
        "pinned": bool(settings.get("pinned")),
        "jsonData": copy.deepcopy(settings.get("jsonData")),
        "secureJsonFields": {k: True for k, v in (settings.get("secureJsonFields") or {}).items() if v},
    }


def summary(settings, state):
    out = {"id": settings.get("id"), "type": settings.get("type"), "name": settings.get("name"),
           "version": (settings.get("info") or {}).get("version")}
    out.update(state)
    return out


def ensure_present(module, client):
    params = module.params
    path = "/api/plugins/" + quote_path(params["plugin_id"]) + "/settings"
    try:
        current = client.get(path)
    except GrafanaError as err:
        # Grafana's own 404 ("Plugin not found, ...") means not installed; other 404s mean a wrong URL
        if err.status == 404 and "plugin" in (err.api_message or "").lower():
            module.fail_json(msg=f"plugin {params['plugin_id']!r} is not installed in Grafana: "
                                 f"{err.api_message}; install it into Grafana's plugins directory (and restart "
                                 "Grafana) first")
        raise
    before = view(current)
    after = copy.deepcopy(before)
    after["enabled"] = params["enabled"]
    if params["pinned"] is not None:
        after["pinned"] = params["pinned"]
    if params["json_data"] is not None:
        after["jsonData"] = copy.deepcopy(params["json_data"])
    secure = {k: str(v) for k, v in (params["secure_json_data"] or {}).items()}
    send = {k: secure[k] for k in sorted(secure_fields_to_send(secure, before["secureJsonFields"],
                                                               params["secure_update"]))}
    after["secureJsonFields"] = {k: True for k in sorted(set(before["secureJsonFields"]) | set(secure))}
    changed = after != before or bool(send)
    result = diff_result(changed, before, after, secure_fields_sent=sorted(send), plugin=summary(current, after))
    if changed and not module.check_mode:
        body = {"enabled": after["enabled"], "pinned": after["pinned"]}
        if after["jsonData"] is not None:
            body["jsonData"] = after["jsonData"]
        if send:
            body["secureJsonData"] = send
        client.post(path, body)
        saved = client.get(path)
        result["plugin"] = summary(saved, view(saved))
        result["diff"]["after"] = view(saved)
    return result


def main():
    module = grafana_module(dict(
        plugin_id={"type": "str", "required": True},
        enabled={"type": "bool", "default": True},
        pinned={"type": "bool"},
        json_data={"type": "dict"},
        secure_json_data={"type": "dict", "no_log": True},
        secure_update={"type": "str", "default": "on_create", "choices": ["on_create", "always"]},
    ))
    for key, value in (module.params["secure_json_data"] or {}).items():
        if value is None:
            module.fail_json(msg=f"secure_json_data[{key!r}] has no value")
    run_grafana_module(module, ensure_present)


if __name__ == "__main__":
    main()
