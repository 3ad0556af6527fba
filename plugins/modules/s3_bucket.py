# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_bucket
short_description: Manage S3 buckets, their versioning, lifecycle rules and policy on MinIO or any S3 API
version_added: 0.1.0
description:
  - Create or delete an S3 bucket and manage its versioning, lifecycle rules and bucket policy.
  - Works against any S3 API (MinIO, AWS S3, Ceph RGW, ...); requests use path-style addressing and Signature Version 4.
  - Idempotent; settings left unset (V(null)) are not touched. Supports check mode and diff mode.
  - The bucket name is validated against the S3 naming rules before any request is sent.
author:
  - o11y.stack maintainers (@o11y-stack)
requirements:
  - boto3
notes:
  - Written for MinIO, the object store of the o11y.stack, but speaks plain S3 and works with any S3 implementation.
  - Run it where the S3 endpoint is reachable and boto3 is installed; usually with C(delegate_to) the MinIO host or the controller.
  - For AWS S3 set O(endpoint_url) to the regional endpoint, for example V(https://s3.eu-west-1.amazonaws.com), and O(region) to match.
  - O(region) must match the region the S3 service is configured with (MinIO's C(MINIO_SITE_REGION), V(us-east-1) by default).
  - A bucket created with O(region) other than V(us-east-1) is created with that C(LocationConstraint).
options:
  name:
    description:
      - Name of the bucket.
      - Must follow the S3 bucket naming rules, 3 to 63 characters of lowercase letters, digits, dots and hyphens,
        starting and ending with a letter or digit, without V(..), V(.-) or V(-.), not formatted like an IP address,
        not starting with V(xn--), V(sthree-) or V(amzn-s3-demo-) and not ending with V(-s3alias), V(--ol-s3),
        V(.mrap), V(--x-s3) or V(--table-s3).
    type: str
    required: true
  state:
    description:
      - V(present) creates the bucket if needed and applies the given settings.
      - V(absent) deletes the bucket. A bucket that still holds objects is only deleted with O(force=true).
    type: str
    choices: [present, absent]
    default: present
  versioning:
    description:
      - V(true) enables object versioning.
      - V(false) suspends versioning if it was ever enabled; on a bucket that never had versioning it changes nothing
        (S3 cannot switch versioning off again, only suspend it).
      - V(null) leaves versioning as it is.
    type: bool
  lifecycle_rules:
    description:
      - The complete list of lifecycle rules of the bucket. Rules on the bucket that are not in the list are removed.
      - V([]) removes all lifecycle rules; V(null) leaves the lifecycle configuration as it is.
      - Every rule needs at least one of O(lifecycle_rules[].expiration_days), O(lifecycle_rules[].noncurrent_expiration_days)
        and O(lifecycle_rules[].abort_incomplete_multipart_days).
    type: list
    elements: dict
    suboptions:
      id:
        description:
          - Unique identifier of the rule, up to 255 characters.
        type: str
        required: true
      prefix:
        description:
          - Object key prefix the rule applies to; V("") applies it to the whole bucket.
        type: str
        default: ""
      expiration_days:
        description:
          - Delete (or, on a versioned bucket, make non-current) objects this many days after creation.
        type: int
      noncurrent_expiration_days:
        description:
          - Delete non-current object versions this many days after they became non-current.
        type: int
      abort_incomplete_multipart_days:
        description:
          - Abort multipart uploads that are not complete this many days after they started.
        type: int
      enabled:
        description:
          - Whether the rule is active.
        type: bool
        default: true
  policy:
    description:
      - The bucket policy, as a JSON string or as a dictionary.
      - Compared semantically with the current policy; key order, formatting and a single value written as a string
        or as a one-element list make no difference.
      - V({}) or V("") deletes the bucket policy; V(null) leaves it as it is.
    type: json
  force:
    description:
      - With O(state=absent), delete a bucket that still holds objects, deleting every object, every object version,
        every delete marker and every unfinished multipart upload first.
      - Without it, deleting a non-empty bucket fails and nothing is deleted.
    type: bool
    default: false
  endpoint_url:
    description:
      - URL of the S3 API, for example V(http://minio.example.com:9000) or V(https://s3.eu-west-1.amazonaws.com).
    type: str
    required: true
  access_key:
    description:
      - Access key (user name for MinIO root or service accounts).
    type: str
    required: true
  secret_key:
    description:
      - Secret key belonging to O(access_key).
    type: str
    required: true
  region:
    description:
      - Region to sign requests for and to create the bucket in.
    type: str
    default: us-east-1
  validate_certs:
    description:
      - Verify the TLS certificate of an V(https://) endpoint. Only set to V(false) for test setups with self-signed certificates.
    type: bool
    default: true
  ca_bundle:
    description:
      - Path to a PEM file with the CA certificates to verify the endpoint's certificate with.
      - Ignored when O(validate_certs=false).
    type: path
  connect_timeout:
    description:
      - Seconds to wait for a connection to the endpoint.
    type: int
    default: 10
  read_timeout:
    description:
      - Seconds to wait for an answer from the endpoint.
    type: int
    default: 60
  retries:
    description:
      - How many times to retry a request that failed with a connection error, throttling or a server error.
    type: int
    default: 3
attributes:
  check_mode:
    support: full
    description: Reports the changes and the diff without sending any request that changes the bucket.
  diff_mode:
    support: full
    description: Returns the bucket settings before and after.
  platform:
    platforms: posix
    support: full
    description: Runs wherever Python and boto3 are installed.
seealso:
  - name: MinIO bucket lifecycle
    description: How MinIO applies lifecycle rules.
    link: https://min.io/docs/minio/linux/administration/object-management/object-lifecycle-management.html
  - name: S3 bucket naming rules
    description: The rules O(name) is checked against.
    link: https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
"""

EXAMPLES = r"""
- name: Create the Mimir blocks bucket on MinIO with versioning, lifecycle rules and a read-only policy
  o11y.stack.s3_bucket:
    endpoint_url: "http://{{ groups['minio'][0] }}:9000"
    access_key: "{{ minio_root_user }}"
    secret_key: "{{ minio_root_password }}"
    name: mimir-blocks
    versioning: true
    lifecycle_rules:
      - id: expire-noncurrent
        noncurrent_expiration_days: 7
      - id: abort-uploads
        abort_incomplete_multipart_days: 1
      - id: expire-tmp
        prefix: tmp/
        expiration_days: 2
    policy:
      Version: "2012-10-17"
      Statement:
        - Sid: ReadOnlyForGrafana
          Effect: Allow
          Principal:
            AWS: ["arn:aws:iam:::user/grafana"]
          Action: ["s3:GetObject", "s3:ListBucket"]
          Resource:
            - arn:aws:s3:::mimir-blocks
            - arn:aws:s3:::mimir-blocks/*
  delegate_to: localhost

- name: Create one bucket per store
  o11y.stack.s3_bucket:
    endpoint_url: "{{ o11y_s3_endpoint }}"
    access_key: "{{ minio_root_user }}"
    secret_key: "{{ minio_root_password }}"
    name: "{{ item }}"
  loop: [loki-chunks, tempo-traces, pyroscope-profiles]

- name: Remove every lifecycle rule and the policy, keep the bucket
  o11y.stack.s3_bucket:
    endpoint_url: "{{ o11y_s3_endpoint }}"
    access_key: "{{ minio_root_user }}"
    secret_key: "{{ minio_root_password }}"
    name: mimir-blocks
    lifecycle_rules: []
    policy: {}

- name: Delete a bucket together with all its objects and object versions
  o11y.stack.s3_bucket:
    endpoint_url: "{{ o11y_s3_endpoint }}"
    access_key: "{{ minio_root_user }}"
    secret_key: "{{ minio_root_password }}"
    name: scratch-data
    state: absent
    force: true
"""

RETURN = r"""
changed:
  description: Whether the bucket or one of its settings was (or in check mode would be) changed.
  returned: always
  type: bool
  sample: true
bucket:
  description:
    - The bucket after the module ran (in check mode, as it would be).
    - Empty when O(state=absent).
  returned: always
  type: dict
  sample:
    name: mimir-blocks
    versioning: Enabled
    lifecycle_rules:
      - id: expire-noncurrent
        prefix: ""
        enabled: true
        expiration_days: null
        noncurrent_expiration_days: 7
        abort_incomplete_multipart_days: null
    policy: {}
  contains:
    name:
      description: Bucket name.
      returned: when O(state=present)
      type: str
      sample: mimir-blocks
    versioning:
      description: Versioning status.
      returned: when O(state=present)
      type: str
      sample: Enabled
      choices: [Enabled, Suspended, Disabled]
    lifecycle_rules:
      description:
        - Lifecycle rules, sorted by id, in the shape of the O(lifecycle_rules) option.
      returned: when O(state=present)
      type: list
      elements: dict
      sample:
        - id: abort-uploads
          prefix: ""
          enabled: true
          expiration_days: null
          noncurrent_expiration_days: null
          abort_incomplete_multipart_days: 1
      contains:
        id:
          description: Rule identifier.
          returned: always
          type: str
          sample: abort-uploads
        prefix:
          description: Key prefix the rule applies to.
          returned: always
          type: str
          sample: tmp/
        enabled:
          description: Whether the rule is active.
          returned: always
          type: bool
          sample: true
        expiration_days:
          description: Days after which objects expire.
          returned: always
          type: int
          sample: 30
        noncurrent_expiration_days:
          description: Days after which non-current versions are deleted.
          returned: always
          type: int
          sample: 7
        abort_incomplete_multipart_days:
          description: Days after which unfinished multipart uploads are aborted.
          returned: always
          type: int
          sample: 1
        other:
          description:
            - Settings of a rule that was not created by this module and that the module options cannot express
              (tag filters, transitions, expiration dates, ...), in S3 API form.
            - Such a rule is replaced when O(lifecycle_rules) is set.
          returned: when the rule on the server has such settings
          type: dict
          sample: {"Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}
    policy:
      description: Bucket policy; empty when the bucket has none.
      returned: when O(state=present)
      type: dict
      sample:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {"AWS": ["*"]}
            Action: ["s3:GetObject"]
            Resource: ["arn:aws:s3:::mimir-blocks/*"]
deleted_objects:
  description: Number of object versions and delete markers deleted (or, in check mode, that would be deleted) because of O(force=true).
  returned: when O(state=absent) and the bucket existed
  type: int
  sample: 42
diff:
  description: The bucket settings before and after; an empty dictionary stands for a bucket that does not exist.
  returned: always
  type: dict
  contains:
    before:
      description: Settings before the module ran, in the shape of RV(bucket).
      returned: always
      type: dict
      sample: {}
    after:
      description: Settings after the module ran, in the shape of RV(bucket).
      returned: always
      type: dict
      sample: {"name": "loki-chunks", "versioning": "Disabled", "lifecycle_rules": [], "policy": {}}
"""

import json
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.o11y.stack.plugins.module_utils.s3 import (
    NOT_IMPLEMENTED_CODES,
    S3Client,
    S3Error,
    ensure_boto3,
    s3_argument_spec,
)

DAY_FIELDS = ("expiration_days", "noncurrent_expiration_days", "abort_incomplete_multipart_days")
FORBIDDEN_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
FORBIDDEN_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
MISSING_BUCKET_CODES = ("NoSuchBucket", "404", "NotFound")
DELETE_BATCH = 1000


# ---------------------------------------------------------------------------
# Validation (no network)
# ---------------------------------------------------------------------------


def bucket_name_problem(name):
    """Return which S3 naming rule ``name`` breaks, or None if it is valid."""
    prefix = f"invalid bucket name {name!r}: "
    if not 3 <= len(name) <= 63:
        return prefix + f"must be between 3 and 63 characters long, it has {len(name)}"
    if name.lower() != name and re.fullmatch(r"[A-Za-z0-9.-]+", name):
        return prefix + "must not contain uppercase letters"
    bad = sorted(set(re.sub(r"[a-z0-9.-]", "", name)))
    if bad:
        found = ", ".join(repr(c) for c in bad)
        return prefix + f"may only contain lowercase letters, digits, dots (.) and hyphens (-); found {found}"
    if not (name[0].isalnum() and name[-1].isalnum()):
        return prefix + "must start and end with a lowercase letter or a digit"
    if ".." in name:
        return prefix + "must not contain two adjacent dots (..)"
    if ".-" in name or "-." in name:
        return prefix + "must not contain a dot next to a hyphen (.- or -.)"
    if re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", name):
        return prefix + "must not be formatted as an IP address"
    for forbidden in FORBIDDEN_PREFIXES:
        if name.startswith(forbidden):
            return prefix + f"must not start with the reserved prefix {forbidden!r}"
    for forbidden in FORBIDDEN_SUFFIXES:
        if name.endswith(forbidden):
            return prefix + f"must not end with the reserved suffix {forbidden!r}"
    return None


def parse_policy(value):
    """Parse the policy option: None (leave as is), {} (no policy) or the policy dict.

    Raises ValueError naming the position of a JSON syntax error, TypeError
    when the JSON is not an object.
    """
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    text = value.strip()
    if not text:
        return {}
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        position = ""
        if hasattr(exc, "lineno"):
            position = f" at line {exc.lineno} column {exc.colno} (char {exc.pos})"
        raise ValueError(f"policy is not valid JSON{position}: {getattr(exc, 'msg', exc)}") from None
    if not isinstance(parsed, dict):
        raise TypeError(f"policy must be a JSON object (a dictionary), got {type(parsed).__name__}")
    return parsed


def normalize_rules_option(rules):
    """Validate the lifecycle_rules option and return it sorted by id."""
    result = []
    seen = set()
    for index, rule in enumerate(rules):
        rule_id = rule.get("id")
        if not rule_id:
            raise ValueError(f"lifecycle_rules[{index}]: id must not be empty")
        if len(rule_id) > 255:
            raise ValueError(f"lifecycle_rules[{index}]: id {rule_id!r} is longer than 255 characters")
        if rule_id in seen:
            raise ValueError(f"lifecycle_rules: id {rule_id!r} is used by more than one rule; ids must be unique")
        seen.add(rule_id)
        if all(rule.get(field) is None for field in DAY_FIELDS):
            raise ValueError(
                f"lifecycle rule {rule_id!r} has no action: set expiration_days, noncurrent_expiration_days or "
                "abort_incomplete_multipart_days"
            )
        for field in DAY_FIELDS:
            if rule.get(field) is not None and rule[field] < 1:
                raise ValueError(f"lifecycle rule {rule_id!r}: {field} must be a positive number of days, got {rule[field]}")
        result.append(
            {
                "id": rule_id,
                "prefix": rule.get("prefix") or "",
                "enabled": True if rule.get("enabled") is None else bool(rule["enabled"]),
                "expiration_days": rule.get("expiration_days"),
                "noncurrent_expiration_days": rule.get("noncurrent_expiration_days"),
                "abort_incomplete_multipart_days": rule.get("abort_incomplete_multipart_days"),
            }
        )
    return sorted(result, key=lambda r: r["id"])


# ---------------------------------------------------------------------------
# Normalisation of S3 representations
# ---------------------------------------------------------------------------


def _json_safe(value):
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def rule_from_s3(rule):
    """Convert one S3 lifecycle rule into the module's option shape."""
    other = {}
    prefix = ""
    s3_filter = rule.get("Filter")
    if s3_filter is not None:
        remaining = dict(s3_filter)
        if "Prefix" in remaining:
            prefix = remaining.pop("Prefix") or ""
        if "And" in remaining:
            conditions = dict(remaining.pop("And") or {})
            prefix = conditions.pop("Prefix", prefix) or ""
            if any(conditions.values()):
                other["Filter"] = s3_filter
        if any(v not in (None, "", {}, []) for v in remaining.values()):
            other["Filter"] = s3_filter
    elif rule.get("Prefix") is not None:
        prefix = rule["Prefix"]

    expiration = dict(rule.get("Expiration") or {})
    expiration_days = expiration.pop("Days", None)
    extra = {k: v for k, v in expiration.items() if v}
    if extra:
        other["Expiration"] = extra

    noncurrent = dict(rule.get("NoncurrentVersionExpiration") or {})
    noncurrent_days = noncurrent.pop("NoncurrentDays", None)
    extra = {k: v for k, v in noncurrent.items() if v}
    if extra:
        other["NoncurrentVersionExpiration"] = extra

    abort_days = (rule.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation")

    for key in ("Transitions", "NoncurrentVersionTransitions"):
        if rule.get(key):
            other[key] = rule[key]

    result = {
        "id": rule.get("ID") or "",
        "prefix": prefix,
        "enabled": rule.get("Status") == "Enabled",
        "expiration_days": expiration_days,
        "noncurrent_expiration_days": noncurrent_days,
        "abort_incomplete_multipart_days": abort_days,
    }
    if other:
        result["other"] = _json_safe(other)
    return result


def rule_to_s3(rule):
    """Convert one rule in the module's option shape into the S3 API shape."""
    s3_rule = {
        "ID": rule["id"],
        "Status": "Enabled" if rule["enabled"] else "Disabled",
        "Filter": {"Prefix": rule["prefix"]},
    }
    if rule["expiration_days"] is not None:
        s3_rule["Expiration"] = {"Days": rule["expiration_days"]}
    if rule["noncurrent_expiration_days"] is not None:
        s3_rule["NoncurrentVersionExpiration"] = {"NoncurrentDays": rule["noncurrent_expiration_days"]}
    if rule["abort_incomplete_multipart_days"] is not None:
        s3_rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": rule["abort_incomplete_multipart_days"]}
    return s3_rule


def _sort_key(value):
    return json.dumps(value, sort_keys=True)


def normalize_policy(value, key=None):
    """Canonical form of a policy for comparison.

    Key order and formatting are irrelevant; a one-element list equals its
    single value; list order and duplicates are irrelevant (IAM semantics);
    ``"Principal": "*"`` equals ``{"AWS": "*"}``.
    """
    if isinstance(value, dict):
        return {k: normalize_policy(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = {}
        for item in value:
            normalized = normalize_policy(item, key)
            items[_sort_key(normalized)] = normalized
        ordered = [items[k] for k in sorted(items)]
        return ordered[0] if len(ordered) == 1 else ordered
    if key in ("Principal", "NotPrincipal") and value == "*":
        return {"AWS": "*"}
    return value


def policies_equal(first, second):
    return normalize_policy(first or {}) == normalize_policy(second or {})


# ---------------------------------------------------------------------------
# Reading and changing the bucket
# ---------------------------------------------------------------------------


def read_bucket(s3, name):
    """Return the bucket's normalised settings, or None if it does not exist."""
    try:
        versioning = s3.call("get_bucket_versioning", Bucket=name)
    except S3Error as err:
        if err.code in MISSING_BUCKET_CODES:
            return None
        raise
    state = {"name": name, "versioning": versioning.get("Status") or "Disabled", "lifecycle_rules": [], "policy": {}}

    lifecycle = s3.call_or_none(
        "get_bucket_lifecycle_configuration",
        ("NoSuchLifecycleConfiguration",) + tuple(NOT_IMPLEMENTED_CODES),
        Bucket=name,
    )
    if lifecycle:
        state["lifecycle_rules"] = sorted((rule_from_s3(r) for r in lifecycle.get("Rules", [])), key=lambda r: r["id"])

    policy = s3.call_or_none("get_bucket_policy", ("NoSuchBucketPolicy",) + tuple(NOT_IMPLEMENTED_CODES), Bucket=name)
    if policy and policy.get("Policy"):
        try:
            state["policy"] = json.loads(policy["Policy"])
        except ValueError:
            state["policy"] = {"_unparsable": policy["Policy"]}
    return state


def desired_versioning(current, wanted):
    if wanted is None:
        return current
    if wanted:
        return "Enabled"
    return "Suspended" if current in ("Enabled", "Suspended") else current


def iter_object_versions(s3, name):
    """Yield {Key, VersionId} for every object version and delete marker."""
    try:
        for page in s3.paginate("list_object_versions", Bucket=name):
            for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                yield {"Key": item["Key"], "VersionId": item.get("VersionId") or "null"}
        return
    except S3Error as err:
        if err.code not in NOT_IMPLEMENTED_CODES:
            raise
    for page in s3.paginate("list_objects_v2", Bucket=name):
        for item in page.get("Contents", []):
            yield {"Key": item["Key"]}


def bucket_is_empty(s3, name):
    for dummy in iter_object_versions(s3, name):
        return False
    return True


def count_objects(s3, name):
    return sum(1 for dummy in iter_object_versions(s3, name))


def delete_all_objects(s3, name):
    """Delete every object version and delete marker; return how many."""
    deleted = 0
    batch = []

    def flush(batch):
        response = s3.call("delete_objects", Bucket=name, Delete={"Objects": batch, "Quiet": True})
        errors = response.get("Errors") or []
        if errors:
            first = errors[0]
            raise S3Error(
                f"DeleteObjects failed for {len(errors)} of {len(batch)} objects in bucket {name}, first: "
                f"{first.get('Key')} (version {first.get('VersionId')}): {first.get('Code')}: {first.get('Message')}",
                operation="DeleteObjects",
                code=first.get("Code"),
            )
        return len(batch)

    for item in iter_object_versions(s3, name):
        batch.append(item)
        if len(batch) == DELETE_BATCH:
            deleted += flush(batch)
            batch = []
    if batch:
        deleted += flush(batch)

    try:
        for page in s3.paginate("list_multipart_uploads", Bucket=name):
            for upload in page.get("Uploads", []):
                s3.call_or_none(
                    "abort_multipart_upload",
                    ("NoSuchUpload",),
                    Bucket=name,
                    Key=upload["Key"],
                    UploadId=upload["UploadId"],
                )
    except S3Error as err:
        if err.code not in NOT_IMPLEMENTED_CODES:
            raise
    return deleted


def not_empty_message(name):
    return f"bucket {name} is not empty; set force=true to delete it and all its objects"


def ensure_absent(module, s3, name):
    current = read_bucket(s3, name)
    result = {"changed": False, "bucket": {}, "diff": {"before": current or {}, "after": {}}}
    if current is None:
        return result
    result["changed"] = True
    force = module.params["force"]
    if module.check_mode:
        count = count_objects(s3, name)
        if count and not force:
            module.fail_json(msg=not_empty_message(name), changed=False, bucket=current)
        result["deleted_objects"] = count
        return result
    if force:
        deleted = 0
        for dummy in range(5):  # writers may still be adding objects
            deleted += delete_all_objects(s3, name)
            try:
                s3.call("delete_bucket", Bucket=name)
                break
            except S3Error as err:
                if err.code != "BucketNotEmpty":
                    raise
        else:
            module.fail_json(msg=f"bucket {name} still receives new objects; stop the writers and retry")
        result["deleted_objects"] = deleted
        return result
    if not bucket_is_empty(s3, name):
        module.fail_json(msg=not_empty_message(name), changed=False, bucket=current)
    try:
        s3.call("delete_bucket", Bucket=name)
    except S3Error as err:
        if err.code == "BucketNotEmpty":
            module.fail_json(msg=not_empty_message(name), changed=False, bucket=current)
        raise
    result["deleted_objects"] = 0
    return result


def ensure_present(module, s3, name):
    params = module.params
    current = read_bucket(s3, name)
    baseline = current or {"name": name, "versioning": "Disabled", "lifecycle_rules": [], "policy": {}}

    desired = {
        "name": name,
        "versioning": desired_versioning(baseline["versioning"], params["versioning"]),
        "lifecycle_rules": baseline["lifecycle_rules"] if params["lifecycle_rules"] is None else params["lifecycle_rules"],
        "policy": baseline["policy"] if params["policy"] is None else params["policy"],
    }
    if policies_equal(desired["policy"], baseline["policy"]):
        desired["policy"] = baseline["policy"]

    create = current is None
    versioning_changed = desired["versioning"] != baseline["versioning"]
    lifecycle_changed = desired["lifecycle_rules"] != baseline["lifecycle_rules"]
    policy_changed = not policies_equal(desired["policy"], baseline["policy"])
    changed = create or versioning_changed or lifecycle_changed or policy_changed

    if changed and not module.check_mode:
        if create:
            kwargs = {"Bucket": name}
            if s3.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": s3.region}
            try:
                s3.call("create_bucket", **kwargs)
            except S3Error as err:
                if err.code == "BucketAlreadyExists":
                    raise S3Error(
                        f"bucket name {name} is already taken by another account (bucket names are global on this S3 service); "
                        "choose another name",
                        operation=err.operation,
                        code=err.code,
                    )
                if err.code != "BucketAlreadyOwnedByYou":
                    raise
        if versioning_changed:
            s3.call("put_bucket_versioning", Bucket=name, VersioningConfiguration={"Status": desired["versioning"]})
        if lifecycle_changed:
            if desired["lifecycle_rules"]:
                s3.call(
                    "put_bucket_lifecycle_configuration",
                    Bucket=name,
                    LifecycleConfiguration={"Rules": [rule_to_s3(rule) for rule in desired["lifecycle_rules"]]},
                )
            else:
                s3.call("delete_bucket_lifecycle", Bucket=name)
        if policy_changed:
            if desired["policy"]:
                s3.call("put_bucket_policy", Bucket=name, Policy=json.dumps(desired["policy"], sort_keys=True))
            else:
                s3.call("delete_bucket_policy", Bucket=name)

    return {"changed": changed, "bucket": desired, "diff": {"before": current or {}, "after": desired}}


def main():
    argument_spec = s3_argument_spec()
    argument_spec.update(
        name={"type": "str", "required": True},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
        versioning={"type": "bool"},
        lifecycle_rules={
            "type": "list",
            "elements": "dict",
            "options": {
                "id": {"type": "str", "required": True},
                "prefix": {"type": "str", "default": ""},
                "expiration_days": {"type": "int"},
                "noncurrent_expiration_days": {"type": "int"},
                "abort_incomplete_multipart_days": {"type": "int"},
                "enabled": {"type": "bool", "default": True},
            },
        },
        policy={"type": "json"},
        force={"type": "bool", "default": False},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params

    # Everything that can be checked without the network is checked first.
    problem = bucket_name_problem(params["name"])
    if problem:
        module.fail_json(msg=problem)
    try:
        params["policy"] = parse_policy(params["policy"])
        if params["lifecycle_rules"] is not None:
            params["lifecycle_rules"] = normalize_rules_option(params["lifecycle_rules"])
    except (TypeError, ValueError) as exc:
        module.fail_json(msg=str(exc))

    ensure_boto3(module)
    try:
        s3 = S3Client(params)
        if params["state"] == "absent":
            result = ensure_absent(module, s3, params["name"])
        else:
            result = ensure_present(module, s3, params["name"])
    except S3Error as err:
        module.fail_json(**err.fail_kwargs())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
