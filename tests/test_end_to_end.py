"""End-to-end determinism: a whole cluster in memory, over a seeded lossy network.

Every node of a generated trace pushes its own events through a ``ProducerOutbox``; the network
loses, copies, delays and reorders the envelopes, the master's acknowledgements, its broadcast and
its heartbeats; simulated time advances and the outboxes resend what is due. The master
(``MasterCore`` owning an ``EventLog``) ingests what arrives and runs ``plan_cycle`` every period
(its own ``NodeDisconnected`` decisions: the trace's are dropped). Three ``NodeCore`` replicas keep
the State from the broadcast and fetch ``events_since`` pages when they report ``missing``; one
joins late from a (by then stale) snapshot State. Some runs restart the master midway: it is closed
and reopened from its log under a new session, and the producers ``retarget`` their pending events.

After draining (every outbox empty, every replica caught up), the replicas' States, the master's
State and the reference fold of the log read back from disk are all equal; every pushed event is in
the log exactly once, each producer's events in push order; and the same seed gives the same log.
"""

from __future__ import annotations

import json
import random
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clusterstate
from clusterstate import CoreState, EventLog, MasterCore, NodeCore, ProducerOutbox, reference
from clusterstate.models import Event, IndexedEvent, NodeDisconnected, NodeTimedOut
from clusterstate.simulation.lossy import Link
from clusterstate.trace import TraceConfig, cluster_spec, generate

Session = tuple[str, int]

DT = 0.5  # simulated seconds per tick
PERIOD = 2.0  # the master's plan period (its tracker's T); a plan cycle every 4 ticks
THRESHOLD = 3  # the tracker's K
DRAIN_LIMIT_S = 600.0  # simulated seconds allowed for draining once the trace has been pushed


@dataclass(frozen=True)
class Scenario:
    seed: int
    nodes: int = 4
    duration_s: float = 120.0
    restarts: tuple[float, ...] = ()  # when the master restarts, as fractions of the trace's duration
    listen_at: float = 0.3  # the late node starts receiving the broadcast (it fetches nothing yet)
    snapshot_at: float = 0.4  # the master writes a snapshot to its log; the late node is handed its State,
    # and is cut off from the master until it joins
    join_at: float = 0.55  # the late node joins from that stale snapshot and catches up through pages
    master_capacity: int = 4096  # per-producer resequencing bound: small, envelopes far ahead are refused
    envelope_loss: float = 0.2
    envelope_copy: float = 0.15
    ack_loss: float = 0.3
    broadcast_loss: float = 0.1


@dataclass
class Replica:
    """A node's `NodeCore`, with its incoming broadcast and heartbeat links."""

    name: str
    broadcast: Link[bytes]
    heartbeat: Link[int]
    capacity: int
    core: NodeCore | None = None  # None until the node listens
    joined: bool = True  # False while the late node waits to join: it fetches no page yet
    cut_off: bool = False  # nothing reaches the node (broadcast, heartbeats) while it is cut off
    snapshot: CoreState | None = None  # the State the late node joins from
    last_missing: int | None = None
    pages: int = 0


@dataclass
class Restart:
    """What one master restart is expected to do."""

    session: Session
    loaded_snapshot: int | None
    replays: int  # pending events the old master had applied and logged: acknowledged again, not applied
    replayed: int | None = None  # the new master's `replayed_duplicates` once it is closed


@dataclass
class Cluster:
    scenario: Scenario
    log_dir: Path
    rng: random.Random
    master_node: str
    silent_node: str
    events: list[IndexedEvent]  # the trace less its master-only events, in push order
    master: MasterCore
    to_master: Link[bytes]
    acks: Link[tuple[Session, str, int]]
    replicas: list[Replica]
    boxes: dict[str, ProducerOutbox] = field(default_factory=dict)
    pushed: dict[str, list[Event]] = field(default_factory=lambda: defaultdict(list))
    snapshot_index: int | None = None
    restarts: list[Restart] = field(default_factory=list)
    totals: Counter[str] = field(default_factory=Counter)  # the counters of the masters closed so far


