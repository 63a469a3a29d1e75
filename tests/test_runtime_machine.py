"""The node machine's own rules, one input at a time (the simulator runs them all together over many seeds):
a lone node elects itself, a resignation skips the debounce, a new session is held until its lineage is checked,
and a replica that diverged from the new master's log is set aside and fetched again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clusterstate import MasterCore
from clusterstate.runtime.actions import Declare, Effect, Fetch, Publish
from clusterstate.runtime.datadir import DataDir
from clusterstate.runtime.election import Resignation, encode_resignation
from clusterstate.runtime.keys import Keys, Session
from clusterstate.runtime.lineage import Epoch
from clusterstate.runtime.machine import NodeMachine, NodeOptions
from clusterstate.runtime.wire import Heartbeat, encode_heartbeat, join_frame
from event_bytes import info_event
from support.envelopes import envelope

KEYS = Keys("m")
OPTIONS = NodeOptions(cluster="m", durability="none", join_wait_s=1.0, debounce_s=0.2)


@pytest.fixture
def made() -> Iterator[list[NodeMachine]]:
    machines: list[NodeMachine] = []
    yield machines
    for m in machines:
        m.stop(0.0)
        m.data.close()


def machine(made: list[NodeMachine], path: Path, node: str) -> NodeMachine:
    m = NodeMachine(node, DataDir(path / node), OPTIONS, now=0.0)
    made.append(m)
    m.start(0.0)
    m.on_liveliness(KEYS.member(node), True, 0.0)
    return m


def campaigned(effects: list[Effect]) -> bool:
    return any(isinstance(e, Publish) and e.key == KEYS.election() for e in effects)


def test_a_lone_node_waits_for_a_master_then_elects_itself(tmp_path: Path, made: list[NodeMachine]) -> None:
    m = machine(made, tmp_path, "a")
    assert not campaigned(m.tick(0.5))
    effects = m.tick(1.01)
    assert campaigned(effects)
    assert Declare(KEYS.master(Session(1, "a"))) in effects
    assert m.role == "master"
    assert m.data.read_term() == 1
    assert m.status()["lineage"] == [[1, "a", 0]]


def test_a_resignation_heard_skips_the_debounce(tmp_path: Path, made: list[NodeMachine]) -> None:
    for resigned in (False, True):
        m = machine(made, tmp_path / str(resigned), "b")
        session = Session(1, "a")
        m.on_liveliness(KEYS.member("a"), True, 0.1)
        m.on_liveliness(KEYS.master(session), True, 0.1)
        assert m.follower.session == session
        if resigned:
            m.on_publications(KEYS.election(), [encode_resignation(Resignation(session))], 2.0)
        effects = m.on_liveliness(KEYS.master(session), False, 2.0)
        assert campaigned(effects) == resigned
        if not resigned:
            assert not campaigned(m.tick(2.1))
            assert campaigned(m.tick(2.21))  # after the debounce


def _frames_of(session: Session, count: int) -> tuple[list[bytes], MasterCore]:
    master = MasterCore((session.master, session.term))
    batch = [envelope("p/x", i, info_event("p", f"e{i}"), "p", (session.master, session.term)) for i in range(count)]
    return master.ingest(batch).broadcast, master


def test_a_new_session_is_held_until_its_lineage_is_checked(tmp_path: Path, made: list[NodeMachine]) -> None:
    m = machine(made, tmp_path, "b")
    session = Session(1, "a")
    m.on_liveliness(KEYS.master(session), True, 0.1)
    frames, _ = _frames_of(session, 3)
    m.on_publications(KEYS.global_(session), [join_frame(frames)], 0.2)
    assert m.next_index == 0
    assert m.follower.counters["held_frames"] == 1
    lineage = (Epoch(session, 0),)
    m.on_publications(KEYS.heartbeat(session), [encode_heartbeat(Heartbeat(3, None, lineage))], 0.3)
    m.on_publications(KEYS.global_(session), [join_frame(frames)], 0.4)
    assert m.next_index == 3
    assert m.status()["lineage"] == [[1, "a", 0]]


def test_a_replica_that_diverged_is_set_aside_and_fetched_again(tmp_path: Path, made: list[NodeMachine]) -> None:
    m = machine(made, tmp_path, "b")
    old = Session(1, "a")
    m.on_liveliness(KEYS.master(old), True, 0.1)
    m.on_publications(KEYS.heartbeat(old), [encode_heartbeat(Heartbeat(0, None, (Epoch(old, 0),)))], 0.2)
    frames, _ = _frames_of(old, 5)
    m.on_publications(KEYS.global_(old), [join_frame(frames)], 0.3)
    assert m.next_index == 5
    # The old master is gone; c's log of session 1 ended at 3 before it won term 2: b's events 3 and 4 were
    # written by session 1 only on b's side.
    new = Session(2, "c")
    m.on_liveliness(KEYS.master(old), False, 0.4)
    m.on_liveliness(KEYS.master(new), True, 0.4)
    theirs = (Epoch(old, 0), Epoch(new, 3))
    effects = m.on_publications(KEYS.heartbeat(new), [encode_heartbeat(Heartbeat(3, None, theirs))], 0.5)
    assert m.next_index == 0
    assert m.counters["diverged_events"] == 2
    assert [p.name for p in (tmp_path / "b").glob("log.diverged-*")] == ["log.diverged-2-2"]
    assert [e for e in effects if isinstance(e, Fetch)] == [Fetch(1, KEYS.events(new), 0, OPTIONS.page_limit)]
    assert m.status()["lineage"] == [[1, "a", 0], [2, "c", 3]]
