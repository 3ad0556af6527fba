# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Alloy stand-in: CLI, the Alloy syntax, `validate` and `run` (as subprocesses on 127.0.0.1)."""

from __future__ import annotations

import functools
import gzip
import json
import os
import re
import signal
import socket
import sys
import time
import urllib.request
from pathlib import Path

import pytest

STANDINS = Path(__file__).resolve().parents[2] / "standins"
if str(STANDINS) not in sys.path:
    sys.path.insert(0, str(STANDINS))

from o11y_standins import alloy  # noqa: E402
from o11y_standins import alloy_syntax as syn  # noqa: E402
from o11y_standins.testing import StandinProcess, free_port, http_get, wait_until  # noqa: E402


@pytest.fixture
def procs(start_standin):
    return functools.partial(start_standin, "alloy")


def ports(n):
    out = set()
    while len(out) < n:
        out.add(free_port())
    return list(out)


def role_config(grpc=4317, http=4318, journal=True, files=("/var/log/demo/*.log",), extra=""):
    """What roles/alloy renders (same components, arguments and shapes)."""
    text = """// Ansible managed
logging {
  level  = "info"
  format = "logfmt"
}

otelcol.receiver.otlp "default" {
  grpc {
    endpoint = "127.0.0.1:%(grpc)d"
  }

  http {
    endpoint = "127.0.0.1:%(http)d"
  }

  output {
    metrics = [otelcol.processor.memory_limiter.default.input]
    logs    = [otelcol.processor.memory_limiter.default.input]
    traces  = [otelcol.processor.memory_limiter.default.input]
  }
}

otelcol.processor.memory_limiter "default" {
  check_interval = "1s"
  limit_percentage = 80
  spike_limit_percentage = 16

  output {
    metrics = [otelcol.processor.batch.default.input]
    logs    = [otelcol.processor.batch.default.input]
    traces  = [otelcol.processor.batch.default.input]
  }
}

otelcol.processor.batch "default" {
  timeout = "5s"

  output {
    metrics = [otelcol.exporter.prometheus.mimir.input]
    logs    = [otelcol.exporter.otlphttp.loki.input]
    traces  = [otelcol.exporter.otlp.tempo.input]
  }
}

otelcol.exporter.otlp "tempo" {
  client {
    endpoint = "127.0.0.1:9"
    headers  = { "X-Scope-OrgID" = "team-a" }

    tls {
      insecure = true
    }
  }
}

otelcol.exporter.prometheus "mimir" {
  forward_to = [prometheus.remote_write.mimir.receiver]
}

prometheus.remote_write "mimir" {
  endpoint {
    url = "http://127.0.0.1:9/api/v1/push"
  }
}

otelcol.exporter.otlphttp "loki" {
  client {
    endpoint = "http://127.0.0.1:9/otlp"
  }
}

loki.write "default" {
  endpoint {
    url = "http://127.0.0.1:9/loki/api/v1/push"
    tenant_id = "team-a"
  }
}

loki.process "app_json" {
  stage.json {
    expressions = { "level" = "level", "span_id" = "span_id", "trace_id" = "trace_id" }
  }

  stage.structured_metadata {
    values = { "span_id" = null, "trace_id" = null }
  }

  stage.labels {
    values = { "level" = null }
  }

  stage.label_keep {
    values = ["service", "host", "level"]
  }

  forward_to = [loki.write.default.receiver]
}
""" % {"grpc": grpc, "http": http}
    if journal:
        text += """
loki.relabel "journal" {
  forward_to = []

  rule {
    source_labels = ["__journal__systemd_unit"]
    regex         = "(.+?)(?:\\\\.service)?"
    target_label  = "service"
  }
}

loki.source.journal "units" {
  matches       = "_SYSTEMD_UNIT=demo.service _SYSTEMD_UNIT=other.service"
  relabel_rules = loki.relabel.journal.rules
  labels        = { host = constants.hostname }
  forward_to    = [loki.process.app_json.receiver]
}
"""
    if files:
        text += """
local.file_match "app_files" {
  path_targets = [
%s  ]
}

loki.source.file "app_files" {
  targets    = local.file_match.app_files.targets
  forward_to = [loki.process.app_json.receiver]
}
""" % "".join('    {"__path__" = %s, "service" = "demo", "host" = constants.hostname},\n' % json.dumps(f)
              for f in files)
    text += """
prometheus.scrape "extra" {
  targets         = [{ "__address__" = "127.0.0.1:9100", "job" = "node" }]
  scrape_interval = "60s"
  forward_to      = [prometheus.remote_write.mimir.receiver]
}
""" + extra
    return text


