"""sha256_for: picking an artifact's hash out of upstream checksum files."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.o11y.stack.plugins.filter.checksum import FilterModule, sha256_for

A = "a" * 64
B = "B" * 64


def test_sha256sums_file_picks_the_named_entry() -> None:
    content = f"{A}  loki-linux-amd64.zip\n{B}  loki-linux-arm64.zip\n"
    assert sha256_for(content, "loki-linux-arm64.zip") == B.lower()


def test_binary_marker_and_leading_dot_slash() -> None:
    content = f"{A} *./dist/alloy-linux-amd64.zip\n{B}  ./other.zip\n"
    assert sha256_for(content, "alloy-linux-amd64.zip") == A


def test_single_entry_with_a_different_name_is_accepted() -> None:
    # MinIO's per-asset checksum file names the dl.min.io file, not the GitHub asset.
    content = f"{A}  minio.RELEASE.2025-09-07T16-13-09Z\n"
    assert sha256_for(content, "minio.linux-amd64.RELEASE.2025-09-07T16-13-09Z") == A


def test_bare_hash_file() -> None:
    assert sha256_for(f"{A}\n", "grafana-12.0.0.linux-amd64.tar.gz") == A


def test_comments_and_blank_lines_are_ignored() -> None:
    assert sha256_for(f"# checksums\n\n{A}  x.tar.gz\n{B}  y.tar.gz\n", "x.tar.gz") == A


def test_missing_entry_names_the_file() -> None:
    with pytest.raises(AnsibleFilterError, match="no SHA-256 for 'z.tar.gz'"):
        sha256_for(f"{A}  x.tar.gz\n{B}  y.tar.gz\n", "z.tar.gz")


def test_not_a_sha256() -> None:
    with pytest.raises(AnsibleFilterError, match="not a SHA-256"):
        sha256_for("d41d8cd98f00b204e9800998ecf8427e  x.tar.gz\n", "x.tar.gz")


def test_empty_file() -> None:
    with pytest.raises(AnsibleFilterError):
        sha256_for("", "x.tar.gz")


def test_filter_is_registered() -> None:
    assert FilterModule().filters()["sha256_for"] is sha256_for
