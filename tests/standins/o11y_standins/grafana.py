# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Grafana stand-in: the ``grafana`` binary on the surface o11y.stack uses.

Behaves like Grafana OSS 13.2.3 where the collection touches it:

* CLI (urfave/cli): ``grafana --version``/``-v``; ``grafana server`` with
  ``--config``, ``--homepath``, ``--pidfile``, ``--packaging``,
  ``--configOverrides``, ``-v``/``--version`` (prints ``Version X (commit: ..,
  branch: ..)``) and trailing ``cfg:default.<section>.<key>=v`` /
  ``cfg:<section>.<key>=v`` overrides (what the upstream deb unit passes);
  ``grafana cli [--homepath H] [--config C] admin reset-admin-password PW``.
  Run under the name ``grafana-server`` (the legacy binary) it prints
  upstream's deprecation warning and behaves like ``grafana server``.  Unknown
  flags: ``Incorrect Usage: flag provided but not defined: -x``, exit 1.
* Configuration like upstream's ``pkg/setting``: ``<homepath>/conf/defaults.ini``
  must exist (else ``Could not find config defaults, make sure homepath command
  line parameter is set or working directory is homepath``, exit 1), then the
  ``cfg:default.`` overrides, the ``--config`` file (``<homepath>/conf/custom.ini``
  when not given), ``GF_<SECTION>_<KEY>`` environment overrides, ``cfg:``
  overrides, and ``$__env{VAR}`` / ``$__file{path}`` / ``${VAR}`` expansion.
  Parsed with go-ini's rules as Grafana loads it (inline comments are NOT
  stripped, ``"..."`` values are unquoted, a line that is neither a section, a
  ``key = value`` nor a comment fails).  **Unknown sections and keys are ignored,
  exactly like real Grafana** (it reads only the keys it knows); the stand-in
  reads ``[server] http_addr/http_port/protocol/cert_file/cert_key/root_url``,
  ``[paths] data/logs/plugins/provisioning``, ``[database] type/path``,
  ``[security] admin_user/admin_password/admin_email/secret_key/
  disable_initial_admin_creation``, ``[auth.anonymous] enabled/org_name/org_role``,
  ``[auth.basic] enabled``, ``[log] mode/level``, ``[metrics] enabled/
  basic_auth_username/basic_auth_password``.  Relative paths resolve against the
  homepath, ``[database] path`` against the data path.  Only ``sqlite3`` is
  supported as database type (others exit 1 with a message saying so).
* State persists across restarts in ``<data>/grafana.db`` (SQLite).  The admin
  user is created from ``[security] admin_user/admin_password`` on the first
  start only, like upstream (changing the password in the file later has no
  effect; ``grafana cli admin reset-admin-password`` changes it).
