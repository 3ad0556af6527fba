# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Connection options of the o11y.stack Grafana modules."""

    DOCUMENTATION = r"""
options:
  grafana_url:
    description:
      - URL of Grafana, for example V(http://grafana.example.com:3000), including the sub-path when Grafana is
        served under one (V(https://example.com/grafana)).
    type: str
    required: true
  grafana_token:
    description:
      - Service account token (V(glsa_...)), sent as a C(Bearer) token in the C(Authorization) header.
      - A token belongs to one organisation; with O(org_id) it must be a token of that organisation.
      - Mutually exclusive with O(grafana_user).
    type: str
  grafana_user:
    description:
      - User for HTTP basic authentication, for example the server admin.
      - Requires O(grafana_password). Mutually exclusive with O(grafana_token).
      - Grafana only accepts basic authentication when C([auth.basic] enabled) is true (the default).
    type: str
  grafana_password:
    description:
      - Password of O(grafana_user).
    type: str
  org_id:
    description:
      - Organisation to work in, sent as the C(X-Grafana-Org-Id) header.
      - Without it Grafana uses the user's current organisation, or the token's organisation.
      - O(grafana_user) must be a member of that organisation.
    type: int
  validate_certs:
    description:
      - Verify Grafana's TLS certificate for V(https://) URLs. Only set to V(false) for test setups.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file with the CA certificates to verify Grafana's certificate with.
    type: path
  timeout:
    description:
      - Seconds to wait for each answer from Grafana.
    type: int
    default: 30
notes:
  - Tested against Grafana OSS 13.2.3; uses the C(/api) HTTP API that Grafana 13 still serves.
  - Requires no Python library beyond ansible-core; runs wherever Grafana is reachable (often C(delegate_to) the
    Grafana host or the controller).
  - One of O(grafana_token) or O(grafana_user) and O(grafana_password) is required.
"""
