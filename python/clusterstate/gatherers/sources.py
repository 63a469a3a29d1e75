"""The real monitors: what each one reads on this machine, at exo's rates.

| monitor | platforms | interval | timeout |
|---|---|---|---|
| ``macmon`` | macOS with ``macmon`` on PATH | stream, 1 s | 10 s without a line restarts it |
| ``memory`` | Linux, and macOS without macmon | 1 s | 5 s |
| ``network`` | all | 10 s | 10 s |
| ``thunderbolt`` | macOS | 5 s | 30 s |
| ``thunderbolt_bridge`` | macOS | 10 s | 30 s |
| ``rdma_ctl`` | macOS with ``rdma_ctl`` on PATH | 10 s | 5 s |
| ``misc`` (friendly name) | all | 60 s | 10 s |
| ``static`` (model, chip, OS) | all | 60 s | 30 s |
| ``disk`` | all | 30 s | 5 s |
| ``node_config`` | all | once | 5 s |

Timeouts exo did not have (memory, node config, macmon's watchdog) are ours. Every value can be
overridden (:class:`GathererSettings`). Blocking library calls run in a worker thread, at most one
per monitor at a time (a call that hung past its timeout makes the next samples fail fast with
:class:`MonitorBusyError` instead of piling up threads); commands run as subprocesses, killed when
their sample times out.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import socket
import subprocess
import sys
import tomllib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread
import psutil
from anyio.streams.buffered import BufferedByteReceiveStream

from clusterstate.models import (
    DiskUsage,
    GatheredInfo,
    InterfaceType,
    MacThunderboltConnections,
    MacThunderboltIdentifiers,
    Memory,
    MemoryUsage,
    MiscData,
    NetworkInterfaceInfo,
    NodeConfig,
    NodeDiskUsage,
    NodeNetworkInterfaces,
    RdmaCtlStatus,
    StaticNodeInformation,
    ThunderboltBridgeInfo,
    ThunderboltBridgeStatus,
)

from . import macos
from .errors import MalformedOutputError, MonitorBusyError
from .monitor import Monitor, PollMonitor, Sampler, StreamMonitor, StreamOpener

__all__ = [
    "DEFAULT_SCHEDULES",
    "CommandRunner",
    "GathererSettings",
    "Schedule",
    "default_interval_s",
    "default_monitors",
    "disk_usage",
    "memory_usage",
    "network_interfaces",
    "node_config",
    "run_command",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Schedule:
    """A monitor's interval (``None``: once) and timeout, in seconds."""

    interval_s: float | None
    timeout_s: float


DEFAULT_SCHEDULES: Mapping[str, Schedule] = {
    "macmon": Schedule(1.0, 10.0),
    "memory": Schedule(1.0, 5.0),
    "network": Schedule(10.0, 10.0),
    "thunderbolt": Schedule(5.0, 30.0),
    "thunderbolt_bridge": Schedule(10.0, 30.0),
    "rdma_ctl": Schedule(10.0, 5.0),
    "misc": Schedule(60.0, 10.0),
    "static": Schedule(60.0, 30.0),
    "disk": Schedule(30.0, 5.0),
    "node_config": Schedule(None, 5.0),
}
"""exo's rates, by monitor name: the one table of them (the trace generator and the liveness simulation run their
simulated monitors at these intervals too)."""


def default_interval_s(name: str) -> float:
    """Seconds between two samples of the repeating monitor ``name`` at exo's rate (:data:`DEFAULT_SCHEDULES`).

    Raises:
        KeyError: no monitor has that name.
        ValueError: the monitor samples only once.
    """
    interval = DEFAULT_SCHEDULES[name].interval_s
    if interval is None:
        raise ValueError(f"{name} samples once, it has no interval")
    return interval


def _default_models_dir() -> Path:
    return Path(os.environ.get("CLUSTERSTATE_MODELS_DIR", Path.home() / ".clusterstate" / "models"))


def _default_config_dir() -> Path:
    if "CLUSTERSTATE_CONFIG_HOME" in os.environ:
        return Path(os.environ["CLUSTERSTATE_CONFIG_HOME"])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "clusterstate"


