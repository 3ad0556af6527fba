# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One framework for all o11y.stack test stand-ins.

Stand-ins are small programs that behave like the real components (MinIO,
Mimir, Loki, Tempo, Pyroscope, Grafana, Alloy, Beyla, OnCall) on every
surface the collection relies on.  They are test fixtures: nothing under
roles/ or plugins/ knows about them.  This module holds what they share:

* build information baked in by the artifact-mirror builder
  (:func:`set_build_info`, :func:`build_info`);
* Go ``flag`` package emulation (:class:`FlagSet`) and a urfave/cli (v1) style
  application/command parser (:class:`CliApp`, :class:`CliCommand`);
* strict YAML configuration loading against a schema (:class:`Struct`,
  :class:`Str`, :class:`Int`, ..., :func:`load_config`);
* Go duration parsing/formatting, ``-config.expand-env`` style expansion;
* threaded HTTP serving (:class:`HTTPService`, :class:`Router`), Go-style
  listen address parsing, graceful SIGTERM handling (:func:`run_until_signal`);
* Prometheus text exposition (:class:`Metrics`);
* structured log lines to stderr (:class:`Logger`);
* an S3 bucket existence check (:func:`check_bucket`, :func:`require_bucket`).

Everything here only needs the Python standard library, PyYAML and Werkzeug
(all in the stand-ins' venv); boto3 is imported lazily by the S3 helpers.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import re
import signal
import socket
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Tuple

__all__ = [
    "build_info", "set_build_info", "fatal", "StandinExit",
    "parse_go_duration", "format_go_duration", "parse_model_duration",
    "FlagError", "FlagSet", "CliFlag", "CliCommand", "CliApp", "CliContext",
    "ConfigError", "Schema", "Any_", "Str", "Int", "Float", "Bool", "Duration",
    "ModelDuration", "Enum", "List", "Struct", "MapOf", "load_config",
    "load_config_text", "expand_env", "get_path",
    "parse_listen_address", "HTTPService", "Router", "run_until_signal",
    "ShutdownSignal", "Metrics", "PROMETHEUS_CONTENT_TYPE", "Logger",
    "check_bucket", "require_bucket", "jwt_verify_hs", "local_addresses",
    "is_local_host", "sd_notify", "resolve_host", "jwt_sign_hs512",
    "go_platform",
]

# ---------------------------------------------------------------------------
# Build information
# ---------------------------------------------------------------------------

_BUILD_INFO: Dict[str, str] = {
    "component": "",
    "version": "0.0.0-standin",
    "revision": "0000000000000000000000000000000000000000",
    "branch": "HEAD",
    "goversion": "go1.24.6",
    "build_date": "1970-01-01T00:00:00Z",
    "build_user": "o11y-standins",
}


def set_build_info(**fields: str) -> None:
    """Record build facts (called by the zipapp entry point the mirror builder writes)."""
    unknown = set(fields) - set(_BUILD_INFO)
    if unknown:
        raise TypeError("unknown build info fields: %s" % ", ".join(sorted(unknown)))
    _BUILD_INFO.update({k: str(v) for k, v in fields.items()})


def build_info() -> Dict[str, str]:
    """A copy of the build facts (component, version, revision, goversion, ...)."""
    return dict(_BUILD_INFO)


def go_platform() -> Tuple[str, str]:
    """(goos, goarch) of this machine, spelled like Go does."""
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i686": "386",
            "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}.get(machine, machine)
    return sys.platform.rstrip("0123456789") or "linux", arch


class StandinExit(SystemExit):
    """Raised by :func:`fatal`; carries the exit code."""


def fatal(message: str, code: int = 1, logger: "Optional[Logger]" = None) -> "NoReturn":  # noqa: F821
    """Log *message* as a fatal error to stderr and exit with *code*."""
    if logger is not None:
        logger.error(message)
    else:
        sys.stderr.write(message.rstrip("\n") + "\n")
        sys.stderr.flush()
    raise StandinExit(code)


# ---------------------------------------------------------------------------
# Durations
# ---------------------------------------------------------------------------

_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3,
             "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_DUR_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


def parse_go_duration(text: str) -> float:
    """Parse like Go's ``time.ParseDuration``; returns seconds (float).

    Raises ValueError with Go's message (``time: invalid duration "x"``).
    """
    orig = text
    if not isinstance(text, str):
        raise ValueError('time: invalid duration "%s"' % (orig,))
    sign = 1.0
    if text[:1] in ("+", "-"):
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    if not text:
        raise ValueError('time: invalid duration "%s"' % orig)
    pos = 0
    total = 0.0
    while pos < len(text):
        m = _GO_DUR_PART.match(text, pos)
        if not m:
            if re.match(r"(\d+(?:\.\d*)?|\.\d+)", text[pos:]):
                rest = re.sub(r"^(\d+(?:\.\d*)?|\.\d+)", "", text[pos:])
                if not rest:
                    raise ValueError('time: missing unit in duration "%s"' % orig)
                unit = re.match(r"[^\d.]*", rest).group(0)
                raise ValueError('time: unknown unit "%s" in duration "%s"' % (unit, orig))
            raise ValueError('time: invalid duration "%s"' % orig)
        total += float(m.group(1)) * _GO_UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def format_go_duration(seconds: float) -> str:
    """Format like Go's ``time.Duration.String`` (``1m30s``, ``500ms``, ``0s``)."""
    ns = int(round(seconds * 1e9))
    if ns == 0:
        return "0s"
    neg = ns < 0
    ns = abs(ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("\u00b5s", 1_000), ("ns", 1)):
            if ns >= size:
                val = ns / size
                txt = ("%.9f" % val).rstrip("0").rstrip(".")
                return ("-" if neg else "") + txt + unit
    h, rem = divmod(ns, 3_600_000_000_000)
    m, rem = divmod(rem, 60_000_000_000)
    s = rem / 1e9
    stxt = ("%.9f" % s).rstrip("0").rstrip(".") + "s"
    out = ""
    if h:
        out += "%dh" % h
    if h or m:
        out += "%dm" % m
    out += stxt
    return ("-" if neg else "") + out


_MODEL_DUR = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")


def parse_model_duration(text: str) -> float:
    """Parse a Prometheus ``model.Duration`` (``1y2w3d4h5m6s7ms``, ``0``); seconds."""
    if text == "0":
        return 0.0
    m = _MODEL_DUR.match(text or "")
    if not text or not m or not any(m.groups()):
        raise ValueError('not a valid duration string: "%s"' % text)
    mult = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
    return float(sum(int(g) * k for g, k in zip(m.groups(), mult) if g))


# ---------------------------------------------------------------------------
# Go "flag" package emulation
# ---------------------------------------------------------------------------

class FlagError(Exception):
    """A command-line parsing error (message as Go prints it)."""


class _Help(Exception):
    """-h / -help given and not defined as a flag."""


def _go_parse_bool(text: str) -> bool:
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError("parse error")


def _go_parse_int(text: str, unsigned: bool = False) -> int:
    s = text.replace("_", "") if re.match(r"^[+-]?0[xXoObB]", text) else text
    try:
        if re.match(r"^[+-]?0[0-7]+$", s):
            val = int(s, 8)
        else:
            val = int(s, 0)
    except ValueError:
        raise ValueError("parse error") from None
    if unsigned and val < 0:
        raise ValueError("parse error")
    if not (-(1 << 63) <= val < (1 << 64 if unsigned else 1 << 63)):
        raise ValueError("value out of range")
    return val


def _go_parse_float(text: str) -> float:
    if text.strip() != text or not text:
        raise ValueError("parse error")
    try:
        return float(text.replace("_", ""))
    except ValueError:
        raise ValueError("parse error") from None


def _go_duration_flag(text: str) -> float:
    try:
        return parse_go_duration(text)
    except ValueError:
        raise ValueError("parse error") from None


def _go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


class _FlagDef:
    __slots__ = ("name", "kind", "default", "usage", "parse", "type_name", "is_bool",
                 "repeated", "hidden", "format_default")

    def __init__(self, name, kind, default, usage, parse, type_name, is_bool=False,
                 repeated=False, hidden=False, format_default=None):
        self.name = name
        self.kind = kind
        self.default = default
        self.usage = usage
        self.parse = parse
        self.type_name = type_name
        self.is_bool = is_bool
        self.repeated = repeated
        self.hidden = hidden
        self.format_default = format_default

    def default_text(self) -> Optional[str]:
        """Go prints ``(default X)`` only for non-zero defaults."""
        d = self.default
        if self.format_default is not None:
            return self.format_default(d)
        if d in (None, "", 0, 0.0, False) or d == []:
            return None
        if self.kind == "string":
            return _go_quote(d)
        if self.kind == "duration":
            return format_go_duration(d)
        if self.kind == "bool":
            return "true"
        if self.kind == "float":
            return ("%g" % d)
        if isinstance(d, list):
            return _go_quote(",".join(d)) if d else None
        return str(d)


class FlagSet:
    """Go ``flag.FlagSet`` semantics.

    * ``-name``, ``--name``, ``-name=value``, ``--name=value``, ``-name value``
      (not for bools: ``-b`` sets true, ``-b=false`` sets false);
    * parsing stops at the first non-flag argument, ``-`` or after ``--``;
    * an undefined flag: ``flag provided but not defined: -x`` and the usage to
      stderr, exit 2 (``parse_or_exit``); ``-h``/``-help`` when not defined:
      usage, exit 0;
    * ``flag needs an argument: -x``, ``invalid value "v" for flag -x: parse error``,
      ``invalid boolean value "v" for -x: parse error``, ``bad flag syntax: ---x``.

    Values are read with ``fs.get(name)`` / ``fs[name]``; ``fs.is_set(name)``
    tells whether it was given on the command line; ``fs.args`` holds the rest.
    """

    def __init__(self, name: str, output=None, usage: Optional[Callable[["FlagSet"], None]] = None):
        self.name = name
        self._flags: Dict[str, _FlagDef] = {}
        self._values: Dict[str, Any] = {}
        self._set: list[str] = []
        self.args: list[str] = []
        self._output = output
        self.usage_func = usage
        self.parsed = False

    # -- definitions --------------------------------------------------------
    def _define(self, fd: _FlagDef) -> None:
        if fd.name in self._flags:
            raise ValueError("%s flag redefined: %s" % (self.name, fd.name))
        if not fd.name or fd.name.startswith("-") or "=" in fd.name:
            raise ValueError("flag %r begins with -" % fd.name)
        self._flags[fd.name] = fd
        self._values[fd.name] = list(fd.default) if isinstance(fd.default, list) else fd.default

    def string(self, name: str, default: str = "", usage: str = "", **kw) -> None:
        self._define(_FlagDef(name, "string", default, usage, lambda s: s, "string", **kw))

    def int(self, name: str, default: int = 0, usage: str = "", **kw) -> None:
        self._define(_FlagDef(name, "int", default, usage, _go_parse_int, "int", **kw))

    def uint(self, name: str, default: int = 0, usage: str = "", **kw) -> None:
        self._define(_FlagDef(name, "uint", default, usage,
                              lambda s: _go_parse_int(s, unsigned=True), "uint", **kw))

    def float(self, name: str, default: float = 0.0, usage: str = "", **kw) -> None:
        self._define(_FlagDef(name, "float", default, usage, _go_parse_float, "float", **kw))

    def bool(self, name: str, default: bool = False, usage: str = "", **kw) -> None:
        self._define(_FlagDef(name, "bool", default, usage, _go_parse_bool, "", is_bool=True, **kw))

    def duration(self, name: str, default: float = 0.0, usage: str = "", **kw) -> None:
        """Seconds as float; parsed like ``time.ParseDuration``."""
        self._define(_FlagDef(name, "duration", default, usage, _go_duration_flag, "duration", **kw))

    def string_list(self, name: str, default: Optional[list[str]] = None, usage: str = "",
                    csv: bool = False, **kw) -> None:
        """Repeatable string flag (dskit ``flagext.StringSlice``); ``csv=True``
        splits each occurrence on commas (``flagext.StringSliceCSV``)."""
        def parse(text: str) -> list:
            if csv:
                return [p for p in text.split(",") if p] if text else []
            return [text]

        self._define(_FlagDef(name, "list", list(default or []), usage, parse, "value",
                              repeated=True, **kw))

    def value(self, name: str, parse: Callable[[str], Any], default: Any = None, usage: str = "",
              type_name: str = "value", format_default=None, **kw) -> None:
        """A flag with a custom parser (Go ``flag.Var``/``flag.Func``); *parse*
        raises ValueError with the message Go would print."""
        self._define(_FlagDef(name, "value", default, usage, parse, type_name,
                              format_default=format_default, **kw))

    # -- lookups ------------------------------------------------------------
    def __contains__(self, name: str) -> bool:
        return name in self._flags

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self._values.get(name, default)

    def is_set(self, name: str) -> bool:
        return name in self._set

    def set_flags(self) -> list[str]:
        """Names given on the command line, in order (Go ``Visit``)."""
        return list(self._set)

    def values(self) -> Dict[str, Any]:
        return dict(self._values)

    def set(self, name: str, text: str) -> None:
        """Like Go ``fs.Set``: parse and assign, mark as set."""
        fd = self._flags[name]
        val = fd.parse(text)
        if fd.repeated:
            if name not in self._set:
                self._values[name] = []
            self._values[name] = list(self._values[name]) + list(val)
        else:
            self._values[name] = val
        if name not in self._set:
            self._set.append(name)

    # -- usage --------------------------------------------------------------
    @property
    def output(self):
        return self._output if self._output is not None else sys.stderr

    def defaults_text(self) -> str:
        """Go ``PrintDefaults`` output."""
        out = []
        for name in sorted(self._flags):
            fd = self._flags[name]
            if fd.hidden:
                continue
            usage = fd.usage
            type_name = fd.type_name
            m = re.search(r"`([^`]*)`", usage)
            if m:
                type_name = m.group(1)
                usage = usage[:m.start()] + m.group(1) + usage[m.end():]
            line = "  -" + name
            if type_name:
                line += " " + type_name
            if len(line) <= 4:
                line += "\t"
            else:
                line += "\n    \t"
            line += usage.replace("\n", "\n    \t")
            dt = fd.default_text()
            if dt is not None:
                line += " (default %s)" % dt
            out.append(line + "\n")
        return "".join(out)

    def usage(self) -> None:
        if self.usage_func is not None:
            self.usage_func(self)
            return
        name = self.name
        self.output.write(("Usage of %s:\n" % name) if name else "Usage:\n")
        self.output.write(self.defaults_text())
        self.output.flush()

    # -- parsing ------------------------------------------------------------
    def parse(self, argv: Sequence[str]) -> list[str]:
        """Go ``ContinueOnError`` parsing: prints the error and usage to the
        output and raises FlagError (or _Help for -h/-help)."""
        self.parsed = True
        args = list(argv)
        while args:
            s = args[0]
            if len(s) < 2 or s[0] != "-":
                break
            minuses = 1
            if s[1] == "-":
                minuses = 2
                if len(s) == 2:
                    args.pop(0)
                    break
            name = s[minuses:]
            if not name or name[0] in "-=":
                self._fail("bad flag syntax: %s" % s)
            args.pop(0)
            has_value = False
            value = ""
            if "=" in name[1:]:
                i = name.index("=", 1)
                name, value, has_value = name[:i], name[i + 1:], True
            fd = self._flags.get(name)
            if fd is None:
                if name in ("help", "h"):
                    self.usage()
                    raise _Help()
                self._fail("flag provided but not defined: -%s" % name)
            if fd.is_bool:
                if has_value:
                    try:
                        self.set(name, value)
                    except ValueError as exc:
                        self._fail("invalid boolean value %s for -%s: %s" % (_go_quote(value), name, exc))
                else:
                    self.set(name, "true")
            else:
                if not has_value and args:
                    value, has_value = args.pop(0), True
                if not has_value:
                    self._fail("flag needs an argument: -%s" % name)
                try:
                    self.set(name, value)
                except ValueError as exc:
                    self._fail("invalid value %s for flag -%s: %s" % (_go_quote(value), name, exc))
        self.args = args
        return args

    def _fail(self, message: str) -> None:
        self.output.write(message + "\n")
        self.usage()
        raise FlagError(message)

    def parse_or_exit(self, argv: Sequence[str]) -> list[str]:
        """Go ``ExitOnError``: exit 2 on errors, 0 on -h/-help."""
        try:
            return self.parse(argv)
        except _Help:
            raise StandinExit(0)
        except FlagError:
            raise StandinExit(2)


# ---------------------------------------------------------------------------
# urfave/cli (v1, as forked by MinIO) style applications
# ---------------------------------------------------------------------------

class CliFlag:
    """A urfave/cli v1 flag: ``CliFlag("certs-dir, S", "string", default, usage, env_var=...)``.

    kinds: string, bool, int, duration, string_slice.  ``env_var`` (comma separated
    alternatives) provides the default when set, like urfave/cli's ``EnvVar``.
    """

    def __init__(self, names: str, kind: str = "string", default: Any = None, usage: str = "",
                 env_var: str = "", hidden: bool = False):
        self.names = [n.strip() for n in names.split(",") if n.strip()]
        self.name = self.names[0]
        self.kind = kind
        if default is None:
            default = {"string": "", "bool": False, "int": 0, "duration": 0.0,
                       "string_slice": []}[kind]
        self.default = default
        self.usage = usage
        self.env_var = env_var
        self.hidden = hidden

    def help_line(self) -> str:
        parts = []
        for n in self.names:
            dash = "-" if len(n) == 1 else "--"
            parts.append(dash + n + ("" if self.kind == "bool" else " value"))
        text = ", ".join(parts) + "\t" + self.usage
        if self.kind != "bool" and self.default not in ("", None, [], 0, 0.0):
            dv = format_go_duration(self.default) if self.kind == "duration" else self.default
            text += ' (default: "%s")' % dv if self.kind == "string" else " (default: %s)" % dv
        if self.env_var:
            text += " [$%s]" % ", $".join(e.strip() for e in self.env_var.split(","))
        return text

    def env_default(self) -> Tuple[Any, bool]:
        for ev in self.env_var.split(","):
            ev = ev.strip()
            if ev and os.environ.get(ev, "") != "":
                raw = os.environ[ev]
                try:
                    if self.kind == "bool":
                        return _go_parse_bool(raw), True
                    if self.kind == "int":
                        return _go_parse_int(raw), True
                    if self.kind == "duration":
                        return parse_go_duration(raw), True
                    if self.kind == "string_slice":
                        return [p.strip() for p in raw.split(",")], True
                except ValueError:
                    continue
                return raw, True
        return self.default, False

    def register(self, fs: FlagSet) -> None:
        value = self.env_default()[0]
        for n in self.names:
            if self.kind == "string":
                fs.string(n, value, self.usage)
            elif self.kind == "bool":
                fs.bool(n, value, self.usage)
            elif self.kind == "int":
                fs.int(n, value, self.usage)
            elif self.kind == "duration":
                fs.duration(n, value, self.usage)
            elif self.kind == "string_slice":
                fs.string_list(n, list(value), self.usage)
            else:
                raise ValueError("unknown cli flag kind %r" % self.kind)


class CliContext:
    """What a command action receives: merged global+command flag values,
    positional args, and whether a flag was set (command line or env)."""

    def __init__(self, app: "CliApp", command: "Optional[CliCommand]", global_fs: FlagSet,
                 command_fs: Optional[FlagSet], args: list[str]):
        self.app = app
        self.command = command
        self._g = global_fs
        self._c = command_fs
        self.args = args

    def _flag(self, name: str) -> Optional[CliFlag]:
        for f in (self.command.flags if self.command else []) + self.app.flags:
            if name in f.names:
                return f
        return None

    def is_set(self, name: str) -> bool:
        f = self._flag(name)
        names = f.names if f else [name]
        for fs in (self._c, self._g):
            if fs is not None and any(fs.is_set(n) for n in names):
                return True
        return bool(f and f.env_default()[1])

    def value(self, name: str) -> Any:
        f = self._flag(name)
        names = f.names if f else [name]
        for fs in (self._c, self._g):
            if fs is not None:
                for n in names:
                    if fs.is_set(n):
                        return fs[n]
        for fs in (self._c, self._g):
            if fs is not None and names[0] in fs:
                return fs[names[0]]
        raise KeyError(name)

    string = bool = int = duration = value  # urfave's typed getters


class CliCommand:
    def __init__(self, name: str, usage: str, action: Callable[[CliContext], int],
                 flags: Optional[list[CliFlag]] = None, help_text: Optional[str] = None,
                 args_usage: str = ""):
        self.name = name
        self.usage = usage
        self.action = action
        self.flags = list(flags or [])
        self.help_text = help_text
        self.args_usage = args_usage


class CliApp:
    """A urfave/cli v1 application: ``app [global flags] command [flags] [args]``.

    Like urfave/cli v1, flags of a command may follow its positional args (they
    are reordered before Go-flag parsing), ``--version``/``-v`` prints the
    version, ``--help``/``-h`` the help, parse errors print
    ``Incorrect Usage: <go flag error>`` and the help to stdout and make
    :meth:`run` return 1 (MinIO exits 1).
    """

    def __init__(self, name: str, usage: str = "", description: str = "", version: str = "",
                 flags: Optional[list[CliFlag]] = None, commands: Optional[list[CliCommand]] = None,
                 version_printer: Optional[Callable[["CliApp"], str]] = None,
                 command_not_found: Optional[Callable[["CliApp", str], int]] = None,
                 stdout=None):
        self.name = name
        self.usage = usage
        self.description = description
        self.version = version
        self.flags = list(flags or [])
        self.commands = list(commands or [])
        self.version_printer = version_printer
        self.command_not_found = command_not_found
        self._stdout = stdout

    @property
    def out(self):
        return self._stdout if self._stdout is not None else sys.stdout

    def _fs(self, name: str, flags: list[CliFlag], with_version: bool) -> FlagSet:
        fs = FlagSet(name, output=_NullWriter())
        for f in flags:
            f.register(fs)
        fs.bool("help", False, "show help")
        fs.bool("h", False, "show help")
        if with_version:
            fs.bool("version", False, "print the version")
            fs.bool("v", False, "print the version")
        return fs

    def app_help(self) -> str:
        lines = ["NAME:", "  %s - %s" % (self.name, self.usage), ""]
        if self.description:
            lines += ["DESCRIPTION:", "  " + self.description, ""]
        lines += ["USAGE:", "  %s [FLAGS] COMMAND [ARGS...]" % self.name, "", "COMMANDS:"]
        for c in self.commands:
            lines.append("  %s\t%s" % (c.name, c.usage))
        lines += ["", "FLAGS:"]
        for f in self.flags:
            if not f.hidden:
                lines.append("  " + f.help_line())
        lines += ["  --help, -h\tshow help", "  --version, -v\tprint the version", "",
                  "VERSION:", "  " + self.version, ""]
        return "\n".join(lines)

    def command_help(self, cmd: CliCommand) -> str:
        if cmd.help_text:
            text = cmd.help_text
        else:
            text = "NAME:\n  {helpname} - {usage}\n\nUSAGE:\n  {helpname} [FLAGS] {args}\n"
        flags = "\n".join("  " + f.help_line() for f in cmd.flags + self.flags if not f.hidden)
        text = text.replace("{helpname}", "%s %s" % (self.name, cmd.name)) \
                   .replace("{usage}", cmd.usage).replace("{args}", cmd.args_usage)
        if "{flags}" in text:
            return text.replace("{flags}", flags + "\n  --help, -h\tshow help")
        return text + "\nFLAGS:\n" + flags + "\n  --help, -h\tshow help\n"

    @staticmethod
    def _reorder(fs: FlagSet, args: list[str]) -> list[str]:
        flags: list[str] = []
        rest: list[str] = []
        expect_value = False
        for i, a in enumerate(args):
            if a == "--":
                rest.extend(args[i:])
                break
            if expect_value and not a.startswith("-"):
                flags.append(a)
                expect_value = False
                continue
            expect_value = False
            if a != "-" and a.startswith("-"):
                flags.append(a)
                name = a.lstrip("-")
                if "=" not in name and name in fs and not fs._flags[name].is_bool:
                    expect_value = True
            else:
                rest.append(a)
        return flags + rest

    def run(self, argv: Sequence[str]) -> int:
        """Run with argv (without the program name); returns the exit code."""
        gfs = self._fs(self.name, self.flags, with_version=True)
        try:
            rest = gfs.parse(list(argv))
        except (FlagError, _Help) as exc:
            self.out.write("Incorrect Usage. %s\n\n" % exc)
            self.out.write(self.app_help())
            self.out.flush()
            return 1
        if gfs["help"] or gfs["h"]:
            self.out.write(self.app_help())
            return 0
        if gfs["version"] or gfs["v"]:
            if self.version_printer:
                self.out.write(self.version_printer(self))
            else:
                self.out.write("%s version %s\n" % (self.name, self.version))
            self.out.flush()
            return 0
        if not rest:
            self.out.write(self.app_help())
            return 0
        cmd_name, cmd_args = rest[0], rest[1:]
        cmd = next((c for c in self.commands if c.name == cmd_name), None)
        if cmd is None:
            if cmd_name == "help":
                self.out.write(self.app_help())
                return 0
            if self.command_not_found:
                return self.command_not_found(self, cmd_name)
            self.out.write("No help topic for '%s'\n" % cmd_name)
            return 3
        cfs = self._fs(cmd.name, cmd.flags + self.flags, with_version=False)
        try:
            args = cfs.parse(self._reorder(cfs, cmd_args))
        except (FlagError, _Help) as exc:
            self.out.write("Incorrect Usage: %s\n\n" % exc)
            self.out.write(self.command_help(cmd))
            self.out.flush()
            return 1
        if cfs["help"] or cfs["h"]:
            self.out.write(self.command_help(cmd))
            return 0
        ctx = CliContext(self, cmd, gfs, cfs, args)
        rc = cmd.action(ctx)
        return 0 if rc is None else int(rc)


class _NullWriter:
    def write(self, _s):
        return 0

    def flush(self):
        pass


# ---------------------------------------------------------------------------
# Strict YAML configuration
# ---------------------------------------------------------------------------

class ConfigError(Exception):
    """Strict config errors; ``errors`` is a list of (line, key_path, message)."""

    def __init__(self, errors: list[Tuple[Optional[int], str, str]], source: str = ""):
        self.errors = errors
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        head = (self.source + ": ") if self.source else ""
        lines = []
        for line, path, msg in self.errors:
            where = ("line %d: " % line) if line else ""
            lines.append("  %s%s (key path: %s)" % (where, msg, path or "<root>"))
        return head + "yaml: unmarshal errors:\n" + "\n".join(lines)


_MISSING = object()


class Schema:
    """Base of schema nodes.  ``default`` is applied for absent/null keys
    (when filling defaults); ``required`` makes an absent key an error."""

    type_name = "value"

    def __init__(self, default: Any = _MISSING, required: bool = False, doc: str = ""):
        self.default = default
        self.required = required
        self.doc = doc

    def has_default(self) -> bool:
        return self.default is not _MISSING

    def default_value(self) -> Any:
        d = self.default
        if callable(d):
            return d()
        if isinstance(d, (dict, list)):
            return json.loads(json.dumps(d))
        return d

    # node helpers
    @staticmethod
    def _tag(node) -> str:
        t = getattr(node, "tag", "") or ""
        return "!!" + t.rsplit(":", 1)[-1] if t.startswith("tag:yaml.org,2002:") else t

    def _mismatch(self, node, path, ctx, into: Optional[str] = None):
        import yaml
        if isinstance(node, yaml.ScalarNode):
            ctx.error(node, path, "cannot unmarshal %s `%s` into %s"
                      % (self._tag(node), node.value, into or self.type_name))
        else:
            ctx.error(node, path, "cannot unmarshal %s into %s" % (self._tag(node), into or self.type_name))
        return None

    def convert(self, node, path: str, ctx: "_Ctx") -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class Any_(Schema):
    """Anything (opaque subtree); use sparingly."""

    def convert(self, node, path, ctx):
        return ctx.construct(node)


class Str(Schema):
    type_name = "string"

    def __init__(self, default: Any = _MISSING, required: bool = False, doc: str = "",
                 pattern: Optional[str] = None):
        super().__init__(default, required, doc)
        self.pattern = re.compile(pattern) if pattern else None

    def convert(self, node, path, ctx):
        import yaml
        if not isinstance(node, yaml.ScalarNode):
            return self._mismatch(node, path, ctx)
        if self._tag(node) == "!!null":
            return None
        val = node.value  # Go's yaml decodes any scalar into a string field
        if self.pattern and not self.pattern.fullmatch(val):
            ctx.error(node, path, "invalid value %s: does not match %s" % (_go_quote(val), self.pattern.pattern))
        return val


class Int(Schema):
    type_name = "int"

    def __init__(self, default: Any = _MISSING, required: bool = False, doc: str = "",
                 min: Optional[int] = None, max: Optional[int] = None):
        super().__init__(default, required, doc)
        self.min, self.max = min, max

    def convert(self, node, path, ctx):
        import yaml
        if not isinstance(node, yaml.ScalarNode):
            return self._mismatch(node, path, ctx)
        tag = self._tag(node)
        if tag == "!!null":
            return None
        if tag != "!!int":
            return self._mismatch(node, path, ctx)
        val = ctx.construct(node)
        if (self.min is not None and val < self.min) or (self.max is not None and val > self.max):
            ctx.error(node, path, "value %d out of range [%s, %s]" % (val, self.min, self.max))
        return val


class Float(Schema):
    type_name = "float64"

    def convert(self, node, path, ctx):
        import yaml
        if not isinstance(node, yaml.ScalarNode):
            return self._mismatch(node, path, ctx)
        tag = self._tag(node)
        if tag == "!!null":
            return None
        if tag not in ("!!int", "!!float"):
            return self._mismatch(node, path, ctx)
        return float(ctx.construct(node))


class Bool(Schema):
    type_name = "bool"

    def convert(self, node, path, ctx):
        import yaml
        if not isinstance(node, yaml.ScalarNode):
            return self._mismatch(node, path, ctx)
        tag = self._tag(node)
        if tag == "!!null":
            return None
        if tag != "!!bool":
            return self._mismatch(node, path, ctx)
        return ctx.construct(node)


class Duration(Schema):
    """Go ``time.Duration`` (``30s``, ``1h5m``); integers are nanoseconds.
    Converted to seconds (float) unless ``keep_text=True``."""

    type_name = "time.Duration"

    def __init__(self, default: Any = _MISSING, required: bool = False, doc: str = "",
                 keep_text: bool = False, parser: Callable[[str], float] = parse_go_duration):
        super().__init__(default, required, doc)
        self.keep_text = keep_text
        self.parser = parser

    def convert(self, node, path, ctx):
        import yaml
        if not isinstance(node, yaml.ScalarNode):
            return self._mismatch(node, path, ctx)
        tag = self._tag(node)
        if tag == "!!null":
            return None
        if tag == "!!int":
            val = ctx.construct(node) / 1e9
            return node.value if self.keep_text else val
        if tag != "!!str":
            return self._mismatch(node, path, ctx)
        try:
            val = self.parser(node.value)
        except ValueError as exc:
            ctx.error(node, path, str(exc))
            return None
        return node.value if self.keep_text else val


class ModelDuration(Duration):
    """Prometheus ``model.Duration`` (``1d``, ``2w``, ``1h30m``)."""

    type_name = "model.Duration"

    def __init__(self, default: Any = _MISSING, required: bool = False, doc: str = "",
                 keep_text: bool = False):
        super().__init__(default, required, doc, keep_text, parser=parse_model_duration)


class Enum(Schema):
    type_name = "string"

    def __init__(self, *choices: Any, default: Any = _MISSING, required: bool = False, doc: str = ""):
        super().__init__(default, required, doc)
        self.choices = choices

    def convert(self, node, path, ctx):
        import yaml
        if not isinstance(node, yaml.ScalarNode):
            return self._mismatch(node, path, ctx)
        if self._tag(node) == "!!null":
            return None
        val = node.value
        if val not in [str(c) for c in self.choices]:
            ctx.error(node, path, "invalid value %s, must be one of: %s"
                      % (_go_quote(val), ", ".join(str(c) for c in self.choices)))
        return val


class List(Schema):
    def __init__(self, item: Schema, default: Any = _MISSING, required: bool = False, doc: str = ""):
        super().__init__(default, required, doc)
        self.item = item
        self.type_name = "[]" + item.type_name

    def convert(self, node, path, ctx):
        import yaml
        if isinstance(node, yaml.ScalarNode) and self._tag(node) == "!!null":
            return None
        if not isinstance(node, yaml.SequenceNode):
            return self._mismatch(node, path, ctx)
        return [ctx.convert(self.item, child, "%s[%d]" % (path, i)) for i, child in enumerate(node.value)]


class MapOf(Schema):
    """A map with free keys (labels, per-tenant overrides) and typed values."""

    def __init__(self, value: Schema, key_pattern: Optional[str] = None, default: Any = _MISSING,
                 required: bool = False, doc: str = ""):
        super().__init__(default, required, doc)
        self.value = value
        self.key_pattern = re.compile(key_pattern) if key_pattern else None
        self.type_name = "map[string]" + value.type_name

    def convert(self, node, path, ctx):
        import yaml
        if isinstance(node, yaml.ScalarNode) and self._tag(node) == "!!null":
            return None
        if not isinstance(node, yaml.MappingNode):
            return self._mismatch(node, path, ctx)
        out = {}
        for knode, vnode in ctx.pairs(node, path):
            key = knode.value
            sub = _join(path, key)
            if self.key_pattern and not self.key_pattern.fullmatch(key):
                ctx.error(knode, sub, "invalid key %s" % _go_quote(key))
            out[key] = ctx.convert(self.value, vnode, sub)
        return out


class Struct(Schema):
    """A Go struct: only the listed keys are allowed.

    ``Struct("server.Config", {"http_listen_port": Int(default=3100), ...})``.
    Unknown or misplaced keys fail like yaml.v2's UnmarshalStrict
    (``field x not found in type server.Config``).
    """

    def __init__(self, type_name: str, fields: Dict[str, Schema], default: Any = _MISSING,
                 required: bool = False, doc: str = ""):
        super().__init__(default, required, doc)
        self.type_name = type_name
        self.fields = dict(fields)

    def extend(self, type_name: Optional[str] = None, **fields: Schema) -> "Struct":
        """A copy with more (or replaced) fields; share sub-schemas between components."""
        merged = dict(self.fields)
        merged.update(fields)
        return Struct(type_name or self.type_name, merged, self.default, self.required, self.doc)

    def convert(self, node, path, ctx):
        import yaml
        if isinstance(node, yaml.ScalarNode) and self._tag(node) == "!!null":
            return self.defaults(ctx.fill_defaults) if ctx.fill_defaults else None
        if not isinstance(node, yaml.MappingNode):
            return self._mismatch(node, path, ctx)
        out: Dict[str, Any] = {}
        for knode, vnode in ctx.pairs(node, path):
            key = knode.value if isinstance(knode, yaml.ScalarNode) else None
            sub = _join(path, str(key))
            spec = self.fields.get(key) if key is not None else None
            if spec is None:
                ctx.error(knode, sub, "field %s not found in type %s" % (key, self.type_name))
                continue
            out[key] = ctx.convert(spec, vnode, sub)
        for key, spec in self.fields.items():
            if key in out and out[key] is not None:
                continue
            if spec.required and key not in out:
                ctx.error(node, _join(path, key), "missing required field %s in type %s"
                          % (key, self.type_name))
            elif ctx.fill_defaults:
                if spec.has_default():
                    out[key] = spec.default_value()
                elif isinstance(spec, Struct):
                    out[key] = spec.defaults(True)
        return out

    def defaults(self, fill: bool = True) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for key, spec in self.fields.items():
            if spec.has_default():
                out[key] = spec.default_value()
            elif isinstance(spec, Struct):
                out[key] = spec.defaults(fill)
        return out


def _join(path: str, key: str) -> str:
    return key if not path else "%s.%s" % (path, key)


class _Ctx:
    def __init__(self, loader, fill_defaults: bool):
        self.loader = loader
        self.fill_defaults = fill_defaults
        self.errors: list[Tuple[Optional[int], str, str]] = []

    def error(self, node, path: str, msg: str) -> None:
        line = node.start_mark.line + 1 if node is not None and node.start_mark else None
        self.errors.append((line, path, msg))

    def construct(self, node) -> Any:
        return self.loader.construct_object(node, deep=True)

    def convert(self, spec: Schema, node, path: str) -> Any:
        return spec.convert(node, path, self)

    def pairs(self, node, path: str):
        import yaml
        seen: Dict[str, int] = {}
        out = []
        for knode, vnode in node.value:
            if self._tag(knode) == "!!merge":
                # "<<: *anchor" merges another mapping (yaml.v2 supports it)
                srcs = vnode.value if isinstance(vnode, yaml.SequenceNode) else [vnode]
                for src in srcs:
                    if isinstance(src, yaml.MappingNode):
                        for k2, v2 in src.value:
                            if k2.value not in seen:
                                out.append((k2, v2))
                                seen[k2.value] = k2.start_mark.line + 1
                continue
            key = knode.value if isinstance(knode, yaml.ScalarNode) else repr(knode)
            if key in seen:
                self.error(knode, _join(path, key), 'mapping key "%s" already defined at line %d'
                           % (key, seen[key]))
                continue
            seen[key] = knode.start_mark.line + 1
            out.append((knode, vnode))
        return out

    _tag = staticmethod(Schema._tag)


_ENV_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-=+?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def expand_env(text: str, env: Optional[Dict[str, str]] = None) -> str:
    """``-config.expand-env`` expansion: ``${VAR}``, ``$VAR``, ``${VAR:-default}``,
    ``${VAR-default}``, ``${VAR:=default}``, ``${VAR:+alt}``; ``$$`` is a literal ``$``."""
    env = os.environ if env is None else env

    def repl(m):
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3) or ""
        val = env.get(name)
        if not op:
            return val or ""
        empty_counts = op.startswith(":")
        unset = val is None or (empty_counts and val == "")
        kind = op[-1]
        if kind in "-=":
            return arg if unset else val
        if kind == "+":
            return "" if unset else arg
        if kind == "?":
            if unset:
                raise ConfigError([(None, name, arg or "variable not set")])
            return val
        return val or ""

    return _ENV_RE.sub(repl, text)


