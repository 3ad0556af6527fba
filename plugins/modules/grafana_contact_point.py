# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: grafana_contact_point
short_description: Manage Grafana alerting contact points
version_added: 0.1.0
description:
  - Create, update or delete a contact point of Grafana Alerting through the alerting provisioning HTTP API
    (C(/api/v1/provisioning/contact-points)).
  - In that API a contact point is one integration (one webhook, one e-mail, one Slack channel, ...) with a name;
    integrations that share a name form the receiver that notification policies route to by that name.
  - The contact point is found by O(uid) when given, else by O(name). A contact point found by O(uid) whose name
    differs is renamed; Grafana then renames the receiver in the notification policies that route to it, when no
    other integration keeps the old name.
  - Idempotent, the module compares the name, type, O(disable_resolve_message), the settings, the set of secure
    settings and the provenance with what Grafana returns, and only sends an update when they differ.
  - Secure settings (for example a Slack C(url) or C(token), a webhook C(password)) are write-only in Grafana, it
    returns them as C([REDACTED]), so their values cannot be compared; O(secure_update) says when they are sent.
author:
  - o11y.stack maintainers (@o11y-stack)
extends_documentation_fragment:
  - o11y.stack.grafana
options:
  name:
    description:
      - Name of the contact point, the receiver name notification policies refer to.
      - Required with O(state=present). With O(state=absent), O(uid) or O(name) finds the contact point.
      - Several contact points (integrations) may share a name; then O(uid) must pick one.
    type: str
  uid:
    description:
      - Unique identifier, 1 to 40 characters out of V(a-z), V(A-Z), V(0-9), V(-) and V(_).
      - Set it to address the same contact point on every run; Grafana generates one otherwise.
    type: str
  state:
    description:
      - V(present) creates or updates the contact point, V(absent) deletes it.
      - Grafana refuses to delete the last contact point of a name that a notification policy still routes to (HTTP
        409); change the policy tree first (M(o11y.stack.grafana_notification_policy)).
    type: str
    choices: [present, absent]
    default: present
  type:
    description:
      - Integration type, for example V(webhook), V(oncall), V(slack), V(email), V(teams), V(pagerduty), V(discord),
        V(googlechat), V(telegram), V(opsgenie) (Grafana's names; any type Grafana knows is accepted).
      - Required when the contact point is created.
    type: str
  settings:
    description:
      - The type's settings without the secure ones, for example C(url), C(httpMethod), C(maxAlerts) for a webhook,
        C(addresses) for e-mail, C(recipient) and C(title) for Slack.
      - The complete settings, compared key by key with what Grafana returns; keys not listed are removed.
      - A setting that Grafana stores encrypted for this type (see O(secure_settings)) is refused here so that its
        value is never logged.
      - V(null) keeps the current settings (V({}) on creation).
    type: dict
  secure_settings:
    description:
      - Secure settings, keyed by setting name; nested ones by their dotted path, for example
        V(tlsConfig.clientKey) or V(http_config.oauth2.client_secret) of a webhook.
      - The secure settings of the common types are C(url) and C(token) (slack); C(password),
        C(authorization_credentials), C(tlsConfig.clientKey), C(hmacConfig.secret) (webhook); C(password),
        C(authorization_credentials) (oncall); C(integrationKey) (pagerduty); C(url) (discord, googlechat);
        C(bottoken) (telegram); C(apiKey) (opsgenie). E-mail and Teams have none.
      - When set, the complete set of secure settings, so ones Grafana has that are not listed are removed. An empty
        value counts as not set.
      - V(null) keeps the secure settings the contact point has (those that are still secure after a type change).
      - Values are sent according to O(secure_update).
    type: dict
  disable_resolve_message:
    description:
      - Do not send a notification when the alert resolves.
      - V(null) keeps the current value (V(false) on creation).
    type: bool
  disable_provenance:
    description:
      - Send the C(X-Disable-Provenance) header, so that the contact point stays editable in the Grafana UI.
      - With V(false), Grafana records the provenance C(api) and the UI shows the contact point as provisioned
        (read-only).
      - Grafana does not let the API change a provenance back to none; the module fails with what to do instead.
    type: bool
    default: false
  secure_update:
    description:
      - When to send the values of O(secure_settings).
      - V(on_create) sends them when the contact point is created and sends a key that Grafana does not have yet.
        A changed value of a key Grafana already has is not noticed; use V(always) once to rotate it.
      - V(always) sends every secure value on every run, so the task always reports a change when there is one.
    type: str
    choices: [on_create, always]
    default: on_create
attributes:
  check_mode:
    support: full
    description: Reports the change and the diff without changing Grafana.
  diff_mode:
    support: full
    description: Returns the contact point before and after; secure settings show as C([REDACTED]), never their
      values.
  platform:
    platforms: posix
    support: full
    description: Runs wherever Grafana's HTTP API is reachable.
notes:
  - Needs the organisation Admin role (the C(alert.provisioning:read) and C(alert.provisioning:write) permissions).
  - Grafana's swagger documentation says a deletion answers HTTP 204; Grafana 13 answers 202. Both are accepted.
seealso:
  - name: Grafana alerting provisioning HTTP API
    description: The API this module uses.
    link: https://grafana.com/docs/grafana/latest/alerting/set-up/provision-alerting-resources/http-api-provisioning/
  - module: o11y.stack.grafana_notification_policy
"""

EXAMPLES = r"""
- name: Grafana OnCall integration as a contact point (editable in the UI)
  o11y.stack.grafana_contact_point:
    grafana_url: "http://{{ groups['grafana'][0] }}:3000"
    grafana_token: "{{ grafana_service_account_token }}"
    uid: oncall
    name: OnCall
    type: oncall
    settings:
      url: "{{ oncall_integration_url }}"
      httpMethod: POST
      maxAlerts: 0
    disable_provenance: true

- name: Slack channel, webhook URL sent once at creation
  o11y.stack.grafana_contact_point:
    grafana_url: https://grafana.example.com
    grafana_user: admin
    grafana_password: "{{ grafana_admin_password }}"
    uid: slack-ops
    name: Ops
    type: slack
    settings:
      recipient: "#ops-alerts"
      title: '{{ "{{" }} template "slack.default.title" . {{ "}}" }}'
    secure_settings:
      url: "{{ slack_webhook_url }}"

- name: Webhook with basic authentication; rotate the password (always sends the secure values)
  o11y.stack.grafana_contact_point:
    grafana_url: https://grafana.example.com
    grafana_token: "{{ grafana_service_account_token }}"
    uid: ticketing
    name: Ticketing
    type: webhook
    settings:
      url: https://tickets.example.com/grafana
      username: grafana
    secure_settings:
      password: "{{ new_ticketing_password }}"
    secure_update: always

- name: E-mail to the on-call team, no resolve message
  o11y.stack.grafana_contact_point:
    grafana_url: https://grafana.example.com
    grafana_token: "{{ grafana_service_account_token }}"
    uid: team-mail
    name: Team mail
    type: email
    settings:
      addresses: oncall@example.com;lead@example.com
      singleEmail: true
    disable_resolve_message: true

- name: Remove a contact point
  o11y.stack.grafana_contact_point:
    grafana_url: https://grafana.example.com
    grafana_token: "{{ grafana_service_account_token }}"
    uid: old-pager
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the contact point was (or in check mode would be) created, changed or deleted.
  returned: always
  type: bool
contact_point:
  description:
    - The contact point after the module ran (in check mode, as it would be), as Grafana returns it; secure settings
      that are set show as C([REDACTED]). C(provenance) is there when the contact point has one.
    - Empty when O(state=absent).
  returned: always
  type: dict
  sample:
    uid: oncall
    name: OnCall
    type: oncall
    settings: {"url": "https://oncall.example.com/integrations/v1/grafana_alerting/abc/", "httpMethod": "POST"}
    disableResolveMessage: false
secure_fields_sent:
  description: Dotted paths of the secure settings whose values were (or in check mode would be) sent to Grafana.
  returned: always
  type: list
  elements: str
  sample: [url]
diff:
  description:
    - The contact point before and after (C(uid), C(name), C(type), C(disableResolveMessage), C(settings),
      C(provenance)); an empty dictionary stands for a contact point that does not exist. Secure settings show as
      C([REDACTED]).
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
    REDACTED,
    GrafanaError,
    grafana_module,
    run_grafana_module,
    secure_fields_to_send,
    uid_problem,
)

