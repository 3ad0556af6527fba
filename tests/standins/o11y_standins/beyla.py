# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Grafana Beyla stand-in: the ``beyla`` binary on the surface o11y.stack uses.

Behaves like Grafana Beyla v3.32.0 (cmd/beyla/main.go and the OpenTelemetry
eBPF Instrumentation code it vendors) where the collection touches it:

* Start order like upstream's main: the operating-system check runs first,
  before the flags are parsed: kernel older than 5.8 (4.18 is accepted on
  RHEL-family systems, detected from ``/etc/os-release`` ``ID``/``ID_LIKE``
  or an ``.elN`` kernel) or no vmlinux BTF (``/sys/kernel/btf/vmlinux`` or
  libbpf's fallback paths) -> ``can't start Beyla`` and exit 255.
* CLI (Go ``flag`` package): ``-config``/``--config`` only; ``-h``/``-help``
  prints the usage and exits 0; an unknown flag prints ``flag provided but
  not defined: -x`` and the usage, exit 2.  There is no ``-version`` flag and
  no config-check mode.  ``BEYLA_CONFIG_PATH`` wins over ``-config``.
* Config: YAML with ``${VAR}``, ``${env:VAR}``, ``${VAR:-default}`` replaced
  from the environment and ``$${VAR}`` kept literally (pkg/config/env_replacer.go),
  then environment variables override the file: the top-level ``BEYLA_*``
  settings (``BEYLA_OPEN_PORT``, ``BEYLA_AUTO_TARGET_EXE``, ``BEYLA_LOG_LEVEL``,
  ``BEYLA_ENFORCE_SYS_CAPS``, ``BEYLA_TRACE_PRINTER``; ``BEYLA_EXECUTABLE_NAME``
  is deprecated) and, for the nested sections, ``OTEL_EBPF_*`` names, every
  ``BEYLA_X`` / ``BEYLA_OTEL_X`` also counting as ``OTEL_EBPF_X`` (Beyla's
  prefix duplication), plus the standard ``OTEL_EXPORTER_OTLP_*`` variables.
  **Stricter than upstream on purpose**: Beyla decodes with yaml.v3 and
  silently ignores unknown keys; the stand-in rejects unknown or misplaced
  keys (``field x not found in type ...``) in the sections the beyla role
  renders and in the list of top-level sections, so a typo in the role fails
  the tests.  Sections the role does not render are accepted as opaque.
  Value checks follow upstream: metric ``features`` names, ``open_ports``
  int-enum syntax, ``context_propagation`` values, ``discovery.instrument``
  entries need a selector and only know the documented metadata keys
  (``unknown attribute in discovery.instrument[0]: x``), ``log_level``,
  ``trace_printer``, at least one discovery criterion and one exporter.
  Config errors: ``wrong configuration`` / ``wrong Beyla configuration``,
  exit 255.
* Capabilities, read from ``/proc/self/status`` like upstream: with
  ``CAP_SYS_ADMIN`` nothing else is needed; else ``CAP_BPF``,
  ``CAP_SYS_RESOURCE`` below kernel 5.11 and, for application observability,
  ``CAP_CHECKPOINT_RESTORE``, ``CAP_DAC_READ_SEARCH``, ``CAP_SYS_PTRACE``,
  ``CAP_PERFMON``, ``CAP_NET_RAW`` (+ ``CAP_NET_ADMIN`` with context
  propagation); below 5.8 only ``CAP_SYS_ADMIN``.  Missing ones are a warning,
  or ``can't start Beyla`` + exit 255 with ``enforce_sys_caps``.  Loading the
  eBPF process watcher then needs what ``bpf()`` and ``perf_event_open()``
  need (``CAP_BPF`` or ``CAP_SYS_ADMIN``, ``CAP_PERFMON`` or
  ``CAP_SYS_ADMIN``); without it: ``Beyla ran with errors`` ... ``operation
  not permitted``, exit 255.
* Serving: ``health_check.port`` -> ``/healthz`` on 127.0.0.1 (Beyla always
  binds the loopback address; JSON ``schema_version``/``now_unix_ns``/
  ``process_uptime_ns``); internal metrics (``internal_metrics.exporter:
  prometheus`` or a ``prometheus.port``) on ``:<port>`` at
  ``internal_metrics.prometheus.path`` (``/internal/metrics``) with
  ``beyla_internal_build_info`` and the other ``beyla_*`` internal metric
  families; ``prometheus_export.port``/``path`` with ``beyla_build_info`` and
  ``target_info``.  Other paths: Go's ``404 page not found``.
* Discovery: every ``discovery.poll_interval`` (5s) the processes in
  ``/proc`` are matched against ``discovery.instrument`` (``open_ports`` of
  LISTEN sockets, ``exe_path``/``cmd_args``/``languages`` globs,
  ``target_pids``), minus ``exclude_instrument``, ``default_exclude_instrument``
  (Beyla, Alloy, OTel collectors), ``excluded_linux_system_paths`` and
  processes younger than ``min_process_age``; deprecated ``services`` regex
  selectors, ``open_port`` and ``BEYLA_AUTO_TARGET_EXE`` work too.  Each new
  match is logged like upstream (``instrumenting process`` cmd/pid/ino/type/
  service) and counted in ``beyla_instrumented_processes``.  Processes of
  other users are only visible with ``CAP_SYS_PTRACE`` (as for the real one).
* Export: nothing it cannot produce.  For ``http/protobuf``/``http/json``
  OTLP endpoints it POSTs an empty (valid) export request to ``/v1/traces``
  every ``otel_traces_export.batch_timeout`` (15s) and to the metrics path
  every ``otel_metrics_export.interval`` (60s), so the wiring can be
  observed; failures count in ``beyla_otel_*_export_errors_total``.
  gRPC endpoints are not contacted.
* Logs like Go's slog text handler on stdout (``time=... level=INFO
  msg=...``; ``log_format: json`` for JSON); SIGTERM/SIGINT -> exit 0.

Test knobs (never set by the role): ``O11Y_STANDIN_KERNEL_RELEASE`` replaces
the running kernel's release string, ``O11Y_STANDIN_BEYLA_SYSROOT`` is
prefixed to the BTF, ``/etc/os-release`` and ``/proc/version`` paths.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from . import framework as fw

DEFAULT_VERSION = "3.32.0"
DEFAULT_GOVERSION = "go1.25.11"
OTEL_SDK_VERSION = "1.44.0"
EXIT_FATAL = 255  # os.Exit(-1)

# ---------------------------------------------------------------------------
# build info
# ---------------------------------------------------------------------------


def _info() -> Dict[str, str]:
    info = fw.build_info()
    if info.get("component") != "beyla":
        info.update(version=DEFAULT_VERSION, goversion=DEFAULT_GOVERSION, revision="0" * 40)
    return info


def version() -> str:
    """buildinfo.Version: the release tag (``git describe``), with its ``v``."""
    v = _info()["version"]
    return v if v.startswith("v") else "v" + v


def revision() -> str:
    """buildinfo.Revision: ``git rev-parse --short HEAD``."""
    return _info()["revision"][:7]


def goversion() -> str:
    return _info()["goversion"]


# ---------------------------------------------------------------------------
# logging (Go log/slog text or JSON handler, on stdout)
# ---------------------------------------------------------------------------

