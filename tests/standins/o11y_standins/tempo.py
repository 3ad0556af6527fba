# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Grafana Tempo stand-in: the ``tempo`` binary on the surface o11y.stack uses.

Behaves like Tempo 2.10.8 (``cmd/tempo`` of the ``v2.10.8`` tag) where the
collection touches it:

* CLI (Go ``flag`` package): ``-config.file``, ``-config.expand-env``,
  ``-config.verify``, ``-version``, ``-mem-ballast-size-mbs``, ``-target``,
  ``-multitenancy.enabled``, ``-server.http-listen-port``,
  ``-server.grpc-listen-port``, ``-memberlist.bind-port``,
  ``-memberlist.host-port``, ``-log.level`` and a few module flags (a subset
  of upstream's ~200).  ``-h``/``-help`` prints the usage and exits 0; an
  unknown flag (3.x's ``-health``, ``-span-profiling`` included) prints
  ``flag provided but not defined: -x`` and the usage, exit 2.  Like upstream,
  the config file is read before the flags are checked, and flags given on
  the command line win over the file.
* Strict YAML (yaml.v2 ``UnmarshalStrict``) against the 2.10 configuration
  reference: unknown or misplaced keys fail with ``failed parsing config:
  failed to parse configFile ...: yaml: unmarshal errors: ... field x not
  found in type ...``, exit 1.  3.x-only keys (``memory``, ``span_profiling``,
  ``metrics_generator.ring_mode``, ``live_store.readiness_target_lag``,
  ``backend_scheduler.provider.redaction``, ``overrides.enable_legacy_overrides``
  ...) are rejected; 2.10's own ``compactor``, ``ingester`` and
  ``ingester_client`` blocks are accepted, and so are the experimental
  ``live_store``/``backend_scheduler``/``backend_worker`` blocks 2.10 already
  parses.  ``overrides`` falls back to the legacy inline format like upstream
  (``failed to unmarshal config: ...; also failed in legacy format: ...``).
  Receivers (``distributor.receivers``) are a free map at parse time, as in
  2.10, and checked when the distributor starts.  ``${VAR}`` is expanded only
  with ``-config.expand-env=true``.
* ``-config.verify``: parse, then Tempo's configuration warnings (compactor
  retention or ingester complete-block timeout shorter than
  ``storage.trace.blocklist_poll``, legacy overrides, span logging, local
  backend outside monolithic mode, ...); exit 1 when any applies, else 0.
  Never touches S3.
* Targets: every module 2.10 registers (``all``, ``scalable-single-binary``,
  ``all-3.0``, ``distributor``, ``ingester``, ...); internal ones log a
  warning, anything else fails with ``failed to init module services:
  unrecognised module name: x``.  Target ``all`` forces the ingester and
  metrics-generator rings in-memory with replication factor 1 (upstream's
  ``loadConfig``); ``scalable-single-binary`` keeps them on memberlist,
  shards the compactor through its ring and needs
  ``querier.frontend_worker.frontend_address`` (else ``frontend worker
  address not specified``).
* Startup: refuses (exit 1, names the bucket) when the S3 bucket does not
  exist with the configured credentials; a ring in use without
  ``instance_addr`` needs one of its interface names (``no useable address
  found for interfaces [eth0 en0]``); ``memberlist.advertise_addr`` must be
  an IP address; invalid OTLP receiver keys fail the distributor.  Binds
  ``server.http_listen_port``, ``server.grpc_listen_port``, the OTLP receiver
  endpoints and, only when a ring uses it (memberlist is started lazily),
  memberlist ``bind_port`` (TCP and UDP).
* Rings over memberlist: each instance answers on its memberlist port with
  its name, cluster label and ring entries; peers probe every join member
  (``dns+``-style prefixes stripped), keep those with the same
  ``cluster_label`` and build the ingester, metrics-generator, compactor
  (and, with the ``global`` rate strategy, distributor) rings from them.
* HTTP: ``/ready`` (503 ``Some services are not Running`` while the
  compactor waits for ring stability, ``compactor.ring.wait_stability_*``;
  503 ``Ingester not ready: ... waiting for 15s after being ready`` during
  ``ingester.lifecycler.min_ready_duration``; then 200 ``ready``),
  ``/metrics`` (``tempo_build_info``, ``tempo_ring_members``,
  ``tempo_memberlist_client_cluster_members_count``), ``/api/echo``,
  ``/api/status/buildinfo``, ``/status``, ``/memberlist`` and the ring pages
  ``/ingester/ring``, ``/metrics-generator/ring``, ``/compactor/ring``,
  ``/distributor/ring`` (HTML, or dskit's JSON with ``Accept:
  application/json``), OTLP/HTTP ``POST /v1/traces`` on the receiver port.
* Logs (logfmt) on stderr; SIGTERM -> exit 0.  Type=simple (no sd_notify),
  like upstream's packaged unit.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import gzip
import ipaddress
import json
import os
import random
import socket
import string
import struct
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import framework as fw
from . import grpc_h2c
from . import otlp
from . import wire

DEFAULT_VERSION = "2.10.8"
DEFAULT_GOVERSION = "go1.26.5"

# Modules 2.10 registers (cmd/tempo/app/modules.go); the first group is user-visible.
VISIBLE_TARGETS = ("all", "scalable-single-binary", "all-3.0", "distributor", "ingester", "querier",
                   "query-frontend", "compactor", "metrics-generator", "metrics-generator-no-local-blocks",
                   "block-builder", "backend-scheduler", "backend-worker", "live-store", "overrides-api",
                   "usage-report")
INTERNAL_TARGETS = ("store", "optional-store", "server", "internal-server", "memberlist-kv", "overrides",
                    "cache-provider", "ring", "metrics-generator-ring", "generator-ring-watcher",
                    "live-store-ring", "secondary-ring", "partition-ring", "common")
COMPOSITE = {
    "all": ("compactor", "query-frontend", "querier", "ingester", "distributor", "metrics-generator"),
    "scalable-single-binary": ("compactor", "query-frontend", "querier", "ingester", "distributor",
                               "metrics-generator"),
    "all-3.0": ("backend-scheduler", "backend-worker", "query-frontend", "querier", "distributor",
                "metrics-generator", "block-builder", "live-store"),
}
SINGLE_BINARY = ("all", "all-3.0")


def version() -> str:
    info = fw.build_info()
    return info["version"] if info.get("component") == "tempo" else DEFAULT_VERSION


def revision() -> str:
    info = fw.build_info()
    rev = info.get("revision", "") if info.get("component") == "tempo" else ""
    return rev[:10] if rev.strip("0") else "0a1b2c3d4e"


def goversion() -> str:
    info = fw.build_info()
    return info["goversion"] if info.get("component") == "tempo" else DEFAULT_GOVERSION


def version_text() -> str:
    goos, goarch = fw.go_platform()
    return ("tempo, version %s (branch: HEAD, revision: %s)\n"
            "  build user:       \n"
            "  build date:       \n"
            "  go version:       %s\n"
            "  platform:         %s/%s\n"
            "  tags:             unknown\n") % (version(), revision(), goversion(), goos, goarch)


# ---------------------------------------------------------------------------
# configuration schema (Tempo 2.10.8)
# ---------------------------------------------------------------------------

S, I, B, F, D, A, MD = fw.Str, fw.Int, fw.Bool, fw.Float, fw.Duration, fw.Any_, fw.ModelDuration


def St(type_name: str, **fields: fw.Schema) -> fw.Struct:
    return fw.Struct(type_name, fields)


def _tls_server() -> fw.Struct:
    return St("server.TLSConfig", cert=S(), key=S(), client_ca=S(), cert_file=S(), key_file=S(),
              client_auth_type=S(), client_ca_file=S())


def _server(name: str) -> fw.Struct:
    return St(name,
              http_listen_network=S(), http_listen_address=S(), http_listen_port=I(), http_listen_conn_limit=I(),
              grpc_listen_network=S(), grpc_listen_address=S(), grpc_listen_port=I(), grpc_listen_conn_limit=I(),
              grpc_collect_max_streams_by_conn=B(), proxy_protocol_enabled=B(), tls_cipher_suites=S(),
              tls_min_version=S(), http_tls_config=_tls_server(), grpc_tls_config=_tls_server(),
              register_instrumentation=B(), report_grpc_codes_in_instrumentation_label_enabled=B(),
              graceful_shutdown_timeout=D(), http_server_read_timeout=D(), http_server_read_header_timeout=D(),
              http_server_write_timeout=D(), http_server_idle_timeout=D(),
              http_log_closed_connections_without_response_enabled=B(),
              grpc_server_max_recv_msg_size=I(), grpc_server_max_send_msg_size=I(),
              grpc_server_max_concurrent_streams=I(), grpc_server_max_connection_idle=D(),
              grpc_server_max_connection_age=D(), grpc_server_max_connection_age_grace=D(),
              grpc_server_keepalive_time=D(), grpc_server_keepalive_timeout=D(),
              grpc_server_min_time_between_pings=D(), grpc_server_ping_without_stream_allowed=B(),
              grpc_server_num_workers=I(), grpc_server_stats_tracking_enabled=B(),
              grpc_server_recv_buffer_pools_enabled=B(), grpc_server_read_buffer_size=I(),
              grpc_server_write_buffer_size=I(),
              log_format=fw.Enum("logfmt", "json"), log_level=fw.Enum("debug", "info", "warn", "error"),
              log_source_ips_enabled=B(), log_source_ips_full=B(), log_source_ips_header=S(),
              log_source_ips_regex=S(), log_request_headers=B(), log_request_at_info_level_enabled=B(),
              log_request_exclude_headers_list=S(), trace_request_headers=B(),
              trace_request_exclude_headers_list=S(), http_path_prefix=S(), cluster_validation=A(),
              create_new_traces=B())


def _tls_client() -> Dict[str, fw.Schema]:
    return dict(tls_enabled=B(), tls_cert_path=S(), tls_key_path=S(), tls_ca_path=S(), tls_server_name=S(),
                tls_insecure_skip_verify=B(), tls_cipher_suites=S(), tls_min_version=S())


def _kvstore() -> fw.Struct:
    # dskit kv.Config: the store name is a plain string, checked when the ring starts.
    return St("kv.Config",
              store=S(), prefix=S(),
              consul=St("consul.Config", host=S(), acl_token=S(), http_client_timeout=D(), consistent_reads=B(),
                        watch_rate_limit=F(), watch_burst_size=I(), cas_retry_delay=D()),
              etcd=fw.Struct("etcd.Config", dict(endpoints=fw.List(S()), dial_timeout=D(), max_retries=I(),
                                                 username=S(), password=S(), **_tls_client())),
              multi=St("kv.MultiConfig", primary=S(), secondary=S(), mirror_enabled=B(), mirror_timeout=D()))


_RING_BASE = dict(heartbeat_period=D(), heartbeat_timeout=D(), instance_id=S(),
                  instance_interface_names=fw.List(S()), instance_port=I(), instance_addr=S(), enable_inet6=B())


def _ring(type_name: str, **extra: fw.Schema) -> fw.Struct:
    fields: Dict[str, fw.Schema] = dict(kvstore=_kvstore(), **_RING_BASE)
    fields.update(extra)
    return fw.Struct(type_name, fields)


# pkg/ring.Config (metrics-generator, live-store), compactor/backend-worker RingConfig, distributor RingConfig
TEMPO_RING = _ring("ring.Config", instance_zone=S())
SHARDING_RING = dict(wait_stability_min_duration=D(), wait_stability_max_duration=D(),
                     wait_active_instance_timeout=D())

# dskit ring.LifecyclerConfig (the ingester's); ID and Port have no yaml tag -> "id", "port".
LIFECYCLER = St("ring.LifecyclerConfig",
                ring=St("ring.Config", kvstore=_kvstore(), heartbeat_timeout=D(), replication_factor=I(),
                        zone_awareness_enabled=B(), excluded_zones=S()),
                num_tokens=I(), heartbeat_period=D(), heartbeat_timeout=D(), observe_period=D(), join_after=D(),
                min_ready_duration=D(), interface_names=fw.List(S()), enable_inet6=B(), final_sleep=D(),
                tokens_file_path=S(), availability_zone=S(), unregister_on_shutdown=B(),
                readiness_check_ring_health=B(), address=S(), port=I(), id=S())

PARTITION_RING = St("ingester.PartitionRingConfig", kvstore=_kvstore(), min_partition_owners_count=I(),
                    min_partition_owners_duration=D(), delete_inactive_partition_after=D())

WAL = St("wal.Config", path=S(), v2_encoding=S(), search_encoding=S(), ingestion_time_range_slack=D(),
         version=S())


def _span_log() -> fw.Struct:
    return St("distributor.LogSpansConfig", enabled=B(), include_all_attributes=B(), filter_by_status_error=B())


DISTRIBUTOR = St("distributor.Config",
                 ring=_ring("distributor.RingConfig"),
                 # map[string]interface{} in 2.10: the receivers are decoded when the distributor starts
                 receivers=fw.MapOf(A()),
                 override_ring_key=S(), log_received_spans=_span_log(), log_discarded_spans=_span_log(),
                 metric_received_spans=St("distributor.MetricReceivedSpansConfig", enabled=B(), root_only=B()),
                 forwarders=fw.List(A()),
                 usage=St("usage.Config", cost_attribution=St("usage.PerTrackerConfig", enabled=B(),
                                                              max_cardinality=I(), stale_duration=D())),
                 ingester_write_path_enabled=B(), kafka_write_path_enabled=B(), kafka_config=A(),
                 extend_writes=B(), retry_after_on_resource_exhausted=D(), max_attribute_bytes=I(),
                 artificial_delay=D())

INGESTER = St("ingester.Config",
              lifecycler=LIFECYCLER, partition_ring=PARTITION_RING, concurrent_flushes=I(),
              flush_check_period=D(), flush_op_timeout=D(), trace_idle_period=D(), trace_live_period=D(),
              max_block_duration=D(), max_block_bytes=I(), complete_block_timeout=D(), override_ring_key=S(),
              flush_all_on_shutdown=B(), flush_object_storage=B())

COMPACTION = St("tempodb.CompactorConfig", v2_in_buffer_bytes=I(), v2_out_buffer_bytes=I(),
                v2_prefetch_traces_count=I(), compaction_window=D(), max_compaction_objects=I(),
                max_block_bytes=I(), block_retention=D(), compacted_block_retention=D(),
                retention_concurrency=I(), max_time_per_tenant=D(), compaction_cycle=D())

COMPACTOR = St("compactor.Config", disabled=B(), ring=_ring("compactor.RingConfig", **SHARDING_RING),
               compaction=COMPACTION, override_ring_key=S())

REMOTE_WRITE = St("config.RemoteWriteConfig",
                  url=S(required=True), remote_timeout=S(), headers=fw.MapOf(S()), write_relabel_configs=A(),
                  name=S(), send_exemplars=B(), send_native_histograms=B(), round_robin_dns=B(),
                  protobuf_message=S(), basic_auth=A(), authorization=A(), oauth2=A(), bearer_token=S(),
                  bearer_token_file=S(), tls_config=A(), proxy_url=S(), no_proxy=S(), proxy_from_environment=B(),
                  proxy_connect_header=A(), follow_redirects=B(), enable_http2=B(), http_headers=A(),
                  queue_config=A(), metadata_config=A(), sigv4=A(), azuread=A(), google_iam=A())

GENERATOR = St("generator.Config",
               ring=TEMPO_RING,
               processor=St("generator.ProcessorConfig",
                            service_graphs=St("servicegraphs.Config", wait=D(), max_items=I(), workers=I(),
                                              histogram_buckets=fw.List(F()), dimensions=fw.List(S()),
                                              enable_client_server_prefix=B(),
                                              enable_messaging_system_latency_histogram=B(),
                                              peer_attributes=fw.List(S()), span_multiplier_key=S(),
                                              enable_virtual_node_label=B(),
                                              database_name_attributes=fw.List(S())),
                            span_metrics=St("spanmetrics.Config", histogram_buckets=fw.List(F()),
                                            intrinsic_dimensions=St("spanmetrics.IntrinsicDimensions",
                                                                    service=B(), span_name=B(), span_kind=B(),
                                                                    status_code=B(), status_message=B()),
                                            dimensions=fw.List(S()), dimension_mappings=A(),
                                            enable_target_info=B(), span_multiplier_key=S(), subprocessors=A(),
                                            filter_policies=A(), target_info_excluded_dimensions=fw.List(S()),
                                            enable_instance_label=B()),
                            local_blocks=A(),
                            host_info=St("hostinfo.Config", host_identifiers=fw.List(S()), metric_name=S())),
               registry=St("registry.Config", collection_interval=D(), stale_duration=D(),
                           external_labels=fw.MapOf(S()), inject_tenant_id_as=S(), max_label_name_length=I(),
                           max_label_value_length=I()),
               storage=St("storage.Config", path=S(),
                          wal=St("storage.agentOptions", wal_segment_size=I(), wal_compression=S(),
                                 stripe_size=I(), truncate_frequency=D(), min_wal_time=I(), max_wal_time=I(),
                                 no_lockfile=B()),
                          remote_write_flush_deadline=D(), remote_write_add_org_id_header=B(),
                          remote_write=fw.List(REMOTE_WRITE)),
               traces_storage=WAL, traces_query_storage=WAL, metrics_ingestion_time_range_slack=D(),
               query_timeout=D(), override_ring_key=S(), codec=S(), disable_local_blocks=B(), disable_grpc=B(),
               limiter_type=S(), ingest_concurrency=I(), instance_id=S())

QUERIER = St("querier.Config",
             search=A(), trace_by_id=A(), metrics=A(), partition_ring=A(), extra_query_delay=D(),
             max_concurrent_queries=I(),
             frontend_worker=St("worker.Config", frontend_address=S(), dns_lookup_duration=D(), parallelism=I(),
                                match_max_concurrent=B(), id=S(), grpc_client_config=A()),
             shuffle_sharding_ingesters_enabled=B(), shuffle_sharding_ingesters_lookback_period=D(),
             query_relevant_ingesters=B(), secondary_ingester_ring=S(), query_live_store=B())

BACKEND_SCHEDULER = St("backendscheduler.Config",
                       work=St("work.Config", prune_age=D(), dead_job_timeout=D()),
                       maintenance_interval=D(), backend_flush_interval=D(),
                       provider=St("provider.Config",
                                   retention=St("provider.RetentionConfig", interval=D()),
                                   compaction=St("provider.CompactionConfig", measure_interval=D(),
                                                 compaction=COMPACTION, max_jobs_per_tenant=I(),
                                                 min_input_blocks=I(), max_input_blocks=I(),
                                                 max_compaction_level=I(), min_cycle_interval=D())),
                       job_timeout=D(), local_work_path=S())

BACKEND_WORKER = St("backendworker.Config",
                    backend_scheduler_addr=S(),
                    backoff=St("backoff.Config", min_period=D(), max_period=D(), max_retries=I()),
                    compaction=COMPACTION, override_ring_key=S(),
                    ring=_ring("backendworker.RingConfig", **SHARDING_RING),
                    finish_on_shutdown_timeout=D())

LIVE_STORE = St("livestore.Config",
                ring=TEMPO_RING, partition_ring=PARTITION_RING,
                metrics=St("livestore.MetricsConfig", time_overlap_cutoff=F()),
                commit_interval=D(), wal=WAL, query_block_concurrency=I(), complete_block_timeout=D(),
                complete_block_concurrency=I(), shutdown_marker_dir=S(), flush_check_period=D(),
                flush_op_timeout=D(), max_trace_live=D(), max_trace_idle=D(), max_live_traces_bytes=I(),
                max_block_duration=D(), max_block_bytes=I(), block_config=A())

S3 = fw.Struct("s3.Config", dict(
    bucket=S(), prefix=S(), endpoint=S(), region=S(), access_key=S(), secret_key=S(), session_token=S(),
    insecure=B(), part_size=I(), hedge_requests_at=D(), hedge_requests_up_to=I(), signature_v2=B(),
    forcepathstyle=B(), enable_dual_stack=B(), bucket_lookup_type=I(), tags=fw.MapOf(S()), storage_class=S(),
    metadata=fw.MapOf(S()), native_aws_auth_enabled=B(), list_blocks_concurrency=I(),
    sse=St("s3.SSEConfig", type=S(), kms_key_id=S(), kms_encryption_context=S(), encryption_key=S()),
    tls_cert_path=S(), tls_key_path=S(), tls_ca_path=S(), tls_server_name=S(), tls_insecure_skip_verify=B(),
    tls_cipher_suites=S(), tls_min_version=S()))

TRACE_STORAGE = St("tempodb.Config",
                   pool=St("pool.Config", max_workers=I(), queue_depth=I()),
                   wal=WAL, block=A(), search=A(),
                   blocklist_poll=D(), blocklist_poll_concurrency=I(), blocklist_poll_tenant_concurrency=I(),
                   blocklist_poll_fallback=B(), blocklist_poll_tenant_index_builders=I(),
                   blocklist_poll_stale_tenant_index=D(), blocklist_poll_jitter_ms=I(),
                   blocklist_poll_tolerate_consecutive_errors=I(), blocklist_poll_tolerate_tenant_failures=I(),
                   empty_tenant_deletion_enabled=B(), empty_tenant_deletion_age=D(),
                   backend=S(), local=St("local.Config", path=S()), gcs=A(), s3=S3, azure=A(),
                   cache=S(), background_cache=A(), memcached=A(), redis=A(), cache_min_compaction_level=I(),
                   cache_max_block_age=D())

OVERRIDES_DEFAULTS = St("overrides.Overrides",
                        ingestion=A(), read=A(),
                        compaction=St("overrides.CompactionOverrides", block_retention=MD(),
                                      compaction_window=MD(), compaction_disabled=B()),
                        # processors: a list of names; 2.10 checks them only when a tenant's
                        # metrics-generator instance is built (runtime "unknown processor").
                        metrics_generator=St("overrides.MetricsGeneratorOverrides",
                                             ring_size=I(), processors=fw.List(S()),
                                             max_active_series=I(), max_active_entities=I(),
                                             collection_interval=D(), disable_collection=B(),
                                             generate_native_histograms=S(), trace_id_label_name=S(),
                                             remote_write_headers=fw.MapOf(S()), forwarder=A(), processor=A(),
                                             ingestion_time_range_slack=D(),
                                             native_histogram_bucket_factor=F(),
                                             native_histogram_max_bucket_number=I(),
                                             native_histogram_min_reset_duration=D()),
                        forwarders=fw.List(S()), global_=A(), storage=A(), cost_attribution=A())
# "global" is a Python keyword.
OVERRIDES_DEFAULTS.fields["global"] = OVERRIDES_DEFAULTS.fields.pop("global_")

_OVERRIDES_COMMON = dict(per_tenant_override_config=S(), per_tenant_override_period=MD(),
                         user_configurable_overrides=A())
OVERRIDES_NEW = fw.Struct("overrides.rawConfig", dict(defaults=OVERRIDES_DEFAULTS, **_OVERRIDES_COMMON))
_LEGACY_KEYS = (
    "ingestion_rate_strategy ingestion_rate_limit_bytes ingestion_burst_size_bytes ingestion_tenant_shard_size "
    "ingestion_max_attribute_bytes ingestion_artificial_delay ingestion_retry_info_enabled max_traces_per_user "
    "max_global_traces_per_user forwarders metrics_generator_ring_size metrics_generator_processors "
    "metrics_generator_max_active_series metrics_generator_max_active_entities "
    "metrics_generator_collection_interval metrics_generator_disable_collection "
    "metrics_generator_generate_native_histograms metrics_generator_native_histogram_bucket_factor "
    "metrics_generator_native_histogram_max_bucket_number metrics_generator_native_histogram_min_reset_duration "
    "metrics_generator_trace_id_label_name metrics_generator_forwarder_queue_size "
    "metrics_generator_forwarder_workers metrics_generator_remote_write_headers "
    "metrics_generator_processor_service_graphs_histogram_buckets "
    "metrics_generator_processor_service_graphs_dimensions metrics_generator_processor_service_graphs_peer_attributes "
    "metrics_generator_processor_service_graphs_enable_client_server_prefix "
    "metrics_generator_processor_service_graphs_enable_messaging_system_latency_histogram "
    "metrics_generator_processor_service_graphs_enable_virtual_node_label "
    "metrics_generator_processor_span_metrics_histogram_buckets metrics_generator_processor_span_metrics_dimensions "
    "metrics_generator_processor_span_metrics_intrinsic_dimensions "
    "metrics_generator_processor_span_metrics_filter_policies "
    "metrics_generator_processor_span_metrics_dimension_mappings "
    "metrics_generator_processor_span_metrics_enable_target_info "
    "metrics_generator_processor_span_metrics_target_info_excluded_dimensions "
    "metrics_generator_processor_span_metrics_enable_instance_label "
    "metrics_generator_processor_local_blocks_max_live_traces "
    "metrics_generator_processor_local_blocks_max_block_duration "
    "metrics_generator_processor_local_blocks_max_block_bytes "
    "metrics_generator_processor_local_blocks_flush_check_period "
    "metrics_generator_processor_local_blocks_trace_idle_period "
    "metrics_generator_processor_local_blocks_complete_block_timeout "
    "metrics_generator_processor_host_info_host_identifiers metrics_generator_processor_host_info_metric_name "
    "metrics_generator_ingestion_time_range_slack block_retention compaction_disabled compaction_window "
    "max_bytes_per_tag_values_query max_blocks_per_tag_values_query max_search_duration max_metrics_duration "
    "unsafe_query_hints max_bytes_per_trace cost_attribution parquet_dedicated_columns").split()
OVERRIDES_LEGACY = fw.Struct("overrides.legacyConfig",
                             dict({k: A() for k in _LEGACY_KEYS}, **_OVERRIDES_COMMON))
LEGACY_MARK = "__legacy_format__"


class _Overrides(fw.Schema):
    """overrides.Config.UnmarshalYAML: the new format first, then the legacy inline one."""

    type_name = "overrides.Config"

    @staticmethod
    def _render(errors) -> str:
        return fw.ConfigError(errors).render()

    def convert(self, node, path, ctx):
        import yaml
        if isinstance(node, yaml.ScalarNode) and self._tag(node) == "!!null":
            return None
        new = fw._Ctx(ctx.loader, ctx.fill_defaults)  # noqa: SLF001 - a trial decode, like Go's unmarshal()
        value = new.convert(OVERRIDES_NEW, node, path)
        if not new.errors:
            return value
        legacy = fw._Ctx(ctx.loader, ctx.fill_defaults)  # noqa: SLF001
        value = legacy.convert(OVERRIDES_LEGACY, node, path)
        if not legacy.errors:
            value = dict(value or {})
            value[LEGACY_MARK] = True
            return value
        ctx.error(node, path, "failed to unmarshal config: %s; also failed in legacy format: %s"
                  % (self._render(new.errors), self._render(legacy.errors)))
        return None


CONFIG_SCHEMA = St(
    "app.Config",
    target=S(), auth_enabled=B(), multitenancy_enabled=B(), shutdown_delay=D(), stream_over_http_enabled=B(),
    http_api_prefix=S(), enable_go_runtime_metrics=B(), partition_ring_live_store=B(),
    server=_server("server.Config"),
    internal_server=_server("server.Config").extend("internalserver.Config", enable=B()),
    distributor=DISTRIBUTOR, ingester_client=A(), metrics_generator_client=A(), live_store_client=A(),
    querier=QUERIER, query_frontend=A(), compactor=COMPACTOR, ingester=INGESTER, metrics_generator=GENERATOR,
    ingest=A(), block_builder=A(), storage=St("storage.Config", trace=TRACE_STORAGE), overrides=_Overrides(),
    memberlist=fw.Struct("memberlist.KVConfig", dict(
        node_name=S(), randomize_node_name=B(), stream_timeout=D(), retransmit_factor=I(), pull_push_interval=D(),
        gossip_interval=D(), gossip_nodes=I(), gossip_to_dead_nodes_time=D(), dead_node_reclaim_time=D(),
        compression_enabled=B(), notify_interval=D(), received_messages_queue_size=I(), advertise_addr=S(),
        advertise_port=I(), cluster_label=S(), cluster_label_verification_disabled=B(),
        join_members=fw.List(S()), min_join_backoff=D(), max_join_backoff=D(), max_join_retries=I(),
        abort_if_cluster_fast_join_fails=B(), abort_if_cluster_fast_join_fails_min_nodes=I(),
        abort_if_cluster_join_fails=B(), rejoin_interval=D(), rejoin_seed_nodes=fw.List(S()),
        left_ingesters_timeout=D(), obsolete_entries_timeout=D(), leave_timeout=D(),
        broadcast_timeout_for_local_updates_on_shutdown=D(), message_history_buffer_bytes=I(),
        watch_prefix_buffer_size=I(), bind_addr=fw.List(S()), bind_port=I(), packet_dial_timeout=D(),
        packet_write_timeout=D(), max_concurrent_writes=I(), acquire_writer_timeout=D(),
        zone_aware_routing=A(), propagation_delay_tracker=A(), **_tls_client())),
    usage_report=St("usagestats.Config", reporting_enabled=B(), backoff=A()), cache=A(),
    backend_scheduler=BACKEND_SCHEDULER, backend_scheduler_client=A(), backend_worker=BACKEND_WORKER,
    live_store=LIVE_STORE)


# OTLP receiver keys of the OpenTelemetry Collector v0.150 the 2.10.8 distributor embeds
# (confignet.AddrConfig squashed into both servers).  None: any value.
_NET = {"endpoint": None, "transport": None, "dialer": None}
OTLP_RECEIVER = {"protocols": {
    "grpc": dict(_NET, tls=None, max_recv_msg_size_mib=None, max_concurrent_streams=None, read_buffer_size=None,
                 write_buffer_size=None, keepalive=None, auth=None, include_metadata=None, middlewares=None),
    "http": dict(_NET, tls=None, cors=None, auth=None, max_request_body_size=None, include_metadata=None,
                 response_headers=None, compression_algorithms=None, read_timeout=None, read_header_timeout=None,
                 write_timeout=None, idle_timeout=None, middlewares=None, keep_alives_enabled=None,
                 traces_url_path=None, metrics_url_path=None, logs_url_path=None)}}
RECEIVER_TYPES = ("jaeger", "zipkin", "otlp", "kafka")


# ---------------------------------------------------------------------------
# flags
# ---------------------------------------------------------------------------

def make_flagset(name: str = "tempo") -> fw.FlagSet:
    fs = fw.FlagSet(name)
    fs.bool("version", False, "Print this builds version information")
    fs.int("mem-ballast-size-mbs", 0, "Size of memory ballast to allocate in MBs.")
    fs.int("mutex-profile-fraction", 0, "Override default mutex profiling fraction.")
    fs.int("block-profile-threshold", 0, "Override default block profiling threshold.")
    fs.string("config.file", "", "Configuration file to load")
    fs.bool("config.expand-env", False, "Whether to expand environment variables in config file")
    fs.bool("config.verify", False, "Verify configuration and exit")
    fs.string("target", "all", "target module")
    fs.bool("auth.enabled", False, "Set to true to enable auth (deprecated: use multitenancy.enabled)")
    fs.bool("multitenancy.enabled", False, "Set to true to enable multitenancy.")
    fs.string("http-api-prefix", "", "String prefix for all http api endpoints.")
    fs.bool("enable-go-runtime-metrics", False, "Set to true to enable all Go runtime metrics")
    fs.duration("shutdown-delay", 0.0, "How long to wait between SIGTERM and shutdown. After receiving SIGTERM, "
                "Tempo will report not-ready status via /ready endpoint.")
    fs.value("log.level", _log_level, "info", "Only log messages with the given severity or above. "
             "Valid levels: [debug, info, warn, error]", type_name="value",
             format_default=lambda d: d)
    fs.int("server.http-listen-port", 3200, "HTTP server listen port.")
    fs.int("server.grpc-listen-port", 9095, "gRPC server listen port.")
    fs.string_list("memberlist.host-port", [], "Host port to connect to memberlist cluster.")
    fs.int("memberlist.bind-port", 7946, "Port for memberlist to communicate on")
    fs.int("memberlist.message-history-buffer-bytes", 0, "")
    fs.bool("distributor.log-received-spans.enabled", False, "Enable to log every received span to help debug "
            "ingestion or calculate span error distributions using the logs.")
    fs.bool("distributor.log-discarded-spans.enabled", False, "Enable to log every discarded span to help debug "
            "ingestion or calculate span error distributions using the logs.")
    fs.string("distributor.rate-limit-strategy", "local", "Whether the various ingestion rate limits should be "
              "applied individually to each distributor instance (local), or evenly shared across the cluster "
              "(global).")
    fs.string("distributor.ring.instance-addr", "", "IP address to advertise in the ring.")
    fs.duration("ingester.trace-idle-period", 5.0, "Duration after which to consider a trace complete if no "
                "spans have been received")
    fs.duration("ingester.max-block-duration", 1800.0, "Maximum duration which the head block can be appended "
                "to before cutting it.")
    fs.duration("ingester.complete-block-timeout", 900.0, "Duration to keep blocks in the ingester after they "
                "have been flushed.")
    fs.string("ingester.availability-zone", "", "Define Availability Zone in which this ingester is running.")
    fs.string("generator.instance-id", socket.gethostname(), "Instance id.")
    fs.bool("compactor.disabled", False, "Disable compaction.")
    fs.string("compactor.ring.instance-addr", "", "IP address to advertise in the ring.")
    fs.duration("compactor.ring.wait-stability-min-duration", 60.0, "Minimum time to wait for ring stability "
                "at startup. 0 to disable.")
    fs.duration("compactor.ring.wait-stability-max-duration", 300.0, "Maximum time to wait for ring stability "
                "at startup. If the compactor ring keeps changing after this period of time, the compactor will "
                "start anyway.")
    fs.bool("query-frontend.mcp-server.enabled", False, "Set to true to enable the MCP server.")
    fs.string("storage.trace.backend", "", "Trace backend (s3, azure, gcs, local)")
    fs.string("storage.trace.wal.path", "/var/tempo/wal", "Path at which store WAL blocks.")
    fs.string("storage.trace.local.path", "", "path to store traces at.")
    fs.string("storage.trace.s3.bucket", "", "s3 bucket to store blocks in.")
    fs.string("storage.trace.s3.endpoint", "", "s3 endpoint to push blocks to.")
    return fs


def _log_level(text: str) -> str:
    if text not in ("debug", "info", "warn", "error"):
        raise ValueError('unrecognized log level "%s"' % text)
    return text


def _prescan(argv: Sequence[str]) -> Tuple[str, bool, bool]:
    """Like upstream's loadConfig: find -config.file/-config.expand-env/-config.verify
    anywhere, ignoring everything else."""
    probe = fw.FlagSet("", output=_Null())
    probe.string("config.file", "")
    probe.bool("config.expand-env", False)
    probe.bool("config.verify", False)
    args = list(argv)
    while args:
        try:
            probe.parse(args)
        except Exception:  # noqa: BLE001 - upstream ignores parse errors here
            pass
        args = args[1:]
    return probe["config.file"], probe["config.expand-env"], probe["config.verify"]


class _Null:
    def write(self, _s):
        return 0

    def flush(self):
        pass


# ---------------------------------------------------------------------------
# effective settings
# ---------------------------------------------------------------------------

def G(cfg: Any, path: str, default: Any = None) -> Any:
    return fw.get_path(cfg, path, default)


def _put(cfg: Dict[str, Any], path: str, value: Any) -> None:
    cur = cfg
    parts = path.split(".")
    for p in parts[:-1]:
        if not isinstance(cur.get(p), dict):
            cur[p] = {}
        cur = cur[p]
    cur[parts[-1]] = value


FLAG_PATHS = {
    "target": "target", "multitenancy.enabled": "multitenancy_enabled", "auth.enabled": "auth_enabled",
    "http-api-prefix": "http_api_prefix", "shutdown-delay": "shutdown_delay", "log.level": "server.log_level",
    "server.http-listen-port": "server.http_listen_port", "server.grpc-listen-port": "server.grpc_listen_port",
    "memberlist.bind-port": "memberlist.bind_port", "memberlist.host-port": "memberlist.join_members",
    "distributor.log-received-spans.enabled": "distributor.log_received_spans.enabled",
    "distributor.log-discarded-spans.enabled": "distributor.log_discarded_spans.enabled",
    "distributor.rate-limit-strategy": "overrides.defaults.ingestion.rate_strategy",
    "distributor.ring.instance-addr": "distributor.ring.instance_addr",
    "ingester.trace-idle-period": "ingester.trace_idle_period",
    "ingester.max-block-duration": "ingester.max_block_duration",
    "ingester.complete-block-timeout": "ingester.complete_block_timeout",
    "ingester.availability-zone": "ingester.lifecycler.availability_zone",
    "generator.instance-id": "metrics_generator.instance_id", "compactor.disabled": "compactor.disabled",
    "compactor.ring.instance-addr": "compactor.ring.instance_addr",
    "compactor.ring.wait-stability-min-duration": "compactor.ring.wait_stability_min_duration",
    "compactor.ring.wait-stability-max-duration": "compactor.ring.wait_stability_max_duration",
    "storage.trace.backend": "storage.trace.backend", "storage.trace.wal.path": "storage.trace.wal.path",
    "storage.trace.local.path": "storage.trace.local.path", "storage.trace.s3.bucket": "storage.trace.s3.bucket",
    "storage.trace.s3.endpoint": "storage.trace.s3.endpoint",
}


def apply_flags(cfg: Dict[str, Any], fs: fw.FlagSet) -> None:
    """Command-line flags win over the file (upstream parses them after it)."""
    for flag, path in FLAG_PATHS.items():
        if fs.is_set(flag):
            _put(cfg, path, list(fs[flag]) if isinstance(fs[flag], list) else fs[flag])


def modules_of(target: str) -> Tuple[str, ...]:
    return COMPOSITE.get(target, (target,))


class Rings:
    """Which rings this instance registers in, how they are stored, under which id and address."""

    def __init__(self, cfg: Dict[str, Any], grpc_port: int):
        target = G(cfg, "target", "all") or "all"
        mods = modules_of(target)
        single = target in SINGLE_BINARY
        host = socket.gethostname()
        self.rings: Dict[str, Dict[str, Any]] = {}
        if "ingester" in mods:
            # upstream forces the ingester ring in-memory, RF 1, on 127.0.0.1 for target "all"
            self.rings["ingester"] = dict(
                store="inmemory" if single else G(cfg, "ingester.lifecycler.ring.kvstore.store", "memberlist"),
                id=G(cfg, "ingester.lifecycler.id", host) or host,
                addr="127.0.0.1" if single else G(cfg, "ingester.lifecycler.address", ""),
                interfaces=G(cfg, "ingester.lifecycler.interface_names", None),
                port=int(G(cfg, "ingester.lifecycler.port", 0) or grpc_port),
                replication_factor=1 if single else int(G(cfg, "ingester.lifecycler.ring.replication_factor", 1)))
        if "metrics-generator" in mods:
            self.rings["metrics-generator"] = dict(
                store="inmemory" if single else G(cfg, "metrics_generator.ring.kvstore.store", "memberlist"),
                id=G(cfg, "metrics_generator.ring.instance_id", host) or host,
                addr="127.0.0.1" if single else G(cfg, "metrics_generator.ring.instance_addr", ""),
                interfaces=G(cfg, "metrics_generator.ring.instance_interface_names", ["eth0", "en0"]),
                port=int(G(cfg, "metrics_generator.ring.instance_port", 0) or grpc_port))
        if "compactor" in mods:
            store = G(cfg, "compactor.ring.kvstore.store", "") or ""
            if target == "scalable-single-binary" and not store:
                store = "memberlist"  # initCompactor's default for scalable-single-binary
            if store:
                self.rings["compactor"] = dict(
                    store=store, id=G(cfg, "compactor.ring.instance_id", host) or host,
                    addr=G(cfg, "compactor.ring.instance_addr", ""),
                    interfaces=G(cfg, "compactor.ring.instance_interface_names", ["eth0", "en0"]),
                    port=int(G(cfg, "compactor.ring.instance_port", 0) or grpc_port))
        strategy = G(cfg, "overrides.defaults.ingestion.rate_strategy", "local")
        if "distributor" in mods and strategy == "global":
            # the distributor ring exists only for global rate limits
            self.rings["distributor"] = dict(
                store=G(cfg, "distributor.ring.kvstore.store", "memberlist"),
                id=G(cfg, "distributor.ring.instance_id", host) or host,
                addr=G(cfg, "distributor.ring.instance_addr", ""),
                interfaces=G(cfg, "distributor.ring.instance_interface_names", ["eth0", "en0"]),
                port=int(G(cfg, "distributor.ring.instance_port", 0) or grpc_port))
        # read rings (pages) every target with a distributor or querier has
        self.pages = set(self.rings)
        if set(mods) & {"distributor", "querier"}:
            self.pages |= {"ingester", "metrics-generator"}

    def uses_memberlist(self) -> bool:
        return any(r["store"] == "memberlist" for r in self.rings.values())

    def resolve_addresses(self) -> None:
        """ring.GetInstanceAddr: the configured address, else the first address of the interfaces."""
        for name, ring in self.rings.items():
            if ring["addr"]:
                continue
            names = ring["interfaces"]
            if names is None:  # the lifecycler's default: private interfaces, falling back to eth0/en0
                names = _private_interfaces() or ["eth0", "en0"]
            addr = _first_address_of(names)
            if addr is None:
                raise ModuleError(_RING_MODULE[name], "no useable address found for interfaces [%s]"
                                  % " ".join(names))
            ring["addr"] = addr


_RING_MODULE = {"ingester": "ingester", "metrics-generator": "metrics-generator", "compactor": "compactor",
                "distributor": "distributor"}
_KV_STORES = ("consul", "etcd", "inmemory", "memberlist", "multi", "mock")


class ModuleError(Exception):
    def __init__(self, module: str, message: str):
        super().__init__("error initialising module: %s: %s" % (module, message))


def _interface_ipv4(name: str) -> Optional[str]:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))  # SIOCGIFADDR
        return socket.inet_ntoa(packed[20:24])
    except OSError:
        return None


