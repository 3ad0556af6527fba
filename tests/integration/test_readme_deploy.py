"""The README's deploy command, run as written on a fresh systemd machine (a Debian 12 container).

The container has no network: the controller requirements come from a wheel directory
(PIP_FIND_LINKS) and the releases from the test artifact mirror (o11y_artifact_mirror).
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import OUTPUT, ROOT, progress

# The components of inventories/single-node: each a unit, each a healthy Prometheus job.
SINGLE_NODE_JOBS = {"minio", "mimir", "loki", "tempo", "pyroscope", "prometheus", "alloy", "grafana"}

CONTAINER = "o11y-readme-deploy"
CAPS = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
        "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
        "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
        "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE",
        "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ"]
CHECKOUT = "/root/o11y.stack"


def readme_command(section: str) -> str:
    """The first ```sh block after a README heading."""
    readme = (ROOT / "README.md").read_text()
    return re.search(r"```sh\n(.+?)\n```", readme.split(section, 1)[1]).group(1).strip()


def readme_deploy_command() -> str:
    return readme_command("## Quick start")


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        pytest.fail(f"docker {' '.join(args[:3])} failed: {proc.stdout[-4000:]}{proc.stderr[-2000:]}")
    return proc


def download_wheels() -> Path:
    out = OUTPUT / "wheels"
    progress("downloading the controller requirements as wheels")
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d", str(out),
                    "-r", str(ROOT / "requirements.txt")], check=True)
    return out


@contextlib.contextmanager
def fresh_machine(test_image: str) -> Iterator[str]:
    docker("rm", "-f", CONTAINER, check=False)
    docker("run", "-d", "--name", CONTAINER, "--hostname", "o11y-readme", "--network", "none",
           *[f"--cap-add={c}" for c in CAPS], "--security-opt", "seccomp=unconfined", "--cgroupns", "host",
           "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock",
           test_image, "/lib/systemd/systemd")
    for _ in range(60):
        state = docker("exec", CONTAINER, "systemctl", "is-system-running", check=False).stdout.strip()
        if state in ("running", "degraded"):
            break
        time.sleep(1)
    try:
        yield CONTAINER
    finally:
        docker("rm", "-f", CONTAINER, check=False)


def copy_in(container: str, source: Path, dest: str, files: list[str] | None = None) -> None:
    """Copy a directory (or the listed files of it) into the container."""
    listing = files if files is not None else ["."]
    tar = subprocess.Popen(["tar", "-C", str(source), "-cf", "-", *listing], stdout=subprocess.PIPE)
    docker("exec", container, "mkdir", "-p", dest)
    proc = subprocess.run(["docker", "exec", "-i", container, "tar", "-C", dest, "-xf", "-"], stdin=tar.stdout,
                          capture_output=True)
    tar.wait()
    assert proc.returncode == 0 and tar.returncode == 0, proc.stderr


def test_readme_deploy_command(integration_jobs) -> None:
    """Runs as an integration job (tests/integration/conftest.py), beside a molecule scenario."""
    integration_jobs.wait("readme-deploy")


def run_readme_deploy(mirror_dir: Path, test_image: str) -> None:
    wheels = download_wheels()
    with fresh_machine(test_image) as machine:
        deploy_and_check(machine, mirror_dir, wheels)


def deploy_and_check(machine: str, mirror_dir: Path, wheels: Path) -> None:
    command = readme_deploy_command()
    assert command == "./deploy", f"README quick start changed: {command!r}"
    tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.split()
    copy_in(machine, ROOT, CHECKOUT, [f for f in tracked if (ROOT / f).exists()])
    copy_in(machine, mirror_dir, "/srv/mirror")
    copy_in(machine, wheels, "/srv/wheels")

    outputs = []
    for attempt in ("first", "second"):
        progress(f"README deploy command in a fresh container, {attempt} run: {command}")
        started = time.monotonic()
        proc = docker("exec", "-w", CHECKOUT, "-e", "PIP_NO_INDEX=1", "-e", "PIP_FIND_LINKS=/srv/wheels",
                      "-e", "ANSIBLE_FORCE_COLOR=false", machine, *command.split(),
                      "-e", "o11y_artifact_mirror=file:///srv/mirror", "-e", '{"minio_buckets": [{"name": "readme"}]}',
                      check=False)
        progress(f"README deploy command, {attempt} run -> rc={proc.returncode} in {time.monotonic() - started:.0f}s")
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
        outputs.append(proc.stdout)
    recap = re.search(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", outputs[1])
    assert recap and recap.group(1) == "0", outputs[1][-3000:]

    for unit in sorted(SINGLE_NODE_JOBS):
        assert docker("exec", machine, "systemctl", "is-active", unit, check=False).stdout.strip() == "active", unit
    live = docker("exec", machine, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                  "http://127.0.0.1:9000/minio/health/live").stdout
    assert live == "200"
    # Prometheus on the single node scrapes every component deployed there.
    jobs = set()
    for _ in range(30):
        targets = json.loads(docker("exec", machine, "curl", "-s",
                                    "http://127.0.0.1:9090/api/v1/targets?state=active").stdout or "{}")
        jobs = {t["labels"]["job"] for t in targets.get("data", {}).get("activeTargets", []) if t["health"] == "up"}
        if jobs == SINGLE_NODE_JOBS:
            break
        time.sleep(2)
    assert jobs == SINGLE_NODE_JOBS, jobs
    # Grafana came up with the generated admin password and the four correlated data sources.
    password = docker("exec", machine, "cat",
                      f"{CHECKOUT}/inventories/single-node/credentials/grafana_admin_password").stdout.strip()
    sources = json.loads(docker("exec", machine, "curl", "-s", "-u", f"admin:{password}",
                                "http://127.0.0.1:3000/api/datasources").stdout or "[]")
    assert sorted(source["uid"] for source in sources) == ["loki", "mimir", "pyroscope", "tempo"], sources
    secret = docker("exec", machine, "stat", "-c", "%a",
                    f"{CHECKOUT}/inventories/single-node/credentials/minio_root_password").stdout.strip()
    assert secret in ("600", "400"), f"generated secret has mode {secret}"

    # The README's end-to-end check, with the ansible-playbook ./deploy installed.
    verify = readme_command("### 5. Check the data flow end to end")
    assert verify.startswith("ansible-playbook -i inventories/single-node "), verify
    progress(f"README verify command in the deployed container: {verify}")
    proc = docker("exec", "-w", CHECKOUT, "-e", "ANSIBLE_FORCE_COLOR=false", machine,
                  f"{CHECKOUT}/.venv/bin/{verify.split()[0]}", *verify.split()[1:], check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    for signal in ("traces", "logs", "metrics", "profiles"):
        assert re.search(rf'"{signal}": "ok"', proc.stdout), proc.stdout[-3000:]
