"""ansible-test sanity on the collection (every sanity test that runs offline)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import ansible_test

from tests.conftest import OUTPUT, ROOT, tool

# ansible-test bootstraps pip in its virtualenvs with a script it downloads from
# ci-files.testing.ansible.com; offline, it documents saving one in its cache.
# Ours installs pip with ensurepip and then the requested packages from PyPI.
BOOTSTRAP = Path(__file__).parent / "files" / "get_pip_offline.py"


def _seed_pip_bootstrap() -> None:
    source = (Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py").read_text()
    version = re.search(r"pip='([0-9.]+)'", source).group(1)
    cache = Path.home() / ".ansible/test/cache" / f"get_pip_{version.replace('.', '_')}.py"
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(BOOTSTRAP, cache)


def _collection_copy() -> Path:
    """ansible-test needs the collection at .../ansible_collections/o11y/stack (a real path, not a symlink)."""
    dest = OUTPUT / "sanity" / "ansible_collections" / "o11y" / "stack"
    shutil.rmtree(dest, ignore_errors=True)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    for name in files:
        src = ROOT / name
        if src.is_symlink() or not src.is_file():
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    return dest


def test_ansible_test_sanity() -> None:
    _seed_pip_bootstrap()
    collection = _collection_copy()
    proc = subprocess.run(
        [tool("ansible-test"), "sanity", "--local", "--python", "3.11", "--color", "no", "plugins/"],
        cwd=collection, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.returncode == 0, proc.stdout[-10000:]
