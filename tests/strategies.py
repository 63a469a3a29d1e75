"""Hypothesis strategies that build every clusterstate model.

Used by the round-trip tests here and, later, by the differential tests (Rust vs Python reducer),
so they aim to cover everything the models accept on the wire:

- every member of every union (20 events incl. the legacy ``NodeTimedOut``, 11 gathered infos,
  10 tasks, 11 runner statuses, 4 download progresses, 2 instances, 2 edge shapes), listed per
  union in the ``*_BY_KIND`` dicts so a test can target one kind and check that none is missing;
- opaque JSON payloads (shard metadata, generation and input chunks, task parameters, bound
  instances, download progress data): exo-shaped bodies and arbitrary JSON (unicode, nesting,
  floats, ``null``) under a valid tag;
- envelopes (``IndexedEvent`` with and without ``origin``, ``ForwarderEvent``) and whole States.

Ids come from small pools so that maps overlap and events hit existing keys (a reducer then does
real work); one node id is non-ASCII so canonical key order is exercised beyond ASCII.

Value domain, on purpose:
- integers are 64-bit signed (the Python models accept any int; the Rust side uses 64-bit ints);
- floats are finite: JSON cannot hold NaN or infinities, and the models reject them;
- strings never contain lone surrogates (not encodable as UTF-8, so never on the wire).

Every strategy is a function returning a strategy, hypothesis style; the ones parametrised by
``nodes`` draw node ids from that strategy (default: the whole pool).
"""

from __future__ import annotations

import ipaddress
from typing import Any, get_args

from hypothesis import strategies as st

from clusterstate.models import (
    CancelTask,
    ChunkGenerated,
    Connection,
    ConnectToGroup,
    CreateRunner,
    DiskUsage,
    DownloadCompleted,
    DownloadFailed,
    DownloadModel,
    DownloadOngoing,
    DownloadPending,
    ForwarderEvent,
    Host,
    ImageEdits,
    ImageGeneration,
    IndexedEvent,
    InputChunkReceived,
    InstanceCreated,
    InstanceDeleted,
    InterfaceType,
    LoadModel,
    MacmonMetrics,
    MacThunderboltConnections,
    MacThunderboltIdentifiers,
    Memory,
    MemoryUsage,
    MiscData,
    MlxJacclInstance,
    MlxRingInstance,
    Multiaddr,
    NetworkInterfaceInfo,
    NodeConfig,
    NodeDisconnected,
    NodeDiskUsage,
    NodeDownloadProgress,
    NodeGatheredInfo,
    NodeIdentity,
    NodeNetworkInfo,
    NodeNetworkInterfaces,
    NodeRdmaCtlStatus,
    NodeThunderboltInfo,
    NodeTimedOut,
    RDMAConnection,
    RdmaCtlStatus,
    RunnerConnected,
    RunnerConnecting,
    RunnerDeleted,
    RunnerFailed,
    RunnerIdle,
    RunnerLoaded,
    RunnerLoading,
    RunnerReady,
    RunnerRunning,
    RunnerShutdown,
    RunnerShuttingDown,
    RunnerStatusUpdated,
    RunnerWarmingUp,
    SessionId,
    ShardAssignments,
    Shutdown,
    SocketConnection,
    StartWarmup,
    State,
    StaticNodeInformation,
    SystemPerformanceProfile,
    TaskAcknowledged,
    TaskCreated,
    TaskDeleted,
    TaskFailed,
    TaskStatus,
    TaskStatusUpdated,
    TestEvent,
    TextGeneration,
    ThunderboltBridgeInfo,
    ThunderboltBridgeStatus,
    ThunderboltConnection,
    ThunderboltIdentifier,
    Topology,
    TopologyEdgeCreated,
    TopologyEdgeDeleted,
    TraceEventData,
    TracesCollected,
    TracesMerged,
)

