# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pyroscope stand-in: ``pyroscope`` on the surface o11y.stack uses.

Behaves like Grafana Pyroscope 2.2.1 where the collection touches it:

* CLI (Go ``flag``, single dash or double dash): ``-config.file``,
  ``-config.expand-env``, ``-target``, ``-version``, ``-modules``, ``-h``/``-help``,
  ``-help-all`` and the port/storage flags listed in :func:`flagset`; an
  undefined flag prints ``flag provided but not defined: -x`` and exits 2.
* Like upstream's main, the configuration file is parsed (strictly: unknown or
  misplaced keys fail, ``failed parsing config: ...``, exit 1) and validated
  **before** ``-version``/``-modules``/``-help`` are honoured, so
  ``pyroscope -config.file=F -version`` is the configuration check the role uses.
  ``${VAR}`` is expanded only with ``-config.expand-env=true``.
* Serving: HTTP on ``server.http_listen_port`` (``/ready``, ``/metrics`` with
  ``pyroscope_build_info``, ``/memberlist`` listing this node and the
  ``memberlist.join_members`` whose gossip port answers, ``/config``), and TCP
  listeners on the gRPC port, the memberlist port and the metastore Raft
  ``bind_address``.
* Profiles (in memory, per tenant: ``X-Scope-OrgID`` with ``multitenancy_enabled``,
  else ``anonymous``): ``POST /ingest`` (and ``/pyroscope/ingest``) with
  ``name=<app>.<type>{k=v,...}``, ``from``, ``until``, ``sampleRate``,
  ``spyName``, ``units``, ``aggregationType`` and ``format`` ``folded``
  (default, ``stack;frames count`` per line) or ``lines``, converted to a
  series like upstream's ingest adapter (``__name__`` ``process_cpu`` etc.,
  ``service_name``, ``pyroscope_spy``); connect ``push.v1.PusherService/Push``
  (pprof samples, plain or gzipped).  Queries as connect unary RPCs (JSON or
  proto codec): ``querier.v1.QuerierService/ProfileTypes``, ``/LabelNames``,
  ``/LabelValues``.  See :class:`ProfilingAPI`.
* Refuses to start (exit 1, naming the bucket) when ``storage.s3.bucket_name``
  does not exist on ``storage.s3.endpoint`` with the configured credentials.
* ``Type=simple`` like upstream's unit; logfmt to stderr; SIGTERM -> exit 0.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from . import framework as fw
from . import promql, wire

DEFAULT_VERSION = "2.2.1"
DEFAULT_GOVERSION = "go1.25.12"
READY_DELAY = float(os.environ.get("O11Y_STANDIN_READY_DELAY", "1.0"))

# ---------------------------------------------------------------------------
# configuration schema (keys of the 2.2.1 configuration reference)
# ---------------------------------------------------------------------------

S, I, B, D, F, L, A = fw.Str, fw.Int, fw.Bool, fw.Duration, fw.Float, fw.List, fw.Any_
MD = fw.ModelDuration


def _tls_block(name: str) -> fw.Struct:
    return fw.Struct(name, {k: S() for k in ("cert", "key", "client_ca", "cert_file", "key_file",
                                               "client_auth_type", "client_ca_file")})


SERVER = fw.Struct("server.Config", {
    "http_listen_network": S(default="tcp"), "http_listen_address": S(default=""),
    "http_listen_port": I(default=4040), "http_listen_conn_limit": I(),
    "grpc_listen_network": S(default="tcp"), "grpc_listen_address": S(default=""),
    "grpc_listen_port": I(default=9095), "grpc_listen_conn_limit": I(),
    "grpc_collect_max_streams_by_conn": B(), "proxy_protocol_enabled": B(),
    "tls_cipher_suites": S(), "tls_min_version": S(),
    "http_tls_config": _tls_block("server.TLSConfig"), "grpc_tls_config": _tls_block("server.TLSConfig"),
    "register_instrumentation": B(), "report_grpc_codes_in_instrumentation_label_enabled": B(),
    "graceful_shutdown_timeout": D(), "http_server_read_timeout": D(), "http_server_read_header_timeout": D(),
    "http_server_write_timeout": D(), "http_server_idle_timeout": D(),
    "http_log_closed_connections_without_response_enabled": B(),
    "grpc_server_max_recv_msg_size": I(), "grpc_server_max_send_msg_size": I(),
    "grpc_server_max_concurrent_streams": I(), "grpc_server_max_connection_idle": D(),
    "grpc_server_max_connection_age": D(), "grpc_server_max_connection_age_grace": D(),
    "grpc_server_keepalive_time": D(), "grpc_server_keepalive_timeout": D(),
    "grpc_server_min_time_between_pings": D(), "grpc_server_ping_without_stream_allowed": B(),
    "grpc_server_num_workers": I(), "grpc_server_stats_tracking_enabled": B(),
    "grpc_server_recv_buffer_pools_enabled": B(), "grpc_server_read_buffer_size": I(),
    "grpc_server_write_buffer_size": I(),
    "log_format": fw.Enum("logfmt", "json"), "log_level": fw.Enum("debug", "info", "warn", "error"),
    "log_source_ips_enabled": B(), "log_source_ips_full": B(), "log_source_ips_header": S(),
    "log_source_ips_regex": S(), "log_request_headers": B(), "log_request_at_info_level_enabled": B(),
    "log_request_exclude_headers_list": S(), "trace_request_headers": B(),
    "trace_request_exclude_headers_list": S(), "http_path_prefix": S(),
    "cluster_validation": fw.Struct("server.ClusterValidationConfig", {
        "label": S(), "additional_labels": S(),
        "grpc": fw.Struct("server.ClusterValidationProtocolConfig", {"enabled": B(), "soft_validation": B()}),
        "http": fw.Struct("server.ClusterValidationProtocolConfigForHTTP", {
            "enabled": B(), "soft_validation": B(), "excluded_paths": S(), "excluded_user_agents": S()}),
    }),
    "create_new_traces": B(),
})

