"""Rust core of clusterstate, compiled from `rust/py` (hand-written stub, checked by `mypy.stubtest`)."""

import os
import pathlib
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Literal, TypeAlias, TypedDict, final

from pydantic import BaseModel

from clusterstate import models

# PyO3 appends every name added to the module to its `__all__`; keep this list in step (stubtest compares them).
__all__ = [
    "CoreState",
    "CycleResult",
    "EventLog",
    "EventLogIterator",
    "IngestResult",
    "MasterCore",
    "NodeCore",
    "NodeStaleness",
    "ProducerOutbox",
    "ReceiveResult",
    "StalenessTracker",
    "__version__",
    "apply",
    "apply_many",
]

__version__: str
"""Version of the Rust core, equal to the `clusterstate` distribution's version."""

# A pydantic model of the same JSON shape is accepted too (exo's own classes, `docs/exo.md`).
_EventInput: TypeAlias = models.IndexedEvent | BaseModel | bytes | bytearray | str
_StateInput: TypeAlias = CoreState | models.State | BaseModel

@final
class CoreState:
    """The cluster State held by the Rust core: immutable, structurally shared between versions.

    Reads like `clusterstate.models.State`: the same attribute names with the same typed values,
    `model_dump(mode=..., by_alias=...)` / `model_dump_json(by_alias=...)` giving the same data and
    bytes, `model_copy(update=...)`, and equality with a pydantic State of the same content (a
    `clusterstate.models.State` or a foreign class of the same JSON shape). `CoreState()` is the
    empty State.
    """

    def __new__(cls) -> CoreState: ...
    @staticmethod
    def from_pydantic(state: _StateInput) -> CoreState:
        """The Rust State of a pydantic State (converted once, through its `model_dump_json()`).

        Any pydantic model whose JSON is a State is accepted: `clusterstate.models.State` or a foreign class.

        Raises:
            clusterstate.errors.DecodeError: `state` is not a State.
        """

    @staticmethod
    def from_json(data: bytes | bytearray | str) -> CoreState:
        """Decode a State from its JSON (either key spelling).

        Raises:
            clusterstate.errors.DecodeError: the JSON is malformed or not a State.
        """

    def to_pydantic(self) -> models.State:
        """The equal pydantic State."""

    def model_dump_json(self, *, by_alias: bool = False) -> str:
        """The JSON the pydantic State writes for the same content, byte for byte."""

    def model_dump(self, *, mode: Literal["json", "python"] = "json", by_alias: bool = False) -> dict[str, Any]:
        """The State as Python data: JSON-compatible (`mode="json"`, pydantic's `model_dump(mode="json")`), or
        with the typed models inside (`mode="python"`, the pydantic State's `model_dump()`).

        Raises:
            ValueError: `mode` is neither.
        """

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> CoreState:
        """This State with the fields in `update` replaced (pydantic's `model_copy(update=...)`), validated.

        A State is immutable: `deep` changes nothing, and without `update` the copy shares everything.

        Raises:
            clusterstate.errors.DecodeError: an updated field does not hold a valid value.
        """

    def replay(self, log: EventLog, /) -> CoreState:
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

def apply(state: _StateInput, indexed_event: _EventInput, /) -> CoreState:
    """Fold one indexed event into `state` and return the new State; a drop-in for `clusterstate.reference.apply`.

    `state` is a Rust State, or a pydantic State (converted first); `indexed_event` is a pydantic
    `IndexedEvent` or its JSON. Pydantic objects of another package with the same JSON shape (exo's
    `IndexedEvent{idx, event}` and its tagged events) are read the same way, from their fields; a model
    that serialises itself by code of its own is read from its `model_dump_json()`. The input State is
    never changed.

    Raises:
        clusterstate.errors.EventIndexError: `indexed_event.idx` is not `state.last_event_applied_idx + 1`.
        clusterstate.errors.DecodeError: `indexed_event` (or `state`) is not valid.
    """

