"""The Gatherer: runs every monitor of a node as its own loop and turns samples into events.

Isolation is the point (in exo a 31-second ``system_profiler`` call starved
the heartbeat): each monitor is a separate task with its own timeout, and a monitor that raises,
hangs past its timeout or returns something that is not a valid ``GatheredInfo`` is logged,
backed off (:class:`~clusterstate.gatherers.monitor.Backoff`) and retried, while the others keep
their schedules. Sampling never blocks the event loop: blocking calls run in worker threads and
commands in subprocesses (see :mod:`clusterstate.gatherers.sources`).

Schedule: a poll monitor starts a sample every ``interval_s`` measured from the start of the
previous one (exo slept the interval *after* each sample, so its period drifted by the sample's
duration). A sample that overruns its interval is followed at once by the next.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from pydantic import BaseModel

from clusterstate.models import (
    GatheredInfo,
    MacmonMetrics,
    MacThunderboltConnections,
    MacThunderboltIdentifiers,
    MemoryUsage,
    MiscData,
    NodeConfig,
    NodeDiskUsage,
    NodeGatheredInfo,
    NodeId,
    NodeNetworkInterfaces,
    RdmaCtlStatus,
    StaticNodeInformation,
    ThunderboltBridgeInfo,
)

from .clock import Clock, SystemClock
from .errors import MalformedOutputError
from .monitor import Backoff, Monitor, MonitorStatus, PollMonitor, StreamMonitor

__all__ = ["GatherResult", "Gatherer", "gather_once", "validated_info"]

logger = logging.getLogger(__name__)

INFO_TYPES: tuple[type[BaseModel], ...] = (
    MacmonMetrics,
    MemoryUsage,
    NodeNetworkInterfaces,
    MacThunderboltIdentifiers,
    MacThunderboltConnections,
    RdmaCtlStatus,
    ThunderboltBridgeInfo,
    NodeConfig,
    MiscData,
    StaticNodeInformation,
    NodeDiskUsage,
)


def validated_info(monitor: str, info: object) -> GatheredInfo:
    """``info`` re-validated as a GatheredInfo member, or :class:`MalformedOutputError`.

    A model built with ``model_construct`` (or mutated) skips validation, and pydantic does not
    re-validate instances, so the sample is dumped and validated again: what leaves the gatherer
    is exactly what a master would accept.
    """
    if not isinstance(info, INFO_TYPES):
        raise MalformedOutputError(f"monitor {monitor} returned {type(info).__name__}, not a GatheredInfo")
    try:
        checked = type(info).model_validate(info.model_dump(warnings="error"))
    except ValueError as error:  # ValidationError and PydanticSerializationError are ValueErrors
        raise MalformedOutputError(f"monitor {monitor} returned an invalid {type(info).__name__}: {error}") from error
    return checked  # type: ignore[return-value]  # one of INFO_TYPES, i.e. a GatheredInfo


Emit = Callable[[NodeGatheredInfo], Awaitable[None]]

_ERROR_CHARS = 200


def _describe(error: BaseException) -> str:
    """An error in one line for status and logs (pydantic's are several lines long)."""
    if isinstance(error, TimeoutError):
        return "timed out"
    text = f"{type(error).__name__}: {error}".splitlines()[0].rstrip(":")
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"


@dataclass
class Gatherer:
    """Runs ``monitors`` for ``node_id`` and emits one ``NodeGatheredInfo`` per sampled info.

    Use :meth:`events` for an async-iterable stream, or :meth:`run` with your own send stream.
    ``status`` tells, per monitor, how many samples and failures it had and when it retries.

    Args:
        node_id: The node the events are about (``NodeGatheredInfo.node_id``).
        monitors: What to run; :func:`clusterstate.gatherers.default_monitors` picks them for this platform.
        clock: Time source for intervals, timeouts and backoff (a ``FakeClock`` in tests).
        backoff: Retry policy after failures.
        buffer: Events held for a slow consumer before monitors wait to hand theirs over.
    """

    node_id: NodeId
    monitors: Sequence[Monitor]
    clock: Clock = field(default_factory=SystemClock)
    backoff: Backoff = field(default_factory=Backoff)
    buffer: int = 256
    status: dict[str, MonitorStatus] = field(init=False)

    def __post_init__(self) -> None:
        names = [monitor.name for monitor in self.monitors]
        if len(set(names)) != len(names):
            raise ValueError(f"monitor names must be unique, got {names}")
        self.status = {name: MonitorStatus(name) for name in names}

    def _event(self, monitor: str, info: object) -> NodeGatheredInfo:
        return NodeGatheredInfo(node_id=self.node_id, info=validated_info(monitor, info))

    async def run(self, send: MemoryObjectSendStream[NodeGatheredInfo]) -> None:
        """Run every monitor until cancelled (one-shot monitors end after their sample); closes ``send``."""
        async with send, anyio.create_task_group() as group:
            for monitor in self.monitors:
                if isinstance(monitor, PollMonitor):
                    group.start_soon(self._poll, monitor, send.send, name=f"monitor:{monitor.name}")
                else:
                    group.start_soon(self._stream, monitor, send.send, name=f"monitor:{monitor.name}")

    @asynccontextmanager
    async def events(self) -> AsyncIterator[MemoryObjectReceiveStream[NodeGatheredInfo]]:
        """The monitors running in the background, their events as a receive stream.

        Example:
            async with gatherer.events() as events:
                async for event in events:
                    ...
        """
        send, receive = anyio.create_memory_object_stream[NodeGatheredInfo](self.buffer)
        async with anyio.create_task_group() as group:
            group.start_soon(self.run, send)
            try:
                async with receive:
                    yield receive
            finally:
                group.cancel_scope.cancel()

    def _failed(self, monitor: Monitor, error: BaseException) -> float:
        status = self.status[monitor.name]
        status.failures += 1
        status.consecutive_failures += 1
        status.last_error = _describe(error)
        delay = self.backoff.delay(monitor, status.consecutive_failures)
        status.retry_in_s = delay
        logger.warning(
            "monitor %s failed (%d in a row): %s; retrying in %.1f s",
            monitor.name,
            status.consecutive_failures,
            status.last_error,
            delay,
        )
        return delay

    def _succeeded(self, monitor: Monitor, events: Sequence[NodeGatheredInfo]) -> None:
        status = self.status[monitor.name]
        status.samples += 1
        status.events += len(events)
        status.last = tuple(event.info for event in events)
        status.consecutive_failures = 0
        status.retry_in_s = None
        status.last_sample_at = self.clock.now()

    async def _poll(self, monitor: PollMonitor, emit: Emit) -> None:
        clock = self.clock
        while True:
            started = clock.now()
            self.status[monitor.name].retry_in_s = None
            try:
                with clock.timeout(monitor.timeout_s):
                    infos = await monitor.sample()
                events = [self._event(monitor.name, info) for info in infos]
            except Exception as error:  # any failure of one monitor is isolated
                await clock.sleep(self._failed(monitor, error))
                continue
            self._succeeded(monitor, events)
            for event in events:
                await emit(event)
            if monitor.interval_s is None:
                return
            await clock.sleep(started + monitor.interval_s - clock.now())

    async def _stream(self, monitor: StreamMonitor, emit: Emit) -> None:
        clock = self.clock
        while True:
            try:
                async with monitor.open() as samples:
                    while True:
                        with clock.timeout(monitor.timeout_s):
                            info = await anext(samples, None)
                        if info is None:
                            raise MalformedOutputError(f"{monitor.name}: the stream ended")
                        event = self._event(monitor.name, info)
                        self._succeeded(monitor, [event])
                        await emit(event)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                raise  # the consumer is gone: not the monitor's failure (as in _poll, which emits outside its try)
            except Exception as error:  # any failure of one monitor is isolated
                await clock.sleep(self._failed(monitor, error))


@dataclass(frozen=True)
class GatherResult:
    """One sample of each monitor: the events (in monitor order) and the monitors that failed."""

    events: list[NodeGatheredInfo]
    failures: dict[str, str]


async def gather_once(
    node_id: NodeId, monitors: Sequence[Monitor], *, clock: Clock | None = None, deadline_s: float | None = None
) -> GatherResult:
    """Take one sample of every monitor, concurrently, each within its timeout (and ``deadline_s``).

    A stream monitor contributes its first sample. Failed monitors are logged and named in
    ``failures``; they do not hold up the others.
    """
    clock = clock or SystemClock()
    results: dict[str, list[NodeGatheredInfo]] = {}
    failures: dict[str, str] = {}

    async def one(monitor: Monitor) -> None:
        timeout = monitor.timeout_s if deadline_s is None else min(monitor.timeout_s, deadline_s)
        try:
            with clock.timeout(timeout):
                if isinstance(monitor, PollMonitor):
                    infos = list(await monitor.sample())
                else:
                    async with monitor.open() as samples:
                        first = await anext(samples, None)
                    if first is None:
                        raise MalformedOutputError(f"{monitor.name}: the stream ended")
                    infos = [first]
            results[monitor.name] = [
                NodeGatheredInfo(node_id=node_id, info=validated_info(monitor.name, i)) for i in infos
            ]
        except Exception as error:  # any failure of one monitor is isolated
            failures[monitor.name] = _describe(error)
            logger.warning("monitor %s failed: %s", monitor.name, failures[monitor.name])

    async with anyio.create_task_group() as group:
        for monitor in monitors:
            group.start_soon(one, monitor)
    events = [event for monitor in monitors for event in results.get(monitor.name, [])]
    return GatherResult(events, {name: failures[name] for name in (m.name for m in monitors) if name in failures})
