"""The failure scenarios, with real ``clusterstate node`` processes and real zenoh sessions on 127.0.0.1.

Each test starts its own cluster (a fresh cluster name, free ports, a temp data directory per node), kills only
the processes it started, and bounds every wait. In each, events are pushed through the nodes' outboxes with
``POST /debug/emit``, which returns once the event was released; at the end every released event must be in the
master's log exactly once and every node's ``/state`` must equal the reference replay of that log. Timing bounds are
generous (CI has 2 cores); the figures themselves are measured in docs/runtime.md.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from clusterstate.runtime.local import LocalCluster, free_port
from support.cluster import assert_converged, emit
from support.processes import Processes

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(240)]

# Fast timers for tests: a 1 s lease (a hung master is gone after about 1 s) and a 1 s wait for a master at start.
FAST = ("--no-gather", "--debug-api", "--join-wait-s=1", "--lease-ms=1000")
Make = Callable[..., LocalCluster]


@pytest.fixture
def make_cluster(tmp_path: Path, processes: Processes) -> Iterator[Make]:
    made: list[LocalCluster] = []

    def make(names: tuple[str, ...] = ("n1", "n2", "n3"), extra: tuple[str, ...] = FAST) -> LocalCluster:
        cluster = LocalCluster(tmp_path, names, cluster=f"t{uuid.uuid4().hex[:10]}", extra=extra, spawn=processes.popen)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.stop_all()


def _term(cluster: LocalCluster, name: str) -> int:
    status = cluster.nodes[name].status()
    assert status is not None
    return int(status["term"])


def test_all_nodes_starting_at_once_elect_exactly_one_master_and_stay(make_cluster: Make) -> None:
    """Scenario 6: one master after the join wait and one round; no further rounds while nothing fails."""
    cluster = make_cluster()
    cluster.start_all()
    master = cluster.wait_for("one master", cluster.settled, 30)
    terms = {name: _term(cluster, name) for name in cluster.names}
    released = emit(cluster.nodes["n2"], "a", 5)
    time.sleep(3)
    assert cluster.masters() == {master}
    assert {name: _term(cluster, name) for name in cluster.names} == terms
    assert_converged(cluster, released)


def test_sigkill_of_the_master_elects_the_most_complete_replica_and_loses_nothing(make_cluster: Make) -> None:
    """Scenario 1: a new master quickly; released and pending events all in its log exactly once."""
    cluster = make_cluster()
    cluster.start_all()
    master = cluster.wait_for("one master", cluster.settled, 30)
    followers = [n for n in cluster.names if n != master]
    released = [event for name in cluster.names for event in emit(cluster.nodes[name], "before", 10)]
    term = _term(cluster, followers[0])
    cluster.kill(master)
    killed = time.monotonic()
    new = cluster.wait_for("a new master", lambda: next(iter(cluster.masters()), None), 15)
    failover = time.monotonic() - killed
    assert new != master
    assert _term(cluster, new) > term
    released += [event for name in followers for event in emit(cluster.nodes[name], "after", 10)]
    assert assert_converged(cluster, released) == new
    assert failover < 10, f"failover took {failover:.2f}s"


def test_a_hung_master_is_replaced_and_resigns_when_it_resumes(make_cluster: Make) -> None:
    """Scenario 2: SIGSTOP past the lease; SIGCONT: the old master follows the new one, nothing of it accepted."""
    cluster = make_cluster()
    cluster.start_all()
    master = cluster.wait_for("one master", cluster.settled, 30)
    followers = [n for n in cluster.names if n != master]
    released = emit(cluster.nodes[followers[0]], "before", 10)
    cluster.signal(master, signal.SIGSTOP)
    try:
        new = cluster.wait_for(
            "a new master among the others",
            lambda: next(
                iter({n for n in followers if (s := cluster.nodes[n].status()) and s["role"] == "master"}), None
            ),
            20,
        )
        released += emit(cluster.nodes[followers[1]], "during", 5)
    finally:
        cluster.signal(master, signal.SIGCONT)
    assert assert_converged(cluster, released) == new
    old = cluster.nodes[master].status()
    assert old is not None
    assert old["role"] == "follower"


def test_a_graceful_stop_of_the_master_hands_over_with_nothing_pending(make_cluster: Make) -> None:
    """Scenario 3: SIGTERM: the master resigns and exits 0; a new master; nothing pending anywhere."""
    cluster = make_cluster()
    cluster.start_all()
    master = cluster.wait_for("one master", cluster.settled, 30)
    followers = [n for n in cluster.names if n != master]
    released = [event for name in cluster.names for event in emit(cluster.nodes[name], "before", 5)]
    assert cluster.stop(master) == 0
    released += emit(cluster.nodes[followers[0]], "after", 5)
    new = assert_converged(cluster, released)
    assert new in followers


def test_a_killed_follower_rejoins_with_its_identity_and_no_election(make_cluster: Make) -> None:
    """Scenario 4: no election when a follower dies; restarted, it keeps its node id and catches up."""
    cluster = make_cluster()
    cluster.start_all()
    master = cluster.wait_for("one master", cluster.settled, 30)
    follower = next(n for n in cluster.names if n != master)
    released = emit(cluster.nodes[follower], "before", 5)
    term = _term(cluster, master)
    cluster.kill(follower)
    released += emit(cluster.nodes[master], "while-down", 20)
    cluster.start(follower)
    released += emit(cluster.nodes[follower], "after", 5)
    assert assert_converged(cluster, released) == master
    assert _term(cluster, master) == term
    status = cluster.nodes[follower].status()
    assert status is not None
    assert status["node"] == follower


def test_a_joining_node_starts_no_election_and_catches_up(make_cluster: Make) -> None:
    """Scenario 5: a third node joins a running cluster: no round; its own samples reach every State."""
    cluster = make_cluster(extra=tuple(f for f in FAST if f != "--no-gather"))
    cluster.start("n1", wait=False)
    cluster.start("n2", wait=False)
    for name in ("n1", "n2"):
        cluster.wait_ready(cluster.nodes[name])
    master = cluster.wait_for("one master", cluster.settled, 30)
    released = emit(cluster.nodes["n2"], "before", 200)
    term = _term(cluster, master)
    cluster.start("n3")
    assert assert_converged(cluster, released) == master
    assert _term(cluster, master) == term
    state = cluster.nodes["n1"].get("/state")
    assert "n3" in state["nodeIdentities"] or "n3" in state["nodeMemory"]


def test_a_restarted_old_master_follows_without_wedging(make_cluster: Make) -> None:
    """Scenario 13: the old master comes back as a follower of the newer term (its term was persisted)."""
    cluster = make_cluster()
    cluster.start_all()
    master = cluster.wait_for("one master", cluster.settled, 30)
    released = emit(cluster.nodes[master], "before", 10)
    cluster.kill(master)
    new = cluster.wait_for("a new master", lambda: next(iter(cluster.masters()), None), 15)
    released += emit(cluster.nodes[new], "between", 10)
    cluster.start(master)
    assert assert_converged(cluster, released) == new
    old = cluster.nodes[master].status()
    assert old is not None
    assert old["role"] == "follower"
    assert old["term"] >= _term(cluster, new)


def test_a_second_process_with_the_same_node_id_refuses_to_start(
    make_cluster: Make, tmp_path: Path, processes: Processes
) -> None:
    """Scenario 14: the same node id elsewhere (a cloned disk) and the same data directory are both refused, and so
    is a listen endpoint in use; the cluster carries on."""
    cluster = make_cluster(names=("n1", "n2"))
    cluster.start_all()
    cluster.wait_for("one master", cluster.settled, 30)
    twin = cluster.nodes["n1"]
    elsewhere = [a for a in cluster.command(twin) if not a.startswith(("--data-dir=", "--listen="))]

    def refused(data_dir: Path, port: int, *extra: str) -> str:
        done = processes.run(
            [*elsewhere, f"--data-dir={data_dir}", f"--listen=tcp/127.0.0.1:{port}", *extra],
            timeout=60,
            capture_output=True,
        )
        assert done.returncode == 1
        stderr: str = done.stderr.decode()
        assert "Traceback" not in stderr
        return stderr

    assert "node id n1 is already live" in refused(tmp_path / "clone", free_port())
    assert "in use by another clusterstate node" in refused(twin.data_dir, free_port())
    assert "cannot open the zenoh session" in refused(tmp_path / "other", twin.port, "--node-id=n9")
    assert cluster.settled() is not None


_JUMPING_NODE = """
import sys, threading, time
real_time, real_ns = time.time, time.time_ns
offset = [0.0]
time.time = lambda: real_time() + offset[0]
time.time_ns = lambda: real_ns() + int(offset[0] * 1e9)
def jump():
    for step in (3600.0, -7200.0, 3600.0):
        time.sleep(1.0)
        offset[0] += step
threading.Thread(target=jump, daemon=True).start()
from clusterstate.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_wall_clock_jumps_change_nothing(make_cluster: Make) -> None:
    """Scenario 15: the master's wall clock jumps +1 h, -2 h, +1 h while events flow: no election, nothing lost."""
    cluster = make_cluster()
    cluster.start("n1", launcher=("-c", _JUMPING_NODE))  # n1 runs alone first, so it is the master
    cluster.wait_for("n1 master", lambda: cluster.masters() == {"n1"}, 30)
    cluster.start("n2")
    cluster.start("n3")
    master = cluster.wait_for("one master", cluster.settled, 30)
    term = _term(cluster, master)
    released = [event for name in cluster.names for event in emit(cluster.nodes[name], "jumps", 15)]
    assert assert_converged(cluster, released) == master
    assert _term(cluster, master) == term
