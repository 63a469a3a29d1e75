"""Shared test configuration: hypothesis profiles and the fixtures every test module may use.

Profiles (pick one with ``HYPOTHESIS_PROFILE``; default ``dev``):

- ``dev``: about 100 examples per property, random seeds, the local example database: fast feedback.
- ``ci``: 300 examples per property, no deadline (shared runners stall), derandomized so a CI
  failure reproduces exactly from the commit alone, and the failing example's blob printed.
- ``debug``: few examples with verbose output, to look at what the strategies generate.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Verbosity, settings

from support.processes import Processes

settings.register_profile(
    "dev",
    max_examples=100,
    # Generous: the first example of a test also pays for pydantic schema warm-up.
    deadline=timedelta(seconds=2),
)
settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("debug", max_examples=10, deadline=None, verbosity=Verbosity.verbose)

settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def tiny_disk(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A 64 KiB tmpfs (root on Linux only; skipped elsewhere), unmounted afterwards: a disk that fills up.

    Another size comes through indirect parametrization:
    ``@pytest.mark.parametrize("tiny_disk", ["2m"], indirect=True)``.
    """
    size = getattr(request, "param", "64k")
    mount = tmp_path / "tiny"
    mount.mkdir()
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("needs root to mount a tiny tmpfs")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=False).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.fixture
def processes() -> Iterator[Processes]:
    """Start subprocesses through this; at the end of the test it kills those still running, and fails the test."""
    children = Processes()
    yield children
    leaked = children.kill_all()
    if leaked:
        pytest.fail(f"{len(leaked)} child process group(s) still running at the end of the test: {leaked}")
