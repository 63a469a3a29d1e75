"""``clusterstate status``: its exit code as a pure function of the members' statuses (hypothesis), and the real
command run as a subprocess against the HTTP API served on a free port over nodes on real cores."""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clusterstate import MasterCore
from clusterstate.cli.status import Health, health
from clusterstate.cli.status_view import short_session
from support.node_views import NODES, CoreNode, link, master_over_trace, served
from support.processes import Processes
from support.traces import trace

MASTER, FOLLOWER, OTHER = NODES[:3]

# health, the pure decision

_IDS = st.sampled_from(["a", "b", "c", "d", "e"])
_SESSIONS = st.sampled_from([None, "1/a", "1/b", "2/a", "3/c"])


def _status(session: str | None) -> dict[str, Any]:
    return {"session": session}


_MEMBERS = st.dictionaries(_IDS, st.one_of(st.none(), _SESSIONS.map(_status)), max_size=5)


@given(_MEMBERS, st.randoms(use_true_random=False))
def test_the_order_of_the_members_never_changes_the_health(members: dict[str, Any], rng: random.Random) -> None:
    items = list(members.items())
    rng.shuffle(items)
    assert health(dict(items)) == health(members)


@given(_MEMBERS, st.sampled_from(["1/a", "2/a", "3/c"]), st.sampled_from(["1/b", "4/d"]))
def test_two_distinct_sessions_are_a_split(members: dict[str, Any], first: str, second: str) -> None:
    members = {**members, "x": _status(first), "y": _status(second)}
    assert health(members) is Health.SPLIT


@given(st.sampled_from(["1/a", "2/a", "3/c"]), st.sets(_IDS), st.sets(_IDS))
def test_one_session_followed_by_every_member_with_its_master_is_healthy(
    session: str, followers: set[str], silent: set[str]
) -> None:
    master = session.partition("/")[2]
    members: dict[str, Any] = dict.fromkeys(silent - {master})
    members.update({node: _status(session) for node in followers | {master}})
    assert health(members) is Health.HEALTHY


@given(st.sampled_from(["1/a", "2/a", "3/c"]), st.sets(_IDS, min_size=1), st.booleans())
def test_a_session_without_its_master_is_no_master(session: str, followers: set[str], silent: bool) -> None:
    master = session.partition("/")[2]
    members: dict[str, Any] = {node: _status(session) for node in followers - {master}} or {"z": _status(session)}
    if silent:
        members[master] = None
    assert health(members) is Health.NO_MASTER


@given(_MEMBERS)
def test_a_member_following_no_session_keeps_the_cluster_from_healthy(members: dict[str, Any]) -> None:
    assert health({**members, "lost": _status(None)}) is not Health.HEALTHY


@given(st.dictionaries(_IDS, st.one_of(st.none(), st.just(_status(None)))))
def test_no_session_at_all_is_no_master(members: dict[str, Any]) -> None:
    assert health(members) is Health.NO_MASTER


def test_a_session_is_shown_with_its_short_master() -> None:
    assert short_session(f"3/{MASTER}") == f"3/…{MASTER[-8:]}"
    assert short_session(None) == "—"


# the command against a served API


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterCore]:
    core = master_over_trace(tmp_path / "a", MASTER, term=1)
    yield core
    core.close()


def status(processes: Processes, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "clusterstate", "status", "--timeout", "20", *args]
    return processes.run(command, capture_output=True, text=True, timeout=120, env={"COLUMNS": "200"})


def test_a_healthy_cluster_exits_0_and_shows_every_member(master: MasterCore, processes: Processes) -> None:
    follower = CoreNode(FOLLOWER, master, role="follower")
    link(CoreNode(MASTER, master, role="master"), follower, silent=(OTHER,))
    with served(follower) as url:
        result = status(processes, "--api", url)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    members, summary, rest = result.stdout.partition("cluster test · ")
    rows = {line.split()[0]: line.split() for line in members.splitlines() if line.strip().startswith("…")}
    session = f"1/…{MASTER[-8:]}"
    assert rows[f"…{MASTER[-8:]}"][1:8] == ["master", "1", session, str(len(trace())), "0", "0", "yes"]
    assert rows[f"…{FOLLOWER[-8:]}"][1:9] == ["*", "follower", "1", session, str(len(trace())), "0", "0", "yes"]
    assert rows[f"…{OTHER[-8:]}"][1:] == ["—"] * 6 + ["no"]
    assert summary
    assert rest.startswith(
        f"asked …{FOLLOWER[-8:]} · 2 of 3 members answered · session {session} · master next {len(trace())}"
    )
    assert result.stdout.count("healthy") == 1
    assert rest.count("connected") == len(NODES)  # the State's node table


