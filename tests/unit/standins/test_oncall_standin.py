# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Grafana OnCall engine stand-in: entry points (manage.py, uwsgi, celery), environment, migrations,
health, the public and plugin APIs, persistence, and a real Redis for cache and broker."""

from __future__ import annotations

import datetime
import gzip
import importlib.util
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from o11y_standins import oncall
from o11y_standins.testing import StandinProcess, free_port, http_get, wait_until

STANDINS = Path(__file__).resolve().parents[2] / "standins"
USERS = [{"id": 1, "login": "admin"}, {"id": 2, "login": "eve", "role": "Viewer"}]


def start_redis(tmp_path, port=None):
    port = port or free_port()
    proc = subprocess.Popen([shutil.which("redis-server") or "/usr/bin/redis-server", "--bind", "127.0.0.1", "--port",
                             str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: oncall.redis_ping("redis://127.0.0.1:%d/0" % port) is None, timeout=10, message="redis")
    return proc, "redis://127.0.0.1:%d/0" % port


@pytest.fixture
def redis(tmp_path):
    proc, uri = start_redis(tmp_path)
    yield uri
    proc.terminate()
    proc.wait(timeout=10)


def engine_dir(tmp_path):
    """The engine/ directory of the release archive (the mirror's members, zipapp left out)."""
    root = tmp_path / "release"
    for path, payload in oncall.MIRROR_MEMBERS:
        target = root / path.format(version=oncall.ONCALL_VERSION)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(payload.build(None))
        os.chmod(target, payload.mode)
    return root / ("oncall-%s" % oncall.ONCALL_VERSION) / "engine"


def base_env(tmp_path, redis_uri, **extra):
    env = {"DJANGO_SETTINGS_MODULE": "settings.hobby", "SECRET_KEY": "s3cr3t", "DATABASE_TYPE": "sqlite3",
           "DATABASE_NAME": str(tmp_path / "oncall.db"), "BROKER_TYPE": "redis", "REDIS_URI": redis_uri,
           "BASE_URL": "http://127.0.0.1:8080", "GRAFANA_API_URL": "http://127.0.0.1:9"}
    env.update(extra)
    return env


def run_tool(tool, args, cwd, env, timeout=30):
    cmd = [sys.executable, "-m", "o11y_standins.oncall", tool] + list(args)
    full = dict(os.environ, PYTHONPATH=str(STANDINS))
    full.pop("NOTIFY_SOCKET", None)
    full.update(env)
    return subprocess.run(cmd, cwd=cwd, env=full, capture_output=True, text=True, timeout=timeout)


# ---- manage.py ------------------------------------------------------------------------------

def test_migrate_records_migrations_once(tmp_path, redis):
    eng = engine_dir(tmp_path)
    env = base_env(tmp_path, redis)
    check = run_tool("manage.py", ["migrate", "--check"], eng, env)
    assert check.returncode == 1 and "Apply all migrations" in check.stdout
    first = run_tool("manage.py", ["migrate", "--noinput"], eng, env)
    assert first.returncode == 0, first.stderr
    assert "Applying alerts.0075_alter_alertgrouplogrecord_action_source... OK" in first.stdout
    again = run_tool("manage.py", ["migrate", "--noinput"], eng, env)
    assert again.returncode == 0 and "No migrations to apply." in again.stdout
    assert run_tool("manage.py", ["migrate", "--check"], eng, env).returncode == 0
    shown = run_tool("manage.py", ["showmigrations"], eng, env).stdout
    assert " [X] 0001_squashed_initial" in shown
    import sqlite3
    rows = sqlite3.connect(tmp_path / "oncall.db").execute("SELECT app, name FROM django_migrations").fetchall()
    assert ("user_management", "0029_remove_organization_general_log_channel_id_db") in rows
    assert len(rows) == len(set(rows)) == len(oncall.MIGRATIONS)
    # a later release brings a migration of its own: an upgrade has something to apply
    assert len(oncall.migrations_for("1.16.10")) == len(oncall.MIGRATIONS) + 1


def test_manage_refusals(tmp_path, redis):
    eng = engine_dir(tmp_path)
    env = base_env(tmp_path, redis)
    no_key = run_tool("manage.py", ["migrate"], eng, dict(env, SECRET_KEY=""))
    assert no_key.returncode == 1
    assert "ImproperlyConfigured: The SECRET_KEY setting must not be empty." in no_key.stderr
    bad_module = run_tool("manage.py", ["migrate"], eng, dict(env, DJANGO_SETTINGS_MODULE="settings.prod"))
    assert bad_module.returncode == 1 and "No module named 'settings.prod'" in bad_module.stderr
    bad_db = run_tool("manage.py", ["migrate"], eng, dict(env, DATABASE_TYPE="oracle"))
    assert bad_db.returncode == 1 and "AssertionError" in bad_db.stderr
    unknown = run_tool("manage.py", ["frobnicate"], eng, env)
    assert unknown.returncode == 1 and "Unknown command: 'frobnicate'" in unknown.stderr
    bad_opt = run_tool("manage.py", ["migrate", "--bogus"], eng, env)
    assert bad_opt.returncode == 2 and "unrecognized arguments: --bogus" in bad_opt.stderr
    nodir = run_tool("manage.py", ["migrate"], eng, dict(env, DATABASE_NAME=str(tmp_path / "missing" / "x.db")))
    assert nodir.returncode == 1 and "unable to open database file" in nodir.stderr
    # create_sqlite_db needs neither SECRET_KEY nor a migrated database, but sqlite3
    assert run_tool("manage.py", ["create_sqlite_db"], eng, dict(env, SECRET_KEY="")).returncode == 0
    pg = run_tool("manage.py", ["create_sqlite_db"], eng, dict(env, DATABASE_TYPE="postgresql"))
    assert pg.returncode == 1 and "AssertionError" in pg.stderr


def test_postgresql_settings(tmp_path, redis):
    eng = engine_dir(tmp_path)
    down = free_port()
    env = base_env(tmp_path, redis, DATABASE_TYPE="postgresql", DATABASE_NAME="oncall", DATABASE_HOST="127.0.0.1",
                   DATABASE_PORT=str(down), DATABASE_USER="oncall", DATABASE_PASSWORD="pw",
                   O11Y_STANDIN_ONCALL_STATE_DIR=str(tmp_path))
    refused = run_tool("manage.py", ["migrate"], eng, env)
    assert refused.returncode == 1
    assert 'OperationalError: connection to server at "127.0.0.1", port %d failed' % down in refused.stderr
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    try:
        env["DATABASE_PORT"] = str(listener.getsockname()[1])
        ok = run_tool("manage.py", ["migrate"], eng, env)
        assert ok.returncode == 0, ok.stderr
        assert (tmp_path / ".o11y-standin-postgresql-oncall.sqlite3").is_file()
    finally:
        listener.close()
    unnamed = run_tool("manage.py", ["migrate"], eng, dict(env, DATABASE_NAME=""))
    assert unnamed.returncode == 1 and "Please supply the NAME value." in unnamed.stderr


# ---- uwsgi -----------------------------------------------------------------------------------

def write_ini(tmp_path, port, **changes):
    text = oncall.UWSGI_INI.replace("http=0.0.0.0:8080", "http=127.0.0.1:%d" % port)
    text = text.replace("pidfile=/tmp/project-master.pid", "pidfile=%s" % (tmp_path / "uwsgi.pid"))
    for key, value in changes.items():
        text += "%s=%s\n" % (key.replace("_", "-"), value)
    path = tmp_path / "uwsgi.ini"
    path.write_text(text)
    return path


def uwsgi(tmp_path, eng, env, port, *extra, **ini):
    ini_path = write_ini(tmp_path, port, **ini)
    proc = StandinProcess(["oncall", "uwsgi", "--ini", str(ini_path), "--chdir", str(eng), *extra], env=env)
    return proc.start()


def test_uwsgi_serves_health_and_needs_migrations(tmp_path, redis):
    eng = engine_dir(tmp_path)
    env = base_env(tmp_path, redis)
    port = free_port()
    proc = uwsgi(tmp_path, eng, env, port)
    try:
        url = "http://127.0.0.1:%d" % port
        proc.wait_http(url + "/health/")
        for path in ("/", "/health/", "/ready/", "/api/internal/v1/health/"):
            assert http_get(url + path)[::2] == (200, b"Ok"), path
        assert http_get(url + "/health")[0] == 404  # APPEND_SLASH is off in settings.hobby
        assert http_get(url + "/startupprobe/")[0] == 500  # not migrated yet
        assert (tmp_path / "uwsgi.pid").read_text().strip() == str(proc.proc.pid)
        assert run_tool("manage.py", ["migrate"], eng, env).returncode == 0
        assert http_get(url + "/startupprobe/")[::2] == (200, b"Ok")
        assert "spawned uWSGI worker 5" in proc.stderr  # processes=5
    finally:
        assert proc.terminate() == 0  # die-on-term
        proc.close()
    assert not (tmp_path / "uwsgi.pid").exists()  # vacuum


def test_uwsgi_refusals(tmp_path, redis):
    eng = engine_dir(tmp_path)
    env = base_env(tmp_path, redis)
    port = free_port()
    no_key = uwsgi(tmp_path, eng, dict(env, SECRET_KEY=""), port)
    assert no_key.proc.wait(timeout=20) == 22
    assert "The SECRET_KEY setting must not be empty." in no_key.stderr
    assert "*** no app loaded. GAME OVER ***" in no_key.stderr
    strict = uwsgi(tmp_path, eng, env, port, frobnicate="1")
    assert strict.proc.wait(timeout=20) == 1 and "[strict-mode] unknown config directive: frobnicate" in strict.stderr
    bad_flag = StandinProcess(["oncall", "uwsgi", "--frobnicate"], env=env).start()
    assert bad_flag.proc.wait(timeout=20) == 1 and "unrecognized option '--frobnicate'" in bad_flag.stderr
    elsewhere = uwsgi(tmp_path, eng, env, port, "--chdir", str(tmp_path))  # the last chdir wins: no engine module
    assert elsewhere.proc.wait(timeout=20) == 22 and "No module named 'engine'" in elsewhere.stderr
    # migrated, no organisation yet and no GRAFANA_API_URL: the plugin app refuses to start under uwsgi
    assert run_tool("manage.py", ["migrate"], eng, env).returncode == 0
    no_grafana = uwsgi(tmp_path, eng, dict(env, GRAFANA_API_URL=""), port)
    assert no_grafana.proc.wait(timeout=20) == 22
    assert "GRAFANA_API_URL is a required environment variable" in no_grafana.stderr
    for proc in (no_key, strict, bad_flag, elsewhere, no_grafana):
        proc.close()


def test_uwsgi_without_die_on_term_reloads_on_sigterm(tmp_path, redis):
    eng = engine_dir(tmp_path)
    env = base_env(tmp_path, redis)
    port = free_port()
    proc = uwsgi(tmp_path, eng, env, port, "--die-on-term=false")
    try:
        proc.wait_http("http://127.0.0.1:%d/ready/" % port)
        proc.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: "brutally" in proc.stderr, timeout=10, message="reload message")
        assert proc.alive()
        proc.proc.send_signal(signal.SIGINT)
        assert proc.proc.wait(timeout=10) == 0
    finally:
        proc.close()


