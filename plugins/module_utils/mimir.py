# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Grafana Mimir HTTP API client shared by the o11y.stack Mimir modules.

Only ansible-core and the Python standard library: requests go through
``ansible.module_utils.urls.open_url``, YAML through
``ansible.module_utils.common.yaml`` (PyYAML, which ansible-core itself needs).
Written against the HTTP API of Grafana Mimir 3.1:

* the Alertmanager configuration API: ``GET``/``POST``/``DELETE /api/v1/alerts``
  (YAML ``{template_files: {name: text}, alertmanager_config: "<yaml>"}``;
  POST answers 201, DELETE 200, GET 404 ``alertmanager storage object not found``);
* the ruler configuration API under the Prometheus HTTP prefix (``/prometheus``
  by default, ``api.prometheus_http_prefix``): ``GET``/``DELETE
  <prefix>/config/v1/rules/{namespace}/{group}`` and ``POST
  <prefix>/config/v1/rules/{namespace}`` (one YAML rule group, 202 Accepted);
  a missing group answers 404 ``group does not exist``.

Every request names the tenant in ``X-Scope-OrgID``.  With multi-tenancy
disabled Mimir ignores the header and uses ``-auth.no-auth-tenant``
(``anonymous`` by default), so the default tenant ``anonymous`` addresses the
same data in both modes.

Every failure is a :class:`MimirError` whose message carries Mimir's own
error text (with webhook URLs and other secrets removed) and says what to fix.
"""

from __future__ import annotations

import copy
import http.client
import json
import re
import ssl
from urllib.error import HTTPError, URLError

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.yaml import HAS_YAML, yaml_dump, yaml_load
from ansible.module_utils.urls import open_url

from ansible_collections.o11y.stack.plugins.module_utils.http_api import (
    ApiError,
    base_url_problem,
    connection_problem,
    quote_path,
    run_api_module,
)

TESTED_MIMIR_VERSION = "3.1.1"

MIMIR_ARGUMENT_SPEC = {
    "mimir_url": {"type": "str", "required": True},
    "tenant": {"type": "str", "default": "anonymous"},
    "mimir_user": {"type": "str"},
    "mimir_password": {"type": "str", "no_log": True},
    "mimir_token": {"type": "str", "no_log": True},
    "headers": {"type": "dict"},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
    "timeout": {"type": "int", "default": 30},
}
"""Connection options every Mimir module takes (see the ``o11y.stack.mimir`` doc fragment)."""

ALERTMANAGER_CONFIG_PATH = "/api/v1/alerts"
DEFAULT_PROMETHEUS_PREFIX = "/prometheus"
TENANT_HEADER = "X-Scope-OrgID"
REDACTED = "[REDACTED]"
REDACTED_CHANGED = "[REDACTED, changed]"

# What Mimir's handlers answer for a missing object, as opposed to a route that does not exist
# ("404 page not found"): that one means a wrong URL or a disabled API and is an error.
ALERTMANAGER_CONFIG_MISSING = "alertmanager storage object not found"
RULE_GROUP_MISSING = "group does not exist"

# dskit tenant.ValidTenantID: these characters, at most 150 of them, not "." or "..".
TENANT_RE = re.compile(r"^[a-zA-Z0-9!\-_.*'()]{1,150}$")
# Prometheus model.ParseDuration: units from years down to milliseconds, each at most once, in order.
_MODEL_DURATION_RE = re.compile(r"^(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?"
                                r"(?:([0-9]+)s)?(?:([0-9]+)ms)?$")
_MODEL_DURATION_UNITS = (("y", 365 * 86400000), ("w", 7 * 86400000), ("d", 86400000), ("h", 3600000),
                         ("m", 60000), ("s", 1000), ("ms", 1))
_URL_IN_TEXT_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")


def mimir_argument_spec():
    """A fresh copy of the connection options (safe to modify)."""
    return copy.deepcopy(MIMIR_ARGUMENT_SPEC)


def mimir_module(argument_spec, **constraints):
    """The AnsibleModule of a Mimir module: the connection options plus *argument_spec*, with check mode.

    *constraints* (``required_if``, ``mutually_exclusive``, ...: lists) are added to the connection options' own.
    Fails when PyYAML (which ansible-core itself needs) cannot be imported.
    """
    spec = mimir_argument_spec()
    spec.update(argument_spec)
    kwargs = {
        "mutually_exclusive": [("mimir_token", "mimir_user")],
        "required_together": [("mimir_user", "mimir_password")],
    }
    for key, value in constraints.items():
        kwargs[key] = kwargs.get(key, []) + list(value)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True, **kwargs)
    if not HAS_YAML:  # pragma: no cover - PyYAML ships with ansible-core
        module.fail_json(msg=missing_required_lib("PyYAML") + " (Mimir's configuration APIs speak YAML)")
    return module


def run_mimir_module(module, present, absent=None, secrets=()):
    """Run ``present(module, client)`` (``absent`` with state=absent) and exit with the result it returns.

    A failed API call ends the module with Mimir's error text (without *secrets*) and what to fix.
    """
    run_api_module(module, lambda m: MimirClient(m.params, secrets=secrets), MimirError, present, absent)


# -- YAML and durations -----------------------------------------------------------------------

def to_yaml(data):
    """Block-style YAML of *data* in the given key order (what Mimir and Alertmanager parse)."""
    return yaml_dump(data, default_flow_style=False, sort_keys=False, allow_unicode=True, width=100000)


def from_yaml(text):
    """*text* parsed as YAML; ValueError with the parser's message when it is not YAML."""
    try:
        return yaml_load(text)
    except Exception as exc:  # yaml.YAMLError and friends; PyYAML is imported lazily by ansible
        raise ValueError(str(exc).replace("\n", " ")) from None


