"""``clusterstate gather``: this machine's hardware monitors, live or as JSON.

Live: a table refreshing in place (Ctrl-C or ``--duration`` stops it). ``--json``: one sample of each monitor as a
JSON list of ``NodeGatheredInfo`` events (exo's wire format, in monitor order).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from clusterstate.flags import Subcommands, config_dir, existing_dir, number
from clusterstate.gatherers import GathererSettings
from clusterstate.gatherers.local import gather_json, local_node_id, sample_local
from clusterstate.models import NodeId

from .console import stdout_console
from .gather_view import run_live

__all__ = ["NAME", "add_parser", "check", "run"]

NAME = "gather"

_MAX_DURATION_S = 86_400.0


def add_parser(commands: Subcommands) -> None:
    parser = commands.add_parser(
        NAME,
        help="show this machine's hardware samples, live or as JSON",
        description="Run this machine's hardware monitors (memory, disk, network, identity; Thunderbolt, "
        "macmon and RDMA on macOS) and show their samples in a table refreshing in place (Ctrl-C stops).",
    )
    parser.add_argument(
        "--json", action="store_true", help="take one sample of each monitor, print them as a JSON list of events"
    )
    parser.add_argument(
        "--duration",
        type=number(float, 0.0, _MAX_DURATION_S, low_open=True),
        default=None,
        help=f"stop the live table after this many seconds (at most {_MAX_DURATION_S:.0f})",
    )
    parser.add_argument("--node-id", default=None, help="node id the events carry (default: local-<hostname>)")
    parser.add_argument(
        "--disk-path", type=existing_dir, default=None, help="existing directory whose disk usage is reported"
    )
    parser.add_argument(
        "--config-dir", type=config_dir, default=None, help="directory of config.toml (created if missing)"
    )


def check(args: argparse.Namespace) -> None:
    """No two flags bound each other: each is checked as it is parsed."""


def run(args: argparse.Namespace) -> int:
    settings = GathererSettings()
    if args.disk_path is not None:
        settings = dataclasses.replace(settings, disk_path=args.disk_path)
    if args.config_dir is not None:
        settings = dataclasses.replace(settings, config_dir=args.config_dir)
    node_id = NodeId(args.node_id) if args.node_id else local_node_id()
    if not args.json:
        run_live(stdout_console(), node_id, settings, args.duration)
        return 0
    result = sample_local(node_id, settings)
    for name, failure in result.failures.items():
        print(f"clusterstate gather: monitor {name} failed: {failure}", file=sys.stderr)
    sys.stdout.write(gather_json(result.events) + "\n")
    return 0 if result.events else 1