def load_config_text(text: str, schema: Schema, source: str = "", fill_defaults: bool = True,
                     expand: bool = False) -> Any:
    """Parse YAML *text* strictly against *schema*; raises ConfigError."""
    import yaml
    if expand:
        text = expand_env(text)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError([(line, "", "yaml: %s" % (getattr(exc, "problem", None) or exc))], source) from None
    ctx = _Ctx(loader, fill_defaults)
    if node is None:
        result = schema.defaults(True) if (fill_defaults and isinstance(schema, Struct)) else None
    else:
        result = ctx.convert(schema, node, "")
    loader.dispose()
    if ctx.errors:
        raise ConfigError(ctx.errors, source)
    return result


def load_config(path: str, schema: Schema, fill_defaults: bool = True, expand: bool = False) -> Any:
    """Read and strictly parse a YAML config file; raises ConfigError / OSError."""
    with open(path, "r", encoding="utf-8") as fh:
        text = fh.read()
    return load_config_text(text, schema, source=path, fill_defaults=fill_defaults, expand=expand)


def get_path(cfg: Any, dotted: str, default: Any = None) -> Any:
    """``get_path(cfg, "server.http_listen_port", 3100)``."""
    cur = cfg
    for part in dotted.split("."):
        if isinstance(cur, dict) and cur.get(part) is not None:
            cur = cur[part]
        else:
            return default
    return cur


