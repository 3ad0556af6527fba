# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Grafana Alloy stand-in: the ``alloy`` binary on the surface o11y.stack uses.

Behaves like Alloy 1.18.1 where the collection touches it:

* CLI (cobra + pflag): ``alloy [--version|-v] <subcommand>``; ``run [flags]
  path`` and ``validate [flags] path`` (one argument: a file, or a directory
  whose ``*.alloy`` files form one configuration); double-dash long flags
  (``--server.http.listen-addr=127.0.0.1:12345`` or ``... value``), bool flags
  without a value; errors print ``Error: <message>`` and exit 1 like
  upstream's ``log.Fatalf`` after cobra (``unknown flag: --x``, ``unknown
  shorthand flag: 's' in -storage.path``, ``flag needs an argument``,
  ``invalid argument "x" for "--flag" flag: ...``, ``accepts 1 arg(s),
  received 0``, ``unknown command "x" for "alloy"``); ``--help`` exits 0.
  ``--version`` prints the Prometheus-style version block.
* Configuration: the real Alloy syntax (:mod:`.alloy_syntax`), strict like
  ``alloy validate``: syntax errors, unknown component names (``cannot find
  the definition of component name``), components without a label,
  duplicate blocks (``block X already declared at ...``), unknown or
  duplicated attributes and blocks, missing required ones, literal value
  types, references to components that do not exist; each reported as
  ``Error: <file>:<line>:<col>: <message>`` with Alloy's source excerpt.
  The schemas of the components listed in :data:`COMPONENTS` follow the
  argument structs of Alloy 1.18.1 (blocks the stand-in does not model are
  accepted opaquely where noted).
* ``run``: also evaluates every expression (references to exported fields,
  ``sys.env``, ``constants.hostname`` and the rest of the stdlib subset),
  checks value types and the component validations the role relies on
  (memory limiter limits, stage settings, relabel actions ...), creates
  ``--storage.path`` and one data directory per component that keeps state,
  then binds ``--server.http.listen-addr`` (``/-/ready``, ``/-/healthy``,
  ``/metrics`` with ``alloy_build_info``, ``/-/reload`` GET/POST) and the
  gRPC and HTTP endpoints of every ``otelcol.receiver.otlp`` (OTLP/HTTP
  ``POST /v1/traces|metrics|logs``, protobuf or JSON, gzip, counted in
  ``otelcol_receiver_accepted_*_total``; gRPC only accepts connections).
  ``loki.source.file`` opens the matched files and logs ``failed to tail
  file`` like upstream when one is unreadable; ``loki.source.journal`` needs
  a readable journal file (the stand-in marks the component unhealthy, and
  ``/-/healthy`` answers 500, where upstream silently reads nothing).
  SIGHUP and ``/-/reload`` re-read the configuration; a bad one is refused
  (400 with the error) and the running one stays.  SIGTERM/SIGINT exit 0.
* Logs: logfmt (``ts=... level=info msg=...``) or JSON on stderr, from the
  ``logging`` block.  Type=simple (no sd_notify), like the upstream unit.