def _private_interfaces() -> List[str]:
    out = []
    for _idx, name in socket.if_nameindex():
        addr = _interface_ipv4(name)
        if addr and ipaddress.ip_address(addr).is_private and not ipaddress.ip_address(addr).is_loopback:
            out.append(name)
    return out


def _first_address_of(names: Sequence[str]) -> Optional[str]:
    for name in names:
        addr = _interface_ipv4(name)
        if addr:
            return addr
    return None


# ---------------------------------------------------------------------------
# memberlist (a TCP/UDP port; peers exchange who they are and which rings they are in)
# ---------------------------------------------------------------------------

class Memberlist:
    def __init__(self, cfg: Dict[str, Any], log: fw.Logger, rings: Rings, on_change):
        self.log = log
        self.port = int(G(cfg, "memberlist.bind_port", 7946))
        name = G(cfg, "memberlist.node_name", "") or socket.gethostname()
        if G(cfg, "memberlist.randomize_node_name", True):
            name += "-" + "".join(random.choice(string.hexdigits[:16]) for _ in range(8))
        self.name = name
        self.label = G(cfg, "memberlist.cluster_label", "") or ""
        self.bind = G(cfg, "memberlist.bind_addr", []) or [""]
        self.join = [m.split("+", 1)[-1] for m in (G(cfg, "memberlist.join_members", []) or [])]
        advertise = G(cfg, "memberlist.advertise_addr", "") or ""
        self.info = {"name": self.name, "addr": advertise or _first_private_address() or "127.0.0.1",
                     "port": int(G(cfg, "memberlist.advertise_port", 0) or self.port), "cluster_label": self.label,
                     "rings": {k: {"id": v["id"], "addr": "%s:%d" % (v["addr"], v["port"])}
                               for k, v in rings.rings.items() if v["store"] == "memberlist"}}
        self.members: Dict[str, Dict[str, Any]] = {self.name: self.info}
        self.on_change = on_change
        self._listeners: List[Any] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def start(self) -> None:
        for addr in self.bind:
            try:
                self._listeners.append(_InfoListener(addr, self.port, self.info))
            except OSError as exc:
                for lst in self._listeners:
                    lst.stop()
                raise OSError("failed to create memberlist: Could not set up network transport: failed to obtain "
                              "an address: Failed to start TCP listener on \"%s\" port %d: %s"
                              % (addr or "0.0.0.0", self.port, exc)) from None
        threading.Thread(target=self._loop, daemon=True, name="memberlist-join").start()

    def _probe(self, member: str) -> Optional[Dict[str, Any]]:
        try:
            host, port = fw.parse_listen_address(member, default_port=self.port)
            with socket.create_connection((host.strip("[]"), port), timeout=1.0) as conn:
                conn.settimeout(1.0)
                data = b""
                while not data.endswith(b"\n") and len(data) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            info = json.loads(data.decode() or "null")
            return info if isinstance(info, dict) and info.get("name") else None
        except (OSError, ValueError):
            return None

    def _loop(self) -> None:
        while not self._stop.is_set():
            seen = {self.name: self.info}
            for member in self.join:
                info = self._probe(member)
                if info is None or info["name"] == self.name:
                    continue
                if (info.get("cluster_label") or "") != self.label:
                    self.log.warn("ignoring packet from a node with a different cluster label", member=member,
                                  cluster_label=info.get("cluster_label") or "")
                    continue
                seen[info["name"]] = info
            with self._lock:
                changed = set(seen) != set(self.members)
                self.members = seen
            if changed:
                self.on_change()
            self._stop.wait(1.0)

    def snapshot(self) -> List[Dict[str, Any]]:
        with self._lock:
            return [self.members[k] for k in sorted(self.members)]

    def stop(self) -> None:
        self._stop.set()
        for lst in self._listeners:
            lst.stop()


