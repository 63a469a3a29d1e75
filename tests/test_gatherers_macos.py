"""macOS parsers and monitors against recorded command outputs (tests/data/macos, see its README).

These outputs are reconstructed from the documented formats, not captured on a Mac; the expected
values below are written by hand from them.
"""

from __future__ import annotations

import socket
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import anyio
import psutil
import pytest

from clusterstate.gatherers import GathererSettings, MalformedOutputError, default_monitors, gather_once, macos
from clusterstate.gatherers.sources import (
    bridge_sampler,
    macmon_opener,
    misc_sampler,
    network_sampler,
    rdma_sampler,
    static_sampler,
    thunderbolt_sampler,
)
from clusterstate.models import (
    MacmonMetrics,
    MacThunderboltConnections,
    MacThunderboltIdentifiers,
    Memory,
    MemoryUsage,
    MiscData,
    NodeGatheredInfo,
    NodeId,
    NodeNetworkInterfaces,
    RdmaCtlStatus,
    StaticNodeInformation,
    SystemPerformanceProfile,
    ThunderboltBridgeInfo,
    ThunderboltBridgeStatus,
    ThunderboltConnection,
    ThunderboltIdentifier,
)

DATA = Path(__file__).parent / "data" / "macos"
GIB = 1024**3


def recorded(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


# Recorded Mac: bus 0 (receptacle 1, en2) and bus 1 (receptacle 2, en3) cabled to Macs.
IDENTS = [
    ThunderboltIdentifier(
        rdma_interface="rdma_en2", domain_uuid="0C6E4F2A-7B1D-4C3E-9A58-1F2D3E4A5B60", link_speed="Up to 80 Gb/s"
    ),
    ThunderboltIdentifier(
        rdma_interface="rdma_en3", domain_uuid="1D7F5A3B-8C2E-4D4F-AB69-203E4F5A6C71", link_speed="Up to 40 Gb/s"
    ),
    ThunderboltIdentifier(
        rdma_interface="rdma_en4", domain_uuid="2E805B4C-9D3F-4E50-BC7A-314F5A6B7D82", link_speed="Up to 80 Gb/s"
    ),
    ThunderboltIdentifier(
        rdma_interface="rdma_en5", domain_uuid="3F916C5D-AE40-4F61-CD8B-425A6B7C8E93", link_speed="Up to 40 Gb/s"
    ),
]
CONNS = [
    ThunderboltConnection(
        source_uuid="0C6E4F2A-7B1D-4C3E-9A58-1F2D3E4A5B60", sink_uuid="A1B2C3D4-E5F6-4711-8899-AABBCCDDEE01"
    ),
    ThunderboltConnection(
        source_uuid="1D7F5A3B-8C2E-4D4F-AB69-203E4F5A6C71", sink_uuid="B2C3D4E5-F607-4822-99AA-BBCCDDEEFF02"
    ),
    ThunderboltConnection(
        source_uuid="40A27D6E-BF51-4072-DE9C-536B7C8D9FA4", sink_uuid="C3D4E5F6-0718-4933-AABB-CCDDEEFF0003"
    ),
]


def test_hardware_ports() -> None:
    ports = macos.parse_hardware_ports(recorded("networksetup_listallhardwareports.txt"))
    assert [(port.name, port.device) for port in ports] == [
        ("Ethernet", "en0"),
        ("Wi-Fi", "en1"),
        ("Thunderbolt Bridge", "bridge0"),
        ("Thunderbolt 1", "en2"),
        ("Thunderbolt 2", "en3"),
        ("Thunderbolt 3", "en4"),
        ("Thunderbolt 4", "en5"),
        ("USB 10/100/1000 LAN", "en8"),
        ("iPhone USB", "en9"),
    ]
    assert ports[0].ethernet_address == "1c:1d:d3:e0:5a:01"
    assert ports[-1].ethernet_address is None  # "N/A"


def test_interface_types_follow_exo() -> None:
    types = macos.interface_types(macos.parse_hardware_ports(recorded("networksetup_listallhardwareports.txt")))
    assert types == {
        "en0": "ethernet",
        "en1": "wifi",
        "bridge0": "thunderbolt",  # the only port that stays thunderbolt
        "en2": "maybe_ethernet",  # raw Thunderbolt ports are downgraded…
        "en3": "maybe_ethernet",
        "en4": "maybe_ethernet",
        "en5": "maybe_ethernet",
        "en8": "maybe_ethernet",  # …as is every enN beyond en0/en1, a USB LAN adapter included
        "en9": "maybe_ethernet",
    }


@pytest.mark.parametrize("text", ["", "VLAN Configurations\n===================\n", "Hardware Port: Wi-Fi\n"])
def test_hardware_ports_rejects_garbage(text: str) -> None:
    with pytest.raises(MalformedOutputError):
        macos.parse_hardware_ports(text)


def test_thunderbolt_identifiers_and_connections() -> None:
    ports = macos.parse_hardware_ports(recorded("networksetup_listallhardwareports.txt"))
    idents, conns = macos.parse_thunderbolt(
        recorded("system_profiler_spthunderboltdatatype.json"), {port.name: port.device for port in ports}
    )
    # Bus 4 sits on receptacle 5, which has no hardware port here: a connection but no identifier.
    # Bus 2 has nothing attached and bus 3 a dock without a domain UUID: identifiers but no connection.
    assert idents == IDENTS
    assert conns == CONNS


@pytest.mark.parametrize("text", ["not json", "{}", '{"SPThunderboltDataType": {"a": 1}}', "[]"])
def test_thunderbolt_rejects_garbage(text: str) -> None:
    with pytest.raises(MalformedOutputError):
        macos.parse_thunderbolt(text, {})


def test_thunderbolt_with_nothing_attached() -> None:
    assert macos.parse_thunderbolt('{"SPThunderboltDataType": []}', {}) == ([], [])


def test_bridge_services_members_and_enabled() -> None:
    assert macos.parse_bridge_services(recorded("networksetup_listnetworkserviceorder.txt")) == {
        "bridge0": "Thunderbolt Bridge"
    }
    assert macos.parse_bridge_services(recorded("networksetup_listnetworkserviceorder_bridge_disabled.txt")) == {
        "bridge0": "Thunderbolt Bridge"
    }
    assert macos.parse_bridge_services(recorded("networksetup_listnetworkserviceorder_no_bridge.txt")) == {}
    assert macos.parse_bridge_members(recorded("ifconfig_bridge0.txt")) == {"en2", "en3", "en4", "en5"}
    assert macos.parse_service_enabled(recorded("networksetup_getnetworkserviceenabled_enabled.txt")) is True
    assert macos.parse_service_enabled(recorded("networksetup_getnetworkserviceenabled_disabled.txt")) is False
    with pytest.raises(MalformedOutputError):
        macos.parse_service_enabled("** Error: The parameters were not valid.\n")


def test_rdma_ctl_status() -> None:
    assert macos.parse_rdma_ctl_status(recorded("rdma_ctl_status_enabled.txt")) is True
    assert macos.parse_rdma_ctl_status(recorded("rdma_ctl_status_disabled.txt")) is False
    assert macos.parse_rdma_ctl_status(recorded("rdma_ctl_status_unknown.txt")) is None


def test_hardware_overview_and_names() -> None:
    assert macos.parse_hardware_overview(recorded("system_profiler_sphardwaredatatype.txt")) == (
        "Mac Studio",
        "Apple M3 Ultra",
    )
    assert macos.parse_hardware_overview("Hardware:\n") == ("Unknown Model", "Unknown Chip")
    assert macos.parse_computer_name(recorded("scutil_get_computername.txt"), "host") == "Alice's Mac Studio"
    assert macos.parse_computer_name("\n", "host") == "host"


def test_macmon_lines() -> None:
    first, second = (macos.parse_macmon_line(line) for line in recorded("macmon_pipe.jsonl").splitlines())
    assert first == MacmonMetrics(
        system_profile=SystemPerformanceProfile(
            gpu_usage=0.01, temp=39.75, sys_power=31.75, pcpu_usage=0.0625, ecpu_usage=0.125
        ),
        memory=MemoryUsage(
            ram_total=Memory(in_bytes=512 * GIB),
            ram_available=Memory(in_bytes=512 * GIB - 105 * GIB),
            swap_total=Memory(in_bytes=0),
            swap_available=Memory(in_bytes=0),
        ),
    )
    assert second.system_profile == SystemPerformanceProfile(
        gpu_usage=0.875, temp=41.5, sys_power=152.25, pcpu_usage=0.75, ecpu_usage=0.5
    )
    assert second.memory.ram_available == Memory(in_bytes=512 * GIB - 106 * GIB)
    assert second.memory.swap_available == Memory(in_bytes=2 * GIB - GIB // 2)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "{not json",
        '{"temp": {"gpu_temp_avg": 40}}',
        '{"temp":{"gpu_temp_avg":40},"memory":{"ram_total":1,"ram_usage":2,"swap_total":0,"swap_usage":0},'
        '"ecpu_usage":[1,0],"pcpu_usage":[1,0],"gpu_usage":[1,0],"sys_power":1}',
    ],
)
def test_macmon_rejects_garbage(line: str) -> None:
    with pytest.raises(MalformedOutputError):
        macos.parse_macmon_line(line)


