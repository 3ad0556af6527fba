# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the o11y.stack HTTP API clients (Grafana, Mimir, OnCall) share.

The error type every client raises, the check of a base URL option, the wording of a failed
connection, and running a module around a client. Each client keeps what differs: its
authentication, its request shape and how it reads its server's error bodies.
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import quote, urlsplit


class ApiError(Exception):
    """An API call failed; ``message`` says what happened and what to fix."""

    def __init__(self, message, status=None, method=None, path=None, body=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.method = method
        self.path = path
        self.body = body

    def fail_kwargs(self):
        """Keyword arguments for ``module.fail_json``."""
        result = {"msg": self.message}
        if self.status is not None:
            result["http_status"] = self.status
        if self.method:
            result["request"] = f"{self.method} {self.path}"
        if self.body is not None:
            result["response"] = self.body
        return result


def base_url_problem(url, option, what, example_url, credentials_hint):
    """Why *url* (the value of *option*) cannot be an API's base URL, or None.

    *what* names the address ("Grafana's URL"), *example_url* shows one, *credentials_hint* says
    where credentials go instead of the URL.
    """
    if not url:
        return f"{option} must not be empty; set it to {what}, for example {example_url}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"{option} must be an http:// or https:// URL such as {example_url}, got {url!r}"
    if parts.username or parts.password:
        return f"{option} must not contain credentials; {credentials_hint}"
    if parts.query or parts.fragment:
        return f"{option} must not contain a query or fragment, got {url!r}"
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return f"{option} has an invalid port: {url!r}"
    return None


def reason_text(reason):
    """A short text for the reason a connection failed."""
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)


def connection_problem(exc, method, path, base_url, timeout, wording):
    """The message for a request that got no HTTP answer (TLS failure, timeout, refused or unresolved).

    *wording* names the server in each sentence: ``service`` ("Grafana"), ``certificate`` (whose
    certificate: "Grafana's"), ``server`` (what serves TLS or answers health checks), ``health``
    (its health request), ``option`` (the URL option) and ``running`` (what must be running).
    """
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, ssl.SSLError) or isinstance(exc, ssl.SSLError) or "CERTIFICATE" in str(reason).upper():
        return (f"TLS error talking to {wording['service']} at {base_url}: {reason_text(reason)}. Set ca_path to the "
                f"CA that signed {wording['certificate']} certificate, validate_certs=false for a test setup, or use "
                f"http:// if {wording['server']} does not serve TLS")
    if isinstance(reason, (socket.timeout, TimeoutError)) or "timed out" in str(reason):
        return (f"{wording['service']} at {base_url} did not answer {method} {path} within {timeout}s; check that "
                f"{wording['server']} is healthy ({wording['health']}) or raise timeout")
    return (f"cannot reach {wording['service']} at {base_url} ({method} {path}): {reason_text(reason)}. Check "
            f"{wording['option']} and that {wording['running']} is running and listening there")


def run_api_module(module, client_factory, error_class, present, absent=None):
    """Run ``present(module, client)`` (``absent`` with state=absent) and exit with the result it returns.

    *client_factory* builds the client from the module; an *error_class* raised by it or by an
    API call ends the module with the server's error text and what to fix.
    """
    try:
        client = client_factory(module)
        if absent is not None and module.params.get("state") == "absent":
            result = absent(module, client)
        else:
            result = present(module, client)
    except error_class as err:
        module.fail_json(**err.fail_kwargs())
    module.exit_json(**result)


def diff_result(changed, before, after, **values):
    """A module result: ``changed``, the ``diff`` from *before* to *after* and the module's return *values*."""
    result = {"changed": changed}
    result.update(values)
    result["diff"] = {"before": before, "after": after}
    return result


def quote_path(value):
    """Percent-encode one URL path segment (``/`` becomes ``%2F``)."""
    return quote(str(value), safe="")
