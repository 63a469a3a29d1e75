"""Master election (pure): candidate records, the ranking, the winner of a round, the quorum and the triggers.

# The rule

1. **Terms.** Every node keeps `term`, the highest term it has seen (in a candidate record, a master token or a
   session key), and persists it before acting on it (the decisions return ``PersistTerm``). A term never goes
   back, across restarts too.
2. **Triggers** (:func:`trigger`), a function of what is visible, checked on every liveliness change and tick:
   a. a term above mine is seen: adopt it; if I serve a session of a lower term, resign;
   b. two or more masters are visible: no round; every node keeps the highest master (term desc, then the ranking
      of rule 4); a master that is not the kept one resigns, everyone else follows the kept one;
   c. exactly one master is visible: follow it;
   d. no master has been visible for `debounce` seconds (no wait after a resignation was heard) and no round is
      running: campaign for `max(term, seen) + 1`.
   The other members' joins and leaves are not an input: they never start a round.
3. **A round** (:class:`Round`) for term `T` keeps one record per node (the best-ranked when a node sent several).
   A record of a lower term is answered with this node's record for its own term, so a stale node learns the term
   instead of waiting for ever (:func:`answer`); a record of a higher term makes this node adopt that term and join
   its round; the first record of `T` from another node is answered once with this node's record. The round is
   complete when every live member has a record, or at its timeout.
4. **Ranking**, best first: `lineage_term` desc, `next` desc (the most complete replica of the newest lineage),
   `priority` desc, `node` asc.
5. **Winner** (:func:`winner`): only records of live members of the newest term among them count; nobody is elected
   when fewer than `quorum` voters have a record; a record with priority -1 never wins (nobody, if all have -1);
   otherwise the best-ranked record's node.
6. **Quorum** (:func:`quorum_size`): ``"none"``: no check; ``"auto"``: a majority of the voters when there are 3 or
   more, no check with 1 or 2 (a 2-node cluster stays available); an integer `N`: `N`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass
from typing import Literal

from clusterstate.errors import DecodeError

from .actions import Action, Announce, Campaign, Follow, PersistTerm, Resign
from .errors import InvalidNameError, InvalidRecordError
from .keys import Session, validate_name

__all__ = [
    "Candidate",
    "Quorum",
    "Resignation",
    "Round",
    "Visible",
    "answer",
    "decode_message",
    "decode_record",
    "encode_record",
    "encode_resignation",
    "quorum_size",
    "rank",
    "trigger",
    "winner",
]

NEVER = -1  # the priority of a node that must never be master
Quorum = Literal["none", "auto"] | int


@dataclass(frozen=True)
class Candidate:
    """A node's election record for `term`: how complete its replica is, and whether it may win or vote.

    `lineage_term` is the term of the newest session its replica log followed and `next` the replica's next
    index. A visible master is described by the same record, with `term` = `lineage_term` = its session's term.
    """

    term: int
    node: str
    lineage_term: int
    next: int
    priority: int = 0
    voter: bool = True

    def __post_init__(self) -> None:
        validate_name("node id", self.node)
        for field in ("term", "lineage_term", "next"):
            value = getattr(self, field)
            if type(value) is not int or value < 0:
                raise InvalidRecordError(field, value)
        if self.lineage_term > self.term:
            raise InvalidRecordError("lineage_term", self.lineage_term)
        if type(self.priority) is not int or self.priority < NEVER:
            raise InvalidRecordError("priority", self.priority)


def rank(record: Candidate) -> tuple[int, int, int, str]:
    """The ranking key of rule 4: the smallest key is the best record."""
    return (-record.lineage_term, -record.next, -record.priority, record.node)


def _keep(record: Candidate) -> tuple[tuple[int, int, int, str], bool]:
    """Which of one node's records counts: the best-ranked, a voter's on a tie (a total order on its records)."""
    return (rank(record), not record.voter)


def quorum_size(mode: Quorum, voters: int) -> int | None:
    """The number of voters' records a round needs (rule 6), or None for no check."""
    if mode == "none":
        return None
    if mode == "auto":
        return voters // 2 + 1 if voters >= 3 else None
    if type(mode) is not int or mode < 1:
        raise InvalidRecordError("quorum", int(mode))
    return mode


def winner(records: Iterable[Candidate], members: Collection[str], quorum: int | None) -> str | None:
    """The node elected from `records` (rule 5), or None when nobody may be."""
    live = [r for r in records if r.node in members]
    if not live:
        return None
    newest = max(r.term for r in live)
    best: dict[str, Candidate] = {}
    for r in live:
        if r.term == newest and (r.node not in best or _keep(r) < _keep(best[r.node])):
            best[r.node] = r
    if quorum is not None and sum(r.voter for r in best.values()) < quorum:
        return None
    eligible = [r for r in best.values() if r.priority != NEVER]
    return min(eligible, key=rank).node if eligible else None