class _InfoListener(fw.PortListener):
    """memberlist's TCP and UDP port; a TCP peer reads this node's info as one JSON line."""

    def __init__(self, host: str, port: int, info: Dict[str, Any]):
        self.payload = (json.dumps(info) + "\n").encode()
        super().__init__("memberlist", host, port, udp=True)

    def serve(self, conn: socket.socket) -> None:
        conn.sendall(self.payload)


def _first_private_address() -> Optional[str]:
    names = _private_interfaces()
    return _interface_ipv4(names[0]) if names else None


# ---------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------

def _endpoint(value: Any, default: str) -> str:
    if isinstance(value, dict) and value.get("endpoint"):
        return value["endpoint"]
    return default


# ---------------------------------------------------------------------------
# received traces: per tenant and trace id, kept in a JSON-lines file under the WAL path
# ---------------------------------------------------------------------------

TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SINGLE_TENANT = "single-tenant"  # dskit's tenant when multitenancy is off
SPAN_KINDS = ["SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT",
              "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"]
STATUS_CODES = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"]


def parse_trace_id(text: str) -> str:
    """Tempo's HexStringToTraceID: up to 32 hex digits, left-padded to 128 bits; raises ValueError."""
    t = text.strip().lower()
    if len(t) > 32:
        raise ValueError("trace IDs can't be larger than 128 bits")
    if not t or any(c not in "0123456789abcdef" for c in t):
        raise ValueError("trace IDs should be hex: %s" % text)
    return t.rjust(32, "0")


