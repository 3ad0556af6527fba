#!/usr/bin/env python3
"""Generate docs/variables.md from every roles/*/meta/argument_specs.yml.

    python tools/gen_variables_doc.py           # (re)write docs/variables.md
    python tools/gen_variables_doc.py --check   # exit 1 and print a diff when it is stale

Per role, one table of the entry point ``main`` (then any other entry point) with the
variable, its type, default, whether it is required, its choices and its description.
Defaults come from the argument spec's ``default`` (what the spec says, often a sentence
for computed values), else from ``defaults/main.yml``; long lists and dicts are not
inlined. Suboptions are flattened as ``var.sub``. The internal entry points of
roles/common are listed briefly: the component roles set them, inventories never do.

Only the standard library and PyYAML; the output depends on the files alone.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = Path("docs/variables.md")
# The shared role: its main entry point holds the stack-wide o11y_* settings (first in the
# document); its other entry points are the interface between roles, not settings.
SHARED_ROLE = "common"
# Longer inline defaults (lists, dicts, computed strings) point at defaults/main.yml instead.
MAX_INLINE = 60

MARKUP = re.compile(r"\b([CIBUMOVEPL])\(([^()]*)\)")


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads Ansible's tagged scalars (!unsafe, !vault) as plain values."""


def _tagged(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


_Loader.add_multi_constructor("!", _tagged)


def load(path: Path):
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - safe loader subclass


def markup(text: str) -> str:
    """Ansible doc markup (C(), I(), B(), L() ...) to Markdown."""
    def repl(match: re.Match) -> str:
        kind, body = match.groups()
        if kind == "I":
            return f"*{body}*"
        if kind == "B":
            return f"**{body}**"
        if kind == "U":
            return f"<{body}>"
        if kind == "L":
            label, _, url = body.partition(",")
            return f"[{label.strip()}]({url.strip()})"
        return f"`{body}`"
    return MARKUP.sub(repl, text)


def cell(text: str) -> str:
    """One table cell: one line, pipes escaped, HTML-like text outside code spans escaped."""
    text = " ".join(str(text).split())
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # even parts are outside code spans
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts).replace("|", "\\|")


def description(option: dict) -> str:
    desc = option.get("description", "")
    if isinstance(desc, list):
        desc = " ".join(str(d) for d in desc)
    return markup(str(desc))


def render_default(value, role: str, from_spec: bool) -> str:
    defaults_ref = f"see `roles/{role}/defaults/main.yml`"
    if value is None:
        return ""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (int, float)):
        return f"`{value}`"
    if isinstance(value, str):
        if value == "":
            return '`""`'
        if "{{" in value or "{%" in value:
            return f"computed, {defaults_ref}"
        # A spec default with spaces is a sentence about a computed value; keep it as prose.
        if from_spec and " " in value.strip():
            return markup(value)
        return f"`{value}`" if len(value) <= MAX_INLINE else defaults_ref
    flow = yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False).strip()
    if "{{" in flow or "{%" in flow or len(flow) > MAX_INLINE:
        return defaults_ref
    return f"`{flow}`"


def type_of(option: dict) -> str:
    kind = option.get("type", "str")
    return f"{kind} of {option['elements']}" if option.get("elements") else kind


def flatten(options: dict, prefix: str = ""):
    """(name, option) pairs in spec order, suboptions as parent.sub after their parent."""
    for name, option in (options or {}).items():
        option = option or {}
        full = f"{prefix}{name}"
        yield full, option
        if option.get("options"):
            yield from flatten(option["options"], full + ".")


def table(role: str, options: dict, defaults: dict) -> list[str]:
    lines = ["| variable | type | default | required | choices | description |",
             "|---|---|---|---|---|---|"]
    for name, option in flatten(options):
        if "default" in option:
            default = render_default(option["default"], role, from_spec=True)
        elif name in defaults and not option.get("required"):
            default = render_default(defaults[name], role, from_spec=False)
        else:
            default = ""
        choices = ", ".join(f"`{c}`" for c in option.get("choices", []) or [])
        required = "yes" if option.get("required") else ""
        row = [f"`{name}`", type_of(option), default, required, choices, description(option)]
        lines.append("| " + " | ".join(cell(c) for c in row) + " |")
    return lines


