"""Seeded, deterministic traces of a simulated exo cluster, for tests, demos and benchmarks.

A trace is the global event stream a master would index for a cluster of Mac Studios and Linux
boxes: each node's hardware monitors at exo's rates, reachability sweeps building the socket
mesh, Thunderbolt cables that become RDMA edges, model instances with their runners, tasks,
downloads and token streams, and nodes that crash (and rejoin) with the master declaring them
disconnected. The same config always gives the same trace, byte for byte once encoded. The
discrete-event engine behind it is :mod:`.engine`. (:mod:`clusterstate.simulation` is the other
simulator: fault scenarios scoring liveness detectors, with lighter payloads.)

Example:
    >>> from clusterstate.trace import generate_trace
    >>> events = generate_trace(nodes=4, duration_s=60.0, seed=1)
    >>> events[0].idx
    0
"""

from .cluster import ClusterSpec, NodeSpec, Placement, cluster_spec
from .config import TraceConfig
from .generator import generate, generate_trace, iter_trace, node_ids

__all__ = [
    "ClusterSpec",
    "NodeSpec",
    "Placement",
    "TraceConfig",
    "cluster_spec",
    "generate",
    "generate_trace",
    "iter_trace",
    "node_ids",
]
