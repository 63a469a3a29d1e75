"""Lineage: which master sessions wrote which part of a replica log, and where two logs stop agreeing (pure).

A lineage is a list of epochs `(term, master, start)`, one per session the log followed, appended when the session
started: the events `[start_i, start_{i+1})` were written in session `i` and the last epoch runs to the log's end.
Terms strictly increase and starts never go back. The index `x` is owned by the last epoch with `start <= x` (none
before the first epoch).

Two logs agree on every index owned by the same epoch in both lineages. The divergence point is the first index
where the owners differ; when this node's log extends past that point (its next index is greater), its events from
there on were written by a session the other log does not have: they must be set aside and fetched again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .actions import SetAside
from .errors import InvalidLineageError
from .keys import Session

__all__ = ["Epoch", "append", "diverged", "divergence", "last_term", "validate"]


@dataclass(frozen=True)
class Epoch:
    session: Session
    start: int


def validate(lineage: Sequence[Epoch]) -> tuple[Epoch, ...]:
    """`lineage` as a tuple, or :class:`InvalidLineageError` when its terms do not strictly increase or a start
    index is negative or goes back."""
    for i, epoch in enumerate(lineage):
        if epoch.start < 0:
            raise InvalidLineageError(f"epoch {i} starts at a negative index ({epoch.start})")
        if i and epoch.session.term <= lineage[i - 1].session.term:
            raise InvalidLineageError(f"epoch {i}: term {epoch.session.term} does not follow {lineage[i - 1]}")
        if i and epoch.start < lineage[i - 1].start:
            raise InvalidLineageError(f"epoch {i}: start {epoch.start} goes back from {lineage[i - 1].start}")
    return tuple(lineage)


def append(lineage: Sequence[Epoch], session: Session, start: int) -> tuple[Epoch, ...]:
    """`lineage` followed by a new epoch (validated)."""
    return validate((*lineage, Epoch(session, start)))


def divergence(mine: Sequence[Epoch], theirs: Sequence[Epoch]) -> int | None:
    """The first index whose owning epoch differs between the two lineages, or None when they agree on every index."""
    mine, theirs = _owners(mine), _owners(theirs)
    for a, b in zip(mine, theirs, strict=False):
        if a != b:
            return min(a.start, b.start)
    if len(mine) == len(theirs):
        return None
    longer = mine if len(mine) > len(theirs) else theirs
    return longer[min(len(mine), len(theirs))].start


def _owners(lineage: Sequence[Epoch]) -> list[Epoch]:
    """The epochs that own an index: an epoch followed by one with the same start owns nothing."""
    return [e for i, e in enumerate(lineage) if i + 1 == len(lineage) or lineage[i + 1].start > e.start]


def diverged(mine: Sequence[Epoch], next_index: int, theirs: Sequence[Epoch]) -> SetAside | None:
    """What to set aside of this node's log (`next_index` events, lineage `mine`) before following a master whose
    lineage is `theirs`: the events from the divergence point on, or None when the log does not reach it."""
    point = divergence(mine, theirs)
    if point is None or next_index <= point:
        return None
    return SetAside(start=point, count=next_index - point)


def last_term(lineage: Sequence[Epoch], next_index: int) -> int:
    """The term of the session that wrote the last event of a log of `next_index` events (0 for an empty log or
    one no epoch owns): what an election record compares as `lineage_term`, as Raft compares last log terms."""
    owner = [e for e in lineage if e.start < next_index]
    return owner[-1].session.term if owner else 0
