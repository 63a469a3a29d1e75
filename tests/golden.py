"""Write the cross-language golden traces in ``tests/data/golden/`` (run by hand, not by pytest).

Usage, from the repository root::

    python tests/golden.py            # rewrite every golden file
    cargo test -p clusterstate-core   # rust/core/tests/golden.rs replays them against the Rust core

The Python reference (``clusterstate.reference.apply`` over the pydantic models) is the specification;
these files freeze what it does so that the Rust core can be checked without Python. For each
``<name>``:

- ``<name>.events.jsonl``: one ``IndexedEvent.model_dump_json()`` per line (idx 0, 1, 2, ...);
- ``<name>.state.json``: the reference's final ``State.model_dump_json()``;
- ``<name>.state.alias.json``: the same State, ``model_dump_json(by_alias=True)``;
- ``<name>.crc32.txt``: per event, ``zlib.crc32`` (8 hex digits) of the State JSON after applying it.

The traces: seeded ``clusterstate.trace`` runs (a Thunderbolt ring with bridge cycles, a bigger
mesh, crashes with disconnects and a rejoin) and hypothesis-drawn event streams over small id pools
(every event kind, every gathered-info kind, arbitrary opaque JSON), drawn with ``derandomize=True``.

Besides: ``states.jsonl`` (whole States from ``tests/strategies.states()``, arbitrary ones such as
stale bridge cycles, one per line as a JSON list: snake_case dump, by_alias dump, a list of drawn
events that follow it, and the reference's State after them), ``inputs.jsonl`` (odd but valid inputs as
``{"input": <text>, "output": <pydantic's re-encoding>, "alias": <its by_alias dump>}``, plus one
event of each kind and nested kind from the traces, and invalid ones as
``{"input": <text>, "error": <message>}``) and ``floats.json`` (``[texts, dump]``: float reprs and
pydantic's dump of them).

Lines end at newline characters only: JSON strings may hold a raw U+2028 and the like, so split the
files on newlines, not with ``str.splitlines()``. Regenerating may change the hypothesis-drawn files
when hypothesis changes; the Rust test only needs each file to be self-consistent with the reference that wrote it.
"""

from __future__ import annotations

import json
import math
import random
import struct
import zlib
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import JsonValue, TypeAdapter

# Run as a script, so tests/ (the script's folder) is on sys.path, as pytest puts it for the tests.
import strategies
from clusterstate.codec import decode_indexed_event
from clusterstate.models import IndexedEvent, NodeId, State
from clusterstate.reference import apply
from clusterstate.trace import TraceConfig, generate

OUT = Path(__file__).parent / "data" / "golden"

TRACES = {
    # A Thunderbolt ring of 4 Macs with the bridge enabled: bridge cycles, RDMA edges, a model instance.
    "trace_ring4": TraceConfig(nodes=4, duration_s=20.0, seed=1, mac_fraction=1.0),
    # A bigger mixed cluster, a full Thunderbolt mesh in groups.
    "trace_mesh8": TraceConfig(nodes=8, duration_s=8.0, seed=2, tb_wiring="mesh"),
    # Crashes: silent nodes declared disconnected by the master, then rejoining.
    "trace_crash4": TraceConfig(
        nodes=4, duration_s=90.0, seed=3, silent_nodes=2, rejoin_after_s=50.0, silent_window=(0.1, 0.2)
    ),
}
"""The seeded traces frozen in ``OUT``, by file name."""


