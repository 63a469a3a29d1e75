"""``clusterstate demo``: a real cluster on this machine fails over (:mod:`.demo_cluster`); ``--offline`` folds a
generated trace instead.

``clusterstate demo`` starts three ``clusterstate node`` processes, SIGKILLs their master part-way and shows the new
master, every State converging and what was lost (nothing). ``clusterstate demo --offline`` generates a seeded
cluster trace and folds it through the Rust reducer (``--reducer reference``: the pure-Python one), then shows the
State it ends in as a table of nodes and a summary, or prints it as JSON. This machine joins the generated peers as
one more node: one real sample of each of its monitors is appended to the trace (``--no-local`` leaves it out, for
output that depends on the seed alone).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Literal, get_args

from rich.console import Console

from clusterstate._core import CoreState, apply_many
from clusterstate.flags import Subcommands, number, seed
from clusterstate.gatherers import GathererSettings
from clusterstate.gatherers.local import append_local, sample_local
from clusterstate.models import IndexedEvent, State
from clusterstate.reference import apply
from clusterstate.trace import TraceConfig, generate

from .console import progress, stdout_console
from .demo_cluster import run_cluster
from .state_view import render

__all__ = [
    "MAX_DURATION_S",
    "MAX_NODES",
    "NAME",
    "OFFLINE_DEFAULTS",
    "add_parser",
    "check",
    "demo_config",
    "fold_with_progress",
    "run",
]

NAME = "demo"

Reducer = Literal["rust", "reference"]

MAX_NODES = 256
MAX_DURATION_S = 600.0
"""The bounds: the largest trace stays under a million events and about a gigabyte."""
_MAX_INDENT = 16
_LOCAL_DEADLINE_S = 2.0
"""How long the demo waits for this machine's sample (a slow monitor is left out, the demo stays fast)."""
_BATCH = 2_000
"""Events per ``apply_many`` call when the Rust reducer folds (the progress bar moves per batch)."""
OFFLINE_DEFAULTS = {"nodes": 8, "duration": 120.0, "seed": 0, "reducer": "rust", "no_local": False}
"""The flags that only ``--offline`` takes (``--silent`` too: its default depends on ``--nodes``), with their
defaults."""


def demo_config(nodes: int, duration_s: float, seed: int, silent: int | None = None) -> TraceConfig:
    """The trace ``clusterstate demo`` shows: by default one node (if there are 3 or more) crashes.

    Raises:
        ValueError: the numbers do not make a valid trace.
    """
    if silent is None:
        silent = 1 if nodes >= 3 else 0
    return TraceConfig(nodes=nodes, duration_s=duration_s, seed=seed, silent_nodes=silent)


def fold_with_progress(
    events: Sequence[IndexedEvent], console: Console, *, reducer: Reducer = "rust"
) -> tuple[State, float]:
    """Fold ``events`` from an empty State with a progress bar on ``console``.

    ``reducer`` is ``"rust"`` (``clusterstate.apply_many`` in batches) or ``"reference"`` (the
    pure-Python ``clusterstate.reference.apply``, event by event). Returns the State as a pydantic
    model and the seconds spent folding.
    """
    with progress(console) as bar:
        task = bar.add_task("folding", total=len(events), unit="events")
        start = time.perf_counter()
        if reducer == "rust":
            core = CoreState()
            for first in range(0, len(events), _BATCH):
                batch = events[first : first + _BATCH]
                core = apply_many(core, batch)
                bar.advance(task, len(batch))
            seconds = time.perf_counter() - start
            return core.to_pydantic(), seconds
        state = State()
        for event in events:
            state = apply(state, event)
            bar.advance(task)
        return state, time.perf_counter() - start


def add_parser(commands: Subcommands) -> None:
    parser = commands.add_parser(
        NAME,
        help="run a 3-node cluster here, SIGKILL its master and show nothing is lost",
        description="Start three clusterstate node processes on this machine (loopback, temporary data "
        "directories, real gatherers), push events through every node, SIGKILL the master part-way and show the "
        "new master, every State converging and the events lost (none). Exit status 0, or 1 if an event was lost "
        "or the States differ. With --offline: generate a seeded trace of a simulated cluster, fold it through "
        "the reducer and show the State it ends in.",
    )
    parser.add_argument(
        "--offline", action="store_true", help="fold a generated trace instead of running a cluster (no processes)"
    )
    parser.add_argument(
        "--nodes",
        type=number(int, 1, MAX_NODES),
        help=f"with --offline: cluster size, 1 to {MAX_NODES} (default: 8)",
    )
    parser.add_argument(
        "--duration",
        type=number(float, 0.0, MAX_DURATION_S, low_open=True),
        help=f"with --offline: simulated seconds, above 0 and at most {MAX_DURATION_S:.0f} (default: 120)",
    )
    parser.add_argument("--seed", type=seed, help="with --offline: trace seed, 0 to 2**63-1 (default: 0)")
    parser.add_argument(
        "--silent",
        type=number(int, 0, MAX_NODES - 1),
        default=None,
        help="with --offline: nodes that crash during the trace, below --nodes (default: 1 from 3 nodes up)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the summary as JSON instead of tables (with --offline: the final State)",
    )
    parser.add_argument(
        "--indent",
        type=number(int, 0, _MAX_INDENT),
        default=None,
        metavar="N",
        help="with --json: indent by N spaces (default: 2 on a terminal, else one line)",
    )
    parser.add_argument(
        "--reducer",
        choices=get_args(Reducer),
        help="with --offline: rust: clusterstate.apply_many (default); reference: the pure-Python reducer",
    )
    parser.add_argument(
        "--no-local",
        action="store_true",
        default=None,
        help="with --offline: leave this machine out (the output then depends on the seed alone)",
    )
    parser.set_defaults(parser=parser)


def check(args: argparse.Namespace) -> None:
    """The trace's flags come with ``--offline`` only; ``--silent`` is below ``--nodes``."""
    if not args.offline:
        for name in (*OFFLINE_DEFAULTS, "silent"):
            if getattr(args, name) is not None:
                args.parser.error(f"argument --{name.replace('_', '-')}: only with --offline")
        return
    for name, default in OFFLINE_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.silent is not None and args.silent >= args.nodes:
        args.parser.error(f"argument --silent: must be below --nodes ({args.nodes}), not {args.silent}")


def run(args: argparse.Namespace) -> int:
    if not args.offline:
        return run_cluster(args)
    progress_console = Console(stderr=True)
    config = demo_config(args.nodes, args.duration, args.seed, args.silent)
    with progress(progress_console) as bar:
        task = bar.add_task("generating", total=config.duration_s, unit="simulated s")
        events = generate(config, lambda now: bar.update(task, completed=now))
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
        render(stdout_console(), state, len(events), seconds)
    return 0