"""

from __future__ import annotations

import base64
import datetime as _dt
import glob
import gzip
import hashlib
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import zlib
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import alloy_syntax as syn
from . import framework as fw
from . import grpc_h2c
from . import otlp
from . import wire
from .alloy_syntax import (ANY_T, BOOL_T, BYTES_T, DURATION_T, INT_T, NUMBER_T, OPAQUE, SECRET_T, STRING_T,
                           STRINGS_T, TARGETS_T, Attr, BlockRef, CapsuleOf, Enum, ListOf, MapOf, Nullable, Regex,
                           spec)

DEFAULT_VERSION = "1.18.1"
DEFAULT_GOVERSION = "go1.26.5"
BUILD_TAGS = "netgo,embedalloyui,promtail_journal_enabled"


def version() -> str:
    info = fw.build_info()
    v = info["version"] if info.get("component") == "alloy" else DEFAULT_VERSION
    return v if v.startswith("v") else "v" + v


def revision() -> str:
    info = fw.build_info()
    rev = info.get("revision", "") if info.get("component") == "alloy" else ""
    return rev[:10] if rev.strip("0") else "6012ec4ac6"


def goversion() -> str:
    info = fw.build_info()
    return info["goversion"] if info.get("component") == "alloy" else DEFAULT_GOVERSION


def version_text() -> str:
    """build.Print("alloy"): the program is always named alloy here."""
    goos, goarch = fw.go_platform()
    return ("alloy, version %s (branch: HEAD, revision: %s)\n"
            "  build user:       \n"
            "  build date:       \n"
            "  go version:       %s\n"
            "  platform:         %s/%s\n"
            "  tags:             %s\n") % (version(), revision(), goversion(), goos, goarch, BUILD_TAGS)


# ---------------------------------------------------------------------------
# component schemas (Alloy 1.18.1 argument structs)
# ---------------------------------------------------------------------------

def B(s, required=False, repeated=False) -> BlockRef:
    return BlockRef(s, required, repeated)


def A(t=ANY_T, required=False) -> Attr:
    return Attr(t, required)


CONSUMERS = ListOf(CapsuleOf("otelcol.Consumer"))
LOGS_RECEIVERS = ListOf(CapsuleOf("loki.LogsReceiver"))
APPENDABLES = ListOf(CapsuleOf("storage.Appendable"))
HANDLER = CapsuleOf("otelcol.Handler")
RULES = CapsuleOf("relabel.Rules")
COMPRESSION = Enum("compression", ["gzip", "zlib", "deflate", "snappy", "zstd", "lz4", "none", ""])

OUTPUT = spec({"logs": A(CONSUMERS), "metrics": A(CONSUMERS), "traces": A(CONSUMERS)})
DEBUG_METRICS = spec({"disable_high_cardinality_metrics": A(BOOL_T),
                      "level": A(Enum("", ["none", "basic", "normal", "detailed"]))})
TPM = spec({"enabled": A(BOOL_T), "path": A(STRING_T), "owner_auth": A(STRING_T), "auth": A(STRING_T)})
_TLS_COMMON = {"ca_pem": A(STRING_T), "ca_file": A(STRING_T), "cert_pem": A(STRING_T), "cert_file": A(STRING_T),
               "key_pem": A(SECRET_T), "key_file": A(STRING_T), "min_version": A(STRING_T),
               "max_version": A(STRING_T), "reload_interval": A(DURATION_T), "cipher_suites": A(STRINGS_T),
               "include_system_ca_certs_pool": A(BOOL_T), "curve_preferences": A(STRINGS_T)}
TLS_SERVER = spec(dict(_TLS_COMMON, client_ca_file=A(STRING_T)), {"tpm": B(TPM)})
TLS_CLIENT = spec(dict(_TLS_COMMON, insecure=A(BOOL_T), insecure_skip_verify=A(BOOL_T), server_name=A(STRING_T)),
                  {"tpm": B(TPM)})

GRPC_SERVER = spec(
    {"endpoint": A(STRING_T), "transport": A(STRING_T), "auth": A(HANDLER), "max_recv_msg_size": A(BYTES_T),
     "max_concurrent_streams": A(INT_T), "read_buffer_size": A(BYTES_T), "write_buffer_size": A(BYTES_T),
     "include_metadata": A(BOOL_T)},
    {"tls": B(TLS_SERVER),
     "keepalive": B(spec(blocks={
         "server_parameters": B(spec({k: A(DURATION_T) for k in ("max_connection_idle", "max_connection_age",
                                                                 "max_connection_age_grace", "time", "timeout")})),
         "enforcement_policy": B(spec({"min_time": A(DURATION_T), "permit_without_stream": A(BOOL_T)}))}))})
HTTP_SERVER = spec(
    {"endpoint": A(STRING_T), "auth": A(HANDLER), "max_request_body_size": A(BYTES_T),
     "include_metadata": A(BOOL_T), "compression_algorithms": A(STRINGS_T), "keep_alives_enabled": A(BOOL_T),
     "idle_timeout": A(DURATION_T), "read_timeout": A(DURATION_T), "write_timeout": A(DURATION_T),
     "read_header_timeout": A(DURATION_T), "traces_url_path": A(STRING_T), "metrics_url_path": A(STRING_T),
     "logs_url_path": A(STRING_T)},
    {"tls": B(TLS_SERVER),
     "cors": B(spec({"allowed_origins": A(STRINGS_T), "allowed_headers": A(STRINGS_T), "max_age": A(INT_T)}))})

RETRY = spec({"enabled": A(BOOL_T), "initial_interval": A(DURATION_T), "max_interval": A(DURATION_T),
              "max_elapsed_time": A(DURATION_T), "multiplier": A(NUMBER_T), "randomization_factor": A(NUMBER_T)})
QUEUE = spec({"enabled": A(BOOL_T), "num_consumers": A(INT_T), "queue_size": A(INT_T),
              "sizer": A(Enum("", ["requests", "items", "bytes"])), "block_on_overflow": A(BOOL_T),
              "wait_for_result": A(BOOL_T), "storage": A(CapsuleOf("otelcol.Extension"))},
             {"batch": B(spec({"flush_timeout": A(DURATION_T), "min_size": A(INT_T), "max_size": A(INT_T),
                               "sizer": A(Enum("", ["requests", "items", "bytes"]))}))})
_CLIENT_COMMON = {"endpoint": A(STRING_T, True), "compression": A(COMPRESSION), "headers": A(MapOf(STRING_T)),
                  "auth": A(HANDLER), "read_buffer_size": A(BYTES_T), "write_buffer_size": A(BYTES_T)}
GRPC_CLIENT = spec(dict(_CLIENT_COMMON, wait_for_ready=A(BOOL_T), balancer_name=A(STRING_T), authority=A(STRING_T)),
                   {"tls": B(TLS_CLIENT),
                    "keepalive": B(spec({"ping_wait": A(DURATION_T), "ping_response_timeout": A(DURATION_T),
                                         "ping_without_stream": A(BOOL_T)}))})
HTTP_CLIENT = spec(dict(_CLIENT_COMMON, proxy_url=A(STRING_T), timeout=A(DURATION_T), max_idle_conns=A(INT_T),
                        max_idle_conns_per_host=A(INT_T), max_conns_per_host=A(INT_T),
                        idle_conn_timeout=A(DURATION_T), disable_keep_alives=A(BOOL_T),
                        http2_read_idle_timeout=A(DURATION_T), http2_ping_timeout=A(DURATION_T),
                        force_attempt_http2=A(BOOL_T)),
                   {"tls": B(TLS_CLIENT), "cookies": B(spec({"enabled": A(BOOL_T)})),
                    "compression_params": B(spec({"level": A(INT_T, True)}))})
EXPORTER_BLOCKS = {"retry_on_failure": B(RETRY), "sending_queue": B(QUEUE), "debug_metrics": B(DEBUG_METRICS)}

RELABEL_ACTIONS = ["replace", "keep", "drop", "hashmod", "labelmap", "labeldrop", "labelkeep", "lowercase",
                   "uppercase", "keepequal", "dropequal"]


class _Action(Enum):
    def check(self, v):
        if not isinstance(v, str):
            raise TypeError("string")
        if v not in self.choices:
            raise ValueError("unrecognized action type %s" % json.dumps(v))
        return v


RELABEL_RULE = spec({"source_labels": A(STRINGS_T), "separator": A(STRING_T), "regex": A(Regex()),
                     "modulus": A(INT_T), "target_label": A(STRING_T), "replacement": A(STRING_T),
                     "action": A(_Action("", RELABEL_ACTIONS))})

HTTP_CLIENT_AUTH = {
    "basic_auth": B(spec({"username": A(STRING_T), "password": A(SECRET_T), "password_file": A(STRING_T)})),
    "authorization": B(spec({"type": A(STRING_T), "credentials": A(SECRET_T), "credentials_file": A(STRING_T)})),
    "oauth2": B(OPAQUE),
    "tls_config": B(spec({"ca_pem": A(STRING_T), "ca_file": A(STRING_T), "cert_pem": A(STRING_T),
                          "cert_file": A(STRING_T), "key_pem": A(SECRET_T), "key_file": A(STRING_T),
                          "server_name": A(STRING_T), "insecure_skip_verify": A(BOOL_T),
                          "min_version": A(Enum("", ["TLS10", "TLS11", "TLS12", "TLS13"]))})),
}
HTTP_CLIENT_ATTRS = {"bearer_token": A(SECRET_T), "bearer_token_file": A(STRING_T), "proxy_url": A(STRING_T),
                     "no_proxy": A(STRING_T), "proxy_from_environment": A(BOOL_T),
                     "proxy_connect_header": A(MapOf(ListOf(SECRET_T))), "follow_redirects": A(BOOL_T),
                     "enable_http2": A(BOOL_T), "http_headers": A(MapOf(ListOf(SECRET_T)))}

REMOTE_WRITE_ENDPOINT = spec(
    dict(HTTP_CLIENT_ATTRS, url=A(STRING_T, True), name=A(STRING_T), remote_timeout=A(DURATION_T),
         headers=A(MapOf(STRING_T)), send_exemplars=A(BOOL_T), send_native_histograms=A(BOOL_T),
         round_robin_dns=A(BOOL_T),
         protobuf_message=A(Enum("", ["prometheus.WriteRequest", "io.prometheus.write.v2.Request"]))),
    dict(HTTP_CLIENT_AUTH,
         queue_config=B(spec({"capacity": A(INT_T), "max_shards": A(INT_T), "min_shards": A(INT_T),
                              "max_samples_per_send": A(INT_T), "batch_send_deadline": A(DURATION_T),
                              "min_backoff": A(DURATION_T), "max_backoff": A(DURATION_T),
                              "retry_on_http_429": A(BOOL_T), "sample_age_limit": A(DURATION_T)})),
         metadata_config=B(spec({"send": A(BOOL_T), "send_interval": A(DURATION_T),
                                 "max_samples_per_send": A(INT_T)})),
         write_relabel_config=B(RELABEL_RULE, repeated=True),
         sigv4=B(OPAQUE), azuread=B(OPAQUE), google_iam=B(OPAQUE)))

LOKI_ENDPOINT = spec(
    dict(HTTP_CLIENT_ATTRS, url=A(STRING_T, True), name=A(STRING_T), headers=A(MapOf(STRING_T)),
         batch_wait=A(DURATION_T), batch_size=A(BYTES_T), remote_timeout=A(DURATION_T),
         min_backoff_period=A(DURATION_T), max_backoff_period=A(DURATION_T), max_backoff_retries=A(INT_T),
         tenant_id=A(STRING_T), retry_on_http_429=A(BOOL_T)),
    dict(HTTP_CLIENT_AUTH,
         queue_config=B(spec({"capacity": A(BYTES_T), "drain_timeout": A(DURATION_T), "min_shards": A(INT_T),
                              "block_on_overflow": A(BOOL_T)}))))

_STR_OR_NULL = MapOf(Nullable(STRING_T))


def _stages() -> Dict[str, BlockRef]:
    s = {
        "cri": spec({"max_partial_lines": A(INT_T), "max_partial_line_size": A(INT_T),
                     "max_partial_line_size_truncate": A(BOOL_T)}),
        "decolorize": spec(),
        "docker": spec(),
        "drop": spec({"source": A(STRING_T), "separator": A(STRING_T), "expression": A(STRING_T),
                      "value": A(STRING_T), "older_than": A(DURATION_T), "longer_than": A(BYTES_T),
                      "drop_counter_reason": A(STRING_T)}),
        "eventlogmessage": spec({"source": A(STRING_T), "drop_invalid_labels": A(BOOL_T),
                                 "overwrite_existing": A(BOOL_T)}),
        "geoip": spec({"db": A(STRING_T, True), "source": A(STRING_T, True), "db_type": A(STRING_T),
                       "custom_lookups": A(MapOf(STRING_T))}),
        "json": spec({"expressions": A(MapOf(STRING_T)), "regex": A(STRING_T), "source": A(STRING_T),
                      "drop_malformed": A(BOOL_T)}),
        "label_drop": spec({"values": A(STRINGS_T, True)}),
        "label_keep": spec({"values": A(STRINGS_T, True)}),
        "labels": spec({"values": A(_STR_OR_NULL, True),
                        "source_type": A(Enum("", ["extracted", "structured_metadata"]))}),
        "limit": spec({"rate": A(NUMBER_T, True), "burst": A(INT_T, True), "drop": A(BOOL_T),
                       "by_label_name": A(STRING_T), "max_distinct_labels": A(INT_T)}),
        "logfmt": spec({"mapping": A(MapOf(STRING_T)), "source": A(STRING_T), "regex": A(STRING_T)}),
        "luhn": spec({"replacement": A(STRING_T), "source": A(STRING_T), "min_length": A(INT_T),
                      "delimiters": A(STRING_T)}),
        "metrics": OPAQUE,
        "multiline": spec({"firstline": A(STRING_T, True), "max_wait_time": A(DURATION_T), "max_lines": A(INT_T),
                           "trim_newlines": A(BOOL_T)}),
        "output": spec({"source": A(STRING_T, True)}),
        "pack": spec({"labels": A(STRINGS_T, True), "ingest_timestamp": A(BOOL_T)}),
        "pattern": spec({"pattern": A(STRING_T, True), "source": A(STRING_T), "labels_from_groups": A(BOOL_T)}),
        "regex": spec({"expression": A(STRING_T, True), "source": A(STRING_T), "labels_from_groups": A(BOOL_T)}),
        "replace": spec({"expression": A(STRING_T, True), "source": A(STRING_T), "replace": A(STRING_T)}),
        "sampling": spec({"rate": A(NUMBER_T, True), "drop_counter_reason": A(STRING_T)}),
        "static_labels": spec({"values": A(_STR_OR_NULL, True)}),
        "structured_metadata": spec({"values": A(_STR_OR_NULL), "regex": A(STRING_T)}),
        "structured_metadata_drop": spec({"values": A(STRINGS_T, True)}),
        "template": spec({"source": A(STRING_T, True), "template": A(STRING_T, True)}),
        "tenant": spec({"label": A(STRING_T), "source": A(STRING_T), "value": A(STRING_T)}),
        "timestamp": spec({"source": A(STRING_T, True), "format": A(STRING_T, True),
                           "fallback_formats": A(STRINGS_T), "location": A(STRING_T),
                           "action_on_failure": A(Enum("", ["fudge", "skip"])),
                           "action_on_duplicate_timestamp": A(STRING_T)}),
        "truncate": spec(blocks={"rule": B(spec({"limit": A(BYTES_T, True), "suffix": A(STRING_T),
                                                 "sources": A(STRINGS_T),
                                                 "source_type": A(Enum("", ["line", "label",
                                                                            "structured_metadata",
                                                                            "extracted"]))}),
                                           True, True)}),
        "windowsevent": spec({"source": A(STRING_T), "drop_invalid_labels": A(BOOL_T),
                              "overwrite_existing": A(BOOL_T)}),
    }
    refs = {k: B(v, repeated=True) for k, v in s.items()}
    match = spec({"selector": A(STRING_T, True), "action": A(Enum("", ["keep", "drop"])),
                  "pipeline_name": A(STRING_T), "drop_counter_reason": A(STRING_T)})
    match.enums["stage"] = refs  # stages nest inside stage.match
    refs["match"] = B(match, repeated=True)
    return refs


STAGES = _stages()

TOP_BLOCKS = {
    "logging": spec({"level": A(Enum("", ["debug", "info", "warn", "error"])),
                     "format": A(Enum("", ["logfmt", "json"])),
                     "destination": A(Enum("", ["stderr", "windows_event_log"])),
                     "write_to": A(LOGS_RECEIVERS)}),
    "livedebugging": spec({"enabled": A(BOOL_T)}),
    "tracing": OPAQUE,
    "http": OPAQUE,
    "remotecfg": OPAQUE,
}


class ComponentDef:
    def __init__(self, name: str, args, exports: Dict[str, str], stateful: bool = False):
        self.name = name
        self.args = args
        self.exports = exports  # export name -> capsule kind ('' for evaluated values)
        self.stateful = stateful  # keeps state below --storage.path/<component id>


COMPONENTS: Dict[str, ComponentDef] = {c.name: c for c in [
    ComponentDef("otelcol.receiver.otlp", spec(
        blocks={"grpc": B(GRPC_SERVER), "http": B(HTTP_SERVER), "debug_metrics": B(DEBUG_METRICS),
                "output": B(OUTPUT, True)}), {}),
    ComponentDef("otelcol.processor.memory_limiter", spec(
        {"check_interval": A(DURATION_T, True), "limit": A(BYTES_T), "limit_percentage": A(INT_T),
         "spike_limit": A(BYTES_T), "spike_limit_percentage": A(INT_T)},
        {"output": B(OUTPUT, True), "debug_metrics": B(DEBUG_METRICS)}), {"input": "otelcol.Consumer"}),
    ComponentDef("otelcol.processor.batch", spec(
        {"timeout": A(DURATION_T), "send_batch_size": A(INT_T), "send_batch_max_size": A(INT_T),
         "metadata_keys": A(STRINGS_T), "metadata_cardinality_limit": A(INT_T)},
        {"output": B(OUTPUT, True), "debug_metrics": B(DEBUG_METRICS)}), {"input": "otelcol.Consumer"}),
    ComponentDef("otelcol.exporter.otlp", spec(
        {"timeout": A(DURATION_T)}, dict(EXPORTER_BLOCKS, client=B(GRPC_CLIENT, True))),
        {"input": "otelcol.Consumer"}),
    ComponentDef("otelcol.exporter.otlphttp", spec(
        {"metrics_endpoint": A(STRING_T), "logs_endpoint": A(STRING_T), "traces_endpoint": A(STRING_T),
         "encoding": A(Enum("", ["proto", "json"]))}, dict(EXPORTER_BLOCKS, client=B(HTTP_CLIENT, True))),
        {"input": "otelcol.Consumer"}),
    ComponentDef("otelcol.exporter.prometheus", spec(
        {"include_target_info": A(BOOL_T), "include_scope_info": A(BOOL_T), "include_scope_labels": A(BOOL_T),
         "gc_frequency": A(DURATION_T), "forward_to": A(APPENDABLES, True), "add_metric_suffixes": A(BOOL_T),
         "resource_to_telemetry_conversion": A(BOOL_T), "honor_metadata": A(BOOL_T),
         "convert_classic_histograms_to_nhcb": A(BOOL_T), "keep_identifying_resource_attributes": A(BOOL_T)}),
        {"input": "otelcol.Consumer"}),
    ComponentDef("otelcol.exporter.loki", spec({"forward_to": A(LOGS_RECEIVERS, True)}),
                 {"input": "otelcol.Consumer"}),
    ComponentDef("prometheus.remote_write", spec(
        {"external_labels": A(MapOf(STRING_T))},
        {"endpoint": B(REMOTE_WRITE_ENDPOINT, repeated=True),
         "wal": B(spec({"truncate_frequency": A(DURATION_T), "min_keepalive_time": A(DURATION_T),
                        "max_keepalive_time": A(DURATION_T)}))}),
        {"receiver": "storage.Appendable"}, stateful=True),
    ComponentDef("prometheus.scrape", spec(
        dict(HTTP_CLIENT_ATTRS, targets=A(TARGETS_T, True), forward_to=A(APPENDABLES, True), job_name=A(STRING_T),
             extra_metrics=A(BOOL_T), honor_labels=A(BOOL_T), honor_timestamps=A(BOOL_T),
             track_timestamps_staleness=A(BOOL_T), params=A(MapOf(STRINGS_T)), scrape_classic_histograms=A(BOOL_T),
             scrape_native_histograms=A(BOOL_T), scrape_interval=A(DURATION_T), scrape_timeout=A(DURATION_T),
             scrape_protocols=A(STRINGS_T), scrape_fallback_protocol=A(STRING_T), metrics_path=A(STRING_T),
             scheme=A(Enum("", ["http", "https"])), body_size_limit=A(BYTES_T), sample_limit=A(INT_T),
             target_limit=A(INT_T), label_limit=A(INT_T), label_name_length_limit=A(INT_T),
             label_value_length_limit=A(INT_T), native_histogram_bucket_limit=A(INT_T),
             native_histogram_min_bucket_factor=A(NUMBER_T), enable_protobuf_negotiation=A(BOOL_T),
             enable_compression=A(BOOL_T), enable_type_and_unit_labels=A(BOOL_T), honor_metadata=A(BOOL_T),
             convert_classic_histograms_to_nhcb=A(BOOL_T), metric_name_validation_scheme=A(STRING_T),
             metric_name_escaping_scheme=A(STRING_T), scrape_failure_log_file=A(STRING_T)),
        dict(HTTP_CLIENT_AUTH, clustering=B(spec({"enabled": A(BOOL_T, True)})))), {}),
    ComponentDef("discovery.relabel", spec({"targets": A(TARGETS_T, True)},
                                           {"rule": B(RELABEL_RULE, repeated=True)}),
                 {"output": "", "rules": "relabel.Rules"}),
    ComponentDef("local.file_match", spec({"path_targets": A(TARGETS_T, True), "sync_period": A(DURATION_T),
                                           "ignore_older_than": A(DURATION_T)}), {"targets": ""}),
    ComponentDef("loki.source.file", spec(
        {"targets": A(TARGETS_T, True), "forward_to": A(LOGS_RECEIVERS, True), "encoding": A(STRING_T),
         "tail_from_end": A(BOOL_T), "legacy_positions_file": A(STRING_T),
         "on_positions_file_error": A(Enum("", ["skip", "restart_from_end", "restart_from_beginning"]))},
        {"decompression": B(spec({"enabled": A(BOOL_T, True), "initial_delay": A(DURATION_T),
                                  "format": A(Enum("", ["gz", "z", "bz2", "zip"]), True)})),
         "file_watch": B(spec({"min_poll_frequency": A(DURATION_T), "max_poll_frequency": A(DURATION_T)})),
         "file_match": B(spec({"enabled": A(BOOL_T), "sync_period": A(DURATION_T),
                               "ignore_older_than": A(DURATION_T)}))}), {}, stateful=True),
    ComponentDef("loki.source.journal", spec(
        {"format_as_json": A(BOOL_T), "max_age": A(DURATION_T), "path": A(STRING_T), "matches": A(STRING_T),
         "forward_to": A(LOGS_RECEIVERS, True), "relabel_rules": A(RULES), "labels": A(MapOf(STRING_T))},
        {"legacy_position": B(spec({"file": A(STRING_T, True), "name": A(STRING_T, True)}))}), {}, stateful=True),
    ComponentDef("loki.relabel", spec({"forward_to": A(LOGS_RECEIVERS, True), "max_cache_size": A(INT_T)},
                                      {"rule": B(RELABEL_RULE, repeated=True)}),
                 {"receiver": "loki.LogsReceiver", "rules": "relabel.Rules"}),
    ComponentDef("loki.process", spec({"forward_to": A(LOGS_RECEIVERS, True)}, enums={"stage": STAGES}),
                 {"receiver": "loki.LogsReceiver"}),
    ComponentDef("loki.write", spec(
        {"max_streams": A(INT_T), "external_labels": A(MapOf(STRING_T))},
        {"endpoint": B(LOKI_ENDPOINT, repeated=True),
         "wal": B(spec({"enabled": A(BOOL_T), "max_segment_age": A(DURATION_T), "min_read_frequency": A(DURATION_T),
                        "max_read_frequency": A(DURATION_T), "drain_timeout": A(DURATION_T)}))}),
        {"receiver": "loki.LogsReceiver"}),  # keeps state only with its WAL on
]}

# ---------------------------------------------------------------------------
# stdlib subset
# ---------------------------------------------------------------------------


def _go_format(fmt: str, *args: Any) -> str:
    it = iter(args)

    def repl(m):
        verb = m.group(2)
        if verb == "%":
            return "%"
        try:
            v = next(it)
        except StopIteration:
            return "%!" + verb + "(MISSING)"
        if verb == "q":
            return json.dumps(v)
        if verb == "d":
            return str(int(v))
        if verb in "fgeE":
            return ("%" + m.group(1) + verb) % v
        return v if isinstance(v, str) else json.dumps(v) if not isinstance(v, (int, float)) else str(v)

    return re.sub(r"%([-+ #0-9.]*)([a-zA-Z%])", repl, fmt)


def _coalesce(*args):
    for a in args:
        if a not in (None, "", [], {}, 0, False):
            return a
    return args[-1] if args else None


def _concat(*arrays):
    out = []
    for a in arrays:
        if not isinstance(a, list):
            raise ValueError("expected array, got %s" % syn.type_name(a))
        out += a
    return out


def _env(name):
    return os.environ.get(name, "")


def _string_fns() -> Dict[str, syn.Function]:
    return {k: syn.Function("string." + k, f) for k, f in {
        "format": _go_format, "join": lambda xs, sep: sep.join(xs), "replace": lambda s, o, n: s.replace(o, n),
        "split": lambda s, sep: s.split(sep), "to_lower": str.lower, "to_upper": str.upper,
        "trim": lambda s, cut: s.strip(cut), "trim_prefix": lambda s, p: s[len(p):] if s.startswith(p) else s,
        "trim_suffix": lambda s, p: s[:-len(p)] if p and s.endswith(p) else s, "trim_space": str.strip}.items()}


def stdlib() -> Dict[str, Any]:
    goos, goarch = fw.go_platform()
    strings = _string_fns()
    lib = {
        "constants": {"hostname": socket.gethostname(), "os": goos, "arch": goarch, "version": version()},
        "coalesce": syn.Function("coalesce", _coalesce),
        "sys": {"env": syn.Function("sys.env", _env)},
        "convert": {"nonsensitive": syn.Function("convert.nonsensitive", lambda s: str(s))},
        "array": {"concat": syn.Function("array.concat", _concat)},
        "encoding": {"from_json": syn.Function("encoding.from_json", json.loads),
                     "to_json": syn.Function("encoding.to_json", lambda v: json.dumps(v, separators=(",", ":")))},
        "string": strings,
        "file": {"path_join": syn.Function("file.path_join", lambda *p: os.path.join(*p))},
        "json_path": syn.Function("json_path", lambda *_: []),
    }
    deprecated = {"env": lib["sys"]["env"], "concat": lib["array"]["concat"],
                  "nonsensitive": lib["convert"]["nonsensitive"], "json_decode": lib["encoding"]["from_json"]}
    for k in ("format", "join", "replace", "split", "to_lower", "to_upper", "trim", "trim_prefix", "trim_suffix",
              "trim_space"):
        deprecated[k] = strings[k]
    lib.update(deprecated)
    return lib


DEPRECATED_STDLIB = {"env", "nonsensitive", "concat", "json_decode", "yaml_decode", "base64_decode", "format", "join",
                     "replace", "split", "to_lower", "to_upper", "trim", "trim_prefix", "trim_suffix", "trim_space"}
STDLIB_NAMES = {"constants", "coalesce", "json_path", "sys", "convert", "array", "encoding", "string",
                "file"} | DEPRECATED_STDLIB


# ---------------------------------------------------------------------------
# loading a configuration
# ---------------------------------------------------------------------------

class LoadError(Exception):
    """Diagnostics (printed with sources) or a plain error text."""

    def __init__(self, diags: Optional[List[syn.Diagnostic]] = None, sources: Optional[Dict[str, str]] = None,
                 text: str = "", phase: str = "load"):
        self.diags = diags or []
        self.sources = sources or {}
        self.text = text
        self.phase = phase  # "parse" (syntax) or "load" (evaluation), as upstream words them
        super().__init__(text or syn.Diagnostics(self.diags).error_text())


def read_sources(path: str) -> Dict[str, str]:
    """Like loadSourceFiles: a file, or the *.alloy files of a directory (not recursive)."""
    if os.path.isdir(path):
        out = {}
        for name in sorted(os.listdir(path)):
            p = os.path.join(path, name)
            if name.endswith(".alloy") and os.path.isfile(p):
                with open(p, encoding="utf-8") as fh:
                    out[p] = fh.read()
        return out
    with open(path, encoding="utf-8") as fh:
        return {path: fh.read()}


class Config:
    """A parsed and validated configuration."""

    def __init__(self, sources: Dict[str, str], files: List[syn.File]):
        self.sources = sources
        self.files = files
        self.components: Dict[str, syn.Block] = {}
        self.top: Dict[str, syn.Block] = {}
        self.warnings: List[syn.Diagnostic] = []
        self.hash = hashlib.sha256("".join(sources[k] for k in sorted(sources)).encode()).hexdigest()


def parse_sources(sources: Dict[str, str]) -> List[syn.File]:
    files, diags = [], []
    for name in sorted(sources):
        try:
            files.append(syn.parse(name, sources[name]))
        except syn.Diagnostics as exc:
            diags += exc.diags
    if diags:
        raise LoadError(diags, sources, phase="parse")
    return files


def validate(sources: Dict[str, str]) -> Config:
    """What ``alloy validate`` checks; raises LoadError."""
    files = parse_sources(sources)
    cfg = Config(sources, files)
    diags: List[syn.Diagnostic] = []
    seen: Dict[str, syn.Block] = {}
    for f in files:
        for stmt in f.body:
            if isinstance(stmt, syn.Attribute):
                diags.append(syn.Diagnostic(syn.ERROR, stmt.start, "unsupported statement type *ast.AttributeStmt",
                                            stmt.end))
                continue
            name = stmt.full_name
            bid = stmt.block_id
            if bid in seen:
                diags.append(syn.Diagnostic(syn.ERROR, stmt.start, "block %s already declared at %s"
                                            % (bid, seen[bid].start), _name_end(stmt, bid)))
                continue
            if name in TOP_BLOCKS:
                seen[bid] = stmt
                cfg.top[name] = stmt
                if stmt.label:
                    diags.append(syn.Diagnostic(syn.ERROR, stmt.start, "block %s requires empty label"
                                                % json.dumps(name), stmt.label_pos))
                diags += syn.typecheck_block(stmt, TOP_BLOCKS[name])
                continue
            if name in ("declare", "argument", "export", "foreach") or name.startswith("import."):
                diags.append(syn.Diagnostic(syn.ERROR, stmt.start, "%s blocks are not modelled by the o11y.stack "
                                            "test stand-in" % name, _name_end(stmt, name)))
                continue
            cdef = COMPONENTS.get(name)
            if cdef is None:
                diags.append(syn.Diagnostic(syn.ERROR, stmt.start, "cannot find the definition of component name %s"
                                            % json.dumps(name), _name_end(stmt, name)))
                continue
            if not stmt.label:
                diags.append(syn.Diagnostic(syn.ERROR, stmt.start, "component %s must have a label"
                                            % json.dumps(name), _name_end(stmt, name)))
            seen[bid] = stmt
            cfg.components[bid] = stmt
            diags += syn.typecheck_block(stmt, cdef.args)
    # references (astutil.ResolveTraversal against the component graph, then the stdlib scope)
    ids = set(cfg.components)
    for block in list(cfg.components.values()) + list(cfg.top.values()):
        for chain, node in syn.body_traversals(block.body):
            if _resolve(chain, ids):
                if chain[0] in STDLIB_NAMES:
                    cfg.warnings.append(syn.Diagnostic(syn.WARN, node.start, "a component is shadowing an existing "
                                                                             "stdlib name", node.end))
                continue
            if chain[0] in STDLIB_NAMES:
                if chain[0] in DEPRECATED_STDLIB:
                    cfg.warnings.append(syn.Diagnostic(syn.WARN, node.start, "this stdlib function is deprecated; "
                                                       "please refer to the documentation for updated usage and "
                                                       "alternatives", node.end))
                continue
            diags.append(syn.Diagnostic(syn.ERROR, node.start, "component %s does not exist or is out of scope"
                                        % json.dumps(".".join(chain)), node.end))
    if diags:
        raise LoadError(diags, sources)
    return cfg


def _name_end(b: syn.Block, text: str) -> syn.Pos:
    return syn.Pos(b.start.filename, b.start.line, b.start.column + len(text) - 1)


def _resolve(chain: List[str], ids) -> Optional[str]:
    for n in range(len(chain), 0, -1):
        cand = ".".join(chain[:n])
        if cand in ids:
            return cand
    return None


# ---------------------------------------------------------------------------
# evaluation (what ``run`` does on load and reload)
# ---------------------------------------------------------------------------

class Component:
    def __init__(self, cid: str, cdef: ComponentDef, block: syn.Block):
        self.id = cid
        self.cdef = cdef
        self.block = block
        self.args: Dict[str, Any] = {}
        self.exports: Dict[str, Any] = {}
        self.health = "healthy"
        self.message = "started component"


def _set_path(scope: Dict[str, Any], parts: List[str], value: Any) -> None:
    cur = scope
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value


def _bdiag(block: syn.Block, message: str) -> syn.Diagnostic:
    return syn.Diagnostic(syn.ERROR, block.start, message, block.end)


def evaluate(cfg: Config, storage_path: str) -> Tuple[Dict[str, Component], Dict[str, Any]]:
    """Evaluate every component in dependency order; raises LoadError."""
    scope = stdlib()
    ids = set(cfg.components)
    deps: Dict[str, set] = {}
    for cid, block in cfg.components.items():
        deps[cid] = {r for r in (_resolve(c, ids) for c, _n in syn.body_traversals(block.body)) if r and r != cid}
    order: List[str] = []
    state: Dict[str, int] = {}

    def visit(cid: str, stack: List[str]):
        if state.get(cid) == 2:
            return
        if state.get(cid) == 1:
            raise LoadError([_bdiag(cfg.components[cid], "cycle detected: %s" % " -> ".join(stack + [cid]))],
                            cfg.sources)
        state[cid] = 1
        for d in sorted(deps[cid]):
            visit(d, stack + [cid])
        state[cid] = 2
        order.append(cid)

    for cid in sorted(cfg.components):
        visit(cid, [])
    comps: Dict[str, Component] = {}
    for cid in order:
        block = cfg.components[cid]
        cdef = COMPONENTS[block.full_name]
        comp = Component(cid, cdef, block)
        try:
            comp.args = syn.decode_block(block, cdef.args, syn.Evaluator(scope), cfg.sources)
        except syn.DecodeError as exc:
            raise LoadError(exc.diags, cfg.sources) from None
        problem = check_component(comp)
        if problem:
            raise LoadError([_bdiag(block, problem)], cfg.sources)
        if cdef.stateful:
            data = os.path.join(storage_path, cid)
            try:
                os.makedirs(data, exist_ok=True)
                probe = os.path.join(data, ".o11y-standin-probe")
                with open(probe, "w", encoding="utf-8"):
                    pass
                os.unlink(probe)
            except OSError as exc:
                raise LoadError([_bdiag(block, "building component: %s: %s" % (
                    data, (exc.strerror or str(exc)).lower()))], cfg.sources) from None
        comp.exports = compute_exports(comp)
        _set_path(scope, block.name + [block.label], comp.exports)
        comps[cid] = comp
    # the top-level config blocks may reference components too
    for name, block in cfg.top.items():
        try:
            syn.decode_block(block, TOP_BLOCKS[name], syn.Evaluator(scope), cfg.sources)
        except syn.DecodeError as exc:
            raise LoadError(exc.diags, cfg.sources) from None
    return comps, scope


def check_component(comp: Component) -> str:
    """The Validate() checks of the components, on the decoded arguments."""
    a = comp.args
    name = comp.cdef.name
    if name == "otelcol.processor.memory_limiter":
        if fw.parse_go_duration(a["check_interval"]) <= 0:
            return "check_interval must be greater than zero"
        limit = _bytes_value(a.get("limit", "0MiB"))
        pct = a.get("limit_percentage", 0)
        if limit > 0 and pct > 0:
            return "either limit or limit_percentage must be set, but not both"
        if limit > 0:
            spike = _bytes_value(a.get("spike_limit", "0MiB"))
            if spike >= limit:
                return "spike_limit must be less than limit"
        elif pct > 0:
            spike_pct = a.get("spike_limit_percentage", 0)
            if not (0 < pct <= 100 and 0 < spike_pct <= 100):
                return ("limit_percentage and spike_limit_percentage must be greater than 0 and and less or "
                        "equal than 100")
        else:
            return "'limit' or 'limit_percentage' must be set"
    if name == "otelcol.processor.batch":
        if a.get("send_batch_max_size", 0) and a.get("send_batch_max_size", 0) < a.get("send_batch_size", 2000):
            return "send_batch_max_size must be greater or equal to send_batch_size when not 0"
    if name == "otelcol.receiver.otlp":
        if not any(k in a for k in ("grpc", "http")):
            return "must specify at least one protocol when using the OTLP receiver"
        for key in ("traces_url_path", "logs_url_path", "metrics_url_path"):
            if "http" in a and a["http"].get(key, "/x") == "":
                return "%s cannot be empty" % key
    if name == "loki.write":
        for ep in a.get("endpoint", []):
            err = go_url_parse_error(ep["url"])
            if err:
                return "failed to parse remote url %s: %s" % (json.dumps(ep["url"]), err)
    if name == "prometheus.remote_write":
        for ep in a.get("endpoint", []):
            err = go_url_parse_error(ep["url"])
            if err:
                return "cannot parse remote_write url %s: %s" % (json.dumps(ep["url"]), err)
    if name == "loki.process":
        for variant, st in _walk_stages(a.get("stage", [])):
            if variant == "json" and not st.get("expressions") and not st.get("regex"):
                return "JMES expressions or regex is required"
            if variant == "json" and st.get("source", None) == "":
                return "empty source"
            if variant in ("labels", "static_labels") and not st.get("values"):
                return "label stage config cannot be empty"
            if variant == "structured_metadata" and not st.get("values") and not st.get("regex"):
                return "label stage config cannot be empty"
    if name in ("loki.relabel", "discovery.relabel") or name == "prometheus.remote_write":
        rules = a.get("rule", [])
        for ep in a.get("endpoint", []) if name == "prometheus.remote_write" else []:
            rules = rules + ep.get("write_relabel_config", [])
        for r in rules:
            action = r.get("action", "replace")
            if action in ("replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal") \
                    and not r.get("target_label"):
                return "relabel configuration for %s action requires 'target_label' value" % action
    return ""


def go_url_parse_error(u: str) -> str:
    """The error Go's url.Parse returns for *u*, or '' (it accepts relative references)."""
    head = "parse %s: " % json.dumps(u)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in u):
        return head + "net/url: invalid control character in URL"
    bad = re.search(r"%(?![0-9a-fA-F]{2})(.{0,2})", u)
    if bad:
        return head + "invalid URL escape %s" % json.dumps("%" + bad.group(1))
    if u.startswith(":"):
        return head + "missing protocol scheme"
    m = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)", u)
    if m:
        host = m.group(1).rsplit("@", 1)[-1]
        port = ""
        if not host.startswith("[") and ":" in host:
            host, port = host.rsplit(":", 1)
            if not port.isdigit() and port != "":
                return head + "invalid port %s after host" % json.dumps(":" + port)
        for c in host:
            if c in ' <>"{}|\\^`':
                return head + "invalid character %s in host name" % json.dumps(c)
    return ""