__all__ = [
    "DOWNLOAD_PROGRESS_BY_KIND",
    "EDGES_BY_KIND",
    "EVENTS_BY_KIND",
    "GATHERED_INFO_BY_KIND",
    "INSTANCES_BY_KIND",
    "NODE_IDS",
    "RUNNER_STATUS_BY_KIND",
    "TASKS_BY_KIND",
    "connections",
    "download_progresses",
    "edges",
    "events",
    "forwarder_events",
    "gathered_infos",
    "generation_chunks",
    "indexed_events",
    "input_image_chunks",
    "instances",
    "json_objects",
    "json_values",
    "multiaddr_strings",
    "multiaddrs",
    "node_ids",
    "runner_statuses",
    "session_ids",
    "shard_metadata",
    "states",
    "tasks",
    "topologies",
    "union_members",
]

# --- scalars and ids ---

INT64 = st.integers(-(2**63), 2**63 - 1)
NON_NEGATIVE = st.integers(0, 2**63 - 1)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
TEXT = st.text(max_size=24)
SHORT_TEXT = st.text(max_size=8)

NODE_IDS = (
    "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo",
    "12D3KooWAb8GZRsPvD3CBf1Ku2DNLR6qfrWBfCzvAeW5F4UwWxEn",
    "12D3KooWLrjRH7GQ2sp4M9mY7JBTqF1uEuGbdLFxyBXK6TvQ3Gm5",
    "nodeA",
    "nodeB",
    "nœud-é",
)
"""The node id pool: libp2p-like peer ids, short test names and one non-ASCII id."""


def node_ids() -> st.SearchStrategy[str]:
    return st.sampled_from(NODE_IDS)


def _ids(prefix: str, pool: int = 3) -> st.SearchStrategy[str]:
    """Mostly a small shared pool (so keys collide), sometimes a fresh uuid."""
    return st.one_of(st.sampled_from([f"{prefix}-{i}" for i in range(pool)]), st.uuids().map(str))


def task_ids() -> st.SearchStrategy[str]:
    return _ids("task")


def instance_ids() -> st.SearchStrategy[str]:
    return _ids("instance")


def runner_ids() -> st.SearchStrategy[str]:
    return _ids("runner")


def command_ids() -> st.SearchStrategy[str]:
    return _ids("command")


def event_ids() -> st.SearchStrategy[str]:
    return st.uuids().map(str)


