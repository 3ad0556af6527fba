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
* Tenants like Mimir's HTTP middlewares: ``X-Scope-OrgID`` required with
  multi-tenancy (401 ``no org id``, 401 for an invalid tenant ID, 422 for
  several), else the header is ignored and ``no_auth_tenant`` (``anonymous``)
  is used.
* Alertmanager configuration API (``alertmanager.enable_api``): ``GET``/
  ``POST``/``DELETE /api/v1/alerts`` with upstream's status codes and texts
  (404 ``alertmanager storage object not found``, 201, 200, 400 ``error
  validating Alertmanager config: ...`` after a strict check of the
  configuration like Alertmanager's ``config.Load`` plus Mimir's refused
  settings), persisted in the alertmanager storage as upstream does
  (object ``alerts/<tenant>``, protobuf ``AlertConfigDesc``; S3, filesystem,
  read-only ``local``).
* The tenant's Alertmanager under ``api.alertmanager_http_prefix``
  (``/alertmanager``): ``POST``/``GET /api/v2/alerts`` and ``GET
  /api/v2/status``; without a configuration it runs the fallback
  configuration (storing an empty configuration like upstream) or answers 404
  ``the Alertmanager is not configured``.  Alerts are routed through the
  tenant's route tree (matchers, ``continue``, ``group_by``) and delivered to
  the receiver's ``webhook_configs`` as Alertmanager's webhook payload
  (version 4, ``groupKey``, ``truncatedAlerts`` with ``max_alerts``), resolved
  alerts with ``send_resolved``; ``group_wait`` and ``group_interval`` are
  honoured but capped (``O11Y_STANDIN_MIMIR_GROUP_WAIT_CAP``, 3s, and
  ``O11Y_STANDIN_MIMIR_GROUP_INTERVAL_CAP``, 5s), 5xx answers are retried
  twice, URLs never logged.
* Ruler configuration API under ``api.prometheus_http_prefix``
  (``/prometheus``, ``ruler.enable_api``): ``GET <p>/config/v1/rules[/{ns}[/{group}]]``,
  ``POST <p>/config/v1/rules/{ns}`` (202), ``DELETE`` of a group or a
  namespace (202, 404 ``group does not exist``), percent-encoded names,
  rulefmt validation with upstream's messages, the per-tenant rule limits;
  stored like upstream (``rules/<tenant>/<base64url ns>/<base64url group>``,
  protobuf ``RuleGroupDesc``).  ``GET <p>/api/v1/rules`` and
  ``<p>/api/v1/alerts`` list the loaded groups and their alerts.  Evaluation
  uses the stand-in's PromQL subset over the pushed samples (see
  :mod:`o11y_standins.promql`; other expressions yield nothing); firing alerts go to ``ruler.alertmanager_url``
  (``/api/v2/alerts``, with the tenant header).
* Logs in logfmt on stderr, SIGTERM -> exit 0.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from . import framework as fw
from . import promql, wire

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
    filesystem = dict(common.get("filesystem") or {})
    filesystem.update({k: v for k, v in (own.get("filesystem") or {}).items() if v not in (None, "")})
    return {"backend": backend, "s3": s3, "storage_prefix": own.get("storage_prefix") or "",
            "filesystem": filesystem, "local": dict(own.get("local") or {})}


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
# object storage of the ruler and the alertmanager (upstream's bucket clients)
# ---------------------------------------------------------------------------

class StoreError(Exception):
    """The object storage failed (S3 unreachable, access denied, disk full)."""


class ObjectStore:
    """One store (``ruler_storage``, ``alertmanager_storage``) as Mimir's bucket client sees it.

    ``s3``: the configured bucket (``storage_prefix`` prepended to every key);
    ``filesystem``: files below ``filesystem.dir``; ``local``: read-only files
    (``local.path`` / ``local.directory``); other backends (gcs, azure, swift)
    are kept in memory, the stand-in cannot reach them.
    """

    def __init__(self, cfg: Dict[str, Any], key: str, default_dir: str):
        store = effective_store(cfg, key)
        self.backend = store["backend"]
        self.prefix = (store["storage_prefix"] or "").strip("/")
        self.local = store["local"]
        self.lock = threading.Lock()
        self.memory: Dict[str, bytes] = {}
        self.client = None
        if self.backend == "s3":
            s3 = store["s3"]
            self.bucket = s3.get("bucket_name") or ""
            import boto3
            from botocore.config import Config
            self.client = boto3.client(
                "s3", endpoint_url=fw._s3_endpoint_url(s3.get("endpoint") or "s3.amazonaws.com",
                                                       bool(s3.get("insecure"))),
                region_name=s3.get("region") or "us-east-1", aws_access_key_id=s3.get("access_key_id") or None,
                aws_secret_access_key=s3.get("secret_access_key") or None,
                config=Config(s3={"addressing_style": "path"}, connect_timeout=5, read_timeout=10,
                              retries={"max_attempts": 2}, signature_version="s3v4"))
        self.dir = (store["filesystem"].get("dir") or default_dir) if self.backend == "filesystem" else ""

    @property
    def writable(self) -> bool:
        return self.backend != "local"

    def _key(self, key: str) -> str:
        return "%s/%s" % (self.prefix, key) if self.prefix else key

    def get(self, key: str) -> Optional[bytes]:
        full = self._key(key)
        try:
            if self.client is not None:
                from botocore.exceptions import ClientError
                try:
                    return self.client.get_object(Bucket=self.bucket, Key=full)["Body"].read()
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                        return None
                    raise
            if self.dir:
                try:
                    with open(os.path.join(self.dir, full), "rb") as fh:
                        return fh.read()
                except FileNotFoundError:
                    return None
            with self.lock:
                return self.memory.get(full)
        except Exception as exc:  # noqa: BLE001 - any storage failure is a 500 upstream
            raise StoreError(self._describe(exc)) from None

    def put(self, key: str, data: bytes) -> None:
        full = self._key(key)
        try:
            if self.client is not None:
                self.client.put_object(Bucket=self.bucket, Key=full, Body=data)
            elif self.dir:
                path = os.path.join(self.dir, full)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path + ".tmp", "wb") as fh:
                    fh.write(data)
                os.replace(path + ".tmp", path)
            else:
                with self.lock:
                    self.memory[full] = data
        except Exception as exc:  # noqa: BLE001
            raise StoreError(self._describe(exc)) from None

    def delete(self, key: str) -> bool:
        """Delete *key*; False when it did not exist."""
        if self.get(key) is None:
            return False
        full = self._key(key)
        try:
            if self.client is not None:
                self.client.delete_object(Bucket=self.bucket, Key=full)
            elif self.dir:
                os.unlink(os.path.join(self.dir, full))
            else:
                with self.lock:
                    self.memory.pop(full, None)
        except Exception as exc:  # noqa: BLE001
            raise StoreError(self._describe(exc)) from None
        return True

    def list(self, prefix: str) -> List[str]:
        """Keys below *prefix* (recursively), without the storage prefix, sorted."""
        full = self._key(prefix)
        out: List[str] = []
        try:
            if self.client is not None:
                pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full)
                for page in pages:
                    out += [o["Key"] for o in page.get("Contents", [])]
            elif self.dir:
                base = os.path.join(self.dir, full)
                for root, _dirs, files in os.walk(base):
                    for name in files:
                        if not name.endswith(".tmp"):
                            out.append(os.path.relpath(os.path.join(root, name), self.dir).replace(os.sep, "/"))
            else:
                with self.lock:
                    out = [k for k in self.memory if k.startswith(full)]
        except Exception as exc:  # noqa: BLE001
            raise StoreError(self._describe(exc)) from None
        if self.prefix:
            out = [k[len(self.prefix) + 1:] for k in out]
        return sorted(out)

    def _describe(self, exc: Exception) -> str:
        if self.client is not None:
            return "%s (bucket %s)" % (str(exc).splitlines()[0] if str(exc) else type(exc).__name__, self.bucket)
        return str(exc)


# ---------------------------------------------------------------------------
# protobuf: the objects upstream writes (alertspb.AlertConfigDesc, rulespb.RuleGroupDesc)
# ---------------------------------------------------------------------------

def _pb_duration(num: int, millis: int) -> bytes:
    # gogoproto non-nullable stdduration: the field is always written, an empty message for zero
    secs, ms = divmod(int(millis), 1000)
    payload = (wire.field_varint(1, secs) if secs else b"") + (wire.field_varint(2, ms * 1_000_000) if ms else b"")
    return wire.field_bytes(num, payload)


def _pb_fields(data: bytes):
    """(field number, value) of a message: ints for varints, bytes otherwise."""
    for num, _wtype, value in wire.fields(data):
        yield num, value


def _pb_read_duration(data: bytes) -> int:
    secs = nanos = 0
    for num, value in _pb_fields(data):
        if num == 1:
            secs = value
        elif num == 2:
            nanos = value
    return secs * 1000 + nanos // 1_000_000


def encode_alert_config(user: str, raw: str, templates: Dict[str, str]) -> bytes:
    out = wire.field_str(1, user) + wire.field_str(2, raw)
    for name, body in templates.items():
        out += wire.field_bytes(3, wire.field_str(1, name) + wire.field_str(2, body))
    return out


def decode_alert_config(data: bytes) -> Dict[str, Any]:
    cfg: Dict[str, Any] = {"user": "", "raw_config": "", "templates": {}}
    for num, value in _pb_fields(data):
        if num == 1:
            cfg["user"] = value.decode("utf-8")
        elif num == 2:
            cfg["raw_config"] = value.decode("utf-8")
        elif num == 3:
            name = body = ""
            for n2, v2 in _pb_fields(value):
                if n2 == 1:
                    name = v2.decode("utf-8")
                elif n2 == 2:
                    body = v2.decode("utf-8")
            cfg["templates"][name] = body
    return cfg


def _pb_labels(num: int, labels: Dict[str, str]) -> bytes:
    return b"".join(wire.field_bytes(num, wire.field_str(1, k) + wire.field_str(2, labels[k]))
                    for k in sorted(labels))


def encode_rule_group(g: Dict[str, Any]) -> bytes:
    out = wire.field_str(1, g["name"]) + wire.field_str(2, g["namespace"]) + _pb_duration(3, g.get("interval_ms", 0))
    for r in g["rules"]:
        rule = (wire.field_str(1, r.get("expr", "")) + wire.field_str(2, r.get("record", "")) +
                wire.field_str(3, r.get("alert", "")) +
                _pb_duration(4, r.get("for_ms", 0)) + _pb_labels(5, r.get("labels") or {}) +
                _pb_labels(6, r.get("annotations") or {}) + _pb_duration(13, r.get("keep_firing_for_ms", 0)))
        out += wire.field_bytes(4, rule)
    out += wire.field_str(6, g.get("user", ""))
    for tenant in g.get("source_tenants") or []:
        out += wire.field_str(10, tenant)
    out += _pb_duration(11, g.get("evaluation_delay_ms", 0))
    if g.get("align"):
        out += wire.field_varint(12, 1)
    out += _pb_duration(13, g.get("query_offset_ms", 0))
    return out


def _pb_read_labels(data: bytes) -> Tuple[str, str]:
    name = value = ""
    for num, v in _pb_fields(data):
        if num == 1:
            name = v.decode("utf-8")
        elif num == 2:
            value = v.decode("utf-8")
    return name, value


