# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test harness itself (tests/conftest.py)."""

from __future__ import annotations

import contextlib
import io
import threading

from tests.conftest import progress


def test_progress_from_a_job_thread_leaves_the_tests_stdout_alone():
    """A unit test reads a module's printed result from a redirected sys.stdout while integration
    jobs print progress lines from their threads; a progress line must not swap sys.stdout."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        job = threading.Thread(target=progress, args=("a progress line from a job thread",))
        job.start()
        job.join()
        print('{"changed": false}')
    assert printed.getvalue() == '{"changed": false}\n'
