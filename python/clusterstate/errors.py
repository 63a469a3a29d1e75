"""Typed exceptions raised by clusterstate.

Every error the library raises on bad input derives from :class:`ClusterStateError`, and each
leaf also inherits the builtin a caller would naturally catch (``ValueError`` for bad input, an
``OSError`` for the log's files, ``BlockingIOError`` for a full outbox), so code written against
plain Python keeps working. The Rust bindings raise these classes (mapped in
``rust/py/src/errors.rs``).
"""

from __future__ import annotations

import errno
from typing import Any

__all__ = [
    "ClusterStateError",
    "DecodeError",
    "EventIndexError",
    "EventRefusedError",
    "IndexAheadError",
    "LogClosedError",
    "LogCorruptedError",
    "LogError",
    "LogFullError",
    "LogIOError",
    "LogIndexError",
    "LogLockedError",
    "LogNotFoundError",
    "LogReadOnlyError",
    "LogUsageError",
    "NoLogError",
    "OptionsError",
    "OutboxFullError",
    "SnapshotRequiredError",
]


class ClusterStateError(Exception):
    """Base class of every error raised by clusterstate."""


class DecodeError(ClusterStateError, ValueError):
    """Bytes or objects that do not decode to the expected model.

    Raised for malformed JSON, an unknown union tag, a missing or extra field, or a value of the
    wrong type. ``errors`` holds the individual problems (pydantic's error dicts) when known.
    """

    def __init__(self, what: str, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(f"invalid {what}: {message}")
        self.what = what
        self.errors = errors or []


class EventIndexError(ClusterStateError, ValueError):
    """An indexed event whose ``idx`` is not the one the State expects next.

    The State is left unchanged; the caller decides whether to buffer, drop or request a resend.
    """

    def __init__(self, expected: int, got: int) -> None:
        kind = "duplicate or stale" if got < expected else "gap"
        super().__init__(f"event index {got} does not follow the state ({kind}): expected {expected}")
        self.expected = expected
        self.got = got


class OptionsError(ClusterStateError, ValueError):
    """A setting a component cannot work with, e.g. a staleness period that is not a finite number
    of seconds > 0, a threshold or capacity < 1, or resend times out of order. Nothing was built."""


# The event log. Each error also inherits the builtin a caller would catch for a file.


class LogError(ClusterStateError):
    """Base class of the event log's errors (``clusterstate.EventLog``)."""


class LogNotFoundError(LogError, FileNotFoundError):
    """The log directory does not exist; open with ``create=True`` to make it."""

    def __init__(self, path: str) -> None:
        super().__init__(errno.ENOENT, "event log directory does not exist (open with create=True)", path)


class LogLockedError(LogError, OSError):
    """Another ``EventLog`` (in this process or another) holds the directory: one writer per log."""

    def __init__(self, path: str) -> None:
        super().__init__(errno.EAGAIN, "event log is locked by another writer", path)


class LogFullError(LogError, OSError):
    """The disk is full (``ENOSPC``). The records that could not be written are not in the log."""

    def __init__(self, path: str) -> None:
        super().__init__(errno.ENOSPC, "disk full while writing the event log", path)


class LogIOError(LogError, OSError):
    """Any other operating-system error while reading or writing the log."""


class LogCorruptedError(LogError, ValueError):
    """A damaged record, segment header or gap that is not a torn tail; nothing after it is trusted.

    ``segment`` is the file and ``offset`` the byte offset of the damage. Opening with
    ``repair=True`` cuts the log there (keeping the cut bytes in a side file).
    """

    def __init__(self, segment: str, offset: int, reason: str) -> None:
        super().__init__(f"event log corrupted in {segment} at byte {offset}: {reason}")
        self.segment = segment
        self.offset = offset
        self.reason = reason


class LogIndexError(LogError, EventIndexError):
    """An appended event whose ``idx`` is not the log's next index. Nothing was appended."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(expected, got)
        self.args = (f"appended event index {got} is not the log's next index {expected}",)


class LogUsageError(LogError, ValueError):
    """A request the log cannot serve, e.g. a range before its start or a snapshot of a State it does not hold."""


class LogClosedError(LogError, ValueError):
    """The log was closed."""


class LogReadOnlyError(LogUsageError):
    """A write (append, snapshot) to a log opened with ``read_only=True``; nothing was written."""

    def __init__(self, path: str) -> None:
        super().__init__(f"event log {path} was opened read-only: it cannot be written")
        self.path = path


# The producer side (``ProducerOutbox``).


class OutboxFullError(ClusterStateError, BlockingIOError):
    """``ProducerOutbox.push`` refused an event: ``capacity`` envelopes wait for an acknowledgement.

    Nothing was numbered or kept; back off and push the event again once acknowledgements free room.
    Like a non-blocking write into a full buffer (``io.BufferedWriter``, a socket), it is a
    ``BlockingIOError`` (``EAGAIN``): the call would have to wait, so try again later.
    """

    def __init__(self, capacity: int) -> None:
        super().__init__(
            errno.EAGAIN, f"producer outbox is full ({capacity} unacknowledged envelopes): back off until room frees"
        )
        self.capacity = capacity


class EventRefusedError(ClusterStateError, ValueError):
    """``ProducerOutbox.push`` refused an event it must never send: one the master would refuse as
    spoofed (about another node than the outbox's, or a node disconnection not from the session's
    master), or one past the last sequence number of the session. Nothing was numbered or kept."""


# The event log a ``MasterCore`` or a ``NodeCore`` (its replica log) owns: requests it cannot serve.


class NoLogError(LogUsageError):
    """The ``MasterCore`` or ``NodeCore`` was created without an event log: nothing to page through or snapshot."""


class SnapshotRequiredError(LogUsageError):
    """A catch-up page before the log's first retained index: the node must join from a snapshot instead."""

    def __init__(self, idx: int, first_index: int) -> None:
        super().__init__(
            f"index {idx} is before the event log's first retained index {first_index}: join from a snapshot"
        )
        self.idx = idx
        self.first_index = first_index


class IndexAheadError(LogUsageError):
    """A catch-up page past the log's next index (the asking node followed another master, or asks too far ahead)."""

    def __init__(self, idx: int, next_index: int) -> None:
        super().__init__(f"index {idx} is past the event log's next index {next_index}")
        self.idx = idx
        self.next_index = next_index
