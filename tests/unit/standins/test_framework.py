# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for the stand-in framework (tests/standins/o11y_standins/framework.py)."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

STANDINS = Path(__file__).resolve().parents[2] / "standins"
if str(STANDINS) not in sys.path:
    sys.path.insert(0, str(STANDINS))

from o11y_standins import framework as fw  # noqa: E402
from o11y_standins.testing import free_port, http_get, wait_until  # noqa: E402


# ---------------------------------------------------------------------------
# Go flag package
# ---------------------------------------------------------------------------

def loki_like_flags(out=None):
    fs = fw.FlagSet("loki", output=out or io.StringIO())
    fs.string("config.file", "", "yaml file to load")
    fs.bool("config.expand-env", False, "Expands ${var} in config according to the values of the environment variables.")
    fs.bool("verify-config", False, "Verify config file and exits")
    fs.int("server.http-listen-port", 3100, "HTTP server listen port.")
    fs.duration("server.graceful-shutdown-timeout", 30.0, "Timeout for graceful shutdowns")
    fs.string_list("target", ["all"], "Comma-separated list of components", csv=True)
    fs.string_list("header", None, "repeatable header")
    fs.float("ratio", 0.5, "a ratio")
    fs.uint("n", 0, "count")
    return fs


@pytest.mark.parametrize("argv", [
    ["-config.file=/etc/loki.yaml"],
    ["--config.file=/etc/loki.yaml"],
    ["-config.file", "/etc/loki.yaml"],
    ["--config.file", "/etc/loki.yaml"],
])
def test_flag_value_forms(argv):
    fs = loki_like_flags()
    assert fs.parse(argv) == []
    assert fs["config.file"] == "/etc/loki.yaml"
    assert fs.is_set("config.file")
    assert not fs.is_set("verify-config")


def test_flag_bools_and_types():
    fs = loki_like_flags()
    rest = fs.parse(["-verify-config", "--config.expand-env=true", "-server.http-listen-port=0x10",
                     "-server.graceful-shutdown-timeout", "1m30s", "-target=read,write", "-target", "backend",
                     "-header", "a", "-header", "b", "-ratio=1.5", "-n", "7", "positional", "-x"])
    assert fs["verify-config"] is True and fs["config.expand-env"] is True
    assert fs["server.http-listen-port"] == 16
    assert fs["server.graceful-shutdown-timeout"] == 90.0
    assert fs["target"] == ["read", "write", "backend"]
    assert fs["header"] == ["a", "b"]
    assert fs["ratio"] == 1.5 and fs["n"] == 7
    # parsing stops at the first non-flag argument, like Go
    assert rest == ["positional", "-x"]
    assert fs.set_flags()[:2] == ["verify-config", "config.expand-env"]


def test_flag_bool_false_and_bool_does_not_take_next_arg():
    fs = loki_like_flags()
    rest = fs.parse(["-verify-config=false", "-config.expand-env", "false"])
    assert fs["verify-config"] is False and fs.is_set("verify-config")
    assert fs["config.expand-env"] is True
    assert rest == ["false"]


def test_flag_double_dash_terminates_and_single_dash_is_positional():
    fs = loki_like_flags()
    assert fs.parse(["--", "-verify-config"]) == ["-verify-config"]
    assert fs["verify-config"] is False
    fs = loki_like_flags()
    assert fs.parse(["-", "-verify-config"]) == ["-", "-verify-config"]


def test_flag_defaults_untouched():
    fs = loki_like_flags()
    fs.parse([])
    assert fs["server.http-listen-port"] == 3100
    assert fs["target"] == ["all"]
    assert fs.get("missing", "d") == "d"


