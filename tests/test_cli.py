"""The ``clusterstate`` command line: ``demo`` shows the State a generated trace folds into."""

from __future__ import annotations

import pytest

from clusterstate.cli import demo_config, main
from clusterstate.codec import decode_state
from clusterstate.display import ClusterCounts
from clusterstate.reference import fold
from clusterstate.trace import cluster_spec, generate


def test_demo_shows_every_node_and_the_counts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["demo", "--nodes", "4", "--seconds", "30", "--no-local"]) == 0
    out = capsys.readouterr().out

    config = demo_config(nodes=4, seconds=30.0, seed=0)
    events = generate(config)
    state = fold(events)
    counts = ClusterCounts.of(state)
    for node in cluster_spec(config).nodes:
        assert node.friendly_name in out
        assert node.node_id[-8:] in out
    assert "Mac Studio, Apple M3 Ultra" in out
    assert f"{len(events):,} events applied" in out
    assert f"{counts.instances} instance" in out
    assert f"{counts.runners} runners" in out
    assert f"{counts.tasks} tasks" in out
    assert f"{counts.downloads} downloads" in out
    assert f"topology {counts.topology_nodes} nodes / {counts.topology_edges} edges" in out
    assert f"{counts.bridge_cycles} bridge cycle" in out
    assert (counts.instances, counts.runners, counts.topology_nodes) == (1, 2, 4)
    assert out.count("connected") == 4
    assert "disconnected" not in out  # the crash at 9-18 s is not detected within 30 s


def test_demo_shows_a_disconnected_node(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["demo", "--nodes", "4", "--seconds", "90", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    (silent,) = [node for node in cluster_spec(demo_config(4, 90.0, 3)).nodes if node.silent_at is not None]
    (row,) = [line for line in out.splitlines() if silent.friendly_name in line]
    assert row.rstrip().endswith("disconnected")
    assert "1 disconnected" in out


def test_demo_fits_a_narrow_terminal(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["demo", "--nodes", "6", "--seconds", "20", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    for node in cluster_spec(demo_config(6, 20.0, 1)).nodes:
        assert node.friendly_name in out


def test_demo_json_is_the_folded_state(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--nodes", "4", "--seconds", "30", "--json", "--no-local"]) == 0
    captured = capsys.readouterr()
    expected = fold(generate(demo_config(nodes=4, seconds=30.0, seed=0)))
    assert decode_state(captured.out) == expected
    assert captured.out == expected.model_dump_json() + "\n"


def test_demo_rejects_a_bad_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--nodes", "0"]) == 2
    assert "nodes must be at least 1" in capsys.readouterr().err


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_demo_gives_the_same_state_with_either_reducer(capsys: pytest.CaptureFixture[str]) -> None:
    outputs = []
    for reducer in ("rust", "reference"):
        assert main(["demo", "--nodes", "4", "--seconds", "30", "--json", "--no-local", "--reducer", reducer]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