def _walk_stages(stages):
    for variant, st in stages:
        yield variant, st
        if variant == "match":
            yield from _walk_stages(st.get("stage", []))


def _bytes_value(text: str) -> int:
    m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTPE]?)(i?)B?\s*$", text, re.I)
    if not m:
        return 0
    mult = 1024 if m.group(3) or m.group(2) else 1
    power = " KMGTPE".index(m.group(2).upper() or " ")
    return int(float(m.group(1)) * mult ** power)


def compute_exports(comp: Component) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for name, kind in comp.cdef.exports.items():
        if kind:
            out[name] = syn.Capsule(kind, comp.id)
    if comp.cdef.name == "local.file_match":
        out["targets"] = match_files(comp.args["path_targets"])
    if comp.cdef.name == "discovery.relabel":
        out["output"] = relabel_targets(comp.args["targets"], comp.args.get("rule", []))
    return out


def match_files(path_targets: List[Dict[str, str]]) -> List[Dict[str, str]]:
    """local.file_match: one target per file matching ``__path__`` (``**`` recurses)."""
    out = []
    for t in path_targets:
        pattern = t.get("__path__", "")
        if not pattern:
            continue
        excluded = set(glob.glob(t["__path_exclude__"], recursive=True)) if t.get("__path_exclude__") else set()
        for p in sorted(glob.glob(pattern, recursive=True)):
            if p in excluded or os.path.isdir(p):
                continue
            nt = {k: v for k, v in t.items() if k != "__path_exclude__"}
            nt["__path__"] = p
            out.append(nt)
    return out


