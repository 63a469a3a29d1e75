"""The ``clusterstate`` command: one module per subcommand, listed in :data:`COMMANDS`.

Subcommands:
    demo: fold a generated cluster trace and show the State it ends in (:mod:`.demo`).
    node: run this machine as a node of a cluster (:mod:`.node`).
    gather: this machine's hardware monitors, live or as JSON (:mod:`.gather`).
    simulate: the liveness fault scenarios in simulated time, one table per detector (:mod:`.simulate`).
    status: the cluster as a node's HTTP API sees it; the exit status says whether it is healthy (:mod:`.status`).
    chaos: real node machines under faults in simulated time, their invariants checked per seed (:mod:`.chaos`).

A command module has a ``NAME``, ``add_parser(commands)`` adding its subparser and flags, ``check(args)``
refusing flags that contradict each other (before any work), and ``run(args)`` returning the exit status;
adding a command is one module and one entry in :data:`COMMANDS`. The rich views a command prints sit beside
it (``state_view``, ``gather_view``, ``status_view``). Simulated time is ``--duration`` in every command that simulates.

Every numeric flag is checked against the bounds in its help (:mod:`clusterstate.flags`): a bad
value is one line on stderr and exit status 2, before any work. Long work shows progress bars on
stderr; Ctrl-C stops any command quietly with exit status 130.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from importlib.metadata import version
from typing import Protocol

from clusterstate.flags import OneLineParser, Subcommands

from . import chaos, demo, gather, node, simulate, status

__all__ = ["COMMANDS", "Command", "main"]

_INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), as shells report it."""


class Command(Protocol):
    """What a command module provides."""

    NAME: str

    def add_parser(self, commands: Subcommands) -> None: ...

    def check(self, args: argparse.Namespace) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


_IN_HELP_ORDER: tuple[Command, ...] = (demo, node, status, gather, simulate, chaos)
COMMANDS: Mapping[str, Command] = {command.NAME: command for command in _IN_HELP_ORDER}
"""Every subcommand, by name, in the order ``--help`` lists them."""


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="clusterstate", description="Event-sourced cluster state core.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('clusterstate')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS.values():
        command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (130 after Ctrl-C, without a traceback)."""
    try:
        args = _parser().parse_args(argv)
        command = COMMANDS[args.command]
        command.check(args)
        status = command.run(args)
    except SystemExit as exit_:  # --help, --version, and a bad flag (one line on stderr, status 2)
        return exit_.code if isinstance(exit_.code, int) else 2
    except KeyboardInterrupt:
        return _INTERRUPTED
    return status