def internal_entry_points(specs: dict) -> list[str]:
    lines = ["### Internal entry points", "",
             f"Called with `include_role: name: o11y.stack.{SHARED_ROLE}` and `tasks_from:` by the component "
             "roles (`uninstall` by `playbooks/uninstall.yml`); those set these inputs, inventories do not, "
             "so they are listed here by name "
             "only (types and descriptions: `meta/argument_specs.yml`, or "
             f"`ansible-doc -t role o11y.stack.{SHARED_ROLE}`). The `o11y_*` settings they read are in the "
             "table above. Required inputs are marked with \\*.", "",
             "| entry point | what it does | inputs |", "|---|---|---|"]
    for entry, spec in specs.items():
        if entry == "main":
            continue
        names = [f"`{n}`" + ("\\*" if o.get("required") else "")
                 for n, o in flatten(spec.get("options", {})) if not n.startswith("o11y_")]
        lines.append("| " + " | ".join([f"`{entry}`", cell(markup(spec.get("short_description", ""))),
                                        ", ".join(names)]) + " |")
    return lines


def role_order(roles: list[str]) -> list[str]:
    return sorted(roles, key=lambda r: (r != SHARED_ROLE, r))


def generate(root: Path = ROOT) -> str:
    role_dirs = [p for p in (root / "roles").iterdir() if (p / "tasks").is_dir()]
    with_specs = role_order([p.name for p in role_dirs if (p / "meta/argument_specs.yml").is_file()])
    without = sorted(p.name for p in role_dirs if not (p / "meta/argument_specs.yml").is_file())
    out = ["# Variables", "",
           "<!-- Generated by tools/gen_variables_doc.py from roles/*/meta/argument_specs.yml. "
           "Do not edit: change the argument specs, then run `python tools/gen_variables_doc.py`. -->", "",
           "Every public variable of every role, from the roles' `meta/argument_specs.yml` (the same "
           "source `ansible-doc -t role o11y.stack.<role>` renders and Ansible validates the role's "
           "input against). Stack-wide `o11y_*` settings are in `common`; each component role's own "
           "variables are prefixed with its name. A default written as a sentence describes a value "
           "computed from the inventory; long defaults are in the role's `defaults/main.yml`.", ""]
    out += [f"- [{role}](#{role})" for role in with_specs]
    out.append("")
    for role in with_specs:
        specs = load(root / "roles" / role / "meta/argument_specs.yml")["argument_specs"]
        defaults_file = root / "roles" / role / "defaults/main.yml"
        defaults = (load(defaults_file) or {}) if defaults_file.is_file() else {}
        entries = sorted(specs, key=lambda e: e != "main")
        out += [f"## {role}", ""]
        main = specs.get("main", {})
        if main.get("short_description"):
            out += [cell(markup(main["short_description"])) + ".", ""]
        if (root / "roles" / role / "README.md").is_file():
            out += [f"README: [roles/{role}/README.md](../roles/{role}/README.md)", ""]
        for entry in entries:
            if role == SHARED_ROLE and entry != "main":
                continue
            if entry != "main":
                out += [f"### Entry point `{entry}`", "", cell(markup(specs[entry].get("short_description", ""))), ""]
            out += table(role, specs[entry].get("options", {}), defaults) + [""]
        if role == SHARED_ROLE:
            out += internal_entry_points(specs) + [""]
    if without:
        out += ["## Roles without an argument spec", "",
                ", ".join(f"`{r}`" for r in without) + ": no `meta/argument_specs.yml` yet.", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 with a diff when the file is stale")
    parser.add_argument("--root", type=Path, default=ROOT, help="collection root (default: this checkout)")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="output file, relative to the root")
    args = parser.parse_args(argv)
    target = args.output if args.output.is_absolute() else args.root / args.output
    text = generate(args.root)
    if args.check:
        current = target.read_text(encoding="utf-8") if target.is_file() else ""
        if current == text:
            return 0
        sys.stdout.writelines(difflib.unified_diff(
            current.splitlines(keepends=True), text.splitlines(keepends=True),
            fromfile=f"{args.output} (in the tree)", tofile=f"{args.output} (generated)"))
        print(f"\n{args.output} is stale: run `python tools/gen_variables_doc.py`.", file=sys.stderr)
        return 1
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
