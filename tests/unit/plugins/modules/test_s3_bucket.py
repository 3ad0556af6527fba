# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""o11y.stack.s3_bucket against a real S3 API (tests/standins S3Server)."""

from __future__ import annotations

import json

import pytest
from ansible_collections.o11y.stack.plugins.modules import s3_bucket
from botocore.exceptions import ClientError
from o11y_standins.s3server import S3Server

BUCKET = "o11y-test-bucket"

POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "PublicRead",
            "Effect": "Allow",
            "Principal": "*",
            "Action": ["s3:GetObject"],
            "Resource": [f"arn:aws:s3:::{BUCKET}/*"],
        }
    ],
}

# The same policy: other key order, single values as strings and lists
# swapped, Principal "*" as {"AWS": ["*"]}, JSON re-formatted.
POLICY_REORDERED_TEXT = f"""
{{"Statement": {{"Resource": "arn:aws:s3:::{BUCKET}/*", "Action": "s3:GetObject",
  "Principal": {{"AWS": ["*"]}}, "Effect": "Allow", "Sid": "PublicRead"}},
 "Version": "2012-10-17"}}
"""


@pytest.fixture
def run(run_module, s3_params):
    """run(**options) runs s3_bucket against the test server."""

    def _run(check_mode=False, **options):
        args = dict(s3_params)
        args.setdefault("name", BUCKET)
        args.update(options)
        return run_module(s3_bucket.main, args, check_mode=check_mode)

    return _run


def bucket_names(client):
    return [b["Name"] for b in client.list_buckets().get("Buckets", [])]


def rule(rule_id, **values):
    result = {
        "id": rule_id,
        "prefix": "",
        "enabled": True,
        "expiration_days": None,
        "noncurrent_expiration_days": None,
        "abort_incomplete_multipart_days": None,
    }
    result.update(values)
    return result


def offline_args(endpoint_url, **options):
    """Module args with made-up credentials, for runs that must fail before any request."""
    args = {"endpoint_url": endpoint_url, "access_key": "bogus-access-key", "secret_key": "bogus-secret-key"}
    args.update(options)
    return args


# ---------------------------------------------------------------------------
# create / idempotence
# ---------------------------------------------------------------------------


def test_create_bucket(run, boto3_client):
    result = run()
    assert result.exit_code == 0, result
    assert result["changed"] is True
    assert result["bucket"] == {"name": BUCKET, "versioning": "Disabled", "lifecycle_rules": [], "policy": {}}
    assert result["diff"] == {"before": {}, "after": result["bucket"]}
    assert BUCKET in bucket_names(boto3_client)


def test_create_is_idempotent(run):
    assert run()["changed"] is True
    second = run()
    assert second.exit_code == 0
    assert second["changed"] is False
    assert second["diff"]["before"] == second["diff"]["after"]


def test_full_configuration_is_idempotent(run, boto3_client):
    options = {
        "versioning": True,
        "lifecycle_rules": [{"id": "expire", "expiration_days": 30}, {"id": "abort", "abort_incomplete_multipart_days": 1}],
        "policy": POLICY,
    }
    first = run(**options)
    assert first["changed"] is True
    second = run(**options)
    assert second["changed"] is False, second["diff"]
    assert second["bucket"]["versioning"] == "Enabled"
    assert [r["id"] for r in second["bucket"]["lifecycle_rules"]] == ["abort", "expire"]
    assert boto3_client.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"


def test_secret_is_not_in_the_result(run, s3_params):
    result = run()
    assert s3_params["secret_key"] not in json.dumps(result)
    assert result["invocation"]["module_args"]["secret_key"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def test_create_in_other_region(run_module):
    server = S3Server(access_key="region-ak", secret_key="region-sk", region="eu-west-1")
    server.start()
    try:
        args = {
            "endpoint_url": server.url,
            "access_key": "region-ak",
            "secret_key": "region-sk",
            "region": "eu-west-1",
            "name": BUCKET,
            "retries": 0,
        }
        result = run_module(s3_bucket.main, args)
        assert result.exit_code == 0, result
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=server.url,
            aws_access_key_id="region-ak",
            aws_secret_access_key="region-sk",
            region_name="eu-west-1",
        )
        assert client.get_bucket_location(Bucket=BUCKET)["LocationConstraint"] == "eu-west-1"
    finally:
        server.stop()


# ---------------------------------------------------------------------------
# versioning
# ---------------------------------------------------------------------------


