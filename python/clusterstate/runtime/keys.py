"""The key expressions of one cluster, under ``cs/{cluster}/v1/`` (pure).

The protocol version is part of every key, so nodes speaking another version never match. Keys that
belong to one master session carry it as ``s/{term}/{master_node_id}``: a follower subscribes to its
current session's keys only, so the frames, acknowledgements and heartbeats of a deposed master never
reach it.

Cluster names and node ids are single key chunks: an ASCII letter or digit, then letters, digits,
``_``, ``-``, ``.`` or ``:``; at most 128 characters. Anything else (``/``, the wildcards ``*``, the
zenoh specials ``$ ? #``, spaces, an empty string) raises :class:`InvalidNameError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidNameError, InvalidRecordError

__all__ = ["VERSION", "Keys", "Session", "matches", "validate_name"]

VERSION = "v1"
MAX_NAME = 128
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")


def validate_name(what: str, value: str) -> str:
    """`value` if it can be one key chunk, else :class:`InvalidNameError` naming `what` and the value."""
    if not value:
        raise InvalidNameError(what, value, "empty")
    if len(value) > MAX_NAME:
        raise InvalidNameError(what, value, f"longer than {MAX_NAME} characters")
    if not _NAME.fullmatch(value):
        raise InvalidNameError(what, value, "use ASCII letters, digits, '_', '-', '.', ':' (not first)")
    return value


@dataclass(frozen=True, order=True)
class Session:
    """A master session: the term it was elected in and the node serving it (ordered by term, then node)."""

    term: int
    master: str

    def __post_init__(self) -> None:
        if self.term < 0:
            raise InvalidRecordError("term", self.term)
        validate_name("node id", self.master)

    def __str__(self) -> str:
        return f"{self.term}/{self.master}"


@dataclass(frozen=True)
class Keys:
    """Every key expression of the cluster `cluster`."""

    cluster: str

    def __post_init__(self) -> None:
        validate_name("cluster name", self.cluster)

    @property
    def prefix(self) -> str:
        return f"cs/{self.cluster}/{VERSION}"

    # Liveliness tokens.
    def member(self, node: str) -> str:
        return f"{self.prefix}/member/{validate_name('node id', node)}"

    def members(self) -> str:
        return f"{self.prefix}/member/*"

    def master(self, session: Session) -> str:
        return f"{self.prefix}/master/{session}"

    def masters(self) -> str:
        return f"{self.prefix}/master/*/*"

    # Not tied to a session.
    def election(self) -> str:
        return f"{self.prefix}/election"

    def local(self, node: str) -> str:
        return f"{self.prefix}/local/{validate_name('node id', node)}"

    def locals(self) -> str:
        return f"{self.prefix}/local/*"

    def replica_events(self, node: str) -> str:
        return f"{self.prefix}/replica/{validate_name('node id', node)}/events"

    def status(self, node: str) -> str:
        return f"{self.prefix}/status/{validate_name('node id', node)}"

    def statuses(self) -> str:
        return f"{self.prefix}/status/*"

    # One master session.
    def session(self, session: Session) -> str:
        return f"{self.prefix}/s/{session}"

    def global_(self, session: Session) -> str:
        return f"{self.session(session)}/global"

    def ack(self, session: Session, node: str) -> str:
        return f"{self.session(session)}/ack/{validate_name('node id', node)}"

    def heartbeat(self, session: Session) -> str:
        return f"{self.session(session)}/heartbeat"

    def progress(self, session: Session, node: str) -> str:
        return f"{self.session(session)}/progress/{validate_name('node id', node)}"

    def progresses(self, session: Session) -> str:
        return f"{self.session(session)}/progress/*"

    def events(self, session: Session) -> str:
        return f"{self.session(session)}/events"

    def snapshot(self, session: Session) -> str:
        return f"{self.session(session)}/snapshot"

    # Reading keys back.
    def member_of(self, key: str) -> str | None:
        """The node id of a member token key, or None for any other key."""
        parts = self._tail(key, "member")
        return parts[0] if parts is not None and len(parts) == 1 else None

    def session_of(self, key: str) -> Session | None:
        """The session of a master token key, or None for any other key (or a malformed term)."""
        parts = self._tail(key, "master")
        if parts is None or len(parts) != 2 or not parts[0].isdigit():
            return None
        return Session(int(parts[0]), parts[1])

    def _tail(self, key: str, kind: str) -> list[str] | None:
        head = f"{self.prefix}/{kind}/"
        if not key.startswith(head):
            return None
        parts = key[len(head) :].split("/")
        return parts if all(_NAME.fullmatch(p) for p in parts) else None


def matches(pattern: str, key: str) -> bool:
    """Whether the concrete `key` matches `pattern`, where a ``*`` chunk matches one chunk and a ``**``
    chunk matches zero or more (the subset of zenoh key expressions the runtime uses)."""
    return _match(pattern.split("/"), key.split("/"))


def _match(pattern: list[str], key: list[str]) -> bool:
    if not pattern:
        return not key
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match(rest, key[i:]) for i in range(len(key) + 1))
    if not key:
        return False
    return (head in ("*", key[0])) and _match(rest, key[1:])
