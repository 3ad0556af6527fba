# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Mimir stand-in run as a subprocess on 127.0.0.1 against an S3Server."""

from __future__ import annotations

import functools
import socket
import sys
from pathlib import Path

import pytest
import yaml

STANDINS = Path(__file__).resolve().parents[2] / "standins"
if str(STANDINS) not in sys.path:
    sys.path.insert(0, str(STANDINS))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from o11y_standins.s3server import S3Server  # noqa: E402
from o11y_standins.testing import StandinProcess, free_port, http_get  # noqa: E402

ACCESS = "o11y-root"
SECRET = "mimir-test-secret-key"
BUCKETS = ("mimir-blocks", "mimir-ruler", "mimir-alertmanager")


@pytest.fixture
def s3():
    server = S3Server(access_key=ACCESS, secret_key=SECRET)
    server.start()
    yield server
    server.stop()


def make_bucket(server, *names):
    client = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=ACCESS,
                          aws_secret_access_key=SECRET, config=Config(s3={"addressing_style": "path"}))
    for name in names:
        client.create_bucket(Bucket=name)


@pytest.fixture
def procs(start_standin):
    return functools.partial(start_standin, "mimir")


def config(tmp_path, s3_url, secret="${S3_SECRET_KEY}", **over):
    ports = {"http": free_port(), "grpc": free_port(), "memberlist": free_port()}
    fallback = tmp_path / "fallback.yml"
    fallback.write_text("route:\n  receiver: default\nreceivers:\n  - name: default\n")
    data = tmp_path / "data"
    cfg = {
        "target": "all",
        "multitenancy_enabled": False,
        "usage_stats": {"enabled": False},
        "server": {"http_listen_address": "127.0.0.1", "http_listen_port": ports["http"],
                   "grpc_listen_address": "127.0.0.1", "grpc_listen_port": ports["grpc"], "log_level": "info"},
        "common": {"storage": {"backend": "s3", "s3": {
            "endpoint": s3_url.split("://", 1)[1], "region": "us-east-1", "access_key_id": ACCESS,
            "secret_access_key": secret, "insecure": True}}},
        "blocks_storage": {"s3": {"bucket_name": "mimir-blocks"}, "tsdb": {"dir": str(data / "tsdb")},
                           "bucket_store": {"sync_dir": str(data / "tsdb-sync")}},
        "ruler_storage": {"s3": {"bucket_name": "mimir-ruler"}},
        "alertmanager_storage": {"s3": {"bucket_name": "mimir-alertmanager"}},
        "activity_tracker": {"filepath": str(data / "metrics-activity.log")},
        "memberlist": {"bind_addr": ["127.0.0.1"], "bind_port": ports["memberlist"], "join_members": []},
        "ingester": {"ring": {"kvstore": {"store": "memberlist"}, "instance_addr": "127.0.0.1",
                              "replication_factor": 1}},
        "store_gateway": {"sharding_ring": {"replication_factor": 1}},
        "compactor": {"data_dir": str(data / "compactor")},
        "ruler": {"rule_path": str(data / "ruler"), "alertmanager_url": "http://127.0.0.1/alertmanager"},
        "alertmanager": {"data_dir": str(data / "alertmanager"), "fallback_config_file": str(fallback),
                         "external_url": "http://127.0.0.1/alertmanager", "sharding_ring": {"replication_factor": 1}},
        "limits": {"compactor_blocks_retention_period": "30d"},
    }
    for path, value in over.items():
        cur = cfg
        keys = path.split("__")
        for k in keys[:-1]:
            cur = cur.setdefault(k, {})
        cur[keys[-1]] = value
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path, ports


ENV = {"S3_SECRET_KEY": SECRET, "O11Y_STANDIN_BUCKET_WAIT": "0"}


def run(args, env=None, timeout=30):
    p = StandinProcess(["mimir"] + list(args), env=env)
    try:
        rc = p.run(timeout=timeout)
        return rc, p.stdout, p.stderr
    finally:
        p.close()


# -- CLI ---------------------------------------------------------------------

def test_version():
    rc, out, _err = run(["-version"])
    assert rc == 0
    assert out.startswith("Mimir, version ")


def test_unknown_flag_exits_2():
    rc, _out, err = run(["-no.such-flag=1"])
    assert rc == 2
    assert "flag provided but not defined: -no.such-flag" in err


def test_bad_flag_value_exits_2():
    rc, _out, err = run(["-server.http-listen-port=abc"])
    assert rc == 2
    assert 'invalid value "abc" for flag -server.http-listen-port' in err


def test_help_lists_flags():
    rc, out, _err = run(["-help"])
    assert rc == 2
    assert "-config.expand-env" in out and "-target" in out


def test_modules_validates_and_lists(tmp_path, s3):
    path, _ports = config(tmp_path, s3.url)
    rc, out, err = run(["-modules", "-config.file=%s" % path])
    assert rc == 0, err
    assert "ingester *" in out and "Modules marked with * are included in target All." in out