@pytest.mark.parametrize("argv, message", [
    (["-nope"], "flag provided but not defined: -nope"),
    (["--nope=1"], "flag provided but not defined: -nope"),
    (["-config.file"], "flag needs an argument: -config.file"),
    (["-server.http-listen-port=abc"], 'invalid value "abc" for flag -server.http-listen-port: parse error'),
    (["-verify-config=maybe"], 'invalid boolean value "maybe" for -verify-config: parse error'),
    (["-server.graceful-shutdown-timeout=5x"], 'invalid value "5x" for flag -server.graceful-shutdown-timeout: parse error'),
    (["---x"], "bad flag syntax: ---x"),
    (["-=x"], "bad flag syntax: -=x"),
    (["-n=-1"], 'invalid value "-1" for flag -n: parse error'),
])
def test_flag_errors_exit_2_with_go_message_and_usage(argv, message):
    out = io.StringIO()
    fs = loki_like_flags(out)
    with pytest.raises(SystemExit) as exc:
        fs.parse_or_exit(argv)
    assert exc.value.code == 2
    text = out.getvalue()
    assert text.startswith(message + "\n")
    assert "Usage of loki:" in text


@pytest.mark.parametrize("flag", ["-h", "-help", "--help"])
def test_flag_help_exits_0_with_usage(flag):
    out = io.StringIO()
    fs = loki_like_flags(out)
    with pytest.raises(SystemExit) as exc:
        fs.parse_or_exit([flag])
    assert exc.value.code == 0
    assert out.getvalue().startswith("Usage of loki:\n")


def test_flag_usage_is_go_printdefaults_format():
    fs = fw.FlagSet("prog", output=io.StringIO())
    fs.string("config.file", "/etc/x.yaml", "Configuration file to load.")
    fs.bool("v", False, "verbose")
    fs.int("port", 0, "a `number` to listen on")
    fs.duration("timeout", 90.0, "how long")
    fs.string("hidden", "", "secret", hidden=True)
    assert fs.defaults_text() == (
        "  -config.file string\n"
        "    \tConfiguration file to load. (default \"/etc/x.yaml\")\n"
        "  -port number\n"
        "    \ta number to listen on\n"
        "  -timeout duration\n"
        "    \thow long (default 1m30s)\n"
        "  -v\tverbose\n"
    )


def test_flag_redefinition_is_an_error():
    fs = fw.FlagSet("p")
    fs.string("a")
    with pytest.raises(ValueError):
        fs.string("a")


def test_flag_unknown_flag_in_a_real_process_exits_2():
    code = textwrap.dedent("""
        import sys
        from o11y_standins import framework as fw
        fs = fw.FlagSet(sys.argv[0])
        fs.string("config.file", "", "yaml file to load")
        try:
            fs.parse_or_exit(sys.argv[1:])
        except fw.StandinExit as exc:
            sys.exit(exc.code)
        print("parsed", fs["config.file"])
    """)
    env = dict(os.environ, PYTHONPATH=str(STANDINS))
    ok = subprocess.run([sys.executable, "-c", code, "-config.file=/x"], env=env, capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and "parsed /x" in ok.stdout
    bad = subprocess.run([sys.executable, "-c", code, "-x"], env=env, capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert bad.stderr.startswith("flag provided but not defined: -x\nUsage of -c:\n")
    assert "-config.file string" in bad.stderr


# ---------------------------------------------------------------------------
# durations
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [
    ("0", 0.0), ("1s", 1.0), ("1m30s", 90.0), ("1h", 3600.0), ("300ms", 0.3), ("1.5h", 5400.0),
    ("2h45m10.5s", 9910.5), ("-1m", -60.0), ("10us", 1e-5), ("1\u00b5s", 1e-6), ("100ns", 1e-7),
])
def test_parse_go_duration(text, seconds):
    assert fw.parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "1d", "abc", "1m1", "s", "--1s"])
def test_parse_go_duration_rejects(text):
    with pytest.raises(ValueError) as exc:
        fw.parse_go_duration(text)
    assert str(exc.value).startswith("time: ")


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (1, "1s"), (90, "1m30s"), (3600, "1h0m0s"), (0.5, "500ms"), (1.5, "1.5s"), (600, "10m0s"),
    (1e-6, "1\u00b5s"), (-30, "-30s"),
])
def test_format_go_duration(seconds, text):
    assert fw.format_go_duration(seconds) == text