# --- the macOS monitors, composed over a fake command runner ---

COMMANDS = {
    ("networksetup", "-listallhardwareports"): "networksetup_listallhardwareports.txt",
    ("networksetup", "-listnetworkserviceorder"): "networksetup_listnetworkserviceorder.txt",
    ("ifconfig", "bridge0"): "ifconfig_bridge0.txt",
    ("networksetup", "-getnetworkserviceenabled", "Thunderbolt Bridge"): (
        "networksetup_getnetworkserviceenabled_enabled.txt"
    ),
    ("system_profiler", "SPThunderboltDataType", "-json"): "system_profiler_spthunderboltdatatype.json",
    ("system_profiler", "SPHardwareDataType"): "system_profiler_sphardwaredatatype.txt",
    ("rdma_ctl", "status"): "rdma_ctl_status_enabled.txt",
    ("scutil", "--get", "ComputerName"): "scutil_get_computername.txt",
    ("sw_vers", "-buildVersion"): "sw_vers_buildversion.txt",
}


class FakeMac:
    """Answers commands from the recorded outputs; ``overrides`` swaps a command's file."""

    def __init__(self, overrides: dict[tuple[str, ...], str] | None = None) -> None:
        self.files = {**COMMANDS, **(overrides or {})}
        self.ran: list[tuple[str, ...]] = []

    async def __call__(self, command: Sequence[str]) -> str:
        self.ran.append(tuple(command))
        return recorded(self.files[tuple(command)])


