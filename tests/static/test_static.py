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


def _common_includes():
    """(file, task name, entry point, vars) of every include_role of o11y.stack.common in the component roles."""
    found = []

    def walk(tasks, path):
        for task in tasks or []:
            if not isinstance(task, dict):
                continue
            for key in ("block", "rescue", "always"):
                walk(task.get(key), path)
            include = task.get("ansible.builtin.include_role") or task.get("include_role")
            if isinstance(include, dict) and include.get("name") == "o11y.stack.common":
                found.append((path, task.get("name"), include.get("tasks_from", "main"), include,
                              task.get("vars") or {}))

    for path in sorted(ROOT.glob("roles/*/tasks/*.yml")):
        walk(yaml.safe_load(path.read_text()), path.relative_to(ROOT))
    return found


def test_common_entry_point_calls_match_their_spec() -> None:
    """The component roles call roles/common's entry points with rolespec_validate: false: their
    arguments are fixed in this repository, so they are checked here, once, instead of on every
    host on every run (which cost about 8 s of an idempotent single-node run). Every call gives each
    required option of its entry point and no option the entry point does not document."""
    specs = yaml.safe_load((ROOT / "roles/common/meta/argument_specs.yml").read_text())["argument_specs"]
    defaults = yaml.safe_load((ROOT / "roles/common/defaults/main.yml").read_text())
    includes = _common_includes()
    assert len(includes) > 30
    problems = []
    for path, name, entry, include, given in includes:
        options = specs[entry]["options"]
        if include.get("rolespec_validate") is not False:
            problems.append(f"{path}: '{name}' does not set rolespec_validate: false")
        missing = [opt for opt, spec in options.items()
                   if spec.get("required") and opt not in given and opt not in defaults]
        unknown = [key for key in given if key.startswith(("common_", "o11y_")) and key not in options]
        if missing:
            problems.append(f"{path}: '{name}' ({entry}) lacks the required {missing}")
        if unknown:
            problems.append(f"{path}: '{name}' ({entry}) passes {unknown}, which the {entry} entry point does not document")
    assert not problems, "\n".join(problems)
