"""Molecule scenarios: create, converge, idempotence, check mode, side effects, verify, destroy."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ARTIFACT_CACHE, MINIO_OTHER_VERSION, OUTPUT, ROOT, progress, tool

SCENARIOS = ["minio", "minio-cluster", "collectors", "grafana", "oncall", "default", "cluster"]
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


class Molecule:
    def __init__(self, scenario: str, env: dict[str, str]):
        self.scenario = scenario
        self.env = env
        self.logs = OUTPUT / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def run(self, action: str, *extra: str, check: bool = True, timed: bool = False) -> str:
        log = self.logs / f"{self.scenario}-{action}{'-check' if '--check' in extra else ''}.log"
        started = time.monotonic()
        progress(f"{self.scenario}: molecule {action} {' '.join(extra)}".rstrip())
        with log.open("w") as out:
            proc = subprocess.run([tool("molecule"), action, "-s", self.scenario, *extra], cwd=ROOT,
                                  env=self.env, stdout=out, stderr=subprocess.STDOUT, text=True)
        text = log.read_text(errors="replace")
        alone = " (timed alone)" if timed else ""
        progress(f"{self.scenario}: molecule {action} -> rc={proc.returncode} in {time.monotonic() - started:.0f}s{alone} (log: {log})")
        if check and proc.returncode != 0:
            tail = "\n".join(text.splitlines()[-200:])
            pytest.fail(f"molecule {action} failed for {self.scenario} (rc={proc.returncode}):\n{tail}")
        return text


def recap(output: str) -> dict[str, dict[str, int]]:
    hosts = {}
    for host, ok, changed, unreachable, failed in RECAP.findall(output):
        hosts[host] = {"ok": int(ok), "changed": int(changed), "unreachable": int(unreachable), "failed": int(failed)}
    return hosts


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario(scenario: str, integration_jobs) -> None:
    """The scenario runs as an integration job (tests/integration/conftest.py), beside another."""
    integration_jobs.wait(scenario)


def run_scenario(scenario: str, mirror_dir: Path, test_image: str, timed_done=None) -> None:
    """timed_done: for the scenario timed alone, called once its converge and re-run are over."""
    env = dict(os.environ)
    env.update({
        "O11Y_TEST_IMAGE": test_image,
        "O11Y_MIRROR_URL": mirror_dir.as_uri(),
        "O11Y_ARTIFACT_CACHE": str(ARTIFACT_CACHE),
        "O11Y_MINIO_OTHER_VERSION": MINIO_OTHER_VERSION,
        # The working tree itself, through the checkout's .collections symlink
        # (molecule's prerun, which would install a copy, is off).
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections"),
        "ANSIBLE_FORCE_COLOR": "false",
        # One round trip per task instead of three (sudo in the images needs no tty).
        "ANSIBLE_PIPELINING": "true",
        "PY_COLORS": "0",
        "NO_COLOR": "1",
    })
    molecule = Molecule(scenario, env)
    sequence = (ROOT / "molecule" / scenario / "molecule.yml").read_text()
    try:
        try:
            molecule.run("destroy")
            molecule.run("create")
            molecule.run("converge", timed=timed_done is not None)
            molecule.run("idempotence", timed=timed_done is not None)
        finally:
            if timed_done is not None:
                timed_done()

        # --check --diff on the converged hosts: nothing to change, nothing failing.
        output = molecule.run("converge", "--", "--check", "--diff")
        hosts = recap(output)
        assert hosts, "no PLAY RECAP in the check-mode run"
        for host, counts in hosts.items():
            assert counts["changed"] == 0 and counts["failed"] == 0 and counts["unreachable"] == 0, (
                f"check mode on converged {host}: {counts}\n" + "\n".join(output.splitlines()[-120:]))

        if "side_effect" in sequence:
            molecule.run("side-effect")
        molecule.run("verify")
    finally:
        molecule.run("destroy", check=False)
