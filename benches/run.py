"""Benchmark runner: ferrotick against its peers, in one process, on the same work.

    python benches/run.py [--quick] [--only NAME] [--rounds N] [--list] [--readme]

Each ``benches/bench_*.py`` module exposes ``BENCHMARKS``: a list of
:class:`Benchmark`. For every benchmark the runner calls each contender once per
round, alternating their order from round to round, for at least 5 rounds, and
records wall time and CPU time per operation. Rows quote medians; the ratio is the
peer's median time divided by ferrotick's (above 1 means ferrotick is faster).
The table goes to ``benches/RESULTS.md`` (``--quick`` runs fewer operations and
writes ``benches/RESULTS-quick.md`` so that CI keeps the runner working without
overwriting measured results).

A full run also refreshes the headline table in README.md (between the
``bench:start``/``bench:end`` markers) and the chart ``benches/results.png`` from
``RESULTS.md``: one row per area against the peer users compare with
(``HEADLINE``). ``--readme`` refreshes both without running anything.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import gc
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclasses.dataclass
class Measurement:
    wall: float  # seconds for `ops` operations
    cpu: float  # process CPU seconds for `ops` operations
    ops: int


@dataclasses.dataclass
class Benchmark:
    name: str
    description: str
    # label -> callable(ops) -> Measurement; the first label is ferrotick's
    contenders: dict[str, Callable[[int], Measurement]]
    ops: int
    quick_ops: int
    # peer label -> minimal speed-up required (peer time / ferrotick time), for the target column
    targets: dict[str, float] = dataclasses.field(default_factory=dict)
    unit: str = "op"


def timed(fn: Callable[[], object], ops: int) -> Measurement:
    gc.collect()
    c0 = time.process_time()
    t0 = time.perf_counter()
    fn()
    t1 = time.perf_counter()
    c1 = time.process_time()
    return Measurement(t1 - t0, c1 - c0, ops)


def load_modules(only: str | None) -> list[Benchmark]:
    benches: list[Benchmark] = []
    for path in sorted(HERE.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for b in getattr(mod, "BENCHMARKS", []):
            if only is None or only in b.name:
                benches.append(b)
    return benches


def fmt_time(seconds_per_op: float) -> str:
    if seconds_per_op < 1e-6:
        return f"{seconds_per_op * 1e9:.0f} ns"
    if seconds_per_op < 1e-3:
        return f"{seconds_per_op * 1e6:.2f} µs"
    if seconds_per_op < 1:
        return f"{seconds_per_op * 1e3:.2f} ms"
    return f"{seconds_per_op:.3f} s"


def fmt_rate(ops_per_s: float) -> str:
    if ops_per_s >= 1e6:
        return f"{ops_per_s / 1e6:.2f}M/s"
    if ops_per_s >= 1e3:
        return f"{ops_per_s / 1e3:.1f}k/s"
    return f"{ops_per_s:.1f}/s"


def machine_line() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?"
            )
    except OSError:
        model = platform.processor() or "?"
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} logical CPUs ({model}), "
        f"Python {platform.python_version()}, shared and noisy machine"
    )


def run(benches: list[Benchmark], rounds: int, quick: bool) -> list[dict]:
    rows = []
    for b in benches:
        ops = b.quick_ops if quick else b.ops
        labels = list(b.contenders)
        samples: dict[str, list[Measurement]] = {lb: [] for lb in labels}
        # one warm-up call each
        for lb in labels:
            b.contenders[lb](max(1, ops // 10))
        for r in range(rounds):
            order = labels if r % 2 == 0 else list(reversed(labels))
            # rotate as well so that every contender takes every position
            k = r % len(order)
            order = order[k:] + order[:k]
            for lb in order:
                samples[lb].append(b.contenders[lb](ops))
        med = {
            lb: (
                statistics.median(m.wall / m.ops for m in s),
                statistics.median(m.cpu / m.ops for m in s),
            )
            for lb, s in samples.items()
        }
        ours = labels[0]
        row = {
            "name": b.name,
            "description": b.description,
            "ops": ops,
            "rounds": rounds,
            "unit": b.unit,
            "results": {lb: {"wall_per_op": w, "cpu_per_op": c} for lb, (w, c) in med.items()},
            "ratios": {},
        }
        for lb in labels[1:]:
            ratio = med[lb][0] / med[ours][0] if med[ours][0] > 0 else float("inf")
            target = b.targets.get(lb)
            row["ratios"][lb] = {
                "ratio": ratio,
                "target": target,
                "met": None if target is None else ratio >= target,
            }
        rows.append(row)
        print(f"{b.name}:", file=sys.stderr)
        for lb in labels:
            w, c = med[lb]
            print(
                f"  {lb:32s} {fmt_time(w):>10s}/{b.unit}  {fmt_rate(1 / w):>10s}  cpu {fmt_time(c)}",
                file=sys.stderr,
            )
        for lb, r in row["ratios"].items():
            t = (
                ""
                if r["target"] is None
                else f" (target >= {r['target']}x: {'met' if r['met'] else 'MISSED'})"
            )
            print(f"  ratio vs {lb}: {r['ratio']:.2f}x{t}", file=sys.stderr)
    return rows


def _section(row: dict, rounds: int, when: str) -> str:
    labels = list(row["results"])
    ours = labels[0]
    unit = row["unit"]
    lines = [
        f"## {row['name']}",
        "",
        row["description"],
        "",
        f"{row['ops']} {unit}s per round, {rounds} alternating rounds, measured {when}.",
        "",
        f"| contender | time per {unit} | rate | CPU per {unit} | ratio (peer / ferrotick) | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for lb in labels:
        res = row["results"][lb]
        w, c = res["wall_per_op"], res["cpu_per_op"]
        if lb == ours:
            ratio, target = "—", ""
        else:
            r = row["ratios"][lb]
            ratio = f"{r['ratio']:.2f}×"
            target = (
                ""
                if r["target"] is None
                else f"≥ {r['target']}×: {'met' if r['met'] else 'missed'}"
            )
        lines.append(
            f"| {lb} | {fmt_time(w)} | {fmt_rate(1 / w)} | {fmt_time(c)} | {ratio} | {target} |"
        )
    lines.append("")
    return "\n".join(lines)


def _read_sections(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    text = path.read_text()
    sections: dict[str, str] = {}
    for chunk in text.split("\n## ")[1:]:
        name = chunk.split("\n", 1)[0].strip()
        sections[name] = "## " + chunk.rstrip("\n") + "\n"
    return sections


def write_markdown(rows: list[dict], path: Path, rounds: int, quick: bool) -> None:
    """Writes the table. Sections of benchmarks not run this time are kept from
    the existing file (each section says when it was measured)."""
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sections = {} if quick else _read_sections(path)
    for row in rows:
        sections[row["name"]] = _section(row, rounds, when)
    head = [
        "# Benchmark results",
        "",
        f"Written by `python benches/run.py{' --quick' if quick else ''}`; last run {when}.",
        "",
        f"Machine: {machine_line()}.",
        "",
        "Each contender runs alternating rounds in one process on the same work; figures are "
        "medians per operation (wall time, and process CPU time beside it). Ratio = peer time / "
        "ferrotick time: above 1 means ferrotick is faster.",
        "",
    ]
    path.write_text("\n".join(head) + "\n" + "\n".join(sections.values()))


#: The README's headline rows: (area, benchmark, peer label as in RESULTS.md).
HEADLINE: list[tuple[str, str, str]] = [
    ("Runtime bridge", "gather_pending_asyncio", "pyo3-async-runtimes future_into_py"),
    ("HTTP client", "net_http_get_json", "aiohttp"),
    ("HTTP client", "net_http_get_json", "pyreqwest"),
    ("Rate limiter", "net_ratelimiter_acquire", "aiolimiter AsyncLimiter"),
    ("Scheduler", "scheduler_interval_lateness", "APScheduler 3 AsyncIOScheduler"),
    ("Scheduler", "scheduler_simultaneous_start", "APScheduler 3 AsyncIOScheduler"),
    ("Monitor", "histogram_labels_observe", "prometheus_client"),
    ("Monitor", "exposition_1000", "prometheus_client"),
    ("Indicators", "ta_batch_10_indicators", "TA-Lib 0.8, loop"),
    ("Indicators", "ta_stream_bundle_10", "TA-Lib 0.8"),
    ("Exchange client", "exchange_klines_1000x", "aiohttp+json"),
    ("Pipeline", "pipeline_end_to_end", "asyncio+aiohttp+orjson+pandas+TA-Lib"),
    ("Pipeline", "resample_matrix_5m", "numpy reduceat"),
    ("Pipeline", "resample_matrix_5m", "polars"),
    ("Pipeline", "resample_incremental_5tf", "pure-Python aggregator"),
    ("Stores", "influxdb_write_points", "influxdb 1.x client write_points(batch_size=5000)"),
    ("Stores", "signal_store_64_writers", "Python executemany batcher in a thread"),
    ("Simulated exchange", "sim_ws_replay", "aiohttp client reading it"),
]
README = HERE.parent / "README.md"
CHART = HERE / "results.png"
MARKERS = ("<!-- bench:start -->", "<!-- bench:end -->")


def read_ratios(path: Path) -> dict[str, dict[str, tuple[str, str, str]]]:
    """``{benchmark: {peer: (ratio, target, description)}}`` from RESULTS.md."""
    out: dict[str, dict[str, tuple[str, str, str]]] = {}
    for name, text in _read_sections(path).items():
        lines = text.splitlines()
        desc = lines[2] if len(lines) > 2 else ""
        peers: dict[str, tuple[str, str, str]] = {}
        for ln in lines:
            cells = [c.strip() for c in ln.strip().strip("|").split("|")]
            if len(cells) == 6 and cells[4].endswith("×"):
                peers[cells[0]] = (cells[4], cells[5], desc)
        out[name] = peers
    return out


def headline_rows(path: Path) -> list[tuple[str, str, str, str, str]]:
    """(area, benchmark, peer, ratio, target) for the HEADLINE rows measured so far."""
    ratios = read_ratios(path)
    rows = []
    for area, bench, peer in HEADLINE:
        hit = ratios.get(bench, {}).get(peer)
        if hit is not None:
            rows.append((area, bench, peer, hit[0], hit[1] or "—"))
    return rows


def headline_markdown(path: Path) -> str:
    lines = [
        MARKERS[0],
        "",
        "| area | benchmark | against | ferrotick is | target |",
        "|---|---|---|---:|---|",
    ]
    for area, bench, peer, ratio, target in headline_rows(path):
        lines.append(f"| {area} | `{bench}` | {peer} | {ratio} faster | {target} |")
    lines += [
        "",
        "Ratios are the peer's median time over ferrotick's in the same run (above 1: "
        "ferrotick is faster); every row, with absolute figures, is in "
        "[benches/RESULTS.md](benches/RESULTS.md).",
        "",
        "![ratios per area](benches/results.png)",
        "",
        MARKERS[1],
    ]
    return "\n".join(lines)


def write_readme(results: Path, readme: Path = README) -> bool:
    """Replaces the text between the markers; False when README has none."""
    text = readme.read_text()
    start, end = text.find(MARKERS[0]), text.find(MARKERS[1])
    if start < 0 or end < start:
        return False
    new = text[:start] + headline_markdown(results) + text[end + len(MARKERS[1]) :]
    if new != text:
        readme.write_text(new)
    return True


def write_chart(results: Path, png: Path = CHART) -> bool:
    """A horizontal bar chart of the headline ratios (log scale); False without
    matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = headline_rows(results)
    labels = [f"{area}: {bench} vs {peer}" for area, bench, peer, _, _ in rows]
    values = [float(r[3].rstrip("×")) for r in rows]
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(rows) + 1.2))
    colors = ["#2a9d8f" if v >= 1 else "#e76f51" for v in values]
    ax.barh(range(len(rows)), values, color=colors)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1.0, color="#444", linewidth=0.8)
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:.2f}×", va="center", fontsize=8)
    ax.set_xlabel("peer time / ferrotick time (log scale; right of the line: ferrotick faster)")
    ax.set_title("ferrotick against its peers (medians, same run)")
    fig.tight_layout()
    fig.savefig(png, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="few operations per round (CI smoke run)")
    p.add_argument("--only", help="run benchmarks whose name contains this")
    p.add_argument(
        "--rounds", type=int, default=None, help="rounds (default 7, quick 5; minimum 5)"
    )
    p.add_argument("--output", type=Path, default=None)
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    p.add_argument(
        "--readme",
        action="store_true",
        help="refresh README's headline table and benches/results.png from RESULTS.md only",
    )
    args = p.parse_args(argv)
    rounds = max(5, args.rounds or (5 if args.quick else 7))
    if args.readme:
        write_readme(HERE / "RESULTS.md")
        if not write_chart(HERE / "RESULTS.md"):
            print("matplotlib is not installed: no chart", file=sys.stderr)
        return 0
    benches = load_modules(args.only)
    if args.list:
        for b in benches:
            print(f"{b.name:34s} {', '.join(b.contenders)}")
        return 0
    if not benches:
        print("no benchmarks selected", file=sys.stderr)
        return 1
    rows = run(benches, rounds, args.quick)
    out = args.output or (HERE / ("RESULTS-quick.md" if args.quick else "RESULTS.md"))
    write_markdown(rows, out, rounds, args.quick)
    (HERE / ("results-quick.json" if args.quick else "results.json")).write_text(
        json.dumps(rows, indent=2)
    )
    print(f"wrote {out}", file=sys.stderr)
    if not args.quick and args.output is None:
        write_readme(out)
        write_chart(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
