"""clusterstate: the event-sourced state core of a cluster master.

``clusterstate.reference.apply`` is the pure-Python reducer (the specification); the models in
``clusterstate.models`` are the typed public surface; ``clusterstate.trace`` generates realistic,
seeded cluster traces.
"""

from . import errors, models
from ._core import __version__
from .codec import decode_event, decode_forwarder_event, decode_indexed_event, decode_state, encode_event
from .errors import ClusterStateError, DecodeError, EventIndexError
from .models import Event, ForwarderEvent, IndexedEvent, State

__all__ = [
    "ClusterStateError",
    "DecodeError",
    "Event",
    "EventIndexError",
    "ForwarderEvent",
    "IndexedEvent",
    "State",
    "__version__",
    "decode_event",
    "decode_forwarder_event",
    "decode_indexed_event",
    "decode_state",
    "encode_event",
    "errors",
    "models",
]
