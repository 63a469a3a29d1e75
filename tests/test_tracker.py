"""``clusterstate.StalenessTracker``: the exact rule of docs/liveness.md, cycle by cycle, from Python."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import clusterstate
from clusterstate import CoreState, NodeStaleness, StalenessTracker
from clusterstate.models import NodeDisconnected, NodeId, State

T = 10.0
K = 3


class Master:
    """A master's State and the events it indexes (as JSON, through the Rust reducer)."""

    def __init__(self) -> None:
        self.state = CoreState()

    @property
    def global_index(self) -> int:
        return self.state.last_event_applied_idx

    def _index(self, origin: str | None, event: str) -> None:
        idx = self.state.last_event_applied_idx + 1
        origin_json = "null" if origin is None else f'"{origin}"'
        self.state = clusterstate.apply(self.state, f'{{"idx":{idx},"origin":{origin_json},"event":{event}}}')

    def event(self, node: str) -> None:
        self._index(node, '{"TestEvent":{"event_id":"e"}}')

    def info(self, node: str, name: str = "mac") -> None:
        info = f'{{"MiscData":{{"friendly_name":"{name}"}}}}'
        self._index(node, f'{{"NodeGatheredInfo":{{"event_id":"e","node_id":"{node}","info":{info}}}}}')

    def runner(self, node: str) -> None:
        status = '{"RunnerIdle":{}}'
        self._index(
            node, f'{{"RunnerStatusUpdated":{{"event_id":"e","runner_id":"r-{node}","runner_status":{status}}}}}'
        )

    def download(self, node: str) -> None:
        card = (
            '{"model_id":"m","storage_size":{"in_bytes":1},"n_layers":1,"hidden_size":1,"supports_tensor":false,'
            '"tasks":["TextGeneration"]}'
        )
        shard = f'{{"PipelineShardMetadata":{{"model_card":{card},"device_rank":0,"world_size":1,"start_layer":0,'
        shard += '"end_layer":1,"n_layers":1}}'
        total = '{"in_bytes":1}'
        progress = f'{{"DownloadCompleted":{{"node_id":"{node}","shard_metadata":{shard},"total_bytes":{total}}}}}'
        self._index(None, f'{{"NodeDownloadProgress":{{"event_id":"e","download_progress":{progress}}}}}')

    def edge(self, source: str, sink: str) -> None:
        addr = '{"address":"/ip4/10.0.0.2/tcp/52415","address_type":"ip4","ip_address":"10.0.0.2","port":52415}'
        conn = f'{{"source":"{source}","sink":"{sink}","edge":{{"sink_multiaddr":{addr}}}}}'
        self._index(source, f'{{"TopologyEdgeCreated":{{"event_id":"e","conn":{conn}}}}}')

    def disconnect(self, decision: NodeStaleness) -> None:
        event = decision.to_event(event_id="d")
        self._index(None, event.model_dump_json())  # tagged: {"NodeDisconnected": {...}}


def kind(tracker: StalenessTracker) -> str | None:
    """How the tracker's last cycle counted (a function: mypy would narrow the property across cycles)."""
    return tracker.last_cycle


def names(decisions: list[NodeStaleness]) -> list[str]:
    return [decision.node_id for decision in decisions]


def test_defaults_and_settings() -> None:
    tracker = StalenessTracker()
    assert (tracker.period_s, tracker.threshold, tracker.cycles, len(tracker)) == (10.0, 3, 0, 0)
    assert tracker.last_cycle is None
    assert (tracker.period_s, tracker.threshold) == StalenessTracker._core_defaults()  # type: ignore[attr-defined]
    for period in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="period_s"):
            StalenessTracker(period_s=period)
    with pytest.raises(ValueError, match="threshold"):
        StalenessTracker(threshold=0)
    with pytest.raises(OverflowError):
        StalenessTracker(threshold=-1)


def test_node_staleness_value() -> None:
    a = NodeStaleness("a", 7, 3)
    assert a == NodeStaleness("a", 7, 3)
    assert a != NodeStaleness("a", None, 3)
    assert hash(a) == hash(NodeStaleness("a", 7, 3))
    assert repr(a) == 'NodeStaleness(node_id="a", last_index=7, stale_cycles=3)'
    event = a.to_event()
    assert isinstance(event, NodeDisconnected)
    assert (event.node_id, event.last_index, event.stale_cycles) == ("a", 7, 3)
    assert NodeStaleness("g", None, 3).to_event(event_id="x").last_index is None


