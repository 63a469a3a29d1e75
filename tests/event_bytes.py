"""Small events as JSON bytes, the way producers hand them to an outbox or a master (test helpers)."""

from __future__ import annotations

import json


def noop_event(event_id: str) -> bytes:
    """A ``TestEvent``: indexed and logged like any event, it changes nothing else in the State."""
    return json.dumps({"TestEvent": {"event_id": event_id}}).encode()


def info_event(node: str, event_id: str = "g") -> bytes:
    """A ``NodeGatheredInfo`` about ``node`` (a ``MiscData`` sample)."""
    return json.dumps(
        {"NodeGatheredInfo": {"event_id": event_id, "node_id": node, "info": {"MiscData": {"friendly_name": node}}}}
    ).encode()


def disconnect_event(node: str) -> bytes:
    """A ``NodeDisconnected`` of ``node`` (last index 0, after 3 stale cycles)."""
    return json.dumps(
        {"NodeDisconnected": {"event_id": "d", "node_id": node, "last_index": 0, "stale_cycles": 3}}
    ).encode()