def write(tmp_path, text, name="config.alloy"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def run(args, env=None):
    p = StandinProcess(["alloy"] + list(args), env=env)
    try:
        rc = p.run()
        return rc, p.stdout, p.stderr
    finally:
        p.close()


def validate_text(tmp_path, text):
    return run(["validate", write(tmp_path, text)])


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["--version", "-v"])
def test_version(flag):
    rc, out, _err = run([flag])
    assert rc == 0
    lines = out.splitlines()
    assert re.fullmatch(r"alloy, version v1\.18\.1 \(branch: HEAD, revision: [0-9a-f]{10}\)", lines[0])
    assert "  go version:       go1.26.5" in lines
    assert any(line.startswith("  platform:         linux/") for line in lines)


@pytest.mark.parametrize("args, message", [
    (["run", "--no-such-flag", "x.alloy"], "unknown flag: --no-such-flag"),
    # pflag reads a single dash as shorthand flags, unlike Go's flag package
    (["run", "-storage.path", "/tmp", "x.alloy"], "unknown shorthand flag: 's' in -storage.path"),
    (["run", "x.alloy", "--storage.path"], "flag needs an argument: --storage.path"),
    (["run", "--cluster.max-join-peers=many", "x.alloy"],
     'invalid argument "many" for "--cluster.max-join-peers" flag: strconv.ParseInt: parsing "many": invalid syntax'),
    (["run", "--disable-reporting=maybe", "x.alloy"],
     'invalid argument "maybe" for "--disable-reporting" flag: strconv.ParseBool: parsing "maybe": invalid syntax'),
    (["run", "--stability.level=beta", "x.alloy"],
     'invalid argument "beta" for "--stability.level" flag: invalid stability level "beta"'),
    (["run"], "accepts 1 arg(s), received 0"),
    (["validate", "a.alloy", "b.alloy"], "accepts 1 arg(s), received 2"),
    (["validate", "--storage.path=/tmp", "a.alloy"], "unknown flag: --storage.path"),
])
def test_cli_errors_exit_1_like_cobra(args, message):
    rc, _out, err = run(args)
    assert rc == 1
    assert err.startswith("Error: %s\n" % message)
    assert re.search(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d collector server run finished with error: " + re.escape(message),
                     err)


def test_unknown_subcommand():
    rc, _out, err = run(["serve"])
    assert rc == 1 and err.startswith('Error: unknown command "serve" for "alloy"\nRun \'alloy --help\' for usage.')


@pytest.mark.parametrize("args, needle", [(["--help"], "Available Commands:"), (["run", "--help"], "--storage.path"),
                                          (["validate", "-h"], "--stability.level")])
def test_help_exits_0(args, needle):
    rc, out, _err = run(args)
    assert rc == 0 and needle in out


def test_experimental_flag_needs_the_stability_level(tmp_path):
    rc, _out, err = run(["run", "--feature.prometheus.direct-fanout.enabled", write(tmp_path, role_config())])
    assert rc == 1
    assert "'--feature.prometheus.direct-fanout.enabled' can only be used at experimental stability level" in err


# ---------------------------------------------------------------------------
# the syntax
# ---------------------------------------------------------------------------

def test_parser_statements_and_values():
    src = ('// c\na = 1 /* x */\nb.c "lbl" {\n  x = [1, 2.5e1, -3,]\n  y = {k = "v\\u00e9\\n", "q k" = `raw\n'
           'line`, }\n  z = !false && 2 ^ 3 ^ 2 == 512 || null == null\n}\n')
    f = syn.parse("t.alloy", src)
    assert [type(s).__name__ for s in f.body] == ["Attribute", "Block"]
    blk = f.body[1]
    assert blk.name == ["b", "c"] and blk.label == "lbl" and blk.start == syn.Pos("t.alloy", 3, 1)
    ev = syn.Evaluator({})
    vals = {s.name: ev.eval(s.value) for s in blk.body}
    assert vals == {"x": [1, 25.0, -3], "y": {"k": "v\u00e9\n", "q k": "raw\nline"}, "z": True}


@pytest.mark.parametrize("src, message", [
    ('a = "x\n', "1:5: string literal not terminated"),
    ("a = 'x'\n", "1:5: illegal single-quoted string; use double quotes"),
    ("a = [1\n 2]\n", "1:7: missing ',' in expression list"),
    ("a = 1 b = 2\n", "1:7: expected TERMINATOR, got IDENT"),
    ('x.y = 1\n', '1:1: attribute names may only consist of a single identifier with no "."'),
    ('blk "not valid" {}\n', 'expected block label to be a valid identifier, but got "not valid"'),
    ('a = "\\q"\n', "1:7: unknown escape sequence"),
    ("blk {\n", "expected }, got EOF"),
])
def test_parser_errors(src, message):
    with pytest.raises(syn.Diagnostics) as info:
        syn.parse("t.alloy", src)
    assert any(message in str(d) for d in info.value.diags), [str(d) for d in info.value.diags]


