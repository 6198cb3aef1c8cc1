"""Benchmark runner: ferrotick against its peers, in one process, on the same work.

    python benches/run.py [--quick] [--only NAME] [--rounds N]

Each ``benches/bench_*.py`` module exposes ``BENCHMARKS``: a list of
:class:`Benchmark`. For every benchmark the runner calls each contender once per
round, alternating their order from round to round, for at least 5 rounds, and
records wall time and CPU time per operation. Rows quote medians; the ratio is the
peer's median time divided by ferrotick's (above 1 means ferrotick is faster).
The table goes to ``benches/RESULTS.md`` (``--quick`` runs fewer operations and
writes ``benches/RESULTS-quick.md`` so that CI keeps the runner working without
overwriting measured results).
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
    args = p.parse_args(argv)
    rounds = max(5, args.rounds or (5 if args.quick else 7))
    benches = load_modules(args.only)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
