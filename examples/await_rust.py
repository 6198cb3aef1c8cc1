"""Awaiting ferrotick's Rust futures from asyncio: gather, timeouts, blocking twins.

python examples/await_rust.py
"""

from __future__ import annotations

import asyncio
import threading
import time

import ferrotick


async def main() -> None:
    # Future-like: gather takes them directly, no Task per awaitable.
    t0 = time.perf_counter()
    values = await asyncio.gather(*(ferrotick.echo(i, 0.01) for i in range(10_000)))
    print(f"10,000 echoes in {time.perf_counter() - t0:.3f}s, sum={sum(values)}")

    # Cancellation reaches Rust: the timer task is dropped at once.
    try:
        async with asyncio.timeout(0.05):
            await ferrotick.sleep(60)
    except TimeoutError:
        await asyncio.sleep(0.01)
        print("timed out; live tokio tasks:", ferrotick.runtime_stats()["alive_tasks"])

    # Blocking twins refuse to freeze a running loop...
    try:
        ferrotick.sleep_sync(0.1)
    except ferrotick.BlockingCallError as e:
        print("BlockingCallError:", e)

    # ...and work from a worker thread, with the GIL released.
    result = await asyncio.to_thread(ferrotick.echo_sync, "from a thread", 0.01)
    print(result, "on", threading.current_thread().name)


if __name__ == "__main__":
    asyncio.run(main())