def apply_many(state: _StateInput, events: Iterable[_EventInput], /) -> CoreState:
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
        clusterstate.errors.OptionsError: `period_s` is not finite and > 0, or `threshold` < 1.
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
    saved_to: str | None
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
    bytes saved to a side file of their own and a warning logged on the `clusterstate.log` logger); damage
    elsewhere raises `LogCorruptedError` unless `repair=True`. Use as a context manager to close (and sync) it.

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
        read_only: open for reading only (replay, reads, `load_state`): nothing in the directory is created,
            cut or deleted, so it works on a full disk; the lock is shared with other readers (not with a
            writer); a torn tail is left in place (its cut reported with `saved_to` None) and the log ends
            before it. Every write raises `LogReadOnlyError`; incompatible with `create` and `repair`.

    Raises:
        clusterstate.errors.LogNotFoundError: `path` does not exist and `create` is false.
        clusterstate.errors.LogLockedError: another `EventLog` holds the directory.
        clusterstate.errors.LogCorruptedError: damage that is not a torn tail.
        clusterstate.errors.LogUsageError: an invalid option, or a read-only open of a directory that holds
            no segment.
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
        read_only: bool = False,
    ) -> EventLog: ...
    @property
    def path(self) -> pathlib.Path: ...
    @property
    def durability(self) -> Literal["fsync", "group", "none"]: ...
    @property
    def read_only(self) -> bool:
        """Whether the log was opened with `read_only=True` (every write raises `LogReadOnlyError`)."""

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
            clusterstate.errors.LogReadOnlyError: the log was opened read-only.
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

    def replay(self, state: _StateInput | None = None) -> CoreState:
        """Fold the records after `state.last_event_applied_idx` into `state` (default: empty) in Rust.

        No Python object is made per event and the GIL is released; one thread decodes while another applies.
        """

    def snapshot(self, state: _StateInput, /) -> int:
        """Write `state` as a snapshot at its `last_event_applied_idx` (synced and atomic); returns that idx."""

    def load_state(self) -> CoreState:
        """The State after the last record: the newest valid snapshot plus a replay of the records after it.

        Damaged snapshots are skipped (with a warning on the `clusterstate.log` logger).
        """

@final
class EventLogIterator:
    """Iterator returned by `EventLog.iter`."""

    def __iter__(self) -> EventLogIterator: ...
    def __next__(self) -> models.IndexedEvent | bytes: ...

_RejectReason: TypeAlias = Literal[
    "malformed", "unknown_tag", "spoofed", "conflict", "buffer_full", "index_exhausted", "too_large"
]

@final
class IngestResult:
    """What one `MasterCore.ingest` call did."""

    @property
    def broadcast(self) -> list[bytes]:
        """The newly indexed events as `IndexedEvent` JSON (origin = sending node), in global-index order."""

    @property
    def acknowledged(self) -> list[tuple[str, int]]:
        """`(producer, origin_idx)` of every event applied by this call (in broadcast order), then of every
        stale copy in the batch and of every resend a reopened master found already in its log."""

    @property
    def rejected(self) -> list[tuple[int, _RejectReason]]:
        """`(position in the batch, reason)` of every refused envelope (never applied)."""

    @property
    def missing(self) -> list[tuple[str, int, int]]:
        """`(producer, missing, held)` for every producer heard from in the batch (in the order first
        heard) whose events wait behind a gap after it: the first sequence number the master needs and
        the highest one it holds. Send them back with the acknowledgements
        (`ProducerOutbox.resend_missing`)."""

@final
class CycleResult:
    """What one `MasterCore.plan_cycle` call did."""

    @property
    def broadcast(self) -> list[bytes]:
        """The master's `NodeDisconnected` events as `IndexedEvent` JSON (origin = the master node), in index order."""

    @property
    def decisions(self) -> list[NodeStaleness]:
        """The staleness tracker's decisions (sorted by node id), one per `NodeDisconnected`, with its evidence."""

