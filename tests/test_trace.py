"""The trace generator: deterministic, valid, at exo's rates, and folding into the State it describes."""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence

import pytest

from clusterstate.codec import decode_indexed_event
from clusterstate.models import (
    ChunkGenerated,
    ConnectToGroup,
    CreateRunner,
    DownloadCompleted,
    DownloadModel,
    DownloadOngoing,
    DownloadPending,
    IndexedEvent,
    InstanceCreated,
    InstanceDeleted,
    LoadModel,
    MacmonMetrics,
    MacThunderboltConnections,
    MacThunderboltIdentifiers,
    MemoryUsage,
    MlxJacclInstance,
    NodeConfig,
    NodeDisconnected,
    NodeDiskUsage,
    NodeDownloadProgress,
    NodeGatheredInfo,
    NodeId,
    RDMAConnection,
    RunnerShutdown,
    RunnerStatusUpdated,
    Shutdown,
    SocketConnection,
    StartWarmup,
    State,
    TaggedJson,
    TaskCreated,
    TaskDeleted,
    TaskStatusUpdated,
    TextGeneration,
    TopologyEdgeCreated,
    TopologyEdgeDeleted,
)
from clusterstate.reference import fold
from clusterstate.trace import TraceConfig, cluster_spec, generate, generate_trace, iter_trace, node_ids
from clusterstate.trace.monitors import LINUX_MONITORS, MAC_MONITORS, Monitor
from clusterstate.trace.payloads import model_spec, shard_bytes
from golden import OUT, TRACES

# A cluster with most things in it: 3 Macs cabled in a ring with the bridge on, 2 Linux boxes, an
# instance over the Macs and a steady stream of requests. Crashes have their own tests below.
RICH = TraceConfig(nodes=5, duration_s=150.0, seed=11, mac_fraction=0.6, requests_per_minute=6.0)
LIFECYCLE = (
    "RunnerIdle",
    "RunnerConnecting",
    "RunnerConnected",
    "RunnerLoading",
    "RunnerLoaded",
    "RunnerWarmingUp",
    "RunnerReady",
)


def _info_kind(event: IndexedEvent) -> str | None:
    inner = event.event
    return type(inner.info).__name__ if isinstance(inner, NodeGatheredInfo) else None


@pytest.fixture(scope="module")
def rich_trace() -> list[IndexedEvent]:
    return generate(RICH)


@pytest.fixture(scope="module")
def rich_state(rich_trace: list[IndexedEvent]) -> State:
    return fold(rich_trace)


# --- determinism and validity ---


def test_same_seed_gives_identical_bytes() -> None:
    config = TraceConfig(nodes=4, duration_s=60.0, seed=7, silent_nodes=1, rejoin_after_s=10.0)
    first = [event.model_dump_json() for event in generate(config)]
    second = [event.model_dump_json() for event in generate(config)]
    assert first == second


def test_different_seeds_give_different_traces() -> None:
    first = [event.model_dump_json() for event in generate_trace(4, 30.0, seed=1)]
    second = [event.model_dump_json() for event in generate_trace(4, 30.0, seed=2)]
    assert first != second
    assert set(node_ids(TraceConfig(nodes=4, seed=1))).isdisjoint(node_ids(TraceConfig(nodes=4, seed=2)))


def test_iter_trace_is_the_same_stream_as_generate() -> None:
    config = TraceConfig(nodes=3, duration_s=20.0, seed=3)
    assert list(iter_trace(config)) == generate(config)


def test_a_shorter_trace_is_a_prefix_of_a_longer_one() -> None:
    # What the benchmarks rely on to split a trace into a warm-up and a tail. (Not with silent
    # nodes: their crash times are fractions of the duration.)
    long = generate_trace(5, 60.0, seed=9, requests_per_minute=6.0)
    short = generate_trace(5, 35.0, seed=9, requests_per_minute=6.0)
    assert long[: len(short)] == short
    assert len(short) < len(long)


def test_every_event_validates_and_round_trips(rich_trace: list[IndexedEvent]) -> None:
    for event in rich_trace:
        encoded = event.model_dump_json()
        decoded = decode_indexed_event(encoded)
        assert decoded == event
        assert decoded.model_dump_json() == encoded


