#!/usr/bin/env python3
"""Print the S3-side state of buckets as JSON (independent of the module under test).

Usage: S3_ENDPOINT=... S3_ACCESS_KEY=... S3_SECRET_KEY=... s3_state.py BUCKET...
"""
import json
import os
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

s3 = boto3.client(
    "s3",
    endpoint_url=os.environ["S3_ENDPOINT"],
    aws_access_key_id=os.environ["S3_ACCESS_KEY"],
    aws_secret_access_key=os.environ["S3_SECRET_KEY"],
    region_name=os.environ.get("S3_REGION", "us-east-1"),
    config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
)


def optional(call, key, missing_codes):
    try:
        return call()[key]
    except ClientError as err:
        if err.response["Error"]["Code"] in missing_codes:
            return None
        raise


state = {"buckets": sorted(b["Name"] for b in s3.list_buckets()["Buckets"]), "details": {}}
for name in sys.argv[1:]:
    if name not in state["buckets"]:
        continue
    state["details"][name] = {
        "versioning": s3.get_bucket_versioning(Bucket=name).get("Status", "Disabled"),
        "lifecycle": optional(lambda: s3.get_bucket_lifecycle_configuration(Bucket=name), "Rules",
                              ("NoSuchLifecycleConfiguration",)),
        "policy": json.loads(optional(lambda: s3.get_bucket_policy(Bucket=name), "Policy",
                                      ("NoSuchBucketPolicy",)) or "null"),
    }
json.dump(state, sys.stdout, default=str)
