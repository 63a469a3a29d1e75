"""The real monitors on this (Linux) machine, ``clusterstate gather`` and the demo's local row.

Values are compared with psutil and shutil read in the test: exactly for what does not move (RAM
and disk totals, interfaces), within a tolerance for what does (available memory, free disk).
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import sys
from pathlib import Path

import anyio
import psutil
import pytest

from clusterstate.cli import main
from clusterstate.cli.demo import demo_config
from clusterstate.gatherers import DEFAULT_SCHEDULES, GathererSettings, default_monitors, gather_once, node_config
from clusterstate.gatherers.local import append_local, local_node_id
from clusterstate.models import (
    IndexedEvent,
    Memory,
    MemoryUsage,
    MiscData,
    NodeConfig,
    NodeDiskUsage,
    NodeGatheredInfo,
    NodeId,
    NodeNetworkInterfaces,
    StaticNodeInformation,
)
from clusterstate.reference import fold
from clusterstate.trace import generate

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads this Linux machine")

MIB = 1024 * 1024
LINUX_MONITORS = ["memory", "network", "misc", "static", "disk", "node_config"]


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Default settings (the CLI's) must not read or create files in the real home directory.
    monkeypatch.setenv("CLUSTERSTATE_CONFIG_HOME", str(tmp_path / "home-config"))
    monkeypatch.setenv("CLUSTERSTATE_MODELS_DIR", str(tmp_path / "home-models"))


@pytest.fixture
def settings(tmp_path: Path) -> GathererSettings:
    return GathererSettings(platform="linux", disk_path=tmp_path / "models", config_dir=tmp_path / "config")


def _ip_addresses() -> set[tuple[str, str]]:
    return {
        (name, address.address)
        for name, addresses in psutil.net_if_addrs().items()
        for address in addresses
        if address.family in (socket.AF_INET, socket.AF_INET6)
    }


def _check_real_values(by_kind: dict[type, object], disk_path: Path) -> None:
    memory = by_kind[MemoryUsage]
    assert isinstance(memory, MemoryUsage)
    virtual, swap = psutil.virtual_memory(), psutil.swap_memory()
    assert memory.ram_total.in_bytes == virtual.total
    assert memory.swap_total.in_bytes == swap.total
    # Available memory moves between the two reads: within 5% of RAM (or 256 MiB) of psutil's.
    tolerance = max(256 * MIB, virtual.total // 20)
    assert abs(memory.ram_available.in_bytes - virtual.available) <= tolerance
    assert abs(memory.swap_available.in_bytes - swap.free) <= tolerance
    assert 0 < memory.ram_available.in_bytes <= memory.ram_total.in_bytes

    disk = by_kind[NodeDiskUsage]
    assert isinstance(disk, NodeDiskUsage)
    usage = shutil.disk_usage(disk_path)
    assert disk.disk_usage.total.in_bytes == usage.total
    assert abs(disk.disk_usage.available.in_bytes - usage.free) <= max(256 * MIB, usage.total // 100)

    network = by_kind[NodeNetworkInterfaces]
    assert isinstance(network, NodeNetworkInterfaces)
    assert {(iface.name, iface.ip_address) for iface in network.ifaces} == _ip_addresses()
    assert len(network.ifaces) == len(_ip_addresses())  # one entry per address
    assert {iface.interface_type for iface in network.ifaces} <= {"unknown"}  # Linux: untyped, as in exo

    assert by_kind[MiscData] == MiscData(friendly_name=socket.gethostname())
    static = by_kind[StaticNodeInformation]
    assert isinstance(static, StaticNodeInformation)
    assert (static.model, static.chip, static.os_version) == ("Unknown Model", "Unknown Chip", "Linux")
    assert by_kind[NodeConfig] == NodeConfig()


def test_every_linux_monitor_samples_real_values_that_validate(settings: GathererSettings) -> None:
    monitors = default_monitors(settings)
    assert [m.name for m in monitors] == LINUX_MONITORS
    for monitor in monitors:
        schedule = DEFAULT_SCHEDULES[monitor.name]
        assert (monitor.interval_s, monitor.timeout_s) == (schedule.interval_s, schedule.timeout_s)
    result = anyio.run(gather_once, NodeId("me"), monitors)
    assert result.failures == {}
    assert len(result.events) == len(LINUX_MONITORS)
    for event in result.events:
        # Each sample is a valid event of its type, and survives the wire.
        assert NodeGatheredInfo.model_validate_json(event.model_dump_json()) == event
        assert event.node_id == "me"
    # The models directory does not exist yet: its nearest existing parent is measured.
    _check_real_values({type(event.info): event.info for event in result.events}, settings.disk_path.parent)


def test_memory_override_like_exo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OVERRIDE_MEMORY_MB", "2048")
    settings = GathererSettings(platform="linux", disk_path=tmp_path, config_dir=tmp_path)
    assert settings.memory_override_mb == 2048
    result = anyio.run(gather_once, NodeId("me"), default_monitors(settings)[:1])
    (event,) = result.events
    assert isinstance(event.info, MemoryUsage)
    assert event.info.ram_available == Memory(in_bytes=2048 * MIB)
    assert event.info.ram_total.in_bytes == psutil.virtual_memory().total


def test_node_config_is_created_and_non_empty_configs_are_rejected(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config_dir = tmp_path / "nested" / "config"
    assert node_config(config_dir) == NodeConfig()
    assert (config_dir / "config.toml").read_text() == ""
    (config_dir / "config.toml").write_text('name = "box"\n')
    with caplog.at_level(logging.WARNING):
        assert node_config(config_dir) is None
    assert "NodeConfig does not know" in caplog.text
    (config_dir / "config.toml").write_text("not = = toml")
    assert node_config(config_dir) is None
    missing = tmp_path / "missing"
    assert node_config(missing, create=False) == NodeConfig()
    assert not missing.exists()


def test_gather_json_reports_this_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OVERRIDE_MEMORY_MB", raising=False)
    args = ["gather", "--json", "--disk-path", str(tmp_path), "--config-dir", str(tmp_path / "config")]
    assert main([*args, "--node-id", "node-7"]) == 0
    events = [NodeGatheredInfo.model_validate(item) for item in json.loads(capsys.readouterr().out)]
    assert [type(event.info) for event in events] == [
        MemoryUsage,
        NodeNetworkInterfaces,
        MiscData,
        StaticNodeInformation,
        NodeDiskUsage,
        NodeConfig,
    ]
    assert {event.node_id for event in events} == {"node-7"}
    _check_real_values({type(event.info): event.info for event in events}, tmp_path)


def test_gather_live_shows_each_monitor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["gather", "--duration", "0.5", "--disk-path", str(tmp_path), "--config-dir", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert local_node_id() in out
    for name in LINUX_MONITORS:
        assert name in out
    assert socket.gethostname() in out


def test_gather_rejects_a_bad_duration(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gather", "--duration", "0"]) == 2
    assert "argument --duration: must be a finite number in (0, " in capsys.readouterr().err


def test_demo_shows_this_machine_next_to_the_generated_peers(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["demo", "--offline", "--nodes", "4", "--duration", "30"]) == 0
    out = capsys.readouterr().out
    (row,) = [line for line in out.splitlines() if local_node_id() in line]
    assert socket.gethostname() in row
    assert row.rstrip().endswith("connected")
    assert out.count("connected") == 5  # four generated nodes and this one
    assert "topology 5 nodes" in out


def test_demo_json_includes_this_machine_unless_no_local(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--offline", "--nodes", "3", "--duration", "20", "--json"]) == 0
    with_local = json.loads(capsys.readouterr().out)
    assert main(["demo", "--offline", "--nodes", "3", "--duration", "20", "--json", "--no-local"]) == 0
    without = json.loads(capsys.readouterr().out)
    me = local_node_id()
    assert me in with_local["node_memory"]
    assert with_local["node_identities"][me]["friendly_name"] == socket.gethostname()
    assert me not in without["node_memory"]
    trace = generate(demo_config(3, 20.0, 0))
    assert with_local["last_event_index_by_node"][me] > trace[-1].idx


def test_local_events_are_indexed_after_the_trace() -> None:
    trace = generate(demo_config(2, 10.0, 0))
    local = [NodeGatheredInfo(node_id=NodeId("me"), info=MiscData(friendly_name="me"))] * 2
    combined = append_local(trace, local)
    assert [event.idx for event in combined] == list(range(len(trace) + 2))
    assert combined[-1] == IndexedEvent(idx=len(trace) + 1, origin=NodeId("me"), event=local[1])
    assert fold(combined).node_identities[NodeId("me")].friendly_name == "me"
