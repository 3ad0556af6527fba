# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: grafana_datasource
short_description: Manage Grafana data sources
version_added: 0.1.0
description:
  - Create, update or delete a data source in a Grafana organisation through Grafana's HTTP API.
  - The data source is found by O(uid) when given, else by O(name). A data source found by O(uid) whose name differs
    is renamed.
  - Idempotent, the module compares every setting Grafana returns (type, URL, access mode, default flag, basic
    authentication, jsonData, the set of secure fields) with the wanted state and only sends an update when they
    differ. Options left unset (V(null)) keep the current value.
  - Secure values (O(secure_json_data), O(basic_auth_password), O(http_headers) values, O(bearer_token)) are
    write-only in Grafana, so they cannot be compared; O(secure_update) says when they are sent.
author:
  - o11y.stack maintainers (@o11y-stack)
extends_documentation_fragment:
  - o11y.stack.grafana
options:
  name:
    description:
      - Name of the data source, unique within the organisation.
      - Required with O(state=present). With O(state=absent), O(uid) or O(name) finds the data source.
    type: str
  uid:
    description:
      - Unique identifier, 1 to 40 characters out of V(a-z), V(A-Z), V(0-9), V(-) and V(_).
      - Set it to have a stable uid other objects (dashboards, correlations, alerting) can refer to; Grafana generates
        one otherwise. Grafana cannot change the uid of an existing data source.
    type: str
  state:
    description:
      - V(present) creates or updates the data source, V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  type:
    description:
      - Data source plugin id, for example V(prometheus), V(loki), V(tempo), V(grafana-pyroscope-datasource),
        V(alertmanager).
      - Required when the data source is created.
    type: str
  url:
    description:
      - URL Grafana (or the browser, with O(access=direct)) queries.
    type: str
  access:
    description:
      - V(proxy) sends queries through the Grafana server, V(direct) from the browser.
      - Defaults to V(proxy) when the data source is created.
    type: str
    choices: [proxy, direct]
  is_default:
    description:
      - Make this the organisation's default data source. Grafana clears the flag of every other data source.
      - Grafana makes the first data source of an organisation the default one by itself.
    type: bool
  basic_auth_user:
    description:
      - User for HTTP basic authentication towards the data source. A non-empty value enables basic authentication,
        V("") disables it.
    type: str
  basic_auth_password:
    description:
      - Password for O(basic_auth_user), stored in Grafana as the secure field C(basicAuthPassword).
      - Sent according to O(secure_update).
    type: str
  json_data:
    description:
      - The complete C(jsonData) of the data source (type-specific settings such as C(httpMethod),
        C(timeInterval), C(derivedFields), C(tracesToLogsV2)). Grafana replaces jsonData as a whole, so keys not
        listed here are removed.
      - Compared key by key with what Grafana returns.
      - V(null) keeps the current jsonData (V({}) on creation).
    type: dict
  secure_json_data:
    description:
      - Secure settings (C(secureJsonData)), for example C(httpHeaderValue1), C(tlsClientKey), C(password).
      - Grafana stores them encrypted and never returns them, only which keys are set.
      - Sent according to O(secure_update); keys that are set in Grafana but not listed here are kept.
    type: dict
  http_headers:
    description:
      - Custom HTTP headers Grafana adds to requests to the data source, for example
        the tenant header C(X-Scope-OrgID) for Mimir, Loki, Tempo or Pyroscope with multi-tenancy.
      - Header names are stored in jsonData (C(httpHeaderName1), ...), values as secure fields (C(httpHeaderValue1),
        ...); a header whose name is new (or moved to another slot) always has its value sent.
      - When set, it is the complete list of custom headers; other C(httpHeaderNameN) keys are removed from jsonData,
        and C(httpHeaderNameN) keys in O(json_data) are ignored. When neither this nor O(bearer_token) is set, O(json_data)
        holds the header names like any other key.
    type: dict
  bearer_token:
    description:
      - Token sent in the C(Authorization) header as C(Bearer <token>), as one of the O(http_headers).
      - Without O(http_headers), the other custom headers the data source has keep their names and values.
    type: str
  secure_update:
    description:
      - When to send the secure values (O(secure_json_data), O(basic_auth_password), O(http_headers) values,
        O(bearer_token)).
      - V(on_create) sends them when the data source is created and sends a key that Grafana does not have yet.
        A changed value of an existing key is not noticed; use V(always) once to rotate it.
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
    description: Returns the data source before and after; secure values are never shown, only the names of the
      secure fields.
  platform:
    platforms: posix
    support: full
    description: Runs wherever Grafana's HTTP API is reachable.
