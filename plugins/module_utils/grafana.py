# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Grafana HTTP API client shared by the o11y.stack Grafana modules.

Only ansible-core and the Python standard library: requests go through
``ansible.module_utils.urls.open_url``.  Written against the HTTP API of
Grafana OSS 13.2 (the legacy ``/api`` routes, which Grafana 13 keeps serving).

Modules hold only their options and the desired-vs-current comparison::

    from ansible_collections.o11y.stack.plugins.module_utils.grafana import (
        diff_result, grafana_module, run_grafana_module)

    def ensure_present(module, client):
        current = client.folder_by_uid(module.params["uid"])
        ...
        return diff_result(changed, before, after, folder=folder)

    def main():
        module = grafana_module({"uid": {"type": "str"}, ...})
        run_grafana_module(module, ensure_present, ensure_absent)

Every failure is a :class:`GrafanaError` whose message carries Grafana's own
error text and says what to fix (credentials for 401, permissions for 403,
the URL for unreachable hosts, the server log for 5xx, ...).
"""

from __future__ import annotations

import copy
import http.client
import json
import re
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

TESTED_GRAFANA_VERSION = "13.2.3"

GRAFANA_ARGUMENT_SPEC = {
    "grafana_url": {"type": "str", "required": True},
    "grafana_token": {"type": "str", "no_log": True},
    "grafana_user": {"type": "str"},
    "grafana_password": {"type": "str", "no_log": True},
    "org_id": {"type": "int"},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
    "timeout": {"type": "int", "default": 30},
}
"""Connection options every Grafana module takes (see the ``o11y.stack.grafana`` doc fragment)."""

UID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,40}$")

# Alerting provisioning API (Grafana's /api/v1/provisioning, "ngalert").
CONTACT_POINTS_PATH = "/api/v1/provisioning/contact-points"
POLICIES_PATH = "/api/v1/provisioning/policies"
DISABLE_PROVENANCE_HEADER = "X-Disable-Provenance"
"""Grafana checks only that this header is present; with it, API-created alerting resources stay editable in the UI."""
PROVENANCE_MESSAGE_ID = "alerting.notifications.invalidProvenance"
REDACTED = "[REDACTED]"
"""What the provisioning API returns instead of the value of a secure contact point setting that is set."""


def grafana_argument_spec():
    """A fresh copy of the connection options (safe to modify)."""
    return copy.deepcopy(GRAFANA_ARGUMENT_SPEC)


def grafana_module_kwargs():
    """AnsibleModule keyword arguments for the connection options' constraints."""
    return {
        "mutually_exclusive": [("grafana_token", "grafana_user")],
        "required_together": [("grafana_user", "grafana_password")],
        "required_one_of": [("grafana_token", "grafana_user")],
    }


def grafana_module(argument_spec, **constraints):
    """The AnsibleModule of a Grafana module: the connection options plus *argument_spec*, with check mode.

    *constraints* (``mutually_exclusive``, ``required_if``, ...: lists) are added to the connection options' own.
    """
    spec = grafana_argument_spec()
    spec.update(argument_spec)
    kwargs = grafana_module_kwargs()
    for key, value in constraints.items():
        kwargs[key] = kwargs.get(key, []) + list(value)
    return AnsibleModule(argument_spec=spec, supports_check_mode=True, **kwargs)


def run_grafana_module(module, present, absent=None):
    """Run ``present(module, client)`` (``absent`` with state=absent) and exit with the result it returns.

    A failed API call ends the module with Grafana's error text and what to fix.
    """
    run_api_module(module, lambda m: GrafanaClient(m.params), GrafanaError, present, absent)


def secure_fields_to_send(secure, stored, secure_update, creating=False):
    """The names of the secure values in *secure* ({name: value}) to send to Grafana.

    Grafana never returns secure values, only which ones it has (*stored*), so
    they cannot be compared: a value is sent when the object is being created,
    with secure_update=always, or when Grafana has none for that name yet. A
    value of None stands for "keep what Grafana has" and is never sent.
    """
    return {name for name, value in secure.items()
            if value is not None and (creating or secure_update == "always" or name not in stored)}


