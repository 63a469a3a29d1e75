"""Typed exceptions raised by clusterstate.

Every error the library raises on bad input derives from :class:`ClusterStateError`, and each
leaf also inherits the builtin a caller would naturally catch (``ValueError``), so code written
against plain Python keeps working.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ClusterStateError", "DecodeError", "EventIndexError"]


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
