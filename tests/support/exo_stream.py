"""A two-node cluster's events with every event kind of exo's schema, as exo writes them (JSON bodies).

:func:`exo_bodies` is the stream in exo's schema (``NodeGatheredInfo.when``); :func:`current_bodies` the same
stream in clusterstate's (no ``when``, and the master's ``NodeDisconnected`` where exo timed the node out);
:func:`exo_json` writes a clusterstate event the way exo would.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from clusterstate.models import IndexedEvent

__all__ = ["EXO_EVENT_KINDS", "current_bodies", "exo_bodies", "exo_json"]

EXO_EVENT_KINDS = frozenset(
    {
        "TestEvent",
        "TaskCreated",
        "TaskStatusUpdated",
        "TaskFailed",
        "TaskDeleted",
        "TaskAcknowledged",
        "InstanceCreated",
        "InstanceDeleted",
        "RunnerStatusUpdated",
        "RunnerDeleted",
        "NodeTimedOut",
        "NodeGatheredInfo",
        "NodeDownloadProgress",
        "ChunkGenerated",
        "InputChunkReceived",
        "TopologyEdgeCreated",
        "TopologyEdgeDeleted",
        "TracesCollected",
        "TracesMerged",
    }
)
"""exo's 19 event kinds (its ``Event`` union)."""

_MEMORY = {
    "ram_total": {"in_bytes": 549755813888},
    "ram_available": {"in_bytes": 429496729600},
    "swap_total": {"in_bytes": 0},
    "swap_available": {"in_bytes": 0},
}
_CARD = {
    "model_id": "mlx-community/Llama-3.2-1B-Instruct-4bit",
    "storage_size": {"in_bytes": 729808896},
    "n_layers": 16,
    "hidden_size": 2048,
    "supports_tensor": True,
    "tasks": ["TextGeneration"],
    "family": "llama",
    "quantization": "4bit",
}
_SHARD = {
    "PipelineShardMetadata": {
        "model_card": _CARD,
        "device_rank": 0,
        "world_size": 1,
        "immediate_exception": False,
        "should_timeout": None,
        "start_layer": 0,
        "end_layer": 16,
        "n_layers": 16,
    }
}
_INSTANCE = {
    "MlxRingInstance": {
        "instance_id": "inst-1",
        "shard_assignments": {
            "model_id": _CARD["model_id"],
            "runner_to_shard": {"runner-1": _SHARD},
            "node_to_runner": {"nodeA": "runner-1"},
        },
        "hosts_by_node": {"nodeA": [{"ip": "0.0.0.0", "port": 52416}]},
        "ephemeral_port": 52416,
    }
}
_SOCKET = {"sink_multiaddr": {"address": "/ip4/10.0.0.2/tcp/52415"}}
_RDMA = {"source_rdma_iface": "rdma_en2", "sink_rdma_iface": "rdma_en3"}
_TRACE = {"name": "prefill", "start_us": 10, "duration_us": 250, "rank": 0, "category": "compute"}
_WHEN = "2026-02-17 11:48:28.123456+00:00"


def _info(node: str, info: dict[str, Any], n: int) -> dict[str, Any]:
    return {"NodeGatheredInfo": {"event_id": f"g{n}", "node_id": node, "when": _WHEN, "info": info}}