MEMBERLIST = fw.Struct("memberlist.KVConfig", {
    "node_name": S(), "randomize_node_name": B(), "stream_timeout": D(), "retransmit_factor": I(),
    "pull_push_interval": D(), "gossip_interval": D(), "gossip_nodes": I(), "gossip_to_dead_nodes_time": D(),
    "dead_node_reclaim_time": D(), "compression_enabled": B(), "notify_interval": D(),
    "received_messages_queue_size": I(), "processed_messages_queue_size": I(), "compression_algorithm": S(),
    "advertise_addr": S(default=""), "advertise_port": I(default=7946), "cluster_label": S(),
    "cluster_label_verification_disabled": B(), "join_members": L(S(), default=[]),
    "min_join_backoff": D(), "max_join_backoff": D(), "max_join_retries": I(),
    "abort_if_cluster_fast_join_fails": B(), "abort_if_cluster_fast_join_fails_min_nodes": I(),
    "abort_if_cluster_join_fails": B(), "rejoin_interval": D(), "rejoin_seed_nodes": L(S()),
    "left_ingesters_timeout": D(), "obsolete_entries_timeout": D(), "leave_timeout": D(),
    "broadcast_timeout_for_local_updates_on_shutdown": D(), "message_history_buffer_bytes": I(),
    "watch_prefix_buffer_size": I(), "bind_addr": L(S(), default=[]), "bind_port": I(default=7946),
    "packet_dial_timeout": D(), "packet_write_timeout": D(), "max_concurrent_writes": I(),
    "acquire_writer_timeout": D(), "tls_enabled": B(), "tls_cert_path": S(), "tls_key_path": S(),
    "tls_ca_path": S(), "tls_server_name": S(), "tls_insecure_skip_verify": B(), "tls_cipher_suites": S(),
    "tls_min_version": S(),
    "zone_aware_routing": fw.Struct("memberlist.ZoneAwareRoutingConfig", {
        "enabled": B(), "instance_availability_zone": S(), "role": S()}),
    "propagation_delay_tracker": fw.Struct("memberlist.PropagationDelayTrackerConfig", {
        "enabled": B(), "beacon_interval": D(), "beacon_lifetime": D(), "log_beacons_latency_longer_than": D()}),
})

RAFT = fw.Struct("raftnode.Config", {
    "dir": S(default="./data/v2/metastore/raft"), "snapshots_dir": S(), "snapshots_import_dir": S(),
    "bootstrap_peers": L(S(), default=[]), "bootstrap_expect_peers": I(default=1), "auto_join": B(),
    "server_id": S(default="localhost:9099"), "bind_address": S(default="localhost:9099"),
    "advertise_address": S(default="localhost:9099"),
    "apply_timeout": D(), "log_index_check_interval": D(), "read_index_max_distance": I(),
    "wal_cache_entries": I(), "trailing_logs": I(), "snapshots_retain": I(), "snapshot_interval": D(),
    "snapshot_threshold": I(), "transport_conn_pool_size": I(), "transport_timeout": D(),
    "log_store_timeout": D(),
})

METASTORE = fw.Struct("metastore.Config", {
    "address": S(default="localhost:9095"), "grpc_client_config": A(), "min_ready_duration": D(),
    "raft": RAFT, "snapshot_compression": S(), "snapshot_rate_limit": I(), "snapshot_compact_on_restore": B(),
    "data_dir": S(default="./data/v2/metastore/data"),
    "index": fw.Struct("index.Config", {
        "shard_cache_size": I(), "block_write_cache_size": I(), "block_read_cache_size": I(),
        "cleanup_max_partitions": I(), "cleanup_grace_period": D(), "cleanup_interval": D(),
        "dlq_recovery_check_interval": D()}),
    "levels": A(), "cleanupbatchsize": I(), "cleanupdelay": D(), "cleanupjobminlevel": I(),
    "cleanupjobmaxlevel": I(), "compaction_max_failures": I(), "compaction_job_lease_duration": D(),
    "compaction_max_job_queue_size": I(),
})

S3 = fw.Struct("s3.Config", {
    "endpoint": S(default=""), "region": S(default=""), "bucket_name": S(default=""),
    "secret_access_key": S(default=""), "access_key_id": S(default=""), "insecure": B(default=False),
    "signature_version": fw.Enum("v4", "v2"), "force_path_style": B(),
    "bucket_lookup_type": fw.Enum("auto", "virtual-hosted", "path"), "native_aws_auth_enabled": B(),
    "sse": fw.Struct("s3.SSEConfig", {"type": fw.Enum("", "SSE-KMS", "SSE-S3"), "kms_key_id": S(),
                                      "kms_encryption_context": S()}),
    "http": fw.Struct("s3.HTTPConfig", {
        "idle_conn_timeout": D(), "response_header_timeout": D(), "insecure_skip_verify": B(),
        "tls_handshake_timeout": D(), "expect_continue_timeout": D(), "max_idle_connections": I(),
        "max_idle_connections_per_host": I(), "max_connections_per_host": I()}),
})

STORAGE = fw.Struct("pyroscope.StorageConfig", {
    "backend": fw.Enum("", "s3", "gcs", "azure", "swift", "filesystem", "cos", default="filesystem"),
    "s3": S3, "gcs": A(), "azure": A(), "swift": A(), "cos": A(),
    "filesystem": fw.Struct("filesystem.Config", {"dir": S()}),
    "prefix": S(), "storage_prefix": S(),
})

