"""The ``clusterstate`` command.

Subcommands:
    demo: generate a seeded cluster trace, fold it through the Rust reducer (``--reducer reference``:
        the pure-Python one) and show the resulting State (a table of nodes and a summary), or print
        it as JSON. This machine joins
        the generated peers as one more node: one real sample of each of its monitors is appended
        to the trace (``--no-local`` leaves it out, for output that depends on the seed alone).
    gather: this machine's hardware monitors, live in a table refreshing in place (Ctrl-C or
        ``--duration`` stops it), or ``--json``: one sample of each monitor as a JSON list of
        ``NodeGatheredInfo`` events (exo's wire format, in monitor order).
    simulate: run the liveness fault scenarios (simulated time) and compare exo's wall-clock
        detector, the first event-index proposal and clusterstate's StalenessTracker: a table per
        detector, a PNG of detection latencies and a Markdown table (docs/liveness.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, get_args

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from clusterstate._core import CoreState, apply_many
from clusterstate.display import render
from clusterstate.gatherers import GathererSettings
from clusterstate.gatherers.local import append_local, gather_json, local_node_id, run_live, sample_local
from clusterstate.models import IndexedEvent, NodeId, State
from clusterstate.reference import apply
from clusterstate.trace import TraceConfig, generate

__all__ = ["demo_config", "fold_with_progress", "main"]

Reducer = Literal["rust", "reference"]

_PIPE_WIDTH = 160
_MAX_LOSS = 0.9
"""The highest loss or hold-back rate ``simulate --loss`` / ``--reorder`` takes."""
_LOCAL_DEADLINE_S = 2.0
"""How long ``demo`` waits for this machine's sample (a slow monitor is left out, the demo stays fast)."""


def demo_config(nodes: int, seconds: float, seed: int, silent: int | None = None) -> TraceConfig:
    """The trace ``clusterstate demo`` shows: by default one node (if there are 3 or more) crashes.

    Raises:
        ValueError: the numbers do not make a valid trace.
    """
    if silent is None:
        silent = 1 if nodes >= 3 else 0
    return TraceConfig(nodes=nodes, duration_s=seconds, seed=seed, silent_nodes=silent)


_BATCH = 2_000
"""Events per ``apply_many`` call when the Rust reducer folds (the progress bar moves per batch)."""


