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


# ---------------------------------------------------------------------------
# Mimir (the o11y_standins.mimir stand-in, served in-process; its ruler and
# alertmanager storage are buckets of the s3_server fixture)
# ---------------------------------------------------------------------------

MIMIR_BUCKETS = ("mimir-blocks", "mimir-ruler", "mimir-alertmanager")
MIMIR_TENANT = "team-a"


def _deep_merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value
    return base


@pytest.fixture
def make_mimir_server(tmp_path, s3_server, boto3_client):
    """make_mimir_server(multitenancy=True, fallback=True, **config sections) -> a started Mimir stand-in.

    Sections are deep-merged into the configuration (``limits={"ruler_max_rules_per_rule_group": 2}``).
    ``server.url``; ``server.server`` is the MimirServer; every server is stopped after the test.
    """
    from o11y_standins import mimir

    for bucket in MIMIR_BUCKETS:
        boto3_client.create_bucket(Bucket=bucket)
    started = []

    def make(multitenancy=True, fallback=True, **sections):
        data = tmp_path / f"mimir-{len(started)}"
        data.mkdir()
        cfg = {
            "target": "all",
            "multitenancy_enabled": multitenancy,
            "common": {"storage": {"backend": "s3", "s3": {
                "endpoint": s3_server.url.split("://", 1)[1], "region": "us-east-1", "insecure": True,
                "access_key_id": TEST_ACCESS_KEY, "secret_access_key": TEST_SECRET_KEY}}},
            "blocks_storage": {"s3": {"bucket_name": MIMIR_BUCKETS[0]}},
            "ruler_storage": {"s3": {"bucket_name": MIMIR_BUCKETS[1]}},
            "alertmanager_storage": {"s3": {"bucket_name": MIMIR_BUCKETS[2]}},
            "ruler": {"rule_path": str(data / "ruler")},
            "alertmanager": {"data_dir": str(data / "alertmanager"),
                             "external_url": "http://127.0.0.1:9009/alertmanager"},
        }
        if fallback:
            path = data / "fallback.yml"
            path.write_text("route:\n  receiver: default\nreceivers:\n  - name: default\n")
            cfg["alertmanager"]["fallback_config_file"] = str(path)
        server = mimir.InProcessMimir(_deep_merge(cfg, sections))
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def mimir_server(make_mimir_server):
    """A started Mimir stand-in with multi-tenancy enabled (``mimir_server.url``)."""
    return make_mimir_server()


@pytest.fixture
def mimir_params(mimir_server):
    """Connection options of the Mimir modules for mimir_server, tenant MIMIR_TENANT."""
    return {"mimir_url": mimir_server.url, "tenant": MIMIR_TENANT, "timeout": 10}