def test_versioning_on_then_off(run, boto3_client):
    on = run(versioning=True)
    assert on["changed"] is True
    assert on["bucket"]["versioning"] == "Enabled"
    assert boto3_client.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    assert run(versioning=True)["changed"] is False

    off = run(versioning=False)
    assert off["changed"] is True
    assert off["diff"]["before"]["versioning"] == "Enabled"
    assert off["diff"]["after"]["versioning"] == "Suspended"
    assert boto3_client.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Suspended"
    assert run(versioning=False)["changed"] is False

    again = run(versioning=True)
    assert again["changed"] is True
    assert boto3_client.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"


def test_versioning_false_on_never_versioned_bucket_is_noop(run, boto3_client):
    run()
    result = run(versioning=False)
    assert result["changed"] is False
    assert result["bucket"]["versioning"] == "Disabled"
    assert "Status" not in boto3_client.get_bucket_versioning(Bucket=BUCKET)


def test_versioning_null_leaves_it(run):
    run(versioning=True)
    result = run()
    assert result["changed"] is False
    assert result["bucket"]["versioning"] == "Enabled"


# ---------------------------------------------------------------------------
# lifecycle
# ---------------------------------------------------------------------------


def test_lifecycle_add_change_remove(run, boto3_client):
    added = run(lifecycle_rules=[{"id": "logs", "prefix": "logs/", "expiration_days": 7}])
    assert added["changed"] is True
    assert added["bucket"]["lifecycle_rules"] == [rule("logs", prefix="logs/", expiration_days=7)]
    s3_rules = boto3_client.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert len(s3_rules) == 1
    assert s3_rules[0]["ID"] == "logs"
    assert s3_rules[0]["Expiration"]["Days"] == 7

    same = run(lifecycle_rules=[{"id": "logs", "prefix": "logs/", "expiration_days": 7}])
    assert same["changed"] is False

    changed = run(
        lifecycle_rules=[
            {"id": "logs", "prefix": "logs/", "expiration_days": 14, "enabled": False},
            {"id": "a-noncurrent", "noncurrent_expiration_days": 3, "abort_incomplete_multipart_days": 2},
        ]
    )
    assert changed["changed"] is True
    assert changed["diff"]["before"]["lifecycle_rules"] == [rule("logs", prefix="logs/", expiration_days=7)]
    assert changed["diff"]["after"]["lifecycle_rules"] == [
        rule("a-noncurrent", noncurrent_expiration_days=3, abort_incomplete_multipart_days=2),
        rule("logs", prefix="logs/", expiration_days=14, enabled=False),
    ]
    s3_rules = {r["ID"]: r for r in boto3_client.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]}
    assert s3_rules["logs"]["Status"] == "Disabled"
    assert s3_rules["logs"]["Expiration"]["Days"] == 14
    assert s3_rules["a-noncurrent"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 3
    assert s3_rules["a-noncurrent"]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 2

    # Order of the rules in the option does not matter.
    reordered = run(
        lifecycle_rules=[
            {"id": "a-noncurrent", "noncurrent_expiration_days": 3, "abort_incomplete_multipart_days": 2},
            {"id": "logs", "prefix": "logs/", "expiration_days": 14, "enabled": False},
        ]
    )
    assert reordered["changed"] is False

    # null leaves the rules alone.
    assert run()["changed"] is False

    removed = run(lifecycle_rules=[])
    assert removed["changed"] is True
    assert removed["bucket"]["lifecycle_rules"] == []
    with pytest.raises(ClientError) as err:
        boto3_client.get_bucket_lifecycle_configuration(Bucket=BUCKET)
    assert err.value.response["Error"]["Code"] == "NoSuchLifecycleConfiguration"
    assert run(lifecycle_rules=[])["changed"] is False


def test_lifecycle_legacy_prefix_and_foreign_rules_are_normalised(run, boto3_client):
    run()
    # A rule written by another tool with the legacy top-level Prefix.
    boto3_client.put_bucket_lifecycle_configuration(
        Bucket=BUCKET,
        LifecycleConfiguration={
            "Rules": [{"ID": "old", "Prefix": "tmp/", "Status": "Enabled", "Expiration": {"Days": 2}}]
        },
    )
    same = run(lifecycle_rules=[{"id": "old", "prefix": "tmp/", "expiration_days": 2}])
    assert same["changed"] is False, same["diff"]

    # A rule with settings the module cannot express is reported and replaced.
    boto3_client.put_bucket_lifecycle_configuration(
        Bucket=BUCKET,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "old",
                    "Filter": {"Prefix": "tmp/"},
                    "Status": "Enabled",
                    "Expiration": {"Days": 2},
                    "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}],
                }
            ]
        },
    )
    replaced = run(lifecycle_rules=[{"id": "old", "prefix": "tmp/", "expiration_days": 2}])
    assert replaced["changed"] is True
    assert "Transitions" in replaced["diff"]["before"]["lifecycle_rules"][0]["other"]
    assert replaced["diff"]["after"]["lifecycle_rules"] == [rule("old", prefix="tmp/", expiration_days=2)]
    assert "Transitions" not in boto3_client.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"][0]


