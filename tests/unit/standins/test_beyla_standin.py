# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Beyla stand-in run as a subprocess on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

STANDINS = Path(__file__).resolve().parents[2] / "standins"
if str(STANDINS) not in sys.path:
    sys.path.insert(0, str(STANDINS))

from o11y_standins import beyla  # noqa: E402
from o11y_standins.testing import StandinProcess, free_port, http_get, wait_until  # noqa: E402

# The documented application-observability set (docs/sources/security.md, v3.32.0)
# without CAP_SYS_ADMIN, which alone satisfies Beyla's check.
APP_CAPS = "+bpf,+perfmon,+checkpoint_restore,+dac_read_search,+sys_ptrace,+net_raw"


def role_config(health, imetrics, otlp="http://127.0.0.1:9/", **discovery):
    """What roles/beyla renders (same keys and shapes)."""
    return {
        "log_level": "INFO",
        "enforce_sys_caps": True,
        "discovery": {"instrument": discovery.pop("instrument", [{"open_ports": "8080"}]), **discovery},
        "ebpf": {"context_propagation": "disabled"},
        "metrics": {"features": ["application"]},
        "otel_traces_export": {"endpoint": otlp, "protocol": "http/protobuf"},
        "otel_metrics_export": {"endpoint": otlp, "protocol": "http/protobuf"},
        "internal_metrics": {"exporter": "prometheus", "prometheus": {"port": imetrics, "path": "/internal/metrics"}},
        "health_check": {"port": health},
    }


def write(tmp_path, cfg, name="beyla.yml"):
    path = tmp_path / name
    path.write_text(cfg if isinstance(cfg, str) else yaml.safe_dump(cfg))
    return str(path)


def run(args, env=None, prefix=None, timeout=30):
    """Run to completion; ``prefix`` wraps the interpreter (e.g. setpriv)."""
    p = StandinProcess(["beyla"] + list(args), env=env)
    try:
        if prefix:
            cmd = list(prefix) + p.command()
            proc = subprocess.run(cmd, env=p.env, capture_output=True, text=True, timeout=timeout)
            return proc.returncode, proc.stdout, proc.stderr
        rc = p.run(timeout=timeout)
        return rc, p.stdout, p.stderr
    finally:
        p.close()


def setpriv(bounding):
    """Run with exactly the capabilities in *bounding* (root keeps its bounding set on exec)."""
    assert os.geteuid() == 0, "capability tests drop capabilities with setpriv and need root"
    return ["setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all" + bounding, "--"]


@pytest.fixture
def ports():
    def take(n):
        out = set()
        while len(out) < n:
            out.add(free_port())
        return sorted(out)
    return take


@pytest.fixture
def procs(start_standin):
    def start(args, env=None):
        return start_standin("beyla", args, env)
    return start


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["-h", "-help", "--help"])
def test_help_prints_the_one_flag_and_exits_0(flag):
    rc, _out, err = run([flag])
    assert rc == 0
    assert "  -config string\n    \tpath to the configuration file\n" in err


@pytest.mark.parametrize("flag", ["-version", "--verify-config", "-config.file=x"])
def test_unknown_flag_exits_2_like_go(flag):
    rc, _out, err = run([flag])
    name = flag.lstrip("-").split("=")[0]
    assert rc == 2
    assert err.startswith("flag provided but not defined: -%s\nUsage of " % name)


def test_missing_config_file_exits_255(tmp_path):
    rc, out, _err = run(["-config", str(tmp_path / "nope.yml")])
    assert rc == 255
    assert 'msg="can\'t open %s"' % (tmp_path / "nope.yml") in out
    assert "no such file or directory" in out