def test_json_prints_the_cluster_reply(master: MasterCore, processes: Processes) -> None:
    leader = CoreNode(MASTER, master, role="master")
    link(leader, CoreNode(FOLLOWER, master, role="follower"))
    with served(leader) as url:
        result = status(processes, "--api", f"{url}/", "--json")
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert (reply["node"], reply["role"], reply["next"]) == (MASTER, "master", len(trace()))
    assert {node: member["role"] for node, member in reply["members_status"].items()} == {
        MASTER: "master",
        FOLLOWER: "follower",
    }


def test_candidates_without_a_session_exit_1(master: MasterCore, processes: Processes) -> None:
    asked = CoreNode(MASTER, master, role="candidate", follows=False)
    link(asked, CoreNode(FOLLOWER, master, role="candidate", follows=False))
    with served(asked) as url:
        result = status(processes, "--api", url)
    assert result.returncode == 1, result.stderr
    assert "no master" in result.stdout


def test_followers_whose_master_does_not_answer_exit_1(master: MasterCore, processes: Processes) -> None:
    asked = CoreNode(FOLLOWER, master, role="follower")
    link(asked, CoreNode(OTHER, master, role="follower"), silent=(MASTER,))
    with served(asked) as url:
        assert status(processes, "--api", url, "--json").returncode == 1


def test_two_sessions_exit_2(master: MasterCore, tmp_path: Path, processes: Processes) -> None:
    other = master_over_trace(tmp_path / "b", FOLLOWER, term=2)
    try:
        asked = CoreNode(MASTER, master, role="master")
        link(asked, CoreNode(FOLLOWER, other, role="master"))
        with served(asked) as url:
            result = status(processes, "--api", url)
    finally:
        other.close()
    assert result.returncode == 2, result.stderr
    assert f"1/…{MASTER[-8:]}" in result.stdout
    assert f"2/…{FOLLOWER[-8:]}" in result.stdout
    assert "split" in result.stdout


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port: int = listener.getsockname()[1]
    return port


def test_an_unreachable_api_exits_3(master: MasterCore, processes: Processes) -> None:
    result = status(processes, "--api", f"http://127.0.0.1:{_closed_port()}")
    assert (result.returncode, result.stdout) == (3, "")
    assert result.stderr.startswith("clusterstate status: cannot reach http://127.0.0.1:")
    assert result.stderr.count("\n") == 1
    with served(CoreNode(MASTER, master, role="master")) as url:
        not_the_api = status(processes, "--api", f"{url}/elsewhere", "--json")
    assert (not_the_api.returncode, not_the_api.stdout) == (3, "")
    assert "answered 404" in not_the_api.stderr


@pytest.mark.parametrize(
    ("flag", "value"), [("--timeout", "0"), ("--timeout", "61"), ("--watch", "nan"), ("--watch", "-1")]
)
def test_bad_flags_exit_2_naming_the_flag(processes: Processes, flag: str, value: str) -> None:
    result = status(processes, flag, value)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(f"clusterstate status: argument {flag}: must be a finite number in (0, ")


def test_watch_json_prints_a_line_per_round_until_ctrl_c(master: MasterCore, processes: Processes) -> None:
    leader = CoreNode(MASTER, master, role="master")
    with served(leader) as url:
        command = [sys.executable, "-m", "clusterstate", "status", "--api", url, "--json", "--watch", "0.05"]
        with processes.popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        ) as child:
            assert child.stdout is not None
            rounds = [json.loads(child.stdout.readline()) for _ in range(3)]
            child.send_signal(signal.SIGINT)
            _, stderr = child.communicate(timeout=60)
    assert [reply["node"] for reply in rounds] == [MASTER] * 3
    assert (child.returncode, stderr) == (0, "")
