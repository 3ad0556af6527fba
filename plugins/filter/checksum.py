# Copyright: (c) 2026, o11y.stack maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse upstream checksum files (sha256sum output, SHA256SUMS, bare hash)."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


def sha256_for(content, filename):
    """Return the SHA-256 listed for ``filename`` in a checksum file's ``content``.

    Accepts ``<hash>  <name>`` / ``<hash> *<name>`` lines (names may carry a
    leading ``./`` or a directory) and files holding a single hash. A file with
    exactly one entry is accepted whatever name it lists, because some
    upstreams name the file differently inside their per-asset checksum file.
    """
    if not isinstance(content, str):
        raise AnsibleFilterError("sha256_for expects the checksum file content as a string")
    entries = []
    for line in content.splitlines():
        fields = line.strip().split(None, 1)
        if not fields or line.lstrip().startswith("#"):
            continue
        digest = fields[0]
        name = fields[1].lstrip("*").strip() if len(fields) > 1 else ""
        entries.append((digest, name))
    for digest, name in entries:
        if name and (name == filename or name.rsplit("/", 1)[-1] == filename):
            return _checked(digest, filename)
    if len(entries) == 1:
        return _checked(entries[0][0], filename)
    raise AnsibleFilterError(
        "no SHA-256 for %r in the checksum file (%d entries); check the artifact and checksum URLs"
        % (filename, len(entries))
    )


def _checked(digest, filename):
    if not _SHA256.match(digest):
        raise AnsibleFilterError("the checksum listed for %r is not a SHA-256: %r" % (filename, digest))
    return digest.lower()


class FilterModule:
    """o11y.stack checksum filters."""

    def filters(self):
        return {"sha256_for": sha256_for}
