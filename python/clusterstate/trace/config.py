"""The knobs of a generated trace.

Every default describes a small, mostly idle home-lab cluster like the ones exo runs on
(exo's measured idle rates): half Mac Studios cabled in Thunderbolt rings, half Linux boxes, one
model instance serving a trickle of chat requests. A trace is a pure function of its config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from .payloads import CATALOG

__all__ = ["TraceConfig"]


@dataclass(frozen=True)
class TraceConfig:
    """What to simulate; equal configs give identical traces.

    Attributes:
        nodes: Cluster size. Node 0 is the master; it never goes silent.
        duration_s: Simulated seconds; events at or after this time are not produced.
        seed: Seeds every random choice (ids, hardware, phases, workload).
        mac_fraction: Share of Mac Studios (macmon, Thunderbolt monitors); the rest are Linux
            boxes. Macs get the lowest node numbers.
        tb_group_size: Macs are cabled by Thunderbolt in groups of this many consecutive Macs
            (a group of one, or a size below 2, has no cables).
        tb_wiring: ``"ring"`` cables each Mac of a group to the next one; ``"mesh"`` cables
            every pair (at most 7 Macs per group: a Mac Studio has 6 Thunderbolt ports).
        bridge_groups: How many cabled groups, first ones first, have the Thunderbolt Bridge
            enabled (so bridge cycles appear); the other Macs have it disabled.
        lan_reachability: Probability that a pair of nodes reaches each other over the LAN;
            1.0 gives exo's usual full mesh of socket edges.
        join_spread_s: Nodes other than the master boot at a seeded time in ``[0, join_spread_s)``.
        silent_nodes: How many nodes (never the master; preferably ones without work) crash.
        silent_window: A silent node's last moment, as fractions of ``duration_s``.
        rejoin_after_s: Seconds after which a crashed node boots again with the same id
            (``None``: it never comes back).
        instances: Model instances the master places (one per cabled Mac group first, then
            rings of up to two other nodes).
        first_placement_s: When the first instance is placed; later ones follow 10 s apart.
        models: Model ids used for instances, in turn (keys of :data:`clusterstate.trace.payloads.CATALOG`).
        requests_per_minute: Mean rate of text-generation requests per ready instance
            (served one at a time).
        tokens_per_request: Inclusive range of generated tokens per request; each token is one
            ``ChunkGenerated`` event.
        predownloaded_fraction: Probability that a node already has its instance's model on
            disk; the others download their shard (``DownloadOngoing`` once a second).
        download_mb_per_s: Range of per-node download speeds, MB/s.
        plan_interval_s: The master's plan-loop period.
        stale_cycles: Plan cycles without progress after which the master declares a node
            disconnected.
    """

    nodes: int
    duration_s: float = 60.0
    seed: int = 0
    mac_fraction: float = 0.5
    tb_group_size: int = 4
    tb_wiring: Literal["ring", "mesh"] = "ring"
    bridge_groups: int = 1
    lan_reachability: float = 1.0
    join_spread_s: float = 2.0
    silent_nodes: int = 0
    silent_window: tuple[float, float] = (0.3, 0.6)
    rejoin_after_s: float | None = None
    instances: int = 1
    first_placement_s: float = 5.0
    models: tuple[str, ...] = ("mlx-community/Llama-3.2-3B-Instruct-4bit", "mlx-community/Qwen3-30B-A3B-4bit")
    requests_per_minute: float = 1.0
    tokens_per_request: tuple[int, int] = (8, 24)
    predownloaded_fraction: float = 0.5
    download_mb_per_s: tuple[float, float] = (150.0, 400.0)
    plan_interval_s: float = 10.0
    stale_cycles: int = 3

    def __post_init__(self) -> None:
        problems = [
            message
            for ok, message in (
                (self.nodes >= 1, "nodes must be at least 1"),
                (0 < self.duration_s < math.inf, "duration_s must be positive and finite"),
                (0.0 <= self.mac_fraction <= 1.0, "mac_fraction must be in [0, 1]"),
                (self.tb_wiring in ("ring", "mesh"), "tb_wiring must be 'ring' or 'mesh'"),
                (self.tb_wiring != "mesh" or self.tb_group_size <= 7, "a mesh group needs at most 7 Macs"),
                (self.bridge_groups >= 0, "bridge_groups must not be negative"),
                (0.0 <= self.lan_reachability <= 1.0, "lan_reachability must be in [0, 1]"),
                (self.join_spread_s >= 0, "join_spread_s must not be negative"),
                (0 <= self.silent_nodes < self.nodes, "silent_nodes must be in [0, nodes - 1]"),
                (0.0 <= self.silent_window[0] <= self.silent_window[1] <= 1.0, "silent_window must be in [0, 1]"),
                (self.rejoin_after_s is None or self.rejoin_after_s > 0, "rejoin_after_s must be positive"),
                (self.instances >= 0, "instances must not be negative"),
                (self.first_placement_s >= 0, "first_placement_s must not be negative"),
                (len(self.models) > 0, "models must name at least one model"),
                (self.requests_per_minute >= 0, "requests_per_minute must not be negative"),
                (1 <= self.tokens_per_request[0] <= self.tokens_per_request[1], "tokens_per_request: 1 <= lo <= hi"),
                (0.0 <= self.predownloaded_fraction <= 1.0, "predownloaded_fraction must be in [0, 1]"),
                (0 < self.download_mb_per_s[0] <= self.download_mb_per_s[1], "download_mb_per_s: 0 < lo <= hi"),
                (self.plan_interval_s > 0, "plan_interval_s must be positive"),
                (self.stale_cycles >= 1, "stale_cycles must be at least 1"),
            )
            if not ok
        ]
        problems += [
            f"unknown model {model!r} (known: {sorted(CATALOG)})" for model in self.models if model not in CATALOG
        ]
        if problems:
            raise ValueError("invalid TraceConfig: " + "; ".join(problems))
