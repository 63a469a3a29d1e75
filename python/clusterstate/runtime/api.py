"""The HTTP read API of a cluster node: a Starlette app over a :class:`NodeView`, served by hypercorn.

Routes (errors are JSON ``{"error": code, "detail": message}``, plus ``"index"`` where one applies):

- ``GET /state[?path=a/b]``: the node's State, camelCase JSON as the core wrote it; ``path`` selects a sub-tree by
  its camelCase keys (list items by position), 404 ``not_found`` for a path that does not exist.
- ``GET /cluster[?all=1][&within=S]``: this node's :meth:`NodeView.status`; with ``all=1`` also
  ``"members_status"``, every live member's status (``null``: no answer within ``S`` seconds, default 1).
- ``GET /events?since=N[&limit=M]``: NDJSON, the local log's ``IndexedEvent`` lines from ``N`` (at most ``M``,
  1 to 10,000, default 1,000); 400 ``bad_request``, 410 ``snapshot_required`` (``index``: the first retained index),
  416 ``index_ahead`` (``index``: the node's next index: the range starts past the end of the log).
- ``GET /healthz``: 200 ``{"ok": true}`` while the node follows or serves a session and misses nothing, else 503
  ``{"ok": false, "reason": ...}``.
- ``GET /node_id``: the node id as a JSON string.
- ``GET /metrics``: Prometheus text (:mod:`.metrics`).
- ``POST /debug/emit[?within=S]``, only in an app built with ``debug=True``: the body is one event; it is pushed
  through the node's outbox and ``{"index": next}`` returned once released; 400 ``bad_request`` (not an event, or
  one the outbox refuses), 504 ``timeout`` (not released within ``S`` seconds, default 10).

``/state`` and ``/events`` carry the header ``X-Clusterstate-Index``: the node's next index. Every endpoint is a
coroutine, so the view is only ever called on the event loop's thread, where the cores live.
"""

from __future__ import annotations

import json
import logging
import math
import socket
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast

import anyio
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from clusterstate.codec import decode_event
from clusterstate.errors import DecodeError, EventRefusedError, IndexAheadError, SnapshotRequiredError
from clusterstate.models import Event

from .metrics import CONTENT_TYPE, metrics_text
from .wire import decode_page_request

if TYPE_CHECKING:
    from hypercorn.typing import ASGIFramework

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "INDEX_HEADER",
    "NodeView",
    "build_app",
    "health_reason",
    "select_path",
    "serve",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 52421
INDEX_HEADER = "X-Clusterstate-Index"
NDJSON = "application/x-ndjson"

_DEFAULT_LIMIT = 1000
_STATUSES_WITHIN_S = 1.0
_EMIT_WITHIN_S = 10.0
_MAX_WITHIN_S = 60.0
_SERVING_ROLES = frozenset({"follower", "master"})

_log = logging.getLogger(__name__)


class NodeView(Protocol):
    """What the API reads of a running node (``clusterstate node`` implements it)."""

    @property
    def node_id(self) -> str: ...

    def status(self) -> dict[str, Any]:
        """This node's summary: ``node, cluster, role, term, session, next, master_next, lag, missing, commit,
        pending, members, masters, lineage, dropped, counters`` (docs/runtime.md, "HTTP API")."""
        ...

    def state_json(self) -> bytes:
        """The node's State, camelCase JSON (``CoreState.model_dump_json(by_alias=True)``)."""
        ...

    def events_since(self, since: int, limit: int) -> list[bytes]:
        """``IndexedEvent`` JSON lines of the local log; raises ``SnapshotRequiredError`` / ``IndexAheadError``."""
        ...

    async def statuses(self, within: float) -> dict[str, dict[str, Any] | None]:
        """Every live member's status, ``None`` for a member that did not answer within ``within`` seconds."""
        ...

    async def emit(self, event: Event, within: float) -> int:
        """Push ``event`` through the node's outbox and wait until it is released; returns the node's next index
        then. ``TimeoutError`` when it is not released within ``within`` seconds."""
        ...


class _BadRequestError(Exception):
    """A request parameter the route cannot take; answered 400 with the message."""


def _error(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status)


def select_path(document: Any, path: str) -> Any:
    """The sub-tree of ``document`` at ``path`` (``/``-separated keys; list items by position; empty parts ignored).

    Raises:
        KeyError: no such key or item, with the path walked so far.
    """
    node = document
    walked: list[str] = []
    for part in filter(None, path.split("/")):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isascii() and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(f"no {part!r} under {'/'.join(walked) or 'the State'}")
        walked.append(part)
    return node