def new_master(scenario: Scenario, session: Session, log: EventLog) -> MasterCore:
    return MasterCore(session, log=log, capacity=scenario.master_capacity, period_s=PERIOD, threshold=THRESHOLD)


def build(scenario: Scenario, log_dir: Path) -> Cluster:
    config = TraceConfig(nodes=scenario.nodes, duration_s=scenario.duration_s, seed=scenario.seed, silent_nodes=1)
    spec = cluster_spec(config)
    master_node = str(spec.nodes[0].node_id)
    (silent_node,) = [str(node.node_id) for node in spec.nodes if node.silent_at is not None]
    # NodeDisconnected / NodeTimedOut are the master's decisions: its plan_cycle makes its own.
    events = [event for event in generate(config) if not isinstance(event.event, (NodeDisconnected, NodeTimedOut))]
    assert len({str(event.event.event_id) for event in events}) == len(events)
    rng = random.Random(scenario.seed)
    log = EventLog(log_dir, create=True, durability="none", segment_bytes=16384, index_every=16)
    replicas = [
        Replica(
            name,
            Link(rng, loss=scenario.broadcast_loss, copy=0.1),
            Link(rng, loss=0.3, copy=0.0),
            capacity,
        )
        for name, capacity in (("steady", 4096), ("small-buffer", 16), ("late", 4096))
    ]
    for replica in replicas[:2]:
        replica.core = NodeCore(capacity=replica.capacity)
    replicas[2].joined = False
    return Cluster(
        scenario,
        log_dir,
        rng,
        master_node,
        silent_node,
        events,
        new_master(scenario, (master_node, 1), log),
        Link(rng, loss=scenario.envelope_loss, copy=scenario.envelope_copy),
        Link(rng, loss=scenario.ack_loss, copy=0.1),
        replicas,
    )


def broadcast(cluster: Cluster, lines: list[bytes]) -> None:
    for replica in cluster.replicas:
        if replica.core is not None and not replica.cut_off:
            for line in lines:
                replica.broadcast.send(line)


def whole_log(master: MasterCore) -> list[bytes]:
    """Every event of the master's log, through catch-up pages."""
    pages: list[bytes] = []
    while page := master.events_since(len(pages), limit=97):
        pages += page
    assert len(pages) == master.next_index
    return pages


def restart_master(cluster: Cluster) -> None:
    """Close the master and reopen its log under a new session; the producers re-address what is pending."""
    old = cluster.master
    state, next_index = old.state, old.next_index
    logged_ids = {str(clusterstate.decode_indexed_event(line).event.event_id) for line in whole_log(old)}
    cluster.totals.update(old.counters)
    if cluster.restarts:
        cluster.restarts[-1].replayed = old.counters["replayed_duplicates"]
    old.close()
    session = (cluster.master_node, old.session[1] + 1)
    cluster.master = new_master(cluster.scenario, session, EventLog(cluster.log_dir))
    assert cluster.master.next_index == next_index
    assert cluster.master.state == state
    assert cluster.master.loaded_snapshot_index == cluster.snapshot_index
    replays = 0
    for box in cluster.boxes.values():
        pending = box.pending
        resent = box.retarget(session)
        assert (len(resent), box.session) == (pending, session)
        for envelope in resent:
            replays += json.loads(envelope)["event"].popitem()[1]["event_id"] in logged_ids
            cluster.to_master.send(envelope)
    cluster.restarts.append(Restart(session, cluster.snapshot_index, replays))


def serve_replica(cluster: Cluster, replica: Replica) -> None:
    """Deliver what reached the replica this tick; fetch one page if a gap did not close by itself."""
    core = replica.core
    if core is None:
        return
    arrived = replica.broadcast.deliver()
    if arrived:
        result = core.receive(arrived)
        assert result.rejected == []
        assert result.missing == core.missing
    for hint in replica.heartbeat.deliver():
        core.note_master_index(hint)
    if not replica.joined:
        return
    missing = core.missing
    if missing is not None and missing == replica.last_missing:
        page = cluster.master.events_since(missing, limit=cluster.rng.randint(1, 40))
        assert page, "a node misses an event the master does not have"
        assert clusterstate.decode_indexed_event(page[0]).idx == missing
        result = core.receive(page)
        assert result.rejected == []
        assert result.applied >= 1  # a page starts at the node's next index
        replica.pages += 1
    replica.last_missing = core.missing


