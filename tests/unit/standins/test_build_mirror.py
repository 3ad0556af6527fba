# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for tests/standins/build_mirror.py (the artifact mirror builder)."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import os
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

STANDINS = Path(__file__).resolve().parents[2] / "standins"
REPO_ROOT = STANDINS.parent.parent
if str(STANDINS) not in sys.path:
    sys.path.insert(0, str(STANDINS))

_spec = importlib.util.spec_from_file_location("build_mirror", STANDINS / "build_mirror.py")
bm = importlib.util.module_from_spec(_spec)
sys.modules["build_mirror"] = bm
_spec.loader.exec_module(bm)

PINNED = "RELEASE.2025-09-07T16-13-09Z"
BASE = "github.com/minio/minio/releases/download"


def fake_repo(tmp_path, version=None):
    root = tmp_path / "repo"
    (root / "roles" / "minio" / "defaults").mkdir(parents=True)
    if version:
        (root / "roles" / "minio" / "defaults" / "main.yml").write_text(
            "---\n# MinIO release\nminio_version: \"%s\"\nminio_port: 9000\n" % version)
    return root


def build(out, **kw):
    kw.setdefault("stream", io.StringIO())
    # MinIO is the reference entry; every other entry shares the same code paths.
    kw.setdefault("only", ["minio"])
    return bm.build_mirror(out, **kw)


