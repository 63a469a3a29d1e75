"""The runtime's steps driven together in one process over the seeded in-memory network, in simulated time.

Every node runs a producer step and a follower step; the first also runs the leader step, with a ``MasterCore``
owning an ``EventLog``. A small driver moves the steps' effects to ``MemoryNetwork`` transports (with loss,
duplication, delay and reordering), feeds what arrives back into the steps, answers page queries through the
leader, and advances the clock by `DT` per tick: nothing sleeps, and a seed replays the same run.

Checked: every acknowledgement released to a producer names an event its own node had already applied (after every
step); after quiescence every pushed event is in the master's log exactly once and every node's State equals the
reference fold of the log read back; a master restart under a new session, with the producers retargeting, loses
nothing. A gate that releases at once is caught.
"""

from __future__ import annotations

import functools
import json
import random
import tempfile
from collections import Counter
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clusterstate import EventLog, MasterCore, NodeCore, ProducerOutbox, reference
from clusterstate.models import IndexedEvent, NodeDisconnected, NodeTimedOut
from clusterstate.runtime.actions import Answer, Effect, Fetch, Publish, Subscribe, Unsubscribe
from clusterstate.runtime.follower import FollowerStep
from clusterstate.runtime.gating import AckGate, Pair
from clusterstate.runtime.keys import Keys, Session
from clusterstate.runtime.leader import LeaderStep
from clusterstate.runtime.producer import ProducerStep
from clusterstate.runtime.transport import Inbox, Request
from clusterstate.runtime.transport.memory import Faults, MemoryNetwork, MemoryTransport
from clusterstate.runtime.wire import split_frame
from clusterstate.trace import TraceConfig, cluster_spec, generate

DT = 0.5  # simulated seconds per tick
PERIOD = 2.0  # the leader's plan period
DURATION = 40.0  # simulated seconds over which the trace is pushed
DRAIN_TICKS = 2000  # ticks allowed for quiescence once the trace is pushed
KEYS = Keys("sim")
T = TypeVar("T")
Kind = Literal["local", "progress", "global", "heartbeat", "ack"]
FAULTS = Faults(loss=0.15, copy=0.1, delay=0.3, reorder=True)


class WatchedGate(AckGate):
    """The real gate, reporting every pair it releases to `released`."""

    def __init__(self, released: list[Pair]) -> None:
        super().__init__()
        self.released = released

    def release(self, applied: int, commit: int | None = None) -> list[Pair]:
        pairs = super().release(applied, commit)
        self.released.extend(pairs)
        return pairs


class EagerGate(WatchedGate):
    """A broken rule: every acknowledgement released as soon as it is held, whatever the node applied."""

    def release(self, applied: int, commit: int | None = None) -> list[Pair]:
        return super().release(2**62, commit)


@dataclass
class Subscription:
    context: AbstractAsyncContextManager[Inbox[bytes]]
    inbox: Inbox[bytes]
    kind: Kind
    session: Session  # the session it was made for (unused for "local")


@dataclass
class Node:
    name: str
    transport: MemoryTransport
    producer: ProducerStep
    follower: FollowerStep
    released: list[Pair]  # what the producer's gate released since the driver last looked
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    pages: list[tuple[int, Answer | None]] = field(default_factory=list)  # page replies not yet handed over
    fetches: list[anyio.CancelScope] = field(default_factory=list)  # queries waiting for a reply


def new_outbox(producer_id: str, node: str, session: Session) -> ProducerOutbox:
    """The producers' outboxes: the one place their resend options are given."""
    return ProducerOutbox(producer_id, node, (session.master, session.term), resend_after_s=1.0, max_resend_after_s=4.0)


def new_leader(log_dir: Path, session: Session, now: float, *, create: bool = False) -> LeaderStep:
    log = EventLog(log_dir, create=create, durability="none", segment_bytes=16384, index_every=16)
    master = MasterCore((session.master, session.term), log=log, period_s=PERIOD, threshold=3)
    return LeaderStep(master, KEYS, now=now, period_s=PERIOD, heartbeat_s=1.0, snapshot_every=40)


async def drain(inbox: Inbox[T]) -> list[T]:
    return [await inbox.receive() for _ in range(len(inbox))]


