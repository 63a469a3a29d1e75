"""The runtime's typed errors: bad names, records and lineages given to the decision modules."""

from __future__ import annotations

from clusterstate.errors import ClusterStateError

__all__ = ["InvalidLineageError", "InvalidNameError", "InvalidRecordError", "TransportError"]


class InvalidNameError(ClusterStateError, ValueError):
    """A cluster name or node id that cannot be one chunk of a key expression."""

    def __init__(self, what: str, value: str, reason: str) -> None:
        super().__init__(f"invalid {what} {value!r}: {reason}")
        self.what = what
        self.value = value


class InvalidRecordError(ClusterStateError, ValueError):
    """An election record with an impossible field (a negative term or index, a priority below -1)."""

    def __init__(self, field: str, value: int) -> None:
        super().__init__(f"invalid election record: {field} = {value}")
        self.field = field
        self.value = value


class InvalidLineageError(ClusterStateError, ValueError):
    """A lineage whose terms do not strictly increase or whose start indices go back."""


class TransportError(ClusterStateError, OSError):
    """The network session cannot be opened (an endpoint in use or malformed, say)."""