class SlogLogger(fw.Logger):
    LEVELS = {"debug": -4, "info": 0, "warn": 4, "error": 8}

    def __init__(self, fmt: str = "text", level: int = 0, stream=None, attrs: Optional[List[Tuple[str, Any]]] = None):
        super().__init__("beyla", fmt=fmt, stream=stream)
        self.level = level
        self.attrs = list(attrs or [])

    @property
    def stream(self):
        return self._stream if self._stream is not None else sys.stdout

    def with_(self, **kv: Any) -> "SlogLogger":
        child = SlogLogger(self.fmt, self.level, self._stream, self.attrs + list(kv.items()))
        child._lock = self._lock
        return child

    @staticmethod
    def _quote(text: str) -> str:
        if text == "" or re.search(r'[\s"=]', text) or not text.isprintable():
            return json.dumps(text, ensure_ascii=False)
        return text

    def format_line(self, level: str, msg: str, kv: Dict[str, Any]) -> str:
        level = level.upper()
        now = _dt.datetime.now(_dt.timezone.utc)
        ts = now.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (now.microsecond // 1000)
        pairs = self.attrs + [(k.replace("__", " "), v) for k, v in kv.items()]
        if self.fmt == "json":
            rec: Dict[str, Any] = {"time": ts, "level": level, "msg": msg}
            for k, v in pairs:
                rec[k] = v
            return json.dumps(rec, default=str)
        parts = ["time=" + ts, "level=" + level, "msg=" + self._quote(msg)]
        for k, v in pairs:
            val = ("true" if v else "false") if isinstance(v, bool) else str(v)
            parts.append("%s=%s" % (self._quote(k), self._quote(val)))
        return " ".join(parts)


def parse_slog_level(text: str) -> int:
    """slog.Level.UnmarshalText: DEBUG/INFO/WARN/ERROR (any case) with an optional +N/-N."""
    m = re.fullmatch(r"(?i)(debug|info|warn|error)([+-]\d+)?", text.strip())
    if not m:
        raise ValueError('slog: level string "%s": unknown name' % text)
    return SlogLogger.LEVELS[m.group(1).lower()] + int(m.group(2) or 0)


# ---------------------------------------------------------------------------
# operating system support (obi.CheckOSSupport)
# ---------------------------------------------------------------------------

def _sysroot(path: str) -> str:
    root = os.environ.get("O11Y_STANDIN_BEYLA_SYSROOT", "")
    return root.rstrip("/") + path if root else path


def kernel_release() -> str:
    return os.environ.get("O11Y_STANDIN_KERNEL_RELEASE") or os.uname().release


def kernel_version(release: Optional[str] = None) -> Tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", release or kernel_release())
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


_RHEL_IDS = ("rhel", "centos", "rocky", "alma")
_RHEL_KERNEL = re.compile(r"\.el\d+(_\d+)?\b|\(Red Hat \d+\.\d+\.\d+-\d+\)")


def is_rhel_based() -> bool:
    try:
        with open(_sysroot("/etc/os-release"), encoding="utf-8", errors="replace") as fh:
            for line in fh.read().lower().splitlines():
                for key in ("id_like=", "id="):
                    if line.startswith(key):
                        val = line[len(key):].strip("\"'")
                        if any(r in val for r in _RHEL_IDS):
                            return True
    except OSError:
        pass
    try:
        with open(_sysroot("/proc/version"), encoding="utf-8", errors="replace") as fh:
            if _RHEL_KERNEL.search(fh.read()):
                return True
    except OSError:
        pass
    return False


def btf_paths(release: Optional[str] = None) -> List[str]:
    """The canonical sysfs file and libbpf's fallbacks (btf__load_vmlinux_btf)."""
    rel = release or kernel_release()
    return ["/sys/kernel/btf/vmlinux"] + [p % {"r": rel} for p in (
        "/boot/vmlinux-%(r)s", "/lib/modules/%(r)s/vmlinux-%(r)s", "/lib/modules/%(r)s/build/vmlinux",
        "/usr/lib/modules/%(r)s/kernel/vmlinux", "/usr/lib/debug/boot/vmlinux-%(r)s",
        "/usr/lib/debug/boot/vmlinux-%(r)s.debug", "/usr/lib/debug/lib/modules/%(r)s/vmlinux")]


def has_btf() -> bool:
    return any(os.path.exists(_sysroot(p)) for p in btf_paths())


def check_os_support() -> Optional[str]:
    major, minor = kernel_version()
    general = (major, minor) >= (5, 8)
    rhel418 = (major, minor) == (4, 18) and is_rhel_based()
    if not general and not rhel418:
        return "kernel version %d.%d not supported. Minimum required version is 5.8" % (major, minor)
    if not has_btf():
        return "kernel does not support BTF (CONFIG_DEBUG_INFO_BTF): no vmlinux BTF found"
    return None


# ---------------------------------------------------------------------------
# capabilities (obi.CheckOSCapabilities)
# ---------------------------------------------------------------------------

CAP = {"CAP_DAC_READ_SEARCH": 2, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_SYS_PTRACE": 19,
       "CAP_SYS_ADMIN": 21, "CAP_SYS_RESOURCE": 24, "CAP_PERFMON": 38, "CAP_BPF": 39,
       "CAP_CHECKPOINT_RESTORE": 40}
CAP_NAMES = {v: k for k, v in CAP.items()}


def effective_caps(status_path: str = "/proc/self/status") -> int:
    with open(status_path, encoding="ascii", errors="replace") as fh:
        for line in fh:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def has_cap(caps: int, name: str) -> bool:
    return bool(caps & (1 << CAP[name]))


def missing_capabilities(cfg: "Effective", caps: int) -> List[str]:
    major, minor = kernel_version()
    needed: List[str] = []
    if (major, minor) < (5, 8):
        needed = ["CAP_SYS_ADMIN"]
    elif has_cap(caps, "CAP_SYS_ADMIN"):
        return []
    else:
        needed.append("CAP_BPF")
        if (major, minor) < (5, 11):
            needed.append("CAP_SYS_RESOURCE")
        if cfg.app_enabled:
            needed += ["CAP_CHECKPOINT_RESTORE", "CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE", "CAP_PERFMON",
                       "CAP_NET_RAW"]
            if cfg.context_propagation != "disabled":
                needed.append("CAP_NET_ADMIN")
    missing = {n for n in needed if not has_cap(caps, n)}
    return sorted(missing, key=lambda n: CAP[n])


# ---------------------------------------------------------------------------
# configuration schema (key names and types of Beyla v3.32.0's Go structs)
# ---------------------------------------------------------------------------

S, I, B, F, D, A = fw.Str, fw.Int, fw.Bool, fw.Float, fw.Duration, fw.Any_


def L(item: Optional[fw.Schema] = None) -> fw.List:
    return fw.List(item or S())


def St(type_name: str, **fields: fw.Schema) -> fw.Struct:
    return fw.Struct(type_name, fields)


class IntEnum(fw.Schema):
    """services.IntEnum: an int, ``"80,443,8000-8999"`` or a list of ints."""

    type_name = "services.IntEnum"
    SYNTAX = re.compile(r"^\s*\d+\s*(-\s*\d+\s*)?(,\s*\d+\s*(-\s*\d+\s*)?)*$")

    def convert(self, node, path, ctx):
        import yaml
        if isinstance(node, yaml.SequenceNode):
            out = []
            for child in node.value:
                if not (isinstance(child, yaml.ScalarNode) and self._tag(child) == "!!int"):
                    ctx.error(child, path, "IntEnum: invalid integer in list: cannot unmarshal %s `%s` into int"
                              % (self._tag(child), getattr(child, "value", "")))
                    return None
                out.append((int(child.value), 0))
            return out
        if not isinstance(node, yaml.ScalarNode):
            ctx.error(node, path, "IntEnum: unexpected YAML node kind")
            return None
        if self._tag(node) == "!!null":
            return None
        return parse_int_enum(node.value, lambda msg: ctx.error(node, path, msg))


def parse_int_enum(text: str, on_error=None) -> Optional[List[Tuple[int, int]]]:
    val = str(text).strip()
    if val == "":
        return []
    if not IntEnum.SYNTAX.match(val):
        msg = 'invalid int enum "%s". Must be a comma-separated list of integers or ranges (e.g. 8000-8999)' % val
        if on_error is None:
            raise ValueError(msg)
        on_error(msg)
        return None
    out = []
    for entry in val.split(","):
        parts = entry.split("-")
        out.append((int(parts[0].strip()), int(parts[1].strip()) if len(parts) > 1 else 0))
    return out


def int_enum_matches(ranges: Optional[List[Tuple[int, int]]], n: int) -> bool:
    return any((end == 0 and start == n) or (end != 0 and start <= n <= end) for start, end in ranges or [])


FEATURES = ("*", "all", "application", "application_host", "application_runtime", "application_service_graph",
            "application_span", "application_span_otel", "application_span_sizes", "ebpf", "network",
            "network_flow_packets", "network_inter_zone", "stats", "stats_tcp_failed_connections", "stats_tcp_io",
            "stats_tcp_retransmits", "stats_tcp_rtt")


class Features(fw.Schema):
    """export.Features: a YAML sequence of known feature names."""

    type_name = "export.Features"

    def convert(self, node, path, ctx):
        import yaml
        if isinstance(node, yaml.ScalarNode) and self._tag(node) == "!!null":
            return None
        if not isinstance(node, yaml.SequenceNode):
            ctx.error(node, path, "feature: unexpected YAML node kind")
            return None
        out = []
        for i, item in enumerate(node.value):
            if not isinstance(item, yaml.ScalarNode):
                ctx.error(item, path, "feature[%d]: unexpected YAML node kind" % i)
                return None
            name = item.value.strip()
            if name and name not in FEATURES:
                ctx.error(item, path, 'unknown metrics feature "%s" (valid features: %s)'
                          % (name, ", ".join(sorted(f for f in FEATURES if f != "*"))))
                return None
            if name:
                out.append(name)
        return out


CONTEXT_PROPAGATION_PARTS = ("headers", "tcp", "ip")


def parse_context_propagation(text: str) -> str:
    val = str(text).strip()
    if val in ("all", "disabled", ""):
        return val or "disabled"
    parts = []
    for part in val.split(","):
        part = part.strip()
        if part not in CONTEXT_PROPAGATION_PARTS:
            raise ValueError("invalid value for context_propagation: '%s' (valid: all, disabled, headers, tcp)"
                             % part)
        if part != "ip":
            parts.append(part)
    return ",".join(parts) or "disabled"


class ContextPropagation(fw.Schema):
    type_name = "config.ContextPropagationMode"

    def convert(self, node, path, ctx):
        import yaml
        if not isinstance(node, yaml.ScalarNode):
            return self._mismatch(node, path, ctx)
        if self._tag(node) == "!!null":
            return None
        try:
            return parse_context_propagation(node.value)
        except ValueError as exc:
            ctx.error(node, path, str(exc))
            return None


class GlobAttributes(fw.Struct):
    """services.GlobAttributes / RegexSelector: the known keys plus an inline
    metadata map whose keys upstream checks in Validate (not at parse time)."""

    METADATA = ("k8s_namespace", "k8s_pod_name", "k8s_deployment_name", "k8s_replicaset_name",
                "k8s_daemonset_name", "k8s_statefulset_name", "k8s_job_name", "k8s_cronjob_name",
                "k8s_owner_name", "k8s_container_name", "container_name")

    def convert(self, node, path, ctx):
        import yaml
        if not isinstance(node, yaml.MappingNode):
            return self._mismatch(node, path, ctx)
        out: Dict[str, Any] = {"_metadata": {}}
        for knode, vnode in ctx.pairs(node, path):
            key = knode.value
            sub = fw._join(path, str(key))
            spec = self.fields.get(key)
            if spec is None:
                # yaml ",inline" map: any other key is metadata; values must be strings
                if not isinstance(vnode, yaml.ScalarNode):
                    ctx.error(vnode, sub, "cannot unmarshal %s into %s" % (self._tag(vnode), "string"))
                    continue
                out["_metadata"][key] = vnode.value
                continue
            out[key] = ctx.convert(spec, vnode, sub)
        return out


def _selector(type_name: str, regex: bool) -> GlobAttributes:
    fields: Dict[str, fw.Schema] = dict(
        name=S(), namespace=S(), open_ports=IntEnum(), languages=S(), target_pids=L(I()), exe_path=S(),
        cmd_args=S(), k8s_pod_labels=fw.MapOf(S()), k8s_pod_annotations=fw.MapOf(S()), containers_only=B(),
        exports=L(fw.Enum("logs", "metrics", "traces")),
        sampler=St("services.SamplerConfig", name=fw.Enum("always_on", "always_off", "traceidratio",
                                                          "parentbased_always_on", "parentbased_always_off",
                                                          "parentbased_traceidratio"), arg=S()),
        routes=St("services.CustomRoutesConfig", incoming=L(), outgoing=L()),
        metrics=St("perapp.SvcMetricsConfig", features=Features()))
    if regex:
        fields["exe_path_regexp"] = S()
    return GlobAttributes(type_name, fields)


GLOB_SELECTOR = _selector("services.GlobAttributes", regex=False)
REGEX_SELECTOR = _selector("services.RegexSelector", regex=True)

BUCKETS = St("export.Buckets", duration_histogram=L(F()), request_size_histogram=L(F()),
             response_size_histogram=L(F()), stat_tcp_rtt_histogram=L(F()),
             gen_ai_client_operation_duration_histogram=L(F()), gen_ai_client_token_usage_histogram=L(F()))

PROTOCOL = fw.Enum("", "debug", "grpc", "http/json", "http/protobuf")

OTEL_METRICS = St(
    "otelcfg.MetricsConfig", interval=D(), endpoint=S(), protocol=PROTOCOL, insecure_skip_verify=B(),
    buckets=BUCKETS, histogram_aggregation=fw.Enum("explicit_bucket_histogram", "base2_exponential_bucket_histogram"),
    exponential_histogram=St("otelcfg.ExponentialHistogramConfig", max_size=I(), max_scale=I()),
    reporters_cache_len=I(), otel_sdk_log_level=S(), features=Features(), instrumentations=L(), ttl=D(),
    allow_service_graph_self_references=B(), extra_span_resource_attributes=L())

OTEL_TRACES = St(
    "otelcfg.TracesConfig", endpoint=S(), protocol=PROTOCOL, instrumentations=L(), insecure_skip_verify=B(),
    sampler=St("services.SamplerConfig", name=S(), arg=S()), batch_max_size=I(), queue_size=I(),
    batch_timeout=D(), backoff_initial_interval=D(), backoff_max_interval=D(), backoff_max_elapsed_time=D(),
    reporters_cache_len=I(), otel_sdk_log_level=S())

PROMETHEUS_EXPORT = St(
    "prom.PrometheusConfig", port=I(min=0, max=65535), path=S(), disable_build_info=B(), features=Features(),
    instrumentations=L(), allow_service_graph_self_references=B(), buckets=BUCKETS, ttl=D(),
    service_cache_size=I(), extra_resource_attributes=L(), extra_span_resource_attributes=L(),
    exemplar_filter=S(), native_histogram=St("prom.NativeHistogramConfig", bucket_factor=F(), max_bucket_number=I(),
                                             min_reset_duration=D()))

DISCOVERY = St(
    "services.BeylaDiscoveryConfig", services=L(REGEX_SELECTOR), survey=L(GLOB_SELECTOR),
    exclude_services=L(REGEX_SELECTOR), default_exclude_services=L(REGEX_SELECTOR), instrument=L(GLOB_SELECTOR),
    exclude_instrument=L(GLOB_SELECTOR), default_exclude_instrument=L(GLOB_SELECTOR), poll_interval=D(),
    skip_go_specific_tracers=B(), bpf_pid_filter_off=B(), exclude_otel_instrumented_services=B(),
    default_otlp_grpc_port=I(), min_process_age=D(), exclude_otel_instrumented_services_span_metrics=B(),
    route_harvester_timeout=D(), disabled_route_harvesters=L(),
    route_harvester_advanced=St("services.RouteHarvestingConfig", java_harvest_delay=D()),
    excluded_linux_system_paths=L())

EBPF = St(
    "config.EBPFTracer", bpf_debug=B(), wakeup_len=I(), stats_wakeup_data_bytes=I(), batch_length=I(),
    batch_timeout=D(), track_request_headers=B(), http_request_timeout=D(), go_http_client_buffer_timeout=D(),
    context_propagation=ContextPropagation(), override_bpfloop_enabled=B(),
    traffic_control_backend=fw.Enum("auto", "tc", "tcx"), disable_black_box_cp=B(), high_request_volume=B(),
    heuristic_sql_detect=B(), instrument_cuda=A(), protocol_debug_print=B(),
    redis_db_cache=St("config.RedisDBCacheConfig", enabled=B(), max_size=I()),
    buffer_sizes=St("config.EBPFBufferSizes", http=I(), mysql=I(), kafka=I(), postgres=I(), mssql=I(), tcp=I()),
    mysql_prepared_statements_cache_size=I(), postgres_prepared_statements_cache_size=I(),
    mssql_prepared_statements_cache_size=I(), kafka_topic_uuid_cache_size=I(), mongo_requests_cache_size=I(),
    payload_extraction=A(), max_transaction_time=D(), dns_request_timeout=D(), log_enricher=A(),
    couchbase_db_cache_size=I(), bpf_fs_path=S(), force_bpf_map_reader=fw.Enum("auto", "batch", "legacy"),
    maps_config=St("config.MapsConfig", global_scale_factor=I(min=-3, max=3)))

INTERNAL_METRICS = St(
    "imetrics.InternalMetricsConfig",
    prometheus=St("imetrics.PrometheusConfig", port=I(min=0, max=65535), path=S()),
    avoided_services=St("imetrics.AvoidedServicesConfig", disabled=B(), limit=I()),
    exporter=S(), bpf_metric_scrape_interval=D())

ATTRIBUTES = St(
    "beyla.Attributes", kubernetes=A(), instance_id=St("config.InstanceIDConfig", dns=B(), override_hostname=S()),
    select=fw.MapOf(St("attributes.InclusionLists", include=L(), exclude=L())),
    host_id=St("beyla.HostIDConfig", override=S()), extra_group_attributes=fw.MapOf(L()),
    metadata_retry=St("meta.RetryConfig", start_interval=D(), max_interval=D(), timeout=D()),
    rename_unresolved_hosts=S(), rename_unresolved_hosts_outgoing=S(), rename_unresolved_hosts_incoming=S(),
    metric_span_names_limit=I(), sensitive_query_params=St("attributes.SensitiveQueryParamsConfig", add=L(),
                                                           remove=L()))

CONFIG_SCHEMA = St(
    "beyla.Config",
    ebpf=EBPF, network=A(), stats=A(), grafana=St("otel.GrafanaConfig", otlp=St(
        "otel.GrafanaOTLP", cloud_submit=L(), cloud_zone=S(), cloud_instance_id=S(), cloud_api_key=S())),
    filter=A(), attributes=ATTRIBUTES,
    routes=St("transform.RoutesConfig", unmatched=fw.Enum("unset", "path", "wildcard", "heuristic",
                                                          "low-cardinality"),
              patterns=L(), ignored_patterns=L(), ignore_mode=fw.Enum("all", "metrics", "traces"),
              wildcard_char=S(), max_path_segment_cardinality=I()),
    name_resolver=St("transform.NameResolverConfig", sources=L(), cache_len=I(), cache_expiry=D()),
    otel_metrics_export=OTEL_METRICS, otel_traces_export=OTEL_TRACES, sigil_export=A(),
    metrics=St("perapp.MetricsConfig", features=Features()), prometheus_export=PROMETHEUS_EXPORT,
    trace_printer=S(), executable_name=S(), target_pids=IntEnum(), open_port=IntEnum(), service_name=S(),
    service_namespace=S(), discovery=DISCOVERY, log_level=S(), log_format=S(), shutdown_timeout=D(),
    enforce_sys_caps=B(), channel_buffer_len=I(), channel_send_timeout=D(), channel_send_timeout_panic=B(),
    profile_port=I(min=0, max=65535), internal_metrics=INTERNAL_METRICS, processes=A(), log_config=S(),
    nodejs=A(), javaagent=A(), topology=A(), injector=A(),
    health_check=St("obi.HealthCheckConfig", port=I(min=0, max=65535), listen_address=S(), unix_socket_path=S()),
    jvm_runtime_metrics=A())

_ENV_RE = re.compile(r"\$?\$\{(?:env:)?([a-zA-Z_][a-zA-Z0-9_]*)(?::-([^}]*))?\}")


def replace_env(text: str, env: Optional[Dict[str, str]] = None) -> str:
    """pkg/config.ReplaceEnv."""
    env = os.environ if env is None else env

    def repl(m):
        if m.group(0).startswith("$$"):
            return m.group(0)[1:]
        val = env.get(m.group(1), "")
        return val if val or not m.group(2) else m.group(2)

    return _ENV_RE.sub(repl, text)


class BeylaConfigError(Exception):
    pass


def load_file(path: str) -> Dict[str, Any]:
    with open(path, "rb") as fh:
        raw = fh.read().decode("utf-8", "replace")
    try:
        return fw.load_config_text(replace_env(raw), CONFIG_SCHEMA, fill_defaults=False) or {}
    except fw.ConfigError as exc:
        lines = []
        for line, _path, msg in exc.errors:
            lines.append("  line %d: %s" % (line, msg) if line else "  " + msg)
        syntax = [e for e in exc.errors if e[2].startswith("yaml: ")]
        if syntax:
            raise BeylaConfigError("parsing YAML configuration: " + (("yaml: line %d: " % syntax[0][0])
                                   if syntax[0][0] else "") + syntax[0][2][len("yaml: "):]) from None
        raise BeylaConfigError("parsing YAML configuration: yaml: unmarshal errors:\n" + "\n".join(lines)) from None


# ---------------------------------------------------------------------------
# effective settings: defaults, file, environment
# ---------------------------------------------------------------------------

def G(cfg: Any, path: str, default: Any = None) -> Any:
    return fw.get_path(cfg, path, default)


def obi_env(suffix: str, env: Optional[Dict[str, str]] = None) -> Optional[str]:
    """An ``OTEL_EBPF_<suffix>`` value, where ``BEYLA_<suffix>`` / ``BEYLA_OTEL_<suffix>``
    count too (OverrideOBIGlobalConfig copies them when the OTEL_EBPF_ one is unset)."""
    env = os.environ if env is None else env
    for name in ("OTEL_EBPF_" + suffix, "BEYLA_" + suffix, "BEYLA_OTEL_" + suffix):
        if env.get(name):
            return env[name]
    return None


TRACE_PRINTERS = ("disabled", "counter", "text", "json", "json_indent")
DEFAULT_EXCLUDE_PATH_GLOB = "{*beyla,*alloy,*prometheus-config-reloader,*ebpf-instrument,*obi,*otelcol," \
                            "*otelcol-contrib,*otelcol-contrib[!/]*}"
DEFAULT_EXCLUDED_SYSTEM_PATHS = ["/lib/systemd/", "/usr/lib/systemd/", "/usr/libexec/", "/sbin/", "/usr/sbin/"]


class Effective:
    """What the stand-in acts on, after defaults, the file and the environment."""

    def __init__(self, cfg: Dict[str, Any], env: Optional[Dict[str, str]] = None):
        env = dict(os.environ if env is None else env)
        self.cfg = cfg

        def pick(value, *names, parse=lambda v: v, default=None):
            for n in names:
                if env.get(n):
                    return parse(env[n])
            return default if value is None else value

        self.log_level = pick(cfg.get("log_level"), "BEYLA_LOG_LEVEL", default="INFO")
        self.log_format = pick(cfg.get("log_format"), "BEYLA_LOG_FORMAT", default="text")
        self.trace_printer = pick(cfg.get("trace_printer"), "BEYLA_TRACE_PRINTER", default="disabled")
        self.enforce_sys_caps = pick(cfg.get("enforce_sys_caps"), "BEYLA_ENFORCE_SYS_CAPS",
                                     parse=lambda v: v.strip().lower() in ("1", "true", "t"), default=False)
        cp = obi_env("BPF_CONTEXT_PROPAGATION", env)
        self.context_propagation = parse_context_propagation(cp) if cp is not None else \
            (G(cfg, "ebpf.context_propagation") or "disabled")
        # top-level selection shortcuts (lowest preference in discovery)
        port_env = env.get("BEYLA_OPEN_PORT")
        self.open_port = parse_int_enum(port_env) if port_env else (cfg.get("open_port") or [])
        self.auto_target_exe = env.get("BEYLA_AUTO_TARGET_EXE") or env.get("OTEL_GO_AUTO_TARGET_EXE") or ""
        self.executable_name = env.get("BEYLA_EXECUTABLE_NAME") or cfg.get("executable_name") or ""
        disc = cfg.get("discovery") or {}
        self.instrument = list(disc.get("instrument") or [])
        self.services = list(disc.get("services") or [])
        self.survey = list(disc.get("survey") or [])
        self.exclude_instrument = list(disc.get("exclude_instrument") or [])
        self.exclude_services = list(disc.get("exclude_services") or [])
        if "default_exclude_instrument" in disc:
            self.default_exclude_instrument = list(disc.get("default_exclude_instrument") or [])
        else:
            self.default_exclude_instrument = [{"exe_path": DEFAULT_EXCLUDE_PATH_GLOB, "_metadata": {}}]
        self.excluded_system_paths = disc.get("excluded_linux_system_paths")
        if self.excluded_system_paths is None:
            self.excluded_system_paths = list(DEFAULT_EXCLUDED_SYSTEM_PATHS)
        self.poll_interval = float(disc.get("poll_interval") or 5.0)
        self.min_process_age = disc.get("min_process_age")
        if self.min_process_age is None:
            self.min_process_age = 5.0
        # exporters
        tr = cfg.get("otel_traces_export") or {}
        me = cfg.get("otel_metrics_export") or {}
        common_ep = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
        common_proto = env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
        self.traces_endpoint, self.traces_common = self._endpoint(
            env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or tr.get("endpoint") or "", common_ep)
        self.metrics_endpoint, self.metrics_common = self._endpoint(
            env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or me.get("endpoint") or "", common_ep)
        self.traces_protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or common_proto or \
            tr.get("protocol") or ""
        self.metrics_protocol = env.get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL") or common_proto or \
            me.get("protocol") or ""
        self.traces_interval = float(tr.get("batch_timeout") or 15.0)
        mi = obi_env("METRICS_INTERVAL", env)
        self.metrics_interval = fw.parse_go_duration(mi) if mi else float(me.get("interval") or 60.0)
        prom = cfg.get("prometheus_export") or {}
        self.prom_port = int(pick(prom.get("port"), "OTEL_EBPF_PROMETHEUS_PORT", "BEYLA_PROMETHEUS_PORT",
                                  parse=int, default=0) or 0)
        self.prom_path = pick(prom.get("path"), "OTEL_EBPF_PROMETHEUS_PATH", "BEYLA_PROMETHEUS_PATH",
                              default="/metrics")
        im = cfg.get("internal_metrics") or {}
        imp = im.get("prometheus") or {}
        self.imetrics_exporter = obi_env("INTERNAL_METRICS_EXPORTER", env) or im.get("exporter") or "disabled"
        port = obi_env("INTERNAL_METRICS_PROMETHEUS_PORT", env)
        self.imetrics_port = int(port) if port else int(imp.get("port") or 0)
        self.imetrics_path = obi_env("INTERNAL_METRICS_PROMETHEUS_PATH", env) or imp.get("path") or \
            "/internal/metrics"
        hc = cfg.get("health_check") or {}
        hp = obi_env("HEALTH_CHECK_PORT", env)
        self.health_port = int(hp) if hp else int(hc.get("port") or 0)
        self.health_uds = obi_env("HEALTH_CHECK_UNIX_SOCKET_PATH", env) or hc.get("unix_socket_path") or ""
        features = G(cfg, "metrics.features")
        fenv = obi_env("METRICS_FEATURES", env) or obi_env("METRIC_FEATURES", env)
        if fenv:
            features = [f.strip() for f in fenv.split(",") if f.strip()]
        self.features = features or ["application"]
        self.grafana_submit = G(cfg, "grafana.otlp.cloud_submit") or []

    @staticmethod
    def _endpoint(specific: str, common: str) -> Tuple[str, bool]:
        if specific:
            return specific, False
        return common, bool(common)

    # -- feature switches (beyla.Config.Enabled) ------------------------------
    @property
    def app_enabled(self) -> bool:
        return bool(self.open_port or self.auto_target_exe or self.executable_name or self.instrument
                    or self.services or self.survey)

    @property
    def net_enabled(self) -> bool:
        net = self.cfg.get("network") or {}
        metrics_out = bool(self.metrics_endpoint or self.prom_port)
        return bool(isinstance(net, dict) and net.get("enable")) or \
            (metrics_out and any(f.startswith("network") for f in self.features))

    @property
    def stats_enabled(self) -> bool:
        return bool(self.metrics_endpoint or self.prom_port) and any(f.startswith("stats") for f in self.features)


def validate(eff: Effective) -> Optional[str]:
    """beyla.Config.Validate (the checks the stand-in can make)."""
    for key, entries in (("services", eff.services), ("instrument", eff.instrument),
                         ("exclude_services", eff.exclude_services), ("exclude_instrument", eff.exclude_instrument)):
        for i, e in enumerate(entries):
            if not (e.get("open_ports") or e.get("exe_path") or e.get("exe_path_regexp") or e.get("languages")
                    or e.get("target_pids") or e.get("cmd_args") or e.get("containers_only") or e["_metadata"]
                    or e.get("k8s_pod_labels") or e.get("k8s_pod_annotations")):
                return "error in %s YAML property: entry [%d] should define at least one selection criteria" % (key, i)
            for k in e["_metadata"]:
                if k not in GlobAttributes.METADATA:
                    return "error in %s YAML property: unknown attribute in discovery.%s[%d]: %s" % (key, key, i, k)
    if not (eff.app_enabled or eff.net_enabled or eff.stats_enabled):
        return "missing application discovery section or network metrics configuration. Check documentation."
    if eff.trace_printer not in TRACE_PRINTERS:
        return "invalid value for trace_printer: '%s'" % eff.trace_printer
    if eff.app_enabled and eff.trace_printer == "disabled" and not (
            eff.grafana_submit or eff.metrics_endpoint or eff.traces_endpoint or eff.prom_port
            or eff.metrics_protocol == "debug" or eff.traces_protocol == "debug"):
        return "you need to define at least one exporter: trace_printer, grafana, otel_metrics_export, " \
               "otel_traces_export or prometheus_export"
    if "application_span" in eff.features and "application_span_otel" in eff.features and \
            eff.prom_port and eff.metrics_endpoint:
        return "you can only enable one format of span metrics, application_span or application_span_otel"
    if eff.imetrics_exporter == "otel" and eff.imetrics_port:
        return "you can't enable both OTEL and Prometheus internal metrics"
    if eff.imetrics_exporter == "otel" and not eff.metrics_endpoint:
        return "you can't enable OTEL internal metrics without enabling OTEL metrics"
    for what, ep in (("traces", eff.traces_endpoint), ("metrics", eff.metrics_endpoint)):
        if ep and not ep.startswith("unix://"):
            m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/]+)", ep)
            if not m:
                return "parsing %s endpoint: URL %s must have a scheme and a host" % (what, json.dumps(ep))
    return None


