"""A node's status as Prometheus text (exposition format 0.0.4), for the API's ``GET /metrics`` (pure).

Every sample has the label ``node`` (the node id):

- each counter of ``status["counters"]`` as the counter ``clusterstate_<name>`` (characters a metric name cannot
  hold become ``_``);
- the drop counters of ``status["dropped"]`` as the counter ``clusterstate_dropped``, one sample per ``stream``;
- the gauges ``clusterstate_next``, ``clusterstate_lag``, ``clusterstate_pending`` and ``clusterstate_term``
  (``lag`` has no sample while the node knows no master's index);
- ``clusterstate_role``: one sample per role (label ``role``), 1 for the node's role and 0 for the others.

A counter must not be named like one of the gauges or ``dropped``: the names would clash.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["CONTENT_TYPE", "GAUGES", "ROLES", "metrics_text"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ROLES = ("starting", "follower", "candidate", "syncing", "master", "stopping")
GAUGES = {
    "next": "the index of the next event the node applies",
    "lag": "the master's next index minus the node's",
    "pending": "events in the node's outbox waiting for release",
    "term": "the highest election term the node knows",
}

_NOT_IN_NAME = re.compile(r"[^a-zA-Z0-9_:]")


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(name: str, kind: str, text: str, samples: Iterable[tuple[str, int]]) -> list[str]:
    """``# HELP``, ``# TYPE`` and one line per ``(labels, value)``."""
    metric = f"clusterstate_{name}"
    return [
        f"# HELP {metric} {text}",
        f"# TYPE {metric} {kind}",
        *(f"{metric}{{{labels}}} {value}" for labels, value in samples),
    ]


def metrics_text(status: Mapping[str, Any]) -> str:
    """The exposition of ``status`` (the format of ``NodeView.status``), ending with a newline."""
    node = f'node="{_label(status["node"])}"'
    lines: list[str] = []
    for name, value in sorted(status["counters"].items()):
        lines += _family(_NOT_IN_NAME.sub("_", name), "counter", f"the node's {name} count", [(node, value)])
    drops = [(f'{node},stream="{_label(stream)}"', count) for stream, count in sorted(status["dropped"].items())]
    lines += _family("dropped", "counter", "items an inbox dropped when full, by stream", drops)
    for name, text in GAUGES.items():
        value = status[name]
        lines += _family(name, "gauge", text, [] if value is None else [(node, value)])
    roles = [(f'{node},role="{role}"', int(role == status["role"])) for role in ROLES]
    lines += _family("role", "gauge", "1 for the node's current role", roles)
    return "\n".join(lines) + "\n"
