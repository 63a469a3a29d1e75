"""Rust core of clusterstate, compiled from `rust/py` (hand-written stub, checked by `mypy.stubtest`)."""

import os
import pathlib
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Literal, TypeAlias, TypedDict, final

from clusterstate import models

# PyO3 appends every name added to the module to its `__all__`; keep this list in step (stubtest compares them).
__all__ = [
    "EventLog",
    "EventLogIterator",
    "IngestResult",
    "MasterCore",
    "NodeStaleness",
    "StalenessTracker",
    "State",
    "__version__",
    "apply",
    "apply_many",
]

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

    def replay(self, log: EventLog, /) -> State:
        """This State with the records of `log` after `last_event_applied_idx` folded in (in Rust, GIL released).

        Raises:
            clusterstate.errors.LogUsageError: the State is past the log's end or before its start.
            clusterstate.errors.LogCorruptedError: a record read on the way is damaged.
        """

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

@final
class NodeStaleness:
    """A node's staleness: a decision of `StalenessTracker.cycle` or an entry of `StalenessTracker.status()`.

    `last_index` is the global index of the node's last event (None for a node never heard from, e.g. one
    only named by a topology edge); `stale_cycles` is how many consecutive counting cycles saw no advance
    (the threshold K in a decision). Frozen, hashable, equal by value.
    """

    def __new__(cls, node_id: str, last_index: int | None, stale_cycles: int) -> NodeStaleness: ...
    @property
    def node_id(self) -> str: ...
    @property
    def last_index(self) -> int | None: ...
    @property
    def stale_cycles(self) -> int: ...
    def to_event(self, *, event_id: str | None = None) -> models.NodeDisconnected:
        """The `NodeDisconnected` event carrying this evidence (a fresh `event_id` unless one is given)."""

    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class StalenessTracker:
    """Decides which nodes are gone from whether their event index advances (docs/liveness.md).

    Master-local and driven by explicit `cycle()` calls, one per plan cycle (period `period_s`, threshold
    `threshold` = K). A node whose index has not advanced for K consecutive counting cycles is returned
    at the K-th; its count then restarts, so it is returned again only K counting cycles later if the
    caller's `NodeDisconnected` is still in flight. A fresh tracker's first cycle is a grace period; a
    cycle counts against nobody when the master indexed nothing since the previous cycle or when it
    started more than one period late (more than `2 * period_s` after the previous cycle).

    Raises:
        ValueError: `period_s` is not finite and > 0, or `threshold` < 1.
    """

    def __new__(cls, period_s: float = 10.0, threshold: int = 3) -> StalenessTracker: ...
    def cycle(self, state: _StateInput, *, now: float, global_index: int | None = None) -> list[NodeStaleness]:
        """Run one plan cycle over `state`; returns the nodes to disconnect, sorted by node id.

        `now` is the cycle's start on the caller's monotonic clock (seconds; used only by the stall
        guard); `global_index` is the master's last indexed event (default: `state.last_event_applied_idx`).
        A Rust State is read in place; a pydantic State is converted first.

        Raises:
            clusterstate.errors.DecodeError: `state` is not a State.
        """

    def status(self) -> dict[str, NodeStaleness]:
        """Every tracked node's last index and stale cycles, by node id (sorted)."""

    @property
    def period_s(self) -> float: ...
    @property
    def threshold(self) -> int: ...
    @property
    def cycles(self) -> int:
        """How many cycles have run."""

    @property
    def last_cycle(self) -> Literal["grace", "counted", "master_idle", "late"] | None:
        """How the last cycle counted (None before the first cycle)."""

    def __len__(self) -> int: ...

class _Cut(TypedDict):
    segment: str
    offset: int
    bytes: int
    saved_to: str
    reason: str
    torn: bool

class _Recovery(TypedDict):
    cuts: list[_Cut]
    removed_segments: list[str]