# ---------------------------------------------------------------------------
# glob matching (gobwas/glob without separators: * also matches '/')
# ---------------------------------------------------------------------------

def glob_to_regex(pattern: str) -> str:
    out, i, depth = [], 0, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                raise ValueError("unexpected end of input")
            body = pattern[i + 1:j]
            neg = body.startswith("!")
            body = body[1:] if neg else body
            out.append("[" + ("^" if neg else "") + body.replace("\\", "\\\\") + "]")
            i = j
        elif c == "{":
            depth += 1
            out.append("(?:")
        elif c == "}" and depth:
            depth -= 1
            out.append(")")
        elif c == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    if depth:
        raise ValueError("unexpected end of input")
    return "".join(out)


def glob_match(pattern: str, text: str) -> bool:
    try:
        return re.fullmatch(glob_to_regex(pattern), text, re.S) is not None
    except (ValueError, re.error):
        return False


# ---------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------

class Proc:
    def __init__(self, pid: int, exe: str, cmdline: str, ports: List[int], start: float, ino: int, netns: str):
        self.pid, self.exe, self.cmdline, self.ports, self.start, self.ino, self.netns = \
            pid, exe, cmdline, ports, start, ino, netns

    @property
    def name(self) -> str:
        return os.path.basename(self.exe)