seealso:
  - name: Grafana data source HTTP API
    description: The API this module uses.
    link: https://grafana.com/docs/grafana/latest/developer-resources/api-reference/http-api/api-legacy/data_source/
  - module: o11y.stack.grafana_dashboard
  - module: o11y.stack.grafana_folder
"""

EXAMPLES = r"""
- name: Mimir as the default Prometheus data source, queried with POST, tenant header from a secret
  o11y.stack.grafana_datasource:
    grafana_url: "http://{{ groups['grafana'][0] }}:3000"
    grafana_token: "{{ grafana_service_account_token }}"
    name: Mimir
    uid: mimir
    type: prometheus
    url: "http://{{ groups['mimir'][0] }}:9009/prometheus"
    is_default: true
    json_data:
      httpMethod: POST
      prometheusType: Mimir
      timeInterval: 15s
    http_headers:
      X-Scope-OrgID: "{{ mimir_tenant }}"

- name: Loki with basic authentication (password sent once, at creation)
  o11y.stack.grafana_datasource:
    grafana_url: https://grafana.example.com
    grafana_user: admin
    grafana_password: "{{ grafana_admin_password }}"
    name: Loki
    uid: loki
    type: loki
    url: https://loki.example.com
    basic_auth_user: grafana
    basic_auth_password: "{{ loki_password }}"
    json_data:
      maxLines: 1000

- name: Rotate the Loki password (always sends the secure values, reports a change)
  o11y.stack.grafana_datasource:
    grafana_url: https://grafana.example.com
    grafana_token: "{{ grafana_service_account_token }}"
    name: Loki
    uid: loki
    type: loki
    basic_auth_user: grafana
    basic_auth_password: "{{ new_loki_password }}"
    secure_update: always

- name: Remove a data source in organisation 2
  o11y.stack.grafana_datasource:
    grafana_url: https://grafana.example.com
    grafana_user: admin
    grafana_password: "{{ grafana_admin_password }}"
    org_id: 2
    uid: old-graphite
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the data source was (or in check mode would be) created, changed or deleted.
  returned: always
  type: bool
datasource:
  description:
    - The data source after the module ran (in check mode, as it would be), in the shape Grafana returns it minus
      the fields that say nothing about its configuration (C(typeLogoUrl), C(accessControl)).
    - Empty when O(state=absent).
  returned: always
  type: dict
  sample:
    id: 3
    uid: mimir
    orgId: 1
    name: Mimir
    type: prometheus
    access: proxy
    url: http://mimir.example.com:9009/prometheus
    user: ""
    database: ""
    basicAuth: false
    basicAuthUser: ""
    withCredentials: false
    isDefault: true
    jsonData: {"httpMethod": "POST", "httpHeaderName1": "X-Scope-OrgID"}
    secureJsonFields: {"httpHeaderValue1": true}
    version: 2
    readOnly: false
secure_fields_sent:
  description: Names of the secure fields whose values were (or in check mode would be) sent to Grafana.
  returned: always
  type: list
  elements: str
  sample: [httpHeaderValue1]
diff:
  description:
    - The data source before and after, without C(id), C(version) and C(orgId); an empty dictionary stands for a
      data source that does not exist. Secure values never appear, only C(secureJsonFields).
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
from ansible_collections.o11y.stack.plugins.module_utils.grafana import (
    GrafanaError,
    grafana_module,
    quote_path,
    run_grafana_module,
    secure_fields_to_send,
    uid_problem,
)

HEADER_NAME = re.compile(r"^httpHeaderName(\d+)$")
# What a data source is made of, in Grafana's API field names (compared and shown in the diff).
CONFIG_FIELDS = ("uid", "name", "type", "access", "url", "user", "database", "basicAuth", "basicAuthUser",
                 "withCredentials", "isDefault", "jsonData", "secureJsonFields", "readOnly")
SKIPPED_FIELDS = ("typeLogoUrl", "accessControl")


def view(ds):
    """The comparable, displayable part of a data source as Grafana returns it."""
    if not ds:
        return {}
    out = {key: copy.deepcopy(ds.get(key)) for key in CONFIG_FIELDS}
    out["jsonData"] = out["jsonData"] or {}
    out["secureJsonFields"] = {k: True for k, v in (ds.get("secureJsonFields") or {}).items() if v}
    return out


def header_slots(json_data):
    """{header name: slot number} of the custom headers in *json_data*."""
    slots = {}
    for key, value in json_data.items():
        match = HEADER_NAME.match(key)
        if match and isinstance(value, str) and value:
            slots[value] = int(match.group(1))
    return slots


