"""clusterstate: the event-sourced state core of a cluster master.

``clusterstate.apply`` is the Rust reducer over the Rust-owned :class:`CoreState`, a drop-in for
``clusterstate.reference.apply``, the pure-Python reducer (the specification); the models in
``clusterstate.models`` are the typed public surface; ``clusterstate.trace`` generates realistic,
seeded cluster traces.
"""

from . import errors, models, reference
from ._core import State as CoreState
from ._core import __version__, apply, apply_many
from .codec import decode_event, decode_forwarder_event, decode_indexed_event, decode_state, encode_event
from .errors import ClusterStateError, DecodeError, EventIndexError
from .models import Event, ForwarderEvent, IndexedEvent, State

__all__ = [
    "ClusterStateError",
    "CoreState",
    "DecodeError",
    "Event",
    "EventIndexError",
    "ForwarderEvent",
    "IndexedEvent",
    "State",
    "__version__",
    "apply",
    "apply_many",
    "decode_event",
    "decode_forwarder_event",
    "decode_indexed_event",
    "decode_state",
    "encode_event",
    "errors",
    "models",
    "reference",
]