@dataclass(frozen=True)
class GathererSettings:
    """Where the monitors look and how often.

    Attributes:
        disk_path: Directory whose filesystem ``disk`` reports (exo: the models directory). If it does
            not exist yet, its nearest existing parent is measured (the filesystem it will live on).
            Default: ``$CLUSTERSTATE_MODELS_DIR`` or ``~/.clusterstate/models``.
        config_dir: Where ``node_config`` reads (and creates) ``config.toml``. Default:
            ``$CLUSTERSTATE_CONFIG_HOME`` or ``$XDG_CONFIG_HOME/clusterstate`` (``~/.config/clusterstate``).
        schedules: Overrides of :data:`DEFAULT_SCHEDULES`, by monitor name.
        platform: ``sys.platform`` to gather for (``darwin`` selects the macOS monitors).
        memory_override_mb: Reported available RAM in MiB; default ``$OVERRIDE_MEMORY_MB`` as in exo.
        create_config: Create a missing ``config.toml`` (exo does); ``clusterstate demo`` does not.
    """

    disk_path: Path = field(default_factory=_default_models_dir)
    config_dir: Path = field(default_factory=_default_config_dir)
    schedules: Mapping[str, Schedule] = field(default_factory=dict)
    platform: str = sys.platform
    memory_override_mb: float | None = field(default_factory=lambda: _env_override_mb())
    create_config: bool = True

    def schedule(self, name: str) -> Schedule:
        return self.schedules.get(name, DEFAULT_SCHEDULES[name])


def _env_override_mb() -> float | None:
    value = os.environ.get("OVERRIDE_MEMORY_MB")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        logger.warning("ignoring OVERRIDE_MEMORY_MB=%r: not a number", value)
        return None


# --- running blocking code and commands without blocking the loop ---


