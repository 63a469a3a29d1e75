"""Hardware gatherers: this machine's memory, disk, network and identity as ``NodeGatheredInfo`` events.

Each monitor runs as an independent loop with its own interval and timeout (exo's rates;
table in :mod:`clusterstate.gatherers.sources`); the
:class:`Gatherer` isolates them from each other and from the event loop.

Example:
    >>> import anyio
    >>> from clusterstate.gatherers import GathererSettings, default_monitors, gather_once
    >>> monitors = default_monitors(GathererSettings(platform="linux"))  # doctest: +SKIP
    >>> result = anyio.run(gather_once, "my-node", monitors)  # doctest: +SKIP
"""

from . import macos
from .clock import Clock, FakeClock, SystemClock
from .errors import MalformedOutputError, MonitorBusyError
from .gatherer import Gatherer, GatherResult, gather_once, validated_info
from .monitor import Backoff, Monitor, MonitorStatus, PollMonitor, Sampler, StreamMonitor, StreamOpener
from .sources import (
    DEFAULT_SCHEDULES,
    CommandRunner,
    GathererSettings,
    Schedule,
    default_interval_s,
    default_monitors,
    disk_usage,
    memory_usage,
    network_interfaces,
    node_config,
    run_command,
)

__all__ = [
    "DEFAULT_SCHEDULES",
    "Backoff",
    "Clock",
    "CommandRunner",
    "FakeClock",
    "GatherResult",
    "Gatherer",
    "GathererSettings",
    "MalformedOutputError",
    "Monitor",
    "MonitorBusyError",
    "MonitorStatus",
    "PollMonitor",
    "Sampler",
    "Schedule",
    "StreamMonitor",
    "StreamOpener",
    "SystemClock",
    "default_interval_s",
    "default_monitors",
    "disk_usage",
    "gather_once",
    "macos",
    "memory_usage",
    "network_interfaces",
    "node_config",
    "run_command",
    "validated_info",
]