def apply_headers(json_data, headers, current_json):
    """Put the custom headers into *json_data* (in place).

    Returns {secure field name: value} and the set of secure field names whose
    header is new in its slot (their values must be sent).
    """
    current = header_slots(current_json or {})
    for key in [k for k in json_data if HEADER_NAME.match(k)]:
        del json_data[key]
    taken = set()
    wanted = {}
    for name in sorted(headers):
        slot = current.get(name)
        if slot is not None and slot not in taken:
            taken.add(slot)
            wanted[name] = slot
    next_slot = 1
    fresh = set()
    for name in sorted(headers):
        if name in wanted:
            continue
        while next_slot in taken:
            next_slot += 1
        taken.add(next_slot)
        wanted[name] = next_slot
    secure = {}
    for name, slot in wanted.items():
        json_data["httpHeaderName%d" % slot] = name
        field = "httpHeaderValue%d" % slot
        secure[field] = headers[name]
        if current.get(name) != slot:
            fresh.add(field)
    return secure, fresh


def validate(module):
    params = module.params
    for key in ("uid",):
        problem = uid_problem(params[key])
        if problem:
            module.fail_json(msg=problem)
    if params["state"] == "present":
        if not params["name"]:
            module.fail_json(msg="name is required with state=present")
        if len(params["name"]) > 190:
            module.fail_json(msg="name must be at most 190 characters long (Grafana's limit)")
    elif not params["name"] and not params["uid"]:
        module.fail_json(msg="set uid or name to find the data source to delete")
    if params["url"] is not None and len(params["url"]) > 255:
        module.fail_json(msg="url must be at most 255 characters long (Grafana's limit)")
    if params["bearer_token"] is not None:
        headers = params["http_headers"] or {}
        if any(name.lower() == "authorization" for name in headers):
            module.fail_json(msg="bearer_token and an Authorization entry in http_headers are mutually exclusive")
    for key, value in (params["http_headers"] or {}).items():
        if not key or value is None:
            module.fail_json(msg="http_headers needs a non-empty header name and a value for every entry")
    for key, value in (params["secure_json_data"] or {}).items():
        if value is None:
            module.fail_json(msg=f"secure_json_data[{key!r}] has no value")


def find(client, params):
    """The current data source (full DTO) or None."""
    if params["uid"]:
        current = client.get("/api/datasources/uid/" + quote_path(params["uid"]), missing_ok=True)
        if current is not None or params["state"] == "absent":
            return current
        clash = next((d for d in client.get("/api/datasources") or [] if d.get("name") == params["name"]), None)
        if clash is not None:
            raise GrafanaError(
                f"a data source named {params['name']!r} already exists with uid {clash.get('uid')!r}, not "
                f"{params['uid']!r}, and Grafana cannot change a data source's uid: set uid: {clash.get('uid')} or "
                "delete that data source first (state=absent)")
        return None
    listed = next((d for d in client.get("/api/datasources") or [] if d.get("name") == params["name"]), None)
    if listed is None:
        return None
    return client.get("/api/datasources/uid/" + quote_path(listed["uid"]))


def desired_state(params, current, org_count):
    """(the data source as it should be, {secure field: value}, set of secure fields that must be sent)."""
    base = view(current) if current else {
        "uid": params["uid"], "name": params["name"], "type": params["type"], "access": "proxy", "url": "",
        "user": "", "database": "", "basicAuth": False, "basicAuthUser": "", "withCredentials": False,
        "isDefault": org_count == 0, "jsonData": {}, "secureJsonFields": {}, "readOnly": False}
    want = copy.deepcopy(base)
    want["name"] = params["name"]
    for option, field in (("type", "type"), ("url", "url"), ("access", "access"), ("is_default", "isDefault")):
        if params[option] is not None:
            want[field] = params[option]
    if params["basic_auth_user"] is not None:
        want["basicAuthUser"] = params["basic_auth_user"]
        want["basicAuth"] = bool(params["basic_auth_user"])
    if params["json_data"] is not None:
        want["jsonData"] = copy.deepcopy(params["json_data"])

    secure = dict(params["secure_json_data"] or {})
    must_send = set()
    if params["basic_auth_password"] is not None:
        secure["basicAuthPassword"] = params["basic_auth_password"]
    headers = dict(params["http_headers"] or {}) if params["http_headers"] is not None else None
    if params["bearer_token"] is not None:
        # without http_headers, the custom headers configured now stay (their values too)
        headers = headers if headers is not None else {
            name: None for name in header_slots(base["jsonData"]) if name.lower() != "authorization"}
        headers["Authorization"] = "Bearer " + params["bearer_token"]
    if headers is not None:
        # headers kept from the current jsonData (bearer_token alone) keep their stored values
        kept = {name for name, value in headers.items() if value is None}
        header_secure, fresh = apply_headers(want["jsonData"], {n: (v or "") for n, v in headers.items()},
                                             base["jsonData"])
        for field, value in header_secure.items():
            name = want["jsonData"]["httpHeaderName" + field[len("httpHeaderValue"):]]
            if name not in kept:
                secure[field] = value
        must_send |= {f for f in fresh if f in secure}

    present = set(base["secureJsonFields"])
    send = secure_fields_to_send(secure, present, params["secure_update"], creating=current is None) | must_send
    want["secureJsonFields"] = {k: True for k in sorted(present | set(secure))}
    return want, {k: secure[k] for k in sorted(send)}


