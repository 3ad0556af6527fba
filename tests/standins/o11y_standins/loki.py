# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Loki stand-in: the ``loki`` binary on the surface o11y.stack uses.

Behaves like Grafana Loki 3.7.6 where the collection touches it:

* CLI (Go ``flag`` package, as Loki's config loader parses it):
  ``-version``/``--version`` (prometheus/common ``version.Print`` banner),
  ``-config.file`` (comma-separated, first existing file wins),
  ``-config.expand-env`` (``${VAR}`` expansion only when true), ``-target``,
  ``-verify-config`` (parse + validate, log ``config is valid``, exit 0),
  ``-print-config-stderr``, ``-list-targets``, ``-log-config-reverse-order``,
  ``-auth.enabled``, ``-log.level``, ``-server.http-listen-port``,
  ``-server.grpc-listen-port``, ``-memberlist.bind-port``.  Unknown flags:
  Go's ``flag provided but not defined: -x`` + ``Run with -help ...``, exit 2;
  ``-help`` prints the flags to stdout and exits 2, like Loki.
* Config: strict YAML (yaml.v2 ``UnmarshalStrict`` semantics) against a schema
  of the keys and types of the Loki 3.7.6 configuration reference for every
  section the role renders (target, auth_enabled, server, common, memberlist,
  schema_config, storage_config, compactor, limits_config, ruler, ingester,
  analytics, and the blocks they reference); the other top-level sections are
  accepted as opaque.  Unknown or misplaced keys -> ``failed parsing config:``
  naming the key, exit 1.  Validation of what the role relies on (schema
  periods, retention needs ``compactor.delete_request_store``, targets, log level).
* Serving: HTTP on ``server.http_listen_address:http_listen_port`` (3100),
  gRPC port ``server.grpc_listen_port`` (9095) bound, memberlist TCP on
  ``memberlist.bind_port`` (7946) when a ring uses memberlist or join members
  are set.  Endpoints: ``/ready`` (503 until the ingester's
  ``min_ready_duration`` passed, then ``ready``), ``/metrics`` (``loki_build_info``),
  ``/loki/api/v1/status/buildinfo``, ``/config`` (secrets masked), ``/services``,
  ``/memberlist`` and ``/ring`` (members found by probing the join members'
  memberlist ports), ``/loki/api/v1/push`` (accepted and dropped),
  ``/loki/api/v1/labels``.  With ``auth_enabled: true`` the API needs
  ``X-Scope-OrgID`` (401 ``no org id``).
* Refuses to start (exit 1, message names the bucket) when a configured S3
  bucket (``common.storage.s3`` / ``storage_config.aws`` bucket names, the
  ruler's S3 bucket) does not exist on the configured endpoint with the
  configured credentials.
* Logs logfmt to stderr; SIGTERM -> exit 0.

The schema below lists key names and value types taken from the upstream
configuration reference (docs/sources/shared/configuration.md at v3.7.6);
type codes: s string, i int, b bool, f float, d duration, ls list of strings,
mss map of strings, * anything, @block a named block, [@block] a list of
blocks; ``<<`` inlines the fields of the named blocks.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import os
import re
import random
import socket
import string
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from . import framework as fw
from . import otlp
from . import wire

DEFAULT_VERSION = "3.7.6"
DEFAULT_GOVERSION = "go1.26.5"

SCHEMA_BLOCKS = {'ROOT': {'target': 's',
          'auth_enabled': 'b',
          'ballast_bytes': 'i',
          'server': '@server',
          'ui': '*',
          'distributor': '*',
          'querier': '*',
          'query_engine': '*',
          'query_scheduler': '*',
          'frontend': '*',
          'query_range': '*',
          'ruler': '@ruler',
          'ruler_storage': '*',
          'ingester_client': '*',
          'ingester': '@ingester',
          'pattern_ingester': '*',
          'index_gateway': '*',
          'bloom_build': '*',
          'bloom_gateway': '*',
          'storage_config': '@storage_config',
          'chunk_store_config': '*',
          'schema_config': '@schema_config',
          'compactor': '@compactor',
          'compactor_grpc_client': '*',
          'limits_config': '@limits_config',
          'frontend_worker': '*',
          'table_manager': '*',
          'memberlist': '@memberlist',
          'kafka_config': '*',
          'dataobj': '*',
          'ingest_limits': '*',
          'ingest_limits_frontend': '*',
          'ingest_limits_frontend_client': '*',
          'runtime_config': '*',
          'operational_config': '*',
          'tracing': '*',
          'analytics': '@analytics',
          'profiling': '*',
          'tenant_limits_allow_publish': 'ls',
          'common': '@common',
          'shutdown_delay': 'd',
          'metrics_namespace': 's'},
 'alibabacloud_storage_config': {'bucket': 's',
                                 'endpoint': 's',
                                 'access_key_id': 's',
                                 'secret_access_key': 's',
                                 'conn_timeout_sec': 'i',
                                 'read_write_timeout_sec': 'i'},
 'analytics': {'reporting_enabled': 'b', 'usage_stats_url': 's', 'proxy_url': 's', 'tls_config': '@tls_config'},
 'attributes_config': {'action': 's', 'attributes': 'ls', 'regex': '*'},
 'aws_storage_config': {'dynamodb': {'dynamodb_url': 's',
                                     'api_limit': 'f',
                                     'throttle_limit': 'f',
                                     'metrics': {'url': 's',
                                                 'target_queue_length': 'i',
                                                 'scale_up_factor': 'f',
                                                 'ignore_throttle_below': 'f',
                                                 'queue_length_query': 's',
                                                 'write_throttle_query': 's',
                                                 'write_usage_query': 's',
                                                 'read_usage_query': 's',
                                                 'read_error_query': 's'},
                                     'chunk_gang_size': 'i',
                                     'chunk_get_max_parallelism': 'i',
                                     'backoff_config': {'min_period': 'd', 'max_period': 'd', 'max_retries': 'i'},
                                     'kms_key_id': 's'},
                        '<<': ['s3_storage_config']},
 'azure_storage_config': {'environment': 's',
                          'account_name': 's',
                          'account_key': 's',
                          'connection_string': 's',
                          'container_name': 's',
                          'active_directory_endpoint': 's',
                          'endpoint_suffix': 's',
                          'use_managed_identity': 'b',
                          'use_federated_token': 'b',
                          'user_assigned_id': 's',
                          'use_service_principal': 'b',
                          'client_id': 's',
                          'client_secret': 's',
                          'tenant_id': 's',
                          'chunk_delimiter': 's',
                          'download_buffer_size': 'i',
                          'upload_buffer_size': 'i',
                          'upload_buffer_count': 'i',
                          'request_timeout': 'd',
                          'max_retries': 'i',
                          'min_retry_delay': 'd',
                          'max_retry_delay': 'd'},
 'bos_storage_config': {'bucket_name': 's', 'endpoint': 's', 'access_key_id': 's', 'secret_access_key': 's'},
 'cache_config': {'default_validity': 'd',
                  'background': {'writeback_goroutines': 'i', 'writeback_buffer': 'i', 'writeback_size_limit': 'i'},
                  'memcached': {'expiration': 'd', 'batch_size': 'i', 'parallelism': 'i'},
                  'memcached_client': {'host': 's',
                                       'service': 's',
                                       'addresses': 's',
                                       'timeout': 'd',
                                       'max_idle_conns': 'i',
                                       'max_item_size': 'i',
                                       'update_interval': 'd',
                                       'consistent_hash': 'b',
                                       'circuit_breaker_consecutive_failures': 'i',
                                       'circuit_breaker_timeout': 'd',
                                       'circuit_breaker_interval': 'd',
                                       'tls_enabled': 'b',
                                       '<<': ['tls_config']},
                  'redis': {'endpoint': 's',
                            'master_name': 's',
                            'timeout': 'd',
                            'expiration': 'd',
                            'db': 'i',
                            'pool_size': 'i',
                            'username': 's',
                            'password': 's',
                            'tls_enabled': 'b',
                            'tls_insecure_skip_verify': 'b',
                            'idle_timeout': 'd',
                            'max_connection_age': 'd',
                            'route_randomly': 'b'},
                  'embedded_cache': {'enabled': 'b', 'max_size_mb': 'i', 'max_size_items': 'i', 'ttl': 'd'}},
 'common': {'path_prefix': 's',
            'storage': {'s3': '@s3_storage_config',
                        'gcs': '@gcs_storage_config',
                        'azure': '@azure_storage_config',
                        'alibabacloud': '@alibabacloud_storage_config',
                        'bos': '@bos_storage_config',
                        'swift': '@swift_storage_config',
                        'filesystem': {'chunks_directory': 's', 'rules_directory': 's'},
                        'hedging': {'at': 'd', 'up_to': 'i', 'max_per_second': 'i'},
                        'cos': '@cos_storage_config',
                        'congestion_control': {'enabled': 'b',
                                               'controller': {'strategy': 's',
                                                              'aimd': {'start': 'i',
                                                                       'upper_bound': 'i',
                                                                       'backoff_factor': 'f'}},
                                               'retry': {'strategy': 's', 'limit': 'i'},
                                               'hedging': {'config': {'at': 'd', 'up_to': 'i', 'max_per_second': 'i'},
                                                           'strategy': 's'}},
                        'object_store': '@thanos_object_store_config'},
            'persist_tokens': 'b',
            'replication_factor': 'i',
            'ring': {'kvstore': {'store': 's',
                                 'prefix': 's',
                                 'consul': '@consul',
                                 'etcd': '@etcd',
                                 'multi': {'primary': 's',
                                           'secondary': 's',
                                           'mirror_enabled': 'b',
                                           'mirror_timeout': 'd'}},
                     'heartbeat_period': 'd',
                     'heartbeat_timeout': 'd',
                     'tokens_file_path': 's',
                     'zone_awareness_enabled': 'b',
                     'num_tokens': 'i',
                     'replication_factor': 'i',
                     'instance_id': 's',
                     'instance_interface_names': 'ls',
                     'instance_port': 'i',
                     'instance_addr': 's',
                     'instance_availability_zone': 's',
                     'instance_enable_ipv6': 'b'},
            'instance_interface_names': 'ls',
            'instance_addr': 's',
            'compactor_address': 's',
            'compactor_grpc_address': 's',
            'scratch_path': 's'},
 'compactor': {'working_directory': 's',
               'compaction_interval': 'd',
               'apply_retention_interval': 'd',
               'retention_enabled': 'b',
               'retention_delete_delay': 'd',
               'retention_delete_worker_count': 'i',
               'retention_table_timeout': 'd',
               'retention_backoff_config': {'min_period': 'd', 'max_period': 'd', 'max_retries': 'i'},
               'delete_request_store': 's',
               'delete_request_store_key_prefix': 's',
               'delete_request_store_db_type': 's',
               'backup_delete_request_store_db_type': 's',
               'delete_batch_size': 'i',
               'delete_request_cancel_period': 'd',
               'delete_max_interval': 'd',
               'max_compaction_parallelism': 'i',
               'upload_parallelism': 'i',
               'compactor_ring': {'kvstore': {'store': 's',
                                              'prefix': 's',
                                              'consul': '@consul',
                                              'etcd': '@etcd',
                                              'multi': {'primary': 's',
                                                        'secondary': 's',
                                                        'mirror_enabled': 'b',
                                                        'mirror_timeout': 'd'}},
                                  'heartbeat_period': 'd',
                                  'heartbeat_timeout': 'd',
                                  'tokens_file_path': 's',
                                  'zone_awareness_enabled': 'b',
                                  'instance_id': 's',
                                  'instance_interface_names': 'ls',
                                  'instance_port': 'i',
                                  'instance_addr': 's',
                                  'instance_availability_zone': 's',
                                  'instance_enable_ipv6': 'b'},
               'tables_to_compact': 'i',
               'skip_latest_n_tables': 'i',
               'horizontal_scaling_mode': 's',
               'worker_config': {'num_sub_workers': 'i'},
               'jobs_config': {'deletion': {'deletion_manifest_store_prefix': 's',
                                            'chunk_processing_concurrency': 'i',
                                            'timeout': 'd',
                                            'max_retries': 'i'}},
               'deletion_marker_object_store_prefix': 's'},
 'consul': {'host': 's',
            'acl_token': 's',
            'http_client_timeout': 'd',
            'consistent_reads': 'b',
            'watch_rate_limit': 'f',
            'watch_burst_size': 'i',
            'cas_retry_delay': 'd'},
 'cos_storage_config': {'forcepathstyle': 'b',
                        'bucketnames': 's',
                        'endpoint': 's',
                        'region': 's',
                        'access_key_id': 's',
                        'secret_access_key': 's',
                        'http_config': {'idle_conn_timeout': 'd', 'response_header_timeout': 'd'},
                        'backoff_config': {'min_period': 'd', 'max_period': 'd', 'max_retries': 'i'},
                        'api_key': 's',
                        'service_instance_id': 's',
                        'auth_endpoint': 's',
                        'cr_token_file_path': 's',
                        'trusted_profile_name': 's',
                        'trusted_profile_id': 's'},
 'etcd': {'endpoints': 'ls',
          'dial_timeout': 'd',
          'max_retries': 'i',
          'tls_enabled': 'b',
          '<<': ['tls_config'],
          'username': 's',
          'password': 's'},
 'gcs_storage_config': {'bucket_name': 's',
                        'endpoint': 's',
                        'service_account': 's',
                        'chunk_buffer_size': 'i',
                        'request_timeout': 'd',
                        'enable_opencensus': 'b',
                        'enable_http2': 'b',
                        'enable_retries': 'b'},
 'grpc_client': {'max_recv_msg_size': 'i',
                 'max_send_msg_size': 'i',
                 'grpc_compression': 's',
                 'rate_limit': 'f',
                 'rate_limit_burst': 'i',
                 'backoff_on_ratelimits': 'b',
                 'backoff_config': {'min_period': 'd', 'max_period': 'd', 'max_retries': 'i'},
                 'initial_stream_window_size': 'i',
                 'initial_connection_window_size': 'i',
                 'tls_enabled': 'b',
                 '<<': ['tls_config'],
                 'connect_timeout': 'd',
                 'connect_backoff_base_delay': 'd',
                 'connect_backoff_max_delay': 'd',
                 'cluster_validation': {'label': 's'}},
 'ingester': {'lifecycler': {'ring': {'kvstore': {'store': 's',
                                                  'prefix': 's',
                                                  'consul': '@consul',
                                                  'etcd': '@etcd',
                                                  'multi': {'primary': 's',
                                                            'secondary': 's',
                                                            'mirror_enabled': 'b',
                                                            'mirror_timeout': 'd'}},
                                      'heartbeat_timeout': 'd',
                                      'replication_factor': 'i',
                                      'zone_awareness_enabled': 'b',
                                      'excluded_zones': 's'},
                             'num_tokens': 'i',
                             'heartbeat_period': 'd',
                             'heartbeat_timeout': 'd',
                             'observe_period': 'd',
                             'join_after': 'd',
                             'min_ready_duration': 'd',
                             'interface_names': 'ls',
                             'enable_inet6': 'b',
                             'final_sleep': 'd',
                             'tokens_file_path': 's',
                             'availability_zone': 's',
                             'unregister_on_shutdown': 'b',
                             'readiness_check_ring_health': 'b',
                             'address': 's',
                             'port': 'i',
                             'id': 's'},
              'concurrent_flushes': 'i',
              'flush_check_period': 'd',
              'flush_op_backoff': {'min_period': 'd', 'max_period': 'd', 'max_retries': 'i'},
              'flush_op_timeout': 'd',
              'chunk_retain_period': 'd',
              'chunk_idle_period': 'd',
              'chunk_block_size': 'i',
              'chunk_target_size': 'i',
              'chunk_encoding': 's',
              'max_chunk_age': 'd',
              'autoforget_unhealthy': 'b',
              'sync_period': 'd',
              'sync_min_utilization': 'f',
              'max_returned_stream_errors': 'i',
              'query_store_max_look_back_period': 'd',
              'wal': {'enabled': 'b',
                      'dir': 's',
                      'checkpoint_duration': 'd',
                      'flush_on_shutdown': 'b',
                      'replay_memory_ceiling': 'i',
                      'disk_full_threshold': 'f'},
              'index_shards': 'i',
              'max_dropped_streams': 'i',
              'shutdown_marker_path': 's',
              'owned_streams_check_interval': 'd',
              'delegate_stream_limits_enabled': 'b',
              'kafka_ingestion': {'enabled': 'b',
                                  'partition_ring': {'kvstore': {'store': 's',
                                                                 'prefix': 's',
                                                                 'consul': '@consul',
                                                                 'etcd': '@etcd',
                                                                 'multi': {'primary': 's',
                                                                           'secondary': 's',
                                                                           'mirror_enabled': 'b',
                                                                           'mirror_timeout': 'd'}},
                                                     'min_partition_owners_count': 'i',
                                                     'min_partition_owners_duration': 'd',
                                                     'delete_inactive_partition_after': 'd',
                                                     'shuffle_shard_cache_size': 'i'}}},
 'limits_config': {'ingestion_rate_strategy': 's',
                   'ingestion_rate_mb': 'f',
                   'ingestion_burst_size_mb': 'f',
                   'max_label_name_length': 'i',
                   'max_label_value_length': 'i',
                   'max_label_names_per_series': 'i',
                   'reject_old_samples': 'b',
                   'reject_old_samples_max_age': 'd',
                   'creation_grace_period': 'd',
                   'max_line_size': 'i',
                   'max_line_size_truncate': 'b',
                   'max_line_size_truncate_identifier': 's',
                   'increment_duplicate_timestamp': 'b',
                   'simulated_push_latency': 'd',
                   'enable_multi_variant_queries': 'b',
                   'discover_generic_fields': {'fields': '*'},
                   'discover_service_name': 'ls',
                   'discover_log_levels': 'b',
                   'log_level_fields': 'ls',
                   'log_level_from_json_max_depth': 'i',
                   'use_owned_stream_count': 'b',
                   'max_streams_per_user': 'i',
                   'max_global_streams_per_user': 'i',
                   'unordered_writes': 'b',
                   'per_stream_rate_limit': 'i',
                   'per_stream_rate_limit_burst': 'i',
                   'max_chunks_per_query': 'i',
                   'max_query_series': 'i',
                   'max_query_lookback': 'd',
                   'max_query_length': 'd',
                   'max_query_range': 'd',
                   'max_query_parallelism': 'i',
                   'tsdb_max_query_parallelism': 'i',
                   'tsdb_max_bytes_per_shard': 'i',
                   'tsdb_sharding_strategy': 's',
                   'tsdb_precompute_chunks': 'b',
                   'cardinality_limit': 'i',
                   'max_streams_matchers_per_query': 'i',
                   'max_concurrent_tail_requests': 'i',
                   'max_entries_limit_per_query': 'i',
                   'max_cache_freshness_per_query': 'd',
                   'max_metadata_cache_freshness': 'd',
                   'max_stats_cache_freshness': 'd',
                   'max_queriers_per_tenant': 'i',
                   'max_query_capacity': 'f',
                   'query_ready_index_num_days': 'i',
                   'query_timeout': 'd',
                   'split_queries_by_interval': 'd',
                   'split_metadata_queries_by_interval': 'd',
                   'split_recent_metadata_queries_by_interval': 'd',
                   'recent_metadata_query_window': 'd',
                   'split_instant_metric_queries_by_interval': 'd',
                   'engine_results_cache_time_bucket_interval': 'd',
                   'split_ingester_queries_by_interval': 'd',
                   'min_sharding_lookback': 'd',
                   'max_query_bytes_read': 'i',
                   'max_querier_bytes_read': 'i',
                   'volume_enabled': 'b',
                   'volume_max_series': 'i',
                   'ruler_max_rules_per_rule_group': 'i',
                   'ruler_max_rule_groups_per_tenant': 'i',
                   'ruler_tenant_shard_size': 'i',
                   'ruler_enable_wal_replay': 'b',
                   'ruler_remote_write_disabled': 'b',
                   'ruler_remote_write_url': 's',
                   'ruler_remote_write_timeout': 'd',
                   'ruler_remote_write_headers': '*',
                   'ruler_remote_write_relabel_configs': '*',
                   'ruler_remote_write_queue_capacity': 'i',
                   'ruler_remote_write_queue_min_shards': 'i',
                   'ruler_remote_write_queue_max_shards': 'i',
                   'ruler_remote_write_queue_max_samples_per_send': 'i',
                   'ruler_remote_write_queue_batch_send_deadline': 'd',
                   'ruler_remote_write_queue_min_backoff': 'd',
                   'ruler_remote_write_queue_max_backoff': 'd',
                   'ruler_remote_write_queue_retry_on_ratelimit': 'b',
                   'ruler_remote_write_sigv4_config': {'region': 's',
                                                       'access_key': 's',
                                                       'secret_key': 's',
                                                       'profile': 's',
                                                       'role_arn': 's'},
                   'ruler_remote_write_config': '*',
                   'ruler_remote_evaluation_timeout': 'd',
                   'ruler_remote_evaluation_max_response_size': 'i',
                   'deletion_mode': 's',
                   'retention_period': 'd',
                   'retention_stream': '*',
                   'per_tenant_override_config': 's',
                   'per_tenant_override_period': 'd',
                   'allow_deletes': 'b',
                   'shard_streams': {'enabled': 'b',
                                     'time_sharding_enabled': 'b',
                                     'time_sharding_ignore_recent': 'd',
                                     'logging_enabled': 'b',
                                     'desired_rate': 'i'},
                   'blocked_queries': '*',
                   'required_labels': 'ls',
                   'minimum_labels_number': 'i',
                   'index_gateway_shard_size': 'i',
                   'index_gateway_max_capacity': 'f',
                   'bloom_gateway_enable_filtering': 'b',
                   'bloom_build_max_builders': 'i',
                   'bloom_build_task_max_retries': 'i',
                   'bloom_build_builder_response_timeout': 'd',
                   'bloom_creation_enabled': 'b',
                   'bloom_planning_strategy': 's',
                   'bloom_split_series_keyspace_by': 'i',
                   'bloom_task_target_series_chunk_size': 'i',
                   'bloom_block_encoding': 's',
                   'bloom_prefetch_blocks': 'b',
                   'bloom_max_block_size': 'i',
                   'bloom_max_bloom_size': 'i',
                   'allow_structured_metadata': 'b',
                   'max_structured_metadata_size': 'i',
                   'max_structured_metadata_entries_count': 'i',
                   'otlp_config': {'resource_attributes': {'ignore_defaults': 'b',
                                                           'attributes_config': ['@attributes_config']},
                                   'scope_attributes': ['@attributes_config'],
                                   'log_attributes': ['@attributes_config'],
                                   'severity_text_as_label': 'b'},
                   'block_ingestion_policy_until': '*',
                   'block_ingestion_until': 's',
                   'block_ingestion_status_code': 'i',
                   'enforced_labels': 'ls',
                   'policy_enforced_labels': '*',
                   'policy_stream_mapping': '*',
                   'ingestion_partitions_tenant_shard_size': 'i',
                   'shard_aggregations': 'ls',
                   'pattern_ingester_tokenizable_json_fields_default': 's',
                   'pattern_ingester_tokenizable_json_fields_append': 's',
                   'pattern_ingester_tokenizable_json_fields_delete': 's',
                   'metric_aggregation_enabled': 'b',
                   'pattern_persistence_enabled': 'b',
                   'pattern_persistence_granularity': 'd',
                   'pattern_rate_threshold': 'f',
                   's3_sse_type': 's',
                   's3_sse_kms_key_id': 's',
                   's3_sse_kms_encryption_context': 's',
                   'max_scan_task_parallelism': 'i',
                   'debug_engine_tasks': 'b',
                   'debug_engine_streams': 'b'},
 'local_storage_config': {'directory': 's'},
 'memberlist': {'node_name': 's',
                'randomize_node_name': 'b',
                'stream_timeout': 'd',
                'retransmit_factor': 'i',
                'pull_push_interval': 'd',
                'gossip_interval': 'd',
                'gossip_nodes': 'i',
                'gossip_to_dead_nodes_time': 'd',
                'dead_node_reclaim_time': 'd',
                'compression_enabled': 'b',
                'notify_interval': 'd',
                'advertise_addr': 's',
                'advertise_port': 'i',
                'cluster_label': 's',
                'cluster_label_verification_disabled': 'b',
                'join_members': 'ls',
                'min_join_backoff': 'd',
                'max_join_backoff': 'd',
                'max_join_retries': 'i',
                'abort_if_cluster_fast_join_fails': 'b',
                'abort_if_cluster_fast_join_fails_min_nodes': 'i',
                'abort_if_cluster_join_fails': 'b',
                'rejoin_interval': 'd',
                'rejoin_seed_nodes': 'ls',
                'left_ingesters_timeout': 'd',
                'obsolete_entries_timeout': 'd',
                'leave_timeout': 'd',
                'broadcast_timeout_for_local_updates_on_shutdown': 'd',
                'message_history_buffer_bytes': 'i',
                'watch_prefix_buffer_size': 'i',
                'bind_addr': 'ls',
                'bind_port': 'i',
                'packet_dial_timeout': 'd',
                'packet_write_timeout': 'd',
                'max_concurrent_writes': 'i',
                'acquire_writer_timeout': 'd',
                'tls_enabled': 'b',
                '<<': ['tls_config'],
                'zone_aware_routing': {'enabled': 'b', 'instance_availability_zone': 's', 'role': 's'}},
 'named_stores_config': {'aws': '*',
                         'azure': '*',
                         'bos': '*',
                         'filesystem': '*',
                         'gcs': '*',
                         'alibabacloud': '*',
                         'swift': '*',
                         'cos': '*'},
 'period_config': {'from': 's',
                   'store': 's',
                   'object_store': 's',
                   'schema': 's',
                   'index': {'path_prefix': 's', 'prefix': 's', 'period': 'd', 'tags': 'mss'},
                   'chunks': {'prefix': 's', 'period': 'd', 'tags': 'mss'},
                   'row_shards': 'i'},
 'ruler': {'external_url': 's',
           'datasource_uid': 's',
           'external_labels': {},
           'ruler_client': '@grpc_client',
           'evaluation_interval': 'd',
           'poll_interval': 'd',
           'storage': {'type': 's',
                       'azure': '@azure_storage_config',
                       'alibabacloud': '@alibabacloud_storage_config',
                       'gcs': '@gcs_storage_config',
                       's3': '@s3_storage_config',
                       'bos': '@bos_storage_config',
                       'swift': '@swift_storage_config',
                       'cos': '@cos_storage_config',
                       'local': {'directory': 's'}},
           'rule_path': 's',
           'alertmanager_url': 's',
           'enable_alertmanager_discovery': 'b',
           'alertmanager_refresh_interval': 'd',
           'enable_alertmanager_v2': 'b',
           'alert_relabel_configs': '*',
           'notification_queue_capacity': 'i',
           'notification_timeout': 'd',
           'alertmanager_client': {'<<': ['tls_config'],
                                   'basic_auth_username': 's',
                                   'basic_auth_password': 's',
                                   'type': 's',
                                   'credentials': 's',
                                   'credentials_file': 's'},
           'for_outage_tolerance': 'd',
           'for_grace_period': 'd',
           'resend_delay': 'd',
           'enable_sharding': 'b',
           'sharding_strategy': 's',
           'sharding_algo': 's',
           'search_pending_for': 'd',
           'ring': {'kvstore': {'store': 's',
                                'prefix': 's',
                                'consul': '@consul',
                                'etcd': '@etcd',
                                'multi': {'primary': 's',
                                          'secondary': 's',
                                          'mirror_enabled': 'b',
                                          'mirror_timeout': 'd'}},
                    'heartbeat_period': 'd',
                    'heartbeat_timeout': 'd',
                    'instance_interface_names': 'ls',
                    'num_tokens': 'i'},
           'flush_period': 'd',
           'enable_api': 'b',
           'enabled_tenants': 's',
           'disabled_tenants': 's',
           'query_stats_enabled': 'b',
           'disable_rule_group_label': 'b',
           'wal': {'dir': 's', 'truncate_frequency': 'd', 'min_age': 'd', 'max_age': 'd'},
           'wal_cleaner': {'min_age': 'd', 'period': 'd'},
           'remote_write': {'client': '*',
                            'clients': '*',
                            'enabled': 'b',
                            'config_refresh_period': 'd',
                            'add_org_id_header': 'b'},
           'evaluation': {'mode': 's',
                          'max_jitter': 'd',
                          'query_frontend': {'address': 's', 'tls_enabled': 'b', '<<': ['tls_config']}}},
 's3_storage_config': {'s3': 's',
                       's3forcepathstyle': 'b',
                       'bucketnames': 's',
                       'endpoint': 's',
                       'region': 's',
                       'access_key_id': 's',
                       'secret_access_key': 's',
                       'session_token': 's',
                       'insecure': 'b',
                       'chunk_delimiter': 's',
                       'http_config': {'timeout': 'd',
                                       'idle_conn_timeout': 'd',
                                       'response_header_timeout': 'd',
                                       'insecure_skip_verify': 'b',
                                       'ca_file': 's'},
                       'signature_version': 's',
                       'storage_class': 's',
                       'sse': {'type': 's', 'kms_key_id': 's', 'kms_encryption_context': 's'},
                       'backoff_config': {'min_period': 'd', 'max_period': 'd', 'max_retries': 'i'},
                       'disable_dualstack': 'b'},
 'schema_config': {'configs': ['@period_config']},
 'server': {'http_listen_network': 's',
            'http_listen_address': 's',
            'http_listen_port': 'i',
            'http_listen_conn_limit': 'i',
            'grpc_listen_network': 's',
            'grpc_listen_address': 's',
            'grpc_listen_port': 'i',
            'grpc_listen_conn_limit': 'i',
            'grpc_collect_max_streams_by_conn': 'b',
            'proxy_protocol_enabled': 'b',
            'tls_cipher_suites': 's',
            'tls_min_version': 's',
            'http_tls_config': {'cert': 's',
                                'key': 's',
                                'client_ca': 's',
                                'cert_file': 's',
                                'key_file': 's',
                                'client_auth_type': 's',
                                'client_ca_file': 's'},
            'grpc_tls_config': {'cert': 's',
                                'key': 's',
                                'client_ca': 's',
                                'cert_file': 's',
                                'key_file': 's',
                                'client_auth_type': 's',
                                'client_ca_file': 's'},
            'register_instrumentation': 'b',
            'report_grpc_codes_in_instrumentation_label_enabled': 'b',
            'graceful_shutdown_timeout': 'd',
            'http_server_read_timeout': 'd',
            'http_server_read_header_timeout': 'd',
            'http_server_write_timeout': 'd',
            'http_server_idle_timeout': 'd',
            'http_log_closed_connections_without_response_enabled': 'b',
            'grpc_server_max_recv_msg_size': 'i',
            'grpc_server_max_send_msg_size': 'i',
            'grpc_server_max_concurrent_streams': 'i',
            'grpc_server_max_connection_idle': 'd',
            'grpc_server_max_connection_age': 'd',
            'grpc_server_max_connection_age_grace': 'd',
            'grpc_server_keepalive_time': 'd',
            'grpc_server_keepalive_timeout': 'd',
            'grpc_server_min_time_between_pings': 'd',
            'grpc_server_ping_without_stream_allowed': 'b',
            'grpc_server_num_workers': 'i',
            'grpc_server_stats_tracking_enabled': 'b',
            'grpc_server_recv_buffer_pools_enabled': 'b',
            'log_format': 's',
            'log_level': 's',
            'log_source_ips_enabled': 'b',
            'log_source_ips_full': 'b',
            'log_source_ips_header': 's',
            'log_source_ips_regex': 's',
            'log_request_headers': 'b',
            'log_request_at_info_level_enabled': 'b',
            'log_request_exclude_headers_list': 's',
            'trace_request_headers': 'b',
            'trace_request_exclude_headers_list': 's',
            'http_path_prefix': 's',
            'cluster_validation': {'label': 's',
                                   'additional_labels': 's',
                                   'grpc': {'enabled': 'b', 'soft_validation': 'b'},
                                   'http': {'enabled': 'b',
                                            'soft_validation': 'b',
                                            'excluded_paths': 's',
                                            'excluded_user_agents': 's'}},
            'create_new_traces': 'b'},
 'storage_config': {'alibabacloud': '@alibabacloud_storage_config',
                    'aws': '@aws_storage_config',
                    'azure': '@azure_storage_config',
                    'bos': '@bos_storage_config',
                    'bigtable': {'project': 's',
                                 'instance': 's',
                                 'grpc_client_config': '@grpc_client',
                                 'table_cache_enabled': 'b',
                                 'table_cache_expiration': 'd'},
                    'gcs': '@gcs_storage_config',
                    'cassandra': {'addresses': 's',
                                  'port': 'i',
                                  'keyspace': 's',
                                  'consistency': 's',
                                  'replication_factor': 'i',
                                  'disable_initial_host_lookup': 'b',
                                  'SSL': 'b',
                                  'host_verification': 'b',
                                  'host_selection_policy': 's',
                                  'CA_path': 's',
                                  'tls_cert_path': 's',
                                  'tls_key_path': 's',
                                  'auth': 'b',
                                  'username': 's',
                                  'password': 's',
                                  'password_file': 's',
                                  'custom_authenticators': 'ls',
                                  'timeout': 'd',
                                  'connect_timeout': 'd',
                                  'reconnect_interval': 'd',
                                  'max_retries': 'i',
                                  'retry_max_backoff': 'd',
                                  'retry_min_backoff': 'd',
                                  'query_concurrency': 'i',
                                  'num_connections': 'i',
                                  'convict_hosts_on_failure': 'b',
                                  'table_options': 's'},
                    'boltdb': {'directory': 's'},
                    'filesystem': '@local_storage_config',
                    'swift': '@swift_storage_config',
                    'grpc_store': {'server_address': 's'},
                    'hedging': {'at': 'd', 'up_to': 'i', 'max_per_second': 'i'},
                    'named_stores': '@named_stores_config',
                    'cos': '@cos_storage_config',
                    'index_cache_validity': 'd',
                    'congestion_control': {'enabled': 'b',
                                           'controller': {'strategy': 's',
                                                          'aimd': {'start': 'i',
                                                                   'upper_bound': 'i',
                                                                   'backoff_factor': 'f'}},
                                           'retry': {'strategy': 's', 'limit': 'i'},
                                           'hedging': {'config': {'at': 'd', 'up_to': 'i', 'max_per_second': 'i'},
                                                       'strategy': 's'}},
                    'object_prefix': 's',
                    'index_queries_cache_config': '@cache_config',
                    'disable_broad_index_queries': 'b',
                    'max_parallel_get_chunk': 'i',
                    'use_thanos_objstore': 'b',
                    'object_store': {'<<': ['thanos_object_store_config'],
                                     'named_stores': {'azure': '*',
                                                      'filesystem': '*',
                                                      'gcs': '*',
                                                      's3': '*',
                                                      'swift': '*'}},
                    'max_chunk_batch_size': 'i',
                    'boltdb_shipper': {'active_index_directory': 's',
                                       'cache_location': 's',
                                       'cache_ttl': 'd',
                                       'resync_interval': 'd',
                                       'query_ready_num_days': 'i',
                                       'index_gateway_client': {'grpc_client_config': '@grpc_client',
                                                                'server_address': 's',
                                                                'log_gateway_requests': 'b',
                                                                'time_based_sharding_buckets': 'ls'},
                                       'ingestername': 's',
                                       'mode': 's',
                                       'ingesterdbretainperiod': 'd',
                                       'build_per_tenant_index': 'b'},
                    'tsdb_shipper': {'active_index_directory': 's',
                                     'cache_location': 's',
                                     'cache_ttl': 'd',
                                     'resync_interval': 'd',
                                     'query_ready_num_days': 'i',
                                     'index_gateway_client': {'grpc_client_config': '@grpc_client',
                                                              'server_address': 's',
                                                              'log_gateway_requests': 'b',
                                                              'time_based_sharding_buckets': 'ls'},
                                     'ingestername': 's',
                                     'mode': 's',
                                     'ingesterdbretainperiod': 'd'},
                    'bloom_shipper': {'working_directory': 's',
                                      'max_query_page_size': 'i',
                                      'download_parallelism': 'i',
                                      'blocks_cache': {'soft_limit': 'i', 'hard_limit': 'i', 'ttl': 'd'},
                                      'metas_cache': '@cache_config',
                                      'metas_lru_cache': {'enabled': 'b',
                                                          'max_size_mb': 'i',
                                                          'max_size_items': 'i',
                                                          'ttl': 'd'}}},
 'swift_storage_config': {'auth_version': 'i',
                          'auth_url': 's',
                          'internal': 'b',
                          'username': 's',
                          'user_domain_name': 's',
                          'user_domain_id': 's',
                          'user_id': 's',
                          'password': 's',
                          'domain_id': 's',
                          'domain_name': 's',
                          'project_id': 's',
                          'project_name': 's',
                          'project_domain_id': 's',
                          'project_domain_name': 's',
                          'region_name': 's',
                          'container_name': 's',
                          'max_retries': 'i',
                          'connect_timeout': 'd',
                          'request_timeout': 'd',
                          'http': {'tls_ca_path': 's'}},
 'thanos_object_store_config': {'s3': {'endpoint': 's',
                                       'region': 's',
                                       'bucket_name': 's',
                                       'secret_access_key': 's',
                                       'access_key_id': 's',
                                       'session_token': 's',
                                       'insecure': 'b',
                                       'list_objects_version': 's',
                                       'bucket_lookup_type': 'i',
                                       'dualstack_enabled': 'b',
                                       'storage_class': 's',
                                       'native_aws_auth_enabled': 'b',
                                       'part_size': 'i',
                                       'send_content_md5': 'b',
                                       'sts_endpoint': 's',
                                       'max_retries': 'i',
                                       'sse': {'type': 's', 'kms_key_id': 's', 'kms_encryption_context': 's'},
                                       'http': {'idle_conn_timeout': 'd',
                                                'response_header_timeout': 'd',
                                                'insecure_skip_verify': 'b',
                                                'tls_handshake_timeout': 'd',
                                                'expect_continue_timeout': 'd',
                                                'max_idle_connections': 'i',
                                                'max_idle_connections_per_host': 'i',
                                                'max_connections_per_host': 'i',
                                                'tls_ca_path': 's',
                                                'tls_cert_path': 's',
                                                'tls_key_path': 's',
                                                'tls_server_name': 's'},
                                       'trace': {'enabled': 'b'}},
                                'gcs': {'bucket_name': 's',
                                        'service_account': 's',
                                        'chunk_buffer_size': 'i',
                                        'max_retries': 'i'},
                                'azure': {'account_name': 's',
                                          'account_key': 's',
                                          'connection_string': 's',
                                          'container_name': 's',
                                          'endpoint_suffix': 's',
                                          'max_retries': 'i',
                                          'user_assigned_id': 's',
                                          'chunk_delimiter': 's'},
                                'swift': {'application_credential_id': 's',
                                          'application_credential_name': 's',
                                          'application_credential_secret': 's',
                                          'auth_version': 'i',
                                          'auth_url': 's',
                                          'username': 's',
                                          'user_domain_name': 's',
                                          'user_domain_id': 's',
                                          'user_id': 's',
                                          'password': 's',
                                          'domain_id': 's',
                                          'domain_name': 's',
                                          'project_id': 's',
                                          'project_name': 's',
                                          'project_domain_id': 's',
                                          'project_domain_name': 's',
                                          'region_name': 's',
                                          'container_name': 's',
                                          'max_retries': 'i',
                                          'connect_timeout': 'd',
                                          'request_timeout': 'd',
                                          'http': {'idle_conn_timeout': 'd',
                                                   'response_header_timeout': 'd',
                                                   'insecure_skip_verify': 'b',
                                                   'tls_handshake_timeout': 'd',
                                                   'expect_continue_timeout': 'd',
                                                   'max_idle_connections': 'i',
                                                   'max_idle_connections_per_host': 'i',
                                                   'max_connections_per_host': 'i',
                                                   'tls_ca_path': 's',
                                                   'tls_cert_path': 's',
                                                   'tls_key_path': 's',
                                                   'tls_server_name': 's'}},
                                'filesystem': {'dir': 's'},
                                'alibaba': {'endpoint': 's',
                                            'bucket': 's',
                                            'access_key_id': 's',
                                            'access_key_secret': 's'},
                                'bos': {'bucket': 's', 'endpoint': 's', 'access_key': 's', 'secret_key': 's'},
                                'storage_prefix': 's'},
 'tls_config': {'tls_cert_path': 's',
                'tls_key_path': 's',
                'tls_ca_path': 's',
                'tls_server_name': 's',
                'tls_insecure_skip_verify': 'b',
                'tls_cipher_suites': 's',
                'tls_min_version': 's'}}

# Go type names for the blocks yaml.v2 names in its errors.
TYPE_NAMES = {
    "ROOT": "loki.ConfigWrapper", "server": "server.Config", "common": "common.Config",
    "memberlist": "memberlist.KVConfig", "schema_config": "config.SchemaConfig",
    "period_config": "config.PeriodConfig", "storage_config": "storage.Config",
    "compactor": "compactor.Config", "limits_config": "validation.Limits", "ruler": "ruler.Config",
    "ingester": "ingester.Config", "analytics": "analytics.Config", "s3_storage_config": "aws.S3Config",
    "aws_storage_config": "aws.StorageConfig", "tls_config": "tls.ClientConfig",
    "grpc_client": "grpcclient.Config", "consul": "consul.Config", "etcd": "etcd.Config",
}

TARGETS = ("all", "compactor", "distributor", "ingester", "querier", "query-scheduler", "ingester-querier",
           "query-frontend", "index-gateway", "ruler", "table-manager", "read", "write", "backend",
           "pattern-ingester", "bloom-planner", "bloom-builder", "bloom-gateway", "overrides-exporter")
LOG_LEVELS = ("debug", "info", "warn", "error")
OBJECT_STORES = ("aws", "s3", "azure", "gcs", "alibabacloud", "bos", "cos", "swift", "filesystem")


def _duration(text: str) -> float:
    """Loki's config accepts Go durations and Prometheus model durations (``31d``)."""
    try:
        return fw.parse_go_duration(text)
    except ValueError:
        return fw.parse_model_duration(text)


def _build(spec: Any, name: str, cache: Dict[str, fw.Schema]) -> fw.Schema:
    if isinstance(spec, list):
        return fw.List(_build(spec[0], name, cache))
    if isinstance(spec, dict):
        fields: Dict[str, fw.Schema] = {}
        for inline in spec.get("<<", []):
            inner = _block(inline, cache)
            fields.update(inner.fields)
        for key, sub in spec.items():
            if key != "<<":
                fields[key] = _build(sub, "%s.%s" % (name, key), cache)
        return fw.Struct(name, fields)
    if spec.startswith("@"):
        return _block(spec[1:], cache)
    return {
        "s": fw.Str, "i": fw.Int, "b": fw.Bool, "f": fw.Float,
        "d": lambda: fw.Duration(keep_text=True, parser=_duration),
        "ls": lambda: fw.List(fw.Str()), "mss": lambda: fw.MapOf(fw.Str()),
    }.get(spec, fw.Any_)()


def _block(name: str, cache: Dict[str, fw.Schema]) -> fw.Schema:
    if name not in cache:
        cache[name] = _build(SCHEMA_BLOCKS[name], TYPE_NAMES.get(name, name), cache)
    return cache[name]


CONFIG_SCHEMA = _block("ROOT", {})


# ---------------------------------------------------------------------------
# version
# ---------------------------------------------------------------------------

def _info() -> Dict[str, str]:
    info = fw.build_info()
    if info.get("component") != "loki":
        info.update(version=DEFAULT_VERSION, goversion=DEFAULT_GOVERSION, revision="0" * 40)
    return info


def version_banner() -> str:
    info = _info()
    goos, goarch = fw.go_platform()
    return ("loki, version %s (branch: %s, revision: %s)\n"
            "  build user:       %s\n  build date:       %s\n  go version:       %s\n"
            "  platform:         %s/%s\n  tags:             netgo"
            % (info["version"], info["branch"], info["revision"][:9], info["build_user"], info["build_date"],
               info["goversion"], goos, goarch))


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------

def make_flags() -> fw.FlagSet:
    fs = fw.FlagSet("loki", output=sys.stderr, usage=lambda _fs: None)
    fs.bool("version", False, "Print this builds version information")
    fs.bool("verify-config", False, "Verify config file and exits")
    fs.bool("print-config-stderr", False, "Dump the entire Loki config object to stderr")
    fs.bool("list-targets", False, "List available targets")
    fs.bool("log-config-reverse-order", False, "Dump the entire Loki config object at Info log level with the "
            "order reversed, reversing the order makes viewing the entries easier in Grafana.")
    fs.string("config.file", "config.yaml,config/config.yaml", "configuration file to load, can be a comma "
              "separated list of paths, first existing file will be used")
    fs.bool("config.expand-env", False, "Expands ${var} in config according to the values of the environment "
            "variables.")
    fs.string_list("target", ["all"], "A comma-separated list of components to run.", csv=True)
    fs.bool("auth.enabled", True, "Enables authentication through the X-Scope-OrgID header, which must be "
            "present if true. If false, the OrgID will always be set to 'fake'.")
    fs.string("log.level", "info", "Only log messages with the given severity or above. Valid levels: "
              "[debug, info, warn, error]")
    fs.int("server.http-listen-port", 3100, "HTTP server listen port.")
    fs.int("server.grpc-listen-port", 9095, "gRPC server listen port.")
    fs.int("memberlist.bind-port", 7946, "Port to listen on for gossip messages.")
    return fs


def parse_args(argv: List[str]) -> fw.FlagSet:
    fs = make_flags()
    try:
        fs.parse(argv)
    except fw.FlagError:
        sys.stderr.write("Run with -help to get list of available parameters\n")
        raise fw.StandinExit(2)
    except Exception as exc:  # the framework's -h/-help signal
        if type(exc).__name__ != "_Help":
            raise
        sys.stdout.write("Usage of loki:\n" + fs.defaults_text())
        sys.stdout.flush()
        raise fw.StandinExit(2)
    return fs


# ---------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------

class LokiConfigError(Exception):
    pass


def load(fs: fw.FlagSet) -> Dict[str, Any]:
    expand = bool(fs["config.expand-env"])
    paths = [p.strip() for p in fs["config.file"].split(",")]
    for path in paths:
        if os.path.exists(path):
            try:
                cfg = fw.load_config(path, CONFIG_SCHEMA, fill_defaults=False, expand=expand)
            except fw.ConfigError as exc:
                msg = str(exc)
                if not expand:
                    msg += ". Use `-config.expand-env=true` flag if you want to expand environment variables " \
                           "in your config file"
                raise LokiConfigError(msg) from None
            except OSError as exc:
                raise LokiConfigError("%s: %s" % (path, exc.strerror or exc)) from None
            return cfg or {}
    raise LokiConfigError("%s does not exist, set config.file for custom config path" % fs["config.file"])


def g(cfg: Any, dotted: str, default: Any = None) -> Any:
    return fw.get_path(cfg, dotted, default)


def effective(cfg: Dict[str, Any], fs: fw.FlagSet) -> Dict[str, Any]:
    """The values the stand-in acts on: config file, then command-line flags on top (like dskit)."""
    target = fs["target"] if fs.is_set("target") else [t.strip() for t in str(cfg.get("target") or "all").split(",")]
    auth = fs["auth.enabled"] if fs.is_set("auth.enabled") else cfg.get("auth_enabled", True)
    return {
        "target": [t for t in target if t],
        "auth_enabled": True if auth is None else bool(auth),
        "log_level": fs["log.level"] if fs.is_set("log.level") else g(cfg, "server.log_level", "info"),
        "http_address": g(cfg, "server.http_listen_address", ""),
        "http_port": fs["server.http-listen-port"] if fs.is_set("server.http-listen-port")
        else g(cfg, "server.http_listen_port", 3100),
        "grpc_address": g(cfg, "server.grpc_listen_address", ""),
        "grpc_port": fs["server.grpc-listen-port"] if fs.is_set("server.grpc-listen-port")
        else g(cfg, "server.grpc_listen_port", 9095),
        "memberlist_port": fs["memberlist.bind-port"] if fs.is_set("memberlist.bind-port")
        else g(cfg, "memberlist.bind_port", 7946),
    }


def validate(cfg: Dict[str, Any], eff: Dict[str, Any]) -> None:
    errors = []
    for t in eff["target"]:
        if t not in TARGETS:
            errors.append("unrecognised module name: %s" % t)
    if eff["log_level"] not in LOG_LEVELS:
        errors.append('unrecognized log level "%s"' % eff["log_level"])
    periods = g(cfg, "schema_config.configs") or []
    if not periods:
        errors.append("invalid schema config: must specify at least one schema configuration")
    named = set()
    for kind in (g(cfg, "storage_config.named_stores") or {}).values():
        named.update((kind or {}).keys())
    for i, p in enumerate(periods):
        p = p or {}
        frm = p.get("from")
        try:
            _dt.datetime.strptime(str(frm), "%Y-%m-%d")
        except ValueError:
            errors.append('invalid schema config: period %d: "from" must be a date in YYYY-MM-DD format, got %r'
                          % (i, frm))
        if p.get("store") not in ("tsdb", "boltdb-shipper"):
            errors.append("invalid schema config: period %d: unsupported index store %r" % (i, p.get("store")))
        if p.get("object_store") not in OBJECT_STORES and p.get("object_store") not in named:
            errors.append("invalid schema config: period %d: unrecognized object storage client %r"
                          % (i, p.get("object_store")))
        schema = str(p.get("schema") or "")
        if schema not in ("v%d" % n for n in range(9, 14)):
            errors.append("invalid schema config: period %d: invalid schema version %r" % (i, schema))
        elif p.get("store") == "tsdb" and int(schema[1:]) < 12:
            errors.append("invalid schema config: period %d: tsdb needs schema v12 or newer" % i)
        period = g(p, "index.period", "24h")
        if p.get("store") in ("tsdb", "boltdb-shipper") and _duration(str(period)) != 86400:
            errors.append("invalid schema config: period %d: index period must be 24h for %s"
                          % (i, p.get("store")))
    if g(cfg, "compactor.retention_enabled", False) and not g(cfg, "compactor.delete_request_store"):
        errors.append("compactor.delete-request-store should be configured when retention is enabled")
    rf = g(cfg, "common.replication_factor")
    if rf is not None and rf < 1:
        errors.append("invalid replication factor %d" % rf)
    if errors:
        raise LokiConfigError("; ".join(errors))


def s3_targets(cfg: Dict[str, Any]) -> List[Tuple[str, Dict[str, Any]]]:
    """(bucket, s3 config) for every S3 bucket the configured stores use."""
    out: List[Tuple[str, Dict[str, Any]]] = []
    stores = {str((p or {}).get("object_store")) for p in (g(cfg, "schema_config.configs") or [])}
    s3cfg = g(cfg, "storage_config.aws") or g(cfg, "common.storage.s3")
    if s3cfg and stores & {"aws", "s3"}:
        for bucket in str(s3cfg.get("bucketnames") or "").split(","):
            if bucket.strip():
                out.append((bucket.strip(), s3cfg))
    if g(cfg, "ruler.storage.type") == "s3":
        rcfg = g(cfg, "ruler.storage.s3") or g(cfg, "common.storage.s3") or {}
        for bucket in str(rcfg.get("bucketnames") or "").split(","):
            if bucket.strip():
                out.append((bucket.strip(), rcfg))
    return out


def masked(cfg: Any) -> Any:
    if isinstance(cfg, dict):
        return {k: ("********" if k in ("secret_access_key", "password", "session_token") and v else masked(v))
                for k, v in cfg.items()}
    if isinstance(cfg, list):
        return [masked(v) for v in cfg]
    return cfg


# ---------------------------------------------------------------------------
# memberlist (a TCP port that tells who answers; peers probe each other)
# ---------------------------------------------------------------------------

class Memberlist:
    def __init__(self, log: fw.Logger, cfg: Dict[str, Any], port: int, http_port: int, grpc_port: int):
        self.log = log
        name = g(cfg, "memberlist.node_name") or socket.gethostname()
        if g(cfg, "memberlist.randomize_node_name", True):
            name += "-" + "".join(random.choice(string.hexdigits[:16]) for _ in range(4))
        self.name = name
        self.port = port
        self.advertise = g(cfg, "memberlist.advertise_addr") or g(cfg, "common.instance_addr") or ""
        self.advertise_port = g(cfg, "memberlist.advertise_port") or port
        self.label = g(cfg, "memberlist.cluster_label", "") or ""
        self.join = [m.split("+", 1)[-1] for m in (g(cfg, "memberlist.join_members") or [])]
        self.bind = g(cfg, "memberlist.bind_addr") or [""]
        self.info = {"name": self.name, "addr": self.advertise, "port": self.advertise_port,
                     "cluster_label": self.label, "http_port": http_port, "grpc_port": grpc_port}
        self.members: Dict[str, Dict[str, Any]] = {self.name: dict(self.info, state="alive")}
        self._socks: List[socket.socket] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> None:
        for addr in self.bind:
            fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
            sock = socket.socket(fam, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((addr or "0.0.0.0", self.port))
            except OSError as exc:
                sock.close()
                raise OSError("failed to create memberlist: Could not set up network transport: failed to obtain "
                              "an address: Failed to start TCP listener on %s port %d: listen tcp %s:%d: bind: %s"
                              % (addr or "0.0.0.0", self.port, addr or "0.0.0.0", self.port,
                                 (exc.strerror or str(exc)).lower())) from None
            sock.listen(64)
            sock.settimeout(0.5)
            self._socks.append(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True, name="memberlist").start()
        threading.Thread(target=self._probe_loop, daemon=True, name="memberlist-join").start()

    def _serve(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except (socket.timeout, OSError):
                continue
            try:
                conn.sendall((json.dumps(self.info) + "\n").encode())
            except OSError:
                pass
            finally:
                conn.close()

    def _probe(self, member: str) -> Optional[Dict[str, Any]]:
        try:
            host, port = fw.parse_listen_address(member, default_port=self.port)
            with socket.create_connection((host, port), timeout=1.0) as conn:
                conn.settimeout(1.0)
                data = b""
                while not data.endswith(b"\n") and len(data) < 4096:
                    chunk = conn.recv(1024)
                    if not chunk:
                        break
                    data += chunk
            info = json.loads(data.decode() or "null")
            return info if isinstance(info, dict) else None
        except (OSError, ValueError):
            return None

    def _probe_loop(self) -> None:
        while not self._stop.is_set():
            seen = {self.name: dict(self.info, state="alive")}
            for member in self.join:
                info = self._probe(member)
                if info is None or info.get("name") == self.name:
                    continue
                if (info.get("cluster_label") or "") != self.label:
                    self.log.warn("ignoring packet from a node with a different cluster label", member=member,
                                  label=info.get("cluster_label"))
                    continue
                seen[info["name"]] = dict(info, state="alive", addr=info.get("addr") or member.rsplit(":", 1)[0])
            with self._lock:
                self.members = seen
            self._stop.wait(2.0)

    def snapshot(self) -> List[Dict[str, Any]]:
        with self._lock:
            return [self.members[k] for k in sorted(self.members)]

    def stop(self) -> None:
        self._stop.set()
        for sock in self._socks:
            sock.close()


class TCPPort:
    """A bare listener for the gRPC port (accepts and closes connections)."""

    def __init__(self, address: str, port: int):
        self.address, self.port = address, port
        self._sock: Optional[socket.socket] = None
        self._stop = threading.Event()

    def start(self) -> None:
        host = self.address or "0.0.0.0"
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, self.port))
        except OSError as exc:
            sock.close()
            raise OSError("listen tcp %s:%d: bind: %s" % (self.address, self.port,
                                                        (exc.strerror or str(exc)).lower())) from None
        sock.listen(64)
        sock.settimeout(0.5)
        self._sock = sock

        def serve():
            while not self._stop.is_set():
                try:
                    conn, _ = sock.accept()
                    conn.close()
                except (socket.timeout, OSError):
                    continue
        threading.Thread(target=serve, daemon=True, name="grpc").start()

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()


# ---------------------------------------------------------------------------
# HTTP API
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# received logs: OTLP and push API in, a LogQL subset out
# ---------------------------------------------------------------------------

# Loki 3.x distributor.otlp_config: the resource attributes that become index labels by default
DEFAULT_INDEX_LABELS = (
    "service.name", "service.namespace", "service.instance.id", "deployment.environment",
    "deployment.environment.name", "cloud.region", "cloud.availability_zone", "k8s.cluster.name",
    "k8s.namespace.name", "k8s.pod.name", "k8s.container.name", "container.name", "k8s.replicaset.name",
    "k8s.deployment.name", "k8s.statefulset.name", "k8s.daemonset.name", "k8s.cronjob.name", "k8s.job.name")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def otlp_label_name(name: str) -> str:
    """Prometheus-style normalisation Loki applies to OTLP attribute names."""
    out = re.sub(r"[^a-zA-Z0-9_]", "_", name)
    return "_" + out if out[:1].isdigit() else out


def _level_of(number: int, text: str) -> str:
    if number:  # OTLP severity number ranges
        for upper, level in ((4, "trace"), (8, "debug"), (12, "info"), (16, "warn"), (20, "error"), (24, "fatal")):
            if number <= upper:
                return level
    return text.lower() if text else ""


def otlp_entries(doc: Dict[str, Any]) -> List[Tuple[Dict[str, str], int, str, Dict[str, str]]]:
    """(stream labels, ns timestamp, line, structured metadata) of an ExportLogsServiceRequest, the way
    Loki's OTLP endpoint maps them with the default otlp_config."""
    out = []
    now = time.time_ns()
    for res in doc.get("resourceLogs") or []:
        rattrs = otlp.attributes((res.get("resource") or {}).get("attributes"))
        labels: Dict[str, str] = {}
        res_meta: Dict[str, str] = {}
        for k, v in rattrs.items():
            (labels if k in DEFAULT_INDEX_LABELS else res_meta)[otlp_label_name(k)] = otlp.string_value(v)
        labels.setdefault("service_name", "unknown_service")
        for scope_logs in res.get("scopeLogs") or []:
            scope = scope_logs.get("scope") or {}
            scope_meta = {otlp_label_name(k): otlp.string_value(v)
                          for k, v in otlp.attributes(scope.get("attributes")).items()}
            if scope.get("name"):
                scope_meta["scope_name"] = scope["name"]
            if scope.get("version"):
                scope_meta["scope_version"] = scope["version"]
            for rec in scope_logs.get("logRecords") or []:
                meta = dict(res_meta)
                meta.update(scope_meta)
                meta.update({otlp_label_name(k): otlp.string_value(v)
                             for k, v in otlp.attributes(rec.get("attributes")).items()})
                for key, name in (("traceId", "trace_id"), ("spanId", "span_id"), ("severityText", "severity_text")):
                    if rec.get(key):
                        meta[name] = rec[key]
                if rec.get("severityNumber"):
                    meta["severity_number"] = str(rec["severityNumber"])
                if rec.get("flags"):
                    meta["flags"] = str(rec["flags"])
                if int(rec.get("observedTimeUnixNano") or 0):
                    meta["observed_timestamp"] = str(rec["observedTimeUnixNano"])
                level = _level_of(int(rec.get("severityNumber") or 0), rec.get("severityText") or "")
                if level:
                    meta["detected_level"] = level
                ts = int(rec.get("timeUnixNano") or 0) or int(rec.get("observedTimeUnixNano") or 0) or now
                out.append((dict(labels), ts, otlp.string_value(otlp.any_value(rec.get("body"))), meta))
    return out


def parse_label_string(text: str) -> Dict[str, str]:
    """``{a="b", c="d"}`` as the push API sends stream labels; raises ValueError."""
    sel = LogQLParser(text).selector_only()
    if any(op != "=" for _n, op, _v in sel):
        raise ValueError("stream labels must use =")
    return {n: v for n, _op, v in sel}


def push_protobuf_entries(body: bytes) -> List[Tuple[Dict[str, str], int, str, Dict[str, str]]]:
    """logproto.PushRequest: streams(1){labels(1), entries(2){timestamp(1){seconds, nanos}, line(2),
    structuredMetadata(3){name(1), value(2)}}}."""
    out = []
    for stream in wire.children(body, 1):
        labels, entries = {}, []
        for num, _w, val in wire.fields(stream):
            if num == 1:
                labels = parse_label_string(val.decode("utf-8"))
            elif num == 2:
                entries.append(val)
        for entry in entries:
            ts, line, meta = 0, "", {}
            for num, _w, val in wire.fields(entry):
                if num == 1:
                    parts = {n: v for n, _w2, v in wire.fields(val)}
                    ts = int(parts.get(1, 0)) * 10 ** 9 + int(parts.get(2, 0))
                elif num == 2:
                    line = val.decode("utf-8", "replace")
                elif num == 3:
                    pair = {n: v.decode("utf-8", "replace") for n, _w2, v in wire.fields(val)}
                    meta[pair.get(1, "")] = pair.get(2, "")
            out.append((labels, ts, line, meta))
    return out


def push_json_entries(doc: Any) -> List[Tuple[Dict[str, str], int, str, Dict[str, str]]]:
    out = []
    for stream in doc.get("streams") or []:
        labels = {str(k): str(v) for k, v in (stream.get("stream") or {}).items()}
        for value in stream.get("values") or []:
            meta = {str(k): str(v) for k, v in (value[2] if len(value) > 2 else {}).items()}
            out.append((labels, int(value[0]), str(value[1]), meta))
    return out


class LogQLError(ValueError):
    """A query Loki would refuse with 400 and this text."""


class LogQLParser:
    """The LogQL subset the stand-in runs: a stream selector, line filters (|= != |~ !~), label filters
    (``| name op "value"`` with = != =~ !~, also on structured metadata) and ``| json`` / ``| logfmt``."""

    TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)|(?P<op>\|=|\|~|!=|!~|=~|=|\||\{|\}|,)'
                       r'|(?P<ident>[a-zA-Z_][a-zA-Z0-9_.]*)|(?P<other>\S))')

    def __init__(self, text: str):
        self.text = text
        self.tokens: List[Tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            m = self.TOKEN.match(text, pos)
            if not m or m.end() == pos:
                break
            kind = m.lastgroup or "other"
            if m.group(kind) is not None:
                self.tokens.append((kind, m.group(kind), m.start(kind)))
            pos = m.end()
        self.i = 0

    def _error(self, message: str, pos: Optional[int] = None) -> LogQLError:
        if pos is None:
            pos = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text)
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return LogQLError("parse error at line %d, col %d: %s" % (line, col, message))

    def _peek(self) -> Optional[Tuple[str, str, int]]:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _next(self, want_kind: str = "", want: str = "") -> str:
        tok = self._peek()
        if tok is None:
            raise self._error("syntax error: unexpected $end")
        if (want_kind and tok[0] != want_kind) or (want and tok[1] != want):
            raise self._error("syntax error: unexpected %s" % tok[1])
        self.i += 1
        return tok[1]

    @staticmethod
    def _unquote(text: str) -> str:
        if text.startswith("`"):
            return text[1:-1]
        return json.loads(text)  # Go's strconv.Unquote on a double-quoted string, close enough

    def selector_only(self) -> List[Tuple[str, str, str]]:
        sel = self._selector()
        if self._peek() is not None:
            raise self._error("syntax error: unexpected %s" % self._peek()[1])
        return sel

    def _selector(self) -> List[Tuple[str, str, str]]:
        self._next("op", "{")
        matchers = []
        while True:
            tok = self._peek()
            if tok is not None and tok[1] == "}" and not matchers:
                break
            name = self._next("ident")
            op = self._next("op")
            if op not in ("=", "!=", "=~", "!~"):
                raise self._error("syntax error: unexpected %s" % op, self.tokens[self.i - 1][2])
            matchers.append((name, op, self._unquote(self._next("str"))))
            if self._peek() is not None and self._peek()[1] == ",":
                self.i += 1
                continue
            break
        self._next("op", "}")
        return matchers

    def parse(self) -> "LogQuery":
        tok = self._peek()
        if tok is None:
            raise self._error("syntax error: unexpected $end")
        if tok[1] != "{":
            raise self._error("syntax error: unexpected %s" % tok[1])
        selector = self._selector()
        if not selector:
            raise self._error("syntax error: unexpected }", self.tokens[self.i - 1][2])
        if all(_matches(op, val, "") for _n, op, val in selector):
            raise LogQLError("parse error : queries require at least one regexp or equality matcher that does "
                             "not have an empty-compatible value. For instance, app=~\".*\" does not meet this "
                             "requirement, but app=~\".+\" will")
        stages: List[Tuple[str, ...]] = []
        while self._peek() is not None:
            op = self._next("op")
            if op in ("|=", "!=", "|~", "!~"):
                stages.append(("line", op, self._unquote(self._next("str"))))
            elif op == "|":
                name = self._next("ident")
                if name in ("json", "logfmt") and (self._peek() is None or self._peek()[1] == "|"):
                    stages.append(("parser", name))
                    continue
                lop = self._next("op")
                if lop not in ("=", "!=", "=~", "!~"):
                    raise self._error("syntax error: unexpected %s" % lop, self.tokens[self.i - 1][2])
                stages.append(("label", name, lop, self._unquote(self._next("str"))))
            else:
                raise self._error("syntax error: unexpected %s" % op, self.tokens[self.i - 1][2])
        for stage in stages:
            if stage[0] != "parser" and stage[1 if stage[0] == "line" else 2] in ("|~", "!~", "=~", "!~"):
                try:
                    re.compile(stage[-1])
                except re.error as exc:
                    raise LogQLError("parse error : error parsing regexp: %s" % exc) from None
        return LogQuery(selector, stages)