def split_by_trace(doc: Dict[str, Any]) -> Dict[str, List[Dict[str, Any]]]:
    """trace id -> ResourceSpans holding only that trace's spans (what the distributor does)."""
    out: Dict[str, List[Dict[str, Any]]] = {}
    for res in doc.get("resourceSpans") or []:
        per: Dict[str, Dict[str, Any]] = {}
        for scope in res.get("scopeSpans") or []:
            for span in scope.get("spans") or []:
                tid = (span.get("traceId") or "").rjust(32, "0")
                batch = per.setdefault(tid, {k: v for k, v in res.items() if k != "scopeSpans"})
                scopes = batch.setdefault("scopeSpans", [])
                if not scopes or scopes[-1]["_src"] is not scope:
                    scopes.append({"_src": scope, **{k: v for k, v in scope.items() if k != "spans"}, "spans": []})
                scopes[-1]["spans"].append(span)
        for tid, batch in per.items():
            for sc in batch["scopeSpans"]:
                del sc["_src"]
            out.setdefault(tid, []).append(batch)
    return out


def tempo_json_batch(batch: Dict[str, Any]) -> Dict[str, Any]:
    """A stored ResourceSpans as Tempo's query API writes it (gogo jsonpb: ids base64, enums by name)."""
    import base64

    def b64(hexid: str) -> str:
        return base64.b64encode(bytes.fromhex(hexid)).decode() if hexid else ""

    out = json.loads(json.dumps(batch))
    for scope in out.get("scopeSpans") or []:
        for span in scope.get("spans") or []:
            for key in ("traceId", "spanId", "parentSpanId"):
                if span.get(key):
                    span[key] = b64(span[key])
            kind = span.get("kind", 0)
            span["kind"] = SPAN_KINDS[kind] if isinstance(kind, int) and 0 <= kind < len(SPAN_KINDS) else kind
            status = span.setdefault("status", {})
            code = status.get("code", 0)
            if isinstance(code, int) and 0 <= code < len(STATUS_CODES):
                status["code"] = STATUS_CODES[code]
            for link in span.get("links") or []:
                for key in ("traceId", "spanId"):
                    if link.get(key):
                        link[key] = b64(link[key])
    return out


