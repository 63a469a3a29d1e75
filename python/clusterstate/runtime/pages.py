"""Answering a catch-up page query from a log (pure): the master's ``s/{S}/events`` and every node's
``replica/{node}/events`` answer the same way."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from clusterstate.errors import DecodeError, IndexAheadError, SnapshotRequiredError

from .actions import Answer
from .wire import PageError, decode_page_request, encode_page_error, join_frame

__all__ = ["answer_page"]


def answer_page(events_since: Callable[[int, int], list[bytes]], parameters: Mapping[str, str]) -> Answer:
    """The reply to a page query with `parameters` ``since`` and ``limit``: a frame of ``events_since(since,
    limit)`` (empty when caught up), or an error reply (``bad_request``, ``snapshot_required``, ``index_ahead``)."""
    try:
        since, limit = decode_page_request(parameters)
    except DecodeError:
        return Answer(encode_page_error(PageError("bad_request")), ok=False)
    try:
        page = events_since(since, limit)
    except SnapshotRequiredError as e:
        return Answer(encode_page_error(PageError("snapshot_required", e.first_index)), ok=False)
    except IndexAheadError as e:
        return Answer(encode_page_error(PageError("index_ahead", e.next_index)), ok=False)
    return Answer(join_frame(page))