def test_indices_are_contiguous_from_zero(rich_trace: list[IndexedEvent]) -> None:
    assert [event.idx for event in rich_trace] == list(range(len(rich_trace)))


def test_ids_look_like_exo_ids(rich_trace: list[IndexedEvent]) -> None:
    ids = node_ids(RICH)
    assert len(set(ids)) == RICH.nodes
    for node_id in ids:
        assert re.fullmatch(r"12D3KooW[1-9A-HJ-NP-Za-km-z]{44}", node_id), node_id
    event_ids = [event.event.event_id for event in rich_trace]
    assert len(set(event_ids)) == len(event_ids)
    uuid4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
    assert all(uuid4.fullmatch(event_id) for event_id in event_ids)


def test_origins_are_the_producers(rich_trace: list[IndexedEvent]) -> None:
    master = node_ids(RICH)[0]
    generation_tasks_seen: set[str] = set()
    for indexed in rich_trace:
        event = indexed.event
        assert indexed.origin in node_ids(RICH)
        match event:
            case NodeGatheredInfo():
                assert indexed.origin == event.node_id
            case NodeDownloadProgress():
                assert indexed.origin == event.download_progress.node_id
            case TopologyEdgeCreated() | TopologyEdgeDeleted():
                assert indexed.origin == event.conn.source
            case InstanceCreated() | InstanceDeleted() | NodeDisconnected() | TaskDeleted():
                assert indexed.origin == master
            case TaskCreated(task=TextGeneration()) if event.task_id not in generation_tasks_seen:
                # The master creates a generation task; workers then re-emit it for their runners.
                generation_tasks_seen.add(event.task_id)
                assert indexed.origin == master
    assert generation_tasks_seen


def test_the_golden_traces_come_out_byte_for_byte() -> None:
    for name, config in TRACES.items():
        lines = [event.model_dump_json() for event in generate(config)]
        assert "\n".join(lines) + "\n" == (OUT / f"{name}.events.jsonl").read_text(encoding="utf-8"), name


def test_progress_tells_each_simulated_second_without_changing_the_trace() -> None:
    config = TraceConfig(nodes=4, duration_s=30.0, seed=7, silent_nodes=1)
    told: list[float] = []
    assert generate(config, told.append) == generate(config)
    assert len(told) >= 25  # monitors sample every few seconds, so nearly every second has an action
    assert all(1.0 <= now < config.duration_s for now in told)
    assert all(math.floor(later) > earlier for earlier, later in itertools.pairwise(told))


def test_config_rejects_nonsense() -> None:
    for duration in (math.inf, math.nan, 0.0):
        with pytest.raises(ValueError, match="duration_s must be positive and finite"):
            TraceConfig(nodes=2, duration_s=duration)
    with pytest.raises(ValueError, match="silent_nodes"):
        TraceConfig(nodes=2, silent_nodes=2)
    with pytest.raises(ValueError, match="mac_fraction"):
        TraceConfig(nodes=2, mac_fraction=1.5)
    with pytest.raises(ValueError, match="unknown model 'no/such-model'"):
        TraceConfig(nodes=2, models=("no/such-model",))


# --- rates ---


def _count_range(duration: float, boot: float, monitor: Monitor) -> tuple[int, int]:
    """How many samples a monitor can take: the first 0.05 to 1 s after boot, then every interval + sample time."""
    lo, hi = monitor.sample_s
    fewest = math.floor((duration - boot - 1.0) / (monitor.interval_s + hi)) + 1
    most = math.ceil((duration - boot - 0.05) / (monitor.interval_s + lo))
    return fewest, most