def answer(term: int, record: Candidate) -> tuple[Action, ...]:
    """What a node outside a round does with `record` (rules 1 and 3): a stale record is answered with this node's
    record for `term`, a newer term is adopted (the trigger then resigns or campaigns), an equal one is ignored."""
    if record.term < term:
        return (Announce(term),)
    if record.term > term:
        return (PersistTerm(record.term),)
    return ()


class Round:
    """One election round for the term of `own`, this node's record (rule 3). Pure: time comes in as `now`."""

    def __init__(self, own: Candidate, started: float, timeout: float) -> None:
        self.own = own
        self.started = started
        self.timeout = timeout
        self._records: dict[str, Candidate] = {own.node: own}

    @property
    def term(self) -> int:
        return self.own.term

    @property
    def records(self) -> list[Candidate]:
        """One record per node heard in this round, this node's own included."""
        return list(self._records.values())

    def receive(self, record: Candidate) -> tuple[Action, ...]:
        """Take another node's record; return what to do about it."""
        if record.term > self.term:
            return (PersistTerm(record.term), Campaign(record.term))
        if record.term < self.term:
            return answer(self.term, record)
        if record.node == self.own.node:
            return ()
        known = self._records.get(record.node)
        if known is None or _keep(record) < _keep(known):
            self._records[record.node] = record
        return () if known is not None else (Announce(self.term),)

    def complete(self, members: Collection[str], now: float) -> bool:
        """Every live member has a record, or the round timed out."""
        return all(m in self._records for m in members) or now - self.started >= self.timeout

    def winner(self, members: Collection[str], quorum: int | None) -> str | None:
        return winner(self._records.values(), members, quorum)


@dataclass(frozen=True)
class Visible:
    """What one node sees when the triggers are checked (rule 2)."""

    me: str
    term: int  # this node's persisted term
    seen_term: int  # the highest term seen in records and session keys since the last check
    masters: frozenset[Candidate]  # one record per visible master token (its own included)
    serving: Session | None  # the session this node serves as master
    following: Session | None  # the session this node follows
    masterless_since: float | None  # when the last master token went away (None while one is visible)
    resigned: bool = False  # a resignation was heard since then: no debounce
    campaigning: bool = False  # a round is running


def trigger(visible: Visible, now: float, debounce: float) -> tuple[Action, ...]:
    """The actions of rule 2 for what is `visible` at `now`."""
    v = visible
    top = max([v.term, v.seen_term, *(m.term for m in v.masters)])
    actions: list[Action] = []
    serving = v.serving
    if serving is not None and serving.term < top:
        actions.append(Resign(serving))
        serving = None
    if v.masters:
        kept = min(v.masters, key=lambda m: (-m.term, rank(m)))
        session = Session(kept.term, kept.node)
        if serving is not None and serving != session:
            actions.append(Resign(serving))
        if kept.node != v.me and session != v.following:
            actions.append(Follow(session))
    elif (
        serving is None
        and not v.campaigning
        and v.masterless_since is not None
        and (v.resigned or now - v.masterless_since >= debounce)
    ):
        return (PersistTerm(top + 1), *actions, Campaign(top + 1))
    return (PersistTerm(top), *actions) if top > v.term else tuple(actions)


def encode_record(record: Candidate) -> bytes:
    """The wire form of a record: one compact JSON object."""
    return json.dumps(asdict(record), separators=(",", ":")).encode()


_FIELDS = {"term": int, "node": str, "lineage_term": int, "next": int, "priority": int, "voter": bool}


def decode_record(payload: bytes) -> Candidate:
    """A record from its wire form; :class:`DecodeError` for anything else."""
    try:
        raw = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as e:
        raise DecodeError("election record", str(e)) from None
    if not isinstance(raw, dict) or set(raw) != set(_FIELDS):
        raise DecodeError("election record", f"expected an object with the fields {sorted(_FIELDS)}")
    for name, kind in _FIELDS.items():
        if type(raw[name]) is not kind:
            raise DecodeError("election record", f"{name} must be {kind.__name__}")
    try:
        return Candidate(**raw)
    except (InvalidRecordError, ValueError) as e:
        raise DecodeError("election record", str(e)) from None


@dataclass(frozen=True)
class Resignation:
    """A master giving up `session` on purpose (a graceful stop, a lost quorum, a full disk): whoever hears it
    campaigns as soon as the master's token is gone, without the debounce."""

    session: Session


def encode_resignation(resignation: Resignation) -> bytes:
    session = resignation.session
    return json.dumps({"resign": session.term, "node": session.master}, separators=(",", ":")).encode()


def decode_message(payload: bytes) -> Candidate | Resignation:
    """A message of the election key: a candidate record or a resignation; :class:`DecodeError` for anything else."""
    try:
        raw = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as e:
        raise DecodeError("election message", str(e)) from None
    if isinstance(raw, dict) and set(raw) == {"resign", "node"}:
        term, node = raw["resign"], raw["node"]
        if type(term) is not int or type(node) is not str:
            raise DecodeError("election message", "a resignation is {resign: term, node: node id}")
        try:
            return Resignation(Session(term, node))
        except (InvalidRecordError, InvalidNameError) as e:
            raise DecodeError("election message", str(e)) from None
    return decode_record(payload)
