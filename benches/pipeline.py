"""The master's ingest path in pure Python, and the envelope workload both implementations are benchmarked on.

:class:`PythonMaster` does what ``clusterstate.MasterCore.ingest`` does (docs/master.md), with the reference
reducer and pydantic, one envelope at a time:

1. decode the ``LocalEnvelope`` JSON with pydantic (:class:`LocalEnvelope`, the shape of docs/master.md: the
   package has no pydantic model of it) -- a failure is rejected ``unknown_tag`` or ``malformed``;
2. ignore other sessions' envelopes (``other_session``);
3. the spoof check: a node-scoped event about another node than ``node_id``, a ``NodeDisconnected`` /
   ``NodeTimedOut`` from another node than the session's master, a producer id seen from another node;
4. per-producer resequencing in a ``dict`` buffer (stale copies re-acknowledged, equal copies dropped,
   different ones at a buffered index rejected ``conflict``, ``capacity`` or more ahead rejected ``buffer_full``);
5. each released event gets the next global index, goes through ``clusterstate.reference.apply``, and its
   ``IndexedEvent`` is encoded with ``model_dump_json()`` (the broadcast bytes) and, with a ``log``, appended to
   it as a framed record (``bench_log.frame``: length, index, payload CRC, header CRC, payload) -- no fsync.

:func:`build_workload` turns a generated trace (``clusterstate.trace``, the configs of ``benchdata``) into
``LocalEnvelope`` bytes: one producer per node (``"<node>/boot-0"``), its own sequence numbers, events sent by
their ``origin`` node (the master node for an event without one), in trace order except for a seeded, mild
reordering inside each block of :data:`BLOCK` envelopes (see :func:`reorder`).
"""

from __future__ import annotations

import gc
import itertools
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import BinaryIO, get_args

from pydantic import Field, ValidationError

from bench_log import frame
from benchdata import WARMUP_S, lan_reachability
from clusterstate import encode_event, reference
from clusterstate.models import (
    CamelCaseModel,
    Event,
    IndexedEvent,
    NodeDisconnected,
    NodeId,
    NodeTimedOut,
    SessionId,
    State,
    scoped_node,
)
from clusterstate.trace import TraceConfig, generate, iter_trace, node_ids

__all__ = [
    "BLOCK",
    "DEFAULT_CAPACITY",
    "LocalEnvelope",
    "PythonMaster",
    "PythonResult",
    "Workload",
    "build_workload",
    "envelope",
    "reorder",
]

DEFAULT_CAPACITY = 4096
"""Events one producer may have waiting behind a gap (``MasterCore``'s default)."""
BLOCK = 1000
"""The reordering never moves an envelope across a multiple of this many: every batch of a multiple of it
ends with every producer's buffer empty."""
EVENT_TAGS = frozenset(get_args(member)[0].__name__ for member in get_args(get_args(Event)[0]))
"""The tags of :data:`clusterstate.models.Event` (its union's member classes)."""


class LocalEnvelope(CamelCaseModel):
    """A local event on its way to the master (docs/master.md): ``snake_case`` keys, camelCase aliases, no other key."""

    origin: str
    """The producer id."""
    origin_idx: int = Field(ge=0)
    session: SessionId
    event: Event
    node_id: NodeId


def envelope(producer: str, origin_idx: int, session: SessionId, event: bytes, node: str) -> bytes:
    """The compact JSON of a ``LocalEnvelope`` around ``event`` (an encoded, tagged event)."""
    return (
        b'{"origin":%s,"origin_idx":%d,"session":{"master_node_id":%s,"election_clock":%d},"event":%s,"node_id":%s}'
        % (
            json.dumps(producer).encode(),
            origin_idx,
            json.dumps(session.master_node_id).encode(),
            session.election_clock,
            event,
            json.dumps(node).encode(),
        )
    )