# ---- celery ----------------------------------------------------------------------------------

def smembers(uri, key):
    client = oncall.Redis(uri).connect()
    try:
        return {m.decode() for m in client.command("SMEMBERS", key)}
    finally:
        client.close()


def test_celery_worker_on_redis(tmp_path, redis):
    eng = engine_dir(tmp_path)
    env = base_env(tmp_path, redis, CELERY_BEAT_SCHEDULE_FILENAME=str(tmp_path / "beat-schedule"))
    proc = StandinProcess(["oncall", "celery", "-A", "engine", "--workdir", str(eng), "worker", "--beat", "-Q",
                           oncall.CELERY_QUEUES_DEFAULT, "--concurrency=1", "--max-tasks-per-child=100", "-l",
                           "info"], env=env).start()
    try:
        wait_until(lambda: " ready." in proc.stderr or not proc.alive(), timeout=20, message="worker ready")
        assert proc.alive(), proc.stderr
        assert "beat: Starting..." in proc.stderr and (tmp_path / "beat-schedule").exists()
        assert smembers(redis, "_kombu.binding.critical") == {"critical\x06\x16\x06\x16critical"}
        assert smembers(redis, "_kombu.binding.grafana")
        # an alert posted to an integration reaches the worker through Redis
        assert run_tool("manage.py", ["migrate"], eng, env).returncode == 0
        server = oncall.OnCallServer(oncall.EngineSettings(env, str(eng))).start()
        try:
            token = oncall.bootstrap_api_token(server.url, USERS)["api_token"]
            status, integ = oncall._http_json("POST", server.url + "/api/v1/integrations/",
                                              {"type": "alertmanager", "name": "am"}, {"Authorization": token})
            assert status == 201
            link = integ["link"].replace("http://127.0.0.1:8080", server.url)
            assert oncall._http_json("POST", link, {"alerts": [{"labels": {"alertname": "X"}}]}) == (200, "Ok.")
            wait_until(lambda: "Task create_alert[" in proc.stderr, timeout=10, message="task consumed")
            wrong = link.replace("/alertmanager/", "/webhook/")
            assert http_get(wrong, method="POST")[0] == 400
            status, body = oncall._http_json("POST", link.rsplit("/", 2)[0] + "/nottoken/", {})
            assert (status, body) == (403, {"detail": "Integration key was not found. Permission denied."})
        finally:
            server.stop()
    finally:
        assert proc.terminate() == 0
        assert "Warm shutdown" in proc.stderr
        proc.close()