def exo_bodies() -> list[dict[str, Any]]:
    """The stream in exo's schema, in apply order (each body is one event's tagged JSON)."""
    infos: list[tuple[str, dict[str, Any]]] = [
        ("nodeA", {"MacmonMetrics": {"system_profile": {"gpu_usage": 0.12, "temp": 45.3}, "memory": _MEMORY}}),
        ("nodeB", _MEMORY),
        ("nodeA", {"NodeDiskUsage": {"disk_usage": {"total": {"in_bytes": 10}, "available": {"in_bytes": 4}}}}),
        ("nodeB", {"NodeConfig": {}}),
        ("nodeA", {"MiscData": {"friendly_name": "studio-a"}}),
        (
            "nodeA",
            {
                "StaticNodeInformation": {
                    "model": "Mac Studio",
                    "chip": "M3 Ultra",
                    "os_version": "15.3",
                    "os_build_version": "24D60",
                }
            },
        ),
        (
            "nodeA",
            {
                "NodeNetworkInterfaces": {
                    "ifaces": [{"name": "bridge0", "ip_address": "10.0.0.1", "interface_type": "thunderbolt"}]
                }
            },
        ),
        (
            "nodeB",
            {
                "NodeNetworkInterfaces": {
                    "ifaces": [{"name": "bridge0", "ip_address": "10.0.0.2", "interface_type": "thunderbolt"}]
                }
            },
        ),
        ("nodeA", {"MacThunderboltIdentifiers": {"idents": [{"rdma_interface": "rdma_en2", "domain_uuid": "uA"}]}}),
        (
            "nodeB",
            {
                "MacThunderboltIdentifiers": {
                    "idents": [{"rdma_interface": "rdma_en3", "domain_uuid": "uB", "link_speed": "80 Gb/s"}]
                }
            },
        ),
        ("nodeA", {"MacThunderboltConnections": {"conns": [{"source_uuid": "uA", "sink_uuid": "uB"}]}}),
        ("nodeB", {"MacThunderboltConnections": {"conns": [{"source_uuid": "uB", "sink_uuid": "uA"}]}}),
        ("nodeA", {"RdmaCtlStatus": {"enabled": True}}),
        (
            "nodeA",
            {
                "ThunderboltBridgeInfo": {
                    "status": {"enabled": True, "exists": True, "service_name": "Thunderbolt Bridge"}
                }
            },
        ),
        ("nodeB", {"ThunderboltBridgeInfo": {"status": {"enabled": True, "exists": True}}}),
    ]
    bodies = [_info(node, info, n) for n, (node, info) in enumerate(infos)]
    bodies += [
        {"TopologyEdgeCreated": {"event_id": "e1", "conn": {"source": "nodeA", "sink": "nodeB", "edge": _SOCKET}}},
        {
            "TopologyEdgeCreated": {
                "event_id": "e2",
                "conn": {
                    "source": "nodeB",
                    "sink": "nodeA",
                    "edge": {"sink_multiaddr": {"address": "/ip4/10.0.0.1/tcp/52415"}},
                },
            }
        },
        {"InstanceCreated": {"event_id": "e3", "instance": _INSTANCE}},
        {"RunnerStatusUpdated": {"event_id": "e4", "runner_id": "runner-1", "runner_status": {"RunnerLoading": {}}}},
        {
            "RunnerStatusUpdated": {
                "event_id": "e5",
                "runner_id": "runner-2",
                "runner_status": {"RunnerFailed": {"error_message": "oom"}},
            }
        },
        {"RunnerDeleted": {"event_id": "e6", "runner_id": "runner-2"}},
        {
            "NodeDownloadProgress": {
                "event_id": "e7",
                "download_progress": {
                    "DownloadCompleted": {
                        "node_id": "nodeA",
                        "shard_metadata": _SHARD,
                        "total_bytes": {"in_bytes": 729808896},
                    }
                },
            }
        },
        {
            "NodeDownloadProgress": {
                "event_id": "e8",
                "download_progress": {
                    "DownloadOngoing": {
                        "node_id": "nodeB",
                        "shard_metadata": _SHARD,
                        "download_progress": {
                            "total_bytes": {"in_bytes": 100},
                            "downloaded_bytes": {"in_bytes": 40},
                            "downloaded_bytes_this_session": {"in_bytes": 40},
                            "completed_files": 1,
                            "total_files": 3,
                            "speed": 1.5,
                            "eta_ms": 4000,
                            "files": {},
                        },
                    }
                },
            }
        },
        {
            "TaskCreated": {
                "event_id": "e9",
                "task_id": "task-1",
                "task": {
                    "TextGeneration": {
                        "task_id": "task-1",
                        "task_status": "Pending",
                        "instance_id": "inst-1",
                        "command_id": "cmd-1",
                        "task_params": {
                            "model": _CARD["model_id"],
                            "input": [{"role": "user", "content": "hi"}],
                            "max_output_tokens": 64,
                            "temperature": None,
                            "stream": True,
                        },
                        "error_type": None,
                        "error_message": None,
                    }
                },
            }
        },
        {
            "TaskCreated": {
                "event_id": "e10",
                "task_id": "task-2",
                "task": {
                    "DownloadModel": {
                        "task_id": "task-2",
                        "task_status": "Pending",
                        "instance_id": "inst-1",
                        "shard_metadata": _SHARD,
                    }
                },
            }
        },
        {"TaskAcknowledged": {"event_id": "e11", "task_id": "task-1"}},
        {"TaskStatusUpdated": {"event_id": "e12", "task_id": "task-1", "task_status": "Running"}},
        {
            "ChunkGenerated": {
                "event_id": "e13",
                "command_id": "cmd-1",
                "chunk": {
                    "TokenChunk": {
                        "model": _CARD["model_id"],
                        "text": " hello",
                        "token_id": 1234,
                        "usage": None,
                        "finish_reason": None,
                        "logprob": None,
                    }
                },
            }
        },
        {
            "InputChunkReceived": {
                "event_id": "e14",
                "command_id": "cmd-1",
                "chunk": {
                    "InputImageChunk": {
                        "model": "flux",
                        "command_id": "cmd-1",
                        "data": "aGVsbG8=",
                        "chunk_index": 0,
                        "total_chunks": 1,
                    }
                },
            }
        },
        {"TracesCollected": {"event_id": "e15", "task_id": "task-1", "rank": 0, "traces": [_TRACE]}},
        {"TracesMerged": {"event_id": "e16", "task_id": "task-1", "traces": [_TRACE]}},
        {"TaskFailed": {"event_id": "e17", "task_id": "task-1", "error_type": "RuntimeError", "error_message": "boom"}},
        {"TaskDeleted": {"event_id": "e18", "task_id": "task-2"}},
        {"TestEvent": {"event_id": "e19"}},
        {"TopologyEdgeDeleted": {"event_id": "e20", "conn": {"source": "nodeA", "sink": "nodeB", "edge": _SOCKET}}},
        {"InstanceDeleted": {"event_id": "e21", "instance_id": "inst-1"}},
        {"NodeTimedOut": {"event_id": "e22", "node_id": "nodeB"}},
    ]
    return bodies


def current_bodies() -> list[dict[str, Any]]:
    """The same stream in clusterstate's schema: no ``when``, and ``NodeDisconnected`` for the last timeout."""
    bodies = copy.deepcopy(exo_bodies())
    for body in bodies:
        body.get("NodeGatheredInfo", {}).pop("when", None)
    bodies[-1] = {"NodeDisconnected": {"event_id": "e22", "node_id": "nodeB", "last_index": 7, "stale_cycles": 3}}
    bodies.insert(-1, {"NodeTimedOut": {"event_id": "e23", "node_id": "nodeA"}})
    return bodies


def exo_json(event: IndexedEvent, when: str = _WHEN) -> str:
    """``event`` (clusterstate's schema) as exo writes it: no ``origin``, and a ``when`` on a ``NodeGatheredInfo``."""
    body = json.loads(event.model_dump_json())
    body.pop("origin")
    body["event"].get("NodeGatheredInfo", {})["when"] = when
    return json.dumps(body)