def test_monitor_rates_match_their_intervals() -> None:
    config = TraceConfig(nodes=4, duration_s=180.0, seed=5, instances=0)
    spec = cluster_spec(config)
    counts: dict[NodeId, Counter[str]] = defaultdict(Counter)
    for event in generate(config):
        kind = _info_kind(event)
        if kind is not None:
            assert event.origin is not None
            counts[event.origin][kind] += 1
    kinds = {
        "macmon": "MacmonMetrics",
        "memory": "MemoryUsage",
        "thunderbolt": "MacThunderboltIdentifiers",
        "thunderbolt_bridge": "ThunderboltBridgeInfo",
        "rdma_ctl": "RdmaCtlStatus",
        "network": "NodeNetworkInterfaces",
        "disk": "NodeDiskUsage",
        "misc": "MiscData",
        "static": "StaticNodeInformation",
    }
    for node in spec.nodes:
        seen = counts[node.node_id]
        monitors = MAC_MONITORS if node.kind == "mac" else LINUX_MONITORS
        for monitor in monitors:
            fewest, most = _count_range(config.duration_s, node.boot_at, monitor)
            assert fewest <= seen[kinds[monitor.name]] <= most, (node.kind, monitor.name, seen)
            # ... and those are exo's nominal rates, within the time the gathering itself takes.
            assert seen[kinds[monitor.name]] == pytest.approx(config.duration_s / monitor.interval_s, rel=0.12, abs=1)
        assert seen["NodeConfig"] == 1
        if node.kind == "mac":
            assert seen["MacThunderboltConnections"] == seen["MacThunderboltIdentifiers"]
            assert seen["MemoryUsage"] == 0
        else:
            assert {"MacmonMetrics", "MacThunderboltIdentifiers", "ThunderboltBridgeInfo"}.isdisjoint(seen)


@pytest.mark.parametrize(("mac_fraction", "low", "high"), [(1.0, 1.6, 1.85), (0.0, 1.1, 1.25)])
def test_idle_rates_per_node_match_exo(mac_fraction: float, low: float, high: float) -> None:
    # exo's measured idle rates: about 1.8 events/s per idle Mac with macmon, 1.17 per Linux box.
    config = TraceConfig(nodes=3, duration_s=300.0, seed=2, mac_fraction=mac_fraction, instances=0)
    samples = sum(1 for event in generate(config) if isinstance(event.event, NodeGatheredInfo))
    assert low <= samples / config.nodes / config.duration_s <= high


@pytest.mark.parametrize("seed", range(4))
def test_default_four_node_minute_rate(seed: int) -> None:
    # Monitors plus a light workload: the 1.2 to 1.8 events/s/node of an exo cluster, give or take a request.
    events = generate_trace(4, 60.0, seed)
    assert 1.2 <= len(events) / 4 / 60.0 <= 2.1


# --- crashes ---


def test_silent_node_stops_and_is_declared_disconnected() -> None:
    config = TraceConfig(nodes=4, duration_s=120.0, seed=4, silent_nodes=1)
    spec = cluster_spec(config)
    (silent,) = [node for node in spec.nodes if node.silent_at is not None]
    events = generate(config)
    (disconnect_at,) = [event.idx for event in events if isinstance(event.event, NodeDisconnected)]
    disconnect = events[disconnect_at].event
    assert isinstance(disconnect, NodeDisconnected)
    own = [event.idx for event in events if event.origin == silent.node_id]
    assert disconnect.node_id == silent.node_id
    assert disconnect.last_index == own[-1] < disconnect_at
    assert disconnect.stale_cycles == config.stale_cycles
    # 3 plan cycles of 10 s: the master's own heartbeats (1/s) count the 30 to 40 s between the two.
    master_beats = sum(
        1
        for event in events[own[-1] : disconnect_at]
        if event.origin == spec.master and _info_kind(event) == "MacmonMetrics"
    )
    assert 29 <= master_beats <= 41
    # It heartbeated once a second until it went silent.
    beats = sum(1 for event in events if event.origin == silent.node_id and _info_kind(event) == "MemoryUsage")
    assert silent.silent_at is not None
    assert abs(beats - (silent.silent_at - silent.boot_at)) <= 2
    state = fold(events)
    assert silent.node_id not in state.topology
    assert silent.node_id not in state.last_event_index_by_node
    assert silent.node_id not in state.node_memory
    assert state.node_identities[silent.node_id].friendly_name == silent.friendly_name
    # The others' sweeps dropped their edges to it before the master did.
    deleted = [event.event for event in events if isinstance(event.event, TopologyEdgeDeleted)]
    assert {conn.conn.sink for conn in deleted} == {silent.node_id}


