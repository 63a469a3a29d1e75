"""The transport contract, run against real zenoh sessions on 127.0.0.1 and against the memory network; the
inbox bridge; the memory network's seeded faults. Every wait is bounded and every session closed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

import anyio
import pytest

from clusterstate.runtime.local import free_port
from clusterstate.runtime.transport import Inbox, Liveliness, Reply, Request, Transport
from clusterstate.runtime.transport.memory import Faults, MemoryNetwork
from clusterstate.runtime.transport.zenoh import ZenohConfig, open_zenoh

WAIT_S = 20.0  # generous bound on every wait: CI has 2 shared cores
KEY = "cs/test/v1/data"
PROBE = "cs/test/v1/probe"

Opener = Callable[[], AbstractAsyncContextManager[Transport]]


def zenoh_cluster() -> Opener:
    """Sessions on loopback: the first listens, every later one listens too and connects to the first."""
    first = f"tcp/127.0.0.1:{free_port()}"
    opened = 0

    def open_one() -> AbstractAsyncContextManager[Transport]:
        nonlocal opened
        opened += 1
        if opened == 1:
            config = ZenohConfig(listen=(first,), gossip=False)
        else:
            config = ZenohConfig(listen=(f"tcp/127.0.0.1:{free_port()}",), connect=(first,), gossip=False)
        return open_zenoh(config)

    return open_one


def memory_cluster() -> Opener:
    return MemoryNetwork(seed=1).connect


CLUSTERS = pytest.mark.parametrize("cluster", [zenoh_cluster, memory_cluster], ids=["zenoh", "memory"])


def run(main: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        with anyio.fail_after(WAIT_S * 2):
            await main()

    anyio.run(bounded)


async def until(ready: Callable[[], Awaitable[bool]]) -> None:
    """Poll `ready` every 20 ms (the caller's fail_after bounds it)."""
    while True:
        if await ready():
            return
        await anyio.sleep(0.02)


@asynccontextmanager
async def subscribed(a: Transport, b: Transport, capacity: int = 65_536) -> AsyncIterator[Inbox[bytes]]:
    """b's subscription to KEY, once a's publications reach b (b subscribes to a probe key after KEY, and a
    publishes probes until one arrives: the declarations travel in order)."""
    async with b.subscribe(KEY, capacity) as inbox, b.subscribe(PROBE) as probes:

        async def probed() -> bool:
            a.publish(PROBE, b"probe")
            with anyio.move_on_after(0.05):
                await probes.receive()
                return True
            return False

        with anyio.fail_after(WAIT_S):
            await until(probed)
        yield inbox


@CLUSTERS
def test_publish_subscribe_in_order(cluster: Callable[[], Opener]) -> None:
    async def main() -> None:
        open_one = cluster()
        async with open_one() as a, open_one() as b, subscribed(a, b) as inbox:
            for i in range(2000):
                a.publish(KEY, i.to_bytes(4, "little"))
            got: list[int] = []
            with anyio.fail_after(WAIT_S):
                while len(got) < 2000:
                    got.append(int.from_bytes(await inbox.receive(), "little"))
            assert got == list(range(2000))
            assert inbox.dropped == 0

    run(main)


@CLUSTERS
def test_connected_transports_see_each_other_as_peers(cluster: Callable[[], Opener]) -> None:
    async def main() -> None:
        open_one = cluster()
        async with open_one() as a:
            assert a.peers() == []
            async with open_one() as b:
                with anyio.fail_after(WAIT_S):
                    await until(lambda: _now(len(a.peers()) == 1 and len(b.peers()) == 1))
                assert a.peers() != b.peers()
            with anyio.fail_after(WAIT_S):
                await until(lambda: _now(a.peers() == []))

    run(main)


async def _now(value: bool) -> bool:
    return value


@CLUSTERS
def test_query_answered_later_from_the_loop_thread(cluster: Callable[[], Opener]) -> None:
    async def main() -> None:
        open_one = cluster()
        loop_thread = threading.get_ident()
        answered_on: list[int] = []
        async with open_one() as a, open_one() as b:
            assert await a.query("cs/test/v1/nobody", {}, within=WAIT_S) == []
            async with b.serve("cs/test/v1/events") as requests, anyio.create_task_group() as group:

                async def answer() -> None:
                    async for request in requests:
                        await anyio.sleep(0.05)  # answered after the transport's callback returned
                        answered_on.append(threading.get_ident())
                        if request.parameters.get("since") == "bad":
                            request.reply_err(b"snapshot_required")
                        else:
                            request.reply(b"page from " + request.parameters["since"].encode())

                group.start_soon(answer)
                with anyio.fail_after(WAIT_S):
                    replies: list[Reply] = []
                    while not replies:
                        replies = await a.query("cs/test/v1/events", {"since": "42", "limit": "1000"}, within=WAIT_S)
                assert [(r.payload, r.ok) for r in replies] == [(b"page from 42", True)]
                bad = await a.query("cs/test/v1/events", {"since": "bad"}, within=WAIT_S)
                assert [(r.payload, r.ok) for r in bad] == [(b"snapshot_required", False)]
                group.cancel_scope.cancel()
        assert answered_on
        assert set(answered_on) == {loop_thread}

    run(main)


@CLUSTERS
def test_liveliness_put_then_delete_when_the_holder_closes(cluster: Callable[[], Opener]) -> None:
    async def main() -> None:
        open_one = cluster()
        async with open_one() as a, a.watch("cs/test/v1/member/*") as seen:
            async with AsyncExitStack() as tokens:
                async with AsyncExitStack() as session:
                    b = await session.enter_async_context(open_one())
                    await tokens.enter_async_context(b.token("cs/test/v1/member/b"))
                    with anyio.fail_after(WAIT_S):
                        assert await seen.receive() == Liveliness("cs/test/v1/member/b", alive=True)
                # b's session closed with its token still declared.
                with anyio.fail_after(WAIT_S):
                    assert await seen.receive() == Liveliness("cs/test/v1/member/b", alive=False)
            # A watch declared later sees the tokens present at once (history).
            async with a.token("cs/test/v1/member/a"), a.watch("cs/test/v1/member/*") as later:
                with anyio.fail_after(WAIT_S):
                    assert await later.receive() == Liveliness("cs/test/v1/member/a", alive=True)

    run(main)


@CLUSTERS
def test_an_overflowing_inbox_drops_the_oldest_and_counts(cluster: Callable[[], Opener]) -> None:
    async def main() -> None:
        open_one = cluster()
        async with open_one() as a, open_one() as b, subscribed(a, b, capacity=4) as inbox:
            for i in range(20):
                a.publish(KEY, bytes([i]))

            async def all_arrived() -> bool:
                return inbox.dropped + len(inbox) == 20

            with anyio.fail_after(WAIT_S):
                await until(all_arrived)
            assert inbox.dropped == 16
            assert [await inbox.receive() for _ in range(4)] == [bytes([i]) for i in range(16, 20)]

    run(main)


def test_inbox_wakes_a_waiting_reader_from_another_thread_and_ends_on_close() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        inbox: Inbox[int] = Inbox(capacity=1000)
        got: list[int] = []

        async def read() -> None:
            got.extend([item async for item in inbox])

        def fill() -> None:
            for i in range(500):
                inbox.put(i, loop.call_soon_threadsafe)
            inbox.close(loop.call_soon_threadsafe)

        async with anyio.create_task_group() as group:
            group.start_soon(read)
            await anyio.to_thread.run_sync(fill)
        assert got == list(range(500))

    run(main)


def test_inbox_discards_what_it_drops() -> None:
    discarded: list[str] = []
    inbox: Inbox[str] = Inbox(capacity=2, discard=discarded.append)
    for item in "abcd":
        inbox.put(item)
    assert (inbox.dropped, discarded, len(inbox)) == (2, ["a", "b"], 2)
    inbox.clear()
    assert discarded == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="at least 1"):
        Inbox(capacity=0)