def relabel_targets(targets: List[Dict[str, str]], rules: List[Dict[str, Any]]) -> List[Dict[str, str]]:
    out = []
    for t in targets:
        res = apply_relabel(dict(t), rules)
        if res is not None:
            out.append(res)
    return out


def apply_relabel(labels: Dict[str, str], rules: List[Dict[str, Any]]) -> Optional[Dict[str, str]]:
    """Prometheus relabelling for the common actions (defaults: separator ';', regex '(.*)', replacement '$1')."""
    for r in rules:
        action = r.get("action", "replace")
        regex = re.compile("^(?:%s)$" % r.get("regex", "(.*)"))
        sep = r.get("separator", ";")
        value = sep.join(labels.get(s, "") for s in r.get("source_labels", []))
        repl = re.sub(r"\$(\d+)|\$\{(\d+)\}", lambda m: "\\" + (m.group(1) or m.group(2)), r.get("replacement", "$1"))
        if action == "keep" and not regex.match(value):
            return None
        if action == "drop" and regex.match(value):
            return None
        if action == "replace":
            m = regex.match(value)
            if m:
                target = m.expand(r.get("target_label", ""))
                new = m.expand(repl)
                if new:
                    labels[target] = new
                else:
                    labels.pop(target, None)
        elif action == "labeldrop":
            labels = {k: v for k, v in labels.items() if not regex.match(k)}
        elif action == "labelkeep":
            labels = {k: v for k, v in labels.items() if regex.match(k)}
        elif action == "labelmap":
            for k, v in list(labels.items()):
                m = regex.match(k)
                if m:
                    labels[m.expand(repl)] = v
        elif action in ("lowercase", "uppercase"):
            labels[r["target_label"]] = value.lower() if action == "lowercase" else value.upper()
    return labels


# ---------------------------------------------------------------------------
# the component graph at run time: receivers -> processors -> exporters
# ---------------------------------------------------------------------------

GRPC_EXPORT = {"traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
               "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
               "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"}
GRPC_SIGNAL = {m: s for s, m in GRPC_EXPORT.items()}
ITEM_NAME = {"traces": "spans", "logs": "log_records", "metrics": "metric_points"}
# what the collector's exporters expect to be retried (HTTP); other 4xx are permanent
RETRYABLE_HTTP = (429, 502, 503, 504)

# OTLP unit -> Prometheus unit words (otlptranslator's unit maps, common entries)
UNIT_WORDS = {"d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
              "us": "microseconds", "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes",
              "GiBy": "gibibytes", "TiBy": "tibibytes", "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes",
              "TBy": "terabytes", "m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts",
              "g": "grams", "Cel": "celsius", "Hz": "hertz", "%": "percent"}
PER_UNIT_WORDS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}


def prometheus_metric_name(name: str, unit: str, gauge: bool, monotonic: bool, suffixes: bool = True) -> str:
    """otlptranslator's BuildCompliantMetricName: tokens of the name, unit words and _total/_ratio appended."""
    if not suffixes:
        out = re.sub(r"[^a-zA-Z0-9_:]", "_", name)
        return "_" + out if out[:1].isdigit() else out
    tokens = [t for t in re.split(r"[^a-zA-Z0-9:]+", name) if t]
    unit = re.sub(r"\{[^}]*\}", "", unit or "").strip()
    main, _, per = unit.partition("/")
    main_word = UNIT_WORDS.get(main, main if main != "1" else "")
    per_word = PER_UNIT_WORDS.get(per, per)
    for word in ([w for w in re.split(r"[^a-zA-Z0-9]+", main_word) if w] if main_word else []):
        if word not in tokens:
            tokens.append(word)
    if per_word:
        tokens += [t for t in ("per", per_word) if t not in tokens] if "per" not in tokens else []
    if monotonic:
        tokens = [t for t in tokens if t != "total"] + ["total"]
    if gauge and unit == "1" and "ratio" not in tokens:
        tokens.append("ratio")
    out = "_".join(tokens)
    return "_" + out if out[:1].isdigit() else out