@pytest.mark.parametrize(
    "rules, message",
    [
        ([{"id": "x"}], "lifecycle rule 'x' has no action"),
        ([{"id": "x", "expiration_days": 0}], "expiration_days must be a positive number"),
        ([{"id": "x", "expiration_days": 1}, {"id": "x", "expiration_days": 2}], "ids must be unique"),
    ],
)
def test_lifecycle_invalid(run_module, closed_port_url, rules, message):
    result = run_module(
        s3_bucket.main,
        offline_args(closed_port_url, name=BUCKET, lifecycle_rules=rules),
    )
    assert result["failed"] is True
    assert message in result["msg"]


# ---------------------------------------------------------------------------
# policy
# ---------------------------------------------------------------------------


def test_policy_set_semantic_noop_change_and_delete(run, boto3_client):
    created = run(policy=POLICY)
    assert created["changed"] is True
    assert created["bucket"]["policy"] == POLICY
    assert json.loads(boto3_client.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"][0]["Sid"] == "PublicRead"

    # The same policy as a re-formatted, re-ordered JSON string.
    reordered = run(policy=POLICY_REORDERED_TEXT)
    assert reordered["changed"] is False, reordered["diff"]
    assert reordered["diff"]["before"] == reordered["diff"]["after"]

    # The same policy given as a JSON string of the dict.
    assert run(policy=json.dumps(POLICY, indent=4))["changed"] is False

    changed_policy = json.loads(json.dumps(POLICY))
    changed_policy["Statement"][0]["Action"] = ["s3:GetObject", "s3:ListBucket"]
    changed_policy["Statement"][0]["Resource"] = [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]
    changed = run(policy=changed_policy)
    assert changed["changed"] is True
    assert changed["diff"]["before"]["policy"] == POLICY
    assert changed["diff"]["after"]["policy"] == changed_policy
    stored = json.loads(boto3_client.get_bucket_policy(Bucket=BUCKET)["Policy"])
    assert sorted(stored["Statement"][0]["Action"]) == ["s3:GetObject", "s3:ListBucket"]

    # Action order inside a list does not matter either.
    swapped = json.loads(json.dumps(changed_policy))
    swapped["Statement"][0]["Action"].reverse()
    assert run(policy=swapped)["changed"] is False

    # null leaves the policy alone.
    assert run()["bucket"]["policy"] == changed_policy

    deleted = run(policy={})
    assert deleted["changed"] is True
    assert deleted["bucket"]["policy"] == {}
    with pytest.raises(ClientError) as err:
        boto3_client.get_bucket_policy(Bucket=BUCKET)
    assert err.value.response["Error"]["Code"] == "NoSuchBucketPolicy"
    assert run(policy="")["changed"] is False


def test_policy_invalid_json_fails_before_any_call(run_module, closed_port_url):
    result = run_module(
        s3_bucket.main,
        offline_args(closed_port_url, name=BUCKET, policy='{"Version": "2012-10-17",}'),
    )
    assert result["failed"] is True
    assert result["msg"].startswith("policy is not valid JSON at line 1 column 26 (char 25)")
    assert "cannot reach" not in result["msg"]


def test_policy_must_be_an_object(run_module, closed_port_url):
    result = run_module(
        s3_bucket.main,
        offline_args(closed_port_url, name=BUCKET, policy='["a"]'),
    )
    assert result["failed"] is True
    assert "policy must be a JSON object" in result["msg"]


# ---------------------------------------------------------------------------
# check mode and diff
# ---------------------------------------------------------------------------


def test_check_mode_create_does_not_create(run, boto3_client):
    result = run(check_mode=True, versioning=True, lifecycle_rules=[{"id": "r", "expiration_days": 1}], policy=POLICY)
    assert result["changed"] is True
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"] == {
        "name": BUCKET,
        "versioning": "Enabled",
        "lifecycle_rules": [rule("r", expiration_days=1)],
        "policy": POLICY,
    }
    assert BUCKET not in bucket_names(boto3_client)