def request_body(want, current, secure_values):
    body = {key: want[key] for key in ("name", "type", "access", "url", "user", "database", "basicAuth",
                                       "basicAuthUser", "withCredentials", "isDefault", "jsonData")}
    if want.get("uid"):
        body["uid"] = want["uid"]
    if secure_values:
        body["secureJsonData"] = secure_values
    if current is not None:
        body["version"] = current.get("version") or 0
    return body


def diff_view(ds):
    return {k: v for k, v in ds.items() if k not in ("readOnly",)} if ds else {}


def ensure_present(module, client):
    params = module.params
    current = find(client, params)
    org_count = 0
    if current is None:
        if not params["type"]:
            module.fail_json(msg=f"data source {params['name']!r} does not exist; set type to create it")
        org_count = len(client.get("/api/datasources") or [])
    want, secure_values = desired_state(params, current, org_count)
    before = view(current)
    changed = current is None or want != before or bool(secure_values)
    result = diff_result(changed, diff_view(before), diff_view(want), secure_fields_sent=sorted(secure_values))
    if current is not None and current.get("readOnly") and changed:
        module.fail_json(msg=f"data source {current.get('name')!r} (uid {current.get('uid')}) is provisioned from a "
                             "file (readOnly) and Grafana refuses changes through the API; change its provisioning "
                             "file instead", **result)
    if not changed:
        result["datasource"] = strip(current)
        return result
    if module.check_mode:
        predicted = dict(strip(current) if current else {"id": None, "orgId": params["org_id"], "version": 0})
        predicted.update(want)
        predicted["version"] = (predicted.get("version") or 0) + 1
        result["datasource"] = predicted
        return result
    body = request_body(want, current, secure_values)
    if current is None:
        answer = client.post("/api/datasources", body)
    else:
        answer = client.put("/api/datasources/uid/" + quote_path(current["uid"]), body)
    saved = answer.get("datasource") if isinstance(answer, dict) else None
    if not saved:
        saved = client.get("/api/datasources/uid/" + quote_path(want["uid"] or current["uid"]))
    result["datasource"] = strip(saved)
    result["diff"]["after"] = diff_view(view(saved))
    return result


def strip(ds):
    return {k: v for k, v in (ds or {}).items() if k not in SKIPPED_FIELDS}


def ensure_absent(module, client):
    current = find(client, module.params)
    result = diff_result(current is not None, diff_view(view(current)), {}, datasource={}, secure_fields_sent=[])
    if current is None or module.check_mode:
        return result
    if current.get("readOnly"):
        module.fail_json(msg=f"data source {current.get('name')!r} is provisioned from a file (readOnly) and Grafana "
                             "refuses to delete it through the API; remove it from its provisioning file instead")
    client.delete("/api/datasources/uid/" + quote_path(current["uid"]), missing_ok=True)
    return result


def main():
    module = grafana_module(dict(
        name={"type": "str"},
        uid={"type": "str"},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
        type={"type": "str"},
        url={"type": "str"},
        access={"type": "str", "choices": ["proxy", "direct"]},
        is_default={"type": "bool"},
        basic_auth_user={"type": "str"},
        basic_auth_password={"type": "str", "no_log": True},
        json_data={"type": "dict"},
        secure_json_data={"type": "dict", "no_log": True},
        http_headers={"type": "dict", "no_log": True},
        bearer_token={"type": "str", "no_log": True},
        secure_update={"type": "str", "default": "on_create", "choices": ["on_create", "always"]},
    ))
    validate(module)
    run_grafana_module(module, ensure_present, ensure_absent)


if __name__ == "__main__":
    main()