@final
class MasterCore:
    """The master's state core: resequences local-event envelopes per producer, indexes, logs and applies them.

    `session` is a `(master_node_id, election_clock)` pair or an object with those attributes
    (e.g. `clusterstate.models.SessionId`); envelopes of other sessions are ignored. Each producer may
    have up to `capacity` (default 4096) events waiting behind a gap. The envelope format is in
    docs/master.md. Not thread-safe: a second thread calling while a method runs gets a `RuntimeError`
    (already borrowed).

    `log`: the master takes the `EventLog` over — every later use of that Python object raises
    `LogClosedError` (the master must be the log's only writer) — and starts from the log's State (latest
    snapshot plus tail), continuing its index with no gap. The log may be a `NodeCore`'s closed replica
    log: the node elected master continues the same history. Every applied event is appended to the log
    before it is applied. A master restarted from its log must serve a NEW session (a restart is a new
    election): it knows no producer, producers re-address their pending events to it, and resends of
    events among the log's last `dedup_window` records are acknowledged, not applied again. If building
    the master from the log fails, the log is closed.

    `period_s` and `threshold` configure the staleness tracker of `plan_cycle` (docs/liveness.md).

    Raises:
        clusterstate.errors.DecodeError: `session` is not a session.
        clusterstate.errors.OptionsError: `capacity` < 1, `period_s` not a finite number > 0, or
            `threshold` < 1.
        clusterstate.errors.LogError: the log cannot be read (e.g. `LogCorruptedError`), or was closed.
    """

    def __new__(
        cls,
        session: tuple[str, int] | models.SessionId,
        *,
        capacity: int = ...,
        log: EventLog | None = ...,
        period_s: float = ...,
        threshold: int = ...,
        dedup_window: int = ...,
    ) -> MasterCore: ...
    def ingest(self, batch: Iterable[bytes | bytearray]) -> IngestResult:
        """Ingest a batch of envelopes (JSON bytes) in one call, the work done without the GIL.

        Malformed, unknown-tag, spoofed, conflicting and too-far-ahead envelopes are refused and counted,
        duplicates dropped and counted, the rest resequenced per producer, indexed, logged (one append),
        applied and returned.

        Raises:
            TypeError: an item of `batch` is not bytes or bytearray (nothing is ingested).
            clusterstate.errors.LogError: the log refused the append (e.g. `LogFullError`) or is closed. The
                exception's `result` (an `IngestResult`) is what the call did before: exactly the events the log
                holds (usually none); the refused ones are not applied, not acknowledged, and their producers
                are rewound so that their resends are accepted.
        """

    def plan_cycle(self, now: float) -> CycleResult:
        """Run one plan cycle started at `now` (seconds of a monotonic clock; only compared with earlier cycles).

        The staleness tracker's decisions become `NodeDisconnected` events (fresh `event_id`, origin = the
        master node), indexed, logged, applied and returned for broadcast like ingested events.

        Raises:
            clusterstate.errors.LogError: the log refused the append or is closed; `result` is a `CycleResult`.
        """

    def events_since(self, idx: int, limit: int = 1000) -> list[bytes]:
        """Up to `limit` (capped at 10 000) events from global index `idx` on, as `IndexedEvent` JSON read from
        the log (the broadcast bytes): a catch-up page; empty when `idx` is `next_index`.

        Raises:
            clusterstate.errors.NoLogError: the master has no log.
            clusterstate.errors.SnapshotRequiredError: `idx` is before the log's first retained index.
            clusterstate.errors.IndexAheadError: `idx` is past `next_index`.
            clusterstate.errors.LogClosedError: the log was closed.
        """

    def snapshot(self) -> int:
        """Write the State as a snapshot into the log (atomically); returns its index.

        Raises:
            clusterstate.errors.NoLogError: the master has no log.
            clusterstate.errors.LogUsageError: the State is empty (nothing to snapshot).
        """

    def sync(self) -> None:
        """Force every appended record to disk (`NoLogError` without a log)."""

    def close(self) -> None:
        """Sync and close the log, releasing its directory; then `ingest`/`plan_cycle` raise `LogClosedError`.

        A no-op without a log or when already closed.
        """

    @property
    def has_log(self) -> bool:
        """Whether the master has an open event log."""

    @property
    def loaded_snapshot_index(self) -> int | None:
        """The snapshot the State was loaded from when the master was built from a log, if any."""

    @property
    def state(self) -> CoreState:
        """The State after every applied event."""

    @property
    def counters(self) -> dict[str, int]:
        """Running totals: ingested, applied, duplicates, other_session, buffered (a gauge), appended,
        disconnects, replayed_duplicates, unlogged, rejected, rejected_<reason>."""

    @property
    def session(self) -> tuple[str, int]:
        """`(master_node_id, election_clock)`."""

    @property
    def next_index(self) -> int:
        """The global index the next applied event gets."""

    def producer_next(self, producer: str) -> int | None:
        """The next sequence number expected from `producer` (None for a producer never heard from)."""