@final
class EventLog:
    """A crash-safe, append-only log of indexed events in a directory (format: `docs/log-format.md`).

    Records are framed with their length, idx and CRC32Cs; the payload is the event's canonical JSON.
    One writer per directory (an OS lock). Opening verifies the last segment: a torn tail is cut (the
    bytes saved to a side file and a warning logged on the `clusterstate.log` logger); damage elsewhere
    raises `LogCorruptedError` unless `repair=True`. Use as a context manager to close (and sync) it.

    Args:
        path: the log's directory.
        create: create the directory if missing (otherwise `LogNotFoundError`).
        durability: `"fsync"` (every `append`/`append_many` call is on disk when it returns), `"group"`
            (synced once `group_records` records wait, or by the first `append`/`sync()` call made
            `group_ms` after the oldest waiting record; no background thread), or `"none"`.
        segment_bytes: start a new segment file past this size.
        index_every: one sparse-index entry every this many records (random access cost).
        verify_all: verify every record of every segment on open, not only the last segment's.
        repair: cut the log at the first damaged record instead of raising (implies `verify_all`).
        keep_snapshots: how many snapshot files to keep.

    Raises:
        clusterstate.errors.LogNotFoundError: `path` does not exist and `create` is false.
        clusterstate.errors.LogLockedError: another `EventLog` holds the directory.
        clusterstate.errors.LogCorruptedError: damage that is not a torn tail.
        clusterstate.errors.LogUsageError: an invalid option.
    """

    def __new__(
        cls,
        path: str | os.PathLike[str],
        /,
        *,
        create: bool = False,
        durability: Literal["fsync", "group", "none"] = "fsync",
        group_records: int = 1000,
        group_ms: float = 5.0,
        segment_bytes: int = 67108864,
        index_every: int = 256,
        verify_all: bool = False,
        repair: bool = False,
        keep_snapshots: int = 2,
    ) -> EventLog: ...
    @property
    def path(self) -> pathlib.Path: ...
    @property
    def durability(self) -> Literal["fsync", "group", "none"]: ...
    @property
    def closed(self) -> bool: ...
    @property
    def first_index(self) -> int: ...
    @property
    def next_index(self) -> int:
        """The idx the next appended event must carry."""

    @property
    def last_index(self) -> int:
        """The idx of the last record, -1 if the log is empty."""

    @property
    def durable_index(self) -> int:
        """The idx of the last record known to be on disk (fsynced), -1 if none."""

    @property
    def segment_count(self) -> int: ...
    @property
    def recovery(self) -> _Recovery:
        """What opening had to cut: torn tails (and damage, in repair mode), with where the bytes were saved."""

    @property
    def latest_snapshot_index(self) -> int | None: ...
    @property
    def loaded_snapshot_index(self) -> int | None:
        """The snapshot the last `load_state()` started from (None: it replayed the whole log)."""

    def __len__(self) -> int: ...
    def append(self, event: _EventInput, /) -> int:
        """Append one event; returns its idx.

        Raises:
            clusterstate.errors.LogIndexError: `event.idx` is not `next_index` (nothing appended).
            clusterstate.errors.DecodeError: `event` is not a valid indexed event.
            clusterstate.errors.LogFullError: the disk is full (the event is not in the log).
            clusterstate.errors.LogClosedError: the log is closed.
        """

    def append_many(self, events: Iterable[_EventInput], /) -> int:
        """Append a batch (all or none if an idx is wrong; one fsync under `"fsync"`); returns the last idx."""

    def sync(self) -> None:
        """Force every appended record to disk: afterwards `durable_index == last_index`."""

    def flush(self) -> None:
        """Hand the records buffered in the process to the OS (no fsync)."""

    def close(self) -> None:
        """Sync and release the directory. Closing twice is a no-op."""

    def __enter__(self) -> EventLog: ...
    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None, /
    ) -> None: ...
    def read_range(self, start: int, end: int) -> list[models.IndexedEvent]:
        """The events `[start, end)` (`end` is clamped to the log's end), found through the sparse index.

        Raises:
            clusterstate.errors.LogUsageError: `start` is before the log's first record.
            clusterstate.errors.LogCorruptedError: a record in the range is damaged.
        """

    def read_range_raw(self, start: int, end: int) -> list[bytes]:
        """The records `[start, end)` as their canonical JSON bytes."""

    def iter(self, start: int = 0, *, raw: bool = False) -> EventLogIterator:
        """Iterate over the records from `start` on (decoded, or JSON bytes with `raw=True`), a chunk at a time."""

    def replay(self, state: _StateInput | None = None) -> State:
        """Fold the records after `state.last_event_applied_idx` into `state` (default: empty) in Rust.

        No Python object is made per event and the GIL is released; one thread decodes while another applies.
        """

    def snapshot(self, state: _StateInput, /) -> int:
        """Write `state` as a snapshot at its `last_event_applied_idx` (synced and atomic); returns that idx."""

    def load_state(self) -> State:
        """The State after the last record: the newest valid snapshot plus a replay of the records after it.

        Damaged snapshots are skipped (with a warning on the `clusterstate.log` logger).
        """