def _matches(op: str, pattern: str, value: str) -> bool:
    if op == "=":
        return value == pattern
    if op == "!=":
        return value != pattern
    hit = re.fullmatch("(?s:%s)" % pattern, value) is not None  # Prometheus matchers are anchored
    return hit if op == "=~" else not hit


def _parse_fields(kind: str, line: str) -> Dict[str, str]:
    out: Dict[str, str] = {}
    if kind == "json":
        try:
            doc = json.loads(line)
        except ValueError:
            return {"__error__": "JSONParserErr"}

        def flatten(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    flatten(prefix + otlp_label_name(k) + "_", v)
            else:
                out[prefix[:-1]] = otlp.string_value(value)
        if isinstance(doc, dict):
            flatten("", doc)
        return out
    for m in re.finditer(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)', line):
        value = m.group(2)
        out[otlp_label_name(m.group(1))] = json.loads(value) if value.startswith('"') else value
    return out


class LogQuery:
    def __init__(self, selector: List[Tuple[str, str, str]], stages: List[Tuple[str, ...]]):
        self.selector = selector
        self.stages = stages

    def selects(self, labels: Dict[str, str]) -> bool:
        return all(_matches(op, val, labels.get(name, "")) for name, op, val in self.selector)

    def run(self, line: str, labels: Dict[str, str], meta: Dict[str, str]) -> Optional[Dict[str, str]]:
        """The parsed labels when the entry passes the pipeline, else None."""
        parsed: Dict[str, str] = {}
        for stage in self.stages:
            if stage[0] == "line":
                _kind, op, arg = stage
                hit = (arg in line) if op in ("|=", "!=") else re.search(arg, line) is not None
                if hit != (op in ("|=", "|~")):
                    return None
            elif stage[0] == "parser":
                for k, v in _parse_fields(stage[1], line).items():
                    # a parsed key that clashes with a stream label gets the _extracted suffix
                    parsed[k + "_extracted" if k in labels else k] = v
            else:
                _kind, name, op, arg = stage
                value = parsed.get(name, meta.get(name, labels.get(name, "")))
                if not _matches(op, arg, value):
                    return None
        return parsed


def parse_loki_time(text: str) -> int:
    """Loki's parseTimestamp: integers of up to 10 digits are seconds, longer ones nanoseconds;
    decimals are seconds; else RFC3339(Nano).  Returns nanoseconds; raises ValueError."""
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text) * 10 ** 9 if len(text.lstrip("-")) <= 10 else int(text)
    if re.fullmatch(r"-?\d+\.\d*", text):
        whole, _, frac = text.partition(".")
        return int(whole) * 10 ** 9 + int((frac + "000000000")[:9])
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", text)
    if not m:
        raise ValueError('cannot parse "%s" to a valid timestamp' % text)
    base = _dt.datetime.fromisoformat(m.group(1) + (m.group(3) if m.group(3) != "Z" else "+00:00"))
    frac = (m.group(2) or ".")[1:]
    return int(base.timestamp()) * 10 ** 9 + int((frac + "000000000")[:9])