# ---------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mutate, message", [
    (lambda c: c.update(no_such_key=1), "field no_such_key not found in type beyla.Config"),
    (lambda c: c["otel_traces_export"].update(interval="5s"), "field interval not found in type otelcfg.TracesConfig"),
    (lambda c: c["internal_metrics"]["prometheus"].update(exporter="prometheus"),
     "field exporter not found in type imetrics.PrometheusConfig"),
    (lambda c: c["health_check"].update(path="/healthz"), "field path not found in type obi.HealthCheckConfig"),
    (lambda c: c["discovery"].update(open_ports="8080"),
     "field open_ports not found in type services.BeylaDiscoveryConfig"),
    (lambda c: c["metrics"].update(features=["application_process"]), 'unknown metrics feature "application_process"'),
    (lambda c: c["discovery"]["instrument"][0].update(open_ports="80;443"), 'invalid int enum "80;443"'),
    (lambda c: c["ebpf"].update(context_propagation="ip,everything"),
     "invalid value for context_propagation: 'everything'"),
    (lambda c: c["health_check"].update(port="x"), "cannot unmarshal !!str `x` into int"),
])
def test_unknown_misplaced_or_invalid_keys_are_rejected(tmp_path, mutate, message):
    cfg = role_config(9401, 9400)
    mutate(cfg)
    rc, out, _err = run(["-config", write(tmp_path, cfg)])
    assert rc == 255, out
    assert 'msg="wrong configuration"' in out and "parsing YAML configuration" in out
    assert message in out.replace('\\"', '"')


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["discovery"]["instrument"][0].update(exe_paht="*/app"),
     "error in instrument YAML property: unknown attribute in discovery.instrument[0]: exe_paht"),
    (lambda c: c["discovery"].update(instrument=[{"name": "only-a-name"}]),
     "error in instrument YAML property: entry [0] should define at least one selection criteria"),
    (lambda c: c.pop("discovery"),
     "missing application discovery section or network metrics configuration. Check documentation."),
    (lambda c: [c.pop(k) for k in ("otel_traces_export", "otel_metrics_export")],
     "you need to define at least one exporter"),
    (lambda c: c.update(trace_printer="fancy"), "invalid value for trace_printer: 'fancy'"),
    (lambda c: c["otel_traces_export"].update(endpoint="alloy:4318"), "must have a scheme and a host"),
])
def test_semantic_errors_exit_255(tmp_path, mutate, message):
    cfg = role_config(9401, 9400)
    mutate(cfg)
    rc, out, _err = run(["-config", write(tmp_path, cfg)])
    assert rc == 255, out
    assert 'msg="wrong Beyla configuration"' in out
    assert message in out.replace('\\"', '"')


def test_invalid_log_level_exits_255(tmp_path):
    cfg = role_config(9401, 9400)
    cfg["log_level"] = "verbose"
    rc, out, _err = run(["-config", write(tmp_path, cfg)])
    assert rc == 255
    assert "unknown log level specified, choices are [DEBUG, INFO, WARN, ERROR]" in out


def test_env_replacement_and_env_overrides(tmp_path, procs, ports):
    imetrics, other = ports(2)
    cfg = role_config("${HEALTH_PORT}", imetrics)
    text = yaml.safe_dump(cfg).replace("'${HEALTH_PORT}'", "${HEALTH_PORT}")
    cfg_path = write(tmp_path, text)
    p = procs(["-config", "/does/not/exist"],
              env={"BEYLA_CONFIG_PATH": cfg_path, "HEALTH_PORT": str(other),
                   # BEYLA_X counts as OTEL_EBPF_X for the nested sections
                   "BEYLA_INTERNAL_METRICS_PROMETHEUS_PATH": "/im"})
    p.wait_http("http://127.0.0.1:%d/healthz" % other)
    assert http_get("http://127.0.0.1:%d/im" % imetrics)[0] == 200
    assert http_get("http://127.0.0.1:%d/internal/metrics" % imetrics)[0] == 404


def test_open_port_env_is_a_discovery_criterion(tmp_path, procs, ports):
    health, imetrics = ports(2)
    cfg = role_config(health, imetrics)
    cfg.pop("discovery")
    p = procs(["-config", write(tmp_path, cfg)], env={"BEYLA_OPEN_PORT": "80,443,8000-8999"})
    p.wait_http("http://127.0.0.1:%d/healthz" % health)


# ---------------------------------------------------------------------------
# operating system support
# ---------------------------------------------------------------------------

def test_no_btf_refuses_to_start_even_before_the_flags(tmp_path):
    env = {"O11Y_STANDIN_BEYLA_SYSROOT": str(tmp_path)}
    for args in (["-config", "x"], ["-h"]):
        rc, out, _err = run(args, env=env)
        assert rc == 255
        assert 'msg="can\'t start Beyla" error="kernel does not support BTF (CONFIG_DEBUG_INFO_BTF): ' \
               'no vmlinux BTF found"' in out


def test_btf_found_in_a_libbpf_fallback_path(tmp_path, procs, ports):
    health, imetrics = ports(2)
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot" / "vmlinux-6.1.0-test").write_bytes(b"\x9f\xeb")
    env = {"O11Y_STANDIN_BEYLA_SYSROOT": str(tmp_path), "O11Y_STANDIN_KERNEL_RELEASE": "6.1.0-test"}
    p = procs(["-config", write(tmp_path, role_config(health, imetrics))], env=env)
    p.wait_http("http://127.0.0.1:%d/healthz" % health)