@final
class EventLogIterator:
    """Iterator returned by `EventLog.iter`."""

    def __iter__(self) -> EventLogIterator: ...
    def __next__(self) -> models.IndexedEvent | bytes: ...

_RejectReason: TypeAlias = Literal["malformed", "unknown_tag", "spoofed", "conflict", "buffer_full", "index_exhausted"]

@final
class IngestResult:
    """What one `MasterCore.ingest` call did."""

    @property
    def broadcast(self) -> list[bytes]:
        """The newly indexed events as `IndexedEvent` JSON (origin = sending node), in global-index order."""

    @property
    def acknowledged(self) -> list[tuple[str, int]]:
        """`(producer, origin_idx)` of every event applied by this call, then of every stale copy in the batch."""

    @property
    def rejected(self) -> list[tuple[int, _RejectReason]]:
        """`(position in the batch, reason)` of every refused envelope (never applied)."""

@final
class MasterCore:
    """The master's state core: resequences local-event envelopes per producer, indexes and applies them.

    `session` is a `(master_node_id, election_clock)` pair or an object with those attributes
    (e.g. `clusterstate.models.SessionId`); envelopes of other sessions are ignored. Each producer may
    have up to `capacity` (default 4096) events waiting behind a gap. The envelope format is in
    docs/master.md. Not thread-safe: a second thread calling while `ingest` runs gets a `RuntimeError`
    (already borrowed).

    Raises:
        clusterstate.errors.DecodeError: `session` is not a session.
        ValueError: `capacity` < 1.
    """

    def __new__(cls, session: tuple[str, int] | models.SessionId, *, capacity: int = ...) -> MasterCore: ...
    def ingest(self, batch: Iterable[bytes | bytearray]) -> IngestResult:
        """Ingest a batch of envelopes (JSON bytes) in one call, the work done without the GIL.

        Malformed, unknown-tag, spoofed, conflicting and too-far-ahead envelopes are refused and counted,
        duplicates dropped and counted, the rest resequenced per producer, indexed, applied and returned.

        Raises:
            TypeError: an item of `batch` is not bytes or bytearray (nothing is ingested).
        """

    @property
    def state(self) -> State:
        """The State after every applied event."""

    @property
    def counters(self) -> dict[str, int]:
        """Running totals: ingested, applied, duplicates, other_session, buffered, rejected, rejected_<reason>."""

    @property
    def session(self) -> tuple[str, int]:
        """`(master_node_id, election_clock)`."""

    @property
    def next_index(self) -> int:
        """The global index the next applied event gets."""

    def producer_next(self, producer: str) -> int | None:
        """The next sequence number expected from `producer` (None for a producer never heard from)."""
