# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Grafana Tempo stand-in: the ``tempo`` binary on the surface o11y.stack uses.

Behaves like Tempo 3.0.3 where the collection touches it:

* CLI (Go ``flag`` package): ``-config.file``, ``-config.expand-env``,
  ``-config.verify``, ``-version``, ``-target``, ``-multitenancy.enabled``,
  ``-server.http-listen-port``, ``-server.grpc-listen-port``,
  ``-memberlist.bind-port``, ``-memberlist.host-port``, ``-log.level`` and a
  few more; ``-h``/``-help`` prints the usage and exits 0; an unknown flag
  prints ``flag provided but not defined: -x`` and the usage, exit 2.  Like
  upstream, the config file is read before the flags are checked, and flags
  given on the command line win over the file.
* Strict YAML (yaml.v2 ``UnmarshalStrict``): unknown or misplaced keys fail
  with ``failed parsing config: failed to parse configFile ...: yaml:
  unmarshal errors: ... field x not found in type ...``, exit 1.  The keys of
  every section the tempo role renders (server, distributor, memberlist,
  live_store, metrics_generator, backend_scheduler, backend_worker,
  storage.trace, overrides.defaults, usage_report) and their siblings follow
  the configuration reference and manifest of Tempo 3.0.3; blocks the role
  does not render (query_frontend, querier, ingest, block_builder, ...) are
  accepted as opaque mappings.  ``${VAR}`` is expanded only with
  ``-config.expand-env=true``.
* ``-config.verify``: parse, then Tempo's configuration warnings (retention or
  live-store block timeout shorter than ``storage.trace.blocklist_poll``,
  backend-scheduler prune age not above twice the poll, local backend outside
  monolithic mode); exit 1 when any applies, else 0.  Never touches S3.
* Startup: refuses (exit 1, names the bucket) when ``storage.trace.backend``
  is ``s3`` and the bucket does not exist with the configured credentials;
  ``memberlist.advertise_addr`` must be an IP address like hashicorp
  memberlist requires.  Binds ``server.http_listen_port``,
  ``server.grpc_listen_port``, memberlist ``bind_port`` (TCP and UDP) and the
  OTLP receiver endpoints of the distributor.
* HTTP: ``/ready`` (200 ``ready``), ``/metrics`` (``tempo_build_info``),
  ``/api/echo``, ``/api/status/buildinfo``, ``/memberlist`` (members: this
  node plus each configured join member whose memberlist port answers),
  OTLP/HTTP ``POST /v1/traces`` on the receiver port.
* Logs (logfmt) on stderr; SIGTERM -> exit 0.  Type=simple (no sd_notify),
  like upstream's packaged unit.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import framework as fw

DEFAULT_VERSION = "3.0.3"
DEFAULT_GOVERSION = "go1.26.5"
TARGETS = ("all", "distributor", "live-store", "querier", "query-frontend", "metrics-generator",
           "block-builder", "backend-scheduler", "backend-worker", "scalable-single-binary")


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
# configuration schema (Tempo 3.0.3)
# ---------------------------------------------------------------------------

S, I, B, F, D, A = fw.Str, fw.Int, fw.Bool, fw.Float, fw.Duration, fw.Any_


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


def _tls_client(name: str = "tls.ClientConfig") -> Dict[str, fw.Schema]:
    return dict(tls_enabled=B(), tls_cert_path=S(), tls_key_path=S(), tls_ca_path=S(), tls_server_name=S(),
                tls_insecure_skip_verify=B(), tls_cipher_suites=S(), tls_min_version=S())


def _kvstore() -> fw.Struct:
    return St("kv.Config",
              store=fw.Enum("consul", "etcd", "inmemory", "memberlist", "multi", ""), prefix=S(),
              consul=St("consul.Config", host=S(), acl_token=S(), http_client_timeout=D(), consistent_reads=B(),
                        watch_rate_limit=F(), watch_burst_size=I(), cas_retry_delay=D()),
              etcd=fw.Struct("etcd.Config", dict(endpoints=fw.List(S()), dial_timeout=D(), max_retries=I(),
                                                 username=S(), password=S(), **_tls_client())),
              multi=St("kv.MultiConfig", primary=S(), secondary=S(), mirror_enabled=B(), mirror_timeout=D()))