def decode_rule_group(data: bytes) -> Dict[str, Any]:
    g: Dict[str, Any] = {"name": "", "namespace": "", "interval_ms": 0, "rules": [], "user": "",
                         "source_tenants": [], "evaluation_delay_ms": 0, "query_offset_ms": 0, "align": False}
    for num, value in _pb_fields(data):
        if num == 1:
            g["name"] = value.decode("utf-8")
        elif num == 2:
            g["namespace"] = value.decode("utf-8")
        elif num == 3:
            g["interval_ms"] = _pb_read_duration(value)
        elif num == 4:
            r: Dict[str, Any] = {"expr": "", "record": "", "alert": "", "for_ms": 0, "keep_firing_for_ms": 0,
                                 "labels": {}, "annotations": {}}
            for n2, v2 in _pb_fields(value):
                if n2 in (1, 2, 3):
                    r[{1: "expr", 2: "record", 3: "alert"}[n2]] = v2.decode("utf-8")
                elif n2 == 4:
                    r["for_ms"] = _pb_read_duration(v2)
                elif n2 == 13:
                    r["keep_firing_for_ms"] = _pb_read_duration(v2)
                elif n2 in (5, 6):
                    k, v = _pb_read_labels(v2)
                    r["labels" if n2 == 5 else "annotations"][k] = v
            g["rules"].append(r)
        elif num == 6:
            g["user"] = value.decode("utf-8")
        elif num == 10:
            g["source_tenants"].append(value.decode("utf-8"))
        elif num == 11:
            g["evaluation_delay_ms"] = _pb_read_duration(value)
        elif num == 12:
            g["align"] = bool(value)
        elif num == 13:
            g["query_offset_ms"] = _pb_read_duration(value)
    return g


# ---------------------------------------------------------------------------
# shared helpers: tenants, durations, YAML and JSON answers
# ---------------------------------------------------------------------------

_TENANT_CHARS = re.compile(r"[^a-zA-Z0-9!\-_.*'()]")


def tenant_id_error(tenant: str) -> Optional[str]:
    """dskit's tenant.ValidTenantID."""
    bad = _TENANT_CHARS.search(tenant)
    if bad:
        return "tenant ID '%s' contains unsupported character '%s'" % (tenant, bad.group(0))
    if len(tenant) > 150:
        return "tenant ID is too long: max 150 characters"
    if tenant in (".", ".."):
        return "tenant ID is '.' or '..'"
    return None


def format_model_duration(millis: int) -> str:
    """Prometheus ``model.Duration.String``: ``1m30s``, ``1w`` (years and weeks only when exact), ``0s``."""
    millis = int(millis)
    if millis == 0:
        return "0s"
    out = ""
    for unit, size, exact in (("y", 365 * 86400000, True), ("w", 7 * 86400000, True), ("d", 86400000, False),
                              ("h", 3600000, False), ("m", 60000, False), ("s", 1000, False), ("ms", 1, False)):
        if exact and millis % size:
            continue
        value, millis = divmod(millis, size)
        if value:
            out += "%d%s" % (value, unit)
    return out


def _model_ms(text: str) -> int:
    return int(round(fw.parse_model_duration(text) * 1000))


def go_time(ts: Optional[float]) -> str:
    """A Unix time as Go's time.Time marshals to JSON (RFC 3339, nanoseconds trimmed); zero time for None."""
    if ts is None:
        return "0001-01-01T00:00:00Z"
    import datetime as _dt
    dt = _dt.datetime.fromtimestamp(ts, _dt.timezone.utc)
    frac = ("%06d" % dt.microsecond).rstrip("0")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + ("." + frac if frac else "") + "Z"


def parse_go_time(text: str) -> float:
    import datetime as _dt
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", value)
    if m and m.group(2):  # Python parses at most microseconds
        value = m.group(1) + m.group(2)[:7] + m.group(3)
    dt = _dt.datetime.fromisoformat(value)
    if dt.tzinfo is None:
        raise ValueError("missing time zone in %r" % text)
    return dt.timestamp()


def yaml_answer(data: Any, status: int = 200, headers: Optional[Dict[str, str]] = None):
    """A YAML answer like Go's yaml.v3 Marshal (block style, keys in struct order, multi-line strings as literal
    blocks; the indentation differs, which no YAML reader sees)."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def represent_str(dumper, value):
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, represent_str)
    text = yaml.dump(data, Dumper=Dumper, default_flow_style=False, sort_keys=False, allow_unicode=True,
                     width=100000)
    out = {"Content-Type": "application/yaml"}
    out.update(headers or {})
    return status, text, out


def json_answer(data: Any, status: int = 200):
    return status, json.dumps(data), {"Content-Type": "application/json"}


def text_error(status: int, message: str):
    """Go's http.Error: the text and a newline, text/plain."""
    return status, message + "\n", {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}


def prom_error(status: int, error_type: str, message: str):
    """The ruler API's respondError JSON."""
    return json_answer({"status": "error", "data": None, "errorType": error_type, "error": message}, status)


class ApiError(Exception):
    """An error answer of the Prometheus HTTP API."""

    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message

    def answer(self):
        return prom_error(self.status, self.error_type, self.message)


class ApiParamError(ApiError):
    """Prometheus' invalidParamError: 400 bad_data ``invalid parameter "<name>": <reason>``."""

    def __init__(self, param: str, reason: str):
        super().__init__(400, "bad_data", 'invalid parameter "%s": %s' % (param, reason))


def parse_api_time(text: Optional[str], param: str, default: Any = 0.0) -> Optional[int]:
    """Prometheus' parseTime (unix seconds, float, or RFC 3339), in milliseconds; *default* (seconds) if absent."""
    if text is None or text == "":
        return None if default is None else int(round(default * 1000))
    try:
        return int(round(float(text) * 1000))
    except ValueError:
        pass
    try:
        return int(round(parse_go_time(text) * 1000))
    except ValueError:
        raise ApiParamError(param, 'cannot parse "%s" to a valid timestamp' % text) from None


def parse_api_duration(text: Optional[str], param: str) -> int:
    """Prometheus' parseDuration (seconds as a float, or a duration like 15s), in milliseconds."""
    try:
        return int(round(float(text or "") * 1000))
    except ValueError:
        pass
    try:
        return _model_ms(text or "")
    except ValueError:
        raise ApiParamError(param, 'cannot parse "%s" to a valid duration' % (text or "")) from None


def decode_write_request(data: bytes) -> List[Tuple[Dict[str, str], List[Tuple[int, float]]]]:
    """prompb.WriteRequest (remote write 1.0): its timeseries as (labels, [(timestamp ms, value)]).

    Metadata (field 3), exemplars and native histograms are not stored."""
    out = []
    for ts in wire.children(data, 1):
        labels: Dict[str, str] = {}
        samples: List[Tuple[int, float]] = []
        for num, _wtype, value in wire.fields(ts):
            if num == 1:
                name = val = ""
                for n2, _w2, v2 in wire.fields(value):
                    if n2 == 1:
                        name = v2.decode("utf-8", "replace")
                    elif n2 == 2:
                        val = v2.decode("utf-8", "replace")
                labels[name] = val
            elif num == 2:
                sample_value, stamp = 0.0, 0
                for n2, w2, v2 in wire.fields(value):
                    if n2 == 1 and w2 == wire.FIXED64:
                        sample_value = wire.as_double(v2)
                    elif n2 == 2 and w2 == wire.VARINT:
                        stamp = wire.as_sint64(v2)
                samples.append((stamp, sample_value))
        samples.sort(key=lambda s: s[0])
        out.append((labels, samples))
    return out


def encode_write_request(series: List[Tuple[Dict[str, str], List[Tuple[int, float]]]]) -> bytes:
    """The inverse of :func:`decode_write_request` (tests, and the stand-ins that remote-write)."""
    out = b""
    for labels, samples in series:
        ts = b"".join(wire.field_bytes(1, wire.field_str(1, k) + wire.field_str(2, labels[k]))
                      for k in sorted(labels))
        ts += b"".join(wire.field_bytes(2, wire.field_double(1, v) + wire.field_varint(2, t)) for t, v in samples)
        out += wire.field_bytes(1, ts)
    return out


def raw_path(req) -> str:
    """The request path as sent (percent-encoding kept), like gorilla/mux with UseEncodedPath."""
    raw = req.environ.get("RAW_URI") or req.environ.get("REQUEST_URI") or ""
    if raw.startswith(("http://", "https://")):
        raw = "/" + raw.split("://", 1)[1].partition("/")[2]
    raw = raw.split("?", 1)[0]
    if not raw:
        from urllib.parse import quote
        raw = quote(req.path)
    return raw


# ---------------------------------------------------------------------------
# Alertmanager configuration (prometheus/alertmanager config.Load, strict) and routing
# ---------------------------------------------------------------------------

_PLAIN = "config.plain"  # upstream's UnmarshalYAML methods decode into a local "plain" type
_INTEGRATIONS = ("discord_configs email_configs incidentio_configs jira_configs mattermost_configs msteams_configs "
                 "msteamsv2_configs opsgenie_configs pagerduty_configs pushover_configs rocketchat_configs "
                 "slack_configs sns_configs telegram_configs victorops_configs webex_configs wechat_configs")
AM_WEBHOOK = fw.Struct(_PLAIN, {"send_resolved": B(), "http_config": A(), "url": S(), "url_file": S(),
                                "max_alerts": I(min=0), "timeout": S()})
AM_RECEIVER = fw.Struct(_PLAIN, {"name": S(), "webhook_configs": fw.List(AM_WEBHOOK), **_many(_INTEGRATIONS)})
AM_ROUTE = fw.Struct(_PLAIN, {
    "receiver": S(), "group_by": fw.List(S()), "continue": B(), "match": fw.MapOf(S()), "match_re": fw.MapOf(S()),
    "matchers": fw.List(S()), "group_wait": S(), "group_interval": S(), "repeat_interval": S(),
    "mute_time_intervals": fw.List(S()), "active_time_intervals": fw.List(S()),
})
AM_ROUTE.fields["routes"] = fw.List(AM_ROUTE)
AM_CONFIG = fw.Struct(_PLAIN, {
    "global": A(), "route": AM_ROUTE, "inhibit_rules": fw.List(A()), "receivers": fw.List(AM_RECEIVER),
    "templates": fw.List(S()), "mute_time_intervals": fw.List(A()), "time_intervals": fw.List(A()),
    "tracing": A(),
})

# Mimir refuses settings that read local files or reach through a proxy (pkg/alertmanager/api.go).
_FORBIDDEN = [
    (("password_file", "bearer_token_file", "credentials_file", "smtp_auth_password_file", "auth_password_file"),
     "setting smtp_auth_password_file, password_file, bearer_token_file, auth_password_file or credentials_file is "
     "not allowed"),
    (("client_secret_file",), "setting OAuth2 client_secret_file is not allowed"),
    (("proxy_url",), "setting proxy_url is not allowed"),
    (("ca_file", "cert_file", "key_file", "ca", "cert", "key"),
     "setting TLS ca_file, cert_file, key_file, ca, cert or key is not allowed"),
    (("api_url_file", "slack_api_url_file"), "setting Slack api_url_file or global slack_api_url_file is not allowed"),
    (("victorops_api_key_file",), "setting VictorOps api_key_file or global victorops_api_key_file is not allowed"),
    (("opsgenie_api_key_file",), "setting OpsGenie api_key_file or global opsgenie_api_key_file is not allowed"),
    (("service_key_file",), "setting PagerDuty service_key_file is not allowed"),
    (("routing_key_file",), "setting PagerDuty routing_key_file is not allowed"),
    (("user_key_file",), "setting Pushover user_key_file is not allowed"),
    (("token_file",), "setting Pushover token_file is not allowed"),
    (("bot_token_file",), "setting Telegram bot_token_file is not allowed"),
    (("url_file",), "setting Webhook url_file is not allowed"),
]


