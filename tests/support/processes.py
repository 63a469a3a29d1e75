"""Child processes a test starts, and only those, killed at the end of the test.

Each child starts in a process group of its own (``process_group=0``), so the group's id is the child's pid and
killing the group reaches whatever the child started too, and nothing else: never another test's processes, never
pytest's. A child (or a process of its group) still alive when the test ends is a leak: the fixture kills the group
and fails the test, naming the command.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence
from typing import Any

__all__ = ["Processes"]


class Processes:
    """The children one test started: :meth:`popen` and :meth:`run` as in :mod:`subprocess`, recorded."""

    def __init__(self) -> None:
        self._children: list[subprocess.Popen[Any]] = []

    @property
    def pids(self) -> list[int]:
        """Every child started so far, in order."""
        return [child.pid for child in self._children]

    def popen(self, args: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``args`` in a process group of its own (``kwargs`` as for :class:`subprocess.Popen`)."""
        child: subprocess.Popen[Any] = subprocess.Popen(args, process_group=0, **kwargs)
        self._children.append(child)
        return child

    def run(
        self, args: Sequence[str], *, timeout: float, capture_output: bool = False, **kwargs: Any
    ) -> subprocess.CompletedProcess[Any]:
        """Run ``args`` to completion (``kwargs`` as for :class:`subprocess.Popen`, ``capture_output`` as for
        :func:`subprocess.run`); on timeout its group is killed.

        Raises:
            subprocess.TimeoutExpired: it ran longer than ``timeout`` seconds.
        """
        if capture_output:
            kwargs.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with self.popen(args, **kwargs) as child:
            try:
                stdout, stderr = child.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(child.pid)
                child.wait()
                raise
        return subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)

    def kill_all(self) -> list[str]:
        """Kill every child's process group that is still alive; the commands of those that were (the leaks)."""
        leaked = []
        for child in self._children:
            running = child.poll() is None
            if _kill_group(child.pid) or running:
                leaked.append(_command(child.args))
            child.wait()
        return leaked


def _command(args: str | bytes | os.PathLike[str] | os.PathLike[bytes] | Sequence[Any]) -> str:
    """A child's command line as text."""
    if isinstance(args, str | bytes | os.PathLike):
        return os.fsdecode(args)
    return " ".join(map(str, args))


def _kill_group(pgid: int) -> bool:
    """SIGKILL the process group ``pgid``; whether any process was left in it."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True
