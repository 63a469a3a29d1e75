"""What the runtime's pure code returns for the shell to carry out; nothing here touches the network or a file.

- ``Action``: what the election and lineage decisions return (persist a term, campaign, follow, resign, set aside).
- ``Effect``: what the producer, follower and leader steps and the node machine return (publish, subscribe,
  fetch, hold a token, serve a queryable, watch tokens): the shell carries them out over a
  :class:`~clusterstate.runtime.transport.Transport` and feeds what comes back into the machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from .keys import Session

__all__ = [
    "Action",
    "Announce",
    "Answer",
    "Campaign",
    "Declare",
    "Effect",
    "Fetch",
    "Follow",
    "PersistTerm",
    "Publish",
    "Resign",
    "Serve",
    "SetAside",
    "Subscribe",
    "Undeclare",
    "Unserve",
    "Unsubscribe",
    "Watch",
]


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


@dataclass(frozen=True)
class Publish:
    """Publish `payload` on the concrete key `key`."""

    key: str
    payload: bytes


@dataclass(frozen=True)
class Subscribe:
    """Start receiving what is published on `pattern`."""

    pattern: str


@dataclass(frozen=True)
class Unsubscribe:
    """Stop receiving what is published on `pattern`."""

    pattern: str


@dataclass(frozen=True)
class Fetch:
    """Query `key` for the catch-up page of at most `limit` events from index `since`. The reply (or a timeout)
    goes back to the follower step with the same `ident`."""

    ident: int
    key: str
    since: int
    limit: int

    @property
    def parameters(self) -> dict[str, str]:
        return {"since": str(self.since), "limit": str(self.limit)}


@dataclass(frozen=True)
class Answer:
    """The reply to one query: `payload`, as a success or (`ok` false) as an error reply."""

    payload: bytes
    ok: bool = True


@dataclass(frozen=True)
class Declare:
    """Hold a liveliness token on `key` (until an ``Undeclare`` of it, or the process ends)."""

    key: str


@dataclass(frozen=True)
class Undeclare:
    """Drop the liveliness token on `key`."""

    key: str


@dataclass(frozen=True)
class Serve:
    """Answer the queries addressed to `key` (a queryable), until an ``Unserve`` of it."""

    key: str


@dataclass(frozen=True)
class Unserve:
    """Stop answering the queries addressed to `key`."""

    key: str


@dataclass(frozen=True)
class Watch:
    """Report the tokens present on keys matching `pattern`, then every appearance and disappearance."""

    pattern: str


Effect = Publish | Subscribe | Unsubscribe | Fetch | Declare | Undeclare | Serve | Unserve | Watch
