"""Failover and catch-up figures of real ``clusterstate node`` processes on this machine, over N runs each.

``python benches/cluster_figures.py --runs 20 [--events 50000] [--json benches/results/cluster-figures.json]``

- Failover: a 3-node cluster as ``clusterstate demo`` runs it (real gatherers, 1 s lease), every node pushing
  events; the master is SIGKILLed and :func:`clusterstate.runtime.failover.run_failover` times kill → a new master
  serving and kill → every node settled on it.
- Catch-up: a 2-node cluster holds a log of ``--events`` events (written once, before the runs, with ``EventLog`` and
  ``MasterCore`` into both nodes' data directories, then copied for each run); a third node joins and the time
  from its ready line to the cluster settled (it follows the master with nothing missing and no lag) gives the
  events/s of its paged catch-up (the time from its start is shown too: the process start and zenoh session
  come first).
- Lost: after every run, every released event (for catch-up: every pre-filled one) must be in the master's log
  exactly once and every node's State must equal the reference replay of that log
  (:func:`clusterstate.runtime.check.converge`).

Prints a table and writes the figures as JSON. Not a pytest file: it runs for minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clusterstate import EventLog, MasterCore, ProducerOutbox
from clusterstate.cli.demo_cluster import NAMES, NODE_FLAGS
from clusterstate.runtime.check import Verdict, converge
from clusterstate.runtime.datadir import DataDir
from clusterstate.runtime.failover import marker_event, run_failover
from clusterstate.runtime.keys import Session
from clusterstate.runtime.lineage import Epoch
from clusterstate.runtime.local import LocalCluster

_BATCH = 1_000
_CATCH_UP_FLAGS = ("--no-gather", "--debug-api", "--join-wait-s=1", "--lease-ms=1000")


def prefill(data_dir: Path, node: str, count: int) -> list[str]:
    """A data directory of `node` whose replica log holds `count` events of one earlier session of `node`; the
    events' ids."""
    session = (node, 1)
    with DataDir(data_dir) as data:
        data.node_id(node)
        data.write_term(1)
        data.write_lineage([Epoch(Session(1, node), 0)])
        master = MasterCore(session, log=EventLog(data.log_path, create=True, durability="none"))
        outbox = ProducerOutbox(ProducerOutbox.new_producer_id(node), node, session)
        ids = [f"prefill-{i}" for i in range(count)]
        for first in range(0, count, _BATCH):
            envelopes = [outbox.push(marker_event(event_id), now=0.0) for event_id in ids[first : first + _BATCH]]
            outbox.acknowledge(master.ingest(envelopes).acknowledged)
        master.sync()
        master.close()
    return ids


def failover_run(root: Path) -> dict[str, Any]:
    cluster = LocalCluster(root, NAMES, cluster=f"fig-{uuid.uuid4().hex[:8]}", extra=NODE_FLAGS)
    try:
        cluster.start_all()
        run = run_failover(cluster)
    finally:
        cluster.stop_all()
    return {
        "to_master_s": run.to_master_s,
        "to_settled_s": run.to_settled_s,
        "released": run.released,
        "new_master_differs": run.new_master != run.old_master,
        **_lost(run.verdict),
    }


def catch_up_run(root: Path, template: Path, ids: Sequence[str]) -> dict[str, Any]:
    names = ("n1", "n2", "n3")
    cluster = LocalCluster(root, names, cluster=f"fig-{uuid.uuid4().hex[:8]}", extra=_CATCH_UP_FLAGS)
    for name in names[:2]:
        shutil.copytree(template, cluster.nodes[name].data_dir)
    try:
        for name in names[:2]:
            cluster.start(name, wait=False)
        for name in names[:2]:
            cluster.wait_ready(cluster.nodes[name])
        cluster.wait_for("the two nodes settled", cluster.settled, 60)
        started = time.monotonic()
        cluster.start("n3")
        ready = time.monotonic()
        cluster.wait_for("the joiner caught up", cluster.settled, 300, every=0.02)
        caught_up = time.monotonic()
        verdict = converge(cluster, ids, timeout=120)
    finally:
        cluster.stop_all()
    return {
        "events": verdict.log_length,
        "start_s": ready - started,
        "catch_up_s": caught_up - ready,
        "from_start_s": caught_up - started,
        "events_per_s": verdict.log_length / (caught_up - ready),
        **_lost(verdict),
    }


