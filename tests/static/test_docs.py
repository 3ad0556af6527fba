"""Docs and examples: the generated variables reference, the cluster inventory, the uninstall playbook."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT, tool

GENERATOR = ROOT / "tools" / "gen_variables_doc.py"
STORE_GROUPS = ["minio", "mimir", "loki", "tempo", "pyroscope"]
COMPONENT_ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir() and p.name != "common")


def run(*cmd: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_variables_doc_is_current() -> None:
    proc = run(sys.executable, str(GENERATOR), "--check")
    assert proc.returncode == 0, "docs/variables.md is stale; run `python tools/gen_variables_doc.py`:\n" + proc.stdout


def test_variables_doc_covers_every_role_and_variable() -> None:
    text = (ROOT / "docs/variables.md").read_text()
    for spec_file in sorted((ROOT / "roles").glob("*/meta/argument_specs.yml")):
        role = spec_file.parts[-3]
        assert f"\n## {role}\n" in text, f"{role} has no section"
        main = yaml.safe_load(spec_file.read_text())["argument_specs"]["main"]
        for name in main.get("options", {}):
            assert f"| `{name}` |" in text, f"{role}: {name} is not in docs/variables.md"


def test_check_fails_on_a_stale_file_and_new_roles_are_picked_up(tmp_path: Path) -> None:
    # A copy of the roles, so the test can change a spec and add a role.
    shutil.copytree(ROOT / "roles", tmp_path / "roles",
                    ignore=shutil.ignore_patterns("files", "templates", "handlers"))
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs/variables.md", tmp_path / "docs/variables.md")
    assert run(sys.executable, str(GENERATOR), "--check", "--root", str(tmp_path)).returncode == 0

    new_role = tmp_path / "roles" / "newcomer"
    (new_role / "tasks").mkdir(parents=True)
    (new_role / "tasks/main.yml").write_text("---\n[]\n")
    (new_role / "meta").mkdir()
    (new_role / "meta/argument_specs.yml").write_text(yaml.safe_dump({"argument_specs": {"main": {
        "short_description": "A role added later",
        "options": {
            "newcomer_port": {"type": "int", "default": 8080, "description": "Port | with a pipe."},
            "newcomer_peers": {"type": "list", "elements": "dict", "required": True, "description": "Peers.",
                               "options": {"host": {"type": "str", "required": True, "description": "Host."}}},
        }}}}))
    proc = run(sys.executable, str(GENERATOR), "--check", "--root", str(tmp_path))
    assert proc.returncode == 1, proc.stdout
    assert "+## newcomer" in proc.stdout, proc.stdout
    assert "+| `newcomer_port` | int | `8080` |  |  | Port \\| with a pipe. |" in proc.stdout, proc.stdout
    assert "+| `newcomer_peers.host` | str |  | yes |  | Host. |" in proc.stdout, proc.stdout

    # Writing it makes --check pass again, and a second generation is byte-identical.
    assert run(sys.executable, str(GENERATOR), "--root", str(tmp_path)).returncode == 0
    first = (tmp_path / "docs/variables.md").read_bytes()
    assert run(sys.executable, str(GENERATOR), "--check", "--root", str(tmp_path)).returncode == 0
    assert run(sys.executable, str(GENERATOR), "--root", str(tmp_path)).returncode == 0
    assert (tmp_path / "docs/variables.md").read_bytes() == first


def cluster_inventory() -> dict:
    proc = subprocess.run([tool("ansible-inventory"), "-i", "inventories/cluster", "--list"], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_cluster_inventory_shape() -> None:
    inv = cluster_inventory()
    hostvars = inv["_meta"]["hostvars"]

    def hosts(group: str) -> set[str]:
        return set(inv.get(group, {}).get("hosts", []))

    stores = hosts("minio")
    assert len(stores) == 3, stores
    for group in STORE_GROUPS:
        assert hosts(group) == stores, f"{group}: {hosts(group)} (the stores share the three nodes)"
    assert len(hosts("grafana")) == 1 and hosts("grafana") == hosts("oncall") == hosts("prometheus")
    apps = hosts("alloy")
    assert len(apps) >= 2 and hosts("beyla") == apps
    assert not apps & (stores | hosts("grafana")), "application nodes run only the collectors"
    for host in stores:
        for store in ["mimir", "loki", "tempo", "pyroscope"]:
            assert hostvars[host][f"{store}_replication_factor"] == 3, (host, store)
        # Distributed MinIO needs four drives or more in the pool.
        assert len(hostvars[host]["minio_data_dirs"]) * len(stores) >= 4
    # Memberlist advertises IP addresses: every host has one.
    for host, hv in hostvars.items():
        assert re.fullmatch(r"[0-9.]+", hv.get("o11y_advertise_address", "")), host


def test_cluster_inventory_runs_the_site_playbook() -> None:
    for playbook in ["playbooks/site.yml", "playbooks/uninstall.yml"]:
        proc = run(tool("ansible-playbook"), "-i", "inventories/cluster", playbook, "--syntax-check")
        assert proc.returncode == 0, proc.stdout


def test_uninstall_covers_every_component_with_the_role_defaults() -> None:
    text = (ROOT / "playbooks/uninstall.yml").read_text()
    plays = yaml.safe_load(text)
    components = []
    for play in plays:
        for task in play["tasks"]:
            assert task["ansible.builtin.include_role"]["tasks_from"] == "uninstall"
            components += [c["component"] for c in task["vars"]["common_uninstall_components"]]
    missing = set(COMPONENT_ROLES) - set(components)
    assert not missing, f"roles without a play in playbooks/uninstall.yml: {sorted(missing)}"
    # Reverse deploy order: OnCall first, the storage layer last.
    assert components[-1] == "minio" and components[0] == "oncall", components

    # Role defaults are not loaded in that playbook: its fallbacks must be the roles' defaults.
    fallbacks = re.findall(r"\b(([a-z]+)_[a-z_]+) \| default\(('[^']*'|\[[^\]]*\])\)", text)
    assert len(fallbacks) >= 2 * len(COMPONENT_ROLES), fallbacks
    for name, role, literal in fallbacks:
        defaults = yaml.safe_load((ROOT / "roles" / role / "defaults/main.yml").read_text())
        assert yaml.safe_load(literal) == defaults[name], f"{name}: fallback {literal} != role default {defaults[name]!r}"