def late_node(cluster: Cluster, now: float) -> None:
    """The late node listens, is handed a snapshot, and joins from it once that snapshot is stale."""
    scenario, late = cluster.scenario, cluster.replicas[-1]
    if late.core is None and now >= scenario.listen_at * scenario.duration_s:
        late.core = NodeCore(capacity=late.capacity)
    if late.snapshot is None and now >= scenario.snapshot_at * scenario.duration_s:
        late.snapshot = cluster.master.state
        cluster.snapshot_index = cluster.master.snapshot()
        assert cluster.snapshot_index == late.snapshot.last_event_applied_idx
        late.cut_off = True
    # Once the master indexed past the snapshot (events the late node cannot have received), it joins.
    stale = late.snapshot is not None and late.snapshot.last_event_applied_idx < cluster.master.next_index - 1
    if not late.joined and stale and now >= scenario.join_at * scenario.duration_s:
        assert late.core is not None
        assert late.snapshot is not None
        assert late.core.join(late.snapshot) is True
        # What it buffered since it listened is covered by the snapshot and dropped; the rest must be fetched.
        assert late.core.next_index == late.snapshot.last_event_applied_idx + 1
        assert late.core.counters["buffered"] == 0
        late.joined = True
        late.cut_off = False


def tick(cluster: Cluster, now: float, events: list[IndexedEvent]) -> None:
    """One step of simulated time: push `events`, resend, deliver, ingest, plan, acknowledge, replicate."""
    for event in events:
        node = str(event.origin) if event.origin is not None else cluster.master_node
        if node not in cluster.boxes:
            # A seeded producer id (rather than `new_producer_id`'s random one): a seed replays exactly.
            producer = f"{node}/boot-{cluster.rng.getrandbits(32):08x}"
            cluster.boxes[node] = ProducerOutbox(
                producer, node, cluster.master.session, resend_after_s=1.0, max_resend_after_s=4.0
            )
        cluster.to_master.send(cluster.boxes[node].push(event.event, now=now))
        cluster.pushed[node].append(event.event)
    for box in cluster.boxes.values():
        for envelope in box.due(now):
            cluster.to_master.send(envelope)

    master = cluster.master
    if batch := cluster.to_master.deliver():
        result = master.ingest(batch)
        # Only an envelope too far ahead of its producer's gap is refused (resent once the gap fills).
        assert {reason for _, reason in result.rejected} <= {"buffer_full"}
        broadcast(cluster, result.broadcast)
        for producer, seq in result.acknowledged:
            cluster.acks.send((master.session, producer, seq))
    if round(now / DT) % round(PERIOD / DT) == 0:
        cycle = master.plan_cycle(now)
        assert len(cycle.broadcast) == len(cycle.decisions)
        broadcast(cluster, cycle.broadcast)

    by_session: dict[Session, list[tuple[str, int]]] = defaultdict(list)
    for session, producer, seq in cluster.acks.deliver():
        by_session[session].append((producer, seq))
    for session, acks in by_session.items():  # a previous master's acknowledgements are ignored
        for box in cluster.boxes.values():
            box.acknowledge(acks, session=session)

    late_node(cluster, now)
    for replica in cluster.replicas:
        if replica.core is not None and not replica.cut_off:
            replica.heartbeat.send(master.next_index)
        serve_replica(cluster, replica)


def drained(cluster: Cluster) -> bool:
    if any(box.pending for box in cluster.boxes.values()):
        return False
    return all(
        replica.core is not None
        and replica.joined
        and replica.core.missing is None
        and replica.core.next_index == cluster.master.next_index
        for replica in cluster.replicas
    )


