# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mirror's Grafana entry: upstream URL, tarball layout and checksum file as roles/grafana expects them."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import subprocess
import sys
import tarfile
import zipfile
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


# ---- grafana-oncall-app (the OnCall app plugin the role adds with an oncall group) ----------------------------

def role_plugin_url(plugin_id: str, version: str, arch: str) -> str:
    """roles/grafana/tasks/plugins.yml's default download URL of a plugin, its variables filled in."""
    text = (REPO_ROOT / "roles" / "grafana" / "tasks" / "plugins.yml").read_text()
    tasks = yaml.safe_load(text)
    template = " ".join(tasks[0]["vars"]["__grafana_plugin_url"].split())
    # the role's template, so that a change there shows up here
    assert "'https://grafana.com/api/plugins/' ~ __grafana_plugin.id ~ '/versions/' ~ __grafana_plugin.version " \
           "~ '/download?os=linux&arch=' ~ o11y_arch" in template, template
    return "https://grafana.com/api/plugins/%s/versions/%s/download?os=linux&arch=%s" % (plugin_id, version, arch)


def test_oncall_plugin_zip_at_the_release_and_the_role_urls(tmp_path):
    out = tmp_path / "mirror"
    bm.build_mirror(out, only=["grafana-oncall-app"], cache_dir=tmp_path / "cache", stream=io.StringIO())
    version = DEFAULTS.get("grafana_oncall_plugin_version") or bm.ONCALL_PLUGIN_VERSION
    assert version == "1.16.9"  # the last OnCall release
    release = bm.url_to_path(out, "https://storage.googleapis.com/grafana-oncall-app/releases/"
                                  "grafana-oncall-app-%s.zip" % version)
    digest = hashlib.sha256(release.read_bytes()).hexdigest()
    assert bm.url_to_path(out, bm.ONCALL_PLUGIN_RELEASE_URL.format(version=version) + ".sha256").read_text() \
        == digest + "\n"
    for arch in bm.ARCHES:  # one "any" package: the same bytes for every os/arch, so one pinned checksum
        mirrored = bm.url_to_path(out, role_plugin_url("grafana-oncall-app", version, arch))
        assert hashlib.sha256(mirrored.read_bytes()).hexdigest() == digest
    with zipfile.ZipFile(release) as zf:
        names = set(zf.namelist())
        meta = json.loads(zf.read("grafana-oncall-app/plugin.json"))
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in zf.infolist()}
    assert all(n.startswith("grafana-oncall-app/") for n in names)
    assert meta == standin.oncall_plugin_json(version)
    assert (meta["id"], meta["type"], meta["backend"], meta["executable"], meta["info"]["version"]) == (
        "grafana-oncall-app", "app", True, "gpx_grafana_oncall_app", version)
    for platform in ("linux_amd64", "linux_arm64"):
        assert modes["grafana-oncall-app/gpx_grafana_oncall_app_" + platform] == 0o755
    # deterministic: a rebuild rewrites nothing
    again = bm.build_mirror(out, only=["grafana-oncall-app"], cache_dir=tmp_path / "cache", stream=io.StringIO())
    assert again.written == []
