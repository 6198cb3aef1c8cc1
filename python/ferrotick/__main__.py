"""``ferrotick`` / ``python -m ferrotick``: version, runtime configuration and a
bridge self-check that measures completions per second on this machine."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import ferrotick


async def _self_check(n: int) -> dict[str, float | int | bool]:
    # Warm-up: starts the runtime and the loop's completion queue.
    assert await ferrotick.echo("ok") == "ok"
    assert await ferrotick.echo("ok", 0.001) == "ok"
    await ferrotick.sleep(0)

    # n concurrent awaits completed by tokio timers, delivered in batches.
    t0 = time.perf_counter()
    c0 = time.process_time()
    results = await asyncio.gather(*(ferrotick.echo(i, 0.001) for i in range(n)))
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    correct = results == list(range(n))

    # Sequential awaits of an already-done awaitable.
    m = 100_000
    t1 = time.perf_counter()
    for i in range(m):
        await ferrotick.echo(i)
    ready_ns = (time.perf_counter() - t1) / m * 1e9

    stats = ferrotick.runtime_stats()
    return {
        "concurrent_awaits": n,
        "results_correct": correct,
        "wall_seconds": round(wall, 4),
        "completions_per_second": round(n / wall),
        "cpu_us_per_await": round(cpu / n * 1e6, 3),
        "ready_await_ns": round(ready_ns, 1),
        "loop_wakeups": int(stats["wakeups"]),
        "pending_after": int(stats["pending_futures"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ferrotick", description=__doc__)
    parser.add_argument(
        "--awaits", type=int, default=20_000, help="concurrent awaits in the self-check"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    if args.awaits < 1:
        parser.error("--awaits must be >= 1")

    check = asyncio.run(_self_check(args.awaits))
    stats = ferrotick.runtime_stats()
    config = {
        k: stats[k]
        for k in ("worker_threads", "max_blocking_threads", "compute_threads", "shutdown_timeout")
    }
    report = {"version": ferrotick.__version__, "runtime": config, "bridge_self_check": check}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"ferrotick {ferrotick.__version__}")
        print("runtime: " + ", ".join(f"{k}={v}" for k, v in config.items()))
        print(
            "bridge self-check: {concurrent_awaits} concurrent awaits in {wall_seconds}s "
            "= {completions_per_second} completions/s, {cpu_us_per_await} us CPU per await, "
            "{loop_wakeups} loop wake-ups, results correct: {results_correct}".format(**check)
        )
        print(f"already-done await: {check['ready_await_ns']} ns")
    ok = bool(check["results_correct"]) and check["pending_after"] == 0
    if not ok:
        print("self-check FAILED", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