def sample(sampler: object) -> list[object]:
    async def main() -> list[object]:
        return list(await sampler())  # type: ignore[operator]

    return anyio.run(main)


def test_thunderbolt_monitor() -> None:
    assert sample(thunderbolt_sampler(FakeMac())) == [
        MacThunderboltIdentifiers(idents=IDENTS),
        MacThunderboltConnections(conns=CONNS),
    ]


def test_bridge_monitor_enabled_disabled_and_absent() -> None:
    enabled = ThunderboltBridgeInfo(
        status=ThunderboltBridgeStatus(enabled=True, exists=True, service_name="Thunderbolt Bridge")
    )
    assert sample(bridge_sampler(FakeMac())) == [enabled]
    disabled = FakeMac(
        {
            ("networksetup", "-getnetworkserviceenabled", "Thunderbolt Bridge"): (
                "networksetup_getnetworkserviceenabled_disabled.txt"
            )
        }
    )
    assert sample(bridge_sampler(disabled)) == [
        ThunderboltBridgeInfo(
            status=ThunderboltBridgeStatus(enabled=False, exists=True, service_name="Thunderbolt Bridge")
        )
    ]
    absent = FakeMac(
        {("networksetup", "-listnetworkserviceorder"): "networksetup_listnetworkserviceorder_no_bridge.txt"}
    )
    assert sample(bridge_sampler(absent)) == [
        ThunderboltBridgeInfo(status=ThunderboltBridgeStatus(enabled=False, exists=False))
    ]
    assert ("ifconfig", "bridge0") not in absent.ran


def test_rdma_static_and_misc_monitors() -> None:
    assert sample(rdma_sampler(FakeMac())) == [RdmaCtlStatus(enabled=True)]
    unknown = FakeMac({("rdma_ctl", "status"): "rdma_ctl_status_unknown.txt"})
    assert sample(rdma_sampler(unknown)) == []  # neither word: nothing emitted, as in exo

    darwin = GathererSettings(platform="darwin")
    (static,) = sample(static_sampler(darwin, FakeMac()))
    assert isinstance(static, StaticNodeInformation)
    assert (static.model, static.chip, static.os_build_version) == ("Mac Studio", "Apple M3 Ultra", "24D81")
    assert sample(misc_sampler(darwin, FakeMac())) == [MiscData(friendly_name="Alice's Mac Studio")]


