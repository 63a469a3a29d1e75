"""``clusterstate chaos``: the deterministic whole-cluster simulator over one seed or a range of seeds.

Each seed runs real node machines under crashes, restarts, hangs, graceful stops, a join and a lossy network, in
simulated time, and checks the invariants of :mod:`clusterstate.simulation.cluster`. Progress and one line per
passing seed (its digest) go to stderr; each failing seed's violations and the command that replays it, then the
tally, to stdout. Exit status 1 when a seed fails.
"""

from __future__ import annotations

import argparse

from clusterstate.flags import MAX_SEED, Subcommands, number, seed

from .console import progress

__all__ = ["MAX_DURATION_S", "MAX_NODES", "MIN_NODES", "NAME", "add_parser", "check", "run", "seed_range"]

NAME = "chaos"

MIN_NODES = 1
MAX_NODES = 9
MIN_DURATION_S = 1.0
MAX_DURATION_S = 600.0
_SHOWN = 5
"""The most violations printed per failing seed."""


def seed_range(text: str) -> range:
    """A flag type for ``A..B``: the seeds A to B, both included."""
    first, dots, last = text.partition("..")
    low, high = (seed(part) for part in (first, last)) if dots else (None, None)
    if low is None or high is None or high < low:
        raise argparse.ArgumentTypeError(f"must be A..B with 0 <= A <= B <= {MAX_SEED}, not {text!r}")
    return range(low, high + 1)


def add_parser(commands: Subcommands) -> None:
    parser = commands.add_parser(
        NAME,
        help="run the deterministic cluster simulator under faults and check its invariants",
        description="Run real node machines (election, producer, follower, master) under crashes, restarts, hangs, "
        "stops, a join and a lossy network, in simulated time, and check the invariants: one master per term, "
        "terms never go back, nothing released is lost, and every node ends with the master's log and State. "
        "A seed replays the same run.",
    )
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--seed", type=seed, default=None, help="one seed, 0 to 2**63-1 (default: 0)")
    chosen.add_argument("--seeds", type=seed_range, default=None, metavar="A..B", help="the seeds A to B")
    parser.add_argument(
        "--nodes",
        type=number(int, MIN_NODES, MAX_NODES),
        default=3,
        help=f"nodes at the start, {MIN_NODES} to {MAX_NODES} (default: 3)",
    )
    parser.add_argument(
        "--duration",
        type=number(float, MIN_DURATION_S, MAX_DURATION_S),
        default=20.0,
        help=f"simulated seconds of faults, {MIN_DURATION_S:g} to {MAX_DURATION_S:g} (default: 20); "
        "the cluster is then given up to 60 more to quiesce",
    )


def check(args: argparse.Namespace) -> None:
    """``--seed`` and ``--seeds`` exclude each other (argparse refuses both)."""


def run(args: argparse.Namespace) -> int:
    from clusterstate.simulation.cluster import run as simulate

    seeds = args.seeds if args.seeds is not None else range(args.seed or 0, (args.seed or 0) + 1)
    failed = 0
    with progress() as bar:
        task = bar.add_task("simulating", total=len(seeds), unit="seeds")
        for number_ in seeds:
            report = simulate(number_, args.nodes, args.duration)
            bar.advance(task)
            if report.ok:
                bar.console.print(
                    f"seed {report.seed}: ok, {report.logged} events, term {report.term}, "
                    f"{sum(report.faults.values())} faults, digest {report.digest[:16]}",
                    highlight=False,
                    markup=False,
                )
                continue
            failed += 1
            print(f"seed {report.seed}: FAILED")
            for violation in report.violations[:_SHOWN]:
                print(f"  {violation}")
            print(f"  replay: {report.replay}", flush=True)
    print(f"{len(seeds) - failed} of {len(seeds)} seeds passed")
    return 1 if failed else 0