def test_diagnostic_excerpt_like_alloys_printer():
    src = 'logging {\n\ttest = "test"\n}\n'
    d = syn.Diagnostic(syn.ERROR, syn.Pos("main.alloy", 2, 2), 'unrecognized attribute name "test"',
                       syn.Pos("main.alloy", 2, 14))
    assert syn.format_diagnostics([d], {"main.alloy": src}) == (
        'Error: main.alloy:2:2: unrecognized attribute name "test"\n\n'
        '1 | logging {\n'
        '2 |     test = "test"\n'
        '  |     ^^^^^^^^^^^^^\n'
        '3 | }\n')


# ---------------------------------------------------------------------------
# validate
# ---------------------------------------------------------------------------

def test_role_config_validates(tmp_path):
    rc, out, err = validate_text(tmp_path, role_config())
    assert rc == 0, err
    assert out == "" and err == ""


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t + 'otelcol.receiver.otlpx "a" {}\n', 'cannot find the definition of component name "otelcol.receiver.otlpx"'),
    (lambda t: t.replace('timeout = "5s"', 'timeout = "5s"\n  send_batch = 10'), 'unrecognized attribute name "send_batch"'),
    (lambda t: t.replace("  output {\n    metrics = [otelcol.exporter", "  outputs {\n    metrics = [otelcol.exporter"),
     'unrecognized block name "outputs"'),
    (lambda t: t.replace('  check_interval = "1s"\n', ''), 'missing required attribute "check_interval"'),
    (lambda t: t.replace('    url = "http://127.0.0.1:9/api/v1/push"\n', ''), 'missing required attribute "url"'),
    (lambda t: t + 'otelcol.processor.batch "x" {}\n', 'missing required block "output"'),
    (lambda t: t + 'otelcol.processor.batch "default" {\n  output {}\n}\n',
     "block otelcol.processor.batch.default already declared at "),
    (lambda t: t + 'loki.write {\n  endpoint {\n    url = "http://x:1/p"\n  }\n}\n', 'component "loki.write" must have a label'),
    (lambda t: t.replace("[loki.write.default.receiver]", "[loki.write.defualt.receiver]"),
     'component "loki.write.defualt.receiver" does not exist or is out of scope'),
    (lambda t: t.replace("limit_percentage = 80", 'limit_percentage = "80"'), "expected number, got string"),
    (lambda t: t.replace('timeout = "5s"', 'timeout = "5 s"'), 'time: invalid duration "5 s"'),
    (lambda t: t.replace('timeout = "5s"', 'timeout = "5s"\n  timeout = "6s"'), 'attribute "timeout" may only be provided once'),
    (lambda t: t.replace('target_label  = "service"', 'target_label  = "service"\n    action = "rename"'),
     'unrecognized action type "rename"'),
    (lambda t: t.replace("    insecure = true", "    insecure = true\n    output = []"), 'unrecognized attribute name "output"'),
    (lambda t: t.replace('  stage.labels {', '  stage.lables {'), 'unrecognized block name "stage.lables"'),
    (lambda t: t.replace('  forward_to = [prometheus.remote_write.mimir.receiver]\n}',
                         '  forward_to = "prometheus"\n}', 1), "expected array, got string"),
    (lambda t: t.replace('  client {\n    endpoint = "http://127.0.0.1:9/otlp"\n  }\n', '  client = {}\n'),
     '"client" must be a block, but is used as an attribute'),
])
def test_validate_rejects(tmp_path, mutate, message):
    text = mutate(role_config())
    rc, out, err = validate_text(tmp_path, text)
    assert rc == 1, err
    assert message in err, err
    # every diagnostic names file:line:col, then the excerpt; cobra's error line closes the output
    assert re.search(r"^Error: %s:\d+:\d+: " % re.escape(str(tmp_path / "config.alloy")), err, re.M)
    assert "\nError: validation failed\n" in err
    assert out == "\n"


def test_validate_points_at_the_line(tmp_path):
    text = role_config().replace('  timeout = "5s"', '  timeout = "5s"\n  bogus = true')
    rc, _out, err = validate_text(tmp_path, text)
    line = text.splitlines().index("  bogus = true") + 1
    assert rc == 1
    assert 'Error: %s:%d:3: unrecognized attribute name "bogus"' % (tmp_path / "config.alloy", line) in err
    assert "%d |   bogus = true" % line in err


