# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: grafana_folder
short_description: Manage Grafana folders, including nested folders
version_added: 0.1.0
description:
  - Create, rename, move or delete a dashboard folder in a Grafana organisation through Grafana's HTTP API.
  - The folder is found by O(uid) when given, else by O(title) under O(parent_uid) (the top level when unset).
    Without O(uid) two folders with the same title under the same parent make the module fail instead of guessing.
  - Idempotent; supports check mode and diff mode.
author:
  - o11y.stack maintainers (@o11y-stack)
extends_documentation_fragment:
  - o11y.stack.grafana
options:
  uid:
    description:
      - Unique identifier of the folder, 1 to 40 characters out of V(a-z), V(A-Z), V(0-9), V(-) and V(_).
      - Recommended, it keeps links, dashboards and alert rules pointing at the folder stable across renames.
        Grafana generates one when it is not set.
    type: str
  title:
    description:
      - Title of the folder. Required with O(state=present).
      - A folder found by O(uid) with another title is renamed.
    type: str
  parent_uid:
    description:
      - Uid of the parent folder (nested folders). V("") puts the folder at the top level.
      - V(null) creates the folder at the top level and leaves an existing folder where it is.
      - A folder found by O(uid) under another parent is moved.
    type: str
  state:
    description:
      - V(present) creates, renames or moves the folder, V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  force:
    description:
      - With O(state=absent), delete a folder that still holds dashboards or subfolders, together with them (and
        with the alert rules stored in it).
      - Without it, deleting a folder that is not empty fails and nothing is deleted.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reports the change and the diff without changing Grafana.
  diff_mode:
    support: full
    description: Returns the folder (uid, title, parent) before and after.
  platform:
    platforms: posix
    support: full
    description: Runs wherever Grafana's HTTP API is reachable.
seealso:
  - name: Grafana folder HTTP API
    description: The API this module uses.
    link: https://grafana.com/docs/grafana/latest/developer-resources/api-reference/http-api/folder/
  - module: o11y.stack.grafana_dashboard
"""

EXAMPLES = r"""
- name: A folder for the stack's dashboards
  o11y.stack.grafana_folder:
    grafana_url: "http://{{ groups['grafana'][0] }}:3000"
    grafana_token: "{{ grafana_service_account_token }}"
    uid: o11y
    title: Observability stack

- name: A subfolder
  o11y.stack.grafana_folder:
    grafana_url: "http://{{ groups['grafana'][0] }}:3000"
    grafana_token: "{{ grafana_service_account_token }}"
    uid: o11y-loki
    title: Loki
    parent_uid: o11y

- name: Delete a folder with everything in it
  o11y.stack.grafana_folder:
    grafana_url: "http://{{ groups['grafana'][0] }}:3000"
    grafana_user: admin
    grafana_password: "{{ grafana_admin_password }}"
    uid: scratch
    state: absent
    force: true
"""

RETURN = r"""
changed:
  description: Whether the folder was (or in check mode would be) created, renamed, moved or deleted.
  returned: always
  type: bool
folder:
  description:
    - The folder after the module ran, as Grafana returns it (in check mode, as it would be). Empty when
      O(state=absent).
  returned: always
  type: dict
  sample:
    id: 12
    uid: o11y-loki
    title: Loki
    url: /dashboards/f/o11y-loki/loki
    parentUid: o11y
    version: 1
deleted_dashboards:
  description: Number of dashboards deleted (or, in check mode, that would be deleted) with the folder.
  returned: when O(state=absent) and the folder existed
  type: int
  sample: 3
diff:
  description: Uid, title and parent uid before and after; an empty dictionary stands for a missing folder.
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
    GrafanaError,
    grafana_module,
    quote_path,
    run_grafana_module,
    uid_problem,
)


def view(folder):
    if not folder:
        return {}
    return {"uid": folder.get("uid"), "title": folder.get("title"), "parentUid": folder.get("parentUid") or ""}


def find(client, params):
    """The folder as GET /api/folders/:uid returns it, or None."""
    if params["uid"]:
        return client.folder_by_uid(params["uid"])
    hits = client.folders_by_title(params["title"], params["parent_uid"] or "")
    if len(hits) > 1:
        uids = ", ".join(sorted(h["uid"] for h in hits))
        raise GrafanaError(f"{len(hits)} folders are titled {params['title']!r} here ({uids}); set uid to say which "
                           "one this task manages")
    return client.folder_by_uid(hits[0]["uid"]) if hits else None