class Sim:
    """N nodes over one seeded memory network; the first node leads. Time is `now`, advanced by :meth:`tick`."""

    def __init__(
        self,
        seed: int,
        log_dir: Path,
        task_group: anyio.abc.TaskGroup,
        *,
        nodes: int = 3,
        gate: type[WatchedGate] = WatchedGate,
    ) -> None:
        config = TraceConfig(nodes=nodes, duration_s=DURATION, seed=seed, silent_nodes=1)
        self.names = [str(node.node_id) for node in cluster_spec(config).nodes]
        # NodeDisconnected / NodeTimedOut are the master's decisions: its plan cycles make its own.
        self.events = [e for e in generate(config) if not isinstance(e.event, (NodeDisconnected, NodeTimedOut))]
        self.log_dir = log_dir
        self.task_group = task_group
        self.network = MemoryNetwork(seed, FAULTS)
        rng = random.Random(seed)
        self.now = 0.0
        session = Session(1, self.names[0])
        self.leader = new_leader(log_dir, session, self.now, create=True)
        self.serving: tuple[AbstractAsyncContextManager[Inbox[Request]], Inbox[Request]] | None = None
        self.nodes: list[Node] = []
        for name in self.names:
            released: list[Pair] = []
            outbox = new_outbox(f"{name}/boot-{rng.getrandbits(32):08x}", name, session)
            producer = ProducerStep(outbox, KEYS, gate=functools.partial(gate, released))
            follower = FollowerStep(NodeCore(), KEYS, page_limit=25, page_timeout=2.0, retry_after=1.0)
            self.nodes.append(Node(name, MemoryTransport(self.network), producer, follower, released))
        self.pushed: list[str] = []  # event ids, in push order
        self.released: Counter[str] = Counter()  # event ids the producers' gates released
        self.envelope_ids: dict[tuple[Session, str, int], str] = {}  # (session, producer, seq) -> event id
        self.log_index: dict[str, int] = {}  # event id -> global index, from the leader's frames
        self.violations: list[str] = []

    @property
    def leader_node(self) -> Node:
        return self.nodes[0]

    async def start(self) -> None:
        await self.lead()
        for node in self.nodes:
            await self.do(node, node.producer.start())
            await self.do(node, node.follower.follow(self.leader.session, self.now))

    async def lead(self) -> None:
        await self.do(self.leader_node, self.leader.start())
        context = self.leader_node.transport.serve(self.leader.events_key)
        self.serving = (context, await context.__aenter__())

    async def restart_leader(self) -> None:
        """Close the master, reopen its log under the next term; every node follows and retargets."""
        assert self.serving is not None
        await self.do(self.leader_node, [Unsubscribe(KEYS.locals())])
        await self.serving[0].__aexit__(None, None, None)
        for node in self.nodes:  # queries the closed queryable will never answer
            for scope in node.fetches:
                scope.cancel()
        self.leader.master.close()
        self.leader = new_leader(self.log_dir, Session(self.leader.session.term + 1, self.names[0]), self.now)
        await self.lead()
        for node in self.nodes:
            await self.do(node, node.producer.retarget(self.leader.session))
            await self.do(node, node.follower.follow(self.leader.session, self.now))

    async def tick(self, events: list[IndexedEvent]) -> None:
        """One step of simulated time: deliver, feed the steps, answer queries, push `events`, run the timers."""
        self.now += DT
        await anyio.wait_all_tasks_blocked()  # the queries started last tick have asked, or have their reply
        self.network.tick()
        for node in self.nodes:
            for subscription in list(node.subscriptions.values()):
                await self.dispatch(node, subscription, await drain(subscription.inbox))
            pages, node.pages = node.pages, []
            for ident, answer in pages:
                await self.do(node, node.follower.on_page(ident, answer, self.now))
            self.settle(node)
        assert self.serving is not None
        for request in await drain(self.serving[1]):
            answer = self.leader.on_query(request.parameters)
            (request.reply if answer.ok else request.reply_err)(answer.payload)
        for event in events:
            node = self.nodes[self.names.index(str(event.origin))]
            self.pushed.append(str(event.event.event_id))
            await self.do(node, node.producer.push(event.event, self.now))
        await self.do(self.leader_node, self.leader.tick(self.now))
        for node in self.nodes:
            await self.do(node, node.producer.tick(self.now) + node.follower.tick(self.now))

    async def dispatch(self, node: Node, subscription: Subscription, payloads: list[bytes]) -> None:
        session, now = subscription.session, self.now
        if subscription.kind == "local":
            await self.do(node, self.leader.on_envelopes(payloads, now))
        for payload in payloads:
            if subscription.kind == "global":
                await self.do(node, node.follower.on_frames(session, [payload], now))
            elif subscription.kind == "heartbeat":
                await self.do(node, node.follower.on_heartbeat(session, payload, now))
            elif subscription.kind == "progress":
                await self.do(node, self.leader.on_progress([payload], now))
            elif subscription.kind == "ack":
                await self.do(node, node.producer.on_ack(session, payload, node.follower.next_index, now))
                self.check_released(node)
        self.settle(node)

    def settle(self, node: Node) -> None:
        """Release what the node's follower has applied, and check every release against it."""
        node.producer.on_applied(node.follower.next_index)
        self.check_released(node)

    def check_released(self, node: Node) -> None:
        applied = node.follower.next_index
        for producer, seq in node.released:
            event_id = self.envelope_ids[node.producer.session, producer, seq]
            idx = self.log_index.get(event_id)
            if idx is None or idx >= applied:
                self.violations.append(f"{node.name}: {event_id} (idx {idx}) released at applied {applied}")
            self.released[event_id] += 1
        node.released.clear()

    async def do(self, node: Node, effects: list[Effect]) -> None:
        """Carry out a step's effects over `node`'s transport."""
        for effect in effects:
            if isinstance(effect, Publish):
                self.observe(node, effect)
                node.transport.publish(effect.key, effect.payload)
            elif isinstance(effect, Subscribe):
                context = node.transport.subscribe(effect.pattern)
                kind, session = self.kind_of(node, effect.pattern)
                node.subscriptions[effect.pattern] = Subscription(context, await context.__aenter__(), kind, session)
            elif isinstance(effect, Unsubscribe):
                await node.subscriptions.pop(effect.pattern).context.__aexit__(None, None, None)
            else:
                assert isinstance(effect, Fetch), effect  # the steps hold no tokens and serve nothing themselves
                self.task_group.start_soon(self.fetch, node, effect)

    def kind_of(self, node: Node, pattern: str) -> tuple[Kind, Session]:
        follower = node.follower.session
        if pattern == KEYS.locals():
            return "local", self.leader.session
        if pattern == KEYS.progresses(self.leader.session):
            return "progress", self.leader.session
        if follower is not None and pattern == KEYS.global_(follower):
            return "global", follower
        if follower is not None and pattern == KEYS.heartbeat(follower):
            return "heartbeat", follower
        assert pattern == KEYS.ack(node.producer.session, node.name), pattern
        return "ack", node.producer.session

    def observe(self, node: Node, effect: Publish) -> None:
        """Note which event each envelope carries and which index the leader gave each event."""
        if effect.key == KEYS.local(node.name):
            for line in split_frame(effect.payload):
                envelope = json.loads(line)
                session = Session(envelope["session"]["election_clock"], envelope["session"]["master_node_id"])
                ((_, event),) = envelope["event"].items()
                self.envelope_ids[session, envelope["origin"], envelope["origin_idx"]] = event["event_id"]
        elif effect.key == KEYS.global_(self.leader.session):
            for line in split_frame(effect.payload):
                indexed = IndexedEvent.model_validate_json(line)
                self.log_index.setdefault(str(indexed.event.event_id), indexed.idx)

    async def fetch(self, node: Node, effect: Fetch) -> None:
        with anyio.CancelScope() as scope:
            node.fetches.append(scope)
            replies = await node.transport.query(effect.key, effect.parameters, within=3600.0)
            node.pages.append((effect.ident, Answer(replies[0].payload, replies[0].ok) if replies else None))
        node.fetches.remove(scope)

    def quiet(self) -> bool:
        master = self.leader.master
        return all(
            node.producer.outbox.pending == 0
            and node.follower.core.missing is None
            and node.follower.next_index == master.next_index
            for node in self.nodes
        )

    async def run(self, restarts: tuple[float, ...] = ()) -> None:
        """Push the trace over `DURATION` (restarting the leader at the given fractions of it), then drain."""
        await self.start()
        pending = sorted(restarts)
        pushed = 0
        for _ in range(round(DURATION / DT) + DRAIN_TICKS):
            while pending and self.now >= pending[0] * DURATION:
                pending.pop(0)
                await self.restart_leader()
            upto = min(len(self.events), int(len(self.events) * (self.now + DT) / DURATION))
            await self.tick(self.events[pushed:upto])
            pushed = max(pushed, upto)
            if pushed == len(self.events) and not pending and self.quiet():
                break
        assert self.quiet(), "the cluster did not drain"