class TraceStore:
    """Spans per (tenant, trace id); appended to ``<wal path>/o11y-standin-traces.jsonl`` so a restart keeps them."""

    FILE = "o11y-standin-traces.jsonl"

    def __init__(self, directory: str, log: fw.Logger):
        self.log = log
        self.lock = threading.Lock()
        self.traces: Dict[Tuple[str, str], List[Dict[str, Any]]] = {}
        self.path: Optional[str] = None
        try:
            os.makedirs(directory, exist_ok=True)
            self.path = os.path.join(directory, self.FILE)
            self._load()
        except OSError as exc:
            log.warn("trace store kept in memory only", path=directory, err=str(exc))
            self.path = None

    def _load(self) -> None:
        if not self.path or not os.path.exists(self.path):
            return
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                    self.traces.setdefault((rec["tenant"], rec["traceId"]), []).append(rec["batch"])
                except (ValueError, KeyError):
                    continue  # a torn last line after a crash

    def add(self, tenant: str, doc: Dict[str, Any]) -> int:
        """Store one ExportTraceServiceRequest (OTLP/JSON shape); returns the span count."""
        lines = []
        with self.lock:
            for tid, batches in split_by_trace(doc).items():
                for batch in batches:
                    self.traces.setdefault((tenant, tid), []).append(batch)
                    lines.append(json.dumps({"tenant": tenant, "traceId": tid, "batch": batch}) + "\n")
            if self.path and lines:
                try:
                    with open(self.path, "a", encoding="utf-8") as fh:
                        fh.writelines(lines)
                except OSError as exc:
                    self.log.error("failed to append to trace store", path=self.path, err=str(exc))
        return otlp.count("traces", doc)

    def get(self, tenant: str, trace_id: str) -> List[Dict[str, Any]]:
        with self.lock:
            return list(self.traces.get((tenant, trace_id), []))


