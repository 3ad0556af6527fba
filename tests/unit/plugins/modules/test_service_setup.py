# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""o11y.stack.service_setup with a scripted systemctl/useradd/groupadd/usermod and fake account databases.

Every path lives under tmp_path; ``AnsibleModule.run_command`` is replaced by ``FakeHost``, which records each
argv and answers like systemd would; the module's ``pwd``/``grp`` are wrapped by ``FakePwd``/``FakeGrp``, which
simulate the service accounts and fall back to the real databases for everything else.
"""

from __future__ import annotations

import collections
import grp
import http.server
import json
import os
import pwd
import stat
import threading

import pytest
from ansible_collections.o11y.stack.plugins.modules import service_setup

ME = pwd.getpwuid(os.getuid()).pw_name
MY_GROUP = grp.getgrgid(os.getgid()).gr_name
VALIDATOR = "o11y-test-validate"
SECRET = "o11y-test-secret-7f3a9c2e5b1d48e6a0c4f2b9d7e1a3c5-never-print-me"
UNIT = "[Unit]\nDescription=svc\n\n[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n"

PwEntry = collections.namedtuple("PwEntry", "pw_name pw_passwd pw_uid pw_gid pw_gecos pw_dir pw_shell")
GrEntry = collections.namedtuple("GrEntry", "gr_name gr_passwd gr_gid gr_mem")


class FakeHost:
    """Stands in for AnsibleModule.run_command: records argv lists, keeps the unit's enabled/active state."""

    def __init__(self):
        self.calls = []
        self.enabled = False
        self.active = False
        self.condition_met = True  # False: like an unmet ConditionPathExists, a start leaves the unit inactive
        self.validated = []  # (candidate path, its content, its mode) as the validator saw them

    def run_command(self, args, **kwargs):
        argv = [str(arg) for arg in args]
        self.calls.append(argv)
        if argv[:2] == ["systemctl", "is-enabled"]:
            return (0, "enabled\n", "") if self.enabled else (1, "disabled\n", "")
        if argv[:2] == ["systemctl", "is-active"]:
            return (0, "active\n", "") if self.active else (3, "inactive\n", "")
        if argv[:2] in (["systemctl", "enable"], ["systemctl", "disable"]):
            self.enabled = argv[1] == "enable"
        if argv[:2] in (["systemctl", "start"], ["systemctl", "stop"]):
            self.active = argv[1] == "start" and self.condition_met
        if argv[0] == "journalctl":
            return 0, "svc: listening failed: address already in use\n", ""
        if argv[0] == VALIDATOR:
            with open(argv[-1], encoding="utf-8") as handle:
                content = handle.read()
            self.validated.append((argv[-1], content, stat.S_IMODE(os.stat(argv[-1]).st_mode)))
            if "reject" in content:
                return 1, "", "line 1: unknown field"
        return 0, "", ""

    @property
    def writes(self):
        """Every command but the read-only systemctl queries."""
        return [argv for argv in self.calls if argv[:2] not in (["systemctl", "is-enabled"], ["systemctl", "is-active"])]


class FakePwd:
    def __init__(self):
        self.users = {}
        self.missing = set()

    def getpwnam(self, name):
        if name in self.missing:
            raise KeyError(name)
        if name in self.users:
            return self.users[name]
        if name == "root" and os.getuid() != 0:  # unit files are root:root; as non-root, root is "me"
            return pwd.getpwuid(os.getuid())
        return pwd.getpwnam(name)

    def getpwuid(self, uid):
        for entry in self.users.values():
            if entry.pw_uid == uid:
                return entry
        return pwd.getpwuid(uid)


class FakeGrp:
    def __init__(self):
        self.groups = {}
        self.missing = set()

    def getgrnam(self, name):
        if name in self.missing:
            raise KeyError(name)
        if name in self.groups:
            return self.groups[name]
        if name == "root" and os.getuid() != 0:
            return grp.getgrgid(os.getgid())
        return grp.getgrnam(name)

    def getgrgid(self, gid):
        for entry in self.groups.values():
            if entry.gr_gid == gid:
                return entry
        return grp.getgrgid(gid)

    def getgrall(self):
        return list(self.groups.values())


