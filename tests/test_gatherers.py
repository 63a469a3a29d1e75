"""The Gatherer under a fake clock: rates follow the intervals, and a failing monitor is isolated.

Every test drives virtual time with :class:`FakeClock`, so a minute of schedules runs in
milliseconds and nothing depends on wall-clock speed.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.to_thread
import pytest
from rich.console import Console

from clusterstate.cli.gather_view import describe, samples_table
from clusterstate.gatherers import (
    DEFAULT_SCHEDULES,
    Backoff,
    FakeClock,
    Gatherer,
    GathererSettings,
    MalformedOutputError,
    Monitor,
    MonitorBusyError,
    PollMonitor,
    Schedule,
    StreamMonitor,
    default_monitors,
    gather_once,
    validated_info,
)
from clusterstate.gatherers.sources import _thread_sampler
from clusterstate.models import (
    DiskUsage,
    GatheredInfo,
    MacmonMetrics,
    MacThunderboltConnections,
    MacThunderboltIdentifiers,
    Memory,
    MemoryUsage,
    MiscData,
    NodeConfig,
    NodeDiskUsage,
    NodeGatheredInfo,
    NodeId,
    NodeNetworkInterfaces,
    RdmaCtlStatus,
    StaticNodeInformation,
    SystemPerformanceProfile,
    ThunderboltBridgeInfo,
    ThunderboltBridgeStatus,
    ThunderboltIdentifier,
)

NODE = NodeId("node-under-test")


def _memory(available: int = 1024) -> MemoryUsage:
    return MemoryUsage(
        ram_total=Memory(in_bytes=4096),
        ram_available=Memory(in_bytes=available),
        swap_total=Memory(in_bytes=0),
        swap_available=Memory(in_bytes=0),
    )


class Recorder:
    """A sampler that records the virtual time of every call and returns ``infos``."""

    def __init__(self, clock: FakeClock, infos: Sequence[GatheredInfo]) -> None:
        self.clock = clock
        self.infos = list(infos)
        self.calls: list[float] = []

    async def __call__(self) -> Sequence[GatheredInfo]:
        self.calls.append(self.clock.now())
        return self.infos


def run_for(
    clock: FakeClock, gatherer: Gatherer, seconds: float, step: float = 1.0
) -> list[tuple[float, NodeGatheredInfo]]:
    """Run ``gatherer`` for ``seconds`` of virtual time; the events with the virtual time they arrived."""
    received: list[tuple[float, NodeGatheredInfo]] = []

    async def main() -> None:
        async with gatherer.events() as events:

            async def consume() -> None:
                async for event in events:
                    # One at a time: the consumer is cancelled mid-stream, a comprehension would lose them all.
                    received.append((clock.now(), event))  # noqa: PERF401

            async with anyio.create_task_group() as group:
                group.start_soon(consume)
                elapsed = 0.0
                while elapsed < seconds:
                    await clock.advance(step)
                    elapsed += step
                group.cancel_scope.cancel()

    anyio.run(main)
    return received


def times_of(received: Sequence[tuple[float, NodeGatheredInfo]], kind: type) -> list[float]:
    return [when for when, event in received if isinstance(event.info, kind)]


def test_fake_clock_orders_sleeps_and_timeouts() -> None:
    clock = FakeClock()
    log: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        log.append((name, clock.now()))

    async def timed_out() -> None:
        with pytest.raises(TimeoutError), clock.timeout(2.5):
            await clock.sleep(10)
        log.append(("timeout", clock.now()))

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(sleeper, "b", 3.0)
            group.start_soon(sleeper, "a", 1.0)
            group.start_soon(timed_out)
            await clock.advance(5.0)

    anyio.run(main)
    assert log == [("a", 1.0), ("timeout", 2.5), ("b", 3.0)]
    assert clock.now() == 5.0


def test_rates_follow_the_configured_intervals() -> None:
    clock = FakeClock()
    fast = Recorder(clock, [_memory()])
    slow = Recorder(clock, [MiscData(friendly_name="box")])
    disk = Recorder(
        clock, [NodeDiskUsage(disk_usage=DiskUsage(total=Memory(in_bytes=10), available=Memory(in_bytes=5)))]
    )
    once = Recorder(clock, [MiscData(friendly_name="once")])
    monitors: list[Monitor] = [
        PollMonitor("memory", fast, 1.0, 5.0),
        PollMonitor("misc", slow, 10.0, 5.0),
        PollMonitor("disk", disk, 30.0, 5.0),
        PollMonitor("once", once, None, 5.0),
    ]
    gatherer = Gatherer(NODE, monitors, clock=clock)
    received = run_for(clock, gatherer, 60.0)

    assert fast.calls == [float(t) for t in range(61)]
    assert slow.calls == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    assert disk.calls == [0.0, 30.0, 60.0]
    assert once.calls == [0.0]
    # Each sample is one event, delivered at the time it was taken, about this node.
    assert times_of(received, MemoryUsage) == fast.calls
    assert times_of(received, NodeDiskUsage) == disk.calls
    assert len(received) == 61 + 7 + 3 + 1
    assert {event.node_id for _, event in received} == {NODE}
    assert gatherer.status["memory"].samples == 61
    assert gatherer.status["once"].samples == 1


def test_exo_schedules_give_exo_rates() -> None:
    # Every periodic monitor of exo's table at its default schedule, for 10 virtual minutes.
    clock = FakeClock()
    periodic = {name: s for name, s in DEFAULT_SCHEDULES.items() if name != "macmon" and s.interval_s is not None}
    samplers = {name: Recorder(clock, [MiscData(friendly_name=name)]) for name in periodic}
    monitors: list[Monitor] = [
        PollMonitor(name, samplers[name], schedule.interval_s, schedule.timeout_s)
        for name, schedule in periodic.items()
    ]
    received = run_for(clock, Gatherer(NODE, monitors, clock=clock), 600.0, step=5.0)
    expected = {"memory": 1.0, "network": 10.0, "thunderbolt": 5.0, "thunderbolt_bridge": 10.0, "rdma_ctl": 10.0}
    expected |= {"misc": 60.0, "static": 60.0, "disk": 30.0}
    assert {name: schedule.interval_s for name, schedule in periodic.items()} == expected
    for name, interval in expected.items():
        assert samplers[name].calls == [n * interval for n in range(int(600 / interval) + 1)], name
    per_name = Counter(event.info.friendly_name for _, event in received if isinstance(event.info, MiscData))
    assert per_name == {name: int(600 / interval) + 1 for name, interval in expected.items()}


def test_schedules_are_configurable(tmp_path: Path) -> None:
    settings = GathererSettings(
        platform="linux",
        disk_path=tmp_path,
        config_dir=tmp_path,
        schedules={"memory": Schedule(0.5, 0.25), "node_config": Schedule(300.0, 1.0)},
    )
    by_name = {monitor.name: monitor for monitor in default_monitors(settings)}
    assert (by_name["memory"].interval_s, by_name["memory"].timeout_s) == (0.5, 0.25)
    assert (by_name["node_config"].interval_s, by_name["node_config"].timeout_s) == (300.0, 1.0)
    assert (by_name["disk"].interval_s, by_name["disk"].timeout_s) == (30.0, 5.0)


def test_a_slow_sample_keeps_the_cadence_from_its_start() -> None:
    clock = FakeClock()
    calls: list[float] = []

    async def slow() -> Sequence[GatheredInfo]:
        calls.append(clock.now())
        await clock.sleep(3.0)  # within the 5 s timeout, shorter than the 10 s interval
        return [MiscData(friendly_name="slow")]

    gatherer = Gatherer(NODE, [PollMonitor("slow", slow, 10.0, 5.0)], clock=clock)
    received = run_for(clock, gatherer, 40.0)
    assert calls == [0.0, 10.0, 20.0, 30.0, 40.0]
    assert [when for when, _ in received] == [3.0, 13.0, 23.0, 33.0]


def _isolation_monitors(clock: FakeClock) -> tuple[list[Monitor], Recorder, Recorder, dict[str, list[float]]]:
    memory = Recorder(clock, [_memory()])
    disk = Recorder(
        clock, [NodeDiskUsage(disk_usage=DiskUsage(total=Memory(in_bytes=10), available=Memory(in_bytes=5)))]
    )
    attempts: dict[str, list[float]] = {"raises": [], "hangs": [], "garbage": [], "invalid": []}

    async def raises() -> Sequence[GatheredInfo]:
        attempts["raises"].append(clock.now())
        raise OSError("networksetup: command not found")

    async def hangs() -> Sequence[GatheredInfo]:
        attempts["hangs"].append(clock.now())
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def garbage() -> Sequence[GatheredInfo]:
        attempts["garbage"].append(clock.now())
        return ["not a model"]  # type: ignore[list-item]

    async def invalid() -> Sequence[GatheredInfo]:
        attempts["invalid"].append(clock.now())
        # model_construct skips validation: a negative, string-typed amount must not leave the gatherer.
        return [MemoryUsage.model_construct(ram_total="lots", ram_available=-1)]  # type: ignore[call-arg, arg-type]

    monitors: list[Monitor] = [
        PollMonitor("memory", memory, 1.0, 5.0),
        PollMonitor("disk", disk, 30.0, 5.0),
        PollMonitor("raises", raises, 2.0, 5.0),
        PollMonitor("hangs", hangs, 1.0, 3.0),
        PollMonitor("garbage", garbage, 5.0, 5.0),
        PollMonitor("invalid", invalid, 5.0, 5.0),
    ]
    return monitors, memory, disk, attempts


def test_failing_monitors_are_isolated_and_backed_off(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    monitors, memory, disk, attempts = _isolation_monitors(clock)
    gatherer = Gatherer(NODE, monitors, clock=clock, backoff=Backoff(factor=2.0, cap_s=16.0))
    with caplog.at_level(logging.WARNING, logger="clusterstate.gatherers.gatherer"):
        received = run_for(clock, gatherer, 60.0)

    # The healthy monitors keep exactly their rates, as if they ran alone.
    assert memory.calls == [float(t) for t in range(61)]
    assert disk.calls == [0.0, 30.0, 60.0]
    assert times_of(received, MemoryUsage) == memory.calls
    assert {type(event.info) for _, event in received} == {MemoryUsage, NodeDiskUsage}
    assert len(received) == 61 + 3

    # Raising every time: retried after 2, 4, 8, 16, 16… seconds (base = its 2 s interval, cap 16 s).
    assert attempts["raises"] == [0.0, 2.0, 6.0, 14.0, 30.0, 46.0]
    # Hanging: cancelled at its 3 s timeout, then retried after 1, 2, 4, 8, 16 s.
    assert attempts["hangs"] == [0.0, 4.0, 9.0, 16.0, 27.0, 46.0]
    # Garbage and invalid models: rejected like a failure (5, 10, 16, 16 s).
    assert attempts["garbage"] == [0.0, 5.0, 15.0, 31.0, 47.0]
    assert attempts["invalid"] == attempts["garbage"]

    status = gatherer.status
    assert status["raises"].last_error == "OSError: networksetup: command not found"
    assert status["hangs"].last_error == "timed out"
    assert status["garbage"].last_error is not None
    assert "not a GatheredInfo" in status["garbage"].last_error
    assert status["invalid"].last_error is not None
    assert "invalid MemoryUsage" in status["invalid"].last_error
    assert status["raises"].failures == 6
    assert status["raises"].consecutive_failures == 6
    assert status["raises"].samples == 0
    assert status["memory"].failures == 0
    assert status["memory"].last == (_memory(),)
    failed = {record.args[0] for record in caplog.records if isinstance(record.args, tuple)}
    assert failed == {"raises", "hangs", "garbage", "invalid"}


def test_a_monitor_recovers_and_returns_to_its_interval() -> None:
    clock = FakeClock()
    calls: list[float] = []

    async def flaky() -> Sequence[GatheredInfo]:
        calls.append(clock.now())
        if len(calls) <= 3:
            raise RuntimeError("transient")
        return [MiscData(friendly_name="back")]

    gatherer = Gatherer(NODE, [PollMonitor("flaky", flaky, 5.0, 1.0)], clock=clock)
    received = run_for(clock, gatherer, 60.0)
    # Fails at 0, 5 (+5), 15 (+10); succeeds at 35 (+20), then every 5 s again.
    assert calls == [0.0, 5.0, 15.0, 35.0, 40.0, 45.0, 50.0, 55.0, 60.0]
    assert [when for when, _ in received] == calls[3:]
    status = gatherer.status["flaky"]
    assert (status.failures, status.consecutive_failures, status.samples) == (3, 0, 6)
    assert status.retry_in_s is None


def test_backoff_is_capped_and_starts_at_the_interval() -> None:
    backoff = Backoff(factor=2.0, cap_s=60.0, first_s=1.0)
    every_10 = PollMonitor("m", Recorder(FakeClock(), []), 10.0, 1.0)
    once = PollMonitor("o", Recorder(FakeClock(), []), None, 1.0)
    every_hour = PollMonitor("h", Recorder(FakeClock(), []), 3600.0, 1.0)
    assert [backoff.delay(every_10, n) for n in range(1, 7)] == [10.0, 20.0, 40.0, 60.0, 60.0, 60.0]
    assert [backoff.delay(once, n) for n in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]
    assert backoff.delay(every_hour, 5) == 3600.0  # never retried more often than its interval
    assert backoff.delay(once, 10_000) == 60.0


def test_a_hung_blocking_call_does_not_block_the_loop_or_pile_up_threads() -> None:
    clock = FakeClock()
    started = threading.Event()
    release = threading.Event()
    threads: list[int] = []

    def blocking() -> GatheredInfo:
        threads.append(threading.get_ident())
        started.set()
        release.wait(timeout=30)
        return MiscData(friendly_name="late")

    memory = Recorder(clock, [_memory()])
    monitors: list[Monitor] = [
        PollMonitor("memory", memory, 1.0, 5.0),
        PollMonitor("stuck", _thread_sampler("stuck", blocking), 1.0, 2.0),
    ]
    gatherer = Gatherer(NODE, monitors, clock=clock, backoff=Backoff(cap_s=8.0))
    received: list[NodeGatheredInfo] = []

    async def main() -> None:
        try:
            async with gatherer.events() as events:

                async def consume() -> None:
                    async for event in events:
                        received.append(event)  # noqa: PERF401 - cancelled mid-stream, keep what came

                async with anyio.create_task_group() as group:
                    group.start_soon(consume)
                    await anyio.to_thread.run_sync(started.wait, 10)  # the stuck call is running in its thread
                    for _ in range(30):
                        await clock.advance(1.0)
                    group.cancel_scope.cancel()
        finally:
            release.set()

    anyio.run(main)
    assert memory.calls == [float(t) for t in range(31)]
    assert len(threads) == 1  # retries while it hangs fail fast instead of starting more threads
    stuck = gatherer.status["stuck"]
    assert stuck.samples == 0
    assert stuck.last_error is not None
    assert MonitorBusyError.__name__ in stuck.last_error
    # Timed out at 2 s, then busy at 3, 5, 9, 17 and 25 s (backoff 1, 2, 4, 8, 8).
    assert stuck.failures == 6
    assert all(isinstance(event.info, MemoryUsage) for event in received)


def test_stream_monitor_restarts_after_a_stall_an_end_and_garbage() -> None:
    clock = FakeClock()
    opened: list[float] = []
    runs = iter(["stall", "end", "garbage", "healthy"])

    async def samples() -> AsyncIterator[GatheredInfo]:
        kind = next(runs)
        for second in range(3):
            await clock.sleep(1.0)
            yield _memory(available=second)
        if kind == "stall":
            await anyio.sleep_forever()
        elif kind == "garbage":
            yield "{not json"  # type: ignore[misc]
        elif kind == "healthy":
            while True:
                await clock.sleep(1.0)
                yield _memory()

    @asynccontextmanager
    async def open_stream() -> AsyncIterator[AsyncIterator[GatheredInfo]]:
        opened.append(clock.now())
        yield samples()

    memory = Recorder(clock, [MiscData(friendly_name="other")])
    monitors: list[Monitor] = [
        StreamMonitor("macmon", open_stream, 1.0, 5.0),
        PollMonitor("misc", memory, 10.0, 5.0),
    ]
    gatherer = Gatherer(NODE, monitors, clock=clock, backoff=Backoff(first_s=1.0, cap_s=60.0))
    received = run_for(clock, gatherer, 40.0)

    # stall: samples at 1-3 s, watchdog fires at 8 s, restart 1 s later (9 s);
    # end: samples at 10-12 s, ends at 12 s, restart after 1 s (13 s) — consecutive failures reset on a sample;
    # garbage: samples at 14-16 s, bad item at 16 s, restart at 17 s; healthy from 18 s on.
    assert opened == [0.0, 9.0, 13.0, 17.0]
    expected = [1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 14.0, 15.0, 16.0, *[float(t) for t in range(18, 41)]]
    assert times_of(received, MemoryUsage) == expected
    assert memory.calls == [0.0, 10.0, 20.0, 30.0, 40.0]
    assert gatherer.status["macmon"].failures == 3


def test_gather_once_isolates_failures_and_keeps_monitor_order() -> None:
    clock = FakeClock()
    monitors, _, _, _ = _isolation_monitors(clock)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(result_of)
            await clock.advance(10.0)

    results = []

    async def result_of() -> None:
        results.append(await gather_once(NODE, monitors, clock=clock))

    anyio.run(main)
    (result,) = results
    assert [type(event.info) for event in result.events] == [MemoryUsage, NodeDiskUsage]
    assert list(result.failures) == ["raises", "hangs", "garbage", "invalid"]
    assert result.failures["hangs"] == "timed out"


def test_gather_once_respects_a_deadline() -> None:
    clock = FakeClock()
    seen: list[float] = []

    async def slow() -> Sequence[GatheredInfo]:
        await clock.sleep(20.0)  # within its own 30 s timeout, beyond the 2 s deadline
        return [MiscData(friendly_name="slow")]

    async def result_of() -> None:
        result = await gather_once(NODE, [PollMonitor("static", slow, 60.0, 30.0)], clock=clock, deadline_s=2.0)
        assert result.failures == {"static": "timed out"}
        seen.append(clock.now())

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(result_of)
            await clock.advance(30.0)

    anyio.run(main)
    assert seen == [2.0]


def test_validated_info_rejects_what_a_master_would_reject() -> None:
    assert validated_info("memory", _memory()) == _memory()
    with pytest.raises(MalformedOutputError, match="not a GatheredInfo"):
        validated_info("memory", {"ram_total": 1})
    with pytest.raises(MalformedOutputError, match="invalid MemoryUsage"):
        validated_info("memory", MemoryUsage.model_construct(ram_total=Memory(in_bytes=1)))  # type: ignore[call-arg]


def test_monitor_names_must_be_unique_and_schedules_positive() -> None:
    clock = FakeClock()
    sampler = Recorder(clock, [])
    with pytest.raises(ValueError, match="unique"):
        Gatherer(NODE, [PollMonitor("a", sampler, 1.0, 1.0), PollMonitor("a", sampler, 2.0, 1.0)], clock=clock)
    with pytest.raises(ValueError, match="interval"):
        PollMonitor("a", sampler, 0.0, 1.0)
    with pytest.raises(ValueError, match="timeout"):
        PollMonitor("a", sampler, 1.0, 0.0)


def test_the_live_table_shows_samples_and_failures() -> None:
    clock = FakeClock()
    monitors, _, _, _ = _isolation_monitors(clock)
    gatherer = Gatherer(NODE, monitors, clock=clock, backoff=Backoff(cap_s=16.0))
    run_for(clock, gatherer, 5.0)
    console = Console(width=200, record=True)
    console.print(samples_table(gatherer.monitors, gatherer.status, title="This machine"))
    text = console.export_text()
    rows = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    assert rows["memory"].split()[1:5] == ["1", "s", "6", "0"]  # every 1 s, 6 samples, no failure
    assert "RAM 3.0 KiB used of 4.0 KiB" in rows["memory"]
    assert rows["memory"].rstrip().endswith("ok")
    assert "5 B free of 10 B" in rows["disk"]
    assert "OSError: networksetup: command not found" in rows["raises"]
    assert rows["raises"].rstrip().endswith("failing x2, retry in 4 s")
    assert "timed out" in rows["hangs"]
    assert rows["hangs"].rstrip().endswith("failing x1")  # its second attempt (from 4 s) is running
    assert "returned an invalid MemoryUsage" in rows["invalid"]


@pytest.mark.parametrize(
    ("info", "line"),
    [
        (MiscData(friendly_name="box"), "box"),
        (NodeConfig(), "config.toml read"),
        (
            StaticNodeInformation(
                model="Mac Studio", chip="Apple M3 Ultra", os_version="15.3", os_build_version="24D81"
            ),
            "Mac Studio, Apple M3 Ultra, 15.3 (24D81)",
        ),
        (
            StaticNodeInformation(
                model="Unknown Model", chip="Unknown Chip", os_version="Linux", os_build_version="Unknown"
            ),
            "Unknown Model, Unknown Chip, Linux",
        ),
        (RdmaCtlStatus(enabled=True), "RDMA enabled"),
        (ThunderboltBridgeInfo(status=ThunderboltBridgeStatus(enabled=False, exists=False)), "no Thunderbolt Bridge"),
        (
            ThunderboltBridgeInfo(status=ThunderboltBridgeStatus(enabled=True, exists=True, service_name="TB Bridge")),
            "TB Bridge: enabled",
        ),
        (MacThunderboltConnections(conns=[]), "0 cables"),
        (
            MacThunderboltIdentifiers(
                idents=[ThunderboltIdentifier(rdma_interface="rdma_en2", domain_uuid="u", link_speed="Up to 80 Gb/s")]
            ),
            "1 controller: rdma_en2 Up to 80 Gb/s",
        ),
        (NodeNetworkInterfaces(ifaces=[]), "no addresses"),
        (
            MacmonMetrics(
                system_profile=SystemPerformanceProfile(gpu_usage=0.5, temp=40.0, sys_power=30.0, pcpu_usage=0.25),
                memory=_memory(),
            ),
            "GPU 50%, P-CPU 25%, E-CPU 0%, 40.0 °C, 30.0 W; RAM 3.0 KiB used of 4.0 KiB",
        ),
    ],
)
def test_each_kind_of_sample_is_described(info: GatheredInfo, line: str) -> None:
    assert describe(info) == line


def test_a_consumer_that_goes_away_stops_the_gatherer() -> None:
    clock = FakeClock()

    @asynccontextmanager
    async def open_stream() -> AsyncIterator[AsyncIterator[GatheredInfo]]:
        async def samples() -> AsyncIterator[GatheredInfo]:
            while True:
                await clock.sleep(1.0)
                yield _memory()

        yield samples()

    stream = StreamMonitor("macmon", open_stream, 1.0, 5.0)
    poll = PollMonitor("memory", Recorder(clock, [_memory()]), 1.0, 1.0)
    for monitor in (stream, poll):
        gatherer = Gatherer(NODE, [monitor], clock=clock)

        async def main(gatherer: Gatherer = gatherer) -> None:
            send, receive = anyio.create_memory_object_stream[NodeGatheredInfo](0)
            with anyio.fail_after(30):  # a safety net against a hang, not a speed check
                async with anyio.create_task_group() as group:
                    group.start_soon(gatherer.run, send)
                    group.start_soon(clock.advance, 5.0)
                    await receive.receive()
                    await receive.aclose()  # gone: the next hand-over fails and ends the run, it is not retried

        with pytest.raises(ExceptionGroup) as raised:
            anyio.run(main)
        assert raised.group_contains(anyio.BrokenResourceError)
        assert gatherer.status[monitor.name].failures == 0
