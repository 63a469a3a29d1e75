"""clusterstate: the event-sourced state core of a cluster master.

``clusterstate.apply`` is the Rust reducer over the Rust-owned :class:`CoreState`, a drop-in for
``clusterstate.reference.apply``, the pure-Python reducer (the specification); the models in
``clusterstate.models`` are the typed public surface; ``clusterstate.trace`` generates realistic,
seeded cluster traces. :class:`StalenessTracker` decides which nodes are gone from whether their
event index advances (docs/liveness.md); ``clusterstate.simulation`` compares it with exo's
wall-clock detector. :class:`MasterCore` is the master's ingest path: local-event envelopes
resequenced per producer, indexed and applied (docs/master.md). :class:`NodeCore` is the
receiving side every node runs: the broadcast resequenced by global index, applied exactly once
(docs/node.md).
:class:`ProducerOutbox` is the producer side: local events numbered, kept until acknowledged,
resent when due (docs/master.md).
"""

from . import errors, models, reference
from ._core import (
    CoreState,
    CycleResult,
    EventLog,
    IngestResult,
    MasterCore,
    NodeCore,
    NodeStaleness,
    ProducerOutbox,
    ReceiveResult,
    StalenessTracker,
    __version__,
    apply,
    apply_many,
)
from .codec import decode_event, decode_forwarder_event, decode_indexed_event, decode_state, encode_event
from .errors import ClusterStateError, DecodeError, EventIndexError, OutboxFullError
from .models import Event, ForwarderEvent, IndexedEvent, State

__all__ = [
    "ClusterStateError",
    "CoreState",
    "CycleResult",
    "DecodeError",
    "Event",
    "EventIndexError",
    "EventLog",
    "ForwarderEvent",
    "IndexedEvent",
    "IngestResult",
    "MasterCore",
    "NodeCore",
    "NodeStaleness",
    "OutboxFullError",
    "ProducerOutbox",
    "ReceiveResult",
    "StalenessTracker",
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