def test_network_monitor_types_interfaces_from_hardware_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_addrs() -> dict[str, list[Addr]]:
        return {
            "lo0": [addr(socket.AF_INET, "127.0.0.1", "255.0.0.0", None, None)],
            "en0": [
                addr(psutil.AF_LINK, "1c:1d:d3:e0:5a:01", None, None, None),  # not an IP address: skipped
                addr(socket.AF_INET, "192.168.1.20", "255.255.255.0", None, None),
                addr(socket.AF_INET6, "fe80::1c1d:d3ff:fee0:5a01%en0", "ffff:ffff:ffff:ffff::", None, None),
            ],
            "bridge0": [addr(socket.AF_INET, "169.254.10.2", "255.255.0.0", None, None)],
            "en2": [addr(socket.AF_INET6, "fe80::34a1:8cff:fe4b:20c0%en2", None, None, None)],
        }

    monkeypatch.setattr(psutil, "net_if_addrs", fake_addrs)
    (info,) = sample(network_sampler(GathererSettings(platform="darwin"), FakeMac()))
    assert isinstance(info, NodeNetworkInterfaces)
    assert [(i.name, i.ip_address, i.interface_type) for i in info.ifaces] == [
        ("lo0", "127.0.0.1", "unknown"),
        ("en0", "192.168.1.20", "ethernet"),
        ("en0", "fe80::1c1d:d3ff:fee0:5a01%en0", "ethernet"),
        ("bridge0", "169.254.10.2", "thunderbolt"),
        ("en2", "fe80::34a1:8cff:fe4b:20c0%en2", "maybe_ethernet"),
    ]


class Addr(NamedTuple):
    """The fields of psutil's ``snicaddr``."""

    family: int
    address: str
    netmask: str | None
    broadcast: str | None
    ptp: str | None


addr = Addr


def _fake_macmon(tmp_path: Path, body: str) -> str:
    script = tmp_path / "macmon"
    script.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_macos_monitor_set_runs_end_to_end(tmp_path: Path) -> None:
    # macmon is a stand-in script printing the recorded lines then waiting, as `macmon pipe` does.
    macmon = _fake_macmon(tmp_path, f"cat '{DATA / 'macmon_pipe.jsonl'}'\nexec sleep 30")
    tools = {"macmon": macmon, "rdma_ctl": "/usr/bin/rdma_ctl"}
    settings = GathererSettings(platform="darwin", disk_path=tmp_path, config_dir=tmp_path / "config")
    monitors = default_monitors(settings, run=FakeMac(), which=tools.get)
    assert [m.name for m in monitors] == [
        "macmon",
        "network",
        "thunderbolt",
        "thunderbolt_bridge",
        "rdma_ctl",
        "misc",
        "static",
        "disk",
        "node_config",
    ]
    result = anyio.run(gather_once, NodeId("mac"), monitors)
    assert result.failures == {}
    kinds = [type(event.info).__name__ for event in result.events]
    assert kinds == [
        "MacmonMetrics",
        "NodeNetworkInterfaces",
        "MacThunderboltIdentifiers",
        "MacThunderboltConnections",
        "ThunderboltBridgeInfo",
        "RdmaCtlStatus",
        "MiscData",
        "StaticNodeInformation",
        "NodeDiskUsage",
        "NodeConfig",
    ]
    first_line = recorded("macmon_pipe.jsonl").splitlines()[0]
    assert result.events[0].info == macos.parse_macmon_line(first_line)
    for event in result.events:
        assert NodeGatheredInfo.model_validate_json(event.model_dump_json()) == event


def test_macos_without_macmon_or_rdma_ctl_falls_back_to_psutil_memory(tmp_path: Path) -> None:
    settings = GathererSettings(platform="darwin", disk_path=tmp_path, config_dir=tmp_path)
    names = [m.name for m in default_monitors(settings, run=FakeMac(), which=lambda _: None)]
    assert names == ["memory", "network", "thunderbolt", "thunderbolt_bridge", "misc", "static", "disk", "node_config"]


def test_macmon_stream_that_prints_garbage_fails(tmp_path: Path) -> None:
    opener = macmon_opener(_fake_macmon(tmp_path, "echo '{not json'; exec sleep 30"))

    async def first() -> None:
        async with opener() as samples:
            await anext(samples)

    with pytest.raises(MalformedOutputError):
        anyio.run(first)