def test_validate_reads_a_directory(tmp_path):
    (tmp_path / "conf").mkdir()
    write(tmp_path / "conf", role_config(), "main.alloy")
    write(tmp_path / "conf", 'prometheus.scrape "more" {\n  targets = []\n'
                             '  forward_to = [prometheus.remote_write.mimir.receiver]\n}\n', "more.alloy")
    write(tmp_path / "conf", "this is ignored: not an .alloy file", "notes.txt")
    rc, _out, err = run(["validate", str(tmp_path / "conf")])
    assert rc == 0, err
    write(tmp_path / "conf", 'prometheus.scrape "extra" {\n  targets = []\n  forward_to = []\n}\n', "dup.alloy")
    rc, _out, err = run(["validate", str(tmp_path / "conf")])
    assert rc == 1 and "block prometheus.scrape.extra already declared at" in err


def test_deprecated_stdlib_warns_but_validates(tmp_path):
    text = role_config(extra='prometheus.scrape "envy" {\n  targets = [{"__address__" = env("TARGET")}]\n'
                             '  forward_to = [prometheus.remote_write.mimir.receiver]\n}\n')
    rc, _out, err = validate_text(tmp_path, text)
    assert rc == 0 and "Warning: " in err and "this stdlib function is deprecated" in err


def test_validate_missing_file(tmp_path):
    rc, _out, err = run(["validate", str(tmp_path / "nope.alloy")])
    assert rc == 1 and "no such file or directory" in err


# ---------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------

def start(procs, tmp_path, text, extra_args=(), env=None):
    http, grpc, otlp_http = ports(3)
    text = text.replace("127.0.0.1:4317", "127.0.0.1:%d" % grpc).replace("127.0.0.1:4318", "127.0.0.1:%d" % otlp_http)
    path = write(tmp_path, text)
    p = procs(["run", "--server.http.listen-addr=127.0.0.1:%d" % http, "--storage.path=%s" % (tmp_path / "data"),
               "--disable-reporting", *extra_args, path], env=env)
    p.wait_http("http://127.0.0.1:%d/-/ready" % http)
    return p, http, grpc, otlp_http, path


def metric(http, name, **labels):
    _s, _h, body = http_get("http://127.0.0.1:%d/metrics" % http)
    for line in body.decode().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all('%s="%s"' % kv in line for kv in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


def post(port, path, body, ctype, encoding=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body, method="POST",
                                 headers={"Content-Type": ctype, **({"Content-Encoding": encoding} if encoding else {})})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def _ld(field, payload):
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def otlp_traces_protobuf(n):
    """ExportTraceServiceRequest with one resource, one scope and n spans (name only)."""
    spans = b"".join(_ld(2, _ld(5, b"span%d" % i)) for i in range(n))
    return _ld(1, _ld(1, b"") + _ld(2, spans))


def test_run_serves_http_otlp_and_metrics(tmp_path, procs):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text('{"level":"info","trace_id":"abc"}\n')
    p, http, grpc, otlp_http, _path = start(procs, tmp_path, role_config(journal=False, files=[str(logs / "*.log")]))
    status, _h, body = http_get("http://127.0.0.1:%d/-/ready" % http)
    assert status == 200 and body == b"Alloy is ready.\n"
    status, _h, body = http_get("http://127.0.0.1:%d/-/healthy" % http)
    assert status == 200 and body == b"All Alloy components are healthy.\n"
    with socket.create_connection(("127.0.0.1", grpc), timeout=2):
        pass
    assert metric(http, "alloy_build_info", version="v1.18.1") == 1
    assert metric(http, "alloy_config_last_load_successful") == 1
    assert metric(http, "loki_source_file_files_active_total", component_id="loki.source.file.app_files") == 1
    # OTLP/HTTP: JSON, protobuf, gzip; counted per signal
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "a"}, {"name": "b"}]}]}]}
    assert post(otlp_http, "/v1/traces", json.dumps(doc).encode(), "application/json")[0] == 200
    assert post(otlp_http, "/v1/traces", otlp_traces_protobuf(3), "application/x-protobuf")[0] == 200
    assert post(otlp_http, "/v1/traces", gzip.compress(otlp_traces_protobuf(1)), "application/x-protobuf",
                "gzip")[0] == 200
    logs_doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "x"}}]}]}]}
    assert post(otlp_http, "/v1/logs", json.dumps(logs_doc).encode(), "application/json")[0] == 200
    metrics_doc = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "m", "gauge": {"dataPoints": [{"asDouble": 1}, {"asDouble": 2}]}}]}]}]}
    assert post(otlp_http, "/v1/metrics", json.dumps(metrics_doc).encode(), "application/json")[0] == 200
    labels = {"component_id": "otelcol.receiver.otlp.default", "transport": "http"}
    assert metric(http, "otelcol_receiver_accepted_spans_total", **labels) == 6
    assert metric(http, "otelcol_receiver_accepted_log_records_total", **labels) == 1
    assert metric(http, "otelcol_receiver_accepted_metric_points_total", **labels) == 2
    assert post(otlp_http, "/v1/traces", b"x", "text/plain")[0] == 415
    assert post(otlp_http, "/v1/traces", b"\x0a\xff", "application/x-protobuf")[0] == 400
    # stateful components get their directory below --storage.path
    assert (tmp_path / "data" / "prometheus.remote_write.mimir").is_dir()
    assert (tmp_path / "data" / "loki.source.file.app_files").is_dir()
    assert p.terminate() == 0


