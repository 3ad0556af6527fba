# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: grafana_dashboard
short_description: Manage Grafana dashboards from JSON
version_added: 0.1.0
description:
  - Create, update or delete a dashboard in a Grafana organisation through Grafana's HTTP API, from the dashboard
    JSON model given inline (O(dashboard)) or in a file (O(path)).
  - The dashboard is identified by its uid (O(uid), else the C(uid) of the JSON model), so the same task always
    manages the same dashboard.
  - Idempotent, the JSON model is compared with the one Grafana stores without C(id) and C(version) (which Grafana
    sets itself), and the folder is compared by uid. Only a difference sends a new version.
author:
  - o11y.stack maintainers (@o11y-stack)
extends_documentation_fragment:
  - o11y.stack.grafana
options:
  dashboard:
    description:
      - The dashboard JSON model, as a dictionary or a JSON string. Mutually exclusive with O(path).
      - An export wrapped in an object with the keys C(dashboard) and C(meta) (what C(GET /api/dashboards/uid/...)
        returns) is unwrapped.
      - Exports made for sharing externally, with C(__inputs) placeholders such as C(${DS_PROMETHEUS}), are stored
        as they are; replace the placeholders (for example with the data source uids) before passing the model.
    type: json
  path:
    description:
      - File holding the dashboard JSON model, read on the host the module runs on (the controller with
        C(delegate_to=localhost)). Mutually exclusive with O(dashboard).
    type: path
  uid:
    description:
      - Uid of the dashboard, 1 to 40 characters out of V(a-z), V(A-Z), V(0-9), V(-) and V(_).
      - Overrides the C(uid) of the JSON model. One of the two is required, so that the task is idempotent.
    type: str
  folder_uid:
    description:
      - Uid of the folder to keep the dashboard in. Mutually exclusive with O(folder_title).
      - When neither is set the dashboard lives at the top level (Grafana's C(Dashboards) root), and a dashboard
        found in a folder is moved there.
    type: str
  folder_title:
    description:
      - Title of the folder to keep the dashboard in; it must exist and be the only folder with that title.
    type: str
  overwrite:
    description:
      - V(true) replaces an existing dashboard with the same uid whose model or folder differs. The update is sent
        with the version just read, so a change made by someone else in between fails instead of being lost.
      - V(false) only creates the dashboard; an existing one is never changed. When it differs from the wanted model
        the module warns, reports no change and returns RV(diverged=true) (useful for dashboards people edit in
        the UI after the first deployment).
    type: bool
    default: true
  commit_message:
    description:
      - Message stored in the dashboard's version history with every change (at most 500 characters).
    type: str
    default: Saved by Ansible (o11y.stack.grafana_dashboard)
  state:
    description:
      - V(present) creates or updates the dashboard, V(absent) deletes it (found by O(uid) or the model's uid).
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
    description: Reports the change and the diff without changing Grafana.
  diff_mode:
    support: full
    description: Returns the dashboard model (without id and version) and its folder uid before and after.
  platform:
    platforms: posix
    support: full
    description: Runs wherever Grafana's HTTP API is reachable.
seealso:
  - name: Grafana dashboard HTTP API
    description: The API this module uses.
    link: https://grafana.com/docs/grafana/latest/developer-resources/api-reference/http-api/dashboard/
  - module: o11y.stack.grafana_folder
"""

EXAMPLES = r"""
- name: Dashboards shipped with the playbook, into the stack's folder
  o11y.stack.grafana_dashboard:
    grafana_url: "http://{{ groups['grafana'][0] }}:3000"
    grafana_token: "{{ grafana_service_account_token }}"
    dashboard: "{{ lookup('ansible.builtin.file', item) }}"
    folder_uid: o11y
  loop: "{{ query('ansible.builtin.fileglob', 'dashboards/*.json') }}"

- name: A small dashboard written inline
  o11y.stack.grafana_dashboard:
    grafana_url: "http://{{ groups['grafana'][0] }}:3000"
    grafana_token: "{{ grafana_service_account_token }}"
    folder_title: Observability stack
    dashboard:
      uid: stack-health
      title: Stack health
      tags: [o11y]
      schemaVersion: 41
      panels:
        - type: stat
          title: Targets up
          gridPos: {h: 4, w: 6, x: 0, y: 0}
          datasource: {type: prometheus, uid: mimir}
          targets:
            - refId: A
              expr: sum(up)

- name: Deploy a dashboard once and keep what people change in the UI afterwards
  o11y.stack.grafana_dashboard:
    grafana_url: "http://{{ groups['grafana'][0] }}:3000"
    grafana_token: "{{ grafana_service_account_token }}"
    path: /srv/dashboards/team-overview.json
    overwrite: false

- name: Delete a dashboard
  o11y.stack.grafana_dashboard:
    grafana_url: "http://{{ groups['grafana'][0] }}:3000"
    grafana_token: "{{ grafana_service_account_token }}"
    uid: old-overview
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the dashboard was (or in check mode would be) created, updated or deleted.
  returned: always
  type: bool
dashboard:
  description:
    - The dashboard after the module ran (in check mode, as it would be). Empty when O(state=absent).
  returned: always
  type: dict
  contains:
    uid:
      description: Uid of the dashboard.
      type: str
      returned: when O(state=present)
      sample: stack-health
    id:
      description: Numeric id Grafana gave the dashboard (V(null) in check mode for a new dashboard).
      type: int
      returned: when O(state=present)
      sample: 21
    title:
      description: Title.
      type: str
      returned: when O(state=present)
      sample: Stack health
    version:
      description: Version number; each change adds one.
      type: int
      returned: when O(state=present)
      sample: 3
    url:
      description: Path of the dashboard below grafana_url.
      type: str
      returned: when O(state=present)
      sample: /d/stack-health/stack-health
    folder_uid:
      description: Uid of the folder, V("") at the top level.
      type: str
      returned: when O(state=present)
      sample: o11y
diverged:
  description: With O(overwrite=false), whether the dashboard in Grafana differs from the wanted model.
  returned: when O(state=present)
  type: bool
  sample: false
diff:
  description:
    - The dashboard model (without C(id) and C(version)) and its folder uid before and after; an empty dictionary
      stands for a dashboard that does not exist.
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
import json
from functools import partial

from ansible.module_utils.common.text.converters import to_text
from ansible_collections.o11y.stack.plugins.module_utils.http_api import diff_result
from ansible_collections.o11y.stack.plugins.module_utils.grafana import (
    GrafanaError,
    grafana_module,
    quote_path,
    run_grafana_module,
    uid_problem,
)

# Set by Grafana on every save; never part of the wanted state.
SERVER_FIELDS = ("id", "version")


def load_model(module):
    """The dashboard model from the dashboard or path option, as a dict."""
    params = module.params
    source = "dashboard"
    raw = params["dashboard"]
    if params["path"]:
        source = params["path"]
        try:
            with open(params["path"], "rb") as handle:
                raw = to_text(handle.read(), errors="surrogate_or_strict")
        except OSError as exc:
            module.fail_json(msg=f"cannot read the dashboard file {params['path']}: {exc.strerror}")
    if raw is None:
        return None
    if isinstance(raw, dict):
        model = copy.deepcopy(raw)
    else:
        try:
            model = json.loads(raw)
        except ValueError as exc:
            position = f" at line {exc.lineno} column {exc.colno}" if hasattr(exc, "lineno") else ""
            module.fail_json(msg=f"{source} is not valid JSON{position}: {getattr(exc, 'msg', exc)}")
    if not isinstance(model, dict):
        module.fail_json(msg=f"{source} must hold a JSON object (the dashboard model), not {type(model).__name__}")
    if isinstance(model.get("dashboard"), dict) and isinstance(model.get("meta"), dict):
        model = model["dashboard"]
    return model


def comparable(model):
    return {k: v for k, v in (model or {}).items() if k not in SERVER_FIELDS}


def summary(model, meta):
    return {"uid": model.get("uid"), "id": model.get("id"), "title": model.get("title"),
            "version": model.get("version"), "url": meta.get("url"), "folder_uid": meta.get("folderUid") or ""}


def ensure_present(module, client, model, uid):
    params = module.params
    folder_uid = client.resolve_folder_uid(params["folder_uid"], params["folder_title"])
    current = client.get("/api/dashboards/uid/" + quote_path(uid), missing_ok=True)
    want = comparable(model)
    want["uid"] = uid
    after = {"model": want, "folder_uid": folder_uid}
    if current is None:
        before = {}
    else:
        before = {"model": comparable(current.get("dashboard")), "folder_uid": current["meta"].get("folderUid") or ""}
    differs = before != after
    result = diff_result(differs, before, after, diverged=False)
    if current is not None and differs and not params["overwrite"]:
        module.warn(f"dashboard {uid!r} in Grafana differs from the wanted model; left unchanged because "
                    "overwrite=false")
        result.update(changed=False, diverged=True, diff={"before": before, "after": before})
        result["dashboard"] = summary(current["dashboard"], current["meta"])
        return result
    if not differs:
        result["dashboard"] = summary(current["dashboard"], current["meta"])
        return result
    if module.check_mode:
        old = current["dashboard"] if current else {}
        result["dashboard"] = {"uid": uid, "id": old.get("id"), "title": want.get("title"),
                               "version": (old.get("version") or 0) + 1,
                               "url": current["meta"].get("url") if current else None, "folder_uid": folder_uid}
        return result
    body_model = copy.deepcopy(want)
    if current is not None:
        body_model["id"] = current["dashboard"].get("id")
        body_model["version"] = current["dashboard"].get("version")
    else:
        body_model["id"] = None
    body = {"dashboard": body_model, "folderUid": folder_uid, "overwrite": False, "message": params["commit_message"]}
    try:
        saved = client.post("/api/dashboards/db", body)
    except GrafanaError as err:
        if err.status == 412 and current is None:
            raise GrafanaError(f"{err.message}. A dashboard with uid {uid!r} appeared while the module ran; "
                               "run the task again", status=err.status, method=err.method, path=err.path,
                               body=err.body) from None
        raise
    result["dashboard"] = {"uid": saved.get("uid"), "id": saved.get("id"), "title": want.get("title"),
                           "version": saved.get("version"), "url": saved.get("url"), "folder_uid": folder_uid}
    return result


def ensure_absent(module, client, uid):
    current = client.get("/api/dashboards/uid/" + quote_path(uid), missing_ok=True)
    before = {}
    if current is not None:
        before = {"model": comparable(current.get("dashboard")), "folder_uid": current["meta"].get("folderUid") or ""}
    result = diff_result(current is not None, before, {}, dashboard={})
    if current is not None and not module.check_mode:
        client.delete("/api/dashboards/uid/" + quote_path(uid), missing_ok=True)
    return result


def main():
    module = grafana_module(dict(
        dashboard={"type": "json"},
        path={"type": "path"},
        uid={"type": "str"},
        folder_uid={"type": "str"},
        folder_title={"type": "str"},
        overwrite={"type": "bool", "default": True},
        commit_message={"type": "str", "default": "Saved by Ansible (o11y.stack.grafana_dashboard)"},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
    ), mutually_exclusive=[("dashboard", "path"), ("folder_uid", "folder_title")])
    params = module.params
    model = load_model(module)
    if params["state"] == "present" and model is None:
        module.fail_json(msg="state=present needs the dashboard model: set dashboard or path")
    uid = params["uid"] or (model or {}).get("uid")
    if not uid:
        module.fail_json(msg="the dashboard needs a uid so that the task is idempotent: set uid, or uid in the "
                             "dashboard JSON")
    problem = uid_problem(uid)
    if problem:
        module.fail_json(msg=problem)
    for key in ("folder_uid",):
        problem = uid_problem(params[key] or None, key)
        if problem:
            module.fail_json(msg=problem)
    if model is not None and params["state"] == "present":
        title = model.get("title")
        if not isinstance(title, str) or not title.strip():
            module.fail_json(msg="the dashboard model needs a non-empty title")
    if len(params["commit_message"] or "") > 500:
        module.fail_json(msg="commit_message must be at most 500 characters long (Grafana's limit)")
    run_grafana_module(module, partial(ensure_present, model=model, uid=uid), partial(ensure_absent, uid=uid))


if __name__ == "__main__":
    main()