def prometheus_label_name(name: str) -> str:
    out = re.sub(r"[^a-zA-Z0-9_]", "_", name)
    if out[:1].isdigit():
        return "key_" + out
    return out


def otlp_to_samples(doc: Dict[str, Any], args: Dict[str, Any]) -> List[Tuple[Dict[str, str], float, int]]:
    """otelcol.exporter.prometheus: gauge and sum data points as (labels, value, ms timestamp).

    ``job`` is service.namespace/service.name, ``instance`` service.instance.id, data point attributes become
    labels, and the scope adds otel_scope_name/otel_scope_version (include_scope_labels, on by default);
    other resource attributes go to one ``target_info`` series (include_target_info, on by default).
    Histograms, summaries and exponential histograms are not converted by this stand-in.
    """
    suffixes = args.get("add_metric_suffixes", True)
    out: List[Tuple[Dict[str, str], float, int]] = []
    for res in doc.get("resourceMetrics") or []:
        rattrs = otlp.attributes((res.get("resource") or {}).get("attributes"))
        service = otlp.string_value(rattrs.get("service.name", ""))
        namespace = otlp.string_value(rattrs.get("service.namespace", ""))
        base: Dict[str, str] = {}
        if service:
            base["job"] = "%s/%s" % (namespace, service) if namespace else service
        if rattrs.get("service.instance.id") not in (None, ""):
            base["instance"] = otlp.string_value(rattrs["service.instance.id"])
        latest = 0
        for scope_metrics in res.get("scopeMetrics") or []:
            scope = scope_metrics.get("scope") or {}
            scope_labels: Dict[str, str] = {}
            if args.get("include_scope_labels", True):
                if scope.get("name"):
                    scope_labels["otel_scope_name"] = scope["name"]
                if scope.get("version"):
                    scope_labels["otel_scope_version"] = scope["version"]
            for metric in scope_metrics.get("metrics") or []:
                if isinstance(metric.get("gauge"), dict):
                    points, gauge, monotonic = metric["gauge"].get("dataPoints") or [], True, False
                elif isinstance(metric.get("sum"), dict):
                    monotonic = bool(metric["sum"].get("isMonotonic"))
                    points, gauge = metric["sum"].get("dataPoints") or [], not monotonic
                else:
                    continue
                name = prometheus_metric_name(metric.get("name", ""), metric.get("unit", ""), gauge, monotonic,
                                              suffixes)
                for point in points:
                    labels = {prometheus_label_name(k): otlp.string_value(v)
                              for k, v in otlp.attributes(point.get("attributes")).items()}
                    labels.update(scope_labels)
                    labels.update(base)
                    labels["__name__"] = name
                    value = float(point["asDouble"]) if "asDouble" in point else float(int(point.get("asInt", 0)))
                    ts = int(point.get("timeUnixNano") or 0) // 1_000_000 or int(time.time() * 1000)
                    latest = max(latest, ts)
                    out.append((labels, value, ts))
        others = {k: v for k, v in rattrs.items() if k not in ("service.name", "service.namespace",
                                                                "service.instance.id")}
        if others and latest and args.get("include_target_info", True):
            info = {prometheus_label_name(k): otlp.string_value(v) for k, v in others.items()}
            info.update(base)
            info["__name__"] = "target_info"
            out.append((info, 1.0, latest))
    return out


def remote_write_request(samples: List[Tuple[Dict[str, str], float, int]]) -> bytes:
    """prometheus.WriteRequest (remote write 1.0): timeseries(1){labels(1){name, value}, samples(2){value, ts}}."""
    body = bytearray()
    for labels, value, ts in samples:
        series = b"".join(wire.field_bytes(1, wire.field_str(1, k) + wire.field_str(2, v))
                          for k, v in sorted(labels.items()))
        series += wire.field_bytes(2, wire.field_double(1, value) + wire.field_varint(2, ts))
        body += wire.field_bytes(1, series)
    return bytes(body)


class SendError(Exception):
    def __init__(self, message: str, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


def http_send(url: str, body: bytes, headers: Dict[str, str], timeout: float = 5.0) -> None:
    import urllib.error
    import urllib.request
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
    except urllib.error.HTTPError as exc:
        text = exc.read()[:512].decode("utf-8", "replace").strip()
        raise SendError("server returned HTTP status %d %s: %s" % (exc.code, exc.reason, text),
                        exc.code in RETRYABLE_HTTP or exc.code >= 500) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SendError('Post "%s": %s' % (url, reason)) from None


class Exporter:
    """An exporter's sending queue: a worker thread sends each batch, retrying with exponential backoff
    (retry_on_failure / queue_config backoff) until it succeeds, fails permanently or runs out of time."""

    def __init__(self, runner: "Runner", comp: "Component"):
        self.runner = runner
        self.comp = comp
        self.id = comp.id
        name = comp.cdef.name
        a = comp.args
        retry = a.get("retry_on_failure") or {}
        if name == "prometheus.remote_write":
            qc = (a.get("endpoint") or [{}])[0].get("queue_config") or {}
            self.initial = fw.parse_go_duration(qc.get("min_backoff", "30ms"))
            self.max_interval = fw.parse_go_duration(qc.get("max_backoff", "5s"))
            self.max_elapsed = 300.0
            self.enabled = True
        else:
            self.initial = fw.parse_go_duration(retry.get("initial_interval", "5s"))
            self.max_interval = fw.parse_go_duration(retry.get("max_interval", "30s"))
            self.max_elapsed = fw.parse_go_duration(retry.get("max_elapsed_time", "5m"))
            self.enabled = retry.get("enabled", True)
        self.multiplier = float(retry.get("multiplier", 1.5)) if name != "prometheus.remote_write" else 2.0
        self.pending: List[List[Any]] = []  # [due, first attempt, interval, signal, payload, items]
        self.cond = threading.Condition()
        self.stopped = False
        self.thread = threading.Thread(target=self._loop, name="export-" + self.id, daemon=True)
        self.thread.start()

    def key(self):
        return self.comp.cdef.name, repr(self.comp.args)

    def enqueue(self, sig: str, payload: Any, items: int) -> None:
        with self.cond:
            now = time.monotonic()
            self.pending.append([now, now, self.initial, sig, payload, items])
            self.cond.notify()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify()

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self.stopped:
                    now = time.monotonic()
                    due = [p for p in self.pending if p[0] <= now]
                    if due:
                        job = min(due, key=lambda p: p[0])
                        self.pending.remove(job)
                        break
                    wait = min((p[0] for p in self.pending), default=now + 1.0) - now
                    self.cond.wait(max(0.01, wait))
                if self.stopped:
                    return
            self._attempt(job)

    def _attempt(self, job: List[Any]) -> None:
        _due, first, interval, sig, payload, items = job
        try:
            self.send(sig, payload)
        except SendError as exc:
            elapsed = time.monotonic() - first
            if exc.retryable and self.enabled and elapsed + interval <= self.max_elapsed:
                self.retried(sig, items, str(exc), interval)
                job[0] = time.monotonic() + interval
                job[2] = min(interval * self.multiplier, self.max_interval)
                with self.cond:
                    self.pending.append(job)
                return
            self.failed(sig, items, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a sender bug must not kill the queue
            self.failed(sig, items, str(exc))
            return
        self.sent(sig, payload, items)

    # -- per exporter ---------------------------------------------------------
    def _labels(self) -> Dict[str, str]:
        return {"component_id": self.id, "component_path": "/"}

    def send(self, sig: str, payload: Any) -> None:
        raise NotImplementedError

    def sent(self, sig: str, payload: Any, items: int) -> None:
        self.runner.metrics.inc("otelcol_exporter_sent_%s_total" % ITEM_NAME[sig],
                                "Number of %s successfully sent to destination." % ITEM_NAME[sig].replace("_", " "),
                                items, self._labels())

    def retried(self, sig: str, items: int, err: str, interval: float) -> None:
        self.runner.log.warn("Exporting failed. Will retry the request after interval.", component_path="/",
                             component_id=self.id, error=err, interval=fw.format_go_duration(interval))

    def failed(self, sig: str, items: int, err: str) -> None:
        self.runner.metrics.inc("otelcol_exporter_send_failed_%s_total" % ITEM_NAME[sig],
                                "Number of %s in failed attempts to send to destination." %
                                ITEM_NAME[sig].replace("_", " "), items, self._labels())
        self.runner.log.error("Exporting failed. Dropping data.", component_path="/", component_id=self.id,
                              error=err, dropped_items=items)


def _client_headers(client: Dict[str, Any]) -> Dict[str, str]:
    return {str(k): str(v) for k, v in (client.get("headers") or {}).items()}


class OTLPGrpcExporter(Exporter):
    """otelcol.exporter.otlp: Export calls over gRPC; cleartext only (``tls { insecure = true }``)."""

    def send(self, sig: str, payload: Any) -> None:
        client = self.comp.args["client"]
        endpoint = re.sub(r"^(dns:///|https?://)", "", client["endpoint"])
        if not (client.get("tls") or {}).get("insecure", False):
            raise SendError('rpc error: code = Unavailable desc = connection error: desc = "transport: '
                            'authentication handshake failed: tls: first record does not look like a TLS handshake"')
        timeout = fw.parse_go_duration(self.comp.args.get("timeout", "5s"))
        try:
            grpc_h2c.call(endpoint, GRPC_EXPORT[sig], otlp.encode(sig, payload), _client_headers(client),
                          timeout=timeout, compress=client.get("compression", "gzip") == "gzip")
        except grpc_h2c.GrpcError as exc:
            retryable = exc.status in (grpc_h2c.CANCELLED, grpc_h2c.DEADLINE_EXCEEDED, grpc_h2c.RESOURCE_EXHAUSTED,
                                       grpc_h2c.UNAVAILABLE, 10, 11, 15)  # Aborted, OutOfRange, DataLoss
            raise SendError(str(exc), retryable) from None


class OTLPHttpExporter(Exporter):
    """otelcol.exporter.otlphttp: POST <endpoint>/v1/<signal>, protobuf unless ``encoding = "json"``."""

    def send(self, sig: str, payload: Any) -> None:
        a = self.comp.args
        client = a["client"]
        url = a.get("%s_endpoint" % sig) or client["endpoint"].rstrip("/") + "/v1/" + sig
        if a.get("encoding", "proto") == "json":
            body, ctype = json.dumps(payload).encode(), "application/json"
        else:
            body, ctype = otlp.encode(sig, payload), "application/x-protobuf"
        headers = {"Content-Type": ctype, "User-Agent": "Alloy/%s" % version()}
        if client.get("compression", "gzip") == "gzip":
            body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
        headers.update(_client_headers(client))
        http_send(url, body, headers, fw.parse_go_duration(client.get("timeout", "30s")))


class RemoteWriteExporter(Exporter):
    """prometheus.remote_write: remote write 1.0 to every endpoint (snappy-compressed WriteRequest)."""

    def _endpoint_labels(self, ep: Dict[str, Any]) -> Dict[str, str]:
        name = ep.get("name") or hashlib.sha256(ep["url"].encode()).hexdigest()[:6]
        return {"component_id": self.id, "component_path": "/", "remote_name": name, "url": ep["url"]}

    def send(self, sig: str, payload: Any) -> None:
        for ep in self.comp.args.get("endpoint") or []:
            body = wire.snappy_encode(remote_write_request(payload))
            headers = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                       "X-Prometheus-Remote-Write-Version": "0.1.0", "User-Agent": "Alloy/%s" % version()}
            headers.update({str(k): str(v) for k, v in (ep.get("headers") or {}).items()})
            auth = ep.get("basic_auth")
            if auth:
                password = str(auth.get("password", ""))
                if not password and auth.get("password_file"):
                    with open(auth["password_file"], encoding="utf-8") as fh:
                        password = fh.read().strip()
                token = base64.b64encode(("%s:%s" % (auth.get("username", ""), password)).encode()).decode()
                headers["Authorization"] = "Basic " + token
            http_send(ep["url"], body, headers, fw.parse_go_duration(ep.get("remote_timeout", "30s")))
            self.runner.metrics.inc("prometheus_remote_storage_bytes_total", "The total number of bytes of data "
                                    "(not metadata) sent by the queue after compression.", len(body),
                                    self._endpoint_labels(ep))

    def _each(self, name: str, help_text: str, n: int) -> None:
        for ep in self.comp.args.get("endpoint") or []:
            self.runner.metrics.inc(name, help_text, n, self._endpoint_labels(ep))

    def sent(self, sig: str, payload: Any, items: int) -> None:
        self._each("prometheus_remote_storage_samples_total", "Total number of samples sent to remote storage.",
                   items)

    def retried(self, sig: str, items: int, err: str, interval: float) -> None:
        self._each("prometheus_remote_storage_samples_retried_total", "Total number of samples which failed on "
                   "send to remote storage but were retried because the send error was recoverable.", items)
        self.runner.log.warn("Failed to send batch, retrying", component_path="/", component_id=self.id, err=err)

    def failed(self, sig: str, items: int, err: str) -> None:
        self._each("prometheus_remote_storage_samples_failed_total", "Total number of samples which failed on send "
                   "to remote storage, non-recoverable errors.", items)
        self.runner.log.error("non-recoverable error", component_path="/", component_id=self.id, err=err,
                              count=items)


EXPORTERS = {"otelcol.exporter.otlp": OTLPGrpcExporter, "otelcol.exporter.otlphttp": OTLPHttpExporter,
             "prometheus.remote_write": RemoteWriteExporter}


class Pipeline:
    """Delivers received OTLP data along the ``output`` references of the loaded components."""

    def __init__(self, runner: "Runner"):
        self.runner = runner
        self.exporters: Dict[str, Exporter] = {}
        self.batches: Dict[Tuple[str, str], List[Any]] = {}  # (component, signal) -> [first time, docs, items]
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._flush_loop, name="batch-flush", daemon=True)
        self.thread.start()

    def apply(self, comps: Dict[str, "Component"]) -> None:
        """Keep the senders whose arguments did not change; start new ones, stop the rest."""
        with self.lock:
            wanted = {cid: c for cid, c in comps.items() if c.cdef.name in EXPORTERS}
            for cid, exp in list(self.exporters.items()):
                if cid not in wanted or (wanted[cid].cdef.name, repr(wanted[cid].args)) != exp.key():
                    exp.stop()
                    del self.exporters[cid]
            for cid, c in wanted.items():
                if cid not in self.exporters:
                    self.exporters[cid] = EXPORTERS[c.cdef.name](self.runner, c)

    def consume(self, cid: str, sig: str, doc: Dict[str, Any]) -> None:
        """Hand one request to component ``cid`` (a receiver's output target)."""
        comp = self.runner.components.get(cid)
        if comp is None:
            return
        name = comp.cdef.name
        n = otlp.count(sig, doc)
        if name in ("otelcol.receiver.otlp", "otelcol.processor.memory_limiter"):
            for target in (comp.args.get("output") or {}).get(sig) or []:
                self.consume(target.owner, sig, doc)
        elif name == "otelcol.processor.batch":
            limit = int(comp.args.get("send_batch_size", 8192))
            with self.lock:
                entry = self.batches.setdefault((cid, sig), [time.monotonic(), [], 0])
                entry[1].append(doc)
                entry[2] += n
                full = limit > 0 and entry[2] >= limit
            if full:
                self._flush(cid, sig)
        elif name == "otelcol.exporter.prometheus":
            samples = otlp_to_samples(doc, comp.args)
            for target in comp.args.get("forward_to") or []:
                exp = self.exporters.get(target.owner)
                if exp is not None and samples:
                    exp.enqueue(sig, samples, len(samples))
        elif cid in self.exporters:
            self.exporters[cid].enqueue(sig, doc, n)

    def _flush(self, cid: str, sig: str) -> None:
        with self.lock:
            entry = self.batches.pop((cid, sig), None)
        comp = self.runner.components.get(cid)
        if entry is None or comp is None:
            return
        merged = otlp.merge(sig, entry[1])
        for target in (comp.args.get("output") or {}).get(sig) or []:
            self.consume(target.owner, sig, merged)

    def _flush_loop(self) -> None:
        while not self.stop_event.wait(0.05):
            now = time.monotonic()
            with self.lock:
                keys = list(self.batches)
            for cid, sig in keys:
                comp = self.runner.components.get(cid)
                timeout = fw.parse_go_duration((comp.args if comp else {}).get("timeout", "200ms"))
                with self.lock:
                    entry = self.batches.get((cid, sig))
                if entry is not None and now - entry[0] >= timeout:
                    try:
                        self._flush(cid, sig)
                    except Exception as exc:  # noqa: BLE001 - the flusher must keep running
                        self.runner.log.error("batch flush failed", component_id=cid, err=str(exc))

    def stop(self) -> None:
        self.stop_event.set()
        for (cid, sig) in list(self.batches):  # what the batch processor holds goes out on shutdown
            self._flush(cid, sig)
        with self.lock:
            exporters = list(self.exporters.values())
        deadline = time.monotonic() + 2.0
        for exp in exporters:  # give queued sends a moment, like the collector's shutdown drain
            while exp.pending and time.monotonic() < deadline and any(p[0] <= time.monotonic() for p in exp.pending):
                time.sleep(0.05)
            exp.stop()


