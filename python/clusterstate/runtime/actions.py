"""The actions the decision modules return: what the shell must persist, publish or switch to."""

from __future__ import annotations

from dataclasses import dataclass

from .keys import Session

__all__ = ["Action", "Announce", "Campaign", "Follow", "PersistTerm", "Resign", "SetAside"]


@dataclass(frozen=True)
class PersistTerm:
    """Write `term` durably (fsync) before acting on it: terms never go back, across restarts too."""

    term: int


@dataclass(frozen=True)
class Campaign:
    """Start a round for `term` (persisted first, by a preceding ``PersistTerm``)."""

    term: int


@dataclass(frozen=True)
class Announce:
    """Publish this node's candidate record for `term` on the election key."""

    term: int


@dataclass(frozen=True)
class Follow:
    """Follow the master of `session` (subscribe to its session keys, retarget the outbox)."""

    session: Session


@dataclass(frozen=True)
class Resign:
    """Stop serving `session`: publish a resignation, drop the master token, reopen the log as a replica."""

    session: Session


@dataclass(frozen=True)
class SetAside:
    """The replica log diverged: move its events from `start` on (`count` of them) aside, then refetch."""

    start: int
    count: int


Action = PersistTerm | Campaign | Announce | Follow | Resign | SetAside