# ---------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------

class Logger:
    """Log lines to stderr (journald picks them up).

    fmt: ``logfmt`` (Grafana/Prometheus style ``level=info ts=... msg="..."``),
    ``json`` or ``plain`` (message only, MinIO style).

    A stand-in whose program logs in another shape subclasses it and overrides
    ``format_line`` (and ``LEVELS``, ``stream`` or ``outputs`` where they differ);
    level filtering, the level methods and the locked writes stay here.
    """

    LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40}

    def __init__(self, component: str = "", fmt: str = "logfmt", level: str = "info", stream=None,
                 caller: str = ""):
        self.component = component
        self.fmt = fmt
        self.level = self.LEVELS.get(level, 20)
        self._stream = stream
        self.caller = caller
        self._lock = threading.Lock()

    @property
    def stream(self):
        return self._stream if self._stream is not None else sys.stderr

    @staticmethod
    def _ts() -> str:
        now = _dt.datetime.now(_dt.timezone.utc)
        return now.strftime("%Y-%m-%dT%H:%M:%S.") + "%06dZ" % now.microsecond

    @staticmethod
    def _lf(val: Any) -> str:
        s = str(val)
        if s == "" or re.search(r'[\s"=]', s):
            return _go_quote(s)
        return s

    def log(self, level: str, msg: str, **kv: Any) -> None:
        if self.LEVELS.get(level, 20) < self.level:
            return
        self.write_line(self.format_line(level, msg, kv))

    def format_line(self, level: str, msg: str, kv: Dict[str, Any]) -> str:
        """One log line, without its newline."""
        if self.fmt == "json":
            rec = {"level": level.upper() if self.component == "minio" else level,
                   "time": self._ts(), "message" if self.component == "minio" else "msg": msg}
            rec.update(kv)
            return json.dumps(rec, default=str)
        if self.fmt == "plain":
            line = msg
            if kv:
                line += " " + " ".join("%s=%s" % (k, self._lf(v)) for k, v in kv.items())
            return line
        parts = ["level=%s" % level, "ts=%s" % self._ts()]
        if self.caller:
            parts.append("caller=%s" % self.caller)
        parts.append("msg=%s" % self._lf(msg))
        parts += ["%s=%s" % (k, self._lf(v)) for k, v in kv.items()]
        return " ".join(parts)

    def outputs(self) -> Sequence[Any]:
        """Where each line goes."""
        return (self.stream,)

    def write_line(self, line: str) -> None:
        # a closed or broken output loses the line; logging never fails the caller
        with self._lock:
            for out in self.outputs():
                try:
                    out.write(line + "\n")
                    out.flush()
                except (OSError, ValueError):
                    pass

    def debug(self, msg: str, **kv: Any) -> None:
        self.log("debug", msg, **kv)

    def info(self, msg: str, **kv: Any) -> None:
        self.log("info", msg, **kv)

    def warn(self, msg: str, **kv: Any) -> None:
        self.log("warn", msg, **kv)

    def error(self, msg: str, **kv: Any) -> None:
        self.log("error", msg, **kv)


