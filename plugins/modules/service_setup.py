# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: service_setup
short_description: Ensure a systemd service's account, directories, files and unit in one module run
version_added: 0.1.0
description:
  - Brings everything a service needs on its host to the wanted state in one pass, in this order. The system
    group and user, the directories, the environment file (secrets), the files, the systemd unit, its
    enablement and its running state.
  - One module run instead of one per account, directory, file and unit keeps an idempotent re-run of
    a whole stack short; every item is still compared and only what differs is changed.
  - A file with O(files[].validate) is written to a temporary file beside its destination, checked with
    that command, and renamed into place only when the check exits 0, so a rejected configuration never
    replaces a working one.
  - The module never restarts a running service. When it changed the account, a file or the unit, it
    reports C(changed) and leaves the (re)start to the caller, which restarts the service once after all
    its changes (in o11y.stack, the handler of the component role). A service that is not running while
    nothing else changed is started when O(state=started).
  - With O(ready_url) it also waits until the service answers ready, so a re-run that changed nothing needs
    no further task to gate on readiness; with only O(name) and O(ready_url) it is a readiness check.
  - Idempotent; supports check mode and diff mode.
author:
  - o11y.stack maintainers (@o11y-stack)
options:
  name:
    description:
      - Name of the systemd unit, without C(.service).
      - Required with O(unit), O(enabled) or O(state). Without it, only the account, directories and files
        are ensured (for example a configuration file written after a database migration).
    type: str
  unit:
    description:
      - Content of the unit file C(<unit_dir>/<name>.service), owned by root, mode C(0644).
      - A changed unit file is followed by C(systemctl daemon-reload).
    type: str
  unit_dir:
    description: Directory of the unit file.
    type: path
    default: /etc/systemd/system
  enabled:
    description:
      - Whether the unit starts at boot. V(null) leaves the enablement as it is.
    type: bool
  state:
    description:
      - V(started) starts a service that is not running, unless this run changed its account, a file or
        its unit (then the caller restarts it once; see the description).
      - V(stopped) stops a running service.
      - V(null) leaves the running state as it is.
    type: str
    choices: [started, stopped]
  ready_url:
    description:
      - Readiness URL of the service, queried from the host. When set, and the module leaves the service running
        without a change that needs a restart (or O(state) is V(null)), it polls the URL every second until it
        answers O(ready_status), and fails after O(ready_timeout) seconds with the last answer and the last
        journal lines of the unit. Not polled in check mode, nor when the unit stays inactive after its start
        (an unmet condition, such as a configuration file written later).
    type: str
  ready_status:
    description: HTTP status code that means ready.
    type: int
    default: 200
  ready_timeout:
    description: Seconds to wait for readiness.
    type: int
    default: 120
  ready_validate_certs:
    description: Validate the TLS certificate of O(ready_url).
    type: bool
    default: true
  user:
    description:
      - System user the service runs as, created with C(useradd --system) when missing. Its primary group is
        O(group), its supplementary groups exactly O(groups), its home O(home) (never created) and its shell
        O(shell); an existing user that differs is changed with C(usermod).
      - V(root) and V(null) leave accounts alone.
    type: str
  group:
    description:
      - Primary group of O(user), created with C(groupadd --system) when missing. V(root) is never created.
      - Defaults to O(user).
    type: str
  groups:
    description: The supplementary groups of O(user), exactly; other memberships are removed.
    type: list
    elements: str
    default: []
  home:
    description: Home directory of O(user). Required when O(user) is created.
    type: path
  shell:
    description: Login shell of O(user).
    type: path
    default: /usr/sbin/nologin
  directories:
    description:
      - Directories to create, in this order. Missing parents are created as root-owned C(0755)
        directories. Owner, group and mode of an existing directory are corrected; its content is left alone.
        A symlink to a directory stands for its target.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      owner:
        description: Owner. Defaults to O(user), or V(root) without O(user).
        type: str
      group:
        description: Group. Defaults to O(group), or V(root) without O(group).
        type: str
      mode:
        description:
          - Mode as an octal string, for example V("0750"), or a number (an unquoted V(0750) in YAML is the same mode).
        type: raw
        default: "0750"
  files:
    description:
      - Files to write, in this order, after the directories. Their content is shown in diff mode.
      - A symlink stands for its target, which is compared and written (the link stays).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path; its directory must exist or be listed in O(directories).
        type: path
        required: true
      content:
        description: Full content of the file.
        type: str
        required: true
      owner:
        description: Owner.
        type: str
        default: root
      group:
        description: Group.
        type: str
        default: root
      mode:
        description: Mode as an octal string, for example V("0640"), or a number.
        type: raw
        default: "0644"
      validate:
        description:
          - Command that checks a candidate file, with C(%s) where its path goes; the file is replaced only
            when the command exits 0. Not run in check mode.
        type: str
  environment_file:
    description:
      - Path of the file of secrets and settings that the unit reads (C(EnvironmentFile=)), owned by root,
        mode C(0600). Written before O(files). Requires O(environment_file_content).
    type: path
  environment_file_content:
    description:
      - Full content of O(environment_file). Never logged and never shown in diff mode; only its ownership and
        mode are.
    type: str