# ---------------------------------------------------------------------------
# logging
# ---------------------------------------------------------------------------

class AlloyLogger(fw.Logger):
    """Alloy's logfmt/json lines (``ts=... level=... msg=...``); the logging block sets ``level`` and ``fmt``."""

    def __init__(self, stream=None):
        super().__init__("alloy", stream=stream)

    def format_line(self, level: str, msg: str, kv: Dict[str, Any]) -> str:
        ts = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if self.fmt == "json":
            rec = {"ts": ts, "level": level, "msg": msg}
            rec.update({k: str(v) for k, v in kv.items()})
            return json.dumps(rec)
        parts = ["ts=" + ts, "level=" + level, "msg=" + self._lf(msg)]
        parts += ["%s=%s" % (k, self._lf(v)) for k, v in kv.items()]
        return " ".join(parts)


# ---------------------------------------------------------------------------
# the running process
# ---------------------------------------------------------------------------

SIGNALS = ("traces", "metrics", "logs")
ACCEPTED_METRIC = {"traces": ("otelcol_receiver_accepted_spans_total",
                              "Number of spans successfully pushed into the pipeline."),
                   "metrics": ("otelcol_receiver_accepted_metric_points_total",
                               "Number of metric points successfully pushed into the pipeline."),
                   "logs": ("otelcol_receiver_accepted_log_records_total",
                            "Number of log records successfully pushed into the pipeline.")}
REFUSED_METRIC = {"traces": "otelcol_receiver_refused_spans_total",
                  "metrics": "otelcol_receiver_refused_metric_points_total",
                  "logs": "otelcol_receiver_refused_log_records_total"}


class Receiver:
    """The listeners of one otelcol.receiver.otlp component."""

    def __init__(self, runner: "Runner", cid: str, grpc: Optional[str], http: Optional[Dict[str, str]]):
        self.runner = runner
        self.cid = cid
        self.grpc = grpc
        self.http = http  # endpoint + url paths
        self.services: List[Any] = []

    def key(self):
        return (self.grpc, tuple(sorted((self.http or {}).items())))

    def start(self) -> None:
        try:
            if self.grpc is not None:
                host, port = fw.parse_listen_address(self.grpc)
                self.services.append(grpc_h2c.GrpcServer(self.cid + "-grpc", host, port, self._grpc))
            if self.http is not None:
                self.services.append(fw.HTTPService(self.cid + "-http", self.http["endpoint"], self.router()).start())
        except (OSError, ValueError):
            self.stop()
            raise

    def stop(self) -> None:
        for s in self.services:
            try:
                s.stop()
            except Exception:  # noqa: BLE001 - keep stopping the rest
                pass
        self.services = []

    def router(self) -> fw.Router:
        r = fw.Router()
        for sig in SIGNALS:
            r.add(self.http["%s_url_path" % sig], self._handler(sig), methods=("POST",))
        return r

    def _handler(self, sig: str):
        def handle(req):
            body = req.get_data()
            enc = (req.headers.get("Content-Encoding") or "").lower()
            try:
                if enc == "gzip":
                    body = gzip.decompress(body)
                elif enc in ("deflate", "zlib"):
                    body = zlib.decompress(body)
                elif enc not in ("", "identity"):
                    return 400, "unsupported Content-Encoding: %s" % enc
            except (OSError, zlib.error, EOFError) as exc:
                return 400, str(exc)
            try:
                decoded = otlp.decode_http(sig, body, req.mimetype)
            except (ValueError, AttributeError, TypeError) as exc:
                self.runner.metrics.inc(REFUSED_METRIC[sig], "", 0, self._labels("http"))
                return 400, "proto: %s" % exc
            if decoded is None:
                return 415, otlp.UNSUPPORTED_MEDIA_TYPE
            doc, reply, rtype = decoded
            self._accept(sig, doc, "http")
            return 200, reply, {"Content-Type": rtype}
        return handle

    def _grpc(self, method: str, _metadata: Dict[str, str], message: bytes):
        sig = GRPC_SIGNAL.get(method)
        if sig is None:
            return grpc_h2c.UNIMPLEMENTED, "unknown service %s" % method.strip("/").rpartition("/")[0], b""
        try:
            doc = otlp.decode(sig, message)
        except ValueError as exc:
            return grpc_h2c.INTERNAL, "grpc: error unmarshalling request: %s" % exc, b""
        self._accept(sig, doc, "grpc")
        return grpc_h2c.OK, "", b""

    def _accept(self, sig: str, doc: Dict[str, Any], transport: str) -> None:
        name, help_text = ACCEPTED_METRIC[sig]
        self.runner.metrics.inc(name, help_text, otlp.count(sig, doc), self._labels(transport))
        self.runner.pipeline.consume(self.cid, sig, doc)

    def _labels(self, transport: str) -> Dict[str, str]:
        return {"component_id": self.cid, "component_path": "/", "receiver": "otlp", "transport": transport}