def test_reload_keeps_the_running_config_on_errors(tmp_path, procs):
    p, http, grpc, otlp_http, path = start(procs, tmp_path, role_config(journal=False, files=()))
    good = Path(path).read_text()
    # validate passes, but the value check on load does not: refused, the old config stays
    Path(path).write_text(good.replace("limit_percentage = 80", "limit_percentage = 80\n  limit = \"100MiB\""))
    status, _h, body = http_get("http://127.0.0.1:%d/-/reload" % http, method="POST")
    assert status == 400
    assert body.decode().startswith("error during the initial load: %s:" % path)
    assert "either limit or limit_percentage must be set, but not both" in body.decode()
    assert metric(http, "alloy_config_last_load_successful") == 0
    assert metric(http, "alloy_config_load_failures_total") == 1
    assert http_get("http://127.0.0.1:%d/-/ready" % http)[0] == 200
    assert post(otlp_http, "/v1/traces", otlp_traces_protobuf(1), "application/x-protobuf")[0] == 200
    # a syntax error is a "reading config path" error
    Path(path).write_text(good + "\nbroken {\n")
    status, _h, body = http_get("http://127.0.0.1:%d/-/reload" % http)
    assert status == 400 and body.decode().startswith('reading config path "%s": ' % path)
    # a good change applies: the OTLP HTTP receiver moves
    new_port = free_port()
    Path(path).write_text(good.replace("127.0.0.1:%d" % otlp_http, "127.0.0.1:%d" % new_port))
    status, _h, body = http_get("http://127.0.0.1:%d/-/reload" % http, method="POST")
    assert status == 200 and body == b"config reloaded\n"
    assert post(new_port, "/v1/traces", otlp_traces_protobuf(1), "application/x-protobuf")[0] == 200
    wait_until(lambda: http_get("http://127.0.0.1:%d/" % otlp_http, timeout=1)[0] == 0, timeout=5,
               message="old OTLP port closed")
    assert metric(http, "alloy_config_last_load_successful") == 1
    assert p.terminate() == 0


def test_sighup_reloads(tmp_path, procs):
    p, http, _grpc, otlp_http, path = start(procs, tmp_path, role_config(journal=False, files=()))
    new_port = free_port()
    Path(path).write_text(Path(path).read_text().replace("127.0.0.1:%d" % otlp_http, "127.0.0.1:%d" % new_port))
    os.kill(p.proc.pid, signal.SIGHUP)
    wait_until(lambda: post(new_port, "/v1/logs", b"", "application/x-protobuf")[0] == 200
               if _port_open(new_port) else False, timeout=10, message="receiver on the new port")
    assert "config reloaded" in p.stderr


def _port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_run_evaluates_what_validate_cannot(tmp_path):
    # a reference to an export that does not exist passes validate but fails the load
    text = role_config(journal=False, files=()).replace("memory_limiter.default.input]\n    logs",
                                                        "memory_limiter.default.inputs]\n    logs")
    path = write(tmp_path, text)
    assert run(["validate", path])[0] == 0
    rc, out, err = run(["run", "--server.http.listen-addr=127.0.0.1:%d" % free_port(),
                        "--storage.path=%s" % (tmp_path / "data"), path])
    assert rc == 1
    assert 'field "inputs" does not exist' in err
    assert err.rstrip().splitlines()[-2] == "Error: could not perform the initial load successfully"
    assert out == "\n"


