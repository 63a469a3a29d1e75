"""A deterministic whole-cluster simulator: N real :class:`~clusterstate.runtime.machine.NodeMachine`s in one process.

Each node is a real machine (real Rust cores writing real ``EventLog``s, one
:class:`~clusterstate.runtime.datadir.DataDir` per node in a temporary directory) on the simulated network of
:mod:`.fabric` (publications, liveliness tokens and watches, queries; loss, duplication, delay and reordering),
in simulated time: nothing sleeps, and one ``random.Random(seed)`` draws everything, so a seed replays the same
run (the same :attr:`Report.digest`). Every node pushes events (its own ``NodeGatheredInfo`` samples, test events
and task deletions) at seeded times, while faults strike at seeded times: a crash (the machine is dropped and its
directory closed; its tokens leave a moment later) and a restart on the same directory (same node id, a new
producer), a hang (nothing reaches the node and it does not tick; its tokens leave after the lease; then it runs
again and must give way to a higher term), a graceful stop (``stop()``) and a new node joining. After
`duration_s` the faults stop, the network heals, every node is started or resumed, and the cluster is given up to
`settle_s` to quiesce.

# Invariants

Checked after every machine call:

1. At most one node serves as master in each term, across the whole run.
2. A node's term never goes back, across its restarts too.
3. An acknowledgement a producer's gate releases names an event its own node's log already holds (the gate's
   rule: the releases are recorded by the ``gate`` passed to every machine, mapped to event ids through the
   envelopes the producers published).

Checked once the cluster has quiesced:

4. There is exactly one master, and every producer's outbox is empty.
5. The master's log is indexed without gaps and holds no event twice; every event a gate released is in it.
6. Every node's log is the master's, and its State equals :func:`clusterstate.reference.fold` of the master's log
   read back.

A machine that raises is a violation too (the run stops there).
"""

from __future__ import annotations

import json
import random
import tempfile
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from clusterstate import reference
from clusterstate.models import IndexedEvent
from clusterstate.runtime.actions import Answer, Effect, Fetch, Publish
from clusterstate.runtime.check import event_ids, verdict_of
from clusterstate.runtime.datadir import DataDir
from clusterstate.runtime.gating import AckGate, Pair
from clusterstate.runtime.keys import Keys, Session, matches
from clusterstate.runtime.machine import NodeMachine, NodeOptions
from clusterstate.runtime.wire import split_frame

from .chaos_events import random_event
from .fabric import Links, Network, Port

__all__ = ["Cluster", "RecordingGate", "Release", "Report", "run"]

Release = tuple[Session, str, int]  # (session, producer, origin_idx)
_PAGE = 10_000
_MIN_TICK_S = 0.005  # the soonest a node is ticked again after a call
_QUIET_EVERY_S = 0.5  # how often quiescence is looked for once the faults stopped
_SHM = Path("/dev/shm")
_JOINS = 1  # nodes joining during the run (or, at the latest, when the faults stop)


class RecordingGate(AckGate):
    """The real gate, recording every pair it releases with the session it was held in."""

    def __init__(self, released: list[Release], session: Callable[[], Session]) -> None:
        super().__init__()
        self._released = released
        self._session_of = session
        self._session: Session | None = None

    def hold(self, upto: int, pairs: Iterable[Pair]) -> None:
        # Held only from within `on_ack` for the producer's current session: this gate's session.
        self._session = self._session or self._session_of()
        super().hold(upto, pairs)

    def release(self, applied: int, commit: int | None = None) -> list[Pair]:
        pairs = super().release(applied, commit)
        if pairs and self._session is not None:
            self._released.extend((self._session, producer, seq) for producer, seq in pairs)
        return pairs


@dataclass(frozen=True)
class Report:
    """What one run did and whether every invariant held (`violations` empty)."""

    seed: int
    nodes: int
    duration_s: float
    digest: str
    violations: tuple[str, ...]
    pushed: int
    released: int
    logged: int
    term: int  # the highest term any node reached
    sessions: int  # how many master sessions served
    settled_s: float | None  # simulated seconds from the end of the faults to quiescence
    faults: Mapping[str, int]
    network: Mapping[str, int]

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def replay(self) -> str:
        """The command that replays this run."""
        return f"clusterstate chaos --seed {self.seed} --nodes {self.nodes} --duration {self.duration_s:g}"