@pytest.fixture
def host(monkeypatch):
    fake = FakeHost()
    monkeypatch.setattr("ansible.module_utils.basic.AnsibleModule.run_command",
                        lambda self, args, **kwargs: fake.run_command(args, **kwargs))
    return fake


@pytest.fixture(autouse=True)
def accounts(monkeypatch):
    fake_pwd, fake_grp = FakePwd(), FakeGrp()
    monkeypatch.setattr(service_setup, "pwd", fake_pwd)
    monkeypatch.setattr(service_setup, "grp", fake_grp)
    return fake_pwd, fake_grp


@pytest.fixture
def run(run_module, host):
    def _run(check_mode=False, diff=False, **options):
        return run_module(service_setup.main, options, check_mode=check_mode, diff=diff)

    return _run


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def stack(tmp_path, **extra):
    """Options for a whole service under tmp_path/root (which does not exist yet)."""
    base = tmp_path / "root"
    options = {
        "name": "svc",
        "directories": [{"path": str(base / "etc" / "svc"), "owner": ME, "group": MY_GROUP},
                        {"path": str(base / "data"), "owner": ME, "group": MY_GROUP, "mode": "0700"}],
        "files": [{"path": str(base / "etc" / "svc" / "config.yml"), "content": "port: 1\n",
                   "owner": ME, "group": MY_GROUP, "mode": "0640"}],
        "environment_file": str(base / "etc" / "svc" / "svc.env"),
        "environment_file_content": f"KEY={SECRET}\n",
        "unit": UNIT,
        "unit_dir": str(tmp_path),
        "enabled": True,
        "state": "started",
    }
    options.update(extra)
    return options


def a_file(path, content="port: 2\n", **extra):
    return dict({"path": str(path), "content": content, "owner": ME, "group": MY_GROUP, "mode": "0640"}, **extra)


# Directories and files ----------------------------------------------------------------------------------


def test_first_run_creates_directories_files_and_unit(run, host, tmp_path):
    result = run(**stack(tmp_path))
    base = tmp_path / "root"
    assert result.exit_code == 0 and result["changed"] is True, result
    assert mode_of(base) == 0o755 and mode_of(base / "etc") == 0o755  # missing parents
    assert mode_of(base / "etc" / "svc") == 0o750 and mode_of(base / "data") == 0o700
    assert (base / "etc" / "svc" / "config.yml").read_text() == "port: 1\n"
    assert mode_of(base / "etc" / "svc" / "config.yml") == 0o640
    assert (base / "etc" / "svc" / "svc.env").read_text() == f"KEY={SECRET}\n"
    assert mode_of(base / "etc" / "svc" / "svc.env") == 0o600
    assert (tmp_path / "svc.service").read_text() == UNIT and mode_of(tmp_path / "svc.service") == 0o644
    for line in (f"created directory {base / 'etc' / 'svc'}", f"created directory {base / 'etc'}",
                 f"created directory {base}", f"created directory {base / 'data'}",
                 f"wrote {base / 'etc' / 'svc' / 'config.yml'}",
                 f"wrote {base / 'etc' / 'svc' / 'svc.env'} (secret content not shown)",
                 f"wrote {tmp_path / 'svc.service'}", "enabled svc"):
        assert line in result["changes"]
    assert result["unit_changed"] is True and result["started"] is False


def test_second_identical_run_changes_nothing(run, host, tmp_path):
    assert run(**stack(tmp_path))["changed"] is True
    host.active = True  # the caller's handler restarted the service
    host.calls.clear()
    result = run(**stack(tmp_path))
    assert result["changed"] is False and result["changes"] == [], result
    assert result["unit_changed"] is False and result["started"] is False
    assert host.writes == []