def _ring(name: str, **extra: fw.Schema) -> fw.Struct:
    fields = dict(kvstore=_kvstore(), heartbeat_period=D(), heartbeat_timeout=D(), instance_id=S(),
                  instance_interface_names=fw.List(S()), instance_port=I(), instance_addr=S(),
                  enable_inet6=B())
    fields.update(extra)
    return fw.Struct(name, fields)


def _span_log() -> fw.Struct:
    return St("distributor.LogSpansConfig", enabled=B(), include_all_attributes=B(), filter_by_status_error=B())


OTLP_GRPC = St("otlpreceiver.GRPCServerSettings", endpoint=S(), transport=S(), tls=A(),
               max_recv_msg_size_mib=I(), max_concurrent_streams=I(), read_buffer_size=I(),
               write_buffer_size=I(), keepalive=A(), auth=A(), include_metadata=B())
OTLP_HTTP = St("otlpreceiver.HTTPConfig", endpoint=S(), tls=A(), cors=A(), auth=A(),
               max_request_body_size=I(), include_metadata=B(), response_headers=A(), traces_url_path=S(),
               metrics_url_path=S(), logs_url_path=S())
RECEIVERS = St("distributor.receivers",
               otlp=St("otlpreceiver.Config",
                       protocols=St("otlpreceiver.Protocols", grpc=OTLP_GRPC, http=OTLP_HTTP)),
               jaeger=A(), zipkin=A(), kafka=A())

DISTRIBUTOR = St("distributor.Config",
                 ring=_ring("distributor.RingConfig"), receivers=RECEIVERS, override_ring_key=S(),
                 forwarders=fw.List(A()), usage=St("usage.Config", cost_attribution=St(
                     "usage.PerTrackerConfig", enabled=B(), max_cardinality=I(), stale_duration=D())),
                 kafka_config=A(), log_received_spans=_span_log(), log_discarded_spans=_span_log(),
                 metric_received_spans=St("distributor.MetricReceivedSpansConfig", enabled=B(), root_only=B()),
                 retry_after_on_resource_exhausted=D(), max_attribute_bytes=I())

MEMBERLIST = fw.Struct("memberlist.KVConfig", dict(
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
    zone_aware_routing=A(), propagation_delay_tracker=A(), **_tls_client()))

WAL_SLACK = St("wal.Config", path=S(), ingestion_time_range_slack=D())

LIVE_STORE = St("livestore.Config",
                ring=_ring("livestore.RingConfig", instance_zone=S()),
                partition_ring=St("livestore.PartitionRingConfig", kvstore=_kvstore(),
                                  min_partition_owners_count=I(), min_partition_owners_duration=D(),
                                  delete_inactive_partition_after=D()),
                metrics=St("livestore.MetricsConfig", time_overlap_cutoff=F()),
                commit_interval=D(), wal=WAL_SLACK, query_block_concurrency=I(), complete_block_timeout=D(),
                complete_block_concurrency=I(), block_reclaim_grace=D(), shutdown_marker_dir=S(),
                flush_check_period=D(), flush_op_timeout=D(), max_trace_live=D(), max_trace_idle=D(),
                max_live_traces_bytes=I(), max_block_duration=D(), max_block_bytes=I(),
                readiness_target_lag=D(), readiness_max_wait=D(), fail_on_high_lag=B(),
                remove_owner_on_shutdown=B())

