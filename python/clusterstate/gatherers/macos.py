"""Parsers of the macOS commands exo's monitors read, as pure functions.

Each takes a command's text output and returns models, so they are tested against recorded
outputs (``tests/data/macos/``) on any platform. They raise :class:`MalformedOutputError` on output
they cannot read, which the gatherer counts as a failed sample (logged, backed off, retried).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clusterstate.models import (
    InterfaceType,
    MacmonMetrics,
    Memory,
    MemoryUsage,
    SystemPerformanceProfile,
    ThunderboltConnection,
    ThunderboltIdentifier,
)

from .errors import MalformedOutputError

__all__ = [
    "HardwarePort",
    "interface_types",
    "parse_bridge_members",
    "parse_bridge_services",
    "parse_computer_name",
    "parse_hardware_overview",
    "parse_hardware_ports",
    "parse_macmon_line",
    "parse_rdma_ctl_status",
    "parse_service_enabled",
    "parse_thunderbolt",
    "thunderbolt_devices",
]


@dataclass(frozen=True)
class HardwarePort:
    """One block of ``networksetup -listallhardwareports``."""

    name: str
    device: str
    ethernet_address: str | None = None


def parse_hardware_ports(text: str) -> list[HardwarePort]:
    """``networksetup -listallhardwareports``: blocks of ``Hardware Port:``, ``Device:``, ``Ethernet Address:``.

    Raises:
        MalformedOutputError: no port at all (the command always lists at least one), or a port without a device.
    """
    ports: list[HardwarePort] = []
    name: str | None = None
    device: str | None = None
    address: str | None = None

    def close() -> None:
        nonlocal name, device, address
        if name is not None:
            if not device:
                raise MalformedOutputError(f"hardware port {name!r} has no device")
            ports.append(HardwarePort(name, device, address))
        name = device = address = None

    for raw in text.splitlines():
        key, sep, value = raw.strip().partition(":")
        if not sep:
            continue
        value = value.strip()
        if key == "Hardware Port":
            close()
            name = value
        elif key == "Device" and name is not None:
            device = value
        elif key == "Ethernet Address" and name is not None:
            address = value if value and value != "N/A" else None
    close()
    if not ports:
        raise MalformedOutputError("no hardware port in networksetup output")
    return ports


_EN_DEVICE = re.compile(r"en\d+")


def interface_types(ports: Iterable[HardwarePort]) -> dict[str, InterfaceType]:
    """exo's typing of devices by hardware port name.

    Wi-Fi → wifi; a name with Ethernet or LAN → ethernet; a name starting "Thunderbolt" →
    thunderbolt; then any ``enN`` device other than en0/en1 is downgraded to maybe_ethernet (the raw
    Thunderbolt ports en2… and USB adapters), so in practice only ``bridge0`` ("Thunderbolt Bridge")
    stays thunderbolt. Devices not listed are unknown.
    """
    types: dict[str, InterfaceType] = {}
    for port in ports:
        kind: InterfaceType = "unknown"
        if "Wi-Fi" in port.name:
            kind = "wifi"
        elif "Ethernet" in port.name or "LAN" in port.name:
            kind = "ethernet"
        elif port.name.startswith("Thunderbolt"):
            kind = "thunderbolt"
        if _EN_DEVICE.fullmatch(port.device) and port.device not in ("en0", "en1"):
            kind = "maybe_ethernet"
        types[port.device] = kind
    return types


def thunderbolt_devices(ports: Iterable[HardwarePort]) -> set[str]:
    """Devices of the ports whose name mentions Thunderbolt (the raw ports and the bridge)."""
    return {port.device for port in ports if "thunderbolt" in port.name.lower()}


# --- system_profiler SPThunderboltDataType -json ---


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _Receptacle(_Loose):
    receptacle_id_key: str | None = None
    current_speed_key: str | None = None


class _TbDevice(_Loose):
    domain_uuid_key: str | None = None


class _TbBus(_Loose):
    domain_uuid_key: str | None = None
    current_speed_key: str | None = None
    receptacle_1_tag: _Receptacle | None = None
    items: list[_TbDevice] = Field(default_factory=list, alias="_items")


class _TbReport(_Loose):
    buses: list[_TbBus] = Field(alias="SPThunderboltDataType")


def parse_thunderbolt(
    profiler_json: str | bytes, port_devices: Mapping[str, str]
) -> tuple[list[ThunderboltIdentifier], list[ThunderboltConnection]]:
    """``system_profiler SPThunderboltDataType -json`` into identifiers and connections.

    Per bus entry: the identifier is (``domain_uuid_key``, ``rdma_`` + the device of the hardware
    port named ``Thunderbolt <receptacle_id_key>``, ``current_speed_key``); the connection is (own
    ``domain_uuid_key``, the first ``_items[].domain_uuid_key``). A bus without a receptacle, or
    whose port is not in ``port_devices`` (hardware port name → device), has no identifier (exo
    asserted here; a missing port is not worth a crash); a bus with nothing attached has no
    connection.

    Raises:
        MalformedOutputError: not JSON, or no ``SPThunderboltDataType`` list.
    """
    try:
        report = _TbReport.model_validate_json(profiler_json)
    except ValidationError as error:
        raise MalformedOutputError(f"system_profiler SPThunderboltDataType: {error}") from error
    idents: list[ThunderboltIdentifier] = []
    conns: list[ThunderboltConnection] = []
    for bus in report.buses:
        if bus.domain_uuid_key is None:
            continue
        receptacle = bus.receptacle_1_tag
        if receptacle is not None and receptacle.receptacle_id_key is not None:
            device = port_devices.get(f"Thunderbolt {receptacle.receptacle_id_key}")
            if device is not None:
                speed = receptacle.current_speed_key or bus.current_speed_key or ""
                idents.append(
                    ThunderboltIdentifier(
                        rdma_interface=f"rdma_{device}", domain_uuid=bus.domain_uuid_key, link_speed=speed
                    )
                )
        sink = next((item.domain_uuid_key for item in bus.items if item.domain_uuid_key is not None), None)
        if sink is not None:
            conns.append(ThunderboltConnection(source_uuid=bus.domain_uuid_key, sink_uuid=sink))
    return idents, conns


# --- Thunderbolt Bridge: service order, ifconfig members, service enabled ---

_SERVICE = re.compile(r"^\((?:\d+|\*)\)\s+(?P<name>.+)$")
_SERVICE_DEVICE = re.compile(r"Device:\s*(?P<device>[^)\s]+)\)")


def parse_bridge_services(text: str) -> dict[str, str]:
    """``networksetup -listnetworkserviceorder``: bridge device → network service name.

    Services look like ``(1) Name`` (or ``(*) Name`` when disabled) followed by
    ``(Hardware Port: …, Device: bridge0)``; only ``bridgeN`` devices are kept.
    """
    services: dict[str, str] = {}
    current: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("(Hardware Port:"):
            match = _SERVICE_DEVICE.search(line)
            if current is not None and match and match["device"].startswith("bridge"):
                services[match["device"]] = current
            current = None
        elif match := _SERVICE.match(line):
            current = match["name"].strip()
    return services


def parse_bridge_members(ifconfig_text: str) -> set[str]:
    """``ifconfig bridgeN``: the interfaces of its ``member:`` lines."""
    members: set[str] = set()
    for raw in ifconfig_text.splitlines():
        parts = raw.split()
        if len(parts) >= 2 and parts[0] == "member:":
            members.add(parts[1])
    return members


def parse_service_enabled(text: str) -> bool:
    """``networksetup -getnetworkserviceenabled <service>``: ``Enabled`` or ``Disabled``.

    Raises:
        MalformedOutputError: anything else (e.g. an error message about an unknown service).
    """
    answer = text.strip().lower()
    if answer in ("enabled", "disabled"):
        return answer == "enabled"
    raise MalformedOutputError(f"networksetup -getnetworkserviceenabled said {text.strip()!r}")


def parse_rdma_ctl_status(text: str) -> bool | None:
    """``rdma_ctl status``: True if it says enabled, False if disabled, None (emit nothing) otherwise.

    "disabled" contains "enabled", so it is looked for first.
    """
    answer = text.lower()
    if "disabled" in answer:
        return False
    if "enabled" in answer:
        return True
    return None


# --- identity ---


def parse_hardware_overview(text: str) -> tuple[str, str]:
    """``system_profiler SPHardwareDataType``: the ``Model Name:`` and ``Chip:`` values.

    Missing lines give exo's "Unknown Model" / "Unknown Chip".
    """
    model, chip = "Unknown Model", "Unknown Chip"
    for raw in text.splitlines():
        key, sep, value = raw.strip().partition(":")
        if not sep or not value.strip():
            continue
        if key == "Model Name":
            model = value.strip()
        elif key == "Chip":
            chip = value.strip()
    return model, chip


def parse_computer_name(text: str, fallback: str) -> str:
    """``scutil --get ComputerName``: the name, or ``fallback`` (the hostname) if empty."""
    return text.strip() or fallback


# --- macmon pipe ---


class _MacmonTemp(_Loose):
    gpu_temp_avg: float


class _MacmonMemory(_Loose):
    ram_total: int = Field(ge=0)
    ram_usage: int = Field(ge=0)
    swap_total: int = Field(ge=0)
    swap_usage: int = Field(ge=0)


class _MacmonLine(_Loose):
    temp: _MacmonTemp
    memory: _MacmonMemory
    gpu_usage: tuple[float, float]
    pcpu_usage: tuple[float, float]
    ecpu_usage: tuple[float, float]
    sys_power: float


def parse_macmon_line(line: str | bytes) -> MacmonMetrics:
    """One JSON line of ``macmon pipe``.

    Usages are ``[MHz, fraction]`` pairs (the second element is used); ``temp.gpu_temp_avg`` and
    ``sys_power`` are copied; available memory is total - usage. Unknown fields are ignored.

    Raises:
        MalformedOutputError: not JSON, a missing field, or usage above total.
    """
    try:
        raw = _MacmonLine.model_validate_json(line)
    except ValidationError as error:
        raise MalformedOutputError(f"macmon line: {error}") from error
    memory = raw.memory
    if memory.ram_usage > memory.ram_total or memory.swap_usage > memory.swap_total:
        raise MalformedOutputError("macmon line: memory usage above total")
    return MacmonMetrics(
        system_profile=SystemPerformanceProfile(
            gpu_usage=raw.gpu_usage[1],
            temp=raw.temp.gpu_temp_avg,
            sys_power=raw.sys_power,
            pcpu_usage=raw.pcpu_usage[1],
            ecpu_usage=raw.ecpu_usage[1],
        ),
        memory=MemoryUsage(
            ram_total=Memory(in_bytes=memory.ram_total),
            ram_available=Memory(in_bytes=memory.ram_total - memory.ram_usage),
            swap_total=Memory(in_bytes=memory.swap_total),
            swap_available=Memory(in_bytes=memory.swap_total - memory.swap_usage),
        ),
    )
