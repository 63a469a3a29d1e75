"""``clusterstate node``: run this machine as a node of a cluster (one long-running process per machine).

With no flags it runs a one-node cluster with this machine's real gatherers, its data in
``$CLUSTERSTATE_DATA`` (default ``~/.local/share/clusterstate``) and its HTTP API on 127.0.0.1:52421. Other
machines join with ``--peer tcp/<host>:52420``. Every flag can also be set in the ``[node]`` table of
``config.toml`` in the config directory (``$CLUSTERSTATE_CONFIG_HOME``, default ``~/.config/clusterstate``), keyed
by the flag's long name with ``_`` for ``-`` (e.g. ``master_priority = 2``, ``peer = ["tcp/10.0.0.2:52420"]``); a
flag given on the command line wins.

Once it serves, one JSON line goes to stdout: ``{"node", "cluster", "api", "listen"}`` (scripts and tests read the
API's address from it). Logs go to stderr. SIGTERM or Ctrl-C stops it gracefully; a second signal at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

from clusterstate.flags import Subcommands, config_dir, number, writable_dir
from clusterstate.runtime.datadir import DataDirError
from clusterstate.runtime.errors import InvalidNameError, TransportError
from clusterstate.runtime.machine import NodeOptions
from clusterstate.runtime.node import NodeIdInUseError, NodeSettings, run_node
from clusterstate.runtime.transport.zenoh import ZenohConfig

__all__ = ["NAME", "add_parser", "check", "run", "settings_of"]

NAME = "node"

_DEFAULTS: Mapping[str, Any] = {
    "data_dir": None,
    "node_id": None,
    "cluster": "default",
    "listen": ["tcp/0.0.0.0:52420"],
    "peer": [],
    "discover": False,
    "no_gossip": False,
    "api_host": "127.0.0.1",
    "api_port": 52421,
    "no_api": False,
    "debug_api": False,
    "no_gather": False,
    "master_priority": 0,
    "quorum": "auto",
    "durability": "group",
    "period_s": 10.0,
    "threshold": 3,
    "lease_ms": 3000,
    "join_wait_s": 2.0,
}


def _quorum(text: str) -> str | int:
    if text in ("none", "auto"):
        return text
    return number(int, 1, 1024)(text)


def add_parser(commands: Subcommands) -> None:
    parser = commands.add_parser(
        NAME,
        help="run this machine as a node of a cluster (zenoh, election, HTTP API)",
        description="Run this machine as a node: its gatherers feed the cluster's master, its replica follows the "
        "master's log, an election picks a new master when the old one is gone, and an HTTP API serves its State. "
        "Flags can also come from the [node] table of config.toml.",
    )
    add = parser.add_argument
    add("--data-dir", type=writable_dir, help="node id, term and replica log (default $CLUSTERSTATE_DATA)")
    add("--node-id", help="this node's id (default: the one kept in the data directory, made on first start)")
    add("--new-id", action="store_true", default=None, help="take a new node id (a cloned data directory)")
    add("--cluster", help="the cluster's name; nodes of other clusters ignore this one (default 'default')")
    add("--listen", action="append", help="zenoh endpoint to listen on, repeatable (default tcp/0.0.0.0:52420)")
    add("--peer", action="append", help="zenoh endpoint of another node, e.g. tcp/10.0.0.2:52420; repeatable")
    add("--discover", action="store_true", default=None, help="find peers by multicast scouting on the LAN")
    add("--no-gossip", action="store_true", default=None, help="connect only to the --peer endpoints")
    add("--api-host", help="address the HTTP API binds (default 127.0.0.1)")
    add("--api-port", type=number(int, 0, 65535), help="HTTP API port, 0 for any free one (default 52421)")
    add("--no-api", action="store_true", default=None, help="serve no HTTP API")
    add("--debug-api", action="store_true", default=None, help="also serve POST /debug/emit (tests)")
    add("--no-gather", action="store_true", default=None, help="run no hardware gatherers")
    add("--master-priority", type=number(int, -1, 1_000_000), help="election priority; -1: never master (default 0)")
    add("--quorum", type=_quorum, help="'auto' (majority from 3 voters), 'none', or a number (default auto)")
    add("--durability", choices=("fsync", "group", "none"), help="the replica log's durability (default group)")
    add("--period-s", type=number(float, 0.0, 3600.0, low_open=True), help="plan cycle period (default 10)")
    add("--threshold", type=number(int, 1, 1000), help="stale plan cycles before NodeDisconnected (default 3)")
    add("--lease-ms", type=number(int, 100, 600_000), help="zenoh lease: a hung peer is gone after it (3000)")
    add("--join-wait-s", type=number(float, 0.0, 60.0), help="wait this long for a master before campaigning (2)")
    add("--config-dir", type=config_dir, help="directory of config.toml (default $CLUSTERSTATE_CONFIG_HOME)")


def check(args: argparse.Namespace) -> None:
    """Flags bound nothing else; the config file is read (and checked) in :func:`settings_of`."""


def _config(args: argparse.Namespace) -> dict[str, Any]:
    directory = args.config_dir or Path(
        os.environ.get("CLUSTERSTATE_CONFIG_HOME")
        or Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "clusterstate"
    )
    path = Path(directory) / "config.toml"
    if not path.exists():
        return {}
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("node", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: {e}") from None
    unknown = sorted(set(table) - set(_DEFAULTS))
    if unknown:
        raise ValueError(f"{path}: [node] has unknown settings {unknown} (known: {sorted(_DEFAULTS)})")
    return dict(table)


def settings_of(args: argparse.Namespace) -> NodeSettings:
    """The node's settings: command-line flags, then config.toml's [node] table, then the defaults."""
    config = _config(args)
    value: dict[str, Any] = {}
    for name, default in _DEFAULTS.items():
        given = getattr(args, name, None)
        value[name] = given if given is not None else config.get(name, default)
    data_dir = value["data_dir"] or os.environ.get("CLUSTERSTATE_DATA") or Path.home() / ".local/share/clusterstate"
    options = NodeOptions(
        cluster=str(value["cluster"]),
        priority=int(value["master_priority"]),
        quorum=value["quorum"],
        durability=value["durability"],
        period_s=float(value["period_s"]),
        threshold=int(value["threshold"]),
        lease_s=int(value["lease_ms"]) / 1000,
        join_wait_s=float(value["join_wait_s"]),
    )
    zenoh = ZenohConfig(
        listen=tuple(value["listen"]),
        connect=tuple(value["peer"]),
        discover=bool(value["discover"]),
        gossip=not value["no_gossip"],
        lease_ms=int(value["lease_ms"]),
    )
    return NodeSettings(
        data_dir=Path(data_dir),
        node_id=value["node_id"],
        new_id=bool(getattr(args, "new_id", None)),
        options=options,
        zenoh=zenoh,
        api_host=str(value["api_host"]),
        api_port=None if value["no_api"] else int(value["api_port"]),
        debug_api=bool(value["debug_api"]),
        gather=not value["no_gather"],
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        settings = settings_of(args)
    except ValueError as e:
        print(f"clusterstate node: {e}", file=sys.stderr)
        return 2

    def ready(info: Mapping[str, Any]) -> None:
        sys.stdout.write(json.dumps({**info, "listen": list(info["listen"])}) + "\n")
        sys.stdout.flush()

    try:
        anyio.run(lambda: run_node(settings, ready=ready), backend="asyncio")
    except (NodeIdInUseError, DataDirError, InvalidNameError, TransportError) as e:
        print(f"clusterstate node: {e}", file=sys.stderr)
        return 1
    return 0