class Runner:
    def __init__(self, config_path: str, http_addr: str, storage_path: str, log: AlloyLogger):
        self.config_path = config_path
        self.http_addr = http_addr
        self.storage_path = storage_path
        self.log = log
        self.started = time.time()
        self.metrics = fw.Metrics()
        self.metrics.build_info("alloy", {"version": version(), "revision": revision(), "branch": "HEAD",
                                          "goversion": goversion()}, tags=BUILD_TAGS)
        self.metrics.collectors.append(self._collect)
        self.components: Dict[str, Component] = {}
        self.receivers: Dict[str, Receiver] = {}
        self.config: Optional[Config] = None
        self.ready = False
        self.lock = threading.RLock()
        self.http: Optional[fw.HTTPService] = None
        self.stop_event = threading.Event()
        self.checker: Optional[threading.Thread] = None
        self._reported: set = set()  # unreadable files already logged
        self.pipeline = Pipeline(self)

    # -- metrics --------------------------------------------------------------
    def _collect(self, m: fw.Metrics) -> None:
        m.gauge("alloy_resources_process_start_time_seconds", "start time of the process since unix epoch in seconds",
                self.started)
        with self.lock:
            healthy = sum(1 for c in self.components.values() if c.health == "healthy")
            unhealthy = len(self.components) - healthy
        for ht, n in (("healthy", healthy), ("unhealthy", unhealthy)):
            m.gauge("alloy_component_controller_running_components", "Total number of running components.", n,
                    {"controller_id": "", "controller_path": "/", "health_type": ht})

    def _config_metrics(self, ok: bool, digest: str) -> None:
        m = self.metrics
        m.gauge("alloy_config_last_load_successful", "Config loaded successfully.", 1 if ok else 0)
        if ok:
            m.gauge("alloy_config_last_load_success_timestamp_seconds",
                    "Timestamp of the last successful configuration load.", time.time())
            with m._lock:
                fam = m._families.get("alloy_config_hash")
                if fam:
                    fam["samples"].clear()
            m.gauge("alloy_config_hash", "Hash of the currently active config file.", 1,
                    {"cluster_name": "", "sha256": digest})
        else:
            m.inc("alloy_config_load_failures_total", "Configuration load failures.")

    # -- loading --------------------------------------------------------------
    def load(self) -> None:
        """Load (or reload) the configuration; raises LoadError, keeps the running one on failure."""
        try:
            sources = read_sources(self.config_path)
        except OSError as exc:
            self._config_metrics(False, "")
            raise LoadError(text="reading config path %s: open %s: %s" % (
                json.dumps(self.config_path), self.config_path, (exc.strerror or str(exc)).lower())) from None
        try:
            cfg = validate(sources)
            comps, _scope = evaluate(cfg, self.storage_path)
        except LoadError:
            self._config_metrics(False, "")
            raise
        with self.lock:
            self._apply_logging(cfg, comps)
            self._apply_receivers(comps)
            self.components = comps
            self.pipeline.apply(comps)
            self.config = cfg
        self._config_metrics(True, cfg.hash)
        self.check_sources()

    def _apply_logging(self, cfg: Config, comps: Dict[str, Component]) -> None:
        block = cfg.top.get("logging")
        level, fmt = "info", "logfmt"
        if block is not None:
            vals = syn.decode_block(block, TOP_BLOCKS["logging"], syn.Evaluator(stdlib_scope(comps)), cfg.sources)
            level = vals.get("level", level)
            fmt = vals.get("format", fmt)
        self.log.level, self.log.fmt = self.log.LEVELS.get(level, 20), fmt

    def _apply_receivers(self, comps: Dict[str, Component]) -> None:
        wanted: Dict[str, Receiver] = {}
        for cid, c in comps.items():
            if c.cdef.name != "otelcol.receiver.otlp":
                continue
            grpc = http = None
            if "grpc" in c.args:
                grpc = c.args["grpc"].get("endpoint", "0.0.0.0:4317")
            if "http" in c.args:
                h = c.args["http"]
                http = {"endpoint": h.get("endpoint", "0.0.0.0:4318"),
                        "traces_url_path": h.get("traces_url_path", "/v1/traces"),
                        "metrics_url_path": h.get("metrics_url_path", "/v1/metrics"),
                        "logs_url_path": h.get("logs_url_path", "/v1/logs")}
            wanted[cid] = Receiver(self, cid, grpc, http)
        for cid, rec in list(self.receivers.items()):
            if cid not in wanted or wanted[cid].key() != rec.key():
                rec.stop()
                del self.receivers[cid]
        for cid, rec in wanted.items():
            if cid in self.receivers:
                continue
            try:
                rec.start()
                self.receivers[cid] = rec
                self.log.info("Starting GRPC/HTTP server", component_path="/", component_id=cid,
                              grpc=rec.grpc or "", http=(rec.http or {}).get("endpoint", ""))
            except (OSError, ValueError) as exc:
                comps[cid].health, comps[cid].message = "unhealthy", str(exc)
                self.log.error("failed to start receiver", component_path="/", component_id=cid, err=str(exc))

    # -- sources: journal and files -------------------------------------------
    def check_sources(self) -> None:
        with self.lock:
            comps = list(self.components.values())
        for c in comps:
            if c.cdef.name == "loki.source.journal":
                err = journal_problem(c.args.get("path", ""), c.args.get("matches", ""))
                if err:
                    if c.health == "healthy":
                        self.log.error("error creating journal tailer", component_path="/", component_id=c.id,
                                       err=err, path=c.args.get("path", ""))
                    c.health, c.message = "unhealthy", "error creating journal tailer: " + err
                else:
                    c.health, c.message = "healthy", "started component"
            elif c.cdef.name == "loki.source.file":
                active = 0
                for t in c.args.get("targets", []):
                    path = t.get("__path__", "")
                    try:
                        with open(path, "rb"):
                            active += 1
                    except OSError as exc:
                        key = (c.id, path, exc.errno)
                        if key not in self._reported:
                            self._reported.add(key)
                            self.log.error("failed to tail file", component_path="/", component_id=c.id,
                                           path=path, err="open %s: %s" % (path, (exc.strerror or "").lower()))
                self.metrics.gauge("loki_source_file_files_active_total", "Number of active files.", active,
                                   {"component_id": c.id, "component_path": "/"})

    def _checker_loop(self) -> None:
        while not self.stop_event.wait(5.0):
            try:
                with self.lock:
                    comps = dict(self.components)
                for c in comps.values():
                    if c.cdef.name == "local.file_match":
                        c.exports["targets"] = match_files(c.args["path_targets"])
                self.check_sources()
            except Exception as exc:  # noqa: BLE001 - the checker must keep running
                self.log.error("source check failed", err=str(exc))

    # -- HTTP -----------------------------------------------------------------
    def router(self) -> fw.Router:
        r = fw.Router()
        r.add("/-/ready", lambda req: (200, "Alloy is ready.\n") if self.ready else (503, "Alloy is not ready.\n"))
        r.add("/-/healthy", self._healthy)
        r.add("/metrics", lambda req: self.metrics.wsgi_response())
        r.add("/-/reload", self._reload_http, methods=("GET", "POST"))
        r.add("/", lambda req: (200, "<!doctype html><title>Grafana Alloy</title>\n",
                                {"Content-Type": "text/html; charset=utf-8"}))
        return r

    def _healthy(self, req):
        with self.lock:
            bad = sorted(c.cdef.name for c in self.components.values() if c.health != "healthy")
        if bad:
            return 500, "unhealthy components: %s\n" % ", ".join(bad)
        return 200, "All Alloy components are healthy.\n"

    def _reload_http(self, req):
        self.log.info("reload requested via /-/reload endpoint", service="http")
        try:
            self.reload()
        except LoadError as exc:
            self.log.error("failed to reload config", service="http", err=reload_error_text(exc, self.config_path))
            return 400, reload_error_text(exc, self.config_path) + "\n"
        self.log.info("config reloaded", service="http")
        return 200, "config reloaded\n"

    def reload(self) -> None:
        self.load()

    # -- lifecycle ------------------------------------------------------------
    def start_http(self) -> None:
        self.http = fw.HTTPService("http", self.http_addr, self.router()).start()
        self.log.info("now listening for http traffic", service="http", addr=self.http_addr)

    def start_checker(self) -> None:
        self.checker = threading.Thread(target=self._checker_loop, name="source-checker", daemon=True)
        self.checker.start()

    def stop(self) -> None:
        self.stop_event.set()
        for rec in list(self.receivers.values()):
            rec.stop()
        self.pipeline.stop()
        if self.http is not None:
            self.http.stop()


def stdlib_scope(comps: Dict[str, Component]) -> Dict[str, Any]:
    scope = stdlib()
    for c in comps.values():
        _set_path(scope, c.block.name + [c.block.label], c.exports)
    return scope


def journal_problem(path: str, matches: str = "") -> str:
    """'' when the tailer can start (matches parse, a journal file can be read), else why not."""
    for m in matches.split():
        if len(m.split("=")) != 2:
            return "Error parsing journal reader 'matches' config value"
    dirs = [path] if path else ["/var/log/journal", "/run/log/journal"]
    files: List[str] = []
    for d in dirs:
        files += glob.glob(os.path.join(d, "*.journal")) + glob.glob(os.path.join(d, "*", "*.journal"))
        if os.path.isdir(d) and not os.access(d, os.R_OK | os.X_OK):
            return "open %s: permission denied" % d
    if not files:
        return "no journal files found in %s" % ", ".join(dirs)
    for f in files:
        try:
            with open(f, "rb"):
                return ""
        except OSError:
            continue
    return "no journal files could be opened (permission denied); the user needs the systemd-journal group"


def reload_error_text(exc: LoadError, config_path: str) -> str:
    if exc.text:
        return exc.text
    if exc.phase == "parse":
        return "reading config path %s: %s" % (json.dumps(config_path), exc)
    return "error during the initial load: %s" % exc


# ---------------------------------------------------------------------------
# CLI (cobra + pflag)
# ---------------------------------------------------------------------------

class CliError(Exception):
    pass


class Flag:
    def __init__(self, name: str, kind: str, default: Any, usage: str, shorthand: str = "", hidden: bool = False):
        self.name, self.kind, self.default, self.usage = name, kind, default, usage
        self.shorthand, self.hidden = shorthand, hidden

    def parse(self, text: str) -> Any:
        if self.kind == "bool":
            if text in ("1", "t", "T", "TRUE", "true", "True"):
                return True
            if text in ("0", "f", "F", "FALSE", "false", "False"):
                return False
            raise ValueError('strconv.ParseBool: parsing %s: invalid syntax' % json.dumps(text))
        if self.kind == "int":
            if not re.match(r"^[+-]?\d+$", text):
                raise ValueError('strconv.ParseInt: parsing %s: invalid syntax' % json.dumps(text))
            return int(text)
        if self.kind == "duration":
            return fw.parse_go_duration(text)
        if self.kind == "stability":
            if text not in ("generally-available", "public-preview", "experimental"):
                raise ValueError("invalid stability level %s" % json.dumps(text))
            return text
        if self.kind == "strings":
            return [p for p in text.split(",")]
        return text

    def type_name(self) -> str:
        return {"bool": "", "int": "int", "duration": "duration", "stability": "<stability_level>",
                "strings": "strings"}.get(self.kind, "string")


def _flag_label(f: Flag) -> str:
    return ("-%s, --%s" % (f.shorthand, f.name)) if f.shorthand else "--" + f.name


def parse_flags(flags: List[Flag], argv: Sequence[str]) -> Tuple[Dict[str, Any], List[str], set]:
    """pflag with interspersed arguments; raises CliError with pflag's message."""
    by_name = {f.name: f for f in flags}
    by_short = {f.shorthand: f for f in flags if f.shorthand}
    values = {f.name: f.default for f in flags}
    given: set = set()
    args: List[str] = []
    rest = list(argv)

    def assign(f: Flag, text: str):
        try:
            v = f.parse(text)
        except ValueError as exc:
            raise CliError('invalid argument %s for %s flag: %s' % (json.dumps(text), json.dumps(_flag_label(f)),
                                                                      exc)) from None
        if f.kind == "strings" and f.name in given:
            values[f.name] = values[f.name] + v
        else:
            values[f.name] = v
        given.add(f.name)

    while rest:
        a = rest.pop(0)
        if a == "--":
            args += rest
            break
        if a.startswith("--") and len(a) > 2:
            name, eq, val = a[2:].partition("=")
            f = by_name.get(name)
            if f is None:
                raise CliError("unknown flag: --%s" % name)
            if eq:
                assign(f, val)
            elif f.kind == "bool":
                assign(f, "true")
            elif rest:
                assign(f, rest.pop(0))
            else:
                raise CliError("flag needs an argument: --%s" % name)
        elif a.startswith("-") and len(a) > 1:
            shorts = a[1:]
            while shorts:
                c, shorts = shorts[0], shorts[1:]
                f = by_short.get(c)
                if f is None:
                    raise CliError("unknown shorthand flag: '%s' in -%s" % (c, a[1:]))
                if shorts.startswith("="):
                    assign(f, shorts[1:])
                    shorts = ""
                elif f.kind == "bool":
                    assign(f, "true")
                elif shorts:
                    assign(f, shorts)
                    shorts = ""
                elif rest:
                    assign(f, rest.pop(0))
                else:
                    raise CliError("flag needs an argument: '%s' in -%s" % (c, a[1:]))
        else:
            args.append(a)
    return values, args, given