# Settings Grafana stores encrypted, by type (GetSecretKeysForContactPointType of the 13.x line). Some 13.x
# builds also treat the OAuth2 secrets of the common HTTP client options as secure for most types; they are
# listed for those types too, which only means the module refuses them in `settings`.
_TLS = ("tlsConfig.caCertificate", "tlsConfig.clientCertificate", "tlsConfig.clientKey")
_OAUTH2 = ("http_config.oauth2.client_secret", "http_config.oauth2.tls_config.caCertificate",
           "http_config.oauth2.tls_config.clientCertificate", "http_config.oauth2.tls_config.clientKey")
SECURE_FIELDS = {
    "dingding": ("url",) + _OAUTH2,
    "discord": ("url",) + _OAUTH2,
    "email": (),
    "googlechat": ("url",) + _OAUTH2,
    "jira": ("user", "password", "api_token") + _OAUTH2,
    "kafka": ("password",) + _OAUTH2,
    "LINE": ("token",) + _OAUTH2,
    "mqtt": ("password",) + _TLS,
    "oncall": ("password", "authorization_credentials") + _OAUTH2,
    "opsgenie": ("apiKey",) + _OAUTH2,
    "pagerduty": ("integrationKey",) + _OAUTH2,
    "prometheus-alertmanager": ("basicAuthPassword",),
    "pushover": ("apiToken", "userKey") + _OAUTH2,
    "sensugo": ("apikey",) + _OAUTH2,
    "slack": ("token", "url"),
    "sns": ("sigv4.access_key", "sigv4.secret_key"),
    "teams": _OAUTH2,
    "telegram": ("bottoken",) + _OAUTH2,
    "threema": ("api_secret",) + _OAUTH2,
    "victorops": ("url",) + _OAUTH2,
    "webex": ("bot_token",) + _OAUTH2,
    "webhook": ("password", "authorization_credentials", "hmacConfig.secret") + _TLS + _OAUTH2,
    "wecom": ("url", "secret") + _OAUTH2,
}
VIEW_FIELDS = ("uid", "name", "type", "disableResolveMessage", "settings", "provenance")