_NodeRejectReason: TypeAlias = Literal["malformed", "unknown_tag"]

@final
class ReceiveResult:
    """What one `NodeCore.receive` call did."""

    @property
    def applied(self) -> int:
        """How many events this call applied."""

    @property
    def missing(self) -> int | None:
        """`NodeCore.missing` after the call: the index to fetch from, or None when caught up."""

    @property
    def rejected(self) -> list[tuple[int, _NodeRejectReason]]:
        """`(position in the batch, reason)` of every refused item (never applied)."""

@final
class NodeCore:
    """A node's copy of the cluster State, kept from the master's broadcast (docs/node.md).

    Events (`IndexedEvent` JSON bytes) are resequenced by global index and applied exactly once, in
    order: copies are dropped, a different event at a buffered index is a conflict (the first is kept),
    one `capacity` (default 4096) or more ahead of the next index is dropped, to be fetched again.
    `state` (a Rust or pydantic State; default empty) is a snapshot to start from: the node continues
    at `state.last_event_applied_idx + 1`. Not thread-safe: a second thread calling while `receive`
    runs gets a `RuntimeError` (already borrowed).

    `log`: the node takes the `EventLog` over as its replica log, exactly as `MasterCore` does — every
    later use of that Python object raises `LogClosedError` — starts from the log's State (latest
    snapshot plus tail) and continues at the log's next index. Every event is appended to the log
    before it is applied. After `close()`, a `MasterCore` can open the same directory and continue
    the history (and a master's closed log opens as a node's replica the same way). If building the
    node from the log fails, the log is closed.

    Raises:
        clusterstate.errors.DecodeError: `state` is not a State.
        clusterstate.errors.OptionsError: `capacity` < 1, or both `state` and `log` given.
        clusterstate.errors.LogError: the log cannot be read (e.g. `LogCorruptedError`), or was closed.
    """

    def __new__(
        cls, state: _StateInput | None = None, *, capacity: int = ..., log: EventLog | None = ...
    ) -> NodeCore: ...
    def receive(self, batch: Iterable[bytes | bytearray]) -> ReceiveResult:
        """Receive a batch of broadcast events (or a page of the master's log) in one call, without the GIL.

        Malformed and unknown-tag items are refused and counted; copies, conflicts and events too far
        ahead are dropped and counted; the rest are buffered and every event in sequence is applied —
        with a replica log, after the run about to be applied was appended to it in one write.

        Raises:
            TypeError: an item of `batch` is not bytes or bytearray (nothing is received).
            clusterstate.errors.LogError: the replica log refused the write (e.g. `LogFullError`) or is
                closed. The exception's `result` (a `ReceiveResult`) is what the call did before: the
                State holds exactly the events the log holds. The refused events are dropped, to be
                fetched again (`missing` points at the first); the events buffered out of order stay.
        """

    def join(self, state: _StateInput) -> bool:
        """Adopt a snapshot State if it is ahead of the node's; returns whether it was adopted.

        Buffered events the snapshot covers are dropped, those that follow it applied. An older or
        equal snapshot is ignored (counted in `joins_ignored`).

        Raises:
            clusterstate.errors.DecodeError: `state` is not a State.
            clusterstate.errors.LogUsageError: the node has a replica log (open or closed), which a
                snapshot would leave with a hole: fetch the events instead.
        """

    def events_since(self, idx: int, limit: int = 1000) -> list[bytes]:
        """Up to `limit` (capped at 10 000) events from index `idx` on, as `IndexedEvent` JSON read from
        the replica log: a catch-up page, as `MasterCore.events_since` serves it.

        Raises:
            clusterstate.errors.NoLogError: the node has no log.
            clusterstate.errors.SnapshotRequiredError: `idx` is before the log's first retained index.
            clusterstate.errors.IndexAheadError: `idx` is past `next_index`.
            clusterstate.errors.LogClosedError: the log was closed.
        """

    def snapshot(self) -> int:
        """Write the State as a snapshot into the replica log (atomically); returns its index.

        Raises:
            clusterstate.errors.NoLogError: the node has no log.
            clusterstate.errors.LogUsageError: the State is empty (nothing to snapshot).
        """

    def sync(self) -> None:
        """Force every appended record of the replica log to disk (`NoLogError` without a log)."""

    def close(self) -> None:
        """Sync and close the replica log, releasing its directory (a `MasterCore` can then open it);
        then `receive` raises `LogClosedError`, while `state` and `next_index` still read.

        A no-op without a log or when already closed.
        """

    @property
    def has_log(self) -> bool:
        """Whether the node has an open replica log."""

    @property
    def loaded_snapshot_index(self) -> int | None:
        """The snapshot the State was loaded from when the node was built from a log, if any."""

    def note_master_index(self, next: int) -> None:
        """Note the master's next index (e.g. from a heartbeat): past the node's, the node is behind."""

    @property
    def state(self) -> CoreState:
        """The State after every applied event."""

    @property
    def next_index(self) -> int:
        """The index of the next event to apply."""

    @property
    def missing(self) -> int | None:
        """The index to fetch from when events past the applied ones are known to exist; None when caught up."""

    @property
    def capacity(self) -> int:
        """How many events may wait ahead of a gap."""

    @property
    def counters(self) -> dict[str, int]:
        """Running totals: received, applied, duplicates, conflicts, dropped_ahead, rejected, rejected_<reason>,
        gaps, joins, joins_ignored, appended (records written to the replica log), unlogged (events the log
        refused), and the buffered gauge."""