def test_check_mode_changes_nothing_on_existing_bucket(run, boto3_client):
    run(versioning=True, lifecycle_rules=[{"id": "r", "expiration_days": 1}], policy=POLICY)
    result = run(check_mode=True, versioning=False, lifecycle_rules=[], policy={})
    assert result["changed"] is True
    assert result["diff"]["before"]["versioning"] == "Enabled"
    assert result["diff"]["after"] == {"name": BUCKET, "versioning": "Suspended", "lifecycle_rules": [], "policy": {}}
    assert boto3_client.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    assert len(boto3_client.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]) == 1
    assert boto3_client.get_bucket_policy(Bucket=BUCKET)["Policy"]


def test_check_mode_absent(run, boto3_client):
    run()
    boto3_client.put_object(Bucket=BUCKET, Key="a", Body=b"1")
    result = run(check_mode=True, state="absent", force=True)
    assert result["changed"] is True
    assert result["deleted_objects"] == 1
    assert result["diff"]["after"] == {}
    assert result["diff"]["before"]["name"] == BUCKET
    assert BUCKET in bucket_names(boto3_client)
    assert boto3_client.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 1

    refused = run(check_mode=True, state="absent")
    assert refused["failed"] is True
    assert "is not empty; set force=true" in refused["msg"]


def test_check_mode_absent_missing_bucket(run):
    result = run(check_mode=True, state="absent")
    assert result["changed"] is False
    assert result["diff"] == {"before": {}, "after": {}}


def test_diff_before_after(run):
    run(versioning=True, lifecycle_rules=[{"id": "r", "expiration_days": 1}])
    result = run(lifecycle_rules=[{"id": "r", "expiration_days": 2}], policy=POLICY)
    assert result["diff"]["before"] == {
        "name": BUCKET,
        "versioning": "Enabled",
        "lifecycle_rules": [rule("r", expiration_days=1)],
        "policy": {},
    }
    assert result["diff"]["after"] == {
        "name": BUCKET,
        "versioning": "Enabled",
        "lifecycle_rules": [rule("r", expiration_days=2)],
        "policy": POLICY,
    }
    assert result["bucket"] == result["diff"]["after"]


# ---------------------------------------------------------------------------
# absent
# ---------------------------------------------------------------------------


def test_absent_deletes_empty_bucket(run, boto3_client):
    run()
    result = run(state="absent")
    assert result["changed"] is True
    assert result["bucket"] == {}
    assert result["diff"]["after"] == {}
    assert BUCKET not in bucket_names(boto3_client)
    assert run(state="absent")["changed"] is False


def test_absent_non_empty_without_force_fails(run, boto3_client):
    run()
    boto3_client.put_object(Bucket=BUCKET, Key="data/1", Body=b"x")
    result = run(state="absent")
    assert result["failed"] is True
    assert result["msg"] == f"bucket {BUCKET} is not empty; set force=true to delete it and all its objects"
    assert BUCKET in bucket_names(boto3_client)


def test_absent_with_force_deletes_all_versions(run, boto3_client):
    run(versioning=True)
    for body in (b"1", b"2", b"3"):
        boto3_client.put_object(Bucket=BUCKET, Key="data/obj", Body=body)
    boto3_client.put_object(Bucket=BUCKET, Key="other", Body=b"x")
    boto3_client.delete_object(Bucket=BUCKET, Key="other")  # leaves a delete marker
    boto3_client.create_multipart_upload(Bucket=BUCKET, Key="unfinished")
    assert boto3_client.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 1

    refused = run(state="absent")
    assert refused["failed"] is True
    assert "not empty" in refused["msg"]

    result = run(state="absent", force=True)
    assert result.exit_code == 0, result
    assert result["changed"] is True
    assert result["deleted_objects"] == 5  # 3 versions + 1 version + 1 delete marker
    assert BUCKET not in bucket_names(boto3_client)


def test_absent_with_force_many_objects(run, boto3_client):
    run()
    for i in range(25):
        boto3_client.put_object(Bucket=BUCKET, Key=f"k/{i}", Body=b"x")
    result = run(state="absent", force=True)
    assert result["deleted_objects"] == 25
    assert BUCKET not in bucket_names(boto3_client)


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


def test_unreachable_endpoint(run_module, closed_port_url):
    result = run_module(
        s3_bucket.main,
        offline_args(closed_port_url, name=BUCKET, retries=0, connect_timeout=2),
    )
    assert result["failed"] is True
    assert result["msg"].startswith(f"cannot reach S3 endpoint {closed_port_url}: ")
    assert result["msg"].endswith("Check endpoint_url and that the service is running")


def test_bad_access_key(run, boto3_client):
    result = run(access_key="not-the-right-key")
    assert result["failed"] is True
    assert result["msg"].startswith("S3 rejected the credentials (InvalidAccessKeyId: ")
    assert "Check access_key/secret_key" in result["msg"]
    assert result["error_code"] == "InvalidAccessKeyId"
    assert bucket_names(boto3_client) == []