class Tempo:
    def __init__(self, cfg: Dict[str, Any], log: fw.Logger, rings: Rings):
        self.cfg = cfg
        self.log = log
        self.rings = rings
        self.target = G(cfg, "target", "all") or "all"
        self.modules = modules_of(self.target)
        self.started_wall = time.time()
        self.started = time.monotonic()
        self.metrics = fw.Metrics()
        self.metrics.build_info("tempo", {"version": version(), "revision": revision(), "branch": "HEAD",
                                          "goversion": goversion()})
        self.metrics.collectors.append(self._collect)
        self.spans_received: Dict[str, int] = {}
        self.multitenant = bool(G(cfg, "multitenancy_enabled", False) or G(cfg, "auth_enabled", False))
        self.store = TraceStore(G(cfg, "storage.trace.wal.path", "/var/tempo/wal") or "/var/tempo/wal", log)
        self.services: List[Any] = []
        self.ml: Optional[Memberlist] = Memberlist(cfg, log, rings, self._ring_changed) \
            if rings.uses_memberlist() else None
        self.registered = _dt.datetime.now(_dt.timezone.utc)
        self._compactor_changed = self.started
        self._compactor_running = False
        # compactor.starting: wait until the ring did not change for the min duration (capped by the max)
        self.stability_min = float(G(cfg, "compactor.ring.wait_stability_min_duration", 60.0))
        self.stability_max = float(G(cfg, "compactor.ring.wait_stability_max_duration", 300.0))
        self.min_ready = float(G(cfg, "ingester.lifecycler.min_ready_duration", 15.0))

    # -- rings --------------------------------------------------------------
    def _ring_changed(self) -> None:
        self.compactor_running()  # latch a wait that ended before this change
        self._compactor_changed = time.monotonic()

    def ring_members(self, name: str) -> List[Dict[str, Any]]:
        """Entries of ring *name* as this instance sees them."""
        own = self.rings.rings.get(name)
        out: Dict[str, Dict[str, Any]] = {}
        if own is not None:
            out[own["id"]] = {"id": own["id"], "addr": "%s:%d" % (own["addr"], own["port"])}
        if own is None or own["store"] == "memberlist":
            for member in (self.ml.snapshot() if self.ml else []):
                entry = (member.get("rings") or {}).get(name)
                if entry and member["name"] != (self.ml.name if self.ml else ""):
                    out.setdefault(entry["id"], entry)
        return [out[k] for k in sorted(out)]

    def compactor_running(self) -> bool:
        """The wait happens once, while the compactor starts; later ring changes do not stop it."""
        if self._compactor_running or "compactor" not in self.rings.rings or self.stability_min <= 0:
            return True
        now = time.monotonic()
        if now - self.started >= self.stability_max \
                or now - max(self.started, self._compactor_changed) >= self.stability_min:
            self._compactor_running = True
        return self._compactor_running

    def _collect(self, m: fw.Metrics) -> None:
        m.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                self.started_wall)
        for tenant, n in sorted(self.spans_received.items()):
            m.counter("tempo_distributor_spans_received_total", "The total number of spans received per tenant",
                      n, {"tenant": tenant})
        if self.ml is not None:
            m.gauge("tempo_memberlist_client_cluster_members_count", "Number of members in memberlist cluster.",
                    len(self.ml.snapshot()))
        for name in sorted(self.rings.pages):
            active = len(self.ring_members(name))
            for state in ("ACTIVE", "JOINING", "LEAVING", "PENDING", "Unhealthy"):
                m.gauge("tempo_ring_members", "Number of members in the ring", active if state == "ACTIVE" else 0,
                        {"name": name, "state": state})

    # -- HTTP ---------------------------------------------------------------
    def api(self) -> fw.Router:
        r = fw.Router()
        prefix = G(self.cfg, "http_api_prefix", "") or ""
        r.add("/ready", self.ready)
        r.add("/metrics", lambda req: self.metrics.wsgi_response())
        r.add(prefix + "/api/echo", lambda req: (200, "echo"))
        r.add(prefix + "/api/status/buildinfo", lambda req: (
            200, json.dumps({"version": version(), "revision": revision(), "branch": "HEAD", "buildUser": "",
                             "buildDate": "", "goVersion": goversion()}), {"Content-Type": "application/json"}))
        r.add(prefix + "/api/traces/", lambda req: self.trace_by_id(req, prefix + "/api/traces/", 1), prefix=True)
        r.add(prefix + "/api/v2/traces/", lambda req: self.trace_by_id(req, prefix + "/api/v2/traces/", 2),
              prefix=True)
        r.add("/memberlist", self.memberlist_page)
        for name in sorted(self.rings.pages):
            r.add("/%s/ring" % name, lambda req, n=name: self.ring_page(req, n), methods=("GET", "HEAD", "POST"))
        r.add("/status/version", lambda req: (200, "GET /status/version\n" + version_text()))
        r.add("/status/services", self.services_page)
        r.add("/status", lambda req: (200, "GET /status/version\n" + version_text() + "\n"
                                      + self.services_page(req)[1]))
        return r

    def ready(self, _req):
        if not self.compactor_running():
            # modules/compactor starting(): waiting until the compactor ring topology is stable
            return 503, "Some services are not Running:\nRunning: %d\nStarting: 1\n" % (len(self.modules) + 6)
        if "ingester" in self.modules and time.monotonic() - self.started < self.min_ready:
            return 503, ("Ingester not ready: ingester check ready failed: waiting for %s after being ready\n"
                         % fw.format_go_duration(self.min_ready))
        return 200, "ready\n"

    def services_page(self, _req):
        lines = ["GET /status/services"]
        for mod in ("server", "memberlist-kv", "overrides", "store") + tuple(self.modules):
            state = "Running"
            if mod == "compactor" and not self.compactor_running():
                state = "Starting"
            lines.append("%s: %s" % (mod, state))
        return 200, "\n".join(lines) + "\n"

    def memberlist_page(self, req):
        if self.ml is None:
            return 200, "This instance doesn't use memberlist.", {"Content-Type": "text/plain"}
        members = self.ml.snapshot()
        if "application/json" in req.headers.get("Accept", ""):
            body = {"Now": _dt.datetime.now(_dt.timezone.utc).isoformat(),
                    "SortedMembers": [{"Name": m["name"], "Addr": m.get("addr") or "", "Port": m.get("port"),
                                       "State": 0} for m in members]}
            return 200, json.dumps(body), {"Content-Type": "application/json"}
        rows = "".join("<tr><td>%s</td><td>%s:%s</td><td>Alive</td></tr>\n"
                       % (m["name"], m.get("addr") or "", m.get("port")) for m in members)
        body = ("<!DOCTYPE html>\n<html><head><title>Memberlist Status</title></head><body>\n"
                "<h1>Memberlist Status</h1>\n<h2>Memberlist Cluster Members</h2>\n"
                "<table>\n<tr><th>Name</th><th>Address</th><th>State</th></tr>\n%s</table>\n</body></html>\n"
                % rows)
        return 200, body, {"Content-Type": "text/html"}

    def ring_page(self, req, name: str):
        if req.method == "POST":
            return 302, "", {"Location": "#"}
        now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
        shards = [{"id": e["id"], "state": "ACTIVE", "address": e["addr"], "timestamp": now.isoformat(),
                   "registered_timestamp": self.registered.replace(microsecond=0).isoformat(),
                   "read_only": False, "read_only_updated_timestamp": "1970-01-01T00:00:00Z", "zone": "",
                   "tokens": []} for e in self.ring_members(name)]
        if "application/json" in req.headers.get("Accept", ""):
            return 200, json.dumps({"shards": shards, "now": now.isoformat()}), {"Content-Type": "application/json"}
        rows = "".join("<tr><td>%s</td><td>%s</td><td>%s</td></tr>\n" % (s["id"], s["state"], s["address"])
                       for s in shards)
        body = ("<!DOCTYPE html>\n<html><head><title>Ring Status</title></head><body>\n<h1>Ring Status</h1>\n"
                "<table>\n<tr><th>Instance ID</th><th>State</th><th>Address</th></tr>\n%s</table>\n"
                "</body></html>\n" % rows)
        return 200, body, {"Content-Type": "text/html"}

    # -- traces: ingest and query ------------------------------------------------
    def tenant_of(self, headers) -> Optional[str]:
        """The tenant of a request; None when multitenancy needs an X-Scope-OrgID that is missing."""
        if not self.multitenant:
            return SINGLE_TENANT
        return (headers.get("X-Scope-OrgID") or headers.get("x-scope-orgid") or "").strip() or None

    def ingest(self, tenant: str, doc: Dict[str, Any]) -> None:
        n = self.store.add(tenant, doc)
        self.spans_received[tenant] = self.spans_received.get(tenant, 0) + n

    def otlp_grpc(self, method: str, metadata: Dict[str, str], message: bytes):
        if method != TRACE_EXPORT:
            return grpc_h2c.UNIMPLEMENTED, "unknown service %s" % method.strip("/").rpartition("/")[0], b""
        tenant = self.tenant_of(metadata)
        if tenant is None:
            return grpc_h2c.UNAUTHENTICATED, "no org id", b""
        try:
            doc = otlp.decode("traces", message)
        except ValueError as exc:
            return grpc_h2c.INVALID_ARGUMENT, "grpc: error unmarshalling request: %s" % exc, b""
        self.ingest(tenant, doc)
        return grpc_h2c.OK, "", b""  # an empty ExportTraceServiceResponse

    def otlp_http(self) -> fw.Router:
        r = fw.Router()

        def traces(req):
            tenant = self.tenant_of(req.headers)
            if tenant is None:
                return 401, "no org id\n"
            body = req.get_data()
            try:
                if (req.headers.get("Content-Encoding") or "").lower() == "gzip":
                    body = gzip.decompress(body)
                decoded = otlp.decode_http("traces", body, req.mimetype)
            except (ValueError, OSError, EOFError) as exc:
                return 400, str(exc)
            if decoded is None:
                return 415, otlp.UNSUPPORTED_MEDIA_TYPE
            doc, reply, rtype = decoded
            self.ingest(tenant, doc)
            return 200, reply, {"Content-Type": rtype}

        r.add("/v1/traces", traces, methods=("POST",))
        return r

    def trace_by_id(self, req, route: str, api_version: int):
        tenant = self.tenant_of(req.headers)
        if tenant is None:
            return 401, "no org id\n"
        try:
            trace_id = parse_trace_id(req.path[len(route):])
        except ValueError as exc:
            return 400, str(exc)
        batches = self.store.get(tenant, trace_id)
        if not batches:
            return 404, "trace not found"
        if "application/protobuf" in (req.headers.get("Accept") or ""):
            # tempopb.Trace {repeated ResourceSpans batches = 1}: ExportTraceServiceRequest's wire shape
            body = otlp.encode("traces", {"resourceSpans": batches})
            if api_version == 2:  # TraceByIDResponse {Trace trace = 1}
                body = wire.field_bytes(1, body)
            return 200, body, {"Content-Type": "application/protobuf"}
        out = [tempo_json_batch(b) for b in batches]
        doc = {"batches": out} if api_version == 1 else {"trace": {"resourceSpans": out}, "metrics": {}}
        return 200, json.dumps(doc), {"Content-Type": "application/json"}

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> None:
        cfg = self.cfg
        http_addr = "%s:%d" % (G(cfg, "server.http_listen_address", ""), int(G(cfg, "server.http_listen_port", 3200)))
        grpc_host = G(cfg, "server.grpc_listen_address", "")
        grpc_port = int(G(cfg, "server.grpc_listen_port", 9095))
        try:  # dskit's server.New binds both listeners while the "server" module initialises
            self.services.append(fw.HTTPService("http", http_addr, self.api(), logger=self.log).start())
            self.services.append(fw.PortListener("grpc", grpc_host, grpc_port))
        except OSError as exc:
            raise ModuleError("server", str(exc)) from None
        if self.ml is not None:
            self.ml.start()
            self.services.append(self.ml)
            self.log.info("joining memberlist cluster", members=",".join(self.ml.join), node=self.ml.name)
        protocols = G(cfg, "distributor.receivers.otlp.protocols", None) if "distributor" in self.modules else None
        if isinstance(protocols, dict):
            if "grpc" in protocols:
                h, p = fw.parse_listen_address(_endpoint(protocols.get("grpc"), "localhost:4317"))
                self.services.append(grpc_h2c.GrpcServer("otlp-grpc", h, p, self.otlp_grpc))
            if "http" in protocols:
                addr = _endpoint(protocols.get("http"), "localhost:4318")
                self.services.append(fw.HTTPService("otlp-http", addr, self.otlp_http(), logger=self.log).start())

    def stop(self) -> None:
        for svc in self.services:
            try:
                svc.stop()
            except Exception:  # noqa: BLE001
                pass