def run_flags() -> List[Flag]:
    return [
        Flag("server.http.listen-addr", "string", "127.0.0.1:12345", "Address to listen for HTTP traffic on"),
        Flag("server.http.memory-addr", "string", "alloy.internal:12345",
             "Address to listen for in-memory HTTP traffic on. Change if it collides with a real address"),
        Flag("server.http.ui-path-prefix", "string", "/", "Prefix to serve the HTTP UI at"),
        Flag("server.http.enable-pprof", "bool", True, "Enable /debug/pprof profiling endpoints."),
        Flag("server.http.disable-support-bundle", "bool", False, "Disable /-/support support bundle retrieval."),
        Flag("server.http.enable-graphql", "bool", False, "Enable the GraphQL API"),
        Flag("server.http.enable-graphql-playground", "bool", False,
             "Enable the GraphQL playground UI (/graphql/playground)"),
        Flag("cluster.enabled", "bool", False, "Start in clustered mode"),
        Flag("cluster.node-name", "string", "", "The name to use for this node"),
        Flag("cluster.advertise-address", "string", "", "Address to advertise to the cluster"),
        Flag("cluster.join-addresses", "string", "", "Comma-separated list of addresses to join the cluster at"),
        Flag("cluster.discover-peers", "string", "", "List of key-value tuples for discovering peers"),
        Flag("cluster.advertise-interfaces", "strings", ["eth0", "en0"],
             "List of interfaces used to infer an address to advertise"),
        Flag("cluster.rejoin-interval", "duration", 60.0, "How often to rejoin the list of peers"),
        Flag("cluster.max-join-peers", "int", 5, "Number of peers to join from the discovered set"),
        Flag("cluster.name", "string", "", "The name of the cluster to join"),
        Flag("cluster.enable-tls", "bool", False,
             "Specifies whether TLS should be used for communication between peers"),
        Flag("cluster.tls-ca-path", "string", "", "Path to the CA certificate file"),
        Flag("cluster.tls-cert-path", "string", "", "Path to the certificate file"),
        Flag("cluster.tls-key-path", "string", "", "Path to the key file"),
        Flag("cluster.tls-server-name", "string", "", "Server name to use for TLS communication"),
        Flag("cluster.wait-for-size", "int", 0, "Wait for the cluster to reach the specified number of instances "
             "before allowing components that use clustering to begin processing. Zero means disabled"),
        Flag("cluster.wait-timeout", "duration", 0.0, "Maximum duration to wait for minimum cluster size before "
             "proceeding with available nodes. Zero means wait forever, no timeout"),
        Flag("config.format", "string", "alloy",
             "The format of the source file. Supported formats: 'alloy', 'otelcol', 'prometheus', 'promtail', "
             "'static'."),
        Flag("config.bypass-conversion-errors", "bool", False, "Enable bypassing errors when converting"),
        Flag("config.extra-args", "string", "", "Extra arguments from the original format used by the converter. "
             "Multiple arguments can be passed by separating them with a space."),
        Flag("disable-reporting", "bool", False, "Disable reporting of enabled components to Grafana."),
        Flag("storage.path", "string", "data-alloy/", "Base directory where components can store data"),
        Flag("stability.level", "stability", "generally-available", "Minimum stability level of features to "
             "enable. Supported values: generally-available, public-preview, experimental"),
        Flag("feature.community-components.enabled", "bool", False, "Enable community components."),
        Flag("feature.component-shutdown-deadline", "duration", 600.0, "Maximum duration to wait for a component "
             "to shut down before giving up and logging an error"),
        Flag("feature.prometheus.direct-fanout.enabled", "bool", False, "Enable experimental direct fanout for "
             "metric forwarding without a global label store"),
        Flag("cluster.use-discovery-v1", "bool", False, "This flag is deprecated and has no effect.", hidden=True),
        Flag("feature.prometheus.metric-validation-scheme", "bool", False,
             "This flag is deprecated and has no effect.", hidden=True),
        Flag("help", "bool", False, "help for run", "h"),
    ]


def validate_flags() -> List[Flag]:
    by = {f.name: f for f in run_flags()}
    return [by["config.format"], by["config.bypass-conversion-errors"], by["config.extra-args"],
            by["stability.level"], by["feature.community-components.enabled"],
            Flag("help", "bool", False, "help for validate", "h")]


COMMANDS = {
    "run": ("run [flags] path", "Run Grafana Alloy with Default Engine"),
    "validate": ("validate [flags] file", "Validate a configuration file"),
    "fmt": ("fmt [flags] file", "Format a configuration file"),
    "convert": ("convert [flags] [file]", "Convert a supported config file to Alloy syntax"),
    "tools": ("tools", "Utilities for troubleshooting"),
    "otel": ("otel", "Use Alloy with OTel Engine"),
}


def flags_help(flags: List[Flag]) -> str:
    rows = []
    for f in flags:
        if f.hidden:
            continue
        left = ("  -%s, --%s" % (f.shorthand, f.name)) if f.shorthand else "      --" + f.name
        if f.type_name():
            left += " " + f.type_name()
        usage = f.usage
        if f.kind == "string" and f.default:
            usage += ' (default "%s")' % f.default
        elif f.kind == "bool" and f.default:
            usage += " (default true)"
        elif f.kind == "int" and f.default:
            usage += " (default %d)" % f.default
        elif f.kind == "duration" and f.default:
            usage += " (default %s)" % fw.format_go_duration(f.default)
        elif f.kind == "strings" and f.default:
            usage += " (default [%s])" % ",".join(f.default)
        elif f.kind == "stability":
            usage += ' (default "%s")' % f.default
        rows.append((left, usage))
    width = max(len(r[0]) for r in rows) + 3
    return "".join("%s%s\n" % (left.ljust(width), usage) for left, usage in rows)


def root_usage(prog: str) -> str:
    lines = ["Usage:", "  %s [global options] <subcommand> [flags]" % prog, "  %s [command]" % prog, "",
             "Available Commands:"]
    for name in sorted(list(COMMANDS) + ["completion", "help"]):
        short = COMMANDS.get(name, ("", {"completion": "Generate the autocompletion script for the specified shell",
                                         "help": "Help about any command"}.get(name, "")))[1]
        lines.append("  %-12s%s" % (name, short))
    lines += ["", "Flags:", "  -h, --help      help for %s" % prog, "  -v, --version   version for %s" % prog, "",
              'Use "%s [command] --help" for more information about a command.' % prog, ""]
    return "\n".join(lines)


def command_usage(prog: str, name: str, flags: List[Flag]) -> str:
    return "Usage:\n  %s %s\n\nFlags:\n%s" % (prog, COMMANDS[name][0], flags_help(flags))


class Cli:
    def __init__(self, prog: str, out=None, err=None):
        self.prog = prog
        self._out = out
        self._err = err

    @property
    def out(self):
        return self._out if self._out is not None else sys.stdout

    @property
    def err(self):
        return self._err if self._err is not None else sys.stderr

    def fail(self, message: str, usage: str = "") -> int:
        """cobra prints ``Error: ...`` (and usage unless silenced); main then log.Fatalf's: exit 1."""
        self.err.write("Error: %s\n" % message)
        if usage:
            self.err.write(usage + "\n")
        self.err.write("%s collector server run finished with error: %s\n"
                       % (time.strftime("%Y/%m/%d %H:%M:%S"), message))
        self.err.flush()
        return 1

    def main(self, argv: Sequence[str]) -> int:
        argv = list(argv)
        sub_index = next((i for i, a in enumerate(argv) if not a.startswith("-") or a == "-"), None)
        if sub_index is None:
            root_flags = [Flag("help", "bool", False, "help", "h"), Flag("version", "bool", False, "version", "v")]
            try:
                values, _args, _ = parse_flags(root_flags, argv)
            except CliError as exc:
                return self.fail(str(exc), root_usage(self.prog))
            if values["help"]:
                self.out.write("Grafana Alloy\n\n" + root_usage(self.prog))
            elif values["version"]:
                self.out.write(version_text())
            else:
                self.out.write(root_usage(self.prog))
            return 0
        # cobra hands the flags before the subcommand to the subcommand too
        name, rest = argv[sub_index], argv[:sub_index] + argv[sub_index + 1:]
        if name == "help":
            self.out.write("Grafana Alloy\n\n" + root_usage(self.prog))
            return 0
        if name not in COMMANDS:
            self.err.write("Error: unknown command \"%s\" for \"%s\"\nRun '%s --help' for usage.\n"
                           % (name, self.prog, self.prog))
            self.err.write("%s collector server run finished with error: unknown command \"%s\" for \"%s\"\n"
                           % (time.strftime("%Y/%m/%d %H:%M:%S"), name, self.prog))
            return 1
        if name == "run":
            return self.cmd_run(rest)
        if name == "validate":
            return self.cmd_validate(rest)
        return self.fail("the %s subcommand is not part of the o11y.stack test stand-in" % name)

    # -- validate -------------------------------------------------------------
    def cmd_validate(self, argv: Sequence[str]) -> int:
        flags = validate_flags()
        try:
            values, args, _ = parse_flags(flags, argv)
        except CliError as exc:
            return self.fail(str(exc))
        if values["help"]:
            self.out.write("Validate a configuration file\n\n" + command_usage(self.prog, "validate", flags))
            return 0
        if len(args) != 1:
            return self.fail("accepts 1 arg(s), received %d" % len(args))
        if values["config.format"] != "alloy":
            return self.fail("the o11y.stack test stand-in only reads the alloy config format")
        try:
            sources = read_sources(args[0])
        except OSError as exc:
            return self.fail("%s %s: %s" % ("stat" if exc.errno == 2 else "open", args[0],
                                            (exc.strerror or str(exc)).lower()))
        try:
            cfg = validate(sources)
        except LoadError as exc:
            self.err.write(syn.format_diagnostics(exc.diags, exc.sources))
            self.out.write("\n")
            self.out.flush()
            return self.fail("validation failed")
        if cfg.warnings:
            self.err.write(syn.format_diagnostics(cfg.warnings, sources))
            self.out.write("\n")
        return 0

    # -- run ------------------------------------------------------------------
    def cmd_run(self, argv: Sequence[str]) -> int:
        flags = run_flags()
        try:
            values, args, _given = parse_flags(flags, argv)
        except CliError as exc:
            return self.fail(str(exc))
        if values["help"]:
            self.out.write("The run subcommand runs Grafana Alloy in the foreground until an interrupt\n"
                           "is received.\n\n" + command_usage(self.prog, "run", flags))
            return 0
        if len(args) != 1:
            return self.fail("accepts 1 arg(s), received %d" % len(args))
        if not args[0]:
            return self.fail("path argument not provided")
        stab = values["stability.level"]
        for flag in ("feature.prometheus.direct-fanout.enabled", "server.http.enable-graphql",
                     "server.http.enable-graphql-playground"):
            if values[flag] and stab != "experimental":
                return self.fail("'--%s' can only be used at experimental stability level. Use "
                                 "--stability.level=experimental to enable." % flag)
        if values["config.format"] != "alloy":
            return self.fail("the o11y.stack test stand-in only reads the alloy config format")
        log = AlloyLogger(self._err)
        log.info("Alloy is starting")
        log.info("boringcrypto enabled", enabled="false")
        storage = values["storage.path"]
        try:
            os.makedirs(storage, exist_ok=True)
            with open(os.path.join(storage, "alloy_seed.json"), "a", encoding="utf-8"):
                pass
        except OSError as exc:
            log.error("failed to write seed file", err=str(exc))
        runner = Runner(args[0], values["server.http.listen-addr"], storage, log)
        shutdown = threading.Event()
        reload_flag = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: shutdown.set())
        signal.signal(signal.SIGINT, lambda *_: shutdown.set())
        signal.signal(signal.SIGHUP, lambda *_: reload_flag.set())
        try:
            runner.start_http()
        except (OSError, ValueError) as exc:
            log.error("failed to listen on %s" % values["server.http.listen-addr"], service="http", err=str(exc))
            return 1
        try:
            runner.load()
        except LoadError as exc:
            runner.stop()
            if exc.diags:
                self.err.write(syn.format_diagnostics(exc.diags, exc.sources))
                self.out.write("\n")
                self.out.flush()
                return self.fail("could not perform the initial load successfully")
            return self.fail(exc.text)
        runner.ready = True
        runner.start_checker()
        if not values["disable-reporting"]:
            log.info("usage reporting enabled (the stand-in never sends anything)")
        log.info("{^_^} Alloy is running")
        while not shutdown.is_set():
            shutdown.wait(0.2)
            if reload_flag.is_set():
                reload_flag.clear()
                try:
                    runner.reload()
                    log.info("config reloaded")
                except LoadError as exc:
                    log.error("failed to reload config", err=reload_error_text(exc, args[0]))
        log.info("shutting down")
        runner.stop()
        return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: ``argv`` includes the program name (like ``sys.argv``)."""
    argv = list(sys.argv if argv is None else argv)
    prog = os.path.basename(argv[0]) if argv and argv[0] and not argv[0].endswith(".py") else "alloy"
    try:
        return Cli(prog).main(argv[1:])
    except fw.StandinExit as exc:
        return int(exc.code or 0)


if __name__ == "__main__":  # python -m o11y_standins.alloy
    sys.exit(main())