@pytest.mark.parametrize("release", ["5.4.0-150-generic", "4.18.0-553.el8_10.x86_64"])
def test_old_kernels_are_refused(release):
    rc, out, _err = run(["-h"], env={"O11Y_STANDIN_KERNEL_RELEASE": release})
    assert rc == 255
    major, minor = release.split(".")[:2]
    assert "kernel version %s.%s not supported. Minimum required version is 5.8" % (major, minor) in out


def test_rhel_4_18_is_accepted(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text('ID="rocky"\nID_LIKE="rhel centos fedora"\n')
    (tmp_path / "sys" / "kernel" / "btf").mkdir(parents=True)
    (tmp_path / "sys" / "kernel" / "btf" / "vmlinux").write_bytes(b"\x9f\xeb")
    rc, _out, err = run(["-h"], env={"O11Y_STANDIN_BEYLA_SYSROOT": str(tmp_path),
                                     "O11Y_STANDIN_KERNEL_RELEASE": "4.18.0-553.el8_10.x86_64"})
    assert rc == 0 and "-config string" in err


# ---------------------------------------------------------------------------
# capabilities
# ---------------------------------------------------------------------------

def test_missing_capabilities_fail_with_enforce_sys_caps(tmp_path):
    rc, out, _err = run(["-config", write(tmp_path, role_config(9401, 9400))], prefix=setpriv(""))
    assert rc == 255
    assert 'msg="can\'t start Beyla" error="the following capabilities are required: CAP_DAC_READ_SEARCH, ' \
           'CAP_NET_RAW, CAP_SYS_PTRACE, CAP_PERFMON, CAP_BPF, CAP_CHECKPOINT_RESTORE"' in out


def test_context_propagation_also_needs_net_admin(tmp_path):
    cfg = role_config(9401, 9400)
    cfg["ebpf"]["context_propagation"] = "all"
    rc, out, _err = run(["-config", write(tmp_path, cfg)], prefix=setpriv("," + APP_CAPS))
    assert rc == 255
    assert "the following capabilities are required: CAP_NET_ADMIN\"" in out


def test_without_enforcement_it_warns_then_fails_like_bpf_would(tmp_path):
    cfg = role_config(9401, 9400)
    cfg["enforce_sys_caps"] = False
    rc, out, _err = run(["-config", write(tmp_path, cfg)], prefix=setpriv(",+net_raw"))
    assert rc == 255
    assert 'level=WARN msg="Required system capabilities not present, Beyla may malfunction"' in out
    assert 'level=ERROR msg="Beyla ran with errors"' in out and "operation not permitted" in out


@pytest.mark.parametrize("caps", [",+sys_admin", "," + APP_CAPS])
def test_documented_capability_sets_are_enough(tmp_path, ports, caps):
    health, imetrics = ports(2)
    p = StandinProcess(["beyla", "-config", write(tmp_path, role_config(health, imetrics))])
    cmd = setpriv(caps) + p.command()
    proc = subprocess.Popen(cmd, env=p.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: http_get("http://127.0.0.1:%d/healthz" % health)[0] == 200 or proc.poll() is not None,
                   timeout=20)
        assert proc.poll() is None, proc.stdout.read()
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0]
        p.close()
    assert proc.returncode == 0
    assert "Required system capabilities" not in out


# ---------------------------------------------------------------------------
# serving
# ---------------------------------------------------------------------------

def test_health_and_internal_metrics(tmp_path, procs, ports):
    health, imetrics = ports(2)
    p = procs(["-config", write(tmp_path, role_config(health, imetrics))])
    p.wait_http("http://127.0.0.1:%d/healthz" % health)
    status, headers, body = http_get("http://127.0.0.1:%d/healthz" % health)
    doc = json.loads(body)
    assert headers["content-type"] == "application/json"
    assert doc["schema_version"] == 1 and doc["process_uptime_ns"] > 0 and doc["now_unix_ns"] > 0
    assert http_get("http://127.0.0.1:%d/ready" % health)[:3:2] == (404, b"404 page not found\n")
    status, headers, body = http_get("http://127.0.0.1:%d/internal/metrics" % imetrics)
    text = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert re.search(r'^beyla_internal_build_info\{goarch="\w+",goos="linux",goversion="go1\.25\.11",'
                     r'revision="\w{7}",version="v3\.32\.0"\} 1$', text, re.M), text
    assert http_get("http://127.0.0.1:%d/metrics" % imetrics)[0] == 404
    # the internal metrics port listens on every interface, the health port on loopback only
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
    assert re.search(r"127\.0\.0\.1:%d\s" % health, out) and re.search(r"(\*|0\.0\.0\.0|\[::\]):%d\s" % imetrics, out)
    assert p.terminate() == 0


