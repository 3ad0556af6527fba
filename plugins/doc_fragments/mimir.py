# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Connection options of the o11y.stack Mimir modules."""

    DOCUMENTATION = r"""
options:
  mimir_url:
    description:
      - HTTP address of Mimir, for example V(http://mimir.example.com:9009), or of a gateway in front of it, including
        the sub-path when Mimir is served under one (C(server.http_path_prefix)).
    type: str
    required: true
  tenant:
    description:
      - Tenant ID the configuration belongs to, sent as the C(X-Scope-OrgID) header.
      - With multi-tenancy disabled (C(multitenancy_enabled) set to V(false)) Mimir ignores the header and stores everything
        under its C(no_auth_tenant), V(anonymous) by default; keep the default then.
      - At most 150 characters out of letters, digits and C(!-_.*'()); one tenant, not a C(|) separated list.
    type: str
    default: anonymous
  mimir_user:
    description:
      - User for HTTP basic authentication at a gateway in front of Mimir (Mimir itself does not authenticate).
      - Requires O(mimir_password). Mutually exclusive with O(mimir_token).
    type: str
  mimir_password:
    description:
      - Password of O(mimir_user).
    type: str
  mimir_token:
    description:
      - Token sent in an C(Authorization) header (C(Bearer) scheme) to a gateway in front of Mimir. Mutually exclusive with O(mimir_user).
    type: str
  headers:
    description:
      - More HTTP headers to send with every request, for example one a proxy routes by. Not for secrets (they are not
        hidden in the task's output); not C(X-Scope-OrgID) (use O(tenant)).
    type: dict
  validate_certs:
    description:
      - Verify Mimir's TLS certificate for V(https://) URLs. Only set to V(false) for test setups.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file with the CA certificates to verify Mimir's certificate with.
    type: path
  timeout:
    description:
      - Seconds to wait for each answer from Mimir.
    type: int
    default: 30
notes:
  - Requires no Python library beyond ansible-core and its PyYAML; runs wherever Mimir is reachable (often the
    controller, or C(delegate_to) a Mimir host).
"""
