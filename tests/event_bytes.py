"""Small events as JSON bytes, the way producers hand them to an outbox or a master (test helpers)."""

from __future__ import annotations

import json


def test_event(event_id: str) -> bytes:
    return json.dumps({"TestEvent": {"event_id": event_id}}).encode()


test_event.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def info_event(node: str, event_id: str = "g") -> bytes:
    """A ``NodeGatheredInfo`` about ``node`` (a ``MiscData`` sample)."""
    return json.dumps(
        {"NodeGatheredInfo": {"event_id": event_id, "node_id": node, "info": {"MiscData": {"friendly_name": node}}}}
    ).encode()
