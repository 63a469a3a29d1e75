"""The leader step (pure): the master's ``MasterCore`` driven by envelope batches, timer ticks and page queries.

- :meth:`LeaderStep.on_envelopes`: the frames received on ``local/*`` since the last call go into ONE ``ingest``;
  its events are published as one frame on ``s/{S}/global``, and each node whose producers were acknowledged or
  reported behind a gap gets one message ``{upto, acks, missing}`` on ``s/{S}/ack/{node}``, where `upto` is the
  master's next index (the producer holds the acknowledgements until its own node has applied that far).
- :meth:`LeaderStep.tick`: ``plan_cycle`` every `period_s` (its ``NodeDisconnected`` events published like ingested
  ones), a heartbeat ``{next, commit, lineage}`` every `heartbeat_s` (the first at once, ten times as often in the
  session's first two periods), and a snapshot of the
  State into the log every `snapshot_every` events. :attr:`LeaderStep.next_timer` says when the next tick is due.
- :meth:`LeaderStep.on_progress`: a replica's position. With a `quorum`, the commit index is the `quorum`-th
  largest position (the master's own included); a heartbeat goes out as soon as it advances, since producers
  release nothing above it.
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
from clusterstate.errors import DecodeError

from .actions import Answer, Effect, Publish, Subscribe
from .errors import InvalidNameError
from .gating import commit_index
from .keys import Keys, Session, validate_name
from .lineage import Epoch
from .pages import answer_page
from .wire import (
    AckMessage,
    Gap,
    Heartbeat,
    Pair,
    decode_progress,
    encode_ack,
    encode_heartbeat,
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
        lineage: Iterable[Epoch] = (),
        quorum: int | None = None,
    ) -> None:
        self.master = master
        self.keys = keys
        self.period_s = period_s
        self.heartbeat_s = heartbeat_s
        self.snapshot_every = snapshot_every
        self.lineage = tuple(lineage)
        self.quorum = quorum
        self.counters: Counter[str] = Counter()
        self.positions: dict[str, int] = {}
        self._next_cycle = now + period_s
        self._started = now
        self._next_heartbeat = now
        self._snapshot_at = master.next_index
        self._sent_commit: int | None = None

    @property
    def commit(self) -> int | None:
        """The highest index a quorum of replicas holds (None without a quorum: nothing to wait for)."""
        if self.quorum is None:
            return None
        return commit_index([self.master.next_index, *self.positions.values()], self.quorum)

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
        """When :meth:`tick` is next due: the next plan cycle or the next heartbeat."""
        return min(self._next_cycle, self._next_heartbeat)

    def start(self) -> list[Effect]:
        """The subscriptions to every producer's envelopes and every replica's progress reports."""
        return [Subscribe(self.keys.locals()), Subscribe(self.keys.progresses(self.session))]

    def on_progress(self, payloads: Iterable[bytes], now: float) -> list[Effect]:
        """Replicas' progress reports; a heartbeat at once when they move the commit index."""
        for payload in payloads:
            try:
                progress = decode_progress(payload)
            except DecodeError:
                self.counters["bad_progress"] += 1
                continue
            self.positions[progress.node] = progress.next
        return self._heartbeat(now) if self.commit != self._sent_commit else []

    def on_envelopes(self, frames: Iterable[bytes], now: float) -> list[Effect]:
        """Ingest every envelope of `frames` in one call; publish its events and the acknowledgements."""
        batch = [line for frame in frames for line in split_frame(frame)]
        if not batch:
            return []
        result = self.master.ingest(batch)
        effects = self._broadcast(result.broadcast)
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
        """The plan cycle when due, then the heartbeat when due."""
        effects: list[Effect] = []
        if now >= self._next_cycle:
            self._next_cycle = max(self._next_cycle + self.period_s, now)
            effects += self._broadcast(self.master.plan_cycle(now).broadcast)
            self._snapshot()
        if now >= self._next_heartbeat:
            effects += self._heartbeat(now)
        return effects

    def on_query(self, parameters: Mapping[str, str]) -> Answer:
        """The reply to a page query with `parameters` ``since`` and ``limit``."""
        answer = answer_page(self.master.events_since, parameters)
        self.counters["pages" if answer.ok else "page_errors"] += 1
        return answer

    def _heartbeat(self, now: float) -> list[Effect]:
        # Followers subscribe to a new session's heartbeats when they see its token, just after the first one
        # went out, and take none of its frames before one arrives: its first two periods beat ten times as often.
        young = now - self._started < 2 * self.heartbeat_s
        self._next_heartbeat = now + (self.heartbeat_s / 10 if young else self.heartbeat_s)
        self._sent_commit = commit = self.commit
        payload = encode_heartbeat(Heartbeat(self.master.next_index, commit, self.lineage))
        return [Publish(self.keys.heartbeat(self.session), payload)]

    def _broadcast(self, events: list[bytes]) -> list[Effect]:
        if not events:
            return []
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
