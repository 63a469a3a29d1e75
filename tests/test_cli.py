"""The ``clusterstate`` command line: ``demo --offline`` shows the State a generated trace folds into; every bad
flag is one line on stderr and status 2 before any work; Ctrl-C exits quietly with 130."""

from __future__ import annotations

import argparse
import os
import pty
import select
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from clusterstate import simulation
from clusterstate.cli import COMMANDS, main
from clusterstate.cli.demo import demo_config
from clusterstate.cli.state_view import ClusterCounts
from clusterstate.codec import decode_state
from clusterstate.flags import number
from clusterstate.reference import fold
from clusterstate.trace import cluster_spec, generate
from support.processes import Processes


def test_demo_shows_every_node_and_the_counts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["demo", "--offline", "--nodes", "4", "--duration", "30", "--no-local"]) == 0
    out = capsys.readouterr().out

    config = demo_config(nodes=4, duration_s=30.0, seed=0)
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
    assert main(["demo", "--offline", "--nodes", "4", "--duration", "90", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    (silent,) = [node for node in cluster_spec(demo_config(4, 90.0, 3)).nodes if node.silent_at is not None]
    (row,) = [line for line in out.splitlines() if silent.friendly_name in line]
    assert row.rstrip().endswith("disconnected")
    assert "1 disconnected" in out


def test_demo_fits_a_narrow_terminal(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["demo", "--offline", "--nodes", "6", "--duration", "20", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    for node in cluster_spec(demo_config(6, 20.0, 1)).nodes:
        assert node.friendly_name in out


def test_demo_json_is_the_folded_state(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--offline", "--nodes", "4", "--duration", "30", "--json", "--no-local"]) == 0
    captured = capsys.readouterr()
    expected = fold(generate(demo_config(nodes=4, duration_s=30.0, seed=0)))
    assert decode_state(captured.out) == expected
    assert captured.out == expected.model_dump_json() + "\n"


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


def test_demo_gives_the_same_state_with_either_reducer(capsys: pytest.CaptureFixture[str]) -> None:
    outputs = []
    for reducer in ("rust", "reference"):
        assert (
            main(
                ["demo", "--offline", "--nodes", "4", "--duration", "30", "--json", "--no-local", "--reducer", reducer]
            )
            == 0
        )
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]


def test_demo_json_indents_by_request(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--offline", "--nodes", "3", "--duration", "10", "--json", "--no-local", "--indent", "4"]) == 0
    expected = fold(generate(demo_config(nodes=3, duration_s=10.0, seed=0)))
    assert capsys.readouterr().out == expected.model_dump_json(indent=4) + "\n"


_INTERNAL_NAMES = ("TraceConfig", "SimulationConfig", "duration_s", "silent_nodes", "Traceback")


def _bad_flags(tmp: Path) -> list[tuple[list[str], str]]:
    """(command line, the flag its one-line error must name) for every kind of bad value."""
    a_file = tmp / "a-file"
    a_file.write_text("", encoding="utf-8")
    return [
        (["demo", "--offline", "--duration", "inf"], "--duration"),
        (["demo", "--offline", "--duration", "nan"], "--duration"),
        (["demo", "--offline", "--duration", "0"], "--duration"),
        (["demo", "--offline", "--duration", "-5"], "--duration"),
        (["demo", "--offline", "--duration", "601"], "--duration"),
        (["demo", "--offline", "--duration", "soon"], "--duration"),
        (["demo", "--offline", "--nodes", "0"], "--nodes"),
        (["demo", "--offline", "--nodes", "100000"], "--nodes"),
        (["demo", "--offline", "--nodes", "1e3"], "--nodes"),
        (["demo", "--offline", "--seed", "-1"], "--seed"),
        (["demo", "--offline", "--seed", "1.5"], "--seed"),
        (["demo", "--offline", "--seed", str(2**63)], "--seed"),
        (["demo", "--offline", "--silent", "-1"], "--silent"),
        (["demo", "--offline", "--nodes", "4", "--silent", "4"], "--silent"),
        (["demo", "--offline", "--json", "--indent", "-1"], "--indent"),
        (["demo", "--offline", "--json", "--indent", "17"], "--indent"),
        (["demo", "--nodes", "4"], "--nodes"),
        (["demo", "--seed", "1"], "--seed"),
        (["demo", "--silent", "0"], "--silent"),
        (["demo", "--reducer", "reference"], "--reducer"),
        (["demo", "--no-local"], "--no-local"),
        (["demo", "--json", "--duration", "30"], "--duration"),
        (["simulate", "--duration", "nan"], "--duration"),
        (["simulate", "--duration", "inf"], "--duration"),
        (["simulate", "--duration", "599"], "--duration"),
        (["simulate", "--duration", "3601"], "--duration"),
        (["simulate", "--nodes", "5"], "--nodes"),
        (["simulate", "--nodes", "33"], "--nodes"),
        (["simulate", "--seed", "x"], "--seed"),
        (["simulate", "--output", str(a_file)], "--output"),
        (["simulate", "--output", str(a_file / "below")], "--output"),
        (["simulate", "--output", "/proc/x"], "--output"),
        (["gather", "--duration", "0"], "--duration"),
        (["gather", "--duration", "inf"], "--duration"),
        (["gather", "--duration", "nan"], "--duration"),
        (["gather", "--duration", "86401"], "--duration"),
        (["gather", "--disk-path", str(tmp / "missing")], "--disk-path"),
        (["gather", "--disk-path", str(a_file)], "--disk-path"),
        (["gather", "--config-dir", str(a_file)], "--config-dir"),
        (["gather", "--config-dir", str(a_file / "below")], "--config-dir"),
    ]


def test_every_bad_flag_is_one_line_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_work(*_: object) -> None:
        raise AssertionError("a command ran despite a bad flag")

    for command in COMMANDS.values():
        monkeypatch.setattr(command, "run", no_work)
    for argv, flag in _bad_flags(tmp_path):
        assert main(argv) == 2, argv
        captured = capsys.readouterr()
        assert captured.out == "", argv
        assert captured.err.count("\n") == 1, captured.err
        assert captured.err.startswith(f"clusterstate {argv[0]}: argument {flag}: "), captured.err
        assert not any(name in captured.err for name in _INTERNAL_NAMES), captured.err


def test_simulate_checks_the_output_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_scenarios(*_: object) -> None:
        raise AssertionError("a scenario ran")

    monkeypatch.setattr(simulation, "run_scenario", no_scenarios)
    occupied = tmp_path / "liveness"
    occupied.write_text("keep", encoding="utf-8")
    assert main(["simulate", "--output", str(occupied)]) == 2
    assert capsys.readouterr().err == (
        f"clusterstate simulate: argument --output: {occupied} is not a directory (see clusterstate simulate --help)\n"
    )
    assert occupied.read_text(encoding="utf-8") == "keep"


def test_simulate_writes_files_only_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (first, *_) = simulation.default_scenarios()
    monkeypatch.setattr(simulation, "default_scenarios", lambda _duration: [first])
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", "--nodes", "6"]) == 0
    assert first.name in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
    assert main(["simulate", "--nodes", "6", "--output", "results/liveness"]) == 0
    assert "results/liveness/liveness.png" in capsys.readouterr().out
    assert sorted(path.name for path in (tmp_path / "results" / "liveness").iterdir()) == [
        "liveness-results.md",
        "liveness.png",
    ]


def test_number_bounds_are_inclusive_unless_open() -> None:
    duration = number(float, 0.0, 600.0, low_open=True)
    assert duration("600") == 600.0
    assert duration("1e-9") == 1e-9
    nodes = number(int, 1, 256)
    assert (nodes("1"), nodes("256")) == (1, 256)
    for parse, text in ((duration, "0"), (duration, "600.001"), (duration, "-inf"), (nodes, "257"), (nodes, "2.0")):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


def _clusterstate(*args: str) -> list[str]:
    return [sys.executable, "-m", "clusterstate", *args]


def test_version_and_python_dash_m(processes: Processes) -> None:
    result = processes.run(_clusterstate("--version"), capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"clusterstate {version('clusterstate')}\n", "")


def test_only_the_cli_imports_rich(processes: Processes) -> None:
    code = "import sys, clusterstate.gatherers, clusterstate.trace; print('rich' in sys.modules)"
    result = processes.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "False\n", "")


def test_an_unbounded_run_is_refused_at_once_by_the_real_command(processes: Processes) -> None:
    for args in (
        ["demo", "--offline", "--duration", "inf"],
        ["simulate", "--duration", "nan"],
        ["demo", "--nodes", "100000"],
    ):
        result = processes.run(_clusterstate(*args), capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, args
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1, result.stderr
        assert f"argument {args[-2]}: must be" in result.stderr


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _on_a_terminal(
    processes: Processes, args: list[str], *, interrupt_at: bytes | None = None
) -> tuple[int, bytes, bytes]:
    """Run ``clusterstate ARGS`` with stdout and stderr on pseudo-terminals; SIGINT once stderr shows ``interrupt_at``.

    Returns the exit status and what the command wrote to each terminal.
    """
    out_primary, out_secondary = pty.openpty()
    err_primary, err_secondary = pty.openpty()
    seen = {out_primary: b"", err_primary: b""}
    env = {**os.environ, "COLUMNS": "120"}
    with processes.popen(
        _clusterstate(*args),
        stdin=subprocess.DEVNULL,
        stdout=out_secondary,
        stderr=err_secondary,
        env=env,
        # A shell's background job (CI may be one) starts with SIGINT ignored, and children inherit that: the child
        # gets the default disposition, as a command typed at a terminal has.
        preexec_fn=_default_sigint,
    ) as child:
        os.close(out_secondary)
        os.close(err_secondary)
        deadline = time.monotonic() + 240
        open_ends = set(seen)
        while open_ends and time.monotonic() < deadline:
            ready, _, _ = select.select(list(open_ends), [], [], 1.0)
            for end in ready:
                try:
                    chunk = os.read(end, 65536)
                except OSError:  # the child closed its side
                    chunk = b""
                if not chunk:
                    open_ends.discard(end)
                seen[end] += chunk
            if interrupt_at is not None and interrupt_at in seen[err_primary]:
                child.send_signal(signal.SIGINT)
                interrupt_at = None
        status = child.wait(timeout=60)
    os.close(out_primary)
    os.close(err_primary)
    return status, seen[out_primary], seen[err_primary]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "progress"),
    [
        (["demo", "--offline", "--nodes", "256", "--duration", "600", "--no-local"], b"generating"),
        (["simulate", "--nodes", "32", "--duration", "3600"], b"simulating"),
    ],
)
def test_ctrl_c_exits_quietly_with_130(processes: Processes, args: list[str], progress: bytes) -> None:
    status, out, err = _on_a_terminal(processes, args, interrupt_at=progress)
    assert progress in err  # a progress bar showed while it worked
    assert status == 130
    assert out == b""
    assert b"Traceback" not in err
    assert b"KeyboardInterrupt" not in err


def test_demo_json_is_pretty_on_a_terminal(processes: Processes) -> None:
    status, out, _ = _on_a_terminal(
        processes, ["demo", "--offline", "--nodes", "3", "--duration", "10", "--json", "--no-local"]
    )
    assert status == 0
    expected = fold(generate(demo_config(nodes=3, duration_s=10.0, seed=0)))
    assert out.decode().replace("\r\n", "\n") == expected.model_dump_json(indent=2) + "\n"