def test_parse_model_duration():
    assert fw.parse_model_duration("1d") == 86400
    assert fw.parse_model_duration("1w2d") == 9 * 86400
    assert fw.parse_model_duration("1h30m") == 5400
    assert fw.parse_model_duration("0") == 0
    with pytest.raises(ValueError):
        fw.parse_model_duration("1.5h")


# ---------------------------------------------------------------------------
# urfave/cli style
# ---------------------------------------------------------------------------

def make_cli(calls, out):
    def action(ctx):
        calls.append((ctx.value("address"), ctx.is_set("address"), ctx.value("quiet"), ctx.value("S"), list(ctx.args)))
        return 0
    server = fw.CliCommand("server", "start server", action, flags=[
        fw.CliFlag("address", "string", ":9000", "bind address", env_var="APP_ADDRESS"),
        fw.CliFlag("ftp", "string_slice", usage="ftp settings"),
    ])
    return fw.CliApp("app", usage="an app", version="1.2.3", commands=[server], stdout=out,
                     flags=[fw.CliFlag("quiet", "bool", usage="quiet"),
                            fw.CliFlag("certs-dir, S", "string", "/certs", "certs")])


def test_cli_flags_after_positionals_and_aliases(monkeypatch):
    monkeypatch.delenv("APP_ADDRESS", raising=False)
    calls, out = [], io.StringIO()
    app = make_cli(calls, out)
    assert app.run(["--quiet", "server", "/data1", "--address", ":9100", "/data2", "-S", "/c"]) == 0
    assert calls == [(":9100", True, True, "/c", ["/data1", "/data2"])]


def test_cli_systemd_style_word_split_opts(monkeypatch):
    monkeypatch.delenv("APP_ADDRESS", raising=False)
    calls, out = [], io.StringIO()
    app = make_cli(calls, out)
    opts = "--address :9000 --console-address :9001".split()[:2]
    assert app.run(["server"] + opts + ["/data"]) == 0
    assert calls[0][0] == ":9000" and calls[0][4] == ["/data"]


def test_cli_env_var_default(monkeypatch):
    monkeypatch.setenv("APP_ADDRESS", "127.0.0.1:9999")
    calls, out = [], io.StringIO()
    app = make_cli(calls, out)
    assert app.run(["server", "/d"]) == 0
    assert calls[0][:2] == ("127.0.0.1:9999", True)
    calls.clear()
    assert app.run(["server", "--address=:1", "/d"]) == 0
    assert calls[0][0] == ":1"


def test_cli_unknown_flag_exits_1_with_incorrect_usage():
    calls, out = [], io.StringIO()
    app = make_cli(calls, out)
    assert app.run(["server", "--bogus", "/d"]) == 1
    assert out.getvalue().startswith("Incorrect Usage: flag provided but not defined: -bogus\n")
    assert calls == []
    out2 = io.StringIO()
    assert make_cli(calls, out2).run(["--bogus"]) == 1
    assert "flag provided but not defined: -bogus" in out2.getvalue()


def test_cli_version_help_and_unknown_command():
    calls, out = [], io.StringIO()
    app = make_cli(calls, out)
    assert app.run(["--version"]) == 0 and out.getvalue() == "app version 1.2.3\n"
    out.truncate(0), out.seek(0)
    assert app.run(["-v"]) == 0 and "1.2.3" in out.getvalue()
    out.truncate(0), out.seek(0)
    assert app.run(["--help"]) == 0 and "COMMANDS:" in out.getvalue()
    out.truncate(0), out.seek(0)
    assert app.run(["server", "--help"]) == 0 and "--address value" in out.getvalue()
    assert app.run(["frobnicate"]) != 0


# ---------------------------------------------------------------------------
# strict YAML
# ---------------------------------------------------------------------------

