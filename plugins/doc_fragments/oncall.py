# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Connection options of the o11y.stack Grafana OnCall modules."""

    DOCUMENTATION = r"""
options:
  oncall_url:
    description:
      - URL of the OnCall engine (its web/API server, port V(8080) by default), for example
        V(http://oncall.example.com:8080). Not Grafana's URL.
      - The public API lives under C(/api/v1/) of this URL; a trailing C(/api/v1) is accepted.
    type: str
    required: true
  oncall_api_token:
    description:
      - An OnCall API token, as created in Grafana under B(OnCall > Settings > API tokens) (the role C(oncall) can
        create one), sent as the whole C(Authorization) header, without C(Bearer).
      - The token acts as the Grafana user who created it, with that user's role.
      - A Grafana service account token (V(glsa_...)) works too; see O(oncall_grafana_url).
    type: str
    required: true
  oncall_grafana_url:
    description:
      - URL of the Grafana the OnCall plugin is connected to, sent as the C(X-Grafana-URL) header.
      - Only needed with a Grafana service account token in O(oncall_api_token) when the engine serves more than the
        self-hosted organisation; the engine then checks the token's permissions with that Grafana.
    type: str
  validate_certs:
    description:
      - Verify the engine's TLS certificate for V(https://) URLs. Only set to V(false) for test setups.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file with the CA certificates to verify the engine's certificate with.
    type: path
  timeout:
    description:
      - Seconds to wait for each answer from the engine.
    type: int
    default: 30
notes:
  - Tested against the Grafana OnCall OSS engine v1.16.9, the last release. OnCall OSS is archived upstream
    (2026-03-24) and receives no further updates.
  - Requires no Python library beyond ansible-core; runs wherever the engine is reachable (often C(delegate_to) the
    OnCall host or the controller).
  - The engine answers an invalid token with HTTP 403 (not 401).
"""
