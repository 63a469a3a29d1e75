"""``clusterstate node``: its settings (flags over config.toml's [node] table over the defaults), and the command
with no flags at all running a one-node cluster with this machine's real gatherers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from clusterstate.cli import _parser
from clusterstate.cli.node import settings_of
from clusterstate.runtime.local import free_port
from support.processes import Processes


def _args(*flags: str, config: Path) -> Any:
    return _parser().parse_args(["node", f"--config-dir={config}", *flags])


def test_flags_win_over_the_config_file_which_wins_over_the_defaults(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[node]\ncluster = "lab"\nmaster_priority = 2\npeer = ["tcp/10.0.0.2:52420"]\nquorum = 3\n'
    )
    settings = settings_of(_args("--master-priority=5", "--no-gather", config=tmp_path))
    assert settings.options.cluster == "lab"
    assert settings.options.priority == 5
    assert settings.options.quorum == 3
    assert settings.zenoh.connect == ("tcp/10.0.0.2:52420",)
    assert settings.zenoh.listen == ("tcp/0.0.0.0:52420",)
    assert settings.api_port == 52421
    assert not settings.gather


def test_an_unknown_setting_in_the_config_file_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[node]\nmaster_prio = 2\n")
    with pytest.raises(ValueError, match="master_prio"):
        settings_of(_args(config=tmp_path))


@pytest.mark.parametrize("flag", ["--quorum=0", "--quorum=most", "--master-priority=-2", "--api-port=70000"])
def test_bad_flags_are_one_line_and_status_2(flag: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "clusterstate", "node", flag, f"--data-dir={tmp_path}"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.decode().count("\n") == 1
    assert flag.split("=")[0] in done.stderr.decode()


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.mark.cluster
@pytest.mark.slow
def test_with_no_flags_it_runs_a_one_node_cluster_with_the_real_gatherers(tmp_path: Path, processes: Processes) -> None:
    # The ports come from config.toml so the test does not depend on 52420/52421 being free.
    config = tmp_path / "config"
    config.mkdir()
    api_port = free_port()
    (config / "config.toml").write_text(
        f'[node]\nlisten = ["tcp/127.0.0.1:{free_port()}"]\napi_port = {api_port}\njoin_wait_s = 0.5\n'
    )
    env = {**os.environ, "CLUSTERSTATE_DATA": str(tmp_path / "data"), "CLUSTERSTATE_CONFIG_HOME": str(config)}
    node = processes.popen(
        [sys.executable, "-m", "clusterstate", "node"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        assert node.stdout is not None
        ready = json.loads(node.stdout.readline())
        assert ready["api"] == f"http://127.0.0.1:{api_port}"
        node_id = ready["node"]
        assert (tmp_path / "data" / "node_id").read_text().strip() == node_id
        deadline = time.monotonic() + 30
        while True:
            status = _get(f"{ready['api']}/cluster")
            state = _get(f"{ready['api']}/state")
            if status["role"] == "master" and node_id in state["nodeMemory"]:
                break
            assert time.monotonic() < deadline, f"no master with its own samples: {status}"
            time.sleep(0.1)
        assert status["members"] == [node_id]
        assert status["session"] == f"1/{node_id}"
        assert state["nodeMemory"][node_id]["ramTotal"]["inBytes"] > 0
    finally:
        node.send_signal(signal.SIGTERM)
        assert node.wait(timeout=30) == 0
        for stream in (node.stdout, node.stderr):
            if stream is not None:
                stream.close()
