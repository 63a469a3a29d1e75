"""Rendering ``clusterstate status`` with rich: the members table, the cluster summary and the State's nodes.

Only reads what a node's API answered (``GET /cluster?all=1``, ``GET /state``); the node table is the one
``clusterstate demo`` shows (:mod:`.state_view`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from clusterstate.models import State

from .state_view import WIDE_COLUMNS, cluster_table, short_id

__all__ = ["members_table", "render", "short_session", "summary"]


def short_session(session: str | None) -> str:
    """``term/master`` with the master's id shortened as in every table; ``—`` for no session."""
    if session is None:
        return "—"
    term, _, master = session.partition("/")
    return f"{term}/{short_id(master)}"


def _cell(value: object) -> str:
    return "—" if value is None else str(value)


def members_table(members: Mapping[str, Mapping[str, Any] | None], asked: str) -> Table:
    """One row per member, by node id; ``*`` marks the node that was asked, ``no`` a member that did not answer."""
    table = Table(title="Members", title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("Node", no_wrap=True)
    table.add_column("Role", no_wrap=True)
    for name in ("Term", "Session", "Next", "Lag", "Pending"):
        table.add_column(name, justify="left" if name == "Session" else "right", no_wrap=True)
    table.add_column("Reachable", no_wrap=True)
    for node_id in sorted(members):
        status = members[node_id]
        label = f"{short_id(node_id)}{' *' if node_id == asked else ''}"
        if status is None:
            table.add_row(label, *["—"] * 6, Text("no", style="red"))
            continue
        role = Text(status["role"], style="bold" if status["role"] == "master" else "")
        table.add_row(
            label,
            role,
            _cell(status["term"]),
            short_session(status["session"]),
            _cell(status["next"]),
            _cell(status["lag"]),
            _cell(status["pending"]),
            Text("yes", style="green"),
        )
    return table


def summary(cluster: Mapping[str, Any], members: Mapping[str, Mapping[str, Any] | None], verdict: str) -> Text:
    """The cluster in one line: its name, the members that answered, the asked node's session and the verdict."""
    reachable = sum(status is not None for status in members.values())
    parts = [
        f"cluster {cluster['cluster']}",
        f"asked {short_id(cluster['node'])}",
        f"{reachable} of {len(members)} members answered",
        f"session {short_session(cluster['session'])}",
    ]
    if cluster["master_next"] is not None:
        parts.append(f"master next {cluster['master_next']}")
    text = Text(" · ".join(parts) + " · ")
    text.append(verdict, style="green" if verdict == "healthy" else "red")
    return text


def render(
    console: Console,
    cluster: Mapping[str, Any],
    members: Mapping[str, Mapping[str, Any] | None],
    verdict: str,
    state: State | None,
) -> RenderableType:
    """The members table, the summary line and, when the State was read, its node table."""
    parts: list[RenderableType] = [members_table(members, cluster["node"]), summary(cluster, members, verdict)]
    if state is not None:
        parts.append(cluster_table(state, wide=console.width >= WIDE_COLUMNS))
    return Group(*parts)