def test_celery_needs_redis_and_recovers(tmp_path):
    eng = engine_dir(tmp_path)
    port = free_port()
    uri = "redis://127.0.0.1:%d/0" % port
    env = base_env(tmp_path, uri, CELERY_BEAT_SCHEDULE_FILENAME=str(tmp_path / "beat"))
    proc = StandinProcess(["oncall", "celery", "--workdir", str(eng), "-A", "engine", "worker", "-Q", "default"],
                          env=env).start()
    redis_proc = None
    try:
        wait_until(lambda: "Cannot connect to redis://127.0.0.1:%d/0: Error 111 connecting to 127.0.0.1:%d. "
                           "Connection refused." % (port, port) in proc.stderr, timeout=15, message="connect error")
        assert "Trying again in 2.00 seconds... (1/100)" in proc.stderr and " ready." not in proc.stderr
        redis_proc, _ = start_redis(tmp_path, port)
        wait_until(lambda: " ready." in proc.stderr, timeout=20, message="ready after Redis came up")
        assert smembers(uri, "_kombu.binding.default")
    finally:
        assert proc.terminate() == 0
        proc.close()
        if redis_proc:
            redis_proc.terminate()
            redis_proc.wait(timeout=10)


def test_celery_refusals(tmp_path, redis):
    eng = engine_dir(tmp_path)
    env = base_env(tmp_path, redis)
    no_app = run_tool("celery", ["-A", "engine", "worker"], tmp_path, env)
    assert no_app.returncode == 2 and "Unable to load celery application.\nThe module engine was not found." in \
        no_app.stderr
    bad_opt = run_tool("celery", ["-A", "engine", "worker", "--frobnicate"], eng, env)
    assert bad_opt.returncode == 2 and "Error: No such option: --frobnicate" in bad_opt.stderr
    bad_cmd = run_tool("celery", ["-A", "engine", "wrker"], eng, env)
    assert bad_cmd.returncode == 2 and "No such command 'wrker'" in bad_cmd.stderr
    no_key = run_tool("celery", ["-A", "engine", "worker"], eng, dict(env, SECRET_KEY=""))
    assert no_key.returncode == 1 and "SECRET_KEY setting must not be empty" in no_key.stderr
    # beat keeps its schedule in the working directory unless told otherwise: an unwritable place fails
    beat = run_tool("celery", ["-A", "engine", "--workdir", str(eng), "worker", "--beat", "-s",
                               str(tmp_path / "missing-dir" / "celerybeat-schedule")], eng, env)
    assert beat.returncode == 1 and "beat raised exception <class '_gdbm.error'>: error(2," in beat.stderr
    assert run_tool("celery", ["--version"], eng, env).stdout.strip() == oncall.CELERY_VERSION