def simulate(
    seed: int, log_dir: Path, *, restarts: tuple[float, ...] = (), nodes: int = 3, gate: type[WatchedGate] = WatchedGate
) -> Sim:
    result: list[Sim] = []

    async def main() -> None:
        async with anyio.create_task_group() as task_group:
            sim = Sim(seed, log_dir, task_group, nodes=nodes, gate=gate)
            await sim.run(restarts)
            result.append(sim)
            task_group.cancel_scope.cancel()  # the queries still waiting for a reply

    anyio.run(main, backend="asyncio")
    return result[0]


def check(sim: Sim) -> list[IndexedEvent]:
    """Nothing released early; every pushed event released and logged exactly once; every State is the log's fold.
    Closes the master; returns the log read back."""
    assert sim.violations == []
    master = sim.leader.master
    next_index = master.next_index
    master.close()
    with EventLog(sim.log_dir) as log:
        logged = log.read_range(0, log.next_index)
    assert [event.idx for event in logged] == list(range(next_index))
    ids = Counter(str(event.event.event_id) for event in logged)
    assert [event_id for event_id, n in ids.items() if n > 1] == []
    assert len(set(sim.pushed)) == len(sim.pushed) == len(sim.events)
    assert set(sim.released) == set(sim.pushed)  # every push was released to its producer ...
    assert set(sim.pushed) <= set(ids)  # ... and is in the log, once
    others = [event.event for event in logged if str(event.event.event_id) not in set(sim.pushed)]
    assert all(isinstance(event, NodeDisconnected) for event in others)  # the rest are the master's decisions
    folded = reference.fold(logged)
    for node in sim.nodes:
        assert node.follower.core.state == folded, node.name
        assert node.follower.core.counters["conflicts"] == node.follower.core.counters["rejected"] == 0
    # The network really was hostile and the machinery was used.
    assert sim.network.lost > 0
    assert sim.network.copied > 0
    assert sum(node.producer.outbox.counters["resent"] for node in sim.nodes) > 0
    assert sum(node.follower.counters["pages"] for node in sim.nodes) > 0
    return logged


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_lossy_cluster_of_steps_converges_exactly_once(seed: int, tmp_path: Path) -> None:
    check(simulate(seed, tmp_path / "log", nodes=3 + seed % 2))


@pytest.mark.parametrize(("seed", "restarts"), [(3, (0.5,)), (4, (0.3, 0.7))])
def test_master_restarts_under_a_new_session_lose_nothing(
    seed: int, restarts: tuple[float, ...], tmp_path: Path
) -> None:
    sim = simulate(seed, tmp_path / "log", restarts=restarts)
    assert sim.leader.session == Session(1 + len(restarts), sim.names[0])
    check(sim)
    # Pending events the old master had logged came back retargeted: acknowledged again, not applied twice.
    assert sim.leader.master.counters["replayed_duplicates"] > 0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), restarts=st.sampled_from([(), (0.4,), (0.25, 0.6)]))
def test_no_acknowledgement_is_released_before_the_own_node_applied_it(seed: int, restarts: tuple[float, ...]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        check(simulate(seed, Path(directory) / "log", restarts=restarts))


def test_a_gate_that_releases_at_once_is_caught(tmp_path: Path) -> None:
    sim = simulate(5, tmp_path / "log", gate=EagerGate)
    assert sim.violations  # acknowledgements released before the producer's own node applied their events
    with pytest.raises(AssertionError):
        check(sim)