def _forbidden_setting(node: Any, parent: str = "") -> Optional[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "proxy_from_environment" and value:
                return "setting proxy_from_environment is not allowed"
            if key in ("ca", "cert", "key") and parent != "tls_config":
                continue
            if key == "api_key_file":
                return ("setting OpsGenie api_key_file or global opsgenie_api_key_file is not allowed"
                        if parent == "opsgenie_configs" else
                        "setting VictorOps api_key_file or global victorops_api_key_file is not allowed")
            for keys, message in _FORBIDDEN:
                if key in keys and value not in (None, ""):
                    return message
            found = _forbidden_setting(value, key)
            if found:
                return found
    elif isinstance(node, list):
        for item in node:
            found = _forbidden_setting(item, parent)
            if found:
                return found
    return None


class Matcher:
    OPS = ("=~", "!~", "!=", "=")

    def __init__(self, name: str, op: str, value: str):
        self.name, self.op, self.value = name, op, value
        self.regex = re.compile("^(?:%s)$" % value) if op in ("=~", "!~") else None

    def matches(self, labels: Dict[str, str]) -> bool:
        have = labels.get(self.name, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        hit = bool(self.regex.match(have))
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return "%s%s%s" % (self.name, self.op, json.dumps(self.value, ensure_ascii=False))

    def sort_key(self):
        return (self.name, self.op, self.value)


_MATCHER_RE = re.compile(r'^\s*([a-zA-Z_:][a-zA-Z0-9_:]*|"(?:[^"\\]|\\.)*")\s*(=~|!~|!=|=)\s*(.*?)\s*$', re.S)


def parse_matchers(text: str) -> List[Matcher]:
    """Alertmanager's matcher lists: ``a="b", c=~"d|e"``, optionally in braces; ValueError when malformed."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    parts, cur, quoted, escaped = [], "", False, False
    for ch in body:
        if escaped:
            cur, escaped = cur + ch, False
            continue
        if ch == "\\":
            cur, escaped = cur + ch, True
            continue
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append(cur)
            cur = ""
            continue
        cur += ch
    if cur.strip() or not parts:
        parts.append(cur)
    out = []
    for part in parts:
        m = _MATCHER_RE.match(part)
        if not m or not part.strip():
            raise ValueError("bad matcher format: %s" % part.strip())
        name, op, value = m.groups()
        if name.startswith('"'):
            name = json.loads(name)
        if value.startswith('"'):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError("bad matcher format: %s" % part.strip()) from None
        try:
            out.append(Matcher(name, op, value))
        except re.error as exc:
            raise ValueError("error parsing regexp: %s: `%s`" % (exc, value)) from None
    return out


class Route:
    """One node of the routing tree with its inherited options (prometheus/alertmanager dispatch.Route)."""

    def __init__(self, d: Dict[str, Any], parent: "Optional[Route]" = None):
        self.parent = parent
        self.receiver = d.get("receiver") or (parent.receiver if parent else "")
        if d.get("group_by") is not None:
            self.group_all = "..." in d["group_by"]
            self.group_by = [] if self.group_all else list(d["group_by"])
        else:
            self.group_all = parent.group_all if parent else False
            self.group_by = list(parent.group_by) if parent else []
        defaults = {"group_wait": 30000, "group_interval": 300000, "repeat_interval": 14400000}
        for key, default in defaults.items():
            if d.get(key):
                setattr(self, key, _model_ms(d[key]))
            else:
                setattr(self, key, getattr(parent, key) if parent else default)
        matchers = [Matcher(k, "=", v) for k, v in (d.get("match") or {}).items()]
        matchers += [Matcher(k, "=~", v) for k, v in (d.get("match_re") or {}).items()]
        for line in d.get("matchers") or []:
            matchers += parse_matchers(line)
        self.matchers = sorted(matchers, key=Matcher.sort_key)
        self.cont = bool(d.get("continue"))
        own = "{%s}" % ",".join(str(m) for m in self.matchers)
        self.key = own if parent is None else parent.key + "/" + own
        self.routes = [Route(child, self) for child in d.get("routes") or []]

    def match(self, labels: Dict[str, str]) -> "List[Route]":
        if not all(m.matches(labels) for m in self.matchers):
            return []
        found: List[Route] = []
        for child in self.routes:
            hits = child.match(labels)
            found += hits
            if hits and not child.cont:
                break
        return found or [self]

    def group_labels(self, labels: Dict[str, str]) -> Dict[str, str]:
        if self.group_all:
            return dict(labels)
        return {k: labels[k] for k in self.group_by if k in labels}


def _check_route(d: Dict[str, Any], receivers: set, intervals: set, root: bool) -> Optional[str]:
    if root:
        if not d.get("receiver"):
            return "root route must specify a default receiver"
        if d.get("match") or d.get("match_re") or d.get("matchers"):
            return "root route must not have any matchers"
        if d.get("mute_time_intervals"):
            return "root route must not have any mute time intervals"
        if d.get("active_time_intervals"):
            return "root route must not have any active time intervals"
    if d.get("receiver") and d["receiver"] not in receivers:
        return 'undefined receiver "%s" used in route' % d["receiver"]
    for key in ("group_wait", "group_interval", "repeat_interval"):
        if d.get(key) is not None:
            try:
                ms = _model_ms(str(d[key]))
            except ValueError as exc:
                return str(exc)
            if ms == 0 and key != "group_wait":
                return "%s cannot be zero" % key
    group_by = d.get("group_by") or []
    seen = set()
    for label in group_by:
        if label in seen:
            return 'duplicated label "%s" in group_by' % label
        seen.add(label)
        if label != "..." and not re.match(r"^[a-zA-Z_][a-zA-Z0-9_]*$", label):
            return 'invalid label name "%s" in group_by list' % label
    if "..." in group_by and len(group_by) > 1:
        return "cannot have wildcard group_by (`...`) and other other labels at the same time"
    for key in ("match", "match_re"):
        for name, value in (d.get(key) or {}).items():
            if key == "match_re":
                try:
                    re.compile(value)
                except re.error as exc:
                    return "error parsing regexp: %s: `%s`" % (exc, value)
    for line in d.get("matchers") or []:
        try:
            parse_matchers(line)
        except ValueError as exc:
            return str(exc)
    for name in (d.get("mute_time_intervals") or []) + (d.get("active_time_intervals") or []):
        if name not in intervals:
            return 'undefined time interval "%s" used in route' % name
    for child in d.get("routes") or []:
        problem = _check_route(child, receivers, intervals, False)
        if problem:
            return problem
    return None


def _check_webhook(hook: Dict[str, Any]) -> Optional[str]:
    url, url_file = hook.get("url"), hook.get("url_file")
    if not url and not url_file:
        return "one of url or url_file must be configured"
    if url and url_file:
        return "at most one of url & url_file must be configured"
    if url:
        from urllib.parse import urlsplit
        bad = re.search(r"[\s<>\\^`{|}]", url.split("://", 1)[-1].split("/", 1)[0])
        if bad:  # Go's url.Parse quotes the whole URL in its error
            return 'parse "%s": invalid character %s in host name' % (url, json.dumps(bad.group(0)))
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            return 'unsupported scheme "%s" for URL' % parts.scheme
        if not parts.hostname:
            return "host for URL is empty"
    if hook.get("timeout"):
        try:
            fw.parse_model_duration(hook["timeout"])
        except ValueError as exc:
            return str(exc)
    return None


def load_alertmanager_config(raw: str) -> Dict[str, Any]:
    """Parse and check an Alertmanager configuration like config.Load; ValueError with upstream's text."""
    try:
        cfg = fw.load_config_text(raw, AM_CONFIG, fill_defaults=False)
    except fw.ConfigError as exc:
        raise ValueError(exc.render()) from None
    if not isinstance(cfg, dict):
        raise ValueError("no route provided in config")
    names = set()
    for rcv in cfg.get("receivers") or []:
        if not rcv.get("name"):
            raise ValueError("missing name in receiver")
        if rcv["name"] in names:
            raise ValueError('notification config name "%s" is not unique' % rcv["name"])
        names.add(rcv["name"])
        for hook in rcv.get("webhook_configs") or []:
            problem = _check_webhook(hook)
            if problem:
                raise ValueError(problem)
    intervals = {ti.get("name") for ti in (cfg.get("time_intervals") or []) + (cfg.get("mute_time_intervals") or [])
                 if isinstance(ti, dict)}
    if cfg.get("route") is None:
        raise ValueError("no routes provided")
    problem = _check_route(cfg["route"], names, intervals, True)
    if problem:
        raise ValueError(problem)
    if cfg.get("global") is not None and not isinstance(cfg["global"], dict):
        raise ValueError("yaml: unmarshal errors:\n  cannot unmarshal global into config.GlobalConfig")
    resolve = (cfg.get("global") or {}).get("resolve_timeout")
    if resolve:
        _model_ms(str(resolve))
    return cfg


def _template_problem(name: str, body: str) -> Optional[str]:
    """A Go template parse error for the obvious mistakes: an unclosed action, unbalanced {{ end }}."""
    depth = 0
    pos = 0
    while True:
        start = body.find("{{", pos)
        if start < 0:
            break
        end = body.find("}}", start + 2)
        line = body.count("\n", 0, start) + 1
        if end < 0:
            return "template: %s:%d: unclosed action" % (name, line)
        action = body[start + 2:end].strip("- \t\n")
        word = action.split()[0] if action.split() else ""
        if word in ("define", "if", "range", "with", "block"):
            depth += 1
        elif word == "end":
            depth -= 1
            if depth < 0:
                return "template: %s:%d: unexpected {{end}}" % (name, line)
        pos = end + 2
    if depth > 0:
        return "template: %s:%d: unexpected EOF" % (name, body.count("\n") + 1)
    return None


def _template_name_problem(name: str) -> Optional[str]:
    if os.path.basename(name) != name or os.path.dirname(os.path.normpath(name)) not in ("",) or name in ("", ".", ".."):
        return 'invalid template name "%s": the template name cannot contain any path' % name
    return None


# ---------------------------------------------------------------------------
# the multi-tenant Alertmanager: configuration API, API v2 alerts, notifications
# ---------------------------------------------------------------------------

GROUP_WAIT_CAP = float(os.environ.get("O11Y_STANDIN_MIMIR_GROUP_WAIT_CAP", "3"))
GROUP_INTERVAL_CAP = float(os.environ.get("O11Y_STANDIN_MIMIR_GROUP_INTERVAL_CAP", "5"))
ALERTMANAGER_VERSION = "0.28.1"


def labels_fingerprint(labels: Dict[str, str]) -> str:
    """Prometheus model.LabelSet.Fingerprint (FNV-1a over sorted name/value pairs) as 16 hex digits."""
    h = 14695981039346656037
    for name in sorted(labels):
        for part in (name, labels[name]):
            for b in part.encode("utf-8"):
                h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
            h = ((h ^ 0xFF) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def labelset_string(labels: Dict[str, str]) -> str:
    return "{%s}" % ", ".join(sorted("%s=%s" % (k, json.dumps(v, ensure_ascii=False)) for k, v in labels.items()))


class _Alert:
    def __init__(self, labels, annotations, starts, ends, ends_set, generator, now):
        self.labels, self.annotations = labels, annotations
        self.starts, self.ends, self.ends_set = starts, ends, ends_set
        self.generator = generator
        self.updated = now
        self.fp = labels_fingerprint(labels)

    def resolved(self, now: float) -> bool:
        return self.ends <= now


class _Group:
    def __init__(self, route: Route, labels: Dict[str, str], now: float):
        self.route, self.labels = route, labels
        self.fps: set = set()
        self.notified: Dict[str, str] = {}
        self.last_sent: Optional[float] = None
        self.next_flush = now + min(route.group_wait / 1000.0, GROUP_WAIT_CAP)


class _TenantAM:
    def __init__(self, tenant: str):
        self.tenant = tenant
        self.raw: Optional[str] = None
        self.route: Optional[Route] = None
        self.receivers: Dict[str, Dict[str, Any]] = {}
        self.resolve_ms = 300000
        self.alerts: Dict[str, _Alert] = {}
        self.groups: Dict[Tuple[str, str], _Group] = {}


class AlertmanagerService:
    """Mimir's multi-tenant Alertmanager as far as the collection uses it."""

    def __init__(self, server: "MimirServer"):
        self.server = server
        self.cfg = server.cfg
        self.log = server.log
        self.store = ObjectStore(self.cfg, "alertmanager_storage", "alertmanager")
        self.prefix = "/" + (fw.get_path(self.cfg, "api.alertmanager_http_prefix", "/alertmanager") or "").strip("/")
        self.external_url = fw.get_path(self.cfg, "alertmanager.external_url", "") or \
            "http://localhost:%s%s" % (fw.get_path(self.cfg, "server.http_listen_port", 8080), self.prefix)
        self.fallback_file = fw.get_path(self.cfg, "alertmanager.fallback_config_file", "")
        self.tenants: Dict[str, _TenantAM] = {}
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.thread: Optional[threading.Thread] = None

    # -- storage of the per-tenant configuration --------------------------------
    def _local_config(self, tenant: str) -> Optional[Dict[str, Any]]:
        path = self.store.local.get("path") or ""
        for ext in (".yml", ".yaml"):
            file = os.path.join(path, tenant + ext)
            if path and os.path.isfile(file):
                with open(file, "r", encoding="utf-8") as fh:
                    return {"user": tenant, "raw_config": fh.read(), "templates": {}}
        return None

    def stored_config(self, tenant: str) -> Optional[Dict[str, Any]]:
        if not self.store.writable:
            return self._local_config(tenant)
        data = self.store.get("alerts/" + tenant)
        return decode_alert_config(data) if data is not None else None

    def _fallback_text(self) -> Optional[str]:
        if not self.fallback_file:
            return None
        try:
            with open(self.fallback_file, "r", encoding="utf-8") as fh:
                return fh.read()
        except OSError:
            return None

    # -- configuration API -------------------------------------------------------
    def config_api(self, req):
        tenant, err = self.server.request_tenant(req)
        if err:
            return err
        if req.method in ("GET", "HEAD"):
            try:
                stored = self.stored_config(tenant)
            except StoreError as exc:
                return text_error(500, str(exc))
            if stored is None:
                return text_error(404, "alertmanager storage object not found")
            return yaml_answer({"template_files": dict(sorted(stored["templates"].items())),
                                "alertmanager_config": stored["raw_config"]})
        if req.method == "DELETE":
            if not self.store.writable:
                return text_error(500, "unable to delete the Alertmanager config: local alertmanager config storage "
                                       "is read-only")
            try:
                self.store.delete("alerts/" + tenant)
            except StoreError as exc:
                return text_error(500, "unable to delete the Alertmanager config: %s" % exc)
            self.log.info("deleted the Alertmanager configuration", user=tenant)
            return 200, "", {"Content-Type": "text/plain; charset=utf-8"}
        return self._set_config(req, tenant)

    def _set_config(self, req, tenant: str):
        import yaml
        payload = req.get_data()
        limit = int(fw.get_path(self.cfg, "limits.alertmanager_max_config_size_bytes", 0) or 0)
        if limit and len(payload) > limit:
            return text_error(400, "Alertmanager configuration is too big, limit: %d bytes" % limit)
        try:
            doc = yaml.safe_load(payload.decode("utf-8")) if payload.strip() else {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            return text_error(400, "error marshalling YAML Alertmanager config: yaml: %s"
                              % (getattr(exc, "problem", None) or exc))
        if doc is None:
            doc = {}
        if not isinstance(doc, dict):
            return text_error(400, "error marshalling YAML Alertmanager config: yaml: unmarshal errors:\n  line 1: "
                                   "cannot unmarshal !!%s into alertmanager.UserConfig" % type(doc).__name__)
        raw = doc.get("alertmanager_config")
        templates = doc.get("template_files") or {}
        if raw is not None and not isinstance(raw, str) or not isinstance(templates, dict) or \
                not all(isinstance(v, str) for v in templates.values()):
            return text_error(400, "error marshalling YAML Alertmanager config: yaml: unmarshal errors:\n  cannot "
                                   "unmarshal into alertmanager.UserConfig: alertmanager_config must be a string and "
                                   "template_files a map of strings")
        templates = {str(k): v for k, v in templates.items()}
        problem = self.validate_user_config(raw or "", templates)
        if problem:
            self.log.warn("error validating Alertmanager config", user=tenant, err=problem)
            return text_error(400, "error validating Alertmanager config: %s" % problem)
        if not self.store.writable:
            return text_error(500, "unable to store the Alertmanager config: local alertmanager config storage is "
                                   "read-only")
        try:
            self.store.put("alerts/" + tenant, encode_alert_config(tenant, raw or "", templates))
        except StoreError as exc:
            self.log.error("unable to store the Alertmanager config", user=tenant, err=str(exc))
            return text_error(500, "unable to store the Alertmanager config: %s" % exc)
        self.log.info("stored the Alertmanager configuration", user=tenant)
        return 201, "", {"Content-Type": "text/plain; charset=utf-8"}

    def validate_user_config(self, raw: str, templates: Dict[str, str]) -> Optional[str]:
        if raw == "":
            return ("configuration provided is empty, if you'd like to remove your configuration please use the "
                    "delete configuration endpoint")
        try:
            cfg = load_alertmanager_config(raw)
        except ValueError as exc:
            return str(exc)
        problem = _forbidden_setting(cfg)
        if problem:
            return problem
        for name in cfg.get("templates") or []:
            problem = _template_name_problem(name)
            if problem:
                return problem
        max_count = int(fw.get_path(self.cfg, "limits.alertmanager_max_templates_count", 0) or 0)
        if max_count and len(templates) > max_count:
            return "too many templates in the configuration: %d (limit: %d)" % (len(templates), max_count)
        max_size = int(fw.get_path(self.cfg, "limits.alertmanager_max_template_size_bytes", 0) or 0)
        for name, body in templates.items():
            if max_size and len(body) > max_size:
                return "template %s is too big: %d bytes (limit: %d bytes)" % (name, len(body), max_size)
        for name, body in templates.items():
            problem = _template_name_problem(name) or _template_problem(name, body)
            if problem:
                return problem
        return None

    # -- the tenant's running Alertmanager ----------------------------------------
    def _tenant_am(self, tenant: str) -> Optional[_TenantAM]:
        """The tenant's Alertmanager with its current configuration; None when it has none and no fallback."""
        stored = self.stored_config(tenant)
        raw = stored["raw_config"] if stored else ""
        if not raw:
            fallback = self._fallback_text()
            if fallback is None:
                return None
            if stored is None and self.store.writable:
                # upstream uploads an empty configuration so that the tenant keeps its fallback Alertmanager
                self.store.put("alerts/" + tenant, encode_alert_config(tenant, "", {}))
            raw = fallback
        with self.lock:
            am = self.tenants.get(tenant)
            if am is None:
                am = self.tenants[tenant] = _TenantAM(tenant)
            if am.raw != raw:
                try:
                    cfg = load_alertmanager_config(raw)
                except ValueError as exc:
                    self.log.error("invalid Alertmanager configuration", user=tenant, err=str(exc))
                    return am if am.route is not None else None
                am.raw = raw
                am.route = Route(cfg["route"])
                am.receivers = {r["name"]: r for r in cfg.get("receivers") or []}
                resolve = (cfg.get("global") or {}).get("resolve_timeout")
                am.resolve_ms = _model_ms(str(resolve)) if resolve else 300000
                am.groups = {}
                now = time.time()
                for alert in am.alerts.values():
                    self._insert(am, alert, now)
            return am

    def _insert(self, am: _TenantAM, alert: _Alert, now: float) -> None:
        for route in am.route.match(alert.labels):
            glabels = route.group_labels(alert.labels)
            key = (route.key, labelset_string(glabels))
            group = am.groups.get(key)
            if group is None:
                group = am.groups[key] = _Group(route, glabels, now)
            group.fps.add(alert.fp)

    def api(self, req):
        """Everything under the Alertmanager HTTP prefix."""
        tenant, err = self.server.request_tenant(req)
        if err:
            return err
        sub = req.path[len(self.prefix):] or "/"
        try:
            am = self._tenant_am(tenant)
        except StoreError as exc:
            return text_error(500, "Failed to initialize the Alertmanager: %s" % exc)
        if am is None:
            return text_error(404, "the Alertmanager is not configured")
        if sub == "/api/v2/alerts":
            if req.method == "POST":
                return self.post_alerts(req, am)
            if req.method in ("GET", "HEAD"):
                return self.get_alerts(req, am)
            return 405, "", {}
        if sub == "/api/v2/status" and req.method in ("GET", "HEAD"):
            return json_answer({"cluster": {"name": "stand-in", "peers": [], "status": "ready"},
                                "config": {"original": am.raw}, "uptime": go_time(self.server.started_wall),
                                "versionInfo": {"version": ALERTMANAGER_VERSION, "branch": "HEAD", "revision": "",
                                                "buildUser": "", "buildDate": "", "goVersion": ""}})
        return text_error(404, "404 page not found")

    def post_alerts(self, req, am: _TenantAM):
        try:
            items = json.loads(req.get_data() or b"null")
        except ValueError as exc:
            return json_answer({"code": 400, "message": "parsing alerts body from \"\" failed, because %s" % exc}, 400)
        if not isinstance(items, list):
            return json_answer({"code": 400, "message": "parsing alerts body from \"\" failed, because json: cannot "
                                                        "unmarshal into models.PostableAlerts"}, 400)
        now = time.time()
        parsed, problems = [], []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("labels"), dict):
                return json_answer({"code": 602, "message": "labels in body is required"}, 422)
            labels = {str(k): str(v) for k, v in item["labels"].items() if v not in (None, "")}
            annotations = {str(k): str(v) for k, v in (item.get("annotations") or {}).items()}
            try:
                starts = parse_go_time(item["startsAt"]) if item.get("startsAt") else None
                ends = parse_go_time(item["endsAt"]) if item.get("endsAt") else None
            except ValueError as exc:
                return json_answer({"code": 400, "message": str(exc)}, 400)
            if not labels:
                problems.append("at least one label pair required")
                continue
            bad = next((k for k in labels if not re.match(r"^[a-zA-Z_][a-zA-Z0-9_]*$", k)), None)
            if bad:
                problems.append('invalid label set: invalid name "%s"' % bad)
                continue
            if starts is None:
                starts = ends if ends is not None else now  # upstream's choice
            ends_set = ends is not None
            if ends is None:
                ends = now + am.resolve_ms / 1000.0
            if ends < starts:
                problems.append("start time must be before end time")
                continue
            parsed.append(_Alert(labels, annotations, starts, ends, ends_set, str(item.get("generatorURL") or ""),
                                 now))
        tenant = am.tenant
        self.server.metrics.inc("cortex_alertmanager_alerts_received_total", "The total number of received alerts.",
                                amount=len(parsed) + len(problems), labels={"user": tenant})
        if problems:
            self.server.metrics.inc("cortex_alertmanager_alerts_invalid_total", "The total number of received "
                                    "alerts that were invalid.", amount=len(problems), labels={"user": tenant})
        with self.lock:
            for alert in parsed:
                old = am.alerts.get(alert.fp)
                if old is not None and not old.resolved(now):
                    alert.starts = min(old.starts, alert.starts)  # the alert keeps firing since it started
                am.alerts[alert.fp] = alert
                self._insert(am, alert, now)
        if problems:
            return json_answer("; ".join(problems), 400)
        return 200, "", {"Content-Type": "application/json"}

    def get_alerts(self, req, am: _TenantAM):
        try:
            filters = [m for line in req.args.getlist("filter") for m in parse_matchers(line)]
        except ValueError as exc:
            return json_answer({"code": 400, "message": str(exc)}, 400)
        receiver_re = req.args.get("receiver")
        want_active = req.args.get("active", "true") != "false"
        now = time.time()
        out = []
        with self.lock:
            alerts = sorted(am.alerts.values(), key=lambda a: a.fp)
            for a in alerts:
                if a.resolved(now) or not want_active or not all(m.matches(a.labels) for m in filters):
                    continue
                receivers = sorted({r.receiver for r in am.route.match(a.labels)})
                if receiver_re and not any(re.fullmatch(receiver_re, r) for r in receivers):
                    continue
                out.append({"annotations": a.annotations, "endsAt": go_time(a.ends), "fingerprint": a.fp,
                            "receivers": [{"name": r} for r in receivers], "startsAt": go_time(a.starts),
                            "status": {"inhibitedBy": [], "mutedBy": [], "silencedBy": [], "state": "active"},
                            "updatedAt": go_time(a.updated), "generatorURL": a.generator, "labels": a.labels})
        return json_answer(out)

    # -- notifications -----------------------------------------------------------
    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="alertmanager-dispatch", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=5)

    def _loop(self) -> None:
        while not self.stopping.wait(0.1):
            now = time.time()
            jobs = []
            with self.lock:
                for am in list(self.tenants.values()):
                    for key, group in list(am.groups.items()):
                        if group.next_flush <= now:
                            jobs += self._flush(am, key, group, now)
                    for fp, alert in list(am.alerts.items()):
                        # resolved alerts stay until every group notified them (or they were never notified)
                        if alert.resolved(now) and not any(fp in g.fps for g in am.groups.values()):
                            del am.alerts[fp]
            for job in jobs:
                threading.Thread(target=self._deliver, args=job, name="webhook", daemon=True).start()

    def _flush(self, am: _TenantAM, key, group: _Group, now: float) -> list:
        alerts = [am.alerts[fp] for fp in group.fps if fp in am.alerts]
        firing = {a.fp for a in alerts if not a.resolved(now)}
        resolved = {a.fp for a in alerts if a.resolved(now)}
        before = {fp for fp, state in group.notified.items() if state == "firing"}
        to_resolve = resolved & before
        changed = firing != before
        repeat = bool(firing) and group.last_sent is not None and \
            now - group.last_sent >= group.route.repeat_interval / 1000.0
        jobs = []
        if changed or repeat:
            receiver = am.receivers.get(group.route.receiver) or {}
            batch = [a for a in alerts if a.fp in firing or a.fp in to_resolve]
            for index, hook in enumerate(receiver.get("webhook_configs") or []):
                send = batch if hook.get("send_resolved", True) else [a for a in batch if a.fp in firing]
                if send and (firing or hook.get("send_resolved", True)):
                    jobs.append((am.tenant, group.route.receiver, index, hook,
                                 self._payload(group, send, hook, now)))
            group.notified = {fp: "firing" for fp in firing}
            group.last_sent = now
        group.fps -= resolved
        group.next_flush = now + min(group.route.group_interval / 1000.0, GROUP_INTERVAL_CAP)
        if not group.fps:
            del am.groups[key]
        return jobs

    def _payload(self, group: _Group, alerts: List[_Alert], hook: Dict[str, Any], now: float) -> Dict[str, Any]:
        def order(a):
            return tuple((k not in a.labels, a.labels.get(k, "")) for k in ("job", "instance")) + \
                (sorted(a.labels.items()),)

        alerts = sorted(alerts, key=order)
        truncated = 0
        limit = int(hook.get("max_alerts") or 0)
        if limit and len(alerts) > limit:
            truncated = len(alerts) - limit
            alerts = alerts[:limit]
        items = [{"status": "resolved" if a.resolved(now) else "firing", "labels": a.labels,
                  "annotations": a.annotations, "startsAt": go_time(a.starts),
                  "endsAt": go_time(a.ends) if a.resolved(now) else go_time(None),
                  "generatorURL": a.generator, "fingerprint": a.fp} for a in alerts]

        def common(key):
            maps = [getattr(a, key) for a in alerts]
            if not maps:
                return {}
            return {k: v for k, v in maps[0].items() if all(m.get(k) == v for m in maps[1:])}

        return {"receiver": group.route.receiver,
                "status": "firing" if any(i["status"] == "firing" for i in items) else "resolved",
                "alerts": items, "groupLabels": group.labels, "commonLabels": common("labels"),
                "commonAnnotations": common("annotations"), "externalURL": self.external_url, "version": "4",
                "groupKey": "%s:%s" % (group.route.key, labelset_string(group.labels)), "truncatedAlerts": truncated}

    def _deliver(self, tenant: str, receiver: str, index: int, hook: Dict[str, Any], payload: Dict[str, Any]):
        import urllib.error
        import urllib.request
        integration = "webhook"
        headers = {"Content-Type": "application/json", "User-Agent": "Alertmanager/%s" % ALERTMANAGER_VERSION}
        http_config = hook.get("http_config") or {}
        basic = http_config.get("basic_auth") or {}
        if basic.get("username") or basic.get("password"):
            creds = ("%s:%s" % (basic.get("username") or "", basic.get("password") or "")).encode()
            headers["Authorization"] = "Basic " + base64.b64encode(creds).decode()
        auth = http_config.get("authorization") or {}
        if auth.get("credentials"):
            headers["Authorization"] = "%s %s" % (auth.get("type") or "Bearer", auth["credentials"])
        if http_config.get("bearer_token"):
            headers["Authorization"] = "Bearer " + http_config["bearer_token"]
        timeout = fw.parse_model_duration(hook["timeout"]) if hook.get("timeout") else 10.0
        data = json.dumps(payload).encode()
        error = ""
        for attempt in range(3):
            if self.stopping.is_set():
                return
            req = urllib.request.Request(hook["url"], data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=timeout) as resp:
                    resp.read()
                error = ""
                break
            except urllib.error.HTTPError as exc:
                error = "unexpected status code %d" % exc.code
                if exc.code < 500:
                    break  # upstream retries 5xx answers only
            except (OSError, ValueError) as exc:
                # never log the URL: an integration URL carries a token
                error = "Post \"<redacted>\": %s" % (getattr(exc, "reason", None) or exc)
            time.sleep(0.5 * (attempt + 1))
        labels = {"user": tenant, "integration": integration}
        self.server.metrics.inc("cortex_alertmanager_notifications_total", "The total number of attempted "
                                "notifications.", labels=labels)
        if error:
            self.server.metrics.inc("cortex_alertmanager_notifications_failed_total", "The total number of failed "
                                    "notifications.", labels=labels)
            self.log.warn("Notify for alerts failed", user=tenant, receiver=receiver,
                          integration="%s[%d]" % (integration, index), num_alerts=len(payload["alerts"]), err=error)
        else:
            self.log.info("Notify success", user=tenant, receiver=receiver,
                          integration="%s[%d]" % (integration, index), num_alerts=len(payload["alerts"]))


# ---------------------------------------------------------------------------
# the ruler: configuration API, Prometheus rules API, evaluation of constant expressions
# ---------------------------------------------------------------------------

def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii")


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text.encode("ascii")).decode("utf-8")


class RuleDecodeError(ValueError):
    pass


def _node_pos(node) -> str:
    return "%d:%d" % (node.start_mark.line + 1, node.start_mark.column + 1) if node is not None else "0:0"


def _scalar(node, what: str):
    import yaml
    if node is None:
        return None
    if isinstance(node, yaml.ScalarNode):
        return None if node.tag.endswith(":null") else node.value
    raise RuleDecodeError("cannot unmarshal %s into %s" % (node.tag, what))


def _mapping_pairs(node) -> Dict[str, Any]:
    import yaml
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise RuleDecodeError("cannot unmarshal into a map")
    return {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def _duration_ms(node, what: str) -> int:
    text = _scalar(node, what)
    if text in (None, ""):
        return 0
    try:
        return _model_ms(text)
    except ValueError as exc:
        raise RuleDecodeError(str(exc)) from None


def _str_map(node) -> Dict[str, str]:
    out = {}
    for key, value in _mapping_pairs(node).items():
        text = _scalar(value, "string")
        out[key] = "" if text is None else text
    return out


def decode_rule_group_yaml(text: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """yaml.v3 Unmarshal into rulefmt.RuleGroup (unknown keys ignored): (group, YAML nodes of its rules)."""
    import yaml
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise RuleDecodeError(str(exc)) from None
    fields = _mapping_pairs(root)
    group: Dict[str, Any] = {"name": _scalar(fields.get("name"), "string") or "",
                             "interval_ms": _duration_ms(fields.get("interval"), "model.Duration"),
                             "evaluation_delay_ms": _duration_ms(fields.get("evaluation_delay"), "model.Duration"),
                             "query_offset_ms": _duration_ms(fields.get("query_offset"), "model.Duration"),
                             "align": (_scalar(fields.get("align_evaluation_time_on_interval"), "bool") or "")
                             .lower() == "true", "rules": [], "source_tenants": []}
    tenants = fields.get("source_tenants")
    if tenants is not None and not (isinstance(tenants, yaml.ScalarNode) and tenants.tag.endswith(":null")):
        if not isinstance(tenants, yaml.SequenceNode):
            raise RuleDecodeError("source_tenants must be a list")
        group["source_tenants"] = [_scalar(n, "string") or "" for n in tenants.value]
    rules_node = fields.get("rules")
    nodes = []
    if rules_node is not None and not (isinstance(rules_node, yaml.ScalarNode) and rules_node.tag.endswith(":null")):
        if not isinstance(rules_node, yaml.SequenceNode):
            raise RuleDecodeError("rules must be a list")
        for item in rules_node.value:
            rf = _mapping_pairs(item)

            def node_text(key):
                node = rf.get(key)
                return node.value if isinstance(node, yaml.ScalarNode) and not node.tag.endswith(":null") else ""

            group["rules"].append({"record": node_text("record"), "alert": node_text("alert"),
                                   "expr": node_text("expr"),
                                   "for_ms": _duration_ms(rf.get("for"), "model.Duration"),
                                   "keep_firing_for_ms": _duration_ms(rf.get("keep_firing_for"), "model.Duration"),
                                   "labels": _str_map(rf.get("labels")),
                                   "annotations": _str_map(rf.get("annotations"))})
            nodes.append(rf)
    return group, {"nodes": nodes}


_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def promql_problem(expr: str) -> Optional[str]:
    """The PromQL parse errors the stand-in can see: unbalanced brackets (outside strings), a trailing operator."""
    stack: List[Tuple[str, int]] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    names = {"(": "parenthesis", "[": "bracket", "{": "brace"}
    quote = ""
    for pos, ch in enumerate(expr):
        if quote:
            if ch == quote and expr[pos - 1] != "\\":
                quote = ""
            continue
        if ch in "\"'`":
            quote = ch
        elif ch in "([{":
            stack.append((ch, pos))
        elif ch in ")]}":
            if not stack or stack[-1][0] != pairs[ch]:
                return "1:%d: parse error: unexpected right %s '%s'" % (pos + 1, names[pairs[ch]], ch)
            stack.pop()
    if quote:
        return "1:%d: parse error: unterminated quoted string" % len(expr)
    if stack:
        ch, pos = stack[-1]
        return "1:%d: parse error: unclosed left %s" % (pos + 1, names[ch])
    if re.search(r"(==|!=|>=|<=|[-+*/%^<>]|\band\b|\bor\b|\bunless\b)\s*$", expr.strip()):
        return "1:%d: parse error: unexpected end of input" % (len(expr.rstrip()) + 1)
    return None


def validate_rule_group(group: Dict[str, Any], nodes: Dict[str, Any], federation: bool) -> List[str]:
    """DefaultMultiTenantManager.ValidateRuleGroup with rulefmt's RuleNode.Validate."""
    name = group["name"]
    if not name:
        return ["invalid rules configuration: rule group name must not be empty"]
    if not group["rules"]:
        return ["invalid rules configuration: rule group '%s' has no rules" % name]
    errs = []
    if group["source_tenants"] and not federation:
        errs.append("invalid rules configuration: rule group '%s' is a federated rule group, but rules federation is "
                    "disabled; please contact your service administrator to have it enabled" % name)
    for i, rule in enumerate(group["rules"]):
        rf = nodes["nodes"][i] if i < len(nodes["nodes"]) else {}
        rule_name = rule["alert"] or rule["record"]

        def err(msg, node_key=None, alt_key=None):
            where = ""
            if node_key is not None:
                where = _node_pos(rf.get(node_key)) + ": "
                if alt_key is not None:
                    where += _node_pos(rf.get(alt_key)) + ": "
            errs.append('%sgroup "%s", rule %d, "%s": %s' % (where, name, i, rule_name, msg))

        if rule["record"] and rule["alert"]:
            err("only one of 'record' and 'alert' must be set", "record", "alert")
        if not rule["record"] and not rule["alert"]:
            err("one of 'record' or 'alert' must be set", "record")
        if not rule["expr"]:
            err("field 'expr' must be set in rule", "expr")
        else:
            problem = promql_problem(rule["expr"])
            if problem:
                err("could not parse expression: %s" % problem, "expr")
        if rule["record"]:
            if rule["annotations"]:
                err("invalid field 'annotations' in recording rule", "record")
            if rule["for_ms"]:
                err("invalid field 'for' in recording rule", "record")
            if rule["keep_firing_for_ms"]:
                err("invalid field 'keep_firing_for' in recording rule", "record")
            if not _METRIC_NAME.match(rule["record"]):
                err("invalid recording rule name: %s" % rule["record"], "record")
        for key, value in rule["labels"].items():
            if not _LABEL_NAME.match(key) or key == "__name__":
                err("invalid label name: %s" % key)
        for key in rule["annotations"]:
            if not _LABEL_NAME.match(key):
                err("invalid annotation name: %s" % key)
        for kind in ("labels", "annotations"):
            if rule["alert"]:
                for key, value in rule[kind].items():
                    problem = _template_problem("__alert_" + rule["alert"], value)
                    if problem:
                        err("%s %s: %s" % (kind[:-1], json.dumps(key), problem))
    return errs


def rule_group_view(g: Dict[str, Any]) -> Dict[str, Any]:
    """rulespb.FromProto, in the key order of rulefmt.RuleGroup (zero values left out, like omitempty)."""
    out: Dict[str, Any] = {"name": g["name"]}
    if g.get("interval_ms"):
        out["interval"] = format_model_duration(g["interval_ms"])
    if g.get("evaluation_delay_ms"):
        out["evaluation_delay"] = format_model_duration(g["evaluation_delay_ms"])
    if g.get("query_offset_ms"):
        out["query_offset"] = format_model_duration(g["query_offset_ms"])
    rules = []
    for r in g["rules"]:
        rule: Dict[str, Any] = {}
        if r.get("record"):
            rule["record"] = r["record"]
        else:
            rule["alert"] = r.get("alert", "")
        rule["expr"] = r.get("expr", "")
        if r.get("for_ms"):
            rule["for"] = format_model_duration(r["for_ms"])
        if r.get("keep_firing_for_ms"):
            rule["keep_firing_for"] = format_model_duration(r["keep_firing_for_ms"])
        if r.get("labels"):
            rule["labels"] = dict(sorted(r["labels"].items()))
        if r.get("annotations"):
            rule["annotations"] = dict(sorted(r["annotations"].items()))
        rules.append(rule)
    out["rules"] = rules
    if g.get("source_tenants"):
        out["source_tenants"] = list(g["source_tenants"])
    if g.get("align"):
        out["align_evaluation_time_on_interval"] = True
    return out


class _RuleState:
    def __init__(self):
        self.active: Dict[str, Dict[str, Any]] = {}  # fingerprint -> alert state
        self.health = "unknown"
        self.last_eval: Optional[float] = None


class RulerService:
    """Mimir's ruler as far as the collection uses it.

    Rule groups live in the ruler storage like upstream's (``rules/<tenant>/<base64url namespace>/<base64url
    group>``, protobuf). Evaluation runs the stand-in's PromQL subset (:mod:`o11y_standins.promql`) over the
    tenant's pushed samples, so ``vector(1)`` (the "watchdog") and selectors alert; other expressions yield
    nothing. Recording rules write their result back into the tenant's series.
    """

    def __init__(self, server: "MimirServer"):
        self.server = server
        self.cfg = server.cfg
        self.log = server.log
        self.store = ObjectStore(self.cfg, "ruler_storage", "ruler")
        self.prefix = "/" + (fw.get_path(self.cfg, "api.prometheus_http_prefix", "/prometheus") or "").strip("/")
        self.config_path = self.prefix + "/config/v1/rules"
        self.federation = bool(fw.get_path(self.cfg, "ruler.tenant_federation.enabled", False))
        self.state: Dict[Tuple[str, str, str, int], _RuleState] = {}
        self.last_eval: Dict[Tuple[str, str, str], float] = {}
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.thread: Optional[threading.Thread] = None
        self.sync_now = threading.Event()
        self.loaded: Dict[str, Dict[Tuple[str, str], Dict[str, Any]]] = {}

    # -- storage -----------------------------------------------------------------
    def _local_groups(self, tenant: str) -> List[Dict[str, Any]]:
        import yaml
        base = os.path.join(self.store.local.get("directory") or "", tenant)
        out = []
        if not os.path.isdir(base):
            return out
        for name in sorted(os.listdir(base)):
            try:
                with open(os.path.join(base, name), "r", encoding="utf-8") as fh:
                    doc = yaml.safe_load(fh) or {}
            except (OSError, yaml.YAMLError):
                continue
            for grp in doc.get("groups") or []:
                g, _nodes = decode_rule_group_yaml(yaml.safe_dump(grp))
                g.update(namespace=name, user=tenant)
                out.append(g)
        return out

    def list_groups(self, tenant: str, namespace: Optional[str] = None) -> List[Tuple[str, str]]:
        """(namespace, group) pairs of the tenant, in the order of the object keys."""
        if not self.store.writable:
            return [(g["namespace"], g["name"]) for g in self._local_groups(tenant)
                    if namespace is None or g["namespace"] == namespace]
        prefix = "rules/%s/" % tenant + (_b64(namespace) + "/" if namespace is not None else "")
        out = []
        for key in self.store.list(prefix):
            parts = key.split("/")
            if len(parts) != 4:
                continue
            try:
                ns, grp = _unb64(parts[2]), _unb64(parts[3])
            except (ValueError, UnicodeDecodeError):
                continue  # a spurious object; upstream skips it too
            if ns and grp:
                out.append((ns, grp))
        return out

    def get_group(self, tenant: str, namespace: str, name: str) -> Optional[Dict[str, Any]]:
        if not self.store.writable:
            return next((g for g in self._local_groups(tenant) if g["namespace"] == namespace and g["name"] == name),
                        None)
        data = self.store.get("rules/%s/%s/%s" % (tenant, _b64(namespace), _b64(name)))
        return decode_rule_group(data) if data is not None else None

    # -- configuration API -------------------------------------------------------
    def config_api(self, req):
        path = raw_path(req)
        if not (path == self.config_path or path.startswith(self.config_path + "/")):
            return text_error(404, "404 page not found")
        from urllib.parse import unquote
        rest = path[len(self.config_path):]
        segments = rest[1:].split("/") if rest else []
        if any(s == "" for s in segments) or len(segments) > 2:
            return text_error(404, "404 page not found")
        allowed = {0: ("GET", "HEAD"), 1: ("GET", "HEAD", "POST", "DELETE"), 2: ("GET", "HEAD", "DELETE")}
        if req.method not in allowed[len(segments)]:
            return 405, "", {}
        tenant, err = self.server.request_tenant(req)
        if err:
            return err
        names = [unquote(s) for s in segments]
        try:
            if len(names) == 0:
                return self._list(tenant, None)
            if len(names) == 1:
                if req.method == "POST":
                    return self._create(req, tenant, names[0])
                if req.method == "DELETE":
                    return self._delete_namespace(tenant, names[0])
                return self._list(tenant, names[0])
            if req.method == "DELETE":
                return self._delete_group(tenant, names[0], names[1])
            return self._get(tenant, names[0], names[1])
        except StoreError as exc:
            # upstream: a failed read answers 400 (GET), a failed write 500 text (POST) or JSON (DELETE)
            if req.method in ("GET", "HEAD"):
                return text_error(400, "failed to get rule group: %s" % exc)
            if req.method == "POST":
                return text_error(500, str(exc))
            return prom_error(500, "server_error", str(exc))

    def _list(self, tenant: str, namespace: Optional[str]):
        pairs = self.list_groups(tenant, namespace)
        out: Dict[str, List[Dict[str, Any]]] = {}
        for ns, name in pairs:
            g = self.get_group(tenant, ns, name)
            if g is None:
                return text_error(500, "an error occurred while loading 1 rule groups")
            out.setdefault(ns, []).append(rule_group_view(g))
        return yaml_answer(dict(sorted(out.items())))

    def _get(self, tenant: str, namespace: str, name: str):
        if not self.store.writable:
            return text_error(400, "GetRuleGroup unsupported in rule local store")
        g = self.get_group(tenant, namespace, name)
        if g is None:
            return text_error(404, "group does not exist")
        return yaml_answer(rule_group_view(g))

    def _create(self, req, tenant: str, namespace: str):
        try:
            group, nodes = decode_rule_group_yaml(req.get_data().decode("utf-8"))
        except (RuleDecodeError, UnicodeDecodeError) as exc:
            self.log.error("unable to unmarshal rule group payload", user=tenant, err=str(exc))
            return text_error(400, "unable to decode rule group")
        errs = validate_rule_group(group, nodes, self.federation)
        if errs:
            return text_error(400, ", ".join(errs))
        max_rules = int(fw.get_path(self.cfg, "limits.ruler_max_rules_per_rule_group", 20) or 0)
        if max_rules and len(group["rules"]) > max_rules:
            return text_error(400, "per-user rules per rule group limit (limit: %d actual: %d) exceeded"
                              % (max_rules, len(group["rules"])))
        max_groups = int(fw.get_path(self.cfg, "limits.ruler_max_rule_groups_per_tenant", 70) or 0)
        if max_groups:
            count = len(self.list_groups(tenant)) + 1  # upstream counts the posted group as new, even when it is not
            if count > max_groups:
                return text_error(400, "per-user rule groups limit (limit: %d actual: %d) exceeded"
                                  % (max_groups, count))
        if not self.store.writable:
            return text_error(500, "SetRuleGroup unsupported in rule local store")
        group.update(namespace=namespace, user=tenant)
        self.store.put("rules/%s/%s/%s" % (tenant, _b64(namespace), _b64(group["name"])), encode_rule_group(group))
        self.log.info("stored rule group", user=tenant, namespace=namespace, group=group["name"])
        self.sync_now.set()
        return json_answer({"status": "success", "data": None, "errorType": "", "error": ""}, 202)

    def _delete_group(self, tenant: str, namespace: str, name: str):
        if not self.store.writable:
            return prom_error(500, "server_error", "DeleteRuleGroup unsupported in rule local store")
        if not self.store.delete("rules/%s/%s/%s" % (tenant, _b64(namespace), _b64(name))):
            return text_error(404, "group does not exist")
        self.sync_now.set()
        return json_answer({"status": "success", "data": None, "errorType": "", "error": ""}, 202)

    def _delete_namespace(self, tenant: str, namespace: str):
        if not self.store.writable:
            return prom_error(500, "server_error", "DeleteNamespace unsupported in rule local store")
        pairs = self.list_groups(tenant, namespace)
        if not pairs:
            return text_error(404, "group namespace does not exist")
        for ns, name in pairs:
            self.store.delete("rules/%s/%s/%s" % (tenant, _b64(ns), _b64(name)))
        self.sync_now.set()
        return json_answer({"status": "success", "data": None, "errorType": "", "error": ""}, 202)

    # -- Prometheus rules API ------------------------------------------------------
    def _groups_for_listing(self, tenant: str) -> List[Dict[str, Any]]:
        groups = []
        for ns, name in self.list_groups(tenant):
            g = self.get_group(tenant, ns, name)
            if g is not None:
                groups.append(g)
        return sorted(groups, key=lambda g: (g["namespace"], g["name"]))

    def prometheus_rules(self, req):
        tenant, err = self.server.request_tenant(req)
        if err:
            return err
        kind = (req.args.get("type") or "").lower()
        if kind not in ("", "alert", "record"):
            return prom_error(400, "bad_data", 'not supported value "%s"' % kind)

        def values(name):
            return req.args.getlist(name + "[]") or req.args.getlist(name)

        files, group_names, rule_names = values("file"), values("rule_group"), values("rule_name")
        try:
            groups = self._groups_for_listing(tenant)
        except StoreError as exc:
            return prom_error(500, "server_error", str(exc))
        default_interval = fw.get_path(self.cfg, "ruler.evaluation_interval", "1m")
        out = []
        for g in groups:
            if (files and g["namespace"] not in files) or (group_names and g["name"] not in group_names):
                continue
            interval_ms = g["interval_ms"] or self._default_interval_ms(default_interval)
            rules = []
            for index, r in enumerate(g["rules"]):
                is_alert = bool(r["alert"])
                if (kind == "alert" and not is_alert) or (kind == "record" and is_alert):
                    continue
                if rule_names and (r["alert"] or r["record"]) not in rule_names:
                    continue
                with self.lock:
                    st = self.state.get((tenant, g["namespace"], g["name"], index)) or _RuleState()
                    alerts = [self._alert_view(a) for a in st.active.values()]
                common = {"name": r["alert"] or r["record"], "query": r["expr"], "labels": r["labels"],
                          "health": st.health, "lastError": "", "type": "alerting" if is_alert else "recording",
                          "lastEvaluation": go_time(st.last_eval), "evaluationTime": 0}
                if is_alert:
                    state = "inactive"
                    if any(a["state"] == "firing" for a in alerts):
                        state = "firing"
                    elif alerts:
                        state = "pending"
                    common.update(state=state, duration=r["for_ms"] / 1000.0,
                                  keepFiringFor=r["keep_firing_for_ms"] / 1000.0, annotations=r["annotations"],
                                  alerts=alerts)
                rules.append(common)
            if (kind or rule_names) and not rules:
                continue
            out.append({"name": g["name"], "file": g["namespace"], "rules": rules, "interval": interval_ms / 1000.0,
                        "lastEvaluation": go_time(self.last_eval.get((tenant, g["namespace"], g["name"]))),
                        "evaluationTime": 0, "sourceTenants": g["source_tenants"] or None})
        return json_answer({"status": "success", "data": {"groups": out}, "errorType": "", "error": ""})

    def prometheus_alerts(self, req):
        tenant, err = self.server.request_tenant(req)
        if err:
            return err
        with self.lock:
            alerts = [self._alert_view(a) for (t, _ns, _g, _i), st in self.state.items() if t == tenant
                      for a in st.active.values()]
        return json_answer({"status": "success", "data": {"alerts": alerts}, "errorType": "", "error": ""})

    @staticmethod
    def _alert_view(a: Dict[str, Any]) -> Dict[str, Any]:
        return {"labels": a["labels"], "annotations": a["annotations"], "state": a["state"],
                "activeAt": go_time(a["active_at"]), "value": a["value"]}

    @staticmethod
    def _default_interval_ms(text: Any) -> int:
        if isinstance(text, (int, float)):
            return int(text * 1000)
        try:
            return int(fw.parse_go_duration(str(text)) * 1000)
        except ValueError:
            return 60000

    # -- evaluation ----------------------------------------------------------------
    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="ruler", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.sync_now.set()
        if self.thread is not None:
            self.thread.join(timeout=5)

    def _tenants(self) -> List[str]:
        if not self.store.writable:
            base = self.store.local.get("directory") or ""
            return sorted(os.listdir(base)) if base and os.path.isdir(base) else []
        return sorted({k.split("/")[1] for k in self.store.list("rules/") if len(k.split("/")) == 4})

    def _sync(self) -> None:
        loaded: Dict[str, Dict[Tuple[str, str], Dict[str, Any]]] = {}
        for tenant in self._tenants():
            for g in self._groups_for_listing(tenant):
                loaded.setdefault(tenant, {})[(g["namespace"], g["name"])] = g
        with self.lock:
            self.loaded = loaded
            # a group that is gone stops; its alerts are not resolved, they expire in the Alertmanager (endsAt)
            for key in [k for k in self.state if (k[1], k[2]) not in loaded.get(k[0], {})]:
                del self.state[key]
            for key in [k for k in self.last_eval if (k[1], k[2]) not in loaded.get(k[0], {})]:
                del self.last_eval[key]

    def _loop(self) -> None:
        poll = min(self._default_interval_ms(fw.get_path(self.cfg, "ruler.poll_interval", "1m")) / 1000.0, 10.0)
        next_sync = 0.0
        while not self.stopping.is_set():
            now = time.time()
            if now >= next_sync or self.sync_now.is_set():
                self.sync_now.clear()
                try:
                    self._sync()
                except StoreError as exc:
                    self.log.warn("unable to list rule groups", err=str(exc))
                next_sync = now + poll
            self._evaluate_due(time.time())
            self.sync_now.wait(0.2)

    def _evaluate_due(self, now: float) -> None:
        default_ms = self._default_interval_ms(fw.get_path(self.cfg, "ruler.evaluation_interval", "1m"))
        sends = []
        with self.lock:
            for tenant, groups in self.loaded.items():
                for (ns, name), g in groups.items():
                    interval = (g["interval_ms"] or default_ms) / 1000.0
                    key = (tenant, ns, name)
                    if now - self.last_eval.get(key, 0) < interval:
                        continue
                    self.last_eval[key] = now
                    for index, rule in enumerate(g["rules"]):
                        sends += self._evaluate_rule(tenant, g, index, rule, now, interval)
        if sends:
            for tenant, alerts in self._by_tenant(sends).items():
                threading.Thread(target=self._notify, args=(tenant, alerts), daemon=True).start()

    @staticmethod
    def _by_tenant(sends):
        out: Dict[str, list] = {}
        for tenant, alert in sends:
            out.setdefault(tenant, []).append(alert)
        return out

    def _evaluate_rule(self, tenant, g, index, rule, now, interval) -> list:
        from urllib.parse import quote_plus
        st = self.state.setdefault((tenant, g["namespace"], g["name"], index), _RuleState())
        st.health, st.last_eval = "ok", now
        samples = self._query(tenant, rule["expr"], now)
        if not rule["alert"]:
            if rule["record"] and samples:  # a recording rule writes its result back as a series of the tenant
                for labels, value in samples:
                    out = {k: v for k, v in labels.items() if k != "__name__"}
                    out.update(rule["labels"], __name__=rule["record"])
                    try:
                        self.server.tenant_series(tenant).append(out, [(int(now * 1000), value)])
                    except promql.OutOfOrder:
                        pass
            return []
        resend = self._default_interval_ms(fw.get_path(self.cfg, "ruler.resend_delay", "1m")) / 1000.0
        valid = 4 * max(resend, interval)
        external = fw.get_path(self.cfg, "ruler.external_url", "") or ""
        seen = set()
        sends = []
        for labels, value in samples:
            alert_labels = dict(labels)
            alert_labels.update(rule["labels"])
            alert_labels["alertname"] = rule["alert"]
            fp = labels_fingerprint(alert_labels)
            seen.add(fp)
            a = st.active.get(fp)
            if a is None:
                a = st.active[fp] = {"labels": alert_labels, "annotations": dict(rule["annotations"]),
                                     "state": "pending", "active_at": now, "value": "%g" % value, "sent": None}
            if a["state"] == "pending" and now - a["active_at"] >= rule["for_ms"] / 1000.0:
                a["state"] = "firing"
                a["fired_at"] = now
            if a["state"] == "firing" and (a["sent"] is None or now - a["sent"] >= resend):
                a["sent"] = now
                sends.append((tenant, {"labels": a["labels"], "annotations": a["annotations"],
                                       "startsAt": go_time(a["fired_at"]), "endsAt": go_time(now + valid),
                                       "generatorURL": "%s/graph?g0.expr=%s&g0.tab=1"
                                       % (external.rstrip("/"), quote_plus(rule["expr"]))}))
        for fp in list(st.active):
            if fp not in seen:
                a = st.active.pop(fp)
                if a["state"] == "firing":
                    sends.append((tenant, {"labels": a["labels"], "annotations": a["annotations"],
                                           "startsAt": go_time(a["fired_at"]), "endsAt": go_time(now),
                                           "generatorURL": ""}))
        return sends

    def _query(self, tenant: str, expr: str, now: float) -> List[Tuple[Dict[str, str], float]]:
        """The rule's instant vector at *now*; expressions beyond the stand-in's PromQL subset yield nothing."""
        try:
            tree = promql.parse_expr(expr)
        except (promql.ParseError, promql.Unsupported):
            return []
        found = promql.instant_vector(tree, self.server.tenant_series(tenant), int(now * 1000))
        # like Prometheus, alert labels and recorded series drop the metric name of the input
        return [({k: v for k, v in labels.items() if k != "__name__"}, value) for labels, value in found]

    def _notify(self, tenant: str, alerts: List[Dict[str, Any]]) -> None:
        import urllib.request
        urls = [u.strip() for u in str(fw.get_path(self.cfg, "ruler.alertmanager_url", "") or "").split(",")
                if u.strip()]
        for url in urls:
            url = re.sub(r"^dns\+", "", url)
            target = url.rstrip("/") + "/api/v2/alerts"
            req = urllib.request.Request(target, data=json.dumps(alerts).encode(), method="POST",
                                         headers={"Content-Type": "application/json", "X-Scope-OrgID": tenant,
                                                  "User-Agent": "mimir-ruler"})
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    resp.read()
                self.server.metrics.inc("cortex_prometheus_notifications_sent_total", "Total number of alerts sent.",
                                        amount=len(alerts), labels={"user": tenant})
            except (OSError, ValueError) as exc:
                self.server.metrics.inc("cortex_prometheus_notifications_errors_total", "Total number of errors "
                                        "sending alert notifications.", amount=len(alerts), labels={"user": tenant})
                self.log.warn("Error sending alerts", user=tenant, alertmanager=target, err=str(exc))


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
        self.started_wall = time.time()
        self.multitenancy = bool(fw.get_path(cfg, "multitenancy_enabled", True))
        self.no_auth_tenant = str(fw.get_path(cfg, "no_auth_tenant", "anonymous") or "anonymous")
        self.prom_prefix = "/" + (fw.get_path(cfg, "api.prometheus_http_prefix", "/prometheus") or "").strip("/")
        self.series: Dict[str, promql.SeriesStore] = {}  # tenant -> its samples (in memory only)
        self.series_lock = threading.Lock()
        runs = set(targets)
        self.alertmanager = AlertmanagerService(self) if runs & {"all", "alertmanager", "backend"} else None
        self.ruler = RulerService(self) if runs & {"all", "ruler", "backend"} else None

    def start_background(self) -> None:
        """Start the Alertmanager's notification dispatcher and the ruler's evaluation loop."""
        for service in (self.alertmanager, self.ruler):
            if service is not None:
                service.start()

    def stop_background(self) -> None:
        for service in (self.alertmanager, self.ruler):
            if service is not None:
                service.stop()

    def request_tenant(self, req):
        """(tenant, None) or (None, error answer), like Mimir's HTTP auth and tenant validation middlewares."""
        if not self.multitenancy:
            return self.no_auth_tenant, None  # the header is ignored
        org = req.headers.get("X-Scope-OrgID", "")
        if not org:
            return None, text_error(401, "no org id")
        ids = sorted(set(org.split("|")))
        for tenant in ids:
            problem = tenant_id_error(tenant)
            if problem:
                return None, text_error(401, problem)
        if len(ids) > 1:
            return None, text_error(422, "too many tenant IDs present in the request. max: 1 actual: %d" % len(ids))
        return ids[0], None

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
        p = self.prom_prefix
        r.add(p + "/api/v1/status/buildinfo", self.buildinfo)
        read = ("GET", "HEAD", "POST")
        r.add(p + "/api/v1/query", self.api_query, methods=read)
        r.add(p + "/api/v1/query_range", self.api_query_range, methods=read)
        r.add(p + "/api/v1/series", self.api_series, methods=read)
        r.add(p + "/api/v1/labels", self.api_labels, methods=read)
        r.add(p + "/api/v1/label/", self._label_values_route, methods=("GET", "HEAD"), prefix=True)
        am, ruler = self.alertmanager, self.ruler
        if am is not None:
            if fw.get_path(self.cfg, "alertmanager.enable_api", True):
                r.add("/api/v1/alerts", am.config_api, methods=("GET", "HEAD", "POST", "DELETE"))
            r.add(am.prefix, am.api, methods=("GET", "HEAD", "POST", "PUT", "DELETE"), prefix=True)
        if ruler is not None:
            r.add(ruler.prefix + "/api/v1/rules", ruler.prometheus_rules)
            r.add(ruler.prefix + "/api/v1/alerts", ruler.prometheus_alerts)
            if fw.get_path(self.cfg, "ruler.enable_api", True):
                r.add(ruler.config_path, ruler.config_api, methods=("GET", "HEAD", "POST", "DELETE"), prefix=True)
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

    # -- write path: Prometheus remote write 1.0 ------------------------------------------------------------
    def tenant_series(self, tenant: str) -> promql.SeriesStore:
        with self.series_lock:
            return self.series.setdefault(tenant, promql.SeriesStore())

    def push(self, req):
        tenant, problem = self.request_tenant(req)
        if problem:
            return problem
        self.pushed += 1
        self.metrics.inc("cortex_distributor_requests_in_total", "The total number of requests that have come in "
                         "to the distributor, including rejected or deduped requests.", labels={"user": tenant})
        ctype = req.headers.get("Content-Type", "")
        if "io.prometheus.write.v2.Request" in ctype:
            return text_error(415, "remote write 2.0 is not supported by the stand-in")
        try:
            series = decode_write_request(wire.snappy_decode(req.get_data()))
        except wire.WireError as exc:
            return text_error(400, str(exc))
        store = self.tenant_series(tenant)
        received = added = 0
        first_error = None
        for labels, samples in series:
            received += len(samples)
            if "__name__" not in labels:
                first_error = first_error or ("received a series without metric name "
                                              "(err-mimir-missing-metric-name)")
                continue
            try:
                added += store.append(labels, samples)
            except promql.OutOfOrder as exc:
                ts = samples[0][0] if samples else 0
                what, code = (("a more recent timestamp", "out-of-order") if "order" in str(exc) else
                              ("the same timestamp, but a different value", "duplicate-timestamp"))
                first_error = first_error or (
                    "the sample has been rejected because another sample with %s has already been ingested and "
                    "out-of-order samples are not allowed (err-mimir-sample-%s). The affected sample has timestamp "
                    "%s and is from series %s" % (what, code, go_time(ts / 1000.0), labelset_string(labels)))
        self.metrics.inc("cortex_distributor_received_samples_total", "The total number of received samples, "
                         "excluding rejected and deduped samples.", amount=added, labels={"user": tenant})
        self.metrics.inc("cortex_ingester_ingested_samples_total", "The total number of samples ingested per user.",
                         amount=added, labels={"user": tenant})
        if first_error:
            self.metrics.inc("cortex_discarded_samples_total", "The total number of samples that were discarded.",
                             amount=received - added, labels={"user": tenant})
            return text_error(400, first_error)
        return 200, ""

    # -- read path: the Prometheus HTTP API ---------------------------------------------------------------
    def _api_tenant_store(self, req):
        tenant, problem = self.request_tenant(req)
        return (None, problem) if problem else (self.tenant_series(tenant), None)

    def _parse_query(self, text: str):
        problem = promql_problem(text)  # bracket and trailing-operator errors of full PromQL first
        if problem:
            raise ApiParamError("query", problem)
        try:
            return promql.parse_expr(text)
        except promql.ParseError as exc:
            raise ApiParamError("query", str(exc)) from None
        except promql.Unsupported as exc:
            raise ApiError(422, "execution", "the o11y.stack stand-in does not evaluate %s: %s" % (exc, text))

    def api_query(self, req):
        store, problem = self._api_tenant_store(req)
        if problem:
            return problem
        try:
            t_ms = parse_api_time(req.values.get("time"), "time", default=time.time())
            tree = self._parse_query(req.values.get("query", ""))
        except ApiError as exc:
            return exc.answer()
        if isinstance(tree, promql.NumberLiteral):
            data = {"resultType": "scalar", "result": [promql.format_time(t_ms), promql.format_value(tree.value)]}
        else:
            data = {"resultType": "vector", "result": [
                {"metric": labels, "value": [promql.format_time(t_ms), promql.format_value(v)]}
                for labels, v in promql.instant_vector(tree, store, t_ms)]}
        return json_answer({"status": "success", "data": data})

    def api_query_range(self, req):
        store, problem = self._api_tenant_store(req)
        if problem:
            return problem
        try:
            start = parse_api_time(req.values.get("start"), "start")
            end = parse_api_time(req.values.get("end"), "end")
            if end < start:
                raise ApiParamError("end", "end timestamp must not be before start time")
            step = parse_api_duration(req.values.get("step"), "step")
            if step <= 0:
                raise ApiParamError("step", "zero or negative query resolution step widths are not accepted. "
                                    "Try a positive integer")
            if (end - start) // step > 11000:
                raise ApiError(400, "bad_data", "exceeded maximum resolution of 11,000 points per timeseries. "
                               "Try decreasing the query resolution (?step=XX)")
            tree = self._parse_query(req.values.get("query", ""))
        except ApiError as exc:
            return exc.answer()
        series: Dict[Tuple[Tuple[str, str], ...], list] = {}
        for t in range(start, end + 1, step):
            for labels, v in promql.instant_vector(tree, store, t):
                series.setdefault(tuple(sorted(labels.items())), []).append(
                    [promql.format_time(t), promql.format_value(v)])
        result = [{"metric": dict(key), "values": values} for key, values in sorted(series.items())]
        return json_answer({"status": "success", "data": {"resultType": "matrix", "result": result}})

    def _matched_series(self, req, required: bool):
        store, problem = self._api_tenant_store(req)
        if problem:
            return None, problem
        try:
            start = parse_api_time(req.values.get("start"), "start", default=None)
            end = parse_api_time(req.values.get("end"), "end", default=None)
            selectors = req.values.getlist("match[]")
            if required and not selectors:
                raise ApiError(400, "bad_data", "no match[] parameter provided")
            matcher_sets = []
            for text in selectors:
                try:
                    matcher_sets.append(promql.parse_metric_selector(text))
                except promql.ParseError as exc:
                    raise ApiParamError("match[]", str(exc)) from None
        except ApiError as exc:
            return None, exc.answer()
        found: Dict[Tuple[Tuple[str, str], ...], Dict[str, str]] = {}
        for matchers in matcher_sets or [[]]:
            for labels, _t, _v in store.select(matchers, start, end):
                found[tuple(sorted(labels.items()))] = labels
        return [found[k] for k in sorted(found)], None

    def api_series(self, req):
        found, problem = self._matched_series(req, required=True)
        return problem or json_answer({"status": "success", "data": found})

    def api_labels(self, req):
        found, problem = self._matched_series(req, required=False)
        return problem or json_answer({"status": "success", "data": sorted({k for s in found for k in s})})

    def api_label_values(self, req):
        name = req.path[len(self.prom_prefix + "/api/v1/label/"):-len("/values")]
        if not re.match(r"^[a-zA-Z_][a-zA-Z0-9_]*$", name) and not name.startswith("U__"):
            return ApiError(400, "bad_data", 'invalid label name: "%s"' % name).answer()
        found, problem = self._matched_series(req, required=False)
        return problem or json_answer({"status": "success", "data": sorted({s[name] for s in found if name in s})})

    def _label_values_route(self, req):
        if not req.path.endswith("/values"):
            return text_error(404, "404 page not found")
        return self.api_label_values(req)

    def buildinfo(self, req):
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
    server.start_background()
    log.info("Application started")

    def shutdown():
        server.stop_background()
        for lst in listeners:
            lst.stop()

    return fw.run_until_signal(services, logger=log, on_shutdown=shutdown)


class InProcessMimir:
    """The stand-in served from this process (unit tests): ``InProcessMimir(cfg_dict).url``, ``.stop()``.

    *cfg* is parsed and validated like a config file; the buckets must exist (they are not checked).
    """

    def __init__(self, cfg: Dict[str, Any], address: str = "127.0.0.1:0", logger: Optional[fw.Logger] = None):
        import yaml
        text = yaml.safe_dump(cfg, sort_keys=False)
        parsed = fw.load_config_text(text, SCHEMA)
        targets = [t.strip() for t in str(parsed.get("target") or "all").split(",") if t.strip()]
        err = validate(parsed, targets)
        if err:
            raise ValueError("error validating config: %s" % err)
        self.server = MimirServer(parsed, targets, text, logger or fw.Logger("mimir", level="warn"))
        self.service = fw.HTTPService("http", address, self.server.app()).start()
        self.server.start_background()

    @property
    def url(self) -> str:
        return self.service.url

    def stop(self) -> None:
        self.server.stop_background()
        self.service.stop()


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    try:
        return run(argv)
    except fw.StandinExit as exc:
        return int(exc.code or 0)


if __name__ == "__main__":  # python -m o11y_standins.mimir
    sys.exit(main())