@dataclass
class _Host:
    """One node id and its data directory, across the machines (incarnations) run on it."""

    name: str
    path: Path
    machine: NodeMachine | None = None
    data: DataDir | None = None
    port: Port | None = None
    term: int = 0
    incarnation: int = 0
    tick_at: float = float("inf")
    released: list[Release] = field(default_factory=list)

    @property
    def up(self) -> bool:
        return self.machine is not None


class Cluster:
    """The simulated cluster of one run (see the module docstring)."""

    def __init__(
        self,
        seed: int,
        nodes: int,
        duration_s: float,
        root: Path,
        *,
        gate: type[RecordingGate] = RecordingGate,
        settle_s: float = 60.0,
    ) -> None:
        self.seed, self.nodes, self.duration_s, self.settle_s = seed, nodes, duration_s, settle_s
        self.root, self.gate = root, gate
        self.rng = random.Random(seed)
        self._joins = _JOINS
        self.options = NodeOptions(
            cluster="chaos",
            quorum=(nodes + _JOINS) // 2 + 1,
            durability="none",
            period_s=2.0,
            page_limit=25,
            snapshot_every=50,
            tick_s=0.1,
        )
        self.links = Links(
            loss=0.05, copy=0.05, late=0.1, lease_s=self.options.lease_s, timeout_s=self.options.page_timeout_s
        )
        self.network = Network(self.rng, self.links)
        self.keys = Keys(self.options.cluster)
        self.hosts: list[_Host] = []
        self.violations: list[str] = []
        self.faults: Counter[str] = Counter()
        self.served: dict[int, str] = {}  # term -> the node that served it
        self.envelopes: dict[Release, str] = {}  # (session, producer, origin_idx) -> event id
        self.indices: dict[str, set[int]] = {}  # event id -> the indices masters gave it
        self.pushed: set[str] = set()
        self.released: set[str] = set()
        self.settled: float | None = None
        for _ in range(nodes):
            self._start(self._new_host())

    # Running.

    def run(self) -> None:
        net = self.network
        for host in self.hosts:
            net.at(self.rng.uniform(0, 1), partial(self._push, host))
        net.at(self.rng.expovariate(1 / 3.0), self._fault)
        net.at(self.duration_s, self._heal)
        end = self.duration_s + self.settle_s
        quiet_at = self.duration_s + _QUIET_EVERY_S
        while not self.violations and net.next_due <= end:
            while net.next_due > quiet_at:
                if self._quiet():
                    self.settled = quiet_at - self.duration_s
                    return
                quiet_at += _QUIET_EVERY_S
            net.step()
        if not self.violations:
            self.violations.append(f"the cluster did not quiesce within {self.settle_s:g} s: {self._roles()}")

    def report(self) -> Report:
        logged = self._final_checks() if not self.violations else 0
        return Report(
            seed=self.seed,
            nodes=self.nodes,
            duration_s=self.duration_s,
            digest=self.network.digest,
            violations=tuple(self.violations),
            pushed=len(self.pushed),
            released=len(self.released),
            logged=logged,
            term=max(host.term for host in self.hosts),
            sessions=len(self.served),
            settled_s=self.settled,
            faults=dict(sorted(self.faults.items())),
            network=dict(self.network.counters),
        )

    def close(self) -> None:
        for host in self.hosts:
            if host.machine is not None:
                self._down(host, crash=True)

    # The nodes.

    def _new_host(self) -> _Host:
        name = f"n{len(self.hosts)}"
        host = _Host(name, self.root / name)
        self.hosts.append(host)
        return host

    def _start(self, host: _Host) -> None:
        now = self.network.now
        host.incarnation += 1
        host.data = DataDir(host.path)
        host.port = self.network.attach(host.name, _Handler(self, host))
        host.machine = NodeMachine(
            host.name,
            host.data,
            self.options,
            now=now,
            gate=lambda: self.gate(host.released, lambda: _producer_session(host)),
        )
        host.tick_at = float("inf")
        self.network.note("start", host.name)
        self._after(host, host.machine.start(now))

    def _down(self, host: _Host, *, crash: bool) -> None:
        """Crash the node (drop the machine, close its cores as the process's end does) or stop it gracefully."""
        machine, port, data = host.machine, host.port, host.data
        assert machine is not None
        assert port is not None
        assert data is not None
        if crash:
            if machine.leader is not None:
                machine.leader.master.close()
            else:
                machine.follower.core.close()
        else:
            effects = machine.stop(self.network.now)
            self.network.carry_out(port, effects)
        host.machine = host.port = host.data = None
        self.network.close(port)
        data.close()
        self.network.note("crash" if crash else "stop", host.name)

    def call(self, host: _Host, what: str, step: Callable[[NodeMachine], list[Effect]]) -> None:
        """Give `host`'s machine an input; check the invariants; carry out its effects."""
        machine = host.machine
        if machine is None or self.violations:
            return
        try:
            effects = step(machine)
        except Exception as e:  # a machine that raises is a bug the run reports
            self.violations.append(f"{host.name} raised in {what} at t={self.network.now:.3f}: {e!r}")
            self.violations.extend(traceback.format_exception(e)[-4:])
            return
        self._after(host, effects)

    def _after(self, host: _Host, effects: list[Effect]) -> None:
        machine, port = host.machine, host.port
        assert machine is not None
        assert port is not None
        self._check_node(host, machine)
        for effect in effects:
            if isinstance(effect, Publish):
                self._observe(host, effect)
        self.network.carry_out(port, effects)
        due = max(machine.next_timer, self.network.now + _MIN_TICK_S)
        if due < host.tick_at or host.tick_at <= self.network.now:
            host.tick_at = due
            self.network.at(due, lambda: self._tick(host, due))

    def _tick(self, host: _Host, due: float) -> None:
        if host.tick_at != due or host.port is None or host.port.frozen:
            return
        host.tick_at = float("inf")
        now = self.network.now
        self.call(host, "tick", lambda m: m.tick(now))

    def _push(self, host: _Host) -> None:
        net = self.network
        if net.now >= self.duration_s:
            return
        net.at(net.now + self.rng.expovariate(2.0), lambda: self._push(host))
        if host.machine is None or host.port is None or host.port.frozen:
            return
        event = random_event(self.rng, host.name)
        now = net.now

        def push(machine: NodeMachine) -> list[Effect]:
            effects = machine.push(event, now)  # the outbox holds 65,536: a full one is a violation (it raises)
            self.pushed.add(str(event.event_id))
            return effects

        self.call(host, "push", push)

    # Faults.

    def _fault(self) -> None:
        net, rng = self.network, self.rng
        if net.now >= self.duration_s:
            return
        net.at(net.now + rng.expovariate(1 / 3.0), self._fault)
        running = [h for h in self.hosts if h.port is not None and not h.port.frozen]
        if not running:
            return
        masters = [h for h in running if h.machine is not None and h.machine.leader is not None]
        host = rng.choice(masters if masters and rng.random() < 0.5 else running)
        kind = rng.random()
        if kind < 0.35:
            self.faults["crash"] += 1
            self._down(host, crash=True)
            self._later(host, rng.uniform(0.5, 6.0))
        elif kind < 0.65:
            self.faults["hang"] += 1
            self._hang(host, rng.uniform(0.5, 2 * self.links.lease_s))
        elif kind < 0.85:
            self.faults["stop"] += 1
            self._down(host, crash=False)
            self._later(host, rng.uniform(0.5, 6.0))
        elif self._joins:
            self._join()

    def _join(self) -> None:
        self._joins -= 1
        self.faults["join"] += 1
        self._start(self._new_host())

    def _later(self, host: _Host, delay: float) -> None:
        """Restart `host` after `delay` (unless something started it meanwhile)."""
        incarnation = host.incarnation
        self.network.at(self.network.now + delay, lambda: self._restart(host, incarnation))

    def _restart(self, host: _Host, incarnation: int) -> None:
        if host.machine is None and host.incarnation == incarnation:
            self.faults["restart"] += 1
            self._start(host)

    def _hang(self, host: _Host, duration: float) -> None:
        port = host.port
        assert port is not None
        self.network.freeze(port)
        self.network.note("hang", host.name)
        freezes = port.freezes
        self.network.at(self.network.now + duration, lambda: self._resume(host, port, freezes))

    def _resume(self, host: _Host, port: Port, freezes: int) -> None:
        if host.port is port and port.frozen and port.freezes == freezes:
            self.network.note("resume", host.name)
            self.network.thaw(port)
            host.tick_at = self.network.now
            self._tick(host, self.network.now)

    def _heal(self) -> None:
        """The faults stop: a perfect network, every node resumed or started."""
        self.network.links = Links(lease_s=self.links.lease_s, timeout_s=self.links.timeout_s)
        for host in list(self.hosts):
            if host.port is not None and host.port.frozen:
                self._resume(host, host.port, host.port.freezes)
            elif host.machine is None:
                self._start(host)
        while self._joins:
            self._join()

    # Invariants.

    def _observe(self, host: _Host, effect: Publish) -> None:
        """Note which event each envelope carries and which index a master gave each event."""
        if effect.key == self.keys.local(host.name):
            for line in split_frame(effect.payload):
                envelope = json.loads(line)
                session = Session(envelope["session"]["election_clock"], envelope["session"]["master_node_id"])
                self.envelopes[session, envelope["origin"], envelope["origin_idx"]] = _event_id(envelope)
        elif matches(f"{self.keys.prefix}/s/*/*/global", effect.key):
            for line in split_frame(effect.payload):
                indexed = json.loads(line)
                self.indices.setdefault(_event_id(indexed), set()).add(indexed["idx"])

    def _check_node(self, host: _Host, machine: NodeMachine) -> None:
        now = self.network.now
        if machine.term < host.term:
            self.violations.append(f"t={now:.3f} {host.name}: term went back from {host.term} to {machine.term}")
        host.term = max(host.term, machine.term)
        if machine.leader is not None:
            term = machine.leader.session.term
            other = self.served.setdefault(term, host.name)
            if other != host.name:
                self.violations.append(f"t={now:.3f} two masters in term {term}: {other} and {host.name}")
        released = list(host.released)
        host.released.clear()  # the list the gates append to
        for release in released:
            event_id = self.envelopes.get(release)
            if event_id is None:
                self.violations.append(f"t={now:.3f} {host.name} released {release}, which it never published")
                continue
            self.released.add(event_id)
            if not machine.stopping and not self._holds(machine, event_id):
                self.violations.append(
                    f"t={now:.3f} {host.name} released {event_id} before its own log held it "
                    f"(indices {sorted(self.indices.get(event_id, ()))}, next {machine.next_index})"
                )

    def _holds(self, machine: NodeMachine, event_id: str) -> bool:
        for idx in self.indices.get(event_id, ()):
            if idx < machine.next_index:
                page = machine.events_since(idx, 1)
                if page and _event_id(json.loads(page[0])) == event_id:
                    return True
        return False

    def _quiet(self) -> bool:
        up = [h.machine for h in self.hosts if h.machine is not None]
        masters = [m for m in up if m.leader is not None]
        if len(up) < len(self.hosts) or len(masters) != 1 or masters[0].leader is None:
            return False
        session, next_index = masters[0].leader.session, masters[0].next_index
        return all(
            m.producer.outbox.pending == 0
            and (
                m.leader is not None
                or (
                    m.follower.session == session
                    and not m.follower.held
                    and m.follower.core.missing is None
                    and m.next_index == next_index
                )
            )
            for m in up
        )

    def _roles(self) -> str:
        return ", ".join(_describe(h) for h in self.hosts)

    def _final_checks(self) -> int:
        """Invariants 4 to 6; returns the master's log length."""
        up = [(h.name, h.machine) for h in self.hosts if h.machine is not None]
        masters = [(name, m) for name, m in up if m.leader is not None]
        if len(masters) != 1:
            self.violations.append(f"{len(masters)} masters after quiescence: {self._roles()}")
            return 0
        for name, machine in up:
            if machine.producer.outbox.pending:
                self.violations.append(f"{name}: {machine.producer.outbox.pending} envelopes still pending")
        (master, leader), lines = masters[0], _read_log(masters[0][1])
        logged = [IndexedEvent.model_validate_json(line) for line in lines]
        folded = reference.fold(logged)
        differing = [name for name, m in up if m.state != folded or (m is not leader and _read_log(m) != lines)]
        verdict = verdict_of(master, logged, sorted(self.released), differing)
        if not verdict.contiguous:
            self.violations.append("the master's log has gaps or is out of order")
        twice = [f"{event_id} ({n} times)" for event_id, n in event_ids(logged).items() if n > 1]
        self.violations += [f"in the master's log more than once: {', '.join(twice)}"] if twice else []
        self.violations += [f"released but not in the master's log: {event_id}" for event_id in verdict.lost]
        self.violations += [f"{name}: its log or State is not the master's" for name in verdict.differing]
        return verdict.log_length


