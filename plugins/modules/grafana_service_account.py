# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: grafana_service_account
short_description: Manage Grafana service accounts and their tokens
version_added: 0.1.0
description:
  - Create, update (role, disabled flag) or delete a service account in a Grafana organisation, and make sure it has
    a token of a given name, through Grafana's HTTP API.
  - A new token's secret is returned once, in RV(token), when the token is created; Grafana cannot show it again.
    Run the task with C(no_log=true) and store the value right away (for example in a file only root can read).
  - The service account is found by its exact O(name).
author:
  - o11y.stack maintainers (@o11y-stack)
extends_documentation_fragment:
  - o11y.stack.grafana
options:
  name:
    description:
      - Name of the service account, unique within the organisation.
    type: str
    required: true
  role:
    description:
      - Organisation role of the service account. V(null) keeps the current role (V(Viewer) on creation).
      - Grafana refuses roles above the role of the user or token running the module.
    type: str
    choices: [None, Viewer, Editor, Admin]
  disabled:
    description:
      - Disable the service account (its tokens stop working) or enable it again. V(null) keeps the current state
        (enabled on creation).
    type: bool
  state:
    description:
      - V(present) creates or updates the service account, V(absent) deletes it together with its tokens.
    type: str
    choices: [present, absent]
    default: present
  token_name:
    description:
      - Make sure the service account has a token with this name; create it when missing (or expired) and return
        its secret in RV(token).
    type: str
  token_ttl:
    description:
      - Lifetime of a token created by the module, in seconds. V(0) (the default) creates a token that never
        expires.
    type: int
    default: 0
  rotate_token:
    description:
      - Replace the token named O(token_name) by a new one even when it exists (the old secret stops working).
      - The task then always reports a change.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reports the change and the diff without changing Grafana; no token is created.
  diff_mode:
    support: full
    description: Returns name, role, disabled flag and token names before and after; never a token secret.
  platform:
    platforms: posix
    support: full
    description: Runs wherever Grafana's HTTP API is reachable.
seealso:
  - name: Grafana service account HTTP API
    description: The API this module uses.
    link: https://grafana.com/docs/grafana/latest/developer-resources/api-reference/http-api/api-legacy/serviceaccount/
"""

EXAMPLES = r"""
- name: A service account for Ansible with an admin token
  o11y.stack.grafana_service_account:
    grafana_url: "http://{{ groups['grafana'][0] }}:3000"
    grafana_user: admin
    grafana_password: "{{ grafana_admin_password }}"
    name: ansible
    role: Admin
    token_name: ansible
  register: __sa
  no_log: true

- name: Keep the token (only there when it was just created)
  ansible.builtin.copy:
    dest: /etc/o11y/grafana/ansible.token
    content: "{{ __sa.token }}"
    owner: root
    mode: "0600"
  when: __sa.token is defined
  no_log: true

- name: Remove a service account and its tokens
  o11y.stack.grafana_service_account:
    grafana_url: "http://{{ groups['grafana'][0] }}:3000"
    grafana_user: admin
    grafana_password: "{{ grafana_admin_password }}"
    name: old-automation
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the service account or its token was (or in check mode would be) created, changed or deleted.
  returned: always
  type: bool
service_account:
  description: The service account after the module ran (in check mode, as it would be); empty when O(state=absent).
  returned: always
  type: dict
  sample:
    id: 7
    uid: aef3kq2x9dc00b
    name: ansible
    login: sa-1-ansible
    orgId: 1
    role: Admin
    isDisabled: false
    tokens: 1
token:
  description:
    - The secret of the token the module just created (C(glsa_...)). Grafana never shows it again.
  returned: when a token was created (not in check mode)
  type: str
  sample: glsa_0123456789abcdefghijklmnopqrstuv_1a2b3c4d
token_created:
  description: Whether a token was (or in check mode would be) created.
  returned: always
  type: bool
diff:
  description: Name, role, disabled flag and token names before and after.
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
from ansible_collections.o11y.stack.plugins.module_utils.grafana import (
    grafana_module,
    run_grafana_module,
)


