"""What the runtime's steps (producer, follower, leader) return for the shell to do: send, subscribe, fetch, answer.

The shell carries them out over a :class:`~clusterstate.runtime.transport.Transport` and feeds what comes back into
the steps; the steps themselves never touch the network.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Answer", "Effect", "Fetch", "Publish", "Subscribe", "Unsubscribe"]


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


Effect = Publish | Subscribe | Unsubscribe | Fetch