REMOTE_WRITE = St("config.RemoteWriteConfig",
                  url=S(required=True), remote_timeout=S(), headers=fw.MapOf(S()), write_relabel_configs=A(),
                  name=S(), send_exemplars=B(), send_native_histograms=B(), round_robin_dns=B(),
                  protobuf_message=S(), basic_auth=A(), authorization=A(), oauth2=A(), bearer_token=S(),
                  bearer_token_file=S(), tls_config=A(), proxy_url=S(), no_proxy=S(), proxy_from_environment=B(),
                  proxy_connect_header=A(), follow_redirects=B(), enable_http2=B(), http_headers=A(),
                  queue_config=A(), metadata_config=A(), sigv4=A(), azuread=A(), google_iam=A())

GENERATOR = St("generator.Config",
               ring=_ring("generator.RingConfig", instance_zone=S()),
               processor=St("generator.ProcessorConfig",
                            service_graphs=St("servicegraphs.Config", wait=D(), max_items=I(), workers=I(),
                                              histogram_buckets=fw.List(F()), dimensions=fw.List(S()),
                                              enable_client_server_prefix=B(),
                                              enable_messaging_system_latency_histogram=B(),
                                              peer_attributes=fw.List(S()), span_multiplier_key=S(),
                                              enable_tracestate_span_multiplier=B(),
                                              enable_virtual_node_label=B(),
                                              database_name_attributes=fw.List(S()), filter_policies=A()),
                            span_metrics=St("spanmetrics.Config", histogram_buckets=fw.List(F()),
                                            intrinsic_dimensions=St("spanmetrics.IntrinsicDimensions",
                                                                    service=B(), span_name=B(), span_kind=B(),
                                                                    status_code=B(), status_message=B()),
                                            dimensions=fw.List(S()), dimension_mappings=A(),
                                            enable_target_info=B(), span_multiplier_key=S(),
                                            enable_tracestate_span_multiplier=B(), subprocessors=A(),
                                            filter_policies=A(), target_info_excluded_dimensions=fw.List(S()),
                                            enable_instance_label=B()),
                            host_info=St("hostinfo.Config", host_identifiers=fw.List(S()), metric_name=S())),
               registry=St("registry.Config", collection_interval=D(), stale_duration=D(),
                           external_labels=fw.MapOf(S()), inject_tenant_id_as=S(), max_label_name_length=I(),
                           max_label_value_length=I()),
               storage=St("storage.Config", path=S(), wal=A(), remote_write_flush_deadline=D(),
                          remote_write_add_org_id_header=B(), remote_write=fw.List(REMOTE_WRITE)),
               metrics_ingestion_time_range_slack=D(), override_ring_key=S(), ring_mode=S(), codec=S(),
               limiter_type=S(), ingest_concurrency=I(), instance_id=S(), leave_consumer_group_on_shutdown=B())

COMPACTION = St("tempodb.CompactorConfig", compaction_window=D(), max_compaction_objects=I(),
                max_block_bytes=I(), block_retention=D(), compacted_block_retention=D(),
                retention_concurrency=I(), max_time_per_tenant=D(), compaction_cycle=D())

BACKEND_SCHEDULER = St("backendscheduler.Config",
                       work=St("work.Config", prune_age=D(), dead_job_timeout=D()),
                       maintenance_interval=D(), backend_flush_interval=D(),
                       provider=St("provider.Config",
                                   retention=St("provider.RetentionConfig", interval=D()),
                                   compaction=St("provider.CompactionConfig", measure_interval=D(),
                                                 compaction=COMPACTION, max_jobs_per_tenant=I(),
                                                 min_input_blocks=I(), max_input_blocks=I(),
                                                 max_compaction_level=I(), min_cycle_interval=D()),
                                   redaction=St("provider.RedactionConfig", poll_interval=D(), rescan_delay=D(),
                                                max_rescan_generations=I())),
                       job_timeout=D(), local_work_path=S())

BACKEND_WORKER = St("backendworker.Config",
                    backend_scheduler_addr=S(),
                    backoff=St("backoff.Config", min_period=D(), max_period=D(), max_retries=I()),
                    compaction=COMPACTION, override_ring_key=S(),
                    ring=_ring("backendworker.RingConfig", wait_stability_min_duration=D(),
                               wait_stability_max_duration=D(), wait_active_instance_timeout=D()),
                    finish_on_shutdown_timeout=D())