def normalise_yaml_data(data):
    """*data* as it reads back after a YAML round trip (tuples become lists, keys keep their types)."""
    return from_yaml(to_yaml(data))


def parse_model_duration(text):
    """Milliseconds of a Prometheus duration (``1h30m``, ``90s``, ``2w``, ``0``); ValueError like Prometheus."""
    if not isinstance(text, str):
        text = str(text)
    if text == "":
        raise ValueError("empty duration string")
    if text == "0":
        return 0
    match = _MODEL_DURATION_RE.match(text)
    if not match or not any(match.groups()):
        raise ValueError(f'not a valid duration string: "{text}"')
    return sum(int(value) * size for value, (unit, size) in zip(match.groups(), _MODEL_DURATION_UNITS) if value)


def format_model_duration(millis):
    """A duration as Prometheus prints it (``model.Duration.String``): ``90s`` -> ``1m30s``, ``7d`` -> ``1w``."""
    if millis == 0:
        return "0s"
    out = ""
    for unit, size in _MODEL_DURATION_UNITS:
        exact_only = unit in ("y", "w")  # years and weeks only when nothing is left over (90d, not 12w6d)
        if exact_only and millis % size:
            continue
        value, millis = divmod(millis, size)
        if value:
            out += f"{value}{unit}"
    return out


def canonical_duration(text):
    """*text* as Mimir returns it (``60s`` -> ``1m``); None for an unset or zero duration (omitted by Mimir)."""
    if text is None or text == "":
        return None
    millis = parse_model_duration(text)
    return format_model_duration(millis) if millis else None


# -- secrets in Alertmanager configurations -----------------------------------------------------

_SECRET_KEY_SUFFIXES = ("url", "password", "secret", "token", "key", "credentials")


def is_secret_key(key):
    """Whether a configuration key holds a URL or a secret (webhook URLs carry tokens, e.g. OnCall's)."""
    name = str(key).lower()
    return name.endswith(_SECRET_KEY_SUFFIXES) and not name.endswith("_file")


def secret_values(data):
    """Every non-empty string held under a secret key anywhere in *data*."""
    found = set()

    def walk(node, secret):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, secret or is_secret_key(key))
        elif isinstance(node, list):
            for item in node:
                walk(item, secret)
        elif secret and isinstance(node, str) and node:
            found.add(node)

    walk(data, False)
    return found


