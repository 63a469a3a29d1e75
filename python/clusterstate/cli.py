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
        detector; with ``--output DIR`` also a PNG of detection latencies and a Markdown table
        (docs/liveness.md).

Every numeric flag is checked against the bounds in its help (:mod:`clusterstate.flags`): a bad
value is one line on stderr and exit status 2, before any work. Long work shows progress bars on
stderr; Ctrl-C stops any command quietly with exit status 130.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from importlib.metadata import version
from typing import Literal, get_args

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from clusterstate._core import CoreState, apply_many
from clusterstate.display import render
from clusterstate.flags import OneLineParser, config_dir, existing_dir, number, writable_dir
from clusterstate.gatherers import GathererSettings
from clusterstate.gatherers.local import append_local, gather_json, local_node_id, run_live, sample_local
from clusterstate.models import IndexedEvent, NodeId, State
from clusterstate.reference import apply
from clusterstate.simulation.scenarios import MIN_NODES
from clusterstate.trace import TraceConfig, generate

__all__ = ["DEMO_MAX_NODES", "DEMO_MAX_SECONDS", "SIMULATE_MAX_NODES", "demo_config", "fold_with_progress", "main"]

Reducer = Literal["rust", "reference"]

_PIPE_WIDTH = 160
_INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), as shells report it."""

DEMO_MAX_NODES = 256
DEMO_MAX_SECONDS = 600.0
"""``demo``'s bounds: the largest trace stays under a million events and about a gigabyte."""
SIMULATE_MAX_NODES = 32
SIMULATE_MAX_SECONDS = 3600.0
"""``simulate``'s bounds: the longest run is a few minutes."""
_MAX_SEED = 2**63 - 1
_MAX_INDENT = 16
_MAX_GATHER_SECONDS = 86_400.0
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
    with _progress(console) as progress:
        task = progress.add_task("folding", total=len(events), unit="events")
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


