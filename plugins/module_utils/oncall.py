# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Grafana OnCall public API (v1) client shared by the o11y.stack OnCall modules.

Only ansible-core and the Python standard library: requests go through
``ansible.module_utils.urls.open_url``.  Written against the OnCall OSS engine
v1.16.9 (the last release; OnCall OSS is archived upstream).

The public API authenticates with ``Authorization: <token>`` (an OnCall API
token as created under OnCall > Settings > API tokens, sent without ``Bearer``)
or a Grafana service account token (``glsa_...``) together with the
``X-Grafana-URL`` header.  An invalid token is answered with 403, not 401,
because the engine's authenticators send no challenge.

Modules hold only their options and the desired-vs-current comparison::

    from ansible_collections.o11y.stack.plugins.module_utils.oncall import (
        diff_result, oncall_module, run_oncall_module)

    def ensure_present(module, client):
        current = client.find_one("escalation_chains", module.params["name"])
        ...

    def main():
        module = oncall_module({"name": {"type": "str", "required": True}, ...})
        run_oncall_module(module, ensure_present, ensure_absent)
"""

from __future__ import annotations

import copy
import http.client
import json
import ssl
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.o11y.stack.plugins.module_utils.http_api import (
    ApiError,
    base_url_problem,
    connection_problem,
    quote_path,
    run_api_module,
)

TESTED_ONCALL_VERSION = "1.16.9"

ONCALL_ARGUMENT_SPEC = {
    "oncall_url": {"type": "str", "required": True},
    "oncall_api_token": {"type": "str", "required": True, "no_log": True},
    "oncall_grafana_url": {"type": "str"},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
    "timeout": {"type": "int", "default": 30},
}
"""Connection options every OnCall module takes (see the ``o11y.stack.oncall`` doc fragment)."""

MAX_PAGES = 1000


def oncall_argument_spec():
    """A fresh copy of the connection options (safe to modify)."""
    return copy.deepcopy(ONCALL_ARGUMENT_SPEC)


def oncall_module(argument_spec, **constraints):
    """The AnsibleModule of an OnCall module: the connection options plus *argument_spec*, with check mode."""
    spec = oncall_argument_spec()
    spec.update(argument_spec)
    return AnsibleModule(argument_spec=spec, supports_check_mode=True, **constraints)


def run_oncall_module(module, present, absent=None):
    """Run ``present(module, client)`` (``absent`` with state=absent) and exit with the result it returns.

    A failed API call ends the module with the engine's error text and what to fix.
    """
    run_api_module(module, lambda m: OnCallClient(m.params), OnCallError, present, absent)


def api_error_text(body):
    """The engine's own words from an error body: ``{"detail": ...}``, field errors, a list, or OnCallError."""
    if isinstance(body, dict):
        if "detail" in body and len(body) == 1:
            return str(body["detail"])
        if "message" in body and "code" in body:
            return str(body["message"])
        parts = []
        for key, value in body.items():
            if isinstance(value, dict):
                value = "; ".join(f"{k}: {api_error_text(v)}" for k, v in value.items())
            elif isinstance(value, list):
                value = " ".join(str(v) for v in value)
            parts.append(f"{key}: {value}")
        return "; ".join(parts)
    if isinstance(body, list):
        return " ".join(str(v) for v in body)
    if isinstance(body, str):
        return body.strip()[:500]
    return ""


class OnCallError(ApiError):
    """An OnCall API call failed; ``message`` says what happened and what to fix."""


def validate_oncall_url(url, option="oncall_url"):
    """An error message for an unusable engine URL, or None."""
    return base_url_problem(url, option, "the OnCall engine's URL", "http://oncall.example.com:8080",
                            "the API token goes in oncall_api_token")


_CONNECTION_WORDING = {"service": "OnCall", "certificate": "the engine's", "server": "the engine",
                       "health": "GET /health/", "option": "oncall_url", "running": "the OnCall engine"}