def redact(data, compare_to=None):
    """A copy of *data* with the values under secret keys replaced by ``[REDACTED]``.

    With *compare_to* (the other side of a diff), a value that differs from the value at the same place
    there reads ``[REDACTED, changed]``, so that a diff shows which secret changes without showing it.
    """
    def walk(node, other, secret):
        if isinstance(node, dict):
            other = other if isinstance(other, dict) else {}
            return {key: walk(value, other.get(key, _ABSENT), secret or is_secret_key(key))
                    for key, value in node.items()}
        if isinstance(node, list):
            other = other if isinstance(other, list) else []
            return [walk(item, other[index] if index < len(other) else _ABSENT, secret)
                    for index, item in enumerate(node)]
        if secret and node is not None and not isinstance(node, bool):
            if compare_to is not None and other is not _ABSENT and other != node:
                return REDACTED_CHANGED
            return REDACTED
        return node

    return walk(data, compare_to if compare_to is not None else _ABSENT, False)


_ABSENT = object()


def scrub(text, secrets=()):
    """*text* without the *secrets* and without any URL (a URL in an error text may carry a token)."""
    if not text:
        return text
    for value in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return _URL_IN_TEXT_RE.sub("[URL REDACTED]", text)


# -- errors ------------------------------------------------------------------------------------

class MimirError(ApiError):
    """A Mimir API call failed; ``message`` says what happened and what to fix."""


def validate_mimir_url(url):
    """An error message for an unusable mimir_url, or None."""
    return base_url_problem(url, "mimir_url", "Mimir's HTTP address", "http://mimir.example.com:9009",
                            "use mimir_user/mimir_password or mimir_token")


def tenant_problem(tenant):
    """Why *tenant* is not a tenant ID Mimir accepts (None when it is)."""
    if tenant is None or tenant == "":
        return ("tenant must not be empty; use the tenant ID Mimir stores the data under (anonymous when "
                "multi-tenancy is disabled)")
    if "|" in tenant:
        return (f"tenant {tenant!r} names several tenants; the configuration APIs work on one tenant at a time "
                "(only queries federate tenants)")
    if tenant in (".", ".."):
        return f"tenant {tenant!r} is not a valid tenant ID"
    if not TENANT_RE.match(tenant):
        return (f"tenant {tenant!r} is not a valid Mimir tenant ID: use at most 150 characters out of a-z, A-Z, 0-9 "
                "and ! - _ . * ' ( )")
    return None


def _status_text(body):
    """Mimir's own error text from a response body (plain text, or the JSON of the Prometheus-style handlers)."""
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or "")
    if isinstance(body, str):
        return body.strip()
    return ""


# -- the client --------------------------------------------------------------------------------

_CONNECTION_WORDING = {"service": "Mimir", "certificate": "the", "server": "Mimir", "health": "GET /ready",
                       "option": "mimir_url", "running": "Mimir"}