S3 = fw.Struct("s3.Config", dict(
    bucket=S(), prefix=S(), endpoint=S(), region=S(), access_key=S(), secret_key=S(), session_token=S(),
    insecure=B(), part_size=I(), hedge_requests_at=D(), hedge_requests_up_to=I(), retry_max_attempts=I(),
    retry_backoff_initial=D(), retry_backoff_max=D(), signature_v2=B(), forcepathstyle=B(),
    enable_dual_stack=B(), bucket_lookup_type=I(), tags=fw.MapOf(S()), storage_class=S(),
    metadata=fw.MapOf(S()), native_aws_auth_enabled=B(), list_blocks_concurrency=I(),
    sse=St("s3.SSEConfig", type=S(), kms_key_id=S(), kms_encryption_context=S(), encryption_key=S()),
    tls_cert_path=S(), tls_key_path=S(), tls_ca_path=S(), tls_server_name=S(), tls_insecure_skip_verify=B(),
    tls_cipher_suites=S(), tls_min_version=S()))

TRACE_STORAGE = St("tempodb.Config",
                   pool=St("pool.Config", max_workers=I(), queue_depth=I()),
                   wal=WAL_SLACK, block=A(), search=A(),
                   blocklist_poll=D(), blocklist_poll_concurrency=I(), blocklist_poll_tenant_concurrency=I(),
                   blocklist_poll_fallback=B(), blocklist_poll_tenant_index_builders=I(),
                   blocklist_poll_stale_tenant_index=D(), blocklist_poll_jitter_ms=I(),
                   blocklist_poll_tolerate_consecutive_errors=I(), blocklist_poll_tolerate_tenant_failures=I(),
                   empty_tenant_deletion_enabled=B(), empty_tenant_deletion_age=D(),
                   backend=S(), local=St("local.Config", path=S()), gcs=A(), s3=S3, azure=A(),
                   cache=S(), background_cache=A(), memcached=A(), redis=A(), cache_min_compaction_level=I(),
                   cache_max_block_age=D())

OVERRIDES_DEFAULTS = St("overrides.Overrides",
                        ingestion=A(), read=A(), compaction=St("overrides.CompactionOverrides",
                                                               block_retention=D(), compaction_window=D(),
                                                               compaction_disabled=B()),
                        metrics_generator=St("overrides.MetricsGeneratorOverrides",
                                             ring_size=I(), processors=fw.List(fw.Enum(
                                                 "service-graphs", "span-metrics", "span-metrics-latency",
                                                 "span-metrics-count", "span-metrics-size", "local-blocks",
                                                 "host-info")),
                                             max_active_series=I(), max_active_entities=I(),
                                             collection_interval=D(), disable_collection=B(),
                                             generate_native_histograms=S(),
                                             native_histogram_bucket_factor=F(),
                                             native_histogram_max_bucket_number=I(),
                                             native_histogram_min_reset_duration=D(),
                                             trace_id_label_name=S(), remote_write_headers=fw.MapOf(S()),
                                             ingestion_time_range_slack=D(), forwarder=A(), processor=A(),
                                             span_name_sanitization=S(), max_cardinality_per_label=I()),
                        forwarders=fw.List(S()), global_=A(), storage=A(), cost_attribution=A())
# "global" is a Python keyword.
OVERRIDES_DEFAULTS.fields["global"] = OVERRIDES_DEFAULTS.fields.pop("global_")

OVERRIDES = St("overrides.Config", defaults=OVERRIDES_DEFAULTS, per_tenant_override_config=S(),
               per_tenant_override_period=D(), user_configurable_overrides=A(), enable_legacy_overrides=B())

