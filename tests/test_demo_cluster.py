"""``clusterstate demo``: three real node processes, the master SIGKILLed, nothing lost, every State equal."""

from __future__ import annotations

import json
import sys

import pytest

from support.processes import Processes

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(180)]


def test_demo_json_fails_over_and_loses_nothing(processes: Processes) -> None:
    result = processes.run(
        [sys.executable, "-m", "clusterstate", "demo", "--json"], capture_output=True, text=True, timeout=90
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["lost"] == 0
    assert (summary["missing"], summary["duplicated"]) == ([], [])
    assert summary["states_equal"] is True
    assert summary["states_differing"] == []
    assert summary["log_contiguous"] is True
    assert summary["old_master"] in summary["nodes"]
    assert summary["new_master"] in summary["nodes"]
    assert summary["new_master"] != summary["old_master"]
    assert summary["term_after"] > summary["term_before"]
    assert 0 < summary["failover_s"] <= summary["settled_s"]
    assert summary["released"] > 0
    assert summary["log_length"] >= summary["released"]
    assert "SIGKILLed" in result.stderr  # progress lines go to stderr