def health_reason(status: Mapping[str, Any]) -> str | None:
    """Why a node with this status is not healthy, or ``None`` when it follows or serves a session and misses
    nothing."""
    if status["session"] is None:
        return f"no session (role {status['role']})"
    if status["role"] not in _SERVING_ROLES:
        return f"role {status['role']} in session {status['session']}"
    if status["missing"] is not None:
        return f"missing events from index {status['missing']}"
    return None


def _within(request: Request, default: float) -> float:
    text = request.query_params.get("within")
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= _MAX_WITHIN_S):
        raise _BadRequestError(f"within must be a number of seconds in (0, {_MAX_WITHIN_S:g}], not {text!r}")
    return value


def build_app(view: NodeView, *, debug: bool = False) -> Starlette:
    """The API over ``view``; ``debug`` adds ``POST /debug/emit``."""

    def index_header() -> dict[str, str]:
        return {INDEX_HEADER: str(view.status()["next"])}

    async def state(request: Request) -> Response:
        body = view.state_json()
        headers = index_header()
        path = request.query_params.get("path", "")
        if not path.strip("/"):
            return Response(body, media_type="application/json", headers=headers)
        try:
            selected = select_path(json.loads(body), path)
        except KeyError as missing:
            return _error(404, "not_found", missing.args[0])
        return JSONResponse(selected, headers=headers)

    async def cluster(request: Request) -> Response:
        every = request.query_params.get("all", "0")
        if every not in ("0", "1"):
            raise _BadRequestError(f"all must be 0 or 1, not {every!r}")
        within = _within(request, _STATUSES_WITHIN_S)
        summary = view.status()
        if every == "1":
            summary = {**summary, "members_status": await view.statuses(within)}
        return JSONResponse(summary)

    async def events(request: Request) -> Response:
        parameters = dict(request.query_params)
        parameters.setdefault("limit", str(_DEFAULT_LIMIT))
        try:
            since, limit = decode_page_request(parameters)
        except DecodeError as bad:
            raise _BadRequestError(str(bad)) from None
        try:
            lines = view.events_since(since, limit)
        except SnapshotRequiredError as gone:
            return _error(410, "snapshot_required", str(gone), index=gone.first_index)
        except IndexAheadError as ahead:
            return _error(416, "index_ahead", str(ahead), index=ahead.next_index)
        body = b"".join(line + b"\n" for line in lines)
        return Response(body, media_type=NDJSON, headers=index_header())

    async def healthz(_: Request) -> Response:
        reason = health_reason(view.status())
        if reason is None:
            return JSONResponse({"ok": True})
        return JSONResponse({"ok": False, "reason": reason}, status_code=503)

    async def node_id(_: Request) -> Response:
        return JSONResponse(view.node_id)

    async def metrics(_: Request) -> Response:
        return PlainTextResponse(metrics_text(view.status()), media_type=CONTENT_TYPE)

    async def emit(request: Request) -> Response:
        within = _within(request, _EMIT_WITHIN_S)
        try:
            event = decode_event(await request.body())
        except DecodeError as bad:
            raise _BadRequestError(str(bad)) from None
        try:
            index = await view.emit(event, within)
        except EventRefusedError as refused:
            raise _BadRequestError(str(refused)) from None
        except TimeoutError:
            return _error(504, "timeout", f"the event was not released within {within:g} s")
        return JSONResponse({"index": index})

    async def bad_request(_: Request, exc: Exception) -> Response:
        return _error(400, "bad_request", str(exc))

    routes = [
        Route("/state", state, methods=["GET"]),
        Route("/cluster", cluster, methods=["GET"]),
        Route("/events", events, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/node_id", node_id, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    if debug:
        routes.append(Route("/debug/emit", emit, methods=["POST"]))
    return Starlette(routes=routes, exception_handlers={_BadRequestError: bad_request})


async def serve(
    view: NodeView,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    debug: bool = False,
    ready: Callable[[int], object] | None = None,
    shutdown: anyio.Event,
) -> None:
    """Serve the API over ``view`` on ``host:port`` until ``shutdown`` is set (needs anyio's asyncio backend).

    Run it in the node's task group. ``ready`` is called with the port once the socket listens (the port the
    system chose when ``port`` is 0). Connections made from then on are served.

    Raises:
        OSError: the address cannot be bound (e.g. the port is taken).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.create_server((host, port), family=family)
    bound = int(listener.getsockname()[1])
    config = Config()
    # hypercorn takes the socket over by its descriptor and closes it when it stops.
    config.bind = [f"fd://{listener.detach()}"]
    config.errorlog = _log
    if ready is not None:
        ready(bound)
    # Starlette's ASGI types are looser than hypercorn's own; the app is an ASGI 3 application.
    app = cast("ASGIFramework", build_app(view, debug=debug))
    await hypercorn_serve(app, config, shutdown_trigger=shutdown.wait)