def uid_problem(uid, what="uid"):
    """Why *uid* is not a valid Grafana uid (None when it is)."""
    if uid is None:
        return None
    if not UID_RE.match(uid):
        return (f"{what} {uid!r} is not a valid Grafana uid: use 1 to 40 characters out of a-z, A-Z, 0-9, "
                "'-' and '_'")
    return None


class GrafanaError(ApiError):
    """A Grafana API call failed; ``message`` says what happened and what to fix."""

    @property
    def api_message(self):
        """Grafana's own ``message`` from the error body, if any."""
        if isinstance(self.body, dict):
            return self.body.get("message")
        return None


def validate_grafana_url(url):
    """An error message for an unusable grafana_url, or None."""
    return base_url_problem(url, "grafana_url", "Grafana's URL", "http://grafana.example.com:3000",
                            "use grafana_token or grafana_user/grafana_password")


_CONNECTION_WORDING = {"service": "Grafana", "certificate": "Grafana's", "server": "Grafana",
                       "health": "GET /api/health", "option": "grafana_url", "running": "Grafana"}


class GrafanaClient:
    """A small JSON client for Grafana's HTTP API.

    ``params`` are the module parameters (see :data:`GRAFANA_ARGUMENT_SPEC`).
    """

    def __init__(self, params):
        url = params.get("grafana_url")
        problem = validate_grafana_url(url)
        if problem:
            raise GrafanaError(problem)
        self.base_url = url.rstrip("/")
        self.token = params.get("grafana_token")
        self.user = params.get("grafana_user")
        self.password = params.get("grafana_password")
        self.org_id = params.get("org_id")
        self.validate_certs = params.get("validate_certs", True)
        self.ca_path = params.get("ca_path")
        self.timeout = params.get("timeout") or 30
        if not self.token and not self.user:
            raise GrafanaError("set grafana_token (a service account token) or grafana_user and grafana_password")

    # -- describing who we are (for error messages) ------------------------
    @property
    def identity(self):
        if self.token:
            return "service account token"
        return f"user {self.user!r}"

    def _where(self):
        return f" in organisation {self.org_id}" if self.org_id else ""

    # -- requests ------------------------------------------------------------
    def request(self, method, path, body=None, query=None, missing_ok=False, headers=None, hints=None):
        """Send one request; return the decoded JSON answer ({} for an empty one).

        With ``missing_ok=True`` a 404 answer returns None instead of raising.
        ``headers`` are added to the request; ``hints`` maps an HTTP status to
        a sentence appended to the error message (what to fix in that case).
        Raises GrafanaError for every other failure.
        """
        url = self.base_url + path
        if query:
            url += "?" + urlencode(query, doseq=True)
        extra_headers = headers or {}
        headers = {"Accept": "application/json"}
        headers.update(extra_headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.org_id:
            headers["X-Grafana-Org-Id"] = str(self.org_id)
        kwargs = {
            "method": method,
            "data": data,
            "headers": headers,
            "validate_certs": self.validate_certs,
            "timeout": self.timeout,
            "http_agent": "o11y.stack-grafana",
            "follow_redirects": "none",
        }
        if self.ca_path:
            kwargs["ca_path"] = self.ca_path
        if not self.token:
            kwargs.update(url_username=self.user, url_password=self.password, force_basic_auth=True)
        try:
            response = open_url(url, **kwargs)
            status = response.getcode()
            raw = response.read()
            content_type = response.headers.get("Content-Type", "")
        except HTTPError as exc:
            raw = exc.read() if hasattr(exc, "read") else b""
            body_data = self._decode(raw)
            if exc.code == 404 and missing_ok:
                return None
            error = self._http_error(exc.code, method, path, body_data)
            hint = (hints or {}).get(exc.code)
            if hint:
                error.message = f"{error.message}. {hint}"
                error.args = (error.message,)
            raise error from None
        except (URLError, OSError, ssl.SSLError, http.client.HTTPException, ValueError) as exc:
            raise self._connection_error(exc, method, path) from None
        if not raw:
            return {}
        decoded = self._decode(raw)
        if decoded is None or (isinstance(decoded, str) and "json" not in content_type):
            raise GrafanaError(
                f"{self.base_url} answered {method} {path} with something that is not JSON "
                f"(Content-Type {content_type or 'unknown'}); check that grafana_url points at Grafana itself",
                status=status, method=method, path=path)
        return decoded

    @staticmethod
    def _decode(raw):
        if not raw:
            return None
        try:
            return json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return raw.decode("utf-8", "replace")[:2000]

    def _http_error(self, status, method, path, body):
        text = ""
        if isinstance(body, dict):
            text = str(body.get("message") or "")
        elif isinstance(body, str):
            text = body.strip()
        said = f"Grafana answered {method} {path} with HTTP {status}" + (f": {text}" if text else "")
        if 300 <= status < 400:
            message = (f"Grafana at {self.base_url} answered {method} {path} with a redirect ({status}); check "
                       "grafana_url: use the address Grafana is served at, including the scheme (http/https) and any "
                       "sub-path")
        elif status == 401:
            hint = (f"Grafana at {self.base_url} rejected the {self.identity}. Check grafana_token (a service account "
                    "token, glsa_...) or grafana_user/grafana_password")
            if self.org_id and self.token:
                hint += f"; a service account token only works in its own organisation: org_id={self.org_id}"
            message = f"{said}. {hint}"
        elif status == 403 and isinstance(body, dict) and body.get("messageId") == PROVENANCE_MESSAGE_ID:
            message = (f"{said}. The object's provenance does not allow this change: Grafana does not let the API make "
                       "an object created through the provisioning API (or from provisioning files) editable in the UI "
                       "again (X-Disable-Provenance); keep the provenance, or reset/delete the object first")
        elif status == 403:
            message = (f"{said}. The {self.identity} is not allowed to do this{self._where()}: give it the role or "
                       "permission Grafana names (for data sources, plugins, service accounts and the alerting "
                       "provisioning API the organisation Admin role)")
        elif status == 404:
            message = (f"{said}. Check grafana_url (including a sub-path Grafana is served under) and that the object "
                       f"exists{self._where()}")
        elif status == 409:
            message = f"{said}. Grafana reports a conflict with an existing object"
        elif status == 412:
            message = f"{said}. The object was changed by someone else while the module ran; run the task again"
        elif status == 400:
            message = f"{said}. Grafana rejected the request as invalid; check the module options"
        elif status >= 500:
            message = (f"{said}. Grafana failed on its side: check the Grafana server log (journalctl -u grafana) and "
                       "its database, then run the task again")
        else:
            message = said
        return GrafanaError(message, status=status, method=method, path=path, body=body)

    def _connection_error(self, exc, method, path):
        return GrafanaError(connection_problem(exc, method, path, self.base_url, self.timeout, _CONNECTION_WORDING),
                            method=method, path=path)

    def get(self, path, query=None, missing_ok=False):
        return self.request("GET", path, query=query, missing_ok=missing_ok)

    def post(self, path, body=None):
        return self.request("POST", path, body=body if body is not None else {})

    def put(self, path, body):
        return self.request("PUT", path, body=body)

    def patch(self, path, body):
        return self.request("PATCH", path, body=body)

    def delete(self, path, missing_ok=False):
        return self.request("DELETE", path, missing_ok=missing_ok)

    # -- shared lookups -----------------------------------------------------
    def health(self):
        """GET /api/health (no authentication needed): ``{"database": "ok", "version": ...}``."""
        return self.get("/api/health")

    def folder_by_uid(self, uid):
        """The folder (GET /api/folders/:uid) or None."""
        return self.get("/api/folders/" + quote_path(uid), missing_ok=True)

    def folders_by_title(self, title, parent_uid=None):
        """Folders whose title is exactly *title* (optionally under *parent_uid*; "" = top level)."""
        hits = self.get("/api/search", query={"type": "dash-folder", "query": title, "limit": 5000}) or []
        found = []
        for hit in hits:
            if hit.get("title") != title:
                continue
            if parent_uid is not None and (hit.get("folderUid") or "") != parent_uid:
                continue
            found.append(hit)
        return found

    def resolve_folder_uid(self, uid=None, title=None):
        """The uid of the folder given by *uid* or *title* ("" for the top level when both are empty).

        Raises GrafanaError when the folder does not exist or the title is ambiguous.
        """
        if uid:
            if self.folder_by_uid(uid) is None:
                raise GrafanaError(f"folder with uid {uid!r} does not exist{self._where()}; create it first "
                                   "(o11y.stack.grafana_folder) or fix the folder uid")
            return uid
        if title:
            hits = self.folders_by_title(title)
            if not hits:
                raise GrafanaError(f"no folder titled {title!r} exists{self._where()}; create it first "
                                   "(o11y.stack.grafana_folder) or fix the folder title")
            if len(hits) > 1:
                uids = ", ".join(sorted(h["uid"] for h in hits))
                raise GrafanaError(f"{len(hits)} folders are titled {title!r} ({uids}); name the folder by uid instead")
            return hits[0]["uid"]
        return ""

    # -- alerting provisioning API ---------------------------------------------
    @staticmethod
    def _provenance_headers(disable_provenance):
        return {DISABLE_PROVENANCE_HEADER: "true"} if disable_provenance else None

    def contact_points(self, name=None):
        """The contact points (integrations) of the organisation, optionally those named *name*.

        Secure settings that are set come back as ``[REDACTED]``.
        """
        return self.get(CONTACT_POINTS_PATH, query={"name": name} if name else None) or []

    def create_contact_point(self, body, disable_provenance=False):
        """POST a contact point (202); returns it as Grafana stored it (secure settings redacted)."""
        return self.request("POST", CONTACT_POINTS_PATH, body=body,
                            headers=self._provenance_headers(disable_provenance))

    def update_contact_point(self, uid, body, disable_provenance=False):
        """PUT a contact point (202). ``[REDACTED]`` as a secure setting's value keeps the stored value."""
        return self.request("PUT", CONTACT_POINTS_PATH + "/" + quote_path(uid), body=body,
                            headers=self._provenance_headers(disable_provenance),
                            hints={404: "The contact point was deleted while the module ran; run the task again"})

    def delete_contact_point(self, uid):
        """DELETE a contact point (202, also when the uid does not exist)."""
        return self.request("DELETE", CONTACT_POINTS_PATH + "/" + quote_path(uid), hints={
            409: ("Point the notification policies (o11y.stack.grafana_notification_policy) and the alert rules' "
                  "notification settings at another contact point first")})

    def policy_tree(self):
        """The organisation's notification policy tree (with ``provenance`` when it has one)."""
        return self.get(POLICIES_PATH)

    def set_policy_tree(self, tree, disable_provenance=False):
        """PUT the whole notification policy tree (202)."""
        return self.request("PUT", POLICIES_PATH, body=tree, headers=self._provenance_headers(disable_provenance))

    def reset_policy_tree(self):
        """DELETE the notification policy tree: Grafana puts back its default tree (202) and returns it.

        Sent without X-Disable-Provenance: Grafana refuses a reset with that header
        when the stored tree has a provenance, and the reset tree has none anyway.
        """
        return self.request("DELETE", POLICIES_PATH)