# -- settings as nested dictionaries addressed by dotted paths ----------------------------------

def leaves(settings, prefix=""):
    """{dotted path: value} of every non-dictionary value in *settings*."""
    out = {}
    for key, value in (settings or {}).items():
        path = prefix + str(key)
        if isinstance(value, dict) and value:
            out.update(leaves(value, path + "."))
        else:
            out[path] = value
    return out


def path_get(settings, path):
    node = settings
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def path_set(settings, path, value):
    """Set *path*; False when a non-dictionary value is in the way."""
    parts = path.split(".")
    node = settings
    for part in parts[:-1]:
        if part not in node:
            node[part] = {}
        if not isinstance(node[part], dict):
            return False
        node = node[part]
    node[parts[-1]] = value
    return True


def path_delete(settings, path):
    """Remove *path* and the dictionaries that only existed to hold it."""
    parts = path.split(".")
    chain = [settings]
    for part in parts[:-1]:
        nxt = chain[-1].get(part) if isinstance(chain[-1], dict) else None
        if not isinstance(nxt, dict):
            return
        chain.append(nxt)
    chain[-1].pop(parts[-1], None)
    for depth in range(len(parts) - 1, 0, -1):
        if chain[depth]:
            break
        chain[depth - 1].pop(parts[depth - 1], None)


def secure_paths(kind):
    return set(SECURE_FIELDS.get(kind, ()))


