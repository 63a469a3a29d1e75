"""Acknowledgement gating and the commit index (pure).

The master acknowledges a producer's events with `upto`, its next index when it sent the acknowledgement. The
producer holds each acknowledgement as `(upto, pairs)` and releases its pairs (``ProducerOutbox.acknowledge``) only
once its own node has applied the stream up to `upto` (`upto <= applied`, the node's next index) and, with a quorum,
once the master reports that stream committed (`upto <= commit`). So an event leaves the outbox only when a replica
that any election would prefer holds it: a master failure loses no released event.

The commit index is Raft's: the `quorum`-th largest of the replicas' next indices (the master's own included).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .errors import InvalidRecordError

__all__ = ["AckGate", "HeldAck", "commit_index"]

Pair = tuple[str, int]  # (producer, origin_idx), as MasterCore acknowledges them


@dataclass(frozen=True)
class HeldAck:
    upto: int
    pairs: tuple[Pair, ...]


class AckGate:
    """The acknowledgements one producer holds for its current session, in arrival order."""

    def __init__(self) -> None:
        self._held: list[HeldAck] = []

    @property
    def held(self) -> int:
        """How many acknowledgements are held."""
        return len(self._held)

    def hold(self, upto: int, pairs: Iterable[Pair]) -> None:
        if type(upto) is not int or upto < 0:
            raise InvalidRecordError("upto", upto)
        self._held.append(HeldAck(upto, tuple(pairs)))

    def release(self, applied: int, commit: int | None = None) -> list[Pair]:
        """The pairs of every held acknowledgement with `upto <= applied` (and `upto <= commit` unless `commit` is
        None, i.e. no quorum), in arrival order; the rest stay held."""
        bound = applied if commit is None else min(applied, commit)
        released: list[Pair] = []
        kept: list[HeldAck] = []
        for ack in self._held:
            if ack.upto <= bound:
                released.extend(ack.pairs)
            else:
                kept.append(ack)
        self._held = kept
        return released


def commit_index(positions: Iterable[int], quorum: int) -> int:
    """The highest index that `quorum` of the replicas have reached: the `quorum`-th largest of `positions`
    (one next index per replica), or 0 when fewer than `quorum` replicas report."""
    if quorum < 1:
        raise InvalidRecordError("quorum", quorum)
    ranked = sorted(positions, reverse=True)
    return ranked[quorum - 1] if len(ranked) >= quorum else 0