@final
class ProducerOutbox:
    """One producer instance's sequencer and outbox (docs/master.md, "The producer side").

    Numbers local events `0, 1, 2, ...` without gaps as `LocalEnvelope`s from `producer_id` on
    `node_id` to the master of `session` (a `(master_node_id, election_clock)` pair or an object with
    those attributes), keeps each until the master acknowledges it, and resends it when its last send
    is `resend_after_s` (default 2) seconds old, doubling that envelope's interval at each resend up to
    `max_resend_after_s` (default 5: keep it well below the staleness tracker's period, docs/master.md).
    At most `capacity` (default 65536) envelopes wait. Time is the caller's `now` (seconds, any
    monotonic clock): a `now` that is not finite or earlier than one already seen counts as no time
    passed. A restarted producer takes a fresh id (`ProducerOutbox.new_producer_id`).

    Raises:
        clusterstate.errors.DecodeError: `session` is not a session.
        clusterstate.errors.OptionsError: a resend time that is not a positive finite number,
            `max_resend_after_s` below `resend_after_s`, or `capacity` < 1.
        OverflowError: a negative `capacity`.
    """

    def __new__(
        cls,
        producer_id: str,
        node_id: str,
        session: tuple[str, int] | models.SessionId,
        *,
        resend_after_s: float = ...,
        max_resend_after_s: float = ...,
        capacity: int = ...,
    ) -> ProducerOutbox: ...
    @staticmethod
    def new_producer_id(node_id: str) -> str:
        """A fresh producer id for a producer instance on `node_id`: `"{node_id}/{random suffix}"`."""

    def push(self, event: models.Event | bytes | bytearray | str, *, now: float) -> bytes:
        """Number `event`, keep its envelope until acknowledged and return the envelope bytes to send now.

        An event given as JSON without an `event_id` gets a random one once: its resends are identical.

        Raises:
            clusterstate.errors.OutboxFullError: `capacity` envelopes are unacknowledged (nothing changed).
            clusterstate.errors.DecodeError: `event` is not an event (nothing changed).
            clusterstate.errors.EventRefusedError: an event the master would refuse as spoofed: about
                another node than `node_id`, or a node disconnection from a node that is not the
                session's master (nothing changed).
        """

    def acknowledge(
        self,
        acks: Iterable[int | tuple[str, int]],
        *,
        session: tuple[str, int] | models.SessionId | None = None,
    ) -> int:
        """Remove the acknowledged envelopes; returns how many were removed.

        `acks` are sequence numbers or `(producer, origin_idx)` pairs as `IngestResult.acknowledged`
        gives them (other producers' pairs are skipped). Unknown and repeated ones are ignored and
        counted (`ignored_acks`). With `session`, the acknowledgements are taken only if it is still
        this outbox's session (a previous master's late ones are ignored).

        Raises:
            TypeError: an item is neither an int nor a `(str, int)` pair (nothing is acknowledged).
        """

    def due(self, now: float) -> list[bytes]:
        """The envelopes to resend at `now`, lowest sequence number first: those whose last send is at
        least their resend interval old. Each one's interval doubles, up to `max_resend_after_s`."""

    def resend_missing(
        self,
        missing: Iterable[tuple[str, int, int]],
        *,
        now: float,
        session: tuple[str, int] | models.SessionId | None = None,
    ) -> list[bytes]:
        """The envelopes to resend at once because the master reports them missing.

        `missing` are `(producer, missing, held)` triples as `IngestResult.missing` gives them (other
        producers' are skipped). A pending envelope `missing` is returned if its last send came before
        the last send of `held`: the master received something sent after that copy. A report answered
        already, or whose `held` is acknowledged, resends nothing. Each one returned counts as sent at
        `now` (counted `resent_missing`); its backoff interval is unchanged. With `session`, the reports
        are taken only if it is still this outbox's session.

        Raises:
            TypeError: an item is not a `(str, int, int)` triple of non-negative ints (nothing resent).
        """

    def retarget(self, session: tuple[str, int] | models.SessionId) -> list[bytes]:
        """Address the master of a new `session` (an election): the pending envelopes renumbered from 0,
        re-stamped with `session`, all returned to send now; later pushes continue the numbering.

        Pending master-only events are dropped when the new master is another node. The same session
        as the current one changes nothing and returns `[]`.

        Raises:
            clusterstate.errors.DecodeError: `session` is not a session.
        """

    @property
    def producer_id(self) -> str:
        """The producer id every envelope carries as `origin`."""

    @property
    def node_id(self) -> str:
        """The node this producer runs on."""

    @property
    def session(self) -> tuple[str, int]:
        """`(master_node_id, election_clock)` of the session addressed."""

    @property
    def next_seq(self) -> int:
        """The sequence number the next pushed event gets."""

    @property
    def pending(self) -> int:
        """How many envelopes wait for an acknowledgement."""

    @property
    def counters(self) -> dict[str, int]:
        """Running totals: pushed, sent, resent, resent_missing, retargeted, dropped_on_retarget, acknowledged,
        ignored_acks, refused_full, and the pending gauge."""