attributes:
  check_mode:
    support: full
    description: Reports what would change, with the diff, and changes nothing; O(files[].validate) is not run.
  diff_mode:
    support: full
    description: Returns a diff per changed account, directory and file; the content of O(environment_file) is left out.
  platform:
    platforms: posix
    support: full
    description: Linux hosts with systemd and the shadow utilities (C(useradd), C(groupadd), C(usermod)).
notes:
  - Runs as root (C(become)), like the changes it makes.
  - The invocation the module logs to the system journal names the files but leaves out their content, which
    may hold secrets.
seealso:
  - module: ansible.builtin.user
  - module: ansible.builtin.template
  - module: ansible.builtin.systemd_service
"""

EXAMPLES = r"""
- name: Everything Loki needs on its host
  o11y.stack.service_setup:
    name: loki
    user: loki
    group: loki
    home: /var/lib/loki
    directories:
      - {path: /etc/o11y/loki, owner: root, mode: "0750"}
      - {path: /var/lib/loki}
    environment_file: /etc/o11y/loki/loki.env
    environment_file_content: 'S3_SECRET_KEY="{{ s3_secret_key }}"'
    files:
      - path: /etc/o11y/loki/config.yml
        content: "{{ loki_config | to_nice_yaml }}"
        group: loki
        mode: "0640"
        validate: /opt/o11y/loki/current/loki -config.file=%s -verify-config
    unit: "{{ lookup('ansible.builtin.template', 'loki.service.j2') }}"
    enabled: true
    state: started
  notify: Restart loki

- name: A configuration file written later, after a migration
  o11y.stack.service_setup:
    files:
      - path: /etc/o11y/oncall/uwsgi.ini
        content: "{{ lookup('ansible.builtin.template', 'uwsgi.ini.j2') }}"
        group: oncall
        mode: "0640"
"""

RETURN = r"""
changes:
  description: What changed (or would change in check mode), one line per item.
  returned: always
  type: list
  elements: str
  sample: ["created user loki", "wrote /etc/o11y/loki/config.yml", "enabled loki"]
unit_changed:
  description: Whether the unit file changed (then systemd was reloaded).
  returned: always
  type: bool
  sample: false
started:
  description: Whether the module started the service.
  returned: always
  type: bool
  sample: false
name:
  description: The unit name, O(name).
  returned: always
  type: str
  sample: loki
ready:
  description: Whether the module polled O(ready_url) and the service answered ready.
  returned: always
  type: bool
  sample: true
