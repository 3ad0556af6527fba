# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Grafana Mimir stand-in: the ``mimir`` binary on the surface o11y.stack uses.

Behaves like Mimir 3.1 (monolithic, ``-target=all``) where the collection touches it:

* CLI (Go ``flag``): ``-config.file``, ``-config.expand-env``, ``-target``,
  ``-modules`` (loads and validates the configuration, lists the modules,
  exits 0: upstream's documented configuration check), ``-version``,
  ``-help``/``-h``/``-help-all`` and a few per-component flags that override
  the file.  Like upstream, the file is loaded before the flags are parsed
  (``error loading config from F: ...``, exit 1); an unknown flag prints Go's
  ``flag provided but not defined: -x`` and exits 2.
* Strict YAML (yaml.v3 ``KnownFields``): the sections the collection renders
  with their documented sibling keys; unknown or misplaced keys fail with the
  key named, exit 1.  ``${VAR}``/``$VAR`` (and ``${VAR:default}``) are expanded
  only with ``-config.expand-env=true``.
* Validation like ``cfg.Validate``: targets, ring replication factors, the
  retention duration, one bucket name per S3 store.
* Start-up: refuses to start (exit 1, naming the bucket) when the blocks, ruler
  or alertmanager bucket is missing on the configured S3 endpoint with the
  configured credentials; reads the Alertmanager fallback configuration;
  creates its working directories (TSDB, compactor, ruler, alertmanager,
  activity tracker file) and fails when it cannot.
* Binds ``server.http_listen_port``, ``server.grpc_listen_port`` and
  ``memberlist.bind_port`` (TCP and UDP).  HTTP: ``/ready`` (503 until the
  ingester's min-ready period passed, then ``ready``), ``/metrics``
  (``mimir_build_info``, ``cortex_config_hash``), ``/config``, ``/services``,
  ``/memberlist`` (this node and every ``memberlist.join_members`` entry whose
  memberlist port answers), ``/ingester/ring``, ``/api/v1/push`` and
  ``/prometheus/api/v1/status/buildinfo``.
* Logs in logfmt on stderr, SIGTERM -> exit 0.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

from . import framework as fw

DEFAULT_VERSION = "3.1.1"
MODULES_IN_ALL = ["alertmanager", "compactor", "distributor", "ingester", "querier", "query-frontend",
                  "query-scheduler", "ruler", "store-gateway"]
OTHER_MODULES = ["all", "backend", "block-builder", "block-builder-scheduler", "flusher", "overrides-exporter",
                 "read", "usage-tracker", "write"]
READY_DELAY = float(os.environ.get("O11Y_STANDIN_MIMIR_READY_DELAY", "1.0"))


def version() -> str:
    info = fw.build_info()
    return info["version"] if info.get("component") == "mimir" else DEFAULT_VERSION


def version_text() -> str:
    info = fw.build_info()
    goos, goarch = fw.go_platform()
    return ("Mimir, version %s (branch: %s, revision: %s)\n  build user:       \n  build date:       \n"
            "  go version:       %s\n  platform:         %s/%s\n  tags:             netgo\n"
            % (version(), info.get("branch", "HEAD"), info.get("revision", "")[:10], info.get("goversion", ""),
               goos, goarch))


# ---------------------------------------------------------------------------
# configuration schema (Mimir configuration reference, 3.1)
# ---------------------------------------------------------------------------

S, I, B, D, A = fw.Str, fw.Int, fw.Bool, fw.Duration, fw.Any_


def _many(names: str, spec=None) -> Dict[str, fw.Schema]:
    """Sibling keys the collection does not render (accepted, not interpreted)."""
    return {n: (spec() if spec else A()) for n in names.split()}


KVSTORE = fw.Struct("kv.Config", {
    "store": fw.Enum("consul", "etcd", "inmemory", "memberlist", "multi", default="memberlist"),
    "prefix": S(), "consul": A(), "etcd": A(), "multi": A(),
})

RING = fw.Struct("ring.Config", {
    "kvstore": KVSTORE,
    "heartbeat_period": D(), "heartbeat_timeout": D(),
    "replication_factor": I(default=3, min=0),
    "zone_awareness_enabled": B(), "excluded_zones": S(),
    "tokens_file_path": S(), "num_tokens": I(),
    "observe_period": D(), "min_ready_duration": D(), "final_sleep": D(),
    "unregister_on_shutdown": B(), "auto_forget_unhealthy_periods": I(),
    "token_generation_strategy": S(), "spread_minimizing_join_ring_in_order": B(),
    "spread_minimizing_zones": A(), "wait_stability_min_duration": D(), "wait_stability_max_duration": D(),
    "wait_active_instance_timeout": D(), "auto_forget_enabled": B(),
    "instance_id": S(), "instance_interface_names": fw.List(S()), "instance_port": I(),
    "instance_addr": S(), "instance_enable_ipv6": B(), "instance_availability_zone": S(),
    "instance_ring_heartbeat_period": D(), "instance_ring_heartbeat_timeout": D(),
})

S3 = fw.Struct("s3.Config", {
    "endpoint": S(), "region": S(), "bucket_name": S(), "secret_access_key": S(), "session_token": S(),
    "access_key_id": S(), "insecure": B(), "list_objects_version": S(), "bucket_lookup_type": S(),
    "dualstack_enabled": B(), "storage_class": S(), "native_aws_auth_enabled": B(), "part_size": I(),
    "send_content_md5": B(), "sts_endpoint": S(), "max_retries": I(), "sse": A(), "http": A(), "trace": A(),
})

_BACKENDS = ("s3", "gcs", "azure", "swift", "filesystem")


def _bucket_config(type_name: str, local: bool = False, **extra: fw.Schema) -> fw.Struct:
    fields: Dict[str, fw.Schema] = {
        "backend": fw.Enum(*(_BACKENDS + (("local",) if local else ()))),
        "s3": S3, "gcs": A(), "azure": A(), "swift": A(), "filesystem": A(), "storage_prefix": S(),
    }
    if local:
        fields["local"] = A()
    fields.update(extra)
    return fw.Struct(type_name, fields)


TSDB = fw.Struct("tsdb.TSDBConfig", {
    "dir": S(default="./tsdb/"),
    **_many("block_ranges_period retention_period ship_interval ship_concurrency head_compaction_interval "
            "head_compaction_concurrency head_compaction_idle_timeout head_chunks_write_buffer_size_bytes "
            "head_chunks_end_time_variance stripe_size head_chunks_write_queue_size close_idle_tsdb_timeout "
            "memory_snapshot_on_shutdown head_postings_for_matchers_cache_ttl "
            "head_postings_for_matchers_cache_max_bytes head_postings_for_matchers_cache_force "
            "block_postings_for_matchers_cache_ttl block_postings_for_matchers_cache_max_bytes "
            "block_postings_for_matchers_cache_force wal_compression_enabled wal_segment_size_bytes "
            "wal_replay_concurrency flush_blocks_on_shutdown series_hash_cache_max_size_bytes "
            "max_tsdb_opening_concurrency_on_startup early_head_compaction_min_in_memory_series "
            "early_head_compaction_min_estimated_series_reduction_percentage timely_head_compaction_enabled "
            "index_lookup_planning_enabled bigger_out_of_order_blocks_for_old_samples "
            "head_postings_for_matchers_cache_invalidation"),
})

BUCKET_STORE = fw.Struct("tsdb.BucketStoreConfig", {
    "sync_dir": S(default="./tsdb-sync/"),
    **_many("sync_interval max_concurrent max_concurrent_queue_timeout tenant_sync_concurrency "
            "block_sync_concurrency meta_sync_concurrency index_cache chunks_cache metadata_cache "
            "ignore_deletion_mark_delay bucket_index ignore_blocks_within ignore_blocks_before "
            "max_chunk_pool_bytes chunk_pool_min_bucket_size_bytes chunk_pool_max_bucket_size_bytes "
            "index_header lazy_loading_enabled lazy_loading_idle_timeout lazy_loading_concurrency "
            "lazy_loading_concurrency_queue_timeout partitioner_max_gap_bytes "
            "series_hash_cache_max_size_bytes max_series_per_batch series_selection_strategy "
            "series_fetch_preference fine_grained_chunks_caching_enabled index_header_lazy_loading_enabled "
            "index_header_lazy_loading_idle_timeout index_header_lazy_loading_concurrency"),
})

SERVER = fw.Struct("server.Config", {
    "http_listen_address": S(default=""), "http_listen_port": I(default=8080, min=0, max=65535),
    "grpc_listen_address": S(default=""), "grpc_listen_port": I(default=9095, min=0, max=65535),
    "log_level": fw.Enum("debug", "info", "warn", "error", default="info"),
    "log_format": fw.Enum("logfmt", "json", default="logfmt"),
    "http_path_prefix": S(default=""),
    **_many("http_listen_network http_listen_conn_limit grpc_listen_network grpc_listen_conn_limit "
            "proxy_protocol_enabled tls_cipher_suites tls_min_version http_tls_config grpc_tls_config "
            "register_instrumentation report_grpc_codes_in_instrumentation_label_enabled "
            "graceful_shutdown_timeout http_server_read_timeout http_server_read_header_timeout "
            "http_server_write_timeout http_server_idle_timeout "
            "http_log_closed_connections_without_response_enabled grpc_server_max_recv_msg_size "
            "grpc_server_max_send_msg_size grpc_server_max_concurrent_streams grpc_server_max_connection_idle "
            "grpc_server_max_connection_age grpc_server_max_connection_age_grace grpc_server_keepalive_time "
            "grpc_server_keepalive_timeout grpc_server_min_time_between_pings "
            "grpc_server_ping_without_stream_allowed grpc_server_num_workers grpc_collect_max_streams_by_conn "
            "log_source_ips_enabled log_source_ips_header log_source_ips_regex log_request_headers "
            "log_request_at_info_level_enabled log_request_exclude_headers_list cluster_validation "
            "throughput"),
})

MEMBERLIST = fw.Struct("memberlist.KVConfig", {
    "join_members": fw.List(S(), default=[]),
    "bind_addr": fw.List(S(), default=[]),
    "bind_port": I(default=7946, min=0, max=65535),
    "advertise_addr": S(default=""), "advertise_port": I(default=7946),
    "node_name": S(), "randomize_node_name": B(), "cluster_label": S(),
    "cluster_label_verification_disabled": B(), "abort_if_cluster_join_fails": B(),
    **_many("stream_timeout retransmit_factor pull_push_interval gossip_interval gossip_nodes "
            "gossip_to_dead_nodes_time dead_node_reclaim_time compression_enabled compression_algorithm "
            "min_join_backoff max_join_backoff max_join_retries rejoin_interval left_ingesters_timeout "
            "obsolete_entries_timeout leave_timeout broadcast_timeout_for_local_updates_on_shutdown "
            "message_history_buffer_bytes packet_dial_timeout packet_write_timeout max_concurrent_writes "
            "acquire_writer_timeout tls_enabled tls_cert_path tls_key_path tls_ca_path tls_server_name "
            "tls_insecure_skip_verify tls_cipher_suites tls_min_version notify_interval "
            "watch_prefix_buffer_size processed_messages_queue_size"),
})

DISTRIBUTOR = fw.Struct("distributor.Config", {
    "ring": RING,
    **_many("pool retry_after_header ha_tracker max_recv_msg_size max_otlp_request_size max_request_pool_buffer_size "
            "remote_timeout instance_limits write_requests_buffer_pooling_enabled reusable_ingester_push_workers "
            "otel_resource_attribute_promotion_config usage_tracker_client"),
})

INGESTER = fw.Struct("ingester.Config", {
    "ring": RING,
    **_many("metadata_retain_period rate_update_period active_series_metrics_enabled "
            "active_series_metrics_update_period active_series_metrics_idle_timeout "
            "out_of_order_blocks_external_label_enabled instance_limits ignore_series_limit_for_metric_names "
            "read_path_cpu_utilization_limit read_path_memory_utilization_limit error_sample_rate "
            "use_ingester_owned_series_for_limits track_ingester_owned_series owned_series_update_interval "
            "push_circuit_breaker read_circuit_breaker push_grpc_method_enabled "
            "limit_inflight_requests_using_grpc_method_limiter log_utilization_based_limiter_cpu_samples"),
})

STORE_GATEWAY = fw.Struct("storegateway.Config", {
    "sharding_ring": RING,
    **_many("enabled_tenants disabled_tenants"),
})

COMPACTOR = fw.Struct("compactor.Config", {
    "data_dir": S(default="./data-compactor/"),
    "sharding_ring": RING,
    **_many("block_ranges block_sync_concurrency meta_sync_concurrency first_level_compaction_wait_period "
            "cleanup_interval cleanup_concurrency deletion_delay tenant_cleanup_delay "
            "max_compaction_time no_blocks_file_cleanup_enabled compaction_interval compaction_retries "
            "compaction_concurrency compaction_jobs_order first_level_compaction_wait_period "
            "symbols_flushers_concurrency max_opening_blocks_concurrency max_closing_blocks_concurrency "
            "max_block_upload_validation_concurrency enabled_tenants disabled_tenants "
            "max_lookback sparse_index_headers_sampling_rate upload_sparse_index_headers"),
})

RULER = fw.Struct("ruler.Config", {
    "rule_path": S(default="./data-ruler/"),
    "alertmanager_url": S(default=""),
    "external_url": S(), "ring": RING, "enable_api": B(default=True),
    **_many("poll_interval evaluation_interval query_frontend tenant_federation outbound_sync_queue_poll_interval "
            "inbound_sync_queue_poll_interval alertmanager_client alertmanager_refresh_interval "
            "notification_queue_capacity notification_timeout for_outage_tolerance for_grace_period "
            "resend_delay max_rules_per_rule_group max_rule_groups_per_tenant query_stats_enabled "
            "enabled_tenants disabled_tenants rule_evaluation_write_enabled "
            "max_independent_rule_evaluation_concurrency "
            "independent_rule_evaluation_concurrency_min_duration_percentage "
            "rule_evaluation_concurrency_min_duration_percentage "
            "max_independent_rule_evaluation_concurrency_per_tenant search_pending_for"),
})

ALERTMANAGER = fw.Struct("alertmanager.MultitenantAlertmanagerConfig", {
    "data_dir": S(default="./data-alertmanager/"),
    "external_url": S(default=""),
    "fallback_config_file": S(default=""),
    "sharding_ring": RING,
    "enable_api": B(default=True),
    **_many("retention poll_interval max_recv_msg_size alertmanager_client persist_interval "
            "enabled_tenants disabled_tenants max_concurrent_get_requests_per_tenant "
            "grafana_alertmanager_compatibility_enabled grafana_alertmanager_idle_grace_period "
            "utf8_strict_mode log_parsing_label_matchers strict_initialization_enabled "
            "peer_timeout max_config_size_bytes"),
})

LIMITS = fw.Struct("validation.Limits", {
    "compactor_blocks_retention_period": fw.ModelDuration(default="0s", keep_text=True),
    **_many("request_rate request_burst_size ingestion_rate ingestion_burst_size ingestion_burst_factor "
            "accept_ha_samples ha_cluster_label ha_replica_label ha_max_clusters drop_labels "
            "max_label_name_length max_label_value_length max_label_names_per_series "
            "max_label_names_per_info_series max_metadata_length max_native_histogram_buckets "
            "max_exemplars_per_series_per_request reduce_native_histogram_over_max_buckets "
            "creation_grace_period past_grace_period enforce_metadata_metric_name ingestion_tenant_shard_size "
            "metric_relabel_configs service_overload_status_code_on_rate_limit_enabled "
            "max_global_series_per_user max_global_series_per_metric max_global_metadata_per_user "
            "max_global_metadata_per_metric max_global_exemplars_per_user ignore_ooo_exemplars "
            "native_histograms_ingestion_enabled active_series_custom_trackers out_of_order_time_window "
            "out_of_order_blocks_external_label_enabled separate_metrics_group_label "
            "max_chunks_per_query max_fetched_series_per_query max_fetched_chunk_bytes_per_query "
            "max_estimated_chunks_per_query_multiplier max_query_lookback max_partial_query_length "
            "max_query_parallelism max_labels_query_length max_cardinality_analysis_max_results "
            "cardinality_analysis_enabled label_names_and_values_results_max_size_bytes "
            "label_values_max_cardinality_label_names_per_request max_cache_freshness "
            "max_queriers_per_tenant query_sharding_total_shards query_sharding_max_sharded_queries "
            "query_sharding_max_regexp_size_bytes query_ingesters_within split_instant_queries_by_interval "
            "max_total_query_length results_cache_ttl results_cache_ttl_for_out_of_order_time_window "
            "results_cache_ttl_for_cardinality_query results_cache_ttl_for_labels_query "
            "results_cache_ttl_for_errors results_cache_forced_enabled max_query_expression_size_bytes "
            "blocked_queries align_queries_with_step enabled_promql_experimental_functions "
            "prom2_range_compat subquery_spin_off_enabled cardinality_analysis_max_results "
            "ruler_evaluation_delay_duration ruler_tenant_shard_size ruler_max_rules_per_rule_group "
            "ruler_max_rule_groups_per_tenant ruler_recording_rules_evaluation_enabled "
            "ruler_alerting_rules_evaluation_enabled ruler_sync_rules_on_changes_enabled "
            "ruler_max_rules_per_rule_group_by_namespace ruler_max_rule_groups_per_tenant_by_namespace "
            "ruler_protected_namespaces ruler_max_independent_rule_evaluation_concurrency_per_tenant "
            "ruler_alertmanager_client_config store_gateway_tenant_shard_size "
            "compactor_split_and_merge_shards compactor_split_groups compactor_tenant_shard_size "
            "compactor_partial_block_deletion_delay compactor_block_upload_enabled "
            "compactor_block_upload_validation_enabled compactor_block_upload_verify_chunks "
            "compactor_block_upload_max_block_size_bytes compactor_in_memory_tenant_meta_cache_size "
            "compactor_max_lookback s3_sse_type s3_sse_kms_key_id s3_sse_kms_encryption_context "
            "alertmanager_receivers_firewall_block_cidr_networks "
            "alertmanager_receivers_firewall_block_private_addresses alertmanager_notification_rate_limit "
            "alertmanager_notification_rate_limit_per_integration alertmanager_max_grafana_config_size_bytes "
            "alertmanager_max_config_size_bytes alertmanager_max_grafana_state_size_bytes "
            "alertmanager_max_silences_count alertmanager_max_silence_size_bytes "
            "alertmanager_max_templates_count alertmanager_max_template_size_bytes "
            "alertmanager_max_dispatcher_aggregation_groups alertmanager_max_alerts_count "
            "alertmanager_max_alerts_size_bytes otel_metric_suffixes_enabled "
            "otel_created_timestamp_zero_ingestion_enabled promote_otel_resource_attributes "
            "otel_keep_identifying_resource_attributes otel_convert_histograms_to_nhcb "
            "otel_promote_scope_metadata otel_native_delta_ingestion otel_translation_strategy "
            "ingest_storage_read_consistency ingestion_partitions_tenant_shard_size "
            "cost_attribution_labels max_cost_attribution_cardinality cost_attribution_cooldown "
            "causal_consistency_enabled native_histograms_custom_buckets_ingestion_enabled"),
})

TOP_LEVEL_OTHERS = ("api querier ingester_client flusher frontend_worker frontend ingest_storage "
                    "tenant_federation vault runtime_config query_scheduler overrides_exporter "
                    "block_builder block_builder_scheduler usage_tracker cost_attribution_registry_path "
                    "cost_attribution_eviction_interval cost_attribution_cleanup_interval "
                    "max_separate_metrics_groups_per_user enable_go_runtime_metrics shutdown_delay "
                    "timeseries_unmarshal_caching_optimization_enabled no_auth_tenant")

SCHEMA = fw.Struct("mimir.Config", {
    "target": S(default="all"),
    "multitenancy_enabled": B(default=True),
    "server": SERVER,
    "common": fw.Struct("mimir.CommonConfig", {"storage": _bucket_config("bucket.Config")}),
    "blocks_storage": _bucket_config("tsdb.BlocksStorageConfig", tsdb=TSDB, bucket_store=BUCKET_STORE),
    "ruler_storage": _bucket_config("rulestore.Config", local=True, cache=A()),
    "alertmanager_storage": _bucket_config("alertstore.Config", local=True),
    "activity_tracker": fw.Struct("activitytracker.Config", {
        "filepath": S(default="./metrics-activity.log"), "max_entries": I(default=1024)}),
    "usage_stats": fw.Struct("usagestats.Config", {"enabled": B(default=True), "installation_mode": S()}),
    "memberlist": MEMBERLIST,
    "distributor": DISTRIBUTOR,
    "ingester": INGESTER,
    "store_gateway": STORE_GATEWAY,
    "compactor": COMPACTOR,
    "ruler": RULER,
    "alertmanager": ALERTMANAGER,
    "limits": LIMITS,
    **_many(TOP_LEVEL_OTHERS),
})

STORES = (("blocks_storage", "blocks storage"), ("ruler_storage", "ruler storage"),
          ("alertmanager_storage", "alertmanager storage"))
RINGS = (("ingester.ring", "ingester"), ("store_gateway.sharding_ring", "store-gateway"),
         ("alertmanager.sharding_ring", "alertmanager"))


# ---------------------------------------------------------------------------
# flags
# ---------------------------------------------------------------------------

FLAG_OVERRIDES = {
    # flag name -> (config path, kind)
    "server.http-listen-address": ("server.http_listen_address", "string"),
    "server.http-listen-port": ("server.http_listen_port", "int"),
    "server.grpc-listen-address": ("server.grpc_listen_address", "string"),
    "server.grpc-listen-port": ("server.grpc_listen_port", "int"),
    "log.level": ("server.log_level", "string"),
    "auth.multitenancy-enabled": ("multitenancy_enabled", "bool"),
    "memberlist.bind-port": ("memberlist.bind_port", "int"),
    "memberlist.join": ("memberlist.join_members", "list"),
    "ingester.ring.replication-factor": ("ingester.ring.replication_factor", "int"),
    "compactor.blocks-retention-period": ("limits.compactor_blocks_retention_period", "string"),
    "alertmanager.web.external-url": ("alertmanager.external_url", "string"),
    "alertmanager.configs.fallback": ("alertmanager.fallback_config_file", "string"),
    "ruler.alertmanager-url": ("ruler.alertmanager_url", "string"),
    "activity-tracker.filepath": ("activity_tracker.filepath", "string"),
}


def make_flags(name: str) -> fw.FlagSet:
    fs = fw.FlagSet(name)
    fs.usage_func = lambda _fs: None  # upstream prints usage only when asked
    fs.string("config.file", "", "Configuration file to load.")
    fs.bool("config.expand-env", False, "Expands ${var} or $var in config according to the values of the "
            "environment variables.")
    fs.string_list("target", ["all"], "Comma-separated list of components to include in the instantiated "
                   "process.", csv=True)
    fs.bool("version", False, "Print application version and exit.")
    fs.bool("modules", False, "List available values that can be used as target.")
    fs.bool("help", False, "Print basic help.")
    fs.bool("h", False, "Print basic help.")
    fs.bool("help-all", False, "Print help, also including advanced and experimental parameters.")
    fs.int("mem-ballast-size-bytes", 0, "Size of memory ballast to allocate.")
    for flag, (path, kind) in FLAG_OVERRIDES.items():
        if kind == "int":
            fs.int(flag, 0, "Overrides %s." % path)
        elif kind == "bool":
            fs.bool(flag, False, "Overrides %s." % path)
        elif kind == "list":
            fs.string_list(flag, [], "Overrides %s (repeatable)." % path)
        else:
            fs.string(flag, "", "Overrides %s." % path)
    return fs


def _pre_parse(args: List[str]) -> Tuple[str, bool]:
    """Upstream's parseConfigFileParameter: find -config.file/-config.expand-env anywhere."""
    config_file, expand = "", False
    while args:
        fs = fw.FlagSet("", output=_Null())
        fs.string("config.file", "")
        fs.bool("config.expand-env", False)
        try:
            fs.parse(args)
        except Exception:  # noqa: BLE001 - errors are reported by the main parse
            pass
        if fs.is_set("config.file"):
            config_file = fs["config.file"]
        if fs.is_set("config.expand-env"):
            expand = fs["config.expand-env"]
        args = args[1:]
    return config_file, expand


class _Null:
    def write(self, _s):
        return 0

    def flush(self):
        pass


def _set_path(cfg: Dict[str, Any], dotted: str, value: Any) -> None:
    cur = cfg
    parts = dotted.split(".")
    for part in parts[:-1]:
        if not isinstance(cur.get(part), dict):
            cur[part] = {}
        cur = cur[part]
    cur[parts[-1]] = value


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------

def _targets(cfg: Dict[str, Any], fs: fw.FlagSet) -> List[str]:
    if fs.is_set("target"):
        return list(fs["target"])
    raw = cfg.get("target") or "all"
    return [t.strip() for t in str(raw).split(",") if t.strip()]


def effective_store(cfg: Dict[str, Any], key: str) -> Dict[str, Any]:
    """Per-store bucket config with common.storage inherited (like upstream's common config)."""
    common = fw.get_path(cfg, "common.storage", {}) or {}
    own = cfg.get(key) or {}
    backend = own.get("backend") or common.get("backend") or "filesystem"
    s3 = dict(common.get("s3") or {})
    s3.update({k: v for k, v in (own.get("s3") or {}).items() if v not in (None, "")})
    return {"backend": backend, "s3": s3, "storage_prefix": own.get("storage_prefix") or ""}


def validate(cfg: Dict[str, Any], targets: List[str]) -> Optional[str]:
    known = set(MODULES_IN_ALL + OTHER_MODULES)
    for t in targets:
        if t not in known:
            return "unrecognised module name: %s" % t
    for path, what in RINGS:
        rf = fw.get_path(cfg, path + ".replication_factor", 3)
        if rf is None or int(rf) <= 0:
            return "invalid %s ring config: replication factor must be greater than 0" % what
    try:
        fw.parse_model_duration(str(fw.get_path(cfg, "limits.compactor_blocks_retention_period", "0s")))
    except ValueError as exc:
        if str(fw.get_path(cfg, "limits.compactor_blocks_retention_period", "0s")) != "0s":
            return "invalid limits config: %s" % exc
    seen: Dict[Tuple[str, str, str], str] = {}
    for key, what in STORES:
        store = effective_store(cfg, key)
        if store["backend"] == "s3":
            bucket = store["s3"].get("bucket_name") or ""
            if not bucket:
                return "invalid %s config: missing bucket name (%s.s3.bucket_name)" % (what, key)
            ident = (store["s3"].get("endpoint") or "", bucket, store["storage_prefix"])
            if ident in seen:
                return ("%s and %s use the same bucket %s without a storage_prefix to tell them apart"
                        % (seen[ident], what, bucket))
            seen[ident] = what
    if "alertmanager" in targets or "all" in targets:
        url = fw.get_path(cfg, "alertmanager.external_url", "")
        if url and "://" not in url:
            return "invalid alertmanager config: external URL \"%s\" is not absolute" % url
    return None


# ---------------------------------------------------------------------------
# serving
# ---------------------------------------------------------------------------

class MimirServer:
    def __init__(self, cfg: Dict[str, Any], targets: List[str], config_text: str, logger: fw.Logger):
        self.cfg = cfg
        self.targets = targets
        self.config_text = config_text
        self.log = logger
        self.started = time.monotonic()
        self.metrics = fw.Metrics()
        self.metrics.build_info("mimir", info=dict(fw.build_info(), version=version()))
        self.metrics.gauge("cortex_config_hash", "Hash of the currently active config file.", 1,
                           {"sha256": hashlib.sha256(config_text.encode()).hexdigest()})
        self.members = fw.get_path(cfg, "memberlist.join_members", []) or []
        self.mport = int(fw.get_path(cfg, "memberlist.bind_port", 7946))
        self.pushed = 0

    def ready(self) -> Tuple[int, str]:
        waited = time.monotonic() - self.started
        if waited < READY_DELAY:
            return 503, "Ingester not ready: waiting for %s after being ready\n" % fw.format_go_duration(READY_DELAY)
        return 200, "ready\n"

    def app(self):
        r = fw.Router()
        r.add("/ready", lambda req: self.ready())
        r.add("/metrics", lambda req: self.metrics.wsgi_response())
        r.add("/config", lambda req: (200, self.config_text, {"Content-Type": "text/plain; charset=utf-8"}))
        r.add("/services", lambda req: (200, "".join("%s Running\n" % m for m in sorted(MODULES_IN_ALL))))
        r.add("/memberlist", self.memberlist_page)
        r.add("/ingester/ring", self.ring_page)
        r.add("/api/v1/push", self.push, methods=("POST",))
        r.add("/prometheus/api/v1/status/buildinfo", self.buildinfo)
        return r

    def _member_rows(self) -> List[Tuple[str, str]]:
        rows = [("%s:%d" % (socket.gethostname(), self.mport), "alive (this node)")]
        for m in self.members:
            addr = m if ":" in m.rsplit("]", 1)[-1] else "%s:%d" % (m, self.mport)
            rows.append((addr, "alive" if fw.probe_tcp(addr) else "unreachable"))
        return rows

    def memberlist_page(self, req):
        body = "<html><head><title>Memberlist Status</title></head><body><h1>Memberlist Status</h1>\n"
        body += "<table><tr><th>Address</th><th>State</th></tr>\n"
        for addr, state in self._member_rows():
            body += "<tr><td>%s</td><td>%s</td></tr>\n" % (addr, state)
        body += "</table></body></html>\n"
        return 200, body, {"Content-Type": "text/html; charset=utf-8"}

    def ring_page(self, req):
        addr = fw.get_path(self.cfg, "ingester.ring.instance_addr", "") or "127.0.0.1"
        port = fw.get_path(self.cfg, "server.grpc_listen_port", 9095)
        body = ("<html><body><h1>Ingester Ring Status</h1><table><tr><th>Instance ID</th><th>State</th>"
                "<th>Address</th></tr><tr><td>%s</td><td>ACTIVE</td><td>%s:%s</td></tr></table></body></html>\n"
                % (socket.gethostname(), addr, port))
        return 200, body, {"Content-Type": "text/html; charset=utf-8"}

    def push(self, req):
        tenant = req.headers.get("X-Scope-OrgID", "")
        if fw.get_path(self.cfg, "multitenancy_enabled", True) and not tenant:
            return 401, "no org id\n"
        self.pushed += 1
        self.metrics.inc("cortex_distributor_requests_in_total", "The total number of requests that have come in "
                         "to the distributor, including rejected or deduped requests.",
                         labels={"user": tenant or "anonymous"})
        return 200, ""

    def buildinfo(self, req):
        import json
        info = fw.build_info()
        data = {"status": "success", "data": {"application": "Grafana Mimir", "version": version(),
                                              "revision": info.get("revision", ""), "branch": info.get("branch", ""),
                                              "goVersion": info.get("goversion", ""),
                                              "features": {"ruler_config_api": "true", "alertmanager_config_api": "true",
                                                           "query_sharding": "true"}}}
        return 200, json.dumps(data), {"Content-Type": "application/json"}


def _prepare_dirs(cfg: Dict[str, Any], targets: List[str]) -> Optional[str]:
    dirs = [("blocks_storage.tsdb.dir", "./tsdb/"), ("blocks_storage.bucket_store.sync_dir", "./tsdb-sync/"),
            ("compactor.data_dir", "./data-compactor/"), ("ruler.rule_path", "./data-ruler/"),
            ("alertmanager.data_dir", "./data-alertmanager/")]
    for path, default in dirs:
        d = fw.get_path(cfg, path, default)
        try:
            os.makedirs(d, mode=0o755, exist_ok=True)
            probe = os.path.join(d, ".standin-write-probe")
            with open(probe, "w"):
                pass
            os.unlink(probe)
        except OSError as exc:
            return "failed to create directory %s (%s): %s" % (d, path, exc.strerror or exc)
    activity = fw.get_path(cfg, "activity_tracker.filepath", "./metrics-activity.log")
    if activity:
        try:
            with open(activity, "a"):
                pass
        except OSError as exc:
            return "failed to create activity file %s: %s" % (activity, exc.strerror or exc)
    return None


def _check_buckets(cfg: Dict[str, Any], log: fw.Logger) -> None:
    for key, what in STORES:
        store = effective_store(cfg, key)
        if store["backend"] != "s3":
            continue
        s3 = store["s3"]
        fw.require_bucket(log, s3.get("endpoint") or "s3.amazonaws.com", s3.get("bucket_name") or "", what=what,
                          wait_seconds=float(os.environ.get("O11Y_STANDIN_BUCKET_WAIT", "3")),
                          access_key=s3.get("access_key_id") or None,
                          secret_key=s3.get("secret_access_key") or None,
                          region=s3.get("region") or "us-east-1", insecure=bool(s3.get("insecure")))


def _print_modules() -> None:
    for m in sorted(MODULES_IN_ALL + OTHER_MODULES):
        sys.stdout.write("%s%s\n" % (m, " *" if m in MODULES_IN_ALL else ""))
    sys.stdout.write("\nModules marked with * are included in target All.\n")


def run(argv: List[str]) -> int:
    name = argv[0] if argv else "mimir"
    args = argv[1:]
    config_file, expand = _pre_parse(list(args))
    cfg: Dict[str, Any] = SCHEMA.defaults(True)
    text = ""
    if config_file:
        try:
            with open(config_file, "r", encoding="utf-8") as fh:
                text = fh.read()
            cfg = fw.load_config_text(text, SCHEMA, source="", expand=expand)
        except OSError as exc:
            sys.stderr.write("error loading config from %s: Error reading config file: open %s: %s\n"
                             % (config_file, config_file, (exc.strerror or str(exc)).lower()))
            return 1
        except fw.ConfigError as exc:
            sys.stderr.write("error loading config from %s: Error parsing config file: %s\n"
                             % (config_file, exc.render()))
            return 1
    fs = make_flags(name)
    try:
        fs.parse(args)
    except fw.FlagError:
        sys.stderr.write("Run with -help to get a list of available parameters\n")
        return 2
    except Exception as exc:  # the framework's -h/-help signal: flags are defined, so not reached
        raise exc
    if fs["help"] or fs["h"] or fs["help-all"]:
        sys.stdout.write("Usage of %s:\n%s" % (os.path.basename(name), fs.defaults_text()))
        return 2
    if fs["version"]:
        sys.stdout.write(version_text())
        return 0
    for flag, (path, kind) in FLAG_OVERRIDES.items():
        if fs.is_set(flag):
            _set_path(cfg, path, fs[flag])
    targets = _targets(cfg, fs)
    err = validate(cfg, targets)
    if err:
        sys.stderr.write("error validating config: %s\n" % err)
        return 1
    if fs["modules"]:
        _print_modules()
        return 0

    log = fw.Logger("mimir", fmt=fw.get_path(cfg, "server.log_format", "logfmt"),
                    level=fw.get_path(cfg, "server.log_level", "info"))
    log.info("Starting application", version=version())
    fallback = fw.get_path(cfg, "alertmanager.fallback_config_file", "")
    if fallback and ("all" in targets or "alertmanager" in targets):
        try:
            import yaml
            with open(fallback, "r", encoding="utf-8") as fh:
                yaml.safe_load(fh.read())
        except (OSError, ValueError) as exc:
            log.error("error initialising module: alertmanager",
                      err="unable to load fallback configuration for %s: %s" % (fallback, exc))
            return 1
    err = _prepare_dirs(cfg, targets)
    if err:
        log.error("error initialising module: ingester", err=err)
        return 1
    try:
        _check_buckets(cfg, log)
    except fw.StandinExit as exc:
        return int(exc.code or 1)

    server = MimirServer(cfg, targets, text, log)
    listeners: List[fw.PortListener] = []
    services: List[fw.HTTPService] = []
    try:
        http_addr = "%s:%d" % (fw.get_path(cfg, "server.http_listen_address", ""),
                               int(fw.get_path(cfg, "server.http_listen_port", 8080)))
        services.append(fw.HTTPService("http", http_addr, server.app(), logger=log).start())
        listeners.append(fw.PortListener("grpc", fw.get_path(cfg, "server.grpc_listen_address", ""),
                                     int(fw.get_path(cfg, "server.grpc_listen_port", 9095))))
        bind = (fw.get_path(cfg, "memberlist.bind_addr", []) or [""])[0]
        listeners.append(fw.PortListener("memberlist", bind, server.mport, udp=True))
    except OSError as exc:
        for s in services:
            s.stop()
        for lst in listeners:
            lst.stop()
        log.error("error initialising module: server", err=str(exc))
        return 1
    log.info("server listening on addresses", http=http_addr,
             grpc="%s:%s" % (fw.get_path(cfg, "server.grpc_listen_address", ""),
                             fw.get_path(cfg, "server.grpc_listen_port", 9095)))
    for m in server.members:
        log.info("joining memberlist cluster", member=m, reachable=fw.probe_tcp(
            m if ":" in m.rsplit("]", 1)[-1] else "%s:%d" % (m, server.mport)))
    log.info("Application started")
    return fw.run_until_signal(services, logger=log, on_shutdown=lambda: [lst.stop() for lst in listeners])


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    try:
        return run(argv)
    except fw.StandinExit as exc:
        return int(exc.code or 0)


if __name__ == "__main__":  # python -m o11y_standins.mimir
    sys.exit(main())
