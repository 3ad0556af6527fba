#!/usr/bin/env python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build the local artifact mirror the o11y.stack tests install from.

    tests/standins/build_mirror.py --out DIR [--also minio=VERSION ...] [--only minio] [--list]

The mirror is laid out exactly like the upstream release URLs with the scheme
stripped, so a role given ``o11y_artifact_mirror`` runs its real download ->
verify -> unpack -> install path against it:

    https://github.com/minio/minio/releases/download/RELEASE.X/minio.linux-amd64.RELEASE.X
 -> DIR/github.com/minio/minio/releases/download/RELEASE.X/minio.linux-amd64.RELEASE.X
    (+ ...RELEASE.X.sha256sum containing "<sha256>  minio.RELEASE.X", like upstream)

What goes in is described by the ``COMPONENTS`` table: one entry per
component with the upstream URL templates, the archive shape (raw file,
``zip`` or ``tar.gz`` with member paths), the checksum style (per-file
``.sha256sum``-like sidecar, or one ``SHA256SUMS`` file per release) and what
each file contains:

* :class:`StandinZipapp`: a stand-in from tests/standins/o11y_standins packed
  as an executable Python zipapp (shebang ``#!/opt/o11y-standins/venv/bin/python3``,
  the venv baked into the test image) with the component's version baked in;
* :class:`DebianFile`: a file from a Debian package (real programs such as
  Prometheus, fetched with ``apt-get download`` into a cache);
* :class:`Text`: literal content (licences, default configs in tarballs).

Versions come from the roles' defaults (``roles/<role>/defaults/main.yml``,
key ``<role>_version``) or the table's default; ``--also name=VERSION`` adds
more versions (upgrade/rollback tests).

Output is deterministic (fixed timestamps, sorted entries, fixed compression
settings), so checksums are stable and a rebuild rewrites nothing.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
PACKAGE_DIR = HERE / "o11y_standins"
STANDIN_PYTHON = "/opt/o11y-standins/venv/bin/python3"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
TAR_MTIME = 0
ARCHES = ("amd64", "arm64")


# ---------------------------------------------------------------------------
# build context
# ---------------------------------------------------------------------------

@dataclass
class Ctx:
    """What a payload sees while it is built."""

    component: str
    version: str
    arch: str
    goversion: str
    cache_dir: Path
    memo: Dict[tuple, bytes] = field(default_factory=dict)

    def fmt(self, template: str) -> str:
        return format_template(template, self.version, self.arch)


