"""The liveness simulation (``clusterstate.simulation``, ``clusterstate simulate``): the claims of docs/liveness.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from clusterstate import CoreState
from clusterstate.cli import main
from clusterstate.simulation import (
    DETECTORS,
    ScenarioResult,
    SimulationConfig,
    build_stream,
    default_scenarios,
    node_id,
    run_scenario,
    simulate,
)
from clusterstate.simulation.report import markdown_table

CONFIG = SimulationConfig(nodes=8, seed=0)
LOW, HIGH = CONFIG.window


@pytest.fixture(scope="module")
def results() -> dict[str, ScenarioResult]:
    return {result.scenario.name: result for result in simulate(CONFIG)}


def test_the_scenario_set_covers_the_issue(results: dict[str, ScenarioResult]) -> None:
    assert list(results) == [
        "baseline",
        "slow-gatherer",
        "stalled-gatherer",
        "clock-skew",
        "crash",
        "partition",
        "master-ingest-stall",
        "master-pause",
        "re-election",
        "restart-rejoin",
        "flapping",
    ]


@pytest.mark.parametrize(("nodes", "seed"), [(8, 0), (6, 1), (9, 2)])
def test_tracker_no_false_disconnect_and_every_dead_node_in_the_window(nodes: int, seed: int) -> None:
    config = SimulationConfig(nodes=nodes, seed=seed)
    for result in simulate(config):
        score = result.results["tracker"]
        assert score.false_disconnects == 0, result.scenario.name
        assert score.missed == 0, result.scenario.name
        assert score.detected == score.required, result.scenario.name
        assert (score.late, score.early) == (0, 0), result.scenario.name
        assert all(LOW <= latency <= HIGH for latency in score.latencies), result.scenario.name


def test_every_dead_node_scenario_needs_detections(results: dict[str, ScenarioResult]) -> None:
    required = {name: result.results["tracker"].required for name, result in results.items()}
    assert required == {
        "baseline": 0,
        "slow-gatherer": 0,
        "stalled-gatherer": 0,
        "clock-skew": 1,
        "crash": 2,
        "partition": 2,
        "master-ingest-stall": 0,
        "master-pause": 0,
        "re-election": 2,
        "restart-rejoin": 1,
        "flapping": 2,  # the two 60 s outages; the 12-15 s ones are shorter than K·T
    }


def test_wall_clock_detector_misfires_under_skew_slow_gatherers_and_stalls(results: dict[str, ScenarioResult]) -> None:
    wall = {name: result.results["wall-clock"] for name, result in results.items()}
    assert wall["baseline"].false_disconnects == 0
    # Nodes 5 min and 2 h behind are timed out at every plan cycle (about 60 each in 600 s).
    assert wall["clock-skew"].false_disconnects > 100
    # The node 1 h ahead looks fresh for an hour after it crashed.
    assert wall["clock-skew"].missed == 1
    assert wall["slow-gatherer"].false_disconnects > 0
    assert wall["stalled-gatherer"].false_disconnects == 1
    assert wall["master-ingest-stall"].false_disconnects == CONFIG.nodes
    assert wall["master-pause"].false_disconnects == CONFIG.nodes


def test_first_proposal_misfires_on_gatherers_and_master_stalls(results: dict[str, ScenarioResult]) -> None:
    first = {name: result.results["first-proposal"] for name, result in results.items()}
    assert first["clock-skew"].false_disconnects == 0  # indices are immune to clocks
    assert first["slow-gatherer"].false_disconnects > 0
    assert first["stalled-gatherer"].false_disconnects == 1
    assert first["master-ingest-stall"].false_disconnects == CONFIG.nodes  # no stall guard


def test_replay_gives_identical_decisions() -> None:
    for scenario in default_scenarios():
        first, second = run_scenario(scenario, CONFIG), run_scenario(scenario, CONFIG)
        for detector in DETECTORS:
            assert first.results[detector].decisions == second.results[detector].decisions
        assert first.final_states == second.final_states


def test_identities_survive_and_no_ghost_is_left(results: dict[str, ScenarioResult]) -> None:
    rejoin = results["restart-rejoin"].final_states["tracker"]
    assert isinstance(rejoin, CoreState)
    assert rejoin.node_identities[node_id(3)].friendly_name == "sim node 3"
    assert node_id(3) in rejoin.known_nodes()  # back after its reboot
    crash = results["crash"].final_states["tracker"]
    assert isinstance(crash, CoreState)
    assert crash.known_nodes() == [node_id(i) for i in range(CONFIG.nodes) if i not in (3, 5)]
    assert {node_id(3), node_id(5)} <= set(crash.node_identities)  # disconnected, names kept


def test_stream_rates_follow_exo() -> None:
    scenario = default_scenarios()[0]
    stream = build_stream(scenario, 8, 0, 10.0)
    per_node = [0] * 8
    for delivery in stream.deliveries:
        if delivery.gathered:
            per_node[delivery.node] += 1
    rates = [count / scenario.duration_s for count in per_node]
    assert all(1.6 <= rate <= 2.0 for rate in rates[:4])  # Macs with macmon: ≈1.8/s
    assert all(1.05 <= rate <= 1.3 for rate in rates[4:])  # Linux: ≈1.17/s
    assert [at for at, _ in stream.cycles[:3]] == [0.0, 10.0, 20.0]
    assert all(a.at <= b.at for a, b in zip(stream.deliveries, stream.deliveries[1:], strict=False))


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="at least 6"):
        SimulationConfig(nodes=5)
    with pytest.raises(ValueError, match="duration_s"):
        default_scenarios(300.0)


def test_markdown_table(results: dict[str, ScenarioResult]) -> None:
    table = markdown_table(list(results.values()))
    assert table.count("\n") == 2 + 3 * len(results)
    assert "| clock-skew | tracker | 0 | 1/1 | 0 | 0 |" in table


def test_cli_simulate(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["simulate", "--nodes", "6", "--seed", "3", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "clusterstate StalenessTracker" in out
    assert "exo wall clock" in out
    assert "master-ingest-stall" in out
    png = tmp_path / "liveness.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "liveness-results.md").read_text(encoding="utf-8").startswith("| scenario |")
    assert main(["simulate", "--nodes", "2", "--output", str(tmp_path)]) == 2
    assert "argument --nodes: must be an integer in [6, " in capsys.readouterr().err
