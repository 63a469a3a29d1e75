"""``clusterstate simulate``: the liveness fault scenarios, in simulated time.

Compares exo's wall-clock detector, the first event-index proposal and clusterstate's StalenessTracker: a table per
detector; with ``--output DIR`` also a PNG of detection latencies and a Markdown table (docs/liveness.md).
``--loss`` runs producers' outboxes and the master over a lossy channel instead.
"""

from __future__ import annotations

import argparse

from clusterstate.flags import Subcommands, number, seed, writable_dir
from clusterstate.simulation.scenarios import MIN_NODES

from .console import progress, stdout_console

__all__ = ["MAX_DURATION_S", "MAX_NODES", "NAME", "add_parser", "check", "run"]

NAME = "simulate"

MAX_NODES = 32
MAX_DURATION_S = 3600.0
"""The bounds: the longest run is a few minutes."""
_MAX_LOSS = 0.9
"""The highest loss or hold-back rate ``--loss`` / ``--reorder`` takes."""


def add_parser(commands: Subcommands) -> None:
    parser = commands.add_parser(
        NAME,
        help="compare liveness detectors on simulated fault scenarios",
        description="Simulate a cluster through a set of fault scenarios (simulated time, no sleeping) and score "
        "exo's wall-clock detector, the first event-index proposal and clusterstate's StalenessTracker on the same "
        "event streams. Prints a table per detector; writes files only with --output.",
    )
    parser.add_argument(
        "--nodes",
        type=number(int, MIN_NODES, MAX_NODES),
        default=8,
        help=f"cluster size, {MIN_NODES} to {MAX_NODES} (default: 8)",
    )
    parser.add_argument("--seed", type=seed, default=0, help="simulation seed, 0 to 2**63-1 (default: 0)")
    parser.add_argument(
        "--duration",
        type=number(float, 600.0, MAX_DURATION_S),
        default=600.0,
        help=f"simulated seconds per scenario, 600 to {MAX_DURATION_S:.0f} (default: 600)",
    )
    parser.add_argument(
        "--output",
        type=writable_dir,
        default=None,
        metavar="DIR",
        help="save DIR/liveness.png and DIR/liveness-results.md (DIR is created if missing; "
        "without --output nothing is written)",
    )
    parser.add_argument(
        "--loss",
        type=number(float, 0.0, _MAX_LOSS),
        nargs="*",
        metavar="P",
        help="instead of the scenarios, run --nodes producers' outboxes and the master over a channel losing each P "
        f"of what is sent, 0 to {_MAX_LOSS} (no P: the sweep 0 0.1 0.2 0.3); with --output saves DIR/liveness-lossy.md",
    )
    parser.add_argument(
        "--reorder",
        type=number(float, 0.0, _MAX_LOSS),
        default=0.3,
        help=f"with --loss: chance an item in flight is held back a tick, 0 to {_MAX_LOSS} (default: 0.3)",
    )


def check(args: argparse.Namespace) -> None:
    """No two flags bound each other: each is checked as it is parsed."""


def run(args: argparse.Namespace) -> int:
    if args.loss is not None:
        return _lossy(args)
    # Imported on use: matplotlib and the simulation are this command's alone.
    from clusterstate.simulation import SimulationConfig, default_scenarios, run_scenario
    from clusterstate.simulation.report import markdown_table, plot, tables

    config = SimulationConfig(nodes=args.nodes, seed=args.seed, duration_s=args.duration)
    scenarios = default_scenarios(config.duration_s)
    with progress() as bar:
        task = bar.add_task("simulating", total=len(scenarios), unit="scenarios")
        results = []
        for scenario in scenarios:
            results.append(run_scenario(scenario, config))
            bar.advance(task)
    console = stdout_console()
    tables(results, config, console)
    if args.output is not None:
        table = args.output / "liveness-results.md"
        path = plot(results, config, args.output / "liveness.png")
        table.write_text(markdown_table(results), encoding="utf-8")
        console.print(f"plot: {path}; table: {table}")
    return 0


def _lossy(args: argparse.Namespace) -> int:
    from clusterstate.simulation.lossy import LOSS_SWEEP, LossyConfig, lossy_markdown, lossy_table, run_lossy

    configs = [
        LossyConfig(loss=rate, reorder=args.reorder, seed=args.seed, producers=args.nodes, duration_s=args.duration)
        for rate in args.loss or LOSS_SWEEP
    ]
    with progress() as bar:
        task = bar.add_task("simulating", total=len(configs), unit="loss rates")
        results = []
        for config in configs:
            results.append(run_lossy(config))
            bar.advance(task)
    console = stdout_console()
    lossy_table(results, console)
    if args.output is not None:
        table = args.output / "liveness-lossy.md"
        table.write_text(lossy_markdown(results), encoding="utf-8")
        console.print(f"table: {table}")
    return 0
