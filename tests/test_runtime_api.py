"""The node's HTTP read API (``clusterstate.runtime.api``) over nodes built on real cores.

Each node (``support.node_views.CoreNode``) holds a ``NodeCore`` fed the shared trace from a ``MasterCore`` whose
``EventLog`` holds it, and an outbox to that master; ``/debug/emit`` runs the real pipeline. Expected values come
from the trace itself and the pure-Python reference fold, never from the API.
"""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from clusterstate import MasterCore, reference
from clusterstate.errors import SnapshotRequiredError
from clusterstate.models import IndexedEvent
from clusterstate.runtime.api import INDEX_HEADER, build_app, serve
from clusterstate.runtime.metrics import ROLES
from event_bytes import info_event, noop_event
from support.node_views import NODES, CoreNode, link, master_over_trace, served
from support.traces import trace

MASTER, FOLLOWER, OTHER = NODES[:3]
EVENTS = len(trace())


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterCore]:
    core = master_over_trace(tmp_path / "log", MASTER, term=1)
    yield core
    core.close()


@pytest.fixture
def node(master: MasterCore) -> CoreNode:
    """The master node; its follower is a member, and a third member does not answer."""
    leader = CoreNode(MASTER, master, role="master")
    link(leader, CoreNode(FOLLOWER, master, role="follower"), silent=(OTHER,))
    return leader


def client(view: CoreNode, *, debug: bool = False) -> TestClient:
    return TestClient(build_app(view, debug=debug))


def camel_state() -> Any:
    """The State after the whole trace, by the reference reducer, camelCase as exo's API shows it."""
    return reference.fold(trace()).model_dump(mode="json", by_alias=True)


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == code
    assert body["detail"]
    return body


# /state


def test_state_is_the_reference_fold_in_camel_case(node: CoreNode) -> None:
    response = client(node).get("/state")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers[INDEX_HEADER] == str(EVENTS)
    assert response.json() == camel_state()


def _paths(tree: Any, prefix: str = "", depth: int = 3) -> Iterator[tuple[str, Any]]:
    if depth == 0 or not isinstance(tree, dict):
        return
    for key, value in tree.items():
        path = f"{prefix}{key}"
        yield path, value
        yield from _paths(value, f"{path}/", depth - 1)


def test_every_path_of_the_camel_case_state_selects_its_subtree(node: CoreNode) -> None:
    expected = dict(_paths(camel_state()))
    assert {f"nodeMemory/{MASTER}", f"nodeIdentities/{FOLLOWER}/friendlyName", "lastEventIndexByNode"} <= set(expected)
    with client(node) as api:
        for path, subtree in expected.items():
            response = api.get("/state", params={"path": path})
            assert response.status_code == 200, path
            assert response.headers[INDEX_HEADER] == str(EVENTS)
            assert response.json() == subtree, path


def test_a_path_indexes_lists_by_position_and_ignores_extra_slashes(node: CoreNode) -> None:
    downloads = camel_state()["downloads"]
    holder = next(node_id for node_id, entries in downloads.items() if len(entries) >= 2)
    with client(node) as api:
        for position in (0, 1):
            response = api.get("/state", params={"path": f"/downloads//{holder}/{position}/"})
            assert response.json() == downloads[holder][position]
        assert api.get("/state", params={"path": "/"}).json() == camel_state()
        past = len(downloads[holder])
        assert_error(api.get("/state", params={"path": f"downloads/{holder}/{past}"}), 404, "not_found")
        assert_error(api.get("/state", params={"path": f"downloads/{holder}/-1"}), 404, "not_found")


@pytest.mark.parametrize(
    "path",
    ["nodeMemory/no-such-node", f"nodeIdentities/{MASTER}/noSuchField", "node_memory", "lastEventAppliedIdx/0"],
)
def test_a_path_that_does_not_exist_is_404(node: CoreNode, path: str) -> None:
    body = assert_error(client(node).get("/state", params={"path": path}), 404, "not_found")
    assert repr(path.split("/")[-1]) in body["detail"]


# /cluster


def test_cluster_is_this_nodes_status(node: CoreNode) -> None:
    body = client(node).get("/cluster").json()
    assert body["node"] == MASTER
    assert body["role"] == "master"
    assert body["session"] == f"1/{MASTER}"
    assert (body["next"], body["master_next"], body["lag"], body["missing"]) == (EVENTS, EVENTS, 0, None)
    assert body["members"] == sorted([MASTER, FOLLOWER, OTHER])
    assert "members_status" not in body