def test_rejoining_node_comes_back_with_its_name() -> None:
    config = TraceConfig(nodes=3, duration_s=150.0, seed=8, silent_nodes=1, rejoin_after_s=50.0)
    spec = cluster_spec(config)
    (silent,) = [node for node in spec.nodes if node.silent_at is not None]
    events = generate(config)
    (disconnect_at,) = [event.idx for event in events if isinstance(event.event, NodeDisconnected)]
    after = [event for event in events[disconnect_at:] if event.origin == silent.node_id]
    assert after, "the node never came back"
    assert _info_kind(after[0]) == "NodeConfig"  # a new life starts by reading the config
    state = fold(events)
    assert silent.node_id in state.topology
    assert state.last_event_index_by_node[silent.node_id] == after[-1].idx
    assert state.node_identities[silent.node_id].friendly_name == silent.friendly_name
    peers = {conn.source for conn in state.topology.list_connections() if conn.sink == silent.node_id}
    assert peers == set(node_ids(config)) - {silent.node_id}


def test_instance_on_a_dead_node_is_deleted_and_runners_shut_down() -> None:
    config = TraceConfig(nodes=2, duration_s=120.0, seed=3, mac_fraction=1.0, silent_nodes=1)
    spec = cluster_spec(config)
    survivor, victim = spec.nodes
    events = generate(config)
    kinds = [type(event.event).__name__ for event in events]
    assert kinds.index("NodeDisconnected") < kinds.index("InstanceDeleted")
    state = fold(events)
    assert state.instances == {}
    shutdowns = [
        event.event
        for event in events
        if isinstance(event.event, TaskCreated) and isinstance(event.event.task, Shutdown)
    ]
    assert [event.task.instance_id for event in shutdowns] != []
    assert {state.tasks[event.task_id].task_status for event in shutdowns} == {"Complete"}
    survivor_runner = next(
        event.event.runner_id
        for event in events
        if isinstance(event.event, RunnerStatusUpdated) and event.origin == survivor.node_id
    )
    assert isinstance(state.runners[survivor_runner], RunnerShutdown)
    assert victim.node_id not in state.topology


# --- folding: the State holds what the cluster is ---


def test_fold_builds_the_topology(rich_trace: list[IndexedEvent], rich_state: State) -> None:
    spec = cluster_spec(RICH)
    assert rich_state.last_event_applied_idx == len(rich_trace) - 1
    assert set(rich_state.topology.list_nodes()) == set(node_ids(RICH))
    connections = rich_state.topology.list_connections()

    rdma = {
        (c.source, c.sink, c.edge.source_rdma_iface, c.edge.sink_rdma_iface)
        for c in connections
        if isinstance(c.edge, RDMAConnection)
    }
    expected_rdma = set()
    ports = {node.node_id: {port.domain_uuid: port.rdma_interface for port in node.tb_ports} for node in spec.nodes}
    owner = {uuid: node for node, by_uuid in ports.items() for uuid in by_uuid}
    for node in spec.nodes:
        for link in node.tb_links:
            sink = owner[link.sink_uuid]
            expected_rdma.add((node.node_id, sink, ports[node.node_id][link.source_uuid], ports[sink][link.sink_uuid]))
    assert len(spec.cables) == 3  # a ring of 3 Macs
    assert rdma == expected_rdma
    assert {(a, b) for a, b, _, _ in rdma} == {pair for a, b in spec.cables for pair in ((a, b), (b, a))}

    sockets = {
        (c.source, c.sink, c.edge.sink_multiaddr.address) for c in connections if isinstance(c.edge, SocketConnection)
    }
    lan = {(a.node_id, b.node_id, f"/ip4/{b.lan_ip}/tcp/52415") for a in spec.nodes for b in spec.nodes if a is not b}
    bridged = [node for node in spec.nodes if node.bridge_enabled]
    bridge = {(a.node_id, b.node_id, f"/ip4/{b.bridge_ip}/tcp/52415") for a in bridged for b in bridged if a is not b}
    assert len(bridged) == 3
    assert sockets == lan | bridge


