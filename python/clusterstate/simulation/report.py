"""Tables (rich) and the detection-latency plot (matplotlib, Agg) of a simulation run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .runner import DETECTORS, ScenarioResult, SimulationConfig

__all__ = ["LABELS", "markdown_table", "plot", "tables"]

LABELS = {
    "wall-clock": "exo wall clock (last_seen > 30 s, apply-before-stamp)",
    "first-proposal": "first index proposal (NodeGatheredInfo only, no stall guard)",
    "tracker": "clusterstate StalenessTracker",
}
_COLORS = {"wall-clock": "#d62728", "first-proposal": "#ff7f0e", "tracker": "#1f77b4"}


def _latency(result: ScenarioResult, detector: str) -> str:
    summary = result.results[detector].latency_summary
    if summary is None:
        return "-"
    return " / ".join(f"{value:.1f}" for value in summary)


def _row(result: ScenarioResult, detector: str) -> list[str]:
    score = result.results[detector]
    return [
        result.scenario.name,
        str(score.false_disconnects),
        f"{score.detected}/{score.required}",
        str(score.missed),
        str(score.late),
        _latency(result, detector),
    ]


_HEADERS = ["scenario", "false disconnects", "detected", "missed", "late", "latency min / median / max (s)"]


def tables(results: Sequence[ScenarioResult], config: SimulationConfig, console: Console) -> None:
    """Print one table per detector."""
    low, high = config.window
    console.print(
        f"[bold]{config.nodes} nodes, seed {config.seed}, T = {config.period_s:g} s, K = {config.threshold}[/]: "
        f"a dead node should be disconnected {low:g}-{high:g} s after its last event."
    )
    for detector in DETECTORS:
        table = Table(title=LABELS[detector], title_justify="left")
        for header in _HEADERS:
            table.add_column(header, justify="left" if header == "scenario" else "right")
        for result in results:
            row = _row(result, detector)
            style = "red" if result.results[detector].false_disconnects or result.results[detector].missed else None
            table.add_row(*row, style=style)
        console.print(table)


def markdown_table(results: Sequence[ScenarioResult]) -> str:
    """The three detectors side by side, as a Markdown table (for docs/liveness.md)."""
    lines = [
        "| scenario | detector | false disconnects | detected | missed | late | latency min / median / max (s) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for detector in DETECTORS:
            name, *cells = _row(result, detector)
            lines.append(f"| {name} | {detector} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(results: Sequence[ScenarioResult], config: SimulationConfig, path: Path) -> Path:
    """Save a PNG: false disconnects (top) and detection latencies (bottom) per scenario and detector."""
    import matplotlib  # imported on use: the other CLI commands do not need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [result.scenario.name for result in results]
    low, high = config.window
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(12, 8), sharex=True, height_ratios=(1, 1.4))
    width = 0.26
    for offset, detector in enumerate(DETECTORS):
        shift = (offset - 1) * width
        counts = [result.results[detector].false_disconnects for result in results]
        bars = top.bar(
            [i + shift for i in range(len(results))], counts, width, color=_COLORS[detector], label=LABELS[detector]
        )
        top.bar_label(bars, labels=[str(count) if count else "" for count in counts], fontsize=8, padding=1)
        for i, result in enumerate(results):
            score = result.results[detector]
            latencies = score.latencies
            bottom.scatter(
                [i + shift] * len(latencies),
                latencies,
                color=_COLORS[detector],
                s=28,
                zorder=3,
                edgecolors="black",
                linewidths=0.4,
            )
            if score.missed:
                bottom.annotate(
                    f"{score.missed} missed",
                    (i + shift, high + 6),
                    ha="center",
                    fontsize=8,
                    color=_COLORS[detector],
                    rotation=90,
                    va="bottom",
                )
    top.set_yscale("symlog", linthresh=1)
    most = max((r.results[d].false_disconnects for r in results for d in DETECTORS), default=0)
    top.set_ylim(0, max(10.0, most * 5.0))
    top.set_ylabel("false disconnects")
    top.set_title(
        f"Liveness detectors on the same event streams ({config.nodes} nodes, seed {config.seed}, "
        f"T = {config.period_s:g} s, K = {config.threshold})"
    )
    top.legend(loc="upper right", fontsize=8)
    top.grid(axis="y", alpha=0.3)
    bottom.axhspan(low, high, color="#2ca02c", alpha=0.15, label=f"window [K·T, (K+1)·T] = [{low:g}, {high:g}] s")
    bottom.set_ylabel("detection latency (s)")
    bottom.set_ylim(0, high + 40)
    bottom.legend(loc="upper right", fontsize=8)
    bottom.grid(axis="y", alpha=0.3)
    bottom.set_xticks(range(len(names)), names, rotation=25, ha="right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
