"""The deterministic whole-cluster simulator (clusterstate.simulation.cluster) and ``clusterstate chaos``.

A sweep of seeds runs real node machines under crashes, restarts, hangs, stops, a join and a lossy network, and
every invariant must hold on every seed; a failure names the seed and the command that replays it. A seed replays
the same run (the same digest), and a gate that releases acknowledgements at once is caught.
"""

from __future__ import annotations

from collections import Counter

import pytest

from clusterstate.cli import main
from clusterstate.runtime.gating import Pair
from clusterstate.simulation import cluster
from clusterstate.simulation.cluster import RecordingGate, Report, run

SWEEP = range(200)
SWEEP_DURATION_S = 15.0  # simulated seconds of faults per seed: the sweep stays within CI's budget


class EagerGate(RecordingGate):
    """A broken rule: every acknowledgement released as soon as it is held, whatever the node applied."""

    def release(self, applied: int, commit: int | None = None) -> list[Pair]:
        return super().release(2**62, None)


def explain(report: Report) -> str:
    return f"seed {report.seed} broke an invariant: {list(report.violations)[:5]}; replay: {report.replay}"


@pytest.mark.parametrize("seed", SWEEP)
def test_every_invariant_holds_on_every_seed(seed: int) -> None:
    report = run(seed, 3, SWEEP_DURATION_S)
    assert report.ok, explain(report)
    assert report.logged >= report.released > 0


@pytest.mark.parametrize("seed", [1544])
def test_seeds_that_once_failed_hold(seed: int) -> None:
    """1544: a node's round of term 1 was still open when it followed the master that term 1 had elected; the round
    then ended with this node as winner and it tried to serve term 1 a second time."""
    report = run(seed, 3, 20.0)
    assert report.ok, explain(report)


def test_the_sweep_meets_every_fault() -> None:
    reports = [run(seed, 3, 20.0) for seed in range(6)]
    for report in reports:
        assert report.ok, explain(report)
    faults: Counter[str] = Counter()
    for report in reports:
        faults.update(report.faults)
    assert {"crash", "restart", "hang", "stop", "join"} <= set(faults)
    assert any(report.sessions > 1 for report in reports)  # masters failed over
    assert sum(report.network["lost"] for report in reports) > 0
    assert sum(report.network["copied"] for report in reports) > 0
    assert sum(report.network["query_timeouts"] for report in reports) > 0


def test_a_seed_replays_the_same_run() -> None:
    first, second = run(11, 3, 10.0), run(11, 3, 10.0)
    assert first == second
    assert run(12, 3, 10.0).digest != first.digest


def test_a_gate_that_releases_at_once_is_caught() -> None:
    caught = [seed for seed in range(20) if not run(seed, 3, 8.0, gate=EagerGate).ok]
    assert caught, "no seed of 20 caught acknowledgements released before their node applied them"
    report = run(caught[0], 3, 8.0, gate=EagerGate)
    assert any("before its own log held it" in violation for violation in report.violations)
    assert run(caught[0], 3, 8.0).ok  # the real gate passes the same seed


def test_chaos_prints_the_replay_command_of_a_failing_seed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing(seed: int, nodes: int, duration_s: float) -> Report:
        return Report(seed, nodes, duration_s, "0" * 64, ("two masters in term 2",), 0, 0, 0, 2, 2, None, {}, {})

    monkeypatch.setattr(cluster, "run", failing)
    assert main(["chaos", "--seeds", "4..5", "--nodes", "4", "--duration", "7.5"]) == 1
    out = capsys.readouterr().out
    assert "replay: clusterstate chaos --seed 4 --nodes 4 --duration 7.5\n" in out
    assert "replay: clusterstate chaos --seed 5 --nodes 4 --duration 7.5\n" in out
    assert out.endswith("0 of 2 seeds passed\n")


def test_chaos_runs_one_seed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chaos", "--seed", "3", "--duration", "5"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "1 of 1 seeds passed\n"
    assert "seed 3: ok" in captured.err


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["chaos", "--seeds", "5..4"], "--seeds"),
        (["chaos", "--seeds", "5"], "--seeds"),
        (["chaos", "--seeds", "a..b"], "--seeds"),
        (["chaos", "--seed", "1", "--seeds", "1..2"], "--seeds"),
        (["chaos", "--nodes", "0"], "--nodes"),
        (["chaos", "--nodes", "10"], "--nodes"),
        (["chaos", "--duration", "0.5"], "--duration"),
        (["chaos", "--duration", "nan"], "--duration"),
    ],
)
def test_chaos_refuses_bad_flags(argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith(f"clusterstate chaos: argument {flag}: "), captured.err
