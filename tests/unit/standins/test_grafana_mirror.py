# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mirror's Grafana entry: upstream URL, tarball layout and checksum file as roles/grafana expects them."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

STANDINS = Path(__file__).resolve().parents[2] / "standins"
REPO_ROOT = STANDINS.parent.parent
if str(STANDINS) not in sys.path:
    sys.path.insert(0, str(STANDINS))

_spec = importlib.util.spec_from_file_location("build_mirror_grafana", STANDINS / "build_mirror.py")
bm = importlib.util.module_from_spec(_spec)
sys.modules["build_mirror_grafana"] = bm
_spec.loader.exec_module(bm)

from o11y_standins import grafana as standin  # noqa: E402

DEFAULTS = yaml.safe_load((REPO_ROOT / "roles" / "grafana" / "defaults" / "main.yml").read_text())
VERSION = DEFAULTS["grafana_version"]
BUILD = DEFAULTS["grafana_build_id"]


def role_url(arch: str) -> str:
    """roles/grafana's grafana_download_url with its variables filled in."""
    url = DEFAULTS["grafana_download_url"].strip()
    for name, value in (("grafana_version", VERSION), ("grafana_build_id", BUILD), ("o11y_arch", arch)):
        url = url.replace("{{ %s }}" % name, value)
    assert "{{" not in url
    return url


def build(tmp_path):
    out = tmp_path / "mirror"
    bm.build_mirror(out, only=["grafana"], cache_dir=tmp_path / "cache", stream=io.StringIO())
    return out


def test_role_url_is_the_mirrored_one_and_the_sidecar_holds_the_bare_hash(tmp_path):
    out = build(tmp_path)
    for arch in bm.ARCHES:
        url = role_url(arch)
        assert url == "https://dl.grafana.com/grafana/release/%s/grafana_%s_%s_linux_%s.tar.gz" % (
            VERSION, VERSION, BUILD, arch)
        archive = bm.url_to_path(out, url)
        sidecar = bm.url_to_path(out, url + ".sha256")
        assert archive.is_file() and sidecar.is_file()
        assert sidecar.read_text() == hashlib.sha256(archive.read_bytes()).hexdigest() + "\n"


def test_tarball_is_a_grafana_home_path_the_standin_runs_from(tmp_path):
    out = build(tmp_path)
    archive = bm.url_to_path(out, role_url("amd64"))
    home = tmp_path / "home"
    with tarfile.open(archive) as tf:
        names = tf.getnames()
        root = "grafana-%s" % VERSION
        assert {root + "/bin/grafana", root + "/conf/defaults.ini", root + "/public/views/index.html"} <= set(names)
        assert all(n == root or n.startswith(root + "/") for n in names)
        assert tf.getmember(root + "/bin/grafana").mode & 0o111
        tf.extractall(home)
    defaults = (home / root / "conf" / "defaults.ini").read_text()
    assert defaults == standin.DEFAULTS_INI  # braces survive the builder's str.format
    settings = standin.Settings(str(home / root), env={})
    assert settings.get("server", "http_port") == "3000"
    assert "${HOSTNAME}" in defaults
    # the packed stand-in reports the pinned version
    result = subprocess.run([sys.executable, str(home / root / "bin" / "grafana"), "--version"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert VERSION in result.stdout
