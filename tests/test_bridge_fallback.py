"""Loops without add_reader (like the proactor loop) are woken with one
call_soon_threadsafe per batch instead of an eventfd."""

from __future__ import annotations

import asyncio

import ferrotick


class NoReaderLoop(asyncio.SelectorEventLoop):
    def add_reader(self, fd, callback, *args):  # type: ignore[override]
        raise NotImplementedError


def _wake_modes(loop_id: int) -> list[str]:
    return [d["wake"] for d in ferrotick.runtime_stats()["loops"] if d["loop_id"] == loop_id]


def test_threadsafe_wakeup_delivers_batches():
    loop = NoReaderLoop()
    try:

        async def main():
            values = await asyncio.gather(*(ferrotick.echo(i, 0.05) for i in range(5000)))
            assert values == list(range(5000))
            await ferrotick.sleep(0.001)
            return _wake_modes(id(asyncio.get_running_loop()))

        modes = loop.run_until_complete(main())
        assert modes == ["call_soon_threadsafe"]
        stats = [d for d in ferrotick.runtime_stats()["loops"] if d["loop_id"] == id(loop)][0]
        # batched: far fewer wake-ups than completions
        assert stats["completions"] >= 5001
        assert stats["wakeups"] < stats["completions"] / 10
    finally:
        loop.close()


def test_threadsafe_loop_closed_with_pending_futures(capfd):
    loop = NoReaderLoop()

    async def start():
        return [asyncio.ensure_future(ferrotick.sleep(0.05)) for _ in range(50)]

    tasks = loop.run_until_complete(start())
    loop.close()
    ferrotick.sleep_sync(0.2)  # the Rust timers fire after the loop closed
    out, err = capfd.readouterr()
    assert "Event loop is closed" not in err
    assert "Traceback" not in err
    del tasks
