"""``clusterstate demo`` (without ``--offline``): a real 3-node cluster on this machine, its master SIGKILLed.

Three ``clusterstate node`` processes (:class:`~clusterstate.runtime.local.LocalCluster`: loopback, free ports, a
temporary data directory each, removed at the end) run with their real gatherers, so every State shows this
machine's hardware three times over. :func:`~clusterstate.runtime.failover.run_failover` pushes events through
every node's outbox, SIGKILLs the master part-way and checks that every released event is in the new master's log
exactly once and that every State equals the reference replay of that log.

On a terminal the members table refreshes in place; what the run waits for goes to stderr one line per step. At
the end come the members, the State's nodes and the summary (``--json``: the summary as JSON). The exit status is
0 when nothing was lost and every State is equal, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from clusterstate.codec import decode_state
from clusterstate.errors import DecodeError
from clusterstate.runtime.failover import Failover, run_failover
from clusterstate.runtime.local import LocalCluster

from .console import stdout_console
from .state_view import WIDE_COLUMNS, cluster_table
from .status_view import members_table

__all__ = ["NAMES", "NODE_FLAGS", "run_cluster", "summary"]

NAMES = ("node-a", "node-b", "node-c")
NODE_FLAGS = ("--debug-api", "--join-wait-s=1", "--lease-ms=1000")
"""Every node serves ``POST /debug/emit``, campaigns after 1 s without a master, and drops a dead peer after 1 s."""

_REDRAW_S = 0.25
_STATUS_TIMEOUT_S = 0.5


def _members(cluster: LocalCluster) -> dict[str, Mapping[str, Any] | None]:
    return {name: node.status(_STATUS_TIMEOUT_S) if node.running else None for name, node in cluster.nodes.items()}


def summary(cluster: LocalCluster, failover: Failover) -> dict[str, Any]:
    """The run in numbers, as ``--json`` prints it."""
    verdict = failover.verdict
    return {
        "nodes": list(cluster.names),
        "old_master": failover.old_master,
        "new_master": failover.new_master,
        "term_before": failover.term_before,
        "term_after": failover.term_after,
        "released": failover.released,
        "log_length": verdict.log_length,
        "failover_s": round(failover.to_master_s, 3),
        "settled_s": round(failover.to_settled_s, 3),
        "lost": len(verdict.lost) + len(verdict.duplicated),
        "missing": list(verdict.lost),
        "duplicated": [event_id for event_id, _ in verdict.duplicated],
        "log_contiguous": verdict.contiguous,
        "states_equal": verdict.states_equal,
        "states_differing": list(verdict.differing),
    }


class _View:
    """The live members table (on a terminal) and one stderr line per step of the run."""

    def __init__(self, cluster: LocalCluster, console: Console, live: Live | None) -> None:
        self._cluster = cluster
        self._console = console
        self._live = live
        self._started = time.monotonic()
        self._step = ""
        self._drawn = 0.0

    def __call__(self, step: str) -> None:
        self.say(step)
        if self._live is not None and time.monotonic() - self._drawn >= _REDRAW_S:
            self._drawn = time.monotonic()
            self._live.update(self.members(step), refresh=True)

    def say(self, step: str) -> None:
        """One stderr line for `step`, unless it is the step said last."""
        if step != self._step:
            self._step = step
            print(f"clusterstate demo: {time.monotonic() - self._started:5.1f}s {step}", file=sys.stderr, flush=True)

    def members(self, caption: str) -> RenderableType:
        return Group(members_table(_members(self._cluster), asked=""), Text(caption, style="dim"))


def _final_view(console: Console, view: _View, cluster: LocalCluster, failover: Failover) -> RenderableType:
    """The members after the failover, the new master's State (this machine's hardware, once per node) and the
    summary; read while the nodes still run."""
    parts = [view.members(f"after the failover: {failover.new_master} is master")]
    with contextlib.suppress(OSError, DecodeError):
        state = decode_state(cluster.nodes[failover.new_master].get_bytes("/state"))
        parts.append(cluster_table(state, wide=console.width >= WIDE_COLUMNS))
    figures = summary(cluster, failover)
    parts.append(
        Text(
            f"{figures['released']:,} events released · master {failover.old_master} SIGKILLed (term "
            f"{failover.term_before}) → {failover.new_master} master (term {failover.term_after}) in "
            f"{figures['failover_s']:.2f} s, every node following it in {figures['settled_s']:.2f} s"
        )
    )
    lost = Text(f"events lost: {figures['lost']}", style="green" if figures["lost"] == 0 else "bold red")
    equal = figures["states_equal"]
    states = Text(f"States equal: {'yes' if equal else 'no'}", style="green" if equal else "bold red")
    parts.append(Text(" · ").join([lost, states, Text(f"log {figures['log_length']:,} events")]))
    return Group(*parts)


def run_cluster(args: argparse.Namespace) -> int:
    """Run the live demo; the exit status."""
    console = stdout_console()
    with tempfile.TemporaryDirectory(prefix="clusterstate-demo-") as root:
        cluster = LocalCluster(Path(root), NAMES, cluster=f"demo-{uuid.uuid4().hex[:8]}", extra=NODE_FLAGS)
        terminal = console.is_terminal and not args.json
        live = Live(console=console, auto_refresh=False, transient=True) if terminal else None
        view = _View(cluster, console, live)
        try:
            view(f"starting {len(NAMES)} nodes in {root}")
            cluster.start_all()
            with live or contextlib.nullcontext():
                failover = run_failover(cluster, on=view)
            result = None if args.json else _final_view(console, view, cluster, failover)
        except TimeoutError as error:
            print(f"clusterstate demo: {error}", file=sys.stderr)
            return 1
        finally:
            view.say("stopping the nodes")
            cluster.stop_all()
    if result is None:
        indent = args.indent if args.indent is not None or not sys.stdout.isatty() else 2
        sys.stdout.write(json.dumps(summary(cluster, failover), indent=indent) + "\n")
    else:
        console.print(result)
    return 0 if failover.ok else 1