def ensure_present(module, client):
    params = module.params
    current = find(client, params)
    if params["parent_uid"]:
        parent = client.folder_by_uid(params["parent_uid"])
        if parent is None:
            module.fail_json(msg=f"parent folder {params['parent_uid']!r} does not exist; create it first")
        if current is not None and (params["parent_uid"] == current["uid"]
                                    or current["uid"] in [p.get("uid") for p in parent.get("parents") or []]):
            module.fail_json(msg=f"folder {current['uid']!r} cannot be moved into itself or one of its subfolders")
    before = view(current)
    after = dict(before) if current else {"uid": params["uid"], "title": params["title"], "parentUid": ""}
    after["title"] = params["title"]
    if params["parent_uid"] is not None:
        after["parentUid"] = params["parent_uid"]
    changed = after != before
    result = diff_result(changed, before, after)
    if not changed:
        result["folder"] = current
        return result
    if module.check_mode:
        predicted = dict(current or {})
        predicted.update({"uid": after["uid"], "title": after["title"]})
        if after["parentUid"]:
            predicted["parentUid"] = after["parentUid"]
        else:
            predicted.pop("parentUid", None)
        result["folder"] = predicted
        return result
    if current is None:
        body = {"title": params["title"]}
        if params["uid"]:
            body["uid"] = params["uid"]
        if params["parent_uid"]:
            body["parentUid"] = params["parent_uid"]
        folder = client.post("/api/folders", body)
    else:
        folder = current
        path = "/api/folders/" + quote_path(current["uid"])
        if after["title"] != before["title"]:
            folder = client.put(path, {"title": after["title"], "version": current.get("version") or 0})
        if after["parentUid"] != before["parentUid"]:
            folder = client.post(path + "/move", {"parentUid": after["parentUid"]})
    result["folder"] = folder
    result["diff"]["after"] = view(folder)
    return result


def count_contents(client, uid):
    """(dashboards, subfolders) below the folder, at any depth."""
    dashboards = folders = 0
    pending = [uid]
    while pending:
        current = pending.pop()
        for hit in client.get("/api/search", query={"folderUIDs": current, "limit": 5000}) or []:
            if hit.get("type") == "dash-folder":
                folders += 1
                pending.append(hit["uid"])
            else:
                dashboards += 1
    return dashboards, folders


def ensure_absent(module, client):
    params = module.params
    current = find(client, params)
    result = diff_result(current is not None, view(current), {}, folder={})
    if current is None:
        return result
    dashboards, folders = count_contents(client, current["uid"])
    if (dashboards or folders) and not params["force"]:
        module.fail_json(msg=f"folder {current['title']!r} (uid {current['uid']}) still holds {dashboards} "
                             f"dashboard(s) and {folders} subfolder(s); set force=true to delete them with it",
                         changed=False, folder=current)
    result["deleted_dashboards"] = dashboards
    if module.check_mode:
        return result
    query = "?forceDeleteRules=true" if params["force"] else ""
    client.request("DELETE", "/api/folders/" + quote_path(current["uid"]) + query, missing_ok=True)
    return result


def main():
    module = grafana_module(dict(
        uid={"type": "str"},
        title={"type": "str"},
        parent_uid={"type": "str"},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
        force={"type": "bool", "default": False},
    ), required_if=[("state", "present", ("title",))])
    params = module.params
    for key in ("uid", "parent_uid"):
        problem = uid_problem(params[key] or None, key)
        if problem:
            module.fail_json(msg=problem)
    if params["state"] == "absent" and not params["uid"] and not params["title"]:
        module.fail_json(msg="set uid or title to find the folder to delete")
    if params["title"] is not None and not params["title"].strip():
        module.fail_json(msg="title must not be empty")
    if params["uid"] and params["parent_uid"] == params["uid"]:
        module.fail_json(msg="a folder cannot be its own parent")
    run_grafana_module(module, ensure_present, ensure_absent)


if __name__ == "__main__":
    main()