def _listen_inodes() -> Dict[int, int]:
    """socket inode -> port of the LISTEN TCP sockets in this network namespace."""
    out: Dict[int, int] = {}
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path, encoding="ascii") as fh:
                next(fh, None)
                for line in fh:
                    f = line.split()
                    if len(f) > 9 and f[3] == "0A":
                        out[int(f[9])] = int(f[1].rsplit(":", 1)[1], 16)
        except OSError:
            continue
    return out


def _boot_clock() -> Tuple[float, float]:
    with open("/proc/uptime", encoding="ascii") as fh:
        uptime = float(fh.read().split()[0])
    return time.time() - uptime, float(os.sysconf("SC_CLK_TCK"))


def scan_processes(skip: Set[int]) -> List[Proc]:
    inodes = _listen_inodes()
    boot, hz = _boot_clock()
    procs = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in skip:
            continue
        pid = int(entry)
        base = "/proc/%d" % pid
        try:
            exe = os.readlink(base + "/exe")
        except OSError:
            # kernel threads have no exe; other users' processes need CAP_SYS_PTRACE
            continue
        try:
            with open(base + "/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
            with open(base + "/stat", encoding="utf-8", errors="replace") as fh:
                stat = fh.read()
            start = boot + int(stat.rsplit(")", 1)[1].split()[19]) / hz
            ino = os.stat(base + "/exe").st_ino
            netns = os.readlink(base + "/ns/net")
        except (OSError, ValueError, IndexError):
            continue
        ports: Set[int] = set()
        try:
            for fd in os.listdir(base + "/fd"):
                try:
                    target = os.readlink("%s/fd/%s" % (base, fd))
                except OSError:
                    continue
                if target.startswith("socket:["):
                    port = inodes.get(int(target[8:-1]))
                    if port is not None:
                        ports.add(port)
        except OSError:
            pass
        procs.append(Proc(pid, exe.replace(" (deleted)", ""), cmdline, sorted(ports), start, ino, netns))
    return procs


def detect_language(proc: Proc) -> str:
    name = proc.name
    for prefix, lang in (("python", "python"), ("java", "java"), ("node", "nodejs"), ("ruby", "ruby"),
                         ("php", "php"), ("dotnet", "dotnet")):
        if name.startswith(prefix):
            return lang
    try:
        with open("/proc/%d/exe" % proc.pid, "rb") as fh:
            if b"\xff Go buildinf:" in fh.read(64 << 20):
                return "go"
    except OSError:
        pass
    return "generic"


def selector_matches(sel: Dict[str, Any], proc: Proc, lang: str, own_netns: str, regex: bool = False) -> bool:
    """Every criterion the entry sets must match (metadata criteria never match on plain hosts)."""
    if sel.get("_metadata") or sel.get("k8s_pod_labels") or sel.get("k8s_pod_annotations"):
        return False
    checks = 0
    if sel.get("open_ports"):
        checks += 1
        if not any(int_enum_matches(sel["open_ports"], p) for p in proc.ports):
            return False
    for key, value in (("exe_path", proc.exe), ("cmd_args", proc.cmdline), ("languages", lang)):
        if sel.get(key):
            checks += 1
            ok = re.search(sel[key], value) is not None if regex else glob_match(sel[key], value)
            if not ok:
                return False
    if regex and sel.get("exe_path_regexp"):
        checks += 1
        if re.search(sel["exe_path_regexp"], proc.exe) is None:
            return False
    if sel.get("target_pids"):
        checks += 1
        if proc.pid not in sel["target_pids"]:
            return False
    if sel.get("containers_only"):
        checks += 1
        if proc.netns == own_netns:
            return False
    return checks > 0


# ---------------------------------------------------------------------------
# the running instance
# ---------------------------------------------------------------------------

ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class Beyla:
    def __init__(self, eff: Effective, log: SlogLogger):
        self.eff = eff
        self.log = log
        self.started = time.time()
        self.services: List[fw.HTTPService] = []
        self.stop_event = threading.Event()
        self.instrumented: Dict[int, Tuple[Proc, str]] = {}
        self.imetrics = fw.Metrics()
        self.imetrics.collectors.append(self._collect_internal)
        self.counters = {"trace_exports": 0, "metric_exports": 0}
        self.export_errors: Dict[Tuple[str, str], int] = {}
        self.prom_requests: Dict[Tuple[str, str], int] = {}
        self.own_netns = os.readlink("/proc/self/ns/net") if os.path.exists("/proc/self/ns/net") else ""
        self.lock = threading.Lock()
        self.fatal: Optional[str] = None

    # -- metrics ---------------------------------------------------------------
    def _collect_internal(self, m: fw.Metrics) -> None:
        goos, goarch = fw.go_platform()
        m.gauge("beyla_internal_build_info", "A metric with a constant '1' value labeled by version, revision, branch, "
                "goversion, goos and goarch during build.", 1,
                {"goarch": goarch, "goos": goos, "goversion": goversion(), "revision": revision(),
                 "version": version()})
        with self.lock:
            m.counter("beyla_otel_metric_exports_total", "Length of the metric batches submitted to the remote OTEL "
                      "collector", self.counters["metric_exports"])
            m.counter("beyla_otel_trace_exports_total", "Length of the trace batches submitted to the remote OTEL "
                      "collector", self.counters["trace_exports"])
            for (kind, err), n in sorted(self.export_errors.items()):
                m.counter("beyla_otel_%s_export_errors_total" % kind, "Error count on each failed OTEL %s export"
                          % kind, n, {"error": err})
            for (port, path), n in sorted(self.prom_requests.items()):
                m.counter("beyla_prometheus_http_requests_total", "Requests towards the Prometheus Scrape endpoint",
                          n, {"port": port, "path": path})
            names: Dict[str, int] = {}
            for proc, _lang in self.instrumented.values():
                names[proc.name] = names.get(proc.name, 0) + 1
        for name, n in sorted(names.items()):
            m.gauge("beyla_instrumented_processes", "Total number of instrumented processes by process name", n,
                    {"process_name": name})

    def _prom_app_metrics(self) -> str:
        goos, goarch = fw.go_platform()
        out = fw.Metrics()
        with self.lock:
            langs = sorted({lang for _p, lang in self.instrumented.values()})
            procs = sorted(self.instrumented.values(), key=lambda t: t[0].pid)
        for lang in langs:
            out.gauge("beyla_build_info", "A metric with a constant '1' value labeled by version, revision, branch, "
                      "goversion from which OBI was built, the goos and goarch for the build, and thelanguage of "
                      "the reported services", 1,
                      {"goarch": goarch, "goos": goos, "goversion": goversion(), "revision": revision(),
                       "version": version(), "target_lang": lang})
        for proc, lang in procs:
            out.gauge("target_info", "target service information", 1,
                      {"instance": "%s:%d" % (socket.gethostname(), proc.pid), "job": proc.name,
                       "service_name": proc.name, "telemetry_sdk_language": lang})
        return out.render()

    # -- HTTP ------------------------------------------------------------------
    def _scrape(self, port: int, path: str, render):
        def handler(_req):
            from werkzeug.wrappers import Response
            with self.lock:
                key = (str(port), path)
                self.prom_requests[key] = self.prom_requests.get(key, 0) + 1
            return Response(render(), status=200, content_type=fw.PROMETHEUS_CONTENT_TYPE)
        return handler

    def _healthz(self, _req):
        now = time.time()
        body = json.dumps({"schema_version": 1, "now_unix_ns": int(now * 1e9),
                           "process_uptime_ns": int((now - self.started) * 1e9)}) + "\n"
        return 200, body, {"Content-Type": "application/json"}

    def start_health(self) -> None:
        e = self.eff
        if e.health_uds:
            self.log.with_(component="health").warn("unix socket health endpoint is not emulated by the stand-in",
                                                    addr=e.health_uds)
            return
        if not e.health_port:
            return
        router = fw.Router()
        router.add("/healthz", self._healthz, methods=ALL_METHODS)
        log = self.log.with_(component="health")
        try:
            self.services.append(fw.HTTPService("health", "127.0.0.1:%d" % e.health_port, router).start())
        except OSError as exc:
            # upstream logs and keeps running without the endpoint
            log.with_(address="127.0.0.1:%d" % e.health_port).error("can't bind health endpoint", err=str(exc))
            return
        log.info("starting health endpoint", addr="127.0.0.1:%d" % e.health_port, path="/healthz")

    def start_prometheus(self) -> None:
        e = self.eff
        routes: Dict[int, Dict[str, Any]] = {}
        if e.imetrics_exporter == "prometheus" or (e.imetrics_port and e.imetrics_exporter != "otel"):
            routes.setdefault(e.imetrics_port, {})[e.imetrics_path] = self.imetrics.render
        if e.prom_port:
            routes.setdefault(e.prom_port, {})[e.prom_path] = self._prom_app_metrics
        log = self.log.with_(component="connector.PrometheusManager")
        for port, paths in sorted(routes.items()):
            router = fw.Router()
            for path, render in paths.items():
                log.with_(port=port, path=path).info("opening prometheus scrape endpoint")
                router.add(path, self._scrape(port, path, render), methods=ALL_METHODS)
            try:
                self.services.append(fw.HTTPService("prometheus", ":%d" % port, router).start())
            except OSError as exc:
                log.with_(port=port).error("Prometheus endpoint service ended unexpectedly", error=str(exc))
                raise

    # -- eBPF + discovery ------------------------------------------------------
    def load_watcher(self, caps: int) -> Optional[str]:
        """What loading the eBPF process watcher needs from the kernel."""
        bpf_ok = has_cap(caps, "CAP_BPF") or has_cap(caps, "CAP_SYS_ADMIN")
        perf_ok = has_cap(caps, "CAP_PERFMON") or has_cap(caps, "CAP_SYS_ADMIN")
        if (bpf_ok and perf_ok) or (kernel_version() < (5, 8) and has_cap(caps, "CAP_SYS_ADMIN")):
            return None
        return ("setupAppO11y: can't find target process: loading and assigning BPF objects: "
                "field ObiKprobeSysBind: program obi_kprobe_sys_bind: load program: operation not permitted"
                + ("" if bpf_ok else " (MEMLOCK may be too low, consider rlimit.RemoveMemlock)"))

    def _criteria(self) -> Tuple[List[Dict[str, Any]], bool]:
        """(selectors, regex?) like upstream: instrument wins over the deprecated services."""
        e = self.eff
        extra: List[Dict[str, Any]] = []
        if e.open_port or e.auto_target_exe:
            extra.append({"open_ports": e.open_port or None, "exe_path": e.auto_target_exe or None, "_metadata": {}})
        if e.instrument or not (e.services or e.executable_name):
            return e.instrument + extra, False
        legacy = list(e.services)
        if e.executable_name or e.open_port:
            legacy.append({"exe_path": e.executable_name or None, "open_ports": e.open_port or None,
                           "_metadata": {}})
        return legacy, True

    def discover_once(self) -> None:
        e = self.eff
        criteria, regex = self._criteria()
        excludes = e.exclude_instrument if not regex else e.exclude_services
        log = self.log.with_(component="discover.traceAttacher")
        now = time.time()
        seen: Set[int] = set()
        for proc in scan_processes(skip={os.getpid()}):
            seen.add(proc.pid)
            if proc.pid in self.instrumented or now - proc.start < e.min_process_age:
                continue
            if any(proc.exe.startswith(p) for p in e.excluded_system_paths):
                continue
            lang = detect_language(proc)
            if not any(selector_matches(s, proc, lang, self.own_netns, regex) for s in criteria):
                continue
            if any(selector_matches(s, proc, lang, self.own_netns, regex) for s in excludes) or \
                    any(selector_matches(s, proc, lang, self.own_netns) for s in e.default_exclude_instrument):
                continue
            name = next((s.get("name") for s in criteria if s.get("name")
                         and selector_matches(s, proc, lang, self.own_netns, regex)), None) or proc.name
            with self.lock:
                self.instrumented[proc.pid] = (proc, lang)
            log.info("instrumenting process", cmd=proc.exe, pid=proc.pid, ino=proc.ino, type=lang, service=name,
                     logenricher=False)
        with self.lock:
            gone = [pid for pid in self.instrumented if pid not in seen]
            for pid in gone:
                proc, _lang = self.instrumented.pop(pid)
                log.debug("process ended", cmd=proc.exe, pid=pid)

    def discovery_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.discover_once()
            except Exception as exc:  # noqa: BLE001 - keep discovering
                self.log.with_(component="discover").warn("process scan failed", error=str(exc))
            self.stop_event.wait(self.eff.poll_interval)

    # -- OTLP ------------------------------------------------------------------
    def _otlp_url(self, kind: str) -> Optional[Tuple[str, str]]:
        e = self.eff
        ep, common = (e.traces_endpoint, e.traces_common) if kind == "trace" else \
            (e.metrics_endpoint, e.metrics_common)
        proto = e.traces_protocol if kind == "trace" else e.metrics_protocol
        if not ep or ep.startswith("unix://"):
            return None
        m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/]+)(/.*)?$", ep)
        if not m:
            return None
        host = m.group(2)
        if not proto:
            port = host.rsplit(":", 1)[1] if ":" in host else ""
            proto = "grpc" if port.endswith("4317") else "http/protobuf"
        if proto not in ("http/protobuf", "http/json"):
            return None
        path = m.group(3) or ""
        if kind == "trace":
            # the collector's otlphttp exporter appends /v1/traces to the base path
            base = path.rstrip("/")
            base = base[:-len("/v1/traces")] if base.endswith("/v1/traces") else base
            url_path = base + "/v1/traces"
        elif common:
            url_path = path + ("v1/metrics" if path.endswith("/") else "/v1/metrics")
        else:
            url_path = path or "/v1/metrics"  # otlpmetrichttp's default path
        return "%s://%s%s" % (m.group(1), host, url_path), proto

    def _post(self, kind: str) -> None:
        target = self._otlp_url(kind)
        if target is None:
            return
        url, proto = target
        body, ctype = (b"", "application/x-protobuf") if proto == "http/protobuf" else (b"{}", "application/json")
        req = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": ctype, "User-Agent": "OTel-OTLP-Exporter-Go/%s" % OTEL_SDK_VERSION})
        err = None
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
        try:
            with opener.open(req, timeout=10) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            err = "failed to upload %s: %d %s" % ("traces" if kind == "trace" else "metrics", exc.code, exc.reason)
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            host = url.split("://", 1)[1].split("/", 1)[0]
            if isinstance(reason, socket.gaierror):
                detail = "dial tcp: lookup %s: no such host" % host.rsplit(":", 1)[0]
            elif isinstance(reason, OSError) and reason.strerror:
                detail = "dial tcp %s: connect: %s" % (host, reason.strerror.lower())
            else:
                detail = str(reason)
            err = "Post \"%s\": %s" % (url, detail)
        if err is None:
            return  # an empty batch adds nothing to beyla_otel_*_exports_total
        with self.lock:
            self.export_errors[(kind, err)] = self.export_errors.get((kind, err), 0) + 1
        self.log.with_(component="otel.%sExporter" % ("Traces" if kind == "trace" else "Metrics")).warn(
            "error exporting %s" % ("traces" if kind == "trace" else "metrics"), error=err)

    def export_loop(self, kind: str, interval: float) -> None:
        while not self.stop_event.wait(max(0.2, interval)):
            self._post(kind)

    # -- lifecycle -------------------------------------------------------------
    def stop(self) -> None:
        self.stop_event.set()
        for svc in self.services:
            try:
                svc.stop()
            except Exception:  # noqa: BLE001
                pass


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def make_flagset(prog: str) -> fw.FlagSet:
    fs = fw.FlagSet(prog)
    fs.string("config", "", "path to the configuration file")
    return fs