def _progress(console: Console) -> Progress:
    """A transient progress bar on ``console``; tasks give a description and a ``unit`` field."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _generate_with_progress(config: TraceConfig, console: Console) -> list[IndexedEvent]:
    with _progress(console) as progress:
        task = progress.add_task("generating", total=config.duration_s, unit="simulated s")
        return generate(config, lambda now: progress.update(task, completed=now))


def _demo(args: argparse.Namespace) -> int:
    progress_console = Console(stderr=True)
    events = _generate_with_progress(demo_config(args.nodes, args.seconds, args.seed, args.silent), progress_console)
    if not args.no_local:
        local = sample_local(settings=GathererSettings(create_config=False), deadline_s=_LOCAL_DEADLINE_S)
        for name, failure in local.failures.items():
            print(f"clusterstate demo: local monitor {name} failed: {failure}", file=sys.stderr)
        events = append_local(events, local.events)
    state, seconds = fold_with_progress(events, progress_console, reducer=args.reducer)
    if args.json:
        indent = args.indent if args.indent is not None or not sys.stdout.isatty() else 2
        sys.stdout.write(state.model_dump_json(indent=indent) + "\n")
    else:
        render(_stdout_console(), state, len(events), seconds)
    return 0


def _gather(args: argparse.Namespace) -> int:
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

    configs = [
        LossyConfig(loss=rate, reorder=args.reorder, seed=args.seed, producers=args.nodes, duration_s=args.duration)
        for rate in args.loss or LOSS_SWEEP
    ]
    with _progress(Console(stderr=True)) as progress:
        task = progress.add_task("simulating", total=len(configs), unit="loss rates")
        results = []
        for config in configs:
            results.append(run_lossy(config))
            progress.advance(task)
    console = _stdout_console()
    lossy_table(results, console)
    if args.output is not None:
        table = args.output / "liveness-lossy.md"
        table.write_text(lossy_markdown(results), encoding="utf-8")
        console.print(f"table: {table}")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    if args.loss is not None:
        return _simulate_lossy(args)
    from clusterstate.simulation import SimulationConfig, default_scenarios, run_scenario  # only this command
    from clusterstate.simulation.report import markdown_table, plot, tables

    config = SimulationConfig(nodes=args.nodes, seed=args.seed, duration_s=args.duration)
    scenarios = default_scenarios(config.duration_s)
    with _progress(Console(stderr=True)) as progress:
        task = progress.add_task("simulating", total=len(scenarios), unit="scenarios")
        results = []
        for scenario in scenarios:
            results.append(run_scenario(scenario, config))
            progress.advance(task)
    console = _stdout_console()
    tables(results, config, console)
    if args.output is not None:
        table = args.output / "liveness-results.md"
        path = plot(results, config, args.output / "liveness.png")
        table.write_text(markdown_table(results), encoding="utf-8")
        console.print(f"plot: {path}; table: {table}")
    return 0


def _stdout_console() -> Console:
    # Piped output has no width; rich would assume 80 columns and squeeze the table. Rows that
    # stay whole are more useful in a log or a file (COLUMNS still wins when set).
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=_PIPE_WIDTH)
    return console


def _parser() -> argparse.ArgumentParser:
    seed = number(int, 0, _MAX_SEED)
    parser = OneLineParser(prog="clusterstate", description="Event-sourced cluster state core.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('clusterstate')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="fold a generated cluster trace and show the resulting State",
        description="Generate a seeded trace of a simulated cluster, fold it through the reducer "
        "and show the State it ends in.",
    )
    demo.add_argument(
        "--nodes",
        type=number(int, 1, DEMO_MAX_NODES),
        default=8,
        help=f"cluster size, 1 to {DEMO_MAX_NODES} (default: 8)",
    )
    demo.add_argument(
        "--seconds",
        type=number(float, 0.0, DEMO_MAX_SECONDS, low_open=True),
        default=120.0,
        help=f"simulated seconds, above 0 and at most {DEMO_MAX_SECONDS:.0f} (default: 120)",
    )
    demo.add_argument("--seed", type=seed, default=0, help="trace seed, 0 to 2**63-1 (default: 0)")
    demo.add_argument(
        "--silent",
        type=number(int, 0, DEMO_MAX_NODES - 1),
        default=None,
        help="nodes that crash during the trace, below --nodes (default: 1 from 3 nodes up)",
    )
    demo.add_argument("--json", action="store_true", help="print the final State as JSON instead of tables")
    demo.add_argument(
        "--indent",
        type=number(int, 0, _MAX_INDENT),
        default=None,
        metavar="N",
        help="with --json: indent by N spaces (default: 2 on a terminal, else one line)",
    )
    demo.add_argument(
        "--reducer",
        choices=get_args(Reducer),
        default="rust",
        help="rust: clusterstate.apply_many (default); reference: the pure-Python reducer",
    )
    demo.add_argument(
        "--no-local", action="store_true", help="leave this machine out (the output then depends on the seed alone)"
    )
    demo.set_defaults(run=_demo, parser=demo)
    gather = commands.add_parser(
        "gather",
        help="show this machine's hardware samples, live or as JSON",
        description="Run this machine's hardware monitors (memory, disk, network, identity; Thunderbolt, "
        "macmon and RDMA on macOS) and show their samples in a table refreshing in place (Ctrl-C stops).",
    )
    gather.add_argument(
        "--json", action="store_true", help="take one sample of each monitor, print them as a JSON list of events"
    )
    gather.add_argument(
        "--duration",
        type=number(float, 0.0, _MAX_GATHER_SECONDS, low_open=True),
        default=None,
        help=f"stop the live table after this many seconds (at most {_MAX_GATHER_SECONDS:.0f})",
    )
    gather.add_argument("--node-id", default=None, help="node id the events carry (default: local-<hostname>)")
    gather.add_argument(
        "--disk-path", type=existing_dir, default=None, help="existing directory whose disk usage is reported"
    )
    gather.add_argument(
        "--config-dir", type=config_dir, default=None, help="directory of config.toml (created if missing)"
    )
    gather.set_defaults(run=_gather)
    sim = commands.add_parser(
        "simulate",
        help="compare liveness detectors on simulated fault scenarios",
        description="Simulate a cluster through a set of fault scenarios (simulated time, no sleeping) and score "
        "exo's wall-clock detector, the first event-index proposal and clusterstate's StalenessTracker on the same "
        "event streams. Prints a table per detector; writes files only with --output.",
    )
    sim.add_argument(
        "--nodes",
        type=number(int, MIN_NODES, SIMULATE_MAX_NODES),
        default=8,
        help=f"cluster size, {MIN_NODES} to {SIMULATE_MAX_NODES} (default: 8)",
    )
    sim.add_argument("--seed", type=seed, default=0, help="simulation seed, 0 to 2**63-1 (default: 0)")
    sim.add_argument(
        "--duration",
        type=number(float, 600.0, SIMULATE_MAX_SECONDS),
        default=600.0,
        help=f"simulated seconds per scenario, 600 to {SIMULATE_MAX_SECONDS:.0f} (default: 600)",
    )
    sim.add_argument(
        "--output",
        type=writable_dir,
        default=None,
        metavar="DIR",
        help="save DIR/liveness.png and DIR/liveness-results.md (DIR is created if missing; "
        "without --output nothing is written)",
    )
    sim.add_argument(
        "--loss",
        type=number(float, 0.0, _MAX_LOSS),
        nargs="*",
        metavar="P",
        help="instead of the scenarios, run --nodes producers' outboxes and the master over a channel losing each P "
        f"of what is sent, 0 to {_MAX_LOSS} (no P: the sweep 0 0.1 0.2 0.3); with --output saves DIR/liveness-lossy.md",
    )
    sim.add_argument(
        "--reorder",
        type=number(float, 0.0, _MAX_LOSS),
        default=0.3,
        help=f"with --loss: chance an item in flight is held back a tick, 0 to {_MAX_LOSS} (default: 0.3)",
    )
    sim.set_defaults(run=_simulate)
    return parser


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """The flags of ``argv``, each in its bounds, and those that bound each other too."""
    args = _parser().parse_args(argv)
    if args.command == "demo" and args.silent is not None and args.silent >= args.nodes:
        args.parser.error(f"argument --silent: must be below --nodes ({args.nodes}), not {args.silent}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (130 after Ctrl-C, without a traceback)."""
    try:
        args = _parse(argv)
        status: int = args.run(args)
    except SystemExit as exit_:  # --help, --version, and a bad flag (one line on stderr, status 2)
        return exit_.code if isinstance(exit_.code, int) else 2
    except KeyboardInterrupt:
        return _INTERRUPTED
    return status


if __name__ == "__main__":
    sys.exit(main())