S3 = fw.Struct("aws.S3Config", {
    "endpoint": fw.Str(),
    "bucketnames": fw.Str(),
    "insecure": fw.Bool(default=False),
    "s3forcepathstyle": fw.Bool(default=False),
    "access_key_id": fw.Str(),
    "secret_access_key": fw.Str(),
    "region": fw.Str(),
})

SCHEMA = fw.Struct("loki.Config", {
    "target": fw.Str(default="all"),
    "auth_enabled": fw.Bool(default=True),
    "server": fw.Struct("server.Config", {
        "http_listen_address": fw.Str(default=""),
        "http_listen_port": fw.Int(default=3100, min=0, max=65535),
        "grpc_listen_port": fw.Int(default=9095),
        "log_level": fw.Enum("debug", "info", "warn", "error", default="info"),
        "graceful_shutdown_timeout": fw.Duration(default=30.0),
    }),
    "storage_config": fw.Struct("storage.Config", {"aws": S3}),
    "limits_config": fw.Struct("validation.Limits", {
        "retention_period": fw.ModelDuration(default=0.0),
        "ingestion_rate_mb": fw.Float(default=4.0),
    }),
    "memberlist": fw.Struct("memberlist.KVConfig", {
        "join_members": fw.List(fw.Str(), default=[]),
    }),
    "ruler": fw.Struct("ruler.Config", {
        "external_labels": fw.MapOf(fw.Str()),
        "alertmanager_client": fw.List(fw.Struct("ruler.AMClient", {"url": fw.Str(required=True)})),
    }),
})


def load(text, **kw):
    return fw.load_config_text(textwrap.dedent(text), SCHEMA, source="/etc/loki/config.yaml", **kw)


def test_strict_yaml_valid_with_defaults():
    cfg = load("""
        auth_enabled: false
        server:
          http_listen_port: 3200
          graceful_shutdown_timeout: 1m
        storage_config:
          aws:
            endpoint: minio:9000
            insecure: true
        limits_config:
          retention_period: 7d
        memberlist:
          join_members: [a:7946, b:7946]
        ruler:
          external_labels: {cluster: c1, port: 80}
    """)
    assert cfg["auth_enabled"] is False
    assert cfg["target"] == "all"
    assert cfg["server"]["http_listen_port"] == 3200
    assert cfg["server"]["grpc_listen_port"] == 9095
    assert cfg["server"]["graceful_shutdown_timeout"] == 60.0
    assert cfg["server"]["log_level"] == "info"
    assert cfg["storage_config"]["aws"] == {"endpoint": "minio:9000", "insecure": True, "s3forcepathstyle": False}
    assert cfg["limits_config"]["retention_period"] == 7 * 86400
    assert cfg["memberlist"]["join_members"] == ["a:7946", "b:7946"]
    assert cfg["ruler"]["external_labels"] == {"cluster": "c1", "port": "80"}
    assert fw.get_path(cfg, "server.http_listen_port") == 3200
    assert fw.get_path(cfg, "nope.deeper", "d") == "d"


def test_strict_yaml_empty_document_gives_defaults():
    cfg = load("")
    assert cfg["server"]["http_listen_port"] == 3100
    assert cfg["limits_config"]["ingestion_rate_mb"] == 4.0


def test_strict_yaml_unknown_key_names_path_and_line():
    with pytest.raises(fw.ConfigError) as exc:
        load("""
            server:
              http_listen_port: 3100
              http_listen_portt: 3101
        """)
    msg = str(exc.value)
    assert msg.startswith("/etc/loki/config.yaml: yaml: unmarshal errors:\n")
    assert "line 4: field http_listen_portt not found in type server.Config (key path: server.http_listen_portt)" in msg
    assert exc.value.errors == [(4, "server.http_listen_portt",
                                 "field http_listen_portt not found in type server.Config")]


def test_strict_yaml_misplaced_key():
    with pytest.raises(fw.ConfigError) as exc:
        load("""
            http_listen_port: 3100
            storage_config:
              endpoint: minio:9000
        """)
    paths = [e[1] for e in exc.value.errors]
    assert paths == ["http_listen_port", "storage_config.endpoint"]
    assert "field endpoint not found in type storage.Config" in str(exc.value)