_LIMIT_KEYS_INT = (
    "max_label_name_length", "max_label_value_length", "max_label_names_per_series", "max_sessions_per_series",
    "push_max_concurrency", "max_profile_size_bytes", "max_profile_stacktrace_samples",
    "max_profile_stacktrace_sample_labels", "max_profile_stacktrace_depth", "max_profile_symbol_value_length",
    "ingestion_tenant_shard_size", "max_local_series_per_tenant", "max_global_series_per_tenant",
    "max_query_parallelism", "max_flamegraph_nodes_default", "max_flamegraph_nodes_max",
    "store_gateway_tenant_shard_size", "max_async_query_concurrency", "compactor_split_and_merge_shards",
    "compactor_split_and_merge_stage_size", "compactor_split_groups", "compactor_tenant_shard_size",
    "max_recording_rules", "adaptive_placement_tenant_shards", "adaptive_placement_default_dataset_shards",
    "adaptive_placement_min_dataset_shards", "adaptive_placement_max_dataset_shards",
    "adaptive_placement_unit_size_bytes", "write_path_ingester_weight", "write_path_segment_writer_weight",
)
_LIMIT_KEYS_BOOL = (
    "keep_stripped_profiles", "enforce_labels_order", "disable_label_sanitization", "query_analysis_enabled",
    "query_analysis_series_enabled", "include_stripped_profiles", "query_sanitize_on_merge",
    "compactor_downsampler_enabled", "max_flamegraph_nodes_on_select_merge_profile", "async_ingest",
    "enable_query_backend", "query_tree_enabled",
)
_LIMIT_KEYS_DUR = (
    "distributor_aggregation_window", "distributor_aggregation_period", "max_query_lookback", "max_query_length",
    "split_queries_by_interval", "compactor_blocks_retention_period", "compactor_partial_block_deletion_delay",
    "reject_older_than", "reject_newer_than", "retention_period", "ingestion_artificial_delay",
    "adaptive_placement_burst_window", "adaptive_placement_decay_window", "write_path_segment_writer_timeout",
)
_LIMIT_KEYS_STR = (
    "s3_sse_type", "s3_sse_kms_key_id", "s3_sse_kms_encryption_context", "write_path", "write_path_compression",
    "enable_query_backend_from", "adaptive_placement_load_balancing",
)
_LIMIT_FIELDS: Dict[str, fw.Schema] = {"ingestion_rate_mb": F(), "ingestion_burst_size_mb": F(),
                                       "ingestion_body_limit_mb": F()}
_LIMIT_FIELDS.update({k: I() for k in _LIMIT_KEYS_INT})
_LIMIT_FIELDS.update({k: B() for k in _LIMIT_KEYS_BOOL})
_LIMIT_FIELDS.update({k: MD(keep_text=True) for k in _LIMIT_KEYS_DUR})
_LIMIT_FIELDS.update({k: S() for k in _LIMIT_KEYS_STR})
_LIMIT_FIELDS.update({k: A() for k in ("ingestion_limit", "distributor_sampling", "distributor_usage_groups",
                                       "ingestion_relabeling_rules", "ingestion_relabeling_default_rules_position",
                                       "sample_type_relabeling_rules", "recording_rules", "symbolizer")})
LIMITS = fw.Struct("validation.Limits", _LIMIT_FIELDS)

_KV = fw.Struct("kv.Config", {
    "store": fw.Enum("consul", "etcd", "inmemory", "memberlist", "multi"), "prefix": S(),
    "consul": A(), "etcd": A(), "multi": A()})

SEGMENT_WRITER = fw.Struct("segmentwriter.Config", {
    "grpc_client_config": A(),
    "lifecycler": fw.Struct("ring.LifecyclerConfig", {
        "ring": fw.Struct("ring.Config", {
            "kvstore": _KV, "heartbeat_timeout": D(), "replication_factor": I(default=3, min=1),
            "zone_awareness_enabled": B(), "excluded_zones": S()}),
        "num_tokens": I(), "heartbeat_period": D(), "heartbeat_timeout": D(), "observe_period": D(),
        "join_after": D(), "min_ready_duration": D(), "interface_names": L(S()), "enable_inet6": B(),
        "final_sleep": D(), "tokens_file_path": S(), "availability_zone": S(), "unregister_on_shutdown": B(),
        "readiness_check_ring_health": B(), "address": S(), "port": I(), "id": S()}),
    "segment_duration": D(), "flush_concurrency": I(), "upload-timeout": D(), "upload-retry_max_retries": I(),
    "upload-retry_min_period": D(), "upload-retry_max_period": D(), "upload-hedge_upload_after": D(),
    "upload-hedge_rate_max": F(), "upload-hedge_rate_burst": I(), "metadata_dlq_enabled": B(),
    "metadata_update_timeout": D(), "bucket_health_check_enabled": B(), "bucket_health_check_timeout": D(),
})

ROOT = fw.Struct("pyroscope.Config", {
    "target": S(default="all"), "api": A(), "server": SERVER, "metastore": METASTORE, "distributor": A(),
    "frontend": A(), "query_backend": A(), "adaptive_placement": A(), "symbolizer": A(),
    "frontend_worker": A(), "limits": LIMITS, "segment_writer": SEGMENT_WRITER, "memberlist": MEMBERLIST,
    "pyroscopedb": A(), "tracing": A(), "overrides_exporter": A(), "runtime_config": A(),
    "compaction_worker": A(), "tenant_settings": A(), "storage": STORAGE, "self_profiling": A(),
    "multitenancy_enabled": B(default=False), "analytics": A(), "show_banner": B(), "shutdown_delay": D(),
    "architecture_storage": S(default="v1-v2-dual"), "admin_server": A(), "embedded_grafana": A(),
    "querier": A(), "ingester": A(), "compactor": A(), "store_gateway": A(), "query_scheduler": A(),
})