CONFIG_SCHEMA = St(
    "app.Config",
    target=S(), auth_enabled=B(), multitenancy_enabled=B(), shutdown_delay=D(), stream_over_http_enabled=B(),
    http_api_prefix=S(), enable_go_runtime_metrics=B(), span_profiling=B(),
    memory=St("app.MemoryConfig", automemlimit_enabled=B(), automemlimit_ratio=F()),
    server=_server("server.Config"), internal_server=_server("server.Config").extend("internalserver.Config",
                                                                                      enable=B()),
    distributor=DISTRIBUTOR, metrics_generator_client=A(), live_store_client=A(), querier=A(),
    query_frontend=A(), metrics_generator=GENERATOR, ingest=A(), block_builder=A(),
    storage=St("storage.Config", trace=TRACE_STORAGE), overrides=OVERRIDES, memberlist=MEMBERLIST,
    usage_report=St("usagestats.Config", reporting_enabled=B(), backoff=A()), cache=A(),
    backend_scheduler=BACKEND_SCHEDULER, backend_scheduler_client=A(), backend_worker=BACKEND_WORKER,
    live_store=LIVE_STORE)


# ---------------------------------------------------------------------------
# flags
# ---------------------------------------------------------------------------

def make_flagset(name: str = "tempo") -> fw.FlagSet:
    fs = fw.FlagSet(name)
    fs.bool("version", False, "Print this builds version information")
    fs.bool("health", False, "Run a health check against the /ready endpoint and exit")
    fs.string("health.url", "http://localhost:3200/ready", "URL to check when running health check")
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
    fs.duration("shutdown-delay", 0.0, "How long to wait between SIGTERM and shutdown.")
    fs.bool("span-profiling", False, "Set to true to enable span profiling.")
    fs.value("log.level", _log_level, "info", "Only log messages with the given severity or above. "
             "Valid levels: [debug, info, warn, error]", type_name="value",
             format_default=lambda d: d)
    fs.int("server.http-listen-port", 3200, "HTTP server listen port.")
    fs.int("server.grpc-listen-port", 9095, "gRPC server listen port.")
    fs.string_list("memberlist.host-port", [], "Host port to connect to memberlist cluster.")
    fs.int("memberlist.bind-port", 7946, "Port for memberlist to communicate on")
    fs.int("memberlist.message-history-buffer-bytes", 0, "")
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


def apply_flags(cfg: Dict[str, Any], fs: fw.FlagSet) -> None:
    """Command-line flags win over the file (upstream parses them after it)."""
    def put(path: str, value: Any) -> None:
        cur = cfg
        parts = path.split(".")
        for p in parts[:-1]:
            if not isinstance(cur.get(p), dict):
                cur[p] = {}
            cur = cur[p]
        cur[parts[-1]] = value

    mapping = {"target": "target", "multitenancy.enabled": "multitenancy_enabled", "auth.enabled": "auth_enabled",
               "server.http-listen-port": "server.http_listen_port",
               "server.grpc-listen-port": "server.grpc_listen_port",
               "memberlist.bind-port": "memberlist.bind_port", "log.level": "server.log_level",
               "http-api-prefix": "http_api_prefix"}
    for flag, path in mapping.items():
        if fs.is_set(flag):
            put(path, fs[flag])
    if fs.is_set("memberlist.host-port"):
        put("memberlist.join_members", list(fs["memberlist.host-port"]))


WARN_CHECKS = (
    ("live_store.complete_block_timeout", 20 * 60.0, "live_store.complete_block_timeout < storage.trace.blocklist_poll"),
    ("backend_worker.compaction.block_retention", 336 * 3600.0,
     "backend_worker.compaction.compacted_block_timeout < storage.trace.blocklist_poll"),
)