def split_settings(kind, settings):
    """(settings without the secure ones, set of the secure paths that are set) of a contact point from Grafana.

    A secure setting is one of the type's known secure paths, or any value Grafana returns as [REDACTED]
    (which covers types this module does not know).
    """
    plain = copy.deepcopy(settings or {})
    present = set()
    for path, value in leaves(settings).items():
        if value == REDACTED or (path in secure_paths(kind) and value not in (None, "")):
            present.add(path)
            path_delete(plain, path)
        elif path in secure_paths(kind):
            path_delete(plain, path)  # an empty secure value is not stored
    return plain, present


def with_markers(plain, paths):
    out = copy.deepcopy(plain)
    for path in sorted(paths):
        path_set(out, path, REDACTED)
    return out


def view(cp):
    """The comparable, displayable part of a contact point as Grafana returns it."""
    if not cp:
        return {}
    plain, present = split_settings(cp.get("type"), cp.get("settings"))
    return {"uid": cp.get("uid"), "name": cp.get("name"), "type": cp.get("type"),
            "disableResolveMessage": bool(cp.get("disableResolveMessage")),
            "settings": with_markers(plain, present), "provenance": cp.get("provenance") or ""}


# -- module logic -------------------------------------------------------------------------------

def validate(module):
    params = module.params
    problem = uid_problem(params["uid"])
    if problem:
        module.fail_json(msg=problem)
    if params["state"] == "present":
        if not params["name"]:
            module.fail_json(msg="name is required with state=present")
    elif not params["name"] and not params["uid"]:
        module.fail_json(msg="set uid or name to find the contact point to delete")
    for key, value in (params["secure_settings"] or {}).items():
        if not key or value is None or isinstance(value, (dict, list)):
            module.fail_json(msg=f"secure_settings[{key!r}] needs a value (a string); nested settings are given by "
                                 "their dotted path, for example tlsConfig.clientKey")


def check_settings(module, kind, settings, secure):
    """Fail when a secure setting is in `settings` (it would be logged) or given twice."""
    plain_paths = {path for path, value in leaves(settings).items() if value != {}}
    leaked = sorted(p for p in plain_paths if p in secure_paths(kind))
    if leaked:
        module.fail_json(msg=f"settings {', '.join(leaked)} of a {kind} contact point are secure settings: put them "
                             "in secure_settings (no_log) instead of settings")
    for path in secure or {}:
        if path in plain_paths or any(p.startswith(path + ".") for p in plain_paths) or \
                any(path.startswith(p + ".") for p in plain_paths):
            module.fail_json(msg=f"{path!r} is in both settings and secure_settings (or one contains the other); "
                                 "give it once")


def find(client, params):
    """The current contact point (as Grafana returns it) or None."""
    if params["uid"]:
        return next((cp for cp in client.contact_points() if cp.get("uid") == params["uid"]), None)
    hits = client.contact_points(name=params["name"])
    if len(hits) > 1:
        uids = ", ".join(sorted(str(cp.get("uid")) for cp in hits))
        raise GrafanaError(f"{len(hits)} contact points (integrations) are named {params['name']!r} ({uids}); set uid "
                           "to pick one")
    return hits[0] if hits else None


def desired_state(params, current):
    """(the view it should have, request body, set of secure paths whose values are sent)."""
    kind = params["type"] or current["type"]
    cur_plain, cur_secure = split_settings(current["type"], current.get("settings")) if current else ({}, set())
    plain = copy.deepcopy(params["settings"]) if params["settings"] is not None else copy.deepcopy(cur_plain)
    if params["secure_settings"] is not None:
        secure = {path: str(value) for path, value in params["secure_settings"].items() if str(value) != ""}
    else:
        # keep what Grafana has (their stored values), as far as it is still secure for the type
        kept = cur_secure if current and kind == current["type"] else {p for p in cur_secure if p in secure_paths(kind)}
        secure = dict.fromkeys(kept)
    send = secure_fields_to_send(secure, cur_secure, params["secure_update"], creating=current is None)
    resolve = params["disable_resolve_message"]
    if resolve is None:
        resolve = bool(current.get("disableResolveMessage")) if current else False
    want = {"uid": current["uid"] if current else params["uid"], "name": params["name"], "type": kind,
            "disableResolveMessage": resolve, "settings": with_markers(plain, secure),
            "provenance": "" if params["disable_provenance"] else "api"}
    body_settings = copy.deepcopy(plain)
    for path, value in secure.items():
        # [REDACTED] tells Grafana to keep the value it has stored
        path_set(body_settings, path, value if path in send else REDACTED)
    body = {"name": want["name"], "type": kind, "settings": body_settings, "disableResolveMessage": resolve}
    if want["uid"]:
        body["uid"] = want["uid"]
    return want, body, send