MODULES_IN_ALL = ["compaction-worker", "distributor", "metastore", "query-backend", "query-frontend",
                  "segment-writer", "tenant-settings", "ad-hoc-profiles", "overrides-exporter", "admin"]


# ---------------------------------------------------------------------------
# version / CLI
# ---------------------------------------------------------------------------

def _info() -> Dict[str, str]:
    info = fw.build_info()
    if info.get("component") != "pyroscope":
        info.update(version=DEFAULT_VERSION, goversion=DEFAULT_GOVERSION)
    return info


def version_text() -> str:
    """prometheus/common ``version.Print("pyroscope")``."""
    info = _info()
    goos, goarch = fw.go_platform()
    return ("pyroscope, version %s (branch: %s, revision: %s)\n"
            "  build user:       %s\n"
            "  build date:       %s\n"
            "  go version:       %s\n"
            "  platform:         %s/%s\n"
            "  tags:             unknown\n") % (info["version"], info.get("branch", "HEAD"),
                                                 info.get("revision", "")[:9], info.get("build_user", ""),
                                                 info.get("build_date", ""), info["goversion"], goos, goarch)


def _log_level(value: str) -> str:
    if value not in ("debug", "info", "warn", "error"):
        raise ValueError("unrecognized log level %s" % value)
    return value


def flagset() -> fw.FlagSet:
    fs = fw.FlagSet(sys.argv[0] if sys.argv and sys.argv[0] else "pyroscope")
    fs.string("config.file", "", "yaml file to load")
    fs.bool("config.expand-env", False, "Expands ${var} in config according to the values of the environment variables.")
    fs.bool("config.show_banner", True, "Prints the application banner at startup.")
    fs.string("target", "all", "Comma-separated list of Pyroscope modules to load. The alias 'all' can be used "
              "in the list to load a number of core modules and will enable single-binary mode. ")
    fs.bool("version", False, "Show the version of pyroscope and exit")
    fs.bool("modules", False, "List available modules that can be used as target and exit.")
    fs.bool("h", False, "Print basic help.")
    fs.bool("help", False, "Print basic help.")
    fs.bool("help-all", False, "Print help, also including advanced and experimental parameters.")
    fs.string("architecture.storage", "v1-v2-dual", "Storage architecture layer.")
    fs.bool("auth.multitenancy-enabled", False, "When set to true, incoming HTTP requests must specify tenant ID "
            "in HTTP X-Scope-OrgId header.")
    fs.string("server.http-listen-address", "", "HTTP server listen address.")
    fs.int("server.http-listen-port", 4040, "HTTP server listen port.")
    fs.string("server.grpc-listen-address", "", "gRPC server listen address.")
    fs.int("server.grpc-listen-port", 9095, "gRPC server listen port.")
    fs.int("memberlist.bind-port", 7946, "Port to listen on for gossip messages.")
    fs.string("memberlist.advertise-addr", "", "Gossip address to advertise to other members in the cluster.")
    fs.string_list("memberlist.join", usage="Other cluster members to join.")
    fs.string("metastore.address", "localhost:9095", "")
    fs.string("metastore.raft.bind-address", "localhost:9099", "")
    fs.string("storage.backend", "filesystem", "Backend storage to use.")
    fs.string("storage.s3.endpoint", "", "The S3 bucket endpoint.")
    fs.string("storage.s3.bucket-name", "", "S3 bucket name")
    fs.string("storage.s3.access-key-id", "", "S3 access key ID")
    fs.string("storage.s3.secret-access-key", "", "S3 secret access key")
    fs.string("storage.s3.region", "", "S3 region.")
    fs.value("retention-period", fw.parse_model_duration, 31 * 86400.0, "Retention period for the data.")
    fs.value("log.level", _log_level, "info", "Only log messages with the given severity or above. "
             "Valid levels: [debug, info, warn, error]")
    fs.string("log.format", "logfmt", "Output log messages in the given format. Valid formats: [logfmt, json]")
    return fs


# flag -> dotted config path (flags take precedence over the file, like upstream)
FLAG_PATHS = {
    "architecture.storage": "architecture_storage", "auth.multitenancy-enabled": "multitenancy_enabled",
    "server.http-listen-address": "server.http_listen_address", "server.http-listen-port": "server.http_listen_port",
    "server.grpc-listen-address": "server.grpc_listen_address", "server.grpc-listen-port": "server.grpc_listen_port",
    "memberlist.bind-port": "memberlist.bind_port", "memberlist.advertise-addr": "memberlist.advertise_addr",
    "memberlist.join": "memberlist.join_members", "metastore.address": "metastore.address",
    "metastore.raft.bind-address": "metastore.raft.bind_address", "storage.backend": "storage.backend",
    "storage.s3.endpoint": "storage.s3.endpoint", "storage.s3.bucket-name": "storage.s3.bucket_name",
    "storage.s3.access-key-id": "storage.s3.access_key_id",
    "storage.s3.secret-access-key": "storage.s3.secret_access_key", "storage.s3.region": "storage.s3.region",
    "log.level": "server.log_level", "log.format": "server.log_format", "target": "target",
    "retention-period": "limits.retention_period",
}


