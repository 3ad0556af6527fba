# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for tests that run stand-ins as subprocesses on 127.0.0.0/8.

    proc = StandinProcess(["minio", "server", "--address", "127.0.0.1:%d" % port, data_dir], env=env)
    proc.start(); proc.wait_http("http://127.0.0.1:%d/minio/health/live" % port)
    ...
    assert proc.terminate() == 0

``argv[0]`` names the stand-in module (``o11y_standins.<argv[0]>``) unless
*program* (a zipapp path) is given; the process runs with this checkout's
``tests/standins`` on ``PYTHONPATH``.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence
from urllib.parse import urlsplit

STANDINS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port(host: str = "127.0.0.1", also: Sequence[str] = ()) -> int:
    """A TCP port free on *host* (and on every address in *also*)."""
    for dummy in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        ok = True
        for other in also:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((other, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no free port")


def wait_until(predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.1,
               message: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError("timed out after %.0fs waiting for %s (last: %r)" % (timeout, message, last))


def http_get(url: str, headers: Optional[Dict[str, str]] = None, timeout: float = 5.0, method: str = "GET",
             body: Optional[bytes] = None):
    """(status, headers dict, body bytes); status 0 when nothing answers."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        path = u.path or "/"
        if u.query:
            path += "?" + u.query
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    except OSError:
        return 0, {}, b""
    finally:
        conn.close()


def http_post(url: str, body: bytes, headers: Optional[Dict[str, str]] = None, timeout: float = 5.0):
    """(status, body bytes) of a POST; status 0 when nothing answers."""
    status, _headers, data = http_get(url, headers, timeout, method="POST", body=body)
    return status, data


class StandinProcess:
    def __init__(self, argv: Sequence[str], env: Optional[Dict[str, str]] = None, program: Optional[str] = None,
                 python: str = sys.executable, inherit_env: bool = True):
        self.argv = list(argv)
        self.program = program
        self.python = python
        base = dict(os.environ) if inherit_env else {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        for k in list(base):
            if k.startswith("MINIO_") or k == "NOTIFY_SOCKET":
                del base[k]
        base["PYTHONPATH"] = STANDINS_DIR + (os.pathsep + base["PYTHONPATH"] if base.get("PYTHONPATH") else "")
        base.update(env or {})
        self.env = base
        self.proc: Optional[subprocess.Popen] = None
        self._out = tempfile.TemporaryFile()
        self._err = tempfile.TemporaryFile()

    def command(self) -> List[str]:
        if self.program:
            return [self.python, self.program] + self.argv[1:]
        return [self.python, "-m", "o11y_standins." + self.argv[0]] + self.argv[1:]

    def start(self) -> "StandinProcess":
        self.proc = subprocess.Popen(self.command(), env=self.env, stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL)
        return self

    def run(self, timeout: float = 30.0) -> int:
        """Start and wait for exit; returns the exit code."""
        self.start()
        return self.proc.wait(timeout=timeout)

    @property
    def stdout(self) -> str:
        self._out.seek(0)
        return self._out.read().decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        self._err.seek(0)
        return self._err.read().decode("utf-8", "replace")

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_http(self, url: str, status: int = 200, timeout: float = 30.0) -> None:
        def check():
            if not self.alive():
                raise RuntimeError("process exited with %s before %s answered:\n%s"
                                   % (self.proc.returncode if self.proc else None, url, self.output))
            return http_get(url, timeout=2.0)[0] == status
        wait_until(check, timeout=timeout, message="%s -> %d" % (url, status))

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit code (kills after *timeout*)."""
        if self.proc is None:
            return -1
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def close(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait()
        self._out.close()
        self._err.close()