class _Handler:
    """What the network calls on one node: each call becomes a machine input."""

    def __init__(self, cluster: Cluster, host: _Host) -> None:
        self.cluster = cluster
        self.host = host

    def on_publication(self, pattern: str, payload: bytes) -> None:
        now = self.cluster.network.now
        self.cluster.call(self.host, "on_publications", lambda m: m.on_publications(pattern, [payload], now))

    def on_liveliness(self, key: str, alive: bool) -> None:
        now = self.cluster.network.now
        self.cluster.call(self.host, "on_liveliness", lambda m: m.on_liveliness(key, alive, now))

    def on_query(self, key: str, parameters: Mapping[str, str]) -> Answer:
        machine = self.host.machine
        assert machine is not None  # the network asks open ports only
        return machine.on_query(key, parameters, self.cluster.network.now)

    def on_reply(self, fetch: Fetch, answer: Answer | None) -> None:
        now = self.cluster.network.now
        self.cluster.call(self.host, "on_reply", lambda m: m.on_reply(fetch, answer, now))


def _describe(host: _Host) -> str:
    m = host.machine
    if m is None:
        return f"{host.name} down"
    return f"{host.name} {m.role} {m.session} next {m.next_index} pending {m.producer.outbox.pending}"


def _producer_session(host: _Host) -> Session:
    assert host.machine is not None
    return host.machine.producer.session


def _event_id(item: Mapping[str, object]) -> str:
    """The event id of an envelope's or an indexed event's JSON object."""
    event = item["event"]
    assert isinstance(event, dict)
    ((_, body),) = event.items()
    return str(body["event_id"])


def _read_log(machine: NodeMachine) -> list[bytes]:
    lines: list[bytes] = []
    while page := machine.events_since(len(lines), _PAGE):
        lines += page
    return lines


def run(
    seed: int,
    nodes: int = 3,
    duration_s: float = 20.0,
    *,
    gate: type[RecordingGate] = RecordingGate,
    directory: Path | None = None,
) -> Report:
    """Simulate `nodes` nodes under faults for `duration_s` simulated seconds, then until they quiesce; check the
    invariants (module docstring). The nodes' data directories live in a temporary directory under `directory`
    (default: ``/dev/shm`` where it exists, since the simulated disks need no durability, else the system's)."""
    if directory is None and _SHM.is_dir():
        directory = _SHM
    with tempfile.TemporaryDirectory(prefix="chaos-", dir=directory) as root:
        cluster = Cluster(seed, nodes, duration_s, Path(root), gate=gate)
        try:
            cluster.run()
            return cluster.report()
        finally:
            cluster.close()