def test_strict_yaml_type_errors():
    with pytest.raises(fw.ConfigError) as exc:
        load("""
            auth_enabled: "yes please"
            server:
              http_listen_port: abc
              graceful_shutdown_timeout: 5 minutes
              log_level: verbose
            memberlist:
              join_members: a:7946
            limits_config:
              retention_period: 1.5h
        """)
    errors = {err[1]: err[2] for err in exc.value.errors}
    assert errors["auth_enabled"] == "cannot unmarshal !!str `yes please` into bool"
    assert errors["server.http_listen_port"] == "cannot unmarshal !!str `abc` into int"
    assert errors["server.graceful_shutdown_timeout"].startswith("time: ")
    assert errors["server.log_level"].startswith('invalid value "verbose"')
    assert errors["memberlist.join_members"] == "cannot unmarshal !!str `a:7946` into []string"
    assert "not a valid duration" in errors["limits_config.retention_period"]


def test_strict_yaml_nested_list_paths_required_and_duplicates():
    with pytest.raises(fw.ConfigError) as exc:
        load("""
            ruler:
              alertmanager_client:
                - url: http://a
                - uri: http://b
            server:
              http_listen_port: 1
              http_listen_port: 2
        """)
    paths = [e[1] for e in exc.value.errors]
    assert "ruler.alertmanager_client[1].uri" in paths
    assert "ruler.alertmanager_client[1].url" in paths  # required, missing
    assert "server.http_listen_port" in paths
    assert any("already defined at line" in e[2] for e in exc.value.errors)


def test_strict_yaml_range_and_syntax_errors():
    with pytest.raises(fw.ConfigError) as exc:
        load("server: {http_listen_port: 70000}")
    assert "out of range" in str(exc.value)
    with pytest.raises(fw.ConfigError) as exc:
        load("server: [unclosed")
    assert "yaml:" in str(exc.value)


def test_strict_yaml_expand_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LOKI_PORT", "3300")
    monkeypatch.delenv("UNSET_VAR", raising=False)
    path = tmp_path / "c.yaml"
    path.write_text("server:\n  http_listen_port: ${LOKI_PORT}\n  http_listen_address: ${UNSET_VAR:-127.0.0.1}\n"
                    "target: $$literal\n")
    cfg = fw.load_config(str(path), SCHEMA, expand=True)
    assert cfg["server"]["http_listen_port"] == 3300
    assert cfg["server"]["http_listen_address"] == "127.0.0.1"
    assert cfg["target"] == "$literal"
    with pytest.raises(fw.ConfigError):
        fw.load_config(str(path), SCHEMA)  # without expansion: "${LOKI_PORT}" is not an int


def test_expand_env_forms():
    env = {"A": "a", "E": ""}
    assert fw.expand_env("${A} $A ${B:-b} ${E:-e} ${E-e} ${A:+alt} ${B:+alt} $$", env) == "a a b e  alt  $"


def test_struct_extend_shares_sub_schemas():
    s3 = S3.extend("tempo.S3", bucket=fw.Str(required=True))
    schema = fw.Struct("tempo.Config", {"storage": fw.Struct("storage", {"trace": fw.Struct("t", {"s3": s3})})})
    with pytest.raises(fw.ConfigError) as exc:
        fw.load_config_text("storage: {trace: {s3: {endpoint: x, bucketnames: y, buckets: z}}}", schema)
    paths = [e[1] for e in exc.value.errors]
    assert paths == ["storage.trace.s3.buckets", "storage.trace.s3.bucket"]
    assert "missing required field bucket in type tempo.S3" in str(exc.value)


