"""One node of the cluster as a state machine: election, producer, follower and master in one object.

:class:`NodeMachine` takes everything that happens to a node as a method call — a publication received
(:meth:`~NodeMachine.on_publications`), a token appearing or going away (:meth:`~NodeMachine.on_liveliness`), a query
to answer (:meth:`~NodeMachine.on_query`), the reply to one of its fetches (:meth:`~NodeMachine.on_reply`), a local
event (:meth:`~NodeMachine.push`), the time passing (:meth:`~NodeMachine.tick`) — and returns the effects for the
shell to carry out (:mod:`.actions`): publish, subscribe, fetch, hold a token, serve a queryable. It reads no clock
(`now` is an argument) and touches the network only through those effects, so the same object runs under the zenoh
shell (:mod:`.node`) and under the deterministic simulator (:mod:`clusterstate.simulation.cluster`). The disk it
touches is its :class:`~.datadir.DataDir`: the replica log (through the Rust cores), the term and the lineage.

# Roles

- ``starting``: nothing followed yet; a master token seen within `join_wait_s` is followed, else a round starts.
- ``follower``: a ``FollowerStep`` keeps the replica (``NodeCore`` writing the replica log), the ``ProducerStep``
  sends this node's events to the followed master.
- ``candidate``: a round runs (:class:`~.election.Round`), or its winner's token is awaited.
- ``syncing``: this node won, and first fetches from a member whose replica is ahead of its own (a priority -1
  node's, which may not win) through that member's ``replica/{node}/events``.
- ``master``: the replica log is handed to a ``MasterCore`` (``NodeCore.close`` then ``MasterCore(log=...)``), so
  the new master continues the same history and index; a ``LeaderStep`` serves the session.
- ``stopping``: :meth:`~NodeMachine.stop` was called.

# Rules beyond the steps'

- The election's triggers (:func:`~.election.trigger`) are checked after every input; only the masters visible,
  the terms seen and the time are inputs, never the other members' comings and goings.
- A new session is followed *held*: its frames are dropped until its first heartbeat brings the master's lineage
  and this node's replica was checked against it (:func:`~.lineage.diverged`). A replica that extends past the
  divergence point is set aside (moved, kept for the operator) and fetched again from the master.
- The producer publishes only while a session is followed or served; its pending envelopes are re-addressed
  (``retarget``) to every new session.
- A producer releases an acknowledgement once this node applied its `upto` and, with a quorum, once the master's
  commit index (from its heartbeats) reached it; nothing while no session is served or followed, or while the
  followed one is held. The master with a quorum that sees fewer live members than the quorum for `lease_s`
  resigns.
- A visible master of a term below this node's is deposed: it is not followed (this node's rounds tell it the
  term, and it resigns). A new session's check against the lineage also drops what the replica buffered from an
  earlier session ahead of a gap.
- A log failure while serving (a full disk) resigns, and this node's records say priority -1 for that term.
- A resigning master says so on the election key (:class:`~.election.Resignation`) before its token goes; whoever
  heard it campaigns as soon as the token is gone, without the debounce.
- A follower snapshots its replica every `snapshot_every` events, so a promotion reopens the log in O(tail).
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from clusterstate import CoreState, MasterCore, NodeCore, ProducerOutbox
from clusterstate.errors import DecodeError, LogError
from clusterstate.models import Event

from .actions import (
    Action,
    Announce,
    Answer,
    Campaign,
    Declare,
    Effect,
    Fetch,
    Follow,
    PersistTerm,
    Publish,
    Resign,
    Serve,
    Subscribe,
    Undeclare,
    Unserve,
    Unsubscribe,
    Watch,
)
from .datadir import DataDir, Durability
from .election import (
    NEVER,
    Candidate,
    Quorum,
    Resignation,
    Round,
    Visible,
    answer,
    decode_message,
    encode_record,
    encode_resignation,
    quorum_size,
)
from .election import trigger as election_trigger
from .follower import FollowerStep
from .gating import AckGate
from .keys import Keys, Session
from .leader import LeaderStep
from .lineage import Epoch, append, diverged, last_term
from .pages import answer_page
from .producer import ProducerStep
from .wire import Progress, core_session, decode_heartbeat, encode_progress, split_frame

__all__ = ["NodeMachine", "NodeOptions", "Role"]

Role = Literal["starting", "follower", "candidate", "syncing", "master", "stopping"]


@dataclass(frozen=True)
class NodeOptions:
    """How one node runs. Times are seconds of the caller's monotonic clock."""

    cluster: str = "default"
    priority: int = 0  # election priority; -1: never master
    voter: bool = True
    quorum: Quorum = "auto"
    durability: Durability = "group"
    period_s: float = 10.0  # the master's plan cycle (the staleness tracker's period)
    threshold: int = 3  # stale plan cycles before NodeDisconnected
    heartbeat_s: float = 1.0
    debounce_s: float = 0.2  # no master this long: campaign
    join_wait_s: float = 2.0  # at start, wait this long for a master token before campaigning
    round_s: float = 1.0  # a round ends when every member answered, or after this
    lease_s: float = 3.0  # a master below quorum this long resigns
    resend_after_s: float = 1.0
    max_resend_after_s: float = 4.0
    outbox_capacity: int = 65_536
    page_limit: int = 1000
    page_timeout_s: float = 5.0
    retry_after_s: float = 1.0
    snapshot_every: int = 10_000
    progress_s: float = 0.05  # the most often a follower reports its position
    tick_s: float = 0.05  # the longest the shell may wait between ticks