def config_warnings(cfg: Dict[str, Any]) -> List[str]:
    poll = G(cfg, "storage.trace.blocklist_poll", 300.0)
    out = []
    for path, default, message in WARN_CHECKS:
        if G(cfg, path, default) < poll:
            out.append(message)
    if G(cfg, "backend_scheduler.work.prune_age", 3600.0) <= 2 * poll:
        out.append("backend_scheduler.work.prune_age is less than twice storage.trace.blocklist_poll")
    if G(cfg, "storage.trace.backend", "") == "local" and G(cfg, "target", "all") != "all":
        out.append("Local backend will not correctly retrieve traces with a distributed deployment unless all "
                   "components have access to the same disk. You should probably be using object storage as a "
                   "backend.")
    if G(cfg, "distributor.log_received_spans.enabled", False):
        out.append("Span logging is enabled. This is for debugging only and not recommended for production "
                   "deployments.")
    return out


# ---------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------

def _endpoint(value: Any, default: str) -> str:
    if isinstance(value, dict) and value.get("endpoint"):
        return value["endpoint"]
    return default


class Tempo:
    def __init__(self, cfg: Dict[str, Any], logger: fw.Logger):
        self.cfg = cfg
        self.log = logger
        self.started = time.time()
        self.node_name = G(cfg, "memberlist.node_name", "") or socket.gethostname()
        self.metrics = fw.Metrics()
        self.metrics.build_info("tempo", {"version": version(), "revision": revision(), "branch": "HEAD",
                                          "goversion": goversion()})
        self.metrics.collectors.append(self._collect)
        self.spans_received = 0
        self.services: List[Any] = []

    def _collect(self, m: fw.Metrics) -> None:
        m.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", self.started)
        m.counter("tempo_distributor_spans_received_total", "The total number of spans received per tenant",
                  self.spans_received, {"tenant": "single-tenant"})
        m.gauge("tempo_memberlist_client_cluster_members_count", "Number of members in memberlist cluster.",
                len(self.members()))

    def members(self) -> List[str]:
        out = [self.node_name]
        own = int(G(self.cfg, "memberlist.bind_port", 7946))
        for m in G(self.cfg, "memberlist.join_members", []) or []:
            try:
                host, port = fw.parse_listen_address(m, default_port=own)
            except ValueError:
                continue
            if port == own and fw.is_local_host(host):
                continue
            if fw.probe_tcp("%s:%d" % (host, port)):
                out.append("%s:%d" % (host, port))
        return out

    # -- HTTP ---------------------------------------------------------------
    def api(self) -> fw.Router:
        r = fw.Router()
        prefix = G(self.cfg, "http_api_prefix", "") or ""
        r.add("/ready", lambda req: (200, "ready\n"))
        r.add("/metrics", lambda req: self.metrics.wsgi_response())
        r.add(prefix + "/api/echo", lambda req: (200, "echo"))
        r.add(prefix + "/api/status/buildinfo", lambda req: (
            200, json.dumps({"version": version(), "revision": revision(), "branch": "HEAD", "buildUser": "",
                             "buildDate": "", "goVersion": goversion()}), {"Content-Type": "application/json"}))
        r.add("/memberlist", self._memberlist)
        r.add("/status", lambda req: (200, "target: %s\nversion: %s\n" % (G(self.cfg, "target", "all"), version())))
        return r

    def _memberlist(self, req):
        members = self.members()
        if "application/json" in req.headers.get("Accept", ""):
            return 200, json.dumps({"members": members}), {"Content-Type": "application/json"}
        lines = ["Memberlist Status", "", "Members: %d" % len(members)] + ["  " + m for m in members]
        return 200, "\n".join(lines) + "\n"

    def otlp_http(self) -> fw.Router:
        r = fw.Router()

        def traces(req):
            self.spans_received += 1
            return 200, "{}", {"Content-Type": "application/json"}

        r.add("/v1/traces", traces, methods=("POST",))
        return r

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> None:
        cfg = self.cfg
        http_addr = "%s:%d" % (G(cfg, "server.http_listen_address", ""), int(G(cfg, "server.http_listen_port", 3200)))
        grpc_host = G(cfg, "server.grpc_listen_address", "")
        grpc_port = int(G(cfg, "server.grpc_listen_port", 9095))
        ml_port = int(G(cfg, "memberlist.bind_port", 7946))
        ml_addrs = G(cfg, "memberlist.bind_addr", []) or [""]
        self.services.append(fw.HTTPService("http", http_addr, self.api(), logger=self.log).start())
        self.services.append(fw.PortListener("grpc", grpc_host, grpc_port))
        for a in ml_addrs:
            self.services.append(fw.PortListener("memberlist", a, ml_port, udp=True))
        protocols = G(cfg, "distributor.receivers.otlp.protocols", None)
        if isinstance(protocols, dict):
            if "grpc" in protocols:
                h, p = fw.parse_listen_address(_endpoint(protocols.get("grpc"), "localhost:4317"))
                self.services.append(fw.PortListener("otlp-grpc", h, p))
            if "http" in protocols:
                addr = _endpoint(protocols.get("http"), "localhost:4318")
                self.services.append(fw.HTTPService("otlp-http", addr, self.otlp_http(), logger=self.log).start())

    def stop(self) -> None:
        for svc in self.services:
            try:
                svc.stop()
            except Exception:  # noqa: BLE001
                pass


