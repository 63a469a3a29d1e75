"""Write ``docs/benchmarks.md`` from a pytest-benchmark JSON file: the Rust reducer next to the reference.

Measure (both implementations in one run, on the same traces; ~3 minutes on 2 cores), one process per
bench file (see :func:`merge`), then write the tables::

    for bench in benches/bench_*.py; do
        python -m pytest $bench --benchmark-enable --benchmark-only --benchmark-disable-gc \\
            --benchmark-json=/tmp/$(basename $bench .py).json
    done
    python benches/report.py --merge benches/results/rust-vs-reference.json /tmp/bench_*.json

For each scenario (benchmark group) the report has one row per cluster size: nodes, edges of
the warm State, the reference and Rust medians and their ratio (reference / Rust). It then checks
the project's speed targets against the figures: single-event ``apply`` from
Python >= 10x the reference at 4 nodes and >= 100x at 64 nodes, and flat scaling (the Rust cost
per event of a long fold of heartbeats at 1024 nodes <= 2x its cost at 4 nodes). The master ingest benchmarks
(``bench_master.py``, groups ``master-ingest-*``) get their own table, ``MasterCore.ingest`` against the pure-Python
pipeline (``pipeline.py``), and the ingest targets: >= 1 M events/s, >= 50x the Python path. Every figure is a
median of this one run on this one machine, so only the ratios carry over to other machines.

``python benches/report.py RESULTS.json [OUTPUT.md]``, or ``python benches/report.py --merge RESULTS.json
PART.json ...`` to write the parts as RESULTS.json first; the output defaults to ``docs/benchmarks.md``.
It also rewrites RESULTS.json without the raw timing of every round (``stats.data``, tens of MB),
keeping the stats, so that the file is small enough to commit next to the report.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "docs" / "benchmarks.md"
COMMANDS = (
    "for bench in benches/bench_*.py; do python -m pytest $bench --benchmark-enable --benchmark-only "
    "--benchmark-disable-gc --benchmark-json=/tmp/$(basename $bench .py).json; done",
    "python benches/report.py --merge benches/results/rust-vs-reference.json /tmp/bench_*.json",
)

SCENARIOS: dict[str, str] = {
    "apply-heartbeat-MacmonMetrics": (
        "One `apply` called from Python with a `NodeGatheredInfo(MacmonMetrics)` heartbeat (a pydantic "
        "`IndexedEvent`) on the warm State: the reference on the pydantic State, Rust on a `CoreState` "
        "converted once beforehand (the event is converted on every call)."
    ),
    "apply-heartbeat-MemoryUsage": "The same with a `NodeGatheredInfo(MemoryUsage)` heartbeat (Linux nodes).",
    "fold-slice": (
        "The next 500 events of the trace, whatever they are: the reference's `fold` against one "
        "`clusterstate.apply_many` call."
    ),
    "decode-apply": (
        "A `MacmonMetrics` heartbeat arriving as JSON bytes: the reference decodes it with pydantic "
        "(`decode_indexed_event`) and applies it; Rust gets the bytes (`clusterstate.apply(core_state, raw)`)."
    ),
    "fold-tail": (
        "Rust only: `apply_many` of a long run of the tail (up to 10,000 events, pydantic `IndexedEvent`s "
        "converted in the call), the trace as it is; its mix of events changes with the size (at 4 nodes a "
        "larger share is the instance's tasks and tokens), so per-event costs differ for that reason too."
    ),
    "fold-heartbeats": (
        "Rust only: `apply_many` of up to 10,000 heartbeat samples of the tail (`MacmonMetrics` and "
        "`MemoryUsage`, re-indexed to follow each other; pydantic `IndexedEvent`s converted in the call): "
        "the same kind of event at every size, for the flat-scaling target."
    ),
    "fold-heartbeats-bytes": (
        "Rust only: the same heartbeats as JSON bytes, decoded in Rust (`apply_many(core_state, [raw, ...])`): "
        "no pydantic objects to convert."
    ),
}
FLAT = ("fold-heartbeats", "fold-heartbeats-bytes")
"""The scenarios whose Rust cost per event must stay flat from 4 to 1024 nodes."""
SINGLE_APPLY = ("apply-heartbeat-MacmonMetrics", "apply-heartbeat-MemoryUsage")


@dataclass(frozen=True)
class Result:
    group: str
    impl: str
    nodes: int
    edges: int
    events: int
    median: float
    """Seconds per call."""
    rounds: int

    @property
    def per_event(self) -> float:
        return self.median / self.events


@dataclass(frozen=True)
class Other:
    """A benchmark of the same run that is not one of the reducer scenarios (log, tracker, ...)."""

    group: str
    name: str
    median: float
    extra_info: dict[str, Any]


def compact(path: Path, data: dict[str, Any]) -> None:
    """Drop the raw per-round timings pytest-benchmark writes (tens of MB), keeping the stats."""
    raw = [bench["stats"].pop("data") for bench in data["benchmarks"] if "data" in bench["stats"]]
    if raw:
        path.write_text(json.dumps(data, indent=2) + "\n")


def load(path: Path) -> tuple[dict[str, Any], list[Result], list[Other]]:
    data = json.loads(path.read_text())
    compact(path, data)
    results, others = [], []
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        if bench["group"] not in SCENARIOS or not {"impl", "nodes", "edges", "events"} <= info.keys():
            others.append(Other(bench["group"] or "", bench["name"], bench["stats"]["median"], info))
            continue
        results.append(
            Result(
                group=bench["group"],
                impl=info["impl"],
                nodes=info["nodes"],
                edges=info["edges"],
                events=info["events"],
                median=bench["stats"]["median"],
                rounds=bench["stats"]["rounds"],
            )
        )
    return data, results, others


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:.3g}x"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    """A Markdown table; ``align`` has one ``l`` or ``r`` per column (default: all right, for figures)."""
    align = align or "r" * len(header)
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if side == "r" else ":---" for side in align) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def scenario_table(by_size: dict[int, dict[str, Result]]) -> list[str]:
    multi = any(result.events > 1 for results in by_size.values() for result in results.values())
    rust_only = all("reference" not in results for results in by_size.values())
    if rust_only:
        base = by_size[min(by_size)]["rust"].per_event
        rows = [
            [
                str(nodes),
                f"{results['rust'].edges:,}",
                f"{results['rust'].events:,}",
                fmt_time(results["rust"].median),
                fmt_time(results["rust"].per_event),
                f"{results['rust'].per_event / base:.2f}x",
            ]
            for nodes, results in sorted(by_size.items())
        ]
        return table(
            ["nodes", "edges", "events", "Rust median", "Rust per event", f"per event vs {min(by_size)} nodes"], rows
        )
    rows = []
    for nodes, results in sorted(by_size.items()):
        ref, rust = results.get("reference"), results.get("rust")
        any_result = ref or rust
        assert any_result is not None
        row = [str(nodes), f"{any_result.edges:,}"]
        if multi:
            row.append(f"{any_result.events:,}")
        row += [fmt_time(ref.median) if ref else "—", fmt_time(rust.median) if rust else "—"]
        if multi:
            row += [fmt_time(ref.per_event) if ref else "—", fmt_time(rust.per_event) if rust else "—"]
        row.append(fmt_ratio(ref.median / rust.median) if ref and rust else "—")
        rows.append(row)
    header = ["nodes", "edges"] + (["events"] if multi else []) + ["reference median", "Rust median"]
    if multi:
        header += ["reference per event", "Rust per event"]
    return table([*header, "ratio (reference / Rust)"], rows)


def targets(grouped: dict[str, dict[int, dict[str, Result]]]) -> list[str]:
    rows: list[list[str]] = []

    def ratio_row(target: str, nodes: int, minimum: float) -> None:
        ratios = {
            group: grouped[group][nodes]["reference"].median / grouped[group][nodes]["rust"].median
            for group in SINGLE_APPLY
            if {"reference", "rust"} <= grouped.get(group, {}).get(nodes, {}).keys()
        }
        if not ratios:
            rows.append([target, f"not measured (no {nodes}-node results)", "—"])
            return
        measured = ", ".join(
            f"{fmt_ratio(r)} ({group.removeprefix('apply-heartbeat-')})" for group, r in ratios.items()
        )
        rows.append([target, measured, "yes" if min(ratios.values()) >= minimum else "**no**"])

    ratio_row("single-event `apply` from Python on a Rust State: ≥ 10x the reference at 4 nodes", 4, 10.0)
    ratio_row("single-event `apply` from Python on a Rust State: ≥ 100x the reference at 64 nodes", 64, 100.0)
    flat_target = "Rust cost per event at 1024 nodes ≤ 2x its cost at 4 nodes"
    for group in FLAT:
        per_size = {nodes: results["rust"] for nodes, results in grouped.get(group, {}).items() if "rust" in results}
        if 4 in per_size and 1024 in per_size:
            large, small = per_size[1024].per_event, per_size[4].per_event
            flat = large / small
            measured = f"{fmt_time(large)} / {fmt_time(small)} per event = {flat:.2f}x (`{group}`)"
            rows.append([flat_target, measured, "yes" if flat <= 2 else "**no**"])
        else:
            rows.append([flat_target, f"not measured (`{group}`)", "—"])
    decoded = {nodes: results["rust"] for nodes, results in grouped.get(FLAT[-1], {}).items() if "rust" in results}
    if decoded:
        costs = ", ".join(f"{fmt_time(decoded[nodes].per_event)} at {nodes} nodes" for nodes in sorted(decoded))
        rows.append(
            [
                "Rust `apply` per event on a Rust-owned State ≤ 1 µs median",
                f"not isolated from Python; with the JSON decoding included (`{FLAT[-1]}`): {costs}, "
                "upper bounds of the reducer's own cost",
                "—",
            ]
        )
    return table(["target", "measured", "met"], rows, align="lll")


MASTER_PREFIX = "master-ingest-"
"""Groups of ``bench_master.py``: ``master-ingest-{batch}`` and ``master-ingest-{batch}-log``."""
MASTER_INTRO = (
    "`MasterCore.ingest` (Rust) against a pure-Python master pipeline doing the same steps (`benches/pipeline.py`: "
    "pydantic decode of each `LocalEnvelope`, session and spoof checks, per-producer resequencing in a dict, the "
    "next global index, `clusterstate.reference.apply`, `model_dump_json()` of the broadcast `IndexedEvent`), on "
    "the same envelope bytes: the bench traces with one producer per node and a seeded reordering inside each "
    "block of 1,000 envelopes. Both start warm (the envelopes of the first 60 simulated seconds ingested outside "
    'the timing, so the State is full-size); each round ingests the next batch. "log": `MasterCore` with its '
    "event log (durability `none`) against the pipeline appending `bench_log.frame` records to a buffered file, "
    'no fsync; "no log": neither persists anything. Ratio = Python / Rust per event.'
)


@dataclass(frozen=True)
class MasterRow:
    nodes: int
    edges: int
    batch: int
    log: bool
    rust: Other | None
    python: Other | None

    def per_event(self, impl: str) -> float | None:
        other = self.rust if impl == "rust" else self.python
        return other.median / other.extra_info["events"] if other else None

    @property
    def ratio(self) -> float | None:
        rust, python = self.per_event("rust"), self.per_event("python")
        return python / rust if rust and python else None


def master_rows(others: list[Other]) -> list[MasterRow]:
    cells: dict[tuple[int, int, bool], dict[str, Other]] = defaultdict(dict)
    for other in others:
        if other.group.startswith(MASTER_PREFIX):
            info = other.extra_info
            batch = int(other.group.removeprefix(MASTER_PREFIX).removesuffix("-log"))
            cells[info["nodes"], batch, bool(info.get("log"))][info["impl"]] = other
    return [
        MasterRow(
            nodes, next(iter(impls.values())).extra_info["edges"], batch, log, impls.get("rust"), impls.get("python")
        )
        for (nodes, batch, log), impls in sorted(cells.items())
    ]


def fmt_rate(per_event: float | None) -> str:
    if not per_event:
        return "—"
    rate = 1 / per_event
    return f"{rate / 1e6:.2f} M/s" if rate >= 1e6 else f"{rate / 1e3:,.0f} k/s"


def master_table(rows: list[MasterRow]) -> list[str]:
    body = [
        [
            str(row.nodes),
            f"{row.edges:,}",
            f"{row.batch:,}",
            "log" if row.log else "no log",
            fmt_time(row.python.median) if row.python else "—",
            fmt_time(row.rust.median) if row.rust else "—",
            fmt_rate(row.per_event("python")),
            fmt_rate(row.per_event("rust")),
            fmt_ratio(row.ratio) if row.ratio else "—",
        ]
        for row in rows
    ]
    header = ["nodes", "edges", "batch", "log", "Python median", "Rust median", "Python events/s", "Rust events/s"]
    return table([*header, "ratio (Python / Rust)"], body, align="rrrlrrrrr")


def master_targets(rows: list[MasterRow]) -> list[str]:
    """Rows for the Targets table: the ingest targets, on the largest batch, with the log if it was measured."""
    if not rows:
        return []
    batch = max(row.batch for row in rows)
    log = any(row.log for row in rows)
    chosen = [row for row in rows if row.batch == batch and row.log == log]
    how = f"batches of {batch:,}, " + ("with the log, durability `none`" if log else "no log: `MasterCore` has none")
    costs = {row.nodes: cost for row in chosen if (cost := row.per_event("rust"))}
    ratios = {row.nodes: ratio for row in chosen if (ratio := row.ratio)}
    out = []
    if costs:
        measured = ", ".join(f"{fmt_rate(cost)} at {nodes} nodes" for nodes, cost in costs.items())
        met = "yes" if all(cost <= 1e-6 for cost in costs.values()) else "**no**"
        out.append(["master ingest, bytes in → bytes out, one core: ≥ 1 M events/s", f"{measured} ({how})", met])
    if ratios:
        measured = ", ".join(f"{fmt_ratio(ratio)} at {nodes} nodes" for nodes, ratio in ratios.items())
        met = "yes" if all(ratio >= 50 for ratio in ratios.values()) else "**no**"
        out.append(["master ingest: ≥ 50x the pure-Python pipeline (the reference path)", f"{measured} ({how})", met])
    return table(["", "", ""], out, align="lll")[2:]


def render(data: dict[str, Any], results: list[Result], others: list[Other], source: str) -> str:
    master = master_rows(others)
    others = [other for other in others if not other.group.startswith(MASTER_PREFIX)]
    grouped: dict[str, dict[int, dict[str, Result]]] = defaultdict(lambda: defaultdict(dict))
    for result in results:
        grouped[result.group][result.nodes][result.impl] = result
    machine = data.get("machine_info", {})
    cpu = machine.get("cpu", {})
    cores = cpu.get("count", "?")
    when = datetime.fromisoformat(data["datetime"]).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks: the Rust reducer against the reference",
        "",
        f"<!-- Generated by benches/report.py from {source}; edit the script, not this file. -->",
        "",
        "`clusterstate.apply` / `apply_many` (Rust, on a `CoreState`) against `clusterstate.reference.apply` /",
        "`fold` (pure Python, on a pydantic State), measured side by side in one run on the same generated",
        "traces (`clusterstate.trace`, seed 0): each size is warmed up for 60 simulated seconds (every node",
        "known, every edge built), and the benchmarked events come from the 120 s after that. Up to 64 nodes",
        "the LAN is exo's full mesh; from 256 nodes on it is sparse, each node reaching ~16 peers",
        "(`lan_reachability = 16 / nodes`). Times are medians; the ratio is reference / Rust.",
        "",
        f"- Machine: {cpu.get('brand_raw', machine.get('processor', '?'))}, {cores} cores, "
        f"{machine.get('system', '?')} {machine.get('release', '')}, "
        f"{machine.get('python_implementation', 'Python')} {machine.get('python_version', '?')}",
        f"- Date: {when}",
        "- Commands:",
        "",
        "  ```sh",
        *(f"  {command}" for command in COMMANDS),
        "  ```",
        "",
        "## Targets",
        "",
        *targets(grouped),
        *master_targets(master),
        "",
        "The reference is clusterstate's own pure-Python reducer, which shares every unchanged part of the",
        "State between versions (no copy of the topology per event); the ratio targets were set against exo's",
        "`apply`, which deep-copies the topology on every event (0.83 ms at 4 nodes, 16 ms at 16 nodes, measured",
        "outside this project). exo's reducer is not part of this run, so no ratio against it is claimed here.",
        "",
    ]
    order = [group for group in SCENARIOS if group in grouped] + sorted(set(grouped) - set(SCENARIOS))
    for group in order:
        lines += [f"## `{group}`", ""]
        if group in SCENARIOS:
            lines += [SCENARIOS[group], ""]
        lines += [*scenario_table(grouped[group]), ""]
    if master:
        lines += ["## Master ingest", "", MASTER_INTRO, "", *master_table(master), ""]
    if others:
        rows = [
            [
                f"`{other.group}`",
                f"`{other.name}`",
                fmt_time(other.median),
                ", ".join(f"{key}={value}" for key, value in other.extra_info.items()),
            ]
            for other in others
        ]
        lines += [
            "## Other benchmarks of the same run",
            "",
            "Not reducer comparisons; listed as measured.",
            "",
            *table(["group", "benchmark", "median", "extra info"], rows, align="llrl"),
            "",
        ]
    return "\n".join(lines)


def merge(target: Path, parts: Sequence[Path]) -> None:
    """Write the runs in ``parts`` (one pytest process per bench file) as one results file ``target``.

    With the collector disabled, one process running every bench file carries each file's garbage into the
    next ones and slows them (up to 2x seen here); one process per file measures each on a clean heap."""
    runs = [json.loads(part.read_text()) for part in parts]
    merged = dict(runs[0])
    merged["benchmarks"] = [bench for run in runs for bench in run["benchmarks"]]
    target.write_text(json.dumps(merged, indent=2) + "\n")


def main(argv: Sequence[str]) -> int:
    args = list(argv[1:])
    if len(args) >= 3 and args[0] == "--merge":
        merge(Path(args[1]), [Path(part) for part in args[2:]])
        args = [args[1]]
    if len(args) not in (1, 2):
        print(__doc__, file=sys.stderr)
        return 2
    source = Path(args[0])
    output = Path(args[1]) if len(args) == 2 else DEFAULT_OUTPUT
    data, results, others = load(source)
    try:
        shown = source.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        shown = source.name
    output.write_text(render(data, results, others, shown))
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