@dataclass(frozen=True)
class _Sync:
    """The winner of `term` fetching from `source` up to `target` before it serves."""

    term: int
    source: str
    target: int


@dataclass
class _Membership:
    members: set[str] = field(default_factory=set)
    masters: set[Session] = field(default_factory=set)


class NodeMachine:
    """Node `node_id` of the cluster, on the data directory `data`, started at `now`. `gate` makes the producer's
    acknowledgement gate of each session (a test can pass a broken one to see the invariants catch it)."""

    def __init__(
        self,
        node_id: str,
        data: DataDir,
        options: NodeOptions,
        *,
        now: float,
        gate: Callable[[], AckGate] = AckGate,
    ) -> None:
        self.node_id = node_id
        self.data = data
        self.options = options
        self.keys = Keys(options.cluster)
        self.counters: Counter[str] = Counter()
        self.term = data.read_term()
        self.lineage = data.read_lineage()
        self.leader: LeaderStep | None = None
        self.follower = self._follower(self._open_replica())
        outbox = ProducerOutbox(
            ProducerOutbox.new_producer_id(node_id),
            node_id,
            (node_id, 0),
            resend_after_s=options.resend_after_s,
            max_resend_after_s=options.max_resend_after_s,
            capacity=options.outbox_capacity,
        )
        self.producer = ProducerStep(outbox, self.keys, gate=gate)
        self.view = _Membership()
        self.stopping = False
        self._last_now = now
        self._masterless_since: float | None = now + options.join_wait_s - options.debounce_s
        self._round: Round | None = None
        self._awaiting: float | None = None  # until when the winner of the last round is awaited
        self._retry_at = float("-inf")
        self._sync: _Sync | None = None
        self._fetches = 0
        self._seen_term = self.term
        self._commit: int | None = None
        self._master_next: int | None = None
        self._never_term: int | None = None  # the term this node stepped down in after a log failure
        self._below_quorum_since: float | None = None
        self._resigned: Session | None = None  # a visible master that said it resigns: no debounce once it is gone
        self._progress_sent: tuple[int, float] = (-1, float("-inf"))
        self._snapshot_at = self.follower.core.next_index  # the replica's index when it was last snapshotted

    # Reading the node.

    @property
    def role(self) -> Role:
        if self.stopping:
            return "stopping"
        if self.leader is not None:
            return "master"
        if self._sync is not None:
            return "syncing"
        if self._round is not None or self._awaiting is not None:
            return "candidate"
        return "follower" if self.follower.session is not None else "starting"

    @property
    def session(self) -> Session | None:
        """The session this node serves or follows."""
        return self.leader.session if self.leader is not None else self.follower.session

    @property
    def next_index(self) -> int:
        return self.leader.master.next_index if self.leader is not None else self.follower.next_index

    @property
    def state(self) -> CoreState:
        return self.leader.master.state if self.leader is not None else self.follower.core.state

    def events_since(self, since: int, limit: int) -> list[bytes]:
        """A page of this node's log (the master's or the replica)."""
        if self.leader is not None:
            return self.leader.master.events_since(since, limit)
        return self.follower.core.events_since(since, limit)

    def status(self) -> dict[str, Any]:
        """This node's summary (the ``status/{node}`` reply and the HTTP ``/cluster`` body)."""
        session = self.session
        master_next = self.next_index if self.leader is not None else self._master_next
        counters = Counter(self.counters)
        for name, value in self.producer.counters.items():
            counters[f"producer_{name}"] += value
        for name, value in self.follower.counters.items():
            counters[f"follower_{name}"] += value
        if self.leader is not None:
            for name, value in self.leader.counters.items():
                counters[f"leader_{name}"] += value
        return {
            "node": self.node_id,
            "cluster": self.options.cluster,
            "role": self.role,
            "term": self.term,
            "session": None if session is None else str(session),
            "next": self.next_index,
            "master_next": master_next,
            "lag": None if master_next is None else max(master_next - self.next_index, 0),
            "missing": None if self.leader is not None else self.follower.core.missing,
            "commit": self.leader.commit if self.leader is not None else self._commit,
            "pending": self.producer.outbox.pending,
            "members": sorted(self.view.members),
            "masters": sorted(str(s) for s in self.view.masters),
            "lineage": [[e.session.term, e.session.master, e.start] for e in self.lineage],
            "dropped": {},
            "peers": [],
            "counters": dict(sorted(counters.items())),
        }

    @property
    def next_timer(self) -> float:
        """When :meth:`tick` is next due at the latest (the shell may tick sooner)."""
        timers = [self.follower.next_timer, self.leader.next_timer if self.leader is not None else None]
        soonest = min((t for t in timers if t is not None), default=float("inf"))
        return min(soonest, self._last_now + self.options.tick_s)

    # Inputs.

    def start(self, now: float) -> list[Effect]:
        """The tokens, watches and queryables every node holds while it runs."""
        self._last_now = now
        return [
            Declare(self.keys.member(self.node_id)),
            Watch(self.keys.members()),
            Watch(self.keys.masters()),
            Subscribe(self.keys.election()),
            Serve(self.keys.replica_events(self.node_id)),
            Serve(self.keys.status(self.node_id)),
        ]

    def push(self, event: Event | bytes, now: float) -> list[Effect]:
        """A local event, numbered into the outbox (``OutboxFullError`` when it is full: back off and retry)."""
        self._last_now = now
        return self._producing(self.producer.push(event, now))

    def on_liveliness(self, key: str, alive: bool, now: float) -> list[Effect]:
        """A member or master token appeared (`alive`) or went away."""
        self._last_now = now
        member = self.keys.member_of(key)
        master = self.keys.session_of(key)
        effects: list[Effect] = []
        if member is not None:
            (self.view.members.add if alive else self.view.members.discard)(member)
        elif master is not None:
            if alive:
                self.view.masters.add(master)
                self._seen_term = max(self._seen_term, master.term)
                if master.term < self.term and not self.stopping:
                    # A deposed master (one that hung past the lease, say), which may not see the newer master's
                    # token: this node's record tells it the term, and it resigns.
                    effects.append(Publish(self.keys.election(), encode_record(self._own_record(self.term))))
            else:
                self.view.masters.discard(master)
        return effects + self._check(now)

    def on_publications(self, pattern: str, payloads: list[bytes], now: float) -> list[Effect]:
        """What arrived on the subscription `pattern` (as this machine asked for it) since the last call."""
        self._last_now = now
        effects: list[Effect] = []
        session = self.session
        if pattern == self.keys.election():
            for payload in payloads:
                effects += self._on_record(payload, now)
        elif self.leader is not None and pattern == self.keys.locals():
            effects += self._leading(lambda leader: leader.on_envelopes(payloads, now), now)
        elif self.leader is not None and pattern == self.keys.progresses(self.leader.session):
            effects += self._leading(lambda leader: leader.on_progress(payloads, now), now)
            self._release()
        elif session is not None and pattern == self.keys.global_(session):
            effects += self.follower.on_frames(session, payloads, now)
            effects += self._applied(now)
        elif session is not None and pattern == self.keys.heartbeat(session):
            for payload in payloads:
                effects += self._on_heartbeat(session, payload, now)
        elif pattern == self.keys.ack(self.producer.session, self.node_id):
            for payload in payloads:
                effects += self._producing(
                    self.producer.on_ack(self.producer.session, payload, self._applied_bound, now, self._commit_bound)
                )
        else:
            self.counters["unexpected_publications"] += len(payloads)
        return effects + self._check(now)

    def on_query(self, key: str, parameters: Mapping[str, str], now: float) -> Answer:
        """The answer to a query addressed to one of this machine's queryables."""
        self._last_now = now
        if self.leader is not None and key == self.leader.events_key:
            return self.leader.on_query(parameters)
        if key == self.keys.replica_events(self.node_id):
            answer = answer_page(self.events_since, parameters)
            self.counters["replica_pages" if answer.ok else "replica_page_errors"] += 1
            return answer
        if key == self.keys.status(self.node_id):
            return Answer(json.dumps(self.status(), separators=(",", ":")).encode())
        self.counters["unexpected_queries"] += 1
        return Answer(b'{"error":"not_served"}', ok=False)

    def on_reply(self, fetch: Fetch, answer: Answer | None, now: float) -> list[Effect]:
        """The reply to `fetch` (None: none came within the page timeout)."""
        self._last_now = now
        if self._sync is not None and fetch.key == self.keys.replica_events(self._sync.source):
            return self._on_sync_page(answer, now)
        return self.follower.on_page(fetch.ident, answer, now) + self._applied(now) + self._check(now)

    def tick(self, now: float) -> list[Effect]:
        """The time passing: resends, page timeouts, plan cycles, heartbeats, progress reports, election timers."""
        self._last_now = now
        effects = self._producing(self.producer.tick(now))
        if self.leader is not None:
            effects += self._leading(lambda leader: leader.tick(now), now)
            effects += self._quorum_watch(now)
        elif self._sync is None:
            effects += self.follower.tick(now) + self._applied(now)
        return effects + self._check(now)

    def stop(self, now: float) -> list[Effect]:
        """Stop: a master resigns (its token goes, the log is synced and closed); every node leaves its keys."""
        self._last_now = now
        effects: list[Effect] = []
        if self.leader is not None:
            effects += self._resign(now, reopen=False)
        else:
            effects += self.follower.leave()
            self.follower.core.close()
        self.stopping = True
        self._round = self._awaiting = self._sync = None
        return [*effects, Undeclare(self.keys.member(self.node_id))]

    # The election.

    def _own_record(self, term: int) -> Candidate:
        priority = NEVER if self._never_term == term else self.options.priority
        next_index = self.next_index
        return Candidate(
            term=term,
            node=self.node_id,
            lineage_term=min(last_term(self.lineage, next_index), term),
            next=next_index,
            priority=priority,
            voter=self.options.voter,
        )

    def _on_record(self, payload: bytes, now: float) -> list[Effect]:
        try:
            record = decode_message(payload)
        except DecodeError:
            self.counters["bad_records"] += 1
            return []
        if isinstance(record, Resignation):
            if record.session in self.view.masters:
                self._resigned = record.session
            return []
        if record.node == self.node_id:
            return []
        self._seen_term = max(self._seen_term, record.term)
        if self._round is not None:
            return self._act(self._round.receive(record), now)
        if record.term > self.term and self.leader is None and not self._masters and self._sync is None:
            # A round this node is not in yet, while it sees no master: join it, so it ends without a timeout.
            return self._act((PersistTerm(record.term), Campaign(record.term)), now)
        return self._act(answer(self.term, record), now)

    def _check(self, now: float) -> list[Effect]:
        """The election's state after an input: a finished round, an awaited winner, the triggers."""
        if self.stopping:
            return []
        effects: list[Effect] = []
        if self._round is not None and any(s.term >= self._round.term for s in self._masters):
            # A master of this round's term or a newer one serves (it won where this node's view of the round
            # was still open): the round is moot, and this node follows that master.
            self._round = None
            self.counters["rounds_overtaken"] += 1
        if self._round is not None and self._round.complete(self.view.members, now):
            effects += self._end_round(self._round, now)
        if self._awaiting is not None and (self._masters or now >= self._awaiting):
            self._awaiting = None
            if not self._masters:
                self.counters["winner_never_came"] += 1
        masters = self._masters
        if self.leader is not None:
            masters.add(self.leader.session)
        if masters:
            self._masterless_since = None
        elif self._masterless_since is None:
            self._masterless_since = now
        if masters and self._resigned not in masters:
            self._resigned = None  # a newer master: that resignation is history
        visible = Visible(
            me=self.node_id,
            term=self.term,
            seen_term=self._seen_term,
            masters=frozenset(self._master_record(s) for s in masters),
            serving=self.leader.session if self.leader is not None else None,
            following=self.follower.session,
            masterless_since=self._masterless_since,
            resigned=self._resigned is not None and not masters,
            campaigning=self._round is not None
            or self._awaiting is not None
            or self._sync is not None
            or now < self._retry_at,
        )
        effects += self._act(election_trigger(visible, now, self.options.debounce_s), now)
        if self._round is not None and self._round.complete(self.view.members, now):
            effects += self._end_round(self._round, now)  # a round nobody else is in ends at once
        return effects

    @property
    def _masters(self) -> set[Session]:
        """The visible masters this node may follow. A master of a term below this node's is deposed (a round of a
        higher term ran): following it could set aside the newer sessions' committed events (its lineage is older),
        and the producer would address a session it left, whose master dedups the renumbered envelopes against
        the sequence numbers it saw before. The rounds this node starts tell that master the term; it resigns."""
        return {s for s in self.view.masters if s.term >= self.term}

    def _master_record(self, session: Session) -> Candidate:
        """A visible master, ranked by its session's term (its replica's length is not visible in a token)."""
        own = self.leader is not None and session == self.leader.session
        return Candidate(session.term, session.master, session.term, self.next_index if own else 0)

    def _act(self, actions: Iterable[Action], now: float) -> list[Effect]:
        effects: list[Effect] = []
        for action in actions:
            if isinstance(action, PersistTerm):
                if action.term > self.term:
                    self.data.write_term(action.term)
                    self.term = action.term
            elif isinstance(action, Campaign):
                effects += self._campaign(action.term, now)
            elif isinstance(action, Announce):
                effects.append(Publish(self.keys.election(), encode_record(self._own_record(action.term))))
            elif isinstance(action, Follow):
                effects += self._follow(action.session, now)
            elif isinstance(action, Resign) and self.leader is not None and self.leader.session == action.session:
                effects += self._resign(now, reopen=True)
        return effects

    def _campaign(self, term: int, now: float) -> list[Effect]:
        if term > self.term:
            self.data.write_term(term)
            self.term = term
        self.counters["rounds"] += 1
        self._awaiting = None
        self._round = Round(self._own_record(term), now, self.options.round_s)
        return [Publish(self.keys.election(), encode_record(self._round.own))]

    def _end_round(self, done: Round, now: float) -> list[Effect]:
        self._round = None
        quorum = quorum_size(self.options.quorum, len(self._voters()))
        winner = done.winner(self.view.members | {self.node_id}, quorum)
        if winner is None:
            # No quorum (or nobody may win): try again later, each node at its own moment.
            jitter = (zlib.crc32(f"{self.node_id}/{done.term}".encode()) % 1000) / 1000
            self._retry_at = now + self.options.round_s * (1 + jitter)
            self.counters["rounds_without_winner"] += 1
            return []
        if winner != self.node_id:
            self._awaiting = now + self.options.join_wait_s
            return []
        mine = done.own
        ahead = [
            r
            for r in done.records
            if r.node in self.view.members and r.lineage_term == mine.lineage_term and r.next > mine.next
        ]
        if not ahead:
            return self._promote(done.term, now)
        source = max(ahead, key=lambda r: (r.next, r.node))
        self._drop_buffered()
        self._sync = _Sync(done.term, source.node, source.next)
        return self._sync_fetch(now)

    def _sync_fetch(self, now: float) -> list[Effect]:
        sync = self._sync
        assert sync is not None
        self._fetches += 1
        since = self.follower.core.next_index
        limit = max(min(self.options.page_limit, sync.target - since), 1)
        return [Fetch(self._fetches, self.keys.replica_events(sync.source), since, limit)]

    def _on_sync_page(self, answer: Answer | None, now: float) -> list[Effect]:
        sync = self._sync
        assert sync is not None
        applied = 0
        if answer is not None and answer.ok:
            try:
                applied = self.follower.core.receive(split_frame(answer.payload)).applied
            except LogError:
                self.counters["sync_log_errors"] += 1
        self.counters["sync_pages"] += 1
        if applied and self.follower.core.next_index < sync.target:
            return self._sync_fetch(now)
        if self.follower.core.next_index < sync.target:
            self.counters["sync_incomplete"] += 1
        self._sync = None
        if sync.term != self.term or self._masters:
            return self._check(now)  # a newer term or a master appeared meanwhile: do not serve
        return self._promote(sync.term, now) + self._check(now)

    def _promote(self, term: int, now: float) -> list[Effect]:
        session = Session(term, self.node_id)
        if self.lineage and self.lineage[-1].session.term >= term:
            # This replica already followed a session of this term or a newer one: serving `term` would fork the
            # history. The triggers campaign again at a newer term.
            self.counters["promotions_refused"] += 1
            return []
        effects = self.follower.leave()
        self.follower.core.close()
        try:
            master = MasterCore(
                core_session(session),
                log=self.data.open_log(self.options.durability),
                period_s=self.options.period_s,
                threshold=self.options.threshold,
            )
        except LogError:
            self.counters["promote_log_errors"] += 1
            self._never_term = term
            self.follower = self._follower(self._open_replica())
            return effects
        self.lineage = append(self.lineage, session, master.next_index)
        self.data.write_lineage(self.lineage)
        self.leader = LeaderStep(
            master,
            self.keys,
            now=now,
            period_s=self.options.period_s,
            heartbeat_s=self.options.heartbeat_s,
            snapshot_every=self.options.snapshot_every,
            lineage=self.lineage,
            quorum=quorum_size(self.options.quorum, len(self._voters())),
        )
        self._commit = None
        self._master_next = None
        self._below_quorum_since = None
        self.counters["promotions"] += 1
        effects += [Declare(self.keys.master(session)), Serve(self.leader.events_key), *self.leader.start()]
        effects += self.producer.retarget(session)
        return effects + self._leading(lambda leader: leader.tick(now), now)

    def _resign(self, now: float, *, reopen: bool) -> list[Effect]:
        """Stop serving: drop the master token and the session's keys, close the master, reopen the replica."""
        leader = self.leader
        assert leader is not None
        self.leader = None
        self.counters["resignations"] += 1
        session = leader.session
        effects: list[Effect] = [
            Publish(self.keys.election(), encode_resignation(Resignation(session))),
            Undeclare(self.keys.master(session)),
            Unserve(leader.events_key),
            Unsubscribe(self.keys.locals()),
            Unsubscribe(self.keys.progresses(session)),
        ]
        try:
            leader.master.sync()
        except LogError:
            self.counters["resign_log_errors"] += 1
        leader.master.close()
        if reopen:
            self.follower = self._follower(self._open_replica())
        self._masterless_since = now
        return effects

    def _voters(self) -> set[str]:
        """The nodes a quorum is counted from: those the State knows (until NodeDisconnected) and those live now,
        so a master's own events wait for a follower's replica even before the followers produced anything."""
        voters = set(self.state.known_nodes()) | self.view.members
        if self.options.voter:
            voters.add(self.node_id)
        return voters

    def _quorum_watch(self, now: float) -> list[Effect]:
        """A master with a quorum that sees fewer live members than it needs for `lease_s` resigns."""
        leader = self.leader
        if leader is None:
            return []
        leader.quorum = quorum_size(self.options.quorum, len(self._voters()))
        if leader.quorum is None or len(self.view.members | {self.node_id}) >= leader.quorum:
            self._below_quorum_since = None
            return []
        if self._below_quorum_since is None:
            self._below_quorum_since = now
        if now - self._below_quorum_since < self.options.lease_s:
            return []
        self.counters["quorum_lost"] += 1
        return self._resign(now, reopen=True)

    # Following.

    def _follow(self, session: Session, now: float) -> list[Effect]:
        self._awaiting = None
        self._commit = None
        self._master_next = None
        effects = self.follower.follow(session, now, held=True)
        return effects + self._producing(self.producer.retarget(session))

    def _on_heartbeat(self, session: Session, payload: bytes, now: float) -> list[Effect]:
        try:
            heartbeat = decode_heartbeat(payload)
        except DecodeError:
            self.counters["bad_heartbeats"] += 1
            return []
        effects: list[Effect] = []
        if self.follower.held:
            effects += self._check_lineage(heartbeat.lineage)
            effects += self.follower.release(now)
        self._commit = heartbeat.commit
        self._master_next = heartbeat.next
        effects += self.follower.on_heartbeat(session, payload, now)
        return effects + self._applied(now)

    def _check_lineage(self, theirs: tuple[Epoch, ...]) -> list[Effect]:
        """Set the replica aside if it diverged from the master's log; adopt the master's lineage."""
        aside = diverged(self.lineage, self.follower.core.next_index, theirs)
        if aside is not None:
            self.follower.core.close()
            self.data.set_aside(self.term, aside.count)
            self.counters["diverged_events"] += aside.count
            self.follower.core = self._open_replica()
        else:
            self._drop_buffered()
        self.lineage = theirs
        self.data.write_lineage(theirs)
        return []

    def _drop_buffered(self) -> None:
        """Reopen the replica when it buffers events ahead of a gap: they came from an earlier session, whose log may
        differ from the one the gap is now filled from (the new master's, or a sync source's), and would be applied
        after its events."""
        if self.follower.core.counters["buffered"]:
            self.follower.core.close()
            self.counters["dropped_buffered"] += 1
            self.follower.core = self._open_replica()

    def _open_replica(self) -> NodeCore:
        """A ``NodeCore`` on the replica log (its State rebuilt from the log's latest snapshot and tail)."""
        return NodeCore(log=self.data.open_log(self.options.durability))

    def _follower(self, core: NodeCore) -> FollowerStep:
        o = self.options
        return FollowerStep(
            core, self.keys, page_limit=o.page_limit, page_timeout=o.page_timeout_s, retry_after=o.retry_after_s
        )

    def _applied(self, now: float) -> list[Effect]:
        """After the replica moved: release what the producer may, snapshot the replica every `snapshot_every`
        events (so a promotion reopens it in O(tail)), report progress to the master."""
        self._release()
        core = self.follower.core
        if self.leader is None and core.has_log and core.next_index - self._snapshot_at >= self.options.snapshot_every:
            try:
                self._snapshot_at = core.snapshot() + 1
                self.counters["replica_snapshots"] += 1
            except LogError:
                self._snapshot_at = core.next_index  # counted; the next one is tried a period later
                self.counters["replica_snapshot_errors"] += 1
        effects: list[Effect] = []
        session = self.follower.session
        if session is None or self.follower.held:
            return effects
        next_index = self.follower.next_index
        sent, at = self._progress_sent
        if (next_index != sent and now - at >= self.options.progress_s) or now - at >= self.options.heartbeat_s:
            self._progress_sent = (next_index, now)
            payload = encode_progress(Progress(self.node_id, next_index))
            effects.append(Publish(self.keys.progress(session, self.node_id), payload))
        return effects

    # The producer.

    @property
    def _commit_bound(self) -> int | None:
        return self.leader.commit if self.leader is not None else self._commit

    @property
    def _applied_bound(self) -> int:
        """How many events of this node's own log count as applied for the producer's gate. Nothing while no session
        is served or followed (after a resignation, the commit index of the session the producer still addresses is
        unknown) or while the followed one is held (the replica may have diverged from the master's log, its next
        index counting events of another lineage, and the session's commit index is not known yet). An
        acknowledgement's `upto` is at least 1 (its events are below it), so 0 releases nothing."""
        if self.leader is None and (self.follower.session is None or self.follower.held):
            return 0
        return self.next_index

    def _release(self) -> None:
        self.producer.on_applied(self._applied_bound, self._commit_bound)

    def _producing(self, effects: list[Effect]) -> list[Effect]:
        """The producer's effects, with its envelopes held back while no session is followed or served (they are
        all sent again, re-addressed, when one is)."""
        if self.session is not None:
            return effects
        return [e for e in effects if not isinstance(e, Publish)]

    def _leading(self, step: Callable[[LeaderStep], list[Effect]], now: float) -> list[Effect]:
        """Run `step(leader)`; a log failure (a full disk) resigns, with priority -1 for this term."""
        leader = self.leader
        assert leader is not None
        try:
            effects = step(leader)
        except LogError:
            self.counters["master_log_errors"] += 1
            self._never_term = leader.session.term
            return self._resign(now, reopen=True)
        return effects