* HTTP API subset with upstream's status codes and JSON shapes (read from
  pkg/api and the HTTP API docs of the 13.x line): ``/api/health``,
  ``/metrics`` (``grafana_build_info``), data sources (``/api/datasources``,
  ``/uid/:uid``, ``/name/:name``, ``/id/:name``, ``/:id``), folders
  (``/api/folders``, ``/:uid``, ``/:uid/move``), dashboards
  (``/api/dashboards/db``, ``/api/dashboards/uid/:uid``), ``/api/search``,
  plugins (``/api/plugins``, ``/api/plugins/:id/settings``; installed plugins are
  the core ones plus every ``plugin.json`` under ``[paths] plugins``), plugin
  resources (``/api/plugins/:id/resources/*``: 404 ``Plugin not found`` unless
  installed; the grafana-oncall-app 1.16.9 Go backend is emulated when its
  plugin.json is there, see "the grafana-oncall-app plugin backend" below),
  ``/api/org/users``, ``/api/teams/search`` (no teams), Grafana's Alertmanager
  configuration (``/api/alertmanager/grafana/config/api/v1/alerts``, built
  from the provisioned contact points and policy tree), service
  accounts and their tokens (``glsa_`` tokens), organisations (``/api/org``,
  ``/api/orgs``), alerting provisioning (``/api/v1/provisioning``): contact
  points (GET [?name=], POST/PUT 202, DELETE 202 ``contactpoint deleted`` as the
  handler answers, although the swagger docs say 204; every type's secure
  settings returned as ``[REDACTED]``, ``[REDACTED]`` in a PUT keeps the stored
  value; 409 when the policy tree still routes to it; provenance from
  ``X-Disable-Provenance``), the notification policy tree (GET, PUT 202 with
  upstream's decoding: durations re-rendered like model.Duration, object
  matchers sorted, empty fields dropped; route validation as 400
  ``alerting.notifications.routes.invalidFormat``; DELETE resets to the default
  tree; provenance 'api' -> 'none' refused with 403).  Texts of 400 bodies are
  approximations of upstream's.  Authentication: basic auth (users, or ``api_key:<token>``), Bearer
  service account tokens, anonymous access when enabled; ``X-Grafana-Org-Id``
  selects the organisation.  Errors: 401 with upstream's errutil bodies
  (``password-auth.failed``, ``api-key.invalid``, ...), 403 ``Access denied``
  bodies naming the permission, 404/409/412 bodies as upstream.
* Logs in Grafana's logfmt shape to stderr (and ``<logs>/grafana.log`` when
  ``[log] mode`` contains ``file``); ``sd_notify READY=1`` once serving; SIGTERM
  -> exit 0.

Test hooks (in-process only, never reachable over HTTP): ``GrafanaApp.break_database``
makes every write fail like a broken database (500 with upstream's message).
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import sqlite3
import string
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import framework as fw

DEFAULT_VERSION = "13.2.3"
DEFAULT_REVISION = "6193dc03311b631b9727b560d24369e683dc396e"  # the v13.2.3 tag's commit
# Go toolchain of the 13.x line (13.0.1 moved to go1.25.9; later patches not verified)
DEFAULT_GOVERSION = "go1.25.9"
MAX_FOLDER_DEPTH = 4  # upstream folder.MaxNestedFolderDepth

# A subset of upstream conf/defaults.ini: the sections and keys the stand-in
# reads, with upstream's default values.  The mirror ships it as
# <homepath>/conf/defaults.ini like the release tarball does.
DEFAULTS_INI = """\
##################### Grafana Configuration Defaults #####################
# (o11y.stack test stand-in: the keys the stand-in reads, upstream defaults)

app_mode = production
instance_name = ${HOSTNAME}

[paths]
data = data
temp_data_lifetime = 24h
logs = data/log
plugins = data/plugins
provisioning = conf/provisioning

[server]
protocol = http
min_tls_version = ""
http_addr =
http_port = 3000
domain = localhost
enforce_domain = false
root_url = %(protocol)s://%(domain)s:%(http_port)s/
serve_from_sub_path = false
router_logging = false
static_root_path = public
enable_gzip = false
cert_file =
cert_key =
socket = /tmp/grafana.sock
read_timeout = 0

[database]
type = sqlite3
host = 127.0.0.1:3306
name = grafana
user = root
password =
url =
path = grafana.db
max_idle_conn = 2
max_open_conn =
conn_max_lifetime = 14400
wal = false

[analytics]
reporting_enabled = true
check_for_updates = true
check_for_plugin_updates = true

[security]
disable_initial_admin_creation = false
admin_user = admin
admin_password = admin
admin_email = admin@localhost
secret_key = SW2YcwTIb9zpOOhoPsMm
disable_gravatar = false
cookie_secure = false
allow_embedding = false

[users]
allow_sign_up = false
allow_org_create = false
auto_assign_org = true
auto_assign_org_id = 1
auto_assign_org_role = Viewer

[auth]
disable_login_form = false

[auth.anonymous]
enabled = false
org_name = Main Org.
org_role = Viewer
hide_version = false

[auth.basic]
enabled = true

[log]
mode = console file
level = info
filters =

[log.console]
level =
format = console

[log.file]
level =
format = text
log_rotate = true

[metrics]
enabled = true
interval_seconds = 10
disable_total_stats = false
basic_auth_username =
basic_auth_password =

[unified_alerting]
enabled = true

[plugins]
allow_loading_unsigned_plugins =
"""

ROLE_RANK = {"None": 0, "Viewer": 1, "Editor": 2, "Admin": 3}

# Core data source plugins of the 13.x line that o11y.stack uses (id, name).
CORE_DATASOURCES = {
    "prometheus": "Prometheus", "loki": "Loki", "tempo": "Tempo",
    "grafana-pyroscope-datasource": "Grafana Pyroscope", "alertmanager": "Alertmanager",
    "elasticsearch": "Elasticsearch", "graphite": "Graphite", "influxdb": "InfluxDB",
    "jaeger": "Jaeger", "zipkin": "Zipkin", "mysql": "MySQL", "grafana-postgresql-datasource": "PostgreSQL",
    "grafana-testdata-datasource": "TestData", "cloudwatch": "CloudWatch",
}


# ---------------------------------------------------------------------------
# INI (go-ini as Grafana loads it: IgnoreInlineComment = true)
# ---------------------------------------------------------------------------

class IniError(Exception):
    pass


def parse_ini(text: str, source: str = "") -> Dict[str, Dict[str, str]]:
    """go-ini parsing: ``[section]``, ``key = value`` (or ``key: value``),
    ``;``/``#`` comment lines.  Inline comments stay part of the value."""
    data: Dict[str, Dict[str, str]] = {"DEFAULT": {}}
    section = "DEFAULT"
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        raw = lines[i]
        i += 1
        line = raw.strip()
        if not line or line[0] in ";#":
            continue
        if line.startswith("["):
            end = line.find("]")
            if end < 0:
                raise IniError("%sunclosed section: %s" % (source + ": " if source else "", line))
            section = line[1:end].strip() or "DEFAULT"
            data.setdefault(section, {})
            continue
        pos = min([p for p in (line.find("="), line.find(":")) if p >= 0], default=-1)
        if pos < 0:
            raise IniError("%skey-value delimiter not found: %s" % (source + ": " if source else "", line))
        key = line[:pos].strip().strip("`\"")
        value = line[pos + 1:].strip()
        if value.startswith('"""'):
            body = value[3:]
            while '"""' not in body and i < len(lines):
                body += "\n" + lines[i]
                i += 1
            value = body.split('"""', 1)[0]
        elif len(value) >= 2 and value[0] in "\"`" and value[-1] == value[0]:
            value = value[1:-1]
        data.setdefault(section, {})[key] = value
    return data


def _interpolate(value: str, section: Dict[str, str], default: Dict[str, str], depth: int = 0) -> str:
    """go-ini ``%(key)s`` references to keys of the same section (or DEFAULT)."""
    if depth > 99 or "%(" not in value:
        return value

    def repl(m):
        key = m.group(1)
        if key in section:
            return _interpolate(section[key], section, default, depth + 1)
        if key in default:
            return _interpolate(default[key], section, default, depth + 1)
        return m.group(0)

    return re.sub(r"%\(([^)]+)\)s", repl, value)


_ENV_PROVIDER = re.compile(r"\$__(env|file|vault)\{([^}]*)\}")
_ENV_LEGACY = re.compile(r"\$\{(\w+)\}")


def expand_value(value: str, env: Dict[str, str]) -> str:
    def provider(m):
        kind, arg = m.group(1), m.group(2)
        if kind == "env":
            return env.get(arg, "")
        if kind == "file":
            try:
                with open(arg, encoding="utf-8") as fh:
                    return fh.read().strip()
            except OSError as exc:
                raise IniError("failed to read file %s: %s" % (arg, exc.strerror)) from None
        raise IniError("vault is not supported by the stand-in (%s)" % arg)

    value = _ENV_PROVIDER.sub(provider, value)
    return _ENV_LEGACY.sub(lambda m: env.get(m.group(1), ""), value)


def _env_key(section: str, key: str) -> str:
    name = "GF_" + section.upper().replace(".", "_").replace("-", "_")
    return name + "_" + key.upper().replace(".", "_").replace("-", "_")


class Settings:
    """The merged configuration and the values derived from it."""

    def __init__(self, homepath: str, config: str = "", overrides: Optional[List[str]] = None,
                 env: Optional[Dict[str, str]] = None):
        self.env = dict(os.environ if env is None else env)
        self.homepath = os.path.abspath(homepath or os.getcwd())
        defaults_path = os.path.join(self.homepath, "conf", "defaults.ini")
        if not os.path.isfile(defaults_path):
            raise IniError("Could not find config defaults, make sure homepath command line parameter is set "
                           "or working directory is homepath")
        with open(defaults_path, encoding="utf-8") as fh:
            raw = parse_ini(fh.read(), defaults_path)
        default_props, props = {}, {}
        for item in overrides or []:
            if not item.startswith("cfg:") or "=" not in item:
                continue
            name, value = item[4:].split("=", 1)
            target = props
            if name.startswith("default."):
                name, target = name[len("default."):], default_props
            if "." in name:
                sec, key = name.rsplit(".", 1)
            else:
                sec, key = "DEFAULT", name
            target[(sec, key)] = value
        for (sec, key), value in default_props.items():
            raw.setdefault(sec, {})[key] = value
        custom = config or os.path.join(self.homepath, "conf", "custom.ini")
        self.config_file = ""
        if os.path.isfile(custom):
            with open(custom, encoding="utf-8") as fh:
                for sec, values in parse_ini(fh.read(), custom).items():
                    raw.setdefault(sec, {}).update(values)
            self.config_file = custom
        elif config:
            raise IniError("failed to load custom config: open %s: no such file or directory" % config)
        for sec, values in raw.items():
            for key in list(values):
                name = _env_key(sec, key) if sec != "DEFAULT" else "GF_" + key.upper()
                if name in self.env:
                    values[key] = self.env[name]
        for (sec, key), value in props.items():
            raw.setdefault(sec, {})[key] = value
        default = raw.get("DEFAULT", {})
        self.raw: Dict[str, Dict[str, str]] = {}
        for sec, values in raw.items():
            self.raw[sec] = {k: expand_value(_interpolate(v, values, default), self.env) for k, v in values.items()}
        self.data = self._abs(self.get("paths", "data", "data"))
        self.logs = self._abs(self.get("paths", "logs", "data/log"))
        self.plugins = self._abs(self.get("paths", "plugins", "data/plugins"))
        self.provisioning = self._abs(self.get("paths", "provisioning", "conf/provisioning"))
        db_path = self.get("database", "path", "grafana.db")
        self.db_type = self.get("database", "type", "sqlite3")
        self.db_path = db_path if os.path.isabs(db_path) else os.path.join(self.data, db_path)

    def _abs(self, path: str) -> str:
        return path if os.path.isabs(path) else os.path.join(self.homepath, path)

    def get(self, section: str, key: str, default: str = "") -> str:
        value = self.raw.get(section, {}).get(key)
        return default if value is None else value

    def get_bool(self, section: str, key: str, default: bool = False) -> bool:
        value = self.get(section, key, "").strip().lower()
        if value in ("1", "t", "true", "on", "yes", "y"):
            return True
        if value in ("0", "f", "false", "off", "no", "n"):
            return False
        return default  # go-ini MustBool falls back on bad values


# ---------------------------------------------------------------------------
# persistence
# ---------------------------------------------------------------------------

class StoreError(Exception):
    pass


def _restore(obj: Dict[str, Any], before: Dict[str, Any]) -> None:
    """Put *obj* back, in place, as its copy *before* has it."""
    obj.clear()
    obj.update(before)


def _put_back(table: Dict[str, Any], key: str, prev: Optional[Any]) -> None:
    """Put ``table[key]`` back to *prev* (None: remove the key, it was not there)."""
    if prev is None:
        table.pop(key, None)
    else:
        table[key] = prev


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _empty_state() -> Dict[str, Any]:
    return {"seq": {}, "orgs": {}, "users": {}, "tokens": {}, "datasources": {}, "folders": {},
            "dashboards": {}, "plugin_settings": {}, "alerting": {}}


class Store:
    """The whole state as one JSON document in a SQLite file (``grafana.db``)."""

    def __init__(self, path: str):
        self.path = path
        self.lock = threading.RLock()
        self.broken = False
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False)
        self._conn.execute("CREATE TABLE IF NOT EXISTS standin_state (id INTEGER PRIMARY KEY, doc TEXT NOT NULL)")
        row = self._conn.execute("SELECT doc FROM standin_state WHERE id = 1").fetchone()
        self.state = _empty_state()
        if row:
            self.state.update(json.loads(row[0]))

    def next_id(self, kind: str) -> int:
        seq = self.state["seq"]
        seq[kind] = int(seq.get(kind, 0)) + 1
        return seq[kind]

    def save(self) -> None:
        if self.broken:
            raise StoreError("database is locked")
        doc = json.dumps(self.state, sort_keys=True)
        with self._conn:
            self._conn.execute("INSERT OR REPLACE INTO standin_state (id, doc) VALUES (1, ?)", (doc,))

    def ping(self) -> bool:
        if self.broken:
            return False
        try:
            self._conn.execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    def close(self) -> None:
        self._conn.close()


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

_UID_RE = re.compile(r"^[a-zA-Z0-9\-_]*$")


def short_uid() -> str:
    """Like util.GenerateShortUID: 14 lowercase alphanumerics starting with a letter."""
    return random.choice(string.ascii_lowercase) + "".join(
        random.choice(string.ascii_lowercase + string.digits) for _ in range(13))


def slugify(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug


def password_hash(password: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 10000, 50).hex()


def new_token() -> Tuple[str, str]:
    """A ``glsa_`` service account token like upstream satokengen: secret + crc32 checksum."""
    secret = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    checksum = "%08x" % (binascii.crc32(("glsa_" + secret).encode()) & 0xFFFFFFFF)
    token = "glsa_%s_%s" % (secret, checksum)
    return token, hashlib.sha256(token.encode()).hexdigest()


class ApiError(Exception):
    """An error response: status and JSON body."""

    def __init__(self, status: int, body: Any):
        super().__init__(str(body))
        self.status = status
        self.body = body


def err(status: int, message: str) -> ApiError:
    return ApiError(status, {"message": message})


def errutil(status: int, message_id: str, message: str, extra: Optional[Dict[str, Any]] = None) -> ApiError:
    """An errutil error's public JSON (``extra`` is a template error's public data)."""
    return ApiError(status, {"extra": extra, "message": message, "messageId": message_id, "statusCode": status,
                             "traceID": ""})


def denied(action: str) -> ApiError:
    return ApiError(403, {"title": "Access denied",
                          "message": "You'll need additional permissions to perform this action. "
                                     "Permissions needed: %s" % action,
                          "accessErrorId": "ACE%010d" % random.randint(0, 9999999999)})


NOT_FOUND = err(404, "Not found")


class Identity:
    def __init__(self, kind: str, org_id: int, role: str, user: Optional[Dict[str, Any]] = None,
                 server_admin: bool = False):
        self.kind = kind
        self.org_id = org_id
        self.role = role
        self.user = user or {}
        self.server_admin = server_admin

    @property
    def login(self) -> str:
        return self.user.get("login", "Anonymous")

    def require(self, role: str, action: str) -> None:
        if ROLE_RANK.get(self.role, 0) < ROLE_RANK[role]:
            raise denied(action)


# ---------------------------------------------------------------------------
# the application
# ---------------------------------------------------------------------------

class GrafanaApp:
    """The HTTP application (WSGI) over a :class:`Store`."""

    def __init__(self, settings: Settings, store: Store, log: Optional["GrafanaLogger"] = None):
        from werkzeug.routing import Map, Rule
        self.settings = settings
        self.store = store
        self.log = log or GrafanaLogger(level="error")
        self.info = _info()
        self.version = self.info["version"]
        self.commit = self.info["revision"][:10]
        self.metrics = fw.Metrics()
        self.metrics.gauge("grafana_build_info",
                           "A metric with a constant '1' value labeled by version, revision, branch, and "
                           "goversion from which Grafana was built",
                           1, {"branch": self.info.get("branch", "HEAD"), "edition": "oss",
                               "goversion": self.info.get("goversion") or DEFAULT_GOVERSION,
                               "revision": self.commit, "version": self.version})
        self.metrics.collectors.append(self._collect)
        self._seed()
        R = Rule
        self.url_map = Map([
            R("/api/health", endpoint="health", methods=["GET", "HEAD"]),
            R("/metrics", endpoint="metrics", methods=["GET"]),
            R("/api/org", endpoint="org_current", methods=["GET"]),
            R("/api/orgs", endpoint="orgs_create", methods=["POST"]),
            R("/api/orgs/<int:org_id>", endpoint="orgs_get", methods=["GET"]),
            R("/api/user", endpoint="user_current", methods=["GET"]),
            R("/api/datasources", endpoint="ds_list", methods=["GET"]),
            R("/api/datasources", endpoint="ds_create", methods=["POST"]),
            R("/api/datasources/uid/<path:uid>", endpoint="ds_get_uid", methods=["GET"]),
            R("/api/datasources/uid/<path:uid>", endpoint="ds_put_uid", methods=["PUT"]),
            R("/api/datasources/uid/<path:uid>", endpoint="ds_delete_uid", methods=["DELETE"]),
            R("/api/datasources/name/<path:name>", endpoint="ds_get_name", methods=["GET"]),
            R("/api/datasources/name/<path:name>", endpoint="ds_delete_name", methods=["DELETE"]),
            R("/api/datasources/id/<path:name>", endpoint="ds_id_by_name", methods=["GET"]),
            R("/api/datasources/<int:ds_id>", endpoint="ds_get_id", methods=["GET"]),
            R("/api/datasources/<int:ds_id>", endpoint="ds_delete_id", methods=["DELETE"]),
            R("/api/folders", endpoint="folder_list", methods=["GET"]),
            R("/api/folders", endpoint="folder_create", methods=["POST"]),
            R("/api/folders/<uid>", endpoint="folder_get", methods=["GET"]),
            R("/api/folders/<uid>", endpoint="folder_put", methods=["PUT"]),
            R("/api/folders/<uid>", endpoint="folder_delete", methods=["DELETE"]),
            R("/api/folders/<uid>/move", endpoint="folder_move", methods=["POST"]),
            R("/api/dashboards/db", endpoint="dash_save", methods=["POST"]),
            R("/api/dashboards/uid/<uid>", endpoint="dash_get", methods=["GET"]),
            R("/api/dashboards/uid/<uid>", endpoint="dash_delete", methods=["DELETE"]),
            R("/api/search", endpoint="search", methods=["GET"]),
            R("/api/plugins", endpoint="plugin_list", methods=["GET"]),
            R("/api/plugins/<plugin_id>/settings", endpoint="plugin_settings_get", methods=["GET"]),
            R("/api/plugins/<plugin_id>/settings", endpoint="plugin_settings_post", methods=["POST"]),
            R("/api/serviceaccounts", endpoint="sa_create", methods=["POST"]),
            R("/api/serviceaccounts/search", endpoint="sa_search", methods=["GET"]),
            R("/api/serviceaccounts/<int:sa_id>", endpoint="sa_get", methods=["GET"]),
            R("/api/serviceaccounts/<int:sa_id>", endpoint="sa_patch", methods=["PATCH"]),
            R("/api/serviceaccounts/<int:sa_id>", endpoint="sa_delete", methods=["DELETE"]),
            R("/api/serviceaccounts/<int:sa_id>/tokens", endpoint="sa_tokens", methods=["GET"]),
            R("/api/serviceaccounts/<int:sa_id>/tokens", endpoint="sa_token_create", methods=["POST"]),
            R("/api/serviceaccounts/<int:sa_id>/tokens/<int:token_id>", endpoint="sa_token_delete",
              methods=["DELETE"]),
            R("/api/v1/provisioning/contact-points", endpoint="cp_list", methods=["GET"]),
            R("/api/v1/provisioning/contact-points", endpoint="cp_create", methods=["POST"]),
            R("/api/v1/provisioning/contact-points/<uid>", endpoint="cp_put", methods=["PUT"]),
            R("/api/v1/provisioning/contact-points/<uid>", endpoint="cp_delete", methods=["DELETE"]),
            R("/api/v1/provisioning/policies", endpoint="policy_get", methods=["GET"]),
            R("/api/v1/provisioning/policies", endpoint="policy_put", methods=["PUT"]),
            R("/api/v1/provisioning/policies", endpoint="policy_reset", methods=["DELETE"]),
            R("/api/org/users", endpoint="org_users", methods=["GET"]),
            R("/api/teams/search", endpoint="teams_search", methods=["GET"]),
            R("/api/alertmanager/grafana/config/api/v1/alerts", endpoint="am_config", methods=["GET"]),
            R("/api/datasources/proxy/uid/<uid>", endpoint="ds_proxy", defaults={"rest": ""}),
            R("/api/datasources/proxy/uid/<uid>/<path:rest>", endpoint="ds_proxy"),
            R("/api/datasources/proxy/<ds_id>", endpoint="ds_proxy", defaults={"rest": ""}),
            R("/api/datasources/proxy/<ds_id>/<path:rest>", endpoint="ds_proxy"),
            R("/api/datasources/uid/<uid>/resources", endpoint="ds_resource", defaults={"rest": ""}),
            R("/api/datasources/uid/<uid>/resources/<path:rest>", endpoint="ds_resource"),
            R("/api/plugins/<plugin_id>/resources", endpoint="plugin_resource", defaults={"rest": ""}),
            R("/api/plugins/<plugin_id>/resources/<path:rest>", endpoint="plugin_resource"),
        ], strict_slashes=False, merge_slashes=False)
        self.plugin_backends: Dict[str, Any] = {}  # plugin id -> backend emulation (see OnCallAppBackend)
        self.requests = 0

    # -- bootstrap ----------------------------------------------------------
    def _seed(self) -> None:
        st = self.store.state
        changed = False
        if not st["orgs"]:
            org_id = self.store.next_id("org")
            st["orgs"][str(org_id)] = {"id": org_id, "name": "Main Org.", "created": _now()}
            changed = True
        if not any(not u.get("is_service_account") for u in st["users"].values()) and \
                not self.settings.get_bool("security", "disable_initial_admin_creation"):
            login = self.settings.get("security", "admin_user", "admin")
            uid = self.store.next_id("user")
            salt = secrets.token_hex(5)
            st["users"][str(uid)] = {
                "id": uid, "uid": short_uid(), "login": login, "email": self.settings.get("security", "admin_email"),
                "name": "", "salt": salt,
                "password": password_hash(self.settings.get("security", "admin_password", "admin"), salt),
                "is_admin": True, "orgs": {"1": "Admin"}, "is_service_account": False, "created": _now()}
            self.log.info("Created default admin", logger="sqlstore", user=login)
            changed = True
        if changed:
            self.store.save()

    def break_database(self, broken: bool = True) -> None:
        """Test hook: make every write fail (and /api/health report the database failing)."""
        self.store.broken = broken

    def _collect(self, m: fw.Metrics) -> None:
        st = self.store.state
        m.gauge("grafana_stat_totals_dashboard", "total amount of dashboards", len(st["dashboards"]))
        m.gauge("grafana_stat_totals_datasource", "total number of defined datasources", len(st["datasources"]))
        m.gauge("grafana_stat_total_orgs", "total amount of orgs", len(st["orgs"]))
        m.counter("grafana_http_request_total_standin", "HTTP requests served by the stand-in", self.requests)

    # -- WSGI ---------------------------------------------------------------
    def __call__(self, environ, start_response):
        from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
        from werkzeug.wrappers import Request, Response
        req = Request(environ)
        self.requests += 1
        adapter = self.url_map.bind_to_environ(environ)
        try:
            endpoint, args = adapter.match()
        except (NotFound, MethodNotAllowed):
            if req.path.startswith("/api/"):
                resp = self._json(404, {"message": "Not found"})
            else:
                resp = Response("404 page not found\n", status=404, mimetype="text/plain")
            return resp(environ, start_response)
        except HTTPException as exc:
            return exc(environ, start_response)
        try:
            if endpoint in ("health", "metrics"):
                result = getattr(self, "h_" + endpoint)(req)
            elif endpoint in ("plugin_resource", "ds_proxy", "ds_resource"):
                # these call other servers (or Grafana's own API): never under the store lock
                result = getattr(self, "h_" + endpoint)(req, self.authenticate(req), **args)
            else:
                ident = self.authenticate(req)
                with self.store.lock:
                    result = getattr(self, "h_" + endpoint)(req, ident, **args)
            if isinstance(result, Response):
                resp = result
            else:
                status, body = result
                resp = self._json(status, body)
        except ApiError as exc:
            resp = self._json(exc.status, exc.body)
        return resp(environ, start_response)

    @staticmethod
    def _json(status: int, body: Any):
        from werkzeug.wrappers import Response
        return Response(json.dumps(body), status=status, content_type="application/json")

    @staticmethod
    def _body(req) -> Dict[str, Any]:
        try:
            data = json.loads(req.get_data(as_text=True) or "null")
        except ValueError:
            raise err(400, "bad request data") from None
        if not isinstance(data, dict):
            raise err(400, "bad request data")
        return data

    def _commit(self, failure: Optional[str], undo: Optional[Callable[[], Any]] = None) -> None:
        """Save the store. When the database fails, ``undo()`` puts the in-memory state back as it was and the
        answer is a 500 with *failure* (None: the database's own error text)."""
        try:
            self.store.save()
        except StoreError as exc:
            if undo is not None:
                undo()
            raise err(500, str(exc) if failure is None else failure) from None

    # -- authentication -----------------------------------------------------
    def authenticate(self, req) -> Identity:
        st = self.store.state
        header_org = req.headers.get("X-Grafana-Org-Id", "").strip()
        try:
            org_hdr = int(header_org) if header_org else 0
        except ValueError:
            org_hdr = 0
        auth = req.headers.get("Authorization", "")
        token = None
        if auth[:7].lower() == "bearer ":
            token = auth[7:].strip()
        elif auth[:6].lower() == "basic " and self.settings.get_bool("auth.basic", "enabled", True):
            try:
                login, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise errutil(400, "basic-auth.invalid-header", "Invalid Basic Auth Header") from None
            if login == "api_key":
                token = password
            else:
                user = next((u for u in st["users"].values()
                             if not u.get("is_service_account") and (u["login"] == login or u.get("email") == login)),
                            None)
                if user is None or not password or not hmac.compare_digest(
                        user["password"], password_hash(password, user["salt"])):
                    raise errutil(401, "password-auth.failed", "Invalid username or password")
                org_id = org_hdr or int(user.get("default_org", 1))
                role = user["orgs"].get(str(org_id), "None")
                return Identity("user", org_id, role, user, bool(user.get("is_admin")))
        if token is not None:
            digest = hashlib.sha256(token.encode()).hexdigest()
            tok = next((t for t in st["tokens"].values() if t["hash"] == digest), None)
            if tok is None:
                raise errutil(401, "api-key.invalid", "Invalid API key")
            if tok.get("expires") and tok["expires"] < time.time():
                raise errutil(401, "api-key.expired", "Expired API key")
            sa = st["users"].get(str(tok["sa_id"]))
            if sa is None:
                raise errutil(401, "api-key.invalid", "Invalid API key")
            if sa.get("disabled"):
                raise errutil(401, "api-key.revoked", "Revoked API key")
            if org_hdr and org_hdr != sa["org_id"]:
                raise errutil(401, "api-key.organization-mismatch",
                              "API key does not belong to the requested organization")
            tok["last_used"] = _now()
            return Identity("service-account", sa["org_id"], sa["role"], sa)
        if self.settings.get_bool("auth.anonymous", "enabled"):
            name = self.settings.get("auth.anonymous", "org_name", "Main Org.")
            org = next((o for o in st["orgs"].values() if o["name"] == name), None)
            if org is not None:
                return Identity("anonymous", org["id"], self.settings.get("auth.anonymous", "org_role", "Viewer"))
        raise err(401, "Unauthorized")

    # -- health, metrics, orgs ------------------------------------------------
    def h_health(self, req):
        ok = self.store.ping()
        body = {"database": "ok" if ok else "failing", "version": self.version, "commit": self.commit}
        return (200 if ok else 503), body

    def h_metrics(self, req):
        from werkzeug.wrappers import Response
        if not self.settings.get_bool("metrics", "enabled", True):
            return self._json(404, {"message": "Not found"})
        user = self.settings.get("metrics", "basic_auth_username")
        password = self.settings.get("metrics", "basic_auth_password")
        if user and password:
            auth = req.authorization
            if auth is None or auth.username != user or auth.password != password:
                return Response("Unauthorized\n", status=401, headers={"WWW-Authenticate": 'Basic realm="Grafana"'})
        return self.metrics.wsgi_response()

    def _org(self, org_id: int) -> Dict[str, Any]:
        org = self.store.state["orgs"].get(str(org_id))
        if org is None:
            raise err(404, "Organization not found")
        return org

    def h_org_current(self, req, ident):
        ident.require("Viewer", "orgs:read")
        org = self._org(ident.org_id)
        return 200, {"id": org["id"], "name": org["name"],
                     "address": {"address1": "", "address2": "", "city": "", "zipCode": "", "state": "",
                                 "country": ""}}

    def h_orgs_get(self, req, ident, org_id):
        if not ident.server_admin:
            raise denied("orgs:read")
        org = self._org(org_id)
        return 200, {"id": org["id"], "name": org["name"], "address": {}}

    def h_orgs_create(self, req, ident):
        if ident.kind != "user" or not (ident.server_admin or self.settings.get_bool("users", "allow_org_create")):
            raise denied("orgs:create")
        body = self._body(req)
        name = str(body.get("name") or "")
        st = self.store.state
        if any(o["name"].lower() == name.lower() for o in st["orgs"].values()):
            raise err(409, "Organization name taken")
        org_id = self.store.next_id("org")
        st["orgs"][str(org_id)] = {"id": org_id, "name": name, "created": _now()}
        ident.user.setdefault("orgs", {})[str(org_id)] = "Admin"
        self._commit("Failed to create organization")
        return 200, {"orgId": org_id, "message": "Organization created"}

    def h_user_current(self, req, ident):
        if ident.kind == "anonymous":
            raise err(404, "User not found")
        u = ident.user
        return 200, {"id": u["id"], "uid": u.get("uid", ""), "login": u["login"], "email": u.get("email", ""),
                     "name": u.get("name", ""), "orgId": ident.org_id, "isGrafanaAdmin": ident.server_admin}

    # -- data sources ---------------------------------------------------------
    def _datasources(self, org_id: int) -> List[Dict[str, Any]]:
        return [d for d in self.store.state["datasources"].values() if d["orgId"] == org_id]

    def _ds_find(self, org_id: int, uid: str = None, name: str = None, ds_id: int = None) -> Dict[str, Any]:
        for d in self._datasources(org_id):
            if (uid is not None and d["uid"] == uid) or (name is not None and d["name"] == name) or \
                    (ds_id is not None and d["id"] == ds_id):
                return d
        raise err(404, "Data source not found")

    def _plugin_ids(self) -> Dict[str, Dict[str, Any]]:
        plugins = {pid: {"id": pid, "type": "datasource", "name": name, "info": {"version": ""}, "core": True}
                   for pid, name in CORE_DATASOURCES.items()}
        root = self.settings.plugins
        if os.path.isdir(root):
            for entry in sorted(os.listdir(root)):
                meta = os.path.join(root, entry, "plugin.json")
                if not os.path.isfile(meta):
                    meta = os.path.join(root, entry, "dist", "plugin.json")
                try:
                    with open(meta, encoding="utf-8") as fh:
                        pj = json.load(fh)
                except (OSError, ValueError):
                    continue
                if isinstance(pj, dict) and pj.get("id"):
                    pj["core"] = False
                    plugins[pj["id"]] = pj
        return plugins

    def _ds_dto(self, d: Dict[str, Any]) -> Dict[str, Any]:
        logo = ("public/plugins/%s/img/logo.svg" % d["type"]) if d["type"] in self._plugin_ids() \
            else "public/img/icn-datasource.svg"
        dto = {"id": d["id"], "uid": d["uid"], "orgId": d["orgId"], "name": d["name"], "type": d["type"],
               "typeLogoUrl": logo, "access": d["access"], "url": d["url"], "user": d["user"],
               "database": d["database"], "basicAuth": d["basicAuth"], "basicAuthUser": d["basicAuthUser"],
               "withCredentials": d["withCredentials"], "isDefault": d["isDefault"],
               "secureJsonFields": {k: True for k, v in d["secure"].items() if v},
               "version": d["version"], "readOnly": d["readOnly"]}
        if d.get("jsonData") is not None:
            dto["jsonData"] = d["jsonData"]
        if d.get("apiVersion"):
            dto["apiVersion"] = d["apiVersion"]
        return dto

    @staticmethod
    def _validate_url(url: str) -> None:
        from urllib.parse import urlsplit
        try:
            candidate = url if "://" in url else "http://" + url
            parts = urlsplit(candidate)
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise err(400, "Validation error, invalid URL") from None

    def h_ds_list(self, req, ident):
        ident.require("Editor", "datasources:read")
        plugins = self._plugin_ids()
        out = []
        for d in self._datasources(ident.org_id):
            item = {"id": d["id"], "uid": d["uid"], "orgId": d["orgId"], "name": d["name"], "type": d["type"],
                    "typeName": plugins.get(d["type"], {}).get("name", d["type"]),
                    "typeLogoUrl": self._ds_dto(d)["typeLogoUrl"], "access": d["access"], "url": d["url"],
                    "user": d["user"], "database": d["database"], "basicAuth": d["basicAuth"],
                    "isDefault": d["isDefault"], "readOnly": d["readOnly"]}
            if d.get("jsonData") is not None:
                item["jsonData"] = d["jsonData"]
            out.append(item)
        out.sort(key=lambda i: i["name"].lower())
        return 200, out

    def h_ds_get_uid(self, req, ident, uid):
        ident.require("Editor", "datasources:read")
        return 200, self._ds_dto(self._ds_find(ident.org_id, uid=uid))

    def h_ds_get_name(self, req, ident, name):
        ident.require("Editor", "datasources:read")
        return 200, self._ds_dto(self._ds_find(ident.org_id, name=name))

    def h_ds_get_id(self, req, ident, ds_id):
        ident.require("Editor", "datasources:read")
        return 200, self._ds_dto(self._ds_find(ident.org_id, ds_id=ds_id))

    def h_ds_id_by_name(self, req, ident, name):
        ident.require("Editor", "datasources:read")
        return 200, {"id": self._ds_find(ident.org_id, name=name)["id"]}

    @staticmethod
    def _str(body: Dict[str, Any], key: str) -> str:
        value = body.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise err(400, "bad request data")
        return value

    @staticmethod
    def _bool(body: Dict[str, Any], key: str) -> bool:
        value = body.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise err(400, "bad request data")
        return value

    def _ds_command(self, body: Dict[str, Any]) -> Dict[str, Any]:
        cmd = {k: self._str(body, k) for k in ("name", "type", "access", "url", "user", "database",
                                             "basicAuthUser", "uid", "apiVersion")}
        cmd.update({k: self._bool(body, k) for k in ("basicAuth", "withCredentials", "isDefault")})
        json_data = body.get("jsonData")
        if json_data is not None and not isinstance(json_data, dict):
            raise err(400, "bad request data")
        cmd["jsonData"] = json_data
        secure = body.get("secureJsonData") or {}
        if not isinstance(secure, dict) or not all(isinstance(v, str) for v in secure.values()):
            raise err(400, "bad request data")
        cmd["secure"] = dict(secure)
        version = body.get("version", 0)
        if version is None:
            version = 0
        if not isinstance(version, int) or isinstance(version, bool):
            raise err(400, "bad request data")
        cmd["version"] = version
        if len(cmd["name"]) > 190:
            raise ApiError(400, {"message": "Invalid datasource name.", "messageId": "datasource.nameInvalid",
                                 "statusCode": 400, "traceID": ""})
        if len(cmd["url"]) > 255:
            raise ApiError(400, {"message": "Invalid datasource url.", "messageId": "datasource.urlInvalid",
                                 "statusCode": 400, "traceID": ""})
        if cmd["uid"] and (len(cmd["uid"]) > 40 or not _UID_RE.match(cmd["uid"])):
            self.log.warn("Invalid datasource uid. A valid uid is a combination of a-z, A-Z, 0-9 (alphanumeric), "
                          "- (dash) and _ (underscore) characters, maximum length 40. Invalid characters will be "
                          "replaced by dashes.", logger="datasources", uid=cmd["uid"])
        return cmd

    def _clear_default(self, org_id: int, keep_id: int) -> None:
        for d in self._datasources(org_id):
            if d["id"] != keep_id:
                d["isDefault"] = False

    def h_ds_create(self, req, ident):
        ident.require("Admin", "datasources:create")
        cmd = self._ds_command(self._body(req))
        if cmd["url"]:
            self._validate_url(cmd["url"])
        existing = self._datasources(ident.org_id)
        if not cmd["name"]:
            names = {d["name"].lower() for d in existing}
            name, n = cmd["type"], 0
            while name.lower() in names:
                n += 1
                name = "%s-%d" % (cmd["type"], n)
            cmd["name"] = name
        if any(d["name"] == cmd["name"] for d in existing):
            raise err(409, "data source with the same name already exists")
        if cmd["uid"] and any(d["uid"] == cmd["uid"] for d in existing):
            raise err(409, "data source with the same uid already exists")
        ds_id = self.store.next_id("datasource")
        d = {"id": ds_id, "uid": cmd["uid"] or short_uid(), "orgId": ident.org_id, "name": cmd["name"],
             "type": cmd["type"], "access": cmd["access"], "url": cmd["url"], "user": cmd["user"],
             "database": cmd["database"], "basicAuth": cmd["basicAuth"], "basicAuthUser": cmd["basicAuthUser"],
             "withCredentials": cmd["withCredentials"], "isDefault": cmd["isDefault"] or not existing,
             "jsonData": cmd["jsonData"] if cmd["jsonData"] is not None else {}, "secure": cmd["secure"],
             "version": 1, "readOnly": False, "apiVersion": cmd["apiVersion"], "created": _now(),
             "updated": _now()}
        self.store.state["datasources"][str(ds_id)] = d
        if d["isDefault"]:
            self._clear_default(ident.org_id, ds_id)
        self._commit("Failed to add datasource", lambda: self.store.state["datasources"].pop(str(ds_id)))
        self.log.info("Data source added", logger="datasources", name=d["name"], uid=d["uid"])
        return 200, {"message": "Datasource added", "id": ds_id, "name": d["name"], "datasource": self._ds_dto(d)}

    def h_ds_put_uid(self, req, ident, uid):
        ident.require("Admin", "datasources:write")
        cmd = self._ds_command(self._body(req))
        self._validate_url(cmd["url"])
        d = self._ds_find(ident.org_id, uid=uid)
        if d["readOnly"]:
            raise err(403, "Cannot update read-only data source")
        if cmd["name"] and cmd["name"] != d["name"] and any(
                o["name"] == cmd["name"] for o in self._datasources(ident.org_id)):
            raise err(409, "Failed to update datasource: data source with the same name already exists")
        if cmd["version"] != 0 and cmd["version"] < d["version"]:
            raise err(409, "Datasource has already been updated by someone else. Please reload and try again")
        before = json.loads(json.dumps(d))
        # xorm Update: non-empty strings only; MustCols/UseBool columns always
        for key in ("name", "type", "access", "url", "basicAuthUser", "uid", "apiVersion"):
            if cmd[key]:
                d[key] = cmd[key]
        for key in ("user", "database", "basicAuth", "withCredentials", "isDefault"):
            d[key] = cmd[key]
        if not cmd["apiVersion"]:
            d["apiVersion"] = ""
        d["jsonData"] = cmd["jsonData"] if cmd["jsonData"] is not None else {}
        secure = dict(d["secure"])
        secure.update(cmd["secure"])
        d["secure"] = secure
        d["version"] = cmd["version"] + 1
        d["updated"] = _now()
        if d["isDefault"]:
            self._clear_default(ident.org_id, d["id"])
        self._commit("Failed to update datasource", lambda: _restore(d, before))
        return 200, {"message": "Datasource updated", "id": d["id"], "name": cmd["name"],
                     "datasource": self._ds_dto(d)}

    def _ds_delete(self, ident, d: Dict[str, Any]) -> None:
        ident.require("Admin", "datasources:delete")
        if d["readOnly"]:
            raise err(403, "Cannot delete read-only data source")
        del self.store.state["datasources"][str(d["id"])]
        self._commit("Failed to delete datasource", lambda: _put_back(self.store.state["datasources"], str(d["id"]), d))

    def h_ds_delete_uid(self, req, ident, uid):
        ident.require("Admin", "datasources:delete")
        d = self._ds_find(ident.org_id, uid=uid)
        self._ds_delete(ident, d)
        return 200, {"message": "Data source deleted", "id": d["id"]}

    def h_ds_delete_name(self, req, ident, name):
        ident.require("Admin", "datasources:delete")
        d = self._ds_find(ident.org_id, name=name)
        self._ds_delete(ident, d)
        return 200, {"message": "Data source deleted", "id": d["id"]}

    def h_ds_delete_id(self, req, ident, ds_id):
        ident.require("Admin", "datasources:delete")
        d = self._ds_find(ident.org_id, ds_id=ds_id)
        self._ds_delete(ident, d)
        return 200, {"message": "Data source deleted"}

    # -- folders --------------------------------------------------------------
    def _folders(self, org_id: int) -> List[Dict[str, Any]]:
        return [f for f in self.store.state["folders"].values() if f["orgId"] == org_id]

    def _folder(self, org_id: int, uid: str) -> Dict[str, Any]:
        f = self.store.state["folders"].get("%d/%s" % (org_id, uid))
        if f is None:
            raise ApiError(404, {"status": "not-found", "message": "folder not found"})
        return f

    def _folder_parents(self, f: Dict[str, Any]) -> List[Dict[str, Any]]:
        chain = []
        parent = f.get("parentUid") or ""
        while parent:
            p = self.store.state["folders"].get("%d/%s" % (f["orgId"], parent))
            if p is None:
                break
            chain.insert(0, p)
            parent = p.get("parentUid") or ""
        return chain

    def _folder_dto(self, f: Dict[str, Any], ident: Identity, with_parents: bool = True) -> Dict[str, Any]:
        can = ROLE_RANK.get(ident.role, 0) >= ROLE_RANK["Editor"]
        dto = {"id": f["id"], "uid": f["uid"], "orgId": f["orgId"], "title": f["title"],
               "url": "/dashboards/f/%s/%s" % (f["uid"], slugify(f["title"])), "hasAcl": False,
               "canSave": can, "canEdit": can, "canAdmin": ROLE_RANK.get(ident.role, 0) >= ROLE_RANK["Admin"],
               "canDelete": can, "createdBy": f["createdBy"], "created": f["created"], "updatedBy": f["updatedBy"],
               "updated": f["updated"], "version": f["version"]}
        if f.get("description"):
            dto["description"] = f["description"]
        if f.get("parentUid"):
            dto["parentUid"] = f["parentUid"]
            if with_parents:
                dto["parents"] = [self._folder_dto(p, ident, with_parents=False) for p in self._folder_parents(f)]
        return dto

    @staticmethod
    def _check_uid(uid: str) -> None:
        if not _UID_RE.match(uid):
            raise err(400, "uid contains illegal characters")
        if len(uid) > 40:
            raise err(400, "uid too long, max 40 characters")

    def h_folder_list(self, req, ident):
        ident.require("Viewer", "folders:read")
        parent = req.args.get("parentUid", "")
        limit = int(req.args.get("limit", "1000") or 1000)
        page = max(int(req.args.get("page", "1") or 1), 1)
        hits = sorted((f for f in self._folders(ident.org_id) if (f.get("parentUid") or "") == parent),
                      key=lambda f: f["title"].lower())
        out = []
        for f in hits[(page - 1) * limit: page * limit]:
            item = {"id": f["id"], "uid": f["uid"], "title": f["title"]}
            if f.get("parentUid"):
                item["parentUid"] = f["parentUid"]
            out.append(item)
        return 200, out

    def h_folder_get(self, req, ident, uid):
        ident.require("Viewer", "folders:read")
        return 200, self._folder_dto(self._folder(ident.org_id, uid), ident)

    def h_folder_create(self, req, ident):
        ident.require("Editor", "folders:create")
        body = self._body(req)
        title = self._str(body, "title")
        uid = self._str(body, "uid")
        parent = self._str(body, "parentUid")
        if not title.strip():
            raise err(400, "folder title cannot be empty")
        if uid:
            self._check_uid(uid)
        else:
            uid = short_uid()
        if parent:
            p = self._folder(ident.org_id, parent)
            if len(self._folder_parents(p)) + 2 > MAX_FOLDER_DEPTH:
                raise ApiError(400, {"messageId": "folder.maximum-depth-reached",
                                     "message": "Maximum nested folder depth reached"})
        key = "%d/%s" % (ident.org_id, uid)
        if key in self.store.state["folders"]:
            raise ApiError(412, {"status": "version-mismatch", "message": "the folder has been changed by someone else"})
        f = {"id": self.store.next_id("dashboard"), "uid": uid, "orgId": ident.org_id, "title": title,
             "description": self._str(body, "description"), "parentUid": parent, "version": 1,
             "created": _now(), "updated": _now(), "createdBy": ident.login, "updatedBy": ident.login}
        self.store.state["folders"][key] = f
        self._commit("Folder API error", lambda: self.store.state["folders"].pop(key))
        return 200, self._folder_dto(f, ident)

    def h_folder_put(self, req, ident, uid):
        ident.require("Editor", "folders:write")
        body = self._body(req)
        f = self._folder(ident.org_id, uid)
        version = body.get("version", 0) or 0
        if not body.get("overwrite") and version != f["version"]:
            raise ApiError(412, {"status": "version-mismatch", "message": "the folder has been changed by someone else"})
        before = dict(f)
        if body.get("title") is not None:
            if not str(body["title"]).strip():
                raise err(400, "folder title cannot be empty")
            f["title"] = str(body["title"])
        if body.get("description") is not None:
            f["description"] = str(body["description"])
        f["version"] += 1
        f["updated"] = _now()
        f["updatedBy"] = ident.login
        self._commit("Folder API error", lambda: _restore(f, before))
        return 200, self._folder_dto(f, ident)

    def _descendants(self, f: Dict[str, Any]) -> List[Dict[str, Any]]:
        out = []
        for child in self._folders(f["orgId"]):
            if child.get("parentUid") == f["uid"]:
                out.append(child)
                out.extend(self._descendants(child))
        return out

    def h_folder_move(self, req, ident, uid):
        ident.require("Editor", "folders:create")
        body = self._body(req)
        f = self._folder(ident.org_id, uid)
        parent = self._str(body, "parentUid")
        if parent:
            p = self._folder(ident.org_id, parent)
            if parent == uid or p in self._descendants(f):
                raise err(400, "Folder cannot be moved into itself or one of its subfolders")
            if len(self._folder_parents(p)) + 2 > MAX_FOLDER_DEPTH:
                raise ApiError(400, {"messageId": "folder.maximum-depth-reached",
                                     "message": "Maximum nested folder depth reached"})
        before = dict(f)
        f["parentUid"] = parent
        f["version"] += 1
        f["updated"] = _now()
        self._commit("Folder API error", lambda: _restore(f, before))
        return 200, self._folder_dto(f, ident)

    def h_folder_delete(self, req, ident, uid):
        ident.require("Editor", "folders:delete")
        f = self._folder(ident.org_id, uid)
        st = self.store.state
        doomed = [f] + self._descendants(f)
        uids = {x["uid"] for x in doomed}
        saved = {"folders": dict(st["folders"]), "dashboards": dict(st["dashboards"])}
        for x in doomed:
            del st["folders"]["%d/%s" % (ident.org_id, x["uid"])]
        for key, dash in list(st["dashboards"].items()):
            if dash["orgId"] == ident.org_id and dash.get("folderUid") in uids:
                del st["dashboards"][key]
        self._commit("Folder API error", lambda: st.update(saved))
        return 200, {"message": "Folder deleted", "id": f["id"]}

    # -- dashboards -------------------------------------------------------------
    def _dash(self, org_id: int, uid: str) -> Optional[Dict[str, Any]]:
        return self.store.state["dashboards"].get("%d/%s" % (org_id, uid))

    def h_dash_save(self, req, ident):
        ident.require("Editor", "dashboards:write")
        body = self._body(req)
        model = body.get("dashboard")
        if not isinstance(model, dict):
            raise err(400, "bad request data")
        model = json.loads(json.dumps(model))
        overwrite = bool(body.get("overwrite"))
        message = self._str(body, "message")
        title = model.get("title")
        if not isinstance(title, str) or not title.strip():
            raise ApiError(400, {"status": "empty-name", "message": "Dashboard title cannot be empty"})
        if len(title) > 5000:
            raise ApiError(400, {"status": "title-too-long",
                                 "message": "Dashboard title cannot contain more than 5 000 characters"})
        if len(message) > 500:
            raise err(400, "message too long, max 500 characters")
        uid = model.get("uid") or ""
        if not isinstance(uid, str):
            raise err(400, "bad request data")
        if uid:
            self._check_uid(uid)
        folder_uid = self._str(body, "folderUid")
        if folder_uid:
            try:
                self._folder(ident.org_id, folder_uid)
            except ApiError:
                raise err(400, "folder not found") from None
        dash_id = model.get("id") or 0
        version = model.get("version") or 0
        existing = None
        if dash_id:
            existing = next((d for d in self.store.state["dashboards"].values()
                             if d["orgId"] == ident.org_id and d["id"] == dash_id), None)
            if existing is None:
                raise ApiError(404, {"status": "not-found", "message": "Dashboard not found"})
            if uid and uid != existing["uid"]:
                raise err(400, "A dashboard with the same uid already exists")
            uid = existing["uid"]
        elif uid:
            existing = self._dash(ident.org_id, uid)
        if existing is not None and not overwrite and version != existing["version"]:
            raise ApiError(412, {"status": "version-mismatch",
                                 "message": "The dashboard has been changed by someone else"})
        if not uid:
            uid = short_uid()
        new_version = (existing["version"] if (existing is not None and overwrite) else version) + 1
        if existing is None:
            new_version = 1
            dash_id = self.store.next_id("dashboard")
        else:
            dash_id = existing["id"]
        model.update({"id": dash_id, "uid": uid, "version": new_version})
        key = "%d/%s" % (ident.org_id, uid)
        prev = self.store.state["dashboards"].get(key)
        d = {"id": dash_id, "uid": uid, "orgId": ident.org_id, "title": title, "model": model,
             "folderUid": folder_uid, "version": new_version, "message": message,
             "created": existing["created"] if existing else _now(), "updated": _now(),
             "createdBy": existing["createdBy"] if existing else ident.login, "updatedBy": ident.login}
        self.store.state["dashboards"][key] = d
        self._commit("Failed to save dashboard", lambda: _put_back(self.store.state["dashboards"], key, prev))
        slug = slugify(title)
        out = {"id": dash_id, "uid": uid, "url": "/d/%s/%s" % (uid, slug), "status": "success",
               "version": new_version, "slug": slug}
        if folder_uid:
            out["folderUid"] = folder_uid
        return 200, out

    def h_dash_get(self, req, ident, uid):
        ident.require("Viewer", "dashboards:read")
        d = self._dash(ident.org_id, uid)
        if d is None:
            raise err(404, "Dashboard not found")
        can = ROLE_RANK.get(ident.role, 0) >= ROLE_RANK["Editor"]
        folder = self.store.state["folders"].get("%d/%s" % (ident.org_id, d["folderUid"])) if d["folderUid"] else None
        slug = slugify(d["title"])
        meta = {"type": "db", "canSave": can, "canEdit": can,
                "canAdmin": ROLE_RANK.get(ident.role, 0) >= ROLE_RANK["Admin"], "canStar": ident.kind != "anonymous",
                "canDelete": can, "slug": slug, "url": "/d/%s/%s" % (uid, slug), "expires": "0001-01-01T00:00:00Z",
                "created": d["created"], "updated": d["updated"], "updatedBy": d["updatedBy"],
                "createdBy": d["createdBy"], "version": d["version"], "hasAcl": False, "isFolder": False,
                "folderId": folder["id"] if folder else 0, "folderUid": d["folderUid"],
                "folderTitle": folder["title"] if folder else "Dashboards",
                "folderUrl": ("/dashboards/f/%s/%s" % (folder["uid"], slugify(folder["title"]))) if folder else "",
                "provisioned": False, "provisionedExternalId": ""}
        return 200, {"dashboard": d["model"], "meta": meta}

    def h_dash_delete(self, req, ident, uid):
        ident.require("Editor", "dashboards:delete")
        d = self._dash(ident.org_id, uid)
        if d is None:
            raise err(404, "Dashboard not found")
        key = "%d/%s" % (ident.org_id, uid)
        del self.store.state["dashboards"][key]
        self._commit("Failed to delete dashboard", lambda: _put_back(self.store.state["dashboards"], key, d))
        return 200, {"title": d["title"], "message": "Dashboard %s deleted" % d["title"], "id": d["id"]}

    def h_search(self, req, ident):
        ident.require("Viewer", "dashboards:read")
        query = req.args.get("query", "").lower()
        kind = req.args.get("type", "")
        folder_uids = [u for u in ",".join(req.args.getlist("folderUIDs")).split(",") if u]
        dash_uids = [u for u in ",".join(req.args.getlist("dashboardUIDs")).split(",") if u]
        tags = req.args.getlist("tag")
        limit = int(req.args.get("limit", "1000") or 1000)
        page = max(int(req.args.get("page", "1") or 1), 1)
        folders, dashes = [], []

        def in_folder(parent: str) -> bool:
            return not folder_uids or (parent or "general") in folder_uids

        if kind in ("", "dash-folder") and not dash_uids and not tags:
            for f in self._folders(ident.org_id):
                if query in f["title"].lower() and in_folder(f.get("parentUid", "")):
                    hit = {"id": f["id"], "uid": f["uid"], "orgId": f["orgId"], "title": f["title"],
                           "uri": "db/" + slugify(f["title"]),
                           "url": "/dashboards/f/%s/%s" % (f["uid"], slugify(f["title"])), "slug": "",
                           "type": "dash-folder", "tags": [], "isStarred": False, "sortMeta": 0, "isDeleted": False}
                    if f.get("parentUid"):
                        parent = self.store.state["folders"].get("%d/%s" % (f["orgId"], f["parentUid"]))
                        hit["folderUid"] = f["parentUid"]
                        hit["folderTitle"] = parent["title"] if parent else ""
                        hit["folderUrl"] = "/dashboards/f/%s/" % f["parentUid"]
                    folders.append(hit)
        if kind in ("", "dash-db"):
            for d in self.store.state["dashboards"].values():
                if d["orgId"] != ident.org_id or query not in d["title"].lower() or not in_folder(d["folderUid"]):
                    continue
                if dash_uids and d["uid"] not in dash_uids:
                    continue
                dtags = d["model"].get("tags") or []
                if tags and not all(t in dtags for t in tags):
                    continue
                hit = {"id": d["id"], "uid": d["uid"], "orgId": d["orgId"], "title": d["title"],
                       "uri": "db/" + slugify(d["title"]), "url": "/d/%s/%s" % (d["uid"], slugify(d["title"])),
                       "slug": "", "type": "dash-db", "tags": dtags, "isStarred": False, "sortMeta": 0,
                       "isDeleted": False}
                if d["folderUid"]:
                    folder = self.store.state["folders"].get("%d/%s" % (d["orgId"], d["folderUid"]))
                    hit.update({"folderId": folder["id"] if folder else 0, "folderUid": d["folderUid"],
                                "folderTitle": folder["title"] if folder else "",
                                "folderUrl": "/dashboards/f/%s/" % d["folderUid"]})
                dashes.append(hit)
        hits = sorted(folders, key=lambda h: h["title"].lower()) + sorted(dashes, key=lambda h: h["title"].lower())
        return 200, hits[(page - 1) * limit: page * limit]

    # -- plugins ----------------------------------------------------------------
    def _plugin_setting(self, org_id: int, plugin_id: str) -> Dict[str, Any]:
        return self.store.state["plugin_settings"].get("%d/%s" % (org_id, plugin_id)) or {}

    def h_plugin_list(self, req, ident):
        ident.require("Viewer", "plugins:read")
        out = []
        for pid, pj in sorted(self._plugin_ids().items()):
            setting = self._plugin_setting(ident.org_id, pid)
            out.append({"name": pj.get("name", pid), "type": pj.get("type", ""), "id": pid,
                        "enabled": bool(setting.get("enabled")) or pj.get("type") != "app",
                        "pinned": bool(setting.get("pinned")), "info": pj.get("info") or {},
                        "latestVersion": "", "hasUpdate": False, "defaultNavUrl": "", "category": "",
                        "state": "", "signature": "internal" if pj.get("core") else "unsigned",
                        "signatureType": "", "signatureOrg": ""})
        return 200, out

    def h_plugin_settings_get(self, req, ident, plugin_id):
        ident.require("Viewer", "plugins:read")
        pj = self._plugin_ids().get(plugin_id)
        if pj is None:
            raise err(404, "Plugin not found, no installed plugin with that id")
        setting = self._plugin_setting(ident.org_id, plugin_id)
        app = pj.get("type") == "app"
        return 200, {
            "name": pj.get("name", plugin_id), "type": pj.get("type", ""), "id": plugin_id,
            "enabled": bool(setting.get("enabled")) if app else True, "pinned": bool(setting.get("pinned")),
            "autoEnabled": bool(pj.get("autoEnabled")), "module": "public/plugins/%s/module.js" % plugin_id,
            "baseUrl": "public/plugins/%s" % plugin_id, "info": pj.get("info") or {},
            "includes": pj.get("includes") or [], "dependencies": pj.get("dependencies") or {},
            "jsonData": setting.get("jsonData"),
            "secureJsonFields": {k: True for k, v in (setting.get("secure") or {}).items() if v},
            "defaultNavUrl": "", "latestVersion": "", "hasUpdate": False, "state": pj.get("state", ""),
            "signature": "internal" if pj.get("core") else "unsigned", "signatureType": "", "signatureOrg": "",
        }

    def h_plugin_settings_post(self, req, ident, plugin_id):
        ident.require("Admin", "plugins:write")
        body = self._body(req)
        pj = self._plugin_ids().get(plugin_id)
        if pj is None:
            raise err(404, "Plugin not installed")
        json_data = body.get("jsonData")
        secure = body.get("secureJsonData") or {}
        if (json_data is not None and not isinstance(json_data, dict)) or not isinstance(secure, dict):
            raise err(400, "bad request data")
        key = "%d/%s" % (ident.org_id, plugin_id)
        st = self.store.state["plugin_settings"]
        prev = st.get(key)
        setting = json.loads(json.dumps(prev or {"secure": {}}))
        setting["enabled"] = self._bool(body, "enabled")
        setting["pinned"] = self._bool(body, "pinned")
        if json_data is not None or prev is None:
            setting["jsonData"] = json_data  # xorm skips a nil map on update: no jsonData keeps the stored one
        setting["secure"].update({k: str(v) for k, v in secure.items()})
        setting["version"] = int(setting.get("version", 0)) + 1
        st[key] = setting
        self._commit("Failed to update plugin setting", lambda: _put_back(st, key, prev))
        return 200, {"message": "Plugin settings updated"}

    # -- org users and teams (what an app plugin backend reads with its service account token) -------------
    def h_org_users(self, req, ident):
        # GET /api/org/users (pkg/api/org_users.go): org.users:read, service accounts left out
        ident.require("Admin", "org.users:read")
        out = []
        for u in sorted(self.store.state["users"].values(), key=lambda u: u["id"]):
            role = (u.get("orgs") or {}).get(str(ident.org_id))
            if u.get("is_service_account") or role is None:
                continue
            email = u.get("email") or ""
            out.append({"orgId": ident.org_id, "userId": u["id"], "uid": u.get("uid", ""), "email": email,
                        "name": u.get("name", ""),
                        "avatarUrl": "/avatar/%s" % hashlib.md5(email.lower().encode()).hexdigest(),  # noqa: S324
                        "login": u["login"], "role": role, "lastSeenAt": u.get("created", _now()),
                        "lastSeenAtAge": "10 years", "authLabels": None, "isDisabled": bool(u.get("disabled")),
                        "isExternallySynced": False, "isProvisioned": False})
        return 200, out

    def h_teams_search(self, req, ident):
        # GET /api/teams/search: the stand-in has no teams API, so every organisation has none
        ident.require("Admin", "teams:read")
        try:
            perpage = int(req.args.get("perpage", "1000") or 1000)
            page = max(int(req.args.get("page", "1") or 1), 1)
        except ValueError:
            perpage, page = 1000, 1
        return 200, {"totalCount": 0, "teams": [], "page": page, "perPage": perpage}

    # -- Grafana's own Alertmanager configuration (what OnCall reads before a grafana_alerting integration) --
    def h_am_config(self, req, ident):
        # GET /api/alertmanager/grafana/config/api/v1/alerts (ngalert RouteGetAlertingConfig):
        # alert.notifications:read (Viewer and up); secure settings are left out and named in secureFields.
        ident.require("Viewer", "alert.notifications:read")
        al = self._alerting(ident.org_id)
        receivers: List[Dict[str, Any]] = []
        by_name: Dict[str, Dict[str, Any]] = {}
        for cp in al["contact_points"]:
            settings = json.loads(json.dumps(cp["settings"]))
            secure = {}
            for path in SECURE_CONTACT_POINT_FIELDS.get(cp["type"], ()):
                if _path_get(settings, path):
                    secure[path] = True
                    _path_del(settings, path)
            recv = by_name.get(cp["name"])
            if recv is None:
                recv = by_name[cp["name"]] = {"name": cp["name"], "grafana_managed_receiver_configs": []}
                receivers.append(recv)
            recv["grafana_managed_receiver_configs"].append({
                "uid": cp["uid"], "name": cp["name"], "type": cp["type"],
                "disableResolveMessage": bool(cp.get("disableResolveMessage")), "settings": settings,
                "secureFields": secure})
        route = json.loads(json.dumps(al["policy"]))
        if al.get("policy_provenance"):
            route["provenance"] = al["policy_provenance"]
        return 200, {"template_files": {}, "template_file_provenances": {},
                     "alertmanager_config": {"route": route, "templates": None, "receivers": receivers}}

    # -- data source proxy (pkg/services/datasourceproxy, pkg/api/pluginproxy/ds_proxy.go) --------------------
    def _ds_for_request(self, ident, uid: Optional[str], ds_id: Optional[str]) -> Dict[str, Any]:
        """A copy of the data source addressed by uid or numeric id, with Grafana's errors."""
        ident.require("Viewer", "datasources:query")
        if uid is None:
            try:
                number = int(ds_id)
            except (TypeError, ValueError):
                raise err(400, "id is invalid") from None
            lookup = {"ds_id": number}
        else:
            if not uid or len(uid) > 40 or not _UID_RE.match(uid):
                raise err(400, "UID is invalid")
            lookup = {"uid": uid}
        with self.store.lock:
            try:
                d = self._ds_find(ident.org_id, **lookup)
            except ApiError:
                raise err(404, "Unable to find datasource") from None
            return json.loads(json.dumps(d))

    @staticmethod
    def ds_outgoing_headers(d: Dict[str, Any]) -> Dict[str, str]:
        """What Grafana's data source HTTP client adds: basic auth, then jsonData.httpHeaderNameN headers."""
        headers: Dict[str, str] = {}
        if d.get("basicAuth"):
            pair = "%s:%s" % (d.get("basicAuthUser") or "", (d.get("secure") or {}).get("basicAuthPassword", ""))
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        json_data = d.get("jsonData") or {}
        for key in sorted(json_data):
            m = re.match(r"^httpHeaderName(\d+)$", key)
            if m and json_data[key]:
                headers[str(json_data[key])] = (d.get("secure") or {}).get("httpHeaderValue" + m.group(1), "")
        return headers

    def h_ds_proxy(self, req, ident, rest, uid=None, ds_id=None):
        from werkzeug.wrappers import Response
        d = self._ds_for_request(ident, uid, ds_id)
        proxy_path = rest + ("/" if req.path.endswith("/") and rest and not rest.endswith("/") else "")
        refusal = proxy_refusal(d["type"], req.method, proxy_path)
        if refusal:
            raise err(403, refusal)
        if not d.get("url"):
            raise err(400, 'Invalid data source URL: ""')
        target = d["url"].rstrip("/") + "/" + proxy_path.lstrip("/") if proxy_path else d["url"]
        query = req.query_string.decode("latin-1")
        if query:
            target += "?" + query
        headers = {k: v for k, v in req.headers.items() if k.lower() not in PROXY_DROPPED_HEADERS}
        headers.update(self.ds_outgoing_headers(d))
        body = req.get_data() if req.method not in ("GET", "HEAD") else None
        try:
            status, _text, resp_headers, data = go_http(req.method, target, headers, body,
                                                        timeout=float(self.settings.get("dataproxy", "timeout", "30")
                                                                      or 30))
        except GoError as exc:
            self.log.error("Proxy request failed", logger="data-proxy-log", err=str(exc))
            return Response(b"", status=504 if "Timeout" in str(exc) else 502)
        out = Response(data, status=status)
        out.headers.clear()
        for name, values in resp_headers.items():
            if name.lower() in PROXY_DROPPED_HEADERS or name.lower() in ("set-cookie", "content-length"):
                continue
            for value in values:
                out.headers.add(name, value)
        return out

    # -- data source resources (pkg/api/plugin_resource.go, the plugin's CallResource) -----------------------
    def h_ds_resource(self, req, ident, uid, rest):
        from werkzeug.wrappers import Response
        d = self._ds_for_request(ident, uid, None)
        if d["type"] != PYROSCOPE_DATASOURCE:
            # only the Pyroscope backend is emulated; other types have no resources here
            raise err(404, "Plugin not found")
        status, body = pyroscope_resource(d, self.ds_outgoing_headers(d), rest, req.args)
        if status == 500:
            self.log.error("Failed to call resource", logger="plugin.grafana-pyroscope-datasource", err=body)
            raise ApiError(500, {"message": "Failed to call resource", "traceID": ""})
        return Response(body, status=status, content_type="application/json")

    # -- plugin resources (pkg/api/plugin_resource.go) -------------------------------------------------------
    RESOURCE_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")

    def h_plugin_resource(self, req, ident, plugin_id, rest):
        # route: authorize(plugins.app:access on plugins:id:<id>) -- granted to Viewer and up by the basic roles
        ident.require("Viewer", "plugins.app:access")
        with self.store.lock:
            pj = self._plugin_ids().get(plugin_id)
            setting = json.loads(json.dumps(self.store.state["plugin_settings"].get(
                "%d/%s" % (ident.org_id, plugin_id)))) if pj is not None else None
        if pj is None:
            raise err(404, "Plugin not found")
        if req.method not in self.RESOURCE_METHODS:
            from werkzeug.wrappers import Response
            return Response(json.dumps({"message": "Method not allowed"}), status=405,
                            content_type="application/json", headers={"Allow": ", ".join(self.RESOURCE_METHODS)})
        backend = self._plugin_backend(plugin_id, pj)
        if backend is None:
            # no backend process serves this plugin id (frontend-only plugin)
            raise err(404, "Plugin not found")
        return backend.call_resource(req, ident, setting, "/" + rest)

    def _plugin_backend(self, plugin_id: str, pj: Dict[str, Any]) -> Optional["OnCallAppBackend"]:
        if plugin_id != ONCALL_PLUGIN_ID or not pj.get("backend") or not pj.get("executable"):
            return None
        version = str((pj.get("info") or {}).get("version") or "")
        backend = self.plugin_backends.get(plugin_id)
        if backend is None or backend.version != version:
            backend = self.plugin_backends[plugin_id] = OnCallAppBackend(self, version)
        return backend

    # -- service accounts -------------------------------------------------------
    def _sa(self, ident: Identity, sa_id: int) -> Dict[str, Any]:
        sa = self.store.state["users"].get(str(sa_id))
        if sa is None or not sa.get("is_service_account") or sa["org_id"] != ident.org_id:
            raise errutil(404, "serviceaccounts.ErrNotFound", "service account not found")
        return sa

    def _sa_dto(self, sa: Dict[str, Any], full: bool = True) -> Dict[str, Any]:
        tokens = [t for t in self.store.state["tokens"].values() if t["sa_id"] == sa["id"]]
        dto = {"id": sa["id"], "uid": sa["uid"], "name": sa["name"], "login": sa["login"], "orgId": sa["org_id"],
               "isDisabled": bool(sa.get("disabled")), "role": sa["role"], "tokens": len(tokens),
               "avatarUrl": "/avatar/%s" % hashlib.md5(sa["login"].encode()).hexdigest(),  # noqa: S324 - gravatar
               "isExternal": False}
        if full:
            dto.update({"createdAt": sa["created"], "updatedAt": sa.get("updated", sa["created"]), "teams": []})
        return dto

    def _sa_role(self, body: Dict[str, Any], default: str = "") -> str:
        role = self._str(body, "role") or default
        if role and role not in ROLE_RANK:
            raise err(400, "invalid role value: %s" % role)
        return role

    def h_sa_create(self, req, ident):
        ident.require("Admin", "serviceaccounts:create")
        body = self._body(req)
        name = self._str(body, "name").strip()
        if not name:
            raise errutil(400, "serviceaccounts.ErrNameEmpty", "name is required")
        role = self._sa_role(body, "Viewer")
        if ROLE_RANK[role] > ROLE_RANK.get(ident.role, 0):
            raise errutil(403, "serviceaccounts.ErrRoleEscalation",
                          "can not assign a role higher than user's role")
        st = self.store.state
        login = "sa-%d-%s" % (ident.org_id, slugify(name))
        if any(u.get("login") == login or (u.get("is_service_account") and u["org_id"] == ident.org_id
                                            and u["name"] == name) for u in st["users"].values()):
            raise errutil(409, "serviceaccounts.ErrAlreadyExists",
                          "service account with name %s already exists in the organization" % name)
        sa_id = self.store.next_id("user")
        sa = {"id": sa_id, "uid": short_uid(), "name": name, "login": login, "org_id": ident.org_id,
              "role": role, "disabled": self._bool(body, "isDisabled"), "is_service_account": True,
              "created": _now(), "updated": _now(), "orgs": {str(ident.org_id): role}}
        st["users"][str(sa_id)] = sa
        self._commit("Failed to create service account", lambda: st["users"].pop(str(sa_id)))
        return 201, self._sa_dto(sa)

    def h_sa_search(self, req, ident):
        ident.require("Admin", "serviceaccounts:read")
        query = req.args.get("query", "").lower()
        perpage = int(req.args.get("perpage", "1000") or 1000)
        page = max(int(req.args.get("page", "1") or 1), 1)
        hits = sorted((u for u in self.store.state["users"].values()
                       if u.get("is_service_account") and u["org_id"] == ident.org_id
                       and (query in u["name"].lower() or query in u["login"].lower())),
                      key=lambda u: u["name"].lower())
        return 200, {"totalCount": len(hits),
                     "serviceAccounts": [self._sa_dto(u, full=False) for u in hits[(page - 1) * perpage:
                                                                                   page * perpage]],
                     "page": page, "perPage": perpage}

    def h_sa_get(self, req, ident, sa_id):
        ident.require("Admin", "serviceaccounts:read")
        return 200, self._sa_dto(self._sa(ident, sa_id))

    def h_sa_patch(self, req, ident, sa_id):
        ident.require("Admin", "serviceaccounts:write")
        body = self._body(req)
        sa = self._sa(ident, sa_id)
        before = dict(sa)
        if body.get("name") is not None:
            name = self._str(body, "name").strip()
            if not name:
                raise errutil(400, "serviceaccounts.ErrNameEmpty", "name is required")
            sa["name"] = name
        if body.get("role") is not None:
            role = self._sa_role(body)
            if ROLE_RANK[role] > ROLE_RANK.get(ident.role, 0):
                raise errutil(403, "serviceaccounts.ErrRoleEscalation",
                              "can not assign a role higher than user's role")
            sa["role"] = role
            sa["orgs"] = {str(sa["org_id"]): role}
        if body.get("isDisabled") is not None:
            sa["disabled"] = self._bool(body, "isDisabled")
        sa["updated"] = _now()
        self._commit("Failed update service account", lambda: _restore(sa, before))
        dto = self._sa_dto(sa)
        return 200, {"id": sa["id"], "name": sa["name"], "serviceaccount": dto, "message": "Service account updated"}

    def h_sa_delete(self, req, ident, sa_id):
        ident.require("Admin", "serviceaccounts:delete")
        sa = self._sa(ident, sa_id)
        st = self.store.state
        saved = {"users": dict(st["users"]), "tokens": dict(st["tokens"])}
        del st["users"][str(sa["id"])]
        for key, tok in list(st["tokens"].items()):
            if tok["sa_id"] == sa["id"]:
                del st["tokens"][key]
        self._commit("Service account deletion error", lambda: st.update(saved))
        return 200, {"message": "Service account deleted"}

    def h_sa_tokens(self, req, ident, sa_id):
        ident.require("Admin", "serviceaccounts:read")
        sa = self._sa(ident, sa_id)
        out = []
        now = time.time()
        for tok in sorted(self.store.state["tokens"].values(), key=lambda t: t["id"]):
            if tok["sa_id"] != sa["id"]:
                continue
            expires = tok.get("expires")
            out.append({"id": tok["id"], "name": tok["name"], "created": tok["created"],
                        "lastUsedAt": tok.get("last_used"),
                        "expiration": _dt.datetime.fromtimestamp(expires, _dt.timezone.utc).isoformat().replace(
                            "+00:00", "Z") if expires else None,
                        "secondsUntilExpiration": max(int(expires - now), 0) if expires else 0,
                        "hasExpired": bool(expires and expires < now), "isRevoked": False})
        return 200, out

    def h_sa_token_create(self, req, ident, sa_id):
        ident.require("Admin", "serviceaccounts:write")
        body = self._body(req)
        sa = self._sa(ident, sa_id)
        name = self._str(body, "name")
        if not name:
            raise errutil(400, "serviceaccounts.ErrTokenNameEmpty", "token name is required")
        st = self.store.state
        if any(t["sa_id"] == sa["id"] and t["name"] == name for t in st["tokens"].values()):
            raise errutil(409, "serviceaccounts.ErrTokenAlreadyExists", "service account token with given name "
                                                                        "already exists in the organization")
        ttl = body.get("secondsToLive") or 0
        if not isinstance(ttl, int) or ttl < 0:
            raise err(400, "bad request data")
        token, digest = new_token()
        tok_id = self.store.next_id("token")
        st["tokens"][str(tok_id)] = {"id": tok_id, "sa_id": sa["id"], "name": name, "hash": digest,
                                     "created": _now(), "expires": (time.time() + ttl) if ttl else None}
        self._commit("failed to add service account token", lambda: st["tokens"].pop(str(tok_id)))
        return 200, {"id": tok_id, "name": name, "key": token}

    def h_sa_token_delete(self, req, ident, sa_id, token_id):
        ident.require("Admin", "serviceaccounts:write")
        sa = self._sa(ident, sa_id)
        st = self.store.state
        tok = st["tokens"].get(str(token_id))
        if tok is None or tok["sa_id"] != sa["id"]:
            raise err(404, "Failed to delete service account token")
        del st["tokens"][str(token_id)]
        self._commit("Failed to delete service account token", lambda: _put_back(st["tokens"], str(token_id), tok))
        return 200, {"message": "Service account token deleted"}

    # -- alerting provisioning ----------------------------------------------------
    # pkg/services/ngalert/api/api_provisioning.go and provisioning/{contactpoints,notification_policies}.go
    # of the 13.x line.  The swagger docs say DELETE contact-points answers 204; the handler answers
    # 202 {"message": "contactpoint deleted"}, which is what real Grafana sends (and what we serve).
    def _alerting(self, org_id: int) -> Dict[str, Any]:
        al = self.store.state["alerting"].setdefault(str(org_id), {})
        if "contact_points" not in al:
            al["contact_points"] = [_default_contact_point()]
        if "policy" not in al:
            al["policy"] = default_policy()
        if "policy_provenance" not in al:
            al["policy_provenance"] = al["policy"].pop("provenance", "")
        return al

    @staticmethod
    def _provenance(req) -> str:
        # determineProvenance: the header's presence counts, whatever its value
        return "" if DISABLE_PROVENANCE_HEADER in req.headers else "api"

    def h_cp_list(self, req, ident):
        ident.require("Admin", "alert.provisioning:read")
        name = req.args.get("name") or None
        points = [cp for cp in self._alerting(ident.org_id)["contact_points"] if name is None or cp["name"] == name]
        points.sort(key=lambda c: (c["name"], c["uid"]))
        return 200, [self._cp_dto(cp) for cp in points]

    @staticmethod
    def _cp_dto(cp: Dict[str, Any]) -> Dict[str, Any]:
        settings = json.loads(json.dumps(cp["settings"]))
        for path in SECURE_CONTACT_POINT_FIELDS.get(cp["type"], ()):
            if _path_get(settings, path):
                _path_set(settings, path, REDACTED)
        dto = {"uid": cp["uid"], "name": cp["name"], "type": cp["type"], "settings": settings,
               "disableResolveMessage": cp.get("disableResolveMessage", False)}
        if cp.get("provenance"):
            dto["provenance"] = cp["provenance"]
        return dto

    def _cp_body(self, req) -> Dict[str, Any]:
        body = self._body(req)
        settings = body.get("settings")
        if settings is not None and not isinstance(settings, dict):
            raise err(400, "bad request data")
        return {"uid": self._str(body, "uid"), "name": self._str(body, "name"), "type": self._str(body, "type"),
                "settings": settings, "disableResolveMessage": self._bool(body, "disableResolveMessage")}

    @staticmethod
    def _cp_invalid(reason: str) -> ApiError:
        # ErrResp(400, ErrValidation wrapped): a plain {"message"} body
        return err(400, "invalid object specification: " + reason)

    def _cp_validate(self, cp: Dict[str, Any]) -> None:
        if not cp["type"]:
            raise self._cp_invalid("type should not be an empty string")
        if cp["settings"] is None:
            raise self._cp_invalid("settings should not be empty")
        prefix = 'failed to validate integration "%s" (UID %s) of type "%s": ' % (cp["name"], cp["uid"], cp["type"])
        if cp["type"] not in SECURE_CONTACT_POINT_FIELDS:
            raise self._cp_invalid(prefix + "notifier %s is not supported" % cp["type"])
        if not cp["name"]:
            raise self._cp_invalid(prefix + "name must not be empty")
        problem = _integration_problem(cp["type"], cp["settings"])
        if problem:
            raise self._cp_invalid(prefix + problem)

    @staticmethod
    def _drop_empty_secrets(cp: Dict[str, Any]) -> None:
        # RemoveSecretsForContactPoint: empty secure values are not stored
        for path in SECURE_CONTACT_POINT_FIELDS.get(cp["type"], ()):
            if _path_get(cp["settings"], path) in ("", None):
                _path_del(cp["settings"], path)

    def h_cp_create(self, req, ident):
        ident.require("Admin", "alert.provisioning:write")
        cp = self._cp_body(req)
        self._cp_validate(cp)
        al = self._alerting(ident.org_id)
        if cp["uid"]:
            problem = _uid_problem(cp["uid"])
            if problem:
                raise err(400, "invalid object specification\ncannot create contact point with UID '%s': %s"
                          % (cp["uid"], problem))
        else:
            cp["uid"] = short_uid()
        clash = next((c for c in al["contact_points"] if c["uid"] == cp["uid"]), None)
        if clash is not None:
            # MakeErrContactPointUidExists, answered through ErrResp(500, err): status 500, the error's text
            raise err(500, "[alerting.notifications.contact-points.uidInUse] Receiver configuration with UID '%s' "
                           "already exists in contact point '%s'. Please use unique identifiers for receivers "
                           "across all contact points." % (cp["uid"], clash["name"]))
        self._drop_empty_secrets(cp)
        cp["provenance"] = self._provenance(req)
        al["contact_points"].append(cp)
        self._commit(None, lambda: al["contact_points"].remove(cp))
        return 202, self._cp_dto(cp)

    def h_cp_put(self, req, ident, uid):
        ident.require("Admin", "alert.provisioning:write")
        new = self._cp_body(req)
        new["uid"] = uid
        if new["settings"] is None:
            raise self._cp_invalid("settings should not be empty")
        al = self._alerting(ident.org_id)
        cp = next((c for c in al["contact_points"] if c["uid"] == uid), None)
        if cp is None:
            raise err(404, "object not found: contact point with uid '%s' not found" % uid)
        # "[REDACTED]" keeps the stored value of a secure setting
        for path in SECURE_CONTACT_POINT_FIELDS.get(new["type"], ()):
            if _path_get(new["settings"], path) == REDACTED:
                _path_set(new["settings"], path, _path_get(cp["settings"], path) or "")
        self._cp_validate(new)
        provenance = self._provenance(req)
        stored = cp.get("provenance", "")
        if stored != provenance and stored != "":
            raise err(500, "cannot change provenance from '%s' to '%s'" % (stored, provenance))
        self._drop_empty_secrets(new)
        before_policy = json.loads(json.dumps(al["policy"]))
        old_name = cp["name"]
        if new["name"] != old_name and not any(c is not cp and c["name"] == old_name for c in al["contact_points"]):
            # the whole receiver is renamed: so are the policies that route to it
            if old_name in _policy_receivers(al["policy"]):
                if al["policy_provenance"] not in ("", provenance):
                    raise err(500, "[alerting.notifications.receivers.usedProvisioned] Receiver cannot be renamed "
                                   "because it is used by provisioned notification policies")
                _rename_receiver(al["policy"], old_name, new["name"])
        before = dict(cp)
        cp.update({k: new[k] for k in ("name", "type", "settings", "disableResolveMessage")})
        cp["provenance"] = provenance

        def undo():
            _restore(cp, before)
            al["policy"] = before_policy

        self._commit(None, undo)
        return 202, {"message": "contactpoint updated"}

    def h_cp_delete(self, req, ident, uid):
        ident.require("Admin", "alert.provisioning:write")
        al = self._alerting(ident.org_id)
        cp = next((c for c in al["contact_points"] if c["uid"] == uid), None)
        if cp is not None:  # an unknown uid is not an error upstream
            last = not any(c is not cp and c["name"] == cp["name"] for c in al["contact_points"])
            if last and cp["name"] in _policy_receivers(al["policy"]):
                raise errutil(409, "alerting.notifications.contact-points.referenced",
                              "Contact point is currently referenced by a notification policy.")
            al["contact_points"].remove(cp)
            self._commit("failed to delete contact point", lambda: al["contact_points"].append(cp))
        return 202, {"message": "contactpoint deleted"}

    def h_policy_get(self, req, ident):
        ident.require("Admin", "alert.provisioning:read")
        al = self._alerting(ident.org_id)
        policy = json.loads(json.dumps(al["policy"]))
        if al["policy_provenance"]:
            policy["provenance"] = al["policy_provenance"]
        return 200, policy

    def h_policy_put(self, req, ident):
        ident.require("Admin", "alert.provisioning:write")
        tree = _decode_route(self._body(req))
        problem = _route_problem(tree, root=True)
        if problem:
            raise _route_invalid(problem)
        al = self._alerting(ident.org_id)
        provenance = self._provenance(req)
        _check_provenance_transition(al["policy_provenance"], provenance)
        receivers = {c["name"] for c in al["contact_points"]} | {""}
        problem = _route_reference_problem(tree, receivers, time_intervals=set())
        if problem:
            raise _route_invalid(problem)
        before = {"policy": al["policy"], "policy_provenance": al["policy_provenance"]}
        al["policy"], al["policy_provenance"] = tree, provenance
        self._commit("Internal Server Error", lambda: al.update(before))
        return 202, {"message": "policies updated"}

    def h_policy_reset(self, req, ident):
        ident.require("Admin", "alert.provisioning:write")
        al = self._alerting(ident.org_id)
        _check_provenance_transition(al["policy_provenance"], self._provenance(req))
        before = {"policy": al["policy"], "policy_provenance": al["policy_provenance"],
                  "contact_points": list(al["contact_points"])}
        al["policy"], al["policy_provenance"] = default_policy(), ""
        if not any(c["name"] == al["policy"]["receiver"] for c in al["contact_points"]):
            al["contact_points"].append(_default_contact_point())  # the default tree needs its receiver
        self._commit(None, lambda: al.update(before))
        return 202, default_policy()


# ---------------------------------------------------------------------------
# the grafana-oncall-app plugin backend (grafana/oncall v1.16.9, grafana-plugin/pkg/plugin)
# ---------------------------------------------------------------------------
#
# Grafana runs the plugin's Go executable and hands it /api/plugins/grafana-oncall-app/resources/* calls
# with the plugin context (org, signed-in user, the app's jsonData and decrypted secureJsonData).  The
# stand-in answers those calls in-process, with the upstream handlers' logic, status codes and bodies:
#
# * ``/plugin/install`` (POST): health check of ``<onCallApiUrl>/api/internal/v1/health/`` (500 ms), the
#   sync data (``api/org/users``, ``api/teams/search`` ... read from Grafana at ``jsonData.grafanaUrl``, else
#   ``[server] root_url``, with ``Bearer <secureJsonData.grafanaToken>``), POST
#   ``<onCallApiUrl>/api/internal/v1/plugin/v2/install``, then the settings are saved back through
#   ``POST <grafanaUrl>/api/plugins/grafana-oncall-app/settings`` with that token (enabled, pinned, jsonData
#   {onCallApiUrl, stackId, orgId, license, grafanaUrl}, secureJsonData {onCallApiToken, grafanaToken});
#   only the returned onCallToken is new.  Upstream's quirks are kept: settings that cannot be read or sync
#   data that cannot be fetched end the call with an empty 200; an engine refusal is a 200 with
#   ``{"onCallError": {...}}`` (the Go handler writes the body before the 400 status, which is dropped); a
#   failed settings save is only logged.
# * ``/plugin/status`` (GET): the pluginConnection report; when every entry is ok a sync starts.
# * ``/plugin/sync`` (POST, ``?wait=``, ``?force=``): gzip'ed sync data to ``.../plugin/v2/sync``; one sync
#   per 5 minutes per plugin instance (a settings change makes a new instance).
# * anything else: proxied to ``<onCallApiUrl>/api/internal/v1/<path>`` with ``Authorization:
#   <onCallApiToken>``, ``X-Instance-Context`` and ``X-Grafana-Context``/``X-OnCall-User-Context`` of the
#   signed-in user, looked up by login among the org users (60 s cache); a user Grafana does not list
#   (service accounts) gets 400 ``user <login> not found``.
#
# Grafana 13 has no ``accessControlOnCall`` toggle any more (RBAC off in the sync data) and
# ``externalServiceAccounts`` is off by default, so the Grafana token is ``secureJsonData.grafanaToken``.

ONCALL_PLUGIN_ID = "grafana-oncall-app"
ONCALL_PLUGIN_EXECUTABLE = "gpx_grafana_oncall_app"
_OSS_VERSION_RE = re.compile(r"^(\d+\.\d+\.\d+)$")
_CLOUD_VERSION_RE = re.compile(r"^(v\d+\.\d+\.\d+|github-actions-[a-zA-Z0-9-]+)$")
PLUGIN_HTTP_TIMEOUT = 30.0
ONCALL_HEALTH_TIMEOUT = 0.5
ONCALL_SYNC_LOCK_SECONDS = 300
ONCALL_USER_CACHE_SECONDS = 60


def oncall_plugin_json(version: str) -> Dict[str, Any]:
    """The plugin.json of a grafana-oncall-app release (the fields Grafana and the stand-in read)."""
    return {"type": "app", "name": "Grafana OnCall", "id": ONCALL_PLUGIN_ID, "preload": True, "backend": True,
            "executable": ONCALL_PLUGIN_EXECUTABLE,
            "info": {"description": "On-call management for Grafana (o11y.stack test stand-in package)",
                     "author": {"name": "Grafana Labs", "url": "https://grafana.com"},
                     "keywords": ["oncall"], "version": version, "updated": "2026-03-24"},
            "includes": [{"type": "page", "name": "Home", "path": "/a/%s" % ONCALL_PLUGIN_ID, "role": "Viewer",
                          "action": "%s.alert-groups:read" % ONCALL_PLUGIN_ID, "defaultNav": True,
                          "addToNav": True}],
            "dependencies": {"grafanaDependency": ">=10.2.5", "plugins": []}}


class GoError(Exception):
    """An error as the Go code formats it (``err.Error()``)."""


def _go_clean(path: str) -> str:
    """Go's path.Clean."""
    if not path:
        return "."
    rooted = path.startswith("/")
    out: List[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(part)
    cleaned = ("/" if rooted else "") + "/".join(out)
    return cleaned or ("/" if rooted else ".")


def go_join_path(base: str, *elems: str) -> str:
    """Go's url.JoinPath(base, elems...) (the result cleaned, a trailing slash kept)."""
    from urllib.parse import urlsplit, urlunsplit
    try:
        u = urlsplit(base)
        u.port  # noqa: B018 - raises on a bad port like url.Parse
    except ValueError as exc:
        raise GoError('parse "%s": %s' % (base, exc)) from None
    parts = [u.path] + list(elems)
    joined = "/".join(p for p in parts if p)
    if not parts[0].startswith("/"):
        p = _go_clean("/" + joined)[1:] if joined else ""
    else:
        p = _go_clean(joined) if joined else ""
    if elems and elems[-1].endswith("/") and not p.endswith("/"):
        p += "/"
    if u.netloc and p and not p.startswith("/"):
        p = "/" + p
    return urlunsplit((u.scheme, u.netloc, p, u.query, u.fragment))


def go_path_append(base: str, suffix: str, query: str = "") -> str:
    """``u, _ := url.Parse(base); u.Path += suffix`` then ``u.String()`` (no slash is added between them)."""
    from urllib.parse import urlsplit, urlunsplit
    try:
        u = urlsplit(base)
    except ValueError as exc:
        raise GoError('parse "%s": %s' % (base, exc)) from None
    path = u.path + suffix
    if u.netloc and path and not path.startswith("/"):
        path = "/" + path
    return urlunsplit((u.scheme, u.netloc, path, query or u.query, u.fragment))


def go_http(method: str, url: str, headers: Optional[Dict[str, str]] = None, body: Optional[bytes] = None,
            timeout: float = PLUGIN_HTTP_TIMEOUT) -> Tuple[int, str, Dict[str, List[str]], bytes]:
    """One request like Go's http.Client: (status, status text, headers, body); transport failures raise
    :class:`GoError` with net/http's wording (``Get "URL": dial tcp HOST:PORT: connect: connection refused``)."""
    import http.client
    import socket
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit
    op = method[:1].upper() + method[1:].lower()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise GoError('%s "%s": unsupported protocol scheme "%s"' % (op, url, parts.scheme))
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise GoError('%s "%s": invalid port' % (op, url)) from None
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - http(s) only, checked above
            data = resp.read()
            status, reason, hdrs = resp.status, resp.reason, resp.headers
    except urllib.error.HTTPError as exc:
        data = exc.read()
        status, reason, hdrs = exc.code, exc.reason, exc.headers
    except urllib.error.URLError as exc:
        reason_exc = exc.reason
        if isinstance(reason_exc, ConnectionRefusedError):
            raise GoError('%s "%s": dial tcp %s:%d: connect: connection refused' % (op, url, host, port)) from None
        if isinstance(reason_exc, socket.gaierror):
            raise GoError('%s "%s": dial tcp: lookup %s: no such host' % (op, url, host)) from None
        if isinstance(reason_exc, (socket.timeout, TimeoutError)):
            raise GoError('%s "%s": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
                          % (op, url)) from None
        raise GoError('%s "%s": %s' % (op, url, reason_exc)) from None
    except (socket.timeout, TimeoutError):
        raise GoError('%s "%s": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
                      % (op, url)) from None
    except (OSError, http.client.HTTPException) as exc:
        raise GoError('%s "%s": %s' % (op, url, exc)) from None
    out: Dict[str, List[str]] = {}
    for name, value in hdrs.items():
        out.setdefault(name, []).append(value)
    return status, "%d %s" % (status, reason), out, data


# -- data source proxy and the Pyroscope data source backend --------------------------------------------------

# hop-by-hop headers (net/http/httputil.ReverseProxy) and what Grafana's director removes: the user's cookies and
# credentials, Origin/Referer, X-DS-Authorization; Host and Content-Length are set for the upstream request
PROXY_DROPPED_HEADERS = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
                         "te", "trailer", "transfer-encoding", "upgrade", "cookie", "authorization", "origin",
                         "referer", "x-ds-authorization", "host", "content-length", "x-grafana-org-id"}
# routes of the Prometheus plugin.json: the only non-GET requests Grafana proxies to a Prometheus data source
PROMETHEUS_ROUTES = (("POST", "api/v1/query"), ("POST", "api/v1/query_range"), ("POST", "api/v1/series"),
                     ("POST", "api/v1/labels"), ("POST", "api/v1/query_exemplars"), ("GET", "rules"),
                     ("POST", "rules"), ("DELETE", "rules"))
PYROSCOPE_DATASOURCE = "grafana-pyroscope-datasource"


def proxy_refusal(ds_type: str, method: str, proxy_path: str) -> str:
    """DataSourceProxy.validateRequest: the 403 message for a request Grafana will not proxy, else ""."""
    path = proxy_path.lstrip("/")
    if ds_type == "elasticsearch":
        if method == "DELETE":
            return "deletes not allowed on proxied Elasticsearch datasource"
        if method == "PUT":
            return "puts not allowed on proxied Elasticsearch datasource"
        if method == "POST" and path != "_msearch":
            return "posts not allowed on proxied Elasticsearch datasource except on /_msearch"
    if ds_type == "prometheus":
        if any(method == m and path.startswith(p) for m, p in PROMETHEUS_ROUTES):
            return ""
        if method in ("DELETE", "PUT", "POST"):
            return "non allow-listed %ss not allowed on proxied Prometheus datasource" % method
    return ""


def _connect_unary(url: str, service_method: str, message: bytes, headers: Dict[str, str]) -> bytes:
    """One connect-go unary call with the proto codec (connect's default, what querierv1connect's client sends)."""
    hdrs = dict(headers, **{"Content-Type": "application/proto", "Connect-Protocol-Version": "1"})
    status, _text, resp_headers, data = go_http("POST", url.rstrip("/") + "/" + service_method, hdrs, message)
    if status != 200:
        ctype = (resp_headers.get("Content-Type") or [""])[0]
        code, text = "unknown", data.decode("utf-8", "replace").strip()
        if ctype.startswith("application/json"):
            try:
                payload = json.loads(data)
                code, text = payload.get("code", code), payload.get("message", "")
            except ValueError:
                pass
        raise GoError("%s: %s" % (code, text))
    return data


def pyroscope_resource(d: Dict[str, Any], headers: Dict[str, str], path: str, args) -> Tuple[int, bytes]:
    """The Pyroscope data source's CallResource (pkg/tsdb/grafana-pyroscope-datasource/instance.go):
    (status, JSON body); status 500 carries the error text."""
    from . import promql, wire
    url = d.get("url") or ""

    def int_arg(name: str) -> int:
        try:
            return int(args.get(name, "") or 0)
        except ValueError:
            return 0
    try:
        if path == "profileTypes":
            if "start" in args and "end" in args:
                try:
                    start, end = int(args["start"]), int(args["end"])
                except ValueError as exc:
                    return 500, str(exc).encode()
            else:  # v2 needs a time range: the data source asks for now +- 1h
                now = int(time.time() * 1000)
                start, end = now - 3600_000, now + 3600_000
            data = _connect_unary(url, "querier.v1.QuerierService/ProfileTypes",
                                  wire.field_varint(1, start) + wire.field_varint(2, end), headers)
            types = []
            for t in wire.children(data, 1):
                f = {n: v.decode("utf-8") for n, _w, v in wire.fields(t) if isinstance(v, bytes)}
                types.append({"id": f.get(1, ""), "label": f.get(2, "") + " - " + f.get(4, "")})
            return 200, json.dumps(types, separators=(",", ":")).encode()
        if path == "labelNames":
            selector = args.get("query", "")
            try:
                matchers = promql.parse_metric_selector(selector)
            except promql.ParseError as exc:
                return 500, ("failed parsing label selector: %s" % exc).encode()
            msg = wire.field_str(1, selector) + wire.field_varint(2, int_arg("start")) + \
                wire.field_varint(3, int_arg("end"))
            data = _connect_unary(url, "querier.v1.QuerierService/LabelNames", msg, headers)
            names = [n.decode("utf-8") for n in wire.children(data, 1)]
            used = {m.name for m in matchers}
            return 200, json.dumps([n for n in names if not n.startswith("__") and n not in used],
                                   separators=(",", ":")).encode()
        if path == "labelValues":
            msg = (wire.field_str(1, args.get("label", "")) + wire.field_bytes(2, args.get("query", "").encode()) +
                   wire.field_varint(3, int_arg("start")) + wire.field_varint(4, int_arg("end")))
            data = _connect_unary(url, "querier.v1.QuerierService/LabelValues", msg, headers)
            return 200, json.dumps([n.decode("utf-8") for n in wire.children(data, 1)],
                                   separators=(",", ":")).encode()
    except GoError as exc:
        return 500, str(exc).encode()
    return 404, b""


def _go_error_response(message: str, status: int):
    """net/http's http.Error."""
    from werkzeug.wrappers import Response
    return Response(message + "\n", status=status, headers={"Content-Type": "text/plain; charset=utf-8",
                                                            "X-Content-Type-Options": "nosniff"})


def _go_json_response(body: Any):
    """``w.Header().Add("Content-Type", "application/json"); json.NewEncoder(w).Encode(body)``: status 200
    (a later WriteHeader is superfluous)."""
    from werkzeug.wrappers import Response
    return Response(json.dumps(body, separators=(",", ":")) + "\n", status=200,
                    headers={"Content-Type": "application/json"})


def _go_int(value: Any, field_name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        kind = {str: "string", bool: "bool", float: "number", list: "array", dict: "object"}.get(type(value), "value")
        raise GoError("OnCallSettingsFromContext: json.Unmarshal: json: cannot unmarshal %s into Go struct field "
                      "OnCallPluginSettingsJSONData.%s of type int" % (kind, field_name))
    return value


def _go_str(value: Any, field_name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        kind = {bool: "bool", int: "number", float: "number", list: "array", dict: "object"}.get(type(value), "value")
        raise GoError("OnCallSettingsFromContext: json.Unmarshal: json: cannot unmarshal %s into Go struct field "
                      "OnCallPluginSettingsJSONData.%s of type string" % (kind, field_name))
    return value


class _OnCallInstance:
    """One plugin instance (instancemgmt: a new one whenever the app's settings change) and its caches."""

    def __init__(self):
        self.install_lock = threading.Lock()
        self.sync_lock = threading.Lock()
        self.sync_locked_until = 0.0
        self.sync_started = 0.0
        self.last_sync: Optional[Dict[str, Any]] = None
        self.users_lock = threading.Lock()
        self.all_users: Dict[str, Dict[str, Any]] = {}
        self.all_users_expiry = 0.0
        self.user_cache: Dict[str, Tuple[float, Dict[str, Any]]] = {}


class OnCallAppBackend:
    """The grafana-oncall-app backend's resource handlers (see the section comment above)."""

    def __init__(self, app: "GrafanaApp", version: str):
        self.app = app
        self.version = version
        self.instances: Dict[Tuple[int, int], _OnCallInstance] = {}
        self.lock = threading.Lock()

    # -- plugin context --------------------------------------------------------------------------------
    def _instance(self, org_id: int, setting: Optional[Dict[str, Any]]) -> _OnCallInstance:
        key = (org_id, int((setting or {}).get("version", 0)))
        with self.lock:
            for old in [k for k in self.instances if k[0] == org_id and k != key]:
                del self.instances[old]  # Dispose: the settings changed
            if key not in self.instances:
                self.instances[key] = _OnCallInstance()
            return self.instances[key]

    def settings(self, setting: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        """OnCallSettingsFromContext; raises GoError."""
        if setting is None:
            # no plugin_setting row: Grafana sends empty JSONData
            raise GoError("OnCallSettingsFromContext: json.Unmarshal: unexpected end of JSON input")
        json_data = setting.get("jsonData")
        if json_data is None:
            json_data = {}
        out = {"oncall_api_url": _go_str(json_data.get("onCallApiUrl"), "onCallApiUrl"),
               "oncall_token": "", "stack_id": _go_int(json_data.get("stackId"), "stackId"),
               "org_id": _go_int(json_data.get("orgId"), "orgId"),
               "license": _go_str(json_data.get("license"), "license"), "plugin_id": ONCALL_PLUGIN_ID,
               "grafana_url": _go_str(json_data.get("grafanaUrl"), "grafanaUrl"), "grafana_token": "",
               "rbac_enabled": False, "incident_enabled": False, "incident_backend_url": "",
               "labels_enabled": False, "external_service_account_enabled": False}
        if not out["license"]:
            if _OSS_VERSION_RE.match(self.version):
                out["license"] = "OpenSource"
            elif _CLOUD_VERSION_RE.match(self.version):
                out["license"] = "Cloud"
            else:
                raise GoError("jsonData.license is not set and version %s did not match a known pattern"
                              % self.version)
        secure = setting.get("secure") or {}
        out["oncall_token"] = str(secure.get("onCallApiToken", "")).strip()
        if not out["grafana_url"]:
            out["grafana_url"] = self.app.settings.get("server", "root_url")  # GF_APP_URL
        out["grafana_token"] = str(secure.get("grafanaToken", "")).strip()
        # other apps' settings (incident, labels): read from Grafana with the token; none is installed here
        for pid, key in (("grafana-incident-app", "incident_enabled"), ("grafana-labels-app", "labels_enabled")):
            other = self.app.store.state["plugin_settings"].get("%d/%s" % (setting.get("_org_id", 1), pid))
            if other is not None and pid in self.app._plugin_ids():
                out[key] = bool(other.get("enabled"))
        return out

    # -- Grafana calls with the service account token --------------------------------------------------------
    def _grafana_get(self, settings: Dict[str, Any], url: str) -> Tuple[int, str, Any, bytes]:
        status, text, _, body = go_http("GET", url, {"Authorization": "Bearer %s" % settings["grafana_token"]})
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = ...
        return status, text, parsed, body

    def _all_users(self, settings: Dict[str, Any]) -> List[Dict[str, Any]]:
        url = go_path_append(settings["grafana_url"], "api/org/users")
        try:
            status, text, result, body = self._grafana_get(settings, url)
        except GoError as exc:
            raise GoError("error making request: %s" % exc) from None
        if not isinstance(result, list) or not all(isinstance(u, dict) for u in result):
            raise GoError("failed to parse JSON response: json: cannot unmarshal %s into Go value of type "
                          "[]plugin.OrgUser body=%s" % ("object" if isinstance(result, dict) else "value",
                                                        body.decode("utf-8", "replace")))
        if status != 200:
            raise GoError("http status %s" % text)
        return [{"id": u.get("userId", 0), "name": u.get("name", ""), "login": u.get("login", ""),
                 "email": u.get("email", ""), "role": u.get("role", ""), "avatar_url": u.get("avatarUrl", ""),
                 "permissions": None, "teams": None} for u in result] or None

    def _all_teams(self, settings: Dict[str, Any]) -> Tuple[Optional[List[Dict[str, Any]]], Dict[str, List[int]]]:
        url = go_path_append(settings["grafana_url"], "api/teams/search", "perpage=100000")
        try:
            status, text, result, body = self._grafana_get(settings, url)
        except GoError as exc:
            raise GoError("error getting teams = error making request: %s" % exc) from None
        if not isinstance(result, dict):
            raise GoError("error getting teams = failed to parse JSON response: json: cannot unmarshal value into "
                          "Go value of type plugin.Teams body=%s" % body.decode("utf-8", "replace"))
        if status != 200:
            raise GoError("error getting teams = http status %s" % text)
        teams = [{"team_id": t.get("id", 0), "name": t.get("name", ""), "email": t.get("email", ""),
                  "avatar_url": t.get("avatarUrl", "")} for t in result.get("teams") or []] or None
        members: Dict[str, List[int]] = {}
        for team in teams or []:
            murl = go_join_path(settings["grafana_url"], "api/teams/%d/members" % team["team_id"])
            try:
                status, text, result, body = self._grafana_get(settings, murl)
            except GoError as exc:
                raise GoError("error getting team members = error making request: %s" % exc) from None
            if not isinstance(result, list):
                raise GoError("error getting team members = failed to parse JSON response: json: cannot "
                              "unmarshal value into Go value of type []plugin.OrgUser body=%s"
                              % body.decode("utf-8", "replace"))
            if status != 200:
                raise GoError("error getting team members = http status %s" % text)
            members[str(team["team_id"])] = [m.get("userId", 0) for m in result] or None
        return teams, members

    def sync_data(self, settings: Dict[str, Any]) -> Dict[str, Any]:
        """GetSyncData (RBAC off: no permissions are read); raises GoError."""
        try:
            users = self._all_users(settings)
        except GoError as exc:
            raise GoError("error getting users = %s" % exc) from None
        teams, members = self._all_teams(settings)
        return {"users": users, "teams": teams, "team_members": members, "settings": dict(settings)}

    def save_settings(self, settings: Dict[str, Any]) -> None:
        """SaveOnCallSettings: POST the settings back to Grafana with the plugin's token (answer ignored)."""
        json_data: Dict[str, Any] = {"onCallApiUrl": settings["oncall_api_url"]}
        if settings["stack_id"]:
            json_data["stackId"] = settings["stack_id"]
        if settings["org_id"]:
            json_data["orgId"] = settings["org_id"]
        json_data.update({"license": settings["license"], "grafanaUrl": settings["grafana_url"]})
        secure = {"onCallApiToken": settings["oncall_token"]}
        if settings["grafana_token"]:
            secure["grafanaToken"] = settings["grafana_token"]
        body = json.dumps({"jsonData": json_data, "secureJsonData": secure, "enabled": True, "pinned": True})
        url = go_join_path(settings["grafana_url"], "api/plugins/%s/settings" % ONCALL_PLUGIN_ID)
        try:
            go_http("POST", url, {"Authorization": "Bearer %s" % settings["grafana_token"],
                                  "Content-Type": "application/json"}, body.encode())
        except GoError as exc:
            self.app.log.error("Error saving settings", logger="plugin.grafana-oncall-app", error=str(exc))

    def _user_for_header(self, inst: _OnCallInstance, settings: Dict[str, Any], login: str) -> Dict[str, Any]:
        """GetUserForHeader: the signed-in user among the org users (60 s caches); raises GoError."""
        now = time.time()
        cached = inst.user_cache.get(login)
        if cached and now < cached[0]:
            return cached[1]
        with inst.users_lock:
            if now < inst.all_users_expiry:
                user = inst.all_users.get(login)
            else:
                users = self._all_users(settings) or []
                inst.all_users = {u["login"]: u for u in users}
                inst.all_users_expiry = now + ONCALL_USER_CACHE_SECONDS
                user = inst.all_users.get(login)
        if user is None:
            raise GoError("user %s not found" % login)
        inst.user_cache[login] = (now + ONCALL_USER_CACHE_SECONDS, user)
        return user

    def _oncall_headers(self, settings: Dict[str, Any]) -> Dict[str, str]:
        return {"Authorization": settings["oncall_token"],
                "X-Instance-Context": json.dumps({"stack_id": str(settings["stack_id"]),
                                                  "org_id": str(settings["org_id"]),
                                                  "grafana_token": settings["grafana_token"]},
                                                 separators=(",", ":")),
                "User-Agent": "GrafanaOnCall/%s" % self.version}

    def _oncall_user_headers(self, inst: _OnCallInstance, settings: Dict[str, Any],
                             ident: Identity) -> Dict[str, str]:
        headers = self._oncall_headers(settings)
        user = self._user_for_header(inst, settings, ident.login)
        backend_user = ident.user or {}
        headers["X-Grafana-Context"] = json.dumps({
            "UserID": user["id"], "IsAnonymous": False, "Name": backend_user.get("name", ""),
            "Login": ident.login, "Email": backend_user.get("email", ""), "Role": ident.role},
            separators=(",", ":"))
        headers["X-OnCall-User-Context"] = json.dumps(user, separators=(",", ":"))
        return headers

    def health(self, settings: Dict[str, Any]) -> Tuple[int, Optional[str]]:
        """CheckOnCallApiHealthStatus: (status, error text or None)."""
        try:
            url = go_join_path(settings["oncall_api_url"], "/api/internal/v1/health/")
        except GoError as exc:
            return 500, str(exc)
        try:
            status, text, _, _ = go_http("GET", url, timeout=ONCALL_HEALTH_TIMEOUT)
        except GoError as exc:
            return 400, str(exc)
        if status != 200:
            return status, text
        return 200, None

    # -- dispatch (registerRoutes) ---------------------------------------------------------------------------
    def call_resource(self, req, ident: Identity, setting: Optional[Dict[str, Any]], path: str):
        if setting is not None:
            setting["_org_id"] = ident.org_id
        inst = self._instance(ident.org_id, setting)
        if path == "/plugin/install":
            return self.handle_install(req, inst, setting)
        if path == "/plugin/status":
            return self.handle_status(req, inst, ident, setting)
        if path == "/plugin/sync":
            return self.handle_sync(req, inst, ident, setting)
        response = self.proxy(req, inst, ident, setting, path)
        if path == "/plugin/self-hosted/install":
            self.legacy_install(response, setting)
        return response

    def legacy_install(self, response, setting) -> None:
        """handleLegacyInstall (after the proxied call): the engine's answer goes into the settings."""
        try:
            provisioned = json.loads(response.get_data())
            settings = self.settings(setting)
        except (ValueError, GoError):
            return
        if not isinstance(provisioned, dict) or provisioned.get("error"):
            return
        settings.update({"license": str(provisioned.get("license") or ""),
                         "org_id": int(provisioned.get("orgId") or 0), "stack_id": int(provisioned.get("stackId") or 0),
                         "oncall_token": str(provisioned.get("onCallToken") or "")})
        self.save_settings(settings)

    def handle_install(self, req, inst: _OnCallInstance, setting):
        from werkzeug.wrappers import Response
        if req.method != "POST":
            return _go_error_response("Method not allowed", 405)
        if not inst.install_lock.acquire(blocking=False):
            return _go_error_response("Install is already in progress", 400)
        try:
            try:
                settings = self.settings(setting)
            except GoError as exc:
                self.app.log.error("Error getting settings from context", logger="plugin.grafana-oncall-app",
                                   error=str(exc))
                return Response(b"", status=200)
            status, problem = self.health(settings)
            if problem is not None:
                return _go_error_response(problem, status)
            try:
                data = self.sync_data(settings)
            except GoError as exc:
                self.app.log.error("Error getting sync data", logger="plugin.grafana-oncall-app", error=str(exc))
                return Response(b"", status=200)
            try:
                url = go_join_path(settings["oncall_api_url"], "api/internal/v1/plugin/v2/install")
            except GoError as exc:
                return _go_error_response(str(exc), 500)
            try:
                status, _, _, body = go_http("POST", url, {"Content-Type": "application/json"},
                                             json.dumps(data, separators=(",", ":")).encode())
            except GoError as exc:
                return _go_error_response(str(exc), 500)
            if status != 200:
                error: Dict[str, Any] = {"code": 1000, "message": "Install failed check /status for details"}
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = None
                if isinstance(parsed, dict) and isinstance(parsed.get("message"), str) and parsed["message"]:
                    error = {"code": parsed.get("code", 0) if isinstance(parsed.get("code"), int) else 0,
                             "message": parsed["message"]}
                    if isinstance(parsed.get("fields"), dict) and parsed["fields"]:
                        error["fields"] = parsed["fields"]
                else:
                    error["message"] = body.decode("utf-8", "replace")
                return _go_json_response({"onCallError": error})
            try:
                provisioned = json.loads(body)
            except ValueError:
                return Response(b"", status=200)
            settings["oncall_token"] = str((provisioned or {}).get("onCallToken") or "")
            self.save_settings(settings)
            return Response(b"", status=200)
        finally:
            inst.install_lock.release()

    def make_sync(self, inst: _OnCallInstance, setting, force: bool) -> None:
        """makeSyncRequest; raises GoError."""
        now = time.time()
        with inst.users_lock:
            if inst.sync_lock.locked() or now < inst.sync_locked_until:
                remaining = max(inst.sync_started + ONCALL_SYNC_LOCK_SECONDS - now, 0)
                raise GoError("sync already in progress, OnCallSyncCache is locked, remaining time  %.0fs"
                              % remaining)
            inst.sync_lock.acquire()
            inst.sync_started = now
        try:
            try:
                settings = self.settings(setting)
            except GoError as exc:
                raise GoError("error getting settings from context: %s " % exc) from None
            try:
                data = self.sync_data(settings)
            except GoError as exc:
                raise GoError("error getting sync data: %s" % exc) from None
            if inst.last_sync == data and not force:
                return
            import gzip
            url = go_join_path(settings["oncall_api_url"], "api/internal/v1/plugin/v2/sync")
            headers = self._oncall_headers(settings)
            headers.update({"Content-Type": "application/json", "Content-Encoding": "gzip"})
            try:
                status, _, _, body = go_http("POST", url, headers,
                                             gzip.compress(json.dumps(data, separators=(",", ":")).encode()))
            except GoError as exc:
                raise GoError("error request to oncall: %s" % exc) from None
            if status != 200:
                self.app.log.error("sync not ok", logger="plugin.grafana-oncall-app", status=status,
                                   message=body.decode("utf-8", "replace"))
            inst.last_sync = data
        finally:
            inst.sync_locked_until = time.time() + ONCALL_SYNC_LOCK_SECONDS  # UnlockAfterDelay(5 minutes)
            inst.sync_lock.release()

    def _sync_async(self, inst: _OnCallInstance, setting, force: bool) -> None:
        def run():
            try:
                self.make_sync(inst, setting, force)
            except GoError as exc:
                self.app.log.info("Skipping sync", logger="plugin.grafana-oncall-app", message=str(exc))
        threading.Thread(target=run, name="oncall-plugin-sync", daemon=True).start()

    def handle_sync(self, req, inst: _OnCallInstance, ident: Identity, setting):
        from werkzeug.wrappers import Response
        if req.method != "POST":
            return _go_error_response("Method not allowed", 405)
        flags = {}
        for name in ("wait", "force"):
            raw = req.args.get(name, "")
            if raw == "":
                flags[name] = False
            elif raw in ("1", "t", "T", "TRUE", "true", "True"):
                flags[name] = True
            elif raw in ("0", "f", "F", "FALSE", "false", "False"):
                flags[name] = False
            else:
                return _go_error_response('strconv.ParseBool: parsing "%s": invalid syntax' % raw, 400)
        if flags["wait"]:
            try:
                self.make_sync(inst, setting, flags["force"])
            except GoError as exc:
                return _go_error_response(str(exc), 400)
        else:
            self._sync_async(inst, setting, flags["force"])
        return Response(b"", status=200)

    def handle_status(self, req, inst: _OnCallInstance, ident: Identity, setting):
        if req.method != "GET":
            return _go_error_response("Method not allowed", 405)
        try:
            settings = self.settings(setting)
        except GoError as exc:
            return _go_error_response(str(exc), 500)
        entries = ("settings", "service_account_token", "grafana_url_from_plugin", "grafana_url_from_engine",
                   "oncall_api_url", "oncall_token")
        conn = {k: {"ok": False, "error": "Not validated"} for k in entries}
        status = {"pluginConnection": conn, "license": "", "version": "",
                  "currently_undergoing_maintenance_message": "", "api_url": ""}

        def ok(key):
            conn[key] = {"ok": True}

        def bad(key, reason):
            conn[key] = {"ok": False, "error": reason}

        for field_name, key in (("stackId", "stack_id"), ("orgId", "org_id"), ("license", "license"),
                                ("onCallApiUrl", "oncall_api_url"), ("grafanaUrl", "grafana_url")):
            if not settings[key]:
                bad("settings", "jsonData.%s is not set" % field_name)
                return _go_json_response(status)
        ok("settings")
        # ValidateOnCallConnection
        code, problem = self.health(settings)
        if problem is not None:
            conn["oncall_api_url"] = {"ok": False, "error": "Error checking OnCall API health. %s. Status code: %d"
                                      % (problem, code)}
        else:
            try:
                url = go_join_path(settings["oncall_api_url"], "api/internal/v1/plugin/v2/status")
            except GoError as exc:
                return _go_error_response("error joining path: %s" % exc, 500)
            try:
                headers = self._oncall_user_headers(inst, settings, ident)
            except GoError as exc:
                return _go_error_response("error setting up request headers: %s " % exc, 500)
            headers["Content-Type"] = "application/json"
            try:
                code, _, _, body = go_http("GET", url, headers)
            except GoError as exc:
                return _go_error_response("error request to oncall: %s " % exc, 500)
            from urllib.parse import urlsplit
            if code != 200:
                if code in (401, 403):
                    bad("oncall_token", "Unauthorized/Forbidden while accessing OnCall engine: %s, status code: "
                        "%d, check token" % (urlsplit(url).path, code))
                else:
                    bad("oncall_api_url", "Unable to connect to OnCall engine: %s, status code: %d"
                        % (urlsplit(url).path, code))
            else:
                ok("oncall_api_url")
                ok("oncall_token")
                try:
                    engine = json.loads(body)
                    if not isinstance(engine, dict):
                        raise ValueError("not an object")
                except ValueError as exc:
                    return _go_error_response("error unmarshalling OnCallStatus: %s" % exc, 500)
                to_grafana = engine.get("connection_to_grafana") or {}
                if to_grafana.get("connected"):
                    ok("grafana_url_from_engine")
                else:
                    bad("grafana_url_from_plugin", "While contacting Grafana: %s from Engine: %s, received status: "
                        "%d, additional: %s" % (to_grafana.get("url") or "", settings["oncall_api_url"],
                                                int(to_grafana.get("status_code") or 0),
                                                to_grafana.get("message") or ""))
                status.update({"api_url": engine.get("api_url") or "", "license": engine.get("license") or "",
                               "currently_undergoing_maintenance_message":
                                   engine.get("currently_undergoing_maintenance_message") or "",
                               "version": engine.get("version") or ""})
        # ValidateGrafanaConnectionFromPlugin
        org_url = go_path_append(settings["grafana_url"], "api/org")
        try:
            code, _, _, _ = go_http("GET", org_url, {"Authorization": "Bearer %s" % settings["grafana_token"]})
        except GoError as exc:
            return _go_error_response("error making request: %s" % exc, 500)
        if code == 200:
            ok("grafana_url_from_plugin")
            ok("service_account_token")
        elif code in (401, 403):
            ok("grafana_url_from_plugin")
            bad("service_account_token", "Grafana %s, status code %d" % (org_url, code))
        else:
            bad("grafana_url_from_plugin", "Grafana %s, status code %d" % (org_url, code))
        response = _go_json_response(status)
        if all(conn[k]["ok"] for k in entries):
            self._sync_async(inst, setting, False)
        return response

    def proxy(self, req, inst: _OnCallInstance, ident: Identity, setting, path: str):
        """ProxyRequestToOnCall(w, req, "api/internal/v1/")."""
        from werkzeug.wrappers import Response
        body = req.get_data()
        try:
            settings = self.settings(setting)
        except GoError as exc:
            return _go_error_response(str(exc), 500)
        try:
            url = go_join_path(settings["oncall_api_url"], "api/internal/v1/", path)
        except GoError as exc:
            return _go_error_response(str(exc), 500)
        if req.query_string:
            url += "?" + req.query_string.decode("latin-1")
        headers = {k: v for k, v in req.headers.items()
                   if k.lower() not in ("authorization", "cookie", "set-cookie", "host", "content-length",
                                        "x-grafana-org-id", "connection", "accept-encoding")}
        try:
            headers.update(self._oncall_user_headers(inst, settings, ident))
        except GoError as exc:
            return _go_error_response(str(exc), 400)
        if req.method in ("POST", "PUT", "PATCH"):
            headers["Content-Type"] = "application/json"
        try:
            status, _, resp_headers, resp_body = go_http(req.method, url, headers, body if body else None)
        except GoError as exc:
            return _go_error_response(str(exc), 400)
        out = Response(resp_body, status=status)
        out.headers.clear()
        for name, values in resp_headers.items():
            if name.lower() in ("content-length", "transfer-encoding", "connection", "date", "server"):
                continue
            for value in values:
                out.headers.add(name, value)
        return out


DISABLE_PROVENANCE_HEADER = "X-Disable-Provenance"
REDACTED = "[REDACTED]"

# Settings Grafana stores encrypted and returns as "[REDACTED]", by integration type (dotted paths into
# the settings): channels_config.GetSecretKeysForContactPointType of the 13.x line (the "v1" integrations).
_WEBHOOK_TLS = ("tlsConfig.caCertificate", "tlsConfig.clientCertificate", "tlsConfig.clientKey")
SECURE_CONTACT_POINT_FIELDS = {
    "dingding": ("url",),
    "discord": ("url",),
    "email": (),
    "googlechat": ("url",),
    "jira": ("user", "password", "api_token"),
    "kafka": ("password",),
    "LINE": ("token",),
    "mqtt": ("password",) + _WEBHOOK_TLS,
    "oncall": ("password", "authorization_credentials"),
    "opsgenie": ("apiKey",),
    "pagerduty": ("integrationKey",),
    "prometheus-alertmanager": ("basicAuthPassword",),
    "pushover": ("apiToken", "userKey"),
    "sensugo": ("apikey",),
    "slack": ("token", "url"),
    "sns": ("sigv4.access_key", "sigv4.secret_key"),
    "teams": (),
    "telegram": ("bottoken",),
    "threema": ("api_secret",),
    "victorops": ("url",),
    "webex": ("bot_token",),
    "webhook": ("password", "authorization_credentials") + _WEBHOOK_TLS + (
        "hmacConfig.secret", "http_config.oauth2.client_secret", "http_config.oauth2.tls_config.caCertificate",
        "http_config.oauth2.tls_config.clientCertificate", "http_config.oauth2.tls_config.clientKey"),
    "wecom": ("url", "secret"),
}

# Required settings the stand-in checks (the integrations' own config validation); other types are
# accepted as they are.  The reasons are approximations of upstream's texts.
_REQUIRED_SETTINGS = {
    "email": ("addresses", "could not find addresses in settings"),
    "webhook": ("url", "required field 'url' is not specified"),
    "oncall": ("url", "required field 'url' is not specified"),
    "teams": ("url", "could not find url property in settings"),
    "discord": ("url", "could not find webhook url property in settings"),
    "googlechat": ("url", "could not find url property in settings"),
    "pagerduty": ("integrationKey", "could not find integration key property in settings"),
    "opsgenie": ("apiKey", "could not find api key property in settings"),
    "telegram": ("bottoken", "could not find Bot Token in settings"),
}


def _integration_problem(kind: str, settings: Dict[str, Any]) -> str:
    if kind == "slack":
        if settings.get("url"):
            return ""
        if not settings.get("token"):
            return "token must be specified when using the Slack chat API"
        if not settings.get("recipient"):
            return "recipient must be specified when using the Slack chat API"
        return ""
    if kind == "telegram" and settings.get("bottoken") and not settings.get("chatid"):
        return "could not find Chat Id in settings"
    required = _REQUIRED_SETTINGS.get(kind)
    if required and not settings.get(required[0]):
        return required[1]
    return ""


def _uid_problem(uid: str) -> str:
    # util.ValidateUID
    if len(uid) > 40:
        return "UID is longer than 40 symbols"
    if not _UID_RE.match(uid):
        return "invalid format of UID. Only letters, numbers, '-' and '_' are allowed"
    return ""


def _path_get(settings: Dict[str, Any], path: str) -> Any:
    node: Any = settings
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _path_set(settings: Dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = settings
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def _path_del(settings: Dict[str, Any], path: str) -> None:
    parts = path.split(".")
    node: Any = settings
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(parts[-1], None)


def _default_contact_point() -> Dict[str, Any]:
    """The receiver of upstream's default Alertmanager configuration (its integration has no uid)."""
    return {"uid": "", "name": "grafana-default-email", "type": "email",
            "settings": {"addresses": "<example@email.com>"}, "disableResolveMessage": False, "provenance": ""}


def default_policy() -> Dict[str, Any]:
    """The default policy tree of a fresh organisation (upstream's default Alertmanager configuration)."""
    return {"receiver": "grafana-default-email", "group_by": ["grafana_folder", "alertname"]}


def _policy_receivers(route: Dict[str, Any]) -> set:
    out = set()
    if route.get("receiver"):
        out.add(route["receiver"])
    for child in route.get("routes") or []:
        out |= _policy_receivers(child)
    return out


def _rename_receiver(route: Dict[str, Any], old: str, new: str) -> None:
    if route.get("receiver") == old:
        route["receiver"] = new
    for child in route.get("routes") or []:
        _rename_receiver(child, old, new)


def _check_provenance_transition(stored: str, wanted: str) -> None:
    """validation.ValidateProvenanceRelaxed: anything may leave 'none', nothing may go back to it."""
    if stored and not wanted:
        message = ("Resource with provenance status '%s' cannot be managed via API that handles resources with "
                   "provenance status 'none'. You must use appropriate API to manage this resource" % stored)
        raise errutil(403, "alerting.notifications.invalidProvenance", message,
                      extra={"SourceProvenance": stored, "TargetProvenance": "none"})


# -- the policy tree (definitions.Route) as Grafana decodes, validates and encodes it --------------

_PROM_DURATION = re.compile(r"^(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?"
                            r"(?:([0-9]+)s)?(?:([0-9]+)ms)?$")
_DURATION_UNITS = (("y", 365 * 24 * 3600 * 1000), ("w", 7 * 24 * 3600 * 1000), ("d", 24 * 3600 * 1000),
                   ("h", 3600 * 1000), ("m", 60 * 1000), ("s", 1000), ("ms", 1))
_MATCH_TYPES = ("=", "!=", "=~", "!~")  # labels.MatchType order, used when sorting


def parse_prom_duration(text: str) -> int:
    """prometheus/common model.ParseDuration, in milliseconds (ValueError when invalid)."""
    if text == "0":
        return 0
    match = _PROM_DURATION.match(text)
    if not text or not match:
        raise ValueError("not a valid duration string: %r" % text)
    return sum(int(v) * mult for v, (_, mult) in zip(match.groups(), _DURATION_UNITS) if v)


def format_prom_duration(ms: int) -> str:
    """model.Duration.String(): years and weeks only when exact ("90d", not "12w6d")."""
    if ms == 0:
        return "0s"
    out = ""
    for unit, mult in _DURATION_UNITS:
        if unit in ("y", "w") and ms % mult:
            continue
        if ms // mult:
            out += "%d%s" % (ms // mult, unit)
            ms -= (ms // mult) * mult
    return out


def _bad_request() -> ApiError:
    return err(400, "bad request data")


def _str_list(value: Any) -> List[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad_request()
    return list(value)


def _decode_route(obj: Any) -> Dict[str, Any]:
    """JSON -> definitions.Route -> JSON: what GET returns for what PUT was given (unknown keys dropped)."""
    if not isinstance(obj, dict):
        raise _bad_request()
    out: Dict[str, Any] = {}
    receiver = obj.get("receiver")
    if receiver is not None and not isinstance(receiver, str):
        raise _bad_request()
    if receiver:
        out["receiver"] = receiver
    for key in ("group_by", "matchers", "mute_time_intervals", "active_time_intervals"):
        values = _str_list(obj.get(key))
        if values:
            out[key] = sorted(values) if key == "matchers" else values
    for key in ("match", "match_re"):
        value = obj.get(key)
        if value is None:
            continue
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise _bad_request()
        if value:
            out[key] = dict(value)
    matchers = []
    raw = obj.get("object_matchers")
    if raw is not None and not isinstance(raw, list):
        raise _bad_request()
    for item in raw or []:
        if not isinstance(item, list) or len(item) != 3 or not all(isinstance(v, str) for v in item):
            raise _bad_request()
        name, op, value = item
        if op not in _MATCH_TYPES:
            raise _bad_request()  # unsupported match type
        # upstream trims one leading and one trailing double quote (old UI bug, grafana#50040)
        value = value[1:] if value.startswith('"') else value
        value = value[:-1] if value.endswith('"') else value
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error:
                raise _bad_request() from None
        matchers.append([name, op, value])
    if matchers:
        out["object_matchers"] = sorted(matchers, key=lambda m: (m[0], m[2], _MATCH_TYPES.index(m[1])))
    cont = obj.get("continue")
    if cont is not None and not isinstance(cont, bool):
        raise _bad_request()
    if cont:
        out["continue"] = True
    routes = obj.get("routes")
    if routes is not None and not isinstance(routes, list):
        raise _bad_request()
    children = [_decode_route(child) for child in routes or [] if child is not None]
    if children:
        out["routes"] = children
    for key in ("group_wait", "group_interval", "repeat_interval"):
        value = obj.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise _bad_request()
        try:
            out[key] = format_prom_duration(parse_prom_duration(value))
        except ValueError:
            raise _bad_request() from None
    return out


def _route_problem(route: Dict[str, Any], root: bool = False) -> str:
    """Route.Validate (root) / ValidateChild."""
    if root:
        if not route.get("receiver"):
            return "root route must specify a default receiver"
        if any(route.get(k) for k in ("match", "match_re", "matchers", "object_matchers")):
            return "root route must not have any matchers"
        if route.get("mute_time_intervals"):
            return "root route must not have any mute time intervals"
        if route.get("active_time_intervals"):
            return "root route must not have any active time intervals"
    group_by = route.get("group_by") or []
    labels = [g for g in group_by if g != "..."]
    if "..." in group_by and labels:
        return "cannot have wildcard group_by (`...`) and other other labels at the same time"
    seen = set()
    for label in labels:
        if label in seen:
            return 'duplicated label "%s" in group_by, %s [%s]' % (label, route.get("receiver", ""), " ".join(labels))
        seen.add(label)
    for key in ("group_interval", "repeat_interval"):
        if route.get(key) == "0s":
            return "%s cannot be zero" % key
    for child in route.get("routes") or []:
        problem = _route_problem(child)
        if problem:
            return problem
    return ""


def _route_reference_problem(route: Dict[str, Any], receivers: set, time_intervals: set) -> str:
    """ValidateReceivers and ValidateTimeIntervals (the stand-in serves no time intervals)."""
    if route.get("receiver", "") not in receivers:
        return "receiver '%s' does not exist" % route.get("receiver", "")
    for key, kind in (("mute_time_intervals", "mute"), ("active_time_intervals", "active")):
        for name in route.get(key) or []:
            if name not in time_intervals:
                return "%s time interval '%s' does not exist" % (kind, name)
    for child in route.get("routes") or []:
        problem = _route_reference_problem(child, receivers, time_intervals)
        if problem:
            return problem
    return ""


def _route_invalid(problem: str) -> ApiError:
    return errutil(400, "alerting.notifications.routes.invalidFormat",
                   "Invalid format of the submitted route: %s. Correct the payload and try again." % problem,
                   extra={"Error": problem})


# ---------------------------------------------------------------------------
# logging (Grafana's logfmt shape: logger=... t=... level=... msg=...)
# ---------------------------------------------------------------------------

class GrafanaLogger(fw.Logger):
    """Grafana's log lines to stderr and, with ``[log.file]``, a file; ``logger=`` (default ``server``) names the
    part of Grafana that logs, as Grafana does."""

    LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40, "critical": 50}

    def __init__(self, level: str = "info", file_path: str = "", stream=None):
        super().__init__("grafana", level=level, stream=stream)
        self.file = None
        if file_path:
            try:
                os.makedirs(os.path.dirname(file_path), exist_ok=True)
                self.file = open(file_path, "a", encoding="utf-8")  # noqa: SIM115 - kept open while running
            except OSError as exc:
                self.warn("Failed to open log file", logger="log", path=file_path, error=exc.strerror)

    def format_line(self, level: str, msg: str, kv: Dict[str, Any]) -> str:
        logger = kv.pop("logger", "server")
        now = _dt.datetime.now(_dt.timezone.utc)
        ts = now.strftime("%Y-%m-%dT%H:%M:%S.") + "%09dZ" % (now.microsecond * 1000)
        parts = ["logger=%s" % logger, "t=%s" % ts, "level=%s" % level, "msg=%s" % self._lf(msg)]
        parts += ["%s=%s" % (k, self._lf(v)) for k, v in kv.items()]
        return " ".join(parts)

    def outputs(self) -> Sequence[Any]:
        return [out for out in (self.stream, self.file) if out is not None]

    def close(self):
        if self.file is not None:
            self.file.close()


# ---------------------------------------------------------------------------
# server lifecycle
# ---------------------------------------------------------------------------

class GrafanaServer:
    """Settings + store + app + HTTP service; usable in-process by tests."""

    def __init__(self, settings: Settings, log: Optional[GrafanaLogger] = None):
        self.settings = settings
        if settings.db_type != "sqlite3":
            raise IniError("the o11y.stack stand-in supports only [database] type = sqlite3, got %r"
                           % settings.db_type)
        self.log = log or GrafanaLogger(level="error")
        os.makedirs(settings.data, exist_ok=True)
        self.store = Store(settings.db_path)
        self.app = GrafanaApp(settings, self.store, self.log)
        addr = settings.get("server", "http_addr", "")
        port = settings.get("server", "http_port", "3000")
        if not re.fullmatch(r"\d+", port) or int(port) > 65535:
            raise IniError("listen tcp: address %s: invalid port" % port)
        protocol = settings.get("server", "protocol", "http")
        ssl_context = None
        if protocol == "https":
            import ssl
            cert, key = settings.get("server", "cert_file"), settings.get("server", "cert_key")
            if not cert or not key:
                raise IniError("cert_file and cert_key must be set when protocol is https")
            ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ssl_context.load_cert_chain(cert, key)
        elif protocol not in ("http",):
            raise IniError("the o11y.stack stand-in serves only protocol http or https, got %r" % protocol)
        host = addr if ":" not in addr else "[%s]" % addr
        self.http = fw.HTTPService("http", "%s:%s" % (host, port), self.app, ssl_context=ssl_context)
        self.protocol = protocol

    def start(self) -> "GrafanaServer":
        self.http.start()
        return self

    @property
    def url(self) -> str:
        return self.http.url

    def stop(self) -> None:
        self.http.stop()
        self.store.close()


def make_homepath(path: str) -> str:
    """Write ``<path>/conf/defaults.ini`` (what the release tarball ships); returns *path*."""
    os.makedirs(os.path.join(path, "conf"), exist_ok=True)
    with open(os.path.join(path, "conf", "defaults.ini"), "w", encoding="utf-8") as fh:
        fh.write(DEFAULTS_INI)
    return path


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

SERVER_FLAGS = [
    fw.CliFlag("config", "string", "", "Path to config file"),
    fw.CliFlag("homepath", "string", "", "Path to Grafana install/home path, defaults to working directory"),
    fw.CliFlag("pidfile", "string", "", "Path to Grafana pid file"),
    fw.CliFlag("packaging", "string", "unknown", "describes the way Grafana was installed"),
    fw.CliFlag("configOverrides", "string", "", "Configuration options to override defaults as a string. "
                                                  "e.g. cfg:default.paths.log=/dev/null"),
    fw.CliFlag("version, v", "bool", False, "print the version"),
    fw.CliFlag("vv", "bool", False, "prints current version, all dependencies and exits"),
    fw.CliFlag("profile", "bool", False, "Turn on pprof profiling"),
    fw.CliFlag("profile-addr", "string", "localhost", "Define custom address for profiling"),
    fw.CliFlag("profile-port", "int", 6060, "Define custom port for profiling"),
    fw.CliFlag("tracing", "bool", False, "Turn on tracing"),
    fw.CliFlag("tracing-file", "string", "trace.out", "Define tracing output file"),
]

CLI_FLAGS = [
    fw.CliFlag("homepath", "string", "", "Path to Grafana install/home path, defaults to working directory"),
    fw.CliFlag("config", "string", "", "Path to config file"),
    fw.CliFlag("configOverrides", "string", "", "Configuration options to override defaults as a string."),
    fw.CliFlag("debug, d", "bool", False, "Enable debug logging"),
    fw.CliFlag("pluginsDir", "string", "", "Path to the Grafana plugin directory"),
]

DEPRECATION = ("Deprecation warning: The standalone 'grafana-server' program is deprecated and will be removed in "
               "the future. Please update all uses of 'grafana-server' to 'grafana server'\n")


def _info() -> Dict[str, str]:
    info = fw.build_info()
    if info["version"] == "0.0.0-standin":  # not built by the mirror builder: the pinned release
        info.update(version=DEFAULT_VERSION, revision=DEFAULT_REVISION, goversion=DEFAULT_GOVERSION)
    return info


def _overrides(ctx: fw.CliContext) -> List[str]:
    items = [a for a in ctx.args if a.startswith("cfg:")]
    text = ctx.value("configOverrides") or ""
    items = [o for o in text.split() if o.startswith("cfg:")] + items
    return items


def run_server(ctx: fw.CliContext) -> int:
    info = _info()
    if ctx.value("version") or ctx.value("vv"):
        print("Version %s (commit: %s, branch: %s)" % (info["version"], info["revision"][:10], info["branch"]))
        return 0
    homepath = ctx.value("homepath") or os.getcwd()
    try:
        settings = Settings(homepath, ctx.value("config"), _overrides(ctx))
    except IniError as exc:
        sys.stderr.write("Grafana-server Init Failed: %s\n" % exc)
        return 1
    modes = settings.get("log", "mode", "console file").split()
    log = GrafanaLogger(level=settings.get("log", "level", "info"),
                        file_path=os.path.join(settings.logs, "grafana.log") if "file" in modes else "")
    log.info("Starting Grafana", logger="server", version=info["version"], commit=info["revision"][:10],
             branch=info["branch"], compiled=info.get("build_date", ""))
    log.info("Config loaded from", logger="settings", file=os.path.join(settings.homepath, "conf", "defaults.ini"))
    if settings.config_file:
        log.info("Config loaded from", logger="settings", file=settings.config_file)
    log.info("Path Home", logger="settings", path=settings.homepath)
    log.info("Path Data", logger="settings", path=settings.data)
    log.info("Path Logs", logger="settings", path=settings.logs)
    log.info("Path Plugins", logger="settings", path=settings.plugins)
    log.info("Path Provisioning", logger="settings", path=settings.provisioning)
    shutdown = fw.ShutdownSignal()
    try:
        server = GrafanaServer(settings, log)
    except (IniError, OSError, sqlite3.Error) as exc:
        log.error("Server shutdown", logger="server", error=str(exc))
        sys.stderr.write("Grafana server failed: %s\n" % exc)
        return 1
    try:
        server.start()
    except OSError as exc:
        log.error("Stopped background service", logger="server", reason=str(exc))
        sys.stderr.write("Failed to start grafana. error: %s\n" % exc)
        server.store.close()
        return 1
    pidfile = ctx.value("pidfile")
    if pidfile:
        with open(pidfile, "w", encoding="utf-8") as fh:
            fh.write(str(os.getpid()))
    log.info("HTTP Server Listen", logger="http.server", address=server.http.address, protocol=server.protocol,
             subUrl="", socket="")
    fw.sd_notify("READY=1")

    def on_shutdown():
        fw.sd_notify("STOPPING=1")
        server.store.close()
        log.info("Stopped Grafana", logger="server")
        log.close()

    return fw.run_until_signal([server.http], on_shutdown=on_shutdown, shutdown=shutdown)


def run_cli(ctx: fw.CliContext) -> int:
    args = [a for a in ctx.args if not a.startswith("cfg:")]
    if args[:2] != ["admin", "reset-admin-password"] or len(args) != 3:
        sys.stderr.write("Error: ✗ the o11y.stack stand-in implements only "
                         "'grafana cli admin reset-admin-password <new password>'\n")
        return 1
    try:
        settings = Settings(ctx.value("homepath") or os.getcwd(), ctx.value("config"), _overrides(ctx))
        store = Store(settings.db_path)
    except (IniError, OSError, sqlite3.Error) as exc:
        sys.stderr.write("Error: ✗ %s\n" % exc)
        return 1
    login = settings.get("security", "admin_user", "admin")
    user = next((u for u in store.state["users"].values()
                 if not u.get("is_service_account") and u["login"] == login), None)
    if user is None:
        user = next((u for u in store.state["users"].values() if u.get("id") == 1), None)
    if user is None:
        sys.stderr.write("Error: ✗ could not read user from database. Error: user not found\n")
        store.close()
        return 1
    user["password"] = password_hash(args[2], user["salt"])
    store.save()
    store.close()
    print("\nAdmin password changed successfully ✔\n")
    return 0


def make_app() -> fw.CliApp:
    info = _info()
    return fw.CliApp(
        "grafana", usage="Grafana server and command line interface", version=info["version"],
        commands=[
            fw.CliCommand("server", "run the grafana server", run_server, flags=SERVER_FLAGS,
                          args_usage="[cfg:section.key=value ...]"),
            fw.CliCommand("cli", "run the grafana cli", run_cli, flags=CLI_FLAGS,
                          args_usage="admin reset-admin-password <new password>"),
        ])


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: ``argv`` includes the program name (``grafana`` or ``grafana-server``)."""
    argv = list(sys.argv if argv is None else argv)
    try:
        args = argv[1:]
        if os.path.basename(argv[0] if argv else "") == "grafana-server":
            sys.stderr.write(DEPRECATION)
            args = ["server"] + args
        return make_app().run(args)
    except fw.StandinExit as exc:
        return int(exc.code or 0)


if __name__ == "__main__":  # python -m o11y_standins.grafana
    sys.exit(main())