# ---------------------------------------------------------------------------
# configuration warnings (Config.CheckConfig) and module checks
# ---------------------------------------------------------------------------

def config_warnings(cfg: Dict[str, Any]) -> List[str]:
    poll = G(cfg, "storage.trace.blocklist_poll", 300.0)
    backend = G(cfg, "storage.trace.backend", "")
    out = []
    if G(cfg, "ingester.complete_block_timeout", 3 * 300.0) < poll:
        out.append("ingester.complete_block_timeout < storage.trace.blocklist_poll")
    if G(cfg, "compactor.compaction.block_retention", 336 * 3600.0) < poll:
        out.append("compactor.compaction.compacted_block_timeout < storage.trace.blocklist_poll")
    if G(cfg, "compactor.compaction.retention_concurrency", 10) == 0:
        out.append("c.Compactor.Compactor.RetentionConcurrency must be greater than zero. Using default.")
    if backend == "s3" and G(cfg, "compactor.compaction.v2_out_buffer_bytes", 20 * 1024 * 1024) < 5242880:
        out.append("c.Compactor.Compactor.FlushSizeBytes < 5242880")
    if G(cfg, "storage.trace.blocklist_poll_concurrency", 50) == 0:
        out.append("c.StorageConfig.Trace.BlocklistPollConcurrency must be greater than zero. Using default.")
    if G(cfg, "distributor.log_received_spans.enabled", False):
        out.append("Span logging is enabled. This is for debugging only and not recommended for production "
                   "deployments.")
    if G(cfg, "distributor.log_discarded_spans.enabled", False):
        out.append("Span logging for discarded traces is enabled. This is for debugging only and not "
                   "recommended for production deployments.")
    if backend == "local" and G(cfg, "target", "all") not in SINGLE_BINARY:
        out.append("Local backend will not correctly retrieve traces with a distributed deployment unless all "
                   "components have access to the same disk. You should probably be using object storage as a "
                   "backend.")
    if G(cfg, "query_frontend.mcp_server.enabled", False):
        out.append("c.Frontend.MCPServer.Enabled is enabled.")
    if isinstance(cfg.get("overrides"), dict) and cfg["overrides"].get(LEGACY_MARK):
        out.append("Inline, unscoped overrides are deprecated. Please use the new overrides config format.")
    if backend == "s3" and G(cfg, "storage.trace.s3.native_aws_auth_enabled", False):
        out.append("c.StorageConfig.Trace.S3.NativeAWSAuthEnabled is deprecated and will be removed in a future "
                   "release.")
    if G(cfg, "storage.trace.cache", ""):
        out.append("c.StorageConfig.Trace.Cache is deprecated and will be removed in a future release.")
    block_version = (G(cfg, "storage.trace.block", {}) or {}).get("version", "vParquet4") \
        if isinstance(G(cfg, "storage.trace.block", {}), dict) else "vParquet4"
    for key, default in (("v2_in_buffer_bytes", 5242880), ("v2_out_buffer_bytes", 20971520),
                         ("v2_prefetch_traces_count", 1000)):
        if block_version != "v2" and G(cfg, "compactor.compaction." + key, default) != default:
            out.append('c.StorageConfig.Trace.Block.Version != "v2" but %s is set' % key)
    if G(cfg, "backend_scheduler.work.prune_age", 3600.0) <= 2 * poll:
        out.append("c.BackendScheduler.Work.PruneAge must be greater than 2x the storage.trace.blocklist_poll "
                   "duration")
    return out