"""

import grp
import os
import pwd
import re
import shlex
import tempfile
import time
from urllib.error import HTTPError

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

MODE_RE = re.compile(r"^0?[0-7]{3,4}$")
RUNNING = ("active", "activating", "reloading")
# is-enabled answers that need no `systemctl enable` (enabled-runtime does: it ends at reboot).
ENABLED = ("enabled", "alias", "static", "indirect", "generated")


class ServiceSetupModule(AnsibleModule):
    """Logs its invocation to the journal with the files' paths, not their content.

    AnsibleModule logs every argument; configuration files may carry secrets that a user
    put into them (as ansible.builtin.copy keeps its content option out of the log).
    """

    def _log_invocation(self):
        shown = {key: value for key, value in self.params.items()
                 if key not in ("files", "environment_file_content")}
        shown["files"] = [item["path"] for item in self.params["files"]]
        self.log("Invoked with " + " ".join(f"{key}={value}" for key, value in shown.items()))


class Setup:
    """Compares and changes one service's host state; records changes and diffs."""

    def __init__(self, module):
        self.module = module
        self.check = module.check_mode
        self.changes = []
        self.diffs = []
        self.account_changed = False
        self.files_changed = False
        # Whether the unit runs after this module's actions; None when its state was not asked for.
        self.running = None

    def record(self, change, before=None, after=None, header=None):
        self.changes.append(change)
        if before is not None or after is not None:
            self.diffs.append({
                "before_header": header or change,
                "after_header": header or change,
                "before": before or "",
                "after": after or "",
            })

    def run(self, argv, fail=True):
        rc, out, err = self.module.run_command(argv, environ_update={"LC_ALL": "C"})
        if rc != 0 and fail:
            self.module.fail_json(msg=f"{shlex.join(argv)} failed (rc={rc}): {(err or out).strip()}", rc=rc)
        return rc, out.strip(), err.strip()

    # Accounts ---------------------------------------------------------------------------------------

    def ensure_group(self, name):
        try:
            grp.getgrnam(name)
            return
        except KeyError:
            pass
        self.account_changed = True
        self.record(f"created group {name}", "", f"group {name} (system)\n", f"group {name}")
        if not self.check:
            self.run(["groupadd", "--system", name])

    @staticmethod
    def describe_user(name, group, groups, home, shell):
        return f"user {name}: group={group} groups={','.join(sorted(groups))} home={home} shell={shell}\n"

    def ensure_user(self, name, group, groups, home, shell):
        wanted = self.describe_user(name, group, groups, home, shell)
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            if not home:
                self.module.fail_json(msg=f"home is required to create the user {name}")
            self.account_changed = True
            self.record(f"created user {name}", "", wanted, f"user {name}")
            if not self.check:
                argv = ["useradd", "--system", "--gid", group, "--home-dir", home, "--no-create-home",
                        "--shell", shell]
                if groups:
                    argv += ["--groups", ",".join(groups)]
                self.run(argv + [name])
            return
        try:
            current_group = grp.getgrgid(entry.pw_gid).gr_name
        except KeyError:
            current_group = str(entry.pw_gid)
        current_groups = sorted(g.gr_name for g in grp.getgrall() if name in g.gr_mem)
        argv = ["usermod"]
        if current_group != group:
            argv += ["--gid", group]
        if sorted(set(groups)) != current_groups:
            argv += ["--groups", ",".join(groups)]
        if home and entry.pw_dir != home:
            argv += ["--home", home]
        if entry.pw_shell != shell:
            argv += ["--shell", shell]
        if len(argv) == 1:
            return
        self.account_changed = True
        before = self.describe_user(name, current_group, current_groups, entry.pw_dir, entry.pw_shell)
        self.record(f"changed user {name}", before, self.describe_user(name, group, groups, home or entry.pw_dir, shell),
                    f"user {name}")
        if not self.check:
            self.run(argv + [name])

    # Ownership and modes ----------------------------------------------------------------------------

    def ids(self, owner, group):
        """uid and gid, or None for an account that does not exist yet (check mode)."""
        try:
            uid = pwd.getpwnam(owner).pw_uid
        except KeyError:
            uid = None
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            gid = None
        if (uid is None or gid is None) and not self.check:
            self.module.fail_json(msg=f"unknown owner {owner} or group {group}: create the account first")
        return uid, gid

    def mode(self, value, path):
        """The numeric mode of an octal string ("0640"), or of a number (what YAML makes of 0640)."""
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o7777:
            return value
        if isinstance(value, str) and MODE_RE.match(value):
            return int(value, 8)
        self.module.fail_json(msg=f"{path}: mode must be an octal string such as '0640', got {value!r}")

    @staticmethod
    def mode_text(mode):
        return oct(mode)[2:].zfill(4)

    @staticmethod
    def stat_or_none(path):
        """os.stat of path (a symlink stands for its target), None when it does not exist."""
        try:
            return os.stat(path)
        except FileNotFoundError:
            return None

    @staticmethod
    def has_attributes(current, uid, gid, mode):
        return current is not None and (current.st_uid, current.st_gid, current.st_mode & 0o7777) == (uid, gid, mode)

    @staticmethod
    def describe(kind, stat_result):
        if stat_result is None:
            return f"{kind}: absent\n"
        try:
            owner = pwd.getpwuid(stat_result.st_uid).pw_name
        except KeyError:
            owner = str(stat_result.st_uid)
        try:
            group = grp.getgrgid(stat_result.st_gid).gr_name
        except KeyError:
            group = str(stat_result.st_gid)
        return f"{kind}: owner={owner} group={group} mode={Setup.mode_text(stat_result.st_mode & 0o7777)}\n"

    # Directories ------------------------------------------------------------------------------------

    def ensure_parents(self, path):
        missing = []
        parent = os.path.dirname(path.rstrip("/"))
        while parent and parent != "/" and not os.path.isdir(parent):
            missing.append(parent)
            parent = os.path.dirname(parent)
        for directory in reversed(missing):
            self.record(f"created directory {directory}", "directory: absent\n",
                        "directory: owner=root group=root mode=0755\n", directory)
            if not self.check:
                os.mkdir(directory, 0o755)
                os.chmod(directory, 0o755)

    def ensure_directory(self, path, owner, group, mode_value):
        mode = self.mode(mode_value, path)
        uid, gid = self.ids(owner, group)
        wanted = f"directory: owner={owner} group={group} mode={self.mode_text(mode)}\n"
        # A symlink to a directory (e.g. a data directory moved to another disk) stands for its target.
        current = self.stat_or_none(path)
        if current is not None and not os.path.isdir(path):
            self.module.fail_json(msg=f"{path} exists and is not a directory")
        if self.has_attributes(current, uid, gid, mode):
            return
        self.files_changed = True
        if current is None:
            self.ensure_parents(path)
        verb = "created" if current is None else "changed"
        self.record(f"{verb} directory {path}", self.describe("directory", current), wanted, path)
        if self.check:
            return
        if current is None:
            os.mkdir(path, mode)
        os.chown(path, uid, gid)
        os.chmod(path, mode)

    # Files ------------------------------------------------------------------------------------------

    def ensure_file(self, path, content, owner, group, mode_value, validate=None, secret=False):
        mode = self.mode(mode_value, path)
        uid, gid = self.ids(owner, group)
        data = content.encode("utf-8")
        # A symlink stands for its target, which is compared and written in place of the link.
        target = os.path.realpath(path)
        current = self.stat_or_none(target)
        if current is not None and not os.path.isfile(target):
            self.module.fail_json(msg=f"{path} exists and is not a regular file")
        old = None
        if current is not None:
            with open(target, "rb") as handle:
                old = handle.read()
        if old == data and self.has_attributes(current, uid, gid, mode):
            return False
        self.files_changed = True
        wanted = f"file: owner={owner} group={group} mode={self.mode_text(mode)}\n"
        if old == data:
            change = (f"changed {path}", self.describe("file", current), wanted)
        elif secret:
            change = (f"wrote {path} (secret content not shown)", self.describe("file", current), wanted)
        else:
            change = (f"wrote {path}", "" if old is None else old.decode("utf-8", "replace"), content)
        if not self.check:
            if old == data:
                os.chown(target, uid, gid)
                os.chmod(target, mode)
            else:
                self.replace_file(path, target, data, uid, gid, mode, validate)
        self.record(*change, header=path)
        return True

    def replace_file(self, path, target, data, uid, gid, mode, validate):
        """Writes a candidate beside the target, has it validated, renames it into place."""
        directory, base = os.path.split(target)
        if not os.path.isdir(directory):
            self.module.fail_json(msg=f"{path}: its directory {directory} does not exist; list it in directories")
        handle, tmp = tempfile.mkstemp(prefix=".", suffix="." + base, dir=directory)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.chown(tmp, uid, gid)
            os.chmod(tmp, mode)
            if validate:
                argv = [part.replace("%s", tmp) for part in shlex.split(validate)]
                rc, out, err = self.module.run_command(argv)
                if rc != 0:
                    self.module.fail_json(
                        msg=f"{path} was not changed: its validation command ({validate}) rejected the new content (rc={rc})",
                        rc=rc, stdout=out, stderr=err, changes=self.changes)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    # systemd ----------------------------------------------------------------------------------------

    def ensure_unit_state(self, name, enabled, state, unit_changed):
        if unit_changed and not self.check:
            self.run(["systemctl", "daemon-reload"])
        unit = f"{name}.service"
        if enabled is not None:
            rc, out, _err = self.run(["systemctl", "is-enabled", unit], fail=False)
            is_enabled = rc == 0 and out in ENABLED
            if enabled != is_enabled and (enabled or out.startswith("enabled")):
                verb = "enable" if enabled else "disable"
                self.record(f"{verb}d {name}")
                if not self.check:
                    self.run(["systemctl", verb, unit])
        started = False
        if state is not None:
            _rc, out, _err = self.run(["systemctl", "is-active", unit], fail=False)
            running = out in RUNNING
            if state == "stopped" and running:
                self.record(f"stopped {name}")
                if not self.check:
                    self.run(["systemctl", "stop", unit])
            # A changed service is (re)started by the caller, once, after all its changes.
            elif state == "started" and not running and not (self.account_changed or self.files_changed):
                self.record(f"started {name}")
                started = True
                if not self.check:
                    self.run(["systemctl", "start", unit])
                    # An unmet condition (ConditionPathExists: its configuration comes later) leaves it inactive.
                    _rc, out, _err = self.run(["systemctl", "is-active", unit], fail=False)
                    running = out in RUNNING
            self.running = running and state == "started"
        return started

    def wait_ready(self, name, url, status, timeout, validate_certs):
        """Polls url every second until it answers status; fails after timeout seconds with the journal."""
        deadline = time.monotonic() + timeout
        answer, error = None, ""
        while True:
            try:
                response = open_url(url, timeout=5, validate_certs=validate_certs, follow_redirects="safe")
                answer, error = response.status, ""
            except HTTPError as exc:
                answer, error = exc.code, ""
            except Exception as exc:  # pylint: disable=broad-exception-caught  # refused, timeout, TLS: keep polling
                answer, error = None, str(exc)
            if answer == status:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(1)
        _rc, journal, _err = self.run(["journalctl", "--unit", f"{name}.service", "--lines", "40", "--no-pager",
                                       "--output", "cat"], fail=False)
        self.module.fail_json(
            msg=f"{name} did not become ready within {timeout}s: {url} answered {answer or 'nothing'} {error}".rstrip()
            + f"\nLast journal lines of {name}:\n{journal or '(journal unavailable)'}",
            status=answer, changes=self.changes)