def test_sys_env_is_evaluated(tmp_path, procs):
    text = role_config(journal=False, files=()).replace('url = "http://127.0.0.1:9/api/v1/push"',
                                                        'url = sys.env("MIMIR_URL")')
    p, http, *_ = start(procs, tmp_path, text, env={"MIMIR_URL": "http://127.0.0.1:9/api/v1/push"})
    assert metric(http, "alloy_config_last_load_successful") == 1
    p.terminate()
    rc, _out, err = run(["run", "--server.http.listen-addr=127.0.0.1:%d" % free_port(),
                         "--storage.path=%s" % (tmp_path / "data2"), write(tmp_path, text, "b.alloy")],
                        env={"MIMIR_URL": "http://mimir host:9009/api/v1/push"})
    assert rc == 1
    assert ('cannot parse remote_write url "http://mimir host:9009/api/v1/push": parse '
            '"http://mimir host:9009/api/v1/push": invalid character " " in host name') in err


def test_storage_path_must_be_writable(tmp_path):
    if os.geteuid() == 0:
        blocked = tmp_path / "file-not-dir"
        blocked.write_text("")
        storage = blocked / "data"  # below a regular file: no user can create it
    else:
        storage = tmp_path / "ro"
        storage.mkdir(mode=0o500)
    rc, _out, err = run(["run", "--server.http.listen-addr=127.0.0.1:%d" % free_port(),
                         "--storage.path=%s" % storage, write(tmp_path, role_config(journal=False, files=()))])
    assert rc == 1
    assert re.search(r"^Error: .*: building component: %s/[a-z_.]+: " % re.escape(str(storage)), err, re.M), err
    assert "Error: could not perform the initial load successfully" in err


def test_unreadable_log_file_is_reported(tmp_path, procs):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "ok.log").write_text("{}\n")
    (logs / "dangling.log").symlink_to(tmp_path / "missing-target")  # open() fails for any user
    p, http, *_ = start(procs, tmp_path, role_config(journal=False, files=[str(logs / "*.log")]))
    assert metric(http, "loki_source_file_files_active_total", component_id="loki.source.file.app_files") == 1
    wait_until(lambda: 'msg="failed to tail file"' in p.stderr, timeout=10, message="failed to tail file")
    assert "dangling.log" in p.stderr and "no such file or directory" in p.stderr


def test_journal_without_readable_files_is_unhealthy(tmp_path, procs):
    journal = tmp_path / "journal"
    journal.mkdir()
    text = role_config(files=()).replace('matches       =', 'path          = "%s"\n  matches       =' % journal)
    p, http, *_ = start(procs, tmp_path, text)
    status, _h, body = http_get("http://127.0.0.1:%d/-/healthy" % http)
    assert status == 500 and body == b"unhealthy components: loki.source.journal\n"
    assert 'msg="error creating journal tailer"' in p.stderr
    (journal / "system.journal").write_bytes(b"LPKSHHRH")
    wait_until(lambda: http_get("http://127.0.0.1:%d/-/healthy" % http)[0] == 200, timeout=15,
               message="journal readable -> healthy")


def test_http_port_in_use_exits_1(tmp_path):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        rc, _out, err = run(["run", "--server.http.listen-addr=127.0.0.1:%d" % port,
                             "--storage.path=%s" % (tmp_path / "data"), write(tmp_path, role_config(files=()))])
    assert rc == 1 and "failed to listen on 127.0.0.1:%d" % port in err


def test_otlp_port_in_use_marks_the_receiver_unhealthy(tmp_path, procs):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        busy = blocker.getsockname()[1]
        text = role_config(journal=False, files=()).replace("127.0.0.1:4317", "127.0.0.1:%d" % busy) \
            .replace("127.0.0.1:4318", "127.0.0.1:%d" % free_port())
        http = free_port()
        p = procs(["run", "--server.http.listen-addr=127.0.0.1:%d" % http, "--storage.path=%s" % (tmp_path / "d"),
                   write(tmp_path, text)])
        p.wait_http("http://127.0.0.1:%d/-/ready" % http)
        status, _h, body = http_get("http://127.0.0.1:%d/-/healthy" % http)
        assert status == 500 and b"otelcol.receiver.otlp" in body
        time.sleep(0.1)


def test_logger_follows_the_logging_block(capsys):
    log = alloy.AlloyLogger()
    log.debug("dropped")
    log.info("now listening", addr="127.0.0.1:12345", note="a b")
    assert re.fullmatch(r'ts=\S+Z level=info msg="now listening" addr=127.0.0.1:12345 note="a b"\n',
                        capsys.readouterr().err)
    log.level, log.fmt = log.LEVELS["debug"], "json"  # logging { level = "debug" format = "json" }
    log.debug("shown", n=1)
    record = json.loads(capsys.readouterr().err)
    assert {k: record[k] for k in ("level", "msg", "n")} == {"level": "debug", "msg": "shown", "n": "1"}