def test_silent_for_k_cycles_is_disconnected_at_cycle_k_exactly() -> None:
    master, tracker = Master(), StalenessTracker(T, K)
    master.event("a")
    master.event("b")
    assert tracker.cycle(master.state, now=0.0) == []
    assert kind(tracker) == "grace"
    master.event("a")  # a's last event, before cycle 1
    a_last = master.global_index
    fired: list[tuple[int, list[NodeStaleness]]] = []
    for cycle in range(1, 7):
        master.event("b")
        decisions = tracker.cycle(master.state, now=cycle * T, global_index=master.global_index)
        assert kind(tracker) == "counted"
        if decisions:
            fired.append((cycle, decisions))
        elif cycle <= K:
            assert tracker.status()["a"].stale_cycles == cycle - 1
    # Cycle 1 sees the advance; cycles 2..4 are a's 1st..3rd silent cycles: decided at the 3rd, once.
    assert fired == [(1 + K, [NodeStaleness("a", a_last, K)])]
    assert tracker.status()["a"].stale_cycles == 2  # restarted after the decision: in flight, not re-sent
    master.event("b")
    again = tracker.cycle(master.state, now=7 * T)
    assert names(again) == ["a"]  # still not applied after K more cycles: returned again
    master.disconnect(again[0])
    master.event("b")
    assert tracker.cycle(master.state, now=8 * T) == []
    assert list(tracker.status()) == ["b"]


@pytest.mark.parametrize("produce", ["event", "info", "runner", "download", "edge"])
def test_any_event_kind_resets_the_count(produce: str) -> None:
    master, tracker = Master(), StalenessTracker(T, K)
    master.info("a", "A")
    master.event("b")
    tracker.cycle(master.state, now=0.0)
    now = 0.0
    for _ in range(4):
        for _ in range(K - 1):
            master.event("b")
            now += T
            assert tracker.cycle(master.state, now=now) == []
        assert tracker.status()["a"].stale_cycles == K - 1
        if produce == "edge":
            master.edge("a", "b")
        else:
            getattr(master, produce)("a")
        master.event("b")
        now += T
        assert tracker.cycle(master.state, now=now) == []
        assert tracker.status()["a"].stale_cycles == 0


def test_grace_period_of_a_fresh_tracker() -> None:
    master = Master()
    for node in "abc":
        master.event(node)
    fresh = StalenessTracker(T, K)
    assert fresh.cycle(master.state, now=5000.0) == []
    assert kind(fresh) == "grace"
    assert {status.stale_cycles for status in fresh.status().values()} == {0}
    fired = []
    for cycle in range(1, 5):
        master.event("a")
        if fresh.cycle(master.state, now=5000.0 + cycle * T):
            fired.append(cycle)
    assert fired == [K]


def test_stall_guard_master_indexed_nothing() -> None:
    master, tracker = Master(), StalenessTracker(T, K)
    master.event("a")
    master.event("b")
    tracker.cycle(master.state, now=0.0)
    for cycle in range(1, 21):  # 20 cycles, the master indexes nothing
        assert tracker.cycle(master.state, now=cycle * T) == []
        assert kind(tracker) == "master_idle"
    # An explicit global index that did not advance is the same.
    assert tracker.cycle(master.state, now=21 * T, global_index=master.global_index) == []
    assert kind(tracker) == "master_idle"
    fired = []
    for cycle in range(22, 27):
        master.event("b")
        fired += [(cycle, names(tracker.cycle(master.state, now=cycle * T)))]
    assert [entry for entry in fired if entry[1]] == [(21 + K, ["a"])]


def test_stall_guard_late_cycle() -> None:
    master, tracker = Master(), StalenessTracker(T, K)
    master.event("a")
    master.event("b")
    tracker.cycle(master.state, now=0.0)
    for cycle in (1, 2):
        master.event("b")
        tracker.cycle(master.state, now=cycle * T)
    assert tracker.status()["a"].stale_cycles == 2
    master.event("b")
    assert tracker.cycle(master.state, now=2 * T + 150.0) == []  # the master was paused for 150 s
    assert kind(tracker) == "late"
    assert tracker.status()["a"].stale_cycles == 2
    master.event("b")
    assert names(tracker.cycle(master.state, now=4 * T + 150.0)) == ["a"]  # exactly 2·T after: on time
    assert kind(tracker) == "counted"
    master.event("b")
    tracker.cycle(master.state, now=0.0)  # a clock that went backwards
    assert kind(tracker) == "late"