# ---------------------------------------------------------------------------
# Addresses, locality
# ---------------------------------------------------------------------------

def parse_listen_address(addr: str, default_port: Optional[int] = None) -> Tuple[str, int]:
    """Go-style ``host:port`` -> (host, port); ``""`` host means all interfaces.

    ``:9000`` -> ("", 9000); ``0.0.0.0:9000``; ``[::]:9000`` -> ("::", 9000);
    ``localhost:9000``; ``9000`` alone is rejected like Go (missing port in address)
    unless *default_port* is given for a bare host.
    """
    addr = addr.strip()
    if addr.startswith("["):
        end = addr.find("]")
        if end < 0:
            raise ValueError("address %s: missing ']' in address" % addr)
        host, rest = addr[1:end], addr[end + 1:]
        if not rest:
            if default_port is None:
                raise ValueError("address %s: missing port in address" % addr)
            return host, default_port
        if not rest.startswith(":"):
            raise ValueError("address %s: unexpected text after ']'" % addr)
        port_s = rest[1:]
    else:
        if addr.count(":") > 1:
            raise ValueError("address %s: too many colons in address" % addr)
        if ":" not in addr:
            if default_port is None:
                raise ValueError("address %s: missing port in address" % addr)
            return addr, default_port
        host, port_s = addr.rsplit(":", 1)
    if not port_s.isdigit() or int(port_s) > 65535:
        try:
            return host, socket.getservbyname(port_s, "tcp")
        except OSError:
            raise ValueError("address %s: invalid port" % addr) from None
    return host, int(port_s)