def _set_path(cfg: Dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    cur = cfg
    for p in parts[:-1]:
        if not isinstance(cur.get(p), dict):
            cur[p] = {}
        cur = cur[p]
    cur[parts[-1]] = value


def load(fs: fw.FlagSet) -> Dict[str, Any]:
    """Defaults <- file <- flags, then Validate; raises fw.ConfigError / ValueError."""
    path = fs["config.file"]
    if path:
        cfg = fw.load_config(path, ROOT, expand=fs["config.expand-env"])
    else:
        cfg = ROOT.defaults(True)
    for flag, dotted in FLAG_PATHS.items():
        if fs.is_set(flag):
            _set_path(cfg, dotted, fs[flag])
    if not fs.is_set("target") and not cfg.get("target"):
        cfg["target"] = "all"
    validate(cfg)
    return cfg


def validate(cfg: Dict[str, Any]) -> None:
    arch = cfg.get("architecture_storage") or "v1-v2-dual"
    if arch not in ("v1", "v2", "v1-v2-dual"):
        raise ValueError("invalid storage layer %r: must be one of v1, v2, v1-v2-dual" % arch)
    if not str(cfg.get("target") or "").strip():
        raise ValueError("no modules specified")
    backend = fw.get_path(cfg, "storage.backend", "") or ""
    if arch != "v1" and backend == "":
        raise ValueError("storage.backend is required for %s storage layer" % arch)
    rf = fw.get_path(cfg, "segment_writer.lifecycler.ring.replication_factor", 3)
    if rf is not None and int(rf) < 1:
        raise ValueError("invalid replication factor %s" % rf)


# ---------------------------------------------------------------------------
# runtime
# ---------------------------------------------------------------------------

def _masked(cfg: Dict[str, Any]) -> Dict[str, Any]:
    import copy
    out = copy.deepcopy(cfg)
    s3 = fw.get_path(out, "storage.s3")
    if isinstance(s3, dict) and s3.get("secret_access_key"):
        s3["secret_access_key"] = "********"
    return out


# ---------------------------------------------------------------------------
# profiles: ingestion, storage and the querier RPCs Grafana's data source calls
# ---------------------------------------------------------------------------

# upstream's ingest adapter (pkg/ingester/pyroscope/ingest_adapter.go, convertMetadata): the type suffix of the
# application name -> (__name__, sample type, sample unit); cpu/itimer/wall use sampleRate as a period
_INGEST_TYPES = {
    "cpu": ("process_cpu", "cpu", "nanoseconds"), "itimer": ("process_cpu", "cpu", "nanoseconds"),
    "wall": ("wall", "wall", "nanoseconds"),
    "inuse_objects": ("memory", "inuse_objects", "count"), "inuse_space": ("memory", "inuse_space", "bytes"),
    "alloc_objects": ("memory", "alloc_objects", "count"), "alloc_space": ("memory", "alloc_space", "bytes"),
    "goroutines": ("goroutine", "goroutines", "count"),
    "mutex_count": ("mutex", "contentions", "count"), "mutex_duration": ("mutex", "delay", "nanoseconds"),
    "block_count": ("block", "contentions", "count"), "block_duration": ("block", "delay", "nanoseconds"),
    "lock_count": ("block", "contentions", "count"), "lock_duration": ("block", "delay", "nanoseconds"),
}
DEFAULT_SAMPLE_RATE = 100


class IngestError(ValueError):
    pass


def parse_app_name(text: str) -> Dict[str, str]:
    """labelset.Parse: ``app.cpu{k=v,...}`` -> labels, ``__name__`` the part before the braces."""
    name, _, rest = text.partition("{")
    name = name.strip()
    if not name:
        raise IngestError("name: service name is required")
    labels = {"__name__": name}
    for pair in rest.rstrip("}").split(","):
        if not pair.strip():
            continue
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key or not all(c.isalnum() or c in "_." for c in key):
            raise IngestError("name: invalid label name: %s" % key)
        labels[key] = value.strip()
    return labels


def parse_folded(body: str, lines_format: bool) -> Dict[str, int]:
    """Stacks of the ``folded`` (``a;b;c 12``) or ``lines`` (one stack per line, count 1) format."""
    stacks: Dict[str, int] = {}
    for line in body.splitlines():
        line = line.strip()
        if not line:
            continue
        if lines_format:
            stack, count = line, 1
        else:
            stack, _, num = line.rpartition(" ")
            try:
                count = int(num)
            except ValueError:
                continue  # like upstream's parser: a line without a count is skipped
        if stack:
            stacks[stack] = stacks.get(stack, 0) + count
    return stacks


def _attime_ms(text: str, default_ms: int) -> int:
    """attime.Parse for the forms clients send: unix seconds (or ms/us/ns by magnitude), ``now``, ``now-1h``."""
    text = (text or "").strip()
    if not text:
        return default_ms
    if text.startswith("now"):
        offset = text[3:]
        return default_ms - (int(fw.parse_model_duration(offset[1:]) * 1000) if offset.startswith("-") else 0)
    value = int(float(text))
    while value > 10 ** 13:  # ns/us -> ms
        value //= 1000
    return value if value > 10 ** 11 else value * 1000


def decode_pprof_types(raw: bytes) -> List[Tuple[str, str, str, str]]:
    """The sample types of a pprof Profile (plain or gzipped): [(type, unit, period type, period unit)]."""
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    strings: List[str] = []
    value_types: List[Tuple[int, int]] = []
    period = (0, 0)
    for num, _w, value in wire.fields(raw):
        if num == 6:
            strings.append(value.decode("utf-8", "replace"))
        elif num in (1, 11):
            vt = [0, 0]
            for n2, _w2, v2 in wire.fields(value):
                if n2 in (1, 2) and isinstance(v2, int):
                    vt[n2 - 1] = v2
            if num == 1:
                value_types.append((vt[0], vt[1]))
            else:
                period = (vt[0], vt[1])

    def s(i: int) -> str:
        return strings[i] if 0 <= i < len(strings) else ""
    return [(s(t), s(u), s(period[0]), s(period[1])) for t, u in value_types]


class ProfileStore:
    """Profiles of one tenant: series (labels incl. the profile type) with their sample times and stacks."""

    def __init__(self):
        self.lock = threading.Lock()
        self.profiles: List[Tuple[Dict[str, str], int, Dict[str, int]]] = []

    def add(self, labels: Dict[str, str], ts_ms: int, stacks: Dict[str, int]) -> None:
        with self.lock:
            self.profiles.append((labels, ts_ms, stacks))

    def select(self, matchers: List[promql.Matcher], start: int, end: int) -> List[Dict[str, str]]:
        with self.lock:
            items = list(self.profiles)
        return [labels for labels, ts, _ in items
                if (not start or ts >= start) and (not end or ts <= end) and all(m.matches(labels) for m in matchers)]


def series_labels(base: Dict[str, str], name: str, sample_type: str, sample_unit: str, period_type: str,
                  period_unit: str) -> Dict[str, str]:
    """A stored series' labels: upstream adds the profile type labels to the pushed ones."""
    labels = dict(base, __name__=name, __type__=sample_type, __unit__=sample_unit,
                  __period_type__=period_type, __period_unit__=period_unit)
    labels["__profile_type__"] = ":".join((name, sample_type, sample_unit, period_type, period_unit))
    labels.pop("__delta__", None)
    return labels


class ConnectError(Exception):
    STATUS = {"invalid_argument": 400, "unauthenticated": 401, "not_found": 404, "unimplemented": 501,
              "internal": 500}

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class ProfilingAPI:
    """The ingestion endpoints and querier RPCs, routed on a :class:`fw.Router`."""

    def __init__(self, cfg: Dict[str, Any], metrics: Optional[fw.Metrics] = None):
        self.multitenancy = bool(fw.get_path(cfg, "multitenancy_enabled", False))
        self.metrics = metrics or fw.Metrics()
        self.tenants: Dict[str, ProfileStore] = {}
        self.lock = threading.Lock()

    def register(self, router: fw.Router) -> None:
        router.add("/ingest", self.ingest, methods=("POST",))
        router.add("/pyroscope/ingest", self.ingest, methods=("POST",))
        for rpc in ("Push",):
            router.add("/push.v1.PusherService/" + rpc, self._connect(rpc), methods=("POST",))
        for rpc in ("ProfileTypes", "LabelNames", "LabelValues"):
            router.add("/querier.v1.QuerierService/" + rpc, self._connect(rpc), methods=("POST",))

    def store(self, tenant: str) -> ProfileStore:
        with self.lock:
            return self.tenants.setdefault(tenant, ProfileStore())

    def tenant(self, req) -> Optional[str]:
        if not self.multitenancy:
            return "anonymous"
        org = req.headers.get("X-Scope-OrgID", "").strip()
        return org or None

    # -- ingestion ---------------------------------------------------------------------------------------
    def ingest(self, req):
        tenant = self.tenant(req)
        if tenant is None:
            return 401, "no org id\n"
        q = req.args
        now = int(time.time() * 1000)
        try:
            labels = parse_app_name(q.get("name", ""))
            start = _attime_ms(q.get("from", ""), now)
            until = _attime_ms(q.get("until", ""), now)
        except (IngestError, ValueError) as exc:
            return 400, "%s\n" % exc
        fmt = q.get("format", "")
        if fmt not in ("", "folded", "lines"):
            return 422, "the o11y.stack stand-in does not parse format %s\n" % fmt
        stacks = parse_folded(req.get_data(as_text=True), fmt == "lines")
        app = labels.pop("__name__")
        app_name, dot, suffix = app.rpartition(".")
        if not dot:
            app_name, suffix = app, "cpu"
        name, sample_type, unit = _INGEST_TYPES.get(suffix, ("process_cpu", "cpu", "nanoseconds"))
        period_type, period_unit = ("cpu", "nanoseconds") if name in ("process_cpu", "wall") else ("", "")
        if name in ("process_cpu", "wall"):
            try:
                rate = int(q.get("sampleRate", "") or DEFAULT_SAMPLE_RATE)
            except ValueError:
                rate = DEFAULT_SAMPLE_RATE
            period = 10 ** 9 // (rate if rate > 0 else DEFAULT_SAMPLE_RATE)
            stacks = {k: v * period for k, v in stacks.items()}  # samples scaled to nanoseconds
        base = {k: v for k, v in labels.items()}
        base["pyroscope_spy"] = q.get("spyName", "") or "unknown"
        if "service_name" in base:
            base.setdefault("app_name", app_name)
        else:
            base["service_name"] = app_name
        self.store(tenant).add(series_labels(base, name, sample_type, unit, period_type, period_unit),
                               (start + until) // 2, stacks)
        self.metrics.inc("pyroscope_distributor_received_compressed_bytes_count", "Ingested profiles.",
                         labels={"tenant": tenant, "type": name})
        return 200, ""

    # -- connect unary RPCs --------------------------------------------------------------------------------
    def _connect(self, rpc: str):
        def handler(req):
            ctype = req.mimetype
            if ctype not in ("application/json", "application/proto"):
                return 415, "", {"Accept-Post": "application/json, application/proto"}
            codec = "json" if ctype == "application/json" else "proto"
            try:
                tenant = self.tenant(req)
                if tenant is None:
                    raise ConnectError("unauthenticated", "no org id")
                body = req.get_data()
                msg = self._decode(rpc, codec, body)
                result = getattr(self, "rpc_" + rpc)(tenant, msg)
            except ConnectError as exc:
                return (exc.STATUS.get(exc.code, 500), json.dumps({"code": exc.code, "message": exc.message}),
                        {"Content-Type": "application/json"})
            return 200, self._encode(rpc, codec, result), {"Content-Type": "application/" + codec}
        return handler

    # request field numbers (api/querier/v1, api/types/v1, api/push/v1): name -> (number, kind)
    REQUESTS = {
        "ProfileTypes": {"start": (1, "int"), "end": (2, "int")},
        "LabelNames": {"matchers": (1, "strings"), "start": (2, "int"), "end": (3, "int")},
        "LabelValues": {"name": (1, "str"), "matchers": (2, "strings"), "start": (3, "int"), "end": (4, "int")},
    }

    def _decode(self, rpc: str, codec: str, body: bytes) -> Dict[str, Any]:
        if rpc == "Push":
            return self._decode_push(codec, body)
        spec = self.REQUESTS[rpc]
        msg: Dict[str, Any] = {k: ([] if kind == "strings" else 0 if kind == "int" else "")
                               for k, (_n, kind) in spec.items()}
        try:
            if codec == "json":
                data = json.loads(body or b"{}")
                if not isinstance(data, dict):
                    raise ValueError("not an object")
                for key, value in data.items():
                    if key not in spec:
                        raise ValueError('unknown field "%s"' % key)
                    kind = spec[key][1]
                    msg[key] = ([str(v) for v in value] if kind == "strings" else int(value) if kind == "int"
                                else str(value))
            else:
                by_num = {n: (k, kind) for k, (n, kind) in spec.items()}
                for num, _w, value in wire.fields(body):
                    if num not in by_num:
                        continue
                    key, kind = by_num[num]
                    if kind == "int":
                        msg[key] = wire.as_sint64(value)
                    elif kind == "strings":
                        msg[key].append(value.decode("utf-8"))
                    else:
                        msg[key] = value.decode("utf-8")
        except (ValueError, TypeError, AttributeError) as exc:
            raise ConnectError("invalid_argument", "unmarshal into querier message: %s" % exc) from None
        return msg

    def _decode_push(self, codec: str, body: bytes) -> List[Tuple[Dict[str, str], List[bytes]]]:
        import base64
        series = []
        try:
            if codec == "json":
                for s in json.loads(body or b"{}").get("series") or []:
                    labels = {lp.get("name", ""): lp.get("value", "") for lp in s.get("labels") or []}
                    raws = [base64.b64decode(x.get("rawProfile", "")) for x in s.get("samples") or []]
                    series.append((labels, raws))
            else:
                for s in wire.children(body, 1):
                    labels = {}
                    for lp in wire.children(s, 1):
                        parts = {n: v.decode("utf-8") for n, _w, v in wire.fields(lp) if isinstance(v, bytes)}
                        labels[parts.get(1, "")] = parts.get(2, "")
                    raws = [next((v for n, _w, v in wire.fields(x) if n == 1), b"") for x in wire.children(s, 2)]
                    series.append((labels, raws))
        except (ValueError, TypeError, AttributeError) as exc:
            raise ConnectError("invalid_argument", "unmarshal into push message: %s" % exc) from None
        return series

    def _encode(self, rpc: str, codec: str, result: Any) -> bytes:
        if rpc == "ProfileTypes":
            if codec == "json":
                return json.dumps({"profileTypes": [
                    {"ID": t[0], "name": t[1], "sampleType": t[2], "sampleUnit": t[3], "periodType": t[4],
                     "periodUnit": t[5]} for t in result]}).encode()
            return b"".join(wire.field_bytes(1, b"".join(wire.field_str(n, v) for n, v in zip((1, 2, 4, 5, 6, 7), t)))
                            for t in result)
        if rpc in ("LabelNames", "LabelValues"):
            if codec == "json":
                return json.dumps({"names": result}).encode()
            return b"".join(wire.field_bytes(1, n.encode("utf-8")) for n in result)
        return b"{}" if codec == "json" else b""  # PushResponse is empty

    def _selected(self, tenant: str, msg: Dict[str, Any]) -> List[Dict[str, str]]:
        """Series labels matching any of the request's selectors (none, or empty ones: all)."""
        selectors = [m for m in msg.get("matchers") or [] if m.strip() not in ("", "{}")]
        store = self.store(tenant)
        if not selectors:
            return store.select([], msg.get("start", 0), msg.get("end", 0))
        found = []
        for text in selectors:
            try:
                matchers = promql.parse_metric_selector(text)
            except promql.ParseError as exc:
                raise ConnectError("invalid_argument", str(exc)) from None
            found += store.select(matchers, msg.get("start", 0), msg.get("end", 0))
        return found

    def rpc_Push(self, tenant: str, series) -> None:
        store = self.store(tenant)
        now = int(time.time() * 1000)
        for labels, raws in series:
            name = labels.get("__name__", "")
            if not labels.get("service_name"):
                raise ConnectError("invalid_argument", "invalid labels: service name is required")
            for raw in raws:
                try:
                    types = decode_pprof_types(raw)
                except (ValueError, OSError, EOFError) as exc:
                    raise ConnectError("invalid_argument", "failed to parse profile: %s" % exc) from None
                for sample_type, unit, period_type, period_unit in types:
                    store.add(series_labels(labels, name, sample_type, unit, period_type, period_unit), now, {})

    def rpc_ProfileTypes(self, tenant: str, msg) -> List[Tuple[str, ...]]:
        found = {}
        for labels in self._selected(tenant, {"start": msg["start"], "end": msg["end"]}):
            found[labels["__profile_type__"]] = (labels["__profile_type__"], labels["__name__"], labels["__type__"],
                                                 labels["__unit__"], labels["__period_type__"],
                                                 labels["__period_unit__"])
        return [found[k] for k in sorted(found)]

    def rpc_LabelNames(self, tenant: str, msg) -> List[str]:
        return sorted({k for labels in self._selected(tenant, msg) for k in labels})

    def rpc_LabelValues(self, tenant: str, msg) -> List[str]:
        if not msg["name"]:
            raise ConnectError("invalid_argument", "name is required")
        return sorted({labels[msg["name"]] for labels in self._selected(tenant, msg) if msg["name"] in labels})


def serve(cfg: Dict[str, Any], log: fw.Logger) -> int:
    from werkzeug.wrappers import Response

    shutdown = fw.ShutdownSignal()
    backend = fw.get_path(cfg, "storage.backend", "")
    if backend == "s3":
        s3 = fw.get_path(cfg, "storage.s3", {}) or {}
        bucket = s3.get("bucket_name") or ""
        if not bucket:
            fw.fatal("failed running pyroscope: error initialising module: storage: "
                     "s3 bucket name is required", logger=log)
        fw.require_bucket(log, s3.get("endpoint") or "s3.amazonaws.com", bucket, what="storage",
                          wait_seconds=float(os.environ.get("O11Y_STANDIN_BUCKET_WAIT", "10")),
                          access_key=s3.get("access_key_id") or "", secret_key=s3.get("secret_access_key") or "",
                          region=s3.get("region") or "us-east-1", insecure=bool(s3.get("insecure")))

    started = time.monotonic()
    metrics = fw.Metrics()
    metrics.build_info("pyroscope", _info())
    advertise = fw.get_path(cfg, "memberlist.advertise_addr", "") or socket.gethostname()
    ml_port = int(fw.get_path(cfg, "memberlist.bind_port", 7946))
    joins: List[str] = list(fw.get_path(cfg, "memberlist.join_members", []) or [])
    router = fw.Router()

    def ready(_req):
        if time.monotonic() - started < READY_DELAY:
            return 503, "Some services are not Running:\nStarting: 1\n"
        return 200, "ready\n"

    def memberlist_page(_req):
        lines = ["Memberlist status", "", "Members:", "  %s:%d  alive  (this node)" % (advertise, ml_port)]
        for member in joins:
            state = "alive" if fw.probe_tcp(member, timeout=1.0, default_port=7946) else "unreachable"
            lines.append("  %s  %s" % (member, state))
        return 200, "\n".join(lines) + "\n"

    def config_page(_req):
        import yaml
        return Response(yaml.safe_dump(_masked(cfg), sort_keys=True), status=200, mimetype="text/plain")

    router.add("/ready", ready)
    router.add("/metrics", lambda _r: metrics.wsgi_response())
    router.add("/memberlist", memberlist_page)
    router.add("/config", config_page)
    ProfilingAPI(cfg, metrics).register(router)
    router.add("/", lambda _r: (200, "Grafana Pyroscope (o11y.stack test stand-in)\n"))

    services: List[Any] = []
    listeners: List[fw.PortListener] = []
    try:
        http = fw.HTTPService("http", "%s:%d" % (fw.get_path(cfg, "server.http_listen_address", ""),
                                                 int(fw.get_path(cfg, "server.http_listen_port", 4040))),
                              router, logger=log).start()
        services.append(http)
        listeners.append(fw.PortListener("grpc", fw.get_path(cfg, "server.grpc_listen_address", "") or "",
                                     int(fw.get_path(cfg, "server.grpc_listen_port", 9095))))
        for addr in (fw.get_path(cfg, "memberlist.bind_addr", []) or [""]):
            listeners.append(fw.PortListener("memberlist", addr, ml_port))
        if cfg.get("architecture_storage") != "v1":
            rhost, rport = fw.parse_listen_address(fw.get_path(cfg, "metastore.raft.bind_address", "localhost:9099"))
            listeners.append(fw.PortListener("raft", rhost, rport))
    except OSError as exc:
        for svc in services:
            svc.stop()
        for lst in listeners:
            lst.stop()
        fw.fatal("failed running pyroscope: %s" % exc, logger=log)
    log.info("server listening on addresses", http=http.address, grpc=fw.get_path(cfg, "server.grpc_listen_port"))
    log.info("Pyroscope started", version=_info()["version"], target=cfg.get("target"))

    def stop_listeners():
        for lst in listeners:
            lst.stop()

    return fw.run_until_signal(services, logger=log, on_shutdown=stop_listeners, shutdown=shutdown)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    fs = flagset()
    try:
        fs.parse_or_exit(argv[1:])
        try:
            cfg = load(fs)
        except (fw.ConfigError, OSError) as exc:
            sys.stderr.write("failed parsing config: %s\n" % exc)
            return 1
        except ValueError as exc:
            sys.stderr.write("failed creating pyroscope: %s\n" % exc)
            return 1
        if fs["version"]:
            sys.stdout.write(version_text())
            return 0
        if fs["modules"]:
            for m in sorted(MODULES_IN_ALL):
                sys.stdout.write("%s *\n" % m)
            sys.stdout.write("\nModules marked with * are included in target All.\n")
            return 0
        if fs["h"] or fs["help"] or fs["help-all"]:
            fs._output = sys.stdout  # upstream prints the parameters to stdout
            fs.usage()
            return 0
        log = fw.Logger("pyroscope", fmt=fw.get_path(cfg, "server.log_format", "logfmt") or "logfmt",
                        level=fw.get_path(cfg, "server.log_level", "info") or "info")
        return serve(cfg, log)
    except fw.StandinExit as exc:
        return int(exc.code or 0)


if __name__ == "__main__":
    sys.exit(main())