def _lost(verdict: Verdict) -> dict[str, Any]:
    return {
        "lost": len(verdict.lost) + len(verdict.duplicated),
        "states_equal": verdict.states_equal,
        "log_contiguous": verdict.contiguous,
    }


def _spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def figures(failovers: list[dict[str, Any]], catch_ups: list[dict[str, Any]]) -> dict[str, Any]:
    runs = failovers + catch_ups
    return {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": len(os.sched_getaffinity(0)),
        },
        "failover": {
            "runs": len(failovers),
            "to_master_s": _spread([r["to_master_s"] for r in failovers]),
            "to_settled_s": _spread([r["to_settled_s"] for r in failovers]),
            "released": sum(r["released"] for r in failovers),
        },
        "catch_up": {
            "runs": len(catch_ups),
            "events": catch_ups[0]["events"] if catch_ups else 0,
            "catch_up_s": _spread([r["catch_up_s"] for r in catch_ups]),
            "from_start_s": _spread([r["from_start_s"] for r in catch_ups]),
            "events_per_s": _spread([r["events_per_s"] for r in catch_ups]),
        },
        "lost": sum(r["lost"] for r in runs),
        "all_states_equal": all(r["states_equal"] and r["log_contiguous"] for r in runs),
        "every_failover_elected_another_node": all(r["new_master_differs"] for r in failovers),
        "runs": {"failover": failovers, "catch_up": catch_ups},
    }


def table(result: dict[str, Any]) -> str:
    f, c = result["failover"], result["catch_up"]
    rows = [
        ("failover: kill → new master serving", f["to_master_s"], "s"),
        ("failover: kill → every node settled", f["to_settled_s"], "s"),
        (f"catch-up of {c['events']:,} events: ready → caught up", c["catch_up_s"], "s"),
        ("catch-up: joiner started → caught up", c["from_start_s"], "s"),
        ("catch-up rate (ready → caught up)", c["events_per_s"], "events/s"),
    ]
    lines = [f"{'figure':<48} {'median':>10} {'min':>10} {'max':>10}  unit"]
    lines += [f"{name:<48} {s['median']:>10.2f} {s['min']:>10.2f} {s['max']:>10.2f}  {unit}" for name, s, unit in rows]
    lines.append(
        f"runs: {f['runs']} failover ({f['released']:,} events released), {c['runs']} catch-up · "
        f"events lost: {result['lost']} · States equal in every run: {'yes' if result['all_states_equal'] else 'no'}"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20, help="runs of each measurement (default 20)")
    parser.add_argument("--events", type=int, default=50_000, help="events the late joiner catches up on")
    parser.add_argument("--json", type=Path, default=Path("benches/results/cluster-figures.json"))
    args = parser.parse_args(argv)
    failovers: list[dict[str, Any]] = []
    catch_ups: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cluster-figures-") as tmp:
        root = Path(tmp)
        template = root / "template"
        ids = prefill(template, "n1", args.events)
        for run in range(args.runs):
            failovers.append(failover_run(root / f"failover-{run}"))
            print(f"failover {run + 1}/{args.runs}: {failovers[-1]}", file=sys.stderr, flush=True)
            catch_ups.append(catch_up_run(root / f"catch-up-{run}", template, ids))
            print(f"catch-up {run + 1}/{args.runs}: {catch_ups[-1]}", file=sys.stderr, flush=True)
            for leftover in (root / f"failover-{run}", root / f"catch-up-{run}"):
                shutil.rmtree(leftover, ignore_errors=True)
    result = figures(failovers, catch_ups)
    print(table(result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if result["lost"] == 0 and result["all_states_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
