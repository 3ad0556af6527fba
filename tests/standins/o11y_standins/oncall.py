# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Grafana OnCall OSS engine stand-in (grafana/oncall v1.16.9, the last release; archived 2026-03-24).

An o11y.stack TEST FIXTURE, not OnCall.  It behaves like the Django engine on the
surfaces the ``oncall`` role and the ``oncall_*`` modules rely on.

Release shape and entry points
==============================
Upstream publishes no engine binary: the engine is the ``engine/`` directory of the
tag's source archive (``https://github.com/grafana/oncall/archive/refs/tags/v<ver>.tar.gz``,
top directory ``oncall-<ver>/``; GitHub publishes no checksum for source archives, so
the role needs a pinned SHA-256).  Outside Docker it runs like the upstream image does
(engine/Dockerfile, docker-compose.yml), from the ``engine`` directory, in a virtualenv
filled with ``pip install -r requirements.txt``:

* migrations: ``python manage.py migrate --noinput`` (``--check`` exits 1 while some are
  unapplied, Django 4.2), ``python manage.py create_sqlite_db``;
* web/API: ``<venv>/bin/uwsgi --ini uwsgi.ini`` (upstream's file: ``chdir=/etc/app``,
  ``module=engine.wsgi:application``, ``http=0.0.0.0:8080``, ``strict=true``,
  ``need-app=true``; later ``--option value`` arguments override the file);
* worker (+ beat): ``<venv>/bin/celery -A engine worker --beat -Q <queues> ...``
  (engine/celery_with_exporter.sh; docker-compose.yml's queue list:
  ``default,critical,long,slack,telegram,mattermost,webhook,retry,celery,grafana``).

The mirror archive (tests/standins/build_mirror.py, :data:`MIRROR_MEMBERS`) keeps these
entry points so the role runs the very same commands for real and stand-in:

* ``engine/requirements.txt`` reads ``--no-index --find-links standin-wheels`` (pip
  resolves a relative ``--find-links`` against the requirements file) and pins
  ``celery==5.3.6`` and ``uwsgi==2.0.28`` like upstream; ``engine/standin-wheels/``
  holds two tiny wheels of those names whose console scripts (``celery``, ``uwsgi``)
  exec the engine's ``o11y-oncall-standin`` zipapp (run by the stand-ins' venv Python of
  the test image).  So pip runs offline and ``<venv>/bin/uwsgi`` / ``<venv>/bin/celery``
  exist as after a real install;