def write_trace(name: str, events: list[IndexedEvent]) -> None:
    state = State()
    lines = []
    crcs = []
    for event in events:
        state = apply(state, event)
        lines.append(event.model_dump_json())
        crcs.append(f"{zlib.crc32(state.model_dump_json().encode()):08x}")
    (OUT / f"{name}.events.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (OUT / f"{name}.state.json").write_text(state.model_dump_json(), encoding="utf-8")
    (OUT / f"{name}.state.alias.json").write_text(state.model_dump_json(by_alias=True), encoding="utf-8")
    (OUT / f"{name}.crc32.txt").write_text("\n".join(crcs) + "\n", encoding="utf-8")
    print(f"{name}: {len(events)} events, {len(state.thunderbolt_bridge_cycles)} bridge cycles")


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def drawn_streams(examples: int, size: int) -> list[list[IndexedEvent]]:
    """Event streams drawn by hypothesis, re-indexed 0.. so that every event applies."""
    streams: list[list[IndexedEvent]] = []
    origin = st.none() | strategies.node_ids()

    @_settings(examples)
    @given(st.lists(st.tuples(strategies.events(), origin), min_size=size // 2, max_size=size))
    def collect(drawn: list[tuple[Any, str | None]]) -> None:
        streams.append(
            [IndexedEvent(idx=i, origin=None if o is None else NodeId(o), event=e) for i, (e, o) in enumerate(drawn)]
        )

    collect()
    return streams


def write_drawn(name: str, examples: int, size: int) -> None:
    streams = drawn_streams(examples, size)
    # One long stream: concatenated and re-indexed, so later events hit what earlier ones built.
    events = [IndexedEvent(idx=i, origin=e.origin, event=e.event) for i, e in enumerate(e for s in streams for e in s)]
    write_trace(name, events)


def write_states(examples: int) -> None:
    """States drawn by hypothesis (arbitrary, e.g. with stale bridge cycles), each with drawn events applied."""
    lines: list[str] = []
    streams = iter(drawn_streams(examples, 16))

    @_settings(examples)
    @given(strategies.states())
    def collect(state: State) -> None:
        start = state.last_event_applied_idx + 1
        if start > 2**62:  # the Rust core keeps indices in an i64
            return
        events = [IndexedEvent(idx=start + i, origin=e.origin, event=e.event) for i, e in enumerate(next(streams))]
        final = state
        for event in events:
            final = apply(final, event)
        lines.append(
            json.dumps(
                [
                    state.model_dump_json(),
                    state.model_dump_json(by_alias=True),
                    [event.model_dump_json() for event in events],
                    final.model_dump_json(),
                ],
                ensure_ascii=False,
            )
        )

    collect()
    (OUT / "states.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"states: {len(lines)}")


_MEMORY = (
    '{"ram_total":{"in_bytes":1},"ram_available":{"inBytes":2},"swapTotal":{"in_bytes":3},'
    '"swap_available":{"in_bytes":4}}'
)
_SHARD = '{"PipelineShardMetadata":{"model_card":{"model_id":"m","n_layers":32},"start_layer":0,"end_layer":16}}'

ODD_INPUTS = [
    # camelCase keys, a legacy `when`, no origin.
    '{"idx":0,"event":{"NodeGatheredInfo":{"eventId":"e","nodeId":"n","when":"2024-01-01T00:00:00Z","info":'
    + _MEMORY
    + "}}}",
    # Multiaddr with computed keys (ignored, even when wrong) and a trailing newline the regex allows.
    '{"idx":1,"origin":"o","event":{"TopologyEdgeCreated":{"event_id":"e","conn":{"source":"a","sink":"b",'
    '"edge":{"sinkMultiaddr":{"address":"/ip4/10.0.0.2/tcp/05241","port":1,"ip_address":null}}}}}}',
    '{"idx":1,"event":{"TopologyEdgeCreated":{"event_id":"e","conn":{"source":"a","sink":"b",'
    '"edge":{"sink_multiaddr":{"address":"/ip6/FE80:0:0::1%en0/tcp/80/p2p/Qm1\\n"}}}}}}',
    '{"idx":1,"event":{"TopologyEdgeDeleted":{"event_id":"e","conn":{"source":"a","sink":"b",'
    '"edge":{"sinkRdmaIface":"rdma_en2","source_rdma_iface":"rdma_en3"}}}}}',
    '{"idx":2,"event":{"NodeTimedOut":{"event_id":"e","node_id":"n"}}}',
    '{"idx":2,"event":{"NodeDisconnected":{"event_id":"e","nodeId":"n","lastIndex":null,"staleCycles":3}}}',
    # Floats as pydantic re-encodes them, ints of any size, ints for floats, unicode and key order in opaque JSON.
    '{"idx":3,"event":{"NodeGatheredInfo":{"event_id":"e","node_id":"n\u00e9","info":{"MacmonMetrics":'
    '{"system_profile":{"gpu_usage":1,"temp":1E5,"sys_power":2.5e-5,"pcpu_usage":1e16,"ecpu_usage":-0.0},'
    '"memory":' + _MEMORY + "}}}}}",
    '{"idx":4,"event":{"ChunkGenerated":{"event_id":"e","command_id":"c","chunk":{"TokenChunk":'
    '{"z":1,"a":[1.0,1e16,1E-7,0.1,-0.0,-0,123456789012345678,18446744073709551616,-99999999999999999999999],'
    '"s":"\\u00e9\\u2028\\n\\u0001\\/","d":2}}}}}',
    '{"idx":5,"event":{"TaskCreated":{"event_id":"e","task_id":"t","task":{"TextGeneration":{"instanceId":"i",'
    '"task_id":"t","commandId":"c","taskParams":{"messages":[{"role":"user","content":"hi"}],"temperature":0.7}}}}}}',
    '{"idx":6,"event":{"NodeDownloadProgress":{"event_id":"e","download_progress":{"DownloadOngoing":'
    '{"node_id":"n","shard_metadata":' + _SHARD + ',"download_progress":{"speed":1.5e6,"eta_ms":12}}}}}}',
    '{"idx":7,"event":{"InstanceCreated":{"event_id":"e","instance":{"MlxRingInstance":{"instance_id":"i",'
    '"shardAssignments":{"model_id":"m","runner_to_shard":{"r2":' + _SHARD + ',"r1":' + _SHARD + "},"
    '"node_to_runner":{"n2":"r2","n1":"r1"}},"hosts_by_node":{"n2":[{"ip":"1.2.3.4","port":1}],"n1":[]},'
    '"ephemeral_port":5}}}}}',
    '{"idx":8,"event":{"RunnerStatusUpdated":{"event_id":"e","runner_id":"r","runner_status":{"RunnerFailed":{}}}}}',
    '{"idx":9,"event":{"TracesCollected":{"event_id":"e","task_id":"t","rank":0,"traces":[{"name":"x",'
    '"startUs":1,"duration_us":2,"rank":0,"category":"compute"}]}}}',
]

BAD_INPUTS = [
    "",
    # Duplicate keys, structs written as arrays, an index beyond i64, a port in non-ASCII digits.
    '{"idx":4,"event":{"ChunkGenerated":{"event_id":"e","command_id":"c","chunk":{"TokenChunk":{"z":1,"z":3}}}}}',
    '{"idx":0,"idx":0,"event":{"TestEvent":{"event_id":"e"}}}',
    '[2,"n1",{"TestEvent":["e"]}]',
    '{"idx":0,"event":{"TestEvent":["e"]}}',
    '{"idx":0,"event":{"NodeDisconnected":{"event_id":"e","node_id":"n","last_index":9223372036854775808,'
    '"stale_cycles":1}}}',
    '{"idx":0,"event":{"NodeDisconnected":{"event_id":"e","node_id":"n","last_index":1,'
    '"stale_cycles":18446744073709551616}}}',
    '{"idx":0,"event":{"NodeGatheredInfo":{"event_id":"e","node_id":"n","when":"\\ud800","info":{"NodeConfig":{}}}}}',
    '{"idx":0,"event":{"TopologyEdgeCreated":{"event_id":"e","conn":{"source":"a","sink":"b",'
    '"edge":{"sink_multiaddr":{"address":"/ip4/1.2.3.4/tcp/\u0668\u0660"}}}}}}',
    '{"idx":1,"event":{"TopologyEdgeCreated":{"event_id":"e","conn":{"source":"a","sink":"b",'
    '"edge":{"sink_multiaddr":{"address":"/dns4/host-1.local/tcp/80"}}}}}}',
    '{"idx":1,"event":{"TopologyEdgeCreated":{"event_id":"e","conn":{"source":"a","sink":"b",'
    '"edge":{"sink_multiaddr":{"address":"/ip4/01.2.3.4/tcp/80"}}}}}}',
    '{"idx":0,"event":{"ChunkGenerated":{"event_id":"e","command_id":"c","chunk":{"TokenChunk":{"x":NaN}}}}}',
    '{"idx":0,"event":{"ChunkGenerated":{"event_id":"e","command_id":"c","chunk":{"TokenChunk":{"x":1e400}}}}}',
    "{",
    "[]",
    '{"idx":0}',
    '{"idx":-1,"event":{"TestEvent":{"event_id":"e"}}}',
    '{"idx":1.0,"event":{"TestEvent":{"event_id":"e"}}}',
    '{"idx":"1","event":{"TestEvent":{"event_id":"e"}}}',
    '{"idx":0,"event":{"Nope":{"event_id":"e"}}}',
    '{"idx":0,"event":{"TestEvent":{"event_id":"e","x":1}}}',
    '{"idx":0,"event":{"TestEvent":{"TestEvent":{"event_id":"e"}}}}',
    '{"idx":0,"event":{"TestEvent":{"event_id":"e"},"TaskDeleted":{"event_id":"e","task_id":"t"}}}',
    '{"idx":0,"event":{"TestEvent":{"event_id":"e"}},"extra":1}',
    '{"idx":0,"event":{"TestEvent":{"event_id":1}}}',
    '{"idx":0,"event":{"TaskStatusUpdated":{"event_id":"e","task_id":"t","task_status":"Done"}}}',
    '{"idx":0,"event":{"TaskStatusUpdated":{"event_id":"e","task_id":"t","task_status":{"Pending":null}}}}',
    '{"idx":0,"event":{"NodeDisconnected":{"event_id":"e","node_id":"n","stale_cycles":1}}}',
    '{"idx":0,"event":{"NodeDisconnected":{"event_id":"e","node_id":"n","last_index":-1,"stale_cycles":1}}}',
    '{"idx":0,"event":{"NodeGatheredInfo":{"event_id":"e","node_id":"n","info":{}}}}',
    '{"idx":0,"event":{"NodeGatheredInfo":{"event_id":"e","node_id":"n","info":{"MemoryUsage":' + _MEMORY + "}}}}",
    '{"idx":0,"event":{"NodeGatheredInfo":{"event_id":"e","node_id":"n","info":{"NodeConfig":{},"x":1}}}}',
    '{"idx":0,"event":{"NodeGatheredInfo":{"event_id":"e","node_id":"n","info":{"RdmaCtlStatus":{"enabled":1}}}}}',
    '{"idx":0,"event":{"TopologyEdgeCreated":{"event_id":"e","conn":{"source":"a","sink":"b","edge":{}}}}}',
    '{"idx":0,"event":{"TopologyEdgeCreated":{"event_id":"e","conn":{"source":"a","sink":"b",'
    '"edge":{"sink_multiaddr":{"address":"/ip4/1.2.3.4/udp/80"}}}}}}',
    '{"idx":0,"event":{"TopologyEdgeCreated":{"event_id":"e","conn":{"source":"a","sink":"b",'
    '"edge":{"sink_multiaddr":{"address":"/ip4/1.2.3.4/tcp/70000"}}}}}}',
    '{"idx":0,"event":{"TopologyEdgeCreated":{"event_id":"e","conn":{"source":"a","sink":"b",'
    '"edge":{"sink_multiaddr":null,"source_rdma_iface":"x","sink_rdma_iface":"y"}}}}}',
    '{"idx":0,"event":{"ChunkGenerated":{"event_id":"e","command_id":"c","chunk":{"Nope":{}}}}}',
    '{"idx":0,"event":{"ChunkGenerated":{"event_id":"e","command_id":"c","chunk":{"TokenChunk":1}}}}',
    '{"idx":0,"event":{"InstanceCreated":{"event_id":"e","instance":{"MlxRingInstance":{"instance_id":"i",'
    '"shard_assignments":{"model_id":"m","runner_to_shard":{},"node_to_runner":{"n":"r"}},"hosts_by_node":{},'
    '"ephemeral_port":5}}}}}',
    '{"idx":0,"event":{"TaskCreated":{"event_id":"e","task_id":"t","task":{"LoadModel":{"instance_id":"i",'
    '"task_status":"Pending","taskStatus":"Failed"}}}}}',
]


def write_inputs() -> None:
    lines = []
    # One event of each kind (and of each nested kind) of the traces, for their camelCase dumps.
    samples: dict[str, str] = {}
    for path in sorted(OUT.glob("*.events.jsonl")):
        for line in path.read_text(encoding="utf-8").split("\n"):
            if line:
                event = decode_indexed_event(line).event
                inner = [getattr(event, name, None) for name in ("info", "task", "instance", "runner_status")]
                inner.append(getattr(event, "download_progress", None))
                kind = ".".join(type(item).__name__ for item in [event, *inner])
                samples.setdefault(kind, line)
    for text in [*ODD_INPUTS, *samples.values()]:
        indexed = decode_indexed_event(text)
        output, alias = indexed.model_dump_json(), indexed.model_dump_json(by_alias=True)
        lines.append(json.dumps({"input": text, "output": output, "alias": alias}, ensure_ascii=False))
    for text in BAD_INPUTS:
        try:
            decode_indexed_event(text)
        except ValueError as exc:
            lines.append(json.dumps({"input": text, "error": str(exc)}, ensure_ascii=False))
        else:
            raise AssertionError(f"the reference accepts {text!r}")
    (OUT / "inputs.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"inputs: {len(ODD_INPUTS) + len(samples)} valid, {len(BAD_INPUTS)} invalid")


def write_floats(count: int) -> None:
    rng = random.Random(1)
    values = [1e15, 1e16, 1.2345e17, 5e-324, 1.7976931348623157e308, 1e-5, 1e-4, 0.1 + 0.2, -0.0, 0.0, 1e21, 1e22]
    while len(values) < count:
        values.append(struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0])
        values.append(rng.random() * 10 ** rng.randint(-30, 30))
    values = [v for v in values if math.isfinite(v)]
    json_values: list[JsonValue] = [*values]
    dump = TypeAdapter(list[JsonValue]).dump_json(json_values).decode()
    (OUT / "floats.json").write_text(json.dumps([[repr(v) for v in values], dump]), encoding="utf-8")
    print(f"floats: {len(values)}")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, config in TRACES.items():
        write_trace(name, generate(config))
    write_drawn("drawn", examples=20, size=30)
    write_states(12)
    write_inputs()
    write_floats(1000)


if __name__ == "__main__":
    main()