def test_prometheus_export_shares_the_internal_metrics_port(tmp_path, procs, ports):
    health, imetrics = ports(2)
    cfg = role_config(health, imetrics)
    cfg["prometheus_export"] = {"port": imetrics, "path": "/metrics"}
    p = procs(["-config", write(tmp_path, cfg)])
    p.wait_http("http://127.0.0.1:%d/metrics" % imetrics)
    assert http_get("http://127.0.0.1:%d/internal/metrics" % imetrics)[0] == 200


def test_busy_health_port_is_logged_and_beyla_keeps_running(tmp_path, procs, ports):
    health, imetrics = ports(2)
    blocker = StandinProcess(["beyla", "-config", write(tmp_path, role_config(health, imetrics), name="a.yml")])
    blocker.start()
    try:
        blocker.wait_http("http://127.0.0.1:%d/healthz" % health)
        other = free_port()
        p = procs(["-config", write(tmp_path, role_config(health, other), name="b.yml")])
        p.wait_http("http://127.0.0.1:%d/internal/metrics" % other)
        wait_until(lambda: "can't bind health endpoint" in p.stdout, timeout=10)
        assert p.alive()
    finally:
        blocker.terminate()
        blocker.close()


# ---------------------------------------------------------------------------
# discovery
# ---------------------------------------------------------------------------