@pytest.fixture
def mimir_api(mimir_server):
    """mimir_api(method, path, body=None, tenant=MIMIR_TENANT, content_type=None) -> (status, headers, text):
    a plain HTTP client for mimir_server to set up and inspect state (a dict or list body is sent as JSON)."""
    import urllib.error
    import urllib.request

    def call(method, path, body=None, tenant=MIMIR_TENANT, content_type=None):
        headers = {}
        if tenant is not None:
            headers["X-Scope-OrgID"] = tenant
        data = body
        if isinstance(body, (dict, list)):
            data, content_type = json.dumps(body), content_type or "application/json"
        if isinstance(data, str):
            data = data.encode()
        if data is not None:
            headers["Content-Type"] = content_type or "application/yaml"
        req = urllib.request.Request(mimir_server.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, dict(resp.headers), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode()

    return call


# ---------------------------------------------------------------------------
# Grafana OnCall (the o11y_standins.oncall engine stand-in, served in-process, with a real Redis)
# ---------------------------------------------------------------------------

ONCALL_USERS = [{"id": 1, "login": "admin", "role": "Admin"}, {"id": 2, "login": "alice", "role": "Editor"},
                {"id": 3, "login": "bob", "role": "Viewer", "email": "Bob.Builder@example.com"}]
ONCALL_GRAFANA_TOKEN = "glsa_o11y_test_grafana_token_for_oncall"
ONCALL_TEAMS = {"teams": [{"team_id": 7, "name": "ops"}], "team_members": {"7": [1, 2]}}


def start_redis(tmp_dir):
    """A real redis-server on a free 127.0.0.1 port: (Popen, URI). Debian package redis-server."""
    import subprocess
    import time

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    redis_bin = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = subprocess.Popen([redis_bin, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start (apt-get install -y redis-server)")


@pytest.fixture(scope="session")
def redis_uri(tmp_path_factory):
    """URI of a real Redis shared by the tests of a session."""
    proc, uri = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield uri
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class FakeGrafanaForOnCall:
    """What the engine calls back in Grafana: HEAD /api/org, the Grafana Alertmanager config (grafana_alerting
    integrations) and a service account token's permissions (glsa_ tokens on the public API)."""

    def __init__(self):
        from o11y_standins import framework

        self.alerting_ok = True
        self.sa_permissions = {}  # token -> {action: [scopes]}
        self.calls = []
        router = framework.Router()
        router.add("/api/org", self._org, methods=("GET", "HEAD"))
        router.add("/api/alertmanager/grafana/config/api/v1/alerts", self._alerting)
        router.add("/api/access-control/user/permissions", self._permissions)
        self.http = framework.HTTPService("grafana", "127.0.0.1:0", router).start()
        self.url = self.http.url

    def _auth(self, req):
        self.calls.append((req.method, req.path, req.headers.get("Authorization")))
        return req.headers.get("Authorization", "")

    def _org(self, req):
        ok = self._auth(req) == "Bearer " + ONCALL_GRAFANA_TOKEN
        return (200, json.dumps({"id": 1, "name": "Main Org."}), {"Content-Type": "application/json"}) if ok \
            else (401, json.dumps({"message": "Unauthorized"}), {"Content-Type": "application/json"})

    def _alerting(self, req):
        if self._auth(req) != "Bearer " + ONCALL_GRAFANA_TOKEN or not self.alerting_ok:
            return 404, json.dumps({"message": "Not found"}), {"Content-Type": "application/json"}
        return 200, json.dumps({"template_files": {}, "alertmanager_config": {"route": {"receiver": "default"},
                                                                                "receivers": [{"name": "default"}]}}), \
            {"Content-Type": "application/json"}

    def _permissions(self, req):
        token = self._auth(req).replace("Bearer ", "", 1)
        if token not in self.sa_permissions:
            return 401, json.dumps({"message": "invalid API key"}), {"Content-Type": "application/json"}
        return 200, json.dumps(self.sa_permissions[token]), {"Content-Type": "application/json"}

    def stop(self):
        self.http.stop()


class OnCallFixture:
    """A migrated, plugin-installed engine: ``url``, ``token`` (admin's API token), ``tokens`` (per login),
    ``plugin_token``, ``server``, ``grafana`` (FakeGrafanaForOnCall), ``users`` (login -> OnCall user)."""


def make_oncall_engine(tmp_path, redis, env_overrides=None, users=ONCALL_USERS, grafana=None):
    from o11y_standins import oncall

    engine_dir = tmp_path / "engine"
    (engine_dir / "settings").mkdir(parents=True, exist_ok=True)
    for name in ("hobby", "helm", "prod_without_db"):
        (engine_dir / "settings" / f"{name}.py").write_text("# test placeholder\n")
    env = {"DJANGO_SETTINGS_MODULE": "settings.hobby", "SECRET_KEY": "o11y-test-secret-key", "DATABASE_TYPE": "sqlite3",
           "DATABASE_NAME": str(tmp_path / "oncall.db"), "BROKER_TYPE": "redis", "REDIS_URI": redis,
           "GRAFANA_API_URL": grafana.url if grafana else "http://127.0.0.1:9"}
    env.update(env_overrides or {})
    settings = oncall.EngineSettings(env, str(engine_dir))
    store = oncall.Store(settings.db_path())
    for app, name in oncall.migrations_for(settings.version):
        store.apply(app, name)
    return settings


@pytest.fixture
def oncall_server(tmp_path, redis_uri):
    """A started OnCall engine stand-in with users admin (Admin), alice (Editor), bob (Viewer), an API token each,
    and a team "ops" (``team_id``) of admin and alice."""
    from o11y_standins import oncall
    from o11y_standins.testing import free_port

    grafana = FakeGrafanaForOnCall()
    port = free_port()
    settings = make_oncall_engine(tmp_path, redis_uri, {"BASE_URL": f"http://127.0.0.1:{port}"}, grafana=grafana)
    server = oncall.OnCallServer(settings, [f"127.0.0.1:{port}"]).start()
    fixture = OnCallFixture()
    fixture.server, fixture.url, fixture.grafana, fixture.redis_uri = server, server.url, grafana, redis_uri
    try:
        boot = oncall.bootstrap_api_token(server.url, ONCALL_USERS, grafana_url=grafana.url,
                                          grafana_token=ONCALL_GRAFANA_TOKEN)
        fixture.plugin_token = boot["plugin_token"]
        fixture.tokens = {"admin": boot["api_token"]}
        for user in ONCALL_USERS[1:]:
            headers = oncall.plugin_headers(fixture.plugin_token, grafana_token=ONCALL_GRAFANA_TOKEN, user=user)
            if user["role"] != "Admin":  # API tokens need the Admin role: promote, create, demote (sync)
                promoted = [dict(u, role="Admin") if u["id"] == user["id"] else u for u in ONCALL_USERS]
                oncall._http_json("POST", server.url + "/api/internal/v1/plugin/v2/sync",
                                  oncall.sync_data(grafana.url, server.url, promoted,
                                                   grafana_token=ONCALL_GRAFANA_TOKEN, **ONCALL_TEAMS), headers)
            status, tok = oncall._http_json("POST", server.url + "/api/internal/v1/tokens/", {"name": "test"}, headers)
            assert status == 201, tok
            fixture.tokens[user["login"]] = tok["token"]
        status, _ = oncall._http_json("POST", server.url + "/api/internal/v1/plugin/v2/sync",
                                      oncall.sync_data(grafana.url, server.url, ONCALL_USERS,
                                                       grafana_token=ONCALL_GRAFANA_TOKEN, **ONCALL_TEAMS),
                                      oncall.plugin_headers(fixture.plugin_token, grafana_token=ONCALL_GRAFANA_TOKEN))
        assert status == 200
        fixture.token = fixture.tokens["admin"]
        status, page = oncall._http_json("GET", server.url + "/api/v1/users/", headers={"Authorization": fixture.token})
        fixture.users = {u["username"]: u for u in page["results"]}
        status, page = oncall._http_json("GET", server.url + "/api/v1/teams/", headers={"Authorization": fixture.token})
        fixture.team_id = page["results"][0]["id"]
        yield fixture
    finally:
        server.stop()
        grafana.stop()


@pytest.fixture
def oncall_params(oncall_server):
    """Connection options of the OnCall modules for oncall_server (admin's API token)."""
    return {"oncall_url": oncall_server.url, "oncall_api_token": oncall_server.token, "timeout": 10}


@pytest.fixture
def oncall_api(oncall_server):
    """oncall_api(method, path, body=None, token=None) -> (status, JSON body): the public API as admin (or *token*)."""
    from o11y_standins import oncall

    def call(method, path, body=None, token=None):
        return oncall._http_json(method, oncall_server.url + path, body,
                                 {"Authorization": token or oncall_server.token})

    return call


@pytest.fixture
def oncall_engine(tmp_path):
    """oncall_engine(redis_uri, **env) -> a started OnCall engine stand-in on a fresh, migrated database, with
    BASE_URL set to its own address unless given (stopped after the test)."""
    from o11y_standins import oncall
    from o11y_standins.testing import free_port

    started = []

    def make(redis, **env):
        port = free_port()
        env.setdefault("BASE_URL", f"http://127.0.0.1:{port}")
        settings = make_oncall_engine(tmp_path / f"engine{len(started)}", redis, env)
        server = oncall.OnCallServer(settings, [f"127.0.0.1:{port}"]).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