def _is_wildcard(host: str) -> bool:
    return host in ("", "0.0.0.0", "::", "[::]")


def local_addresses() -> set:
    """IP addresses configured on this machine's interfaces (plus loopbacks)."""
    addrs = {"127.0.0.1", "::1"}
    try:
        import fcntl
        import struct
        for _idx, name in socket.if_nameindex():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                res = fcntl.ioctl(s.fileno(), 0x8915,  # SIOCGIFADDR
                                  struct.pack("256s", name.encode()[:15]))
                addrs.add(socket.inet_ntoa(res[20:24]))
            except OSError:
                pass
            finally:
                s.close()
    except (ImportError, OSError):
        pass
    try:
        with open("/proc/net/if_inet6") as fh:
            for line in fh:
                h = line.split()[0]
                addrs.add(str(ipaddress.IPv6Address(bytes.fromhex(h))))
    except OSError:
        pass
    return addrs


def resolve_host(host: str) -> set:
    """All IP addresses *host* resolves to (empty on failure)."""
    try:
        return {ai[4][0].split("%")[0] for ai in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except (OSError, UnicodeError):
        return set()


def is_local_host(host: str, bind_host: str = "") -> bool:
    """Does *host* name this machine?

    With a specific *bind_host* (``--address 127.0.0.2:9000``) the host must
    resolve to the same address; otherwise it must be this machine's hostname
    or resolve to an address configured on one of its interfaces.
    """
    if not _is_wildcard(bind_host):
        return bool(resolve_host(host) & resolve_host(bind_host.strip("[]")))
    if host in {socket.gethostname(), socket.getfqdn(), "localhost"}:
        return True
    return bool(resolve_host(host) & local_addresses())


# ---------------------------------------------------------------------------
# HTTP serving
# ---------------------------------------------------------------------------

def _quiet_werkzeug() -> None:
    lg = logging.getLogger("werkzeug")
    if os.environ.get("O11Y_STANDIN_ACCESS_LOG") in ("1", "true", "yes"):
        lg.setLevel(logging.INFO)
    else:
        lg.setLevel(logging.WARNING)
    if not lg.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(message)s"))
        lg.addHandler(h)


class HTTPService:
    """A threaded HTTP(S) server for a WSGI app on a Go-style address.

    ``HTTPService("api", ":9000", app).start()``; ``port``/``url`` give the
    bound port (``:0`` picks a free one); ``stop()`` shuts down cleanly.
    An empty host binds all interfaces (IPv6 dual-stack, IPv4 fallback).
    """

    def __init__(self, name: str, address: str, app: Callable, ssl_context=None,
                 logger: Optional[Logger] = None):
        self.name = name
        self.address = address
        self.app = app
        self.ssl_context = ssl_context
        self.logger = logger
        self.host, self.requested_port = parse_listen_address(address)
        self._server = None
        self._thread: Optional[threading.Thread] = None

    def _bind(self) -> socket.socket:
        """Bind and listen like Go's net.Listen; errors read like Go's."""
        host = self.host.strip("[]")
        port = self.requested_port
        if _is_wildcard(host):
            candidates = [(socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")] if host in ("", "::") \
                else [(socket.AF_INET, host)]
        else:
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                raise OSError("listen tcp %s: lookup %s: %s" % (self.address, host, exc.strerror)) from None
            infos.sort(key=lambda ai: 0 if ai[0] == socket.AF_INET else 1)
            candidates = [(ai[0], ai[4][0]) for ai in infos]
        last: Optional[OSError] = None
        for family, addr in candidates:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6 and addr == "::":
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                sock.bind((addr, port))
                sock.listen(128)
                return sock
            except OSError as exc:
                sock.close()
                last = exc
                if exc.errno == 98:  # EADDRINUSE: no point trying IPv4 after IPv6
                    break
        raise OSError(getattr(last, "errno", None),
                      "listen tcp %s: bind: %s" % (self.address, (getattr(last, "strerror", None) or str(last)).lower()))

    def start(self) -> "HTTPService":
        from werkzeug.serving import make_server
        _quiet_werkzeug()
        sock = self._bind()
        family_host = "::" if sock.family == socket.AF_INET6 else "0.0.0.0"
        try:
            self._server = make_server(family_host, sock.getsockname()[1], self.app, threaded=True,
                                       ssl_context=self.ssl_context, fd=sock.fileno())
        finally:
            sock.close()  # werkzeug works on a dup of the descriptor
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="http-" + self.name, daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self.requested_port

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        host = self.host.strip("[]")
        if _is_wildcard(host):
            host = "127.0.0.1"
        if ":" in host:
            host = "[%s]" % host
        return "%s://%s:%d" % (scheme, host, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


class PortListener:
    """A bound TCP (and optionally UDP) port that accepts and closes connections.

    For the ports whose protocol the tests do not speak (gRPC, memberlist gossip,
    Raft): the role and the tests only need them bound, and a bind error reads like Go's.
    """

    def __init__(self, name: str, host: str, port: int, udp: bool = False):
        self.name = name
        host = host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if host in ("", "::"):
            family, host = socket.AF_INET6, "::"
        self._sockets = []
        try:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM) if udp else (socket.SOCK_STREAM,):
                sock = socket.socket(family, kind)
                self._sockets.append(sock)
                if kind == socket.SOCK_STREAM:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6 and host == "::":
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                try:
                    sock.bind((host, port))
                except OSError as exc:
                    proto = "tcp" if kind == socket.SOCK_STREAM else "udp"
                    raise OSError("listen %s %s:%d: bind: %s"
                                  % (proto, host, port, (exc.strerror or str(exc)).lower())) from None
        except OSError:
            for sock in self._sockets:
                sock.close()
            raise
        self._sockets[0].listen(64)
        self._sockets[0].settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="listen-" + name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _addr = self._sockets[0].accept()
            except socket.timeout:
                continue
            except OSError:
                break
            try:
                self.serve(conn)
            except OSError:
                pass
            finally:
                conn.close()

    def serve(self, conn: socket.socket) -> None:
        """What a TCP peer gets before the connection is closed (nothing by default)."""

    def stop(self) -> None:
        self._stop.set()
        for sock in self._sockets:
            sock.close()
        self._thread.join(timeout=2)


def probe_tcp(address: str, timeout: float = 0.5, default_port: Optional[int] = None) -> bool:
    """True when something accepts a TCP connection at a Go-style host:port."""
    try:
        host, port = parse_listen_address(address, default_port=default_port)
        with socket.create_connection((host.strip("[]") or "127.0.0.1", port), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


class Router:
    """Tiny WSGI router: exact paths (or prefixes) to handlers, else *fallback*.

    A handler takes a ``werkzeug.wrappers.Request`` and returns a
    ``werkzeug.wrappers.Response``, or a tuple ``(status, body[, headers])``.
    """

    def __init__(self, fallback: Optional[Callable] = None):
        self.routes: list[Tuple[str, bool, Tuple[str, ...], Callable]] = []
        self.fallback = fallback

    def add(self, path: str, handler: Callable, methods: Iterable[str] = ("GET", "HEAD"),
            prefix: bool = False) -> None:
        self.routes.append((path, prefix, tuple(m.upper() for m in methods), handler))

    def route(self, path: str, methods: Iterable[str] = ("GET", "HEAD"), prefix: bool = False):
        def deco(fn):
            self.add(path, fn, methods, prefix)
            return fn
        return deco

    def match(self, path: str):
        for rpath, prefix, methods, handler in self.routes:
            if path == rpath or (prefix and path.startswith(rpath)):
                return methods, handler
        return None

    def __call__(self, environ, start_response):
        from werkzeug.wrappers import Request, Response
        path = environ.get("PATH_INFO", "") or "/"
        found = self.match(path)
        if found is None:
            if self.fallback is not None:
                return self.fallback(environ, start_response)
            return Response("404 page not found\n", status=404, mimetype="text/plain")(environ, start_response)
        methods, handler = found
        if environ.get("REQUEST_METHOD", "GET").upper() not in methods:
            return Response("Method Not Allowed\n", status=405, mimetype="text/plain")(environ, start_response)
        req = Request(environ)
        res = handler(req)
        if isinstance(res, tuple):
            status, body = res[0], res[1]
            headers = res[2] if len(res) > 2 else {}
            res = Response(body, status=status, headers=headers)
            if "Content-Type" not in headers:
                res.mimetype = "text/plain"
        return res(environ, start_response)


class ShutdownSignal:
    """Installs SIGTERM/SIGINT handlers that set an event (main thread only)."""

    def __init__(self, signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT)):
        self.event = threading.Event()
        self.received: Optional[int] = None
        for s in signals:
            signal.signal(s, self._handler)

    def _handler(self, signum, _frame):
        self.received = signum
        self.event.set()

    def wait(self, timeout: Optional[float] = None) -> bool:
        # Event.wait in small slices keeps the main thread responsive to signals.
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.event.is_set():
            left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if left <= 0:
                return False
            self.event.wait(left)
        return True


def run_until_signal(services: Sequence[HTTPService], logger: Optional[Logger] = None,
                     on_shutdown: Optional[Callable[[], None]] = None,
                     shutdown: Optional[ShutdownSignal] = None) -> int:
    """Block until SIGTERM/SIGINT, stop *services*, run *on_shutdown*; return 0."""
    sig = shutdown or ShutdownSignal()
    sig.wait()
    name = {signal.SIGTERM: "terminated", signal.SIGINT: "interrupt"}.get(sig.received, str(sig.received))
    if logger:
        logger.info("received signal, shutting down", signal=name)
    for svc in services:
        try:
            svc.stop()
        except Exception as exc:  # noqa: BLE001 - keep shutting down the rest
            if logger:
                logger.warn("error stopping server", server=svc.name, err=str(exc))
    if on_shutdown is not None:
        on_shutdown()
    return 0


def sd_notify(state: str) -> bool:
    """Send *state* (``READY=1``, ``STOPPING=1``, ``STATUS=...``) to systemd when
    the unit is ``Type=notify`` (``$NOTIFY_SOCKET`` set); False otherwise."""
    path = os.environ.get("NOTIFY_SOCKET", "")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(path)
            sock.sendall(state.encode())
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------
# Prometheus text exposition
# ---------------------------------------------------------------------------

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _esc_label(v: Any) -> str:
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt_value(v: float) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if math.isnan(v):
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v)) if not float(v).is_integer() else str(int(v)) if abs(v) < 1e15 else "%g" % v


class Metrics:
    """A registry of metric families rendered in Prometheus text format.

    ``m.gauge("x_up", "help", 1, {"job": "a"})``; samples of the same name are
    grouped under one ``# HELP``/``# TYPE``.  ``collectors`` (callables taking
    the registry) run at every :meth:`render` for live values.
    """

    def __init__(self):
        self._families: Dict[str, Dict[str, Any]] = {}
        self._order: list[str] = []
        self.collectors: list[Callable[["Metrics"], None]] = []
        self._lock = threading.Lock()

    def _family(self, name: str, mtype: str, help_text: str) -> Dict[str, Any]:
        if not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name):
            raise ValueError("invalid metric name %r" % name)
        fam = self._families.get(name)
        if fam is None:
            fam = {"type": mtype, "help": help_text, "samples": {}}
            self._families[name] = fam
            self._order.append(name)
        return fam

    def set(self, name: str, mtype: str, help_text: str, value: float,
            labels: Optional[Dict[str, Any]] = None) -> None:
        with self._lock:
            fam = self._family(name, mtype, help_text)
            key = tuple(sorted((labels or {}).items()))
            fam["samples"][key] = value

    def gauge(self, name: str, help_text: str, value: float, labels: Optional[Dict[str, Any]] = None) -> None:
        self.set(name, "gauge", help_text, value, labels)

    def counter(self, name: str, help_text: str, value: float, labels: Optional[Dict[str, Any]] = None) -> None:
        self.set(name, "counter", help_text, value, labels)

    def inc(self, name: str, help_text: str = "", amount: float = 1,
            labels: Optional[Dict[str, Any]] = None) -> None:
        with self._lock:
            fam = self._family(name, "counter", help_text)
            key = tuple(sorted((labels or {}).items()))
            fam["samples"][key] = fam["samples"].get(key, 0) + amount

    def build_info(self, prefix: str, info: Optional[Dict[str, str]] = None, **extra: str) -> None:
        """``<prefix>_build_info{version,revision,branch,goversion,goos,goarch} 1``."""
        info = info or build_info()
        goos, goarch = go_platform()
        labels = {"version": info.get("version", ""), "revision": info.get("revision", ""),
                  "branch": info.get("branch", "HEAD"), "goversion": info.get("goversion", ""),
                  "goos": goos, "goarch": goarch, "tags": "unknown"}
        labels.update(extra)
        self.gauge(prefix + "_build_info",
                   "A metric with a constant '1' value labeled by version, revision, branch, "
                   "goversion from which %s was built, and the goos and goarch for the build." % prefix,
                   1, labels)

    def render(self) -> str:
        for collect in list(self.collectors):
            collect(self)
        out: list[str] = []
        with self._lock:
            for name in self._order:
                fam = self._families[name]
                if fam["help"]:
                    out.append("# HELP %s %s" % (name, fam["help"].replace("\\", "\\\\").replace("\n", "\\n")))
                out.append("# TYPE %s %s" % (name, fam["type"]))
                for key in sorted(fam["samples"]):
                    lbl = ",".join('%s="%s"' % (k, _esc_label(v)) for k, v in key)
                    out.append("%s%s %s" % (name, "{%s}" % lbl if lbl else "", _fmt_value(fam["samples"][key])))
        return "\n".join(out) + "\n"

    def wsgi_response(self):
        from werkzeug.wrappers import Response
        return Response(self.render(), status=200, content_type=PROMETHEUS_CONTENT_TYPE)


