"""Static checks: linters, argument specs, docs rendering, changelog."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, tool

ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir())
MODULES = sorted(p.stem for p in (ROOT / "plugins/modules").glob("*.py") if p.stem != "__init__")
FILTERS = sorted(p.stem for p in (ROOT / "plugins/filter").glob("*.yml"))


def run(*cmd: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_yamllint() -> None:
    proc = run(tool("yamllint"), "--strict", ".")
    assert proc.returncode == 0, proc.stdout


def test_ansible_lint_production_profile() -> None:
    proc = run(tool("ansible-lint"), "--profile", "production", "--nocolor")
    assert proc.returncode == 0, proc.stdout[-8000:]


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_cover_every_public_default(role: str) -> None:
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults/main.yml").read_text()) or {}
    specs = yaml.safe_load((ROOT / "roles" / role / "meta/argument_specs.yml").read_text())["argument_specs"]
    documented = set()
    for entry in specs.values():
        documented.update(entry.get("options", {}))
        for option in entry.get("options", {}).values():
            assert option.get("description"), f"{role}: an option has no description"
    public = {name for name in defaults if not name.startswith("_")}
    assert public - documented == set(), f"{role}: undocumented variables {sorted(public - documented)}"
    wrong_prefix = {n for n in public if not (n.startswith(role + "_") or n.startswith("o11y_"))}
    assert not wrong_prefix, f"{role}: public variables without the role prefix: {sorted(wrong_prefix)}"


@pytest.mark.parametrize("role", ROLES)
def test_role_has_readme(role: str) -> None:
    readme = ROOT / "roles" / role / "README.md"
    assert readme.is_file() and len(readme.read_text()) > 200, f"{role}: README.md missing or empty"


@pytest.mark.parametrize("plugin_type,name", [("module", m) for m in MODULES] + [("filter", f) for f in FILTERS]
                         + [("role", r) for r in ROLES])
def test_ansible_doc_renders(plugin_type: str, name: str) -> None:
    proc = run(tool("ansible-doc"), "-t", plugin_type, f"o11y.stack.{name}")
    assert proc.returncode == 0 and "ERROR" not in proc.stdout, proc.stdout
    assert len(proc.stdout.splitlines()) > 10, proc.stdout


def test_changelog_fragments_lint() -> None:
    proc = run(tool("antsibull-changelog"), "lint")
    assert proc.returncode == 0, proc.stdout