def run(argv: Sequence[str], prog: str = "beyla") -> int:
    log = SlogLogger()
    problem = check_os_support()
    if problem:
        log.error("can't start Beyla", error=problem)
        return EXIT_FATAL
    fs = make_flagset(prog)
    fs.parse_or_exit(list(argv))
    config_path = os.environ.get("BEYLA_CONFIG_PATH") or fs["config"]

    cfg: Dict[str, Any] = {}
    if config_path:
        try:
            cfg = load_file(config_path)
        except OSError as exc:
            log.error("can't open " + config_path, error="open %s: %s" % (config_path,
                                                                          (exc.strerror or str(exc)).lower()))
            return EXIT_FATAL
        except BeylaConfigError as exc:
            log.error("wrong configuration", error=str(exc))
            return EXIT_FATAL
    try:
        eff = Effective(cfg)
    except ValueError as exc:
        log.error("wrong configuration", error="reading env vars: %s" % exc)
        return EXIT_FATAL
    problem = validate(eff)
    if problem:
        log.error("wrong Beyla configuration", error=problem)
        return EXIT_FATAL
    try:
        level = parse_slog_level(str(eff.log_level))
    except ValueError as exc:
        log.error("unknown log level specified, choices are [DEBUG, INFO, WARN, ERROR]", error=str(exc))
        return EXIT_FATAL
    fmt = str(eff.log_format).lower()
    if fmt not in ("text", "json"):
        log.warn("unknown log format specified, defaulting to text", format=eff.log_format)
        fmt = "text"
    log = SlogLogger(fmt=fmt, level=level)
    log.info("Grafana Beyla", Version=version(), Revision=revision(),
             OpenTelemetry__SDK__Version=OTEL_SDK_VERSION)
    log.info("configuration loaded", version="v1")

    try:
        caps = effective_caps()
    except OSError as exc:
        caps = 0
        log.warn("Required system capabilities not present, Beyla may malfunction",
                 error="unable to query OS capabilities: %s" % exc)
    missing = missing_capabilities(eff, caps)
    if missing:
        err = "the following capabilities are required: " + ", ".join(missing)
        if eff.enforce_sys_caps:
            log.error("can't start Beyla", error=err)
            return EXIT_FATAL
        log.warn("Required system capabilities not present, Beyla may malfunction", error=err)

    app = Beyla(eff, log)
    shutdown = fw.ShutdownSignal()
    app.start_health()
    try:
        app.start_prometheus()
    except OSError:
        app.stop()
        return 0  # upstream interrupts itself for a graceful stop
    if eff.app_enabled:
        log.info("starting Beyla in Application Observability mode")
        problem = app.load_watcher(caps)
        if problem:
            app.stop()
            log.error("Beyla ran with errors", error=problem)
            return EXIT_FATAL
        threading.Thread(target=app.discovery_loop, name="discovery", daemon=True).start()
    if eff.net_enabled:
        log.info("starting Beyla in Network metrics mode")
    for kind, interval in (("trace", eff.traces_interval), ("metric", eff.metrics_interval)):
        if app._otlp_url(kind) is not None:
            threading.Thread(target=app.export_loop, args=(kind, interval), name="otlp-" + kind, daemon=True).start()
    return fw.run_until_signal([], on_shutdown=app.stop, shutdown=shutdown)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: ``argv`` includes the program name (like ``sys.argv``)."""
    argv = list(sys.argv if argv is None else argv)
    prog = argv[0] if argv and argv[0] and not argv[0].endswith(".py") else "beyla"
    try:
        return run(argv[1:], prog)
    except fw.StandinExit as exc:
        return int(exc.code or 0)


if __name__ == "__main__":  # python -m o11y_standins.beyla
    sys.exit(main())