# ---------------------------------------------------------------------------
# JWT (metrics bearer tokens and the like)
# ---------------------------------------------------------------------------

def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def jwt_verify_hs(token: str, secret: str, now: Optional[float] = None) -> Optional[Dict[str, Any]]:
    """Verify an HS256/HS384/HS512 JWT; returns its claims or None."""
    try:
        head_b, body_b, sig_b = token.split(".")
        header = json.loads(_b64url_decode(head_b))
        claims = json.loads(_b64url_decode(body_b))
        alg = header.get("alg", "")
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}.get(alg)
        if digest is None:
            return None
        expected = hmac.new(secret.encode(), ("%s.%s" % (head_b, body_b)).encode(), digest).digest()
        if not hmac.compare_digest(expected, _b64url_decode(sig_b)):
            return None
        now = time.time() if now is None else now
        if "exp" in claims and float(claims["exp"]) < now:
            return None
        if "nbf" in claims and float(claims["nbf"]) > now + 60:
            return None
        return claims
    except (ValueError, TypeError, AttributeError):
        return None


def jwt_sign_hs512(claims: Dict[str, Any], secret: str) -> str:
    """Make an HS512 JWT (what ``mc admin prometheus generate`` produces)."""
    def enc(obj):
        return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()
    head = enc({"alg": "HS512", "typ": "JWT"})
    body = enc(claims)
    sig = hmac.new(secret.encode(), ("%s.%s" % (head, body)).encode(), hashlib.sha512).digest()
    return "%s.%s.%s" % (head, body, base64.urlsafe_b64encode(sig).rstrip(b"=").decode())