# ---------------------------------------------------------------------------
# data flow: receiver -> memory_limiter -> batch -> exporters
# ---------------------------------------------------------------------------

class _Capture:
    """An HTTP server recording POSTs (path, headers, body) and answering ``status``."""

    def __init__(self, status=204):
        import http.server
        import threading
        self.requests = []
        self.status = status
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def decode_write_request(body):
    """Our own remote-write 1.0 decoder: [(labels, value, ts)]."""
    from o11y_standins import wire
    out = []
    for series in wire.children(wire.snappy_decode(body), 1):
        labels = {}
        for pair in wire.children(series, 1):
            kv = {n: v.decode() for n, _w, v in wire.fields(pair)}
            labels[kv.get(1, "")] = kv.get(2, "")
        for sample in wire.children(series, 2):
            f = {n: v for n, _w, v in wire.fields(sample)}
            out.append((labels, wire.as_double(f.get(1, b"\0" * 8)), f.get(2, 0)))
    return out


def test_prometheus_names_and_labels():
    from o11y_standins.alloy import otlp_to_samples, prometheus_metric_name
    assert prometheus_metric_name("http.server.duration", "ms", True, False) == "http_server_duration_milliseconds"
    assert prometheus_metric_name("requests", "{request}", False, True) == "requests_total"
    assert prometheus_metric_name("cpu.utilization", "1", True, False) == "cpu_utilization_ratio"
    assert prometheus_metric_name("mem.usage", "By", True, False) == "mem_usage_bytes"
    assert prometheus_metric_name("x.y", "s", True, False, suffixes=False) == "x_y"
    doc = {"resourceMetrics": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "svc"}},
        {"key": "service.namespace", "value": {"stringValue": "ns"}},
        {"key": "service.instance.id", "value": {"stringValue": "i-1"}},
        {"key": "host.name", "value": {"stringValue": "h"}}]},
        "scopeMetrics": [{"scope": {"name": "verify", "version": "1"}, "metrics": [
            {"name": "o11y.verify.gauge", "gauge": {"dataPoints": [
                {"asDouble": 42.5, "timeUnixNano": "1700000000000000000",
                 "attributes": [{"key": "run.id", "value": {"stringValue": "r1"}}]}]}}]}]}]}
    samples = otlp_to_samples(doc, {})
    assert samples[0] == ({"__name__": "o11y_verify_gauge", "run_id": "r1", "job": "ns/svc", "instance": "i-1",
                           "otel_scope_name": "verify", "otel_scope_version": "1"}, 42.5, 1700000000000)
    assert samples[1] == ({"__name__": "target_info", "host_name": "h", "job": "ns/svc", "instance": "i-1"},
                          1.0, 1700000000000)