class LogStore:
    """Entries per tenant; appended to ``<common.path_prefix>/o11y-standin-logs.jsonl`` so a restart keeps them."""

    FILE = "o11y-standin-logs.jsonl"

    def __init__(self, directory: str, log: fw.Logger):
        self.log = log
        self.lock = threading.Lock()
        self.entries: Dict[str, List[Tuple[Dict[str, str], int, str, Dict[str, str]]]] = {}
        self.path: Optional[str] = None
        try:
            os.makedirs(directory, exist_ok=True)
            self.path = os.path.join(directory, self.FILE)
            if os.path.exists(self.path):
                with open(self.path, encoding="utf-8") as fh:
                    for text in fh:
                        try:
                            rec = json.loads(text)
                            self.entries.setdefault(rec["tenant"], []).append(
                                (rec["labels"], int(rec["ts"]), rec["line"], rec["meta"]))
                        except (ValueError, KeyError):
                            continue  # a torn last line after a crash
        except OSError as exc:
            log.warn("log store kept in memory only", path=directory, err=str(exc))
            self.path = None

    def add(self, tenant: str, entries) -> None:
        with self.lock:
            self.entries.setdefault(tenant, []).extend(entries)
            if self.path and entries:
                try:
                    with open(self.path, "a", encoding="utf-8") as fh:
                        fh.writelines(json.dumps({"tenant": tenant, "labels": lb, "ts": str(ts), "line": line,
                                                  "meta": meta}) + "\n" for lb, ts, line, meta in entries)
                except OSError as exc:
                    self.log.error("failed to append to log store", path=self.path, err=str(exc))

    def of(self, tenant: str):
        with self.lock:
            return list(self.entries.get(tenant, []))


