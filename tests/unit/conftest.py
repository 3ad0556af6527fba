# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared pytest fixtures for the o11y.stack unit tests.

* makes ``ansible_collections.o11y.stack`` importable from this checkout
  (unless it already is, e.g. under ``ansible-test units``);
* puts ``tests/standins`` on ``sys.path`` for the ``o11y_standins`` stand-ins;
* ``s3_server``: a real S3 API (moto behind SigV4 credential checks) on
  127.0.0.1 with a free port, fresh for every test;
* ``run_module``: runs a module's ``main()`` with ansible-core's
  ``patch_module_args`` and returns the JSON result it printed.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import io
import json
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from unittest import mock

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
STANDINS = REPO_ROOT / "tests" / "standins"

TEST_ACCESS_KEY = "o11y-test-access-key"
TEST_SECRET_KEY = "o11y-test-secret-key-0123456789"

if str(STANDINS) not in sys.path:
    sys.path.insert(0, str(STANDINS))


def _collection_importable() -> bool:
    try:
        importlib.import_module("ansible_collections.o11y.stack.plugins.module_utils")
    except ImportError:
        return False
    return True


def _expose_collection() -> None:
    """Make this checkout importable as ansible_collections.o11y.stack."""
    if _collection_importable():
        return
    base = tempfile.mkdtemp(prefix="o11y-stack-unit-")
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    namespace_dir = Path(base, "ansible_collections", "o11y")
    namespace_dir.mkdir(parents=True)
    os.symlink(REPO_ROOT, namespace_dir / "stack")
    sys.path.insert(0, base)
    # A namespace package imported before (e.g. the ansible package's
    # collections in site-packages) recomputes its path from sys.path, but
    # drop cached failures so the next import sees the new entry.
    for name in ("ansible_collections.o11y", "ansible_collections.o11y.stack"):
        sys.modules.pop(name, None)
    if not _collection_importable():  # pragma: no cover - environment problem
        raise RuntimeError(f"cannot make ansible_collections.o11y.stack importable from {REPO_ROOT}")


_expose_collection()

from o11y_standins.s3server import S3Server  # pylint: disable=wrong-import-position


@pytest.fixture
def s3_server():
    """A started S3Server with the test credentials; stopped after the test."""
    server = S3Server(host="127.0.0.1", port=0, access_key=TEST_ACCESS_KEY, secret_key=TEST_SECRET_KEY)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def closed_port_url():
    """URL of a port on 127.0.0.1 where nothing listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def s3_params(s3_server):
    """Connection options of the S3 modules for the s3_server fixture."""
    return {
        "endpoint_url": s3_server.url,
        "access_key": TEST_ACCESS_KEY,
        "secret_key": TEST_SECRET_KEY,
        "retries": 0,
        "connect_timeout": 5,
        "read_timeout": 30,
    }


@pytest.fixture
def boto3_client(s3_server):
    """A plain boto3 S3 client for s3_server, to set up and inspect state."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=s3_server.url,
        aws_access_key_id=TEST_ACCESS_KEY,
        aws_secret_access_key=TEST_SECRET_KEY,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


class ModuleRun(dict):
    """The JSON result of one module run, plus its exit code."""

    exit_code: int = 0


def _run_module(main, args: dict, check_mode: bool = False, diff: bool = False) -> ModuleRun:
    from ansible.module_utils.testing import patch_module_args

    module_args = dict(args)
    if check_mode:
        module_args["_ansible_check_mode"] = True
    if diff:
        module_args["_ansible_diff"] = True
    stdout = io.StringIO()
    exit_code = None
    # Importing controller code (ansible.errors, as the filter tests do) flips this flag and
    # sends module warnings to the controller's display; a module run never has it set.
    from ansible.module_utils import _internal as _ansible_internal

    with patch_module_args(module_args), contextlib.redirect_stdout(stdout), \
            mock.patch.object(_ansible_internal, "is_controller", False):
        try:
            main()
        except SystemExit as exc:
            exit_code = exc.code or 0
    if exit_code is None:
        raise AssertionError("the module returned without calling exit_json or fail_json")
    lines = [line for line in stdout.getvalue().splitlines() if line.strip()]
    if not lines:
        raise AssertionError("the module printed no result")
    result = ModuleRun(json.loads(lines[-1]))
    result.exit_code = exit_code
    return result


@pytest.fixture
def run_module():
    """run_module(main, args, check_mode=False, diff=False) -> result dict."""
    return _run_module


# ---------------------------------------------------------------------------
# Grafana (the o11y_standins.grafana stand-in, served in-process)
# ---------------------------------------------------------------------------

GRAFANA_ADMIN_USER = "admin"
GRAFANA_ADMIN_PASSWORD = "o11y-test-grafana-admin-1"


@pytest.fixture
def grafana_server(tmp_path):
    """A started Grafana stand-in on 127.0.0.1 (fresh data directory, admin/GRAFANA_ADMIN_PASSWORD).

    ``grafana_server.url``; ``grafana_server.app.break_database()`` makes writes fail like a broken database.
    """
    from o11y_standins import grafana

    home = grafana.make_homepath(str(tmp_path / "grafana-home"))
    settings = grafana.Settings(home, overrides=[
        "cfg:server.http_addr=127.0.0.1", "cfg:server.http_port=0",
        "cfg:security.admin_password=" + GRAFANA_ADMIN_PASSWORD,
        "cfg:paths.data=" + str(tmp_path / "grafana-data")], env={})
    server = grafana.GrafanaServer(settings).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def grafana_params(grafana_server):
    """Connection options of the Grafana modules for grafana_server (basic auth as the admin)."""
    return {"grafana_url": grafana_server.url, "grafana_user": GRAFANA_ADMIN_USER,
            "grafana_password": GRAFANA_ADMIN_PASSWORD, "timeout": 10}


@pytest.fixture
def grafana_api(grafana_server):
    """grafana_api(method, path, body=None, token=None, org_id=None) -> (status, JSON body): a plain HTTP client
    for grafana_server, as the admin unless *token* is given, to set up and inspect state."""
    import base64
    import urllib.error
    import urllib.request

    def call(method, path, body=None, token=None, org_id=None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        else:
            creds = f"{GRAFANA_ADMIN_USER}:{GRAFANA_ADMIN_PASSWORD}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(creds).decode()
        if org_id:
            headers["X-Grafana-Org-Id"] = str(org_id)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(grafana_server.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    return call


@pytest.fixture
def grafana_token(grafana_api):
    """token(role="Admin", org_id=None) -> a service account token of that role."""
    counter = {"n": 0}

    def make(role="Admin", org_id=None):
        counter["n"] += 1
        status, sa = grafana_api("POST", "/api/serviceaccounts", {"name": f"test-{role}-{counter['n']}",
                                                                   "role": role}, org_id=org_id)
        assert status == 201, sa
        status, tok = grafana_api("POST", f"/api/serviceaccounts/{sa['id']}/tokens", {"name": "t"}, org_id=org_id)
        assert status == 200, tok
        return tok["key"]

    return make
