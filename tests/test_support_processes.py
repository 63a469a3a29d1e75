"""The ``processes`` fixture's machinery: it kills what the test left running, its own children only, and says so."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from support.processes import Processes

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def _dead(pid: int) -> bool:
    """Gone, or a zombie waiting for its parent: it runs no more."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def test_a_child_that_ran_to_the_end_is_no_leak() -> None:
    children = Processes()
    result = children.run([sys.executable, "-c", "print('hi')"], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (0, "hi\n")
    assert children.kill_all() == []


def test_a_child_left_running_is_killed_and_named() -> None:
    children = Processes()
    child = children.popen(SLEEPER)
    assert children.pids == [child.pid]
    assert children.kill_all() == [" ".join(SLEEPER)]
    assert child.returncode == -signal.SIGKILL


def test_a_grandchild_left_behind_is_killed_with_its_group() -> None:
    children = Processes()
    # The grandchild gets no copy of the pipe, or reading the child's output would wait for it too.
    spawn = f"import subprocess as s; print(s.Popen({SLEEPER!r}, stdout=s.DEVNULL, stderr=s.DEVNULL).pid)"
    result = children.run([sys.executable, "-c", spawn], capture_output=True, text=True, timeout=60)
    grandchild = int(result.stdout)
    assert not _dead(grandchild)
    assert len(children.kill_all()) == 1  # the child exited, but its group did not
    deadline = time.monotonic() + 30
    while not _dead(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _dead(grandchild)


def test_processes_it_did_not_start_are_left_alone() -> None:
    with subprocess.Popen(SLEEPER) as stranger:
        try:
            children = Processes()
            children.popen(SLEEPER)
            children.kill_all()
            assert stranger.poll() is None
        finally:
            stranger.kill()