def find(client, name):
    found = client.get("/api/serviceaccounts/search", query={"query": name, "perpage": 1000}) or {}
    return next((sa for sa in found.get("serviceAccounts") or [] if sa.get("name") == name), None)


def view(sa, tokens):
    if not sa:
        return {}
    return {"name": sa.get("name"), "role": sa.get("role"), "isDisabled": bool(sa.get("isDisabled")),
            "tokens": sorted(t.get("name") for t in tokens)}


def ensure_present(module, client):
    params = module.params
    current = find(client, params["name"])
    tokens = client.get(f"/api/serviceaccounts/{current['id']}/tokens") if current else []
    before = view(current, tokens)
    after = dict(before) if current else {"name": params["name"], "role": "Viewer", "isDisabled": False, "tokens": []}
    if params["role"] is not None:
        after["role"] = params["role"]
    if params["disabled"] is not None:
        after["isDisabled"] = params["disabled"]
    existing = next((t for t in tokens if t.get("name") == params["token_name"]), None)
    replace_token = existing is not None and (params["rotate_token"] or existing.get("hasExpired"))
    create_token = bool(params["token_name"]) and (existing is None or replace_token)
    if params["token_name"] and params["token_name"] not in after["tokens"]:
        after["tokens"] = sorted(after["tokens"] + [params["token_name"]])
    changed = after != before or create_token
    result = diff_result(changed, before, after, token_created=create_token)
    if module.check_mode or not changed:
        sa = dict(current or {"id": None, "name": params["name"], "orgId": params["org_id"]})
        sa.update(role=after["role"], isDisabled=after["isDisabled"], tokens=len(after["tokens"]))
        result["service_account"] = sa
        return result
    if current is None:
        sa = client.post("/api/serviceaccounts", {"name": params["name"], "role": after["role"],
                                                  "isDisabled": after["isDisabled"]})
    else:
        sa = current
        patch = {}
        if after["role"] != before["role"]:
            patch["role"] = after["role"]
        if after["isDisabled"] != before["isDisabled"]:
            patch["isDisabled"] = after["isDisabled"]
        if patch:
            sa = client.patch(f"/api/serviceaccounts/{current['id']}", patch).get("serviceaccount") or sa
    if create_token:
        if replace_token:
            client.delete(f"/api/serviceaccounts/{sa['id']}/tokens/{existing['id']}", missing_ok=True)
        body = {"name": params["token_name"]}
        if params["token_ttl"]:
            body["secondsToLive"] = params["token_ttl"]
        created = client.post(f"/api/serviceaccounts/{sa['id']}/tokens", body)
        result["token"] = created.get("key")
    result["service_account"] = client.get(f"/api/serviceaccounts/{sa['id']}")
    return result


def ensure_absent(module, client):
    current = find(client, module.params["name"])
    tokens = client.get(f"/api/serviceaccounts/{current['id']}/tokens") if current else []
    result = diff_result(current is not None, view(current, tokens), {}, token_created=False, service_account={})
    if current is not None and not module.check_mode:
        client.delete(f"/api/serviceaccounts/{current['id']}", missing_ok=True)
    return result


def main():
    module = grafana_module(dict(
        name={"type": "str", "required": True},
        role={"type": "str", "choices": ["None", "Viewer", "Editor", "Admin"]},
        disabled={"type": "bool"},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
        token_name={"type": "str", "no_log": False},
        token_ttl={"type": "int", "default": 0, "no_log": False},
        rotate_token={"type": "bool", "default": False, "no_log": False},
    ))
    params = module.params
    if not params["name"].strip():
        module.fail_json(msg="name must not be empty")
    if params["token_ttl"] < 0:
        module.fail_json(msg="token_ttl must be 0 (never expires) or a number of seconds")
    if params["rotate_token"] and not params["token_name"]:
        module.fail_json(msg="rotate_token needs token_name")
    run_grafana_module(module, ensure_present, ensure_absent)


if __name__ == "__main__":
    main()
