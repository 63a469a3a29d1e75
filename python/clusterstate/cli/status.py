"""``clusterstate status``: the cluster as one node's HTTP API sees it (``GET /cluster?all=1``).

It shows every member's role, term, session, next index, lag and outbox, the cluster summary and the node's State
(``GET /state``); ``--json`` prints the ``/cluster?all=1`` reply as it came. ``--watch`` asks again every few
seconds until Ctrl-C. The exit status is the cluster's :class:`Health` (the last one seen with ``--watch``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from rich.console import RenderableType
from rich.live import Live
from rich.text import Text

from clusterstate.codec import decode_state
from clusterstate.errors import DecodeError
from clusterstate.flags import Subcommands, number
from clusterstate.models import State

from .console import stdout_console
from .status_view import render

__all__ = ["DEFAULT_API", "NAME", "Health", "add_parser", "check", "health", "members_of", "run"]

NAME = "status"
DEFAULT_API = "http://127.0.0.1:52421"

_MAX_TIMEOUT_S = 60.0
_MAX_WATCH_S = 3600.0
_WATCH_S = 2.0


class Health(IntEnum):
    """What ``clusterstate status`` exits with."""

    HEALTHY = 0
    """Every member that answered follows the same one session, and that session's master answered."""
    NO_MASTER = 1
    """No session among the members, or its master did not answer, or a member follows none."""
    SPLIT = 2
    """Two or more sessions among the members."""
    UNREACHABLE = 3
    """The API did not answer (or not with a cluster status)."""


VERDICTS = {
    Health.HEALTHY: "healthy",
    Health.NO_MASTER: "no master",
    Health.SPLIT: "split",
    Health.UNREACHABLE: "unreachable",
}


def health(members: Mapping[str, Mapping[str, Any] | None]) -> Health:
    """The health of a cluster from every member's status (``None``: the member did not answer)."""
    answered = [status for status in members.values() if status is not None]
    sessions = {status["session"] for status in answered} - {None}
    if len(sessions) > 1:
        return Health.SPLIT
    if not sessions:
        return Health.NO_MASTER
    (session,) = sessions
    master = session.partition("/")[2]
    if members.get(master) is None or any(status["session"] != session for status in answered):
        return Health.NO_MASTER
    return Health.HEALTHY


def members_of(cluster: Mapping[str, Any]) -> dict[str, Mapping[str, Any] | None]:
    """Every member's status from a ``/cluster?all=1`` reply; the asked node is one of them."""
    members: dict[str, Mapping[str, Any] | None] = dict(cluster["members_status"])
    members[cluster["node"]] = cluster
    return members


class _UnreachableError(Exception):
    """The API did not answer, or not with what was asked."""


def _get(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body: bytes = response.read()
    except urllib.error.HTTPError as error:
        raise _UnreachableError(f"{url} answered {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        raise _UnreachableError(f"cannot reach {url}: {reason}") from None
    return body


@dataclass(frozen=True)
class _Reply:
    raw: bytes
    cluster: dict[str, Any]
    members: dict[str, Mapping[str, Any] | None]


def _ask(api: str, timeout: float) -> _Reply:
    # Members get half the time to answer the node; the other half is for the node's own reply.
    query = urllib.parse.urlencode({"all": 1, "within": f"{timeout / 2:g}"})
    url = f"{api}/cluster?{query}"
    raw = _get(url, timeout)
    try:
        cluster = json.loads(raw)
        return _Reply(raw, cluster, members_of(cluster))
    except (ValueError, TypeError, KeyError) as error:
        raise _UnreachableError(f"{url} did not answer with a cluster status: {error}") from None


def _state(api: str, timeout: float) -> State | None:
    """The node's State, or None when it cannot be read (the rest of the view does not need it)."""
    with contextlib.suppress(_UnreachableError, DecodeError):
        return decode_state(_get(f"{api}/state", timeout))
    return None


def add_parser(commands: Subcommands) -> None:
    parser = commands.add_parser(
        NAME,
        help="show the cluster as a node's HTTP API sees it",
        description="Ask a node's HTTP API for every member's status and show the members, the cluster summary "
        "and the node's State. Exit status: 0 healthy, 1 no master, 2 split (two or more sessions), "
        "3 the API unreachable.",
    )
    parser.add_argument("--api", default=DEFAULT_API, help=f"the node's API (default {DEFAULT_API})")
    parser.add_argument("--json", action="store_true", help="print the /cluster?all=1 reply as JSON")
    parser.add_argument(
        "--watch",
        type=number(float, 0.0, _MAX_WATCH_S, low_open=True),
        nargs="?",
        const=_WATCH_S,
        default=None,
        metavar="SECONDS",
        help=f"ask again every SECONDS (default {_WATCH_S:g}) until Ctrl-C",
    )
    parser.add_argument(
        "--timeout",
        type=number(float, 0.0, _MAX_TIMEOUT_S, low_open=True),
        default=5.0,
        help=f"seconds to wait for the API, members included (default 5, at most {_MAX_TIMEOUT_S:g})",
    )


def check(args: argparse.Namespace) -> None:
    """No two flags bound each other: each is checked as it is parsed."""


def _view(api: str, reply: _Reply, timeout: float) -> RenderableType:
    verdict = VERDICTS[health(reply.members)]
    return render(stdout_console(), reply.cluster, reply.members, verdict, _state(api, timeout))


def _print_json(reply: _Reply) -> None:
    sys.stdout.write(reply.raw.decode() + "\n")
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    api = args.api.rstrip("/")
    if args.watch is not None:
        return int(_watch(args, api))
    try:
        reply = _ask(api, args.timeout)
    except _UnreachableError as error:
        print(f"clusterstate status: {error}", file=sys.stderr)
        return Health.UNREACHABLE
    if args.json:
        _print_json(reply)
    else:
        stdout_console().print(_view(api, reply, args.timeout))
    return health(reply.members)


def _watch(args: argparse.Namespace, api: str) -> Health:
    """Ask every ``args.watch`` seconds until Ctrl-C: JSON lines, or the view refreshed in place."""
    verdict = Health.UNREACHABLE
    live = None if args.json else Live(console=stdout_console(), auto_refresh=False)
    with contextlib.suppress(KeyboardInterrupt), live or contextlib.nullcontext():
        while True:
            try:
                reply = _ask(api, args.timeout)
            except _UnreachableError as error:
                verdict = Health.UNREACHABLE
                if live is None:
                    print(f"clusterstate status: {error}", file=sys.stderr)
                else:
                    live.update(Text(str(error), style="red"), refresh=True)
            else:
                verdict = health(reply.members)
                if live is None:
                    _print_json(reply)
                else:
                    live.update(_view(api, reply, args.timeout), refresh=True)
            time.sleep(args.watch)
    return verdict
