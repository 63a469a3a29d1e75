"""What a monitor is: a sampler with its own schedule, or a long-running stream of samples.

A :class:`PollMonitor` is called every ``interval_s`` (or once), each call bounded by
``timeout_s``; a :class:`StreamMonitor` opens a source (``macmon pipe``) and yields samples as they
come, restarted when it fails or stays silent for ``timeout_s``. Both return or yield
:data:`~clusterstate.models.GatheredInfo` models; the :class:`~clusterstate.gatherers.Gatherer`
wraps them into ``NodeGatheredInfo`` events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from clusterstate.models import GatheredInfo

__all__ = ["Backoff", "Monitor", "MonitorStatus", "PollMonitor", "Sampler", "StreamMonitor", "StreamOpener"]

Sampler = Callable[[], Awaitable[Sequence[GatheredInfo]]]
"""One sample: zero or more infos (Thunderbolt gives identifiers and connections; rdma_ctl may give none)."""

StreamOpener = Callable[[], AbstractAsyncContextManager[AsyncIterator[GatheredInfo]]]
"""Opens a stream of samples; leaving the context releases it (kills the process)."""


@dataclass(frozen=True)
class PollMonitor:
    """A monitor sampled on a schedule.

    Attributes:
        name: Short stable name (``memory``, ``disk``…), used in logs, status and overrides.
        sample: The sampler.
        interval_s: Seconds from the start of one sample to the start of the next; ``None``: once.
        timeout_s: A sample taking longer is cancelled and counts as a failure.
    """

    name: str
    sample: Sampler
    interval_s: float | None
    timeout_s: float

    def __post_init__(self) -> None:
        if self.interval_s is not None and self.interval_s <= 0:
            raise ValueError(f"{self.name}: interval must be positive")
        if self.timeout_s <= 0:
            raise ValueError(f"{self.name}: timeout must be positive")


@dataclass(frozen=True)
class StreamMonitor:
    """A long-running source of samples (exo's ``macmon pipe --interval 1000``).

    Attributes:
        name: Short stable name.
        open: Opens the stream.
        interval_s: The rate the source is asked for (informational; the source sets the pace).
        timeout_s: Stall watchdog: no sample for this long restarts the source (exo #1714).
    """

    name: str
    open: StreamOpener
    interval_s: float
    timeout_s: float


Monitor = PollMonitor | StreamMonitor


@dataclass(frozen=True)
class Backoff:
    """Delay before retrying a monitor after consecutive failures: exponential, capped.

    The ``n``-th consecutive failure (n ≥ 1) waits ``min(base · factor^(n-1), max(cap_s, base))``,
    where ``base`` is the monitor's interval (``first_s`` for one-shot and stream monitors). The
    first retry therefore comes one interval later, as in exo; a monitor that keeps failing slows
    down to once per ``cap_s``. A success resets the count.
    """

    factor: float = 2.0
    cap_s: float = 60.0
    first_s: float = 1.0

    def delay(self, monitor: Monitor, failures: int) -> float:
        polled = isinstance(monitor, PollMonitor) and monitor.interval_s is not None
        base = monitor.interval_s if polled and monitor.interval_s is not None else self.first_s
        exponent = max(0, failures - 1)
        cap = max(self.cap_s, base)
        # Clamp the exponent so a monitor failing for days does not overflow a float.
        return min(base * self.factor ** min(exponent, 64), cap)


@dataclass
class MonitorStatus:
    """What a monitor has done so far (read by the live view and tests)."""

    name: str
    samples: int = 0
    events: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    last_sample_at: float | None = None
    retry_in_s: float | None = None
    last: tuple[GatheredInfo, ...] = ()
    """The infos of the last successful sample."""