def fold_with_progress(
    events: Sequence[IndexedEvent], console: Console, *, reducer: Reducer = "rust"
) -> tuple[State, float]:
    """Fold ``events`` from an empty State with a progress bar on ``console``.

    ``reducer`` is ``"rust"`` (``clusterstate.apply_many`` in batches) or ``"reference"`` (the
    pure-Python ``clusterstate.reference.apply``, event by event). Returns the State as a pydantic
    model and the seconds spent folding.
    """
    progress = Progress(
        TextColumn("folding"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("events"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        task = progress.add_task("fold", total=len(events))
        start = time.perf_counter()
        if reducer == "rust":
            core = CoreState()
            for first in range(0, len(events), _BATCH):
                batch = events[first : first + _BATCH]
                core = apply_many(core, batch)
                progress.advance(task, len(batch))
            seconds = time.perf_counter() - start
            return core.to_pydantic(), seconds
        state = State()
        for event in events:
            state = apply(state, event)
            progress.advance(task)
        return state, time.perf_counter() - start


def _demo(args: argparse.Namespace) -> int:
    try:
        config = demo_config(args.nodes, args.seconds, args.seed, args.silent)
    except ValueError as error:
        print(f"clusterstate demo: {error}", file=sys.stderr)
        return 2
    events = generate(config)
    if not args.no_local:
        local = sample_local(settings=GathererSettings(create_config=False), deadline_s=_LOCAL_DEADLINE_S)
        for name, failure in local.failures.items():
            print(f"clusterstate demo: local monitor {name} failed: {failure}", file=sys.stderr)
        events = append_local(events, local.events)
    state, seconds = fold_with_progress(events, Console(stderr=True), reducer=args.reducer)
    if args.json:
        sys.stdout.write(state.model_dump_json() + "\n")
    else:
        render(_stdout_console(), state, len(events), seconds)
    return 0


def _gather(args: argparse.Namespace) -> int:
    if args.duration is not None and args.duration <= 0:
        print("clusterstate gather: --duration must be positive", file=sys.stderr)
        return 2
    settings = GathererSettings()
    if args.disk_path is not None:
        settings = dataclasses.replace(settings, disk_path=args.disk_path)
    if args.config_dir is not None:
        settings = dataclasses.replace(settings, config_dir=args.config_dir)
    node_id = NodeId(args.node_id) if args.node_id else local_node_id()
    if not args.json:
        run_live(_stdout_console(), node_id, settings, args.duration)
        return 0
    result = sample_local(node_id, settings)
    for name, failure in result.failures.items():
        print(f"clusterstate gather: monitor {name} failed: {failure}", file=sys.stderr)
    sys.stdout.write(gather_json(result.events) + "\n")
    return 0 if result.events else 1


def _simulate_lossy(args: argparse.Namespace) -> int:
    from clusterstate.simulation.lossy import LOSS_SWEEP, LossyConfig, lossy_markdown, lossy_table, run_lossy

    rates = args.loss or list(LOSS_SWEEP)
    for flag, values in (("--loss", rates), ("--reorder", [args.reorder])):
        if not all(math.isfinite(value) and 0.0 <= value <= _MAX_LOSS for value in values):
            print(f"clusterstate simulate: {flag} must be a number in [0, {_MAX_LOSS}]", file=sys.stderr)
            return 2
    try:
        configs = [
            LossyConfig(loss=rate, reorder=args.reorder, seed=args.seed, duration_s=args.duration) for rate in rates
        ]
    except ValueError as error:
        print(f"clusterstate simulate: {error}", file=sys.stderr)
        return 2
    results = [run_lossy(config) for config in configs]
    console = _stdout_console()
    lossy_table(results, console)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "liveness-lossy.md").write_text(lossy_markdown(results), encoding="utf-8")
    console.print(f"table: {output / 'liveness-lossy.md'}")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    if args.loss is not None:
        return _simulate_lossy(args)
    from clusterstate.simulation import SimulationConfig, simulate  # only this command needs it
    from clusterstate.simulation.report import markdown_table, plot, tables

    try:
        config = SimulationConfig(nodes=args.nodes, seed=args.seed, duration_s=args.duration)
        results = simulate(config)
    except ValueError as error:
        print(f"clusterstate simulate: {error}", file=sys.stderr)
        return 2
    console = _stdout_console()
    tables(results, config, console)
    output = Path(args.output)
    path = plot(results, config, output / "liveness.png")
    (output / "liveness-results.md").write_text(markdown_table(results), encoding="utf-8")
    console.print(f"plot: {path}; table: {output / 'liveness-results.md'}")
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
        description="Generate a seeded trace of a simulated cluster, fold it through the reducer "
        "and show the State it ends in.",
    )
    demo.add_argument("--nodes", type=int, default=8, help="cluster size (default: 8)")
    demo.add_argument("--seconds", type=float, default=120.0, help="simulated seconds (default: 120)")
    demo.add_argument("--seed", type=int, default=0, help="trace seed (default: 0)")
    demo.add_argument(
        "--silent", type=int, default=None, help="nodes that crash during the trace (default: 1 from 3 nodes up)"
    )
    demo.add_argument("--json", action="store_true", help="print the final State as JSON instead of tables")
    demo.add_argument(
        "--reducer",
        choices=get_args(Reducer),
        default="rust",
        help="rust: clusterstate.apply_many (default); reference: the pure-Python reducer",
    )
    demo.add_argument(
        "--no-local", action="store_true", help="leave this machine out (the output then depends on the seed alone)"
    )
    demo.set_defaults(run=_demo)
    gather = commands.add_parser(
        "gather",
        help="show this machine's hardware samples, live or as JSON",
        description="Run this machine's hardware monitors (memory, disk, network, identity; Thunderbolt, "
        "macmon and RDMA on macOS) and show their samples in a table refreshing in place (Ctrl-C stops).",
    )
    gather.add_argument(
        "--json", action="store_true", help="take one sample of each monitor, print them as a JSON list of events"
    )
    gather.add_argument("--duration", type=float, default=None, help="stop the live table after this many seconds")
    gather.add_argument("--node-id", default=None, help="node id the events carry (default: local-<hostname>)")
    gather.add_argument("--disk-path", type=Path, default=None, help="directory whose disk usage is reported")
    gather.add_argument("--config-dir", type=Path, default=None, help="directory of config.toml (created if missing)")
    gather.set_defaults(run=_gather)
    sim = commands.add_parser(
        "simulate",
        help="compare liveness detectors on simulated fault scenarios",
        description="Simulate a cluster through a set of fault scenarios (simulated time, no sleeping) and score "
        "exo's wall-clock detector, the first event-index proposal and clusterstate's StalenessTracker on the same "
        "event streams. Prints a table per detector; saves DIR/liveness.png and DIR/liveness-results.md.",
    )
    sim.add_argument("--nodes", type=int, default=8, help="cluster size, at least 6 (default: 8)")
    sim.add_argument("--seed", type=int, default=0, help="simulation seed (default: 0)")
    sim.add_argument(
        "--duration", type=float, default=600.0, help="simulated seconds per scenario, >= 600 (default: 600)"
    )
    sim.add_argument("--output", default=".", metavar="DIR", help="where to save the plot and table (default: .)")
    sim.add_argument(
        "--loss",
        type=float,
        nargs="*",
        metavar="P",
        help="instead of the scenarios, run 5 producers' outboxes and the master over a channel losing each P of "
        "what is sent (default sweep: 0 0.1 0.2 0.3); saves DIR/liveness-lossy.md",
    )
    sim.add_argument(
        "--reorder", type=float, default=0.3, help="with --loss: chance an item in flight is held back a tick (0.3)"
    )
    sim.set_defaults(run=_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