* ``engine/manage.py`` execs the same zipapp (``manage.py`` subcommands);
* ``engine/uwsgi.ini`` is upstream's file; ``engine/engine/{wsgi,celery}.py`` and
  ``engine/settings/*.py`` exist (the stand-in checks ``-A engine``, ``module=`` and
  ``DJANGO_SETTINGS_MODULE`` against them like Python imports would).

Configuration: environment variables with upstream's names (settings/base.py)
=============================================================================
``DJANGO_SETTINGS_MODULE`` (settings.hobby | settings.helm | settings.prod_without_db | ...;
the code's own defaults ``settings.prod``/``settings.dev`` do not exist or are for development,
so the role must set it; prod_without_db redirects plain HTTP to HTTPS except the health
paths), ``SECRET_KEY`` (missing: ``ImproperlyConfigured``, nothing starts), ``BASE_URL``
(integration links; missing: 500 on integrations), ``DATABASE_TYPE`` (sqlite3 | postgresql
| mysql; upstream defaults to mysql), ``DATABASE_NAME`` (sqlite3 default
``/var/lib/oncall/oncall.db``), ``DATABASE_USER/PASSWORD/HOST/PORT``, ``BROKER_TYPE``
(redis | rabbitmq; upstream defaults to rabbitmq), ``REDIS_URI`` (or REDIS_HOST/PORT/
DATABASE/USERNAME/PASSWORD/PROTOCOL), ``GRAFANA_API_URL`` (uwsgi refuses to start while no
organisation exists and it is unset), ``ALLOWED_HOSTS``, ``FEATURE_PROMETHEUS_EXPORTER_ENABLED``,
``PROMETHEUS_EXPORTER_SECRET``, ``SELF_HOSTED_STACK_ID``, ``CELERY_BEAT_SCHEDULE_FILENAME``
(default ``celerybeat-schedule`` relative to the working directory).

Redis is real: the web answers the public API and ``/startupprobe/`` only while Redis (the
cache) answers; the worker connects to the broker URL, retries like Celery while Redis is
down ("consumer: Cannot connect to redis://...") and declares its queues
(``_kombu.binding.<queue>`` sets).  PostgreSQL: the settings are validated and the server's
TCP port is probed, but the stand-in does not speak the PostgreSQL protocol: the data live in
a SQLite file ``/var/lib/oncall/.o11y-standin-postgresql-<DATABASE_NAME>.sqlite3`` (directory:
``O11Y_STANDIN_ONCALL_STATE_DIR``), so hosts do not share them.

HTTP surface (engine/urls.py)
=============================
``/``, ``/health/``, ``/ready/``, ``/api/internal/v1/health/`` -> ``Ok``; ``/startupprobe/``
-> ``Ok`` when the database is migrated and Redis answers, else 500; ``/metrics/`` with
FEATURE_PROMETHEUS_EXPORTER_ENABLED.  Grafana plugin (apps/grafana_plugin, called by the
plugin's Go backend): ``POST /api/internal/v1/plugin/v2/install`` (sync data; answers
``{"stackId", "orgId", "onCallToken", "license"}``), ``POST .../plugin/v2/sync`` (gzip or
plain), ``GET .../plugin/v2/status``; ``/api/internal/v1/tokens/`` (the UI's "API tokens";
plugin authentication: ``Authorization: <onCallToken>``, ``X-Instance-Context:
{"stack_id": "5", "org_id": "100", "grafana_token": ...}``, ``X-Grafana-Context: {"UserId": <grafana
user id>, ...}``).  Automation gets a public API token the way the UI does: through
Grafana's plugin resource proxy, ``POST <grafana>/api/plugins/grafana-oncall-app/resources/tokens/``
``{"name": ...}`` as a Grafana admin; the plugin backend forwards it here with those headers
(:func:`bootstrap_api_token` does the same directly, for tests).  Public API v1
(``Authorization: <token>``, no ``Bearer``; a wrong token is 403 ``{"detail": "Invalid
token."}`` as upstream's authenticators define no 401 challenge): users, teams,
integrations, escalation_chains, escalation_policies, schedules, on_call_shifts; pages of
``{count, next, previous, results, page_size, current_page_number, total_pages}``; DRF error
bodies.  Alert intake: ``POST /integrations/v1/<type>/<token>/`` -> ``"Ok."``.
The engine calls Grafana back like upstream: ``HEAD <grafana>/api/org`` (status) and
``GET <grafana>/api/alertmanager/grafana/config/api/v1/alerts`` before creating a
grafana_alerting integration, with the Grafana token from the sync data.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import gzip
import hashlib
import io
import json
import os
import re
import secrets
import socket
import sqlite3
import string
import sys
import threading
import time
import zipfile
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import parse_qsl, quote, unquote, urlencode, urljoin, urlsplit

from . import framework as fw

ONCALL_VERSION = "1.16.9"
VERSION_SETTING = "dev-oss"  # settings/base.py VERSION; only the Docker build replaces it
LICENSE = "OpenSource"
SELF_HOSTED_ORG_ID = 100  # settings/base.py SELF_HOSTED_SETTINGS["ORG_ID"] (not configurable)
ENGINE_ZIPAPP = "o11y-oncall-standin"
STATE_DIR_ENV = "O11Y_STANDIN_ONCALL_STATE_DIR"

# settings modules in engine/settings/ -> SECURE_SSL_REDIRECT
SETTINGS_MODULES = {"settings.hobby": False, "settings.helm": False, "settings.prod_without_db": True,
                    "settings.dev": False, "settings.ci_test": False, "settings.base": False}
SSL_REDIRECT_EXEMPT = [re.compile(p) for p in (
    r"^health/", r"^health", r"^ready/", r"^ready", r"^startupprobe/", r"^startupprobe",
    r"^ready_health_check/", r"^ready_health_check", r"^live_health_check/", r"^live_health_check",
    r"^django-prometheus/metrics", r"^django-prometheus/metrics/")]

# A representative subset of v1.16.9's migrations (first and last of the main apps).
MIGRATIONS: Tuple[Tuple[str, str], ...] = (
    ("contenttypes", "0001_initial"), ("auth", "0001_initial"),
    ("user_management", "0001_squashed_initial"), ("alerts", "0001_squashed_initial"),
    ("schedules", "0001_squashed_initial"), ("auth_token", "0001_squashed_initial"),
    ("base", "0001_squashed_initial"), ("heartbeat", "0001_squashed_initial"),
    ("webhooks", "0001_initial"), ("labels", "0001_initial"),
    ("user_management", "0029_remove_organization_general_log_channel_id_db"),
    ("alerts", "0075_alter_alertgrouplogrecord_action_source"),
    ("schedules", "0021_remove_oncallschedule_channel_db"), ("auth_token", "0008_mattermostauthtoken"),
    ("base", "0005_drop_unused_dynamic_settings"),
    ("heartbeat", "0003_remove_integrationheartbeat_actual_check_up_task_id_and_more"),
    ("webhooks", "0018_alter_webhook_trigger_type_and_more"),
    ("labels", "0007_remove_alertreceivechannelassociatedlabel_inheritable_db"),
)

CELERY_QUEUES_DEFAULT = "default,critical,long,slack,telegram,mattermost,webhook,retry,celery,grafana"


def migrations_for(version: str) -> List[Tuple[str, str]]:
    """The migrations a release ships: v1.16.9's subset, plus one per later stand-in version
    so that an upgrade has something to migrate."""
    out = list(MIGRATIONS)
    if version and version != ONCALL_VERSION:
        out.append(("user_management", "9999_o11y_standin_" + re.sub(r"\W", "_", version)))
    return out


# ---------------------------------------------------------------------------
# errors shaped like Python/Django failures
# ---------------------------------------------------------------------------

class StartupError(Exception):
    """Settings or environment make the program fail before it serves; *text* is what it prints."""

    def __init__(self, text: str, code: int = 1):
        super().__init__(text)
        self.text = text
        self.code = code


def _traceback(exc_line: str) -> str:
    return "Traceback (most recent call last):\n  File \"<o11y-standin>\", line 1, in <module>\n" + exc_line


# ---------------------------------------------------------------------------
# settings (settings/base.py + the chosen module)
# ---------------------------------------------------------------------------

def _env_bool(env: Dict[str, str], name: str, default: bool) -> bool:
    # common.utils.getenv_boolean: "true"/"1"... case-insensitive
    val = env.get(name)
    if val is None:
        return default
    return val.strip().lower() in ("true", "1", "yes", "y", "on")


class EngineSettings:
    """What Django's settings module computes from the environment."""

    def __init__(self, env: Dict[str, str], engine_dir: str, version: str = ONCALL_VERSION):
        self.env = dict(env)
        self.engine_dir = engine_dir
        self.version = version
        module = env.get("DJANGO_SETTINGS_MODULE", "")
        self.settings_module = module
        if module not in SETTINGS_MODULES or not os.path.isfile(
                os.path.join(engine_dir, *module.split(".")) + ".py"):
            raise StartupError(_traceback("ModuleNotFoundError: No module named '%s'" % module))
        self.ssl_redirect = SETTINGS_MODULES[module]
        self.db_type = env.get("DATABASE_TYPE", "mysql").lower()
        if self.db_type not in ("mysql", "postgresql", "sqlite3"):
            raise StartupError(_traceback("AssertionError"))
        self.broker_type = env.get("BROKER_TYPE", "rabbitmq").lower()
        if self.broker_type not in ("rabbitmq", "redis"):
            raise StartupError(_traceback("AssertionError"))
        self.secret_key = env.get("SECRET_KEY") or ""
        self.base_url = env.get("BASE_URL")
        self.allowed_hosts = [h.strip() for h in env.get("ALLOWED_HOSTS", "*").split(",")]
        self.grafana_api_url = env.get("GRAFANA_API_URL")
        self.stack_id = int(env.get("SELF_HOSTED_STACK_ID", "5"))
        self.metrics_enabled = _env_bool(env, "FEATURE_PROMETHEUS_EXPORTER_ENABLED", False)
        self.metrics_secret = env.get("PROMETHEUS_EXPORTER_SECRET")
        self.db_name = env.get("DATABASE_NAME") or env.get("MYSQL_DB_NAME")
        self.db_user = env.get("DATABASE_USER") or env.get("MYSQL_USER")
        self.db_password = env.get("DATABASE_PASSWORD") or env.get("MYSQL_PASSWORD")
        self.db_host = env.get("DATABASE_HOST") or env.get("MYSQL_HOST")
        self.db_port = env.get("DATABASE_PORT") or env.get("MYSQL_PORT")
        options = env.get("DATABASE_OPTIONS")
        if options:
            try:
                dict([tuple(i.split("=")) for i in options.split(" ")])
            except ValueError:
                raise StartupError(_traceback("Exception: Bad database options. Check DATABASE_OPTIONS variable"))
        redis_uri = env.get("REDIS_URI")
        if not redis_uri:
            redis_uri = "%s://%s:%s@%s:%s/%s" % (
                env.get("REDIS_PROTOCOL", "redis"), env.get("REDIS_USERNAME", ""), env.get("REDIS_PASSWORD"),
                env.get("REDIS_HOST"), env.get("REDIS_PORT", 6379), env.get("REDIS_DATABASE", 1))
        self.redis_uri = redis_uri
        if self.broker_type == "redis":
            self.broker_url = redis_uri
        else:
            self.broker_url = env.get("RABBITMQ_URI") or env.get("RABBIT_URI") or "amqp://guest:guest@localhost:5672//"
        self.beat_schedule_filename = env.get("CELERY_BEAT_SCHEDULE_FILENAME", "celerybeat-schedule")

    def require_secret_key(self) -> None:
        """Django refuses the first access to an empty SECRET_KEY (conf/__init__.py)."""
        if not self.secret_key:
            raise StartupError(_traceback(
                "django.core.exceptions.ImproperlyConfigured: The SECRET_KEY setting must not be empty."))

    def db_path(self) -> str:
        """The SQLite file holding the data (see the module docstring for postgresql)."""
        if self.db_type == "sqlite3":
            return self.db_name or "/var/lib/oncall/oncall.db"
        if self.db_type == "mysql":
            raise DatabaseError("django.db.utils.OperationalError: (2003, \"Can't connect to MySQL server on "
                                "'%s'\") -- the o11y.stack stand-in supports sqlite3 and postgresql only"
                                % (self.db_host or "localhost"))
        if not self.db_name:
            raise DatabaseError("django.core.exceptions.ImproperlyConfigured: settings.DATABASES is improperly "
                                "configured. Please supply the NAME value.")
        host = self.db_host or "localhost"
        port = int(self.db_port or 5432)
        try:
            with socket.create_connection((host, port), timeout=2):
                pass
        except OSError as exc:
            raise DatabaseError('django.db.utils.OperationalError: connection to server at "%s", port %d failed: %s'
                                % (host, port, exc.strerror or exc)) from None
        state_dir = self.env.get(STATE_DIR_ENV, "/var/lib/oncall")
        return os.path.join(state_dir, ".o11y-standin-postgresql-%s.sqlite3" % re.sub(r"[^\w.-]", "_", self.db_name))


class DatabaseError(Exception):
    pass


# ---------------------------------------------------------------------------
# Redis (RESP over a socket; redis-py's error texts)
# ---------------------------------------------------------------------------

class RedisError(Exception):
    pass


def parse_redis_uri(uri: str) -> Dict[str, Any]:
    parts = urlsplit(uri)
    if parts.scheme not in ("redis", "rediss"):
        raise RedisError("Redis URL must specify one of the following schemes (redis://, rediss://, unix://)")
    db = 0
    if parts.path and parts.path.strip("/"):
        try:
            db = int(parts.path.strip("/"))
        except ValueError:
            raise RedisError("Invalid database number in %s" % uri) from None
    password = unquote(parts.password) if parts.password else None
    return {"host": parts.hostname or "localhost", "port": parts.port or 6379, "db": db,
            "username": unquote(parts.username) if parts.username else None,
            "password": None if password in (None, "", "None") else password}


def mask_uri(uri: str) -> str:
    """Kombu's way of printing a broker URL (password as **)."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1**@", uri)


class Redis:
    """A minimal blocking Redis client."""

    def __init__(self, uri: str, timeout: float = 2.0):
        self.cfg = parse_redis_uri(uri)
        self.timeout = timeout
        self.sock: Optional[socket.socket] = None
        self.buf = b""

    def connect(self) -> "Redis":
        host, port = self.cfg["host"], self.cfg["port"]
        try:
            self.sock = socket.create_connection((host, port), timeout=self.timeout)
        except socket.gaierror as exc:
            raise RedisError("Error %s connecting to %s:%s. %s." % (exc.errno, host, port, exc.strerror)) from None
        except OSError as exc:
            raise RedisError("Error %s connecting to %s:%s. %s." % (exc.errno, host, port,
                                                                   exc.strerror or "timed out")) from None
        if self.cfg["password"] is not None:
            args = ["AUTH"] + ([self.cfg["username"]] if self.cfg["username"] else []) + [self.cfg["password"]]
            self.command(*args)
        if self.cfg["db"]:
            self.command("SELECT", str(self.cfg["db"]))
        return self

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def command(self, *args: Any, timeout: Optional[float] = None) -> Any:
        if self.sock is None:
            self.connect()
        payload = b"*%d\r\n" % len(args)
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            payload += b"$%d\r\n%s\r\n" % (len(b), b)
        try:
            self.sock.settimeout(timeout if timeout is not None else self.timeout)
            self.sock.sendall(payload)
            return self._reply()
        except (OSError, EOFError) as exc:
            self.close()
            raise RedisError("Connection closed by server." if isinstance(exc, EOFError)
                             else "Error while reading from socket: %s" % (exc,)) from None

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError()
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError()
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self) -> Any:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            text = rest.decode()
            if text.startswith(("WRONGPASS", "NOAUTH")):
                raise RedisError(text.split(" ", 1)[1] if " " in text else text)
            raise RedisError(text)
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RedisError("Protocol Error: %r" % line)


def redis_ping(uri: str, timeout: float = 1.0) -> Optional[str]:
    """None when Redis at *uri* answers PING, else redis-py's error text."""
    client = None
    try:
        client = Redis(uri, timeout=timeout)
        client.connect()
        client.command("PING")
        return None
    except RedisError as exc:
        return str(exc)
    finally:
        if client is not None:
            client.close()


# ---------------------------------------------------------------------------
# storage: SQLite, one JSON document per object; tables exist only after `migrate`
# ---------------------------------------------------------------------------

class Store:
    """Objects of the engine in SQLite (``django_migrations`` + one document table)."""

    def __init__(self, path: str):
        self.path = path
        self.lock = threading.RLock()

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            return conn
        except sqlite3.Error as exc:
            raise DatabaseError("django.db.utils.OperationalError: %s" % exc) from None

    def _run(self, fn):
        with self.lock:
            conn = self._connect()
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                raise DatabaseError("django.db.utils.OperationalError: %s" % exc) from None
            finally:
                conn.close()

    # -- migrations ------------------------------------------------------------
    def applied(self) -> List[Tuple[str, str]]:
        def q(conn):
            return [(a, n) for a, n in conn.execute("SELECT app, name FROM django_migrations ORDER BY id")]
        try:
            return self._run(q)
        except DatabaseError as exc:
            if "no such table" in str(exc):
                return []
            raise

    def apply(self, app: str, name: str) -> None:
        def q(conn):
            conn.execute("BEGIN")
            conn.execute("CREATE TABLE IF NOT EXISTS django_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                         "app VARCHAR(255) NOT NULL, name VARCHAR(255) NOT NULL, applied DATETIME NOT NULL)")
            conn.execute("CREATE TABLE IF NOT EXISTS o11y_objects (pk INTEGER PRIMARY KEY AUTOINCREMENT, "
                         "kind TEXT NOT NULL, public_id TEXT NOT NULL UNIQUE, doc TEXT NOT NULL)")
            conn.execute("INSERT INTO django_migrations (app, name, applied) VALUES (?, ?, ?)",
                         (app, name, _dt.datetime.now(_dt.timezone.utc).isoformat()))
            conn.execute("COMMIT")
        self._run(q)

    def missing(self, migrations: Sequence[Tuple[str, str]]) -> List[Tuple[str, str]]:
        done = set(self.applied())
        return [m for m in migrations if m not in done]

    # -- documents ---------------------------------------------------------------
    def all(self, kind: str) -> List[Dict[str, Any]]:
        def q(conn):
            return [dict(json.loads(doc), _pk=pk) for pk, doc in
                    conn.execute("SELECT pk, doc FROM o11y_objects WHERE kind = ? ORDER BY pk", (kind,))]
        return self._run(q)

    def get(self, kind: str, public_id: str) -> Optional[Dict[str, Any]]:
        def q(conn):
            row = conn.execute("SELECT pk, doc FROM o11y_objects WHERE kind = ? AND public_id = ?",
                               (kind, public_id)).fetchone()
            return dict(json.loads(row[1]), _pk=row[0]) if row else None
        return self._run(q)

    def put(self, kind: str, doc: Dict[str, Any]) -> Dict[str, Any]:
        body = json.dumps({k: v for k, v in doc.items() if k != "_pk"}, sort_keys=True)

        def q(conn):
            row = conn.execute("SELECT pk FROM o11y_objects WHERE public_id = ?", (doc["id"],)).fetchone()
            if row:
                conn.execute("UPDATE o11y_objects SET doc = ? WHERE pk = ?", (body, row[0]))
                return row[0]
            cur = conn.execute("INSERT INTO o11y_objects (kind, public_id, doc) VALUES (?, ?, ?)",
                               (kind, doc["id"], body))
            return cur.lastrowid
        doc["_pk"] = self._run(q)
        return doc

    def delete(self, kind: str, public_id: str) -> None:
        self._run(lambda conn: conn.execute("DELETE FROM o11y_objects WHERE kind = ? AND public_id = ?",
                                            (kind, public_id)))


PK_CHARS = "ABCDEFGHIJKLMNPQRSTUVWXYZ123456789"  # settings PUBLIC_PRIMARY_KEY_ALLOWED_CHARS


def new_public_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(PK_CHARS) for _ in range(12))


def _now_drf() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _sha512_hex(token_hex: str) -> str:
    return hashlib.sha512(binascii.unhexlify(token_hex)).hexdigest()


# ---------------------------------------------------------------------------
# HTTP helpers (Django/DRF response shapes)
# ---------------------------------------------------------------------------

HTML_404 = ("<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n"
            "  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n</body>\n</html>\n")
HTML_500 = ("<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Server Error (500)</title>\n</head>\n<body>\n"
            "  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n")
HTML_400 = ("<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Bad Request (400)</title>\n</head>\n<body>\n"
            "  <h1>Bad Request (400)</h1><p></p>\n</body>\n</html>\n")
NOT_FOUND = {"detail": "Not found."}
INVALID_TOKEN = {"detail": "Invalid token."}
NO_PERMISSION = {"detail": "You do not have permission to perform this action."}
REQUIRED = ["This field is required."]


class ApiError(Exception):
    """An error answer: *status* with a JSON *body* (or an HTML page)."""

    def __init__(self, status: int, body: Any, html: bool = False):
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.html = html


def bad_request(detail: Any) -> ApiError:
    """common.api_helpers.exceptions.BadRequest (``{"detail": ...}``) or a serializer error dict/list."""
    return ApiError(400, {"detail": detail} if isinstance(detail, str) else detail)


def _json_response(status: int, body: Any, headers: Optional[Dict[str, str]] = None):
    from werkzeug.wrappers import Response
    data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    res = Response(data, status=status, headers=headers or {})
    if body is not None:
        res.headers["Content-Type"] = "application/json"
    res.headers["Vary"] = "Accept"
    return res


def _text_response(status: int, text: str, mimetype: str = "text/html; charset=utf-8"):
    from werkzeug.wrappers import Response
    return Response(text, status=status, headers={"Content-Type": mimetype})


# ---- field validation in DRF's words ----------------------------------------

def v_str(data: Dict[str, Any], key: str, errors: Dict[str, Any], required: bool = False,
          allow_null: bool = False, max_length: Optional[int] = None, allow_blank: bool = False) -> Any:
    if key not in data:
        if required:
            errors[key] = REQUIRED
        return None
    val = data[key]
    if val is None:
        if not allow_null:
            errors[key] = ["This field may not be null."]
        return None
    if isinstance(val, (dict, list)) or isinstance(val, bool):
        errors[key] = ["Not a valid string."]
        return None
    val = str(val)
    if not allow_blank and not val.strip():
        errors[key] = ["This field may not be blank."]
        return None
    if max_length is not None and len(val) > max_length:
        errors[key] = ["Ensure this field has no more than %d characters." % max_length]
        return None
    return val


def v_int(data: Dict[str, Any], key: str, errors: Dict[str, Any], required: bool = False,
          allow_null: bool = False, min_value: Optional[int] = None) -> Any:
    if key not in data:
        if required:
            errors[key] = REQUIRED
        return None
    val = data[key]
    if val is None:
        if not allow_null:
            errors[key] = ["This field may not be null."]
        return None
    if isinstance(val, bool) or (isinstance(val, float) and not val.is_integer()):
        errors[key] = ["A valid integer is required."]
        return None
    try:
        ival = int(str(val).strip()) if not isinstance(val, (int, float)) else int(val)
    except ValueError:
        errors[key] = ["A valid integer is required."]
        return None
    if min_value is not None and ival < min_value:
        errors[key] = ["Ensure this value is greater than or equal to %d." % min_value]
        return None
    return ival


def v_bool(data: Dict[str, Any], key: str, errors: Dict[str, Any]) -> Any:
    if key not in data:
        return None
    val = data[key]
    truthy = {True, 1, "true", "True", "TRUE", "1", "yes", "on", "y", "t"}
    falsy = {False, 0, "false", "False", "FALSE", "0", "no", "off", "n", "f"}
    if isinstance(val, (str, int, bool)) and val in truthy:
        return True
    if isinstance(val, (str, int, bool)) and val in falsy:
        return False
    errors[key] = ["Must be a valid boolean."]
    return None


def valid_timezone(name: Any) -> bool:
    if not isinstance(name, str) or not name:
        return False
    try:
        import zoneinfo
        zoneinfo.ZoneInfo(name)
        return True
    except Exception:  # noqa: BLE001 - ZoneInfoNotFoundError, ValueError for odd keys
        return False


def _template_ok(text: str) -> bool:
    # a light stand-in for Jinja's syntax check: balanced delimiters
    return text.count("{{") == text.count("}}") and text.count("{%") == text.count("%}")


# ---------------------------------------------------------------------------
# the public API's vocabularies (apps/public_api/serializers, config_integrations)
# ---------------------------------------------------------------------------

INTEGRATION_TITLES = {
    "grafana_alerting": "Grafana Alerting", "webhook": "Webhook", "alertmanager": "Alertmanager",
    "formatted_webhook": "Formatted webhook", "kapacitor": "Kapacitor", "elastalert": "Elastalert",
    "inbound_email": "Inbound Email", "maintenance": "Maintenance", "manual": "Manual", "zabbix": "Zabbix",
    "direct_paging": "Direct paging", "grafana": "Grafana Legacy Alerting",
    "legacy_alertmanager": "(Legacy) AlertManager", "legacy_grafana_alerting": "(Deprecated) Grafana Alerting",
}
NO_LINK_TYPES = ("manual", "inbound_email", "maintenance")
BEHAVIOUR_TEMPLATES = ("grouping_key", "resolve_signal", "acknowledge_signal", "source_link")
CHANNEL_TEMPLATES = {"slack": ("title", "message", "image_url"), "web": ("title", "message", "image_url"),
                     "sms": ("title",), "phone_call": ("title",), "telegram": ("title", "message", "image_url"),
                     "mobile_app": ("title", "message"), "email": ("title", "message")}
SMILES = (":blush:", ":ghost:", ":alien:", ":robot_face:", ":cat:", ":dog:", ":fox_face:", ":owl:")

POLICY_TYPES = ("wait", "notify_on_call_from_schedule", "notify_persons", "notify_team_members",
                "notify_person_next_each_time", "notify_user_group", "resolve", "notify_whole_channel",
                "trigger_webhook", "notify_if_time_from_to", "notify_if_num_alerts_in_window", "repeat_escalation",
                "declare_incident")
IMPORTANT_TYPES = ("notify_user_group", "notify_on_call_from_schedule", "notify_persons", "notify_team_members",
                   "notify_person_next_each_time")
POLICY_OUTPUT = ("duration", "important", "action_to_trigger", "persons_to_notify", "team_to_notify",
                 "persons_to_notify_next_each_time", "notify_on_call_from_schedule", "group_to_notify",
                 "notify_if_time_from", "notify_if_time_to", "num_alerts_in_window", "num_minutes_in_window",
                 "severity")
POLICY_TYPE_FIELDS = {  # public field -> internal key, per type
    "wait": {"duration": "duration"},
    "notify_on_call_from_schedule": {"notify_on_call_from_schedule": "schedule"},
    "notify_persons": {"persons_to_notify": "users"},
    "notify_person_next_each_time": {"persons_to_notify_next_each_time": "users"},
    "notify_team_members": {"team_to_notify": "team"},
    "notify_user_group": {"group_to_notify": "group"},
    "trigger_webhook": {"action_to_trigger": "webhook"},
    "notify_if_time_from_to": {"notify_if_time_from": "from_time", "notify_if_time_to": "to_time"},
    "notify_if_num_alerts_in_window": {"num_alerts_in_window": "num_alerts_in_window",
                                       "num_minutes_in_window": "num_minutes_in_window"},
    "declare_incident": {"severity": "severity"},
}
POLICY_INTERNAL = ("duration", "users", "team", "schedule", "group", "webhook", "from_time", "to_time",
                   "num_alerts_in_window", "num_minutes_in_window", "severity")

SHIFT_TYPES = ("single_event", "recurrent_event", "rolling_users", "override")
FREQUENCIES = ("hourly", "daily", "weekly", "monthly")
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
SHIFT_FIELDS = ("id", "team_id", "schedule", "name", "type", "time_zone", "level", "start", "duration",
                "rotation_start", "frequency", "interval", "until", "week_start", "by_day", "by_month",
                "by_monthday", "users", "rolling_users", "start_rotation_from_user_index")
SHIFT_NOT_SHOWN = {
    "single_event": ("frequency", "interval", "until", "by_day", "by_month", "by_monthday", "week_start",
                     "rolling_users", "start_rotation_from_user_index"),
    "recurrent_event": ("rolling_users", "start_rotation_from_user_index"),
    "rolling_users": ("users",),
    "override": ("level", "frequency", "interval", "until", "by_day", "by_month", "by_monthday", "week_start",
                 "rolling_users", "start_rotation_from_user_index"),
}
SHIFT_RESET = {  # CustomOnCallShiftSerializer._correct_validated_data
    "single_event": ("frequency", "interval", "by_day", "by_month", "by_monthday", "rolling_users",
                     "start_rotation_from_user_index"),
    "recurrent_event": ("rolling_users", "start_rotation_from_user_index"),
    "rolling_users": ("users",),
    "override": ("level", "frequency", "interval", "by_day", "by_month", "by_monthday", "rolling_users",
                 "start_rotation_from_user_index", "until"),
}
ROLES = {"Admin": 0, "Editor": 1, "Viewer": 2, "None": 3}
ROLE_NAMES = {0: "admin", 1: "editor", 2: "viewer", 3: "none"}
# RBAC permission -> the basic role that has it when RBAC is off (apps/api/permissions.py)
PERMISSIONS = {
    "integrations:read": 2, "integrations:write": 0, "escalation-chains:read": 2, "escalation-chains:write": 0,
    "schedules:read": 2, "schedules:write": 1, "user-settings:read": 2, "api-keys:read": 0, "api-keys:write": 0,
}
DT_FORMAT = "%Y-%m-%dT%H:%M:%S"
DT_FORMAT_ERROR = "Invalid datetime format, should be \"yyyy-mm-dd'T'hh:mm:ss\""
DURATION_FORMAT_ERROR = ["Duration has wrong format. Use one of these formats instead: [DD] [HH:[MM:]]ss[.uuuuuu]."]


def _parse_duration(value: Any) -> Optional[int]:
    """DRF DurationField input (Django's parse_duration, standard format) -> seconds."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    m = re.fullmatch(r"(?:(-?\d+) (?:days?, )?)?(?:(?:(\d+):)?(\d+):)?(\d+)(?:\.\d{1,6})?", str(value).strip())
    if not m:
        return None
    days, hours, minutes, seconds = (int(g) if g else 0 for g in m.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def _strict_dt(value: Any) -> bool:
    try:
        time.strptime(value, DT_FORMAT)
        return True
    except (TypeError, ValueError):
        return False


def _add_months(dt: _dt.datetime, months: int) -> _dt.datetime:
    month = dt.month - 1 + months
    year = dt.year + month // 12
    month = month % 12 + 1
    import calendar
    day = min(dt.day, calendar.monthrange(year, month)[1])
    return dt.replace(year=year, month=month, day=day)


def rolling_on_call_now(shift: Dict[str, Any], now: _dt.datetime) -> List[str]:
    """Who a rolling_users shift puts on call at *now* (hourly/daily/weekly/monthly, by_day ignored)."""
    groups = shift.get("rolling_users") or []
    if shift.get("type") != "rolling_users" or not groups or not shift.get("frequency"):
        return []
    try:
        import zoneinfo
        tz = zoneinfo.ZoneInfo(shift.get("time_zone") or "UTC")
    except Exception:  # noqa: BLE001
        tz = _dt.timezone.utc
    start = _dt.datetime.strptime(shift["start"], DT_FORMAT).replace(tzinfo=tz)
    if now < start:
        return []
    interval = shift.get("interval") or 1
    if shift["frequency"] == "monthly":
        months = (now.year - start.year) * 12 + now.month - start.month
        if _add_months(start, months) > now:
            months -= 1
        period = months // interval
        period_start = _add_months(start, period * interval)
    else:
        step = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400}[shift["frequency"]] * interval
        period = int((now - start).total_seconds() // step)
        period_start = start + _dt.timedelta(seconds=period * step)
    if shift.get("until") and now >= _dt.datetime.strptime(shift["until"], DT_FORMAT).replace(tzinfo=tz):
        return []
    if now >= period_start + _dt.timedelta(seconds=shift["duration"]):
        return []
    return list(groups[(period + (shift.get("start_rotation_from_user_index") or 0)) % len(groups)])


# ---------------------------------------------------------------------------
# the engine's HTTP application
# ---------------------------------------------------------------------------

class Principal:
    """Who a public API request acts as: an API token's user, or a Grafana service account."""

    def __init__(self, user: Optional[Dict[str, Any]], actions: Optional[set] = None):
        self.user = user
        self.actions = actions

    def allowed(self, perm: str) -> bool:
        if self.actions is not None:
            return ("grafana-oncall-app." + perm) in self.actions
        return self.user is not None and self.user.get("role", 3) <= PERMISSIONS[perm]


class Engine:
    """The WSGI application of the engine (Django's URLconf of engine/urls.py, the subset above)."""

    def __init__(self, settings: EngineSettings, log: Optional[fw.Logger] = None):
        self.settings = settings
        self.log = log or fw.Logger(component="oncall", level="error")
        self.version = settings.version
        self._store: Optional[Store] = None
        self.migrations = migrations_for(settings.version)
        self.grafana_timeout = 5.0

    # -- plumbing --------------------------------------------------------------
    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.settings.db_path())
        return self._store

    def db_ready(self) -> None:
        """Raise DatabaseError unless every migration of this version is applied (tables as the code expects)."""
        missing = self.store.missing(self.migrations)
        if missing:
            if not self.store.applied():
                raise DatabaseError("django.db.utils.OperationalError: no such table: user_management_organization")
            raise DatabaseError("django.db.utils.OperationalError: no such column (unapplied migration %s.%s)"
                                % missing[0])

    def redis_ready(self) -> None:
        err = redis_ping(self.settings.redis_uri)
        if err:
            raise DatabaseError("redis.exceptions.ConnectionError: " + err)

    def org(self) -> Optional[Dict[str, Any]]:
        orgs = self.store.all("org")
        return orgs[0] if orgs else None

    def __call__(self, environ, start_response):
        from werkzeug.wrappers import Request
        req = Request(environ)
        try:
            res = self.dispatch(req)
        except ApiError as err:
            res = _text_response(err.status, err.body) if err.html else _json_response(err.status, err.body)
        except (DatabaseError, RedisError) as exc:
            self.log.error("Internal Server Error: %s" % req.path, err=str(exc))
            res = _text_response(500, HTML_500)
        return res(environ, start_response)

    def _host_allowed(self, req) -> bool:
        host = (req.host or "").rsplit(":", 1)[0] if not (req.host or "").endswith("]") else req.host
        for pattern in self.settings.allowed_hosts:
            if pattern == "*" or pattern == host or (pattern.startswith(".") and
                                                     (host.endswith(pattern) or host == pattern[1:])):
                return True
        return False

    def dispatch(self, req):
        if not self._host_allowed(req):
            raise ApiError(400, HTML_400, html=True)
        path = req.path
        rel = path.lstrip("/")
        if self.settings.ssl_redirect and req.scheme != "https" and \
                not any(p.search(rel) for p in SSL_REDIRECT_EXEMPT):
            from werkzeug.wrappers import Response
            target = "https://%s%s" % (req.host, req.full_path.rstrip("?"))
            return Response(b"", status=301, headers={"Location": target})
        if path in ("/", "/health/", "/ready/", "/api/internal/v1/health/"):
            return _text_response(200, "Ok")
        if path == "/startupprobe/":
            self.db_ready()
            self.redis_ready()
            return _text_response(200, "Ok")
        if path == "/metrics/" and self.settings.metrics_enabled:
            return self.metrics(req)
        m = re.fullmatch(r"/integrations/v1/([\w-]+)/([^/]+)/", path)
        if m:
            return self.alert_intake(req, m.group(1), m.group(2))
        if path.startswith("/api/internal/v1/"):
            return self.internal_api(req, path[len("/api/internal/v1/"):])
        if path.startswith("/api/v1/"):
            return self.public_api(req, path[len("/api/v1/"):])
        raise ApiError(404, HTML_404, html=True)

    @staticmethod
    def body(req) -> Any:
        raw = req.get_data()
        if req.headers.get("Content-Encoding") == "gzip":
            try:
                raw = gzip.decompress(raw)
            except OSError:
                raise ApiError(400, {"detail": "Invalid gzip data"}) from None
        if not raw:
            return {}
        ctype = req.headers.get("Content-Type", "")
        if ctype and "json" not in ctype:
            raise ApiError(415, {"detail": "Unsupported media type \"%s\" in request." % ctype.split(";")[0]})
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, {"detail": "JSON parse error - %s" % exc}) from None

    # -- Grafana callbacks (apps/grafana_plugin/helpers/client.py) --------------------
    def grafana_call(self, method: str, path: str, token: Optional[str] = None) -> Tuple[int, Any]:
        """(status, JSON body or None) with the organisation's Grafana token (or *token*); 0: unreachable."""
        import urllib.error
        import urllib.request
        org = self.org() or {}
        base = (org.get("grafana_url") or self.settings.grafana_api_url or "").rstrip("/")
        if not base:
            return 0, None
        req = urllib.request.Request(base + "/" + path, method=method, headers={
            "User-Agent": "Grafana OnCall", "Authorization": "Bearer %s" % (token or org.get("api_token", ""))})
        try:
            with urllib.request.urlopen(req, timeout=self.grafana_timeout) as resp:
                raw = resp.read()
                try:
                    return resp.status, json.loads(raw) if raw else None
                except ValueError:
                    return resp.status, None
        except urllib.error.HTTPError as exc:
            return exc.code, None
        except (OSError, ValueError):
            return 0, None

    # -- metrics ---------------------------------------------------------------------
    def metrics(self, req):
        if self.settings.metrics_secret:
            m = re.match(r"^[Bb]earer\s{1}(.+)$", req.headers.get("Authorization", ""))
            if not m or m.group(1) != self.settings.metrics_secret:
                from werkzeug.wrappers import Response
                return Response(b"", status=401)
        self.db_ready()
        m = fw.Metrics()
        org = self.org()
        for integ in self.store.all("integration"):
            labels = {"integration": integ["name"], "team": "No team", "org_id": str(SELF_HOSTED_ORG_ID),
                      "slug": "self_hosted_stack", "id": str((org or {}).get("stack_id", self.settings.stack_id)),
                      "service_name": "No service"}
            for state in ("firing", "acknowledged", "silenced", "resolved"):
                value = integ.get("alerts", 0) if state == "firing" else 0
                m.gauge("oncall_alert_groups_total", "All alert groups", value, dict(labels, state=state))
        return _text_response(200, m.render(), fw.PROMETHEUS_CONTENT_TYPE)

    # -- alert intake (apps/integrations) ------------------------------------------------
    def alert_intake(self, req, slug: str, token: str):
        if req.method not in ("POST",):
            raise ApiError(405, {"detail": "Method \"%s\" not allowed." % req.method})
        self.db_ready()
        integ = next((i for i in self.store.all("integration") if i.get("token") == token), None)
        if integ is None:
            raise ApiError(403, {"detail": "Integration key was not found. Permission denied."})
        if integ["type"].replace("legacy_", "") != slug:
            title = INTEGRATION_TITLES[integ["type"]]
            return _text_response(400, "This url is for integration with %s. Key is for %s"
                                  % (INTEGRATION_TITLES.get(slug, slug), title), "text/html; charset=utf-8")
        self.redis_ready()
        payload = self.body(req)
        client = Redis(self.settings.broker_url if self.settings.broker_type == "redis" else self.settings.redis_uri)
        try:
            client.command("LPUSH", "critical", json.dumps({"task": "create_alert", "integration": integ["id"],
                                                           "payload": payload}))
        finally:
            client.close()
        integ["alerts"] = integ.get("alerts", 0) + 1
        self.store.put("integration", integ)
        return _json_response(200, "Ok.")

    # -- internal API: Grafana plugin + API tokens ---------------------------------------
    def internal_api(self, req, rel: str):
        rel_ns = rel.rstrip("/")
        if rel_ns in ("plugin/v2/install", "plugin/v2/sync"):
            if req.method != "POST":
                raise ApiError(405, {"detail": "Method \"%s\" not allowed." % req.method})
            self.db_ready()
            if rel_ns.endswith("sync"):
                self.plugin_auth(req)
            org, errors = self.sync(self.body(req))
            if errors is not None:
                raise ApiError(400, errors)
            if rel_ns.endswith("sync"):
                return _json_response(200, None)
            # revoke_plugin() + provision_plugin()
            for tok in self.store.all("plugin_token"):
                self.store.delete("plugin_token", tok["id"])
            # crypto.generate_plugin_token_string: SHA-512 (hex) of a random salt, the stack id and the org id
            token = hashlib.sha512(secrets.token_bytes(32) + str(org["stack_id"]).encode()
                                   + str(org["org_id"]).encode()).hexdigest()
            self.store.put("plugin_token", {"id": "plugin-" + token[:8] + secrets.token_hex(4),
                                            "token_key": token[:8], "digest": _sha512_hex(token)})
            return _json_response(200, {"stackId": org["stack_id"], "orgId": org["org_id"], "onCallToken": token,
                                        "license": LICENSE})
        if rel_ns == "plugin/v2/status":
            self.db_ready()
            org = self.plugin_auth(req, status_code=403)
            code, _ = self.grafana_call("HEAD", "api/org")
            return _json_response(200, {
                "connection_to_grafana": {"url": org.get("grafana_url"), "connected": code == 200,
                                          "status_code": code or 503, "message": "OK" if code == 200 else ""},
                "license": LICENSE, "version": VERSION_SETTING, "currently_undergoing_maintenance_message": None,
                "api_url": self._engine_url("")})
        m = re.fullmatch(r"tokens(?:/(\d+))?/?", rel)
        if m:
            return self.api_tokens(req, m.group(1))
        raise ApiError(404, HTML_404, html=True)

    def _engine_url(self, path: str) -> str:
        """common.api_helpers.utils.create_engine_url (BASE_URL unset -> the engine fails)."""
        base = self.settings.base_url
        if base is None:
            raise DatabaseError("AttributeError: 'NoneType' object has no attribute 'endswith' (BASE_URL is not set)")
        if not base.endswith("/"):
            base += "/"
        return urljoin(base, path.lstrip("/"))

    def plugin_auth(self, req, status_code: int = 401) -> Dict[str, Any]:
        """BasePluginAuthentication: the plugin token + X-Instance-Context."""
        def fail(msg):
            raise ApiError(status_code, {"detail": msg})
        token = req.headers.get("Authorization", "")
        if not token:
            fail("No token provided")
        ctx_raw = req.headers.get("X-Instance-Context")
        if not ctx_raw:
            fail("No instance context provided.")
        try:
            ctx = dict(json.loads(ctx_raw))
        except (ValueError, TypeError):
            fail("Instance context must be JSON dict.")
        if "stack_id" not in ctx or "org_id" not in ctx:
            fail("Invalid instance context.")
        org = self.org()
        try:
            ok = org is not None and int(ctx["stack_id"]) == org["stack_id"] and int(ctx["org_id"]) == org["org_id"]
            digest = _sha512_hex(token)
        except (TypeError, ValueError, binascii.Error):
            ok, digest = False, ""
        if not ok or not any(t["token_key"] == token[:8] and secrets.compare_digest(t["digest"], digest)
                             for t in self.store.all("plugin_token")):
            fail("Invalid token.")
        return org

    def sync(self, data: Any) -> Tuple[Optional[Dict[str, Any]], Any]:
        """SyncV2View.do_sync: validate the sync data, create/update the organisation, users and teams."""
        if not isinstance(data, dict):
            return None, {"non_field_errors": ["Invalid data. Expected a dictionary, but got %s." % type(data).__name__]}
        errors: Dict[str, Any] = {}
        for key in ("users", "teams", "team_members", "settings"):
            if key not in data:
                errors[key] = REQUIRED
        settings = data.get("settings")
        if isinstance(settings, dict):
            s_err: Dict[str, Any] = {}
            for key in ("stack_id", "org_id"):
                v_int(settings, key, s_err, required=True)
            for key in ("license", "oncall_api_url", "grafana_url", "grafana_token"):
                v_str(settings, key, s_err, required=True)
            for key in ("oncall_token", "incident_backend_url"):
                v_str(settings, key, s_err, required=True, allow_blank=True)
            for key in ("rbac_enabled", "incident_enabled", "labels_enabled"):
                if key not in settings:
                    s_err[key] = REQUIRED
                else:
                    v_bool(settings, key, s_err)
            if s_err:
                errors["settings"] = s_err
        elif "settings" in data:
            errors["settings"] = {"non_field_errors": ["Invalid data. Expected a dictionary, but got %s."
                                                       % type(settings).__name__]}
        users = data.get("users") or []
        u_errors = {}
        for i, user in enumerate(users if isinstance(users, list) else []):
            e: Dict[str, Any] = {}
            if not isinstance(user, dict):
                u_errors[str(i)] = {"non_field_errors": ["Invalid data."]}
                continue
            v_int(user, "id", e, required=True)
            for key in ("login", "email", "role"):
                v_str(user, key, e, required=True)
            for key in ("name", "avatar_url"):
                v_str(user, key, e, required=True, allow_blank=True)
            if e:
                u_errors[str(i)] = e
        if u_errors:
            errors["users"] = u_errors
        if errors:
            return None, errors
        if int(settings["org_id"]) != SELF_HOSTED_ORG_ID or int(settings["stack_id"]) != self.settings.stack_id:
            return None, {"code": 1001, "message": "Invalid stack or org id for self-hosted organization",
                          "fields": None}
        org = self.org() or {"id": "org-%d-%d" % (int(settings["stack_id"]), SELF_HOSTED_ORG_ID),
                             "stack_slug": "self_hosted_stack", "org_slug": "self_hosted_org",
                             "org_title": "Self-Hosted Organization"}
        org.update({"stack_id": int(settings["stack_id"]), "org_id": SELF_HOSTED_ORG_ID,
                    "grafana_url": str(settings["grafana_url"]).rstrip("/"), "api_token": settings["grafana_token"],
                    "is_rbac_permissions_enabled": bool(settings.get("rbac_enabled"))})
        self.store.put("org", org)
        teams = {t["grafana_id"]: t for t in self.store.all("team")}
        seen_teams = set()
        for team in data.get("teams") or []:
            tid = int(team["team_id"])
            doc = teams.get(tid) or {"id": new_public_id("T"), "grafana_id": tid}
            doc.update({"name": team.get("name", ""), "email": team.get("email", ""),
                        "avatar_url": team.get("avatar_url", "")})
            self.store.put("team", doc)
            teams[tid] = doc
            seen_teams.add(tid)
        for tid, doc in list(teams.items()):
            if tid not in seen_teams:
                self.store.delete("team", doc["id"])
                del teams[tid]
        members: Dict[int, List[str]] = {}
        for tid, uids in (data.get("team_members") or {}).items():
            for uid in uids or []:
                if int(tid) in teams:
                    members.setdefault(int(uid), []).append(teams[int(tid)]["id"])
        existing = {u["grafana_id"]: u for u in self.store.all("user")}
        seen = set()
        for user in users:
            gid = int(user["id"])
            doc = existing.get(gid) or {"id": new_public_id("U"), "grafana_id": gid, "timezone": None}
            doc.update({"username": user["login"], "email": user["email"], "name": user.get("name", ""),
                        "role": ROLES.get(user["role"], 3), "teams": members.get(gid, [])})
            self.store.put("user", doc)
            seen.add(gid)
        for gid, doc in existing.items():
            if gid not in seen:  # users gone from Grafana are removed (apply_sync_data)
                self.store.delete("user", doc["id"])
        return org, None

    def api_tokens(self, req, token_id: Optional[str]):
        """apps/api/views/public_api_tokens.py behind PluginAuthentication."""
        self.db_ready()
        org = self.plugin_auth(req)
        try:
            ctx = dict(json.loads(req.headers.get("X-Grafana-Context") or "null"))
        except (ValueError, TypeError):
            raise ApiError(401, {"detail": "Grafana context must be JSON dict."}) from None
        if ctx.get("IsServiceAccount", False):
            raise ApiError(401, {"detail": "Service accounts requests are not allowed."})
        users = self.store.all("user")
        user_id = ctx.get("UserId", ctx.get("UserID"))
        if user_id is not None:
            user = next((u for u in users if u["grafana_id"] == int(user_id)), None)
        elif "Login" in ctx:
            user = next((u for u in users if u["username"] == ctx["Login"]), None)
        else:
            raise ApiError(401, {"detail": "Grafana context must specify a User or UserID."})
        if user is None:
            raise ApiError(401, {"detail": "Non-existent or anonymous user."})
        perm = "api-keys:write" if req.method in ("POST", "DELETE") else "api-keys:read"
        if not Principal(user).allowed(perm):
            raise ApiError(403, NO_PERMISSION)
        mine = [t for t in self.store.all("api_token") if t["user"] == user["id"]]
        if token_id is None:
            if req.method == "GET":
                return _json_response(200, [{"id": t["_pk"], "name": t["name"], "created_at": t["created_at"]}
                                            for t in mine])
            if req.method != "POST":
                raise ApiError(405, {"detail": "Method \"%s\" not allowed." % req.method})
            data = self.body(req)
            if len(mine) >= 5:
                raise bad_request("Max token count")
            name = data.get("name") if isinstance(data, dict) else None
            if name is None or name == "":
                raise bad_request("Invalid token name")
            if len(str(name)) > 50:
                raise ApiError(400, {"name": ["Ensure this field has no more than 50 characters."]})
            token = secrets.token_hex(32)
            doc = self.store.put("api_token", {"id": "apitoken-" + secrets.token_hex(8), "user": user["id"],
                                               "name": str(name), "token_key": token[:8],
                                               "digest": _sha512_hex(token), "created_at": _now_drf()})
            return _json_response(201, {"id": doc["_pk"], "token": token, "name": doc["name"],
                                        "created_at": doc["created_at"]})
        tok = next((t for t in mine if t["_pk"] == int(token_id)), None)
        if tok is None:
            raise ApiError(404, NOT_FOUND)
        if req.method == "GET":
            return _json_response(200, {"id": tok["_pk"], "name": tok["name"], "created_at": tok["created_at"]})
        if req.method == "DELETE":
            self.store.delete("api_token", tok["id"])
            return _json_response(204, None)
        raise ApiError(405, {"detail": "Method \"%s\" not allowed." % req.method})

    # -- public API v1 -------------------------------------------------------------------
    RESOURCE_PERMS = {"users": "user-settings", "teams": "user-settings", "integrations": "integrations",
                      "escalation_chains": "escalation-chains", "escalation_policies": "escalation-chains",
                      "schedules": "schedules", "on_call_shifts": "schedules"}
    READ_ONLY = ("users", "teams")

    def public_auth(self, req) -> Principal:
        """GrafanaServiceAccountAuthentication, then ApiTokenAuthentication (failures are 403: no challenge)."""
        token = req.headers.get("Authorization", "")
        if not token:
            raise ApiError(403, INVALID_TOKEN)
        if token.startswith("glsa_"):
            org = self.org()
            wanted = (req.headers.get("X-Grafana-URL") or "").rstrip("/")
            if org is None or (wanted and wanted != org.get("grafana_url")):
                raise ApiError(403, {"detail": "Organization not found."})
            code, perms = self.grafana_call("GET", "api/access-control/user/permissions", token)
            if code != 200 or not isinstance(perms, dict) or not perms:
                raise ApiError(403, INVALID_TOKEN)
            return Principal(None, set(perms))
        try:
            digest = _sha512_hex(token)
        except (binascii.Error, ValueError):
            raise ApiError(403, INVALID_TOKEN) from None
        for tok in self.store.all("api_token"):
            if tok["token_key"] == token[:8] and secrets.compare_digest(tok["digest"], digest):
                user = self.store.get("user", tok["user"])
                if user is not None:
                    return Principal(user)
        raise ApiError(403, INVALID_TOKEN)

    def public_api(self, req, rel: str):
        m = re.fullmatch(r"([a-z_]+)(?:/([^/]+))?/?", rel)
        if not m or m.group(1) not in self.RESOURCE_PERMS:
            raise ApiError(404, HTML_404, html=True)
        resource, pk = m.group(1), m.group(2)
        self.db_ready()
        principal = self.public_auth(req)
        allowed = ("GET",) if resource in self.READ_ONLY else (("GET", "POST") if pk is None
                                                                else ("GET", "PUT", "PATCH", "DELETE"))
        method = "GET" if req.method == "HEAD" else req.method
        if method not in allowed:
            raise ApiError(405, {"detail": "Method \"%s\" not allowed." % req.method})
        write = method != "GET"
        perm = self.RESOURCE_PERMS[resource] + (":write" if write else ":read")
        if not principal.allowed(perm):
            raise ApiError(403, NO_PERMISSION)
        self.redis_ready()  # DRF throttling (UserThrottle) keeps its counters in the Redis cache
        kind = {"users": "user", "teams": "team", "integrations": "integration", "escalation_chains": "chain",
                "escalation_policies": "policy", "schedules": "schedule", "on_call_shifts": "shift"}[resource]
        render = getattr(self, "repr_" + kind)
        if pk is None and method == "GET":
            items = self.list_objects(kind, req.args)
            size = {"users": 100, "teams": 50}.get(resource, 50)
            return _json_response(200, self.paginate(req, [render(i) for i in items], size))
        if method == "POST":
            data = self.body(req)
            if not isinstance(data, dict):
                raise ApiError(400, {"non_field_errors": ["Invalid data. Expected a dictionary, but got %s."
                                                          % type(data).__name__]})
            doc = getattr(self, "write_" + kind)(data, None, principal)
            return _json_response(201, render(doc))
        if kind == "user" and pk == "current":
            current = principal.user
            if current is None:
                raise ApiError(404, NOT_FOUND)
        else:
            current = self.store.get(kind, pk)
        if current is None:
            raise ApiError(404, NOT_FOUND)
        if method == "GET":
            return _json_response(200, render(current))
        if method in ("PUT", "PATCH"):
            data = self.body(req)
            if not isinstance(data, dict):
                raise ApiError(400, {"non_field_errors": ["Invalid data. Expected a dictionary, but got %s."
                                                          % type(data).__name__]})
            doc = getattr(self, "write_" + kind)(data, current, principal, partial=(method == "PATCH"))
            return _json_response(200, render(doc))
        getattr(self, "delete_" + kind)(current)
        return _json_response(204, None)

    def list_objects(self, kind: str, args) -> List[Dict[str, Any]]:
        items = self.store.all(kind)
        if kind == "user":
            for key in ("username", "email"):
                if args.get(key) is not None:
                    items = [u for u in items if (u.get(key) or "").lower() == args[key].lower()]
        elif kind in ("integration", "chain", "schedule") and args.get("name") is not None:
            items = [i for i in items if i.get("name") == args["name"]]
        elif kind == "policy":
            if args.get("escalation_chain_id"):
                items = [p for p in items if p["chain"] == args["escalation_chain_id"]]
            chains = {c["id"]: c["_pk"] for c in self.store.all("chain")}
            items.sort(key=lambda p: (chains.get(p["chain"], 0), p["order"]))
        elif kind == "shift":
            if args.get("schedule_id"):
                sched = self.store.get("schedule", args["schedule_id"])
                ids = set(sched.get("shifts") or []) if sched else set()
                items = [s for s in items if s["id"] in ids]
            if args.get("name"):
                items = [s for s in items if s.get("name") == args["name"]]
        return items

    def paginate(self, req, results: List[Any], page_size: int) -> Dict[str, Any]:
        """PathPrefixedPagePagination: ``page``/``perpage``, links built on BASE_URL."""
        try:
            per_page = int(req.args.get("perpage", page_size))
        except ValueError:
            per_page = page_size
        shown_size = min(per_page, 100) if per_page >= 1 else page_size
        if per_page < 1:
            per_page = page_size
        try:
            page = int(req.args.get("page", 1))
        except ValueError:
            page = 1
        total = len(results)
        pages = max(1, -(-total // per_page))
        page = min(max(page, 1), pages)

        def link(number: Optional[int]) -> str:
            query = [(k, v) for k, v in parse_qsl(req.query_string.decode(), keep_blank_values=True) if k != "page"]
            if number is not None:
                query.append(("page", str(number)))
            return self._engine_url(req.path + ("?" + urlencode(query) if query else ""))
        return {"count": total, "next": link(page + 1) if page < pages else None,
                "previous": (link(page - 1) if page > 2 else link(None)) if page > 1 else None,
                "results": results[(page - 1) * per_page: page * per_page], "page_size": shown_size,
                "current_page_number": page, "total_pages": pages}

    # ---- users and teams --------------------------------------------------------------
    @staticmethod
    def repr_user(u: Dict[str, Any]) -> Dict[str, Any]:
        return {"id": u["id"], "grafana_id": u["grafana_id"], "email": u["email"], "slack": None,
                "username": u["username"], "role": ROLE_NAMES.get(u.get("role", 3), "none"),
                "is_phone_number_verified": False, "timezone": u.get("timezone"), "teams": list(u.get("teams") or [])}

    @staticmethod
    def repr_team(t: Dict[str, Any]) -> Dict[str, Any]:
        return {"id": t["id"], "grafana_id": t["grafana_id"], "name": t["name"], "email": t.get("email", ""),
                "avatar_url": t.get("avatar_url", "")}

    def _team_field(self, data: Dict[str, Any], errors: Dict[str, Any], current: Any) -> Any:
        if "team_id" not in data:
            return current
        val = data["team_id"]
        if val in (None, "null"):
            return None
        if not isinstance(val, str) or self.store.get("team", val) is None:
            errors["team_id"] = ["Object does not exist"]
            return None
        return val

    # ---- integrations ------------------------------------------------------------------
    def repr_integration(self, i: Dict[str, Any]) -> Dict[str, Any]:
        route = self.store.get("route", i["route"]) or {}
        link = None if i["type"] in NO_LINK_TYPES else \
            self._engine_url("integrations/v1/%s/%s/" % (i["type"].replace("legacy_", ""), i["token"]))
        templates: Dict[str, Any] = {k: i["templates"].get(k) for k in BEHAVIOUR_TEMPLATES}
        for channel, fields in CHANNEL_TEMPLATES.items():
            templates[channel] = {f: (i["templates"].get(channel) or {}).get(f) for f in fields}
        return {"maintenance_mode": None, "maintenance_started_at": None, "maintenance_end_at": None,
                "id": i["id"], "name": i["name"], "description_short": i.get("description_short"),
                "team_id": i.get("team_id"), "link": link,
                "inbound_email": ("%s@%s" % (i["token"], self.settings.env.get("INBOUND_EMAIL_DOMAIN")))
                if i["type"] == "inbound_email" else None,
                "type": i["type"].replace("legacy_", ""),
                "default_route": {"id": route.get("id"), "escalation_chain_id": route.get("escalation_chain_id"),
                                  "slack": {"channel_id": None, "enabled": False},
                                  "telegram": {"id": None, "enabled": False}},
                "templates": templates, "heartbeat": None}

    @staticmethod
    def _templates(data: Dict[str, Any], stored: Dict[str, Any]) -> Dict[str, Any]:
        """IntegrationSerializer.validate_templates + _correct_validated_data: merge into *stored*."""
        templates = data["templates"]
        if not isinstance(templates, dict):
            raise bad_request("Invalid template data")
        for channel in CHANNEL_TEMPLATES:
            value = templates.get(channel, {})
            if value is None:
                continue
            if not isinstance(value, dict):
                raise bad_request("Invalid %s template data" % channel)
            for attr, text in value.items():
                if text is not None and (not isinstance(text, str) or not _template_ok(text)):
                    raise bad_request("invalid %s %s template" % (channel, attr))
        for name in BEHAVIOUR_TEMPLATES:
            value = templates.get(name, "")
            if value is None:
                continue
            if not isinstance(value, str) or not _template_ok(value):
                raise bad_request("Invalid %s template data" % name)
        out = json.loads(json.dumps(stored))
        for key, value in templates.items():
            if key in BEHAVIOUR_TEMPLATES:
                out[key] = value
            elif key in CHANNEL_TEMPLATES:
                if value is None:
                    out[key] = {}
                    continue
                for attr, text in value.items():
                    if attr not in CHANNEL_TEMPLATES[key]:
                        if key in ("mobile_app", "email"):
                            continue  # messaging backends take only their template fields
                        raise bad_request("Invalid template data")
                    out.setdefault(key, {})[attr] = text
        return out

    def write_integration(self, data, current, principal, partial=False):
        errors: Dict[str, Any] = {}
        if current is None:
            if "type" not in data:
                errors["type"] = REQUIRED
            else:
                itype = data["type"]
                if itype not in INTEGRATION_TITLES:
                    raise bad_request("Invalid integration type")
                if itype.startswith("legacy_"):
                    raise bad_request("This integration type is deprecated")
                if itype == "direct_paging":
                    raise bad_request("Direct paging integrations can't be created")
        name = v_str(data, "name", errors)
        desc = v_str(data, "description_short", errors, allow_null=True, max_length=250)
        team = self._team_field(data, errors, (current or {}).get("team_id"))
        templates = self._templates(data, (current or {}).get("templates") or {}) if "templates" in data \
            else (current or {}).get("templates") or {}
        chain_id: Any = ...
        if "default_route" in data:
            route_data = data["default_route"]
            if not isinstance(route_data, dict):
                errors["default_route"] = ['Expected a dictionary of items but got type "%s".'
                                           % type(route_data).__name__]
            elif "escalation_chain_id" in route_data:
                chain_id = route_data["escalation_chain_id"]
        if errors:
            raise ApiError(400, errors)
        if name is not None:
            clash = [i for i in self.store.all("integration") if i["name"] == name and i.get("team_id") == team
                     and (current is None or i["id"] != current["id"])]
            if clash:
                raise bad_request("An integration with this name already exists for this team")
        if chain_id is not ... and chain_id is not None and self.store.get("chain", chain_id) is None:
            raise ApiError(400, {"escalation_chain_id": ["Object does not exist"]})
        if current is None:
            if data["type"] == "grafana_alerting":
                code, config = self.grafana_call("GET", "api/alertmanager/grafana/config/api/v1/alerts")
                if code != 200 or config is None:
                    raise ApiError(400, ["Failed to create the integration with current Grafana Alerting. "
                                         "Please reach out to our support team"])
            count = len(self.store.all("integration"))
            doc = {"id": new_public_id("C"), "type": data["type"],
                   "token": "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(25)),
                   "name": name if name is not None else "%s %s" % (INTEGRATION_TITLES[data["type"]],
                                                                     SMILES[count % len(SMILES)]),
                   "description_short": desc, "team_id": team, "templates": templates,
                   "route": new_public_id("R"), "alerts": 0}
            self.store.put("route", {"id": doc["route"], "integration": doc["id"], "is_default": True,
                                     "escalation_chain_id": None if chain_id is ... else chain_id})
            return self.store.put("integration", doc)
        doc = dict(current)
        if name is not None:
            doc["name"] = name
        if "description_short" in data:
            doc["description_short"] = desc
        doc["team_id"] = team
        doc["templates"] = templates
        if chain_id is not ...:
            route = self.store.get("route", doc["route"])
            route["escalation_chain_id"] = chain_id
            self.store.put("route", route)
        return self.store.put("integration", doc)

    def delete_integration(self, current):
        if current["type"] == "direct_paging":
            raise bad_request("Direct paging integrations can't be deleted")
        self.store.delete("route", current["route"])
        self.store.delete("integration", current["id"])

    # ---- escalation chains -----------------------------------------------------------------
    @staticmethod
    def repr_chain(c: Dict[str, Any]) -> Dict[str, Any]:
        return {"id": c["id"], "name": c["name"], "team_id": c.get("team_id")}

    def write_chain(self, data, current, principal, partial=False):
        errors: Dict[str, Any] = {}
        name = v_str(data, "name", errors, required=(current is None or not partial), max_length=100)
        team = self._team_field(data, errors, (current or {}).get("team_id"))
        if errors:
            raise ApiError(400, errors)
        final = name if name is not None else current["name"]
        if any(c["name"] == final and (current is None or c["id"] != current["id"]) for c in self.store.all("chain")):
            raise ApiError(400, {"non_field_errors": ["The fields organization, name must make a unique set."]})
        doc = dict(current) if current else {"id": new_public_id("F")}
        doc.update({"name": final, "team_id": team})
        return self.store.put("chain", doc)

    def delete_chain(self, current):
        for policy in self.store.all("policy"):
            if policy["chain"] == current["id"]:
                self.store.delete("policy", policy["id"])
        for route in self.store.all("route"):
            if route.get("escalation_chain_id") == current["id"]:
                route["escalation_chain_id"] = None
                self.store.put("route", route)
        self.store.delete("chain", current["id"])

    # ---- escalation policies -----------------------------------------------------------------
    def repr_policy(self, p: Dict[str, Any]) -> Dict[str, Any]:
        out: Dict[str, Any] = {"position": p["order"], "id": p["id"], "escalation_chain_id": p["chain"],
                               "type": p["type"]}
        shown = dict(POLICY_TYPE_FIELDS.get(p["type"], {}))
        users = sorted(p.get("users") or [], key=self._user_order)
        for field in POLICY_OUTPUT:
            if field == "important" and p["type"] in IMPORTANT_TYPES:
                out["important"] = bool(p.get("important"))
            elif field in shown:
                key = shown[field]
                out[field] = users if key == "users" else p.get(key)
        return out

    def _user_order(self, uid: str) -> int:
        user = self.store.get("user", uid)
        return user["_pk"] if user else 0

    def _policy_fields(self, data: Dict[str, Any], errors: Dict[str, Any]) -> Dict[str, Any]:
        """Parse the type-specific fields given in *data* into internal keys."""
        out: Dict[str, Any] = {}
        if "duration" in data:
            val = data["duration"]
            if val is None:
                out["duration"] = None
            else:
                try:
                    secs = int(float(val)) if not isinstance(val, bool) else None
                except (TypeError, ValueError):
                    secs = None
                if secs is None:
                    errors["duration"] = ["A valid number is required."]
                elif secs < 60:
                    errors["duration"] = ["Ensure this value is greater than or equal to 0:01:00."]
                elif secs > 86400:
                    errors["duration"] = ["Ensure this value is less than or equal to 1 day, 0:00:00."]
                else:
                    out["duration"] = secs
        for field in ("persons_to_notify", "persons_to_notify_next_each_time"):
            if field in data:
                val = data[field] if data[field] is not None else []
                if not isinstance(val, list):
                    errors[field] = ['Expected a list of items but got type "%s".' % type(val).__name__]
                else:  # UsersFilteredByOrganizationField: unknown ids are dropped
                    out["users"] = [u for u in dict.fromkeys(str(v) for v in val) if self.store.get("user", u)]
        for field, kind, key in (("team_to_notify", "team", "team"),
                                 ("notify_on_call_from_schedule", "schedule", "schedule"),
                                 ("group_to_notify", None, "group"), ("action_to_trigger", None, "webhook")):
            if field in data:
                val = data[field]
                if val is None:
                    errors[field] = ["This field may not be null."]
                elif kind is None or not isinstance(val, str) or self.store.get(kind, val) is None:
                    errors[field] = ["Object does not exist"]  # no Slack user groups or webhooks in the stand-in
                else:
                    out[key] = val
        for field, key in (("notify_if_time_from", "from_time"), ("notify_if_time_to", "to_time")):
            if field in data:
                val = data[field]
                m = re.fullmatch(r"(\d{2}):(\d{2}):(\d{2})Z", val) if isinstance(val, str) else None
                if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59 or int(m.group(3)) > 59:
                    errors[field] = ["Time has wrong format. Use one of these formats instead: hh:mm:ssZ."]
                else:
                    out[key] = val
        for field in ("num_alerts_in_window", "num_minutes_in_window"):
            if field in data:
                out[field] = v_int(data, field, errors, allow_null=True, min_value=0)
        if "severity" in data:
            out["severity"] = v_str(data, "severity", errors)
        imp = v_bool(data, "important", errors)
        if imp is not None:
            out["important"] = imp
        return out

    def _move_policy(self, policy: Dict[str, Any], order: int) -> None:
        """OrderedModel.to(): move to *order*, shifting the policies in between."""
        if order < 0 or order > 2147483647:
            raise bad_request("Invalid value for position field")
        siblings = [p for p in self.store.all("policy") if p["chain"] == policy["chain"]]
        me = next(p for p in siblings if p["id"] == policy["id"])
        old = me["order"]
        if old == order:
            return
        for p in siblings:
            if p["id"] == me["id"]:
                continue
            if old < order and old < p["order"] <= order:
                p["order"] -= 1
                self.store.put("policy", p)
            elif order < old and order <= p["order"] < old:
                p["order"] += 1
                self.store.put("policy", p)
        policy["order"] = order
        self.store.put("policy", policy)

    def write_policy(self, data, current, principal, partial=False):
        errors: Dict[str, Any] = {}
        if current is None:
            if "type" not in data:
                errors["type"] = REQUIRED
            if "escalation_chain_id" not in data:
                errors["escalation_chain_id"] = REQUIRED
            elif not isinstance(data["escalation_chain_id"], str) or \
                    self.store.get("chain", data["escalation_chain_id"]) is None:
                errors["escalation_chain_id"] = ["Object does not exist"]
        ptype = data.get("type") if data.get("type") is not None else (current or {}).get("type")
        if "type" in data and data["type"] is not None:
            if data["type"] not in POLICY_TYPES:
                raise bad_request("Invalid escalation step type")
            if data["type"] == "notify_whole_channel":  # the stand-in has no Slack workspace
                raise bad_request("Invalid escalation step type: step is Slack-specific")
            if data["type"] == "declare_incident":
                raise bad_request("Invalid escalation step type: step is not enabled")
        position = v_int(data, "position", errors)
        fields = self._policy_fields(data, errors)
        if errors:
            raise ApiError(400, errors)
        relevant = set(POLICY_TYPE_FIELDS.get(ptype, {}).values())
        important = fields.pop("important", None)
        if current is None:
            siblings = [p for p in self.store.all("policy") if p["chain"] == data["escalation_chain_id"]]
            doc = {"id": new_public_id("E"), "chain": data["escalation_chain_id"], "type": ptype,
                   "order": max([p["order"] for p in siblings], default=-1) + 1,
                   "important": bool(important) if ptype in IMPORTANT_TYPES else False}
            for key in POLICY_INTERNAL:
                doc[key] = ([] if key == "users" else None)
            for key, val in fields.items():
                if key in relevant:
                    doc[key] = val
            doc = self.store.put("policy", doc)
            if position is not None and position != -1:
                self._move_policy(doc, position)
            return doc
        doc = dict(current)
        if ptype != current["type"]:  # EscalationPolicyUpdateSerializer.update clears what the new step does not use
            for key in POLICY_INTERNAL:
                if key not in relevant:
                    doc[key] = [] if key == "users" else None
        for key, val in fields.items():
            if key in relevant:
                doc[key] = val
        if ptype in IMPORTANT_TYPES:
            # a `type` given is the step's default (not important) variant; without one the step keeps its variant
            base = False if data.get("type") is not None else bool(current.get("important"))
            doc["important"] = bool(important) if important is not None else base
        else:
            doc["important"] = False
        doc["type"] = ptype
        doc = self.store.put("policy", doc)
        if position is not None:
            if position == -1:
                siblings = [p for p in self.store.all("policy") if p["chain"] == doc["chain"]]
                position = max(p["order"] for p in siblings)
            self._move_policy(doc, position)
        return doc

    def delete_policy(self, current):
        self.store.delete("policy", current["id"])  # orders of the others stay as they are (OrderedModel)

    # ---- schedules -----------------------------------------------------------------------------
    def repr_schedule(self, s: Dict[str, Any]) -> Dict[str, Any]:
        now = _dt.datetime.now(_dt.timezone.utc)
        on_call: List[str] = []
        for sid in s.get("shifts") or []:
            shift = self.store.get("shift", sid)
            if shift:
                on_call += [u for u in rolling_on_call_now(shift, now) if u not in on_call]
        out: Dict[str, Any] = {"id": s["id"], "team_id": s.get("team_id"), "name": s["name"]}
        if s["type"] == "ical":
            out.update({"ical_url_primary": s.get("ical_url_primary"), "ical_url_overrides": s.get("ical_url_overrides"),
                        "slack": {"channel_id": None, "user_group_id": None}, "on_call_now": on_call})
        else:
            out.update({"time_zone": s["time_zone"], "slack": {"channel_id": None, "user_group_id": None},
                        "on_call_now": on_call, "shifts": list(s.get("shifts") or [])})
            if s["type"] == "calendar":
                out.update({"ical_url_overrides": s.get("ical_url_overrides"),
                            "enable_web_overrides": bool(s.get("enable_web_overrides"))})
        out["type"] = s["type"]
        return out

    def write_schedule(self, data, current, principal, partial=False):
        stype = current["type"] if current else data.get("type")
        if current is None:
            if "type" not in data:
                raise ApiError(400, {"type": "This field is required"})
            if stype not in ("ical", "calendar", "web"):
                raise ApiError(400, {"type": "Invalid type"})
        errors: Dict[str, Any] = {}
        name = v_str(data, "name", errors, required=current is None, max_length=200)
        tz = (current or {}).get("time_zone", "UTC")
        if stype != "ical":
            if "time_zone" in data:
                if not valid_timezone(data["time_zone"]):
                    errors["time_zone"] = ["Invalid timezone"]
                else:
                    tz = data["time_zone"]
            elif current is None:
                errors["time_zone"] = REQUIRED
        team = self._team_field(data, errors, (current or {}).get("team_id"))
        shifts = (current or {}).get("shifts") or []
        if stype != "ical" and "shifts" in data:
            val = data["shifts"] if data["shifts"] is not None else []
            if not isinstance(val, list):
                errors["shifts"] = ['Expected a list of items but got type "%s".' % type(val).__name__]
            else:
                shifts = [sid for sid in dict.fromkeys(str(v) for v in val) if self.store.get("shift", sid)]
                if stype == "calendar" and any(self.store.get("shift", sid)["type"] == "override" for sid in shifts):
                    raise bad_request("Shifts of type override are not supported in this schedule")
        urls = {}
        for key in ("ical_url_primary", "ical_url_overrides"):
            if key in data:
                urls[key] = v_str(data, key, errors, allow_null=True, max_length=500)
        web_overrides = v_bool(data, "enable_web_overrides", errors) if data.get("enable_web_overrides") is not None \
            else None
        if errors:
            raise ApiError(400, errors)
        if current is not None and stype == "web":
            raise bad_request("Web schedule update is not enabled through API")
        doc = dict(current) if current else {"id": new_public_id("S"), "type": stype, "enable_web_overrides": False}
        if name is not None:
            doc["name"] = name
        doc.update({"time_zone": tz, "team_id": team, "shifts": shifts})
        doc.update(urls)
        if web_overrides is not None:
            doc["enable_web_overrides"] = web_overrides
        return self.store.put("schedule", doc)

    def delete_schedule(self, current):
        for policy in self.store.all("policy"):
            if policy.get("schedule") == current["id"]:
                policy["schedule"] = None
                self.store.put("policy", policy)
        self.store.delete("schedule", current["id"])

    # ---- on-call shifts ------------------------------------------------------------------------
    def repr_shift(self, s: Dict[str, Any]) -> Dict[str, Any]:
        sched = next((x["id"] for x in self.store.all("schedule") if s["id"] in (x.get("shifts") or [])), None)
        values = dict(s, schedule=sched, level=s.get("level", 0))
        out = {f: values.get(f) for f in SHIFT_FIELDS}
        for f in SHIFT_NOT_SHOWN[s["type"]]:
            out.pop(f, None)
        if s.get("frequency") != "weekly":
            out.pop("week_start", None)
        return out

    def write_shift(self, data, current, principal, partial=False):
        errors: Dict[str, Any] = {}
        for key in ("start", "rotation_start", "until"):
            if data.get(key) is not None and not _strict_dt(data[key]):
                raise bad_request(DT_FORMAT_ERROR)
        stype = (current or {}).get("type")
        if "type" in data:
            if data["type"] not in SHIFT_TYPES:
                raise bad_request("Invalid shift type")
            stype = data["type"]
        elif current is None:
            errors["type"] = REQUIRED
        new: Dict[str, Any] = {}
        if "name" in data:
            new["name"] = v_str(data, "name", errors, allow_null=True, max_length=200)
        if "time_zone" in data:
            if data["time_zone"] is not None and not valid_timezone(data["time_zone"]):
                errors["time_zone"] = ["Invalid timezone"]
            new["time_zone"] = data["time_zone"]
        if "level" in data:
            new["level"] = v_int(data, "level", errors)
        for key in ("start", "rotation_start", "until"):
            if key in data:
                if data[key] is None and key != "until":
                    errors[key] = ["This field may not be null."]
                new[key] = data[key]
        if current is None and "start" not in data:
            errors["start"] = REQUIRED
        if "duration" in data:
            secs = _parse_duration(data["duration"]) if data["duration"] is not None else None
            if secs is None:
                errors["duration"] = DURATION_FORMAT_ERROR if data["duration"] is not None else \
                    ["This field may not be null."]
            new["duration"] = secs
        elif current is None:
            errors["duration"] = REQUIRED
        if "frequency" in data:
            if data["frequency"] is not None and data["frequency"] not in FREQUENCIES:
                raise bad_request("Invalid frequency type")
            new["frequency"] = data["frequency"]
        if "interval" in data:
            ival = v_int(data, "interval", errors, allow_null=True)
            if ival is not None and ival <= 0:
                raise bad_request("Invalid value for interval")
            new["interval"] = ival
        if "week_start" in data:
            if data["week_start"] not in WEEKDAYS:
                raise bad_request("Invalid day format for week start field. "
                                  "Should be one of the following: 'MO', 'TU', 'WE', 'TH', 'FR', 'SA', 'SU'")
            new["week_start"] = data["week_start"]
        if "by_day" in data:
            for day in data["by_day"] or []:
                if day not in WEEKDAYS:
                    raise bad_request("Invalid day value in by_day field. "
                                      "Valid values: 'MO', 'TU', 'WE', 'TH', 'FR', 'SA', 'SU'")
            new["by_day"] = data["by_day"] or None
        if "by_month" in data:
            for month in data["by_month"] or []:
                if not isinstance(month, int) or not 1 <= month <= 12:
                    raise bad_request("Invalid month value in by_month field. Valid values: from 1 to 12")
            new["by_month"] = data["by_month"] or None
        if "by_monthday" in data:
            for day in data["by_monthday"] or []:
                if not isinstance(day, int) or not -31 <= day <= 31 or day == 0:
                    raise bad_request("Invalid monthday value in by_monthday field. "
                                      "Valid values: from 1 to 31 and from -31 to -1")
            new["by_monthday"] = data["by_monthday"] or None
        if "users" in data:
            val = data["users"] if data["users"] is not None else []
            if not isinstance(val, list):
                errors["users"] = ['Expected a list of items but got type "%s".' % type(val).__name__]
            else:
                new["users"] = [u for u in dict.fromkeys(str(v) for v in val) if self.store.get("user", u)]
        if "rolling_users" in data:
            val = data["rolling_users"] if data["rolling_users"] is not None else []
            if not isinstance(val, list):
                errors["rolling_users"] = ['Expected a list of items but got type "%s".' % type(val).__name__]
            else:
                groups, g_errors = [], {}
                for idx, group in enumerate(val):
                    ids = [str(u) for u in (group or [])] if isinstance(group, list) else None
                    if ids is None:
                        g_errors[str(idx)] = ['Expected a list of items but got type "%s".' % type(group).__name__]
                        continue
                    missing = [u for u in ids if self.store.get("user", u) is None]
                    if missing:  # RollingUsersField child: require_all_exist
                        g_errors[str(idx)] = ["User does not exist {%s}" % ", ".join(repr(u) for u in
                                                                                      sorted(set(missing)))]
                    groups.append(list(dict.fromkeys(ids)))
                if g_errors:
                    errors["rolling_users"] = g_errors
                new["rolling_users"] = groups or None
        if "start_rotation_from_user_index" in data:
            new["start_rotation_from_user_index"] = v_int(data, "start_rotation_from_user_index", errors,
                                                          allow_null=True, min_value=0)
        if "team_id" in data:
            new["team_id"] = self._team_field(data, errors, None)
        if errors:
            raise ApiError(400, errors)
        # _correct_validated_data: what this shift type does not use is reset
        for key in SHIFT_RESET[stype]:
            new[key] = [] if key == "users" else (0 if key == "level" else None)
        if new.get("frequency") is not None and "interval" not in data:
            new["interval"] = 1
        doc = dict(current) if current else {
            "id": new_public_id("O"), "team_id": None, "name": None, "time_zone": None, "level": 0,
            "until": None, "frequency": None, "interval": None, "week_start": "SU", "by_day": None,
            "by_month": None, "by_monthday": None, "users": [], "rolling_users": None,
            "start_rotation_from_user_index": None}
        frequency = new.get("frequency", doc.get("frequency"))
        interval = new.get("interval", doc.get("interval"))
        index = new.get("start_rotation_from_user_index", doc.get("start_rotation_from_user_index"))
        if current is None or frequency != current.get("frequency"):
            if stype not in ("single_event", "override"):
                if frequency is None:
                    raise bad_request("Field 'frequency' is required for this on-call shift type")
                if frequency == "weekly" and "week_start" not in data:
                    raise bad_request("Field 'week_start' is required for frequency type 'weekly'")
                if interval is None:
                    raise bad_request("Field 'interval' must be a positive integer")
        if stype == "rolling_users" and frequency == "daily":
            if new.get("by_monthday", doc.get("by_monthday")):
                raise bad_request("Day limits are temporarily disabled for on-call shifts with type 'rolling_users' "
                                  "and frequency 'daily'")
            by_day = new.get("by_day", doc.get("by_day"))
            if by_day and interval > len(by_day):
                raise bad_request("Interval must be less than or equal to the number of selected days")
        if stype == "rolling_users" and index is None and (current is None or
                                                           index != current.get("start_rotation_from_user_index")):
            raise bad_request("Field 'start_rotation_from_user_index' is required for this on-call shift type")
        doc.update(new)
        doc["type"] = stype
        if current is None and not doc.get("rotation_start"):
            doc["rotation_start"] = doc["start"]
        return self.store.put("shift", doc)

    def delete_shift(self, current):
        for sched in self.store.all("schedule"):
            if current["id"] in (sched.get("shifts") or []):
                sched["shifts"] = [s for s in sched["shifts"] if s != current["id"]]
                self.store.put("schedule", sched)
        self.store.delete("shift", current["id"])


# ---------------------------------------------------------------------------
# in-process server (tests) and the three programs
# ---------------------------------------------------------------------------

class OnCallServer:
    """Engine + HTTP listener(s); ``OnCallServer(settings, [":8080"]).start()``, ``.url``, ``.stop()``."""

    def __init__(self, settings: EngineSettings, addresses: Sequence[str] = ("127.0.0.1:0",),
                 log: Optional[fw.Logger] = None):
        self.settings = settings
        self.engine = Engine(settings, log)
        self.http = [fw.HTTPService("http", addr, self.engine) for addr in addresses]

    def start(self) -> "OnCallServer":
        for svc in self.http:
            svc.start()
        return self

    @property
    def url(self) -> str:
        return self.http[0].url

    def stop(self) -> None:
        for svc in self.http:
            svc.stop()


def _say(text: str, stream=None) -> None:
    stream = stream or sys.stderr
    stream.write(text if text.endswith("\n") else text + "\n")
    stream.flush()


def _engine_dir_settings(env: Dict[str, str], default_module: str) -> EngineSettings:
    env = dict(env)
    env.setdefault("DJANGO_SETTINGS_MODULE", default_module)
    info = fw.build_info()  # the mirror bakes the release's version into the zipapp
    return EngineSettings(env, os.getcwd(), info["version"] if info.get("component") == "oncall" else ONCALL_VERSION)


# ---- manage.py ---------------------------------------------------------------------------

MANAGE_COMMANDS = ("migrate", "showmigrations", "create_sqlite_db", "check", "help")


def manage_main(argv: Sequence[str]) -> int:
    """``python manage.py <command>`` (Django's execute_from_command_line)."""
    args = list(argv[1:])
    if not args or args[0] in ("help", "--help", "-h"):
        _say("\nType 'manage.py help <subcommand>' for help on a specific subcommand.\n\nAvailable subcommands:\n\n"
             + "".join("    %s\n" % c for c in MANAGE_COMMANDS if c != "help"), sys.stdout)
        return 0
    command, rest = args[0], args[1:]
    if command not in MANAGE_COMMANDS:
        _say("Unknown command: %r\nType 'manage.py help' for usage." % command)
        return 1
    known = {"migrate": ("--noinput", "--no-input", "--check", "--plan", "-v", "--verbosity"),
             "showmigrations": ("--list", "-l"), "create_sqlite_db": (), "check": ("--deploy",)}[command]
    for opt in rest:
        if opt.startswith("-") and opt.split("=")[0] not in known and not re.fullmatch(r"-v\d|--verbosity=\d", opt):
            _say("usage: manage.py %s [-h] ...\nmanage.py %s: error: unrecognized arguments: %s" % (command, command, opt))
            return 2
    try:
        settings = _engine_dir_settings(os.environ, "settings.dev")
        if command == "create_sqlite_db":
            if settings.db_type != "sqlite3":
                raise StartupError(_traceback("AssertionError"))
            Store(settings.db_path())._run(lambda conn: conn.execute("SELECT 1"))
            return 0
        settings.require_secret_key()
        engine = Engine(settings)
        wanted = engine.migrations
        if command == "check":
            _say("System check identified no issues (0 silenced).", sys.stdout)
            return 0
        applied = set(engine.store.applied())
        if command == "showmigrations":
            apps: Dict[str, List[str]] = {}
            for app, name in wanted:
                apps.setdefault(app, []).append(" [%s] %s" % ("X" if (app, name) in applied else " ", name))
            _say("".join("%s\n%s\n" % (app, "\n".join(lines)) for app, lines in sorted(apps.items())), sys.stdout)
            return 0
        pending = [m for m in wanted if m not in applied]
        _say("Operations to perform:\n  Apply all migrations: %s" % ", ".join(sorted({a for a, _ in wanted})),
             sys.stdout)
        if "--check" in rest:
            return 1 if pending else 0
        if "--plan" in rest:
            _say("Planned operations:\n" + ("".join("%s.%s\n" % m for m in pending) or "  No planned migration operations.\n"),
                 sys.stdout)
            return 0
        _say("Running migrations:", sys.stdout)
        if not pending:
            _say("  No migrations to apply.", sys.stdout)
        for app, name in pending:
            engine.store.apply(app, name)
            _say("  Applying %s.%s... OK" % (app, name), sys.stdout)
        return 0
    except StartupError as err:
        _say(err.text)
        return err.code
    except DatabaseError as err:
        _say(_traceback(str(err)))
        return 1


# ---- uwsgi ---------------------------------------------------------------------------------

UWSGI_VERSION = "2.0.28"
UWSGI_FLAGS = {"strict", "need-app", "master", "vacuum", "harakiri-verbose", "http-auto-chunked",
               "enable-threads", "die-on-term", "single-interpreter", "lazy-apps", "disable-logging",
               "no-orphans", "thunder-lock", "auto-procname", "memory-report", "log-x-forwarded-for"}
UWSGI_VALUES = {"ini", "chdir", "module", "wsgi-file", "callable", "pidfile", "http", "http-socket", "socket",
                "processes", "workers", "threads", "harakiri", "max-requests", "max-worker-lifetime",
                "reload-on-rss", "worker-reload-mercy", "buffer-size", "http-timeout", "http-keepalive",
                "post-buffering", "max-fd", "logger", "log-format", "log-encoder", "env", "home", "virtualenv",
                "venv", "pythonpath", "uid", "gid", "logto", "static-map", "stats", "listen", "procname-prefix",
                "plugins", "plugin", "req-logger", "touch-reload", "socket-timeout", "add-header"}
UWSGI_MULTI = {"http", "http-socket", "socket", "env", "pythonpath", "static-map", "add-header", "logger"}
UWSGI_ALIASES = {"workers": "processes", "home": "virtualenv", "venv": "virtualenv", "plugin": "plugins"}


def _uwsgi_expand(value: str) -> str:
    # $(VAR) expansion of uWSGI config values
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: os.environ.get(m.group(1), ""), value)


def _uwsgi_bool(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on", "y", "")


def _uwsgi_int(value: str) -> int:
    m = re.match(r"\s*(-?\d+)", value)  # atoi(): "60 ; seconds" -> 60
    return int(m.group(1)) if m else 0


class UwsgiConfig:
    def __init__(self):
        self.opts: Dict[str, Any] = {}

    def set(self, name: str, value: Optional[str], source: str, strict_check: bool) -> None:
        name = UWSGI_ALIASES.get(name, name)
        if name not in UWSGI_FLAGS and name not in UWSGI_VALUES and name not in UWSGI_ALIASES.values():
            if strict_check:
                raise StartupError("[strict-mode] unknown config directive: %s" % name)
            return
        if name in UWSGI_FLAGS:
            self.opts[name] = True if value is None else _uwsgi_bool(value)
        elif name == "ini":
            self.load_ini(value or "")
        elif name in UWSGI_MULTI:
            self.opts.setdefault(name, []).append(_uwsgi_expand(value or ""))
        else:
            self.opts[name] = _uwsgi_expand(value or "")

    def load_ini(self, path: str) -> None:
        path, _, section = path.partition(":")
        section = section or "uwsgi"
        try:
            with open(path, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except OSError as exc:
            raise StartupError("realpath() of %s failed: %s [core/utils.c line 3662]" % (path, exc.strerror))
        current = None
        pending: List[Tuple[str, str]] = []
        for line in lines:
            text = line.strip()
            if not text or text[0] in ";#":
                continue
            m = re.fullmatch(r"\[(.+)\]", text)
            if m:
                current = m.group(1).strip()
                continue
            if current != section or "=" not in text:
                continue
            key, value = text.split("=", 1)
            pending.append((key.strip(), value.strip()))
        strict = any(k == "strict" and _uwsgi_bool(v) for k, v in pending) or self.opts.get("strict")
        for key, value in pending:
            self.set(key, value, path, bool(strict))


def uwsgi_parse(args: Sequence[str]) -> UwsgiConfig:
    cfg = UwsgiConfig()
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            if arg.endswith(".ini") and i == 0:  # `uwsgi file.ini`
                cfg.load_ini(arg)
                i += 1
                continue
            raise StartupError("uwsgi: unrecognized option '%s'\ngetopt_long() error" % arg)
        name, eq, value = arg[2:].partition("=")
        canon = UWSGI_ALIASES.get(name, name)
        if canon not in UWSGI_FLAGS and canon not in UWSGI_VALUES and canon not in UWSGI_ALIASES.values():
            raise StartupError("uwsgi: unrecognized option '--%s'\ngetopt_long() error" % name)
        if canon in UWSGI_FLAGS:
            cfg.set(canon, value if eq else None, "argv", True)
        else:
            if not eq:
                i += 1
                if i >= len(args):
                    raise StartupError("uwsgi: option '--%s' requires an argument\ngetopt_long() error" % name)
                value = args[i]
            cfg.set(canon, value, "argv", True)
        i += 1
    return cfg


def _uwsgi_address(spec: str) -> str:
    host, _, port = spec.rpartition(":")
    return "%s:%s" % (host, port)


def uwsgi_main(argv: Sequence[str]) -> int:
    """``uwsgi --ini uwsgi.ini [...]``: the engine's HTTP server."""
    try:
        cfg = uwsgi_parse(argv[1:])
    except StartupError as err:
        _say(err.text)
        return 1
    o = cfg.opts
    _say("*** Starting uWSGI %s (64bit) on [%s] ***\ncompiled with version: 12.2.0 on 01 January 2026 00:00:00\n"
         "os: Linux\nnodename: %s\ndetected number of CPU cores: %d\ncurrent working directory: %s"
         % (UWSGI_VERSION, time.ctime(), socket.gethostname(), os.cpu_count() or 1, os.getcwd()))
    if o.get("chdir"):
        try:
            os.chdir(o["chdir"])
        except OSError as exc:
            _say("chdir(): %s [core/uwsgi.c line 2651]" % exc.strerror)
            return 1
    if o.get("pidfile"):
        try:
            with open(o["pidfile"], "w") as fh:
                fh.write("%d\n" % os.getpid())
            _say("writing pidfile to %s" % o["pidfile"])
        except OSError as exc:
            _say("open(\"%s\"): %s [core/utils.c line 399]" % (o["pidfile"], exc.strerror))
            return 1
    addresses = [_uwsgi_address(a) for a in (o.get("http") or []) + (o.get("http-socket") or [])]
    if not addresses:
        _say("The -s/--socket option is missing and stdin is not a socket.")
        return 1
    # load the app: module=engine.wsgi:application, imported from the working directory
    app: Optional[Engine] = None
    failure = None
    module = (o.get("module") or "").split(":")[0]
    if not module:
        failure = "*** no app loaded. (no module/wsgi-file set) ***"
    elif not os.path.isfile(os.path.join(os.getcwd(), *module.split(".")) + ".py"):
        failure = _traceback("ModuleNotFoundError: No module named '%s'" % module.split(".")[0])
    else:
        try:
            settings = _engine_dir_settings(os.environ, "settings.prod")
            settings.require_secret_key()
            app = Engine(settings, fw.Logger(component="engine", level="info"))
            try:  # apps.grafana_plugin.apps.GrafanaPluginConfig.ready (under uwsgi)
                if app.store.applied() and app.org() is None and not settings.grafana_api_url:
                    _say("For OSS installations, GRAFANA_API_URL is a required environment variable. "
                         "Please set it and restart the application.")
                    raise StartupError("")
            except DatabaseError:
                pass
        except StartupError as err:
            failure = err.text
            app = None
    if failure is not None:
        if failure:
            _say(failure)
        _say("unable to load app 0 (mountpoint='') (callable not found or import error)")
        if o.get("need-app"):
            _say("*** no app loaded. GAME OVER ***")
            return 22
        _say("*** no app loaded. going in full dynamic mode ***")

    def broken(environ, start_response):
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
        return [b"Internal Server Error"]
    services = []
    for addr in addresses:
        svc = fw.HTTPService("http", addr, app if app is not None else broken)
        try:
            svc.start()
        except OSError as exc:
            _say("bind(): %s [core/socket.c line 769]" % (exc.strerror or exc))
            for s in services:
                s.stop()
            return 1
        services.append(svc)
        _say("uWSGI http bound on %s fd 4" % addr)
    if app is not None:
        _say("WSGI app 0 (mountpoint='') ready in 1 seconds on interpreter 0x1 pid: %d (default app)" % os.getpid())
    _say("spawned uWSGI master process (pid: %d)" % os.getpid())
    for n in range(1, max(1, _uwsgi_int(o.get("processes", "1")) or 1) + 1):
        _say("spawned uWSGI worker %d (pid: %d, cores: 1)" % (n, os.getpid()))
    fw.sd_notify("READY=1")
    import signal as _signal
    stop = threading.Event()

    def on_term(signum, _frame):
        if o.get("die-on-term") or signum != _signal.SIGTERM:
            stop.set()
        else:  # uWSGI 2.0 without die-on-term: SIGTERM means "brutally reload"
            _say("...brutally killing workers...\nbinary reloading uWSGI...")
    for sig in (_signal.SIGTERM, _signal.SIGINT, _signal.SIGQUIT):
        _signal.signal(sig, on_term)
    while not stop.is_set():
        stop.wait(0.5)
    _say("SIGINT/SIGQUIT received...killing workers...\ngoodbye to uWSGI.")
    for svc in services:
        svc.stop()
    if o.get("pidfile") and o.get("vacuum"):
        try:
            os.unlink(o["pidfile"])
        except OSError:
            pass
    return 0


# ---- celery ----------------------------------------------------------------------------------

CELERY_VERSION = "5.3.6 (emerald-rush)"
CELERY_GLOBAL = {"-A": "app", "--app": "app", "-b": "broker", "--broker": "broker", "--result-backend": "v",
                 "--loader": "v", "--config": "v", "--workdir": "workdir"}
CELERY_GLOBAL_FLAGS = {"-q", "--quiet", "-C", "--no-color", "--skip-checks", "--version", "--help"}
CELERY_WORKER = {"-n": "hostname", "--hostname": "hostname", "-S": "v", "--statedb": "v", "-l": "loglevel",
                 "--loglevel": "loglevel", "--prefetch-multiplier": "v", "-c": "concurrency", "--concurrency": "concurrency",
                 "-P": "pool", "--pool": "pool", "--time-limit": "v", "--soft-time-limit": "v",
                 "--max-tasks-per-child": "v", "--max-memory-per-child": "v", "-Q": "queues", "--queues": "queues",
                 "-X": "v", "--exclude-queues": "v", "-I": "v", "--include": "v", "--heartbeat-interval": "v",
                 "--autoscale": "v", "-s": "schedule", "--schedule-filename": "schedule", "--scheduler": "v",
                 "--pidfile": "pidfile", "--uid": "v", "--gid": "v", "--umask": "v", "--executable": "v",
                 "-f": "logfile", "--logfile": "logfile"}
CELERY_WORKER_FLAGS = {"-D": "detach", "--detach": "detach", "-O": "v", "-E": "events", "--task-events": "events",
                       "--purge": "purge", "--discard": "purge", "--without-gossip": "v", "--without-mingle": "nomingle",
                       "--without-heartbeat": "v", "-B": "beat", "--beat": "beat", "--help": "help"}
CELERY_BEAT = {"-s": "schedule", "--schedule": "schedule", "-S": "v", "--scheduler": "v", "--max-interval": "v",
               "-l": "loglevel", "--loglevel": "loglevel", "--pidfile": "pidfile", "-f": "logfile", "--logfile": "logfile",
               "--uid": "v", "--gid": "v", "--umask": "v", "--executable": "v"}
CELERY_BEAT_FLAGS = {"-D": "detach", "--detach": "detach", "--help": "help"}


class CeleryUsage(Exception):
    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


def _click_parse(args: List[str], values: Dict[str, str], flags: Dict[str, str], usage: str,
                 stop_at_positional: bool) -> Tuple[Dict[str, Any], List[str]]:
    out: Dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-") or arg == "-":
            if stop_at_positional:
                return out, args[i:]
            raise CeleryUsage("%s\n\nError: Got unexpected extra argument (%s)" % (usage, arg))
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg[:2], "" if len(arg) == 2 else "=",
                                                                          arg[2:])
        if name in flags or (isinstance(flags, set) and name in flags):
            out[flags[name] if isinstance(flags, dict) else name] = True
        elif name in values:
            if not eq:
                i += 1
                if i >= len(args):
                    raise CeleryUsage("%s\n\nError: Option '%s' requires an argument." % (usage, name))
                value = args[i]
            out[values[name]] = value
        else:
            raise CeleryUsage("%s\n\nError: No such option: %s" % (usage, name))
        i += 1
    return out, []


def _celery_log(level: str, process: str, text: str) -> None:
    now = _dt.datetime.now()
    _say("[%s,%03d: %s/%s] %s" % (now.strftime("%Y-%m-%d %H:%M:%S"), now.microsecond // 1000, level, process, text))


def celery_main(argv: Sequence[str]) -> int:
    """``celery -A engine worker ...`` / ``celery -A engine beat ...`` (a Redis broker)."""
    usage = "Usage: celery [OPTIONS] COMMAND [ARGS]...\nTry 'celery --help' for help."
    try:
        flags = {f: f for f in CELERY_GLOBAL_FLAGS}
        gopts, rest = _click_parse(list(argv[1:]), CELERY_GLOBAL, flags, usage, stop_at_positional=True)
        if gopts.get("--version"):
            _say(CELERY_VERSION, sys.stdout)
            return 0
        if not rest:
            _say(usage.replace("\nTry", "\n\n  Celery command entrypoint.\n\nTry"), sys.stdout)
            return 0 if gopts.get("--help") else 2
        command, cargs = rest[0], rest[1:]
        known = ("worker", "beat", "inspect", "control", "status", "call", "events", "purge", "result", "shell",
                 "multi", "graph", "list", "logtool", "migrate", "amqp", "report", "upgrade")
        if command not in known:
            raise CeleryUsage("%s\n\nError: No such command '%s'." % (usage, command))
        if command not in ("worker", "beat"):
            _say("o11y.stack stand-in: `celery %s` is not emulated (only worker and beat)" % command)
            return 2
        sub_usage = "Usage: celery %s [OPTIONS]\nTry 'celery %s --help' for help." % (command, command)
        if command == "worker":
            opts, _ = _click_parse(cargs, CELERY_WORKER, CELERY_WORKER_FLAGS, sub_usage, stop_at_positional=False)
        else:
            opts, _ = _click_parse(cargs, CELERY_BEAT, CELERY_BEAT_FLAGS, sub_usage, stop_at_positional=False)
    except CeleryUsage as err:
        _say(err.text)
        return 2
    if gopts.get("workdir"):
        try:
            os.chdir(gopts["workdir"])
        except OSError as exc:
            _say("Error: Invalid value for '--workdir': %s" % exc)
            return 2
    app = gopts.get("app")
    if app is None:
        broker = gopts.get("broker") or "amqp://guest:guest@localhost:5672//"
        settings = None
    else:
        if not os.path.isfile(os.path.join(os.getcwd(), app.split(".")[0], "celery.py")):
            _say("Usage: celery [OPTIONS] COMMAND [ARGS]...\nTry 'celery --help' for help.\n\n"
                 "Error: Invalid value for '-A' / '--app': \nUnable to load celery application.\n"
                 "The module %s was not found." % app.split(".")[0])
            return 2
        try:
            settings = _engine_dir_settings(os.environ, "settings.prod")
            settings.require_secret_key()
        except StartupError as err:
            _say(err.text)
            return err.code
        broker = gopts.get("broker") or settings.broker_url
    return CeleryWorker(command, opts, broker, settings).run()


class CeleryWorker:
    """A Celery worker (or beat) on a Redis broker: connect with retries, declare queues, consume."""

    MAX_RETRIES = 100

    def __init__(self, command: str, opts: Dict[str, Any], broker: str, settings: Optional[EngineSettings]):
        self.command = command
        self.opts = opts
        self.broker = broker
        self.settings = settings
        queues = opts.get("queues") or "celery"
        self.queues = [q.strip() for q in queues.split(",") if q.strip()]
        self.hostname = opts.get("hostname") or "celery@" + socket.gethostname()
        self.stop = threading.Event()
        self.client: Optional[Redis] = None

    def _interval(self, attempt: int) -> float:
        return float(min(2 * attempt, 30))  # broker_connection retry: start 2s, step 2s, max 30s

    def connect(self) -> bool:
        attempt = 0
        while not self.stop.is_set():
            try:
                if not self.broker.startswith(("redis://", "rediss://")):
                    raise RedisError(self._amqp_error())
                client = Redis(self.broker, timeout=3.0)
                client.connect()
                client.command("PING")
                self.client = client
                return True
            except RedisError as exc:
                attempt += 1
                if attempt > self.MAX_RETRIES:
                    _celery_log("CRITICAL", "MainProcess", "Unrecoverable error: OperationalError('%s')" % exc)
                    return False
                wait = self._interval(attempt)
                _celery_log("ERROR", "MainProcess", "consumer: Cannot connect to %s: %s.\nTrying again in %.2f "
                            "seconds... (%d/%d)\n" % (mask_uri(self.broker), exc, wait, attempt, self.MAX_RETRIES))
                self.stop.wait(wait)
        return False

    def _amqp_error(self) -> str:
        parts = urlsplit(self.broker)
        try:
            with socket.create_connection((parts.hostname or "localhost", parts.port or 5672), timeout=2):
                pass
        except OSError as exc:
            return "[Errno %s] %s" % (exc.errno, exc.strerror or exc)
        return "the o11y.stack stand-in speaks only to a Redis broker (BROKER_TYPE=redis)"

    def open_beat_schedule(self) -> bool:
        path = self.opts.get("schedule") or (self.settings.beat_schedule_filename if self.settings
                                             else "celerybeat-schedule")
        try:
            with open(path, "ab") as fh:
                fh.write(b"")
            _celery_log("INFO", "Beat", "beat: Starting...")
            return True
        except OSError as exc:
            _celery_log("CRITICAL", "Beat", "beat raised exception <class '_gdbm.error'>: error(%d, '%s')"
                        % (exc.errno or 0, exc.strerror or exc))
            return False

    def run(self) -> int:
        import signal as _signal

        def on_signal(signum, _frame):
            if not self.stop.is_set():
                _say("\nworker: %s shutdown (MainProcess)" % ("Warm" if signum == _signal.SIGTERM else "Cold"))
            self.stop.set()
        for sig in (_signal.SIGTERM, _signal.SIGINT, _signal.SIGQUIT):
            _signal.signal(sig, on_signal)
        if self.command == "beat":
            _say("celery beat v%s is starting." % CELERY_VERSION)
            if not self.connect():
                return 1 if not self.stop.is_set() else 0
            if not self.open_beat_schedule():
                return 1
            while not self.stop.wait(1.0):
                pass
            return 0
        if not self.connect():
            return 1 if not self.stop.is_set() else 0
        if self.opts.get("beat") and not self.open_beat_schedule():
            return 1
        while not self.stop.is_set():
            try:
                self.declare()
                _celery_log("INFO", "MainProcess", "Connected to %s" % mask_uri(self.broker))
                if not self.opts.get("nomingle"):
                    _celery_log("INFO", "MainProcess", "mingle: searching for neighbors")
                    _celery_log("INFO", "MainProcess", "mingle: all alone")
                _celery_log("INFO", "MainProcess", "%s ready." % self.hostname)
                fw.sd_notify("READY=1")
                self.consume()
            except RedisError:
                if self.stop.is_set():
                    break
                _celery_log("WARNING", "MainProcess", "consumer: Connection to broker lost. Trying to re-establish "
                            "the connection...")
                if not self.connect():
                    return 1 if not self.stop.is_set() else 0
        return 0

    def declare(self) -> None:
        for q in self.queues:  # kombu's Redis transport keeps bindings in sets
            self.client.command("SADD", "_kombu.binding.%s" % q, "%s\x06\x16\x06\x16%s" % (q, q))
        self.client.command("SADD", "_kombu.binding.celery.pidbox", "\x06\x16\x06\x16%s.celery.pidbox" % self.hostname)

    def consume(self) -> None:
        while not self.stop.is_set():
            reply = self.client.command("BRPOP", *(self.queues + ["1"]), timeout=5.0)
            if reply:
                queue, body = reply[0].decode(), reply[1]
                try:
                    task = json.loads(body).get("task", "?")
                except (ValueError, AttributeError):
                    task = "?"
                tid = secrets.token_hex(16)
                _celery_log("INFO", "MainProcess", "Task %s[%s] received" % (task, tid))
                _celery_log("INFO", "ForkPoolWorker-1", "Task %s[%s] succeeded in 0.01s: None (queue %s)"
                            % (task, tid, queue))


def main(argv: Sequence[str]) -> int:
    """``o11y-oncall-standin uwsgi|celery|manage.py ARGS...`` (what the mirror's shims exec)."""
    if len(argv) < 2 or argv[1] not in ("uwsgi", "celery", "manage.py"):
        _say("usage: %s uwsgi|celery|manage.py [args...]  (o11y.stack OnCall engine stand-in %s)"
             % (os.path.basename(argv[0] if argv else "oncall"), ONCALL_VERSION))
        return 2
    tool = argv[1]
    rest = [tool] + list(argv[2:])
    if tool == "uwsgi":
        return uwsgi_main(rest)
    if tool == "celery":
        return celery_main(rest)
    return manage_main(rest)


# ---------------------------------------------------------------------------
# tests' way to the public API: what the Grafana plugin backend sends
# ---------------------------------------------------------------------------

def plugin_headers(token: str, stack_id: int = 5, grafana_token: str = "", user: Optional[Dict[str, Any]] = None
                   ) -> Dict[str, str]:
    """The headers grafana-plugin/pkg/plugin/proxy.go puts on requests it forwards to the engine."""
    headers = {"Authorization": token, "Content-Type": "application/json",
               "X-Instance-Context": json.dumps({"stack_id": str(stack_id), "org_id": str(SELF_HOSTED_ORG_ID),
                                                 "grafana_token": grafana_token})}
    if user is not None:
        headers["X-Grafana-Context"] = json.dumps({"UserID": user["id"], "IsAnonymous": False,
                                                   "Name": user.get("name", ""), "Login": user["login"],
                                                   "Email": user.get("email", ""), "Role": user.get("role", "Admin")})
    return headers


def sync_data(grafana_url: str, oncall_api_url: str, users: Sequence[Dict[str, Any]], stack_id: int = 5,
              grafana_token: str = "glsa_o11y_standin_grafana_token", teams: Sequence[Dict[str, Any]] = (),
              team_members: Optional[Dict[str, List[int]]] = None) -> Dict[str, Any]:
    """An OnCallSync body (grafana-plugin/pkg/plugin/sync.go) for the self-hosted organisation."""
    return {"users": [dict({"name": u["login"], "email": u["login"] + "@example.com", "role": "Admin",
                            "avatar_url": "", "permissions": [], "teams": None}, **u) for u in users],
            "teams": [dict({"email": "", "avatar_url": ""}, **t) for t in teams],
            "team_members": team_members or {},
            "settings": {"stack_id": stack_id, "org_id": SELF_HOSTED_ORG_ID, "license": LICENSE,
                         "oncall_api_url": oncall_api_url, "oncall_token": "", "grafana_url": grafana_url,
                         "grafana_token": grafana_token, "rbac_enabled": False, "incident_enabled": False,
                         "incident_backend_url": "", "labels_enabled": False, "irm_enabled": False}}


def _http_json(method: str, url: str, body: Any = None, headers: Optional[Dict[str, str]] = None) -> Tuple[int, Any]:
    import urllib.error
    import urllib.request
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {},
                                                                               **{"Content-Type": "application/json"}))
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw) if raw else None
        except ValueError:
            return exc.code, raw.decode("utf-8", "replace")


def bootstrap_api_token(engine_url: str, users: Sequence[Dict[str, Any]], as_user: Optional[Dict[str, Any]] = None,
                        grafana_url: str = "http://127.0.0.1:3000", name: str = "o11y-stack",
                        grafana_token: str = "glsa_o11y_standin_grafana_token") -> Dict[str, Any]:
    """Install the plugin (v2/install with *users*) and create a public API token for *as_user* (default: the
    first user), like Grafana's ``/api/plugins/grafana-oncall-app/resources/tokens/`` does through the plugin.

    Returns ``{"plugin_token": ..., "api_token": ..., "install": <install answer>}``.
    """
    status, install = _http_json("POST", engine_url.rstrip("/") + "/api/internal/v1/plugin/v2/install",
                                 sync_data(grafana_url, engine_url, users, grafana_token=grafana_token))
    if status != 200:
        raise RuntimeError("plugin install failed: %s %s" % (status, install))
    user = as_user or users[0]
    status, tok = _http_json("POST", engine_url.rstrip("/") + "/api/internal/v1/tokens/", {"name": name},
                             plugin_headers(install["onCallToken"], grafana_token=grafana_token, user=user))
    if status != 201:
        raise RuntimeError("token creation failed: %s %s" % (status, tok))
    return {"plugin_token": install["onCallToken"], "api_token": tok["token"], "install": install}


# ---------------------------------------------------------------------------
# release archive members (tests/standins/build_mirror.py "oncall" entry)
# ---------------------------------------------------------------------------

WHEEL_SHIM = '''# o11y.stack TEST STAND-IN shim: the %(tool)s console script of the OnCall engine stand-in.
import os
import re
import sys

ZIPAPP = "%(zipapp)s"


def _engine_dir(argv):
    where = os.getcwd()
    if "%(tool)s" == "celery":
        for i, arg in enumerate(argv):
            if arg == "--workdir" and i + 1 < len(argv):
                where = argv[i + 1]
            elif arg.startswith("--workdir="):
                where = arg.split("=", 1)[1]
        return where
    for i, arg in enumerate(argv):  # uwsgi: the last chdir wins, from --ini files or --chdir
        value = None
        if arg in ("--ini", "--chdir") and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(("--ini=", "--chdir=")):
            value = arg.split("=", 1)[1]
        if value is None:
            continue
        if arg.startswith("--chdir"):
            where = value
            continue
        try:
            with open(value.split(":")[0]) as fh:
                for line in fh:
                    m = re.match(r"\\s*chdir\\s*=\\s*(\\S+)", line)
                    if m:
                        where = m.group(1)
        except OSError:
            pass
    return where


def main():
    target = os.path.join(os.path.abspath(_engine_dir(sys.argv[1:])), ZIPAPP)
    if not os.path.isfile(target):
        if "%(tool)s" == "celery":
            sys.stderr.write("Usage: celery [OPTIONS] COMMAND [ARGS]...\\nTry 'celery --help' for help.\\n\\n"
                             "Error: Invalid value for '-A' / '--app': \\nUnable to load celery application.\\n"
                             "The module engine was not found.\\n")
            return 2
        sys.stderr.write("ModuleNotFoundError: No module named 'engine'\\nunable to load app 0 (mountpoint='') "
                         "(callable not found or import error)\\n*** no app loaded. GAME OVER ***\\n")
        return 22
    os.execv(target, [target, "%(tool)s"] + sys.argv[1:])
'''


class ShimWheel:
    """A pure-Python wheel named like an upstream requirement whose console script execs the stand-in."""

    mode = 0o644

    def __init__(self, dist: str, version: str, tool: str):
        self.dist, self.version, self.tool = dist, version, tool

    def build(self, ctx: Any) -> bytes:
        module = "o11y_oncall_standin_%s_shim" % self.tool
        info = "%s-%s.dist-info" % (self.dist, self.version)
        files = [
            (module + ".py", (WHEEL_SHIM % {"tool": self.tool, "zipapp": ENGINE_ZIPAPP}).encode()),
            (info + "/METADATA", ("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: o11y.stack test stand-in "
                                  "shim (not the real %s)\n" % (self.dist, self.version, self.dist)).encode()),
            (info + "/WHEEL", b"Wheel-Version: 1.0\nGenerator: o11y-build-mirror\nRoot-Is-Purelib: true\n"
                              b"Tag: py3-none-any\n"),
            (info + "/entry_points.txt", ("[console_scripts]\n%s = %s:main\n" % (self.tool, module)).encode()),
            (info + "/top_level.txt", (module + "\n").encode()),
        ]
        record = ""
        for name, data in files:
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record += "%s,sha256=%s,%d\n" % (name, digest, len(data))
        record += "%s/RECORD,,\n" % info
        files.append((info + "/RECORD", record.encode()))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name, data in files:
                zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                zi.create_system = 3
                zi.external_attr = (0o100644) << 16
                zf.writestr(zi, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
        return buf.getvalue()


class TextFile:
    """Literal content, no template substitution (``{}`` stay as they are)."""

    def __init__(self, content: str, mode: int = 0o644):
        self.content, self.mode = content, mode

    def build(self, ctx: Any) -> bytes:
        return self.content.encode()


MANAGE_PY = '''#!/usr/bin/env python
# o11y.stack TEST STAND-IN of grafana/oncall engine/manage.py: runs the engine stand-in's Django commands.
import os
import sys

if __name__ == "__main__":
    target = os.path.join(os.path.dirname(os.path.abspath(__file__)), "%s")
    os.execv(target, [target, "manage.py"] + sys.argv[1:])
''' % ENGINE_ZIPAPP

# The same directives and values as upstream's engine/uwsgi.ini (the role may run it as is).
UWSGI_INI = """; o11y.stack TEST STAND-IN archive: uWSGI settings of the OnCall engine (same directives as upstream)
[uwsgi]
strict=true
need-app=true
chdir=/etc/app
module=engine.wsgi:application
master=True
pidfile=/tmp/project-master.pid
http=0.0.0.0:8080
processes=5
harakiri=60 ; seconds
harakiri-verbose=true
max-requests=5000
max-worker-lifetime=3600
reload-on-rss=2048
worker-reload-mercy=60
vacuum=True
buffer-size=65535
http-auto-chunked=True
http-timeout=620
http-keepalive=620
post-buffering=1
enable-threads=true
die-on-term=true
single-interpreter=true
max-fd=1048576
logger=stdio
log-format=source=engine:uwsgi status=%(status) method=%(method) path=%(uri) latency=%(secs)
log-encoder=format ${strftime:%%Y-%%m-%%d %%H:%%M:%%S} ${msgnl}
"""

REQUIREMENTS_TXT = """# o11y.stack TEST STAND-IN of grafana/oncall engine/requirements.txt:
# the engine stand-in's console scripts, as wheels named like the upstream requirements.
--no-index
--find-links standin-wheels
celery==5.3.6
uwsgi==2.0.28
"""

PLACEHOLDER = "# o11y.stack TEST STAND-IN archive: placeholder for grafana/oncall %s (the stand-in checks it exists)\n"

MIRROR_MEMBERS: Tuple[Tuple[str, Any], ...] = (
    ("oncall-{version}/engine/manage.py", TextFile(MANAGE_PY, 0o755)),
    ("oncall-{version}/engine/uwsgi.ini", TextFile(UWSGI_INI)),
    ("oncall-{version}/engine/requirements.txt", TextFile(REQUIREMENTS_TXT)),
    ("oncall-{version}/engine/standin-wheels/celery-5.3.6-py3-none-any.whl", ShimWheel("celery", "5.3.6", "celery")),
    ("oncall-{version}/engine/standin-wheels/uwsgi-2.0.28-py3-none-any.whl", ShimWheel("uwsgi", "2.0.28", "uwsgi")),
) + tuple(("oncall-{version}/engine/%s" % p, TextFile(PLACEHOLDER % ("engine/" + p))) for p in (
    "engine/__init__.py", "engine/wsgi.py", "engine/celery.py", "settings/__init__.py", "settings/base.py",
    "settings/hobby.py", "settings/helm.py", "settings/prod_without_db.py", "settings/dev.py",
    "settings/ci_test.py")) + (
    ("oncall-{version}/LICENSE", TextFile("GNU AFFERO GENERAL PUBLIC LICENSE, Version 3 (test stand-in archive)\n")),
    ("oncall-{version}/README.md", TextFile("Grafana OnCall (o11y.stack test stand-in archive). OnCall OSS is "
                                             "archived upstream since 2026-03-24.\n")),
)
"""Archive members besides the ``engine/o11y-oncall-standin`` zipapp (which build_mirror adds)."""


if __name__ == "__main__":
    sys.exit(main(sys.argv))