def test_otlp_flows_to_tempo_loki_and_mimir(tmp_path, procs):
    import time
    from o11y_standins import grpc_h2c, otlp
    exports = []

    def tempo(method, metadata, message):
        exports.append((method, metadata, otlp.decode("traces", message)))
        return grpc_h2c.OK, "", b""

    tempo_srv = grpc_h2c.GrpcServer("tempo", "127.0.0.1", 0, tempo)
    loki, mimir = _Capture(204), _Capture(200)
    text = role_config(journal=False, files=()).replace('timeout = "5s"', 'timeout = "200ms"')
    text = text.replace('endpoint = "127.0.0.1:9"', 'endpoint = "127.0.0.1:%d"' % tempo_srv.port)
    text = text.replace("http://127.0.0.1:9/otlp", "http://127.0.0.1:%d/otlp" % loki.port)
    text = text.replace("http://127.0.0.1:9/api/v1/push", "http://127.0.0.1:%d/api/v1/push" % mimir.port)
    text = text.replace('url = "http://127.0.0.1:%d/api/v1/push"' % mimir.port,
                        'url = "http://127.0.0.1:%d/api/v1/push"\n    headers = { "X-Scope-OrgID" = "team-a" }\n'
                        '    basic_auth {\n      username = "u"\n      password = "p"\n    }' % mimir.port)
    try:
        p, http, grpc, otlp_http, _path = start(procs, tmp_path, text)
        trace_id, span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
        resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "o11y-verify"}}]}
        traces = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": [
            {"traceId": trace_id, "spanId": span_id, "name": "verify", "kind": 2,
             "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000001000000000"}]}]}]}
        logs = {"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": [
            {"timeUnixNano": str(time.time_ns()), "body": {"stringValue": "hello"}, "traceId": trace_id,
             "spanId": span_id}]}]}]}
        metrics = {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": [
            {"name": "o11y_verify", "gauge": {"dataPoints": [{"asDouble": 7, "timeUnixNano": str(time.time_ns())}]}}]}]}]}
        assert post(otlp_http, "/v1/traces", json.dumps(traces).encode(), "application/json")[0] == 200
        assert post(otlp_http, "/v1/logs", otlp.encode("logs", otlp.from_json("logs", logs)),
                    "application/x-protobuf")[0] == 200
        # the OTLP gRPC receiver takes the same data
        grpc_h2c.call("127.0.0.1:%d" % grpc, "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                      otlp.encode("metrics", otlp.from_json("metrics", metrics)))
        wait_until(lambda: exports and loki.requests and mimir.requests, timeout=10, message="data forwarded")

        method, metadata, doc = exports[0]
        assert method == "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
        assert metadata["x-scope-orgid"] == "team-a" and metadata["grpc-encoding"] == "gzip"
        span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        assert (span["traceId"], span["spanId"], span["name"]) == (trace_id, span_id, "verify")

        path, headers, body = loki.requests[0]
        assert path == "/otlp/v1/logs" and headers["content-type"] == "application/x-protobuf"
        assert headers["content-encoding"] == "gzip"
        rec = otlp.decode("logs", gzip.decompress(body))["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
        assert rec["traceId"] == trace_id and rec["body"] == {"stringValue": "hello"}

        path, headers, body = mimir.requests[0]
        assert path == "/api/v1/push" and headers["content-encoding"] == "snappy"
        assert headers["x-prometheus-remote-write-version"] == "0.1.0" and headers["x-scope-orgid"] == "team-a"
        assert headers["authorization"] == "Basic dTpw" and headers["content-type"] == "application/x-protobuf"
        [(labels, value, _ts)] = decode_write_request(body)
        assert labels == {"__name__": "o11y_verify", "job": "o11y-verify"} and value == 7.0

        wait_until(lambda: metric(http, "otelcol_exporter_sent_spans_total",
                                  component_id="otelcol.exporter.otlp.tempo") == 1, timeout=5)
        assert metric(http, "otelcol_exporter_sent_log_records_total",
                      component_id="otelcol.exporter.otlphttp.loki") == 1
        assert metric(http, "prometheus_remote_storage_samples_total",
                      component_id="prometheus.remote_write.mimir") == 1
        assert metric(http, "otelcol_receiver_accepted_metric_points_total", transport="grpc") == 1
        assert p.terminate() == 0
    finally:
        tempo_srv.stop()
        loki.stop()
        mimir.stop()


def test_send_failures_are_retried_counted_and_logged(tmp_path, procs):
    from o11y_standins import otlp
    mimir = _Capture(400)  # a 4xx is not recoverable: dropped at once
    text = role_config(journal=False, files=()).replace('timeout = "5s"', 'timeout = "100ms"')
    text = text.replace("http://127.0.0.1:9/api/v1/push", "http://127.0.0.1:%d/api/v1/push" % mimir.port)
    text = text.replace('    tls {\n      insecure = true\n    }\n  }\n',
                        '    tls {\n      insecure = true\n    }\n  }\n\n  retry_on_failure {\n'
                        '    initial_interval = "50ms"\n    max_elapsed_time = "300ms"\n  }\n')
    try:
        p, http, _grpc, otlp_http, _path = start(procs, tmp_path, text)
        traces = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "01" * 16, "name": "x"}]}]}]}
        metrics = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [
            {"name": "m", "gauge": {"dataPoints": [{"asInt": "3"}]}}]}]}]}
        assert post(otlp_http, "/v1/traces", json.dumps(traces).encode(), "application/json")[0] == 200
        assert post(otlp_http, "/v1/metrics", otlp.encode("metrics", otlp.from_json("metrics", metrics)),
                    "application/x-protobuf")[0] == 200
        wait_until(lambda: metric(http, "otelcol_exporter_send_failed_spans_total") == 1, timeout=10,
                   message="span send failure counted")
        wait_until(lambda: metric(http, "prometheus_remote_storage_samples_failed_total") == 1, timeout=10)
        assert mimir.requests
        p.terminate()
        assert "Exporting failed. Will retry the request after interval." in p.output
        assert "Exporting failed. Dropping data." in p.output and "non-recoverable error" in p.output
    finally:
        mimir.stop()