def main():
    file_options = {
        "path": {"type": "path", "required": True},
        "content": {"type": "str", "required": True},
        "owner": {"type": "str", "default": "root"},
        "group": {"type": "str", "default": "root"},
        "mode": {"type": "raw", "default": "0644"},
        "validate": {"type": "str"},
    }
    module = ServiceSetupModule(
        argument_spec={
            "name": {"type": "str"},
            "unit": {"type": "str"},
            "unit_dir": {"type": "path", "default": "/etc/systemd/system"},
            "enabled": {"type": "bool"},
            "state": {"type": "str", "choices": ["started", "stopped"]},
            "ready_url": {"type": "str"},
            "ready_status": {"type": "int", "default": 200},
            "ready_timeout": {"type": "int", "default": 120},
            "ready_validate_certs": {"type": "bool", "default": True},
            "user": {"type": "str"},
            "group": {"type": "str"},
            "groups": {"type": "list", "elements": "str", "default": []},
            "home": {"type": "path"},
            "shell": {"type": "path", "default": "/usr/sbin/nologin"},
            "directories": {
                "type": "list", "elements": "dict", "default": [],
                "options": {
                    "path": {"type": "path", "required": True},
                    "owner": {"type": "str"},
                    "group": {"type": "str"},
                    "mode": {"type": "raw", "default": "0750"},
                },
            },
            "files": {"type": "list", "elements": "dict", "default": [], "options": file_options},
            "environment_file": {"type": "path"},
            "environment_file_content": {"type": "str", "no_log": True},
        },
        required_by={"unit": "name", "enabled": "name", "state": "name", "ready_url": "name"},
        required_together=[("environment_file", "environment_file_content")],
        supports_check_mode=True,
    )
    params = module.params
    name = params["name"]
    user = params["user"]
    group = params["group"] or user
    paths = [item["path"] for item in params["directories"] + params["files"]]
    for path in paths + ([params["environment_file"]] if params["environment_file"] else []):
        if not os.path.isabs(path):
            module.fail_json(msg=f"{path}: paths must be absolute")
    for item in params["files"]:
        if item["validate"] and "%s" not in item["validate"]:
            module.fail_json(msg=f"{item['path']}: validate must contain %s (where the candidate file goes), "
                                 f"got {item['validate']!r}")

    setup = Setup(module)
    if group and group != "root":
        setup.ensure_group(group)
    if user and user != "root":
        setup.ensure_user(user, group, params["groups"], params["home"], params["shell"])
    for directory in params["directories"]:
        setup.ensure_directory(directory["path"], directory["owner"] or user or "root",
                               directory["group"] or group or "root", directory["mode"])
    if params["environment_file"]:
        setup.ensure_file(params["environment_file"], params["environment_file_content"], "root", "root", "0600",
                          secret=True)
    for item in params["files"]:
        setup.ensure_file(item["path"], item["content"], item["owner"], item["group"], item["mode"],
                          validate=item["validate"])
    unit_changed = False
    if params["unit"] is not None:
        unit_path = os.path.join(params["unit_dir"], f"{name}.service")
        unit_changed = setup.ensure_file(unit_path, params["unit"], "root", "root", "0644")
    started = False
    if name:
        started = setup.ensure_unit_state(name, params["enabled"], params["state"], unit_changed)

    # Readiness of a service left running as it was (a changed one is polled after the caller's restart).
    ready = False
    pending_restart = setup.account_changed or setup.files_changed
    if params["ready_url"] and not module.check_mode and setup.running is not False and not pending_restart:
        setup.wait_ready(name, params["ready_url"], params["ready_status"], params["ready_timeout"],
                         params["ready_validate_certs"])
        ready = True
    result = {"changed": bool(setup.changes), "changes": setup.changes, "unit_changed": unit_changed,
              "started": started, "ready": ready, "name": name}
    if module._diff:
        result["diff"] = setup.diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