# ---------------------------------------------------------------------------
# addresses, HTTP, metrics, signals
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("addr, expected", [
    (":9000", ("", 9000)),
    ("0.0.0.0:9000", ("0.0.0.0", 9000)),
    ("[::]:9000", ("::", 9000)),
    ("[::1]:80", ("::1", 80)),
    ("localhost:3100", ("localhost", 3100)),
    ("node1.example.com:0", ("node1.example.com", 0)),
    (":http", ("", 80)),
])
def test_parse_listen_address(addr, expected):
    assert fw.parse_listen_address(addr) == expected


@pytest.mark.parametrize("addr", ["9000", "::1:80", "[::1", "host:99999", "host:abc"])
def test_parse_listen_address_rejects(addr):
    with pytest.raises(ValueError):
        fw.parse_listen_address(addr)


def test_is_local_host():
    assert fw.is_local_host("127.0.0.1")
    assert fw.is_local_host(socket.gethostname())
    assert fw.is_local_host("127.0.0.2", "127.0.0.2")
    assert not fw.is_local_host("127.0.0.3", "127.0.0.2")
    assert not fw.is_local_host("192.0.2.77")  # TEST-NET-1, never configured here


def test_http_service_router_and_metrics():
    metrics = fw.Metrics()
    metrics.build_info("demo", {"version": "1.2.3", "revision": "abc", "goversion": "go1.24.6"})
    metrics.gauge("demo_up", "Up.", 1)
    metrics.counter("demo_requests_total", "Requests.", 3, {"code": "200"})
    metrics.inc("demo_requests_total", amount=2, labels={"code": "200"})
    metrics.gauge("demo_ratio", "Ratio.", 0.25, {"path": 'a"b'})

    router = fw.Router(fallback=lambda env, sr: (sr("418 I'm a teapot", [("Content-Type", "text/plain")]), [b"tea"])[1])
    router.add("/ready", lambda req: (200, "ready\n"))
    router.add("/metrics", lambda req: metrics.wsgi_response())
    router.add("/api/", lambda req: (201, req.path), methods=("POST",), prefix=True)

    svc = fw.HTTPService("test", "127.0.0.1:0", router).start()
    try:
        assert svc.port > 0 and svc.url == "http://127.0.0.1:%d" % svc.port
        status, headers, body = http_get(svc.url + "/ready")
        assert (status, body) == (200, b"ready\n")
        status, headers, body = http_get(svc.url + "/metrics")
        assert status == 200 and headers["content-type"] == fw.PROMETHEUS_CONTENT_TYPE
        text = body.decode()
        assert "# TYPE demo_build_info gauge" in text
        assert 'demo_build_info{branch="HEAD",goarch="' in text
        assert 'goversion="go1.24.6"' in text and 'revision="abc"' in text and 'version="1.2.3"} 1' in text
        assert 'demo_requests_total{code="200"} 5' in text
        assert 'demo_ratio{path="a\\"b"} 0.25' in text
        assert http_get(svc.url + "/api/x", method="POST")[0] == 201
        assert http_get(svc.url + "/api/x")[0] == 405
        assert http_get(svc.url + "/other")[:3:2] == (418, b"tea")
        # a second bind on the same port fails with a Go-like message
        with pytest.raises(OSError) as exc:
            fw.HTTPService("dup", "127.0.0.1:%d" % svc.port, router).start()
        assert "bind: address already in use" in str(exc.value)
    finally:
        svc.stop()
    assert http_get("http://127.0.0.1:%d/ready" % svc.port, timeout=1)[0] == 0


def test_http_service_wildcard_dual_stack():
    svc = fw.HTTPService("wild", ":0", fw.Router()).start()
    try:
        assert http_get("http://127.0.0.1:%d/x" % svc.port)[0] == 404
    finally:
        svc.stop()


SERVE_SCRIPT = textwrap.dedent("""
    import sys
    from o11y_standins import framework as fw
    log = fw.Logger("demo")
    r = fw.Router()
    r.add("/ready", lambda req: (200, "ready"))
    svc = fw.HTTPService("http", sys.argv[1], r).start()
    log.info("server listening", addr=sys.argv[1])
    code = fw.run_until_signal([svc], logger=log, on_shutdown=lambda: log.info("bye now"))
    sys.exit(code)
""")