def check_startup(cfg: Dict[str, Any], log: fw.Logger) -> None:
    target = G(cfg, "target", "all")
    if target not in TARGETS:
        log.error("error initialising Tempo", err="error initialising module: %s: unrecognised module name: %s"
                  % (target, target))
        raise fw.StandinExit(1)
    adv = G(cfg, "memberlist.advertise_addr", "")
    if adv:
        try:
            ipaddress.ip_address(adv)
        except ValueError:
            log.error("error running Tempo", err="failed to create memberlist: Failed to parse advertise address "
                      "\"%s\"" % adv)
            raise fw.StandinExit(1)
    backend = G(cfg, "storage.trace.backend", "")
    if backend not in ("s3", "gcs", "azure", "local"):
        log.error("error initialising Tempo", err="error initialising module: store: failed to create store: "
                  "unknown backend %s" % backend)
        raise fw.StandinExit(1)
    if backend == "local" and not G(cfg, "storage.trace.local.path", ""):
        log.error("error initialising Tempo", err="error initialising module: store: local path is required")
        raise fw.StandinExit(1)
    if backend == "s3":
        s3 = G(cfg, "storage.trace.s3", {}) or {}
        bucket = s3.get("bucket") or ""
        endpoint = s3.get("endpoint") or ""
        if not bucket or not endpoint:
            log.error("error initialising Tempo", err="error initialising module: store: failed to create store: "
                      "s3 bucket and endpoint are required (bucket %q)".replace("%q", json.dumps(bucket)))
            raise fw.StandinExit(1)
        fw.require_bucket(log, endpoint, bucket, what="store",
                          wait_seconds=float(os.environ.get("O11Y_STANDIN_S3_WAIT", "0")),
                          access_key=s3.get("access_key") or None, secret_key=s3.get("secret_key") or None,
                          region=s3.get("region") or "us-east-1", insecure=bool(s3.get("insecure")))


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
    if fs["health"]:
        import urllib.request
        try:
            with urllib.request.urlopen(fs["health.url"], timeout=5) as resp:
                return 0 if resp.status == 200 else 1
        except OSError:
            return 1
    warnings = config_warnings(cfg)
    if warnings:
        log.warn("-- CONFIGURATION WARNINGS --")
        for w in warnings:
            log.warn(w)
    if verify:
        return 1 if warnings else 0
    check_startup(cfg, log)
    app = Tempo(cfg, log)
    shutdown = fw.ShutdownSignal()
    try:
        app.start()
    except (OSError, ValueError) as exc:
        app.stop()
        log.error("error running Tempo", err=str(exc))
        return 1
    log.info("Starting Tempo", version="(version=%s, branch=HEAD, revision=%s)" % (version(), revision()),
             target=G(cfg, "target", "all"))
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