class OnCallClient:
    """A small JSON client for the OnCall engine's public API (``/api/v1``)."""

    def __init__(self, params):
        url = params.get("oncall_url")
        problem = validate_oncall_url(url)
        if problem:
            raise OnCallError(problem)
        self.base_url = url.rstrip("/")
        if self.base_url.endswith("/api/v1"):
            self.base_url = self.base_url[: -len("/api/v1")]
        self.token = params.get("oncall_api_token") or ""
        if not self.token.strip():
            raise OnCallError("oncall_api_token must not be empty: create an API token in Grafana under OnCall > "
                              "Settings > API tokens (or use a Grafana service account token with oncall_grafana_url)")
        if self.token.lower().startswith("bearer "):
            raise OnCallError("oncall_api_token must be the bare token: OnCall reads the whole Authorization header "
                              "as the token, so drop the 'Bearer ' prefix")
        self.grafana_url = params.get("oncall_grafana_url")
        if self.grafana_url:
            problem = validate_oncall_url(self.grafana_url, "oncall_grafana_url")
            if problem:
                raise OnCallError(problem)
        self.validate_certs = params.get("validate_certs", True)
        self.ca_path = params.get("ca_path")
        self.timeout = params.get("timeout") or 30
        self._users = None

    # -- requests ------------------------------------------------------------
    def request(self, method, path, body=None, query=None, missing_ok=False, hints=None):
        """Send one request to ``/api/v1/<path>``; return the decoded JSON answer ({} for an empty one).

        With ``missing_ok=True`` a 404 answer returns None instead of raising.
        ``hints`` maps an HTTP status to a sentence appended to the error message.
        """
        api_path = "/api/v1/" + path.lstrip("/")
        url = self.base_url + api_path
        if query:
            url += "?" + urlencode(query, doseq=True)
        headers = {"Accept": "application/json", "Authorization": self.token}
        if self.grafana_url:
            headers["X-Grafana-URL"] = self.grafana_url
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        kwargs = {
            "method": method,
            "data": data,
            "headers": headers,
            "validate_certs": self.validate_certs,
            "timeout": self.timeout,
            "http_agent": "o11y.stack-oncall",
            "follow_redirects": "none",
        }
        if self.ca_path:
            kwargs["ca_path"] = self.ca_path
        try:
            response = open_url(url, **kwargs)
            status = response.getcode()
            raw = response.read()
            content_type = response.headers.get("Content-Type", "")
        except HTTPError as exc:
            raw = exc.read() if hasattr(exc, "read") else b""
            body_data = self._decode(raw)
            if exc.code == 404 and missing_ok and isinstance(body_data, dict):
                return None
            error = self._http_error(exc.code, method, api_path, body_data, exc.headers)
            hint = (hints or {}).get(exc.code)
            if hint:
                error.message = f"{error.message}. {hint}"
                error.args = (error.message,)
            raise error from None
        except (URLError, OSError, ssl.SSLError, http.client.HTTPException, ValueError) as exc:
            raise self._connection_error(exc, method, api_path) from None
        if not raw:
            return {}
        decoded = self._decode(raw)
        if decoded is None or (isinstance(decoded, str) and "json" not in content_type):
            raise OnCallError(
                f"{self.base_url} answered {method} {api_path} with something that is not JSON "
                f"(Content-Type {content_type or 'unknown'}); check that oncall_url points at the OnCall engine "
                "(port 8080 by default), not at Grafana", status=status, method=method, path=api_path)
        return decoded

    @staticmethod
    def _decode(raw):
        if not raw:
            return None
        try:
            return json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return raw.decode("utf-8", "replace")[:2000]

    def _http_error(self, status, method, path, body, headers=None):
        text = api_error_text(body) if not (isinstance(body, str) and body.lstrip().startswith("<")) else ""
        said = f"OnCall answered {method} {path} with HTTP {status}" + (f": {text}" if text else "")
        said += "" if said.endswith(".") else "."
        if 300 <= status < 400:
            location = (headers or {}).get("Location", "") if headers is not None else ""
            message = (f"OnCall at {self.base_url} answered {method} {path} with a redirect ({status}"
                       + (f" to {location}" if location else "") + "); check oncall_url: use the address the engine "
                       "is served at, including the scheme. An engine run with settings.prod_without_db redirects "
                       "plain HTTP to HTTPS")
        elif status in (401, 403) and text in ("Invalid token.", "No token provided", "Organization not found."):
            message = (f"{said} The engine rejected oncall_api_token: use an OnCall API token (Grafana > OnCall > "
                       "Settings > API tokens) of this engine, sent without 'Bearer', or a Grafana service account "
                       "token (glsa_...) with oncall_grafana_url set to the Grafana the OnCall plugin is connected to")
        elif status in (401, 403):
            message = (f"{said} The token's user may not do this: OnCall API tokens act as the user who created "
                       "them, with that user's Grafana role (integrations and escalation chains need Admin, "
                       "schedules Editor)")
        elif status == 404:
            message = (f"{said} Check oncall_url (the engine's URL, not Grafana's) and that the object still "
                       "exists")
        elif status == 405:
            message = f"{said} The engine does not allow this method here"
        elif status == 409:
            message = f"{said} The engine reports a conflict with an existing object"
        elif status == 429:
            message = f"{said} The engine's API rate limit was hit (300 requests per 5 minutes per token); wait and retry"
        elif status == 400:
            message = f"{said} The engine rejected the request as invalid; check the module options"
        elif status >= 500:
            message = (f"{said} The engine failed on its side: check its log (journalctl -u the OnCall web unit), "
                       "that its database is migrated (python manage.py migrate), that Redis answers, and that "
                       "BASE_URL is set, then run the task again")
        else:
            message = said
        return OnCallError(message, status=status, method=method, path=path, body=body)

    def _connection_error(self, exc, method, path):
        return OnCallError(connection_problem(exc, method, path, self.base_url, self.timeout, _CONNECTION_WORDING),
                           method=method, path=path)

    def get(self, path, query=None, missing_ok=False):
        return self.request("GET", path, query=query, missing_ok=missing_ok)

    def post(self, path, body):
        return self.request("POST", path, body=body)

    def put(self, path, body, hints=None):
        return self.request("PUT", path, body=body, hints=hints)

    def delete(self, path, missing_ok=True):
        return self.request("DELETE", path, missing_ok=missing_ok)

    # -- collections -----------------------------------------------------------
    def list_all(self, resource, query=None):
        """Every object of ``/api/v1/<resource>/`` (all pages; pages are asked for by number, because the
        engine builds its ``next`` links from its BASE_URL, which the controller may not reach)."""
        items = []
        page = 1
        while page <= MAX_PAGES:
            q = dict(query or {})
            q["page"] = page
            answer = self.get(resource + "/", query=q)
            if not isinstance(answer, dict) or "results" not in answer:
                raise OnCallError(f"OnCall answered GET /api/v1/{resource}/ without a page of results; check that "
                                  "oncall_url points at the OnCall engine", body=answer)
            items.extend(answer["results"])
            if not answer.get("next") or page >= int(answer.get("total_pages") or page):
                break
            page += 1
        return items

    def find_by_name(self, resource, name, what):
        """The object of *resource* named exactly *name*, or None; fails when the name is ambiguous."""
        hits = [o for o in self.list_all(resource, {"name": name}) if o.get("name") == name]
        if len(hits) > 1:
            ids = ", ".join(sorted(o["id"] for o in hits))
            raise OnCallError(f"{len(hits)} {what}s are named {name!r} ({ids}); rename or delete the extra ones "
                              "so that the name says which one this task manages")
        return hits[0] if hits else None

    def get_object(self, resource, object_id):
        """GET ``/api/v1/<resource>/<id>/``, or None when it does not exist."""
        return self.get(f"{resource}/{quote_path(object_id)}/", missing_ok=True)

    # -- users -----------------------------------------------------------------
    def users(self):
        if self._users is None:
            self._users = self.list_all("users")
        return self._users

    def resolve_users(self, refs, option="users"):
        """OnCall user ids for *refs* (usernames or email addresses, case-insensitive, or user ids).

        Fails naming every reference that matches no user.
        """
        users = self.users()
        ids, missing = [], []
        for ref in refs:
            ref_l = str(ref).lower()
            hit = [u for u in users if u["id"] == ref] or \
                [u for u in users if (u.get("username") or "").lower() == ref_l] or \
                [u for u in users if (u.get("email") or "").lower() == ref_l]
            if len(hit) != 1:
                missing.append(str(ref))
            else:
                ids.append(hit[0]["id"])
        if missing:
            known = ", ".join(sorted(u.get("username") or u["id"] for u in users)) or "none"
            raise OnCallError(f"{option}: no OnCall user matches {', '.join(repr(m) for m in missing)} (by username, "
                              f"email or id; known users: {known}). OnCall takes its users from Grafana: add them "
                              "there; the OnCall plugin syncs them to the engine")
        return ids

    def user_names(self, ids):
        """Usernames for user ids (the id itself when the user is unknown), for readable diffs."""
        by_id = {u["id"]: u.get("username") or u["id"] for u in self.users()}
        return [by_id.get(i, i) for i in ids]