# ---- HTTP API ----------------------------------------------------------------------------------

@pytest.fixture
def engine(tmp_path, redis):
    eng = engine_dir(tmp_path)
    env = base_env(tmp_path, redis, BASE_URL="http://oncall.example:8080")
    assert run_tool("manage.py", ["migrate"], eng, env).returncode == 0
    server = oncall.OnCallServer(oncall.EngineSettings(env, str(eng))).start()
    server.env, server.dir = env, eng
    yield server
    server.stop()


def api(server, method, path, body=None, token=None, headers=None):
    hdrs = dict(headers or {})
    if token is not None:
        hdrs["Authorization"] = token
    return oncall._http_json(method, server.url + path, body, hdrs)


def test_plugin_install_sync_status_and_tokens(engine):
    # install: no auth; wrong stack id -> OnCallError shape
    bad = oncall.sync_data("http://g:3000", engine.url, USERS, stack_id=6)
    assert api(engine, "POST", "/api/internal/v1/plugin/v2/install", bad) == (
        400, {"code": 1001, "message": "Invalid stack or org id for self-hosted organization", "fields": None})
    status, body = api(engine, "POST", "/api/internal/v1/plugin/v2/install", {"users": []})
    assert status == 400 and body["settings"] == ["This field is required."]
    status, install = api(engine, "POST", "/api/internal/v1/plugin/v2/install",
                          oncall.sync_data("http://127.0.0.1:9", engine.url, USERS))
    assert status == 200 and set(install) == {"stackId", "orgId", "onCallToken", "license"}
    assert (install["stackId"], install["orgId"], install["license"]) == (5, 100, "OpenSource")
    token = install["onCallToken"]
    assert len(token) == 128  # SHA-512 hex like upstream's plugin tokens
    # sync: plugin auth (401 with a challenge-type error), gzip body accepted
    assert api(engine, "POST", "/api/internal/v1/plugin/v2/sync", {}) == (401, {"detail": "No token provided"})
    headers = oncall.plugin_headers(token)
    del headers["X-Instance-Context"]
    assert api(engine, "POST", "/api/internal/v1/plugin/v2/sync", {}, headers=headers) == (
        401, {"detail": "No instance context provided."})
    users = USERS + [{"id": 3, "login": "frank", "role": "Editor"}]
    raw = gzip.compress(json.dumps(oncall.sync_data("http://127.0.0.1:9", engine.url, users)).encode())
    import urllib.request
    req = urllib.request.Request(engine.url + "/api/internal/v1/plugin/v2/sync", data=raw, method="POST",
                                 headers=dict(oncall.plugin_headers(token), **{"Content-Encoding": "gzip"}))
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    status, info = api(engine, "GET", "/api/internal/v1/plugin/v2/status", headers=oncall.plugin_headers(token))
    assert status == 200 and info["license"] == "OpenSource" and info["api_url"] == "http://oncall.example:8080/"
    assert info["connection_to_grafana"]["connected"] is False  # nothing listens at the Grafana URL
    # API tokens as the UI creates them
    admin = oncall.plugin_headers(token, user={"id": 1, "login": "admin"})
    assert api(engine, "POST", "/api/internal/v1/tokens/", {"name": ""}, headers=admin) == (
        400, {"detail": "Invalid token name"})
    created = [api(engine, "POST", "/api/internal/v1/tokens/", {"name": "t%d" % n}, headers=admin) for n in range(5)]
    assert all(status == 201 and len(tok["token"]) == 64 for status, tok in created)
    assert api(engine, "POST", "/api/internal/v1/tokens/", {"name": "t6"}, headers=admin) == (
        400, {"detail": "Max token count"})
    status, listed = api(engine, "GET", "/api/internal/v1/tokens/", headers=admin)
    assert status == 200 and [t["name"] for t in listed] == ["t0", "t1", "t2", "t3", "t4"] and "token" not in listed[0]
    viewer = oncall.plugin_headers(token, user={"id": 2, "login": "eve"})
    assert api(engine, "POST", "/api/internal/v1/tokens/", {"name": "x"}, headers=viewer)[0] == 403
    ghost = oncall.plugin_headers(token, user={"id": 99, "login": "ghost"})
    assert api(engine, "GET", "/api/internal/v1/tokens/", headers=ghost) == (
        401, {"detail": "Non-existent or anonymous user."})
    first = created[0][1]
    assert api(engine, "GET", "/api/v1/users/", token=first["token"])[0] == 200
    assert api(engine, "DELETE", "/api/internal/v1/tokens/%d/" % first["id"], headers=admin) == (204, None)
    assert api(engine, "GET", "/api/v1/users/", token=first["token"]) == (403, {"detail": "Invalid token."})
    # a new install revokes the old plugin token
    api(engine, "POST", "/api/internal/v1/plugin/v2/install", oncall.sync_data("http://127.0.0.1:9", engine.url, USERS))
    assert api(engine, "GET", "/api/internal/v1/plugin/v2/status", headers=oncall.plugin_headers(token))[0] == 403