class MimirClient:
    """A small client for Mimir's configuration APIs.

    ``params`` are the module parameters (see :data:`MIMIR_ARGUMENT_SPEC`); *secrets* are strings (webhook URLs,
    passwords) that never appear in an error message.
    """

    def __init__(self, params, secrets=()):
        url = params.get("mimir_url")
        problem = validate_mimir_url(url)
        if problem:
            raise MimirError(problem)
        self.base_url = url.rstrip("/")
        self.tenant = params.get("tenant") or "anonymous"
        problem = tenant_problem(self.tenant)
        if problem:
            raise MimirError(problem)
        self.user = params.get("mimir_user")
        self.password = params.get("mimir_password")
        self.token = params.get("mimir_token")
        self.extra_headers = {str(k): str(v) for k, v in (params.get("headers") or {}).items()}
        for name in self.extra_headers:
            if name.lower() == TENANT_HEADER.lower():
                raise MimirError(f"headers must not set {TENANT_HEADER}; use the tenant option")
        self.validate_certs = params.get("validate_certs", True)
        self.ca_path = params.get("ca_path")
        self.timeout = params.get("timeout") or 30
        self.secrets = set(secrets or ())

    # -- requests ------------------------------------------------------------
    def request(self, method, path, data=None, content_type=None, missing=None, hints=None):
        """Send one request; return ``(status, text of the answer)``.

        With *missing* (Mimir's text for a missing object) a 404 answer with that text returns ``(404, None)``;
        any other 404 (a route that does not exist: wrong URL, API disabled) raises. ``hints`` maps an HTTP
        status to a sentence appended to the error message. Raises MimirError for every other failure.
        """
        url = self.base_url + path
        headers = {TENANT_HEADER: self.tenant, "Accept": "application/yaml, application/json, text/plain"}
        headers.update(self.extra_headers)
        if data is not None:
            headers["Content-Type"] = content_type or "application/yaml"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        kwargs = {
            "method": method,
            "data": data,
            "headers": headers,
            "validate_certs": self.validate_certs,
            "timeout": self.timeout,
            "http_agent": "o11y.stack-mimir",
            "follow_redirects": "none",
        }
        if self.ca_path:
            kwargs["ca_path"] = self.ca_path
        if self.user:
            kwargs.update(url_username=self.user, url_password=self.password, force_basic_auth=True)
        try:
            response = open_url(url, **kwargs)
            status = response.getcode()
            raw = response.read()
        except HTTPError as exc:
            raw = exc.read() if hasattr(exc, "read") else b""
            body = self._decode(raw)
            text = _status_text(body)
            if exc.code == 404 and missing and text == missing:
                return 404, None
            error = self._http_error(exc.code, method, path, body)
            hint = (hints or {}).get(exc.code)
            if hint:
                error.message = f"{error.message}. {hint}"
                error.args = (error.message,)
            raise error from None
        except (URLError, OSError, ssl.SSLError, http.client.HTTPException, ValueError) as exc:
            raise self._connection_error(exc, method, path) from None
        return status, raw.decode("utf-8", "replace")

    def _decode(self, raw):
        """An error body: decoded JSON when it is JSON, else text; secrets and URLs removed."""
        if not raw:
            return None
        text = raw.decode("utf-8", "replace")[:4000]
        try:
            data = json.loads(text)
        except ValueError:
            return scrub(text.strip(), self.secrets)
        if isinstance(data, dict):
            return {k: scrub(v, self.secrets) if isinstance(v, str) else v for k, v in data.items()}
        return scrub(text.strip(), self.secrets)

    def _http_error(self, status, method, path, body):
        text = _status_text(body)
        said = f"Mimir answered {method} {path} with HTTP {status}" + (f": {text}" if text else "")
        if 300 <= status < 400:
            message = (f"Mimir at {self.base_url} answered {method} {path} with a redirect ({status}); check "
                       "mimir_url: use the address Mimir (or its gateway) is served at, including the scheme and any "
                       "sub-path (server.http_path_prefix)")
        elif status == 401:
            message = (f"{said}. Mimir (or a gateway in front of it) did not accept the request for tenant "
                       f"{self.tenant!r}: with multi-tenancy enabled every request needs a valid tenant (sent as "
                       f"{TENANT_HEADER}); behind an authenticating gateway check mimir_user/mimir_password or "
                       "mimir_token")
        elif status == 403:
            message = (f"{said}. The request is not allowed: check the credentials' permissions at the gateway, and "
                       "for rule groups whether the namespace is protected (ruler_protected_namespaces)")
        elif status == 404:
            message = (f"{said}. Check mimir_url (including server.http_path_prefix) and that the API is enabled on "
                       "that Mimir: the component must run in its -target and its enable_api setting must be true")
        elif status == 405:
            message = f"{said}. The URL does not lead to Mimir's API; check mimir_url"
        elif status == 422:
            message = f"{said}. Name exactly one tenant in the tenant option"
        elif status == 429:
            message = f"{said}. Mimir is rate limiting this tenant; run the task again later"
        elif status == 400 and method == "GET":
            # a read sends nothing to reject: Mimir answers 400 when it cannot read its object storage
            message = (f"{said}. Mimir could not read the object from its storage: check the Mimir log "
                       "(journalctl -u mimir) and the ruler and alertmanager buckets")
        elif status == 400:
            message = f"{said}. Mimir rejected the request as invalid; fix the module options"
        elif status >= 500:
            message = (f"{said}. Mimir failed on its side: check the Mimir log (journalctl -u mimir) and its object "
                       "storage (the ruler and alertmanager buckets), then run the task again")
        else:
            message = said
        return MimirError(message, status=status, method=method, path=path, body=body)

    def _connection_error(self, exc, method, path):
        return MimirError(connection_problem(exc, method, path, self.base_url, self.timeout, _CONNECTION_WORDING),
                          method=method, path=path)

    def _yaml_answer(self, text, method, path):
        try:
            return from_yaml(text)
        except ValueError as exc:
            raise MimirError(f"Mimir answered {method} {path} with something that is not YAML ({exc}); check that "
                             "mimir_url points at Mimir itself", method=method, path=path) from None

    # -- Alertmanager configuration API ------------------------------------------
    def alertmanager_config(self):
        """The tenant's stored Alertmanager configuration or None.

        Returns ``{"alertmanager_config": "<yaml text>", "template_files": {name: text}}`` as Mimir keeps it.
        """
        path = ALERTMANAGER_CONFIG_PATH
        status, text = self.request("GET", path, missing=ALERTMANAGER_CONFIG_MISSING, hints={
            404: "The Alertmanager configuration API needs the alertmanager component (-target=all or alertmanager) "
                 "and alertmanager.enable_api: true"})
        if status == 404:
            return None
        data = self._yaml_answer(text, "GET", path)
        if not isinstance(data, dict):
            raise MimirError(f"Mimir answered GET {path} with YAML that is not a mapping; check that mimir_url points "
                             "at Mimir itself", status=status, method="GET", path=path)
        return {"alertmanager_config": data.get("alertmanager_config") or "",
                "template_files": dict(data.get("template_files") or {})}

    def set_alertmanager_config(self, config_text, templates):
        """Store the tenant's Alertmanager configuration (*config_text*: YAML text) with its template files (201)."""
        body = to_yaml({"template_files": dict(templates or {}), "alertmanager_config": config_text})
        self.request("POST", ALERTMANAGER_CONFIG_PATH, data=body.encode("utf-8"), hints={
            400: "Fix config or templates (Mimir checks them like Alertmanager does, and refuses *_file settings, "
                 "proxy_url and TLS files)",
            404: "The Alertmanager configuration API needs the alertmanager component and alertmanager.enable_api: "
                 "true"})

    def delete_alertmanager_config(self):
        """Delete the tenant's Alertmanager configuration (200, also when there is none)."""
        self.request("DELETE", ALERTMANAGER_CONFIG_PATH, hints={
            404: "The Alertmanager configuration API needs the alertmanager component and alertmanager.enable_api: "
                 "true"})

    # -- ruler configuration API ---------------------------------------------------
    @staticmethod
    def rules_path(prefix, namespace, group=None):
        """``<prefix>/config/v1/rules/<namespace>[/<group>]`` with each name percent-encoded (``/`` too)."""
        path = prefix.rstrip("/") + "/config/v1/rules/" + quote_segment(namespace)
        if group is not None:
            path += "/" + quote_segment(group)
        return path

    _RULER_404 = ("The ruler configuration API needs the ruler component (-target=all or ruler), ruler.enable_api: "
                  "true, and the Prometheus HTTP prefix Mimir uses (prometheus_http_prefix, api.prometheus_http_prefix)")

    def rule_group(self, namespace, group, prefix=DEFAULT_PROMETHEUS_PREFIX):
        """The rule group as Mimir returns it (a dict) or None."""
        path = self.rules_path(prefix, namespace, group)
        status, text = self.request("GET", path, missing=RULE_GROUP_MISSING, hints={404: self._RULER_404})
        if status == 404:
            return None
        data = self._yaml_answer(text, "GET", path)
        if not isinstance(data, dict):
            raise MimirError(f"Mimir answered GET {path} with YAML that is not a rule group; check mimir_url and "
                             "prometheus_http_prefix", status=status, method="GET", path=path)
        return data

    def set_rule_group(self, namespace, group, prefix=DEFAULT_PROMETHEUS_PREFIX):
        """Create or replace one rule group (a dict in Prometheus rule format) in *namespace* (202)."""
        path = self.rules_path(prefix, namespace)
        self.request("POST", path, data=to_yaml(group).encode("utf-8"), hints={
            400: ("Fix the rule group; Mimir also limits the rules per group (limits.ruler_max_rules_per_rule_group, "
                  "20 by default) and the groups per tenant (limits.ruler_max_rule_groups_per_tenant, 70)"),
            404: self._RULER_404})

    def delete_rule_group(self, namespace, group, prefix=DEFAULT_PROMETHEUS_PREFIX):
        """Delete one rule group (202); False when it did not exist (404 ``group does not exist``)."""
        path = self.rules_path(prefix, namespace, group)
        status, _text = self.request("DELETE", path, missing=RULE_GROUP_MISSING, hints={404: self._RULER_404})
        return status != 404


# Mimir's ruler API takes RFC 3986 segments, "/" as %2F: the shared path-segment quoting.
quote_segment = quote_path