def test_mode_only_difference_is_corrected_without_rewriting(run, host, tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("port: 2\n")
    path.chmod(0o644)
    before = os.stat(path)
    result = run(files=[a_file(path, validate=f"{VALIDATOR} %s")])
    assert result["changed"] is True and result["changes"] == [f"changed {path}"]
    after = os.stat(path)
    assert stat.S_IMODE(after.st_mode) == 0o640
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert path.read_text() == "port: 2\n" and host.calls == []  # not rewritten, so not validated either


def test_existing_directory_mode_is_corrected_and_content_kept(run, tmp_path):
    directory = tmp_path / "data"
    directory.mkdir(mode=0o755)
    (directory / "keep").write_text("x")
    result = run(directories=[{"path": str(directory), "owner": ME, "group": MY_GROUP}])
    assert result["changes"] == [f"changed directory {directory}"]
    assert mode_of(directory) == 0o750 and (directory / "keep").read_text() == "x"


def test_check_mode_changes_nothing_and_reports(run, host, tmp_path):
    base = tmp_path / "root"
    options = stack(tmp_path)
    options["files"][0]["validate"] = f"{VALIDATOR} %s"
    result = run(check_mode=True, diff=True, **options)
    assert result["changed"] is True
    assert f"created directory {base / 'etc' / 'svc'}" in result["changes"]
    assert f"wrote {base / 'etc' / 'svc' / 'config.yml'}" in result["changes"]
    assert f"wrote {tmp_path / 'svc.service'}" in result["changes"] and "enabled svc" in result["changes"]
    assert not base.exists() and not (tmp_path / "svc.service").exists()
    diffs = {d["before_header"]: d for d in result["diff"]}
    assert diffs[str(base / "etc" / "svc" / "config.yml")]["after"] == "port: 1\n"
    assert diffs[str(tmp_path / "svc.service")]["after"] == UNIT
    assert host.writes == [] and host.validated == []


def test_check_mode_leaves_an_existing_file_alone(run, host, tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("port: 1\n")
    path.chmod(0o600)
    result = run(check_mode=True, diff=True, files=[a_file(path)])
    assert result["changes"] == [f"wrote {path}"]
    assert result["diff"][0]["before"] == "port: 1\n" and result["diff"][0]["after"] == "port: 2\n"
    assert path.read_text() == "port: 1\n" and mode_of(path) == 0o600
    assert os.listdir(tmp_path) == ["config.yml"]


def test_diff_mode_shows_file_and_unit_content(run, tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("port: 1\n")
    (tmp_path / "svc.service").write_text("[Unit]\nDescription=old\n")
    result = run(diff=True, name="svc", unit=UNIT, unit_dir=str(tmp_path), files=[a_file(path)])
    diffs = {d["before_header"]: d for d in result["diff"]}
    assert diffs[str(path)]["before"] == "port: 1\n" and diffs[str(path)]["after"] == "port: 2\n"
    unit = diffs[str(tmp_path / "svc.service")]
    assert unit["before"] == "[Unit]\nDescription=old\n" and unit["after"] == UNIT
    assert result["unit_changed"] is True


@pytest.mark.parametrize("check_mode", [False, True])
def test_secret_content_never_in_result(run, tmp_path, check_mode):
    path = tmp_path / "svc.env"
    path.write_text(f"KEY=old-{SECRET}-old\n")
    path.chmod(0o644)
    result = run(check_mode=check_mode, diff=True, environment_file=str(path), environment_file_content=f"KEY={SECRET}\n")
    printed = json.dumps(result)
    assert result["changes"] == [f"wrote {path} (secret content not shown)"]
    assert SECRET not in printed
    # nothing needed Ansible's no_log masking either: the module itself left the content out
    assert "********" not in json.dumps([result["changes"], result["diff"]])
    assert result["diff"][0]["after"] == "file: owner=root group=root mode=0600\n"
    assert (path.read_text() == f"KEY={SECRET}\n") is not check_mode


def test_secret_content_never_in_the_journal(run, tmp_path, monkeypatch):
    """Modules log their arguments to the journal; no file content may be among them."""
    logged = []
    monkeypatch.setattr("ansible.module_utils.basic.AnsibleModule.log",
                        lambda self, msg, log_args=None: logged.append(msg))
    result = run(**stack(tmp_path))
    assert result.exit_code == 0, result
    assert logged and all(SECRET not in msg for msg in logged)
    # nor the content of the other files (a user may put a secret into a configuration), only their paths
    assert all("port: 1" not in msg for msg in logged)
    assert any(str(tmp_path / "root" / "etc" / "svc" / "config.yml") in msg for msg in logged)


def test_environment_file_needs_its_content(run, tmp_path):
    result = run(environment_file=str(tmp_path / "svc.env"))
    assert result.exit_code == 1 and "environment_file_content" in result["msg"]


# Validation -----------------------------------------------------------------------------------------------


def test_rejecting_validator_keeps_the_old_file(run, host, tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("port: 1\n")
    result = run(files=[a_file(path, content="reject: me\n", validate=f"{VALIDATOR} --config %s")])
    assert result.exit_code == 1 and str(path) in result["msg"] and "not changed" in result["msg"]
    assert result["stderr"] == "line 1: unknown field"
    assert path.read_text() == "port: 1\n"
    assert os.listdir(tmp_path) == ["config.yml"]  # no temporary file left behind
    assert len(host.validated) == 1


def test_accepting_validator_checks_a_candidate_then_writes(run, host, tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("port: 1\n")
    result = run(files=[a_file(path, validate=f"{VALIDATOR} --config %s")])
    assert result.exit_code == 0 and result["changes"] == [f"wrote {path}"]
    [(candidate, content, mode)] = host.validated
    assert host.calls == [[VALIDATOR, "--config", candidate]]
    assert candidate != str(path) and os.path.dirname(candidate) == str(tmp_path)
    assert content == "port: 2\n" and mode == 0o640  # the new content, with its final mode
    assert path.read_text() == "port: 2\n" and mode_of(path) == 0o640
    assert os.listdir(tmp_path) == ["config.yml"]


def test_validate_without_placeholder_fails(run, tmp_path):
    path = tmp_path / "config.yml"
    result = run(files=[a_file(path, validate=f"{VALIDATOR} --config")])
    assert result.exit_code == 1 and "validate must contain %s" in result["msg"] and str(path) in result["msg"]
    assert os.listdir(tmp_path) == []


# systemd ----------------------------------------------------------------------------------------------------


def test_changed_unit_reloads_systemd_once(run, host, tmp_path):
    result = run(name="svc", unit=UNIT, unit_dir=str(tmp_path))
    assert result["unit_changed"] is True and host.writes == [["systemctl", "daemon-reload"]]
    host.calls.clear()
    result = run(name="svc", unit=UNIT, unit_dir=str(tmp_path))
    assert result["changed"] is False and result["unit_changed"] is False and host.calls == []
    result = run(name="svc", unit=UNIT + "# changed\n", unit_dir=str(tmp_path))
    assert result["unit_changed"] is True and host.writes == [["systemctl", "daemon-reload"]]


def test_disabled_unit_is_enabled(run, host):
    result = run(name="svc", enabled=True)
    assert result["changed"] is True and result["changes"] == ["enabled svc"]
    assert host.writes == [["systemctl", "enable", "svc.service"]]
    host.calls.clear()
    assert run(name="svc", enabled=True)["changed"] is False and host.writes == []


def test_enabled_unit_is_disabled(run, host):
    host.enabled = True
    result = run(name="svc", enabled=False)
    assert result["changes"] == ["disabled svc"] and host.writes == [["systemctl", "disable", "svc.service"]]


def test_stopped_unit_is_started_when_nothing_else_changed(run, host, tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("port: 2\n")
    path.chmod(0o640)
    result = run(name="svc", state="started", files=[a_file(path)])
    assert result["changed"] is True and result["started"] is True and result["changes"] == ["started svc"]
    assert host.writes == [["systemctl", "start", "svc.service"]]
    host.calls.clear()
    result = run(name="svc", state="started", files=[a_file(path)])
    assert result["changed"] is False and result["started"] is False and host.writes == []


def test_stopped_unit_is_not_started_when_a_file_changed(run, host, tmp_path):
    path = tmp_path / "config.yml"
    result = run(name="svc", state="started", files=[a_file(path)])
    assert result["changed"] is True and result["started"] is False
    assert result["changes"] == [f"wrote {path}"]
    assert ["systemctl", "start", "svc.service"] not in host.calls


def test_check_mode_reports_a_start_without_starting(run, host):
    result = run(check_mode=True, name="svc", state="started", enabled=True)
    assert result["changes"] == ["enabled svc", "started svc"] and result["started"] is True
    assert host.writes == []


def test_state_stopped_stops_an_active_unit(run, host):
    host.active = True
    result = run(name="svc", state="stopped")
    assert result["changed"] is True and result["changes"] == ["stopped svc"]
    assert host.writes == [["systemctl", "stop", "svc.service"]]
    host.calls.clear()
    assert run(name="svc", state="stopped")["changed"] is False and host.writes == []


def test_failing_systemctl_fails_the_module(run, host, monkeypatch):
    monkeypatch.setattr("ansible.module_utils.basic.AnsibleModule.run_command",
                        lambda self, args, **kwargs: (1, "", "Unit svc.service not found.")
                        if args[:2] == ["systemctl", "start"] else host.run_command(args, **kwargs))
    result = run(name="svc", state="started")
    assert result.exit_code == 1
    assert result["msg"] == "systemctl start svc.service failed (rc=1): Unit svc.service not found."


# Accounts ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("groups, extra", [([], []), (["adm", "audio"], ["--groups", "adm,audio"])])
def test_missing_group_and_user_are_created(run, host, accounts, groups, extra):
    fake_pwd, fake_grp = accounts
    fake_pwd.missing.add("o11ysvc")
    fake_grp.missing.add("o11ysvc")
    result = run(user="o11ysvc", groups=groups, home="/var/lib/o11ysvc")
    assert result["changed"] is True and result["changes"] == ["created group o11ysvc", "created user o11ysvc"]
    assert host.calls == [
        ["groupadd", "--system", "o11ysvc"],
        ["useradd", "--system", "--gid", "o11ysvc", "--home-dir", "/var/lib/o11ysvc", "--no-create-home",
         "--shell", "/usr/sbin/nologin"] + extra + ["o11ysvc"],
    ]


def test_missing_user_needs_a_home(run, host, accounts):
    accounts[0].missing.add("o11ysvc")
    accounts[1].groups["o11ysvc"] = GrEntry("o11ysvc", "x", 60001, [])
    result = run(user="o11ysvc")
    assert result.exit_code == 1 and result["msg"] == "home is required to create the user o11ysvc"
    assert host.calls == []


def test_check_mode_reports_accounts_without_creating(run, host, accounts):
    accounts[0].missing.add("o11ysvc")
    accounts[1].missing.add("o11ygrp")
    result = run(check_mode=True, diff=True, user="o11ysvc", group="o11ygrp", home="/var/lib/o11ysvc")
    assert result["changes"] == ["created group o11ygrp", "created user o11ysvc"] and host.calls == []
    assert result["diff"][1]["after"] == \
        "user o11ysvc: group=o11ygrp groups= home=/var/lib/o11ysvc shell=/usr/sbin/nologin\n"


def existing_user(accounts, member_of):
    fake_pwd, fake_grp = accounts
    fake_grp.groups["o11ysvc"] = GrEntry("o11ysvc", "x", 60001, [])
    for gid, name in enumerate(["adm", "audio", "video"], start=60002):
        fake_grp.groups[name] = GrEntry(name, "x", gid, ["o11ysvc"] if name in member_of else [])
    fake_pwd.users["o11ysvc"] = PwEntry("o11ysvc", "x", 60001, 60001, "", "/var/lib/o11ysvc", "/usr/sbin/nologin")


def test_existing_user_with_other_groups_is_changed(run, host, accounts):
    existing_user(accounts, member_of=["adm", "video"])
    result = run(diff=True, user="o11ysvc", groups=["audio", "adm"], home="/var/lib/o11ysvc")
    assert result["changes"] == ["changed user o11ysvc"]
    assert host.calls == [["usermod", "--groups", "audio,adm", "o11ysvc"]]
    assert result["diff"][0]["before"] == \
        "user o11ysvc: group=o11ysvc groups=adm,video home=/var/lib/o11ysvc shell=/usr/sbin/nologin\n"


def test_existing_user_in_the_right_groups_is_left_alone(run, host, accounts):
    existing_user(accounts, member_of=["adm", "audio"])
    result = run(user="o11ysvc", groups=["audio", "adm"], home="/var/lib/o11ysvc")
    assert result["changed"] is False and host.calls == []


def test_existing_user_with_other_shell_and_home(run, host, accounts):
    existing_user(accounts, member_of=[])
    result = run(user="o11ysvc", home="/srv/o11ysvc", shell="/bin/false")
    assert host.calls == [["usermod", "--home", "/srv/o11ysvc", "--shell", "/bin/false", "o11ysvc"]]
    assert result["changes"] == ["changed user o11ysvc"]


def test_account_change_prevents_the_start(run, host, accounts):
    existing_user(accounts, member_of=[])
    result = run(name="svc", state="started", user="o11ysvc", groups=["adm"])
    assert result["started"] is False and ["systemctl", "start", "svc.service"] not in host.calls


def test_root_is_never_created(run, host, accounts):
    accounts[0].missing.add("root")
    accounts[1].missing.add("root")
    result = run(user="root", home="/root")
    assert result["changed"] is False and host.calls == []
    result = run(user="o11ysvc", group="root", home="/var/lib/o11ysvc", check_mode=True)
    assert "created group root" not in result["changes"]


# Bad input --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["rw-r", "u=rw", "0999", "64", "077777", 0o10000, -1, True])
def test_bad_mode_fails(run, tmp_path, mode):
    path = tmp_path / "config.yml"
    result = run(files=[a_file(path, mode=mode)])
    assert result.exit_code == 1
    assert result["msg"] == f"{path}: mode must be an octal string such as '0640', got {mode!r}"
    assert not path.exists()


@pytest.mark.parametrize("mode, expected", [(416, 0o640), ("2750", 0o2750), ("02750", 0o2750), ("640", 0o640)])
def test_numeric_and_special_modes(run, tmp_path, mode, expected):
    """A number is the mode itself (416 is what YAML makes of an unquoted 0640); setgid/sticky bits are allowed."""
    path = tmp_path / "config.yml"
    result = run(files=[a_file(path, mode=mode)])
    assert result.exit_code == 0, result
    assert mode_of(path) == expected


def test_relative_path_fails(run, host):
    result = run(directories=[{"path": "var/lib/svc", "owner": ME, "group": MY_GROUP}])
    assert result.exit_code == 1 and result["msg"] == "var/lib/svc: paths must be absolute"
    assert host.calls == []


@pytest.mark.parametrize("option", [{"unit": UNIT}, {"enabled": True}, {"state": "started"}])
def test_unit_state_without_name_fails(run, host, option):
    result = run(**option)
    assert result.exit_code == 1 and "name" in result["msg"]
    assert host.calls == []


def test_file_in_missing_directory_fails(run, tmp_path):
    path = tmp_path / "missing" / "config.yml"
    result = run(files=[a_file(path)])
    assert result.exit_code == 1 and "list it in directories" in result["msg"] and str(path) in result["msg"]


# Found bugs -------------------------------------------------------------------------------------------------


def test_check_mode_reports_the_missing_parents_too(run, tmp_path):
    """BUG: check mode leaves the missing parent directories out of `changes` (the real run lists them)."""
    options = {"directories": [{"path": str(tmp_path / "a" / "b" / "c"), "owner": ME, "group": MY_GROUP}]}
    predicted = run(check_mode=True, **options)["changes"]
    actual = run(**options)["changes"]
    assert sorted(predicted) == sorted(actual)


def test_directory_behind_a_symlink_is_idempotent(run, tmp_path):
    """BUG: a directory that is a symlink (e.g. /var/lib/svc -> /data/svc) is "changed" on every run."""
    target = tmp_path / "data"
    target.mkdir()
    target.chmod(0o750)
    (tmp_path / "link").symlink_to(target)
    options = {"directories": [{"path": str(tmp_path / "link"), "owner": ME, "group": MY_GROUP}]}
    run(**options)
    assert mode_of(target) == 0o750
    again = run(**options)
    assert again["changed"] is False, again["changes"]


def test_file_behind_a_symlink_is_idempotent(run, tmp_path):
    """BUG: a file that is a symlink to a file with the wanted content, owner and mode is "changed" on every run."""
    target = tmp_path / "real.yml"
    target.write_text("port: 2\n")
    target.chmod(0o640)
    (tmp_path / "config.yml").symlink_to(target)
    result = run(files=[a_file(tmp_path / "config.yml")])
    assert result["changed"] is False, result["changes"]


# Readiness -----------------------------------------------------------------------------------------------


@pytest.fixture
def ready_server():
    """An HTTP server on 127.0.0.1 answering ready_server.status to GET /ready; counts the requests."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            server.requests += 1
            self.send_response(server.status)
            self.end_headers()
            self.wfile.write(b"ready\n" if server.status == 200 else b"not ready\n")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.status, server.requests = 200, 0
    server.url = f"http://127.0.0.1:{server.server_address[1]}/ready"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_unchanged_running_service_is_polled_until_ready(run, host, tmp_path, ready_server):
    run(**stack(tmp_path))
    host.active = True
    result = run(**stack(tmp_path, ready_url=ready_server.url))
    assert result.exit_code == 0, result
    assert result["changed"] is False and result["ready"] is True and result["name"] == "svc"
    assert ready_server.requests == 1


def test_changed_service_is_not_polled(run, host, tmp_path, ready_server):
    """Its restart comes later (the caller's handler), and is polled then."""
    host.active = True
    result = run(**stack(tmp_path, ready_url=ready_server.url))
    assert result.exit_code == 0 and result["changed"] is True
    assert result["ready"] is False and ready_server.requests == 0


def test_not_polled_in_check_mode(run, host, tmp_path, ready_server):
    result = run(check_mode=True, name="svc", ready_url=ready_server.url)
    assert result.exit_code == 0 and result["ready"] is False and ready_server.requests == 0


def test_readiness_check_alone(run, host, ready_server):
    result = run(name="svc", ready_url=ready_server.url, ready_status=204, ready_timeout=0)
    assert result.exit_code == 1  # answers 200, not the 204 asked for
    ready_server.status = 204
    host.calls.clear()
    result = run(name="svc", ready_url=ready_server.url, ready_status=204)
    assert result.exit_code == 0 and result["ready"] is True and result["changed"] is False
    assert host.writes == []


def test_unready_service_fails_with_the_answer_and_the_journal(run, host, ready_server):
    ready_server.status = 503
    result = run(name="svc", ready_url=ready_server.url, ready_timeout=1)
    assert result.exit_code == 1
    assert result["msg"].startswith(f"svc did not become ready within 1s: {ready_server.url} answered 503")
    assert "Last journal lines of svc:\nsvc: listening failed: address already in use" in result["msg"]
    assert ["journalctl", "--unit", "svc.service", "--lines", "40", "--no-pager", "--output", "cat"] in host.calls
    assert ready_server.requests >= 2  # polled again after a second


def test_unreachable_service_fails_with_the_error(run, host, closed_port_url):
    result = run(name="svc", ready_url=closed_port_url + "/ready", ready_timeout=0)
    assert result.exit_code == 1
    assert "answered nothing" in result["msg"] and "refused" in result["msg"].lower()


def test_started_service_is_polled(run, host, tmp_path, ready_server):
    run(**stack(tmp_path))
    result = run(**stack(tmp_path, ready_url=ready_server.url))
    assert result["started"] is True and result["ready"] is True and ready_server.requests == 1


def test_unit_left_inactive_by_its_condition_is_not_polled(run, host, tmp_path, ready_server):
    """Its configuration comes later (the config entry point): the restart after it is polled instead."""
    run(**stack(tmp_path))
    host.condition_met = False
    result = run(**stack(tmp_path, ready_url=ready_server.url, ready_timeout=0))
    assert result.exit_code == 0, result
    assert result["started"] is True and result["ready"] is False and ready_server.requests == 0