def run(scenario: Scenario, log_dir: Path) -> Cluster:
    cluster = build(scenario, log_dir)
    duration, total = scenario.duration_s, len(cluster.events)
    restarts = sorted(scenario.restarts)
    pushed = 0
    step = 0
    while True:
        step += 1
        now = step * DT
        while restarts and now >= restarts[0] * duration:
            restarts.pop(0)
            restart_master(cluster)
        upto = total if now >= duration else int(total * now / duration)  # the trace, spread evenly
        tick(cluster, now, cluster.events[pushed:upto])
        pushed = max(pushed, upto)
        if now >= duration and drained(cluster):
            return cluster
        assert now < duration + DRAIN_LIMIT_S, "the cluster did not drain"


def check(cluster: Cluster, *, silent_node_decided: bool = True) -> tuple[list[IndexedEvent], Counter[str]]:
    """Equal States everywhere, the log's fold among them; every pushed event logged once, in push order.

    `silent_node_decided`: the master must have disconnected the node that crashed for good. Not so when a
    restart came soon after its last event (a new master's tracker starts over) or its last events reached
    the master late: once the cluster drains, the master indexes nothing, and its cycles no longer count.

    Closes the master; returns the log read back from disk and the masters' counters summed.
    """
    master = cluster.master
    counters = master.counters
    totals = cluster.totals + Counter(counters)
    assert totals["rejected"] == totals["rejected_buffer_full"]
    assert totals["unlogged"] == counters["buffered"] == 0

    pages = whole_log(master)
    final = master.state
    master.close()
    with EventLog(cluster.log_dir) as log:  # the master released the directory
        assert log.next_index == len(pages)
        raw = log.read_range_raw(0, log.next_index)
        logged = log.read_range(0, log.next_index)
    assert raw == pages  # pages are the very bytes the log holds
    assert [clusterstate.decode_indexed_event(line) for line in raw] == logged
    assert [event.idx for event in logged] == list(range(len(logged)))

    folded = reference.fold(logged)
    assert final == folded
    assert final.last_event_applied_idx == len(logged) - 1
    for replica in cluster.replicas:
        assert replica.core is not None
        assert replica.core.state == final, replica.name
        assert replica.core.state == folded, replica.name
        node = replica.core.counters
        assert node["conflicts"] == node["rejected"] == node["buffered"] == 0, replica.name

    # Exactly once: the log's event ids are the pushed ones plus the master's own decisions, none twice.
    ids = Counter(str(event.event.event_id) for event in logged)
    assert [event_id for event_id, n in ids.items() if n > 1] == []
    decisions = [event for event in logged if isinstance(event.event, NodeDisconnected)]
    assert all(str(event.origin) == cluster.master_node for event in decisions)
    if silent_node_decided:
        assert cluster.silent_node in {str(event.event.node_id) for event in decisions}  # type: ignore[union-attr]
    assert len(decisions) == totals["disconnects"]
    pushed_ids = {str(event.event_id) for events in cluster.pushed.values() for event in events}
    assert len(pushed_ids) == len(cluster.events)  # the whole trace was pushed
    assert set(ids) == pushed_ids | {str(event.event.event_id) for event in decisions}
    assert not any(isinstance(event.event, NodeTimedOut) for event in logged)
    assert totals["applied"] == len(logged)  # decisions included

    # Each producer's events, in push order.
    by_node: dict[str, list[Event]] = defaultdict(list)
    for event in logged:
        if not isinstance(event.event, NodeDisconnected):
            by_node[str(event.origin)].append(event.event)
    assert by_node == cluster.pushed

    # Across each restart, the resent events the old master had logged were acknowledged, not applied again.
    assert [restart.session[1] for restart in cluster.restarts] == list(range(2, 2 + len(cluster.restarts)))
    # A master restarted again before it received all of them passes the rest on to the next one: only the
    # last master (drained) sees all of its replays.
    if cluster.restarts:
        cluster.restarts[-1].replayed = counters["replayed_duplicates"]
        assert cluster.restarts[-1].replayed == cluster.restarts[-1].replays
        assert all(0 <= (restart.replayed or 0) <= restart.replays for restart in cluster.restarts)
    assert totals["replayed_duplicates"] == sum(restart.replayed or 0 for restart in cluster.restarts)

    # The network really was hostile, and the machinery really was used.
    assert cluster.to_master.lost > 0
    assert cluster.to_master.copied > 0
    assert cluster.acks.lost > 0
    assert totals["duplicates"] > 0
    assert sum(box.counters["resent"] for box in cluster.boxes.values()) > 0
    assert sum(replica.pages for replica in cluster.replicas) > 0
    late = cluster.replicas[-1]
    assert late.core is not None
    assert late.core.counters["joins"] == 1
    assert late.pages > 0  # it caught up through pages ...
    assert late.core.counters["applied"] < len(logged)  # ... without replaying what its snapshot covered
    return logged, totals


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_a_lossy_cluster_converges_to_one_state(seed: int, tmp_path: Path) -> None:
    check(run(Scenario(seed=seed, nodes=3 + seed % 2), tmp_path / "log"))