class _OneThread:
    """Runs a monitor's blocking calls in a worker thread, one at a time.

    On timeout the call is abandoned (a thread cannot be cancelled) and keeps running; while it
    runs, further calls raise :class:`MonitorBusyError` rather than start another thread.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.running = False  # set by the worker thread itself, so a call cancelled before it started cannot wedge it

    async def run(self, func: Callable[[], T]) -> T:
        if self.running:
            raise MonitorBusyError(f"{self.name}: the previous call is still running")

        def call() -> T:
            self.running = True
            try:
                return func()
            finally:
                self.running = False

        return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)


CommandRunner = Callable[[Sequence[str]], Awaitable[str]]
"""Runs a command, returns its stdout (text); raises on a non-zero exit. Injected in tests."""


async def run_command(command: Sequence[str]) -> str:
    """Run ``command`` as a subprocess (killed if the caller is cancelled); its stdout as text.

    Raises:
        MalformedOutputError: the command exited non-zero.
        OSError: it could not be started (e.g. not installed).
    """
    result = await anyio.run_process(list(command), check=False)
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace").strip()
        raise MalformedOutputError(f"{' '.join(command)} exited with {result.returncode}: {stderr}")
    return result.stdout.decode(errors="replace")


# --- Linux and macOS: psutil, shutil, files ---


def memory_usage(override_mb: float | None = None) -> MemoryUsage:
    """RAM and swap from psutil: available RAM (or ``override_mb``) and free swap."""
    virtual = psutil.virtual_memory()
    swap = psutil.swap_memory()
    available = Memory.from_mb(override_mb).in_bytes if override_mb is not None else virtual.available
    return MemoryUsage(
        ram_total=Memory(in_bytes=virtual.total),
        ram_available=Memory(in_bytes=available),
        swap_total=Memory(in_bytes=swap.total),
        swap_available=Memory(in_bytes=swap.free),
    )


def disk_usage(path: Path) -> NodeDiskUsage:
    """``shutil.disk_usage`` of ``path``, or of its nearest existing parent."""
    target = path
    while not target.exists() and target != target.parent:
        target = target.parent
    usage = shutil.disk_usage(target)
    return NodeDiskUsage(
        disk_usage=DiskUsage(total=Memory(in_bytes=usage.total), available=Memory(in_bytes=usage.free))
    )


def network_interfaces(types: Mapping[str, InterfaceType] | None = None) -> NodeNetworkInterfaces:
    """Every IPv4/IPv6 address of every interface (one entry per address), typed by ``types`` (default unknown)."""
    types = types or {}
    ifaces = [
        NetworkInterfaceInfo(name=name, ip_address=address.address, interface_type=types.get(name, "unknown"))
        for name, addresses in psutil.net_if_addrs().items()
        for address in addresses
        if address.family in (socket.AF_INET, socket.AF_INET6)
    ]
    return NodeNetworkInterfaces(ifaces=ifaces)


def node_config(config_dir: Path, *, create: bool = True) -> NodeConfig | None:
    """Read ``config_dir/config.toml``, creating it empty if missing (as exo does) unless ``create`` is false.

    exo's ``NodeConfig`` has no fields and forbids extras: any setting outside the ``[node]`` table (which
    ``clusterstate node`` reads) is rejected with a warning and nothing is emitted (``None``); invalid TOML
    likewise. A missing file that is not
    created reads as empty.
    """
    path = config_dir / "config.toml"
    if create:
        config_dir.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
    elif not path.exists():
        return NodeConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        logger.warning("invalid config file %s, skipping: %s", path, error)
        return None
    data.pop("node", None)  # the settings of `clusterstate node`, not exo's NodeConfig
    if data:
        logger.warning("config file %s has settings NodeConfig does not know (%s), skipping", path, sorted(data))
        return None
    return NodeConfig()


def _static_linux() -> StaticNodeInformation:
    return StaticNodeInformation(
        model="Unknown Model",
        chip="Unknown Chip",
        os_version=platform.system() or "Unknown",
        os_build_version="Unknown",
    )


# --- samplers ---


def _thread_sampler(name: str, func: Callable[[], GatheredInfo | None]) -> Sampler:
    thread = _OneThread(name)

    async def sample() -> Sequence[GatheredInfo]:
        info = await thread.run(func)
        return [] if info is None else [info]

    return sample


async def _interface_types_macos(run: CommandRunner) -> dict[str, InterfaceType]:
    return macos.interface_types(macos.parse_hardware_ports(await run(["networksetup", "-listallhardwareports"])))


def network_sampler(settings: GathererSettings, run: CommandRunner = run_command) -> Sampler:
    """Interfaces and addresses (psutil); on macOS typed from ``networksetup -listallhardwareports``."""
    thread = _OneThread("network")

    async def sample() -> Sequence[GatheredInfo]:
        types = await _interface_types_macos(run) if settings.platform == "darwin" else {}
        return [await thread.run(lambda: network_interfaces(types))]

    return sample


def static_sampler(settings: GathererSettings, run: CommandRunner = run_command) -> Sampler:
    """Model, chip, OS version and build: ``system_profiler SPHardwareDataType``, ``sw_vers`` on macOS."""

    async def sample() -> Sequence[GatheredInfo]:
        if settings.platform != "darwin":
            return [_static_linux()]
        model, chip = macos.parse_hardware_overview(await run(["system_profiler", "SPHardwareDataType"]))
        build = (await run(["sw_vers", "-buildVersion"])).strip() or "Unknown"
        return [
            StaticNodeInformation(
                model=model, chip=chip, os_version=platform.mac_ver()[0] or "Unknown", os_build_version=build
            )
        ]

    return sample


def misc_sampler(settings: GathererSettings, run: CommandRunner = run_command) -> Sampler:
    """The friendly name: ``scutil --get ComputerName`` on macOS, the hostname elsewhere."""

    async def sample() -> Sequence[GatheredInfo]:
        hostname = socket.gethostname()
        if settings.platform != "darwin":
            return [MiscData(friendly_name=hostname)]
        return [
            MiscData(friendly_name=macos.parse_computer_name(await run(["scutil", "--get", "ComputerName"]), hostname))
        ]

    return sample


def thunderbolt_sampler(run: CommandRunner = run_command) -> Sampler:
    """Identifiers then connections, from the hardware ports and ``system_profiler SPThunderboltDataType -json``."""

    async def sample() -> Sequence[GatheredInfo]:
        ports = macos.parse_hardware_ports(await run(["networksetup", "-listallhardwareports"]))
        profile = await run(["system_profiler", "SPThunderboltDataType", "-json"])
        idents, conns = macos.parse_thunderbolt(profile, {port.name: port.device for port in ports})
        return [MacThunderboltIdentifiers(idents=idents), MacThunderboltConnections(conns=conns)]

    return sample


def bridge_sampler(run: CommandRunner = run_command) -> Sampler:
    """Thunderbolt Bridge status: the bridge whose members include a Thunderbolt port, and its service state."""

    async def sample() -> Sequence[GatheredInfo]:
        tb_devices = macos.thunderbolt_devices(
            macos.parse_hardware_ports(await run(["networksetup", "-listallhardwareports"]))
        )
        services = macos.parse_bridge_services(await run(["networksetup", "-listnetworkserviceorder"]))
        for bridge, service in sorted(services.items()):
            members = macos.parse_bridge_members(await run(["ifconfig", bridge]))
            if members & tb_devices:
                enabled = macos.parse_service_enabled(await run(["networksetup", "-getnetworkserviceenabled", service]))
                status = ThunderboltBridgeStatus(enabled=enabled, exists=True, service_name=service)
                return [ThunderboltBridgeInfo(status=status)]
        return [ThunderboltBridgeInfo(status=ThunderboltBridgeStatus(enabled=False, exists=False))]

    return sample


def rdma_sampler(run: CommandRunner = run_command) -> Sampler:
    """``rdma_ctl status``: enabled/disabled, nothing when the answer says neither."""

    async def sample() -> Sequence[GatheredInfo]:
        enabled = macos.parse_rdma_ctl_status(await run(["rdma_ctl", "status"]))
        return [] if enabled is None else [RdmaCtlStatus(enabled=enabled)]

    return sample


_MAX_LINE = 1 << 20


def macmon_opener(binary: str, interval_s: float = 1.0) -> StreamOpener:
    """``macmon pipe --interval <ms>``: one MacmonMetrics per JSON line; the process dies with the stream."""

    @asynccontextmanager
    async def open_stream() -> AsyncIterator[AsyncIterator[GatheredInfo]]:
        command = [binary, "pipe", "--interval", str(round(interval_s * 1000))]
        async with await anyio.open_process(command, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as process:
            try:
                if process.stdout is None:  # pragma: no cover - open_process pipes stdout by default
                    raise MalformedOutputError("macmon has no stdout")
                lines = _macmon_lines(BufferedByteReceiveStream(process.stdout))
                try:
                    yield lines
                finally:
                    await lines.aclose()
            finally:
                if process.returncode is None:
                    process.kill()

    return open_stream


async def _macmon_lines(stream: BufferedByteReceiveStream) -> AsyncGenerator[GatheredInfo]:
    while True:
        try:
            line = await stream.receive_until(b"\n", _MAX_LINE)
        except anyio.EndOfStream:
            return
        if line.strip():
            yield macos.parse_macmon_line(line)


def default_monitors(
    settings: GathererSettings | None = None,
    *,
    run: CommandRunner = run_command,
    which: Callable[[str], str | None] = shutil.which,
) -> list[Monitor]:
    """The monitors for ``settings.platform`` (default: this machine), with their schedules."""
    settings = settings or GathererSettings()
    darwin = settings.platform == "darwin"

    def poll(name: str, sample: Sampler) -> PollMonitor:
        schedule = settings.schedule(name)
        return PollMonitor(name, sample, schedule.interval_s, schedule.timeout_s)

    monitors: list[Monitor] = []
    macmon = which("macmon") if darwin else None
    if macmon is not None:
        schedule = settings.schedule("macmon")
        monitors.append(
            StreamMonitor(
                "macmon",
                macmon_opener(macmon, schedule.interval_s or 1.0),
                schedule.interval_s or 1.0,
                schedule.timeout_s,
            )
        )
    else:
        # exo reported no memory on a Mac without macmon (fixed in exo #1478): psutil covers it.
        override = settings.memory_override_mb
        monitors.append(poll("memory", _thread_sampler("memory", lambda: memory_usage(override))))
    monitors.append(poll("network", network_sampler(settings, run)))
    if darwin:
        monitors.append(poll("thunderbolt", thunderbolt_sampler(run)))
        monitors.append(poll("thunderbolt_bridge", bridge_sampler(run)))
        if which("rdma_ctl") is not None:
            monitors.append(poll("rdma_ctl", rdma_sampler(run)))
    monitors.append(poll("misc", misc_sampler(settings, run)))
    monitors.append(poll("static", static_sampler(settings, run)))
    disk_path = settings.disk_path
    monitors.append(poll("disk", _thread_sampler("disk", lambda: disk_usage(disk_path))))
    config_dir, create = settings.config_dir, settings.create_config
    monitors.append(poll("node_config", _thread_sampler("node_config", lambda: node_config(config_dir, create=create))))
    return monitors