def provenance_problem(current, want, other_changes):
    """Why Grafana would refuse the change of provenance (None when it would not)."""
    have, wanted = current.get("provenance") or "", want["provenance"]
    if have == wanted or not have:
        return None  # unchanged, or none -> api (allowed)
    name = f"contact point {current.get('name')!r} (uid {current.get('uid')})"
    if have == "api":
        return (f"{name} has the provenance 'api' (it was written through the provisioning API without "
                "X-Disable-Provenance) and Grafana does not let the API make it editable in the UI again: set "
                "disable_provenance=false, or delete it (state=absent) and create it again with disable_provenance=true")
    if other_changes:
        return (f"{name} has the provenance {have!r} (provisioned from files or another tool) and Grafana refuses "
                "changes to it through the API; change it where it is provisioned")
    return None


def ensure_present(module, client):
    params = module.params
    current = find(client, params)
    if current is None and not params["type"]:
        module.fail_json(msg=f"contact point {params['uid'] or params['name']!r} does not exist; set type to create it")
    kind = params["type"] or current["type"]
    check_settings(module, kind, params["settings"], params["secure_settings"])
    want, body, send = desired_state(params, current)
    before = view(current)
    if current is not None:
        other_changes = {k: v for k, v in want.items() if k != "provenance"} != \
            {k: v for k, v in before.items() if k != "provenance"} or bool(send)
        problem = provenance_problem(current, want, other_changes)
        if problem:
            module.fail_json(msg=problem, diff={"before": before, "after": want})
        if (current.get("provenance") or "") not in ("", "api"):
            want["provenance"] = before["provenance"]  # a foreign provenance stays as it is
    changed = current is None or want != before or bool(send)
    result = diff_result(changed, before, want, secure_fields_sent=sorted(send))
    if not changed:
        result["contact_point"] = current
        return result
    if module.check_mode:
        predicted = {k: want[k] for k in ("uid", "name", "type", "settings", "disableResolveMessage")}
        if want["provenance"]:
            predicted["provenance"] = want["provenance"]
        result["contact_point"] = predicted
        return result
    if current is None:
        created = client.create_contact_point(body, disable_provenance=params["disable_provenance"])
        uid = created.get("uid") if isinstance(created, dict) else None
    else:
        client.update_contact_point(current["uid"], body, disable_provenance=params["disable_provenance"])
        uid = current["uid"]
    saved = next((cp for cp in client.contact_points() if cp.get("uid") == uid), None)
    if saved is None:
        raise GrafanaError(f"Grafana accepted the contact point {params['name']!r} but does not list it (uid {uid}); "
                           "check the Grafana server log")
    result["contact_point"] = saved
    result["diff"]["after"] = view(saved)
    return result


def ensure_absent(module, client):
    current = find(client, module.params)
    result = diff_result(current is not None, view(current), {}, contact_point={}, secure_fields_sent=[])
    if current is None or module.check_mode:
        return result
    if not current.get("uid"):
        module.fail_json(msg=f"contact point {current.get('name')!r} has no uid (Grafana's default contact point "
                             "before it is first saved) and cannot be deleted through the API")
    client.delete_contact_point(current["uid"])
    return result


def main():
    module = grafana_module(dict(
        name={"type": "str"},
        uid={"type": "str"},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
        type={"type": "str"},
        settings={"type": "dict"},
        secure_settings={"type": "dict", "no_log": True},
        disable_resolve_message={"type": "bool"},
        disable_provenance={"type": "bool", "default": False},
        secure_update={"type": "str", "default": "on_create", "choices": ["on_create", "always"]},
    ))
    validate(module)
    run_grafana_module(module, ensure_present, ensure_absent)


if __name__ == "__main__":
    main()