def test_bad_secret_key(run, boto3_client):
    result = run(secret_key="not-the-right-secret")
    assert result["failed"] is True
    assert result["msg"].startswith("S3 rejected the credentials (SignatureDoesNotMatch: ")
    assert "not-the-right-secret" not in json.dumps(result)
    assert bucket_names(boto3_client) == []


def test_invalid_endpoint_url(run_module):
    result = run_module(s3_bucket.main, offline_args("minio:9000", name=BUCKET))
    assert result["failed"] is True
    assert "endpoint_url must be an http:// or https:// URL" in result["msg"]


@pytest.mark.parametrize(
    "name, rule_text",
    [
        ("ab", "must be between 3 and 63 characters long, it has 2"),
        ("a" * 64, "must be between 3 and 63 characters long, it has 64"),
        ("My-Bucket", "must not contain uppercase letters"),
        ("my_bucket", "may only contain lowercase letters, digits, dots (.) and hyphens (-); found '_'"),
        ("my bucket!", "found ' ', '!'"),
        ("-bucket", "must start and end with a lowercase letter or a digit"),
        ("bucket-", "must start and end with a lowercase letter or a digit"),
        (".bucket", "must start and end with a lowercase letter or a digit"),
        ("my..bucket", "must not contain two adjacent dots (..)"),
        ("my.-bucket", "must not contain a dot next to a hyphen"),
        ("192.168.5.4", "must not be formatted as an IP address"),
        ("10.0.0.300", "must not be formatted as an IP address"),
        ("xn--bucket", "must not start with the reserved prefix 'xn--'"),
        ("sthree-bucket", "must not start with the reserved prefix 'sthree-'"),
        ("bucket-s3alias", "must not end with the reserved suffix '-s3alias'"),
        ("bucket--ol-s3", "must not end with the reserved suffix '--ol-s3'"),
    ],
)
def test_invalid_bucket_names_fail_without_network(run_module, closed_port_url, name, rule_text):
    # The endpoint is a closed port: any request would fail with "cannot reach".
    result = run_module(
        s3_bucket.main,
        offline_args(closed_port_url, name=name, retries=0),
    )
    assert result["failed"] is True
    assert result["msg"].startswith(f"invalid bucket name {name!r}: ")
    assert rule_text in result["msg"]


@pytest.mark.parametrize("name", ["abc", "a" * 63, "my.bucket.1", "loki-chunks", "1bucket9", "192.168.5.x"])
def test_valid_bucket_names(name):
    assert s3_bucket.bucket_name_problem(name) is None


def test_missing_boto3(run_module, monkeypatch, s3_params):
    from ansible_collections.o11y.stack.plugins.module_utils import s3 as s3_utils

    monkeypatch.setattr(s3_utils, "HAS_BOTO3", False)
    monkeypatch.setattr(s3_utils, "BOTO3_IMPORT_ERROR", "Traceback: No module named 'boto3'")
    result = run_module(s3_bucket.main, dict(s3_params, name=BUCKET))
    assert result["failed"] is True
    assert "Failed to import the required Python library (boto3)" in result["msg"]


# ---------------------------------------------------------------------------
# pure helpers
# ---------------------------------------------------------------------------


def test_normalize_policy():
    assert s3_bucket.policies_equal(POLICY, json.loads(POLICY_REORDERED_TEXT))
    assert not s3_bucket.policies_equal(POLICY, {})
    other = json.loads(json.dumps(POLICY))
    other["Statement"][0]["Effect"] = "Deny"
    assert not s3_bucket.policies_equal(POLICY, other)


def test_rule_from_s3_variants():
    assert s3_bucket.rule_from_s3({"ID": "a", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}}) == rule(
        "a", expiration_days=1
    )
    assert s3_bucket.rule_from_s3(
        {"ID": "a", "Status": "Disabled", "Filter": {"And": {"Prefix": "p/"}}, "Expiration": {"Days": 1}}
    ) == rule("a", prefix="p/", enabled=False, expiration_days=1)
    tagged = s3_bucket.rule_from_s3(
        {"ID": "t", "Status": "Enabled", "Filter": {"Tag": {"Key": "k", "Value": "v"}}, "Expiration": {"Days": 1}}
    )
    assert tagged["other"] == {"Filter": {"Tag": {"Key": "k", "Value": "v"}}}
    assert s3_bucket.rule_to_s3(rule("a", prefix="p/", expiration_days=3)) == {
        "ID": "a",
        "Status": "Enabled",
        "Filter": {"Prefix": "p/"},
        "Expiration": {"Days": 3},
    }
