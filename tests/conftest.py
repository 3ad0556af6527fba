"""Shared fixtures: the artifact mirror and the systemd test image."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "tests" / "output"
BIN = Path(sys.executable).parent
ARTIFACT_CACHE = OUTPUT / "artifact-cache"

# Versions besides the pinned ones that the mirror carries (upgrade/rollback tests).
MINIO_OTHER_VERSION = "RELEASE.2025-07-23T15-54-02Z"


_PROGRESS_LOCK = threading.Lock()
# The session's real standard output, opened before pytest captures: progress lines go there
# directly. (Suspending pytest's capture instead would swap sys.stdout under a test running in
# the main thread, e.g. a module whose printed result a unit test is reading.)
_TERMINAL: list = []


def pytest_configure(config: pytest.Config) -> None:
    try:
        _TERMINAL.append(os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1))
    except (AttributeError, OSError, ValueError):  # no real file behind stdout: print as usual
        pass


def progress(message: str) -> None:
    """Print a progress line even while pytest captures output (also from job threads)."""
    line = f"[o11y-tests {time.strftime('%H:%M:%S')}] {message}\n"
    with _PROGRESS_LOCK:
        out = _TERMINAL[0] if _TERMINAL else sys.stdout
        out.write(line)
        out.flush()


@pytest.fixture(scope="session")
def mirror_dir() -> Path:
    out = OUTPUT / "mirror"
    progress(f"building the artifact mirror in {out}")
    subprocess.run(
        [sys.executable, str(ROOT / "tests/standins/build_mirror.py"), "--out", str(out),
         "--also", f"minio={MINIO_OTHER_VERSION}"],
        check=True, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    return out


@pytest.fixture(scope="session")
def test_image() -> str:
    if os.environ.get("O11Y_TEST_IMAGE"):
        return os.environ["O11Y_TEST_IMAGE"]
    progress("building or reusing the systemd test image")
    proc = subprocess.run(["bash", str(ROOT / "tests/image/build.sh")], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        pytest.fail("test image build failed:\n" + proc.stdout[-5000:])
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def integration_jobs(request: pytest.FixtureRequest, mirror_dir: Path, test_image: str):
    """The molecule scenarios and the README deploy, running in the background (tests/integration/jobs.py)."""
    from tests.integration.jobs import start_jobs

    jobs = start_jobs(request.session, mirror_dir, test_image)
    yield jobs
    jobs.pool.shutdown(wait=True)


@pytest.fixture(scope="session", autouse=True)
def start_integration_jobs_early(request: pytest.FixtureRequest) -> None:
    """When integration tests are selected, their jobs start with the session, beside the other tests
    (once the job timed alone is past its timed steps)."""
    from tests.integration.jobs import selected_jobs

    if selected_jobs(request.session):
        jobs = request.getfixturevalue("integration_jobs")
        # The other tests wait too while the single-node budget is measured alone.
        jobs.alone_done.wait()


def tool(name: str) -> str:
    """Path of a console script from the interpreter's environment."""
    candidate = BIN / name
    return str(candidate) if candidate.exists() else name


def pytest_sessionfinish(session, exitstatus):
    """In CI a skipped check is a missing check: fail the run instead of passing it."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") and skipped and session.exitstatus == 0:
        progress(f"{skipped} test(s) skipped; skipped checks are not allowed in CI")
        session.exitstatus = 1