def test_pruning_identities_and_rejoin() -> None:
    master, tracker = Master(), StalenessTracker(T, K)
    master.info("a", "Alice's Mac")
    master.event("b")
    tracker.cycle(master.state, now=0.0)
    now, decisions = 0.0, list[NodeStaleness]()
    while not decisions:
        master.event("b")
        now += T
        decisions = tracker.cycle(master.state, now=now)
    master.disconnect(decisions[0])
    assert master.state.node_identities[NodeId("a")].friendly_name == "Alice's Mac"  # identities survive
    master.event("b")
    now += T
    tracker.cycle(master.state, now=now)
    assert "a" not in tracker.status()  # pruned
    master.event("a")  # rejoins
    now += T
    assert tracker.cycle(master.state, now=now) == []
    assert tracker.status()["a"].stale_cycles == 0
    assert master.state.node_identities[NodeId("a")].friendly_name == "Alice's Mac"


def test_ghost_node_added_by_an_edge_is_removed() -> None:
    master, tracker = Master(), StalenessTracker(T, K)
    master.event("a")
    master.edge("a", "ghost")
    assert master.state.known_nodes() == ["a", "ghost"]
    tracker.cycle(master.state, now=0.0)
    assert tracker.status()["ghost"] == NodeStaleness("ghost", None, 0)
    decisions: list[NodeStaleness] = []
    for cycle in range(1, K + 1):
        master.event("a")
        decisions = tracker.cycle(master.state, now=cycle * T)
    assert decisions == [NodeStaleness("ghost", None, K)]
    master.disconnect(decisions[0])
    master.event("a")
    tracker.cycle(master.state, now=(K + 1) * T)
    assert master.state.known_nodes() == ["a"]
    assert list(tracker.status()) == ["a"]


def test_accepts_a_pydantic_state() -> None:
    master, tracker = Master(), StalenessTracker(T, K)
    master.event("a")
    pydantic_state: State = master.state.to_pydantic()
    tracker.cycle(pydantic_state, now=0.0)
    assert list(tracker.status()) == ["a"]
    with pytest.raises(clusterstate.DecodeError):
        tracker.cycle(object(), now=0.0)  # type: ignore[arg-type]


# --- properties ---

_script = st.lists(st.lists(st.integers(0, 5), max_size=8), min_size=1, max_size=40)


@given(script=_script, deaths=st.lists(st.integers(0, 40), min_size=6, max_size=6), phase=st.floats(0.01, 0.99))
def test_replay_is_deterministic_and_dead_nodes_are_decided_within_the_window(
    script: list[list[int]], deaths: list[int], phase: float
) -> None:
    """Same log and cycle sequence → same decisions; latency from the last event ∈ [K·T, (K+1)·T]."""

    def run() -> tuple[list[tuple[int, NodeStaleness]], list[float]]:
        master, tracker = Master(), StalenessTracker(T, K)
        last_event: dict[str, float] = {}
        decisions: list[tuple[int, NodeStaleness]] = []
        latencies: list[float] = []
        master.event("keeper")
        for cycle, producers in enumerate(script):
            start = cycle * T
            for slot, node in enumerate(producers):
                if cycle < deaths[node]:
                    master.event(f"n{node}")
                    # Indexed strictly between the previous cycle's start and this one's.
                    last_event[f"n{node}"] = start - T + T * phase * (slot + 1) / 9
            master.event("keeper")
            for decision in tracker.cycle(master.state, now=start):
                decisions.append((cycle, decision))
                # A node heard before the first (grace) cycle counts from it.
                latencies.append(start - max(last_event[decision.node_id], 0.0))
                master.disconnect(decision)
        return decisions, latencies

    first, latencies = run()
    assert run() == (first, latencies)
    assert all(decision.node_id != "keeper" for _, decision in first)
    for latency in latencies:
        assert K * T <= latency <= (K + 1) * T
    # Every node dead long enough before the end is decided.
    for node, death in enumerate(deaths):
        heard = [cycle for cycle, producers in enumerate(script) if node in producers and cycle < death]
        if heard and heard[-1] + 1 + K < len(script):
            assert any(d.node_id == f"n{node}" for _, d in first)