def files_under(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_layout_and_checksums(tmp_path):
    out = tmp_path / "mirror"
    stream = io.StringIO()
    build(out, repo_root=fake_repo(tmp_path), stream=stream)
    expected = []
    for arch in ("amd64", "arm64"):
        name = "minio.linux-%s.%s" % (arch, PINNED)
        expected += ["%s/%s/%s" % (BASE, PINNED, name), "%s/%s/%s.sha256sum" % (BASE, PINNED, name)]
    assert files_under(out) == sorted(expected)
    for arch in ("amd64", "arm64"):
        binary = out / BASE / PINNED / ("minio.linux-%s.%s" % (arch, PINNED))
        data = binary.read_bytes()
        assert data.startswith(b"#!/opt/o11y-standins/venv/bin/python3\n")
        assert stat.S_IMODE(binary.stat().st_mode) == 0o755
        line = (out / BASE / PINNED / ("minio.linux-%s.%s.sha256sum" % (arch, PINNED))).read_text()
        # upstream names the dl.min.io file inside, not the GitHub asset
        assert line == "%s  minio.%s\n" % (hashlib.sha256(data).hexdigest(), PINNED)
    text = stream.getvalue()
    assert "minio: %s (from default" % PINNED in text
    assert text.count("wrote ") == 4


def test_zipapp_contents_and_it_runs(tmp_path):
    out = tmp_path / "mirror"
    build(out, repo_root=fake_repo(tmp_path))
    binary = out / BASE / PINNED / ("minio.linux-amd64.%s" % PINNED)
    with zipfile.ZipFile(binary) as zf:
        names = zf.namelist()
        assert names == sorted(names)
        assert "__main__.py" in names and "o11y_standins/minio.py" in names
        assert "o11y_standins/framework.py" in names and "o11y_standins/s3server.py" in names
        assert all(zi.date_time == (1980, 1, 1, 0, 0, 0) for zi in zf.infolist())
        main = zf.read("__main__.py").decode()
        assert "version='%s'" % PINNED in main and "TEST STAND-IN" in main
    res = subprocess.run([sys.executable, str(binary), "--version"], capture_output=True, text=True,
                         env={"PATH": os.environ.get("PATH", "")}, cwd=tmp_path, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("minio version %s (commit-id=" % PINNED)


def test_version_from_role_defaults_and_also(tmp_path):
    out = tmp_path / "mirror"
    repo = fake_repo(tmp_path, "RELEASE.2030-01-02T03-04-05Z")
    stream = io.StringIO()
    build(out, repo_root=repo, also={"minio": ["RELEASE.2024-01-01T00-00-00Z", "RELEASE.2030-01-02T03-04-05Z"]},
          stream=stream)
    versions = sorted(p.name for p in (out / BASE).iterdir())
    assert versions == ["RELEASE.2024-01-01T00-00-00Z", "RELEASE.2030-01-02T03-04-05Z"]
    assert "(from roles/minio/defaults/main.yml); also RELEASE.2024-01-01T00-00-00Z" in stream.getvalue()
    binary = out / BASE / "RELEASE.2024-01-01T00-00-00Z" / "minio.linux-arm64.RELEASE.2024-01-01T00-00-00Z"
    res = subprocess.run([sys.executable, str(binary), "--version"], capture_output=True, text=True, check=False)
    assert res.stdout.startswith("minio version RELEASE.2024-01-01T00-00-00Z ")
    assert "Copyright: 2015-2024 MinIO, Inc." in res.stdout
    sums = (out / BASE / "RELEASE.2030-01-02T03-04-05Z" /
            "minio.linux-amd64.RELEASE.2030-01-02T03-04-05Z.sha256sum").read_text()
    assert sums.endswith("  minio.RELEASE.2030-01-02T03-04-05Z\n")


def test_templated_role_version_falls_back_to_default(tmp_path, capsys):
    repo = fake_repo(tmp_path, "{{ o11y_minio_version }}")
    comp = bm.COMPONENTS["minio"]
    assert bm.read_role_version(comp, repo)[0] == PINNED
    assert "templated" in capsys.readouterr().err


def test_deterministic_and_rebuild_is_a_noop(tmp_path):
    repo = fake_repo(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    build(a, repo_root=repo)
    build(b, repo_root=repo)
    assert files_under(a) == files_under(b)
    for rel in files_under(a):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    mtimes = {rel: (a / rel).stat().st_mtime_ns for rel in files_under(a)}
    stream = io.StringIO()
    writer = build(a, repo_root=repo, stream=stream)
    assert writer.written == [] and len(writer.unchanged) == 4
    assert "wrote" not in stream.getvalue()
    assert {rel: (a / rel).stat().st_mtime_ns for rel in files_under(a)} == mtimes


def test_cli(tmp_path):
    out = tmp_path / "m"
    res = subprocess.run([sys.executable, str(STANDINS / "build_mirror.py"), "--out", str(out), "--only", "minio",
                          "--also", "minio=RELEASE.2025-01-01T00-00-00Z"], capture_output=True, text=True,
                         check=False)
    assert res.returncode == 0, res.stderr
    assert "wrote     %s/RELEASE.2025-01-01T00-00-00Z/minio.linux-amd64.RELEASE.2025-01-01T00-00-00Z" % BASE \
        in res.stdout
    assert res.stdout.strip().endswith("8 written, 0 unchanged")
    bad = subprocess.run([sys.executable, str(STANDINS / "build_mirror.py"), "--out", str(out),
                          "--also", "nosuch=1"], capture_output=True, text=True, check=False)
    assert bad.returncode != 0 and "unknown component" in bad.stderr


def test_url_to_path():
    out = Path("/m")
    assert bm.url_to_path(out, "https://dl.grafana.com/oss/release/grafana-12.0.0.linux-amd64.tar.gz") == \
        Path("/m/dl.grafana.com/oss/release/grafana-12.0.0.linux-amd64.tar.gz")
    with pytest.raises(ValueError):
        bm.url_to_path(out, "https://host/../etc/passwd")


def test_extension_points_zip_tar_and_sums_file(tmp_path):
    """The shapes later components need: zip and tar.gz archives, one SHA256SUMS file."""
    rel = "https://example.invalid/demo/releases/download/v{version}/"
    comp = bm.Component(
        name="demo", default_version="1.2.3", goversion="go1.23.0",
        sums=bm.SumsFile(rel + "SHA256SUMS"),
        artifacts=(
            bm.Artifact(rel + "demo-linux-{arch}.zip", kind="zip",
                        members=(("demo-linux-{arch}", bm.StandinZipapp("o11y_standins.minio:main")),)),
            bm.Artifact(rel + "demo-{version}.linux-{arch}.tar.gz", kind="tar.gz",
                        members=(("demo-{version}.linux-{arch}/bin/demo", bm.Text("#!/bin/sh\necho {version}\n", 0o755)),
                                 ("demo-{version}.linux-{arch}/LICENSE", bm.Text("license\n"))),
                        checksum=bm.Sidecar(".sha256")),
        ),
    )
    out1, out2 = tmp_path / "one", tmp_path / "two"
    for out in (out1, out2):
        bm.build_mirror(out, components={"demo": comp}, stream=io.StringIO())
    assert [(out1 / r).read_bytes() for r in files_under(out1)] == [(out2 / r).read_bytes() for r in files_under(out2)]
    base = out1 / "example.invalid/demo/releases/download/v1.2.3"
    with zipfile.ZipFile(base / "demo-linux-arm64.zip") as zf:
        info = zf.getinfo("demo-linux-arm64")
        assert (info.external_attr >> 16) & 0o777 == 0o755
        assert zf.read("demo-linux-arm64").startswith(b"#!/opt/o11y-standins/venv/bin/python3\n")
    tgz = base / "demo-1.2.3.linux-amd64.tar.gz"
    assert gzip.open(tgz).read()  # valid gzip
    with tarfile.open(tgz) as tf:
        members = {m.name: m for m in tf.getmembers()}
        assert sorted(members) == ["demo-1.2.3.linux-amd64", "demo-1.2.3.linux-amd64/LICENSE",
                                   "demo-1.2.3.linux-amd64/bin", "demo-1.2.3.linux-amd64/bin/demo"]
        binm = members["demo-1.2.3.linux-amd64/bin/demo"]
        assert binm.mode == 0o755 and binm.mtime == 0 and binm.uid == 0
        assert tf.extractfile(binm).read() == b"#!/bin/sh\necho 1.2.3\n"
    assert (base / "demo-1.2.3.linux-amd64.tar.gz.sha256").read_text() == \
        "%s  demo-1.2.3.linux-amd64.tar.gz\n" % hashlib.sha256(tgz.read_bytes()).hexdigest()
    sums = (base / "SHA256SUMS").read_text().splitlines()
    assert [line.split("  ")[1] for line in sums] == sorted([
        "demo-linux-amd64.zip", "demo-linux-arm64.zip",
        "demo-1.2.3.linux-amd64.tar.gz", "demo-1.2.3.linux-arm64.tar.gz"])
    for line in sums:
        digest, name = line.split("  ")
        assert hashlib.sha256((base / name).read_bytes()).hexdigest() == digest
