"""The master of a :class:`~.local.LocalCluster` SIGKILLed while every node pushes events: timed and checked.

``clusterstate demo`` shows this run live and ``benches/cluster_figures.py`` repeats it. :class:`Emitters` keeps
one thread per node pushing events through its outbox (``POST /debug/emit``: the nodes run with ``--debug-api``)
and collects the ids released; :func:`run_failover` lets them run, kills the master, times the new master and the
settled cluster, stops them and checks the cluster with :func:`~.check.converge`.
"""

from __future__ import annotations

import threading
import time
import urllib.error
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from clusterstate.codec import encode_event
from clusterstate.models import EventId, TestEvent

from .check import Verdict, converge
from .local import LocalCluster, LocalNode

__all__ = ["Emitters", "Failover", "Phase", "marker_event", "run_failover"]

Phase = Callable[[str], None]
"""Called with a line saying what the run waits for, at every poll, so a caller can redraw (``clusterstate demo``)."""

_POLL_S = 0.05
_EMIT_WITHIN_S = 15.0
_RETRY_S = 0.2


def marker_event(event_id: str) -> bytes:
    """A ``TestEvent``: indexed, logged and replicated like any event, it leaves the rest of the State alone (the
    hardware the nodes' gatherers report stays as it is)."""
    return encode_event(TestEvent(event_id=EventId(event_id)))


class Emitters:
    """One thread per node pushing ``event(id)`` through its outbox every `every` seconds until :meth:`stop`.

    An event counts as released once ``/debug/emit`` answered; a node that does not answer (killed) or does not
    release in time counts a failure, and its thread retries with new events while the node runs.
    """

    def __init__(self, nodes: Iterable[LocalNode], event: Callable[[str], bytes], every: float) -> None:
        self._event = event
        self._every = every
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._released: list[str] = []
        self.failures = 0
        self._threads = [threading.Thread(target=self._push, args=(node,), daemon=True) for node in nodes]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, *, wait: bool = True) -> list[str]:
        """Stop every thread and return the ids released; with `wait`, each finishes the push it is in first (an
        interrupted run does not wait: the threads are daemons)."""
        self._stop.set()
        if wait:
            for thread in self._threads:
                thread.join()
        return self.released

    @property
    def released(self) -> list[str]:
        with self._lock:
            return list(self._released)

    def _push(self, node: LocalNode) -> None:
        sent = 0
        while not self._stop.is_set() and node.running:
            event_id = f"demo-{node.name}-{node.starts}-{sent}"
            sent += 1
            try:
                node.post(f"/debug/emit?within={_EMIT_WITHIN_S:g}", self._event(event_id), _EMIT_WITHIN_S + 5)
            except (OSError, urllib.error.URLError, ValueError):
                with self._lock:
                    self.failures += 1
                self._stop.wait(_RETRY_S)
                continue
            with self._lock:
                self._released.append(event_id)
            self._stop.wait(self._every)


@dataclass(frozen=True)
class Failover:
    """One SIGKILL of the master: who, the terms, how long until a new master served and until the cluster
    settled, and what :func:`~.check.converge` found afterwards."""

    old_master: str
    new_master: str
    term_before: int
    term_after: int
    to_master_s: float
    """SIGKILL of the master → a surviving node says it is master."""
    to_settled_s: float
    """SIGKILL of the master → every surviving node follows the new master with nothing missing, no lag."""
    released: int
    emit_failures: int
    verdict: Verdict

    @property
    def ok(self) -> bool:
        return self.verdict.ok and self.new_master != self.old_master


def _term(node: LocalNode) -> int:
    status = node.status()
    return -1 if status is None else int(status["term"])


def _wait(cluster: LocalCluster, what: str, check: Callable[[], str | None], phase: str, on: Phase) -> str:
    def polled() -> str | None:
        on(phase)
        return check()

    return cluster.wait_for(what, polled, 30, every=_POLL_S)


def run_failover(
    cluster: LocalCluster,
    *,
    before_s: float = 3.0,
    after_s: float = 3.0,
    every: float = 0.05,
    on: Phase = lambda _: None,
) -> Failover:
    """On a started cluster: wait until it settles, push events from every node for `before_s`, SIGKILL the
    master, wait for a new master and for the cluster to settle, push for `after_s` more, then check it.

    Raises:
        TimeoutError: no master, or no new one, within 30 s.
    """
    old = _wait(cluster, "one master", cluster.settled, "electing a master", on)
    term_before = _term(cluster.nodes[old])
    emitters = Emitters(cluster.running(), marker_event, every)
    emitters.start()
    try:
        _pause(before_s, f"pushing events (master {old})", on)
        cluster.kill(old)
        killed = time.monotonic()
        survivors = cluster.running()

        def new_master() -> str | None:
            return next((n.name for n in survivors if (s := n.status()) is not None and s["role"] == "master"), None)

        new = _wait(cluster, "a new master", new_master, f"{old} SIGKILLed; waiting for a new master", on)
        to_master_s = time.monotonic() - killed
        _wait(cluster, "the survivors settled", cluster.settled, f"{new} is master; every node follows it", on)
        to_settled_s = time.monotonic() - killed
        _pause(after_s, f"pushing events (master {new})", on)
    except BaseException:
        emitters.stop(wait=False)
        raise
    released = emitters.stop()
    on("checking every log and State")
    verdict = converge(cluster, released)
    return Failover(
        old_master=old,
        new_master=new,
        term_before=term_before,
        term_after=_term(cluster.nodes[new]),
        to_master_s=to_master_s,
        to_settled_s=to_settled_s,
        released=len(released),
        emit_failures=emitters.failures,
        verdict=verdict,
    )


def _pause(seconds: float, phase: str, on: Phase) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        on(phase)
        time.sleep(_POLL_S)