def faulty_run(seed: int) -> tuple[list[int], int, int]:
    """200 payloads over a lossy, copying, delaying, reordering network; what arrived, lost, copied."""
    received: list[int] = []
    counts: list[int] = []

    async def main() -> None:
        network = MemoryNetwork(seed, Faults(loss=0.2, copy=0.2, delay=0.5, reorder=True))
        async with network.connect() as a, network.connect() as b, b.subscribe("k/*") as inbox:
            for i in range(200):
                a.publish(f"k/{i % 3}", i.to_bytes(2, "little"))
            assert network.in_flight > 0  # nothing is delivered before a tick
            ticks = 0
            while network.in_flight:
                network.tick()
                ticks += 1
            assert ticks > 1  # some payloads were held back
            while len(inbox):
                received.append(int.from_bytes(await inbox.receive(), "little"))
        assert len(received) == 200 - network.lost + network.copied
        assert set(received) <= set(range(200))
        counts.extend((network.lost, network.copied))

    run(main)
    return received, counts[0], counts[1]


def test_memory_faults_are_seeded() -> None:
    first, lost, copied = faulty_run(7)
    assert lost > 0
    assert copied > 0
    assert first != sorted(first)  # reordered
    assert faulty_run(7) == (first, lost, copied)
    assert faulty_run(8)[0] != first


def test_a_closed_memory_transport_takes_its_tokens_and_streams_with_it() -> None:
    async def main() -> None:
        network = MemoryNetwork()
        async with network.connect() as a, a.watch("m/*") as seen:
            b_stack = AsyncExitStack()
            b = await b_stack.enter_async_context(network.connect())
            inbox = await b_stack.enter_async_context(b.subscribe("k"))
            requests: Inbox[Request] = await b_stack.enter_async_context(b.serve("q"))
            await b_stack.enter_async_context(b.token("m/b"))
            assert await seen.receive() == Liveliness("m/b", alive=True)
            b.close()  # crashed: its contexts are still open
            assert await seen.receive() == Liveliness("m/b", alive=False)
            a.publish("k", b"late")
            assert len(inbox) == 0
            assert await a.query("q", {}, within=1.0) == []
            assert len(requests) == 0
            await b_stack.aclose()

    run(main)