@pytest.mark.parametrize(
    ("seed", "restarts"),
    [
        (5, (0.5,)),  # after the snapshot: the reopened master loads it
        (6, (0.2,)),  # before the snapshot and before the late node listens
        (7, (0.35, 0.7)),  # twice
    ],
)
def test_master_restarts_keep_exactly_once(seed: int, restarts: tuple[float, ...], tmp_path: Path) -> None:
    cluster = run(Scenario(seed=seed, restarts=restarts), tmp_path / "log")
    assert len(cluster.restarts) == len(restarts)
    assert cluster.master.session == (cluster.master_node, 1 + len(restarts))
    # A master reopened after the snapshot was written rebuilt its State from it (plus the tail).
    loaded = [restart.loaded_snapshot for restart in cluster.restarts]
    assert loaded == [None if at < Scenario.snapshot_at else cluster.snapshot_index for at in restarts]
    check(cluster)
    # Unacknowledged events the old master had applied were resent to the new one (lost acknowledgements).
    assert sum(restart.replays for restart in cluster.restarts) > 0


def test_a_small_master_buffer_refuses_far_ahead_envelopes_until_the_gap_fills(tmp_path: Path) -> None:
    scenario = Scenario(seed=8, master_capacity=4, envelope_loss=0.3, restarts=(0.6,))
    _, totals = check(run(scenario, tmp_path / "log"))
    assert totals["rejected_buffer_full"] > 0


def test_the_same_seed_gives_the_same_log(tmp_path: Path) -> None:
    """Determinism: the same scenario twice gives the same log, but for the ids of the master's decisions
    (fresh uuid4s), and the same final State."""
    scenario = Scenario(seed=11, restarts=(0.5,))
    runs = []
    for name in ("first", "second"):
        cluster = run(scenario, tmp_path / name)
        state = cluster.master.state
        logged, _ = check(cluster)
        runs.append(
            (
                state,
                [
                    (event.idx, str(event.origin), event.event.model_dump(exclude={"event_id"}))
                    if isinstance(event.event, NodeDisconnected)
                    else (event.idx, str(event.origin), event.event.model_dump())
                    for event in logged
                ],
            )
        )
    assert runs[0] == runs[1]


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    nodes=st.integers(3, 5),
    restarts=st.lists(st.sampled_from([0.25, 0.45, 0.65, 0.8]), max_size=2, unique=True).map(tuple),
    envelope_loss=st.sampled_from([0.05, 0.2, 0.4]),
    envelope_copy=st.sampled_from([0.05, 0.3]),
    ack_loss=st.sampled_from([0.1, 0.5]),
    broadcast_loss=st.sampled_from([0.02, 0.1, 0.3]),
    master_capacity=st.sampled_from([8, 4096]),
)
def test_any_seed_and_network_converge(
    seed: int,
    nodes: int,
    restarts: tuple[float, ...],
    envelope_loss: float,
    envelope_copy: float,
    ack_loss: float,
    broadcast_loss: float,
    master_capacity: int,
) -> None:
    scenario = Scenario(
        seed=seed,
        nodes=nodes,
        duration_s=60.0,
        restarts=restarts,
        envelope_loss=envelope_loss,
        envelope_copy=envelope_copy,
        ack_loss=ack_loss,
        broadcast_loss=broadcast_loss,
        master_capacity=master_capacity,
    )
    with tempfile.TemporaryDirectory() as directory:
        check(run(scenario, Path(directory) / "log"), silent_node_decided=False)
