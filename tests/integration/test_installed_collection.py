"""Build the collection, install the tarball, and run a module and a role from the installed copy."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from tests.conftest import ROOT, tool

sys.path.insert(0, str(ROOT / "tests" / "standins"))
from o11y_standins.s3server import S3Server  # noqa: E402

PLAYBOOK = """
- name: Use the installed collection
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    o11y_artifact_mirror: "{{ lookup('ansible.builtin.env', 'MIRROR_URL') }}"
    o11y_artifact_cache_dir: "{{ lookup('ansible.builtin.env', 'WORK') }}/cache"
    o11y_install_root: "{{ lookup('ansible.builtin.env', 'WORK') }}/opt"
    demo_release: https://releases.example.invalid/demo/v1.0.0
    s3: &s3
      endpoint_url: "{{ lookup('ansible.builtin.env', 'S3_URL') }}"
      access_key: installed-test
      secret_key: installed-test-secret
  tasks:
    - name: Create a bucket with the installed module
      o11y.stack.s3_bucket:
        <<: *s3
        name: installed-bucket
        versioning: true
      register: created

    - name: Run it again
      o11y.stack.s3_bucket:
        <<: *s3
        name: installed-bucket
        versioning: true
      register: again

    - name: Check the module results
      ansible.builtin.assert:
        that:
          - created is changed
          - again is not changed
          - again.bucket.versioning == 'Enabled'

    - name: Install an archive from the http mirror with the installed role
      ansible.builtin.include_role:
        name: o11y.stack.common
        tasks_from: artifact
      vars:
        common_component: demo
        common_version: 1.0.0
        common_artifact_url: "{{ demo_release }}/demo-1.0.0.linux-amd64.tar.gz"
        common_artifact_checksum_url: "{{ demo_release }}/SHA256SUMS"
        common_artifact_format: tar.gz
        common_artifact_binaries: [{src: demo-1.0.0.linux-amd64/demo, dest: demo}]
        common_artifact_link_bin: false

    - name: Run the installed binary through the current symlink
      ansible.builtin.command: "{{ lookup('ansible.builtin.env', 'WORK') }}/opt/demo/current/demo"
      register: demo
      changed_when: false

    - name: Check the installed binary
      ansible.builtin.assert:
        that: demo.stdout == 'demo 1.0.0'

    - name: Refuse an artifact whose checksum does not match
      block:
        - name: Install the tampered archive
          ansible.builtin.include_role:
            name: o11y.stack.common
            tasks_from: artifact
          vars:
            common_component: demo-tampered
            common_version: 1.0.0
            common_artifact_url: "{{ demo_release }}/demo-1.0.0.tampered.tar.gz"
            common_artifact_checksum_url: "{{ demo_release }}/SHA256SUMS"
            common_artifact_format: tar.gz
            common_artifact_binaries: [{src: demo-1.0.0.linux-amd64/demo, dest: demo}]
            common_artifact_link_bin: false
        - name: Fail, the tampered archive was installed
          ansible.builtin.fail:
            msg: tampered archive accepted
      rescue:
        - name: Check the failure
          ansible.builtin.assert:
            that: ansible_failed_result.msg is search('checksum', ignorecase=true)

    - name: Stat the tampered install directory
      ansible.builtin.stat:
        path: "{{ lookup('ansible.builtin.env', 'WORK') }}/opt/demo-tampered"
      register: tampered

    - name: Check that nothing of it was installed
      ansible.builtin.assert:
        that: not tampered.stat.exists
"""


def _tar_with(path: Path, member: str, content: bytes) -> None:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(content)
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(content))


@pytest.fixture()
def http_mirror(tmp_path: Path):
    root = tmp_path / "mirror"
    release = root / "releases.example.invalid/demo/v1.0.0"
    release.mkdir(parents=True)
    good = release / "demo-1.0.0.linux-amd64.tar.gz"
    _tar_with(good, "demo-1.0.0.linux-amd64/demo", b"#!/bin/sh\necho demo 1.0.0\n")
    tampered = release / "demo-1.0.0.tampered.tar.gz"
    _tar_with(tampered, "demo-1.0.0.linux-amd64/demo", b"#!/bin/sh\necho evil\n")
    listed = hashlib.sha256(good.read_bytes()).hexdigest()
    # The tampered archive is listed with the genuine archive's hash.
    (release / "SHA256SUMS").write_text(f"{listed}  demo-1.0.0.linux-amd64.tar.gz\n{listed}  demo-1.0.0.tampered.tar.gz\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_build_install_and_use(tmp_path: Path, http_mirror: str) -> None:
    build = subprocess.run([tool("ansible-galaxy"), "collection", "build", "--force", "--output-path", str(tmp_path)],
                           cwd=ROOT, capture_output=True, text=True)
    assert build.returncode == 0, build.stdout + build.stderr
    tarball = next(tmp_path.glob("o11y-stack-*.tar.gz"))
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    for must in ("MANIFEST.json", "roles/minio/tasks/main.yml", "roles/common/meta/argument_specs.yml",
                 "plugins/modules/s3_bucket.py", "plugins/module_utils/s3.py", "playbooks/site.yml"):
        assert must in names or any(n.endswith(must) for n in names), f"{must} missing from {tarball.name}"
    assert not [n for n in names if n.startswith((".collections", ".venv", "tests/output"))], "build_ignore leaks"

    collections = tmp_path / "collections"
    # Without the developer's ANSIBLE_* settings: a collections path holding this checkout
    # would make galaxy report the collection as installed already.
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    install = subprocess.run([tool("ansible-galaxy"), "collection", "install", "--offline", str(tarball), "-p", str(collections)],
                             cwd=tmp_path, env=clean_env, capture_output=True, text=True)
    assert install.returncode == 0, install.stdout + install.stderr
    assert (collections / "ansible_collections/o11y/stack/roles/minio/tasks/main.yml").is_file()

    server = S3Server(access_key="installed-test", secret_key="installed-test-secret")
    server.start()
    try:
        (tmp_path / "play.yml").write_text(PLAYBOOK)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
        env.update({
            "ANSIBLE_COLLECTIONS_PATH": str(collections),
            "ANSIBLE_CONFIG": str(tmp_path / "none.cfg"),
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            "ANSIBLE_LOCALHOST_WARNING": "false",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
            "S3_URL": server.url, "MIRROR_URL": http_mirror, "WORK": str(tmp_path),
        })
        play = subprocess.run([tool("ansible-playbook"), "play.yml"], cwd=tmp_path, env=env,
                              capture_output=True, text=True)
        assert play.returncode == 0, play.stdout[-6000:] + play.stderr[-3000:]
        assert "failed=0" in play.stdout
    finally:
        server.stop()
    # The role from the installed copy installed the binary side by side with a current link.
    assert (tmp_path / "opt/demo/1.0.0/demo").stat().st_mode & 0o777 == 0o755
    assert os.readlink(tmp_path / "opt/demo/current") == str(tmp_path / "opt/demo/1.0.0")