def format_template(template: str, version: str, arch: str) -> str:
    """``{version}``, ``{arch}`` (amd64/arm64), ``{uname_arch}`` (x86_64/aarch64),
    ``{version_nov}`` (version without a leading v)."""
    return template.format(version=version, arch=arch, version_nov=version[1:] if version.startswith("v") else version,
                           uname_arch={"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch))


# ---------------------------------------------------------------------------
# payloads
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Text:
    """Literal file content (``{version}``/``{arch}`` are substituted)."""

    content: str
    mode: int = 0o644

    def build(self, ctx: Ctx) -> bytes:
        return ctx.fmt(self.content).encode()


def _zipinfo(name: str, mode: int) -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    zi.create_system = 3  # unix, so external_attr carries the mode
    zi.external_attr = (0o100000 | mode) << 16
    zi.compress_type = zipfile.ZIP_DEFLATED
    return zi


def standin_sources() -> List[Tuple[str, bytes]]:
    """(archive name, content) of every module of the o11y_standins package, sorted."""
    out = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(PACKAGE_DIR.parent).as_posix()
        if "__pycache__" in rel:
            continue
        out.append((rel, path.read_bytes()))
    return out


@dataclass(frozen=True)
class StandinZipapp:
    """The o11y_standins package as an executable zipapp for one component.

    *entry* is ``module:function``; the function gets ``sys.argv`` and returns
    the exit code.  Version, revision and Go version are baked into
    ``__main__.py`` via ``framework.set_build_info``.
    """

    entry: str
    revision: Optional[str] = None
    mode: int = 0o755

    def build(self, ctx: Ctx) -> bytes:
        key = ("zipapp", self.entry, ctx.component, ctx.version)
        if key in ctx.memo:
            return ctx.memo[key]
        module, func = self.entry.split(":")
        revision = self.revision or hashlib.sha1(("%s %s" % (ctx.component, ctx.version)).encode()).hexdigest()
        main = (
            "# Generated by tests/standins/build_mirror.py -- an o11y.stack TEST STAND-IN,\n"
            "# not the real %(component)s.\n"
            "import sys\n"
            "from o11y_standins import framework\n"
            "framework.set_build_info(component=%(component)r, version=%(version)r, revision=%(revision)r,\n"
            "                         goversion=%(goversion)r, branch='HEAD')\n"
            "from %(module)s import %(func)s\n"
            "sys.exit(%(func)s(sys.argv))\n"
        ) % {"component": ctx.component, "version": ctx.version, "revision": revision,
             "goversion": ctx.goversion, "module": module, "func": func}
        buf = io.BytesIO()
        buf.write(("#!%s\n" % STANDIN_PYTHON).encode())
        with zipfile.ZipFile(buf, "w") as zf:
            files = [("__main__.py", main.encode())] + standin_sources()
            for name, data in sorted(files):
                zf.writestr(_zipinfo(name, 0o644), data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
        data = buf.getvalue()
        ctx.memo[key] = data
        return data


@dataclass(frozen=True)
class DebianFile:
    """One file out of a Debian package for the build architecture (real
    programs where Debian has them, e.g. ``DebianFile("prometheus", "usr/bin/prometheus")``).

    The .deb is fetched with ``apt-get download pkg:arch`` into the cache
    (other architectures need ``dpkg --add-architecture`` and an apt update).
    """

    package: str
    path: str
    mode: int = 0o755

    def build(self, ctx: Ctx) -> bytes:
        deb = fetch_deb(self.package, ctx.arch, ctx.cache_dir)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
            target = Path(tmp) / self.path.lstrip("/")
            if not target.is_file():
                raise SystemExit("build_mirror: %s has no %s" % (deb.name, self.path))
            return target.read_bytes()


def fetch_deb(package: str, arch: str, cache_dir: Path) -> Path:
    dest = cache_dir / "debs" / arch
    dest.mkdir(parents=True, exist_ok=True)
    found = sorted(dest.glob("%s_*_%s.deb" % (package, arch))) + sorted(dest.glob("%s_*_all.deb" % package))
    if found:
        return found[-1]
    subprocess.run(["apt-get", "download", "%s:%s" % (package, arch)], cwd=dest, check=True,
                   stdout=subprocess.DEVNULL)
    found = sorted(dest.glob("%s_*.deb" % package))
    if not found:
        raise SystemExit("build_mirror: apt-get download %s:%s produced nothing" % (package, arch))
    return found[-1]


Payload = Union[Text, StandinZipapp, DebianFile]


# ---------------------------------------------------------------------------
# artifacts
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Sidecar:
    """A checksum file next to the artifact: ``<url><suffix>`` with one line
    ``<sha256>  <name>``; *name* is a template (default: the artifact's file name).
    *bare*: the line is the hash alone (``sha256sum | cut -d' ' -f1`` style)."""

    suffix: str = ".sha256"
    name: Optional[str] = None
    bare: bool = False


@dataclass(frozen=True)
class Artifact:
    """One downloadable file.

    kind ``raw``: the file is *payload*; ``zip``/``tar.gz``: an archive of
    *members* (path template -> payload; directories are implied).
    """

    url: str
    kind: str = "raw"
    payload: Optional[Payload] = None
    members: Tuple[Tuple[str, Payload], ...] = ()
    checksum: Optional[Sidecar] = None
    in_sums: bool = True


@dataclass(frozen=True)
class SumsFile:
    """One checksum list per release (``SHA256SUMS``, ``sha256sums.txt``) covering
    every artifact with ``in_sums`` of that version, all architectures."""

    url: str


@dataclass(frozen=True)
class Component:
    name: str
    default_version: str
    artifacts: Tuple[Artifact, ...]
    version_file: Optional[str] = None      # relative to the repository root
    version_key: Optional[str] = None
    arches: Tuple[str, ...] = ARCHES
    goversion: str = "go1.24.6"
    sums: Optional[SumsFile] = None


MINIO_RELEASES = "https://github.com/minio/minio/releases/download/{version}/"

def _grafana_defaults_ini() -> str:
    """The stand-in's conf/defaults.ini, braces escaped for :class:`Text` (``${HOSTNAME}``)."""
    sys.path.insert(0, str(HERE))
    from o11y_standins.grafana import DEFAULTS_INI
    return DEFAULTS_INI.replace("{", "{{").replace("}", "}}")


GRAFANA_DEFAULTS_INI = _grafana_defaults_ini()

# grafana-oncall-app (the OnCall app plugin). Upstream's release workflow (.github/workflows/
# on-release-published.yml) zips dist/ as grafana-oncall-app/ (plugin.json, frontend, the backend built by
# `mage buildAll` for every OS/arch), uploads it to GCS as releases/grafana-oncall-app-<ver>.zip and registers
# that one "any" package on grafana.com, whose /api/plugins/<id>/versions/<ver>/download answers it for every
# os/arch. The mirror holds the zip at the GCS URL (+ a bare .sha256 the tests read; GCS has none) and at the
# grafana.com download URL the grafana role builds (its query string kept in the file name: file:// mirrors
# only). The backend executables are placeholders: the Grafana stand-in emulates the backend.
ONCALL_PLUGIN_VERSION = "1.16.9"
ONCALL_PLUGIN_RELEASE_URL = ("https://storage.googleapis.com/grafana-oncall-app/releases/"
                             "grafana-oncall-app-{version}.zip")
ONCALL_PLUGIN_GCOM_URL = ("https://grafana.com/api/plugins/grafana-oncall-app/versions/{version}/download"
                          "?os=linux&arch={arch}")
ONCALL_PLUGIN_PLATFORMS = ("linux_amd64", "linux_arm64", "linux_arm", "darwin_amd64", "darwin_arm64",
                           "windows_amd64.exe")


def _oncall_plugin_json() -> str:
    """The package's plugin.json (o11y_standins.grafana.oncall_plugin_json), braces escaped for :class:`Text`."""
    sys.path.insert(0, str(HERE))
    import json
    from o11y_standins.grafana import oncall_plugin_json
    text = json.dumps(oncall_plugin_json("@VERSION@"), indent=2) + "\n"
    return text.replace("{", "{{").replace("}", "}}").replace("@VERSION@", "{version}")


def _oncall_plugin_members() -> Tuple[Tuple[str, "Payload"], ...]:
    placeholder = Text("#!/bin/sh\n# grafana-oncall-app {version} backend: o11y.stack test placeholder; the Grafana\n"
                       "# stand-in emulates the plugin backend in-process.\necho 'not a real plugin backend' >&2\n"
                       "exit 1\n", mode=0o755)
    return ((("grafana-oncall-app/plugin.json", Text(_oncall_plugin_json())),
             ("grafana-oncall-app/module.js", Text("/* grafana-oncall-app {version} frontend (test stand-in) */\n")),
             ("grafana-oncall-app/README.md", Text("# Grafana OnCall app plugin {version} (test package)\n")),
             ("grafana-oncall-app/LICENSE", Text("GNU AFFERO GENERAL PUBLIC LICENSE, Version 3 (test package)\n")))
            + tuple(("grafana-oncall-app/gpx_grafana_oncall_app_" + platform, placeholder)
                    for platform in ONCALL_PLUGIN_PLATFORMS))


COMPONENTS: Dict[str, Component] = {
    "minio": Component(
        name="minio",
        default_version="RELEASE.2025-09-07T16-13-09Z",
        version_file="roles/minio/defaults/main.yml",
        version_key="minio_version",
        goversion="go1.24.6",
        artifacts=(
            Artifact(
                url=MINIO_RELEASES + "minio.linux-{arch}.{version}",
                payload=StandinZipapp("o11y_standins.minio:main"),
                # upstream's file names the dl.min.io asset, not the GitHub one
                checksum=Sidecar(suffix=".sha256sum", name="minio.{version}"),
            ),
        ),
    ),
    # ---- mimir (entry below this line) ----
    "mimir": Component(
        name="mimir",
        default_version="3.1.1",
        version_file="roles/mimir/defaults/main.yml",
        version_key="mimir_version",
        goversion="go1.26.4",
        artifacts=(
            # upstream: bare binary + "<asset>-sha-256" holding only the hash (Makefile "dist")
            Artifact(
                url="https://github.com/grafana/mimir/releases/download/mimir-{version}/mimir-linux-{arch}",
                payload=StandinZipapp("o11y_standins.mimir:main"),
                checksum=Sidecar(suffix="-sha-256", bare=True),  # upstream: the hash alone
            ),
        ),
    ),
    # ---- loki (entry below this line) ----
    "loki": Component(
        name="loki",
        default_version="3.7.6",
        version_file="roles/loki/defaults/main.yml",
        version_key="loki_version",
        goversion="go1.26.5",
        # upstream: `make dist` zips each binary (member at the archive root) and
        # writes one SHA256SUMS per release
        sums=SumsFile("https://github.com/grafana/loki/releases/download/v{version}/SHA256SUMS"),
        artifacts=(
            Artifact(
                url="https://github.com/grafana/loki/releases/download/v{version}/loki-linux-{arch}.zip",
                kind="zip",
                members=(("loki-linux-{arch}", StandinZipapp("o11y_standins.loki:main")),),
            ),
        ),
    ),
    # ---- tempo (entry below this line) ----
    "tempo": Component(
        name="tempo",
        default_version="2.10.8",
        version_file="roles/tempo/defaults/main.yml",
        version_key="tempo_version",
        goversion="go1.26.5",
        # goreleaser: one tar.gz per platform, binaries at the archive root, one SHA256SUMS per release
        sums=SumsFile("https://github.com/grafana/tempo/releases/download/v{version}/SHA256SUMS"),
        artifacts=(
            Artifact(
                url="https://github.com/grafana/tempo/releases/download/v{version}/tempo_{version}_linux_{arch}.tar.gz",
                kind="tar.gz",
                members=(("tempo", StandinZipapp("o11y_standins.tempo:main")),),
            ),
        ),
    ),
    # ---- pyroscope (entry below this line) ----
    # goreleaser: pyroscope_<ver>_linux_<arch>.tar.gz (binary at the archive root) + one checksums.txt
    "pyroscope": Component(
        name="pyroscope",
        default_version="2.2.1",
        version_file="roles/pyroscope/defaults/main.yml",
        version_key="pyroscope_version",
        goversion="go1.25.12",
        sums=SumsFile("https://github.com/grafana/pyroscope/releases/download/v{version}/checksums.txt"),
        artifacts=(
            Artifact(
                url="https://github.com/grafana/pyroscope/releases/download/v{version}/"
                    "pyroscope_{version}_linux_{arch}.tar.gz",
                kind="tar.gz",
                members=(("pyroscope", StandinZipapp("o11y_standins.pyroscope:main")),
                         ("LICENSE", Text("GNU AFFERO GENERAL PUBLIC LICENSE, Version 3 (test stand-in archive)\n")),
                         ("README.md", Text("Grafana Pyroscope {version} (o11y.stack test stand-in)\n"))),
            ),
        ),
    ),
    # ---- prometheus (entry below this line) ----
    # promu tarball: prometheus-<ver>.linux-<arch>/{prometheus,promtool,...} + one sha256sums.txt.
    # The binaries are Debian's real Prometheus and promtool (TESTING.md), amd64 only.
    "prometheus": Component(
        name="prometheus",
        default_version="3.13.3",
        version_file="roles/prometheus/defaults/main.yml",
        version_key="prometheus_version",
        arches=("amd64",),
        sums=SumsFile("https://github.com/prometheus/prometheus/releases/download/v{version}/sha256sums.txt"),
        artifacts=(
            Artifact(
                url="https://github.com/prometheus/prometheus/releases/download/v{version}/"
                    "prometheus-{version}.linux-{arch}.tar.gz",
                kind="tar.gz",
                members=(("prometheus-{version}.linux-{arch}/prometheus", DebianFile("prometheus", "usr/bin/prometheus")),
                         ("prometheus-{version}.linux-{arch}/promtool", DebianFile("prometheus", "usr/bin/promtool")),
                         ("prometheus-{version}.linux-{arch}/LICENSE",
                          Text("Apache License 2.0 (Debian's prometheus package, packed for the o11y.stack tests)\n")),
                         ("prometheus-{version}.linux-{arch}/prometheus.yml",
                          Text("global:\n  scrape_interval: 15s\n"))),
            ),
        ),
    ),
    # ---- beyla (entry below this line) ----
    # `make artifact` tars bin/{beyla,LICENSE,NOTICE,third_party_licenses.csv} (archive root) and the
    # release workflow uploads it as beyla-linux-<arch>-v<ver>.tar.gz. No checksum file is published.
    "beyla": Component(
        name="beyla",
        default_version="3.32.0",
        version_file="roles/beyla/defaults/main.yml",
        version_key="beyla_version",
        goversion="go1.25.11",
        artifacts=(
            Artifact(
                url="https://github.com/grafana/beyla/releases/download/v{version}/"
                    "beyla-linux-{arch}-v{version}.tar.gz",
                kind="tar.gz",
                members=(("beyla", StandinZipapp("o11y_standins.beyla:main")),
                         ("LICENSE", Text("Apache License, Version 2.0 (o11y.stack test stand-in archive)\n")),
                         ("NOTICE", Text("Grafana Beyla v{version} (o11y.stack test stand-in)\n")),
                         ("third_party_licenses.csv", Text("package,license\n"))),
            ),
        ),
    ),
    # ---- alloy (entry below this line) ----
    # scripts/publish-release-artifacts.sh: every dist/alloy-<os>-<arch> is zipped on its own
    # (`zip -j`, member at the archive root), then `sha256sum -- *` writes one SHA256SUMS.
    "alloy": Component(
        name="alloy",
        default_version="1.18.1",
        version_file="roles/alloy/defaults/main.yml",
        version_key="alloy_version",
        goversion="go1.26.5",
        sums=SumsFile("https://github.com/grafana/alloy/releases/download/v{version}/SHA256SUMS"),
        artifacts=(
            Artifact(
                url="https://github.com/grafana/alloy/releases/download/v{version}/alloy-linux-{arch}.zip",
                kind="zip",
                members=(("alloy-linux-{arch}", StandinZipapp("o11y_standins.alloy:main")),),
            ),
        ),
    ),
    # ---- grafana (entry below this line) ----
    # Grafana 12+ builds (pkg/build/daggerbuild): packages.FileName gives
    # grafana_<ver>_<build id>_linux_<arch>.tar.gz under dl.grafana.com/grafana/release/<ver>/,
    # package_targz.go roots the tree at grafana-<ver>/ (bin/, conf/, public/, ...), and
    # containers/Sha256 writes "<file>.sha256" holding the hash alone. 36482603486 is the
    # 13.2.3 build (both architectures).
    "grafana": Component(
        name="grafana",
        default_version="13.2.3",
        version_file="roles/grafana/defaults/main.yml",
        version_key="grafana_version",
        goversion="go1.25.9",
        artifacts=(
            Artifact(
                url="https://dl.grafana.com/grafana/release/{version}/grafana_{version}_36482603486_linux_{arch}.tar.gz",
                kind="tar.gz",
                members=(("grafana-{version}/bin/grafana", StandinZipapp("o11y_standins.grafana:main")),
                         ("grafana-{version}/conf/defaults.ini", Text(GRAFANA_DEFAULTS_INI)),
                         ("grafana-{version}/conf/sample.ini", Text("; Grafana {version} sample.ini (o11y.stack test stand-in)\n")),
                         ("grafana-{version}/public/views/index.html",
                          Text("<!doctype html><title>Grafana {version} (o11y.stack test stand-in)</title>\n")),
                         ("grafana-{version}/VERSION", Text("{version}\n")),
                         ("grafana-{version}/LICENSE", Text("GNU AFFERO GENERAL PUBLIC LICENSE, Version 3 (test stand-in archive)\n"))),
                checksum=Sidecar(suffix=".sha256", bare=True),
            ),
        ),
    ),
    # ---- grafana-oncall-app (the OnCall app plugin; see ONCALL_PLUGIN_RELEASE_URL) ----
    "grafana-oncall-app": Component(
        name="grafana-oncall-app",
        default_version=ONCALL_PLUGIN_VERSION,
        version_file="roles/grafana/defaults/main.yml",
        version_key="grafana_oncall_plugin_version",
        goversion="go1.21.5",
        artifacts=(
            Artifact(url=ONCALL_PLUGIN_RELEASE_URL, kind="zip", members=_oncall_plugin_members(),
                     checksum=Sidecar(suffix=".sha256", bare=True)),
            Artifact(url=ONCALL_PLUGIN_GCOM_URL, kind="zip", members=_oncall_plugin_members()),
        ),
    ),
    # ---- oncall (entry below this line) ----
    # Upstream ships no engine binary: the role installs engine/ from the tag's GitHub source archive
    # (top directory oncall-<ver>/, the tag's "v" dropped). GitHub publishes no checksum for source
    # archives, so the role pins one. One archive for every architecture. The members (manage.py,
    # uwsgi.ini, requirements.txt + shim wheels for uwsgi/celery, ...) are described in o11y_standins/oncall.py.
    "oncall": Component(
        name="oncall",
        default_version="1.16.9",
        version_file="roles/oncall/defaults/main.yml",
        version_key="oncall_version",
        arches=("amd64",),
        artifacts=(
            Artifact(
                url="https://github.com/grafana/oncall/archive/refs/tags/v{version}.tar.gz",
                kind="tar.gz",
                members=(("oncall-{version}/engine/o11y-oncall-standin", StandinZipapp("o11y_standins.oncall:main")),)
                + __import__("o11y_standins.oncall", fromlist=["MIRROR_MEMBERS"]).MIRROR_MEMBERS,
            ),
        ),
    ),
    # Shapes for what comes next (one entry each), e.g.:
    #   "loki": Component("loki", "3.5.0", version_file="roles/loki/defaults/main.yml",
    #       version_key="loki_version", sums=SumsFile(LOKI + "SHA256SUMS"),
    #       artifacts=(Artifact(LOKI + "loki-linux-{arch}.zip", kind="zip",
    #                  members=(("loki-linux-{arch}", StandinZipapp("o11y_standins.loki:main")),)),)),
    #   "grafana": ... Artifact(".../grafana-{version}.linux-{arch}.tar.gz", kind="tar.gz",
    #       members=(("grafana-v{version}/bin/grafana", StandinZipapp(...)),
    #                ("grafana-v{version}/conf/defaults.ini", Text(...))),
    #       checksum=Sidecar(".sha256"))
    #   "prometheus": ... Artifact(".../prometheus-{version}.linux-{arch}.tar.gz", kind="tar.gz",
    #       members=(("prometheus-{version}.linux-{arch}/prometheus", DebianFile("prometheus", "usr/bin/prometheus")),
    #                ("prometheus-{version}.linux-{arch}/promtool", DebianFile("prometheus", "usr/bin/promtool")))),
    #       sums=SumsFile(".../sha256sums.txt")
}


# ---------------------------------------------------------------------------
# archive writers (deterministic)
# ---------------------------------------------------------------------------

def _parents(paths: Iterable[str]) -> List[str]:
    dirs = set()
    for p in paths:
        parts = p.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    return sorted(dirs)


def make_zip(files: Sequence[Tuple[str, bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, mode in sorted(files):
            zf.writestr(_zipinfo(name, mode), data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return buf.getvalue()


def make_tar_gz(files: Sequence[Tuple[str, bytes, int]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for d in _parents(entry[0] for entry in files):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, TAR_MTIME
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            tf.addfile(ti)
        for name, data, mode in sorted(files):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), mode, TAR_MTIME
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            tf.addfile(ti, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def build_artifact(art: Artifact, ctx: Ctx) -> bytes:
    if art.kind == "raw":
        if art.payload is None:
            raise ValueError("raw artifact %s needs a payload" % art.url)
        return art.payload.build(ctx)
    files = [(ctx.fmt(path), payload.build(ctx), payload.mode) for path, payload in art.members]
    if art.kind == "zip":
        return make_zip(files)
    if art.kind == "tar.gz":
        return make_tar_gz(files)
    raise ValueError("unknown artifact kind %r" % art.kind)


# ---------------------------------------------------------------------------
# mirror
# ---------------------------------------------------------------------------

def url_to_path(out: Path, url: str) -> Path:
    """``https://host/a/b`` -> ``out/host/a/b`` (scheme stripped)."""
    rest = re.sub(r"^[a-z][a-z0-9+.-]*://", "", url)
    if not rest or rest.startswith("/") or ".." in rest.split("/"):
        raise ValueError("bad artifact URL %r" % url)
    return out.joinpath(*rest.split("/"))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Writer:
    def __init__(self, out: Path, stream=None):
        self.out = out
        self.stream = stream or sys.stdout
        self.written: List[Path] = []
        self.unchanged: List[Path] = []

    def put(self, path: Path, data: bytes, mode: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        rel = path.relative_to(self.out)
        if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
            if (path.stat().st_mode & 0o777) != mode:
                os.chmod(path, mode)
            self.unchanged.append(path)
            print("unchanged %s" % rel, file=self.stream)
            return
        tmp = path.with_name(".%s.tmp" % path.name)
        tmp.write_bytes(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        self.written.append(path)
        print("wrote     %s (%d bytes, sha256 %s)" % (rel, len(data), sha256_hex(data)), file=self.stream)


def read_role_version(comp: Component, repo_root: Path = REPO_ROOT) -> Tuple[str, str]:
    """(version, where it came from)."""
    if not comp.version_file or not comp.version_key:
        return comp.default_version, "default"
    path = repo_root / comp.version_file
    if not path.is_file():
        return comp.default_version, "default (%s not found)" % comp.version_file
    text = path.read_text()
    value = None
    try:
        import yaml
        data = yaml.safe_load(text) or {}
        value = data.get(comp.version_key) if isinstance(data, dict) else None
    except ImportError:
        m = re.search(r"^%s:\s*['\"]?([^'\"#\s]+)" % re.escape(comp.version_key), text, re.M)
        value = m.group(1) if m else None
    if value is None or value == "":
        return comp.default_version, "default (%s has no %s)" % (comp.version_file, comp.version_key)
    value = str(value)
    if "{{" in value or "{%" in value:
        print("build_mirror: %s: %s is templated (%s); using %s"
              % (comp.version_file, comp.version_key, value, comp.default_version), file=sys.stderr)
        return comp.default_version, "default (templated in %s)" % comp.version_file
    return value, comp.version_file


def build_component(comp: Component, versions: Sequence[str], writer: Writer, cache_dir: Path) -> None:
    for version in versions:
        sums: Dict[str, List[Tuple[str, str]]] = {}
        for arch in comp.arches:
            ctx = Ctx(comp.name, version, arch, comp.goversion, cache_dir)
            for art in comp.artifacts:
                url = ctx.fmt(art.url)
                data = build_artifact(art, ctx)
                mode = art.payload.mode if (art.kind == "raw" and art.payload is not None) else 0o644
                writer.put(url_to_path(writer.out, url), data, mode)
                digest = sha256_hex(data)
                if art.checksum is not None:
                    name = ctx.fmt(art.checksum.name) if art.checksum.name else url.rsplit("/", 1)[-1]
                    line = digest if art.checksum.bare else "%s  %s" % (digest, name)
                    writer.put(url_to_path(writer.out, url + art.checksum.suffix), (line + "\n").encode(), 0o644)
                if comp.sums is not None and art.in_sums:
                    sums_url = format_template(comp.sums.url, version, arch)
                    sums.setdefault(sums_url, []).append((url.rsplit("/", 1)[-1], digest))
        for sums_url, entries in sums.items():
            body = "".join("%s  %s\n" % (d, n) for n, d in sorted(entries))
            writer.put(url_to_path(writer.out, sums_url), body.encode(), 0o644)


def parse_also(values: Sequence[str]) -> Dict[str, List[str]]:
    out: Dict[str, List[str]] = {}
    for v in values:
        name, sep, version = v.partition("=")
        if not sep or not name or not version:
            raise SystemExit("build_mirror: --also expects NAME=VERSION, got %r" % v)
        if name not in COMPONENTS:
            raise SystemExit("build_mirror: unknown component %r (known: %s)" % (name, ", ".join(sorted(COMPONENTS))))
        out.setdefault(name, []).append(version)
    return out


def build_mirror(out: Path, also: Optional[Mapping[str, Sequence[str]]] = None, only: Optional[Sequence[str]] = None,
                 repo_root: Path = REPO_ROOT, cache_dir: Optional[Path] = None, stream=None,
                 components: Optional[Mapping[str, Component]] = None) -> Writer:
    components = COMPONENTS if components is None else components
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(cache_dir or os.environ.get("O11Y_MIRROR_CACHE") or Path.home() / ".cache" / "o11y-mirror")
    writer = Writer(out, stream)
    for name in sorted(components):
        if only and name not in only:
            continue
        comp = components[name]
        version, source = read_role_version(comp, repo_root)
        versions = [version] + [v for v in (also or {}).get(name, []) if v != version]
        also_text = ("; also " + ", ".join(versions[1:])) if versions[1:] else ""
        print("%s: %s (from %s)%s" % (name, version, source, also_text), file=writer.stream)
        build_component(comp, versions, writer, cache)
    return writer


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="Build the o11y.stack test artifact mirror.")
    ap.add_argument("--out", required=True, type=Path, help="mirror root directory")
    ap.add_argument("--also", action="append", default=[], metavar="NAME=VERSION",
                    help="also build this version of a component (repeatable)")
    ap.add_argument("--only", action="append", default=[], metavar="NAME", help="only these components")
    ap.add_argument("--cache", type=Path, help="download cache (Debian packages); default ~/.cache/o11y-mirror")
    ap.add_argument("--list", action="store_true", help="list the components and exit")
    args = ap.parse_args(argv)
    if args.list:
        for name in sorted(COMPONENTS):
            comp = COMPONENTS[name]
            version, source = read_role_version(comp)
            print("%s %s (%s) %s" % (name, version, source, " ".join(a.url for a in comp.artifacts)))
        return 0
    for name in args.only:
        if name not in COMPONENTS:
            raise SystemExit("build_mirror: unknown component %r" % name)
    writer = build_mirror(args.out, parse_also(args.also), args.only or None, cache_dir=args.cache)
    print("mirror %s: %d written, %d unchanged" % (writer.out, len(writer.written), len(writer.unchanged)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