def test_cluster_all_adds_every_members_status(node: CoreNode) -> None:
    body = client(node).get("/cluster", params={"all": "1", "within": "0.5"}).json()
    members = body["members_status"]
    assert set(members) == {MASTER, FOLLOWER, OTHER}
    assert members[OTHER] is None
    assert members[FOLLOWER]["role"] == "follower"
    assert members[FOLLOWER]["session"] == body["session"]
    assert members[FOLLOWER]["next"] == EVENTS


@pytest.mark.parametrize("params", [{"all": "yes"}, {"all": "1", "within": "0"}, {"all": "1", "within": "nan"}])
def test_cluster_refuses_bad_parameters(node: CoreNode, params: dict[str, str]) -> None:
    assert_error(client(node).get("/cluster", params=params), 400, "bad_request")


# /events


def lines_of(response: Any) -> list[IndexedEvent]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    return [IndexedEvent.model_validate_json(line) for line in response.text.splitlines()]


def test_events_are_the_logs_lines(node: CoreNode) -> None:
    with client(node) as api:
        assert lines_of(api.get("/events", params={"since": 0, "limit": 10_000})) == trace()
        assert lines_of(api.get("/events", params={"since": 380, "limit": 3})) == trace()[380:383]
        assert len(lines_of(api.get("/events", params={"since": 0}))) == EVENTS  # the default limit is 1,000
        caught_up = api.get("/events", params={"since": EVENTS})
        assert lines_of(caught_up) == []
        assert caught_up.headers[INDEX_HEADER] == str(EVENTS)


def test_events_past_the_end_are_416_with_the_next_index(node: CoreNode) -> None:
    body = assert_error(client(node).get("/events", params={"since": EVENTS + 1}), 416, "index_ahead")
    assert body["index"] == EVENTS


class _Compacted(CoreNode):
    """A node whose log keeps events from ``retained_from`` on (the cores' logs always start at 0)."""

    retained_from = 100

    def events_since(self, since: int, limit: int) -> list[bytes]:
        if since < self.retained_from:
            raise SnapshotRequiredError(since, self.retained_from)
        return super().events_since(since, limit)


def test_events_before_the_log_are_410_with_its_first_index(master: MasterCore) -> None:
    api = client(_Compacted(MASTER, master, role="master"))
    body = assert_error(api.get("/events", params={"since": 99}), 410, "snapshot_required")
    assert body["index"] == 100
    assert lines_of(api.get("/events", params={"since": 100, "limit": 1})) == trace()[100:101]


@pytest.mark.parametrize(
    "query",
    ["", "since=-1", "since=x", "since=1.5", "since=0&limit=0", "since=0&limit=10001", "since=0&page=2", "limit=5"],
)
def test_events_refuse_bad_parameters(node: CoreNode, query: str) -> None:
    body = assert_error(client(node).get(f"/events?{query}"), 400, "bad_request")
    assert "since" in body["detail"] or "limit" in body["detail"]


# /healthz and /node_id


def test_healthz_is_ok_for_a_node_following_a_session(node: CoreNode) -> None:
    response = client(node).get("/healthz")
    assert (response.status_code, response.json()) == (200, {"ok": True})


def test_healthz_is_503_without_a_session_while_syncing_or_behind(master: MasterCore) -> None:
    candidate = CoreNode(FOLLOWER, master, role="candidate", follows=False)
    syncing = CoreNode(FOLLOWER, master, role="syncing")
    behind = CoreNode(FOLLOWER, master, role="follower")
    behind.core.note_master_index(EVENTS + 5)
    for view, reason in [
        (candidate, "no session (role candidate)"),
        (syncing, f"role syncing in session 1/{MASTER}"),
        (behind, f"missing events from index {EVENTS}"),
    ]:
        response = client(view).get("/healthz")
        assert (response.status_code, response.json()) == (503, {"ok": False, "reason": reason})


def test_node_id_is_a_json_string(node: CoreNode) -> None:
    response = client(node).get("/node_id")
    assert response.headers["content-type"] == "application/json"
    assert response.json() == MASTER


