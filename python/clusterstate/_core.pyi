"""Rust core of clusterstate, compiled from `rust/py` (hand-written stub, checked by `mypy.stubtest`)."""

from collections.abc import Iterable
from typing import Any, TypeAlias, final

from clusterstate import models

# PyO3 appends every name added to the module to its `__all__`; keep this list in step (stubtest compares them).
__all__ = ["State", "__version__", "apply", "apply_many"]

__version__: str
"""Version of the Rust core, equal to the `clusterstate` distribution's version."""

_EventInput: TypeAlias = models.IndexedEvent | bytes | bytearray | str
_StateInput: TypeAlias = State | models.State

@final
class State:
    """The cluster State held by the Rust core: immutable, structurally shared between versions.

    Reads like `clusterstate.models.State`: the same attribute names with the same typed values,
    `model_dump()` / `model_dump_json(by_alias=...)` giving the same data and bytes, and equality
    with a pydantic State of the same content. `State()` is the empty State.
    """

    def __new__(cls) -> State: ...
    @staticmethod
    def from_pydantic(state: _StateInput) -> State:
        """The Rust State of a pydantic State (converted once, through its JSON).

        Raises:
            clusterstate.errors.DecodeError: `state` is not a State.
        """

    @staticmethod
    def from_json(data: bytes | bytearray | str) -> State:
        """Decode a State from its JSON (either key spelling).

        Raises:
            clusterstate.errors.DecodeError: the JSON is malformed or not a State.
        """

    def to_pydantic(self) -> models.State:
        """The equal pydantic State."""

    def model_dump_json(self, *, by_alias: bool = False) -> str:
        """The JSON the pydantic State writes for the same content, byte for byte."""

    def model_dump(self, *, by_alias: bool = False) -> dict[str, Any]:
        """The State as JSON-compatible Python data (pydantic's `model_dump(mode="json")`)."""

    def known_nodes(self) -> list[str]:
        """Every node the State holds anything about: in the topology or with an event index."""

    @property
    def instances(self) -> dict[models.InstanceId, models.MlxRingInstance | models.MlxJacclInstance]: ...
    @property
    def runners(self) -> dict[models.RunnerId, Any]: ...
    @property
    def downloads(self) -> dict[models.NodeId, list[Any]]: ...
    @property
    def tasks(self) -> dict[models.TaskId, Any]: ...
    @property
    def last_event_index_by_node(self) -> dict[models.NodeId, int]: ...
    @property
    def topology(self) -> models.Topology: ...
    @property
    def last_event_applied_idx(self) -> int: ...
    @property
    def node_identities(self) -> dict[models.NodeId, models.NodeIdentity]: ...
    @property
    def node_memory(self) -> dict[models.NodeId, models.MemoryUsage]: ...
    @property
    def node_disk(self) -> dict[models.NodeId, models.DiskUsage]: ...
    @property
    def node_system(self) -> dict[models.NodeId, models.SystemPerformanceProfile]: ...
    @property
    def node_network(self) -> dict[models.NodeId, models.NodeNetworkInfo]: ...
    @property
    def node_thunderbolt(self) -> dict[models.NodeId, models.NodeThunderboltInfo]: ...
    @property
    def node_thunderbolt_bridge(self) -> dict[models.NodeId, models.ThunderboltBridgeStatus]: ...
    @property
    def node_rdma_ctl(self) -> dict[models.NodeId, models.NodeRdmaCtlStatus]: ...
    @property
    def thunderbolt_bridge_cycles(self) -> list[list[models.NodeId]]: ...
    def __eq__(self, other: object, /) -> bool: ...
    __hash__: None  # type: ignore[assignment]

def apply(state: _StateInput, indexed_event: _EventInput, /) -> State:
    """Fold one indexed event into `state` and return the new State; a drop-in for `clusterstate.reference.apply`.

    `state` is a Rust State, or a pydantic State (converted first); `indexed_event` is a pydantic
    `IndexedEvent` or its JSON. The input State is never changed.

    Raises:
        clusterstate.errors.EventIndexError: `indexed_event.idx` is not `state.last_event_applied_idx + 1`.
        clusterstate.errors.DecodeError: `indexed_event` (or `state`) is not valid.
    """

def apply_many(state: _StateInput, events: Iterable[_EventInput], /) -> State:
    """Fold a batch of indexed events in one crossing into Rust, releasing the GIL for long batches.

    All or nothing: if any event is invalid or out of order, an error is raised and nothing is applied.

    Raises:
        clusterstate.errors.EventIndexError: an event's `idx` does not follow the previous one.
        clusterstate.errors.DecodeError: an event is not valid (the message names its position in the batch).
    """
