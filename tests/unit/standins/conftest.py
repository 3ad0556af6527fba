"""Fixtures shared by the stand-in tests."""

from __future__ import annotations

import pytest

from o11y_standins.testing import StandinProcess


@pytest.fixture
def start_standin():
    """Start stand-ins as subprocesses (``start(program, args, env)``); all are stopped after the test."""
    started = []

    def start(program, args, env=None):
        proc = StandinProcess([program, *args], env=env).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.terminate(timeout=10)
        proc.close()
