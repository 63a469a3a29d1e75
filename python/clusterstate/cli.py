"""The ``clusterstate`` command.

Subcommands:
    demo: generate a seeded cluster trace, fold it through the reference reducer and show the
        resulting State (a table of nodes and a summary), or print it as JSON.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from clusterstate.display import render
from clusterstate.models import IndexedEvent, State
from clusterstate.reference import apply
from clusterstate.trace import TraceConfig, generate

__all__ = ["demo_config", "fold_with_progress", "main"]

_PIPE_WIDTH = 160


def demo_config(nodes: int, seconds: float, seed: int, silent: int | None = None) -> TraceConfig:
    """The trace ``clusterstate demo`` shows: by default one node (if there are 3 or more) crashes.

    Raises:
        ValueError: the numbers do not make a valid trace.
    """
    if silent is None:
        silent = 1 if nodes >= 3 else 0
    return TraceConfig(nodes=nodes, duration_s=seconds, seed=seed, silent_nodes=silent)


def fold_with_progress(events: Sequence[IndexedEvent], console: Console) -> tuple[State, float]:
    """Fold ``events`` from an empty State with a progress bar on ``console``; returns the State and seconds spent."""
    state = State()
    progress = Progress(
        TextColumn("folding"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("events"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    start = time.perf_counter()
    with progress:
        for event in progress.track(events, total=len(events)):
            state = apply(state, event)
    return state, time.perf_counter() - start


def _demo(args: argparse.Namespace) -> int:
    try:
        config = demo_config(args.nodes, args.seconds, args.seed, args.silent)
    except ValueError as error:
        print(f"clusterstate demo: {error}", file=sys.stderr)
        return 2
    events = generate(config)
    state, seconds = fold_with_progress(events, Console(stderr=True))
    if args.json:
        sys.stdout.write(state.model_dump_json() + "\n")
    else:
        render(_stdout_console(), state, len(events), seconds)
    return 0


def _stdout_console() -> Console:
    # Piped output has no width; rich would assume 80 columns and squeeze the table. Rows that
    # stay whole are more useful in a log or a file (COLUMNS still wins when set).
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=_PIPE_WIDTH)
    return console


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clusterstate", description="Event-sourced cluster state core.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="fold a generated cluster trace and show the resulting State",
        description="Generate a seeded trace of a simulated cluster, fold it through the reference reducer "
        "and show the State it ends in.",
    )
    demo.add_argument("--nodes", type=int, default=8, help="cluster size (default: 8)")
    demo.add_argument("--seconds", type=float, default=120.0, help="simulated seconds (default: 120)")
    demo.add_argument("--seed", type=int, default=0, help="trace seed (default: 0)")
    demo.add_argument(
        "--silent", type=int, default=None, help="nodes that crash during the trace (default: 1 from 3 nodes up)"
    )
    demo.add_argument("--json", action="store_true", help="print the final State as JSON instead of tables")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