def test_fold_finds_bridge_cycles(rich_state: State) -> None:
    bridged = set(cluster_spec(RICH).bridge_nodes)
    cycles = rich_state.thunderbolt_bridge_cycles
    # Every simple cycle of 3 mutually cabled, bridged Macs: three 2-cycles and two 3-cycles.
    assert len(cycles) == 5
    assert {frozenset(cycle) for cycle in cycles} == {
        frozenset(pair) for pair in ({a, b} for a in bridged for b in bridged if a < b)
    } | {frozenset(bridged)}
    assert all(cycle[0] == min(cycle) for cycle in cycles)


def test_no_bridge_no_cycles_but_rdma_edges() -> None:
    state = fold(generate(TraceConfig(nodes=4, duration_s=30.0, seed=1, mac_fraction=1.0, bridge_groups=0)))
    assert state.thunderbolt_bridge_cycles == []
    rdma = [c for c in state.topology.list_connections() if isinstance(c.edge, RDMAConnection)]
    assert len(rdma) == 8  # a ring of 4: 4 cables, both directions


def test_fold_holds_every_nodes_hardware(rich_state: State) -> None:
    for node in cluster_spec(RICH).nodes:
        identity = rich_state.node_identities[node.node_id]
        assert (identity.friendly_name, identity.model_id, identity.chip_id) == (
            node.friendly_name,
            node.model,
            node.chip,
        )
        assert identity.os_version == node.os_version
        memory = rich_state.node_memory[node.node_id]
        assert memory.ram_total.in_bytes == node.ram_total
        assert 0 < memory.ram_available.in_bytes < node.ram_total
        disk = rich_state.node_disk[node.node_id]
        assert disk.total.in_bytes == node.disk_total
        assert disk.available.in_bytes < node.disk_free
        interfaces = rich_state.node_network[node.node_id].interfaces
        assert node.lan_ip in {iface.ip_address for iface in interfaces}
        if node.kind == "mac":
            assert memory.ram_total.in_bytes == 512 * 1024**3
            assert len(rich_state.node_thunderbolt[node.node_id].interfaces) == 6
            assert rich_state.node_rdma_ctl[node.node_id].enabled
            assert rich_state.node_thunderbolt_bridge[node.node_id].enabled == node.bridge_enabled
            assert 0.0 <= rich_state.node_system[node.node_id].gpu_usage <= 1.0
        else:
            assert node.node_id not in rich_state.node_system
            assert node.node_id not in rich_state.node_thunderbolt
            assert {iface.interface_type for iface in interfaces} == {"unknown"}


def test_fold_runs_the_workload(rich_trace: list[IndexedEvent], rich_state: State) -> None:
    spec = cluster_spec(RICH)
    (placement,) = spec.placements
    (instance,) = rich_state.instances.values()
    assert isinstance(instance, MlxJacclInstance)
    assert set(instance.shard_assignments.node_to_runner) == set(placement.nodes)
    runners = set(instance.shard_assignments.runner_to_shard)
    assert set(rich_state.runners) == runners

    # Each runner went through the whole lifecycle in order, then alternated Running / Ready.
    history: dict[str, list[str]] = defaultdict(list)
    for event in rich_trace:
        if isinstance(event.event, RunnerStatusUpdated):
            history[event.event.runner_id].append(type(event.event.runner_status).__name__)
    for runner in runners:
        assert tuple(history[runner][: len(LIFECYCLE)]) == LIFECYCLE
        assert set(history[runner][len(LIFECYCLE) :]) <= {"RunnerRunning", "RunnerReady"}
        assert "RunnerRunning" in history[runner]

    # Worker tasks: one of each step per node, all complete and kept (exo never prunes them).
    worker_tasks = Counter(
        (type(task).__name__, task.task_status)
        for task in rich_state.tasks.values()
        if not isinstance(task, TextGeneration)
    )
    steps = (CreateRunner, DownloadModel, ConnectToGroup, LoadModel, StartWarmup)
    assert worker_tasks == {(step.__name__, "Complete"): len(placement.nodes) for step in steps}

    # Generation: created by the master, run, streamed, completed, deleted.
    created = {
        e.event.task_id
        for e in rich_trace
        if isinstance(e.event, TaskCreated) and isinstance(e.event.task, TextGeneration)
    }
    deleted = {e.event.task_id for e in rich_trace if isinstance(e.event, TaskDeleted)}
    assert len(deleted) >= 5
    assert deleted <= created
    assert set(rich_state.tasks) & created == created - deleted
    completed = {
        e.event.task_id
        for e in rich_trace
        if isinstance(e.event, TaskStatusUpdated) and e.event.task_status == "Complete"
    }
    assert deleted <= completed
    chunks: dict[str, list[ChunkGenerated]] = defaultdict(list)
    for event in rich_trace:
        if isinstance(event.event, ChunkGenerated):
            assert event.origin == placement.nodes[0]  # rank 0 streams the tokens
            chunks[event.event.command_id].append(event.event)
    lo, hi = RICH.tokens_per_request
    for stream in chunks.values():
        finish = [chunk.chunk["TokenChunk"]["finish_reason"] for chunk in stream]
        assert finish[:-1] == [None] * (len(stream) - 1)
        assert len(stream) <= hi
    finished = [stream for stream in chunks.values() if stream[-1].chunk["TokenChunk"]["finish_reason"] == "stop"]
    assert len(finished) >= len(deleted)
    assert all(lo <= len(stream) <= hi for stream in finished)