def test_public_api_shapes(engine):
    token = oncall.bootstrap_api_token(engine.url, USERS)["api_token"]
    assert api(engine, "GET", "/api/v1/integrations/") == (403, {"detail": "Invalid token."})
    assert api(engine, "GET", "/api/v1/integrations/", token="Bearer " + token) == (403, {"detail": "Invalid token."})
    assert api(engine, "GET", "/api/v1/integrations/CNOPE/", token=token) == (404, {"detail": "Not found."})
    assert api(engine, "DELETE", "/api/v1/users/", token=token) == (405, {"detail": 'Method "DELETE" not allowed.'})
    assert http_get(engine.url + "/api/v1/nothing/", headers={"Authorization": token})[0] == 404
    for n in range(3):
        assert api(engine, "POST", "/api/v1/escalation_chains/", {"name": "c%d" % n}, token=token)[0] == 201
    status, page = api(engine, "GET", "/api/v1/escalation_chains/?perpage=2&page=2", token=token)
    assert status == 200 and [c["name"] for c in page["results"]] == ["c2"]
    assert page["count"] == 3 and page["total_pages"] == 2 and page["current_page_number"] == 2
    assert page["next"] is None and page["previous"] == "http://oncall.example:8080/api/v1/escalation_chains/?perpage=2"
    assert page["page_size"] == 2
    # an integration with no name gets upstream's generated one; link and inbound_email by type
    status, integ = api(engine, "POST", "/api/v1/integrations/", {"type": "webhook"}, token=token)
    assert status == 201 and integ["name"] == "Webhook :blush:" and integ["link"].startswith(
        "http://oncall.example:8080/integrations/v1/webhook/")
    assert api(engine, "POST", "/api/v1/integrations/", {"type": "manual"}, token=token)[1]["link"] is None
    assert api(engine, "POST", "/api/v1/integrations/", {}, token=token) == (400, {"type": ["This field is required."]})
    assert api(engine, "POST", "/api/v1/integrations/", {"type": "legacy_alertmanager"}, token=token) == (
        400, {"detail": "This integration type is deprecated"})
    assert api(engine, "POST", "/api/v1/integrations/", {"type": "direct_paging"}, token=token) == (
        400, {"detail": "Direct paging integrations can't be created"})
    assert api(engine, "PUT", "/api/v1/integrations/%s/" % integ["id"], {"type": "alertmanager"},
               token=token)[1]["type"] == "webhook"  # type is read-only on update
    # policies: position moves like OrderedModel.to(); deleting leaves a gap
    chain = api(engine, "GET", "/api/v1/escalation_chains/?name=c0", token=token)[1]["results"][0]
    ids = [api(engine, "POST", "/api/v1/escalation_policies/", {"escalation_chain_id": chain["id"], "type": "wait",
                                                               "duration": 60 * (n + 1)}, token=token)[1]["id"]
           for n in range(3)]
    status, moved = api(engine, "POST", "/api/v1/escalation_policies/",
                        {"escalation_chain_id": chain["id"], "type": "resolve", "position": 0}, token=token)
    assert status == 201 and moved["position"] == 0 and set(moved) == {"position", "id", "escalation_chain_id", "type"}
    listed = api(engine, "GET", "/api/v1/escalation_policies/?escalation_chain_id=" + chain["id"], token=token)[1]
    assert [p["id"] for p in listed["results"]] == [moved["id"]] + ids
    assert [p["position"] for p in listed["results"]] == [0, 1, 2, 3]
    api(engine, "DELETE", "/api/v1/escalation_policies/%s/" % ids[0], token=token)
    listed = api(engine, "GET", "/api/v1/escalation_policies/?escalation_chain_id=" + chain["id"], token=token)[1]
    assert [p["position"] for p in listed["results"]] == [0, 2, 3]
    assert api(engine, "POST", "/api/v1/escalation_policies/", {"escalation_chain_id": chain["id"], "type": "wait",
                                                               "duration": 30}, token=token) == (
        400, {"duration": ["Ensure this value is greater than or equal to 0:01:00."]})
    assert api(engine, "POST", "/api/v1/escalation_policies/", {"escalation_chain_id": chain["id"], "type": "jump"},
               token=token) == (400, {"detail": "Invalid escalation step type"})
    status, policy = api(engine, "PUT", "/api/v1/escalation_policies/%s/" % ids[1], {"type": "notify_persons"},
                         token=token)
    assert status == 200 and policy == {"position": 2, "id": ids[1], "escalation_chain_id": chain["id"],
                                        "type": "notify_persons", "important": False, "persons_to_notify": []}
    # shifts and schedules
    users = {u["username"]: u["id"] for u in api(engine, "GET", "/api/v1/users/", token=token)[1]["results"]}
    start = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=3)).strftime("%Y-%m-%dT00:00:00")
    shift = {"name": "s", "type": "rolling_users", "start": start, "duration": 86400,
             "rolling_users": [[users["admin"]]], "start_rotation_from_user_index": 0}
    assert api(engine, "POST", "/api/v1/on_call_shifts/", shift, token=token) == (
        400, {"detail": "Field 'frequency' is required for this on-call shift type"})
    assert api(engine, "POST", "/api/v1/on_call_shifts/", dict(shift, frequency="weekly"), token=token) == (
        400, {"detail": "Field 'week_start' is required for frequency type 'weekly'"})
    assert api(engine, "POST", "/api/v1/on_call_shifts/", dict(shift, start="2026-01-05 09:00"), token=token) == (
        400, {"detail": "Invalid datetime format, should be \"yyyy-mm-dd'T'hh:mm:ss\""})
    assert api(engine, "POST", "/api/v1/on_call_shifts/", dict(shift, frequency="daily",
                                                               rolling_users=[["UNOPE"]]), token=token) == (
        400, {"rolling_users": {"0": ["User does not exist {'UNOPE'}"]}})
    status, made = api(engine, "POST", "/api/v1/on_call_shifts/", dict(shift, frequency="daily"), token=token)
    assert status == 201 and made["interval"] == 1 and "users" not in made and "week_start" not in made
    assert made["rotation_start"] == made["start"] and made["schedule"] is None
    assert api(engine, "POST", "/api/v1/schedules/", {"name": "x"}, token=token) == (
        400, {"type": "This field is required"})
    assert api(engine, "POST", "/api/v1/schedules/", {"name": "x", "type": "calendar"}, token=token) == (
        400, {"time_zone": ["This field is required."]})
    status, sched = api(engine, "POST", "/api/v1/schedules/", {"name": "x", "type": "calendar", "time_zone": "UTC",
                                                               "shifts": [made["id"]]}, token=token)
    assert status == 201 and sched["on_call_now"] == [users["admin"]]  # the only user, all day every day
    assert api(engine, "GET", "/api/v1/on_call_shifts/%s/" % made["id"], token=token)[1]["schedule"] == sched["id"]


