"""Runs the long integration jobs (molecule scenarios, the README deploy) two at a time.

First the single-node scenario's converge and idempotent re-run, alone on the machine (nothing
else runs, not even the static tests), so their wall times measure the single-node budget.

Each job mostly waits on containers (docker exec round trips, services starting), so two jobs
share the 2-core CI machine well and the suite stays within its time budget. The jobs are
submitted together, longest first, as the session starts (tests/conftest.py), so they also run
beside the static and unit tests; each integration test then waits for its own job and reports
its own failure. O11Y_TEST_PARALLEL=1 runs them one at a time.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import pytest

from tests.conftest import progress

PARALLEL = max(1, int(os.environ.get("O11Y_TEST_PARALLEL", "2")))

# The single-node budget (first converge, idempotent re-run) is measured on a quiet machine:
# this scenario's converge and idempotence run first and alone, everything else waits.
TIMED_ALONE = "default"

# Then longest first, so the two workers finish close together (minutes measured on the CI machine).
JOB_ORDER = [TIMED_ALONE, "cluster", "collectors", "oncall", "grafana", "readme-deploy", "minio-cluster", "minio"]


class IntegrationJobs:
    def __init__(self, workers: int):
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="o11y-job")
        self.futures: Dict[str, Future] = {}
        # Set once the job timed alone is past its timed steps (or failed), or when there is none.
        self.alone_done = threading.Event()

    def submit(self, name: str, job: Callable[[], None]) -> None:
        def run() -> None:
            if name != TIMED_ALONE:
                self.alone_done.wait()
            progress(f"job {name}: started")
            try:
                job()
            except BaseException:
                progress(f"job {name}: FAILED")
                raise
            progress(f"job {name}: passed")
        self.futures[name] = self.pool.submit(run)

    def wait(self, name: str) -> None:
        """Re-raises the job's own failure (pytest.fail, an assertion) in the waiting test."""
        self.futures[name].result()


def selected_jobs(session: pytest.Session) -> List[Tuple[str, str]]:
    """(job name, kind) of every integration job among the collected tests."""
    jobs = []
    for item in session.items:
        if item.originalname == "test_scenario":
            jobs.append((item.callspec.params["scenario"], "scenario"))
        elif item.originalname == "test_readme_deploy_command":
            jobs.append(("readme-deploy", "readme"))
    return sorted(jobs, key=lambda job: JOB_ORDER.index(job[0]) if job[0] in JOB_ORDER else len(JOB_ORDER))


def start_jobs(session: pytest.Session, mirror_dir: Path, test_image: str) -> IntegrationJobs:
    from tests.integration.test_molecule import run_scenario
    from tests.integration.test_readme_deploy import run_readme_deploy

    jobs = IntegrationJobs(PARALLEL)
    selected = selected_jobs(session)
    progress(f"integration jobs, {PARALLEL} at a time: {', '.join(name for name, _ in selected)}")
    if TIMED_ALONE not in [name for name, _ in selected]:
        jobs.alone_done.set()
    for name, kind in selected:
        if kind == "scenario":
            timed_done = jobs.alone_done.set if name == TIMED_ALONE else None
            jobs.submit(name, lambda name=name, timed_done=timed_done: run_scenario(
                name, mirror_dir, test_image, timed_done=timed_done))
        else:
            jobs.submit(name, lambda: run_readme_deploy(mirror_dir, test_image))
    return jobs