# /metrics


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample, by its family name and sorted labels, as the Prometheus client's parser reads them."""
    return {
        (family.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_parse_and_carry_every_counter_and_gauge(node: CoreNode) -> None:
    node.dropped["global"] = 7
    response = client(node).get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    parsed = samples(response.text)
    me = (("node", MASTER),)
    assert parsed[("clusterstate_node_applied", me)] == EVENTS
    assert parsed[("clusterstate_node_received", me)] == EVENTS
    assert parsed[("clusterstate_outbox_pushed", me)] == 0
    assert parsed[("clusterstate_dropped", (*me, ("stream", "global")))] == 7
    assert parsed[("clusterstate_dropped", (*me, ("stream", "local")))] == 0
    for gauge, value in [("next", EVENTS), ("lag", 0), ("pending", 0), ("term", 1)]:
        assert parsed[(f"clusterstate_{gauge}", me)] == value
    assert {role: parsed[("clusterstate_role", (*me, ("role", role)))] for role in ROLES} == {
        role: float(role == "master") for role in ROLES
    }
    counters = {name for name, _ in parsed if name not in {f"clusterstate_{g}" for g in ("next", "lag", "pending")}}
    assert {f"clusterstate_node_{name}" for name in node.core.counters} <= counters


def test_metrics_leave_out_the_lag_of_a_node_without_a_master(master: MasterCore) -> None:
    parsed = samples(client(CoreNode(FOLLOWER, master, role="candidate", follows=False)).get("/metrics").text)
    assert not [key for key in parsed if key[0] == "clusterstate_lag"]
    assert parsed[("clusterstate_role", (("node", FOLLOWER), ("role", "candidate")))] == 1


# /debug/emit


def test_debug_emit_exists_only_in_a_debug_app(node: CoreNode) -> None:
    assert client(node).post("/debug/emit", content=noop_event("e")).status_code == 404


def test_debug_emit_releases_the_event_through_the_real_pipeline(node: CoreNode) -> None:
    with client(node, debug=True) as api:
        response = api.post("/debug/emit", content=info_event(MASTER, "emitted"))
        assert (response.status_code, response.json()) == (200, {"index": EVENTS + 1})
        (logged,) = lines_of(api.get("/events", params={"since": EVENTS}))
        assert (logged.idx, logged.origin, logged.event.event_id) == (EVENTS, MASTER, "emitted")
        assert api.get("/state", params={"path": f"nodeIdentities/{MASTER}/friendlyName"}).json() == MASTER
        assert api.get("/cluster").json()["pending"] == 0
    follower = node.members[FOLLOWER]
    assert follower is not None
    assert follower.core.next_index == EVENTS + 1


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b'{"NoSuchEvent": {}}', b'{"TestEvent": {"event_id": 5}}', info_event(FOLLOWER), b'{"a": 1, "a": 2}'],
)
def test_debug_emit_refuses_what_is_not_an_event_of_this_node(node: CoreNode, body: bytes) -> None:
    assert_error(client(node, debug=True).post("/debug/emit", content=body), 400, "bad_request")
    assert node.outbox.pending == 0


def test_debug_emit_times_out_when_nothing_releases_the_event(master: MasterCore) -> None:
    candidate = CoreNode(FOLLOWER, master, role="candidate", follows=False)
    response = client(candidate, debug=True).post("/debug/emit?within=0.05", content=noop_event("stuck"))
    assert_error(response, 504, "timeout")
    assert candidate.outbox.pending == 1


# serve


def test_serve_answers_on_the_port_it_reports_and_stops_cleanly(node: CoreNode) -> None:
    with served(node) as url:
        with urllib.request.urlopen(f"{url}/node_id", timeout=10) as response:
            assert json.loads(response.read()) == MASTER
        with urllib.request.urlopen(f"{url}/events?since=385", timeout=10) as response:
            assert response.headers[INDEX_HEADER] == str(EVENTS)
            assert [IndexedEvent.model_validate_json(line) for line in response.read().splitlines()] == trace()[385:]
        port = int(url.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def test_serve_refuses_a_port_in_use(node: CoreNode) -> None:
    async def main() -> None:
        with socket.create_server(("127.0.0.1", 0)) as taken, pytest.raises(OSError, match="in use"):
            await serve(node, "127.0.0.1", taken.getsockname()[1], shutdown=anyio.Event())

    anyio.run(main)