@dataclass(frozen=True)
class PythonResult:
    """What one :meth:`PythonMaster.ingest` call did (the fields of ``clusterstate.IngestResult``)."""

    broadcast: list[bytes] = field(default_factory=list)
    acknowledged: list[tuple[str, int]] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class _Producer:
    node_id: NodeId
    next: int = 0
    buffer: dict[int, tuple[Event, NodeId]] = field(default_factory=dict)


def _classify(data: bytes) -> str:
    """``unknown_tag`` for a well-formed envelope whose event has a single, unknown tag; ``malformed`` otherwise."""
    try:
        value = json.loads(data)
    except ValueError:
        return "malformed"
    event = value.get("event") if isinstance(value, dict) else None
    if isinstance(event, dict) and len(event) == 1 and not EVENT_TAGS.intersection(event):
        return "unknown_tag"
    return "malformed"


class PythonMaster:
    """The pure-Python master pipeline: ``LocalEnvelope`` bytes in, ``IndexedEvent`` bytes out (and to ``log``).

    ``state`` and ``producers`` (producer id -> ``(node, next origin_idx)``) start it where a warmed-up master
    is, without replaying the warm-up in Python.
    """

    def __init__(
        self,
        session: SessionId,
        *,
        log: BinaryIO | None = None,
        state: State | None = None,
        producers: dict[str, tuple[str, int]] | None = None,
        capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        self.session = session
        self.log = log
        self.state = state if state is not None else State()
        self.capacity = max(1, capacity)
        self.producers = {pid: _Producer(NodeId(node), nxt) for pid, (node, nxt) in (producers or {}).items()}
        self.counters = {"ingested": 0, "applied": 0, "duplicates": 0, "other_session": 0, "rejected": 0}

    @property
    def next_index(self) -> int:
        return self.state.last_event_applied_idx + 1

    def ingest(self, batch: Iterable[bytes]) -> PythonResult:
        out = PythonResult()
        reacknowledged: list[tuple[str, int]] = []
        for position, data in enumerate(batch):
            self.counters["ingested"] += 1
            try:
                env = LocalEnvelope.model_validate_json(data)
            except ValidationError:
                self._refuse(out, position, _classify(data))
                continue
            if env.session != self.session:
                self.counters["other_session"] += 1
                continue
            scoped = scoped_node(env.event)
            if (scoped is not None and scoped != env.node_id) or (
                isinstance(env.event, NodeDisconnected | NodeTimedOut) and env.node_id != self.session.master_node_id
            ):
                self._refuse(out, position, "spoofed")
                continue
            producer = self.producers.get(env.origin)
            if producer is None:
                producer = self.producers[env.origin] = _Producer(env.node_id)
            elif producer.node_id != env.node_id:
                self._refuse(out, position, "spoofed")
                continue
            seq = env.origin_idx
            if seq < producer.next:
                self.counters["duplicates"] += 1
                reacknowledged.append((env.origin, seq))
            elif seq in producer.buffer:
                if producer.buffer[seq] == (env.event, env.node_id):
                    self.counters["duplicates"] += 1
                else:
                    self._refuse(out, position, "conflict")
            elif seq - producer.next >= self.capacity:
                self._refuse(out, position, "buffer_full")
            else:
                producer.buffer[seq] = (env.event, env.node_id)
                self._release(env.origin, producer, out)
        out.acknowledged.extend(reacknowledged)
        return out

    def _refuse(self, out: PythonResult, position: int, reason: str) -> None:
        self.counters["rejected"] += 1
        out.rejected.append((position, reason))

    def _release(self, pid: str, producer: _Producer, out: PythonResult) -> None:
        buffer = producer.buffer
        while producer.next in buffer:
            event, node = buffer.pop(producer.next)
            indexed = IndexedEvent(idx=self.state.last_event_applied_idx + 1, origin=node, event=event)
            self.state = reference.apply(self.state, indexed)
            payload = indexed.model_dump_json().encode()
            if self.log is not None:
                self.log.write(frame(indexed.idx, payload))
            out.broadcast.append(payload)
            out.acknowledged.append((pid, producer.next))
            self.counters["applied"] += 1
            producer.next += 1


@dataclass(frozen=True)
class Workload:
    """A cluster's trace as envelopes: the warm-up (in order) and the benchmarked tail (mildly reordered)."""

    nodes: int
    session: SessionId
    warm: list[bytes]
    tail: list[bytes]
    producers: dict[str, tuple[str, int]]
    """Producer id -> ``(node, next origin_idx)`` after the warm-up."""
    reordered: int
    """Tail envelopes that arrive before an earlier envelope of their producer (they wait in its buffer)."""

    def batches(self, size: int) -> list[list[bytes]]:
        """The tail cut into whole batches of ``size`` envelopes."""
        return [self.tail[start : start + size] for start in range(0, len(self.tail) - size + 1, size)]


def reorder(envelopes: Sequence[tuple[str, bytes]], rng: random.Random, swap: float) -> tuple[list[bytes], int]:
    """Swap, with probability ``swap``, disjoint pairs of consecutive envelopes of the same producer inside each
    block of :data:`BLOCK`: the later one arrives first and waits in the producer's buffer. The second value is
    the number of swapped pairs."""
    out = [data for _, data in envelopes]
    swapped = 0
    for start in range(0, len(envelopes), BLOCK):
        positions: dict[str, list[int]] = {}
        for position in range(start, min(start + BLOCK, len(envelopes))):
            positions.setdefault(envelopes[position][0], []).append(position)
        for sent in positions.values():
            i = 0
            while i + 1 < len(sent):
                if rng.random() < swap:
                    first, second = sent[i], sent[i + 1]
                    out[first], out[second] = out[second], out[first]
                    swapped += 1
                    i += 2  # disjoint pairs: an envelope moves by one place of its producer's at most
                else:
                    i += 1
    return out, swapped


def build_workload(
    nodes: int,
    tail: int,
    *,
    warm: int | None = None,
    seed: int = 0,
    swap: float = 0.25,
) -> Workload:
    """``warm`` + ``tail`` envelopes of the ``nodes``-node bench trace (``benchdata``'s config, seed 0, run for as
    long as needed: a longer run of the same config has the shorter one as prefix). ``warm=None``: the events of
    the first ``benchdata.WARMUP_S`` simulated seconds, like ``benchdata``'s warm State."""
    config = TraceConfig(nodes=nodes, duration_s=1e9, seed=0, lan_reachability=lan_reachability(nodes))
    if warm is None:
        warm = len(generate(replace(config, duration_s=WARMUP_S)))
    session = SessionId(master_node_id=node_ids(config)[0], election_clock=1)
    counts: dict[str, int] = {}
    node_of: dict[str, str] = {}
    sent: list[tuple[str, bytes]] = []
    collecting = gc.isenabled()
    gc.disable()  # as ``generate`` does: the trace makes no garbage cycles worth walking its events for
    try:
        events = list(itertools.islice(iter_trace(config), warm + tail))
    finally:
        if collecting:
            gc.enable()
    for indexed in events:
        node = indexed.origin if indexed.origin is not None else session.master_node_id
        producer = f"{node}/boot-0"
        seq = counts.get(producer, 0)
        counts[producer] = seq + 1
        node_of[producer] = node
        sent.append((producer, envelope(producer, seq, session, encode_event(indexed.event), node)))
    warm_part, tail_part = sent[:warm], sent[warm:]
    after_warm: dict[str, int] = {}
    for producer, _ in warm_part:
        after_warm[producer] = after_warm.get(producer, 0) + 1
    tail_bytes, swapped = reorder(tail_part, random.Random(seed), swap)
    return Workload(
        nodes=nodes,
        session=session,
        warm=[data for _, data in warm_part],
        tail=tail_bytes,
        producers={producer: (node_of[producer], count) for producer, count in after_warm.items()},
        reordered=swapped,
    )