def _model_of(shard: TaggedJson) -> str:
    (body,) = shard.values()
    card = body["model_card"]
    assert isinstance(card, dict)
    return str(card["model_id"])


def test_fold_tracks_downloads(rich_trace: list[IndexedEvent], rich_state: State) -> None:
    spec = cluster_spec(RICH)
    (placement,) = spec.placements
    model = model_spec(placement.model_id)
    per_shard = shard_bytes(model, len(placement.nodes))
    progress: dict[NodeId, list[int]] = defaultdict(list)
    for event in rich_trace:
        inner = event.event
        if isinstance(inner, NodeDownloadProgress) and isinstance(inner.download_progress, DownloadOngoing):
            data = inner.download_progress.download_progress
            assert data["total_bytes"] == {"in_bytes": per_shard}
            downloaded = data["downloaded_bytes"]
            assert isinstance(downloaded, dict)
            progress[inner.download_progress.node_id].append(int(str(downloaded["in_bytes"])))
    downloaders = {
        node.node_id
        for node in spec.nodes
        if node.node_id in placement.nodes and placement.model_id not in node.models_on_disk
    }
    assert set(progress) <= downloaders
    for node_id in downloaders:
        assert progress[node_id] == sorted(progress[node_id])
    for node in spec.nodes:
        entries = rich_state.downloads.get(node.node_id, [])
        assert all(isinstance(entry, DownloadCompleted) for entry in entries)
        models_done = {_model_of(entry.shard_metadata) for entry in entries}
        expected = set(node.models_on_disk) | ({placement.model_id} if node.node_id in placement.nodes else set())
        assert models_done == expected
    assert any(
        isinstance(e.event, NodeDownloadProgress) and isinstance(e.event.download_progress, DownloadPending)
        for e in rich_trace
    )


def test_rescan_re_emits_completed_every_minute() -> None:
    config = TraceConfig(nodes=2, duration_s=130.0, seed=6, instances=0)
    spec = cluster_spec(config)
    completions = Counter(
        event.origin
        for event in generate(config)
        if isinstance(event.event, NodeDownloadProgress)
        and isinstance(event.event.download_progress, DownloadCompleted)
    )
    for node in spec.nodes:
        assert completions[node.node_id] == 3 * len(node.models_on_disk)  # at boot, ~60 s, ~120 s


def _kinds(events: Sequence[IndexedEvent]) -> Counter[str]:
    return Counter(_info_kind(event) or type(event.event).__name__ for event in events)


def test_small_traces_have_every_kind_of_event() -> None:
    kinds = _kinds(generate_trace(4, 60.0, seed=0, requests_per_minute=4.0))
    for kind in (
        MacmonMetrics, MemoryUsage, MacThunderboltIdentifiers, MacThunderboltConnections, NodeDiskUsage, NodeConfig,
        TopologyEdgeCreated, InstanceCreated, RunnerStatusUpdated, TaskCreated, TaskStatusUpdated, TaskDeleted,
        ChunkGenerated, NodeDownloadProgress,
    ):  # fmt: skip
        assert kinds[kind.__name__] > 0, kind.__name__