def test_public_api_needs_redis(tmp_path, redis):
    eng = engine_dir(tmp_path)
    port = free_port()
    env = base_env(tmp_path, "redis://127.0.0.1:%d/0" % port)
    assert run_tool("manage.py", ["migrate"], eng, env).returncode == 0
    server = oncall.OnCallServer(oncall.EngineSettings(env, str(eng))).start()
    try:
        token = oncall.bootstrap_api_token(server.url, USERS)["api_token"]
        status, _, body = http_get(server.url + "/api/v1/users/", headers={"Authorization": token})
        assert status == 500 and b"Server Error (500)" in body
        assert http_get(server.url + "/startupprobe/")[0] == 500
        assert http_get(server.url + "/health/")[0] == 200  # liveness does not touch Redis
        assert api(server, "GET", "/api/v1/users/", token="0" * 64) == (403, {"detail": "Invalid token."})
    finally:
        server.stop()


def test_persistence_across_restarts(tmp_path, redis):
    eng = engine_dir(tmp_path)
    env = base_env(tmp_path, redis)
    assert run_tool("manage.py", ["migrate"], eng, env).returncode == 0
    server = oncall.OnCallServer(oncall.EngineSettings(env, str(eng))).start()
    token = oncall.bootstrap_api_token(server.url, USERS)["api_token"]
    status, integ = api(server, "POST", "/api/v1/integrations/", {"type": "alertmanager", "name": "kept"}, token=token)
    assert status == 201
    server.stop()
    again = oncall.OnCallServer(oncall.EngineSettings(env, str(eng))).start()
    try:
        status, page = api(again, "GET", "/api/v1/integrations/", token=token)
        assert status == 200 and [i["id"] for i in page["results"]] == [integ["id"]]
        assert page["results"][0]["link"] == integ["link"]
    finally:
        again.stop()