@pytest.fixture
def app_server():
    """A python HTTP server (a stand-in application to instrument) on a free port."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: http_get("http://127.0.0.1:%d/" % port)[0] == 200, timeout=15)
    yield port, proc
    proc.terminate()
    proc.wait(timeout=10)


def _fast(discovery):
    discovery.update(poll_interval="200ms", min_process_age="0s")
    return discovery


@pytest.mark.parametrize("selector", ["open_ports", "exe_path"])
def test_discovers_processes_by_port_or_executable(tmp_path, procs, ports, app_server, selector):
    app_port, app = app_server
    health, imetrics = ports(2)
    exe = os.path.realpath("/proc/%d/exe" % app.pid)
    instrument = {"open_ports": "%d-%d" % (app_port, app_port)} if selector == "open_ports" else \
        {"exe_path": "*/" + os.path.basename(exe), "cmd_args": "*http.server %d*" % app_port}
    cfg = role_config(health, imetrics, **_fast({"instrument": [instrument]}))
    p = procs(["-config", write(tmp_path, cfg)])
    wait_until(lambda: "instrumenting process" in p.stdout, timeout=15)
    line = next(ln for ln in p.stdout.splitlines() if "instrumenting process" in ln)
    assert "component=discover.traceAttacher cmd=%s pid=%d " % (exe, app.pid) in line
    assert "type=python service=%s" % os.path.basename(exe) in line
    metrics = http_get("http://127.0.0.1:%d/internal/metrics" % imetrics)[2].decode()
    assert 'beyla_instrumented_processes{process_name="%s"} 1' % os.path.basename(exe) in metrics


def test_exclusions_and_min_process_age(tmp_path, procs, ports, app_server):
    app_port, app = app_server
    exe = os.path.realpath("/proc/%d/exe" % app.pid)
    excluded = role_config(*ports(2), **_fast({"instrument": [{"open_ports": str(app_port)}],
                                               "exclude_instrument": [{"exe_path": exe}]}))
    too_young = role_config(*ports(2), **_fast({"instrument": [{"open_ports": str(app_port)}]}))
    too_young["discovery"]["min_process_age"] = "1h"
    control = role_config(*ports(2), **_fast({"instrument": [{"open_ports": str(app_port)}]}))
    started = [procs(["-config", write(tmp_path, cfg, name="%d.yml" % i)])
               for i, cfg in enumerate((excluded, too_young, control))]
    wait_until(lambda: "instrumenting process" in started[2].stdout, timeout=15)
    assert "instrumenting process" not in started[0].stdout
    assert "instrumenting process" not in started[1].stdout


def test_beyla_and_alloy_are_never_instrumented_by_default(tmp_path, procs, ports):
    health, imetrics, app_port = ports(3)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    alloy = bindir / "alloy"
    shutil.copy(sys.executable, alloy)
    server = subprocess.Popen([str(alloy), "-m", "http.server", str(app_port), "--bind", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: http_get("http://127.0.0.1:%d/" % app_port)[0] == 200, timeout=15)
        cfg = role_config(health, imetrics, **_fast({"instrument": [{"open_ports": str(app_port)}]}))
        p = procs(["-config", write(tmp_path, cfg)])
        p.wait_http("http://127.0.0.1:%d/healthz" % health)
        cfg["discovery"]["default_exclude_instrument"] = []
        cfg["health_check"]["port"], cfg["internal_metrics"]["prometheus"]["port"] = ports(2)
        q = procs(["-config", write(tmp_path, cfg, name="self.yml")])
        wait_until(lambda: "instrumenting process" in q.stdout, timeout=15)
        assert "instrumenting process" not in p.stdout
    finally:
        server.terminate()
        server.wait(timeout=10)


# ---------------------------------------------------------------------------
# OTLP export
# ---------------------------------------------------------------------------

class _Sink(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.append((self.path, self.headers.get("Content-Type"), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def sink():
    handler = type("Sink", (_Sink,), {"received": []})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1], handler.received
    srv.shutdown()
    srv.server_close()


def test_posts_empty_otlp_http_requests_to_the_configured_endpoint(tmp_path, procs, ports, sink):
    sink_port, received = sink
    health, imetrics = ports(2)
    cfg = role_config(health, imetrics, otlp="http://127.0.0.1:%d" % sink_port)
    cfg["otel_traces_export"]["batch_timeout"] = "200ms"
    cfg["otel_metrics_export"]["interval"] = "200ms"
    procs(["-config", write(tmp_path, cfg)])
    wait_until(lambda: {"/v1/traces", "/v1/metrics"} <= {r[0] for r in received}, timeout=15)
    assert all(ctype == "application/x-protobuf" and body == b"" for _path, ctype, body in received)


def test_grpc_endpoints_are_not_contacted_and_failures_are_counted(tmp_path, procs, ports, sink):
    sink_port, received = sink
    health, imetrics, closed = ports(3)
    cfg = role_config(health, imetrics, otlp="http://127.0.0.1:%d" % sink_port)
    cfg["otel_traces_export"].update(protocol="grpc", batch_timeout="200ms")
    cfg["otel_metrics_export"].update(endpoint="http://127.0.0.1:%d/otlp" % closed, interval="200ms")
    p = procs(["-config", write(tmp_path, cfg)])

    def errors():
        body = http_get("http://127.0.0.1:%d/internal/metrics" % imetrics)[2].decode()
        return re.search(r'beyla_otel_metric_export_errors_total\{error="Post \\"http://127\.0\.0\.1:%d/otlp\\": '
                         r'dial tcp 127\.0\.0\.1:%d: connect: connection refused"\} [1-9]' % (closed, closed), body)

    wait_until(errors, timeout=15)
    assert received == []
    assert p.alive()


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("pattern, text, ok", [
    ("*/python3*", "/usr/bin/python3.11", True),
    ("{*beyla,*alloy}", "/opt/o11y/alloy/current/alloy", True),
    ("{*beyla,*alloy}", "/usr/bin/alloy-helper", False),
    ("*otelcol-contrib[!/]*", "/usr/bin/otelcol-contrib2", True),
    ("/opt/app/serve?", "/opt/app/server", True),
    ("/opt/app/serve?", "/opt/app/serve", False),
])
def test_glob_semantics(pattern, text, ok):
    assert beyla.glob_match(pattern, text) is ok


def test_int_enum():
    ranges = beyla.parse_int_enum("80, 443,8000-8999")
    assert [beyla.int_enum_matches(ranges, n) for n in (80, 443, 8500, 9000)] == [True, True, True, False]
    with pytest.raises(ValueError):
        beyla.parse_int_enum("80-")


def test_replace_env():
    env = {"A": "1", "EMPTY": ""}
    assert beyla.replace_env("${A} ${env:A} ${EMPTY:-d} ${UNSET} $${A}", env) == "1 1 d  ${A}"


def test_slog_lines_and_levels(capsys):
    log = beyla.SlogLogger(level=beyla.parse_slog_level("info"))  # stdout, like Beyla
    log.debug("dropped")
    log.with_(component="discover").info("instrumenting process", pid=42, ok=True, cmd__line="a b")
    out = capsys.readouterr().out
    assert "dropped" not in out
    assert re.fullmatch(r'time=\S+Z level=INFO msg="instrumenting process" component=discover pid=42 ok=true '
                        r'"cmd line"="a b"\n', out), out
    beyla.SlogLogger(fmt="json", level=beyla.parse_slog_level("warn+1")).error("failed", code=3)
    beyla.SlogLogger(fmt="json", level=beyla.parse_slog_level("warn+1")).warn("dropped")
    record = json.loads(capsys.readouterr().out)
    assert {k: record[k] for k in ("level", "msg", "code")} == {"level": "ERROR", "msg": "failed", "code": 3}