def test_sigterm_graceful_exit_0():
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(STANDINS))
    proc = subprocess.Popen([sys.executable, "-c", SERVE_SCRIPT, "127.0.0.1:%d" % port], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: http_get("http://127.0.0.1:%d/ready" % port)[0] == 200, timeout=20)
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=15)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert 'level=info' in err and 'msg="server listening"' in err
    assert 'msg="received signal, shutting down" signal=terminated' in err
    assert 'msg="bye now"' in err


def test_logger_formats():
    buf = io.StringIO()
    fw.Logger("x", stream=buf, caller="main.go:1").info("hello world", k="v", n=1, empty="")
    line = buf.getvalue()
    assert line.startswith("level=info ts=") and 'caller=main.go:1 msg="hello world" k=v n=1 empty=""' in line
    buf = io.StringIO()
    fw.Logger("x", fmt="json", stream=buf).warn("m", a=1)
    assert '"level": "warn"' in buf.getvalue() and '"a": 1' in buf.getvalue()
    buf = io.StringIO()
    fw.Logger("x", level="warn", stream=buf).info("dropped")
    assert buf.getvalue() == ""


def test_jwt_roundtrip():
    token = fw.jwt_sign_hs512({"sub": "admin", "iss": "prometheus", "exp": time.time() + 60}, "s3cr3t")
    assert fw.jwt_verify_hs(token, "s3cr3t")["sub"] == "admin"
    assert fw.jwt_verify_hs(token, "other") is None
    expired = fw.jwt_sign_hs512({"sub": "admin", "exp": time.time() - 10}, "s3cr3t")
    assert fw.jwt_verify_hs(expired, "s3cr3t") is None
    assert fw.jwt_verify_hs("garbage", "s3cr3t") is None


def test_sd_notify(tmp_path, monkeypatch):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        assert fw.sd_notify("READY=1")
        assert sock.recv(100) == b"READY=1"
        monkeypatch.delenv("NOTIFY_SOCKET")
        assert fw.sd_notify("READY=1") is False
    finally:
        sock.close()


def test_build_info_set_and_copy():
    before = fw.build_info()
    try:
        fw.set_build_info(component="demo", version="9.9.9")
        assert fw.build_info()["version"] == "9.9.9"
        with pytest.raises(TypeError):
            fw.set_build_info(colour="red")
    finally:
        fw.set_build_info(**before)


# ---------------------------------------------------------------------------
# S3 bucket check
# ---------------------------------------------------------------------------

def test_check_bucket_against_s3server():
    from o11y_standins.s3server import S3Server
    import boto3

    server = S3Server(access_key="checker", secret_key="checker-secret-1")
    server.start()
    try:
        boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="checker",
                     aws_secret_access_key="checker-secret-1").create_bucket(Bucket="loki-chunks")
        endpoint = server.url.replace("http://", "")
        assert fw.check_bucket(endpoint, "loki-chunks", "checker", "checker-secret-1", insecure=True) == (True, None)
        ok, reason = fw.check_bucket(server.url, "missing-bucket", "checker", "checker-secret-1")
        assert not ok and "does not exist" in reason
        ok, reason = fw.check_bucket(server.url, "loki-chunks", "checker", "wrong-secret-00")
        assert not ok and "403" in reason
        buf = io.StringIO()
        with pytest.raises(SystemExit) as exc:
            fw.require_bucket(fw.Logger("loki", stream=buf), server.url, "missing-bucket", what="store",
                              access_key="checker", secret_key="checker-secret-1")
        assert exc.value.code == 1 and "missing-bucket" in buf.getvalue()
        fw.require_bucket(fw.Logger("loki", stream=buf), server.url, "loki-chunks",
                          access_key="checker", secret_key="checker-secret-1")
    finally:
        server.stop()
    port = free_port()
    ok, reason = fw.check_bucket("127.0.0.1:%d" % port, "x", "a", "b", insecure=True, timeout=1)
    assert not ok and reason