def test_metrics_and_allowed_hosts(tmp_path, redis):
    eng = engine_dir(tmp_path)
    env = base_env(tmp_path, redis, FEATURE_PROMETHEUS_EXPORTER_ENABLED="True", PROMETHEUS_EXPORTER_SECRET="m",
                   ALLOWED_HOSTS="oncall.example")
    assert run_tool("manage.py", ["migrate"], eng, env).returncode == 0
    server = oncall.OnCallServer(oncall.EngineSettings(env, str(eng))).start()
    try:
        assert http_get(server.url + "/health/")[0] == 400  # Host 127.0.0.1 is not allowed
        host = {"Host": "oncall.example"}
        assert http_get(server.url + "/metrics/", headers=host)[0] == 401
        status, headers, body = http_get(server.url + "/metrics/", headers=dict(host, Authorization="Bearer m"))
        assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    finally:
        server.stop()


# ---- the release archive's entry points, as the role runs them ---------------------------------

def test_archive_entry_points_in_a_venv(tmp_path, redis):
    """pip installs the archive's requirements offline; venv/bin/uwsgi, venv/bin/celery and manage.py run the
    engine stand-in, like the real ones after ``pip install -r requirements.txt``."""
    spec = importlib.util.spec_from_file_location("build_mirror_oncall", STANDINS / "build_mirror.py")
    bm = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bm  # dataclasses look their module up
    spec.loader.exec_module(bm)
    eng = engine_dir(tmp_path)
    ctx = bm.Ctx("oncall", oncall.ONCALL_VERSION, "amd64", "go1.24.6", tmp_path / "cache")
    app = bm.StandinZipapp("o11y_standins.oncall:main").build(ctx)
    # the same zipapp with this Python in the shebang instead of the test image's stand-in venv
    rebuilt = io.BytesIO()
    rebuilt.write(b"#!" + sys.executable.encode() + b"\n")
    with zipfile.ZipFile(io.BytesIO(app)) as src, zipfile.ZipFile(rebuilt, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
    app = rebuilt.getvalue()
    (eng / oncall.ENGINE_ZIPAPP).write_bytes(app)
    os.chmod(eng / oncall.ENGINE_ZIPAPP, 0o755)
    with zipfile.ZipFile(eng / "standin-wheels" / "uwsgi-2.0.28-py3-none-any.whl") as whl:
        assert "uwsgi-2.0.28.dist-info/entry_points.txt" in whl.namelist()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "-r",
                          "requirements.txt"], cwd=eng, capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    env = dict(os.environ, **base_env(tmp_path, redis))
    env.pop("PYTHONPATH", None)
    env.pop("NOTIFY_SOCKET", None)
    migrate = subprocess.run([str(venv / "bin" / "python"), "manage.py", "migrate", "--noinput"], cwd=eng, env=env,
                             capture_output=True, text=True, timeout=60)
    assert migrate.returncode == 0 and "Running migrations:" in migrate.stdout, migrate.stderr
    port = free_port()
    ini = write_ini(tmp_path, port)
    web = subprocess.Popen([str(venv / "bin" / "uwsgi"), "--ini", str(ini), "--chdir", str(eng)], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    worker = subprocess.Popen([str(venv / "bin" / "celery"), "-A", "engine", "worker", "-Q", "default,critical"],
                              cwd=eng, env=dict(env, CELERY_BEAT_SCHEDULE_FILENAME=str(tmp_path / "b")),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: http_get("http://127.0.0.1:%d/startupprobe/" % port)[0] == 200, timeout=30,
                   message="uwsgi startupprobe")
        wait_until(lambda: smembers(redis, "_kombu.binding.critical"), timeout=30, message="worker queues")
    finally:
        for proc in (web, worker):
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
            proc.stderr.close()
    wrong_dir = subprocess.run([str(venv / "bin" / "celery"), "-A", "engine", "worker"], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=30)
    assert wrong_dir.returncode == 2 and "The module engine was not found." in wrong_dir.stderr
