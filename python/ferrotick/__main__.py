"""``ferrotick`` / ``python -m ferrotick``: the subcommands, or with none (or only
flags) the version, runtime configuration and a bridge self-check that measures
completions per second on this machine.

Subcommands are listed in ``SUBCOMMANDS`` ("name": ("module", "summary")); each
module has ``main(argv) -> int``."""

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


def _sim_main(argv: list[str]) -> int:
    import signal
    import threading

    from .sim import DEFAULT_API_KEY, DEFAULT_API_SECRET, DEFAULT_SYMBOLS, SimulatedExchange

    parser = argparse.ArgumentParser(
        prog="ferrotick sim", description="Run the simulated Binance spot exchange."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--symbols", default=",".join(DEFAULT_SYMBOLS), help="comma-separated symbols"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument(
        "--epoch", type=int, default=None, help="simulated start, ms since 1970 (default: now)"
    )
    parser.add_argument("--trade-rate", type=float, default=20.0, help="trades/s per symbol")
    parser.add_argument("--no-limits", action="store_true", help="turn request limits off")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a fault knob, e.g. --fault error_rate=0.1 (repeatable)",
    )
    args = parser.parse_args(argv)
    faults: dict[str, float] = {}
    for item in args.fault:
        name, _, value = item.partition("=")
        try:
            faults[name] = float(value)
        except ValueError:
            parser.error(f"--fault {item!r}: expected NAME=NUMBER")
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with SimulatedExchange(
        symbols,
        seed=args.seed,
        epoch=args.epoch,
        time_scale=args.time_scale,
        host=args.host,
        port=args.port,
        trade_rate=args.trade_rate,
        limits=not args.no_limits,
        **faults,
    ) as ex:
        print(f"simulated exchange at {ex.base_url} (WebSocket {ex.ws_url})", flush=True)
        print(f"symbols: {', '.join(ex.symbols)}; seed {args.seed}", flush=True)
        print(f"API key {DEFAULT_API_KEY}\nsecret  {DEFAULT_API_SECRET}", flush=True)
        try:
            while not stop.wait(0.2):
                pass
        except KeyboardInterrupt:
            pass
        print("stopping", flush=True)
    return 0


#: The subcommands: name -> (module with ``main(argv)``, one-line summary).
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "ferrotick._demo",
        "the pipeline over many symbols on the embedded simulated exchange, live",
    ),
    "serve": (
        "ferrotick.service._cli",
        "the analysis service (FastAPI under uvicorn), on the embedded simulated exchange "
        "or a configured one",
    ),
    "sim": ("ferrotick.__main__", "run the simulated Binance spot exchange until Ctrl-C"),
}


def _subcommands_help() -> str:
    width = max(len(n) for n in SUBCOMMANDS)
    lines = [f"  {n:<{width}}  {summary}" for n, (_, summary) in SUBCOMMANDS.items()]
    return "subcommands (ferrotick <name> --help):\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "sim":
        return _sim_main(argv[1:])
    if argv and argv[0] in SUBCOMMANDS:
        import importlib

        module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
        return int(module.main(argv[1:]))
    parser = argparse.ArgumentParser(
        prog="ferrotick",
        description="ferrotick: a tokio runtime for asyncio services, and what trading "
        "services build on it. Without a subcommand: the version and a bridge self-check.",
        epilog=_subcommands_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
        print(_subcommands_help())
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