class LokiServer:
    def __init__(self, log: fw.Logger, cfg: Dict[str, Any], eff: Dict[str, Any], ml: Optional[Memberlist]):
        self.log, self.cfg, self.eff, self.ml = log, cfg, eff, ml
        self.started = time.monotonic()
        targets = set(eff["target"])
        self.min_ready = 0.0
        if targets & {"all", "ingester", "write"}:
            self.min_ready = _duration(str(g(cfg, "ingester.lifecycler.min_ready_duration", "15s")))
        self.metrics = fw.Metrics()
        self.metrics.build_info("loki", _info(), tags="netgo")
        self.metrics.collectors.append(self._collect)
        self.pushed: Dict[str, int] = {}
        self.store = LogStore(str(g(cfg, "common.path_prefix", "") or "/var/loki"), log)
        r = fw.Router()
        r.add("/ready", self.ready)
        r.add("/metrics", lambda req: self.metrics.wsgi_response())
        r.add("/loki/api/v1/status/buildinfo", self.buildinfo)
        r.add("/config", self.config)
        r.add("/services", self.services)
        r.add("/memberlist", self.memberlist)
        r.add("/ring", self.ring, methods=("GET", "HEAD", "POST"))
        r.add("/loki/api/v1/push", self.push, methods=("POST",))
        r.add("/otlp/v1/logs", self.otlp_push, methods=("POST",))
        r.add("/loki/api/v1/labels", self.labels, methods=("GET", "POST"))
        r.add("/loki/api/v1/label/", self.label_values, methods=("GET", "POST"), prefix=True)
        r.add("/loki/api/v1/query_range", lambda req: self.query(req, True), methods=("GET", "POST"))
        r.add("/loki/api/v1/query", lambda req: self.query(req, False), methods=("GET", "POST"))
        self.app = r

    def _collect(self, m: fw.Metrics) -> None:
        members = len(self.ml.snapshot()) if self.ml else 0
        m.gauge("loki_memberlist_client_cluster_members_count", "Number of members in memberlist cluster.",
                members)
        for tenant, n in sorted(self.pushed.items()):
            m.counter("loki_distributor_lines_received_total", "The total number of lines received per tenant.",
                      n, {"tenant": tenant})

    def ready(self, req):
        waited = time.monotonic() - self.started
        if waited < self.min_ready:
            return 503, "Ingester not ready: waiting for %s after being ready\n" % fw.format_go_duration(self.min_ready)
        return 200, "ready\n"

    def buildinfo(self, req):
        info = _info()
        body = {"version": info["version"], "revision": info["revision"][:9], "branch": info["branch"],
                "buildUser": info["build_user"], "buildDate": info["build_date"], "goVersion": info["goversion"]}
        return 200, json.dumps(body), {"Content-Type": "application/json"}

    def config(self, req):
        import yaml
        return 200, yaml.safe_dump(masked(self.cfg), sort_keys=False), {"Content-Type": "text/yaml"}

    def services(self, req):
        names = ["server", "memberlist-kv", "ring", "store", "ingester", "distributor", "querier",
                 "query-frontend", "compactor", "ruler"]
        return 200, "".join("%s => Running\n" % n for n in names)

    def memberlist(self, req):
        rows = "".join("<tr><td>%s</td><td>%s:%s</td><td>%s</td></tr>\n"
                       % (m["name"], m.get("addr") or "", m.get("port"), m.get("state"))
                       for m in (self.ml.snapshot() if self.ml else []))
        body = ("<!DOCTYPE html>\n<html><head><title>Memberlist Status</title></head><body>\n"
                "<h1>Memberlist Status</h1>\n<p>Current time: %s</p>\n<h2>Memberlist Cluster Members</h2>\n"
                "<table>\n<tr><th>Name</th><th>Address</th><th>State</th></tr>\n%s</table>\n</body></html>\n"
                % (_dt.datetime.now(_dt.timezone.utc).isoformat(), rows))
        return 200, body, {"Content-Type": "text/html; charset=utf-8"}

    def ring(self, req):
        rows = "".join("<tr><td>%s</td><td>ACTIVE</td><td>%s:%s</td></tr>\n"
                       % (m["name"], m.get("addr") or "127.0.0.1", m.get("grpc_port"))
                       for m in (self.ml.snapshot() if self.ml else []))
        body = ("<!DOCTYPE html>\n<html><head><title>Ingester Ring Status</title></head><body>\n"
                "<h1>Ingester Ring Status</h1>\n<table>\n<tr><th>Instance ID</th><th>State</th>"
                "<th>Address</th></tr>\n%s</table>\n</body></html>\n" % rows)
        return 200, body, {"Content-Type": "text/html; charset=utf-8"}

    def _tenant(self, req) -> Optional[str]:
        if not self.eff["auth_enabled"]:
            return "fake"
        return req.headers.get("X-Scope-OrgID") or None

    def _store(self, tenant: str, entries) -> None:
        self.store.add(tenant, entries)
        self.pushed[tenant] = self.pushed.get(tenant, 0) + len(entries)

    @staticmethod
    def _body(req) -> bytes:
        body = req.get_data()
        if (req.headers.get("Content-Encoding") or "").lower() == "gzip":
            body = gzip.decompress(body)
        return body

    def push(self, req):
        tenant = self._tenant(req)
        if tenant is None:
            return 401, "no org id\n"
        ctype = req.mimetype
        try:
            body = self._body(req)
            if not body:  # nothing to push
                entries = []
            elif ctype == "application/json":
                entries = push_json_entries(json.loads(body or b"{}"))
            else:  # Loki's default: snappy-compressed logproto.PushRequest
                entries = push_protobuf_entries(wire.snappy_decode(body))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OSError, EOFError) as exc:
            return 400, "loghttp.ParsePushRequest: %s\n" % exc
        self._store(tenant, entries)
        return 204, b""

    def otlp_push(self, req):
        tenant = self._tenant(req)
        if tenant is None:
            return 401, "no org id\n"
        try:
            decoded = otlp.decode_http("logs", self._body(req), req.mimetype)
        except (ValueError, TypeError, OSError, EOFError) as exc:
            return 400, "%s\n" % exc
        if decoded is None:
            return 415, "unsupported content type: %s\n" % req.mimetype
        self._store(tenant, otlp_entries(decoded[0]))
        return 204, b""

    @staticmethod
    def _param(req, name: str, default: str = "") -> str:
        return req.values.get(name, default)

    def labels(self, req):
        tenant = self._tenant(req)
        if tenant is None:
            return 401, "no org id\n"
        names = sorted({k for lb, _ts, _l, _m in self.store.of(tenant) for k in lb})
        return 200, json.dumps({"status": "success", "data": names}), {"Content-Type": "application/json"}

    def label_values(self, req):
        tenant = self._tenant(req)
        if tenant is None:
            return 401, "no org id\n"
        rest = req.path[len("/loki/api/v1/label/"):]
        if not rest.endswith("/values"):
            return 404, "404 page not found\n"
        name = rest[:-len("/values")]
        values = sorted({lb[name] for lb, _ts, _l, _m in self.store.of(tenant) if name in lb})
        return 200, json.dumps({"status": "success", "data": values}), {"Content-Type": "application/json"}

    def query(self, req, ranged: bool):
        tenant = self._tenant(req)
        if tenant is None:
            return 401, "no org id\n"
        text = self._param(req, "query")
        try:
            now = time.time_ns()
            if ranged:
                end = parse_loki_time(self._param(req, "end")) if self._param(req, "end") else now
                start = parse_loki_time(self._param(req, "start")) if self._param(req, "start") else end - 3600 * 10 ** 9
            else:  # an instant log query looks back from ``time``
                end = parse_loki_time(self._param(req, "time")) if self._param(req, "time") else now
                start = end - 3600 * 10 ** 9
            limit = int(self._param(req, "limit", "100"))
            direction = self._param(req, "direction", "backward").lower()
            if direction not in ("forward", "backward"):
                raise LogQLError("invalid direction")
            if limit <= 0:
                raise LogQLError("limit must be a positive value")
            q = LogQLParser(text).parse()
        except LogQLError as exc:
            return 400, str(exc) + "\n"
        except ValueError as exc:
            return 400, str(exc) + "\n"
        categorize = "categorize-labels" in (req.headers.get("X-Loki-Response-Encoding-Flags") or "")
        hits = []
        for labels, ts, line, meta in self.store.of(tenant):
            if not start <= ts < end + (0 if ranged else 1) or not q.selects(labels):
                continue
            parsed = q.run(line, labels, meta)
            if parsed is not None:
                hits.append((ts, line, labels, meta, parsed))
        hits.sort(key=lambda h: h[0], reverse=direction == "backward")
        hits = hits[:limit]
        streams: Dict[str, Dict[str, Any]] = {}
        for ts, line, labels, meta, parsed in hits:
            if categorize:  # stream labels only; metadata and parsed labels ride along with each entry
                key_labels = dict(labels)
                extra: Dict[str, Any] = {}
                if meta:
                    extra["structuredMetadata"] = meta
                if parsed:
                    extra["parsed"] = parsed
                value = [str(ts), line] + ([extra] if extra else [])
            else:  # without the flag Loki folds structured metadata and parsed labels into the stream
                key_labels = dict(labels)
                key_labels.update(meta)
                key_labels.update(parsed)
                value = [str(ts), line]
            key = json.dumps(sorted(key_labels.items()))
            streams.setdefault(key, {"stream": dict(sorted(key_labels.items())), "values": []})["values"].append(value)
        data: Dict[str, Any] = {"resultType": "streams", "result": list(streams.values()),
                                "stats": {"summary": {"totalEntriesReturned": len(hits), "execTime": 0.001,
                                                      "totalLinesProcessed": len(hits)}}}
        if categorize:
            data["encodingFlags"] = ["categorize-labels"]
        return 200, json.dumps({"status": "success", "data": data}), {"Content-Type": "application/json"}


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def run(argv: List[str]) -> int:
    if any(a.lstrip("-") == "version" and a.startswith("-") for a in argv):
        print(version_banner())
        return 0
    fs = parse_args(argv)
    try:
        cfg = load(fs)
    except LokiConfigError as exc:
        sys.stderr.write("failed parsing config: %s\n" % exc)
        return 1
    eff = effective(cfg, fs)
    log = fw.Logger("loki", level=eff["log_level"] if eff["log_level"] in LOG_LEVELS else "info")
    try:
        validate(cfg, eff)
    except LokiConfigError as exc:
        log.error("validating config", err=str(exc))
        return 1
    if fs["print-config-stderr"]:
        import yaml
        sys.stderr.write(yaml.safe_dump(masked(cfg), sort_keys=False))
    if fs["verify-config"]:
        log.info("config is valid")
        return 0
    if fs["list-targets"]:
        for t in TARGETS:
            print(t)
        return 0

    info = _info()
    log.info("Starting Loki", version="(version=%s, branch=%s, revision=%s)"
             % (info["version"], info["branch"], info["revision"][:9]))
    log.info("Loading configuration file", filename=fs["config.file"])
    for bucket, s3cfg in s3_targets(cfg):
        fw.require_bucket(log, str(s3cfg.get("endpoint") or ""), bucket, what="store",
                          wait_seconds=5.0, access_key=s3cfg.get("access_key_id") or None,
                          secret_key=s3cfg.get("secret_access_key") or None,
                          region=s3cfg.get("region") or "us-east-1", insecure=bool(s3cfg.get("insecure")))

    uses_memberlist = bool(g(cfg, "memberlist.join_members")) or g(cfg, "common.ring.kvstore.store") == "memberlist"
    ml = Memberlist(log, cfg, eff["memberlist_port"], eff["http_port"], eff["grpc_port"]) if uses_memberlist else None
    server = LokiServer(log, cfg, eff, ml)
    shutdown = fw.ShutdownSignal()
    host = eff["http_address"]
    http = fw.HTTPService("http", "%s:%d" % (("[%s]" % host) if ":" in host else host, eff["http_port"]),
                          server.app)
    grpc = TCPPort(eff["grpc_address"], eff["grpc_port"])
    started: List[Any] = []
    try:
        for svc in (http, grpc) + ((ml,) if ml else ()):
            svc.start()
            started.append(svc)
    except OSError as exc:
        for svc in started:
            svc.stop()
        log.error("error running loki", err=str(exc))
        return 1
    log.info("server listening on addresses", http="%s:%d" % (host, eff["http_port"]),
             grpc="%s:%d" % (eff["grpc_address"], eff["grpc_port"]))
    if ml is not None:
        log.info("joining memberlist cluster", members=",".join(ml.join), node=ml.name)
    log.info("Loki started", startup_time="%.3fs" % (time.monotonic() - server.started))

    def on_shutdown():
        for svc in (grpc, ml):
            if svc is not None:
                svc.stop()
        log.info("Loki stopped")

    return fw.run_until_signal([http], logger=log, on_shutdown=on_shutdown, shutdown=shutdown)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: ``argv`` includes the program name (like ``sys.argv``)."""
    argv = list(sys.argv if argv is None else argv)
    try:
        return run(argv[1:])
    except fw.StandinExit as exc:
        return int(exc.code or 0)


if __name__ == "__main__":  # python -m o11y_standins.loki
    sys.exit(main())