# -- strict configuration ----------------------------------------------------

@pytest.mark.parametrize("key,path", [
    ("server__no_such_key", "server.no_such_key"),
    ("memberlist__join", "memberlist.join"),  # the flag name is not a YAML key
    ("limits__ingestion_rates", "limits.ingestion_rates"),
    ("ingester__ring__kvstore__stores", "ingester.ring.kvstore.stores"),
    ("common__storage__s3__bucketname", "common.storage.s3.bucketname"),
])
def test_unknown_keys_rejected(tmp_path, s3, key, path):
    cfg, _ports = config(tmp_path, s3.url, **{key: 1})
    rc, _out, err = run(["-modules", "-config.file=%s" % cfg])
    assert rc == 1
    assert "error loading config from %s" % cfg in err
    assert path in err and path.rsplit(".", 1)[1] in err


def test_misplaced_key_rejected(tmp_path, s3):
    # retention belongs to limits, not to compactor
    cfg, _ports = config(tmp_path, s3.url, compactor__compactor_blocks_retention_period="30d")
    rc, _out, err = run(["-modules", "-config.file=%s" % cfg])
    assert rc == 1
    assert "field compactor_blocks_retention_period not found in type compactor.Config" in err


def test_wrong_type_rejected(tmp_path, s3):
    cfg, _ports = config(tmp_path, s3.url, server__http_listen_port="nine")
    rc, _out, err = run(["-modules", "-config.file=%s" % cfg])
    assert rc == 1
    assert "server.http_listen_port" in err


def test_validation_errors(tmp_path, s3):
    cfg, _ports = config(tmp_path, s3.url, ingester__ring__replication_factor=0)
    rc, _out, err = run(["-modules", "-config.file=%s" % cfg])
    assert rc == 1 and "error validating config" in err and "replication factor" in err
    cfg, _ports = config(tmp_path, s3.url, ruler_storage__s3__bucket_name="mimir-blocks")
    rc, _out, err = run(["-modules", "-config.file=%s" % cfg])
    assert rc == 1 and "same bucket mimir-blocks" in err


def test_missing_config_file(tmp_path):
    rc, _out, err = run(["-config.file=%s" % (tmp_path / "nope.yml")])
    assert rc == 1 and "no such file or directory" in err


# -- running -------------------------------------------------------------------

def _listening(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_serves_ready_metrics_and_ports(tmp_path, s3, procs):
    make_bucket(s3, *BUCKETS)
    cfg, ports = config(tmp_path, s3.url)
    p = procs(["-config.file=%s" % cfg, "-config.expand-env=true", "-target=all"], env=ENV)
    base = "http://127.0.0.1:%d" % ports["http"]
    p.wait_http(base + "/ready")
    assert _listening(ports["grpc"]) and _listening(ports["memberlist"])
    status, _h, body = http_get(base + "/metrics")
    assert status == 200
    assert b'mimir_build_info{' in body and b'version="3.1.1"' in body
    status, _h, body = http_get(base + "/memberlist")
    assert status == 200 and b"this node" in body
    assert (tmp_path / "data" / "metrics-activity.log").exists()
    assert (tmp_path / "data" / "tsdb").is_dir()
    assert p.terminate() == 0


def test_refuses_to_start_without_bucket(tmp_path, s3):
    make_bucket(s3, "mimir-blocks", "mimir-ruler")
    cfg, _ports = config(tmp_path, s3.url)
    rc, _out, err = run(["-config.file=%s" % cfg, "-config.expand-env=true"], env=ENV)
    assert rc == 1
    assert "mimir-alertmanager" in err


def test_secret_not_expanded_without_expand_env(tmp_path, s3):
    make_bucket(s3, *BUCKETS)
    cfg, _ports = config(tmp_path, s3.url)
    rc, _out, err = run(["-config.file=%s" % cfg], env=ENV)
    assert rc == 1
    assert "mimir-blocks" in err  # the literal ${S3_SECRET_KEY} does not authenticate


def test_port_in_use_fails(tmp_path, s3):
    make_bucket(s3, *BUCKETS)
    cfg, ports = config(tmp_path, s3.url)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports["grpc"]))
        busy.listen(1)
        rc, _out, err = run(["-config.file=%s" % cfg, "-config.expand-env=true"], env=ENV)
    assert rc == 1 and "address already in use" in err


def test_missing_fallback_config_fails(tmp_path, s3):
    make_bucket(s3, *BUCKETS)
    cfg, _ports = config(tmp_path, s3.url, alertmanager__fallback_config_file=str(tmp_path / "missing.yml"))
    rc, _out, err = run(["-config.file=%s" % cfg, "-config.expand-env=true"], env=ENV)
    assert rc == 1 and "fallback" in err
