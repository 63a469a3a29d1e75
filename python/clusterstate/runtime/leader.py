"""The leader step (pure): the master's ``MasterCore`` driven by envelope batches, timer ticks and page queries.

- :meth:`LeaderStep.on_envelopes`: the frames received on ``local/*`` since the last call go into ONE ``ingest``;
  its events are published as one frame on ``s/{S}/global``, and each node whose producers were acknowledged or
  reported behind a gap gets one message ``{upto, acks, missing}`` on ``s/{S}/ack/{node}``, where `upto` is the
  master's next index (the producer holds the acknowledgements until its own node has applied that far).
- :meth:`LeaderStep.tick`: ``plan_cycle`` every `period_s` (its ``NodeDisconnected`` events published like ingested
  ones), a heartbeat ``{next}`` when nothing was published for `heartbeat_s`, and a snapshot of the State into the
  log every `snapshot_every` events. :attr:`LeaderStep.next_timer` says when the next tick is due.
- :meth:`LeaderStep.on_query`: a catch-up page from ``events_since``, or an error reply (``snapshot_required``,
  ``index_ahead``, ``bad_request``).

The master owns its log. No clock is read (`now` is an argument). A peer's garbage (a malformed envelope, a
producer id that names no node, bad query parameters) is counted and dropped; a log failure (``LogError``, e.g. a
full disk) is raised to the shell, which resigns.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

from clusterstate import MasterCore
from clusterstate.errors import DecodeError, IndexAheadError, SnapshotRequiredError

from .actions import Answer, Effect, Publish, Subscribe
from .errors import InvalidNameError
from .keys import Keys, Session, validate_name
from .wire import (
    AckMessage,
    Gap,
    Heartbeat,
    PageError,
    Pair,
    decode_page_request,
    encode_ack,
    encode_heartbeat,
    encode_page_error,
    join_frame,
    split_frame,
)

__all__ = ["LeaderStep"]


class LeaderStep:
    """The master of one session, started at `now`: its first plan cycle is one period later."""

    def __init__(
        self,
        master: MasterCore,
        keys: Keys,
        *,
        now: float,
        period_s: float = 10.0,
        heartbeat_s: float = 1.0,
        snapshot_every: int = 10_000,
    ) -> None:
        self.master = master
        self.keys = keys
        self.period_s = period_s
        self.heartbeat_s = heartbeat_s
        self.snapshot_every = snapshot_every
        self.counters: Counter[str] = Counter()
        self._next_cycle = now + period_s
        self._last_sent = now
        self._snapshot_at = master.next_index

    @property
    def session(self) -> Session:
        node, term = self.master.session
        return Session(term, node)

    @property
    def events_key(self) -> str:
        """The key of the catch-up queryable the shell serves with :meth:`on_query`."""
        return self.keys.events(self.session)

    @property
    def next_timer(self) -> float:
        """When :meth:`tick` is next due: the next plan cycle or the next idle heartbeat."""
        return min(self._next_cycle, self._last_sent + self.heartbeat_s)

    def start(self) -> list[Effect]:
        """The subscription to every producer's envelopes."""
        return [Subscribe(self.keys.locals())]

    def on_envelopes(self, frames: Iterable[bytes], now: float) -> list[Effect]:
        """Ingest every envelope of `frames` in one call; publish its events and the acknowledgements."""
        batch = [line for frame in frames for line in split_frame(frame)]
        if not batch:
            return []
        result = self.master.ingest(batch)
        effects = self._broadcast(result.broadcast, now)
        acks: defaultdict[str, list[Pair]] = defaultdict(list)
        gaps: defaultdict[str, list[Gap]] = defaultdict(list)
        for producer, seq in result.acknowledged:
            acks[producer].append((producer, seq))
        for gap in result.missing:
            gaps[gap[0]].append(gap)
        by_node: defaultdict[str, tuple[list[Pair], list[Gap]]] = defaultdict(lambda: ([], []))
        for producer in {**acks, **gaps}:
            node = self._node_of(producer)
            if node is not None:
                by_node[node][0].extend(acks[producer])
                by_node[node][1].extend(gaps[producer])
        upto = self.master.next_index
        for node, (pairs, missing) in by_node.items():
            message = AckMessage(upto, tuple(pairs), tuple(missing))
            effects.append(Publish(self.keys.ack(self.session, node), encode_ack(message)))
        self._snapshot()
        return effects

    def tick(self, now: float) -> list[Effect]:
        """The plan cycle when due, then a heartbeat when nothing was published for `heartbeat_s`."""
        effects: list[Effect] = []
        if now >= self._next_cycle:
            self._next_cycle = max(self._next_cycle + self.period_s, now)
            effects += self._broadcast(self.master.plan_cycle(now).broadcast, now)
            self._snapshot()
        if now - self._last_sent >= self.heartbeat_s:
            self._last_sent = now
            payload = encode_heartbeat(Heartbeat(self.master.next_index))
            effects.append(Publish(self.keys.heartbeat(self.session), payload))
        return effects

    def on_query(self, parameters: Mapping[str, str]) -> Answer:
        """The reply to a page query with `parameters` ``since`` and ``limit``."""
        try:
            since, limit = decode_page_request(parameters)
        except DecodeError:
            self.counters["bad_queries"] += 1
            return Answer(encode_page_error(PageError("bad_request")), ok=False)
        try:
            page = self.master.events_since(since, limit)
        except SnapshotRequiredError as e:
            return Answer(encode_page_error(PageError("snapshot_required", e.first_index)), ok=False)
        except IndexAheadError as e:
            return Answer(encode_page_error(PageError("index_ahead", e.next_index)), ok=False)
        self.counters["pages"] += 1
        return Answer(join_frame(page))

    def _broadcast(self, events: list[bytes], now: float) -> list[Effect]:
        if not events:
            return []
        self._last_sent = now
        return [Publish(self.keys.global_(self.session), join_frame(events))]

    def _snapshot(self) -> None:
        if self.master.next_index - self._snapshot_at >= self.snapshot_every:
            self._snapshot_at = self.master.snapshot() + 1
            self.counters["snapshots"] += 1

    def _node_of(self, producer: str) -> str | None:
        """The node of a producer id ``{node}/{suffix}``; None (counted) when it names no valid node."""
        node, slash, _ = producer.rpartition("/")
        try:
            if slash:
                return validate_name("node id", node)
        except InvalidNameError:
            pass
        self.counters["unroutable_acks"] += 1
        return None