# ---------------------------------------------------------------------------
# S3 helpers
# ---------------------------------------------------------------------------

def _s3_endpoint_url(endpoint: str, insecure: bool) -> str:
    if "://" in endpoint:
        return endpoint
    return ("http://" if insecure else "https://") + endpoint


def check_bucket(endpoint: str, bucket: str, access_key: Optional[str] = None,
                 secret_key: Optional[str] = None, region: str = "us-east-1", insecure: bool = False,
                 timeout: float = 5.0, verify_tls: bool = True) -> Tuple[bool, Optional[str]]:
    """Does *bucket* exist on the S3 endpoint?  -> (True, None) or (False, reason).

    *endpoint* may carry a scheme (``http://minio:9000``) or not (``minio:9000``,
    then *insecure* picks http like Loki/Mimir/Tempo's ``insecure: true``).
    """
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client(
        "s3", endpoint_url=_s3_endpoint_url(endpoint, insecure), region_name=region or "us-east-1",
        aws_access_key_id=access_key, aws_secret_access_key=secret_key, verify=verify_tls,
        config=Config(s3={"addressing_style": "path"}, connect_timeout=timeout, read_timeout=timeout,
                      retries={"max_attempts": 1}, signature_version="s3v4"))
    try:
        client.head_bucket(Bucket=bucket)
        return True, None
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("404", "NoSuchBucket", "NotFound"):
            return False, "The specified bucket does not exist (bucket %s)" % bucket
        if code in ("403", "AccessDenied", "Forbidden"):
            return False, "Access Denied (bucket %s, status %s)" % (bucket, status)
        return False, "%s (status %s)" % (code or exc, status)
    except (BotoCoreError, OSError) as exc:
        return False, str(exc)


def require_bucket(logger: Logger, endpoint: str, bucket: str, what: str = "storage",
                   wait_seconds: float = 0.0, **kw: Any) -> None:
    """Exit 1 (after logging) unless *bucket* exists; optionally retry for
    *wait_seconds* first (the endpoint may still be starting)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        ok, reason = check_bucket(endpoint, bucket, **kw)
        if ok:
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    logger.error("error initialising module: %s" % what, err="bucket %s on %s: %s" % (bucket, endpoint, reason))
    raise StandinExit(1)