def _check_keys(value: Any, spec: Optional[Dict[str, Any]], path: str) -> Optional[str]:
    """mapstructure's strict decode of a receiver: the first invalid key, like confmap reports it."""
    if spec is None or value is None:
        return None
    if not isinstance(value, dict):
        return "'%s' expected a map, got '%s'" % (path, type(value).__name__)
    bad = sorted(k for k in value if k not in spec)
    if bad:
        return "'%s' has invalid keys: %s" % (path, ", ".join(bad))
    for key, sub in value.items():
        err = _check_keys(sub, spec[key], "%s.%s" % (path, key) if path else key)
        if err:
            return err
    return None


def check_receivers(receivers: Dict[str, Any]) -> Optional[str]:
    prefix = "failed to get config: cannot unmarshal the configuration: decoding failed due to the following " \
             "error(s):\n\nerror decoding 'receivers': "
    for rid, rcfg in (receivers or {}).items():
        rtype = str(rid).split("/", 1)[0]
        if rtype not in RECEIVER_TYPES:
            return prefix + 'unknown type: "%s" for id: "%s" (valid values: [%s])' % (
                rtype, rid, " ".join(RECEIVER_TYPES))
        if rtype == "otlp":
            err = _check_keys(rcfg, OTLP_RECEIVER, "")
            if err:
                return prefix + ('error reading configuration for "%s": decoding failed due to the following '
                                 'error(s):\n\n%s' % (rid, err))
    return None


def init_modules(cfg: Dict[str, Any], log: fw.Logger) -> Rings:
    """What InitModuleServices does before anything listens; raises ModuleError."""
    target = G(cfg, "target", "all") or "all"
    mods = modules_of(target)
    grpc_port = int(G(cfg, "server.grpc_listen_port", 9095))
    for path in ("distributor.ring.kvstore.store", "ingester.lifecycler.ring.kvstore.store",
                 "metrics_generator.ring.kvstore.store", "compactor.ring.kvstore.store"):
        store = G(cfg, path, None)
        if store and store not in _KV_STORES:
            raise ModuleError(path.split(".", 1)[0].replace("_", "-"), "invalid KV store type: %s" % store)
    uses_store = bool(set(mods) & {"ingester", "querier", "query-frontend", "compactor", "block-builder",
                                   "backend-scheduler", "backend-worker"})
    if uses_store:
        check_store(cfg)
    rings = Rings(cfg, grpc_port)
    rings.resolve_addresses()
    if "ingester" in mods:
        wal = G(cfg, "storage.trace.wal.path", "/var/tempo/wal") or "/var/tempo/wal"
        try:
            os.makedirs(wal, exist_ok=True)
        except OSError as exc:
            raise ModuleError("ingester", "failed to create ingester: mkdir %s: %s"
                              % (wal, (exc.strerror or str(exc)).lower())) from None
    if "distributor" in mods:
        err = check_receivers(G(cfg, "distributor.receivers", {}) or {})
        if err:
            raise ModuleError("distributor", "failed to create distributor: " + err)
    if "querier" in mods and target not in SINGLE_BINARY and not G(cfg, "querier.frontend_worker.frontend_address"):
        raise ModuleError("querier", "frontend worker address not specified")
    if rings.uses_memberlist():
        adv = G(cfg, "memberlist.advertise_addr", "")
        if adv:
            try:
                ipaddress.ip_address(adv)
            except ValueError:
                raise ModuleError("memberlist-kv", "failed to create memberlist: Failed to parse advertise "
                                  "address \"%s\"" % adv) from None
    return rings


def check_store(cfg: Dict[str, Any]) -> None:
    backend = G(cfg, "storage.trace.backend", "")
    if backend not in ("s3", "gcs", "azure", "local"):
        raise ModuleError("store", "failed to create store: unknown backend %s" % backend)
    if backend == "local" and not G(cfg, "storage.trace.local.path", ""):
        raise ModuleError("store", "failed to create store: failed to create local backend: mkdir : no such "
                          "file or directory")
    if backend != "s3":
        return
    s3 = G(cfg, "storage.trace.s3", {}) or {}
    bucket = s3.get("bucket") or ""
    endpoint = s3.get("endpoint") or ""
    wait = float(os.environ.get("O11Y_STANDIN_S3_WAIT", "0"))
    deadline = time.monotonic() + wait
    while True:
        ok, reason = fw.check_bucket(endpoint, bucket, access_key=s3.get("access_key") or None,
                                     secret_key=s3.get("secret_key") or None,
                                     region=s3.get("region") or "us-east-1", insecure=bool(s3.get("insecure")))
        if ok:
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    raise ModuleError("store", "failed to create store: unexpected error from ListObjects on %s: %s"
                      % (bucket, reason))


def run(argv: Sequence[str], prog: str = "tempo") -> int:
    config_file, expand, verify = _prescan(argv)
    cfg: Dict[str, Any] = {}
    if config_file:
        try:
            cfg = fw.load_config(config_file, CONFIG_SCHEMA, fill_defaults=False, expand=expand) or {}
        except OSError as exc:
            sys.stderr.write("failed parsing config: failed to read configFile %s: open %s: %s\n"
                             % (config_file, config_file, (exc.strerror or str(exc)).lower()))
            return 1
        except fw.ConfigError as exc:
            body = exc.render()
            if body.startswith(config_file + ": "):
                body = body[len(config_file) + 2:]
            sys.stderr.write("failed parsing config: failed to parse configFile %s: %s\n" % (config_file, body))
            return 1
    fs = make_flagset(prog)
    fs.parse_or_exit(list(argv))
    apply_flags(cfg, fs)
    if fs["version"]:
        sys.stdout.write(version_text())
        return 0
    log = fw.Logger("tempo", fmt=G(cfg, "server.log_format", "logfmt") or "logfmt",
                    level=G(cfg, "server.log_level", "info") or "info")
    warnings = config_warnings(cfg)
    if warnings:
        log.warn("-- CONFIGURATION WARNINGS --")
        for w in warnings:
            log.warn(w)
    if verify:
        return 1 if warnings else 0
    target = G(cfg, "target", "all") or "all"
    if target not in VISIBLE_TARGETS + INTERNAL_TARGETS:
        log.error("error running Tempo", err="failed to init module services: unrecognised module name: %s" % target)
        return 1
    if target in INTERNAL_TARGETS:
        log.warn("selected target is an internal module, is this intended?", target=target)
    try:
        rings = init_modules(cfg, log)
    except ModuleError as exc:
        log.error("error running Tempo", err="failed to init module services: %s" % exc)
        return 1
    app = Tempo(cfg, log, rings)
    log.info("Starting Tempo", version="(version=%s, branch=HEAD, revision=%s)" % (version(), revision()),
             target=target)
    shutdown = fw.ShutdownSignal()
    try:
        app.start()
    except ModuleError as exc:
        app.stop()
        log.error("error running Tempo", err="failed to init module services: %s" % exc)
        return 1
    except (OSError, ValueError) as exc:
        app.stop()
        log.error("error running Tempo", err="failed to start service manager: %s" % exc)
        return 1
    log.info("Tempo started")
    return fw.run_until_signal([], logger=log, on_shutdown=app.stop, shutdown=shutdown)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: ``argv`` includes the program name (like ``sys.argv``)."""
    argv = list(sys.argv if argv is None else argv)
    try:
        return run(argv[1:], argv[0] if argv and argv[0] and not argv[0].endswith(".py") else "tempo")
    except fw.StandinExit as exc:
        return int(exc.code or 0)


if __name__ == "__main__":  # python -m o11y_standins.tempo
    sys.exit(main())