def model_ids() -> st.SearchStrategy[str]:
    return st.sampled_from(
        ["mlx-community/Llama-3.2-1B-Instruct-4bit", "mlx-community/Qwen3-30B-A3B-4bit", "llama-3.2-1b"]
    ) | st.text(min_size=1, max_size=16)


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def _build(cls: Any, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``cls(**fields)`` with every field given explicitly.

    Not ``st.builds``: it reads constraints such as ``Field(ge=0)`` from the pydantic signature and
    filters the given strategies with them, which breaks on ``int | None`` (``None >= 0``).
    """
    return st.fixed_dictionaries(fields).map(lambda kwargs: cls(**kwargs))


# --- opaque JSON ---

JSON_SCALARS = st.none() | st.booleans() | INT64 | FLOATS | TEXT


def json_values() -> st.SearchStrategy[Any]:
    """Any JSON value: unicode strings, 64-bit ints, finite floats, nested lists and objects."""
    return st.recursive(
        JSON_SCALARS,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(SHORT_TEXT, children, max_size=4),
        max_leaves=12,
    )


def json_objects() -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(SHORT_TEXT, json_values(), max_size=5)


def _tagged(tags: list[str], realistic: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """``{"Tag": body}`` with a valid tag and an exo-shaped or arbitrary body."""
    return st.builds(lambda tag, body: {tag: body}, st.sampled_from(tags), realistic | json_objects())


def _memory_json() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"in_bytes": NON_NEGATIVE})


def _model_card_json() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "model_id": model_ids(),
            "storage_size": _memory_json(),
            "n_layers": st.integers(1, 256),
            "hidden_size": st.integers(1, 16384),
            "supports_tensor": st.booleans(),
            "tasks": st.lists(st.sampled_from(["TextGeneration", "TextToImage", "ImageToImage"]), max_size=3),
            "components": st.none(),
            "family": SHORT_TEXT,
            "quantization": st.sampled_from(["", "4bit", "8bit"]),
            "base_model": SHORT_TEXT,
            "capabilities": st.lists(SHORT_TEXT, max_size=3),
            "uses_cfg": st.booleans(),
        }
    )


def _shard_body_json() -> st.SearchStrategy[dict[str, Any]]:
    base = {
        "model_card": _model_card_json(),
        "device_rank": st.integers(0, 7),
        "world_size": st.integers(1, 8),
        "immediate_exception": st.booleans(),
        "should_timeout": _optional(FLOATS),
        "start_layer": st.integers(0, 128),
        "end_layer": st.integers(0, 128),
        "n_layers": st.integers(0, 128),
    }
    cfg = {
        "cfg_rank": st.integers(0, 1),
        "cfg_world_size": st.just(2),
        "pipeline_rank": st.integers(0, 3),
        "pipeline_world_size": st.integers(1, 4),
    }
    return st.fixed_dictionaries(base) | st.fixed_dictionaries({**base, **cfg})


def shard_metadata() -> st.SearchStrategy[dict[str, Any]]:
    return _tagged(["PipelineShardMetadata", "CfgShardMetadata", "TensorShardMetadata"], _shard_body_json())


def _usage_json() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "prompt_tokens": NON_NEGATIVE,
            "completion_tokens": NON_NEGATIVE,
            "total_tokens": NON_NEGATIVE,
            "prompt_tokens_details": _optional(
                st.fixed_dictionaries({"cached_tokens": NON_NEGATIVE, "audio_tokens": NON_NEGATIVE})
            ),
            "completion_tokens_details": st.none(),
        }
    )


def _generation_chunk_body_json() -> st.SearchStrategy[dict[str, Any]]:
    token = st.fixed_dictionaries(
        {
            "model": model_ids(),
            "text": TEXT,
            "token_id": NON_NEGATIVE,
            "usage": _optional(_usage_json()),
            "finish_reason": st.sampled_from([None, "stop", "length", "content_filter"]),
            "stats": st.none(),
            "logprob": _optional(FLOATS),
            "top_logprobs": _optional(
                st.lists(
                    st.fixed_dictionaries(
                        {"token": TEXT, "logprob": FLOATS, "bytes": _optional(st.lists(st.integers(0, 255)))}
                    ),
                    max_size=3,
                )
            ),
        }
    )
    image = st.fixed_dictionaries(
        {
            "model": model_ids(),
            "data": st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", max_size=64),
            "chunk_index": st.integers(0, 100),
            "total_chunks": st.integers(1, 100),
            "image_index": st.integers(0, 4),
            "is_partial": st.booleans(),
            "partial_index": _optional(st.integers(0, 4)),
            "total_partials": _optional(st.integers(0, 4)),
            "stats": st.none(),
            "format": st.sampled_from([None, "png", "jpeg", "webp"]),
            "finish_reason": st.sampled_from([None, "stop", "error"]),
            "error_message": _optional(TEXT),
        }
    )
    return token | image


def generation_chunks() -> st.SearchStrategy[dict[str, Any]]:
    return _tagged(["TokenChunk", "ImageChunk", "ToolCallChunk", "ErrorChunk"], _generation_chunk_body_json())


def input_image_chunks() -> st.SearchStrategy[dict[str, Any]]:
    body = st.fixed_dictionaries(
        {
            "model": model_ids(),
            "command_id": command_ids(),
            "data": st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", max_size=64),
            "chunk_index": st.integers(0, 100),
            "total_chunks": st.integers(1, 100),
        }
    )
    return _tagged(["InputImageChunk"], body)


def _text_generation_params_json() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "model": model_ids(),
            "input": st.lists(
                st.fixed_dictionaries(
                    {"role": st.sampled_from(["user", "assistant", "system", "developer"]), "content": TEXT}
                ),
                max_size=3,
            ),
            "instructions": _optional(TEXT),
            "max_output_tokens": _optional(st.integers(1, 4096)),
            "temperature": _optional(FLOATS),
            "top_p": _optional(FLOATS),
            "stream": st.booleans(),
            "tools": _optional(st.lists(json_objects(), max_size=2)),
            "bench": st.booleans(),
            "top_k": _optional(st.integers(0, 100)),
            "stop": st.none() | TEXT | st.lists(TEXT, max_size=3),
            "seed": _optional(INT64),
            "chat_template_messages": st.none(),
            "enable_thinking": _optional(st.booleans()),
            "logprobs": st.booleans(),
            "top_logprobs": _optional(st.integers(0, 20)),
        }
    )


def _download_progress_data_json() -> st.SearchStrategy[dict[str, Any]]:
    def data(files: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries(
            {
                "total_bytes": _memory_json(),
                "downloaded_bytes": _memory_json(),
                "downloaded_bytes_this_session": _memory_json(),
                "completed_files": st.integers(0, 1000),
                "total_files": st.integers(0, 1000),
                "speed": FLOATS,
                "eta_ms": NON_NEGATIVE,
                "files": files,
            }
        )

    leaf = data(st.just({}))
    return data(st.dictionaries(TEXT, leaf, max_size=2))


# --- hardware info ---


def memories() -> st.SearchStrategy[Memory]:
    return _build(Memory, in_bytes=INT64)


def memory_usages() -> st.SearchStrategy[MemoryUsage]:
    return _build(
        MemoryUsage, ram_total=memories(), ram_available=memories(), swap_total=memories(), swap_available=memories()
    )


def disk_usages() -> st.SearchStrategy[DiskUsage]:
    return _build(DiskUsage, total=memories(), available=memories())


def system_profiles() -> st.SearchStrategy[SystemPerformanceProfile]:
    return _build(
        SystemPerformanceProfile, gpu_usage=FLOATS, temp=FLOATS, sys_power=FLOATS, pcpu_usage=FLOATS, ecpu_usage=FLOATS
    )


def _ip4() -> st.SearchStrategy[str]:
    return st.tuples(*[st.integers(0, 255)] * 4).map(lambda parts: ".".join(map(str, parts)))


def _ip6() -> st.SearchStrategy[str]:
    address = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)
    spelled = st.one_of(
        address.map(lambda a: a.compressed),
        address.map(lambda a: a.exploded),
        address.map(lambda a: a.compressed.upper()),
    )
    # Only hex and colons: the forms with an embedded dotted quad are not valid in a multiaddr.
    return st.sampled_from(["::1", "fe80::1", "2001:db8::2"]) | spelled.filter(lambda s: "." not in s)


def network_interfaces() -> st.SearchStrategy[NetworkInterfaceInfo]:
    return _build(
        NetworkInterfaceInfo,
        name=st.sampled_from(["en0", "en1", "bridge0", "lo0"]) | SHORT_TEXT,
        ip_address=_ip4() | _ip6() | SHORT_TEXT,
        interface_type=st.sampled_from(get_args(InterfaceType)),
    )


def node_identities() -> st.SearchStrategy[NodeIdentity]:
    return _build(
        NodeIdentity,
        model_id=TEXT,
        chip_id=TEXT,
        friendly_name=TEXT,
        os_version=TEXT,
        os_build_version=TEXT,
    )


def _rdma_ifaces() -> st.SearchStrategy[str]:
    return st.sampled_from(["rdma_en2", "rdma_en3", "rdma_en4", "rdma_en5"]) | SHORT_TEXT


def thunderbolt_identifiers() -> st.SearchStrategy[ThunderboltIdentifier]:
    return _build(
        ThunderboltIdentifier,
        rdma_interface=_rdma_ifaces(),
        domain_uuid=st.uuids().map(str) | SHORT_TEXT,
        link_speed=st.sampled_from(["", "Up to 40 Gb/s", "Up to 80 Gb/s"]),
    )


def thunderbolt_connections() -> st.SearchStrategy[ThunderboltConnection]:
    uuid = st.uuids().map(str)
    return _build(ThunderboltConnection, source_uuid=uuid, sink_uuid=uuid)


def bridge_statuses() -> st.SearchStrategy[ThunderboltBridgeStatus]:
    return _build(
        ThunderboltBridgeStatus,
        enabled=st.booleans(),
        exists=st.booleans(),
        service_name=_optional(st.just("Thunderbolt Bridge") | TEXT),
    )


GATHERED_INFO_BY_KIND: dict[type, st.SearchStrategy[Any]] = {
    MacmonMetrics: _build(MacmonMetrics, system_profile=system_profiles(), memory=memory_usages()),
    MemoryUsage: memory_usages(),
    NodeNetworkInterfaces: _build(NodeNetworkInterfaces, ifaces=st.lists(network_interfaces(), max_size=4)),
    MacThunderboltIdentifiers: _build(
        MacThunderboltIdentifiers, idents=st.lists(thunderbolt_identifiers(), max_size=3)
    ),
    MacThunderboltConnections: _build(MacThunderboltConnections, conns=st.lists(thunderbolt_connections(), max_size=3)),
    RdmaCtlStatus: _build(RdmaCtlStatus, enabled=st.booleans()),
    ThunderboltBridgeInfo: _build(ThunderboltBridgeInfo, status=bridge_statuses()),
    NodeConfig: _build(NodeConfig),
    MiscData: _build(MiscData, friendly_name=TEXT),
    StaticNodeInformation: _build(
        StaticNodeInformation,
        model=st.just("Mac16,9") | TEXT,
        chip=st.just("Apple M4 Max") | TEXT,
        os_version=st.just("15.3") | SHORT_TEXT,
        os_build_version=st.just("24D60") | SHORT_TEXT,
    ),
    NodeDiskUsage: _build(NodeDiskUsage, disk_usage=disk_usages()),
}


def gathered_infos() -> st.SearchStrategy[Any]:
    return st.one_of(*GATHERED_INFO_BY_KIND.values())


# --- topology ---


def multiaddr_strings() -> st.SearchStrategy[str]:
    """Valid multiaddrs: ``/ip4|/ip6/<address>/tcp/<port>[/p2p/<peer id>]``."""
    prefix = st.one_of(_ip4().map(lambda ip: f"/ip4/{ip}"), _ip6().map(lambda ip: f"/ip6/{ip}"))
    peer = st.sampled_from(NODE_IDS[:3]) | st.from_regex(r"[A-Za-z0-9]{1,52}", fullmatch=True)
    suffix = st.just("") | peer.map(lambda p: f"/p2p/{p}")
    port = st.sampled_from([52415, 0, 65535]) | st.integers(0, 65535)
    return st.builds(lambda pre, p, suf: f"{pre}/tcp/{p}{suf}", prefix, port, suffix)


def multiaddrs() -> st.SearchStrategy[Multiaddr]:
    return _build(Multiaddr, address=multiaddr_strings())


EDGES_BY_KIND: dict[type, st.SearchStrategy[Any]] = {
    SocketConnection: _build(SocketConnection, sink_multiaddr=multiaddrs()),
    RDMAConnection: _build(RDMAConnection, source_rdma_iface=_rdma_ifaces(), sink_rdma_iface=_rdma_ifaces()),
}


def edges() -> st.SearchStrategy[SocketConnection | RDMAConnection]:
    return st.one_of(*EDGES_BY_KIND.values())


def connections(nodes: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Connection]:
    """An edge between two nodes of ``nodes`` (self-loops included: the models accept them)."""
    nodes = nodes if nodes is not None else node_ids()
    return _build(Connection, source=nodes, sink=nodes, edge=edges())


@st.composite
def topologies(draw: st.DrawFn, nodes: st.SearchStrategy[str] | None = None) -> Topology:
    """Some nodes plus some edges between them; an edge may bring in a node listed on its own nowhere."""
    nodes = nodes if nodes is not None else node_ids()
    topology = Topology()
    for node in draw(st.lists(nodes, unique=True, max_size=len(NODE_IDS))):
        topology = topology.with_node(node)
    for conn in draw(st.lists(connections(nodes), max_size=8)):
        topology = topology.with_connection(conn)
    return topology


# --- work: instances, runners, downloads, tasks ---


def hosts() -> st.SearchStrategy[Host]:
    return _build(Host, ip=st.just("0.0.0.0") | _ip4() | _ip6(), port=st.integers(0, 65535))


@st.composite
def shard_assignments(draw: st.DrawFn, nodes: st.SearchStrategy[str] | None = None) -> ShardAssignments:
    nodes = nodes if nodes is not None else node_ids()
    runner_to_shard = draw(st.dictionaries(runner_ids(), shard_metadata(), max_size=3))
    node_to_runner = (
        draw(st.dictionaries(nodes, st.sampled_from(sorted(runner_to_shard)), max_size=3)) if runner_to_shard else {}
    )
    return ShardAssignments(model_id=draw(model_ids()), runner_to_shard=runner_to_shard, node_to_runner=node_to_runner)


def _instances_by_kind(nodes: st.SearchStrategy[str]) -> dict[type, st.SearchStrategy[Any]]:
    iface = st.none() | _rdma_ifaces()
    return {
        MlxRingInstance: _build(
            MlxRingInstance,
            instance_id=instance_ids(),
            shard_assignments=shard_assignments(nodes),
            hosts_by_node=st.dictionaries(nodes, st.lists(hosts(), max_size=2), max_size=3),
            ephemeral_port=st.integers(0, 65535) | INT64,
        ),
        MlxJacclInstance: _build(
            MlxJacclInstance,
            instance_id=instance_ids(),
            shard_assignments=shard_assignments(nodes),
            jaccl_devices=st.integers(0, 3).flatmap(
                lambda n: st.lists(st.lists(iface, min_size=n, max_size=n), min_size=n, max_size=n)
            ),
            jaccl_coordinators=st.dictionaries(
                nodes, st.builds(lambda ip, port: f"{ip}:{port}", _ip4(), st.integers(0, 65535)), max_size=3
            ),
        ),
    }


INSTANCES_BY_KIND = _instances_by_kind(node_ids())


def instances(nodes: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Any]:
    by_kind = _instances_by_kind(nodes) if nodes is not None else INSTANCES_BY_KIND
    return st.one_of(*by_kind.values())


RUNNER_STATUS_BY_KIND: dict[type, st.SearchStrategy[Any]] = {
    **{
        cls: _build(cls)
        for cls in (
            RunnerIdle,
            RunnerConnecting,
            RunnerConnected,
            RunnerLoading,
            RunnerLoaded,
            RunnerWarmingUp,
            RunnerReady,
            RunnerRunning,
            RunnerShuttingDown,
            RunnerShutdown,
        )
    },
    RunnerFailed: _build(RunnerFailed, error_message=_optional(TEXT)),
}


def runner_statuses() -> st.SearchStrategy[Any]:
    return st.one_of(*RUNNER_STATUS_BY_KIND.values())


def _download_progress_by_kind(nodes: st.SearchStrategy[str]) -> dict[type, st.SearchStrategy[Any]]:
    return {
        DownloadPending: _build(DownloadPending, node_id=nodes, shard_metadata=shard_metadata()),
        DownloadCompleted: _build(
            DownloadCompleted, node_id=nodes, shard_metadata=shard_metadata(), total_bytes=memories()
        ),
        DownloadFailed: _build(DownloadFailed, node_id=nodes, shard_metadata=shard_metadata(), error_message=TEXT),
        DownloadOngoing: _build(
            DownloadOngoing,
            node_id=nodes,
            shard_metadata=shard_metadata(),
            download_progress=_download_progress_data_json() | json_objects(),
        ),
    }


DOWNLOAD_PROGRESS_BY_KIND = _download_progress_by_kind(node_ids())


def download_progresses(nodes: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Any]:
    by_kind = _download_progress_by_kind(nodes) if nodes is not None else DOWNLOAD_PROGRESS_BY_KIND
    return st.one_of(*by_kind.values())


TASK_STATUSES = st.sampled_from(get_args(TaskStatus))


def _bound_instance_json() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "instance": instances().map(lambda instance: instance.model_dump(mode="json")),
            "bound_runner_id": runner_ids(),
            "bound_node_id": node_ids(),
        }
    )


def _generation_task(cls: type) -> st.SearchStrategy[Any]:
    return _build(
        cls,
        task_id=task_ids(),
        task_status=TASK_STATUSES,
        instance_id=instance_ids(),
        command_id=command_ids(),
        task_params=_text_generation_params_json() | json_objects(),
        error_type=_optional(TEXT),
        error_message=_optional(TEXT),
    )


def _base_task(cls: type, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return _build(cls, task_id=task_ids(), task_status=TASK_STATUSES, instance_id=instance_ids(), **fields)


TASKS_BY_KIND: dict[type, st.SearchStrategy[Any]] = {
    CreateRunner: _base_task(CreateRunner, bound_instance=_bound_instance_json() | json_objects()),
    DownloadModel: _base_task(DownloadModel, shard_metadata=shard_metadata()),
    LoadModel: _base_task(LoadModel),
    ConnectToGroup: _base_task(ConnectToGroup),
    StartWarmup: _base_task(StartWarmup),
    Shutdown: _base_task(Shutdown, runner_id=runner_ids()),
    CancelTask: _base_task(CancelTask, cancelled_task_id=task_ids(), runner_id=runner_ids()),
    TextGeneration: _generation_task(TextGeneration),
    ImageGeneration: _generation_task(ImageGeneration),
    ImageEdits: _generation_task(ImageEdits),
}


def tasks() -> st.SearchStrategy[Any]:
    return st.one_of(*TASKS_BY_KIND.values())


# --- events and envelopes ---


def traces() -> st.SearchStrategy[list[TraceEventData]]:
    trace = _build(
        TraceEventData,
        name=TEXT,
        start_us=INT64,
        duration_us=INT64,
        rank=st.integers(0, 7) | INT64,
        category=st.sampled_from(["compute", "comm"]) | SHORT_TEXT,
    )
    return st.lists(trace, max_size=3)


def _event(cls: type, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return _build(cls, event_id=event_ids(), **fields)


EVENTS_BY_KIND: dict[type, st.SearchStrategy[Any]] = {
    TestEvent: _event(TestEvent),
    TaskCreated: st.builds(
        lambda event_id, task, other_id, same: TaskCreated(
            event_id=event_id, task_id=task.task_id if same else other_id, task=task
        ),
        event_ids(),
        tasks(),
        task_ids(),
        st.booleans(),
    ),
    TaskStatusUpdated: _event(TaskStatusUpdated, task_id=task_ids(), task_status=TASK_STATUSES),
    TaskFailed: _event(TaskFailed, task_id=task_ids(), error_type=TEXT, error_message=TEXT),
    TaskDeleted: _event(TaskDeleted, task_id=task_ids()),
    TaskAcknowledged: _event(TaskAcknowledged, task_id=task_ids()),
    InstanceCreated: _event(InstanceCreated, instance=instances()),
    InstanceDeleted: _event(InstanceDeleted, instance_id=instance_ids()),
    RunnerStatusUpdated: _event(RunnerStatusUpdated, runner_id=runner_ids(), runner_status=runner_statuses()),
    RunnerDeleted: _event(RunnerDeleted, runner_id=runner_ids()),
    NodeTimedOut: _event(NodeTimedOut, node_id=node_ids()),
    NodeDisconnected: _event(
        NodeDisconnected, node_id=node_ids(), last_index=_optional(NON_NEGATIVE), stale_cycles=NON_NEGATIVE
    ),
    NodeGatheredInfo: _event(NodeGatheredInfo, node_id=node_ids(), info=gathered_infos()),
    NodeDownloadProgress: _event(NodeDownloadProgress, download_progress=download_progresses()),
    ChunkGenerated: _event(ChunkGenerated, command_id=command_ids(), chunk=generation_chunks()),
    InputChunkReceived: _event(InputChunkReceived, command_id=command_ids(), chunk=input_image_chunks()),
    TopologyEdgeCreated: _event(TopologyEdgeCreated, conn=connections()),
    TopologyEdgeDeleted: _event(TopologyEdgeDeleted, conn=connections()),
    TracesCollected: _event(TracesCollected, task_id=task_ids(), rank=st.integers(0, 7), traces=traces()),
    TracesMerged: _event(TracesMerged, task_id=task_ids(), traces=traces()),
}


def events() -> st.SearchStrategy[Any]:
    """Any of the 20 event kinds."""
    return st.one_of(*EVENTS_BY_KIND.values())


def indexed_events(of: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[IndexedEvent]:
    """An event (from ``of``, default any) with a global index and an origin node or ``origin=None``."""
    return _build(
        IndexedEvent,
        idx=st.integers(0, 1000) | NON_NEGATIVE,
        origin=_optional(node_ids()),
        event=of if of is not None else events(),
    )


def session_ids() -> st.SearchStrategy[SessionId]:
    return _build(SessionId, master_node_id=node_ids(), election_clock=st.integers(0, 10) | NON_NEGATIVE)


def forwarder_events() -> st.SearchStrategy[ForwarderEvent]:
    """exo's envelope; ``origin`` may be the master's pseudo-origin ``master_<node id>``."""
    return _build(
        ForwarderEvent,
        origin_idx=st.integers(0, 1000) | NON_NEGATIVE,
        origin=node_ids() | node_ids().map(lambda n: f"master_{n}"),
        session=session_ids(),
        event=events(),
    )


# --- whole States ---

# Built once: constructing strategies inside a draw is what makes composite strategies slow.
_STATE_INSTANCES = st.lists(instances(), max_size=2, unique_by=lambda instance: instance.instance_id)
_STATE_TASKS = st.lists(tasks(), max_size=3, unique_by=lambda task: task.task_id)
_STATE_RUNNERS = st.dictionaries(runner_ids(), runner_statuses(), max_size=3)
_STATE_DOWNLOADS = st.lists(download_progresses(), min_size=1, max_size=2)
_STATE_APPLIED_IDX = st.sampled_from([-1, 0]) | st.integers(-1, 10_000) | NON_NEGATIVE
_STATE_NODE_INFO: dict[str, st.SearchStrategy[Any]] = {
    "node_identities": node_identities(),
    "node_memory": memory_usages(),
    "node_disk": disk_usages(),
    "node_system": system_profiles(),
    "node_network": _build(NodeNetworkInfo, interfaces=st.lists(network_interfaces(), max_size=3)),
    "node_thunderbolt": _build(NodeThunderboltInfo, interfaces=st.lists(thunderbolt_identifiers(), max_size=2)),
    "node_thunderbolt_bridge": bridge_statuses(),
    "node_rdma_ctl": _build(NodeRdmaCtlStatus, enabled=st.booleans()),
}


@st.composite
def states(draw: st.DrawFn, max_nodes: int = 4) -> State:
    """A consistent-ish State over a few nodes drawn from the pool.

    Maps are keyed consistently (tasks by their task_id, instances by their instance_id, downloads
    by the node they report), per-node maps overlap on a small node set, the topology is built
    from connections between those nodes, and every per-node event index is at most
    ``last_event_applied_idx``. Nothing is cross-checked beyond that (e.g. runners need not
    belong to an instance, instances may name nodes outside the topology), as a reducer must cope
    with whatever an event stream leaves behind.
    """
    nodes = draw(st.lists(node_ids(), unique=True, max_size=max_nodes))
    count = len(nodes)

    def some_nodes() -> list[str]:
        mask = draw(st.lists(st.booleans(), min_size=count, max_size=count))
        return [node for node, keep in zip(nodes, mask, strict=True) if keep]

    def per_node(values: st.SearchStrategy[Any]) -> dict[str, Any]:
        return {node: draw(values) for node in some_nodes()}

    topology = Topology()
    for node in some_nodes():
        topology = topology.with_node(node)
    if nodes:
        links = st.lists(st.tuples(st.integers(0, count - 1), st.integers(0, count - 1), edges()), max_size=8)
        for source, sink, edge in draw(links):
            topology = topology.with_connection(Connection(source=nodes[source], sink=nodes[sink], edge=edge))

    applied = draw(_STATE_APPLIED_IDX)
    cycles = (
        [draw(st.permutations(nodes))[: draw(st.integers(2, count))] for _ in range(draw(st.integers(0, 2)))]
        if count >= 2
        else []
    )

    return State(
        instances={instance.instance_id: instance for instance in draw(_STATE_INSTANCES)},
        runners=draw(_STATE_RUNNERS),
        downloads={
            node: [progress.model_copy(update={"node_id": node}) for progress in progresses]
            for node, progresses in per_node(_STATE_DOWNLOADS).items()
        },
        tasks={task.task_id: task for task in draw(_STATE_TASKS)},
        last_event_index_by_node=per_node(st.integers(0, applied)) if applied >= 0 else {},
        topology=topology,
        last_event_applied_idx=applied,
        **{name: per_node(values) for name, values in _STATE_NODE_INFO.items()},
        thunderbolt_bridge_cycles=cycles,
    )


# --- introspection ---


def union_members(union: Any) -> set[type]:
    """The member classes of one of the models' ``Annotated[A | B | ..., Discriminator]`` unions."""
    inner = get_args(union)[0]
    return {get_args(member)[0] for member in get_args(inner)}
